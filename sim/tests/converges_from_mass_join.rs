//! Nodes join at once through a small stable base, and the ring converges to the ideal: every successor
//! list and predecessor exactly right, every Zave property holding, no node above its link cap.
//!
//! Sizes: 300 joiners by default, 1,000 (the brief's size) with `CHORDIAL_SIM_FULL=1`; the benchmark
//! (`chordial-sim bench`) measures the convergence time for 1,024, 4,096 and 16,384 nodes.

use std::time::Duration;

use chordial_sim::crypto::FAST;
use chordial_sim::scenario::{
    assert_budget_held, build_base, join_nodes, link_creations_per_node, run_until_exact, scaled, unjoined,
};
use chordial_sim::{World, WorldConfig};

const SEED: u64 = 1;
const BASE: usize = 4;
/// Joiners arrive uniformly over this window.
const SPREAD: Duration = Duration::from_secs(30);
/// Bound on the time from the last arrival to an exactly right ring.
const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn a_thousand_joiners_through_a_base_of_four_converge_to_the_ideal_ring() {
    let joiners = scaled(300, 1_000);
    let mut world = World::new(ring_config());
    let base =
        build_base(&mut world, BASE, Duration::from_secs(120)).unwrap_or_else(|e| panic!("seed {SEED}: {e}"));
    let start = world.now();
    join_nodes(&mut world, joiners, &base, SPREAD);
    let after_last = run_until_exact(&mut world, LIMIT, Duration::from_secs(1));
    let report = world.ring_view().check_all();
    assert!(
        after_last.is_some(),
        "seed {SEED}: not exactly right {LIMIT:?} after the last arrival ({} members of {} alive):\n{report}\n{:#?}",
        world.members().len(),
        world.alive_count(),
        unjoined(&world),
    );
    assert!(report.ok(), "seed {SEED}: {report}");
    assert_eq!(world.members().len(), BASE + joiners);
    let (mean, max, cap) = assert_budget_held(&world, SEED);
    eprintln!(
        "{joiners} joiners: exact {:.1}s after the first arrival ({:.1}s after the last); links mean {mean:.1} \
         max {max} cap {cap}; {:.1} link creations per node",
        world.now().since(start).as_secs_f64(),
        after_last.unwrap_or_default().as_secs_f64(),
        link_creations_per_node(&world),
    );
    // It stays right.
    world.run_for(Duration::from_secs(30));
    let report = world.ring_view().check_all();
    assert!(report.ok(), "seed {SEED}: 30 s after convergence: {report}");
}

/// The fast crypto provider: a ring scenario makes the same decisions with it as with real signatures
/// (`same_seed_same_run::fast_and_real_crypto_make_the_same_decisions`), at a fraction of the time.
fn ring_config() -> WorldConfig {
    WorldConfig { crypto: &FAST, ..WorldConfig::new(SEED) }
}
