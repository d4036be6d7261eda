//! `cargo run -p chordial-server --release --example bench [-- --json FILE]`
//!
//! In one process, over 127.0.0.1 only (run it inside `unshare -n`; see docs/server.md):
//! (a) raw webrtc-rs data channel throughput between two endpoints, with the server's own settings;
//! (b) Chordial messages between two client nodes whose only route is through a server relay —
//!     messages/s, MB/s, p50/p99 latency (send → signed receipt), and the ratio (b)/(a);
//! for 1 KiB and 64 KiB payloads; and (c) memory per open link with 100 links.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chordial_core::identity::delegation::{delegation_message, DelegationRequest};
use chordial_core::identity::{Delegation, SessionKey, WalletKey};
use chordial_core::node::{Config, Event, Node, RequestId, SendOutcome};
use chordial_core::Id;
use chordial_server::cli::Cli;
use chordial_server::rtc::{build_peer_connection, RtcConfig};
use chordial_server::runtime::{self, NodeHandle};
use chordial_server::{clock, server};
use clap::Parser;
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCSessionDescription,
};

const NETWORK: &str = "chordial-bench";
const ORIGIN: &str = "https://bench.chordial.local";
const SIZES: [usize; 2] = [1024, 64 * 1024];

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(serde::Serialize, Default, Clone)]
struct Row {
    payload_bytes: usize,
    raw_messages: usize,
    raw_msgs_per_s: f64,
    raw_mb_per_s: f64,
    routed_messages: usize,
    routed_msgs_per_s: f64,
    routed_mb_per_s: f64,
    routed_p50_ms: f64,
    routed_p99_ms: f64,
    ratio: f64,
}

#[derive(serde::Serialize)]
struct Report {
    rows: Vec<Row>,
    route: String,
    links_for_memory: usize,
    memory_per_link_kib: f64,
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().position(|a| a == "--json").and_then(|i| args.get(i + 1)).cloned();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(run())?;
    let mut out = String::new();
    out.push_str(
        "payload   | raw msgs/s | raw MB/s | routed msgs/s | routed MB/s | p50 ms | p99 ms | routed/raw\n",
    );
    out.push_str(
        "----------|------------|----------|---------------|-------------|--------|--------|-----------\n",
    );
    for r in &report.rows {
        out.push_str(&format!(
            "{:>6} B  | {:>10.0} | {:>8.2} | {:>13.0} | {:>11.2} | {:>6.2} | {:>6.2} | {:>9.1}%\n",
            r.payload_bytes,
            r.raw_msgs_per_s,
            r.raw_mb_per_s,
            r.routed_msgs_per_s,
            r.routed_mb_per_s,
            r.routed_p50_ms,
            r.routed_p99_ms,
            r.ratio * 100.0
        ));
    }
    out.push_str(&format!("route: {}\n", report.route));
    out.push_str(&format!(
        "memory per open link ({} links, both ends in this process): {:.0} KiB per link end (peer connection + data channel)\n",
        report.links_for_memory, report.memory_per_link_kib
    ));
    eprint!("{out}");
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
        eprintln!("wrote {path}");
    }
    Ok(())
}

async fn run() -> Result<Report, Error> {
    let mut rows = Vec::new();
    for size in SIZES {
        let count = if size <= 1024 { 20_000 } else { 1_000 };
        let (secs, n) = raw_throughput(size, count).await?;
        rows.push(Row {
            payload_bytes: size,
            raw_messages: n,
            raw_msgs_per_s: n as f64 / secs,
            raw_mb_per_s: (n * size) as f64 / secs / 1e6,
            ..Row::default()
        });
        eprintln!("raw {size} B: {:.0} msgs/s", n as f64 / secs);
    }
    let (route, routed) = routed_throughput().await?;
    for (row, (n, secs, p50, p99)) in rows.iter_mut().zip(routed) {
        row.routed_messages = n;
        row.routed_msgs_per_s = n as f64 / secs;
        row.routed_mb_per_s = (n * row.payload_bytes) as f64 / secs / 1e6;
        row.routed_p50_ms = p50;
        row.routed_p99_ms = p99;
        row.ratio = row.routed_mb_per_s / row.raw_mb_per_s;
    }
    let links = 100;
    let per_link = memory_per_link(links).await?;
    Ok(Report { rows, route, links_for_memory: links, memory_per_link_kib: per_link })
}

// ---------------------------------------------------------------------------------------------------
// (a) raw data channel
// ---------------------------------------------------------------------------------------------------

struct Handler {
    gathered: mpsc::Sender<()>,
    channel: mpsc::Sender<Arc<dyn DataChannel>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }
    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        let _ = self.channel.try_send(dc);
    }
}

/// Two connected peer connections with the server's settings and their open data channel ends.
async fn pair(
) -> Result<(impl PeerConnection, impl PeerConnection, Arc<dyn DataChannel>, Arc<dyn DataChannel>), Error> {
    let config = RtcConfig { bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), ice_servers: vec![] };
    let (g1, mut g1r) = mpsc::channel(1);
    let (c1, _c1r) = mpsc::channel(1);
    let (g2, mut g2r) = mpsc::channel(1);
    let (c2, mut c2r) = mpsc::channel(1);
    let a = build_peer_connection(&config, Arc::new(Handler { gathered: g1, channel: c1 })).await?;
    let b = build_peer_connection(&config, Arc::new(Handler { gathered: g2, channel: c2 })).await?;
    let da = a
        .create_data_channel("chordial", Some(RTCDataChannelInit { ordered: true, ..Default::default() }))
        .await?;
    let offer = a.create_offer(None).await?;
    a.set_local_description(offer).await?;
    g1r.recv().await;
    let offer = a.local_description().await.ok_or("no offer")?;
    b.set_remote_description(RTCSessionDescription::offer(offer.sdp)?).await?;
    let answer = b.create_answer(None).await?;
    b.set_local_description(answer).await?;
    g2r.recv().await;
    let answer = b.local_description().await.ok_or("no answer")?;
    a.set_remote_description(RTCSessionDescription::answer(answer.sdp)?).await?;
    let db = tokio::time::timeout(Duration::from_secs(20), c2r.recv()).await?.ok_or("no channel")?;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), da.poll()).await? {
            Some(DataChannelEvent::OnOpen) => break,
            Some(_) => continue,
            None => return Err("channel closed".into()),
        }
    }
    Ok((a, b, da, db))
}

async fn raw_throughput(size: usize, count: usize) -> Result<(f64, usize), Error> {
    let (a, b, da, db) = pair().await?;
    let receiver = tokio::spawn(async move {
        let mut got = 0usize;
        let mut bytes = 0usize;
        let mut start = None;
        while let Some(ev) = db.poll().await {
            if let DataChannelEvent::OnMessage(m) = ev {
                start.get_or_insert_with(Instant::now);
                got += 1;
                bytes += m.data.len();
                if got == count {
                    break;
                }
            }
        }
        (start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0), got, bytes)
    });
    let payload = BytesMut::from(&vec![0x5Au8; size][..]);
    for _ in 0..count {
        da.send(payload.clone()).await?;
    }
    let (secs, got, bytes) = tokio::time::timeout(Duration::from_secs(120), receiver).await??;
    assert_eq!(bytes, got * size);
    let _ = a.close().await;
    let _ = b.close().await;
    Ok((secs.max(1e-6), got))
}

// ---------------------------------------------------------------------------------------------------
// (b) routed through a server relay
// ---------------------------------------------------------------------------------------------------

fn identity(id_ok: impl Fn(Id) -> bool) -> (SessionKey, Delegation) {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let mut rng = ChaCha20Rng::from_seed(seed);
    let session = loop {
        let s = SessionKey::generate(&mut rng);
        if id_ok(s.node_id()) {
            break s;
        }
    };
    let wallet = WalletKey::generate(&mut rng);
    let req = DelegationRequest::new("bench.chordial.local", wallet.address(), 1, NETWORK);
    let d = Delegation::sign(&delegation_message(session.public(), &req, clock::now(), &mut rng), &wallet);
    (session, d)
}

/// A client with a minimal link budget (one successor, no fingers), so its traffic goes through servers.
fn client(session: SessionKey, delegation: Delegation, bootstrap: &str) -> Result<NodeHandle, Error> {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let mut config = Config::new(NETWORK, seed);
    config.successors = 1;
    config.max_fingers = 0;
    let node = Node::new(config, session, delegation, clock::now())?;
    let rtc = RtcConfig { bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), ice_servers: vec![] };
    Ok(runtime::spawn(node, rtc, vec![bootstrap.to_string()]).0)
}

async fn wait_until<F, Fut>(secs: u64, what: &str, mut f: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

type RoutedRow = (usize, f64, f64, f64);

async fn routed_throughput() -> Result<(String, Vec<RoutedRow>), Error> {
    let tmp = std::env::temp_dir().join(format!("chordial-bench-{}", std::process::id()));
    let start_server = |name: &str, bootstrap: Option<String>| {
        let dir = tmp.join(name);
        let mut args = vec!["chordial-server".to_string(), "--listen".into(), "127.0.0.1:0".into()];
        args.extend(["--network".into(), NETWORK.into(), "--data-dir".into(), dir.display().to_string()]);
        if let Some(b) = bootstrap {
            args.extend(["--bootstrap".into(), b]);
        }
        Cli::parse_from(args)
    };
    let s1 = server::start(&start_server("s1", None)).await?;
    let s1_url = format!("http://{}", s1.addr);
    let s2 = server::start(&start_server("s2", Some(s1_url.clone()))).await?;
    let (a, b) = (s1.node.node_id.min(s2.node.node_id), s1.node.node_id.max(s2.node.node_id));
    // x on one arc between the servers, y on the other: their ring neighbours are servers only.
    let (xs, xd) = identity(|id| id > a && id < b);
    let (ys, yd) = identity(|id| id > b || id < a);
    let (x_id, y_id) = (xs.node_id(), ys.node_id());
    let x = client(xs, xd, &s1_url)?;
    let y = client(ys, yd, &s1_url)?;
    let y_wallet = y.call(|n, _| n.wallet()).await.ok_or("y stopped")?;
    for h in [&x, &y] {
        wait_until(60, "clients joined", || async {
            h.call(|n, _| !n.inspect().successors().is_empty()).await == Some(true)
        })
        .await?;
    }
    let mut events = x.events();
    // First send: waits until y's presence is findable.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, _) = send_batch(&x, &mut events, y_wallet, 16, 1, 1).await?;
        if ok == 1 {
            break;
        }
        if Instant::now() > deadline {
            return Err("y never became reachable".into());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Links made while both clients were joining close once no role needs them (idle grace).
    let linked = |x: &NodeHandle| {
        let x = x.clone();
        async move {
            x.call(move |n, _| n.inspect().status().links.iter().any(|l| l.peer == Some(y_id))).await
                != Some(false)
        }
    };
    if wait_until(30, "x and y to have no direct link", || async { !linked(&x).await }).await.is_err() {
        eprintln!("warning: x and y stayed directly linked; the 'routed' numbers are for a direct link");
    }
    let direct = linked(&x).await;
    let route = format!(
        "client {}… → {} → client {}… (x–y linked directly: {direct}; x links: {})",
        &x_id.to_string()[..8],
        "server relay",
        &y_id.to_string()[..8],
        x.call(|n, _| n.inspect().link_count()).await.unwrap_or(0)
    );
    let mut rows = Vec::new();
    for size in SIZES {
        let count = if size <= 1024 { 2_000 } else { 300 };
        let received_before = y.call(|n, _| n.inspect().counters().messages_received).await.unwrap_or(0);
        let started = Instant::now();
        let (ok, mut latencies) = send_batch(&x, &mut events, y_wallet, size, count, 32).await?;
        let secs = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let pct =
            |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0.0);
        let received =
            y.call(|n, _| n.inspect().counters().messages_received).await.unwrap_or(0) - received_before;
        eprintln!(
            "routed {size} B: {ok}/{count} delivered with receipts ({received} seen by y) in {secs:.2}s"
        );
        // Where a slow run lost its time: frames re-sent over another link (no acknowledgement in time),
        // frames the shell dropped (a full link queue), messages the recipient refused as too old.
        for (name, h) in [("x", &x), ("y", &y), ("s1", &s1.node), ("s2", &s2.node)] {
            let Some(c) = h.call(|n, _| n.inspect().counters().clone()).await else { continue };
            let full = h.counters.frames_dropped_full.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!(
                "  {name}: forwarded {}, rerouted {}, dropped (queue full) {full}, stale {}, session receipts {}",
                c.forwarded, c.rerouted, c.stale_messages, c.session_receipts
            );
        }
        rows.push((ok, secs, pct(0.5), pct(0.99)));
    }
    x.shutdown().await;
    y.shutdown().await;
    s2.stop().await;
    s1.stop().await;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok((route, rows))
}

/// Sends `count` messages of `size` bytes keeping `window` in flight; returns how many were delivered
/// (receipt back) and each one's latency in ms.
async fn send_batch(
    x: &NodeHandle,
    events: &mut broadcast::Receiver<Event>,
    to: chordial_core::identity::Address,
    size: usize,
    count: usize,
    window: usize,
) -> Result<(usize, Vec<f64>), Error> {
    let payload = vec![0x42u8; size];
    let mut in_flight: HashMap<RequestId, Instant> = HashMap::new();
    let (mut sent, mut done, mut ok) = (0, 0, 0);
    let mut latencies = Vec::with_capacity(count);
    while done < count {
        while sent < count && in_flight.len() < window {
            let p = payload.clone();
            let req = x.call(move |n, now| n.send(now, ORIGIN, to, p)).await.ok_or("x stopped")??;
            in_flight.insert(req, Instant::now());
            sent += 1;
        }
        let event = match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Ok(e)) => e,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err("no send outcome for 30 s".into()),
        };
        let (request, delivered) = match event {
            Event::Sent { request, outcome } => (request, matches!(outcome, SendOutcome::Delivered { .. })),
            Event::RequestFailed { request, .. } => (request, false),
            _ => continue,
        };
        if let Some(t) = in_flight.remove(&request) {
            done += 1;
            if delivered {
                ok += 1;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    Ok((ok, latencies))
}

// ---------------------------------------------------------------------------------------------------
// (c) memory per link
// ---------------------------------------------------------------------------------------------------

fn rss_kib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0.0);
    pages * 4.0
}

async fn memory_per_link(links: usize) -> Result<f64, Error> {
    // One pair first so that lazily initialised state is not counted.
    let warm = pair().await?;
    let before = rss_kib();
    let mut held = Vec::with_capacity(links);
    for _ in 0..links {
        let p = pair().await?;
        // Each end sends a frame so both directions are set up as in use.
        p.2.send(BytesMut::from(&[1u8; 100][..])).await?;
        p.3.send(BytesMut::from(&[1u8; 100][..])).await?;
        held.push(p);
    }
    let after = rss_kib();
    for (a, b, _, _) in held {
        let _ = a.close().await;
        let _ = b.close().await;
    }
    let _ = warm.0.close().await;
    let _ = warm.1.close().await;
    // `links` links, both ends here: 2 × `links` peer connections, each with its data channel.
    Ok((after - before) / (2 * links) as f64)
}
