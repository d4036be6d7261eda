//! What a relay remembers of the frames it passed on: the ids it saw in the last `memory`, at most
//! `capacity` of them, the oldest forgotten first when there is no room.
//!
//! A relay needs an id only to drop a second copy that comes back within seconds: the previous hop
//! re-sending a frame whose acknowledgement was late, or a frame that went round a loop while the ring
//! changed. Replay protection is the destination's job ([`ReplayWindow`](super::replay::ReplayWindow), which
//! keeps an accepted id for as long as a copy could be accepted and refuses rather than forgets). So this
//! memory is short, and full means "forget the oldest", never "refuse": junk ids from a flooding peer can
//! only make a relay pass on a duplicate that the destination then drops, never make it refuse honest
//! frames.
//!
//! Storage: a hash map from id to when it was seen, and the same ids in the order they were seen (a map
//! entry is removed with the last order entry of its id).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::time::Timestamp;

/// Ids seen recently, bounded in time and count. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct RecentIds {
    capacity: usize,
    memory: Duration,
    seen: HashMap<[u8; 16], Timestamp>,
    order: VecDeque<([u8; 16], Timestamp)>,
}

impl RecentIds {
    /// An empty memory of at most `capacity` ids, each kept for `memory` after it was last seen.
    pub fn new(capacity: usize, memory: Duration) -> Self {
        assert!(capacity > 0, "a memory of no ids");
        RecentIds { capacity, memory, seen: HashMap::new(), order: VecDeque::new() }
    }

    /// Remembers `id` as seen at `now`; says whether it was new (not seen within the last `memory`).
    pub fn insert(&mut self, id: [u8; 16], now: Timestamp) -> bool {
        self.forget_until(now.saturating_sub(self.memory));
        let new = match self.seen.entry(id) {
            Entry::Occupied(mut e) => {
                e.insert(now);
                false
            }
            Entry::Vacant(e) => {
                e.insert(now);
                true
            }
        };
        self.order.push_back((id, now));
        while self.order.len() > self.capacity {
            self.pop_oldest();
        }
        new
    }

    /// Whether `id` was seen within the last `memory` before `now`. Changes nothing.
    pub fn contains(&self, id: &[u8; 16], now: Timestamp) -> bool {
        self.seen.get(id).is_some_and(|at| now.since(*at) <= self.memory)
    }

    /// The number of ids remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets what was seen before `cutoff`.
    fn forget_until(&mut self, cutoff: Timestamp) {
        while self.order.front().is_some_and(|(_, at)| *at < cutoff) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((id, at)) = self.order.pop_front() {
            // Seen again later: a later order entry keeps it.
            if self.seen.get(&id) == Some(&at) {
                self.seen.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; 16] {
        [n; 16]
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp(1_000_000 + ms)
    }

    #[test]
    fn a_second_copy_within_the_memory_is_not_new() {
        let mut r = RecentIds::new(8, Duration::from_secs(30));
        assert!(r.insert(id(1), at(0)));
        assert!(!r.insert(id(1), at(29_000)));
        assert!(r.contains(&id(1), at(30_000)));
    }

    #[test]
    fn ids_are_forgotten_after_the_memory() {
        let mut r = RecentIds::new(8, Duration::from_secs(30));
        assert!(r.insert(id(1), at(0)));
        assert!(!r.contains(&id(1), at(30_001)));
        assert!(r.insert(id(1), at(30_001)), "forgotten, so new again");
        assert!(r.insert(id(2), at(61_000)));
        assert_eq!(r.len(), 1, "the expired id left the map when the next one came");
    }

    #[test]
    fn seen_again_keeps_an_id_from_its_last_sighting() {
        let mut r = RecentIds::new(8, Duration::from_secs(30));
        r.insert(id(1), at(0));
        r.insert(id(1), at(20_000));
        // The first order entry goes at 30 s, but the id was seen again at 20 s.
        r.insert(id(2), at(40_000));
        assert!(r.contains(&id(1), at(40_000)));
        assert!(!r.insert(id(1), at(45_000)));
    }

    #[test]
    fn a_full_memory_forgets_the_oldest_and_never_refuses() {
        let mut r = RecentIds::new(4, Duration::from_secs(30));
        for n in 0..100u8 {
            assert!(r.insert(id(n), at(u64::from(n))), "id {n} is new");
        }
        assert_eq!(r.len(), 4);
        assert!(r.contains(&id(99), at(100)));
        assert!(!r.contains(&id(95), at(100)), "the oldest went first");
    }
}
