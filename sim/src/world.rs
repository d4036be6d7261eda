//! The world: real [`Node`]s, the in-memory network between them, a virtual clock and one event queue.
//!
//! ```text
//!   queue (time, seq) ──pop earliest──▶ dispatch ──handle_*(now, …)──▶ Node
//!        ▲                                                            │ poll_output() until Timeout(t)
//!        └──── schedule deliveries, link events, the node's timer ◀───┘
//! ```
//!
//! Nothing waits on a wall clock: `now` jumps to the next event. Ties are broken by insertion order, and every
//! random choice comes from the world's ChaCha20 stream, so one seed gives one run.
//!
//! Effects are never applied re-entrantly: handling a node's outputs only schedules events (even a local
//! description arrives a few milliseconds later), so no node is ever called from inside another's drain.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use chordial_core::crypto::CryptoRef;
use chordial_core::node::{
    BootstrapError, Config, Event, FailReason, LinkEvent, LinkId, LinkPurpose, LinkRole, Node, Output,
    RequestId, MAX_SERVERS,
};
use chordial_core::wire::envelope::NetworkTag;
use chordial_core::{Id, Timestamp};

use crate::adversary::{Adversary, Ctx};
use crate::checks::{self, NodeView, RingView};
use crate::durable::Durable;
use crate::identity::Identity;
use crate::net::{self, Endpoint, NetConfig, Network, SdpKind};
use crate::queue::EventQueue;

/// 2027-01-15T08:00:00Z: a realistic Unix time, so delegations issued "now" are valid.
pub const DEFAULT_START: Timestamp = Timestamp(1_800_000_000_000);

/// How a world is set up.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// The network id (delegations and nodes use it).
    pub network: String,
    /// The network model.
    pub net: NetConfig,
    /// The virtual clock's start.
    pub start: Timestamp,
    /// Applied to every node's [`Config`] after [`Config::new`] (shorter intervals, smaller pools, …).
    pub tweak: fn(&mut Config),
    /// How long a leaving node keeps running after `leave()` before its links are closed.
    pub leave_grace: Duration,
    /// Events kept per node (oldest dropped first).
    pub event_log: usize,
    /// The crypto provider of every node and identity: [`chordial_core::crypto::REAL`] by default;
    /// [`crate::crypto::FAST`] for large benchmarks (never for a scenario about forgery or authenticity).
    pub crypto: CryptoRef,
}

impl WorldConfig {
    /// Defaults with this seed.
    pub fn new(seed: u64) -> Self {
        WorldConfig {
            seed,
            network: "sim".to_owned(),
            net: NetConfig::default(),
            start: DEFAULT_START,
            tweak: |_| {},
            leave_grace: Duration::from_secs(2),
            event_log: 64,
            crypto: &chordial_core::crypto::REAL,
        }
    }
}

/// Per-node traffic and link counters, kept by the simulator across restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeStats {
    /// `Transmit` outputs.
    pub transmits: u64,
    /// Bytes in `Transmit` outputs.
    pub tx_bytes: u64,
    /// Frames delivered to the node.
    pub frames_in: u64,
    /// `OpenLink` outputs (offers and answers).
    pub link_opens: u64,
    /// `CloseLink` outputs.
    pub link_closes: u64,
    /// `Failed` link events delivered to the node.
    pub link_failures: u64,
    /// `Closed` link events delivered to the node.
    pub link_closed_by_peer: u64,
    /// Frames the node sent that were lost (link not open, peer gone, partition).
    pub frames_lost: u64,
    /// Times the node was restarted.
    pub restarts: u32,
    /// Virtual milliseconds alive, up to its last crash or leave (see [`World::alive_ms`]).
    pub alive_ms: u64,
    /// Most links (open + opening) the node ever had, sampled after every input.
    pub max_links: usize,
}

/// World-wide counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorldStats {
    /// Events dispatched.
    pub events: u64,
    /// Frames delivered.
    pub frames_delivered: u64,
    /// Frames lost to crashes, partitions or closed links.
    pub frames_lost: u64,
    /// Links that reached `Opened` on both sides.
    pub links_opened: u64,
    /// Link setups that failed.
    pub link_setups_failed: u64,
    /// Open links that failed because the peer died or was partitioned away.
    pub consent_failures: u64,
    /// Bootstrap requests sent.
    pub bootstraps: u64,
    /// Bootstrap requests that failed (as the network saw them: refused, timed out, bad URL).
    pub bootstrap_failures: u64,
    /// Lookups whose origin crashed before they finished.
    pub lookups_lost: u64,
    /// Node-milliseconds simulated (sum over nodes of time alive).
    pub node_ms: u128,
    /// Times a node was seen above its link cap (sampled after every input).
    pub budget_violations: u64,
}

/// The result of one lookup made through [`World::lookup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupOutcome {
    /// The node that asked.
    pub node: usize,
    /// The key.
    pub key: Id,
    /// When it was asked.
    pub issued: Timestamp,
    /// When it finished.
    pub done: Timestamp,
    /// What came back.
    pub result: LookupResult,
}

/// What a lookup returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupResult {
    /// An owner.
    Found {
        /// The owner the node answered with.
        owner: Id,
        /// The true owner among the members at the time of the answer.
        ideal: Option<Id>,
        /// Hops to the owner.
        hops: u8,
        /// Hops of request and reply.
        path_len: u8,
        /// Why the answer was not the ideal owner, if it was not (judged when it arrived).
        miss: Option<Miss>,
    },
    /// The node reported failure.
    Failed(FailReason),
}

/// Why a lookup answered another node than the true owner, as seen when the answer arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Miss {
    /// The answer names a node that has crashed or left.
    OwnerDead,
    /// The answer names a live node that is not a member (joining or leaving).
    OwnerNotMember,
    /// The true owner started (or restarted) less than [`Miss::RECENT`] ago: not yet adopted by the ring.
    IdealRecent,
    /// The true owner has been up longer and is a restart of an earlier life with the same id.
    IdealRestarted,
    /// None of the above.
    Other,
}

impl Miss {
    /// What counts as "recent" for [`Miss::IdealRecent`].
    pub const RECENT: Duration = Duration::from_secs(10);
}

impl LookupOutcome {
    /// Whether the lookup returned the true owner.
    pub fn correct(&self) -> bool {
        matches!(&self.result, LookupResult::Found { owner, ideal, .. } if Some(*owner) == *ideal)
    }

    /// Hops to the owner, if it found one.
    pub fn hops(&self) -> Option<u8> {
        match self.result {
            LookupResult::Found { hops, .. } => Some(hops),
            LookupResult::Failed(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Offer,
    Answer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Opening,
    Open,
}

/// The simulator's side of one link endpoint.
#[derive(Clone, Debug)]
struct LinkRec {
    role: Role,
    state: State,
    /// The other endpoint, once known (answer side: from the offer; offer side: from the applied answer).
    peer: Option<Endpoint>,
    /// Latest delivery time scheduled towards the peer: later frames never overtake it (ordered channel).
    fifo: Timestamp,
    /// A consent check is scheduled.
    consent_pending: bool,
    /// Answer side: the offerer applied the answer and the connection attempt is under way.
    connecting: bool,
}

#[derive(Debug)]
enum Ev {
    Timer { node: usize, incarnation: u32, generation: u64 },
    LocalDescription { ep: Endpoint, sdp: String },
    Connect { offer: Endpoint, answer: Endpoint },
    Link { ep: Endpoint, event: LinkEvent },
    Frame { ep: Endpoint, bytes: Vec<u8> },
    ConsentCheck { ep: Endpoint },
    AnswerWatchdog { ep: Endpoint },
    BootstrapOffer { request: u64, body: Vec<u8> },
    BootstrapReply { request: u64, body: Vec<u8> },
    BootstrapFail { request: u64, reason: BootstrapError },
    LeaveFinish { node: usize, incarnation: u32 },
}

/// A bootstrap server the joiner cannot reach (what a shell reports for a refused connection).
fn unreachable(detail: impl Into<String>) -> BootstrapError {
    BootstrapError::Unreachable { detail: detail.into() }
}

struct PendingBootstrap {
    joiner: Endpoint,
    server: usize,
}

struct Slot {
    identity: Identity,
    /// Boxed, so taking the node out for an input and putting it back moves a pointer, not the whole state.
    node: Option<Box<Node>>,
    alive: bool,
    incarnation: u32,
    link_cap: usize,
    timer_generation: u64,
    timer_at: Option<Timestamp>,
    leaving: bool,
    founder: bool,
    member: bool,
    alive_since: Timestamp,
    joined_event: Option<bool>,
    /// When the node first joined the ring, in any of its lives.
    first_joined: Option<Timestamp>,
    /// Bootstrap servers this life of the node may use, and its current bootstrap request.
    servers: Vec<usize>,
    events: VecDeque<(Timestamp, Event)>,
    stats: NodeStats,
    /// What the node keeps across [`World::restart_durable`] (records, accepted messages).
    durable: Durable,
}

/// One node's link records, sorted by link id. The node allocates ids in increasing order, so a new record
/// goes at the end, and a lookup is a binary search over a couple of dozen ids kept apart from the records
/// (a few cache lines). Iterating slot by slot, each in id order, is the (node, incarnation, link) order of
/// the global `BTreeMap` this replaced.
///
/// The table also knows which life of the node its records belong to, so that finding an endpoint's record
/// reads this table only, not the rest of the slot (one cache line less per lookup of a peer's link).
#[derive(Debug, Default)]
struct LinkTable {
    /// The incarnation of every record (meaningless while the table is empty).
    life: u32,
    ids: Vec<LinkId>,
    recs: Vec<LinkRec>,
}

impl LinkTable {
    fn find(&self, id: LinkId) -> Result<usize, usize> {
        match self.ids.last() {
            Some(last) if *last < id => Err(self.ids.len()),
            _ => self.ids.binary_search(&id),
        }
    }

    /// Where the record of link `id` of life `incarnation` is.
    fn position(&self, incarnation: u32, id: LinkId) -> Option<usize> {
        if self.life != incarnation {
            return None;
        }
        self.find(id).ok()
    }

    fn get(&self, incarnation: u32, id: LinkId) -> Option<&LinkRec> {
        self.position(incarnation, id).map(|k| &self.recs[k])
    }

    fn get_mut(&mut self, incarnation: u32, id: LinkId) -> Option<&mut LinkRec> {
        self.position(incarnation, id).map(|k| &mut self.recs[k])
    }

    /// Inserts or replaces the record of `id` in life `incarnation`.
    fn insert(&mut self, incarnation: u32, id: LinkId, rec: LinkRec) {
        if self.ids.is_empty() {
            self.life = incarnation;
        }
        debug_assert_eq!(self.life, incarnation, "links of two lives of one node");
        match self.find(id) {
            Ok(k) => self.recs[k] = rec,
            Err(k) => {
                self.ids.insert(k, id);
                self.recs.insert(k, rec);
            }
        }
    }

    fn remove(&mut self, incarnation: u32, id: LinkId) -> Option<LinkRec> {
        let k = self.position(incarnation, id)?;
        self.ids.remove(k);
        Some(self.recs.remove(k))
    }

    fn iter(&self) -> impl Iterator<Item = (LinkId, &LinkRec)> {
        self.ids.iter().copied().zip(&self.recs)
    }

    /// Every record, in id order, leaving the table empty.
    fn take(&mut self) -> impl Iterator<Item = (LinkId, LinkRec)> {
        std::mem::take(&mut self.ids).into_iter().zip(std::mem::take(&mut self.recs))
    }
}

/// Outputs drained from one node in one go before the simulator suspects a livelock.
const DRAIN_LIMIT: usize = 1_000_000;

/// A deterministic simulated network of real nodes.
pub struct World {
    config: WorldConfig,
    now: Timestamp,
    rng: ChaCha20Rng,
    net: Network,
    /// Events in (time, insertion order).
    queue: EventQueue<Ev>,
    slots: Vec<Slot>,
    /// The simulator's records of each node's links (by node index, beside `slots`), for its current life
    /// only: a crash or the end of a leave takes them all, so no record of an older incarnation is ever left
    /// behind. Kept apart from the slots because every frame reads the tables of two nodes (the sender's
    /// peer, then the receiver): a dense array of small tables stays in the cache where the slots do not.
    links: Vec<LinkTable>,
    bootstraps: BTreeMap<u64, PendingBootstrap>,
    next_request: u64,
    pending_lookups: BTreeMap<(usize, u32, RequestId), (Id, Timestamp)>,
    lookups: Vec<LookupOutcome>,
    members: BTreeMap<Id, usize>,
    /// Every node ever created, by id.
    by_id: BTreeMap<Id, usize>,
    alive: usize,
    r: usize,
    node_config: Config,
    stats: WorldStats,
    /// Frames delivered while tapping (see [`World::tap_frames`]).
    tap: Option<Vec<TappedFrame>>,
    /// Frames and bytes delivered by message kind while counting (see [`World::count_kinds`]).
    kinds: Option<BTreeMap<&'static str, (u64, u64)>>,
    /// The attackers' hooks, by node index (see [`crate::adversary`]); empty in honest runs, which then
    /// pay one emptiness check per frame.
    adversaries: BTreeMap<usize, Box<dyn Adversary>>,
}

/// One frame as the network delivered it, recorded by [`World::tap_frames`].
#[derive(Clone, Debug)]
pub struct TappedFrame {
    /// When it arrived.
    pub at: Timestamp,
    /// The node that sent it on the link.
    pub from: usize,
    /// The node that received it.
    pub to: usize,
    /// The bytes, as the receiving node got them.
    pub bytes: Vec<u8>,
}

/// Frames a tap keeps at most; beyond this the tap stops recording and says so.
pub const TAP_LIMIT: usize = 2_000_000;

impl World {
    /// An empty world at `config.start`.
    pub fn new(config: WorldConfig) -> World {
        let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
        let net = Network::new(config.net.clone(), rng.next_u64());
        let mut probe = Config::new(&config.network, [0; 32]);
        (config.tweak)(&mut probe);
        World {
            now: config.start,
            r: probe.successors,
            node_config: probe,
            rng,
            net,
            queue: EventQueue::new(config.start),
            slots: Vec::new(),
            links: Vec::new(),
            bootstraps: BTreeMap::new(),
            next_request: 1,
            pending_lookups: BTreeMap::new(),
            lookups: Vec::new(),
            members: BTreeMap::new(),
            by_id: BTreeMap::new(),
            alive: 0,
            stats: WorldStats::default(),
            tap: None,
            kinds: None,
            adversaries: BTreeMap::new(),
            config,
        }
    }

    // ---------------------------------------------------------------- accessors

    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Virtual time since the world started.
    pub fn elapsed(&self) -> Duration {
        self.now.since(self.config.start)
    }

    /// The world's configuration.
    pub fn config(&self) -> &WorldConfig {
        &self.config
    }

    /// The node configuration every node starts from (with a zero seed; each node gets its own).
    pub fn node_config(&self) -> &Config {
        &self.node_config
    }

    /// The successor-list length `r` nodes are configured with.
    pub fn r(&self) -> usize {
        self.r
    }

    /// The world's random stream (scenario drivers draw from it so one seed fixes the whole run).
    pub fn rng(&mut self) -> &mut ChaCha20Rng {
        &mut self.rng
    }

    /// The network model, to change loss or latency between steps.
    pub fn net_config_mut(&mut self) -> &mut NetConfig {
        &mut self.net.config
    }

    /// Node slots ever created (alive or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no node was ever created.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Nodes alive now (members, joining and leaving).
    pub fn alive_count(&self) -> usize {
        self.alive
    }

    /// Whether node `i` is running.
    pub fn is_alive(&self, i: usize) -> bool {
        self.slots.get(i).is_some_and(|s| s.alive)
    }

    /// Whether node `i` is a member: alive, not leaving, and joined (has a successor, or founded the ring).
    pub fn is_member(&self, i: usize) -> bool {
        self.slots.get(i).is_some_and(|s| s.member)
    }

    /// The members, id → node index.
    pub fn members(&self) -> &BTreeMap<Id, usize> {
        &self.members
    }

    /// Indices of the members, in id order.
    pub fn member_indices(&self) -> Vec<usize> {
        self.members.values().copied().collect()
    }

    /// Node `i`'s id (kept across restarts).
    pub fn id(&self, i: usize) -> Id {
        self.slots[i].identity.id
    }

    /// Node `i`, if alive.
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.slots.get(i).and_then(|s| s.node.as_deref())
    }

    /// Node `i`'s link cap ([`Config::link_cap`]).
    pub fn link_cap(&self, i: usize) -> usize {
        self.slots[i].link_cap
    }

    /// Node `i`'s wallet (also while it is down: the identity outlives a crash).
    pub fn wallet_of(&self, i: usize) -> Option<chordial_core::identity::Address> {
        self.slots.get(i)?.identity.wallet_key().ok().map(|w| w.address())
    }

    /// The last events node `i` emitted, with their times.
    pub fn events(&self, i: usize) -> &VecDeque<(Timestamp, Event)> {
        &self.slots[i].events
    }

    /// When node `i` first joined the ring, in any of its lives.
    pub fn first_joined(&self, i: usize) -> Option<Timestamp> {
        self.slots[i].first_joined
    }

    /// The last `Membership` event node `i` emitted in its current life.
    pub fn joined_event(&self, i: usize) -> Option<bool> {
        self.slots[i].joined_event
    }

    /// Node `i`'s counters.
    pub fn stats(&self, i: usize) -> &NodeStats {
        &self.slots[i].stats
    }

    /// Virtual milliseconds node `i` has been alive in total.
    pub fn alive_ms(&self, i: usize) -> u64 {
        let s = &self.slots[i];
        s.stats.alive_ms + if s.alive { self.now.since(s.alive_since).as_millis() as u64 } else { 0 }
    }

    /// World-wide counters.
    pub fn world_stats(&self) -> &WorldStats {
        &self.stats
    }

    /// Events waiting in the queue.
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    /// The true owner of `key` among the current members.
    pub fn ideal_owner(&self, key: Id) -> Option<Id> {
        checks::ideal_owner(&self.members, key)
    }

    /// A snapshot of every alive node for the checkers.
    pub fn ring_view(&self) -> RingView {
        let mut view = RingView { r: self.r, ..RingView::default() };
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(node) = &slot.node else { continue };
            let nv = NodeView {
                index,
                id: slot.identity.id,
                successors: node.inspect().successors().to_vec(),
                predecessor: node.inspect().predecessor(),
                link_count: node.inspect().link_count(),
                link_cap: slot.link_cap,
            };
            if slot.member {
                view.members.insert(nv.id, nv);
            } else {
                view.others.push(nv);
            }
        }
        view
    }

    /// Starts recording every frame delivered from now on (a wiretap on all links), or stops and returns
    /// what was recorded. Recording stops by itself after [`TAP_LIMIT`] frames; `take` then panics rather
    /// than hand back a silently partial record.
    pub fn tap_frames(&mut self, on: bool) -> Vec<TappedFrame> {
        let taken = std::mem::replace(&mut self.tap, on.then(Vec::new)).unwrap_or_default();
        assert!(taken.len() < TAP_LIMIT, "the frame tap overflowed ({TAP_LIMIT} frames)");
        taken
    }

    /// Starts counting delivered frames and bytes by message kind (see
    /// [`chordial_core::node::describe_frame`]), or stops and returns the counts.
    pub fn count_kinds(&mut self, on: bool) -> BTreeMap<&'static str, (u64, u64)> {
        std::mem::replace(&mut self.kinds, on.then(BTreeMap::new)).unwrap_or_default()
    }

    fn record_frame(&mut self, ep: Endpoint, bytes: &[u8]) {
        if let Some(kinds) = self.kinds.as_mut() {
            let kind = chordial_core::node::describe_frame(bytes).unwrap_or("invalid");
            let entry = kinds.entry(kind).or_default();
            entry.0 += 1;
            entry.1 += bytes.len() as u64;
        }
        if self.tap.is_none() {
            return;
        }
        let from = self.link(ep).and_then(|r| r.peer).map(|p| p.node);
        let Some(tap) = self.tap.as_mut() else { return };
        if let Some(from) = from {
            if tap.len() < TAP_LIMIT {
                tap.push(TappedFrame { at: self.now, from, to: ep.node, bytes: bytes.to_vec() });
            }
        }
    }

    // ---------------------------------------------------------------- commands

    /// Creates a node with a fresh identity. With `bootstrap = Some(b)` it joins through node `b`'s
    /// bootstrap endpoint; with `None` it founds a ring of its own. Returns its index.
    pub fn add_node(&mut self, bootstrap: Option<usize>) -> usize {
        match bootstrap {
            Some(b) => self.add_node_via(&[b]),
            None => self.add_node_via(&[]),
        }
    }

    /// Creates a node with a fresh identity that joins through a random node of `servers` (and retries
    /// through the others, see [`WorldConfig::bootstrap_retry`]). An empty list founds a ring. Returns its
    /// index.
    pub fn add_node_via(&mut self, servers: &[usize]) -> usize {
        let identity = Identity::generate(&mut self.rng, self.config.crypto, &self.config.network, self.now);
        self.add_identity(identity, servers)
    }

    /// Creates another device of node `of`'s wallet — a node with its own session key and delegation from
    /// the same wallet — joining through a random node of `servers`. Returns its index.
    pub fn add_device(&mut self, of: usize, servers: &[usize]) -> usize {
        let wallet = self.slots[of].identity.wallet_key().expect("a stored wallet key is valid");
        let identity =
            Identity::for_wallet(&wallet, &mut self.rng, self.config.crypto, &self.config.network, self.now);
        self.add_identity(identity, servers)
    }

    fn add_identity(&mut self, identity: Identity, servers: &[usize]) -> usize {
        let i = self.add_slot(identity, servers);
        self.start_node(i);
        i
    }

    /// A slot for a node with this identity, not started.
    fn add_slot(&mut self, identity: Identity, servers: &[usize]) -> usize {
        let i = self.slots.len();
        self.by_id.insert(identity.id, i);
        self.slots.push(Slot {
            identity,
            node: None,
            alive: false,
            incarnation: 0,
            link_cap: 0,
            timer_generation: 0,
            timer_at: None,
            leaving: false,
            founder: servers.is_empty(),
            member: false,
            alive_since: self.now,
            joined_event: None,
            first_joined: None,
            servers: servers.to_vec(),
            events: VecDeque::new(),
            stats: NodeStats::default(),
            durable: Durable::default(),
        });
        self.links.push(LinkTable::default());
        i
    }

    /// Builds a converged ring of `n` new nodes directly ([`Node::warm_start`]), as if they had joined,
    /// stabilized and swept their fingers: every successor list, predecessor and finger table exactly
    /// right, and the links between them open — the links to successors first, then fingers farthest
    /// first, node by node in random order, within both ends' budgets as the link policy keeps them.
    /// Every node knows up to `MAX_SERVERS` random others as bootstrap servers (for rejoining and merge
    /// checks), as a node that joined through members of a growing ring does. Returns the nodes, and
    /// `servers` of them chosen at random (a base for churn, as the cold benchmark's). For the largest benchmarks
    /// (`chordial-sim bench --warm`): 10^5 nodes joining one by one would take hours.
    pub fn add_warm_ring(&mut self, n: usize, servers: usize) -> (Vec<usize>, Vec<usize>) {
        let mut ring: Vec<(Id, usize)> = (0..n)
            .map(|_| {
                let identity =
                    Identity::generate(&mut self.rng, self.config.crypto, &self.config.network, self.now);
                (identity.id, self.add_slot(identity, &[]))
            })
            .collect();
        ring.sort_unstable();
        let ids: Vec<Id> = ring.iter().map(|(id, _)| *id).collect();
        let position: HashMap<Id, usize> = ids.iter().enumerate().map(|(p, id)| (*id, p)).collect();
        let mut picked: Vec<usize> = ring.iter().map(|(_, i)| *i).collect();
        let servers = servers.min(n);
        for k in 0..servers {
            let j = k + (self.rng.next_u64() % (n - k) as u64) as usize;
            picked.swap(k, j);
        }
        let server_nodes = picked[..servers].to_vec();
        let r = self.r();
        let now = self.now;
        let owner_of = |key: Id| ids[ids.partition_point(|x| *x < key) % n];
        let mut nodes: Vec<(usize, Box<Node>)> = Vec::with_capacity(n);
        let mut wanted: Vec<Vec<(Id, LinkPurpose)>> = Vec::with_capacity(n);
        for (pos, (_, i)) in ring.iter().enumerate() {
            let mut node = self.new_node(*i);
            let successors: Vec<Id> = (1..=r.min(n - 1)).map(|k| ids[(pos + k) % n]).collect();
            let predecessor = (n > 1).then(|| ids[(pos + n - 1) % n]);
            wanted.push(node.warm_start(now, &successors, predecessor, owner_of));
            // Like a node that joined through members of a growing ring: it knows up to MAX_SERVERS of
            // them, at random (its merge checks and rejoins go there, spread over the ring).
            let known: Vec<usize> = (0..MAX_SERVERS.min(n - 1))
                .map(|_| ring[(pos + 1 + (self.rng.next_u64() % (n as u64 - 1)) as usize) % n].1)
                .collect();
            for s in &known {
                node.add_server(&net::bootstrap_url(*s));
            }
            let slot = &mut self.slots[*i];
            slot.founder = false;
            slot.servers = known;
            nodes.push((*i, Box::new(node)));
        }
        // Links: every node's successors first (ring links come first in every node's budget), then the
        // fingers, node by node in random order.
        let mut order: Vec<usize> = (0..n).collect();
        for k in 0..n {
            let j = k + (self.rng.next_u64() % (n - k) as u64) as usize;
            order.swap(k, j);
        }
        // Warm links are ring links: the join slots stay free.
        let cap = self.node_config().ring_link_cap();
        let mut count = vec![0usize; n];
        let mut linked: HashSet<(usize, usize)> = HashSet::new();
        for purpose in [LinkPurpose::Successor, LinkPurpose::Finger] {
            for &a in &order {
                for (peer, p) in wanted[a].clone() {
                    let b = position[&peer];
                    let pair = (a.min(b), a.max(b));
                    // The offerer keeps room for ring links before it offers a finger; the answerer takes
                    // any link while it has room (`Node::warm_link` applies the same rule).
                    let headroom = if p == LinkPurpose::Finger { 2 } else { 0 };
                    if p != purpose || linked.contains(&pair) || count[a] + headroom >= cap || count[b] >= cap
                    {
                        continue;
                    }
                    let (ia, ib) = (nodes[a].0, nodes[b].0);
                    let la = nodes[a].1.warm_link(now, peer, p, true).expect("the offerer has room");
                    let lb = nodes[b].1.warm_link(now, ids[a], p, false).expect("the answerer has room");
                    let ea = Endpoint { node: ia, incarnation: self.slots[ia].incarnation, link: la };
                    let eb = Endpoint { node: ib, incarnation: self.slots[ib].incarnation, link: lb };
                    self.insert_link(ea, LinkRec::open(Role::Offer, eb, now));
                    self.insert_link(eb, LinkRec::open(Role::Answer, ea, now));
                    count[a] += 1;
                    count[b] += 1;
                    linked.insert(pair);
                }
            }
        }
        let all = nodes.iter().map(|(i, _)| *i).collect();
        for (i, node) in nodes {
            self.put_back_boxed(i, node, false);
        }
        (all, server_nodes)
    }

    /// Crashes node `i`: its state is gone at once and it sends nothing more. Peers notice only through
    /// link failures (consent timeouts) and their own ping timeouts.
    pub fn crash(&mut self, i: usize) {
        if !self.slots[i].alive {
            return;
        }
        self.stop_node(i);
        let incarnation = self.slots[i].incarnation;
        let lost = self
            .pending_lookups
            .range((i, incarnation, RequestId(0))..=(i, incarnation, RequestId(u64::MAX)))
            .count();
        self.stats.lookups_lost += lost as u64;
        self.pending_lookups.retain(|k, _| !(k.0 == i && k.1 == incarnation));
        for (ep, rec) in self.take_links_of(i, incarnation) {
            let Some(peer) = rec.peer else { continue };
            let peer_open = self.link(peer).is_some_and(|p| p.state == State::Open && p.peer == Some(ep));
            if peer_open {
                self.schedule_consent_check(peer);
            }
        }
    }

    /// Restarts crashed node `i` with its old session key and delegation but fresh state, joining through
    /// node `bootstrap`.
    pub fn restart(&mut self, i: usize, bootstrap: usize) {
        assert!(!self.slots[i].alive, "restart of a running node {i}");
        self.slots[i].durable = Durable::default();
        self.restart_durable(i, bootstrap);
    }

    /// Restarts crashed node `i` like [`World::restart`], but with the durable state its last life wrote —
    /// its record store and its table of accepted messages — as a server restarts from its database
    /// ([`crate::durable`]).
    pub fn restart_durable(&mut self, i: usize, bootstrap: usize) {
        assert!(!self.slots[i].alive, "restart of a running node {i}");
        let slot = &mut self.slots[i];
        slot.incarnation += 1;
        slot.stats.restarts += 1;
        slot.founder = false;
        slot.servers = vec![bootstrap];
        self.start_node(i);
    }

    /// Gracefully removes node `i`: `leave()`, keep running for [`WorldConfig::leave_grace`], then close its
    /// links and drop it.
    pub fn leave(&mut self, i: usize) {
        if !self.slots[i].alive || self.slots[i].leaving {
            return;
        }
        self.slots[i].leaving = true;
        self.with_node(i, |n, now| n.leave(now));
        let incarnation = self.slots[i].incarnation;
        self.after(self.config.leave_grace, Ev::LeaveFinish { node: i, incarnation });
    }

    /// Splits the network into groups of node indices (nodes in no group form one more group). Links across
    /// groups fail after the consent timeout; new links, frames and bootstraps across groups fail.
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        self.net.set_partition(groups);
        // Slot by slot, each in link-id order: the (node, incarnation, link) order of endpoints.
        let crossing: Vec<Endpoint> = self
            .slots
            .iter()
            .zip(&self.links)
            .enumerate()
            .flat_map(|(node, (slot, links))| {
                let incarnation = slot.incarnation;
                links.iter().map(move |(link, rec)| (Endpoint { node, incarnation, link }, rec))
            })
            .filter(|(ep, rec)| rec.peer.is_some_and(|p| self.net.partitioned(ep.node, p.node)))
            .map(|(ep, _)| ep)
            .collect();
        for ep in crossing {
            self.schedule_consent_check(ep);
        }
    }

    /// Ends the partition.
    pub fn heal(&mut self) {
        self.net.heal();
    }

    /// Starts a lookup of `key` at node `i`; its outcome is collected by [`World::take_lookups`].
    pub fn lookup(&mut self, i: usize, key: Id) -> Option<RequestId> {
        let mut node = self.slots.get_mut(i)?.node.take()?;
        let now = self.now;
        let request = node.lookup(now, key);
        self.pending_lookups.insert((i, self.slots[i].incarnation, request), (key, now));
        self.put_back(i, node, false);
        Some(request)
    }

    /// Lookups made through [`World::lookup`] that finished since the last call.
    pub fn take_lookups(&mut self) -> Vec<LookupOutcome> {
        std::mem::take(&mut self.lookups)
    }

    /// Lookups still under way.
    pub fn lookups_in_flight(&self) -> usize {
        self.pending_lookups.len()
    }

    /// Calls `f` on node `i` (if alive) at the current time and carries out what it outputs.
    pub fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Node, Timestamp) -> R) -> Option<R> {
        let mut node = self.slots.get_mut(i)?.node.take()?;
        let r = f(&mut node, self.now);
        self.put_back(i, node, false);
        Some(r)
    }

    // ---------------------------------------------------------------- running

    // ---------------------------------------------------------------- attackers

    /// Makes node `i` an attacker: from now on its frames pass through `adversary` (see
    /// [`crate::adversary`]). Its node keeps running the honest protocol underneath.
    pub fn set_adversary(&mut self, i: usize, adversary: Box<dyn Adversary>) {
        self.adversaries.insert(i, adversary);
    }

    /// Creates a node with the given identity (for attackers that choose their node ids), joining through a
    /// random node of `servers` as [`World::add_node_via`] does. Returns its index.
    pub fn add_node_with(&mut self, identity: Identity, servers: &[usize]) -> usize {
        self.add_identity(identity, servers)
    }

    /// What node `i` keeps across [`World::restart_durable`].
    pub fn durable(&self, i: usize) -> &Durable {
        &self.slots[i].durable
    }

    /// Node `i`'s session key (an attacker signs with its own).
    pub fn session_key(&self, i: usize) -> chordial_core::identity::SessionKey {
        self.slots[i].identity.session_key().expect("a stored session key is valid")
    }

    /// The network tag every node of this world uses.
    pub fn network_tag(&self) -> NetworkTag {
        NetworkTag::from_name(&self.config.network)
    }

    /// Node `i`'s open links in its current life: its end's link id and the peer's node index.
    pub fn open_links(&self, i: usize) -> Vec<(LinkId, usize)> {
        let table = &self.links[i];
        if table.life != self.slots[i].incarnation {
            return Vec::new();
        }
        table
            .ids
            .iter()
            .zip(&table.recs)
            .filter(|(_, rec)| rec.state == State::Open)
            .filter_map(|(id, rec)| Some((*id, rec.peer?.node)))
            .collect()
    }

    /// Sends raw `bytes` from node `i` on its `link`, as its shell would (floods, replays, junk).
    pub fn send_raw(&mut self, i: usize, link: LinkId, bytes: Vec<u8>) {
        let ep = Endpoint { node: i, incarnation: self.slots[i].incarnation, link };
        self.transmit(ep, bytes);
    }

    /// Runs `f` on node `i`'s adversary with a fresh context, then sends what it queued. `None` if node `i`
    /// has no adversary.
    fn with_adversary<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut dyn Adversary, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let mut adversary = self.adversaries.remove(&i)?;
        let session = self.session_key(i);
        let links = self.open_links(i);
        let network = self.network_tag();
        let mut ctx = Ctx {
            now: self.now,
            session: &session,
            network,
            rng: &mut self.rng,
            links: &links,
            sends: Vec::new(),
        };
        let out = f(adversary.as_mut(), &mut ctx);
        let sends = std::mem::take(&mut ctx.sends);
        self.adversaries.insert(i, adversary);
        for (link, bytes) in sends {
            self.send_raw(i, link, bytes);
        }
        Some(out)
    }

    /// Processes every event up to and including `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: Timestamp) {
        while let Some((at, ev)) = self.queue.pop_until(t) {
            self.advance_to(at);
            self.stats.events += 1;
            self.dispatch(ev);
        }
        self.advance_to(t);
        self.queue.advance_to(self.now);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now.saturating_add(d));
    }

    /// Processes the next event; `false` when the queue is empty.
    pub fn step(&mut self) -> bool {
        let Some((at, ev)) = self.queue.pop() else { return false };
        self.advance_to(at);
        self.stats.events += 1;
        self.dispatch(ev);
        true
    }

    fn advance_to(&mut self, t: Timestamp) {
        if t > self.now {
            self.stats.node_ms += u128::from(t.0 - self.now.0) * self.alive as u128;
            self.now = t;
        }
    }

    // ---------------------------------------------------------------- internals: nodes

    fn start_node(&mut self, i: usize) {
        let mut node = self.new_node(i);
        // Like a shell with a list of servers: the node knows a few (it rejoins through them by itself, as
        // in every shipped shell) and bootstraps through one now.
        if !self.slots[i].servers.is_empty() {
            let mut servers = self.slots[i].servers.clone();
            // Up to MAX_SERVERS distinct servers of the list, in random order (a partial shuffle).
            let known = servers.len().min(MAX_SERVERS);
            for k in 0..known {
                let j = k + (self.rng.next_u64() % (servers.len() - k) as u64) as usize;
                servers.swap(k, j);
            }
            for s in &servers[1..known] {
                node.add_server(&net::bootstrap_url(*s));
            }
            node.connect_bootstrap(self.now, &net::bootstrap_url(servers[0]));
        }
        self.put_back(i, node, false);
    }

    /// A new `Node` for slot `i` (its identity, a fresh seed), counted alive.
    fn new_node(&mut self, i: usize) -> Node {
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let mut config = Config::new(&self.config.network, seed);
        config.crypto = self.config.crypto;
        (self.config.tweak)(&mut config);
        let slot = &mut self.slots[i];
        slot.link_cap = config.link_cap();
        let session = slot.identity.session_key().expect("stored session key is valid");
        let mut node = Node::new(config, session, slot.identity.delegation.clone(), self.now)
            .unwrap_or_else(|e| panic!("Node::new for node {i}: {e:?}"))
            .with_store(Box::new(slot.durable.records.clone()));
        node.with_accepted_store(self.now, Box::new(slot.durable.accepted.clone()));
        slot.alive = true;
        slot.leaving = false;
        slot.alive_since = self.now;
        slot.joined_event = None;
        slot.timer_at = None;
        self.alive += 1;
        node
    }

    fn stop_node(&mut self, i: usize) {
        let now = self.now;
        let slot = &mut self.slots[i];
        slot.node = None;
        slot.alive = false;
        slot.leaving = false;
        slot.timer_at = None;
        slot.stats.alive_ms += now.since(slot.alive_since).as_millis() as u64;
        self.alive -= 1;
        self.refresh_member(i);
    }

    /// Drains node `i`'s outputs, schedules its timer, and puts it back in its slot.
    fn put_back(&mut self, i: usize, node: impl Into<Box<Node>>, from_timer: bool) {
        self.put_back_boxed(i, node.into(), from_timer);
    }

    fn put_back_boxed(&mut self, i: usize, mut node: Box<Node>, from_timer: bool) {
        let incarnation = self.slots[i].incarnation;
        let mut n = 0usize;
        loop {
            match node.poll_output() {
                Output::Timeout(t) => {
                    self.set_timer(i, incarnation, t, from_timer);
                    break;
                }
                out => self.handle_output(i, incarnation, out),
            }
            n += 1;
            assert!(n < DRAIN_LIMIT, "node {i} produced {DRAIN_LIMIT} outputs without a Timeout");
        }
        let links = node.inspect().link_count();
        let slot = &mut self.slots[i];
        slot.stats.max_links = slot.stats.max_links.max(links);
        if links > slot.link_cap {
            self.stats.budget_violations += 1;
        }
        slot.node = Some(node);
        self.refresh_member(i);
    }

    fn set_timer(&mut self, i: usize, incarnation: u32, t: Option<Timestamp>, from_timer: bool) {
        let Some(t) = t else {
            // Nothing armed (the node has left): forget any pending timer.
            let slot = &mut self.slots[i];
            if slot.timer_at.take().is_some() {
                slot.timer_generation += 1;
            }
            return;
        };
        // A deadline already due right after handle_timeout is retried a millisecond later, so a node that
        // keeps asking for "now" cannot stall the clock.
        let at = if from_timer && t <= self.now {
            self.now.saturating_add(Duration::from_millis(1))
        } else {
            t.max(self.now)
        };
        let slot = &mut self.slots[i];
        if slot.timer_at == Some(at) {
            return;
        }
        slot.timer_generation += 1;
        slot.timer_at = Some(at);
        let generation = slot.timer_generation;
        self.schedule(at, Ev::Timer { node: i, incarnation, generation });
    }

    fn refresh_member(&mut self, i: usize) {
        let slot = &self.slots[i];
        let member = slot.alive
            && !slot.leaving
            && slot.node.as_ref().is_some_and(|n| slot.founder || !n.inspect().successors().is_empty());
        if member != slot.member {
            let id = slot.identity.id;
            self.slots[i].member = member;
            if member {
                self.members.insert(id, i);
            } else {
                self.members.remove(&id);
            }
        }
    }

    /// Calls `f` on the node an endpoint belongs to, if that life of it is still running.
    fn deliver(&mut self, ep: Endpoint, f: impl FnOnce(&mut Node, Timestamp)) {
        let slot = &mut self.slots[ep.node];
        if slot.incarnation != ep.incarnation {
            return;
        }
        let Some(mut node) = slot.node.take() else { return };
        f(&mut node, self.now);
        self.put_back(ep.node, node, false);
    }

    // ---------------------------------------------------------------- internals: outputs

    fn handle_output(&mut self, i: usize, incarnation: u32, out: Output) {
        let me = |link| Endpoint { node: i, incarnation, link };
        match out {
            Output::Transmit { link, bytes } if self.adversaries.contains_key(&i) => {
                let out = self.with_adversary(i, |adv, ctx| adv.on_transmit(ctx, link, bytes));
                if let Some(bytes) = out.flatten() {
                    self.transmit(me(link), bytes);
                }
            }
            Output::Transmit { link, bytes } => self.transmit(me(link), bytes),
            Output::OpenLink { link, role } => {
                let ep = me(link);
                self.slots[i].stats.link_opens += 1;
                let delay =
                    net::uniform(&mut self.rng, self.net.config.gather_min, self.net.config.gather_max);
                match role {
                    LinkRole::Offer => {
                        self.insert_link(ep, LinkRec::new(Role::Offer, None, self.now));
                        let sdp = net::sdp_token(SdpKind::Offer, ep);
                        self.after(delay, Ev::LocalDescription { ep, sdp });
                    }
                    LinkRole::Answer(remote) => match net::parse_sdp_token(&remote) {
                        Some((SdpKind::Offer, offer)) => {
                            self.insert_link(ep, LinkRec::new(Role::Answer, Some(offer), self.now));
                            let sdp = net::sdp_token(SdpKind::Answer, ep);
                            self.after(delay, Ev::LocalDescription { ep, sdp });
                            self.after(self.net.config.answer_timeout, Ev::AnswerWatchdog { ep });
                        }
                        _ => {
                            // Not an offer this network made: the browser would refuse to apply it.
                            self.insert_link(ep, LinkRec::new(Role::Answer, None, self.now));
                            self.after(delay, Ev::Link { ep, event: LinkEvent::Failed });
                        }
                    },
                }
            }
            Output::ApplyRemote { link, sdp } => self.apply_remote(me(link), &sdp),
            Output::CloseLink { link } => {
                let ep = me(link);
                self.slots[i].stats.link_closes += 1;
                if let Some(rec) = self.remove_link(ep) {
                    self.notify_close(ep, &rec);
                }
            }
            Output::BootstrapOffer { link, url, offer } => {
                let joiner = me(link);
                self.stats.bootstraps += 1;
                let request = self.next_request;
                self.next_request += 1;
                let Some(server) = net::parse_bootstrap_url(&url).filter(|s| *s < self.slots.len()) else {
                    self.bootstraps.insert(request, PendingBootstrap { joiner, server: i });
                    self.after(
                        Duration::from_millis(1),
                        Ev::BootstrapFail { request, reason: unreachable(format!("bad url {url}")) },
                    );
                    return;
                };
                self.bootstraps.insert(request, PendingBootstrap { joiner, server });
                self.after(
                    self.net.config.http_timeout,
                    Ev::BootstrapFail { request, reason: BootstrapError::Timeout },
                );
                if self.net.partitioned(i, server) {
                    return; // the request never arrives; the timeout above reports it
                }
                let delay = self.net.sample_delay(&mut self.rng, i, server);
                if self.slots[server].alive && !self.slots[server].leaving {
                    self.after(delay, Ev::BootstrapOffer { request, body: offer });
                } else {
                    self.after(
                        delay * 2,
                        Ev::BootstrapFail { request, reason: unreachable("connection refused") },
                    );
                }
            }
            Output::PairingOffer { .. } | Output::PairingAnswer { .. } => {
                unreachable!(
                    "the simulator never pairs: it calls neither pair_offer nor handle_pairing_offer"
                )
            }
            Output::BootstrapAnswer { request, answer } => {
                let Some(p) = self.bootstraps.get(&request) else { return };
                let joiner = p.joiner.node;
                if !self.net.partitioned(i, joiner) {
                    let delay = self.net.sample_delay(&mut self.rng, i, joiner);
                    self.after(delay, Ev::BootstrapReply { request, body: answer });
                }
            }
            Output::Event(event) => self.record_event(i, incarnation, event),
            Output::Timeout(_) => unreachable!("handled by the drain loop"),
        }
    }

    fn transmit(&mut self, ep: Endpoint, bytes: Vec<u8>) {
        let stats = &mut self.slots[ep.node].stats;
        stats.transmits += 1;
        stats.tx_bytes += bytes.len() as u64;
        let links = &self.links[ep.node];
        let Some(k) = links.position(ep.incarnation, ep.link) else { return self.lose(ep.node) };
        let (Some(peer), State::Open) = (links.recs[k].peer, links.recs[k].state) else {
            return self.lose(ep.node);
        };
        if !self.has_link(peer) {
            return self.lose(ep.node); // the peer closed or died; its Closed/Failed is on its way
        }
        if self.net.partitioned(ep.node, peer.node) {
            self.schedule_consent_check(ep);
            return self.lose(ep.node);
        }
        let delay = self.net.sample_delay(&mut self.rng, ep.node, peer.node);
        let rec = &mut self.links[ep.node].recs[k]; // nothing above changed the table
        let at = self.now.saturating_add(delay).max(rec.fifo);
        rec.fifo = at;
        self.schedule(at, Ev::Frame { ep: peer, bytes });
    }

    fn lose(&mut self, node: usize) {
        self.slots[node].stats.frames_lost += 1;
        self.stats.frames_lost += 1;
    }

    fn apply_remote(&mut self, ep: Endpoint, sdp: &str) {
        let Some(rec) = self.link(ep) else { return };
        if rec.role != Role::Offer || rec.state != State::Opening {
            return self.after(Duration::from_millis(1), Ev::Link { ep, event: LinkEvent::Failed });
        }
        let answer = match net::parse_sdp_token(sdp) {
            Some((SdpKind::Answer, answer)) => answer,
            _ => return self.after(Duration::from_millis(1), Ev::Link { ep, event: LinkEvent::Failed }),
        };
        if let Some(rec) = self.link_mut(ep) {
            rec.peer = Some(answer);
        }
        match self.link_mut(answer) {
            Some(a) if a.peer == Some(ep) && a.state == State::Opening => {
                a.connecting = true;
                let rtt = self.net.sample_delay(&mut self.rng, ep.node, answer.node)
                    + self.net.sample_delay(&mut self.rng, answer.node, ep.node);
                self.after(rtt, Ev::Connect { offer: ep, answer });
            }
            _ => {
                self.stats.link_setups_failed += 1;
                self.after(self.net.config.ice_timeout, Ev::Link { ep, event: LinkEvent::Failed });
            }
        }
    }

    /// The peer of a link this side just closed hears `Closed` after the frames already in flight.
    fn notify_close(&mut self, ep: Endpoint, rec: &LinkRec) {
        let Some(peer) = rec.peer else { return };
        let peer_rec = self.link(peer);
        if rec.state != State::Open || peer_rec.is_none_or(|p| p.peer != Some(ep)) {
            return; // a setup in progress fails on its own (Connect or the answer watchdog)
        }
        if self.net.partitioned(ep.node, peer.node) {
            return self.schedule_consent_check(peer);
        }
        let delay = self.net.sample_delay(&mut self.rng, ep.node, peer.node);
        let at = self.now.saturating_add(delay).max(rec.fifo);
        self.schedule(at, Ev::Link { ep: peer, event: LinkEvent::Closed });
    }

    fn record_event(&mut self, i: usize, incarnation: u32, event: Event) {
        let now = self.now;
        let finished = match &event {
            Event::LookupDone { request, key, owner, hops, path_len } => {
                let ideal = self.ideal_owner(*key);
                let miss = (ideal != Some(*owner)).then(|| self.classify_miss(*owner, ideal));
                Some((
                    *request,
                    LookupResult::Found { owner: *owner, ideal, hops: *hops, path_len: *path_len, miss },
                ))
            }
            Event::RequestFailed { request, reason } => {
                Some((*request, LookupResult::Failed(reason.clone())))
            }
            Event::Membership { joined } => {
                self.slots[i].joined_event = Some(*joined);
                if *joined && self.slots[i].first_joined.is_none() {
                    self.slots[i].first_joined = Some(self.now);
                }
                None
            }
            // App-layer results (sends, discoveries, received messages) stay in the node's event log.
            _ => None,
        };
        if let Some((request, result)) = finished {
            if let Some((key, issued)) = self.pending_lookups.remove(&(i, incarnation, request)) {
                self.lookups.push(LookupOutcome { node: i, key, issued, done: now, result });
            }
        }
        let slot = &mut self.slots[i];
        if slot.events.len() >= self.config.event_log.max(1) {
            slot.events.pop_front();
        }
        slot.events.push_back((now, event));
    }

    fn classify_miss(&self, owner: Id, ideal: Option<Id>) -> Miss {
        match self.by_id.get(&owner).map(|i| &self.slots[*i]) {
            None => return Miss::Other,
            Some(s) if !s.alive || s.leaving => return Miss::OwnerDead,
            Some(s) if !s.member => return Miss::OwnerNotMember,
            Some(_) => {}
        }
        let Some(ideal) = ideal.and_then(|d| self.by_id.get(&d)).map(|i| &self.slots[*i]) else {
            return Miss::Other;
        };
        if self.now.since(ideal.alive_since) < Miss::RECENT {
            Miss::IdealRecent
        } else if ideal.incarnation > 0 {
            Miss::IdealRestarted
        } else {
            Miss::Other
        }
    }

    // ---------------------------------------------------------------- internals: events

    fn schedule(&mut self, at: Timestamp, ev: Ev) {
        self.queue.push(at, ev);
    }

    fn after(&mut self, d: Duration, ev: Ev) {
        self.schedule(self.now.saturating_add(d), ev);
    }

    fn schedule_consent_check(&mut self, ep: Endpoint) {
        let Some(rec) = self.link_mut(ep) else { return };
        if rec.consent_pending {
            return;
        }
        rec.consent_pending = true;
        let d = net::uniform(&mut self.rng, self.net.config.consent_min, self.net.config.consent_max);
        self.after(d, Ev::ConsentCheck { ep });
    }

    fn take_links_of(&mut self, i: usize, incarnation: u32) -> Vec<(Endpoint, LinkRec)> {
        if self.slots[i].incarnation != incarnation {
            return Vec::new();
        }
        self.links[i].take().map(|(link, rec)| (Endpoint { node: i, incarnation, link }, rec)).collect()
    }

    /// The record of an endpoint. Only the current life of a node has records (a crash or the end of a
    /// leave takes them all), so an endpoint of another life has none.
    fn link(&self, ep: Endpoint) -> Option<&LinkRec> {
        self.links.get(ep.node)?.get(ep.incarnation, ep.link)
    }

    fn link_mut(&mut self, ep: Endpoint) -> Option<&mut LinkRec> {
        self.links.get_mut(ep.node)?.get_mut(ep.incarnation, ep.link)
    }

    fn has_link(&self, ep: Endpoint) -> bool {
        self.link(ep).is_some()
    }

    fn insert_link(&mut self, ep: Endpoint, rec: LinkRec) {
        debug_assert_eq!(
            self.slots[ep.node].incarnation, ep.incarnation,
            "a link of an older life of node {}",
            ep.node
        );
        self.links[ep.node].insert(ep.incarnation, ep.link, rec);
    }

    fn remove_link(&mut self, ep: Endpoint) -> Option<LinkRec> {
        self.links.get_mut(ep.node)?.remove(ep.incarnation, ep.link)
    }

    /// Removes the endpoint's record and tells its node the link closed or failed.
    fn end_link(&mut self, ep: Endpoint, event: LinkEvent) {
        if self.remove_link(ep).is_none() {
            return;
        }
        let stats = &mut self.slots[ep.node].stats;
        match event {
            LinkEvent::Failed => stats.link_failures += 1,
            LinkEvent::Closed => stats.link_closed_by_peer += 1,
            LinkEvent::Opened => {}
        }
        self.deliver(ep, |n, now| n.handle_link_event(now, ep.link, event));
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Timer { node, incarnation, generation } => {
                let slot = &mut self.slots[node];
                if slot.incarnation != incarnation || slot.timer_generation != generation {
                    return;
                }
                let Some(mut n) = slot.node.take() else { return };
                slot.timer_at = None;
                n.handle_timeout(self.now);
                self.put_back(node, n, true);
            }
            Ev::LocalDescription { ep, sdp } => {
                if self.has_link(ep) {
                    self.deliver(ep, |n, now| n.handle_local_description(now, ep.link, sdp));
                }
            }
            Ev::Connect { offer, answer } => {
                let ok = match (self.link(offer), self.link(answer)) {
                    (Some(o), Some(a)) => {
                        o.state == State::Opening
                            && a.state == State::Opening
                            && o.peer == Some(answer)
                            && a.peer == Some(offer)
                            && !self.net.partitioned(offer.node, answer.node)
                    }
                    _ => false,
                };
                if ok {
                    self.stats.links_opened += 1;
                    let now = self.now;
                    for ep in [answer, offer] {
                        if let Some(rec) = self.link_mut(ep) {
                            rec.state = State::Open;
                            rec.fifo = now;
                        }
                    }
                    for ep in [answer, offer] {
                        if self.link(ep).is_some_and(|r| r.state == State::Open) {
                            self.deliver(ep, |n, now| n.handle_link_event(now, ep.link, LinkEvent::Opened));
                        }
                    }
                } else {
                    self.stats.link_setups_failed += 1;
                    for ep in [offer, answer] {
                        if self.has_link(ep) {
                            self.after(
                                self.net.config.ice_timeout,
                                Ev::Link { ep, event: LinkEvent::Failed },
                            );
                        }
                    }
                }
            }
            Ev::Link { ep, event } => self.end_link(ep, event),
            Ev::Frame { ep, bytes } => {
                if self.link(ep).is_some_and(|r| r.state == State::Open) {
                    self.stats.frames_delivered += 1;
                    self.slots[ep.node].stats.frames_in += 1;
                    self.record_frame(ep, &bytes);
                    if self.adversaries.contains_key(&ep.node)
                        && self.with_adversary(ep.node, |adv, ctx| adv.on_frame(ctx, ep.link, &bytes))
                            == Some(false)
                    {
                        return; // the attacker swallowed it
                    }
                    self.deliver(ep, |n, now| n.handle_frame(now, ep.link, &bytes));
                } else {
                    self.stats.frames_lost += 1;
                }
            }
            Ev::ConsentCheck { ep } => {
                let Some(rec) = self.link_mut(ep) else { return };
                rec.consent_pending = false;
                let Some(peer) = rec.peer else { return };
                let peer_gone = self.link(peer).is_none_or(|p| p.peer != Some(ep));
                if peer_gone || self.net.partitioned(ep.node, peer.node) {
                    self.stats.consent_failures += 1;
                    self.end_link(ep, LinkEvent::Failed);
                    if self.link(peer).is_some_and(|p| p.peer == Some(ep)) {
                        self.end_link(peer, LinkEvent::Failed);
                    }
                }
            }
            Ev::AnswerWatchdog { ep } => {
                if self.link(ep).is_some_and(|r| r.state == State::Opening && !r.connecting) {
                    self.stats.link_setups_failed += 1;
                    self.end_link(ep, LinkEvent::Failed);
                }
            }
            Ev::BootstrapOffer { request, body } => {
                let Some(server) = self.bootstraps.get(&request).map(|p| p.server) else { return };
                let joiner = self.bootstraps[&request].joiner.node;
                if !self.slots[server].alive || self.slots[server].leaving {
                    let delay = self.net.sample_delay(&mut self.rng, server, joiner);
                    self.after(
                        delay,
                        Ev::BootstrapFail { request, reason: unreachable("connection refused") },
                    );
                    return;
                }
                let Some(mut node) = self.slots[server].node.take() else { return };
                let result = node.handle_bootstrap_offer(self.now, request, &body);
                self.put_back(server, node, false);
                if let Err(e) = result {
                    let delay = self.net.sample_delay(&mut self.rng, server, joiner);
                    let reason = BootstrapError::Refused { kind: (&e).into(), detail: e.to_string() };
                    self.after(delay, Ev::BootstrapFail { request, reason });
                }
            }
            Ev::BootstrapReply { request, body } => {
                let Some(p) = self.bootstraps.remove(&request) else { return };
                let ep = p.joiner;
                if self.has_link(ep) {
                    self.deliver(ep, |n, now| n.handle_bootstrap_answer(now, ep.link, &body));
                }
            }
            Ev::BootstrapFail { request, reason } => {
                let Some(p) = self.bootstraps.remove(&request) else { return };
                self.stats.bootstrap_failures += 1;
                let ep = p.joiner;
                if self.has_link(ep) {
                    self.deliver(ep, |n, now| n.handle_bootstrap_failure(now, ep.link, reason));
                }
            }
            Ev::LeaveFinish { node, incarnation } => {
                if self.slots[node].incarnation != incarnation || !self.slots[node].alive {
                    return;
                }
                self.stop_node(node);
                for (ep, rec) in self.take_links_of(node, incarnation) {
                    self.notify_close(ep, &rec);
                }
                let lost = self
                    .pending_lookups
                    .range((node, incarnation, RequestId(0))..=(node, incarnation, RequestId(u64::MAX)))
                    .count();
                self.stats.lookups_lost += lost as u64;
                self.pending_lookups.retain(|k, _| !(k.0 == node && k.1 == incarnation));
            }
        }
    }
}

impl LinkRec {
    fn new(role: Role, peer: Option<Endpoint>, now: Timestamp) -> Self {
        LinkRec { role, state: State::Opening, peer, fifo: now, consent_pending: false, connecting: false }
    }

    /// An endpoint of a link that is open already (a warm ring's).
    fn open(role: Role, peer: Endpoint, now: Timestamp) -> Self {
        LinkRec {
            role,
            state: State::Open,
            peer: Some(peer),
            fifo: now,
            consent_pending: false,
            connecting: false,
        }
    }
}
