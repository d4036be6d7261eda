//! Lookups, as a sub-machine: finding the node that owns a key, for the application and for the ring
//! itself (join, fingers, merge checks), with retries within a deadline.
//!
//! - **Owns** ([`Lookups`]): every lookup in progress (its key, purpose, attempts and deadline), ordered by
//!   when it next needs attention, and the message ids of its attempts.
//! - **Takes**: `FoundSuccessor` answers, matched by the id of the message they answer and counted only from
//!   a plausible owner of the key (`replies.rs`), and failure reports (only those the router could check:
//!   see `Node::undeliverable_notice`).
//! - **Emits**: through the parent, one `FindSuccessor` per attempt, then [`Event::LookupDone`] /
//!   [`Event::RequestFailed`] for the application, or the owner found to membership (join, finger, merge).

use std::collections::HashMap;

use super::msg::{RingMsg, Routed, Undeliverable};
use super::router::{fail_reason, Hop, Outbound};
use super::timer::{Deadline, Timed};
use super::Node;
use crate::id::{Id, ID_BITS};
use crate::node::api::{Event, FailReason, LinkId, RequestId};
use crate::time::Timestamp;
use crate::wire::envelope::{Destination, MessageId};

/// What a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LookupFor {
    User(RequestId),
    Join,
    Finger(usize),
    /// Through this (bootstrap) link: does the server's ring know a nearer successor?
    Merge(LinkId),
}

#[derive(Debug)]
struct Lookup {
    key: Id,
    purpose: LookupFor,
    deadline: Timestamp,
    next_attempt: Timestamp,
    attempts: u8,
    msg_ids: Vec<MessageId>,
}

impl Deadline for Lookup {
    /// The next attempt or the final deadline, whichever comes first.
    fn deadline(&self) -> Timestamp {
        self.deadline.min(self.next_attempt)
    }
}

/// The lookups of one node.
#[derive(Debug, Default)]
pub(crate) struct Lookups {
    table: Timed<u64, Lookup>,
    by_msg: HashMap<MessageId, u64>,
    next: u64,
}

impl Lookups {
    /// When the earliest lookup next needs attention.
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        self.table.earliest()
    }

    /// Whether a lookup for such a purpose is in progress.
    pub(crate) fn any(&self, f: impl Fn(LookupFor) -> bool) -> bool {
        self.table.values().any(|l| f(l.purpose))
    }

    /// A new lookup, due for its first attempt now.
    fn insert(&mut self, now: Timestamp, key: Id, purpose: LookupFor, deadline: Timestamp) -> u64 {
        self.next += 1;
        let id = self.next;
        self.table.insert(
            id,
            Lookup { key, purpose, deadline, next_attempt: now, attempts: 0, msg_ids: Vec::new() },
        );
        id
    }

    /// Counts an attempt and schedules the next; returns the key, or `None` if the lookup is gone.
    fn begin_attempt(&mut self, id: u64, next_attempt: Timestamp) -> Option<Id> {
        self.table.update(&id, |l| {
            l.attempts += 1;
            l.next_attempt = next_attempt;
            l.key
        })
    }

    /// Remembers the message an attempt sent, so its answer finds the lookup.
    fn sent(&mut self, id: u64, msg: MessageId) {
        self.by_msg.insert(msg, id);
        self.table.update(&id, |l| l.msg_ids.push(msg));
    }

    fn purpose(&self, id: u64) -> Option<LookupFor> {
        self.table.get(&id).map(|l| l.purpose)
    }

    /// The lookup a message belongs to.
    fn by_msg(&self, msg: &MessageId) -> Option<u64> {
        self.by_msg.get(msg).copied()
    }

    /// Takes a lookup out, with every index entry of it.
    fn remove(&mut self, id: u64) -> Option<Lookup> {
        let l = self.table.remove(&id)?;
        for m in &l.msg_ids {
            self.by_msg.remove(m);
        }
        Some(l)
    }
}

impl Node {
    pub(super) fn start_lookup(&mut self, now: Timestamp, key: Id, purpose: LookupFor) {
        let deadline = now.saturating_add(self.config.request_timeout);
        let id = self.lookups.insert(now, key, purpose, deadline);
        self.attempt_lookup(now, id);
    }

    fn attempt_lookup(&mut self, now: Timestamp, id: u64) {
        let attempts = self.config.request_attempts.max(1);
        let interval = self.config.request_timeout / u32::from(attempts);
        let Some(key) = self.lookups.begin_attempt(id, now.saturating_add(interval)) else { return };
        if self.links.len() == 0 && !(self.membership.founder && self.ring.successors().is_empty()) {
            self.finish_lookup(now, id, Err(FailReason::NotConnected));
            return;
        }
        // The ring's own structure (joins, merge checks, fingers) is found without the range shortcut: a
        // peer's self-reported range is right in its ring, not necessarily in the one being repaired.
        let strict = !matches!(self.lookups.purpose(id), Some(LookupFor::User(_)));
        let dest = if strict { Destination::KeyStrict(key) } else { Destination::Key(key) };
        let Some((header, bytes)) = self.encode(now, dest, None, &Routed::Ring(RingMsg::FindSuccessor))
        else {
            return;
        };
        let _ = self.router.replay.check_and_insert(header.id.0, header.sent_at, now);
        self.lookups.sent(id, header.id);
        let me = self.id();
        let forced = match self.lookups.purpose(id) {
            Some(LookupFor::Merge(link)) => Some(link),
            Some(LookupFor::User(_) | LookupFor::Join | LookupFor::Finger(_)) | None => None,
        };
        if let Some(link) = forced {
            if self.links.get(link).is_some_and(super::links::Link::is_open) {
                self.forward(now, link, Outbound::own(bytes, header, me, false));
            } else {
                self.finish_lookup(now, id, Err(FailReason::NotConnected));
            }
            return;
        }
        match self.next_hop(now, &header, false, &[]) {
            Hop::Local => self.finish_lookup(now, id, Ok((me, 0, 0))),
            Hop::Forward { link, owner_hint } => {
                self.forward(now, link, Outbound::own(bytes, header, me, owner_hint))
            }
            Hop::Fail(reason) => self.undeliverable_local(now, header.id, reason),
        }
    }

    /// Retries lookups whose attempt is overdue; fails those past their deadline.
    pub(super) fn check_lookups(&mut self, now: Timestamp) {
        for id in self.lookups.table.due(now) {
            let Some(l) = self.lookups.table.get(&id) else { continue };
            if l.deadline <= now {
                self.finish_lookup(now, id, Err(FailReason::Timeout));
            } else if l.attempts >= self.config.request_attempts {
                // No attempt left: wait for an answer until the deadline.
                self.lookups.table.update(&id, |l| l.next_attempt = l.deadline);
            } else {
                self.attempt_lookup(now, id);
            }
        }
    }

    /// A `FindSuccessor` (message `id`, from `origin`, after `hops` hops) reached the owner of its key —
    /// this node: answer its origin.
    pub(super) fn answer_find_successor(&mut self, now: Timestamp, origin: Id, id: MessageId, hops: u8) {
        let body = Routed::Ring(RingMsg::FoundSuccessor { hops });
        self.send_routed(now, Destination::Node(origin), Some(id), &body);
    }

    /// `owner` answered the lookup message `reply_to`: it owns the key, `hops` hops away; the answer took
    /// `back` hops more.
    pub(super) fn found_successor(
        &mut self,
        now: Timestamp,
        owner: Id,
        reply_to: Option<MessageId>,
        hops: u8,
        back: u8,
    ) {
        let Some(reply_to) = reply_to else { return };
        let Some(lookup_id) = self.lookups.by_msg(&reply_to) else { return };
        let Some((key, purpose)) = self.lookups.table.get(&lookup_id).map(|l| (l.key, l.purpose)) else {
            return;
        };
        // Only a plausible owner of the key may answer: a relay on the path saw the message id too, and
        // would answer with itself (replies.rs). The lookup goes on waiting for the owner's answer.
        let via = match purpose {
            LookupFor::Merge(link) => Some(link),
            LookupFor::User(_) | LookupFor::Join | LookupFor::Finger(_) => None,
        };
        if !self.may_answer(Destination::Key(key), owner, via) {
            self.unsolicited_reply(now, owner);
            return;
        }
        let path = hops.saturating_add(back);
        self.finish_lookup(now, lookup_id, Ok((owner, hops, path)));
    }

    /// A lookup's message could not be delivered: try again at the next attempt time; fail now only if no
    /// attempt is left.
    pub(super) fn lookup_undeliverable(&mut self, now: Timestamp, msg: MessageId, reason: Undeliverable) {
        if let Some(lookup_id) = self.lookups.by_msg(&msg) {
            let give_up = self
                .lookups
                .table
                .get(&lookup_id)
                .is_some_and(|l| l.attempts >= self.config.request_attempts);
            if give_up {
                self.finish_lookup(now, lookup_id, Err(fail_reason(reason)));
            }
        }
    }

    fn finish_lookup(&mut self, now: Timestamp, id: u64, result: Result<(Id, u8, u8), FailReason>) {
        let Some(l) = self.lookups.remove(id) else { return };
        match (l.purpose, result) {
            (LookupFor::User(request), Ok((owner, hops, path_len))) => {
                self.io.emit(Event::LookupDone { request, key: l.key, owner, hops, path_len })
            }
            (LookupFor::User(request), Err(reason)) => self.io.emit(Event::RequestFailed { request, reason }),
            (LookupFor::Join, Ok((owner, _, _))) => {
                if owner != self.id() {
                    // Linked first, asked for its predecessor, then adopted (membership.rs).
                    self.vet_join_candidate(now, owner);
                }
            }
            (LookupFor::Join, Err(_)) => {}
            (LookupFor::Finger(slot), Ok((owner, _, _))) => self.finger_found(now, slot, owner),
            (LookupFor::Finger(_), Err(_)) => {
                // The sweep stops; the next one comes at the base pace.
                self.membership.finger_cursor = ID_BITS;
                self.membership.sweep_changed = true;
            }
            (LookupFor::Merge(via), Ok((owner, _, _))) => self.merge_candidate(now, owner, via),
            (LookupFor::Merge(_), Err(_)) => {}
        }
    }
}
