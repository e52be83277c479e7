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
//! Overload: a consumer that does not keep up grows its mailbox. Messages that may be lost
//! (at most once: non-persistent ones, or every one when the consumer said so) are dropped
//! once the consumer is behind on a busy socket, or far behind whatever the reason; the
//! others count against the memory alarm until the connection lets go of them, as queued
//! messages do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use protocol_amqp::ShortStr;

use super::memory::MemoryGauge;
use super::queue::{
    ConsumeRefused, ConsumerInfo, DeleteRefused, QueueCmd, QueueHandle, QueueStats,
};
use super::{ChannelKey, ConnEvent, ConnTx, Delivery};
use crate::model::message::{Message, MessageRef};

/// Deliveries a consumer may have waiting in its mailbox while its socket is busy before
/// at-most-once messages are dropped (RabbitMQ's `mqtt.mailbox_soft_limit` is 200; ours
/// counts deliveries only, and its connection takes them 256 at a time).
pub const SOFT_LIMIT: u32 = 1_000;

/// Deliveries waiting at which at-most-once messages are dropped even while the socket
/// keeps up (the consumer is starved of CPU): bounds the memory one consumer can hold.
pub const HARD_LIMIT: u32 = 65_536;

/// What a direct queue and its consumer connection share.
#[derive(Debug, Default)]
pub struct DirectLoad {
    /// Deliveries sent to the mailbox and not yet taken by the connection.
    pending: AtomicU32,
    /// The connection is waiting for its socket to take a write.
    busy: AtomicBool,
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
    /// The connection took `n` deliveries out of its mailbox.
    pub fn taken(&self, n: u32) {
        self.pending.fetch_sub(n, Ordering::Relaxed);
    }

    /// The connection starts or stops waiting for its socket.
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Relaxed);
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

    /// Whether a message that may be lost should be, now.
    fn overloaded(&self) -> bool {
        let pending = self.pending.load(Ordering::Relaxed);
        pending >= HARD_LIMIT || (pending >= SOFT_LIMIT && self.busy.load(Ordering::Relaxed))
    }
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
                queue.counters().add_published();
                let may_drop =
                    self.load.at_most_once.load(Ordering::Relaxed) || (self.at_most_once)(&msg);
                if may_drop && self.load.overloaded() {
                    queue.counters().add_dropped();
                    self.load.dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.deliver(queue, msg, !may_drop);
                }
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

    fn deliver(&self, queue: &QueueHandle, msg: MessageRef, gauged: bool) {
        let body = msg.body.len();
        if gauged {
            self.memory.add(body);
        }
        self.load.pending.fetch_add(1, Ordering::Relaxed);
        let delivery = Delivery {
            owner: self.owner,
            consumer_tag: self.tag.clone(),
            queue: queue.clone(),
            seq: 0,
            msg,
            redelivered: false,
            gauged,
        };
        if self
            .conn
            .send(ConnEvent::Deliver(Box::new(delivery)))
            .is_err()
        {
            // The connection has ended: a clean session's messages end with it.
            self.load.pending.fetch_sub(1, Ordering::Relaxed);
            if gauged {
                self.memory.sub(body);
            }
            return;
        }
        queue.counters().add_delivered();
    }
}
