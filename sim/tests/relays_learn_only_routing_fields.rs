//! Relays learn the routing fields and nothing more (issue 16 item 9; `docs/records.md`, "Who learns what").
//!
//! A tap records every frame on every link through a run that sends every frame kind `describe_frame`
//! names: joins (lookups, link offers and answers, stabilization, presence), wallet lookups, topic
//! announcements and discovery, live messages between unlinked nodes with their receipts, messages in an
//! end-to-end session (its hello and welcome, a message too large for a hello sent on its own, a message in
//! the session, and "no such session" from a node that restarted), a message to a
//! node that just crashed (`Undeliverable`, then the mailbox), mailbox writes, the mailbox handed to the
//! returning node, its acknowledgements and the replicas' drops, and a graceful leave. The test asserts that
//! every kind was seen, and for every routed frame a **relay** forwards (the sender on the link is not the
//! envelope's origin) that it holds nothing beyond its kind's documented fields:
//!
//! - no wallet address of any node (raw 20 bytes, lowercase hex with and without `0x`, EIP-55 text),
//! - no SIWE text (a delegation's message),
//! - no session key of any node other than the envelope's origin,
//! - no session description (the simulator's stand-in for an SDP with its ICE addresses),
//!
//! except in the bodies that carry public records (presence and topic `Store`, `Records`), which anyone may
//! `Get`. No frame of any kind, on any link, carries a message's plaintext. The link setups through the
//! ring are `SealedOffer` / `SealedAnswer` (the first contact with a node asks for its key with an empty
//! `SealedOffer`, answered by `ConnectReject { SealToMe }`); the offer and answer in the clear
//! (`ConnectOffer` / `ConnectAnswer`) are for HTTP bootstrap and pairing only, and never cross a link. And
//! the honest users get what they asked for: every live message delivered, every stored message received
//! once, the ring exact.
//!
//! On the code before item 9 it fails: `Store` of a mailbox entry, `MailboxAck`, `ConnectOffer` and
//! `ConnectAnswer` show relays wallets, SIWE text and other sessions' keys. With the link setup's sealing
//! switched off (the contents of `SealedOffer` / `SealedAnswer` in the clear), relayed offers and answers
//! show the SIWE text, the origin's wallet and the session description.
//!
//! Sizes: 24 nodes, 12 live messages, 8 stored (the same at full size).

mod common;
#[path = "common/forge_mail.rs"]
mod forge_mail;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chordial_core::e2e;
use chordial_core::identity::delegation::Delegation;
use chordial_core::identity::{Address, WalletSignature};
use chordial_core::node::msg::{self, AppMsg, OfferContents, RingMsg, Routed};
use chordial_core::node::records::Record;
use chordial_core::node::{describe_frame, Event, LinkPurpose, SendOutcome};
use chordial_core::wire::envelope::{self, Destination};
use chordial_sim::scenario::{build_base, join_nodes, pick, run_until_exact};
use chordial_sim::world::TappedFrame;
use chordial_sim::World;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use common::{ask, payload, received_since, roomiest_member, send, wait_all, wait_one, wallet, APP};

const SEED: u64 = 97;
const MEMBERS: usize = 24;
const LIVE: usize = 12;
const STORED: usize = 8;

/// Every name `describe_frame` gives to a frame on a link: the link messages, then the routed bodies.
const VOCABULARY: [&str; 28] = [
    "Ping",
    "Pong",
    "GetNeighbors",
    "Neighbors",
    "Notify",
    "Leave",
    "Ack",
    "Replicate",
    "DropMail",
    "FindSuccessor",
    "FoundSuccessor",
    "SealedOffer",
    "SealedAnswer",
    "ConnectReject",
    "Undeliverable",
    "Store",
    "StoreAck",
    "Get",
    "Records",
    "Deliver",
    "Receipt",
    "MailboxDeliver",
    "MailboxAck",
    "StoreSealed",
    "Hello",
    "Welcome",
    "SessionData",
    "NoSession",
];

/// The names `describe_frame` gives that no honest node puts on a link: the offer and answer in the clear,
/// for HTTP bootstrap and pairing.
const OFF_LINK: [&str; 2] = ["ConnectOffer", "ConnectAnswer"];

/// How the simulator's session descriptions start (`chordial_sim::net::sdp_token`).
const SDP_TAGS: [&[u8]; 2] = [b"sim-offer:", b"sim-answer:"];

/// The first line of every SIWE message ends with this.
const SIWE: &[u8] = b" wants you to sign in with your Ethereum account:";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The ways a wallet address can appear in bytes.
fn wallet_forms(wallet: &Address) -> Vec<Vec<u8>> {
    let checksum = wallet.to_checksum();
    let lower = checksum.to_lowercase();
    vec![
        wallet.as_bytes().to_vec(),
        lower.as_bytes().to_vec(),
        lower.as_bytes()[2..].to_vec(),
        checksum.into_bytes(),
    ]
}

/// What the tap has seen so far, and what relays saw that they should not have.
#[derive(Default)]
struct Wire {
    /// Frames by kind (all frames, relayed or not).
    kinds: BTreeMap<&'static str, u64>,
    /// Routed frames forwarded by a relay, by kind.
    relayed: BTreeMap<&'static str, u64>,
    /// (kind, what leaked) → (frames, one example).
    leaks: BTreeMap<(&'static str, String), (u64, String)>,
    /// Frames that carried a message's plaintext.
    plaintext: Vec<String>,
}

impl Wire {
    fn leak(&mut self, kind: &'static str, what: String, example: impl FnOnce() -> String) {
        let entry = self.leaks.entry((kind, what)).or_insert_with(|| (0, example()));
        entry.0 += 1;
    }
}

/// Who the nodes are, for recognising their wallets and session keys in bytes.
struct Names {
    /// (node, its wallet's byte forms).
    wallets: Vec<(usize, Vec<Vec<u8>>)>,
    /// Every node's session public key.
    sessions: Vec<[u8; 33]>,
    /// Every node's id.
    ids: Vec<chordial_core::Id>,
}

fn names(world: &World) -> Names {
    Names {
        wallets: (0..world.len()).filter_map(|i| world.wallet_of(i).map(|w| (i, wallet_forms(&w)))).collect(),
        sessions: (0..world.len()).map(|i| *world.session_key(i).public().as_bytes()).collect(),
        ids: (0..world.len()).map(|i| world.id(i)).collect(),
    }
}

/// Takes the frames tapped so far (the tap stays on) and checks them.
fn drain(world: &mut World, wire: &mut Wire, plaintexts: &[Vec<u8>]) {
    let frames = world.tap_frames(true);
    let names = names(world);
    for f in &frames {
        check(wire, &names, plaintexts, f);
    }
}

fn check(wire: &mut Wire, names: &Names, plaintexts: &[Vec<u8>], f: &TappedFrame) {
    let Some(kind) = describe_frame(&f.bytes) else { return };
    *wire.kinds.entry(kind).or_default() += 1;
    for (k, p) in plaintexts.iter().enumerate() {
        if contains(&f.bytes, p) {
            wire.plaintext
                .push(format!("a {kind} frame from node {} to node {} carries message {k}", f.from, f.to));
        }
    }
    let Some(routed) = msg::decode_routed(f.bytes[0], &f.bytes[1..]) else { return };
    if let Some((header, _)) = envelope::peek_session(routed.envelope) {
        // A session frame names its sender by node id, and carries no session key at all.
        if names.ids[f.from] == header.from {
            return; // sent by its sender, not relayed
        }
        *wire.relayed.entry(kind).or_default() += 1;
        return leaks(wire, names, kind, f, routed.envelope, None);
    }
    let Some((_, body)) = envelope::peek::<Routed>(routed.envelope) else { return };
    // The origin's key is in the envelope's clear header (version, hops, then the key).
    let origin: [u8; 33] = routed.envelope[2..35].try_into().expect("a routed frame has a header");
    if names.sessions[f.from] == origin {
        return; // sent by its origin, not relayed
    }
    *wire.relayed.entry(kind).or_default() += 1;
    let public = match &body {
        Routed::App(AppMsg::Store { record }) => matches!(**record, Record::Presence(_) | Record::Topic(_)),
        Routed::App(AppMsg::Records { .. }) => true,
        _ => false,
    };
    if public {
        return;
    }
    leaks(wire, names, kind, f, &routed.envelope[35..], Some(origin));
}

/// Notes what a relayed frame shows beyond its routing fields: wallets, SIWE text, session descriptions, and
/// past the header (`rest`) any session key but its origin's (`origin`; a session frame has none).
fn leaks(
    wire: &mut Wire,
    names: &Names,
    kind: &'static str,
    f: &TappedFrame,
    rest: &[u8],
    origin: Option<[u8; 33]>,
) {
    let example = || format!("relayed by node {} to node {}", f.from, f.to);
    let bytes = &f.bytes;
    for (node, forms) in &names.wallets {
        if forms.iter().any(|form| contains(bytes, form)) {
            let origin_node = names.sessions.iter().position(|s| Some(*s) == origin);
            let whose =
                if origin_node == Some(*node) { "the origin's wallet" } else { "another node's wallet" };
            wire.leak(kind, whose.to_owned(), example);
        }
    }
    if contains(bytes, SIWE) {
        wire.leak(kind, "SIWE text".to_owned(), example);
    }
    if SDP_TAGS.iter().any(|tag| contains(bytes, tag)) {
        wire.leak(kind, "a session description".to_owned(), example);
    }
    // Past the header: the origin's own key is a routing field, any other session's is not.
    for session in &names.sessions {
        if Some(*session) != origin && contains(rest, session) {
            wire.leak(kind, "another node's session key".to_owned(), example);
        }
    }
}

/// Whether node `a` has an open link to node `b`.
fn linked(world: &World, a: usize, b: usize) -> bool {
    let peer = world.id(b);
    world.node(a).is_some_and(|n| n.inspect().status().links.iter().any(|l| l.open && l.peer == Some(peer)))
}

#[test]
fn every_frame_a_relay_forwards_holds_only_its_routing_fields() {
    let mut world = common::world(SEED);
    let mut wire = Wire::default();
    let mut plaintexts: Vec<Vec<u8>> = Vec::new();
    world.tap_frames(true);

    // Joins: lookups, offers, answers, stabilization, presence.
    let base =
        build_base(&mut world, 5, Duration::from_secs(120)).unwrap_or_else(|e| panic!("seed {SEED}: {e}"));
    drain(&mut world, &mut wire, &plaintexts);
    join_nodes(&mut world, MEMBERS - base.len(), &base, Duration::from_secs(10));
    drain(&mut world, &mut wire, &plaintexts);
    let converged = run_until_exact(&mut world, Duration::from_secs(300), Duration::from_secs(1));
    assert!(converged.is_some(), "seed {SEED}: the ring did not converge: {}", world.ring_view().check_all());
    world.run_for(Duration::from_secs(20));
    drain(&mut world, &mut wire, &plaintexts);
    let nodes = world.member_indices();

    // Wallet lookups and topics.
    let mut lookups = Vec::new();
    for _ in 0..6 {
        let (from, of) = (nodes[pick(world.rng(), nodes.len())], nodes[pick(world.rng(), nodes.len())]);
        let w = wallet(&world, of);
        lookups.push(ask(&mut world, from, |n, now| n.lookup_wallet(now, w)));
    }
    for &i in &nodes[..4] {
        ask(&mut world, i, |n, now| n.announce(now, APP, "lobby", Duration::from_secs(600)));
    }
    world.run_for(Duration::from_secs(3));
    let discover = ask(&mut world, nodes[7], |n, now| n.discover(now, APP, "lobby"));
    for (k, result) in wait_all(&mut world, &lookups, Duration::from_secs(30)).iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::WalletSessions { sessions, .. })) if !sessions.is_empty()),
            "seed {SEED}: wallet lookup {k}: {result:?}"
        );
    }
    let found = wait_one(&mut world, discover, Duration::from_secs(30));
    assert!(
        matches!(&found, Some(Event::Discovered { members, .. }) if members.len() == 4),
        "seed {SEED}: discover: {found:?}"
    );
    drain(&mut world, &mut wire, &plaintexts);

    // Live messages between nodes with no link to each other: every one passes relays.
    let mut pending = Vec::new();
    while pending.len() < LIVE {
        let (from, to) = (nodes[pick(world.rng(), nodes.len())], nodes[pick(world.rng(), nodes.len())]);
        if from == to || linked(&world, from, to) {
            continue;
        }
        let bytes = payload(&mut world, plaintexts.len() as u64, 200);
        plaintexts.push(bytes[8..40].to_vec());
        let to_wallet = wallet(&world, to);
        pending.push(send(&mut world, from, to_wallet, bytes));
        world.run_for(Duration::from_millis(50));
    }
    for (k, result) in wait_all(&mut world, &pending, Duration::from_secs(60)).iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Sent { outcome: SendOutcome::Delivered { .. }, .. }))),
            "seed {SEED}: live message {k}: {result:?}"
        );
    }
    drain(&mut world, &mut wire, &plaintexts);

    // End-to-end sessions: a first message too large for a hello goes on its own (`Deliver`); the next starts
    // a session (`Hello`, answered by `Welcome`); a third, after it, goes in the session (`SessionData`).
    let (from, to) = loop {
        let (a, b) = (nodes[pick(world.rng(), nodes.len())], nodes[pick(world.rng(), nodes.len())]);
        let talked = |x: usize, y: usize| {
            world.node(x).is_some_and(|n| n.inspect().counters().session_hellos > 0)
                && world.node(y).is_some_and(|n| n.inspect().counters().messages_received > 0)
        };
        if a != b && !linked(&world, a, b) && !talked(a, b) && !talked(b, a) {
            break (a, b);
        }
    };
    let to_wallet = wallet(&world, to);
    let mut pending = Vec::new();
    for (gap, len) in [(0, 60_000), (0, 200), (5_000, 200)] {
        world.run_for(Duration::from_millis(gap));
        let bytes = payload(&mut world, plaintexts.len() as u64, len);
        plaintexts.push(bytes[8..40].to_vec());
        pending.push(send(&mut world, from, to_wallet, bytes));
    }
    for (k, result) in wait_all(&mut world, &pending, Duration::from_secs(60)).iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Sent { outcome: SendOutcome::Delivered { .. }, .. }))),
            "seed {SEED}: session message {k}: {result:?}"
        );
    }
    drain(&mut world, &mut wire, &plaintexts);

    // A node crashes; messages to it find it gone (`Undeliverable`) and go to its mailbox (`Store`). One
    // sender had a session with it: after it comes back (without its sessions), that sender's next message
    // is answered `NoSession` and goes again in a hello.
    let recipient = loop {
        let i = nodes[pick(world.rng(), nodes.len())];
        if !base.contains(&i) {
            break i;
        }
    };
    let keeper = *nodes.iter().find(|&&i| i != recipient && !linked(&world, i, recipient)).expect("a node");
    let bytes = payload(&mut world, plaintexts.len() as u64, 200);
    plaintexts.push(bytes[8..40].to_vec());
    let recipient_wallet = wallet(&world, recipient);
    let p = send(&mut world, keeper, recipient_wallet, bytes);
    assert!(
        matches!(wait_one(&mut world, p, Duration::from_secs(30)), Some(Event::Sent { .. })),
        "seed {SEED}: node {keeper} could not reach node {recipient}"
    );
    drain(&mut world, &mut wire, &plaintexts);
    let to = wallet(&world, recipient);
    world.crash(recipient);
    assert!(
        run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1)).is_some(),
        "seed {SEED}: the ring did not repair after node {recipient} crashed"
    );
    let senders: Vec<usize> = nodes.iter().copied().filter(|&i| i != recipient).take(STORED).collect();
    let first_stored = plaintexts.len();
    let mut pending = Vec::new();
    for &from in &senders {
        let bytes = payload(&mut world, plaintexts.len() as u64, 300);
        plaintexts.push(bytes[8..40].to_vec());
        pending.push(send(&mut world, from, to, bytes));
        world.run_for(Duration::from_millis(300));
    }
    for (k, result) in wait_all(&mut world, &pending, Duration::from_secs(60)).iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Sent { outcome: SendOutcome::Stored, .. }))),
            "seed {SEED}: message {k} to the crashed node {recipient}: {result:?}"
        );
    }
    world.run_for(Duration::from_secs(5));
    drain(&mut world, &mut wire, &plaintexts);

    // It comes back: its mail is handed to it (`MailboxDeliver`), it acknowledges (`MailboxAck`), the
    // replicas drop the entries (`DropMail`).
    let back = world.now();
    let via = roomiest_member(&world);
    world.restart(recipient, via);
    let deadline = back.saturating_add(Duration::from_secs(120));
    while received_since(&world, recipient, back).len() < STORED && world.now() < deadline {
        world.run_for(Duration::from_millis(200));
    }
    world.run_for(Duration::from_secs(10));
    let got = received_since(&world, recipient, back);
    let mut seen = BTreeSet::new();
    for g in &got {
        let k = u64::from_be_bytes(g.bytes[..8].try_into().expect("8 bytes")) as usize;
        assert!(
            (first_stored..first_stored + STORED).contains(&k) && seen.insert(k),
            "seed {SEED}: node {recipient} received message {k} (again, or not stored for it)"
        );
    }
    assert_eq!(seen.len(), STORED, "seed {SEED}: node {recipient} received {got:?}");
    drain(&mut world, &mut wire, &plaintexts);
    let lost = |world: &World| world.node(keeper).map_or(0, |n| n.inspect().counters().sessions_lost);
    let lost_before = lost(&world);
    let bytes = payload(&mut world, plaintexts.len() as u64, 200);
    plaintexts.push(bytes[8..40].to_vec());
    let p = send(&mut world, keeper, to, bytes);
    let result = wait_one(&mut world, p, Duration::from_secs(30));
    assert!(
        matches!(result, Some(Event::Sent { outcome: SendOutcome::Delivered { .. }, .. })),
        "seed {SEED}: node {keeper} to node {recipient} after its restart: {result:?}"
    );
    assert_eq!(lost(&world), lost_before + 1, "seed {SEED}: the lost session was not found out");
    drain(&mut world, &mut wire, &plaintexts);

    // A link offer refused (`ConnectReject`): a member offers a link to a node it has no link to, sealed to
    // that node's key as an honest offer is, under a delegation that does not verify (honest offers are
    // rarely refused in a ring this small).
    let (asker, target) = loop {
        let (a, b) = (nodes[pick(world.rng(), nodes.len())], nodes[pick(world.rng(), nodes.len())]);
        if a != b && a != recipient && b != recipient && !linked(&world, a, b) {
            break (a, b);
        }
    };
    let contents = OfferContents {
        purpose: LinkPurpose::Finger,
        sdp: "v=0 an offer".to_owned(),
        delegation: Delegation {
            message: "not a delegation".to_owned(),
            signature: WalletSignature([1; 65]),
        },
    };
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let target_key = *world.session_key(target).public();
    let plain = postcard::to_allocvec(&contents).expect("encodes");
    let sealed = e2e::seal_to(&chordial_core::crypto::REAL, &mut rng, &target_key, &plain).expect("seals");
    let offer = Routed::Ring(RingMsg::SealedOffer { link: 7, sealed });
    let dest = Destination::Node(world.id(target));
    let frame = forge_mail::routed_frame(&mut world, asker, dest, &offer);
    let (link, _) = world.open_links(asker)[0];
    let refused_before = world.node(target).expect("running").inspect().counters().refused_identity;
    world.send_raw(asker, link, frame);
    world.run_for(Duration::from_secs(2));
    drain(&mut world, &mut wire, &plaintexts);
    let refused_after = world.node(target).expect("running").inspect().counters().refused_identity;
    assert!(
        refused_after > refused_before,
        "seed {SEED}: node {target} did not open and check the sealed offer"
    );

    // A graceful leave.
    let leaver = *nodes.iter().rev().find(|&&i| i != recipient && !base.contains(&i)).expect("a node");
    world.leave(leaver);
    world.run_for(Duration::from_secs(10));
    drain(&mut world, &mut wire, &plaintexts);
    world.tap_frames(false);

    eprintln!(
        "seed {SEED}: frames by kind: {:?}; relayed routed frames by kind: {:?}",
        wire.kinds, wire.relayed
    );
    for ((kind, what), (n, example)) in &wire.leaks {
        eprintln!("seed {SEED}: {n} relayed {kind} frames show {what} (e.g. {example})");
    }
    let relayed: u64 = wire.relayed.values().sum();
    assert!(relayed > 1_000, "seed {SEED}: only {relayed} routed frames were relayed");
    assert!(
        wire.relayed.get("SessionData").is_some_and(|n| *n > 0),
        "seed {SEED}: no session frame was relayed: {:?}",
        wire.relayed
    );
    assert!(wire.plaintext.is_empty(), "seed {SEED}: plaintext on the wire: {:#?}", wire.plaintext);
    let leaks: Vec<String> = wire
        .leaks
        .iter()
        .map(|((kind, what), (n, e))| format!("{kind}: {what} ({n} frames, e.g. {e})"))
        .collect();
    assert!(leaks.is_empty(), "seed {SEED}: relays saw more than the routing fields: {leaks:#?}");
    let clear: Vec<(&str, u64)> =
        OFF_LINK.iter().filter_map(|k| wire.kinds.get(k).map(|n| (*k, *n))).collect();
    assert!(clear.is_empty(), "seed {SEED}: offers or answers in the clear on links: {clear:?}");
    let counters: Vec<_> =
        nodes.iter().filter_map(|&i| world.node(i)).map(|n| n.inspect().counters().clone()).collect();
    let offers: u64 = counters.iter().map(|c| c.ring_offers).sum();
    let asked: u64 = counters.iter().map(|c| c.key_requests).sum();
    eprintln!(
        "seed {SEED}: {offers} link offers through the ring, {asked} of them asked for the peer's key first"
    );
    let missing: Vec<&str> = VOCABULARY.iter().copied().filter(|k| !wire.kinds.contains_key(k)).collect();
    assert!(missing.is_empty(), "seed {SEED}: frame kinds never seen: {missing:?}");
}
