//! Replies count only from the node that was asked (issue 16, item 2). Four members of a converged ring of
//! 30 are attackers: for every request they relay they answer at once, signed with their own key and quoting
//! the request's message id, as every relay on a path can —
//!
//! - a `FindSuccessor` (user lookups, finger sweeps, joins): `FoundSuccessor` naming themselves;
//! - a `Get`: an empty `Records` (the wallet or topic looks absent), and the `Get` goes on;
//! - a `Store`: `StoreAck` ok — and the first copy of each writer's store to each key is swallowed (its hop
//!   acknowledged, so the relay before does not re-route it), so a writer that believed the forged ack
//!   would never store it;
//! - a message (`Deliver`, or a `Hello` that starts an end-to-end session): a `Receipt` and an
//!   `Undeliverable { NodeNotFound }`, and a junk `Welcome` for a `Hello`, and the message goes on;
//! - a session frame (a message or receipt in an established session, unsigned): a `NoSession` naming the
//!   frame's session index and an `Undeliverable { NodeNotFound }` quoting the frame's id, and it goes on.
//!
//! Honest requests are aimed so that their paths cross the attackers (keys and recipients just past an
//! attacker: a clockwise path ends at the key's predecessor), and the test asserts what honest users get:
//! every lookup names the true owner, every announce is `Done` and discoverable afterwards, every wallet
//! lookup and discover returns the real records, every message is `Delivered` to its recipient's session
//! with a real receipt and received once, and nodes that join just past an attacker adopt their true
//! successor. It also asserts that each kind of forgery was made (and ignored, in `unsolicited_replies`).
//!
//! What this does not prove (docs/protocol.md, "Who may answer"): a two-way `Key` request can be relayed by
//! a node just *past* its key; if the asker knows no member between the key and that node, a forgery from
//! it is plausible and passes. The aimed keys lie just past an attacker, where that attacker's forgery is
//! refuted; but another attacker further on can still be the nearest member past the key that the asker
//! knows, and then its answer passes: the ring lookups accept exactly such answers (checked against the
//! asker's links) and nothing else. The wallet lookups and the sends' presence reads are not aimed, and on
//! this seed no forgery of that kind got through (item 5, reads at several positions, is the defence against
//! it for records; a ring lookup has one key).
//!
//! Sizes: 30 members, 4 of them attackers, 4 joiners.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use chordial_core::node::msg::{self, AppMsg, LinkMsg, RingMsg, Routed, Undeliverable};
use chordial_core::node::{Event, LinkId};
use chordial_core::wire::envelope::{self, Destination, FrameKind, Header, MessageId, DEFAULT_HOP_LIMIT};
use chordial_core::Id;
use chordial_sim::adversary::{Adversary, Ctx};
use chordial_sim::identity::Identity;
use chordial_sim::scenario::assert_budget_held;
use chordial_sim::world::{LookupOutcome, LookupResult};
use chordial_sim::World;

use common::{ask, ring, send, wait_all, wallet, APP};

const SEED: u64 = 162;
const MEMBERS: usize = 30;
const ATTACKERS: usize = 4;

/// What the attackers forged, by kind (shared by all of them).
#[derive(Debug, Default)]
struct Forged {
    found_successor: u64,
    /// `FoundSuccessor` for a `KeyStrict` lookup (joins, fingers).
    found_successor_strict: u64,
    /// The keys of those strict lookups (a join looks up its own id + 1).
    strict_keys: Vec<Id>,
    records: u64,
    store_acks: u64,
    stores_swallowed: u64,
    receipts: u64,
    undeliverable: u64,
    /// Welcomes (junk, from the relay) for the hellos that start sessions.
    welcomes: u64,
    /// "No such session" for messages in sessions.
    no_sessions: u64,
}

/// A relay that answers every request it passes on in place of the node that was asked.
struct ReplyForger {
    me: Id,
    /// The start of the attacker's own range (its predecessor when the attack began): requests for keys in
    /// `(range_from, me]` are its own to answer, honestly.
    range_from: Id,
    /// Stores (writer, key) it has swallowed once.
    swallowed: BTreeSet<(Id, Id)>,
    forged: Rc<RefCell<Forged>>,
}

impl ReplyForger {
    /// Signs `body` as a reply to `request` (from `origin`) and sends it back on `link`.
    fn reply(&self, ctx: &mut Ctx<'_>, link: LinkId, origin: Id, request: &Header, body: &Routed) {
        let header = Header {
            network: ctx.network,
            id: MessageId::random(ctx.rng),
            sent_at: ctx.now,
            dest: Destination::Node(origin),
            hop_limit: DEFAULT_HOP_LIMIT,
            reply_to: Some(request.id),
        };
        let signed = envelope::encode(ctx.session, &header, body).expect("a small reply fits a frame");
        ctx.send(link, msg::routed_frame(&signed, false));
    }

    /// Whether the attacker's node is where `dest` ends (there it answers as an honest node would).
    fn is_for_me(&self, dest: Destination) -> bool {
        match dest {
            Destination::Node(id) => id == self.me,
            Destination::Key(k) | Destination::KeyStrict(k) => k.in_half_open(self.range_from, self.me),
            Destination::Neighbor => true,
        }
    }
}

impl Adversary for ReplyForger {
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, link: LinkId, bytes: &[u8]) -> bool {
        let Some((&kind, rest)) = bytes.split_first() else { return true };
        let Some(routed) = msg::decode_routed(kind, rest) else { return true };
        let envelope_bytes = routed.envelope;
        let network = ctx.network;
        let Ok(routing) = envelope::decode_routing(envelope_bytes, network) else { return true };
        if routing.kind == FrameKind::Session {
            // A message or receipt in a session: nobody signed it, and nothing answers it by its id. The
            // attacker says, as the recipient would, that the session is unknown, and that the recipient
            // is gone (quoting the frame's id, the hash of its bytes).
            let Some((session, data)) = envelope::peek_session(envelope_bytes) else { return true };
            if self.is_for_me(routing.header.dest) || session.from == self.me {
                return true;
            }
            let Some(index) = chordial_core::e2e::session::data_index(data) else { return true };
            self.forged.borrow_mut().no_sessions += 1;
            let mut request = routing.header;
            let origin = session.from;
            self.reply(ctx, link, origin, &request, &Routed::App(AppMsg::NoSession { index }));
            request.id = envelope::content_id(envelope_bytes);
            let notice = Routed::Ring(RingMsg::Undeliverable { reason: Undeliverable::NodeNotFound });
            self.reply(ctx, link, origin, &request, &notice);
            return true;
        }
        let Some((header, body)) = envelope::peek::<Routed>(envelope_bytes) else { return true };
        if header.reply_to.is_some() || self.is_for_me(header.dest) || routing.origin == self.me {
            return true;
        }
        let origin = routing.origin;
        let mut forged = self.forged.borrow_mut();
        // Besides a receipt: a junk welcome for a hello.
        let extra = match &body {
            Routed::App(AppMsg::Hello { id, .. }) => {
                forged.welcomes += 1;
                Some(AppMsg::Welcome { id: *id, welcome: vec![0x5a; 64] })
            }
            _ => None,
        };
        match body {
            Routed::Ring(RingMsg::FindSuccessor) => {
                if let Destination::KeyStrict(key) = header.dest {
                    forged.found_successor_strict += 1;
                    forged.strict_keys.push(key);
                } else {
                    forged.found_successor += 1;
                }
                drop(forged);
                self.reply(ctx, link, origin, &header, &Routed::Ring(RingMsg::FoundSuccessor { hops: 1 }));
            }
            Routed::App(AppMsg::Get { .. }) => {
                forged.records += 1;
                drop(forged);
                let empty = Routed::App(AppMsg::Records { records: Vec::new(), more: false });
                self.reply(ctx, link, origin, &header, &empty);
            }
            Routed::App(AppMsg::Store { record }) => {
                forged.store_acks += 1;
                let first = self.swallowed.insert((origin, record.key()));
                if first {
                    forged.stores_swallowed += 1;
                }
                drop(forged);
                self.reply(ctx, link, origin, &header, &Routed::App(AppMsg::StoreAck { error: None }));
                if first {
                    // Acknowledge the hop so the relay before us does not re-route it, and drop it.
                    let seq = routed.seq;
                    ctx.send(link, msg::link_frame(&LinkMsg::Ack { from: seq, upto: seq }));
                    return false;
                }
            }
            Routed::App(AppMsg::Deliver { id, .. } | AppMsg::Hello { id, .. }) => {
                forged.receipts += 1;
                forged.undeliverable += 1;
                drop(forged);
                self.reply(ctx, link, origin, &header, &Routed::App(AppMsg::Receipt { id }));
                if let Some(extra) = extra {
                    self.reply(ctx, link, origin, &header, &Routed::App(extra));
                }
                let notice = Routed::Ring(RingMsg::Undeliverable { reason: Undeliverable::NodeNotFound });
                self.reply(ctx, link, origin, &header, &notice);
            }
            _ => {}
        }
        true
    }
}

/// The member just past `a` on the ring (its true successor).
fn next_member(world: &World, a: Id) -> Id {
    world.ideal_owner(a.wrapping_add(Id::pow2(0))).expect("members")
}

/// A topic of [`APP`] whose key falls just past attacker `a` (between it and its successor).
fn topic_past(world: &World, a: Id, tag: &str) -> String {
    let succ = next_member(world, a);
    (0..)
        .map(|n| format!("{tag}-{n}"))
        .find(|t| chordial_core::node::records::topic_key(APP, t).in_half_open(a, succ))
        .expect("some topic falls in the range")
}

fn unsolicited(world: &World) -> u64 {
    (0..world.len())
        .filter_map(|i| world.node(i))
        .map(|n| n.inspect().status().counters.unsolicited_replies)
        .sum()
}

#[test]
fn forged_replies_are_ignored() {
    let mut world = ring(SEED, MEMBERS, Duration::from_secs(10));
    let members = world.member_indices();
    // Attackers: four members spread round the ring (every 7th by position).
    let by_position: Vec<usize> = world.members().values().copied().collect();
    let attackers: Vec<usize> = (0..ATTACKERS).map(|k| by_position[3 + k * 7]).collect();
    let honest: Vec<usize> = members.iter().copied().filter(|i| !attackers.contains(i)).collect();
    let forged = Rc::new(RefCell::new(Forged::default()));
    for &a in &attackers {
        let node = world.node(a).expect("running");
        let range_from = node.inspect().predecessor().expect("a converged ring has predecessors");
        let forger = ReplyForger {
            me: world.id(a),
            range_from,
            swallowed: BTreeSet::new(),
            forged: Rc::clone(&forged),
        };
        world.set_adversary(a, Box::new(forger));
    }
    let attacker_ids: Vec<Id> = attackers.iter().map(|a| world.id(*a)).collect();
    let unsolicited_before = unsolicited(&world);

    // 1. Lookups of keys just past each attacker, from every honest member: all exact.
    let mut keys = Vec::new();
    for &a in &attacker_ids {
        let succ = next_member(&world, a);
        keys.push(a.wrapping_add(Id::pow2(0)));
        keys.push(succ);
    }
    for &i in &honest {
        for &k in &keys {
            world.lookup(i, k);
        }
    }
    // The members each asker links to, every 50 ms (what its plausible-owner check knows then).
    let mut known: Vec<(chordial_core::Timestamp, Vec<BTreeSet<Id>>)> = Vec::new();
    for _ in 0..400 {
        let linked = (0..world.len())
            .map(|i| {
                let peers = world.open_links(i).into_iter().map(|(_, peer)| world.id(peer));
                peers.filter(|n| world.members().contains_key(n)).collect()
            })
            .collect();
        known.push((world.now(), linked));
        world.run_for(Duration::from_millis(50));
    }
    let outcomes = world.take_lookups();
    assert_eq!(outcomes.len(), honest.len() * keys.len(), "seed {SEED}: lookups still open");
    // Exact, except through the documented gap (docs/protocol.md, "Who may answer"): a `Key` lookup that the
    // two-way rule sends to an attacker *past* the key, when the asker knows no member between the key and
    // that attacker. Aiming keys just past one attacker does not rule out another attacker further on being
    // the nearest member the asker knows (seed 162: node 14 asks 8425009f for 7875fd3f, knowing none of the
    // five members between). Any other wrong answer — a relay's forgery the asker could refute — fails.
    let gap = |o: &&LookupOutcome| {
        let LookupResult::Found { owner, .. } = o.result else { return false };
        let nearer = |n: Id| n == o.key || (n.in_open(o.key, owner));
        // What the asker linked to in the last 50 ms before the answer arrived.
        let before: Vec<&BTreeSet<Id>> = known
            .iter()
            .filter(|(t, _)| *t <= o.done && o.done.since(*t) <= Duration::from_millis(50))
            .map(|(_, linked)| &linked[o.node])
            .collect();
        attacker_ids.contains(&owner)
            && !nearer(world.id(o.node))
            && !before.is_empty()
            && before.iter().all(|l| l.iter().all(|n| !nearer(*n)))
    };
    let wrong: Vec<_> = outcomes.iter().filter(|o| !o.correct()).collect();
    let (through_gap, wrong): (Vec<_>, Vec<_>) = wrong.into_iter().partition(gap);
    assert!(
        wrong.is_empty(),
        "seed {SEED}: {} of {} lookups not exact: {wrong:?}",
        wrong.len(),
        outcomes.len()
    );
    eprintln!(
        "seed {SEED}: {} of {} lookups exact; {} answered by an attacker past the key through the documented \
         gap: {through_gap:?}",
        outcomes.len() - through_gap.len(),
        outcomes.len(),
        through_gap.len()
    );

    // 2. Announces to topics whose keys fall just past each attacker, each from an honest member, then
    //    discovered from another: stored for real, read back whole.
    let mut topics = Vec::new();
    for (n, &a) in attacker_ids.iter().enumerate() {
        for r in 0..3 {
            let topic = topic_past(&world, a, &format!("room{n}.{r}"));
            let writer = honest[(n * 3 + r) % honest.len()];
            topics.push((topic, writer));
        }
    }
    let pending: Vec<_> = topics
        .iter()
        .map(|(t, w)| ask(&mut world, *w, |node, now| node.announce(now, APP, t, Duration::from_secs(3600))))
        .collect();
    for ((topic, writer), result) in
        topics.iter().zip(wait_all(&mut world, &pending, Duration::from_secs(30)))
    {
        assert!(
            matches!(result, Some((_, Event::Done { .. }))),
            "seed {SEED}: announce of {topic} by node {writer}: {result:?}"
        );
    }
    let readers: Vec<usize> = topics
        .iter()
        .map(|(_, w)| honest[(honest.iter().position(|h| h == w).expect("honest") + 5) % honest.len()])
        .collect();
    let pending: Vec<_> = topics
        .iter()
        .zip(&readers)
        .map(|((t, _), r)| ask(&mut world, *r, |node, now| node.discover(now, APP, t)))
        .collect();
    for ((topic, writer), result) in
        topics.iter().zip(wait_all(&mut world, &pending, Duration::from_secs(30)))
    {
        match result {
            Some((_, Event::Discovered { members, .. })) => assert_eq!(
                members.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
                vec![wallet(&world, *writer)],
                "seed {SEED}: discover {topic} (announced by node {writer})"
            ),
            other => panic!("seed {SEED}: discover {topic}: {other:?}"),
        }
    }

    // 3. Every honest wallet looked up from another honest member: its own session, nothing else.
    let pending: Vec<_> = honest
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let of = wallet(&world, i);
            ask(&mut world, honest[(n + 1) % honest.len()], |node, now| node.lookup_wallet(now, of))
        })
        .collect();
    for (&i, result) in honest.iter().zip(wait_all(&mut world, &pending, Duration::from_secs(30))) {
        match result {
            Some((_, Event::WalletSessions { sessions, .. })) => assert_eq!(
                sessions.iter().map(|s| s.node_id).collect::<Vec<_>>(),
                vec![world.id(i)],
                "seed {SEED}: sessions of node {i}'s wallet"
            ),
            other => panic!("seed {SEED}: lookup_wallet of node {i}: {other:?}"),
        }
    }

    // 4. Messages to the members just past each attacker, from every honest member without a link to
    //    them: all delivered, with the recipient's receipt, each received once.
    let since = world.now();
    let mut sends = Vec::new();
    for &a in &attacker_ids {
        let to = world.members()[&next_member(&world, a)];
        if attackers.contains(&to) {
            continue;
        }
        let linked: BTreeSet<usize> = world.open_links(to).into_iter().map(|(_, p)| p).collect();
        for &from in honest.iter().filter(|f| **f != to && !linked.contains(f)) {
            let bytes = format!("from {from} to {to}").into_bytes();
            let to_wallet = wallet(&world, to);
            sends.push((from, to, bytes.clone(), send(&mut world, from, to_wallet, bytes)));
        }
    }
    assert!(!sends.is_empty(), "seed {SEED}: no sends");
    let sends_made = sends.len();
    let pending: Vec<_> = sends.iter().map(|s| s.3).collect();
    let results = wait_all(&mut world, &pending, Duration::from_secs(30));
    common::assert_delivered_once(&mut world, SEED, since, &sends, results);

    // 5. Nodes joining just past each attacker (through an honest member): the join lookup's last relay is
    //    the attacker, which answers with itself; each joiner adopts its true successor.
    let server = honest[0];
    let crypto = world.config().crypto;
    let network = world.config().network.clone();
    let mut joiners = Vec::new();
    for &a in &attacker_ids {
        let succ = next_member(&world, a);
        let identity = loop {
            let now = world.now();
            let candidate = Identity::generate(world.rng(), crypto, &network, now);
            if candidate.id.in_open(a, succ) {
                break candidate;
            }
        };
        let j = world.add_node_with(identity, &[server]);
        joiners.push((j, succ));
    }
    let deadline = world.now().saturating_add(Duration::from_secs(30));
    let mut first_successor: BTreeMap<usize, Id> = BTreeMap::new();
    while first_successor.len() < joiners.len() && world.now() < deadline {
        world.run_for(Duration::from_millis(20));
        for &(j, _) in &joiners {
            if first_successor.contains_key(&j) {
                continue;
            }
            if let Some(s) = world.node(j).and_then(|n| n.inspect().successors().first().copied()) {
                first_successor.insert(j, s);
            }
        }
    }
    for &(j, succ) in &joiners {
        let join_key = world.id(j).wrapping_add(Id::pow2(0));
        assert!(
            forged.borrow().strict_keys.contains(&join_key),
            "seed {SEED}: joiner {j}'s join lookup did not cross an attacker"
        );
        assert_eq!(
            first_successor.get(&j).copied(),
            Some(succ),
            "seed {SEED}: joiner {j} ({}) adopted {:?} first; its true successor is {} (attackers {:?})",
            world.id(j).short(),
            first_successor.get(&j).map(|s| s.short()),
            succ.short(),
            attacker_ids.iter().map(|a| a.short()).collect::<Vec<_>>()
        );
    }

    // The attackers were on the paths, and forged every kind; the nodes ignored what was forged.
    let f = forged.borrow();
    eprintln!(
        "seed {SEED}: {} lookups, {} announces, {} wallet lookups, {} sends, {} joins; forged: {} FoundSuccessor \
         ({} strict), {} Records, {} StoreAck ({} stores swallowed), {} Receipt, {} Undeliverable, {} Welcome, \
         {} NoSession; unsolicited replies counted: {}",
        outcomes.len(),
        topics.len(),
        honest.len(),
        sends_made,
        joiners.len(),
        f.found_successor,
        f.found_successor_strict,
        f.records,
        f.store_acks,
        f.stores_swallowed,
        f.receipts,
        f.undeliverable,
        f.welcomes,
        f.no_sessions,
        unsolicited(&world) - unsolicited_before
    );
    assert!(f.found_successor > 0, "seed {SEED}: no user lookup crossed an attacker: {f:?}");
    assert!(f.found_successor_strict > 0, "seed {SEED}: no join or finger lookup crossed an attacker: {f:?}");
    assert!(
        f.records > 0 && f.store_acks > 0 && f.stores_swallowed > 0,
        "seed {SEED}: no read or write crossed an attacker: {f:?}"
    );
    assert!(f.receipts > 0 && f.undeliverable > 0, "seed {SEED}: no message crossed an attacker: {f:?}");
    assert!(f.welcomes > 0, "seed {SEED}: no hello crossed an attacker: {f:?}");
    assert!(unsolicited(&world) > unsolicited_before, "seed {SEED}: no forged reply was counted");
    drop(f);
    assert_budget_held(&world, SEED);
}
