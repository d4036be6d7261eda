//! `SenderRow::decode` on arbitrary bytes (a row of the accepted table as a store gives it back: redb on
//! the server, IndexedDB in the browser). Never panics; whatever decodes keeps the row's invariants and
//! encodes back to the same bytes.
#![no_main]

use chordial_core::node::accepted::{SenderRow, WINDOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(row) = SenderRow::decode(data) {
        assert!(row.seqs.len() <= WINDOW);
        assert!(row.seqs.windows(2).all(|w| w[0] < w[1]));
        assert!(row.seqs.first().is_none_or(|&s| s > row.floor));
        assert_eq!(SenderRow::decode(&row.encode()), Some(row));
    }
});
