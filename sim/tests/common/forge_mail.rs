//! What the mailbox attack scenarios share: frames an attacker node builds (routed bodies signed with its
//! own session key, link messages it sends its peers), delegations from wallets of its own, and reading what
//! the holders of a mailbox keep.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use rand_chacha::ChaCha20Rng;

use chordial_core::identity::delegation::{delegation_message, Delegation, DelegationRequest};
use chordial_core::identity::wallet::WalletKey;
use chordial_core::identity::{Address, SessionKey};
use chordial_core::node::msg::{self, LinkMsg, Routed};
use chordial_core::node::records::{presence_key, presence_keys, MailboxEntry, PresenceRecord, Record};
use chordial_core::node::LinkId;
use chordial_core::wire::envelope::{self, Destination};
use chordial_core::Id;
use chordial_sim::World;

/// A delegation to `session` from a fresh wallet of the attacker's own (wallets cost nothing).
pub fn own_wallet(rng: &mut ChaCha20Rng, world: &World, session: &SessionKey) -> (Address, Delegation) {
    let wallet = WalletKey::generate(rng);
    let request = DelegationRequest {
        domain: "attacker.invalid".to_owned(),
        address: wallet.address(),
        chain_id: 1,
        network: world.config().network.clone(),
        lifetime: Duration::from_secs(30 * 24 * 3600),
    };
    let issued = world.now().saturating_sub(Duration::from_secs(60));
    let delegation = Delegation::sign(&delegation_message(session.public(), &request, issued, rng), &wallet);
    (wallet.address(), delegation)
}

/// A routed frame from node `from` (signed with its session key) to `dest`.
pub fn routed_frame(world: &mut World, from: usize, dest: Destination, body: &Routed) -> Vec<u8> {
    let (network, now) = (world.network_tag(), world.now());
    let header = crate::common::forged_header(world.rng(), network, now, dest);
    let signed =
        envelope::encode(&world.session_key(from), &header, body).expect("a small body fits a frame");
    msg::routed_frame(&signed, false)
}

/// Node `from`'s open link to node `to`, if it has one.
pub fn link_to(world: &World, from: usize, to: usize) -> Option<LinkId> {
    world.open_links(from).into_iter().find(|(_, peer)| *peer == to).map(|(link, _)| link)
}

/// A running node other than those in `exclude` with an open link to `holder`, and that link: an attacker
/// that is a link peer of `holder`.
pub fn link_peer_of(world: &World, holder: usize, exclude: &[usize]) -> (usize, LinkId) {
    world
        .open_links(holder)
        .into_iter()
        .map(|(_, peer)| peer)
        .filter(|peer| !exclude.contains(peer) && *peer != holder)
        .find_map(|peer| link_to(world, peer, holder).map(|link| (peer, link)))
        .unwrap_or_else(|| panic!("node {holder} has no link peer outside {exclude:?}"))
}

/// Sends a link message from node `from` on its link to `to`.
pub fn send_link(world: &mut World, from: usize, link: LinkId, m: &LinkMsg) {
    world.send_raw(from, link, msg::link_frame(m));
}

/// The mailbox entries node `holder` keeps for `wallet`, under any of its positions ([`presence_keys`]),
/// each id once.
pub fn entries_at(world: &World, holder: usize, wallet: &Address) -> Vec<MailboxEntry> {
    let Some(node) = world.node(holder) else { return Vec::new() };
    let mut entries: Vec<MailboxEntry> = Vec::new();
    for key in presence_keys(wallet) {
        for r in node.inspect().records(key) {
            match r {
                Record::Mailbox(m) if !entries.iter().any(|e| e.id == m.id) => entries.push(m),
                Record::Mailbox(_) | Record::Presence(_) | Record::Topic(_) => {}
            }
        }
    }
    entries
}

/// The running nodes that keep records under `key`.
pub fn holders_of(world: &World, key: Id) -> Vec<usize> {
    (0..world.len()).filter(|i| world.node(*i).is_some_and(|n| n.inspect().has_record(key))).collect()
}

/// A presence record of `wallet`, as any node holding its key keeps it (presence is public).
pub fn presence_of(world: &World, wallet: &Address) -> PresenceRecord {
    holders_of(world, presence_key(wallet))
        .into_iter()
        .flat_map(|i| world.node(i).map(|n| n.inspect().records(presence_key(wallet))).unwrap_or_default())
        .find_map(|r| match r {
            Record::Presence(p) => Some(p),
            Record::Topic(_) | Record::Mailbox(_) => None,
        })
        .unwrap_or_else(|| panic!("no presence record of {wallet:?} is held"))
}
