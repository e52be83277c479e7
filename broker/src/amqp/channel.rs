//! Channel state and the channel, exchange and queue methods.

use super::access::Resource;
use crate::core::access::Access;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use protocol_amqp::{
    BasicPublish, ChannelCloseOk, ChannelFlowOk, ChannelOpenOk, Content, ExchangeBindOk,
    ExchangeDeclareOk, ExchangeDeleteOk, ExchangeUnbindOk, Method, QueueBindOk, QueueDeclareOk,
    QueueDeleteOk, QueuePurgeOk, QueueUnbindOk, ShortStr, reply_code,
};

use super::confirms::{ConfirmOut, Confirms};
use super::connection::Conn;
use crate::core::ChannelKey;
use crate::core::ops::{ExchangeDeclare, QueueDeclare};
use crate::core::queue::{QueueCmd, QueueHandle};
use crate::error::AmqpError;
use crate::model::exchange::{Binding, Destination};

/// A consumer as its channel knows it.
#[derive(Debug, Clone)]
pub(crate) struct ChannelConsumer {
    pub queue: QueueHandle,
    pub no_ack: bool,
}

/// A delivered message awaiting the client's ack.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub queue: QueueHandle,
    pub seq: u64,
}

/// Work a transactional channel holds until tx.commit.
#[derive(Debug)]
pub(crate) enum TxOp {
    Publish(Box<(BasicPublish, Content)>),
    Settle {
        tag: u64,
        multiple: bool,
        how: crate::core::queue::Settle,
    },
}

/// One open channel.
#[derive(Debug)]
pub(crate) struct Channel {
    pub key: ChannelKey,
    closing: bool,
    /// Looked up on every delivery: a fast hasher (keys are the client's own tags).
    pub consumers: FxHashMap<ShortStr, ChannelConsumer>,
    pub unacked: BTreeMap<u64, Pending>,
    pub next_tag: u64,
    pub prefetch: u16,
    /// Channel-wide credit from `basic.qos global=true` (RabbitMQ's reading), for new consumers.
    pub shared_credit: Option<std::sync::Arc<crate::core::queue::SharedCredit>>,
    pub last_queue: Option<String>,
    pub confirms: Option<Confirms>,
    pub confirm_out: Vec<ConfirmOut>,
    pub tx: Option<Vec<TxOp>>,
    /// Queues this channel consumed or got from: they hear about its end.
    queues: FxHashMap<u64, QueueHandle>,
    /// Where the last publish went (made by the first publish).
    pub routes: Option<Box<crate::core::routes::RouteCache>>,
}

impl Channel {
    fn new(key: ChannelKey) -> Channel {
        Channel {
            key,
            closing: false,
            consumers: FxHashMap::default(),
            unacked: BTreeMap::new(),
            next_tag: 1,
            prefetch: 0,
            shared_credit: None,
            last_queue: None,
            confirms: None,
            confirm_out: Vec::new(),
            tx: None,
            queues: FxHashMap::default(),
            routes: None,
        }
    }

    /// True after we sent channel.close and before close-ok.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    pub fn start_closing(&mut self) {
        self.closing = true;
    }

    /// Remembers that `queue` holds state for this channel.
    pub fn touch(&mut self, queue: &QueueHandle) {
        self.queues
            .entry(queue.id())
            .or_insert_with(|| queue.clone());
    }

    /// The queues to notify when the channel ends; the channel forgets its deliveries.
    pub fn take_queues(&mut self) -> Vec<QueueHandle> {
        self.consumers.clear();
        self.unacked.clear();
        self.queues.drain().map(|(_, q)| q).collect()
    }

    pub fn confirm_answer(&mut self, seq: u64, ok: bool) {
        if let Some(c) = self.confirms.as_mut() {
            c.answer(seq, ok, &mut self.confirm_out);
        }
    }

    /// A queue name argument: empty means the last queue declared on this channel.
    pub fn queue_name(&self, name: &ShortStr) -> Result<String, AmqpError> {
        if !name.is_empty() {
            return Ok(name.as_str().to_string());
        }
        self.last_queue
            .clone()
            .ok_or_else(|| AmqpError::not_found("no previously declared queue"))
    }
}

impl Conn {
    pub(crate) fn channel(&mut self, channel: u16) -> Result<&mut Channel, AmqpError> {
        self.channels.get_mut(&channel).ok_or_else(|| {
            AmqpError::connection(
                reply_code::CHANNEL_ERROR,
                "CHANNEL_ERROR",
                "expected 'channel.open'",
            )
        })
    }

    /// Emits the acks and nacks a channel's confirms produced.
    pub(crate) fn flush_confirms(&mut self, channel: u16) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        let Some(confirms) = ch.confirms.as_mut() else {
            return;
        };
        confirms.flush(&mut ch.confirm_out);
        let out = std::mem::take(&mut ch.confirm_out);
        for c in out {
            let method: Method = match c {
                ConfirmOut::Ack { tag, multiple } => protocol_amqp::BasicAck {
                    delivery_tag: tag,
                    multiple,
                }
                .into(),
                ConfirmOut::Nack { tag } => protocol_amqp::BasicNack {
                    delivery_tag: tag,
                    multiple: false,
                    requeue: false,
                }
                .into(),
            };
            self.send_method(channel, method);
        }
    }

    /// One complete command on a non-zero channel.
    pub(crate) async fn handle_command(
        &mut self,
        channel: u16,
        method: Method,
        content: Option<Content>,
    ) -> Result<(), AmqpError> {
        if let Method::ChannelOpen(_) = method {
            if self.channel_max != 0 && channel > self.channel_max {
                return Err(AmqpError::connection(
                    reply_code::NOT_ALLOWED,
                    "NOT_ALLOWED",
                    format!(
                        "channel number {channel} above the negotiated channel_max {}",
                        self.channel_max
                    ),
                ));
            }
            if self.channels.contains_key(&channel) {
                return Err(AmqpError::connection(
                    reply_code::CHANNEL_ERROR,
                    "CHANNEL_ERROR",
                    "second 'channel.open' seen",
                ));
            }
            let key = ChannelKey(self.core.next_id());
            self.channels.insert(channel, Channel::new(key));
            self.owners.insert(key, channel);
            if let Some(r) = &self.registered {
                r.info().channel_opened(channel, key);
            }
            self.send_method(channel, ChannelOpenOk {}.into());
            return Ok(());
        }
        self.channel(channel)?;
        match method {
            Method::ChannelClose(_) => {
                self.release_channel(channel).await;
                self.forget_channel(channel);
                self.send_method(channel, ChannelCloseOk {}.into());
            }
            Method::ChannelCloseOk(_) => {}
            Method::ChannelFlow(flow) => {
                if !flow.active {
                    return Err(AmqpError::connection(
                        reply_code::NOT_IMPLEMENTED,
                        "NOT_IMPLEMENTED",
                        "active=false",
                    ));
                }
                self.send_method(channel, ChannelFlowOk { active: true }.into());
            }
            Method::AccessRequest(_) => {
                self.send_method(channel, protocol_amqp::AccessRequestOk { ticket: 1 }.into());
            }
            Method::ExchangeDeclare(m) => {
                if !m.passive {
                    self.check_access(Access::Configure, Resource::Exchange, m.exchange.as_str())?;
                }
                self.core
                    .declare_exchange(
                        self.vhost_name(),
                        ExchangeDeclare {
                            name: m.exchange.into_string(),
                            kind: m.kind.into_string(),
                            passive: m.passive,
                            durable: m.durable,
                            auto_delete: m.auto_delete,
                            internal: m.internal,
                            arguments: m.arguments,
                        },
                    )
                    .await?;
                if !m.nowait {
                    self.send_method(channel, ExchangeDeclareOk {}.into());
                }
            }
            Method::ExchangeDelete(m) => {
                self.check_access(Access::Configure, Resource::Exchange, m.exchange.as_str())?;
                self.core
                    .delete_exchange(self.vhost_name(), m.exchange.as_str(), m.if_unused)
                    .await?;
                if !m.nowait {
                    self.send_method(channel, ExchangeDeleteOk {}.into());
                }
            }
            Method::ExchangeBind(m) => {
                let binding = Binding {
                    destination: Destination::Exchange(m.destination.clone().into_string()),
                    routing_key: m.routing_key.into_string(),
                    arguments: m.arguments,
                };
                self.check_access(Access::Write, Resource::Exchange, m.destination.as_str())?;
                self.check_access(Access::Read, Resource::Exchange, m.source.as_str())?;
                self.core
                    .bind(self.vhost_name(), self.id, m.source.as_str(), binding)
                    .await?;
                if !m.nowait {
                    self.send_method(channel, ExchangeBindOk {}.into());
                }
            }
            Method::ExchangeUnbind(m) => {
                let binding = Binding {
                    destination: Destination::Exchange(m.destination.clone().into_string()),
                    routing_key: m.routing_key.into_string(),
                    arguments: m.arguments,
                };
                self.check_access(Access::Write, Resource::Exchange, m.destination.as_str())?;
                self.check_access(Access::Read, Resource::Exchange, m.source.as_str())?;
                self.core
                    .unbind(self.vhost_name(), self.id, m.source.as_str(), binding)
                    .await?;
                if !m.nowait {
                    self.send_method(channel, ExchangeUnbindOk {}.into());
                }
            }
            Method::QueueDeclare(m) => {
                let requested = m.queue.into_string();
                if !m.passive {
                    // The core names server-named queues `amq.gen-` + random; the check sees
                    // a name of that form, as RabbitMQ checks the generated name.
                    let checked = if requested.is_empty() {
                        crate::core::ops::random_name("amq.gen-")
                    } else {
                        requested.clone()
                    };
                    self.check_access(Access::Configure, Resource::Queue, &checked)?;
                }
                let (name, stats) = self
                    .core
                    .declare_queue(
                        self.vhost_name(),
                        self.id,
                        QueueDeclare {
                            name: requested,
                            passive: m.passive,
                            durable: m.durable,
                            exclusive: m.exclusive,
                            auto_delete: m.auto_delete,
                            arguments: m.arguments,
                        },
                    )
                    .await?;
                self.channel(channel)?.last_queue = Some(name.clone());
                if !m.nowait {
                    let queue = ShortStr::new(name)
                        .map_err(|_| AmqpError::internal("queue name too long"))?;
                    self.send_method(
                        channel,
                        QueueDeclareOk {
                            queue,
                            message_count: stats.messages,
                            consumer_count: stats.consumers,
                        }
                        .into(),
                    );
                }
            }
            Method::QueueBind(m) => {
                let queue = self.channel(channel)?.queue_name(&m.queue)?;
                self.check_access(Access::Write, Resource::Queue, &queue)?;
                self.check_access(Access::Read, Resource::Exchange, m.exchange.as_str())?;
                let binding = Binding {
                    destination: Destination::Queue(queue),
                    routing_key: m.routing_key.into_string(),
                    arguments: m.arguments,
                };
                self.core
                    .bind(self.vhost_name(), self.id, m.exchange.as_str(), binding)
                    .await?;
                if !m.nowait {
                    self.send_method(channel, QueueBindOk {}.into());
                }
            }
            Method::QueueUnbind(m) => {
                let queue = self.channel(channel)?.queue_name(&m.queue)?;
                self.check_access(Access::Write, Resource::Queue, &queue)?;
                self.check_access(Access::Read, Resource::Exchange, m.exchange.as_str())?;
                let binding = Binding {
                    destination: Destination::Queue(queue),
                    routing_key: m.routing_key.into_string(),
                    arguments: m.arguments,
                };
                self.core
                    .unbind(self.vhost_name(), self.id, m.exchange.as_str(), binding)
                    .await?;
                self.send_method(channel, QueueUnbindOk {}.into());
            }
            Method::QueuePurge(m) => {
                let queue = self.channel(channel)?.queue_name(&m.queue)?;
                self.check_access(Access::Read, Resource::Queue, &queue)?;
                let entry = self.core.lookup_queue(self.vhost_name(), self.id, &queue)?;
                let message_count = entry
                    .handle
                    .ask(|reply| QueueCmd::Purge { reply })
                    .await
                    .unwrap_or(0);
                if !m.nowait {
                    self.send_method(channel, QueuePurgeOk { message_count }.into());
                }
            }
            Method::QueueDelete(m) => {
                let queue = self.channel(channel)?.queue_name(&m.queue)?;
                self.check_access(Access::Configure, Resource::Queue, &queue)?;
                let message_count = self
                    .core
                    .delete_queue(self.vhost_name(), self.id, &queue, m.if_unused, m.if_empty)
                    .await?;
                if !m.nowait {
                    self.send_method(channel, QueueDeleteOk { message_count }.into());
                }
            }
            other => return self.handle_basic(channel, other, content).await,
        }
        Ok(())
    }
}
