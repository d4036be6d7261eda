//! A node that starts as a member of a converged ring, built directly — for simulators that study rings
//! of 10^5 nodes, where joining them one by one would take hours (`chordial-sim bench --warm`). Behind the
//! `warm-start` feature, which only `chordial-sim` turns on: no shipped shell can start a node this way.
//!
//! ```text
//!   for every node: Node::new, then warm_start(now, successors, predecessor, owner_of) ─▶ the links it wants
//!   for every wanted link both ends agree to: warm_link on each end (the simulator pairs the two ids)
//! ```
//!
//! After that the node runs as if it had joined, stabilized and swept its fingers: the same timers, the
//! same link policy, its presence published at `now`.

use super::links::{Link, LinkKind, LinkState};
use super::timer::Timer;
use super::Node;
use crate::id::{Id, ID_BITS};
use crate::node::api::{Event, LinkId, LinkPurpose};
use crate::time::Timestamp;

impl Node {
    /// Makes this fresh node a member of a ring built directly: `successors` (nearest first, at most r are
    /// kept), `predecessor`, and a finger table swept with `owner_of` (the ring's true owner of a key, as
    /// the simulator knows it). Returns the links it wants, in the order its link policy would open them:
    /// every successor, then its fingers farthest first (`max_fingers` distinct ones, not successors or the
    /// predecessor). Call it once, right after [`Node::new`], before any input.
    pub fn warm_start(
        &mut self,
        now: Timestamp,
        successors: &[Id],
        predecessor: Option<Id>,
        owner_of: impl Fn(Id) -> Id,
    ) -> Vec<(Id, LinkPurpose)> {
        if let Some((first, rest)) = successors.split_first() {
            self.ring.adopt_list(*first, rest);
        }
        self.ring.set_predecessor(predecessor);
        let mut slot = Some(self.ring.first_open_slot());
        while let Some(s) = slot.filter(|s| *s < ID_BITS) {
            slot = self.ring.set_finger(s, owner_of(self.id().finger_target(s)));
        }
        let m = &mut self.membership;
        m.founder = false;
        m.joined = !self.ring.successors().is_empty();
        m.was_joined = m.joined;
        m.finger_cursor = ID_BITS;
        if m.joined {
            self.timers.set(Timer::Presence, now);
            self.io.emit(Event::Membership { joined: true });
        }
        let mut wanted: Vec<(Id, LinkPurpose)> =
            self.ring.successors().iter().map(|s| (*s, LinkPurpose::Successor)).collect();
        wanted.extend(self.ring.wanted_fingers().iter().map(|f| (*f, LinkPurpose::Finger)));
        wanted
    }

    /// An open link to `peer`, for a node started with [`Node::warm_start`]: this node's end of a link that
    /// it offered (`offerer`, for `purpose`) or that `peer` offered to it. Returns the link's id, for the
    /// simulator to pair with the other end; `None` when this node's link policy would not have it (no
    /// room: for a finger it offers, the room ring links need is kept free, as when it opens one itself).
    pub fn warm_link(
        &mut self,
        now: Timestamp,
        peer: Id,
        purpose: LinkPurpose,
        offerer: bool,
    ) -> Option<LinkId> {
        if peer == self.id() || self.links.by_peer(peer).is_some() {
            return None;
        }
        let room = match (offerer, purpose) {
            (true, LinkPurpose::Finger | LinkPurpose::Direct) => self.has_room_keeping_headroom(),
            (true, LinkPurpose::Successor | LinkPurpose::Bootstrap) | (false, _) => self.has_room(false),
        };
        if !room {
            return None;
        }
        let kind = match (offerer, purpose) {
            (true, LinkPurpose::Successor) => LinkKind::ToSuccessor { via: None },
            (true, LinkPurpose::Finger) => LinkKind::ToFinger,
            (true, LinkPurpose::Direct) => LinkKind::ToDirect,
            // A warm ring has no bootstrap links.
            (true, LinkPurpose::Bootstrap) => return None,
            (false, purpose) => LinkKind::From(purpose),
        };
        let mut link = Link::offer(now, Some(peer), kind);
        link.state = LinkState::Open;
        link.peer_in_ring = true;
        link.peer_keeps_until = now.saturating_add(self.config.idle_link_grace);
        // No `OpenLink` was asked for: `link_creations` counts those, and stays as it is.
        Some(self.links.insert(link))
    }
}
