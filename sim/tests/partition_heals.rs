//! The network splits into two halves long enough for every cross link to fail; when it heals, the nodes
//! end up in exactly one ring again (not two rings that never meet).

use std::time::Duration;

use chordial_sim::scenario::{assert_budget_held, build_base, join_nodes, pick, run_until_exact, unjoined};
use chordial_sim::{Property, World, WorldConfig};

const SEED: u64 = 5;
const MEMBERS: usize = 100;
const SPLIT: Duration = Duration::from_secs(120);
const HEAL_LIMIT: Duration = Duration::from_secs(600);

#[test]
fn two_halves_become_one_ring_after_the_partition_heals() {
    let mut world = World::new(WorldConfig::new(SEED));
    let base =
        build_base(&mut world, 5, Duration::from_secs(120)).unwrap_or_else(|e| panic!("seed {SEED}: {e}"));
    join_nodes(&mut world, MEMBERS - base.len(), &base, Duration::from_secs(10));
    assert!(
        run_until_exact(&mut world, Duration::from_secs(300), Duration::from_secs(1)).is_some(),
        "seed {SEED}: no convergence before the partition: {}\n{:#?}",
        world.ring_view().check_all(),
        unjoined(&world)
    );

    let mut nodes: Vec<usize> = (0..world.len()).collect();
    let mut half = Vec::new();
    while half.len() < MEMBERS / 2 {
        let k = pick(world.rng(), nodes.len());
        half.push(nodes.swap_remove(k));
    }
    world.partition(&[half, nodes]);
    world.run_for(SPLIT);
    let split = world.ring_view().zave();
    eprintln!("during the partition: {} rings, {} appendages", split.rings, split.appendages);

    world.heal();
    let healed = run_until_exact(&mut world, HEAL_LIMIT, Duration::from_secs(1));
    let report = world.ring_view().check_all();
    assert!(
        healed.is_some(),
        "seed {SEED}: not one exact ring {HEAL_LIMIT:?} after healing ({} rings):\n{report}",
        report.rings
    );
    assert!(report.holds(Property::AtMostOneRing) && report.ok(), "seed {SEED}: {report}");
    eprintln!("one ring {:.1}s after healing", healed.unwrap_or_default().as_secs_f64());
    assert_budget_held(&world, SEED);
}
