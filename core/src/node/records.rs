//! Records stored in the ring: signed presence and topic records, and mailbox entries — their keys,
//! signatures, checks, and a bounded store behind a trait (the server keeps them in a database).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::e2e::session::{StaticKey, StaticPublic};
use crate::id::Id;
use crate::identity::{
    Address, Delegation, DelegationCache, DelegationError, SessionKey, SessionPublicKey, Signature,
    VerifiedDelegation,
};
use crate::time::Timestamp;

/// Longest app origin accepted in a topic record (an origin is `scheme://host[:port]`).
pub const MAX_ORIGIN: usize = 256;
/// Longest topic name.
pub const MAX_TOPIC: usize = 128;
/// Presence records kept per wallet (devices); the oldest is dropped beyond this.
pub const MAX_SESSIONS_PER_WALLET: usize = 16;
/// Topic records kept per topic key; the ones expiring first are dropped beyond this.
pub const MAX_TOPIC_MEMBERS: usize = 1024;
/// Mailbox entries kept per recipient wallet.
pub const MAX_MAILBOX_ENTRIES: usize = 256;
/// Mailbox bytes kept per recipient wallet.
pub const MAX_MAILBOX_BYTES: usize = 4 << 20;
/// Mailbox entries one sender wallet may have waiting in one recipient's mailbox (an eighth of
/// [`MAX_MAILBOX_ENTRIES`]), whatever number of sessions it writes from: no single sender can fill a
/// mailbox and shut out the others.
pub const MAX_MAILBOX_ENTRIES_PER_SENDER: usize = MAX_MAILBOX_ENTRIES / 8;
/// Mailbox bytes one sender wallet may have waiting in one recipient's mailbox (an eighth of
/// [`MAX_MAILBOX_BYTES`]).
pub const MAX_MAILBOX_BYTES_PER_SENDER: usize = MAX_MAILBOX_BYTES / 8;
/// Entry ids one mailbox acknowledgement names at most.
pub const MAX_ACK_IDS: usize = 512;
/// Records of all kinds one node stores at most.
pub const MAX_RECORDS_PER_NODE: usize = 200_000;
/// How long a mailbox entry is kept by default.
pub const DEFAULT_MAILBOX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest a mailbox entry may ask to be kept: its `expires` is at most this after the storing node's `now`
/// (the sender's clock may be ahead, and a re-homed entry arrives later than it was written).
pub const MAX_MAILBOX_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
/// Longest a presence record may claim to be live after it was published (`expires − published`). A node
/// publishes for `presence_ttl` (10 minutes by default), clamped to this.
pub const MAX_PRESENCE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest a topic record may claim (`expires − announced`). dApps announce for at most a day
/// (docs/dapp-api.md); the node clamps any longer request to this.
pub const MAX_TOPIC_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a presence record is kept after it was published, live or not: the wallet's last known session,
/// which mail can still be sealed to while its delegation is valid.
pub const LAST_KNOWN_SESSION: Duration = Duration::from_secs(7 * 24 * 3600);
/// The record store's byte budget by default in a browser ([`crate::node::Config::store_bytes`]).
pub const BROWSER_STORE_BYTES: usize = 32 << 20;
/// The record store's byte budget by default on a server; also what a [`MemoryStore`] starts with until
/// the node gives it its own.
pub const SERVER_STORE_BYTES: usize = 512 << 20;

/// Independent ring positions a wallet's presence records and mailbox live at ([`presence_keys`]), and a
/// topic's records ([`topic_keys`]). Each
/// position is a key with its own owner and replicas; writes go to every position, reads ask every position
/// and merge what verifies, so an attacker who places itself (with chosen ids) as the owner and every replica
/// of one position hides nothing (docs/records.md, "Placement"). A protocol constant: every node must agree.
pub const PRESENCE_POSITIONS: usize = 3;

/// `sha1("presence" ‖ wallet)`: the first of a wallet's [`presence_keys`] (the only one before records
/// lived at several positions, so a record written there by an older node is still read).
pub fn presence_key(wallet: &Address) -> Id {
    Id::hash(&[b"presence", &wallet.0])
}

/// Where a wallet's presence records and mailbox live: [`presence_key`] and
/// `sha1("presence" ‖ wallet ‖ i)` for `i` in `1..PRESENCE_POSITIONS` — independent points of the ring
/// (nobody can choose a wallet address whose positions fall together, short of breaking sha1).
pub fn presence_keys(wallet: &Address) -> [Id; PRESENCE_POSITIONS] {
    std::array::from_fn(|i| match i {
        0 => presence_key(wallet),
        _ => Id::hash(&[b"presence", &wallet.0, &[i as u8]]),
    })
}

/// A mailbox entry's id: the first 16 bytes of `sha256(sealed)`. It names the ciphertext itself, so an
/// acknowledgement of an id acknowledges exactly the bytes the recipient opened (a forged delivery of other
/// bytes under a real entry's id cannot make the recipient acknowledge, and so delete, the real entry), and
/// it is the key the recipient de-duplicates messages by.
pub fn mail_id(sealed: &[u8]) -> [u8; 16] {
    let digest: [u8; 32] = Sha256::digest(sealed).into();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// `sha1("topic" ‖ origin ‖ 0 ‖ topic)`: where a topic's records live (the zero byte keeps
/// `("ab", "c")` and `("a", "bc")` apart; origins never contain it).
pub fn topic_key(origin: &str, topic: &str) -> Id {
    Id::hash(&[b"topic", origin.as_bytes(), &[0], topic.as_bytes()])
}

/// Where a topic's records live: [`topic_key`] and `sha1("topic-position" ‖ i ‖ origin ‖ 0 ‖ topic)` for `i`
/// in `1..PRESENCE_POSITIONS` — as many independent positions as a wallet has, for the same reason (an
/// attacker who owns one position's owner and replicas cannot hide a topic's members). The position byte
/// comes first, so no origin or topic name can make one topic's position fall on another's.
pub fn topic_keys(origin: &str, topic: &str) -> [Id; PRESENCE_POSITIONS] {
    std::array::from_fn(|i| match i {
        0 => topic_key(origin, topic),
        _ => Id::hash(&[b"topic-position", &[i as u8], origin.as_bytes(), &[0], topic.as_bytes()]),
    })
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record's signature does not verify with its session key.
    #[error("bad record signature")]
    BadSignature,
    /// The delegation does not verify, or does not delegate to the record's session.
    #[error("delegation: {0}")]
    Delegation(#[from] DelegationError),
    /// The record names another wallet than its delegation.
    #[error("record wallet does not match its delegation")]
    WrongWallet,
    /// The record has expired, or outlives its delegation.
    #[error("record expired")]
    Expired,
    /// The record claims a time too far in the future.
    #[error("record from the future")]
    FromTheFuture,
    /// A field is out of bounds (origin, topic, sizes).
    #[error("record field out of bounds")]
    Bounds,
    /// A newer record from the same session is already stored.
    #[error("stale record")]
    Stale,
    /// The record claims a lifetime beyond its kind's maximum ([`MAX_PRESENCE_TTL`], [`MAX_TOPIC_TTL`]).
    #[error("record lifetime too long")]
    TooLong,
    /// A mailbox entry whose id is not the digest of its ciphertext ([`mail_id`]).
    #[error("mailbox entry id does not name its ciphertext")]
    WrongId,
}

/// A wallet's session announcing itself: "wallet W is reachable at session S (node `sha1(S)`)".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceRecord {
    /// The wallet.
    pub wallet: Address,
    /// The session key (its node id is `sha1` of it).
    pub session: SessionPublicKey,
    /// The session's static key for end-to-end sessions ([`crate::e2e::session`]): a sender that read
    /// this record can start a session with it at once.
    pub static_key: StaticPublic,
    /// The wallet's grant to that session.
    pub delegation: Delegation,
    /// When it was signed.
    pub published: Timestamp,
    /// Until when the session counts as live (refreshed before then).
    pub expires: Timestamp,
    /// The session withdrew (left); kept as a tombstone until `expires`.
    pub withdrawn: bool,
    /// The session key's signature over the fields above.
    pub signature: Signature,
}

/// A wallet's membership of an app's topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// The app origin that announced it; only that origin sees it.
    pub origin: String,
    /// The topic name.
    pub topic: String,
    /// The wallet.
    pub wallet: Address,
    /// The announcing session.
    pub session: SessionPublicKey,
    /// The wallet's grant to that session.
    pub delegation: Delegation,
    /// When it was announced.
    pub announced: Timestamp,
    /// When it lapses.
    pub expires: Timestamp,
    /// A withdrawal (tombstone) rather than an announcement.
    pub withdrawn: bool,
    /// The session key's signature over the fields above.
    pub signature: Signature,
}

/// An end-to-end encrypted message waiting for an offline wallet, signed by the session that wrote it: a
/// holder stores it only from a sender with a valid delegation, and counts it against that sender wallet's
/// quota in the mailbox ([`MAX_MAILBOX_ENTRIES_PER_SENDER`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxEntry {
    /// [`mail_id`] of `sealed` (checked by every holder).
    pub id: [u8; 16],
    /// The recipient wallet.
    pub recipient: Address,
    /// The session key the message is sealed to; only it can acknowledge (delete) the entry.
    pub to_session: SessionPublicKey,
    /// The ciphertext (see `crate::e2e`); opaque to the holder.
    pub sealed: Vec<u8>,
    /// When it was stored.
    pub stored: Timestamp,
    /// When it is dropped if still undelivered (never after the sender's delegation expires: the
    /// recipient could not open it then).
    pub expires: Timestamp,
    /// The sending wallet (its delegation's), whose quota the entry counts against.
    pub from: Address,
    /// The sending session, which signed the entry.
    pub sender: SessionPublicKey,
    /// The sending wallet's grant to that session.
    pub delegation: Delegation,
    /// The sending session's signature over the fields above (the ciphertext through `id`).
    pub signature: Signature,
}

/// The recipient session's signed acknowledgement of mailbox entries it opened. It is the only thing that
/// deletes an entry, at the owner (`MailboxAck`) and at every replica (`DropMail` carries it), and each
/// holder verifies it: signed by the session the entries are sealed to, under a valid delegation of the
/// recipient wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailAck {
    /// The recipient wallet (the mailbox is under its presence key).
    pub wallet: Address,
    /// The acknowledging session; only entries sealed to it are deleted.
    pub session: SessionPublicKey,
    /// The wallet's grant to that session.
    pub delegation: Delegation,
    /// The entries opened ([`mail_id`]s), at most [`MAX_ACK_IDS`].
    pub ids: Vec<[u8; 16]>,
    /// The session's signature over the fields above.
    pub signature: Signature,
}

#[derive(Serialize)]
struct PresenceSigned<'a> {
    tag: &'static str,
    wallet: &'a Address,
    session: &'a SessionPublicKey,
    static_key: &'a StaticPublic,
    delegation: [u8; 32],
    published: Timestamp,
    expires: Timestamp,
    withdrawn: bool,
}

#[derive(Serialize)]
struct TopicSigned<'a> {
    tag: &'static str,
    origin: &'a str,
    topic: &'a str,
    wallet: &'a Address,
    session: &'a SessionPublicKey,
    delegation: [u8; 32],
    announced: Timestamp,
    expires: Timestamp,
    withdrawn: bool,
}

#[derive(Serialize)]
struct MailSigned<'a> {
    tag: &'static str,
    id: &'a [u8; 16],
    recipient: &'a Address,
    to_session: &'a SessionPublicKey,
    stored: Timestamp,
    expires: Timestamp,
    from: &'a Address,
    sender: &'a SessionPublicKey,
    delegation: [u8; 32],
}

#[derive(Serialize)]
struct AckSigned<'a> {
    tag: &'static str,
    wallet: &'a Address,
    session: &'a SessionPublicKey,
    delegation: [u8; 32],
    ids: &'a [[u8; 16]],
}

fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of bytes, strings and integers always serialize.
    postcard::to_allocvec(value).unwrap_or_default()
}

impl PresenceRecord {
    /// Signs a presence record for this session (with its static key, [`StaticKey::derive`]).
    pub fn sign(
        session: &SessionKey,
        wallet: Address,
        delegation: &Delegation,
        published: Timestamp,
        expires: Timestamp,
        withdrawn: bool,
    ) -> PresenceRecord {
        let mut record = PresenceRecord {
            wallet,
            session: *session.public(),
            static_key: *StaticKey::derive(session).public(),
            delegation: delegation.clone(),
            published,
            expires,
            withdrawn,
            signature: Signature([0; 64]),
        };
        record.signature = session.sign(&record.signed_bytes());
        record
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_bytes(&PresenceSigned {
            tag: "chordial/presence/v2",
            wallet: &self.wallet,
            session: &self.session,
            static_key: &self.static_key,
            delegation: self.delegation.hash(),
            published: self.published,
            expires: self.expires,
            withdrawn: self.withdrawn,
        })
    }

    /// The key it is stored under.
    pub fn key(&self) -> Id {
        presence_key(&self.wallet)
    }

    /// The node id of its session.
    pub fn node_id(&self) -> Id {
        self.session.node_id()
    }

    /// Checks signature, delegation (to this session, for this wallet, valid at `now`) and times: live at
    /// most [`MAX_PRESENCE_TTL`] after it was published, and not beyond its delegation. An expired (not
    /// withdrawn) record still verifies while its delegation is valid: it names the wallet's last known
    /// session, which a mailbox can still seal to.
    pub fn verify(
        &self,
        network: &str,
        now: Timestamp,
        skew: Duration,
        cache: &mut DelegationCache,
    ) -> Result<(), RecordError> {
        if self.published > now.saturating_add(skew) {
            return Err(RecordError::FromTheFuture);
        }
        if self.expires.since(self.published) > MAX_PRESENCE_TTL {
            return Err(RecordError::TooLong);
        }
        let verified = check_signed(
            &self.signed_bytes(),
            &self.signature,
            &self.session,
            &self.wallet,
            &self.delegation,
            network,
            now,
            cache,
        )?;
        if self.expires > verified.expires {
            return Err(RecordError::Expired);
        }
        Ok(())
    }

    /// Live: not withdrawn and not expired at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        !self.withdrawn && self.expires > now
    }
}

impl TopicRecord {
    /// Signs a topic record for this session.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        session: &SessionKey,
        origin: &str,
        topic: &str,
        wallet: Address,
        delegation: &Delegation,
        announced: Timestamp,
        expires: Timestamp,
        withdrawn: bool,
    ) -> TopicRecord {
        let mut record = TopicRecord {
            origin: origin.to_string(),
            topic: topic.to_string(),
            wallet,
            session: *session.public(),
            delegation: delegation.clone(),
            announced,
            expires,
            withdrawn,
            signature: Signature([0; 64]),
        };
        record.signature = session.sign(&record.signed_bytes());
        record
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_bytes(&TopicSigned {
            tag: "chordial/topic/v1",
            origin: &self.origin,
            topic: &self.topic,
            wallet: &self.wallet,
            session: &self.session,
            delegation: self.delegation.hash(),
            announced: self.announced,
            expires: self.expires,
            withdrawn: self.withdrawn,
        })
    }

    /// The first of the keys it is stored under ([`topic_keys`]).
    pub fn key(&self) -> Id {
        topic_key(&self.origin, &self.topic)
    }

    /// Checks bounds, signature, delegation and times: an expired record is refused, and so is one that
    /// claims more than [`MAX_TOPIC_TTL`] or outlives its delegation.
    pub fn verify(
        &self,
        network: &str,
        now: Timestamp,
        skew: Duration,
        cache: &mut DelegationCache,
    ) -> Result<(), RecordError> {
        if self.origin.len() > MAX_ORIGIN || self.topic.len() > MAX_TOPIC || self.origin.contains('\0') {
            return Err(RecordError::Bounds);
        }
        if self.announced > now.saturating_add(skew) {
            return Err(RecordError::FromTheFuture);
        }
        if self.expires <= now {
            return Err(RecordError::Expired);
        }
        if self.expires.since(self.announced) > MAX_TOPIC_TTL {
            return Err(RecordError::TooLong);
        }
        let verified = check_signed(
            &self.signed_bytes(),
            &self.signature,
            &self.session,
            &self.wallet,
            &self.delegation,
            network,
            now,
            cache,
        )?;
        if self.expires > verified.expires {
            return Err(RecordError::Expired);
        }
        Ok(())
    }
}

impl MailboxEntry {
    /// Signs a mailbox entry for `sealed` (a message sealed to `to_session` of `recipient`) as the sending
    /// session; its id is [`mail_id`] of `sealed`.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        sender: &SessionKey,
        from: Address,
        delegation: &Delegation,
        recipient: Address,
        to_session: SessionPublicKey,
        sealed: Vec<u8>,
        stored: Timestamp,
        expires: Timestamp,
    ) -> MailboxEntry {
        let mut entry = MailboxEntry {
            id: mail_id(&sealed),
            recipient,
            to_session,
            sealed,
            stored,
            expires,
            from,
            sender: *sender.public(),
            delegation: delegation.clone(),
            signature: Signature([0; 64]),
        };
        entry.signature = sender.sign(&entry.signed_bytes());
        entry
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_bytes(&MailSigned {
            tag: "chordial/mail/v1",
            id: &self.id,
            recipient: &self.recipient,
            to_session: &self.to_session,
            stored: self.stored,
            expires: self.expires,
            from: &self.from,
            sender: &self.sender,
            delegation: self.delegation.hash(),
        })
    }

    /// Checks, cheapest first: the ciphertext's size, its lifetime (not lapsed, at most `max_ttl` ahead,
    /// not stored in the future), the id names the ciphertext, the sender session's signature, and its
    /// delegation (valid at `now` for this network, naming that session and wallet `from`, and not expiring
    /// before the entry).
    pub fn verify(
        &self,
        network: &str,
        now: Timestamp,
        skew: Duration,
        max_ttl: Duration,
        cache: &mut DelegationCache,
    ) -> Result<(), RecordError> {
        if self.sealed.len() > crate::e2e::MAX_SEALED {
            return Err(RecordError::Bounds);
        }
        if self.stored > now.saturating_add(skew) {
            return Err(RecordError::FromTheFuture);
        }
        if self.expires <= now {
            return Err(RecordError::Expired);
        }
        if self.expires > now.saturating_add(max_ttl) {
            return Err(RecordError::Bounds);
        }
        if self.id != mail_id(&self.sealed) {
            return Err(RecordError::WrongId);
        }
        let verified = check_signed(
            &self.signed_bytes(),
            &self.signature,
            &self.sender,
            &self.from,
            &self.delegation,
            network,
            now,
            cache,
        )?;
        if self.expires > verified.expires {
            return Err(RecordError::Expired);
        }
        Ok(())
    }
}

impl MailAck {
    /// Signs an acknowledgement of the entries `ids` as the recipient session.
    pub fn sign(
        session: &SessionKey,
        wallet: Address,
        delegation: &Delegation,
        ids: Vec<[u8; 16]>,
    ) -> MailAck {
        let mut ack = MailAck {
            wallet,
            session: *session.public(),
            delegation: delegation.clone(),
            ids,
            signature: Signature([0; 64]),
        };
        ack.signature = session.sign(&ack.signed_bytes());
        ack
    }

    fn signed_bytes(&self) -> Vec<u8> {
        to_bytes(&AckSigned {
            tag: "chordial/mail-ack/v1",
            wallet: &self.wallet,
            session: &self.session,
            delegation: self.delegation.hash(),
            ids: &self.ids,
        })
    }

    /// The mailbox it is for: the wallet's presence key.
    pub fn key(&self) -> Id {
        presence_key(&self.wallet)
    }

    /// Every position of that mailbox ([`presence_keys`]): the acknowledgement goes to each.
    pub fn keys(&self) -> [Id; PRESENCE_POSITIONS] {
        presence_keys(&self.wallet)
    }

    /// Checks the number of ids, the session's signature, and its delegation (valid at `now` for this
    /// network, from `wallet` to that session).
    pub fn verify(
        &self,
        network: &str,
        now: Timestamp,
        cache: &mut DelegationCache,
    ) -> Result<(), RecordError> {
        if self.ids.len() > MAX_ACK_IDS {
            return Err(RecordError::Bounds);
        }
        check_signed(
            &self.signed_bytes(),
            &self.signature,
            &self.session,
            &self.wallet,
            &self.delegation,
            network,
            now,
            cache,
        )?;
        Ok(())
    }
}

/// The checks every signed record shares: the session's signature over `signed`, and a delegation valid
/// at `now` for this network that names that session and the record's wallet.
#[allow(clippy::too_many_arguments)]
fn check_signed(
    signed: &[u8],
    signature: &Signature,
    session: &SessionPublicKey,
    wallet: &Address,
    delegation: &Delegation,
    network: &str,
    now: Timestamp,
    cache: &mut DelegationCache,
) -> Result<VerifiedDelegation, RecordError> {
    cache.crypto().verify(session, signed, signature).map_err(|_| RecordError::BadSignature)?;
    let verified = cache.verify(delegation, network, now)?;
    if verified.session != *session {
        return Err(RecordError::Delegation(DelegationError::WrongSession));
    }
    if verified.wallet != *wallet {
        return Err(RecordError::WrongWallet);
    }
    Ok(verified)
}

/// Any record the ring stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A presence record.
    Presence(PresenceRecord),
    /// A topic record.
    Topic(TopicRecord),
    /// A mailbox entry.
    Mailbox(MailboxEntry),
}

impl Record {
    /// The key it is stored under.
    pub fn key(&self) -> Id {
        match self {
            Record::Presence(p) => p.key(),
            Record::Topic(t) => t.key(),
            Record::Mailbox(m) => presence_key(&m.recipient),
        }
    }

    /// Every key it is written to and may be stored under: the wallet's [`presence_keys`] for presence
    /// records and mailbox entries, the topic's [`topic_keys`] for a topic record ([`Record::key`] is the
    /// first).
    pub fn keys(&self) -> Vec<Id> {
        match self {
            Record::Presence(p) => presence_keys(&p.wallet).to_vec(),
            Record::Mailbox(m) => presence_keys(&m.recipient).to_vec(),
            Record::Topic(t) => topic_keys(&t.origin, &t.topic).to_vec(),
        }
    }

    /// Until when a store keeps it, at the latest. Every bound holds whatever the record claims, so a
    /// record stored before a bound existed (a server's database) lapses too:
    ///
    /// - presence: [`LAST_KNOWN_SESSION`] after it was published (the last known session stays findable
    ///   for mailboxes), and never past its delegation's expiry;
    /// - topic: its `expires`, at most [`MAX_TOPIC_TTL`] after it was announced and never past its
    ///   delegation's expiry;
    /// - mailbox entry: its `expires` (at most [`MAX_MAILBOX_TTL`] after it was accepted), never past the
    ///   sender's delegation's expiry.
    ///
    /// A delegation whose expiry cannot be read (never the case for a record that verified) keeps nothing.
    pub fn keep_until(&self) -> Timestamp {
        match self {
            Record::Presence(p) => p
                .published
                .saturating_add(LAST_KNOWN_SESSION)
                .min(p.delegation.stated_expiry().unwrap_or(Timestamp::ZERO)),
            Record::Topic(t) => t
                .expires
                .min(t.announced.saturating_add(MAX_TOPIC_TTL))
                .min(t.delegation.stated_expiry().unwrap_or(Timestamp::ZERO)),
            Record::Mailbox(m) => m.expires.min(m.delegation.stated_expiry().unwrap_or(Timestamp::ZERO)),
        }
    }

    /// What it counts for against a store's byte budget: its variable-length fields and a fixed allowance
    /// for the rest and for the store's own bookkeeping.
    pub fn stored_bytes(&self) -> usize {
        match self {
            Record::Presence(p) => 256 + p.delegation.message.len(),
            Record::Topic(t) => 256 + t.origin.len() + t.topic.len() + t.delegation.message.len(),
            Record::Mailbox(m) => 256 + m.sealed.len() + m.delegation.message.len(),
        }
    }

    fn slot(&self) -> Slot {
        match self {
            Record::Presence(p) => Slot::Presence(*p.session.as_bytes()),
            Record::Topic(t) => Slot::Topic(*t.session.as_bytes()),
            Record::Mailbox(m) => Slot::Mailbox(m.id),
        }
    }

    fn size(&self) -> usize {
        match self {
            Record::Mailbox(m) => m.sealed.len() + 128,
            Record::Presence(_) | Record::Topic(_) => 1024,
        }
    }
}

/// One record's place under its key: one presence and one topic record per session, one entry per mailbox
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Slot {
    Presence([u8; 33]),
    Topic([u8; 33]),
    Mailbox([u8; 16]),
}

/// Where a node keeps the records it holds. The in-memory store serves browsers and the simulator; the
/// server puts the same operations on a database.
pub trait RecordStore {
    /// Stores `record` (already verified) under `key` — one of [`Record::keys`], checked by the caller —
    /// unless a newer one holds its slot there; returns whether it changed.
    fn put_at(&mut self, key: Id, record: Record, now: Timestamp) -> Result<bool, StoreError>;
    /// Stores `record` under its first key ([`Record::key`]).
    fn put(&mut self, record: Record, now: Timestamp) -> Result<bool, StoreError> {
        let key = record.key();
        self.put_at(key, record, now)
    }
    /// Every record under `key`: presence and topic records by session key, then mailbox entries in the
    /// order they were stored (by [`MailboxEntry::stored`], then id), so mail is handed over oldest first
    /// and no decision follows the order of ciphertext digests (which differ with the crypto provider).
    fn get(&self, key: Id) -> Vec<Record>;
    /// Removes mailbox entries by id under `key` and remembers them as delivered until `until`, so a late
    /// copy (a replica, a handoff in flight) cannot bring them back; returns how many were held.
    fn remove_mail(&mut self, key: Id, ids: &[[u8; 16]], until: Timestamp) -> usize;
    /// Drops what lapsed.
    fn expire(&mut self, now: Timestamp);
    /// Keys held, in ring order.
    fn keys(&self) -> Vec<Id>;
    /// Number of records held.
    fn len(&self) -> usize;
    /// Whether nothing is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes held, as [`Record::stored_bytes`] counts them. A store that wraps a [`MemoryStore`] answers
    /// with the memory store's (this default adds them up, visiting every record).
    fn bytes(&self) -> usize {
        self.keys().into_iter().flat_map(|k| self.get(k)).map(|r| r.stored_bytes()).sum()
    }
    /// Sets the byte budget: `put` refuses a record with [`StoreError::Full`] rather than exceed it. The node
    /// calls this with [`crate::node::Config::store_bytes`]; a store that wraps a [`MemoryStore`] passes it
    /// on (by default nothing changes: the store keeps the budget it has).
    fn set_budget(&mut self, bytes: usize) {
        let _ = bytes;
    }
}

/// Why the store refused a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A newer record from the same session is already stored.
    #[error("stale record")]
    Stale,
    /// The recipient's mailbox is at its count or byte cap.
    #[error("mailbox full")]
    MailboxFull,
    /// The sender wallet has as many entries (or bytes) waiting in this mailbox as one sender may
    /// ([`MAX_MAILBOX_ENTRIES_PER_SENDER`], [`MAX_MAILBOX_BYTES_PER_SENDER`]); other senders can still write.
    #[error("sender's quota in this mailbox used up")]
    SenderQuota,
    /// The node stores as many records, or as many bytes, as it may.
    #[error("store full")]
    Full,
    /// The mailbox entry was already delivered and deleted.
    #[error("already delivered")]
    Delivered,
}

/// The records under one key, sorted by slot: what a `BTreeMap<Slot, Record>` holds, in the same order, but in
/// one allocation that grows one record at a time while it is small. Most keys hold one to a few records,
/// and a B-tree leaf has room for eleven (about 4 KB here), which made the store most of a simulated node's
/// memory.
#[derive(Debug, Default)]
struct Slots(Vec<(Slot, Record)>);

impl Slots {
    fn find(&self, slot: &Slot) -> Result<usize, usize> {
        self.0.binary_search_by(|(s, _)| s.cmp(slot))
    }

    fn get(&self, slot: &Slot) -> Option<&Record> {
        self.find(slot).ok().map(|k| &self.0[k].1)
    }

    fn insert(&mut self, slot: Slot, record: Record) {
        match self.find(&slot) {
            Ok(k) => self.0[k].1 = record,
            Err(k) => {
                if self.0.len() == self.0.capacity() && self.0.capacity() < 4 {
                    // Grow one at a time while small (a Vec would jump to four records at once).
                    self.0.reserve_exact(1);
                }
                self.0.insert(k, (slot, record));
            }
        }
    }

    fn remove(&mut self, slot: &Slot) -> Option<Record> {
        self.find(slot).ok().map(|k| self.0.remove(k).1)
    }

    fn iter(&self) -> impl Iterator<Item = (&Slot, &Record)> {
        self.0.iter().map(|(s, r)| (s, r))
    }

    fn values(&self) -> impl Iterator<Item = &Record> {
        self.0.iter().map(|(_, r)| r)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn retain(&mut self, mut keep: impl FnMut(&Record) -> bool) {
        self.0.retain(|(_, r)| keep(r));
    }
}

/// Delivered mailbox ids remembered (tombstones) at most.
const MAX_TOMBSTONES: usize = 65_536;

/// A bounded in-memory [`RecordStore`]: at most [`MAX_RECORDS_PER_NODE`] records and its byte budget
/// ([`SERVER_STORE_BYTES`] until [`RecordStore::set_budget`] says otherwise).
#[derive(Debug)]
pub struct MemoryStore {
    by_key: BTreeMap<Id, Slots>,
    count: usize,
    /// Bytes held ([`Record::stored_bytes`]).
    bytes: usize,
    budget: usize,
    /// No record lapses before this ([`Record::keep_until`]; a lower bound, exact after a purge): a purge
    /// before then has nothing to do and visits nothing. `None` when empty.
    first_lapse: Option<Timestamp>,
    /// Delivered mailbox entries, by (key, id), with when to forget them.
    delivered: BTreeMap<(Id, [u8; 16]), Timestamp>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::with_budget(SERVER_STORE_BYTES)
    }
}

impl MemoryStore {
    /// An empty store that holds at most `budget` bytes.
    pub fn with_budget(budget: usize) -> Self {
        MemoryStore {
            by_key: BTreeMap::new(),
            count: 0,
            bytes: 0,
            budget,
            first_lapse: None,
            delivered: BTreeMap::new(),
        }
    }

    /// The byte budget.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Drops what lapsed at `now` (as [`RecordStore::expire`]) and returns the keys whose records changed,
    /// for a store that mirrors this one (a database deletes or rewrites just those).
    pub fn expire_keys(&mut self, now: Timestamp) -> Vec<Id> {
        self.delivered.retain(|_, until| *until > now);
        if self.first_lapse.is_none_or(|t| now < t) {
            return Vec::new();
        }
        let mut changed = Vec::new();
        let (mut removed, mut freed) = (0, 0);
        let mut first_lapse: Option<Timestamp> = None;
        self.by_key.retain(|key, slots| {
            let before = slots.len();
            slots.retain(|r| {
                let until = r.keep_until();
                if until > now {
                    first_lapse = Some(first_lapse.map_or(until, |t| t.min(until)));
                    true
                } else {
                    freed += r.stored_bytes();
                    false
                }
            });
            if slots.len() != before {
                removed += before - slots.len();
                changed.push(*key);
            }
            !slots.is_empty()
        });
        self.count -= removed;
        self.bytes -= freed;
        self.first_lapse = first_lapse;
        changed
    }

    fn lapses_at(&mut self, until: Timestamp) {
        self.first_lapse = Some(self.first_lapse.map_or(until, |t| t.min(until)));
    }
}

fn newer(a: &Record, b: &Record) -> bool {
    match (a, b) {
        (Record::Presence(a), Record::Presence(b)) => a.published > b.published,
        (Record::Topic(a), Record::Topic(b)) => a.announced > b.announced,
        // A mailbox entry is never replaced, and records of different kinds never share a slot.
        (Record::Presence(_) | Record::Topic(_) | Record::Mailbox(_), _) => false,
    }
}

impl RecordStore for MemoryStore {
    fn put_at(&mut self, key: Id, record: Record, now: Timestamp) -> Result<bool, StoreError> {
        let slot = record.slot();
        if let Record::Mailbox(m) = &record {
            if self.delivered.contains_key(&(key, m.id)) {
                // Already delivered and deleted: a late copy is not news, and its holder may drop it.
                return Err(StoreError::Delivered);
            }
        }
        let size = record.stored_bytes();
        let existing = self.by_key.get(&key).and_then(|slots| slots.get(&slot));
        if let Some(existing) = existing {
            if existing == &record {
                return Ok(false);
            }
            if !newer(&record, existing) {
                return Err(StoreError::Stale);
            }
            // A newer copy replaces the old one: only what it adds counts against the budget.
            let old = existing.stored_bytes();
            if size > old && self.bytes - old + size > self.budget {
                return Err(StoreError::Full);
            }
            self.bytes = self.bytes - old + size;
        } else if self.count >= MAX_RECORDS_PER_NODE || self.bytes + size > self.budget {
            // Refused before anything is touched, so a refusal leaves no trace (not even an empty key).
            return Err(StoreError::Full);
        }
        let new_slot = existing.is_none();
        let slots = self.by_key.entry(key).or_default();
        if new_slot {
            match &record {
                Record::Mailbox(m) => {
                    let (mut n, mut bytes, mut theirs, mut their_bytes) = (0, 0, 0, 0);
                    for r in slots.values() {
                        if let Record::Mailbox(e) = r {
                            n += 1;
                            bytes += r.size();
                            if e.from == m.from {
                                theirs += 1;
                                their_bytes += r.size();
                            }
                        }
                    }
                    // The sender's own quota first: a sender over it is told so, not that the mailbox is
                    // full for everyone.
                    if theirs >= MAX_MAILBOX_ENTRIES_PER_SENDER
                        || their_bytes + record.size() > MAX_MAILBOX_BYTES_PER_SENDER
                    {
                        return Err(StoreError::SenderQuota);
                    }
                    if n >= MAX_MAILBOX_ENTRIES || bytes + m.sealed.len() > MAX_MAILBOX_BYTES {
                        return Err(StoreError::MailboxFull);
                    }
                }
                Record::Presence(_) | Record::Topic(_) => {
                    let is_presence = matches!(record, Record::Presence(_));
                    let cap = if is_presence { MAX_SESSIONS_PER_WALLET } else { MAX_TOPIC_MEMBERS };
                    let same_kind = |r: &Record| {
                        matches!(r, Record::Presence(_)) == is_presence && !matches!(r, Record::Mailbox(_))
                    };
                    if slots.values().filter(|r| same_kind(r)).count() >= cap {
                        // Oldest (soonest to lapse) goes first.
                        let victim = slots
                            .iter()
                            .filter(|(_, r)| same_kind(r))
                            .min_by_key(|(_, r)| r.keep_until())
                            .map(|(s, _)| *s);
                        if let Some(gone) = victim.and_then(|v| slots.remove(&v)) {
                            self.count -= 1;
                            self.bytes -= gone.stored_bytes();
                        }
                    }
                }
            }
            self.count += 1;
            self.bytes += size;
        }
        let _ = now;
        let until = record.keep_until();
        slots.insert(slot, record);
        self.lapses_at(until);
        Ok(true)
    }

    fn get(&self, key: Id) -> Vec<Record> {
        let Some(slots) = self.by_key.get(&key) else { return Vec::new() };
        let mut records: Vec<Record> = slots.values().cloned().collect();
        // Slots order mail by id; a stable sort keeps the other records in slot order, ahead of the mail.
        records.sort_by_key(|r| match r {
            Record::Mailbox(m) => Some((m.stored, m.id)),
            Record::Presence(_) | Record::Topic(_) => None,
        });
        records
    }

    fn remove_mail(&mut self, key: Id, ids: &[[u8; 16]], until: Timestamp) -> usize {
        for id in ids {
            if self.delivered.len() >= MAX_TOMBSTONES {
                // Forget the tombstone that lapses first (bounded memory).
                if let Some(first) = self.delivered.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k) {
                    self.delivered.remove(&first);
                }
            }
            self.delivered.insert((key, *id), until);
        }
        let Some(slots) = self.by_key.get_mut(&key) else { return 0 };
        let mut n = 0;
        for id in ids {
            if let Some(gone) = slots.remove(&Slot::Mailbox(*id)) {
                n += 1;
                self.bytes -= gone.stored_bytes();
            }
        }
        self.count -= n;
        if slots.is_empty() {
            self.by_key.remove(&key);
        }
        n
    }

    fn expire(&mut self, now: Timestamp) {
        self.expire_keys(now);
    }

    fn keys(&self) -> Vec<Id> {
        self.by_key.keys().copied().collect()
    }

    fn len(&self) -> usize {
        self.count
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
    }
}

/// Decodes a list of records as a store wrote it (postcard `Vec<Record>`): this version's, or the one
/// before presence records carried a static key (before 2026-12-07). From the older form the topic
/// records and mailbox entries are kept as they are and the presence records are dropped: they no longer
/// verify, and their sessions publish new ones within [`MAX_PRESENCE_TTL`]. Mail a server acknowledged
/// survives the upgrade. `None` if the bytes are neither.
pub fn decode_record_list(bytes: &[u8]) -> Option<Vec<Record>> {
    if let Ok(records) = postcard::from_bytes::<Vec<Record>>(bytes) {
        return Some(records);
    }
    let old = postcard::from_bytes::<Vec<before_static_keys::Record>>(bytes).ok()?;
    Some(old.into_iter().filter_map(before_static_keys::Record::upgrade).collect())
}

/// The record shapes before presence records carried a static key, for reading old stores.
mod before_static_keys {
    use serde::{Deserialize, Serialize};

    use crate::identity::{Address, Delegation, SessionPublicKey, Signature};
    use crate::time::Timestamp;

    #[derive(Serialize, Deserialize)]
    pub(super) struct PresenceRecord {
        pub(super) wallet: Address,
        pub(super) session: SessionPublicKey,
        pub(super) delegation: Delegation,
        pub(super) published: Timestamp,
        pub(super) expires: Timestamp,
        pub(super) withdrawn: bool,
        pub(super) signature: Signature,
    }

    /// Same variants in the same order as [`super::Record`].
    #[derive(Serialize, Deserialize)]
    pub(super) enum Record {
        Presence(PresenceRecord),
        Topic(super::TopicRecord),
        Mailbox(super::MailboxEntry),
    }

    impl Record {
        pub(super) fn upgrade(self) -> Option<super::Record> {
            match self {
                Record::Presence(_) => None,
                Record::Topic(t) => Some(super::Record::Topic(t)),
                Record::Mailbox(m) => Some(super::Record::Mailbox(m)),
            }
        }
    }
}

#[cfg(test)]
mod mail_tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::identity::delegation::delegation_message;
    use crate::identity::{DelegationRequest, WalletKey};

    const NET: &str = "mail-test";
    const NOW: Timestamp = Timestamp(1_800_000_000_000);
    const SKEW: Duration = Duration::from_secs(120);
    const TTL: Duration = Duration::from_secs(14 * 24 * 3600);

    struct Who {
        session: SessionKey,
        wallet: Address,
        delegation: Delegation,
    }

    fn who(rng: &mut ChaCha20Rng) -> Who {
        let session = SessionKey::generate(rng);
        let wallet = WalletKey::generate(rng);
        who_for(rng, session, &wallet)
    }

    fn who_for(rng: &mut ChaCha20Rng, session: SessionKey, wallet: &WalletKey) -> Who {
        let req = DelegationRequest::new("t.local", wallet.address(), 1, NET);
        let delegation = Delegation::sign(&delegation_message(session.public(), &req, NOW, rng), wallet);
        Who { session, wallet: wallet.address(), delegation }
    }

    fn entry(from: &Who, to: &Who, byte: u8, len: usize) -> MailboxEntry {
        let expires = NOW.saturating_add(Duration::from_secs(3600));
        let sealed = vec![byte; len];
        MailboxEntry::sign(
            &from.session,
            from.wallet,
            &from.delegation,
            to.wallet,
            *to.session.public(),
            sealed,
            NOW,
            expires,
        )
    }

    #[test]
    fn a_wallet_has_distinct_positions_and_a_store_keeps_a_record_apart_under_each() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (alice, bob) = (who(&mut rng), who(&mut rng));
        let keys = presence_keys(&bob.wallet);
        assert_eq!(keys[0], presence_key(&bob.wallet), "the first position is the key records always had");
        for (i, k) in keys.iter().enumerate() {
            assert!(keys[..i].iter().all(|other| other != k), "positions {keys:?} must differ");
        }
        let mail = Record::Mailbox(entry(&alice, &bob, 1, 40));
        assert_eq!(mail.keys(), keys.to_vec());
        let mut store = MemoryStore::default();
        for k in keys {
            assert_eq!(store.put_at(k, mail.clone(), NOW), Ok(true));
        }
        // Each position holds its own copy (a node may own more than one); the same copy again is no news.
        assert!(keys.iter().all(|k| store.get(*k) == vec![mail.clone()]));
        assert_eq!(store.len(), PRESENCE_POSITIONS);
        assert_eq!(store.put_at(keys[1], mail, NOW), Ok(false));
    }

    #[test]
    fn mail_comes_out_of_the_store_oldest_first_whatever_its_ids() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let (alice, bob) = (who(&mut rng), who(&mut rng));
        let key = presence_key(&bob.wallet);
        let expires = NOW.saturating_add(Duration::from_secs(3600));
        let at = |byte: u8, secs: u64| {
            let stored = NOW.saturating_add(Duration::from_secs(secs));
            let e = MailboxEntry::sign(
                &alice.session,
                alice.wallet,
                &alice.delegation,
                bob.wallet,
                *bob.session.public(),
                vec![byte; 40],
                stored,
                expires,
            );
            Record::Mailbox(e)
        };
        // Stored at 0, 1, 2, 3 s; ids are digests, so their order has nothing to do with that.
        let mail: Vec<Record> = (0..4u8).map(|k| at(k, u64::from(k))).collect();
        let mut by_id = mail.clone();
        by_id.sort_by_key(|r| match r {
            Record::Mailbox(m) => m.id,
            Record::Presence(_) | Record::Topic(_) => unreachable!(),
        });
        assert_ne!(by_id, mail, "the fixture must have ids out of storing order (pick another byte)");
        let mut store = MemoryStore::default();
        for r in by_id.iter().rev() {
            store.put_at(key, r.clone(), NOW).expect("stored");
        }
        let presence = Record::Presence(PresenceRecord::sign(
            &bob.session,
            bob.wallet,
            &bob.delegation,
            NOW,
            expires,
            false,
        ));
        store.put_at(key, presence.clone(), NOW).expect("stored");
        let mut expected = vec![presence];
        expected.extend(mail);
        assert_eq!(store.get(key), expected, "presence first, then mail in the order it was stored");
    }

    #[test]
    fn a_mailbox_entry_verifies_only_as_its_sender_signed_it() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (alice, bob, mallory) = (who(&mut rng), who(&mut rng), who(&mut rng));
        let mut cache = DelegationCache::new(8);
        let good = entry(&alice, &bob, 1, 100);
        assert_eq!(good.verify(NET, NOW, SKEW, TTL, &mut cache), Ok(()));

        let mut swapped = good.clone();
        swapped.sealed = vec![2; 100];
        assert_eq!(swapped.verify(NET, NOW, SKEW, TTL, &mut cache), Err(RecordError::WrongId));
        let mut resealed = swapped.clone();
        resealed.id = mail_id(&resealed.sealed);
        assert_eq!(resealed.verify(NET, NOW, SKEW, TTL, &mut cache), Err(RecordError::BadSignature));
        let mut other_sender = good.clone();
        other_sender.from = mallory.wallet;
        assert_eq!(other_sender.verify(NET, NOW, SKEW, TTL, &mut cache), Err(RecordError::BadSignature));
        // Signed by mallory's session under alice's delegation: the delegation names another session.
        let forged = MailboxEntry::sign(
            &mallory.session,
            alice.wallet,
            &alice.delegation,
            bob.wallet,
            *bob.session.public(),
            vec![3; 10],
            NOW,
            NOW.saturating_add(Duration::from_secs(60)),
        );
        assert_eq!(
            forged.verify(NET, NOW, SKEW, TTL, &mut cache),
            Err(RecordError::Delegation(DelegationError::WrongSession))
        );
        let claims = MailboxEntry::sign(
            &mallory.session,
            alice.wallet,
            &mallory.delegation,
            bob.wallet,
            *bob.session.public(),
            vec![3; 10],
            NOW,
            NOW.saturating_add(Duration::from_secs(60)),
        );
        assert_eq!(claims.verify(NET, NOW, SKEW, TTL, &mut cache), Err(RecordError::WrongWallet));
        let later = NOW.saturating_add(Duration::from_secs(3600));
        assert_eq!(good.verify(NET, later, SKEW, TTL, &mut cache), Err(RecordError::Expired));
    }

    #[test]
    fn only_the_recipient_session_can_sign_an_acknowledgement() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let (bob, mallory) = (who(&mut rng), who(&mut rng));
        let mut cache = DelegationCache::new(8);
        let ids = vec![[1; 16], [2; 16]];
        let ack = MailAck::sign(&bob.session, bob.wallet, &bob.delegation, ids.clone());
        assert_eq!(ack.verify(NET, NOW, &mut cache), Ok(()));
        assert_eq!(ack.key(), presence_key(&bob.wallet));

        let mut as_bob = MailAck::sign(&mallory.session, bob.wallet, &bob.delegation, ids.clone());
        as_bob.session = *bob.session.public();
        assert_eq!(as_bob.verify(NET, NOW, &mut cache), Err(RecordError::BadSignature));
        let claims = MailAck::sign(&mallory.session, bob.wallet, &mallory.delegation, ids.clone());
        assert_eq!(claims.verify(NET, NOW, &mut cache), Err(RecordError::WrongWallet));
        let mut more = ack.clone();
        more.ids.push([3; 16]);
        assert_eq!(more.verify(NET, NOW, &mut cache), Err(RecordError::BadSignature));
        let too_many =
            MailAck::sign(&bob.session, bob.wallet, &bob.delegation, vec![[0; 16]; MAX_ACK_IDS + 1]);
        assert_eq!(too_many.verify(NET, NOW, &mut cache), Err(RecordError::Bounds));
    }

    #[test]
    fn one_sender_wallet_gets_its_quota_and_the_others_still_write() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let bob = who(&mut rng);
        let mallory_wallet = WalletKey::generate(&mut rng);
        // Two sessions of one wallet share its quota.
        let sessions = [SessionKey::generate(&mut rng), SessionKey::generate(&mut rng)];
        let mallory = sessions.map(|s| who_for(&mut rng, s, &mallory_wallet));
        let mut store = MemoryStore::default();
        for k in 0..MAX_MAILBOX_ENTRIES_PER_SENDER {
            let m = entry(&mallory[k % 2], &bob, k as u8, 50);
            assert_eq!(store.put(Record::Mailbox(m), NOW), Ok(true), "entry {k}");
        }
        for k in 0..4 {
            let m = entry(&mallory[k % 2], &bob, k as u8, 49);
            assert_eq!(store.put(Record::Mailbox(m), NOW), Err(StoreError::SenderQuota));
        }
        // Bytes count too: a fresh sender with one entry over its byte share.
        let big = who(&mut rng);
        let m = entry(&big, &bob, 9, MAX_MAILBOX_BYTES_PER_SENDER);
        assert_eq!(store.put(Record::Mailbox(m), NOW), Err(StoreError::SenderQuota));
        // Everyone else fills the rest; then the mailbox is full for everyone.
        let mut n = MAX_MAILBOX_ENTRIES_PER_SENDER;
        while n < MAX_MAILBOX_ENTRIES {
            let sender = who(&mut rng);
            for _ in 0..MAX_MAILBOX_ENTRIES_PER_SENDER.min(MAX_MAILBOX_ENTRIES - n) {
                let m = entry(&sender, &bob, n as u8, 50);
                assert_eq!(store.put(Record::Mailbox(m), NOW), Ok(true), "entry {n}");
                n += 1;
            }
        }
        let late = who(&mut rng);
        assert_eq!(store.put(Record::Mailbox(entry(&late, &bob, 8, 51)), NOW), Err(StoreError::MailboxFull));
    }

    #[test]
    fn a_presence_record_publishes_its_sessions_static_key_under_its_signature() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let alice = who(&mut rng);
        let expires = NOW.saturating_add(Duration::from_secs(600));
        let p = PresenceRecord::sign(&alice.session, alice.wallet, &alice.delegation, NOW, expires, false);
        assert_eq!(p.static_key, *StaticKey::derive(&alice.session).public());
        let mut cache = DelegationCache::new(4);
        assert_eq!(p.verify(NET, NOW, Duration::ZERO, &mut cache), Ok(()));
        // Another static key in the same record (a relay or holder offering its own): refused.
        let mut swapped = p.clone();
        swapped.static_key = StaticPublic([9; 32]);
        assert_eq!(swapped.verify(NET, NOW, Duration::ZERO, &mut cache), Err(RecordError::BadSignature));
    }

    #[test]
    fn a_store_written_before_static_keys_keeps_its_mail_and_topics() {
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        let (alice, bob) = (who(&mut rng), who(&mut rng));
        let mail = entry(&alice, &bob, 5, 100);
        let expires = NOW.saturating_add(Duration::from_secs(600));
        let topic = TopicRecord::sign(
            &alice.session,
            "https://app.example",
            "chat",
            alice.wallet,
            &alice.delegation,
            NOW,
            expires,
            false,
        );
        let old_presence = before_static_keys::PresenceRecord {
            wallet: alice.wallet,
            session: *alice.session.public(),
            delegation: alice.delegation.clone(),
            published: NOW,
            expires,
            withdrawn: false,
            signature: Signature([1; 64]),
        };
        let old = vec![
            before_static_keys::Record::Presence(old_presence),
            before_static_keys::Record::Mailbox(mail.clone()),
            before_static_keys::Record::Topic(topic.clone()),
        ];
        let bytes = postcard::to_allocvec(&old).unwrap();
        assert!(postcard::from_bytes::<Vec<Record>>(&bytes).is_err(), "the old form is not the new one");
        assert_eq!(
            decode_record_list(&bytes),
            Some(vec![Record::Mailbox(mail.clone()), Record::Topic(topic)])
        );
        // This version's lists read as they are; junk is neither.
        let new = vec![Record::Mailbox(mail)];
        assert_eq!(decode_record_list(&postcard::to_allocvec(&new).unwrap()), Some(new));
        assert_eq!(decode_record_list(&[0xff, 0xff, 0x01]), None);
    }
}
