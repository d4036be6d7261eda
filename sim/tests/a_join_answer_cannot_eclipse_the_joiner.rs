//! A join's answer is cross-checked before it is adopted (issue 16, item 2). An attacker pair:
//!
//! - `R`, a ring member, is the last relay of a newcomer's join lookup (the newcomer's id lies just past
//!   `R`, so the lookup for `id + 1` ends at `R`, which passes it to its successor `S`, the true owner);
//! - `A`, a ring member whose id the attackers chose just past `S`, hands `R` its session key.
//!
//! When the join lookup reaches `R`, `R` answers at once with a `FoundSuccessor` signed by `A` (and passes
//! the lookup on, so the true owner answers too — later). To the newcomer, which knows no ring member but
//! its bootstrap server, far away, `A` is a plausible owner of `id + 1`: the reply check (row 2) lets it
//! through. Adopted, `A` would be the newcomer's successor although `S` lies between: the newcomer would
//! count itself joined (its bootstrap done, its presence published) on a successor the ring contradicts,
//! until it next hears from `A` — for good if `A` lies (the second test). The cross check: before adopting
//! the successor a join named, the newcomer asks it for its predecessor; `A` (an ordinary ring member
//! underneath, in the first test) names `S`, which lies between, so `S` is asked in turn and adopted. What
//! the newcomer gets is checked at the moment it first counts itself joined (its first successor, and
//! lookups from it then), and once it has settled (its successors and predecessor are the ring's, messages
//! both ways are delivered once, its wallet is found).
//!
//! What this does not prove: an `A` that lies when asked — names no predecessor, or one outside
//! `(newcomer, A)` — is adopted anyway, and stabilizing asks only `A` again (docs/security.md, "Not yet
//! defended"); the second test shows that hole is still there.
//!
//! Sizes: 20 members, 2 of them attackers, 1 newcomer.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use chordial_core::crypto::Crypto;
use chordial_core::identity::SessionKey;
use chordial_core::node::msg::{self, LinkMsg, RingMsg, Routed};
use chordial_core::node::{Event, LinkId};
use chordial_core::wire::envelope::{self, Destination, Header, MessageId, DEFAULT_HOP_LIMIT};
use chordial_core::Id;
use chordial_sim::adversary::{Adversary, Ctx};
use chordial_sim::identity::Identity;
use chordial_sim::World;

use common::{ask, ring, send, wait_all, wallet};

const SEED: u64 = 16;
const MEMBERS: usize = 20;

/// The relay `R`: answers the newcomer's join lookup with a `FoundSuccessor` signed by its colluder `A`.
struct JoinAnswerForger {
    /// The key the newcomer's join looks up (its id + 1).
    join_key: Id,
    /// The colluder's session key (`A` gave it to `R`).
    colluder: SessionKey,
    /// Forged answers sent.
    forged: Rc<Cell<u64>>,
}

impl Adversary for JoinAnswerForger {
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, link: LinkId, bytes: &[u8]) -> bool {
        let Some((&kind, rest)) = bytes.split_first() else { return true };
        let Some(routed) = msg::decode_routed(kind, rest) else { return true };
        let envelope_bytes = routed.envelope;
        let Ok(routing) = envelope::decode_routing(envelope_bytes, ctx.network) else { return true };
        let Some((header, body)) = envelope::peek::<Routed>(envelope_bytes) else { return true };
        if header.dest != Destination::KeyStrict(self.join_key)
            || !matches!(body, Routed::Ring(RingMsg::FindSuccessor))
        {
            return true;
        }
        let reply = Header {
            network: ctx.network,
            id: MessageId::random(ctx.rng),
            sent_at: ctx.now,
            dest: Destination::Node(routing.origin),
            hop_limit: DEFAULT_HOP_LIMIT,
            reply_to: Some(header.id),
        };
        let body = Routed::Ring(RingMsg::FoundSuccessor { hops: 1 });
        let signed = envelope::encode(&self.colluder, &reply, &body).expect("a small reply fits a frame");
        ctx.send(link, msg::routed_frame(&signed, false));
        self.forged.set(self.forged.get() + 1);
        // The lookup goes on: the true owner's answer follows the forged one.
        true
    }
}

/// The colluder `A`, lying when the newcomer asks for its neighbours: it names `says` (a node before the
/// newcomer) as its predecessor.
struct PredecessorLiar {
    /// The newcomer's node index.
    newcomer: usize,
    says: Id,
    lies: Rc<Cell<u64>>,
}

impl Adversary for PredecessorLiar {
    fn on_transmit(&mut self, ctx: &mut Ctx<'_>, link: LinkId, bytes: Vec<u8>) -> Option<Vec<u8>> {
        let to_newcomer = ctx.links.iter().any(|(l, peer)| *l == link && *peer == self.newcomer);
        let Some((&msg::KIND_LINK, body)) = bytes.split_first() else { return Some(bytes) };
        match msg::decode_link(body) {
            Some(LinkMsg::Neighbors { successors, .. }) if to_newcomer => {
                self.lies.set(self.lies.get() + 1);
                Some(msg::link_frame(&LinkMsg::Neighbors { predecessor: Some(self.says), successors }))
            }
            _ => Some(bytes),
        }
    }
}

/// The member just past `id` on the ring.
fn next_member(world: &World, id: Id) -> Id {
    world.ideal_owner(id.wrapping_add(Id::pow2(0))).expect("members")
}

/// A ring with the attacker pair in place and the newcomer about to join.
struct Scene {
    world: World,
    /// `R`, the forging relay (the newcomer's predecessor).
    r: usize,
    /// `A`, the colluder just past `S`.
    a: usize,
    /// The newcomer's true successor.
    s_id: Id,
    /// The newcomer's identity and bootstrap server.
    joiner: Identity,
    server: usize,
    /// Forged join answers `R` sent.
    forged: Rc<Cell<u64>>,
}

/// A converged ring of [`MEMBERS`]; `R` at position 4, its successor `S`, the colluder `A` joined just past
/// `S`, the bootstrap server half the ring away, and `R` forging the answer to the newcomer's join.
fn scene() -> Scene {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    assert_eq!(world.config().crypto.name(), chordial_core::crypto::REAL.name(), "real crypto");
    let by_position: Vec<usize> = world.members().values().copied().collect();
    let r = by_position[4];
    let r_id = world.id(r);
    let s_id = next_member(&world, r_id);
    let after_s = next_member(&world, s_id);
    let (a_identity, _) = common::identity_between(&mut world, s_id, after_s);
    let a_id = a_identity.id;
    // The bootstrap server: an honest member about half the ring away (so it refutes nothing near S).
    let server = by_position[(4 + MEMBERS / 2) % MEMBERS];
    let a = world.add_node_with(a_identity, &[server]);
    world.run_for(Duration::from_secs(20));
    assert_eq!(next_member(&world, s_id), a_id, "seed {SEED}: the colluder joined just past S");
    assert!(world.ring_view().exact().ok(), "seed {SEED}: the ring with the colluder is exact");

    let (joiner, _) = common::identity_between(&mut world, r_id, s_id);
    assert!(
        a_id.in_open(joiner.id, world.id(server)),
        "seed {SEED}: A must be a plausible owner of the newcomer's key (no member it knows lies between)"
    );
    let forged = Rc::new(Cell::new(0));
    let forger = JoinAnswerForger {
        join_key: joiner.id.wrapping_add(Id::pow2(0)),
        colluder: world.session_key(a),
        forged: Rc::clone(&forged),
    };
    world.set_adversary(r, Box::new(forger));
    Scene { world, r, a, s_id, joiner, server, forged }
}

/// Runs until node `j` first counts itself joined; returns its first successor then.
fn run_until_joined(world: &mut World, j: usize) -> Option<Id> {
    let deadline = world.now().saturating_add(Duration::from_secs(30));
    loop {
        world.run_for(Duration::from_millis(1));
        let node = world.node(j).expect("running").inspect();
        if node.is_joined() {
            return node.successors().first().copied();
        }
        assert!(world.now() < deadline, "seed {SEED}: the newcomer did not join in 30 s");
    }
}

#[test]
fn a_join_answer_cannot_eclipse_the_joiner() {
    let Scene { mut world, r, a, s_id, joiner, server, forged } = scene();
    let (r_id, a_id, j_id) = (world.id(r), world.id(a), joiner.id);
    let j = world.add_node_with(joiner, &[server]);

    // 1. The moment the newcomer first counts itself joined, its successor is S, and its lookups of keys up
    //    to A name their true owners.
    let first_successor = run_until_joined(&mut world, j);
    assert!(forged.get() > 0, "seed {SEED}: the join lookup did not reach R");
    assert_eq!(
        first_successor,
        Some(s_id),
        "seed {SEED}: the newcomer {} adopted {} first (S = {}, colluder A = {})",
        j_id.short(),
        first_successor.map_or("nothing".to_owned(), |s| s.short()),
        s_id.short(),
        a_id.short()
    );
    let keys = [j_id.wrapping_add(Id::pow2(0)), s_id, s_id.wrapping_add(Id::pow2(0)), a_id];
    for key in keys {
        world.lookup(j, key);
    }
    world.run_for(Duration::from_secs(5));
    let outcomes = world.take_lookups();
    assert_eq!(outcomes.len(), keys.len(), "seed {SEED}: lookups still open");
    assert!(outcomes.iter().all(|o| o.correct()), "seed {SEED}: lookups at join not exact: {outcomes:?}");

    // 2. Settled: the newcomer sits between R and S in every view, and the ring is exact.
    world.run_for(Duration::from_secs(20));
    let view = world.ring_view();
    let node = world.node(j).expect("running").inspect();
    assert_eq!(
        node.successors(),
        view.ideal_successors(j_id).as_slice(),
        "seed {SEED}: newcomer's successors"
    );
    assert_eq!(node.predecessor(), Some(r_id), "seed {SEED}: newcomer's predecessor");
    assert!(view.exact().ok(), "seed {SEED}: ring not exact: {}", view.exact());

    // 3. Messages both ways between the newcomer and honest members (none linked to it), and its wallet.
    let honest: Vec<usize> = world.member_indices().into_iter().filter(|i| ![r, a, j].contains(i)).collect();
    let linked: Vec<usize> = world.open_links(j).into_iter().map(|(_, p)| p).collect();
    let peers: Vec<usize> = honest.iter().copied().filter(|i| !linked.contains(i)).take(4).collect();
    assert_eq!(peers.len(), 4, "seed {SEED}: honest members the newcomer is not linked to");
    let since = world.now();
    let mut sends = Vec::new();
    for &p in &peers {
        for (from, to) in [(j, p), (p, j)] {
            let bytes = format!("from {from} to {to}").into_bytes();
            let to_wallet = wallet(&world, to);
            sends.push((from, to, bytes.clone(), send(&mut world, from, to_wallet, bytes)));
        }
    }
    let of = wallet(&world, j);
    let wallet_lookup = ask(&mut world, peers[0], |node, now| node.lookup_wallet(now, of));
    let pending: Vec<_> = sends.iter().map(|s| s.3).chain([wallet_lookup]).collect();
    let mut results = wait_all(&mut world, &pending, Duration::from_secs(30));
    match results.pop().flatten() {
        Some((_, Event::WalletSessions { sessions, .. })) => assert_eq!(
            sessions.iter().map(|s| s.node_id).collect::<Vec<_>>(),
            vec![j_id],
            "seed {SEED}: sessions of the newcomer's wallet"
        ),
        other => panic!("seed {SEED}: lookup of the newcomer's wallet: {other:?}"),
    }
    common::assert_delivered_once(&mut world, SEED, since, &sends, results);
    eprintln!(
        "seed {SEED}: {} forged join answer(s) signed by A; newcomer {} adopted S {} first (A = {}); {} lookups \
         exact at join; {} messages delivered once",
        forged.get(),
        j_id.short(),
        s_id.short(),
        a_id.short(),
        outcomes.len(),
        sends.len()
    );
}

/// Known hole (docs/security.md, "Not yet defended"): the cross-check asks only the candidate, so a
/// candidate that lies — here `A` names `R` as its predecessor, which lies outside `(newcomer, A)` — is
/// adopted, and stabilizing asks only `A` again: the newcomer stays eclipsed, past several merge checks
/// (whose lookup `R` answers the same way). This test asserts that the hole is still there, so that it
/// fails when the hole is closed; then it becomes a defence test and this note goes.
#[test]
fn known_hole_a_join_candidate_that_lies_about_its_predecessor_still_eclipses_the_joiner() {
    let Scene { mut world, r, a, s_id, joiner, server, forged } = scene();
    let (r_id, a_id, j_id) = (world.id(r), world.id(a), joiner.id);
    let j = world.add_node_with(joiner, &[server]);
    let lies = Rc::new(Cell::new(0));
    world.set_adversary(a, Box::new(PredecessorLiar { newcomer: j, says: r_id, lies: Rc::clone(&lies) }));

    let first_successor = run_until_joined(&mut world, j);
    assert!(forged.get() > 0, "seed {SEED}: the join lookup did not reach R");
    assert_eq!(
        first_successor,
        Some(a_id),
        "seed {SEED}: the lying candidate was not adopted (hole closed?)"
    );
    world.run_for(Duration::from_secs(300));
    assert!(lies.get() > 0, "seed {SEED}: A was never asked for its neighbours");
    let node = world.node(j).expect("running").inspect();
    assert_eq!(
        node.successors().first().copied(),
        Some(a_id),
        "seed {SEED}: after 300 s the newcomer left A (hole closed?); S = {}",
        s_id.short()
    );
    assert!(s_id.in_open(j_id, a_id), "seed {SEED}: S lies between the newcomer and A");
    eprintln!(
        "seed {SEED}: known hole: {} forged join answer(s), {} lies; after 300 s the newcomer {} still has A {} \
         as its successor (S = {}), predecessor {:?}",
        forged.get(),
        lies.get(),
        j_id.short(),
        a_id.short(),
        s_id.short(),
        node.predecessor().map(|p| p.short())
    );
}
