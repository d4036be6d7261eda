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
//! [`crate::e2e`]) stays real in every provider: it costs a few scalar multiplications per application
//! message, not per frame, and the end-to-end sessions of issue 17 replace it.

use std::fmt;

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
}
