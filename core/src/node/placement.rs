//! Records in the ring, as a sub-machine: where they live and how they move as the ring changes.
//!
//! Records live on the owner of their key and its first r − 1 successors; a presence record or mailbox
//! entry has several keys (its wallet's [`presence_keys`](super::records::presence_keys), one per position)
//! and is held under each, as an independent record. Writes go to the owner, which stores, answers, and
//! pushes the record to its successors; reads ask the owner. Whenever a node's
//! predecessor or successors change it pushes the records it owns to its successors again (replica
//! repair) and hands the ones it no longer owns to their owner (join handoff, re-homing); a leaving node
//! hands everything to its successor.
//!
//! - **Owns** ([`Records`]): the record store (memory, or the server's database) and the neighbours it last
//!   replicated to.
//! - **Takes**: records to store (verified here first), `Replicate` batches from neighbours, the ring's
//!   predecessor and successors, and the [`Timer::Records`] / [`Timer::Rehome`] ticks.
//! - **Emits**: `Replicate` and `DropMail` link messages, mailbox deliveries to sessions that came back, and
//!   re-homing writes (through the app's requests).

use std::time::Duration;

use super::app::{OpKind, PAGE_BYTES};
use super::msg::{self, AppMsg, LinkMsg, Routed, StoreFail};
use super::records::{
    self, MailAck, MailboxEntry, PresenceRecord, Record, RecordError, RecordStore, StoreError,
    DEFAULT_MAILBOX_TTL,
};
use super::timer::Timer;
use super::Node;
use crate::id::Id;
use crate::node::api::LinkId;
use crate::time::Timestamp;
use crate::wire::envelope::Destination;

/// How often records held but not owned are sent to their owner again.
const REHOME_INTERVAL: Duration = Duration::from_secs(30);
/// Sealed messages in one `MailboxDeliver` (each up to ~66 KiB: one per frame keeps under the limit).
const MAIL_PER_FRAME: usize = 1;

/// The records one node holds, and where it last replicated them.
pub(crate) struct Records {
    pub(crate) store: Box<dyn RecordStore + Send>,
    /// The predecessor and replica successors at the last sync.
    synced: (Option<Id>, Vec<Id>),
}

impl Records {
    /// An in-memory store of at most `budget` bytes.
    pub(crate) fn with_budget(budget: usize) -> Self {
        Records { store: Box::new(records::MemoryStore::with_budget(budget)), synced: (None, Vec::new()) }
    }

    /// Mailbox entries held (as owner or replica).
    pub(crate) fn mailbox_entries(&self) -> usize {
        self.store
            .keys()
            .into_iter()
            .flat_map(|k| self.store.get(k))
            .filter(|r| matches!(r, Record::Mailbox(_)))
            .count()
    }
}

impl Node {
    /// [`Timer::Records`]: replicate to successors that changed; [`Timer::Rehome`]: offer every record to
    /// its owner and replicas again.
    pub(super) fn placement_tick(&mut self, now: Timestamp) {
        if self.timers.is_due(Timer::Records, now) {
            self.timers.set(Timer::Records, now.saturating_add(self.config.stabilize_interval * 2));
            self.sync_records(now, false);
        }
        if self.timers.is_due(Timer::Rehome, now) {
            self.timers.set(Timer::Rehome, now.saturating_add(REHOME_INTERVAL));
            self.sync_records(now, true);
        }
    }

    /// Verifies and stores a record under `key` (one of [`Record::keys`]: a record cannot be placed at a
    /// key that is not its own); as the key's owner (`owner`), replicates it and delivers waiting mail.
    pub(super) fn accept_record(
        &mut self,
        now: Timestamp,
        key: Id,
        record: Record,
        owner: bool,
    ) -> Result<(), StoreFail> {
        if !record.keys().contains(&key) {
            self.io.counters.refused_records += 1;
            return Err(StoreFail::Invalid);
        }
        let checked: Result<(), RecordError> = match &record {
            Record::Presence(p) => {
                p.verify(&self.config.network, now, self.config.clock_skew, &mut self.me.cache)
            }
            Record::Topic(t) => {
                t.verify(&self.config.network, now, self.config.clock_skew, &mut self.me.cache)
            }
            // The writer's check: a valid delegation and its session's signature, wherever the entry comes
            // from (a `Store`, or a neighbour's `Replicate`).
            Record::Mailbox(m) => m.verify(
                &self.config.network,
                now,
                self.config.clock_skew,
                records::MAX_MAILBOX_TTL,
                &mut self.me.cache,
            ),
        };
        if checked.is_err() {
            self.io.counters.refused_records += 1;
            return Err(StoreFail::Invalid);
        }
        let mut put = self.records.store.put_at(key, record.clone(), now);
        if put == Err(StoreError::Full) {
            // Records that lapsed since the last purge still count against the budget: purge, then try once
            // more. A store full of live records refuses (the writer hears `Full`); nothing is evicted to
            // make room, so what is stored stays stored.
            self.records.store.expire(now);
            put = self.records.store.put_at(key, record.clone(), now);
        }
        let changed = match put {
            Ok(changed) => changed,
            Err(StoreError::Stale) => {
                self.io.counters.refused_records += 1;
                return Err(StoreFail::Stale);
            }
            Err(StoreError::MailboxFull) => return Err(StoreFail::MailboxFull),
            Err(StoreError::SenderQuota) => return Err(StoreFail::SenderQuota),
            Err(StoreError::Full) => return Err(StoreFail::Full),
            Err(StoreError::Delivered) => return Err(StoreFail::Delivered),
        };
        self.io.counters.records = self.records.store.len() as u64;
        if owner && changed {
            match &record {
                Record::Presence(p) if p.is_live(now) => self.deliver_mail(now, key, p),
                // Mail can reach the owner after the session's presence did: a node that returns and
                // owns its own presence key publishes presence at join, and its mail is handed to it a
                // moment later. Waiting for the next presence refresh would cost minutes.
                Record::Mailbox(m) => self.deliver_if_live(now, key, m),
                // Nothing waits on a topic record, or on a presence that has lapsed.
                Record::Presence(_) | Record::Topic(_) => {}
            }
            self.push_to_replicas(LinkMsg::ReplicateAt { key, records: vec![record] });
        }
        Ok(())
    }

    /// Sends one mailbox entry at once if the session it is sealed to has a live presence here (under the
    /// same position `key`). If that session is in fact gone (crashed while its presence was live), the entry
    /// stays until acknowledged.
    fn deliver_if_live(&mut self, now: Timestamp, key: Id, mail: &MailboxEntry) {
        let live = self.records.store.get(key).into_iter().find_map(|r| match r {
            Record::Presence(p) if p.session == mail.to_session && p.is_live(now) => Some(p.node_id()),
            Record::Presence(_) | Record::Topic(_) | Record::Mailbox(_) => None,
        });
        if let Some(node) = live {
            let body = Routed::App(AppMsg::MailboxDeliver { entries: vec![(mail.id, mail.sealed.clone())] });
            self.send_routed(now, Destination::Node(node), None, &body);
        }
    }

    /// Sends the mailbox entries held under `key` sealed to a session that just published presence there.
    fn deliver_mail(&mut self, now: Timestamp, key: Id, presence: &PresenceRecord) {
        let entries: Vec<([u8; 16], Vec<u8>)> = self
            .records
            .store
            .get(key)
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

    /// Deletes the mailbox entries a recipient session acknowledged, if its acknowledgement verifies (signed
    /// by that session under a valid delegation of the wallet); only entries sealed to that session go.
    /// The ids are remembered as delivered, so a late copy does not bring them back (an id names the
    /// ciphertext, and the session signs only ids of messages it opened). Returns whether it verified.
    pub(super) fn apply_mail_ack(&mut self, now: Timestamp, ack: &MailAck) -> bool {
        if ack.verify(&self.config.network, now, &mut self.me.cache).is_err() {
            self.io.counters.refused_records += 1;
            return false;
        }
        // The mailbox lives at every position of the wallet; this node may hold more than one.
        for key in ack.keys() {
            // An id held for another session of the wallet is not this session's to delete.
            let others: Vec<[u8; 16]> = self
                .records
                .store
                .get(key)
                .into_iter()
                .filter_map(|r| match r {
                    Record::Mailbox(m) if m.to_session != ack.session && ack.ids.contains(&m.id) => {
                        Some(m.id)
                    }
                    Record::Mailbox(_) | Record::Presence(_) | Record::Topic(_) => None,
                })
                .collect();
            let ids: Vec<[u8; 16]> = ack.ids.iter().copied().filter(|id| !others.contains(id)).collect();
            self.records.store.remove_mail(key, &ids, now.saturating_add(DEFAULT_MAILBOX_TTL * 2));
        }
        self.io.counters.records = self.records.store.len() as u64;
        true
    }

    /// Sends a link message to the first r − 1 live successors (the replicas of what we own).
    pub(super) fn push_to_replicas(&mut self, m: LinkMsg) {
        let frame = msg::link_frame(&m);
        for link in self.replica_links() {
            self.transmit(link, frame.clone());
        }
    }

    /// Sends a link message to every live successor in the list: the replicas, and past them the node a
    /// join just pushed out of the replica set, which still holds copies of what the joiner now owns until its
    /// next rehome (`REHOME_INTERVAL`). Used for `DropMail`, so that node deletes delivered mail at once.
    pub(super) fn push_to_successors(&mut self, m: LinkMsg) {
        let frame = msg::link_frame(&m);
        let links: Vec<LinkId> =
            self.ring.successors().iter().filter_map(|s| self.links.open_to(*s)).collect();
        for link in links {
            self.transmit(link, frame.clone());
        }
    }

    fn replica_links(&self) -> Vec<LinkId> {
        let r = self.config.successors.saturating_sub(1).max(1);
        self.ring.successors().iter().filter_map(|s| self.links.open_to(*s)).take(r).collect()
    }

    /// Replica repair and handoff: when the predecessor or the successors changed, push what we own to
    /// the successors and what we no longer own to the predecessor. Also drops lapsed records.
    /// Hands records to the successors that changed since the last sync; with `rehome`, offers every
    /// record to its owner and replicas again whatever changed.
    fn sync_records(&mut self, now: Timestamp, rehome: bool) {
        self.records.store.expire(now);
        self.io.counters.records = self.records.store.len() as u64;
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
        if (self.records.synced == state && !rehome) || self.records.store.is_empty() {
            self.records.synced = state;
            return;
        }
        let me = self.id();
        let (mut owned, mut others) = (Vec::new(), Vec::new());
        for key in self.records.store.keys() {
            let records = self.records.store.get(key).into_iter().map(|r| (key, r));
            if key.in_half_open(pred, me) {
                owned.extend(records);
            } else {
                others.extend(records);
            }
        }
        if self.records.synced.1 != succs {
            let links: Vec<_> = succs.iter().filter_map(|s| self.links.open_to(*s)).collect();
            self.push_batches(&links, owned);
        }
        if self.records.synced.0 != Some(pred) || rehome {
            // Records we do not own go to their owner — routed, not pushed to the predecessor: during
            // mass joins a key can be several nodes behind us, and a replica does not forward. Repeated
            // every REHOME_INTERVAL, so a write that landed on a node that wrongly thought itself the
            // owner still reaches the right one; the owner ignores copies it already has.
            for (key, record) in others {
                let dest = Destination::Key(key);
                let kind = match &record {
                    Record::Mailbox(m) => OpKind::RehomeMail { key, id: m.id },
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
        self.records.synced = state;
    }

    /// Hands every record to the first live successor (graceful leave).
    pub(super) fn hand_over_all(&mut self) {
        let Some(link) = self.ring.successors().iter().find_map(|s| self.links.open_to(*s)) else { return };
        let all: Vec<(Id, Record)> = self
            .records
            .store
            .keys()
            .into_iter()
            .flat_map(|k| self.records.store.get(k).into_iter().map(move |r| (k, r)))
            .collect();
        self.push_batches(&[link], all);
    }

    /// Sends `records` (each with the key it is held under) in `ReplicateAt` batches, one key per batch.
    fn push_batches(&mut self, links: &[LinkId], records: Vec<(Id, Record)>) {
        let mut batch = Vec::new();
        let mut batch_key = None;
        let mut bytes = 0;
        let mut batches = Vec::new();
        for (key, r) in records {
            let size = postcard::to_allocvec(&r).map_or(0, |v| v.len());
            let full = bytes + size > PAGE_BYTES || batch.len() >= msg::MAX_BATCH;
            if let Some(k) = batch_key.filter(|k| !batch.is_empty() && (full || *k != key)) {
                batches.push((k, std::mem::take(&mut batch)));
                bytes = 0;
            }
            batch_key = Some(key);
            bytes += size;
            batch.push(r);
        }
        if let Some(key) = batch_key.filter(|_| !batch.is_empty()) {
            batches.push((key, batch));
        }
        for (key, records) in batches {
            let frame = msg::link_frame(&LinkMsg::ReplicateAt { key, records });
            for link in links {
                self.transmit(*link, frame.clone());
            }
        }
    }

    /// Records pushed to us by a neighbour, each with the key it is held under: verified and kept (as owner
    /// if the key is now ours).
    pub(super) fn handle_replicate(&mut self, now: Timestamp, records: Vec<(Id, Record)>) {
        for (key, record) in records {
            let owner = self.ring.owns(key) == Some(true);
            let _ = self.accept_record(now, key, record, owner);
        }
    }
}
