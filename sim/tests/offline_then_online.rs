//! Messages to a wallet whose only node is down are stored (`Stored`) in its mailbox on the ring; when the
//! node comes back with the same session (its identity restored from storage, its state fresh) it gets
//! every stored message exactly once, and afterwards no node holds any mailbox entry — not even after the
//! returning node refreshes its presence.
//!
//! Sizes: 40 nodes, 6 messages from 3 senders (the same at full size).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chordial_core::node::records::presence_key;
use chordial_core::node::{Event, SendOutcome};
use chordial_sim::scenario::{assert_budget_held, pick, run_until_exact};

use common::{
    every_position_holds, mailbox_holders, mailbox_positions, payload, placement, received_since, ring,
    roomiest_member, send, wait_all, wallet, APP,
};

const SEED: u64 = 21;
const MEMBERS: usize = 40;
const MESSAGES: usize = 6;

#[test]
fn an_offline_wallet_gets_each_stored_message_once_and_the_mailbox_empties() {
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
    let senders: Vec<usize> = nodes.iter().copied().filter(|i| *i != recipient).take(3).collect();

    world.crash(recipient);
    assert!(
        run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1)).is_some(),
        "seed {SEED}: the ring did not repair after node {recipient} crashed: {}",
        world.ring_view().check_all()
    );

    let mut sent = Vec::new();
    let mut pending = Vec::new();
    for k in 0..MESSAGES {
        let from = senders[k % senders.len()];
        let bytes = payload(&mut world, k as u64, 64 + 97 * k);
        pending.push(send(&mut world, from, to, bytes.clone()));
        sent.push((from, bytes));
        world.run_for(Duration::from_millis(300));
    }
    let results = wait_all(&mut world, &pending, Duration::from_secs(60));
    for (k, result) in results.iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Sent { outcome: SendOutcome::Stored, .. }))),
            "seed {SEED}: message {k} from node {} to offline node {recipient}: {result:?}",
            sent[k].0
        );
    }
    world.run_for(Duration::from_secs(5));
    // The mailbox lives at every position of the wallet: each has at least r holders of every entry (a node
    // holding two positions keeps every entry under each).
    let held = mailbox_positions(&world, &to);
    eprintln!("seed {SEED}: mailbox of node {recipient} held by (node, position) {held:?} (r = {r})");
    assert!(
        every_position_holds(&held, r, MESSAGES),
        "seed {SEED}: expected at least {r} holders of all {MESSAGES} entries at each position, got {held:?}"
    );

    let back = world.now();
    let via = roomiest_member(&world);
    world.restart(recipient, via);
    let deadline = back.saturating_add(Duration::from_secs(120));
    while received_since(&world, recipient, back).len() < MESSAGES && world.now() < deadline {
        world.run_for(Duration::from_millis(200));
    }
    let arrived = world.now().since(back);
    // Acknowledgements and replica drops, then a presence refresh (every presence_ttl / 2 = 5 min) that
    // would hand out anything left behind a second time.
    world.run_for(Duration::from_secs(6 * 60));

    let got = received_since(&world, recipient, back);
    let senders_wallets: Vec<_> = sent.iter().map(|(from, _)| wallet(&world, *from)).collect();
    let mut seen = BTreeSet::new();
    for g in &got {
        let k = u64::from_be_bytes(g.bytes[..8].try_into().expect("8 bytes")) as usize;
        assert!(
            k < MESSAGES && g.bytes == sent[k].1 && g.from == senders_wallets[k] && g.origin == APP,
            "seed {SEED}: node {recipient} received a message that was not sent as such: {g:?}"
        );
        assert!(seen.insert(k), "seed {SEED}: node {recipient} received message {k} twice");
    }
    assert_eq!(
        seen.len(),
        MESSAGES,
        "seed {SEED}: node {recipient} received {} of {MESSAGES} stored messages (missing {:?})",
        seen.len(),
        (0..MESSAGES).filter(|k| !seen.contains(k)).collect::<Vec<_>>()
    );
    let left = mailbox_holders(&world);
    assert!(
        left.is_empty(),
        "seed {SEED}: mailbox entries left after delivery (node index → entries): {left:?}; {}; the recipient is \
         node {recipient}",
        placement(&world, presence_key(&to))
    );
    eprintln!(
        "seed {SEED}: {MESSAGES} stored messages arrived {:.1}s after the restart; mailbox empty",
        arrived.as_secs_f64()
    );
    assert_budget_held(&world, SEED);
}
