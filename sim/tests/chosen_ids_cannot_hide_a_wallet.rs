//! An attacker who chooses its node ids cannot hide a wallet or its mail (issue 16, item 5). Node ids are
//! `sha1(session key)` and session keys are free, so an attacker generates keys until it has four nodes whose
//! ids fall just after the first of a victim wallet's presence keys (`presence_keys(W)[0]`, before the key's
//! honest owner): they become that key's owner and its r − 1 = 3 replicas. From the moment they join they
//! swallow every write to the key (`Store` and `MailboxAck` addressed to it, every sealed mailbox write
//! addressed to themselves, and every `Replicate` of its records, so the handoff at their join never
//! reaches them either) and answer reads of it honestly — with
//! nothing, since they hold nothing. A reader's second opinion (the owner's successor) is an attacker too.
//!
//! What honest users must still get: every wallet lookup of the victim, from nodes all over the ring, lists
//! its session; messages sent while the victim is offline are `Stored`, and when it comes back each reaches
//! it exactly once, and no honest node keeps a mailbox entry for it afterwards. That holds because the
//! wallet's records live at `PRESENCE_POSITIONS` (3) independent keys and readers merge every position's
//! verified answer; with one position (`PRESENCE_POSITIONS = 1`) every lookup comes back empty and every send
//! fails `NotFound`.
//!
//! Sizes: 30 honest members, 4 attackers, 8 lookups, 4 messages from 4 senders.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use chordial_core::node::msg::{self, AppMsg, LinkMsg, Routed};
use chordial_core::node::records::{presence_keys, topic_keys};
use chordial_core::node::{Event, LinkId, SendOutcome};
use chordial_core::wire::envelope::{self, Destination};
use chordial_core::Id;
use chordial_sim::adversary::{Adversary, Ctx};
use chordial_sim::scenario::{assert_budget_held, pick, run_until_exact};
use chordial_sim::World;

use common::{ask, mailbox_holders, payload, received_since, ring, send, wait_all, wallet, APP};

const SEED: u64 = 55;
const MEMBERS: usize = 30;
const ATTACKERS: usize = 4;
const LOOKUPS: usize = 8;
const MESSAGES: usize = 4;

/// What the attackers swallowed (shared by all of them).
#[derive(Debug, Default)]
struct Swallowed {
    stores: u64,
    mail_acks: u64,
    replicates: u64,
}

/// An attacker node that holds nothing under `key`: writes to it and copies of its records never reach
/// its node, which answers reads of it (honestly) with nothing.
struct Hider {
    key: Id,
    swallowed: Rc<RefCell<Swallowed>>,
}

impl Adversary for Hider {
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, _link: LinkId, bytes: &[u8]) -> bool {
        let Some((&kind, rest)) = bytes.split_first() else { return true };
        let mut swallowed = self.swallowed.borrow_mut();
        if kind == msg::KIND_LINK {
            let hidden = match msg::decode_link(rest) {
                Some(LinkMsg::ReplicateAt { key, .. }) => key == self.key,
                Some(LinkMsg::Replicate { records }) => records.iter().any(|r| r.key() == self.key),
                _ => false,
            };
            swallowed.replicates += u64::from(hidden);
            return !hidden;
        }
        let Some(routed) = msg::decode_routed(kind, rest) else { return true };
        let Some((header, body)) = envelope::peek::<Routed>(routed.envelope) else { return true };
        // A mailbox write comes sealed to the node that answered the key's read — this one, which said
        // it has nothing — so every sealed write addressed to this node is swallowed too.
        if matches!(body, Routed::App(AppMsg::StoreSealed { .. }))
            && header.dest == Destination::Node(ctx.session.node_id())
        {
            swallowed.stores += 1;
            return false;
        }
        if !matches!(header.dest, Destination::Key(k) | Destination::KeyStrict(k) if k == self.key) {
            return true;
        }
        match body {
            Routed::App(AppMsg::Store { .. }) => {
                swallowed.stores += 1;
                false
            }
            Routed::App(AppMsg::MailboxAck { .. }) => {
                swallowed.mail_acks += 1;
                false
            }
            _ => true,
        }
    }
}

/// Places [`ATTACKERS`] nodes with chosen ids between `key` and its honest owner — the key's new owner and
/// its three replicas, each a [`Hider`] of `key` — and runs until the ring is exact and records had their
/// re-homing round. Returns the attackers, the session keys it took, and what they swallow.
fn place_hiders(world: &mut World, key: Id) -> (Vec<usize>, u64, Rc<RefCell<Swallowed>>) {
    let honest = world.member_indices();
    let owner = world.ideal_owner(key).expect("members");
    let swallowed = Rc::new(RefCell::new(Swallowed::default()));
    let mut attackers = Vec::new();
    let mut tries = 0;
    for _ in 0..ATTACKERS {
        let (identity, n) = common::identity_between(world, key, owner);
        tries += n;
        let via = honest[pick(world.rng(), 5)];
        let i = world.add_node_with(identity, &[via]);
        world.set_adversary(i, Box::new(Hider { key, swallowed: swallowed.clone() }));
        attackers.push(i);
    }
    assert!(
        run_until_exact(world, Duration::from_secs(300), Duration::from_secs(1)).is_some(),
        "seed {SEED}: the ring did not converge with the attackers: {}",
        world.ring_view().check_all()
    );
    // Re-homing rounds (every 30 s) and replica pushes have had their chance to place the records.
    world.run_for(Duration::from_secs(40));
    let members = world.members().clone();
    let holders: Vec<usize> =
        members.range(key..).chain(members.range(..key)).take(ATTACKERS).map(|(_, i)| *i).collect();
    assert!(
        holders.iter().all(|i| attackers.contains(i)),
        "seed {SEED}: the attackers {attackers:?} should own key {key} and its replicas, held by {holders:?}"
    );
    (attackers, tries, swallowed)
}

#[test]
fn attackers_owning_every_replica_of_one_position_cannot_hide_a_wallet_or_its_mail() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let honest = world.member_indices();
    let victim = loop {
        let i = honest[pick(world.rng(), honest.len())];
        if i >= 5 {
            break i;
        }
    };
    let to = wallet(&world, victim);
    let victim_id = world.id(victim);
    let key = presence_keys(&to)[0];

    let (attackers, tries, swallowed) = place_hiders(&mut world, key);
    eprintln!(
        "seed {SEED}: {tries} session keys generated to place {ATTACKERS} attackers as owner and replicas of \
         victim node {victim}'s first position"
    );

    // Lookups of the victim from honest nodes all over the ring.
    let askers: Vec<usize> =
        honest.iter().copied().filter(|i| *i != victim).step_by(3).take(LOOKUPS).collect();
    let lookups: Vec<_> =
        askers.iter().map(|&i| ask(&mut world, i, |n, now| n.lookup_wallet(now, to))).collect();
    for (k, result) in wait_all(&mut world, &lookups, Duration::from_secs(30)).into_iter().enumerate() {
        let found = match &result {
            Some((_, Event::WalletSessions { sessions, .. })) => {
                sessions.iter().any(|s| s.node_id == victim_id)
            }
            _ => false,
        };
        assert!(found, "seed {SEED}: lookup of the victim's wallet from node {}: {result:?}", askers[k]);
    }

    // The victim goes offline; mail sent to it meanwhile is stored and reaches it once when it is back.
    world.crash(victim);
    assert!(
        run_until_exact(&mut world, Duration::from_secs(120), Duration::from_secs(1)).is_some(),
        "seed {SEED}: the ring did not repair after the victim crashed: {}",
        world.ring_view().check_all()
    );
    let senders: Vec<usize> = askers.iter().copied().take(MESSAGES).collect();
    let mut sent = Vec::new();
    let mut pending = Vec::new();
    for (k, &from) in senders.iter().enumerate() {
        let bytes = payload(&mut world, k as u64, 100 + 50 * k);
        pending.push(send(&mut world, from, to, bytes.clone()));
        sent.push(bytes);
    }
    for (k, result) in wait_all(&mut world, &pending, Duration::from_secs(60)).into_iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Sent { outcome: SendOutcome::Stored, .. }))),
            "seed {SEED}: message {k} from node {} to the offline victim: {result:?}",
            senders[k]
        );
    }
    let back = world.now();
    world.restart(victim, honest[0]);
    let deadline = back.saturating_add(Duration::from_secs(120));
    while received_since(&world, victim, back).len() < MESSAGES && world.now() < deadline {
        world.run_for(Duration::from_millis(200));
    }
    let arrived = world.now().since(back);
    // Acknowledgements reach every position; a presence refresh (5 min) would hand out anything left.
    world.run_for(Duration::from_secs(6 * 60));
    let mut times: BTreeMap<usize, usize> = BTreeMap::new();
    for got in received_since(&world, victim, back) {
        let k = sent.iter().position(|b| *b == got.bytes);
        assert!(
            k.is_some() && got.origin == APP,
            "seed {SEED}: the victim received what nobody sent: {got:?}"
        );
        *times.entry(k.unwrap_or_default()).or_default() += 1;
    }
    assert!(
        (0..MESSAGES).all(|k| times.get(&k) == Some(&1)),
        "seed {SEED}: each of {MESSAGES} messages must reach the victim exactly once; times received: {times:?}"
    );
    let left: BTreeMap<usize, usize> =
        mailbox_holders(&world).into_iter().filter(|(i, _)| !attackers.contains(i)).collect();
    assert!(left.is_empty(), "seed {SEED}: honest nodes still hold mail for the victim: {left:?}");

    let swallowed = swallowed.borrow();
    eprintln!(
        "seed {SEED}: {LOOKUPS}/{LOOKUPS} lookups found the victim; {MESSAGES}/{MESSAGES} messages stored and \
         received once, {:.1}s after it came back; the attackers swallowed {swallowed:?}",
        arrived.as_secs_f64()
    );
    assert!(swallowed.stores > 0, "seed {SEED}: the attack never happened: {swallowed:?}");
    assert_budget_held(&world, SEED);
}

/// The same attack on a topic: the attackers own the first of the topic's positions (`topic_keys`) before
/// its members announce, and swallow every write to it. Every member's announcement still counts as done,
/// and every discover from nodes all over the ring lists every member — the other two positions hold them.
/// With one position (`PRESENCE_POSITIONS = 1`) the first announce times out: the attackers swallowed it.
#[test]
fn attackers_owning_every_replica_of_one_position_cannot_hide_a_topics_members() {
    const TOPIC: &str = "lobby";
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let honest = world.member_indices();
    let key = topic_keys(APP, TOPIC)[0];
    let (attackers, tries, swallowed) = place_hiders(&mut world, key);

    let announcers: Vec<usize> = honest.iter().copied().skip(1).step_by(5).take(6).collect();
    let announces: Vec<_> = announcers
        .iter()
        .map(|&i| ask(&mut world, i, |n, now| n.announce(now, APP, TOPIC, Duration::from_secs(600))))
        .collect();
    for (k, result) in wait_all(&mut world, &announces, Duration::from_secs(30)).into_iter().enumerate() {
        assert!(
            matches!(result, Some((_, Event::Done { .. }))),
            "seed {SEED}: announce by node {}: {result:?}",
            announcers[k]
        );
    }
    let mut want: Vec<_> = announcers.iter().map(|&i| wallet(&world, i)).collect();
    want.sort();
    let askers: Vec<usize> = honest.iter().copied().step_by(4).take(LOOKUPS).collect();
    let discovers: Vec<_> =
        askers.iter().map(|&i| ask(&mut world, i, |n, now| n.discover(now, APP, TOPIC))).collect();
    for (k, result) in wait_all(&mut world, &discovers, Duration::from_secs(30)).into_iter().enumerate() {
        let listed = match &result {
            Some((_, Event::Discovered { members, .. })) => members.iter().map(|(w, _)| *w).collect(),
            _ => Vec::new(),
        };
        assert_eq!(listed, want, "seed {SEED}: discover from node {}: {result:?}", askers[k]);
    }
    let swallowed = swallowed.borrow();
    eprintln!(
        "seed {SEED}: {tries} session keys placed {ATTACKERS} attackers {attackers:?} on the topic's first \
         position; {}/{} announces done, {LOOKUPS}/{LOOKUPS} discovers list every member; swallowed {swallowed:?}",
        announcers.len(),
        announcers.len()
    );
    assert!(swallowed.stores > 0, "seed {SEED}: the attack never happened: {swallowed:?}");
    assert_budget_held(&world, SEED);
}
