//! What a simulated node keeps across a restart that keeps its durable state
//! ([`World::restart_durable`](crate::world::World::restart_durable)): its record store and its table of
//! accepted messages, as a server keeps them in its database. Each is shared between the world's slot and
//! the node's life that writes it, so the next life of the node starts from what the last one wrote. A
//! plain [`World::restart`](crate::world::World::restart) gives the node empty ones.
//!
//! Writes go through at once (the node's outputs are carried out after its input returns), so what a node
//! acknowledged is always in its durable state: the simulator's model of "commit before output".

use std::sync::{Arc, Mutex, MutexGuard};

use chordial_core::node::accepted::{AcceptedStore, MemoryAcceptedStore, Saved};
use chordial_core::node::records::{MemoryStore, Record, RecordStore, StoreError};
use chordial_core::{Id, Timestamp};

/// One node's durable state, shared by its slot and its current life.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    /// The record store.
    pub records: SharedRecords,
    /// The accepted table.
    pub accepted: SharedAccepted,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A [`MemoryStore`] that outlives the node that writes it.
#[derive(Clone, Debug, Default)]
pub struct SharedRecords(pub Arc<Mutex<MemoryStore>>);

impl RecordStore for SharedRecords {
    fn put_at(&mut self, key: Id, record: Record, now: Timestamp) -> Result<bool, StoreError> {
        lock(&self.0).put_at(key, record, now)
    }
    fn get(&self, key: Id) -> Vec<Record> {
        lock(&self.0).get(key)
    }
    fn remove_mail(&mut self, key: Id, ids: &[[u8; 16]], until: Timestamp) -> usize {
        lock(&self.0).remove_mail(key, ids, until)
    }
    fn expire(&mut self, now: Timestamp) {
        lock(&self.0).expire(now)
    }
    fn keys(&self) -> Vec<Id> {
        lock(&self.0).keys()
    }
    fn len(&self) -> usize {
        lock(&self.0).len()
    }
    fn bytes(&self) -> usize {
        lock(&self.0).bytes()
    }
    fn set_budget(&mut self, bytes: usize) {
        lock(&self.0).set_budget(bytes)
    }
}

/// A [`MemoryAcceptedStore`] that outlives the node that writes it.
#[derive(Clone, Debug, Default)]
pub struct SharedAccepted(pub Arc<Mutex<MemoryAcceptedStore>>);

impl SharedAccepted {
    /// Rows saved (sending sessions remembered).
    pub fn rows(&self) -> usize {
        lock(&self.0).rows.len()
    }
}

impl AcceptedStore for SharedAccepted {
    fn load(&self) -> Saved {
        lock(&self.0).load()
    }
    fn put(&mut self, session: &[u8; 33], row: Option<Vec<u8>>) {
        lock(&self.0).put(session, row)
    }
    fn put_forgotten_before(&mut self, at: Timestamp) {
        lock(&self.0).put_forgotten_before(at)
    }
}
