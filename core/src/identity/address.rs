//! Ethereum addresses: keccak-256, the 20-byte address of a secp256k1 key, and EIP-55 checksums.
//!
//! An address is the last 20 bytes of `keccak256(uncompressed public key without its 0x04 tag)`. It is shown
//! and written in SIWE messages in its EIP-55 form, where the case of each hex letter carries one bit of
//! `keccak256(lowercase hex)`, so a mistyped address is caught.

use std::fmt;

use k256::ecdsa::VerifyingKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Keccak256};

/// `keccak256(data)`: Ethereum's hash (the original Keccak padding, not NIST SHA3-256).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// Why a string is not an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The string does not start with `0x`.
    #[error("address must start with 0x")]
    MissingPrefix,
    /// The string is not exactly `0x` and 40 hex digits.
    #[error("address must be 0x and 40 hex digits")]
    BadLength,
    /// A character after `0x` is not a hex digit.
    #[error("address contains a non-hex character")]
    BadHex,
    /// The address mixes upper and lower case but the case pattern is not its EIP-55 checksum.
    #[error("address has an invalid EIP-55 checksum")]
    BadChecksum,
}

/// A 20-byte Ethereum address: the wallet identity. `Display` and `Debug` give the EIP-55 checksummed form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The address of a secp256k1 public key.
    pub fn from_public_key(key: &VerifyingKey) -> Address {
        let point = key.to_encoded_point(false);
        // Skip the SEC1 tag byte (0x04): Ethereum hashes the bare 64-byte x ‖ y.
        let hash = keccak256(&point.as_bytes()[1..]);
        let mut out = [0u8; 20];
        out.copy_from_slice(&hash[12..]);
        Address(out)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The EIP-55 checksummed form, `0x` and 40 hex digits.
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = keccak256(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            // Nibble i of the hash decides the case of hex digit i; digits 0-9 have no case.
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            out.push(if nibble >= 8 { c.to_ascii_uppercase() } else { c });
        }
        out
    }

    /// Parses `0x` and 40 hex digits. All-lowercase and all-uppercase digits are accepted as they carry no
    /// checksum; mixed case must be the EIP-55 checksum, else [`AddressError::BadChecksum`].
    pub fn parse(s: &str) -> Result<Address, AddressError> {
        let digits = s.strip_prefix("0x").ok_or(AddressError::MissingPrefix)?;
        if digits.len() != 40 {
            return Err(AddressError::BadLength);
        }
        let mut out = [0u8; 20];
        hex::decode_to_slice(digits, &mut out).map_err(|_| AddressError::BadHex)?;
        let address = Address(out);
        let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper && address.to_checksum()[2..] != *digits {
            return Err(AddressError::BadChecksum);
        }
        Ok(address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::serde_bytes_array::deserialize(d).map(Address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keccak_known_answers() {
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(
            hex::encode(keccak256(b"abc")),
            "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
        );
    }

    #[test]
    fn eip55_examples() {
        // The test vectors listed in EIP-55.
        for s in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
            "0x52908400098527886E0F7030069857D2E4169EE7",
            "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
            "0xde709f2102306220921060314715629080e2fb77",
            "0x27b1fdb04752bbc536007a920d24acb045561c26",
        ] {
            let a = Address::parse(s).unwrap();
            assert_eq!(a.to_checksum(), s);
            assert_eq!(a.to_string(), s);
            assert_eq!(format!("{a:?}"), s);
        }
    }

    #[test]
    fn parse_errors() {
        let good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        assert_eq!(Address::parse(&good[2..]), Err(AddressError::MissingPrefix));
        assert_eq!(Address::parse("0x1234"), Err(AddressError::BadLength));
        assert_eq!(Address::parse(&format!("{good}00")), Err(AddressError::BadLength));
        assert_eq!(Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg"), Err(AddressError::BadHex));
        // One letter's case flipped.
        assert_eq!(
            Address::parse("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            Err(AddressError::BadChecksum)
        );
        let lower = good.to_ascii_lowercase();
        let upper = format!("0x{}", good[2..].to_ascii_uppercase());
        assert_eq!(Address::parse(&lower), Address::parse(good));
        assert_eq!(Address::parse(&upper), Address::parse(good));
        // "0X" is not the prefix.
        assert_eq!(Address::parse(&upper.replacen("0x", "0X", 1)), Err(AddressError::MissingPrefix));
        // Multi-byte characters must not panic the length/hex checks.
        assert!(Address::parse("0xé5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA").is_err());
    }

    #[test]
    fn address_of_known_key() {
        // Private key 1: the well-known address of the generator point.
        let mut sk = [0u8; 32];
        sk[31] = 1;
        let key = k256::ecdsa::SigningKey::from_bytes((&sk).into()).unwrap();
        assert_eq!(
            Address::from_public_key(key.verifying_key()).to_checksum(),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
    }

    #[test]
    fn serde_is_twenty_bytes() {
        let a = Address([0xab; 20]);
        let bytes = postcard::to_allocvec(&a).unwrap();
        assert_eq!(bytes.len(), 21); // length prefix + 20 bytes
        assert_eq!(postcard::from_bytes::<Address>(&bytes).unwrap(), a);
        assert!(postcard::from_bytes::<Address>(&[19, 0, 0]).is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = Address::parse(&s);
        }

        #[test]
        fn parse_never_panics_near_valid(s in "0x[0-9a-fA-Fé]{38,42}") {
            let _ = Address::parse(&s);
        }

        #[test]
        fn checksum_round_trips(bytes in any::<[u8; 20]>()) {
            let a = Address(bytes);
            prop_assert_eq!(Address::parse(&a.to_checksum()), Ok(a));
            prop_assert_eq!(Address::parse(&a.to_checksum().to_ascii_lowercase()), Ok(a));
        }
    }
}
