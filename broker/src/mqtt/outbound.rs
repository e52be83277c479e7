//! Messages to the client: deliveries from the session and shared-subscription queues and
//! retained messages at subscribe time, with per-subscription QoS, subscription identifiers,
//! no-local, retain-as-published, DUP on redelivery, and the client's Maximum Packet Size;
//! then the client's PUBACK / PUBREC / PUBCOMP.

use std::collections::HashMap;
use std::num::NonZeroU32;

use protocol_mqtt::{
    Packet, PacketId, ProtocolVersion, PubRel, Publish, PublishProperties, QoS, ReasonCode,
    TopicFilter, TopicName,
};

use super::connection::{MqttConn, Outbound, SESSION_TAG};
use super::convert::{Deliverable, Outgoing, from_message};
use super::subscriptions::Route;
use crate::core::queue::{QueueCmd, QueueHandle, Settle};
use crate::core::{ChannelKey, Delivery};
use crate::model::message::{Message, MessageRef};

/// A retained message for a new subscription, sent when the client's receive window has
/// room: by topic, so that what goes is the topic's retained message then (a newer one, or
/// none if it was cleared), not a copy kept alive meanwhile.
#[derive(Debug)]
pub(crate) struct HeldRetained {
    topic: TopicName,
    /// The subscription's maximum QoS.
    max_qos: QoS,
    id: Option<NonZeroU32>,
}

/// Retained messages a connection holds for its receive window at most; past it, those of a
/// new subscription are not sent (and logged). Each SUBSCRIBE replaces what an earlier one
/// held for the same topics, so only a client that subscribes to that many distinct retained
/// topics while acknowledging nothing gets here. Mosquitto's `max_queued_messages` is 1,000.
const MAX_HELD_RETAINED: usize = 65_536;

/// What became of a PUBLISH we tried to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// Encoded for the next write.
    Yes,
    /// Larger than the client's Maximum Packet Size: it can never take it.
    TooLarge,
    /// Every packet identifier is in use: it can take it once one is free.
    NoPacketId,
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

/// Tells the queue of a delivery we will not send (a direct queue keeps nothing).
async fn let_go(owner: ChannelKey, d: &Delivery, how: Settle) {
    if !d.queue.is_direct() {
        settle(owner, &d.queue, d.seq, how).await;
    }
}

impl MqttConn {
    /// Which subscriptions take a message, or None if none does.
    fn route_for(&mut self, d: &Delivery, out: &Outgoing) -> Option<Route> {
        if d.consumer_tag.as_str() != SESSION_TAG {
            let sub = self.shared_subs.get(&d.consumer_tag)?;
            return Some(Route {
                qos: sub.qos,
                retain_as_published: false,
                ids: Vec::new(),
            });
        }
        let own = d.msg.publisher.as_deref() == Some(&*self.client_id);
        self.subs.route(&out.topic, own)
    }

    /// A delivery from one of our queues.
    pub(crate) async fn deliver(&mut self, d: Delivery) {
        self.deliver_one(d, false).await;
    }

    /// Delivers `d`, or holds it back when it is a direct QoS 1/2 delivery and the client's
    /// receive window is full (`from_held`: it was held, and a unit of the window is taken
    /// for it already). A gauged delivery leaves the memory count once not held.
    async fn deliver_one(&mut self, d: Delivery, from_held: bool) {
        let (gauged, body) = (d.gauged, d.msg.body.len());
        match (self.try_deliver(d, from_held).await, self.direct.as_mut()) {
            // Back where it was: the window or the identifiers are full.
            (Some(held), Some(direct)) if from_held => direct.held.push_front(Box::new(held)),
            (Some(held), Some(direct)) => {
                direct.held.push_back(Box::new(held));
                self.credit.reserve(true);
            }
            (_, _) if gauged => self.shared.core.memory.sub(body),
            (_, _) => {}
        }
    }

    async fn try_deliver(&mut self, d: Delivery, from_held: bool) -> Option<Delivery> {
        let direct = d.queue.is_direct();
        // A unit of the receive window taken for this delivery, given back unless used.
        let mut credit = from_held;
        let give_back = |conn: &Self, taken: bool| {
            if taken {
                conn.credit.give_back();
            }
        };
        if d.owner != self.owner {
            give_back(self, credit);
            return None;
        }
        let Some(out) = from_message(&d.msg) else {
            // Expired, or a routing key no MQTT topic can carry.
            give_back(self, credit);
            let_go(self.owner, &d, Settle::Drop).await;
            return None;
        };
        let Some(route) = self.route_for(&d, out.form) else {
            // No subscription wants it any more (unsubscribed, `$` topic under a wildcard).
            give_back(self, credit);
            let how = if d.consumer_tag.as_str() == SESSION_TAG {
                Settle::Drop
            } else {
                Settle::Requeue
            };
            let_go(self.owner, &d, how).await;
            return None;
        };
        let qos = out.form.qos.min(route.qos);
        if direct && qos != QoS::AtMostOnce && !credit {
            // What a queue task does for its consumers: wait for the client's window.
            if self.holds_deliveries() || !self.credit.try_take() {
                return Some(d);
            }
            credit = true;
        } else if qos == QoS::AtMostOnce {
            give_back(self, credit);
            credit = false;
        }
        let v5 = self.version == ProtocolVersion::V5;
        if qos == QoS::AtMostOnce
            && !v5
            && let Some(packet) = super::convert::qos0_v311(&d.msg, out.form)
            && packet.len() <= self.client_max_packet
        {
            // The same bytes for every 3.1.1 subscriber at QoS 0: encoded once per message.
            self.out.extend_from_slice(packet);
            if !direct {
                self.auto_settle.push((d.queue.clone(), d.seq));
            }
            return None;
        }
        let retain = v5 && route.retain_as_published && out.form.retain;
        let mut properties = self.properties_for(&out);
        properties.subscription_identifiers = route.ids;
        // A direct QoS 0 delivery has nothing to settle; a direct QoS 1/2 one gives its unit
        // of the window back when acknowledged.
        let source = (!direct || credit).then(|| (d.queue.clone(), d.seq));
        let sent = self.publish_out(
            &d.msg,
            out.form.topic.clone(),
            qos,
            retain,
            d.redelivered,
            properties,
            source,
            direct && credit,
        );
        match sent {
            Sent::Yes => None,
            Sent::TooLarge => {
                give_back(self, credit);
                let_go(self.owner, &d, Settle::Drop).await;
                None
            }
            // Every identifier is in flight (the window may be larger than the identifiers
            // left): the message waits for one, it is not lost.
            Sent::NoPacketId => {
                give_back(self, credit);
                if direct {
                    Some(d)
                } else {
                    let_go(self.owner, &d, Settle::Requeue).await;
                    None
                }
            }
        }
    }

    /// Held retained messages, then held direct deliveries, as far as the client's receive
    /// window has room now.
    pub(crate) async fn pump_held(&mut self) {
        while self.may_pump() && self.credit.try_take_reserved() {
            if let Some(r) = self.retained_held.as_mut().and_then(|h| h.pop_front()) {
                if let Some(r) = self.retained_out(r, None, true) {
                    // Every packet identifier is in use: it waits for one.
                    if let Some(held) = self.retained_held.as_mut() {
                        held.push_front(r);
                    }
                    return;
                }
                continue;
            }
            let Some(d) = self.direct.as_mut().and_then(|s| s.held.pop_front()) else {
                self.credit.give_back();
                return;
            };
            self.deliver_one(*d, true).await;
        }
        if self.retained_held.as_ref().is_some_and(|h| h.is_empty()) {
            self.retained_held = None;
        }
        self.claim_window().await;
    }

    /// Tells the queue tasks sharing the receive window whether this connection holds
    /// deliveries (they take no unit while it does), and wakes them when it stops.
    pub(crate) async fn claim_window(&mut self) {
        let holds = self.holds_deliveries();
        if self.credit.reserve(holds) && !holds {
            self.wake_queues().await;
        }
    }

    /// The client acknowledged (or refused) a delivery: settles it with its queue, and gives
    /// back the unit of the receive window it held here.
    async fn acknowledged(&mut self, source: Option<(QueueHandle, u64)>, window: bool) {
        let was_full = !self.credit.available();
        if let Some((queue, seq)) = source.filter(|(queue, _)| !queue.is_direct()) {
            settle(self.owner, &queue, seq, Settle::Ack).await;
            // The queue gives the unit back when it handles the settle: the others of this
            // client are woken once it has (see `wake_queues`).
            if was_full && !self.shared_subs.is_empty() {
                self.queues_wait_for_window = true;
            }
        }
        if window {
            self.credit.give_back();
            if was_full {
                self.wake_queues().await;
            }
        }
    }

    /// Wakes this client's queue tasks: one may have found the window full, and a queue only
    /// looks again when something comes to its mailbox.
    pub(crate) async fn wake_queues(&mut self) {
        self.queues_wait_for_window = false;
        let mut queues: Vec<QueueHandle> =
            self.shared_subs.values().map(|s| s.queue.clone()).collect();
        queues.extend(self.session_handle.clone().filter(|q| !q.is_direct()));
        for queue in queues {
            let _ = queue.send(QueueCmd::Wake).await;
        }
    }

    /// The 5.0 properties of a delivery (3.1.1 has none: nothing to copy).
    fn properties_for(&self, out: &Deliverable) -> PublishProperties {
        if self.version == ProtocolVersion::V5 {
            out.properties()
        } else {
            PublishProperties::default()
        }
    }

    /// Encodes one PUBLISH, if it can be sent.
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
        window: bool,
    ) -> Sent {
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            match self.ids.allocate() {
                Some(id) => Some(id),
                None => {
                    tracing::debug!(client_id = %self.client_id, "no free packet identifier");
                    return Sent::NoPacketId;
                }
            }
        };
        // Topic aliases towards the client: the first PUBLISH of a topic names it and sets an
        // alias, later ones send only the alias. New aliases stop when the client's maximum is
        // reached (the full topic is sent then).
        let mut topic = topic;
        let mut new_alias = None;
        if self.alias_max_out > 0 {
            let known = self.aliases.as_ref().map(|a| &a.outbound);
            match known.and_then(|out| out.get(topic.as_str())) {
                Some(&alias) => {
                    properties.topic_alias = std::num::NonZeroU16::new(alias);
                    topic = protocol_mqtt::TopicName::empty();
                }
                None => {
                    let given = known.map_or(0, HashMap::len);
                    let next = u16::try_from(given + 1).unwrap_or(u16::MAX);
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
            return Sent::TooLarge;
        }
        self.send(&packet);
        if let Some((name, alias)) = new_alias {
            self.aliases
                .get_or_insert_with(Default::default)
                .outbound
                .insert(name, alias);
        }
        match packet_id {
            Some(id) => {
                self.outbound.insert(
                    id,
                    Outbound {
                        source,
                        window,
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
        Sent::Yes
    }

    /// Retained messages for a new subscription. QoS 1/2 ones take a unit of the client's
    /// receive window like any delivery [MQTT-3.3.4-9]: those it has no room for wait for it
    /// (in topic order, ahead of anything newer: the caller then calls `claim_window`).
    pub(crate) fn send_retained(
        &mut self,
        filter: &TopicFilter,
        max_qos: QoS,
        id: Option<NonZeroU32>,
    ) {
        // What an earlier SUBSCRIBE left waiting for these topics goes with this one's options.
        if let Some(held) = self.retained_held.as_mut() {
            held.retain(|r| !filter.matches(&r.topic));
        }
        let found = self.shared.retained.matching(&self.vhost, |topic| {
            TopicName::new(topic).is_ok_and(|t| filter.matches(&t))
        });
        let mut dropped = 0usize;
        for (topic, msg) in found {
            let Ok(topic) = TopicName::new(topic) else {
                continue;
            };
            let r = HeldRetained { topic, max_qos, id };
            let at_most_once =
                from_message(&msg).is_none_or(|out| out.form.qos.min(max_qos) == QoS::AtMostOnce);
            let back = if at_most_once {
                self.retained_out(r, Some(msg), false)
            } else if !self.holds_deliveries() && self.credit.try_take() {
                self.retained_out(r, Some(msg), true)
            } else {
                Some(r)
            };
            let Some(r) = back else {
                continue;
            };
            let held = self.retained_held.get_or_insert_with(Default::default);
            if held.len() < MAX_HELD_RETAINED {
                held.push_back(r);
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            tracing::warn!(client_id = %self.client_id, filter = filter.as_str(), dropped, "too many retained messages waiting for the client's receive window; these are not sent");
        }
    }

    /// Sends the retained message of `r.topic` (`msg`, or the topic's current one); `window`:
    /// a unit of the receive window was taken for it, given back here unless a QoS 1/2
    /// PUBLISH went. Returns it if every packet identifier is in use (it can go once one is
    /// free).
    fn retained_out(
        &mut self,
        r: HeldRetained,
        msg: Option<MessageRef>,
        window: bool,
    ) -> Option<HeldRetained> {
        let msg = msg.or_else(|| self.shared.retained.get(&self.vhost, r.topic.as_str()));
        let mut sent = Sent::TooLarge;
        let mut qos = QoS::AtMostOnce;
        // None: cleared, or expired, while it waited.
        if let Some(msg) = msg.as_ref()
            && let Some(out) = from_message(msg)
        {
            qos = out.form.qos.min(r.max_qos);
            let mut properties = self.properties_for(&out);
            properties.subscription_identifiers = r.id.into_iter().collect();
            let topic = out.form.topic.clone();
            let window = window && qos != QoS::AtMostOnce;
            sent = self.publish_out(msg, topic, qos, true, false, properties, None, window);
        }
        if window && (sent != Sent::Yes || qos == QoS::AtMostOnce) {
            self.credit.give_back();
        }
        (sent == Sent::NoPacketId).then_some(r)
    }

    pub(crate) async fn on_puback(&mut self, id: PacketId) {
        if let Some(o) = self.outbound.remove(&id) {
            self.ids.release(id);
            self.acknowledged(o.source, o.window).await;
            self.pump_held().await;
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
        if reason.is_error() {
            // Refused: done with, and its unit of the receive window comes back now.
            if let Some(o) = self.outbound.remove(&id) {
                self.ids.release(id);
                self.acknowledged(o.source, o.window).await;
            }
            self.pump_held().await;
            return;
        }
        // The client owns the message now: its queue can let go of it. Its unit of the
        // receive window stays taken until the PUBCOMP [MQTT-4.9.0-2], and comes back here
        // then, also when a queue task took it (it keeps it: `Settle::Received`).
        o.released = true;
        let source = if o.window { None } else { o.source.take() };
        let queued = source.filter(|(queue, _)| !queue.is_direct());
        if queued.is_some() {
            o.window = true;
        }
        self.send(&Packet::PubRel(PubRel::new(id)));
        if let Some((queue, seq)) = queued {
            settle(self.owner, &queue, seq, Settle::Received).await;
        }
    }

    pub(crate) async fn on_pubcomp(&mut self, id: PacketId) {
        if let Some(o) = self.outbound.remove(&id) {
            self.ids.release(id);
            self.acknowledged(o.source, o.window).await;
            self.pump_held().await;
        }
    }
}
