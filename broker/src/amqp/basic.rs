//! The basic class (publish, consume, get, acks), confirm.select and the tx class.

use super::access::Resource;
use crate::core::access::Access;
use std::sync::Arc;

use protocol_amqp::{
    BasicCancelOk, BasicConsume, BasicConsumeOk, BasicDeliver, BasicGetEmpty, BasicGetOk,
    BasicPublish, BasicQosOk, BasicRecoverOk, BasicReturn, ConfirmSelectOk, Content, FieldTable,
    Method, ShortStr, TxCommitOk, TxRollbackOk, TxSelectOk, encode_content, reply_code,
};

use super::channel::{ChannelConsumer, Pending, TxOp};
use super::confirms::Confirms;
use super::connection::Conn;
use crate::core::ops::random_name;
use crate::core::queue::{
    ConsumeRefused, ConsumerSpec, QueueCmd, QueueHandle, Settle, SharedCredit,
};
use crate::core::routes::RouteCache;
use crate::core::{ConfirmTarget, Delivery};
use crate::error::AmqpError;
use crate::model::message::Message;

fn unknown_tag(tag: u64) -> AmqpError {
    AmqpError::precondition_failed(format!("unknown delivery tag {tag}"))
}

impl Conn {
    pub(crate) async fn handle_basic(
        &mut self,
        channel: u16,
        method: Method,
        content: Option<Content>,
    ) -> Result<(), AmqpError> {
        match method {
            Method::BasicQos(m) => {
                if m.prefetch_size != 0 {
                    return Err(AmqpError::connection(
                        reply_code::NOT_IMPLEMENTED,
                        "NOT_IMPLEMENTED",
                        format!("prefetch_size!=0 ({})", m.prefetch_size),
                    ));
                }
                let ch = self.channel(channel)?;
                if m.global {
                    ch.shared_credit = (m.prefetch_count > 0)
                        .then(|| Arc::new(SharedCredit::new(u32::from(m.prefetch_count))));
                } else {
                    ch.prefetch = m.prefetch_count;
                }
                self.send_method(channel, BasicQosOk {}.into());
            }
            Method::BasicConsume(m) => self.consume(channel, m).await?,
            Method::BasicCancel(m) => {
                let ch = self.channel(channel)?;
                let owner = ch.key;
                if let Some(c) = ch.consumers.remove(&m.consumer_tag) {
                    let tag = m.consumer_tag.clone();
                    c.queue
                        .ask(|reply| QueueCmd::Cancel {
                            owner,
                            tag,
                            reply: Some(reply),
                        })
                        .await;
                }
                if !m.nowait {
                    self.send_method(
                        channel,
                        BasicCancelOk {
                            consumer_tag: m.consumer_tag,
                        }
                        .into(),
                    );
                }
            }
            Method::BasicPublish(m) => {
                let Some(content) = content else {
                    return Err(AmqpError::internal("publish without content"));
                };
                match self.channel(channel)?.tx.as_mut() {
                    Some(ops) => ops.push(TxOp::Publish(Box::new((m, content)))),
                    None => self.publish(channel, m, content).await?,
                }
            }
            Method::BasicGet(m) => {
                let ch = self.channel(channel)?;
                let owner = ch.key;
                let name = ch.queue_name(&m.queue)?;
                self.check_access(Access::Read, Resource::Queue, &name)?;
                let entry = self.core.lookup_queue(self.vhost_name(), self.id, &name)?;
                self.channel(channel)?.touch(&entry.handle);
                let got = entry
                    .handle
                    .ask(|reply| QueueCmd::Get {
                        owner,
                        no_ack: m.no_ack,
                        reply,
                    })
                    .await
                    .flatten();
                match got {
                    None => self.send_method(channel, BasicGetEmpty {}.into()),
                    Some(g) => {
                        let ch = self.channel(channel)?;
                        let tag = ch.next_tag;
                        ch.next_tag += 1;
                        if !m.no_ack {
                            ch.unacked.insert(
                                tag,
                                Pending {
                                    queue: entry.handle.clone(),
                                    seq: g.seq,
                                },
                            );
                        }
                        let method = BasicGetOk {
                            delivery_tag: tag,
                            redelivered: g.redelivered,
                            exchange: g.msg.exchange.clone(),
                            routing_key: g.msg.routing_key.clone(),
                            message_count: g.remaining,
                        }
                        .into();
                        encode_content(
                            channel,
                            &method,
                            &g.msg.properties,
                            &g.msg.body,
                            self.frame_max,
                            &mut self.out,
                        );
                    }
                }
            }
            Method::BasicAck(m) => {
                self.settle_or_buffer(channel, m.delivery_tag, m.multiple, Settle::Ack)
                    .await?
            }
            Method::BasicReject(m) => {
                let how = if m.requeue {
                    Settle::Requeue
                } else {
                    Settle::Drop
                };
                self.settle_or_buffer(channel, m.delivery_tag, false, how)
                    .await?;
            }
            Method::BasicNack(m) => {
                let how = if m.requeue {
                    Settle::Requeue
                } else {
                    Settle::Drop
                };
                self.settle_or_buffer(channel, m.delivery_tag, m.multiple, how)
                    .await?;
            }
            Method::BasicRecover(_) => {
                self.settle(channel, 0, true, Settle::Requeue).await?;
                self.send_method(channel, BasicRecoverOk {}.into());
            }
            Method::BasicRecoverAsync(m) => {
                if !m.requeue {
                    return Err(AmqpError::connection(
                        reply_code::NOT_IMPLEMENTED,
                        "NOT_IMPLEMENTED",
                        "requeue=false",
                    ));
                }
                self.settle(channel, 0, true, Settle::Requeue).await?;
            }
            Method::ConfirmSelect(m) => {
                let ch = self.channel(channel)?;
                if ch.tx.is_some() {
                    return Err(AmqpError::precondition_failed(
                        "cannot switch from tx to confirm mode",
                    ));
                }
                ch.confirms.get_or_insert_with(Confirms::default);
                if !m.nowait {
                    self.send_method(channel, ConfirmSelectOk {}.into());
                }
            }
            Method::TxSelect(_) => {
                let ch = self.channel(channel)?;
                if ch.confirms.is_some() {
                    return Err(AmqpError::precondition_failed(
                        "cannot switch from confirm to tx mode",
                    ));
                }
                ch.tx.get_or_insert_with(Vec::new);
                self.send_method(channel, TxSelectOk {}.into());
            }
            Method::TxCommit(_) => {
                let ch = self.channel(channel)?;
                let Some(ops) = ch.tx.replace(Vec::new()) else {
                    return Err(AmqpError::precondition_failed(
                        "channel is not transactional",
                    ));
                };
                for op in ops {
                    match op {
                        TxOp::Publish(p) => {
                            let (m, content) = *p;
                            self.publish(channel, m, content).await?
                        }
                        TxOp::Settle { tag, multiple, how } => {
                            self.settle(channel, tag, multiple, how).await?
                        }
                    }
                }
                self.send_method(channel, TxCommitOk {}.into());
            }
            Method::TxRollback(_) => {
                let ch = self.channel(channel)?;
                let Some(ops) = ch.tx.as_mut() else {
                    return Err(AmqpError::precondition_failed(
                        "channel is not transactional",
                    ));
                };
                ops.clear();
                self.send_method(channel, TxRollbackOk {}.into());
            }
            other => {
                return Err(AmqpError::connection(
                    reply_code::COMMAND_INVALID,
                    "COMMAND_INVALID",
                    format!("method '{}' is not allowed from a client", other.name()),
                ));
            }
        }
        Ok(())
    }

    async fn consume(&mut self, channel: u16, m: BasicConsume) -> Result<(), AmqpError> {
        let ch = self.channel(channel)?;
        let name = ch.queue_name(&m.queue)?;
        self.check_access(Access::Read, Resource::Queue, &name)?;
        let entry = self.core.lookup_queue(self.vhost_name(), self.id, &name)?;
        let tag = if m.consumer_tag.is_empty() {
            ShortStr::new(random_name("amq.ctag-"))
                .map_err(|_| AmqpError::internal("consumer tag too long"))?
        } else {
            m.consumer_tag
        };
        let ch = self.channel(channel)?;
        if ch.consumers.contains_key(&tag) {
            return Err(AmqpError::connection(
                reply_code::NOT_ALLOWED,
                "NOT_ALLOWED",
                format!("attempt to reuse consumer tag '{tag}'"),
            ));
        }
        ch.consumers.insert(
            tag.clone(),
            ChannelConsumer {
                queue: entry.handle.clone(),
                no_ack: m.no_ack,
            },
        );
        ch.touch(&entry.handle);
        let (owner, prefetch, shared) = (ch.key, u32::from(ch.prefetch), ch.shared_credit.clone());
        let spec = ConsumerSpec {
            tag: tag.clone(),
            owner,
            conn_id: self.id,
            conn: self.tx.clone(),
            prefetch,
            shared,
            no_ack: m.no_ack,
            exclusive: m.exclusive,
        };
        let outcome = entry
            .handle
            .ask(|reply| QueueCmd::Consume {
                spec: Box::new(spec),
                reply,
            })
            .await;
        match outcome {
            Some(Ok(())) => {
                if !m.nowait {
                    self.send_method(channel, BasicConsumeOk { consumer_tag: tag }.into());
                }
                Ok(())
            }
            Some(Err(ConsumeRefused::ExclusiveInUse)) => {
                self.channel(channel)?.consumers.remove(&tag);
                Err(AmqpError::access_refused(format!(
                    "queue '{name}' in vhost '{}' in exclusive use",
                    self.vhost_name()
                )))
            }
            None => {
                self.channel(channel)?.consumers.remove(&tag);
                Err(AmqpError::not_found(format!(
                    "no queue '{name}' in vhost '{}'",
                    self.vhost_name()
                )))
            }
        }
    }

    /// The queues a publish to `exchange` with `routing_key` reaches, or the channel error
    /// for an exchange that is missing or internal. The channel's last route when the
    /// exchange, the key and the topology are the same (see [`RouteCache`]).
    fn route(
        &mut self,
        channel: u16,
        exchange: &ShortStr,
        routing_key: &ShortStr,
        headers: Option<&FieldTable>,
    ) -> Result<Arc<[QueueHandle]>, AmqpError> {
        let mut cache = self.channel(channel)?.routes.take();
        let routed = RouteCache::route(
            &mut cache,
            self.vhost.as_deref(),
            exchange,
            routing_key,
            headers,
            |topo| match topo.exchanges.get(exchange.as_str()) {
                _ if exchange.is_empty() => Ok(()),
                None => Err(AmqpError::not_found(format!(
                    "no exchange '{}' in vhost '{}'",
                    exchange,
                    self.vhost_name()
                ))),
                Some(x) if x.internal => Err(AmqpError::access_refused(format!(
                    "cannot publish to internal exchange '{}' in vhost '{}'",
                    exchange,
                    self.vhost_name()
                ))),
                Some(_) => Ok(()),
            },
        );
        self.channel(channel)?.routes = cache;
        routed
    }

    async fn publish(
        &mut self,
        channel: u16,
        m: BasicPublish,
        content: Content,
    ) -> Result<(), AmqpError> {
        if m.immediate {
            return Err(AmqpError::connection(
                reply_code::NOT_IMPLEMENTED,
                "NOT_IMPLEMENTED",
                "immediate=true",
            ));
        }
        self.check_access(Access::Write, Resource::Exchange, m.exchange.as_str())?;
        let targets = self.route(
            channel,
            &m.exchange,
            &m.routing_key,
            content.properties.headers.as_ref(),
        )?;
        let queues = u32::try_from(targets.len()).unwrap_or(u32::MAX);
        let confirm_seq = self
            .channel(channel)?
            .confirms
            .as_mut()
            .map(|c| c.publish(queues));
        if targets.is_empty() {
            if m.mandatory {
                let method = BasicReturn {
                    reply_code: reply_code::NO_ROUTE,
                    reply_text: ShortStr::from_static("NO_ROUTE"),
                    exchange: m.exchange,
                    routing_key: m.routing_key,
                }
                .into();
                encode_content(
                    channel,
                    &method,
                    &content.properties,
                    &content.body,
                    self.frame_max,
                    &mut self.out,
                );
            }
            if confirm_seq.is_some() {
                self.flush_confirms(channel);
            }
            return Ok(());
        }
        let msg = Arc::new(Message {
            exchange: m.exchange,
            routing_key: m.routing_key,
            properties: content.properties,
            body: content.body,
            publisher: None,
            mqtt_form: Default::default(),
        });
        if self.core.memory.is_blocked() {
            self.block_publisher();
        }
        for queue in targets.iter() {
            let confirm = confirm_seq.map(|seq| ConfirmTarget {
                conn: self.tx.clone(),
                channel,
                seq,
            });
            if let Err(QueueCmd::Publish {
                confirm: Some(c), ..
            }) = queue
                .send(QueueCmd::Publish {
                    msg: msg.clone(),
                    confirm,
                })
                .await
            {
                // The queue was deleted after routing: as if it had taken the message.
                c.send(true);
            }
        }
        Ok(())
    }

    async fn settle_or_buffer(
        &mut self,
        channel: u16,
        tag: u64,
        multiple: bool,
        how: Settle,
    ) -> Result<(), AmqpError> {
        match self.channel(channel)?.tx.as_mut() {
            Some(ops) => {
                ops.push(TxOp::Settle { tag, multiple, how });
                Ok(())
            }
            None => self.settle(channel, tag, multiple, how).await,
        }
    }

    /// Acks, rejects or requeues delivery tags (`multiple` with tag 0 = all outstanding).
    async fn settle(
        &mut self,
        channel: u16,
        tag: u64,
        multiple: bool,
        how: Settle,
    ) -> Result<(), AmqpError> {
        let ch = self.channel(channel)?;
        let owner = ch.key;
        let taken: Vec<Pending> = if multiple {
            let upto = if tag == 0 { u64::MAX } else { tag };
            let keys: Vec<u64> = ch.unacked.range(..=upto).map(|(k, _)| *k).collect();
            if keys.is_empty() && tag != 0 {
                return Err(unknown_tag(tag));
            }
            keys.iter().filter_map(|k| ch.unacked.remove(k)).collect()
        } else {
            vec![ch.unacked.remove(&tag).ok_or_else(|| unknown_tag(tag))?]
        };
        let mut groups: Vec<(crate::core::queue::QueueHandle, Vec<u64>)> = Vec::new();
        for p in taken {
            match groups.iter_mut().find(|(q, _)| q.id() == p.queue.id()) {
                Some((_, seqs)) => seqs.push(p.seq),
                None => groups.push((p.queue, vec![p.seq])),
            }
        }
        let wake: Vec<_> = match &self.channel(channel)?.shared_credit {
            // Credit given back here may be what another queue of the channel waits for.
            Some(_) => self
                .channel(channel)?
                .consumers
                .values()
                .map(|c| c.queue.clone())
                .collect(),
            None => Vec::new(),
        };
        let mut told = Vec::with_capacity(groups.len() + wake.len());
        for (queue, seqs) in groups {
            told.push(queue.id());
            let _ = queue.send(QueueCmd::Settle { owner, seqs, how }).await;
        }
        for queue in wake {
            if !told.contains(&queue.id()) {
                told.push(queue.id());
                let _ = queue.send(QueueCmd::Wake).await;
            }
        }
        Ok(())
    }

    /// A delivery from a queue to one of this connection's consumers.
    pub(crate) async fn deliver(&mut self, d: Delivery) {
        // A closed channel's queues requeue its deliveries themselves (ChannelClosed).
        let Some(&channel) = self.owners.get(&d.owner) else {
            return;
        };
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if ch.is_closing() {
            return;
        }
        let Some(consumer) = ch.consumers.get(&d.consumer_tag) else {
            // Cancelled while the delivery was on its way: give it back.
            let _ = d
                .queue
                .send(QueueCmd::Settle {
                    owner: d.owner,
                    seqs: vec![d.seq],
                    how: Settle::Requeue,
                })
                .await;
            return;
        };
        let tag = ch.next_tag;
        ch.next_tag += 1;
        if consumer.no_ack {
            self.auto_settle.push((d.queue.clone(), d.owner, d.seq));
        } else {
            ch.unacked.insert(
                tag,
                Pending {
                    queue: d.queue.clone(),
                    seq: d.seq,
                },
            );
        }
        let method = BasicDeliver {
            consumer_tag: d.consumer_tag,
            delivery_tag: tag,
            redelivered: d.redelivered,
            exchange: d.msg.exchange.clone(),
            routing_key: d.msg.routing_key.clone(),
        }
        .into();
        encode_content(
            channel,
            &method,
            &d.msg.properties,
            &d.msg.body,
            self.frame_max,
            &mut self.out,
        );
    }
}
