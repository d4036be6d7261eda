//! The world's event queue: events come out in (time, insertion sequence) order, exactly as from a binary heap
//! keyed by `(time, seq)`, at O(1) per event.
//!
//! ```text
//!   push(at) ──at < base + WHEEL──▶ wheel: one FIFO per millisecond of [base, base + WHEEL)
//!            └─otherwise─────────▶ far: a heap by (at, seq), moved into the wheel as `at` enters the window
//! ```
//!
//! All events of one wheel slot have the same time, so the slot's insertion order is their sequence order.
//! An event from the far heap enters its slot as soon as its time comes into the window, that is before
//! anything else can be pushed at that time (a push lands in the wheel only once its time is in the window),
//! so it goes ahead of every later push, as its smaller sequence number says. The events themselves live in
//! one slab, chained per slot, so a slot costs two indices and a bit whether it is used or not.
//!
//! The queue's `base` (the earliest time that may hold an event) must never pass the world's clock, since the
//! world may push an event at "now": it moves only to the time of a popped event, or to a time the caller
//! is about to set its clock to ([`EventQueue::advance_to`]).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use chordial_core::Timestamp;

/// Milliseconds covered by the wheel. Nearly every delay the simulator schedules (frames, link setup,
/// node timers, consent checks, the 10 s HTTP and answer timeouts) is shorter; the rest goes to the heap.
const WHEEL: usize = 1 << 14;
const MASK: u64 = WHEEL as u64 - 1;
const WORDS: usize = WHEEL / 64;
/// No slab entry.
const NIL: u32 = u32::MAX;

struct Entry<E> {
    ev: Option<E>,
    /// The next entry of the same slot, or of the free list.
    next: u32,
}

struct Far<E> {
    at: u64,
    seq: u64,
    ev: E,
}

impl<E> PartialEq for Far<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Far<E> {}
impl<E> PartialOrd for Far<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Far<E> {
    /// Reversed, so the max-heap pops the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Events in (time, insertion order).
pub(crate) struct EventQueue<E> {
    /// The earliest time that may hold an event; the wheel covers `[base, base + WHEEL)`.
    base: u64,
    /// Insertions so far (the far heap's tie-breaker).
    seq: u64,
    slab: Vec<Entry<E>>,
    free: u32,
    /// First and last entry of each slot (slot = time mod WHEEL).
    heads: Box<[u32]>,
    tails: Box<[u32]>,
    /// Which slots hold an entry.
    used: Box<[u64]>,
    in_wheel: usize,
    far: BinaryHeap<Far<E>>,
}

impl<E> EventQueue<E> {
    /// An empty queue whose clock starts at `start`.
    pub(crate) fn new(start: Timestamp) -> Self {
        EventQueue {
            base: start.0,
            seq: 0,
            slab: Vec::new(),
            free: NIL,
            heads: vec![NIL; WHEEL].into_boxed_slice(),
            tails: vec![NIL; WHEEL].into_boxed_slice(),
            used: vec![0; WORDS].into_boxed_slice(),
            in_wheel: 0,
            far: BinaryHeap::new(),
        }
    }

    /// Events waiting.
    pub(crate) fn len(&self) -> usize {
        self.in_wheel + self.far.len()
    }

    /// Schedules `ev` at `at`, after every event already scheduled at `at`. `at` must not be before the
    /// time of the last popped event (nor before a time given to [`EventQueue::advance_to`]).
    pub(crate) fn push(&mut self, at: Timestamp, ev: E) {
        let at = at.0;
        assert!(at >= self.base, "an event scheduled in the past ({at} < {})", self.base);
        self.seq += 1;
        if at - self.base < WHEEL as u64 {
            self.push_wheel(at, ev);
        } else {
            self.far.push(Far { at, seq: self.seq, ev });
        }
    }

    /// The earliest event, if its time is at most `t`.
    pub(crate) fn pop_until(&mut self, t: Timestamp) -> Option<(Timestamp, E)> {
        loop {
            if self.in_wheel > 0 {
                let at = self.first_used();
                if at > t.0 {
                    return None;
                }
                self.advance(at);
                return Some((Timestamp(at), self.pop_slot(at)));
            }
            let at = self.far.peek()?.at;
            if at > t.0 {
                return None;
            }
            self.advance(at); // brings that time's events into the wheel
        }
    }

    /// The earliest event.
    pub(crate) fn pop(&mut self) -> Option<(Timestamp, E)> {
        self.pop_until(Timestamp(u64::MAX))
    }

    /// Moves the queue's clock to `t` (no event may be waiting before `t`), so that pushes up to
    /// `t + WHEEL` go to the wheel. The caller's clock must be at least `t` from now on.
    pub(crate) fn advance_to(&mut self, t: Timestamp) {
        if t.0 > self.base {
            debug_assert!(self.in_wheel == 0 || self.first_used() >= t.0, "advance past a waiting event");
            debug_assert!(self.far.peek().is_none_or(|f| f.at >= t.0), "advance past a waiting event");
            self.advance(t.0);
        }
    }

    fn advance(&mut self, to: u64) {
        if to <= self.base {
            return;
        }
        self.base = to;
        let end = to.saturating_add(WHEEL as u64);
        while self.far.peek().is_some_and(|f| f.at < end) {
            let Some(f) = self.far.pop() else { break };
            self.push_wheel(f.at, f.ev);
        }
    }

    fn push_wheel(&mut self, at: u64, ev: E) {
        let k = if self.free == NIL {
            self.slab.push(Entry { ev: Some(ev), next: NIL });
            u32::try_from(self.slab.len() - 1).expect("fewer than 4 billion events waiting")
        } else {
            let k = self.free;
            let e = &mut self.slab[k as usize];
            self.free = e.next;
            e.ev = Some(ev);
            e.next = NIL;
            k
        };
        let slot = (at & MASK) as usize;
        match self.tails[slot] {
            NIL => {
                self.heads[slot] = k;
                self.used[slot / 64] |= 1 << (slot % 64);
            }
            tail => self.slab[tail as usize].next = k,
        }
        self.tails[slot] = k;
        self.in_wheel += 1;
    }

    fn pop_slot(&mut self, at: u64) -> E {
        let slot = (at & MASK) as usize;
        let k = self.heads[slot];
        let e = &mut self.slab[k as usize];
        let ev = e.ev.take().expect("a used slot has an entry");
        self.heads[slot] = e.next;
        e.next = self.free;
        self.free = k;
        if self.heads[slot] == NIL {
            self.tails[slot] = NIL;
            self.used[slot / 64] &= !(1 << (slot % 64));
        }
        self.in_wheel -= 1;
        ev
    }

    /// The time of the earliest used slot (the wheel must not be empty).
    fn first_used(&self) -> u64 {
        let start = (self.base & MASK) as usize;
        let (w0, b0) = (start / 64, start % 64);
        let first = self.used[w0] & (u64::MAX << b0);
        let slot = if first != 0 {
            w0 * 64 + first.trailing_zeros() as usize
        } else {
            let later =
                (w0 + 1..WORDS).chain(0..=w0).find(|&w| self.used[w] != 0).expect("the wheel is not empty");
            later * 64 + self.used[later].trailing_zeros() as usize
        };
        self.base + ((slot as u64).wrapping_sub(self.base) & MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    /// The queue this one replaced: a binary heap by (time, seq).
    struct Reference {
        heap: BinaryHeap<Far<u64>>,
        seq: u64,
    }

    impl Reference {
        fn push(&mut self, at: u64, ev: u64) {
            self.seq += 1;
            self.heap.push(Far { at, seq: self.seq, ev });
        }

        fn pop_until(&mut self, t: u64) -> Option<(u64, u64)> {
            if self.heap.peek()?.at > t {
                return None;
            }
            self.heap.pop().map(|f| (f.at, f.ev))
        }
    }

    /// Random pushes (at now, near, at the wheel's edge, far), bounded and unbounded pops and clock jumps,
    /// as the world makes them: the same events in the same order as the heap.
    #[test]
    fn same_order_as_a_heap_by_time_and_seq() {
        for seed in 0..40 {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let start = 1_800_000_000_000u64;
            let mut q = EventQueue::new(Timestamp(start));
            let mut r = Reference { heap: BinaryHeap::new(), seq: 0 };
            let mut now = start;
            let mut id = 0u64;
            for _ in 0..20_000 {
                match rng.next_u64() % 10 {
                    0..=4 => {
                        let d = match rng.next_u64() % 8 {
                            0 => 0,
                            1 => rng.next_u64() % 4,
                            2..=4 => rng.next_u64() % 300,
                            5 => WHEEL as u64 - 2 + rng.next_u64() % 4,
                            6 => rng.next_u64() % (3 * WHEEL as u64),
                            _ => rng.next_u64() % 20_000,
                        };
                        id += 1;
                        q.push(Timestamp(now + d), id);
                        r.push(now + d, id);
                    }
                    5..=7 => {
                        let got = q.pop();
                        assert_eq!(got.map(|(t, e)| (t.0, e)), r.pop_until(u64::MAX), "seed {seed}");
                        if let Some((t, _)) = got {
                            now = now.max(t.0);
                        }
                    }
                    _ => {
                        // run_until(t): pop every event up to t, then the clock is t.
                        let t = now + rng.next_u64() % (2 * WHEEL as u64);
                        loop {
                            let got = q.pop_until(Timestamp(t)).map(|(t, e)| (t.0, e));
                            assert_eq!(got, r.pop_until(t), "seed {seed}");
                            let Some((at, _)) = got else { break };
                            now = now.max(at);
                        }
                        q.advance_to(Timestamp(t));
                        now = now.max(t);
                    }
                }
                assert_eq!(q.len(), r.heap.len());
            }
            while let Some((t, e)) = q.pop() {
                assert_eq!(Some((t.0, e)), r.pop_until(u64::MAX));
            }
            assert!(r.heap.is_empty());
        }
    }
}
