//! Messages between nodes: link-local messages (between the two ends of one authenticated link) and
//! routed bodies (inside signed envelopes, possibly relayed).
//!
//! A frame on a link starts with a kind byte:
//!
//! | kind | meaning |
//! |------|---------|
//! | 0x01 | a routed envelope (see [`crate::wire::envelope`]) follows |
//! | 0x02 | a routed envelope follows, and the sender believes the receiver owns its destination key |
//! | 0x10 | a link message ([`LinkMsg`], postcard) follows |
//!
//! Link messages are not signed: the link itself is authenticated (its offer and answer travel in signed
//! envelopes and carry the DTLS fingerprints, so only the signer can be at the other end).

use serde::{Deserialize, Serialize};

use crate::id::Id;
use crate::identity::delegation::Delegation;
use crate::identity::Address;
use crate::node::api::LinkPurpose;
use crate::node::records::Record;
use crate::wire::MessageId;

/// Kind byte: routed envelope.
pub(crate) const KIND_ROUTED: u8 = 0x01;
/// Kind byte: routed envelope, receiver is believed to own the destination key.
pub(crate) const KIND_ROUTED_OWNER: u8 = 0x02;
/// Kind byte: link message.
pub(crate) const KIND_LINK: u8 = 0x10;

/// Longest successor list accepted from a peer (longer lists are refused, not truncated).
pub(crate) const MAX_LIST: usize = 32;
/// Most records or ids in one replication message.
pub(crate) const MAX_BATCH: usize = 512;
/// Longest session description accepted.
pub(crate) const MAX_SDP: usize = 16 * 1024;

/// A message between the two ends of one link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum LinkMsg {
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
    /// Hop-by-hop acknowledgement of a routed envelope.
    Ack { id: MessageId },
    /// Records the sender owns (or hands over) for the receiver to keep as a replica or new owner.
    Replicate { records: Vec<Record> },
    /// Mailbox entries delivered (or expired) under `key`: drop them.
    DropMail { key: Id, ids: Vec<[u8; 16]> },
}

/// Why an offer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RejectReason {
    /// The answerer's link budget is full.
    Busy,
    /// The answerer is opening a link to the offerer itself and wins the tie.
    Duplicate,
    /// The offer's delegation did not verify.
    Unauthorized,
}

/// Why a routed message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Undeliverable {
    /// No live link leads closer.
    NoRoute,
    /// The hop limit ran out.
    HopLimit,
    /// The addressed node id is not in the ring.
    NodeNotFound,
}

/// The body of a routed (signed) envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Routed {
    /// Find the owner of the envelope's destination key; the owner answers with `FoundSuccessor`.
    FindSuccessor,
    /// "I own the key you asked for" — the owner is the envelope's signer.
    FoundSuccessor { hops: u8 },
    /// Open a link to me. `link` is the offerer's link id (echoed back).
    ConnectOffer { link: u64, purpose: LinkPurpose, sdp: String, delegation: Delegation },
    /// The answer to a `ConnectOffer`.
    ConnectAnswer { link: u64, sdp: String, delegation: Delegation },
    /// The offer was refused; `alternatives` are nodes the offerer may try instead.
    ConnectReject { link: u64, reason: RejectReason, alternatives: Vec<Id> },
    /// A message from the receiver could not be delivered.
    Undeliverable { reason: Undeliverable },
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
    /// The recipient got these mailbox entries: delete them.
    MailboxAck { wallet: Address, ids: Vec<[u8; 16]> },
}

/// Why a store was refused (carried back to the writer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoreFail {
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
}

impl Routed {
    /// Whether the body belongs to the app layer (records, messages) rather than the ring.
    pub(crate) fn is_app(&self) -> bool {
        !matches!(
            self,
            Routed::FindSuccessor
                | Routed::FoundSuccessor { .. }
                | Routed::ConnectOffer { .. }
                | Routed::ConnectAnswer { .. }
                | Routed::ConnectReject { .. }
                | Routed::Undeliverable { .. }
        )
    }
}

/// Encodes a link message as a complete frame.
pub(crate) fn link_frame(msg: &LinkMsg) -> Vec<u8> {
    let mut out = vec![KIND_LINK];
    // Encoding a LinkMsg into a Vec cannot fail: every field is plainly serializable.
    postcard::to_extend(msg, out.clone()).map(|v| out = v).ok();
    out
}

/// Decodes the link message after the kind byte; refuses trailing bytes and over-long lists.
pub(crate) fn decode_link(bytes: &[u8]) -> Option<LinkMsg> {
    let (msg, rest): (LinkMsg, _) = postcard::take_from_bytes(bytes).ok()?;
    if !rest.is_empty() {
        return None;
    }
    match &msg {
        LinkMsg::Neighbors { successors, .. } | LinkMsg::Leave { successors, .. }
            if successors.len() > MAX_LIST =>
        {
            None
        }
        LinkMsg::Replicate { records } if records.len() > MAX_BATCH => None,
        LinkMsg::DropMail { ids, .. } if ids.len() > MAX_BATCH => None,
        _ => Some(msg),
    }
}

/// Prefixes an envelope with its kind byte.
pub(crate) fn routed_frame(envelope: &[u8], owner_hint: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(envelope.len() + 1);
    out.push(if owner_hint { KIND_ROUTED_OWNER } else { KIND_ROUTED });
    out.extend_from_slice(envelope);
    out
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
            LinkMsg::Replicate { .. } => "Replicate",
            LinkMsg::DropMail { .. } => "DropMail",
        }),
        KIND_ROUTED | KIND_ROUTED_OWNER => {
            let (_, body) = crate::wire::envelope::peek::<Routed>(rest)?;
            Some(match body {
                Routed::FindSuccessor => "FindSuccessor",
                Routed::FoundSuccessor { .. } => "FoundSuccessor",
                Routed::ConnectOffer { .. } => "ConnectOffer",
                Routed::ConnectAnswer { .. } => "ConnectAnswer",
                Routed::ConnectReject { .. } => "ConnectReject",
                Routed::Undeliverable { .. } => "Undeliverable",
                Routed::Store { .. } => "Store",
                Routed::StoreAck { .. } => "StoreAck",
                Routed::Get { .. } => "Get",
                Routed::Records { .. } => "Records",
                Routed::Deliver { .. } => "Deliver",
                Routed::Receipt { .. } => "Receipt",
                Routed::MailboxDeliver { .. } => "MailboxDeliver",
                Routed::MailboxAck { .. } => "MailboxAck",
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_frame_names_link_messages_and_refuses_garbage() {
        let frame = link_frame(&LinkMsg::Ping { nonce: 7, keep: true, range_from: None });
        assert_eq!(describe_frame(&frame), Some("Ping"));
        assert_eq!(describe_frame(&[]), None);
        assert_eq!(describe_frame(&[KIND_LINK, 0xff, 0xff]), None);
        assert_eq!(describe_frame(&[KIND_ROUTED, 1, 2, 3]), None);
        assert_eq!(describe_frame(&[0x7f]), None);
    }
}
