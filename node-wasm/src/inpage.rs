//! Bootstrap between nodes in one page, without HTTP: a node opened with `signalName: "b"` answers the
//! bootstrap offers of nodes whose bootstrap list holds `inpage:b`. Tests and the benchmark use it to
//! link two nodes in one page; the extension has no use for it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Weak;

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::JsValue;

use crate::error::{self, ApiError};
use crate::shell::{self, Shell};

/// The URL scheme of in-page bootstrap.
pub(crate) const SCHEME: &str = "inpage:";

/// Names registered at once in one page.
const MAX_NAMES: usize = 64;

thread_local! {
    static REGISTRY: RefCell<HashMap<String, Weak<RefCell<Shell>>>> = RefCell::new(HashMap::new());
}

/// Registers `shell` under `name` (replacing a node gone since).
pub(crate) fn register(name: &str, shell: Weak<RefCell<Shell>>) -> Result<(), ApiError> {
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        r.retain(|_, w| w.strong_count() > 0);
        if r.contains_key(name) {
            return Err(ApiError::invalid(format!("signal name {name:?} is taken in this page")));
        }
        if r.len() >= MAX_NAMES {
            return Err(ApiError::new(error::BUSY, "too many in-page signal names"));
        }
        r.insert(name.to_string(), shell);
        Ok(())
    })
}

/// Forgets `name`.
pub(crate) fn unregister(name: &str) {
    REGISTRY.with(|r| {
        r.borrow_mut().remove(name);
    });
}

/// Hands an offer to the node registered as `name`; resolves with its answer.
pub(crate) fn signal(name: &str, body: Uint8Array) -> Promise {
    let target = REGISTRY.with(|r| r.borrow().get(name).and_then(Weak::upgrade));
    match target {
        Some(shell) => shell::handle_signal(&shell, body.to_vec()),
        None => Promise::reject(&JsValue::from_str(&format!("no node named {name:?} in this page"))),
    }
}
