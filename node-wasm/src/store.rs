//! Persistence in IndexedDB: one record per network under the key `node/<network>` in the object store
//! `state` of the database (default `chordial`). It holds the session key, the delegation, the last
//! delegation request and the settings, so a reload resumes without a new wallet signature.
//!
//! IndexedDB is available in windows, workers and extension offscreen documents alike; only
//! `chrome.storage` is not, which is why it is not used.

use chordial_core::identity::delegation::Delegation;
use chordial_core::identity::{SessionKey, WalletSignature};
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
}

fn storage_err(what: &str, e: &JsValue) -> ApiError {
    ApiError::new(STORAGE, format!("IndexedDB {what}: {}", js::describe(e)))
}

impl Db {
    pub(crate) async fn open(name: &str, network: &str) -> Result<Db, ApiError> {
        let db = JsFuture::from(js::idb_open(name)).await.map_err(|e| storage_err("open", &e))?;
        Ok(Db { db, key: format!("node/{network}") })
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
        Ok(())
    }

    pub(crate) fn close(&self) {
        js::idb_close(&self.db);
    }
}
