//! What dApps use the ring for: presence, topics, end-to-end encrypted messages with receipts, and
//! mailboxes for offline wallets — plus keeping the records where they belong as the ring changes.
//!
//! Records live on the owner of their key and its first r − 1 successors. Writes go to the owner, which
//! stores, answers, and pushes the record to its successors; reads ask the owner. Whenever a node's
//! predecessor or successors change it pushes the records it owns to its successors again (replica
//! repair) and hands the ones it no longer owns to its predecessor (join handoff); a leaving node hands
//! everything to its successor.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::msg::{self, AppMsg, LinkMsg, Routed, StoreFail, Undeliverable};
use super::records::{
    presence_key, topic_key, MailboxEntry, PresenceRecord, Record, RecordError, StoreError, TopicRecord,
    DEFAULT_MAILBOX_TTL,
};
use super::timer::{Deadline, Timer};
use super::{Node, SEEN_CAPACITY};
use crate::e2e::{self, InnerMessage, MAX_PAYLOAD};
use crate::id::Id;
use crate::identity::{Address, SessionPublicKey};
use crate::node::api::{Event, FailReason, RequestId, SendOutcome, SessionInfo};
use crate::time::Timestamp;
use crate::wire::envelope::{Destination, MessageId, Received};

/// Bytes of records in one `Records` page or `Replicate` batch.
const PAGE_BYTES: usize = 48 * 1024;
/// A presence write that failed is tried again this soon.
const PRESENCE_RETRY: Duration = Duration::from_secs(5);
/// How often records held but not owned are sent to their owner again.
const REHOME_INTERVAL: Duration = Duration::from_secs(30);
/// Sealed messages in one `MailboxDeliver` (each up to ~66 KiB: one per frame keeps under the limit).
const MAIL_PER_FRAME: usize = 1;

/// What a routed app request is for.
#[derive(Debug, Clone)]
pub(super) enum OpKind {
    /// A record write for an API request (announce, withdraw) or a send's mailbox put.
    Store { request: Option<RequestId>, send: Option<u64> },
    /// Our own presence record.
    Presence,
    /// A mailbox entry we hold but do not own, sent to its owner; dropped here if already delivered.
    RehomeMail { key: Id, id: [u8; 16] },
    /// A read. `second` once the owner had nothing and its successor is being asked.
    Get { purpose: GetFor, key: Id, skip: u32, acc: Vec<Record>, second: bool },
    /// A message to one session of a send.
    Deliver { send: u64, session: SessionPublicKey, sealed: Vec<u8> },
}

/// Why a read was made.
#[derive(Debug, Clone)]
pub(super) enum GetFor {
    Wallet(RequestId, Address),
    Discover(RequestId, String, String),
    Send(u64),
}

/// A routed app request waiting for its reply.
#[derive(Debug)]
pub(super) struct AppOp {
    kind: OpKind,
    dest: Destination,
    body: AppMsg,
    deadline: Timestamp,
    attempts: u8,
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
    id: [u8; 16],
    seq: u64,
    pending: usize,
    delivered: Vec<Id>,
    stored: usize,
    failure: Option<FailReason>,
}

impl Node {
    // ---------------------------------------------------------------------------------------------
    // API
    // ---------------------------------------------------------------------------------------------

    /// The wallet this node acts for.
    pub fn wallet(&self) -> Address {
        self.wallet
    }

    /// Whether any record is held under `key` (tests and status).
    pub fn debug_has_record(&self, key: Id) -> bool {
        !self.store.get(key).is_empty()
    }

    /// Mailbox entries this node holds (as owner or replica), for status pages and tests.
    pub fn mailbox_entries(&self) -> usize {
        self.store
            .keys()
            .into_iter()
            .flat_map(|k| self.store.get(k))
            .filter(|r| matches!(r, Record::Mailbox(_)))
            .count()
    }

    /// Finds the live sessions of `wallet`: resolves with [`Event::WalletSessions`].
    pub fn lookup_wallet(&mut self, now: Timestamp, wallet: Address) -> RequestId {
        let request = self.new_request();
        let key = presence_key(&wallet);
        self.start_get(now, GetFor::Wallet(request, wallet), key, 0, Vec::new());
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
        let expires = now.saturating_add(ttl).min(self.delegation_expires);
        let record = TopicRecord::sign(
            &self.session,
            origin,
            topic,
            self.wallet,
            &self.delegation,
            now,
            expires,
            withdrawn,
        );
        let dest = Destination::Key(record.key());
        self.start_op(
            now,
            OpKind::Store { request: Some(request), send: None },
            dest,
            AppMsg::Store { record: Box::new(Record::Topic(record)) },
        );
        request
    }

    /// Lists the wallets announced on `topic` of `origin`: resolves with [`Event::Discovered`].
    pub fn discover(&mut self, now: Timestamp, origin: &str, topic: &str) -> RequestId {
        let request = self.new_request();
        let key = topic_key(origin, topic);
        self.start_get(
            now,
            GetFor::Discover(request, origin.to_string(), topic.to_string()),
            key,
            0,
            Vec::new(),
        );
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
        self.next_send += 1;
        let send = self.next_send;
        self.seq += 1;
        let mut id = [0u8; 16];
        id.copy_from_slice(&MessageId::random(&mut self.rng).0);
        self.sends.insert(
            send,
            SendOp {
                request,
                to,
                origin: origin.to_string(),
                payload: bytes,
                id,
                seq: self.seq,
                pending: 0,
                delivered: Vec::new(),
                stored: 0,
                failure: None,
            },
        );
        self.start_get(now, GetFor::Send(send), presence_key(&to), 0, Vec::new());
        Ok(request)
    }

    /// Publishes (or refreshes) this session's presence record.
    pub(super) fn publish_presence(&mut self, now: Timestamp, withdrawn: bool) {
        let expires = now.saturating_add(self.config.presence_ttl).min(self.delegation_expires);
        let record =
            PresenceRecord::sign(&self.session, self.wallet, &self.delegation, now, expires, withdrawn);
        self.timers.set(Timer::Presence, now.saturating_add(self.config.presence_ttl / 2));
        let dest = Destination::Key(record.key());
        self.start_op(
            now,
            OpKind::Presence,
            dest,
            AppMsg::Store { record: Box::new(Record::Presence(record)) },
        );
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
        let second = false;
        self.start_op(now, OpKind::Get { purpose, key, skip, acc, second }, dest, AppMsg::Get { key, skip });
    }

    fn start_op(&mut self, now: Timestamp, kind: OpKind, dest: Destination, body: AppMsg) {
        self.next_op += 1;
        let op = self.next_op;
        let attempts = if matches!(kind, OpKind::Deliver { .. }) { 1 } else { 0 };
        self.ops.insert(op, AppOp { kind, dest, body, deadline: now, attempts });
        self.attempt_op(now, op);
    }

    fn attempt_op(&mut self, now: Timestamp, op: u64) {
        let per_attempt = self.config.request_timeout / u32::from(self.config.request_attempts.max(1));
        let deadline = now.saturating_add(per_attempt);
        let Some((dest, body)) = self.ops.update(&op, |o| {
            o.attempts += 1;
            o.deadline = deadline;
            (o.dest, Routed::App(o.body.clone()))
        }) else {
            return;
        };
        self.send_routed_then(now, dest, None, &body, |node, id| {
            node.op_by_msg.insert(id, op);
        });
    }

    /// Retries or fails app requests whose reply is overdue; refreshes presence; keeps records placed.
    pub(super) fn app_tick(&mut self, now: Timestamp) {
        for op in self.ops.due(now) {
            let attempts = self.ops.get(&op).map_or(0, |o| o.attempts);
            if attempts < self.config.request_attempts {
                self.attempt_op(now, op);
            } else {
                self.op_failed(now, op, FailReason::Timeout);
            }
        }
        if self.timers.is_due(Timer::Presence, now) {
            if self.joined {
                self.publish_presence(now, false);
            } else {
                // Armed again when the node joins.
                self.timers.stop(Timer::Presence);
            }
        }
        if self.timers.is_due(Timer::Records, now) {
            self.timers.set(Timer::Records, now.saturating_add(self.config.stabilize_interval * 2));
            self.sync_records(now, false);
        }
        if self.timers.is_due(Timer::Rehome, now) {
            self.timers.set(Timer::Rehome, now.saturating_add(REHOME_INTERVAL));
            self.sync_records(now, true);
        }
    }

    /// The op a reply belongs to (the reply's `reply_to`).
    fn take_op(&mut self, reply_to: Option<MessageId>) -> Option<(u64, AppOp)> {
        let msg = reply_to?;
        let op = self.op_by_msg.remove(&msg)?;
        self.op_by_msg.retain(|_, o| *o != op);
        self.ops.remove(&op).map(|o| (op, o))
    }

    /// A routed message about one of our ops could not be delivered.
    pub(super) fn app_undeliverable(&mut self, now: Timestamp, msg: MessageId, reason: Undeliverable) {
        let Some(&op) = self.op_by_msg.get(&msg) else { return };
        let give_up = matches!(self.ops.get(&op).map(|o| &o.kind), Some(OpKind::Deliver { .. }))
            || self.ops.get(&op).is_some_and(|o| o.attempts >= self.config.request_attempts);
        if give_up {
            let reason = match reason {
                Undeliverable::NoRoute => FailReason::NoRoute,
                Undeliverable::HopLimit => FailReason::HopLimit,
                Undeliverable::NodeNotFound => FailReason::NodeNotFound,
            };
            self.op_failed(now, op, reason);
        }
    }

    fn op_failed(&mut self, now: Timestamp, op: u64, reason: FailReason) {
        self.op_by_msg.retain(|_, o| *o != op);
        let Some(o) = self.ops.remove(&op) else { return };
        match o.kind {
            OpKind::Store { request: Some(request), .. } => {
                self.emit(Event::RequestFailed { request, reason })
            }
            OpKind::Store { send: Some(send), .. } => self.send_part_done(now, send, Err(reason)),
            OpKind::Store { .. } | OpKind::RehomeMail { .. } => {}
            // Our presence must be findable: try again soon rather than at the next refresh.
            OpKind::Presence => self.timers.set(Timer::Presence, now.saturating_add(PRESENCE_RETRY)),
            OpKind::Get { purpose: GetFor::Wallet(request, _) | GetFor::Discover(request, ..), .. } => {
                self.emit(Event::RequestFailed { request, reason })
            }
            OpKind::Get { purpose: GetFor::Send(send), .. } => {
                if let Some(s) = self.sends.remove(&send) {
                    self.emit(Event::RequestFailed { request: s.request, reason });
                }
            }
            // The session did not answer: it is offline after all; its message goes to the mailbox.
            OpKind::Deliver { send, session, sealed } => self.store_mail(now, send, session, sealed),
        }
    }

    /// Handles the app part of a routed message delivered here.
    pub(super) fn handle_app(&mut self, now: Timestamp, received: Received<AppMsg>) {
        let origin = received.origin;
        let reply_to = received.header.reply_to;
        let my_id = received.header.id;
        // Links crossed: the hops byte counts relays; a message from this very node crossed none.
        let hops = if origin == *self.session.public() { 0 } else { received.hops.saturating_add(1) };
        match received.body {
            AppMsg::Store { record } => {
                let error = self.accept_record(now, *record, true).err();
                self.send_routed(
                    now,
                    Destination::Node(origin.node_id()),
                    Some(my_id),
                    &Routed::App(AppMsg::StoreAck { error }),
                );
            }
            AppMsg::StoreAck { error } => {
                let Some((_, op)) = self.take_op(reply_to) else { return };
                let result = match error {
                    None => Ok(()),
                    Some(StoreFail::MailboxFull) => Err(FailReason::MailboxFull),
                    Some(_) => Err(FailReason::RecordRefused),
                };
                match op.kind {
                    OpKind::Store { request: Some(request), .. } => match result {
                        Ok(()) => self.emit(Event::Done { request }),
                        Err(reason) => self.emit(Event::RequestFailed { request, reason }),
                    },
                    OpKind::Store { send: Some(send), .. } => {
                        self.send_part_done(now, send, result.map(|()| None))
                    }
                    OpKind::RehomeMail { key, id } if error == Some(StoreFail::Delivered) => {
                        self.store.remove_mail(key, &[id], now.saturating_add(DEFAULT_MAILBOX_TTL * 2));
                    }
                    OpKind::Presence if result.is_err() => {
                        self.timers.set(Timer::Presence, now.saturating_add(PRESENCE_RETRY))
                    }
                    // Nothing more to do: a store nobody waits for, a re-homed entry the owner did not
                    // refuse as delivered, our presence stored; or an answer to a read or a delivery, which
                    // a store answer cannot complete (the op is gone all the same, as before).
                    OpKind::Store { request: None, send: None }
                    | OpKind::RehomeMail { .. }
                    | OpKind::Presence
                    | OpKind::Get { .. }
                    | OpKind::Deliver { .. } => {}
                }
            }
            AppMsg::Get { key, skip } => {
                let all: Vec<Record> =
                    self.store.get(key).into_iter().filter(|r| !matches!(r, Record::Mailbox(_))).collect();
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
                let Some((_, op)) = self.take_op(reply_to) else { return };
                let OpKind::Get { purpose, key, skip, mut acc, second } = op.kind else { return };
                let n = records.len() as u32;
                acc.extend(records);
                if more && n > 0 && acc.len() < 10_000 {
                    self.start_get_from(now, purpose, key, skip + n, acc, Some(origin.node_id()));
                } else if acc.is_empty() && !second {
                    // The owner has nothing. A node that just joined owns the key before the records reach
                    // it, and the node that held them is its successor (which is also a replica): ask it
                    // once before answering "nothing" (docs/records.md, "Reads").
                    let dest = Destination::Key(origin.node_id().finger_target(0));
                    let kind = OpKind::Get { purpose, key, skip: 0, acc, second: true };
                    self.start_op(now, kind, dest, AppMsg::Get { key, skip: 0 });
                } else {
                    self.get_done(now, purpose, acc);
                }
            }
            AppMsg::Deliver { id, sealed } => {
                let opened = self.open_message(now, &sealed, hops);
                if opened {
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
                let op = reply_to.and_then(|msg| self.op_by_msg.get(&msg)).and_then(|op| self.ops.get(op));
                let ours = op.is_some_and(
                    |o| matches!(&o.kind, OpKind::Deliver { session, .. } if *session == origin),
                );
                if !ours {
                    return;
                }
                if let Some((_, AppOp { kind: OpKind::Deliver { send, .. }, .. })) = self.take_op(reply_to) {
                    self.send_part_done(now, send, Ok(Some(origin.node_id())))
                }
            }
            AppMsg::MailboxDeliver { entries } => {
                let mut ids = Vec::with_capacity(entries.len());
                for (id, sealed) in entries {
                    self.open_message(now, &sealed, hops);
                    ids.push(id);
                }
                let key = presence_key(&self.wallet);
                let body = Routed::App(AppMsg::MailboxAck { wallet: self.wallet, ids });
                self.send_routed(now, Destination::Key(key), None, &body);
            }
            AppMsg::MailboxAck { wallet, ids } => {
                let key = presence_key(&wallet);
                // Only the session a message was sealed to may delete it.
                let mine: Vec<[u8; 16]> = self
                    .store
                    .get(key)
                    .into_iter()
                    .filter_map(|r| match r {
                        Record::Mailbox(m) if m.to_session == origin && ids.contains(&m.id) => Some(m.id),
                        Record::Mailbox(_) | Record::Presence(_) | Record::Topic(_) => None,
                    })
                    .collect();
                self.store.remove_mail(key, &mine, now.saturating_add(DEFAULT_MAILBOX_TTL * 2));
                self.push_to_replicas(LinkMsg::DropMail { key, ids: mine });
            }
        }
    }

    /// Opens a sealed message for this node; emits it once (duplicates by ciphertext are dropped). `hops`:
    /// links crossed by the frame that brought it.
    fn open_message(&mut self, now: Timestamp, sealed: &[u8], hops: u8) -> bool {
        match e2e::open(&self.session, &self.wallet, &self.config.network, &mut self.cache, now, sealed) {
            Ok(opened) => {
                let digest: [u8; 32] = Sha256::digest(sealed).into();
                let mut key = [0u8; 16];
                key.copy_from_slice(&digest[..16]);
                if self.seen.insert(key) {
                    self.seen_order.push_back(key);
                    if self.seen_order.len() > SEEN_CAPACITY {
                        if let Some(old) = self.seen_order.pop_front() {
                            self.seen.remove(&old);
                        }
                    }
                    self.counters.messages_received += 1;
                    let inner = opened.inner;
                    self.emit(Event::MessageReceived {
                        from_wallet: inner.from_wallet,
                        app_origin: inner.app_origin,
                        bytes: inner.payload,
                        id: key,
                        sent_at: inner.sent_at,
                        hops,
                    });
                }
                true
            }
            Err(_) => {
                self.counters.refused_messages += 1;
                false
            }
        }
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
                self.emit(Event::WalletSessions { request, wallet, sessions });
            }
            GetFor::Discover(request, origin, topic) => {
                let mut members: Vec<(Address, Timestamp)> = Vec::new();
                for r in records {
                    let Record::Topic(t) = r else { continue };
                    if t.origin != origin || t.topic != topic || t.withdrawn {
                        continue;
                    }
                    if t.verify(&self.config.network, now, self.config.clock_skew, &mut self.cache).is_err() {
                        self.counters.refused_records += 1;
                        continue;
                    }
                    match members.iter_mut().find(|(w, _)| *w == t.wallet) {
                        Some(m) => m.1 = m.1.max(t.announced),
                        None => members.push((t.wallet, t.announced)),
                    }
                }
                // A wallet that withdrew from every session is gone even if an older record lingers.
                members.sort();
                self.emit(Event::Discovered { request, members });
            }
            GetFor::Send(send) => self.send_to_sessions(now, send, records),
        }
    }

    /// Presence records of `wallet` that verify now, newest per session: live ones and the last known
    /// sessions — expired or withdrawn — whose delegation is still valid. A withdrawn session is one that
    /// went offline gracefully (a browser closing sends `Leave`); it keeps its key and comes back, so mail
    /// is still sealed to it. Callers filter with [`PresenceRecord::is_live`] where only live ones count.
    fn valid_presences(
        &mut self,
        now: Timestamp,
        wallet: &Address,
        records: Vec<Record>,
    ) -> Vec<PresenceRecord> {
        let mut out: Vec<PresenceRecord> = Vec::new();
        for r in records {
            let Record::Presence(p) = r else { continue };
            if p.wallet != *wallet {
                continue;
            }
            if p.verify(&self.config.network, now, self.config.clock_skew, &mut self.cache).is_err() {
                self.counters.refused_records += 1;
                continue;
            }
            out.push(p);
        }
        out
    }

    fn send_to_sessions(&mut self, now: Timestamp, send: u64, records: Vec<Record>) {
        let Some(to) = self.sends.get(&send).map(|s| s.to) else { return };
        let presences = self.valid_presences(now, &to, records);
        if presences.is_empty() {
            if let Some(s) = self.sends.remove(&send) {
                self.emit(Event::RequestFailed { request: s.request, reason: FailReason::NotFound });
            }
            return;
        }
        let live: Vec<&PresenceRecord> = presences.iter().filter(|p| p.is_live(now)).collect();
        let targets: Vec<(SessionPublicKey, bool)> = if live.is_empty() {
            presences.iter().map(|p| (p.session, false)).collect()
        } else {
            live.iter().map(|p| (p.session, true)).collect()
        };
        let Some(s) = self.sends.get_mut(&send) else { return };
        s.pending = targets.len();
        let inner = InnerMessage {
            from_wallet: self.wallet,
            to_wallet: to,
            app_origin: s.origin.clone(),
            seq: s.seq,
            sent_at: now,
            payload: s.payload.clone(),
        };
        let id = s.id;
        for (session, live) in targets {
            let sealed = match e2e::seal(&mut self.rng, &self.session, &self.delegation, &session, &inner) {
                Ok(sealed) => sealed,
                Err(_) => {
                    self.send_part_done(now, send, Err(FailReason::TooLarge(inner.payload.len())));
                    continue;
                }
            };
            if live {
                let dest = Destination::Node(session.node_id());
                let kind = OpKind::Deliver { send, session, sealed: sealed.clone() };
                self.start_op(now, kind, dest, AppMsg::Deliver { id, sealed });
            } else {
                self.store_mail(now, send, session, sealed);
            }
        }
    }

    fn store_mail(&mut self, now: Timestamp, send: u64, session: SessionPublicKey, sealed: Vec<u8>) {
        let Some(s) = self.sends.get(&send) else { return };
        let entry = MailboxEntry {
            id: s.id,
            recipient: s.to,
            to_session: session,
            sealed,
            stored: now,
            expires: now.saturating_add(DEFAULT_MAILBOX_TTL),
        };
        let dest = Destination::Key(presence_key(&s.to));
        self.start_op(
            now,
            OpKind::Store { request: None, send: Some(send) },
            dest,
            AppMsg::Store { record: Box::new(Record::Mailbox(entry)) },
        );
    }

    /// One session of a send resolved: `Ok(Some(node))` delivered, `Ok(None)` stored, `Err` failed.
    fn send_part_done(&mut self, _now: Timestamp, send: u64, result: Result<Option<Id>, FailReason>) {
        let Some(s) = self.sends.get_mut(&send) else { return };
        match result {
            Ok(Some(node)) => s.delivered.push(node),
            Ok(None) => s.stored += 1,
            Err(reason) => s.failure = Some(reason),
        }
        s.pending = s.pending.saturating_sub(1);
        if s.pending > 0 {
            return;
        }
        let Some(s) = self.sends.remove(&send) else { return };
        let event = if !s.delivered.is_empty() {
            Event::Sent { request: s.request, outcome: SendOutcome::Delivered { sessions: s.delivered } }
        } else if s.stored > 0 {
            Event::Sent { request: s.request, outcome: SendOutcome::Stored }
        } else {
            Event::RequestFailed { request: s.request, reason: s.failure.unwrap_or(FailReason::Timeout) }
        };
        self.emit(event);
    }

    // ---------------------------------------------------------------------------------------------
    // Storing and placing records
    // ---------------------------------------------------------------------------------------------

    /// Verifies and stores a record; as its owner (`owner`), replicates it and delivers waiting mail.
    pub(super) fn accept_record(
        &mut self,
        now: Timestamp,
        record: Record,
        owner: bool,
    ) -> Result<(), StoreFail> {
        let checked: Result<(), RecordError> = match &record {
            Record::Presence(p) => {
                p.verify(&self.config.network, now, self.config.clock_skew, &mut self.cache)
            }
            Record::Topic(t) => t.verify(&self.config.network, now, self.config.clock_skew, &mut self.cache),
            Record::Mailbox(m) => {
                if m.sealed.len() > e2e::MAX_SEALED
                    || m.expires <= now
                    || m.expires > now.saturating_add(DEFAULT_MAILBOX_TTL * 2)
                {
                    Err(RecordError::Bounds)
                } else {
                    Ok(())
                }
            }
        };
        if checked.is_err() {
            self.counters.refused_records += 1;
            return Err(StoreFail::Invalid);
        }
        let changed = match self.store.put(record.clone(), now) {
            Ok(changed) => changed,
            Err(StoreError::Stale) => {
                self.counters.refused_records += 1;
                return Err(StoreFail::Stale);
            }
            Err(StoreError::MailboxFull) => return Err(StoreFail::MailboxFull),
            Err(StoreError::Full) => return Err(StoreFail::Full),
            Err(StoreError::Delivered) => return Err(StoreFail::Delivered),
        };
        self.counters.records = self.store.len() as u64;
        if owner && changed {
            match &record {
                Record::Presence(p) if p.is_live(now) => self.deliver_mail(now, p),
                // Mail can reach the owner after the session's presence did: a node that returns and
                // owns its own presence key publishes presence at join, and its mail is handed to it a
                // moment later. Waiting for the next presence refresh would cost minutes.
                Record::Mailbox(m) => self.deliver_if_live(now, m),
                // Nothing waits on a topic record, or on a presence that has lapsed.
                Record::Presence(_) | Record::Topic(_) => {}
            }
            self.push_to_replicas(LinkMsg::Replicate { records: vec![record] });
        }
        Ok(())
    }

    /// Sends one mailbox entry at once if the session it is sealed to has a live presence here. If that
    /// session is in fact gone (crashed while its presence was live), the entry stays until acknowledged.
    fn deliver_if_live(&mut self, now: Timestamp, mail: &MailboxEntry) {
        let live = self.store.get(presence_key(&mail.recipient)).into_iter().find_map(|r| match r {
            Record::Presence(p) if p.session == mail.to_session && p.is_live(now) => Some(p.node_id()),
            Record::Presence(_) | Record::Topic(_) | Record::Mailbox(_) => None,
        });
        if let Some(node) = live {
            let body = Routed::App(AppMsg::MailboxDeliver { entries: vec![(mail.id, mail.sealed.clone())] });
            self.send_routed(now, Destination::Node(node), None, &body);
        }
    }

    /// Sends the mailbox entries sealed to a session that just published presence.
    fn deliver_mail(&mut self, now: Timestamp, presence: &PresenceRecord) {
        let entries: Vec<([u8; 16], Vec<u8>)> = self
            .store
            .get(presence.key())
            .into_iter()
            .filter_map(|r| match r {
                Record::Mailbox(m) if m.to_session == presence.session && m.expires > now => {
                    Some((m.id, m.sealed))
                }
                Record::Mailbox(_) | Record::Presence(_) | Record::Topic(_) => None,
            })
            .collect();
        for chunk in entries.chunks(MAIL_PER_FRAME) {
            let body = Routed::App(AppMsg::MailboxDeliver { entries: chunk.to_vec() });
            self.send_routed(now, Destination::Node(presence.node_id()), None, &body);
        }
    }

    /// Sends a link message to the first r − 1 live successors (the replicas of what we own).
    fn push_to_replicas(&mut self, m: LinkMsg) {
        let frame = msg::link_frame(&m);
        for link in self.replica_links() {
            self.transmit(link, frame.clone());
        }
    }

    fn replica_links(&self) -> Vec<crate::node::api::LinkId> {
        let r = self.config.successors.saturating_sub(1).max(1);
        self.ring.successors().iter().filter_map(|s| self.links.open_to(*s)).take(r).collect()
    }

    /// Replica repair and handoff: when the predecessor or the successors changed, push what we own to
    /// the successors and what we no longer own to the predecessor. Also drops lapsed records.
    /// Hands records to the successors that changed since the last sync; with `rehome`, offers every
    /// record to its owner and replicas again whatever changed.
    fn sync_records(&mut self, now: Timestamp, rehome: bool) {
        self.store.expire(now);
        self.counters.records = self.store.len() as u64;
        let Some(pred) = self.ring.predecessor() else { return };
        let succs: Vec<Id> = {
            let r = self.config.successors.saturating_sub(1).max(1);
            self.ring
                .successors()
                .iter()
                .copied()
                .filter(|s| self.links.open_to(*s).is_some())
                .take(r)
                .collect()
        };
        let state = (Some(pred), succs.clone());
        if (self.synced == state && !rehome) || self.store.is_empty() {
            self.synced = state;
            return;
        }
        let me = self.id();
        let (mut owned, mut others) = (Vec::new(), Vec::new());
        for key in self.store.keys() {
            let records = self.store.get(key);
            if key.in_half_open(pred, me) {
                owned.extend(records);
            } else {
                others.extend(records);
            }
        }
        if self.synced.1 != succs {
            let links: Vec<_> = succs.iter().filter_map(|s| self.links.open_to(*s)).collect();
            self.push_batches(&links, owned);
        }
        if self.synced.0 != Some(pred) || rehome {
            // Records we do not own go to their owner — routed, not pushed to the predecessor: during
            // mass joins a key can be several nodes behind us, and a replica does not forward. Repeated
            // every REHOME_INTERVAL, so a write that landed on a node that wrongly thought itself the
            // owner still reaches the right one; the owner ignores copies it already has.
            for record in others {
                let dest = Destination::Key(record.key());
                let kind = match &record {
                    Record::Mailbox(m) => OpKind::RehomeMail { key: record.key(), id: m.id },
                    // Nothing to do with the answer: sent without an op (and again every REHOME_INTERVAL).
                    Record::Presence(_) | Record::Topic(_) => {
                        let body = Routed::App(AppMsg::Store { record: Box::new(record) });
                        self.send_routed(now, dest, None, &body);
                        continue;
                    }
                };
                self.start_op(now, kind, dest, AppMsg::Store { record: Box::new(record) });
            }
        }
        self.synced = state;
    }

    /// Hands every record to the first live successor (graceful leave).
    pub(super) fn hand_over_all(&mut self) {
        let Some(link) = self.ring.successors().iter().find_map(|s| self.links.open_to(*s)) else { return };
        let all: Vec<Record> = self.store.keys().into_iter().flat_map(|k| self.store.get(k)).collect();
        self.push_batches(&[link], all);
    }

    fn push_batches(&mut self, links: &[crate::node::api::LinkId], records: Vec<Record>) {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut batches = Vec::new();
        for r in records {
            let size = postcard::to_allocvec(&r).map_or(0, |v| v.len());
            if !batch.is_empty() && (bytes + size > PAGE_BYTES || batch.len() >= msg::MAX_BATCH) {
                batches.push(std::mem::take(&mut batch));
                bytes = 0;
            }
            bytes += size;
            batch.push(r);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
        for records in batches {
            let frame = msg::link_frame(&LinkMsg::Replicate { records });
            for link in links {
                self.transmit(*link, frame.clone());
            }
        }
    }

    /// Records pushed to us by a neighbour: verified and kept (as owner if the key is now ours).
    pub(super) fn handle_replicate(&mut self, now: Timestamp, records: Vec<Record>) {
        for record in records {
            let owner = self.ring.owns(record.key()) == Some(true);
            let _ = self.accept_record(now, record, owner);
        }
    }
}
