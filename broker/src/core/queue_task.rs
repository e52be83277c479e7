//! The task that owns one queue: ready messages, unacknowledged deliveries, consumers.
//!
//! It drains its mailbox in batches, so one storage append and one flusher request cover every
//! persistent message of the batch, then dispatches ready messages round-robin to consumers
//! that have prefetch credit.
//!
//! A long durable queue does not hold its persistent bodies in memory: beyond the first
//! [`MEMORY_WINDOW`] ready messages a stored message keeps only its seq (its body is in the
//! storage log), and bodies are read back [`PAGE`] at a time as the front of the queue reaches
//! them. Recovery starts every stored message that way, so a restart reads no bodies. Transient
//! messages, and every message of a non-durable queue, always keep their bodies. The memory
//! gauge counts the bodies held, wherever they are (ready, unacked).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::BytesMut;
use protocol_amqp::{BasicProperties, ShortStr};
use storage::{QueueKey, StoredMessage};
use tokio::sync::mpsc;

use super::queue::{
    ConsumeRefused, ConsumerInfo, ConsumerSpec, DeleteRefused, GetOk, NO_ACK_WINDOW, Peeked,
    QueueCmd, QueueHandle, QueueStats, Settle, SharedCredit,
};
use super::{ChannelKey, ConfirmTarget, ConnEvent, Core, Delivery};
use crate::model::message::{Message, MessageRef};

/// How many commands one wake-up handles before dispatching and flushing.
const BATCH: usize = 512;

/// Ready messages that keep their bodies in memory; stored messages behind them keep only
/// their seq. Larger than [`BATCH`], so a message published without its body in memory is
/// written to storage (at the end of its batch) before it can reach the front.
const MEMORY_WINDOW: usize = 2048;

/// Bodies read back from storage at once when the front of the queue has none.
const PAGE: usize = 512;

#[derive(Debug)]
struct Ready {
    seq: u64,
    /// `None`: a stored message whose body is only on disk (see the module docs).
    msg: Option<MessageRef>,
    redelivered: bool,
    stored: bool,
}

impl Ready {
    /// Takes this entry off the memory gauge, if it holds its body (entries without one were
    /// never counted).
    fn uncount(&self, gauge: &super::memory::MemoryGauge) {
        if let Some(m) = &self.msg {
            gauge.sub(m.body.len());
        }
    }
}

#[derive(Debug)]
struct Unacked {
    msg: MessageRef,
    owner: ChannelKey,
    /// None for basic.get.
    tag: Option<ShortStr>,
    stored: bool,
    /// Channel credit to give back when settled.
    shared: Option<Arc<SharedCredit>>,
}

#[derive(Debug)]
struct Consumer {
    spec: ConsumerSpec,
    unacked: u32,
}

impl Consumer {
    fn has_credit(&self) -> bool {
        let limit = if self.spec.no_ack {
            NO_ACK_WINDOW
        } else {
            self.spec.prefetch
        };
        (limit == 0 || self.unacked < limit)
            && self.spec.shared.as_ref().is_none_or(|s| s.available())
    }
}

/// Everything a queue task owns.
pub(crate) struct QueueTask {
    core: Arc<Core>,
    handle: QueueHandle,
    key: QueueKey,
    durable: bool,
    auto_delete: bool,
    next_seq: u64,
    ready: VecDeque<Ready>,
    /// Ordered by sequence: requeues on channel close go back in publish order, and a
    /// B-tree of small integer keys is cheaper than SipHash per delivery and ack.
    unacked: BTreeMap<u64, Unacked>,
    consumers: Vec<Consumer>,
    next_consumer: usize,
    had_consumer: bool,
    // Per-batch work, reused between batches.
    to_store: Vec<StoredMessage>,
    to_remove: Vec<u64>,
    confirm_after_sync: Vec<ConfirmTarget>,
    /// Whether the last storage read failed (so paging in retries instead of dropping).
    read_failed: bool,
    /// MQTT publisher ids of messages whose body is on disk (the store does not keep them, and
    /// "no local" subscriptions need them at delivery). Only messages that had one are here.
    offloaded_publishers: HashMap<u64, Arc<str>>,
}

/// What the task should do after a command.
enum Flow {
    Continue,
    Stop,
}

impl QueueTask {
    /// Spawns a queue task holding the `recovered` stored messages (by seq, bodies left on disk
    /// until consumers get near them; all marked redelivered).
    pub(crate) fn spawn(
        core: &Arc<Core>,
        vhost: String,
        name: String,
        durable: bool,
        auto_delete: bool,
        recovered: Vec<u64>,
    ) -> QueueHandle {
        let (tx, rx) = mpsc::channel(super::queue::MAILBOX_CAPACITY);
        let handle = QueueHandle::new(core.next_id(), name.clone(), tx);
        let mut ready = VecDeque::with_capacity(recovered.len());
        let mut next_seq = 1;
        for seq in recovered {
            next_seq = next_seq.max(seq + 1);
            ready.push_back(Ready {
                seq,
                msg: None,
                redelivered: true,
                stored: true,
            });
        }
        let task = QueueTask {
            core: core.clone(),
            handle: handle.clone(),
            key: QueueKey { vhost, name },
            durable,
            auto_delete,
            next_seq,
            ready,
            unacked: BTreeMap::new(),
            consumers: Vec::new(),
            next_consumer: 0,
            had_consumer: false,
            to_store: Vec::new(),
            to_remove: Vec::new(),
            confirm_after_sync: Vec::new(),
            read_failed: false,
            offloaded_publishers: HashMap::new(),
        };
        core.tasks.spawn(task.run(rx));
        handle
    }

    async fn run(mut self, mut rx: mpsc::Receiver<QueueCmd>) {
        // Grows to the batch size only when batches come: idle queues stay small.
        let mut cmds = Vec::new();
        let shutdown = self.core.shutdown.clone();
        loop {
            cmds.clear();
            let n = tokio::select! {
                n = rx.recv_many(&mut cmds, BATCH) => n,
                _ = shutdown.cancelled() => 0,
            };
            if n == 0 {
                break;
            }
            let mut stop = false;
            for cmd in cmds.drain(..) {
                if let Flow::Stop = self.handle_cmd(cmd) {
                    stop = true;
                    break;
                }
            }
            self.flush_storage();
            if stop {
                return;
            }
            self.dispatch();
            if self.auto_delete && self.had_consumer && self.consumers.is_empty() {
                tracing::debug!(queue = %self.key.name, "auto-delete: last consumer gone");
                self.delete_self();
                let core = self.core.clone();
                let (key, id) = (self.key.clone(), self.handle.id());
                self.core
                    .tasks
                    .spawn(async move { core.forget_queue(&key.vhost, &key.name, id).await });
                return;
            }
        }
    }

    fn handle_cmd(&mut self, cmd: QueueCmd) -> Flow {
        match cmd {
            QueueCmd::Publish { msg, confirm } => self.publish(msg, confirm),
            QueueCmd::Consume { spec, reply } => {
                let _ = reply.send(self.add_consumer(*spec));
            }
            QueueCmd::Cancel { owner, tag, reply } => {
                self.consumers
                    .retain(|c| !(c.spec.owner == owner && c.spec.tag == tag));
                if let Some(reply) = reply {
                    let _ = reply.send(());
                }
            }
            QueueCmd::Settle { owner, seqs, how } => {
                for seq in seqs {
                    self.settle(owner, seq, how);
                }
            }
            QueueCmd::ChannelClosed { owner } => {
                self.consumers.retain(|c| c.spec.owner != owner);
                let mut mine: Vec<u64> = self
                    .unacked
                    .iter()
                    .filter(|(_, u)| u.owner == owner)
                    .map(|(seq, _)| *seq)
                    .collect();
                mine.sort_unstable();
                for seq in mine {
                    self.settle(owner, seq, Settle::Requeue);
                }
            }
            QueueCmd::Get {
                owner,
                no_ack,
                reply,
            } => {
                self.page_in_front();
                // A front whose body could not be read (logged) stays: answer empty for now.
                let front = match self.ready.front() {
                    Some(r) if r.msg.is_some() => self.ready.pop_front(),
                    _ => None,
                };
                let got = front.and_then(|r| Some((r.msg.clone()?, r)));
                let got = got.map(|(msg, r)| {
                    self.handle.counters().add_got();
                    if no_ack {
                        self.core.memory.sub(msg.body.len());
                        if r.stored {
                            self.to_remove.push(r.seq);
                        }
                    } else {
                        self.unacked.insert(
                            r.seq,
                            Unacked {
                                msg: msg.clone(),
                                owner,
                                tag: None,
                                stored: r.stored,
                                shared: None,
                            },
                        );
                    }
                    GetOk {
                        seq: r.seq,
                        msg,
                        redelivered: r.redelivered,
                        remaining: count(self.ready.len()),
                    }
                });
                let _ = reply.send(got);
            }
            QueueCmd::Purge { reply } => {
                let n = count(self.ready.len());
                self.offloaded_publishers.clear();
                for r in self.ready.drain(..) {
                    r.uncount(&self.core.memory);
                    if r.stored {
                        self.to_remove.push(r.seq);
                    }
                }
                let _ = reply.send(n);
            }
            QueueCmd::Delete {
                if_unused,
                if_empty,
                reply,
            } => {
                if if_unused && !self.consumers.is_empty() {
                    let _ = reply.send(Err(DeleteRefused::InUse));
                } else if if_empty && !self.ready.is_empty() {
                    let _ = reply.send(Err(DeleteRefused::NotEmpty));
                } else {
                    let n = count(self.ready.len());
                    self.delete_self();
                    let _ = reply.send(Ok(n));
                    return Flow::Stop;
                }
            }
            QueueCmd::Wake => {}
            QueueCmd::Stats { reply } => {
                let _ = reply.send(QueueStats {
                    messages: count(self.ready.len()),
                    unacked: count(self.unacked.len()),
                    consumers: count(self.consumers.len()),
                });
            }
            QueueCmd::Peek { count, reply } => {
                // Bodies on disk are read for the copy, not kept.
                let missing: Vec<u64> = self
                    .ready
                    .iter()
                    .take(count)
                    .filter(|r| r.msg.is_none())
                    .map(|r| r.seq)
                    .collect();
                let mut loaded = self.read_stored(&missing).into_iter().peekable();
                let copies = self
                    .ready
                    .iter()
                    .take(count)
                    .filter_map(|r| {
                        let msg = match &r.msg {
                            Some(m) => m.clone(),
                            None => loaded.next_if(|(seq, _)| *seq == r.seq)?.1,
                        };
                        Some(Peeked {
                            msg,
                            redelivered: r.redelivered,
                        })
                    })
                    .collect();
                let _ = reply.send(copies);
            }
            QueueCmd::Consumers { reply } => {
                let list = self
                    .consumers
                    .iter()
                    .map(|c| ConsumerInfo {
                        tag: c.spec.tag.clone(),
                        owner: c.spec.owner,
                        conn_id: c.spec.conn_id,
                        prefetch: c.spec.prefetch,
                        ack_required: !c.spec.no_ack,
                        exclusive: c.spec.exclusive,
                        unacked: c.unacked,
                    })
                    .collect();
                let _ = reply.send(list);
            }
        }
        Flow::Continue
    }

    fn publish(&mut self, msg: MessageRef, confirm: Option<ConfirmTarget>) {
        self.handle.counters().add_published();
        let seq = self.next_seq;
        self.next_seq += 1;
        let stored = self.durable && msg.is_persistent();
        if stored {
            let mut props = BytesMut::new();
            msg.properties.encode(&mut props);
            self.to_store.push(StoredMessage {
                seq,
                exchange: msg.exchange.as_str().to_string(),
                routing_key: msg.routing_key.as_str().to_string(),
                properties: props.freeze(),
                body: msg.body.clone(),
            });
            if let Some(c) = confirm {
                self.confirm_after_sync.push(c);
            }
        } else if let Some(c) = confirm {
            c.send(true);
        }
        // Behind a full window a stored body lives on disk only (once this batch is written).
        let msg = if stored && self.ready.len() >= MEMORY_WINDOW {
            if let Some(p) = &msg.publisher {
                self.offloaded_publishers.insert(seq, p.clone());
            }
            None
        } else {
            self.core.memory.add(msg.body.len());
            Some(msg)
        };
        self.ready.push_back(Ready {
            seq,
            msg,
            redelivered: false,
            stored,
        });
    }

    /// Makes sure the front of the ready list has its body, reading the next [`PAGE`] bodies
    /// that are only on disk. Entries whose record cannot be read are dropped (logged).
    fn page_in_front(&mut self) {
        if self.ready.front().is_none_or(|r| r.msg.is_some()) {
            return;
        }
        let missing: Vec<u64> = self
            .ready
            .iter()
            .take(MEMORY_WINDOW)
            .filter(|r| r.msg.is_none())
            .take(PAGE)
            .map(|r| r.seq)
            .collect();
        let Some(&last) = missing.last() else {
            return;
        };
        let loaded = self.read_stored(&missing);
        if loaded.is_empty() && self.read_failed {
            // The disk failed; leave the entries for a later attempt rather than lose them.
            return;
        }
        let mut loaded = loaded.into_iter().peekable();
        let mut lost = Vec::new();
        for r in self.ready.iter_mut() {
            if r.seq > last {
                break;
            }
            if r.msg.is_some() {
                continue;
            }
            match loaded.next_if(|(seq, _)| *seq == r.seq) {
                Some((_, msg)) => {
                    self.core.memory.add(msg.body.len());
                    self.offloaded_publishers.remove(&r.seq);
                    r.msg = Some(msg);
                }
                None => lost.push(r.seq),
            }
        }
        if !lost.is_empty() {
            tracing::error!(queue = %self.key.name, count = lost.len(), "stored messages could not be read back; dropping them");
            self.ready
                .retain(|r| r.msg.is_some() || !lost.contains(&r.seq));
            for seq in &lost {
                self.offloaded_publishers.remove(seq);
            }
            self.to_remove.extend_from_slice(&lost);
        }
    }

    /// Reads stored messages (seqs increasing) back as broker messages, in seq order; the
    /// batch's own appends are written first so they can be read. Messages that are missing or
    /// unreadable are left out; a storage error leaves out all of them and sets `read_failed`.
    fn read_stored(&mut self, seqs: &[u64]) -> Vec<(u64, MessageRef)> {
        self.read_failed = false;
        if seqs.is_empty() {
            return Vec::new();
        }
        self.flush_storage();
        match self.core.storage().read(&self.key, seqs) {
            Ok(msgs) => msgs
                .into_iter()
                .filter_map(|m| {
                    let publisher = self.offloaded_publishers.get(&m.seq).cloned();
                    Some((m.seq, to_message(&self.key.name, m, publisher)?))
                })
                .collect(),
            Err(e) => {
                tracing::error!(queue = %self.key.name, error = %e, "cannot read stored messages");
                self.read_failed = true;
                Vec::new()
            }
        }
    }

    fn add_consumer(&mut self, spec: ConsumerSpec) -> Result<(), ConsumeRefused> {
        if self.consumers.iter().any(|c| c.spec.exclusive)
            || (spec.exclusive && !self.consumers.is_empty())
        {
            return Err(ConsumeRefused::ExclusiveInUse);
        }
        self.had_consumer = true;
        self.consumers.push(Consumer { spec, unacked: 0 });
        Ok(())
    }

    fn settle(&mut self, owner: ChannelKey, seq: u64, how: Settle) {
        let Some(u) = self.unacked.get(&seq) else {
            return;
        };
        if u.owner != owner {
            return;
        }
        let Some(u) = self.unacked.remove(&seq) else {
            return;
        };
        if let Some(shared) = &u.shared
            && how != Settle::Received
        {
            shared.give_back();
        }
        if let Some(tag) = &u.tag
            && let Some(c) = self
                .consumers
                .iter_mut()
                .find(|c| c.spec.owner == owner && &c.spec.tag == tag)
        {
            c.unacked = c.unacked.saturating_sub(1);
        }
        if matches!(how, Settle::Ack | Settle::Received) {
            self.handle.counters().add_acked();
        }
        match how {
            Settle::Ack | Settle::Received | Settle::Drop => {
                self.core.memory.sub(u.msg.body.len());
                if u.stored {
                    self.to_remove.push(seq);
                }
            }
            Settle::Requeue => {
                let entry = Ready {
                    seq,
                    msg: Some(u.msg),
                    redelivered: true,
                    stored: u.stored,
                };
                // Keep the ready list in publish order: requeued messages go ahead of newer ones.
                let pos = self.ready.partition_point(|r| r.seq < seq);
                self.ready.insert(pos, entry);
            }
        }
    }

    /// Writes this batch's persistent messages and removals; confirms follow the next sync.
    fn flush_storage(&mut self) {
        let storage = self.core.storage().clone();
        if !self.to_store.is_empty() {
            let result = storage.append(&self.key, &self.to_store);
            self.to_store.clear();
            let confirms = std::mem::take(&mut self.confirm_after_sync);
            match result {
                Ok(()) => self.core.flusher().confirm_after_sync(confirms),
                Err(e) => {
                    tracing::error!(queue = %self.key.name, error = %e, "cannot store messages; nacking them");
                    confirms.into_iter().for_each(|c| c.send(false));
                }
            }
        }
        if !self.to_remove.is_empty() {
            if let Err(e) = storage.remove(&self.key, &self.to_remove) {
                tracing::error!(queue = %self.key.name, error = %e, "cannot remove acknowledged messages from storage");
            }
            self.to_remove.clear();
        }
    }

    /// Hands ready messages to consumers with credit, round-robin.
    fn dispatch(&mut self) {
        while !self.ready.is_empty() && !self.consumers.is_empty() {
            self.page_in_front();
            let n = self.consumers.len();
            let start = self.next_consumer % n;
            let Some(i) = (0..n)
                .map(|k| (start + k) % n)
                .find(|&i| self.consumers[i].has_credit())
            else {
                return;
            };
            let Some(r) = self.ready.pop_front() else {
                return;
            };
            let Some(msg) = r.msg.clone() else {
                // Its body could not be read (the error is logged): try again later.
                self.ready.push_front(r);
                return;
            };
            let c = &mut self.consumers[i];
            if let Some(shared) = &c.spec.shared
                && !shared.try_take()
            {
                // Another queue of the channel took the last unit meanwhile.
                self.ready.push_front(r);
                return;
            }
            let delivery = Delivery {
                owner: c.spec.owner,
                consumer_tag: c.spec.tag.clone(),
                queue: self.handle.clone(),
                seq: r.seq,
                msg: msg.clone(),
                redelivered: r.redelivered,
                gauged: false,
            };
            if c.spec
                .conn
                .send(ConnEvent::Deliver(Box::new(delivery)))
                .is_err()
            {
                // The connection is gone; its ChannelClosed may not have arrived yet.
                if let Some(shared) = &c.spec.shared {
                    shared.give_back();
                }
                self.consumers.remove(i);
                self.ready.push_front(r);
                continue;
            }
            c.unacked += 1;
            self.handle.counters().add_delivered();
            self.unacked.insert(
                r.seq,
                Unacked {
                    msg,
                    owner: c.spec.owner,
                    tag: Some(c.spec.tag.clone()),
                    stored: r.stored,
                    shared: c.spec.shared.clone(),
                },
            );
            self.next_consumer = i + 1;
        }
    }

    /// Ends the queue: consumers are told, stored messages go.
    fn delete_self(&mut self) {
        self.to_store.clear();
        self.to_remove.clear();
        // Messages published just before the delete are gone with the queue, as in RabbitMQ: ack.
        std::mem::take(&mut self.confirm_after_sync)
            .into_iter()
            .for_each(|c| c.send(true));
        for c in self.consumers.drain(..) {
            let _ = c.spec.conn.send(ConnEvent::ConsumerCancelled {
                owner: c.spec.owner,
                tag: c.spec.tag,
            });
        }
        for r in self.ready.drain(..) {
            r.uncount(&self.core.memory);
        }
        self.offloaded_publishers.clear();
        for (_, u) in std::mem::take(&mut self.unacked) {
            self.core.memory.sub(u.msg.body.len());
            // The consumer's connection will never settle it with us: its window unit
            // would be lost for the connection's other queues.
            if let Some(shared) = &u.shared {
                shared.give_back();
            }
        }
        if self.durable
            && let Err(e) = self.core.storage().delete_queue(&self.key)
        {
            tracing::error!(queue = %self.key.name, error = %e, "cannot delete the queue's stored messages");
        }
    }
}

/// A stored message as a broker message (with the MQTT publisher id kept aside for it, if any),
/// or `None` (logged) when its stored fields are unusable.
fn to_message(queue: &str, m: StoredMessage, publisher: Option<Arc<str>>) -> Option<MessageRef> {
    let properties = match BasicProperties::decode(&m.properties) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(queue = %queue, seq = m.seq, error = %e, "skipping stored message with unreadable properties");
            return None;
        }
    };
    let (Ok(exchange), Ok(routing_key)) = (ShortStr::new(m.exchange), ShortStr::new(m.routing_key))
    else {
        tracing::error!(queue = %queue, seq = m.seq, "skipping stored message with an over-long name");
        return None;
    };
    Some(Arc::new(Message {
        exchange,
        routing_key,
        properties,
        body: m.body,
        publisher,
        mqtt_form: Default::default(),
    }))
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use storage::Storage;

    fn persistent(i: usize) -> MessageRef {
        Arc::new(Message {
            exchange: ShortStr::new("").expect("short"),
            routing_key: ShortStr::new("q").expect("short"),
            properties: BasicProperties {
                delivery_mode: Some(2),
                ..Default::default()
            },
            body: Bytes::from(format!("message {i}")),
            // Every third one as if from an MQTT client ("no local" needs it at delivery).
            publisher: i
                .is_multiple_of(3)
                .then(|| Arc::from(format!("client {i}"))),
            mqtt_form: Default::default(),
        })
    }

    async fn get(h: &QueueHandle) -> Option<GetOk> {
        h.ask(|reply| QueueCmd::Get {
            owner: ChannelKey(1),
            no_ack: true,
            reply,
        })
        .await
        .flatten()
    }

    #[tokio::test]
    async fn long_queues_keep_bodies_on_disk_and_page_them_in() {
        paging(Arc::new(storage::MemoryStorage::new())).await;
    }

    #[tokio::test]
    async fn long_queues_page_from_segment_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = storage::SegmentStorage::open(dir.path()).expect("open");
        paging(Arc::new(store)).await;
    }

    /// Publishes past the memory window, drains half, "restarts" (a new task over the stored
    /// seqs) and drains the rest: order, bodies, redelivered flags and the memory gauge hold.
    async fn paging<S: Storage>(storage: Arc<S>) {
        let core = Core::new(storage.clone(), u64::MAX);
        let n = MEMORY_WINDOW * 3 + PAGE / 2;
        let h = QueueTask::spawn(&core, "/".into(), "q".into(), true, false, Vec::new());
        for i in 0..n {
            let sent = h.send(QueueCmd::Publish {
                msg: persistent(i),
                confirm: None,
            });
            assert!(sent.await.is_ok());
        }
        let stats = h
            .ask(|reply| QueueCmd::Stats { reply })
            .await
            .expect("stats");
        assert_eq!(usize::try_from(stats.messages).ok(), Some(n));
        let per_message = super::super::memory::MESSAGE_OVERHEAD + 13;
        let window_bytes = u64::try_from(MEMORY_WINDOW).expect("fits") * per_message;
        assert!(
            core.memory.used() <= window_bytes,
            "bodies beyond the window stay on disk: {} bytes held",
            core.memory.used()
        );

        let peeked = h
            .ask(|reply| QueueCmd::Peek { count: 3, reply })
            .await
            .expect("peek");
        assert_eq!(peeked.len(), 3);
        for i in 0..n / 2 {
            let got = get(&h).await.expect("a message");
            assert_eq!(got.msg.body, format!("message {i}"));
            assert!(!got.redelivered);
            assert_eq!(
                got.msg.publisher,
                persistent(i).publisher,
                "publisher of {i}"
            );
        }
        assert!(core.memory.used() <= window_bytes);
        // Everything taken so far is removed from storage at the end of its batch.
        let _ = h.ask(|reply| QueueCmd::Stats { reply }).await;
        let key = QueueKey::new("/", "q");
        let stored = storage.recover_seqs(&key).expect("seqs");
        assert_eq!(stored.len(), n - n / 2);

        let before = core.memory.used();
        let again = QueueTask::spawn(&core, "/".into(), "q".into(), true, false, stored);
        assert_eq!(core.memory.used(), before, "recovery reads no bodies");
        for i in n / 2..n {
            let got = get(&again).await.expect("a recovered message");
            assert_eq!(got.msg.body, format!("message {i}"));
            assert!(got.redelivered);
        }
        assert!(get(&again).await.is_none());
        assert_eq!(core.memory.used(), before, "drained: no bodies held");

        // Purging a long queue takes off the gauge only what it counted.
        let third = QueueTask::spawn(&core, "/".into(), "p".into(), true, false, Vec::new());
        for i in 0..MEMORY_WINDOW * 2 {
            let sent = third.send(QueueCmd::Publish {
                msg: persistent(i),
                confirm: None,
            });
            assert!(sent.await.is_ok());
        }
        let purged = third.ask(|reply| QueueCmd::Purge { reply }).await;
        assert_eq!(
            purged.and_then(|n| usize::try_from(n).ok()),
            Some(MEMORY_WINDOW * 2)
        );
        assert_eq!(core.memory.used(), before, "purged: the gauge is back");
    }
}
