//! Differential test against rumqttc's MQTT 5.0 codec
//! (`rumqttc::v5::mqttbytes::v5`): for each representative packet,
//! rumqttc's bytes decode to our value and our bytes decode to rumqttc's.
//! Property order may differ between the two encoders, so bytes are not
//! compared, only decoded values.
//!
//! Known rumqttc deviations (we follow the spec, not rumqttc; the AUTH and
//! DISCONNECT ones are pinned in `differential_v5_deviations.rs`):
//! - `Packet::read` rejects any packet with remaining length 0 other than
//!   PINGREQ/PINGRESP, so it cannot read the spec's 2-byte DISCONNECT
//!   (`E0 00`, reason Normal, no properties; 5.0 §3.14.2.1), even though its
//!   own `Disconnect::write` produces `E0 00`;
//! - DISCONNECT with a reason code and no properties: rumqttc writes a
//!   remaining length of 1 followed by 2 bytes (reason + property length
//!   0), a framing error; and it cannot read the spec's remaining-length-1
//!   form (reason only) that we write;
//! - `Packet::read` does not know packet type 15, so it cannot read AUTH at
//!   all, and AUTH's property/reason types are not exported; AUTH is checked
//!   through `Auth::read`/`Auth::write` directly;
//! - `AuthProperties::read` forgets the 2-byte length prefix when counting
//!   Authentication Method and Reason String against the property length,
//!   so an AUTH carrying either fails to parse in rumqttc, and
//!   `AuthProperties::len` leaves out the string length prefixes, so the
//!   remaining length it writes for an AUTH with properties is wrong;
//! - it reads the CONNECT password as a UTF-8 string (spec: binary data).

use std::num::{NonZeroU16, NonZeroU32};

use bytes::{Bytes, BytesMut};
use protocol_mqtt as ours;
use protocol_mqtt::{
    PacketId, ProtocolVersion, QoS, ReasonCode, TopicFilter, TopicName, UserProperty,
};
use rumqttc::v5::mqttbytes::QoS as TQoS;
use rumqttc::v5::mqttbytes::v5 as theirs;

const V5: ProtocolVersion = ProtocolVersion::V5;
const MAX: usize = 1 << 20;

fn id(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn name(s: &str) -> TopicName {
    TopicName::new(s).expect("valid")
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).expect("valid")
}

fn up_ours() -> Vec<UserProperty> {
    vec![
        UserProperty::new("k", "v1"),
        UserProperty::new("k", "v2"),
        UserProperty::new("a", ""),
    ]
}

fn up_theirs() -> Vec<(String, String)> {
    vec![
        ("k".into(), "v1".into()),
        ("k".into(), "v2".into()),
        ("a".into(), String::new()),
    ]
}

fn nz16(v: u16) -> Option<NonZeroU16> {
    NonZeroU16::new(v)
}

fn nz32(v: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(v)
}

fn connect() -> (ours::Packet, theirs::Packet) {
    let o = ours::Connect {
        version: V5,
        clean_start: true,
        keep_alive: 45,
        properties: ours::ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: nz16(20),
            maximum_packet_size: nz32(65_536),
            topic_alias_maximum: Some(10),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            user_properties: up_ours(),
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(Bytes::from_static(b"\x00\x01")),
        },
        client_id: "c5".into(),
        will: Some(ours::Will {
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: ours::WillProperties {
                will_delay_interval: Some(5),
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(60),
                content_type: Some("text/plain".into()),
                response_topic: Some(name("resp/t")),
                correlation_data: Some(Bytes::from_static(b"corr")),
                user_properties: up_ours(),
            },
            topic: name("will/5"),
            payload: Bytes::from_static(b"bye"),
        }),
        username: Some("user".into()),
        password: Some(Bytes::from_static(b"secret")),
    };
    let mut props = theirs::ConnectProperties::new();
    props.session_expiry_interval = Some(3600);
    props.receive_maximum = Some(20);
    props.max_packet_size = Some(65_536);
    props.topic_alias_max = Some(10);
    props.request_response_info = Some(1);
    props.request_problem_info = Some(0);
    props.user_properties = up_theirs();
    props.authentication_method = Some("SCRAM".into());
    props.authentication_data = Some(Bytes::from_static(b"\x00\x01"));
    let t = theirs::Connect {
        keep_alive: 45,
        client_id: "c5".into(),
        clean_start: true,
        properties: Some(props),
    };
    let will = theirs::LastWill {
        topic: Bytes::from_static(b"will/5"),
        message: Bytes::from_static(b"bye"),
        qos: TQoS::ExactlyOnce,
        retain: false,
        properties: Some(theirs::LastWillProperties {
            delay_interval: Some(5),
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(60),
            content_type: Some("text/plain".into()),
            response_topic: Some("resp/t".into()),
            correlation_data: Some(Bytes::from_static(b"corr")),
            user_properties: up_theirs(),
        }),
    };
    let login = theirs::Login::new("user", "secret");
    (
        ours::Packet::Connect(o),
        theirs::Packet::Connect(t, Some(will), Some(login)),
    )
}

fn connacks() -> Vec<(ours::Packet, theirs::Packet)> {
    let o = ours::ConnAck {
        session_present: true,
        code: ReasonCode::SUCCESS,
        properties: ours::ConnAckProperties {
            session_expiry_interval: Some(0xFFFF_FFFF),
            receive_maximum: nz16(100),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(true),
            maximum_packet_size: nz32(1_000_000),
            assigned_client_identifier: Some("auto-1".into()),
            topic_alias_maximum: Some(16),
            reason_string: Some("welcome".into()),
            user_properties: up_ours(),
            wildcard_subscription_available: Some(true),
            subscription_identifiers_available: Some(true),
            shared_subscription_available: Some(false),
            server_keep_alive: Some(30),
            response_information: Some("resp/".into()),
            server_reference: Some("other:1883".into()),
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(Bytes::from_static(b"srv")),
        },
    };
    let t = theirs::ConnAck {
        session_present: true,
        code: theirs::ConnectReturnCode::Success,
        properties: Some(theirs::ConnAckProperties {
            session_expiry_interval: Some(0xFFFF_FFFF),
            receive_max: Some(100),
            max_qos: Some(1),
            retain_available: Some(1),
            max_packet_size: Some(1_000_000),
            assigned_client_identifier: Some("auto-1".into()),
            topic_alias_max: Some(16),
            reason_string: Some("welcome".into()),
            user_properties: up_theirs(),
            wildcard_subscription_available: Some(1),
            subscription_identifiers_available: Some(1),
            shared_subscription_available: Some(0),
            server_keep_alive: Some(30),
            response_information: Some("resp/".into()),
            server_reference: Some("other:1883".into()),
            authentication_method: Some("SCRAM".into()),
            authentication_data: Some(Bytes::from_static(b"srv")),
        }),
    };
    let refused = (
        ours::Packet::ConnAck(ours::ConnAck {
            session_present: false,
            code: ReasonCode::NOT_AUTHORIZED,
            properties: Default::default(),
        }),
        theirs::Packet::ConnAck(theirs::ConnAck {
            session_present: false,
            code: theirs::ConnectReturnCode::NotAuthorized,
            properties: None,
        }),
    );
    vec![
        (ours::Packet::ConnAck(o), theirs::Packet::ConnAck(t)),
        refused,
    ]
}

fn publishes() -> Vec<(ours::Packet, theirs::Packet)> {
    let qos0 = (
        ours::Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: true,
            topic: name("sensors/1/temp"),
            packet_id: None,
            properties: ours::PublishProperties {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(120),
                response_topic: Some(name("reply/1")),
                correlation_data: Some(Bytes::from_static(b"id-7")),
                user_properties: up_ours(),
                content_type: Some("application/json".into()),
                ..Default::default()
            },
            payload: Bytes::from_static(b"{\"t\":21}"),
        },
        theirs::Publish {
            dup: false,
            qos: TQoS::AtMostOnce,
            retain: true,
            topic: Bytes::from_static(b"sensors/1/temp"),
            pkid: 0,
            payload: Bytes::from_static(b"{\"t\":21}"),
            properties: Some(theirs::PublishProperties {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(120),
                topic_alias: None,
                response_topic: Some("reply/1".into()),
                correlation_data: Some(Bytes::from_static(b"id-7")),
                user_properties: up_theirs(),
                subscription_identifiers: vec![],
                content_type: Some("application/json".into()),
            }),
        },
    );
    let qos1 = (
        ours::Publish {
            dup: true,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: name("a/b"),
            packet_id: Some(id(42)),
            properties: ours::PublishProperties {
                subscription_identifiers: vec![NonZeroU32::MIN, NonZeroU32::new(300).expect("nz")],
                ..Default::default()
            },
            payload: Bytes::new(),
        },
        theirs::Publish {
            dup: true,
            qos: TQoS::AtLeastOnce,
            retain: false,
            topic: Bytes::from_static(b"a/b"),
            pkid: 42,
            payload: Bytes::new(),
            properties: Some(theirs::PublishProperties {
                payload_format_indicator: None,
                message_expiry_interval: None,
                topic_alias: None,
                response_topic: None,
                correlation_data: None,
                user_properties: vec![],
                subscription_identifiers: vec![1, 300],
                content_type: None,
            }),
        },
    );
    let qos2_alias = (
        ours::Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: TopicName::empty(),
            packet_id: Some(id(65_535)),
            properties: ours::PublishProperties {
                topic_alias: nz16(5),
                ..Default::default()
            },
            payload: Bytes::from_static(b"aliased"),
        },
        theirs::Publish {
            dup: false,
            qos: TQoS::ExactlyOnce,
            retain: false,
            topic: Bytes::new(),
            pkid: 65_535,
            payload: Bytes::from_static(b"aliased"),
            properties: Some(theirs::PublishProperties {
                payload_format_indicator: None,
                message_expiry_interval: None,
                topic_alias: Some(5),
                response_topic: None,
                correlation_data: None,
                user_properties: vec![],
                subscription_identifiers: vec![],
                content_type: None,
            }),
        },
    );
    [qos0, qos1, qos2_alias]
        .into_iter()
        .map(|(o, t)| (ours::Packet::Publish(o), theirs::Packet::Publish(t)))
        .collect()
}

fn ack_props(with: bool) -> ours::AckProperties {
    if with {
        ours::AckProperties {
            reason_string: Some("why".into()),
            user_properties: up_ours(),
        }
    } else {
        Default::default()
    }
}

macro_rules! their_props {
    ($ty:ident, $with:expr) => {
        $with.then(|| theirs::$ty {
            reason_string: Some("why".into()),
            user_properties: up_theirs(),
        })
    };
}

fn acks() -> Vec<(ours::Packet, theirs::Packet)> {
    let mut out = Vec::new();
    for (code, treason, with) in [
        (0x00, theirs::PubAckReason::Success, false),
        (0x10, theirs::PubAckReason::NoMatchingSubscribers, true),
        (0x97, theirs::PubAckReason::QuotaExceeded, false),
    ] {
        out.push((
            ours::Packet::PubAck(ours::PubAck {
                packet_id: id(10),
                reason: ReasonCode(code),
                properties: ack_props(with),
            }),
            theirs::Packet::PubAck(theirs::PubAck {
                pkid: 10,
                reason: treason,
                properties: their_props!(PubAckProperties, with),
            }),
        ));
    }
    out.push((
        ours::Packet::PubRec(ours::PubRec {
            packet_id: id(11),
            reason: ReasonCode::NOT_AUTHORIZED,
            properties: ack_props(true),
        }),
        theirs::Packet::PubRec(theirs::PubRec {
            pkid: 11,
            reason: theirs::PubRecReason::NotAuthorized,
            properties: their_props!(PubRecProperties, true),
        }),
    ));
    out.push((
        ours::Packet::PubRel(ours::PubRel {
            packet_id: id(12),
            reason: ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            properties: ack_props(false),
        }),
        theirs::Packet::PubRel(theirs::PubRel {
            pkid: 12,
            reason: theirs::PubRelReason::PacketIdentifierNotFound,
            properties: None,
        }),
    ));
    out.push((
        ours::Packet::PubComp(ours::PubComp {
            packet_id: id(13),
            reason: ReasonCode::SUCCESS,
            properties: ack_props(true),
        }),
        theirs::Packet::PubComp(theirs::PubComp {
            pkid: 13,
            reason: theirs::PubCompReason::Success,
            properties: their_props!(PubCompProperties, true),
        }),
    ));
    out
}

fn subscriptions() -> Vec<(ours::Packet, theirs::Packet)> {
    let subscribe = (
        ours::Packet::Subscribe(ours::Subscribe {
            packet_id: id(3),
            properties: ours::SubscribeProperties {
                subscription_identifier: nz32(268_435_455),
                user_properties: up_ours(),
            },
            filters: vec![
                ours::Subscription {
                    filter: filter("a/+/c"),
                    options: ours::SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: true,
                        retain_as_published: false,
                        retain_handling: ours::RetainHandling::SendIfNew,
                    },
                },
                ours::Subscription {
                    filter: filter("$share/g/x/#"),
                    options: ours::SubscriptionOptions {
                        qos: QoS::ExactlyOnce,
                        no_local: false,
                        retain_as_published: true,
                        retain_handling: ours::RetainHandling::DoNotSend,
                    },
                },
            ],
        }),
        theirs::Packet::Subscribe(theirs::Subscribe {
            pkid: 3,
            filters: vec![
                theirs::Filter {
                    path: "a/+/c".into(),
                    qos: TQoS::AtLeastOnce,
                    nolocal: true,
                    preserve_retain: false,
                    retain_forward_rule: theirs::RetainForwardRule::OnNewSubscribe,
                },
                theirs::Filter {
                    path: "$share/g/x/#".into(),
                    qos: TQoS::ExactlyOnce,
                    nolocal: false,
                    preserve_retain: true,
                    retain_forward_rule: theirs::RetainForwardRule::Never,
                },
            ],
            properties: Some(theirs::SubscribeProperties {
                id: Some(268_435_455),
                user_properties: up_theirs(),
            }),
        }),
    );
    let suback = (
        ours::Packet::SubAck(ours::SubAck {
            packet_id: id(3),
            properties: ack_props(true),
            reason_codes: vec![
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,
            ],
        }),
        theirs::Packet::SubAck(theirs::SubAck {
            pkid: 3,
            return_codes: vec![
                theirs::SubscribeReasonCode::Success(TQoS::AtLeastOnce),
                theirs::SubscribeReasonCode::SharedSubscriptionsNotSupported,
            ],
            properties: their_props!(SubAckProperties, true),
        }),
    );
    let unsubscribe = (
        ours::Packet::Unsubscribe(ours::Unsubscribe {
            packet_id: id(4),
            properties: ours::UnsubscribeProperties {
                user_properties: up_ours(),
            },
            filters: vec![filter("a/b"), filter("#")],
        }),
        theirs::Packet::Unsubscribe(theirs::Unsubscribe {
            pkid: 4,
            filters: vec!["a/b".into(), "#".into()],
            properties: Some(theirs::UnsubscribeProperties {
                user_properties: up_theirs(),
            }),
        }),
    );
    let unsuback = (
        ours::Packet::UnsubAck(ours::UnsubAck {
            packet_id: id(4),
            properties: ack_props(false),
            reason_codes: vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED],
        }),
        theirs::Packet::UnsubAck(theirs::UnsubAck {
            pkid: 4,
            reasons: vec![
                theirs::UnsubAckReason::Success,
                theirs::UnsubAckReason::NoSubscriptionExisted,
            ],
            properties: None,
        }),
    );
    vec![subscribe, suback, unsubscribe, unsuback]
}

fn cases() -> Vec<(ours::Packet, theirs::Packet)> {
    let mut out = vec![connect()];
    out.extend(connacks());
    out.extend(publishes());
    out.extend(acks());
    out.extend(subscriptions());
    out.push((
        ours::Packet::PingReq,
        theirs::Packet::PingReq(theirs::PingReq),
    ));
    out.push((
        ours::Packet::PingResp,
        theirs::Packet::PingResp(theirs::PingResp),
    ));
    out.push((
        ours::Packet::Disconnect(ours::Disconnect {
            reason: ReasonCode::SERVER_SHUTTING_DOWN,
            properties: ours::DisconnectProperties {
                session_expiry_interval: Some(10),
                reason_string: Some("bye".into()),
                user_properties: up_ours(),
                server_reference: Some("elsewhere".into()),
            },
        }),
        theirs::Packet::Disconnect(theirs::Disconnect {
            reason_code: theirs::DisconnectReasonCode::ServerShuttingDown,
            properties: Some(theirs::DisconnectProperties {
                session_expiry_interval: Some(10),
                reason_string: Some("bye".into()),
                user_properties: up_theirs(),
                server_reference: Some("elsewhere".into()),
            }),
        }),
    ));
    out
}

fn our_decode(buf: &mut BytesMut, first: bool) -> ours::Packet {
    let version = if first { None } else { Some(V5) };
    let p = ours::decode(buf, version, MAX)
        .expect("our decode")
        .expect("whole");
    assert!(buf.is_empty());
    p
}

#[test]
fn rumqttc_bytes_decode_to_our_packets() {
    for (o, t) in cases() {
        let mut buf = BytesMut::new();
        t.write(&mut buf, None).expect("rumqttc write");
        let decoded = our_decode(&mut buf, matches!(o, ours::Packet::Connect(_)));
        assert_eq!(decoded, o, "{}", o.name());
    }
}

#[test]
fn our_bytes_decode_to_rumqttc_packets() {
    for (o, t) in cases() {
        let mut buf = BytesMut::new();
        ours::encode(&o, V5, &mut buf).expect("our encode");
        assert_eq!(buf.len(), o.encoded_len(V5).expect("len"));
        let decoded = theirs::Packet::read(&mut buf, None).expect("rumqttc read");
        assert_eq!(decoded, t, "{}", o.name());
    }
}
