//! The durable [`RecordStore`]: the core's own [`MemoryStore`] decides (slots, caps, staleness,
//! tombstones), and every change is staged for a redb database; a [`StoreWriter`] commits what is staged
//! in one (fsynced) transaction. The node task commits before it carries out any output (see
//! `runtime.rs`): the core queues a record's acknowledgement when `put` returns, but that
//! acknowledgement only leaves the process after the batch holding the record committed, so what was
//! acknowledged survives `kill -9`, and a burst of stores costs one fsync instead of one each.
//!
//! Layout (`DATA_DIR/store.redb`):
//! - `records`: record key (20 bytes) → postcard `Vec<Record>` (everything held under that key);
//! - `delivered`: record key ‖ mailbox id (36 bytes) → Unix ms until which the delivered id is remembered;
//! - `accepted`: sending session (33 bytes) → what this node delivered to its app from that session
//!   (`chordial_core::node::accepted::SenderRow::encode`), and `accepted_meta`: `"forgotten_before"` → Unix
//!   ms. Written through [`RedbAccepted`] and committed in the same transactions as the records, so a
//!   message's receipt and app event leave only once its row is on disk. A store written before these
//!   tables existed opens with them empty: a clean start (docs/security.md).
//!
//! On open, tombstones are loaded first and then records, through the same `MemoryStore` logic, so a
//! mailbox entry delivered before a crash does not come back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chordial_core::node::accepted::{AcceptedStore, Saved};
use chordial_core::node::records::{decode_record_list, MemoryStore, Record, RecordStore, StoreError};
use chordial_core::{Id, Timestamp};
use redb::{Database, ReadableTable, TableDefinition};

const RECORDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("records");
const DELIVERED: TableDefinition<'_, &[u8], u64> = TableDefinition::new("delivered");
const ACCEPTED: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("accepted");
const ACCEPTED_META: TableDefinition<'_, &str, u64> = TableDefinition::new("accepted_meta");
/// The `accepted_meta` key of the forgotten-before time.
const FORGOTTEN_BEFORE: &str = "forgotten_before";
/// The database file's name in the data dir.
pub const DB_FILE: &str = "store.redb";
/// Tombstones mirrored (the memory store keeps at most as many).
const MAX_TOMBSTONES: usize = 65_536;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The database could not be opened or read.
    #[error("store: {0}")]
    Db(String),
}

fn db_err(e: impl std::fmt::Display) -> OpenError {
    OpenError::Db(e.to_string())
}

/// Records and mailboxes in redb, served from memory.
pub struct RedbStore {
    writer: StoreWriter,
    memory: MemoryStore,
    /// The tombstones written to the database, to delete them when they lapse.
    tombstones: BTreeMap<(Id, [u8; 16]), u64>,
    /// Mailbox entries held under each key that holds any (for [`StoreStats::mailbox_entries`]).
    mail_per_key: HashMap<Id, u64>,
    /// The accepted table as opened, until [`RedbStore::accepted`] hands it to the node.
    accepted: Saved,
}

/// Counts kept as the store changes, so a status page reads them without walking the store.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Records held (mailbox entries included).
    pub records: AtomicU64,
    /// Mailbox entries held.
    pub mailbox_entries: AtomicU64,
    /// Transactions committed since start.
    pub commits: AtomicU64,
    /// Changed keys and tombstones written by those transactions.
    pub writes: AtomicU64,
}

/// Changes made in memory and not yet committed.
#[derive(Debug, Default)]
struct Staged {
    /// Key → everything now held under it (postcard `Vec<Record>`), or `None`: delete the key.
    records: BTreeMap<Id, Option<Vec<u8>>>,
    /// Tombstones to write (until when), and to delete.
    tombs_add: BTreeMap<(Id, [u8; 16]), u64>,
    tombs_remove: BTreeSet<(Id, [u8; 16])>,
    /// Accepted-table rows to write (`Some`) or delete (`None`), by sending session.
    accepted: BTreeMap<[u8; 33], Option<Vec<u8>>>,
    /// The forgotten-before time to write.
    forgotten_before: Option<u64>,
}

impl Staged {
    fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.tombs_add.is_empty()
            && self.tombs_remove.is_empty()
            && self.accepted.is_empty()
            && self.forgotten_before.is_none()
    }
}

/// Commits what a [`RedbStore`] staged. The node task holds one (the store itself is inside the node).
#[derive(Clone)]
pub struct StoreWriter {
    db: Arc<Database>,
    staged: Arc<Mutex<Staged>>,
    /// The store's counts.
    pub stats: Arc<StoreStats>,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter").finish_non_exhaustive()
    }
}

/// A redb error, boxed (they are large).
fn boxed(e: impl Into<redb::Error>) -> Box<redb::Error> {
    Box::new(e.into())
}

impl StoreWriter {
    /// Commits everything staged so far in one transaction; returns how many changes it wrote (0: there
    /// was nothing to do and no transaction was made). On an error nothing staged is known to be on disk.
    pub fn commit(&self) -> Result<usize, Box<redb::Error>> {
        let staged = {
            let mut guard = self.staged.lock().unwrap_or_else(|e| e.into_inner());
            if guard.is_empty() {
                return Ok(0);
            }
            std::mem::take(&mut *guard)
        };
        let n = staged.records.len()
            + staged.tombs_add.len()
            + staged.tombs_remove.len()
            + staged.accepted.len()
            + usize::from(staged.forgotten_before.is_some());
        let tx = self.db.begin_write().map_err(boxed)?;
        {
            let mut table = tx.open_table(RECORDS).map_err(boxed)?;
            for (key, held) in &staged.records {
                match held {
                    Some(bytes) => {
                        table.insert(key.as_bytes().as_slice(), bytes.as_slice()).map_err(boxed)?;
                    }
                    None => {
                        table.remove(key.as_bytes().as_slice()).map_err(boxed)?;
                    }
                }
            }
            let mut tombs = tx.open_table(DELIVERED).map_err(boxed)?;
            for ((key, id), until) in &staged.tombs_add {
                tombs.insert(tomb_key(*key, id).as_slice(), *until).map_err(boxed)?;
            }
            for (key, id) in &staged.tombs_remove {
                tombs.remove(tomb_key(*key, id).as_slice()).map_err(boxed)?;
            }
            let mut accepted = tx.open_table(ACCEPTED).map_err(boxed)?;
            for (session, row) in &staged.accepted {
                match row {
                    Some(bytes) => {
                        accepted.insert(session.as_slice(), bytes.as_slice()).map_err(boxed)?;
                    }
                    None => {
                        accepted.remove(session.as_slice()).map_err(boxed)?;
                    }
                }
            }
            if let Some(at) = staged.forgotten_before {
                let mut meta = tx.open_table(ACCEPTED_META).map_err(boxed)?;
                meta.insert(FORGOTTEN_BEFORE, at).map_err(boxed)?;
            }
        }
        tx.commit().map_err(boxed)?;
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.stats.writes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Whether changes wait for [`commit`](Self::commit).
    pub fn has_staged(&self) -> bool {
        !self.staged.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("records", &self.memory.len()).finish_non_exhaustive()
    }
}

fn tomb_key(key: Id, id: &[u8; 16]) -> [u8; 36] {
    let mut k = [0u8; 36];
    k[..20].copy_from_slice(key.as_bytes());
    k[20..].copy_from_slice(id);
    k
}

impl RedbStore {
    /// Opens (or creates) the store in `dir` and loads what it holds, dropping what lapsed before `now`.
    pub fn open(dir: &Path, now: Timestamp) -> Result<RedbStore, OpenError> {
        let db = Database::create(dir.join(DB_FILE)).map_err(db_err)?;
        let tx = db.begin_write().map_err(db_err)?;
        tx.open_table(RECORDS).map_err(db_err)?;
        tx.open_table(DELIVERED).map_err(db_err)?;
        tx.open_table(ACCEPTED).map_err(db_err)?;
        tx.open_table(ACCEPTED_META).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        let writer = StoreWriter { db: Arc::new(db), staged: Arc::default(), stats: Arc::default() };
        let mut store = RedbStore {
            writer,
            memory: MemoryStore::default(),
            tombstones: BTreeMap::new(),
            mail_per_key: HashMap::new(),
            accepted: (Vec::new(), Timestamp::ZERO),
        };
        let rtx = store.writer.db.begin_read().map_err(db_err)?;
        let delivered = rtx.open_table(DELIVERED).map_err(db_err)?;
        for item in delivered.iter().map_err(db_err)? {
            let (k, until) = item.map_err(db_err)?;
            let (k, until) = (k.value(), until.value());
            if k.len() != 36 || until <= now.0 {
                continue;
            }
            let key = Id(k[..20].try_into().unwrap_or_default());
            let id: [u8; 16] = k[20..].try_into().unwrap_or_default();
            store.memory.remove_mail(key, &[id], Timestamp(until));
            store.tombstones.insert((key, id), until);
        }
        let records = rtx.open_table(RECORDS).map_err(db_err)?;
        let mut loaded = 0usize;
        let mut mailbox = 0usize;
        let mut bad = 0usize;
        for item in records.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            // Records live under one of several keys each (presence positions): back under the row's key.
            let key = <[u8; 20]>::try_from(k.value()).map(Id);
            // Written by this version or the one before static keys (its presence records are dropped,
            // its mail and topics kept: records::decode_record_list).
            match (key, decode_record_list(v.value())) {
                (Ok(key), Some(list)) => {
                    for r in list.into_iter().filter(|r| r.keep_until() > now && r.keys().contains(&key)) {
                        let is_mail = matches!(r, Record::Mailbox(_));
                        if store.memory.put_at(key, r, now).is_ok() {
                            loaded += 1;
                            mailbox += usize::from(is_mail);
                        }
                    }
                }
                _ => bad += 1,
            }
        }
        drop(records);
        drop(delivered);
        // The accepted table: rows whose key is not a session key's length are skipped (the node treats a
        // row it cannot decode as unreadable and deletes it).
        let accepted = rtx.open_table(ACCEPTED).map_err(db_err)?;
        for item in accepted.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            if let Ok(session) = <[u8; 33]>::try_from(k.value()) {
                store.accepted.0.push((session, v.value().to_vec()));
            }
        }
        let meta = rtx.open_table(ACCEPTED_META).map_err(db_err)?;
        if let Some(at) = meta.get(FORGOTTEN_BEFORE).map_err(db_err)? {
            store.accepted.1 = Timestamp(at.value());
        }
        drop(accepted);
        drop(meta);
        drop(rtx);
        for key in store.memory.keys() {
            store.count(key, &store.memory.get(key));
        }
        tracing::info!(
            records = loaded,
            mailbox,
            unreadable = bad,
            tombstones = store.tombstones.len(),
            accepted_sessions = store.accepted.0.len(),
            "store opened"
        );
        Ok(store)
    }

    /// The handle that commits this store's changes (and reads its counts).
    pub fn writer(&self) -> StoreWriter {
        self.writer.clone()
    }

    /// The node's accepted table in this database (`Node::with_accepted_store`): what was opened, and
    /// every change staged for this store's commits. Call once; a second call hands over nothing loaded.
    pub fn accepted(&mut self) -> RedbAccepted {
        RedbAccepted { writer: self.writer.clone(), loaded: std::mem::take(&mut self.accepted) }
    }

    /// Updates the counts for `key`, which now holds `held`.
    fn count(&mut self, key: Id, held: &[Record]) {
        let stats = &self.writer.stats;
        let mail = held.iter().filter(|r| matches!(r, Record::Mailbox(_))).count() as u64;
        let before =
            if mail == 0 { self.mail_per_key.remove(&key) } else { self.mail_per_key.insert(key, mail) };
        stats.mailbox_entries.fetch_add(mail, Ordering::Relaxed);
        stats.mailbox_entries.fetch_sub(before.unwrap_or(0), Ordering::Relaxed);
        stats.records.store(self.memory.len() as u64, Ordering::Relaxed);
    }

    /// Stages the records now held under `keys` and the tombstone changes for the next commit.
    fn stage(&mut self, keys: &[Id], add: &[(Id, [u8; 16], u64)], remove: &[(Id, [u8; 16])]) {
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let held = self.memory.get(*key);
            self.count(*key, &held);
            let bytes = (!held.is_empty()).then(|| postcard::to_allocvec(&held).unwrap_or_default());
            rows.push((*key, bytes));
        }
        let mut staged = self.writer.staged.lock().unwrap_or_else(|e| e.into_inner());
        staged.records.extend(rows);
        for k in remove {
            staged.tombs_add.remove(k);
            staged.tombs_remove.insert(*k);
        }
        for (key, id, until) in add {
            staged.tombs_remove.remove(&(*key, *id));
            staged.tombs_add.insert((*key, *id), *until);
        }
    }
}

/// The accepted table in the store's database: loaded at open, changes staged for the writer's next commit
/// (the one that precedes the node's outputs).
pub struct RedbAccepted {
    writer: StoreWriter,
    loaded: Saved,
}

impl std::fmt::Debug for RedbAccepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbAccepted").field("loaded", &self.loaded.0.len()).finish_non_exhaustive()
    }
}

impl AcceptedStore for RedbAccepted {
    fn load(&self) -> Saved {
        self.loaded.clone()
    }

    fn put(&mut self, session: &[u8; 33], row: Option<Vec<u8>>) {
        self.writer.staged.lock().unwrap_or_else(|e| e.into_inner()).accepted.insert(*session, row);
    }

    fn put_forgotten_before(&mut self, at: Timestamp) {
        self.writer.staged.lock().unwrap_or_else(|e| e.into_inner()).forgotten_before = Some(at.0);
    }
}

impl RecordStore for RedbStore {
    fn put_at(&mut self, key: Id, record: Record, now: Timestamp) -> Result<bool, StoreError> {
        let changed = self.memory.put_at(key, record, now)?;
        if changed {
            // On disk with the next commit, which comes before the acknowledgement leaves.
            self.stage(&[key], &[], &[]);
        }
        Ok(changed)
    }

    fn get(&self, key: Id) -> Vec<Record> {
        self.memory.get(key)
    }

    fn bytes(&self) -> usize {
        self.memory.bytes()
    }

    fn set_budget(&mut self, bytes: usize) {
        self.memory.set_budget(bytes);
    }

    fn remove_mail(&mut self, key: Id, ids: &[[u8; 16]], until: Timestamp) -> usize {
        let n = self.memory.remove_mail(key, ids, until);
        let mut add = Vec::with_capacity(ids.len());
        let mut remove = Vec::new();
        for id in ids {
            if self.tombstones.len() >= MAX_TOMBSTONES {
                if let Some((&first, _)) = self.tombstones.iter().min_by_key(|(_, t)| **t) {
                    self.tombstones.remove(&first);
                    remove.push(first);
                }
            }
            self.tombstones.insert((key, *id), until.0);
            add.push((key, *id, until.0));
        }
        self.stage(&[key], &add, &remove);
        n
    }

    fn expire(&mut self, now: Timestamp) {
        let lapsing: Vec<Id> = self
            .memory
            .keys()
            .into_iter()
            .filter(|k| self.memory.get(*k).iter().any(|r| r.keep_until() <= now))
            .collect();
        let old: Vec<(Id, [u8; 16])> =
            self.tombstones.iter().filter(|(_, until)| **until <= now.0).map(|(k, _)| *k).collect();
        self.memory.expire(now);
        if lapsing.is_empty() && old.is_empty() {
            return;
        }
        for k in &old {
            self.tombstones.remove(k);
        }
        self.stage(&lapsing, &[], &old);
    }

    fn keys(&self) -> Vec<Id> {
        self.memory.keys()
    }

    fn len(&self) -> usize {
        self.memory.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chordial_core::identity::delegation::{delegation_message, DelegationRequest};
    use chordial_core::identity::{Delegation, SessionKey, WalletKey};
    use chordial_core::node::records::{MailboxEntry, PresenceRecord};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    fn presence(rng: &mut ChaCha20Rng, now: Timestamp) -> Record {
        let session = SessionKey::generate(rng);
        let wallet = WalletKey::generate(rng);
        let req = DelegationRequest::new("t.local", wallet.address(), 1, "t");
        let d = Delegation::sign(&delegation_message(session.public(), &req, now, rng), &wallet);
        let expires = now.saturating_add(Duration::from_secs(600));
        Record::Presence(PresenceRecord::sign(&session, wallet.address(), &d, now, expires, false))
    }

    /// A mailbox entry for `to` from a fresh sender; its id is the digest of its `sealed` bytes.
    fn mail(rng: &mut ChaCha20Rng, to: chordial_core::identity::Address, id: u8) -> Record {
        let to_session = SessionKey::generate(rng);
        let sender = SessionKey::generate(rng);
        let wallet = WalletKey::generate(rng);
        let req = DelegationRequest::new("t.local", wallet.address(), 1, "t");
        let d = Delegation::sign(&delegation_message(sender.public(), &req, NOW, rng), &wallet);
        Record::Mailbox(MailboxEntry::sign(
            &sender,
            wallet.address(),
            &d,
            to,
            *to_session.public(),
            vec![id; 100],
            NOW,
            NOW.saturating_add(Duration::from_secs(3600)),
        ))
    }

    fn id_of(record: &Record) -> [u8; 16] {
        match record {
            Record::Mailbox(m) => m.id,
            Record::Presence(_) | Record::Topic(_) => unreachable!("a mailbox entry"),
        }
    }

    #[test]
    fn records_and_tombstones_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let p = presence(&mut rng, NOW);
        let Record::Presence(pr) = &p else { unreachable!() };
        let wallet = pr.wallet;
        let key = p.key();
        let first = mail(&mut rng, wallet, 1);
        {
            let mut s = RedbStore::open(dir.path(), NOW).unwrap();
            assert_eq!(s.put(p.clone(), NOW), Ok(true));
            assert_eq!(s.put(first.clone(), NOW), Ok(true));
            assert_eq!(s.put(mail(&mut rng, wallet, 2), NOW), Ok(true));
            assert_eq!(
                s.remove_mail(key, &[id_of(&first)], NOW.saturating_add(Duration::from_secs(7200))),
                1
            );
            assert_eq!(s.len(), 2);
            let stats = &s.writer().stats;
            assert_eq!(stats.records.load(Ordering::Relaxed), 2);
            assert_eq!(stats.mailbox_entries.load(Ordering::Relaxed), 1);
            // Four changes of one key and one tombstone: one transaction, two rows.
            assert_eq!(s.writer().commit().unwrap(), 2);
            assert_eq!(stats.commits.load(Ordering::Relaxed), 1);
        }
        let mut s = RedbStore::open(dir.path(), NOW).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.get(key).contains(&p));
        // The delivered entry stays delivered: a late copy is refused.
        assert_eq!(s.put(first, NOW), Err(StoreError::Delivered));
    }

    #[test]
    fn the_node_s_byte_budget_reaches_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let p = presence(&mut rng, NOW);
        let mut s = RedbStore::open(dir.path(), NOW).unwrap();
        s.set_budget(p.stored_bytes() - 1);
        assert_eq!(s.put(p.clone(), NOW), Err(StoreError::Full), "a record over the budget is refused");
        assert_eq!((s.len(), s.bytes()), (0, 0));
        s.set_budget(p.stored_bytes());
        assert_eq!(s.put(p.clone(), NOW), Ok(true));
        assert_eq!(s.bytes(), p.stored_bytes());
    }

    #[test]
    fn expired_records_are_deleted_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let p = presence(&mut rng, NOW);
        let Record::Presence(pr) = &p else { unreachable!() };
        let m = mail(&mut rng, pr.wallet, 3);
        let later = NOW.saturating_add(Duration::from_secs(3601));
        {
            let mut s = RedbStore::open(dir.path(), NOW).unwrap();
            s.put(p, NOW).unwrap();
            s.put(m, NOW).unwrap();
            s.writer().commit().unwrap();
            s.expire(later);
            assert_eq!(s.len(), 1, "the mailbox entry lapsed, presence is kept for days");
            assert_eq!(s.writer().stats.mailbox_entries.load(Ordering::Relaxed), 0);
            s.writer().commit().unwrap();
        }
        let s = RedbStore::open(dir.path(), NOW).unwrap();
        assert_eq!(s.len(), 1);
    }

    /// The promise the node task relies on: nothing is on disk before the writer commits, and everything
    /// staged is after it (so an acknowledgement sent after the commit is true).
    #[test]
    fn changes_reach_the_disk_with_the_commit_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let p = presence(&mut rng, NOW);
        {
            let mut s = RedbStore::open(dir.path(), NOW).unwrap();
            assert_eq!(s.put(p.clone(), NOW), Ok(true));
            assert!(s.writer().has_staged());
        }
        let mut s = RedbStore::open(dir.path(), NOW).unwrap();
        assert_eq!(s.len(), 0, "a put that was never committed is not on disk");
        assert_eq!(s.put(p.clone(), NOW), Ok(true));
        assert_eq!(s.writer().commit().unwrap(), 1);
        assert!(!s.writer().has_staged());
        assert_eq!(s.writer().commit().unwrap(), 0, "nothing staged: no transaction");
        drop(s);
        let s = RedbStore::open(dir.path(), NOW).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s.writer().stats.records.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_accepted_table_reaches_the_disk_with_the_commit_and_survives_reopening() {
        use chordial_core::node::accepted::SenderRow;
        let dir = tempfile::tempdir().unwrap();
        let session = [2u8; 33];
        let row = SenderRow { floor: 0, seqs: vec![7, 9], newest: NOW, since: Timestamp::ZERO }.encode();
        let later = NOW.saturating_add(Duration::from_secs(1));
        {
            let mut s = RedbStore::open(dir.path(), NOW).unwrap();
            let mut a = s.accepted();
            a.put(&session, Some(row.clone()));
            a.put_forgotten_before(later);
            assert!(s.writer().has_staged());
        }
        {
            let mut s = RedbStore::open(dir.path(), NOW).unwrap();
            assert_eq!(s.accepted().load(), (Vec::new(), Timestamp::ZERO), "never committed: not on disk");
            let mut a = s.accepted();
            a.put(&session, Some(row.clone()));
            a.put(&[3u8; 33], Some(row.clone()));
            a.put_forgotten_before(later);
            // Two rows and the time: one transaction.
            assert_eq!(s.writer().commit().unwrap(), 3);
        }
        {
            let mut s = RedbStore::open(dir.path(), NOW).unwrap();
            let (rows, forgotten_before) = s.accepted().load();
            assert_eq!(rows, vec![(session, row.clone()), ([3u8; 33], row.clone())]);
            assert_eq!(forgotten_before, later);
            s.accepted().put(&session, None);
            assert_eq!(s.writer().commit().unwrap(), 1);
        }
        let mut s = RedbStore::open(dir.path(), NOW).unwrap();
        assert_eq!(s.accepted().load().0, vec![([3u8; 33], row)]);
    }

    #[test]
    fn a_store_written_before_the_accepted_table_existed_opens_with_it_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let p = presence(&mut rng, NOW);
        {
            // What the previous version wrote: the records and delivered tables only.
            let db = Database::create(dir.path().join(DB_FILE)).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut records = tx.open_table(RECORDS).unwrap();
                let held = postcard::to_allocvec(&vec![p.clone()]).unwrap();
                records.insert(p.key().as_bytes().as_slice(), held.as_slice()).unwrap();
                tx.open_table(DELIVERED).unwrap();
            }
            tx.commit().unwrap();
        }
        let mut s = RedbStore::open(dir.path(), NOW).unwrap();
        assert_eq!(s.len(), 1, "the records are read as before");
        assert_eq!(s.accepted().load(), (Vec::new(), Timestamp::ZERO), "a clean start, not an error");
    }
}
