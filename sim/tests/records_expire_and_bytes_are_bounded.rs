//! Records cannot outlive their bounds, and a node's store cannot grow past its byte budget.
//!
//! An outsider (a session key with a valid 300-day delegation from a wallet of its own, no node in the ring)
//! writes records as routed `Store` envelopes, the path any node's writes take:
//!
//! 1. presence that claims to be live forever (`expires` = the end of time) and a topic record that claims
//!    200 days: no node stores either (a record's lifetime is bounded by its kind's maximum TTL and by its
//!    delegation);
//! 2. topic records big enough (and live for a minute) to exceed the store of the node that owns their keys:
//!    every node's store stays within its byte budget (48 KiB here, `Config::store_bytes`), the owner holds
//!    some of them and refused the rest with `Full`, and every honest wallet's presence is still found;
//! 3. a minute later those records have lapsed: the purge removed them from every node (the owner keeps the
//!    members' presence and nothing else), and an honest announce on the same node's topic is stored and discovered.
//!
//! Sizes: 10 nodes (the same at full size; the budget and the flood scale together).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use chordial_core::identity::delegation::{delegation_message, Delegation, DelegationRequest};
use chordial_core::identity::wallet::WalletKey;
use chordial_core::identity::{Address, DelegationCache, SessionKey};
use chordial_core::node::msg::{self, AppMsg, Routed};
use chordial_core::node::records::{
    presence_keys, topic_key, PresenceRecord, Record, RecordError, TopicRecord,
};
use chordial_core::node::{Config, Event};
use chordial_core::wire::envelope::{self, Destination};
use chordial_core::{Id, Timestamp};
use chordial_sim::scenario::assert_budget_held;
use chordial_sim::{World, WorldConfig};

use common::{ask, forged_header, ring_with, wait_one, wallet, APP};

const SEED: u64 = 81;
const MEMBERS: usize = 10;
const BUDGET: usize = 48 * 1024;
/// Topic records the outsider writes to one node: about twice what fits.
const FLOOD: usize = 80;

fn small_store(config: &mut Config) {
    config.store_bytes = BUDGET;
}

fn ring() -> World {
    let mut config = WorldConfig::new(SEED);
    config.event_log = 20_000;
    config.tweak = small_store;
    ring_with(config, MEMBERS, Duration::from_secs(10))
}

struct Outsider {
    session: SessionKey,
    delegation: Delegation,
    wallet: Address,
}

fn outsider(rng: &mut ChaCha20Rng, network: &str, issued: Timestamp, lifetime: Duration) -> Outsider {
    let wallet = WalletKey::generate(rng);
    let session = SessionKey::generate(rng);
    let request = DelegationRequest {
        domain: "attacker.invalid".to_owned(),
        address: wallet.address(),
        chain_id: 1,
        network: network.to_owned(),
        lifetime,
    };
    let delegation = Delegation::sign(&delegation_message(session.public(), &request, issued, rng), &wallet);
    Outsider { session, delegation, wallet: wallet.address() }
}

fn owner_of(world: &World, key: Id) -> usize {
    world.members()[&world.ideal_owner(key).expect("members")]
}

/// Sends `record` as the outsider's signed `Store` into the ring at a member that does not own its key.
fn inject(world: &mut World, from: &Outsider, record: Record, rng: &mut ChaCha20Rng) {
    let key = record.key();
    let entry = world.member_indices().into_iter().find(|i| *i != owner_of(world, key)).expect("two members");
    let header = forged_header(rng, world.network_tag(), world.now(), Destination::Key(key));
    let body = Routed::App(AppMsg::Store { record: Box::new(record) });
    let signed = envelope::encode(&from.session, &header, &body).expect("a record fits a frame");
    let frame = msg::routed_frame(&signed, false);
    world.with_node(entry, |n, now| {
        let link = n.inspect().status().links.iter().find(|l| l.open && l.peer.is_some()).map(|l| l.link);
        n.handle_frame(now, link.expect("a member has an open link"), &frame);
    });
}

/// Nodes holding any record under `key`.
fn holders(world: &World, key: Id) -> Vec<usize> {
    (0..world.len()).filter(|i| world.node(*i).is_some_and(|n| n.inspect().has_record(key))).collect()
}

fn store_bytes(world: &World) -> Vec<(usize, usize)> {
    (0..world.len()).filter_map(|i| world.node(i).map(|n| (i, n.inspect().store_bytes()))).collect()
}

fn sessions_found(world: &mut World, asker: usize, of: Address) -> usize {
    let p = ask(world, asker, |n, now| n.lookup_wallet(now, of));
    match wait_one(world, p, Duration::from_secs(30)) {
        Some(Event::WalletSessions { sessions, .. }) => sessions.len(),
        other => panic!("seed {SEED}: lookup_wallet at node {asker}: {other:?}"),
    }
}

#[test]
fn records_with_unbounded_lifetimes_are_refused_and_the_store_stays_within_its_budget() {
    let mut world = ring();
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let network = world.config().network.clone();
    let skew = world.node_config().clock_skew;
    let members = world.member_indices();
    let now = world.now();
    let mallory = outsider(&mut rng, &network, now, Duration::from_secs(300 * 24 * 3600));
    let mut cache = DelegationCache::new(16);

    // 1. Lifetimes beyond every bound.
    let forever = PresenceRecord::sign(
        &mallory.session,
        mallory.wallet,
        &mallory.delegation,
        now,
        Timestamp(u64::MAX),
        false,
    );
    assert_eq!(forever.verify(&network, now, skew, &mut cache), Err(RecordError::TooLong));
    let key = forever.key();
    inject(&mut world, &mallory, Record::Presence(forever), &mut rng);
    let long_topic = TopicRecord::sign(
        &mallory.session,
        APP,
        "forever",
        mallory.wallet,
        &mallory.delegation,
        now,
        now.saturating_add(Duration::from_secs(200 * 24 * 3600)),
        false,
    );
    assert_eq!(long_topic.verify(&network, now, skew, &mut cache), Err(RecordError::TooLong));
    let topic = long_topic.key();
    inject(&mut world, &mallory, Record::Topic(long_topic), &mut rng);
    world.run_for(Duration::from_secs(3));
    assert_eq!(
        holders(&world, key),
        Vec::<usize>::new(),
        "seed {SEED}: presence that never expires was stored"
    );
    assert_eq!(holders(&world, topic), Vec::<usize>::new(), "seed {SEED}: a 200-day topic record was stored");

    // 2. More bytes than the owner's budget, in records that lapse in a minute.
    let victim = members[members.len() / 2];
    let origin = format!("https://{}.example", "o".repeat(230));
    let mut topics = Vec::new();
    let mut n = 0u64;
    while topics.len() < FLOOD {
        n += 1;
        let name = format!("{n:0>120}");
        if owner_of(&world, topic_key(&origin, &name)) == victim {
            topics.push(name);
        }
    }
    let now = world.now();
    let lapse = now.saturating_add(Duration::from_secs(60));
    for name in &topics {
        let record = TopicRecord::sign(
            &mallory.session,
            &origin,
            name,
            mallory.wallet,
            &mallory.delegation,
            now,
            lapse,
            false,
        );
        inject(&mut world, &mallory, Record::Topic(record), &mut rng);
    }
    let mut peak = 0;
    for _ in 0..10 {
        world.run_for(Duration::from_millis(500));
        for (i, bytes) in store_bytes(&world) {
            peak = peak.max(bytes);
            assert!(
                bytes <= BUDGET,
                "seed {SEED}: node {i} holds {bytes} bytes of records, over its {BUDGET}"
            );
        }
    }
    let keys: Vec<Id> = topics.iter().map(|t| topic_key(&origin, t)).collect();
    let held =
        keys.iter().filter(|k| world.node(victim).is_some_and(|n| n.inspect().has_record(**k))).count();
    assert!(
        held > 0 && held < FLOOD,
        "seed {SEED}: the owner {victim} holds {held} of the {FLOOD} oversize records (some, not all, fit)"
    );
    eprintln!("owner {victim}: {held} of {FLOOD} records stored, peak {peak} of {BUDGET} bytes on any node");
    let asker = members[0];
    for &i in &members {
        let of = wallet(&world, i);
        assert_eq!(
            sessions_found(&mut world, asker, of),
            1,
            "seed {SEED}: node {i}'s presence is not found while the store is full"
        );
    }

    // 3. They lapse and are purged everywhere; honest records fit again.
    world.run_until(lapse.saturating_add(Duration::from_secs(5)));
    for k in &keys {
        assert_eq!(holders(&world, *k), Vec::<usize>::new(), "seed {SEED}: a lapsed record is still stored");
    }
    // What the owner keeps is the members' presence and nothing else: a copy under each of their wallets'
    // positions it owns or replicates (3 positions × r copies of 10 wallets, over 10 nodes).
    let bytes = world.node(victim).map_or(0, |n| n.inspect().store_bytes());
    let wallets: BTreeSet<Address> = members.iter().map(|&i| wallet(&world, i)).collect();
    let positions: BTreeSet<Id> = wallets.iter().flat_map(presence_keys).collect();
    let presence: usize = positions
        .iter()
        .flat_map(|k| world.node(victim).map(|n| n.inspect().records(*k)).unwrap_or_default())
        .filter(|r| matches!(r, Record::Presence(p) if wallets.contains(&p.wallet)))
        .map(|r| r.stored_bytes())
        .sum();
    assert!(
        bytes == presence && bytes < BUDGET / 2,
        "seed {SEED}: the owner still holds {bytes} bytes after the purge, of which {presence} are the members' \
         presence"
    );
    let writer = members[1];
    let p = ask(&mut world, writer, |n, now| n.announce(now, &origin, &topics[0], Duration::from_secs(600)));
    match wait_one(&mut world, p, Duration::from_secs(30)) {
        Some(Event::Done { .. }) => {}
        other => panic!("seed {SEED}: the honest announce after the purge: {other:?}"),
    }
    let p = ask(&mut world, asker, |n, now| n.discover(now, &origin, &topics[0]));
    let writer_wallet = wallet(&world, writer);
    match wait_one(&mut world, p, Duration::from_secs(30)) {
        Some(Event::Discovered { members: found, .. }) => assert_eq!(
            found.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
            vec![writer_wallet],
            "seed {SEED}: discover after the purge"
        ),
        other => panic!("seed {SEED}: discover: {other:?}"),
    }
    assert_budget_held(&world, SEED);
}
