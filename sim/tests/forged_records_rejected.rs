//! Forged records are refused and counted. An outsider — a session key with a valid delegation from a wallet
//! of its own, but no node in the ring — signs records and sends them as routed `Store` envelopes into the
//! ring (the path any node's writes take). The owner of each record's key must refuse:
//!
//! - presence for a member's wallet signed by a session whose delegation is another wallet's;
//! - a topic record for a member's wallet signed by someone else (the outsider);
//! - a topic record whose signature was made by another key than the session it names;
//! - a replayed older presence record of a session whose newer one is stored (stale);
//! - presence under a delegation that has expired.
//!
//! Each refusal adds exactly one to the owner's `refused_records` (and to nobody else's), the records'
//! own `verify` gives the matching reason, and `lookup_wallet` / `discover` never return them. A valid
//! record from the same outsider is accepted through the same path, so the refusals are not vacuous.
//!
//! Sizes: 30 nodes (the same at full size).

mod common;

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::Serialize;

use chordial_core::identity::delegation::{delegation_message, Delegation, DelegationRequest};
use chordial_core::identity::wallet::WalletKey;
use chordial_core::identity::{DelegationCache, DelegationError, SessionKey};
use chordial_core::node::msg;
use chordial_core::node::records::{PresenceRecord, Record, RecordError, TopicRecord};
use chordial_core::node::Event;
use chordial_core::wire::envelope::{self, Destination, NetworkTag};
use chordial_core::{Id, Timestamp};
use chordial_sim::scenario::{assert_budget_held, pick};
use chordial_sim::World;

use common::{ask, forged_header, ring, wait_one, wallet, APP};

const SEED: u64 = 51;
const MEMBERS: usize = 30;

/// The routed bodies as they travel (docs/protocol.md, "Routed bodies", in that order): postcard encodes an
/// enum by its variant index, so only `Store` — the seventh — needs its fields; the others are never built.
#[derive(Serialize)]
#[allow(dead_code)]
enum RoutedBody {
    FindSuccessor,
    FoundSuccessor,
    ConnectOffer,
    ConnectAnswer,
    ConnectReject,
    Undeliverable,
    Store { record: Box<Record> },
}

/// A session key and the delegation its wallet signed for it.
struct Outsider {
    session: SessionKey,
    delegation: Delegation,
    wallet: chordial_core::identity::Address,
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

/// The node index that owns `key` now.
fn owner_of(world: &World, key: Id) -> usize {
    world.members()[&world.ideal_owner(key).expect("members")]
}

fn refused(world: &World) -> Vec<u64> {
    (0..world.len())
        .map(|i| world.node(i).map_or(0, |n| n.inspect().status().counters.refused_records))
        .collect()
}

/// Sends `record` as the outsider's signed `Store` envelope into the ring at a random member that does not
/// own its key (so it is routed), and lets it settle.
fn inject(world: &mut World, from: &Outsider, record: Record, rng: &mut ChaCha20Rng) {
    inject_frame(world, from, record, rng, |_| {});
}

/// [`inject`], with `edit` applied to the signed envelope before it enters the ring; returns the entry node.
fn inject_frame(
    world: &mut World,
    from: &Outsider,
    record: Record,
    rng: &mut ChaCha20Rng,
    edit: impl FnOnce(&mut Vec<u8>),
) -> usize {
    let key = record.key();
    let nodes: Vec<usize> =
        world.member_indices().into_iter().filter(|i| *i != owner_of(world, key)).collect();
    let entry = nodes[pick(world.rng(), nodes.len())];
    let header = forged_header(
        rng,
        NetworkTag::from_name(&world.config().network),
        world.now(),
        Destination::Key(key),
    );
    let body = RoutedBody::Store { record: Box::new(record) };
    let mut signed = envelope::encode(&from.session, &header, &body).expect("a small record fits a frame");
    edit(&mut signed);
    let frame = msg::routed_frame(&signed, false);
    world.with_node(entry, |n, now| {
        let link = n.inspect().status().links.iter().find(|l| l.open && l.peer.is_some()).map(|l| l.link);
        n.handle_frame(now, link.expect("a member has an open link"), &frame);
    });
    world.run_for(Duration::from_secs(3));
    entry
}

fn counter(world: &World, i: usize, which: fn(&chordial_core::node::Counters) -> u64) -> u64 {
    world.node(i).map_or(0, |n| which(&n.inspect().status().counters))
}

/// Injects `record` and asserts it was refused exactly once, by its key's owner.
fn assert_refused(world: &mut World, from: &Outsider, record: Record, rng: &mut ChaCha20Rng, what: &str) {
    let owner = owner_of(world, record.key());
    let before = refused(world);
    inject(world, from, record, rng);
    let after = refused(world);
    let deltas: Vec<(usize, u64)> = before
        .iter()
        .zip(&after)
        .enumerate()
        .filter(|(_, (b, a))| a != b)
        .map(|(i, (b, a))| (i, a - b))
        .collect();
    assert_eq!(
        deltas,
        vec![(owner, 1)],
        "seed {SEED}: {what}: expected one refusal at the owner, node {owner}; refusals by node: {deltas:?}"
    );
}

fn sessions_of(
    world: &mut World,
    asker: usize,
    of: chordial_core::identity::Address,
) -> Vec<(Id, Timestamp)> {
    let p = ask(world, asker, |n, now| n.lookup_wallet(now, of));
    match wait_one(world, p, Duration::from_secs(30)) {
        Some(Event::WalletSessions { sessions, .. }) => {
            sessions.iter().map(|s| (s.node_id, s.expires)).collect()
        }
        other => panic!("seed {SEED}: lookup_wallet at node {asker}: {other:?}"),
    }
}

#[test]
fn forged_stale_and_expired_records_are_refused_and_counted() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let network = world.config().network.clone();
    let nodes = world.member_indices();
    let victim = nodes[pick(world.rng(), nodes.len())];
    let asker = *nodes.iter().find(|i| **i != victim).expect("two members");
    let victim_wallet = wallet(&world, victim);
    let now = world.now();
    let mallory = outsider(&mut rng, &network, now, Duration::from_secs(30 * 24 * 3600));
    let mut cache = DelegationCache::new(16);
    let skew = world.node_config().clock_skew;
    let ten_min = Duration::from_secs(600);

    // Control: the outsider's own, valid presence goes through the same path and is stored.
    let fresh = PresenceRecord::sign(
        &mallory.session,
        mallory.wallet,
        &mallory.delegation,
        now,
        now.saturating_add(ten_min),
        false,
    );
    assert_eq!(fresh.verify(&network, now, skew, &mut cache), Ok(()));
    let before = refused(&world);
    inject(&mut world, &mallory, Record::Presence(fresh.clone()), &mut rng);
    assert_eq!(refused(&world), before, "seed {SEED}: the valid control record was refused");
    assert_eq!(
        sessions_of(&mut world, asker, mallory.wallet),
        vec![(mallory.session.node_id(), fresh.expires)],
        "seed {SEED}: the valid control record is not found"
    );

    // 1. Presence for the victim's wallet, signed by a session whose delegation is another wallet's.
    let now = world.now();
    let forged = PresenceRecord::sign(
        &mallory.session,
        victim_wallet,
        &mallory.delegation,
        now,
        now.saturating_add(ten_min),
        false,
    );
    assert_eq!(forged.verify(&network, now, skew, &mut cache), Err(RecordError::WrongWallet));
    assert_refused(&mut world, &mallory, Record::Presence(forged), &mut rng, "presence for another wallet");
    assert_eq!(
        sessions_of(&mut world, asker, victim_wallet).iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![world.id(victim)],
        "seed {SEED}: lookup_wallet of node {victim}'s wallet returns other sessions than its own"
    );

    // 2. A topic record for the victim's wallet, signed by someone else.
    let now = world.now();
    let forged = TopicRecord::sign(
        &mallory.session,
        APP,
        "lobby",
        victim_wallet,
        &mallory.delegation,
        now,
        now.saturating_add(ten_min),
        false,
    );
    assert_eq!(forged.verify(&network, now, skew, &mut cache), Err(RecordError::WrongWallet));
    assert_refused(
        &mut world,
        &mallory,
        Record::Topic(forged),
        &mut rng,
        "topic record signed by someone else",
    );

    // 3. A topic record naming the outsider's session but signed by another key.
    let other_key = SessionKey::generate(&mut rng);
    let mut forged = TopicRecord::sign(
        &other_key,
        APP,
        "lobby",
        mallory.wallet,
        &mallory.delegation,
        now,
        now.saturating_add(ten_min),
        false,
    );
    forged.session = *mallory.session.public();
    assert_eq!(forged.verify(&network, now, skew, &mut cache), Err(RecordError::BadSignature));
    assert_refused(
        &mut world,
        &mallory,
        Record::Topic(forged),
        &mut rng,
        "topic record with a foreign signature",
    );
    let p = ask(&mut world, asker, |n, now| n.discover(now, APP, "lobby"));
    match wait_one(&mut world, p, Duration::from_secs(30)) {
        Some(Event::Discovered { members, .. }) => {
            assert!(members.is_empty(), "seed {SEED}: forged topic records discovered: {members:?}")
        }
        other => panic!("seed {SEED}: discover: {other:?}"),
    }

    // 4. A replayed older presence record of the outsider's session (the control record is newer).
    let old = PresenceRecord::sign(
        &mallory.session,
        mallory.wallet,
        &mallory.delegation,
        fresh.published.saturating_sub(Duration::from_secs(60)),
        world.now().saturating_add(Duration::from_secs(3600)),
        false,
    );
    assert_eq!(old.verify(&network, world.now(), skew, &mut cache), Ok(()), "the old record is well signed");
    assert_refused(&mut world, &mallory, Record::Presence(old), &mut rng, "replayed older presence");
    assert_eq!(
        sessions_of(&mut world, asker, mallory.wallet),
        vec![(mallory.session.node_id(), fresh.expires)],
        "seed {SEED}: the replayed older record replaced the newer one"
    );

    // 5. Presence under an expired delegation (issued 31 days ago for 30 days).
    let month = Duration::from_secs(30 * 24 * 3600);
    let issued = world.now().saturating_sub(month + Duration::from_secs(24 * 3600));
    let lapsed = outsider(&mut rng, &network, issued, month);
    let now = world.now();
    let forged = PresenceRecord::sign(
        &lapsed.session,
        lapsed.wallet,
        &lapsed.delegation,
        now,
        now.saturating_add(ten_min),
        false,
    );
    assert_eq!(
        forged.verify(&network, now, skew, &mut cache),
        Err(RecordError::Delegation(DelegationError::Expired))
    );
    assert_refused(
        &mut world,
        &lapsed,
        Record::Presence(forged),
        &mut rng,
        "presence under an expired delegation",
    );
    assert!(
        sessions_of(&mut world, asker, lapsed.wallet).is_empty(),
        "seed {SEED}: a session under an expired delegation is listed"
    );

    // 6. A valid record whose envelope was altered after signing. Relays forward on the routing fields alone
    //    (docs/protocol.md, "Who verifies"); the owner checks the signature before it reads the body, so it
    //    drops the frame without storing or refusing a record, and nobody sends the claimed origin a notice.
    let now = world.now();
    let altered = PresenceRecord::sign(
        &mallory.session,
        mallory.wallet,
        &mallory.delegation,
        now,
        now.saturating_add(ten_min.saturating_mul(2)),
        false,
    );
    let owner = owner_of(&world, altered.key());
    let dropped_before = counter(&world, owner, |c| c.dropped_invalid);
    let forwarded_before: Vec<u64> = (0..world.len()).map(|i| counter(&world, i, |c| c.forwarded)).collect();
    let before = refused(&world);
    let entry = inject_frame(&mut world, &mallory, Record::Presence(altered), &mut rng, |frame| {
        let last = frame.len() - 1;
        frame[last] ^= 0x01;
    });
    assert!(
        counter(&world, entry, |c| c.forwarded) > forwarded_before[entry],
        "seed {SEED}: the entry node {entry} did not relay the altered envelope"
    );
    assert!(
        counter(&world, owner, |c| c.dropped_invalid) > dropped_before,
        "seed {SEED}: the owner {owner} did not drop the altered envelope as invalid"
    );
    assert_eq!(refused(&world), before, "seed {SEED}: an unverifiable envelope reached the record checks");
    assert_eq!(
        sessions_of(&mut world, asker, mallory.wallet),
        vec![(mallory.session.node_id(), fresh.expires)],
        "seed {SEED}: the altered envelope changed the stored presence"
    );

    let total: u64 = refused(&world).iter().sum();
    eprintln!("seed {SEED}: 5 forged records refused, {total} refused_records in the ring; control accepted");
    assert_budget_held(&world, SEED);
}
