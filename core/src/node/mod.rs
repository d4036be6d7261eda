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
//! - **Links** are bounded by [`Config::link_cap`]: links to successors and the predecessor are always
//!   wanted; fingers take what the budget leaves; incoming offers beyond the cap are refused (or, for a
//!   ring link, a finger link is evicted). Simultaneous offers between two nodes are resolved by id: the
//!   lower id stays the offerer.
//! - **Routing** is greedy over every live link to the closest node preceding the key; each hop is
//!   acknowledged, and an unacknowledged hop is re-sent over the next-best link. A message that cannot make
//!   progress comes back to its origin as a failure.

pub mod api;
mod app;
mod links;
mod maintain;
mod msg;
mod pairing;
pub mod records;
mod ring;
mod routing;
mod timer;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub use api::{
    BootstrapError, Counters, Event, FailReason, LinkEvent, LinkId, LinkPurpose, LinkRole, LinkStatus,
    Output, RefusalKind, RequestId, SendOutcome, SessionInfo, Status,
};
pub use msg::describe_frame;
pub use pairing::{PairingError, MAX_PAIRINGS, PAIRING_TIMEOUT, PAIRING_URL};

use crate::crypto::CryptoRef;
use crate::id::{Id, ID_BITS};
use crate::identity::delegation::{Delegation, DelegationCache, DelegationError};
use crate::identity::{Address, SessionKey, SessionPublicKey};
use crate::time::Timestamp;
use crate::wire::envelope::{self, DecodeError, Destination, Header, MessageId, NetworkTag, Received};
use crate::wire::replay::ReplayWindow;
use links::{AnswerPath, Link, LinkState, Links};
use msg::{AppMsg, LinkMsg, RejectReason, RingMsg, Routed, Undeliverable};
use ring::Ring;
use timer::{Deadline, Timed, Timer, TimerTable};

/// Tunables. [`Config::new`] gives defaults fit for browsers and servers alike.
#[derive(Clone, Debug)]
pub struct Config {
    /// Network name; bound into delegations and envelopes.
    pub network: String,
    /// Successor list length r.
    pub successors: usize,
    /// At most this many distinct fingers get links.
    pub max_fingers: usize,
    /// At most this many short-lived direct links.
    pub direct_pool: usize,
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
    /// How long a presence record counts as live; it is refreshed at half this.
    pub presence_ttl: Duration,
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
            direct_pool: 4,
            stabilize_interval: Duration::from_secs(1),
            finger_refresh_interval: Duration::from_secs(30),
            ping_interval: Duration::from_millis(1500),
            link_timeout: Duration::from_millis(4500),
            link_setup_timeout: Duration::from_secs(15),
            idle_link_grace: Duration::from_secs(10),
            request_timeout: Duration::from_secs(8),
            request_attempts: 4,
            hop_limit: envelope::DEFAULT_HOP_LIMIT,
            clock_skew: Duration::from_secs(120),
            merge_interval: Duration::from_secs(120),
            presence_ttl: Duration::from_secs(600),
            seed,
            crypto: &crate::crypto::REAL,
        }
    }

    /// The most links this node ever has, open or opening: r + 1 + F + direct pool.
    pub fn link_cap(&self) -> usize {
        self.successors + 1 + self.max_fingers + self.direct_pool
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

/// Capacity of the replay window (message ids remembered).
const REPLAY_CAPACITY: usize = 1 << 16;
/// How long routed message ids are remembered.
const REPLAY_LIFETIME: Duration = Duration::from_secs(300);
/// Reverse-path entries kept for replies.
const REVERSE_CAPACITY: usize = 8192;
const REVERSE_LIFETIME: Duration = Duration::from_secs(60);
/// Forwarded frames kept for re-sending until acknowledged.
const IN_FLIGHT_CAPACITY: usize = 1024;
const IN_FLIGHT_BYTES: usize = 16 << 20;
/// Links being set up at once (per node) for ring maintenance.
const MAX_PENDING_LINKS: usize = 6;
/// Do not route over a link that failed to acknowledge for this long.
const SUSPECT_TIME: Duration = Duration::from_secs(3);
/// After a refusal, do not ask the same node for a finger link for this long.
const BUSY_BACKOFF: Duration = Duration::from_secs(60);
/// Links kept free for ring neighbours when opening finger links.
const RING_HEADROOM: usize = 2;
/// First and longest pause between re-bootstrap attempts of a stranded node.
const REJOIN_MIN: Duration = Duration::from_secs(2);
const REJOIN_MAX: Duration = Duration::from_secs(60);
/// Message digests remembered to deliver each message once.
const SEEN_CAPACITY: usize = 65_536;
/// An offer routed through the ring that has no answer after this long was lost (the target crashed or
/// restarted meanwhile): the link is dropped, and the next stabilize offers again.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Delay between `leave` and closing every link (lets the Leave messages go out).
const LEAVE_GRACE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LookupFor {
    User(RequestId),
    Join,
    Finger(usize),
    /// Through this (bootstrap) link: does the server's ring know a nearer successor?
    Merge(LinkId),
}

#[derive(Debug)]
struct Lookup {
    key: Id,
    purpose: LookupFor,
    deadline: Timestamp,
    next_attempt: Timestamp,
    attempts: u8,
    msg_ids: Vec<MessageId>,
}

impl Deadline for Lookup {
    /// The next attempt or the final deadline, whichever comes first.
    fn deadline(&self) -> Timestamp {
        self.deadline.min(self.next_attempt)
    }
}

#[derive(Debug)]
struct InFlight {
    /// The envelope (without kind byte).
    envelope: Vec<u8>,
    header: Header,
    origin: Id,
    hops: u8,
    owner_hint: bool,
    tried: Vec<LinkId>,
    deadline: Timestamp,
}

impl Deadline for InFlight {
    /// When the hop is overdue unacknowledged.
    fn deadline(&self) -> Timestamp {
        self.deadline
    }
}

/// Where a routed message goes next.
enum Hop {
    Local,
    Forward { link: LinkId, owner_hint: bool },
    Fail(Undeliverable),
}

/// The Chordial node. See the [module docs](self).
pub struct Node {
    config: Config,
    session: SessionKey,
    delegation: Delegation,
    network: NetworkTag,
    rng: ChaCha20Rng,
    ring: Ring,
    links: Links,
    cache: DelegationCache,
    replay: ReplayWindow,
    outputs: VecDeque<Output>,
    lookups: Timed<u64, Lookup>,
    lookup_by_msg: HashMap<MessageId, u64>,
    next_lookup: u64,
    next_request: u64,
    /// Offers we sent through the ring, to match failures back to the link.
    offers: BTreeMap<MessageId, LinkId>,
    bootstraps: BTreeMap<LinkId, RequestId>,
    in_flight: Timed<MessageId, InFlight>,
    in_flight_bytes: usize,
    reverse: HashMap<MessageId, (LinkId, Timestamp)>,
    reverse_order: VecDeque<(Timestamp, MessageId)>,
    busy: HashMap<Id, Timestamp>,
    /// Consecutive unanswered offers per peer.
    unanswered: HashMap<Id, u8>,
    finger_cursor: usize,
    founder: bool,
    joined: bool,
    /// Has been a ring member since it started (a node that lost every successor knows the ring's
    /// direction from its links; a joining one does not).
    was_joined: bool,
    /// `leave` was called; [`Timer::Leave`] closes the links, then the node has left.
    leaving: bool,
    /// Bootstrap servers used, with their node ids once known.
    bootstrap_urls: Vec<(String, Option<Id>)>,
    rejoin_backoff: Duration,
    timers: TimerTable,
    counters: Counters,
    // The app layer (see app.rs).
    wallet: Address,
    delegation_expires: Timestamp,
    store: Box<dyn records::RecordStore + Send>,
    ops: Timed<u64, app::AppOp>,
    op_by_msg: HashMap<MessageId, u64>,
    next_op: u64,
    sends: BTreeMap<u64, app::SendOp>,
    next_send: u64,
    seq: u64,
    seen: HashSet<[u8; 16]>,
    seen_order: VecDeque<[u8; 16]>,
    synced: (Option<Id>, Vec<Id>),
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
        Ok(Node {
            wallet: verified.wallet,
            delegation_expires: verified.expires,
            store: Box::new(records::MemoryStore::default()),
            ops: Timed::default(),
            op_by_msg: HashMap::new(),
            next_op: 0,
            sends: BTreeMap::new(),
            next_send: 0,
            seq: 0,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            synced: (None, Vec::new()),
            network: NetworkTag::from_name(&config.network),
            rng: ChaCha20Rng::from_seed(config.seed),
            ring: Ring::new(id, config.successors),
            links: Links::default(),
            cache,
            replay: ReplayWindow::new(REPLAY_CAPACITY, REPLAY_LIFETIME, config.clock_skew),
            outputs: VecDeque::new(),
            lookups: Timed::default(),
            lookup_by_msg: HashMap::new(),
            next_lookup: 0,
            next_request: 0,
            offers: BTreeMap::new(),
            bootstraps: BTreeMap::new(),
            in_flight: Timed::default(),
            in_flight_bytes: 0,
            reverse: HashMap::new(),
            reverse_order: VecDeque::new(),
            busy: HashMap::new(),
            unanswered: HashMap::new(),
            finger_cursor: 0,
            founder: true,
            joined: false,
            was_joined: false,
            leaving: false,
            bootstrap_urls: Vec::new(),
            rejoin_backoff: REJOIN_MIN,
            timers: {
                let mut timers = TimerTable::default();
                timers.set(Timer::Maintain, now);
                timers.set(Timer::Stabilize, now);
                timers.set(Timer::Records, now);
                timers.set(Timer::Rehome, now);
                timers.set(Timer::Merge, now.saturating_add(config.merge_interval));
                timers.set(Timer::FingerSweep, now);
                timers
            },
            counters: Counters::default(),
            config,
            session,
            delegation,
        })
    }

    /// Keeps records in `store` instead of memory (the server's database). Call before the node joins:
    /// whatever the store already holds (records acknowledged before a restart) is served and replicated
    /// like records received now.
    pub fn with_store(mut self, store: Box<dyn records::RecordStore + Send>) -> Node {
        self.store = store;
        self
    }

    /// This node's id (`sha1` of its session public key).
    pub fn id(&self) -> Id {
        self.ring.me()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Successor list, nearest first.
    pub fn successors(&self) -> &[Id] {
        self.ring.successors()
    }

    /// The predecessor, if known.
    pub fn predecessor(&self) -> Option<Id> {
        self.ring.predecessor()
    }

    /// Links open or being set up.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Whether the node is part of a ring (a founder alone counts).
    pub fn is_joined(&self) -> bool {
        self.joined || (self.founder && self.links.len() == 0)
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A snapshot for status pages.
    pub fn status(&self) -> Status {
        let links = self
            .links
            .iter()
            .map(|(id, l)| api::LinkStatus {
                link: id,
                peer: l.peer,
                open: l.is_open(),
                roles: self.roles_of(id, l).into_iter().map(str::to_string).collect(),
                rtt: l.rtt,
                bytes_in: l.bytes_in,
                bytes_out: l.bytes_out,
            })
            .collect();
        Status {
            node_id: self.id(),
            successors: self.ring.successors().to_vec(),
            predecessor: self.ring.predecessor(),
            fingers: self.ring.distinct_fingers(),
            links,
            counters: self.counters.clone(),
        }
    }

    /// The next thing for the shell to do; [`Output::Timeout`] when there is nothing more for now.
    pub fn poll_output(&mut self) -> Output {
        match self.outputs.pop_front() {
            Some(out) => out,
            None => Output::Timeout(self.poll_timeout()),
        }
    }

    /// When the node next wants [`Node::handle_timeout`]: the earliest of its timer table and of the
    /// deadlines of its lookups, frames in flight and app requests. `None` once it has left.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.leaving {
            // A leaving node only waits to close its links; after that it has nothing to do.
            return self.timers.get(Timer::Leave);
        }
        [self.timers.earliest(), self.lookups.earliest(), self.in_flight.earliest(), self.ops.earliest()]
            .into_iter()
            .flatten()
            .min()
    }

    // ---------------------------------------------------------------------------------------------
    // API
    // ---------------------------------------------------------------------------------------------

    /// Joins the ring through the bootstrap server at `url`: asks the shell for an offer, which then goes
    /// out as [`Output::BootstrapOffer`]. The request completes with [`Event::Membership`] or fails.
    pub fn connect_bootstrap(&mut self, now: Timestamp, url: &str) -> RequestId {
        let request = self.new_request();
        self.founder = false;
        if !self.bootstrap_urls.iter().any(|(u, _)| u == url) {
            self.bootstrap_urls.push((url.to_string(), None));
        }
        let id = self.open_bootstrap_link(now, url, false);
        self.bootstraps.insert(id, request);
        request
    }

    fn open_bootstrap_link(&mut self, now: Timestamp, url: &str, merge_check: bool) -> LinkId {
        let mut link = Link::new(now, None, LinkPurpose::Bootstrap, true);
        link.bootstrap_url = Some(url.to_string());
        link.merge_check = merge_check;
        let id = self.links.insert(link);
        self.open_link_output(id, LinkRole::Offer);
        id
    }

    /// Finds the node that owns `key`. Resolves with [`Event::LookupDone`] or [`Event::RequestFailed`].
    pub fn lookup(&mut self, now: Timestamp, key: Id) -> RequestId {
        let request = self.new_request();
        self.start_lookup(now, key, LookupFor::User(request));
        request
    }

    /// Leaves the ring gracefully: withdraws this session's presence, hands every record to the first
    /// live successor, tells the predecessor and successors, then closes every link.
    ///
    /// The order matters: a neighbour drops its link to us as soon as it reads `Leave`, and links are
    /// ordered, so whatever we send it after `Leave` is lost. The withdrawal and the handoff go first.
    pub fn leave(&mut self, now: Timestamp) {
        if self.leaving {
            return;
        }
        if self.joined {
            self.publish_presence(now, true);
        }
        self.hand_over_all();
        let msg = LinkMsg::Leave {
            predecessor: self.ring.predecessor(),
            successors: self.ring.successors().to_vec(),
        };
        let frame = msg::link_frame(&msg);
        let mut peers: Vec<Id> = self.ring.successors().to_vec();
        peers.extend(self.ring.predecessor());
        for peer in peers {
            if let Some(link) = self.links.open_to(peer) {
                self.transmit(link, frame.clone());
            }
        }
        self.leaving = true;
        self.timers.set(Timer::Leave, now.saturating_add(LEAVE_GRACE));
    }

    // ---------------------------------------------------------------------------------------------
    // Inputs from the shell
    // ---------------------------------------------------------------------------------------------

    /// The shell's peer connection produced its complete local description (offer or answer).
    pub fn handle_local_description(&mut self, now: Timestamp, link_id: LinkId, sdp: String) {
        let Some(link) = self.links.get_mut(link_id) else { return };
        match link.state {
            LinkState::MakingOffer => {
                link.state = LinkState::AwaitingAnswer;
                link.offered_at = now;
                let purpose = link.purpose;
                let peer = link.peer;
                let body = Routed::Ring(RingMsg::ConnectOffer {
                    link: link_id.0,
                    purpose,
                    sdp,
                    delegation: self.delegation.clone(),
                });
                if let Some(url) = link.bootstrap_url.clone() {
                    let pairing = link.pairing;
                    match self.encode(now, Destination::Neighbor, None, &body) {
                        Some((header, offer)) => {
                            if pairing {
                                // The answer names this id (see pairing.rs).
                                if let Some(l) = self.links.get_mut(link_id) {
                                    l.pairing_offer = Some(header.id);
                                }
                            }
                            self.outputs.push_back(Output::BootstrapOffer { link: link_id, url, offer })
                        }
                        None => self.drop_link(now, link_id, true),
                    }
                } else if let Some(peer) = peer {
                    let via = link.via.filter(|v| self.links.get(*v).is_some_and(Link::is_open));
                    let track = |node: &mut Node, id| {
                        node.offers.insert(id, link_id);
                    };
                    match via {
                        Some(via) => self.send_routed_via(now, via, Destination::Node(peer), &body, track),
                        None => {
                            self.send_routed_then(now, Destination::Node(peer), None, &body, track);
                        }
                    }
                }
            }
            LinkState::MakingAnswer => {
                link.state = LinkState::Connecting;
                let delegation = self.delegation.clone();
                match link.answer_path.clone() {
                    Some(AnswerPath::Http(request)) => {
                        let body = Routed::Ring(RingMsg::ConnectAnswer { link: 0, sdp, delegation });
                        if let Some((_, answer)) = self.encode(now, Destination::Neighbor, None, &body) {
                            self.outputs.push_back(Output::BootstrapAnswer { request, answer });
                        }
                    }
                    Some(AnswerPath::Pairing { request, offer_id }) => {
                        let body = Routed::Ring(RingMsg::ConnectAnswer { link: 0, sdp, delegation });
                        let encoded = self.encode(now, Destination::Neighbor, Some(offer_id), &body);
                        if let Some((_, answer)) = encoded {
                            self.outputs.push_back(Output::BootstrapAnswer { request, answer });
                        }
                    }
                    Some(AnswerPath::Routed { offer_id, offerer_link }) => {
                        let Some(peer) = link.peer else { return };
                        let body =
                            Routed::Ring(RingMsg::ConnectAnswer { link: offerer_link, sdp, delegation });
                        self.send_routed(now, Destination::Node(peer), Some(offer_id), &body);
                    }
                    None => {}
                }
            }
            // A description we did not ask for (its link has moved on): nothing to send.
            LinkState::AwaitingAnswer | LinkState::Connecting | LinkState::Open => {}
        }
    }

    /// The bootstrap server's response to a [`Output::BootstrapOffer`].
    pub fn handle_bootstrap_answer(&mut self, now: Timestamp, link_id: LinkId, body: &[u8]) {
        let received = match envelope::decode_with::<Routed>(self.config.crypto, body, self.network) {
            Ok(r) => r,
            Err(e) => {
                self.counters.dropped_invalid += 1;
                let detail = e.to_string();
                self.handle_bootstrap_failure(now, link_id, BootstrapError::BadAnswer { detail });
                return;
            }
        };
        let peer = received.origin.node_id();
        match received.body {
            Routed::Ring(RingMsg::ConnectAnswer { sdp, delegation, .. }) => {
                if let Err(e) = self.verify_peer(&delegation, &received.origin, now) {
                    self.handle_bootstrap_failure(now, link_id, BootstrapError::Unauthorized(e));
                    return;
                }
                let Some(link) = self.links.get(link_id) else { return };
                if link.state != LinkState::AwaitingAnswer || sdp.len() > msg::MAX_SDP {
                    return;
                }
                if peer == self.id() || self.links.by_peer(peer).is_some() {
                    // Already linked to this server (or it is us): this bootstrap link is not needed.
                    self.handle_bootstrap_failure(now, link_id, BootstrapError::AlreadyLinked);
                    return;
                }
                if let Some(link) = self.links.get_mut(link_id) {
                    link.state = LinkState::Connecting;
                    let url = link.bootstrap_url.clone();
                    if let Some(entry) = self.bootstrap_urls.iter_mut().find(|(u, _)| Some(u) == url.as_ref())
                    {
                        entry.1 = Some(peer);
                    }
                }
                self.links.set_peer(link_id, peer);
                self.outputs.push_back(Output::ApplyRemote { link: link_id, sdp });
            }
            Routed::Ring(RingMsg::ConnectReject { reason, .. }) => {
                let refused =
                    |kind| BootstrapError::Refused { kind, detail: "a ConnectReject answer".into() };
                let error = match reason {
                    RejectReason::Busy => refused(RefusalKind::Busy),
                    RejectReason::Unauthorized => refused(RefusalKind::Unauthorized),
                    RejectReason::Duplicate => BootstrapError::AlreadyLinked,
                };
                self.handle_bootstrap_failure(now, link_id, error);
            }
            // Nothing else answers an offer.
            Routed::Ring(
                RingMsg::FindSuccessor
                | RingMsg::FoundSuccessor { .. }
                | RingMsg::ConnectOffer { .. }
                | RingMsg::Undeliverable { .. },
            )
            | Routed::App(
                AppMsg::Store { .. }
                | AppMsg::StoreAck { .. }
                | AppMsg::Get { .. }
                | AppMsg::Records { .. }
                | AppMsg::Deliver { .. }
                | AppMsg::Receipt { .. }
                | AppMsg::MailboxDeliver { .. }
                | AppMsg::MailboxAck { .. },
            ) => {
                self.counters.dropped_invalid += 1;
                let detail = "not a ConnectAnswer".to_string();
                self.handle_bootstrap_failure(now, link_id, BootstrapError::BadAnswer { detail });
            }
        }
    }

    /// The bootstrap exchange failed in the shell: the server was unreachable, did not answer in time,
    /// refused the offer (HTTP error status), or sent something that is not an answer.
    pub fn handle_bootstrap_failure(&mut self, now: Timestamp, link_id: LinkId, error: BootstrapError) {
        if let Some(request) = self.bootstraps.remove(&link_id) {
            self.emit(Event::RequestFailed { request, reason: FailReason::Bootstrap(error) });
        }
        self.drop_link(now, link_id, true);
    }

    /// A bootstrap offer arrived over HTTP (server side). On success an [`Output::BootstrapAnswer`] for
    /// `request` follows once the shell produced the answer.
    pub fn handle_bootstrap_offer(
        &mut self,
        now: Timestamp,
        request: u64,
        body: &[u8],
    ) -> Result<(), SignalError> {
        let received =
            envelope::decode_with::<Routed>(self.config.crypto, body, self.network).inspect_err(|_| {
                self.counters.dropped_invalid += 1;
            })?;
        let Routed::Ring(RingMsg::ConnectOffer { purpose: LinkPurpose::Bootstrap, sdp, delegation, .. }) =
            &received.body
        else {
            self.counters.dropped_invalid += 1;
            return Err(SignalError::NotAnOffer);
        };
        if received.header.dest != Destination::Neighbor || sdp.len() > msg::MAX_SDP {
            self.counters.dropped_invalid += 1;
            return Err(SignalError::NotAnOffer);
        }
        if self.replay.check_and_insert(received.header.id.0, received.header.sent_at, now).is_err() {
            self.counters.dropped_replay += 1;
            return Err(SignalError::Replay);
        }
        self.verify_peer(delegation, &received.origin, now).map_err(SignalError::Unauthorized)?;
        let peer = received.origin.node_id();
        match self.accept_offer(now, peer, LinkPurpose::Bootstrap, sdp.clone(), AnswerPath::Http(request)) {
            Ok(()) => Ok(()),
            Err(_) => Err(SignalError::Busy),
        }
    }

    /// A link changed state in the shell.
    pub fn handle_link_event(&mut self, now: Timestamp, link_id: LinkId, event: LinkEvent) {
        match event {
            LinkEvent::Opened => {
                let Some(link) = self.links.get_mut(link_id) else {
                    // We already gave up on it: tell the shell again to close it.
                    self.outputs.push_back(Output::CloseLink { link: link_id });
                    return;
                };
                link.state = LinkState::Open;
                link.last_recv = now;
                if let Some(peer) = link.peer {
                    self.unanswered.remove(&peer);
                }
                let (peer, purpose, offerer, merge) =
                    (link.peer, link.purpose, link.offerer, link.via.is_some());
                if offerer && purpose == LinkPurpose::Successor {
                    if let Some(p) = peer {
                        self.adopt_live_successor(p, link_id, merge);
                    }
                }
                let merge_check = self.links.get(link_id).is_some_and(|l| l.merge_check);
                let pairing = self.links.get(link_id).is_some_and(|l| l.pairing);
                if pairing {
                    self.pairing_opened(now, link_id);
                } else if offerer && purpose == LinkPurpose::Bootstrap && !self.joined {
                    self.start_join(now);
                } else if merge_check {
                    self.start_merge_check(now, link_id);
                }
                self.update_membership();
            }
            LinkEvent::Closed | LinkEvent::Failed => {
                self.drop_link(now, link_id, false);
            }
        }
    }

    /// A frame arrived on a link.
    pub fn handle_frame(&mut self, now: Timestamp, link_id: LinkId, bytes: &[u8]) {
        let Some(link) = self.links.get_mut(link_id) else { return };
        if !link.is_open() {
            // Some transports deliver before the open event; treat the first frame as the open.
            if link.state == LinkState::Connecting {
                self.handle_link_event(now, link_id, LinkEvent::Opened);
            } else {
                self.counters.dropped_invalid += 1;
                return;
            }
        }
        let Some(link) = self.links.get_mut(link_id) else { return };
        link.last_recv = now;
        link.bytes_in += bytes.len() as u64;
        self.counters.frames_in += 1;
        self.counters.bytes_in += bytes.len() as u64;
        let Some((&kind, rest)) = bytes.split_first() else {
            self.counters.dropped_invalid += 1;
            return;
        };
        match kind {
            msg::KIND_LINK => match msg::decode_link(rest) {
                Some(m) => self.handle_link_msg(now, link_id, m),
                None => self.counters.dropped_invalid += 1,
            },
            msg::KIND_ROUTED | msg::KIND_ROUTED_OWNER => {
                self.handle_routed_frame(now, link_id, rest, kind == msg::KIND_ROUTED_OWNER)
            }
            _ => self.counters.dropped_invalid += 1,
        }
    }

    /// Time passed; run whatever is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.leaving {
            if self.timers.is_due(Timer::Leave, now) {
                for id in self.links.ids() {
                    self.drop_link(now, id, true);
                }
                self.timers.stop(Timer::Leave);
                self.emit(Event::Left);
            }
            return;
        }
        if self.timers.is_due(Timer::Maintain, now) {
            self.timers.set(Timer::Maintain, now.saturating_add(self.config.ping_interval / 2));
            self.maintain_links(now);
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
        self.check_lookups(now);
        self.app_tick(now);
        self.check_in_flight(now);
        self.expire_reverse(now);
    }

    // ---------------------------------------------------------------------------------------------
    // Local delivery
    // ---------------------------------------------------------------------------------------------

    fn deliver(&mut self, now: Timestamp, received: Received<Routed>, _from: Option<LinkId>) {
        let Received { origin, hops, header, body } = received;
        match body {
            Routed::Ring(body) => self.handle_ring(now, Received { origin, hops, header, body }),
            Routed::App(body) => self.handle_app(now, Received { origin, hops, header, body }),
        }
    }

    /// Handles the ring part of a routed message delivered here.
    fn handle_ring(&mut self, now: Timestamp, received: Received<RingMsg>) {
        let origin = received.origin.node_id();
        let id = received.header.id;
        match received.body {
            RingMsg::FindSuccessor => {
                let body = Routed::Ring(RingMsg::FoundSuccessor { hops: received.hops });
                self.send_routed(now, Destination::Node(origin), Some(id), &body);
            }
            RingMsg::FoundSuccessor { hops } => {
                let Some(reply_to) = received.header.reply_to else { return };
                if let Some(lookup_id) = self.lookup_by_msg.get(&reply_to).copied() {
                    let path = hops.saturating_add(received.hops);
                    self.finish_lookup(now, lookup_id, Ok((origin, hops, path)));
                }
            }
            RingMsg::ConnectOffer { link, purpose, sdp, delegation } => {
                if sdp.len() > msg::MAX_SDP || purpose == LinkPurpose::Bootstrap {
                    self.counters.dropped_invalid += 1;
                    return;
                }
                if self.verify_peer(&delegation, &received.origin, now).is_err() {
                    let body = Routed::Ring(RingMsg::ConnectReject {
                        link,
                        reason: RejectReason::Unauthorized,
                        alternatives: vec![],
                    });
                    self.send_routed(now, Destination::Node(origin), Some(id), &body);
                    return;
                }
                let path = AnswerPath::Routed { offer_id: id, offerer_link: link };
                if let Err(reason) = self.accept_offer(now, origin, purpose, sdp, path) {
                    if reason == RejectReason::Duplicate && self.links.by_peer(origin).is_some() {
                        // Our own offer to them is on its way and wins; nothing to say.
                        return;
                    }
                    let alternatives = self.ring.successors().iter().take(2).copied().collect();
                    let body = Routed::Ring(RingMsg::ConnectReject { link, reason, alternatives });
                    self.send_routed(now, Destination::Node(origin), Some(id), &body);
                }
            }
            RingMsg::ConnectAnswer { link, sdp, delegation } => {
                let link_id = LinkId(link);
                let ok = self.links.get(link_id).is_some_and(|l| {
                    l.state == LinkState::AwaitingAnswer
                        && l.peer == Some(origin)
                        && sdp.len() <= msg::MAX_SDP
                });
                if !ok {
                    return;
                }
                if self.verify_peer(&delegation, &received.origin, now).is_err() {
                    self.drop_link(now, link_id, true);
                    return;
                }
                if let Some(l) = self.links.get_mut(link_id) {
                    l.state = LinkState::Connecting;
                }
                self.offers.retain(|_, l| *l != link_id);
                self.outputs.push_back(Output::ApplyRemote { link: link_id, sdp });
            }
            RingMsg::ConnectReject { link, reason, alternatives } => {
                let link_id = LinkId(link);
                let Some(l) = self.links.get(link_id) else { return };
                if l.peer != Some(origin) || l.is_open() {
                    return;
                }
                let purpose = l.purpose;
                if reason == RejectReason::Duplicate {
                    // The peer's own offer to us wins the tie: keep our record (it holds the peer's place in
                    // the budget) until that offer arrives and replaces it, or setup times out.
                    self.offers.retain(|_, l| *l != link_id);
                    if let Some(l) = self.links.get_mut(link_id) {
                        l.state = LinkState::Connecting;
                    }
                    return;
                }
                self.drop_link(now, link_id, true);
                if reason == RejectReason::Busy && purpose != LinkPurpose::Finger {
                    // Ask again a little later rather than every stabilize tick.
                    self.busy.insert(origin, now.saturating_add(BUSY_BACKOFF / 12));
                }
                if reason == RejectReason::Busy && purpose == LinkPurpose::Finger {
                    self.busy.insert(origin, now.saturating_add(BUSY_BACKOFF));
                    if let Some(alt) = alternatives.into_iter().find(|a| *a != self.id()) {
                        let slot = self.ring.distinct_fingers().into_iter().find(|(_, f)| *f == origin);
                        if let Some((slot, _)) = slot {
                            self.ring.set_finger(slot as usize, alt);
                            self.connect_fingers(now);
                        }
                    }
                }
            }
            RingMsg::Undeliverable { reason } => {
                if let Some(failed) = received.header.reply_to {
                    self.undeliverable_local(now, failed, reason);
                }
            }
        }
    }

    /// Checks that `delegation` is valid now and delegates to `signer` (the key that signed the message
    /// carrying it). Failures are counted.
    fn verify_peer(
        &mut self,
        delegation: &Delegation,
        signer: &SessionPublicKey,
        now: Timestamp,
    ) -> Result<(), DelegationError> {
        let result = self.cache.verify(delegation, &self.config.network, now).and_then(|v| {
            if v.session == *signer {
                Ok(())
            } else {
                Err(DelegationError::WrongSession)
            }
        });
        if result.is_err() {
            self.counters.refused_identity += 1;
        }
        result
    }

    // ---------------------------------------------------------------------------------------------
    // Lookups
    // ---------------------------------------------------------------------------------------------

    fn new_request(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn start_lookup(&mut self, now: Timestamp, key: Id, purpose: LookupFor) {
        self.next_lookup += 1;
        let id = self.next_lookup;
        self.lookups.insert(
            id,
            Lookup {
                key,
                purpose,
                deadline: now.saturating_add(self.config.request_timeout),
                next_attempt: now,
                attempts: 0,
                msg_ids: Vec::new(),
            },
        );
        self.attempt_lookup(now, id);
    }

    fn attempt_lookup(&mut self, now: Timestamp, id: u64) {
        let attempts = self.config.request_attempts.max(1);
        let interval = self.config.request_timeout / u32::from(attempts);
        let next_attempt = now.saturating_add(interval);
        let Some(key) = self.lookups.update(&id, |l| {
            l.attempts += 1;
            l.next_attempt = next_attempt;
            l.key
        }) else {
            return;
        };
        if self.links.len() == 0 && !(self.founder && self.ring.successors().is_empty()) {
            self.finish_lookup(now, id, Err(FailReason::NotConnected));
            return;
        }
        // The ring's own structure (joins, merge checks, fingers) is found without the range shortcut: a
        // peer's self-reported range is right in its ring, not necessarily in the one being repaired.
        let strict = !matches!(self.lookups.get(&id).map(|l| l.purpose), Some(LookupFor::User(_)));
        let dest = if strict { Destination::KeyStrict(key) } else { Destination::Key(key) };
        let Some((header, bytes)) = self.encode(now, dest, None, &Routed::Ring(RingMsg::FindSuccessor))
        else {
            return;
        };
        let _ = self.replay.check_and_insert(header.id.0, header.sent_at, now);
        self.lookup_by_msg.insert(header.id, id);
        self.lookups.update(&id, |l| l.msg_ids.push(header.id));
        let me = self.id();
        let forced = match self.lookups.get(&id).map(|l| l.purpose) {
            Some(LookupFor::Merge(link)) => Some(link),
            _ => None,
        };
        if let Some(link) = forced {
            if self.links.get(link).is_some_and(Link::is_open) {
                self.forward(now, link, bytes, header, me, 0, false, Vec::new());
            } else {
                self.finish_lookup(now, id, Err(FailReason::NotConnected));
            }
            return;
        }
        match self.next_hop(now, &header, false, &[]) {
            Hop::Local => self.finish_lookup(now, id, Ok((me, 0, 0))),
            Hop::Forward { link, owner_hint } => {
                self.forward(now, link, bytes, header, me, 0, owner_hint, Vec::new())
            }
            Hop::Fail(reason) => self.undeliverable_local(now, header.id, reason),
        }
    }

    fn check_lookups(&mut self, now: Timestamp) {
        for id in self.lookups.due(now) {
            let Some(l) = self.lookups.get(&id) else { continue };
            if l.deadline <= now {
                self.finish_lookup(now, id, Err(FailReason::Timeout));
            } else if l.attempts >= self.config.request_attempts {
                // No attempt left: wait for an answer until the deadline.
                self.lookups.update(&id, |l| l.next_attempt = l.deadline);
            } else {
                self.attempt_lookup(now, id);
            }
        }
    }

    fn finish_lookup(&mut self, now: Timestamp, id: u64, result: Result<(Id, u8, u8), FailReason>) {
        let Some(l) = self.lookups.remove(&id) else { return };
        for m in &l.msg_ids {
            self.lookup_by_msg.remove(m);
        }
        match (l.purpose, result) {
            (LookupFor::User(request), Ok((owner, hops, path_len))) => {
                self.emit(Event::LookupDone { request, key: l.key, owner, hops, path_len })
            }
            (LookupFor::User(request), Err(reason)) => self.emit(Event::RequestFailed { request, reason }),
            (LookupFor::Join, Ok((owner, _, _))) => {
                if owner != self.id() {
                    // Linked first, adopted when the link opens (the owner is then known to be live).
                    self.want_successor(now, owner);
                }
            }
            (LookupFor::Join, Err(_)) => {}
            (LookupFor::Finger(slot), Ok((owner, _, _))) => self.finger_found(now, slot, owner),
            (LookupFor::Finger(_), Err(_)) => {
                self.finger_cursor = ID_BITS;
            }
            (LookupFor::Merge(via), Ok((owner, _, _))) => self.merge_candidate(now, owner, via),
            (LookupFor::Merge(_), Err(_)) => {}
        }
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
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
