//! Nobody can hoard a real server's links. Fifty attackers, each with its own valid session and delegation,
//! bootstrap into one server as raw WebRTC peers (`util::raw_peer`: no node behind them) and then only keep
//! their links alive — a `Ping` with `keep` on every link every second, nothing else. Before the link policy
//! decided for itself which links it needs, a `keep` pinned a link and a joiner never evicted another
//! joiner's: the first attackers held every slot, the rest were refused `busy`, and so was every browser.
//!
//! What must hold, with the attackers still pinging: a new honest client (the core over webrtc-rs, as a
//! browser would run it) joins through that server within 30 s, and the server never has more links than
//! its cap.

mod util;

use std::sync::Arc;
use std::time::Duration;

use chordial_core::node::{describe_frame, Config, Event};
use tokio::sync::Mutex;
use util::raw_peer::RawPeer;
use util::{assert_netns, Client, ClientIdentity, Server, NETWORK};

const ATTACKERS: usize = 50;

/// A link `Ping { nonce, keep: true, range_from: None }` as it travels: the link kind byte, then postcard
/// (variant 0, the nonce as a varint, `true`, `None`).
fn keep_ping(nonce: u8) -> Vec<u8> {
    assert!(nonce < 0x80, "a one-byte varint");
    vec![0x10, 0x00, nonce, 0x01, 0x00]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_hoarding() {
    assert_netns();
    assert_eq!(describe_frame(&keep_ping(1)), Some("Ping"), "the hand-made ping decodes");
    let cap = Config::new(NETWORK, [0; 32]).link_cap() as f64;
    let tmp = util::workdir();
    let server = Arc::new(Server::start(&tmp.path().join("a"), &[]));

    // Every open attacker link gets a keep ping every second, from the moment it opens.
    let peers: Arc<Mutex<Vec<RawPeer>>> = Arc::default();
    let keepalive = {
        let peers = peers.clone();
        tokio::spawn(async move {
            for nonce in (0..0x80).cycle() {
                for p in peers.lock().await.iter().filter(|p| !p.closed()) {
                    p.send(&keep_ping(nonce)).await;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let mut most_links = 0.0f64;
    for i in 0..ATTACKERS {
        let id = ClientIdentity::new(1000 + i as u64);
        let to = server.clone();
        // A refused offer panics inside `connect`: the attacker just goes without a link.
        let task = tokio::spawn(async move { RawPeer::connect(&to, &id).await });
        if let Ok(peer) = task.await {
            peers.lock().await.push(peer);
        }
        most_links = most_links.max(server.metric("chordial_links").await);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let connected = peers.lock().await.len();
    let links = server.metric("chordial_links").await;
    eprintln!("{connected} of {ATTACKERS} attackers got a link; the server has {links} links (cap {cap})");
    assert_eq!(links, cap, "the attackers fill the server");

    let id = ClientIdentity::new(7);
    let mut client = Client::start(&id, &server.url);
    let joined = |e: &Event| matches!(e, Event::Membership { joined: true }).then_some(());
    client.wait_event(30, "the honest client joined", joined).await;
    assert!(client.joined().await);
    let alive_after = peers.lock().await.iter().filter(|p| !p.closed()).count();
    eprintln!("the honest client joined; {alive_after} attackers still hold a link");
    assert!(alive_after > 0, "the attackers were still at it");
    most_links = most_links.max(server.metric("chordial_links").await);
    assert!(most_links <= cap, "the server had {most_links} links, cap {cap}");

    keepalive.abort();
    client.stop().await;
    for p in std::mem::take(&mut *peers.lock().await) {
        p.close().await;
    }
}
