//! A quarter of the ring crashes at once. After a bounded repair time the ring is exactly right again,
//! every property holds, and every lookup returns the true (live) owner.
//!
//! With r = 4 and 25% crashed, about 1 node in 256 loses its whole successor list — beyond Correct Chord's
//! failure model — so this also tests recovery through fingers and other links.
//!
//! Sizes: 400 nodes by default, 2,000 (the brief's size) with `CHORDIAL_SIM_FULL=1`.

use std::collections::BTreeSet;
use std::time::Duration;

use chordial_sim::crypto::FAST;
use chordial_sim::scenario::{
    assert_budget_held, build_base, join_nodes, lookup_batch, pick, run_until_exact, scaled,
};
use chordial_sim::{World, WorldConfig};

const SEED: u64 = 4;
const REPAIR_LIMIT: Duration = Duration::from_secs(300);

#[test]
fn a_quarter_of_the_ring_crashing_at_once_is_repaired() {
    let members = scaled(400, 2_000);
    let mut world = World::new(ring_config());
    let base =
        build_base(&mut world, 5, Duration::from_secs(120)).unwrap_or_else(|e| panic!("seed {SEED}: {e}"));
    join_nodes(&mut world, members - base.len(), &base, Duration::from_secs(40));
    assert!(
        run_until_exact(&mut world, Duration::from_secs(300), Duration::from_secs(1)).is_some(),
        "seed {SEED}: no convergence before the failure: {}",
        world.ring_view().check_all()
    );
    world.run_for(Duration::from_secs(20));
    let protected: BTreeSet<usize> = base.iter().copied().collect();
    let mut candidates: Vec<usize> =
        world.member_indices().into_iter().filter(|i| !protected.contains(i)).collect();
    for _ in 0..members / 4 {
        let k = pick(world.rng(), candidates.len());
        world.crash(candidates.swap_remove(k));
    }
    let repair = run_until_exact(&mut world, REPAIR_LIMIT, Duration::from_secs(1));
    let report = world.ring_view().check_all();
    assert!(repair.is_some(), "seed {SEED}: not repaired within {REPAIR_LIMIT:?}:\n{report}");
    assert!(report.ok(), "seed {SEED}: {report}");
    let stats = lookup_batch(&mut world, 5_000, Duration::from_millis(2), Duration::from_secs(30));
    eprintln!(
        "{} of {members} crashed; repaired in {:.1}s; {stats:?}",
        members / 4,
        repair.unwrap_or_default().as_secs_f64()
    );
    assert_eq!(stats.correct, stats.asked(), "seed {SEED}: lookups after repair: {stats:?}");
    assert_budget_held(&world, SEED);
}

/// The fast crypto provider: a ring scenario makes the same decisions with it as with real signatures
/// (`same_seed_same_run::fast_and_real_crypto_make_the_same_decisions`), at a fraction of the time.
fn ring_config() -> WorldConfig {
    WorldConfig { crypto: &FAST, ..WorldConfig::new(SEED) }
}
