//! The crypto provider: the public-key operations a node performs, injected the way its RNG is.
//!
//! ```text
//!   Config::crypto ──▶ SessionKey (signs envelopes, records, sealed messages)
//!                 ├──▶ DelegationCache (verifies records, sealed messages, wallet signatures)
//!                 └──▶ envelope::decode_with / verify_with (verifies frames addressed to this node)
//! ```
//!
//! Every shell that users run uses [`REAL`] (k256 ECDSA over SHA-256, EIP-191 recovery), and so does every
//! default: [`crate::node::Config::new`], [`SessionKey`]'s constructors, [`DelegationCache::new`]
//! (`crate::identity::delegation::DelegationCache`). The provider is a value, not a Cargo feature, so no
//! build of the server can pick up another one through feature unification.
//!
//! The simulator brings its own fast provider (`chordial_sim::crypto`) that keeps every format and size (a
//! 64-byte signature, a 65-byte wallet signature) but is no defence at all: it makes large simulated rings
//! affordable, and a run must make the same decisions with either provider. Key agreement (the ECIES step of
//! [`crate::e2e`]) goes through the provider too: since sealed link offers and one sealed mailbox write per
//! holder (issue 16), a ring seals and opens often enough that three real scalar multiplications per sealed
//! body made the simulator 1.6× slower with every signature fast. The AEAD around it stays real everywhere.

use std::fmt;

use hkdf::Hkdf;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{NonZeroScalar, ProjectivePoint};
use sha2::Sha256;

use crate::identity::address::Address;
use crate::identity::session::{BadSignature, KeyError, SessionKey, SessionPublicKey, Signature};
use crate::identity::wallet::{self, RecoverError, WalletKey, WalletSignature};

/// Signing, verifying and wallet-signature recovery. Implementations must be deterministic (same inputs,
/// same outputs, no randomness of their own), so that a seeded run stays reproducible.
pub trait Crypto: fmt::Debug + Send + Sync {
    /// A short name for reports (`"real"`).
    fn name(&self) -> &'static str;
    /// Takes the 33 origin-key bytes of a received frame as a key (the real provider checks that they are a
    /// point on the curve).
    fn public_key(&self, bytes: &[u8; 33]) -> Result<SessionPublicKey, KeyError>;
    /// Signs `msg` with `key`: 64 bytes `r ‖ s`.
    fn sign(&self, key: &SessionKey, msg: &[u8]) -> Signature;
    /// Checks a signature made by [`Crypto::sign`] with the secret half of `key`.
    fn verify(&self, key: &SessionPublicKey, msg: &[u8], sig: &Signature) -> Result<(), BadSignature>;
    /// A local wallet's EIP-191 `personal_sign` signature of `message` (test and simulated identities,
    /// servers delegating to themselves; a user's wallet signs in the wallet, never here).
    fn personal_sign(&self, wallet: &WalletKey, message: &[u8]) -> WalletSignature;
    /// The address that made an EIP-191 `personal_sign` signature of `message`.
    fn recover_personal_sign(&self, message: &[u8], sig: &WalletSignature) -> Result<Address, RecoverError>;
    /// The sender's half of ECIES key agreement: from an ephemeral secret the caller drew, the ephemeral
    /// public key (65 bytes, uncompressed SEC1, written into the ciphertext) and the 32-byte AEAD key shared
    /// with `recipient`. [`KeyError::InvalidSecret`] if `ephemeral` is no scalar, [`KeyError::InvalidPublic`]
    /// if `recipient` is no point.
    fn encapsulate(
        &self,
        ephemeral: &[u8; 32],
        recipient: &SessionPublicKey,
    ) -> Result<([u8; 65], [u8; 32]), KeyError>;
    /// The recipient's half: the AEAD key from the ephemeral public key of a ciphertext sealed to `me`.
    /// [`KeyError::InvalidPublic`] if `ephemeral` is not an uncompressed point.
    fn decapsulate(&self, me: &SessionKey, ephemeral: &[u8; 65]) -> Result<[u8; 32], KeyError>;
}

/// The provider every shell uses: a node's choice of provider, copied wherever it signs or verifies.
pub type CryptoRef = &'static dyn Crypto;

/// Real cryptography: ECDSA/SHA-256 with low-S signatures, EIP-191 recovery over keccak-256.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealCrypto;

/// The real provider, the default everywhere.
pub static REAL: RealCrypto = RealCrypto;

impl Crypto for RealCrypto {
    fn name(&self) -> &'static str {
        "real"
    }

    fn public_key(&self, bytes: &[u8; 33]) -> Result<SessionPublicKey, KeyError> {
        SessionPublicKey::from_sec1(bytes)
    }

    fn sign(&self, key: &SessionKey, msg: &[u8]) -> Signature {
        key.sign_ecdsa(msg)
    }

    fn verify(&self, key: &SessionPublicKey, msg: &[u8], sig: &Signature) -> Result<(), BadSignature> {
        key.verify(msg, sig)
    }

    fn personal_sign(&self, wallet: &WalletKey, message: &[u8]) -> WalletSignature {
        wallet.personal_sign(message)
    }

    fn recover_personal_sign(&self, message: &[u8], sig: &WalletSignature) -> Result<Address, RecoverError> {
        wallet::recover_personal_sign(message, sig)
    }

    /// ECDH on secp256k1, then HKDF-SHA256 (no salt, no info) over `ephemeral ‖ shared point`, both
    /// uncompressed: the `ecies` crate's default, so `ecies::decrypt` and eciesjs open what [`crate::e2e`]
    /// seals (the tests check it against that crate, which only the tests depend on).
    fn encapsulate(
        &self,
        ephemeral: &[u8; 32],
        recipient: &SessionPublicKey,
    ) -> Result<([u8; 65], [u8; 32]), KeyError> {
        let secret = NonZeroScalar::try_from(&ephemeral[..]).map_err(|_| KeyError::InvalidSecret)?;
        let ephemeral_pub = uncompressed(&(ProjectivePoint::GENERATOR * *secret));
        let shared = uncompressed(&(ProjectivePoint::from(recipient.affine()?) * *secret));
        Ok((ephemeral_pub, ecies_key(&ephemeral_pub, &shared)))
    }

    fn decapsulate(&self, me: &SessionKey, ephemeral: &[u8; 65]) -> Result<[u8; 32], KeyError> {
        let point = k256::PublicKey::from_sec1_bytes(ephemeral).map_err(|_| KeyError::InvalidPublic)?;
        let shared = uncompressed(&(point.to_projective() * **me.scalar()));
        Ok(ecies_key(ephemeral, &shared))
    }
}

/// A point in uncompressed SEC1 form (65 bytes, `0x04 ‖ x ‖ y`). Never the identity: both factors of every
/// product here are non-zero and the group has prime order.
fn uncompressed(point: &ProjectivePoint) -> [u8; 65] {
    let mut out = [0u8; 65];
    out.copy_from_slice(point.to_affine().to_encoded_point(false).as_bytes());
    out
}

/// The ECIES AEAD key: HKDF-SHA256 with no salt and no info over `ephemeral ‖ shared`, 32 bytes.
fn ecies_key(ephemeral: &[u8; 65], shared: &[u8; 65]) -> [u8; 32] {
    let mut master = [0u8; 130];
    master[..65].copy_from_slice(ephemeral);
    master[65..].copy_from_slice(shared);
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, &master).expand(&[], &mut key).expect("32 bytes is a valid HKDF-SHA256 length");
    key
}
