//! Wallet signatures: EIP-191 `personal_sign` and recovery of the signing address.
//!
//! A wallet signs `keccak256("\x19Ethereum Signed Message:\n" ‖ len(message) in decimal ‖ message)` with
//! recoverable ECDSA and returns 65 bytes `r ‖ s ‖ v`, `v` = 27 + the parity of the nonce point's y. The
//! verifier recovers the public key from the signature and compares its address with the claimed one: there
//! is no public key to carry.
//!
//! [`WalletKey`] is a local wallet for tests, the CLI demo and native servers that delegate to themselves;
//! browser nodes never hold a wallet key, they receive the signature from the user's wallet.

use std::fmt;

use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::address::{keccak256, Address};
use super::session::KeyError;

/// The EIP-191 version 0x45 ("E") prefix, before the decimal message length.
const PERSONAL_SIGN_PREFIX: &[u8] = b"\x19Ethereum Signed Message:\n";

/// The hash a wallet signs for `personal_sign(message)`.
pub fn personal_sign_hash(message: &[u8]) -> [u8; 32] {
    let len = message.len().to_string();
    let mut buf = Vec::with_capacity(PERSONAL_SIGN_PREFIX.len() + len.len() + message.len());
    buf.extend_from_slice(PERSONAL_SIGN_PREFIX);
    buf.extend_from_slice(len.as_bytes());
    buf.extend_from_slice(message);
    keccak256(&buf)
}

/// A local secp256k1 wallet key. Its secret never appears in `Debug`.
#[derive(Clone)]
pub struct WalletKey {
    signing: SigningKey,
    address: Address,
}

impl WalletKey {
    /// A fresh key from the injected RNG.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self::from_signing(SigningKey::random(rng))
    }

    /// Restores a key from its 32 secret bytes (big-endian scalar, as wallets export it).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        SigningKey::from_bytes(bytes.into()).map(Self::from_signing).map_err(|_| KeyError::InvalidSecret)
    }

    fn from_signing(signing: SigningKey) -> Self {
        let address = Address::from_public_key(signing.verifying_key());
        WalletKey { signing, address }
    }

    /// The 32 secret bytes, for the shell's storage only.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes().into()
    }

    /// This wallet's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// EIP-191 `personal_sign`: deterministic (RFC 6979) and low-S, `v` ∈ {27, 28} — byte-for-byte what
    /// MetaMask or viem produce for the same key and message.
    pub fn personal_sign(&self, message: &[u8]) -> WalletSignature {
        let hash = personal_sign_hash(message);
        // k256 signs any 32-byte prehash and returns a low-S signature with the matching recovery id;
        // failure would need a zero nonce from RFC 6979, which does not happen for a valid key.
        let (sig, recid) = self
            .signing
            .sign_prehash_recoverable(&hash)
            .expect("RFC 6979 signing with a valid key cannot fail");
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + (recid.to_byte() & 1);
        WalletSignature(out)
    }
}

impl fmt::Debug for WalletKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalletKey").field("address", &self.address).finish_non_exhaustive()
    }
}

/// Why a hex string is not a wallet signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureHexError {
    /// The string does not start with `0x`.
    #[error("signature must start with 0x")]
    MissingPrefix,
    /// The string is not `0x` and exactly 130 hex digits.
    #[error("signature must be 0x and 130 hex digits")]
    BadLength,
    /// A character after `0x` is not a hex digit.
    #[error("signature contains a non-hex character")]
    BadHex,
    /// The last byte is not a recovery value: only 0, 1, 27 and 28 are accepted.
    #[error("signature recovery byte v = {0} is not 0, 1, 27 or 28")]
    BadV(u8),
}

/// A 65-byte wallet signature `r ‖ s ‖ v` as returned by `personal_sign`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalletSignature(pub [u8; 65]);

impl WalletSignature {
    /// Parses `0x` and 130 hex digits. `v` may be 0/1 (some hardware wallets) or 27/28; it is stored as
    /// 27/28 so that one signature has one encoding.
    pub fn from_hex(s: &str) -> Result<WalletSignature, SignatureHexError> {
        let digits = s.strip_prefix("0x").ok_or(SignatureHexError::MissingPrefix)?;
        if digits.len() != 130 {
            return Err(SignatureHexError::BadLength);
        }
        let mut out = [0u8; 65];
        hex::decode_to_slice(digits, &mut out).map_err(|_| SignatureHexError::BadHex)?;
        out[64] = match out[64] {
            v @ (0 | 1) => v + 27,
            v @ (27 | 28) => v,
            v => return Err(SignatureHexError::BadV(v)),
        };
        Ok(WalletSignature(out))
    }

    /// `0x` and 130 lowercase hex digits, `v` written as 27/28.
    pub fn to_hex(&self) -> String {
        let mut canonical = self.0;
        canonical[64] = self.canonical_v();
        format!("0x{}", hex::encode(canonical))
    }

    /// `v` mapped to 27/28 when it is 0/1; other values unchanged (they will fail recovery).
    pub(crate) fn canonical_v(&self) -> u8 {
        match self.0[64] {
            v @ (0 | 1) => v + 27,
            v => v,
        }
    }
}

impl fmt::Debug for WalletSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WalletSignature({}…)", hex::encode(&self.0[..6]))
    }
}

impl Serialize for WalletSignature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for WalletSignature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::serde_bytes_array::deserialize(d).map(WalletSignature)
    }
}

/// Why no address could be recovered from a wallet signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecoverError {
    /// `v` is not 0, 1, 27 or 28.
    #[error("recovery byte v = {0} is not 0, 1, 27 or 28")]
    BadV(u8),
    /// `r` or `s` is zero or not below the group order.
    #[error("signature scalars out of range")]
    InvalidScalars,
    /// `s` is in the upper half of the group order: a malleated copy of a valid signature (EIP-2).
    #[error("signature s is not low (EIP-2)")]
    HighS,
    /// No public key matches this signature and hash (r is not the x of a curve point).
    #[error("no public key recovers from this signature")]
    NoKey,
}

/// Recovers the address that `personal_sign`ed `message`. The caller compares it with the claimed address:
/// a wrong message or signature recovers some other address rather than failing.
pub fn recover_personal_sign(message: &[u8], sig: &WalletSignature) -> Result<Address, RecoverError> {
    let parity = match sig.0[64] {
        0 | 27 => false,
        1 | 28 => true,
        v => return Err(RecoverError::BadV(v)),
    };
    let ecdsa = EcdsaSignature::from_slice(&sig.0[..64]).map_err(|_| RecoverError::InvalidScalars)?;
    if ecdsa.normalize_s().is_some() {
        return Err(RecoverError::HighS);
    }
    let hash = personal_sign_hash(message);
    let key = VerifyingKey::recover_from_prehash(&hash, &ecdsa, RecoveryId::new(parity, false))
        .map_err(|_| RecoverError::NoKey)?;
    Ok(Address::from_public_key(&key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn key_one() -> WalletKey {
        let mut sk = [0u8; 32];
        sk[31] = 1;
        WalletKey::from_bytes(&sk).unwrap()
    }

    #[test]
    fn sign_and_recover() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let key = WalletKey::generate(&mut rng);
        let sig = key.personal_sign(b"hello");
        assert!(matches!(sig.0[64], 27 | 28));
        assert_eq!(recover_personal_sign(b"hello", &sig), Ok(key.address()));
        assert_ne!(recover_personal_sign(b"hellp", &sig), Ok(key.address()));
        let restored = WalletKey::from_bytes(&key.to_bytes()).unwrap();
        assert_eq!(restored.address(), key.address());
        assert!(WalletKey::from_bytes(&[0u8; 32]).is_err());
        assert!(WalletKey::from_bytes(&[0xff; 32]).is_err());
        assert!(!format!("{key:?}").contains(&hex::encode(key.to_bytes())));
    }

    #[test]
    fn personal_sign_known_answer() {
        // Private key 1 signing "hello": the same value viem's signMessage returns (see tests/js).
        let sig = key_one().personal_sign(b"hello");
        assert_eq!(
            sig.to_hex(),
            "0xe5ddc160e4c8f92de507c7db9b982d4f9b7197bfa421864aeadc586bc96b09ae\
             0ba0c5b131650ae4994cff1839341d00f3735ef5abc62ac8fe2cf50f65208e2a1b"
        );
        assert_eq!(recover_personal_sign(b"hello", &sig), Ok(key_one().address()));
        assert_eq!(
            hex::encode(personal_sign_hash(b"hello")),
            "50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750"
        );
    }

    #[test]
    fn hex_round_trip_and_v_forms() {
        let sig = key_one().personal_sign(b"m");
        let hex = sig.to_hex();
        assert_eq!(hex.len(), 132);
        assert_eq!(WalletSignature::from_hex(&hex), Ok(sig));
        // v as 0/1 parses to the same signature.
        let low_v = format!("{}{:02x}", &hex[..130], sig.0[64] - 27);
        assert_eq!(WalletSignature::from_hex(&low_v), Ok(sig));
        let upper = format!("0x{}", hex[2..].to_ascii_uppercase());
        assert_eq!(WalletSignature::from_hex(&upper), Ok(sig));
        for v in [2u8, 26, 29, 35, 255] {
            let bad = format!("{}{v:02x}", &hex[..130]);
            assert_eq!(WalletSignature::from_hex(&bad), Err(SignatureHexError::BadV(v)));
        }
        assert_eq!(WalletSignature::from_hex(&hex[2..]), Err(SignatureHexError::MissingPrefix));
        assert_eq!(WalletSignature::from_hex(&hex[..131]), Err(SignatureHexError::BadLength));
        let nonhex = format!("0xzz{}", &hex[4..]);
        assert_eq!(WalletSignature::from_hex(&nonhex), Err(SignatureHexError::BadHex));
    }

    #[test]
    fn recovery_refuses_bad_signatures() {
        let key = key_one();
        let sig = key.personal_sign(b"m");
        let mut bad_v = sig;
        bad_v.0[64] = 29;
        assert_eq!(recover_personal_sign(b"m", &bad_v), Err(RecoverError::BadV(29)));
        // v = 0/1 recovers like 27/28.
        let mut zero_based = sig;
        zero_based.0[64] -= 27;
        assert_eq!(recover_personal_sign(b"m", &zero_based), Ok(key.address()));
        // s -> n - s with the parity flipped is a valid signature for the same key, but malleated.
        let ecdsa = EcdsaSignature::from_slice(&sig.0[..64]).unwrap();
        let (r, s) = ecdsa.split_scalars();
        let high = EcdsaSignature::from_scalars(r, -*s).unwrap();
        let mut high_sig = sig;
        high_sig.0[..64].copy_from_slice(&high.to_bytes());
        high_sig.0[64] = if sig.0[64] == 27 { 28 } else { 27 };
        assert_eq!(recover_personal_sign(b"m", &high_sig), Err(RecoverError::HighS));
        let zero = WalletSignature([0u8; 65]);
        assert_eq!(recover_personal_sign(b"m", &zero), Err(RecoverError::InvalidScalars));
        let mut over = WalletSignature([0xff; 65]);
        over.0[64] = 27;
        assert_eq!(recover_personal_sign(b"m", &over), Err(RecoverError::InvalidScalars));
    }

    #[test]
    fn serde_is_65_bytes() {
        let sig = key_one().personal_sign(b"m");
        let bytes = postcard::to_allocvec(&sig).unwrap();
        assert_eq!(bytes.len(), 66);
        assert_eq!(postcard::from_bytes::<WalletSignature>(&bytes).unwrap(), sig);
    }

    proptest! {
        #[test]
        fn from_hex_never_panics(s in "\\PC{0,140}") {
            let _ = WalletSignature::from_hex(&s);
        }

        #[test]
        fn from_hex_never_panics_near_valid(s in "0x[0-9a-fA-Fé]{128,131}") {
            let _ = WalletSignature::from_hex(&s);
        }

        #[test]
        fn recover_never_panics(bytes in proptest::collection::vec(any::<u8>(), 65), msg in any::<Vec<u8>>()) {
            let mut sig = [0u8; 65];
            sig.copy_from_slice(&bytes);
            let _ = recover_personal_sign(&msg, &WalletSignature(sig));
        }

        #[test]
        fn sign_recover_round_trip(seed in any::<u64>(), msg in any::<Vec<u8>>()) {
            let key = WalletKey::generate(&mut ChaCha20Rng::seed_from_u64(seed));
            let sig = key.personal_sign(&msg);
            prop_assert_eq!(recover_personal_sign(&msg, &sig), Ok(key.address()));
        }
    }
}
