//! SIWE parsing and delegation field checks on arbitrary text: never panic; whatever parses must print
//! back to text that parses to the same message.
#![no_main]

use chordial_core::identity::delegation::Delegation;
use chordial_core::identity::siwe::SiweMessage;
use chordial_core::identity::wallet::WalletSignature;
use chordial_fuzz::{now, NETWORK};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(msg) = SiweMessage::parse(text) {
        let printed = msg.to_string();
        let again = SiweMessage::parse(&printed).expect("a printed message parses");
        assert_eq!(again, msg, "print/parse round trip changed the message");
    }
    // The delegation checks behind the parser (statement, did:key URI, resources, times, recovery).
    let mut sig = [0u8; 65];
    sig[64] = 27;
    sig[31] = 1;
    sig[63] = 1;
    let d = Delegation { message: text.to_owned(), signature: WalletSignature(sig) };
    let _ = d.verify(NETWORK, now());
});
