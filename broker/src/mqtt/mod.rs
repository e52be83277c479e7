//! The MQTT 3.1.1 / 5.0 front end over the same core as AMQP, as RabbitMQ's MQTT plugin does
//! it: every publish goes through `amq.topic` (topics mapped losslessly onto routing keys), a
//! session is a queue (`mqtt-subscription-<client id>`) bound to `amq.topic` once per
//! subscription, and a shared subscription `$share/group/filter` is a queue of that name whose
//! consumers are the group's members — so AMQP consumers can compete on it too.
//!
//! # Layout
//! - `listener`: accept loop.
//! - [`websocket`]: MQTT over WebSocket (`/mqtt`).
//! - `connection`: the connection task (CONNECT, keep-alive, takeover, cleanup, will).
//! - `inbound`: PUBLISH from clients, topic aliases, QoS 1/2 acknowledgements.
//! - `outbound`: deliveries to clients and their acknowledgements.
//! - `subscriptions`: SUBSCRIBE / UNSUBSCRIBE, shared subscriptions.
//! - [`convert`]: MQTT publish ⇄ core message (properties mapping).
//! - [`topic_map`]: lossless MQTT topic ⇄ AMQP routing key mapping.
//! - [`retained`]: retained messages, in memory and in storage.
//! - [`sessions`]: connected client ids (takeover) and per-client timers.

mod codec;
mod connection;
pub mod convert;
mod inbound;
pub mod listener;
mod outbound;
pub mod retained;
pub mod sessions;
mod subscriptions;
pub mod topic_map;
pub mod websocket;

use std::sync::Arc;

use protocol_mqtt::QoS;

use crate::core::Core;
use crate::core::queue::{QueueCmd, QueueHandle};
use crate::model::message::MessageRef;

/// What every MQTT connection shares.
pub struct Shared {
    /// The routing core.
    pub core: Arc<Core>,
    /// Retained messages.
    pub retained: retained::RetainedStore,
    /// Connected client ids and timers.
    pub sessions: sessions::Sessions,
    /// Largest packet accepted from clients (and advertised in 5.0 CONNACK).
    pub max_packet_size: usize,
}

/// A shared-subscription membership of a connection.
#[derive(Debug, Clone)]
pub struct SharedSub {
    /// The group's queue.
    pub queue: QueueHandle,
    /// Maximum QoS granted.
    pub qos: QoS,
}

impl Shared {
    /// MQTT state over `core`, with retained messages loaded from storage.
    pub fn new(core: Arc<Core>, max_packet_size: usize) -> Result<Shared, storage::StorageError> {
        let retained = retained::RetainedStore::open(core.storage().clone())?;
        Ok(Shared {
            core,
            retained,
            sessions: sessions::Sessions::default(),
            max_packet_size,
        })
    }

    /// Publishes a will message through `amq.topic` (no confirm: nobody waits for it).
    pub(crate) async fn publish_will(&self, topic: &str, msg: MessageRef, retain: bool) {
        if retain {
            let stored = if msg.body.is_empty() {
                None
            } else {
                Some(msg.clone())
            };
            if let Err(e) = self.retained.set(topic, stored) {
                tracing::error!(error = %e, "cannot store retained will message");
            }
        }
        let mut targets = Vec::new();
        self.core.topology().route(
            "amq.topic",
            msg.routing_key.as_str(),
            msg.properties.headers.as_ref(),
            &mut targets,
        );
        for queue in targets {
            let _ = queue
                .send(QueueCmd::Publish {
                    msg: msg.clone(),
                    confirm: None,
                })
                .await;
        }
    }
}
