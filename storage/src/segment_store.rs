//! [`SegmentStorage`]: the durable store. Message bodies live in per-queue
//! append-only segment files; sled holds only the metadata.
//!
//! ```text
//! <dir>/LOCK                        exclusive OS lock: one broker per data dir
//! <dir>/sled/                       sled (the embedded metadata store):
//!     tree "meta"      "definitions" -> Definitions as JSON
//!     tree "queue-ids" len(vhost) u32 BE + vhost + name -> queue id (u64 BE)
//! <dir>/queues/<queue id, 16 hex digits>/   one QueueLog (segment_log.rs)
//! ```
//!
//! A queue's directory is named by an id sled hands out, not by its name:
//! vhost and queue names may hold any UTF-8 (`/`, NUL...) and together exceed
//! a file name's 255 bytes, while the id is short and unambiguous. A directory
//! with no id in sled (a queue whose creation never reached a sync) is
//! deleted at open. A queue's directory is deleted by renaming it to
//! `<id>.deleted` and fsyncing `queues/` before unlinking anything, so a crash
//! never leaves half a log (a segment without its ack file); open finishes
//! the deletion of any tombstone it finds.
//!
//! Bodies stay out of sled because sled copies a leaf node per insert and
//! per remove, which capped persistent throughput far below the disk's; an
//! append here is one `write` of the whole batch and a removal an 8-byte
//! append. A data dir written by the older sled-only store (one sled tree
//! per queue) is migrated into segment files the first time it is opened.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::dirty::{Dirty, sync_dir};
use crate::segment_log::{QueueLog, SEGMENT_TARGET};
use crate::{
    Definitions, QueueKey, SeqNo, Storage, StorageError, StorageStats, StoredMessage, codec,
};

/// sled page cache size: sled holds only definitions and queue ids now, so a
/// small cache is plenty (sled's default is 1 GiB).
const CACHE_CAPACITY: u64 = 8 * 1024 * 1024;

/// sled's own background flush period: a safety net only. Confirms never wait
/// for it; they wait for an explicit [`Storage::sync`].
const FLUSH_EVERY_MS: u64 = 1000;

/// Suffix a queue directory is renamed to before its files are unlinked.
const TOMBSTONE_SUFFIX: &str = ".deleted";

/// Tree holding the definitions snapshot.
const META_TREE: &[u8] = b"meta";

/// Key of the definitions snapshot inside [`META_TREE`].
const DEFINITIONS_KEY: &[u8] = b"definitions";

/// Tree mapping queue keys to the ids that name their directories.
const IDS_TREE: &[u8] = b"queue-ids";

/// Prefix of the per-queue trees of the older sled-only store.
const LEGACY_QUEUE_TREE_PREFIX: &[u8] = b"q/";

/// Messages per append when migrating a legacy queue tree.
const MIGRATION_BATCH: usize = 1024;

/// A [`Storage`] on disk, in a data directory owned by one broker process.
///
/// Appends and removes go to the queue's own files without flushing, under
/// the queue's own lock (queues never contend with each other); one
/// [`Storage::sync`] then fsyncs every file written since the previous one,
/// so one flusher thread commits the writes of every queue at once.
///
/// # Durability rules
///
/// - A failed `sync` is sticky: every later `sync` fails too, so no confirm
///   goes out over a write the kernel may have dropped; the broker nacks and
///   an operator restarts it (recovery then sees only what is on disk).
/// - Records are checked against their CRC at every read, not only at the
///   start-up scan; a damaged one is logged and treated as missing.
/// - Damage inside a segment skips the damaged region only; a segment is
///   truncated only at a torn tail, with no valid record after it.
/// - A segment or ack file that cannot be read is logged and skipped at
///   start-up, never deleted, and its number is never reused.
/// - A queue's directory is renamed to a tombstone (and the rename fsynced)
///   before its files are unlinked, so a crash never leaves a segment without
///   its ack file.
#[derive(Debug)]
pub struct SegmentStorage {
    // A std RwLock: lookups are the common case and never held across IO;
    // the write lock is taken only to add or drop a queue.
    queues: RwLock<HashMap<QueueKey, Arc<Slot>>>,
    dirty: Dirty,
    queues_dir: PathBuf,
    segment_target: u64,
    syncs: AtomicU64,
    files_synced: AtomicU64,
    appended: AtomicU64,
    /// The first sync failure, kept for good: after a failed fsync Linux may
    /// drop the dirty pages and clear the error, so a later fsync can return
    /// Ok over lost data. A std Mutex: set once, read once per sync.
    sync_error: Mutex<Option<String>>,
    // Field order matters: fields drop in declaration order, so sled is closed
    // before the lock file is released and a reopen never sees both open.
    db: sled::Db,
    meta: sled::Tree,
    ids: sled::Tree,
    /// Held (never read) for the life of the store: its OS lock keeps a second
    /// broker process off the data dir.
    _lock: File,
    dir: PathBuf,
}

/// One known queue: its id and, once touched, its loaded log.
#[derive(Debug)]
struct Slot {
    id: u64,
    // A std Mutex: one owner (the broker's queue task) writes a queue, so it
    // is uncontended; sync never takes it.
    log: Mutex<Option<QueueLog>>,
}

impl SegmentStorage {
    /// Opens (or creates) the store in `dir`.
    ///
    /// Creates the dir if needed and takes an exclusive lock on `<dir>/LOCK`,
    /// held until the store is dropped, so that two brokers never write one
    /// data dir ([`StorageError::Locked`] if another one holds it). Then opens
    /// sled at `<dir>/sled` for the metadata and migrates queue logs the
    /// sled-only store left there. Queue logs themselves are scanned lazily,
    /// on their first use.
    pub fn open(dir: &Path) -> Result<SegmentStorage, StorageError> {
        Self::open_with_segment_size(dir, SEGMENT_TARGET)
    }

    /// [`SegmentStorage::open`] with another segment size, so tests can roll
    /// segments with a few small messages.
    #[doc(hidden)]
    pub fn open_with_segment_size(
        dir: &Path,
        segment_target: u64,
    ) -> Result<SegmentStorage, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock = lock_dir(dir)?;
        let db = open_sled(&dir.join("sled"))?;
        let meta = db.open_tree(META_TREE)?;
        let ids = db.open_tree(IDS_TREE)?;
        let queues_dir = dir.join("queues");
        std::fs::create_dir_all(&queues_dir).map_err(|source| StorageError::Io {
            path: queues_dir.clone(),
            source,
        })?;

        let mut queues = HashMap::new();
        for kv in ids.iter() {
            let (k, v) = kv?;
            let (Some(q), Ok(id)) = (parse_name_key(&k), <[u8; 8]>::try_from(&v[..])) else {
                tracing::error!("skipping an unreadable queue id entry in sled");
                continue;
            };
            queues.insert(
                q,
                Arc::new(Slot {
                    id: u64::from_be_bytes(id),
                    log: Mutex::new(None),
                }),
            );
        }
        let store = SegmentStorage {
            queues: RwLock::new(queues),
            dirty: Dirty::default(),
            queues_dir,
            segment_target,
            syncs: AtomicU64::new(0),
            files_synced: AtomicU64::new(0),
            appended: AtomicU64::new(0),
            sync_error: Mutex::new(None),
            db,
            meta,
            ids,
            _lock: lock,
            dir: dir.to_path_buf(),
        };
        store.remove_orphan_dirs()?;
        store.migrate_legacy_trees()?;
        tracing::debug!(dir = %dir.display(), "storage opened");
        Ok(store)
    }

    /// The data directory this store owns, for log messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of segment files of a queue's log (loading it if needed), so
    /// tests can see rollover and deletion.
    #[doc(hidden)]
    pub fn segment_count(&self, q: &QueueKey) -> Result<usize, StorageError> {
        match self.slot(q) {
            None => Ok(0),
            Some(slot) => self.with_log(&slot, |log| Ok(log.segment_count())),
        }
    }

    /// The directory of a queue's log, if the queue has one, so tests can
    /// damage its files.
    #[doc(hidden)]
    pub fn queue_dir(&self, q: &QueueKey) -> Option<PathBuf> {
        self.slot(q).map(|s| self.dir_of(s.id))
    }

    fn dir_of(&self, id: u64) -> PathBuf {
        self.queues_dir.join(format!("{id:016x}"))
    }

    fn map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<QueueKey, Arc<Slot>>> {
        // Map updates cannot panic half-way: a poisoned lock guards a
        // consistent map.
        self.queues.read().unwrap_or_else(|e| e.into_inner())
    }

    fn map_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<QueueKey, Arc<Slot>>> {
        self.queues.write().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(&self, q: &QueueKey) -> Option<Arc<Slot>> {
        self.map().get(q).cloned()
    }

    /// The queue's slot, created (with a new id in sled) on first use.
    fn slot_or_create(&self, q: &QueueKey) -> Result<Arc<Slot>, StorageError> {
        if let Some(slot) = self.slot(q) {
            return Ok(slot);
        }
        let key = name_key(q)?;
        let mut map = self.map_mut();
        if let Some(slot) = map.get(q) {
            return Ok(slot.clone());
        }
        let id = self.db.generate_id()?;
        self.ids.insert(key, &id.to_be_bytes())?;
        self.dirty.meta();
        let slot = Arc::new(Slot {
            id,
            log: Mutex::new(None),
        });
        map.insert(q.clone(), slot.clone());
        Ok(slot)
    }

    /// Runs `f` on the queue's log, scanning it from disk first if this is
    /// its first use since the store was opened.
    fn with_log<T>(
        &self,
        slot: &Slot,
        f: impl FnOnce(&mut QueueLog) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut guard: MutexGuard<'_, Option<QueueLog>> =
            // A log operation that panicked cannot have left a torn record
            // (writes are cut back on error), so the log is still usable.
            slot.log.lock().unwrap_or_else(|e| e.into_inner());
        let log = match &mut *guard {
            Some(log) => log,
            None => guard.insert(QueueLog::open(
                self.dir_of(slot.id),
                self.segment_target,
                &self.dirty,
            )?),
        };
        f(log)
    }

    /// Deletes a queue's log directory so that a crash at any point leaves
    /// either the whole log or none of it: the directory is first renamed to
    /// a tombstone (`<id>.deleted`) and the rename made durable, and only
    /// then are its files unlinked. Unlinking in place could leave a segment
    /// without its ack file (readdir order), bringing acked messages back.
    /// `open` deletes tombstones left by a crash.
    fn remove_queue_dir(&self, dir: &Path) -> Result<(), StorageError> {
        let mut tomb = dir.as_os_str().to_owned();
        tomb.push(TOMBSTONE_SUFFIX);
        let tomb = PathBuf::from(tomb);
        match std::fs::rename(dir, &tomb) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(StorageError::Io {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
        sync_dir(&self.queues_dir)?;
        remove_dir_all(&tomb)?;
        self.dirty.dir(&self.queues_dir);
        Ok(())
    }

    /// Deletes queue directories that no id in sled points to: queues whose
    /// creation or deletion was cut short by a crash before a sync.
    fn remove_orphan_dirs(&self) -> Result<(), StorageError> {
        let known: std::collections::HashSet<u64> = self.map().values().map(|s| s.id).collect();
        let entries = std::fs::read_dir(&self.queues_dir).map_err(|source| StorageError::Io {
            path: self.queues_dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| StorageError::Io {
                path: self.queues_dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            if name.to_str().is_some_and(|n| n.ends_with(TOMBSTONE_SUFFIX)) {
                // A deletion cut short: the rename made it final already.
                tracing::info!(path = %entry.path().display(), "finishing the deletion of a queue log");
                // Never a reason not to start: nothing refers to it.
                if let Err(e) = remove_dir_all(&entry.path()) {
                    tracing::error!(error = %e, "cannot delete a queue log tombstone");
                }
                self.dirty.dir(&self.queues_dir);
                continue;
            }
            let Some(id) = name.to_str().and_then(|n| u64::from_str_radix(n, 16).ok()) else {
                tracing::warn!(path = %entry.path().display(), "ignoring unknown entry in the queues directory");
                continue;
            };
            if !known.contains(&id) {
                tracing::warn!(path = %entry.path().display(), "deleting the log of a queue that no longer exists");
                if let Err(e) = self.remove_queue_dir(&entry.path()) {
                    tracing::error!(error = %e, "cannot delete the log of a queue that no longer exists");
                }
            }
        }
        Ok(())
    }

    /// Moves the messages of the sled-only store's queue trees into segment
    /// files, one queue at a time: append, sync, then drop the tree. A crash
    /// in between leaves the tree, and the next open starts that queue over
    /// (dropping the partial segment copy first), so nothing is lost or
    /// duplicated.
    fn migrate_legacy_trees(&self) -> Result<(), StorageError> {
        let legacy: Vec<(sled::IVec, QueueKey)> = self
            .db
            .tree_names()
            .into_iter()
            .filter_map(|name| {
                let q = name
                    .strip_prefix(LEGACY_QUEUE_TREE_PREFIX)
                    .and_then(parse_name_key)?;
                Some((name, q))
            })
            .collect();
        for (name, q) in legacy {
            let tree = self.db.open_tree(&name)?;
            self.delete_queue(&q)?;
            let mut batch = Vec::with_capacity(MIGRATION_BATCH);
            let mut migrated = 0usize;
            let mut skipped = 0usize;
            for kv in tree.iter() {
                let (k, v) = kv?;
                match codec::decode_key(&k)
                    .and_then(|seq| codec::decode_value(seq, Bytes::copy_from_slice(&v)))
                {
                    Ok(m) => batch.push(m),
                    Err(e) => {
                        tracing::error!(queue = %q.name, vhost = %q.vhost, error = %e, "skipping an unreadable message while migrating");
                        skipped += 1;
                    }
                }
                if batch.len() == MIGRATION_BATCH {
                    self.append(&q, &batch)?;
                    migrated += batch.len();
                    batch.clear();
                }
            }
            self.append(&q, &batch)?;
            migrated += batch.len();
            self.sync()?;
            drop(tree);
            self.db.drop_tree(&name)?;
            self.db.flush()?;
            tracing::info!(queue = %q.name, vhost = %q.vhost, messages = migrated, skipped, "migrated a queue log from sled to segment files");
        }
        Ok(())
    }

    /// The first sync failure, if a sync has failed.
    fn sync_failed(&self) -> Option<String> {
        self.sync_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The error every sync returns after the first failure.
    fn sync_poisoned(&self, first: &str) -> StorageError {
        // The caller (the broker's flusher) logs every failed sync already.
        tracing::debug!(first = %first, "refusing to sync: an earlier fsync failed");
        StorageError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(format!(
                "an earlier fsync failed ({first}); written data may be lost, restart the broker"
            )),
        }
    }

    /// Fsyncs everything in `batch`.
    fn sync_batch(&self, batch: &crate::dirty::Batch) -> Result<(), StorageError> {
        for f in &batch.files {
            f.file.sync_data().map_err(|source| StorageError::Io {
                path: f.path.clone(),
                source,
            })?;
        }
        for d in &batch.dirs {
            sync_dir(d)?;
        }
        if batch.meta {
            self.db.flush()?;
        }
        Ok(())
    }
}

/// `remove_dir_all`; a directory already gone is fine.
fn remove_dir_all(dir: &Path) -> Result<(), StorageError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StorageError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Creates `<dir>/LOCK` and takes its exclusive lock.
fn lock_dir(dir: &Path) -> Result<File, StorageError> {
    let lock_path = dir.join("LOCK");
    let lock = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|source| StorageError::Io {
            path: lock_path.clone(),
            source,
        })?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(TryLockError::WouldBlock) => Err(StorageError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(TryLockError::Error(source)) => Err(StorageError::Io {
            path: lock_path,
            source,
        }),
    }
}

/// Opens sled, waiting out our own previous instance if it is still closing.
///
/// sled takes its own lock on its data file, and releases it only when its
/// last background IO thread lets go of the file, which can be a few
/// milliseconds after the `Db` is dropped. We already hold `<dir>/LOCK`, so
/// no other process can be behind that lock: it is a store of this process
/// being closed (a restart within one process, as tests do), and retrying
/// briefly is enough.
fn open_sled(path: &Path) -> Result<sled::Db, StorageError> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_CAPACITY)
        .flush_every_ms(Some(FLUSH_EVERY_MS));
    let deadline = Instant::now() + SLED_LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(e)) if is_sled_lock_error(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return Ok(other?),
        }
    }
}

/// How long [`open_sled`] waits for a closing instance to release sled's lock.
const SLED_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Whether sled failed to open because its data file is locked. sled 0.34
/// reports this only as text in an `io::Error` of kind `Other`.
fn is_sled_lock_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Other && e.to_string().contains("could not acquire lock")
}

/// A queue key as bytes: vhost length (u32 BE), vhost, name. Unambiguous for
/// any strings, unlike a plain `vhost/name` (which would map `("a/b", "c")`
/// and `("a", "b/c")` to one key).
fn name_key(q: &QueueKey) -> Result<Vec<u8>, StorageError> {
    let vhost_len = u32::try_from(q.vhost.len())
        .map_err(|_| StorageError::Invalid(format!("vhost is {} bytes", q.vhost.len())))?;
    let mut key = Vec::with_capacity(4 + q.vhost.len() + q.name.len());
    key.extend_from_slice(&vhost_len.to_be_bytes());
    key.extend_from_slice(q.vhost.as_bytes());
    key.extend_from_slice(q.name.as_bytes());
    Ok(key)
}

/// Reads a key written by [`name_key`] (also the tail of a legacy tree name).
fn parse_name_key(key: &[u8]) -> Option<QueueKey> {
    let len: [u8; 4] = key.get(..4)?.try_into().ok()?;
    let vhost_len = usize::try_from(u32::from_be_bytes(len)).ok()?;
    let vhost = key.get(4..4usize.checked_add(vhost_len)?)?;
    let name = key.get(4 + vhost_len..)?;
    Some(QueueKey::new(
        std::str::from_utf8(vhost).ok()?,
        std::str::from_utf8(name).ok()?,
    ))
}

impl Storage for SegmentStorage {
    fn append(&self, q: &QueueKey, msgs: &[StoredMessage]) -> Result<(), StorageError> {
        if msgs.is_empty() {
            return Ok(());
        }
        // Refuse an invalid batch before a queue is created for it.
        msgs.iter().try_for_each(codec::validate)?;
        let slot = self.slot_or_create(q)?;
        self.with_log(&slot, |log| log.append(msgs, &self.dirty))?;
        self.appended
            .fetch_add(u64::try_from(msgs.len()).unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }

    fn remove(&self, q: &QueueKey, seqs: &[SeqNo]) -> Result<(), StorageError> {
        match self.slot(q) {
            Some(slot) if !seqs.is_empty() => {
                self.with_log(&slot, |log| log.remove(seqs, &self.dirty))
            }
            _ => Ok(()),
        }
    }

    fn recover(&self, q: &QueueKey) -> Result<Vec<StoredMessage>, StorageError> {
        match self.slot(q) {
            Some(slot) => self.with_log(&slot, |log| log.read_all()),
            None => Ok(Vec::new()),
        }
    }

    fn recover_seqs(&self, q: &QueueKey) -> Result<Vec<SeqNo>, StorageError> {
        match self.slot(q) {
            Some(slot) => self.with_log(&slot, |log| Ok(log.live_seqs())),
            None => Ok(Vec::new()),
        }
    }

    fn read(&self, q: &QueueKey, seqs: &[SeqNo]) -> Result<Vec<StoredMessage>, StorageError> {
        match self.slot(q) {
            Some(slot) if !seqs.is_empty() => self.with_log(&slot, |log| log.read(seqs)),
            _ => Ok(Vec::new()),
        }
    }

    fn purge(&self, q: &QueueKey) -> Result<(), StorageError> {
        match self.slot(q) {
            Some(slot) => self.with_log(&slot, |log| log.purge(&self.dirty)),
            None => Ok(()),
        }
    }

    fn delete_queue(&self, q: &QueueKey) -> Result<(), StorageError> {
        let Some(slot) = self.map_mut().remove(q) else {
            return Ok(());
        };
        self.ids.remove(name_key(q)?)?;
        self.dirty.meta();
        self.remove_queue_dir(&self.dir_of(slot.id))
    }

    fn put_definitions(&self, d: &Definitions) -> Result<(), StorageError> {
        let json = serde_json::to_vec(d)
            .map_err(|e| StorageError::Invalid(format!("definitions: {e}")))?;
        self.meta.insert(DEFINITIONS_KEY, json)?;
        self.dirty.meta();
        Ok(())
    }

    fn load_definitions(&self) -> Result<Definitions, StorageError> {
        match self.meta.get(DEFINITIONS_KEY)? {
            None => Ok(Definitions::default()),
            Some(json) => serde_json::from_slice(&json)
                .map_err(|e| StorageError::Corrupt(format!("definitions: {e}"))),
        }
    }

    /// Once an fsync has failed, every later call fails too (see
    /// [`SegmentStorage`]): the kernel may have dropped the dirty pages and
    /// cleared the error, so a retry that "succeeds" proves nothing.
    fn sync(&self) -> Result<(), StorageError> {
        if let Some(first) = self.sync_failed() {
            return Err(self.sync_poisoned(&first));
        }
        // Taken under a short lock; the fsyncs run without any lock held, so
        // appends and removes of every queue go on meanwhile.
        let batch = self.dirty.take();
        let files = u64::try_from(batch.files.len()).unwrap_or(0);
        let result = self.sync_batch(&batch);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.files_synced.fetch_add(files, Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(error = %e, "sync failed; this store will fail every later sync (no confirm can be trusted after a lost write)");
            let mut first = self.sync_error.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| e.to_string());
            self.dirty.restore(batch);
        }
        result
    }

    fn size_on_disk(&self) -> u64 {
        let sled = self.db.size_on_disk().unwrap_or_else(|e| {
            tracing::debug!(error = %e, "size_on_disk failed");
            0
        });
        sled + dir_size(&self.queues_dir)
    }

    fn stats(&self) -> StorageStats {
        StorageStats {
            syncs: self.syncs.load(Ordering::Relaxed),
            files_synced: self.files_synced.load(Ordering::Relaxed),
            messages_appended: self.appended.load(Ordering::Relaxed),
        }
    }
}

/// Bytes of the files under `dir` (two levels: queue dirs, then segments).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_keys_do_not_collide_and_round_trip() {
        let pairs = [
            ("a/b", "c"),
            ("a", "b/c"),
            ("", "ab"),
            ("a", "b"),
            ("ab", ""),
            ("\0\0\0\u{1}a", ""),
        ];
        let keys: std::collections::HashSet<Vec<u8>> = pairs
            .iter()
            .map(|(v, n)| name_key(&QueueKey::new(*v, *n)).unwrap())
            .collect();
        assert_eq!(keys.len(), pairs.len());
        for (v, n) in pairs {
            let q = QueueKey::new(v, n);
            assert_eq!(parse_name_key(&name_key(&q).unwrap()), Some(q));
        }
        assert_eq!(parse_name_key(&[0, 0, 0, 9, b'a']), None);
    }

    #[test]
    fn snapshots_without_users_still_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SegmentStorage::open(dir.path()).expect("open");
        let old = br#"{"exchanges":[],"queues":[{"vhost":"/","name":"q","durable":true,"auto_delete":false,"arguments":[]}],"bindings":[]}"#;
        s.meta.insert(DEFINITIONS_KEY, &old[..]).expect("insert");
        let d = s.load_definitions().expect("old snapshot loads");
        assert_eq!(d.queues.len(), 1);
        assert!(d.users.is_empty() && d.permissions.is_empty());
    }

    /// After a failed fsync the kernel may have dropped the data and cleared
    /// the error: a later sync that would succeed must still fail.
    #[test]
    fn a_failed_sync_fails_every_later_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SegmentStorage::open(dir.path()).expect("open");
        let q = QueueKey::new("/", "q");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").expect("write");
        // A dir to fsync below a regular file: opening it fails (ENOTDIR).
        let bad = blocker.join("sub");
        s.dirty.dir(&bad);
        assert!(s.sync().is_err());
        // The cause goes away; nothing would fail any more.
        std::fs::remove_file(&blocker).expect("remove");
        std::fs::create_dir_all(&bad).expect("mkdir");
        s.append(
            &q,
            &[StoredMessage {
                seq: 1,
                exchange: "x".into(),
                routing_key: "q".into(),
                properties: Bytes::new(),
                body: Bytes::from_static(b"b"),
            }],
        )
        .expect("append");
        assert!(s.sync().is_err(), "sticky");
        assert!(s.sync().is_err(), "still sticky");
    }

    /// A data dir of the sled-only store: one tree per queue, codec values.
    #[test]
    fn legacy_sled_trees_are_migrated_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = QueueKey::new("a/b", "orders");
        let msgs: Vec<StoredMessage> = (1..=2500u64)
            .map(|seq| StoredMessage {
                seq,
                exchange: "amq.direct".into(),
                routing_key: "orders".into(),
                properties: Bytes::from_static(&[0x80, 0, 2]),
                body: Bytes::from(format!("body {seq}")),
            })
            .collect();
        {
            let db = open_sled(&dir.path().join("sled")).expect("sled");
            let mut tree_name = LEGACY_QUEUE_TREE_PREFIX.to_vec();
            tree_name.extend_from_slice(&name_key(&q).unwrap());
            let tree = db.open_tree(tree_name).expect("tree");
            for m in &msgs {
                tree.insert(codec::encode_key(m.seq), codec::encode_value(m).unwrap())
                    .expect("insert");
            }
            db.open_tree(META_TREE)
                .expect("meta")
                .insert(
                    DEFINITIONS_KEY,
                    serde_json::to_vec(&Definitions::default()).unwrap(),
                )
                .expect("defs");
            db.flush().expect("flush");
        }
        let s = SegmentStorage::open(dir.path()).expect("open migrates");
        assert_eq!(s.recover(&q).expect("recover"), msgs);
        assert!(
            !s.db
                .tree_names()
                .iter()
                .any(|n| n.starts_with(LEGACY_QUEUE_TREE_PREFIX)),
            "legacy trees dropped"
        );
        s.remove(&q, &[1, 2]).expect("remove");
        s.sync().expect("sync");
        drop(s);
        let s = SegmentStorage::open(dir.path()).expect("reopen");
        assert_eq!(s.recover(&q).expect("recover").as_slice(), &msgs[2..]);
    }
}
