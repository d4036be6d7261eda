//! Messages and receipts in established end-to-end sessions: session frames.
//!
//! Once a session with a peer stands (`sessions.rs`; the handshake is in `app.rs`), every message in it, in
//! either direction, goes in a **session frame** (`wire::envelope::SESSION_VERSION`): no signature, no
//! delegation; one AEAD operation, whose associated data binds the frame's header (network, time, both
//! nodes). The recipient answers with **receipts** in the same session: each names the counters of the
//! messages that reached its app (inclusive ranges), goes at once after a pause and otherwise gathers the
//! messages of `RECEIPT_DELAY` or up to [`RECEIPT_EVERY`](super::sessions) of them, so a burst costs a few
//! receipts rather than one signed frame per message. The sender learns per message whether it was delivered,
//! as before: each op waits for the receipt that names its counter, and runs out to the mailbox if none does.
//!
//! What nobody signs, nobody can be believed for: a relay cannot tell who made a session frame, so
//! - its id is the hash of its bytes (`envelope::content_id`): a forged frame cannot take the place of a real
//!   one in a relay's memory or in the destination's replay window;
//! - no relay answers it (no undeliverable notice, no reverse path): the sender's op runs out instead;
//! - a frame for a session index the destination does not have is answered `NoSession` (signed) to the node
//!   it names, at most once a second per (node, index), and that node believes it only if the index is the
//!   one its session with the signer has: a made-up frame makes nobody drop a session.

use super::accepted::Verdict;
use super::app::{postcard_bytes, AppOp, OpKind, Via};
use super::conduct::Offence;
use super::msg::{AppMsg, Routed, SessionBody};
use super::sessions::MAX_RECEIPT_RANGES;
use super::timer::Timer;
use super::Node;
use crate::e2e::session::{self, DataError};
use crate::id::Id;
use crate::identity::SessionPublicKey;
use crate::time::Timestamp;
use crate::wire::envelope::{self, Destination, NetworkTag, SessionHeader, DEFAULT_HOP_LIMIT};

impl Node {
    /// Sends `plain` (the message of `send`, an `InnerMessage`) in our session with `session`, if we have one
    /// to send in: in a session frame, with an op (`op`, or a new one) that waits for the session's receipt.
    /// False, and nothing sent, if there is no such session.
    pub(super) fn send_in_session(
        &mut self,
        now: Timestamp,
        send: u64,
        session: &SessionPublicKey,
        plain: &[u8],
        op: Option<u64>,
    ) -> bool {
        let body = postcard_bytes(&SessionBody::Message(plain.to_vec()));
        let Some(sealed) = self.seal_session_frame(now, session, &body) else { return false };
        self.io.counters.session_messages += 1;
        let SealedFrame { frame, peer, ours, theirs, counter } = sealed;
        let per_attempt = self.config.request_timeout / u32::from(self.config.request_attempts.max(1));
        let deadline = now.saturating_add(per_attempt);
        // An earlier attempt's counters in the same session still count: its receipt may be on the way.
        let mut counters = match op.and_then(|op| self.app.ops.get(&op)).map(|o| &o.kind) {
            Some(OpKind::Deliver { via: Via::Session { ours: o, counters, .. }, .. }) if *o == ours => {
                counters.clone()
            }
            // Earlier attempts went in another session of ours with the peer: the op waits for this one's
            // receipt only (it names one session).
            Some(OpKind::Deliver { via: Via::Session { ours: o, counters, .. }, .. }) => {
                for c in counters {
                    self.app.by_counter.remove(&(*o, *c));
                }
                Vec::new()
            }
            _ => Vec::new(),
        };
        counters.push(counter);
        let kind = OpKind::Deliver {
            send,
            session: *session,
            sealed: None,
            via: Via::Session { peer: Box::new(peer), ours, theirs, counters },
        };
        let op = match op {
            // A retry, or a message that waited for the handshake (whose attempts are all used, so that it
            // is not sent again).
            Some(op) => {
                self.app.ops.update(&op, |o| {
                    o.kind = kind;
                    o.body = None;
                    o.deadline = deadline;
                    o.attempts = o.attempts.saturating_add(1);
                });
                op
            }
            // Attempted like a message sealed on its own: up to `request_attempts - 1` sends, then the mailbox.
            None => self.app.insert_op(AppOp {
                kind,
                dest: Destination::Node(session.node_id()),
                body: None,
                deadline,
                attempts: 2,
            }),
        };
        self.app.by_counter.insert((ours, counter), op);
        // Messages count toward a sustained flow; receipts do not (the sender of the flow offers the link).
        self.note_flow(now, session.node_id(), frame.len());
        self.send_session_frame(now, frame, |node, id| {
            node.app.op_by_msg.insert(id, op);
        });
        true
    }

    /// The next attempt of a message in a session whose receipt did not come: sealed again in the session
    /// (a new counter, so a new frame that no replay window stops; the recipient's accepted table keeps it
    /// from reaching the app twice, and receipts it again), or, if the session is gone, in a hello or on its
    /// own.
    pub(super) fn send_in_session_again(&mut self, now: Timestamp, op: u64) {
        let Some(AppOp {
            kind: OpKind::Deliver { send, session, via: Via::Session { peer, .. }, .. }, ..
        }) = self.app.ops.get(&op)
        else {
            return;
        };
        let (send, session, peer) = (*send, *session, (**peer).clone());
        let Some(plain) = self.inner_of(now, send).map(|inner| postcard_bytes(&inner)) else { return };
        if !self.send_in_session(now, send, &session, &plain, Some(op)) {
            self.app.remove_op(op);
            self.send_without_session(now, send, session, Some(peer), &plain);
        }
    }

    /// `body` sealed in our session with `session` (the one we send in), in a session frame to its node.
    fn seal_session_frame(
        &mut self,
        now: Timestamp,
        session: &SessionPublicKey,
        body: &[u8],
    ) -> Option<SealedFrame> {
        let header = session_frame_header(self.me.network, self.id(), now, session.node_id());
        let s = self.sessions.for_sending(session, now)?;
        let (peer, ours, theirs) = (s.peer().clone(), s.index(), s.peer_index());
        let data = s.seal(now, &header.associated_data(), body).ok()?;
        let counter = session::data_counter(&data)?;
        let frame = envelope::encode_session(&header, &data).ok()?;
        Some(SealedFrame { frame, peer, ours, theirs, counter })
    }

    /// A session frame for this node (`bytes`; its routing fields were checked, and it is seen for the first
    /// time): opened by the session it names, then a message for the app (answered with a receipt once the
    /// app has it) or a receipt for our messages.
    pub(super) fn handle_session_frame(&mut self, now: Timestamp, bytes: &[u8]) {
        let Ok((header, hops, data)) = envelope::decode_session(bytes, self.me.network) else { return };
        let Some(index) = session::data_index(data) else {
            self.io.counters.refused_messages += 1;
            return self.charge_origin(now, header.from, Offence::InvalidFrame);
        };
        let ad = header.associated_data();
        let opened = self.sessions.get(index).map(|s| (s.peer().clone(), s.open(now, &ad, data)));
        let (peer, plain) = match opened {
            // Not a session of ours (this node restarted, or dropped it), or one that ran out: the node the
            // frame names is told, and handshakes again if the index is its session's with us.
            None | Some((_, Err(DataError::Expired))) => return self.refuse_session(now, header.from, index),
            Some((_, Err(_))) => {
                self.io.counters.refused_messages += 1;
                return self.charge_origin(now, header.from, Offence::InvalidFrame);
            }
            Some((peer, Ok(plain))) => (peer, plain),
        };
        // The session's key opened it: its peer sealed it, and named itself (the header is bound).
        if peer.session.node_id() != header.from {
            self.io.counters.refused_messages += 1;
            return;
        }
        let Some(counter) = session::data_counter(data) else { return };
        match postcard::from_bytes::<SessionBody>(&plain) {
            Ok(SessionBody::Message(inner)) => {
                let links = hops.saturating_add(1);
                let verdict = self.open_session_message(now, &peer, &inner, links);
                // Receipted when the app has it, now or before; not when refused by age or window.
                if matches!(verdict, Some(Verdict::Fresh | Verdict::Repeat))
                    && self.sessions.received(now, index, counter)
                {
                    self.send_receipt(now, index);
                }
                self.arm_receipts();
            }
            Ok(SessionBody::Receipt(ranges)) => self.session_receipt(now, index, &peer.session, &ranges),
            Err(_) => self.io.counters.refused_messages += 1,
        }
    }

    /// A receipt in our session `ours` with `peer`: every message of ours in that session whose counter it
    /// names was delivered.
    fn session_receipt(&mut self, now: Timestamp, ours: u64, peer: &SessionPublicKey, ranges: &[(u64, u64)]) {
        if ranges.len() > MAX_RECEIPT_RANGES {
            self.io.counters.refused_messages += 1;
            return;
        }
        let mut done = Vec::new();
        for &(lo, hi) in ranges.iter().filter(|(lo, hi)| lo <= hi) {
            done.extend(self.app.by_counter.range((ours, lo)..=(ours, hi)).map(|(_, op)| *op));
        }
        for op in done {
            if let Some(AppOp { kind: OpKind::Deliver { send, .. }, .. }) = self.app.remove_op(op) {
                self.send_part_done(now, send, Ok(Some(peer.node_id())));
            }
        }
    }

    /// Sends the receipt gathered for session `index` (ours), if any.
    fn send_receipt(&mut self, now: Timestamp, index: u64) {
        let Some(ranges) = self.sessions.take_receipt(now, index) else { return };
        let body = postcard_bytes(&SessionBody::Receipt(ranges));
        let (network, me) = (self.me.network, self.id());
        let Some(s) = self.sessions.get(index) else { return };
        let header = session_frame_header(network, me, now, s.peer().session.node_id());
        let Ok(data) = s.seal(now, &header.associated_data(), &body) else { return };
        let Ok(frame) = envelope::encode_session(&header, &data) else { return };
        self.io.counters.session_receipts += 1;
        self.send_session_frame(now, frame, |_, _| {});
    }

    /// Sends the receipts that are due ([`Timer::Receipts`]).
    pub(super) fn flush_receipts(&mut self, now: Timestamp) {
        for index in self.sessions.receipts_due(now) {
            self.send_receipt(now, index);
        }
        self.arm_receipts();
    }

    /// Keeps [`Timer::Receipts`] at the next held-back receipt.
    fn arm_receipts(&mut self) {
        match self.sessions.next_receipt() {
            Some(at) => self.timers.set(Timer::Receipts, at),
            None => self.timers.stop(Timer::Receipts),
        }
    }

    /// Tells `from` that we have no session `index` (see the module docs for the bounds).
    fn refuse_session(&mut self, now: Timestamp, from: Id, index: u64) {
        if from == self.id() || !self.sessions.may_refuse(now, from, index) {
            return;
        }
        self.send_routed(now, Destination::Node(from), None, &Routed::App(AppMsg::NoSession { index }));
    }

    /// `origin` (the signer) says it has no session `index`: if that is what it calls our session with it,
    /// the session is gone there (it restarted, or dropped it) — ours with it are forgotten, and every
    /// message of ours in it still waiting for a receipt goes again: the first in a hello, those after it
    /// waiting for that handshake (or on their own past [`WAITING_PER_PEER`](super::app)).
    pub(super) fn no_session(&mut self, now: Timestamp, origin: SessionPublicKey, index: u64) {
        let mut lost: Vec<(u64, u64)> = self
            .app
            .ops
            .keys()
            .filter_map(|op| match self.app.ops.get(op).map(|o| &o.kind) {
                Some(OpKind::Deliver { session, via: Via::Session { theirs, counters, .. }, .. })
                    if *session == origin && *theirs == index =>
                {
                    Some((counters.first().copied().unwrap_or_default(), *op))
                }
                _ => None,
            })
            .collect();
        let ours = self.sessions.ours_for(&origin, index);
        if lost.is_empty() && ours.is_none() {
            // Not about a session we have, nor one a message of ours is in: nothing to do (a late answer
            // about a session already gone).
            return;
        }
        self.io.counters.sessions_lost += 1;
        self.sessions.forget_peer(&origin);
        lost.sort_unstable();
        for (_, op) in lost {
            let Some(AppOp { kind: OpKind::Deliver { send, via: Via::Session { peer, .. }, .. }, .. }) =
                self.app.remove_op(op)
            else {
                continue;
            };
            let Some(plain) = self.inner_of(now, send).map(|inner| postcard_bytes(&inner)) else { continue };
            self.send_without_session(now, send, origin, Some(*peer), &plain);
        }
    }
}

/// A session frame of ours, and what its op needs to know.
struct SealedFrame {
    frame: Vec<u8>,
    peer: session::Peer,
    ours: u64,
    theirs: u64,
    counter: u64,
}

/// The header of a session frame from `from` to `dest`, sent `now`.
fn session_frame_header(network: NetworkTag, from: Id, now: Timestamp, dest: Id) -> SessionHeader {
    SessionHeader { network, sent_at: now, dest, hop_limit: DEFAULT_HOP_LIMIT, from }
}
