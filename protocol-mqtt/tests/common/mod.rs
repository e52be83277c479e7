//! Proptest strategies: every packet type, valid for a given version.
#![allow(dead_code)]

use std::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::strategy::Union;
use protocol_mqtt::*;

use ProtocolVersion::{V5, V311};

pub fn string() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _é€/-]{0,12}"
}

pub fn opt_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(string())
}

pub fn bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

pub fn opt_bytes() -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(bytes())
}

pub fn topic_name() -> impl Strategy<Value = TopicName> {
    "[a-z$]{1,4}(/[a-z]{0,4}){0,3}".prop_map(|s| TopicName::new(s).expect("valid name"))
}

pub fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof![Just("+".to_owned()), "[a-z]{0,4}"];
    (proptest::collection::vec(level, 1..4), any::<bool>()).prop_map(|(mut levels, hash)| {
        if hash {
            levels.push("#".to_owned());
        }
        if levels == [""] {
            levels[0] = "x".to_owned();
        }
        TopicFilter::new(levels.join("/")).expect("valid filter")
    })
}

pub fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

pub fn packet_id() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|v| PacketId::new(v).expect("non-zero"))
}

pub fn reason() -> impl Strategy<Value = ReasonCode> {
    any::<u8>().prop_map(ReasonCode)
}

pub fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> {
    proptest::collection::vec(
        (string(), string()).prop_map(|(n, v)| UserProperty::new(n, v)),
        0..3,
    )
}

fn nz16() -> impl Strategy<Value = Option<NonZeroU16>> {
    proptest::option::of(any::<NonZeroU16>())
}

fn nz32() -> impl Strategy<Value = Option<NonZeroU32>> {
    proptest::option::of(any::<NonZeroU32>())
}

pub fn sub_id() -> impl Strategy<Value = NonZeroU32> {
    (1u32..=MAX_VAR_INT).prop_map(|v| NonZeroU32::new(v).expect("non-zero"))
}

pub fn ack_properties(v: ProtocolVersion) -> BoxedStrategy<AckProperties> {
    match v {
        V311 => Just(AckProperties::default()).boxed(),
        V5 => (opt_string(), user_properties())
            .prop_map(|(reason_string, user_properties)| AckProperties {
                reason_string,
                user_properties,
            })
            .boxed(),
    }
}

pub fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        (any::<Option<u32>>(), nz16(), nz32(), any::<Option<u16>>()),
        (
            any::<Option<bool>>(),
            any::<Option<bool>>(),
            user_properties(),
        ),
        (opt_string(), opt_bytes()),
    )
        .prop_map(
            |((sei, rm, mps, tam), (rri, rpi, up), (am, ad))| ConnectProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                user_properties: up,
                authentication_method: am,
                authentication_data: ad,
            },
        )
}

pub fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        (
            any::<Option<u32>>(),
            any::<Option<u8>>(),
            any::<Option<u32>>(),
        ),
        (
            opt_string(),
            proptest::option::of(topic_name()),
            opt_bytes(),
            user_properties(),
        ),
    )
        .prop_map(|((wdi, pfi, mei), (ct, rt, cd, up))| WillProperties {
            will_delay_interval: wdi,
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            user_properties: up,
        })
}

pub fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let max_qos = proptest::option::of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]);
    (
        (
            any::<Option<u32>>(),
            nz16(),
            max_qos,
            any::<Option<bool>>(),
            nz32(),
        ),
        (
            opt_string(),
            any::<Option<u16>>(),
            opt_string(),
            user_properties(),
        ),
        (
            any::<Option<bool>>(),
            any::<Option<bool>>(),
            any::<Option<bool>>(),
            any::<Option<u16>>(),
        ),
        (opt_string(), opt_string(), opt_string(), opt_bytes()),
    )
        .prop_map(
            |(
                (sei, rm, mq, ra, mps),
                (aci, tam, rs, up),
                (wsa, sia, ssa, ska),
                (ri, sr, am, ad),
            )| {
                ConnAckProperties {
                    session_expiry_interval: sei,
                    receive_maximum: rm,
                    maximum_qos: mq,
                    retain_available: ra,
                    maximum_packet_size: mps,
                    assigned_client_identifier: aci,
                    topic_alias_maximum: tam,
                    reason_string: rs,
                    user_properties: up,
                    wildcard_subscription_available: wsa,
                    subscription_identifiers_available: sia,
                    shared_subscription_available: ssa,
                    server_keep_alive: ska,
                    response_information: ri,
                    server_reference: sr,
                    authentication_method: am,
                    authentication_data: ad,
                }
            },
        )
}

pub fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        (any::<Option<u8>>(), any::<Option<u32>>(), nz16()),
        (
            proptest::option::of(topic_name()),
            opt_bytes(),
            user_properties(),
        ),
        (proptest::collection::vec(sub_id(), 0..3), opt_string()),
    )
        .prop_map(
            |((pfi, mei, ta), (rt, cd, up), (sids, ct))| PublishProperties {
                payload_format_indicator: pfi,
                message_expiry_interval: mei,
                topic_alias: ta,
                response_topic: rt,
                correlation_data: cd,
                user_properties: up,
                subscription_identifiers: sids,
                content_type: ct,
            },
        )
}

pub fn connect(v: ProtocolVersion) -> impl Strategy<Value = Connect> {
    let v5 = v == V5;
    let will = proptest::option::of((
        qos(),
        any::<bool>(),
        will_properties(),
        topic_name(),
        bytes(),
    ));
    (
        (any::<bool>(), any::<u16>(), connect_properties(), string()),
        will,
        (opt_string(), opt_bytes()),
    )
        .prop_map(
            move |((clean_start, keep_alive, props, client_id), will, (username, password))| {
                let username = if !v5 && password.is_some() && username.is_none() {
                    Some(String::new())
                } else {
                    username
                };
                Connect {
                    version: v,
                    clean_start,
                    keep_alive,
                    properties: if v5 { props } else { Default::default() },
                    client_id,
                    will: will.map(|(qos, retain, props, topic, payload)| Will {
                        qos,
                        retain,
                        properties: if v5 { props } else { Default::default() },
                        topic,
                        payload,
                    }),
                    username,
                    password,
                }
            },
        )
}

pub fn publish(v: ProtocolVersion) -> impl Strategy<Value = Publish> {
    let v5 = v == V5;
    (
        (qos(), any::<bool>(), any::<bool>(), packet_id()),
        (topic_name(), any::<bool>()),
        publish_properties(),
        bytes(),
    )
        .prop_map(
            move |((qos, dup, retain, id), (topic, drop_topic), props, payload)| {
                let properties = if v5 { props } else { Default::default() };
                let topic = if v5 && drop_topic && properties.topic_alias.is_some() {
                    TopicName::empty()
                } else {
                    topic
                };
                Publish {
                    dup: dup && qos != QoS::AtMostOnce,
                    qos,
                    retain,
                    topic,
                    packet_id: (qos != QoS::AtMostOnce).then_some(id),
                    properties,
                    payload,
                }
            },
        )
}

pub fn subscription_options(v: ProtocolVersion) -> BoxedStrategy<SubscriptionOptions> {
    match v {
        V311 => qos().prop_map(SubscriptionOptions::qos).boxed(),
        V5 => (
            qos(),
            any::<bool>(),
            any::<bool>(),
            prop_oneof![
                Just(RetainHandling::SendAtSubscribe),
                Just(RetainHandling::SendIfNew),
                Just(RetainHandling::DoNotSend)
            ],
        )
            .prop_map(
                |(qos, no_local, retain_as_published, retain_handling)| SubscriptionOptions {
                    qos,
                    no_local,
                    retain_as_published,
                    retain_handling,
                },
            )
            .boxed(),
    }
}

pub fn subscribe(v: ProtocolVersion) -> impl Strategy<Value = Subscribe> {
    let v5 = v == V5;
    let sub = (topic_filter(), subscription_options(v))
        .prop_map(|(filter, options)| Subscription { filter, options });
    (
        packet_id(),
        proptest::option::of(sub_id()),
        user_properties(),
        proptest::collection::vec(sub, 1..4),
    )
        .prop_map(move |(packet_id, sid, up, filters)| Subscribe {
            packet_id,
            properties: if v5 {
                SubscribeProperties {
                    subscription_identifier: sid,
                    user_properties: up,
                }
            } else {
                Default::default()
            },
            filters,
        })
}

macro_rules! ack {
    ($ty:ident, $v:expr) => {{
        let v: ProtocolVersion = $v;
        (packet_id(), reason(), ack_properties(v)).prop_map(
            move |(packet_id, reason, properties)| {
                Packet::$ty($ty {
                    packet_id,
                    reason: if v == V5 { reason } else { ReasonCode::SUCCESS },
                    properties,
                })
            },
        )
    }};
}

/// Any packet valid on a `v` connection.
pub fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let v5 = v == V5;
    let mut arms: Vec<BoxedStrategy<Packet>> = vec![
        connect(v).prop_map(Packet::Connect).boxed(),
        (any::<bool>(), reason(), connack_properties())
            .prop_map(move |(sp, code, props)| {
                Packet::ConnAck(ConnAck {
                    session_present: sp,
                    code,
                    properties: if v5 { props } else { Default::default() },
                })
            })
            .boxed(),
        publish(v).prop_map(Packet::Publish).boxed(),
        ack!(PubAck, v).boxed(),
        ack!(PubRec, v).boxed(),
        ack!(PubRel, v).boxed(),
        ack!(PubComp, v).boxed(),
        subscribe(v).prop_map(Packet::Subscribe).boxed(),
        (
            packet_id(),
            ack_properties(v),
            proptest::collection::vec(reason(), 1..4),
        )
            .prop_map(|(packet_id, properties, reason_codes)| {
                Packet::SubAck(SubAck {
                    packet_id,
                    properties,
                    reason_codes,
                })
            })
            .boxed(),
        (
            packet_id(),
            user_properties(),
            proptest::collection::vec(topic_filter(), 1..4),
        )
            .prop_map(move |(packet_id, up, filters)| {
                Packet::Unsubscribe(Unsubscribe {
                    packet_id,
                    properties: UnsubscribeProperties {
                        user_properties: if v5 { up } else { Vec::new() },
                    },
                    filters,
                })
            })
            .boxed(),
        (
            packet_id(),
            ack_properties(v),
            proptest::collection::vec(reason(), 1..4),
        )
            .prop_map(move |(packet_id, properties, codes)| {
                Packet::UnsubAck(UnsubAck {
                    packet_id,
                    properties,
                    reason_codes: if v5 { codes } else { Vec::new() },
                })
            })
            .boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
    ];
    match v {
        V311 => arms.push(Just(Packet::Disconnect(Disconnect::default())).boxed()),
        V5 => {
            let disconnect = (
                reason(),
                any::<Option<u32>>(),
                opt_string(),
                user_properties(),
                opt_string(),
            )
                .prop_map(|(reason, sei, rs, up, sr)| {
                    Packet::Disconnect(Disconnect {
                        reason,
                        properties: DisconnectProperties {
                            session_expiry_interval: sei,
                            reason_string: rs,
                            user_properties: up,
                            server_reference: sr,
                        },
                    })
                });
            let auth = (
                reason(),
                opt_string(),
                opt_bytes(),
                opt_string(),
                user_properties(),
            )
                .prop_map(|(reason, am, ad, rs, up)| {
                    Packet::Auth(Auth {
                        reason,
                        properties: AuthProperties {
                            authentication_method: am,
                            authentication_data: ad,
                            reason_string: rs,
                            user_properties: up,
                        },
                    })
                });
            arms.push(disconnect.boxed());
            arms.push(auth.boxed());
        }
    }
    Union::new(arms).boxed()
}

/// Encodes one packet into a fresh buffer.
pub fn wire(p: &Packet, v: ProtocolVersion) -> bytes::BytesMut {
    let mut buf = bytes::BytesMut::new();
    encode(p, v, &mut buf).expect("encode");
    buf
}
