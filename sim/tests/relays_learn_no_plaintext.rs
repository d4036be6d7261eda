//! Relays forward messages without learning them: messages between wallets whose nodes have no link to each
//! other are carried by relays, and no node but the recipient ever opens one — no relay emits a message,
//! counts one as received, or even tries to open one (`refused_messages` stays put) — and no relay keeps
//! anything of it (no mailbox entry).
//!
//! And the wire itself: with a tap on every link, no frame delivered to any node between the first send
//! and the last receipt contains a message's plaintext, and no frame that carries a message or its receipt
//! (one-shot, or a hello, a welcome or a message in an end-to-end session)
//! contains the sender's wallet (as raw bytes, lowercase hex or EIP-55 text). That is all a relay ever
//! holds of a message: what it cannot read off the frames, it cannot keep.
//!
//! Sizes: 60 nodes, 100 messages (the same at full size).

mod common;

use std::time::Duration;

use chordial_core::identity::Address;
use chordial_core::node::{describe_frame, Counters, Event, SendOutcome};
use chordial_sim::scenario::{assert_budget_held, pick};
use chordial_sim::World;

use common::{mailbox_holders, payload, received_since, ring, send, wait_all, wallet};

const SEED: u64 = 61;
const MEMBERS: usize = 60;
const MESSAGES: usize = 100;

fn counters(world: &World) -> Vec<Option<Counters>> {
    (0..world.len()).map(|i| world.node(i).map(|n| n.inspect().status().counters)).collect()
}

/// Whether node `a` has an open link to node `b`.
fn linked(world: &World, a: usize, b: usize) -> bool {
    let peer = world.id(b);
    world.node(a).is_some_and(|n| n.inspect().status().links.iter().any(|l| l.open && l.peer == Some(peer)))
}

#[test]
fn messages_relayed_between_unlinked_nodes_are_opened_only_by_their_recipient() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    // Steady state: every node has refreshed its presence once (every presence_ttl / 2), so whether a
    // record survived the handoffs of the join phase — message_reaches_online_wallet's concern — does not
    // decide this scenario.
    world.run_for(world.node_config().presence_ttl / 2 + Duration::from_secs(30));
    let nodes = world.member_indices();
    let start = world.now();
    let before = counters(&world);
    world.tap_frames(true);

    let mut sent = Vec::new();
    let mut pending = Vec::new();
    while sent.len() < MESSAGES {
        let from = nodes[pick(world.rng(), nodes.len())];
        let to = nodes[pick(world.rng(), nodes.len())];
        if from == to || linked(&world, from, to) {
            continue;
        }
        let to_wallet = wallet(&world, to);
        let bytes = payload(&mut world, sent.len() as u64, 256);
        pending.push(send(&mut world, from, to_wallet, bytes.clone()));
        sent.push((from, to, bytes));
        world.run_for(Duration::from_millis(20));
    }
    let results = wait_all(&mut world, &pending, Duration::from_secs(60));
    world.run_for(Duration::from_secs(5));
    let frames = world.tap_frames(false);
    check_the_wire(&world, &frames, &sent);
    for (k, result) in results.iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Sent { outcome: SendOutcome::Delivered { .. }, .. }))),
            "seed {SEED}: message {k} from node {} to node {}: {result:?}",
            sent[k].0,
            sent[k].1
        );
    }

    let after = counters(&world);
    let mut forwarded = 0;
    for i in 0..world.len() {
        let (Some(b), Some(a)) = (&before[i], &after[i]) else { continue };
        let expected: usize = sent.iter().filter(|(_, to, _)| *to == i).count();
        let got = received_since(&world, i, start);
        assert_eq!(
            got.len(),
            expected,
            "seed {SEED}: node {i} emitted {} messages, {expected} were for it",
            got.len()
        );
        for g in &got {
            let k = u64::from_be_bytes(g.bytes[..8].try_into().expect("8 bytes")) as usize;
            assert!(
                sent.get(k).is_some_and(|(_, to, _)| *to == i),
                "seed {SEED}: node {i} opened message {k}"
            );
        }
        assert_eq!(
            a.messages_received - b.messages_received,
            expected as u64,
            "seed {SEED}: node {i} counted messages that were not for it"
        );
        assert_eq!(a.refused_messages, b.refused_messages, "seed {SEED}: node {i} tried to open a message");
        forwarded += a.forwarded - b.forwarded;
    }
    let holders = mailbox_holders(&world);
    assert!(holders.is_empty(), "seed {SEED}: relays kept mailbox entries: {holders:?}");
    eprintln!("seed {SEED}: {MESSAGES} messages between unlinked nodes; {forwarded} routed frames forwarded");
    // Nodes open no direct links for app traffic, so each message and each receipt took at least one relay.
    assert!(forwarded >= 2 * MESSAGES as u64, "seed {SEED}: only {forwarded} frames were relayed");
    assert_budget_held(&world, SEED);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The ways a wallet address can appear in bytes.
fn wallet_forms(wallet: &Address) -> Vec<Vec<u8>> {
    let lower = wallet.to_checksum().to_lowercase();
    vec![
        wallet.as_bytes().to_vec(),
        lower.as_bytes().to_vec(),
        lower.as_bytes()[2..].to_vec(),
        wallet.to_checksum().into_bytes(),
    ]
}

fn check_the_wire(
    world: &World,
    frames: &[chordial_sim::world::TappedFrame],
    sent: &[(usize, usize, Vec<u8>)],
) {
    let senders: Vec<Vec<Vec<u8>>> =
        sent.iter().map(|(from, _, _)| wallet_forms(&wallet(world, *from))).collect();
    let mut carriers = 0;
    for f in frames {
        for (k, (_, _, bytes)) in sent.iter().enumerate() {
            // The first 8 bytes are the message's index; the 248 after them are random.
            assert!(
                !contains(&f.bytes, &bytes[8..40]),
                "seed {SEED}: a frame from node {} to node {} at {:?} carries message {k}'s plaintext",
                f.from,
                f.to,
                f.at
            );
        }
        let kind = describe_frame(&f.bytes);
        if matches!(kind, Some("Deliver" | "Receipt" | "Hello" | "Welcome" | "SessionData")) {
            carriers += 1;
            for (k, forms) in senders.iter().enumerate() {
                for form in forms {
                    assert!(
                        !contains(&f.bytes, form),
                        "seed {SEED}: a {kind:?} frame from node {} to node {} names message {k}'s sender",
                        f.from,
                        f.to
                    );
                }
            }
        }
    }
    eprintln!("seed {SEED}: {} frames tapped, {carriers} carried a message or a receipt", frames.len());
    // Every message and receipt crossed at least two links (the ends are not linked).
    assert!(carriers >= 4 * sent.len(), "seed {SEED}: only {carriers} message/receipt frames were seen");
}
