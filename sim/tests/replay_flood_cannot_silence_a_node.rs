//! A peer that floods a node with old, replayed and skewed frames cannot stop it from receiving and relaying
//! honest traffic.
//!
//! The attacker is a ring member (it keeps its links like anyone) and the victim is its first successor, so
//! the two share a link. Over that link it sends, all at once:
//!
//! - frames it signs itself, addressed to the victim, with fresh ids and dated as far ahead as the clock
//!   skew allows: each passes every check, so the victim remembers its id for `lifetime + skew` — enough of
//!   them once filled the replay window, which then refused every message addressed to the victim for
//!   seven minutes;
//! - the same frames again (replays), frames dated too old, and frames dated beyond the skew.
//!
//! Every node's replay window holds 2,048 ids here (`Config::replay_capacity`, 65,536 by default) so that a
//! flood larger than the window costs seconds of real signatures, not minutes; the attack scales with the
//! window. Then messages from every other honest member to the victim's wallet must be delivered (a receipt
//! from the victim's session, not a mailbox), messages between honest members must all be delivered too,
//! and lookups that honest members hand the victim for other members must pass through it, there and back.
//!
//! Sizes: 16 nodes (the same at full size; the window and the flood scale together).

mod common;

use std::time::Duration;

use chordial_core::node::msg::{self, RingMsg, Routed, Undeliverable};
use chordial_core::node::{Config, Event, SendOutcome};
use chordial_core::wire::envelope::{self, Destination};
use chordial_core::Timestamp;
use chordial_sim::scenario::assert_budget_held;
use chordial_sim::{World, WorldConfig};

use common::{forged_header, payload, received_since, ring_with, send, wait_all, wallet};

const SEED: u64 = 61;
const MEMBERS: usize = 16;
const WINDOW: usize = 2048;
/// Signed frames dated ahead: more than the window holds.
const FLOOD: usize = WINDOW + 256;

fn small_window(config: &mut Config) {
    config.replay_capacity = WINDOW;
}

fn ring() -> World {
    let mut config = WorldConfig::new(SEED);
    config.event_log = 20_000;
    config.tweak = small_window;
    ring_with(config, MEMBERS, Duration::from_secs(10))
}

/// A routed frame from node `from` (signed with its key) to node `to`, sent at `sent_at`: an
/// `Undeliverable` notice about no message, which the victim reads and ignores.
fn frame(world: &mut World, from: usize, to: usize, sent_at: Timestamp) -> Vec<u8> {
    let (network, dest) = (world.network_tag(), Destination::Node(world.id(to)));
    let header = forged_header(world.rng(), network, sent_at, dest);
    let body = Routed::Ring(RingMsg::Undeliverable { reason: Undeliverable::NoRoute });
    let signed = envelope::encode(&world.session_key(from), &header, &body).expect("a small body fits");
    msg::routed_frame(&signed, false)
}

fn counter(world: &World, i: usize, which: fn(&chordial_core::node::Counters) -> u64) -> u64 {
    world.node(i).map_or(0, |n| which(n.inspect().counters()))
}

#[test]
fn a_flood_of_old_replayed_and_skewed_frames_does_not_silence_a_node() {
    let mut world = ring();
    let members = world.member_indices();
    let attacker = members[0];
    let victim = *world
        .members()
        .get(&world.node(attacker).expect("running").inspect().successors()[0])
        .expect("the attacker's successor is a member");
    let link = world
        .open_links(attacker)
        .into_iter()
        .find(|(_, peer)| *peer == victim)
        .map(|(l, _)| l)
        .unwrap_or_else(|| {
            panic!("seed {SEED}: no link from the attacker {attacker} to its successor {victim}")
        });
    let skew = world.node_config().clock_skew;
    let now = world.now();

    // The flood: signed frames dated as far ahead as the victim accepts, each once and then again; frames
    // too old and too far ahead.
    let ahead = now.saturating_add(skew).saturating_sub(Duration::from_secs(1));
    let fresh: Vec<Vec<u8>> = (0..FLOOD).map(|_| frame(&mut world, attacker, victim, ahead)).collect();
    let too_old = now.saturating_sub(Duration::from_secs(301));
    let too_new = now.saturating_add(skew).saturating_add(Duration::from_secs(1));
    let mut junk: Vec<Vec<u8>> = Vec::new();
    for _ in 0..200 {
        junk.push(frame(&mut world, attacker, victim, too_old));
        junk.push(frame(&mut world, attacker, victim, too_new));
    }
    let replays_before = counter(&world, victim, |c| c.dropped_replay);
    for bytes in fresh.iter().chain(&junk).chain(&fresh) {
        world.send_raw(attacker, link, bytes.clone());
    }
    world.run_for(Duration::from_secs(2));
    let dropped = counter(&world, victim, |c| c.dropped_replay) - replays_before;
    // Every old or skewed frame is dropped, and every replay but those of ids the full window forgot to make
    // room (the price of never refusing: a copy of a forgotten message gets in again within its lifetime).
    let forgotten = world.node(victim).expect("running").inspect().replay_ids_forgotten();
    assert!(
        dropped + forgotten >= (FLOOD + junk.len()) as u64,
        "seed {SEED}: the victim dropped {dropped} of the {} replayed, old and skewed frames, forgot {forgotten}",
        FLOOD + junk.len()
    );
    eprintln!(
        "victim {victim}: {dropped} frames dropped as replays or out of time, {forgotten} live ids forgotten"
    );

    // Honest traffic now: every other honest member sends to the victim's wallet, and to another member.
    let honest: Vec<usize> = members.iter().copied().filter(|i| *i != attacker && *i != victim).collect();
    let since = world.now();
    let victim_wallet = wallet(&world, victim);
    let mut to_victim = Vec::new();
    let mut between = Vec::new();
    for (k, &from) in honest.iter().enumerate() {
        let bytes = payload(&mut world, k as u64, 64);
        to_victim.push(send(&mut world, from, victim_wallet, bytes));
        let to = honest[(k + 1 + k % 5) % honest.len()];
        if to != from {
            let bytes = payload(&mut world, 1000 + k as u64, 64);
            let to_wallet = wallet(&world, to);
            between.push((send(&mut world, from, to_wallet, bytes), to));
        }
    }
    let results = wait_all(&mut world, &to_victim, Duration::from_secs(30));
    for (p, r) in to_victim.iter().zip(&results) {
        match r {
            Some((_, Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. }))
                if sessions == &vec![world.id(victim)] => {}
            other => panic!(
                "seed {SEED}: node {}'s message to the flooded node {victim} was not delivered: {other:?}",
                p.node
            ),
        }
    }
    assert_eq!(
        received_since(&world, victim, since).len(),
        to_victim.len(),
        "seed {SEED}: the flooded node did not receive each message once"
    );
    let pending: Vec<_> = between.iter().map(|(p, _)| *p).collect();
    let results = wait_all(&mut world, &pending, Duration::from_secs(30));
    for ((p, to), r) in between.iter().zip(&results) {
        assert!(
            matches!(r, Some((_, Event::Sent { outcome: SendOutcome::Delivered { .. }, .. }))),
            "seed {SEED}: node {}'s message to node {to} was not delivered: {r:?}",
            p.node
        );
    }
    // Through the node: honest members hand it lookups for other members (in a ring this small every node
    // is linked to nearly every other, so it is seldom on a path by itself). Each lookup and its answer
    // must pass through it.
    let linked: Vec<usize> = world
        .open_links(victim)
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| *p != attacker && honest.contains(p))
        .collect();
    let probes: Vec<(usize, usize)> =
        linked.iter().zip(linked.iter().skip(1)).map(|(h, w)| (*h, *w)).take(6).collect();
    let forwarded_before = counter(&world, victim, |c| c.forwarded);
    for &(h, w) in &probes {
        let (network, now, dest) = (world.network_tag(), world.now(), Destination::Key(world.id(w)));
        let header = forged_header(world.rng(), network, now, dest);
        let signed = envelope::encode(&world.session_key(h), &header, &Routed::Ring(RingMsg::FindSuccessor))
            .expect("a small body fits");
        let link =
            world.open_links(h).into_iter().find(|(_, p)| *p == victim).map(|(l, _)| l).expect("linked");
        world.send_raw(h, link, msg::routed_frame(&signed, false));
    }
    world.run_for(Duration::from_secs(3));
    let forwarded = counter(&world, victim, |c| c.forwarded) - forwarded_before;
    assert!(
        probes.len() >= 3 && forwarded >= 2 * probes.len() as u64,
        "seed {SEED}: the flooded node relayed {forwarded} frames for {} lookups and their answers",
        probes.len()
    );
    eprintln!("victim {victim}: relayed {forwarded} frames for {} lookups through it", probes.len());
    assert_budget_held(&world, SEED);
}
