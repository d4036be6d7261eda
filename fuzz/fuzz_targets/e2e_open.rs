//! `e2e::open` on arbitrary input, both as raw ciphertext (the AEAD must refuse it) and — when the first
//! byte is odd — as plaintext properly encrypted to the fixture key, so the fuzzer reaches the decoder and
//! every check behind the AEAD. Never panics; only the fixture sender's genuine messages may open.
#![no_main]

use chordial_core::e2e;
use chordial_core::identity::delegation::DelegationCache;
use chordial_fuzz::{fixture, now, NETWORK};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let f = fixture();
    let ciphertext = if mode & 1 == 1 {
        match ecies::encrypt(f.me.public().as_bytes(), rest) {
            Ok(ct) => ct,
            Err(_) => return,
        }
    } else {
        rest.to_vec()
    };
    let mut cache = DelegationCache::new(4);
    if let Ok(opened) = e2e::open(&f.me, &f.my_wallet, NETWORK, &mut cache, now(), &ciphertext) {
        // Anything that opens was signed by the fixture sender (the only key the fuzzer does not have is
        // every other one): the sender session and wallet must be the fixture's.
        assert_eq!(opened.sender_session, *f.sender.public());
        assert_eq!(opened.sender.wallet, f.sender_wallet.address());
        assert_eq!(opened.inner.from_wallet, f.sender_wallet.address());
        assert!(opened.inner.payload.len() <= e2e::MAX_PAYLOAD);
    }
});
