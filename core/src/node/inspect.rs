//! A read-only view of a node: what status pages, metrics and tests may observe, in one place
//! ([`Node::inspect`]). Nothing here changes the node.

use super::api::{BootstrapError, Counters, LinkId, LinkStatus, Status};
use super::conduct::PeerConduct;
use super::records::Record;
use super::Node;
use crate::id::Id;
use crate::identity::Address;
use crate::time::Timestamp;

/// Where the node stands with its bootstrap servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootstrapState {
    /// No bootstrap server was given: the node is alone (a ring of one) until something links it.
    Alone,
    /// A bootstrap is under way: an offer is out, or a link to a server is opening.
    Connecting,
    /// In a ring (a live successor).
    Joined,
    /// Not in a ring, and every bootstrap attempt since the last one started failed; the node tries again
    /// by itself, with a growing pause, at `retry_at` if that is known.
    Failed {
        /// When the next attempt starts.
        retry_at: Option<Timestamp>,
    },
}

/// A bootstrap server the node knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    /// Its URL, as given to [`Node::connect_bootstrap`].
    pub url: String,
    /// Its node id, once an answer told it.
    pub node_id: Option<Id>,
}

/// The bootstrap part of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapStatus {
    /// Where the node stands.
    pub state: BootstrapState,
    /// The servers it knows.
    pub servers: Vec<ServerStatus>,
    /// The last bootstrap failure: the server's URL and what went wrong.
    pub last_error: Option<(String, BootstrapError)>,
}

/// A read-only view of a [`Node`], from [`Node::inspect`].
#[derive(Clone, Copy)]
pub struct Inspect<'a> {
    node: &'a Node,
}

impl<'a> Inspect<'a> {
    pub(super) fn new(node: &'a Node) -> Inspect<'a> {
        Inspect { node }
    }

    /// The node's id.
    pub fn id(&self) -> Id {
        self.node.id()
    }

    /// The wallet it acts for.
    pub fn wallet(&self) -> Address {
        self.node.me.wallet
    }

    /// End-to-end sessions established with peers (`e2e::session`), at most 1,024.
    pub fn e2e_sessions(&self) -> usize {
        self.node.sessions.len()
    }

    /// Successor list, nearest first.
    pub fn successors(&self) -> &'a [Id] {
        self.node.ring.successors()
    }

    /// The predecessor, if known.
    pub fn predecessor(&self) -> Option<Id> {
        self.node.ring.predecessor()
    }

    /// Distinct fingers with the lowest finger index each fills.
    pub fn fingers(&self) -> Vec<(u8, Id)> {
        self.node.ring.distinct_fingers().to_vec()
    }

    /// Whether the node is part of a ring (a founder alone counts).
    pub fn is_joined(&self) -> bool {
        let m = &self.node.membership;
        m.joined || (m.founder && self.node.links.len() == 0)
    }

    /// Whether a graceful leave has begun.
    pub fn is_leaving(&self) -> bool {
        self.node.membership.leaving
    }

    /// Links open or being set up.
    pub fn link_count(&self) -> usize {
        self.node.links.len()
    }

    /// Every link, with the roles this node gives it.
    pub fn links(&self) -> Vec<LinkStatus> {
        self.node.links.iter().filter_map(|(id, _)| self.link(id)).collect()
    }

    /// One link, with the roles this node gives it.
    pub fn link(&self, id: LinkId) -> Option<LinkStatus> {
        let node = self.node;
        node.links.get(id).map(|l| LinkStatus {
            link: id,
            peer: l.peer,
            open: l.is_open(),
            roles: node.roles_of(id, l).into_iter().map(str::to_string).collect(),
            rtt: l.rtt,
            bytes_in: l.bytes_in,
            bytes_out: l.bytes_out,
        })
    }

    /// The counters.
    pub fn counters(&self) -> &'a Counters {
        &self.node.io.counters
    }

    /// Where the node stands with its bootstrap servers.
    pub fn bootstrap(&self) -> BootstrapStatus {
        let node = self.node;
        let m = &node.membership;
        let state = if m.joined {
            BootstrapState::Joined
        } else if m.servers.is_empty() {
            BootstrapState::Alone
        } else if m.bootstraps.is_empty() && m.last_error.is_some() {
            BootstrapState::Failed { retry_at: node.timers.get(super::timer::Timer::Rejoin) }
        } else {
            BootstrapState::Connecting
        };
        BootstrapStatus {
            state,
            servers: m
                .servers
                .iter()
                .map(|(url, id)| ServerStatus { url: url.clone(), node_id: *id })
                .collect(),
            last_error: m.last_error.clone(),
        }
    }

    /// Records held (as owner or replica).
    pub fn record_count(&self) -> usize {
        self.node.records.store.len()
    }

    /// Whether any record is held under `key`.
    pub fn has_record(&self, key: Id) -> bool {
        !self.node.records.store.get(key).is_empty()
    }

    /// The records held under `key`.
    pub fn records(&self, key: Id) -> Vec<Record> {
        self.node.records.store.get(key)
    }

    /// Mailbox entries held (as owner or replica).
    pub fn mailbox_entries(&self) -> usize {
        self.node.records.mailbox_entries()
    }

    /// Bytes of records held, as the store's budget counts them ([`Record::stored_bytes`]).
    pub fn store_bytes(&self) -> usize {
        self.node.records.store.bytes()
    }

    /// Sending sessions the accepted table remembers, and its forgotten-before time
    /// ([`crate::node::accepted`]).
    pub fn accepted_sessions(&self) -> (usize, Timestamp) {
        (self.node.accepted.len(), self.node.accepted.forgotten_before())
    }

    /// What the peer of `link` did wrong so far (score as of `now`), if anything
    /// ([`crate::node::conduct`]).
    pub fn conduct(&self, link: LinkId, now: Timestamp) -> Option<PeerConduct> {
        self.node.conduct.of(link, now)
    }

    /// Peers this node does not link to at `now` because they misbehaved, with when each pause ends.
    pub fn backed_off(&self, now: Timestamp) -> Vec<(Id, Timestamp)> {
        self.node.conduct.backed_off(now)
    }

    /// Links closed because their peer misbehaved.
    pub fn links_dropped_for_conduct(&self) -> u64 {
        self.node.conduct.dropped()
    }

    /// Live message ids the replay window forgot to make room (a flood of signed frames).
    pub fn replay_ids_forgotten(&self) -> u64 {
        self.node.router.replay.forgotten()
    }

    /// Delegations refused from the table of final refusals, without verifying them again.
    pub fn delegations_refused_from_memory(&self) -> u64 {
        self.node.me.cache.refused_hits()
    }

    /// A snapshot for status pages.
    pub fn status(&self) -> Status {
        Status {
            node_id: self.id(),
            successors: self.successors().to_vec(),
            predecessor: self.predecessor(),
            fingers: self.fingers(),
            links: self.links(),
            counters: self.counters().clone(),
        }
    }
}
