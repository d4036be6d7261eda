//! Session keys: the secp256k1 key a node generates and signs everything with.
//!
//! Signatures are ECDSA over SHA-256 of the signed bytes, normalized to low-S, 64 bytes `r ‖ s`. A public
//! key travels compressed (33 bytes SEC1); the node id is `sha1` of those 33 bytes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use k256::ecdsa::signature::{Signer, Verifier};
use k256::ecdsa::{Signature as EcdsaSignature, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::crypto::CryptoRef;
use crate::id::Id;

/// Why key material was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes are not a valid secp256k1 secret scalar (zero or ≥ the group order).
    #[error("invalid session secret key")]
    InvalidSecret,
    /// The bytes are not a compressed SEC1 point on secp256k1.
    #[error("invalid session public key")]
    InvalidPublic,
}

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad signature")]
pub struct BadSignature;

/// The node's own session key. Never leaves the node's storage.
///
/// It signs through a [`Crypto`] provider, [`crate::crypto::REAL`] unless [`SessionKey::with_crypto`] says
/// otherwise (the node gives its key the provider of its [`crate::node::Config`]).
#[derive(Clone)]
pub struct SessionKey {
    signing: SigningKey,
    public: SessionPublicKey,
    crypto: CryptoRef,
}

impl SessionKey {
    /// A fresh key from the injected RNG.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self::from_signing(SigningKey::random(rng))
    }

    /// Restores a key from its 32 secret bytes (as written by [`SessionKey::to_bytes`]).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        SigningKey::from_bytes(bytes.into()).map(Self::from_signing).map_err(|_| KeyError::InvalidSecret)
    }

    fn from_signing(signing: SigningKey) -> Self {
        let public = SessionPublicKey::from_verifying(*signing.verifying_key());
        SessionKey { signing, public, crypto: &crate::crypto::REAL }
    }

    /// The same key, signing through `crypto`.
    pub fn with_crypto(mut self, crypto: CryptoRef) -> Self {
        self.crypto = crypto;
        self
    }

    /// The provider this key signs through.
    pub fn crypto(&self) -> CryptoRef {
        self.crypto
    }

    /// The 32 secret bytes, for the shell's storage only.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes().into()
    }

    /// The public half.
    pub fn public(&self) -> &SessionPublicKey {
        &self.public
    }

    /// The secret scalar, for key agreement ([`crate::crypto::Crypto::decapsulate`]).
    pub(crate) fn scalar(&self) -> &k256::NonZeroScalar {
        self.signing.as_nonzero_scalar()
    }

    /// This session's node id on the ring.
    pub fn node_id(&self) -> Id {
        self.public.node_id()
    }

    /// Signs `msg` through this key's provider (ECDSA/SHA-256, low-S, with the real one).
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.crypto.sign(self, msg)
    }

    /// Signs `msg` with ECDSA/SHA-256, low-S: what [`crate::crypto::RealCrypto`] does.
    pub(crate) fn sign_ecdsa(&self, msg: &[u8]) -> Signature {
        let sig: EcdsaSignature = self.signing.sign(msg);
        let sig = sig.normalize_s().unwrap_or(sig);
        Signature(sig.to_bytes().into())
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKey")
            .field("public", &self.public)
            .field("crypto", &self.crypto.name())
            .finish_non_exhaustive()
    }
}

/// Most compressed keys [`SessionPublicKey::from_sec1`] remembers per thread (about 150 bytes each); when
/// full, the memo starts again empty.
const POINT_MEMO_CAP: usize = 1 << 14;

thread_local! {
    /// Compressed keys already decompressed on this thread, and their points. Parsing is a pure function of
    /// the bytes, so answering from the memo changes no result, only the cost: decompressing a point (a
    /// square root in the field) was 5 % of a simulated ring's time with the fast crypto provider, once per
    /// key in every received record and delegation. Only valid keys are remembered.
    static POINTS: RefCell<HashMap<[u8; 33], VerifyingKey>> = RefCell::new(HashMap::new());
}

/// A session public key: 33 compressed bytes, with the parsed point kept beside them so verifying does not
/// decompress again. Only a key made by [`SessionPublicKey::unchecked`] (a provider that never uses the
/// point) has no point; [`SessionPublicKey::verify`] then decompresses it.
#[derive(Clone, Copy)]
pub struct SessionPublicKey {
    bytes: [u8; 33],
    key: Option<VerifyingKey>,
}

impl SessionPublicKey {
    fn from_verifying(key: VerifyingKey) -> Self {
        let point = key.to_encoded_point(true);
        let mut bytes = [0u8; 33];
        bytes.copy_from_slice(point.as_bytes());
        SessionPublicKey { bytes, key: Some(key) }
    }

    /// Parses a compressed (33-byte) or uncompressed (65-byte) SEC1 point.
    ///
    /// A compressed key this thread has parsed before comes from a memo (see [`POINTS`]) instead of being
    /// decompressed again: a node meets the same few hundred keys in every record, delegation and frame.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, KeyError> {
        let Ok(compressed) = <&[u8; 33]>::try_from(bytes) else { return Self::parse_sec1(bytes) };
        if let Some(key) = POINTS.with(|memo| memo.borrow().get(compressed).copied()) {
            return Ok(SessionPublicKey { bytes: *compressed, key: Some(key) });
        }
        let parsed = Self::parse_sec1(bytes)?;
        if let Some(key) = parsed.key.filter(|_| parsed.bytes == *compressed) {
            POINTS.with(|memo| {
                let mut memo = memo.borrow_mut();
                if memo.len() >= POINT_MEMO_CAP {
                    // Forget rather than refuse: the memo only saves work.
                    memo.clear();
                }
                memo.insert(*compressed, key);
            });
        }
        Ok(parsed)
    }

    fn parse_sec1(bytes: &[u8]) -> Result<Self, KeyError> {
        VerifyingKey::from_sec1_bytes(bytes).map(Self::from_verifying).map_err(|_| KeyError::InvalidPublic)
    }

    /// Takes 33 bytes with a compressed-point prefix (0x02 or 0x03) as a key **without** checking that they
    /// are a point on the curve: for a [`crate::crypto::Crypto`] provider that never uses the point. A real
    /// verification of such a key decompresses it and fails if it is no point.
    pub fn unchecked(bytes: &[u8; 33]) -> Result<Self, KeyError> {
        match bytes[0] {
            0x02 | 0x03 => Ok(SessionPublicKey { bytes: *bytes, key: None }),
            _ => Err(KeyError::InvalidPublic),
        }
    }

    /// A key whose bytes were checked to be a point before (a cache keeps only the bytes); the point is
    /// looked up or decompressed again if it is ever needed.
    pub(crate) fn known_valid(bytes: &[u8; 33]) -> Self {
        let key = POINTS.with(|memo| memo.borrow().get(bytes).copied());
        SessionPublicKey { bytes: *bytes, key }
    }

    fn point(&self) -> Result<VerifyingKey, KeyError> {
        match self.key {
            Some(key) => Ok(key),
            None => Self::from_sec1(&self.bytes)?.key.ok_or(KeyError::InvalidPublic),
        }
    }

    /// The point, for key agreement ([`crate::crypto::Crypto::encapsulate`]).
    pub(crate) fn affine(&self) -> Result<k256::AffinePoint, KeyError> {
        Ok(*self.point()?.as_affine())
    }

    /// The compressed SEC1 bytes.
    pub fn as_bytes(&self) -> &[u8; 33] {
        &self.bytes
    }

    /// The uncompressed SEC1 bytes (65, starting with 0x04), as ECIES and Ethereum tooling use.
    /// Fails only for a key taken [`SessionPublicKey::unchecked`] that is no point.
    pub fn to_uncompressed(&self) -> Result<[u8; 65], KeyError> {
        let mut out = [0u8; 65];
        out.copy_from_slice(self.point()?.to_encoded_point(false).as_bytes());
        Ok(out)
    }

    /// `sha1(compressed key)`: the node id of this session.
    pub fn node_id(&self) -> Id {
        Id::hash(&[&self.bytes])
    }

    /// Verifies a signature made by [`SessionKey::sign`]. High-S signatures are refused (no malleability).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), BadSignature> {
        let sig = EcdsaSignature::from_slice(&sig.0).map_err(|_| BadSignature)?;
        if sig.normalize_s().is_some() {
            return Err(BadSignature);
        }
        self.point().map_err(|_| BadSignature)?.verify(msg, &sig).map_err(|_| BadSignature)
    }
}

impl PartialEq for SessionPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for SessionPublicKey {}

impl std::hash::Hash for SessionPublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state)
    }
}

impl fmt::Debug for SessionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionPublicKey({})", hex::encode(&self.bytes[..6]))
    }
}

impl Serialize for SessionPublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.bytes)
    }
}

impl<'de> Deserialize<'de> for SessionPublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes: [u8; 33] = crate::serde_bytes_array::deserialize(d)?;
        SessionPublicKey::from_sec1(&bytes).map_err(serde::de::Error::custom)
    }
}

/// A 64-byte ECDSA signature `r ‖ s` made by a session key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..6]))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::serde_bytes_array::deserialize(d).map(Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn sign_verify_and_restore() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let key = SessionKey::generate(&mut rng);
        let sig = key.sign(b"hello");
        assert!(key.public().verify(b"hello", &sig).is_ok());
        assert_eq!(key.public().verify(b"hellp", &sig), Err(BadSignature));
        let restored = SessionKey::from_bytes(&key.to_bytes()).unwrap();
        assert_eq!(restored.public(), key.public());
        let parsed = SessionPublicKey::from_sec1(key.public().as_bytes()).unwrap();
        assert_eq!(parsed.node_id(), key.node_id());
        assert!(SessionKey::from_bytes(&[0u8; 32]).is_err());
        assert!(SessionPublicKey::from_sec1(&[9u8; 33]).is_err());
    }

    #[test]
    fn high_s_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let key = SessionKey::generate(&mut rng);
        let sig = key.sign(b"m");
        let parsed = EcdsaSignature::from_slice(&sig.0).unwrap();
        // Flip s to n − s: still a mathematically valid signature, but not canonical.
        let (r, s) = parsed.split_scalars();
        let high = EcdsaSignature::from_scalars(r, -*s).unwrap();
        let high = Signature(high.to_bytes().into());
        assert_eq!(key.public().verify(b"m", &high), Err(BadSignature));
    }
}
