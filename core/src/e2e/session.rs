//! End-to-end sessions between two devices: one Noise handshake bound to both delegations, then one AEAD
//! operation per message, in either direction.
//!
//! ```text
//!  initiator (has the responder's static key                                   responder
//!  from its verified presence record)
//!
//!  Initiating::start ── hello: Noise IK  -> e, es, s, ss   [Hello: index, binding, delegation, data] ──► accept()
//!                                                            checks binding (signed by the initiator's session
//!                                                            key) and delegation; Responding::welcome answers
//!  Initiating::finish ◄─ welcome: Noise IK  <- e, ee, se   [Welcome: index, data] ──────────────────┘
//!         │                                                                                          │
//!      Session ◄─────── data: index ‖ counter ‖ ChaCha20-Poly1305(key, counter, ad, plaintext) ──► Session
//! ```
//!
//! **Keys.** Each node has one X25519 static key ([`StaticKey`]) derived from its session key, so a node that
//! resumes its session key after a restart has the same static key. The session key signs it once
//! ([`Credentials::binding`]); the presence record publishes it, and the hello carries the signature and the
//! sender's delegation. The handshake is Noise's `IK` pattern with SHA-256 and ChaCha20-Poly1305 (the `snow`
//! crate): the initiator knows the responder's static key from its presence record, so the first message is
//! already encrypted to the responder and may carry the first application message, and the second message
//! finishes the handshake — one round trip, as a receipt would take anyway.
//!
//! **Bound to both delegations.** The prologue names both session keys (the initiator's is the origin of the
//! frame that carries the hello, the responder's is the recipient's), so a hello replayed to another session or
//! from another origin fails. The responder accepts a hello only if the initiator's session key signed the
//! static key it proved possession of (`s`, `ss`) and the delegation makes that session key a wallet's; the
//! initiator trusts the responder's static key because the responder's presence record, signed by its session
//! key under its delegation, named it, and only its holder can complete `es` and `se`.
//!
//! **Messages.** After the handshake each side has a key per direction (Noise's split, taken raw so that our
//! own AEAD can authenticate each message's header): a message is `index ‖ counter ‖ ciphertext ‖ tag`, where
//! `index` is the receiver's name for the session (chosen by the receiver, carried in its handshake message),
//! `counter` the sender's 64-bit message counter (the nonce), and the associated data the domain, the
//! caller's header (the routing fields it wants bound), the index and the counter. No signature, no
//! delegation, 32 bytes of overhead. Counters arrive out of order over the ring, so the receiver keeps a
//! window of the last [`REPLAY_WINDOW`] counters and refuses repeats and counters below it.
//!
//! **Forward secrecy and lifetime.** The transport keys come from ephemeral keys (`ee`, `se`), so a session
//! key or static key stolen later opens no recorded message after the hello's own data (which, as in any `IK`
//! first message, is as safe as the responder's static key). A session lives at most [`SESSION_LIFETIME`] and
//! never past either side's delegation; then a new handshake starts. Sessions live in memory only: a restarted
//! device has none, answers data for an unknown index with a refusal, and the sender handshakes again.
//!
//! Sans-IO like the rest of the core: the caller passes the RNG (ephemeral keys and indexes come from it, so a
//! seeded run is reproducible) and `now`.

use std::fmt;
use std::time::Duration;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

use crate::identity::address::Address;
use crate::identity::delegation::{Delegation, DelegationCache, DelegationError};
use crate::identity::{SessionKey, SessionPublicKey, Signature};
use crate::time::Timestamp;

/// The Noise protocol of the handshake.
pub const NOISE_PARAMS: &str = "Noise_IK_25519_ChaChaPoly_SHA256";
/// A session is used for at most this long after its handshake; then a new one starts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How many counters a session still accepts (once each): the highest received and those just below it.
pub const REPLAY_WINDOW: u64 = 1024;
/// Largest plaintext of one session message.
pub const MAX_PLAINTEXT: usize = 256 * 1024;
/// Bytes a session message adds to its plaintext: index (8), counter (8), tag (16).
pub const DATA_OVERHEAD: usize = 8 + 8 + TAG_LEN;
/// Largest application data a hello or welcome carries (a Noise message is at most 65,535 bytes; the rest is
/// the handshake's keys and tags and the hello's delegation). Larger first data waits for the session.
pub const MAX_HANDSHAKE_DATA: usize = 56 * 1024;

/// The Noise spec's limit on one handshake message.
const NOISE_MAX: usize = 65_535;
const TAG_LEN: usize = 16;
/// Prologue prefix of every handshake: the protocol's name for this binding of Noise.
const PROLOGUE_DOMAIN: &[u8] = b"chordial/session/v1";
/// What a session key signs to vouch for its static key (never valid as a signature over anything else).
const BINDING_DOMAIN: &[u8] = b"chordial/noise-static/v1";
/// Derivation of the static key from the session key's secret.
const DERIVE_DOMAIN: &[u8] = b"chordial/noise-static/derive/v1";
/// Associated-data prefix of session messages.
const DATA_DOMAIN: &[u8] = b"chordial/session-data/v1";

/// A node's X25519 static key for sessions.
pub struct StaticKey {
    secret: [u8; 32],
    public: StaticPublic,
}

impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKey").field("public", &self.public).finish_non_exhaustive()
    }
}

impl StaticKey {
    /// The static key of `session`: X25519 with the secret `SHA-256(domain ‖ session secret)`. Deterministic,
    /// so a node that resumes its session key resumes its static key (and its published presence stays true).
    pub fn derive(session: &SessionKey) -> StaticKey {
        let secret: [u8; 32] =
            Sha256::new().chain_update(DERIVE_DOMAIN).chain_update(session.to_bytes()).finalize().into();
        let mut dh = x25519();
        dh.set(&secret);
        let mut public = [0u8; 32];
        public.copy_from_slice(dh.pubkey());
        StaticKey { secret, public: StaticPublic(public) }
    }

    /// The public half, as presence records publish it.
    pub fn public(&self) -> &StaticPublic {
        &self.public
    }
}

/// An X25519 public key of a session's static key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StaticPublic(pub [u8; 32]);

impl fmt::Debug for StaticPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StaticPublic({}…)", hex::encode(&self.0[..6]))
    }
}

/// What this node proves about itself in a hello: its static key, the session key's signature over it, and
/// the delegation that makes the session key a wallet's. Built once per session key.
#[derive(Debug)]
pub struct Credentials {
    session: SessionPublicKey,
    static_key: StaticKey,
    binding: Signature,
    delegation: Delegation,
}

impl Credentials {
    /// Derives the static key of `session` and signs it. `delegation` must be the one for `session` (the
    /// peer checks it).
    pub fn new(session: &SessionKey, delegation: Delegation) -> Credentials {
        let static_key = StaticKey::derive(session);
        let binding = session.sign(&binding_input(static_key.public()));
        Credentials { session: *session.public(), static_key, binding, delegation }
    }

    /// The static public key, for the presence record.
    pub fn static_public(&self) -> &StaticPublic {
        self.static_key.public()
    }

    /// The session key's signature over the static key.
    pub fn binding(&self) -> &Signature {
        &self.binding
    }
}

/// Who is at the other end of a session, as the handshake proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The peer's session key.
    pub session: SessionPublicKey,
    /// The peer's static key.
    pub static_key: StaticPublic,
    /// The wallet whose delegation the peer showed (the responder's is the one its presence record named;
    /// the caller checked it when it read the record).
    pub wallet: Address,
    /// When the peer's delegation expires (the session ends then at the latest).
    pub delegation_expires: Timestamp,
}

/// Why a handshake message was refused. Every variant is the peer's (or a forger's) doing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Longer than a Noise message may be.
    #[error("handshake message too large")]
    TooLarge,
    /// Not a Noise message of this protocol for these keys (tampered, truncated, for another static key,
    /// another pair of sessions, or another handshake).
    #[error("handshake message does not decrypt")]
    Decrypt,
    /// The payload does not decode (strictly, with no trailing bytes) or exceeds a bound.
    #[error("malformed handshake payload")]
    Malformed,
    /// The initiator's session key did not sign the static key it proved.
    #[error("static key not signed by the sender's session key")]
    BadBinding,
    /// The initiator's delegation is invalid (here, now, on this network).
    #[error("sender delegation: {0}")]
    Delegation(#[from] DelegationError),
    /// The delegation is for another session key than the one that started the handshake.
    #[error("delegation is for another session key")]
    SessionMismatch,
    /// Data too large for a handshake message ([`MAX_HANDSHAKE_DATA`]): the caller's mistake.
    #[error("handshake data of {0} bytes exceeds {MAX_HANDSHAKE_DATA}")]
    DataTooLarge(usize),
}

/// Why a session message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// Shorter than its header and tag, or longer than [`MAX_PLAINTEXT`] allows.
    #[error("malformed session message")]
    Malformed,
    /// Addressed to another index than this session's.
    #[error("session message for another session")]
    WrongSession,
    /// The tag does not verify: tampered, another key, or another header.
    #[error("session message does not decrypt")]
    Decrypt,
    /// A counter this session already accepted.
    #[error("session message replayed")]
    Replay,
    /// A counter below the replay window.
    #[error("session message too old")]
    TooOld,
    /// The session is past its lifetime or a delegation's expiry: the sender must handshake again.
    #[error("session expired")]
    Expired,
    /// Plaintext larger than [`MAX_PLAINTEXT`]: the caller's mistake.
    #[error("plaintext of {0} bytes exceeds {MAX_PLAINTEXT}")]
    TooLarge(usize),
}

/// The first handshake message's payload.
#[derive(Serialize, Deserialize)]
struct Hello {
    index: u64,
    binding: Signature,
    delegation: Delegation,
    data: Vec<u8>,
}

/// The second handshake message's payload.
#[derive(Serialize, Deserialize)]
struct Welcome {
    index: u64,
    data: Vec<u8>,
}

/// An initiator waiting for the responder's welcome.
pub struct Initiating {
    state: snow::HandshakeState,
    index: u64,
    peer: Peer,
    started: Timestamp,
}

impl fmt::Debug for Initiating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiating").field("index", &self.index).field("peer", &self.peer).finish()
    }
}

impl Initiating {
    /// Starts a session with `peer` (its session and static key and wallet come from its verified presence
    /// record): the hello to send, carrying `data` (at most [`MAX_HANDSHAKE_DATA`] bytes), and the state that
    /// [`Initiating::finish`] completes with the welcome.
    pub fn start(
        rng: &mut impl CryptoRngCore,
        me: &Credentials,
        peer: Peer,
        now: Timestamp,
        data: &[u8],
    ) -> Result<(Initiating, Vec<u8>), HandshakeError> {
        if data.len() > MAX_HANDSHAKE_DATA {
            return Err(HandshakeError::DataTooLarge(data.len()));
        }
        let index = rng.next_u64();
        let prologue = prologue(&me.session, &peer.session);
        let mut state = builder(rng)
            .local_private_key(&me.static_key.secret)
            .and_then(|b| b.remote_public_key(&peer.static_key.0))
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_initiator())
            .map_err(internal)?;
        let hello =
            Hello { index, binding: me.binding, delegation: me.delegation.clone(), data: data.to_vec() };
        let payload = postcard::to_allocvec(&hello).map_err(|_| HandshakeError::Malformed)?;
        let mut message = vec![0u8; NOISE_MAX];
        let len = state.write_message(&payload, &mut message).map_err(|_| HandshakeError::TooLarge)?;
        message.truncate(len);
        Ok((Initiating { state, index, peer, started: now }, message))
    }

    /// The session, and the data the welcome carried. A welcome that fails leaves nothing usable: start again.
    pub fn finish(mut self, welcome: &[u8]) -> Result<(Session, Vec<u8>), HandshakeError> {
        if welcome.len() > NOISE_MAX {
            return Err(HandshakeError::TooLarge);
        }
        let mut payload = vec![0u8; welcome.len()];
        let len = self.state.read_message(welcome, &mut payload).map_err(|_| HandshakeError::Decrypt)?;
        let welcome: Welcome = match postcard::take_from_bytes(&payload[..len]) {
            Ok((w, [])) => w,
            _ => return Err(HandshakeError::Malformed),
        };
        if welcome.data.len() > MAX_HANDSHAKE_DATA {
            return Err(HandshakeError::Malformed);
        }
        let (send, recv) = self.state.dangerously_get_raw_split();
        let session = Session::new(send, recv, self.index, welcome.index, self.peer, self.started);
        Ok((session, welcome.data))
    }

    /// The index the welcome and the responder's messages are addressed to.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The peer this handshake is with.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }
}

/// A hello the responder accepted: who sent it and its data, waiting for the welcome that answers it (whose
/// data may depend on what the hello's data was).
pub struct Responding {
    state: snow::HandshakeState,
    peer: Peer,
    /// The initiator's name for the session: our messages carry it.
    peer_index: u64,
    data: Vec<u8>,
    started: Timestamp,
}

impl fmt::Debug for Responding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responding").field("peer", &self.peer).field("data", &self.data.len()).finish()
    }
}

/// Reads a hello that arrived from `initiator` (the origin session key of the frame that carried it):
/// checks that its session key signed its static key and that its delegation is valid on `network` at `now`.
/// [`Responding::welcome`] then makes the session and the welcome.
///
/// A replayed hello is accepted again and makes a new session that nobody but the initiator can use: the
/// caller de-duplicates what the hello's data says (as for any message).
pub fn accept(
    rng: &mut impl CryptoRngCore,
    me: &Credentials,
    initiator: &SessionPublicKey,
    network: &str,
    cache: &mut DelegationCache,
    now: Timestamp,
    hello: &[u8],
) -> Result<Responding, HandshakeError> {
    if hello.len() > NOISE_MAX {
        return Err(HandshakeError::TooLarge);
    }
    let prologue = prologue(initiator, &me.session);
    let mut state = builder(rng)
        .local_private_key(&me.static_key.secret)
        .and_then(|b| b.prologue(&prologue))
        .and_then(|b| b.build_responder())
        .map_err(internal)?;
    let mut payload = vec![0u8; hello.len()];
    let len = state.read_message(hello, &mut payload).map_err(|_| HandshakeError::Decrypt)?;
    let message: Hello = match postcard::take_from_bytes(&payload[..len]) {
        Ok((h, [])) => h,
        _ => return Err(HandshakeError::Malformed),
    };
    if message.data.len() > MAX_HANDSHAKE_DATA {
        return Err(HandshakeError::Malformed);
    }
    let mut static_key = [0u8; 32];
    static_key.copy_from_slice(state.get_remote_static().ok_or(HandshakeError::Decrypt)?);
    let static_key = StaticPublic(static_key);
    cache
        .crypto()
        .verify(initiator, &binding_input(&static_key), &message.binding)
        .map_err(|_| HandshakeError::BadBinding)?;
    let delegation = cache.verify(&message.delegation, network, now)?;
    if delegation.session != *initiator {
        return Err(HandshakeError::SessionMismatch);
    }
    let peer = Peer {
        session: *initiator,
        static_key,
        wallet: delegation.wallet,
        delegation_expires: delegation.expires,
    };
    Ok(Responding { state, peer, peer_index: message.index, data: message.data, started: now })
}

impl Responding {
    /// The data the hello carried.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Who sent the hello, as it proved.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The session, ready for both directions, and the welcome to send back carrying `reply` (at most
    /// [`MAX_HANDSHAKE_DATA`] bytes): it completes the initiator's side.
    pub fn welcome(
        mut self,
        rng: &mut impl CryptoRngCore,
        reply: &[u8],
    ) -> Result<(Session, Vec<u8>), HandshakeError> {
        if reply.len() > MAX_HANDSHAKE_DATA {
            return Err(HandshakeError::DataTooLarge(reply.len()));
        }
        let index = rng.next_u64();
        let payload = postcard::to_allocvec(&Welcome { index, data: reply.to_vec() })
            .map_err(|_| HandshakeError::Malformed)?;
        let mut out = vec![0u8; NOISE_MAX];
        let len = self.state.write_message(&payload, &mut out).map_err(|_| HandshakeError::TooLarge)?;
        out.truncate(len);
        // The responder's split is the initiator's, crossed: its first key is the initiator's sending key.
        let (recv, send) = self.state.dangerously_get_raw_split();
        Ok((Session::new(send, recv, index, self.peer_index, self.peer, self.started), out))
    }
}
/// A live session: a key per direction, the sending counter and the receiving window.
pub struct Session {
    send: ChaCha20Poly1305,
    recv: ChaCha20Poly1305,
    /// Our name for this session: the peer addresses its messages to it.
    index: u64,
    /// The peer's name for it: our messages carry it.
    peer_index: u64,
    next: u64,
    window: ReplayWindow,
    peer: Peer,
    expires: Timestamp,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("index", &self.index)
            .field("peer_index", &self.peer_index)
            .field("next", &self.next)
            .field("peer", &self.peer)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Session {
    fn new(
        send: [u8; 32],
        recv: [u8; 32],
        index: u64,
        peer_index: u64,
        peer: Peer,
        started: Timestamp,
    ) -> Self {
        let expires = started.saturating_add(SESSION_LIFETIME).min(peer.delegation_expires);
        Session {
            send: ChaCha20Poly1305::new(&Key::from(send)),
            recv: ChaCha20Poly1305::new(&Key::from(recv)),
            index,
            peer_index,
            next: 0,
            window: ReplayWindow::default(),
            peer,
            expires,
        }
    }

    /// Encrypts `plaintext` as the next message of this session, binding `header` (which the receiver must
    /// pass to [`Session::open`] unchanged).
    pub fn seal(&mut self, now: Timestamp, header: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, DataError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(DataError::TooLarge(plaintext.len()));
        }
        if now >= self.expires || self.next == u64::MAX {
            return Err(DataError::Expired);
        }
        let counter = self.next;
        self.next += 1;
        let mut out = Vec::with_capacity(DATA_OVERHEAD + plaintext.len());
        out.extend_from_slice(&self.peer_index.to_le_bytes());
        out.extend_from_slice(&counter.to_le_bytes());
        out.extend_from_slice(plaintext);
        let ad = associated_data(header, self.peer_index, counter);
        let tag = self
            .send
            .encrypt_in_place_detached(&nonce(counter), &ad, &mut out[16..])
            .map_err(|_| DataError::TooLarge(plaintext.len()))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Decrypts a message the peer sealed with the same `header`; each counter is accepted once.
    pub fn open(&mut self, now: Timestamp, header: &[u8], message: &[u8]) -> Result<Vec<u8>, DataError> {
        if message.len() < DATA_OVERHEAD || message.len() > DATA_OVERHEAD + MAX_PLAINTEXT {
            return Err(DataError::Malformed);
        }
        if data_index(message) != Some(self.index) {
            return Err(DataError::WrongSession);
        }
        if now >= self.expires {
            return Err(DataError::Expired);
        }
        let counter = u64::from_le_bytes(message[8..16].try_into().map_err(|_| DataError::Malformed)?);
        self.window.check(counter)?;
        let (body, tag) = message[16..].split_at(message.len() - DATA_OVERHEAD);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| DataError::Malformed)?;
        let mut plaintext = body.to_vec();
        let ad = associated_data(header, self.index, counter);
        self.recv
            .decrypt_in_place_detached(&nonce(counter), &ad, &mut plaintext, &Tag::from(tag))
            .map_err(|_| DataError::Decrypt)?;
        // Only a message that decrypted moves the window: a forger cannot push honest counters out of it.
        self.window.accept(counter);
        Ok(plaintext)
    }

    /// The peer's index: our messages in this session carry it first.
    pub fn peer_index(&self) -> u64 {
        self.peer_index
    }

    /// Our index: session messages for this session carry it first.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The other end.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// When the session stops sealing and opening.
    pub fn expires(&self) -> Timestamp {
        self.expires
    }

    /// Messages sealed so far.
    pub fn sent(&self) -> u64 {
        self.next
    }
}

/// The receiver's index a session message is addressed to (its first 8 bytes): how the receiver finds the
/// session. `None` if the message is too short to be one.
pub fn data_index(message: &[u8]) -> Option<u64> {
    let index: [u8; 8] = message.get(..8)?.try_into().ok()?;
    (message.len() >= DATA_OVERHEAD).then(|| u64::from_le_bytes(index))
}

/// The counter of a session message (its bytes 8 to 16): which message of its session it is. `None` if the
/// message is too short to be one.
pub fn data_counter(message: &[u8]) -> Option<u64> {
    let counter: [u8; 8] = message.get(8..16)?.try_into().ok()?;
    (message.len() >= DATA_OVERHEAD).then(|| u64::from_le_bytes(counter))
}

/// Which counters a session accepted: the highest, and a bit per counter in the window below it.
#[derive(Debug, Default)]
struct ReplayWindow {
    /// One more than the highest counter accepted (0: none yet).
    top: u64,
    /// Bit `c % REPLAY_WINDOW` is set when counter `c` (within the window) was accepted.
    bits: [u64; (REPLAY_WINDOW / 64) as usize],
}

impl ReplayWindow {
    fn check(&self, counter: u64) -> Result<(), DataError> {
        if counter >= self.top {
            return Ok(());
        }
        if self.top - counter > REPLAY_WINDOW {
            return Err(DataError::TooOld);
        }
        if self.bit(counter) {
            return Err(DataError::Replay);
        }
        Ok(())
    }

    fn accept(&mut self, counter: u64) {
        if counter >= self.top {
            // Clear the bits of the counters the window moves past (at most the whole window).
            let skipped = (counter - self.top).min(REPLAY_WINDOW);
            for c in counter - skipped..counter {
                self.set(c, false);
            }
            self.top = counter + 1;
        }
        self.set(counter, true);
    }

    fn bit(&self, counter: u64) -> bool {
        let slot = counter % REPLAY_WINDOW;
        self.bits[(slot / 64) as usize] & (1 << (slot % 64)) != 0
    }

    fn set(&mut self, counter: u64, on: bool) {
        let slot = counter % REPLAY_WINDOW;
        let word = &mut self.bits[(slot / 64) as usize];
        if on {
            *word |= 1 << (slot % 64);
        } else {
            *word &= !(1 << (slot % 64));
        }
    }
}

fn prologue(initiator: &SessionPublicKey, responder: &SessionPublicKey) -> Vec<u8> {
    let mut p = Vec::with_capacity(PROLOGUE_DOMAIN.len() + 66);
    p.extend_from_slice(PROLOGUE_DOMAIN);
    p.extend_from_slice(initiator.as_bytes());
    p.extend_from_slice(responder.as_bytes());
    p
}

fn binding_input(static_key: &StaticPublic) -> Vec<u8> {
    let mut input = Vec::with_capacity(BINDING_DOMAIN.len() + 32);
    input.extend_from_slice(BINDING_DOMAIN);
    input.extend_from_slice(&static_key.0);
    input
}

fn associated_data(header: &[u8], index: u64, counter: u64) -> Vec<u8> {
    let mut ad = Vec::with_capacity(DATA_DOMAIN.len() + header.len() + 16);
    ad.extend_from_slice(DATA_DOMAIN);
    ad.extend_from_slice(header);
    ad.extend_from_slice(&index.to_le_bytes());
    ad.extend_from_slice(&counter.to_le_bytes());
    ad
}

/// Noise's ChaChaPoly nonce: 32 zero bits, then the counter little-endian.
fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::from(n)
}

/// A snow builder whose randomness (the ephemeral key) is drawn from `rng`: a seeded run stays reproducible.
fn builder<'a>(rng: &mut impl CryptoRngCore) -> snow::Builder<'a> {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let params: NoiseParams = NOISE_PARAMS.parse().expect("the protocol name is valid");
    snow::Builder::with_resolver(params, Box::new(Seeded(seed)))
}

/// Failures of snow's own setup cannot come from a peer (the keys and lengths are ours): they would be a bug.
fn internal(e: snow::Error) -> HandshakeError {
    debug_assert!(false, "snow setup failed: {e}");
    HandshakeError::Decrypt
}

fn x25519() -> Box<dyn Dh> {
    DefaultResolver.resolve_dh(&DHChoice::Curve25519).expect("curve25519 is built in")
}

/// snow's primitives, with randomness from a seed the caller's RNG drew.
struct Seeded([u8; 32]);

impl CryptoResolver for Seeded {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRng(ChaCha20Rng::from_seed(self.0))))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

struct SeededRng(ChaCha20Rng);

impl Random for SeededRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::delegation::{delegation_message, DelegationRequest, DEFAULT_DELEGATION_LIFETIME};
    use crate::identity::wallet::WalletKey;

    const T0: Timestamp = Timestamp(1_800_000_000_000);
    const NET: &str = "test";

    struct Side {
        key: SessionKey,
        wallet: Address,
        creds: Credentials,
    }

    fn side(seed: u64) -> Side {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let key = SessionKey::generate(&mut rng);
        let wallet = WalletKey::generate(&mut rng);
        let req = DelegationRequest::new("test.local", wallet.address(), 1, NET);
        let delegation = Delegation::sign(&delegation_message(key.public(), &req, T0, &mut rng), &wallet);
        let creds = Credentials::new(&key, delegation);
        Side { key, wallet: wallet.address(), creds }
    }

    /// What the initiator knows of `s` from its presence record.
    fn peer_of(s: &Side) -> Peer {
        Peer {
            session: *s.key.public(),
            static_key: *s.creds.static_public(),
            wallet: s.wallet,
            delegation_expires: T0.saturating_add(DEFAULT_DELEGATION_LIFETIME),
        }
    }

    fn cache() -> DelegationCache {
        DelegationCache::new(16)
    }

    /// What a responder does with a hello: accept it, answer with a welcome carrying `reply`.
    struct Answered {
        session: Session,
        welcome: Vec<u8>,
        data: Vec<u8>,
    }

    fn answer(
        rng: &mut ChaCha20Rng,
        me: &Credentials,
        from: &SessionPublicKey,
        now: Timestamp,
        hello: &[u8],
        reply: &[u8],
    ) -> Result<Answered, HandshakeError> {
        let responding = accept(rng, me, from, NET, &mut cache(), now, hello)?;
        let data = responding.data().to_vec();
        let (session, welcome) = responding.welcome(rng, reply)?;
        Ok(Answered { session, welcome, data })
    }

    /// A finished handshake: (initiator's session, responder's session).
    fn pair(a: &Side, b: &Side, rng: &mut ChaCha20Rng) -> (Session, Session) {
        let (init, hello) = Initiating::start(rng, &a.creds, peer_of(b), T0, b"").unwrap();
        let acc = answer(rng, &b.creds, a.key.public(), T0, &hello, b"").unwrap();
        let (sa, _) = init.finish(&acc.welcome).unwrap();
        (sa, acc.session)
    }

    #[test]
    fn a_handshake_proves_both_ends_and_carries_data_both_ways() {
        let (a, b) = (side(1), side(2));
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (init, hello) = Initiating::start(&mut rng, &a.creds, peer_of(&b), T0, b"first").unwrap();
        let acc = answer(&mut rng, &b.creds, a.key.public(), T0, &hello, b"reply").unwrap();
        assert_eq!(acc.data, b"first");
        let them = acc.session.peer();
        assert_eq!((them.session, them.wallet), (*a.key.public(), a.wallet));
        assert_eq!(them.static_key, *a.creds.static_public());
        let (mut sa, reply) = init.finish(&acc.welcome).unwrap();
        assert_eq!(reply, b"reply");
        let mut sb = acc.session;

        for i in 0..3u8 {
            let m = sa.seal(T0, b"hdr", &[i; 1024]).unwrap();
            assert_eq!(m.len(), 1024 + DATA_OVERHEAD);
            assert_eq!(data_index(&m), Some(sb.index()));
            assert_eq!(sb.open(T0, b"hdr", &m).unwrap(), vec![i; 1024]);
            let back = sb.seal(T0, b"", &[i]).unwrap();
            assert_eq!(data_index(&back), Some(sa.index()));
            assert_eq!(sa.open(T0, b"", &back).unwrap(), vec![i]);
        }
        assert_eq!((sa.sent(), sb.sent()), (3, 3));
    }

    #[test]
    fn the_header_and_the_direction_are_bound() {
        let (a, b) = (side(1), side(2));
        let (mut sa, mut sb) = pair(&a, &b, &mut ChaCha20Rng::seed_from_u64(4));
        let m = sa.seal(T0, b"route A", b"x").unwrap();
        assert_eq!(sb.open(T0, b"route B", &m), Err(DataError::Decrypt));
        // A's own message reflected back to A is for another index, and under the other key.
        assert_eq!(sa.open(T0, b"route A", &m), Err(DataError::WrongSession));
        let mut reflected = m.clone();
        reflected[..8].copy_from_slice(&sa.index().to_le_bytes());
        assert_eq!(sa.open(T0, b"route A", &reflected), Err(DataError::Decrypt));
        for i in [8, 16, m.len() - 1] {
            let mut bad = m.clone();
            bad[i] ^= 1;
            assert_eq!(sb.open(T0, b"route A", &bad), Err(DataError::Decrypt), "flip at {i}");
        }
        // None of the failures used the counter up.
        assert_eq!(sb.open(T0, b"route A", &m).unwrap(), b"x");
        assert_eq!(sb.open(T0, b"route A", &m[..DATA_OVERHEAD - 1]), Err(DataError::Malformed));
    }

    #[test]
    fn counters_are_accepted_once_in_any_order_within_the_window() {
        let (a, b) = (side(1), side(2));
        let (mut sa, mut sb) = pair(&a, &b, &mut ChaCha20Rng::seed_from_u64(5));
        let msgs: Vec<Vec<u8>> =
            (0..REPLAY_WINDOW + 10).map(|i| sa.seal(T0, b"", &i.to_le_bytes()).unwrap()).collect();
        // Late ones first, then an early one still inside the window, then repeats.
        for m in msgs[11..].iter().rev() {
            sb.open(T0, b"", m).unwrap();
        }
        assert_eq!(sb.open(T0, b"", &msgs[11]), Err(DataError::Replay));
        assert_eq!(sb.open(T0, b"", &msgs[REPLAY_WINDOW as usize + 9]), Err(DataError::Replay));
        // The highest is 1033: the window is it and the 1,023 below, so 10 is the oldest still accepted.
        assert_eq!(sb.open(T0, b"", &msgs[10]).unwrap(), 10u64.to_le_bytes());
        assert_eq!(sb.open(T0, b"", &msgs[9]), Err(DataError::TooOld));
    }

    #[test]
    fn a_forged_counter_does_not_move_the_window() {
        let (a, b) = (side(1), side(2));
        let (mut sa, mut sb) = pair(&a, &b, &mut ChaCha20Rng::seed_from_u64(6));
        let honest = sa.seal(T0, b"", b"honest").unwrap();
        let mut forged = honest.clone();
        forged[8..16].copy_from_slice(&(REPLAY_WINDOW * 10).to_le_bytes());
        assert_eq!(sb.open(T0, b"", &forged), Err(DataError::Decrypt));
        assert_eq!(sb.open(T0, b"", &honest).unwrap(), b"honest");
    }

    #[test]
    fn a_session_ends_at_its_lifetime_or_the_peers_delegation() {
        let (a, b) = (side(1), side(2));
        let (mut sa, mut sb) = pair(&a, &b, &mut ChaCha20Rng::seed_from_u64(7));
        assert_eq!(sa.expires(), T0.saturating_add(SESSION_LIFETIME));
        let m = sa.seal(T0, b"", b"x").unwrap();
        let late = sa.expires();
        assert_eq!(sa.seal(late, b"", b"y"), Err(DataError::Expired));
        assert_eq!(sb.open(late, b"", &m), Err(DataError::Expired));

        let mut short = peer_of(&b);
        short.delegation_expires = T0.saturating_add(Duration::from_secs(60));
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let (init, hello) = Initiating::start(&mut rng, &a.creds, short, T0, b"").unwrap();
        let acc = answer(&mut rng, &b.creds, a.key.public(), T0, &hello, b"").unwrap();
        let (sa, _) = init.finish(&acc.welcome).unwrap();
        assert_eq!(sa.expires(), T0.saturating_add(Duration::from_secs(60)));
    }

    #[test]
    fn a_hello_is_refused_unless_it_is_for_me_from_its_origin_and_vouched_for() {
        let (a, b, c) = (side(1), side(2), side(3));
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (_, hello) = Initiating::start(&mut rng, &a.creds, peer_of(&b), T0, b"hi").unwrap();
        let mut respond = |me: &Side, from: &SessionPublicKey, now: Timestamp, hello: &[u8]| {
            answer(&mut rng, &me.creds, from, now, hello, b"").map(|_| ())
        };
        // For another responder, from another origin, tampered or truncated: it does not decrypt.
        assert_eq!(respond(&c, a.key.public(), T0, &hello), Err(HandshakeError::Decrypt));
        assert_eq!(respond(&b, c.key.public(), T0, &hello), Err(HandshakeError::Decrypt));
        for i in [0, 40, hello.len() - 1] {
            let mut bad = hello.clone();
            bad[i] ^= 1;
            assert_eq!(respond(&b, a.key.public(), T0, &bad), Err(HandshakeError::Decrypt), "flip at {i}");
        }
        assert_eq!(respond(&b, a.key.public(), T0, &hello[..hello.len() - 1]), Err(HandshakeError::Decrypt));
        assert_eq!(respond(&b, a.key.public(), T0, &vec![0; NOISE_MAX + 1]), Err(HandshakeError::TooLarge));
        // After A's delegation expired.
        let expired = T0.saturating_add(DEFAULT_DELEGATION_LIFETIME);
        assert!(matches!(respond(&b, a.key.public(), expired, &hello), Err(HandshakeError::Delegation(_))));
        assert_eq!(respond(&b, a.key.public(), T0, &hello), Ok(()));
    }

    #[test]
    fn a_static_key_not_signed_by_the_session_or_a_delegation_for_another_session_is_refused() {
        let (a, b, c) = (side(1), side(2), side(3));
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        // A shows C's binding for its own static key.
        let forged =
            Credentials { binding: c.creds.binding, ..Credentials::new(&a.key, a.creds.delegation.clone()) };
        let (_, hello) = Initiating::start(&mut rng, &forged, peer_of(&b), T0, b"").unwrap();
        let got = answer(&mut rng, &b.creds, a.key.public(), T0, &hello, b"");
        assert_eq!(got.map(|_| ()), Err(HandshakeError::BadBinding));
        // A shows C's delegation (the binding is A's own and valid).
        let borrowed = Credentials::new(&a.key, c.creds.delegation.clone());
        let (_, hello) = Initiating::start(&mut rng, &borrowed, peer_of(&b), T0, b"").unwrap();
        let got = answer(&mut rng, &b.creds, a.key.public(), T0, &hello, b"");
        assert_eq!(got.map(|_| ()), Err(HandshakeError::SessionMismatch));
    }

    #[test]
    fn a_valid_noise_message_with_a_junk_payload_is_malformed() {
        let (a, b) = (side(1), side(2));
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let prologue = prologue(a.key.public(), b.key.public());
        let mut state = builder(&mut rng)
            .local_private_key(&a.creds.static_key.secret)
            .and_then(|x| x.remote_public_key(&b.creds.static_public().0))
            .and_then(|x| x.prologue(&prologue))
            .and_then(|x| x.build_initiator())
            .unwrap();
        let mut hello = vec![0u8; NOISE_MAX];
        let len = state.write_message(b"\xff\xff junk", &mut hello).unwrap();
        let got = answer(&mut rng, &b.creds, a.key.public(), T0, &hello[..len], b"");
        assert_eq!(got.map(|_| ()), Err(HandshakeError::Malformed));
    }

    #[test]
    fn a_welcome_only_finishes_its_own_handshake() {
        let (a, b) = (side(1), side(2));
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let (first, _) = Initiating::start(&mut rng, &a.creds, peer_of(&b), T0, b"").unwrap();
        let (_, hello2) = Initiating::start(&mut rng, &a.creds, peer_of(&b), T0, b"").unwrap();
        let acc = answer(&mut rng, &b.creds, a.key.public(), T0, &hello2, b"").unwrap();
        assert_eq!(first.finish(&acc.welcome).map(|_| ()), Err(HandshakeError::Decrypt));
        let (again, hello3) = Initiating::start(&mut rng, &a.creds, peer_of(&b), T0, b"").unwrap();
        let acc = answer(&mut rng, &b.creds, a.key.public(), T0, &hello3, b"").unwrap();
        let mut bad = acc.welcome.clone();
        bad[0] ^= 1;
        assert_eq!(again.finish(&bad).map(|_| ()), Err(HandshakeError::Decrypt));
    }

    #[test]
    fn data_too_large_for_a_handshake_or_a_message_is_the_callers_error() {
        let (a, b) = (side(1), side(2));
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let big = vec![0u8; MAX_HANDSHAKE_DATA + 1];
        let got = Initiating::start(&mut rng, &a.creds, peer_of(&b), T0, &big).map(|_| ());
        assert_eq!(got, Err(HandshakeError::DataTooLarge(big.len())));
        // The largest data fits one Noise message with the longest delegation there is.
        let most = vec![0u8; MAX_HANDSHAKE_DATA];
        let (init, hello) = Initiating::start(&mut rng, &a.creds, peer_of(&b), T0, &most).unwrap();
        assert!(hello.len() + crate::identity::siwe::MAX_MESSAGE_LEN <= NOISE_MAX);
        let acc = answer(&mut rng, &b.creds, a.key.public(), T0, &hello, &most).unwrap();
        let (mut sa, _) = init.finish(&acc.welcome).unwrap();
        let too_big = vec![0u8; MAX_PLAINTEXT + 1];
        assert_eq!(sa.seal(T0, b"", &too_big), Err(DataError::TooLarge(too_big.len())));
    }

    #[test]
    fn everything_random_comes_from_the_callers_rng() {
        let (a, b) = (side(1), side(2));
        let hello =
            |seed| Initiating::start(&mut ChaCha20Rng::seed_from_u64(seed), &a.creds, peer_of(&b), T0, b"x");
        assert_eq!(hello(14).unwrap().1, hello(14).unwrap().1);
        assert_ne!(hello(14).unwrap().1, hello(15).unwrap().1);
        // The static key is the session key's, whatever the RNG.
        assert_eq!(StaticKey::derive(&a.key).public(), a.creds.static_public());
        assert_ne!(a.creds.static_public(), b.creds.static_public());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let (a, b) = (side(1), side(2));
            let mut rng = ChaCha20Rng::seed_from_u64(16);
            let got = answer(&mut rng, &b.creds, a.key.public(), T0, &bytes, b"");
            proptest::prop_assert!(got.is_err());
            let (mut sa, mut sb) = pair(&a, &b, &mut rng);
            proptest::prop_assert!(sb.open(T0, b"", &bytes).is_err());
            let (init, _) = Initiating::start(&mut rng, &a.creds, peer_of(&b), T0, b"").unwrap();
            proptest::prop_assert!(init.finish(&bytes).is_err());
            let _ = sa.seal(T0, &bytes, &bytes).unwrap();
        }
    }
}
