//! The simulator is deterministic: one seed, one run. Two worlds with the same seed, driven through the same
//! joins, crashes, restarts, leaves, loss, lookups and messages, end in identical node states and counters —
//! and so do two worlds that differ only in their crypto provider: no decision depends on signature or
//! ciphertext bytes.

use std::time::Duration;

use chordial_core::crypto::{CryptoRef, REAL};
use chordial_core::node::Status;
use chordial_sim::crypto::FAST;
use chordial_sim::messages::MessageTracker;
use chordial_sim::scenario::{build_base, join_nodes, lookup_batch, random_member};
use chordial_sim::world::{NodeStats, WorldStats};
use chordial_sim::{World, WorldConfig};

type Run = (Vec<Option<Status>>, Vec<NodeStats>, WorldStats, String);

fn run(seed: u64, crypto: CryptoRef) -> Run {
    let mut config = WorldConfig::new(seed);
    config.crypto = crypto;
    config.net.loss = 0.05;
    let mut world = World::new(config);
    let base = build_base(&mut world, 5, Duration::from_secs(120)).expect("base converges");
    join_nodes(&mut world, 25, &base, Duration::from_secs(5));
    world.run_for(Duration::from_secs(20));
    let victim = random_member(&mut world, &base.iter().copied().collect()).expect("a member");
    world.crash(victim);
    let leaver = random_member(&mut world, &base.iter().copied().collect()).expect("a member");
    world.leave(leaver);
    world.run_for(Duration::from_secs(15));
    // Mail for the crashed node: its presence is still live, so the messages are stored for it and handed
    // over together when it is back (the order they come out of a mailbox in must not follow the bytes of
    // their ciphertexts, which differ with the provider).
    let mut messages = MessageTracker::new();
    let members = world.member_indices();
    for k in 0..4 {
        let from = members[(k * 5 + 1) % members.len()];
        if from != victim && from != leaver {
            messages.send(&mut world, from, victim);
        }
        world.run_for(Duration::from_millis(300));
    }
    world.run_for(Duration::from_secs(10));
    world.restart(victim, base[0]);
    let lookups = lookup_batch(&mut world, 200, Duration::from_millis(20), Duration::from_secs(20));
    let members = world.member_indices();
    for k in 0..12 {
        messages.send(&mut world, members[k % members.len()], members[(k * 7 + 3) % members.len()]);
        world.run_for(Duration::from_millis(200));
    }
    messages.wait(&mut world, Duration::from_secs(30));
    let messages = messages.judge(&world);
    assert!(messages.delivered > 0, "seed {seed}: no message was delivered: {messages:?}");
    world.run_for(Duration::from_secs(10));
    let statuses = (0..world.len()).map(|i| world.node(i).map(|n| n.inspect().status())).collect();
    let stats = (0..world.len()).map(|i| world.stats(i).clone()).collect();
    (statuses, stats, world.world_stats().clone(), format!("{lookups:?} {messages:?}"))
}

#[test]
fn two_runs_with_one_seed_are_identical() {
    let a = run(42, &REAL);
    let b = run(42, &REAL);
    assert_eq!(a.2, b.2, "world counters differ");
    assert_eq!(a.1, b.1, "node counters differ");
    assert_eq!(a.3, b.3, "lookup results differ");
    assert_eq!(a.0, b.0, "node states differ");
    let c = run(43, &REAL);
    assert_ne!(a.2, c.2, "another seed should give another run");
}

#[test]
fn fast_and_real_crypto_make_the_same_decisions() {
    let real = run(42, &REAL);
    let fast = run(42, &FAST);
    assert_eq!(real.2, fast.2, "world counters differ");
    assert_eq!(real.1, fast.1, "node counters differ");
    assert_eq!(real.3, fast.3, "lookup or message results differ");
    assert_eq!(real.0, fast.0, "node states differ");
}
