//! Ring and link maintenance: stabilize, join, fingers, the link policy, liveness, link messages.

use rand_core::RngCore;

use super::links::{AnswerPath, Link, LinkState};
use super::msg::{self, LinkMsg, RejectReason};
use super::timer::Timer;
use super::{LookupFor, Node, ANSWER_TIMEOUT, MAX_PENDING_LINKS, REJOIN_MAX, REJOIN_MIN, RING_HEADROOM};
use crate::id::{Id, ID_BITS};
use crate::node::api::{Event, FailReason, LinkId, LinkPurpose, LinkRole, Output};
use crate::time::Timestamp;
use crate::wire::envelope::MessageId;

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
                if let Some((p, link)) = self.was_joined.then(|| self.nearest_live_peer(now)).flatten() {
                    // Every successor is gone. A join lookup cannot help: the whole ring routes `me + 1` to
                    // us, its closest preceding node. The nearest ring member we are linked to, clockwise, is
                    // the best successor we know; stabilizing walks back from it to the true one through
                    // predecessors.
                    self.adopt_live_successor(p, link, false);
                } else if !self.founder || self.links.len() > 0 {
                    // No successor at all: rejoin through whatever we are linked to.
                    let pending_join = self.lookups.values().any(|l| l.purpose == LookupFor::Join);
                    if !pending_join && self.links.iter().any(|(_, l)| l.routable(now) || l.offerer) {
                        self.start_join(now);
                    }
                }
            }
        }
        // Every successor needs a link (Zave: the list must be checkable); the predecessor opened its own.
        let succs = self.ring.successors().to_vec();
        for s in succs {
            self.ensure_link(now, s, LinkPurpose::Successor);
        }
        self.update_membership();
    }

    /// The first successor we have an open link to (Zave's stabilize skips the dead ones).
    fn first_live_successor(&self) -> Option<Id> {
        self.ring.successors().iter().copied().find(|s| self.links.open_to(*s).is_some())
    }

    /// Whether a live link reaches a ring member between `candidate` and us. Without a predecessor, Zave's
    /// rectify adopts any node that notifies; one we know to lie farther from us than such a member is not
    /// our predecessor (it notifies us because its successor list is stale), and adopting it would make us
    /// answer for the keys of the nodes between. Our true predecessor notifies within a stabilize period.
    fn knows_node_between(&self, now: Timestamp, candidate: Id) -> bool {
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
            .filter(|(_, l)| l.routable(now) && l.purpose != LinkPurpose::Bootstrap)
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
    pub(super) fn adopt_live_successor(&mut self, peer: Id, link: LinkId, merge: bool) {
        self.ring.offer_successor(peer);
        if merge || self.first_live_successor() == Some(peer) {
            self.transmit(link, msg::link_frame(&LinkMsg::GetNeighbors));
            self.transmit(link, msg::link_frame(&LinkMsg::Notify));
        }
        self.update_membership();
    }

    /// Links to a successor candidate, or adopts it at once if a link is already open.
    pub(super) fn want_successor(&mut self, now: Timestamp, peer: Id) {
        match self.links.open_to(peer) {
            Some(link) => self.adopt_live_successor(peer, link, false),
            None => self.ensure_link(now, peer, LinkPurpose::Successor),
        }
    }

    /// Every `merge_interval` (± half): ask a bootstrap server's ring who our successor should be. After a
    /// partition heals, the two rings are linked by nothing but the servers; this is how they meet.
    /// ([`Timer::Merge`]; a node not joined yet, or without servers, only waits for the next one.)
    pub(super) fn check_merge(&mut self, now: Timestamp) {
        if !self.joined || self.bootstrap_urls.is_empty() {
            // Looked at again on the link upkeep cadence: the first check follows the join at once.
            self.timers.set(Timer::Merge, now.saturating_add(self.config.ping_interval / 2));
            return;
        }
        let interval = self.config.merge_interval.as_millis() as u64;
        let jitter = if interval > 0 { self.rng.next_u64() % interval } else { 0 };
        self.timers.set(Timer::Merge, Timestamp(now.0 + interval / 2 + jitter));
        let pick = (self.rng.next_u64() % self.bootstrap_urls.len() as u64) as usize;
        let (url, server) = self.bootstrap_urls[pick].clone();
        match server.and_then(|s| self.links.open_to(s)) {
            Some(link) => self.start_merge_check(now, link),
            None => {
                if self.links.len() + RING_HEADROOM < self.config.link_cap() {
                    self.open_bootstrap_link(now, &url, true);
                }
            }
        }
    }

    /// Whether the node is cut off: not a founder, not joined, no link at all, but servers to ask.
    fn stranded(&self) -> bool {
        !self.joined && !self.founder && self.links.len() == 0 && !self.bootstrap_urls.is_empty()
    }

    /// A node that lost every link after joining (or whose bootstrap failed) tries its bootstrap servers
    /// again, with a growing pause — a shell need not notice ([`Timer::Rejoin`], armed by `drop_link`).
    pub(super) fn rejoin(&mut self, now: Timestamp) {
        if !self.stranded() {
            self.timers.stop(Timer::Rejoin);
            self.rejoin_backoff = REJOIN_MIN;
            return;
        }
        self.timers.set(Timer::Rejoin, now.saturating_add(self.rejoin_backoff));
        self.rejoin_backoff = (self.rejoin_backoff * 2).min(REJOIN_MAX);
        let pick = (self.rng.next_u64() % self.bootstrap_urls.len() as u64) as usize;
        let url = self.bootstrap_urls[pick].0.clone();
        self.open_bootstrap_link(now, &url, false);
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
            self.adopt_live_successor(owner, link, true);
            return;
        }
        if self.links.by_peer(owner).is_some() {
            return;
        }
        self.ensure_link(now, owner, LinkPurpose::Successor);
        if let Some(link) = self.links.by_peer(owner) {
            if let Some(l) = self.links.get_mut(link) {
                l.via = Some(via);
            }
        }
    }

    /// [`Timer::FingerSweep`]: a sweep starts at most every `finger_refresh_interval`, and only once the
    /// previous one is done (else the timer looks again a stabilize interval later).
    pub(super) fn start_finger_sweep(&mut self, now: Timestamp) {
        if !self.joined || self.finger_cursor < ID_BITS {
            self.timers.set(Timer::FingerSweep, now.saturating_add(self.config.stabilize_interval));
            return;
        }
        self.finger_cursor = self.ring.first_open_slot();
        self.timers.set(Timer::FingerSweep, now.saturating_add(self.config.finger_refresh_interval));
    }

    /// One step of a sweep in progress: one lookup fills every slot up to the owner it finds.
    pub(super) fn fix_next_finger(&mut self, now: Timestamp) {
        if !self.joined || self.lookups.values().any(|l| matches!(l.purpose, LookupFor::Finger(_))) {
            return;
        }
        let first = self.ring.first_open_slot();
        if first >= ID_BITS || self.finger_cursor >= ID_BITS {
            return;
        }
        self.finger_cursor = self.finger_cursor.max(first);
        let slot = self.finger_cursor;
        self.start_lookup(now, self.id().finger_target(slot), LookupFor::Finger(slot));
    }

    pub(super) fn finger_found(&mut self, now: Timestamp, slot: usize, owner: Id) {
        let next = self.ring.set_finger(slot, owner);
        self.finger_cursor = next.unwrap_or(ID_BITS);
        self.connect_fingers(now);
    }

    /// Opens links to the farthest `max_fingers` distinct fingers, within the budget.
    pub(super) fn connect_fingers(&mut self, now: Timestamp) {
        let wanted: Vec<Id> = self.wanted_fingers();
        for f in wanted {
            if self.links.by_peer(f).is_some() {
                continue;
            }
            if self.links.len() + RING_HEADROOM >= self.config.link_cap() {
                break;
            }
            if self.busy.get(&f).is_some_and(|until| *until > now) {
                continue;
            }
            self.ensure_link(now, f, LinkPurpose::Finger);
        }
    }

    pub(super) fn wanted_fingers(&self) -> Vec<Id> {
        self.ring
            .distinct_fingers()
            .into_iter()
            .map(|(_, id)| id)
            .filter(|id| !self.ring.successors().contains(id) && self.ring.predecessor() != Some(*id))
            .take(self.config.max_fingers)
            .collect()
    }

    pub(super) fn update_membership(&mut self) {
        let joined = self.first_live_successor().is_some();
        self.was_joined |= joined;
        if joined != self.joined {
            self.joined = joined;
            if joined {
                // Bootstrap requests complete with this membership event.
                self.bootstraps.clear();
                self.timers.set(Timer::Presence, Timestamp::ZERO);
            }
            self.emit(Event::Membership { joined });
        }
    }

    /// Roles this node gives a link (why it keeps it), by name, for status pages.
    pub(super) fn roles_of(&self, id: LinkId, link: &Link) -> Vec<&'static str> {
        self.roles_given(id, link, &self.wanted_fingers()).names()
    }

    /// Whether this node has any reason to keep a link.
    pub(super) fn needed(&self, id: LinkId, link: &Link) -> bool {
        self.roles_given(id, link, &self.wanted_fingers()).any()
    }

    /// The roles of a link when `wanted` are the fingers this node wants links to ([`Self::wanted_fingers`],
    /// computed once by callers that look at every link).
    pub(super) fn roles_given(&self, id: LinkId, link: &Link, wanted: &[Id]) -> Roles {
        let peer = link.peer;
        let bootstrap = link.purpose == LinkPurpose::Bootstrap
            && link.offerer
            && (!self.joined || self.bootstraps.contains_key(&id));
        Roles {
            successor: peer.is_some_and(|p| self.ring.successors().contains(&p)),
            predecessor: peer.is_some() && self.ring.predecessor() == peer,
            finger: peer.is_some_and(|p| self.ring.is_finger(p) && wanted.contains(&p)),
            direct: link.purpose == LinkPurpose::Direct,
            bootstrap: bootstrap.then_some(if link.pairing { "pairing" } else { "bootstrap" }),
        }
    }

    pub(super) fn ensure_link(&mut self, now: Timestamp, peer: Id, purpose: LinkPurpose) {
        if peer == self.id() || self.links.by_peer(peer).is_some() {
            return;
        }
        if self.busy.get(&peer).is_some_and(|until| *until > now) {
            return;
        }
        let pending = self.links.iter().filter(|(_, l)| !l.is_open()).count();
        if pending >= MAX_PENDING_LINKS {
            return;
        }
        if self.links.len() >= self.config.link_cap() && !self.evict_for_ring(now) {
            return;
        }
        let id = self.links.insert(Link::new(now, Some(peer), purpose, true));
        self.open_link_output(id, LinkRole::Offer);
    }

    pub(super) fn open_link_output(&mut self, link: LinkId, role: LinkRole) {
        self.counters.link_creations += 1;
        self.outputs.push_back(Output::OpenLink { link, role });
    }

    /// Frees one slot for a ring link by closing the least useful link: one nobody needs, else an
    /// incoming finger link, else our nearest finger. Ring links are never evicted.
    pub(super) fn evict_for_ring(&mut self, now: Timestamp) -> bool {
        let mut victim: Option<(u8, LinkId)> = None;
        let wanted = self.wanted_fingers();
        for (id, link) in self.links.iter() {
            let roles = self.roles_given(id, link, &wanted).names();
            let peer_keeps = link.peer_keeps_until > now;
            let rank = if roles.is_empty() {
                match (peer_keeps, link.purpose) {
                    (false, _) => 0,
                    // The peer's ring link to us (we are in its successor list) is never evicted.
                    (true, LinkPurpose::Successor) if !link.offerer => continue,
                    (true, _) => 1,
                }
            } else if roles == ["finger"] {
                2
            } else {
                continue;
            };
            if victim.is_none_or(|(r, _)| rank < r) {
                victim = Some((rank, id));
            }
        }
        match victim {
            Some((_, id)) => {
                self.drop_link(now, id, true);
                true
            }
            None => false,
        }
    }

    /// Answers an offer from `peer`, or says why not.
    pub(super) fn accept_offer(
        &mut self,
        now: Timestamp,
        peer: Id,
        purpose: LinkPurpose,
        sdp: String,
        path: AnswerPath,
    ) -> Result<(), RejectReason> {
        if peer == self.id() || self.leaving {
            return Err(RejectReason::Busy);
        }
        if let Some(existing) = self.links.by_peer(peer) {
            let link = self.links.get(existing).map(|l| (l.state, l.offerer));
            match link {
                Some((LinkState::MakingOffer | LinkState::AwaitingAnswer, true)) => {
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
        if self.links.len() >= self.config.link_cap() {
            let ring_link = matches!(purpose, LinkPurpose::Successor);
            if !(ring_link && self.evict_for_ring(now)) {
                self.counters.refused_links += 1;
                return Err(RejectReason::Busy);
            }
        }
        let mut link = Link::new(now, Some(peer), purpose, false);
        link.answer_path = Some(path);
        // The offerer wants this link; keep it at least through setup and the first pings.
        link.peer_keeps_until = now.saturating_add(self.config.idle_link_grace);
        let id = self.links.insert(link);
        self.open_link_output(id, LinkRole::Answer(sdp));
        Ok(())
    }

    /// Forgets a link; `close` also tells the shell to close it.
    pub(super) fn drop_link(&mut self, now: Timestamp, id: LinkId, close: bool) {
        let Some(link) = self.links.remove(id) else { return };
        if let Some(request) = self.bootstraps.remove(&id) {
            // Still pending means we have not joined through it: the shell must hear so, to retry.
            use crate::node::api::BootstrapError::{LinkClosed, LinkFailed};
            let why = if link.is_open() { LinkClosed } else { LinkFailed };
            self.emit(Event::RequestFailed { request, reason: FailReason::Bootstrap(why) });
        }
        if close {
            self.outputs.push_back(Output::CloseLink { link: id });
        }
        if let Some(peer) = link.peer {
            // A link that was never open says nothing about the peer (a refused or crossed offer); the
            // callers that learn it is gone (setup timeout, NodeNotFound) remove it themselves.
            if link.is_open() {
                self.ring.remove(peer);
            }
        }
        // Frames waiting for this link's acknowledgement go over the next-best link now.
        let waiting: Vec<MessageId> =
            self.in_flight.iter().filter(|(_, f)| f.tried.last() == Some(&id)).map(|(m, _)| *m).collect();
        for m in waiting {
            self.reroute(now, m);
        }
        self.update_membership();
        if self.stranded() && self.timers.get(Timer::Rejoin).is_none() {
            self.timers.set(Timer::Rejoin, now.saturating_add(self.rejoin_backoff));
        }
    }

    pub(super) fn maintain_links(&mut self, now: Timestamp) {
        let ids = self.links.ids();
        // Wanted fingers, computed again only after something may have changed the ring (a dropped link).
        let mut wanted: Option<Vec<Id>> = None;
        for id in ids {
            let Some(link) = self.links.get(id) else { continue };
            if !link.is_open() {
                wanted = None;
                let lost_offer = link.state == LinkState::AwaitingAnswer
                    && link.bootstrap_url.is_none()
                    && now.since(link.offered_at) > ANSWER_TIMEOUT;
                if lost_offer {
                    // Unanswered: the peer is dead, or restarted and lost our offer. Offer once more at once;
                    // a second silence means dead, and dead entries must leave the successor list (a list of
                    // only dead nodes would never be replaced).
                    let (peer, purpose) = (link.peer, link.purpose);
                    self.drop_link(now, id, true);
                    if let Some(peer) = peer {
                        let misses = self.unanswered.entry(peer).or_insert(0);
                        *misses += 1;
                        if *misses >= 2 {
                            self.unanswered.remove(&peer);
                            self.ring.remove(peer);
                        } else {
                            self.ensure_link(now, peer, purpose);
                        }
                    }
                    continue;
                }
                let setup_timeout =
                    if link.pairing { super::PAIRING_TIMEOUT } else { self.config.link_setup_timeout };
                if now.since(link.created) > setup_timeout {
                    let peer = link.peer;
                    if let Some(peer) = peer {
                        // An unreachable successor candidate is as good as dead.
                        self.ring.remove(peer);
                    }
                    self.drop_link(now, id, true);
                }
                continue;
            }
            if now.since(link.last_recv) > self.config.link_timeout {
                self.drop_link(now, id, true);
                wanted = None;
                continue;
            }
            let needed =
                self.roles_given(id, link, wanted.get_or_insert_with(|| self.wanted_fingers())).any();
            if needed {
                // Pinged every interval whatever else flows: the ping carries `keep`, which is what
                // stops the peer from closing a link only we need.
                if now.since(link.last_ping) >= self.config.ping_interval {
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
                wanted = None;
            }
        }
        // Rectify: a predecessor we have no link to is forgotten; a notify will bring the right one.
        if let Some(p) = self.ring.predecessor() {
            if self.links.open_to(p).is_none() {
                self.ring.set_predecessor(None);
            }
        }
        self.busy.retain(|_, until| *until > now);
        self.replay.expire(now);
        self.cache.prune(now);
    }

    pub(super) fn transmit(&mut self, link_id: LinkId, bytes: Vec<u8>) {
        if let Some(link) = self.links.get_mut(link_id) {
            link.bytes_out += bytes.len() as u64;
            self.counters.frames_out += 1;
            self.counters.bytes_out += bytes.len() as u64;
            self.outputs.push_back(Output::Transmit { link: link_id, bytes });
        }
    }

    pub(super) fn handle_link_msg(&mut self, now: Timestamp, link_id: LinkId, m: LinkMsg) {
        let Some(peer) = self.links.get(link_id).and_then(|l| l.peer) else { return };
        let keep_until = now.saturating_add(self.config.ping_interval * 3);
        if matches!(m, LinkMsg::GetNeighbors | LinkMsg::Notify | LinkMsg::Neighbors { .. }) {
            if let Some(l) = self.links.get_mut(link_id) {
                l.peer_in_ring = true;
            }
        }
        match m {
            LinkMsg::Ping { nonce, keep, range_from } => {
                if let Some(l) = self.links.get_mut(link_id) {
                    if keep {
                        l.peer_keeps_until = keep_until;
                    }
                    l.peer_range_from = range_from;
                }
                let mine = self.links.get(link_id).is_some_and(|l| self.needed(link_id, l));
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
                    self.ensure_link(now, s, LinkPurpose::Successor);
                }
            }
            LinkMsg::Notify => {
                if self.ring.predecessor().is_some() || !self.knows_node_between(now, peer) {
                    self.ring.notified(peer);
                }
                if self.founder && self.ring.successors().is_empty() {
                    // A founder alone learns its first successor from the first node that joins. Any other
                    // node without successors finds one in `stabilize`: the node notifying it is its
                    // predecessor, and taking that as the successor would point it backwards round the ring.
                    self.ring.offer_successor(peer);
                    self.update_membership();
                }
                if let Some(l) = self.links.get_mut(link_id) {
                    l.peer_keeps_until = keep_until;
                }
            }
            LinkMsg::Leave { predecessor, successors } => {
                let was_successor = self.ring.successors().contains(&peer);
                self.ring.remove(peer);
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
                    self.ensure_link(now, s, LinkPurpose::Successor);
                }
            }
            LinkMsg::Replicate { records } => self.handle_replicate(now, records),
            LinkMsg::DropMail { key, ids } => {
                let until = now.saturating_add(super::records::DEFAULT_MAILBOX_TTL * 2);
                self.store.remove_mail(key, &ids, until);
            }
            LinkMsg::Ack { id } => {
                if let Some(f) = self.in_flight.get(&id) {
                    if f.tried.last() == Some(&link_id) {
                        let f = self.in_flight.remove(&id).map(|f| f.envelope.len()).unwrap_or(0);
                        self.in_flight_bytes -= f;
                    }
                }
            }
        }
    }
}

/// Why a node keeps a link; a link with no role may be closed once its peer stops keeping it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Roles {
    successor: bool,
    predecessor: bool,
    finger: bool,
    direct: bool,
    /// `"bootstrap"` or `"pairing"`: our own setup link that has not done its job yet.
    bootstrap: Option<&'static str>,
}

impl Roles {
    pub(super) fn any(&self) -> bool {
        self.successor || self.predecessor || self.finger || self.direct || self.bootstrap.is_some()
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
