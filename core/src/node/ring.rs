//! Pure ring bookkeeping: the successor list, the predecessor and the finger table, with no links or time.
//! The [`super::Node`] decides when to change them; these functions say what the change is.

use std::collections::BTreeMap;

use crate::id::{Id, ID_BITS};

/// Successor list, predecessor and fingers of one node.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    me: Id,
    r: usize,
    /// Nearest first, never contains `me`, no duplicates, at most `r`.
    successors: Vec<Id>,
    predecessor: Option<Id>,
    /// Finger slot `i` (target `me + 2^i`) → the node found to own that target.
    fingers: BTreeMap<u8, Id>,
    /// `fingers` as [`Ring::distinct_fingers`] lists them, kept in step on every change (changed by finger
    /// sweeps).
    distinct: Vec<(u8, Id)>,
    /// How many fingers the node keeps links to.
    max_fingers: usize,
    /// [`Ring::wanted_fingers`], kept in step with every change of the successors, the predecessor or the
    /// fingers (read for every link the policy looks at and every ping answered).
    wanted: Vec<Id>,
}

impl Ring {
    /// The ring of `me`, with `r` successors and links to `max_fingers` fingers.
    pub(crate) fn new(me: Id, r: usize, max_fingers: usize) -> Self {
        Ring {
            me,
            r,
            successors: Vec::new(),
            predecessor: None,
            fingers: BTreeMap::new(),
            distinct: Vec::new(),
            max_fingers,
            wanted: Vec::new(),
        }
    }

    pub(crate) fn me(&self) -> Id {
        self.me
    }

    pub(crate) fn successors(&self) -> &[Id] {
        &self.successors
    }

    pub(crate) fn predecessor(&self) -> Option<Id> {
        self.predecessor
    }

    /// Zave's "adopt the successor's list": `[succ] ++ its list`, trimmed to r, without me or repeats.
    /// Entries are kept in ring order from me so a stale list cannot put a far node before a near one.
    pub(crate) fn adopt_list(&mut self, succ: Id, theirs: &[Id]) {
        let mut list = Vec::with_capacity(self.r);
        for id in std::iter::once(&succ).chain(theirs) {
            if *id != self.me && !list.contains(id) && list.len() < self.r {
                list.push(*id);
            }
        }
        let me = self.me;
        list.sort_by(|a, b| me.cmp_clockwise(*a, *b));
        if list != self.successors {
            self.successors = list;
            self.refresh_wanted();
        }
    }

    /// A new nearest successor (from stabilize, join or a notify) — prepended if it is nearer than the
    /// current first one.
    pub(crate) fn offer_successor(&mut self, id: Id) -> bool {
        if id == self.me || self.successors.contains(&id) {
            return false;
        }
        let nearer = match self.successors.first() {
            None => true,
            Some(first) => id.in_open(self.me, *first),
        };
        if nearer {
            self.successors.insert(0, id);
            self.successors.truncate(self.r);
            self.refresh_wanted();
        }
        nearer
    }

    /// Removes a node that is dead or left. Returns whether anything changed.
    pub(crate) fn remove(&mut self, id: Id) -> bool {
        let before = self.successors.len();
        self.successors.retain(|s| *s != id);
        let mut changed = before != self.successors.len();
        if self.predecessor == Some(id) {
            self.predecessor = None;
            changed = true;
        }
        let slots: Vec<u8> = self.fingers.iter().filter(|(_, f)| **f == id).map(|(i, _)| *i).collect();
        for i in &slots {
            self.fingers.remove(i);
        }
        if !slots.is_empty() {
            self.refresh_distinct();
        } else if changed {
            self.refresh_wanted();
        }
        changed
    }

    /// Zave's notify/rectify: adopt `candidate` as predecessor if there is none or it lies between the
    /// current one and me.
    pub(crate) fn notified(&mut self, candidate: Id) -> bool {
        if candidate == self.me {
            return false;
        }
        let adopt = match self.predecessor {
            None => true,
            Some(p) => candidate.in_open(p, self.me),
        };
        if adopt {
            self.predecessor = Some(candidate);
            self.refresh_wanted();
        }
        adopt
    }

    pub(crate) fn set_predecessor(&mut self, p: Option<Id>) {
        let p = p.filter(|p| *p != self.me);
        if p != self.predecessor {
            self.predecessor = p;
            self.refresh_wanted();
        }
    }

    /// Whether `key` is mine: `key ∈ (predecessor, me]`. Unknown predecessor → unknown (`None`).
    pub(crate) fn owns(&self, key: Id) -> Option<bool> {
        if key == self.me {
            return Some(true);
        }
        self.predecessor.map(|p| key.in_half_open(p, self.me))
    }

    /// The first finger slot whose target lies beyond the successor list (lower slots point at
    /// successors). With no successors every slot is open.
    pub(crate) fn first_open_slot(&self) -> usize {
        match self.successors.last() {
            None => 0,
            Some(last) => self.me.distance_to(*last).log2().map_or(0, |b| b + 1),
        }
    }

    /// Records that the target of slot `i` is owned by `owner`; returns the next slot worth looking up
    /// (every slot whose target falls in `(me, owner]` is owner too), or `None` once the sweep is done.
    pub(crate) fn set_finger(&mut self, i: usize, owner: Id) -> Option<usize> {
        if owner == self.me {
            if self.fingers.remove(&(i as u8)).is_some() {
                self.refresh_distinct();
            }
            return None;
        }
        // Drop slots this answer supersedes.
        let dist = self.me.distance_to(owner);
        let next = dist.log2().map_or(0, |b| b + 1).max(i + 1);
        let stale: Vec<u8> =
            self.fingers.range(i as u8..).map(|(s, _)| *s).filter(|s| (*s as usize) < next).collect();
        for s in stale {
            self.fingers.remove(&s);
        }
        self.fingers.insert(i as u8, owner);
        self.refresh_distinct();
        (next < ID_BITS).then_some(next)
    }

    /// Distinct fingers, farthest first, with the lowest slot each fills.
    pub(crate) fn distinct_fingers(&self) -> &[(u8, Id)] {
        &self.distinct
    }

    fn refresh_distinct(&mut self) {
        let mut out: Vec<(u8, Id)> = Vec::new();
        for (slot, id) in self.fingers.iter().rev() {
            if let Some(existing) = out.iter_mut().find(|(_, f)| f == id) {
                existing.0 = *slot;
            } else {
                out.push((*slot, *id));
            }
        }
        self.distinct = out;
        self.refresh_wanted();
    }

    /// The fingers the node wants links to: the farthest `max_fingers` distinct ones that are not ring
    /// neighbours (successors or the predecessor).
    pub(crate) fn wanted_fingers(&self) -> &[Id] {
        &self.wanted
    }

    fn refresh_wanted(&mut self) {
        let (successors, predecessor) = (&self.successors, self.predecessor);
        let wanted = self
            .distinct
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| !successors.contains(id) && predecessor != Some(*id))
            .take(self.max_fingers);
        self.wanted.clear();
        self.wanted.extend(wanted);
    }

    pub(crate) fn is_finger(&self, id: Id) -> bool {
        self.distinct.iter().any(|(_, f)| *f == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Id {
        let mut b = [0u8; 20];
        b[12..].copy_from_slice(&n.to_be_bytes());
        Id(b)
    }

    #[test]
    fn adopt_list_orders_and_trims() {
        let mut ring = Ring::new(id(10), 3, 12);
        ring.adopt_list(id(20), &[id(30), id(10), id(25), id(40)]);
        assert_eq!(ring.successors(), &[id(20), id(25), id(30)]);
        assert!(ring.offer_successor(id(15)));
        assert_eq!(ring.successors(), &[id(15), id(20), id(25)]);
        assert!(!ring.offer_successor(id(50)));
        assert!(ring.remove(id(20)));
        assert_eq!(ring.successors(), &[id(15), id(25)]);
    }

    #[test]
    fn notify_adopts_only_between() {
        let mut ring = Ring::new(id(100), 4, 12);
        assert!(ring.notified(id(50)));
        assert!(ring.notified(id(70)));
        assert!(!ring.notified(id(60)));
        assert_eq!(ring.owns(id(80)), Some(true));
        assert_eq!(ring.owns(id(70)), Some(false));
        assert_eq!(ring.owns(id(101)), Some(false));
    }

    #[test]
    fn finger_sweep_skips_covered_slots() {
        let mut ring = Ring::new(Id::ZERO, 2, 12);
        ring.adopt_list(id(3), &[id(6)]);
        assert_eq!(ring.first_open_slot(), 3);
        // The owner of slot 3 (target 8) is node 40 → slots up to 5 (target 32) are node 40 too.
        assert_eq!(ring.set_finger(3, id(40)), Some(6));
        assert_eq!(ring.set_finger(6, id(200)), Some(8));
        assert_eq!(ring.distinct_fingers(), vec![(6, id(200)), (3, id(40))]);
    }
}
