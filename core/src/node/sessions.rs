//! End-to-end sessions of one node, as a sub-machine (the crypto is [`crate::e2e::session`]).
//!
//! - **Owns** ([`Sessions`]): this node's session credentials (static key, the session key's signature over
//!   it, the delegation); the sessions established with peers, by our index, at most one per peer and role,
//!   the newest used for sending; our handshakes in flight, at most one per peer.
//! - **Takes**: from the app layer, handshakes it started and the welcomes that finish them, sessions it
//!   accepted, lookups by the index a session message names, a peer's "no such session", and the app tick
//!   (expiry).
//! - **Emits**: nothing; the app layer routes hellos, welcomes and session messages itself.
//!
//! Bounded like every table a peer can fill: a hello makes a session only after its binding and delegation
//! verify, a newer session with the same peer and role replaces the older, and a full table drops the
//! session that expires first. A dropped session costs its peer one handshake: its next message is answered
//! "no such session", and it handshakes again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use crate::e2e::session::{Credentials, HandshakeError, Initiating, Session};
use crate::id::Id;
use crate::identity::SessionPublicKey;
use crate::time::Timestamp;

/// Sessions a node keeps at most.
pub(crate) const MAX_SESSIONS: usize = 1024;
/// Handshakes of ours in flight at most (one per peer; the oldest is dropped past it).
const MAX_PENDING: usize = 256;
/// A session is not used to send in the last part of its life: a message sealed just before it expires
/// could arrive after, and be refused.
const SEND_MARGIN: Duration = Duration::from_secs(60);

/// A session's receipt waits at most this long after the one before it (the first after a pause goes at
/// once), so that a burst of messages is acknowledged by a few receipts rather than one each.
pub(crate) const RECEIPT_DELAY: Duration = Duration::from_millis(4);
/// A receipt goes at once when it acknowledges this many messages.
const RECEIPT_EVERY: usize = 16;
/// Ranges of counters one receipt carries at most (a receipt goes at once when it has this many); a receipt
/// with more is refused.
pub(crate) const MAX_RECEIPT_RANGES: usize = 64;
/// How often at most a node is told that a session index is unknown here.
const NO_SESSION_EVERY: Duration = Duration::from_secs(1);
/// (node, index) pairs remembered for that.
const MAX_NO_SESSION: usize = 256;

/// Which side of the handshake this node was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    Initiator,
    Responder,
}

/// The end-to-end sessions of one node.
#[derive(Debug)]
pub(crate) struct Sessions {
    pub(crate) credentials: Credentials,
    live: HashMap<u64, (Session, Role)>,
    by_peer: HashMap<(SessionPublicKey, Role), u64>,
    pending: HashMap<u64, Initiating>,
    pending_to: HashMap<SessionPublicKey, u64>,
    /// Our indexes of `pending`, oldest first.
    pending_order: VecDeque<u64>,
    /// Per session (our index), the counters that reached the app and are not acknowledged yet.
    receipts: BTreeMap<u64, Receipt>,
    /// When we last told a node that we have no session under an index (`may_refuse`).
    refused: HashMap<(Id, u64), Timestamp>,
}

/// A session's receipt being gathered: the counters that reached the app, as inclusive ranges in order.
#[derive(Debug)]
struct Receipt {
    ranges: Vec<(u64, u64)>,
    count: usize,
    last_sent: Timestamp,
    due: Option<Timestamp>,
}

impl Receipt {
    fn add(&mut self, counter: u64) {
        self.count += 1;
        let at = self.ranges.partition_point(|(_, hi)| hi.saturating_add(1) < counter);
        match self.ranges.get_mut(at) {
            // Inside or just past the range at `at`.
            Some((lo, hi)) if *lo <= counter.saturating_add(1) => {
                *lo = (*lo).min(counter);
                *hi = (*hi).max(counter);
                // It may now touch the next range.
                if let Some(&(next_lo, next_hi)) = self.ranges.get(at + 1) {
                    if next_lo <= self.ranges[at].1.saturating_add(1) {
                        self.ranges[at].1 = self.ranges[at].1.max(next_hi);
                        self.ranges.remove(at + 1);
                    }
                }
            }
            _ => self.ranges.insert(at, (counter, counter)),
        }
    }
}

impl Sessions {
    pub(crate) fn new(credentials: Credentials) -> Sessions {
        Sessions {
            credentials,
            live: HashMap::new(),
            by_peer: HashMap::new(),
            pending: HashMap::new(),
            pending_to: HashMap::new(),
            pending_order: VecDeque::new(),
            receipts: BTreeMap::new(),
            refused: HashMap::new(),
        }
    }

    /// The session to send to `peer` with: of ours with it (one per role), the one that lives longer, if it
    /// lives for [`SEND_MARGIN`] more.
    pub(crate) fn for_sending(&mut self, peer: &SessionPublicKey, now: Timestamp) -> Option<&mut Session> {
        let usable = now.saturating_add(SEND_MARGIN);
        let best = [Role::Initiator, Role::Responder]
            .iter()
            .filter_map(|role| self.by_peer.get(&(*peer, *role)))
            .filter_map(|index| self.live.get(index).map(|(s, _)| (*index, s.expires())))
            .filter(|(_, expires)| *expires > usable)
            .max_by_key(|(_, expires)| *expires)
            .map(|(index, _)| index)?;
        self.live.get_mut(&best).map(|(s, _)| s)
    }

    /// Whether a handshake of ours with `peer` is in flight.
    pub(crate) fn handshaking(&self, peer: &SessionPublicKey) -> bool {
        self.pending_to.contains_key(peer)
    }

    /// A handshake we started; its index names it in [`Sessions::finish`] and [`Sessions::drop_pending`].
    pub(crate) fn started(&mut self, handshake: Initiating) {
        let index = handshake.index();
        let peer = handshake.peer().session;
        if let Some(old) = self.pending_to.get(&peer).copied() {
            self.drop_pending(old);
        }
        while self.pending.len() >= MAX_PENDING {
            let Some(oldest) = self.pending_order.pop_front() else { break };
            self.drop_pending(oldest);
        }
        self.pending_to.insert(peer, index);
        self.pending_order.push_back(index);
        self.pending.insert(index, handshake);
    }

    /// Finishes our handshake `index` with the welcome its peer sent: the welcome's data. `None` if no such
    /// handshake is in flight (finished, dropped, or never ours).
    pub(crate) fn finish(
        &mut self,
        now: Timestamp,
        index: u64,
        welcome: &[u8],
    ) -> Option<Result<Vec<u8>, HandshakeError>> {
        let handshake = self.pending.remove(&index)?;
        self.forget_pending(index, &handshake.peer().session);
        Some(handshake.finish(welcome).map(|(session, data)| {
            self.insert(now, session, Role::Initiator);
            data
        }))
    }

    /// Our handshake `index` will not be finished (its message failed or was answered otherwise).
    pub(crate) fn drop_pending(&mut self, index: u64) {
        if let Some(h) = self.pending.remove(&index) {
            self.forget_pending(index, &h.peer().session);
        }
    }

    fn forget_pending(&mut self, index: u64, peer: &SessionPublicKey) {
        if self.pending_to.get(peer) == Some(&index) {
            self.pending_to.remove(peer);
        }
        self.pending_order.retain(|i| *i != index);
    }

    /// A session established in `role`: it replaces an older one with the same peer and role; a full table
    /// drops expired sessions, else the one that expires first.
    pub(crate) fn insert(&mut self, now: Timestamp, session: Session, role: Role) {
        let key = (session.peer().session, role);
        if let Some(old) = self.by_peer.remove(&key) {
            self.live.remove(&old);
            self.receipts.remove(&old);
        }
        if self.live.len() >= MAX_SESSIONS {
            self.prune(now);
        }
        if self.live.len() >= MAX_SESSIONS {
            let first = self.live.iter().min_by_key(|(i, (s, _))| (s.expires(), **i)).map(|(i, _)| *i);
            if let Some(index) = first {
                self.remove(index);
            }
        }
        let index = session.index();
        self.by_peer.insert(key, index);
        self.live.insert(index, (session, role));
    }

    /// The session a message addressed to `index` is for. Only its key opens the message, so whoever brought
    /// it, what opens came from the session's peer.
    pub(crate) fn get(&mut self, index: u64) -> Option<&mut Session> {
        self.live.get_mut(&index).map(|(s, _)| s)
    }

    /// Our session whose peer calls it `theirs`, if it is one with `peer`.
    pub(crate) fn ours_for(&self, peer: &SessionPublicKey, theirs: u64) -> Option<u64> {
        [Role::Initiator, Role::Responder]
            .iter()
            .filter_map(|role| self.by_peer.get(&(*peer, *role)))
            .find(|index| self.live.get(index).is_some_and(|(s, _)| s.peer_index() == theirs))
            .copied()
    }

    /// Counter `counter` of session `index` reached the app here (now or before): it joins the session's
    /// next receipt. True if that receipt is to go now (it is full, or the last went [`RECEIPT_DELAY`] ago or
    /// more); else it goes at [`Sessions::receipts_due`].
    pub(crate) fn received(&mut self, now: Timestamp, index: u64, counter: u64) -> bool {
        if !self.live.contains_key(&index) {
            return false;
        }
        let r = self.receipts.entry(index).or_insert_with(|| Receipt {
            ranges: Vec::new(),
            count: 0,
            last_sent: Timestamp(0),
            due: None,
        });
        r.add(counter);
        let at = r.last_sent.saturating_add(RECEIPT_DELAY);
        if r.count >= RECEIPT_EVERY || r.ranges.len() >= MAX_RECEIPT_RANGES || now >= at {
            return true;
        }
        r.due = Some(r.due.map_or(at, |d| d.min(at)));
        false
    }

    /// The counters session `index` is to acknowledge, taken out (the receipt is being sent).
    pub(crate) fn take_receipt(&mut self, now: Timestamp, index: u64) -> Option<Vec<(u64, u64)>> {
        let r = self.receipts.get_mut(&index)?;
        if r.ranges.is_empty() {
            return None;
        }
        r.count = 0;
        r.due = None;
        r.last_sent = now;
        Some(std::mem::take(&mut r.ranges))
    }

    /// The sessions whose receipt is due at `now`.
    pub(crate) fn receipts_due(&self, now: Timestamp) -> Vec<u64> {
        self.receipts.iter().filter(|(_, r)| r.due.is_some_and(|d| d <= now)).map(|(i, _)| *i).collect()
    }

    /// When the next held-back receipt is due.
    pub(crate) fn next_receipt(&self) -> Option<Timestamp> {
        self.receipts.values().filter_map(|r| r.due).min()
    }

    /// Whether to tell `from` that we have no session `index`: at most once per [`NO_SESSION_EVERY`] for
    /// each (node, index), so a burst of messages to a lost session costs one answer, and a table of at
    /// most [`MAX_NO_SESSION`] remembered answers.
    pub(crate) fn may_refuse(&mut self, now: Timestamp, from: Id, index: u64) -> bool {
        if self.refused.get(&(from, index)).is_some_and(|at| now < at.saturating_add(NO_SESSION_EVERY)) {
            return false;
        }
        if self.refused.len() >= MAX_NO_SESSION {
            self.refused.retain(|_, at| now < at.saturating_add(NO_SESSION_EVERY));
            if self.refused.len() >= MAX_NO_SESSION {
                return false;
            }
        }
        self.refused.insert((from, index), now);
        true
    }

    /// `peer` no longer has the session we used (it restarted, or dropped it): forget ours with it, so the
    /// next message handshakes again.
    pub(crate) fn forget_peer(&mut self, peer: &SessionPublicKey) {
        for role in [Role::Initiator, Role::Responder] {
            if let Some(index) = self.by_peer.remove(&(*peer, role)) {
                self.live.remove(&index);
                self.receipts.remove(&index);
            }
        }
    }

    /// Drops the sessions that expired.
    pub(crate) fn prune(&mut self, now: Timestamp) {
        let expired: Vec<u64> =
            self.live.iter().filter(|(_, (s, _))| s.expires() <= now).map(|(i, _)| *i).collect();
        for index in expired {
            self.remove(index);
        }
    }

    fn remove(&mut self, index: u64) {
        self.receipts.remove(&index);
        if let Some((s, role)) = self.live.remove(&index) {
            let key = (s.peer().session, role);
            if self.by_peer.get(&key) == Some(&index) {
                self.by_peer.remove(&key);
            }
        }
    }

    /// Sessions established (for status and tests).
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt { ranges: Vec::new(), count: 0, last_sent: Timestamp(0), due: None }
    }

    #[test]
    fn a_receipt_gathers_counters_into_ranges() {
        let mut r = receipt();
        for c in [5, 3, 4, 9, 0, 10, 7, 4] {
            r.add(c);
        }
        assert_eq!(r.ranges, vec![(0, 0), (3, 5), (7, 7), (9, 10)]);
        r.add(6);
        assert_eq!(r.ranges, vec![(0, 0), (3, 7), (9, 10)]);
        r.add(8);
        r.add(1);
        r.add(2);
        assert_eq!(r.ranges, vec![(0, 10)]);
        r.add(u64::MAX);
        r.add(u64::MAX - 1);
        assert_eq!(r.ranges, vec![(0, 10), (u64::MAX - 1, u64::MAX)]);
        assert_eq!(r.count, 14);
    }
}
