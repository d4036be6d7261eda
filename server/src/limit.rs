//! Rate limits for `POST /v1/signal`: a token bucket per key (a client address, a wallet) in a table of
//! bounded size.
//!
//! Each key may spend `burst` requests at once and gets `per_minute` back each minute. The table holds at
//! most `capacity` keys; when a new key arrives at a full table, the key seen least recently is forgotten
//! (it starts again with a full bucket when it returns). So the table cannot itself be filled as a memory
//! attack, and forgetting costs at most one burst to whoever is forgotten — an attacker who controls more
//! addresses than `capacity` can spend that much per address anyway.
//!
//! Time is an argument ([`Instant`], from [`clock::monotonic`](crate::clock::monotonic)).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One limit: how many requests a key may make at once, and how fast it earns them back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests a fresh key may make at once (the bucket's size); at least 1.
    pub burst: u32,
    /// Requests earned back per minute; at least 1.
    pub per_minute: u32,
}

impl Rate {
    /// The time it takes to earn one request back.
    fn interval(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// The instant at which the bucket is full again; the bucket holds
    /// `burst − ceil((full_at − now) / interval)` tokens at `now` (the "virtual scheduling" form of a
    /// token bucket: one instant per key instead of a count and a time).
    full_at: Instant,
    /// When the key was last seen (its place in `by_age`).
    seen: Instant,
    /// A tie-breaker so that `by_age` keys are unique.
    seq: u64,
}

/// Token buckets per key, at most `capacity` of them. See the [module docs](self).
#[derive(Debug)]
pub struct RateTable<K> {
    rate: Rate,
    capacity: usize,
    buckets: HashMap<K, Bucket>,
    /// The keys by when they were last seen, oldest first: which one to forget.
    by_age: BTreeMap<(Instant, u64), K>,
    next_seq: u64,
}

impl<K: Hash + Eq + Clone> RateTable<K> {
    /// An empty table for `rate`, remembering at most `capacity` keys (at least 1).
    pub fn new(rate: Rate, capacity: usize) -> Self {
        RateTable {
            rate: Rate { burst: rate.burst.max(1), per_minute: rate.per_minute.max(1) },
            capacity: capacity.max(1),
            buckets: HashMap::new(),
            by_age: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// Spends one request of `key` at `now`: `Ok` if it had one, else `Err(wait)`, the time until it has
    /// one again (what `Retry-After` says). A refused request spends nothing.
    pub fn check(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        let interval = self.rate.interval();
        let window = interval * self.rate.burst;
        let seq = self.next_seq;
        self.next_seq += 1;
        let bucket = match self.buckets.get_mut(key) {
            Some(b) => {
                self.by_age.remove(&(b.seen, b.seq));
                b
            }
            None => {
                if self.buckets.len() >= self.capacity {
                    if let Some((_, oldest)) = self.by_age.pop_first() {
                        self.buckets.remove(&oldest);
                    }
                }
                self.buckets.entry(key.clone()).or_insert(Bucket { full_at: now, seen: now, seq })
            }
        };
        bucket.seen = now;
        bucket.seq = seq;
        self.by_age.insert((now, seq), key.clone());
        // Spending one request moves `full_at` one interval later; refused if that passes the window.
        let start = bucket.full_at.max(now);
        let after = start + interval;
        if after > now + window {
            return Err(after - (now + window));
        }
        bucket.full_at = after;
        Ok(())
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// The key a client address is limited by: an IPv4 address, or the /64 an IPv6 address lies in (one host
/// usually holds a whole /64, so per-address limits on IPv6 would be no limit). An IPv4-mapped IPv6
/// address counts as its IPv4 address.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::V6(o.into())
            }
        },
    }
}

/// Rounds a wait up to whole seconds, at least 1 (`Retry-After` counts seconds; 0 would invite an
/// immediate retry that is refused again).
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(burst: u32, per_minute: u32) -> Rate {
        Rate { burst, per_minute }
    }

    #[test]
    fn a_key_spends_its_burst_then_earns_requests_back_at_its_rate() {
        let t0 = crate::clock::monotonic();
        let mut table = RateTable::new(rate(3, 60), 16);
        for _ in 0..3 {
            assert_eq!(table.check(&1, t0), Ok(()));
        }
        // The fourth waits one interval (1 s at 60 a minute).
        assert_eq!(table.check(&1, t0), Err(Duration::from_secs(1)));
        // A refusal spends nothing: still one second, not two.
        assert_eq!(table.check(&1, t0), Err(Duration::from_secs(1)));
        assert_eq!(table.check(&1, t0 + Duration::from_millis(400)), Err(Duration::from_millis(600)));
        assert_eq!(table.check(&1, t0 + Duration::from_secs(1)), Ok(()));
        assert!(table.check(&1, t0 + Duration::from_secs(1)).is_err());
        // Other keys are not touched.
        assert_eq!(table.check(&2, t0), Ok(()));
        // Idle long enough, the whole burst is back (and no more).
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(table.check(&1, later), Ok(()));
        }
        assert!(table.check(&1, later).is_err());
    }

    #[test]
    fn the_table_forgets_the_key_seen_least_recently_and_never_grows_past_its_capacity() {
        let t0 = crate::clock::monotonic();
        let mut table = RateTable::new(rate(1, 1), 4);
        for k in 0..4 {
            assert_eq!(table.check(&k, t0 + Duration::from_millis(k)), Ok(()));
        }
        // Key 0 is seen again (refused), so key 1 is now the oldest.
        assert!(table.check(&0, t0 + Duration::from_millis(10)).is_err());
        for k in 100..10_100u64 {
            let _ = table.check(&k, t0 + Duration::from_millis(20));
            assert!(table.len() <= 4);
        }
        assert_eq!(table.len(), 4);
        // Forgotten keys start again with a full bucket.
        assert_eq!(table.check(&0, t0 + Duration::from_millis(30)), Ok(()));
        assert_eq!(table.by_age.len(), table.buckets.len());
    }

    #[test]
    fn ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
