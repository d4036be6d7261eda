//! End-to-end encryption of application messages between wallet holders.
//!
//! ```text
//!  sender                                                                        recipient
//!  InnerMessage ─┐
//!  sender session pubkey, sender delegation, recipient session pubkey ─┐
//!                ├─ postcard ─► body ─ sign("chordial/e2e/v1" ‖ body) ─► sealed plaintext
//!                                 version(1) ‖ signature(64) ‖ body
//!                                                   │ ECIES to the recipient session key
//!                                                   ▼
//!        ephemeral pubkey(65) ‖ nonce(16) ‖ tag(16) ‖ AES-256-GCM(sealed plaintext)   ──►  open()
//! ```
//!
//! **Sign, then encrypt, naming both ends inside.** The signed body names the recipient's session key and
//! wallet, so a recipient cannot re-encrypt a message it received to a third party and pass it off as sent
//! to them (surreptitious forwarding); it carries the sender's session key and the sender's delegation, so
//! the recipient proves `from_wallet` authorised the key that signed. All of it is inside the ciphertext:
//! relays see the envelope's routing fields and an opaque blob whose length is the only thing it leaks.
//!
//! **Encryption** is ECIES over secp256k1 in the `ecies` crate's default format (uncompressed ephemeral key,
//! HKDF-SHA256 over `ephemeral ‖ shared point`, AES-256-GCM with a 16-byte nonce), so `ecies::decrypt` and
//! eciesjs/eciespy open it too. It is written here with k256 (the key agreement, in
//! [`crate::crypto::RealCrypto`]), `hkdf` and `aes-gcm`; the `ecies` crate is only a test dependency that
//! checks the format both ways. The ephemeral key and the nonce are drawn from the RNG passed to [`seal`],
//! not from the OS, so the core stays deterministic under a seeded RNG.
//!
//! **Opening** checks, cheapest first: total size, AEAD decryption, version, structure (strict postcard, no
//! trailing bytes), field bounds, intended recipient session and wallet, the sender's signature, and last
//! the sender's delegation (cached by hash in the [`DelegationCache`], so a known sender costs one hash).
//!
//! What [`open`] does **not** check: freshness and duplicates. The envelope's replay window refuses replays
//! of frames; ordering and de-duplicating delivered messages by `(sender session, seq)` is the node's job. The sender's
//! delegation must be valid at the time of opening (`now`), not at `sent_at`: a message opened after the
//! sender's delegation expired is refused, because an expired delegation must stop vouching for its key.

pub mod session;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce, Tag};

use crate::crypto::CryptoRef;
use crate::identity::address::Address;
use crate::identity::delegation::{Delegation, DelegationCache, DelegationError, VerifiedDelegation};
use crate::identity::{SessionKey, SessionPublicKey, Signature};
use crate::time::Timestamp;

/// Largest application payload, in bytes. Enforced by [`seal`] and by [`open`].
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Largest app origin (e.g. `https://app.example`), in bytes.
pub const MAX_APP_ORIGIN: usize = 256;
/// Largest sender delegation carried inside a message: the longest SIWE text a verifier parses plus the
/// 65-byte wallet signature.
pub const MAX_DELEGATION: usize = crate::identity::siwe::MAX_MESSAGE_LEN + 65;
/// The version byte that starts the sealed plaintext.
pub const VERSION: u8 = 1;
/// Bytes ECIES adds: ephemeral public key (65), nonce (16), tag (16).
pub const ECIES_OVERHEAD: usize = EPHEMERAL_LEN + NONCE_LEN + TAG_LEN;
/// Largest ciphertext [`open`] accepts (and [`seal`] can produce): checked before decrypting, so a peer can
/// make this node allocate at most this much plaintext. Fits the envelope's frame limit with room to spare.
pub const MAX_SEALED: usize =
    ECIES_OVERHEAD + SEALED_PREFIX + MAX_PAYLOAD + MAX_APP_ORIGIN + MAX_DELEGATION + 256;
// A sealed message plus the envelope's header and routing fields must fit one frame.
const _: () = assert!(MAX_SEALED + 1024 < crate::wire::envelope::MAX_FRAME);

/// Signatures cover this prefix and the body, so an e2e signature can never be taken for a signature over
/// some other structure the session key signs (envelopes, records, SDP).
const SIGNING_DOMAIN: &[u8] = b"chordial/e2e/v1";
const EPHEMERAL_LEN: usize = 65;
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// `version ‖ signature` before the body.
const SEALED_PREFIX: usize = 1 + 64;

/// AES-256-GCM with a 16-byte nonce, as the `ecies` crate's default ("pure" feature) uses.
type Aead = AesGcm<Aes256, U16>;

/// The application message as both ends see it. Everything here travels encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerMessage {
    /// The sending wallet; proven by the sender's delegation.
    pub from_wallet: Address,
    /// The receiving wallet; the recipient refuses a message addressed to another wallet.
    pub to_wallet: Address,
    /// The dApp origin that sent it; the recipient delivers it only to the same origin.
    /// At most [`MAX_APP_ORIGIN`] bytes.
    pub app_origin: String,
    /// Per (sender session, recipient) sequence number, for ordering and de-duplication by the node.
    pub seq: u64,
    /// The sender's clock when it sent the message.
    pub sent_at: Timestamp,
    /// The application data, at most [`MAX_PAYLOAD`] bytes.
    pub payload: Vec<u8>,
}

/// A message that passed every check in [`open`].
#[derive(Debug, Clone)]
pub struct Opened {
    /// The message.
    pub inner: InnerMessage,
    /// The session key that signed it (where a reply or receipt goes).
    pub sender_session: SessionPublicKey,
    /// The sender's verified delegation; `sender.wallet == inner.from_wallet` and
    /// `sender.session == sender_session`.
    pub sender: VerifiedDelegation,
}

/// Why [`seal`] refused. These are caller errors (or bugs), never a peer's doing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The payload is longer than [`MAX_PAYLOAD`]; the caller must refuse or split it.
    #[error("payload of {0} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    TooLarge(usize),
    /// The app origin is longer than [`MAX_APP_ORIGIN`].
    #[error("app origin of {0} bytes exceeds the {MAX_APP_ORIGIN}-byte limit")]
    OriginTooLong(usize),
    /// The sender's delegation is larger than [`MAX_DELEGATION`]; no recipient would accept it.
    #[error("delegation of {0} bytes exceeds the {MAX_DELEGATION}-byte limit")]
    DelegationTooLarge(usize),
    /// The recipient key was refused by the ECIES implementation (cannot happen for a key that parsed as a
    /// [`SessionPublicKey`]; kept so a library mismatch is an error, not a panic).
    #[error("recipient key unusable for encryption")]
    InvalidRecipient,
    /// Serialization or AEAD failure (a bug, not an input problem).
    #[error("internal encoding failure")]
    Internal,
}

/// Why [`open`] refused a ciphertext. Every variant is the sender's (or a relay's) fault or corruption:
/// count and drop, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Longer than [`MAX_SEALED`] (refused before decrypting), or a field over its bound after decrypting
    /// (payload over [`MAX_PAYLOAD`], origin over [`MAX_APP_ORIGIN`], delegation over [`MAX_DELEGATION`]).
    #[error("message too large")]
    TooLarge,
    /// Not decryptable with this node's session key: truncated, not a curve point, tampered with, or
    /// encrypted to another key.
    #[error("cannot decrypt")]
    Decrypt,
    /// Decrypted, but starts with a version this node does not speak.
    #[error("unsupported e2e version {0}")]
    UnsupportedVersion(u8),
    /// Decrypted, but the structure does not decode (or has trailing bytes).
    #[error("malformed message")]
    Malformed,
    /// The signature does not verify under the embedded sender session key.
    #[error("bad sender signature")]
    BadSignature,
    /// Signed for another session key: the sender meant another of the recipient's sessions, or someone is
    /// forwarding a message that was sent to them.
    #[error("message was sealed for another session")]
    NotForMe,
    /// Addressed to another wallet than this node's.
    #[error("message is addressed to another wallet")]
    WrongWallet,
    /// The sender's delegation did not verify (bad signature, expired, other network, malformed SIWE…).
    #[error("sender delegation refused: {0}")]
    Delegation(#[from] DelegationError),
    /// The delegation is valid but was signed by another wallet than `from_wallet`.
    #[error("delegation is for another wallet than the claimed sender")]
    SenderWalletMismatch,
    /// The delegation is valid but authorises another session key than the one that signed.
    #[error("message was signed by a session the delegation does not authorise")]
    SenderSessionMismatch,
}

/// The signed structure, borrowed for encoding.
#[derive(Serialize)]
struct BodyRef<'a> {
    sender_session: &'a SessionPublicKey,
    recipient_session: &'a SessionPublicKey,
    delegation: &'a Delegation,
    inner: &'a InnerMessage,
}

/// The signed structure, owned after decoding. Field order must match [`BodyRef`].
#[derive(Deserialize)]
struct Body {
    sender_session: SessionPublicKey,
    recipient_session: SessionPublicKey,
    delegation: Delegation,
    inner: InnerMessage,
}

/// Seals `inner` for one recipient session: sign with `sender`, then encrypt to `recipient`.
///
/// `sender_delegation` must be the delegation from `inner.from_wallet` to `sender`'s key; it is not checked
/// here (the recipient does). `rng` supplies the ECIES ephemeral key and nonce. The result is at most
/// [`MAX_SEALED`] bytes.
pub fn seal(
    rng: &mut impl CryptoRngCore,
    sender: &SessionKey,
    sender_delegation: &Delegation,
    recipient: &SessionPublicKey,
    inner: &InnerMessage,
) -> Result<Vec<u8>, SealError> {
    if inner.payload.len() > MAX_PAYLOAD {
        return Err(SealError::TooLarge(inner.payload.len()));
    }
    if inner.app_origin.len() > MAX_APP_ORIGIN {
        return Err(SealError::OriginTooLong(inner.app_origin.len()));
    }
    let delegation_len = delegation_len(sender_delegation);
    if delegation_len > MAX_DELEGATION {
        return Err(SealError::DelegationTooLarge(delegation_len));
    }
    let body = BodyRef {
        sender_session: sender.public(),
        recipient_session: recipient,
        delegation: sender_delegation,
        inner,
    };
    let mut plaintext = Vec::with_capacity(SEALED_PREFIX + inner.payload.len() + delegation_len + 512);
    plaintext.push(VERSION);
    plaintext.extend_from_slice(&[0u8; 64]);
    let mut plaintext = postcard::to_extend(&body, plaintext).map_err(|_| SealError::Internal)?;
    let signature = sender.sign(&signing_input(&plaintext[SEALED_PREFIX..]));
    plaintext[1..SEALED_PREFIX].copy_from_slice(&signature.0);
    debug_assert!(plaintext.len() + ECIES_OVERHEAD <= MAX_SEALED);
    encrypt(sender.crypto(), rng, recipient, &plaintext)
}

/// Opens a ciphertext addressed to this node: decrypt with `me`, check it was meant for `me` and
/// `my_wallet`, verify the sender's signature and its delegation on `network` at `now`.
///
/// See the [module docs](self) for what is and is not checked.
pub fn open(
    me: &SessionKey,
    my_wallet: &Address,
    network: &str,
    cache: &mut DelegationCache,
    now: Timestamp,
    ciphertext: &[u8],
) -> Result<Opened, OpenError> {
    if ciphertext.len() > MAX_SEALED {
        return Err(OpenError::TooLarge);
    }
    let plaintext = decrypt(me, ciphertext)?;
    let (&version, rest) = plaintext.split_first().ok_or(OpenError::Malformed)?;
    if version != VERSION {
        return Err(OpenError::UnsupportedVersion(version));
    }
    if rest.len() < 64 {
        return Err(OpenError::Malformed);
    }
    let (sig, body_bytes) = rest.split_at(64);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(sig);
    let signature = Signature(signature);

    let body: Body = match postcard::take_from_bytes(body_bytes) {
        Ok((body, [])) => body,
        _ => return Err(OpenError::Malformed),
    };
    if body.inner.payload.len() > MAX_PAYLOAD
        || body.inner.app_origin.len() > MAX_APP_ORIGIN
        || delegation_len(&body.delegation) > MAX_DELEGATION
    {
        return Err(OpenError::TooLarge);
    }
    // The next two are unauthenticated until the signature verifies, but refusing early is the right
    // outcome either way and skips the expensive checks for misdirected traffic.
    if body.recipient_session != *me.public() {
        return Err(OpenError::NotForMe);
    }
    if body.inner.to_wallet != *my_wallet {
        return Err(OpenError::WrongWallet);
    }
    cache
        .crypto()
        .verify(&body.sender_session, &signing_input(body_bytes), &signature)
        .map_err(|_| OpenError::BadSignature)?;
    let sender = cache.verify(&body.delegation, network, now)?;
    if sender.wallet != body.inner.from_wallet {
        return Err(OpenError::SenderWalletMismatch);
    }
    if sender.session != body.sender_session {
        return Err(OpenError::SenderSessionMismatch);
    }
    Ok(Opened { inner: body.inner, sender_session: body.sender_session, sender })
}

/// The bytes a sender signs: domain prefix, then the encoded body.
fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(SIGNING_DOMAIN.len() + body.len());
    input.extend_from_slice(SIGNING_DOMAIN);
    input.extend_from_slice(body);
    input
}

/// Size of a delegation as it is bounded: SIWE text plus a 65-byte signature.
fn delegation_len(d: &Delegation) -> usize {
    d.message.len() + 65
}

/// Seals `plaintext` to `recipient` alone, in the same ECIES format as messages but with no signature or
/// names inside: for a routed body that only its addressee may read, whose contents carry their own
/// signatures (a mailbox entry for its holder, a mailbox acknowledgement for the holder that delivered).
/// Relays see its length. `crypto` is the sealing node's provider ([`crate::crypto::REAL`] in every shell).
pub fn seal_to(
    crypto: CryptoRef,
    rng: &mut impl CryptoRngCore,
    recipient: &SessionPublicKey,
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    encrypt(crypto, rng, recipient, plaintext)
}

/// Opens what [`seal_to`] sealed to `me`: [`OpenError::TooLarge`] above `max` bytes (checked first),
/// [`OpenError::Decrypt`] for anything that is not a ciphertext for this key. The plaintext is the
/// caller's to decode and verify.
pub fn open_sealed(me: &SessionKey, max: usize, ciphertext: &[u8]) -> Result<Vec<u8>, OpenError> {
    if ciphertext.len() > max {
        return Err(OpenError::TooLarge);
    }
    decrypt(me, ciphertext)
}

/// ECIES encryption in the `ecies` crate's default layout, with the ephemeral key and nonce from `rng` and
/// the key agreement from `crypto` (the real provider's is k256 ECDH).
fn encrypt(
    crypto: CryptoRef,
    rng: &mut impl CryptoRngCore,
    recipient: &SessionPublicKey,
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    // The draw is the same whatever the provider, so choosing one moves no other random choice of a run.
    let ephemeral = ephemeral_secret(rng);
    let (ephemeral_pub, key) =
        crypto.encapsulate(&ephemeral, recipient).map_err(|_| SealError::InvalidRecipient)?;
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);

    let mut out = Vec::with_capacity(ECIES_OVERHEAD + plaintext.len());
    out.extend_from_slice(&ephemeral_pub);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&[0u8; TAG_LEN]);
    out.extend_from_slice(plaintext);
    let aead = Aead::new_from_slice(&key).map_err(|_| SealError::Internal)?;
    let tag = aead
        .encrypt_inout_detached(&Nonce::<U16>::from(nonce), &[], (&mut out[ECIES_OVERHEAD..]).into())
        .map_err(|_| SealError::Internal)?;
    out[EPHEMERAL_LEN + NONCE_LEN..ECIES_OVERHEAD].copy_from_slice(&tag);
    Ok(out)
}

/// An ephemeral secret scalar by rejection sampling: 32 bytes from `rng` until they are a valid non-zero
/// scalar (all but about 2^-128 of draws are). The same draws as the `ecies` crate's `generate_from_rng`, so
/// a seeded run seals the same bytes as it did with that crate.
fn ephemeral_secret(rng: &mut impl CryptoRngCore) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    loop {
        rng.fill_bytes(&mut bytes);
        if k256::SecretKey::from_slice(&bytes).is_ok() {
            return bytes;
        }
    }
}

/// The inverse of [`encrypt`]; every failure is [`OpenError::Decrypt`].
fn decrypt(me: &SessionKey, ciphertext: &[u8]) -> Result<Vec<u8>, OpenError> {
    if ciphertext.len() < ECIES_OVERHEAD {
        return Err(OpenError::Decrypt);
    }
    let (ephemeral, rest) = ciphertext.split_at(EPHEMERAL_LEN);
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (tag, sealed) = rest.split_at(TAG_LEN);
    // Only the uncompressed form is ever written; refusing the others keeps one encoding per message.
    if ephemeral[0] != 0x04 {
        return Err(OpenError::Decrypt);
    }
    let ephemeral: &[u8; EPHEMERAL_LEN] = ephemeral.try_into().map_err(|_| OpenError::Decrypt)?;
    let key = me.crypto().decapsulate(me, ephemeral).map_err(|_| OpenError::Decrypt)?;
    let aead = Aead::new_from_slice(&key).map_err(|_| OpenError::Decrypt)?;
    let nonce = Nonce::<U16>::try_from(nonce).map_err(|_| OpenError::Decrypt)?;
    let tag = Tag::<U16>::try_from(tag).map_err(|_| OpenError::Decrypt)?;
    let mut plaintext = sealed.to_vec();
    aead.decrypt_inout_detached(&nonce, &[], plaintext.as_mut_slice().into(), &tag)
        .map_err(|_| OpenError::Decrypt)?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn ciphertext_is_ecies_default_format() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let me = SessionKey::generate(&mut rng);
        let ct = encrypt(&crate::crypto::REAL, &mut rng, me.public(), b"hello").unwrap();
        assert_eq!(ct.len(), ECIES_OVERHEAD + 5);
        assert_eq!(ct[0], 0x04);
        assert_eq!(ecies::decrypt(&me.to_bytes(), &ct).unwrap(), b"hello");
        let theirs = ecies::encrypt(me.public().as_bytes(), b"world").unwrap();
        assert_eq!(decrypt(&me, &theirs).unwrap(), b"world");
    }

    #[test]
    fn encryption_is_deterministic_under_a_seeded_rng() {
        let key = SessionKey::generate(&mut ChaCha20Rng::seed_from_u64(2));
        let a =
            encrypt(&crate::crypto::REAL, &mut ChaCha20Rng::seed_from_u64(3), key.public(), b"x").unwrap();
        let b =
            encrypt(&crate::crypto::REAL, &mut ChaCha20Rng::seed_from_u64(3), key.public(), b"x").unwrap();
        let c =
            encrypt(&crate::crypto::REAL, &mut ChaCha20Rng::seed_from_u64(4), key.public(), b"x").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn decrypt_refuses_short_compressed_and_tampered() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let me = SessionKey::generate(&mut rng);
        let ct = encrypt(&crate::crypto::REAL, &mut rng, me.public(), b"payload").unwrap();
        assert!(matches!(decrypt(&me, &ct[..ECIES_OVERHEAD - 1]), Err(OpenError::Decrypt)));
        for i in [0, 1, EPHEMERAL_LEN, EPHEMERAL_LEN + NONCE_LEN, ct.len() - 1] {
            let mut bad = ct.clone();
            bad[i] ^= 1;
            assert!(matches!(decrypt(&me, &bad), Err(OpenError::Decrypt)), "flip at {i}");
        }
        assert!(matches!(decrypt(&me, &[0u8; ECIES_OVERHEAD]), Err(OpenError::Decrypt)));
    }
}
