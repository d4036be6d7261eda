//! A real server under attack (issue 16): 70,000 unauthorised `/v1/signal` offers and 70,000 junk frames
//! for it to relay, then a fresh honest client still joins through it and delivers a message within 30 s.
//!
//! What this proves is the core's defence (`handle_bootstrap_offer` checks the offer's time and
//! delegation before its id takes a place in the 65,536-id replay window), not the rate limiter: server
//! A is started with its per-address limit raised out of the way, so every attack offer reaches the
//! node, and the test checks that each one was refused as unauthorised (`refused_identity`) and that none
//! was refused by a limit. The offers are validly shaped and signed envelopes whose delegation lapsed (the
//! attacker's node signs with it anyway), each with a fresh message id. The junk frames carry valid
//! routing headers for a key server B owns, so A relays them (relays do not check signatures) and B drops
//! them (`dropped_invalid`). The rate limit's own 429 is tested in `signal_limits.rs`.
//!
//! The server's peak memory (`VmHWM`) is printed.

mod util;

use std::time::Duration;

use tokio::time::Instant;

use chordial_core::identity::delegation::{delegation_message, DelegationRequest};
use chordial_core::identity::{Delegation, SessionKey, WalletKey};
use chordial_core::node::{Event, SendOutcome};
use chordial_core::wire::envelope::{self, Destination, Header, MessageId, NetworkTag};
use chordial_core::{Id, Timestamp};
use chordial_server::clock;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use util::raw_peer::RawPeer;
use util::{
    assert_netns, poll_until, wait_server_ring, Client, ClientIdentity, HttpConn, Server, LOCALHOST, NETWORK,
};

const OFFERS: usize = 70_000;
const JUNK: usize = 70_000;
/// Connections the attacker posts over at once (HTTP/1.1 keep-alive).
const CONNECTIONS: usize = 4;

/// An attacker's session with a delegation that lapsed ten minutes ago: its node was made while the
/// delegation was valid and signs offers now.
fn lapsed_identity(seed: u64) -> (SessionKey, Delegation, Timestamp) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let wallet = WalletKey::generate(&mut rng);
    let session = SessionKey::generate(&mut rng);
    let mut req = DelegationRequest::new("attacker.local", wallet.address(), 1, NETWORK);
    req.lifetime = Duration::from_secs(60);
    let issued = clock::now().saturating_sub(Duration::from_secs(660));
    let delegation = Delegation::sign(&delegation_message(session.public(), &req, issued, &mut rng), &wallet);
    (session, delegation, issued)
}

/// POSTs `n` fresh unauthorised offers over one keep-alive connection; returns how many got each status.
/// One attacker node signs them all (each offer is a bootstrap link it drops at once).
async fn flood(addr: String, seed: u64, n: usize) -> Vec<(u16, usize)> {
    use chordial_core::node::{BootstrapError, Config, LinkRole, Node, Output};
    let (session, delegation, created) = lapsed_identity(seed);
    let mut node = Node::new(Config::new(NETWORK, [seed as u8; 32]), session, delegation, created).unwrap();
    let mut conn = HttpConn::connect(LOCALHOST, &addr).await;
    let mut statuses: Vec<(u16, usize)> = Vec::new();
    for i in 0..n {
        let now = clock::now();
        node.connect_bootstrap(now, "http://unused");
        let link = poll_until(&mut node, "an offer link", |o| match o {
            Output::OpenLink { link, role: LinkRole::Offer } => Some(link),
            _ => None,
        });
        node.handle_local_description(now, link, "v=0\r\n".into());
        let offer = poll_until(&mut node, "a bootstrap offer", |o| match o {
            Output::BootstrapOffer { offer, .. } => Some(offer),
            _ => None,
        });
        node.handle_bootstrap_failure(now, link, BootstrapError::Timeout);
        while !matches!(node.poll_output(), Output::Timeout(_)) {}
        let (status, _, _) = conn.post_offer(&offer).await;
        match statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, count)) => *count += 1,
            None => statuses.push((status, 1)),
        }
        if (i + 1) % 5_000 == 0 {
            eprintln!("  connection {seed}: {} offers posted", i + 1);
        }
    }
    statuses
}

/// A frame A relays and B drops: a routed envelope with a valid header for the key `dest` and a body
/// that is not a message. Signed by a throwaway key (relays do not look).
fn junk_frame(key: &SessionKey, dest: Id, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let header = Header {
        network: NetworkTag::from_name(NETWORK),
        id: MessageId::random(rng),
        sent_at: clock::now(),
        dest: Destination::Key(dest),
        hop_limit: 48,
        reply_to: None,
    };
    let mut junk = [0u8; 64];
    rng.fill_bytes(&mut junk);
    // A routed frame (kind 0x01) numbered 0 on the link (docs/protocol.md, "Link frames"), then the envelope.
    let mut frame = vec![0x01, 0x00];
    frame.extend(envelope::encode(key, &header, &junk.to_vec()).expect("an envelope"));
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_flooded_with_unauthorised_offers_and_junk_still_lets_a_new_client_in() {
    assert_netns();
    let tmp = util::workdir();
    // The per-address limit out of the way: every attack offer must reach the node.
    let open = ["--signal-address-burst", "4000000000", "--signal-address-per-minute", "4000000000"];
    let a = Server::start_with(&tmp.path().join("a"), &[], "127.0.0.1:0", &open);
    let b = Server::start(&tmp.path().join("b"), &[&a.url]);
    wait_server_ring(&[&a, &b], 60).await;
    let (hwm_before, _) = a.memory_kib();

    // 1. Offers.
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|i| tokio::spawn(flood(a.listen(), 1000 + i as u64, OFFERS / CONNECTIONS)))
        .collect();
    let mut statuses: Vec<(u16, usize)> = Vec::new();
    for t in tasks {
        for (status, n) in t.await.unwrap() {
            match statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, c)) => *c += n,
                None => statuses.push((status, n)),
            }
        }
    }
    eprintln!("{OFFERS} unauthorised offers in {:.1} s: {statuses:?}", started.elapsed().as_secs_f64());
    assert_eq!(statuses, vec![(403, OFFERS)], "every offer reached the node and was refused as unauthorised");
    let st = a.status().await;
    assert!(st["counters"]["refused_identity"].as_u64().unwrap() >= OFFERS as u64, "{}", st["counters"]);
    assert_eq!(st["shell"]["signal_limited_address"], 0);

    // 2. Junk for A to relay to B, from attackers with valid identities and links to A. A closes a link
    //    nobody needs once its grace is over (`idle_link_grace`, 10 s), so the attacker comes back with a
    //    new identity until A has relayed all of it.
    let started = Instant::now();
    let dest = Id::from_hex(&b.node_id).expect("B's node id");
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let key = SessionKey::generate(&mut rng);
    let invalid_before = b.metric("chordial_dropped_invalid_total").await;
    let forwarded_before = a.metric("chordial_forwarded_total").await;
    let (mut sent, mut links, mut forwarded) = (0usize, 0u64, 0.0);
    while forwarded < JUNK as f64 && links < 20 {
        links += 1;
        let peer = RawPeer::connect(&a, &ClientIdentity::new(100 + links)).await;
        loop {
            let frame = junk_frame(&key, dest, &mut rng);
            if !peer.send(&frame).await || peer.closed() {
                break;
            }
            sent += 1;
            if sent % 1_000 == 0
                && a.metric("chordial_forwarded_total").await - forwarded_before >= JUNK as f64
            {
                break;
            }
        }
        peer.close().await;
        forwarded = a.metric("chordial_forwarded_total").await - forwarded_before;
    }
    eprintln!(
        "{sent} junk frames sent over {links} links in {:.1} s; A forwarded {forwarded}",
        started.elapsed().as_secs_f64()
    );
    let relayed_and_dropped = b.metric("chordial_dropped_invalid_total").await - invalid_before;
    eprintln!("B dropped {relayed_and_dropped} invalid frames");
    assert!(forwarded >= JUNK as f64, "A relayed {forwarded} frames, not {JUNK}");

    // 3. A fresh honest client joins through A and delivers a message within 30 s.
    let (xi, yi) = (ClientIdentity::new(20), ClientIdentity::new(21));
    let mut y = Client::start(&yi, &b.url);
    y.wait_event(60, "y joined", |e| matches!(e, Event::Membership { joined: true }).then_some(())).await;
    let t0 = Instant::now();
    let mut x = Client::start(&xi, &a.url);
    x.wait_event(30, "x joined through A", |e| matches!(e, Event::Membership { joined: true }).then_some(()))
        .await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(30).saturating_sub(t0.elapsed()),
        x.send_when_found(yi.wallet.address(), b"still here".to_vec()),
    )
    .await
    .expect("joined and delivered within 30 s");
    assert!(matches!(outcome, SendOutcome::Delivered { .. }), "{outcome:?}");
    eprintln!(
        "after the attack: x joined through A and delivered to y in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let (hwm, rss) = a.memory_kib();
    eprintln!(
        "server A memory: VmHWM {} MiB before the attack, {} MiB peak after it; VmRSS now {} MiB",
        hwm_before / 1024,
        hwm / 1024,
        rss / 1024
    );
    x.stop().await;
    y.stop().await;
}
