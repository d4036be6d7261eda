//! The vocabulary between the node and its shell: link ids, link events, outputs, events, status.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::identity::{Address, SessionPublicKey};
use crate::time::Timestamp;

/// A link as the node and its shell both name it. Allocated by the node (never reused within a node's life).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkId(pub u64);

/// A request made through the node's API (lookup, bootstrap, …); its outcome arrives as an [`Event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// How the shell must set up a link it is told to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkRole {
    /// Create a peer connection and one data channel, make an offer, gather candidates, and hand the
    /// complete local description back with [`crate::node::Node::handle_local_description`].
    Offer,
    /// Create a peer connection, apply this remote offer, make an answer, gather candidates, and hand the
    /// complete local description back.
    Answer(String),
}

/// What happened to a link, as the shell saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The data channel is open; frames can flow.
    Opened,
    /// The channel closed (either side).
    Closed,
    /// Setup failed (ICE, DTLS, bad description) or the transport broke.
    Failed,
}

/// Why a link was set up; travels in the offer so the answering node can apply its link policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinkPurpose {
    /// The first link of a joining node, through a bootstrap server.
    Bootstrap,
    /// The answerer is (or is about to be) in the offerer's successor list.
    Successor,
    /// The answerer is one of the offerer's fingers.
    Finger,
    /// The offerer sends a sustained flow to the answerer (`direct.rs`): a shortcut past the relays, kept
    /// while it carries the flow.
    Direct,
}

/// One thing the shell must do, drained with [`crate::node::Node::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes on this (open) link.
    Transmit {
        /// The link.
        link: LinkId,
        /// One complete frame.
        bytes: Vec<u8>,
    },
    /// Start setting up a link (see [`LinkRole`]).
    OpenLink {
        /// The new link's id.
        link: LinkId,
        /// Offer or answer.
        role: LinkRole,
    },
    /// Apply the remote answer to a link this node offered.
    ApplyRemote {
        /// The link.
        link: LinkId,
        /// The remote session description.
        sdp: String,
    },
    /// Close and forget this link (always `close()` the peer connection).
    CloseLink {
        /// The link.
        link: LinkId,
    },
    /// Send this signed offer to the bootstrap server at `url` (`POST /v1/signal`) and hand the response
    /// body to [`crate::node::Node::handle_bootstrap_answer`] (or report failure with
    /// [`crate::node::Node::handle_bootstrap_failure`]).
    BootstrapOffer {
        /// The link the offer belongs to.
        link: LinkId,
        /// The server's base URL, as given to `connect_bootstrap`.
        url: String,
        /// The request body.
        offer: Vec<u8>,
    },
    /// The answer to an offer received through [`crate::node::Node::handle_bootstrap_offer`]: the body of
    /// the HTTP response for that request.
    BootstrapAnswer {
        /// The shell's own id for the HTTP request, as passed in.
        request: u64,
        /// The response body.
        answer: Vec<u8>,
    },
    /// A pairing offer made by [`crate::node::Node::pair_offer`], for a person to carry to another node
    /// (as a code); its answer comes back through [`crate::node::Node::handle_pairing_answer`].
    PairingOffer {
        /// The link the offer belongs to.
        link: LinkId,
        /// The signed offer.
        offer: Vec<u8>,
    },
    /// The answer to a pairing offer pasted through [`crate::node::Node::handle_pairing_offer`], for a
    /// person to carry back.
    PairingAnswer {
        /// The shell's own id for the pasted offer, as passed in.
        request: u64,
        /// The signed answer.
        answer: Vec<u8>,
    },
    /// Something the application may want to know.
    Event(Event),
    /// Nothing more to do now; call `handle_timeout` at this time (or earlier on any input). `None`: no
    /// timer is armed — the node has left ([`Event::Left`]) and will do nothing more.
    Timeout(Option<Timestamp>),
}

/// What the application hears about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A lookup resolved.
    LookupDone {
        /// The request.
        request: RequestId,
        /// The key looked up.
        key: Id,
        /// The node that owns the key (its successor).
        owner: Id,
        /// Hops the request took to reach the owner.
        hops: u8,
        /// Hops of request plus reply.
        path_len: u8,
    },
    /// A request could not be completed.
    RequestFailed {
        /// The request.
        request: RequestId,
        /// Why.
        reason: FailReason,
    },
    /// The node joined the ring (it has a live successor) or lost it.
    Membership {
        /// Whether the node now has a live successor.
        joined: bool,
    },
    /// A request that has no other result (announce, withdraw) completed.
    Done {
        /// The request.
        request: RequestId,
    },
    /// `lookup_wallet` resolved: the wallet's live sessions (several devices are normal).
    WalletSessions {
        /// The request.
        request: RequestId,
        /// The wallet.
        wallet: Address,
        /// Its live sessions.
        sessions: Vec<SessionInfo>,
    },
    /// `discover` resolved: the wallets present on the topic, with their announce times.
    Discovered {
        /// The request.
        request: RequestId,
        /// Wallets and when they announced.
        members: Vec<(Address, Timestamp)>,
    },
    /// `send` resolved.
    Sent {
        /// The request.
        request: RequestId,
        /// Delivered to live sessions, or stored for an offline wallet.
        outcome: SendOutcome,
    },
    /// A message arrived for this node's wallet.
    MessageReceived {
        /// The sending wallet (proved by its delegation).
        from_wallet: Address,
        /// The app origin it was sent from; deliver it only to that origin.
        app_origin: String,
        /// The payload.
        bytes: Vec<u8>,
        /// The message id.
        id: [u8; 16],
        /// The sender's clock when it sent it.
        sent_at: Timestamp,
        /// Links it crossed to get here: 1 when the sender's node is linked to this one, 0 from this node.
        hops: u8,
    },
    /// A graceful [`crate::node::Node::leave`] is complete: the goodbyes went out, every link is closed,
    /// and the node does nothing more. The shell may drop it.
    Left,
}

/// One session of a wallet, as `lookup_wallet` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session's node id.
    pub node_id: Id,
    /// The session key.
    pub session: SessionPublicKey,
    /// Until when its presence record is live.
    pub expires: Timestamp,
}

/// How a sent message ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SendOutcome {
    /// These sessions (node ids) returned signed receipts.
    Delivered {
        /// Node ids that acknowledged.
        sessions: Vec<Id>,
    },
    /// No live session: the ciphertext waits in the wallet's mailbox.
    Stored,
}

/// Why a request failed. Always given — a request never ends silently.
///
/// Each reason has exactly one code in the shells' vocabularies; node-wasm's table of them (and of the
/// EIP-1193 codes pages get) is `node-wasm/src/error.rs`, printed in `docs/dapp-api.md`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FailReason {
    /// No answer before the request's deadline, retries included.
    #[error("timed out")]
    Timeout,
    /// The message could not make progress: no live link leads closer to the destination.
    #[error("no route to the destination")]
    NoRoute,
    /// The hop limit ran out before the destination was reached.
    #[error("hop limit exceeded")]
    HopLimit,
    /// The addressed node (a session's node id) is not in the ring: it left, or never joined. A routing
    /// failure, not a statement about the wallet (that is [`FailReason::NotFound`]).
    #[error("node not found")]
    NodeNotFound,
    /// The node has no links at all.
    #[error("not connected")]
    NotConnected,
    /// A bootstrap exchange failed (the request is the one [`crate::node::Node`] started for that server).
    #[error("bootstrap failed: {0}")]
    Bootstrap(BootstrapError),
    /// The wallet has no known session (it never published presence, or every delegation expired): "no
    /// such wallet online", as the holder of its presence record answered.
    #[error("wallet not found")]
    NotFound,
    /// The recipient's mailbox is at its cap.
    #[error("mailbox full")]
    MailboxFull,
    /// This wallet has as much mail waiting in the recipient's mailbox as one sender may (an eighth of it,
    /// docs/protocol.md "Limits"); the mailbox itself still takes other senders' mail. Try again once the
    /// recipient has read some.
    #[error("sender's quota in the recipient's mailbox used up")]
    MailboxQuota,
    /// The record was refused by its holder.
    #[error("record refused")]
    RecordRefused,
    /// The payload (or app origin) is over its limit; nothing was sent.
    #[error("too large ({0} bytes)")]
    TooLarge(usize),
}

/// Why one bootstrap exchange failed: the offer to a server's `/v1/signal`, its answer, and the link to the
/// server until the join completes. The shell reports the first three kinds through
/// [`crate::node::Node::handle_bootstrap_failure`]; the core finds the others in the answer or the link.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BootstrapError {
    /// The server could not be reached, or the exchange broke off before a response: bad URL, name
    /// resolution, connection refused or reset, a CORS or network error in a browser. `detail` is the
    /// shell's own description.
    #[error("server unreachable: {detail}")]
    Unreachable {
        /// What the shell saw, for people.
        detail: String,
    },
    /// No response within the shell's time limit for the exchange.
    #[error("no answer in time")]
    Timeout,
    /// The server refused the offer (an HTTP error status, or a `ConnectReject` in its answer).
    #[error("refused by the server ({kind}): {detail}")]
    Refused {
        /// What kind of refusal, from the HTTP status (`docs/protocol.md`, "POST /v1/signal").
        kind: RefusalKind,
        /// The status and the server's own message, for people.
        detail: String,
    },
    /// The response is not a usable answer: not the JSON shape, not a valid signed envelope, or a valid
    /// envelope that is not a `ConnectAnswer`.
    #[error("bad answer: {detail}")]
    BadAnswer {
        /// What is wrong with it, for people.
        detail: String,
    },
    /// The answer is signed, but the server's delegation does not verify (or names another session).
    #[error("server not authorised: {0}")]
    Unauthorized(crate::identity::DelegationError),
    /// The server is this node, or this node already has (or is setting up) a link to it.
    #[error("already linked to this server")]
    AlreadyLinked,
    /// The link to the server could not be set up (ICE, DTLS, the answer's description).
    #[error("link setup failed")]
    LinkFailed,
    /// The link to the server opened but closed before the join through it completed.
    #[error("bootstrap link closed before the join completed")]
    LinkClosed,
}

/// What kind of refusal a bootstrap server gave, from its HTTP status (`docs/protocol.md`, "POST
/// /v1/signal — the HTTP shape").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RefusalKind {
    /// 400: the server cannot use the offer (malformed, not an offer, replayed, unusable description).
    #[error("bad offer")]
    BadOffer,
    /// 403: the server does not accept this node's delegation.
    #[error("unauthorised")]
    Unauthorized,
    /// 503: the server is busy (link budget full) or stopping; another time may work.
    #[error("busy")]
    Busy,
    /// 504: the server did not produce an answer in time.
    #[error("server timeout")]
    Timeout,
    /// Any other error status (404: not a Chordial server, 413, other 4xx and 5xx).
    #[error("other")]
    Other,
}

impl RefusalKind {
    /// The kind of refusal an HTTP error status means.
    pub fn from_http_status(status: u16) -> RefusalKind {
        match status {
            400 => RefusalKind::BadOffer,
            403 => RefusalKind::Unauthorized,
            503 => RefusalKind::Busy,
            504 => RefusalKind::Timeout,
            _ => RefusalKind::Other,
        }
    }
}

impl From<&crate::node::SignalError> for RefusalKind {
    /// The refusal a server's own [`crate::node::Node::handle_bootstrap_offer`] error stands for.
    fn from(e: &crate::node::SignalError) -> RefusalKind {
        use crate::node::SignalError;
        match e {
            SignalError::Malformed(_) | SignalError::NotAnOffer | SignalError::Replay => {
                RefusalKind::BadOffer
            }
            SignalError::Unauthorized(_) => RefusalKind::Unauthorized,
            SignalError::Busy => RefusalKind::Busy,
        }
    }
}

/// Counters the node keeps (for status pages, metrics and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// `OpenLink` outputs ever emitted (browsers cap peer-connection creations per page).
    pub link_creations: u64,
    /// Direct links this node offered for a sustained flow (each also counts in `link_creations`).
    pub direct_links: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Routed messages forwarded for others.
    pub forwarded: u64,
    /// Routed messages re-sent over the next-best link after the chosen one did not acknowledge.
    pub rerouted: u64,
    /// Frames dropped because they did not decode, verify or fit (by any reason).
    pub dropped_invalid: u64,
    /// Frames dropped as duplicates or replays.
    pub dropped_replay: u64,
    /// Messages refused because a claimed identity did not match the signer, or a delegation failed.
    pub refused_identity: u64,
    /// Incoming link offers refused by the link policy (cap reached).
    pub refused_links: u64,
    /// Records refused (bad signature, delegation, stale, expired).
    pub refused_records: u64,
    /// Messages that could not be opened (not for us, bad signature or delegation).
    pub refused_messages: u64,
    /// Messages received (after de-duplication).
    pub messages_received: u64,
    /// Messages opened again after they were delivered (a lost receipt's retry, or a replay): acknowledged,
    /// not delivered again (`node::accepted`).
    pub repeated_messages: u64,
    /// Messages opened but refused by age or by the accepted window: too old to tell whether they were
    /// delivered before, or dated ahead of the clock (`node::accepted`).
    pub stale_messages: u64,
    /// Records held.
    pub records: u64,
    /// Routed messages that could not make progress (reported back to their origin).
    pub undeliverable: u64,
    /// Replies nobody asked for: a reply (`StoreAck`, `Records`, `FoundSuccessor`, `Receipt`) to a request
    /// of ours that is still open, signed by a node that was not asked and cannot own what was asked for.
    /// Ignored (docs/protocol.md, "Who may answer"). A late reply to a request already answered is not
    /// counted: retries make those in honest runs.
    pub unsolicited_replies: u64,
    /// Links closed because their peer misbehaved past the threshold (`node::conduct`).
    pub links_dropped_for_conduct: u64,
    /// Link offers sent through the ring (`SealedOffer`s with contents).
    pub ring_offers: u64,
    /// Link offers through the ring that first had to ask the peer for its session key (it was not in the
    /// key book): each costs one round trip more (`node::keys`).
    pub key_requests: u64,
    /// Sends that went by the route cache: no presence read, the wallet's sessions as an earlier send to
    /// it found them (`node::app`, [`Config::route_cache_ttl`](super::Config::route_cache_ttl)).
    pub route_cache_hits: u64,
    /// Hellos sent: messages that started an end-to-end session with their recipient session
    /// (`e2e::session`).
    pub session_hellos: u64,
    /// Messages sent in an established end-to-end session (one AEAD operation each).
    pub session_messages: u64,
    /// Receipts sent in sessions: each acknowledges one or more messages that came in its session.
    pub session_receipts: u64,
    /// Sessions a peer no longer had (it restarted, or dropped it) when we sent in them: the message went
    /// again in a hello.
    pub sessions_lost: u64,
}

/// One link as the status shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The link.
    pub link: LinkId,
    /// The peer's node id once known.
    pub peer: Option<Id>,
    /// Whether the channel is open.
    pub open: bool,
    /// Roles this node gives the link: "successor", "predecessor", "finger", "bootstrap",
    /// "pairing" (a pairing link through which this node is still joining), "direct" (a shortcut for a
    /// sustained flow, `docs/protocol.md` "Direct links").
    pub roles: Vec<String>,
    /// Smoothed round-trip time of pings.
    pub rtt: Option<Duration>,
    /// Bytes received on the link.
    pub bytes_in: u64,
    /// Bytes sent on the link.
    pub bytes_out: u64,
}

/// A snapshot of the node for status pages and tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node's id.
    pub node_id: Id,
    /// Successor list, nearest first.
    pub successors: Vec<Id>,
    /// Predecessor, if known.
    pub predecessor: Option<Id>,
    /// Distinct fingers with the lowest finger index each fills.
    pub fingers: Vec<(u8, Id)>,
    /// Links.
    pub links: Vec<LinkStatus>,
    /// Counters.
    pub counters: Counters,
}
