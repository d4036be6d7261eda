//! Writes valid seeds into `corpus/<target>/` (run from `fuzz/`): a real sealed message, its decrypted
//! plaintext (for the "encrypt to me" mode), a real delegation text, and a real envelope.

use std::fs;
use std::path::Path;

use chordial_core::wire::envelope::{self, Destination, Header, MessageId, NetworkTag, HEADER_LEN};
use chordial_core::Id;
use chordial_fuzz::{fixture, now, sealed, NETWORK};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).expect("create corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let f = fixture();
    write("siwe_parse", "delegation", f.delegation.message.as_bytes());

    for (i, payload) in [&b""[..], b"hello", &[0x42; 300]].iter().enumerate() {
        let ct = sealed(payload, i as u64);
        write("e2e_open", &format!("raw-{i}"), &[&[0u8][..], &ct].concat());
        let plaintext = ecies::decrypt(&f.me.to_bytes(), &ct).expect("own ciphertext decrypts");
        write("e2e_open", &format!("plain-{i}"), &[&[1u8][..], &plaintext].concat());
    }

    let header = Header {
        network: NetworkTag::from_name(NETWORK),
        id: MessageId([7; 16]),
        sent_at: now(),
        dest: Destination::Key(Id::hash(&[b"k"])),
        hop_limit: envelope::DEFAULT_HOP_LIMIT,
        reply_to: None,
    };
    let frame = envelope::encode(&f.sender, &header, &vec![1u8, 2, 3]).expect("encode");
    write("envelope_decode", "frame", &[&[0u8][..], &frame].concat());
    write("envelope_decode", "signed-part", &[&[1u8][..], &frame[HEADER_LEN..]].concat());
    println!("seeds written under fuzz/corpus/");
}
