//! On a converged ring, lookups return the true owner every time, in about half of log2 N hops.
//!
//! Sizes: 300 members by default, 1,000 (the brief's size) with `CHORDIAL_SIM_FULL=1`; 10,000 lookups
//! either way. The benchmark reports hops for 1,024, 4,096 and 16,384 nodes.

use std::time::Duration;

use chordial_sim::crypto::FAST;
use chordial_sim::scenario::{
    assert_budget_held, build_base, join_nodes, log2, lookup_batch, run_until_exact, scaled,
};
use chordial_sim::{World, WorldConfig};

const SEED: u64 = 2;
const LOOKUPS: usize = 10_000;

#[test]
fn ten_thousand_lookups_find_the_true_owner_in_about_half_log2_n_hops() {
    let members = scaled(300, 1_000);
    let mut world = World::new(ring_config());
    let base =
        build_base(&mut world, 5, Duration::from_secs(120)).unwrap_or_else(|e| panic!("seed {SEED}: {e}"));
    join_nodes(&mut world, members - base.len(), &base, Duration::from_secs(30));
    assert!(
        run_until_exact(&mut world, Duration::from_secs(300), Duration::from_secs(1)).is_some(),
        "seed {SEED}: no convergence: {}",
        world.ring_view().check_all()
    );
    // Let the finger sweeps complete before measuring path lengths.
    world.run_for(Duration::from_secs(30));
    let stats = lookup_batch(&mut world, LOOKUPS, Duration::from_millis(2), Duration::from_secs(30));
    let n = world.members().len();
    eprintln!("N = {n}: {stats:?}");
    assert_eq!(stats.correct, LOOKUPS, "seed {SEED}: not every lookup found the true owner: {stats:?}");
    let mean_bound = 0.5 * log2(n) + 0.5;
    let p99_bound = log2(n) + 1.0;
    assert!(stats.hops.mean <= mean_bound, "seed {SEED}: mean hops {} > {mean_bound:.2}", stats.hops.mean);
    assert!(stats.hops.p99 <= p99_bound, "seed {SEED}: p99 hops {} > {p99_bound:.2}", stats.hops.p99);
    assert_budget_held(&world, SEED);
}

/// The fast crypto provider: a ring scenario makes the same decisions with it as with real signatures
/// (`same_seed_same_run::fast_and_real_crypto_make_the_same_decisions`), at a fraction of the time.
fn ring_config() -> WorldConfig {
    WorldConfig { crypto: &FAST, ..WorldConfig::new(SEED) }
}
