//! The HTTP face of a server node (axum): `POST /v1/signal`, `GET /v1/status`, `GET /metrics`,
//! `GET /healthz`. CORS is open to any origin: the signal exchange is authenticated by the signatures
//! inside the envelopes, never by cookies or origins. Every refusal is a 4xx/5xx with a JSON body
//! `{"error": code, "message": text}`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
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

/// The router for a node.
pub fn router(node: NodeHandle) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(3600));
    Router::new()
        .route("/v1/signal", post(signal))
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_SIGNAL_BODY))
        .layer(cors)
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

async fn signal(State(node): State<NodeHandle>, body: Result<Bytes, BytesRejection>) -> Response {
    let response = signal_inner(&node, body).await;
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
    match node.snapshot().await {
        Some(_) => (StatusCode::OK, "ok\n").into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response(),
    }
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
    let counters: [(&str, &str, u64); 15] = [
        ("link_creations_total", "Peer connections ever created", c.link_creations),
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
        ("undeliverable_total", "Routed messages that could not make progress", c.undeliverable),
    ];
    for (name, help, v) in counters {
        metric(name, "counter", help, v as f64);
    }
    let sc = &node.counters;
    let shell: [(&str, &str, u64); 6] = [
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
    ];
    for (name, help, v) in shell {
        metric(name, "counter", help, v as f64);
    }
    let open = s.status.links.iter().filter(|l| l.open).count();
    metric("links", "gauge", "Links open or being set up", s.status.links.len() as f64);
    metric("links_open", "gauge", "Links open", open as f64);
    metric("successors", "gauge", "Successor list length", s.status.successors.len() as f64);
    metric("records", "gauge", "Records held", s.records as f64);
    metric("mailbox_entries", "gauge", "Mailbox entries held", s.mailbox_entries as f64);
    metric("joined", "gauge", "1 when the node is part of a ring", if s.joined { 1.0 } else { 0.0 });
    metric("uptime_seconds", "gauge", "Seconds since start", s.uptime_secs as f64);
    out
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use axum::body::Body;
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

    /// A router over a lone node (no bootstrap, no links: nothing leaves the process).
    fn app() -> Router {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let wallet = WalletKey::generate(&mut rng);
        let session = SessionKey::generate(&mut rng);
        let now = clock::now();
        let req = DelegationRequest::new("t.local", wallet.address(), 1, "t");
        let d = Delegation::sign(&delegation_message(session.public(), &req, now, &mut rng), &wallet);
        let node = Node::new(Config::new("t", [1; 32]), session, d, now).unwrap();
        let rtc = RtcConfig { bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), ice_servers: vec![] };
        let (handle, _) = runtime::spawn(node, rtc, vec![]);
        router(handle)
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
    async fn status_and_metrics_describe_the_node() {
        let (s, _, b) = call(app(), Request::get("/v1/status").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["node_id"].as_str().unwrap().len(), 40);
        assert!(v["wallet"].as_str().unwrap().starts_with("0x"));
        assert_eq!(v["network"], "t");
        assert!(v["successors"].is_array() && v["links"].is_array());
        assert!(v["counters"]["dropped_invalid"].is_u64() && v["shell"]["signal_refused"].is_u64());
        let (s, h, b) = call(app(), Request::get("/metrics").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        assert!(h["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        let text = String::from_utf8(b).unwrap();
        for name in
            ["chordial_dropped_invalid_total 0", "chordial_joined 1", "chordial_signal_refused_total 0"]
        {
            assert!(text.lines().any(|l| l == name), "{name} missing in\n{text}");
        }
        let (s, _, b) = call(app(), Request::get("/nope").body(Body::empty()).unwrap()).await;
        assert_eq!((s, error_code(&b)), (StatusCode::NOT_FOUND, "not_found".to_string()));
    }
}
