//! Pairing: two nodes link with no server, through an offer and an answer that a person carries between
//! them (copy and paste).
//!
//! ```text
//!   A: pair_offer(now) ──▶ Output::PairingOffer { link, offer }   (A's shell: a code)
//!   B: handle_pairing_offer(now, request, offer) ──▶ Output::PairingAnswer { request, answer }  (B: a code)
//!   A: handle_pairing_answer(now, answer) ──▶ Output::ApplyRemote ──▶ the link opens on both sides
//! ```
//!
//! The offer and the answer are the same signed `ConnectOffer` / `ConnectAnswer` envelopes as an HTTP
//! bootstrap, so the link is bound to both session keys and their delegations. What differs:
//!
//! - A person is slow. A pairing link may take [`PAIRING_TIMEOUT`] to open (other links: the config's
//!   `link_setup_timeout`), and an offer is accepted for as long (then it is refused as expired).
//! - The answer names the offer it answers (`reply_to` = the offer's message id), so an answer is matched to
//!   its offer without the shell keeping track, and an answer to anything else is refused.
//! - A code pasted by mistake (damaged, the wrong kind, another node's, a second time) is refused with a
//!   [`PairingError`] and changes nothing: the offer waiting for its answer stays as it was.
//! - When the link opens, whichever side is not in a ring joins the other's: a lone offerer joins through
//!   the answerer (which, if alone too, founds the ring); an offerer already in a ring notifies the answerer,
//!   which adopts it as its first successor if it is alone, and checks the answerer's ring for a nearer
//!   successor (the merge check) if it is not.

use std::time::Duration;

use super::links::{AnswerPath, Link, LinkKind, LinkState};
use super::msg::{self, LinkMsg, RingMsg, Routed};
use super::router::REPLAY_LIFETIME;
use super::Node;
use crate::identity::delegation::DelegationError;
use crate::node::api::{LinkId, LinkPurpose, LinkRole, Output};
use crate::time::Timestamp;
use crate::wire::envelope::{self, DecodeError, Destination};
use crate::wire::replay::ReplayError;

/// How long a pairing offer is accepted and a pairing link may take to open: the time a person has to carry
/// the offer over and the answer back. The same as the replay window's lifetime, so an expired offer is also
/// one the node no longer remembers.
pub const PAIRING_TIMEOUT: Duration = REPLAY_LIFETIME;

/// Pairing offers waiting for their answer at once.
pub const MAX_PAIRINGS: usize = 4;

/// Why a pairing offer could not be made, or a pasted offer or answer was refused. None of these changes
/// the node: an offer waiting for its answer keeps waiting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    /// The bytes are not a signed frame of this network: damaged, altered after signing (the signature no
    /// longer verifies), or made by a node of another network.
    #[error("not a valid pairing code: {0}")]
    Malformed(#[from] DecodeError),
    /// A valid frame, but not what was expected (an answer where an offer was expected, or the reverse).
    #[error("this is not a pairing {expected}")]
    WrongKind {
        /// "offer" or "answer".
        expected: &'static str,
    },
    /// The offer is older than [`PAIRING_TIMEOUT`].
    #[error("the offer expired (offers are valid for {} minutes)", PAIRING_TIMEOUT.as_secs() / 60)]
    Expired,
    /// The offer's time is ahead of this node's clock by more than the allowed skew.
    #[error("the offer is dated in the future: one of the two clocks is wrong")]
    FromTheFuture,
    /// This node already answered this offer.
    #[error("this offer was already answered here")]
    AlreadyUsed,
    /// The other node's delegation does not verify (expired, forged, or for another session).
    #[error("the other node's wallet delegation does not verify: {0}")]
    Unauthorized(DelegationError),
    /// The code was made by this node itself.
    #[error("this code was made by this node; it belongs on the other browser")]
    OwnCode,
    /// This node already has a link to the other node.
    #[error("already linked to that node")]
    AlreadyLinked,
    /// No offer of this node waits for this answer: it expired, was already answered, or the answer is
    /// for another node's offer.
    #[error("no offer of this node waits for this answer (it expired, was already answered, or is another node's)")]
    NoMatchingOffer,
    /// No room: the link budget is full, too many offers wait, or the node is leaving.
    #[error("busy: no room for another link now")]
    Busy,
}

impl Node {
    /// Starts a pairing offer: asks the shell for a link offer, which comes back out as
    /// [`Output::PairingOffer`] for the returned link. The link is dropped if it has not opened after
    /// [`PAIRING_TIMEOUT`].
    pub fn pair_offer(&mut self, now: Timestamp) -> Result<LinkId, PairingError> {
        let waiting = self
            .links
            .iter()
            .filter(|(_, l)| matches!(l.kind, LinkKind::Pairing { offerer: true, .. }) && !l.is_open())
            .count();
        if self.membership.leaving || waiting >= MAX_PAIRINGS || !self.has_room(false) {
            return Err(PairingError::Busy);
        }
        let id = self.links.insert(Link::offer(now, None, LinkKind::Pairing { offerer: true, offer: None }));
        self.open_link_output(id, LinkRole::Offer);
        Ok(id)
    }

    /// A pairing offer pasted on this node. On success it returns the link that answers it, and an
    /// [`Output::PairingAnswer`] for `request` follows once the shell produced the answer.
    pub fn handle_pairing_offer(
        &mut self,
        now: Timestamp,
        request: u64,
        body: &[u8],
    ) -> Result<LinkId, PairingError> {
        let received = envelope::decode_with::<Routed>(self.config.crypto, body, self.me.network)?;
        let peer = received.origin.node_id();
        if peer == self.id() {
            return Err(PairingError::OwnCode);
        }
        let Routed::Ring(RingMsg::ConnectOffer { purpose: LinkPurpose::Bootstrap, sdp, delegation, .. }) =
            &received.body
        else {
            return Err(PairingError::WrongKind { expected: "offer" });
        };
        if received.header.dest != Destination::Neighbor
            || received.header.reply_to.is_some()
            || sdp.len() > msg::MAX_SDP
        {
            return Err(PairingError::WrongKind { expected: "offer" });
        }
        // Said before the replay window would (it refuses both as "too old").
        if now.since(received.header.sent_at) > PAIRING_TIMEOUT {
            return Err(PairingError::Expired);
        }
        if self.links.by_peer(peer).is_some_and(|l| self.links.get(l).is_some_and(Link::is_open)) {
            return Err(PairingError::AlreadyLinked);
        }
        self.verify_peer(delegation, &received.origin, now).map_err(PairingError::Unauthorized)?;
        match self.router.replay.check_and_insert(received.header.id.0, received.header.sent_at, now) {
            Ok(()) => {}
            Err(ReplayError::TooOld) => return Err(PairingError::Expired),
            Err(ReplayError::TooNew) => return Err(PairingError::FromTheFuture),
            Err(ReplayError::Duplicate) => return Err(PairingError::AlreadyUsed),
            Err(ReplayError::Full) => return Err(PairingError::Busy),
        }
        let path = AnswerPath::Pairing { request, offer_id: received.header.id };
        let kind = LinkKind::Pairing { offerer: false, offer: None };
        self.accept_offer(now, peer, kind, sdp.clone(), path).map_err(|_| {
            // A refused offer is used up all the same (its id is in the replay window): say why plainly.
            PairingError::Busy
        })
    }

    /// The answer to one of this node's pairing offers, pasted on this node. Returns the link it belongs
    /// to; the link then opens (or fails) like any other.
    pub fn handle_pairing_answer(&mut self, now: Timestamp, body: &[u8]) -> Result<LinkId, PairingError> {
        let received = envelope::decode_with::<Routed>(self.config.crypto, body, self.me.network)?;
        let peer = received.origin.node_id();
        if peer == self.id() {
            return Err(PairingError::OwnCode);
        }
        let Routed::Ring(RingMsg::ConnectAnswer { sdp, delegation, .. }) = &received.body else {
            return Err(PairingError::WrongKind { expected: "answer" });
        };
        let (Destination::Neighbor, Some(offer_id)) = (received.header.dest, received.header.reply_to) else {
            return Err(PairingError::WrongKind { expected: "answer" });
        };
        if sdp.len() > msg::MAX_SDP {
            return Err(PairingError::WrongKind { expected: "answer" });
        }
        let link_id = self
            .links
            .iter()
            .find(|(_, l)| l.kind == LinkKind::Pairing { offerer: true, offer: Some(offer_id) })
            .map(|(id, _)| id)
            .ok_or(PairingError::NoMatchingOffer)?;
        if !self.links.get(link_id).is_some_and(|l| matches!(l.state, LinkState::AwaitingAnswer { .. })) {
            return Err(PairingError::NoMatchingOffer);
        }
        if self.links.by_peer(peer).is_some() {
            return Err(PairingError::AlreadyLinked);
        }
        self.verify_peer(delegation, &received.origin, now).map_err(PairingError::Unauthorized)?;
        if let Some(link) = self.links.get_mut(link_id) {
            link.state = LinkState::Connecting;
        }
        self.links.set_peer(link_id, peer);
        self.io.push(Output::ApplyRemote { link: link_id, sdp: sdp.clone() });
        Ok(link_id)
    }

    /// A pairing link opened: the side that is not in a ring joins the other's (see the module docs).
    pub(super) fn pairing_opened(&mut self, now: Timestamp, link_id: LinkId) {
        let Some(link) = self.links.get_mut(link_id) else { return };
        // Set up minutes ago: without this the idle rule would close it before either side needs it.
        link.peer_keeps_until = now.saturating_add(self.config.idle_link_grace);
        let offerer = link.kind.offerer();
        if offerer {
            if self.membership.joined {
                self.transmit(link_id, msg::link_frame(&LinkMsg::Notify));
                self.start_merge_check(now, link_id);
            } else {
                self.membership.founder = false;
                self.start_join(now);
            }
        } else if self.ring.successors().is_empty() {
            // Alone: this node founds the ring the offerer joins (a lookup it cannot route is then its own).
            self.membership.founder = true;
        }
    }
}
