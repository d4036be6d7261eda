//! Shared helpers for the process-level tests: start `chordial-server` processes, read their status, and
//! run native test clients (the core driven over webrtc-rs by this crate's own shell).
//!
//! Every test calls [`assert_netns`] first: the tests send real WebRTC traffic and must run inside a
//! private network namespace whose only interface is `lo` (tests/suites/10-server-processes.sh makes one).
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use chordial_core::identity::delegation::{delegation_message, DelegationRequest};
use chordial_core::identity::{Delegation, SessionKey, WalletKey};
use chordial_core::node::{Config, Event, Node};
use chordial_server::clock;
use chordial_server::rtc::RtcConfig;
use chordial_server::runtime::{self, NodeHandle};
use chordial_server::signal_client;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::Value;
use tokio::sync::broadcast;

pub mod raw_peer;

/// The network id the tests use.
pub const NETWORK: &str = "chordial-test";

/// Panics unless this process is in a network namespace whose only interface is loopback.
pub fn assert_netns() {
    // The test process's own nodes (clients) log to stderr; CHORDIAL_TEST_LOG sets the level.
    let filter = std::env::var("CHORDIAL_TEST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false)
        .with_test_writer()
        .try_init();
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let ifaces: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert!(
        ifaces == ["lo"],
        "these tests send real WebRTC traffic: run them inside a private network namespace with only `lo` \
         (tests/suites/10-server-processes.sh does that); interfaces here: {ifaces:?}"
    );
}

/// A directory for a test's servers; kept (and its path printed) when `CHORDIAL_TEST_KEEP` is set, so the
/// servers' logs can be read after a failure.
pub fn workdir() -> tempfile::TempDir {
    let keep = std::env::var_os("CHORDIAL_TEST_KEEP").is_some();
    let dir = tempfile::Builder::new().prefix("chordial-test-").disable_cleanup(keep).tempdir().unwrap();
    if keep {
        eprintln!("test files kept in {}", dir.path().display());
    }
    dir
}

/// A `chordial-server` process; killed (SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin listener, `http://127.0.0.1:PORT` (full status and metrics).
    pub admin_url: String,
    /// Its data dir.
    pub dir: PathBuf,
    /// Its node id (hex).
    pub node_id: String,
    /// Its stderr log.
    pub log: PathBuf,
}

impl Server {
    /// Starts a server with `dir` as data dir, joining through `bootstrap` (if any); waits for its
    /// "listening" line.
    pub fn start(dir: &Path, bootstrap: &[&str]) -> Server {
        Self::start_on(dir, bootstrap, "127.0.0.1:0")
    }

    /// Same, on a given HTTP address (a restarted server keeps its port, so others' bootstrap URLs and
    /// the test's handles stay valid).
    pub fn start_on(dir: &Path, bootstrap: &[&str], listen: &str) -> Server {
        Self::start_with(dir, bootstrap, listen, &[])
    }

    /// Same, with more command-line flags (e.g. rate limits).
    pub fn start_with(dir: &Path, bootstrap: &[&str], listen: &str, flags: &[&str]) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let log = dir.join(format!("server-{}.log", std::process::id() as u64 * 1000 + next_seq()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chordial-server"));
        cmd.args(["--listen", listen, "--admin-listen", "127.0.0.1:0", "--network", NETWORK, "--data-dir"])
            .arg(dir)
            .args(flags)
            .env("RUST_LOG", std::env::var("CHORDIAL_SERVER_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
        for b in bootstrap {
            cmd.args(["--bootstrap", b]);
        }
        let mut child = cmd.spawn().expect("start chordial-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if l.starts_with("listening ") => l,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not start: {other:?}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        Server {
            child: Some(child),
            url: words[1].to_string(),
            admin_url: words.get(7).expect("an admin address on the listening line").to_string(),
            dir: dir.to_path_buf(),
            node_id: words[3].to_string(),
            log,
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let status = Command::new("kill").args(["-TERM", &c.id().to_string()]).status().unwrap();
        assert!(status.success());
        c.wait().unwrap()
    }

    /// The HTTP port.
    pub fn listen(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// The full `GET /v1/status` (admin listener).
    pub async fn status(&self) -> Value {
        get_json(&format!("{}/v1/status", self.admin_url)).await
    }

    /// The public `GET /v1/status`.
    pub async fn public_status(&self) -> Value {
        get_json(&format!("{}/v1/status", self.url)).await
    }

    /// The server's peak resident memory (`VmHWM`, KiB) and current (`VmRSS`, KiB).
    pub fn memory_kib(&self) -> (u64, u64) {
        let pid = self.child.as_ref().expect("running").id();
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// One counter from `/metrics` (e.g. `chordial_dropped_invalid_total`).
    pub async fn metric(&self, name: &str) -> f64 {
        let (status, body) =
            signal_client::request(hyper::Method::GET, &format!("{}/metrics", self.admin_url), vec![])
                .await
                .unwrap();
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no metric {name}"))
            .parse()
            .unwrap()
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn next_seq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// GET a URL and parse its JSON body (panics on anything else).
pub async fn get_json(url: &str) -> Value {
    let (status, body) = signal_client::request(hyper::Method::GET, url, vec![]).await.unwrap();
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `secs` with `what`.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {secs}s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A wallet identity for a test client.
#[derive(Clone)]
pub struct ClientIdentity {
    /// The wallet key.
    pub wallet: WalletKey,
    /// The session key.
    pub session: SessionKey,
    /// The wallet's grant to the session.
    pub delegation: Delegation,
}

impl ClientIdentity {
    /// A fresh identity, random (`seed` is mixed in with OS randomness).
    pub fn new(seed: u64) -> ClientIdentity {
        let mut bytes = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut bytes);
        bytes[..8].iter_mut().zip(seed.to_le_bytes()).for_each(|(b, s)| *b ^= s);
        let mut rng = ChaCha20Rng::from_seed(bytes);
        let wallet = WalletKey::generate(&mut rng);
        let session = SessionKey::generate(&mut rng);
        let req = DelegationRequest::new("test.chordial.local", wallet.address(), 1, NETWORK);
        let delegation =
            Delegation::sign(&delegation_message(session.public(), &req, clock::now(), &mut rng), &wallet);
        ClientIdentity { wallet, session, delegation }
    }
}

/// A native client node: the core driven by this crate's webrtc-rs shell, like a browser would.
pub struct Client {
    /// The node task.
    pub node: NodeHandle,
    /// Its events.
    pub events: broadcast::Receiver<Event>,
    join: Option<tokio::task::JoinHandle<()>>,
}

impl Client {
    /// Starts a client for `id`, joining through `bootstrap`.
    pub fn start(id: &ClientIdentity, bootstrap: &str) -> Client {
        let mut seed = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut seed);
        let node =
            Node::new(Config::new(NETWORK, seed), id.session.clone(), id.delegation.clone(), clock::now())
                .unwrap();
        let rtc = RtcConfig { bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), ice_servers: vec![] };
        let (node, join) = runtime::spawn(node, rtc, vec![bootstrap.to_string()]);
        let events = node.events();
        Client { node, events, join: Some(join) }
    }

    /// Waits for the first event `pick` accepts.
    pub async fn wait_event<T>(
        &mut self,
        secs: u64,
        what: &str,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Ok(e)) => {
                    if let Some(v) = pick(&e) {
                        return v;
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => panic!("node stopped waiting for {what}"),
                Err(_) => panic!("timed out after {secs}s waiting for {what}"),
            }
        }
    }

    /// Whether the node is in the ring with a live successor.
    pub async fn joined(&self) -> bool {
        self.node
            .call(|n, _| n.inspect().is_joined() && !n.inspect().successors().is_empty())
            .await
            .unwrap_or(false)
    }

    /// Leaves gracefully and waits for the node task to end.
    pub async fn stop(mut self) {
        self.node.shutdown().await;
        if let Some(j) = self.join.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), j).await;
        }
    }
}

/// A bootstrap offer envelope (what a joining node POSTs) made by a real core node for `session`: the
/// node is created at `created` (its delegation must be valid then) and signs the offer at `signed`.
pub fn make_offer(
    session: &SessionKey,
    delegation: &Delegation,
    created: chordial_core::Timestamp,
    signed: chordial_core::Timestamp,
) -> Vec<u8> {
    use chordial_core::node::{LinkRole, Output};
    let mut seed = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut seed);
    let mut node =
        Node::new(Config::new(NETWORK, seed), session.clone(), delegation.clone(), created).unwrap();
    node.connect_bootstrap(created, "http://unused");
    let link = poll_until(&mut node, "an offer link", |o| match o {
        Output::OpenLink { link, role: LinkRole::Offer } => Some(link),
        _ => None,
    });
    node.handle_local_description(signed, link, "v=0\r\n".into());
    poll_until(&mut node, "a bootstrap offer", |o| match o {
        Output::BootstrapOffer { offer, .. } => Some(offer),
        _ => None,
    })
}

/// Drains `node`'s outputs until `pick` takes one; panics with `what` if the node is idle first.
pub fn poll_until<T>(
    node: &mut Node,
    what: &str,
    mut pick: impl FnMut(chordial_core::node::Output) -> Option<T>,
) -> T {
    use chordial_core::node::Output;
    loop {
        match node.poll_output() {
            Output::Timeout(_) => panic!("the node produced no {what}"),
            output => {
                if let Some(v) = pick(output) {
                    return v;
                }
            }
        }
    }
}

/// POSTs `body` to a server's `/v1/signal`; returns the status and the parsed JSON body.
pub async fn post_signal(server: &Server, body: Vec<u8>) -> (u16, Value) {
    let (status, bytes) =
        signal_client::request(hyper::Method::POST, &format!("{}/v1/signal", server.url), body)
            .await
            .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!("status {status}: body is not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
    });
    (status, json)
}

/// The app origin test messages are sent from.
pub const ORIGIN: &str = "https://test.chordial.local";

impl Client {
    /// Sends `payload` to `to` and waits for the outcome (`Err` with the failure reason).
    pub async fn send(
        &mut self,
        to: chordial_core::identity::Address,
        payload: Vec<u8>,
    ) -> Result<chordial_core::node::SendOutcome, chordial_core::node::FailReason> {
        let request =
            self.node.call(move |n, now| n.send(now, ORIGIN, to, payload)).await.expect("node running")?;
        self.wait_event(60, "the send's outcome", |e| match e {
            Event::Sent { request: r, outcome } if *r == request => Some(Ok(outcome.clone())),
            Event::RequestFailed { request: r, reason } if *r == request => Some(Err(reason.clone())),
            _ => None,
        })
        .await
    }

    /// Sends until the outcome is not `NotFound` (the recipient's presence may still be on its way).
    pub async fn send_when_found(
        &mut self,
        to: chordial_core::identity::Address,
        payload: Vec<u8>,
    ) -> chordial_core::node::SendOutcome {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match self.send(to, payload.clone()).await {
                Ok(outcome) => return outcome,
                Err(reason) => {
                    assert!(tokio::time::Instant::now() < deadline, "send kept failing: {reason}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

/// Waits until every server's successor list is exactly the other servers' ids in ring order (the ring
/// of servers alone; clients may sit between them, so only servers-only rings are checked this way).
pub async fn wait_server_ring(servers: &[&Server], secs: u64) {
    let mut ids: Vec<String> = servers.iter().map(|s| s.node_id.clone()).collect();
    ids.sort();
    let ids = &ids;
    wait_for(secs, "a correct ring of servers", || async move {
        for s in servers {
            let st = s.status().await;
            let pos = ids.iter().position(|i| *i == s.node_id).unwrap();
            let n = ids.len();
            if st["successors"][0] != ids[(pos + 1) % n].as_str()
                || st["predecessor"] != ids[(pos + n - 1) % n].as_str()
            {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// 127.0.0.1.
pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One HTTP/1.1 keep-alive connection from a chosen source address (any of 127.0.0.0/8 works on `lo`):
/// what the rate-limit tests need to look like many clients, or one.
pub struct HttpConn {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    host: String,
}

impl HttpConn {
    /// Connects from `source` to `addr` (`IP:PORT`).
    pub async fn connect(source: IpAddr, addr: &str) -> HttpConn {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(source, 0)).expect("bind the source address");
        let stream = socket.connect(addr.parse().unwrap()).await.expect("connect");
        // Requests go back to back on this connection: without TCP_NODELAY each would wait out the peer's
        // delayed ACK (40 ms) before its last segment leaves.
        stream.set_nodelay(true).expect("TCP_NODELAY");
        HttpConn { stream: tokio::io::BufReader::new(stream), host: addr.to_string() }
    }

    /// POSTs `{"offer": base64(offer)}` to `/v1/signal`; returns the status, the headers (lowercase
    /// names) and the body.
    pub async fn post_offer(&mut self, offer: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(offer);
        self.post("/v1/signal", format!("{{\"offer\":\"{b64}\"}}").as_bytes()).await
    }

    /// POSTs `body` to `path`; returns the status, the headers (lowercase names) and the body.
    pub async fn post(&mut self, path: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.stream.get_mut().write_all(&request).await.expect("send");
        let mut line = String::new();
        self.stream.read_line(&mut line).await.expect("status line");
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status");
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.expect("a header");
            let Some((name, value)) = line.trim_end().split_once(':') else { break };
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .expect("a content-length");
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await.expect("the body");
        (status, headers, body)
    }
}
