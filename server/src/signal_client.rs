//! The joining side of `POST /v1/signal`: sends our signed offer to a bootstrap server, returns its
//! signed answer. Plain HTTP/1.1 over TCP (servers join servers on private or loopback addresses; a
//! browser reaches a public server through HTTPS at a reverse proxy — see `docs/server.md`).

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use chordial_core::node::{BootstrapError, RefusalKind};
use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;
use hyper_util::rt::TokioIo;

use crate::http::{SignalReply, SignalRequest, B64};

/// Largest response body read.
pub const MAX_RESPONSE: usize = 1 << 20;

/// The whole exchange (connect, the server's ICE gathering, the answer) must finish within this.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a bootstrap exchange failed (reported to the node as a bootstrap failure).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http://host:port[/path]`.
    #[error("bad bootstrap URL: {0}")]
    BadUrl(String),
    /// Connecting or talking to the server failed.
    #[error("{0}")]
    Io(String),
    /// The server refused the offer (status and its JSON error message).
    #[error("server answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's explanation.
        message: String,
    },
    /// The answer is not the expected JSON.
    #[error("bad answer: {0}")]
    BadAnswer(String),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
}

impl From<ClientError> for BootstrapError {
    /// What the node hears of a failed exchange ([`chordial_core::node::Node::handle_bootstrap_failure`]).
    fn from(e: ClientError) -> BootstrapError {
        match e {
            ClientError::BadUrl(detail) | ClientError::Io(detail) => BootstrapError::Unreachable { detail },
            ClientError::Refused { status, message } => BootstrapError::Refused {
                kind: RefusalKind::from_http_status(status),
                detail: format!("HTTP {status}: {message}"),
            },
            ClientError::BadAnswer(detail) => BootstrapError::BadAnswer { detail },
            ClientError::Timeout => BootstrapError::Timeout,
        }
    }
}

/// Checks a bootstrap URL (`http://host:port`, optional path prefix) and returns the `/v1/signal` URI.
pub fn signal_uri(base: &str) -> Result<Uri, ClientError> {
    let uri: Uri = base.parse().map_err(|e| ClientError::BadUrl(format!("{base}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(ClientError::BadUrl(format!("{base}: only http:// is supported by the native client")));
    }
    let Some(authority) = uri.authority() else {
        return Err(ClientError::BadUrl(format!("{base}: no host")));
    };
    let prefix = uri.path().trim_end_matches('/');
    format!("http://{authority}{prefix}/v1/signal")
        .parse()
        .map_err(|e| ClientError::BadUrl(format!("{base}: {e}")))
}

/// POSTs `offer` (envelope bytes) to `base`'s `/v1/signal` and returns the answer's envelope bytes.
pub async fn post_offer(base: &str, offer: &[u8]) -> Result<Vec<u8>, ClientError> {
    tokio::time::timeout(SIGNAL_TIMEOUT, exchange(base, offer)).await.map_err(|_| ClientError::Timeout)?
}

async fn exchange(base: &str, offer: &[u8]) -> Result<Vec<u8>, ClientError> {
    let uri = signal_uri(base)?;
    let body = serde_json::to_vec(&SignalRequest { offer: B64.encode(offer) })
        .map_err(|e| ClientError::Io(e.to_string()))?;
    let (status, bytes) = request(hyper::Method::POST, &uri.to_string(), body).await?;
    let reply: SignalReply = serde_json::from_slice(&bytes)
        .map_err(|e| ClientError::BadAnswer(format!("status {status}: {e}")))?;
    match reply {
        SignalReply::Answer { answer } if status == 200 => {
            B64.decode(answer.as_bytes()).map_err(|e| ClientError::BadAnswer(e.to_string()))
        }
        SignalReply::Error { message, .. } => Err(ClientError::Refused { status, message }),
        SignalReply::Answer { .. } => {
            Err(ClientError::Refused { status, message: "answer with an error status".into() })
        }
    }
}

/// One plain HTTP/1.1 request (`http://` only); returns the status and the body (at most
/// [`MAX_RESPONSE`] bytes). Used by the bootstrap exchange, the tests and the benchmark.
pub async fn request(method: hyper::Method, url: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>), ClientError> {
    let uri: Uri = url.parse().map_err(|e| ClientError::BadUrl(format!("{url}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(ClientError::BadUrl(format!("{url}: only http:// is supported")));
    }
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    let stream =
        tokio::net::TcpStream::connect((host, port)).await.map_err(|e| ClientError::Io(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Io(e.to_string()))?;
    let conn = tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ClientError::Io(e.to_string()))?;
    let response = sender.send_request(request).await.map_err(|e| ClientError::Io(e.to_string()))?;
    let status = response.status().as_u16();
    let bytes = Limited::new(response.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| ClientError::Io(e.to_string()))?
        .to_bytes();
    conn.abort();
    Ok((status, bytes.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_urls_are_checked() {
        assert_eq!(
            signal_uri("http://127.0.0.1:7700").unwrap().to_string(),
            "http://127.0.0.1:7700/v1/signal"
        );
        assert_eq!(signal_uri("http://h:1/chordial/").unwrap().to_string(), "http://h:1/chordial/v1/signal");
        assert!(matches!(signal_uri("https://h:1"), Err(ClientError::BadUrl(_))));
        assert!(matches!(signal_uri("127.0.0.1:7700"), Err(ClientError::BadUrl(_))));
        assert!(matches!(signal_uri("not a url"), Err(ClientError::BadUrl(_))));
    }

    #[test]
    fn failures_reach_the_node_typed() {
        let refused = ClientError::Refused { status: 503, message: "busy".into() };
        assert_eq!(
            BootstrapError::from(refused),
            BootstrapError::Refused { kind: RefusalKind::Busy, detail: "HTTP 503: busy".into() }
        );
        let forbidden = BootstrapError::from(ClientError::Refused { status: 403, message: "no".into() });
        assert!(matches!(forbidden, BootstrapError::Refused { kind: RefusalKind::Unauthorized, .. }));
        assert_eq!(BootstrapError::from(ClientError::Timeout), BootstrapError::Timeout);
        let io = BootstrapError::from(ClientError::Io("connection refused".into()));
        assert_eq!(io, BootstrapError::Unreachable { detail: "connection refused".into() });
        assert_eq!(io.to_string(), "server unreachable: connection refused");
        assert!(matches!(
            BootstrapError::from(ClientError::BadAnswer("x".into())),
            BootstrapError::BadAnswer { .. }
        ));
    }
}
