//! The network splits into two halves long enough for every cross link to fail; when it heals, the nodes
//! end up in exactly one ring again (not two rings that never meet).

use std::time::Duration;

use chordial_sim::crypto::FAST;
use chordial_sim::scenario::{assert_budget_held, build_base, join_nodes, pick, run_until_exact, unjoined};
use chordial_sim::{Property, World, WorldConfig};

const SEED: u64 = 5;
const MEMBERS: usize = 100;
const SPLIT: Duration = Duration::from_secs(120);
const HEAL_LIMIT: Duration = Duration::from_secs(600);

#[test]
fn two_halves_become_one_ring_after_the_partition_heals() {
    let mut world = World::new(ring_config());
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

    heal_into_one_ring(&mut world, SEED);
}

/// Two rings, each an arc of the id circle, whose crossing ends cannot see the other ring: the arc that ends
/// at the founder (which has no bootstrap server, so it never checks) and the arc whose last node bootstraps
/// through a server in its own arc. Only the members in between can notice — a node whose server is in the
/// other ring learns that the other ring's owner of its successor slot is beyond its own successor — and one
/// of them must start the merge.
#[test]
fn two_arcs_whose_ends_cannot_see_each_other_still_become_one_ring() {
    const SEED: u64 = 11;
    let mut world = World::new(ring_config());
    let base =
        build_base(&mut world, 5, Duration::from_secs(120)).unwrap_or_else(|e| panic!("seed {SEED}: {e}"));
    let founder = base[0];
    // Every member's server is known: base[1..] bootstrapped through the founder, the rest through base[1..].
    let mut server: std::collections::BTreeMap<usize, usize> =
        base[1..].iter().map(|b| (*b, founder)).collect();
    for k in 0..MEMBERS - base.len() {
        world.run_for(Duration::from_millis(100));
        let via = base[1 + k % (base.len() - 1)];
        server.insert(world.add_node(Some(via)), via);
    }
    assert!(
        run_until_exact(&mut world, Duration::from_secs(300), Duration::from_secs(1)).is_some(),
        "seed {SEED}: no convergence before the partition: {}",
        world.ring_view().check_all()
    );

    // Arc A: about half the ring, ending at the founder. Its other end's neighbour P (the last node of arc B)
    // must bootstrap through a server in arc B, so neither end of the crossing can see it.
    let ring: Vec<usize> = world.members().values().copied().collect();
    let at = ring.iter().position(|i| *i == founder).expect("the founder is a member");
    let n = ring.len();
    let arc = |len: usize| -> Vec<usize> { (0..len).map(|d| ring[(at + n - d) % n]).collect() };
    let len = (MEMBERS / 2..MEMBERS - 10)
        .find(|len| {
            let a = arc(*len);
            let p = ring[(at + n - len) % n];
            !a.contains(&server[&p])
        })
        .unwrap_or_else(|| panic!("seed {SEED}: no arc whose ends are both blind"));
    let a = arc(len);
    let b: Vec<usize> = ring.iter().copied().filter(|i| !a.contains(i)).collect();
    let crossing =
        a.iter().chain(&b).filter(|i| server.get(i).is_some_and(|s| a.contains(s) != a.contains(i)));
    eprintln!("arc A {} nodes, arc B {}, {} members bootstrapped across", a.len(), b.len(), crossing.count());

    world.partition(&[a, b]);
    world.run_for(SPLIT);
    let split = world.ring_view().zave();
    assert_eq!(split.rings, 2, "seed {SEED}: the partition should leave two rings");

    heal_into_one_ring(&mut world, SEED);
}

/// Ends the partition and asserts that one exact ring follows within `HEAL_LIMIT`, with every property and
/// the link budget holding.
fn heal_into_one_ring(world: &mut World, seed: u64) {
    world.heal();
    let healed = run_until_exact(world, HEAL_LIMIT, Duration::from_secs(1));
    let report = world.ring_view().check_all();
    assert!(
        healed.is_some(),
        "seed {seed}: not one exact ring {HEAL_LIMIT:?} after healing ({} rings):\n{report}",
        report.rings
    );
    assert!(report.holds(Property::AtMostOneRing) && report.ok(), "seed {seed}: {report}");
    eprintln!("one ring {:.1}s after healing", healed.unwrap_or_default().as_secs_f64());
    assert_budget_held(world, seed);
}

/// The fast crypto provider: a ring scenario makes the same decisions with it as with real signatures
/// (`same_seed_same_run::fast_and_real_crypto_make_the_same_decisions`), at a fraction of the time.
fn ring_config() -> WorldConfig {
    WorldConfig { crypto: &FAST, ..WorldConfig::new(SEED) }
}
