//! One wallet on several devices: a wallet whose three devices (three nodes, three session keys, three
//! delegations from the same wallet) are online is found with three live sessions, and a message to it
//! arrives on all three, once each, intact. When one device is offline the others still get the message at
//! once, the send resolves `Delivered` with the two that answered, and the offline device finds its copy in
//! the mailbox when it comes back — once, after which the mailbox is empty.
//!
//! Sizes: 40 nodes plus 2 more devices (the same at full size).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chordial_core::node::{Event, SendOutcome};
use chordial_sim::scenario::{assert_budget_held, pick, run_until_exact};

use common::{
    ask, mailbox_holders, payload, received_since, ring, roomiest_member, send, wait_one, wallet, APP,
};

const SEED: u64 = 31;
const MEMBERS: usize = 40;

#[test]
fn a_wallet_with_three_devices_receives_on_all_three() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let base: Vec<usize> = (0..5).collect();
    let nodes = world.member_indices();
    let first = nodes[5 + pick(world.rng(), nodes.len() - 5)];
    let to = wallet(&world, first);
    let devices = vec![first, world.add_device(first, &base), world.add_device(first, &base)];
    assert!(
        run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1)).is_some(),
        "seed {SEED}: the ring did not take in the new devices: {}",
        world.ring_view().check_all()
    );
    // Presence of the new devices is published on join; give the writes and replicas time to land.
    world.run_for(Duration::from_secs(20));
    for &d in &devices {
        assert_eq!(wallet(&world, d), to, "seed {SEED}: device {d} runs for another wallet");
    }
    let device_ids: BTreeSet<_> = devices.iter().map(|&d| world.id(d)).collect();
    assert_eq!(device_ids.len(), 3, "seed {SEED}: the devices share a node id");

    let sender = *nodes.iter().find(|i| !devices.contains(i) && !base.contains(i)).expect("a sender");
    let found = ask(&mut world, sender, |n, now| n.lookup_wallet(now, to));
    match wait_one(&mut world, found, Duration::from_secs(30)) {
        Some(Event::WalletSessions { sessions, .. }) => {
            let ids: BTreeSet<_> = sessions.iter().map(|s| s.node_id).collect();
            assert_eq!(ids, device_ids, "seed {SEED}: lookup of the wallet found {sessions:?}");
        }
        other => panic!("seed {SEED}: lookup of the wallet: {other:?}"),
    }

    // All three online: one send, three receipts, three deliveries.
    let start = world.now();
    let bytes = payload(&mut world, 0, 300);
    let p = send(&mut world, sender, to, bytes.clone());
    match wait_one(&mut world, p, Duration::from_secs(30)) {
        Some(Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. }) => {
            let ids: BTreeSet<_> = sessions.iter().copied().collect();
            assert_eq!(ids, device_ids, "seed {SEED}: receipts came from {sessions:?}");
            assert_eq!(sessions.len(), 3, "seed {SEED}: a device answered twice: {sessions:?}");
        }
        other => panic!("seed {SEED}: send to the three devices: {other:?}"),
    }
    world.run_for(Duration::from_secs(5));
    let from = wallet(&world, sender);
    for &d in &devices {
        let got = received_since(&world, d, start);
        assert_eq!(got.len(), 1, "seed {SEED}: device {d} received {} copies", got.len());
        assert!(
            got[0].bytes == bytes && got[0].from == from && got[0].origin == APP,
            "seed {SEED}: device {d} received {:?}",
            got[0]
        );
    }

    // One device offline: the other two at once, the third from its mailbox when it is back.
    let offline = devices[2];
    world.crash(offline);
    let start = world.now();
    let bytes = payload(&mut world, 1, 500);
    let p = send(&mut world, sender, to, bytes.clone());
    match wait_one(&mut world, p, Duration::from_secs(60)) {
        Some(Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. }) => {
            let ids: BTreeSet<_> = sessions.iter().copied().collect();
            let online: BTreeSet<_> = devices[..2].iter().map(|&d| world.id(d)).collect();
            assert_eq!(
                ids, online,
                "seed {SEED}: with device {offline} down, receipts came from {sessions:?}"
            );
        }
        other => panic!("seed {SEED}: send with one device down: {other:?}"),
    }
    world.run_for(Duration::from_secs(5));
    for &d in &devices[..2] {
        let got = received_since(&world, d, start);
        assert!(
            got.len() == 1 && got[0].bytes == bytes,
            "seed {SEED}: online device {d} received {} copies",
            got.len()
        );
    }
    let holders = mailbox_holders(&world);
    assert!(!holders.is_empty(), "seed {SEED}: the offline device's copy was not stored");

    let back = world.now();
    let via = roomiest_member(&world);
    world.restart(offline, via);
    // Arrival, acknowledgements and replica drops, then a presence refresh that would hand out anything
    // left behind a second time.
    world.run_for(Duration::from_secs(6 * 60));
    let got = received_since(&world, offline, back);
    assert!(
        got.len() == 1 && got[0].bytes == bytes && got[0].from == from,
        "seed {SEED}: device {offline} received {} copies after coming back: {got:?}",
        got.len()
    );
    for &d in &devices[..2] {
        assert_eq!(
            received_since(&world, d, start).len(),
            1,
            "seed {SEED}: online device {d} got the message again from the mailbox"
        );
    }
    let left = mailbox_holders(&world);
    assert!(left.is_empty(), "seed {SEED}: mailbox entries left after delivery: {left:?}");
    assert_budget_held(&world, SEED);
}
