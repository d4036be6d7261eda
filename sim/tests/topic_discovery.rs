//! Topics: 200 wallets announce on an app's topic and `discover` from any node returns exactly those 200
//! for as long as the announcements live; none once they expired (short TTL, clock run past it); none once
//! they were withdrawn (half first: exactly the other half); and another app origin never sees any of them.
//!
//! Sizes: 200 nodes, one wallet each (the brief's size; the 200 records take several `Records` pages).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chordial_core::identity::Address;
use chordial_core::node::Event;
use chordial_core::Timestamp;
use chordial_sim::scenario::{assert_budget_held, pick};
use chordial_sim::World;

use common::{ask, ring, wait_all, wait_one, wallet, Pending, APP};

const SEED: u64 = 41;
const MEMBERS: usize = 200;
const OTHER_APP: &str = "https://other.example";
const SHORT_TTL: Duration = Duration::from_secs(120);
const LONG_TTL: Duration = Duration::from_secs(1800);
/// Nodes each `discover` is asked from.
const ASKERS: usize = 5;

/// Every node in `who` announces (or withdraws) on `topic`; all must resolve `Done`.
fn publish(world: &mut World, who: &[usize], topic: &str, ttl: Option<Duration>) {
    let pending: Vec<Pending> = who
        .iter()
        .map(|&i| {
            let p = ask(world, i, |n, now| match ttl {
                Some(ttl) => n.announce(now, APP, topic, ttl),
                None => n.withdraw(now, APP, topic),
            });
            world.run_for(Duration::from_millis(10));
            p
        })
        .collect();
    let results = wait_all(world, &pending, Duration::from_secs(60));
    let failed: Vec<String> = results
        .iter()
        .zip(&pending)
        .filter(|(r, _)| !matches!(r, Some((_, Event::Done { .. }))))
        .map(|(r, p)| format!("node {}: {r:?}", p.node))
        .collect();
    let what = if ttl.is_some() { "announce" } else { "withdraw" };
    assert!(
        failed.is_empty(),
        "seed {SEED}: {what} on {topic:?} failed at {} nodes: {failed:#?}",
        failed.len()
    );
}

/// The wallets `discover(origin, topic)` returns at `ASKERS` random nodes (each answer checked to be the
/// same set, without duplicates).
fn discover(world: &mut World, origin: &str, topic: &str, when: &str) -> BTreeSet<Address> {
    let nodes = world.member_indices();
    let mut answers = Vec::new();
    for _ in 0..ASKERS {
        let i = nodes[pick(world.rng(), nodes.len())];
        let p = ask(world, i, |n, now| n.discover(now, origin, topic));
        match wait_one(world, p, Duration::from_secs(30)) {
            Some(Event::Discovered { members, .. }) => {
                let set: BTreeSet<Address> = members.iter().map(|(w, _)| *w).collect();
                assert_eq!(set.len(), members.len(), "seed {SEED}: {when}: node {i} got duplicates");
                answers.push((i, set));
            }
            other => panic!("seed {SEED}: {when}: discover({origin}, {topic}) at node {i}: {other:?}"),
        }
    }
    let (first, set) = answers[0].clone();
    for (i, other) in &answers[1..] {
        assert_eq!(
            other,
            &set,
            "seed {SEED}: {when}: nodes {first} and {i} disagree ({} vs {} wallets)",
            set.len(),
            other.len()
        );
    }
    set
}

fn assert_same(world: &World, got: &BTreeSet<Address>, want: &BTreeSet<Address>, when: &str) {
    let missing = want.difference(got).count();
    let extra = got.difference(want).count();
    assert!(
        missing == 0 && extra == 0,
        "seed {SEED}: {when} (t = {}s): {} wallets found, {missing} missing, {extra} unexpected",
        world.elapsed().as_secs(),
        got.len()
    );
}

#[test]
fn discover_returns_exactly_the_live_announcements_of_its_own_origin() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(30));
    let nodes = world.member_indices();
    assert_eq!(nodes.len(), MEMBERS, "seed {SEED}: members after convergence");
    let everyone: BTreeSet<Address> = nodes.iter().map(|&i| wallet(&world, i)).collect();
    assert_eq!(everyone.len(), MEMBERS, "seed {SEED}: wallets are not distinct");
    let none = BTreeSet::new();

    // A short-lived announcement: all 200 within its TTL, none after it.
    let announced: Timestamp = world.now();
    publish(&mut world, &nodes, "flash", Some(SHORT_TTL));
    let got = discover(&mut world, APP, "flash", "just after announcing");
    assert_same(&world, &got, &everyone, "just after announcing");
    let got = discover(&mut world, OTHER_APP, "flash", "other origin");
    assert_same(&world, &got, &none, "another origin");
    world.run_until(announced.saturating_add(SHORT_TTL - Duration::from_secs(20)));
    let got = discover(&mut world, APP, "flash", "shortly before the TTL");
    assert_same(&world, &got, &everyone, "shortly before the TTL");
    world.run_until(world.now().saturating_add(Duration::from_secs(30)));
    let got = discover(&mut world, APP, "flash", "after the TTL");
    assert_same(&world, &got, &none, "after the TTL");

    // A long-lived announcement, withdrawn in two halves.
    publish(&mut world, &nodes, "lobby", Some(LONG_TTL));
    let got = discover(&mut world, APP, "lobby", "long TTL");
    assert_same(&world, &got, &everyone, "long TTL");
    let got = discover(&mut world, OTHER_APP, "lobby", "other origin");
    assert_same(&world, &got, &none, "another origin");
    world.run_for(Duration::from_secs(5));
    let (first_half, second_half) = nodes.split_at(MEMBERS / 2);
    publish(&mut world, first_half, "lobby", None);
    let staying: BTreeSet<Address> = second_half.iter().map(|&i| wallet(&world, i)).collect();
    let got = discover(&mut world, APP, "lobby", "after half withdrew");
    assert_same(&world, &got, &staying, "after half withdrew");
    world.run_for(Duration::from_secs(5));
    publish(&mut world, second_half, "lobby", None);
    let got = discover(&mut world, APP, "lobby", "after all withdrew");
    assert_same(&world, &got, &none, "after all withdrew");
    eprintln!("seed {SEED}: {MEMBERS} wallets discovered, expired, withdrawn and scoped as announced");
    assert_budget_held(&world, SEED);
}
