//! Differential test against rumqttc's MQTT 3.1.1 codec
//! (`rumqttc::mqttbytes::v4`): for each representative packet, rumqttc's
//! bytes decode to our value, and our bytes decode to rumqttc's value.
//!
//! Known rumqttc deviations (we follow the spec, not rumqttc):
//! - it reads the CONNECT password as a UTF-8 string (the spec says binary
//!   data) and drops an empty user name/password altogether, so only
//!   non-empty UTF-8 credentials are compared;
//! - its size limit applies to the remaining length, ours to the whole
//!   packet (as 5.0's Maximum Packet Size does), so both sides use a large
//!   limit here.

use bytes::{Bytes, BytesMut};
use protocol_mqtt as ours;
use protocol_mqtt::{PacketId, ProtocolVersion, QoS, ReasonCode, TopicFilter, TopicName};
use rumqttc::mqttbytes::QoS as TQoS;
use rumqttc::mqttbytes::v4 as theirs;

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

fn publish(
    qos: QoS,
    dup: bool,
    retain: bool,
    pkid: u16,
    topic: &str,
    payload: &'static [u8],
) -> (ours::Packet, theirs::Packet) {
    let tqos = match qos {
        QoS::AtMostOnce => TQoS::AtMostOnce,
        QoS::AtLeastOnce => TQoS::AtLeastOnce,
        QoS::ExactlyOnce => TQoS::ExactlyOnce,
    };
    let mut t = theirs::Publish::from_bytes(topic, tqos, Bytes::from_static(payload));
    t.dup = dup;
    t.retain = retain;
    t.pkid = pkid;
    let o = ours::Publish {
        dup,
        qos,
        retain,
        topic: name(topic),
        packet_id: PacketId::new(pkid),
        properties: Default::default(),
        payload: Bytes::from_static(payload),
    };
    (ours::Packet::Publish(o), theirs::Packet::Publish(t))
}

fn cases() -> Vec<(ours::Packet, theirs::Packet)> {
    let full_connect = {
        let mut t = theirs::Connect::new("client-1");
        t.keep_alive = 30;
        t.clean_session = false;
        t.last_will = Some(theirs::LastWill::new(
            "will/t",
            "gone",
            TQoS::AtLeastOnce,
            true,
        ));
        t.set_login("user", "pass");
        let o = ours::Connect {
            version: ProtocolVersion::V311,
            clean_start: false,
            keep_alive: 30,
            properties: Default::default(),
            client_id: "client-1".into(),
            will: Some(ours::Will {
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Default::default(),
                topic: name("will/t"),
                payload: Bytes::from_static(b"gone"),
            }),
            username: Some("user".into()),
            password: Some(Bytes::from_static(b"pass")),
        };
        (ours::Packet::Connect(o), theirs::Packet::Connect(t))
    };
    let minimal_connect = {
        let mut t = theirs::Connect::new("");
        t.keep_alive = 0;
        (
            ours::Packet::Connect(ours::Connect::new(ProtocolVersion::V311, "", 0)),
            theirs::Packet::Connect(t),
        )
    };
    let connack = |present: bool, code: u8, tcode| {
        (
            ours::Packet::ConnAck(ours::ConnAck {
                session_present: present,
                code: ReasonCode(code),
                properties: Default::default(),
            }),
            theirs::Packet::ConnAck(theirs::ConnAck::new(tcode, present)),
        )
    };
    vec![
        full_connect,
        minimal_connect,
        connack(true, 0, theirs::ConnectReturnCode::Success),
        connack(false, 1, theirs::ConnectReturnCode::RefusedProtocolVersion),
        connack(false, 5, theirs::ConnectReturnCode::NotAuthorized),
        publish(QoS::AtMostOnce, false, true, 0, "a/b", b"zero"),
        publish(QoS::AtLeastOnce, true, false, 7, "a/b/c", b""),
        publish(QoS::ExactlyOnce, false, false, 65535, "$SYS/x", b"two"),
        (
            ours::Packet::PubAck(ours::PubAck::new(id(10))),
            theirs::Packet::PubAck(theirs::PubAck::new(10)),
        ),
        (
            ours::Packet::PubRec(ours::PubRec::new(id(11))),
            theirs::Packet::PubRec(theirs::PubRec::new(11)),
        ),
        (
            ours::Packet::PubRel(ours::PubRel::new(id(12))),
            theirs::Packet::PubRel(theirs::PubRel::new(12)),
        ),
        (
            ours::Packet::PubComp(ours::PubComp::new(id(13))),
            theirs::Packet::PubComp(theirs::PubComp::new(13)),
        ),
        (
            ours::Packet::Subscribe(ours::Subscribe {
                packet_id: id(3),
                properties: Default::default(),
                filters: vec![
                    ours::Subscription {
                        filter: filter("a/+/c"),
                        options: ours::SubscriptionOptions::qos(QoS::AtLeastOnce),
                    },
                    ours::Subscription {
                        filter: filter("#"),
                        options: ours::SubscriptionOptions::qos(QoS::ExactlyOnce),
                    },
                ],
            }),
            theirs::Packet::Subscribe(theirs::Subscribe {
                pkid: 3,
                filters: vec![
                    theirs::SubscribeFilter::new("a/+/c".into(), TQoS::AtLeastOnce),
                    theirs::SubscribeFilter::new("#".into(), TQoS::ExactlyOnce),
                ],
            }),
        ),
        (
            ours::Packet::SubAck(ours::SubAck {
                packet_id: id(3),
                properties: Default::default(),
                reason_codes: vec![ReasonCode::GRANTED_QOS_1, ReasonCode::V3_SUBACK_FAILURE],
            }),
            theirs::Packet::SubAck(theirs::SubAck::new(
                3,
                vec![
                    theirs::SubscribeReasonCode::Success(TQoS::AtLeastOnce),
                    theirs::SubscribeReasonCode::Failure,
                ],
            )),
        ),
        (
            ours::Packet::Unsubscribe(ours::Unsubscribe {
                packet_id: id(4),
                properties: Default::default(),
                filters: vec![filter("a/b"), filter("c/#")],
            }),
            theirs::Packet::Unsubscribe(theirs::Unsubscribe {
                pkid: 4,
                topics: vec!["a/b".into(), "c/#".into()],
            }),
        ),
        (
            ours::Packet::UnsubAck(ours::UnsubAck {
                packet_id: id(4),
                properties: Default::default(),
                reason_codes: vec![],
            }),
            theirs::Packet::UnsubAck(theirs::UnsubAck::new(4)),
        ),
        (ours::Packet::PingReq, theirs::Packet::PingReq),
        (ours::Packet::PingResp, theirs::Packet::PingResp),
        (
            ours::Packet::Disconnect(ours::Disconnect::default()),
            theirs::Packet::Disconnect,
        ),
    ]
}

#[test]
fn rumqttc_bytes_decode_to_our_packets() {
    for (o, t) in cases() {
        let mut buf = BytesMut::new();
        t.write(&mut buf, MAX).expect("rumqttc write");
        let version = match o {
            ours::Packet::Connect(_) => None,
            _ => Some(ProtocolVersion::V311),
        };
        let decoded = ours::decode(&mut buf, version, MAX)
            .expect("our decode")
            .expect("whole");
        assert_eq!(decoded, o, "{}", o.name());
        assert!(buf.is_empty());
    }
}

#[test]
fn our_bytes_decode_to_rumqttc_packets() {
    for (o, t) in cases() {
        let mut buf = BytesMut::new();
        ours::encode(&o, ProtocolVersion::V311, &mut buf).expect("our encode");
        let mut theirs_buf = BytesMut::new();
        t.write(&mut theirs_buf, MAX).expect("rumqttc write");
        assert_eq!(buf, theirs_buf, "same bytes for {}", o.name());
        let decoded = theirs::Packet::read(&mut buf, MAX).expect("rumqttc read");
        assert_eq!(decoded, t, "{}", o.name());
    }
}
