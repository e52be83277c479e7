//! [`SledStorage`]: the durable store, on sled 0.34.
//!
//! Layout inside the sled database at `<dir>/sled`:
//!
//! ```text
//! tree "meta"                      key "definitions" -> Definitions as JSON
//! tree "q/" + len(vhost) + vhost + name                (one tree per durable queue)
//!                                  key seq (u64 BE)  -> codec value
//! ```
//!
//! `len(vhost)` is a big-endian `u32`, so the tree name is unambiguous for any
//! vhost/name strings (a plain `vhost/name` would map `("a/b", "c")` and
//! `("a", "b/c")` to one log). One tree per queue makes queue deletion a cheap
//! `drop_tree` instead of a range delete, and keeps each log's keys dense.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{Definitions, QueueKey, SeqNo, Storage, StorageError, StoredMessage, codec};

/// Page cache size. sled's default (1 GiB) is far too large for the broker's
/// memory target, and users report RSS of several times this figure.
const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// sled's own background flush period: a safety net only. Confirms never wait
/// for it; they wait for an explicit [`Storage::sync`].
const FLUSH_EVERY_MS: u64 = 1000;

/// Name of the tree holding everything that is not a queue log.
const META_TREE: &[u8] = b"meta";

/// Key of the definitions snapshot inside [`META_TREE`].
const DEFINITIONS_KEY: &[u8] = b"definitions";

/// Prefix of every queue log's tree name.
const QUEUE_TREE_PREFIX: &[u8] = b"q/";

/// A [`Storage`] on disk, in a data directory owned by one broker process.
///
/// Writes go into sled's buffers and become durable only at the next
/// [`Storage::sync`] (sled `flush`: write out and fsync the whole database), so
/// one flusher thread can commit the writes of every queue at once.
#[derive(Debug)]
pub struct SledStorage {
    // Field order matters: fields drop in declaration order, so sled is closed
    // before the lock file is released and a reopen never sees both open.
    db: sled::Db,
    meta: sled::Tree,
    /// Held (never read) for the life of the store: its OS lock keeps a second
    /// broker process off the data dir.
    _lock: File,
    dir: PathBuf,
}

impl SledStorage {
    /// Opens (or creates) the store in `dir`.
    ///
    /// Creates the dir if needed and takes an exclusive lock on `<dir>/LOCK`,
    /// held until the store is dropped, so that two brokers never write one
    /// data dir ([`StorageError::Locked`] if another one holds it). Then opens
    /// sled at `<dir>/sled` with a 64 MiB cache and a background flush every
    /// second as a safety net.
    pub fn open(dir: &Path) -> Result<SledStorage, StorageError> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
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
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StorageError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(StorageError::Io {
                    path: lock_path,
                    source,
                });
            }
        }

        let db = open_sled(&dir.join("sled"))?;
        let meta = db.open_tree(META_TREE)?;
        tracing::debug!(dir = %dir.display(), recovered = db.was_recovered(), "storage opened");
        Ok(SledStorage {
            db,
            meta,
            _lock: lock,
            dir: dir.to_path_buf(),
        })
    }

    /// The data directory this store owns, for log messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The queue's log, created empty if it does not exist yet (sled keeps
    /// open trees in its own map, so this is a read-locked lookup once open).
    fn queue_tree(&self, q: &QueueKey) -> Result<sled::Tree, StorageError> {
        Ok(self.db.open_tree(queue_tree_name(q)?)?)
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

/// The name of a queue's tree: prefix, vhost length, vhost, name.
fn queue_tree_name(q: &QueueKey) -> Result<Vec<u8>, StorageError> {
    let vhost_len = u32::try_from(q.vhost.len())
        .map_err(|_| StorageError::Invalid(format!("vhost is {} bytes", q.vhost.len())))?;
    let mut name = Vec::with_capacity(QUEUE_TREE_PREFIX.len() + 4 + q.vhost.len() + q.name.len());
    name.extend_from_slice(QUEUE_TREE_PREFIX);
    name.extend_from_slice(&vhost_len.to_be_bytes());
    name.extend_from_slice(q.vhost.as_bytes());
    name.extend_from_slice(q.name.as_bytes());
    Ok(name)
}

impl Storage for SledStorage {
    fn append(&self, q: &QueueKey, msgs: &[StoredMessage]) -> Result<(), StorageError> {
        // Refuse the whole batch before writing any of it.
        msgs.iter().try_for_each(codec::validate)?;
        let tree = self.queue_tree(q)?;
        // Plain inserts, not a sled Batch: apply_batch takes a global write
        // lock and would serialise every queue's appends.
        for m in msgs {
            tree.insert(codec::encode_key(m.seq), codec::encode_value(m)?)?;
        }
        Ok(())
    }

    fn remove(&self, q: &QueueKey, seqs: &[SeqNo]) -> Result<(), StorageError> {
        let tree = self.queue_tree(q)?;
        for &s in seqs {
            tree.remove(codec::encode_key(s))?;
        }
        Ok(())
    }

    fn recover(&self, q: &QueueKey) -> Result<Vec<StoredMessage>, StorageError> {
        let tree = self.queue_tree(q)?;
        // No `len()` to size the Vec: it is a full scan in sled.
        let mut out = Vec::new();
        for kv in tree.iter() {
            let (k, v) = kv?;
            let seq = codec::decode_key(&k)?;
            out.push(codec::decode_value(seq, Bytes::copy_from_slice(&v))?);
        }
        Ok(out)
    }

    fn purge(&self, q: &QueueKey) -> Result<(), StorageError> {
        Ok(self.queue_tree(q)?.clear()?)
    }

    fn delete_queue(&self, q: &QueueKey) -> Result<(), StorageError> {
        // Returns false for a queue that never had a log: nothing to do.
        let _existed = self.db.drop_tree(queue_tree_name(q)?)?;
        Ok(())
    }

    fn put_definitions(&self, d: &Definitions) -> Result<(), StorageError> {
        let json = serde_json::to_vec(d)
            .map_err(|e| StorageError::Invalid(format!("definitions: {e}")))?;
        self.meta.insert(DEFINITIONS_KEY, json)?;
        Ok(())
    }

    fn load_definitions(&self) -> Result<Definitions, StorageError> {
        match self.meta.get(DEFINITIONS_KEY)? {
            None => Ok(Definitions::default()),
            Some(json) => serde_json::from_slice(&json)
                .map_err(|e| StorageError::Corrupt(format!("definitions: {e}"))),
        }
    }

    fn sync(&self) -> Result<(), StorageError> {
        // Flushes and fsyncs the whole database (all trees share one log).
        let _bytes = self.db.flush()?;
        Ok(())
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or_else(|e| {
            tracing::debug!(error = %e, "size_on_disk failed");
            0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_names_do_not_collide() {
        let pairs = [
            ("a/b", "c"),
            ("a", "b/c"),
            ("", "ab"),
            ("a", "b"),
            ("ab", ""),
            ("\0\0\0\u{1}a", ""),
        ];
        let names: std::collections::HashSet<Vec<u8>> = pairs
            .iter()
            .map(|(v, n)| queue_tree_name(&QueueKey::new(*v, *n)).unwrap())
            .collect();
        assert_eq!(names.len(), pairs.len());
        for n in &names {
            assert_ne!(n.as_slice(), META_TREE);
        }
    }

    #[test]
    fn snapshots_without_users_still_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SledStorage::open(dir.path()).expect("open");
        let old = br#"{"exchanges":[],"queues":[{"vhost":"/","name":"q","durable":true,"auto_delete":false,"arguments":[]}],"bindings":[]}"#;
        s.meta.insert(DEFINITIONS_KEY, &old[..]).expect("insert");
        let d = s.load_definitions().expect("old snapshot loads");
        assert_eq!(d.queues.len(), 1);
        assert!(d.users.is_empty() && d.permissions.is_empty());
    }
}
