//! End-to-end encryption between wallet holders: what `open` accepts and every way it refuses.

use std::time::Duration;

use chordial_core::e2e::{self, InnerMessage, OpenError, SealError, MAX_PAYLOAD, MAX_SEALED};
use chordial_core::identity::address::Address;
use chordial_core::identity::delegation::{
    delegation_message, Delegation, DelegationCache, DelegationError, DelegationRequest,
};
use chordial_core::identity::wallet::WalletKey;
use chordial_core::identity::SessionKey;
use chordial_core::Timestamp;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NETWORK: &str = "chordial-test";
const DAY: Duration = Duration::from_secs(86_400);

fn now() -> Timestamp {
    Timestamp::from_secs(1_750_000_000)
}

/// A wallet holder running one node: wallet, session key, and the wallet's delegation to that session.
struct Party {
    wallet: WalletKey,
    session: SessionKey,
    delegation: Delegation,
}

impl Party {
    fn new(rng: &mut ChaCha20Rng) -> Party {
        let wallet = WalletKey::generate(rng);
        let session = SessionKey::generate(rng);
        let delegation = delegate(rng, &wallet, &session, NETWORK, now());
        Party { wallet, session, delegation }
    }

    /// Another node (session) of the same wallet.
    fn second_session(&self, rng: &mut ChaCha20Rng) -> Party {
        let session = SessionKey::generate(rng);
        let delegation = delegate(rng, &self.wallet, &session, NETWORK, now());
        Party { wallet: self.wallet.clone(), session, delegation }
    }

    fn address(&self) -> Address {
        self.wallet.address()
    }
}

fn delegate(
    rng: &mut ChaCha20Rng,
    wallet: &WalletKey,
    session: &SessionKey,
    network: &str,
    at: Timestamp,
) -> Delegation {
    let req = DelegationRequest {
        domain: "app.example".into(),
        address: wallet.address(),
        chain_id: 1,
        network: network.into(),
        lifetime: 30 * DAY,
    };
    let message = delegation_message(session.public(), &req, at, rng).to_string();
    let signature = wallet.personal_sign(message.as_bytes());
    Delegation { message, signature }
}

fn message(from: &Party, to: &Party, payload: Vec<u8>) -> InnerMessage {
    InnerMessage {
        from_wallet: from.address(),
        to_wallet: to.address(),
        app_origin: "https://app.example".into(),
        seq: 7,
        sent_at: now(),
        payload,
    }
}

fn open(me: &Party, ciphertext: &[u8]) -> Result<e2e::Opened, OpenError> {
    let mut cache = DelegationCache::new(16);
    e2e::open(&me.session, &me.address(), NETWORK, &mut cache, now(), ciphertext)
}

fn setup(seed: u64) -> (ChaCha20Rng, Party, Party) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice = Party::new(&mut rng);
    let bob = Party::new(&mut rng);
    (rng, alice, bob)
}

#[test]
fn round_trip_proves_sender_wallet_and_session() {
    let (mut rng, alice, bob) = setup(1);
    let inner = message(&alice, &bob, b"hello bob".to_vec());
    let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
    assert!(ct.len() <= MAX_SEALED);
    let opened = open(&bob, &ct).unwrap();
    assert_eq!(opened.inner, inner);
    assert_eq!(opened.sender_session, *alice.session.public());
    assert_eq!(opened.sender.wallet, alice.address());
    assert_eq!(opened.sender.session, *alice.session.public());
}

#[test]
fn relays_see_neither_wallet_nor_payload() {
    let (mut rng, alice, bob) = setup(2);
    let inner = message(&alice, &bob, b"secret words".to_vec());
    let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
    let contains = |needle: &[u8]| ct.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(alice.address().as_bytes()));
    assert!(!contains(bob.address().as_bytes()));
    assert!(!contains(alice.session.public().as_bytes()));
    assert!(!contains(b"secret words"));
    assert!(!contains(b"app.example"));
}

#[test]
fn sealing_is_deterministic_for_a_seeded_rng() {
    let (_, alice, bob) = setup(3);
    let inner = message(&alice, &bob, vec![1, 2, 3]);
    let seal = |seed| {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap()
    };
    assert_eq!(seal(9), seal(9));
    assert_ne!(seal(9), seal(10));
}

#[test]
fn tampered_or_truncated_ciphertext_is_refused() {
    let (mut rng, alice, bob) = setup(4);
    let inner = message(&alice, &bob, vec![0xab; 300]);
    let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
    for i in [0, 1, 40, 64, 65, 80, 81, 96, 97, 200, ct.len() / 2, ct.len() - 1] {
        let mut bad = ct.clone();
        bad[i] ^= 0x20;
        assert!(matches!(open(&bob, &bad), Err(OpenError::Decrypt)), "flip at {i}");
    }
    for len in [0, 1, 64, 96, 97, ct.len() - 1] {
        assert!(matches!(open(&bob, &ct[..len]), Err(OpenError::Decrypt)), "truncated to {len}");
    }
    let mut longer = ct.clone();
    longer.push(0);
    assert!(matches!(open(&bob, &longer), Err(OpenError::Decrypt)));
}

#[test]
fn ciphertext_for_another_session_does_not_decrypt() {
    let (mut rng, alice, bob) = setup(5);
    let carol = Party::new(&mut rng);
    let inner = message(&alice, &bob, b"for bob".to_vec());
    let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, carol.session.public(), &inner).unwrap();
    assert!(matches!(open(&bob, &ct), Err(OpenError::Decrypt)));
    // Another session of Bob's own wallet cannot read what was sealed for the first one either.
    let bob2 = bob.second_session(&mut rng);
    let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
    assert!(matches!(open(&bob2, &ct), Err(OpenError::Decrypt)));
}

#[test]
fn forwarded_message_is_not_for_me() {
    // Bob decrypts what Alice sealed for him and re-encrypts the signed plaintext to Carol: Carol must not
    // take it as Alice writing to her. The ciphertext uses the plain `ecies` format, so the attacker's own
    // ecies library is enough to do this.
    let (mut rng, alice, bob) = setup(6);
    let carol = Party::new(&mut rng);
    let inner = message(&alice, &bob, b"only for bob".to_vec());
    let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
    let plaintext = ecies::decrypt(&bob.session.to_bytes(), &ct).unwrap();
    let forwarded = ecies::encrypt(carol.session.public().as_bytes(), &plaintext).unwrap();
    assert!(matches!(open(&carol, &forwarded), Err(OpenError::NotForMe)));
    // Even to another session of Bob's own wallet.
    let bob2 = bob.second_session(&mut rng);
    let forwarded = ecies::encrypt(bob2.session.public().as_bytes(), &plaintext).unwrap();
    assert!(matches!(open(&bob2, &forwarded), Err(OpenError::NotForMe)));
}

#[test]
fn message_for_another_wallet_is_refused() {
    let (mut rng, alice, bob) = setup(7);
    let carol = Party::new(&mut rng);
    // Sealed to Bob's session key, but addressed to Carol's wallet.
    let inner = message(&alice, &carol, b"misaddressed".to_vec());
    let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
    assert!(matches!(open(&bob, &ct), Err(OpenError::WrongWallet)));
}

#[test]
fn claiming_another_wallet_is_refused() {
    // Mallory holds a valid delegation from her own wallet but claims to be Alice.
    let (mut rng, alice, bob) = setup(8);
    let mallory = Party::new(&mut rng);
    let mut inner = message(&mallory, &bob, b"I am alice".to_vec());
    inner.from_wallet = alice.address();
    let ct =
        e2e::seal(&mut rng, &mallory.session, &mallory.delegation, bob.session.public(), &inner).unwrap();
    assert!(matches!(open(&bob, &ct), Err(OpenError::SenderWalletMismatch)));
}

#[test]
fn signing_with_an_undelegated_session_is_refused() {
    // Mallory copies Alice's (public) delegation but signs with her own session key.
    let (mut rng, alice, bob) = setup(9);
    let mallory = Party::new(&mut rng);
    let inner = message(&alice, &bob, b"I am alice".to_vec());
    let ct = e2e::seal(&mut rng, &mallory.session, &alice.delegation, bob.session.public(), &inner).unwrap();
    assert!(matches!(open(&bob, &ct), Err(OpenError::SenderSessionMismatch)));
}

#[test]
fn delegation_for_another_network_or_expired_is_refused() {
    let (mut rng, alice, bob) = setup(10);
    let other_net = delegate(&mut rng, &alice.wallet, &alice.session, "another-network", now());
    let inner = message(&alice, &bob, b"x".to_vec());
    let ct = e2e::seal(&mut rng, &alice.session, &other_net, bob.session.public(), &inner).unwrap();
    assert_eq!(open(&bob, &ct).unwrap_err(), OpenError::Delegation(DelegationError::WrongNetwork));

    let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
    let mut cache = DelegationCache::new(16);
    let later = now().saturating_add(31 * DAY);
    let result = e2e::open(&bob.session, &bob.address(), NETWORK, &mut cache, later, &ct);
    assert_eq!(result.unwrap_err(), OpenError::Delegation(DelegationError::Expired));
}

#[test]
fn forged_delegation_signature_is_refused() {
    let (mut rng, alice, bob) = setup(11);
    let mallory = Party::new(&mut rng);
    // Alice's delegation text, signed by Mallory's wallet: recovers to Mallory, not the address line.
    let forged = Delegation {
        message: alice.delegation.message.clone(),
        signature: mallory.wallet.personal_sign(alice.delegation.message.as_bytes()),
    };
    let inner = message(&alice, &bob, b"x".to_vec());
    let ct = e2e::seal(&mut rng, &alice.session, &forged, bob.session.public(), &inner).unwrap();
    assert_eq!(open(&bob, &ct).unwrap_err(), OpenError::Delegation(DelegationError::WrongSigner));
}

#[test]
fn payload_limit_is_enforced_on_seal_and_open() {
    let (mut rng, alice, bob) = setup(12);
    let inner = message(&alice, &bob, vec![7; MAX_PAYLOAD]);
    let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
    assert!(ct.len() <= MAX_SEALED);
    assert_eq!(open(&bob, &ct).unwrap().inner.payload.len(), MAX_PAYLOAD);

    let inner = message(&alice, &bob, vec![7; MAX_PAYLOAD + 1]);
    let err = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner);
    assert_eq!(err, Err(SealError::TooLarge(MAX_PAYLOAD + 1)));

    let mut inner = message(&alice, &bob, vec![]);
    inner.app_origin = "x".repeat(e2e::MAX_APP_ORIGIN + 1);
    let err = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner);
    assert_eq!(err, Err(SealError::OriginTooLong(e2e::MAX_APP_ORIGIN + 1)));

    // Oversized ciphertext is refused before any decryption work.
    let huge = ecies::encrypt(bob.session.public().as_bytes(), &vec![0u8; MAX_SEALED]).unwrap();
    assert!(matches!(open(&bob, &huge), Err(OpenError::TooLarge)));
}

#[test]
fn well_encrypted_garbage_is_malformed() {
    let (_, _, bob) = setup(13);
    let key = bob.session.public().as_bytes();
    let open_plain = |p: &[u8]| open(&bob, &ecies::encrypt(key, p).unwrap());
    assert!(matches!(open_plain(b""), Err(OpenError::Malformed)));
    assert!(matches!(open_plain(&[2, 0, 0]), Err(OpenError::UnsupportedVersion(2))));
    assert!(matches!(open_plain(&[1; 64]), Err(OpenError::Malformed)));
    assert!(matches!(open_plain(&[1; 500]), Err(OpenError::Malformed)));
}

#[test]
fn trailing_bytes_after_the_body_are_refused() {
    let (mut rng, alice, bob) = setup(14);
    let inner = message(&alice, &bob, b"x".to_vec());
    let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
    let mut plaintext = ecies::decrypt(&bob.session.to_bytes(), &ct).unwrap();
    plaintext.push(0);
    let ct = ecies::encrypt(bob.session.public().as_bytes(), &plaintext).unwrap();
    assert!(matches!(open(&bob, &ct), Err(OpenError::Malformed)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes never panic `open`.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (_, _, bob) = setup(20);
        prop_assert!(open(&bob, &bytes).is_err());
    }

    /// Arbitrary plaintext correctly encrypted to me (so it gets past the AEAD) never panics either.
    #[test]
    fn arbitrary_decryptable_plaintext_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (_, _, bob) = setup(21);
        let ct = ecies::encrypt(bob.session.public().as_bytes(), &bytes).unwrap();
        prop_assert!(open(&bob, &ct).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Changing any byte of a sealed plaintext (then re-encrypting it properly) is always refused.
    #[test]
    fn any_modified_plaintext_is_refused(index in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let (mut rng, alice, bob) = setup(22);
        let inner = message(&alice, &bob, b"integrity".to_vec());
        let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner).unwrap();
        let mut plaintext = ecies::decrypt(&bob.session.to_bytes(), &ct).unwrap();
        let i = index.index(plaintext.len());
        plaintext[i] ^= xor;
        let ct = ecies::encrypt(bob.session.public().as_bytes(), &plaintext).unwrap();
        prop_assert!(open(&bob, &ct).is_err(), "modification at {} accepted", i);
    }
}
