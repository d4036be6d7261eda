//! The replay window: which message ids this node has already accepted, remembered for as long as a copy of
//! the message could still be accepted.
//!
//! A message is acceptable at `now` only if its origin timestamp `sent_at` lies in
//!
//! ```text
//!     [now − lifetime, now + skew]          (both ends inclusive)
//! ```
//!
//! so a copy of a message stops being acceptable once `now > sent_at + lifetime`. Until then its id is kept
//! and a second copy is refused as [`ReplayError::Duplicate`]; after that the id is forgotten, because the
//! timestamp check alone refuses the copy ([`ReplayError::TooOld`]). Messages from up to `skew` in the future
//! are accepted to tolerate clock differences between nodes; they are remembered correspondingly longer (up to
//! `lifetime + skew` after `now`).
//!
//! Memory is bounded by `capacity`. When the window is full, the ids that expire soonest — those whose
//! message is already too old to be accepted — are dropped first; if every remembered id is still live, the
//! live ids that lapse soonest are forgotten (a batch of `capacity / 64`, at least one, ties broken by id so
//! a run is reproducible) and the new message is accepted. The window never refuses for want of room.
//!
//! Until 2026-12 it refused with [`ReplayError::Full`] instead, so that no live id was ever forgotten. But
//! the ids it holds are those of messages whose signature verified, and signing costs an attacker nothing:
//! any session key signs (envelopes carry no delegation), keys are free, and a frame dated up to `skew`
//! ahead stays `lifetime + skew`. One peer sending `capacity` signed frames in five minutes made the node
//! refuse every message addressed to it (`sim/tests/replay_flood_cannot_silence_a_node.rs`). Forgetting
//! early is the smaller harm: a copy of a forgotten message that comes back within its lifetime is accepted
//! again, and what it carries is idempotent where it matters (a stored record is stored once, a sealed
//! message is delivered to the app once by its digest, a receipt or reply finds no request waiting). Size
//! the capacity for the highest accepted message rate × `(lifetime + skew)`, and the flood an attacker
//! needs to push honest ids out grows with it. [`ReplayError::Full`] remains for a window of capacity 0.
//!
//! Storage: one hash map from id to the last instant a copy could be accepted (24 bytes an id), and no
//! second structure ordered by expiry. Expired ids are swept out in one pass over the map once the earliest
//! of them is `lifetime / 32` overdue, so an id outlives its expiry by at most that much (about 3 % more ids
//! than an exact window) — but never in a way that shows: a remembered id whose time has passed counts as
//! forgotten for [`ReplayWindow::check_and_insert`], and the full-window check sweeps first whenever an id
//! may have expired, so every answer is the one an exact window gives. An exact window kept its ids twice
//! (a hash set and a heap by expiry), which made it the largest table of a simulated node.
//!
//! Costs: [`ReplayWindow::check_and_insert`] is one hash lookup; a sweep visits every id and happens about
//! every `lifetime / 32` while ids expire, so it is amortized O(1) per message. When the window is full of
//! live ids (an attack), an insert attempt sweeps only if an id has expired since the last sweep.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::Duration;

use crate::time::Timestamp;

/// Why [`ReplayWindow::check_and_insert`] refused a message. Every variant means "drop and count"; none is
/// an API misuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// `sent_at` is earlier than `now − lifetime`: the message is older than any id this window remembers,
    /// so it cannot be told apart from a replay.
    #[error("message too old")]
    TooOld,
    /// `sent_at` is later than `now + skew`: the origin's clock is too far ahead (or the timestamp is forged
    /// to stay in the window longer).
    #[error("message timestamp too far in the future")]
    TooNew,
    /// This id was already accepted and the earlier copy is still within its lifetime.
    #[error("duplicate message id")]
    Duplicate,
    /// The window has no room at all (capacity 0). A window with room forgets the ids that lapse soonest
    /// instead (see the [module docs](self)).
    #[error("replay window full")]
    Full,
}

/// Remembers accepted message ids for their lifetime, with bounded memory. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    capacity: usize,
    lifetime: Duration,
    skew: Duration,
    /// How long an expired id may wait for the next sweep.
    slack: Duration,
    /// The ids remembered, each with the last instant a copy could be accepted (`sent_at + lifetime`). Ids
    /// whose instant has passed may still be here until the next sweep; they count as forgotten.
    ids: HashMap<[u8; 16], Timestamp>,
    /// No id in `ids` expires before this instant: exact right after a sweep, lowered by inserts (so a lower
    /// bound). `None` when nothing is remembered.
    first_expiry: Option<Timestamp>,
    /// Live ids forgotten to make room.
    forgotten: u64,
}

impl ReplayWindow {
    /// An empty window holding at most `capacity` ids, accepting messages sent within `lifetime` before and
    /// `skew` after `now`.
    ///
    /// A `capacity` of zero refuses every message with [`ReplayError::Full`].
    pub fn new(capacity: usize, lifetime: Duration, skew: Duration) -> Self {
        ReplayWindow {
            capacity,
            lifetime,
            skew,
            slack: lifetime / 32,
            ids: HashMap::new(),
            first_expiry: None,
            forgotten: 0,
        }
    }

    /// Accepts a message id (the envelope's [`MessageId`](super::envelope::MessageId) bytes) seen at `now`
    /// with origin timestamp `sent_at`, or says why not.
    ///
    /// Checks, in order: the timestamp window (`TooOld`, `TooNew`), then whether the id is remembered
    /// (`Duplicate`), then room: expired ids are dropped, and if the window is still full the live ids that
    /// lapse soonest are forgotten (`Full` only at capacity 0). On `Ok` the id is remembered until
    /// `sent_at + lifetime`. A refused message changes nothing except that expired ids may be dropped.
    pub fn check_and_insert(
        &mut self,
        id: [u8; 16],
        sent_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), ReplayError> {
        self.check_time(sent_at, now)?;
        self.expire(now);
        let last_ok = sent_at.saturating_add(self.lifetime);
        let full = self.ids.len() >= self.capacity;
        if full && !self.ids.contains_key(&id) && self.first_expiry.is_some_and(|f| f < now) {
            // Room decides the answer: drop every expired id first, as an exact window would have.
            self.sweep(now);
        }
        if self.ids.get(&id).is_some_and(|l| *l >= now) {
            return Err(ReplayError::Duplicate);
        }
        if self.ids.len() >= self.capacity && !self.ids.contains_key(&id) {
            if self.capacity == 0 {
                return Err(ReplayError::Full);
            }
            self.forget_soonest();
        }
        match self.ids.entry(id) {
            // Remembered but expired: as good as forgotten, and its place is free.
            Entry::Occupied(mut e) => {
                e.insert(last_ok);
            }
            Entry::Vacant(e) => {
                e.insert(last_ok);
            }
        }
        self.first_expiry = Some(self.first_expiry.map_or(last_ok, |f| f.min(last_ok)));
        Ok(())
    }

    /// Whether a message sent at `sent_at` is inside the window at `now` (the first check of
    /// [`check_and_insert`](Self::check_and_insert), for callers that remember ids elsewhere).
    pub fn check_time(&self, sent_at: Timestamp, now: Timestamp) -> Result<(), ReplayError> {
        if sent_at < now.saturating_sub(self.lifetime) {
            return Err(ReplayError::TooOld);
        }
        if sent_at > now.saturating_add(self.skew) {
            return Err(ReplayError::TooNew);
        }
        Ok(())
    }

    /// Whether `id` was accepted and a copy of it would still be refused at `now`. Changes nothing.
    pub fn seen(&self, id: &[u8; 16], now: Timestamp) -> bool {
        self.ids.get(id).is_some_and(|last_ok| *last_ok >= now)
    }

    /// Forgets the ids whose message can no longer be accepted at `now` (`sent_at + lifetime < now`), at
    /// the latest `lifetime / 32` after they expire (see the [module docs](self)).
    ///
    /// [`check_and_insert`](Self::check_and_insert) calls this itself; shells may also call it from a timer
    /// to release memory while idle.
    pub fn expire(&mut self, now: Timestamp) {
        if self.first_expiry.is_some_and(|f| now.since(f) > self.slack) {
            self.sweep(now);
        }
    }

    /// Forgets the live ids that lapse soonest — `capacity / 64` of them, at least one, the lower id first
    /// among equal times — so a full window has room again for a while (one pass over the ids per batch).
    fn forget_soonest(&mut self) {
        let batch = (self.capacity / 64).max(1).min(self.ids.len());
        if batch == 0 {
            return;
        }
        let mut order: Vec<(Timestamp, [u8; 16])> = self.ids.iter().map(|(id, t)| (*t, *id)).collect();
        order.select_nth_unstable(batch - 1);
        for (_, id) in &order[..batch] {
            self.ids.remove(id);
        }
        self.forgotten += batch as u64;
        self.first_expiry = order[batch..].iter().map(|(t, _)| *t).min();
    }

    /// Live ids forgotten so far to make room (each is one a replay could get past within its lifetime).
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Drops every expired id now, and learns the exact earliest expiry of the rest.
    fn sweep(&mut self, now: Timestamp) {
        self.ids.retain(|_, last_ok| *last_ok >= now);
        self.first_expiry = self.ids.values().copied().min();
        if self.ids.capacity() > 64 && self.ids.len() < self.ids.capacity() / 4 {
            // After a burst: give the memory back.
            self.ids.shrink_to(self.ids.len() * 2);
        }
    }

    /// Whether `id` is currently remembered and live at the time of the last call (it may have expired if
    /// [`expire`](Self::expire) was not called since).
    pub fn contains(&self, id: &[u8; 16]) -> bool {
        self.ids.contains_key(id)
    }

    /// The number of ids remembered, expired ones that wait for the next sweep included.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The most ids this window holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The earliest instant at which [`expire`](Self::expire) could forget something, if anything is
    /// remembered: a deadline a shell may arm a timer for (never later than the true one).
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.first_expiry.filter(|_| !self.ids.is_empty()).map(|f| Timestamp(f.0.saturating_add(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIFETIME: Duration = Duration::from_secs(60);
    const SKEW: Duration = Duration::from_secs(5);

    fn id(n: u8) -> [u8; 16] {
        [n; 16]
    }

    fn window(capacity: usize) -> ReplayWindow {
        ReplayWindow::new(capacity, LIFETIME, SKEW)
    }

    #[test]
    fn accepts_then_refuses_duplicate() {
        let mut w = window(8);
        let now = Timestamp::from_secs(1_000);
        assert_eq!(w.check_and_insert(id(1), now, now), Ok(()));
        assert_eq!(w.check_and_insert(id(1), now, now), Err(ReplayError::Duplicate));
        assert_eq!(w.check_and_insert(id(2), now, now), Ok(()));
        assert_eq!(w.len(), 2);
        assert!(w.contains(&id(1)));
    }

    #[test]
    fn window_edges_are_inclusive() {
        let mut w = window(8);
        let now = Timestamp::from_secs(1_000);
        assert_eq!(w.check_and_insert(id(1), now.saturating_sub(LIFETIME), now), Ok(()));
        assert_eq!(w.check_and_insert(id(2), now.saturating_add(SKEW), now), Ok(()));
        assert_eq!(
            w.check_and_insert(id(3), Timestamp(now.saturating_sub(LIFETIME).0 - 1), now),
            Err(ReplayError::TooOld)
        );
        assert_eq!(
            w.check_and_insert(id(4), Timestamp(now.saturating_add(SKEW).0 + 1), now),
            Err(ReplayError::TooNew)
        );
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn duplicate_refused_until_too_old_then_forgotten() {
        let mut w = window(8);
        let sent = Timestamp::from_secs(1_000);
        w.check_and_insert(id(1), sent, sent).unwrap();
        let last_ok = sent.saturating_add(LIFETIME);
        assert_eq!(w.check_and_insert(id(1), sent, last_ok), Err(ReplayError::Duplicate));
        let after = Timestamp(last_ok.0 + 1);
        assert_eq!(w.check_and_insert(id(1), sent, after), Err(ReplayError::TooOld));
        // Swept out once it is `lifetime / 32` overdue.
        w.expire(after);
        assert!(w.contains(&id(1)));
        w.expire(after.saturating_add(LIFETIME / 32));
        assert!(w.is_empty());
    }

    #[test]
    fn future_messages_are_remembered_longer() {
        let mut w = window(8);
        let now = Timestamp::from_secs(1_000);
        let sent = now.saturating_add(SKEW);
        w.check_and_insert(id(1), sent, now).unwrap();
        let later = now.saturating_add(LIFETIME + SKEW);
        assert_eq!(w.check_and_insert(id(1), sent, later), Err(ReplayError::Duplicate));
    }

    #[test]
    fn full_window_drops_expired_first_and_otherwise_forgets_the_soonest_to_lapse() {
        let mut w = window(2);
        let t0 = Timestamp::from_secs(1_000);
        w.check_and_insert(id(1), t0, t0).unwrap();
        w.check_and_insert(id(2), t0.saturating_add(Duration::from_secs(30)), t0).unwrap_err(); // TooNew
        let t1 = t0.saturating_add(Duration::from_secs(30));
        w.check_and_insert(id(2), t1, t1).unwrap();
        // id(1) expires first; once it has, its slot frees up and nothing live is forgotten.
        let t2 = Timestamp(t0.saturating_add(LIFETIME).0 + 1);
        assert_eq!(w.check_and_insert(id(3), t2, t2), Ok(()));
        assert!(!w.contains(&id(1)));
        assert!(w.contains(&id(2)) && w.contains(&id(3)));
        assert_eq!(w.next_expiry(), Some(Timestamp(t1.saturating_add(LIFETIME).0 + 1)));
        assert_eq!(w.forgotten(), 0);
        // Both live: the one that lapses soonest (id 2) is forgotten, and the new id is accepted, not refused.
        assert_eq!(w.check_and_insert(id(4), t2, t2), Ok(()));
        assert!(!w.contains(&id(2)) && w.contains(&id(3)) && w.contains(&id(4)));
        assert_eq!((w.len(), w.forgotten()), (2, 1));
        // A flood of fresh ids never shuts the window: every one is accepted, the memory stays bounded.
        for n in 10..200 {
            assert_eq!(w.check_and_insert(id(n), t2, t2), Ok(()));
            assert!(w.len() <= 2);
        }
    }

    #[test]
    fn a_large_window_forgets_a_batch_at_a_time_in_a_reproducible_order() {
        let mut w = window(128);
        let t0 = Timestamp::from_secs(1_000);
        for n in 0..128u8 {
            // Same time for all: ties go by id, so the lowest two ids go first.
            w.check_and_insert(id(n), t0, t0).unwrap();
        }
        assert_eq!(w.check_and_insert(id(200), t0, t0), Ok(()));
        assert_eq!((w.len(), w.forgotten()), (127, 2));
        assert!(!w.contains(&id(0)) && !w.contains(&id(1)) && w.contains(&id(2)));
        assert_eq!(w.check_and_insert(id(201), t0, t0), Ok(()));
        assert_eq!(w.forgotten(), 2, "room was made for more than one");
    }

    #[test]
    fn zero_capacity_refuses_everything() {
        let mut w = window(0);
        let now = Timestamp::from_secs(5);
        assert_eq!(w.check_and_insert(id(1), now, now), Err(ReplayError::Full));
        assert_eq!(w.next_expiry(), None);
    }

    #[test]
    fn saturates_near_the_epoch_and_the_far_future() {
        let mut w = window(4);
        assert_eq!(w.check_and_insert(id(1), Timestamp::ZERO, Timestamp::ZERO), Ok(()));
        let end = Timestamp(u64::MAX);
        assert_eq!(w.check_and_insert(id(2), end, end), Ok(()));
        assert_eq!(w.check_and_insert(id(2), end, end), Err(ReplayError::Duplicate));
    }

    proptest! {
        /// Whatever else happens in between, a second copy of an accepted id is refused while the first copy
        /// is within its lifetime.
        #[test]
        fn duplicate_within_lifetime_is_always_refused(
            capacity in 1usize..16,
            start in 0u64..1_000_000,
            steps in proptest::collection::vec((0u8..24, 0u64..90_000, 0u64..70_000, any::<bool>()), 1..64),
        ) {
            let mut w = window(capacity);
            let mut now = Timestamp(start);
            // id → sent_at of the accepted copy
            let mut accepted: std::collections::HashMap<[u8; 16], Timestamp> = Default::default();
            for (n, advance, back, replay) in steps {
                now = Timestamp(now.0 + advance / 8);
                let id = id(n);
                let sent_at = match accepted.get(&id) {
                    Some(&t) if replay => t,
                    _ => Timestamp(now.0.saturating_sub(back)),
                };
                let forgotten = w.forgotten();
                let result = w.check_and_insert(id, sent_at, now);
                if let Some(&first) = accepted.get(&id) {
                    if first.saturating_add(LIFETIME) >= now && forgotten == 0 {
                        prop_assert!(result.is_err(), "replay of {:?} accepted at {:?}", id, now);
                    }
                }
                if result.is_ok() {
                    accepted.insert(id, sent_at);
                }
                prop_assert!(w.len() <= capacity);
            }
        }

        /// Every answer is the one of an exact window (a set of ids and a heap by expiry, dropping every
        /// expired id before each check), whatever the order of timestamps, ids and room.
        #[test]
        fn answers_like_an_exact_window(
            capacity in 0usize..12,
            start in 0u64..1_000_000,
            steps in proptest::collection::vec((0u8..20, 0u64..40_000, 0u64..70_000, 0u64..10_000), 1..200),
        ) {
            let mut w = window(capacity);
            let mut exact = Exact::default();
            let mut now = Timestamp(start);
            for (n, advance, back, ahead) in steps {
                now = Timestamp(now.0 + advance / 4);
                let sent_at = Timestamp(now.0.saturating_sub(back) + ahead);
                let got = w.check_and_insert(id(n), sent_at, now);
                let want = exact.check_and_insert(capacity, id(n), sent_at, now);
                prop_assert_eq!(got, want, "id {} sent {:?} at {:?}", n, sent_at, now);
                prop_assert!(w.len() <= capacity.max(exact.ids.len()) + 20);
            }
        }
    }

    /// The window as it was before it kept its ids once: a set and a heap by expiry, expired ids dropped
    /// before every check; when full, the soonest to lapse forgotten.
    #[derive(Default)]
    struct Exact {
        ids: std::collections::HashSet<[u8; 16]>,
        queue: std::collections::BinaryHeap<std::cmp::Reverse<(Timestamp, [u8; 16])>>,
    }

    impl Exact {
        fn check_and_insert(
            &mut self,
            capacity: usize,
            id: [u8; 16],
            sent_at: Timestamp,
            now: Timestamp,
        ) -> Result<(), ReplayError> {
            if sent_at < now.saturating_sub(LIFETIME) {
                return Err(ReplayError::TooOld);
            }
            if sent_at > now.saturating_add(SKEW) {
                return Err(ReplayError::TooNew);
            }
            while let Some(std::cmp::Reverse((last_ok, old))) = self.queue.peek().copied() {
                if last_ok >= now {
                    break;
                }
                self.queue.pop();
                self.ids.remove(&old);
            }
            if self.ids.contains(&id) {
                return Err(ReplayError::Duplicate);
            }
            if self.ids.len() >= capacity {
                if capacity == 0 {
                    return Err(ReplayError::Full);
                }
                // Forget the soonest to lapse, lower id first (batches of one below 128).
                for _ in 0..(capacity / 64).max(1) {
                    if let Some(std::cmp::Reverse((_, old))) = self.queue.pop() {
                        self.ids.remove(&old);
                    }
                }
            }
            self.ids.insert(id);
            self.queue.push(std::cmp::Reverse((sent_at.saturating_add(LIFETIME), id)));
            Ok(())
        }
    }
}
