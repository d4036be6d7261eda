//! The session keys of nodes this node has heard from, by node id: what a link offer through the ring is
//! sealed to (`signal.rs`). An offerer knows its target by id only (from a lookup, a successor list, a
//! refusal's alternatives); the id is `sha1(session key)`, so a key is found by its id but never guessed.
//!
//! - **Owns** ([`KeyBook`]): at most [`KEY_BOOK_CAPACITY`] keys, the one heard from longest ago forgotten
//!   first, each as its 33 bytes (a parsed key with its curve point is four times that; the point is
//!   worked out again when an offer is sealed, which is rare beside the envelopes that refresh the book).
//! - **Takes**: the origin key of every envelope delivered to this node, after its signature verified.
//!   Nothing unauthenticated goes in, and the id of an entry is computed from its key, so an entry can be
//!   missing but never wrong.
//! - **Costs of forgetting**: a key that is not here costs one round trip on the next offer to that node
//!   (the offer asks for it first: `SealedOffer` with nothing sealed, answered by `ConnectReject {
//!   SealToMe }` signed by that key). So a flood of envelopes from many free keys, which could push every
//!   useful key out, delays link setup by a round trip and refuses nothing.

use std::collections::{BTreeMap, HashMap};

use crate::crypto::CryptoRef;
use crate::id::Id;
use crate::identity::SessionPublicKey;

/// Keys kept: far more than the couple of dozen peers a node links to, and ~100 KB at most (about 100
/// bytes an entry with both indexes).
pub(crate) const KEY_BOOK_CAPACITY: usize = 1024;

/// Session keys by node id, the least recently heard forgotten first. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct KeyBook {
    capacity: usize,
    /// Each key's bytes and the stamp of when it was last heard.
    keys: HashMap<Id, ([u8; 33], u64)>,
    /// The same entries by stamp, oldest first.
    order: BTreeMap<u64, Id>,
    next_stamp: u64,
}

impl Default for KeyBook {
    fn default() -> Self {
        KeyBook::new(KEY_BOOK_CAPACITY)
    }
}

impl KeyBook {
    pub(crate) fn new(capacity: usize) -> KeyBook {
        KeyBook { capacity: capacity.max(1), keys: HashMap::new(), order: BTreeMap::new(), next_stamp: 0 }
    }

    /// Remembers `key` (from a verified envelope) as the most recently heard; forgets the oldest when full.
    pub(crate) fn learn(&mut self, key: &SessionPublicKey) {
        let id = key.node_id();
        self.next_stamp += 1;
        if let Some((_, stamp)) = self.keys.insert(id, (*key.as_bytes(), self.next_stamp)) {
            self.order.remove(&stamp);
        }
        self.order.insert(self.next_stamp, id);
        if self.keys.len() > self.capacity {
            if let Some((_, oldest)) = self.order.pop_first() {
                self.keys.remove(&oldest);
            }
        }
    }

    /// The session key of node `id`, if heard from and not forgotten, parsed by `crypto` (bytes that once
    /// verified a signature always parse).
    pub(crate) fn get(&self, id: Id, crypto: CryptoRef) -> Option<SessionPublicKey> {
        self.keys.get(&id).and_then(|(bytes, _)| crypto.public_key(bytes).ok())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::KeyBook;
    use crate::crypto::REAL;
    use crate::identity::SessionKey;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn keys_are_found_by_their_id_and_the_least_recently_heard_goes_first() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let keys: Vec<_> = (0..5).map(|_| *SessionKey::generate(&mut rng).public()).collect();
        let mut book = KeyBook::new(3);
        for key in &keys[..3] {
            book.learn(key);
        }
        assert_eq!(book.get(keys[1].node_id(), &REAL), Some(keys[1]));
        // Heard again: now the most recent, so the next to go is keys[1].
        book.learn(&keys[0]);
        book.learn(&keys[3]);
        assert_eq!(book.len(), 3);
        assert_eq!(book.get(keys[1].node_id(), &REAL), None);
        assert_eq!(book.get(keys[0].node_id(), &REAL), Some(keys[0]));
        // A flood of new keys never grows the book.
        for _ in 0..50 {
            let key = *SessionKey::generate(&mut rng).public();
            book.learn(&key);
        }
        assert_eq!(book.len(), 3);
        assert_eq!(book.get(keys[4].node_id(), &REAL), None);
    }
}
