//! Direct links for sustained flows (issue 17): a node that sends a lot to one other node in a short time
//! opens a link straight to it, so the flow stops crossing relays; when the link closes, the flow goes back to
//! routing by itself (the router takes an open link to a destination node first, and only then the ring).
//!
//! - **Owns** ([`Flows`]): per destination node, the messages this node sent to it in session frames and their
//!   bytes, in the current window; at most [`MAX_FLOWS`] destinations (a new one replaces the one whose window
//!   began first). Receipts do not count: the node that sends the flow offers the link.
//! - **Takes**: nothing; the parent asks it after each message of ours sent in a session frame.
//! - **Emits**: nothing; it answers whether the flow just became sustained, and the parent offers the link.
//!
//! The policy is [`DirectPolicy`] in the node's [`Config`](super::Config). What keeps it inside the budget:
//!
//! - only flows this node sends start a direct link (what peers send to it starts nothing), and only while
//!   the ring keeps its headroom (`Node::has_room_keeping_headroom`): a direct link never evicts another;
//! - at most [`DirectPolicy::max_links`] direct links at once, ours and the peers' together; an offer beyond
//!   that is answered `Busy`, and a peer that answered `Busy` is not asked again for a while;
//! - a peer a direct link to could not be made (no answer, `Busy`, setup failed) is not offered one again
//!   for [`DIRECT_RETRY`];
//! - a direct link is kept only while it carries routed frames: idle for [`DirectPolicy::idle`], it has no
//!   role and closes as any link nobody needs; a ring newcomer may evict it as it may evict a finger.

use std::collections::HashMap;
use std::time::Duration;

use super::links::{Link, LinkKind};
use super::Node;
use crate::id::Id;
use crate::node::api::{LinkId, LinkPurpose, LinkRole};
use crate::time::Timestamp;

/// Destinations whose flows are counted at once.
pub(super) const MAX_FLOWS: usize = 64;
/// A peer a direct link to could not be made is not offered one again for this long.
pub(super) const DIRECT_RETRY: Duration = Duration::from_secs(60);

/// When a flow is sustained enough for a direct link, and how many there may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectPolicy {
    /// Direct links at most at once (ours and those peers offered us). `0` turns direct links off.
    pub max_links: usize,
    /// A flow of at least this many messages (in session frames) within `window` is sustained…
    pub after_frames: u32,
    /// …or of at least this many bytes within `window`.
    pub after_bytes: u64,
    /// The window flows are counted in.
    pub window: Duration,
    /// A direct link that carried no routed frame in for this long has no role left and closes.
    pub idle: Duration,
}

impl Default for DirectPolicy {
    /// Two direct links; a flow of 32 frames or 256 KiB within 10 s; closed after 30 s idle.
    fn default() -> Self {
        DirectPolicy {
            max_links: 2,
            after_frames: 32,
            after_bytes: 256 * 1024,
            window: Duration::from_secs(10),
            idle: Duration::from_secs(30),
        }
    }
}

/// One destination's flow in its current window.
#[derive(Clone, Copy, Debug)]
struct Flow {
    since: Timestamp,
    frames: u32,
    bytes: u64,
}

/// The flows this node sends, per destination node.
#[derive(Debug, Default)]
pub(super) struct Flows {
    by_node: HashMap<Id, Flow>,
    /// Peers a direct link to could not be made, and until when none is offered to them again (at most
    /// [`MAX_FLOWS`]; a new one replaces the one that lapses first). Kept apart from the link table's busy
    /// peers: a failed shortcut must not hold back a ring link to the same peer.
    retry_after: HashMap<Id, Timestamp>,
}

impl Flows {
    /// Counts a frame of `bytes` to `dest`; `true` when this frame makes the flow sustained (once per window).
    pub(super) fn note(&mut self, policy: &DirectPolicy, now: Timestamp, dest: Id, bytes: usize) -> bool {
        if !self.by_node.contains_key(&dest) && self.by_node.len() >= MAX_FLOWS {
            let oldest = self.by_node.iter().min_by_key(|(id, f)| (f.since, **id)).map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.by_node.remove(&oldest);
            }
        }
        let flow = self.by_node.entry(dest).or_insert(Flow { since: now, frames: 0, bytes: 0 });
        if now.since(flow.since) >= policy.window {
            *flow = Flow { since: now, frames: 0, bytes: 0 };
        }
        let was = flow.frames >= policy.after_frames || flow.bytes >= policy.after_bytes;
        flow.frames = flow.frames.saturating_add(1);
        flow.bytes = flow.bytes.saturating_add(bytes as u64);
        let is = flow.frames >= policy.after_frames || flow.bytes >= policy.after_bytes;
        is && !was
    }

    /// No direct link is offered to `peer` before `until`.
    pub(super) fn retry_after(&mut self, now: Timestamp, peer: Id, until: Timestamp) {
        self.retry_after.retain(|_, t| *t > now);
        if !self.retry_after.contains_key(&peer) && self.retry_after.len() >= MAX_FLOWS {
            let first = self.retry_after.iter().min_by_key(|(id, t)| (**t, **id)).map(|(id, _)| *id);
            if let Some(first) = first {
                self.retry_after.remove(&first);
            }
        }
        let at = self.retry_after.entry(peer).or_insert(until);
        *at = (*at).max(until);
    }

    /// Whether a direct link may be offered to `peer` now.
    pub(super) fn may_offer(&self, now: Timestamp, peer: Id) -> bool {
        self.retry_after.get(&peer).is_none_or(|t| *t <= now)
    }
}

impl Node {
    /// Counts a session frame of ours to `dest` and, when its flow just became sustained, offers a direct
    /// link to it if the policy and the budget allow.
    pub(super) fn note_flow(&mut self, now: Timestamp, dest: Id, bytes: usize) {
        let policy = self.config.direct;
        if policy.max_links == 0 || !self.flows.note(&policy, now, dest, bytes) {
            return;
        }
        if dest == self.id()
            || self.links.by_peer(dest).is_some()
            || !self.flows.may_offer(now, dest)
            || !self.direct_room(now, dest)
        {
            return;
        }
        let id = self.links.insert(Link::offer(now, Some(dest), LinkKind::ToDirect));
        self.io.counters.direct_links += 1;
        self.open_link_output(id, LinkRole::Offer);
    }

    /// Whether one more direct link (to or from `peer`) fits: under the policy's count, with the ring's
    /// headroom kept, and `peer` not busy or backed off.
    pub(super) fn direct_room(&self, now: Timestamp, peer: Id) -> bool {
        let direct = self.links.iter().filter(|(_, l)| l.kind.purpose() == LinkPurpose::Direct).count();
        direct < self.config.direct.max_links
            && self.has_room_keeping_headroom()
            && !self.links.is_busy(peer, now)
            && !self.is_backed_off(peer, now)
    }

    /// Our direct link `id` could not be made (no answer, refused, setup failed): it goes, and its peer is not
    /// offered one again for [`DIRECT_RETRY`]. (Not when it gave way to the peer's own offer crossing it.)
    /// `close`: the shell is to close it (it has not closed already).
    pub(super) fn direct_failed(&mut self, now: Timestamp, id: LinkId, close: bool) {
        let Some(peer) = self.links.get(id).and_then(|l| l.peer) else { return };
        self.drop_link(now, id, close);
        self.flows.retry_after(now, peer, now.saturating_add(DIRECT_RETRY));
    }

    /// Whether `link` is a direct link that still carries its flow.
    pub(super) fn direct_in_use(&self, now: Timestamp, link: &Link) -> bool {
        link.kind.purpose() == LinkPurpose::Direct && now.since(link.last_used) < self.config.direct.idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Timestamp {
        Timestamp(1_000_000 + ms)
    }

    #[test]
    fn a_flow_is_sustained_once_per_window() {
        let policy = DirectPolicy { after_frames: 3, after_bytes: 1 << 30, ..DirectPolicy::default() };
        let mut flows = Flows::default();
        let dest = Id([7; 20]);
        assert!(!flows.note(&policy, t(0), dest, 10));
        assert!(!flows.note(&policy, t(1), dest, 10));
        assert!(flows.note(&policy, t(2), dest, 10), "the third frame makes it sustained");
        assert!(!flows.note(&policy, t(3), dest, 10), "only once per window");
        // A new window starts from zero.
        let later = t(policy.window.as_millis() as u64 + 5);
        assert!(!flows.note(&policy, later, dest, 10));
    }

    #[test]
    fn bytes_alone_make_a_flow_sustained() {
        let policy = DirectPolicy { after_frames: 1000, after_bytes: 100, ..DirectPolicy::default() };
        let mut flows = Flows::default();
        let dest = Id([1; 20]);
        assert!(!flows.note(&policy, t(0), dest, 60));
        assert!(flows.note(&policy, t(1), dest, 60));
    }

    #[test]
    fn peers_held_back_are_bounded_and_lapse() {
        let mut flows = Flows::default();
        for i in 0..(MAX_FLOWS as u8 + 10) {
            flows.retry_after(t(0), Id([i; 20]), t(1000 + u64::from(i)));
        }
        assert_eq!(flows.retry_after.len(), MAX_FLOWS);
        // The ones that lapse first went first.
        assert!(flows.may_offer(t(0), Id([0; 20])));
        assert!(!flows.may_offer(t(0), Id([MAX_FLOWS as u8 + 9; 20])));
        assert!(flows.may_offer(t(5000), Id([MAX_FLOWS as u8 + 9; 20])));
    }

    #[test]
    fn flows_are_bounded() {
        let policy = DirectPolicy { after_frames: 2, ..DirectPolicy::default() };
        let mut flows = Flows::default();
        for i in 0..(MAX_FLOWS as u8 + 10) {
            flows.note(&policy, t(u64::from(i)), Id([i; 20]), 1);
        }
        assert_eq!(flows.by_node.len(), MAX_FLOWS);
        // The first destinations went first.
        assert!(!flows.by_node.contains_key(&Id([0; 20])));
    }
}
