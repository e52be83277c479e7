//! The interface of a queue task: its handle and the commands it understands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use protocol_amqp::ShortStr;
use tokio::sync::{mpsc, oneshot};

use super::direct::DirectConsumer;
use super::{ChannelKey, ConfirmTarget, ConnTx};
use crate::model::message::MessageRef;

/// Capacity of a queue's mailbox. A full mailbox makes publishers wait (credit flow), so a
/// publisher faster than the queue slows down instead of growing the broker's memory.
pub const MAILBOX_CAPACITY: usize = 1024;

/// Window of deliveries in flight to a no-ack consumer's connection: the connection settles
/// them once written to the socket, so a consumer that stops reading stops the flow.
pub const NO_ACK_WINDOW: u32 = 1000;

/// A cheap, clonable handle to a queue task.
#[derive(Debug, Clone)]
pub struct QueueHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    id: u64,
    name: String,
    backend: Backend,
    counters: QueueCounters,
}

/// What runs the queue.
#[derive(Debug)]
enum Backend {
    /// A queue task, behind its mailbox.
    Task(mpsc::Sender<QueueCmd>),
    /// No task: commands are handled at once, messages go to the one consumer's connection.
    Direct(DirectConsumer),
}

/// Message counters of one queue since it was declared (or recovered), for the management
/// API and `/metrics`. Written only by the queue task; atomics so that readers need not
/// queue behind publishes in the mailbox.
#[derive(Debug, Default)]
pub struct QueueCounters {
    published: AtomicU64,
    delivered: AtomicU64,
    got: AtomicU64,
    acked: AtomicU64,
    dropped: AtomicU64,
}

/// A snapshot of [`QueueCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Messages that entered the queue.
    pub published: u64,
    /// Deliveries to consumers (redeliveries included).
    pub delivered: u64,
    /// Messages taken with basic.get.
    pub got: u64,
    /// Deliveries settled with an ack (no-ack deliveries count once written).
    pub acked: u64,
    /// Messages a direct queue dropped because its consumer did not keep up.
    pub dropped: u64,
}

impl QueueCounters {
    pub(crate) fn add_published(&self) {
        self.add_published_n(1);
    }
    pub(crate) fn add_published_n(&self, n: u64) {
        self.published.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_delivered(&self) {
        self.add_delivered_n(1);
    }
    pub(crate) fn add_delivered_n(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_got(&self) {
        self.got.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_acked(&self) {
        self.acked.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> QueueCounts {
        QueueCounts {
            published: self.published.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            got: self.got.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

impl QueueHandle {
    pub(crate) fn new(id: u64, name: String, tx: mpsc::Sender<QueueCmd>) -> QueueHandle {
        QueueHandle::with_backend(id, name, Backend::Task(tx))
    }

    /// A direct queue (see [`super::direct`]) delivering to `consumer`.
    pub(crate) fn direct(id: u64, name: String, consumer: DirectConsumer) -> QueueHandle {
        QueueHandle::with_backend(id, name, Backend::Direct(consumer))
    }

    fn with_backend(id: u64, name: String, backend: Backend) -> QueueHandle {
        QueueHandle {
            inner: Arc::new(HandleInner {
                id,
                name,
                backend,
                counters: QueueCounters::default(),
            }),
        }
    }

    /// Whether this is a direct queue: its deliveries need no settling with it.
    pub fn is_direct(&self) -> bool {
        matches!(self.inner.backend, Backend::Direct(_))
    }

    /// A direct queue's load (what it shares with its consumer), for publishers to pause on.
    pub fn direct_load(&self) -> Option<Arc<super::direct::DirectLoad>> {
        match &self.inner.backend {
            Backend::Direct(consumer) => Some(consumer.load.clone()),
            Backend::Task(_) => None,
        }
    }

    /// Publishes `msgs` (no confirms) to a direct queue as one mailbox event, so that its
    /// consumer writes them in one go; `false` (nothing done) if this is not a direct queue.
    pub fn publish_direct(&self, msgs: Vec<MessageRef>) -> bool {
        match &self.inner.backend {
            Backend::Direct(consumer) => {
                consumer.publish(self, msgs);
                true
            }
            Backend::Task(_) => false,
        }
    }

    /// Unique id of this queue incarnation (a re-declared queue of the same name gets another).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Queue name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Message counters, kept by the queue task.
    pub fn counters(&self) -> &QueueCounters {
        &self.inner.counters
    }

    /// Sends a command, waiting for mailbox space (this is the backpressure point).
    /// Returns the command back if the queue is gone.
    pub async fn send(&self, cmd: QueueCmd) -> Result<(), QueueCmd> {
        match &self.inner.backend {
            Backend::Task(tx) => tx.send(cmd).await.map_err(|e| e.0),
            Backend::Direct(consumer) => {
                consumer.handle(self, cmd);
                Ok(())
            }
        }
    }

    /// Sends a command and waits for the reply made with the given sender.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> QueueCmd) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// Prefetch credit shared by every consumer of one channel (`basic.qos global=true`, which
/// RabbitMQ applies per channel). Queues take from it when they deliver and give back when a
/// delivery is settled; the channel wakes its other queues after acks so they can use it.
#[derive(Debug)]
pub struct SharedCredit {
    limit: u32,
    used: AtomicU32,
    /// The connection holds deliveries of its own for the window (MQTT: retained messages
    /// for a new subscription, direct deliveries): queue tasks take no unit until it has
    /// sent them, so what it holds goes out before anything newer.
    reserved: AtomicBool,
    /// Woken when a unit comes back (a connection holding deliveries for the window waits
    /// on it: units also come back from queue tasks, without an event to the connection).
    returned: tokio::sync::Notify,
}

impl SharedCredit {
    /// Credit for `limit` unacknowledged deliveries across the channel.
    pub fn new(limit: u32) -> SharedCredit {
        SharedCredit {
            limit,
            used: AtomicU32::new(0),
            reserved: AtomicBool::new(false),
            returned: tokio::sync::Notify::new(),
        }
    }

    /// Takes one unit if there is one and the connection does not hold deliveries first
    /// (see [`SharedCredit::reserve`]).
    pub fn try_take(&self) -> bool {
        !self.reserved.load(Ordering::Acquire) && self.take()
    }

    /// Takes one unit if there is one, for the deliveries the connection holds.
    pub fn try_take_reserved(&self) -> bool {
        self.take()
    }

    /// Whether the connection holds deliveries that must have the next units; returns
    /// whether it did before (the queues that found no unit are to be woken when it stops).
    pub fn reserve(&self, yes: bool) -> bool {
        self.reserved.swap(yes, Ordering::AcqRel)
    }

    fn take(&self) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.limit).then_some(used + 1)
            })
            .is_ok()
    }

    /// Whether a unit is free now.
    pub fn available(&self) -> bool {
        self.used.load(Ordering::Acquire) < self.limit
    }

    /// Gives one unit back.
    pub fn give_back(&self) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(1))
            });
        self.returned.notify_one();
    }

    /// Resolves once a unit was given back (at once if one was since the last call).
    pub async fn returned(&self) {
        self.returned.notified().await;
    }
}

/// How a consumer should be served.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Consumer tag (unique per channel).
    pub tag: ShortStr,
    /// Channel instance.
    pub owner: ChannelKey,
    /// Connection id (for exclusive-queue checks).
    pub conn_id: u64,
    /// Where deliveries go.
    pub conn: ConnTx,
    /// Most unacknowledged deliveries at once; 0 = unlimited.
    pub prefetch: u32,
    /// Channel-wide credit (`basic.qos global=true`), on top of `prefetch`.
    pub shared: Option<Arc<SharedCredit>>,
    /// Deliveries need no ack (the connection settles them once written).
    pub no_ack: bool,
    /// No other consumer may share the queue.
    pub exclusive: bool,
}

/// How to settle delivered messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Done with: remove.
    Ack,
    /// Put back, marked redelivered, ahead of newer messages.
    Requeue,
    /// Rejected without requeue: drop.
    Drop,
    /// Done with, as `Ack`, but the consumer's unit of its [`SharedCredit`] stays taken: its
    /// connection gives it back later (an MQTT QoS 2 delivery is the client's at PUBREC, and
    /// counts against its Receive Maximum until PUBCOMP [MQTT-4.9.0-2]).
    Received,
}

/// A message taken with basic.get.
#[derive(Debug)]
pub struct GetOk {
    /// Position in the queue (for acks).
    pub seq: u64,
    /// The message.
    pub msg: MessageRef,
    /// Delivered before.
    pub redelivered: bool,
    /// Messages left ready after this one.
    pub remaining: u32,
}

/// Counts for declare-ok and management.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueStats {
    /// Ready messages.
    pub messages: u32,
    /// Delivered, not yet acknowledged.
    pub unacked: u32,
    /// Consumers.
    pub consumers: u32,
}

/// A copy of a ready message, left in the queue (management "get" without consuming).
#[derive(Debug, Clone)]
pub struct Peeked {
    /// The message.
    pub msg: MessageRef,
    /// Delivered before.
    pub redelivered: bool,
}

/// A consumer as operators see it.
#[derive(Debug, Clone)]
pub struct ConsumerInfo {
    /// Consumer tag.
    pub tag: ShortStr,
    /// Channel instance.
    pub owner: ChannelKey,
    /// Connection id.
    pub conn_id: u64,
    /// Prefetch limit (0 = none).
    pub prefetch: u32,
    /// Deliveries need an ack.
    pub ack_required: bool,
    /// Exclusive consumer.
    pub exclusive: bool,
    /// Delivered, not yet settled.
    pub unacked: u32,
}

/// Why a queue refused a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeRefused {
    /// An exclusive consumer is there, or one wants exclusivity while others are there.
    ExclusiveInUse,
}

/// Why a queue refused to be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteRefused {
    /// if-unused and it has consumers.
    InUse,
    /// if-empty and it has messages.
    NotEmpty,
}

/// Commands a queue task handles, in mailbox order.
#[derive(Debug)]
pub enum QueueCmd {
    /// Enqueue a message; confirm once accepted (after fsync when it is stored).
    Publish {
        /// The message.
        msg: MessageRef,
        /// Confirm destination, for publishers in confirm mode.
        confirm: Option<ConfirmTarget>,
    },
    /// Add a consumer.
    Consume {
        /// The consumer. Boxed: it is the largest payload, and every queue's mailbox holds
        /// blocks of 32 `QueueCmd` slots even when idle (memory per idle MQTT session queue).
        spec: Box<ConsumerSpec>,
        /// Outcome.
        reply: oneshot::Sender<Result<(), ConsumeRefused>>,
    },
    /// Remove a consumer; its unacked messages stay unacked.
    Cancel {
        /// Channel instance.
        owner: ChannelKey,
        /// Consumer tag.
        tag: ShortStr,
        /// Answered when done.
        reply: Option<oneshot::Sender<()>>,
    },
    /// Ack, requeue or drop delivered messages.
    Settle {
        /// Channel instance they were delivered on.
        owner: ChannelKey,
        /// Their positions.
        seqs: Vec<u64>,
        /// What to do.
        how: Settle,
    },
    /// A channel closed: drop its consumers, requeue its unacked messages.
    ChannelClosed {
        /// Channel instance.
        owner: ChannelKey,
    },
    /// basic.get.
    Get {
        /// Channel instance.
        owner: ChannelKey,
        /// Remove at once instead of waiting for an ack.
        no_ack: bool,
        /// The message, or None when empty.
        reply: oneshot::Sender<Option<GetOk>>,
    },
    /// Remove every ready message; answers how many.
    Purge {
        /// Count purged.
        reply: oneshot::Sender<u32>,
    },
    /// Delete the queue; answers the ready count.
    Delete {
        /// Refuse if it has consumers.
        if_unused: bool,
        /// Refuse if it has ready messages.
        if_empty: bool,
        /// Outcome.
        reply: oneshot::Sender<Result<u32, DeleteRefused>>,
    },
    /// Nothing but a chance to dispatch (channel credit was given back elsewhere).
    Wake,
    /// Counts.
    Stats {
        /// The counts.
        reply: oneshot::Sender<QueueStats>,
    },
    /// Copies of the first `count` ready messages; the queue is left as it was.
    Peek {
        /// How many at most.
        count: usize,
        /// The copies, oldest first.
        reply: oneshot::Sender<Vec<Peeked>>,
    },
    /// The queue's consumers.
    Consumers {
        /// The consumers, in round-robin order.
        reply: oneshot::Sender<Vec<ConsumerInfo>>,
    },
}

#[cfg(test)]
mod tests {
    /// Every queue's mailbox (and every connection's, see [`crate::core::ConnEvent`]) holds a
    /// block of 32 slots from its creation on, idle or not: a bigger command enum costs 32
    /// times its growth in every idle queue (one per MQTT session). Box large, rare payloads
    /// (as `Consume` does) instead of growing this.
    #[test]
    fn the_mailbox_slot_types_stay_small() {
        assert!(
            std::mem::size_of::<super::QueueCmd>() <= 48,
            "QueueCmd grew to {} bytes",
            std::mem::size_of::<super::QueueCmd>()
        );
        assert!(
            std::mem::size_of::<crate::core::ConnEvent>() <= 32,
            "ConnEvent grew to {} bytes",
            std::mem::size_of::<crate::core::ConnEvent>()
        );
    }
}
