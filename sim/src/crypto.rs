//! A fast stand-in for real cryptography, for large simulated rings only.
//!
//! [`FAST`] keeps every format and size of [`chordial_core::crypto::REAL`] — a 64-byte session signature,
//! a 65-byte wallet signature whose `v` is 27, a 65-byte uncompressed ephemeral key in a sealed body — and
//! costs one SHA-256 instead of a scalar multiplication. It is **no defence**: anyone who knows a public key
//! can make its "signatures" and derive the key of anything sealed to it, and a wallet signature names its
//! own signer. (The AEAD around a sealed body stays real, so a body opens only with the key it was sealed
//! with, and a tampered one is refused, as with the real provider.) It exists so that the benchmark can simulate 100,000 nodes; the real provider is
//! the default of [`crate::WorldConfig`], and every scenario about forgery, replay or authenticity runs with
//! it. A run must make the same decisions with either provider (`bench --crypto fast|real` at the same seed
//! gives the same JSON but for wall-clock fields; docs/simulator.md has the command).
//!
//! Both providers are deterministic and draw nothing from any RNG, so choosing one moves no other random
//! choice of the run.

use sha2::{Digest, Sha256};

use chordial_core::crypto::{Crypto, CryptoRef, REAL};
use chordial_core::identity::wallet::{RecoverError, WalletKey, WalletSignature};
use chordial_core::identity::{Address, BadSignature, KeyError, SessionKey, SessionPublicKey, Signature};

/// The fast provider. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct FastCrypto;

/// The fast provider as a value for [`crate::WorldConfig::crypto`].
pub static FAST: FastCrypto = FastCrypto;

const SESSION_TAG: &[u8] = b"chordial-sim/fast-signature/v1";
const WALLET_TAG: &[u8] = b"chordial-sim/fast-wallet-signature/v1";
const EPHEMERAL_TAG: &[u8] = b"chordial-sim/fast-ephemeral/v1";
const AGREEMENT_TAG: &[u8] = b"chordial-sim/fast-key-agreement/v1";

/// A provider by the name `bench --crypto` takes.
pub fn by_name(name: &str) -> Option<CryptoRef> {
    match name {
        "real" => Some(&REAL),
        "fast" => Some(&FAST),
        _ => None,
    }
}

fn session_digest(key: &SessionPublicKey, msg: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(SESSION_TAG).chain_update(key.as_bytes()).chain_update(msg).finalize().into()
}

/// The AEAD key of a body sealed to `recipient` under `ephemeral` (both public, so no secret at all).
fn agreed_key(ephemeral: &[u8; 65], recipient: &SessionPublicKey) -> [u8; 32] {
    Sha256::new()
        .chain_update(AGREEMENT_TAG)
        .chain_update(ephemeral)
        .chain_update(recipient.as_bytes())
        .finalize()
        .into()
}

fn wallet_digest(address: &Address, message: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(WALLET_TAG).chain_update(address.0).chain_update(message).finalize().into()
}

impl Crypto for FastCrypto {
    fn name(&self) -> &'static str {
        "fast"
    }

    /// Checks the prefix byte only: decompressing the point is the cost this provider exists to avoid.
    fn public_key(&self, bytes: &[u8; 33]) -> Result<SessionPublicKey, KeyError> {
        SessionPublicKey::unchecked(bytes)
    }

    fn sign(&self, key: &SessionKey, msg: &[u8]) -> Signature {
        let digest = session_digest(key.public(), msg);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&digest);
        sig[32..].copy_from_slice(&digest);
        Signature(sig)
    }

    fn verify(&self, key: &SessionPublicKey, msg: &[u8], sig: &Signature) -> Result<(), BadSignature> {
        let digest = session_digest(key, msg);
        if sig.0[..32] == digest && sig.0[32..] == digest {
            Ok(())
        } else {
            Err(BadSignature)
        }
    }

    /// `address (20) ‖ sha256(tag ‖ address ‖ message) (32) ‖ zeros (12) ‖ v = 27`.
    fn personal_sign(&self, wallet: &WalletKey, message: &[u8]) -> WalletSignature {
        let address = wallet.address();
        let mut sig = [0u8; 65];
        sig[..20].copy_from_slice(&address.0);
        sig[20..52].copy_from_slice(&wallet_digest(&address, message));
        sig[64] = 27;
        WalletSignature(sig)
    }

    fn recover_personal_sign(&self, message: &[u8], sig: &WalletSignature) -> Result<Address, RecoverError> {
        match sig.0[64] {
            0 | 1 | 27 | 28 => {}
            v => return Err(RecoverError::BadV(v)),
        }
        let mut address = [0u8; 20];
        address.copy_from_slice(&sig.0[..20]);
        let address = Address(address);
        if sig.0[20..52] == wallet_digest(&address, message) {
            Ok(address)
        } else {
            Err(RecoverError::NoKey)
        }
    }

    /// `0x04 ‖ sha256(tag ‖ secret) ‖ sha256(that)` stands for the ephemeral point; the key is a hash of
    /// it and the recipient's key.
    fn encapsulate(
        &self,
        ephemeral: &[u8; 32],
        recipient: &SessionPublicKey,
    ) -> Result<([u8; 65], [u8; 32]), KeyError> {
        let x: [u8; 32] = Sha256::new().chain_update(EPHEMERAL_TAG).chain_update(ephemeral).finalize().into();
        let y: [u8; 32] = Sha256::digest(x).into();
        let mut public = [0u8; 65];
        public[0] = 0x04;
        public[1..33].copy_from_slice(&x);
        public[33..].copy_from_slice(&y);
        Ok((public, agreed_key(&public, recipient)))
    }

    fn decapsulate(&self, me: &SessionKey, ephemeral: &[u8; 65]) -> Result<[u8; 32], KeyError> {
        if ephemeral[0] != 0x04 {
            return Err(KeyError::InvalidPublic);
        }
        Ok(agreed_key(ephemeral, me.public()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chordial_core::e2e;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn fast_signatures_keep_the_sizes_and_check_what_they_sign() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let key = SessionKey::generate(&mut rng).with_crypto(&FAST);
        let sig = key.sign(b"frame");
        assert_eq!(FAST.verify(key.public(), b"frame", &sig), Ok(()));
        assert_eq!(FAST.verify(key.public(), b"framf", &sig), Err(BadSignature));
        let other = SessionKey::generate(&mut rng);
        assert_eq!(FAST.verify(other.public(), b"frame", &sig), Err(BadSignature));
        // A fast signature is no real one, and the other way round.
        assert_eq!(REAL.verify(key.public(), b"frame", &sig), Err(BadSignature));
        assert_eq!(FAST.verify(key.public(), b"frame", &REAL.sign(&key, b"frame")), Err(BadSignature));

        let wallet = WalletKey::generate(&mut rng);
        let wsig = FAST.personal_sign(&wallet, b"siwe text");
        assert_eq!(FAST.recover_personal_sign(b"siwe text", &wsig), Ok(wallet.address()));
        assert_eq!(FAST.recover_personal_sign(b"siwe texT", &wsig), Err(RecoverError::NoKey));
        let mut bad_v = wsig;
        bad_v.0[64] = 30;
        assert_eq!(FAST.recover_personal_sign(b"siwe text", &bad_v), Err(RecoverError::BadV(30)));
    }

    #[test]
    fn fast_sealing_keeps_the_format_and_opens_only_for_its_recipient() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let me = SessionKey::generate(&mut rng).with_crypto(&FAST);
        let other = SessionKey::generate(&mut rng).with_crypto(&FAST);
        let sealed = e2e::seal_to(&FAST, &mut rng, me.public(), b"offer").expect("seals");
        let real =
            e2e::seal_to(&REAL, &mut ChaCha20Rng::seed_from_u64(4), me.public(), b"offer").expect("seals");
        assert_eq!(sealed.len(), real.len(), "the same size as a real sealed body");
        assert_eq!(sealed[0], 0x04);
        assert_eq!(e2e::open_sealed(&me, usize::MAX, &sealed).expect("opens"), b"offer");
        assert!(e2e::open_sealed(&other, usize::MAX, &sealed).is_err(), "another key cannot open it");
        let mut tampered = sealed.clone();
        *tampered.last_mut().expect("not empty") ^= 1;
        assert!(e2e::open_sealed(&me, usize::MAX, &tampered).is_err(), "the AEAD still refuses a change");
        // A real key cannot open a fast body, nor a fast one a real body.
        let me_real = SessionKey::from_bytes(&me.to_bytes()).expect("a key");
        assert!(e2e::open_sealed(&me_real, usize::MAX, &sealed).is_err());
        assert!(e2e::open_sealed(&me, usize::MAX, &real).is_err());
    }
}
