//! Nobody but the recipient can delete its mail. A wallet's only node is down with messages stored in its
//! mailbox; then attackers try every way a stored entry used to leave a holder:
//!
//! 1. link peers of every holder send `DropMail` naming the real entries, with acknowledgements that are not
//!    the recipient session's: the recipient's session and delegation (public, in its presence record) signed
//!    by another key; the attacker's own session under its own wallet's delegation, claiming the victim's
//!    wallet; and a valid acknowledgement of the attacker's own mailbox naming the victim's ids;
//! 2. the same link peers `Replicate` (and `ReplicateAt` each position) copies of the real entries with their
//!    ciphertext replaced (same id);
//! 3. a node routes the same forged acknowledgements to the owner of each of the mailbox's positions as
//!    `MailboxAck` (sealed to it);
//! 4. when the recipient comes back, before its presence reaches the owner, a node sends it
//!    `MailboxDeliver` with the real ids and other bytes: junk, and a valid message of the attacker's own.
//!
//! After 1–3 every holder still keeps every entry. The recipient then gets every real message exactly once
//! (and the attacker's own message, once — it is a real message from the attacker's wallet), and once it
//! has acknowledged them no holder keeps any mailbox entry.
//!
//! Defences, each of which this test fails without (docs/security.md): holders delete only on the recipient
//! session's verified acknowledgement (`MailAck::verify`), and the recipient acknowledges only what it
//! opened, under the id that names those bytes.
//!
//! Sizes: 30 nodes, 4 messages from 2 senders (the same at full size).

mod common;
#[path = "common/forge_mail.rs"]
mod forge_mail;

use std::collections::BTreeSet;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use chordial_core::e2e::{self, InnerMessage};
use chordial_core::node::msg::{AppMsg, LinkMsg, Routed};
use chordial_core::node::records::{presence_key, presence_keys, MailAck, Record};
use chordial_core::node::{Event, SendOutcome};
use chordial_core::wire::envelope::Destination;
use chordial_sim::scenario::{assert_budget_held, pick, run_until_exact};

use common::{
    every_position_holds, mailbox_holders, mailbox_positions, payload, placement, received_since, ring,
    roomiest_member, send, wait_all, wallet, APP,
};
use forge_mail::{entries_at, link_peer_of, own_wallet, presence_of, routed_frame, send_link};

const SEED: u64 = 161;
const MEMBERS: usize = 30;
const MESSAGES: usize = 4;

#[test]
fn mail_cannot_be_deleted_by_others() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
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
    let key = presence_key(&to);
    let senders: Vec<usize> = nodes.iter().copied().filter(|i| *i != recipient).take(2).collect();
    // The attacker whose key signs the forgeries (any member; it needs no place in the ring).
    let mallory =
        *nodes.iter().rev().find(|i| **i != recipient && !senders.contains(i)).expect("a third node");
    let victim = presence_of(&world, &to);

    world.crash(recipient);
    assert!(
        run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1)).is_some(),
        "seed {SEED}: the ring did not repair after node {recipient} crashed"
    );
    let mut sent = Vec::new();
    let mut pending = Vec::new();
    for k in 0..MESSAGES {
        let from = senders[k % senders.len()];
        let bytes = payload(&mut world, k as u64, 100 + 50 * k);
        pending.push(send(&mut world, from, to, bytes.clone()));
        sent.push((wallet(&world, from), bytes));
        world.run_for(Duration::from_millis(300));
    }
    for (k, result) in wait_all(&mut world, &pending, Duration::from_secs(60)).iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Sent { outcome: SendOutcome::Stored, .. }))),
            "seed {SEED}: message {k} to offline node {recipient}: {result:?}"
        );
    }
    world.run_for(Duration::from_secs(5));
    let held = mailbox_positions(&world, &to);
    assert!(
        every_position_holds(&held, r, MESSAGES),
        "seed {SEED}: expected at least {r} holders of all {MESSAGES} entries at each position, got {held:?}"
    );
    let holders = mailbox_holders(&world);
    let real = entries_at(&world, *holders.keys().next().expect("a holder"), &to);
    let real_ids: Vec<[u8; 16]> = real.iter().map(|m| m.id).collect();

    // The forged acknowledgements. (a) The victim session and delegation, signed by another key.
    let attacker_key = world.session_key(mallory);
    let mut as_victim = MailAck::sign(&attacker_key, to, &victim.delegation, real_ids.clone());
    as_victim.session = victim.session;
    // (b) The attacker's own session under its own wallet's delegation, claiming the victim's wallet.
    let (own, own_delegation) = own_wallet(&mut rng, &world, &attacker_key);
    let mut claims_victim = MailAck::sign(&attacker_key, own, &own_delegation, real_ids.clone());
    claims_victim.wallet = to;
    // (c) A valid acknowledgement — of the attacker's own mailbox — naming the victim's entries.
    let own_mailbox = MailAck::sign(&attacker_key, own, &own_delegation, real_ids.clone());
    let forged_acks = [as_victim, claims_victim, own_mailbox];

    // 1 and 2: from a link peer of every holder, DropMail with each forged acknowledgement, and the real
    // entries with other ciphertext under their ids.
    let mut attackers = BTreeSet::new();
    for &holder in holders.keys() {
        let (attacker, link) = link_peer_of(&world, holder, &[recipient]);
        attackers.insert(attacker);
        for ack in &forged_acks {
            send_link(&mut world, attacker, link, &LinkMsg::DropMail { ack: Box::new(ack.clone()) });
        }
        let swapped: Vec<Record> = real
            .iter()
            .map(|m| {
                let mut m = m.clone();
                rng.fill_bytes(&mut m.sealed);
                Record::Mailbox(m)
            })
            .collect();
        send_link(&mut world, attacker, link, &LinkMsg::Replicate { records: swapped.clone() });
        for key in presence_keys(&to) {
            send_link(&mut world, attacker, link, &LinkMsg::ReplicateAt { key, records: swapped.clone() });
        }
    }
    // 3: the forged acknowledgements routed to each position's owner, from a node that is not a holder, sealed
    // to the owner's session (as the recipient seals its own; the owner's key is public in any reply it signs).
    let router = *nodes.iter().find(|i| **i != recipient && !holders.contains_key(i)).expect("a non-holder");
    for (ack, key) in forged_acks.iter().flat_map(|a| presence_keys(&to).map(|k| (a, k))) {
        let owner = world.members()[&world.ideal_owner(key).expect("an owner")];
        let owner_session = *world.session_key(owner).public();
        let plain = postcard::to_allocvec(ack).expect("an acknowledgement encodes");
        let sealed = e2e::seal_to(&chordial_core::crypto::REAL, &mut rng, &owner_session, &plain)
            .expect("a valid key");
        let frame = routed_frame(
            &mut world,
            router,
            Destination::Key(key),
            &Routed::App(AppMsg::MailboxAck { sealed }),
        );
        let (link, _) = world.open_links(router)[0];
        world.send_raw(router, link, frame);
    }
    world.run_for(Duration::from_secs(5));
    let after = mailbox_holders(&world);
    eprintln!(
        "seed {SEED}: holders {holders:?}; attackers (link peers) {attackers:?}, MailboxAck from {router}; \
         after the attacks {after:?}"
    );
    for (&holder, &n) in &holders {
        let kept: BTreeSet<[u8; 16]> = entries_at(&world, holder, &to).iter().map(|m| m.id).collect();
        assert!(
            real_ids.iter().all(|id| kept.contains(id)),
            "seed {SEED}: holder {holder} lost mail to forged DropMail/MailboxAck: held {n}, keeps {}",
            kept.len()
        );
    }

    // 4: the recipient comes back; as soon as it has a link, a node sends it the real ids with other bytes.
    let back = world.now();
    let via = roomiest_member(&world);
    world.restart(recipient, via);
    while world.open_links(recipient).is_empty() && world.now() < back.saturating_add(Duration::from_secs(10))
    {
        world.step();
    }
    let (link, _) = *world.open_links(recipient).first().expect("the recipient opened its bootstrap link");
    let forger = mallory;
    let forger_wallet = own;
    let forger_delegation = own_delegation;
    let inner = InnerMessage {
        from_wallet: forger_wallet,
        to_wallet: to,
        app_origin: APP.to_owned(),
        seq: 1,
        sent_at: world.now(),
        payload: b"the attacker's own message".to_vec(),
    };
    let own_message =
        e2e::seal(&mut rng, &world.session_key(forger), &forger_delegation, &victim.session, &inner)
            .expect("seals");
    let mut junk = vec![0u8; 300];
    rng.fill_bytes(&mut junk);
    let entries: Vec<([u8; 16], Vec<u8>)> = real_ids
        .iter()
        .enumerate()
        .map(|(k, id)| (*id, if k % 2 == 0 { junk.clone() } else { own_message.clone() }))
        .collect();
    let dest = Destination::Node(world.id(recipient));
    let frame = routed_frame(&mut world, forger, dest, &Routed::App(AppMsg::MailboxDeliver { entries }));
    let refused = |world: &chordial_sim::World| {
        world.node(recipient).map_or(0, |n| n.inspect().status().counters.refused_messages)
    };
    let before = refused(&world);
    world.with_node(recipient, |n, now| n.handle_frame(now, link, &frame));
    let refused_forged = refused(&world) - before;

    let deadline = back.saturating_add(Duration::from_secs(120));
    let honest = |g: &common::Got| g.from != forger_wallet;
    while received_since(&world, recipient, back).iter().filter(|g| honest(g)).count() < MESSAGES
        && world.now() < deadline
    {
        world.run_for(Duration::from_millis(200));
    }
    world.run_for(Duration::from_secs(30));

    let got = received_since(&world, recipient, back);
    let mut seen = BTreeSet::new();
    for g in got.iter().filter(|g| honest(g)) {
        let k = u64::from_be_bytes(g.bytes[..8].try_into().expect("8 bytes")) as usize;
        assert!(
            k < MESSAGES && (g.from, &g.bytes) == (sent[k].0, &sent[k].1) && g.origin == APP,
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
    let own = got.iter().filter(|g| !honest(g)).count();
    assert!(own <= 1, "seed {SEED}: the attacker's own message was delivered {own} times");
    let left = mailbox_holders(&world);
    assert!(
        left.is_empty(),
        "seed {SEED}: mailbox entries left after delivery: {left:?}; {}",
        placement(&world, key)
    );
    // Checked last, so that without the defence the outcomes above are what fails.
    assert_eq!(
        refused_forged, MESSAGES as u64,
        "seed {SEED}: the recipient did not refuse the {MESSAGES} forged deliveries under real ids"
    );
    eprintln!(
        "seed {SEED}: {MESSAGES} real messages arrived once each; the attacker's own {own}; the recipient \
         refused {} deliveries; mailbox empty",
        refused(&world)
    );
    assert_budget_held(&world, SEED);
}
