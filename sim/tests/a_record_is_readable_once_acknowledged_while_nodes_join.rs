//! A record is readable as soon as its write is acknowledged, also while the ring is changing (issue 16,
//! item 5). Nodes join a ring of 12, one every half second, each with an id chosen just after the key of a
//! topic (between the key and its owner, so that it takes the key over). The moment a joiner has joined,
//! a member announces on that topic — the write reaches the old owner, which does not know yet that the key
//! is no longer its own, and acknowledges — and the moment the announce is `Done` another member discovers
//! the topic and looks up the announcing wallet, as a dApp does after `discover` lists someone. Every such
//! discover must list the wallet and every lookup find its session (a browser test once saw `wallet not
//! found` right after `discover` had listed the wallet).
//!
//! The topics' first positions are the keys taken over; a topic's other two positions and a wallet's three
//! are wherever they fall, so a miss needs every position of a record to be on nodes that just joined.
//!
//! The defence: a read that finds nothing at the key's owner asks the next node, and the next, up to
//! r − 1 past the owner — the old owner is among them however many joined in front of it ([`SEEDS`] says
//! which run fails with fewer).
//!
//! Sizes: 12 members, 12 joiners, two seeds.

mod common;

use std::time::Duration;

use chordial_core::node::records::topic_key;
use chordial_core::node::Event;
use chordial_sim::scenario::pick;

use common::{ask, result_of, ring, wait_all, wallet, Pending, APP};

/// Two runs: with no read past the owner, seed 3 misses (as 12 of the first 39 seeds do); with a single read
/// at the owner's successor, seed 13 misses (1 of 39: two joiners in a row own a key before its records
/// reach them). Reading up to r − 1 past the owner, none of the 39 misses.
const SEEDS: [u64; 2] = [3, 13];
const MEMBERS: usize = 12;
const JOINERS: usize = 12;

#[test]
fn a_record_acknowledged_while_its_key_changes_owner_is_read_right_after() {
    for seed in SEEDS {
        reads_right_after_the_acks_find_the_records(seed);
    }
}

fn reads_right_after_the_acks_find_the_records(seed: u64) {
    let mut world = ring(seed, MEMBERS, Duration::from_secs(10));
    let members = world.member_indices();
    // (topic, joiner, announcer, its announce) and (topic, announcer, lookup, discover).
    let mut announces: Vec<(String, usize, usize, Option<Pending>)> = Vec::new();
    let mut reads: Vec<(String, usize, Pending, Pending)> = Vec::new();
    let end = world.now().saturating_add(Duration::from_secs(JOINERS as u64 / 2 + 30));
    let mut next_join = world.now();
    while world.now() < end {
        if announces.len() < JOINERS && world.now() >= next_join {
            let topic = format!("room-{}", announces.len());
            let key = topic_key(APP, &topic);
            let owner = world.ideal_owner(key).expect("members");
            let (identity, _) = common::identity_between(&mut world, key, owner);
            let via = members[pick(world.rng(), 5)];
            let joiner = world.add_node_with(identity, &[via]);
            let announcer = members[pick(world.rng(), members.len())];
            announces.push((topic, joiner, announcer, None));
            next_join = world.now().saturating_add(Duration::from_millis(500));
        }
        for entry in &mut announces {
            let (topic, joiner, announcer, p) = entry.clone();
            if p.is_none() && world.joined_event(joiner) == Some(true) {
                let p = ask(&mut world, announcer, |n, now| {
                    n.announce(now, APP, &topic, Duration::from_secs(3600))
                });
                entry.3 = Some(p);
            }
            let Some(p) = p else { continue };
            if reads.iter().any(|(t, ..)| *t == topic) {
                continue;
            }
            match result_of(&world, p) {
                Some((_, Event::Done { .. })) => {
                    let asker = members[pick(world.rng(), members.len())];
                    let w = wallet(&world, announcer);
                    let lookup = ask(&mut world, asker, |n, now| n.lookup_wallet(now, w));
                    let discover = ask(&mut world, asker, |n, now| n.discover(now, APP, &topic));
                    reads.push((topic, announcer, lookup, discover));
                }
                Some(other) => panic!("seed {seed}: announce on {topic}: {other:?}"),
                None => {}
            }
        }
        world.run_for(Duration::from_millis(20));
    }
    assert_eq!(reads.len(), JOINERS, "seed {seed}: announces done: {} of {JOINERS}", reads.len());
    let pending: Vec<Pending> = reads.iter().flat_map(|(_, _, l, d)| [*l, *d]).collect();
    let results = wait_all(&mut world, &pending, Duration::from_secs(30));
    let mut missed = Vec::new();
    for (k, (topic, announcer, ..)) in reads.iter().enumerate() {
        let (id, w) = (world.id(*announcer), wallet(&world, *announcer));
        let found = matches!(&results[2 * k], Some((_, Event::WalletSessions { sessions, .. }))
            if sessions.iter().any(|s| s.node_id == id));
        let listed = matches!(&results[2 * k + 1], Some((_, Event::Discovered { members, .. }))
            if members.iter().any(|(m, _)| *m == w));
        if !(found && listed) {
            missed.push((topic.clone(), found, listed));
        }
    }
    assert!(
        missed.is_empty(),
        "seed {seed}: reads right after the ack that missed (topic, found, listed): {missed:?}"
    );
    eprintln!("seed {seed}: {JOINERS} keys changed owner; each announce discovered and its wallet found right after the ack");
}
