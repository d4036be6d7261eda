//! End-to-end sessions of one node, as a sub-machine (the crypto is [`crate::e2e::session`]).
//!
//! - **Owns** ([`Sessions`]): this node's session credentials (static key, the session key's signature over
//!   it, the delegation); the sessions established with peers, by our index, at most one per peer and role,
//!   the newest used for sending; our handshakes in flight, at most one per peer.
//! - **Takes**: from the app layer, handshakes it started and the welcomes that finish them, sessions it
//!   accepted, lookups by the index a session message names, a peer's "no such session", and the app tick
//!   (expiry).
//! - **Emits**: nothing; the app layer routes hellos, welcomes and session messages itself.
//!
//! Bounded like every table a peer can fill: a hello makes a session only after its binding and delegation
//! verify, a newer session with the same peer and role replaces the older, and a full table drops the
//! session that expires first. A dropped session costs its peer one handshake: its next message is answered
//! "no such session", and it handshakes again.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::e2e::session::{Credentials, HandshakeError, Initiating, Session};
use crate::identity::SessionPublicKey;
use crate::time::Timestamp;

/// Sessions a node keeps at most.
pub(crate) const MAX_SESSIONS: usize = 1024;
/// Handshakes of ours in flight at most (one per peer; the oldest is dropped past it).
const MAX_PENDING: usize = 256;
/// A session is not used to send in the last part of its life: a message sealed just before it expires
/// could arrive after, and be refused.
const SEND_MARGIN: Duration = Duration::from_secs(60);

/// Which side of the handshake this node was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    Initiator,
    Responder,
}

/// The end-to-end sessions of one node.
#[derive(Debug)]
pub(crate) struct Sessions {
    pub(crate) credentials: Credentials,
    live: HashMap<u64, (Session, Role)>,
    by_peer: HashMap<(SessionPublicKey, Role), u64>,
    pending: HashMap<u64, Initiating>,
    pending_to: HashMap<SessionPublicKey, u64>,
    /// Our indexes of `pending`, oldest first.
    pending_order: VecDeque<u64>,
}

impl Sessions {
    pub(crate) fn new(credentials: Credentials) -> Sessions {
        Sessions {
            credentials,
            live: HashMap::new(),
            by_peer: HashMap::new(),
            pending: HashMap::new(),
            pending_to: HashMap::new(),
            pending_order: VecDeque::new(),
        }
    }

    /// The session to send to `peer` with: of ours with it (one per role), the one that lives longer, if it
    /// lives for [`SEND_MARGIN`] more.
    pub(crate) fn for_sending(&mut self, peer: &SessionPublicKey, now: Timestamp) -> Option<&mut Session> {
        let usable = now.saturating_add(SEND_MARGIN);
        let best = [Role::Initiator, Role::Responder]
            .iter()
            .filter_map(|role| self.by_peer.get(&(*peer, *role)))
            .filter_map(|index| self.live.get(index).map(|(s, _)| (*index, s.expires())))
            .filter(|(_, expires)| *expires > usable)
            .max_by_key(|(_, expires)| *expires)
            .map(|(index, _)| index)?;
        self.live.get_mut(&best).map(|(s, _)| s)
    }

    /// Whether a handshake of ours with `peer` is in flight.
    pub(crate) fn handshaking(&self, peer: &SessionPublicKey) -> bool {
        self.pending_to.contains_key(peer)
    }

    /// A handshake we started; its index names it in [`Sessions::finish`] and [`Sessions::drop_pending`].
    pub(crate) fn started(&mut self, handshake: Initiating) {
        let index = handshake.index();
        let peer = handshake.peer().session;
        if let Some(old) = self.pending_to.get(&peer).copied() {
            self.drop_pending(old);
        }
        while self.pending.len() >= MAX_PENDING {
            let Some(oldest) = self.pending_order.pop_front() else { break };
            self.drop_pending(oldest);
        }
        self.pending_to.insert(peer, index);
        self.pending_order.push_back(index);
        self.pending.insert(index, handshake);
    }

    /// Finishes our handshake `index` with the welcome its peer sent: the welcome's data. `None` if no such
    /// handshake is in flight (finished, dropped, or never ours).
    pub(crate) fn finish(
        &mut self,
        now: Timestamp,
        index: u64,
        welcome: &[u8],
    ) -> Option<Result<Vec<u8>, HandshakeError>> {
        let handshake = self.pending.remove(&index)?;
        self.forget_pending(index, &handshake.peer().session);
        Some(handshake.finish(welcome).map(|(session, data)| {
            self.insert(now, session, Role::Initiator);
            data
        }))
    }

    /// Our handshake `index` will not be finished (its message failed or was answered otherwise).
    pub(crate) fn drop_pending(&mut self, index: u64) {
        if let Some(h) = self.pending.remove(&index) {
            self.forget_pending(index, &h.peer().session);
        }
    }

    fn forget_pending(&mut self, index: u64, peer: &SessionPublicKey) {
        if self.pending_to.get(peer) == Some(&index) {
            self.pending_to.remove(peer);
        }
        self.pending_order.retain(|i| *i != index);
    }

    /// A session established in `role`: it replaces an older one with the same peer and role; a full table
    /// drops expired sessions, else the one that expires first.
    pub(crate) fn insert(&mut self, now: Timestamp, session: Session, role: Role) {
        let key = (session.peer().session, role);
        if let Some(old) = self.by_peer.remove(&key) {
            self.live.remove(&old);
        }
        if self.live.len() >= MAX_SESSIONS {
            self.prune(now);
        }
        if self.live.len() >= MAX_SESSIONS {
            let first = self.live.iter().min_by_key(|(i, (s, _))| (s.expires(), **i)).map(|(i, _)| *i);
            if let Some(index) = first {
                self.remove(index);
            }
        }
        let index = session.index();
        self.by_peer.insert(key, index);
        self.live.insert(index, (session, role));
    }

    /// The session a message addressed to `index` is for, if it is one with `origin` (the message's
    /// signer): a session is never used for messages from anyone but its peer.
    pub(crate) fn get(&mut self, index: u64, origin: &SessionPublicKey) -> Option<&mut Session> {
        self.live.get_mut(&index).filter(|(s, _)| s.peer().session == *origin).map(|(s, _)| s)
    }

    /// `peer` no longer has the session we used (it restarted, or dropped it): forget ours with it, so the
    /// next message handshakes again.
    pub(crate) fn forget_peer(&mut self, peer: &SessionPublicKey) {
        for role in [Role::Initiator, Role::Responder] {
            if let Some(index) = self.by_peer.remove(&(*peer, role)) {
                self.live.remove(&index);
            }
        }
    }

    /// Drops the sessions that expired.
    pub(crate) fn prune(&mut self, now: Timestamp) {
        let expired: Vec<u64> =
            self.live.iter().filter(|(_, (s, _))| s.expires() <= now).map(|(i, _)| *i).collect();
        for index in expired {
            self.remove(index);
        }
    }

    fn remove(&mut self, index: u64) {
        if let Some((s, role)) = self.live.remove(&index) {
            let key = (s.peer().session, role);
            if self.by_peer.get(&key) == Some(&index) {
                self.by_peer.remove(&key);
            }
        }
    }

    /// Sessions established (for status and tests).
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }
}
