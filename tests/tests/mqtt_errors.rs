//! MQTT connection-level errors and lifecycle: refused logins, unsupported
//! protocol levels, a first packet that is not CONNECT, invalid client ids,
//! invalid topic aliases, keep-alive enforcement, session takeover, and when
//! wills are (and are not) published.
//!
//! Cases no client library produces are written as packets (`RawMqtt`, on
//! the `protocol-mqtt` codec) or as hand-made bytes.

use std::time::{Duration, Instant};

use bytes::Bytes;
use protocol_mqtt::{
    Connect, Disconnect, Packet, ProtocolVersion, Publish, PublishProperties, QoS as PQoS,
    ReasonCode, TopicName, Will, WillProperties,
};
use rumqttc::QoS;
use tests::TestBroker;
use tests::mqtt::{RawMqtt, V4Client, V5Client, V5QoS, v4_options, v5_options, v5p};

fn text(payload: &[u8]) -> &str {
    std::str::from_utf8(payload).expect("UTF-8 payload")
}

/// The broker still serves a normal client (publish to itself and receive).
async fn assert_serving(broker: &TestBroker, id: &str) {
    let mut opts = v4_options(broker.mqtt_addr(), id);
    opts.set_credentials("guest", "guest");
    let (mut c, _) = V4Client::connect(opts).await;
    c.subscribe("alive", QoS::AtLeastOnce).await;
    c.publish("alive", QoS::AtLeastOnce, false, "yes").await;
    assert_eq!(text(&c.next_publish().await.payload), "yes");
}

fn will(topic: &str, payload: &'static str) -> Will {
    Will {
        qos: PQoS::AtLeastOnce,
        retain: false,
        properties: WillProperties::default(),
        topic: TopicName::new(topic).expect("topic"),
        payload: Bytes::from_static(payload.as_bytes()),
    }
}

fn expect_connack(packet: &Packet) -> (bool, u8) {
    match packet {
        Packet::ConnAck(ack) => (ack.session_present, ack.code.0),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_and_others_still_served() {
    let broker = TestBroker::start().await;
    let mut opts = v4_options(broker.mqtt_addr(), "bad-v4");
    opts.set_credentials("guest", "wrong");
    match V4Client::try_connect(opts).await {
        Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, rumqttc::ConnectReturnCode::BadUserNamePassword) // 0x04
        }
        Err(e) => panic!("expected CONNACK 0x04, got {e:?}"),
        Ok(_) => panic!("a wrong password was accepted (3.1.1)"),
    }
    let mut opts = v5_options(broker.mqtt_addr(), "bad-v5");
    opts.set_credentials("guest", "wrong");
    match V5Client::try_connect(opts).await {
        Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, v5p::ConnectReturnCode::BadUserNamePassword) // 0x86
        }
        Err(e) => panic!("expected CONNACK 0x86, got {e:?}"),
        Ok(_) => panic!("a wrong password was accepted (5.0)"),
    }
    // Raw, to pin the byte on the wire.
    let mut connect = Connect::new(ProtocolVersion::V311, "bad-raw", 30);
    connect.username = Some("guest".into());
    connect.password = Some(Bytes::from_static(b"nope"));
    let (mut raw, answer) = RawMqtt::connect(broker.mqtt_addr(), connect)
        .await
        .expect("answer");
    assert_eq!(expect_connack(&answer), (false, 0x04));
    assert!(raw.until_closed().await.expect("closed").is_empty());

    assert_serving(&broker, "good").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_protocol_levels_get_connack_1() {
    let broker = TestBroker::start().await;
    let connect = |name: &[u8], level: u8| {
        let mut body = Vec::new();
        body.extend_from_slice(&(name.len() as u16).to_be_bytes());
        body.extend_from_slice(name);
        body.extend_from_slice(&[level, 0x02, 0x00, 0x3c, 0x00, 0x01, b'x']);
        let mut packet = vec![0x10, body.len() as u8];
        packet.extend_from_slice(&body);
        packet
    };
    for (name, level) in [(&b"MQIsdp"[..], 3u8), (&b"MQTT"[..], 6)] {
        let mut raw = RawMqtt::open(broker.mqtt_addr(), ProtocolVersion::V311)
            .await
            .expect("open");
        raw.send_bytes(&connect(name, level)).await.expect("send");
        let packets = raw.until_closed().await.expect("answer, then close");
        assert_eq!(packets.len(), 1, "one CONNACK, then close: {packets:?}");
        assert_eq!(
            expect_connack(&packets[0]),
            (false, 0x01),
            "level {level} must be refused with 0x01"
        );
    }
    assert_serving(&broker, "after-levels").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_packet_not_connect_closes_the_connection() {
    let broker = TestBroker::start().await;
    let mut raw = RawMqtt::open(broker.mqtt_addr(), ProtocolVersion::V311)
        .await
        .expect("open");
    raw.send_bytes(&[0xC0, 0x00]).await.expect("PINGREQ");
    let packets = raw.until_closed().await.expect("closed");
    assert!(
        packets.is_empty(),
        "no answer to a PINGREQ before CONNECT: {packets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_empty_client_id_needs_clean_session() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(ProtocolVersion::V311, "", 30);
    connect.clean_start = false;
    let (mut raw, answer) = RawMqtt::connect(broker.mqtt_addr(), connect)
        .await
        .expect("answer");
    assert_eq!(
        expect_connack(&answer),
        (false, 0x02),
        "identifier rejected"
    );
    assert!(raw.until_closed().await.expect("closed").is_empty());
    // With clean session the empty id is fine.
    let (_raw, answer) = RawMqtt::connect(
        broker.mqtt_addr(),
        Connect::new(ProtocolVersion::V311, "", 30),
    )
    .await
    .expect("answer");
    assert_eq!(expect_connack(&answer), (false, 0x00));
}

async fn expect_disconnect(raw: &mut RawMqtt, code: u8) {
    let packets = raw.until_closed().await.expect("DISCONNECT, then close");
    match packets.as_slice() {
        [Packet::Disconnect(d)] => assert_eq!(d.reason.0, code, "DISCONNECT reason"),
        other => panic!("expected one DISCONNECT {code:#04x}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_invalid_topic_aliases_disconnect_with_0x94() {
    let broker = TestBroker::start().await;
    // Alias 0: not representable in the codec's types, so by hand.
    let (mut raw, answer) = RawMqtt::connect(
        broker.mqtt_addr(),
        Connect::new(ProtocolVersion::V5, "alias0", 30),
    )
    .await
    .expect("answer");
    assert_eq!(expect_connack(&answer).1, 0x00);
    // PUBLISH QoS 0, topic "t", properties {Topic Alias (0x23) = 0}, payload "x".
    raw.send_bytes(&[0x30, 0x08, 0x00, 0x01, b't', 0x03, 0x23, 0x00, 0x00, b'x'])
        .await
        .expect("send");
    expect_disconnect(&mut raw, 0x94).await;

    // Above the advertised maximum.
    let (mut raw, answer) = RawMqtt::connect(
        broker.mqtt_addr(),
        Connect::new(ProtocolVersion::V5, "alias-big", 30),
    )
    .await
    .expect("answer");
    let max = match &answer {
        Packet::ConnAck(ack) => ack
            .properties
            .topic_alias_maximum
            .expect("Topic Alias Maximum"),
        other => panic!("expected CONNACK, got {other:?}"),
    };
    let mut publish = Publish::new(TopicName::new("t").expect("topic"), "x");
    publish.properties = PublishProperties {
        topic_alias: std::num::NonZeroU16::new(max + 1),
        ..PublishProperties::default()
    };
    raw.send(&Packet::Publish(publish)).await.expect("send");
    expect_disconnect(&mut raw, 0x94).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_dropped_after_one_and_a_half_keep_alives_and_its_will_sent() {
    let broker = TestBroker::start().await;
    let (mut watcher, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "watcher")).await;
    watcher.subscribe("will/#", QoS::AtLeastOnce).await;
    let mut connect = Connect::new(ProtocolVersion::V5, "sleepy", 1);
    connect.will = Some(will("will/sleepy", "gone"));
    let (mut raw, answer) = RawMqtt::connect(broker.mqtt_addr(), connect)
        .await
        .expect("answer");
    let connected = Instant::now();
    assert_eq!(expect_connack(&answer).1, 0x00);
    expect_disconnect(&mut raw, 0x8D).await; // Keep alive timeout
    let elapsed = connected.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400) && elapsed <= Duration::from_secs(3),
        "keep-alive 1 s: disconnected after {elapsed:?}, expected ~1.5 s"
    );
    let got = watcher.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), text(&got.payload)),
        ("will/sleepy", "gone")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connection_with_same_id_takes_over() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    // 5.0: the first connection is told why.
    let (mut first, answer) =
        RawMqtt::connect(addr, Connect::new(ProtocolVersion::V5, "twin5", 30))
            .await
            .expect("answer");
    assert_eq!(expect_connack(&answer).1, 0x00);
    let (mut second, _) = V5Client::connect(v5_options(addr, "twin5")).await;
    expect_disconnect(&mut first, 0x8E).await; // Session taken over
    second.subscribe("twin", V5QoS::AtLeastOnce).await;
    second
        .publish("twin", V5QoS::AtLeastOnce, false, "ok")
        .await;
    assert_eq!(text(&second.next_publish().await.payload), "ok");

    // 3.1.1: the first connection is closed.
    let (mut first, _) = V4Client::connect(v4_options(addr, "twin4")).await;
    let (mut second, _) = V4Client::connect(v4_options(addr, "twin4")).await;
    first.closed().await;
    second.subscribe("twin4", QoS::AtLeastOnce).await;
    second.publish("twin4", QoS::AtLeastOnce, false, "ok").await;
    assert_eq!(text(&second.next_publish().await.payload), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_sent_on_abnormal_disconnect_only() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut watcher, _) = V4Client::connect(v4_options(addr, "watcher")).await;
    watcher.subscribe("will/#", QoS::AtLeastOnce).await;
    let with_will = |id: &str| {
        let mut opts = v4_options(addr, id);
        opts.set_last_will(rumqttc::LastWill::new(
            format!("will/{id}"),
            "bye",
            QoS::AtLeastOnce,
            false,
        ));
        opts
    };

    // Clean DISCONNECT: the will is discarded.
    let (polite, _) = V4Client::connect(with_will("polite")).await;
    polite.disconnect().await;
    // 5.0 DISCONNECT with reason 0x04: the will is sent anyway.
    let mut connect = Connect::new(ProtocolVersion::V5, "asks", 30);
    connect.will = Some(will("will/asks", "bye"));
    let (mut raw, _) = RawMqtt::connect(addr, connect).await.expect("answer");
    raw.send(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::DISCONNECT_WITH_WILL,
        properties: Default::default(),
    }))
    .await
    .expect("DISCONNECT 0x04");
    let got = watcher.next_publish().await;
    assert_eq!(
        got.topic, "will/asks",
        "the clean DISCONNECT published its will"
    );
    // Socket dropped without DISCONNECT: the will is sent.
    let (rude, _) = V4Client::connect(with_will("rude")).await;
    drop(rude);
    let got = watcher.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), text(&got.payload)),
        ("will/rude", "bye")
    );
    watcher.assert_no_publish(Duration::from_millis(200)).await;
}
