//! Nodes for the sub-machines' unit tests: a fresh identity, a node that is not alone in a ring, and an open
//! link to a peer.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::links::{AnswerPath, Link, LinkKind, LinkState};
use super::{Config, Node};
use crate::identity::delegation::{delegation_message, Delegation, DelegationRequest};
use crate::identity::wallet::WalletKey;
use crate::identity::{SessionKey, SessionPublicKey};
use crate::node::api::{LinkId, LinkPurpose};
use crate::time::Timestamp;

pub(super) const T0: Timestamp = Timestamp(1_800_000_000_000);

/// A session key and a delegation to it from a fresh wallet.
pub(super) fn identity(seed: u64) -> (SessionKey, Delegation) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let session = SessionKey::generate(&mut rng);
    let wallet = WalletKey::generate(&mut rng);
    let req = DelegationRequest::new("test.local", wallet.address(), 1, "test");
    let delegation = Delegation::sign(&delegation_message(session.public(), &req, T0, &mut rng), &wallet);
    (session, delegation)
}

/// A node that is not alone in a ring (it routes what it sends over its links).
pub(super) fn node(seed: u64) -> (Node, SessionPublicKey) {
    let (session, delegation) = identity(seed);
    let public = *session.public();
    let mut node = Node::new(Config::new("test", [seed as u8; 32]), session, delegation, T0).expect("valid");
    node.membership.founder = false;
    (node, public)
}

/// Gives `node` an open link to `peer`, for its routed frames to leave by.
pub(super) fn link_to(node: &mut Node, peer: &SessionPublicKey) -> LinkId {
    let mut link = Link::answer(T0, peer.node_id(), LinkKind::From(LinkPurpose::Finger), AnswerPath::Http(0));
    link.state = LinkState::Open;
    node.links.insert(link)
}
