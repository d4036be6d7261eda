//! Session frames carry no signature (issue 17; `docs/protocol.md`, "Session frames"), so every relay on
//! their path is an attacker here, and none of what it can make changes what the two ends get.
//!
//! Every member but the two ends is an attacker. For each session frame it relays (a message or a receipt),
//! it sends, besides passing the frame on:
//!
//! - a `NoSession` naming the frame's session index, signed by itself, to the frame's sender;
//! - to the frame's destination, a session frame naming the real sender with the same index and junk
//!   ciphertext (it cannot seal: the session key is the two ends' alone) — and the same frame's header and
//!   message with the time moved, so that its id (the hash of its bytes) is new;
//! - to the destination, a session frame naming the real sender with an index nobody has, so that the
//!   **destination itself** answers `NoSession` (signed by the right node) to the sender.
//!
//! The ends must notice nothing: every message delivered with its receipt and received once, no session
//! dropped (`sessions_lost`), no new handshake, and the junk refused. Switched off, each defence fails this
//! test: a `NoSession` believed from anyone, or for any index, drops the session and starts a new hello (and
//! the forged frames would be let through by nothing else).
//!
//! Sizes: 16 nodes (the same at full size).

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use chordial_core::e2e::session;
use chordial_core::node::msg::{self, AppMsg, Routed};
use chordial_core::node::{Counters, Event, LinkId, SendOutcome};
use chordial_core::wire::envelope::{self, Destination, Header, MessageId, DEFAULT_HOP_LIMIT};
use chordial_core::Id;
use chordial_sim::adversary::{Adversary, Ctx};
use chordial_sim::scenario::pick;
use chordial_sim::World;
use rand_core::RngCore;

use common::{payload, received_since, ring, send, wait_one, wallet};

const SEED: u64 = 173;
const MEMBERS: usize = 16;

#[derive(Default)]
struct Forged {
    /// The ids of the session frames the attackers made: not forged around again when they come by (an
    /// end relays them too), which would multiply them without end.
    made: BTreeSet<[u8; 16]>,
    no_sessions: u64,
    junk: u64,
    moved: u64,
    unknown_index: u64,
}

/// A relay that forges around every session frame between `ends` that it passes on (not around the frames
/// the attackers made).
struct SessionForger {
    ends: [Id; 2],
    forged: Rc<RefCell<Forged>>,
}

impl Adversary for SessionForger {
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, link: LinkId, bytes: &[u8]) -> bool {
        let Some((&kind, rest)) = bytes.split_first() else { return true };
        let Some(routed) = msg::decode_routed(kind, rest) else { return true };
        let Some((header, data)) = envelope::peek_session(routed.envelope) else { return true };
        if !self.ends.contains(&header.from) || !self.ends.contains(&header.dest) {
            return true;
        }
        if self.forged.borrow().made.contains(&envelope::content_id(routed.envelope).0) {
            return true;
        }
        let Some(index) = session::data_index(data) else { return true };
        let mut forged = self.forged.borrow_mut();

        // "No such session", signed by the relay.
        let reply = Header {
            network: ctx.network,
            id: MessageId::random(ctx.rng),
            sent_at: ctx.now,
            dest: Destination::Node(header.from),
            hop_limit: DEFAULT_HOP_LIMIT,
            reply_to: Some(envelope::content_id(routed.envelope)),
        };
        let body = Routed::App(AppMsg::NoSession { index });
        let signed = envelope::encode(ctx.session, &reply, &body).expect("fits");
        ctx.send(link, msg::routed_frame(&signed, false));
        forged.no_sessions += 1;

        // The same index and sender with junk, and the real message with the time moved.
        let mut junk = data.to_vec();
        for b in junk.iter_mut().skip(16) {
            *b = (ctx.rng.next_u32() & 0xff) as u8;
        }
        let moved = envelope::SessionHeader { sent_at: ctx.now, ..header };
        let frames = [(header, junk), (moved, data.to_vec())];
        // An index nobody has: the destination answers the sender "no such session" itself.
        let mut unknown = data.to_vec();
        unknown[..8].copy_from_slice(&ctx.rng.next_u64().to_le_bytes());
        for (h, d) in frames.into_iter().chain([(moved, unknown)]) {
            let frame = envelope::encode_session(&h, &d).expect("fits");
            forged.made.insert(envelope::content_id(&frame).0);
            ctx.send(link, msg::routed_frame(&frame, false));
        }
        forged.junk += 1;
        forged.moved += 1;
        forged.unknown_index += 1;
        true
    }
}

fn counters(world: &World, i: usize) -> Counters {
    world.node(i).expect("running").inspect().counters().clone()
}

#[test]
fn forged_session_frames_and_refusals_change_nothing() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let nodes = world.member_indices();
    let (from, to) = loop {
        let (a, b) = (nodes[pick(world.rng(), nodes.len())], nodes[pick(world.rng(), nodes.len())]);
        if a != b && !world.open_links(a).iter().any(|(_, p)| *p == b) {
            break (a, b);
        }
    };
    let forged = Rc::new(RefCell::new(Forged::default()));
    let ends = [world.id(from), world.id(to)];
    for &i in nodes.iter().filter(|i| **i != from && **i != to) {
        let forger = SessionForger { ends, forged: Rc::clone(&forged) };
        world.set_adversary(i, Box::new(forger));
    }
    let since = world.now();
    let to_wallet = wallet(&world, to);
    let mut sent = Vec::new();
    let mut before = None;
    for k in 0..12u64 {
        let bytes = payload(&mut world, k, 200);
        let p = send(&mut world, from, to_wallet, bytes.clone());
        match wait_one(&mut world, p, Duration::from_secs(30)) {
            Some(Event::Sent { outcome: SendOutcome::Delivered { sessions }, .. }) => {
                assert_eq!(sessions, vec![world.id(to)], "seed {SEED}: message {k}")
            }
            other => panic!("seed {SEED}: message {k}: {other:?}"),
        }
        sent.push(bytes);
        // After the first message the session stands: what follows must not disturb it.
        before.get_or_insert_with(|| (counters(&world, from), counters(&world, to)));
    }
    world.run_for(Duration::from_secs(3));
    let (a, b) = before.expect("sent");
    let (a2, b2) = (counters(&world, from), counters(&world, to));
    let f = forged.borrow();
    let counts = format!(
        "no_sessions {}, junk {}, moved {}, unknown_index {}",
        f.no_sessions, f.junk, f.moved, f.unknown_index
    );
    eprintln!("seed {SEED}: forged {counts}; sender {a2:?}; recipient {b2:?}");
    assert!(
        f.no_sessions >= 11 && f.junk >= 11 && f.unknown_index >= 11,
        "seed {SEED}: the session frames did not cross the attackers: {counts}"
    );
    assert_eq!(a2.sessions_lost, a.sessions_lost, "seed {SEED}: the sender dropped its session");
    assert_eq!(a2.session_hellos, a.session_hellos, "seed {SEED}: the sender handshook again");
    assert_eq!(a2.session_messages - a.session_messages, 11, "seed {SEED}: messages in the session");
    assert!(b2.refused_messages > b.refused_messages, "seed {SEED}: the junk was not refused");

    let mut got: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for g in received_since(&world, to, since) {
        *got.entry(g.bytes).or_default() += 1;
    }
    for (k, bytes) in sent.iter().enumerate() {
        assert_eq!(
            got.get(bytes),
            Some(&1),
            "seed {SEED}: message {k} reached the app {:?} times",
            got.get(bytes)
        );
    }
    assert_eq!(got.len(), sent.len(), "seed {SEED}: the app received messages nobody sent");
}
