//! The HTTP face of a server node (axum), on two listeners:
//!
//! - **public** ([`router`]): `POST /v1/signal`, a minimal `GET /v1/status` (network, node id, wallet,
//!   joined, version — nothing about peers) and `GET /healthz`. CORS is open to any origin: the signal
//!   exchange is authenticated by the signatures inside the envelopes, never by cookies or origins.
//!   `/v1/signal` is rate-limited per client address here, before anything is decoded, and per wallet by
//!   the node task once the offer's delegation verified; both answer `429` with `Retry-After`.
//! - **admin** ([`admin_router`], only with `--admin-listen`): the full `GET /v1/status` (links, peers,
//!   RTTs, traffic, counters), `GET /metrics` and `GET /healthz`; no CORS. It is a map of who talks to
//!   this node, so it is for the operator only.
//!
//! Every refusal is a 4xx/5xx with a JSON body `{"error": code, "message": text}`.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use bytes::Bytes;
use chordial_core::node::SignalError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::oneshot;
use tower_http::cors::{Any, CorsLayer};

use crate::limit::{self, Rate, RateTable};
use crate::runtime::{Input, NodeHandle, SignalRefusal, Snapshot};

/// Base64 as used in the signal JSON: standard alphabet, with padding (what `btoa` produces).
pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Largest `/v1/signal` body accepted (an offer is a few KiB: SDP ≤ 16 KiB plus a delegation).
pub const MAX_SIGNAL_BODY: usize = 64 * 1024;
/// How long `/v1/signal` waits for the node's answer (its ICE gathering).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

/// `POST /v1/signal` request body.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignalRequest {
    /// The signed offer envelope, base64.
    pub offer: String,
}

/// `POST /v1/signal` response body: an answer (200) or an error (4xx/5xx).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalReply {
    /// The signed answer envelope, base64.
    Answer {
        /// Base64 of the envelope bytes.
        answer: String,
    },
    /// Why the offer was refused.
    Error {
        /// A stable code (`invalid_json`, `malformed_offer`, `unauthorized`, `busy`, …).
        error: String,
        /// A human-readable explanation.
        message: String,
    },
}

/// The default per-address limit on `/v1/signal`: 30 at once, 120 a minute (generous: many browsers
/// may share one address behind a NAT, and each offers once per join).
pub const DEFAULT_ADDRESS_RATE: Rate = Rate { burst: 30, per_minute: 120 };
/// How many client addresses (and wallets) the limits remember by default; the least recently seen is
/// forgotten first. About 150 bytes each.
pub const DEFAULT_LIMIT_TABLE: usize = 16_384;

/// What the public handlers share.
#[derive(Clone)]
struct Public {
    node: NodeHandle,
    /// `/v1/signal` requests per client address (an IPv4 address or an IPv6 /64).
    addresses: Arc<Mutex<RateTable<IpAddr>>>,
}

/// The public router: `/v1/signal` (limited to `address_rate` per client address, remembering at most
/// `table` addresses), the minimal `/v1/status`, `/healthz`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the limit needs the client's address.
pub fn router(node: NodeHandle, address_rate: Rate, table: usize) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(3600));
    let state = Public { node, addresses: Arc::new(Mutex::new(RateTable::new(address_rate, table))) };
    Router::new()
        .route("/v1/signal", post(signal))
        .route("/v1/status", get(public_status))
        .route("/healthz", get(public_healthz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_SIGNAL_BODY))
        .layer(cors)
        .with_state(state)
}

/// The admin router: the full `/v1/status`, `/metrics`, `/healthz`.
pub fn admin_router(node: NodeHandle) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(node)
}

/// A JSON error response.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = SignalReply::Error { error: code.to_string(), message: message.into() };
    (status, Json(body)).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// A `429 rate_limited` answer that says when to come back.
fn rate_limited(wait: Duration, message: String) -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    let secs = limit::retry_after_secs(wait);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

async fn signal(
    State(public): State<Public>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let node = &public.node;
    let key = limit::address_key(client.ip());
    let allowed = {
        let mut table = public.addresses.lock().unwrap_or_else(|e| e.into_inner());
        table.check(&key, crate::clock::monotonic())
    };
    let response = match allowed {
        Ok(()) => signal_inner(node, body).await,
        Err(wait) => {
            node.counters.signal_limited_address.fetch_add(1, Ordering::Relaxed);
            rate_limited(
                wait,
                format!("too many offers from {key}; retry in {}s", limit::retry_after_secs(wait)),
            )
        }
    };
    let counter = if response.status() == StatusCode::OK {
        &node.counters.signal_answered
    } else {
        &node.counters.signal_refused
    };
    counter.fetch_add(1, Ordering::Relaxed);
    response
}

async fn signal_inner(node: &NodeHandle, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "bad_body" };
            return error(status, code, rejection.body_text());
        }
    };
    let request: SignalRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("expected {{\"offer\": base64}}: {e}"),
            )
        }
    };
    let offer = match B64.decode(request.offer.as_bytes()) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_base64", format!("offer: {e}")),
    };
    let (tx, rx) = oneshot::channel();
    if !node.send(Input::Signal { body: offer, reply: tx }).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the node is stopping");
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
        Ok(Ok(Ok(answer))) => Json(SignalReply::Answer { answer: B64.encode(answer) }).into_response(),
        Ok(Ok(Err(e))) => {
            let (status, code) = match &e {
                SignalRefusal::Node(SignalError::Malformed(_)) => {
                    (StatusCode::BAD_REQUEST, "malformed_offer")
                }
                SignalRefusal::Node(SignalError::NotAnOffer) => (StatusCode::BAD_REQUEST, "not_an_offer"),
                SignalRefusal::Node(SignalError::Replay) => (StatusCode::BAD_REQUEST, "replayed_offer"),
                SignalRefusal::Node(SignalError::Unauthorized(_)) => (StatusCode::FORBIDDEN, "unauthorized"),
                SignalRefusal::Node(SignalError::Busy) | SignalRefusal::Busy => {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy")
                }
                SignalRefusal::BadDescription => (StatusCode::BAD_REQUEST, "bad_description"),
                SignalRefusal::WalletRateLimited(wait) => return rate_limited(*wait, e.to_string()),
            };
            error(status, code, e.to_string())
        }
        Ok(Err(_)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "no_answer", "the link was dropped before an answer")
        }
        Err(_) => error(StatusCode::GATEWAY_TIMEOUT, "timeout", "no answer in time"),
    }
}

async fn status(State(node): State<NodeHandle>) -> Response {
    match node.snapshot().await {
        Some(s) => Json(status_json(&s, &node)).into_response(),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the node is stopping"),
    }
}

async fn healthz(State(node): State<NodeHandle>) -> Response {
    if node.ping().await {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    }
}

async fn public_healthz(State(public): State<Public>) -> Response {
    healthz(State(public.node)).await
}

/// The public `/v1/status`: what any client may know, read from the handle (no work on the node task).
async fn public_status(State(public): State<Public>) -> Response {
    Json(public_status_json(&public.node)).into_response()
}

/// The public `/v1/status` document: nothing about peers, links or traffic.
pub fn public_status_json(node: &NodeHandle) -> serde_json::Value {
    json!({
        "network": node.network,
        "node_id": node.node_id.to_string(),
        "wallet": node.wallet,
        "joined": node.joined.load(Ordering::Relaxed),
        "version": env!("CARGO_PKG_VERSION"),
    })
}

async fn metrics(State(node): State<NodeHandle>) -> Response {
    match node.snapshot().await {
        Some(s) => {
            let text = metrics_text(&s, &node);
            let ct = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
            ([(header::CONTENT_TYPE, ct)], text).into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response(),
    }
}

/// The `/v1/status` document.
pub fn status_json(s: &Snapshot, node: &NodeHandle) -> serde_json::Value {
    let st = &s.status;
    let links: Vec<_> = st
        .links
        .iter()
        .map(|l| {
            json!({
                "link": l.link.0,
                "peer": l.peer.map(|p| p.to_string()),
                "open": l.open,
                "roles": l.roles,
                "rtt_ms": l.rtt.map(|d| d.as_secs_f64() * 1000.0),
                "bytes_in": l.bytes_in,
                "bytes_out": l.bytes_out,
                "max_message": s.max_message.get(&l.link),
            })
        })
        .collect();
    json!({
        "node_id": st.node_id.to_string(),
        "wallet": s.wallet,
        "network": s.network,
        "joined": s.joined,
        "successors": st.successors.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        "predecessor": st.predecessor.map(|p| p.to_string()),
        "fingers": st.fingers.iter().map(|(i, id)| json!({"index": i, "id": id.to_string()})).collect::<Vec<_>>(),
        "links": links,
        "records": s.records,
        "mailbox_entries": s.mailbox_entries,
        "uptime_secs": s.uptime_secs,
        "counters": st.counters,
        "shell": shell_counters(node),
    })
}

fn shell_counters(node: &NodeHandle) -> serde_json::Value {
    let c = &node.counters;
    json!({
        "frames_dropped_full": c.frames_dropped_full.load(Ordering::Relaxed),
        "frames_too_large": c.frames_too_large.load(Ordering::Relaxed),
        "frames_send_failed": c.frames_send_failed.load(Ordering::Relaxed),
        "signal_answered": c.signal_answered.load(Ordering::Relaxed),
        "signal_refused": c.signal_refused.load(Ordering::Relaxed),
        "bootstrap_failed": c.bootstrap_failed.load(Ordering::Relaxed),
        "signal_limited_address": c.signal_limited_address.load(Ordering::Relaxed),
        "signal_limited_wallet": c.signal_limited_wallet.load(Ordering::Relaxed),
        "store_commits": node.store.as_ref().map(|s| s.commits.load(Ordering::Relaxed)),
        "store_writes": node.store.as_ref().map(|s| s.writes.load(Ordering::Relaxed)),
    })
}

/// Prometheus text exposition (version 0.0.4): every node and shell counter, plus gauges.
pub fn metrics_text(s: &Snapshot, node: &NodeHandle) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP chordial_{name} {help}\n# TYPE chordial_{name} {kind}\nchordial_{name} {value}"
        );
    };
    let c = &s.status.counters;
    let counters: [(&str, &str, u64); 23] = [
        ("link_creations_total", "Peer connections ever created", c.link_creations),
        ("direct_links_total", "Direct links offered for a sustained flow", c.direct_links),
        ("frames_in_total", "Frames received", c.frames_in),
        ("frames_out_total", "Frames sent", c.frames_out),
        ("bytes_in_total", "Bytes received", c.bytes_in),
        ("bytes_out_total", "Bytes sent", c.bytes_out),
        ("forwarded_total", "Routed messages forwarded for others", c.forwarded),
        ("rerouted_total", "Routed messages re-sent over the next-best link", c.rerouted),
        ("dropped_invalid_total", "Frames dropped: did not decode, verify or fit", c.dropped_invalid),
        ("dropped_replay_total", "Frames dropped as duplicates or replays", c.dropped_replay),
        ("refused_identity_total", "Messages refused: signer or delegation mismatch", c.refused_identity),
        ("refused_links_total", "Incoming link offers refused by the link policy", c.refused_links),
        ("refused_records_total", "Records refused", c.refused_records),
        ("refused_messages_total", "Messages that could not be opened", c.refused_messages),
        ("messages_received_total", "Messages received", c.messages_received),
        (
            "repeated_messages_total",
            "Messages accepted before, acknowledged again but not delivered again",
            c.repeated_messages,
        ),
        ("stale_messages_total", "Messages refused as too old or dated ahead of the clock", c.stale_messages),
        ("ring_offers_total", "Link offers sent through the ring (sealed)", c.ring_offers),
        (
            "key_requests_total",
            "Ring link offers that first asked the target for its session key",
            c.key_requests,
        ),
        ("route_cache_hits_total", "Sends that reused a recent presence read (no read)", c.route_cache_hits),
        ("undeliverable_total", "Routed messages that could not make progress", c.undeliverable),
        (
            "unsolicited_replies_total",
            "Replies from nodes that were not asked, ignored",
            c.unsolicited_replies,
        ),
        (
            "links_dropped_for_conduct_total",
            "Links closed because their peer misbehaved",
            c.links_dropped_for_conduct,
        ),
    ];
    for (name, help, v) in counters {
        metric(name, "counter", help, v as f64);
    }
    let sc = &node.counters;
    let shell: [(&str, &str, u64); 8] = [
        (
            "frames_dropped_full_total",
            "Frames dropped: link send queue full",
            sc.frames_dropped_full.load(Ordering::Relaxed),
        ),
        (
            "frames_too_large_total",
            "Frames over the link's max message size",
            sc.frames_too_large.load(Ordering::Relaxed),
        ),
        (
            "frames_send_failed_total",
            "Frames the transport could not send",
            sc.frames_send_failed.load(Ordering::Relaxed),
        ),
        ("signal_answered_total", "Signal offers answered", sc.signal_answered.load(Ordering::Relaxed)),
        ("signal_refused_total", "Signal requests refused", sc.signal_refused.load(Ordering::Relaxed)),
        (
            "bootstrap_failed_total",
            "Bootstrap offers that failed",
            sc.bootstrap_failed.load(Ordering::Relaxed),
        ),
        (
            "signal_limited_address_total",
            "Signal requests refused (429) by the per-address limit",
            sc.signal_limited_address.load(Ordering::Relaxed),
        ),
        (
            "signal_limited_wallet_total",
            "Signal offers refused (429) by the per-wallet limit",
            sc.signal_limited_wallet.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, v) in shell {
        metric(name, "counter", help, v as f64);
    }
    let open = s.status.links.iter().filter(|l| l.open).count();
    metric("links", "gauge", "Links open or being set up", s.status.links.len() as f64);
    metric("links_open", "gauge", "Links open", open as f64);
    metric("successors", "gauge", "Successor list length", s.status.successors.len() as f64);
    metric("records", "gauge", "Records held", s.records as f64);
    if let Some(n) = s.mailbox_entries {
        metric("mailbox_entries", "gauge", "Mailbox entries held", n as f64);
    }
    if let Some(store) = &node.store {
        let commits = store.commits.load(Ordering::Relaxed) as f64;
        metric("store_commits_total", "counter", "Store transactions committed", commits);
        let writes = store.writes.load(Ordering::Relaxed) as f64;
        metric("store_writes_total", "counter", "Keys and tombstones written by those transactions", writes);
    }
    metric("joined", "gauge", "1 when the node is part of a ring", if s.joined { 1.0 } else { 0.0 });
    metric("uptime_seconds", "gauge", "Seconds since start", s.uptime_secs as f64);
    out
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::Request;
    use chordial_core::identity::delegation::{delegation_message, DelegationRequest};
    use chordial_core::identity::{Delegation, SessionKey, WalletKey};
    use chordial_core::node::{Config, Node};
    use http_body_util::BodyExt;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use tower::ServiceExt;

    use super::*;
    use crate::rtc::RtcConfig;
    use crate::{clock, runtime};

    /// The public router over a lone node (no bootstrap, no links: nothing leaves the process), for a
    /// client at 192.0.2.1.
    fn app() -> Router {
        at(app_with(DEFAULT_ADDRESS_RATE).0, [192, 0, 2, 1])
    }

    /// `public` as seen by a client at `client`.
    fn at(public: Router, client: [u8; 4]) -> Router {
        public.layer(MockConnectInfo(SocketAddr::from((client, 40_000))))
    }

    /// The public router with a per-address `rate` (serve it through [`at`]), and the admin router.
    fn app_with(rate: Rate) -> (Router, Router) {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let wallet = WalletKey::generate(&mut rng);
        let session = SessionKey::generate(&mut rng);
        let now = clock::now();
        let req = DelegationRequest::new("t.local", wallet.address(), 1, "t");
        let d = Delegation::sign(&delegation_message(session.public(), &req, now, &mut rng), &wallet);
        let node = Node::new(Config::new("t", [1; 32]), session, d, now).unwrap();
        let rtc = RtcConfig { bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), ice_servers: vec![] };
        let (handle, _) = runtime::spawn(node, rtc, vec![]);
        (router(handle.clone(), rate, 16), admin_router(handle))
    }

    async fn call(app: Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let res = app.oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        (parts.status, parts.headers, body.collect().await.unwrap().to_bytes().to_vec())
    }

    fn post(body: impl Into<Body>) -> Request<Body> {
        Request::post("/v1/signal").header("content-type", "application/json").body(body.into()).unwrap()
    }

    fn error_code(body: &[u8]) -> String {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["error"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn signal_refuses_bad_bodies_with_json_errors() {
        let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
            (vec![b'x'; MAX_SIGNAL_BODY + 1], StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            (b"".to_vec(), StatusCode::BAD_REQUEST, "invalid_json"),
            (b"{\"offer\":".to_vec(), StatusCode::BAD_REQUEST, "invalid_json"),
            (b"[1,2]".to_vec(), StatusCode::BAD_REQUEST, "invalid_json"),
            (b"{\"offer\":\"***\"}".to_vec(), StatusCode::BAD_REQUEST, "invalid_base64"),
            (b"{\"offer\":\"AAAA\"}".to_vec(), StatusCode::BAD_REQUEST, "malformed_offer"),
        ];
        for (body, status, code) in cases {
            let (s, _, b) = call(app(), post(body)).await;
            assert_eq!(s, status, "{}", String::from_utf8_lossy(&b));
            assert_eq!(error_code(&b), code);
        }
    }

    #[tokio::test]
    async fn cors_is_open_to_any_origin() {
        let preflight = Request::builder()
            .method("OPTIONS")
            .uri("/v1/signal")
            .header("origin", "chrome-extension://abcdef")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(Body::empty())
            .unwrap();
        let (s, h, _) = call(app(), preflight).await;
        assert!(s.is_success(), "{s}");
        assert_eq!(h["access-control-allow-origin"], "*");
        assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
        let req =
            Request::get("/healthz").header("origin", "https://dapp.example").body(Body::empty()).unwrap();
        let (s, h, b) = call(app(), req).await;
        assert_eq!((s, b.as_slice()), (StatusCode::OK, b"ok\n".as_slice()));
        assert_eq!(h["access-control-allow-origin"], "*");
    }

    #[tokio::test]
    async fn the_public_status_names_the_node_and_nothing_about_its_peers() {
        let (s, _, b) = call(app(), Request::get("/v1/status").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        let mut fields: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["joined", "network", "node_id", "version", "wallet"]);
        assert_eq!(v["network"], "t");
        assert_eq!(v["joined"], true);
        let (s, _, b) = call(app(), Request::get("/metrics").body(Body::empty()).unwrap()).await;
        assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "not_found".to_string()));
    }

    #[tokio::test]
    async fn status_and_metrics_describe_the_node_on_the_admin_listener() {
        let admin = || app_with(DEFAULT_ADDRESS_RATE).1;
        let (s, _, b) = call(admin(), Request::get("/v1/status").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["node_id"].as_str().unwrap().len(), 40);
        assert!(v["wallet"].as_str().unwrap().starts_with("0x"));
        assert_eq!(v["network"], "t");
        assert!(v["successors"].is_array() && v["links"].is_array());
        assert!(v["counters"]["dropped_invalid"].is_u64() && v["shell"]["signal_refused"].is_u64());
        let (s, h, b) = call(admin(), Request::get("/metrics").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        assert!(h["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        let text = String::from_utf8(b).unwrap();
        for name in [
            "chordial_dropped_invalid_total 0",
            "chordial_joined 1",
            "chordial_signal_refused_total 0",
            "chordial_signal_limited_address_total 0",
        ] {
            assert!(text.lines().any(|l| l == name), "{name} missing in\n{text}");
        }
        let (s, _, b) = call(admin(), Request::get("/nope").body(Body::empty()).unwrap()).await;
        assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "not_found".to_string()));
        let (s, _, b) = call(admin(), post("{}")).await;
        assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "not_found".to_string()));
    }

    /// The per-address limit answers before the body is even read: garbage from a limited address gets
    /// 429 with `Retry-After` (not 400), and other addresses are not affected.
    #[tokio::test]
    async fn signal_is_limited_per_client_address_with_429_and_retry_after() {
        let rate = Rate { burst: 2, per_minute: 6 };
        let (public, _) = app_with(rate);
        let limited = || at(public.clone(), [192, 0, 2, 1]);
        for _ in 0..2 {
            let (s, _, b) = call(limited(), post("{}")).await;
            assert_eq!((s, error_code(&b)), (StatusCode::BAD_REQUEST, "invalid_json".to_string()));
        }
        let (s, h, b) = call(limited(), post("{}")).await;
        assert_eq!((s, error_code(&b)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited".to_string()));
        let secs: u64 = h[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=10).contains(&secs), "Retry-After {secs}");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert!(v["message"].as_str().unwrap().contains("192.0.2.1"), "{v}");
        // The same table, another address: served.
        let (s, _, _) = call(at(public.clone(), [192, 0, 2, 2]), post("{}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
}
