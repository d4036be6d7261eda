//! The simulator is deterministic: one seed, one run. Two worlds with the same seed, driven through the same
//! joins, crashes, restarts, leaves, loss and lookups, end in identical node states and counters.

use std::time::Duration;

use chordial_core::node::Status;
use chordial_sim::scenario::{build_base, join_nodes, lookup_batch, random_member};
use chordial_sim::world::{NodeStats, WorldStats};
use chordial_sim::{World, WorldConfig};

fn run(seed: u64) -> (Vec<Option<Status>>, Vec<NodeStats>, WorldStats, String) {
    let mut config = WorldConfig::new(seed);
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
    world.restart(victim, base[0]);
    let lookups = lookup_batch(&mut world, 200, Duration::from_millis(20), Duration::from_secs(20));
    world.run_for(Duration::from_secs(10));
    let statuses = (0..world.len()).map(|i| world.node(i).map(|n| n.status())).collect();
    let stats = (0..world.len()).map(|i| world.stats(i).clone()).collect();
    (statuses, stats, world.world_stats().clone(), format!("{lookups:?}"))
}

#[test]
fn two_runs_with_one_seed_are_identical() {
    let a = run(42);
    let b = run(42);
    assert_eq!(a.2, b.2, "world counters differ");
    assert_eq!(a.1, b.1, "node counters differ");
    assert_eq!(a.3, b.3, "lookup results differ");
    assert_eq!(a.0, b.0, "node states differ");
    let c = run(43);
    assert_ne!(a.2, c.2, "another seed should give another run");
}
