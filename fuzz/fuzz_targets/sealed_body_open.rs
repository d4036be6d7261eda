//! `e2e::open_sealed` and the bodies sealed with `e2e::seal_to` (`StoreSealed`: a mailbox entry and its key;
//! `MailboxAck`: an acknowledgement; `SealedOffer` / `SealedAnswer`: a link offer's or answer's contents) on
//! arbitrary input: as raw ciphertext (the AEAD must refuse it) and — when the first byte is odd — as
//! plaintext properly encrypted to the fixture key, so the fuzzer reaches the strict postcard decoding and
//! the checks behind it (`MailboxEntry::verify`, `MailAck::verify`, the offer's or answer's delegation).
//! Never panics; nothing opens that was not encrypted to the fixture key.
#![no_main]

use std::time::Duration;

use chordial_core::e2e;
use chordial_core::identity::DelegationCache;
use chordial_core::node::msg::{AnswerContents, OfferContents, SealedStore};
use chordial_core::node::records::{MailAck, Record};
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
    let Ok(plain) = e2e::open_sealed(&f.me, 96 * 1024, &ciphertext) else {
        // Raw bytes never open (the fuzzer does not hold an ephemeral key's shared secret with us).
        return;
    };
    assert!(mode & 1 == 1, "raw bytes opened as a sealed body");
    let mut cache = DelegationCache::new(4);
    if let Ok(SealedStore { record: Record::Mailbox(m), .. }) = postcard::from_bytes::<SealedStore>(&plain) {
        let _ =
            m.verify(NETWORK, now(), Duration::from_secs(120), Duration::from_secs(14 * 86_400), &mut cache);
    }
    if let Ok(ack) = postcard::from_bytes::<MailAck>(&plain) {
        let _ = ack.verify(NETWORK, now(), &mut cache);
    }
    // As a node opens a link offer or answer: strictly (no trailing bytes), then the delegation inside.
    if let Ok((offer, [])) = postcard::take_from_bytes::<OfferContents>(&plain) {
        let _ = cache.verify(&offer.delegation, NETWORK, now());
    }
    if let Ok((answer, [])) = postcard::take_from_bytes::<AnswerContents>(&plain) {
        let _ = cache.verify(&answer.delegation, NETWORK, now());
    }
});
