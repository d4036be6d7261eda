//! Small JavaScript helpers the shell imports (promise plumbing that is shorter and clearer in JS than
//! through web-sys), and the conversion of errors and values for JavaScript.

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::error::ApiError;

#[wasm_bindgen(inline_js = r#"
export function chordialError(code, message) {
  const e = new Error(message);
  e.name = 'ChordialError';
  e.code = code;
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
// shape"; text/plain avoids a CORS preflight); resolves with the answer bytes, rejects with a message.
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
  const timer = setTimeout(() => ctrl.abort(), ms);
  try {
    const r = await fetch(url.replace(/\/+$/, '') + '/v1/signal', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ offer: toBase64(body) }),
      signal: ctrl.signal,
    });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch (_) { /* not JSON: reported below */ }
    if (!r.ok) {
      const why = json && json.error ? json.error + (json.message ? ': ' + json.message : '') : text.slice(0, 200);
      throw new Error('HTTP ' + r.status + (why ? ' ' + why : ''));
    }
    if (!json || typeof json.answer !== 'string') throw new Error('the answer is not {"answer": base64}');
    return fromBase64(json.answer);
  } catch (e) {
    throw String(e && e.message ? e.message : e);
  } finally {
    clearTimeout(timer);
  }
}
// A promise that rejects after `ms` unless `p` settles first.
export function withDeadline(p, ms, message) {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(message), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
// Like withDeadline, but the rejection is a ChordialError with `code`.
export function deadline(p, ms, code, message) {
  let timer;
  const t = new Promise((_, reject) => { timer = setTimeout(() => reject(chordialError(code, message)), ms); });
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
    fn chordial_error(code: &str, message: &str) -> JsValue;
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
    #[wasm_bindgen(js_name = withDeadline)]
    pub(crate) fn with_deadline(p: &js_sys::Promise, ms: u32, message: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = deadline)]
    pub(crate) fn deadline(p: &js_sys::Promise, ms: u32, code: &str, message: &str) -> js_sys::Promise;
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
        chordial_error(e.code, &e.message)
    }
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
