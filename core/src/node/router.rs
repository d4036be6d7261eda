//! Routing, as a sub-machine: choosing the next hop, hop-by-hop acknowledgements and re-sending, reverse
//! paths for replies, duplicate suppression — plus the parent's glue that signs, forwards and reports
//! failures.
//!
//! - **Owns** ([`Router`]): the replay window (ids of messages this node sent or accepted, for as long as a
//!   copy could be accepted), the relay memory (ids of frames it passed on, for 30 s), the frames in flight
//!   (forwarded, not yet acknowledged, ordered by when their acknowledgement is overdue), and the reverse
//!   paths (the link each request came in on, so its reply retraces the path).
//! - **Takes**: a [`RouteView`] — the ring, the link table and whether the node is joined or a founder — to
//!   choose a hop; acknowledgements from the link layer.
//! - **Emits**: a [`Hop`] decision per message; the parent transmits, re-sends and reports.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use rand_core::RngCore;

use super::conduct::Offence;
use super::links::{Link, Links, PendingAck};
use super::msg::{self, AckRange, LinkMsg, RingMsg, Routed, RoutedFrame, Undeliverable};
use super::ring::Ring;
use super::timer::{Deadline, Timed, Timer};
use super::Node;
use crate::id::Id;
use crate::node::api::{FailReason, LinkId};
use crate::time::Timestamp;
use crate::wire::envelope::{self, Destination, FrameKind, Header, MessageId, Received};
use crate::wire::recent::RecentIds;
use crate::wire::replay::ReplayWindow;

/// Capacity of the replay window (message ids remembered) by default.
pub(crate) const REPLAY_CAPACITY: usize = 1 << 16;
/// How long routed message ids are remembered.
pub(crate) const REPLAY_LIFETIME: Duration = Duration::from_secs(300);
/// Ids of frames relayed, remembered to drop a copy that comes back (see [`RecentIds`]).
const RELAY_CAPACITY: usize = 1 << 15;
/// How long a relay remembers a frame it passed on: re-sends after a late acknowledgement and loops while
/// the ring changes come back within seconds (a request gives up after 8 s).
const RELAY_MEMORY: Duration = Duration::from_secs(30);
/// Reverse-path entries kept for replies.
const REVERSE_CAPACITY: usize = 8192;
const REVERSE_LIFETIME: Duration = Duration::from_secs(20);
/// Forwarded frames kept for re-sending until acknowledged.
const IN_FLIGHT_CAPACITY: usize = 1024;
const IN_FLIGHT_BYTES: usize = 16 << 20;
/// Do not route over a link that failed to acknowledge for this long.
const SUSPECT_TIME: Duration = Duration::from_secs(3);
/// Routed bytes a link may have unacknowledged; more wait here, in order, until acknowledgements free room
/// ([`Router::hold`]). Without it a burst went straight into the shell's buffers (up to 4 MiB in the
/// browser's `bufferedAmount`, 8 MiB more in the shell's queue) with each frame's acknowledgement timer
/// already running, so bulk data made a healthy link look dead.
pub(crate) const LINK_WINDOW: usize = 1 << 20;
/// Routed bytes that may wait for one link's window; past that a frame goes out at once, as before.
const HELD_BYTES: usize = 8 << 20;
/// Routed bytes that may wait for all links' windows together: peers that are slow to acknowledge (or
/// never do, until their links turn suspect) cannot make a node hold [`HELD_BYTES`] for each of its links.
/// Past it, too, a frame goes out at once.
const HELD_TOTAL: usize = 16 << 20;
/// How long a link may hold back its acknowledgement of routed frames, for a routed frame going the other
/// way to carry it (a reply retraces its request's path, usually well within this). Once it is up, the
/// acknowledgement goes with whatever the node does next — it wakes for it only at [`ACK_LATEST`].
pub(crate) const ACK_DELAY: Duration = Duration::from_millis(50);
/// The latest an acknowledgement goes: the node wakes up for it (a wakeup costs more than the frame, in
/// a busy node and in the simulator alike, so the acknowledgement rides on the node's other work first).
pub(crate) const ACK_LATEST: Duration = Duration::from_millis(200);
/// The least time a frame may go unacknowledged before its link is thought to have lost it: SCTP's least
/// retransmission timeout (RFC 4960, RTO.Min), because one lost packet stalls a healthy data channel that
/// long, and a frame re-routed then arrives twice and out of order.
const ACK_WAIT_FLOOR: Duration = Duration::from_secs(1);
/// A link acknowledges at once when this many frames, or bytes, wait for their acknowledgement.
const ACK_EVERY_FRAMES: u64 = 8;
const ACK_EVERY_BYTES: usize = 64 << 10;

/// A forwarded frame waiting for the next hop's acknowledgement.
#[derive(Debug)]
pub(crate) struct InFlight {
    frame: Outbound,
    /// Its number on the link it was last sent on.
    seq: u64,
    deadline: Timestamp,
}

impl Deadline for InFlight {
    /// When the hop is overdue unacknowledged.
    fn deadline(&self) -> Timestamp {
        self.deadline
    }
}

/// A routed frame on its way out — waiting for room in its link's window, in flight, or to be re-sent:
/// what [`Node::forward`] needs to send it.
#[derive(Debug)]
pub(crate) struct Outbound {
    /// The envelope (without kind byte).
    envelope: Vec<u8>,
    header: Header,
    origin: Id,
    hops: u8,
    owner_hint: bool,
    tried: Vec<LinkId>,
}

impl Outbound {
    /// A message of this node's own, on its first hop.
    pub(super) fn own(envelope: Vec<u8>, header: Header, me: Id, owner_hint: bool) -> Outbound {
        Outbound { envelope, header, origin: me, hops: 0, owner_hint, tried: Vec::new() }
    }
}

/// Where a routed message goes next.
pub(crate) enum Hop {
    Local,
    Forward { link: LinkId, owner_hint: bool },
    Fail(Undeliverable),
}

/// What a frame that arrived on a link leads to: [`Hop`], with the frame decoded when it is for this node.
enum Arrival {
    Deliver(Box<Received<Routed>>),
    /// A session frame for this node, to be opened by its session.
    Session,
    Forward {
        link: LinkId,
        owner_hint: bool,
    },
    Fail(Undeliverable),
}

/// What routing reads of the rest of the node.
pub(crate) struct RouteView<'a> {
    pub(crate) ring: &'a Ring,
    pub(crate) links: &'a Links,
    pub(crate) joined: bool,
    pub(crate) founder: bool,
}

/// The routing tables of one node.
pub(crate) struct Router {
    /// Ids of messages this node sent or accepted as their destination, for as long as a copy could be
    /// accepted.
    pub(crate) replay: ReplayWindow,
    /// Ids of frames this node relayed, for a short while.
    relayed: RecentIds,
    in_flight: Timed<MessageId, InFlight>,
    in_flight_bytes: usize,
    /// The frames in flight by the link they were last sent on and their number there, for the link's
    /// acknowledgement ranges.
    on_link: HashMap<LinkId, BTreeMap<u64, MessageId>>,
    /// Bytes in flight per link (of the frames in `in_flight`).
    unacked: HashMap<LinkId, usize>,
    /// Frames waiting for room in their link's window, in the order they were to be sent, and their bytes.
    held: HashMap<LinkId, (VecDeque<Outbound>, usize)>,
    /// The bytes of all of `held`.
    held_bytes: usize,
    reverse: HashMap<MessageId, (LinkId, Timestamp)>,
    reverse_order: VecDeque<(Timestamp, MessageId)>,
}

impl Router {
    pub(crate) fn new(replay_capacity: usize, clock_skew: Duration) -> Router {
        Router {
            replay: ReplayWindow::new(replay_capacity, REPLAY_LIFETIME, clock_skew),
            relayed: RecentIds::new(RELAY_CAPACITY, RELAY_MEMORY),
            in_flight: Timed::default(),
            in_flight_bytes: 0,
            on_link: HashMap::new(),
            unacked: HashMap::new(),
            held: HashMap::new(),
            held_bytes: 0,
            reverse: HashMap::new(),
            reverse_order: VecDeque::new(),
        }
    }

    /// When the earliest frame in flight is overdue.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.in_flight.earliest()
    }

    /// Whether a routed frame is seen for the first time, or must be dropped: sent out of the time window,
    /// or a copy of one this node sent, accepted or relayed. Only header fields are read, so this runs
    /// before any signature is checked. A relay remembers the id here, briefly; the destination
    /// (`local`) remembers it only once the signature verified ([`Router::accept`]), for as long as a copy
    /// could be accepted.
    fn first_sight(&mut self, local: bool, id: MessageId, sent_at: Timestamp, now: Timestamp) -> bool {
        if self.replay.check_time(sent_at, now).is_err() || self.replay.seen(&id.0, now) {
            return false;
        }
        if local {
            !self.relayed.contains(&id.0, now)
        } else {
            self.relayed.insert(id.0, now)
        }
    }

    /// Remembers the id of a frame accepted here after its signature verified (see [`Router::first_sight`]);
    /// false if the window has no room at all.
    fn accept(&mut self, id: MessageId, sent_at: Timestamp, now: Timestamp) -> bool {
        self.replay.check_and_insert(id.0, sent_at, now).is_ok()
    }

    /// Keeps a forwarded frame until `link` acknowledges it, within the table's bounds (a frame that does
    /// not fit is sent all the same, but not re-sent).
    fn track(&mut self, now: Timestamp, link: LinkId, seq: u64, ack_timeout: Duration, mut frame: Outbound) {
        let (id, len) = (frame.header.id, frame.envelope.len());
        if self.in_flight.len() < IN_FLIGHT_CAPACITY && self.in_flight_bytes + len <= IN_FLIGHT_BYTES {
            // A copy of a frame still in flight (a duplicate a relay passes on again) replaces it.
            self.take(&id);
            frame.tried.push(link);
            self.in_flight_bytes += len;
            *self.unacked.entry(link).or_default() += len;
            self.on_link.entry(link).or_default().insert(seq, id);
            let deadline = now.saturating_add(ack_timeout);
            self.in_flight.insert(id, InFlight { frame, seq, deadline });
        }
    }

    /// Takes a frame out of the in-flight table.
    fn take(&mut self, id: &MessageId) -> Option<InFlight> {
        let f = self.in_flight.remove(id)?;
        self.in_flight_bytes -= f.frame.envelope.len();
        if let Some(link) = f.frame.tried.last() {
            if let Some(bytes) = self.unacked.get_mut(link) {
                *bytes -= f.frame.envelope.len();
                if *bytes == 0 {
                    self.unacked.remove(link);
                }
            }
            if let Some(sent) = self.on_link.get_mut(link) {
                sent.remove(&f.seq);
                if sent.is_empty() {
                    self.on_link.remove(link);
                }
            }
        }
        Some(f)
    }

    /// `link` acknowledged the routed frames it received numbered `range`: they are no longer ours to
    /// re-send. Only frames last sent on that link match its numbers; the work is bounded by the frames
    /// in flight there, whatever range a peer names.
    pub(crate) fn handle_ack(&mut self, link: LinkId, range: AckRange) {
        let Some(sent) = self.on_link.get(&link) else { return };
        let acked: Vec<MessageId> = sent.range(range.from..=range.upto).map(|(_, id)| *id).collect();
        for id in acked {
            self.take(&id);
        }
    }

    /// Whether a frame of `len` bytes must wait for room in `link`'s window: the link has something in flight
    /// and this would take it past [`LINK_WINDOW`], or frames already wait (order is kept). A frame that
    /// does not fit the wait ([`HELD_BYTES`] for the link, [`HELD_TOTAL`] for all) goes out at once.
    fn must_wait(&self, link: LinkId, len: usize) -> bool {
        let held = self.held.get(&link).map_or(0, |(_, bytes)| *bytes);
        let unacked = self.unacked.get(&link).copied().unwrap_or(0);
        let over = held > 0 || (unacked > 0 && unacked + len > LINK_WINDOW);
        over && held + len <= HELD_BYTES && self.held_bytes + len <= HELD_TOTAL
    }

    fn hold(&mut self, link: LinkId, frame: Outbound) {
        let (queue, bytes) = self.held.entry(link).or_default();
        *bytes += frame.envelope.len();
        self.held_bytes += frame.envelope.len();
        queue.push_back(frame);
    }

    /// The next frame waiting for `link`, if its window has room for it now.
    fn release(&mut self, link: LinkId) -> Option<Outbound> {
        let unacked = self.unacked.get(&link).copied().unwrap_or(0);
        let (queue, bytes) = self.held.get_mut(&link)?;
        let len = queue.front()?.envelope.len();
        if unacked > 0 && unacked + len > LINK_WINDOW {
            return None;
        }
        let frame = queue.pop_front()?;
        *bytes -= len;
        self.held_bytes -= len;
        if queue.is_empty() {
            self.held.remove(&link);
        }
        Some(frame)
    }

    /// The links frames wait for.
    fn held_links(&self) -> Vec<LinkId> {
        let mut links: Vec<LinkId> = self.held.keys().copied().collect();
        links.sort_unstable();
        links
    }

    /// Every frame waiting for `link` (which went away or is suspect).
    fn take_held(&mut self, link: LinkId) -> VecDeque<Outbound> {
        let (queue, bytes) = self.held.remove(&link).unwrap_or_default();
        self.held_bytes -= bytes;
        queue
    }

    /// The ids of the frames in flight, in id order (for tests).
    #[cfg(test)]
    fn in_flight_ids(&self) -> Vec<MessageId> {
        self.in_flight.keys().copied().collect()
    }

    /// The frames whose acknowledgement is overdue now, in id order.
    fn due(&self, now: Timestamp) -> Vec<MessageId> {
        self.in_flight.due(now)
    }

    /// The link a frame in flight was last sent on.
    fn last_link(&self, id: &MessageId) -> Option<LinkId> {
        self.in_flight.get(id).and_then(|f| f.frame.tried.last().copied())
    }

    /// The frames last sent on `link` (which just went away), in the order they were sent.
    fn waiting_on(&self, link: LinkId) -> Vec<MessageId> {
        self.on_link.get(&link).map(|sent| sent.values().copied().collect()).unwrap_or_default()
    }

    pub(crate) fn remember_reverse(&mut self, now: Timestamp, id: MessageId, link: LinkId) {
        if self.reverse.len() >= REVERSE_CAPACITY {
            self.expire_reverse(now);
            if self.reverse.len() >= REVERSE_CAPACITY {
                if let Some((_, oldest)) = self.reverse_order.pop_front() {
                    self.reverse.remove(&oldest);
                }
            }
        }
        let until = now.saturating_add(REVERSE_LIFETIME);
        self.reverse.insert(id, (link, until));
        self.reverse_order.push_back((until, id));
    }

    pub(crate) fn expire_reverse(&mut self, now: Timestamp) {
        while let Some((until, id)) = self.reverse_order.front().copied() {
            if until > now {
                break;
            }
            self.reverse_order.pop_front();
            if self.reverse.get(&id).is_some_and(|(_, u)| *u == until) {
                self.reverse.remove(&id);
            }
        }
    }

    /// Decides where a routed message goes from here. `exclude` are links not to use (where it came from,
    /// links already tried).
    pub(crate) fn next_hop(
        &self,
        view: &RouteView<'_>,
        now: Timestamp,
        header: &Header,
        owner_hint: bool,
        exclude: &[LinkId],
    ) -> Hop {
        let RouteView { ring, links, joined, founder } = *view;
        let me = ring.me();
        // Replies retrace the path of the message they answer.
        if let Some(reply_to) = header.reply_to {
            if header.dest != Destination::Node(me) {
                if let Some((link, _)) = self.reverse.get(&reply_to) {
                    if !exclude.contains(link) && links.get(*link).is_some_and(Link::is_open) {
                        return Hop::Forward { link: *link, owner_hint: false };
                    }
                }
            }
        }
        let lookahead = matches!(header.dest, Destination::Key(_));
        let (key, exact) = match header.dest {
            Destination::Neighbor => return Hop::Local,
            Destination::Node(t) => {
                if t == me {
                    return Hop::Local;
                }
                if let Some(link) = links.open_to(t) {
                    if !exclude.contains(&link) {
                        return Hop::Forward { link, owner_hint: false };
                    }
                }
                (t, true)
            }
            Destination::Key(k) | Destination::KeyStrict(k) => {
                match ring.owns(k) {
                    Some(true) => return Hop::Local,
                    None if owner_hint && joined => return Hop::Local,
                    Some(false) | None => {}
                }
                (k, false)
            }
        };
        let candidates = || {
            links
                .iter()
                .filter(move |(id, l)| l.routable(now) && !exclude.contains(id))
                .filter_map(|(id, l)| l.peer.map(|p| (id, p)))
        };
        if ring.successors().is_empty() && !founder {
            // Not in the ring yet: our own position means nothing; hand it to whoever we are linked to.
            return match candidates().next() {
                Some((link, _)) => Hop::Forward { link, owner_hint: false },
                None => Hop::Fail(Undeliverable::NoRoute),
            };
        }
        // The first live successor owns everything up to it.
        let first_live = ring.successors().iter().find_map(|s| candidates().find(|(_, p)| p == s));
        if exact && ring.owns(key) == Some(true) {
            // It would be our predecessor-side neighbour, and we have no link to it.
            return Hop::Fail(Undeliverable::NodeNotFound);
        }
        if let Some((link, s)) = first_live {
            if key.in_half_open(me, s) {
                // For a key: the successor owns it. For a node between us and our successor (one we just
                // heard of): the successor knows it as its predecessor, or says it is not there.
                return Hop::Forward { link, owner_hint: !exact };
            }
        }
        if lookahead {
            // A peer that owns the key, by the range it told us in its last ping or pong: straight there.
            // If the range changed since, the peer knows better and routes on.
            let owner = candidates().find(|(id, p)| {
                links.get(*id).and_then(|l| l.peer_range_from).is_some_and(|from| key.in_half_open(from, *p))
            });
            if let Some((link, _)) = owner {
                return Hop::Forward { link, owner_hint: true };
            }
        }
        if lookahead {
            // Both ways round: the live link whose peer is nearest the key on either side, if it is nearer
            // than we are. A link then serves both of its ends (my finger is its owner's incoming link), so
            // the incoming half of the link budget shortens routes too. The ring's own lookups (`KeyStrict`)
            // stay clockwise-only, as Chord's correctness arguments assume.
            let mine = overshoot_weighted_gap(me, key);
            let nearest = candidates()
                .map(|(link, p)| (overshoot_weighted_gap(p, key), link))
                .filter(|(g, _)| *g < mine)
                .min();
            if let Some((_, link)) = nearest {
                return Hop::Forward { link, owner_hint: false };
            }
        }
        // Greedy: the live link closest before the key.
        let best = candidates().filter(|(_, p)| p.in_open(me, key)).max_by_key(|(_, p)| me.distance_to(*p));
        if let Some((link, _)) = best {
            return Hop::Forward { link, owner_hint: false };
        }
        if founder && ring.successors().is_empty() && !exact {
            // Alone in the ring: every key is ours.
            return Hop::Local;
        }
        Hop::Fail(Undeliverable::NoRoute)
    }
}

impl Node {
    /// What the router reads of the rest of the node.
    fn route_view(&self) -> RouteView<'_> {
        RouteView {
            ring: &self.ring,
            links: &self.links,
            joined: self.membership.joined,
            founder: self.membership.founder,
        }
    }

    /// Where a message goes from here (see [`Router::next_hop`]).
    pub(super) fn next_hop(
        &self,
        now: Timestamp,
        header: &Header,
        owner_hint: bool,
        exclude: &[LinkId],
    ) -> Hop {
        self.router.next_hop(&self.route_view(), now, header, owner_hint, exclude)
    }

    /// Signs and routes a message of our own. Returns its id.
    pub(super) fn send_routed(
        &mut self,
        now: Timestamp,
        dest: Destination,
        reply_to: Option<MessageId>,
        body: &Routed,
    ) -> Option<MessageId> {
        self.send_routed_then(now, dest, reply_to, body, |_, _| {})
    }

    /// Like `send_routed`, but `track` records the new message id before it is routed — a message to a
    /// key this node owns is answered at once, and the answer must find its request.
    pub(super) fn send_routed_then(
        &mut self,
        now: Timestamp,
        dest: Destination,
        reply_to: Option<MessageId>,
        body: &Routed,
        track: impl FnOnce(&mut Self, MessageId),
    ) -> Option<MessageId> {
        let (header, bytes) = self.encode(now, dest, reply_to, body)?;
        track(self, header.id);
        let _ = self.router.replay.check_and_insert(header.id.0, header.sent_at, now);
        let me = self.id();
        match self.next_hop(now, &header, false, &[]) {
            Hop::Local => {
                let received =
                    Received { origin: *self.me.session.public(), hops: 0, header, body: body.clone() };
                self.deliver(now, received);
            }
            Hop::Forward { link, owner_hint } => {
                self.forward(now, link, Outbound::own(bytes, header, me, owner_hint));
            }
            Hop::Fail(reason) => self.undeliverable_local(now, header.id, reason),
        }
        Some(header.id)
    }

    /// Routes a session frame of ours (`frame`, from [`envelope::encode_session`]) to its node; `track`
    /// records its id (the hash of its bytes) before it goes. A frame to this very node is not sent: nothing
    /// opens a session with itself.
    pub(super) fn send_session_frame(
        &mut self,
        now: Timestamp,
        frame: Vec<u8>,
        track: impl FnOnce(&mut Self, MessageId),
    ) {
        let Ok(routing) = envelope::decode_routing(&frame, self.me.network) else { return };
        let header = routing.header;
        track(self, header.id);
        let _ = self.router.replay.check_and_insert(header.id.0, header.sent_at, now);
        let me = self.id();
        match self.next_hop(now, &header, false, &[]) {
            Hop::Local => {}
            Hop::Forward { link, owner_hint } => {
                self.forward(now, link, Outbound::own(frame, header, me, owner_hint));
            }
            Hop::Fail(reason) => self.undeliverable_local(now, header.id, reason),
        }
    }

    /// Signs a message of our own and sends it over `via` first, whatever routing would choose (a node of
    /// another ring is reachable only through the bootstrap server we asked).
    pub(super) fn send_routed_via(
        &mut self,
        now: Timestamp,
        via: LinkId,
        dest: Destination,
        body: &Routed,
        track: impl FnOnce(&mut Self, MessageId),
    ) {
        let Some((header, bytes)) = self.encode(now, dest, None, body) else { return };
        track(self, header.id);
        let _ = self.router.replay.check_and_insert(header.id.0, header.sent_at, now);
        let me = self.id();
        self.forward(now, via, Outbound::own(bytes, header, me, false));
    }

    pub(super) fn handle_routed_frame(&mut self, now: Timestamp, link_id: LinkId, frame: RoutedFrame<'_>) {
        if let Some(range) = frame.ack {
            self.acked(now, link_id, range);
        }
        let RoutedFrame { owner_hint, seq, envelope: bytes, .. } = frame;
        // Relays read only the routing fields; the signature is checked where it matters: by the destination
        // before it acts, and by a relay before it answers the origin (docs/protocol.md, "Who verifies").
        let routing = match envelope::decode_routing(bytes, self.me.network) {
            Ok(r) => r,
            Err(_) => {
                self.io.counters.dropped_invalid += 1;
                // An honest relay forwards only frames whose routing fields decoded for it: the link's
                // peer made this one.
                self.charge_link(now, link_id, Offence::InvalidFrame);
                return;
            }
        };
        // Acknowledge every frame whose routing fields decode, duplicates and frames that fail a later
        // check included: no other node would take them either, so the sender need not try another link.
        self.acknowledge(now, link_id, seq, bytes.len());
        let header = routing.header;
        let id = header.id;
        let hop = self.next_hop(now, &header, owner_hint, &[link_id]);
        // Cheap refusals first: a frame sent outside the time window, or a copy of one already seen, is
        // dropped before its signature is checked.
        if !self.router.first_sight(matches!(hop, Hop::Local), id, header.sent_at, now) {
            self.io.counters.dropped_replay += 1;
            return;
        }
        // Only a frame for this node is verified and decoded in full (a session frame: by its session).
        let arrival = match hop {
            Hop::Local if routing.kind == FrameKind::Session => Arrival::Session,
            Hop::Local => match envelope::decode_with::<Routed>(self.config.crypto, bytes, self.me.network) {
                Ok(r) => Arrival::Deliver(Box::new(r)),
                Err(e) => {
                    self.io.counters.dropped_invalid += 1;
                    // Relays do not check signatures, so only the frame's origin can be blamed for a bad
                    // one, and only when the frame came straight from it: on its link, with no hop taken
                    // (an honest relay sends on what it relays with a hop count of at least 1).
                    let straight = routing.hops == 0;
                    if straight && self.links.get(link_id).and_then(|l| l.peer) == Some(routing.origin) {
                        let offence = match e {
                            envelope::DecodeError::BadSignature | envelope::DecodeError::BadKey => {
                                Offence::BadSignature
                            }
                            _ => Offence::InvalidFrame,
                        };
                        self.charge_link(now, link_id, offence);
                    }
                    return;
                }
            },
            Hop::Forward { link, owner_hint } => Arrival::Forward { link, owner_hint },
            Hop::Fail(reason) => Arrival::Fail(reason),
        };
        // A session frame's id is the hash of its bytes: remembering it before its session opens it lets no
        // other frame through or out.
        if matches!(arrival, Arrival::Deliver(_) | Arrival::Session)
            && !self.router.accept(id, header.sent_at, now)
        {
            self.io.counters.dropped_replay += 1;
            return;
        }
        // The link is in use (not idle) for the link policy's evictions.
        if let Some(link) = self.links.get_mut(link_id) {
            link.last_used = now;
        }
        if header.dest == Destination::Neighbor {
            // Neighbor envelopes only travel in the bootstrap exchange, never on links (no relay passes
            // one on: the link's peer made it).
            self.io.counters.dropped_invalid += 1;
            self.charge_link(now, link_id, Offence::InvalidFrame);
            return;
        }
        // Nothing replies to a session frame by its id.
        if header.reply_to.is_none() && routing.kind == FrameKind::Signed {
            self.router.remember_reverse(now, id, link_id);
        }
        match arrival {
            Arrival::Deliver(received) => {
                // Whatever the handlers find wrong can be charged to the link only if the frame came
                // straight from its origin (conduct.rs).
                self.set_arrival(Some((link_id, routing.hops)));
                self.deliver(now, *received);
                self.set_arrival(None);
            }
            Arrival::Session => {
                self.set_arrival(Some((link_id, routing.hops)));
                self.handle_session_frame(now, bytes);
                self.set_arrival(None);
            }
            Arrival::Forward { link, owner_hint } => {
                if routing.hops >= header.hop_limit {
                    self.undeliverable_relayed(now, bytes, &header, routing.origin, Undeliverable::HopLimit);
                    return;
                }
                self.io.counters.forwarded += 1;
                let frame = Outbound {
                    envelope: bytes.to_vec(),
                    header,
                    origin: routing.origin,
                    hops: routing.hops + 1,
                    owner_hint,
                    tried: vec![link_id],
                };
                self.forward(now, link, frame);
            }
            Arrival::Fail(reason) => self.undeliverable_relayed(now, bytes, &header, routing.origin, reason),
        }
    }

    /// [`Self::undeliverable`] for a frame this node relayed: its signature is checked first, so a forged
    /// frame cannot make relays send notices to a node that never sent it. A session frame has none to check,
    /// so no notice goes for it: its sender's request runs out instead.
    fn undeliverable_relayed(
        &mut self,
        now: Timestamp,
        envelope: &[u8],
        header: &Header,
        origin: Id,
        reason: Undeliverable,
    ) {
        if envelope::kind(envelope) == Some(FrameKind::Session) {
            return;
        }
        if envelope::verify_with(self.config.crypto, envelope).is_err() {
            self.io.counters.dropped_invalid += 1;
            return;
        }
        self.undeliverable(now, header, origin, reason);
    }

    /// Sends a routed frame over `link` — now, or once the link's window has room — and keeps it until
    /// that link acknowledges it.
    pub(super) fn forward(&mut self, now: Timestamp, link: LinkId, frame: Outbound) {
        if self.router.must_wait(link, frame.envelope.len()) {
            self.router.hold(link, frame);
        } else {
            self.send_now(now, link, frame);
        }
    }

    /// Sends a routed frame over `link` now, and keeps it until that link acknowledges it.
    fn send_now(&mut self, now: Timestamp, link: LinkId, f: Outbound) {
        // Number the frame on the link, and let it carry the link's acknowledgement that is waiting.
        let (seq, ack) = match self.links.get_mut(link) {
            Some(l) => {
                l.seq_out += 1;
                (l.seq_out, l.ack_due.take().map(|p| p.range))
            }
            None => (0, None),
        };
        let (mut frame, start) = msg::encode_routed(&f.envelope, f.owner_hint, seq, ack);
        envelope::set_hops(&mut frame[start..], f.hops);
        let ack_timeout = self.ack_timeout(link);
        self.transmit(link, frame);
        self.router.track(now, link, seq, ack_timeout, f);
    }

    /// How long a frame sent on `link` may go unacknowledged: a few round trips, and the time the peer may
    /// hold its acknowledgement back ([`ACK_LATEST`]).
    fn ack_timeout(&self, link: LinkId) -> Duration {
        let rtt = self.links.get(link).and_then(|l| l.rtt);
        let wait = match rtt {
            Some(rtt) => (rtt * 3).max(ACK_WAIT_FLOOR),
            None => Duration::from_millis(1500),
        };
        wait + ACK_LATEST
    }

    /// A routed frame numbered `seq` (`len` bytes) arrived on `link_id`: its acknowledgement joins the
    /// link's pending run and goes on the next routed frame back on the link, or in an `Ack` of its own
    /// with the first thing the node does once [`ACK_DELAY`] is up (at [`ACK_LATEST`] if nothing comes), or
    /// at once when the run is long ([`ACK_EVERY_FRAMES`], [`ACK_EVERY_BYTES`]) or the node is leaving. A number that does not continue the run (a peer's
    /// numbering is its own business) sends the run so far and starts another.
    fn acknowledge(&mut self, now: Timestamp, link_id: LinkId, seq: u64, len: usize) {
        let Some(link) = self.links.get_mut(link_id) else { return };
        let mut earlier = None;
        let pending = match &mut link.ack_due {
            Some(p) if p.range.upto.checked_add(1) == Some(seq) => {
                p.range.upto = seq;
                p.bytes += len;
                *p
            }
            slot => {
                earlier = slot.map(|p| p.range);
                let range = AckRange { from: seq, upto: seq };
                let (due, latest) = (now.saturating_add(ACK_DELAY), now.saturating_add(ACK_LATEST));
                *slot.insert(PendingAck { range, bytes: len, due, latest })
            }
        };
        if let Some(range) = earlier {
            self.send_ack(link_id, range);
        }
        let frames = pending.range.upto - pending.range.from + 1;
        if self.membership.leaving || frames >= ACK_EVERY_FRAMES || pending.bytes >= ACK_EVERY_BYTES {
            self.flush_ack(link_id);
        } else {
            if self.links.acks_due.is_none_or(|at| at > pending.due) {
                self.links.acks_due = Some(pending.due);
            }
            if self.timers.get(Timer::Acks).is_none_or(|at| at > pending.latest) {
                self.timers.set(Timer::Acks, pending.latest);
            }
        }
    }

    /// `link` acknowledged the frames numbered `range`: they are done, and frames waiting for room in the
    /// link's window go out.
    pub(super) fn acked(&mut self, now: Timestamp, link: LinkId, range: AckRange) {
        self.router.handle_ack(link, range);
        self.send_held(now, link);
    }

    /// Sends the frames waiting for `link` that its window has room for now.
    fn send_held(&mut self, now: Timestamp, link: LinkId) {
        while let Some(f) = self.router.release(link) {
            self.send_now(now, link, f);
        }
    }

    fn send_ack(&mut self, link: LinkId, range: AckRange) {
        self.transmit(link, msg::link_frame(&LinkMsg::Ack { from: range.from, upto: range.upto }));
    }

    /// Sends `link`'s pending acknowledgement now, if it has one.
    pub(super) fn flush_ack(&mut self, link: LinkId) {
        if let Some(p) = self.links.get_mut(link).and_then(|l| l.ack_due.take()) {
            self.send_ack(link, p.range);
        }
    }

    /// Sends the acknowledgements whose delay is up (all of them with `all`) — after an input, when one is
    /// ([`Links::acks_due`](super::links::Links)), and at [`Timer::Acks`] — and keeps the timer at the
    /// latest moment of the next.
    pub(super) fn flush_acks(&mut self, now: Timestamp, all: bool) {
        let (mut due, mut latest): (Option<Timestamp>, Option<Timestamp>) = (None, None);
        let mut now_due = Vec::new();
        for (id, link) in self.links.iter() {
            let Some(p) = link.ack_due else { continue };
            if all || p.due <= now {
                now_due.push(id);
            } else {
                due = Some(due.map_or(p.due, |d| d.min(p.due)));
                latest = Some(latest.map_or(p.latest, |l| l.min(p.latest)));
            }
        }
        for id in now_due {
            self.flush_ack(id);
        }
        self.links.acks_due = due;
        match latest {
            Some(at) => self.timers.set(Timer::Acks, at),
            None => self.timers.stop(Timer::Acks),
        }
    }

    /// Frames whose acknowledgement is overdue: the link is suspect (and probed), the frame goes over the
    /// next-best link.
    pub(super) fn check_in_flight(&mut self, now: Timestamp) {
        // Room a frame in flight left by another way than an acknowledgement (a copy of it went on
        // elsewhere) is used too.
        for link in self.router.held_links() {
            self.send_held(now, link);
        }
        for id in self.router.due(now) {
            if let Some(link) = self.router.last_link(&id) {
                // Not acknowledged: avoid the link for a while and probe it.
                let nonce = self.rng.next_u64();
                self.reroute_held(now, link);
                if let Some(l) = self.links.get_mut(link) {
                    l.suspect_until = now.saturating_add(SUSPECT_TIME);
                    if l.ping.is_none() {
                        l.ping = Some((nonce, now));
                        let range_from = self.ring.predecessor();
                        let ping = LinkMsg::Ping { nonce, keep: true, range_from };
                        self.transmit(link, msg::link_frame(&ping));
                    }
                }
            }
            self.reroute(now, id);
        }
    }

    /// Re-sends every frame that waits for `link`'s acknowledgement over the next-best link (it went away).
    pub(super) fn reroute_waiting_on(&mut self, now: Timestamp, link: LinkId) {
        for m in self.router.waiting_on(link) {
            self.reroute(now, m);
        }
        self.reroute_held(now, link);
    }

    /// Frames waiting for room on `link` (gone, or suspect) go over the next-best link instead.
    fn reroute_held(&mut self, now: Timestamp, link: LinkId) {
        for mut f in self.router.take_held(link) {
            f.tried.push(link);
            self.resend(now, f);
        }
    }

    /// Sends an in-flight frame over the next-best link, or reports it undeliverable.
    fn reroute(&mut self, now: Timestamp, id: MessageId) {
        let Some(f) = self.router.take(&id) else { return };
        self.resend(now, f.frame);
    }

    /// Sends a frame that did not get through over the next-best link not yet tried, or reports it
    /// undeliverable.
    fn resend(&mut self, now: Timestamp, f: Outbound) {
        self.io.counters.rerouted += 1;
        match self.next_hop(now, &f.header, f.owner_hint, &f.tried) {
            Hop::Forward { link, owner_hint } => self.forward(now, link, Outbound { owner_hint, ..f }),
            Hop::Local => {
                if let Ok(received) =
                    envelope::decode_with::<Routed>(self.config.crypto, &f.envelope, self.me.network)
                {
                    self.deliver(now, received);
                }
            }
            Hop::Fail(reason) => {
                if f.origin == self.id() {
                    self.undeliverable_local(now, f.header.id, reason);
                } else {
                    self.undeliverable_relayed(now, &f.envelope, &f.header, f.origin, reason);
                }
            }
        }
    }

    /// Tells the origin of a message that it could not be delivered (never about a failure report).
    fn undeliverable(&mut self, now: Timestamp, header: &Header, origin: Id, reason: Undeliverable) {
        self.io.counters.undeliverable += 1;
        if origin == self.id() {
            self.undeliverable_local(now, header.id, reason);
            return;
        }
        let body = Routed::Ring(RingMsg::Undeliverable { reason });
        self.send_routed(now, Destination::Node(origin), Some(header.id), &body);
    }

    /// Another node (`signer`) says a message of ours could not be delivered. Any relay on the path saw the
    /// message's id and could sign such a notice, so it is believed only where it can be checked: a
    /// `NodeNotFound` for a message to a node id says "that id falls in my range and it is not my
    /// predecessor", so its signer must be a plausible owner of that id (replies.rs), as the node that
    /// really sent it is. Any other notice ends nothing: the request carries on as if its message were
    /// lost — its next attempt goes out on time and its deadline fails it if nothing answers — so a forged
    /// notice cannot fail a request (or drop a link offer) that would succeed. The cost when a `NoRoute` or
    /// `HopLimit` notice was true: the request fails at its deadline (with `Timeout`) rather than at once.
    pub(super) fn undeliverable_notice(
        &mut self,
        now: Timestamp,
        signer: Id,
        id: MessageId,
        reason: Undeliverable,
    ) {
        let addressed = self.op_destination(&id).or_else(|| {
            let link = self.links.offers.get(&id)?;
            self.links.get(*link).and_then(|l| l.peer).map(Destination::Node)
        });
        let checked = match (reason, addressed) {
            (Undeliverable::NodeNotFound, Some(Destination::Node(node))) => {
                self.may_answer(Destination::Key(node), signer, None)
            }
            _ => false,
        };
        if checked {
            self.undeliverable_local(now, id, reason);
        }
    }

    /// A message of ours could not be delivered: whatever sent it (an app request, a link offer, a
    /// lookup) hears so.
    pub(super) fn undeliverable_local(&mut self, now: Timestamp, id: MessageId, reason: Undeliverable) {
        self.app_undeliverable(now, id, reason);
        if let Some(link) = self.links.offers.remove(&id) {
            let peer = self.links.get(link).and_then(|l| l.peer);
            self.drop_link(now, link, true);
            if let (Some(peer), Undeliverable::NodeNotFound | Undeliverable::NoRoute) = (peer, reason) {
                // Nobody could reach it: as good as dead for the successor list.
                self.forget_peer(now, peer);
            }
        }
        self.lookup_undeliverable(now, id, reason);
    }
}

/// The failure an app request or lookup reports when its message could not be delivered.
pub(super) fn fail_reason(reason: Undeliverable) -> FailReason {
    match reason {
        Undeliverable::NoRoute => FailReason::NoRoute,
        Undeliverable::HopLimit => FailReason::HopLimit,
        Undeliverable::NodeNotFound => FailReason::NodeNotFound,
    }
}

/// How far `p` is from `key` for two-way routing, on either side of the circle, with a distance past the key
/// counting half again as much as the same distance before it. A node before the key reaches it through
/// four successors and its fingers; a node past it has only its predecessor and the incoming links of
/// others' fingers on that side, so an overshoot costs more hops to walk back. Measured with `chordial-sim
/// bench --sizes 1024` (mean hops, seed 1): weight 1 → 3.33, 1.5 → 3.24, 2 → 3.32, 3 → 3.45.
/// The top 64 bits of each distance are plenty to rank links (in units of 2^-65 of a turn).
fn overshoot_weighted_gap(p: Id, key: Id) -> u128 {
    let before = u128::from(p.distance_to(key).top64());
    let past = u128::from(key.distance_to(p).top64());
    (before * 2).min(past * 3)
}

#[cfg(test)]
mod tests {
    use super::overshoot_weighted_gap;
    use crate::id::Id;

    #[test]
    fn a_link_past_the_key_must_be_half_again_as_near_to_win() {
        let key = Id::pow2(158);
        let before = key.wrapping_sub(Id::pow2(150));
        let past_same = key.wrapping_add(Id::pow2(150));
        let past_nearer = key.wrapping_add(Id::pow2(149));
        assert!(overshoot_weighted_gap(before, key) < overshoot_weighted_gap(past_same, key));
        assert!(overshoot_weighted_gap(past_nearer, key) < overshoot_weighted_gap(before, key));
        assert_eq!(overshoot_weighted_gap(key, key), 0);
        // Across zero: a node just below 2^160 is before key 0 (wrapping), one just above is past it.
        let zero = Id::ZERO;
        assert!(
            overshoot_weighted_gap(Id::MAX.wrapping_sub(Id::pow2(120)), zero)
                < overshoot_weighted_gap(Id::pow2(120), zero)
        );
    }
}

#[cfg(test)]
mod ack_tests {
    use super::super::msg::{self, AckRange, AppMsg, LinkMsg, RingMsg, Routed, Undeliverable};
    use super::super::testing::{link_to, node, T0};
    use super::super::timer::Timer;
    use super::super::Node;
    use super::{ACK_DELAY, ACK_LATEST, HELD_BYTES, HELD_TOTAL, LINK_WINDOW};
    use crate::node::api::{LinkId, Output};
    use crate::wire::envelope::{Destination, MessageId};

    /// The frames `node` transmitted since last asked.
    fn frames(node: &mut Node) -> Vec<(LinkId, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            match node.poll_output() {
                Output::Transmit { link, bytes } => out.push((link, bytes)),
                Output::Timeout(_) => return out,
                _ => {}
            }
        }
    }

    /// The acknowledgements among `frames`: in `Ack` messages, and riding on routed frames.
    fn acks(frames: &[(LinkId, Vec<u8>)]) -> (Vec<AckRange>, Vec<AckRange>) {
        let (mut alone, mut riding) = (Vec::new(), Vec::new());
        for (_, f) in frames {
            if let Some(LinkMsg::Ack { from, upto }) =
                (f[0] == msg::KIND_LINK).then(|| msg::decode_link(&f[1..])).flatten()
            {
                alone.push(AckRange { from, upto });
            }
            if let Some(ack) = msg::decode_routed(f[0], &f[1..]).and_then(|r| r.ack) {
                riding.push(ack);
            }
        }
        (alone, riding)
    }

    /// A routed message nobody answers.
    fn quiet(node: &mut Node, to: &Node) -> MessageId {
        let body = Routed::Ring(RingMsg::Undeliverable { reason: Undeliverable::NoRoute });
        node.send_routed(T0, Destination::Node(to.id()), None, &body).expect("signed")
    }

    /// Two nodes with a link between them: `(a, a's end, b, b's end)`.
    fn pair() -> (Node, LinkId, Node, LinkId) {
        let ((mut a, a_key), (mut b, b_key)) = (node(1), node(2));
        let ab = link_to(&mut a, &b_key);
        let ba = link_to(&mut b, &a_key);
        (a, ab, b, ba)
    }

    #[test]
    fn a_run_of_frames_is_acknowledged_once_after_a_short_wait() {
        let (mut a, ab, mut b, ba) = pair();
        let sent: Vec<MessageId> = (0..3).map(|_| quiet(&mut a, &b)).collect();
        let out = frames(&mut a);
        assert_eq!(out.len(), 3);
        for (_, f) in &out {
            b.handle_frame(T0, ba, f);
        }
        assert_eq!(acks(&frames(&mut b)), (vec![], vec![]), "held back");
        // The node wakes for it at the latest; anything it does after the delay sends it sooner.
        assert_eq!(b.timers.get(Timer::Acks), Some(T0.saturating_add(ACK_LATEST)));
        b.handle_timeout(T0.saturating_add(ACK_DELAY));
        let back = frames(&mut b);
        // One acknowledgement for the run: on its own, or riding on a routed frame of b's upkeep.
        let (alone, riding) = acks(&back);
        assert_eq!([alone, riding].concat(), vec![AckRange { from: 1, upto: 3 }]);
        assert!(sent.iter().all(|id| a.router.in_flight_ids().contains(id)));
        for (_, f) in &back {
            a.handle_frame(T0, ab, f);
        }
        assert!(sent.iter().all(|id| !a.router.in_flight_ids().contains(id)), "all three acknowledged");

        // Eight frames not yet acknowledged are acknowledged at once.
        for _ in 0..8 {
            quiet(&mut a, &b);
        }
        for (_, f) in frames(&mut a) {
            b.handle_frame(T0, ba, &f);
        }
        assert_eq!(acks(&frames(&mut b)).0, vec![AckRange { from: 4, upto: 11 }]);
    }

    #[test]
    fn a_routed_frame_going_back_carries_the_acknowledgement() {
        let (mut a, ab, mut b, ba) = pair();
        quiet(&mut a, &b);
        quiet(&mut a, &b);
        for (_, f) in frames(&mut a) {
            b.handle_frame(T0, ba, &f);
        }
        quiet(&mut b, &a);
        let back = frames(&mut b);
        assert_eq!(acks(&back), (vec![], vec![AckRange { from: 1, upto: 2 }]));
        a.handle_frame(T0, ab, &back[0].1);
        assert!(a.router.in_flight_ids().is_empty());
        // Nothing is left to acknowledge on its own.
        b.handle_timeout(T0.saturating_add(ACK_DELAY));
        assert_eq!(acks(&frames(&mut b)).0, vec![]);
    }

    #[test]
    fn an_acknowledgement_covers_only_the_frames_it_names_on_its_own_link() {
        let (mut a, ab, mut b, ba) = pair();
        let (_, c_key) = node(3);
        let ac = link_to(&mut a, &c_key);
        let to_b: Vec<MessageId> = (0..5).map(|_| quiet(&mut a, &b)).collect();
        let out = frames(&mut a);
        // Another link's peer names every number there is: it acknowledges nothing sent to b.
        let forged = msg::link_frame(&LinkMsg::Ack { from: 0, upto: u64::MAX });
        a.handle_frame(T0, ac, &forged);
        assert!(to_b.iter().all(|id| a.router.in_flight_ids().contains(id)));
        // Frames 3 and 4 never arrive (a shell's queue dropped them): b acknowledges 1–2 as soon as 5 shows
        // the gap, and 5 later; 3 and 4 stay a's to re-send.
        for i in [0, 1, 4] {
            b.handle_frame(T0, ba, &out[i].1);
        }
        let first = frames(&mut b);
        assert_eq!(acks(&first).0, vec![AckRange { from: 1, upto: 2 }]);
        b.handle_timeout(T0.saturating_add(ACK_DELAY));
        let second = frames(&mut b);
        // On its own, or riding on whatever routed frame the node's upkeep sent a first.
        let (alone, riding) = acks(&second);
        assert_eq!([alone, riding].concat(), vec![AckRange { from: 5, upto: 5 }]);
        for (_, f) in first.iter().chain(&second) {
            a.handle_frame(T0, ab, f);
        }
        let waiting: Vec<bool> = to_b.iter().map(|id| a.router.in_flight_ids().contains(id)).collect();
        assert_eq!(waiting, [false, false, true, true, false]);
    }

    #[test]
    fn a_link_carries_at_most_its_window_unacknowledged_and_the_rest_waits_in_order() {
        let (mut a, ab, mut b, ba) = pair();
        // 40 frames of ~60 KB: 2.4 MB, more than twice the window.
        let big = Routed::App(AppMsg::StoreSealed { sealed: vec![7; 60_000] });
        let sent: Vec<MessageId> = (0..40)
            .map(|_| a.send_routed(T0, Destination::Node(b.id()), None, &big).expect("signed"))
            .collect();
        let first = frames(&mut a);
        let bytes: usize = first.iter().map(|(_, f)| f.len()).sum();
        assert!(first.len() < 40 && bytes <= LINK_WINDOW + 70_000, "{} frames, {bytes} bytes", first.len());
        assert!(bytes > LINK_WINDOW - 70_000, "the window is used: {bytes} bytes");
        // Only what went out has an acknowledgement timer running.
        assert_eq!(a.router.in_flight_ids().len(), first.len());

        // b acknowledges what it got (the run is long enough to go at once): as much again goes out, in order.
        for (_, f) in &first {
            b.handle_frame(T0, ba, f);
        }
        for (_, f) in frames(&mut b) {
            a.handle_frame(T0, ab, &f);
        }
        let second = frames(&mut a);
        assert!(!second.is_empty());
        let seqs: Vec<u64> = first
            .iter()
            .chain(&second)
            .filter_map(|(_, f)| msg::decode_routed(f[0], &f[1..]).map(|r| r.seq))
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "numbered in the order sent");
        let ids: Vec<MessageId> = first
            .iter()
            .chain(&second)
            .filter_map(|(_, f)| {
                let r = msg::decode_routed(f[0], &f[1..])?;
                crate::wire::envelope::decode_routing(r.envelope, a.me.network).ok().map(|x| x.header.id)
            })
            .collect();
        assert_eq!(ids, sent[..ids.len()].to_vec(), "the waiting frames keep their order");
    }

    #[test]
    fn what_waits_for_all_links_together_is_bounded() {
        let (mut a, _) = node(1);
        // Four peers that acknowledge nothing yet; to each, more than its link may hold on its own.
        let peers: Vec<_> = (0..4).map(|i| node(10 + i).1).collect();
        for p in &peers {
            link_to(&mut a, p);
        }
        let big = Routed::App(AppMsg::StoreSealed { sealed: vec![7; 60_000] });
        let per_peer = (LINK_WINDOW + HELD_BYTES / 2) / 60_000 + 1;
        let mut sent = 0usize;
        for p in &peers {
            for _ in 0..per_peer {
                a.send_routed(T0, Destination::Node(p.node_id()), None, &big).expect("signed");
                sent += 1;
            }
        }
        let out = frames(&mut a);
        assert!(a.router.held_bytes <= HELD_TOTAL, "{} bytes wait", a.router.held_bytes);
        assert!(a.router.held_bytes > HELD_TOTAL - 70_000, "the room is used: {}", a.router.held_bytes);
        let held: usize = a.router.held.values().map(|(q, _)| q.len()).sum();
        let routed = out.iter().filter(|(_, f)| msg::decode_routed(f[0], &f[1..]).is_some()).count();
        assert_eq!(routed + held, sent, "every frame either went out or waits");
        // Nothing is lost when a link goes: what waited for it is counted out of the total.
        let link = *a.router.held.keys().next().expect("something waits");
        let before = a.router.held_bytes;
        let moved = a.router.held[&link].1;
        a.router.take_held(link);
        assert_eq!(a.router.held_bytes, before - moved);
    }
}
