//! Durable state of the broker: durable topology (exchanges, queues,
//! bindings) and, per durable queue, a log of its persistent messages.
//!
//! The disk store, [`SegmentStorage`], keeps message bodies in per-queue
//! append-only segment files (length + CRC32 framed records, an ack file per
//! segment, a segment deleted once all its messages are gone) and keeps only
//! metadata (definitions, queue ids) in sled, the embedded store: sled copies
//! a tree node per insert and remove, which is fine for rare declares and far
//! too slow for every message.
//!
//! Transient data never comes here. A message is appended when a durable
//! queue accepts it as persistent and removed when it is acknowledged; the
//! publisher confirm goes out only after a [`Storage::sync`] that follows the
//! append has returned. `append` and `remove` never flush by themselves: the
//! broker runs one flusher thread that calls `sync` for all queues at once
//! (group commit), because an fsync per message would cap persistent
//! throughput at a few thousand messages per second.
//!
//! # Layout
//!
//! ```text
//! lib.rs          the Storage trait, re-exports
//! model.rs        data types: QueueKey, SeqNo, StoredMessage, Definitions and its parts
//! error.rs        StorageError
//! codec.rs        hand-written binary encoding of a StoredMessage (record payload, legacy sled value)
//! record.rs       framing of a record in a segment file (len, seq, CRC32) and the recovery scan
//! segment_log.rs  QueueLog: one queue's directory of segment + ack files
//! dirty.rs        files and dirs written since the last sync (what the next fsync covers)
//! segment_store.rs SegmentStorage: <dir>/LOCK, sled at <dir>/sled for metadata,
//!                 <dir>/queues/<id>/ for logs; migrates sled-only data dirs
//! memory.rs       MemoryStorage: everything in a Mutex, for tests and data-dir-less runs
//! conformance.rs  (hidden) the behaviour every Storage must have, as a reusable test suite
//! ```

mod codec;
mod dirty;
mod error;
mod memory;
mod model;
mod record;
mod segment_log;
mod segment_store;

#[doc(hidden)]
pub mod conformance;

pub use error::StorageError;
pub use memory::MemoryStorage;
pub use model::{
    BindingDef, Definitions, ExchangeDef, PermissionDef, QueueDef, QueueKey, SeqNo, StoredMessage,
    UserDef, VhostDef,
};
pub use segment_store::SegmentStorage;

/// Counters of a store's durability work, for benchmarks and stats: messages
/// appended per sync is the group-commit batch size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Calls of [`Storage::sync`].
    pub syncs: u64,
    /// Files fsynced by those calls (directories and sled not counted).
    pub files_synced: u64,
    /// Messages appended.
    pub messages_appended: u64,
}

/// What the broker needs from durable storage.
///
/// Synchronous, so that it is easy to test against a model and so that the
/// blocking disk work runs where the broker chooses (its queue tasks' blocking
/// sections and its single flusher thread), never on an async worker by
/// accident. `Send + Sync + 'static` so one store can be shared as
/// `Arc<dyn Storage>` by every queue task and the flusher.
///
/// Each queue's log is written by one owner (the broker's queue task), so the
/// calls for one queue never race each other; calls for different queues and
/// `sync` may run concurrently.
pub trait Storage: Send + Sync + 'static {
    /// Appends messages to the queue's log (seq chosen by the caller, increasing).
    /// Not durable until [`Storage::sync`]. Either the whole batch is accepted
    /// or, for a message the format cannot hold, none of it
    /// ([`StorageError::Invalid`]).
    fn append(&self, q: &QueueKey, msgs: &[StoredMessage]) -> Result<(), StorageError>;
    /// Removes acknowledged messages; unknown seqs are ignored, because an ack
    /// can race a purge.
    fn remove(&self, q: &QueueKey, seqs: &[SeqNo]) -> Result<(), StorageError>;
    /// All messages of the queue's log in seq order, bodies included (the
    /// broker's small logs, such as MQTT retained messages, are read back
    /// whole at start-up; queues use [`Storage::recover_seqs`]). Empty for a
    /// queue that has no log.
    fn recover(&self, q: &QueueKey) -> Result<Vec<StoredMessage>, StorageError>;
    /// The seqs of the queue's log in order, without reading bodies, so a
    /// long queue can be rebuilt at start-up with its bodies left on disk
    /// (read back with [`Storage::read`] as consumers get near them).
    fn recover_seqs(&self, q: &QueueKey) -> Result<Vec<SeqNo>, StorageError> {
        Ok(self.recover(q)?.into_iter().map(|m| m.seq).collect())
    }
    /// The stored messages of `seqs` (in increasing seq order), skipping
    /// seqs not in the log (and, for a disk store, records whose checksum no
    /// longer verifies: logged, never handed out). The broker keeps only a window of a long
    /// queue's bodies in memory and pages the rest in with this.
    fn read(&self, q: &QueueKey, seqs: &[SeqNo]) -> Result<Vec<StoredMessage>, StorageError>;
    /// Removes every message of the queue (`queue.purge`) and keeps the
    /// queue's log usable for later appends.
    fn purge(&self, q: &QueueKey) -> Result<(), StorageError>;
    /// Drops the queue's log entirely, because the queue was deleted.
    fn delete_queue(&self, q: &QueueKey) -> Result<(), StorageError>;
    /// Replaces the stored definitions snapshot (declares are rare, so the
    /// whole topology is written each time rather than diffed).
    fn put_definitions(&self, d: &Definitions) -> Result<(), StorageError>;
    /// The last stored definitions (empty if none), to re-create the durable
    /// topology at start-up.
    fn load_definitions(&self) -> Result<Definitions, StorageError>;
    /// Durability barrier: when it returns Ok, every append/remove/purge/
    /// delete/put before it is on disk (fsynced), so confirms for those
    /// appends may go out.
    ///
    /// An error is final for a disk store ([`SegmentStorage`]): after a
    /// failed fsync Linux may drop the unwritten pages and clear the error,
    /// so a retry could return Ok over lost data. Every later call fails
    /// too; the broker nacks instead of confirming until it is restarted.
    fn sync(&self) -> Result<(), StorageError>;
    /// Approximate bytes on disk, for stats; 0 for memory.
    fn size_on_disk(&self) -> u64;
    /// Durability counters; all zero for a store that does not count.
    fn stats(&self) -> StorageStats {
        StorageStats::default()
    }
}
