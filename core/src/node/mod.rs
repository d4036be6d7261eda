//! The node: one sans-IO state machine that owns the ring, routing, links and requests.
//!
//! # Run-loop contract
//!
//! The shell feeds inputs, each with the current time:
//! [`Node::handle_frame`], [`Node::handle_link_event`], [`Node::handle_local_description`],
//! [`Node::handle_bootstrap_answer`] / [`Node::handle_bootstrap_offer`], [`Node::handle_pairing_offer`] /
//! [`Node::handle_pairing_answer`], [`Node::handle_timeout`], and API calls ([`Node::lookup`],
//! [`Node::connect_bootstrap`], [`Node::pair_offer`], [`Node::leave`]). After any input it drains
//! [`Node::poll_output`] until that returns [`Output::Timeout`] with the next deadline, carries out every
//! output in order, and calls `handle_timeout` at (or after) that deadline.
//!
//! # What the node does
//!
//! - **Correct Chord** (Zave): a successor list of length r, a predecessor, stabilize (ask the first live
//!   successor for its predecessor and list; adopt the predecessor only once a link to it opened, i.e. it
//!   is live; always notify), rectify (a predecessor whose link died is forgotten; a notify from a node
//!   between the predecessor and us is adopted), fingers `me + 2^i` filled by a sweep in which one lookup
//!   fills every slot up to the owner it finds.
//! - **Links** are bounded by [`Config::link_cap`], of which [`Config::join_slots`] only nodes joining
//!   through this one may use: links to successors and the predecessor are always wanted; fingers take what
//!   the budget leaves; a ring link or a joiner that finds the budget full evicts the link idle longest
//!   among those this node does not need (a peer's `keep` never pins a slot), and an incoming finger offer
//!   is refused. Simultaneous offers between two nodes are resolved by id: the lower id stays the offerer.
//! - **Routing** is greedy over every live link to the closest node preceding the key; each hop is
//!   acknowledged, and an unacknowledged hop is re-sent over the next-best link. A message that cannot make
//!   progress comes back to its origin as a failure.
//!
//! # How it is built
//!
//! [`Node`] is a coordinator. Its state lives in sub-machines, each a struct in its own module that owns
//! its tables, documents what it owns, takes and emits, and knows nothing of the others: the parent hands
//! it the narrow view it needs (a `&Ring`, a `&Links`, the [`Io`] sink) as arguments.
//!
//! | sub-machine | module | owns |
//! |---|---|---|
//! | [`Me`](me::Me) | `me` | session key, delegation, wallet, network tag, the delegation cache; signs envelopes, checks peers |
//! | [`Ring`](ring::Ring) | `ring` | successor list, predecessor, fingers (pure bookkeeping) |
//! | [`Membership`](membership::Membership) | `membership` | joined or not, founder, bootstrap servers and requests, the finger sweep, the rejoin backoff |
//! | [`Links`](links::Links) | `links` | the link table, its peer index, offers routed through the ring, busy and unanswered peers |
//! | [`Router`](router::Router) | `router` | the replay window, frames in flight until acknowledged, reverse paths for replies |
//! | [`Lookups`](lookups::Lookups) | `lookups` | lookups in progress, their attempts and the ids of their messages |
//! | [`Records`](placement::Records) | `placement` | the record store and what was last replicated to whom |
//! | [`App`](app::App) | `app` | app requests (reads, writes, deliveries) and their replies, sends |
//! | [`Accepted`](accepted::Accepted) | `accepted` | per sending session, the messages delivered to the app (each once, across restarts) |
//! | [`Conduct`](conduct::Conduct) | `conduct` | what each link's peer did wrong, and the peers backed off for it |
//! | [`Sessions`](sessions::Sessions) | `sessions` | end-to-end session credentials, the sessions with peers, our handshakes in flight, the receipts being gathered |
//! | [`Flows`](direct::Flows) | `direct` | per destination node, the session frames and bytes sent in the current window (when a direct link is offered) |
//!
//! Every deadline is in one place: the [`TimerTable`] for the node's own timers, and the deadline-ordered
//! tables of [`Router`](router::Router), [`Lookups`](lookups::Lookups) and [`App`](app::App);
//! [`Node::poll_timeout`] is the earliest of them. The glue that makes one sub-machine's result another's
//! input — routing a lookup's message, a link that dropped re-routing its frames — is `impl Node` code in
//! the module of the sub-machine it starts from (`membership.rs`, `maintain.rs` for the link policy,
//! `router.rs`, `lookups.rs`, `app.rs`, `in_session.rs` for messages and receipts in sessions, `placement.rs`,
//! `signal.rs` for link setup, `pairing.rs`).

pub mod accepted;
pub mod api;
mod app;
pub mod conduct;
mod direct;
mod in_session;
mod inspect;
mod keys;
mod links;
mod lookups;
mod maintain;
mod me;
mod membership;
#[cfg(feature = "forge")]
pub mod msg;
#[cfg(not(feature = "forge"))]
mod msg;
mod pairing;
mod placement;
pub mod records;
mod replies;
mod ring;
mod router;
mod sessions;
mod signal;
#[cfg(test)]
mod testing;
mod timer;
#[cfg(feature = "warm-start")]
mod warm;

use std::collections::VecDeque;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub use api::{
    BootstrapError, Counters, Event, FailReason, LinkEvent, LinkId, LinkPurpose, LinkRole, LinkStatus,
    Output, RefusalKind, RequestId, SendOutcome, SessionInfo, Status,
};
pub use app::{ROUTE_CACHE_TTL, ROUTE_CACHE_WALLETS};
pub use conduct::{Offence, PeerConduct};
pub use direct::DirectPolicy;
pub use inspect::{BootstrapState, BootstrapStatus, Inspect, ServerStatus};
pub use membership::MAX_SERVERS;
pub use msg::describe_frame;
pub use pairing::{PairingError, MAX_PAIRINGS, PAIRING_TIMEOUT};

/// [`Config::clock_skew`] by default: the clock difference between nodes that is accepted.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(120);

use crate::crypto::CryptoRef;
use crate::id::Id;
use crate::identity::delegation::{Delegation, DelegationCache, DelegationError};
use crate::identity::{Address, SessionKey};
use crate::time::Timestamp;
use crate::wire::envelope::{self, DecodeError, Received};
use app::App;
use links::{LinkKind, LinkState, Links};
use lookups::Lookups;
use me::Me;
use membership::Membership;
use msg::{LinkMsg, RingMsg, Routed};
use placement::Records;
use ring::Ring;
use router::Router;
use timer::{Timer, TimerTable};

/// Tunables. [`Config::new`] gives defaults fit for browsers and servers alike.
#[derive(Clone, Debug)]
pub struct Config {
    /// Network name; bound into delegations and envelopes.
    pub network: String,
    /// Successor list length r.
    pub successors: usize,
    /// At most this many distinct fingers get links.
    pub max_fingers: usize,
    /// Room for links other nodes open to this one beyond its ring neighbours and fingers (their fingers,
    /// nodes that join through it).
    pub spare_links: usize,
    /// Slots beyond the ring's budget that only nodes joining through this one (an HTTP bootstrap or a
    /// pairing) may use, so that ring traffic can never take every slot a joining browser needs.
    pub join_slots: usize,
    /// How often to stabilize (and advance the finger sweep by one lookup).
    pub stabilize_interval: Duration,
    /// A full finger sweep (one lookup per stabilize tick) starts at most this often.
    pub finger_refresh_interval: Duration,
    /// How often an idle link that we need is pinged.
    pub ping_interval: Duration,
    /// A link with no frame for this long is dead.
    pub link_timeout: Duration,
    /// A link that has not opened after this long is given up.
    pub link_setup_timeout: Duration,
    /// A link nobody needs is closed after this long.
    pub idle_link_grace: Duration,
    /// Total time a lookup may take, retries included.
    pub request_timeout: Duration,
    /// Attempts per lookup within `request_timeout`.
    pub request_attempts: u8,
    /// Hop limit for routed messages.
    pub hop_limit: u8,
    /// Accepted clock difference between nodes.
    pub clock_skew: Duration,
    /// How often (± half, at random) a joined node asks a bootstrap server who its successor should be,
    /// so that rings split by a partition find each other again after it heals.
    pub merge_interval: Duration,
    /// How long a presence record counts as live; it is refreshed at half this. At most
    /// [`records::MAX_PRESENCE_TTL`] (longer is clamped: peers refuse longer records).
    pub presence_ttl: Duration,
    /// The record store's byte budget: a write that would exceed it is refused with `Full`
    /// ([`records::BROWSER_STORE_BYTES`] by default; servers use [`records::SERVER_STORE_BYTES`] or their
    /// own setting).
    pub store_bytes: usize,
    /// Message ids the replay window remembers at most (ids of messages this node sent or accepted, for
    /// their lifetime); when it is full the soonest to lapse are forgotten first (`wire::replay`).
    pub replay_capacity: usize,
    /// Sending sessions whose accepted messages are remembered ([`accepted::SESSIONS`] by default); a new
    /// one in a full table evicts the one heard from longest ago (`node::accepted`).
    pub accepted_sessions: usize,
    /// How long a send to a wallet reuses the presence read of an earlier send to it (the route cache,
    /// `app.rs`): at most this long, never past the records' own expiry, and not after a delivery through it
    /// failed. `Duration::ZERO` reads the wallet's presence for every send.
    pub route_cache_ttl: Duration,
    /// When a sustained flow of messages to one node opens a direct link to it (`direct.rs`);
    /// `max_links: 0` turns direct links off.
    pub direct: DirectPolicy,
    /// Seed of the node's RNG (message ids, nonces).
    pub seed: [u8; 32],
    /// The signature primitives ([`crate::crypto::REAL`] unless a simulator chooses otherwise).
    pub crypto: CryptoRef,
}

impl Config {
    /// Defaults for `network`, with the RNG seeded from `seed` (the shell draws it from the OS).
    pub fn new(network: &str, seed: [u8; 32]) -> Config {
        Config {
            network: network.to_string(),
            successors: 4,
            max_fingers: 12,
            spare_links: 4,
            join_slots: 2,
            stabilize_interval: Duration::from_secs(1),
            finger_refresh_interval: Duration::from_secs(30),
            ping_interval: Duration::from_millis(1500),
            link_timeout: Duration::from_millis(4500),
            link_setup_timeout: Duration::from_secs(15),
            idle_link_grace: Duration::from_secs(10),
            request_timeout: Duration::from_secs(8),
            request_attempts: 4,
            hop_limit: envelope::DEFAULT_HOP_LIMIT,
            clock_skew: DEFAULT_CLOCK_SKEW,
            merge_interval: Duration::from_secs(120),
            presence_ttl: Duration::from_secs(600),
            store_bytes: records::BROWSER_STORE_BYTES,
            replay_capacity: router::REPLAY_CAPACITY,
            accepted_sessions: accepted::SESSIONS,
            route_cache_ttl: app::ROUTE_CACHE_TTL,
            direct: DirectPolicy::default(),
            seed,
            crypto: &crate::crypto::REAL,
        }
    }

    /// The most links this node ever has, open or opening: r + 1 + F + spare + join slots.
    pub fn link_cap(&self) -> usize {
        self.ring_link_cap() + self.join_slots
    }

    /// The most links this node has other than those of nodes joining through it: r + 1 + F + spare.
    pub fn ring_link_cap(&self) -> usize {
        self.successors + 1 + self.max_fingers + self.spare_links
    }
}

/// Why a node could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The node's own delegation does not verify for its session key and network at `now`.
    #[error("own delegation invalid: {0}")]
    Delegation(#[from] DelegationError),
}

/// Why a bootstrap offer (an HTTP `/v1/signal` body) was refused. Each maps to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The body is not a valid signed envelope (400).
    #[error("malformed offer: {0}")]
    Malformed(#[from] DecodeError),
    /// The envelope is valid but is not a bootstrap offer (400).
    #[error("not a bootstrap offer")]
    NotAnOffer,
    /// The offer repeats an earlier one, or its timestamp is outside the accepted window (400).
    #[error("replayed or stale offer")]
    Replay,
    /// The offerer's delegation does not verify (403).
    #[error("unauthorized: {0}")]
    Unauthorized(DelegationError),
    /// The link budget is full (503).
    #[error("busy")]
    Busy,
}

/// Delay between `leave` and closing every link (lets the Leave messages go out).
const LEAVE_GRACE: Duration = Duration::from_millis(500);

/// Where everything the node tells its shell goes: the output queue, and the counters every sub-machine
/// adds to.
#[derive(Debug, Default)]
pub(crate) struct Io {
    outputs: VecDeque<Output>,
    pub(crate) counters: Counters,
}

impl Io {
    /// Queues an output for [`Node::poll_output`].
    pub(crate) fn push(&mut self, output: Output) {
        self.outputs.push_back(output);
    }

    /// Queues an event for the application.
    pub(crate) fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }
}

/// The Chordial node. See the [module docs](self).
pub struct Node {
    config: Config,
    me: Me,
    rng: ChaCha20Rng,
    io: Io,
    timers: TimerTable,
    ring: Ring,
    membership: Membership,
    links: Links,
    router: Router,
    lookups: Lookups,
    records: Records,
    app: App,
    accepted: accepted::Accepted,
    conduct: conduct::Conduct,
    sessions: sessions::Sessions,
    flows: direct::Flows,
    next_request: u64,
}

impl Node {
    /// A node for `session`, authorised by `delegation` (checked now). It starts alone — a ring of one —
    /// until [`Node::connect_bootstrap`] joins it to others.
    pub fn new(
        config: Config,
        session: SessionKey,
        delegation: Delegation,
        now: Timestamp,
    ) -> Result<Node, NodeError> {
        let session = session.with_crypto(config.crypto);
        let mut cache = DelegationCache::with_crypto(4096, config.crypto);
        let verified = cache.verify(&delegation, &config.network, now)?;
        if verified.session != *session.public() {
            return Err(NodeError::Delegation(DelegationError::WrongSession));
        }
        let id = session.node_id();
        let mut timers = TimerTable::default();
        timers.set(Timer::Maintain, now);
        timers.set(Timer::Stabilize, now);
        timers.set(Timer::Records, now);
        timers.set(Timer::Rehome, now);
        timers.set(Timer::Merge, now.saturating_add(config.merge_interval));
        timers.set(Timer::FingerSweep, now);
        let credentials = crate::e2e::session::Credentials::new(&session, delegation.clone());
        Ok(Node {
            sessions: sessions::Sessions::new(credentials),
            me: Me::new(session, delegation, &verified, &config.network, cache),
            rng: ChaCha20Rng::from_seed(config.seed),
            io: Io::default(),
            timers,
            ring: Ring::new(id, config.successors, config.max_fingers),
            membership: Membership::default(),
            links: Links::default(),
            router: Router::new(config.replay_capacity, config.clock_skew),
            lookups: Lookups::default(),
            records: Records::with_budget(config.store_bytes),
            app: App::default(),
            accepted: accepted::Accepted::new(config.accepted_sessions, config.clock_skew),
            conduct: conduct::Conduct::default(),
            flows: direct::Flows::default(),
            next_request: 0,
            config,
        })
    }

    /// Keeps records in `store` instead of memory (the server's database). Call before the node joins:
    /// whatever the store already holds (records acknowledged before a restart) is served and replicated
    /// like records received now. The store is given the node's byte budget
    /// ([`records::RecordStore::set_budget`]), and what lapsed is purged at the node's first tick (the
    /// [`Timer::Records`] it arms at once) — a store opened from disk should also skip records whose
    /// [`records::Record::keep_until`] has passed as it loads them.
    pub fn with_store(mut self, mut store: Box<dyn records::RecordStore + Send>) -> Node {
        store.set_budget(self.config.store_bytes);
        self.records.store = store;
        self
    }

    /// Keeps what this node accepted from each sending session in `store` (the server's database, a
    /// browser's IndexedDB), so that no message reaches the app twice across a restart. Call before the
    /// node handles any input; `now` is the time of the call. A row the store cannot read (another version,
    /// damage) is dropped and nothing dated before `now` plus the clock skew is accepted from a session
    /// without a row; returns how many rows that was (`node::accepted`).
    pub fn with_accepted_store(
        &mut self,
        now: Timestamp,
        store: Box<dyn accepted::AcceptedStore + Send>,
    ) -> usize {
        self.accepted.set_store(now, store)
    }

    /// This node's id (`sha1` of its session public key).
    pub fn id(&self) -> Id {
        self.ring.me()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The wallet this node acts for.
    pub fn wallet(&self) -> Address {
        self.me.wallet
    }

    /// A read-only view of the node, for status pages, metrics and tests.
    pub fn inspect(&self) -> Inspect<'_> {
        Inspect::new(self)
    }

    /// The next thing for the shell to do; [`Output::Timeout`] when there is nothing more for now.
    pub fn poll_output(&mut self) -> Output {
        match self.io.outputs.pop_front() {
            Some(out) => out,
            None => Output::Timeout(self.poll_timeout()),
        }
    }

    /// When the node next wants [`Node::handle_timeout`]: the earliest of its timer table and of the
    /// deadlines of its lookups, frames in flight and app requests. `None` once it has left.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.membership.leaving {
            // A leaving node only waits to close its links; after that it has nothing to do.
            return self.timers.get(Timer::Leave);
        }
        [
            self.timers.earliest(),
            self.lookups.poll_timeout(),
            self.router.poll_timeout(),
            self.app.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---------------------------------------------------------------------------------------------
    // API
    // ---------------------------------------------------------------------------------------------

    /// Finds the node that owns `key`. Resolves with [`Event::LookupDone`] or [`Event::RequestFailed`].
    pub fn lookup(&mut self, now: Timestamp, key: Id) -> RequestId {
        let request = self.new_request();
        self.start_lookup(now, key, lookups::LookupFor::User(request));
        request
    }

    /// Leaves the ring gracefully: withdraws this session's presence, hands every record to the first
    /// live successor, tells the predecessor and successors, then closes every link.
    ///
    /// The order matters: a neighbour drops its link to us as soon as it reads `Leave`, and links are
    /// ordered, so whatever we send it after `Leave` is lost. The withdrawal and the handoff go first.
    pub fn leave(&mut self, now: Timestamp) {
        if self.membership.leaving {
            return;
        }
        if self.membership.joined {
            self.publish_presence(now, true);
        }
        self.hand_over_all();
        // What we received goes acknowledged before the links close.
        self.flush_acks(now, true);
        let msg = LinkMsg::Leave {
            predecessor: self.ring.predecessor(),
            successors: self.ring.successors().to_vec(),
        };
        let frame = msg::link_frame(&msg);
        let mut peers: Vec<Id> = self.ring.successors().to_vec();
        peers.extend(self.ring.predecessor());
        for peer in peers {
            if let Some(link) = self.links.open_to(peer) {
                self.links.transmit(&mut self.io, link, frame.clone());
            }
        }
        self.membership.leaving = true;
        self.timers.set(Timer::Leave, now.saturating_add(LEAVE_GRACE));
    }

    // ---------------------------------------------------------------------------------------------
    // Inputs from the shell
    // ---------------------------------------------------------------------------------------------

    /// A link changed state in the shell.
    pub fn handle_link_event(&mut self, now: Timestamp, link_id: LinkId, event: LinkEvent) {
        match event {
            LinkEvent::Opened => {
                let Some(link) = self.links.get_mut(link_id) else {
                    // We already gave up on it: tell the shell again to close it.
                    self.io.push(Output::CloseLink { link: link_id });
                    return;
                };
                link.state = LinkState::Open;
                link.last_recv = now;
                let (peer, kind) = (link.peer, link.kind.clone());
                if let Some(peer) = peer {
                    self.links.unanswered.remove(&peer);
                }
                if let (LinkKind::ToSuccessor { via }, Some(p)) = (&kind, peer) {
                    self.successor_link_opened(now, p, link_id, via.is_some());
                }
                match kind {
                    LinkKind::Pairing { .. } => self.pairing_opened(now, link_id),
                    LinkKind::ToServer { .. } if !self.membership.joined => self.start_join(now),
                    LinkKind::ToServer { merge_check: true, .. } => self.start_merge_check(now, link_id),
                    LinkKind::ToServer { merge_check: false, .. }
                    | LinkKind::ToSuccessor { .. }
                    | LinkKind::ToFinger
                    | LinkKind::ToDirect
                    | LinkKind::From(_) => {}
                }
                self.update_membership(now);
            }
            LinkEvent::Closed | LinkEvent::Failed => {
                let unmade_direct =
                    self.links.get(link_id).is_some_and(|l| l.kind == LinkKind::ToDirect && !l.is_open());
                if unmade_direct {
                    self.direct_failed(now, link_id, false);
                } else {
                    self.drop_link(now, link_id, false);
                }
            }
        }
    }

    /// A frame arrived on a link.
    pub fn handle_frame(&mut self, now: Timestamp, link_id: LinkId, bytes: &[u8]) {
        self.take_frame(now, link_id, bytes);
        // Held-back acknowledgements whose delay is up go now rather than at a wakeup of their own.
        if self.links.acks_due.is_some_and(|at| at <= now) {
            self.flush_acks(now, false);
        }
    }

    fn take_frame(&mut self, now: Timestamp, link_id: LinkId, bytes: &[u8]) {
        let Some(link) = self.links.get_mut(link_id) else { return };
        if !link.is_open() {
            // Some transports deliver before the open event; treat the first frame as the open.
            if link.state == LinkState::Connecting {
                self.handle_link_event(now, link_id, LinkEvent::Opened);
            } else {
                self.io.counters.dropped_invalid += 1;
                return;
            }
        }
        let Some(link) = self.links.get_mut(link_id) else { return };
        link.last_recv = now;
        link.bytes_in += bytes.len() as u64;
        self.io.counters.frames_in += 1;
        self.io.counters.bytes_in += bytes.len() as u64;
        // A frame of no known kind, or a link message that does not decode, is the link's peer's own doing.
        let Some((&kind, rest)) = bytes.split_first() else {
            self.io.counters.dropped_invalid += 1;
            self.charge_link(now, link_id, Offence::InvalidFrame);
            return;
        };
        match kind {
            msg::KIND_LINK => match msg::decode_link(rest) {
                Some(m) => self.handle_link_msg(now, link_id, m),
                None => {
                    self.io.counters.dropped_invalid += 1;
                    self.charge_link(now, link_id, Offence::InvalidFrame);
                }
            },
            _ => match msg::decode_routed(kind, rest) {
                Some(frame) => self.handle_routed_frame(now, link_id, frame),
                None => {
                    self.io.counters.dropped_invalid += 1;
                    self.charge_link(now, link_id, Offence::InvalidFrame);
                }
            },
        }
    }

    /// Time passed; run whatever is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.membership.leaving {
            if self.timers.is_due(Timer::Leave, now) {
                for id in self.links.ids() {
                    self.drop_link(now, id, true);
                }
                self.timers.stop(Timer::Leave);
                self.io.emit(Event::Left);
            }
            return;
        }
        if self.timers.is_due(Timer::Maintain, now) {
            self.timers.set(Timer::Maintain, now.saturating_add(self.config.ping_interval / 2));
            self.maintain_links(now);
            self.conduct_tick(now);
        }
        if self.timers.is_due(Timer::Merge, now) {
            self.check_merge(now);
        }
        if self.timers.is_due(Timer::Rejoin, now) {
            self.rejoin(now);
        }
        if self.timers.is_due(Timer::FingerSweep, now) {
            self.start_finger_sweep(now);
        }
        if self.timers.is_due(Timer::Stabilize, now) {
            self.timers.set(Timer::Stabilize, now.saturating_add(self.config.stabilize_interval));
            self.stabilize(now);
            self.fix_next_finger(now);
        }
        if self.timers.is_due(Timer::Acks, now) || self.links.acks_due.is_some_and(|at| at <= now) {
            self.flush_acks(now, false);
        }
        if self.timers.is_due(Timer::Receipts, now) {
            self.flush_receipts(now);
        }
        self.check_lookups(now);
        self.app_tick(now);
        self.check_in_flight(now);
        self.router.expire_reverse(now);
    }

    // ---------------------------------------------------------------------------------------------
    // Local delivery
    // ---------------------------------------------------------------------------------------------

    /// A routed message for this node: the ring's bodies go to link setup and lookups, the app's to the app.
    fn deliver(&mut self, now: Timestamp, received: Received<Routed>) {
        let Received { origin, hops, header, body } = received;
        // Its signature verified: this is the key offers to its node are sealed to (`keys.rs`).
        if origin != *self.me.session.public() {
            self.links.keys.learn(&origin);
        }
        match body {
            Routed::Ring(body) => self.handle_ring(now, Received { origin, hops, header, body }),
            Routed::App(body) => self.handle_app(now, Received { origin, hops, header, body }),
        }
    }

    /// Handles the ring part of a routed message delivered here.
    fn handle_ring(&mut self, now: Timestamp, received: Received<RingMsg>) {
        let Received { origin, hops, header, body } = received;
        match body {
            RingMsg::FindSuccessor => self.answer_find_successor(now, origin.node_id(), header.id, hops),
            RingMsg::FoundSuccessor { hops: there } => {
                self.found_successor(now, origin.node_id(), header.reply_to, there, hops)
            }
            // In the clear only over HTTP or by pairing; through the ring, offers and answers are sealed.
            RingMsg::ConnectOffer { .. } | RingMsg::ConnectAnswer { .. } => {
                self.io.counters.dropped_invalid += 1;
                self.charge_origin(now, origin.node_id(), Offence::InvalidFrame);
            }
            RingMsg::SealedOffer { link, sealed } => {
                self.handle_sealed_offer(now, &origin, header.id, link, &sealed)
            }
            RingMsg::SealedAnswer { link, sealed } => self.handle_sealed_answer(now, &origin, link, &sealed),
            RingMsg::ConnectReject { link, reason, alternatives } => {
                self.handle_connect_reject(now, &origin, link, reason, alternatives)
            }
            RingMsg::Undeliverable { reason } => {
                if let Some(failed) = header.reply_to {
                    self.undeliverable_notice(now, origin.node_id(), failed, reason);
                }
            }
        }
    }

    fn new_request(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id())
            .field("successors", &self.ring.successors())
            .field("predecessor", &self.ring.predecessor())
            .field("links", &self.links.len())
            .finish_non_exhaustive()
    }
}

// Small helpers every sub-machine's glue uses.
impl Node {
    /// Signs `body` in an envelope from this node (see [`Me::encode`]).
    fn encode(
        &mut self,
        now: Timestamp,
        dest: crate::wire::envelope::Destination,
        reply_to: Option<crate::wire::envelope::MessageId>,
        body: &Routed,
    ) -> Option<(crate::wire::envelope::Header, Vec<u8>)> {
        self.me.encode(&mut self.rng, self.config.hop_limit, now, dest, reply_to, body)
    }

    /// Checks a peer's delegation (see [`Me::verify_peer`]). One that can never verify is charged to its
    /// signer if the frame came straight from it ([`Node::charge_origin`]).
    fn verify_peer(
        &mut self,
        delegation: &Delegation,
        signer: &crate::identity::SessionPublicKey,
        now: Timestamp,
    ) -> Result<(), DelegationError> {
        let result =
            self.me.verify_peer(&self.config.network, &mut self.io.counters, delegation, signer, now);
        if let Err(e) = result {
            if !matches!(e, DelegationError::Expired | DelegationError::NotYetValid) {
                self.charge_origin(now, signer.node_id(), Offence::InvalidDelegation);
            }
        }
        result
    }

    /// Sends a frame on a link (see [`Links::transmit`]).
    fn transmit(&mut self, link: LinkId, bytes: Vec<u8>) {
        self.links.transmit(&mut self.io, link, bytes);
    }
}
