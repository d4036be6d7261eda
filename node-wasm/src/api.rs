//! `ChordialNode`, the JavaScript API (see `docs/api.md`).

use std::time::Duration;

use chordial_core::identity::delegation::{delegation_message, Delegation, DelegationRequest};
use chordial_core::identity::siwe::SiweMessage;
use chordial_core::identity::{Address, SessionKey, WalletSignature};
use chordial_core::node::RequestId;
use js_sys::{Function, Promise, Reflect, Uint8Array};
use rand_core::OsRng;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::error::{self, ApiError};
use crate::js;
use crate::shell::{self, Delegated, RunState, Shell, ShellRef};
use crate::store::{Db, Stored};

/// Default announcement lifetime.
const DEFAULT_TTL_SECS: f64 = 600.0;
/// Longest announcement lifetime accepted (the core also caps it by the delegation's expiry).
const MAX_TTL_SECS: f64 = 30.0 * 24.0 * 3600.0;
/// Longest network id.
const MAX_NETWORK: usize = 64;
/// Most bootstrap servers.
const MAX_BOOTSTRAP: usize = 16;

/// A Chordial node in this page. Create it with `ChordialNode.open(options)`.
#[wasm_bindgen]
pub struct ChordialNode {
    shell: ShellRef,
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() {
        Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

fn opt_string(obj: &JsValue, key: &str) -> Result<Option<String>, ApiError> {
    let v = get(obj, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string().map(Some).ok_or_else(|| ApiError::invalid(format!("{key} must be a string")))
}

fn string_list(v: &JsValue, what: &str, max: usize) -> Result<Vec<String>, ApiError> {
    let Some(arr) = v.dyn_ref::<js_sys::Array>() else {
        return Err(ApiError::invalid(format!("{what} must be an array of strings")));
    };
    if arr.length() as usize > max {
        return Err(ApiError::invalid(format!("{what}: at most {max} entries")));
    }
    arr.iter()
        .map(|x| {
            x.as_string().ok_or_else(|| ApiError::invalid(format!("{what} must be an array of strings")))
        })
        .collect()
}

fn check_bootstrap_url(url: &str) -> Result<(), ApiError> {
    let ok = url.starts_with("http://") || url.starts_with("https://");
    if ok && url.len() <= 2048 {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("bootstrap URL {url:?} must start with http:// or https://")))
    }
}

fn check_network(network: &str) -> Result<(), ApiError> {
    let ok = !network.is_empty()
        && network.len() <= MAX_NETWORK
        && network.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("network must be 1–64 characters of [A-Za-z0-9-._~]"))
    }
}

fn parse_wallet(s: &str) -> Result<Address, ApiError> {
    Address::parse(s).map_err(|e| ApiError::invalid(format!("wallet address {s:?}: {e}")))
}

fn check_origin(origin: &str) -> Result<(), ApiError> {
    if origin.is_empty() {
        return Err(ApiError::invalid("appOrigin must not be empty"));
    }
    Ok(())
}

/// Verifies a delegation for this session and network now.
fn verify(delegation: Delegation, session: &SessionKey, network: &str) -> Result<Delegated, ApiError> {
    let v = delegation
        .verify_for(session.public(), network, js::now())
        .map_err(|e| ApiError::new(error::BAD_SIGNATURE, e.to_string()))?;
    Ok(Delegated { delegation, wallet: v.wallet, expires: v.expires })
}

/// Turns a Rust future's result into a settled Promise with typed errors.
fn promise<F>(f: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, ApiError>> + 'static,
{
    future_to_promise(async move { f.await.map_err(JsValue::from) })
}

/// A promise the core settles: `start` registers the request (or rejects at once).
fn request_promise(
    shell: &ShellRef,
    start: impl FnOnce(&mut chordial_core::node::Node, chordial_core::Timestamp) -> Result<RequestId, ApiError>,
) -> Promise {
    let mut start = Some(start);
    Promise::new(&mut |resolve: Function, reject: Function| {
        let Some(start) = start.take() else { return };
        let mut early: Option<ApiError> = None;
        let ran = shell::input(shell, |s, node, now| {
            if s.state != RunState::Running {
                early = Some(ApiError::new(error::NOT_RUNNING, "the node is not running"));
                return;
            }
            if s.pending_count() >= shell::MAX_PENDING {
                early = Some(ApiError::new(error::BUSY, "too many requests pending"));
                return;
            }
            match start(node, now) {
                Ok(request) => s.track(request, resolve.clone(), reject.clone()),
                Err(e) => early = Some(e),
            }
        });
        if !ran {
            early = Some(match shell.borrow().state {
                RunState::Closed => ApiError::new(error::CLOSED, "the node was closed"),
                _ => ApiError::new(error::NOT_RUNNING, "the node is not running"),
            });
        }
        if let Some(e) = early {
            let _ = reject.call1(&JsValue::NULL, &e.into());
        }
    })
}

fn rejected(e: ApiError) -> Promise {
    Promise::reject(&e.into())
}

impl ChordialNode {
    /// [`ChordialNode::open`] for Rust callers (tests): the node itself rather than a Promise of it.
    pub async fn open_async(options: JsValue) -> Result<ChordialNode, JsValue> {
        console_error_panic_hook::set_once();
        ChordialNode::open_inner(options).await.map_err(JsValue::from)
    }
}

#[wasm_bindgen]
impl ChordialNode {
    /// Opens (or creates) the node's identity for `options.network` and returns the node, not started.
    pub fn open(options: JsValue) -> Promise {
        console_error_panic_hook::set_once();
        promise(async move { ChordialNode::open_inner(options).await.map(JsValue::from) })
    }

    async fn open_inner(options: JsValue) -> Result<ChordialNode, ApiError> {
        if !options.is_object() {
            return Err(ApiError::invalid("options must be an object"));
        }
        let network =
            opt_string(&options, "network")?.ok_or_else(|| ApiError::invalid("network is required"))?;
        check_network(&network)?;
        let bootstrap = match get(&options, "bootstrap") {
            v if v.is_undefined() || v.is_null() => None,
            v => {
                let list = string_list(&v, "bootstrap", MAX_BOOTSTRAP)?;
                list.iter().try_for_each(|u| check_bootstrap_url(u))?;
                Some(list)
            }
        };
        let ice = match get(&options, "iceServers") {
            v if v.is_undefined() || v.is_null() => None,
            v if js_sys::Array::is_array(&v) => Some(v),
            _ => return Err(ApiError::invalid("iceServers must be an array of RTCIceServer")),
        };
        let database = opt_string(&options, "database")?.unwrap_or_else(|| "chordial".to_string());
        if !js::has_webrtc() {
            return Err(ApiError::new(error::UNSUPPORTED, "RTCPeerConnection is not available here"));
        }
        if !js::has_indexed_db() {
            return Err(ApiError::new(error::UNSUPPORTED, "indexedDB is not available here"));
        }
        let db = Db::open(&database, &network).await?;
        let loaded = db.load().await?;
        let (mut stored, mut ice_servers, mut dirty) = match loaded {
            Some((stored, ice)) if stored.session().is_some() => (stored, ice, false),
            _ => {
                let session = SessionKey::generate(&mut OsRng);
                let stored =
                    Stored { version: 1, session_key: hex::encode(session.to_bytes()), ..Default::default() };
                (stored, JsValue::UNDEFINED, true)
            }
        };
        if let Some(list) = bootstrap {
            dirty |= list != stored.bootstrap;
            stored.bootstrap = list;
        }
        if let Some(ice) = ice {
            ice_servers = ice;
            dirty = true;
        }
        if !js_sys::Array::is_array(&ice_servers) {
            ice_servers = js_sys::Array::new().into();
        }
        if dirty {
            db.save(&stored, &ice_servers).await?;
        }
        let session =
            stored.session().ok_or_else(|| ApiError::new(error::STORAGE, "stored session key unreadable"))?;
        // A stored delegation that no longer verifies (expired) is not used; the record keeps it until a new
        // one replaces it.
        let delegated = stored.delegation().and_then(|d| verify(d, &session, &network).ok());
        // A table that cannot be read refuses what was sent before now plus the default clock skew.
        let refuse_until = js::now().saturating_add(chordial_core::node::DEFAULT_CLOCK_SKEW);
        let accepted = db.load_accepted(refuse_until).await?;
        let shell = Shell::new(network, session, delegated, stored, ice_servers, db, accepted);
        Ok(ChordialNode { shell })
    }

    /// The SIWE text for the wallet to sign (`personal_sign`) for `{domain, address, chainId}`.
    #[wasm_bindgen(js_name = delegationRequest)]
    pub fn delegation_request(&self, req: JsValue) -> Promise {
        let shell = self.shell.clone();
        promise(async move {
            let domain =
                opt_string(&req, "domain")?.ok_or_else(|| ApiError::invalid("domain is required"))?;
            let address =
                opt_string(&req, "address")?.ok_or_else(|| ApiError::invalid("address is required"))?;
            let address = parse_wallet(&address)?;
            let chain_id = get(&req, "chainId")
                .as_f64()
                .filter(|c| c.fract() == 0.0 && *c >= 0.0 && *c <= 9_007_199_254_740_991.0)
                .ok_or_else(|| ApiError::invalid("chainId must be a non-negative integer"))?
                as u64;
            let (db, stored, ice) = {
                let mut s = shell.borrow_mut();
                if s.state == RunState::Closed {
                    return Err(ApiError::new(error::CLOSED, "the node was closed"));
                }
                let request = DelegationRequest::new(domain, address, chain_id, s.network.clone());
                let text =
                    delegation_message(s.session.public(), &request, js::now(), &mut OsRng).to_string();
                // The verifier parses exactly this text: refuse a request it would refuse (a bad domain).
                SiweMessage::parse(&text)
                    .map_err(|e| ApiError::invalid(format!("delegation request: {e}")))?;
                s.stored.pending = Some(text);
                (s.db.clone(), s.stored.clone(), s.ice_servers.clone())
            };
            db.save(&stored, &ice).await?;
            Ok(JsValue::from_str(stored.pending.as_deref().unwrap_or_default()))
        })
    }

    /// Verifies and stores the wallet's signature over the last `delegationRequest` text.
    #[wasm_bindgen(js_name = completeDelegation)]
    pub fn complete_delegation(&self, signature: JsValue) -> Promise {
        let shell = self.shell.clone();
        promise(async move {
            let sig = signature
                .as_string()
                .ok_or_else(|| ApiError::invalid("signature must be a 0x hex string"))?;
            let signature = WalletSignature::from_hex(sig.trim())
                .map_err(|e| ApiError::new(error::BAD_SIGNATURE, format!("signature: {e}")))?;
            let (db, stored, ice, delegated) = {
                let mut s = shell.borrow_mut();
                if s.state == RunState::Closed {
                    return Err(ApiError::new(error::CLOSED, "the node was closed"));
                }
                let message = s.stored.pending.clone().ok_or_else(|| {
                    ApiError::new(error::NO_PENDING_REQUEST, "call delegationRequest first")
                })?;
                let delegated =
                    verify(Delegation { message: message.clone(), signature }, &s.session, &s.network)?;
                s.stored.delegation = Some((message, delegated.delegation.signature.to_hex()));
                s.stored.pending = None;
                s.delegated = Some(delegated.clone());
                (s.db.clone(), s.stored.clone(), s.ice_servers.clone(), delegated)
            };
            db.save(&stored, &ice).await?;
            let out = js_sys::Object::new();
            let _ = Reflect::set(&out, &"wallet".into(), &delegated.wallet.to_checksum().into());
            let _ = Reflect::set(&out, &"expires".into(), &(delegated.expires.as_millis() as f64).into());
            Ok(out.into())
        })
    }

    /// Replaces and stores `{bootstrap?, iceServers?}`; used from the next `start()`.
    #[wasm_bindgen(js_name = setSettings)]
    pub fn set_settings(&self, settings: JsValue) -> Promise {
        let shell = self.shell.clone();
        promise(async move {
            let bootstrap = match get(&settings, "bootstrap") {
                v if v.is_undefined() || v.is_null() => None,
                v => {
                    let list = string_list(&v, "bootstrap", MAX_BOOTSTRAP)?;
                    list.iter().try_for_each(|u| check_bootstrap_url(u))?;
                    Some(list)
                }
            };
            let ice = match get(&settings, "iceServers") {
                v if v.is_undefined() || v.is_null() => None,
                v if js_sys::Array::is_array(&v) => Some(v),
                _ => return Err(ApiError::invalid("iceServers must be an array of RTCIceServer")),
            };
            let (db, stored, ice) = {
                let mut s = shell.borrow_mut();
                if let Some(b) = bootstrap {
                    s.stored.bootstrap = b;
                }
                if let Some(i) = ice {
                    s.ice_servers = i;
                }
                (s.db.clone(), s.stored.clone(), s.ice_servers.clone())
            };
            db.save(&stored, &ice).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Creates the core node and starts joining through the bootstrap servers.
    pub fn start(&self) -> Promise {
        let mut seed = [0u8; 32];
        if let Err(e) = getrandom::getrandom(&mut seed) {
            return rejected(ApiError::new(error::UNSUPPORTED, format!("no random source: {e}")));
        }
        match shell::with_shell(&self.shell, |s| s.start(seed)) {
            Ok(()) => {
                // Drain what starting produced (bootstrap offers, the first timer).
                shell::input(&self.shell, |_, _, _| {});
                Promise::resolve(&JsValue::UNDEFINED)
            }
            Err(e) => rejected(e),
        }
    }

    /// Leaves the ring gracefully and closes every link; resolves once done.
    pub fn stop(&self) -> Promise {
        let shell = self.shell.clone();
        Promise::new(&mut |resolve: Function, _reject: Function| {
            let state = shell.borrow().state;
            match state {
                RunState::Idle | RunState::Closed => {
                    let _ = resolve.call0(&JsValue::NULL);
                }
                RunState::Stopping => shell.borrow_mut().wait_stop(resolve),
                RunState::Running => {
                    shell::input(&shell, |s, node, now| s.begin_stop(node, now));
                    shell.borrow_mut().wait_stop(resolve);
                }
            }
        })
    }

    /// Sends `bytes` from `appOrigin` to `toWallet`: resolves `{id, result: 'delivered' | 'stored'}`.
    pub fn send(&self, app_origin: String, to_wallet: String, bytes: Uint8Array) -> Promise {
        let to = match parse_wallet(&to_wallet).and_then(|to| check_origin(&app_origin).map(|_| to)) {
            Ok(to) => to,
            Err(e) => return rejected(e),
        };
        let data = bytes.to_vec();
        request_promise(&self.shell, move |node, now| {
            node.send(now, &app_origin, to, data).map_err(|r| error::from_fail(&r))
        })
    }

    /// The wallet's live sessions: resolves `{wallet, sessions: [{nodeId, session, expires}]}`.
    pub fn lookup(&self, wallet: String) -> Promise {
        match parse_wallet(&wallet) {
            Ok(w) => request_promise(&self.shell, move |node, now| Ok(node.lookup_wallet(now, w))),
            Err(e) => rejected(e),
        }
    }

    /// Announces this wallet on `topic` of `appOrigin` for `ttlSeconds` (default 600).
    pub fn announce(&self, app_origin: String, topic: String, ttl_seconds: Option<f64>) -> Promise {
        let ttl = ttl_seconds.unwrap_or(DEFAULT_TTL_SECS);
        if !(ttl.is_finite() && ttl > 0.0 && ttl <= MAX_TTL_SECS) {
            return rejected(ApiError::invalid("ttlSeconds must be between 0 and 30 days"));
        }
        if let Err(e) = check_origin(&app_origin) {
            return rejected(e);
        }
        let ttl = Duration::from_secs_f64(ttl);
        request_promise(&self.shell, move |node, now| Ok(node.announce(now, &app_origin, &topic, ttl)))
    }

    /// Withdraws this wallet's announcement on `topic` of `appOrigin`.
    pub fn withdraw(&self, app_origin: String, topic: String) -> Promise {
        if let Err(e) = check_origin(&app_origin) {
            return rejected(e);
        }
        request_promise(&self.shell, move |node, now| Ok(node.withdraw(now, &app_origin, &topic)))
    }

    /// The wallets announced on `topic` of `appOrigin`: resolves `[{wallet, announcedAt}]`.
    pub fn discover(&self, app_origin: String, topic: String) -> Promise {
        if let Err(e) = check_origin(&app_origin) {
            return rejected(e);
        }
        request_promise(&self.shell, move |node, now| Ok(node.discover(now, &app_origin, &topic)))
    }

    /// A snapshot: identity, bootstrap, ring, links and counters (see `docs/api.md`).
    pub fn status(&self) -> JsValue {
        js::to_js(&self.shell.borrow().status())
    }

    /// Registers an event listener; returns a token for `offEvent`.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(&self, callback: Function) -> Result<u32, JsValue> {
        self.shell.borrow_mut().add_listener(callback).map_err(JsValue::from)
    }

    /// Removes a listener.
    #[wasm_bindgen(js_name = offEvent)]
    pub fn off_event(&self, token: u32) {
        self.shell.borrow_mut().remove_listener(token);
    }

    /// Answers a bootstrap offer (the body of a `/v1/signal` request) with this node: resolves with the
    /// answer body. The browser side of `/v1/signal`: JavaScript can carry offers to this node over any
    /// channel it has (a relay, another tab), as a `chordial-server` carries them over HTTP.
    #[wasm_bindgen(js_name = handleSignal)]
    pub fn handle_signal(&self, body: Uint8Array) -> Promise {
        shell::handle_signal(&self.shell, body.to_vec())
    }

    /// Pairing without a server, step 1 (on this browser): makes an offer and resolves
    /// `{code, expires}` — a `chordial-offer:` code to carry to the other browser, usable until `expires`
    /// (Unix ms). The offer waits (up to 5 minutes) for `pairComplete` with the other browser's answer.
    #[wasm_bindgen(js_name = pairOffer)]
    pub fn pair_offer(&self) -> Promise {
        shell::pair_offer(&self.shell)
    }

    /// Pairing, step 2 (on the other browser): takes an offer code and resolves `{code, expires}` — the
    /// `chordial-answer:` code to carry back. The link opens when the offering browser completes.
    #[wasm_bindgen(js_name = pairAnswer)]
    pub fn pair_answer(&self, code: String) -> Promise {
        match crate::pairing::decode(crate::pairing::CodeKind::Offer, &code) {
            Ok(frame) => shell::pair_answer(&self.shell, frame),
            Err(e) => rejected(e),
        }
    }

    /// Pairing, step 3 (back on this browser): takes the answer code; resolves `{link, peer}` once the
    /// link to the other browser is open. A refused code changes nothing: the offer keeps waiting.
    #[wasm_bindgen(js_name = pairComplete)]
    pub fn pair_complete(&self, code: String) -> Promise {
        match crate::pairing::decode(crate::pairing::CodeKind::Answer, &code) {
            Ok(frame) => shell::pair_complete(&self.shell, frame),
            Err(e) => rejected(e),
        }
    }

    /// Stops without a graceful leave and closes the node: later calls reject with `CLOSED`.
    pub fn close(&self) {
        shell::with_shell(&self.shell, |s| {
            if s.state != RunState::Closed {
                s.finish_stop(RunState::Closed);
                s.db.close();
            }
        });
    }

    /// Stops, deletes everything stored for this network, and closes the node.
    pub fn forget(&self) -> Promise {
        let shell = self.shell.clone();
        promise(async move {
            let db = shell.borrow().db.clone();
            shell::with_shell(&shell, |s| {
                if s.state != RunState::Closed {
                    s.finish_stop(RunState::Closed);
                }
                s.delegated = None;
                s.stored = Stored::default();
            });
            let result = db.delete().await;
            db.close();
            result.map(|_| JsValue::UNDEFINED)
        })
    }
}
