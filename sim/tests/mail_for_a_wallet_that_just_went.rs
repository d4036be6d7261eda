//! A message sent right after the recipient's only node went away — gracefully (`Leave`, which withdraws
//! its presence) or by crashing (its presence still says live) — resolves `Stored`, not `NotFound`; when
//! the node comes back with the same session it receives the message exactly once and the mailbox empties.
//!
//! This is a browser closing: the extension's node may get to send `Leave` or may not, and the sender
//! tries at once, before the ring has repaired. A withdrawn presence still names the wallet's last known
//! session (within its delegation), which is what a mailbox seals to.
//!
//! Sizes: a ring of 3 (a server and two browsers, as in the extension's tests) and one of 20.

mod common;

use std::time::Duration;

use chordial_core::node::records::presence_key;
use chordial_core::node::{Event, SendOutcome};
use chordial_sim::scenario::run_until_exact;

use common::{ask, mailbox_holders, payload, placement, received_since, ring, send, wait_one, wallet};

#[derive(Clone, Copy, Debug)]
enum Gone {
    Left,
    Crashed,
}

/// Runs the scenario; returns how long after the restart the message arrived.
fn went_then_sent(seed: u64, members: usize, how: Gone) -> Duration {
    let mut world = ring(seed, members, Duration::from_secs(5));
    let mut nodes = world.member_indices();
    nodes.sort_unstable();
    // Not the founder (node 0): it is the one the returning node bootstraps through, as a server would be.
    let recipient = nodes[nodes.len() - 1];
    let sender = nodes[nodes.len() - 2];
    assert!(sender != 0 && recipient != 0, "seed {seed}: {nodes:?}");
    let to = wallet(&world, recipient);

    match how {
        Gone::Left => {
            world.leave(recipient);
            // The leave grace: Leave, the withdrawn presence and the handoff go out, then the links close.
            world.run_for(world.config().leave_grace + Duration::from_millis(100));
            assert!(!world.is_alive(recipient), "seed {seed}: node {recipient} still runs after its leave");
            // The withdrawn presence reached the key's owner: nobody sees the wallet online any more.
            let asked = ask(&mut world, sender, |n, now| n.lookup_wallet(now, to));
            let found = wait_one(&mut world, asked, Duration::from_secs(30));
            assert!(
                matches!(&found, Some(Event::WalletSessions { sessions, .. }) if sessions.is_empty()),
                "seed {seed} ({members} nodes): node {recipient} left, yet a lookup of its wallet gives {found:?}; {}",
                placement(&world, presence_key(&to))
            );
        }
        Gone::Crashed => world.crash(recipient),
    }

    // At once: no waiting for the ring to notice.
    let bytes = payload(&mut world, 7, 300);
    let sent = send(&mut world, sender, to, bytes.clone());
    let result = wait_one(&mut world, sent, Duration::from_secs(60));
    assert!(
        matches!(result, Some(Event::Sent { outcome: SendOutcome::Stored, .. })),
        "seed {seed} ({how:?}, {members} nodes): a message to node {recipient}, which just went, resolved {result:?}; \
         {}",
        placement(&world, presence_key(&to))
    );
    assert!(
        run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1)).is_some(),
        "seed {seed}: the ring did not repair after node {recipient} went: {}",
        world.ring_view().check_all()
    );
    let holders = mailbox_holders(&world);
    assert!(!holders.is_empty(), "seed {seed} ({how:?}): Stored, yet no node holds a mailbox entry");

    let back = world.now();
    world.restart(recipient, 0);
    let deadline = back.saturating_add(Duration::from_secs(120));
    while received_since(&world, recipient, back).is_empty() && world.now() < deadline {
        world.run_for(Duration::from_millis(200));
    }
    let arrived = world.now().since(back);
    // Acknowledgement, replica drops, and a presence refresh (presence_ttl / 2) that would hand out anything
    // left behind a second time.
    world.run_for(Duration::from_secs(6 * 60));
    let got = received_since(&world, recipient, back);
    assert_eq!(got.len(), 1, "seed {seed} ({how:?}): node {recipient} received {got:?} after returning");
    assert_eq!(got[0].bytes, bytes, "seed {seed} ({how:?}): the payload changed");
    assert_eq!(got[0].from, wallet(&world, sender), "seed {seed} ({how:?}): wrong sender");
    let left = mailbox_holders(&world);
    assert!(left.is_empty(), "seed {seed} ({how:?}): mailbox entries left after delivery: {left:?}");
    arrived
}

fn report(world_size: usize, how: Gone, arrived: Duration) {
    eprintln!(
        "{how:?}, {world_size} nodes: stored, then delivered {:.1}s after the return",
        arrived.as_secs_f64()
    );
}

#[test]
fn a_wallet_that_left_gracefully_gets_its_mail_once() {
    for (seed, members) in [(41, 3), (42, 20)] {
        report(members, Gone::Left, went_then_sent(seed, members, Gone::Left));
    }
}

#[test]
fn a_wallet_that_crashed_gets_its_mail_once() {
    for (seed, members) in [(43, 3), (44, 20)] {
        report(members, Gone::Crashed, went_then_sent(seed, members, Gone::Crashed));
    }
}
