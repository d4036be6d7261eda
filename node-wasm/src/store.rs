//! Persistence in IndexedDB: one record per network under the key `node/<network>` in the object store
//! `state` of the database (default `chordial`). It holds the session key, the delegation, the last
//! delegation request and the settings, so a reload resumes without a new wallet signature.
//!
//! Beside it, under `accepted/<network>`, the node's table of accepted messages (`node::accepted`: per
//! sending session, what reached the app), so that a reload does not deliver a replayed message again. It
//! is written whole (a `Uint8Array`: version byte 1, then postcard of the rows and the forgotten-before
//! time) after every batch of outputs that changed it — *after* the receipt and the app event, not before:
//! see docs/security.md, "Not yet defended", for that window.
//!
//! IndexedDB is available in windows, workers and extension offscreen documents alike; only
//! `chrome.storage` is not, which is why it is not used.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chordial_core::identity::delegation::Delegation;
use chordial_core::identity::{SessionKey, WalletSignature};
use chordial_core::node::accepted::{AcceptedStore, MemoryAcceptedStore, Saved};
use chordial_core::Timestamp;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::{ApiError, STORAGE};
use crate::js;

/// What is stored for one network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Stored {
    /// Format version (1).
    pub version: u32,
    /// The session secret key, hex.
    pub session_key: String,
    /// The delegation: SIWE text and `0x` signature.
    pub delegation: Option<(String, String)>,
    /// The last delegation request's text, awaiting its signature.
    pub pending: Option<String>,
    /// Bootstrap servers.
    pub bootstrap: Vec<String>,
}

impl Stored {
    pub(crate) fn session(&self) -> Option<SessionKey> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&self.session_key, &mut bytes).ok()?;
        SessionKey::from_bytes(&bytes).ok()
    }

    pub(crate) fn delegation(&self) -> Option<Delegation> {
        let (message, sig) = self.delegation.as_ref()?;
        let signature = WalletSignature::from_hex(sig).ok()?;
        Some(Delegation { message: message.clone(), signature })
    }
}

/// An open database.
pub(crate) struct Db {
    db: JsValue,
    key: String,
    accepted_key: String,
}

/// Version byte of the accepted table's IndexedDB value.
const ACCEPTED_VERSION: u8 = 1;

/// The accepted table as one IndexedDB value.
#[derive(Serialize, Deserialize)]
struct AcceptedSnapshot {
    rows: Vec<(Vec<u8>, Vec<u8>)>,
    forgotten_before: u64,
}

/// The node's [`AcceptedStore`] in the browser: kept in memory, and marked changed so that the shell writes
/// it to IndexedDB after the outputs of the input that changed it ([`Accepted::take_changed`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct Accepted {
    table: Arc<Mutex<MemoryAcceptedStore>>,
    changed: Arc<AtomicBool>,
}

impl Accepted {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryAcceptedStore> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The table's IndexedDB value if it changed since the last call.
    pub(crate) fn take_changed(&self) -> Option<Vec<u8>> {
        if !self.changed.swap(false, Ordering::Relaxed) {
            return None;
        }
        let t = self.lock();
        let rows = t.rows.iter().map(|(k, v)| (k.to_vec(), v.clone())).collect();
        let snapshot = AcceptedSnapshot { rows, forgotten_before: t.forgotten_before.0 };
        let mut out = vec![ACCEPTED_VERSION];
        out.extend(postcard::to_allocvec(&snapshot).unwrap_or_default());
        Some(out)
    }

    /// Reads an IndexedDB value. One that cannot be read (another version, damage) cannot say what was
    /// accepted: the table starts empty with its forgotten-before time at `refuse_until` (nothing dated
    /// before it is accepted from a session the table does not know), never a panic.
    fn from_value(bytes: &[u8], refuse_until: Timestamp) -> Accepted {
        let read = bytes
            .split_first()
            .filter(|(v, _)| **v == ACCEPTED_VERSION)
            .and_then(|(_, rest)| postcard::from_bytes::<AcceptedSnapshot>(rest).ok());
        let mut table = MemoryAcceptedStore::default();
        match read {
            Some(snapshot) => {
                for (k, v) in snapshot.rows {
                    // A key that is not a session key's length is skipped; the node drops rows it cannot read.
                    if let Ok(k) = <[u8; 33]>::try_from(k.as_slice()) {
                        table.rows.insert(k, v);
                    }
                }
                table.forgotten_before = Timestamp(snapshot.forgotten_before);
            }
            None => table.forgotten_before = refuse_until,
        }
        Accepted { table: Arc::new(Mutex::new(table)), changed: Arc::default() }
    }
}

impl AcceptedStore for Accepted {
    fn load(&self) -> Saved {
        self.lock().load()
    }
    fn put(&mut self, session: &[u8; 33], row: Option<Vec<u8>>) {
        self.lock().put(session, row);
        self.changed.store(true, Ordering::Relaxed);
    }
    fn put_forgotten_before(&mut self, at: Timestamp) {
        self.lock().put_forgotten_before(at);
        self.changed.store(true, Ordering::Relaxed);
    }
}

fn storage_err(what: &str, e: &JsValue) -> ApiError {
    ApiError::new(STORAGE, format!("IndexedDB {what}: {}", js::describe(e)))
}

impl Db {
    pub(crate) async fn open(name: &str, network: &str) -> Result<Db, ApiError> {
        let db = JsFuture::from(js::idb_open(name)).await.map_err(|e| storage_err("open", &e))?;
        Ok(Db { db, key: format!("node/{network}"), accepted_key: format!("accepted/{network}") })
    }

    /// The accepted table stored for this network (empty if none); `refuse_until` for one that cannot be
    /// read ([`Accepted`]).
    pub(crate) async fn load_accepted(&self, refuse_until: Timestamp) -> Result<Accepted, ApiError> {
        let v = JsFuture::from(js::idb_get(&self.db, &self.accepted_key))
            .await
            .map_err(|e| storage_err("get", &e))?;
        if v.is_undefined() || v.is_null() {
            return Ok(Accepted::default());
        }
        let bytes = v.dyn_into::<js_sys::Uint8Array>().map(|a| a.to_vec()).unwrap_or_default();
        Ok(Accepted::from_value(&bytes, refuse_until))
    }

    /// Writes the accepted table ([`Accepted::take_changed`]).
    pub(crate) async fn save_accepted(&self, bytes: &[u8]) -> Result<(), ApiError> {
        let v = js_sys::Uint8Array::from(bytes);
        JsFuture::from(js::idb_put(&self.db, &self.accepted_key, &v))
            .await
            .map_err(|e| storage_err("put", &e))?;
        Ok(())
    }

    /// The stored record and the ICE servers stored with it (`undefined` if none).
    pub(crate) async fn load(&self) -> Result<Option<(Stored, JsValue)>, ApiError> {
        let v = JsFuture::from(js::idb_get(&self.db, &self.key)).await.map_err(|e| storage_err("get", &e))?;
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        // A record we cannot read (another version, damaged) is treated as absent: a fresh identity.
        let Ok(stored) = serde_wasm_bindgen::from_value::<Stored>(v.clone()) else { return Ok(None) };
        let ice = js_sys::Reflect::get(&v, &JsValue::from_str("iceServers")).unwrap_or(JsValue::UNDEFINED);
        Ok(Some((stored, ice)))
    }

    pub(crate) async fn save(&self, stored: &Stored, ice_servers: &JsValue) -> Result<(), ApiError> {
        let v = js::to_js(stored);
        js_sys::Reflect::set(&v, &JsValue::from_str("iceServers"), ice_servers)
            .map_err(|e| storage_err("encode", &e))?;
        JsFuture::from(js::idb_put(&self.db, &self.key, &v)).await.map_err(|e| storage_err("put", &e))?;
        Ok(())
    }

    pub(crate) async fn delete(&self) -> Result<(), ApiError> {
        JsFuture::from(js::idb_delete(&self.db, &self.key)).await.map_err(|e| storage_err("delete", &e))?;
        JsFuture::from(js::idb_delete(&self.db, &self.accepted_key))
            .await
            .map_err(|e| storage_err("delete", &e))?;
        Ok(())
    }

    pub(crate) fn close(&self) {
        js::idb_close(&self.db);
    }
}
