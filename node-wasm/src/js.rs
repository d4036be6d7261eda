//! Small JavaScript helpers the shell imports (promise plumbing that is shorter and clearer in JS than
//! through web-sys), and the conversion of errors and values for JavaScript.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use chordial_core::node::BootstrapError;

use crate::error::{self, ApiError, Code};

#[wasm_bindgen(inline_js = r#"
export function chordialError(code, message, rpcCode) {
  const e = new Error(message);
  e.name = 'ChordialError';
  e.code = code;
  e.rpcCode = rpcCode;
  return e;
}
export function hasWebRtc() { return typeof globalThis.RTCPeerConnection === 'function'; }
export function hasIndexedDb() { return typeof globalThis.indexedDB === 'object' && globalThis.indexedDB !== null; }
export function newPeerConnection(iceServers) { return new RTCPeerConnection({ iceServers }); }
// Resolves when ICE gathering is complete, or after `ms` with whatever was gathered.
export function waitGathering(pc, ms) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return; }
    let timer;
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}
export function sctpMaxMessageSize(pc) {
  const s = pc.sctp;
  return s && typeof s.maxMessageSize === 'number' && isFinite(s.maxMessageSize) ? s.maxMessageSize : 0;
}
// POST the offer to {url}/v1/signal as {"offer": base64} (docs/protocol.md, "POST /v1/signal — the HTTP
// shape"; text/plain avoids a CORS preflight); resolves with the answer bytes, rejects with
// {kind: 'unreachable' | 'timeout' | 'refused' | 'answer', status, message} (error::bootstrap_failure).
function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
function fromBase64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
export async function postSignal(url, body, ms) {
  const ctrl = new AbortController();
  let late = false;
  const timer = setTimeout(() => { late = true; ctrl.abort(); }, ms);
  const fail = (kind, message, status = 0) => ({ kind, status, message });
  const broken = (e) => late ? fail('timeout', 'no answer within ' + ms + ' ms')
    : fail('unreachable', String(e && e.message ? e.message : e));
  try {
    let r, text;
    try {
      r = await fetch(url.replace(/\/+$/, '') + '/v1/signal', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ offer: toBase64(body) }),
        signal: ctrl.signal,
      });
      text = await r.text();
    } catch (e) {
      throw broken(e);
    }
    let json = null;
    try { json = JSON.parse(text); } catch (_) { /* not JSON: reported below */ }
    if (!r.ok) {
      const why = json && json.error ? json.error + (json.message ? ': ' + json.message : '') : text.slice(0, 200);
      throw fail('refused', 'HTTP ' + r.status + (why ? ' ' + why : ''), r.status);
    }
    if (!json || typeof json.answer !== 'string') throw fail('answer', 'the answer is not {"answer": base64}');
    try { return fromBase64(json.answer); } catch (_) { throw fail('answer', 'the answer is not base64'); }
  } finally {
    clearTimeout(timer);
  }
}
// The fields of a failed signal exchange: postSignal's {kind, status, message}, or anything else (an
// exception postSignal did not expect) as unreachable.
export function signalFailure(e) {
  if (e && typeof e.kind === 'string') return [e.kind, e.status | 0, String(e.message)];
  return ['unreachable', 0, String(e && e.message ? e.message : e)];
}
// A promise that rejects after `ms` unless `p` settles first, with a ChordialError `code` (and `rpcCode`).
export function deadline(p, ms, code, rpcCode, message) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(chordialError(code, message, rpcCode)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(String(r.error && r.error.message ? r.error.message : r.error));
  });
}
export function idbOpen(name) {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => { r.result.createObjectStore('state'); };
  r.onblocked = () => {};
  return req(r);
}
function tx(db, mode, f) {
  return new Promise((resolve, reject) => {
    const t = db.transaction('state', mode);
    let out;
    req(f(t.objectStore('state'))).then((v) => { out = v; }, () => {});
    t.oncomplete = () => resolve(out);
    t.onerror = () => reject(String(t.error && t.error.message ? t.error.message : t.error));
    t.onabort = () => reject(String(t.error && t.error.message ? t.error.message : 'transaction aborted'));
  });
}
export function idbGet(db, key) { return tx(db, 'readonly', (s) => s.get(key)); }
export function idbPut(db, key, value) { return tx(db, 'readwrite', (s) => s.put(value, key)); }
export function idbDelete(db, key) { return tx(db, 'readwrite', (s) => s.delete(key)); }
export function idbClose(db) { db.close(); }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = chordialError)]
    fn chordial_error(code: &str, message: &str, rpc_code: i32) -> JsValue;
    #[wasm_bindgen(js_name = hasWebRtc)]
    pub(crate) fn has_webrtc() -> bool;
    #[wasm_bindgen(js_name = hasIndexedDb)]
    pub(crate) fn has_indexed_db() -> bool;
    #[wasm_bindgen(js_name = newPeerConnection, catch)]
    pub(crate) fn new_peer_connection(ice_servers: &JsValue) -> Result<web_sys::RtcPeerConnection, JsValue>;
    #[wasm_bindgen(js_name = waitGathering)]
    pub(crate) fn wait_gathering(pc: &web_sys::RtcPeerConnection, ms: u32) -> js_sys::Promise;
    #[wasm_bindgen(js_name = sctpMaxMessageSize)]
    pub(crate) fn sctp_max_message_size(pc: &web_sys::RtcPeerConnection) -> f64;
    #[wasm_bindgen(js_name = postSignal)]
    pub(crate) fn post_signal(url: &str, body: &js_sys::Uint8Array, ms: u32) -> js_sys::Promise;
    #[wasm_bindgen(js_name = deadline)]
    fn deadline_js(p: &js_sys::Promise, ms: u32, code: &str, rpc_code: i32, message: &str)
        -> js_sys::Promise;
    #[wasm_bindgen(js_name = signalFailure)]
    fn signal_failure(e: &JsValue) -> js_sys::Array;
    #[wasm_bindgen(js_name = idbOpen)]
    pub(crate) fn idb_open(name: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = idbGet)]
    pub(crate) fn idb_get(db: &JsValue, key: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = idbPut)]
    pub(crate) fn idb_put(db: &JsValue, key: &str, value: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_name = idbDelete)]
    pub(crate) fn idb_delete(db: &JsValue, key: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = idbClose)]
    pub(crate) fn idb_close(db: &JsValue);
}

impl From<ApiError> for JsValue {
    fn from(e: ApiError) -> JsValue {
        chordial_error(e.code.name, &e.message, e.code.rpc)
    }
}

/// Rejects with a ChordialError of `code` after `ms` unless `p` settles first.
pub(crate) fn deadline(p: &js_sys::Promise, ms: u32, code: Code, message: &str) -> js_sys::Promise {
    deadline_js(p, ms, code.name, code.rpc, message)
}

/// Why a bootstrap exchange (`postSignal`) failed, for the core.
pub(crate) fn bootstrap_failure(e: &JsValue) -> BootstrapError {
    let fields = signal_failure(e);
    let kind = fields.get(0).as_string().unwrap_or_default();
    let status = fields.get(1).as_f64().unwrap_or(0.0) as u16;
    let detail = fields.get(2).as_string().unwrap_or_default();
    error::bootstrap_failure(&kind, status, detail)
}

/// A JS value (a rejection reason, an exception) as text for an error message.
pub(crate) fn describe(v: &JsValue) -> String {
    if let Some(s) = v.as_string() {
        return s;
    }
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    format!("{v:?}")
}

/// A plain JS value (objects, not Maps; bytes as Uint8Array) for `value`.
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> JsValue {
    // Not `json_compatible()`: that turns bytes into plain arrays; message payloads must be Uint8Arrays.
    let ser =
        serde_wasm_bindgen::Serializer::new().serialize_missing_as_null(true).serialize_maps_as_objects(true);
    // Our view types always serialize (no maps with non-string keys, no u64 over 2^53).
    value.serialize(&ser).unwrap_or(JsValue::UNDEFINED)
}

/// Milliseconds since the Unix epoch, the core's time scale.
pub(crate) fn now() -> chordial_core::Timestamp {
    chordial_core::Timestamp(js_sys::Date::now() as u64)
}
