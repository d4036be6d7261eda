//! Fixed keys and a valid sealed message shared by the fuzz targets and the corpus seeder, so the seeds
//! are valid input for the keys the targets use.

use std::sync::OnceLock;
use std::time::Duration;

use chordial_core::e2e::{self, InnerMessage};
use chordial_core::identity::address::Address;
use chordial_core::identity::delegation::{delegation_message, Delegation, DelegationRequest};
use chordial_core::identity::wallet::WalletKey;
use chordial_core::identity::SessionKey;
use chordial_core::Timestamp;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The network every fixture delegation is for.
pub const NETWORK: &str = "chordial-fuzz";

/// The instant every target runs at (delegations below are valid then).
pub fn now() -> Timestamp {
    Timestamp::from_secs(1_750_000_000)
}

/// The receiving node (`me`) and a sender with a valid delegation.
pub struct Fixture {
    /// The recipient's session key.
    pub me: SessionKey,
    /// The recipient's wallet address.
    pub my_wallet: Address,
    /// The sender's session key.
    pub sender: SessionKey,
    /// The sender's wallet.
    pub sender_wallet: WalletKey,
    /// The sender wallet's delegation to `sender`.
    pub delegation: Delegation,
}

/// The shared fixture, built once per process.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0xf022);
        let me = SessionKey::generate(&mut rng);
        let my_wallet = WalletKey::generate(&mut rng).address();
        let sender = SessionKey::generate(&mut rng);
        let sender_wallet = WalletKey::generate(&mut rng);
        let req = DelegationRequest {
            domain: "app.example".into(),
            address: sender_wallet.address(),
            chain_id: 1,
            network: NETWORK.into(),
            lifetime: Duration::from_secs(30 * 86_400),
        };
        let message = delegation_message(sender.public(), &req, now(), &mut rng).to_string();
        let signature = sender_wallet.personal_sign(message.as_bytes());
        Fixture { me, my_wallet, sender, sender_wallet, delegation: Delegation { message, signature } }
    })
}

/// A valid ciphertext from the fixture's sender to `me`.
pub fn sealed(payload: &[u8], seed: u64) -> Vec<u8> {
    let f = fixture();
    let inner = InnerMessage {
        from_wallet: f.sender_wallet.address(),
        to_wallet: f.my_wallet,
        app_origin: "https://app.example".into(),
        seq: seed,
        sent_at: now(),
        payload: payload.to_vec(),
    };
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    e2e::seal(&mut rng, &f.sender, &f.delegation, f.me.public(), &inner).expect("fixture seals")
}
