//! A mailbox outlives the loss of r − 1 of the r nodes holding it: messages are stored for an offline
//! wallet, then r − 1 holders — always including the owner of the wallet's presence key — crash before
//! the wallet's node returns, and it still receives every message exactly once.
//!
//! Sizes: 40 nodes, 5 messages (the same at full size).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chordial_core::node::records::{presence_key, presence_keys};
use chordial_core::node::{Event, SendOutcome};
use chordial_sim::scenario::{assert_budget_held, pick, run_until_exact};

use common::{
    mailbox_holders, mailbox_positions, payload, placement, received_since, ring, roomiest_member, send,
    wait_all, wallet,
};

const SEED: u64 = 31;
const MEMBERS: usize = 40;
const MESSAGES: usize = 5;

#[test]
fn a_mailbox_survives_the_crash_of_all_but_one_of_its_holders() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let r = world.r();
    let base: Vec<usize> = (0..5).collect();
    let nodes = world.member_indices();
    let recipient = loop {
        let i = nodes[pick(world.rng(), nodes.len())];
        if !base.contains(&i) {
            break i;
        }
    };
    let to = wallet(&world, recipient);
    let sender = nodes.iter().copied().find(|i| *i != recipient && !base.contains(i)).expect("a sender");

    world.crash(recipient);
    assert!(
        run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1)).is_some(),
        "seed {SEED}: the ring did not repair after node {recipient} crashed: {}",
        world.ring_view().check_all()
    );
    let mut sent = Vec::new();
    let mut pending = Vec::new();
    for k in 0..MESSAGES {
        let bytes = payload(&mut world, k as u64, 200 + k);
        pending.push(send(&mut world, sender, to, bytes.clone()));
        sent.push(bytes);
        world.run_for(Duration::from_millis(200));
    }
    for (k, result) in wait_all(&mut world, &pending, Duration::from_secs(60)).iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Sent { outcome: SendOutcome::Stored, .. }))),
            "seed {SEED}: message {k} to offline node {recipient}: {result:?}"
        );
    }
    world.run_for(Duration::from_secs(5));

    // Crash r − 1 holders: the owner of the presence key first, then random others.
    let holders = mailbox_holders(&world);
    let owner = world.ideal_owner(presence_key(&to)).map(|id| world.members()[&id]);
    assert!(
        holders.len() >= r && owner.is_some_and(|o| holders.contains_key(&o)),
        "seed {SEED}: expected the owner {owner:?} among at least {r} holders, got {holders:?}"
    );
    let mut victims: Vec<usize> = owner.into_iter().collect();
    let mut others: Vec<usize> = holders.keys().copied().filter(|i| Some(*i) != owner).collect();
    while victims.len() < r - 1 && !others.is_empty() {
        let k = pick(world.rng(), others.len());
        victims.push(others.swap_remove(k));
    }
    assert_eq!(victims.len(), r - 1, "seed {SEED}: not enough holders to crash: {holders:?}");
    for v in &victims {
        world.crash(*v);
    }
    let survivors: Vec<usize> = holders.keys().copied().filter(|i| !victims.contains(i)).collect();
    eprintln!("seed {SEED}: holders {holders:?}; crashed {victims:?}; surviving {survivors:?}");
    assert!(
        run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1)).is_some(),
        "seed {SEED}: the ring did not repair after the holders crashed: {}",
        world.ring_view().check_all()
    );
    world.run_for(Duration::from_secs(5));

    let back = world.now();
    let via = roomiest_member(&world);
    world.restart(recipient, via);
    let deadline = back.saturating_add(Duration::from_secs(120));
    while received_since(&world, recipient, back).len() < MESSAGES && world.now() < deadline {
        world.run_for(Duration::from_millis(200));
    }
    world.run_for(Duration::from_secs(30));

    let mut seen = BTreeSet::new();
    for g in received_since(&world, recipient, back) {
        let k = u64::from_be_bytes(g.bytes[..8].try_into().expect("8 bytes")) as usize;
        assert!(k < MESSAGES && g.bytes == sent[k], "seed {SEED}: unexpected message {g:?}");
        assert!(seen.insert(k), "seed {SEED}: message {k} received twice");
    }
    assert_eq!(
        seen.len(),
        MESSAGES,
        "seed {SEED}: after {victims:?} crashed, node {recipient} received {} of {MESSAGES} (missing {:?})",
        seen.len(),
        (0..MESSAGES).filter(|k| !seen.contains(k)).collect::<Vec<_>>()
    );
    let left = mailbox_positions(&world, &to);
    assert!(
        left.is_empty() && mailbox_holders(&world).is_empty(),
        "seed {SEED}: mailbox entries left after delivery ((node index, position) → entries): {left:?}; {:?}; \
         the recipient is node {recipient}",
        presence_keys(&to).map(|key| placement(&world, key))
    );
    assert_budget_held(&world, SEED);
}
