//! The end-to-end session's two decoders on arbitrary input: a hello (`session::accept`) and a session
//! message (`Session::open`). The first byte picks the mode:
//! - 0: the input as a hello from the fixture sender: it must be refused (only the sender's static key makes
//!   one, and the fuzzer does not have it);
//! - 1: a genuine hello carrying the input as data: it must be accepted, from the fixture sender's wallet,
//!   with the data intact; then the input as a session message to that session: refused;
//! - 2: a genuine session message (the input as header and plaintext) with one byte flipped where the input
//!   says: refused, unless nothing was flipped, then opened to the same plaintext, once.
//!
//! Never panics.
#![no_main]

use chordial_core::e2e::session::{self, Credentials, Initiating, Peer, MAX_HANDSHAKE_DATA};
use chordial_core::identity::delegation::DelegationCache;
use chordial_fuzz::{fixture, now, NETWORK};
use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let f = fixture();
    let sender = Credentials::new(&f.sender, f.delegation.clone());
    // The responder shows no delegation in a handshake (its presence record did): any will do here.
    let me = Credentials::new(&f.me, f.delegation.clone());
    let peer = Peer {
        session: *f.me.public(),
        static_key: *me.static_public(),
        wallet: f.my_wallet,
        delegation_expires: now().saturating_add(std::time::Duration::from_secs(3600)),
    };
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut cache = DelegationCache::new(4);
    let mut accept = |hello: &[u8], rng: &mut ChaCha20Rng| {
        let responding = session::accept(rng, &me, f.sender.public(), NETWORK, &mut cache, now(), hello)?;
        let data = responding.data().to_vec();
        let (session, welcome) = responding.welcome(rng, b"")?;
        Ok::<_, session::HandshakeError>((session, welcome, data))
    };
    match mode % 3 {
        0 => assert!(accept(rest, &mut rng).is_err()),
        1 => {
            if rest.len() > MAX_HANDSHAKE_DATA {
                return;
            }
            let (_, hello) = Initiating::start(&mut rng, &sender, peer, now(), rest).expect("fits");
            let (mut theirs, _, data) = accept(&hello, &mut rng).expect("a genuine hello");
            assert_eq!(data, rest);
            assert_eq!(theirs.peer().wallet, f.sender_wallet.address());
            assert!(theirs.open(now(), b"", rest).is_err());
        }
        _ => {
            let (init, hello) = Initiating::start(&mut rng, &sender, peer, now(), b"").expect("fits");
            let (mut theirs, welcome, _) = accept(&hello, &mut rng).expect("a genuine hello");
            let (mut mine, _) = init.finish(&welcome).expect("a genuine welcome");
            let (header, plaintext) = rest.split_at(rest.len() / 2);
            let mut message = mine.seal(now(), header, plaintext).expect("fits");
            let flip = plaintext.first().map(|&b| b as usize % (message.len() + 1));
            match flip {
                Some(at) if at < message.len() => {
                    message[at] ^= 1;
                    assert!(theirs.open(now(), header, &message).is_err());
                }
                _ => {
                    assert_eq!(theirs.open(now(), header, &message).expect("genuine"), plaintext);
                    assert!(theirs.open(now(), header, &message).is_err());
                }
            }
        }
    }
});
