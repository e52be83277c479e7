//! Byte-exact vectors: layouts from the spec text, Variable Byte Integer
//! boundaries, and the short forms of 5.0 acknowledgements.

mod common;

use bytes::{Bytes, BytesMut};
use protocol_mqtt::*;

use ProtocolVersion::{V5, V311};

fn decode_all(bytes: &[u8], v: Option<ProtocolVersion>) -> Packet {
    let mut src = BytesMut::from(bytes);
    let p = decode(&mut src, v, MAX_PACKET_SIZE)
        .expect("decode")
        .expect("whole packet");
    assert!(src.is_empty(), "consumed exactly");
    p
}

fn both_ways(packet: &Packet, v: ProtocolVersion, bytes: &[u8]) {
    assert_eq!(
        &common::wire(packet, v)[..],
        bytes,
        "encode {}",
        packet.name()
    );
    assert_eq!(
        &decode_all(bytes, Some(v)),
        packet,
        "decode {}",
        packet.name()
    );
}

fn id(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn name(s: &str) -> TopicName {
    TopicName::new(s).expect("valid")
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).expect("valid")
}

#[test]
fn remaining_length_boundaries() {
    // PINGREQ: remaining length 0.
    both_ways(&Packet::PingReq, V311, &[0xC0, 0x00]);
    // QoS 0 PUBLISH to "a" (3 bytes of topic) + payload = remaining length.
    for (len, header) in [
        (127usize, &[0x7F][..]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xFF, 0x7F]),
        (16_384, &[0x80, 0x80, 0x01]),
        (2_097_151, &[0xFF, 0xFF, 0x7F]),
        (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
    ] {
        let p = Packet::Publish(Publish::new(name("a"), vec![7u8; len - 3]));
        let wire = common::wire(&p, V311);
        assert_eq!(&wire[1..1 + header.len()], header, "remaining length {len}");
        assert_eq!(wire.len(), 1 + header.len() + len);
        assert_eq!(p.encoded_len(V311), Ok(wire.len()));
        assert_eq!(decode_all(&wire, Some(V311)), p);
    }
}

#[test]
fn remaining_length_limits() {
    // 268,435,455 = FF FF FF 7F is the largest; the body is awaited.
    let mut src = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    assert_eq!(decode(&mut src, Some(V311), MAX_PACKET_SIZE), Ok(None));
    assert_eq!(src.len(), 5);
    // A fifth length byte is malformed.
    let mut src = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01][..]);
    assert_eq!(
        decode(&mut src, Some(V311), MAX_PACKET_SIZE),
        Err(DecodeError::BadVarInt)
    );
    // The encoder refuses bodies past the limit.
    let big = Publish::new(name("a"), Bytes::from(vec![0u8; 268_435_455 - 2]));
    assert_eq!(
        Packet::Publish(big).encoded_len(V311),
        Err(EncodeError::VarIntOutOfRange(268_435_456))
    );
}

#[test]
fn non_minimal_var_int_accepted_in_v311_only() {
    // PINGREQ with remaining length 0 written as 80 00.
    assert_eq!(decode_all(&[0xC0, 0x80, 0x00], Some(V311)), Packet::PingReq);
    let mut src = BytesMut::from(&[0xC0, 0x80, 0x00][..]);
    assert_eq!(decode(&mut src, Some(V5), 100), Err(DecodeError::BadVarInt));
}

/// MQTT 3.1.1 §3.1.2.10 variable header example (flags 0xCE, keep alive
/// 10) with a small payload.
#[test]
fn connect_v311_spec_example() {
    let mut bytes = vec![0x10, 0x1F];
    bytes.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xCE, 0x00, 0x0A]);
    for s in [&b"cid"[..], b"w/t", b"bye", b"u", b"p"] {
        bytes.extend_from_slice(&[0x00, u8::try_from(s.len()).expect("short")]);
        bytes.extend_from_slice(s);
    }
    assert_eq!(usize::from(bytes[1]), bytes.len() - 2);
    let p = Packet::Connect(Connect {
        version: V311,
        clean_start: true,
        keep_alive: 10,
        properties: ConnectProperties::default(),
        client_id: "cid".into(),
        will: Some(Will {
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: WillProperties::default(),
            topic: name("w/t"),
            payload: Bytes::from_static(b"bye"),
        }),
        username: Some("u".into()),
        password: Some(Bytes::from_static(b"p")),
    });
    assert_eq!(&common::wire(&p, V311)[..], &bytes[..]);
    assert_eq!(decode_all(&bytes, None), p);
}

/// MQTT 5.0 §3.1.2.11 variable header example: flags 0xC2, keep alive 10,
/// properties = Session Expiry Interval 10.
#[test]
fn connect_v5_spec_example() {
    let mut bytes = vec![0x10, 0x19];
    bytes.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xC2, 0x00, 0x0A]);
    bytes.extend_from_slice(&[0x05, 0x11, 0x00, 0x00, 0x00, 0x0A]);
    for s in [&b"c"[..], b"u", b"p"] {
        bytes.extend_from_slice(&[0x00, 0x01]);
        bytes.extend_from_slice(s);
    }
    assert_eq!(usize::from(bytes[1]), bytes.len() - 2);
    let mut c = Connect::new(V5, "c", 10);
    c.properties.session_expiry_interval = Some(10);
    c.username = Some("u".into());
    c.password = Some(Bytes::from_static(b"p"));
    let p = Packet::Connect(c);
    assert_eq!(&common::wire(&p, V5)[..], &bytes[..]);
    assert_eq!(decode_all(&bytes, None), p);
}

#[test]
fn connack() {
    let accepted = Packet::ConnAck(ConnAck::default());
    both_ways(&accepted, V311, &[0x20, 0x02, 0x00, 0x00]);
    let refused = Packet::ConnAck(ConnAck {
        code: ReasonCode::V3_UNACCEPTABLE_PROTOCOL_VERSION,
        ..Default::default()
    });
    both_ways(&refused, V311, &[0x20, 0x02, 0x00, 0x01]);
    let mut props = ConnAckProperties {
        maximum_qos: Some(QoS::AtLeastOnce),
        ..Default::default()
    };
    props.shared_subscription_available = Some(false);
    let v5 = Packet::ConnAck(ConnAck {
        session_present: true,
        code: ReasonCode::SUCCESS,
        properties: props,
    });
    both_ways(
        &v5,
        V5,
        &[0x20, 0x07, 0x01, 0x00, 0x04, 0x24, 0x01, 0x2A, 0x00],
    );
}

/// MQTT 3.1.1 §3.3.2.3 example: topic "a/b", packet identifier 10.
#[test]
fn publish_v311_spec_example() {
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: name("a/b"),
        packet_id: Some(id(10)),
        properties: PublishProperties::default(),
        payload: Bytes::from_static(b"hi"),
    });
    both_ways(
        &p,
        V311,
        &[
            0x33, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, b'h', b'i',
        ],
    );
}

#[test]
fn publish_v5_with_alias_and_properties() {
    let mut publish = Publish::new(TopicName::empty(), Bytes::from_static(b"x"));
    publish.qos = QoS::ExactlyOnce;
    publish.dup = true;
    publish.packet_id = Some(id(1));
    publish.properties.topic_alias = std::num::NonZeroU16::new(2);
    publish.properties.subscription_identifiers = vec![
        std::num::NonZeroU32::new(1).expect("nz"),
        std::num::NonZeroU32::new(128).expect("nz"),
    ];
    let p = Packet::Publish(publish);
    both_ways(
        &p,
        V5,
        &[
            0x3C, 0x0E, 0x00, 0x00, 0x00, 0x01, 0x08, 0x0B, 0x01, 0x0B, 0x80, 0x01, 0x23, 0x00,
            0x02, b'x',
        ],
    );
}

#[test]
fn acks_v311() {
    both_ways(
        &Packet::PubAck(PubAck::new(id(10))),
        V311,
        &[0x40, 0x02, 0x00, 0x0A],
    );
    both_ways(
        &Packet::PubRec(PubRec::new(id(10))),
        V311,
        &[0x50, 0x02, 0x00, 0x0A],
    );
    both_ways(
        &Packet::PubRel(PubRel::new(id(10))),
        V311,
        &[0x62, 0x02, 0x00, 0x0A],
    );
    both_ways(
        &Packet::PubComp(PubComp::new(id(10))),
        V311,
        &[0x70, 0x02, 0x00, 0x0A],
    );
    both_ways(&Packet::PingResp, V311, &[0xD0, 0x00]);
    both_ways(
        &Packet::Disconnect(Disconnect::default()),
        V311,
        &[0xE0, 0x00],
    );
}

#[test]
fn acks_v5_short_and_long_forms() {
    let ok = Packet::PubAck(PubAck::new(id(10)));
    both_ways(&ok, V5, &[0x40, 0x02, 0x00, 0x0A]);
    // Success written out in full (reason + empty properties) also decodes.
    assert_eq!(
        decode_all(&[0x40, 0x04, 0x00, 0x0A, 0x00, 0x00], Some(V5)),
        ok
    );
    assert_eq!(decode_all(&[0x40, 0x03, 0x00, 0x0A, 0x00], Some(V5)), ok);
    let mut rec = PubRec::new(id(10));
    rec.reason = ReasonCode::NO_MATCHING_SUBSCRIBERS;
    both_ways(
        &Packet::PubRec(rec.clone()),
        V5,
        &[0x50, 0x03, 0x00, 0x0A, 0x10],
    );
    rec.properties.reason_string = Some("r".into());
    both_ways(
        &Packet::PubRec(rec),
        V5,
        &[0x50, 0x08, 0x00, 0x0A, 0x10, 0x04, 0x1F, 0x00, 0x01, b'r'],
    );
    let mut comp = PubComp::new(id(3));
    comp.reason = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
    both_ways(&Packet::PubComp(comp), V5, &[0x70, 0x03, 0x00, 0x03, 0x92]);
}

#[test]
fn disconnect_and_auth_v5() {
    both_ways(
        &Packet::Disconnect(Disconnect::default()),
        V5,
        &[0xE0, 0x00],
    );
    let will = Disconnect {
        reason: ReasonCode::DISCONNECT_WITH_WILL,
        ..Default::default()
    };
    both_ways(&Packet::Disconnect(will), V5, &[0xE0, 0x01, 0x04]);
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(0);
    both_ways(
        &Packet::Disconnect(d),
        V5,
        &[0xE0, 0x07, 0x00, 0x05, 0x11, 0, 0, 0, 0],
    );
    both_ways(&Packet::Auth(Auth::default()), V5, &[0xF0, 0x00]);
    let cont = Auth {
        reason: ReasonCode::CONTINUE_AUTHENTICATION,
        properties: AuthProperties {
            authentication_method: Some("m".into()),
            ..Default::default()
        },
    };
    both_ways(
        &Packet::Auth(cont),
        V5,
        &[0xF0, 0x06, 0x18, 0x04, 0x15, 0x00, 0x01, b'm'],
    );
}

/// MQTT 3.1.1 §3.8.3 example: "a/b" QoS 1 and "c/d" QoS 2, packet id 10.
#[test]
fn subscribe_and_suback() {
    let sub = Packet::Subscribe(Subscribe {
        packet_id: id(10),
        properties: SubscribeProperties::default(),
        filters: vec![
            Subscription {
                filter: filter("a/b"),
                options: SubscriptionOptions::qos(QoS::AtLeastOnce),
            },
            Subscription {
                filter: filter("c/d"),
                options: SubscriptionOptions::qos(QoS::ExactlyOnce),
            },
        ],
    });
    let body = [
        0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'b', 0x01, 0x00, 0x03, b'c', b'/', b'd', 0x02,
    ];
    let mut v311 = vec![0x82, 0x0E];
    v311.extend_from_slice(&body);
    both_ways(&sub, V311, &v311);
    // 5.0 inserts an empty property list after the packet id.
    let mut v5 = vec![0x82, 0x0F, 0x00, 0x0A, 0x00];
    v5.extend_from_slice(&body[2..]);
    both_ways(&sub, V5, &v5);
    // All 5.0 option bits: QoS 1, No Local, Retain As Published, Retain Handling 2.
    let opts = Packet::Subscribe(Subscribe {
        packet_id: id(1),
        properties: SubscribeProperties {
            subscription_identifier: std::num::NonZeroU32::new(5),
            user_properties: vec![],
        },
        filters: vec![Subscription {
            filter: filter("+/x/#"),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        }],
    });
    both_ways(
        &opts,
        V5,
        &[
            0x82, 0x0D, 0x00, 0x01, 0x02, 0x0B, 0x05, 0x00, 0x05, b'+', b'/', b'x', b'/', b'#',
            0x2D,
        ],
    );
    let suback = Packet::SubAck(SubAck {
        packet_id: id(10),
        properties: AckProperties::default(),
        reason_codes: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::V3_SUBACK_FAILURE],
    });
    both_ways(&suback, V311, &[0x90, 0x04, 0x00, 0x0A, 0x01, 0x80]);
    both_ways(&suback, V5, &[0x90, 0x05, 0x00, 0x0A, 0x00, 0x01, 0x80]);
}

#[test]
fn unsubscribe_and_unsuback() {
    let unsub = Packet::Unsubscribe(Unsubscribe {
        packet_id: id(10),
        properties: UnsubscribeProperties::default(),
        filters: vec![filter("a/b")],
    });
    both_ways(
        &unsub,
        V311,
        &[0xA2, 0x07, 0x00, 0x0A, 0x00, 0x03, b'a', b'/', b'b'],
    );
    both_ways(
        &unsub,
        V5,
        &[0xA2, 0x08, 0x00, 0x0A, 0x00, 0x00, 0x03, b'a', b'/', b'b'],
    );
    let ack = UnsubAck {
        packet_id: id(10),
        properties: AckProperties::default(),
        reason_codes: vec![],
    };
    both_ways(
        &Packet::UnsubAck(ack.clone()),
        V311,
        &[0xB0, 0x02, 0x00, 0x0A],
    );
    let ack5 = UnsubAck {
        reason_codes: vec![ReasonCode::NO_SUBSCRIPTION_EXISTED],
        ..ack
    };
    both_ways(
        &Packet::UnsubAck(ack5),
        V5,
        &[0xB0, 0x04, 0x00, 0x0A, 0x00, 0x11],
    );
}

#[test]
fn v311_encoding_drops_v5_parts() {
    let mut ack = PubAck::new(id(1));
    ack.reason = ReasonCode::QUOTA_EXCEEDED;
    ack.properties.reason_string = Some("x".into());
    assert_eq!(
        &common::wire(&Packet::PubAck(ack), V311)[..],
        &[0x40, 0x02, 0x00, 0x01]
    );
    let d = Disconnect {
        reason: ReasonCode::SERVER_SHUTTING_DOWN,
        ..Default::default()
    };
    assert_eq!(
        &common::wire(&Packet::Disconnect(d), V311)[..],
        &[0xE0, 0x00]
    );
    assert_eq!(
        encode(&Packet::Auth(Auth::default()), V311, &mut BytesMut::new()),
        Err(EncodeError::AuthInV311)
    );
}

#[test]
fn encode_errors_write_nothing() {
    let mut dst = BytesMut::from(&b"keep"[..]);
    let mut bad = Publish::new(name("a"), Bytes::new());
    bad.qos = QoS::AtLeastOnce; // no packet id
    assert_eq!(
        encode(&Packet::Publish(bad), V5, &mut dst),
        Err(EncodeError::PublishIdMismatch)
    );
    let mut c = Connect::new(V311, "c", 0);
    c.password = Some(Bytes::from_static(b"p"));
    assert_eq!(
        encode(&Packet::Connect(c.clone()), V311, &mut dst),
        Err(EncodeError::PasswordWithoutUsername)
    );
    c.version = V5;
    assert!(
        encode(&Packet::Connect(c), V5, &mut BytesMut::new()).is_ok(),
        "5.0 allows it"
    );
    let mut s = Connect::new(V311, "nul\0", 0);
    assert_eq!(
        encode(&Packet::Connect(s.clone()), V311, &mut dst),
        Err(EncodeError::NulInString)
    );
    s.client_id = "x".repeat(65_536);
    assert_eq!(
        encode(&Packet::Connect(s), V311, &mut dst),
        Err(EncodeError::FieldTooLong(65_536))
    );
    let empty = Publish::new(TopicName::empty(), Bytes::new());
    assert_eq!(
        encode(&Packet::Publish(empty), V5, &mut dst),
        Err(EncodeError::EmptyTopic)
    );
    let mut ca = ConnAck::default();
    ca.properties.maximum_qos = Some(QoS::ExactlyOnce);
    assert_eq!(
        encode(&Packet::ConnAck(ca), V5, &mut dst),
        Err(EncodeError::BadPropertyValue(0x24))
    );
    assert_eq!(&dst[..], b"keep");
}
