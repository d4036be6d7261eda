//! Under continuous churn — joins (new nodes and restarts of crashed ones) and crashes at one event per
//! stabilization interval per 100 nodes — at least 99% of lookups return the node that truly owns the key
//! when the answer arrives, with no retries by the application.
//!
//! Sizes: 200 nodes for 2 virtual minutes by default; 500 nodes for 5 minutes (the brief's size) with
//! `CHORDIAL_SIM_FULL=1`. The benchmark runs the same churn model at 1,024–16,384 nodes and reports success
//! and link creations per node-hour.

use std::time::Duration;

use chordial_sim::crypto::FAST;
use chordial_sim::scenario::{
    assert_budget_held, build_base, join_nodes, run_churn, run_until_exact, scaled, ChurnConfig,
};
use chordial_sim::{World, WorldConfig};

const SEED: u64 = 3;

#[test]
fn ninety_nine_percent_of_lookups_are_exact_under_churn() {
    let members = scaled(200, 500);
    let churn_time = Duration::from_secs(scaled(120, 300));
    let mut world = World::new(ring_config());
    let base =
        build_base(&mut world, 5, Duration::from_secs(120)).unwrap_or_else(|e| panic!("seed {SEED}: {e}"));
    join_nodes(&mut world, members - base.len(), &base, Duration::from_secs(20));
    assert!(
        run_until_exact(&mut world, Duration::from_secs(300), Duration::from_secs(1)).is_some(),
        "seed {SEED}: no convergence before churn: {}",
        world.ring_view().check_all()
    );
    let churn = ChurnConfig {
        rate: 1.0,
        join_probability: 0.5,
        restart_probability: 0.5,
        lookups_per_sec: 20.0,
        messages_per_sec: 0.0,
        protected: base.clone(),
        via: base.clone(),
    };
    let report = run_churn(&mut world, &churn, churn_time);
    eprintln!("{report:?}");
    let rate = report.lookups.success_rate();
    assert!(report.lookups.asked() >= 1_000, "seed {SEED}: too few lookups: {report:?}");
    assert!(rate >= 0.99, "seed {SEED}: only {:.2}% of lookups exact under churn: {report:?}", rate * 100.0);
    assert_budget_held(&world, SEED);
    // Once churn stops the ring repairs completely.
    assert!(
        run_until_exact(&mut world, Duration::from_secs(300), Duration::from_secs(1)).is_some(),
        "seed {SEED}: no repair after churn: {}",
        world.ring_view().check_all()
    );
}

/// The fast crypto provider: a ring scenario makes the same decisions with it as with real signatures
/// (`same_seed_same_run::fast_and_real_crypto_make_the_same_decisions`), at a fraction of the time.
fn ring_config() -> WorldConfig {
    WorldConfig { crypto: &FAST, ..WorldConfig::new(SEED) }
}
