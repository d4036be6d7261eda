//! Messages between nodes: link-local messages (between the two ends of one authenticated link) and
//! routed bodies (inside signed envelopes, possibly relayed).
//!
//! A frame on a link starts with a kind byte:
//!
//! | kind | meaning |
//! |------|---------|
//! | 0x01 | a routed frame: the link sequence number, then the envelope (see [`crate::wire::envelope`]) |
//! | 0x02 | a routed frame, and the sender believes the receiver owns its destination key |
//! | 0x05, 0x06 | 0x01, 0x02 with an acknowledgement range between the sequence number and the envelope |
//! | 0x10 | a link message ([`LinkMsg`], postcard) follows |
//!
//! Routed frames are numbered per link and direction (1, 2, …), and acknowledged by ranges of those
//! numbers ([`AckRange`]): in a link message of their own ([`LinkMsg::Ack`]) or riding on a routed frame
//! going the other way ([`ROUTED_ACK_FLAG`]).
//!
//! Link messages are not signed: the link itself is authenticated (its offer and answer travel in signed
//! envelopes and carry the DTLS fingerprints, so only the signer can be at the other end).
//!
//! The module is public only with the `forge` feature, for the simulator's adversaries (which build and
//! read frames the way an attacker would); without it, its items are the crate's own.
#![cfg_attr(not(feature = "forge"), allow(unreachable_pub))]
// Each variant's doc names its fields, and docs/protocol.md has them field by field.
#![cfg_attr(feature = "forge", allow(missing_docs))]

use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::identity::delegation::Delegation;
use crate::node::api::LinkPurpose;
use crate::node::records::{MailAck, Record};

/// Kind byte: routed envelope.
pub const KIND_ROUTED: u8 = 0x01;
/// Kind byte: routed envelope, receiver is believed to own the destination key.
pub const KIND_ROUTED_OWNER: u8 = 0x02;
/// Kind byte: link message.
pub const KIND_LINK: u8 = 0x10;
/// Added to a routed kind byte: an acknowledgement range rides on the frame.
pub const ROUTED_ACK_FLAG: u8 = 0x04;

/// Longest successor list accepted from a peer (longer lists are refused, not truncated).
pub const MAX_LIST: usize = 32;
/// Most records or ids in one replication message.
pub const MAX_BATCH: usize = 512;
/// Longest session description accepted.
pub const MAX_SDP: usize = 16 * 1024;

/// A message between the two ends of one link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkMsg {
    /// Liveness probe; `keep` says whether the sender needs this link (so the receiver keeps it open);
    /// `range_from` is the sender's predecessor: the sender owns the keys in `(range_from, sender]`.
    Ping { nonce: u64, keep: bool, range_from: Option<Id> },
    /// Answer to a ping, with the answerer's own `keep` and `range_from`.
    Pong { nonce: u64, keep: bool, range_from: Option<Id> },
    /// Stabilize: "tell me your predecessor and successor list".
    GetNeighbors,
    /// The answer to `GetNeighbors`.
    Neighbors { predecessor: Option<Id>, successors: Vec<Id> },
    /// "I might be your predecessor" (the sender is the link's peer; no id is claimed).
    Notify,
    /// The sender leaves the ring gracefully; here are its neighbours to splice in.
    Leave { predecessor: Option<Id>, successors: Vec<Id> },
    /// Hop-by-hop acknowledgement: the sender received the routed frames numbered `from..=upto` on this
    /// link (when nothing goes the other way for a routed frame to carry it).
    Ack { from: u64, upto: u64 },
    /// Records the sender owns (or hands over) for the receiver to keep as a replica or new owner.
    Replicate { records: Vec<Record> },
    /// The recipient session acknowledged mailbox entries (its signed acknowledgement, which the receiver
    /// verifies): drop them.
    DropMail { ack: Box<MailAck> },
    /// Records the sender holds under `key` (one of each record's [`Record::keys`]; a presence record or
    /// mailbox entry lives at several positions), for the receiver to keep there as a replica or new owner.
    /// What nodes send since records live at several positions; `Replicate` (each record at its first key)
    /// is still accepted.
    ReplicateAt { key: Id, records: Vec<Record> },
}

/// Why an offer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The answerer's link budget is full.
    Busy,
    /// The answerer is opening a link to the offerer itself and wins the tie.
    Duplicate,
    /// The offer's delegation did not verify.
    Unauthorized,
    /// An offer through the ring must be sealed to the answerer's session key, and this one was not (an
    /// empty [`RingMsg::SealedOffer`] asks for exactly this): the key is this refusal's signer, so the
    /// offerer can seal its offer and send it again.
    SealToMe,
}

/// Why a routed message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Undeliverable {
    /// No live link leads closer.
    NoRoute,
    /// The hop limit ran out.
    HopLimit,
    /// The addressed node id is not in the ring.
    NodeNotFound,
}

/// The body of a routed (signed) envelope: a ring message or an app message. Each layer matches its own
/// enum exhaustively, so a new body is a compile error wherever it is not handled.
///
/// On the wire the two are one flat enum, ring bodies first ([`WireRouted`]): the variant index postcard
/// writes is the body's place in that list (docs/protocol.md, "Routed bodies").
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "WireRouted")]
pub enum Routed {
    /// Finding owners and setting up links.
    Ring(RingMsg),
    /// Records, sealed messages and mailboxes.
    App(AppMsg),
}

/// The ring's routed bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingMsg {
    /// Find the owner of the envelope's destination key; the owner answers with `FoundSuccessor`.
    FindSuccessor,
    /// "I own the key you asked for" — the owner is the envelope's signer.
    FoundSuccessor { hops: u8 },
    /// Open a link to me. `link` is the offerer's link id (echoed back). In the clear: only for the two
    /// point-to-point setups (an HTTP bootstrap, a pairing code); through the ring it is `SealedOffer`.
    ConnectOffer { link: u64, purpose: LinkPurpose, sdp: String, delegation: Delegation },
    /// The answer to a `ConnectOffer` (over HTTP or by pairing; through the ring it is `SealedAnswer`).
    ConnectAnswer { link: u64, sdp: String, delegation: Delegation },
    /// The offer was refused; `alternatives` are nodes the offerer may try instead.
    ConnectReject { link: u64, reason: RejectReason, alternatives: Vec<Id> },
    /// A message from the receiver could not be delivered.
    Undeliverable { reason: Undeliverable },
    /// Open a link to me, through the ring: an [`OfferContents`] (postcard) sealed to the destination
    /// node's session key (`crate::e2e::seal_to`), so relays see neither the offerer's delegation (its
    /// wallet) nor its session description. `link` is the offerer's link id (echoed back). Empty `sealed`:
    /// the offerer does not know the destination's key yet, and asks for it (`ConnectReject { SealToMe }`).
    SealedOffer { link: u64, sealed: Vec<u8> },
    /// The answer to a `SealedOffer`: an [`AnswerContents`] (postcard) sealed to the offer's signer.
    SealedAnswer { link: u64, sealed: Vec<u8> },
}

/// What a [`RingMsg::SealedOffer`] carries, sealed: the fields of a `ConnectOffer` but its link id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferContents {
    pub purpose: LinkPurpose,
    pub sdp: String,
    pub delegation: Delegation,
}

/// What a [`RingMsg::SealedAnswer`] carries, sealed: the fields of a `ConnectAnswer` but its link id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerContents {
    pub sdp: String,
    pub delegation: Delegation,
}

/// The app layer's routed bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppMsg {
    /// Store a record at the owner of its key (who replicates it).
    Store { record: Box<Record> },
    /// The answer to `Store`: `None` if stored, else why not.
    StoreAck { error: Option<StoreFail> },
    /// Read the records under `key`, skipping the first `skip` (the first page goes to `Key(key)`, later
    /// pages to the node that answered it).
    Get { key: Id, skip: u32 },
    /// The answer to `Get`; `more` if a further page exists.
    Records { records: Vec<Record>, more: bool },
    /// An end-to-end encrypted message for the destination node's session.
    Deliver { id: [u8; 16], sealed: Vec<u8> },
    /// The recipient opened `Deliver { id }` (the signer is the recipient session).
    Receipt { id: [u8; 16] },
    /// Mailbox entries for the destination session, now that it is back.
    MailboxDeliver { entries: Vec<([u8; 16], Vec<u8>)> },
    /// The recipient opened these mailbox entries: its signed acknowledgement ([`MailAck`], which deletes
    /// them), sealed to the holder that delivered them (`crate::e2e::seal_to`): relays do not learn the
    /// recipient's wallet or delegation.
    MailboxAck { sealed: Vec<u8> },
    /// A mailbox entry and the position it is for ([`SealedStore`], postcard) sealed to the node the
    /// envelope is addressed to, which opens it and stores it like a `Store` to that key: relays see
    /// neither wallet, no session, no delegation and no key (docs/records.md, "Who learns what").
    StoreSealed { sealed: Vec<u8> },
    /// The first message of an end-to-end session (`crate::e2e::session`): a Noise hello to the destination
    /// node's session, whose data is the app message (`crate::e2e::InnerMessage`, postcard).
    Hello { id: [u8; 16], hello: Vec<u8> },
    /// The answer to a `Hello` (signed by its recipient session): the Noise welcome that completes the
    /// sender's side; its data says whether the message was delivered ([`WelcomeData`]).
    Welcome { id: [u8; 16], welcome: Vec<u8> },
    /// The answer to a session frame (`crate::wire::envelope::SESSION_VERSION`) addressed to a session its
    /// recipient does not have under `index` (it restarted, or dropped it): the sender, whose session with
    /// the signer that index names, handshakes again.
    NoSession { index: u64 },
}

/// The plaintext of a session message (in a session frame): an app message, or a receipt for messages that
/// came in the same session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionBody {
    /// An app message (`crate::e2e::InnerMessage`, postcard).
    Message(Vec<u8>),
    /// The counters of the other side's messages in this session that reached the app here (now or
    /// before), as inclusive ranges: each says delivered for its messages.
    Receipt(Vec<(u64, u64)>),
}

/// The data of a welcome: whether the hello's message was delivered (or had been before), which makes the
/// welcome its receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelcomeData {
    pub delivered: bool,
}

/// The plaintext of a `StoreSealed`: a record and the one of its keys (a wallet's position) the holder is to
/// store it under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedStore {
    pub key: Id,
    pub record: Record,
}

/// A [`Routed`] as it is decoded: every body in one flat enum, in wire order (the [`RingMsg`] variants,
/// then the [`AppMsg`] ones). Never reorder; a new body goes at the end, here and in [`WireRoutedRef`].
#[derive(Deserialize)]
#[serde(rename = "Routed")]
enum WireRouted {
    FindSuccessor,
    FoundSuccessor { hops: u8 },
    ConnectOffer { link: u64, purpose: LinkPurpose, sdp: String, delegation: Delegation },
    ConnectAnswer { link: u64, sdp: String, delegation: Delegation },
    ConnectReject { link: u64, reason: RejectReason, alternatives: Vec<Id> },
    Undeliverable { reason: Undeliverable },
    Store { record: Box<Record> },
    StoreAck { error: Option<StoreFail> },
    Get { key: Id, skip: u32 },
    Records { records: Vec<Record>, more: bool },
    Deliver { id: [u8; 16], sealed: Vec<u8> },
    Receipt { id: [u8; 16] },
    MailboxDeliver { entries: Vec<([u8; 16], Vec<u8>)> },
    MailboxAck { sealed: Vec<u8> },
    StoreSealed { sealed: Vec<u8> },
    SealedOffer { link: u64, sealed: Vec<u8> },
    SealedAnswer { link: u64, sealed: Vec<u8> },
    Hello { id: [u8; 16], hello: Vec<u8> },
    Welcome { id: [u8; 16], welcome: Vec<u8> },
    NoSession { index: u64 },
}

/// A [`Routed`] as it is encoded: [`WireRouted`] borrowing the body's fields (serde writes a `&str` as a
/// `String`, a slice as a `Vec`, a `&Record` as a `Box<Record>`), so encoding copies nothing.
#[derive(Serialize)]
#[serde(rename = "Routed")]
enum WireRoutedRef<'a> {
    FindSuccessor,
    FoundSuccessor { hops: u8 },
    ConnectOffer { link: u64, purpose: LinkPurpose, sdp: &'a str, delegation: &'a Delegation },
    ConnectAnswer { link: u64, sdp: &'a str, delegation: &'a Delegation },
    ConnectReject { link: u64, reason: RejectReason, alternatives: &'a [Id] },
    Undeliverable { reason: Undeliverable },
    Store { record: &'a Record },
    StoreAck { error: Option<StoreFail> },
    Get { key: Id, skip: u32 },
    Records { records: &'a [Record], more: bool },
    Deliver { id: [u8; 16], sealed: &'a [u8] },
    Receipt { id: [u8; 16] },
    MailboxDeliver { entries: &'a [([u8; 16], Vec<u8>)] },
    MailboxAck { sealed: &'a [u8] },
    StoreSealed { sealed: &'a [u8] },
    SealedOffer { link: u64, sealed: &'a [u8] },
    SealedAnswer { link: u64, sealed: &'a [u8] },
    Hello { id: [u8; 16], hello: &'a [u8] },
    Welcome { id: [u8; 16], welcome: &'a [u8] },
    NoSession { index: u64 },
}

impl From<WireRouted> for Routed {
    fn from(wire: WireRouted) -> Self {
        match wire {
            WireRouted::FindSuccessor => Routed::Ring(RingMsg::FindSuccessor),
            WireRouted::FoundSuccessor { hops } => Routed::Ring(RingMsg::FoundSuccessor { hops }),
            WireRouted::ConnectOffer { link, purpose, sdp, delegation } => {
                Routed::Ring(RingMsg::ConnectOffer { link, purpose, sdp, delegation })
            }
            WireRouted::ConnectAnswer { link, sdp, delegation } => {
                Routed::Ring(RingMsg::ConnectAnswer { link, sdp, delegation })
            }
            WireRouted::ConnectReject { link, reason, alternatives } => {
                Routed::Ring(RingMsg::ConnectReject { link, reason, alternatives })
            }
            WireRouted::Undeliverable { reason } => Routed::Ring(RingMsg::Undeliverable { reason }),
            WireRouted::Store { record } => Routed::App(AppMsg::Store { record }),
            WireRouted::StoreAck { error } => Routed::App(AppMsg::StoreAck { error }),
            WireRouted::Get { key, skip } => Routed::App(AppMsg::Get { key, skip }),
            WireRouted::Records { records, more } => Routed::App(AppMsg::Records { records, more }),
            WireRouted::Deliver { id, sealed } => Routed::App(AppMsg::Deliver { id, sealed }),
            WireRouted::Receipt { id } => Routed::App(AppMsg::Receipt { id }),
            WireRouted::MailboxDeliver { entries } => Routed::App(AppMsg::MailboxDeliver { entries }),
            WireRouted::MailboxAck { sealed } => Routed::App(AppMsg::MailboxAck { sealed }),
            WireRouted::StoreSealed { sealed } => Routed::App(AppMsg::StoreSealed { sealed }),
            WireRouted::SealedOffer { link, sealed } => Routed::Ring(RingMsg::SealedOffer { link, sealed }),
            WireRouted::SealedAnswer { link, sealed } => Routed::Ring(RingMsg::SealedAnswer { link, sealed }),
            WireRouted::Hello { id, hello } => Routed::App(AppMsg::Hello { id, hello }),
            WireRouted::Welcome { id, welcome } => Routed::App(AppMsg::Welcome { id, welcome }),
            WireRouted::NoSession { index } => Routed::App(AppMsg::NoSession { index }),
        }
    }
}

impl<'a> From<&'a Routed> for WireRoutedRef<'a> {
    fn from(body: &'a Routed) -> Self {
        match body {
            Routed::Ring(ring) => match ring {
                RingMsg::FindSuccessor => WireRoutedRef::FindSuccessor,
                RingMsg::FoundSuccessor { hops } => WireRoutedRef::FoundSuccessor { hops: *hops },
                RingMsg::ConnectOffer { link, purpose, sdp, delegation } => {
                    WireRoutedRef::ConnectOffer { link: *link, purpose: *purpose, sdp, delegation }
                }
                RingMsg::ConnectAnswer { link, sdp, delegation } => {
                    WireRoutedRef::ConnectAnswer { link: *link, sdp, delegation }
                }
                RingMsg::ConnectReject { link, reason, alternatives } => {
                    WireRoutedRef::ConnectReject { link: *link, reason: *reason, alternatives }
                }
                RingMsg::Undeliverable { reason } => WireRoutedRef::Undeliverable { reason: *reason },
                RingMsg::SealedOffer { link, sealed } => WireRoutedRef::SealedOffer { link: *link, sealed },
                RingMsg::SealedAnswer { link, sealed } => WireRoutedRef::SealedAnswer { link: *link, sealed },
            },
            Routed::App(app) => match app {
                AppMsg::Store { record } => WireRoutedRef::Store { record },
                AppMsg::StoreAck { error } => WireRoutedRef::StoreAck { error: *error },
                AppMsg::Get { key, skip } => WireRoutedRef::Get { key: *key, skip: *skip },
                AppMsg::Records { records, more } => WireRoutedRef::Records { records, more: *more },
                AppMsg::Deliver { id, sealed } => WireRoutedRef::Deliver { id: *id, sealed },
                AppMsg::Receipt { id } => WireRoutedRef::Receipt { id: *id },
                AppMsg::MailboxDeliver { entries } => WireRoutedRef::MailboxDeliver { entries },
                AppMsg::MailboxAck { sealed } => WireRoutedRef::MailboxAck { sealed },
                AppMsg::StoreSealed { sealed } => WireRoutedRef::StoreSealed { sealed },
                AppMsg::Hello { id, hello } => WireRoutedRef::Hello { id: *id, hello },
                AppMsg::Welcome { id, welcome } => WireRoutedRef::Welcome { id: *id, welcome },
                AppMsg::NoSession { index } => WireRoutedRef::NoSession { index: *index },
            },
        }
    }
}

impl Serialize for Routed {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireRoutedRef::from(self).serialize(serializer)
    }
}

/// Why a store was refused (carried back to the writer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreFail {
    /// The record did not verify.
    Invalid,
    /// A newer record holds its place.
    Stale,
    /// The recipient's mailbox is full.
    MailboxFull,
    /// The holder is full.
    Full,
    /// The mailbox entry was already delivered (the sender of a copy may drop it).
    Delivered,
    /// The writer's wallet has used up its quota in this mailbox (other senders can still write).
    SenderQuota,
}

/// Encodes a link message as a complete frame.
pub fn link_frame(msg: &LinkMsg) -> Vec<u8> {
    let mut out = vec![KIND_LINK];
    // Encoding a LinkMsg into a Vec cannot fail: every field is plainly serializable.
    postcard::to_extend(msg, out.clone()).map(|v| out = v).ok();
    out
}

/// Decodes the link message after the kind byte; refuses trailing bytes and over-long lists.
pub fn decode_link(bytes: &[u8]) -> Option<LinkMsg> {
    let (msg, rest): (LinkMsg, _) = postcard::take_from_bytes(bytes).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let within_bounds = match &msg {
        LinkMsg::Neighbors { successors, .. } | LinkMsg::Leave { successors, .. } => {
            successors.len() <= MAX_LIST
        }
        LinkMsg::Replicate { records } | LinkMsg::ReplicateAt { records, .. } => records.len() <= MAX_BATCH,
        LinkMsg::DropMail { ack } => ack.ids.len() <= MAX_BATCH,
        LinkMsg::Ack { from, upto } => from <= upto,
        // Fixed size: nothing to bound.
        LinkMsg::Ping { .. } | LinkMsg::Pong { .. } | LinkMsg::GetNeighbors | LinkMsg::Notify => true,
    };
    within_bounds.then_some(msg)
}

/// The routed frames a link peer received, by their numbers on the link: `from..=upto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRange {
    pub from: u64,
    pub upto: u64,
}

/// A routed frame as it arrived: its number on the link, the acknowledgement riding on it, the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutedFrame<'a> {
    pub owner_hint: bool,
    pub seq: u64,
    pub ack: Option<AckRange>,
    pub envelope: &'a [u8],
}

/// Encodes a routed frame. Returns the frame and where its envelope starts (the hops byte is set there).
pub fn encode_routed(envelope: &[u8], owner_hint: bool, seq: u64, ack: Option<AckRange>) -> (Vec<u8>, usize) {
    let kind = if owner_hint { KIND_ROUTED_OWNER } else { KIND_ROUTED };
    let mut out = Vec::with_capacity(envelope.len() + 31);
    out.push(if ack.is_some() { kind | ROUTED_ACK_FLAG } else { kind });
    // Varints into a Vec cannot fail.
    out = postcard::to_extend(&seq, out).unwrap_or_default();
    if let Some(ack) = ack {
        out = postcard::to_extend(&ack, out).unwrap_or_default();
    }
    let start = out.len();
    out.extend_from_slice(envelope);
    (out, start)
}

/// Prefixes an envelope with its kind byte and sequence number 0, with no acknowledgement: a frame as a
/// test or an attacker writes it (a node numbers its frames from 1, [`encode_routed`]).
#[cfg(feature = "forge")]
pub fn routed_frame(envelope: &[u8], owner_hint: bool) -> Vec<u8> {
    encode_routed(envelope, owner_hint, 0, None).0
}

/// Splits a routed frame after its kind byte (`None` if the kind is not a routed one, or the numbers do
/// not decode). The envelope is not looked at.
pub fn decode_routed(kind: u8, rest: &[u8]) -> Option<RoutedFrame<'_>> {
    let with_ack = kind & ROUTED_ACK_FLAG != 0;
    let owner_hint = match kind & !ROUTED_ACK_FLAG {
        KIND_ROUTED => false,
        KIND_ROUTED_OWNER => true,
        _ => return None,
    };
    let (seq, rest): (u64, _) = postcard::take_from_bytes(rest).ok()?;
    let (ack, envelope) = if with_ack {
        let (ack, rest): (AckRange, _) = postcard::take_from_bytes(rest).ok()?;
        if ack.from > ack.upto {
            return None;
        }
        (Some(ack), rest)
    } else {
        (None, rest)
    };
    Some(RoutedFrame { owner_hint, seq, ack, envelope })
}

/// The name of the message a link frame carries ("Ping", "Deliver", …), or `None` if it is not a
/// well-formed frame. Routed envelopes are decoded but neither verified nor opened: this names what a relay
/// can see, nothing more. For shells' logs and metrics, and for tests that watch the wire — never for
/// decisions.
pub fn describe_frame(bytes: &[u8]) -> Option<&'static str> {
    let (&kind, rest) = bytes.split_first()?;
    match kind {
        KIND_LINK => Some(match decode_link(rest)? {
            LinkMsg::Ping { .. } => "Ping",
            LinkMsg::Pong { .. } => "Pong",
            LinkMsg::GetNeighbors => "GetNeighbors",
            LinkMsg::Neighbors { .. } => "Neighbors",
            LinkMsg::Notify => "Notify",
            LinkMsg::Leave { .. } => "Leave",
            LinkMsg::Ack { .. } => "Ack",
            LinkMsg::Replicate { .. } | LinkMsg::ReplicateAt { .. } => "Replicate",
            LinkMsg::DropMail { .. } => "DropMail",
        }),
        _ => {
            let frame = decode_routed(kind, rest)?;
            if crate::wire::envelope::peek_session(frame.envelope).is_some() {
                // A message or a receipt in a session: relays cannot tell which.
                return Some("SessionData");
            }
            let (_, body) = crate::wire::envelope::peek::<Routed>(frame.envelope)?;
            Some(match body {
                Routed::Ring(ring) => match ring {
                    RingMsg::FindSuccessor => "FindSuccessor",
                    RingMsg::FoundSuccessor { .. } => "FoundSuccessor",
                    RingMsg::ConnectOffer { .. } => "ConnectOffer",
                    RingMsg::ConnectAnswer { .. } => "ConnectAnswer",
                    RingMsg::ConnectReject { .. } => "ConnectReject",
                    RingMsg::Undeliverable { .. } => "Undeliverable",
                    RingMsg::SealedOffer { .. } => "SealedOffer",
                    RingMsg::SealedAnswer { .. } => "SealedAnswer",
                },
                Routed::App(app) => match app {
                    AppMsg::Store { .. } => "Store",
                    AppMsg::StoreAck { .. } => "StoreAck",
                    AppMsg::Get { .. } => "Get",
                    AppMsg::Records { .. } => "Records",
                    AppMsg::Deliver { .. } => "Deliver",
                    AppMsg::Receipt { .. } => "Receipt",
                    AppMsg::MailboxDeliver { .. } => "MailboxDeliver",
                    AppMsg::MailboxAck { .. } => "MailboxAck",
                    AppMsg::StoreSealed { .. } => "StoreSealed",
                    AppMsg::Hello { .. } => "Hello",
                    AppMsg::Welcome { .. } => "Welcome",
                    AppMsg::NoSession { .. } => "NoSession",
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routed_frames_carry_their_number_and_an_acknowledgement_both_ways() {
        let envelope = [9u8; 40];
        for (owner_hint, seq, ack) in [
            (false, 1, None),
            (true, 300, Some(AckRange { from: 2, upto: 2 })),
            (false, u64::MAX, Some(AckRange { from: 0, upto: u64::MAX })),
        ] {
            let (frame, start) = encode_routed(&envelope, owner_hint, seq, ack);
            assert_eq!(&frame[start..], &envelope);
            let decoded = decode_routed(frame[0], &frame[1..]).expect("decodes");
            assert_eq!(decoded, RoutedFrame { owner_hint, seq, ack, envelope: &envelope });
        }
        // A range that runs backwards, or a kind that is not a routed one, is refused.
        let (mut frame, _) = encode_routed(&envelope, false, 1, Some(AckRange { from: 5, upto: 4 }));
        assert_eq!(decode_routed(frame[0], &frame[1..]), None);
        frame[0] = KIND_LINK | ROUTED_ACK_FLAG;
        assert_eq!(decode_routed(frame[0], &frame[1..]), None);
        assert!(decode_link(&postcard::to_allocvec(&LinkMsg::Ack { from: 3, upto: 2 }).expect("encodes"))
            .is_none());
    }

    #[test]
    fn describe_frame_names_link_messages_and_refuses_garbage() {
        let frame = link_frame(&LinkMsg::Ping { nonce: 7, keep: true, range_from: None });
        assert_eq!(describe_frame(&frame), Some("Ping"));
        assert_eq!(describe_frame(&[]), None);
        assert_eq!(describe_frame(&[KIND_LINK, 0xff, 0xff]), None);
        assert_eq!(describe_frame(&[KIND_ROUTED, 1, 2, 3]), None);
        assert_eq!(describe_frame(&[0x7f]), None);
    }

    /// `Routed` as it was before the ring/app split: one flat enum with derived serde. The split must
    /// encode every body to the same bytes and decode those bytes back to the same body.
    #[derive(Serialize)]
    enum FlatRouted {
        FindSuccessor,
        FoundSuccessor { hops: u8 },
        ConnectOffer { link: u64, purpose: LinkPurpose, sdp: String, delegation: Delegation },
        ConnectAnswer { link: u64, sdp: String, delegation: Delegation },
        ConnectReject { link: u64, reason: RejectReason, alternatives: Vec<Id> },
        Undeliverable { reason: Undeliverable },
        Store { record: Box<Record> },
        StoreAck { error: Option<StoreFail> },
        Get { key: Id, skip: u32 },
        Records { records: Vec<Record>, more: bool },
        Deliver { id: [u8; 16], sealed: Vec<u8> },
        Receipt { id: [u8; 16] },
        MailboxDeliver { entries: Vec<([u8; 16], Vec<u8>)> },
        MailboxAck { sealed: Vec<u8> },
        StoreSealed { sealed: Vec<u8> },
        SealedOffer { link: u64, sealed: Vec<u8> },
        SealedAnswer { link: u64, sealed: Vec<u8> },
        Hello { id: [u8; 16], hello: Vec<u8> },
        Welcome { id: [u8; 16], welcome: Vec<u8> },
        NoSession { index: u64 },
    }

    #[test]
    fn routed_bodies_keep_the_flat_wire_encoding() {
        use crate::identity::{Address, SessionKey, WalletSignature};
        use crate::node::records::MailboxEntry;
        use crate::time::Timestamp;

        let delegation = Delegation { message: "a delegation".into(), signature: WalletSignature([7; 65]) };
        let key = SessionKey::from_bytes(&[3; 32]).expect("a valid key");
        let session = *key.public();
        let record = Record::Mailbox(MailboxEntry::sign(
            &key,
            Address([4; 20]),
            &delegation,
            Address([6; 20]),
            session,
            vec![1, 2, 3],
            Timestamp(1_000),
            Timestamp(2_000),
        ));
        let (key, other) = (Id([9; 20]), Id([10; 20]));
        let sdp = "v=0 an offer".to_string();
        let cases: Vec<(Routed, FlatRouted)> = vec![
            (Routed::Ring(RingMsg::FindSuccessor), FlatRouted::FindSuccessor),
            (Routed::Ring(RingMsg::FoundSuccessor { hops: 4 }), FlatRouted::FoundSuccessor { hops: 4 }),
            (
                Routed::Ring(RingMsg::ConnectOffer {
                    link: 300,
                    purpose: LinkPurpose::Finger,
                    sdp: sdp.clone(),
                    delegation: delegation.clone(),
                }),
                FlatRouted::ConnectOffer {
                    link: 300,
                    purpose: LinkPurpose::Finger,
                    sdp: sdp.clone(),
                    delegation: delegation.clone(),
                },
            ),
            (
                Routed::Ring(RingMsg::ConnectAnswer {
                    link: 2,
                    sdp: sdp.clone(),
                    delegation: delegation.clone(),
                }),
                FlatRouted::ConnectAnswer { link: 2, sdp, delegation },
            ),
            (
                Routed::Ring(RingMsg::ConnectReject {
                    link: 1,
                    reason: RejectReason::Busy,
                    alternatives: vec![key, other],
                }),
                FlatRouted::ConnectReject {
                    link: 1,
                    reason: RejectReason::Busy,
                    alternatives: vec![key, other],
                },
            ),
            (
                Routed::Ring(RingMsg::Undeliverable { reason: Undeliverable::HopLimit }),
                FlatRouted::Undeliverable { reason: Undeliverable::HopLimit },
            ),
            (
                Routed::App(AppMsg::Store { record: Box::new(record.clone()) }),
                FlatRouted::Store { record: Box::new(record.clone()) },
            ),
            (
                Routed::App(AppMsg::StoreAck { error: Some(StoreFail::Stale) }),
                FlatRouted::StoreAck { error: Some(StoreFail::Stale) },
            ),
            (Routed::App(AppMsg::Get { key, skip: 700 }), FlatRouted::Get { key, skip: 700 }),
            (
                Routed::App(AppMsg::Records { records: vec![record.clone(), record.clone()], more: true }),
                FlatRouted::Records { records: vec![record.clone(), record], more: true },
            ),
            (
                Routed::App(AppMsg::Deliver { id: [8; 16], sealed: vec![0, 255, 128] }),
                FlatRouted::Deliver { id: [8; 16], sealed: vec![0, 255, 128] },
            ),
            (Routed::App(AppMsg::Receipt { id: [8; 16] }), FlatRouted::Receipt { id: [8; 16] }),
            (
                Routed::App(AppMsg::MailboxDeliver {
                    entries: vec![([1; 16], vec![4, 5]), ([2; 16], vec![])],
                }),
                FlatRouted::MailboxDeliver { entries: vec![([1; 16], vec![4, 5]), ([2; 16], vec![])] },
            ),
            (
                Routed::App(AppMsg::MailboxAck { sealed: vec![5; 40] }),
                FlatRouted::MailboxAck { sealed: vec![5; 40] },
            ),
            (
                Routed::App(AppMsg::StoreSealed { sealed: vec![6; 30] }),
                FlatRouted::StoreSealed { sealed: vec![6; 30] },
            ),
            (
                Routed::Ring(RingMsg::SealedOffer { link: 300, sealed: vec![7; 20] }),
                FlatRouted::SealedOffer { link: 300, sealed: vec![7; 20] },
            ),
            (
                Routed::Ring(RingMsg::SealedAnswer { link: 2, sealed: vec![] }),
                FlatRouted::SealedAnswer { link: 2, sealed: vec![] },
            ),
            (
                Routed::App(AppMsg::Hello { id: [1; 16], hello: vec![9; 9] }),
                FlatRouted::Hello { id: [1; 16], hello: vec![9; 9] },
            ),
            (
                Routed::App(AppMsg::Welcome { id: [2; 16], welcome: vec![8; 8] }),
                FlatRouted::Welcome { id: [2; 16], welcome: vec![8; 8] },
            ),
            (Routed::App(AppMsg::NoSession { index: 4 }), FlatRouted::NoSession { index: 4 }),
        ];
        for (index, (routed, flat)) in cases.into_iter().enumerate() {
            let bytes = postcard::to_allocvec(&routed).expect("encodes");
            assert_eq!(bytes, postcard::to_allocvec(&flat).expect("encodes"), "{routed:?}");
            assert_eq!(usize::from(bytes[0]), index, "variant index of {routed:?}");
            let decoded: Routed = postcard::from_bytes(&bytes).expect("decodes");
            assert_eq!(decoded, routed);
        }
        // Past the last body: not a body.
        assert!(postcard::from_bytes::<Routed>(&[20]).is_err());
    }
}
