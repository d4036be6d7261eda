//! A message reaches the recipient's app at most once — whoever re-injects it, however often, before and
//! after the recipient restarts, and after its replay window forgot it.
//!
//! The attacker is a ring member that records what relays see (the world's frame tap stands for its
//! position on every path: a relay sees exactly these frames) and what a mailbox holder keeps (the sealed
//! entries), and re-injects every sealed message to the recipient in three forms:
//!
//! - the recorded frame itself, verbatim (the router's replay window stops it only while it remembers its
//!   id and the frame is within its lifetime);
//! - the sealed bytes in a `Deliver` of its own (a fresh envelope id, signed by the attacker: no window
//!   ever saw it);
//! - the sealed bytes in a `MailboxDeliver` of its own, as a mailbox holder delivers mail.
//!
//! It does so after the live messages were delivered; after flooding the recipient's replay window (512
//! ids here) with more signed frames than it holds; after the recipient crashed, mail was stored for it and
//! it restarted **with its durable state** ([`World::restart_durable`]); and after the sender restarted
//! with fresh state but its old session key (a reloaded browser), whose new messages must still arrive.
//! Each honest message must reach the app exactly once (the recipient's `MessageReceived` events), and new
//! honest messages after both restarts arrive.
//!
//! Without the accepted table (`node::accepted`), every re-wrapped copy is delivered again (there is no
//! digest set left to stop it), and so are the sender's messages after its restart if `seq` restarted at 1.
//!
//! Sizes: 16 nodes (the same at full size).

mod common;
#[path = "common/forge_mail.rs"]
mod forge_mail;

use std::collections::BTreeMap;
use std::time::Duration;

use chordial_core::identity::Address;
use chordial_core::node::msg::{self, AppMsg, RingMsg, Routed, Undeliverable};
use chordial_core::node::records::{mail_id, Record};
use chordial_core::node::{Config, Event, SendOutcome};
use chordial_core::wire::envelope::{self, Destination, SessionHeader};
use chordial_core::Timestamp;
use chordial_sim::scenario::assert_budget_held;
use chordial_sim::{World, WorldConfig};

use common::{forged_header, payload, ring_with, send, wait_all, wallet};
use forge_mail::routed_frame;

const SEED: u64 = 81;
const MEMBERS: usize = 16;
/// Each node's replay window (`Config::replay_capacity`; 65,536 by default), small so that flooding it
/// costs seconds of signatures.
const WINDOW: usize = 512;

fn small_window(config: &mut Config) {
    config.replay_capacity = WINDOW;
}

fn ring() -> World {
    let mut config = WorldConfig::new(SEED);
    config.event_log = 20_000;
    config.tweak = small_window;
    ring_with(config, MEMBERS, Duration::from_secs(10))
}

/// What the attacker recorded: the frames carrying sealed messages for the recipient, the sealed
/// messages themselves (by their id, `sha256(sealed)[..16]`), and the messages that went in end-to-end
/// sessions (`Hello` bodies, and session frames' headers and session messages, by the same hash of their
/// hello or session message).
#[derive(Default)]
struct Recorded {
    frames: BTreeMap<[u8; 16], Vec<u8>>,
    sealed: BTreeMap<[u8; 16], Vec<u8>>,
    in_session: BTreeMap<[u8; 16], InSession>,
}

/// A message in a session as the attacker saw it.
enum InSession {
    Hello(Routed),
    Data(SessionHeader, Vec<u8>),
}

impl Recorded {
    /// Takes what the tap saw since it was last read: `Deliver`s, `Hello`s and `SessionData` routed to
    /// `recipient`, and mailbox entries for its wallet (stored, re-homed or delivered).
    fn take(&mut self, world: &mut World, recipient: usize) {
        let id = world.id(recipient);
        let to_wallet = wallet(world, recipient);
        for frame in world.tap_frames(true) {
            let Some((&kind, rest)) = frame.bytes.split_first() else { continue };
            let Some(routed) = msg::decode_routed(kind, rest) else { continue };
            if let Some((header, data)) = envelope::peek_session(routed.envelope) {
                if header.dest == id {
                    let key = envelope::content_id(routed.envelope).0;
                    self.frames.entry(key).or_insert_with(|| frame.bytes.clone());
                    self.in_session.insert(mail_id(data), InSession::Data(header, data.to_vec()));
                }
                continue;
            }
            let Some((header, body)) = envelope::peek::<Routed>(routed.envelope) else { continue };
            match body {
                Routed::App(AppMsg::Deliver { sealed, .. }) if header.dest == Destination::Node(id) => {
                    self.frames.entry(header.id.0).or_insert_with(|| frame.bytes.clone());
                    self.sealed.insert(mail_id(&sealed), sealed);
                }
                Routed::App(AppMsg::Hello { ref hello, .. }) if header.dest == Destination::Node(id) => {
                    let key = mail_id(hello);
                    self.frames.entry(header.id.0).or_insert_with(|| frame.bytes.clone());
                    self.in_session.insert(key, InSession::Hello(body));
                }
                Routed::App(AppMsg::MailboxDeliver { entries }) => {
                    if header.dest == Destination::Node(id) {
                        self.frames.entry(header.id.0).or_insert_with(|| frame.bytes.clone());
                    }
                    for (_, sealed) in entries {
                        self.sealed.insert(mail_id(&sealed), sealed);
                    }
                }
                Routed::App(AppMsg::Store { record }) => {
                    if let Record::Mailbox(m) = *record {
                        if m.recipient == to_wallet {
                            self.sealed.insert(m.id, m.sealed);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Messages recorded, sealed on their own or in a session.
    fn messages(&self) -> usize {
        self.sealed.len() + self.in_session.len()
    }

    /// Re-injects everything from `attacker`: each recorded frame verbatim, each sealed message in a
    /// `Deliver` and in a `MailboxDeliver` of the attacker's own, each hello in an envelope of the attacker's
    /// own, and each session message in session frames of its own (dated now, naming the sender as before, and
    /// naming the attacker). Returns how many frames it sent.
    fn replay(&self, world: &mut World, attacker: usize, recipient: usize) -> usize {
        let (link, _) = world.open_links(attacker)[0];
        let dest = Destination::Node(world.id(recipient));
        let mut frames: Vec<Vec<u8>> = self.frames.values().cloned().collect();
        for (id, sealed) in &self.sealed {
            let deliver = Routed::App(AppMsg::Deliver { id: *id, sealed: sealed.clone() });
            frames.push(routed_frame(world, attacker, dest, &deliver));
            let mail = Routed::App(AppMsg::MailboxDeliver { entries: vec![(*id, sealed.clone())] });
            frames.push(routed_frame(world, attacker, dest, &mail));
        }
        for message in self.in_session.values() {
            match message {
                InSession::Hello(body) => frames.push(routed_frame(world, attacker, dest, body)),
                InSession::Data(header, data) => {
                    for from in [header.from, world.id(attacker)] {
                        let header = SessionHeader { sent_at: world.now(), from, ..*header };
                        let frame = envelope::encode_session(&header, data).expect("fits");
                        frames.push(msg::routed_frame(&frame, false));
                    }
                }
            }
        }
        for f in &frames {
            world.send_raw(attacker, link, f.clone());
        }
        world.run_for(Duration::from_secs(5));
        frames.len()
    }
}

/// The payloads node `i`'s app received at or after `since`, with how often each arrived.
fn received(world: &World, i: usize, since: Timestamp) -> BTreeMap<Vec<u8>, usize> {
    let mut out = BTreeMap::new();
    for (t, e) in world.events(i) {
        if let (true, Event::MessageReceived { bytes, .. }) = (*t >= since, e) {
            *out.entry(bytes.clone()).or_insert(0) += 1;
        }
    }
    out
}

/// Sends `n` messages from `from` to the wallet `to` and waits for every result; returns the payloads and
/// the outcomes.
fn send_batch(
    world: &mut World,
    from: usize,
    to_wallet: Address,
    first: u64,
    n: u64,
) -> (Vec<Vec<u8>>, Vec<Option<SendOutcome>>) {
    let mut payloads = Vec::new();
    let mut pending = Vec::new();
    for k in first..first + n {
        let bytes = payload(world, k, 64);
        payloads.push(bytes.clone());
        pending.push(send(world, from, to_wallet, bytes));
        world.run_for(Duration::from_millis(200));
    }
    let outcomes = wait_all(world, &pending, Duration::from_secs(60))
        .into_iter()
        .map(|r| match r {
            Some((_, Event::Sent { outcome, .. })) => Some(outcome),
            _ => None,
        })
        .collect();
    (payloads, outcomes)
}

/// Signed frames from `attacker` to `victim` with fresh ids, dated as far ahead as the skew allows: each is
/// remembered by the victim's replay window for longer than any honest id, so `n` > the window pushes
/// every honest id out.
fn flood_window(world: &mut World, attacker: usize, victim: usize, n: usize) {
    let (link, _) = world.open_links(attacker)[0];
    let ahead =
        world.now().saturating_add(world.node_config().clock_skew).saturating_sub(Duration::from_secs(1));
    for _ in 0..n {
        let (network, dest) = (world.network_tag(), Destination::Node(world.id(victim)));
        let header = forged_header(world.rng(), network, ahead, dest);
        let body = Routed::Ring(RingMsg::Undeliverable { reason: Undeliverable::NoRoute });
        let signed =
            envelope::encode(&world.session_key(attacker), &header, &body).expect("a small body fits");
        world.send_raw(attacker, link, msg::routed_frame(&signed, false));
    }
    world.run_for(Duration::from_secs(3));
}

fn assert_each_once(world: &World, recipient: usize, since: Timestamp, sent: &[Vec<u8>], when: &str) {
    let got = received(world, recipient, since);
    for (k, p) in sent.iter().enumerate() {
        assert_eq!(
            got.get(p).copied(),
            Some(1),
            "seed {SEED}: {when}: message {k} reached the app {:?} times",
            got.get(p)
        );
    }
    assert_eq!(got.len(), sent.len(), "seed {SEED}: {when}: the app received messages nobody sent");
}

#[test]
fn replayed_messages_reach_the_app_once() {
    let mut world = ring();
    let members = world.member_indices();
    let (sender, recipient, attacker) = (members[1], members[6], members[11]);
    let to = wallet(&world, recipient);
    let since = world.now();
    let mut recorded = Recorded::default();
    world.tap_frames(true);

    // 1. Live messages, each delivered once with the recipient's receipt.
    let (mut sent, outcomes) = send_batch(&mut world, sender, to, 0, 6);
    for (k, o) in outcomes.iter().enumerate() {
        assert!(matches!(o, Some(SendOutcome::Delivered { .. })), "seed {SEED}: live message {k}: {o:?}");
    }
    recorded.take(&mut world, recipient);
    assert_eq!(recorded.messages(), 6, "seed {SEED}: the attacker recorded every message");
    assert_each_once(&world, recipient, since, &sent, "live");

    // 2. Replayed at once, in every form.
    let frames = recorded.replay(&mut world, attacker, recipient);
    assert_each_once(&world, recipient, since, &sent, "replayed while the window remembers");

    // 3. The replay window flooded until it forgot every honest id, then everything again.
    flood_window(&mut world, attacker, recipient, WINDOW + 64);
    let forgotten = world.node(recipient).expect("running").inspect().replay_ids_forgotten();
    assert!(forgotten > 0, "seed {SEED}: the flood did not make the window forget");
    recorded.replay(&mut world, attacker, recipient);
    assert_each_once(&world, recipient, since, &sent, "replayed after the window forgot");

    // 4. The recipient crashes; mail is stored for it; it restarts with its durable state and gets the mail.
    world.crash(recipient);
    let (mailed, outcomes) = send_batch(&mut world, sender, to, 100, 3);
    for (k, o) in outcomes.iter().enumerate() {
        assert_eq!(
            o.as_ref(),
            Some(&SendOutcome::Stored),
            "seed {SEED}: mail {k} while the recipient is down"
        );
    }
    sent.extend(mailed);
    world.restart_durable(recipient, members[0]);
    world.run_for(Duration::from_secs(60));
    assert_each_once(&world, recipient, since, &sent, "mail after the restart");
    let rows = world.durable(recipient).accepted.rows();
    assert!(rows >= 1, "seed {SEED}: the accepted table was not kept");

    // 5. Everything recorded, live and mail, re-injected after the restart; and after another flood.
    recorded.take(&mut world, recipient);
    // At least nine: a message sent while the recipient was down can be recorded twice, as a session
    // message that did not arrive and as the mail it became.
    assert!(recorded.messages() >= 9, "seed {SEED}: the attacker recorded every message and mail");
    recorded.replay(&mut world, attacker, recipient);
    flood_window(&mut world, attacker, recipient, WINDOW + 64);
    recorded.replay(&mut world, attacker, recipient);
    assert_each_once(&world, recipient, since, &sent, "replayed after the restart");

    // 6. The sender restarts with fresh state and its old session key (a reloaded browser): its new
    //    messages still arrive, once, and so do new ones to the restarted recipient.
    world.crash(sender);
    world.restart(sender, members[0]);
    world.run_for(Duration::from_secs(30));
    let (fresh, outcomes) = send_batch(&mut world, sender, to, 200, 3);
    for (k, o) in outcomes.iter().enumerate() {
        assert!(matches!(o, Some(SendOutcome::Delivered { .. })), "seed {SEED}: new message {k}: {o:?}");
    }
    sent.extend(fresh);
    recorded.take(&mut world, recipient);
    recorded.replay(&mut world, attacker, recipient);
    assert_each_once(&world, recipient, since, &sent, "after the sender's restart");

    let c = world.node(recipient).expect("running").inspect().counters().clone();
    eprintln!(
        "seed {SEED}: {} messages each received once; {frames} frames per replay round at first, {} sealed \
         messages recorded in the end; recipient after its restart: {} repeated, {} stale, {} replay ids \
         forgotten, {} sessions in its accepted table",
        sent.len(),
        recorded.sealed.len(),
        c.repeated_messages,
        c.stale_messages,
        world.node(recipient).expect("running").inspect().replay_ids_forgotten(),
        rows,
    );
    assert!(c.repeated_messages > 0, "seed {SEED}: no replay reached the accepted check after the restart");
    assert_budget_held(&world, SEED);
}
