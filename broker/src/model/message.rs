//! A message as the core holds it: protocol-neutral enough to be shared by every queue it
//! was routed to without copying (the body is a `Bytes` slice of the publisher's read buffer).

use std::sync::Arc;

use bytes::Bytes;
use protocol_amqp::{BasicProperties, ShortStr};

/// One published message. Shared as `Arc<Message>` between the queues it was routed to.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Exchange it was published to (reported back in deliveries).
    pub exchange: ShortStr,
    /// Routing key it was published with.
    pub routing_key: ShortStr,
    /// Content properties, kept as the publisher sent them.
    pub properties: BasicProperties,
    /// Body bytes.
    pub body: Bytes,
    /// MQTT client id of the publisher, for MQTT 5.0 "no local" subscriptions. Not stored:
    /// after a restart a message's origin is unknown.
    pub publisher: Option<Arc<str>>,
    /// The MQTT form, made by the first MQTT delivery and shared by the rest (fan-out).
    pub mqtt_form: crate::mqtt::convert::MqttForm,
}

impl Message {
    /// Persistent messages (delivery mode 2) are written to disk when they land on a durable queue.
    pub fn is_persistent(&self) -> bool {
        self.properties.is_persistent()
    }
}

/// Cheap handle to a shared message.
pub type MessageRef = Arc<Message>;
