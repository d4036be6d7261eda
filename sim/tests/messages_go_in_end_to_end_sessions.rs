//! Live messages go in end-to-end sessions (issue 17; `docs/encryption.md`, "End-to-end sessions"): the
//! first message to a session starts one (a Noise hello carrying the message, answered by the welcome that
//! is its receipt), and every later message in either direction is one AEAD operation in it — no sealing to
//! the recipient's key, no signature or delegation inside, a frame about half the size.
//!
//! - Five messages one after the other: one hello, four session messages, each delivered and received once;
//!   the answers go back in the same session (the recipient starts none of its own).
//! - The recipient restarts with its durable state but no sessions: the sender's next message is answered
//!   "no such session" and goes again in a hello; every message is received once.
//! - Eight messages at once to a new session: the first starts the session, the other seven wait for its
//!   handshake and go in it.
//! - A relay crashes in the middle of a burst: every message is delivered or stored, and received once.
//! - 32 messages at once in a session: each delivered, acknowledged by a few receipts in the session (they
//!   name ranges of counters), not one signed `Receipt` each.
//!
//! Sizes: 16 nodes (the same at full size).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chordial_core::node::{Counters, Event, SendOutcome};
use chordial_sim::scenario::pick;
use chordial_sim::World;

use common::{assert_each_once, payload, ring, send, wait_all, wait_one, wallet};

const SEED: u64 = 171;
const MEMBERS: usize = 16;

fn counters(world: &World, i: usize) -> Counters {
    world.node(i).expect("running").inspect().counters().clone()
}

/// Two members with no link to each other, neither a base node (the base bootstraps restarts).
fn pair(world: &mut World) -> (usize, usize) {
    let nodes = world.member_indices();
    loop {
        let from = nodes[4 + pick(world.rng(), nodes.len() - 4)];
        let to = nodes[4 + pick(world.rng(), nodes.len() - 4)];
        let linked = world.open_links(from).iter().any(|(_, peer)| *peer == to);
        if from != to && !linked {
            return (from, to);
        }
    }
}

/// Sends `count` messages from `from` to `to`, each after the last was delivered; returns their payloads.
fn one_by_one(world: &mut World, from: usize, to: usize, first: u64, count: u64) -> Vec<Vec<u8>> {
    let to_wallet = wallet(world, to);
    let mut sent = Vec::new();
    for k in first..first + count {
        let bytes = payload(world, k, 300);
        let p = send(world, from, to_wallet, bytes.clone());
        match wait_one(world, p, Duration::from_secs(30)) {
            Some(Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. }) => {
                assert_eq!(sessions, vec![world.id(to)], "seed {SEED}: message {k}")
            }
            other => panic!("seed {SEED}: message {k} from node {from} to node {to}: {other:?}"),
        }
        sent.push(bytes);
    }
    sent
}

fn mean_bytes(kinds: &BTreeMap<&'static str, (u64, u64)>, kind: &str) -> u64 {
    kinds.get(kind).map_or(0, |(n, bytes)| bytes / (*n).max(1))
}

#[test]
fn later_messages_go_in_the_session_the_first_started() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let (from, to) = pair(&mut world);
    let since = world.now();
    let (a, b) = (counters(&world, from), counters(&world, to));
    world.count_kinds(true);
    let sent = one_by_one(&mut world, from, to, 0, 5);
    let kinds = world.count_kinds(false);
    world.run_for(Duration::from_secs(2));
    assert_each_once(&world, SEED, to, since, &sent);
    let (a2, b2) = (counters(&world, from), counters(&world, to));
    assert_eq!(a2.session_hellos - a.session_hellos, 1, "seed {SEED}: hellos sent");
    assert_eq!(a2.session_messages - a.session_messages, 4, "seed {SEED}: messages sent in the session");
    assert_eq!(b2.session_hellos - b.session_hellos, 0, "seed {SEED}: the recipient started a session");
    assert!(!kinds.contains_key("Deliver"), "seed {SEED}: a message went sealed on its own: {kinds:?}");

    // And back: the recipient answers in the session the sender started.
    let back = world.now();
    let replies = one_by_one(&mut world, to, from, 100, 3);
    world.run_for(Duration::from_secs(2));
    assert_each_once(&world, SEED, from, back, &replies);
    let b3 = counters(&world, to);
    assert_eq!(b3.session_hellos - b.session_hellos, 0, "seed {SEED}: the reply started a session");
    assert_eq!(b3.session_messages - b.session_messages, 3, "seed {SEED}: replies sent in the session");

    let (hello, data) = (mean_bytes(&kinds, "Hello"), mean_bytes(&kinds, "SessionData"));
    eprintln!(
        "seed {SEED}: frames by kind (count, bytes): {kinds:?}; mean Hello {hello} B, SessionData {data} B"
    );
    assert!(
        data * 3 < hello * 2,
        "seed {SEED}: a session message ({data} B) is not much smaller than a hello ({hello} B)"
    );
}

#[test]
fn a_burst_to_a_new_session_waits_for_one_handshake() {
    let mut world = ring(SEED + 3, MEMBERS, Duration::from_secs(10));
    let (from, to) = pair(&mut world);
    let since = world.now();
    let before = counters(&world, from);
    let to_wallet = wallet(&world, to);
    world.count_kinds(true);
    let mut pending = Vec::new();
    let mut sent = Vec::new();
    for k in 0..8u64 {
        let bytes = payload(&mut world, k, 300);
        pending.push(send(&mut world, from, to_wallet, bytes.clone()));
        sent.push(bytes);
    }
    for (k, result) in wait_all(&mut world, &pending, Duration::from_secs(60)).iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Sent { outcome: SendOutcome::Delivered { .. }, .. }))),
            "seed {SEED}: message {k} of the burst: {result:?}"
        );
    }
    let kinds = world.count_kinds(false);
    world.run_for(Duration::from_secs(2));
    assert_each_once(&world, SEED, to, since, &sent);
    let after = counters(&world, from);
    assert_eq!(after.session_hellos - before.session_hellos, 1, "seed {SEED}: hellos for the burst");
    assert_eq!(
        after.session_messages - before.session_messages,
        7,
        "seed {SEED}: the rest went in the session"
    );
    assert!(!kinds.contains_key("Deliver"), "seed {SEED}: a message of the burst went on its own: {kinds:?}");
}

#[test]
fn a_restarted_recipient_gets_the_next_messages_once_through_a_new_handshake() {
    let mut world = ring(SEED + 1, MEMBERS, Duration::from_secs(10));
    let (from, to) = pair(&mut world);
    let since = world.now();
    let mut sent = one_by_one(&mut world, from, to, 0, 2);
    let base = world.member_indices()[0];
    world.crash(to);
    world.run_for(Duration::from_secs(1));
    world.restart_durable(to, base);
    world.run_for(Duration::from_secs(30));
    let before = counters(&world, from);
    sent.extend(one_by_one(&mut world, from, to, 10, 3));
    world.run_for(Duration::from_secs(2));
    assert_each_once(&world, SEED, to, since, &sent);
    let after = counters(&world, from);
    assert_eq!(
        after.sessions_lost - before.sessions_lost,
        1,
        "seed {SEED}: the lost session was not found out"
    );
    assert_eq!(after.session_hellos - before.session_hellos, 1, "seed {SEED}: hellos after the restart");
    assert_eq!(
        after.session_messages - before.session_messages,
        3,
        "seed {SEED}: session messages after the restart"
    );
}

#[test]
fn a_relay_that_crashes_mid_burst_loses_and_duplicates_nothing() {
    let mut world = ring(SEED + 2, MEMBERS, Duration::from_secs(10));
    let (from, to) = pair(&mut world);
    let since = world.now();
    let mut sent = one_by_one(&mut world, from, to, 0, 1);
    let to_wallet = wallet(&world, to);
    let relay = world
        .member_indices()
        .into_iter()
        .skip(4)
        .find(|&i| i != from && i != to)
        .expect("a member that is neither end");
    let mut pending = Vec::new();
    for k in 1..=20u64 {
        let bytes = payload(&mut world, k, 2_000);
        pending.push(send(&mut world, from, to_wallet, bytes.clone()));
        sent.push(bytes);
        if k == 10 {
            world.crash(relay);
        }
        world.run_for(Duration::from_millis(20));
    }
    for (k, result) in wait_all(&mut world, &pending, Duration::from_secs(120)).iter().enumerate() {
        assert!(
            matches!(
                result,
                Some((_, Event::Sent { outcome: SendOutcome::Delivered { .. } | SendOutcome::Stored, .. }))
            ),
            "seed {SEED}: message {} of the burst: {result:?}",
            k + 1
        );
    }
    world.run_for(Duration::from_secs(60));
    assert_each_once(&world, SEED, to, since, &sent);
}

#[test]
fn a_burst_in_a_session_is_acknowledged_by_a_few_receipts() {
    let mut world = ring(SEED + 4, MEMBERS, Duration::from_secs(10));
    let (from, to) = pair(&mut world);
    let since = world.now();
    let mut sent = one_by_one(&mut world, from, to, 0, 1);
    let (a, b) = (counters(&world, from), counters(&world, to));
    let to_wallet = wallet(&world, to);
    world.count_kinds(true);
    let mut pending = Vec::new();
    for k in 1..=32u64 {
        let bytes = payload(&mut world, k, 300);
        pending.push(send(&mut world, from, to_wallet, bytes.clone()));
        sent.push(bytes);
    }
    for (k, result) in wait_all(&mut world, &pending, Duration::from_secs(60)).iter().enumerate() {
        match result {
            Some((_, Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. })) => {
                assert_eq!(sessions, &vec![world.id(to)], "seed {SEED}: message {} of the burst", k + 1)
            }
            other => panic!("seed {SEED}: message {} of the burst: {other:?}", k + 1),
        }
    }
    let kinds = world.count_kinds(false);
    world.run_for(Duration::from_secs(2));
    assert_each_once(&world, SEED, to, since, &sent);
    let (a2, b2) = (counters(&world, from), counters(&world, to));
    let receipts = b2.session_receipts - b.session_receipts;
    eprintln!("seed {SEED}: 32 messages in a session, {receipts} receipts; frames by kind: {kinds:?}");
    assert_eq!(a2.session_messages - a.session_messages, 32, "seed {SEED}: messages in the session");
    assert!(
        (1..=8).contains(&receipts),
        "seed {SEED}: {receipts} receipts for a burst of 32 messages (one each is what cumulative receipts avoid)"
    );
    assert!(!kinds.contains_key("Receipt"), "seed {SEED}: a signed receipt for a session message: {kinds:?}");
}
