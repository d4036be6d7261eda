//! The app layer, as a sub-machine: what dApps use the ring for — presence, topics, end-to-end encrypted
//! messages with receipts, and mailboxes for offline wallets.
//!
//! - **Owns** ([`App`]): the routed app requests waiting for their reply (reads, writes, deliveries),
//!   ordered by when their reply is overdue and indexed by the ids of their messages; the reads and writes
//!   of a wallet's several positions, whose parts are such requests; the sends in progress
//!   (one per `send`, fanned out to the recipient's sessions); the route cache (per wallet recently sent
//!   to, its verified presence read, reused by the next sends: [`Route`]); the message sequence number
//!   (seeded from the clock, [`next_seq`]). Which received messages were delivered, so each is delivered
//!   once, is `accepted.rs`.
//! - **Takes**: API calls (`announce`, `discover`, `send`, …), replies and app messages routed to this node,
//!   failure reports for its messages, the [`Timer::Presence`] tick.
//! - **Emits**: routed app messages (through the parent's router), [`Event`]s for the application, and
//!   records to store (through [`Records`](super::placement::Records) when this node owns their key).
//!
//! Where records live and how they move as the ring changes is `placement.rs`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::accepted::{next_seq, Verdict};
use super::msg::{AppMsg, LinkMsg, Routed, SealedStore, StoreFail, Undeliverable, WelcomeData};
use super::records::{
    mail_id, presence_keys, topic_keys, MailAck, MailboxEntry, PresenceRecord, Record, TopicRecord,
    DEFAULT_MAILBOX_TTL, MAX_PRESENCE_TTL, MAX_TOPIC_TTL,
};
use super::router::fail_reason;
use super::sessions::Role;
use super::timer::{Deadline, Timed, Timer};
use super::Node;
use crate::e2e::session::{self, Initiating, Peer, MAX_HANDSHAKE_DATA};
use crate::e2e::{self, InnerMessage, MAX_APP_ORIGIN, MAX_PAYLOAD};
use crate::id::Id;
use crate::identity::{Address, SessionPublicKey};
use crate::node::api::{Event, FailReason, RequestId, SendOutcome, SessionInfo};
use crate::time::Timestamp;
use crate::wire::envelope::{Destination, MessageId, Received};

/// Bytes of records in one `Records` page or `Replicate` batch.
pub(super) const PAGE_BYTES: usize = 48 * 1024;
/// A presence write that failed is tried again this soon.
const PRESENCE_RETRY: Duration = Duration::from_secs(5);
/// [`Config::route_cache_ttl`](super::Config::route_cache_ttl) by default: a send reuses the presence read
/// of an earlier send to the same wallet for this long. Short, so that a wallet's new session (a second
/// device, a restarted browser) is seen within it; a session that went is found out sooner, when a
/// delivery to it fails.
pub const ROUTE_CACHE_TTL: Duration = Duration::from_secs(30);
/// Wallets the route cache holds at most; a new one in a full cache replaces the one that lapses first.
/// Only this node's own sends fill it.
pub const ROUTE_CACHE_WALLETS: usize = 256;

/// What a routed app request is for.
#[derive(Debug, Clone)]
pub(super) enum OpKind {
    /// One position's part of a write to every position of a wallet ([`Write`]).
    Position { write: u64 },
    /// A mailbox entry we hold but do not own, sent to its owner; dropped here if already delivered.
    RehomeMail { key: Id, id: [u8; 16] },
    /// A read. `behind`: how many nodes past the owner have been asked, one after the other, because
    /// every node before had nothing (docs/records.md, "Read").
    Get { purpose: GetFor, key: Id, skip: u32, acc: Vec<Record>, behind: usize },
    /// A message to one session of a send. `sealed`: its one-shot sealed form, if it went so (else it is
    /// sealed so only if it must go to the mailbox).
    Deliver { send: u64, session: SessionPublicKey, sealed: Option<Vec<u8>>, via: Via },
}

/// How a message to one session went.
#[derive(Debug, Clone)]
pub(super) enum Via {
    /// Sealed on its own (`Deliver`): no session with the recipient, and none could start (one was already
    /// starting, or the message is too large for a hello).
    OneShot,
    /// In a hello (`Hello`): our handshake `index`.
    Hello { index: u64 },
    /// In a session frame in our established session with `peer`: ours is our index of the session,
    /// `theirs` the peer's (which a `NoSession` names), `counters` the message's numbers in it, one per
    /// attempt (a receipt that names any of them completes the op).
    Session { peer: Box<Peer>, ours: u64, theirs: u64, counters: Vec<u64> },
    /// Not sent yet: it waits for our handshake with its session, under way, to finish (then it goes in the
    /// session) or fail (then it goes on its own). Its op's deadline runs meanwhile.
    Waiting,
}

/// Messages that wait for one handshake at most; more go on their own at once.
const WAITING_PER_PEER: usize = 64;

/// Why a read was made.
#[derive(Debug, Clone)]
pub(super) enum GetFor {
    Wallet(RequestId, Address),
    Discover(RequestId, String, String),
    Send(u64),
    /// A send that went by the route cache, read again because a delivery through the cached route failed:
    /// the read finds the positions' holders now, and the failed sessions' messages are stored with them.
    Refresh(u64),
    /// One position of a read of every position of a wallet ([`Read`]).
    Part(u64),
}

/// A read of every position of a wallet: its parts' answers are merged (every record that verifies
/// counts, newest per session) once each part answered or failed.
#[derive(Debug)]
pub(super) struct Read {
    purpose: GetFor,
    pending: usize,
    answered: bool,
    acc: Vec<Record>,
    failure: Option<FailReason>,
}

/// What a write to every position of a wallet is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum WriteFor {
    /// Our own presence record.
    Presence,
    /// One session's mailbox entry of a send.
    Send(u64),
    /// An API request's record (a topic announcement or withdrawal): `Done` on the first store.
    Request(RequestId),
}

/// A write of one record to every position of a wallet. It counts as stored as soon as one position's
/// owner acknowledged it (a true promise: that node holds it and replicates it, and every read asks every
/// position); it fails only when every position refused it or did not answer.
#[derive(Debug)]
pub(super) struct Write {
    then: WriteFor,
    pending: usize,
    stored: bool,
    failure: Option<FailReason>,
}

/// A routed app request waiting for its reply.
#[derive(Debug)]
pub(super) struct AppOp {
    pub(super) kind: OpKind,
    pub(super) dest: Destination,
    /// What each attempt sends; `None` for a message in a session frame, which goes once, and for one that
    /// waits for a handshake.
    pub(super) body: Option<AppMsg>,
    pub(super) deadline: Timestamp,
    pub(super) attempts: u8,
}

impl Deadline for AppOp {
    /// When the reply to the current attempt is overdue.
    fn deadline(&self) -> Timestamp {
        self.deadline
    }
}

/// A message being sent to every session of a wallet.
#[derive(Debug)]
pub(super) struct SendOp {
    request: RequestId,
    to: Address,
    origin: String,
    payload: Vec<u8>,
    pub(super) id: [u8; 16],
    seq: u64,
    pending: usize,
    delivered: Vec<Id>,
    stored: usize,
    failure: Option<FailReason>,
    /// Per position of the recipient's wallet, the node that answered its presence read (a plausible owner
    /// of the key, or the successor asked after it) and whether it held records: each position's copy of
    /// the mail is sealed to that node and addressed to it, so relays learn no more than its node id.
    holders: Vec<Holder>,
    /// Sent by the route cache, not by a presence read of its own.
    cached: bool,
    /// Sessions of a cached send whose delivery failed, with their sealed message: stored once a fresh
    /// read ([`GetFor::Refresh`]) names the holders.
    to_store: Vec<(SessionPublicKey, Vec<u8>)>,
}

/// A verified presence read of a wallet that later sends to it reuse (the route cache): its sessions'
/// presence records and the holders of its positions, as [`Node::send_to_sessions`] found them. Dropped
/// when it lapses, or as soon as a delivery through it fails.
#[derive(Debug)]
pub(super) struct Route {
    presences: Vec<PresenceRecord>,
    holders: Vec<Holder>,
    /// The earlier of the read plus [`Config::route_cache_ttl`](super::Config::route_cache_ttl) and the
    /// first expiry of its live records.
    until: Timestamp,
}

/// The node that answered one position's presence read of a send.
#[derive(Debug, Clone, Copy)]
struct Holder {
    key: Id,
    node: SessionPublicKey,
    had_records: bool,
}

impl SendOp {
    /// `node` answered the read of position `key`. An answer with records wins over one without: an owner
    /// that has nothing (just joined, or hiding the wallet) is passed over for the successor that had them.
    fn answered(&mut self, key: Id, node: SessionPublicKey, had_records: bool) {
        let holder = Holder { key, node, had_records };
        match self.holders.iter_mut().find(|h| h.key == key) {
            Some(h) if had_records || !h.had_records => *h = holder,
            Some(_) => {}
            None => self.holders.push(holder),
        }
    }
}

/// The app requests, sends and received messages of one node.
#[derive(Debug, Default)]
pub(crate) struct App {
    pub(super) ops: Timed<u64, AppOp>,
    pub(super) op_by_msg: HashMap<MessageId, u64>,
    /// The ops of messages in session frames, by our index of the session and the message's counter there:
    /// what a session's receipt completes.
    pub(super) by_counter: BTreeMap<(u64, u64), u64>,
    next_op: u64,
    pub(super) sends: BTreeMap<u64, SendOp>,
    next_send: u64,
    reads: BTreeMap<u64, Read>,
    writes: BTreeMap<u64, Write>,
    next_group: u64,
    seq: u64,
    routes: HashMap<Address, Route>,
    /// Per session a handshake of ours is under way with, the ops of the messages waiting for it
    /// ([`Via::Waiting`]).
    waiting: HashMap<SessionPublicKey, Vec<u64>>,
}

impl App {
    /// When the earliest app request's reply is overdue.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.ops.earliest()
    }

    /// A new request, not attempted yet.
    pub(super) fn insert_op(&mut self, op: AppOp) -> u64 {
        self.next_op += 1;
        self.ops.insert(self.next_op, op);
        self.next_op
    }

    /// The op a reply belongs to (the reply's `reply_to`), taken out with every index entry of it.
    fn take_op(&mut self, reply_to: Option<MessageId>) -> Option<(u64, AppOp)> {
        let op = *self.op_by_msg.get(&reply_to?)?;
        self.remove_op(op).map(|o| (op, o))
    }

    /// Takes an op out with every index entry of it.
    pub(super) fn remove_op(&mut self, op: u64) -> Option<AppOp> {
        self.op_by_msg.retain(|_, o| *o != op);
        let removed = self.ops.remove(&op)?;
        if let OpKind::Deliver { via: Via::Session { ours, counters, .. }, .. } = &removed.kind {
            for counter in counters {
                self.by_counter.remove(&(*ours, *counter));
            }
        }
        Some(removed)
    }

    /// A new send, with the next sequence number ([`next_seq`]: it grows across this session's restarts).
    fn insert_send(
        &mut self,
        now: Timestamp,
        request: RequestId,
        to: Address,
        origin: &str,
        payload: Vec<u8>,
        id: [u8; 16],
    ) -> u64 {
        self.next_send += 1;
        self.seq = next_seq(self.seq, now);
        let send = SendOp {
            request,
            to,
            origin: origin.to_string(),
            payload,
            id,
            seq: self.seq,
            pending: 0,
            delivered: Vec::new(),
            stored: 0,
            failure: None,
            holders: Vec::new(),
            cached: false,
            to_store: Vec::new(),
        };
        self.sends.insert(self.next_send, send);
        self.next_send
    }

    /// The cached route to `wallet`, if it has not lapsed and still names a live session.
    fn route(&mut self, now: Timestamp, wallet: &Address) -> Option<&Route> {
        let fresh = self
            .routes
            .get(wallet)
            .is_some_and(|r| r.until > now && r.presences.iter().any(|p| p.is_live(now)));
        if !fresh {
            self.routes.remove(wallet);
            return None;
        }
        self.routes.get(wallet)
    }

    /// Remembers the route a send's read found; a full cache first forgets the route that lapses first.
    fn cache_route(&mut self, wallet: Address, route: Route) {
        if !self.routes.contains_key(&wallet) && self.routes.len() >= ROUTE_CACHE_WALLETS {
            let first = self.routes.iter().min_by_key(|(w, r)| (r.until, **w)).map(|(w, _)| *w);
            if let Some(w) = first {
                self.routes.remove(&w);
            }
        }
        self.routes.insert(wallet, route);
    }

    /// The send a presence read is for, directly or as one position of a several-position read.
    fn send_reading(&mut self, purpose: &GetFor) -> Option<&mut SendOp> {
        let send = match purpose {
            GetFor::Send(send) | GetFor::Refresh(send) => *send,
            GetFor::Part(read) => match self.reads.get(read)?.purpose {
                GetFor::Send(send) | GetFor::Refresh(send) => send,
                _ => return None,
            },
            GetFor::Wallet(..) | GetFor::Discover(..) => return None,
        };
        self.sends.get_mut(&send)
    }
}

impl Node {
    // ---------------------------------------------------------------------------------------------
    // API
    // ---------------------------------------------------------------------------------------------

    /// Finds the live sessions of `wallet`: resolves with [`Event::WalletSessions`].
    pub fn lookup_wallet(&mut self, now: Timestamp, wallet: Address) -> RequestId {
        let request = self.new_request();
        self.start_read(now, GetFor::Wallet(request, wallet), &presence_keys(&wallet));
        request
    }

    /// Announces this node's wallet on `topic` of `origin` for `ttl`: resolves with [`Event::Done`].
    pub fn announce(&mut self, now: Timestamp, origin: &str, topic: &str, ttl: Duration) -> RequestId {
        self.topic_record(now, origin, topic, ttl, false)
    }

    /// Withdraws this node's announcement: resolves with [`Event::Done`].
    pub fn withdraw(&mut self, now: Timestamp, origin: &str, topic: &str) -> RequestId {
        self.topic_record(now, origin, topic, Duration::from_secs(3600), true)
    }

    fn topic_record(
        &mut self,
        now: Timestamp,
        origin: &str,
        topic: &str,
        ttl: Duration,
        withdrawn: bool,
    ) -> RequestId {
        let request = self.new_request();
        // Peers refuse a record that claims more (records.rs, MAX_TOPIC_TTL) or outlives its delegation.
        let expires = now.saturating_add(ttl.min(MAX_TOPIC_TTL)).min(self.me.delegation_expires);
        let record = TopicRecord::sign(
            &self.me.session,
            origin,
            topic,
            self.me.wallet,
            &self.me.delegation,
            now,
            expires,
            withdrawn,
        );
        self.write_everywhere(now, WriteFor::Request(request), Record::Topic(record));
        request
    }

    /// Lists the wallets announced on `topic` of `origin`: resolves with [`Event::Discovered`].
    pub fn discover(&mut self, now: Timestamp, origin: &str, topic: &str) -> RequestId {
        let request = self.new_request();
        let purpose = GetFor::Discover(request, origin.to_string(), topic.to_string());
        self.start_read(now, purpose, &topic_keys(origin, topic));
        request
    }

    /// Sends `bytes` from app `origin` to every session of `to`, end-to-end encrypted: resolves with
    /// [`Event::Sent`] (`Delivered` with the sessions that sent receipts, or `Stored` in the wallet's
    /// mailbox) or [`Event::RequestFailed`] (`NotFound`, `MailboxFull`, …). A payload over 64 KiB is
    /// refused here, whole.
    pub fn send(
        &mut self,
        now: Timestamp,
        origin: &str,
        to: Address,
        bytes: Vec<u8>,
    ) -> Result<RequestId, FailReason> {
        if bytes.len() > MAX_PAYLOAD {
            return Err(FailReason::TooLarge(bytes.len()));
        }
        if origin.len() > e2e::MAX_APP_ORIGIN {
            return Err(FailReason::TooLarge(origin.len()));
        }
        let request = self.new_request();
        let mut id = [0u8; 16];
        id.copy_from_slice(&MessageId::random(&mut self.rng).0);
        let send = self.app.insert_send(now, request, to, origin, bytes, id);
        // A recent read of the wallet's presence serves again: no read, straight to its sessions.
        if let Some(route) = self.app.route(now, &to) {
            let (presences, holders) = (route.presences.clone(), route.holders.clone());
            if let Some(s) = self.app.sends.get_mut(&send) {
                s.cached = true;
                s.holders = holders;
            }
            self.io.counters.route_cache_hits += 1;
            self.deliver_to_sessions(now, send, presences);
        } else {
            self.start_read(now, GetFor::Send(send), &presence_keys(&to));
        }
        Ok(request)
    }

    /// Publishes (or refreshes) this session's presence record.
    pub(super) fn publish_presence(&mut self, now: Timestamp, withdrawn: bool) {
        let ttl = self.config.presence_ttl.min(MAX_PRESENCE_TTL);
        let expires = now.saturating_add(ttl).min(self.me.delegation_expires);
        let record = PresenceRecord::sign(
            &self.me.session,
            self.me.wallet,
            &self.me.delegation,
            now,
            expires,
            withdrawn,
        );
        self.timers.set(Timer::Presence, now.saturating_add(ttl / 2));
        self.write_everywhere(now, WriteFor::Presence, Record::Presence(record));
    }

    /// Writes `record` to every one of its keys ([`Record::keys`]: a wallet's positions), each with
    /// [`Self::write_at`]; the parts resolve as one [`Write`].
    fn write_everywhere(&mut self, now: Timestamp, then: WriteFor, record: Record) {
        let keys = record.keys();
        self.app.next_group += 1;
        let write = self.app.next_group;
        self.app.writes.insert(write, Write { then, pending: keys.len(), stored: false, failure: None });
        for key in keys {
            self.write_at(now, write, key, record.clone());
        }
    }

    /// Writes `record` to one of its keys: routed to the key's owner, which stores it under that key.
    fn write_at(&mut self, now: Timestamp, write: u64, key: Id, record: Record) {
        let body = AppMsg::Store { record: Box::new(record) };
        self.start_op(now, OpKind::Position { write }, Destination::Key(key), body);
    }

    /// One position of a write answered (`Ok`: stored there) or failed.
    fn write_part_done(&mut self, now: Timestamp, write: u64, result: Result<(), FailReason>) {
        let Some(w) = self.app.writes.get_mut(&write) else { return };
        w.pending = w.pending.saturating_sub(1);
        let first_store = result.is_ok() && !w.stored;
        match result {
            Ok(()) => w.stored = true,
            // A refusal says more than a silence: keep it over a timeout.
            Err(reason) if w.failure.is_none() || w.failure == Some(FailReason::Timeout) => {
                w.failure = Some(reason)
            }
            Err(_) => {}
        }
        let (then, pending, stored, failure) = (w.then, w.pending, w.stored, w.failure.clone());
        if pending == 0 {
            self.app.writes.remove(&write);
        }
        if first_store {
            match then {
                WriteFor::Presence => {}
                WriteFor::Send(send) => self.send_part_done(now, send, Ok(None)),
                WriteFor::Request(request) => self.io.emit(Event::Done { request }),
            }
        } else if pending == 0 && !stored {
            let reason = failure.unwrap_or(FailReason::Timeout);
            match then {
                // Our presence must be findable: try again soon rather than at the next refresh.
                WriteFor::Presence => self.timers.set(Timer::Presence, now.saturating_add(PRESENCE_RETRY)),
                WriteFor::Send(send) => self.send_part_done(now, send, Err(reason)),
                WriteFor::Request(request) => self.io.emit(Event::RequestFailed { request, reason }),
            }
        }
    }

    /// Reads every one of `keys` (a wallet's positions) and merges what they hold; one key is one read.
    fn start_read(&mut self, now: Timestamp, purpose: GetFor, keys: &[Id]) {
        if let [key] = keys {
            return self.start_get(now, purpose, *key, 0, Vec::new());
        }
        self.app.next_group += 1;
        let read = self.app.next_group;
        let parts = Read { purpose, pending: keys.len(), answered: false, acc: Vec::new(), failure: None };
        self.app.reads.insert(read, parts);
        for key in keys {
            self.start_get(now, GetFor::Part(read), *key, 0, Vec::new());
        }
    }

    /// One position of a read answered (`Ok`, all its pages) or failed; the read completes when none is left.
    fn read_part_done(&mut self, now: Timestamp, read: u64, result: Result<Vec<Record>, FailReason>) {
        let Some(r) = self.app.reads.get_mut(&read) else { return };
        r.pending = r.pending.saturating_sub(1);
        match result {
            Ok(records) => {
                r.answered = true;
                r.acc.extend(records);
            }
            Err(reason) => r.failure = Some(reason),
        }
        if r.pending > 0 {
            return;
        }
        let Some(r) = self.app.reads.remove(&read) else { return };
        if r.answered {
            self.get_done(now, r.purpose, r.acc);
        } else {
            self.get_failed(now, r.purpose, r.failure.unwrap_or(FailReason::Timeout));
        }
    }

    fn get_failed(&mut self, now: Timestamp, purpose: GetFor, reason: FailReason) {
        match purpose {
            GetFor::Wallet(request, _) | GetFor::Discover(request, ..) => {
                self.io.emit(Event::RequestFailed { request, reason })
            }
            GetFor::Send(send) => {
                if let Some(s) = self.app.sends.remove(&send) {
                    self.io.emit(Event::RequestFailed { request: s.request, reason });
                }
            }
            GetFor::Refresh(send) => {
                let failed = self.app.sends.get_mut(&send).map(|s| std::mem::take(&mut s.to_store));
                for _ in failed.unwrap_or_default() {
                    self.send_part_done(now, send, Err(reason.clone()));
                }
            }
            GetFor::Part(read) => self.read_part_done(now, read, Err(reason)),
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Requests and their replies
    // ---------------------------------------------------------------------------------------------

    /// Reads the records under `key` from its owner; later pages (`from`) go to the node that answered
    /// the first one, so every page comes from the same store.
    fn start_get(&mut self, now: Timestamp, purpose: GetFor, key: Id, skip: u32, acc: Vec<Record>) {
        self.start_get_from(now, purpose, key, skip, acc, None);
    }

    fn start_get_from(
        &mut self,
        now: Timestamp,
        purpose: GetFor,
        key: Id,
        skip: u32,
        acc: Vec<Record>,
        from: Option<Id>,
    ) {
        let dest = from.map_or(Destination::Key(key), Destination::Node);
        let kind = OpKind::Get { purpose, key, skip, acc, behind: 0 };
        self.start_op(now, kind, dest, AppMsg::Get { key, skip });
    }

    pub(super) fn start_op(&mut self, now: Timestamp, kind: OpKind, dest: Destination, body: AppMsg) {
        let attempts = if matches!(kind, OpKind::Deliver { .. }) { 1 } else { 0 };
        let op = self.app.insert_op(AppOp { kind, dest, body: Some(body), deadline: now, attempts });
        self.attempt_op(now, op);
    }

    fn attempt_op(&mut self, now: Timestamp, op: u64) {
        let per_attempt = self.config.request_timeout / u32::from(self.config.request_attempts.max(1));
        let deadline = now.saturating_add(per_attempt);
        let in_session = self.app.ops.get(&op).is_some_and(|o| {
            o.body.is_none() && matches!(o.kind, OpKind::Deliver { via: Via::Session { .. }, .. })
        });
        if in_session {
            return self.send_in_session_again(now, op);
        }
        let Some((dest, Some(body))) = self.app.ops.update(&op, |o| {
            o.attempts += 1;
            o.deadline = deadline;
            (o.dest, o.body.clone().map(Routed::App))
        }) else {
            return;
        };
        self.send_routed_then(now, dest, None, &body, |node, id| {
            node.app.op_by_msg.insert(id, op);
        });
    }

    /// Retries or fails app requests whose reply is overdue; refreshes presence; keeps records placed.
    pub(super) fn app_tick(&mut self, now: Timestamp) {
        for op in self.app.ops.due(now) {
            let attempts = self.app.ops.get(&op).map_or(0, |o| o.attempts);
            if attempts < self.config.request_attempts {
                self.attempt_op(now, op);
            } else {
                self.op_failed(now, op, FailReason::Timeout);
            }
        }
        if self.timers.is_due(Timer::Presence, now) {
            self.sessions.prune(now);
            if self.membership.joined {
                self.publish_presence(now, false);
            } else {
                // Armed again when the node joins.
                self.timers.stop(Timer::Presence);
            }
        }
        self.placement_tick(now);
    }

    /// Whether a reply to our message `reply_to`, signed by `signer`, may complete the op it answers: the
    /// signer must be the node the op's message was addressed to, or a plausible owner of its key
    /// (replies.rs). A reply from anyone else is counted and ignored, and the op waits on for the real one.
    /// A reply to no open op passes (the caller finds nothing to complete).
    fn may_reply(&mut self, now: Timestamp, reply_to: Option<MessageId>, signer: Id) -> bool {
        let dest = reply_to
            .and_then(|msg| self.app.op_by_msg.get(&msg))
            .and_then(|op| self.app.ops.get(op))
            .map(|o| o.dest);
        let Some(dest) = dest else { return true };
        if self.may_answer(dest, signer, None) {
            return true;
        }
        self.unsolicited_reply(now, signer);
        false
    }

    /// The destination of one of our ops' messages, if `msg` is one.
    pub(super) fn op_destination(&self, msg: &MessageId) -> Option<Destination> {
        self.app.op_by_msg.get(msg).and_then(|op| self.app.ops.get(op)).map(|o| o.dest)
    }

    /// A routed message about one of our ops could not be delivered.
    pub(super) fn app_undeliverable(&mut self, now: Timestamp, msg: MessageId, reason: Undeliverable) {
        let Some(&op) = self.app.op_by_msg.get(&msg) else { return };
        let give_up = matches!(self.app.ops.get(&op).map(|o| &o.kind), Some(OpKind::Deliver { .. }))
            || self.app.ops.get(&op).is_some_and(|o| o.attempts >= self.config.request_attempts);
        if give_up {
            self.op_failed(now, op, fail_reason(reason));
        }
    }

    fn op_failed(&mut self, now: Timestamp, op: u64, reason: FailReason) {
        let Some(o) = self.app.remove_op(op) else { return };
        match o.kind {
            OpKind::RehomeMail { .. } => {}
            OpKind::Position { write } => self.write_part_done(now, write, Err(reason)),
            OpKind::Get { purpose, .. } => self.get_failed(now, purpose, reason),
            // The session did not answer: it is offline after all; its message goes to the mailbox.
            // A route to the wallet that names this session is dropped, whichever send cached it.
            OpKind::Deliver { send, session, sealed, via } => {
                self.deliver_op_closed(now, &session, &via);
                let Some(sealed) = sealed.or_else(|| self.seal_one_shot(now, send, &session)) else {
                    return self.send_part_done(now, send, Err(reason));
                };
                let Some(s) = self.app.sends.get_mut(&send) else { return };
                let to = s.to;
                self.app.routes.remove(&to);
                if !s.cached {
                    return self.store_mail(now, send, session, sealed);
                }
                // The cached route failed: the wallet's positions are read again for where to store (the
                // cached holders may have changed). Any other failed sessions of this send wait for the
                // same read.
                s.to_store.push((session, sealed));
                if s.to_store.len() == 1 {
                    s.holders.clear();
                    self.start_read(now, GetFor::Refresh(send), &presence_keys(&to));
                }
            }
        }
    }

    /// Handles the app part of a routed message delivered here.
    pub(super) fn handle_app(&mut self, now: Timestamp, received: Received<AppMsg>) {
        let origin = received.origin;
        let reply_to = received.header.reply_to;
        let my_id = received.header.id;
        // Links crossed: the hops byte counts relays; a message from this very node crossed none.
        let hops = if origin == *self.me.session.public() { 0 } else { received.hops.saturating_add(1) };
        match received.body {
            AppMsg::Store { record } => {
                // Stored under the key the write was addressed to: a record lives at each of its keys (a
                // wallet's positions), and `accept_record` refuses a key that is not one of them.
                let key = match received.header.dest {
                    Destination::Key(key) | Destination::KeyStrict(key) => key,
                    Destination::Node(_) | Destination::Neighbor => record.key(),
                };
                let error = self.accept_record(now, key, *record, true).err();
                self.send_routed(
                    now,
                    Destination::Node(origin.node_id()),
                    Some(my_id),
                    &Routed::App(AppMsg::StoreAck { error }),
                );
            }
            AppMsg::StoreAck { error } => {
                if !self.may_reply(now, reply_to, origin.node_id()) {
                    return;
                }
                let Some((_, op)) = self.app.take_op(reply_to) else { return };
                let result = match error {
                    None => Ok(()),
                    Some(StoreFail::MailboxFull) => Err(FailReason::MailboxFull),
                    Some(StoreFail::SenderQuota) => Err(FailReason::MailboxQuota),
                    Some(_) => Err(FailReason::RecordRefused),
                };
                match op.kind {
                    OpKind::RehomeMail { key, id } if error == Some(StoreFail::Delivered) => {
                        self.records.store.remove_mail(
                            key,
                            &[id],
                            now.saturating_add(DEFAULT_MAILBOX_TTL * 2),
                        );
                    }
                    OpKind::Position { write } => self.write_part_done(now, write, result),
                    // A part of a read of several positions that got a store answer: that position gave
                    // no records, and the read must not wait for it forever.
                    OpKind::Get { purpose: GetFor::Part(read), .. } => {
                        self.read_part_done(now, read, Err(FailReason::RecordRefused))
                    }
                    // Nothing more to do: a re-homed entry the owner did not refuse as delivered; or an
                    // answer to a read or a delivery, which a store answer cannot complete (the op is gone
                    // all the same, as before).
                    OpKind::RehomeMail { .. } | OpKind::Get { .. } | OpKind::Deliver { .. } => {}
                }
            }
            AppMsg::Get { key, skip } => {
                let all: Vec<Record> = self
                    .records
                    .store
                    .get(key)
                    .into_iter()
                    .filter(|r| !matches!(r, Record::Mailbox(_)))
                    .collect();
                let mut page = Vec::new();
                let mut bytes = 0;
                let mut more = false;
                for r in all.into_iter().skip(skip as usize) {
                    let size = postcard::to_allocvec(&r).map_or(0, |v| v.len());
                    if !page.is_empty() && bytes + size > PAGE_BYTES {
                        more = true;
                        break;
                    }
                    bytes += size;
                    page.push(r);
                }
                let body = Routed::App(AppMsg::Records { records: page, more });
                self.send_routed(now, Destination::Node(origin.node_id()), Some(my_id), &body);
            }
            AppMsg::Records { records, more } => {
                if !self.may_reply(now, reply_to, origin.node_id()) {
                    return;
                }
                let Some((_, op)) = self.app.take_op(reply_to) else { return };
                let OpKind::Get { purpose, key, skip, mut acc, behind } = op.kind else {
                    // Records for a write to one position: that position stored nothing; the write must
                    // not wait for it forever.
                    if let OpKind::Position { write } = op.kind {
                        self.write_part_done(now, write, Err(FailReason::RecordRefused));
                    }
                    return;
                };
                let n = records.len() as u32;
                if let Some(s) = self.app.send_reading(&purpose) {
                    s.answered(key, origin, n > 0);
                }
                acc.extend(records);
                if more && n > 0 && acc.len() < 10_000 {
                    self.start_get_from(now, purpose, key, skip + n, acc, Some(origin.node_id()));
                } else if acc.is_empty() && behind < self.config.successors.saturating_sub(1) {
                    // Nothing here. A node that just joined owns the key before the records reach it, and
                    // the node that held them is its successor — or, if several joined in a row, a few
                    // nodes further, still within the key's replicas: ask the next node, up to r − 1 past
                    // the owner, before answering "nothing" (docs/records.md, "Read").
                    let dest = Destination::Key(origin.node_id().finger_target(0));
                    let kind = OpKind::Get { purpose, key, skip: 0, acc, behind: behind + 1 };
                    self.start_op(now, kind, dest, AppMsg::Get { key, skip: 0 });
                } else {
                    self.get_done(now, purpose, acc);
                }
            }
            AppMsg::Deliver { id, sealed } => {
                // A receipt for a message delivered now or before (its first receipt may have been lost);
                // none for one refused by age or window, so the sender is not told `Delivered` for it.
                let verdict = self.open_message(now, &sealed, hops);
                if matches!(verdict, Some(Verdict::Fresh | Verdict::Repeat)) {
                    self.send_routed(
                        now,
                        Destination::Node(origin.node_id()),
                        Some(my_id),
                        &Routed::App(AppMsg::Receipt { id }),
                    );
                }
            }
            AppMsg::Receipt { .. } => {
                // Only the session the message was sealed to completes the op. A receipt from anyone else
                // is not ours to count: the op and every index entry of it stay, so the genuine receipt
                // still finds it.
                let op = self.op_for_reply(reply_to);
                let ours = op.is_some_and(
                    |o| matches!(&o.kind, OpKind::Deliver { session, .. } if *session == origin),
                );
                if !ours {
                    if op.is_some() {
                        self.unsolicited_reply(now, origin.node_id());
                    }
                    return;
                }
                if let Some((_, AppOp { kind: OpKind::Deliver { send, session, via, .. }, .. })) =
                    self.app.take_op(reply_to)
                {
                    self.deliver_op_closed(now, &session, &via);
                    self.send_part_done(now, send, Ok(Some(origin.node_id())))
                }
            }
            AppMsg::Hello { id, hello } => {
                let me = &mut self.me;
                let network = &self.config.network;
                let creds = &self.sessions.credentials;
                let responding =
                    match session::accept(&mut self.rng, creds, &origin, network, &mut me.cache, now, &hello)
                    {
                        Ok(r) => r,
                        Err(_) => {
                            self.io.counters.refused_messages += 1;
                            return;
                        }
                    };
                let peer = responding.peer().clone();
                let Some(verdict) = self.open_session_message(now, &peer, responding.data(), hops) else {
                    return;
                };
                // The welcome is the receipt: it says delivered exactly when a `Receipt` would be sent.
                let delivered = matches!(verdict, Verdict::Fresh | Verdict::Repeat);
                let data = postcard_bytes(&WelcomeData { delivered });
                let Ok((session, welcome)) = responding.welcome(&mut self.rng, &data) else { return };
                self.sessions.insert(now, session, Role::Responder);
                self.send_routed(
                    now,
                    Destination::Node(origin.node_id()),
                    Some(my_id),
                    &Routed::App(AppMsg::Welcome { id, welcome }),
                );
            }
            AppMsg::Welcome { welcome, .. } => {
                // Only the session our hello went to can finish our handshake with it; a welcome from
                // anyone else is not ours to count, and the op waits for the genuine one (as a receipt).
                let op = self.op_for_reply(reply_to);
                let index = match op.map(|o| &o.kind) {
                    Some(OpKind::Deliver { session, via: Via::Hello { index }, .. })
                        if *session == origin =>
                    {
                        *index
                    }
                    Some(_) => return self.unsolicited_reply(now, origin.node_id()),
                    None => return,
                };
                let delivered = match self.sessions.finish(now, index, &welcome) {
                    Some(Ok(data)) => postcard::from_bytes::<WelcomeData>(&data).is_ok_and(|w| w.delivered),
                    Some(Err(_)) => {
                        self.io.counters.refused_messages += 1;
                        false
                    }
                    None => false,
                };
                // The handshake is over either way: what waited for it goes, in the session if it made one.
                self.release_waiting(now, &origin);
                // Not delivered (refused by age or window): no receipt, so the op runs out and the message goes
                // to the mailbox, as for a one-shot message — but the session stands.
                if delivered {
                    if let Some((_, AppOp { kind: OpKind::Deliver { send, .. }, .. })) =
                        self.app.take_op(reply_to)
                    {
                        self.send_part_done(now, send, Ok(Some(origin.node_id())));
                    }
                }
            }
            AppMsg::NoSession { index } => self.no_session(now, origin, index),
            AppMsg::MailboxDeliver { entries } => {
                // Acknowledge (and so delete) only what was opened here, under the id that names exactly
                // those bytes: a forged delivery — junk, or another message under a real entry's id —
                // acknowledges nothing, and the real entry waits for its own delivery.
                let mut ids = Vec::with_capacity(entries.len());
                for (id, sealed) in entries {
                    if id != mail_id(&sealed) {
                        self.io.counters.refused_messages += 1;
                    } else if let Some(verdict) = self.open_message(now, &sealed, hops) {
                        // Acknowledged (deleted) once delivered, or when it never can be (stale); a message
                        // dated ahead of our clock waits in the mailbox for a later delivery.
                        if verdict != Verdict::Early {
                            ids.push(id);
                        }
                    }
                }
                if ids.is_empty() {
                    return;
                }
                // Back to the holder that delivered them, sealed to it: the acknowledgement names this
                // wallet and carries its delegation, which relays are not to learn. The holders of the
                // wallet's other positions each deliver their own copy and are answered the same way (a
                // repeat is acknowledged again).
                let me = &self.me;
                let ack = MailAck::sign(&me.session, me.wallet, &me.delegation, ids);
                let Ok(sealed) =
                    e2e::seal_to(self.config.crypto, &mut self.rng, &origin, &postcard_bytes(&ack))
                else {
                    return;
                };
                self.send_routed(
                    now,
                    Destination::Node(origin.node_id()),
                    None,
                    &Routed::App(AppMsg::MailboxAck { sealed }),
                );
            }
            AppMsg::MailboxAck { sealed } => {
                // Whoever brings it, the acknowledgement speaks for the recipient session only if it verifies;
                // the replicas (and a former replica past them) check it again.
                let Some(ack) = self.open_sealed::<MailAck>(&sealed) else { return };
                if self.apply_mail_ack(now, &ack) {
                    self.push_to_successors(LinkMsg::DropMail { ack: Box::new(ack) });
                }
            }
            AppMsg::StoreSealed { sealed } => {
                // A mailbox entry and the position it is for, sealed to this node; once opened it is checked
                // like any `Store` to that key (one of the entry's keys; the writer's delegation and
                // signature, its quota). Nothing else travels this way.
                let error = match self.open_sealed::<SealedStore>(&sealed) {
                    Some(SealedStore { key, record: record @ Record::Mailbox(_) }) => {
                        self.accept_record(now, key, record, true).err()
                    }
                    Some(SealedStore { record: Record::Presence(_) | Record::Topic(_), .. }) => {
                        self.io.counters.dropped_invalid += 1;
                        Some(StoreFail::Invalid)
                    }
                    None => Some(StoreFail::Invalid),
                };
                self.send_routed(
                    now,
                    Destination::Node(origin.node_id()),
                    Some(my_id),
                    &Routed::App(AppMsg::StoreAck { error }),
                );
            }
        }
    }

    /// Opens and decodes (strictly: no trailing bytes) a body sealed to this node with
    /// [`e2e::seal_to`]; `None`, counted as invalid, if it is not one.
    fn open_sealed<T: serde::de::DeserializeOwned>(&mut self, sealed: &[u8]) -> Option<T> {
        let opened = e2e::open_sealed(&self.me.session, MAX_SEALED_BODY, sealed)
            .ok()
            .and_then(|plain| postcard::from_bytes::<T>(&plain).ok());
        if opened.is_none() {
            self.io.counters.dropped_invalid += 1;
        }
        opened
    }

    /// Opens a sealed message for this node and emits it if the accepted table admits it (each
    /// `(sending session, seq)` once, within the age bounds: `accepted.rs`). `None`: it did not open. `hops`:
    /// links crossed by the frame that brought it.
    fn open_message(&mut self, now: Timestamp, sealed: &[u8], hops: u8) -> Option<Verdict> {
        let me = &mut self.me;
        let opened =
            match e2e::open(&me.session, &me.wallet, &self.config.network, &mut me.cache, now, sealed) {
                Ok(opened) => opened,
                Err(_) => {
                    self.io.counters.refused_messages += 1;
                    return None;
                }
            };
        Some(self.admit_message(now, &opened.sender_session, opened.inner, mail_id(sealed), hops))
    }

    /// Reads the message `plain` that arrived in a session with `peer` (a hello's data or a session
    /// message) and emits it if the accepted table admits it. `None`, counted, if it does not decode or is not
    /// from the peer's wallet to this node's: the session proves who sent it, the message must agree.
    pub(super) fn open_session_message(
        &mut self,
        now: Timestamp,
        peer: &Peer,
        plain: &[u8],
        hops: u8,
    ) -> Option<Verdict> {
        let inner = match postcard::take_from_bytes::<InnerMessage>(plain) {
            Ok((inner, [])) => inner,
            _ => {
                self.io.counters.refused_messages += 1;
                return None;
            }
        };
        let fits = inner.payload.len() <= MAX_PAYLOAD && inner.app_origin.len() <= MAX_APP_ORIGIN;
        if !fits || inner.from_wallet != peer.wallet || inner.to_wallet != self.me.wallet {
            self.io.counters.refused_messages += 1;
            return None;
        }
        Some(self.admit_message(now, &peer.session, inner, mail_id(plain), hops))
    }

    /// Emits a message from `sender` if the accepted table admits it (each `(sending session, seq)` once,
    /// within the age bounds: `accepted.rs`); `id` names it to the app.
    fn admit_message(
        &mut self,
        now: Timestamp,
        sender: &SessionPublicKey,
        inner: InnerMessage,
        id: [u8; 16],
        hops: u8,
    ) -> Verdict {
        // The table writes the change to its store here, before the event and the receipt are queued.
        let verdict = self.accepted.admit(sender, inner.seq, inner.sent_at, now);
        match verdict {
            Verdict::Fresh => {
                self.io.counters.messages_received += 1;
                self.io.emit(Event::MessageReceived {
                    from_wallet: inner.from_wallet,
                    app_origin: inner.app_origin,
                    bytes: inner.payload,
                    id,
                    sent_at: inner.sent_at,
                    hops,
                });
            }
            Verdict::Repeat => self.io.counters.repeated_messages += 1,
            Verdict::Stale | Verdict::Early => self.io.counters.stale_messages += 1,
        }
        verdict
    }

    fn get_done(&mut self, now: Timestamp, purpose: GetFor, records: Vec<Record>) {
        match purpose {
            GetFor::Wallet(request, wallet) => {
                let sessions = self
                    .valid_presences(now, &wallet, records)
                    .into_iter()
                    .filter(|p| p.is_live(now))
                    .map(|p| SessionInfo { node_id: p.node_id(), session: p.session, expires: p.expires })
                    .collect();
                self.io.emit(Event::WalletSessions { request, wallet, sessions });
            }
            GetFor::Discover(request, origin, topic) => {
                let mut members: Vec<(Address, Timestamp)> = Vec::new();
                for t in self.valid_topics(now, &origin, &topic, records) {
                    // A session that withdrew is gone even if a position still holds its announcement.
                    if t.withdrawn {
                        continue;
                    }
                    match members.iter_mut().find(|(w, _)| *w == t.wallet) {
                        Some(m) => m.1 = m.1.max(t.announced),
                        None => members.push((t.wallet, t.announced)),
                    }
                }
                members.sort();
                self.io.emit(Event::Discovered { request, members });
            }
            GetFor::Send(send) => self.send_to_sessions(now, send, records),
            GetFor::Refresh(send) => {
                let failed = self.app.sends.get_mut(&send).map(|s| std::mem::take(&mut s.to_store));
                for (session, sealed) in failed.unwrap_or_default() {
                    self.store_mail(now, send, session, sealed);
                }
            }
            GetFor::Part(read) => self.read_part_done(now, read, Ok(records)),
        }
    }

    /// Presence records of `wallet` that verify now, newest per session: live ones and the last known
    /// sessions — expired or withdrawn — whose delegation is still valid. A withdrawn session is one that
    /// went offline gracefully (a browser closing sends `Leave`); it keeps its key and comes back, so mail
    /// is still sealed to it. Callers filter with [`PresenceRecord::is_live`] where only live ones count.
    ///
    /// `records` may hold several positions' answers: per session the newest copy that verifies wins, and
    /// the copies older than it are not verified at all (each position's copy costs nothing more).
    fn valid_presences(
        &mut self,
        now: Timestamp,
        wallet: &Address,
        records: Vec<Record>,
    ) -> Vec<PresenceRecord> {
        let found = records
            .into_iter()
            .filter_map(|r| match r {
                Record::Presence(p) if p.wallet == *wallet => Some(p),
                Record::Presence(_) | Record::Topic(_) | Record::Mailbox(_) => None,
            })
            .collect();
        let (network, skew) = (&self.config.network, self.config.clock_skew);
        let (cache, counters) = (&mut self.me.cache, &mut self.io.counters);
        newest_per_session(
            found,
            |p| (p.session, p.published),
            |p| {
                let ok = p.verify(network, now, skew, cache).is_ok();
                counters.refused_records += u64::from(!ok);
                ok
            },
        )
    }

    /// Topic records of `topic` of `origin` that verify now, newest per session (an announcement or a
    /// withdrawal). `records` may hold several positions' answers; as for presence, the copies older than a
    /// session's newest that verifies are not verified at all.
    fn valid_topics(
        &mut self,
        now: Timestamp,
        origin: &str,
        topic: &str,
        records: Vec<Record>,
    ) -> Vec<TopicRecord> {
        let found = records
            .into_iter()
            .filter_map(|r| match r {
                Record::Topic(t) if t.origin == origin && t.topic == topic => Some(t),
                Record::Topic(_) | Record::Presence(_) | Record::Mailbox(_) => None,
            })
            .collect();
        let (network, skew) = (&self.config.network, self.config.clock_skew);
        let (cache, counters) = (&mut self.me.cache, &mut self.io.counters);
        newest_per_session(
            found,
            |t| (t.session, t.announced),
            |t| {
                let ok = t.verify(network, now, skew, cache).is_ok();
                counters.refused_records += u64::from(!ok);
                ok
            },
        )
    }

    /// A send's presence read answered: its message goes to the sessions found, and the route is cached
    /// for the next sends to the wallet when a session is live.
    fn send_to_sessions(&mut self, now: Timestamp, send: u64, records: Vec<Record>) {
        let Some(s) = self.app.sends.get(&send) else { return };
        let (to, holders) = (s.to, s.holders.clone());
        let presences = self.valid_presences(now, &to, records);
        let first_expiry = presences.iter().filter(|p| p.is_live(now)).map(|p| p.expires).min();
        if let Some(expires) = first_expiry {
            if !self.config.route_cache_ttl.is_zero() && !holders.is_empty() {
                let until = now.saturating_add(self.config.route_cache_ttl).min(expires);
                self.app.cache_route(to, Route { presences: presences.clone(), holders, until });
            }
        }
        self.deliver_to_sessions(now, send, presences);
    }

    /// Seals a send's message to each of the wallet's sessions (`presences`, verified): delivered to the
    /// live ones, or stored for the last known ones when none is live.
    fn deliver_to_sessions(&mut self, now: Timestamp, send: u64, presences: Vec<PresenceRecord>) {
        if presences.is_empty() {
            if let Some(s) = self.app.sends.remove(&send) {
                self.io.emit(Event::RequestFailed { request: s.request, reason: FailReason::NotFound });
            }
            return;
        }
        let live: Vec<&PresenceRecord> = presences.iter().filter(|p| p.is_live(now)).collect();
        let targets: Vec<(SessionPublicKey, bool)> = if live.is_empty() {
            presences.iter().map(|p| (p.session, false)).collect()
        } else {
            live.iter().map(|p| (p.session, true)).collect()
        };
        let Some(s) = self.app.sends.get_mut(&send) else { return };
        s.pending = targets.len();
        for (session, live) in targets {
            if live {
                let presence = presences.iter().find(|p| p.session == session);
                self.deliver_live(now, send, session, presence);
            } else {
                match self.seal_one_shot(now, send, &session) {
                    Some(sealed) => self.store_mail(now, send, session, sealed),
                    None => self.send_too_large(now, send),
                }
            }
        }
    }

    /// The message of `send` as its recipient will read it, dated `now`.
    pub(super) fn inner_of(&self, now: Timestamp, send: u64) -> Option<InnerMessage> {
        let s = self.app.sends.get(&send)?;
        Some(InnerMessage {
            from_wallet: self.me.wallet,
            to_wallet: s.to,
            app_origin: s.origin.clone(),
            seq: s.seq,
            sent_at: now,
            payload: s.payload.clone(),
        })
    }

    /// The message of `send` sealed on its own to `session` (a one-shot `Deliver`, or mail).
    fn seal_one_shot(&mut self, now: Timestamp, send: u64, session: &SessionPublicKey) -> Option<Vec<u8>> {
        let inner = self.inner_of(now, send)?;
        e2e::seal(&mut self.rng, &self.me.session, &self.me.delegation, session, &inner).ok()
    }

    pub(super) fn send_too_large(&mut self, now: Timestamp, send: u64) {
        let len = self.app.sends.get(&send).map_or(0, |s| s.payload.len());
        self.send_part_done(now, send, Err(FailReason::TooLarge(len)));
    }

    /// Sends the message of `send` to a live session: in our session with it if there is one, else in a
    /// hello that starts one, else (a handshake with it is already under way, or the message is too large
    /// for a hello, or the session publishes no usable key) sealed on its own.
    fn deliver_live(
        &mut self,
        now: Timestamp,
        send: u64,
        session: SessionPublicKey,
        presence: Option<&PresenceRecord>,
    ) {
        let Some(inner) = self.inner_of(now, send) else { return };
        let plain = postcard_bytes(&inner);
        if self.send_in_session(now, send, &session, &plain, None) {
            return;
        }
        let peer = presence.and_then(|p| {
            let verified = self.me.cache.verify(&p.delegation, &self.config.network, now).ok()?;
            Some(Peer {
                session,
                static_key: p.static_key,
                wallet: p.wallet,
                delegation_expires: verified.expires,
            })
        });
        self.send_without_session(now, send, session, peer, &plain);
    }

    /// Sends the message `plain` of `send` to `session` when we have no session with it to send in: it waits
    /// for our handshake with it if one is under way (and has room), else it goes in a hello that starts one
    /// (if we know the session's static key and delegation, `peer`, and the message fits a hello), else
    /// sealed on its own.
    pub(super) fn send_without_session(
        &mut self,
        now: Timestamp,
        send: u64,
        session: SessionPublicKey,
        peer: Option<Peer>,
        plain: &[u8],
    ) {
        let Some(id) = self.app.sends.get(&send).map(|s| s.id) else { return };
        if peer.is_some() && self.may_wait(&session) {
            return self.wait_for_handshake(now, send, session);
        }
        if let Some(peer) = peer.filter(|_| !self.sessions.handshaking(&session)) {
            if plain.len() <= MAX_HANDSHAKE_DATA {
                return self.start_hello(now, send, peer, id, plain);
            }
        }
        let Some(sealed) = self.seal_one_shot(now, send, &session) else {
            return self.send_too_large(now, send);
        };
        let kind = OpKind::Deliver { send, session, sealed: Some(sealed.clone()), via: Via::OneShot };
        self.start_op(now, kind, Destination::Node(session.node_id()), AppMsg::Deliver { id, sealed });
    }

    /// Sends the message `plain` of `send` in a hello to `peer`, starting a session with it.
    fn start_hello(&mut self, now: Timestamp, send: u64, peer: Peer, id: [u8; 16], plain: &[u8]) {
        let started = Initiating::start(&mut self.rng, &self.sessions.credentials, peer.clone(), now, plain);
        let Ok((handshake, hello)) = started else {
            return self.send_too_large(now, send);
        };
        let index = handshake.index();
        self.sessions.started(handshake);
        self.io.counters.session_hellos += 1;
        let session = peer.session;
        let kind = OpKind::Deliver { send, session, sealed: None, via: Via::Hello { index } };
        self.start_op(now, kind, Destination::Node(session.node_id()), AppMsg::Hello { id, hello });
    }

    /// The open op that `reply_to` (a reply's `reply_to`) answers, if any.
    fn op_for_reply(&self, reply_to: Option<MessageId>) -> Option<&AppOp> {
        reply_to.and_then(|msg| self.app.op_by_msg.get(&msg)).and_then(|op| self.app.ops.get(op))
    }

    /// Whether a message to `session` is to wait for our handshake with it, under way, that has room.
    fn may_wait(&self, session: &SessionPublicKey) -> bool {
        self.sessions.handshaking(session)
            && self.app.waiting.get(session).map_or(0, Vec::len) < WAITING_PER_PEER
    }

    /// Parks the message of `send` until our handshake with `session` is over ([`Via::Waiting`]): an op
    /// whose deadline runs as if it had been sent, and which sends nothing yet.
    fn wait_for_handshake(&mut self, now: Timestamp, send: u64, session: SessionPublicKey) {
        let per_attempt = self.config.request_timeout / u32::from(self.config.request_attempts.max(1));
        let op = self.app.insert_op(AppOp {
            kind: OpKind::Deliver { send, session, sealed: None, via: Via::Waiting },
            dest: Destination::Node(session.node_id()),
            // Nothing to send yet (a body is given when it is released); all its attempts are used, so that
            // its deadline fails it (to the mailbox) rather than sends it.
            body: None,
            deadline: now.saturating_add(per_attempt),
            attempts: self.config.request_attempts,
        });
        self.app.waiting.entry(session).or_default().push(op);
    }

    /// Our handshake with `session` is over: the messages waiting for it go in the session it made, or on
    /// their own if it made none.
    fn release_waiting(&mut self, now: Timestamp, session: &SessionPublicKey) {
        for op in self.app.waiting.remove(session).unwrap_or_default() {
            let send = match self.app.ops.get(&op).map(|o| &o.kind) {
                Some(OpKind::Deliver { send, via: Via::Waiting, .. }) => *send,
                _ => continue,
            };
            let Some(id) = self.app.sends.get(&send).map(|s| s.id) else { continue };
            let plain = self.inner_of(now, send).map(|inner| postcard_bytes(&inner)).unwrap_or_default();
            if self.send_in_session(now, send, session, &plain, Some(op)) {
                continue;
            }
            let Some(sealed) = self.seal_one_shot(now, send, session) else {
                self.app.remove_op(op);
                self.send_too_large(now, send);
                continue;
            };
            self.app.ops.update(&op, |o| {
                let via = Via::OneShot;
                o.kind = OpKind::Deliver { send, session: *session, sealed: Some(sealed.clone()), via };
                o.body = Some(AppMsg::Deliver { id, sealed });
            });
            self.attempt_op(now, op);
        }
    }

    /// A message op to one session is over: a handshake it started and that nothing finished is dropped,
    /// and what waited for it goes.
    fn deliver_op_closed(&mut self, now: Timestamp, session: &SessionPublicKey, via: &Via) {
        if let Via::Hello { index } = via {
            self.sessions.drop_pending(*index);
            self.release_waiting(now, session);
        }
    }

    fn store_mail(&mut self, now: Timestamp, send: u64, session: SessionPublicKey, sealed: Vec<u8>) {
        let Some(s) = self.app.sends.get(&send) else { return };
        let (to, holders) = (s.to, s.holders.clone());
        let me = &self.me;
        // Never kept past our delegation: the recipient could not open it then.
        let expires = now.saturating_add(DEFAULT_MAILBOX_TTL).min(me.delegation_expires);
        let entry =
            MailboxEntry::sign(&me.session, me.wallet, &me.delegation, to, session, sealed, now, expires);
        // Mail goes only to a wallet whose presence was read, so some position answered.
        if holders.is_empty() {
            return self.send_part_done(now, send, Err(FailReason::NotFound));
        }
        self.app.next_group += 1;
        let write = self.app.next_group;
        let parts =
            Write { then: WriteFor::Send(send), pending: holders.len(), stored: false, failure: None };
        self.app.writes.insert(write, parts);
        let record = Record::Mailbox(entry);
        for holder in holders {
            self.write_mail(now, write, holder, &record);
        }
    }

    /// One position's copy of a mailbox write: the entry and the key it is stored under, sealed to the
    /// session of the node that answered that position's read and routed to that node (`StoreSealed`),
    /// which opens, checks and stores it and answers `StoreAck`. Relays see the holder's node id and the
    /// ciphertext's length; the wallets, sessions, delegation and key are inside.
    fn write_mail(&mut self, now: Timestamp, write: u64, holder: Holder, record: &Record) {
        let body = SealedStore { key: holder.key, record: record.clone() };
        let Ok(sealed) =
            e2e::seal_to(self.config.crypto, &mut self.rng, &holder.node, &postcard_bytes(&body))
        else {
            return self.write_part_done(now, write, Err(FailReason::RecordRefused));
        };
        self.start_op(
            now,
            OpKind::Position { write },
            Destination::Node(holder.node.node_id()),
            AppMsg::StoreSealed { sealed },
        );
    }

    /// One session of a send resolved: `Ok(Some(node))` delivered, `Ok(None)` stored, `Err` failed.
    pub(super) fn send_part_done(
        &mut self,
        _now: Timestamp,
        send: u64,
        result: Result<Option<Id>, FailReason>,
    ) {
        let Some(s) = self.app.sends.get_mut(&send) else { return };
        match result {
            Ok(Some(node)) => s.delivered.push(node),
            Ok(None) => s.stored += 1,
            Err(reason) => s.failure = Some(reason),
        }
        s.pending = s.pending.saturating_sub(1);
        if s.pending > 0 {
            return;
        }
        let Some(s) = self.app.sends.remove(&send) else { return };
        let event = if !s.delivered.is_empty() {
            Event::Sent { request: s.request, outcome: SendOutcome::Delivered { sessions: s.delivered } }
        } else if s.stored > 0 {
            Event::Sent { request: s.request, outcome: SendOutcome::Stored }
        } else {
            Event::RequestFailed { request: s.request, reason: s.failure.unwrap_or(FailReason::Timeout) }
        };
        self.io.emit(event);
    }
}

/// Largest body sealed with [`e2e::seal_to`] that a node opens: a mailbox entry of the largest sealed
/// message with its delegation, with room to spare, within an envelope.
const MAX_SEALED_BODY: usize = crate::wire::envelope::MAX_FRAME;

/// The postcard encoding of a record or an acknowledgement (plain structs: encoding cannot fail).
pub(super) fn postcard_bytes<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).unwrap_or_default()
}

/// Per session, the newest of `found` that `verify` accepts (`stamp`: its session and time). The copies of a
/// session older than that one are never verified, so reading a record at several positions costs one
/// check, not one per copy; a newer copy that does not verify (a forgery) hides nothing older.
fn newest_per_session<T>(
    mut found: Vec<T>,
    stamp: impl Fn(&T) -> (SessionPublicKey, Timestamp),
    mut verify: impl FnMut(&T) -> bool,
) -> Vec<T> {
    found.sort_by(|a, b| {
        let ((sa, ta), (sb, tb)) = (stamp(a), stamp(b));
        (sa.as_bytes(), std::cmp::Reverse(ta)).cmp(&(sb.as_bytes(), std::cmp::Reverse(tb)))
    });
    let mut out: Vec<T> = Vec::new();
    for r in found {
        if out.last().is_some_and(|last| stamp(last).0 == stamp(&r).0) {
            continue;
        }
        if verify(&r) {
            out.push(r);
        }
    }
    out
}
