//! Every deadline of the node, in two shapes (after quinn's `connection/timer.rs`):
//!
//! - [`TimerTable`]: one slot per [`Timer`], the node's periodic and one-shot timers.
//! - [`Timed`]: a map of requests (lookups, frames in flight, app operations) indexed by deadline, so the
//!   next deadline is the first entry of an ordered set instead of a scan of every request, and the due ones
//!   are found without visiting the rest.
//!
//! [`super::Node::poll_timeout`] is the earliest of the table and of every [`Timed`] map; nothing else makes
//! the node want to be called.

use std::collections::{BTreeMap, BTreeSet};

use crate::time::Timestamp;

/// The node's own timers. Each fires when its slot's time has come; `None` means not armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Link upkeep every `ping_interval / 2`: pings, liveness and setup deadlines, idle closes.
    Maintain,
    /// Stabilize and one step of a finger sweep in progress, every `stabilize_interval`.
    Stabilize,
    /// Record placement (replication to successors that changed), every two stabilize intervals.
    Records,
    /// Re-homing: every record is offered to its owner and replicas again, every `REHOME_INTERVAL`.
    Rehome,
    /// Ask a bootstrap server's ring who our successor should be (`merge_interval` ± half).
    Merge,
    /// A node with no link left (its bootstrap failed, or every link died) tries a server again, with a
    /// growing pause. Armed when the last link goes.
    Rejoin,
    /// Start the next finger sweep (`finger_refresh_interval` after the last one started).
    FingerSweep,
    /// Publish (or refresh) this session's presence record. Armed once joined.
    Presence,
    /// The leave grace is over: close every link and report [`crate::node::Event::Left`].
    Leave,
    /// A link's held-back acknowledgement of routed frames is due (the earliest of them; `router.rs`).
    Acks,
    /// A session's held-back receipt is due (the earliest of them; `in_session.rs`).
    Receipts,
}

impl Timer {
    const COUNT: usize = 11;

    const fn index(self) -> usize {
        match self {
            Timer::Maintain => 0,
            Timer::Stabilize => 1,
            Timer::Records => 2,
            Timer::Rehome => 3,
            Timer::Merge => 4,
            Timer::Rejoin => 5,
            Timer::FingerSweep => 6,
            Timer::Presence => 7,
            Timer::Leave => 8,
            Timer::Acks => 9,
            Timer::Receipts => 10,
        }
    }
}

/// One optional deadline per [`Timer`].
#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable {
    slots: [Option<Timestamp>; Timer::COUNT],
}

impl TimerTable {
    /// Arms `timer` for `at` (replacing any earlier setting).
    pub(crate) fn set(&mut self, timer: Timer, at: Timestamp) {
        self.slots[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.slots[timer.index()] = None;
    }

    /// When `timer` fires, if armed.
    pub(crate) fn get(&self, timer: Timer) -> Option<Timestamp> {
        self.slots[timer.index()]
    }

    /// Whether `timer` is armed and its time has come.
    pub(crate) fn is_due(&self, timer: Timer, now: Timestamp) -> bool {
        self.get(timer).is_some_and(|at| at <= now)
    }

    /// The earliest armed deadline.
    pub(crate) fn earliest(&self) -> Option<Timestamp> {
        self.slots.iter().flatten().min().copied()
    }
}

/// Something with a deadline, kept in a [`Timed`] map.
pub(crate) trait Deadline {
    /// When the entry next needs attention.
    fn deadline(&self) -> Timestamp;
}

/// A map whose entries are also ordered by deadline. Entries change only through [`Timed::update`], which
/// keeps the two in step.
#[derive(Debug)]
pub(crate) struct Timed<K, V> {
    items: BTreeMap<K, V>,
    by_deadline: BTreeSet<(Timestamp, K)>,
}

impl<K, V> Default for Timed<K, V> {
    fn default() -> Self {
        Timed { items: BTreeMap::new(), by_deadline: BTreeSet::new() }
    }
}

impl<K: Ord + Copy, V: Deadline> Timed<K, V> {
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.items.get(key)
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.items.keys()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.items.values()
    }

    /// Inserts or replaces; returns the replaced entry.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.by_deadline.insert((value.deadline(), key));
        let old = self.items.insert(key, value);
        if let Some(old) = &old {
            if old.deadline() != self.items[&key].deadline() {
                self.by_deadline.remove(&(old.deadline(), key));
            }
        }
        old
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let value = self.items.remove(key)?;
        self.by_deadline.remove(&(value.deadline(), *key));
        Some(value)
    }

    /// Changes an entry in place (and its place in the deadline order).
    pub(crate) fn update<R>(&mut self, key: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let value = self.items.get_mut(key)?;
        let before = value.deadline();
        let result = f(value);
        let after = value.deadline();
        if before != after {
            self.by_deadline.remove(&(before, *key));
            self.by_deadline.insert((after, *key));
        }
        Some(result)
    }

    /// The earliest deadline of any entry.
    pub(crate) fn earliest(&self) -> Option<Timestamp> {
        self.by_deadline.first().map(|(at, _)| *at)
    }

    /// The keys whose deadline has come, in key order (the order a scan of the map visits them).
    pub(crate) fn due(&self, now: Timestamp) -> Vec<K> {
        let mut due: Vec<K> =
            self.by_deadline.iter().take_while(|(at, _)| *at <= now).map(|(_, k)| *k).collect();
        due.sort_unstable();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Item(u64);
    impl Deadline for Item {
        fn deadline(&self) -> Timestamp {
            Timestamp(self.0)
        }
    }

    #[test]
    fn the_table_reports_its_earliest_armed_timer() {
        let mut t = TimerTable::default();
        assert_eq!(t.earliest(), None);
        t.set(Timer::Stabilize, Timestamp(30));
        t.set(Timer::Maintain, Timestamp(20));
        assert_eq!(t.earliest(), Some(Timestamp(20)));
        assert!(t.is_due(Timer::Maintain, Timestamp(20)) && !t.is_due(Timer::Stabilize, Timestamp(20)));
        t.stop(Timer::Maintain);
        assert_eq!((t.get(Timer::Maintain), t.earliest()), (None, Some(Timestamp(30))));
    }

    #[test]
    fn timed_entries_stay_in_deadline_order_through_updates() {
        let mut m: Timed<u32, Item> = Timed::default();
        m.insert(3, Item(50));
        m.insert(1, Item(70));
        m.insert(2, Item(10));
        assert_eq!(m.earliest(), Some(Timestamp(10)));
        m.update(&2, |i| i.0 = 90);
        assert_eq!(m.earliest(), Some(Timestamp(50)));
        // Due keys come in key order, not deadline order.
        m.update(&1, |i| i.0 = 40);
        assert_eq!(m.due(Timestamp(60)), vec![1, 3]);
        assert_eq!(m.insert(3, Item(95)), Some(Item(50)));
        assert_eq!(m.due(Timestamp(60)), vec![1]);
        assert_eq!(m.remove(&1), Some(Item(40)));
        assert_eq!((m.earliest(), m.len()), (Some(Timestamp(90)), 2));
        assert_eq!(m.due(Timestamp(100)), vec![2, 3]);
    }
}
