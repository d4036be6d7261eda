//! The route cache (`node::app`, `Config::route_cache_ttl`): a send to a wallet that this node sent to a
//! moment ago goes straight to the sessions the earlier send's presence read found — no `Get`, no
//! `Records` — and it is still right when the route went stale:
//!
//! - five more messages to the same wallet are delivered with no presence read at all, where the same
//!   world with the cache off reads the wallet's positions for each of them;
//! - after the recipient's node crashed, a send through the cached route is stored in the wallet's
//!   mailbox (the failed delivery drops the route and the positions are read again for where to store),
//!   and the recipient gets it, once, when it comes back;
//! - a second device of the wallet gets messages once the route lapsed (`ROUTE_CACHE_TTL`).
//!
//! Sizes: 40 nodes (the same at full size).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chordial_core::node::{Event, SendOutcome, ROUTE_CACHE_TTL};
use chordial_sim::scenario::{pick, run_until_exact};
use chordial_sim::world::{World, WorldConfig};

use common::{payload, received_since, ring, ring_with, send, wait_one, wallet, APP};

const SEED: u64 = 47;
const MEMBERS: usize = 40;

/// A sender and a recipient that are neither base node (the base bootstraps restarts).
fn pair(world: &mut World) -> (usize, usize) {
    let nodes = world.member_indices();
    let from = nodes[5 + pick(world.rng(), nodes.len() - 5)];
    loop {
        let to = nodes[5 + pick(world.rng(), nodes.len() - 5)];
        if to != from {
            return (from, to);
        }
    }
}

fn hits(world: &World, i: usize) -> u64 {
    world.node(i).map_or(0, |n| n.inspect().status().counters.route_cache_hits)
}

/// Sends `count` messages from `from` to `to`, one after the other, each to be delivered to `to`'s one
/// session; returns the frames of each kind the whole world sent meanwhile.
fn send_delivered(
    world: &mut World,
    from: usize,
    to: usize,
    first: u64,
    count: u64,
) -> BTreeMap<&'static str, (u64, u64)> {
    let to_wallet = wallet(world, to);
    world.count_kinds(true);
    for k in first..first + count {
        let bytes = payload(world, k, 200);
        let p = send(world, from, to_wallet, bytes);
        match wait_one(world, p, Duration::from_secs(30)) {
            Some(Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. }) => {
                assert_eq!(sessions, vec![world.id(to)], "seed {SEED}: message {k} delivered to {sessions:?}")
            }
            other => panic!("seed {SEED}: message {k} from node {from} to node {to}: {other:?}"),
        }
    }
    world.count_kinds(false)
}

fn count(kinds: &BTreeMap<&'static str, (u64, u64)>, kind: &str) -> u64 {
    kinds.get(kind).map_or(0, |(n, _)| *n)
}

#[test]
fn later_sends_to_a_wallet_read_no_presence() {
    let run = |cache: bool| {
        let mut config = WorldConfig::new(SEED);
        config.event_log = 20_000;
        if !cache {
            config.tweak = |c| c.route_cache_ttl = Duration::ZERO;
        }
        let mut world = ring_with(config, MEMBERS, Duration::from_secs(10));
        let (from, to) = pair(&mut world);
        let first = send_delivered(&mut world, from, to, 0, 1);
        assert!(count(&first, "Get") > 0, "seed {SEED}: the first send read no presence: {first:?}");
        let later = send_delivered(&mut world, from, to, 1, 5);
        let received = received_since(&world, to, chordial_core::Timestamp::from_secs(0));
        assert_eq!(received.len(), 6, "seed {SEED}: node {to} received {received:?}");
        assert!(received.iter().all(|g| g.origin == APP && g.from == wallet(&world, from)));
        (
            count(&later, "Get") + count(&later, "Records"),
            later.values().map(|(n, _)| n).sum::<u64>(),
            hits(&world, from),
        )
    };
    let (reads_cached, frames_cached, hits_cached) = run(true);
    let (reads_off, frames_off, hits_off) = run(false);
    eprintln!(
        "seed {SEED}: 5 sends to one wallet: cache on {reads_cached} Get+Records frames, {frames_cached} frames \
         in all, {hits_cached} hits; cache off {reads_off} Get+Records, {frames_off} in all, {hits_off} hits"
    );
    assert_eq!(hits_cached, 5, "seed {SEED}: route cache hits");
    assert_eq!(reads_cached, 0, "seed {SEED}: presence reads with the route cached");
    assert_eq!(hits_off, 0, "seed {SEED}: route cache hits with the cache off");
    assert!(reads_off >= 5 * 2, "seed {SEED}: with the cache off each send reads: {reads_off} frames");
    assert!(frames_cached < frames_off, "seed {SEED}: {frames_cached} frames cached, {frames_off} without");
}

#[test]
fn a_send_through_a_route_that_went_stale_is_stored_and_arrives_once() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let (from, to) = pair(&mut world);
    send_delivered(&mut world, from, to, 0, 1);

    let to_wallet = wallet(&world, to);
    world.crash(to);
    let start = world.now();
    let bytes = payload(&mut world, 1, 300);
    let p = send(&mut world, from, to_wallet, bytes.clone());
    assert_eq!(hits(&world, from), 1, "seed {SEED}: the send after the crash did not go by the cached route");
    match wait_one(&mut world, p, Duration::from_secs(30)) {
        Some(Event::Sent { outcome: SendOutcome::Stored, .. }) => {}
        other => panic!("seed {SEED}: send to the crashed node {to}: {other:?}"),
    }
    // The failed route is gone: the next send reads again.
    let bytes2 = payload(&mut world, 2, 300);
    let p = send(&mut world, from, to_wallet, bytes2);
    assert_eq!(hits(&world, from), 1, "seed {SEED}: a failed route was used again");
    assert!(
        matches!(
            wait_one(&mut world, p, Duration::from_secs(30)),
            Some(Event::Sent { outcome: SendOutcome::Stored, .. })
        ),
        "seed {SEED}: second send to the crashed node"
    );

    world.restart(to, 0);
    assert!(
        run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1)).is_some(),
        "seed {SEED}: node {to} did not rejoin: {}",
        world.ring_view().check_all()
    );
    world.run_for(Duration::from_secs(20));
    let got = received_since(&world, to, start);
    let first: Vec<_> = got.iter().filter(|g| g.bytes == bytes).collect();
    assert_eq!(
        first.len(),
        1,
        "seed {SEED}: the message sent by the stale route arrived {} times",
        first.len()
    );
    assert_eq!(got.len(), 2, "seed {SEED}: node {to} received {got:?}");
}

#[test]
fn a_new_device_is_reached_once_the_route_lapses() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let (from, to) = pair(&mut world);
    send_delivered(&mut world, from, to, 0, 1);
    let base: Vec<usize> = (0..5).collect();
    let second = world.add_device(to, &base);
    assert!(
        run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1)).is_some(),
        "seed {SEED}: the ring did not take in the second device: {}",
        world.ring_view().check_all()
    );
    world.run_for(ROUTE_CACHE_TTL);
    let (to_wallet, bytes) = (wallet(&world, to), payload(&mut world, 1, 300));
    let p = send(&mut world, from, to_wallet, bytes);
    match wait_one(&mut world, p, Duration::from_secs(30)) {
        Some(Event::Sent { outcome: SendOutcome::Delivered { mut sessions }, .. }) => {
            sessions.sort();
            let mut both = vec![world.id(to), world.id(second)];
            both.sort();
            assert_eq!(sessions, both, "seed {SEED}: delivered to {sessions:?}");
        }
        other => panic!("seed {SEED}: send to the wallet's two devices: {other:?}"),
    }
    assert_eq!(hits(&world, from), 0, "seed {SEED}: a lapsed route was used");
}
