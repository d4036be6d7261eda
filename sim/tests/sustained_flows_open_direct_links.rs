//! A sustained flow of messages between two nodes opens a direct link between them (issue 17;
//! `core/src/node/direct.rs`, `docs/protocol.md` "Direct links"), within the link budget, and goes back to
//! routing when the link closes.
//!
//! - Two members with no link to each other: 40 messages one after the other open one direct link (the
//!   sender's `direct_links` counter, a link between the two, its peer naming it `direct`); the next 20
//!   messages cross it (its bytes grow by at least their payloads); each message reaches the app once.
//! - The flow stops: once idle for the policy's time, the link closes on its own, and the next messages go
//!   by the ring, delivered and received once.
//! - With `max_links: 1`, flows to two nodes open one direct link, not two.
//! - With direct links off (`max_links: 0`), the same flow opens none: the first part fails so.
//!
//! Sizes: 16 nodes (the same at full size).

mod common;

use std::time::Duration;

use chordial_core::node::{Config, Event, SendOutcome};
use chordial_sim::scenario::pick;
use chordial_sim::{World, WorldConfig};

use common::{assert_each_once, payload, ring_with, send, wait_one, wallet};

const SEED: u64 = 1717;
const MEMBERS: usize = 16;
const EVENT_LOG: usize = 20_000;
const PAYLOAD: usize = 300;

fn one_direct_link(config: &mut Config) {
    config.direct.max_links = 1;
}

fn no_direct_links(config: &mut Config) {
    config.direct.max_links = 0;
}

fn world(tweak: fn(&mut Config)) -> World {
    let mut config = WorldConfig::new(SEED);
    config.event_log = EVENT_LOG;
    config.tweak = tweak;
    ring_with(config, MEMBERS, Duration::from_secs(20))
}

/// Two members with no link to each other.
fn pair(world: &mut World) -> (usize, usize) {
    let nodes = world.member_indices();
    loop {
        let from = nodes[pick(world.rng(), nodes.len())];
        let to = nodes[pick(world.rng(), nodes.len())];
        if from != to && !linked(world, from, to) {
            return (from, to);
        }
    }
}

fn linked(world: &World, a: usize, b: usize) -> bool {
    world.open_links(a).iter().any(|(_, peer)| *peer == b)
}

/// Node `a`'s link to `b`: its id and the bytes it sent.
fn link_to(world: &World, a: usize, b: usize) -> Option<(chordial_core::node::LinkId, u64)> {
    let (id, _) = world.open_links(a).into_iter().find(|(_, peer)| *peer == b)?;
    let status = world.node(a)?.inspect().link(id)?;
    Some((id, status.bytes_out))
}

fn direct_links(world: &World, i: usize) -> u64 {
    world.node(i).expect("running").inspect().counters().direct_links
}

/// Sends `count` messages from `from` to `to`, each after the last was delivered; returns their payloads.
fn one_by_one(world: &mut World, from: usize, to: usize, first: u64, count: u64) -> Vec<Vec<u8>> {
    let to_wallet = wallet(world, to);
    let mut sent = Vec::new();
    for k in first..first + count {
        let bytes = payload(world, k, PAYLOAD);
        let p = send(world, from, to_wallet, bytes.clone());
        match wait_one(world, p, Duration::from_secs(30)) {
            Some(Event::Sent { outcome: SendOutcome::Delivered { .. }, .. }) => {}
            other => panic!("seed {SEED}: message {k} from node {from} to node {to}: {other:?}"),
        }
        sent.push(bytes);
    }
    sent
}

#[test]
fn a_sustained_flow_opens_a_direct_link_and_goes_back_to_routing_when_it_closes() {
    let mut world = world(|_| {});
    let (from, to) = pair(&mut world);
    let start = world.now();
    let before = direct_links(&world, from);

    let mut sent = one_by_one(&mut world, from, to, 0, 40);
    world.run_for(Duration::from_secs(1));
    assert_eq!(direct_links(&world, from) - before, 1, "seed {SEED}: one direct link offered");
    let (link, bytes_before) =
        link_to(&world, from, to).unwrap_or_else(|| panic!("seed {SEED}: no link from {from} to {to}"));
    // The answerer keeps it for the flow too.
    let peer_side = world.open_links(to).into_iter().find(|(_, p)| *p == from).expect("the peer's end");
    let roles = world.node(to).expect("running").inspect().link(peer_side.0).expect("link").roles;
    assert!(roles.contains(&"direct".to_string()), "seed {SEED}: the peer's roles {roles:?}");

    sent.extend(one_by_one(&mut world, from, to, 40, 20));
    let (still, bytes_after) = link_to(&world, from, to).expect("still open");
    assert_eq!(still, link);
    assert!(
        bytes_after - bytes_before >= 20 * PAYLOAD as u64,
        "seed {SEED}: 20 messages of {PAYLOAD} B crossed the direct link: {} B",
        bytes_after - bytes_before
    );
    assert_each_once(&world, SEED, to, start, &sent);

    // The flow stops: the link closes once idle (it has no other role: the pair has no link of the ring's).
    let roles = world.node(from).expect("running").inspect().link(link).expect("link").roles;
    assert_eq!(roles, vec!["direct".to_string()], "seed {SEED}");
    world.run_for(world.node_config().direct.idle + Duration::from_secs(20));
    assert!(!linked(&world, from, to), "seed {SEED}: the idle direct link closed");
    let since = world.now();
    let more = one_by_one(&mut world, from, to, 60, 5);
    assert_each_once(&world, SEED, to, since, &more);
    assert_eq!(direct_links(&world, from) - before, 1, "seed {SEED}: five messages are no sustained flow");
}

#[test]
fn the_budget_bounds_direct_links() {
    let mut world = world(one_direct_link);
    let (from, to) = pair(&mut world);
    let other = loop {
        let nodes = world.member_indices();
        let c = nodes[pick(world.rng(), nodes.len())];
        if c != from && c != to && !linked(&world, from, c) {
            break c;
        }
    };
    let before = direct_links(&world, from);
    one_by_one(&mut world, from, to, 0, 40);
    one_by_one(&mut world, from, other, 100, 40);
    world.run_for(Duration::from_secs(1));
    assert_eq!(direct_links(&world, from) - before, 1, "seed {SEED}: one direct link at most");
    assert!(
        linked(&world, from, to) && !linked(&world, from, other),
        "seed {SEED}: the first flow's link only"
    );
}

#[test]
fn with_direct_links_off_the_flow_stays_on_the_ring() {
    let mut world = world(no_direct_links);
    let (from, to) = pair(&mut world);
    one_by_one(&mut world, from, to, 0, 40);
    world.run_for(Duration::from_secs(1));
    assert_eq!(direct_links(&world, from), 0);
    assert!(!linked(&world, from, to), "seed {SEED}: no link between the two");
}
