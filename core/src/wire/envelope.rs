//! The signed envelope: the one frame format that travels on every link.
//!
//! ```text
//! offset  size  field
//! 0       1     version (1)
//! 1       1     hops taken so far — the only field a relay changes, so it is outside the signature
//! 2       33    origin session public key, compressed SEC1
//! 35      64    ECDSA/SHA-256 signature (low-S) by that key over every byte from offset 99 on
//! 99      …     signed part, postcard: network tag, message id, sent_at, destination, hop limit,
//!               reply-to id, body
//! ```
//!
//! [`decode`] checks the size bound, the version and the signature over the received bytes before it
//! decodes anything else, so an unsigned or tampered frame never reaches the body decoder. A relay
//! forwards the received bytes unchanged except for the hops byte ([`set_hops`]): no re-encoding, no
//! re-signing, and the origin stays provable end to end.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::crypto::{Crypto, REAL};
use crate::id::Id;
use crate::identity::{SessionKey, SessionPublicKey, Signature};
use crate::time::Timestamp;

/// The only envelope version this code speaks.
pub const VERSION: u8 = 1;
/// Bytes before the signed part.
pub const HEADER_LEN: usize = 99;
/// Largest frame accepted or produced, checked before anything is decoded. Large enough for a 64 KiB
/// application payload with its encryption, delegation and routing overhead.
pub const MAX_FRAME: usize = 96 * 1024;
/// Default hop limit for routed messages (a ring of 2^20 nodes needs about 20 greedy hops at worst).
pub const DEFAULT_HOP_LIMIT: u8 = 48;

const OFFSET_HOPS: usize = 1;
const OFFSET_KEY: usize = 2;
const OFFSET_SIG: usize = 35;

/// First 4 bytes of `sha1(network name)`: keeps nodes of different networks from talking by mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkTag(pub [u8; 4]);

impl NetworkTag {
    /// The tag of a network name such as `"chordial-devnet"`.
    pub fn from_name(name: &str) -> Self {
        let h = Id::hash(&[name.as_bytes()]);
        NetworkTag([h.0[0], h.0[1], h.0[2], h.0[3]])
    }
}

/// A message id: a random (version 4) UUID drawn from the node's injected RNG.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A fresh id from the injected RNG.
    pub fn random(rng: &mut impl rand_core::RngCore) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        MessageId(*uuid::Builder::from_random_bytes(bytes).into_uuid().as_bytes())
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({})", hex::encode(&self.0[..6]))
    }
}

/// Where an envelope is going.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination {
    /// The link peer itself; never forwarded.
    Neighbor,
    /// The node with exactly this id; undeliverable if it is not in the ring.
    Node(Id),
    /// Whichever node owns this key (its successor on the ring).
    Key(Id),
    /// The owner of this key as the ring's own links find it: like `Key`, but relays never take the
    /// shortcut of a peer's self-reported range. The node's own maintenance lookups (join, fingers, merge
    /// checks) use it: after a partition or a mass failure, a node of one ring can report a range that is
    /// right in its ring and wrong in the other.
    KeyStrict(Id),
}

/// The signed routing fields of an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Network tag; frames of another network are refused.
    pub network: NetworkTag,
    /// Unique per message; duplicates are suppressed by id.
    pub id: MessageId,
    /// When the origin sent it (origin's clock); checked against the replay window.
    pub sent_at: Timestamp,
    /// Where it goes.
    pub dest: Destination,
    /// Relays drop the envelope once this many hops were taken.
    pub hop_limit: u8,
    /// For a reply: the id of the message it answers. Relays that forwarded that message send the reply
    /// back the way it came (so a node that has not joined yet can still be answered).
    pub reply_to: Option<MessageId>,
}

#[derive(Serialize)]
struct SignedPartRef<'a, B> {
    header: &'a Header,
    body: &'a B,
}

#[derive(Deserialize)]
struct SignedPart<B> {
    header: Header,
    body: B,
}

/// A frame that passed every check: its origin signed exactly these bytes.
#[derive(Debug, Clone)]
pub struct Received<B> {
    /// The origin's session key (its node id is `origin.node_id()`).
    pub origin: SessionPublicKey,
    /// Hops taken before this node received it.
    pub hops: u8,
    /// The routing fields.
    pub header: Header,
    /// The decoded body.
    pub body: B,
}

/// Why a frame could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded frame would exceed [`MAX_FRAME`]; the caller must split or refuse it.
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// The body could not be serialized (a bug in a body type, not a peer's fault).
    #[error("body could not be encoded: {0}")]
    Body(String),
}

/// Why a received frame was refused. Every variant is a peer's fault (or corruption); none is a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the fixed header plus an empty signed part.
    #[error("frame truncated ({0} bytes)")]
    Truncated(usize),
    /// Longer than [`MAX_FRAME`]; refused before anything was decoded.
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// A version this node does not speak.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// The origin key is not a valid secp256k1 point.
    #[error("invalid origin key")]
    BadKey,
    /// The signature does not match the signed bytes and origin key.
    #[error("bad signature")]
    BadSignature,
    /// The signed part is not a valid encoding (or has trailing bytes).
    #[error("malformed signed part")]
    Malformed,
    /// The frame belongs to another network.
    #[error("frame for another network")]
    WrongNetwork,
    /// More hops were taken than the origin allowed.
    #[error("hop limit exceeded")]
    HopLimitExceeded,
}

/// Builds and signs a frame with hops = 0.
pub fn encode<B: Serialize>(key: &SessionKey, header: &Header, body: &B) -> Result<Vec<u8>, EncodeError> {
    let mut frame = vec![0u8; HEADER_LEN];
    let signed = postcard::to_extend(&SignedPartRef { header, body }, frame)
        .map_err(|e| EncodeError::Body(e.to_string()))?;
    frame = signed;
    if frame.len() > MAX_FRAME {
        return Err(EncodeError::TooLarge(frame.len()));
    }
    let sig = key.sign(&frame[HEADER_LEN..]);
    frame[0] = VERSION;
    frame[OFFSET_HOPS] = 0;
    frame[OFFSET_KEY..OFFSET_SIG].copy_from_slice(key.public().as_bytes());
    frame[OFFSET_SIG..HEADER_LEN].copy_from_slice(&sig.0);
    Ok(frame)
}

/// Checks and decodes a received frame: size, version, signature, then the signed part.
pub fn decode<B: DeserializeOwned>(bytes: &[u8], network: NetworkTag) -> Result<Received<B>, DecodeError> {
    decode_with(&REAL, bytes, network)
}

/// [`decode`], verifying the signature through `crypto`.
pub fn decode_with<B: DeserializeOwned>(
    crypto: &dyn Crypto,
    bytes: &[u8],
    network: NetworkTag,
) -> Result<Received<B>, DecodeError> {
    let origin = verify_with(crypto, bytes)?;
    let signed = &bytes[HEADER_LEN..];
    let (part, rest): (SignedPart<B>, _) =
        postcard::take_from_bytes(signed).map_err(|_| DecodeError::Malformed)?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed);
    }
    if part.header.network != network {
        return Err(DecodeError::WrongNetwork);
    }
    let hops = bytes[OFFSET_HOPS];
    if hops > part.header.hop_limit {
        return Err(DecodeError::HopLimitExceeded);
    }
    Ok(Received { origin, hops, header: part.header, body: part.body })
}

/// What a relay reads of a frame it forwards: the routing fields, **without** the signature check.
#[derive(Debug, Clone, Copy)]
pub struct Routing {
    /// The node id the frame claims as its origin (`sha1` of the origin key bytes, or a session frame's
    /// `from`); proven only by [`decode`] or [`verify`], or by the destination's session.
    pub origin: Id,
    /// Hops taken before this node received it.
    pub hops: u8,
    /// The routing fields (of a session frame: its [`content_id`] as the id, no `reply_to`).
    pub header: Header,
    /// Signed, or a session frame.
    pub kind: FrameKind,
}

/// Reads the routing fields of a frame for forwarding: size, version, network and hop limit are checked,
/// the signature is **not** (see `docs/protocol.md`, "Who verifies"). The destination verifies with
/// [`decode`]; a relay that must act on the origin's behalf (an undeliverable notice) verifies first with
/// [`verify`].
pub fn decode_routing(bytes: &[u8], network: NetworkTag) -> Result<Routing, DecodeError> {
    if bytes.first() == Some(&SESSION_VERSION) {
        let (session, hops, _) = decode_session(bytes, network)?;
        let header = Header {
            network,
            id: content_id(bytes),
            sent_at: session.sent_at,
            dest: Destination::Node(session.dest),
            hop_limit: session.hop_limit,
            reply_to: None,
        };
        return Ok(Routing { origin: session.from, hops, header, kind: FrameKind::Session });
    }
    check_frame(bytes)?;
    let (header, _body): (Header, _) =
        postcard::take_from_bytes(&bytes[HEADER_LEN..]).map_err(|_| DecodeError::Malformed)?;
    if header.network != network {
        return Err(DecodeError::WrongNetwork);
    }
    let hops = bytes[OFFSET_HOPS];
    if hops > header.hop_limit {
        return Err(DecodeError::HopLimitExceeded);
    }
    Ok(Routing { origin: Id::hash(&[&bytes[OFFSET_KEY..OFFSET_SIG]]), hops, header, kind: FrameKind::Signed })
}

/// Checks only the origin's signature over a frame's signed part.
pub fn verify(bytes: &[u8]) -> Result<(), DecodeError> {
    verify_with(&REAL, bytes).map(|_| ())
}

/// [`verify`] through `crypto`; returns the origin key that signed.
pub fn verify_with(crypto: &dyn Crypto, bytes: &[u8]) -> Result<SessionPublicKey, DecodeError> {
    check_frame(bytes)?;
    let mut key = [0u8; 33];
    key.copy_from_slice(&bytes[OFFSET_KEY..OFFSET_SIG]);
    let origin = crypto.public_key(&key).map_err(|_| DecodeError::BadKey)?;
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&bytes[OFFSET_SIG..HEADER_LEN]);
    crypto.verify(&origin, &bytes[HEADER_LEN..], &Signature(sig)).map_err(|_| DecodeError::BadSignature)?;
    Ok(origin)
}

fn check_frame(bytes: &[u8]) -> Result<(), DecodeError> {
    check_size_and_version(bytes, VERSION, HEADER_LEN)
}

/// The checks every frame passes before anything is decoded: at most [`MAX_FRAME`] bytes, more than its
/// fixed header (`header_len`), and the `version` expected.
fn check_size_and_version(bytes: &[u8], version: u8, header_len: usize) -> Result<(), DecodeError> {
    if bytes.len() > MAX_FRAME {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    if bytes.len() <= header_len {
        return Err(DecodeError::Truncated(bytes.len()));
    }
    if bytes[0] != version {
        return Err(DecodeError::UnsupportedVersion(bytes[0]));
    }
    Ok(())
}

/// Decodes a frame's routing fields and body **without checking its signature**: for observers (metrics,
/// logs, tests that watch the wire), never for decisions. `None` if the bytes are not a well-formed frame.
pub fn peek<B: DeserializeOwned>(bytes: &[u8]) -> Option<(Header, B)> {
    check_frame(bytes).ok()?;
    let (part, rest): (SignedPart<B>, _) = postcard::take_from_bytes(&bytes[HEADER_LEN..]).ok()?;
    rest.is_empty().then_some((part.header, part.body))
}

// ---------------------------------------------------------------------------------------------------
// Session frames: unsigned, their body authenticated end to end by a session's AEAD
// ---------------------------------------------------------------------------------------------------

/// The version byte of a session frame.
///
/// ```text
/// offset  size  field
/// 0       1     version (2)
/// 1       1     hops taken so far (as in a signed envelope)
/// 2       …     postcard: SessionHeader (network tag, sent_at, destination node, hop limit, sender node), then
///               the session message (index ‖ counter ‖ ciphertext ‖ tag, `e2e::session`)
/// ```
///
/// Nobody signs it: the destination authenticates it by opening the session message, whose associated data
/// binds the header ([`SessionHeader::associated_data`]). Relays cannot tell who made it, so it has no
/// message id of its own that anyone could quote: its id ([`Routing::header`]`.id`) is the hash of its bytes
/// after the hops byte ([`content_id`]), and a frame that names another frame's id cannot exist. It is never
/// a reply (`reply_to` is `None`) and always goes to a node (`Destination::Node`).
pub const SESSION_VERSION: u8 = 2;
const SESSION_START: usize = 2;

/// The routing fields of a session frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionHeader {
    /// Network tag; frames of another network are refused.
    pub network: NetworkTag,
    /// When the sender sent it (its clock); checked against the replay window like a signed frame's.
    pub sent_at: Timestamp,
    /// The node it goes to.
    pub dest: Id,
    /// Relays drop the frame once this many hops were taken.
    pub hop_limit: u8,
    /// The node that claims to have sent it: proven only by the session message opening, and used before
    /// that only to tell the sender that a session is unknown here.
    pub from: Id,
}

impl SessionHeader {
    /// What the session message binds of the header: everything but the hop limit (which only relays read).
    pub fn associated_data(&self) -> [u8; 52] {
        let mut ad = [0u8; 52];
        ad[..4].copy_from_slice(&self.network.0);
        ad[4..12].copy_from_slice(&self.sent_at.0.to_le_bytes());
        ad[12..32].copy_from_slice(&self.dest.0);
        ad[32..].copy_from_slice(&self.from.0);
        ad
    }
}

/// What kind of frame an envelope is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// A signed envelope (version 1): its origin is proven by [`decode`] or [`verify`].
    Signed,
    /// A session frame (version 2): unsigned; only the destination's session can authenticate it.
    Session,
}

/// Builds a session frame with hops = 0.
pub fn encode_session(header: &SessionHeader, message: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let frame = vec![SESSION_VERSION, 0];
    let frame =
        postcard::to_extend(&(header, message), frame).map_err(|e| EncodeError::Body(e.to_string()))?;
    if frame.len() > MAX_FRAME {
        return Err(EncodeError::TooLarge(frame.len()));
    }
    Ok(frame)
}

/// Checks and decodes a received session frame: size, version, network, hop limit; the header and the session
/// message (not opened: that is the destination's session's work).
pub fn decode_session(bytes: &[u8], network: NetworkTag) -> Result<(SessionHeader, u8, &[u8]), DecodeError> {
    check_size_and_version(bytes, SESSION_VERSION, SESSION_START)?;
    let ((header, message), rest): ((SessionHeader, &[u8]), _) =
        postcard::take_from_bytes(&bytes[SESSION_START..]).map_err(|_| DecodeError::Malformed)?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed);
    }
    if header.network != network {
        return Err(DecodeError::WrongNetwork);
    }
    let hops = bytes[OFFSET_HOPS];
    if hops > header.hop_limit {
        return Err(DecodeError::HopLimitExceeded);
    }
    Ok((header, hops, message))
}

/// Decodes a session frame's header and session message **without** any check but its form: for observers
/// (logs, tests that watch the wire), never for decisions. `None` if the bytes are not a session frame.
pub fn peek_session(bytes: &[u8]) -> Option<(SessionHeader, &[u8])> {
    check_size_and_version(bytes, SESSION_VERSION, SESSION_START).ok()?;
    let (part, rest) = postcard::take_from_bytes::<(SessionHeader, &[u8])>(&bytes[SESSION_START..]).ok()?;
    rest.is_empty().then_some(part)
}

/// A session frame's id: the first 16 bytes of SHA-256 over everything after its hops byte. Two frames share
/// it only if they are the same frame.
pub fn content_id(bytes: &[u8]) -> MessageId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes.get(SESSION_START..).unwrap_or_default());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    MessageId(id)
}

/// The kind of a frame by its version byte, if it is one this node speaks.
pub fn kind(bytes: &[u8]) -> Option<FrameKind> {
    match bytes.first() {
        Some(&VERSION) => Some(FrameKind::Signed),
        Some(&SESSION_VERSION) => Some(FrameKind::Session),
        _ => None,
    }
}

/// Reads the hops byte of a frame, if it has one.
pub fn hops(frame: &[u8]) -> Option<u8> {
    frame.get(OFFSET_HOPS).copied()
}

/// Rewrites the hops byte of a frame before forwarding it (the signature does not cover it).
pub fn set_hops(frame: &mut [u8], hops: u8) {
    if let Some(b) = frame.get_mut(OFFSET_HOPS) {
        *b = hops;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum TestBody {
        Ping(u64),
        Data(Vec<u8>),
    }

    fn setup() -> (SessionKey, Header) {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let key = SessionKey::generate(&mut rng);
        let header = Header {
            network: NetworkTag::from_name("test"),
            id: MessageId::random(&mut rng),
            sent_at: Timestamp(1_700_000_000_000),
            dest: Destination::Key(Id::hash(&[b"k"])),
            hop_limit: DEFAULT_HOP_LIMIT,
            reply_to: None,
        };
        (key, header)
    }

    #[test]
    fn round_trip_and_relay_hops() {
        let (key, header) = setup();
        let mut frame = encode(&key, &header, &TestBody::Ping(7)).unwrap();
        let got: Received<TestBody> = decode(&frame, header.network).unwrap();
        assert_eq!(got.header, header);
        assert_eq!(got.body, TestBody::Ping(7));
        assert_eq!(got.origin.node_id(), key.node_id());
        assert_eq!(got.hops, 0);
        set_hops(&mut frame, 3);
        let got: Received<TestBody> = decode(&frame, header.network).unwrap();
        assert_eq!(got.hops, 3);
        set_hops(&mut frame, header.hop_limit + 1);
        assert_eq!(decode::<TestBody>(&frame, header.network).unwrap_err(), DecodeError::HopLimitExceeded);
    }

    #[test]
    fn refuses_what_it_must() {
        let (key, header) = setup();
        let frame = encode(&key, &header, &TestBody::Data(vec![1, 2, 3])).unwrap();
        assert_eq!(
            decode::<TestBody>(&frame, NetworkTag::from_name("other")).unwrap_err(),
            DecodeError::WrongNetwork
        );
        let mut bad = frame.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(decode::<TestBody>(&bad, header.network).unwrap_err(), DecodeError::BadSignature);
        let mut bad = frame.clone();
        bad[0] = 9;
        assert_eq!(decode::<TestBody>(&bad, header.network).unwrap_err(), DecodeError::UnsupportedVersion(9));
        let mut bad = frame.clone();
        bad[2] = 9;
        assert_eq!(decode::<TestBody>(&bad, header.network).unwrap_err(), DecodeError::BadKey);
        assert_eq!(decode::<TestBody>(&frame[..50], header.network).unwrap_err(), DecodeError::Truncated(50));
        let huge = vec![1u8; MAX_FRAME + 1];
        assert_eq!(
            decode::<TestBody>(&huge, header.network).unwrap_err(),
            DecodeError::TooLarge(MAX_FRAME + 1)
        );
        // Trailing bytes inside the signed part, properly signed, are still refused.
        let mut extended = frame.clone();
        extended.push(0);
        let sig = key.sign(&extended[HEADER_LEN..]);
        extended[OFFSET_SIG..HEADER_LEN].copy_from_slice(&sig.0);
        assert_eq!(decode::<TestBody>(&extended, header.network).unwrap_err(), DecodeError::Malformed);
        assert!(matches!(
            encode(&key, &header, &TestBody::Data(vec![0; MAX_FRAME])),
            Err(EncodeError::TooLarge(_))
        ));
    }

    #[test]
    fn relays_read_routing_fields_without_the_signature() {
        let (key, header) = setup();
        let mut frame = encode(&key, &header, &TestBody::Data(vec![4, 5, 6])).unwrap();
        set_hops(&mut frame, 2);
        let r = decode_routing(&frame, header.network).unwrap();
        assert_eq!((r.header, r.hops, r.origin), (header, 2, key.node_id()));
        assert_eq!(verify(&frame), Ok(()));

        // An altered body still routes (relays do not check), but neither verify nor decode accepts it.
        let mut altered = frame.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(decode_routing(&altered, header.network).unwrap().header, header);
        assert_eq!(verify(&altered), Err(DecodeError::BadSignature));
        assert_eq!(decode::<TestBody>(&altered, header.network).unwrap_err(), DecodeError::BadSignature);

        // What relays do check.
        assert_eq!(
            decode_routing(&frame, NetworkTag::from_name("other")).unwrap_err(),
            DecodeError::WrongNetwork
        );
        set_hops(&mut frame, header.hop_limit + 1);
        assert_eq!(decode_routing(&frame, header.network).unwrap_err(), DecodeError::HopLimitExceeded);
        assert_eq!(
            decode_routing(&frame[..HEADER_LEN], header.network).unwrap_err(),
            DecodeError::Truncated(99)
        );
        let mut bad = frame.clone();
        bad[0] = 9;
        assert_eq!(decode_routing(&bad, header.network).unwrap_err(), DecodeError::UnsupportedVersion(9));
        assert_eq!(
            decode_routing(&[vec![VERSION; HEADER_LEN], vec![0xff; 8]].concat(), header.network).unwrap_err(),
            DecodeError::Malformed
        );
        let mut bad_key = encode(&key, &header, &TestBody::Ping(1)).unwrap();
        bad_key[2] = 9;
        assert_eq!(verify(&bad_key), Err(DecodeError::BadKey));
    }

    fn session_header() -> SessionHeader {
        SessionHeader {
            network: NetworkTag::from_name("test"),
            sent_at: Timestamp(1_700_000_000_000),
            dest: Id::hash(&[b"to"]),
            hop_limit: DEFAULT_HOP_LIMIT,
            from: Id::hash(&[b"from"]),
        }
    }

    #[test]
    fn session_frames_route_by_their_header_and_are_named_by_their_bytes() {
        let header = session_header();
        let message = vec![7u8; 300];
        let mut frame = encode_session(&header, &message).unwrap();
        assert_eq!(kind(&frame), Some(FrameKind::Session));
        let (got, hops, body) = decode_session(&frame, header.network).unwrap();
        assert_eq!((got, hops, body), (header, 0, &message[..]));
        let routing = decode_routing(&frame, header.network).unwrap();
        assert_eq!(routing.kind, FrameKind::Session);
        assert_eq!(routing.origin, header.from);
        assert_eq!(routing.header.dest, Destination::Node(header.dest));
        assert_eq!(routing.header.reply_to, None);
        let id = content_id(&frame);
        assert_eq!(routing.header.id, id);

        // Relays change the hops byte only, and the id stays; any other byte changed is another frame.
        set_hops(&mut frame, 5);
        assert_eq!(content_id(&frame), id);
        assert_eq!(decode_routing(&frame, header.network).unwrap().hops, 5);
        let mut other = frame.clone();
        *other.last_mut().unwrap() ^= 1;
        assert_ne!(content_id(&other), id);
        let moved = encode_session(&SessionHeader { sent_at: Timestamp(1), ..header }, &message).unwrap();
        assert_ne!(content_id(&moved), id);
        // The associated data binds everything but the hop limit.
        let ad = header.associated_data();
        assert_eq!(SessionHeader { hop_limit: 3, ..header }.associated_data(), ad);
        for changed in [
            SessionHeader { sent_at: Timestamp(2), ..header },
            SessionHeader { dest: Id::hash(&[b"x"]), ..header },
            SessionHeader { from: Id::hash(&[b"x"]), ..header },
            SessionHeader { network: NetworkTag::from_name("other"), ..header },
        ] {
            assert_ne!(changed.associated_data(), ad);
        }
        // A signed frame's checks refuse it, so no relay answers one on its sender's behalf.
        assert_eq!(verify(&frame), Err(DecodeError::UnsupportedVersion(SESSION_VERSION)));
        assert!(peek::<TestBody>(&frame).is_none());
        assert_eq!(peek_session(&frame).map(|(h, _)| h), Some(header));
    }

    #[test]
    fn session_frames_refuse_what_they_must() {
        let header = session_header();
        let mut frame = encode_session(&header, &[1, 2, 3]).unwrap();
        let other = NetworkTag::from_name("other");
        assert_eq!(decode_session(&frame, other).unwrap_err(), DecodeError::WrongNetwork);
        assert_eq!(decode_routing(&frame, other).unwrap_err(), DecodeError::WrongNetwork);
        let mut trailing = frame.clone();
        trailing.push(0);
        assert_eq!(decode_session(&trailing, header.network).unwrap_err(), DecodeError::Malformed);
        assert_eq!(decode_session(&frame[..2], header.network).unwrap_err(), DecodeError::Truncated(2));
        assert_eq!(
            decode_session(&frame[..frame.len() - 1], header.network).unwrap_err(),
            DecodeError::Malformed
        );
        assert!(matches!(encode_session(&header, &vec![0; MAX_FRAME]), Err(EncodeError::TooLarge(_))));
        set_hops(&mut frame, header.hop_limit + 1);
        assert_eq!(decode_session(&frame, header.network).unwrap_err(), DecodeError::HopLimitExceeded);
        assert_eq!(kind(&[9, 0, 0]), None);
    }

    proptest! {
        #[test]
        fn any_body_round_trips(data in proptest::collection::vec(any::<u8>(), 0..4096), n in any::<u64>()) {
            let (key, header) = setup();
            for body in [TestBody::Data(data.clone()), TestBody::Ping(n)] {
                let frame = encode(&key, &header, &body).unwrap();
                let got: Received<TestBody> = decode(&frame, header.network).unwrap();
                prop_assert_eq!(got.body, body);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode::<TestBody>(&bytes, NetworkTag::from_name("test"));
            let _ = decode_routing(&bytes, NetworkTag::from_name("test"));
            let _ = verify(&bytes);
        }

        #[test]
        fn any_flipped_bit_is_refused(pos in 0usize..200, bit in 0u8..8) {
            let (key, header) = setup();
            let mut frame = encode(&key, &header, &TestBody::Data(vec![5; 100])).unwrap();
            let pos = pos % frame.len();
            prop_assume!(pos != OFFSET_HOPS);
            frame[pos] ^= 1 << bit;
            prop_assert!(decode::<TestBody>(&frame, header.network).is_err());
        }
    }
}
