//! PUBLISH from the client: topic aliases, QoS 2 duplicate detection, retained messages,
//! routing through `amq.topic`, and PUBACK/PUBREC once every queue has the message (after
//! fsync for durable ones).

use std::sync::Arc;

use protocol_mqtt::{
    AckProperties, Packet, PacketId, ProtocolVersion, PubAck, PubComp, PubRec, Publish, QoS,
    Qos2Publish, ReasonCode,
};

use super::connection::{End, MqttConn, RECEIVE_MAXIMUM, TOPIC_ALIAS_MAXIMUM};
use super::convert::{MqttMeta, to_message};
use crate::amqp::confirms::ConfirmOut;
use crate::core::ConfirmTarget;
use crate::core::direct::DirectLoad;
use crate::core::queue::{QueueCmd, QueueHandle};
use crate::core::routes::RouteCache;
use crate::model::message::Message;

/// Direct queues a publisher's batch keeps room for between reads; a burst to more frees it.
const DIRECT_OUT_KEPT: usize = 64;

impl MqttConn {
    /// The queues a message published on `amq.topic` reaches: the last publish's when its
    /// topic and the topology are the same (see [`RouteCache`]).
    fn route(&mut self, msg: &Message) -> Arc<[QueueHandle]> {
        let routed = RouteCache::route(
            &mut self.routes,
            self.vhost_ref.as_deref(),
            &msg.exchange,
            &msg.routing_key,
            msg.properties.headers.as_ref(),
            |_| Ok::<(), std::convert::Infallible>(()),
        );
        match routed {
            Ok(targets) => targets,
            Err(never) => match never {},
        }
    }

    pub(crate) async fn handle_publish(&mut self, p: Publish) -> Option<End> {
        let v5 = self.version == ProtocolVersion::V5;
        if p.qos != QoS::AtMostOnce {
            let in_flight = self.pending_pub.len() + self.inbound_qos2.pending();
            if in_flight >= usize::from(RECEIVE_MAXIMUM) {
                tracing::info!(client_id = %self.client_id, "receive maximum exceeded");
                self.disconnect(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
                return Some(End::Abnormal);
            }
        }
        let topic = match p.properties.topic_alias {
            Some(alias) => {
                let alias = alias.get();
                if !v5 || alias > TOPIC_ALIAS_MAXIMUM {
                    self.disconnect(ReasonCode::TOPIC_ALIAS_INVALID);
                    return Some(End::Abnormal);
                }
                if p.topic.is_empty() {
                    match self.aliases.as_ref().and_then(|a| a.inbound.get(&alias)) {
                        Some(t) => t.clone(),
                        None => {
                            self.disconnect(ReasonCode::PROTOCOL_ERROR);
                            return Some(End::Abnormal);
                        }
                    }
                } else {
                    self.aliases
                        .get_or_insert_with(Default::default)
                        .inbound
                        .insert(alias, p.topic.clone());
                    p.topic.clone()
                }
            }
            None => p.topic.clone(),
        };
        let packet_id = p.packet_id;
        if !self.topic_access(crate::core::access::Access::Write) {
            tracing::warn!(client_id = %self.client_id, user = %self.user, "publish refused: no write permission on amq.topic");
            match packet_id {
                Some(id) if v5 => {
                    self.send_ack(id, p.qos, ReasonCode::NOT_AUTHORIZED);
                    return None;
                }
                _ => {
                    // Not the CONNACK text about logins: say what was refused.
                    if v5 {
                        let reason_string = format!(
                            "not authorized to publish to '{}': user '{}' has no write permission on amq.topic in vhost '{}'",
                            topic.as_str(),
                            self.user,
                            self.vhost
                        );
                        self.send(&Packet::Disconnect(protocol_mqtt::Disconnect {
                            reason: ReasonCode::NOT_AUTHORIZED,
                            properties: protocol_mqtt::DisconnectProperties {
                                reason_string: Some(reason_string),
                                ..Default::default()
                            },
                        }));
                    }
                    return Some(End::Abnormal);
                }
            }
        }
        if p.qos == QoS::ExactlyOnce {
            let id = packet_id?;
            if self.inbound_qos2.on_publish(id) == Qos2Publish::Duplicate {
                // Already routed (Method B): answer again unless the first answer is pending.
                if !self.pending_pub.values().any(|(pid, _, _)| *pid == id) {
                    self.send(&Packet::PubRec(PubRec::new(id)));
                }
                return None;
            }
        }
        let mut properties = p.properties;
        properties.topic_alias = None;
        let meta = MqttMeta {
            qos: p.qos.as_u8(),
            retain: p.retain,
            properties,
        };
        let Some(msg) = to_message(&topic, p.payload, meta, &self.client_id) else {
            tracing::info!(client_id = %self.client_id, "topic too long to route");
            self.disconnect(ReasonCode::TOPIC_NAME_INVALID);
            return Some(End::Abnormal);
        };
        let msg = Arc::new(msg);
        let mut barrier = false;
        if p.retain {
            let stored = if msg.body.is_empty() {
                None
            } else {
                Some(msg.clone())
            };
            if let Err(e) = self
                .shared
                .retained
                .set(&self.vhost, topic.as_str(), stored)
            {
                tracing::error!(client_id = %self.client_id, error = %e, "cannot store retained message");
            }
            barrier = p.qos != QoS::AtMostOnce;
        }
        if self.shared.core.memory.is_blocked() {
            // Stop reading this client until consumers catch up (MQTT has no "blocked" packet).
            self.publish_blocked = true;
        }
        let targets = self.route(&msg);
        let Some(packet_id) = packet_id.filter(|_| p.qos != QoS::AtMostOnce) else {
            for queue in targets.iter() {
                if queue.is_direct() {
                    // Sent at the end of the read (`send_direct_out`), with the others.
                    self.direct_out
                        .get_or_insert_with(Default::default)
                        .push(queue, &msg);
                    continue;
                }
                let _ = queue
                    .send(QueueCmd::Publish {
                        msg: msg.clone(),
                        confirm: None,
                    })
                    .await;
            }
            return None;
        };
        let routed = !targets.is_empty();
        // Direct queues take the message with the others of this read (in order with them)
        // and have nothing to store: they need no answer. The rest answer when they have it.
        let mut queued = Vec::with_capacity(targets.len());
        for queue in targets.iter() {
            if queue.is_direct() {
                self.direct_out
                    .get_or_insert_with(Default::default)
                    .push(queue, &msg);
            } else {
                queued.push(queue);
            }
        }
        let answers = u32::try_from(queued.len()).unwrap_or(u32::MAX) + u32::from(barrier);
        let seq = self.confirms.publish(answers);
        self.pending_pub.insert(seq, (packet_id, p.qos, routed));
        let mailbox = self.mailbox();
        let target = |seq| ConfirmTarget {
            conn: mailbox.clone(),
            channel: 0,
            seq,
        };
        for queue in queued {
            if let Err(QueueCmd::Publish {
                confirm: Some(c), ..
            }) = queue
                .send(QueueCmd::Publish {
                    msg: msg.clone(),
                    confirm: Some(target(seq)),
                })
                .await
            {
                c.send(true);
            }
        }
        if barrier {
            // The retained copy must be on disk before the client hears it is safe.
            self.shared
                .core
                .flusher()
                .confirm_after_sync(vec![target(seq)]);
        }
        if answers == 0 {
            let mut out = Vec::new();
            self.confirms.flush(&mut out);
            return self.emit_confirms(out);
        }
        None
    }

    /// Sends the QoS 0 messages gathered for direct queues; the load of a subscriber that is
    /// far behind, if one is.
    pub(crate) fn send_direct_out(&mut self) -> Option<Arc<DirectLoad>> {
        let batch = self.direct_out.as_mut()?;
        let behind = batch.send();
        if batch.capacity() > DIRECT_OUT_KEPT {
            // A burst to many sessions: the next read starts small again.
            self.direct_out = None;
        }
        behind
    }

    /// Sends PUBACK/PUBREC for confirmed publishes, in the order they arrived.
    pub(crate) fn emit_confirms(&mut self, out: Vec<ConfirmOut>) -> Option<End> {
        for c in out {
            let done: Vec<(u64, bool)> = match c {
                ConfirmOut::Ack {
                    tag,
                    multiple: true,
                } => self
                    .pending_pub
                    .range(..=tag)
                    .map(|(seq, _)| (*seq, true))
                    .collect(),
                ConfirmOut::Ack {
                    tag,
                    multiple: false,
                } => vec![(tag, true)],
                ConfirmOut::Nack { tag } => vec![(tag, false)],
            };
            for (seq, ok) in done {
                let Some((id, qos, routed)) = self.pending_pub.remove(&seq) else {
                    continue;
                };
                if !ok && self.version == ProtocolVersion::V311 {
                    // 3.1.1 cannot refuse a publish: drop the connection so the client resends.
                    tracing::error!(client_id = %self.client_id, "a publish could not be stored; disconnecting");
                    return Some(End::Abnormal);
                }
                let reason = if !ok {
                    ReasonCode::UNSPECIFIED_ERROR
                } else if !routed && self.version == ProtocolVersion::V5 {
                    ReasonCode::NO_MATCHING_SUBSCRIBERS
                } else {
                    ReasonCode::SUCCESS
                };
                self.send_ack(id, qos, reason);
            }
        }
        None
    }

    fn send_ack(&mut self, id: PacketId, qos: QoS, reason: ReasonCode) {
        let properties = AckProperties::default();
        let packet = if qos == QoS::ExactlyOnce {
            if reason.is_error() {
                // A failed QoS 2 flow ends here; the id is free again.
                self.inbound_qos2.on_pubrel(id);
            }
            Packet::PubRec(PubRec {
                packet_id: id,
                reason,
                properties,
            })
        } else {
            Packet::PubAck(PubAck {
                packet_id: id,
                reason,
                properties,
            })
        };
        self.send(&packet);
    }

    /// PUBREL for an inbound QoS 2 message: the flow is complete.
    pub(crate) fn on_pubrel(&mut self, id: PacketId) {
        let known = self.inbound_qos2.on_pubrel(id);
        let mut comp = PubComp::new(id);
        if !known && self.version == ProtocolVersion::V5 {
            comp.reason = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
        }
        self.send(&Packet::PubComp(comp));
    }
}
