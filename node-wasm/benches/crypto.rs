//! The crypto a node does per message, in wasm: the end-to-end session's seal + open against the one-shot
//! seal + open of today's messages, the session handshake, and the two AEADs a session could use
//! (ChaCha20-Poly1305, the Noise suite's, against AES-256-GCM) on their own.
//!
//! `bash scripts/bench-wasm-crypto.sh` runs it (`cargo bench --target wasm32-unknown-unknown`, the
//! wasm-bindgen-test runner, Node's V8: the engine of Chromium) and prints criterion's times.
#![allow(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::time::Duration;

    use aes_gcm::aead::{AeadInOut, KeyInit as _};
    use aes_gcm::{Aes256Gcm, Nonce as AesNonce};
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305::{ChaCha20Poly1305, Nonce as ChaNonce};
    use chordial_core::e2e::session::{self, Credentials, Initiating, Peer};
    use chordial_core::e2e::{self, InnerMessage};
    use chordial_core::identity::delegation::{
        delegation_message, Delegation, DelegationCache, DelegationRequest,
    };
    use chordial_core::identity::wallet::WalletKey;
    use chordial_core::identity::SessionKey;
    use chordial_core::Timestamp;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use wasm_bindgen_test::{wasm_bindgen_bench, Criterion};

    const NETWORK: &str = "chordial-bench";
    const NOW: Timestamp = Timestamp(1_750_000_000_000);

    struct Party {
        wallet: WalletKey,
        session: SessionKey,
        delegation: Delegation,
    }

    fn party(rng: &mut ChaCha20Rng) -> Party {
        let wallet = WalletKey::generate(rng);
        let session = SessionKey::generate(rng);
        let mut req = DelegationRequest::new("app.example", wallet.address(), 1, NETWORK);
        req.lifetime = Duration::from_secs(86_400);
        let delegation = Delegation::sign(&delegation_message(session.public(), &req, NOW, rng), &wallet);
        Party { wallet, session, delegation }
    }

    #[wasm_bindgen_bench]
    fn per_message(c: &mut Criterion) {
        let mut rng = ChaCha20Rng::seed_from_u64(0xbe7c);
        let (alice, bob) = (party(&mut rng), party(&mut rng));
        let mut cache = DelegationCache::new(16);
        let inner = InnerMessage {
            from_wallet: alice.wallet.address(),
            to_wallet: bob.wallet.address(),
            app_origin: "https://app.example".into(),
            seq: 1,
            sent_at: NOW,
            payload: vec![0xa5; 1024],
        };
        let me = bob.wallet.address();
        c.bench_function("wasm_e2e_seal_open_1k", |b| {
            b.iter(|| {
                let ct = e2e::seal(&mut rng, &alice.session, &alice.delegation, bob.session.public(), &inner)
                    .unwrap();
                e2e::open(&bob.session, &me, NETWORK, &mut cache, NOW, &ct).unwrap()
            })
        });
        let a = Credentials::new(&alice.session, alice.delegation.clone());
        let bc = Credentials::new(&bob.session, bob.delegation.clone());
        let peer = Peer {
            session: *bob.session.public(),
            static_key: *bc.static_public(),
            wallet: bob.wallet.address(),
            delegation_expires: NOW.saturating_add(Duration::from_secs(86_400)),
        };
        let mut handshake = |rng: &mut ChaCha20Rng| {
            let (init, hello) = Initiating::start(rng, &a, peer.clone(), NOW, b"").unwrap();
            let responding =
                session::accept(rng, &bc, alice.session.public(), NETWORK, &mut cache, NOW, &hello).unwrap();
            let (theirs, welcome) = responding.welcome(rng, b"").unwrap();
            (init.finish(&welcome).unwrap().0, theirs)
        };
        c.bench_function("wasm_session_handshake", |b| b.iter(|| handshake(&mut rng)));
        let (mut sa, mut sb) = handshake(&mut rng);
        let header = [0x42u8; 64];
        let payload = vec![0xa5; 1024];
        c.bench_function("wasm_session_seal_open_1k", |b| {
            b.iter(|| {
                let m = sa.seal(NOW, &header, &payload).unwrap();
                sb.open(NOW, &header, &m).unwrap()
            })
        });
    }

    #[wasm_bindgen_bench]
    fn aead(c: &mut Criterion) {
        let key = [7u8; 32];
        let chacha = ChaCha20Poly1305::new(&key.into());
        let aes = Aes256Gcm::new(&key.into());
        for size in [1024usize, 64 * 1024] {
            let mut buf = vec![0xa5u8; size];
            c.bench_function(&format!("wasm_chacha20poly1305_seal_{size}"), |b| {
                b.iter(|| chacha.encrypt_in_place_detached(&ChaNonce::default(), b"ad", &mut buf).unwrap())
            });
            c.bench_function(&format!("wasm_aes256gcm_seal_{size}"), |b| {
                b.iter(|| {
                    aes.encrypt_inout_detached(&AesNonce::default(), b"ad", buf.as_mut_slice().into())
                        .unwrap()
                })
            });
        }
    }
}
