//! Messages to the client: deliveries from the session and shared-subscription queues and
//! retained messages at subscribe time, with per-subscription QoS, subscription identifiers,
//! no-local, retain-as-published, DUP on redelivery, and the client's Maximum Packet Size;
//! then the client's PUBACK / PUBREC / PUBCOMP.

use std::num::NonZeroU32;

use protocol_mqtt::{
    Packet, PacketId, ProtocolVersion, PubRel, Publish, PublishProperties, QoS, ReasonCode,
    TopicFilter,
};

use super::connection::{MqttConn, Outbound, SESSION_TAG};
use super::convert::{Outgoing, from_message};
use crate::core::queue::{QueueCmd, QueueHandle, Settle};
use crate::core::{ChannelKey, Delivery};
use crate::model::message::Message;

/// How a message should go out, once the matching subscriptions are known.
struct Route {
    qos: QoS,
    retain_as_published: bool,
    ids: Vec<NonZeroU32>,
}

/// Settles one delivery with its queue. A free function: the connection is not `Sync`, so
/// its methods cannot hold `&self` across an await.
async fn settle(owner: ChannelKey, queue: &QueueHandle, seq: u64, how: Settle) {
    let _ = queue
        .send(QueueCmd::Settle {
            owner,
            seqs: vec![seq],
            how,
        })
        .await;
}

impl MqttConn {
    /// Which subscriptions take a message, or None if none does.
    fn route_for(&self, d: &Delivery, out: &Outgoing) -> Option<Route> {
        if d.consumer_tag.as_str() != SESSION_TAG {
            let sub = self.shared_subs.get(&d.consumer_tag)?;
            return Some(Route {
                qos: sub.qos,
                retain_as_published: false,
                ids: Vec::new(),
            });
        }
        let own = d.msg.publisher.as_deref() == Some(&*self.client_id);
        let mut route: Option<Route> = None;
        for s in self.subs.iter().filter(|s| s.filter.matches(&out.topic)) {
            if own && s.no_local {
                continue;
            }
            let r = route.get_or_insert(Route {
                qos: QoS::AtMostOnce,
                retain_as_published: false,
                ids: Vec::new(),
            });
            r.qos = r.qos.max(s.qos);
            r.retain_as_published |= s.retain_as_published;
            r.ids.extend(s.id);
        }
        route
    }

    /// A delivery from one of our queues.
    pub(crate) async fn deliver(&mut self, d: Delivery) {
        if d.owner != self.owner {
            return;
        }
        let Some(out) = from_message(&d.msg) else {
            // Expired, or a routing key no MQTT topic can carry.
            settle(self.owner, &d.queue, d.seq, Settle::Drop).await;
            return;
        };
        let Some(route) = self.route_for(&d, &out) else {
            // No subscription wants it any more (unsubscribed, `$` topic under a wildcard).
            let how = if d.consumer_tag.as_str() == SESSION_TAG {
                Settle::Drop
            } else {
                Settle::Requeue
            };
            settle(self.owner, &d.queue, d.seq, how).await;
            return;
        };
        let qos = out.qos.min(route.qos);
        let retain = self.version == ProtocolVersion::V5 && route.retain_as_published && out.retain;
        let mut properties = out.properties;
        properties.subscription_identifiers = route.ids;
        if !self.publish_out(
            &d.msg,
            out.topic,
            qos,
            retain,
            d.redelivered,
            properties,
            Some((d.queue.clone(), d.seq)),
        ) {
            settle(self.owner, &d.queue, d.seq, Settle::Drop).await;
        }
    }

    /// Encodes one PUBLISH; false if it could not be sent (too large, no packet id).
    #[allow(clippy::too_many_arguments)]
    fn publish_out(
        &mut self,
        msg: &Message,
        topic: protocol_mqtt::TopicName,
        qos: QoS,
        retain: bool,
        redelivered: bool,
        mut properties: PublishProperties,
        source: Option<(QueueHandle, u64)>,
    ) -> bool {
        if self.version == ProtocolVersion::V311 {
            properties = PublishProperties::default();
        }
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            match self.ids.allocate() {
                Some(id) => Some(id),
                None => {
                    tracing::warn!(client_id = %self.client_id, "no free packet identifier");
                    return false;
                }
            }
        };
        // Topic aliases towards the client: the first PUBLISH of a topic names it and sets an
        // alias, later ones send only the alias. New aliases stop when the client's maximum is
        // reached (the full topic is sent then).
        let mut topic = topic;
        let mut new_alias = None;
        if self.alias_max_out > 0 {
            match self.aliases_out.get(topic.as_str()) {
                Some(&alias) => {
                    properties.topic_alias = std::num::NonZeroU16::new(alias);
                    topic = protocol_mqtt::TopicName::empty();
                }
                None => {
                    let next = u16::try_from(self.aliases_out.len() + 1).unwrap_or(u16::MAX);
                    if next <= self.alias_max_out {
                        properties.topic_alias = std::num::NonZeroU16::new(next);
                        new_alias = Some((topic.as_str().to_string(), next));
                    }
                }
            }
        }
        let packet = Packet::Publish(Publish {
            dup: redelivered && qos != QoS::AtMostOnce,
            qos,
            retain,
            topic,
            packet_id,
            properties,
            payload: msg.body.clone(),
        });
        let too_large = packet
            .encoded_len(self.version)
            .map_or(true, |len| len > self.client_max_packet);
        if too_large {
            tracing::info!(client_id = %self.client_id, "message larger than the client's maximum packet size; dropped");
            if let Some(id) = packet_id {
                self.ids.release(id);
            }
            return false;
        }
        self.send(&packet);
        if let Some((name, alias)) = new_alias {
            self.aliases_out.insert(name, alias);
        }
        match packet_id {
            Some(id) => {
                self.outbound.insert(
                    id,
                    Outbound {
                        source,
                        released: false,
                    },
                );
            }
            None => {
                if let Some(source) = source {
                    self.auto_settle.push(source);
                }
            }
        }
        true
    }

    /// Retained messages for a new subscription.
    pub(crate) fn send_retained(
        &mut self,
        filter: &TopicFilter,
        max_qos: QoS,
        id: Option<NonZeroU32>,
    ) {
        let found = self.shared.retained.matching(&self.vhost, |topic| {
            protocol_mqtt::TopicName::new(topic).is_ok_and(|t| filter.matches(&t))
        });
        for (_, msg) in found {
            let Some(out) = from_message(&msg) else {
                continue;
            };
            let mut properties = out.properties;
            properties.subscription_identifiers = id.into_iter().collect();
            let qos = out.qos.min(max_qos);
            self.publish_out(&msg, out.topic, qos, true, false, properties, None);
        }
    }

    pub(crate) async fn on_puback(&mut self, id: PacketId) {
        if let Some(o) = self.outbound.remove(&id) {
            self.ids.release(id);
            if let Some((queue, seq)) = o.source {
                settle(self.owner, &queue, seq, Settle::Ack).await;
            }
        }
    }

    pub(crate) async fn on_pubrec(&mut self, id: PacketId, reason: ReasonCode) {
        let Some(o) = self.outbound.get_mut(&id) else {
            if self.version == ProtocolVersion::V5 {
                let mut rel = PubRel::new(id);
                rel.reason = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
                self.send(&Packet::PubRel(rel));
            }
            return;
        };
        // The client owns the message now: the queue can let go of it.
        let source = o.source.take();
        let failed = reason.is_error();
        if failed {
            self.outbound.remove(&id);
            self.ids.release(id);
        } else {
            o.released = true;
            self.send(&Packet::PubRel(PubRel::new(id)));
        }
        if let Some((queue, seq)) = source {
            settle(self.owner, &queue, seq, Settle::Ack).await;
        }
    }

    pub(crate) fn on_pubcomp(&mut self, id: PacketId) {
        if self.outbound.remove(&id).is_some() {
            self.ids.release(id);
        }
    }
}
