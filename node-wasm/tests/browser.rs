//! The wasm node in headless Chromium (wasm-bindgen-test; run by `tests/suites/20-wasm-node-in-chromium.sh` inside a
//! private network namespace): two nodes linked in one page (by pairing, with no server) exchange a
//! message through the real RTCPeerConnection shell, and a node's identity survives a reopen through
//! IndexedDB.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use chordial_core::identity::WalletKey;
use chordial_node_wasm::error::CODES;
use chordial_node_wasm::ChordialNode;
use js_sys::{Reflect, Uint8Array};
use rand_core::OsRng;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
export async function grantMedia() {
  // Chromium offers loopback candidates to a page only with media permission (and the command-line flag).
  const s = await navigator.mediaDevices.getUserMedia({ audio: true });
  s.getTracks().forEach((t) => t.stop());
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = grantMedia)]
    fn grant_media() -> js_sys::Promise;
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

fn field(v: &JsValue, path: &str) -> JsValue {
    path.split('.')
        .fold(v.clone(), |v, k| Reflect::get(&v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", (js_sys::Math::random() * 1e12) as u64)
}

async fn open(opts: JsValue) -> ChordialNode {
    ChordialNode::open_async(opts).await.expect("open")
}

async fn rejected_code(p: js_sys::Promise) -> String {
    let e = JsFuture::from(p).await.expect_err("should reject");
    assert_eq!(field(&e, "name").as_string().as_deref(), Some("ChordialError"), "{e:?}");
    let code = field(&e, "code").as_string().expect("code");
    assert_rpc_code(&e, &code);
    code
}

/// The error carries the provider code of its row in the one table (node-wasm/src/error.rs).
fn assert_rpc_code(e: &JsValue, code: &str) {
    let row = CODES.iter().find(|c| c.name == code).unwrap_or_else(|| panic!("{code} is not in CODES"));
    assert_eq!(field(e, "rpcCode").as_f64(), Some(f64::from(row.rpc)), "{code}: {e:?}");
}

/// Retried while the recipient's presence is not stored yet, or the ring is still settling.
const NOT_YET: [&str; 3] = ["NOT_FOUND", "NODE_NOT_FOUND", "TIMEOUT"];

/// Delegates `node` to `wallet` the way a page does: the SIWE text goes to `personal_sign`.
async fn delegate(node: &ChordialNode, wallet: &WalletKey) -> JsValue {
    let req = obj(&[
        ("domain", "localhost:8000".into()),
        ("address", wallet.address().to_checksum().into()),
        ("chainId", 1.into()),
    ]);
    let text = JsFuture::from(node.delegation_request(req)).await.expect("request").as_string().unwrap();
    let sig = wallet.personal_sign(text.as_bytes()).to_hex();
    JsFuture::from(node.complete_delegation(sig.into())).await.expect("complete")
}

/// Collects a node's events.
fn record(node: &ChordialNode) -> Rc<RefCell<Vec<JsValue>>> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let cb = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| l.borrow_mut().push(ev));
    node.on_event(cb.as_ref().unchecked_ref::<js_sys::Function>().clone()).unwrap();
    cb.forget();
    log
}

/// Waits (checking every 50 ms) until `cond` holds; panics with `what` after `ms`.
async fn until(ms: f64, what: &str, mut cond: impl FnMut() -> bool) {
    let end = js_sys::Date::now() + ms;
    while !cond() {
        assert!(js_sys::Date::now() < end, "timed out waiting for {what}");
        gloo_timers::future::TimeoutFuture::new(50).await;
    }
}

fn has_event(log: &Rc<RefCell<Vec<JsValue>>>, ty: &str, key: &str, value: &JsValue) -> bool {
    log.borrow().iter().any(|e| field(e, "type") == ty && field(e, key) == *value)
}

/// Links two running nodes the way two people do without a server (`pairOffer` → `pairAnswer` →
/// `pairComplete`): `offerer`, if alone, joins `answerer`'s ring. Resolves once the link is open.
async fn pair(offerer: &ChordialNode, answerer: &ChordialNode) {
    let offer = JsFuture::from(offerer.pair_offer()).await.expect("offer");
    let answer = JsFuture::from(answerer.pair_answer(field(&offer, "code").as_string().unwrap()))
        .await
        .expect("answer");
    let paired = JsFuture::from(offerer.pair_complete(field(&answer, "code").as_string().unwrap()))
        .await
        .expect("paired");
    assert_eq!(field(&paired, "peer"), field(&answerer.status(), "nodeId"));
}

#[wasm_bindgen_test]
async fn two_nodes_in_one_page_link_and_deliver_a_message() {
    JsFuture::from(grant_media()).await.expect("media permission");
    let network = "wasm-test";
    let (wa, wb) = (WalletKey::generate(&mut OsRng), WalletKey::generate(&mut OsRng));
    let b = open(obj(&[("network", network.into()), ("database", unique("db-b").into())])).await;
    let a = open(obj(&[("network", network.into()), ("database", unique("db-a").into())])).await;
    delegate(&a, &wa).await;
    delegate(&b, &wb).await;
    let (log_a, log_b) = (record(&a), record(&b));
    JsFuture::from(b.start()).await.unwrap();
    JsFuture::from(a.start()).await.unwrap();

    // No server: A pairs with B, and A (alone) joins through B.
    pair(&a, &b).await;
    until(20_000.0, "A to join through B", || has_event(&log_a, "membership", "joined", &true.into())).await;
    let st = a.status();
    assert_eq!(field(&st, "bootstrap.state").as_string().as_deref(), Some("joined"));
    assert!(field(&st, "counters.peerConnectionsCreated").as_f64().unwrap() >= 1.0);
    assert!(has_event(&log_a, "link", "state", &"open".into()));

    // B's presence record must be stored before A can find it: retry while it is not found yet.
    let to = wb.address().to_checksum();
    let payload = Uint8Array::from(&b"hello from a"[..]);
    let end = js_sys::Date::now() + 20_000.0;
    let sent = loop {
        match JsFuture::from(a.send("https://dapp.example".into(), to.clone(), payload.clone())).await {
            Ok(v) => break v,
            Err(e) => {
                let code = field(&e, "code").as_string().unwrap_or_default();
                assert!(NOT_YET.contains(&code.as_str()), "send failed: {e:?}");
                assert_rpc_code(&e, &code);
                assert!(js_sys::Date::now() < end, "B never became reachable: {e:?}");
                gloo_timers::future::TimeoutFuture::new(200).await;
            }
        }
    };
    assert_eq!(field(&sent, "result").as_string().as_deref(), Some("delivered"));
    until(5_000.0, "B to receive the message", || {
        has_event(&log_b, "message", "appOrigin", &"https://dapp.example".into())
    })
    .await;
    let msg = log_b.borrow().iter().find(|e| field(e, "type") == "message").cloned().unwrap();
    assert_eq!(field(&msg, "from").as_string(), Some(wa.address().to_checksum()));
    let data = field(&msg, "data");
    assert!(data.is_instance_of::<Uint8Array>(), "message data must be a Uint8Array: {data:?}");
    assert_eq!(Uint8Array::new(&data).to_vec(), b"hello from a");

    // lookup and discover go through the same links.
    let found = JsFuture::from(a.lookup(to.clone())).await.unwrap();
    assert_eq!(js_sys::Array::from(&field(&found, "sessions")).length(), 1);
    JsFuture::from(b.announce("https://dapp.example".into(), "room".into(), None)).await.unwrap();
    let members = JsFuture::from(a.discover("https://dapp.example".into(), "room".into())).await.unwrap();
    let members = js_sys::Array::from(&members);
    assert_eq!(members.length(), 1);
    assert_eq!(field(&members.get(0), "wallet").as_string(), Some(to.clone()));

    // Typed errors for bad input, never a panic.
    let code = rejected_code(a.send("https://dapp.example".into(), "0x1234".into(), payload.clone())).await;
    assert_eq!(code, "INVALID_ARGUMENT");
    let big = Uint8Array::new_with_length(65 * 1024);
    assert_eq!(rejected_code(a.send("https://d.example".into(), to.clone(), big)).await, "TOO_LARGE");
    assert_eq!(rejected_code(a.start()).await, "ALREADY_RUNNING");

    // Stopping closes every peer connection it created.
    JsFuture::from(a.stop()).await.unwrap();
    JsFuture::from(b.stop()).await.unwrap();
    for n in [&a, &b] {
        let st = n.status();
        assert_eq!(field(&st, "state").as_string().as_deref(), Some("idle"));
        assert_eq!(field(&st, "counters.peerConnectionsOpen").as_f64(), Some(0.0));
    }
    let closed_with_peer = log_a
        .borrow()
        .iter()
        .any(|e| field(e, "type") == "link" && field(e, "state") == "closed" && field(e, "peer").is_string());
    assert!(closed_with_peer, "link close events name the peer");
    assert!(has_event(&log_a, "state", "state", &"idle".into()));
    assert_eq!(rejected_code(a.lookup(to)).await, "NOT_RUNNING");
    JsFuture::from(a.forget()).await.unwrap();
    JsFuture::from(b.forget()).await.unwrap();
}

#[wasm_bindgen_test]
async fn identity_and_settings_survive_a_reopen_through_indexeddb() {
    let db = unique("db-persist");
    let opts = || obj(&[("network", "persist".into()), ("database", db.clone().into())]);
    let wallet = WalletKey::generate(&mut OsRng);
    let boot = js_sys::Array::of1(&"http://127.0.0.1:9".into());
    let first = open(obj(&[
        ("network", "persist".into()),
        ("database", db.clone().into()),
        ("bootstrap", boot.into()),
    ]))
    .await;
    // Bootstrap URLs are chordial-servers' http(s) URLs; any other scheme is refused.
    for url in ["inpage:b", "ftp://127.0.0.1"] {
        let settings = obj(&[("bootstrap", js_sys::Array::of1(&url.into()).into())]);
        assert_eq!(rejected_code(first.set_settings(settings)).await, "INVALID_ARGUMENT", "{url}");
    }
    assert_eq!(rejected_code(first.start()).await, "NO_DELEGATION");
    assert_eq!(rejected_code(first.complete_delegation("0x00".into())).await, "BAD_SIGNATURE");
    // A signature by another wallet over the requested text does not verify.
    let req = obj(&[
        ("domain", "localhost".into()),
        ("address", wallet.address().to_checksum().into()),
        ("chainId", 1.into()),
    ]);
    let text = JsFuture::from(first.delegation_request(req)).await.unwrap().as_string().unwrap();
    let other = WalletKey::generate(&mut OsRng).personal_sign(text.as_bytes()).to_hex();
    assert_eq!(rejected_code(first.complete_delegation(other.into())).await, "BAD_SIGNATURE");
    let bad = obj(&[("domain", "x".into()), ("address", "nope".into()), ("chainId", 1.into())]);
    assert_eq!(rejected_code(first.delegation_request(bad)).await, "INVALID_ARGUMENT");

    let done = delegate(&first, &wallet).await;
    assert_eq!(field(&done, "wallet").as_string(), Some(wallet.address().to_checksum()));
    let before = first.status();
    first.close();
    assert_eq!(rejected_code(first.start()).await, "CLOSED");

    // Reopen: same session, same delegation, stored bootstrap list — no new signature.
    let second = open(opts()).await;
    let after = second.status();
    for key in ["sessionKey", "nodeId", "wallet", "sessionExpires"] {
        assert_eq!(field(&after, key), field(&before, key), "{key} after reopen");
    }
    assert_eq!(field(&after, "wallet").as_string(), Some(wallet.address().to_checksum()));
    let servers = js_sys::Array::from(&field(&after, "bootstrap.servers"));
    assert_eq!(field(&servers.get(0), "url").as_string().as_deref(), Some("http://127.0.0.1:9"));
    // It starts without a new signature (the unreachable bootstrap server fails, reported as an event).
    let log = record(&second);
    JsFuture::from(second.start()).await.unwrap();
    until(15_000.0, "the bootstrap failure", || has_event(&log, "bootstrap", "state", &"failed".into()))
        .await;
    JsFuture::from(second.stop()).await.unwrap();

    // forget() clears it all: the next open is a new identity without a delegation.
    JsFuture::from(second.forget()).await.unwrap();
    let third = open(opts()).await;
    let fresh = third.status();
    assert_ne!(field(&fresh, "sessionKey"), field(&before, "sessionKey"));
    assert!(field(&fresh, "wallet").is_null());
    JsFuture::from(third.forget()).await.unwrap();
}

/// Sends `text` from `from` to `to_wallet`, retrying while the recipient's presence is not stored yet.
async fn send_when_found(from: &ChordialNode, to_wallet: &str, text: &[u8]) -> JsValue {
    let payload = Uint8Array::from(text);
    let end = js_sys::Date::now() + 30_000.0;
    loop {
        match JsFuture::from(from.send("https://dapp.example".into(), to_wallet.into(), payload.clone()))
            .await
        {
            Ok(v) => break v,
            Err(e) => {
                let code = field(&e, "code").as_string().unwrap_or_default();
                assert!(NOT_YET.contains(&code.as_str()), "send failed: {e:?}");
                assert_rpc_code(&e, &code);
                assert!(js_sys::Date::now() < end, "the recipient never became reachable: {e:?}");
                gloo_timers::future::TimeoutFuture::new(200).await;
            }
        }
    }
}

/// Replaces the character at `at` (in the base64 part) with another base64url character.
fn damage(code: &str, at: usize) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[wasm_bindgen_test]
async fn two_lone_nodes_pair_through_codes_and_message_both_ways() {
    JsFuture::from(grant_media()).await.expect("media permission");
    let network = "wasm-pair";
    let (wa, wb) = (WalletKey::generate(&mut OsRng), WalletKey::generate(&mut OsRng));
    let a = open(obj(&[("network", network.into()), ("database", unique("db-pa").into())])).await;
    let b = open(obj(&[("network", network.into()), ("database", unique("db-pb").into())])).await;
    assert_eq!(rejected_code(a.pair_offer()).await, "NOT_RUNNING");
    delegate(&a, &wa).await;
    delegate(&b, &wb).await;
    let (log_a, log_b) = (record(&a), record(&b));
    JsFuture::from(a.start()).await.unwrap();
    JsFuture::from(b.start()).await.unwrap();

    let t0 = js_sys::Date::now();
    let offer = JsFuture::from(a.pair_offer()).await.expect("offer");
    let offer_code = field(&offer, "code").as_string().unwrap();
    assert!(offer_code.starts_with("chordial-offer:"), "{offer_code}");
    let expires = field(&offer, "expires").as_f64().unwrap();
    assert!(expires > t0 + 290_000.0 && expires < js_sys::Date::now() + 301_000.0, "expires {expires}");

    // Mistakes on the answering side: refused, with a code, and nothing used up.
    assert_eq!(rejected_code(b.pair_answer("hello".into())).await, "BAD_CODE");
    assert_eq!(rejected_code(b.pair_answer(damage(&offer_code, offer_code.len() / 2))).await, "BAD_CODE");
    assert_eq!(rejected_code(b.pair_answer(offer_code[..offer_code.len() - 40].into())).await, "BAD_CODE");
    assert_eq!(rejected_code(a.pair_answer(offer_code.clone())).await, "BAD_CODE", "its own offer");
    let answer = JsFuture::from(b.pair_answer(format!("  {offer_code}\n"))).await.expect("answer");
    let answer_code = field(&answer, "code").as_string().unwrap();
    assert!(answer_code.starts_with("chordial-answer:"), "{answer_code}");
    assert_eq!(field(&answer, "expires").as_f64(), Some(expires), "the answer is good as long as the offer");
    assert_eq!(rejected_code(b.pair_answer(offer_code.clone())).await, "CODE_USED");

    // Mistakes on the offering side: the offer keeps waiting.
    assert_eq!(rejected_code(a.pair_complete(offer_code.clone())).await, "BAD_CODE");
    assert_eq!(rejected_code(a.pair_complete(damage(&answer_code, 100))).await, "BAD_CODE");
    let paired = JsFuture::from(a.pair_complete(answer_code.clone())).await.expect("paired");
    assert_eq!(field(&paired, "peer"), field(&b.status(), "nodeId"));
    assert_eq!(rejected_code(a.pair_complete(answer_code)).await, "NO_MATCHING_OFFER");

    until(20_000.0, "both nodes to be in one ring", || {
        has_event(&log_a, "membership", "joined", &true.into())
            && has_event(&log_b, "membership", "joined", &true.into())
    })
    .await;
    let st = a.status();
    assert_eq!(js_sys::Array::from(&field(&st, "successors")).get(0), field(&b.status(), "nodeId"));
    // Pings measure the link's round trip (the popup shows it).
    until(10_000.0, "an RTT on the paired link", || {
        let links = js_sys::Array::from(&field(&a.status(), "links"));
        links.length() == 1 && field(&links.get(0), "rttMs").as_f64().is_some()
    })
    .await;

    let sent = send_when_found(&a, &wb.address().to_checksum(), b"from a").await;
    assert_eq!(field(&sent, "result").as_string().as_deref(), Some("delivered"));
    let sent = send_when_found(&b, &wa.address().to_checksum(), b"from b").await;
    assert_eq!(field(&sent, "result").as_string().as_deref(), Some("delivered"));
    until(5_000.0, "both messages", || {
        has_event(&log_a, "message", "appOrigin", &"https://dapp.example".into())
            && has_event(&log_b, "message", "appOrigin", &"https://dapp.example".into())
    })
    .await;
    for (log, from, text) in [(&log_b, &wa, &b"from a"[..]), (&log_a, &wb, &b"from b"[..])] {
        let msg = log.borrow().iter().find(|e| field(e, "type") == "message").cloned().unwrap();
        assert_eq!(field(&msg, "from").as_string(), Some(from.address().to_checksum()));
        assert_eq!(Uint8Array::new(&field(&msg, "data")).to_vec(), text);
    }

    JsFuture::from(a.stop()).await.unwrap();
    JsFuture::from(b.stop()).await.unwrap();
    JsFuture::from(a.forget()).await.unwrap();
    JsFuture::from(b.forget()).await.unwrap();
}
