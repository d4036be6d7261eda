//! `wire::envelope::decode` on arbitrary frames. Random frames die at the signature check, so when the
//! first byte is odd the rest is taken as the signed part and signed with a fixed key: that drives the
//! header and body decoders with attacker-chosen (but signed) bytes. Never panics.
#![no_main]

use chordial_core::wire::envelope::{self, NetworkTag, HEADER_LEN};
use chordial_fuzz::{fixture, NETWORK};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// A body with the shapes real bodies use: enums, options, nested vectors, strings, fixed arrays.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
enum Body {
    Ping(u64),
    Data(Vec<u8>),
    Text(String),
    Nested(Vec<(Option<[u8; 20]>, Vec<String>)>),
    Frame { id: [u8; 16], at: u64, inner: Option<Box<Body>> },
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let network = NetworkTag::from_name(NETWORK);
    let frame = if mode & 1 == 1 {
        let key = &fixture().sender;
        let mut frame = vec![0u8; HEADER_LEN];
        frame[0] = envelope::VERSION;
        frame[1] = mode >> 1;
        frame[2..35].copy_from_slice(key.public().as_bytes());
        frame[35..HEADER_LEN].copy_from_slice(&key.sign(rest).0);
        frame.extend_from_slice(rest);
        frame
    } else {
        rest.to_vec()
    };
    let _ = envelope::decode::<Body>(&frame, network);
    let _ = envelope::decode::<Vec<u8>>(&frame, network);
});
