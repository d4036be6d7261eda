//! Simulated users: a wallet, a session key, and the one delegation the wallet signs for it.
//!
//! A node keeps its identity across a crash and restart (as a browser keeps its session key and delegation
//! in storage), so the world stores the session key's bytes and the delegation per node slot.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;

use chordial_core::crypto::CryptoRef;
use chordial_core::identity::delegation::{delegation_message, Delegation, DelegationRequest};
use chordial_core::identity::wallet::WalletKey;
use chordial_core::identity::{KeyError, SessionKey};
use chordial_core::{Id, Timestamp};

/// How long simulated delegations last: long enough for any run (the core refuses more than 366 days).
pub const DELEGATION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a node needs to start (and restart) as the same ring member.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The session key's secret bytes.
    pub session: [u8; 32],
    /// The wallet's grant to that session key.
    pub delegation: Delegation,
    /// The node id (`sha1` of the session public key).
    pub id: Id,
    /// The wallet's secret key, kept so the same wallet can delegate to another device (another session).
    pub wallet: [u8; 32],
}

impl Identity {
    /// A fresh wallet and session key from `rng`, the wallet delegating to the session for `network` with a
    /// signature made through `crypto` (the provider the world's nodes verify with).
    pub fn generate(rng: &mut ChaCha20Rng, crypto: CryptoRef, network: &str, now: Timestamp) -> Identity {
        let wallet = WalletKey::generate(rng);
        Identity::for_wallet(&wallet, rng, crypto, network, now)
    }

    /// A new device of `wallet`: a fresh session key with its own delegation from the same wallet.
    pub fn for_wallet(
        wallet: &WalletKey,
        rng: &mut ChaCha20Rng,
        crypto: CryptoRef,
        network: &str,
        now: Timestamp,
    ) -> Identity {
        let session = SessionKey::generate(rng);
        Identity::delegated(session, wallet, rng, crypto, network, now)
    }

    /// An identity whose node id lies in `(from, to)`: session keys are generated until one does (what an
    /// attacker who chooses its ids does), then a fresh wallet delegates to it. Also returns how many keys
    /// it took.
    pub fn with_id_between(
        rng: &mut ChaCha20Rng,
        crypto: CryptoRef,
        network: &str,
        now: Timestamp,
        from: Id,
        to: Id,
    ) -> (Identity, u64) {
        let mut tries = 0;
        let session = loop {
            tries += 1;
            let session = SessionKey::generate(rng);
            if session.node_id().in_open(from, to) {
                break session;
            }
        };
        let wallet = WalletKey::generate(rng);
        (Identity::delegated(session, &wallet, rng, crypto, network, now), tries)
    }

    /// `session` with a delegation from `wallet` for `network`.
    fn delegated(
        session: SessionKey,
        wallet: &WalletKey,
        rng: &mut ChaCha20Rng,
        crypto: CryptoRef,
        network: &str,
        now: Timestamp,
    ) -> Identity {
        let request = DelegationRequest {
            domain: "sim.chordial.invalid".to_owned(),
            address: wallet.address(),
            chain_id: 1,
            network: network.to_owned(),
            lifetime: DELEGATION_LIFETIME,
        };
        let message = delegation_message(session.public(), &request, now, rng);
        let delegation = Delegation::sign_with(crypto, &message, wallet);
        Identity { session: session.to_bytes(), id: session.node_id(), delegation, wallet: wallet.to_bytes() }
    }

    /// The wallet key, rebuilt from its bytes.
    pub fn wallet_key(&self) -> Result<WalletKey, KeyError> {
        WalletKey::from_bytes(&self.wallet)
    }

    /// The session key, rebuilt from its bytes.
    pub fn session_key(&self) -> Result<SessionKey, KeyError> {
        SessionKey::from_bytes(&self.session)
    }
}
