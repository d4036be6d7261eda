//! The mailbox wire bodies on arbitrary bytes: a link message (`msg::decode_link`, which carries
//! `Replicate` / `ReplicateAt` records and `DropMail` acknowledgements) or a routed body (`Routed`, postcard,
//! which carries `Store` records; `StoreSealed` and `MailboxAck` carry sealed bodies, which `sealed_body_open`
//! fuzzes), by the first byte. Whatever decodes is checked the way a holder checks
//! it (`MailboxEntry::verify`, `MailAck::verify`), so attacker-chosen entries and acknowledgements drive the
//! verification code too. Never panics.
#![no_main]

use std::time::Duration;

use chordial_core::identity::DelegationCache;
use chordial_core::node::msg::{self, AppMsg, LinkMsg, Routed};
use chordial_core::node::records::{MailAck, Record};
use chordial_fuzz::{now, NETWORK};
use libfuzzer_sys::fuzz_target;

fn check_record(record: &Record, cache: &mut DelegationCache) {
    if let Record::Mailbox(m) = record {
        let _ = m.verify(NETWORK, now(), Duration::from_secs(120), Duration::from_secs(14 * 86_400), cache);
    }
}

fn check_ack(ack: &MailAck, cache: &mut DelegationCache) {
    let _ = ack.verify(NETWORK, now(), cache);
    let _ = ack.key();
    let _ = ack.keys();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut cache = DelegationCache::new(4);
    if mode & 1 == 0 {
        match msg::decode_link(rest) {
            Some(LinkMsg::Replicate { records }) => records.iter().for_each(|r| check_record(r, &mut cache)),
            Some(LinkMsg::ReplicateAt { key, records }) => records.iter().for_each(|r| {
                // What a holder checks first: the key must be one of the record's own.
                let _ = r.keys().contains(&key);
                check_record(r, &mut cache)
            }),
            Some(LinkMsg::DropMail { ack }) => check_ack(&ack, &mut cache),
            _ => {}
        }
    } else {
        match postcard::from_bytes::<Routed>(rest) {
            Ok(Routed::App(AppMsg::Store { record })) => check_record(&record, &mut cache),
            Ok(Routed::App(AppMsg::Records { records, .. })) => {
                records.iter().for_each(|r| check_record(r, &mut cache))
            }
            _ => {}
        }
    }
});
