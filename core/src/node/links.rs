//! The link table, as a sub-machine: every link the node has asked its shell to open, its state and its
//! traffic, and what the node remembers about peers it tried to link to.
//!
//! - **Owns** ([`Links`]): the links by id and by peer, the offers sent through the ring (to match a failure
//!   report back to its link), peers that answered `Busy` (not asked again until a time), and peers whose
//!   offers went unanswered (twice means dead).
//! - **Takes**: the [`Io`] sink, to send frames.
//! - **Emits**: [`Output::Transmit`], counting frames and bytes per link and in the node's counters.
//!
//! The policy — which links the node wants, which it refuses or evicts, when one is dead — is the
//! parent's (`maintain.rs`), because it depends on the ring.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::Io;
use crate::id::Id;
use crate::node::api::{LinkId, LinkPurpose, Output};
use crate::time::Timestamp;
use crate::wire::MessageId;

/// Where a link is in its setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkState {
    /// We asked the shell for an offer and wait for its local description.
    MakingOffer,
    /// Our offer is out; we wait for the answer.
    AwaitingAnswer,
    /// We asked the shell to answer a remote offer and wait for its local description.
    MakingAnswer,
    /// Descriptions exchanged; waiting for the channel to open.
    Connecting,
    /// Frames flow.
    Open,
}

/// How the answer to an offer we are answering goes back.
#[derive(Clone, Debug)]
pub(crate) enum AnswerPath {
    /// As the body of the HTTP response to this shell request.
    Http(u64),
    /// As a routed reply to this offer envelope.
    Routed { offer_id: crate::wire::MessageId, offerer_link: u64 },
    /// As a pairing answer (a code a person carries back), naming the offer it answers, for this shell
    /// request.
    Pairing { request: u64, offer_id: crate::wire::MessageId },
}

/// One link.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) peer: Option<Id>,
    pub(crate) state: LinkState,
    pub(crate) purpose: LinkPurpose,
    /// We made the offer.
    pub(crate) offerer: bool,
    pub(crate) created: Timestamp,
    /// When our offer went out (state `AwaitingAnswer`).
    pub(crate) offered_at: Timestamp,
    pub(crate) last_recv: Timestamp,
    pub(crate) ping: Option<(u64, Timestamp)>,
    /// When we last sent a ping.
    pub(crate) last_ping: Timestamp,
    pub(crate) rtt: Option<Duration>,
    /// The peer said it needs this link until then.
    pub(crate) peer_keeps_until: Timestamp,
    /// Do not route over it until then (it failed to acknowledge).
    pub(crate) suspect_until: Timestamp,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// The peer showed it is a ring member (it stabilizes or notifies over this link).
    pub(crate) peer_in_ring: bool,
    /// A bootstrap link opened only to check for another ring (see `Config::merge_interval`).
    pub(crate) merge_check: bool,
    /// Send our offer through this link first (a node of another ring is reached through the server).
    pub(crate) via: Option<LinkId>,
    /// Bootstrap URL for a bootstrap offer.
    pub(crate) bootstrap_url: Option<String>,
    /// How to send our answer, when we answer.
    pub(crate) answer_path: Option<AnswerPath>,
    /// The start of the peer's range (its predecessor) as it last told us in a ping or pong: the peer
    /// owns the keys in `(peer_range_from, peer]`.
    pub(crate) peer_range_from: Option<Id>,
    /// Set up by pairing (a person carries offer and answer): it may take `PAIRING_TIMEOUT` to open.
    pub(crate) pairing: bool,
    /// For our pairing offer: the offer's message id, which the answer names.
    pub(crate) pairing_offer: Option<crate::wire::MessageId>,
}

impl Link {
    pub(crate) fn new(now: Timestamp, peer: Option<Id>, purpose: LinkPurpose, offerer: bool) -> Self {
        Link {
            peer,
            state: if offerer { LinkState::MakingOffer } else { LinkState::MakingAnswer },
            purpose,
            offerer,
            created: now,
            offered_at: now,
            last_recv: now,
            ping: None,
            last_ping: now,
            rtt: None,
            peer_keeps_until: Timestamp::ZERO,
            suspect_until: Timestamp::ZERO,
            bytes_in: 0,
            bytes_out: 0,
            peer_in_ring: purpose != LinkPurpose::Bootstrap || offerer,
            merge_check: false,
            via: None,
            bootstrap_url: None,
            answer_path: None,
            peer_range_from: None,
            pairing: false,
            pairing_offer: None,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.state == LinkState::Open
    }

    /// Usable as a next hop for greedy routing: open, acknowledging, and to a ring member (a node that
    /// bootstrapped through us is not one until it stabilizes or notifies).
    pub(crate) fn routable(&self, now: Timestamp) -> bool {
        self.is_open() && self.suspect_until <= now && self.peer.is_some() && self.peer_in_ring
    }

    pub(crate) fn record_rtt(&mut self, sample: Duration) {
        self.rtt = Some(match self.rtt {
            None => sample,
            Some(old) => (old * 7 + sample) / 8,
        });
    }
}

/// All links, by id and by peer, and what the node remembers of peers it tried to link to.
#[derive(Debug, Default)]
pub(crate) struct Links {
    next_id: u64,
    links: BTreeMap<LinkId, Link>,
    by_peer: HashMap<Id, LinkId>,
    /// Offers we sent through the ring, to match failures back to the link.
    pub(crate) offers: BTreeMap<MessageId, LinkId>,
    /// Peers that refused a link as `Busy`, not asked again until then.
    pub(crate) busy: HashMap<Id, Timestamp>,
    /// Consecutive unanswered offers per peer.
    pub(crate) unanswered: HashMap<Id, u8>,
}

impl Links {
    /// Sends a frame on a link (if it still exists), counting it.
    pub(crate) fn transmit(&mut self, io: &mut Io, link_id: LinkId, bytes: Vec<u8>) {
        if let Some(link) = self.links.get_mut(&link_id) {
            link.bytes_out += bytes.len() as u64;
            io.counters.frames_out += 1;
            io.counters.bytes_out += bytes.len() as u64;
            io.push(Output::Transmit { link: link_id, bytes });
        }
    }

    /// Whether `peer` refused us as busy and the pause is not over.
    pub(crate) fn is_busy(&self, peer: Id, now: Timestamp) -> bool {
        self.busy.get(&peer).is_some_and(|until| *until > now)
    }

    pub(crate) fn insert(&mut self, link: Link) -> LinkId {
        self.next_id += 1;
        let id = LinkId(self.next_id);
        if let Some(peer) = link.peer {
            self.by_peer.insert(peer, id);
        }
        self.links.insert(id, link);
        id
    }

    pub(crate) fn get(&self, id: LinkId) -> Option<&Link> {
        self.links.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: LinkId) -> Option<&mut Link> {
        self.links.get_mut(&id)
    }

    pub(crate) fn remove(&mut self, id: LinkId) -> Option<Link> {
        let link = self.links.remove(&id)?;
        if let Some(peer) = link.peer {
            if self.by_peer.get(&peer) == Some(&id) {
                self.by_peer.remove(&peer);
            }
        }
        Some(link)
    }

    /// Names the peer of a link once it is known (bootstrap links learn it from the answer).
    pub(crate) fn set_peer(&mut self, id: LinkId, peer: Id) {
        if let Some(link) = self.links.get_mut(&id) {
            link.peer = Some(peer);
            self.by_peer.insert(peer, id);
        }
    }

    pub(crate) fn by_peer(&self, peer: Id) -> Option<LinkId> {
        self.by_peer.get(&peer).copied()
    }

    /// The open link to `peer`, if any.
    pub(crate) fn open_to(&self, peer: Id) -> Option<LinkId> {
        self.by_peer(peer).filter(|l| self.links.get(l).is_some_and(Link::is_open))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (LinkId, &Link)> {
        self.links.iter().map(|(id, l)| (*id, l))
    }

    pub(crate) fn ids(&self) -> Vec<LinkId> {
        self.links.keys().copied().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.links.len()
    }
}
