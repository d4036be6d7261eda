//! `npm start` (until the extension demo exists): a narrated walk through Chordial's identity and
//! encryption, using the real core — a session key, the one wallet signature, verification, and an
//! end-to-end encrypted message between two wallets.

use std::io::{self, Write};

use chordial_core::e2e::{self, InnerMessage};
use chordial_core::identity::delegation::{delegation_message, DelegationRequest};
use chordial_core::identity::{Delegation, DelegationCache, SessionKey, WalletKey};
use chordial_core::Timestamp;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const NETWORK: &str = "chordial-demo";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = io::stdout().lock();
    // A shell reads the clock and hands the time to the core; the core never does.
    #[allow(clippy::disallowed_methods)]
    let now =
        Timestamp(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64);
    let mut rng = ChaCha20Rng::from_seed(rand_seed());

    writeln!(out, "Chordial walkthrough — identity and end-to-end encryption in chordial-core\n")?;

    // Alice's side: a wallet (here a local key standing in for MetaMask) and her browser node's session.
    let alice_wallet = WalletKey::generate(&mut rng);
    let alice_session = SessionKey::generate(&mut rng);
    writeln!(out, "1. Alice's wallet is {}", alice_wallet.address())?;
    writeln!(out, "   Her node made a session key; its ring id is {}", alice_session.node_id())?;

    let request = DelegationRequest::new("demo.chordial.local", alice_wallet.address(), 1, NETWORK);
    let siwe = delegation_message(alice_session.public(), &request, now, &mut rng);
    writeln!(out, "\n2. The node asks the wallet to sign this once (EIP-4361 via personal_sign):\n")?;
    for line in siwe.to_string().lines() {
        writeln!(out, "   | {line}")?;
    }
    let alice_delegation = Delegation::sign(&siwe, &alice_wallet);
    writeln!(out, "\n   signature: {}…", &alice_delegation.signature.to_hex()[..26])?;

    let mut cache = DelegationCache::new(64);
    let verified = cache.verify(&alice_delegation, NETWORK, now)?;
    writeln!(
        out,
        "\n3. Any node verifies it offline: signer {} delegates to session {}…",
        verified.wallet,
        &chordial_core::identity::did::did_key(&verified.session)[..20]
    )?;
    writeln!(out, "   valid until {} (Unix ms)", verified.expires.as_millis())?;
    let again = std::time::Duration::from_millis(1);
    cache.verify(&alice_delegation, NETWORK, now.saturating_add(again))?;
    writeln!(out, "   verified again from the cache: {} hit(s), {} miss(es)", cache.hits(), cache.misses())?;
    let tampered = Delegation {
        message: alice_delegation.message.replace("Chain ID: 1", "Chain ID: 2"),
        ..alice_delegation.clone()
    };
    match cache.verify(&tampered, NETWORK, now) {
        Err(e) => writeln!(out, "   a tampered copy is refused: {e}")?,
        Ok(_) => return Err("a tampered delegation verified".into()),
    }

    // Bob: another wallet with its own node.
    let bob_wallet = WalletKey::generate(&mut rng);
    let bob_session = SessionKey::generate(&mut rng);
    writeln!(
        out,
        "\n4. Bob's wallet is {}; Alice sends him a message for the app https://chat.example",
        bob_wallet.address()
    )?;
    let inner = InnerMessage {
        from_wallet: alice_wallet.address(),
        to_wallet: bob_wallet.address(),
        app_origin: "https://chat.example".into(),
        seq: 1,
        sent_at: now,
        payload: b"gm Bob, this never touches a server".to_vec(),
    };
    let sealed = e2e::seal(&mut rng, &alice_session, &alice_delegation, bob_session.public(), &inner)?;
    writeln!(
        out,
        "   sealed to Bob's session key: {} bytes of ciphertext; relays see only this",
        sealed.len()
    )?;

    let opened = e2e::open(&bob_session, &bob_wallet.address(), NETWORK, &mut cache, now, &sealed)?;
    writeln!(
        out,
        "\n5. Bob's node opens it: from {} (proved by Alice's delegation), app {}, text {:?}",
        opened.inner.from_wallet,
        opened.inner.app_origin,
        String::from_utf8_lossy(&opened.inner.payload)
    )?;
    let eve_session = SessionKey::generate(&mut rng);
    match e2e::open(&eve_session, &bob_wallet.address(), NETWORK, &mut cache, now, &sealed) {
        Err(e) => writeln!(out, "   anyone else's node cannot: {e}")?,
        Ok(_) => return Err("a stranger opened the message".into()),
    }
    writeln!(out, "\nDone. Next: `npm test` runs every test; docs/ explains the protocol.")?;
    Ok(())
}

/// The RNG seed, from the OS (drawing it is the shell's job; the core only takes a seed).
fn rand_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut seed);
    seed
}
