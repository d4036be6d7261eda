//! Invariant checkers over a snapshot of the ring: Zave's properties of correct Chord, "exactly right"
//! successor lists and predecessors, and the link budget.
//!
//! The checkers work on a [`RingView`] — plain data, no nodes — so they can be unit-tested on hand-made rings
//! and run on any [`crate::world::World`] with [`crate::world::World::ring_view`].
//!
//! Terms (after Zave, "Reasoning about identifier spaces: How to make Chord correct", arXiv 1502.06461):
//! - a **member** is a node that is alive, not leaving, and has joined (it has a successor list);
//! - an entry of a successor list is **live** when it names a member;
//! - a member's **best successor** is the first live entry of its successor list;
//! - a **ring** is a cycle of the best-successor graph; a member on no ring is an **appendage**.
//!
//! Properties:
//! - [`Property::AtLeastOneRing`]: the best-successor graph has a cycle;
//! - [`Property::AtMostOneRing`]: it has no more than one;
//! - [`Property::OrderedRing`]: following the ring visits its members in identifier order, going round the
//!   circle exactly once (equivalently: no ring member lies between a ring member and its best successor);
//! - [`Property::ConnectedAppendages`]: from every appendage, best successors lead to the ring;
//! - [`Property::ValidSuccessorList`]: every member's list is non-empty, at most `r` long, free of duplicates
//!   and of the member itself, strictly ordered clockwise from the member, and has a live entry;
//! - [`Property::ExactSuccessors`]: every member's list is the ideal one — the next `min(r, M − 1)` members
//!   clockwise;
//! - [`Property::ExactPredecessor`]: every member's predecessor is the previous member clockwise;
//! - [`Property::LinkBudget`]: no node has more links (open + opening) than its configured cap.
//!
//! The first five are the safety properties Correct Chord keeps at all times (within its failure model);
//! the exact ones are what "converged" means; the budget must hold always.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chordial_core::Id;

/// What the checkers need to know about one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// The node's index in the world.
    pub index: usize,
    /// The node's id.
    pub id: Id,
    /// Its successor list, nearest first.
    pub successors: Vec<Id>,
    /// Its predecessor.
    pub predecessor: Option<Id>,
    /// Links open or opening.
    pub link_count: usize,
    /// The most links its configuration allows.
    pub link_cap: usize,
}

/// A snapshot of the members of the ring.
#[derive(Clone, Debug, Default)]
pub struct RingView {
    /// Successor-list length `r` the nodes are configured with.
    pub r: usize,
    /// The members, by id.
    pub members: BTreeMap<Id, NodeView>,
    /// Nodes that are alive but not members (joining or leaving): only the link budget applies to them.
    pub others: Vec<NodeView>,
}

/// One checked property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// The best-successor graph has a cycle.
    AtLeastOneRing,
    /// The best-successor graph has at most one cycle.
    AtMostOneRing,
    /// The ring goes round the identifier circle exactly once, in order.
    OrderedRing,
    /// Every appendage reaches the ring.
    ConnectedAppendages,
    /// Every successor list is well-formed and has a live entry.
    ValidSuccessorList,
    /// Every successor list is the ideal one.
    ExactSuccessors,
    /// Every predecessor is the ideal one.
    ExactPredecessor,
    /// No node exceeds its link cap.
    LinkBudget,
}

impl Property {
    /// Zave's safety properties (hold at all times within the failure model).
    pub const ZAVE: [Property; 5] = [
        Property::AtLeastOneRing,
        Property::AtMostOneRing,
        Property::OrderedRing,
        Property::ConnectedAppendages,
        Property::ValidSuccessorList,
    ];
}

/// One violation of a property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which property.
    pub property: Property,
    /// The node it is about, when it is about one node.
    pub node: Option<Id>,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node {
            Some(n) => write!(f, "{:?} at {}: {}", self.property, n.short(), self.detail),
            None => write!(f, "{:?}: {}", self.property, self.detail),
        }
    }
}

/// The outcome of a check: every violation counted, the first few kept with details.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Violations per property.
    pub counts: BTreeMap<Property, usize>,
    /// The first [`Report::KEEP`] violations in full.
    pub violations: Vec<Violation>,
    /// Members checked.
    pub members: usize,
    /// Cycles in the best-successor graph (filled by the Zave check).
    pub rings: usize,
    /// Members on no cycle (filled by the Zave check).
    pub appendages: usize,
}

impl Report {
    /// How many violations are kept in full.
    pub const KEEP: usize = 20;

    /// Whether nothing was violated.
    pub fn ok(&self) -> bool {
        self.counts.is_empty()
    }

    /// Whether `p` held.
    pub fn holds(&self, p: Property) -> bool {
        !self.counts.contains_key(&p)
    }

    /// Total violations.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    fn push(&mut self, property: Property, node: Option<Id>, detail: impl FnOnce() -> String) {
        *self.counts.entry(property).or_default() += 1;
        if self.violations.len() < Self::KEEP {
            self.violations.push(Violation { property, node, detail: detail() });
        }
    }

    /// Adds another report's findings to this one.
    pub fn merge(&mut self, other: Report) {
        for (p, n) in other.counts {
            *self.counts.entry(p).or_default() += n;
        }
        let room = Self::KEEP.saturating_sub(self.violations.len());
        self.violations.extend(other.violations.into_iter().take(room));
        self.members = self.members.max(other.members);
        self.rings = self.rings.max(other.rings);
        self.appendages = self.appendages.max(other.appendages);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ok() {
            return write!(f, "all properties hold ({} members)", self.members);
        }
        writeln!(f, "{} violations over {} members: {:?}", self.total(), self.members, self.counts)?;
        for v in &self.violations {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}

impl RingView {
    /// Member ids in identifier order.
    pub fn ids(&self) -> Vec<Id> {
        self.members.keys().copied().collect()
    }

    /// The member that owns `key`: the first member id at or after `key` clockwise. `None` without members.
    pub fn ideal_owner(&self, key: Id) -> Option<Id> {
        ideal_owner(&self.members, key)
    }

    /// The ideal successor list of member `id`: the next `min(r, M − 1)` members clockwise.
    pub fn ideal_successors(&self, id: Id) -> Vec<Id> {
        let n = self.members.len().saturating_sub(1).min(self.r);
        self.members
            .range((std::ops::Bound::Excluded(id), std::ops::Bound::Unbounded))
            .chain(self.members.range(..id))
            .map(|(k, _)| *k)
            .take(n)
            .collect()
    }

    /// The ideal predecessor of member `id`: the previous member clockwise (`None` if it is alone).
    pub fn ideal_predecessor(&self, id: Id) -> Option<Id> {
        if self.members.len() < 2 {
            return None;
        }
        self.members.range(..id).next_back().or_else(|| self.members.iter().next_back()).map(|(k, _)| *k)
    }

    /// Every property.
    pub fn check_all(&self) -> Report {
        let mut r = self.zave();
        r.merge(self.exact());
        r.merge(self.link_budget());
        r
    }

    /// Zave's five safety properties.
    pub fn zave(&self) -> Report {
        let mut report = Report { members: self.members.len(), ..Report::default() };
        let ids = self.ids();
        let index: HashMap<Id, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();

        // ValidSuccessorList, and the best-successor function.
        let mut best: Vec<Option<usize>> = vec![None; ids.len()];
        for (i, id) in ids.iter().enumerate() {
            let view = &self.members[id];
            let list = &view.successors;
            let alone = ids.len() == 1;
            if list.is_empty() {
                if alone {
                    best[i] = Some(i);
                    continue;
                }
                report.push(Property::ValidSuccessorList, Some(*id), || "empty successor list".into());
                continue;
            }
            if list.len() > self.r.max(1) {
                report.push(Property::ValidSuccessorList, Some(*id), || {
                    format!("{} entries, r = {}", list.len(), self.r)
                });
            }
            let distinct: BTreeSet<&Id> = list.iter().collect();
            if distinct.len() != list.len() {
                report.push(Property::ValidSuccessorList, Some(*id), || {
                    format!("duplicates in {}", short(list))
                });
            }
            if !alone && list.contains(id) {
                report.push(Property::ValidSuccessorList, Some(*id), || {
                    format!("lists itself: {}", short(list))
                });
            }
            let ordered = list.windows(2).all(|w| id.cmp_clockwise(w[0], w[1]).is_lt());
            if !ordered {
                report.push(Property::ValidSuccessorList, Some(*id), || {
                    format!("not in clockwise order: {}", short(list))
                });
            }
            best[i] = list.iter().find_map(|s| index.get(s).copied());
            if best[i].is_none() {
                report.push(Property::ValidSuccessorList, Some(*id), || {
                    format!("no live entry in {}", short(list))
                });
            }
        }

        // Cycles of the best-successor graph (a functional graph: walk each path once).
        const NEW: u32 = u32::MAX;
        const ON_PATH: u32 = u32::MAX - 1;
        const NONE: u32 = u32::MAX - 2;
        let mut reach = vec![NEW; ids.len()]; // cycle number the node leads to, or NONE
        let mut on_cycle = vec![false; ids.len()];
        let mut cycles: Vec<Vec<usize>> = Vec::new();
        for start in 0..ids.len() {
            if reach[start] != NEW {
                continue;
            }
            let mut path = Vec::new();
            let mut at = Some(start);
            let result = loop {
                let Some(n) = at else { break NONE };
                match reach[n] {
                    NEW => {
                        reach[n] = ON_PATH;
                        path.push(n);
                        at = best[n];
                    }
                    ON_PATH => {
                        let from = path.iter().position(|p| *p == n).unwrap_or(0);
                        let cycle: Vec<usize> = path[from..].to_vec();
                        for &c in &cycle {
                            on_cycle[c] = true;
                        }
                        cycles.push(cycle);
                        break (cycles.len() - 1) as u32;
                    }
                    done => break done,
                }
            };
            for p in path {
                reach[p] = result;
            }
        }
        report.rings = cycles.len();
        report.appendages = on_cycle.iter().filter(|c| !**c).count();

        if !ids.is_empty() && cycles.is_empty() {
            report.push(Property::AtLeastOneRing, None, || "no cycle of best successors".into());
        }
        if cycles.len() > 1 {
            report.push(Property::AtMostOneRing, None, || {
                let sizes: Vec<usize> = cycles.iter().map(Vec::len).collect();
                format!("{} rings, sizes {sizes:?}", cycles.len())
            });
        }
        for cycle in &cycles {
            // Going round a cycle of distinct ids, the id decreases exactly once iff the cycle is the
            // cyclically sorted order (one turn of the circle).
            let descents =
                (0..cycle.len()).filter(|&k| ids[cycle[(k + 1) % cycle.len()]] <= ids[cycle[k]]).count();
            if descents != 1 {
                report.push(Property::OrderedRing, Some(ids[cycle[0]]), || {
                    format!("ring of {} members winds {descents} times round the circle", cycle.len())
                });
            }
        }
        for (i, id) in ids.iter().enumerate() {
            if !on_cycle[i] && reach[i] == NONE {
                report.push(Property::ConnectedAppendages, Some(*id), || {
                    "best successors lead to a member with no live successor".into()
                });
            }
        }
        report
    }

    /// Successor lists and predecessors exactly right.
    pub fn exact(&self) -> Report {
        let mut report = Report { members: self.members.len(), ..Report::default() };
        for (id, view) in &self.members {
            let ideal = self.ideal_successors(*id);
            let alone_ok = ideal.is_empty() && (view.successors.is_empty() || view.successors == [*id]);
            if view.successors != ideal && !alone_ok {
                report.push(Property::ExactSuccessors, Some(*id), || {
                    format!("has {}, ideal {}", short(&view.successors), short(&ideal))
                });
            }
            let pred = self.ideal_predecessor(*id);
            let alone_pred_ok =
                pred.is_none() && (view.predecessor.is_none() || view.predecessor == Some(*id));
            if view.predecessor != pred && !alone_pred_ok {
                report.push(Property::ExactPredecessor, Some(*id), || {
                    format!("has {:?}, ideal {:?}", view.predecessor, pred)
                });
            }
        }
        report
    }

    /// No node (member or not) above its link cap.
    pub fn link_budget(&self) -> Report {
        let mut report = Report { members: self.members.len(), ..Report::default() };
        for view in self.members.values().chain(&self.others) {
            if view.link_count > view.link_cap {
                report.push(Property::LinkBudget, Some(view.id), || {
                    format!("{} links, cap {}", view.link_count, view.link_cap)
                });
            }
        }
        report
    }
}

/// The first id in `set` at or after `key` clockwise.
pub fn ideal_owner<V>(set: &BTreeMap<Id, V>, key: Id) -> Option<Id> {
    set.range(key..).next().or_else(|| set.iter().next()).map(|(k, _)| *k)
}

fn short(list: &[Id]) -> String {
    let parts: Vec<String> = list.iter().map(Id::short).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        let mut b = [0u8; 20];
        b[0] = n;
        Id(b)
    }

    /// A view of members `ids` where each node's list is given by `succ(i)` (indices into `ids`).
    fn view(
        ids: &[u8],
        r: usize,
        succ: impl Fn(usize) -> Vec<usize>,
        pred: impl Fn(usize) -> usize,
    ) -> RingView {
        let mut members = BTreeMap::new();
        for (i, n) in ids.iter().enumerate() {
            members.insert(
                id(*n),
                NodeView {
                    index: i,
                    id: id(*n),
                    successors: succ(i).into_iter().map(|j| id(ids[j])).collect(),
                    predecessor: Some(id(ids[pred(i)])),
                    link_count: 3,
                    link_cap: 21,
                },
            );
        }
        RingView { r, members, others: Vec::new() }
    }

    fn ideal(ids: &[u8], r: usize) -> RingView {
        let n = ids.len();
        view(ids, r, |i| (1..=r.min(n - 1)).map(|k| (i + k) % n).collect(), |i| (i + n - 1) % n)
    }

    #[test]
    fn ideal_ring_passes_everything() {
        let v = ideal(&[10, 20, 30, 40, 50, 60], 4);
        let r = v.check_all();
        assert!(r.ok(), "{r}");
        assert_eq!((r.rings, r.appendages), (1, 0));
        assert_eq!(v.ideal_owner(id(25)), Some(id(30)));
        assert_eq!(v.ideal_owner(id(30)), Some(id(30)));
        assert_eq!(v.ideal_owner(id(61)), Some(id(10)));
        assert_eq!(v.ideal_predecessor(id(10)), Some(id(60)));
        let small = ideal(&[10, 20, 30], 4);
        assert!(small.check_all().ok(), "{}", small.check_all());
    }

    #[test]
    fn two_rings_are_caught() {
        // 10 → 30 → 50 → 10 and 20 → 40 → 60 → 20: two ordered rings, each winding once.
        let ids = [10, 20, 30, 40, 50, 60];
        let v = view(&ids, 1, |i| vec![(i + 2) % 6], |i| (i + 4) % 6);
        let r = v.zave();
        assert!(!r.holds(Property::AtMostOneRing));
        assert!(r.holds(Property::AtLeastOneRing));
        assert!(r.holds(Property::OrderedRing));
        assert_eq!(r.rings, 2);
        assert!(!v.exact().holds(Property::ExactSuccessors));
    }

    #[test]
    fn a_ring_winding_twice_is_disordered() {
        // 10 → 30 → 50 → 20 → 40 → 60 → 10 winds twice.
        let ids = [10, 20, 30, 40, 50, 60];
        let mut v = view(&ids, 1, |i| vec![(i + 2) % 6], |i| i);
        // Join the two triangles into one cycle: 50 → 20 and 60 → 10.
        v.members.get_mut(&id(50)).unwrap().successors = vec![id(20)];
        v.members.get_mut(&id(60)).unwrap().successors = vec![id(10)];
        let r = v.zave();
        assert!(!r.holds(Property::OrderedRing), "{r}");
        assert!(r.holds(Property::AtMostOneRing));
    }

    #[test]
    fn appendages_and_dead_ends() {
        let mut v = ideal(&[10, 20, 30, 40], 2);
        // 25 joined: knows 30, nobody knows it yet — an appendage, connected.
        v.members.insert(
            id(25),
            NodeView {
                index: 9,
                id: id(25),
                successors: vec![id(30), id(40)],
                predecessor: None,
                link_count: 1,
                link_cap: 21,
            },
        );
        let r = v.zave();
        assert!(r.ok(), "{r}");
        assert_eq!(r.appendages, 1);
        assert!(!v.exact().ok());
        // Its successors all gone: a dead end.
        v.members.get_mut(&id(25)).unwrap().successors = vec![id(99)];
        let r = v.zave();
        assert!(!r.holds(Property::ConnectedAppendages));
        assert!(!r.holds(Property::ValidSuccessorList));
    }

    #[test]
    fn malformed_lists_and_budget() {
        let mut v = ideal(&[10, 20, 30, 40, 50], 3);
        v.members.get_mut(&id(10)).unwrap().successors = vec![id(30), id(20), id(40)];
        v.members.get_mut(&id(20)).unwrap().successors = vec![id(30), id(30)];
        v.members.get_mut(&id(30)).unwrap().link_count = 22;
        let r = v.check_all();
        // 10: out of order; 20: a duplicate, which is also out of order.
        assert_eq!(r.counts.get(&Property::ValidSuccessorList), Some(&3));
        assert_eq!(r.counts.get(&Property::LinkBudget), Some(&1));
    }

    #[test]
    fn lone_member_is_a_ring() {
        let mut members = BTreeMap::new();
        members.insert(
            id(1),
            NodeView {
                index: 0,
                id: id(1),
                successors: vec![id(1)],
                predecessor: None,
                link_count: 0,
                link_cap: 4,
            },
        );
        let v = RingView { r: 4, members, others: Vec::new() };
        let r = v.check_all();
        assert!(r.ok(), "{r}");
    }
}
