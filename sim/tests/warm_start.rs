//! A ring built converged (`World::add_warm_ring`, for the largest benchmarks) is what a joined ring would
//! be: exactly right from the first instant, every Zave property holding, links within budget, lookups
//! exact and short — and it stays so while the nodes run their own maintenance, and survives a crash.

use std::time::Duration;

use chordial_sim::crypto::FAST;
use chordial_sim::scenario::{assert_budget_held, link_counts, log2, lookup_batch, run_until_exact};
use chordial_sim::{World, WorldConfig};

const SEED: u64 = 5;
const NODES: usize = 400;

#[test]
fn a_warm_ring_is_exact_at_once_and_stays_exact_while_its_nodes_run() {
    let mut world = World::new(WorldConfig { crypto: &FAST, ..WorldConfig::new(SEED) });
    let (nodes, base) = world.add_warm_ring(NODES, 5);
    assert_eq!((nodes.len(), base.len(), world.members().len()), (NODES, 5, NODES));
    let report = world.ring_view().check_all();
    assert!(report.ok() && world.ring_view().exact().ok(), "seed {SEED}: not exact when built: {report}");
    let (mean, max, cap) = link_counts(&world);
    assert!(mean > 15.0 && max <= cap, "seed {SEED}: links mean {mean:.1} max {max} cap {cap}");

    // The nodes' own stabilize, pings, finger sweeps and presence change nothing that was right.
    world.run_for(Duration::from_secs(90));
    let report = world.ring_view().check_all();
    assert!(report.ok() && world.ring_view().exact().ok(), "seed {SEED}: 90 s later: {report}");
    let stats = lookup_batch(&mut world, 2_000, Duration::from_millis(2), Duration::from_secs(30));
    assert_eq!(stats.correct, 2_000, "seed {SEED}: {stats:?}");
    assert!(stats.hops.mean <= 0.5 * log2(NODES) + 0.5, "seed {SEED}: mean hops {}", stats.hops.mean);

    // And it repairs like any ring: a crashed node's neighbours close the gap.
    let victim = nodes.iter().copied().find(|i| !base.contains(i)).expect("a node outside the base");
    world.crash(victim);
    assert!(
        run_until_exact(&mut world, Duration::from_secs(60), Duration::from_secs(1)).is_some(),
        "seed {SEED}: no repair after a crash: {}",
        world.ring_view().check_all()
    );
    let (mean, max, cap) = assert_budget_held(&world, SEED);
    eprintln!("warm ring of {NODES}: links mean {mean:.1} max {max} cap {cap}; lookups {:?}", stats.hops);
}
