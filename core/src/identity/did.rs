//! `did:key` names for session keys: how a SIWE delegation's `URI` line names the key it authorises.
//!
//! `did:key:z` ‖ base58btc(0xe7 0x01 ‖ 33-byte compressed key). `0xe7 0x01` is the unsigned-varint
//! multicodec `secp256k1-pub`, `z` the multibase tag for base58btc; every such name starts `did:key:zQ3s`.
//! Parsing is strict: only that codec, only compressed keys, and the name must be exactly what
//! [`did_key`] would write for the key, so one key has one name.

use super::session::SessionPublicKey;

const PREFIX: &str = "did:key:z";
/// Multicodec `secp256k1-pub` (0xe7) as an unsigned varint.
const SECP256K1_PUB: [u8; 2] = [0xe7, 0x01];
/// base58 of 35 bytes is at most 48 characters; anything longer is refused before decoding.
const MAX_ENCODED_LEN: usize = 48;

/// Why a string is not a session key's `did:key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DidError {
    /// The string does not start with `did:key:z` (the `did:key` method with base58btc multibase).
    #[error("not a base58btc did:key")]
    NotDidKey,
    /// The part after `did:key:z` is not base58 (Bitcoin alphabet) or is too long.
    #[error("did:key is not valid base58")]
    BadBase58,
    /// The multicodec is not `secp256k1-pub` or the key is not 33 bytes.
    #[error("did:key is not a compressed secp256k1 public key")]
    WrongKeyType,
    /// The 33 bytes are not a point on secp256k1.
    #[error("did:key names an invalid secp256k1 point")]
    InvalidKey,
    /// The name decodes, but is not the canonical encoding of its key.
    #[error("did:key is not in canonical form")]
    NotCanonical,
}

/// The `did:key` of a session public key.
pub fn did_key(pk: &SessionPublicKey) -> String {
    let mut raw = [0u8; 35];
    raw[..2].copy_from_slice(&SECP256K1_PUB);
    raw[2..].copy_from_slice(pk.as_bytes());
    format!("{PREFIX}{}", bs58::encode(raw).into_string())
}

/// Parses a `did:key` written by [`did_key`].
pub fn parse_did_key(s: &str) -> Result<SessionPublicKey, DidError> {
    let encoded = s.strip_prefix(PREFIX).ok_or(DidError::NotDidKey)?;
    if encoded.len() > MAX_ENCODED_LEN {
        return Err(DidError::BadBase58);
    }
    let raw = bs58::decode(encoded).into_vec().map_err(|_| DidError::BadBase58)?;
    let key = match raw.split_first_chunk::<2>() {
        Some((codec, key)) if *codec == SECP256K1_PUB && key.len() == 33 => key,
        _ => return Err(DidError::WrongKeyType),
    };
    let pk = SessionPublicKey::from_sec1(key).map_err(|_| DidError::InvalidKey)?;
    if did_key(&pk) != s {
        return Err(DidError::NotCanonical);
    }
    Ok(pk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SessionKey;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn known_answer() {
        // Secret key 1: its public key is the generator, 0279be667e…f81798 compressed. The did:key spec's
        // secp256k1 examples use the same multicodec/multibase and so the same zQ3s prefix.
        let mut sk = [0u8; 32];
        sk[31] = 1;
        let key = SessionKey::from_bytes(&sk).unwrap();
        let did = did_key(key.public());
        assert_eq!(did, "did:key:zQ3shVc2UkAfJCdc1TR8E66J85h48P43r93q8jGPkPpjF9Ef9");
        assert_eq!(parse_did_key(&did), Ok(*key.public()));
    }

    #[test]
    fn round_trip_and_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let key = SessionKey::generate(&mut rng);
        let did = did_key(key.public());
        assert!(did.starts_with("did:key:zQ3s"), "{did}");
        assert_eq!(parse_did_key(&did), Ok(*key.public()));
        assert_eq!(parse_did_key(&did.replacen("did:key:z", "did:key:f", 1)), Err(DidError::NotDidKey));
        assert_eq!(parse_did_key("did:web:example.com"), Err(DidError::NotDidKey));
        assert_eq!(parse_did_key("did:key:z0OIl"), Err(DidError::BadBase58));
        assert_eq!(parse_did_key(&format!("{did}{}", "1".repeat(40))), Err(DidError::BadBase58));
        // An ed25519 did:key (multicodec 0xed 0x01).
        let ed = format!(
            "did:key:z{}",
            bs58::encode([[0xed, 0x01].as_slice(), &[7u8; 32]].concat()).into_string()
        );
        assert_eq!(parse_did_key(&ed), Err(DidError::WrongKeyType));
        // Uncompressed secp256k1 keys are refused.
        let long = [SECP256K1_PUB.as_slice(), &key.public().to_uncompressed().unwrap()].concat();
        let long = format!("did:key:z{}", bs58::encode(long).into_string());
        assert_eq!(parse_did_key(&long), Err(DidError::BadBase58));
        // Right codec and length, but x is not on the curve.
        let mut bad = [0u8; 35];
        bad[..2].copy_from_slice(&SECP256K1_PUB);
        bad[2] = 0x02;
        bad[3..].fill(0xff);
        let bad = format!("did:key:z{}", bs58::encode(bad).into_string());
        assert_eq!(parse_did_key(&bad), Err(DidError::InvalidKey));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "(did:key:z)?\\PC{0,80}") {
            let _ = parse_did_key(&s);
        }

        #[test]
        fn parse_never_panics_base58(s in "did:key:zQ3s[1-9A-HJ-NP-Za-km-z]{40,50}") {
            let _ = parse_did_key(&s);
        }

        #[test]
        fn round_trips(seed in any::<u64>()) {
            let key = SessionKey::generate(&mut ChaCha20Rng::seed_from_u64(seed));
            prop_assert_eq!(parse_did_key(&did_key(key.public())), Ok(*key.public()));
        }
    }
}
