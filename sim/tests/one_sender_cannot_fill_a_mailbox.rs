//! One sender cannot fill a mailbox. A wallet's only node is down; an attacker wallet running four
//! sessions (devices) writes far more into its mailbox than the mailbox holds — 4 × 80 messages through the
//! ordinary `send`, and link peers of every holder replicate (under every position) 240 more entries signed by one of its sessions
//! and 240 unsigned junk entries, each naming a different sender wallet. Then honest senders' mail is still
//! `Stored`, and when the wallet comes back it gets every honest message exactly once.
//!
//! The attacker's wallet is told `MailboxQuota` (its share is used up), never `MailboxFull`, and holds at
//! most its share: `MAX_MAILBOX_ENTRIES_PER_SENDER` entries at each holder under each of the wallet's
//! positions, whichever of its sessions wrote them and whichever way they came. (A send is `Stored` on the
//! first position's ack, so the attacker may hear `Stored` for up to one share per position.)
//!
//! Defences, each of which this test fails without (docs/security.md): the per-sender-wallet quota in each
//! mailbox, and the writer check on every mailbox entry a holder stores (signature and delegation of the
//! sending session, also on entries that arrive by `Replicate`).
//!
//! Sizes: 30 nodes and 3 more sessions of the attacker's wallet (the same at full size).

mod common;
#[path = "common/forge_mail.rs"]
mod forge_mail;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use chordial_core::identity::{Address, Signature};
use chordial_core::node::msg::LinkMsg;
use chordial_core::node::records::{
    presence_key, presence_keys, MailboxEntry, Record, DEFAULT_MAILBOX_TTL, MAX_MAILBOX_ENTRIES,
    MAX_MAILBOX_ENTRIES_PER_SENDER, PRESENCE_POSITIONS,
};
use chordial_core::node::{Event, FailReason, SendOutcome};
use chordial_sim::scenario::{assert_budget_held, pick, run_until_exact};

use common::{mailbox_holders, payload, received_since, ring, roomiest_member, send, wait_all, wallet};
use forge_mail::{link_peer_of, presence_of, send_link};

const SEED: u64 = 171;
const MEMBERS: usize = 30;
/// Messages each of the attacker's four sessions sends through the API.
const PER_SESSION: usize = 80;
/// Entries each kind of forged `Replicate` carries, per holder (in batches that fit a frame).
const FORGED: usize = 240;
const BATCH: usize = 40;
const HONEST: usize = 3;
const PER_HONEST: usize = 5;

#[test]
fn one_sender_cannot_fill_a_mailbox() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let base: Vec<usize> = (0..5).collect();
    let nodes = world.member_indices();
    let recipient = loop {
        let i = nodes[pick(world.rng(), nodes.len())];
        if !base.contains(&i) {
            break i;
        }
    };
    let to = wallet(&world, recipient);
    let victim = presence_of(&world, &to);
    let others: Vec<usize> = nodes.iter().copied().filter(|i| *i != recipient && !base.contains(i)).collect();
    let mallory = others[0];
    let honest: Vec<usize> = others[1..=HONEST].to_vec();
    let mut sessions = vec![mallory];
    for _ in 0..3 {
        sessions.push(world.add_device(mallory, &base));
    }
    world.crash(recipient);
    assert!(
        run_until_exact(&mut world, Duration::from_secs(180), Duration::from_secs(1)).is_some(),
        "seed {SEED}: the ring did not converge with the attacker's devices and without node {recipient}"
    );
    world.run_for(Duration::from_secs(20));
    let attacker = wallet(&world, mallory);
    assert!(sessions.iter().all(|s| wallet(&world, *s) == attacker), "one wallet, four sessions");

    // The attacker's sessions write through the ordinary API, round-robin.
    let mut pending = Vec::new();
    for k in 0..PER_SESSION {
        for &s in &sessions {
            let bytes = payload(&mut world, (1000 + k) as u64, 64);
            pending.push(send(&mut world, s, to, bytes));
        }
        world.run_for(Duration::from_millis(50));
    }
    let results = wait_all(&mut world, &pending, Duration::from_secs(120));
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for result in &results {
        let name = match result {
            Some((_, Event::Sent { outcome, .. })) => format!("{outcome:?}"),
            Some((_, Event::RequestFailed { reason, .. })) => format!("{reason:?}"),
            Some((_, other)) => format!("{other:?}"),
            None => "no answer".to_owned(),
        };
        *outcomes.entry(name).or_default() += 1;
    }
    eprintln!("seed {SEED}: the attacker's {} sends: {outcomes:?}", results.len());
    let stored = outcomes.get("Stored").copied().unwrap_or(0);
    let quota = outcomes.get(&format!("{:?}", FailReason::MailboxQuota)).copied().unwrap_or(0);

    // Link peers of every holder push entries: signed by one of the attacker's sessions (valid, but its
    // wallet's share is used up), and unsigned junk naming a fresh sender wallet each (to dodge the quota).
    let holders = mailbox_holders(&world);
    let session_key = world.session_key(mallory);
    let delegation = presence_of_session(&world, &attacker, &session_key).delegation;
    let now = world.now();
    let expires = now.saturating_add(DEFAULT_MAILBOX_TTL);
    let mut signed = Vec::new();
    let mut junk = Vec::new();
    for _ in 0..FORGED {
        let mut sealed = vec![0u8; 200];
        rng.fill_bytes(&mut sealed);
        signed.push(Record::Mailbox(MailboxEntry::sign(
            &session_key,
            attacker,
            &delegation,
            to,
            victim.session,
            sealed.clone(),
            now,
            expires,
        )));
        rng.fill_bytes(&mut sealed);
        let mut from = [0u8; 20];
        rng.fill_bytes(&mut from);
        let mut entry = MailboxEntry::sign(
            &session_key,
            Address(from),
            &delegation,
            to,
            victim.session,
            sealed,
            now,
            expires,
        );
        entry.signature = Signature([7; 64]);
        junk.push(Record::Mailbox(entry));
    }
    for &holder in holders.keys() {
        let (peer, link) = link_peer_of(&world, holder, &[recipient]);
        for batch in signed.chunks(BATCH).chain(junk.chunks(BATCH)) {
            // Under every position the holder might keep the mailbox at.
            for key in presence_keys(&to) {
                send_link(&mut world, peer, link, &LinkMsg::ReplicateAt { key, records: batch.to_vec() });
                world.run_for(Duration::from_millis(20));
            }
        }
    }
    world.run_for(Duration::from_secs(5));

    // Honest senders still get their mail stored.
    let mut sent = Vec::new();
    let mut pending = Vec::new();
    for k in 0..HONEST * PER_HONEST {
        let from = honest[k % HONEST];
        let bytes = payload(&mut world, k as u64, 100 + k);
        pending.push(send(&mut world, from, to, bytes.clone()));
        sent.push((wallet(&world, from), bytes));
        world.run_for(Duration::from_millis(100));
    }
    for (k, result) in wait_all(&mut world, &pending, Duration::from_secs(60)).iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Sent { outcome: SendOutcome::Stored, .. }))),
            "seed {SEED}: honest message {k} to offline node {recipient}, after the attacker wrote: {result:?}"
        );
    }

    // What the holders keep under each position: the attacker's share at most, and the honest mail.
    world.run_for(Duration::from_secs(5));
    for &holder in holders.keys() {
        for (p, key) in presence_keys(&to).into_iter().enumerate() {
            let held = entries_under(&world, holder, key);
            let theirs = held.iter().filter(|m| m.from == attacker).count();
            assert!(
                theirs <= MAX_MAILBOX_ENTRIES_PER_SENDER
                    && held.len() <= MAX_MAILBOX_ENTRIES_PER_SENDER + sent.len(),
                "seed {SEED}: holder {holder} keeps {} entries at position {p}, {theirs} of them the attacker's \
                 (its share is {MAX_MAILBOX_ENTRIES_PER_SENDER}; the mailbox holds {MAX_MAILBOX_ENTRIES})",
                held.len()
            );
        }
    }

    // The wallet comes back and gets every honest message exactly once.
    let back = world.now();
    let via = roomiest_member(&world);
    world.restart(recipient, via);
    let deadline = back.saturating_add(Duration::from_secs(120));
    let count = |world: &chordial_sim::World| {
        received_since(world, recipient, back).iter().filter(|g| g.from != attacker).count()
    };
    while count(&world) < sent.len() && world.now() < deadline {
        world.run_for(Duration::from_millis(200));
    }
    world.run_for(Duration::from_secs(30));
    let mut seen = BTreeSet::new();
    let got = received_since(&world, recipient, back);
    for g in got.iter().filter(|g| g.from != attacker) {
        let k = u64::from_be_bytes(g.bytes[..8].try_into().expect("8 bytes")) as usize;
        assert!(
            k < sent.len() && (g.from, &g.bytes) == (sent[k].0, &sent[k].1),
            "seed {SEED}: node {recipient} received a message that was not sent as such: {g:?}"
        );
        assert!(seen.insert(k), "seed {SEED}: node {recipient} received honest message {k} twice");
    }
    assert_eq!(
        seen.len(),
        sent.len(),
        "seed {SEED}: node {recipient} received {} of {} honest messages",
        seen.len(),
        sent.len()
    );
    let from_attacker = got.len() - seen.len();
    eprintln!(
        "seed {SEED}: {} honest messages stored and delivered once each; the attacker's wallet got {stored} \
         of {} stored and {from_attacker} delivered; mailbox holders now {:?}",
        sent.len(),
        results.len(),
        mailbox_holders(&world)
    );
    assert!(from_attacker <= stored, "seed {SEED}: more of the attacker's messages arrived than were stored");
    // What the attacker heard (checked last, so that without the defences the honest outcomes above are
    // what fails): stored, and for the rest its own error, not `MailboxFull`. Each position counts its share
    // on its own and a send is stored on the first position's ack, so a sender whose sends race can have a
    // few more than one share stored in all — never more than one share per position.
    let bound = PRESENCE_POSITIONS * MAX_MAILBOX_ENTRIES_PER_SENDER;
    assert!(
        stored + quota == results.len() && (1..=bound).contains(&stored),
        "seed {SEED}: the attacker's sends should be Stored (at most {bound}: a share of \
         {MAX_MAILBOX_ENTRIES_PER_SENDER} at each of {PRESENCE_POSITIONS} positions) or refused with \
         MailboxQuota, got {outcomes:?}"
    );
    assert_budget_held(&world, SEED);
}

/// The presence record of `wallet`'s session `session` (presence is public).
fn presence_of_session(
    world: &chordial_sim::World,
    wallet: &Address,
    session: &chordial_core::identity::SessionKey,
) -> chordial_core::node::records::PresenceRecord {
    forge_mail::holders_of(world, presence_key(wallet))
        .into_iter()
        .flat_map(|i| world.node(i).map(|n| n.inspect().records(presence_key(wallet))).unwrap_or_default())
        .find_map(|r| match r {
            Record::Presence(p) if p.session == *session.public() => Some(p),
            Record::Presence(_) | Record::Topic(_) | Record::Mailbox(_) => None,
        })
        .unwrap_or_else(|| panic!("no presence record of that session is held"))
}

/// The mailbox entries node `holder` keeps under `key` (one position of a wallet).
fn entries_under(world: &chordial_sim::World, holder: usize, key: chordial_core::Id) -> Vec<MailboxEntry> {
    world
        .node(holder)
        .map(|n| n.inspect().records(key))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| match r {
            Record::Mailbox(m) => Some(m),
            Record::Presence(_) | Record::Topic(_) => None,
        })
        .collect()
}
