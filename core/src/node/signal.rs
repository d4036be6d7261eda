//! Setting links up: the offer and answer of every link, whether they travel over HTTP (bootstrap), through
//! the ring (`SealedOffer` / `SealedAnswer` / `ConnectReject` routed to the peer, the offer and answer
//! sealed to the other end: docs/protocol.md, "Link setup through the ring is sealed") or by hand (pairing,
//! see `pairing.rs`). This is the parent's glue between the link table, the router and membership; the
//! state it works on is the link table's ([`Links`](super::links::Links)).

use std::time::Duration;

use super::conduct::Offence;
use super::links::{AnswerPath, Link, LinkKind, LinkState};
use super::msg::{self, AppMsg, RejectReason, RingMsg, Routed};
use super::{Node, SignalError};
use crate::e2e;
use crate::id::Id;
use crate::identity::delegation::Delegation;
use crate::identity::Address;
use crate::identity::SessionPublicKey;
use crate::node::api::{BootstrapError, LinkId, LinkPurpose, LinkRole, Output, RefusalKind, RequestId};
use crate::time::Timestamp;
use crate::wire::envelope::{self, Destination, MessageId, Received};

/// A bootstrap offer that passed every check but the replay window (see `Node::verified_offer`).
struct VerifiedOffer {
    id: MessageId,
    sent_at: Timestamp,
    origin: SessionPublicKey,
    sdp: String,
    wallet: Address,
}

/// After a refusal, do not ask the same node for a finger link for this long.
const BUSY_BACKOFF: Duration = Duration::from_secs(60);

/// Largest sealed offer or answer a node opens: a description and a delegation at their bounds, with room
/// for their encoding, and the sealing's overhead.
const MAX_SEALED_SETUP: usize = e2e::ECIES_OVERHEAD + msg::MAX_SDP + e2e::MAX_DELEGATION + 64;

/// The postcard encoding of an offer's or answer's contents (plain structs: encoding cannot fail).
fn postcard_bytes<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_default()
}

impl Node {
    /// Joins the ring through the bootstrap server at `url`: asks the shell for an offer, which then goes
    /// out as [`Output::BootstrapOffer`]. The request completes with [`Event::Membership`] or fails; either
    /// way the node remembers the server, and if it is left with no link at all it tries its servers again
    /// by itself, one at a time, with a growing pause ([`Node::inspect`] shows when).
    pub fn connect_bootstrap(&mut self, now: Timestamp, url: &str) -> RequestId {
        let request = self.new_request();
        self.membership.founder = false;
        self.membership.add_server(url);
        let id = self.open_bootstrap_link(now, url, false);
        self.membership.bootstraps.insert(id, request);
        request
    }

    /// Remembers a bootstrap server without contacting it now: the node may use it to rejoin (a random
    /// known server each time) and for merge checks. At most [`super::membership::MAX_SERVERS`] are kept.
    pub fn add_server(&mut self, url: &str) {
        self.membership.founder = false;
        self.membership.add_server(url);
    }

    pub(super) fn open_bootstrap_link(&mut self, now: Timestamp, url: &str, merge_check: bool) -> LinkId {
        let kind = LinkKind::ToServer { url: url.to_string(), merge_check };
        let id = self.links.insert(Link::offer(now, None, kind));
        self.open_link_output(id, LinkRole::Offer);
        id
    }

    /// The shell's peer connection produced its complete local description (offer or answer).
    pub fn handle_local_description(&mut self, now: Timestamp, link_id: LinkId, sdp: String) {
        let Some(link) = self.links.get_mut(link_id) else { return };
        match std::mem::replace(&mut link.state, LinkState::Connecting) {
            LinkState::MakingOffer => {
                link.state = LinkState::AwaitingAnswer { since: now };
                let purpose = link.kind.purpose();
                let clear = |sdp| {
                    let delegation = self.me.delegation.clone();
                    Routed::Ring(RingMsg::ConnectOffer { link: link_id.0, purpose, sdp, delegation })
                };
                match (link.kind.clone(), link.peer) {
                    (LinkKind::ToServer { url, .. }, _) => {
                        let body = clear(sdp);
                        match self.encode(now, Destination::Neighbor, None, &body) {
                            Some((_, offer)) => {
                                self.io.push(Output::BootstrapOffer { link: link_id, url, offer })
                            }
                            None => self.drop_link(now, link_id, true),
                        }
                    }
                    (LinkKind::Pairing { .. }, _) => {
                        let body = clear(sdp);
                        match self.encode(now, Destination::Neighbor, None, &body) {
                            Some((header, offer)) => {
                                // The answer names this id (see pairing.rs).
                                if let Some(l) = self.links.get_mut(link_id) {
                                    l.kind = LinkKind::Pairing { offerer: true, offer: Some(header.id) };
                                }
                                self.io.push(Output::PairingOffer { link: link_id, offer })
                            }
                            None => self.drop_link(now, link_id, true),
                        }
                    }
                    (LinkKind::ToSuccessor { .. } | LinkKind::ToFinger | LinkKind::ToDirect, Some(peer)) => {
                        match self.links.keys.get(peer, self.config.crypto) {
                            Some(key) => self.send_sealed_offer(now, link_id, &key, sdp),
                            None => {
                                // First contact: ask for its key (one round trip), then seal.
                                if let Some(l) = self.links.get_mut(link_id) {
                                    l.state = LinkState::AwaitingKey { since: now, sdp };
                                }
                                self.io.counters.key_requests += 1;
                                let ask =
                                    Routed::Ring(RingMsg::SealedOffer { link: link_id.0, sealed: vec![] });
                                self.route_offer(now, link_id, peer, &ask);
                            }
                        }
                    }
                    // Links to a known peer only; links the peer offered are never in `MakingOffer`.
                    (
                        LinkKind::ToSuccessor { .. }
                        | LinkKind::ToFinger
                        | LinkKind::ToDirect
                        | LinkKind::From(_),
                        _,
                    ) => {}
                }
            }
            LinkState::MakingAnswer(path) => {
                let delegation = self.me.delegation.clone();
                match path {
                    AnswerPath::Http(request) => {
                        let body = Routed::Ring(RingMsg::ConnectAnswer { link: 0, sdp, delegation });
                        if let Some((_, answer)) = self.encode(now, Destination::Neighbor, None, &body) {
                            self.io.push(Output::BootstrapAnswer { request, answer });
                        }
                    }
                    AnswerPath::Pairing { request, offer_id } => {
                        let body = Routed::Ring(RingMsg::ConnectAnswer { link: 0, sdp, delegation });
                        let encoded = self.encode(now, Destination::Neighbor, Some(offer_id), &body);
                        if let Some((_, answer)) = encoded {
                            self.io.push(Output::PairingAnswer { request, answer });
                        }
                    }
                    AnswerPath::Routed { offer_id, offerer_link, offerer_key } => {
                        let Some(peer) = link.peer else { return };
                        // Sealed to the offer's signer: relays see neither our wallet nor our description.
                        let contents = msg::AnswerContents { sdp, delegation };
                        let Ok(sealed) = e2e::seal_to(
                            self.config.crypto,
                            &mut self.rng,
                            &offerer_key,
                            &postcard_bytes(&contents),
                        ) else {
                            self.drop_link(now, link_id, true);
                            return;
                        };
                        let body = Routed::Ring(RingMsg::SealedAnswer { link: offerer_link, sealed });
                        self.send_routed(now, Destination::Node(peer), Some(offer_id), &body);
                    }
                }
            }
            // A description we did not ask for (its link has moved on): nothing to send.
            state @ (LinkState::AwaitingAnswer { .. }
            | LinkState::AwaitingKey { .. }
            | LinkState::Connecting
            | LinkState::Open) => {
                link.state = state;
            }
        }
    }

    /// The bootstrap server's response to a [`Output::BootstrapOffer`].
    pub fn handle_bootstrap_answer(&mut self, now: Timestamp, link_id: LinkId, body: &[u8]) {
        let received = match envelope::decode_with::<Routed>(self.config.crypto, body, self.me.network) {
            Ok(r) => r,
            Err(e) => {
                self.io.counters.dropped_invalid += 1;
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
                if !matches!(link.state, LinkState::AwaitingAnswer { .. }) || sdp.len() > msg::MAX_SDP {
                    return;
                }
                if peer == self.id() || self.links.by_peer(peer).is_some() {
                    // Already linked to this server (or it is us): this bootstrap link is not needed.
                    self.handle_bootstrap_failure(now, link_id, BootstrapError::AlreadyLinked);
                    return;
                }
                if let Some(link) = self.links.get_mut(link_id) {
                    link.state = LinkState::Connecting;
                    if let LinkKind::ToServer { url, .. } = &link.kind {
                        self.membership.server_is(url, peer);
                    }
                }
                self.links.set_peer(link_id, peer);
                self.io.push(Output::ApplyRemote { link: link_id, sdp });
            }
            Routed::Ring(RingMsg::ConnectReject { reason, .. }) => {
                if reason == RejectReason::Duplicate {
                    // The server says we are linked to it already: now we know its node id (it signed this).
                    if let Some(LinkKind::ToServer { url, .. }) = self.links.get(link_id).map(|l| &l.kind) {
                        self.membership.server_is(url, peer);
                    }
                }
                let refused =
                    |kind| BootstrapError::Refused { kind, detail: "a ConnectReject answer".into() };
                let error = match reason {
                    RejectReason::Busy => refused(RefusalKind::Busy),
                    RejectReason::Unauthorized => refused(RefusalKind::Unauthorized),
                    RejectReason::Duplicate => BootstrapError::AlreadyLinked,
                    // Only offers through the ring are sealed; an HTTP offer is never refused so.
                    RejectReason::SealToMe => {
                        self.io.counters.dropped_invalid += 1;
                        BootstrapError::BadAnswer { detail: "a ConnectReject asking to seal".into() }
                    }
                };
                self.handle_bootstrap_failure(now, link_id, error);
            }
            // Nothing else answers an offer.
            Routed::Ring(
                RingMsg::FindSuccessor
                | RingMsg::FoundSuccessor { .. }
                | RingMsg::ConnectOffer { .. }
                | RingMsg::Undeliverable { .. }
                | RingMsg::SealedOffer { .. }
                | RingMsg::SealedAnswer { .. },
            )
            | Routed::App(
                AppMsg::Store { .. }
                | AppMsg::StoreAck { .. }
                | AppMsg::Get { .. }
                | AppMsg::Records { .. }
                | AppMsg::Deliver { .. }
                | AppMsg::Receipt { .. }
                | AppMsg::MailboxDeliver { .. }
                | AppMsg::MailboxAck { .. }
                | AppMsg::StoreSealed { .. }
                | AppMsg::Hello { .. }
                | AppMsg::Welcome { .. }
                | AppMsg::NoSession { .. },
            ) => {
                self.io.counters.dropped_invalid += 1;
                let detail = "not a ConnectAnswer".to_string();
                self.handle_bootstrap_failure(now, link_id, BootstrapError::BadAnswer { detail });
            }
        }
    }

    /// The bootstrap exchange failed in the shell: the server was unreachable, did not answer in time,
    /// refused the offer (HTTP error status), or sent something that is not an answer.
    pub fn handle_bootstrap_failure(&mut self, now: Timestamp, link_id: LinkId, error: BootstrapError) {
        self.remove_link(now, link_id, true, Some(error));
    }

    /// Checks a bootstrap offer exactly as [`Node::handle_bootstrap_offer`] does — size, signature,
    /// network, shape, time window, delegation — without remembering its id or opening a link, and
    /// returns the wallet its delegation names. A shell that limits offers per wallet calls this first
    /// (the wallet is known only once the delegation verified), then `handle_bootstrap_offer` for an
    /// offer it admits; the delegation check is then answered from the cache.
    pub fn check_bootstrap_offer(&mut self, now: Timestamp, body: &[u8]) -> Result<Address, SignalError> {
        self.verified_offer(now, body).map(|offer| offer.wallet)
    }

    /// Every check of an HTTP bootstrap offer that needs no state but the delegation cache: the decoded
    /// envelope and the offerer's wallet. Time first (cheap, and a stale offer is refused whatever it
    /// carries), then the delegation; the caller remembers the id only after this. Remembering ids before
    /// the delegation check let unauthorised POSTs fill the replay window (65,536 ids), after which every
    /// honest join was refused (issue 16).
    fn verified_offer(&mut self, now: Timestamp, body: &[u8]) -> Result<VerifiedOffer, SignalError> {
        let received = envelope::decode_with::<Routed>(self.config.crypto, body, self.me.network)
            .inspect_err(|_| {
                self.io.counters.dropped_invalid += 1;
            })?;
        let Received { header, origin, body, .. } = received;
        let Routed::Ring(RingMsg::ConnectOffer { purpose: LinkPurpose::Bootstrap, sdp, delegation, .. }) =
            body
        else {
            self.io.counters.dropped_invalid += 1;
            return Err(SignalError::NotAnOffer);
        };
        if header.dest != Destination::Neighbor || sdp.len() > msg::MAX_SDP {
            self.io.counters.dropped_invalid += 1;
            return Err(SignalError::NotAnOffer);
        }
        if self.router.replay.check_time(header.sent_at, now).is_err() {
            self.io.counters.dropped_replay += 1;
            return Err(SignalError::Replay);
        }
        self.verify_peer(&delegation, &origin, now).map_err(SignalError::Unauthorized)?;
        // Verified a moment ago: answered from the cache.
        let wallet = self
            .me
            .cache
            .verify(&delegation, &self.config.network, now)
            .map_err(SignalError::Unauthorized)?
            .wallet;
        Ok(VerifiedOffer { id: header.id, sent_at: header.sent_at, origin, sdp, wallet })
    }

    /// A bootstrap offer arrived over HTTP (server side). On success an [`Output::BootstrapAnswer`] for
    /// `request` follows: the answer, once the shell produced it for the link this returns (its
    /// [`Output::OpenLink`] is queued); or at once, with no link, a signed refusal for an offerer that is
    /// linked to this node already and alive (see below).
    pub fn handle_bootstrap_offer(
        &mut self,
        now: Timestamp,
        request: u64,
        body: &[u8],
    ) -> Result<Option<LinkId>, SignalError> {
        let VerifiedOffer { id, sent_at, origin, sdp, .. } = self.verified_offer(now, body)?;
        if self.router.replay.check_and_insert(id.0, sent_at, now).is_err() {
            self.io.counters.dropped_replay += 1;
            return Err(SignalError::Replay);
        }
        let peer = origin.node_id();
        let alive = self
            .links
            .open_to(peer)
            .and_then(|l| self.links.get(l))
            .is_some_and(|l| now.since(l.last_recv) < self.config.ping_interval * 2);
        if alive {
            // The offerer is linked to us and its end is alive (frames came within two ping intervals): it
            // knows this server by URL only (a merge check through a server it never bootstrapped through).
            // Replacing our link, as for a peer that restarted, would cut a link both ends use. A signed
            // refusal tells it who we are instead, so its next check goes over the link it has.
            let reject =
                RingMsg::ConnectReject { link: 0, reason: RejectReason::Duplicate, alternatives: vec![] };
            if let Some((_, answer)) = self.encode(now, Destination::Neighbor, None, &Routed::Ring(reject)) {
                self.io.push(Output::BootstrapAnswer { request, answer });
            }
            return Ok(None);
        }
        let kind = LinkKind::From(LinkPurpose::Bootstrap);
        self.accept_offer(now, peer, kind, sdp, AnswerPath::Http(request))
            .map(Some)
            .map_err(|_| SignalError::Busy)
    }

    /// A `SealedOffer` (message `id`, signed by `signer`) routed to this node. Empty: the offerer asks for
    /// our key, which the signed refusal carries. Else it is opened with our session key and then checked
    /// and answered exactly as an offer in the clear was ([`Self::handle_connect_offer`]): nothing is spent
    /// on it — no link, no slot, no table entry — before its delegation verified. One that does not open or
    /// decode is counted and dropped (and charged to its origin if it came straight from it).
    pub(super) fn handle_sealed_offer(
        &mut self,
        now: Timestamp,
        signer: &SessionPublicKey,
        id: MessageId,
        link: u64,
        sealed: &[u8],
    ) {
        let origin = signer.node_id();
        if sealed.is_empty() {
            return self.refuse_offer(now, origin, id, link, RejectReason::SealToMe, vec![]);
        }
        let Some(msg::OfferContents { purpose, sdp, delegation }) = self.open_setup(now, origin, sealed)
        else {
            return;
        };
        self.handle_connect_offer(now, signer, id, link, purpose, sdp, &delegation);
    }

    /// An offer routed to this node, opened (see [`Self::handle_sealed_offer`]): answer it (the shell makes
    /// the answer, which goes back sealed to `signer`), or refuse it.
    #[allow(clippy::too_many_arguments)]
    fn handle_connect_offer(
        &mut self,
        now: Timestamp,
        signer: &SessionPublicKey,
        id: MessageId,
        link: u64,
        purpose: LinkPurpose,
        sdp: String,
        delegation: &Delegation,
    ) {
        let origin = signer.node_id();
        if sdp.len() > msg::MAX_SDP || purpose == LinkPurpose::Bootstrap {
            self.io.counters.dropped_invalid += 1;
            return;
        }
        if self.verify_peer(delegation, signer, now).is_err() {
            return self.refuse_offer(now, origin, id, link, RejectReason::Unauthorized, vec![]);
        }
        let path = AnswerPath::Routed { offer_id: id, offerer_link: link, offerer_key: *signer };
        if let Err(reason) = self.accept_offer(now, origin, LinkKind::From(purpose), sdp, path) {
            if reason == RejectReason::Duplicate && self.links.by_peer(origin).is_some() {
                // Our own offer to them is on its way and wins; nothing to say.
                return;
            }
            let alternatives = self.ring.successors().iter().take(2).copied().collect();
            self.refuse_offer(now, origin, id, link, reason, alternatives);
        }
    }

    /// Refuses the routed offer `id` (the offerer's `link`) from `origin`, with `reason`.
    fn refuse_offer(
        &mut self,
        now: Timestamp,
        origin: Id,
        id: MessageId,
        link: u64,
        reason: RejectReason,
        alternatives: Vec<Id>,
    ) {
        let body = Routed::Ring(RingMsg::ConnectReject { link, reason, alternatives });
        self.send_routed(now, Destination::Node(origin), Some(id), &body);
    }

    /// A `SealedAnswer` (signed by `signer`) to an offer we routed through the ring: opened only if it
    /// answers an offer of ours to its signer that still waits (opening costs a key agreement), then handled
    /// as an answer in the clear was.
    pub(super) fn handle_sealed_answer(
        &mut self,
        now: Timestamp,
        signer: &SessionPublicKey,
        link: u64,
        sealed: &[u8],
    ) {
        let origin = signer.node_id();
        let waiting = self
            .links
            .get(LinkId(link))
            .is_some_and(|l| matches!(l.state, LinkState::AwaitingAnswer { .. }) && l.peer == Some(origin));
        if !waiting {
            return;
        }
        let Some(msg::AnswerContents { sdp, delegation }) = self.open_setup(now, origin, sealed) else {
            return;
        };
        self.handle_connect_answer(now, signer, link, sdp, &delegation);
    }

    /// Opens an offer's or answer's contents sealed to this node, strictly decoded (no trailing bytes).
    /// `None`, counted as invalid and charged to `origin` if the frame came straight from it, if it is not
    /// one: an honest node seals to the key its id names, which always opens.
    fn open_setup<T: serde::de::DeserializeOwned>(
        &mut self,
        now: Timestamp,
        origin: Id,
        sealed: &[u8],
    ) -> Option<T> {
        let opened = e2e::open_sealed(&self.me.session, MAX_SEALED_SETUP, sealed).ok().and_then(|plain| {
            match postcard::take_from_bytes::<T>(&plain) {
                Ok((contents, [])) => Some(contents),
                _ => None,
            }
        });
        if opened.is_none() {
            self.io.counters.dropped_invalid += 1;
            self.charge_origin(now, origin, Offence::InvalidFrame);
        }
        opened
    }

    /// Seals our offer on `link_id` (a description `sdp`) to its peer's session key `key` and routes it.
    fn send_sealed_offer(&mut self, now: Timestamp, link_id: LinkId, key: &SessionPublicKey, sdp: String) {
        let Some(link) = self.links.get_mut(link_id) else { return };
        let Some(peer) = link.peer else { return };
        link.state = LinkState::AwaitingAnswer { since: now };
        let contents =
            msg::OfferContents { purpose: link.kind.purpose(), sdp, delegation: self.me.delegation.clone() };
        let Ok(sealed) = e2e::seal_to(self.config.crypto, &mut self.rng, key, &postcard_bytes(&contents))
        else {
            self.drop_link(now, link_id, true);
            return;
        };
        self.io.counters.ring_offers += 1;
        let body = Routed::Ring(RingMsg::SealedOffer { link: link_id.0, sealed });
        self.route_offer(now, link_id, peer, &body);
    }

    /// Routes an offer of ours (sealed, or asking for the key) to `peer`, remembering its id for the link
    /// (a failure report finds the link by it): through the bootstrap link a successor candidate was found
    /// by while that is open (the candidate may be in another ring than ours), else greedily.
    fn route_offer(&mut self, now: Timestamp, link_id: LinkId, peer: Id, body: &Routed) {
        let via = match self.links.get(link_id).map(|l| &l.kind) {
            Some(LinkKind::ToSuccessor { via }) => *via,
            _ => None,
        };
        let via = via.filter(|v| self.links.get(*v).is_some_and(Link::is_open));
        let track = |node: &mut Node, id| {
            node.links.offers.insert(id, link_id);
        };
        match via {
            Some(via) => self.send_routed_via(now, via, Destination::Node(peer), body, track),
            None => {
                self.send_routed_then(now, Destination::Node(peer), None, body, track);
            }
        }
    }

    /// The answer (signed by `signer`) to an offer we routed through the ring, opened.
    fn handle_connect_answer(
        &mut self,
        now: Timestamp,
        signer: &SessionPublicKey,
        link: u64,
        sdp: String,
        delegation: &Delegation,
    ) {
        let origin = signer.node_id();
        let link_id = LinkId(link);
        let ok = self.links.get(link_id).is_some_and(|l| {
            matches!(l.state, LinkState::AwaitingAnswer { .. })
                && l.peer == Some(origin)
                && sdp.len() <= msg::MAX_SDP
        });
        if !ok {
            return;
        }
        if self.verify_peer(delegation, signer, now).is_err() {
            self.drop_link(now, link_id, true);
            return;
        }
        if let Some(l) = self.links.get_mut(link_id) {
            l.state = LinkState::Connecting;
        }
        self.links.offers.retain(|_, l| *l != link_id);
        self.io.push(Output::ApplyRemote { link: link_id, sdp });
    }

    /// The peer (`signer`) refused an offer we routed through the ring, or told us its key to seal it to.
    pub(super) fn handle_connect_reject(
        &mut self,
        now: Timestamp,
        signer: &SessionPublicKey,
        link: u64,
        reason: RejectReason,
        alternatives: Vec<Id>,
    ) {
        let origin = signer.node_id();
        let link_id = LinkId(link);
        let Some(l) = self.links.get(link_id) else { return };
        if l.peer != Some(origin) || l.is_open() {
            return;
        }
        let finger = l.kind == LinkKind::ToFinger;
        let direct = l.kind == LinkKind::ToDirect;
        if reason == RejectReason::SealToMe {
            // The key we asked for: the refusal's signer is the peer (checked above). An offer that was
            // sealed already is never refused so by an honest peer; then nothing changes.
            let Some(l) = self.links.get_mut(link_id) else { return };
            if !matches!(l.state, LinkState::AwaitingKey { .. }) {
                return;
            }
            let LinkState::AwaitingKey { sdp, .. } = std::mem::replace(&mut l.state, LinkState::Connecting)
            else {
                return;
            };
            self.links.offers.retain(|_, l| *l != link_id);
            self.links.keys.learn(signer);
            self.send_sealed_offer(now, link_id, signer, sdp);
            return;
        }
        if reason == RejectReason::Duplicate {
            // The peer's own offer to us wins the tie: keep our record (it holds the peer's place in
            // the budget) until that offer arrives and replaces it, or setup times out.
            self.links.offers.retain(|_, l| *l != link_id);
            if let Some(l) = self.links.get_mut(link_id) {
                l.state = LinkState::Connecting;
            }
            return;
        }
        if direct {
            // Refused: the flow keeps going by the ring.
            return self.direct_failed(now, link_id, true);
        }
        self.drop_link(now, link_id, true);
        if reason == RejectReason::Busy && !finger {
            // Ask again a little later rather than every stabilize tick.
            self.links.busy.insert(origin, now.saturating_add(BUSY_BACKOFF / 12));
        }
        if reason == RejectReason::Busy && finger {
            self.links.busy.insert(origin, now.saturating_add(BUSY_BACKOFF));
            if let Some(alt) = alternatives.into_iter().find(|a| *a != self.id()) {
                let slot = self.ring.distinct_fingers().iter().find(|(_, f)| *f == origin).copied();
                if let Some((slot, _)) = slot {
                    self.ring.set_finger(slot as usize, alt);
                    self.connect_fingers(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::super::links::{AnswerPath, Link, LinkKind, LinkState};
    use super::super::msg::{self, AnswerContents, OfferContents, RejectReason, RingMsg, Routed};
    use super::super::testing::{identity, link_to, node, T0};
    use super::super::Node;
    use crate::e2e;
    use crate::identity::delegation::Delegation;
    use crate::identity::SessionPublicKey;
    use crate::node::api::{LinkPurpose, LinkRole, Output};
    use crate::wire::envelope::{self, MessageId, Received};

    /// The routed bodies `node` sent since last asked, verified and decoded, with their signers.
    fn sent(node: &mut Node) -> Vec<Received<Routed>> {
        let mut out = Vec::new();
        while let Some(output) = Some(node.poll_output()) {
            match output {
                Output::Transmit { bytes, .. } => {
                    if let Some(frame) = msg::decode_routed(bytes[0], &bytes[1..]) {
                        let received = envelope::decode::<Routed>(frame.envelope, node.me.network);
                        out.push(received.expect("a valid envelope"));
                    }
                }
                Output::Timeout(_) => return out,
                _ => {}
            }
        }
        out
    }

    fn opened_links(node: &mut Node) -> usize {
        let mut n = 0;
        while let Some(output) = Some(node.poll_output()) {
            match output {
                Output::OpenLink { role: LinkRole::Answer(_), .. } => n += 1,
                Output::Timeout(_) => return n,
                _ => {}
            }
        }
        n
    }

    fn seal_offer(to: &SessionPublicKey, delegation: Delegation) -> Vec<u8> {
        let contents = OfferContents { purpose: LinkPurpose::Finger, sdp: "sdp of a".into(), delegation };
        let plain = postcard::to_allocvec(&contents).expect("encodes");
        e2e::seal_to(&crate::crypto::REAL, &mut ChaCha20Rng::seed_from_u64(5), to, &plain).expect("seals")
    }

    #[test]
    fn an_empty_offer_is_answered_with_the_key_and_spends_nothing() {
        let (mut b, b_key) = node(2);
        let (_, a_key) = node(1);
        let (_, c_key) = node(3);
        link_to(&mut b, &c_key);
        let links = b.links.len();
        b.handle_sealed_offer(T0, &a_key, MessageId([1; 16]), 9, &[]);
        let replies = sent(&mut b);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].origin, b_key, "the refusal is signed by the key to seal to");
        assert_eq!(replies[0].header.reply_to, Some(MessageId([1; 16])));
        assert!(matches!(
            &replies[0].body,
            Routed::Ring(RingMsg::ConnectReject { link: 9, reason: RejectReason::SealToMe, .. })
        ));
        assert_eq!(b.links.len(), links, "no link for a key request");
    }

    #[test]
    fn a_sealed_offer_spends_a_link_only_once_its_delegation_verified() {
        let (mut b, b_key) = node(2);
        let (_, a_key) = node(1);
        let (_, a_delegation) = identity(1);
        let (_, other_delegation) = identity(3);
        let (_, c_key) = node(4);
        link_to(&mut b, &c_key);
        let links = b.links.len();

        // Junk where the sealed contents should be: counted, nothing spent, no answer.
        let invalid = b.io.counters.dropped_invalid;
        b.handle_sealed_offer(T0, &a_key, MessageId([1; 16]), 9, &[7; 300]);
        assert_eq!(b.io.counters.dropped_invalid, invalid + 1);
        assert!(sent(&mut b).is_empty());
        // Sealed to someone else: the same.
        b.handle_sealed_offer(T0, &a_key, MessageId([2; 16]), 9, &seal_offer(&a_key, a_delegation.clone()));
        assert_eq!(b.io.counters.dropped_invalid, invalid + 2);
        // Sealed to b, but the delegation inside authorises another session: refused, no link.
        b.handle_sealed_offer(T0, &a_key, MessageId([3; 16]), 9, &seal_offer(&b_key, other_delegation));
        let replies = sent(&mut b);
        assert!(matches!(
            &replies[..],
            [Received {
                body: Routed::Ring(RingMsg::ConnectReject { reason: RejectReason::Unauthorized, .. }),
                ..
            }]
        ));
        assert_eq!((b.links.len(), opened_links(&mut b)), (links, 0));

        // The offer as a's node seals it: opened, checked, answered, and the answer goes back sealed to a.
        b.handle_sealed_offer(T0, &a_key, MessageId([4; 16]), 9, &seal_offer(&b_key, a_delegation));
        assert_eq!(b.links.len(), links + 1);
        let (link, path) = b
            .links
            .iter()
            .find_map(|(id, l)| match &l.state {
                LinkState::MakingAnswer(path) => Some((id, path.clone())),
                _ => None,
            })
            .expect("a link making its answer");
        assert_eq!(
            path,
            AnswerPath::Routed { offer_id: MessageId([4; 16]), offerer_link: 9, offerer_key: a_key }
        );
        sent(&mut b);
        b.handle_local_description(T0, link, "sdp of b".into());
        let replies = sent(&mut b);
        let [Received { body: Routed::Ring(RingMsg::SealedAnswer { link: 9, sealed }), .. }] = &replies[..]
        else {
            panic!("not one sealed answer: {replies:?}");
        };
        let (a_session, _) = identity(1);
        let plain = e2e::open_sealed(&a_session, usize::MAX, sealed).expect("sealed to a");
        let contents: AnswerContents = postcard::from_bytes(&plain).expect("an answer");
        assert_eq!(contents.sdp, "sdp of b");
        assert_eq!(contents.delegation, b.me.delegation);
    }

    #[test]
    fn an_offer_waiting_for_the_key_goes_out_sealed_to_the_key_that_signed_the_refusal() {
        let (mut a, a_key) = node(1);
        let (b_session, _) = identity(2);
        let b_key = *b_session.public();
        let (_, c_key) = node(3);
        link_to(&mut a, &c_key);
        let link = a.links.insert(Link::offer(T0, Some(b_key.node_id()), LinkKind::ToFinger));
        a.handle_local_description(T0, link, "sdp of a".into());
        // b's key is unknown: the offer asks for it, and carries nothing else.
        let asked = sent(&mut a);
        assert!(
            matches!(&asked[..], [Received { body: Routed::Ring(RingMsg::SealedOffer { sealed, .. }), .. }] if sealed.is_empty())
        );
        assert_eq!(a.io.counters.key_requests, 1);
        assert!(matches!(a.links.get(link).map(|l| &l.state), Some(LinkState::AwaitingKey { .. })));
        // A refusal asking to seal, signed by someone else than b: ignored.
        a.handle_connect_reject(T0, &c_key, link.0, RejectReason::SealToMe, vec![]);
        assert!(sent(&mut a).is_empty());
        // Signed by b: the offer goes out sealed to b, and b's key is remembered for next time.
        a.handle_connect_reject(T0, &b_key, link.0, RejectReason::SealToMe, vec![]);
        let offers = sent(&mut a);
        let [Received { origin, body: Routed::Ring(RingMsg::SealedOffer { sealed, .. }), .. }] = &offers[..]
        else {
            panic!("not one sealed offer: {offers:?}");
        };
        assert_eq!(*origin, a_key);
        let plain = e2e::open_sealed(&b_session, usize::MAX, sealed).expect("sealed to b");
        let contents: OfferContents = postcard::from_bytes(&plain).expect("an offer");
        assert_eq!((contents.purpose, contents.sdp.as_str()), (LinkPurpose::Finger, "sdp of a"));
        assert_eq!(contents.delegation, a.me.delegation);
        assert!(matches!(a.links.get(link).map(|l| &l.state), Some(LinkState::AwaitingAnswer { .. })));
        assert_eq!(a.links.keys.get(b_key.node_id(), &crate::crypto::REAL), Some(b_key));
        // Asked to seal again once it has: nothing changes, nothing is sent.
        a.handle_connect_reject(T0, &b_key, link.0, RejectReason::SealToMe, vec![]);
        assert!(sent(&mut a).is_empty());
        assert!(matches!(a.links.get(link).map(|l| &l.state), Some(LinkState::AwaitingAnswer { .. })));
    }
}
