//! What the app-layer scenarios share: a converged ring whose nodes have published presence, sending and
//! collecting results through the node API, and reading a node's event log.
//!
//! Every helper draws its randomness from the world's stream, so a scenario's seed fixes its whole run.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Duration;

use chordial_core::identity::Address;
use chordial_core::node::records::{presence_keys, Record, PRESENCE_POSITIONS};
use chordial_core::node::{Event, RequestId, SendOutcome};
use chordial_core::wire::envelope::{Destination, Header, MessageId, NetworkTag, DEFAULT_HOP_LIMIT};
use chordial_core::Timestamp;
use chordial_sim::identity::Identity;
use chordial_sim::scenario::{build_base, join_nodes, run_until_exact, unjoined};
use chordial_sim::{World, WorldConfig};
use rand_core::RngCore;

/// The app origin the scenarios send from.
pub const APP: &str = "https://chat.example";

/// Events each node keeps: enough that no scenario loses a result to the log's bound.
const EVENT_LOG: usize = 20_000;

/// A world with a log large enough for app scenarios.
pub fn world(seed: u64) -> World {
    let mut config = WorldConfig::new(seed);
    config.event_log = EVENT_LOG;
    World::new(config)
}

/// A ring of `members` nodes (a base of 5, the rest joining through it over `spread`), run until every
/// successor list and predecessor is exactly right, then long enough for every node's presence record to be
/// stored and replicated. Panics (with the seed) if the ring does not converge.
pub fn ring(seed: u64, members: usize, spread: Duration) -> World {
    let mut config = WorldConfig::new(seed);
    config.event_log = EVENT_LOG;
    ring_with(config, members, spread)
}

/// [`ring`] in a world made from `config` (its own node settings, through `config.tweak`).
pub fn ring_with(config: WorldConfig, members: usize, spread: Duration) -> World {
    let seed = config.seed;
    let mut world = World::new(config);
    let base = build_base(&mut world, 5.min(members), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    if members > base.len() {
        join_nodes(&mut world, members - base.len(), &base, spread);
    }
    let converged = run_until_exact(&mut world, Duration::from_secs(300), Duration::from_secs(1));
    assert!(
        converged.is_some(),
        "seed {seed}: the ring of {members} did not converge: {}\n{:#?}",
        world.ring_view().check_all(),
        unjoined(&world)
    );
    // Presence is published on join and re-homed as the ring settles; give the last joiners' writes and
    // the replica pushes time to land.
    world.run_for(Duration::from_secs(20));
    world
}

/// The header of a frame a scenario forges: a fresh random id drawn from `rng`, the default hop limit, no
/// reply path.
pub fn forged_header(
    rng: &mut impl RngCore,
    network: NetworkTag,
    sent_at: Timestamp,
    dest: Destination,
) -> Header {
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    Header { network, id: MessageId(id), sent_at, dest, hop_limit: DEFAULT_HOP_LIMIT, reply_to: None }
}

/// Node `i`'s wallet.
pub fn wallet(world: &World, i: usize) -> Address {
    world.node(i).unwrap_or_else(|| panic!("node {i} is not running")).wallet()
}

/// The request a result event answers, if it is a result.
pub fn request_of(event: &Event) -> Option<RequestId> {
    match event {
        Event::Sent { request, .. }
        | Event::RequestFailed { request, .. }
        | Event::WalletSessions { request, .. }
        | Event::Discovered { request, .. }
        | Event::Done { request }
        | Event::LookupDone { request, .. } => Some(*request),
        Event::Membership { .. } | Event::MessageReceived { .. } | Event::Left => None,
    }
}

/// A request made at a node: the node, the id, and when (ids restart with a node's life, so the result
/// is the first one for this id at or after `at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The node that was asked.
    pub node: usize,
    /// The request id it returned.
    pub request: RequestId,
    /// When it was asked.
    pub at: Timestamp,
}

/// The event that resolved `p`, with its time.
pub fn result_of(world: &World, p: Pending) -> Option<(Timestamp, Event)> {
    world.events(p.node).iter().find(|(t, e)| *t >= p.at && request_of(e) == Some(p.request)).cloned()
}

/// Calls `f` on node `i` now; the request it returns becomes a [`Pending`].
pub fn ask(
    world: &mut World,
    i: usize,
    f: impl FnOnce(&mut chordial_core::node::Node, Timestamp) -> RequestId,
) -> Pending {
    let at = world.now();
    let request = world.with_node(i, f).unwrap_or_else(|| panic!("node {i} is not running"));
    Pending { node: i, request, at }
}

/// Sends `bytes` from node `from` to `to` under [`APP`]; panics if the node refuses it at once.
pub fn send(world: &mut World, from: usize, to: Address, bytes: Vec<u8>) -> Pending {
    ask(world, from, |n, now| n.send(now, APP, to, bytes).unwrap_or_else(|e| panic!("send refused: {e}")))
}

/// Runs in steps of 100 ms until every request has a result or `limit` passed; returns the results in
/// order (`None` for those still open).
pub fn wait_all(world: &mut World, pending: &[Pending], limit: Duration) -> Vec<Option<(Timestamp, Event)>> {
    let deadline = world.now().saturating_add(limit);
    loop {
        let results: Vec<_> = pending.iter().map(|p| result_of(world, *p)).collect();
        if results.iter().all(Option::is_some) || world.now() >= deadline {
            return results;
        }
        world.run_for(Duration::from_millis(100));
    }
}

/// Waits for one request.
pub fn wait_one(world: &mut World, p: Pending, limit: Duration) -> Option<Event> {
    wait_all(world, &[p], limit).pop().flatten().map(|(_, e)| e)
}

/// A message node `i` received: sender wallet, app origin, payload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Got {
    /// The sending wallet.
    pub from: Address,
    /// The app origin.
    pub origin: String,
    /// The payload.
    pub bytes: Vec<u8>,
}

/// Messages node `i` received at or after `since`.
pub fn received_since(world: &World, i: usize, since: Timestamp) -> Vec<Got> {
    world
        .events(i)
        .iter()
        .filter(|(t, _)| *t >= since)
        .filter_map(|(_, e)| match e {
            Event::MessageReceived { from_wallet, app_origin, bytes, .. } => {
                Some(Got { from: *from_wallet, origin: app_origin.clone(), bytes: bytes.clone() })
            }
            _ => None,
        })
        .collect()
}

/// Mailbox entries held by each running node that holds any (node index → entries).
pub fn mailbox_holders(world: &World) -> BTreeMap<usize, usize> {
    (0..world.len())
        .filter_map(|i| world.node(i).map(|n| (i, n.inspect().mailbox_entries())))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Mailbox entries held for `wallet`, per (node index, position): the position is the index in
/// [`presence_keys`] of the key the entries are held under. A wallet's mailbox lives at every position, so
/// one node can hold it under two positions (once each).
pub fn mailbox_positions(world: &World, wallet: &Address) -> BTreeMap<(usize, usize), usize> {
    let keys = presence_keys(wallet);
    let mut held = BTreeMap::new();
    for i in 0..world.len() {
        let Some(node) = world.node(i) else { continue };
        for (p, key) in keys.iter().enumerate() {
            let n = node.inspect().records(*key).iter().filter(|r| matches!(r, Record::Mailbox(_))).count();
            if n > 0 {
                held.insert((i, p), n);
            }
        }
    }
    held
}

/// Whether every position of `wallet`'s mailbox has at least `r` holders and every holder keeps exactly
/// `messages` entries under each position it holds.
pub fn every_position_holds(held: &BTreeMap<(usize, usize), usize>, r: usize, messages: usize) -> bool {
    held.values().all(|n| *n == messages)
        && (0..PRESENCE_POSITIONS).all(|p| held.keys().filter(|(_, q)| *q == p).count() >= r)
}

/// A payload that names its index and is otherwise random, `len` bytes long (at least 8).
pub fn payload(world: &mut World, index: u64, len: usize) -> Vec<u8> {
    use rand_core::RngCore;
    let mut bytes = vec![0u8; len.max(8)];
    world.rng().fill_bytes(&mut bytes);
    bytes[..8].copy_from_slice(&index.to_be_bytes());
    bytes
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Who holds `key` now, for failure messages: the owner's index and its successors' indices.
pub fn placement(world: &World, key: chordial_core::Id) -> String {
    let Some(owner) = world.ideal_owner(key) else { return "no members".to_owned() };
    let i = world.members()[&owner];
    let succ: Vec<Option<usize>> = world
        .node(i)
        .map(|n| n.inspect().successors().iter().map(|s| world.members().get(s).copied()).collect())
        .unwrap_or_default();
    format!("key {} owned by node {i} ({}), whose successors are nodes {succ:?}", key.short(), owner.short())
}

/// A member to bootstrap a restarted node through: the one with the most free link capacity (a node at its
/// link cap refuses bootstrap offers as busy, and `World::restart` takes a single server).
pub fn roomiest_member(world: &World) -> usize {
    world
        .member_indices()
        .into_iter()
        .max_by_key(|&i| {
            (
                world
                    .link_cap(i)
                    .saturating_sub(world.node(i).map_or(usize::MAX, |n| n.inspect().link_count())),
                usize::MAX - i,
            )
        })
        .expect("a member")
}

/// A fresh identity whose node id lies in `(from, to)` (an attacker choosing its id), and how many session
/// keys it took ([`Identity::with_id_between`]).
pub fn identity_between(
    world: &mut World,
    from: chordial_core::Id,
    to: chordial_core::Id,
) -> (Identity, u64) {
    let crypto = world.config().crypto;
    let network = world.config().network.clone();
    let now = world.now();
    Identity::with_id_between(world.rng(), crypto, &network, now, from, to)
}

/// Checks that every one of `sends` (from, to, bytes, its pending send) ended `Delivered` with exactly its
/// recipient's receipt (`results`, in the same order), then — after 5 s more — that each recipient received
/// since `since` exactly the messages sent to it, once each.
pub fn assert_delivered_once(
    world: &mut World,
    seed: u64,
    since: Timestamp,
    sends: &[(usize, usize, Vec<u8>, Pending)],
    results: Vec<Option<(Timestamp, Event)>>,
) {
    let mut expected: BTreeMap<usize, Vec<Got>> = BTreeMap::new();
    for ((from, to, bytes, _), result) in sends.iter().zip(results) {
        match result {
            Some((_, Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. })) => {
                assert_eq!(sessions, vec![world.id(*to)], "seed {seed}: receipts for {from} → {to}")
            }
            other => panic!("seed {seed}: send {from} → {to}: {other:?}"),
        }
        let got = Got { from: wallet(world, *from), origin: APP.to_string(), bytes: bytes.clone() };
        expected.entry(*to).or_default().push(got);
    }
    world.run_for(Duration::from_secs(5));
    for (to, mut want) in expected {
        let mut got = received_since(world, to, since);
        got.sort();
        want.sort();
        assert_eq!(got, want, "seed {seed}: messages received by node {to}");
    }
}

/// Each of `sent` reached node `to`'s app exactly once since `since` (payloads are distinct).
pub fn assert_each_once(world: &World, seed: u64, to: usize, since: Timestamp, sent: &[Vec<u8>]) {
    let mut got: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for g in received_since(world, to, since) {
        *got.entry(g.bytes).or_default() += 1;
    }
    for (k, bytes) in sent.iter().enumerate() {
        let times = got.get(bytes);
        assert_eq!(times, Some(&1), "seed {seed}: message {k} reached node {to} {times:?} times");
    }
}
