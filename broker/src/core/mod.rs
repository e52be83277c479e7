//! The routing core: topology (exchanges, queues, bindings), queue tasks, and the shared flusher
//! that group-commits storage for every queue. Protocol front ends talk to it through [`Core`],
//! [`queue::QueueHandle`] and their own [`ConnEvent`] mailbox.

pub mod access;
pub mod direct;
pub mod flusher;
pub mod memory;
pub mod ops;
pub mod queue;
mod queue_task;
pub mod registry;
pub mod routes;
pub mod topology;
pub mod vhost;

use std::collections::HashMap;
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
use vhost::Vhost;

/// The vhost a fresh broker has (and clients that name none use).
pub const DEFAULT_VHOST: &str = "/";

/// Identifies one channel *instance* for the broker's lifetime. Channel numbers are reused by
/// clients; this key is not, so a delivery that arrives after its channel closed is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelKey(pub u64);

/// What queues and the flusher send to a connection task. Unbounded: every producer of these
/// events is itself bounded (deliveries by consumer credit, confirms by publishes in flight).
#[derive(Debug)]
pub enum ConnEvent {
    /// A message for one of the connection's consumers. Boxed: every connection's mailbox
    /// holds a block of 32 slots from its creation on, idle or not, and a `Delivery` is 56
    /// bytes; boxed, the slot is 32 (1 KiB less per idle connection, one allocation per
    /// delivery).
    Deliver(Box<Delivery>),
    /// Messages from a direct queue (see [`direct`]), sent together: a publisher's whole
    /// read of its socket arrives as one event, and goes out in one write.
    DeliverDirect(Box<direct::DirectDeliveries>),
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
    /// The body counts against the memory alarm until the connection lets go of it (a
    /// direct queue's deliveries that must not be dropped; a queue task counts its own).
    pub gauged: bool,
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
    /// Vhosts by name. A std lock: looked up per operation, never held across `.await`;
    /// created and deleted only under `write_lock`.
    vhosts: RwLock<HashMap<String, Arc<Vhost>>>,
    /// Serialises topology changes so that the definitions written to storage follow the same order.
    write_lock: tokio::sync::Mutex<()>,
    storage: Arc<dyn storage::Storage>,
    flusher: Flusher,
    next_id: AtomicU64,
    /// Bytes held by queues against the memory high watermark.
    pub memory: Arc<memory::MemoryGauge>,
    /// Live connections of every protocol (for the management API).
    pub connections: Arc<registry::Registry>,
    /// Users and permissions (changed through the `Core` methods that persist them).
    pub access: access::AccessControl,
    /// Counts vhost deletions, so front ends can drop what they keep per vhost outside the
    /// topology (MQTT retained messages). A watch: only "something was deleted" matters.
    vhost_deletions: tokio::sync::watch::Sender<u64>,
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
            vhosts: RwLock::new(HashMap::from([(
                DEFAULT_VHOST.to_string(),
                Arc::new(Vhost::new(DEFAULT_VHOST, vhost::VhostMeta::default())),
            )])),
            write_lock: tokio::sync::Mutex::new(()),
            storage,
            flusher,
            next_id: AtomicU64::new(1),
            memory: Arc::new(memory::MemoryGauge::new(memory_high_watermark)),
            connections: Arc::default(),
            access: access::AccessControl::default(),
            vhost_deletions: tokio::sync::watch::Sender::new(0),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// A process-unique id (connections, channel instances, queues).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A vhost by name.
    pub fn vhost(&self, name: &str) -> Option<Arc<Vhost>> {
        let map = match self.vhosts.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.get(name).cloned()
    }

    /// Whether `v` is still the live vhost of its name: false once it was deleted, even if a
    /// new vhost of that name exists. A connection checks this right after registering:
    /// `delete_vhost` removes the vhost and then closes the connections registered in it, so
    /// one that looked the vhost up before the removal and registered after the closing
    /// would otherwise stay open on a dead topology.
    pub fn vhost_is_live(&self, v: &Arc<Vhost>) -> bool {
        self.vhost(v.name())
            .is_some_and(|live| Arc::ptr_eq(&live, v))
    }

    /// Every vhost, by name.
    pub fn vhosts(&self) -> Vec<Arc<Vhost>> {
        let map = match self.vhosts.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut all: Vec<Arc<Vhost>> = map.values().cloned().collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// The current topology snapshot of `vhost` (empty if there is no such vhost, e.g. it was
    /// just deleted and its connections are still closing).
    pub fn topology(&self, vhost: &str) -> Arc<Topology> {
        match self.vhost(vhost) {
            Some(v) => v.topology(),
            None => Arc::new(Topology::default()),
        }
    }

    /// Replaces the vhost map's entry (under `write_lock`).
    fn vhosts_mut<R>(&self, f: impl FnOnce(&mut HashMap<String, Arc<Vhost>>) -> R) -> R {
        let mut map = match self.vhosts.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut map)
    }

    /// Changes whenever a vhost is deleted.
    pub fn subscribe_vhost_deletions(&self) -> tokio::sync::watch::Receiver<u64> {
        self.vhost_deletions.subscribe()
    }

    /// Tells the subscribers that a vhost was deleted.
    fn vhost_deleted(&self) {
        self.vhost_deletions.send_modify(|n| *n += 1);
    }

    /// Storage shared by all queues.
    pub fn storage(&self) -> &Arc<dyn storage::Storage> {
        &self.storage
    }

    /// The group-commit flusher.
    pub fn flusher(&self) -> &Flusher {
        &self.flusher
    }
}
