//! Durable state of the broker: durable topology (exchanges, queues,
//! bindings) and, per durable queue, a log of its persistent messages.
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
//! codec.rs        hand-written binary encoding of a StoredMessage (sled key + value)
//! memory.rs       MemoryStorage: everything in a Mutex, for tests and data-dir-less runs
//! sled_store.rs   SledStorage: <dir>/LOCK + sled at <dir>/sled, one tree per queue log
//! conformance.rs  (hidden) the behaviour every Storage must have, as a reusable test suite
//! ```

mod codec;
mod error;
mod memory;
mod model;
mod sled_store;

#[doc(hidden)]
pub mod conformance;

pub use error::StorageError;
pub use memory::MemoryStorage;
pub use model::{
    BindingDef, Definitions, ExchangeDef, PermissionDef, QueueDef, QueueKey, SeqNo, StoredMessage,
    UserDef,
};
pub use sled_store::SledStorage;

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
    /// All messages of the queue's log in seq order, to rebuild the queue at
    /// start-up. Empty for a queue that has no log.
    fn recover(&self, q: &QueueKey) -> Result<Vec<StoredMessage>, StorageError>;
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
    fn sync(&self) -> Result<(), StorageError>;
    /// Approximate bytes on disk, for stats; 0 for memory.
    fn size_on_disk(&self) -> u64;
}
