//! Peers that misbehave, as a sub-machine: what each link's peer did wrong, and the peers this node closed a
//! link to for it and will not link to again for a while.
//!
//! - **Owns** ([`Conduct`]): per link, a count of each [`Offence`] and a score that leaks away with time;
//!   the peers backed off, by node id, with when the pause ends (a bounded table that forgets the pause that
//!   ends soonest); the link and hop count of the routed frame being delivered, so an offence found deep in
//!   its handling can be charged to the link it came on.
//! - **Takes**: offences, from the glue that found them — the router (frames that do not decode, bad
//!   signatures), link setup (invalid delegations), the app (replies nobody asked for).
//! - **Emits**: nothing itself. When a charge takes a link's score to [`THRESHOLD`], the glue closes the link
//!   and backs its peer off for [`BACKOFF`]: `ensure_link` does not offer to it and `accept_offer` refuses it
//!   (`Busy`) until then.
//!
//! **Whom to blame.** A peer is charged only for what it provably did itself, so that an attacker cannot get
//! an honest node dropped by making it pass something on:
//!
//! - a link message that does not decode, an unknown frame kind, a routed frame whose routing fields do
//!   not decode or that names `Neighbor` on a link: an honest relay forwards only frames whose routing
//!   fields decoded for it (same checks, same network), so the link's peer made it;
//! - a bad signature or a malformed signed body, an invalid delegation (final refusals only, not
//!   `Expired` or `NotYetValid`), a reply nobody asked for: only when the frame came straight from its
//!   origin — on the link to the origin, with a hop count of 0. Relays do not check signatures and an
//!   honest relay sends every frame it passes on with a hop count of at least 1, so an attacker who alters
//!   an honest node's frame and routes it through that node gets nobody charged.
//!
//! **The threshold.** Each offence adds its weight ([`Offence::weight`]) to the link's score, which leaks
//! [`LEAK_PER_SECOND`]; at [`THRESHOLD`] (100) the peer is dropped: 10 junk frames, 4 bad signatures or 4
//! invalid delegations in quick succession, or replies nobody asked for at more than one a second for over
//! a minute and a half. Honest peers send none of the first three at all (`docs/security.md`), and late
//! replies (an answer to an attempt that was already answered, or given up) come at most a few a minute.

use std::collections::HashMap;
use std::time::Duration;

use super::links::Links;
use super::Node;
use crate::id::Id;
use crate::node::api::LinkId;
use crate::time::Timestamp;

/// A score at which the link is closed and its peer backed off.
pub const THRESHOLD: u32 = 100;
/// How much of a link's score leaks away per second.
pub const LEAK_PER_SECOND: u32 = 1;
/// How long a dropped peer is not linked to again.
pub const BACKOFF: Duration = Duration::from_secs(600);
/// Peers backed off at once at most; beyond this the pause that ends soonest is forgotten.
pub const MAX_BACKED_OFF: usize = 1024;

/// Something a peer did that an honest peer never does (or, for replies, rarely).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offence {
    /// A frame that does not decode: unknown kind, a link message that does not parse, a routed frame whose
    /// routing fields do not decode, a malformed signed body from the origin itself.
    InvalidFrame,
    /// A routed frame from the origin itself whose signature (or origin key) does not verify.
    BadSignature,
    /// A delegation that can never verify (not merely expired or not yet valid), presented by its signer.
    InvalidDelegation,
    /// A reply to no request of this node's (or to one already answered), from its origin itself.
    UnrequestedReply,
}

impl Offence {
    /// What it adds to the link's score.
    pub const fn weight(self) -> u32 {
        match self {
            Offence::InvalidFrame => 10,
            Offence::BadSignature | Offence::InvalidDelegation => 25,
            Offence::UnrequestedReply => 1,
        }
    }
}

/// What one link's peer did wrong, for status pages and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerConduct {
    /// [`Offence::InvalidFrame`]s.
    pub invalid_frames: u32,
    /// [`Offence::BadSignature`]s.
    pub bad_signatures: u32,
    /// [`Offence::InvalidDelegation`]s.
    pub invalid_delegations: u32,
    /// [`Offence::UnrequestedReply`]s.
    pub unrequested_replies: u32,
    /// The score now (thousandths of a point leak away every millisecond), in whole points.
    pub score: u32,
}

#[derive(Debug, Default)]
struct Record {
    counts: PeerConduct,
    /// In thousandths of a point, as of `at`.
    milli: u64,
    at: Timestamp,
}

impl Record {
    fn leak(&mut self, now: Timestamp) {
        let leaked = now.since(self.at).as_millis() as u64 * u64::from(LEAK_PER_SECOND);
        self.milli = self.milli.saturating_sub(leaked);
        self.at = now;
        self.counts.score = (self.milli / 1000) as u32;
    }
}

/// The conduct of this node's peers. See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct Conduct {
    links: HashMap<LinkId, Record>,
    backed_off: HashMap<Id, Timestamp>,
    /// The link a routed frame being delivered came on, its peer, and the frame's hop count.
    arrival: Option<(LinkId, Option<Id>, u8)>,
    /// Links closed for misbehaviour.
    dropped: u64,
}

impl Conduct {
    /// Adds `offence` to `link`'s score; true if that reached the threshold.
    fn charge(&mut self, now: Timestamp, link: LinkId, offence: Offence) -> bool {
        let r = self.links.entry(link).or_insert_with(|| Record { at: now, ..Record::default() });
        r.leak(now);
        let c = &mut r.counts;
        let count = match offence {
            Offence::InvalidFrame => &mut c.invalid_frames,
            Offence::BadSignature => &mut c.bad_signatures,
            Offence::InvalidDelegation => &mut c.invalid_delegations,
            Offence::UnrequestedReply => &mut c.unrequested_replies,
        };
        *count = count.saturating_add(1);
        r.milli = r.milli.saturating_add(u64::from(offence.weight()) * 1000);
        r.counts.score = (r.milli / 1000) as u32;
        r.counts.score >= THRESHOLD
    }

    /// Backs `peer` off until `now + BACKOFF`.
    fn back_off(&mut self, now: Timestamp, peer: Id) {
        if self.backed_off.len() >= MAX_BACKED_OFF && !self.backed_off.contains_key(&peer) {
            self.backed_off.retain(|_, until| *until > now);
            if self.backed_off.len() >= MAX_BACKED_OFF {
                let soonest =
                    self.backed_off.iter().min_by_key(|(id, until)| (**until, **id)).map(|(id, _)| *id);
                if let Some(id) = soonest {
                    self.backed_off.remove(&id);
                }
            }
        }
        self.backed_off.insert(peer, now.saturating_add(BACKOFF));
    }

    /// Whether this node does not link to `peer` at `now`.
    pub(crate) fn is_backed_off(&self, peer: Id, now: Timestamp) -> bool {
        self.backed_off.get(&peer).is_some_and(|until| *until > now)
    }

    /// What `link`'s peer did wrong so far, if anything.
    pub(crate) fn of(&self, link: LinkId, now: Timestamp) -> Option<PeerConduct> {
        self.links.get(&link).map(|r| {
            let mut r = Record { counts: r.counts, milli: r.milli, at: r.at };
            r.leak(now);
            r.counts
        })
    }

    /// The peers backed off at `now`, with when each pause ends, in id order.
    pub(crate) fn backed_off(&self, now: Timestamp) -> Vec<(Id, Timestamp)> {
        let mut v: Vec<(Id, Timestamp)> =
            self.backed_off.iter().filter(|(_, until)| **until > now).map(|(id, t)| (*id, *t)).collect();
        v.sort();
        v
    }

    /// Links closed for misbehaviour so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets links that are gone and pauses that are over.
    fn prune(&mut self, now: Timestamp, links: &Links) {
        self.links.retain(|id, _| links.get(*id).is_some());
        self.backed_off.retain(|_, until| *until > now);
    }
}

impl Node {
    /// Charges the peer of `link` for `offence` (see the [module docs](self) for whom to blame); at the
    /// threshold the link is closed and the peer backed off.
    pub(super) fn charge_link(&mut self, now: Timestamp, link: LinkId, offence: Offence) {
        let Some(peer) = self.links.get(link).and_then(|l| l.peer) else { return };
        if self.conduct.charge(now, link, offence) {
            self.conduct.back_off(now, peer);
            self.conduct.dropped += 1;
            self.io.counters.links_dropped_for_conduct += 1;
            self.conduct.links.remove(&link);
            self.drop_link(now, link, true);
        }
    }

    /// Charges `origin` for `offence` found in the routed frame being delivered, if that frame came straight
    /// from it: on its own link, with a hop count of 0. Otherwise nobody is charged (a relay cannot know, and
    /// an honest relay must not pay for what it passed on). For offences proven by the origin's signature:
    /// an invalid delegation it presented, a reply from it that nobody asked for.
    pub(crate) fn charge_origin(&mut self, now: Timestamp, origin: Id, offence: Offence) {
        if let Some((link, Some(peer), 0)) = self.conduct.arrival {
            if peer == origin {
                self.charge_link(now, link, offence);
            }
        }
    }

    /// Notes the link and hop count of the routed frame about to be delivered (`None` once it is done),
    /// for [`Node::charge_origin`].
    pub(super) fn set_arrival(&mut self, arrival: Option<(LinkId, u8)>) {
        let arrival = arrival.map(|(link, hops)| (link, self.links.get(link).and_then(|l| l.peer), hops));
        self.conduct.arrival = arrival;
    }

    /// Whether this node does not link to `peer` now (it misbehaved).
    pub(super) fn is_backed_off(&self, peer: Id, now: Timestamp) -> bool {
        self.conduct.is_backed_off(peer, now)
    }

    /// Forgets links that are gone and pauses that are over (on the maintain tick).
    pub(super) fn conduct_tick(&mut self, now: Timestamp) {
        self.conduct.prune(now, &self.links);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_800_000_000_000);

    #[test]
    fn a_score_leaks_and_only_a_burst_reaches_the_threshold() {
        let mut c = Conduct::default();
        let link = LinkId(1);
        // Nine junk frames: 90 points, not yet.
        for _ in 0..9 {
            assert!(!c.charge(T0, link, Offence::InvalidFrame));
        }
        // Ten seconds later ten points have leaked: the tenth frame does not reach 100 either.
        let later = T0.saturating_add(Duration::from_secs(10));
        assert!(!c.charge(later, link, Offence::InvalidFrame));
        assert_eq!(c.of(link, later).map(|p| (p.invalid_frames, p.score)), Some((10, 90)));
        assert!(c.charge(later, link, Offence::InvalidFrame));
        // Replies nobody asked for at one a second never add up.
        let mut c = Conduct::default();
        for s in 0..10_000u64 {
            assert!(!c.charge(T0.saturating_add(Duration::from_secs(s)), link, Offence::UnrequestedReply));
        }
    }

    #[test]
    fn the_backoff_table_is_bounded_and_forgets_the_pause_that_ends_soonest() {
        let mut c = Conduct::default();
        for n in 0..MAX_BACKED_OFF as u64 + 5 {
            let id = Id::hash(&[&n.to_be_bytes()]);
            c.back_off(T0.saturating_add(Duration::from_millis(n)), id);
            assert!(c.backed_off.len() <= MAX_BACKED_OFF);
        }
        let first = Id::hash(&[&0u64.to_be_bytes()]);
        let last = Id::hash(&[&(MAX_BACKED_OFF as u64 + 4).to_be_bytes()]);
        assert!(!c.is_backed_off(first, T0), "the earliest pause was forgotten");
        assert!(c.is_backed_off(last, T0));
        assert!(!c.is_backed_off(last, T0.saturating_add(BACKOFF + Duration::from_secs(60))));
    }
}
