//! Attackers in the simulator.
//!
//! An attacker is an ordinary simulated node (it joins, keeps links, routes) whose frames pass through an
//! [`Adversary`] on their way in and out: the adversary sees every frame its node receives and sends, may
//! swallow or change them, and may send frames of its own on any of its node's open links, signed with its
//! node's session key (it holds no other key). What it builds, it builds with the wire types the `forge`
//! feature of `chordial-core` makes public (`chordial_core::node::msg`), so it can send anything an attacker
//! on a real link could.
//!
//! ```text
//!   frame for the attacker ──▶ Adversary::on_frame ──pass?──▶ its Node
//!   its Node's Transmit ────▶ Adversary::on_transmit ──Some(bytes)──▶ the network
//!   Ctx::send(link, bytes) (from either hook, or World::send_raw from a test) ──▶ the network
//! ```
//!
//! Tests that want counters from their adversary share them through an `Rc<Cell<_>>` or `Rc<RefCell<_>>`.

use chordial_core::identity::SessionKey;
use chordial_core::node::LinkId;
use chordial_core::wire::envelope::NetworkTag;
use chordial_core::Timestamp;
use rand_chacha::ChaCha20Rng;

/// What an attacker's node does differently. Both hooks default to honest behaviour.
pub trait Adversary {
    /// A frame arriving at the attacker's node on `link`; `true` hands it to the node, `false` swallows it.
    fn on_frame(&mut self, ctx: &mut Ctx<'_>, link: LinkId, bytes: &[u8]) -> bool {
        let _ = (ctx, link, bytes);
        true
    }

    /// A frame the attacker's node sends on `link`: `Some` sends these bytes (changed or not), `None`
    /// withholds the frame.
    fn on_transmit(&mut self, ctx: &mut Ctx<'_>, link: LinkId, bytes: Vec<u8>) -> Option<Vec<u8>> {
        let _ = (ctx, link);
        Some(bytes)
    }
}

/// What an adversary may use: the time, its node's key, the network tag, the world's random stream, and
/// its node's links to send on.
pub struct Ctx<'a> {
    /// The virtual time.
    pub now: Timestamp,
    /// The attacker node's own session key.
    pub session: &'a SessionKey,
    /// The network's tag (for envelopes the ring accepts).
    pub network: NetworkTag,
    /// The world's random stream (so a run stays reproducible).
    pub rng: &'a mut ChaCha20Rng,
    /// The attacker node's open links (its end's id, and the peer's node index).
    pub links: &'a [(LinkId, usize)],
    pub(crate) sends: Vec<(LinkId, Vec<u8>)>,
}

impl Ctx<'_> {
    /// Sends `bytes` on the attacker node's `link` (after the hook returns, in the order sent).
    pub fn send(&mut self, link: LinkId, bytes: Vec<u8>) {
        self.sends.push((link, bytes));
    }
}
