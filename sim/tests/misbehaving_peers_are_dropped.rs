//! A peer that sends junk is disconnected and backed off; honest peers never are, not even one an attacker
//! tries to frame.
//!
//! The attacker is a ring member, and the victim a member it shares a link with but that is not its ring
//! neighbour (a finger link; dropping a ring neighbour also cuts the ring there, which is the attacker's
//! doing and the business of `chosen_ids_cannot_hide_a_wallet`). Over that link it sends what no honest node
//! sends: frames of an unknown kind, link messages that do not decode, and routed frames in its own name
//! whose signature does not verify. The victim must close the link within a second, back the attacker off
//! (list it in `Inspect::backed_off`), and refuse to link to it again for the backoff.
//!
//! Framing: the attacker first sends, to an honest node linked to both, frames that name that honest node as
//! their origin, with a broken signature, addressed to the victim. The honest node relays them to the victim
//! as any relay does (relays do not check signatures), so the victim sees bad signatures from the honest
//! node's key on the honest node's link — but with a hop taken, so it must not blame that node. Over the
//! whole run no honest node backs off any honest peer or closes a link for misbehaviour, and messages between
//! honest members are delivered.
//!
//! Sizes: 12 nodes (the same at full size).

mod common;

use std::time::Duration;

use chordial_core::node::conduct::BACKOFF;
use chordial_core::node::msg::{self, RingMsg, Routed, Undeliverable};
use chordial_core::node::{Event, SendOutcome};
use chordial_core::wire::envelope::{self, Destination};
use chordial_core::Id;
use chordial_sim::scenario::assert_budget_held;
use chordial_sim::World;

use common::{forged_header, payload, ring, send, wait_all, wallet};

const SEED: u64 = 71;
const MEMBERS: usize = 12;

/// A routed frame to `to`, signed by node `signer`, that names node `origin` as its origin (so the signature
/// does not verify when `origin` is not `signer`; when it is, one signature byte is flipped).
fn bad_signature(world: &mut World, signer: usize, origin: usize, to: usize) -> Vec<u8> {
    let (network, now, dest) = (world.network_tag(), world.now(), Destination::Node(world.id(to)));
    let header = forged_header(world.rng(), network, now, dest);
    let body = Routed::Ring(RingMsg::Undeliverable { reason: Undeliverable::NoRoute });
    let mut signed = envelope::encode(&world.session_key(signer), &header, &body).expect("a small body fits");
    // Envelope layout: version, hops, origin key (33 bytes), signature (64 bytes), signed part.
    signed[2..35].copy_from_slice(world.session_key(origin).public().as_bytes());
    signed[40] ^= 0x5a;
    msg::routed_frame(&signed, false)
}

/// Node indices of `i`'s ring neighbours: successors and predecessor.
fn neighbours(world: &World, i: usize) -> Vec<usize> {
    let v = world.node(i).expect("running").inspect();
    v.successors()
        .iter()
        .chain(v.predecessor().iter())
        .filter_map(|id| world.members().get(id).copied())
        .collect()
}

/// An attacker, a victim linked to it that is not its ring neighbour (nor it the victim's), and an honest
/// node linked to both.
fn pick_roles(world: &World, members: &[usize]) -> (usize, usize, usize) {
    for &a in members {
        for (_, v) in world.open_links(a) {
            if neighbours(world, a).contains(&v) || neighbours(world, v).contains(&a) {
                continue;
            }
            let of_v: Vec<usize> = world.open_links(v).into_iter().map(|(_, p)| p).collect();
            let framed =
                world.open_links(a).into_iter().map(|(_, p)| p).find(|p| *p != v && of_v.contains(p));
            if let Some(f) = framed {
                return (a, v, f);
            }
        }
    }
    panic!("seed {SEED}: no attacker with a finger link to a non-neighbour and a common neighbour");
}

fn link_between(world: &World, a: usize, b: usize) -> Option<chordial_core::node::LinkId> {
    world.open_links(a).into_iter().find(|(_, peer)| *peer == b).map(|(l, _)| l)
}

/// Every honest node's backed-off peers and links dropped for misbehaviour, as (node, peer ids, dropped).
fn conduct_of(world: &World, nodes: &[usize]) -> Vec<(usize, Vec<Id>, u64)> {
    let now = world.now();
    nodes
        .iter()
        .filter_map(|&i| world.node(i).map(|n| (i, n.inspect())))
        .map(|(i, v)| {
            (i, v.backed_off(now).into_iter().map(|(id, _)| id).collect(), v.links_dropped_for_conduct())
        })
        .collect()
}

#[test]
fn a_peer_sending_junk_is_dropped_and_backed_off_and_honest_peers_never_are() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let members = world.member_indices();
    let (attacker, victim, framed) = pick_roles(&world, &members);
    eprintln!("attacker {attacker}, victim {victim}, framed {framed}");
    let honest: Vec<usize> = members.iter().copied().filter(|i| *i != attacker).collect();
    let to_victim = link_between(&world, attacker, victim).expect("the attacker is linked to the victim");
    let to_framed =
        link_between(&world, attacker, framed).expect("the attacker is linked to the framed node");

    // Framing first: bad signatures in the honest node's name, relayed by it to the victim.
    let forwarded_before = world.node(framed).map_or(0, |n| n.inspect().counters().forwarded);
    for _ in 0..20 {
        let bytes = bad_signature(&mut world, attacker, framed, victim);
        world.send_raw(attacker, to_framed, bytes);
    }
    world.run_for(Duration::from_secs(2));
    let relayed = world.node(framed).map_or(0, |n| n.inspect().counters().forwarded) - forwarded_before;
    assert!(relayed >= 20, "seed {SEED}: the framed node relayed {relayed} of the 20 altered frames");
    assert!(
        link_between(&world, framed, victim).is_some(),
        "seed {SEED}: the victim dropped its link to node {framed}, which only relayed what an attacker sent"
    );

    // The junk, in the attacker's own name, on its own link.
    let start = world.now();
    let victim_end = link_between(&world, victim, attacker).expect("the victim's end of the link");
    world.send_raw(attacker, to_victim, vec![0x7f, 1, 2, 3]);
    world.send_raw(attacker, to_victim, vec![msg::KIND_LINK, 0xff, 0xff, 0xff]);
    world.send_raw(attacker, to_victim, Vec::new());
    for _ in 0..4 {
        let bytes = bad_signature(&mut world, attacker, attacker, victim);
        world.send_raw(attacker, to_victim, bytes);
    }
    world.run_for(Duration::from_secs(1));
    assert!(
        link_between(&world, victim, attacker).is_none(),
        "seed {SEED}: the victim {victim} kept its link to the attacker {attacker}: {:?}",
        world.node(victim).and_then(|n| n.inspect().conduct(victim_end, world.now()))
    );
    let attacker_id = world.id(attacker);
    let backed = conduct_of(&world, &[victim]);
    assert_eq!(backed, vec![(victim, vec![attacker_id], 1)], "seed {SEED}: the victim's conduct table");

    // The attacker's node wants the victim back (it is its successor): the victim refuses it (checked for
    // the first two minutes of the backoff; `conduct::tests` checks when it ends). Meanwhile honest members
    // message each other.
    let mut sends = Vec::new();
    for (k, &from) in honest.iter().enumerate() {
        let to = honest[(k + 3) % honest.len()];
        let bytes = payload(&mut world, k as u64, 64);
        let to_wallet = wallet(&world, to);
        sends.push(send(&mut world, from, to_wallet, bytes));
    }
    let results = wait_all(&mut world, &sends, Duration::from_secs(30));
    for (p, r) in sends.iter().zip(&results) {
        assert!(
            matches!(r, Some((_, Event::Sent { outcome: SendOutcome::Delivered { .. }, .. }))),
            "seed {SEED}: node {}'s message was not delivered: {r:?}",
            p.node
        );
    }
    let until = start.saturating_add(Duration::from_secs(120));
    assert!(BACKOFF > Duration::from_secs(120));
    while world.now() < until {
        world.run_for(Duration::from_secs(5));
        assert!(
            link_between(&world, victim, attacker).is_none(),
            "seed {SEED}: the victim linked to the backed-off attacker again {:?} after dropping it",
            world.now().since(start)
        );
    }

    // No honest node ever blamed an honest peer.
    let others: Vec<usize> = honest.iter().copied().filter(|i| *i != victim).collect();
    for (i, backed, dropped) in conduct_of(&world, &others) {
        assert!(
            backed.is_empty() && dropped == 0,
            "seed {SEED}: honest node {i} backed off {backed:?} and dropped {dropped} links for misbehaviour"
        );
    }
    let (_, backed, dropped) = conduct_of(&world, &[victim]).remove(0);
    assert_eq!((backed, dropped), (vec![attacker_id], 1), "seed {SEED}: the victim blamed an honest peer");
    assert_budget_held(&world, SEED);
}
