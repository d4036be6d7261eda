//! The messages this node accepted, as a sub-machine: per sending session, which sequence numbers it has
//! delivered to the app, so that no sealed message is delivered twice — not after the ciphertext digests
//! and the replay window forgot it, and not after a restart (the table is kept in an [`AcceptedStore`]).
//!
//! - **Owns** ([`Accepted`]): per sending session, the [`WINDOW`] highest sequence numbers accepted from it
//!   and a floor below which everything is refused; a table of at most [`Config::accepted_sessions`]
//!   sessions; a *forgotten-before* time for sessions evicted from a full table; the store it writes every
//!   change to.
//! - **Takes**: an opened message's sending session, `seq` and `sent_at` ([`Accepted::admit`]).
//! - **Emits**: a [`Verdict`], and the change to the store (before the verdict returns, so a shell that
//!   commits its store before carrying out outputs never lets a receipt or app event out ahead of it).
//!
//! # The rule (docs/encryption.md, "At most once")
//!
//! A message opened under sending session `S` with `(seq, sent_at)` is delivered to the app only if
//!
//! 1. `sent_at ≤ now + skew` (else [`Verdict::Early`]: not yet, a mailbox may bring it again later);
//! 2. `sent_at ≥ now − max_age`, where `max_age` is the longest a message can wait in a mailbox
//!    ([`MAX_MAILBOX_TTL`]) plus the skew (else stale);
//! 3. if the table knows `S`: `seq` is above `S`'s floor and not among its accepted `seq`s, and `sent_at`
//!    is after the forgotten-before time in force when `S`'s row was made; if the table does not know `S`:
//!    `sent_at` is after the forgotten-before time (else stale, or [`Verdict::Repeat`] if `seq` is among
//!    the accepted).
//!
//! Out of order is fine: a row keeps the [`WINDOW`] highest `seq`s, not a numeric range, so a message that
//! waited in a mailbox while up to `WINDOW − 1` later ones from the same session arrived live is still
//! accepted. The sender's `seq` grows across its restarts because it is seeded from its clock
//! ([`next_seq`]).
//!
//! # Bounded, and what a flood of sessions costs
//!
//! Session keys are free, so an attacker can fill the table. When a new session needs a row and the
//! table is full, rows whose newest message is older than `max_age` go first (the age rule already refuses
//! anything of theirs), then the row whose newest message is oldest; its newest `sent_at` raises the
//! forgotten-before time. No replay is ever accepted for it: every message ever accepted from an evicted
//! row is dated at or before that time. The cost falls on honest senders the table does not know (or
//! knew only after the time moved): their messages dated at or before forgotten-before are refused —
//! under a sustained flood, mail that waited in a mailbox and live messages older than the flood's
//! turnover of the table.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::records::MAX_MAILBOX_TTL;
use crate::identity::SessionPublicKey;
use crate::time::Timestamp;

/// Sequence numbers remembered per sending session (the highest ones accepted).
pub const WINDOW: usize = 64;
/// Sending sessions remembered by default ([`crate::node::Config::accepted_sessions`]).
pub const SESSIONS: usize = 4096;
/// Sequence numbers a sender may use per millisecond of its clock before its counter runs ahead of it
/// ([`next_seq`]).
pub const SEQ_PER_MS: u64 = 1024;
/// Format version of an encoded row ([`SenderRow::encode`]).
const ROW_VERSION: u8 = 1;

/// The next sequence number of a sender whose last one was `last`, at `now`: above `last`, and at least
/// `now` in milliseconds × [`SEQ_PER_MS`], so that it keeps growing across the sender's restarts (a reloaded
/// browser resumes its session key but not its counter) as long as its clock does not go back and it sent
/// fewer than [`SEQ_PER_MS`] messages per millisecond.
pub fn next_seq(last: u64, now: Timestamp) -> u64 {
    last.saturating_add(1).max(now.0.saturating_mul(SEQ_PER_MS))
}

/// What [`Accepted::admit`] decided about a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New: deliver it to the app (it is now remembered).
    Fresh,
    /// Accepted before (its `seq` is remembered): do not deliver again, but acknowledge it, since the
    /// first receipt may have been lost.
    Repeat,
    /// Too old to tell whether it was accepted before: dated before `now − max_age`, at or below its
    /// session's floor, or at or before the forgotten-before time. Never delivered.
    Stale,
    /// Dated more than the skew ahead of `now`: not delivered now.
    Early,
}

/// What was accepted from one sending session. Also the persisted row ([`SenderRow::encode`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderRow {
    /// Every `seq` at or below this is refused (the highest one pushed out of `seqs`).
    pub floor: u64,
    /// The accepted `seq`s above `floor`, ascending, at most [`WINDOW`].
    pub seqs: Vec<u64>,
    /// The newest `sent_at` accepted.
    pub newest: Timestamp,
    /// The forgotten-before time when the row was made: messages dated at or before it are refused.
    pub since: Timestamp,
}

impl SenderRow {
    /// The row's persisted form: a version byte, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ROW_VERSION];
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Reads a persisted row; `None` for another version or damaged bytes (or a row that breaks the
    /// invariants: unsorted, too long, a `seq` at or below the floor).
    pub fn decode(bytes: &[u8]) -> Option<SenderRow> {
        let (&version, rest) = bytes.split_first()?;
        if version != ROW_VERSION {
            return None;
        }
        let row: SenderRow = postcard::from_bytes(rest).ok()?;
        let sorted = row.seqs.windows(2).all(|w| w[0] < w[1]);
        let above = row.seqs.first().is_none_or(|&s| s > row.floor);
        (sorted && above && row.seqs.len() <= WINDOW).then_some(row)
    }
}

/// What an [`AcceptedStore`] saved: every row (sending session's 33-byte key, [`SenderRow::encode`]d) and
/// the forgotten-before time.
pub type Saved = (Vec<([u8; 33], Vec<u8>)>, Timestamp);

/// Where the accepted table is kept across restarts. The node writes each change as it makes it; a shell
/// with a database stages the change and commits it before it carries out the node's outputs (the receipt
/// and the app event of the message that changed it).
pub trait AcceptedStore {
    /// Every row saved (sending session's 33-byte key, [`SenderRow::encode`]d), and the forgotten-before
    /// time. Read once, when the node is given the store.
    fn load(&self) -> Saved;
    /// Saves a session's row (`Some`), or deletes it (`None`).
    fn put(&mut self, session: &[u8; 33], row: Option<Vec<u8>>);
    /// Saves the forgotten-before time.
    fn put_forgotten_before(&mut self, at: Timestamp);
}

/// The store of a node that keeps nothing across restarts (the default).
#[derive(Debug, Default)]
pub struct NoAcceptedStore;

impl AcceptedStore for NoAcceptedStore {
    fn load(&self) -> Saved {
        (Vec::new(), Timestamp::ZERO)
    }
    fn put(&mut self, _session: &[u8; 33], _row: Option<Vec<u8>>) {}
    fn put_forgotten_before(&mut self, _at: Timestamp) {}
}

/// An [`AcceptedStore`] in memory: what a simulator keeps for a node across a restart, and a model of a
/// database for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryAcceptedStore {
    /// Rows by session.
    pub rows: std::collections::BTreeMap<[u8; 33], Vec<u8>>,
    /// The forgotten-before time.
    pub forgotten_before: Timestamp,
}

impl AcceptedStore for MemoryAcceptedStore {
    fn load(&self) -> Saved {
        (self.rows.iter().map(|(k, v)| (*k, v.clone())).collect(), self.forgotten_before)
    }
    fn put(&mut self, session: &[u8; 33], row: Option<Vec<u8>>) {
        match row {
            Some(row) => self.rows.insert(*session, row),
            None => self.rows.remove(session),
        };
    }
    fn put_forgotten_before(&mut self, at: Timestamp) {
        self.forgotten_before = at;
    }
}

/// The accepted table. See the [module docs](self).
pub(crate) struct Accepted {
    rows: HashMap<[u8; 33], SenderRow>,
    forgotten_before: Timestamp,
    capacity: usize,
    skew: Duration,
    store: Box<dyn AcceptedStore + Send>,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("rows", &self.rows.len())
            .field("forgotten_before", &self.forgotten_before)
            .finish_non_exhaustive()
    }
}

impl Accepted {
    /// An empty table of at most `capacity` sessions that keeps nothing across restarts.
    pub(crate) fn new(capacity: usize, skew: Duration) -> Accepted {
        Accepted {
            rows: HashMap::new(),
            forgotten_before: Timestamp::ZERO,
            capacity: capacity.max(1),
            skew,
            store: Box::new(NoAcceptedStore),
        }
    }

    /// The longest a message may have waited: a mailbox entry's longest life plus the clock skew.
    pub(crate) fn max_age(&self) -> Duration {
        MAX_MAILBOX_TTL + self.skew
    }

    /// Takes what `store` saved and writes every later change to it. A row that does not decode (another
    /// version, damage) cannot say what was accepted from its session, so the forgotten-before time moves to
    /// `now + skew` (nothing dated before the restart is accepted from sessions without a row) and the row is
    /// deleted; returns how many rows were unreadable.
    pub(crate) fn set_store(&mut self, now: Timestamp, store: Box<dyn AcceptedStore + Send>) -> usize {
        self.store = store;
        let (rows, forgotten_before) = self.store.load();
        self.rows.clear();
        self.forgotten_before = forgotten_before;
        let mut bad = 0;
        for (session, bytes) in rows {
            match SenderRow::decode(&bytes) {
                Some(row) => {
                    self.rows.insert(session, row);
                }
                None => {
                    bad += 1;
                    self.store.put(&session, None);
                }
            }
        }
        if bad > 0 {
            self.forgotten_before = self.forgotten_before.max(now.saturating_add(self.skew));
            self.store.put_forgotten_before(self.forgotten_before);
        }
        // Over capacity (a smaller setting than the store was written with): evict down to it.
        while self.rows.len() > self.capacity {
            self.evict_one(now);
        }
        bad
    }

    /// Sessions remembered.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The forgotten-before time.
    pub(crate) fn forgotten_before(&self) -> Timestamp {
        self.forgotten_before
    }

    /// Decides whether the message `seq` sent at `sent_at` by `session` is delivered, and remembers it if
    /// it is ([`Verdict::Fresh`]), writing the change to the store before returning.
    pub(crate) fn admit(
        &mut self,
        session: &SessionPublicKey,
        seq: u64,
        sent_at: Timestamp,
        now: Timestamp,
    ) -> Verdict {
        if sent_at > now.saturating_add(self.skew) {
            return Verdict::Early;
        }
        if sent_at.saturating_add(self.max_age()) < now {
            return Verdict::Stale;
        }
        let key = *session.as_bytes();
        let (row, at) = match self.rows.get_mut(&key) {
            Some(row) => {
                let Err(at) = row.seqs.binary_search(&seq) else { return Verdict::Repeat };
                if seq <= row.floor || sent_at <= row.since {
                    return Verdict::Stale;
                }
                (row, at)
            }
            None => {
                if sent_at <= self.forgotten_before {
                    return Verdict::Stale;
                }
                while self.rows.len() >= self.capacity {
                    self.evict_one(now);
                }
                let since = self.forgotten_before;
                (self.rows.entry(key).or_insert(SenderRow { since, ..SenderRow::default() }), 0)
            }
        };
        row.seqs.insert(at, seq);
        if row.seqs.len() > WINDOW {
            row.floor = row.seqs.remove(0);
        }
        row.newest = row.newest.max(sent_at);
        let bytes = row.encode();
        self.store.put(&key, Some(bytes));
        Verdict::Fresh
    }

    /// Frees one row: one whose newest message is past the age bound if there is one (forgetting it costs
    /// nothing), else the row whose newest message is oldest, raising the forgotten-before time to it.
    fn evict_one(&mut self, now: Timestamp) {
        let Some((&key, row)) = self.rows.iter().min_by_key(|(k, r)| (r.newest, **k)) else { return };
        if row.newest.saturating_add(self.max_age()) >= now && row.newest > self.forgotten_before {
            self.forgotten_before = row.newest;
            self.store.put_forgotten_before(row.newest);
        }
        self.rows.remove(&key);
        self.store.put(&key, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SessionKey;
    use std::sync::{Arc, Mutex};

    const SKEW: Duration = Duration::from_secs(120);
    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    fn session(n: u8) -> SessionPublicKey {
        *SessionKey::from_bytes(&[n.max(1); 32]).expect("a valid key").public()
    }

    /// A store the test can read after the node's table wrote to it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<MemoryAcceptedStore>>);

    impl AcceptedStore for Shared {
        fn load(&self) -> Saved {
            self.0.lock().unwrap().load()
        }
        fn put(&mut self, session: &[u8; 33], row: Option<Vec<u8>>) {
            self.0.lock().unwrap().put(session, row)
        }
        fn put_forgotten_before(&mut self, at: Timestamp) {
            self.0.lock().unwrap().put_forgotten_before(at)
        }
    }

    #[test]
    fn each_seq_is_fresh_once_and_out_of_order_within_the_window_is_fine() {
        let mut a = Accepted::new(16, SKEW);
        let s = session(1);
        assert_eq!(a.admit(&s, 10, NOW, NOW), Verdict::Fresh);
        assert_eq!(a.admit(&s, 10, NOW, NOW), Verdict::Repeat);
        // 62 later ones, then an earlier one that waited in a mailbox: still accepted (the 64th), once.
        for seq in 100..162 {
            assert_eq!(a.admit(&s, seq, NOW, NOW), Verdict::Fresh);
        }
        assert_eq!(a.admit(&s, 5, NOW, NOW), Verdict::Fresh);
        assert_eq!(a.admit(&s, 5, NOW, NOW), Verdict::Repeat);
        // Beyond the window, the lowest seq is pushed below the floor: refused, never delivered again.
        assert_eq!(a.admit(&s, 162, NOW, NOW), Verdict::Fresh);
        assert_eq!(a.admit(&s, 5, NOW, NOW), Verdict::Stale);
        assert_eq!(a.admit(&s, 10, NOW, NOW), Verdict::Repeat);
        assert_eq!(a.admit(&s, 3, NOW, NOW), Verdict::Stale, "below the floor, never seen: still refused");
    }

    #[test]
    fn messages_outside_the_time_bounds_are_refused() {
        let mut a = Accepted::new(16, SKEW);
        let s = session(1);
        let too_old = Timestamp(NOW.0 - (MAX_MAILBOX_TTL + SKEW).as_millis() as u64 - 1);
        assert_eq!(a.admit(&s, 1, too_old, NOW), Verdict::Stale);
        let too_new = NOW.saturating_add(SKEW + Duration::from_millis(1));
        assert_eq!(a.admit(&s, 2, too_new, NOW), Verdict::Early);
        let oldest_ok = Timestamp(too_old.0 + 1);
        assert_eq!(a.admit(&s, 3, oldest_ok, NOW), Verdict::Fresh);
        assert_eq!(a.admit(&s, 4, NOW.saturating_add(SKEW), NOW), Verdict::Fresh);
    }

    #[test]
    fn a_flood_of_sessions_never_lets_an_evicted_sessions_message_in_again() {
        let mut a = Accepted::new(8, SKEW);
        let honest = session(200);
        let t0 = NOW;
        assert_eq!(a.admit(&honest, 1, t0, t0), Verdict::Fresh);
        // 20 attacker sessions, each a little later, push the honest row out.
        for n in 1..=20u8 {
            let t = Timestamp(t0.0 + u64::from(n));
            assert_eq!(a.admit(&session(n), 1, t, t), Verdict::Fresh);
        }
        assert_eq!(a.len(), 8);
        assert!(a.forgotten_before() >= t0);
        let later = Timestamp(t0.0 + 100);
        assert_eq!(a.admit(&honest, 1, t0, later), Verdict::Stale, "the replay is refused");
        // The cost: an honest message dated before the forgotten-before time, from a session the table
        // does not know, is refused too; one dated after it is accepted.
        assert_eq!(a.admit(&honest, 2, Timestamp(t0.0 + 5), later), Verdict::Stale);
        assert_eq!(a.admit(&honest, 3, later, later), Verdict::Fresh);
        // A row made after the time moved refuses what is dated before it, whatever its seq.
        assert_eq!(a.admit(&honest, 0, t0, later), Verdict::Stale);
    }

    #[test]
    fn rows_past_the_age_bound_are_evicted_first_and_cost_nothing() {
        let mut a = Accepted::new(2, SKEW);
        assert_eq!(a.admit(&session(1), 1, NOW, NOW), Verdict::Fresh);
        let later = NOW.saturating_add(MAX_MAILBOX_TTL + SKEW + Duration::from_secs(1));
        assert_eq!(a.admit(&session(2), 1, later, later), Verdict::Fresh);
        assert_eq!(a.admit(&session(3), 1, later, later), Verdict::Fresh);
        assert_eq!(a.forgotten_before(), Timestamp::ZERO);
    }

    #[test]
    fn the_table_survives_a_restart_through_its_store() {
        let store = Shared::default();
        let mut a = Accepted::new(4, SKEW);
        a.set_store(NOW, Box::new(store.clone()));
        let at = |n: u8| Timestamp(NOW.0 + u64::from(n));
        for n in 1..=6u8 {
            assert_eq!(a.admit(&session(n), 7, at(n), at(n)), Verdict::Fresh);
        }
        let before = a.forgotten_before();
        assert_eq!(before, at(2));
        let mut b = Accepted::new(4, SKEW);
        assert_eq!(b.set_store(at(6), Box::new(store.clone())), 0);
        assert_eq!(b.len(), 4);
        assert_eq!(b.forgotten_before(), before);
        for n in 1..=6u8 {
            assert_ne!(b.admit(&session(n), 7, at(n), at(6)), Verdict::Fresh, "session {n}");
        }
        assert_eq!(b.admit(&session(6), 8, at(6), at(6)), Verdict::Fresh);
        assert_eq!(store.0.lock().unwrap().rows.len(), 4);
    }

    #[test]
    fn an_unreadable_row_is_a_clean_refusal_of_what_came_before_not_a_panic() {
        let mut store = MemoryAcceptedStore::default();
        store.rows.insert(*session(1).as_bytes(), vec![9, 9, 9]);
        store.rows.insert(*session(2).as_bytes(), vec![]);
        let unsorted = SenderRow { floor: 0, seqs: vec![3, 2], ..SenderRow::default() };
        store.rows.insert(*session(3).as_bytes(), unsorted.encode());
        let shared = Shared(Arc::new(Mutex::new(store)));
        let mut a = Accepted::new(4, SKEW);
        assert_eq!(a.set_store(NOW, Box::new(shared.clone())), 3);
        assert_eq!(a.len(), 0);
        assert!(shared.0.lock().unwrap().rows.is_empty());
        assert_eq!(a.admit(&session(1), 1, NOW, NOW), Verdict::Stale);
        let after = NOW.saturating_add(SKEW + Duration::from_millis(1));
        assert_eq!(a.admit(&session(1), 2, after, after), Verdict::Fresh);
    }

    #[test]
    fn rows_round_trip_and_other_versions_are_refused() {
        let row = SenderRow { floor: 4, seqs: vec![5, 9], newest: NOW, since: Timestamp(3) };
        assert_eq!(SenderRow::decode(&row.encode()), Some(row.clone()));
        let mut other = row.encode();
        other[0] = 2;
        assert_eq!(SenderRow::decode(&other), None);
        let below = SenderRow { floor: 5, seqs: vec![5], ..row };
        assert_eq!(SenderRow::decode(&below.encode()), None);
    }

    #[test]
    fn the_senders_seq_grows_across_its_restarts() {
        let mut seq = 0;
        for _ in 0..3000 {
            seq = next_seq(seq, NOW);
        }
        // A restart at a later millisecond starts above everything sent before (3000 < 1024 × 10).
        let restarted = next_seq(0, Timestamp(NOW.0 + 10));
        assert!(restarted > seq);
    }
}
