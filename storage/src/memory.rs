//! [`MemoryStorage`]: the in-memory twin of the segment store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{Definitions, QueueKey, SeqNo, Storage, StorageError, StoredMessage, codec};

/// A [`Storage`] that keeps everything in memory and forgets it at exit.
///
/// For tests (of the broker and of this crate) and for brokers run without a
/// data dir. It refuses exactly what the disk store refuses, so tests written
/// against it hold on disk too. Cloning is cheap and shares the state: a test
/// "reopens" the store by cloning the handle it kept.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    // A std Mutex, not an RwLock or a tokio Mutex: every operation is a short
    // map update with no await inside, and the trait is synchronous anyway.
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    queues: HashMap<QueueKey, BTreeMap<SeqNo, StoredMessage>>,
    definitions: Definitions,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No operation can panic half-way through an update, so the state
        // behind a poisoned lock is still consistent and safe to keep using.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for MemoryStorage {
    fn append(&self, q: &QueueKey, msgs: &[StoredMessage]) -> Result<(), StorageError> {
        // Validate the whole batch first, as the disk store does before it writes.
        msgs.iter().try_for_each(codec::validate)?;
        let mut inner = self.lock();
        let log = inner.queues.entry(q.clone()).or_default();
        for m in msgs {
            log.insert(m.seq, m.clone());
        }
        Ok(())
    }

    fn remove(&self, q: &QueueKey, seqs: &[SeqNo]) -> Result<(), StorageError> {
        if let Some(log) = self.lock().queues.get_mut(q) {
            for s in seqs {
                log.remove(s);
            }
        }
        Ok(())
    }

    fn recover(&self, q: &QueueKey) -> Result<Vec<StoredMessage>, StorageError> {
        Ok(self
            .lock()
            .queues
            .get(q)
            .map(|log| log.values().cloned().collect())
            .unwrap_or_default())
    }

    fn read(&self, q: &QueueKey, seqs: &[SeqNo]) -> Result<Vec<StoredMessage>, StorageError> {
        let inner = self.lock();
        let Some(log) = inner.queues.get(q) else {
            return Ok(Vec::new());
        };
        Ok(seqs.iter().filter_map(|s| log.get(s).cloned()).collect())
    }

    fn purge(&self, q: &QueueKey) -> Result<(), StorageError> {
        if let Some(log) = self.lock().queues.get_mut(q) {
            log.clear();
        }
        Ok(())
    }

    fn delete_queue(&self, q: &QueueKey) -> Result<(), StorageError> {
        self.lock().queues.remove(q);
        Ok(())
    }

    fn put_definitions(&self, d: &Definitions) -> Result<(), StorageError> {
        self.lock().definitions = d.clone();
        Ok(())
    }

    fn load_definitions(&self) -> Result<Definitions, StorageError> {
        Ok(self.lock().definitions.clone())
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn size_on_disk(&self) -> u64 {
        0
    }
}
