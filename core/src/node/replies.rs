//! Who may answer a request: a reply counts only from the node the request was addressed to, or from a
//! plausible owner of the key it was addressed to — never because it quotes the request's message id, which
//! every relay on the path saw (docs/protocol.md, "Who may answer").
//!
//! The signer of a reply is the envelope's origin, which relays cannot forge (they do not hold its key).
//! What they can do is answer themselves, signed with their own key. So:
//!
//! - a request to `Node(id)`: the reply's signer must be `id`;
//! - a request to `Key(k)` / `KeyStrict(k)`: the signer claims to own `k`, i.e. to be the first ring member
//!   at or after `k` going clockwise. It is refused if this node knows a live ring member nearer: one in
//!   `[k, signer)` clockwise ([`plausible_owner`]). The members it knows are itself (once joined) and the
//!   peers of its open links that are ring members; a merge check knows only the server it asked through.
//!
//! What this catches for certain: a relay *before* the key on a clockwise path. A strict lookup (joins,
//! fingers, merge checks) is routed clockwise only, so every relay after the first hop lies between the
//! first hop and the key, and the first hop — a link of ours — lies in `[k, relay)`: every relay that
//! answers in place of the owner is refused. A relay of a two-way (`Key`) request that sits just *after*
//! the key, nearer to it than every node this node knows, passes this check; reading from several
//! independent positions (issue 16, item 5) is the defence against that one.

use super::conduct::Offence;
use super::Node;
use crate::id::Id;
use crate::node::api::LinkId;
use crate::time::Timestamp;
use crate::wire::envelope::Destination;

/// Whether `claimed` may own `key`: no member in `known` lies in `[key, claimed)` going clockwise (such a
/// member would be nearer the key, so `claimed` is not its first node at or after it). A node "before" the
/// key claims a gap of almost the whole ring, so any other member refutes it.
pub(crate) fn plausible_owner(key: Id, claimed: Id, known: impl IntoIterator<Item = Id>) -> bool {
    let gap = key.distance_to(claimed);
    known.into_iter().all(|n| n == claimed || key.distance_to(n) >= gap)
}

impl Node {
    /// The live ring members this node knows: itself once joined, and the peers of its open links that are
    /// ring members (a node bootstrapping through us is not one yet, and its id says nothing of the ring).
    fn known_members(&self) -> Vec<Id> {
        let me = self.membership.joined.then(|| self.id());
        let peers =
            self.links.iter().filter(|(_, l)| l.is_open() && l.peer_in_ring).filter_map(|(_, l)| l.peer);
        me.into_iter().chain(peers).collect()
    }

    /// Whether `signer` may answer a request of ours sent to `dest`. `via`: the request went only through
    /// this link (a merge check into what may be another ring), whose peer is then the only member known to
    /// lie on the request's side of the key. A reply from this node itself (a request it could answer
    /// locally) always counts.
    pub(super) fn may_answer(&self, dest: Destination, signer: Id, via: Option<LinkId>) -> bool {
        if signer == self.id() {
            return true;
        }
        match dest {
            Destination::Node(id) => signer == id,
            Destination::Key(key) | Destination::KeyStrict(key) => match via {
                Some(link) => plausible_owner(key, signer, self.links.get(link).and_then(|l| l.peer)),
                None => plausible_owner(key, signer, self.known_members()),
            },
            // Requests are never addressed to a link neighbour by envelope.
            Destination::Neighbor => false,
        }
    }

    /// A reply to an open request of ours came from `signer`, which may not answer it: counted, charged to
    /// the signer if it sent it to us itself (`node::conduct`), then ignored.
    pub(super) fn unsolicited_reply(&mut self, now: Timestamp, signer: Id) {
        self.io.counters.unsolicited_replies += 1;
        self.charge_origin(now, signer, Offence::UnrequestedReply);
    }
}

#[cfg(test)]
mod tests {
    use super::plausible_owner;
    use crate::id::Id;

    fn id(top: u8) -> Id {
        let mut b = [0u8; 20];
        b[0] = top;
        Id(b)
    }

    #[test]
    fn the_first_node_at_or_after_the_key_is_plausible() {
        let key = id(100);
        // Known: 50, 120, 200. The owner is 120.
        let known = [id(50), id(120), id(200)];
        assert!(plausible_owner(key, id(120), known));
        // Unknown to us but nearer than every node we know: plausible (we cannot tell).
        assert!(plausible_owner(key, id(110), known));
        // A node exactly at the key owns it.
        assert!(plausible_owner(key, key, known));
        assert!(!plausible_owner(key, id(130), [key]));
    }

    #[test]
    fn a_node_past_a_known_nearer_one_or_before_the_key_is_refused() {
        let key = id(100);
        let known = [id(50), id(120), id(200)];
        // 120 lies between the key and 150.
        assert!(!plausible_owner(key, id(150), known));
        // Just before the key: the gap from the key wraps almost the whole ring.
        assert!(!plausible_owner(key, id(99), known));
        assert!(!plausible_owner(key, id(60), known));
        // Across zero: key 250, owner 10 (wrapping); 5 refutes 10, 20 does not.
        assert!(plausible_owner(id(250), id(10), [id(20), id(240)]));
        assert!(!plausible_owner(id(250), id(10), [id(5)]));
        // Nothing known: anything goes.
        assert!(plausible_owner(key, id(99), []));
    }
}
