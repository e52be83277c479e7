//! Direct queues: a queue with exactly one consumer, no storage and no task of its own, whose
//! messages go straight into the consumer connection's mailbox (RabbitMQ's MQTT QoS 0 queue
//! type, here for every clean MQTT session).
//!
//! A clean session's messages die with its connection anyway, so a queue task in between
//! only costs: one more hop per message (a mailbox send, a task wake-up, a settle back) and,
//! per idle connection, a task and its mailbox. What a queue does besides (waiting for the
//! client's receive window, counting bytes against the memory alarm) the connection does for
//! its direct queue.
//!
//! Overload: a consumer that does not keep up grows its mailbox. A publisher that finds one
//! [`PAUSE_AT`] behind stops reading its own socket until the consumer is back under half
//! of it (TCP pushes back on the client, as a queue's credit flow would), but for
//! [`PAUSE_LIMIT`] at most: a consumer still behind then is taken for stuck (its client does
//! not read), and messages that may be lost (at most once: MQTT QoS 0, or every one when the
//! consumer takes everything at QoS 0) are dropped for it until it catches up, and counted —
//! RabbitMQ's QoS 0 queue drops the same way, without the pause. [`HARD_LIMIT`] behind they
//! are dropped whatever the reason. The others are never dropped: they count against the
//! memory alarm until the connection lets go of them, as queued messages do.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use protocol_amqp::ShortStr;

use super::memory::MemoryGauge;
use super::queue::{
    ConsumeRefused, ConsumerInfo, DeleteRefused, QueueCmd, QueueHandle, QueueStats,
};
use super::{ChannelKey, ConnEvent, ConnTx};
use crate::model::message::{Message, MessageRef};

/// Deliveries a stuck consumer may have waiting before at-most-once messages for it are
/// dropped. RabbitMQ's
/// `mqtt.mailbox_soft_limit` is 200 messages of any kind; dropping at 1,000 cost a saturated
/// 1→1 QoS 0 run a fifth of its messages here, with a consumer only short of CPU.
pub const SOFT_LIMIT: u32 = 10_000;

/// Deliveries waiting at which at-most-once messages are dropped whether the consumer is
/// stuck or not (publishers not pausing for it, AMQP ones, could outrun it for good): bounds
/// the memory one consumer can hold.
pub const HARD_LIMIT: u32 = 65_536;

/// Body bytes waiting that count as [`SOFT_LIMIT`] (large messages reach it first).
pub const SOFT_LIMIT_BYTES: u64 = 16 << 20;

/// Body bytes waiting that count as [`HARD_LIMIT`].
pub const HARD_LIMIT_BYTES: u64 = 64 << 20;

/// Deliveries a consumer may have waiting before its publishers pause: a consumer short of
/// CPU catches up sooner, and with less memory, when publishers stop early.
pub const PAUSE_AT: u32 = 2_048;

/// How long a publisher waits for a consumer [`PAUSE_AT`] behind before taking it for stuck.
pub const PAUSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// What a direct queue and its consumer connection share.
#[derive(Debug, Default)]
pub struct DirectLoad {
    /// Deliveries sent to the mailbox and not yet taken by the connection.
    pending: AtomicU32,
    /// Their body bytes.
    pending_bytes: AtomicU64,
    /// A publisher waited [`PAUSE_LIMIT`] for the consumer in vain: until it is back under
    /// half of [`PAUSE_AT`], at-most-once messages for it are dropped past [`SOFT_LIMIT`]
    /// instead of waited for.
    stuck: AtomicBool,
    /// Tells paused publishers the consumer is back under half of [`PAUSE_AT`].
    drained: tokio::sync::Notify,
    /// Every message may be dropped under overload (the consumer takes all at most once).
    at_most_once: AtomicBool,
    /// Deliveries the connection holds back (waiting for the client's receive window).
    held: AtomicU32,
    /// Deliveries written and not yet acknowledged by the client.
    unacked: AtomicU32,
    /// Messages dropped under overload since the connection last looked.
    dropped: AtomicU64,
}

impl DirectLoad {
    /// The connection took a batch out of its mailbox.
    pub fn taken(&self, batch: &DirectDeliveries) {
        let n = u32::try_from(batch.msgs.len()).unwrap_or(u32::MAX);
        let bytes = batch.bytes();
        saturating_sub(&self.pending, n);
        let _ = self
            .pending_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(bytes))
            });
        if self.pending.load(Ordering::Relaxed) < PAUSE_AT / 2
            && self.pending_bytes.load(Ordering::Relaxed) < SOFT_LIMIT_BYTES / 2
        {
            self.stuck.store(false, Ordering::Relaxed);
            self.drained.notify_waiters();
        }
    }

    /// Whether publishers should pause for this consumer: it is [`PAUSE_AT`] behind and
    /// not known to be stuck.
    pub fn behind(&self) -> bool {
        (self.pending.load(Ordering::Relaxed) >= PAUSE_AT
            || self.pending_bytes.load(Ordering::Relaxed) >= SOFT_LIMIT_BYTES)
            && !self.stuck.load(Ordering::Relaxed)
    }

    /// Waits until the consumer is back under half of [`PAUSE_AT`] (`true`) or `until`
    /// passes (`false`: it is taken for stuck from then on, see [`PAUSE_LIMIT`]).
    pub async fn wait_drained(&self, until: tokio::time::Instant) -> bool {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.behind() {
                return true;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(until) => {
                    let still_behind = self.behind();
                    if still_behind {
                        self.stuck.store(true, Ordering::Relaxed);
                    }
                    return !still_behind;
                }
            }
        }
    }

    /// Whether every message may be dropped under overload, not only non-persistent ones.
    pub fn set_at_most_once(&self, yes: bool) {
        self.at_most_once.store(yes, Ordering::Relaxed);
    }

    /// Deliveries the connection holds back and has in flight, for the queue's counts.
    pub fn set_held(&self, held: usize, unacked: usize) {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.held.store(count(held), Ordering::Relaxed);
        self.unacked.store(count(unacked), Ordering::Relaxed);
    }

    /// Messages dropped since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// Whether a message that may be lost should be, with `pending` deliveries of `bytes`
    /// waiting.
    fn overloaded(&self, pending: u32, bytes: u64) -> bool {
        pending >= HARD_LIMIT
            || bytes >= HARD_LIMIT_BYTES
            || ((pending >= SOFT_LIMIT || bytes >= SOFT_LIMIT_BYTES)
                && self.stuck.load(Ordering::Relaxed))
    }
}

/// Subtracts without wrapping below zero.
fn saturating_sub(counter: &AtomicU32, n: u32) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(n))
    });
}

/// The one consumer of a direct queue.
#[derive(Debug, Clone)]
pub struct DirectConsumer {
    /// Its connection's mailbox.
    pub conn: ConnTx,
    /// Channel instance the deliveries are for.
    pub owner: ChannelKey,
    /// Consumer tag the deliveries carry.
    pub tag: ShortStr,
    /// Connection id (management).
    pub conn_id: u64,
    /// Shared with the connection.
    pub load: Arc<DirectLoad>,
    /// The broker's memory alarm, for messages that must not be dropped.
    pub memory: Arc<MemoryGauge>,
    /// Whether a message is at most once by itself, whatever the consumer takes it as
    /// (MQTT: its QoS is 0). Only such messages may be dropped, unless the consumer said
    /// every one may (`DirectLoad::set_at_most_once`).
    pub at_most_once: fn(&Message) -> bool,
}

impl DirectConsumer {
    /// Does what a queue task would do with `cmd`, at once.
    pub(super) fn handle(&self, queue: &QueueHandle, cmd: QueueCmd) {
        match cmd {
            QueueCmd::Publish { msg, confirm } => {
                self.publish(queue, vec![msg]);
                // Accepted: the queue is transient, so nothing is to be stored first.
                if let Some(confirm) = confirm {
                    confirm.send(true);
                }
            }
            QueueCmd::Consume { reply, .. } => {
                let _ = reply.send(Err(ConsumeRefused::ExclusiveInUse));
            }
            QueueCmd::Cancel { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            QueueCmd::Settle { .. } | QueueCmd::ChannelClosed { .. } | QueueCmd::Wake => {}
            QueueCmd::Get { reply, .. } => {
                let _ = reply.send(None);
            }
            QueueCmd::Purge { reply } => {
                let _ = reply.send(0);
            }
            QueueCmd::Delete {
                if_unused,
                if_empty,
                reply,
            } => {
                // Its consumer is always there; its messages are those not yet written.
                let waiting = self.waiting();
                if if_unused {
                    let _ = reply.send(Err(DeleteRefused::InUse));
                    return;
                }
                if if_empty && waiting > 0 {
                    let _ = reply.send(Err(DeleteRefused::NotEmpty));
                    return;
                }
                let _ = self.conn.send(ConnEvent::ConsumerCancelled {
                    owner: self.owner,
                    tag: self.tag.clone(),
                });
                let _ = reply.send(Ok(0));
            }
            QueueCmd::Stats { reply } => {
                let _ = reply.send(QueueStats {
                    messages: self.waiting(),
                    unacked: self.load.unacked.load(Ordering::Relaxed),
                    consumers: 1,
                });
            }
            QueueCmd::Peek { reply, .. } => {
                let _ = reply.send(Vec::new());
            }
            QueueCmd::Consumers { reply } => {
                let _ = reply.send(vec![ConsumerInfo {
                    tag: self.tag.clone(),
                    owner: self.owner,
                    conn_id: self.conn_id,
                    prefetch: 0,
                    ack_required: true,
                    exclusive: true,
                    unacked: self.load.unacked.load(Ordering::Relaxed),
                }]);
            }
        }
    }

    /// Messages sent to the connection and not written yet.
    fn waiting(&self) -> u32 {
        self.load
            .pending
            .load(Ordering::Relaxed)
            .saturating_add(self.load.held.load(Ordering::Relaxed))
    }

    /// Sends `msgs` to the connection as one event, less those dropped under overload.
    pub(super) fn publish(&self, queue: &QueueHandle, msgs: Vec<MessageRef>) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        queue.counters().add_published_n(count(msgs.len()));
        let every_one_may_drop = self.load.at_most_once.load(Ordering::Relaxed);
        let pending = self.load.pending.load(Ordering::Relaxed);
        let pending_bytes = self.load.pending_bytes.load(Ordering::Relaxed);
        let mut out = Vec::with_capacity(msgs.len());
        let mut gauged = 0;
        let mut gauged_bytes = 0u64;
        let mut bytes = 0u64;
        for msg in msgs {
            let may_drop = every_one_may_drop || (self.at_most_once)(&msg);
            let behind = pending.saturating_add(u32::try_from(out.len()).unwrap_or(u32::MAX));
            if may_drop
                && self
                    .load
                    .overloaded(behind, pending_bytes.saturating_add(bytes))
            {
                queue.counters().add_dropped();
                self.load.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !may_drop {
                gauged_bytes = gauged_bytes.saturating_add(body_len(&msg));
                gauged += 1;
            }
            bytes = bytes.saturating_add(body_len(&msg));
            out.push((msg, !may_drop));
        }
        if out.is_empty() {
            return;
        }
        if gauged > 0 {
            self.memory.add_many(gauged, gauged_bytes);
        }
        let n = out.len();
        self.load
            .pending
            .fetch_add(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed);
        self.load.pending_bytes.fetch_add(bytes, Ordering::Relaxed);
        let batch = DirectDeliveries {
            queue: queue.clone(),
            load: self.load.clone(),
            msgs: out,
        };
        match self.conn.send(ConnEvent::DeliverDirect(Box::new(batch))) {
            Ok(()) => queue.counters().add_delivered_n(count(n)),
            Err(e) => {
                // The connection has ended: a clean session's messages end with it.
                if let ConnEvent::DeliverDirect(batch) = e.0 {
                    self.load.taken(&batch);
                    if gauged == 0 {
                        return;
                    }
                    for (msg, gauged) in batch.msgs {
                        if gauged {
                            self.memory.sub(msg.body.len());
                        }
                    }
                }
            }
        }
    }
}

/// Messages a direct queue sends its connection in one mailbox event.
#[derive(Debug)]
pub struct DirectDeliveries {
    /// The queue (for the consumer: it needs no settling).
    pub queue: QueueHandle,
    /// That queue's load, told when the connection takes the batch (a queue deleted and
    /// declared again meanwhile has another).
    pub load: Arc<DirectLoad>,
    /// Each message, and whether it counts against the memory alarm until the connection
    /// lets go of it (it must not be dropped).
    pub msgs: Vec<(MessageRef, bool)>,
}

impl DirectDeliveries {
    /// Body bytes of the batch.
    fn bytes(&self) -> u64 {
        self.msgs
            .iter()
            .fold(0u64, |sum, (msg, _)| sum.saturating_add(body_len(msg)))
    }
}

fn body_len(msg: &MessageRef) -> u64 {
    u64::try_from(msg.body.len()).unwrap_or(u64::MAX)
}

/// Messages for direct queues gathered while one read of a publisher's socket is handled,
/// sent as one event per queue once it is done: the subscriber wakes once and writes them
/// in one system call, not once per message.
#[derive(Debug, Default)]
pub struct DirectBatch {
    /// Queue id → its place in `queues`.
    index: HashMap<u64, usize>,
    queues: Vec<(QueueHandle, Vec<MessageRef>)>,
    /// Where the next push most likely goes: messages on one topic route to the same queues
    /// in the same order, so a fan-out finds its place without hashing.
    next: usize,
}

impl DirectBatch {
    /// Adds `msg` for the direct queue `queue`.
    pub fn push(&mut self, queue: &QueueHandle, msg: &MessageRef) {
        let id = queue.id();
        let i = match self.queues.get(self.next) {
            Some((q, _)) if q.id() == id => self.next,
            _ => {
                let queues = &mut self.queues;
                *self.index.entry(id).or_insert_with(|| {
                    queues.push((queue.clone(), Vec::new()));
                    queues.len() - 1
                })
            }
        };
        if let Some((_, msgs)) = self.queues.get_mut(i) {
            msgs.push(msg.clone());
        }
        self.next = if i + 1 < self.queues.len() { i + 1 } else { 0 };
    }

    /// Sends what was gathered; the load of a consumer it went to that is behind (see
    /// [`DirectLoad::behind`]), for the publisher to pause on.
    pub fn send(&mut self) -> Option<Arc<DirectLoad>> {
        self.index.clear();
        self.next = 0;
        let mut behind = None;
        for (queue, msgs) in self.queues.drain(..) {
            queue.publish_direct(msgs);
            if behind.is_none() {
                behind = queue.direct_load().filter(|load| load.behind());
            }
        }
        behind
    }

    /// Queues it has held at once, which its maps keep room for.
    pub fn capacity(&self) -> usize {
        self.queues.capacity()
    }
}
