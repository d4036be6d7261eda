//! Writes valid seeds into `corpus/<target>/` (run from `fuzz/`): a real sealed message, its decrypted
//! plaintext (for the "encrypt to me" mode), a real delegation text, a real envelope, and real mailbox
//! bodies (a signed entry in `Replicate` and `Store`, a signed acknowledgement in `DropMail`; both as the plaintext of `StoreSealed` and `MailboxAck`),
//! and the contents of a link offer and answer as `SealedOffer` / `SealedAnswer` seal them.

use std::fs;
use std::path::Path;

use chordial_core::node::msg::{self, AnswerContents, AppMsg, LinkMsg, OfferContents, Routed, SealedStore};
use chordial_core::node::records::{mail_id, MailAck, MailboxEntry, Record};
use chordial_core::node::LinkPurpose;
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

    let ct = sealed(b"mail", 9);
    let entry = MailboxEntry::sign(
        &f.sender,
        f.sender_wallet.address(),
        &f.delegation,
        f.my_wallet,
        *f.me.public(),
        ct.clone(),
        now(),
        now().saturating_add(std::time::Duration::from_secs(3600)),
    );
    let record = Record::Mailbox(entry);
    let record_for_seal = record.clone();
    let ack = MailAck::sign(&f.sender, f.sender_wallet.address(), &f.delegation, vec![mail_id(&ct)]);
    let replicate = msg::link_frame(&LinkMsg::Replicate { records: vec![record.clone()] });
    let drop_mail = msg::link_frame(&LinkMsg::DropMail { ack: Box::new(ack.clone()) });
    write("mail_decode", "replicate", &[&[0u8][..], &replicate[1..]].concat());
    write("mail_decode", "drop-mail", &[&[0u8][..], &drop_mail[1..]].concat());
    let store = postcard::to_allocvec(&Routed::App(AppMsg::Store { record: Box::new(record) })).expect("encode");
    write("mail_decode", "store", &[&[1u8][..], &store].concat());
    // Sealed bodies: the plaintext, which the target encrypts to the fixture key when the mode is odd.
    let key = record_for_seal.key();
    let entry_plain = postcard::to_allocvec(&SealedStore { key, record: record_for_seal }).expect("encode");
    let ack_plain = postcard::to_allocvec(&ack).expect("encode");
    write("sealed_body_open", "store-sealed", &[&[1u8][..], &entry_plain].concat());
    write("sealed_body_open", "mailbox-ack", &[&[1u8][..], &ack_plain].concat());
    let offer = OfferContents {
        purpose: LinkPurpose::Finger,
        sdp: "v=0 an offer".into(),
        delegation: f.delegation.clone(),
    };
    let answer = AnswerContents { sdp: "v=0 an answer".into(), delegation: f.delegation.clone() };
    write(
        "sealed_body_open",
        "sealed-offer",
        &[&[1u8][..], &postcard::to_allocvec(&offer).expect("encode")].concat(),
    );
    write(
        "sealed_body_open",
        "sealed-answer",
        &[&[1u8][..], &postcard::to_allocvec(&answer).expect("encode")].concat(),
    );
    println!("seeds written under fuzz/corpus/");
}
