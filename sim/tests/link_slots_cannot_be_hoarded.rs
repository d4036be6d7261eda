//! Nobody can hoard a node's links. Attackers (more of them than the server has link slots) bootstrap
//! through one server and then only keep their links alive: every ping and pong they send says `keep`,
//! they answer the server's pings, and they withhold everything else (their join lookups never leave), so
//! they never join and never let go. Before the link policy decided for itself which links it needs, a
//! `keep` pinned a link forever and a joiner never evicted another joiner's link: the server filled up
//! with attackers and answered every browser `Busy`.
//!
//! What honest users must get, with the attackers still at it: newcomers joining through that server
//! alone all join, the ring's successor lists and predecessors are exactly right, lookups from the
//! newcomers find the true owner, and no node — the server included — ever has more links than its cap.
//! The attack is shown to be real: when the newcomers arrive, attackers hold the server's spare slots.
//!
//! Sizes: 8 honest members, 28 attackers (the cap is 23), 4 newcomers; real crypto.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use chordial_core::crypto::Crypto;
use chordial_core::node::msg::{self, LinkMsg};
use chordial_core::node::LinkId;
use chordial_sim::adversary::{Adversary, Ctx};
use chordial_sim::scenario::{build_base, join_nodes, random_id, run_until_exact};
use chordial_sim::{World, WorldConfig};

const SEED: u64 = 61;
const MEMBERS: usize = 8;
const ATTACKERS: usize = 28;
const NEWCOMERS: usize = 4;

/// An attacker that holds its link open and does nothing else: link messages pass (with `keep` forced on
/// in its pings and pongs), routed frames are withheld. Counts the `keep` pings it sent.
struct Hoarder {
    keep_pings: Rc<Cell<u64>>,
}

impl Adversary for Hoarder {
    fn on_transmit(&mut self, _ctx: &mut Ctx<'_>, _link: LinkId, bytes: Vec<u8>) -> Option<Vec<u8>> {
        let (&kind, rest) = bytes.split_first()?;
        if kind != msg::KIND_LINK {
            return None;
        }
        Some(match msg::decode_link(rest)? {
            LinkMsg::Ping { nonce, range_from, .. } => {
                self.keep_pings.set(self.keep_pings.get() + 1);
                msg::link_frame(&LinkMsg::Ping { nonce, keep: true, range_from })
            }
            LinkMsg::Pong { nonce, range_from, .. } => {
                msg::link_frame(&LinkMsg::Pong { nonce, keep: true, range_from })
            }
            _ => bytes,
        })
    }
}

/// Runs `d` in 100 ms steps, checking after each that the server stays within its cap; returns the most
/// links it had.
fn run_watching(world: &mut World, server: usize, d: Duration) -> usize {
    let deadline = world.now().saturating_add(d);
    let mut most = 0;
    while world.now() < deadline {
        world.run_for(Duration::from_millis(100));
        let links = world.node(server).expect("the server runs").inspect().link_count();
        assert!(
            links <= world.link_cap(server),
            "the server has {links} links, cap {}",
            world.link_cap(server)
        );
        most = most.max(links);
    }
    most
}

#[test]
fn link_slots_cannot_be_hoarded() {
    let mut world = World::new(WorldConfig::new(SEED));
    assert_eq!(world.config().crypto.name(), chordial_core::crypto::REAL.name(), "real crypto");
    let base = build_base(&mut world, 5, Duration::from_secs(120)).expect("the base converges");
    let server = base[0];
    join_nodes(&mut world, MEMBERS - base.len(), &[server], Duration::from_secs(5));
    run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1))
        .expect("the ring converges");
    world.run_for(Duration::from_secs(30));
    let cap = world.link_cap(server);
    assert!(ATTACKERS > cap, "more attackers than the server has slots");

    // The attackers arrive over 10 s and hold on; evicted ones come back (their node rejoins by itself).
    let keep_pings = Rc::new(Cell::new(0));
    let mut attackers = BTreeSet::new();
    for _ in 0..ATTACKERS {
        let a = world.add_node_via(&[server]);
        world.set_adversary(a, Box::new(Hoarder { keep_pings: keep_pings.clone() }));
        attackers.insert(a);
        run_watching(&mut world, server, Duration::from_millis(350));
    }
    let most = run_watching(&mut world, server, Duration::from_secs(30));
    assert_eq!(most, cap, "the attackers fill the server");
    // Every slot the server's ring links (at most one per other member) leave is an attacker's: open, or
    // opening again (an evicted attacker comes straight back).
    let attacker_ids: BTreeSet<_> = attackers.iter().map(|a| world.id(*a)).collect();
    let status = world.node(server).expect("the server runs").inspect().status();
    let held = status.links.iter().filter(|l| l.peer.is_some_and(|p| attacker_ids.contains(&p))).count();
    assert!(held >= cap - (MEMBERS - 1), "attackers hold only {held} of the server's {cap} slots");
    assert!(keep_pings.get() > 0, "the attackers pinged with keep");

    // Honest newcomers join through that server alone, a few seconds apart, while the attackers hold on.
    let pings_before = keep_pings.get();
    let newcomers_at = world.now();
    let (mut newcomers, mut arrivals) = (Vec::new(), Vec::new());
    for _ in 0..NEWCOMERS {
        arrivals.push(world.now());
        newcomers.push(world.add_node_via(&[server]));
        run_watching(&mut world, server, Duration::from_secs(3));
    }
    let deadline = world.now().saturating_add(Duration::from_secs(60));
    while !newcomers.iter().all(|n| world.is_member(*n)) || !world.ring_view().exact().ok() {
        assert!(
            world.now() < deadline,
            "newcomers not joined within 60 s: {:?} (members {:?}); {}",
            newcomers.iter().map(|n| world.is_member(*n)).collect::<Vec<_>>(),
            world.members().len(),
            world.ring_view().exact()
        );
        run_watching(&mut world, server, Duration::from_secs(1));
    }
    let joined_after = world.now().since(newcomers_at);
    let slowest = newcomers
        .iter()
        .zip(&arrivals)
        .map(|(n, at)| world.first_joined(*n).expect("joined").since(*at))
        .max()
        .expect("newcomers");
    assert!(slowest <= Duration::from_secs(10), "a newcomer took {slowest:?} to join");
    assert!(keep_pings.get() > pings_before, "the attackers kept pinging while the newcomers joined");
    assert!(attackers.iter().all(|a| !world.is_member(*a)), "no attacker ever joined");

    // Lookups from the newcomers find the true owners.
    for (k, n) in newcomers.iter().cycle().take(40).enumerate() {
        let key = random_id(world.rng());
        assert!(world.lookup(*n, key).is_some(), "lookup {k} from node {n}");
        run_watching(&mut world, server, Duration::from_millis(50));
    }
    run_watching(&mut world, server, Duration::from_secs(10));
    let lookups = world.take_lookups();
    assert_eq!(lookups.len(), 40);
    assert!(
        lookups.iter().all(|l| l.correct()),
        "a lookup missed: {:?}",
        lookups.iter().find(|l| !l.correct())
    );

    let view = world.ring_view();
    assert!(view.exact().ok(), "{}", view.exact());
    assert!(view.link_budget().ok(), "{}", view.link_budget());
    assert_eq!(world.world_stats().budget_violations, 0, "a node went above its link cap");
    assert!(world.stats(server).max_links <= cap);
    let held = world.open_links(server).iter().filter(|(_, peer)| attackers.contains(peer)).count();
    let refused = world.node(server).expect("the server runs").inspect().counters().refused_links;
    eprintln!(
        "{NEWCOMERS} newcomers joined (the slowest {:.1} s after it arrived) and the ring was exact {:.1} s \
         after the first arrived; the server refused {refused} offers as busy, and attackers hold {held} of \
         its {} links (cap {cap})",
        slowest.as_secs_f64(),
        joined_after.as_secs_f64(),
        world.node(server).expect("the server runs").inspect().link_count()
    );
}
