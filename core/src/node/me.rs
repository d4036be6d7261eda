//! This node's identity, as a sub-machine: the session key, the wallet's delegation to it, the network tag,
//! and the cache of delegations already verified.
//!
//! - **Owns**: the [`SessionKey`], the node's own [`Delegation`] and what it says (wallet, expiry), the
//!   [`NetworkTag`], the [`DelegationCache`].
//! - **Takes**: the RNG (message ids) and the hop limit when it signs an envelope; a peer's delegation and
//!   the key that signed its message when it checks a peer.
//! - **Emits**: signed envelopes; counts refused identities in the [`Counters`] it is handed.

use rand_chacha::ChaCha20Rng;

use super::msg::Routed;
use crate::identity::delegation::{Delegation, DelegationCache, DelegationError, VerifiedDelegation};
use crate::identity::{Address, SessionKey, SessionPublicKey};
use crate::node::api::Counters;
use crate::time::Timestamp;
use crate::wire::envelope::{self, Destination, Header, MessageId, NetworkTag};

/// This node's identity and the delegations it has checked.
pub(crate) struct Me {
    pub(crate) session: SessionKey,
    pub(crate) delegation: Delegation,
    /// The wallet this node acts for.
    pub(crate) wallet: Address,
    /// When the node's own delegation expires (records it signs never outlive it).
    pub(crate) delegation_expires: Timestamp,
    pub(crate) network: NetworkTag,
    pub(crate) cache: DelegationCache,
}

impl Me {
    pub(crate) fn new(
        session: SessionKey,
        delegation: Delegation,
        verified: &VerifiedDelegation,
        network: &str,
        cache: DelegationCache,
    ) -> Me {
        Me {
            session,
            delegation,
            wallet: verified.wallet,
            delegation_expires: verified.expires,
            network: NetworkTag::from_name(network),
            cache,
        }
    }

    /// Signs `body` in an envelope from this node, with a fresh message id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn encode(
        &self,
        rng: &mut ChaCha20Rng,
        hop_limit: u8,
        now: Timestamp,
        dest: Destination,
        reply_to: Option<MessageId>,
        body: &Routed,
    ) -> Option<(Header, Vec<u8>)> {
        let header = Header {
            network: self.network,
            id: MessageId::random(rng),
            sent_at: now,
            dest,
            hop_limit,
            reply_to,
        };
        let bytes = envelope::encode(&self.session, &header, body).ok()?;
        Some((header, bytes))
    }

    /// Checks that `delegation` is valid now on `network` and delegates to `signer` (the key that signed the
    /// message carrying it). Failures are counted.
    pub(crate) fn verify_peer(
        &mut self,
        network: &str,
        counters: &mut Counters,
        delegation: &Delegation,
        signer: &SessionPublicKey,
        now: Timestamp,
    ) -> Result<(), DelegationError> {
        let result = self.cache.verify(delegation, network, now).and_then(|v| {
            if v.session == *signer {
                Ok(())
            } else {
                Err(DelegationError::WrongSession)
            }
        });
        if result.is_err() {
            counters.refused_identity += 1;
        }
        result
    }
}
