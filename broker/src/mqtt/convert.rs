//! MQTT PUBLISH ⇄ core message, mapping MQTT 5.0 properties onto AMQP ones the way
//! RabbitMQ's MQTT plugin does, so AMQP applications see them as ordinary properties:
//!
//! | MQTT | AMQP |
//! |---|---|
//! | QoS ≥ 1 | delivery mode 2 (persistent); the QoS itself in header `x-mqtt-publish-qos` |
//! | RETAIN | header `x-mqtt-retain` (only when set) |
//! | Content Type | `content_type` (if ≤ 255 bytes) |
//! | Correlation Data | `correlation_id` if UTF-8 ≤ 255 bytes, else header `x-correlation-id` |
//! | Response Topic | `reply_to`, as an AMQP routing key (so an AMQP responder can publish to it on `amq.topic`) |
//! | Message Expiry Interval | `expiration` (ms) and `timestamp` (publish time) |
//! | Payload Format Indicator | header `x-mqtt-payload-format` |
//! | User Property | one header each (long string), in order; see below |
//!
//! Other AMQP headers (those not starting with `x-`) become user properties the other way.
//!
//! User properties an AMQP table cannot carry as headers — a name given twice, a name starting
//! with `x-` (the broker's own namespace there: a client must not be able to set
//! `x-mqtt-publish-qos`), a name longer than 255 bytes — are kept in the header
//! `x-mqtt-user-properties` instead: every user property, in order, as an array of
//! `[name, value]` arrays of long strings. MQTT subscribers get them back from it exactly as
//! sent [MQTT-3.3.2-17, 18], also after the message was paged out or the broker restarted.

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use protocol_amqp::{BasicProperties, FieldValue, ShortStr};
use protocol_mqtt::{PublishProperties, QoS, TopicName, UserProperty};

use super::topic_map::{routing_key_to_topic, topic_to_routing_key};
use crate::model::message::Message;

const QOS_HEADER: &str = "x-mqtt-publish-qos";
const RETAIN_HEADER: &str = "x-mqtt-retain";
const CORRELATION_HEADER: &str = "x-correlation-id";
const FORMAT_HEADER: &str = "x-mqtt-payload-format";
const USER_PROPERTIES_HEADER: &str = "x-mqtt-user-properties";

/// What an MQTT publish carries besides topic and payload.
#[derive(Debug, Clone, Default)]
pub struct MqttMeta {
    /// Publisher's QoS.
    pub qos: u8,
    /// RETAIN flag.
    pub retain: bool,
    /// 5.0 properties (empty for 3.1.1).
    pub properties: PublishProperties,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn short(s: &str) -> Option<ShortStr> {
    ShortStr::new(s).ok()
}

fn long_str(s: &str) -> FieldValue {
    FieldValue::LongStr(Bytes::copy_from_slice(s.as_bytes()))
}

/// A name every MQTT message carries, made once: cloning a `ShortStr` counts a reference,
/// making one allocates.
macro_rules! shared_name {
    ($name:ident, $text:expr) => {
        static $name: LazyLock<ShortStr> = LazyLock::new(|| ShortStr::from_static($text));
    };
}
shared_name!(QOS_NAME, QOS_HEADER);
shared_name!(RETAIN_NAME, RETAIN_HEADER);
shared_name!(FORMAT_NAME, FORMAT_HEADER);
shared_name!(EXCHANGE_NAME, super::TOPIC_EXCHANGE);

/// The core message for an MQTT publish on `topic`. Its MQTT form is the publish itself, made
/// now rather than read back from the AMQP form at the first delivery (what that would give is
/// the same).
pub fn to_message(
    topic: &TopicName,
    payload: Bytes,
    meta: MqttMeta,
    publisher: &Arc<str>,
) -> Option<Message> {
    let routing_key = ShortStr::new(topic_to_routing_key(topic.as_str())).ok()?;
    let p = &meta.properties;
    let mut headers = Vec::with_capacity(1 + p.user_properties.len());
    headers.push((QOS_NAME.clone(), FieldValue::U8(meta.qos)));
    if meta.retain {
        headers.push((RETAIN_NAME.clone(), FieldValue::Bool(true)));
    }
    if let Some(f) = p.payload_format_indicator {
        headers.push((FORMAT_NAME.clone(), FieldValue::U8(f)));
    }
    let mut props = BasicProperties {
        delivery_mode: Some(if meta.qos >= 1 { 2 } else { 1 }),
        content_type: p.content_type.as_deref().and_then(short),
        ..BasicProperties::default()
    };
    if let Some(data) = &p.correlation_data {
        match std::str::from_utf8(data).ok().and_then(short) {
            Some(id) => props.correlation_id = Some(id),
            None => headers.push((
                ShortStr::from_static(CORRELATION_HEADER),
                FieldValue::ByteArray(data.clone()),
            )),
        }
    }
    if let Some(rt) = &p.response_topic {
        props.reply_to = short(&topic_to_routing_key(rt.as_str()));
    }
    if let Some(secs) = p.message_expiry_interval {
        props.expiration = short(&(u64::from(secs) * 1000).to_string());
        props.timestamp = Some(now_secs());
    }
    let mut all_fit = true;
    for (i, up) in p.user_properties.iter().enumerate() {
        let fits =
            !up.name.starts_with("x-") && !p.user_properties[..i].iter().any(|u| u.name == up.name);
        match short(&up.name).filter(|_| fits) {
            Some(name) => headers.push((name, long_str(&up.value))),
            None => all_fit = false,
        }
    }
    if !all_fit {
        let pairs = p
            .user_properties
            .iter()
            .map(|up| FieldValue::Array(vec![long_str(&up.name), long_str(&up.value)]));
        headers.push((
            ShortStr::from_static(USER_PROPERTIES_HEADER),
            FieldValue::Array(pairs.collect()),
        ));
    }
    props.headers = Some(headers.into_iter().collect());
    let MqttMeta {
        qos,
        retain,
        mut properties,
    } = meta;
    // Counted down per delivery from the AMQP expiration (see `Deliverable`).
    properties.message_expiry_interval = None;
    properties.topic_alias = None;
    properties.subscription_identifiers.clear();
    let form = Outgoing {
        topic: topic.clone(),
        qos: QoS::from_u8(qos).unwrap_or(QoS::AtMostOnce),
        retain,
        properties,
    };
    Some(Message {
        exchange: EXCHANGE_NAME.clone(),
        routing_key,
        properties: props,
        body: payload,
        publisher: Some(publisher.clone()),
        mqtt_form: MqttForm::of(form),
    })
}

/// How an MQTT subscriber should see a core message.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Topic name.
    pub topic: TopicName,
    /// QoS the message was published with (before the subscription's cap).
    pub qos: QoS,
    /// It was published with RETAIN.
    pub retain: bool,
    /// 5.0 properties without the expiry interval (see [`Deliverable::properties`]);
    /// subscription identifiers are added by the caller.
    pub properties: PublishProperties,
}

/// A message's MQTT form, computed by its first MQTT delivery and shared by the rest: a
/// fan-out to 50 subscribers converts the routing key and properties once, not 50 times.
/// The expiry interval is not part of it (it depends on when each delivery happens).
#[derive(Default)]
pub struct MqttForm(OnceLock<Option<Box<Outgoing>>>, OnceLock<Option<Bytes>>);

impl MqttForm {
    /// A form known from the start (the message came from an MQTT publish).
    fn of(form: Outgoing) -> MqttForm {
        MqttForm(OnceLock::from(Some(Box::new(form))), OnceLock::new())
    }
}

impl Clone for MqttForm {
    /// Empty: a copy may be changed, and then its form would be wrong.
    fn clone(&self) -> Self {
        MqttForm::default()
    }
}

impl PartialEq for MqttForm {
    /// A cache of what the message says, not part of what it says.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for MqttForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MqttForm")
    }
}

/// A message as an MQTT subscriber gets it now.
#[derive(Debug, Clone, Copy)]
pub struct Deliverable<'m> {
    /// Topic, QoS, RETAIN and properties, shared by every delivery of the message.
    pub form: &'m Outgoing,
    /// 5.0 Message Expiry Interval left now, if it has one.
    pub expiry: Option<u32>,
}

impl Deliverable<'_> {
    /// The 5.0 properties of this delivery (subscription identifiers are added by the caller).
    pub fn properties(&self) -> PublishProperties {
        let mut properties = self.form.properties.clone();
        properties.message_expiry_interval = self.expiry;
        properties
    }
}

/// Whether an MQTT subscriber gets `msg` at QoS 0 whatever its subscription (published at
/// QoS 0, or an AMQP message without the QoS header that is not persistent); also `true` for
/// a message no MQTT subscriber can get.
pub fn is_qos0(msg: &Message) -> bool {
    cached_form(msg).is_none_or(|form| form.qos == QoS::AtMostOnce)
}

/// The message as a 3.1.1 QoS 0 PUBLISH (no DUP, no RETAIN: what every 3.1.1 subscriber at
/// QoS 0 gets), encoded by its first such delivery and copied by the rest: a fan-out encodes
/// once. `None` if it cannot be encoded.
pub fn qos0_v311<'m>(msg: &'m Message, form: &Outgoing) -> Option<&'m Bytes> {
    msg.mqtt_form
        .1
        .get_or_init(|| {
            let mut publish = protocol_mqtt::Publish::new(form.topic.clone(), msg.body.clone());
            publish.qos = QoS::AtMostOnce;
            let mut out = bytes::BytesMut::new();
            protocol_mqtt::encode(
                &protocol_mqtt::Packet::Publish(publish),
                protocol_mqtt::ProtocolVersion::V311,
                &mut out,
            )
            .ok()
            .map(|()| out.freeze())
        })
        .as_ref()
}

/// The message's MQTT form, made on first use.
fn cached_form(msg: &Message) -> Option<&Outgoing> {
    msg.mqtt_form
        .0
        .get_or_init(|| mqtt_form(msg).map(Box::new))
        .as_deref()
}

/// Reads a message for MQTT delivery. `None` when its routing key is no valid MQTT topic
/// (e.g. the empty key) or it has expired.
pub fn from_message(msg: &Message) -> Option<Deliverable<'_>> {
    let form = cached_form(msg)?;
    let props = &msg.properties;
    let mut expiry = None;
    if let Some(ms) = props
        .expiration
        .as_ref()
        .and_then(|e| e.as_str().parse::<u64>().ok())
    {
        let total = ms / 1000;
        let elapsed = props
            .timestamp
            .map(|t| now_secs().saturating_sub(t))
            .unwrap_or(0);
        if elapsed >= total && ms > 0 && props.timestamp.is_some() {
            return None;
        }
        expiry = u32::try_from(total.saturating_sub(elapsed)).ok();
    }
    Some(Deliverable { form, expiry })
}

/// A `[name, value]` pair of `x-mqtt-user-properties`.
fn user_property(pair: &FieldValue) -> Option<UserProperty> {
    let text = |v: &FieldValue| match v {
        FieldValue::LongStr(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    match pair {
        FieldValue::Array(kv) if kv.len() == 2 => {
            Some(UserProperty::new(text(&kv[0])?, text(&kv[1])?))
        }
        _ => None,
    }
}

/// Everything of the MQTT form that does not depend on the time of delivery.
fn mqtt_form(msg: &Message) -> Option<Outgoing> {
    let topic = TopicName::new(routing_key_to_topic(msg.routing_key.as_str())).ok()?;
    if topic.is_empty() {
        return None;
    }
    let props = &msg.properties;
    let headers = props.headers.as_ref();
    let header = |name: &str| headers.and_then(|h| h.get(name));
    let qos = match header(QOS_HEADER) {
        Some(FieldValue::U8(q)) => QoS::from_u8(*q).unwrap_or(QoS::AtLeastOnce),
        Some(FieldValue::I8(q)) => u8::try_from(*q)
            .ok()
            .and_then(QoS::from_u8)
            .unwrap_or(QoS::AtLeastOnce),
        _ if props.is_persistent() => QoS::AtLeastOnce,
        _ => QoS::AtMostOnce,
    };
    let retain = matches!(header(RETAIN_HEADER), Some(FieldValue::Bool(true)));
    let mut out = PublishProperties {
        content_type: props.content_type.as_ref().map(|c| c.as_str().to_string()),
        response_topic: props
            .reply_to
            .as_ref()
            .and_then(|r| TopicName::new(routing_key_to_topic(r.as_str())).ok())
            .filter(|t| !t.is_empty()),
        ..PublishProperties::default()
    };
    out.correlation_data = match (&props.correlation_id, header(CORRELATION_HEADER)) {
        (_, Some(FieldValue::ByteArray(b) | FieldValue::LongStr(b))) => Some(b.clone()),
        (Some(id), _) => Some(Bytes::from(id.as_str().to_string().into_bytes())),
        _ => None,
    };
    if let Some(FieldValue::U8(f)) = header(FORMAT_HEADER) {
        out.payload_format_indicator = Some(*f);
    }
    if let Some(FieldValue::Array(pairs)) = header(USER_PROPERTIES_HEADER) {
        // Every user property as sent (see the module notes), the other headers aside.
        out.user_properties = pairs.iter().filter_map(user_property).collect();
    } else if let Some(h) = headers {
        for (name, value) in h.iter() {
            if name.as_str().starts_with("x-") {
                continue;
            }
            let value = match value {
                FieldValue::LongStr(b) | FieldValue::ByteArray(b) => {
                    String::from_utf8_lossy(b).into_owned()
                }
                FieldValue::Bool(v) => v.to_string(),
                FieldValue::I8(v) => v.to_string(),
                FieldValue::U8(v) => v.to_string(),
                FieldValue::I16(v) => v.to_string(),
                FieldValue::U16(v) => v.to_string(),
                FieldValue::I32(v) => v.to_string(),
                FieldValue::U32(v) => v.to_string(),
                FieldValue::I64(v) => v.to_string(),
                FieldValue::F32(v) => v.to_string(),
                FieldValue::F64(v) => v.to_string(),
                FieldValue::Timestamp(v) => v.to_string(),
                _ => continue,
            };
            out.user_properties
                .push(UserProperty::new(name.as_str(), value));
        }
    }
    Some(Outgoing {
        topic,
        qos,
        retain,
        properties: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_properties_survive_the_round_trip() {
        let meta = MqttMeta {
            qos: 2,
            retain: true,
            properties: PublishProperties {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(60),
                response_topic: Some(TopicName::new("reply/to.me").expect("topic")),
                correlation_data: Some(Bytes::from_static(&[0xff, 0x00, 0x01])),
                content_type: Some("application/json".into()),
                user_properties: vec![UserProperty::new("k", "v"), UserProperty::new("k2", "v2")],
                ..PublishProperties::default()
            },
        };
        let msg = to_message(
            &TopicName::new("a/b.c").expect("topic"),
            Bytes::from_static(b"x"),
            meta.clone(),
            &Arc::from("client"),
        )
        .expect("message");
        assert_eq!(msg.routing_key.as_str(), "a.b%2Ec");
        assert!(msg.is_persistent());
        assert_eq!(
            msg.properties.reply_to.as_ref().map(|r| r.as_str()),
            Some("reply.to%2Eme")
        );
        let out = from_message(&msg).expect("deliverable");
        assert_eq!(out.form.topic.as_str(), "a/b.c");
        assert_eq!(out.form.qos, QoS::ExactlyOnce);
        assert!(out.form.retain);
        let p = out.properties();
        assert_eq!(p.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            p.response_topic.as_ref().map(|t| t.as_str()),
            Some("reply/to.me")
        );
        assert_eq!(p.correlation_data.as_deref(), Some(&[0xff, 0x00, 0x01][..]));
        assert_eq!(p.payload_format_indicator, Some(1));
        assert!(matches!(p.message_expiry_interval, Some(59 | 60)));
        assert_eq!(p.user_properties, meta.properties.user_properties);
        // A copy has no MQTT form yet: it is made from the AMQP message, and says the same.
        let copy = msg.clone();
        let again = from_message(&copy).expect("deliverable");
        assert!(!std::ptr::eq(again.form, out.form));
        assert_eq!(format!("{:?}", again.form), format!("{:?}", out.form));
        assert_eq!(again.expiry.map(|e| e / 2), out.expiry.map(|e| e / 2));
    }

    #[test]
    fn user_properties_no_amqp_header_can_carry_come_back_exactly() {
        let sent = vec![
            UserProperty::new("k", "v"),
            UserProperty::new("x-mqtt-publish-qos", "2"),
            UserProperty::new("k", "v2"),
            UserProperty::new("n".repeat(300), "long name"),
        ];
        let meta = MqttMeta {
            qos: 0,
            retain: false,
            properties: PublishProperties {
                user_properties: sent.clone(),
                ..PublishProperties::default()
            },
        };
        let msg = to_message(
            &TopicName::new("t").expect("topic"),
            Bytes::new(),
            meta,
            &Arc::from("c"),
        )
        .expect("message");
        let headers = msg.properties.headers.as_ref().expect("headers");
        assert_eq!(
            headers.get(QOS_HEADER),
            Some(&FieldValue::U8(0)),
            "a user property cannot set the broker's own headers"
        );
        assert_eq!(
            headers.get("k"),
            Some(&FieldValue::LongStr(Bytes::from_static(b"v")))
        );
        assert!(headers.get(USER_PROPERTIES_HEADER).is_some());
        // As published, and as read back from the AMQP form (a copy has no MQTT form yet:
        // what a message paged out or recovered after a restart gets).
        let out = from_message(&msg).expect("deliverable");
        assert_eq!(out.properties().user_properties, sent);
        let copy = msg.clone();
        let again = from_message(&copy).expect("deliverable");
        assert_eq!(again.properties().user_properties, sent);
    }

    #[test]
    fn a_qos0_publish_is_encoded_once_per_message() {
        let meta = MqttMeta {
            qos: 1,
            retain: true,
            ..MqttMeta::default()
        };
        let msg = to_message(
            &TopicName::new("a/b").expect("topic"),
            Bytes::from_static(b"hi"),
            meta,
            &Arc::from("c"),
        )
        .expect("message");
        let out = from_message(&msg).expect("deliverable");
        let first = qos0_v311(&msg, out.form).expect("encoded").clone();
        let again = qos0_v311(&msg, out.form).expect("encoded");
        assert_eq!(
            first.as_ptr(),
            again.as_ptr(),
            "the same bytes, not a new encoding"
        );
        let mut buf = bytes::BytesMut::from(&first[..]);
        let decoded = protocol_mqtt::decode(
            &mut buf,
            Some(protocol_mqtt::ProtocolVersion::V311),
            protocol_mqtt::MAX_PACKET_SIZE,
        )
        .expect("decodes")
        .expect("a whole packet");
        match decoded {
            protocol_mqtt::Packet::Publish(p) => {
                assert_eq!(p.topic.as_str(), "a/b");
                assert_eq!(&p.payload[..], b"hi");
                assert_eq!(p.qos, QoS::AtMostOnce);
                assert!(!p.retain && !p.dup && p.packet_id.is_none());
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    #[test]
    fn amqp_messages_map_to_qos_by_delivery_mode() {
        let msg = Message {
            exchange: ShortStr::from_static(crate::mqtt::TOPIC_EXCHANGE),
            routing_key: ShortStr::from_static("sensors.t1"),
            properties: BasicProperties {
                delivery_mode: Some(2),
                ..BasicProperties::default()
            },
            body: Bytes::from_static(b"21"),
            publisher: None,
            mqtt_form: MqttForm::default(),
        };
        let out = from_message(&msg).expect("deliverable");
        assert_eq!(out.form.topic.as_str(), "sensors/t1");
        assert_eq!(out.form.qos, QoS::AtLeastOnce);
        let transient = Message {
            properties: BasicProperties::default(),
            // A fresh form: `msg`'s was made from its old properties.
            mqtt_form: MqttForm::default(),
            ..msg
        };
        assert_eq!(
            from_message(&transient).map(|o| o.form.qos),
            Some(QoS::AtMostOnce)
        );
        let empty = Message {
            routing_key: ShortStr::default(),
            mqtt_form: MqttForm::default(),
            ..transient
        };
        assert!(from_message(&empty).is_none());
    }
}
