//! The link policy: which links the node wants and keeps (its ring neighbours, its fingers, setup links
//! still doing their job), which it refuses or evicts when the budget is full, when a link is dead, and
//! what the link messages (pings, stabilize, notify, leave, replication, acknowledgements) do.
//!
//! This is the parent's glue over [`Links`](super::links::Links) (the table) and
//! [`Ring`](super::ring::Ring) (who the node needs): a link's roles come from the ring, and the ring learns
//! from the links which peers are live.

use std::time::Duration;

use rand_core::RngCore;

use super::links::{AnswerPath, Link, LinkKind, LinkState};
use super::msg::{self, AckRange, LinkMsg, RejectReason};
use super::Node;
use crate::id::Id;
use crate::node::api::{BootstrapError, LinkId, LinkPurpose, LinkRole, Output};
use crate::time::Timestamp;

/// Links being set up at once (per node) for ring maintenance.
const MAX_PENDING_LINKS: usize = 6;
/// Links kept free for ring neighbours when opening finger links.
pub(super) const RING_HEADROOM: usize = 2;
/// An offer routed through the ring that has no answer after this long was lost (the target crashed or
/// restarted meanwhile): the link is dropped, and the next stabilize offers again.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// A link the peer pings is still pinged by us this often, to keep our own round-trip time measured.
const RTT_REFRESH: Duration = Duration::from_secs(15);

impl Node {
    /// Roles this node gives a link (why it keeps it), by name, for status pages. A direct link is named
    /// `direct` whether or not it still carries its flow (status pages have no clock).
    pub(super) fn roles_of(&self, id: LinkId, link: &Link) -> Vec<&'static str> {
        self.roles_given(link.last_used, id, link).names()
    }

    /// Whether this node has any reason to keep a link.
    pub(super) fn needed(&self, now: Timestamp, id: LinkId, link: &Link) -> bool {
        self.roles_given(now, id, link).any()
    }

    /// The roles this node gives a link at `now`.
    pub(super) fn roles_given(&self, now: Timestamp, id: LinkId, link: &Link) -> Roles {
        let peer = link.peer;
        let bootstrap = link.kind.is_own_bootstrap()
            && (!self.membership.joined || self.membership.bootstraps.contains_key(&id));
        Roles {
            successor: peer.is_some_and(|p| self.ring.successors().contains(&p)),
            predecessor: peer.is_some() && self.ring.predecessor() == peer,
            finger: peer.is_some_and(|p| self.ring.wanted_fingers().contains(&p)),
            bootstrap: bootstrap.then_some(if link.is_pairing() { "pairing" } else { "bootstrap" }),
            direct: self.direct_in_use(now, link),
        }
    }

    /// Offers a link of `kind` (to a successor candidate or a finger) to `peer`, unless one exists or the
    /// budget says no.
    pub(super) fn ensure_link(&mut self, now: Timestamp, peer: Id, kind: LinkKind) {
        if peer == self.id() || self.links.by_peer(peer).is_some() {
            return;
        }
        if self.links.is_busy(peer, now) || self.is_backed_off(peer, now) {
            return;
        }
        let pending = self.links.iter().filter(|(_, l)| !l.is_open()).count();
        if pending >= MAX_PENDING_LINKS {
            return;
        }
        if !self.make_room(now, false) {
            return;
        }
        let id = self.links.insert(Link::offer(now, Some(peer), kind));
        self.open_link_output(id, LinkRole::Offer);
    }

    pub(super) fn open_link_output(&mut self, link: LinkId, role: LinkRole) {
        self.io.counters.link_creations += 1;
        self.io.push(Output::OpenLink { link, role });
    }

    /// Whether a new link fits the budget: a node joining through us (`joiner`) may take any slot, any
    /// other link only the ring's ([`Config::ring_link_cap`](super::Config::ring_link_cap)), so the
    /// `join_slots` stay for joiners.
    pub(super) fn has_room(&self, joiner: bool) -> bool {
        self.links.len() < self.config.link_cap()
            && (joiner || self.links.ring_count() < self.config.ring_link_cap())
    }

    /// Whether a link of ours that is not a ring neighbour (a finger, a merge check) fits while leaving
    /// [`RING_HEADROOM`] of the ring's slots free.
    pub(super) fn has_room_keeping_headroom(&self) -> bool {
        self.has_room(false) && self.links.ring_count() + RING_HEADROOM < self.config.ring_link_cap()
    }

    /// Makes room for a new link — a ring link of ours, a ring link a peer offers, or a node joining
    /// through us (`joiner`) — by evicting one link if the budget is full (see [`Self::eviction_victim`]).
    /// `false`: every link that could go is needed, and the newcomer is refused.
    pub(super) fn make_room(&mut self, now: Timestamp, joiner: bool) -> bool {
        if self.has_room(joiner) {
            return true;
        }
        match self.eviction_victim(now, joiner) {
            Some(id) => {
                self.drop_link(now, id, true);
                self.has_room(joiner)
            }
            None => false,
        }
    }

    /// The link to close so a newcomer gets a slot. The node decides what it needs; what a peer says
    /// (`keep`) only breaks ties, so no peer can pin a slot by pinging. Never evicted:
    ///
    /// - a link with a ring role here (successor, predecessor, a setup link of ours still doing its job);
    /// - the links of the r peers nearest behind us that keep theirs: the nodes that have us in their
    ///   successor list (Zave: a list must be checkable) — a hoarder would need ids right behind ours;
    /// - a join in progress: a joiner's link younger than `idle_link_grace` (a join takes a few seconds)
    ///   that is still opening or has carried a routed frame in (the join lookup goes out as soon as it
    ///   opens), or a pairing link not open yet (a person is carrying the codes) — for a ring newcomer, only while
    ///   joiners hold no more than their `join_slots` (beyond those they sit in the ring's slots);
    /// - for a ring newcomer while the ring's slots are full, a joiner's link (that frees no ring slot);
    /// - our own offer to a successor candidate still being set up: the ring's repair. Before 2026-12-08 it
    ///   had no role until it opened and went first; a server whose slots were full of joiners evicted a
    ///   join to offer it and the next joiner's offer evicted it again, every stabilize round, so the
    ///   server's successor stayed wrong for minutes, joins routed past it looped, and joiners were
    ///   stranded (`docs/simulator.md`, "Mass join strands joiners at some seeds"). At most
    ///   `MAX_PENDING_LINKS` links are being set up, and a setup that does not finish times out.
    ///
    /// Of the rest, links nobody needs go first, then links only the peer says it needs, then our own
    /// fingers and direct links (a finger one node further on still routes well; a flow goes by the ring
    /// again), then joins in progress; within each, the one idle longest (no routed frame in for the longest
    /// time), then the oldest.
    pub(super) fn eviction_victim(&self, now: Timestamp, joiner: bool) -> Option<LinkId> {
        let me = self.id();
        let mut behind: Vec<(Id, LinkId)> = self
            .links
            .iter()
            .filter(|(_, l)| l.peer_keeps_until > now && l.peer_in_ring)
            .filter_map(|(id, l)| l.peer.map(|p| (p.distance_to(me), id)))
            .collect();
        behind.sort_unstable();
        let ring_back: Vec<LinkId> = behind.iter().take(self.config.successors).map(|(_, id)| *id).collect();
        let ring_count = self.links.ring_count();
        let ring_full = !joiner && ring_count >= self.config.ring_link_cap();
        // Joiners beyond their own slots sit in the ring's: a ring newcomer may take those back.
        let joiners_spill = self.links.len() - ring_count > self.config.join_slots;
        let mut victim: Option<((u8, Timestamp), LinkId)> = None;
        for (id, link) in self.links.iter() {
            let joining = link.kind.joins_through_us();
            // A joiner sends its join lookup as soon as the link opens; one that sends nothing is not joining.
            let join_in_progress = (joining
                && now.since(link.created) < self.config.idle_link_grace
                && (!link.is_open() || link.last_used > link.created))
                || (link.is_pairing() && !link.is_open());
            let repairing = matches!(link.kind, LinkKind::ToSuccessor { .. }) && !link.is_open();
            if (ring_full && joining) || ring_back.contains(&id) || repairing {
                continue;
            }
            if join_in_progress && (joiner || !joiners_spill) {
                continue;
            }
            let roles = self.roles_given(now, id, link);
            let rank = if join_in_progress {
                3
            } else if !roles.any() {
                u8::from(link.peer_keeps_until > now)
            } else if roles.finger_or_direct_only() {
                2
            } else {
                continue;
            };
            // Ids only grow: on a tie the first (oldest) link stays the pick.
            let key = (rank, link.last_used);
            if victim.is_none_or(|(k, _)| key < k) {
                victim = Some((key, id));
            }
        }
        victim.map(|(_, id)| id)
    }

    /// Answers an offer from `peer` (a link of `kind`, from the peer's side), or says why not. Returns the
    /// link that answers it.
    pub(super) fn accept_offer(
        &mut self,
        now: Timestamp,
        peer: Id,
        kind: LinkKind,
        sdp: String,
        path: AnswerPath,
    ) -> Result<LinkId, RejectReason> {
        if peer == self.id() || self.membership.leaving || self.is_backed_off(peer, now) {
            return Err(RejectReason::Busy);
        }
        if let Some(existing) = self.links.by_peer(peer) {
            let link = self.links.get(existing).map(|l| (&l.state, l.kind.offerer()));
            match link {
                Some((
                    LinkState::MakingOffer | LinkState::AwaitingKey { .. } | LinkState::AwaitingAnswer { .. },
                    true,
                )) => {
                    // Both sides offered at once: the lower id stays the offerer.
                    if self.id() < peer {
                        return Err(RejectReason::Duplicate);
                    }
                    self.drop_link(now, existing, true);
                }
                Some((LinkState::Open, _)) | Some((LinkState::Connecting, true)) => {
                    // The peer lost its end (it restarted or timed out): replace ours.
                    self.drop_link(now, existing, true);
                }
                _ => return Err(RejectReason::Duplicate),
            }
        }
        if kind.purpose() == LinkPurpose::Direct && !self.direct_room(now, peer) {
            // A shortcut for the peer's flow, only while we have slots to spare: it never evicts a link.
            self.io.counters.refused_links += 1;
            return Err(RejectReason::Busy);
        }
        let joiner = kind.joins_through_us();
        if !self.has_room(joiner) {
            // A ring link, or a node joining through us (a server full of fingers must still let nodes in);
            // a finger that does not fit is refused, and the offerer tries our successors instead.
            let evicts = matches!(kind.purpose(), LinkPurpose::Successor | LinkPurpose::Bootstrap);
            if !(evicts && self.make_room(now, joiner)) {
                self.io.counters.refused_links += 1;
                return Err(RejectReason::Busy);
            }
        }
        let mut link = Link::answer(now, peer, kind, path);
        // The offerer wants this link; keep it at least through setup and the first pings.
        link.peer_keeps_until = now.saturating_add(self.config.idle_link_grace);
        let id = self.links.insert(link);
        self.open_link_output(id, LinkRole::Answer(sdp));
        Ok(id)
    }

    /// Forgets a link; `close` also tells the shell to close it.
    pub(super) fn drop_link(&mut self, now: Timestamp, id: LinkId, close: bool) {
        self.remove_link(now, id, close, None);
    }

    /// [`Self::drop_link`], for a link to a bootstrap server that failed with `error` (else the link's own
    /// state says why: it closed, or it never opened).
    pub(super) fn remove_link(
        &mut self,
        now: Timestamp,
        id: LinkId,
        close: bool,
        error: Option<BootstrapError>,
    ) {
        if let Some(link) = self.links.get(id) {
            if matches!(link.kind, LinkKind::ToServer { .. }) {
                // A bootstrap request still pending has not joined through this link: the shell hears so.
                let why = error.unwrap_or(if link.is_open() {
                    BootstrapError::LinkClosed
                } else {
                    BootstrapError::LinkFailed
                });
                self.bootstrap_failed(id, why);
            }
        }
        let Some(link) = self.links.remove(id) else { return };
        if close {
            self.io.push(Output::CloseLink { link: id });
        }
        if let Some(peer) = link.peer {
            // A link that was never open says nothing about the peer (a refused or crossed offer); the
            // callers that learn it is gone (setup timeout, NodeNotFound) remove it themselves.
            if link.is_open() {
                self.forget_peer(now, peer);
            }
        }
        // Frames waiting for this link's acknowledgement go over the next-best link now.
        self.reroute_waiting_on(now, id);
        self.update_membership(now);
        self.arm_rejoin(now);
    }

    pub(super) fn maintain_links(&mut self, now: Timestamp) {
        let ids = self.links.ids();
        for id in ids {
            let Some(link) = self.links.get(id) else { continue };
            if !link.is_open() {
                // Only offers routed through the ring (servers answer over HTTP, people take their time).
                let routed_offer = matches!(
                    link.kind,
                    LinkKind::ToSuccessor { .. } | LinkKind::ToFinger | LinkKind::ToDirect
                );
                let lost_offer = routed_offer
                    && matches!(link.state, LinkState::AwaitingAnswer { since } | LinkState::AwaitingKey { since, .. }
                        if now.since(since) > ANSWER_TIMEOUT);
                if lost_offer && link.kind == LinkKind::ToDirect {
                    // Only a shortcut: the flow keeps going by the ring, and the peer is no neighbour of ours.
                    self.direct_failed(now, id, true);
                    continue;
                }
                if lost_offer {
                    // Unanswered: the peer is dead, or restarted and lost our offer. Offer once more at once;
                    // a second silence means dead, and dead entries must leave the successor list (a list of
                    // only dead nodes would never be replaced).
                    let peer = link.peer;
                    let kind = match link.kind {
                        LinkKind::ToFinger => LinkKind::ToFinger,
                        LinkKind::ToDirect
                        | LinkKind::ToSuccessor { .. }
                        | LinkKind::ToServer { .. }
                        | LinkKind::From(_)
                        | LinkKind::Pairing { .. } => LinkKind::ToSuccessor { via: None },
                    };
                    self.drop_link(now, id, true);
                    if let Some(peer) = peer {
                        let misses = self.links.unanswered.entry(peer).or_insert(0);
                        *misses += 1;
                        if *misses >= 2 {
                            self.links.unanswered.remove(&peer);
                            self.forget_peer(now, peer);
                        } else {
                            self.ensure_link(now, peer, kind);
                        }
                    }
                    continue;
                }
                let setup_timeout = if link.is_pairing() {
                    super::pairing::PAIRING_TIMEOUT
                } else {
                    self.config.link_setup_timeout
                };
                if now.since(link.created) > setup_timeout {
                    if link.kind == LinkKind::ToDirect {
                        self.direct_failed(now, id, true);
                        continue;
                    }
                    let peer = link.peer;
                    if let Some(peer) = peer {
                        // An unreachable successor candidate is as good as dead.
                        self.forget_peer(now, peer);
                    }
                    self.drop_link(now, id, true);
                }
                continue;
            }
            if now.since(link.last_recv) > self.config.link_timeout {
                self.drop_link(now, id, true);
                continue;
            }
            let needed = self.roles_given(now, id, link).any();
            if needed {
                // Pinged every interval whatever else flows: the ping carries `keep`, which is what
                // stops the peer from closing a link only we need. One end's pings serve both: a peer
                // that pinged within the interval hears our `keep` (and our range) in our pong, and its
                // pings prove it alive, so we ping only when it has not — or when our own round-trip
                // time is unknown or older than RTT_REFRESH (acknowledgement timeouts and status pages
                // read it on both ends).
                let peer_pings = now.since(link.last_ping_in) < self.config.ping_interval;
                let rtt_fresh = link.rtt.is_some() && now.since(link.last_ping) < RTT_REFRESH;
                if now.since(link.last_ping) >= self.config.ping_interval && !(peer_pings && rtt_fresh) {
                    let nonce = self.rng.next_u64();
                    if let Some(l) = self.links.get_mut(id) {
                        l.ping = Some((nonce, now));
                        l.last_ping = now;
                    }
                    let range_from = self.ring.predecessor();
                    self.transmit(id, msg::link_frame(&LinkMsg::Ping { nonce, keep: true, range_from }));
                }
            } else if link.peer_keeps_until <= now && now.since(link.created) > self.config.idle_link_grace {
                self.drop_link(now, id, true);
            }
        }
        // Rectify: a predecessor we have no link to is forgotten; a notify will bring the right one.
        if let Some(p) = self.ring.predecessor() {
            if self.links.open_to(p).is_none() {
                self.ring.set_predecessor(None);
            }
        }
        self.links.busy.retain(|_, until| *until > now);
        self.router.replay.expire(now);
        self.me.cache.prune(now);
    }

    pub(super) fn handle_link_msg(&mut self, now: Timestamp, link_id: LinkId, m: LinkMsg) {
        let Some(peer) = self.links.get(link_id).and_then(|l| l.peer) else { return };
        let keep_until = now.saturating_add(self.config.ping_interval * 3);
        // A member stabilizing sends `Notify` with its `GetNeighbors`; a `GetNeighbors` alone comes from a
        // node vetting us as its join candidate (membership.rs), not in the ring yet. Counted as a member,
        // its link would be routable and, if it lies between us and our true predecessor, we would refuse
        // that predecessor's notify (`knows_node_between`) for as long as the joiner stays linked.
        if matches!(m, LinkMsg::Notify | LinkMsg::Neighbors { .. }) {
            if let Some(l) = self.links.get_mut(link_id) {
                l.peer_in_ring = true;
            }
        }
        match m {
            LinkMsg::Ping { nonce, keep, range_from } => {
                if let Some(l) = self.links.get_mut(link_id) {
                    l.last_ping_in = now;
                    if keep {
                        l.peer_keeps_until = keep_until;
                    }
                    l.peer_range_from = range_from;
                }
                let mine = self.links.get(link_id).is_some_and(|l| self.needed(now, link_id, l));
                let range_from = self.ring.predecessor();
                let pong = LinkMsg::Pong { nonce, keep: mine, range_from };
                self.transmit(link_id, msg::link_frame(&pong));
            }
            LinkMsg::Pong { nonce, keep, range_from } => {
                if let Some(l) = self.links.get_mut(link_id) {
                    l.peer_range_from = range_from;
                    if let Some((n, at)) = l.ping {
                        if n == nonce {
                            l.record_rtt(now.since(at));
                            l.ping = None;
                            l.suspect_until = Timestamp::ZERO;
                        }
                    }
                    if keep {
                        l.peer_keeps_until = keep_until;
                    }
                }
            }
            LinkMsg::GetNeighbors => {
                let reply = LinkMsg::Neighbors {
                    predecessor: self.ring.predecessor(),
                    successors: self.ring.successors().to_vec(),
                };
                self.transmit(link_id, msg::link_frame(&reply));
                if let Some(l) = self.links.get_mut(link_id) {
                    l.peer_keeps_until = keep_until;
                }
            }
            LinkMsg::Neighbors { predecessor, successors } => {
                if self.is_join_candidate(now, peer)
                    && !self.join_candidate_answered(now, peer, link_id, predecessor)
                {
                    return;
                }
                if self.first_live_successor() != Some(peer) {
                    return;
                }
                if successors.is_empty() {
                    // A successor without successors is not in a ring yet (it is joining, perhaps restarted
                    // with the same id): its empty list says nothing, and adopting it would cut ours to one.
                    return;
                }
                self.ring.adopt_list(peer, &successors);
                if let Some(p) = predecessor {
                    if p.in_open(self.id(), peer) {
                        // Adopted once a link to it opens (i.e. it is live).
                        self.want_successor(now, p);
                    }
                }
                for s in self.ring.successors().to_vec() {
                    self.ensure_link(now, s, LinkKind::ToSuccessor { via: None });
                }
            }
            LinkMsg::Notify => {
                if self.ring.predecessor().is_some() || !self.knows_node_between(now, peer) {
                    self.ring.notified(peer);
                }
                if self.membership.founder && self.ring.successors().is_empty() {
                    // A founder alone learns its first successor from the first node that joins. Any other
                    // node without successors finds one in `stabilize`: the node notifying it is its
                    // predecessor, and taking that as the successor would point it backwards round the ring.
                    self.ring.offer_successor(peer);
                    self.update_membership(now);
                }
                if let Some(l) = self.links.get_mut(link_id) {
                    l.peer_keeps_until = keep_until;
                }
            }
            LinkMsg::Leave { predecessor, successors } => {
                let was_successor = self.ring.successors().contains(&peer);
                self.forget_peer(now, peer);
                if was_successor {
                    let mut list: Vec<Id> = self.ring.successors().to_vec();
                    list.extend(successors.iter().copied().filter(|s| *s != peer));
                    if let Some((first, rest)) = list.split_first() {
                        self.ring.adopt_list(*first, rest);
                    }
                }
                if self.ring.predecessor().is_none() {
                    if let Some(p) = predecessor.filter(|p| self.links.open_to(*p).is_some()) {
                        self.ring.set_predecessor(Some(p));
                    }
                }
                self.drop_link(now, link_id, true);
                for s in self.ring.successors().to_vec() {
                    self.ensure_link(now, s, LinkKind::ToSuccessor { via: None });
                }
            }
            LinkMsg::Replicate { records } => {
                let placed = records.into_iter().map(|r| (r.key(), r)).collect();
                self.handle_replicate(now, placed)
            }
            LinkMsg::ReplicateAt { key, records } => {
                self.handle_replicate(now, records.into_iter().map(|r| (key, r)).collect())
            }
            // Only with the recipient session's own signed acknowledgement, never on the peer's word.
            LinkMsg::DropMail { ack } => {
                self.apply_mail_ack(now, &ack);
            }
            LinkMsg::Ack { from, upto } => self.acked(now, link_id, AckRange { from, upto }),
        }
    }
}

/// Why a node keeps a link; a link with no role may be closed once its peer stops keeping it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Roles {
    successor: bool,
    predecessor: bool,
    finger: bool,
    /// `"bootstrap"` or `"pairing"`: our own setup link that has not done its job yet.
    bootstrap: Option<&'static str>,
    /// A direct link that carried a routed frame in within the policy's `idle` (`direct.rs`).
    direct: bool,
}

impl Roles {
    pub(super) fn any(&self) -> bool {
        self.successor || self.predecessor || self.finger || self.bootstrap.is_some() || self.direct
    }

    /// A finger or a direct link and nothing else: the roles a newcomer may evict (another node routes as
    /// well; a flow goes by the ring again).
    pub(super) fn finger_or_direct_only(&self) -> bool {
        (self.finger || self.direct) && !self.successor && !self.predecessor && self.bootstrap.is_none()
    }

    pub(super) fn names(&self) -> Vec<&'static str> {
        let flags = [
            (self.successor, "successor"),
            (self.predecessor, "predecessor"),
            (self.finger, "finger"),
            (self.direct, "direct"),
        ];
        let mut names: Vec<&'static str> =
            flags.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect();
        names.extend(self.bootstrap);
        names
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::super::links::{AnswerPath, Link, LinkKind, LinkState};
    use super::super::msg::{LinkMsg, RejectReason};
    use super::super::{Config, Node};
    use crate::id::Id;
    use crate::identity::delegation::{delegation_message, Delegation, DelegationRequest};
    use crate::identity::wallet::WalletKey;
    use crate::identity::SessionKey;
    use crate::node::api::{LinkId, LinkPurpose};
    use crate::time::Timestamp;

    const T0: Timestamp = Timestamp(1_800_000_000_000);
    /// Long after the links below were made: none of them is a join in progress.
    const LATER: Timestamp = Timestamp(1_800_000_000_000 + 60_000);

    fn node() -> Node {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let session = SessionKey::generate(&mut rng);
        let wallet = WalletKey::generate(&mut rng);
        let req = DelegationRequest::new("test.local", wallet.address(), 1, "test");
        let delegation = Delegation::sign(&delegation_message(session.public(), &req, T0, &mut rng), &wallet);
        Node::new(Config::new("test", [7; 32]), session, delegation, T0).expect("a valid delegation")
    }

    /// An open link of `kind` that the peer `peer` offered at T0, kept by its peer until long after LATER.
    fn linked(node: &mut Node, peer: Id, kind: LinkKind) -> LinkId {
        let mut link = Link::answer(T0, peer, kind, AnswerPath::Http(0));
        link.state = LinkState::Open;
        link.peer_keeps_until = LATER.saturating_add(Duration::from_secs(60));
        node.links.insert(link)
    }

    fn peer(i: u32) -> Id {
        Id::hash(&[b"peer", &i.to_be_bytes()])
    }

    fn offer(
        node: &mut Node,
        now: Timestamp,
        peer: Id,
        purpose: LinkPurpose,
    ) -> Result<LinkId, RejectReason> {
        let kind = LinkKind::From(purpose);
        node.accept_offer(now, peer, kind, "sdp".into(), AnswerPath::Http(1))
    }

    #[test]
    fn a_full_node_evicts_the_link_idle_longest_whatever_its_peer_says() {
        let mut node = node();
        let cap = node.config.link_cap();
        let ids: Vec<LinkId> = (0..cap as u32)
            .map(|i| linked(&mut node, peer(i), LinkKind::From(LinkPurpose::Bootstrap)))
            .collect();
        // Every link is kept by its peer; the first ones carried routed frames lately, the fifth never.
        for (n, id) in ids.iter().enumerate() {
            let l = node.links.get_mut(*id).expect("link");
            l.last_used = if n == 4 { T0 } else { LATER };
        }
        let joiner = offer(&mut node, LATER, peer(1000), LinkPurpose::Bootstrap).expect("room is made");
        assert!(node.links.get(ids[4]).is_none(), "the idle link went");
        assert!(node.links.get(joiner).is_some());
        assert_eq!(node.links.len(), cap);
        // Again: with every link equally idle, the oldest goes.
        offer(&mut node, LATER, peer(1001), LinkPurpose::Bootstrap).expect("room is made");
        assert!(node.links.get(ids[0]).is_none(), "the oldest link went");
        assert_eq!(node.links.len(), cap);
    }

    #[test]
    fn ring_traffic_cannot_take_the_join_slots() {
        let mut node = node();
        let ring_cap = node.config.ring_link_cap();
        for i in 0..ring_cap as u32 {
            linked(&mut node, peer(i), LinkKind::From(LinkPurpose::Finger));
        }
        // A finger offer does not fit (and fingers evict nothing) although slots are free...
        assert_eq!(offer(&mut node, LATER, peer(1000), LinkPurpose::Finger), Err(RejectReason::Busy));
        assert_eq!(node.links.len(), ring_cap);
        // ... which joiners take without evicting anyone.
        for i in 0..node.config.join_slots as u32 {
            offer(&mut node, LATER, peer(2000 + i), LinkPurpose::Bootstrap).expect("a join slot");
        }
        assert_eq!(node.links.len(), node.config.link_cap());
        assert_eq!(node.links.ring_count(), ring_cap);
        // A ring offer now evicts a ring link, not a joiner's.
        offer(&mut node, LATER, peer(3000), LinkPurpose::Successor).expect("room is made");
        assert_eq!(node.links.ring_count(), ring_cap);
        assert_eq!(node.links.len() - node.links.ring_count(), node.config.join_slots);
    }

    #[test]
    fn direct_offers_take_spare_slots_only_and_end_when_idle() {
        let mut node = node();
        let max = node.config.direct.max_links;
        // A peer's flow gets a shortcut while the policy and the ring's headroom allow…
        for i in 0..max as u32 {
            offer(&mut node, LATER, peer(i), LinkPurpose::Direct).expect("a direct slot");
        }
        // …and no more than `max_links` of them.
        assert_eq!(offer(&mut node, LATER, peer(100), LinkPurpose::Direct), Err(RejectReason::Busy));
        // With the ring's headroom gone, even a first direct link is refused, and evicts nothing.
        let mut node = self::node();
        let ring_cap = node.config.ring_link_cap();
        for i in 0..(ring_cap - super::RING_HEADROOM) as u32 {
            linked(&mut node, peer(i), LinkKind::From(LinkPurpose::Finger));
        }
        assert_eq!(offer(&mut node, LATER, peer(200), LinkPurpose::Direct), Err(RejectReason::Busy));
        assert_eq!(node.links.len(), ring_cap - super::RING_HEADROOM);
        // A direct link that carried nothing for the policy's idle time has no role left.
        let mut node = self::node();
        let id = offer(&mut node, LATER, peer(300), LinkPurpose::Direct).expect("a direct slot");
        let link = node.links.get_mut(id).expect("link");
        link.state = LinkState::Open;
        link.last_used = LATER;
        let busy = LATER.saturating_add(Duration::from_secs(1));
        let idle = LATER.saturating_add(node.config.direct.idle);
        let link = node.links.get(id).expect("link");
        assert_eq!(node.roles_given(busy, id, link).names(), vec!["direct"]);
        assert!(!node.needed(idle, id, link), "idle: nothing keeps it");
    }

    #[test]
    fn a_direct_link_that_could_not_be_made_is_not_offered_again_soon() {
        let mut node = node();
        let dest = peer(7);
        let policy = node.config.direct;
        let flow = |node: &mut Node, at: Timestamp| {
            for _ in 0..policy.after_frames {
                node.note_flow(at, dest, 100);
            }
        };
        flow(&mut node, LATER);
        let id = node.links.by_peer(dest).expect("a sustained flow offers a direct link");
        assert_eq!(node.links.get(id).map(|l| l.kind.clone()), Some(LinkKind::ToDirect));
        // Setup times out (as when the offer is refused, or ICE fails): the link goes…
        let next =
            LATER.saturating_add(node.config.link_setup_timeout).saturating_add(Duration::from_secs(1));
        node.maintain_links(next);
        assert!(node.links.get(id).is_none(), "the link that could not be made is gone");
        // …and the next window's flow does not offer another.
        flow(&mut node, next);
        assert!(node.links.by_peer(dest).is_none(), "not offered again within the retry time");
        assert!(!node.links.is_busy(dest, next), "a ring link to the same peer is not held back");
        let after = next.saturating_add(super::super::direct::DIRECT_RETRY);
        flow(&mut node, after);
        assert!(node.links.by_peer(dest).is_some(), "offered again after it");
        assert_eq!(node.io.counters.direct_links, 2);
    }

    #[test]
    fn a_join_in_progress_is_not_evicted_by_another_joiner() {
        let mut node = node();
        let cap = node.config.link_cap();
        let now = T0.saturating_add(Duration::from_secs(2));
        for i in 0..cap as u32 {
            let id = linked(&mut node, peer(i), LinkKind::From(LinkPurpose::Bootstrap));
            // Each sent its join lookup.
            node.links.get_mut(id).expect("link").last_used = T0.saturating_add(Duration::from_secs(1));
        }
        assert_eq!(offer(&mut node, now, peer(1000), LinkPurpose::Bootstrap), Err(RejectReason::Busy));
        // A joiner that sent nothing since its link opened is not joining: it gives way.
        let idle = node.links.ids()[3];
        node.links.get_mut(idle).expect("link").last_used = T0;
        offer(&mut node, now, peer(1001), LinkPurpose::Bootstrap).expect("room is made");
        assert!(node.links.get(idle).is_none());
    }

    #[test]
    fn only_the_r_nearest_peers_behind_keep_their_ring_links() {
        let mut node = node();
        let me = node.id();
        let cap = node.config.ring_link_cap();
        let r = node.config.successors;
        // Peers 1..=cap ring units behind us, each with a ring link it keeps, all equally idle; the farthest
        // were made first, so without the rule the nearest would not be the last to go.
        let behind = |k: usize| me.wrapping_sub(Id::pow2(100 + k));
        let ids: Vec<(usize, LinkId)> = (0..cap)
            .rev()
            .map(|k| (k, linked(&mut node, behind(k), LinkKind::From(LinkPurpose::Successor))))
            .collect();
        for n in 0..cap - r {
            offer(&mut node, LATER, peer(1000 + n as u32), LinkPurpose::Successor).expect("room is made");
        }
        for (k, id) in &ids {
            assert_eq!(node.links.get(*id).is_some(), *k < r, "the link of the peer {k} behind");
        }
        // Now only the newcomers' links can go.
        offer(&mut node, LATER, peer(2000), LinkPurpose::Successor).expect("room is made");
        assert!(ids.iter().filter(|(k, _)| *k < r).all(|(_, id)| node.links.get(*id).is_some()));
    }

    /// Seed 189 of randomized_fault_schedules: a node that lost its predecessor was asked for its neighbours
    /// by a restarted node vetting it as its join candidate, over that node's bootstrap link. The joiner's id
    /// lies between the true predecessor and us; counted as a ring member, it made us refuse the true
    /// predecessor's notify forever, and with no predecessor we could not answer the joiner's lookup either.
    #[test]
    fn a_joiner_asking_for_our_neighbours_does_not_keep_our_predecessor_out() {
        let mut node = node();
        let me = node.id();
        let predecessor = me.wrapping_sub(Id::pow2(120));
        let joiner = me.wrapping_sub(Id::pow2(100));
        assert!(joiner.in_open(predecessor, me));
        let join_link = linked(&mut node, joiner, LinkKind::From(LinkPurpose::Bootstrap));
        node.handle_link_msg(LATER, join_link, LinkMsg::GetNeighbors);
        assert!(!node.links.get(join_link).expect("link").routable(LATER), "a joiner is no next hop");
        let pred_link = linked(&mut node, predecessor, LinkKind::From(LinkPurpose::Successor));
        node.handle_link_msg(LATER, pred_link, LinkMsg::Notify);
        assert_eq!(node.ring.predecessor(), Some(predecessor));
        // Once the joiner is in the ring (it notifies), it is the nearer predecessor.
        node.handle_link_msg(LATER, join_link, LinkMsg::Notify);
        assert_eq!(node.ring.predecessor(), Some(joiner));
    }
}
