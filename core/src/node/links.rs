//! The link table, as a sub-machine: every link the node has asked its shell to open, its state and its
//! traffic, and what the node remembers about peers it tried to link to.
//!
//! - **Owns** ([`Links`]): the links by id and by peer, the offers sent through the ring (to match a failure
//!   report back to its link), peers that answered `Busy` (not asked again until a time), peers whose
//!   offers went unanswered (twice means dead), and the session keys offers are sealed to ([`KeyBook`]).
//! - **Takes**: the [`Io`] sink, to send frames.
//! - **Emits**: [`Output::Transmit`], counting frames and bytes per link and in the node's counters.
//!
//! The policy — which links the node wants, which it refuses or evicts, when one is dead — is the
//! parent's (`maintain.rs`), because it depends on the ring.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::keys::KeyBook;
use super::msg::AckRange;
use super::Io;
use crate::id::Id;
use crate::identity::SessionPublicKey;
use crate::node::api::{LinkId, LinkPurpose, Output};
use crate::time::Timestamp;
use crate::wire::MessageId;

/// Where a link is in its setup. Each link goes one of two ways:
///
/// ```text
///   we offer:   MakingOffer ──local description──▶ AwaitingAnswer ──answer──▶ Connecting ──▶ Open
///                    └── (through the ring, the peer's key unknown) ──▶ AwaitingKey ──key──▶ AwaitingAnswer
///   we answer:  MakingAnswer(path) ──local description, sent back by path──▶ Connecting ──▶ Open
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkState {
    /// We asked the shell for an offer and wait for its local description.
    MakingOffer,
    /// Our offer went out at `since`; we wait for the answer.
    AwaitingAnswer { since: Timestamp },
    /// An offer through the ring, to a peer whose session key we do not know: at `since` we asked the peer
    /// for it (an empty `SealedOffer`); `sdp` waits to be sealed to the key its refusal is signed with.
    AwaitingKey { since: Timestamp, sdp: String },
    /// We asked the shell to answer a remote offer and wait for its local description, which goes back by
    /// this path.
    MakingAnswer(AnswerPath),
    /// Descriptions exchanged; waiting for the channel to open.
    Connecting,
    /// Frames flow.
    Open,
}

/// How the answer to an offer we are answering goes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AnswerPath {
    /// As the body of the HTTP response to this shell request.
    Http(u64),
    /// As a routed reply to this offer envelope, sealed to the offer's signer (`offerer_key`): relays do
    /// not learn our delegation or description.
    Routed { offer_id: MessageId, offerer_link: u64, offerer_key: SessionPublicKey },
    /// As a pairing answer (a code a person carries back), naming the offer it answers, for this shell
    /// request.
    Pairing { request: u64, offer_id: MessageId },
}

/// Why a link exists, and who set it up. The offerer's purpose travels in its offer
/// ([`LinkPurpose`], the answerer applies its link policy to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// We offered it to a successor candidate, through the ring — `via` this bootstrap link first when the
    /// candidate was found in a bootstrap server's ring (it may be in another ring than ours).
    ToSuccessor { via: Option<LinkId> },
    /// We offered it to one of our fingers, through the ring.
    ToFinger,
    /// We offered it, through the ring, to a node we send a sustained flow to (`direct.rs`).
    ToDirect,
    /// We offered it to the bootstrap server at `url` over HTTP: to join, or (`merge_check`, once joined)
    /// only to ask the server's ring who our successor should be.
    ToServer { url: String, merge_check: bool },
    /// The peer offered it, for this purpose: we are in its successor list, among its fingers, or it
    /// bootstraps through us over HTTP.
    From(LinkPurpose),
    /// Set up by pairing: a person carried the offer and the answer. As the offerer, `offer` is our
    /// offer's message id once it is made (the answer names it).
    Pairing { offerer: bool, offer: Option<MessageId> },
}

impl LinkKind {
    /// The purpose an offer of this kind carries (for a link the peer offered: the purpose it said).
    pub(crate) fn purpose(&self) -> LinkPurpose {
        match self {
            LinkKind::ToSuccessor { .. } => LinkPurpose::Successor,
            LinkKind::ToFinger => LinkPurpose::Finger,
            LinkKind::ToDirect => LinkPurpose::Direct,
            LinkKind::ToServer { .. } | LinkKind::Pairing { .. } => LinkPurpose::Bootstrap,
            LinkKind::From(purpose) => *purpose,
        }
    }

    /// Whether this node made the offer.
    pub(crate) fn offerer(&self) -> bool {
        match self {
            LinkKind::ToSuccessor { .. }
            | LinkKind::ToFinger
            | LinkKind::ToDirect
            | LinkKind::ToServer { .. } => true,
            LinkKind::From(_) => false,
            LinkKind::Pairing { offerer, .. } => *offerer,
        }
    }

    /// Whether this is a setup link of ours (to a server, or a pairing we offered) rather than a link
    /// between ring members.
    pub(crate) fn is_own_bootstrap(&self) -> bool {
        matches!(self, LinkKind::ToServer { .. } | LinkKind::Pairing { offerer: true, .. })
    }

    /// Whether the peer set this link up to join through us (an HTTP bootstrap, or a pairing it offered):
    /// such links may use the slots kept for joiners ([`Config::join_slots`](crate::node::Config)).
    pub(crate) fn joins_through_us(&self) -> bool {
        matches!(self, LinkKind::From(LinkPurpose::Bootstrap) | LinkKind::Pairing { offerer: false, .. })
    }
}

/// One link.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) peer: Option<Id>,
    pub(crate) kind: LinkKind,
    pub(crate) state: LinkState,
    pub(crate) created: Timestamp,
    pub(crate) last_recv: Timestamp,
    /// When the link last carried a routed frame in (else when it was made): what "idle" means when a
    /// slot must be freed. Pings and other link messages do not count — they only keep a link alive.
    pub(crate) last_used: Timestamp,
    pub(crate) ping: Option<(u64, Timestamp)>,
    /// When we last sent a ping.
    pub(crate) last_ping: Timestamp,
    /// When the peer last pinged us.
    pub(crate) last_ping_in: Timestamp,
    pub(crate) rtt: Option<Duration>,
    /// The peer said it needs this link until then.
    pub(crate) peer_keeps_until: Timestamp,
    /// Do not route over it until then (it failed to acknowledge).
    pub(crate) suspect_until: Timestamp,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// The peer showed it is a ring member (it stabilizes or notifies over this link).
    pub(crate) peer_in_ring: bool,
    /// The start of the peer's range (its predecessor) as it last told us in a ping or pong: the peer
    /// owns the keys in `(peer_range_from, peer]`.
    pub(crate) peer_range_from: Option<Id>,
    /// The number of the last routed frame sent on the link (they are numbered from 1).
    pub(crate) seq_out: u64,
    /// Routed frames received and not acknowledged yet.
    pub(crate) ack_due: Option<PendingAck>,
}

/// The routed frames a link received since it last acknowledged: a run of consecutive numbers, and when
/// the acknowledgement goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingAck {
    pub(crate) range: AckRange,
    pub(crate) bytes: usize,
    /// From then on it goes with the node's next input or timer.
    pub(crate) due: Timestamp,
    /// The node wakes up for it then.
    pub(crate) latest: Timestamp,
}

impl Link {
    /// A link we offer (the shell is asked for an offer).
    pub(crate) fn offer(now: Timestamp, peer: Option<Id>, kind: LinkKind) -> Self {
        Link::new(now, peer, kind, LinkState::MakingOffer)
    }

    /// A link we answer (the shell is asked to answer); the answer goes back by `path`.
    pub(crate) fn answer(now: Timestamp, peer: Id, kind: LinkKind, path: AnswerPath) -> Self {
        Link::new(now, Some(peer), kind, LinkState::MakingAnswer(path))
    }

    fn new(now: Timestamp, peer: Option<Id>, kind: LinkKind, state: LinkState) -> Self {
        // A node that bootstraps or pairs through us is not a ring member until it stabilizes or notifies.
        let peer_in_ring = !matches!(
            kind,
            LinkKind::From(LinkPurpose::Bootstrap) | LinkKind::Pairing { offerer: false, .. }
        );
        Link {
            peer,
            kind,
            state,
            created: now,
            last_recv: now,
            last_used: now,
            ping: None,
            last_ping: now,
            last_ping_in: Timestamp::ZERO,
            rtt: None,
            peer_keeps_until: Timestamp::ZERO,
            suspect_until: Timestamp::ZERO,
            bytes_in: 0,
            bytes_out: 0,
            peer_in_ring,
            peer_range_from: None,
            seq_out: 0,
            ack_due: None,
        }
    }

    /// Whether the link was set up by pairing (it may take `PAIRING_TIMEOUT` to open).
    pub(crate) fn is_pairing(&self) -> bool {
        matches!(self.kind, LinkKind::Pairing { .. })
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, LinkState::Open)
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
    /// The links' ids, ascending (ids only grow, so a new link goes last), and the links in the same order:
    /// a node has a couple of dozen links at most, and a search through a few contiguous ids beats a tree.
    ids: Vec<LinkId>,
    links: Vec<Link>,
    by_peer: HashMap<Id, LinkId>,
    /// Offers we sent through the ring, to match failures back to the link.
    pub(crate) offers: BTreeMap<MessageId, LinkId>,
    /// Peers that refused a link as `Busy`, not asked again until then.
    pub(crate) busy: HashMap<Id, Timestamp>,
    /// Consecutive unanswered offers per peer.
    pub(crate) unanswered: HashMap<Id, u8>,
    /// The session keys of nodes we heard from, which offers through the ring are sealed to.
    pub(crate) keys: KeyBook,
    /// The earliest [`PendingAck::due`] of any link: an input at or after it sends the acknowledgements.
    pub(crate) acks_due: Option<Timestamp>,
}

impl Links {
    /// Sends a frame on a link (if it still exists), counting it.
    pub(crate) fn transmit(&mut self, io: &mut Io, link_id: LinkId, bytes: Vec<u8>) {
        if let Some(link) = self.get_mut(link_id) {
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
        self.ids.push(id);
        self.links.push(link);
        id
    }

    fn index(&self, id: LinkId) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    pub(crate) fn get(&self, id: LinkId) -> Option<&Link> {
        self.index(id).map(|i| &self.links[i])
    }

    pub(crate) fn get_mut(&mut self, id: LinkId) -> Option<&mut Link> {
        self.index(id).map(|i| &mut self.links[i])
    }

    pub(crate) fn remove(&mut self, id: LinkId) -> Option<Link> {
        let i = self.index(id)?;
        self.ids.remove(i);
        let link = self.links.remove(i);
        if let Some(peer) = link.peer {
            if self.by_peer.get(&peer) == Some(&id) {
                self.by_peer.remove(&peer);
            }
        }
        Some(link)
    }

    /// Names the peer of a link once it is known (bootstrap links learn it from the answer).
    pub(crate) fn set_peer(&mut self, id: LinkId, peer: Id) {
        if let Some(link) = self.get_mut(id) {
            link.peer = Some(peer);
            self.by_peer.insert(peer, id);
        }
    }

    pub(crate) fn by_peer(&self, peer: Id) -> Option<LinkId> {
        self.by_peer.get(&peer).copied()
    }

    /// The open link to `peer`, if any.
    pub(crate) fn open_to(&self, peer: Id) -> Option<LinkId> {
        self.by_peer(peer).filter(|l| self.get(*l).is_some_and(Link::is_open))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (LinkId, &Link)> {
        self.ids.iter().copied().zip(&self.links)
    }

    pub(crate) fn ids(&self) -> Vec<LinkId> {
        self.ids.clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.links.len()
    }

    /// Links other than those of nodes joining through us: the ones the ring budget counts.
    pub(crate) fn ring_count(&self) -> usize {
        self.links.iter().filter(|l| !l.kind.joins_through_us()).count()
    }
}
