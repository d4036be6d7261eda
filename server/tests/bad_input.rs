//! Bad input at a running server: oversized, non-JSON, non-base64 and malformed bodies, a forged
//! signature, an expired delegation, a replayed offer, and 1,000 garbage frames on an open link from a raw
//! WebRTC peer (see `util::raw_peer`). Each is refused with the right status and a JSON error, or dropped
//! and counted in `/metrics`; meanwhile the server keeps serving (health, a ring with a second server, a new
//! client joining).

mod util;

use std::time::Duration;

use base64::Engine;
use chordial_core::identity::delegation::{delegation_message, DelegationRequest};
use chordial_core::identity::{Delegation, SessionKey};
use chordial_core::node::Event;
use chordial_server::clock;
use chordial_server::http::B64;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use util::raw_peer::RawPeer;
use util::{assert_netns, make_offer, post_signal, wait_for, Client, ClientIdentity, Server};

fn offer_json(offer: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "offer": B64.encode(offer) })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input() {
    assert_netns();
    let tmp = util::workdir();
    let a = Server::start(&tmp.path().join("a"), &[]);
    let b = Server::start(&tmp.path().join("b"), &[&a.url]);
    let (ar, br) = (&a, &b);
    wait_for(60, "a ring of two servers", || async move {
        let (sa, sb) = (ar.status().await, br.status().await);
        (sa["successors"][0] == br.node_id.as_str() && sb["successors"][0] == ar.node_id.as_str())
            .then_some(())
    })
    .await;
    let refused_before = a.metric("chordial_signal_refused_total").await;

    // Oversized body.
    let (status, body) = post_signal(&a, vec![b'{'; 100 * 1024]).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("body_too_large")), "{body}");
    // Not JSON, JSON of the wrong shape, not base64, base64 of garbage.
    let (status, body) = post_signal(&a, b"{not json".to_vec()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_json")), "{body}");
    let (status, body) = post_signal(&a, br#"{"offer": 5}"#.to_vec()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_json")), "{body}");
    let (status, body) = post_signal(&a, br#"{"offer": "!!not base64!!"}"#.to_vec()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_base64")), "{body}");
    let (status, body) = post_signal(&a, offer_json(&[1u8; 300])).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("malformed_offer")), "{body}");

    // A valid-looking offer whose signature is forged: another session's key put in the origin field.
    let now = clock::now();
    let id = ClientIdentity::new(1);
    let mut forged = make_offer(&id.session, &id.delegation, now, now);
    let other = SessionKey::generate(&mut ChaCha20Rng::seed_from_u64(now.0));
    forged[2..35].copy_from_slice(other.public().as_bytes());
    let (status, body) = post_signal(&a, offer_json(&forged)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("malformed_offer")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("signature"), "{body}");

    // An offer signed now under a delegation that expired five seconds ago.
    let mut rng = ChaCha20Rng::seed_from_u64(now.0 ^ 1);
    let issued = chordial_core::Timestamp(now.0 - 10_000);
    let mut req = DelegationRequest::new("test.chordial.local", id.wallet.address(), 1, util::NETWORK);
    req.lifetime = Duration::from_secs(5);
    let expired =
        Delegation::sign(&delegation_message(id.session.public(), &req, issued, &mut rng), &id.wallet);
    let offer = make_offer(&id.session, &expired, chordial_core::Timestamp(issued.0 + 1000), now);
    let (status, body) = post_signal(&a, offer_json(&offer)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("unauthorized")), "{body}");

    // A signed, authorised offer whose SDP is not a session description: refused once the peer
    // connection fails to apply it; the same offer again is a replay.
    let fresh = ClientIdentity::new(2);
    let offer = make_offer(&fresh.session, &fresh.delegation, now, now);
    let (status, body) = post_signal(&a, offer_json(&offer)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_description")), "{body}");
    let (status, body) = post_signal(&a, offer_json(&offer)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("replayed_offer")), "{body}");

    // Unknown path: JSON 404.
    let (status, bytes) =
        chordial_server::signal_client::request(hyper::Method::GET, &format!("{}/v2/nothing", a.url), vec![])
            .await
            .unwrap();
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&bytes));
    let refused_after = a.metric("chordial_signal_refused_total").await;
    assert_eq!(refused_after - refused_before, 9.0, "every refusal is counted");

    // Garbage frames from an attacker's own WebRTC peer, admitted by a valid signed offer (no Chordial node
    // behind it): each dropped and counted, and past the misbehaviour threshold (ten junk frames: 10 points
    // each, 100 closes; docs/security.md) the server closes the link and backs the peer off. Nothing else
    // would close it this soon: a link nobody needs is closed 10 s after it was accepted (`idle_link_grace`).
    let raw = RawPeer::connect(&a, &ClientIdentity::new(3)).await;
    let before = a.metric("chordial_dropped_invalid_total").await;
    let dropped_before = a.metric("chordial_links_dropped_for_conduct_total").await;
    let mut rng = ChaCha20Rng::seed_from_u64(now.0 ^ 2);
    const KINDS: [u8; 5] = [0x01, 0x02, 0x10, 0x7f, 0xff];
    let started = tokio::time::Instant::now();
    for i in 0..1000usize {
        let mut frame = vec![0u8; 1 + (rng.next_u32() % 2000) as usize];
        rng.fill_bytes(&mut frame);
        frame[0] = KINDS[i % KINDS.len()];
        if raw.closed() || !raw.send(&frame).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rawr = &raw;
    wait_for(30, "the server closing the junk link", || async move { rawr.closed().then_some(()) }).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "the junk link was closed only after {took:?} (the idle grace?)");
    let after = a.metric("chordial_dropped_invalid_total").await;
    assert!(after - before >= 10.0, "dropped_invalid grew by {}", after - before);
    assert_eq!(a.metric("chordial_links_dropped_for_conduct_total").await - dropped_before, 1.0);
    raw.close().await;

    // The server keeps serving: healthy, still in its ring, and a new client joins through it.
    let (status, _) =
        chordial_server::signal_client::request(hyper::Method::GET, &format!("{}/healthz", a.url), vec![])
            .await
            .unwrap();
    assert_eq!(status, 200);
    let mut y = Client::start(&ClientIdentity::new(4), &a.url);
    y.wait_event(60, "client y joined", |e| matches!(e, Event::Membership { joined: true }).then_some(()))
        .await;
    // With no other client left, a's list holds b and y only once a has stabilized after y's join.
    let ar = &a;
    wait_for(30, "a's successor list holding b and y", || async move {
        let sa = ar.status().await;
        (sa["successors"].as_array().unwrap().len() >= 2).then_some(())
    })
    .await;
    y.stop().await;
}
