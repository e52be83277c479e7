//! SUBSCRIBE and UNSUBSCRIBE. An ordinary subscription is a binding from `amq.topic` to the
//! session queue whose arguments carry the MQTT options (so persistent sessions get them back
//! after a restart); a shared subscription `$share/group/filter` is a queue of that name,
//! bound to `amq.topic`, whose consumers are the group's members (and any AMQP consumer).
//! A persistent session also records its membership (see `shared_groups`), so it re-joins
//! the group when it resumes.

use std::num::NonZeroU32;

use bytes::Bytes;
use protocol_amqp::{FieldTable, FieldValue, ShortStr};
use protocol_mqtt::{
    AckProperties, Packet, ProtocolVersion, QoS, ReasonCode, RetainHandling, SharedSubscription,
    SubAck, Subscribe, Subscription, TopicFilter, TopicName, UnsubAck, Unsubscribe,
};

use super::SharedSub;
use super::connection::{End, MqttConn};
use super::shared_groups;
use super::topic_map::filter_to_binding_key;
use crate::core::queue::QueueCmd;
use crate::core::topology::Topology;
use crate::model::exchange::{Binding, Destination};

const FILTER_ARG: &str = "x-mqtt-filter";
const QOS_ARG: &str = "x-mqtt-qos";
const SUB_ID_ARG: &str = "x-mqtt-subscription-id";
const NO_LOCAL_ARG: &str = "x-mqtt-no-local";
const RAP_ARG: &str = "x-mqtt-retain-as-published";

/// One ordinary (non-shared) subscription of a session.
#[derive(Debug, Clone)]
pub struct Sub {
    /// The MQTT filter.
    pub filter: TopicFilter,
    /// Maximum QoS granted.
    pub qos: QoS,
    /// Do not deliver the session's own publishes.
    pub no_local: bool,
    /// Keep the RETAIN flag when forwarding.
    pub retain_as_published: bool,
    /// 5.0 subscription identifier.
    pub id: Option<NonZeroU32>,
    /// The binding that implements it.
    pub binding: Binding,
}

/// How a message goes out to a session, from the subscriptions it matches.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// The highest QoS granted among them.
    pub qos: QoS,
    /// One of them keeps the RETAIN flag.
    pub retain_as_published: bool,
    /// Their 5.0 subscription identifiers.
    pub ids: Vec<NonZeroU32>,
}

/// The ordinary subscriptions of a session, and how the last topic delivered matched them:
/// a subscriber mostly gets one topic after another, and matching each delivery against
/// every filter took a sixth of a 1→50 fan-out's time.
#[derive(Debug, Default)]
pub struct Subs {
    list: Vec<Sub>,
    /// Boxed: made by the first delivery, dropped with every change of `list`.
    last: Option<Box<LastMatch>>,
}

#[derive(Debug)]
struct LastMatch {
    topic: TopicName,
    own: bool,
    route: Option<Route>,
}

impl Subs {
    /// The subscriptions.
    pub fn iter(&self) -> std::slice::Iter<'_, Sub> {
        self.list.iter()
    }

    /// Where the subscription with this filter is.
    pub fn position(&self, filter: &TopicFilter) -> Option<usize> {
        self.list.iter().position(|s| &s.filter == filter)
    }

    /// Adds a subscription.
    pub fn push(&mut self, sub: Sub) {
        self.last = None;
        self.list.push(sub);
    }

    /// Takes out the subscription at `i`.
    pub fn remove(&mut self, i: usize) -> Sub {
        self.last = None;
        self.list.remove(i)
    }

    /// Replaces them all (a resumed session's, read back from its bindings).
    pub fn set(&mut self, list: Vec<Sub>) {
        self.last = None;
        self.list = list;
    }

    /// How a message on `topic` goes out, or None if no subscription takes it; `own`: the
    /// session published it (no-local subscriptions skip it).
    pub(crate) fn route(&mut self, topic: &TopicName, own: bool) -> Option<Route> {
        if let Some(last) = self.last.as_deref()
            && last.own == own
            && last.topic == *topic
        {
            return last.route.clone();
        }
        let mut route: Option<Route> = None;
        for s in self.list.iter().filter(|s| s.filter.matches(topic)) {
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
        let last = LastMatch {
            topic: topic.clone(),
            own,
            route: route.clone(),
        };
        match self.last.as_deref_mut() {
            Some(slot) => *slot = last,
            None => self.last = Some(Box::new(last)),
        }
        route
    }
}

fn sub_binding(queue: &str, s: &Subscription, id: Option<NonZeroU32>) -> Binding {
    let mut args = FieldTable::new();
    args.insert(
        ShortStr::from_static(FILTER_ARG),
        FieldValue::LongStr(Bytes::from(s.filter.as_str().to_string().into_bytes())),
    );
    args.insert(
        ShortStr::from_static(QOS_ARG),
        FieldValue::U8(s.options.qos.as_u8()),
    );
    if let Some(id) = id {
        args.insert(ShortStr::from_static(SUB_ID_ARG), FieldValue::U32(id.get()));
    }
    args.insert(
        ShortStr::from_static(NO_LOCAL_ARG),
        FieldValue::Bool(s.options.no_local),
    );
    args.insert(
        ShortStr::from_static(RAP_ARG),
        FieldValue::Bool(s.options.retain_as_published),
    );
    Binding {
        destination: Destination::Queue(queue.to_string()),
        routing_key: filter_to_binding_key(s.filter.as_str()),
        arguments: args,
    }
}

/// The subscriptions of a resumed session, read back from its bindings.
pub fn restore(topology: &Topology, queue: &str) -> Vec<Sub> {
    let Some(x) = topology.exchanges.get(super::TOPIC_EXCHANGE) else {
        return Vec::new();
    };
    let dest = Destination::Queue(queue.to_string());
    x.bindings_to(&dest)
        .iter()
        .filter_map(|b| {
            let args = &b.arguments;
            let filter = match args.get(FILTER_ARG) {
                Some(FieldValue::LongStr(f)) => {
                    TopicFilter::new(String::from_utf8(f.to_vec()).ok()?).ok()?
                }
                _ => return None,
            };
            let qos = match args.get(QOS_ARG) {
                Some(FieldValue::U8(q)) => QoS::from_u8(*q)?,
                _ => QoS::AtMostOnce,
            };
            let flag = |name| matches!(args.get(name), Some(FieldValue::Bool(true)));
            let id = match args.get(SUB_ID_ARG) {
                Some(FieldValue::U32(id)) => NonZeroU32::new(*id),
                _ => None,
            };
            Some(Sub {
                filter,
                qos,
                no_local: flag(NO_LOCAL_ARG),
                retain_as_published: flag(RAP_ARG),
                id,
                binding: b.clone(),
            })
        })
        .collect()
}

impl MqttConn {
    /// Tells a direct session queue whether every message it carries may be dropped under
    /// overload: so when every subscription is QoS 0 (the client takes nothing at least once).
    pub(crate) fn update_direct_qos(&self) {
        if let Some(direct) = &self.direct {
            direct
                .load
                .set_at_most_once(self.subs.iter().all(|s| s.qos == QoS::AtMostOnce));
        }
    }

    fn failure(&self, v5_code: ReasonCode) -> ReasonCode {
        if self.version == ProtocolVersion::V5 {
            v5_code
        } else {
            ReasonCode(0x80)
        }
    }

    pub(crate) async fn handle_subscribe(&mut self, s: Subscribe) -> Option<End> {
        let id = s.properties.subscription_identifier;
        let mut codes = Vec::with_capacity(s.filters.len());
        let mut retained_for = Vec::new();
        let may_read = self.topic_access(crate::core::access::Access::Read);
        if let Some(direct) = &self.direct
            && s.filters.iter().any(|f| f.options.qos != QoS::AtMostOnce)
        {
            // Before the bindings: a message they route must not be dropped as at most once.
            direct.load.set_at_most_once(false);
        }
        for sub in &s.filters {
            let code = match sub.filter.shared() {
                _ if !may_read => {
                    tracing::warn!(client_id = %self.client_id, user = %self.user, "subscribe refused: no read permission on amq.topic");
                    self.failure(ReasonCode::NOT_AUTHORIZED)
                }
                Err(_) => self.failure(ReasonCode::TOPIC_FILTER_INVALID),
                Ok(Some(shared)) => {
                    if sub.options.no_local {
                        // [MQTT-3.8.3-4]
                        self.disconnect(ReasonCode::PROTOCOL_ERROR);
                        return Some(End::Abnormal);
                    }
                    self.subscribe_shared(&shared, sub.options.qos).await
                }
                Ok(None) => {
                    let (code, existed) = self.subscribe_one(sub, id).await;
                    let send_retained = match sub.options.retain_handling {
                        RetainHandling::SendAtSubscribe => true,
                        RetainHandling::SendIfNew => !existed,
                        RetainHandling::DoNotSend => false,
                    };
                    if !code.is_error() && send_retained {
                        retained_for.push((sub.filter.clone(), sub.options.qos, id));
                    }
                    code
                }
            };
            codes.push(code);
        }
        self.update_direct_qos();
        self.send(&Packet::SubAck(SubAck {
            packet_id: s.packet_id,
            properties: AckProperties::default(),
            reason_codes: codes,
        }));
        for (filter, qos, id) in retained_for {
            self.send_retained(&filter, qos, id);
        }
        self.claim_window().await;
        None
    }

    /// Binds the session queue; returns the granted code and whether it existed already.
    async fn subscribe_one(
        &mut self,
        sub: &Subscription,
        id: Option<NonZeroU32>,
    ) -> (ReasonCode, bool) {
        if self.session_handle.is_none()
            && !self.keep_session
            && let Err(e) = self.open_direct_queue().await
        {
            tracing::warn!(client_id = %self.client_id, error = %e, "cannot open the session queue");
            let existed = self.subs.position(&sub.filter).is_some();
            return (self.failure(ReasonCode::UNSPECIFIED_ERROR), existed);
        }
        let binding = sub_binding(&self.session_queue, sub, id);
        let core = self.shared.core.clone();
        let existing = self.subs.position(&sub.filter);
        if let Some(i) = existing {
            let old = self.subs.remove(i);
            if old.binding != binding {
                let _ = core
                    .unbind(&self.vhost, self.id, super::TOPIC_EXCHANGE, old.binding)
                    .await;
            }
        }
        if let Err(e) = core
            .bind(&self.vhost, self.id, super::TOPIC_EXCHANGE, binding.clone())
            .await
        {
            tracing::warn!(client_id = %self.client_id, filter = sub.filter.as_str(), error = %e, "subscribe failed");
            return (
                self.failure(ReasonCode::UNSPECIFIED_ERROR),
                existing.is_some(),
            );
        }
        self.subs.push(Sub {
            filter: sub.filter.clone(),
            qos: sub.options.qos,
            no_local: sub.options.no_local,
            retain_as_published: sub.options.retain_as_published,
            id,
            binding,
        });
        (ReasonCode::granted(sub.options.qos), existing.is_some())
    }

    async fn subscribe_shared(&mut self, shared: &SharedSubscription, qos: QoS) -> ReasonCode {
        let name = shared_groups::queue_name(shared);
        let Ok(tag) = ShortStr::new(name.as_str()) else {
            return self.failure(ReasonCode::QUOTA_EXCEEDED);
        };
        let joined_now = match self.shared_subs.get_mut(&tag) {
            Some(existing) => {
                existing.qos = qos;
                false
            }
            None => {
                if let Err(e) = self.join_group(shared, tag, qos).await {
                    tracing::warn!(client_id = %self.client_id, queue = %name, error = %e, "shared subscribe failed");
                    return self.failure(ReasonCode::UNSPECIFIED_ERROR);
                }
                true
            }
        };
        if self.keep_session {
            let core = self.shared.core.clone();
            if let Err(e) =
                shared_groups::record(&core, &self.vhost, self.id, &self.session_queue, &name, qos)
                    .await
            {
                tracing::warn!(client_id = %self.client_id, queue = %name, error = %e, "cannot record the shared membership in the session");
                // A refused subscription must not go on taking the group's messages.
                if joined_now {
                    self.leave_group(&name).await;
                    shared_groups::release(&core, &self.vhost, self.id, &name).await;
                }
                return self.failure(ReasonCode::UNSPECIFIED_ERROR);
            }
        }
        ReasonCode::granted(qos)
    }

    /// Stops consuming the group queue `name` as a member, if this connection is one, and
    /// hands what it had in flight back to the rest of the group. Whether it was a member.
    async fn leave_group(&mut self, name: &str) -> bool {
        let Some(sub) = ShortStr::new(name)
            .ok()
            .and_then(|tag| self.shared_subs.remove(&tag))
        else {
            return false;
        };
        // Requeues what this member had in flight, for the rest of the group.
        let _ = sub
            .queue
            .send(QueueCmd::ChannelClosed { owner: self.owner })
            .await;
        let gone: Vec<_> = self
            .outbound
            .iter()
            .filter(|(_, o)| {
                o.source
                    .as_ref()
                    .is_some_and(|(q, _)| q.id() == sub.queue.id())
            })
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.outbound.remove(&id);
            self.ids.release(id);
        }
        true
    }

    /// Opens the group's queue and consumes it as member `tag`. Tried twice: the last member
    /// leaving may delete the queue between our open and our bind or consume; the second
    /// open declares it anew.
    async fn join_group(
        &mut self,
        shared: &SharedSubscription,
        tag: ShortStr,
        qos: QoS,
    ) -> Result<(), crate::error::AmqpError> {
        let core = self.shared.core.clone();
        for attempt in 0..2 {
            let queue = match shared_groups::open(&core, &self.vhost, self.id, shared).await {
                Ok(queue) => queue,
                Err(_) if attempt == 0 => continue,
                Err(e) => return Err(e),
            };
            self.shared_subs.insert(
                tag.clone(),
                SharedSub {
                    queue: queue.clone(),
                    qos,
                },
            );
            if self.consume(&queue, tag.clone()).await {
                return Ok(());
            }
            self.shared_subs.remove(&tag);
        }
        Err(crate::error::AmqpError::internal(
            "the group queue refused the consumer",
        ))
    }

    /// Re-joins the groups a resumed session is a member of (after the session queue's
    /// consumer is set up). A group whose queue an operator deleted is declared again: the
    /// membership is part of the session until the client unsubscribes.
    pub(crate) async fn rejoin_groups(&mut self, memberships: Vec<(String, QoS)>) {
        for (group, qos) in memberships {
            let (Some(shared), Ok(tag)) = (shared_groups::parse(&group), ShortStr::new(&group))
            else {
                tracing::warn!(client_id = %self.client_id, %group, "ignoring an unreadable shared membership");
                continue;
            };
            if let Err(e) = self.join_group(&shared, tag, qos).await {
                tracing::warn!(client_id = %self.client_id, %group, error = %e, "cannot re-join a shared subscription group");
            }
        }
    }

    pub(crate) async fn handle_unsubscribe(&mut self, u: Unsubscribe) {
        let mut codes = Vec::with_capacity(u.filters.len());
        for filter in &u.filters {
            let found = match filter.shared() {
                Ok(Some(shared)) => {
                    let name = shared_groups::queue_name(&shared);
                    let joined = self.leave_group(&name).await;
                    // Also a membership this connection could not re-join (its group queue
                    // was unavailable) is the session's to end.
                    let core = self.shared.core.clone();
                    let recorded = shared_groups::forget(
                        &core,
                        &self.vhost,
                        self.id,
                        &self.session_queue,
                        &name,
                    )
                    .await;
                    let found = joined || recorded;
                    if found {
                        shared_groups::release(&core, &self.vhost, self.id, &name).await;
                    }
                    found
                }
                _ => match self.subs.position(filter) {
                    Some(i) => {
                        let old = self.subs.remove(i);
                        let _ = self
                            .shared
                            .core
                            .unbind(&self.vhost, self.id, super::TOPIC_EXCHANGE, old.binding)
                            .await;
                        true
                    }
                    None => false,
                },
            };
            codes.push(if found {
                ReasonCode::SUCCESS
            } else {
                ReasonCode::NO_SUBSCRIPTION_EXISTED
            });
        }
        self.update_direct_qos();
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: u.packet_id,
            properties: AckProperties::default(),
            reason_codes: codes,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(filter: &str, qos: QoS, no_local: bool) -> Sub {
        Sub {
            filter: TopicFilter::new(filter).expect("filter"),
            qos,
            no_local,
            retain_as_published: false,
            id: NonZeroU32::new(qos.as_u8().into()),
            binding: Binding {
                destination: Destination::Queue("q".into()),
                routing_key: filter_to_binding_key(filter),
                arguments: FieldTable::new(),
            },
        }
    }

    fn qos_for(subs: &mut Subs, topic: &str, own: bool) -> Option<(QoS, Vec<u32>)> {
        let topic = TopicName::new(topic).expect("topic");
        subs.route(&topic, own)
            .map(|r| (r.qos, r.ids.iter().map(|id| id.get()).collect()))
    }

    #[test]
    fn the_last_match_is_forgotten_with_every_change_of_the_subscriptions() {
        let mut subs = Subs::default();
        subs.push(sub("a/+", QoS::AtMostOnce, false));
        assert_eq!(
            qos_for(&mut subs, "a/b", false),
            Some((QoS::AtMostOnce, vec![]))
        );
        assert_eq!(
            qos_for(&mut subs, "a/b", false),
            Some((QoS::AtMostOnce, vec![]))
        );
        subs.push(sub("a/b", QoS::ExactlyOnce, true));
        assert_eq!(
            qos_for(&mut subs, "a/b", false),
            Some((QoS::ExactlyOnce, vec![2]))
        );
        assert_eq!(
            qos_for(&mut subs, "a/b", true),
            Some((QoS::AtMostOnce, vec![])),
            "no-local skips the session's own messages"
        );
        assert_eq!(qos_for(&mut subs, "x", false), None);
        let i = subs.position(&TopicFilter::new("a/+").expect("filter"));
        subs.remove(i.expect("subscribed"));
        assert_eq!(qos_for(&mut subs, "a/b", true), None);
        assert_eq!(qos_for(&mut subs, "a/c", false), None);
        subs.set(vec![sub("#", QoS::AtLeastOnce, false)]);
        assert_eq!(
            qos_for(&mut subs, "a/c", false),
            Some((QoS::AtLeastOnce, vec![1]))
        );
    }
}
