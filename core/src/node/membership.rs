//! Membership: being in a ring and staying in it — join, stabilize (Zave's Correct Chord), the finger
//! sweep, the merge check that finds rings split by a partition, and rejoining when every link is gone.
//!
//! - **Owns** ([`Membership`]): whether the node is joined (and ever was), whether it founded its ring, the
//!   bootstrap servers it knows and its pending bootstrap requests, the finger sweep's cursor, the rejoin
//!   backoff, and whether it is leaving.
//! - **Takes**: the [`Ring`](super::ring::Ring) it changes, the link table it reads (who is live), the
//!   lookups it starts (join, fingers, merge checks) and their results.
//! - **Emits**: [`Event::Membership`], `GetNeighbors`/`Notify` link messages, links to open (through the link
//!   policy), and the timers [`Timer::Merge`], [`Timer::Rejoin`], [`Timer::FingerSweep`], [`Timer::Presence`].

use std::collections::BTreeMap;
use std::time::Duration;

use rand_core::RngCore;

use super::links::LinkKind;
use super::lookups::LookupFor;
use super::msg::{self, LinkMsg};
use super::timer::Timer;
use super::Node;
use crate::id::{Id, ID_BITS};
use crate::node::api::{BootstrapError, Event, FailReason, LinkId, LinkPurpose, RequestId};
use crate::time::Timestamp;

/// Finger sweeps that change nothing double the pause to the next, up to this many times
/// `finger_refresh_interval`.
const SWEEP_BACKOFF: u32 = 8;
/// Bootstrap servers a node remembers at most (for rejoining and merge checks).
pub const MAX_SERVERS: usize = 16;
/// First and longest pause between re-bootstrap attempts of a stranded node.
const REJOIN_MIN: Duration = Duration::from_secs(2);
const REJOIN_MAX: Duration = Duration::from_secs(60);

/// Where the node stands in the ring's life, and what it knows of its bootstrap servers.
#[derive(Debug)]
pub(crate) struct Membership {
    /// Started alone (no bootstrap asked for): the first node of its ring, the owner of every key until
    /// others join.
    pub(crate) founder: bool,
    /// Has a live successor.
    pub(crate) joined: bool,
    /// Has been a ring member since it started (a node that lost every successor knows the ring's
    /// direction from its links; a joining one does not).
    pub(crate) was_joined: bool,
    /// `leave` was called; [`Timer::Leave`] closes the links, then the node has left.
    pub(crate) leaving: bool,
    /// The finger slot the sweep in progress looks up next (`ID_BITS`: no sweep in progress).
    pub(crate) finger_cursor: usize,
    /// The pause between finger sweeps: `finger_refresh_interval` after a sweep that changed a finger (or
    /// a finger was lost), doubled after each sweep that changed nothing, up to [`SWEEP_BACKOFF`] times.
    pub(crate) sweep_interval: Option<Duration>,
    /// The sweep in progress (or the last one) changed a finger.
    pub(crate) sweep_changed: bool,
    /// Bootstrap servers used, with their node ids once known.
    pub(crate) servers: Vec<(String, Option<Id>)>,
    /// Bootstrap requests not completed yet, by the link they go through.
    pub(crate) bootstraps: BTreeMap<LinkId, RequestId>,
    /// The last bootstrap failure: the server's URL and what went wrong.
    pub(crate) last_error: Option<(String, BootstrapError)>,
    /// A bootstrap failed since the node was last joined (status pages say so until it joins).
    pub(crate) failing: bool,
    pub(crate) rejoin_backoff: Duration,
    /// The successor a join lookup named, not adopted yet: asked for its predecessor first (and a nearer
    /// one followed), until the deadline.
    pub(crate) join_candidate: Option<(Id, Timestamp)>,
}

impl Default for Membership {
    fn default() -> Self {
        Membership {
            founder: true,
            joined: false,
            was_joined: false,
            leaving: false,
            finger_cursor: 0,
            sweep_interval: None,
            sweep_changed: true,
            servers: Vec::new(),
            bootstraps: BTreeMap::new(),
            last_error: None,
            failing: false,
            rejoin_backoff: REJOIN_MIN,
            join_candidate: None,
        }
    }
}

impl Membership {
    /// Remembers a bootstrap server (once, and at most [`MAX_SERVERS`]).
    pub(crate) fn add_server(&mut self, url: &str) {
        if !self.servers.iter().any(|(u, _)| u == url) && self.servers.len() < MAX_SERVERS {
            self.servers.push((url.to_string(), None));
        }
    }

    /// Learns the node id of the server at `url`.
    pub(crate) fn server_is(&mut self, url: &str, peer: Id) {
        if let Some(entry) = self.servers.iter_mut().find(|(u, _)| u == url) {
            entry.1 = Some(peer);
        }
    }
}

impl Node {
    pub(super) fn stabilize(&mut self, now: Timestamp) {
        // Skip successors we cannot reach; ask the first live one.
        match self.first_live_successor() {
            Some(s) => {
                if let Some(link) = self.links.open_to(s) {
                    self.transmit(link, msg::link_frame(&LinkMsg::GetNeighbors));
                    self.transmit(link, msg::link_frame(&LinkMsg::Notify));
                }
            }
            None if !self.ring.successors().is_empty() => {}
            None => {
                let stranded_member =
                    self.membership.was_joined.then(|| self.nearest_live_peer(now)).flatten();
                if let Some((p, link)) = stranded_member {
                    // Every successor is gone. A join lookup cannot help: the whole ring routes `me + 1` to
                    // us, its closest preceding node. The nearest ring member we are linked to, clockwise, is
                    // the best successor we know; stabilizing walks back from it to the true one through
                    // predecessors.
                    self.adopt_live_successor(now, p, link, false);
                } else if !self.membership.founder || self.links.len() > 0 {
                    // No successor at all: rejoin through whatever we are linked to.
                    let pending_join = self.lookups.any(|purpose| purpose == LookupFor::Join)
                        || self.membership.join_candidate.is_some_and(|(_, until)| until > now);
                    if !pending_join && self.links.iter().any(|(_, l)| l.routable(now) || l.kind.offerer()) {
                        self.start_join(now);
                    }
                }
            }
        }
        // Every successor needs a link (Zave: the list must be checkable); the predecessor opened its own.
        let succs = self.ring.successors().to_vec();
        for s in succs {
            self.ensure_link(now, s, LinkKind::ToSuccessor { via: None });
        }
        self.update_membership(now);
    }

    /// The first successor we have an open link to (Zave's stabilize skips the dead ones).
    pub(super) fn first_live_successor(&self) -> Option<Id> {
        self.ring.successors().iter().copied().find(|s| self.links.open_to(*s).is_some())
    }

    /// Whether a live link reaches a ring member between `candidate` and us. Without a predecessor, Zave's
    /// rectify adopts any node that notifies; one we know to lie farther from us than such a member is not
    /// our predecessor (it notifies us because its successor list is stale), and adopting it would make us
    /// answer for the keys of the nodes between. Our true predecessor notifies within a stabilize period.
    pub(super) fn knows_node_between(&self, now: Timestamp, candidate: Id) -> bool {
        let me = self.id();
        self.links.iter().any(|(_, l)| l.routable(now) && l.peer.is_some_and(|p| p.in_open(candidate, me)))
    }

    /// The ring member nearest clockwise that a live link reaches (not our predecessor, not a bootstrap
    /// link of ours), and that link.
    fn nearest_live_peer(&self, now: Timestamp) -> Option<(Id, LinkId)> {
        let me = self.id();
        let pred = self.ring.predecessor();
        self.links
            .iter()
            .filter(|(_, l)| l.routable(now) && l.kind.purpose() != LinkPurpose::Bootstrap)
            .filter_map(|(id, l)| l.peer.filter(|p| Some(*p) != pred).map(|p| (p, id)))
            .min_by_key(|(p, _)| me.distance_to(*p))
    }

    /// Looks up the owner of `me + 1`: the node that will be our successor (our own id would resolve to us).
    pub(super) fn start_join(&mut self, now: Timestamp) {
        let key = self.id().wrapping_add(Id::pow2(0));
        self.start_lookup(now, key, LookupFor::Join);
    }

    /// A successor candidate turned out live (a link to it is open): Zave's stabilize adopts it if it is
    /// nearer than the current first successor, and asks it for its list right away.
    ///
    /// Only a node that is now our first live successor is notified (as in stabilize), or the owner a
    /// merge check found (`merge`, see [`Self::merge_candidate`]). A notify to a later successor would make
    /// us its predecessor whenever it has none, claiming for it the range of the nodes between us.
    pub(super) fn adopt_live_successor(&mut self, now: Timestamp, peer: Id, link: LinkId, merge: bool) {
        self.ring.offer_successor(peer);
        if merge || self.first_live_successor() == Some(peer) {
            self.transmit(link, msg::link_frame(&LinkMsg::GetNeighbors));
            self.transmit(link, msg::link_frame(&LinkMsg::Notify));
        }
        self.update_membership(now);
    }

    /// A join lookup named `owner` as our successor. Before adopting it, ask it for its predecessor: the
    /// answer came from a plausible owner (replies.rs), but one we cannot see past — if `owner` knows a live
    /// node between us, that node is nearer and is asked in turn ([`Self::join_candidate_answered`]). The
    /// whole walk must end within `request_timeout` of the lookup's answer; then stabilize starts a new join.
    pub(super) fn vet_join_candidate(&mut self, now: Timestamp, owner: Id) {
        let until = match self.membership.join_candidate {
            Some((_, until)) if until > now => until,
            Some(_) | None => now.saturating_add(self.config.request_timeout),
        };
        self.membership.join_candidate = Some((owner, until));
        match self.links.open_to(owner) {
            Some(link) => self.transmit(link, msg::link_frame(&LinkMsg::GetNeighbors)),
            None => self.ensure_link(now, owner, LinkKind::ToSuccessor { via: None }),
        }
    }

    /// Whether `peer` is the join candidate being vetted (and we are still not joined).
    pub(super) fn is_join_candidate(&self, now: Timestamp, peer: Id) -> bool {
        !self.membership.joined
            && self.membership.join_candidate.is_some_and(|(c, until)| c == peer && until > now)
    }

    /// A link to a successor candidate opened: the join candidate is asked for its predecessor first;
    /// any other candidate is adopted (Zave's stabilize).
    pub(super) fn successor_link_opened(&mut self, now: Timestamp, peer: Id, link: LinkId, merge: bool) {
        if self.is_join_candidate(now, peer) {
            self.transmit(link, msg::link_frame(&LinkMsg::GetNeighbors));
        } else {
            self.adopt_live_successor(now, peer, link, merge);
        }
    }

    /// The join candidate `peer` told us its predecessor. If that lies between us, it is nearer: vet it
    /// instead (returns `false`). Otherwise `peer` is adopted as our successor and notified (returns `true`:
    /// its list is then taken as any successor's).
    pub(super) fn join_candidate_answered(
        &mut self,
        now: Timestamp,
        peer: Id,
        link: LinkId,
        predecessor: Option<Id>,
    ) -> bool {
        if let Some(p) = predecessor.filter(|p| p.in_open(self.id(), peer)) {
            self.vet_join_candidate(now, p);
            return false;
        }
        self.membership.join_candidate = None;
        self.ring.offer_successor(peer);
        self.transmit(link, msg::link_frame(&LinkMsg::Notify));
        self.update_membership(now);
        true
    }

    /// Links to a successor candidate, or adopts it at once if a link is already open.
    pub(super) fn want_successor(&mut self, now: Timestamp, peer: Id) {
        match self.links.open_to(peer) {
            Some(link) => self.adopt_live_successor(now, peer, link, false),
            None => self.ensure_link(now, peer, LinkKind::ToSuccessor { via: None }),
        }
    }

    /// Every `merge_interval` (± half): ask a bootstrap server's ring who our successor should be. After a
    /// partition heals, the two rings are linked by nothing but the servers; this is how they meet.
    /// ([`Timer::Merge`]; a node not joined yet, or without servers, only waits for the next one.)
    pub(super) fn check_merge(&mut self, now: Timestamp) {
        if !self.membership.joined || self.membership.servers.is_empty() {
            // Looked at again on the link upkeep cadence: the first check follows the join at once.
            self.timers.set(Timer::Merge, now.saturating_add(self.config.ping_interval / 2));
            return;
        }
        let interval = self.config.merge_interval.as_millis() as u64;
        let jitter = if interval > 0 { self.rng.next_u64() % interval } else { 0 };
        self.timers.set(Timer::Merge, Timestamp(now.0 + interval / 2 + jitter));
        let pick = (self.rng.next_u64() % self.membership.servers.len() as u64) as usize;
        let (url, server) = self.membership.servers[pick].clone();
        match server.and_then(|s| self.links.open_to(s)) {
            Some(link) => self.start_merge_check(now, link),
            None => {
                if self.has_room_keeping_headroom() {
                    self.open_bootstrap_link(now, &url, true);
                }
            }
        }
    }

    /// Whether the node is cut off: not a founder, not joined, no link at all, but servers to ask.
    pub(super) fn stranded(&self) -> bool {
        let m = &self.membership;
        !m.joined && !m.founder && self.links.len() == 0 && !m.servers.is_empty()
    }

    /// A node that lost every link after joining (or whose bootstrap failed) tries its bootstrap servers
    /// again, with a growing pause — a shell need not notice ([`Timer::Rejoin`], armed by `drop_link`).
    pub(super) fn rejoin(&mut self, now: Timestamp) {
        if !self.stranded() {
            self.timers.stop(Timer::Rejoin);
            self.membership.rejoin_backoff = REJOIN_MIN;
            return;
        }
        self.timers.set(Timer::Rejoin, now.saturating_add(self.membership.rejoin_backoff));
        self.membership.rejoin_backoff = (self.membership.rejoin_backoff * 2).min(REJOIN_MAX);
        let pick = (self.rng.next_u64() % self.membership.servers.len() as u64) as usize;
        let url = self.membership.servers[pick].0.clone();
        self.open_bootstrap_link(now, &url, false);
    }

    /// A bootstrap through `link` failed (the shell could not reach the server, or the link to it did not
    /// open or closed before the join): remember why for status pages, and fail its request if one waits.
    pub(super) fn bootstrap_failed(&mut self, link: LinkId, error: BootstrapError) {
        if let Some(LinkKind::ToServer { url, merge_check: false }) = self.links.get(link).map(|l| &l.kind) {
            if !self.membership.joined {
                self.membership.last_error = Some((url.clone(), error.clone()));
                self.membership.failing = true;
            }
        }
        if let Some(request) = self.membership.bootstraps.remove(&link) {
            self.io.emit(Event::RequestFailed { request, reason: FailReason::Bootstrap(error) });
        }
    }

    /// After the last link went: a stranded node tries a server again after the backoff.
    pub(super) fn arm_rejoin(&mut self, now: Timestamp) {
        if self.stranded() && self.timers.get(Timer::Rejoin).is_none() {
            self.timers.set(Timer::Rejoin, now.saturating_add(self.membership.rejoin_backoff));
        }
    }

    pub(super) fn start_merge_check(&mut self, now: Timestamp, via: LinkId) {
        let key = self.id().wrapping_add(Id::pow2(0));
        self.start_lookup(now, key, LookupFor::Merge(via));
    }

    /// The server's ring says `owner` follows us. If that is not our successor, the two of us are in different
    /// rings (or one of us missed a node), and a link to `owner` settles it either way:
    /// - `owner` is nearer than our successor: it becomes our successor (`adopt_live_successor` once the link
    ///   is open) and stabilization walks the rest.
    /// - our successor lies between us and `owner`: the server's ring has no node there, so `owner`'s
    ///   predecessor is in the other ring and should hear of us. The link's first `Notify` makes us `owner`'s
    ///   predecessor; its old predecessor then finds us by stabilizing, and the rings cross.
    ///
    /// Only the two nodes at the ends of a crossing can see the first case, and only if their server is in
    /// the other ring; the second case lets any member whose server is in the other ring start the merge.
    /// In one healthy ring `owner` is our successor and nothing happens.
    pub(super) fn merge_candidate(&mut self, now: Timestamp, owner: Id, via: LinkId) {
        if owner == self.id() || self.ring.successors().first() == Some(&owner) {
            return;
        }
        if let Some(link) = self.links.open_to(owner) {
            self.adopt_live_successor(now, owner, link, true);
            return;
        }
        if self.links.by_peer(owner).is_some() {
            return;
        }
        self.ensure_link(now, owner, LinkKind::ToSuccessor { via: Some(via) });
    }

    /// [`Timer::FingerSweep`]: a sweep starts at most every `finger_refresh_interval`, and only once the
    /// previous one is done (else the timer looks again a stabilize interval later).
    pub(super) fn start_finger_sweep(&mut self, now: Timestamp) {
        if !self.membership.joined || self.membership.finger_cursor < ID_BITS {
            self.timers.set(Timer::FingerSweep, now.saturating_add(self.config.stabilize_interval));
            return;
        }
        self.membership.finger_cursor = self.ring.first_open_slot();
        let base = self.config.finger_refresh_interval;
        let m = &mut self.membership;
        // A ring whose fingers stay put is swept less and less often; a change brings the pace back.
        let interval = match (m.sweep_interval, m.sweep_changed) {
            (Some(previous), false) => (previous * 2).min(base * SWEEP_BACKOFF),
            (None, _) | (Some(_), true) => base,
        };
        m.sweep_interval = Some(interval);
        m.sweep_changed = false;
        self.timers.set(Timer::FingerSweep, now.saturating_add(interval));
    }

    /// A peer is gone (its link died, it left, nobody could reach it): out of the successor list,
    /// predecessor and fingers. A lost finger brings the next finger sweep forward to the next stabilize.
    pub(super) fn forget_peer(&mut self, now: Timestamp, peer: Id) {
        let finger = self.ring.is_finger(peer);
        self.ring.remove(peer);
        if finger {
            let m = &mut self.membership;
            m.sweep_changed = true;
            if m.finger_cursor >= ID_BITS {
                let soon = now.saturating_add(self.config.stabilize_interval);
                if self.timers.get(Timer::FingerSweep).is_none_or(|at| at > soon) {
                    self.timers.set(Timer::FingerSweep, soon);
                }
            }
        }
    }

    /// One step of a sweep in progress: one lookup fills every slot up to the owner it finds.
    pub(super) fn fix_next_finger(&mut self, now: Timestamp) {
        if !self.membership.joined || self.lookups.any(|purpose| matches!(purpose, LookupFor::Finger(_))) {
            return;
        }
        let first = self.ring.first_open_slot();
        if first >= ID_BITS || self.membership.finger_cursor >= ID_BITS {
            return;
        }
        self.membership.finger_cursor = self.membership.finger_cursor.max(first);
        let slot = self.membership.finger_cursor;
        self.start_lookup(now, self.id().finger_target(slot), LookupFor::Finger(slot));
    }

    pub(super) fn finger_found(&mut self, now: Timestamp, slot: usize, owner: Id) {
        let before = self.ring.distinct_fingers().to_vec();
        let next = self.ring.set_finger(slot, owner);
        self.membership.sweep_changed |= before != self.ring.distinct_fingers();
        self.membership.finger_cursor = next.unwrap_or(ID_BITS);
        self.connect_fingers(now);
    }

    /// Opens links to the farthest `max_fingers` distinct fingers, within the budget.
    pub(super) fn connect_fingers(&mut self, now: Timestamp) {
        let wanted: Vec<Id> = self.ring.wanted_fingers().to_vec();
        for f in wanted {
            if self.links.by_peer(f).is_some() {
                continue;
            }
            if !self.has_room_keeping_headroom() {
                break;
            }
            if self.links.is_busy(f, now) {
                continue;
            }
            self.ensure_link(now, f, LinkKind::ToFinger);
        }
    }

    pub(super) fn update_membership(&mut self, now: Timestamp) {
        let joined = self.first_live_successor().is_some();
        self.membership.was_joined |= joined;
        if joined != self.membership.joined {
            self.membership.joined = joined;
            if joined {
                // Bootstrap requests complete with this membership event.
                self.membership.bootstraps.clear();
                self.membership.failing = false;
                self.timers.set(Timer::Presence, now);
            }
            self.io.emit(Event::Membership { joined });
        }
    }
}
