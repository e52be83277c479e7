//! The routing core: topology (exchanges, queues, bindings), queue tasks, and the shared flusher
//! that group-commits storage for every queue. Protocol front ends talk to it through [`Core`],
//! [`queue::QueueHandle`] and their own [`ConnEvent`] mailbox.

pub mod access;
pub mod flusher;
pub mod memory;
pub mod ops;
pub mod queue;
mod queue_task;
pub mod registry;
pub mod topology;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use protocol_amqp::ShortStr;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::model::message::MessageRef;
use flusher::Flusher;
use queue::QueueHandle;
use topology::Topology;

/// The only vhost until vhosts become configurable.
pub const DEFAULT_VHOST: &str = "/";

/// Identifies one channel *instance* for the broker's lifetime. Channel numbers are reused by
/// clients; this key is not, so a delivery that arrives after its channel closed is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelKey(pub u64);

/// What queues and the flusher send to a connection task. Unbounded: every producer of these
/// events is itself bounded (deliveries by consumer credit, confirms by publishes in flight).
#[derive(Debug)]
pub enum ConnEvent {
    /// A message for one of the connection's consumers.
    Deliver(Delivery),
    /// A publisher-confirm outcome for one published message.
    Confirm {
        /// Channel number of the publishing channel.
        channel: u16,
        /// The channel's publish sequence number.
        seq: u64,
        /// `false` if the message could not be stored.
        ok: bool,
    },
    /// The queue ended this consumer (queue deleted); tell the client if it listens.
    ConsumerCancelled {
        /// Channel instance of the consumer.
        owner: ChannelKey,
        /// Consumer tag.
        tag: ShortStr,
    },
}

/// Mailbox of a connection task.
pub type ConnTx = mpsc::UnboundedSender<ConnEvent>;

/// One message handed to a consumer.
#[derive(Debug)]
pub struct Delivery {
    /// Channel instance of the consumer.
    pub owner: ChannelKey,
    /// Consumer tag.
    pub consumer_tag: ShortStr,
    /// Queue it came from (for acks).
    pub queue: QueueHandle,
    /// Position in that queue.
    pub seq: u64,
    /// The message.
    pub msg: MessageRef,
    /// Delivered before (requeued, or recovered after a restart).
    pub redelivered: bool,
}

/// Where a queue reports that a published message is safely accepted.
#[derive(Debug, Clone)]
pub struct ConfirmTarget {
    /// Publisher's connection mailbox.
    pub conn: ConnTx,
    /// Publisher's channel number.
    pub channel: u16,
    /// The channel's publish sequence number.
    pub seq: u64,
}

impl ConfirmTarget {
    /// Tells the publisher; a closed connection no longer needs the answer.
    pub fn send(self, ok: bool) {
        let _ = self.conn.send(ConnEvent::Confirm {
            channel: self.channel,
            seq: self.seq,
            ok,
        });
    }
}

/// Shared state of a running broker.
pub struct Core {
    /// Read-mostly snapshot: readers clone the `Arc` and route without the lock; writers
    /// change it in place unless a reader still holds it. A std lock: never held across `.await`.
    topology: RwLock<Arc<Topology>>,
    /// Serialises topology changes so that the definitions written to storage follow the same order.
    write_lock: tokio::sync::Mutex<()>,
    storage: Arc<dyn storage::Storage>,
    flusher: Flusher,
    next_id: AtomicU64,
    /// Bytes held by queues against the memory high watermark.
    pub memory: memory::MemoryGauge,
    /// Live connections of every protocol (for the management API).
    pub connections: Arc<registry::Registry>,
    /// Users and permissions (changed through the `Core` methods that persist them).
    pub access: access::AccessControl,
    /// Stops listeners, connections and queues.
    pub shutdown: CancellationToken,
    /// Tracks every task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

impl Core {
    /// A core over `storage`; call [`Core::recover`] next.
    pub fn new(storage: Arc<dyn storage::Storage>, memory_high_watermark: u64) -> Arc<Core> {
        let flusher = Flusher::start(storage.clone());
        Arc::new(Core {
            topology: RwLock::new(Arc::new(Topology::with_builtin_exchanges())),
            write_lock: tokio::sync::Mutex::new(()),
            storage,
            flusher,
            next_id: AtomicU64::new(1),
            memory: memory::MemoryGauge::new(memory_high_watermark),
            connections: Arc::default(),
            access: access::AccessControl::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// A process-unique id (connections, channel instances, queues).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The current topology snapshot.
    pub fn topology(&self) -> Arc<Topology> {
        match self.topology.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Storage shared by all queues.
    pub fn storage(&self) -> &Arc<dyn storage::Storage> {
        &self.storage
    }

    /// The group-commit flusher.
    pub fn flusher(&self) -> &Flusher {
        &self.flusher
    }

    /// Applies `f` to a private copy of the topology and publishes the copy.
    fn modify<R>(&self, f: impl FnOnce(&mut Topology) -> R) -> R {
        let mut guard = match self.topology.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Copy on write, but only when a reader still holds the current snapshot: mostly the
        // change is made in place, so a declare or bind costs O(1), not O(topology size)
        // (MQTT declares a queue per session and binds once per subscription).
        f(Arc::make_mut(&mut guard))
    }
}
