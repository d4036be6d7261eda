//! Presence, topics and messages on a handful of real nodes: a wallet is found, a message is delivered
//! with a receipt, an offline wallet's message waits in its mailbox and arrives once when it returns,
//! topics are scoped to their app origin, and limits give clear errors.

mod util;

use std::time::Duration;

use chordial_core::node::{Event, FailReason, RequestId, SendOutcome};
use chordial_core::Timestamp;
use util::Net;

const APP: &str = "https://chat.example";

fn ring(n: usize, seed: u64) -> Net {
    let mut net = Net::new(n, seed);
    net.join_all();
    net.run_for(30_000);
    net.assert_ring_exact(4);
    net
}

fn result_of(net: &Net, node: usize, request: RequestId) -> Option<Event> {
    net.events_of(node)
        .into_iter()
        .find(|e| match e {
            Event::Sent { request: r, .. }
            | Event::RequestFailed { request: r, .. }
            | Event::WalletSessions { request: r, .. }
            | Event::Discovered { request: r, .. }
            | Event::Done { request: r } => *r == request,
            _ => false,
        })
        .cloned()
}

fn received(net: &Net, node: usize) -> Vec<(chordial_core::identity::Address, String, Vec<u8>)> {
    net.events_of(node)
        .into_iter()
        .filter_map(|e| match e {
            Event::MessageReceived { from_wallet, app_origin, bytes, .. } => {
                Some((*from_wallet, app_origin.clone(), bytes.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn online_wallet_gets_the_message_and_the_sender_a_receipt() {
    let mut net = ring(7, 3);
    let (alice, bob) = (2, 5);
    let bob_wallet = net.nodes[bob].as_ref().unwrap().wallet();
    let alice_wallet = net.nodes[alice].as_ref().unwrap().wallet();

    let now = Timestamp(net.now);
    let look = net.nodes[alice].as_mut().unwrap().lookup_wallet(now, bob_wallet);
    net.drain(alice);
    net.run_for(3_000);
    match result_of(&net, alice, look) {
        Some(Event::WalletSessions { sessions, .. }) => {
            assert_eq!(sessions.len(), 1);
            assert_eq!(sessions[0].node_id, net.nodes[bob].as_ref().unwrap().id());
        }
        other => panic!("lookup_wallet: {other:?}"),
    }

    let now = Timestamp(net.now);
    let req = net.nodes[alice].as_mut().unwrap().send(now, APP, bob_wallet, b"gm bob".to_vec()).unwrap();
    net.drain(alice);
    net.run_for(5_000);
    match result_of(&net, alice, req) {
        Some(Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. }) => {
            assert_eq!(sessions, vec![net.nodes[bob].as_ref().unwrap().id()])
        }
        other => panic!("send: {other:?}"),
    }
    assert_eq!(received(&net, bob), vec![(alice_wallet, APP.to_string(), b"gm bob".to_vec())]);
}

#[test]
fn offline_wallet_gets_its_mail_once_when_it_returns() {
    let mut net = ring(7, 4);
    let (alice, bob) = (1, 6);
    let bob_wallet = net.nodes[bob].as_ref().unwrap().wallet();
    net.crash(bob);
    // Peers notice the crash, and the ring repairs.
    net.run_for(20_000);

    let now = Timestamp(net.now);
    let req = net.nodes[alice]
        .as_mut()
        .unwrap()
        .send(now, APP, bob_wallet, b"while you were out".to_vec())
        .unwrap();
    net.drain(alice);
    net.run_for(15_000);
    match result_of(&net, alice, req) {
        Some(Event::Sent { outcome: SendOutcome::Stored, .. }) => {}
        other => panic!("send to an offline wallet: {other:?}"),
    }

    net.restart(bob);
    net.run_for(30_000);
    let got = received(&net, bob);
    assert_eq!(got.len(), 1, "bob received {got:?}");
    assert_eq!(got[0].2, b"while you were out".to_vec());
    // The mailbox is empty afterwards: no node holds the entry any more.
    let mail_left: u64 = net.nodes.iter().flatten().map(|n| n.inspect().mailbox_entries() as u64).sum();
    assert_eq!(mail_left, 0, "mailbox entries left after delivery");
}

/// A graceful `Leave` withdraws the session's presence before the links close — the withdrawal and the
/// record handoff travel ahead of `Leave`, which makes neighbours drop the link — so the wallet is not
/// found live any more; a message sent then is stored for the withdrawn (last known) session and arrives
/// once when the node returns under it, also when the returning node owns its own presence key (its
/// mail is handed to it after it published presence). Every position of the leaver in a ring of five.
#[test]
fn a_wallet_that_left_is_offline_and_its_mail_waits_for_it() {
    let mut owned_own_key = 0;
    for bob in 1..5 {
        let mut net = ring(5, 20 + bob as u64);
        let alice = if bob == 4 { 3 } else { 4 };
        let bob_wallet = net.nodes[bob].as_ref().unwrap().wallet();
        let now = Timestamp(net.now);
        net.nodes[bob].as_mut().unwrap().leave(now);
        net.drain(bob);
        net.run_for(1_500);
        net.crash(bob); // gone; its links went down with the leave

        let now = Timestamp(net.now);
        let look = net.nodes[alice].as_mut().unwrap().lookup_wallet(now, bob_wallet);
        net.drain(alice);
        net.run_for(3_000);
        match result_of(&net, alice, look) {
            Some(Event::WalletSessions { sessions, .. }) => {
                assert!(sessions.is_empty(), "node {bob} left, yet it is found live: {sessions:?}")
            }
            other => panic!("lookup_wallet of node {bob}, which left: {other:?}"),
        }

        let now = Timestamp(net.now);
        let req = net.nodes[alice].as_mut().unwrap().send(now, APP, bob_wallet, b"see you".to_vec()).unwrap();
        net.drain(alice);
        net.run_for(10_000);
        match result_of(&net, alice, req) {
            Some(Event::Sent { outcome: SendOutcome::Stored, .. }) => {}
            other => panic!("send to node {bob}, which left: {other:?}"),
        }

        net.restart(bob);
        net.run_for(30_000);
        let key = chordial_core::node::records::presence_key(&bob_wallet);
        if net.owner(key) == net.nodes[bob].as_ref().unwrap().id() {
            owned_own_key += 1;
        }
        let got = received(&net, bob);
        assert_eq!(got.len(), 1, "node {bob} received {got:?}");
        assert_eq!(got[0].2, b"see you".to_vec());
        let mail_left: u64 = net.nodes.iter().flatten().map(|n| n.inspect().mailbox_entries() as u64).sum();
        assert_eq!(mail_left, 0, "mailbox entries left after delivery to node {bob}");
    }
    assert!(owned_own_key > 0, "no returning node owned its own presence key: that case went untested");
}

#[test]
fn topics_are_discovered_withdrawn_and_scoped_to_their_origin() {
    let mut net = ring(6, 5);
    for i in [0, 2, 4] {
        let now = Timestamp(net.now);
        net.nodes[i].as_mut().unwrap().announce(now, APP, "lobby", Duration::from_secs(600));
        net.drain(i);
    }
    net.run_for(5_000);
    let now = Timestamp(net.now);
    let q = net.nodes[5].as_mut().unwrap().discover(now, APP, "lobby");
    let other = net.nodes[5].as_mut().unwrap().discover(now, "https://evil.example", "lobby");
    net.drain(5);
    net.run_for(5_000);
    let mut want: Vec<_> = [0, 2, 4].iter().map(|i| net.nodes[*i].as_ref().unwrap().wallet()).collect();
    want.sort();
    match result_of(&net, 5, q) {
        Some(Event::Discovered { members, .. }) => {
            assert_eq!(members.iter().map(|(w, _)| *w).collect::<Vec<_>>(), want)
        }
        o => panic!("discover: {o:?}"),
    }
    match result_of(&net, 5, other) {
        Some(Event::Discovered { members, .. }) => assert!(members.is_empty()),
        o => panic!("discover from another origin: {o:?}"),
    }
    let now = Timestamp(net.now);
    net.nodes[2].as_mut().unwrap().withdraw(now, APP, "lobby");
    net.drain(2);
    net.run_for(5_000);
    let now = Timestamp(net.now);
    let q = net.nodes[3].as_mut().unwrap().discover(now, APP, "lobby");
    net.drain(3);
    net.run_for(5_000);
    match result_of(&net, 3, q) {
        Some(Event::Discovered { members, .. }) => assert_eq!(members.len(), 2),
        o => panic!("discover after withdraw: {o:?}"),
    }
}

#[test]
fn limits_and_unknown_wallets_give_clear_errors() {
    let mut net = ring(5, 6);
    let now = Timestamp(net.now);
    let bob = net.nodes[3].as_ref().unwrap().wallet();
    let too_big = net.nodes[1].as_mut().unwrap().send(now, APP, bob, vec![0; 64 * 1024 + 1]);
    assert_eq!(too_big, Err(FailReason::TooLarge(64 * 1024 + 1)));
    let stranger = chordial_core::identity::Address([7; 20]);
    let req = net.nodes[1].as_mut().unwrap().send(now, APP, stranger, b"hi".to_vec()).unwrap();
    net.drain(1);
    net.run_for(5_000);
    match result_of(&net, 1, req) {
        Some(Event::RequestFailed { reason: FailReason::NotFound, .. }) => {}
        o => panic!("send to an unknown wallet: {o:?}"),
    }
}

/// A node that has just rejoined owns the keys between its predecessor and itself before its successor has
/// handed the records back. A lookup that reaches it in that window finds nothing there, asks the owner's
/// successor (the node that held the records), and still finds the wallet.
#[test]
fn a_lookup_right_after_the_owner_rejoins_still_finds_the_wallet() {
    let mut net = ring(8, 6);
    let wallets: Vec<_> = (0..8).map(|i| net.nodes[i].as_ref().unwrap().wallet()).collect();
    // A wallet whose presence key is owned by a third node (neither its own nor the bootstrap).
    let (bob, owner) = (1..8)
        .find_map(|b| {
            let key = chordial_core::node::records::presence_key(&wallets[b]);
            let o = (0..8).find(|i| net.nodes[*i].as_ref().unwrap().id() == net.owner(key))?;
            (o != b && o != 0).then_some((b, o))
        })
        .expect("some wallet's presence lives on a third node");
    let asker = (1..8).find(|i| *i != bob && *i != owner).unwrap();

    net.crash(owner);
    net.run_for(20_000);
    net.restart(owner);
    let mut waited = 0;
    while !net.nodes[owner].as_ref().unwrap().inspect().is_joined() {
        net.run_for(10);
        waited += 10;
        assert!(waited < 20_000, "node {owner} did not rejoin");
    }
    let key = chordial_core::node::records::presence_key(&wallets[bob]);
    assert_eq!(net.owner(key), net.nodes[owner].as_ref().unwrap().id());
    assert_eq!(
        net.nodes[owner].as_ref().unwrap().inspect().status().counters.records,
        0,
        "the rejoined owner already holds records: the window this test needs did not happen"
    );

    let now = Timestamp(net.now);
    let look = net.nodes[asker].as_mut().unwrap().lookup_wallet(now, wallets[bob]);
    net.drain(asker);
    net.run_for(5_000);
    match result_of(&net, asker, look) {
        Some(Event::WalletSessions { sessions, .. }) => {
            assert_eq!(
                sessions.iter().map(|s| s.node_id).collect::<Vec<_>>(),
                vec![net.nodes[bob].as_ref().unwrap().id()]
            )
        }
        other => panic!("lookup_wallet right after the owner rejoined: {other:?}"),
    }
}

/// A `Routed::Receipt { id }` body, encoded the way the node encodes it (the enum's twelfth variant). The
/// test checks with `describe_frame` that the frame built from it reads as a receipt.
struct ReceiptBody([u8; 16]);

impl serde::Serialize for ReceiptBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStructVariant;
        let mut v = s.serialize_struct_variant("Routed", 11, "Receipt", 1)?;
        v.serialize_field("id", &self.0)?;
        v.end()
    }
}

/// Issue 15: a receipt for our message from a node that is not the recipient session (a relay saw the
/// message id go by and answers it itself) is ignored, and the sender keeps waiting for the genuine one —
/// which must still count when it comes. The forged receipt reaches the sender first; the send must
/// resolve `Delivered` from the recipient's own receipt, well before the attempt timer would send again.
#[test]
fn a_forged_receipt_does_not_hide_the_recipients_genuine_one() {
    use chordial_core::node::{describe_frame, Config};
    use chordial_core::wire::envelope::{self, Destination, Header, MessageId, HEADER_LEN};
    use rand_core::SeedableRng;

    let mut net = ring(7, 3);
    let (alice, bob, forger) = (2, 5, 0);
    let bob_wallet = net.nodes[bob].as_ref().unwrap().wallet();
    let alice_id = net.nodes[alice].as_ref().unwrap().id();
    let bob_id = net.nodes[bob].as_ref().unwrap().id();

    net.tap = Some(Vec::new());
    let now = Timestamp(net.now);
    let req = net.nodes[alice].as_mut().unwrap().send(now, APP, bob_wallet, b"gm bob".to_vec()).unwrap();
    net.drain(alice);
    // Step until alice sends the message to bob's session (after reading bob's presence): a first message
    // goes in a hello that starts an end-to-end session, answered by bob's welcome.
    let mut waited = 0;
    let (link, deliver) = loop {
        let sent = net
            .tap
            .as_ref()
            .unwrap()
            .iter()
            .find(|(n, _, f)| *n == alice && matches!(describe_frame(f), Some("Deliver" | "Hello")));
        if let Some((_, link, frame)) = sent {
            break (*link, frame.clone());
        }
        net.run_for(1);
        waited += 1;
        assert!(waited < 5_000, "alice never sent the message");
    };
    net.tap = None;

    // What any relay of that frame can read: the message id (and the send's id in the body).
    let (header, body): (Header, &[u8]) =
        postcard::take_from_bytes(&util::envelope_of(&deliver)[HEADER_LEN..]).unwrap();
    let mut send_id = [0u8; 16];
    send_id.copy_from_slice(&body[1..17]);
    // The forger (node 0 stands in for that relay) answers it under its own key; its receipt reaches alice
    // before bob's.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(15);
    let forged_header = Header {
        network: header.network,
        id: MessageId::random(&mut rng),
        sent_at: Timestamp(net.now),
        dest: Destination::Node(alice_id),
        hop_limit: header.hop_limit,
        reply_to: Some(header.id),
    };
    let key = &net.identities[forger].0;
    // A routed frame (kind 0x01), numbered 0 on the link.
    let mut forged = vec![0x01, 0x00];
    forged.extend(envelope::encode(key, &forged_header, &ReceiptBody(send_id)).unwrap());
    assert_eq!(describe_frame(&forged), Some("Receipt"));
    let before = net.nodes[alice].as_ref().unwrap().inspect().status().counters;
    net.at(1, util::Ev::Frame(alice, link, forged));

    // Bob's receipt takes a few links' latency; the next attempt would go out only after a whole attempt.
    let config = Config::new("test", [0; 32]);
    let per_attempt = config.request_timeout / u32::from(config.request_attempts);
    net.run_for(per_attempt.as_millis() as u64 / 2);
    let after = net.nodes[alice].as_ref().unwrap().inspect().status().counters;
    assert_eq!(
        (after.dropped_invalid, after.dropped_replay),
        (before.dropped_invalid, before.dropped_replay),
        "alice refused the forged receipt's frame: this test did not test anything"
    );
    match result_of(&net, alice, req) {
        Some(Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. }) => {
            assert_eq!(sessions, vec![bob_id])
        }
        other => panic!(
            "send, {} ms after a forged receipt came before bob's: {other:?}",
            per_attempt.as_millis() / 2
        ),
    }
    assert_eq!(received(&net, bob).len(), 1);
}

/// Issue 16, item 1 (the relay half): a peer floods a node with frames for it to relay, each with a fresh
/// message id (relays read only the header, so the frames need no valid signature). The relay remembers
/// them only briefly and forgets the oldest when full; before, every relayed id went into the 65,536-entry
/// replay window, which refuses when full, and the flood shut the node out of every message addressed to
/// it for five minutes.
#[test]
fn junk_relayed_through_a_node_does_not_shut_out_its_own_mail() {
    use chordial_core::wire::envelope::{self, Destination, Header, MessageId, NetworkTag};
    use rand_core::SeedableRng;

    let mut net = ring(7, 3);
    let (relay, sender) = (3, 5);
    let relay_wallet = net.nodes[relay].as_ref().unwrap().wallet();
    // The flooder is whichever node the relay has a link to; the frames arrive on that link.
    let links = net.nodes[relay].as_ref().unwrap().inspect().links();
    let (link, flooder_id) =
        links.iter().find_map(|l| Some((l.link, l.peer?))).expect("the relay has a linked peer");
    let flooder = (0..7).find(|i| net.nodes[*i].as_ref().unwrap().id() == flooder_id).unwrap();
    let target = (0..7).find(|i| ![relay, flooder].contains(i)).unwrap();
    let target_id = net.nodes[target].as_ref().unwrap().id();

    // One frame, then copies with other ids: spent at once (hop limit 0), signature no longer valid.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(16);
    let header = Header {
        network: NetworkTag::from_name("test"),
        id: MessageId::random(&mut rng),
        sent_at: Timestamp(net.now),
        dest: Destination::Node(target_id),
        hop_limit: 0,
        reply_to: None,
    };
    // A routed frame (kind 0x01) numbered 0 on the link, then the envelope.
    let mut frame = vec![0x01, 0x00];
    frame.extend(envelope::encode(&net.identities[flooder].0, &header, &[0u8; 8]).unwrap());
    frame[2 + 35] ^= 0xff;
    let at = frame.windows(16).position(|w| w == header.id.0).expect("the id is in the frame");
    let flood = 70_000u32;
    for i in 0..flood {
        let mut junk = frame.clone();
        junk[at..at + 4].copy_from_slice(&i.to_be_bytes());
        net.at(1, util::Ev::Frame(relay, link, junk));
    }
    let before = net.nodes[relay].as_ref().unwrap().inspect().status().counters;
    net.run_for(100);
    let after = net.nodes[relay].as_ref().unwrap().inspect().status().counters;
    let dropped = |c: &chordial_core::node::Counters| c.dropped_invalid + c.dropped_replay;
    assert_eq!(dropped(&after) - dropped(&before), u64::from(flood), "the relay dropped every junk frame");

    let now = Timestamp(net.now);
    let req =
        net.nodes[sender].as_mut().unwrap().send(now, APP, relay_wallet, b"still here".to_vec()).unwrap();
    net.drain(sender);
    net.run_for(10_000);
    match result_of(&net, sender, req) {
        Some(Event::Sent { outcome: SendOutcome::Delivered { .. }, .. }) => {}
        other => panic!("a message to the flooded relay's wallet: {other:?}"),
    }
    assert!(received(&net, relay).iter().any(|(_, _, m)| m == b"still here"));
}
