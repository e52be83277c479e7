//! A clean MQTT session's queue is direct: no queue task between publishers and the
//! subscriber's connection (RabbitMQ's MQTT QoS 0 queue type). What that must not change:
//! at-least-once messages to a client that stops reading are kept (and counted against the
//! memory alarm until written); what it adds: at-most-once messages to such a client are
//! dropped once it is behind on a busy socket, and only its own.

use bytes::Bytes;
use lapin::types::FieldTable;
use protocol_mqtt::{Connect, Packet, PacketId, ProtocolVersion, PubAck, Publish, QoS, TopicName};
use tests::TestBroker;
use tests::amqp::{bind_queue, consume, declare_queue, open_channel};
use tests::api::Api;
use tests::mqtt::RawMqtt;

/// Big enough that a few thousand fill any socket buffer loopback will grant.
const BODY: usize = 32 * 1024;

fn body(seq: u64) -> Bytes {
    sized_body(seq, BODY)
}

fn sized_body(seq: u64, size: usize) -> Bytes {
    let mut b = vec![0u8; size];
    b[..8].copy_from_slice(&seq.to_be_bytes());
    Bytes::from(b)
}

fn seq_of(payload: &[u8]) -> u64 {
    let mut n = [0u8; 8];
    n.copy_from_slice(&payload[..8]);
    u64::from_be_bytes(n)
}

fn publish(topic: &str, qos: QoS, id: Option<u16>, payload: Bytes) -> Packet {
    let mut p = Publish::new(TopicName::new(topic).expect("topic"), payload);
    p.qos = qos;
    p.packet_id = id.and_then(PacketId::new);
    Packet::Publish(p)
}

async fn raw_client(broker: &TestBroker, id: &str) -> RawMqtt {
    let connect = Connect::new(ProtocolVersion::V311, id, 0);
    let (raw, answer) = RawMqtt::connect(broker.mqtt_addr(), connect)
        .await
        .expect("connect");
    assert!(
        matches!(answer, Packet::ConnAck(ref a) if a.code.0 == 0),
        "CONNACK: {answer:?}"
    );
    raw
}

/// The next PUBLISH from the broker.
async fn next_publish(raw: &mut RawMqtt) -> Publish {
    match raw.recv().await.expect("read") {
        Some(Packet::Publish(p)) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

async fn queue(api: &Api, name: &str) -> serde_json::Value {
    api.get(&format!("/api/queues/%2F/{name}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_loses_only_its_own_qos0_messages() {
    // More than the 10,000 deliveries a subscriber may be behind on a busy socket, plus what
    // the socket buffers hold.
    const FLOOD: u64 = 16_000;
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    // A lossless observer of the same messages: an AMQP queue bound to the same topics.
    let amqp = tests::connect_to(broker.addr()).await.expect("AMQP");
    let ch = open_channel(&amqp).await;
    declare_queue(&ch, "observer").await;
    bind_queue(
        &ch,
        "observer",
        "amq.topic",
        "flood.#",
        FieldTable::default(),
    )
    .await;
    let mut observer = consume(&ch, "observer").await;

    // Takes the flood at QoS 0 and a sentinel at QoS 1, and reads nothing for now.
    let mut stuck = raw_client(&broker, "stuck").await;
    stuck
        .subscribe(&[("flood/#", QoS::AtMostOnce), ("sentinel", QoS::AtLeastOnce)])
        .await
        .expect("subscribe");
    let q = queue(&api, "mqtt-subscription-stuck").await;
    assert_eq!(q["type"], "mqtt-direct", "a clean session's queue: {q}");

    let mut publisher = raw_client(&broker, "flooder").await;
    for seq in 0..FLOOD {
        publisher
            .send(&publish(
                "flood/x",
                QoS::AtMostOnce,
                None,
                sized_body(seq, 4096),
            ))
            .await
            .expect("publish");
    }
    for seq in 0..FLOOD {
        let d = tests::next_delivery(&mut observer).await;
        assert_eq!(seq_of(&d.data), seq, "the observer gets every message");
        tests::amqp::ack(&d).await;
    }
    // At least once: never dropped, and behind everything before it.
    publisher
        .send(&publish("sentinel", QoS::AtLeastOnce, Some(1), body(FLOOD)))
        .await
        .expect("publish the sentinel");
    assert!(matches!(
        publisher.recv().await.expect("read"),
        Some(Packet::PubAck(_))
    ));

    let mut got = Vec::new();
    loop {
        let p = next_publish(&mut stuck).await;
        if p.topic.as_str() == "sentinel" {
            let id = p.packet_id.expect("QoS 1 has an id");
            stuck
                .send(&Packet::PubAck(PubAck::new(id)))
                .await
                .expect("PUBACK");
            break;
        }
        got.push(seq_of(&p.payload));
    }
    let dropped = queue(&api, "mqtt-subscription-stuck").await["messages_dropped"]
        .as_u64()
        .expect("messages_dropped");
    assert!(
        dropped > 0,
        "a client that did not read for {FLOOD} × 4 KiB lost nothing: {} arrived",
        got.len()
    );
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "what arrives is in order, without duplicates"
    );
    assert_eq!(
        got.len() as u64 + dropped,
        FLOOD,
        "each message arrived or was counted as dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_messages_wait_for_a_subscriber_that_stops_reading() {
    const COUNT: u16 = 1_500;
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    let mut stuck = raw_client(&broker, "slow").await;
    stuck
        .subscribe(&[("q1/#", QoS::AtLeastOnce)])
        .await
        .expect("subscribe");

    let mut publisher = raw_client(&broker, "q1-publisher").await;
    for id in 1..=COUNT {
        publisher
            .send(&publish(
                "q1/x",
                QoS::AtLeastOnce,
                Some(id),
                body(u64::from(id)),
            ))
            .await
            .expect("publish");
    }
    for _ in 1..=COUNT {
        assert!(matches!(
            publisher.recv().await.expect("read"),
            Some(Packet::PubAck(_))
        ));
    }
    for id in 1..=COUNT {
        let p = next_publish(&mut stuck).await;
        assert_eq!(seq_of(&p.payload), u64::from(id), "every message, in order");
        stuck
            .send(&Packet::PubAck(PubAck::new(p.packet_id.expect("QoS 1"))))
            .await
            .expect("PUBACK");
    }
    let q = queue(&api, "mqtt-subscription-slow").await;
    assert_eq!(q["messages_dropped"], 0, "{q}");
    // Held bodies counted against the memory alarm until written: all written now.
    let metrics = api.text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "broker_queued_message_bytes 0"),
        "the memory count is back to nothing: {}",
        metrics
            .lines()
            .find(|l| l.starts_with("broker_queued_message_bytes"))
            .unwrap_or("(no line)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos2_delivery_holds_its_unit_of_the_receive_window_until_pubcomp() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(ProtocolVersion::V5, "window-1", 0);
    connect.properties.receive_maximum = std::num::NonZeroU16::new(1);
    let (mut sub, answer) = RawMqtt::connect(broker.mqtt_addr(), connect)
        .await
        .expect("connect");
    assert!(matches!(answer, Packet::ConnAck(ref a) if a.code.0 == 0));
    sub.subscribe(&[("w/q2", QoS::ExactlyOnce), ("w/q0", QoS::AtMostOnce)])
        .await
        .expect("subscribe");
    let mut publisher = RawMqtt::connect(
        broker.mqtt_addr(),
        Connect::new(ProtocolVersion::V5, "window-pub", 0),
    )
    .await
    .expect("connect")
    .0;
    // QoS 0 messages do not wait for the window: they show what went out meanwhile.
    let send = |topic: &'static str, qos: QoS, id: Option<u16>, seq: u64| {
        publish(topic, qos, id, body(seq))
    };
    for (topic, qos, id, seq) in [
        ("w/q2", QoS::ExactlyOnce, Some(1), 1),
        ("w/q2", QoS::ExactlyOnce, Some(2), 2),
        ("w/q0", QoS::AtMostOnce, None, 100),
    ] {
        publisher
            .send(&send(topic, qos, id, seq))
            .await
            .expect("publish");
    }
    let first = next_publish(&mut sub).await;
    assert_eq!(seq_of(&first.payload), 1);
    assert_eq!(
        seq_of(&next_publish(&mut sub).await.payload),
        100,
        "the second waits"
    );
    let id = first.packet_id.expect("QoS 2");
    sub.send(&Packet::PubRec(protocol_mqtt::PubRec::new(id)))
        .await
        .expect("PUBREC");
    assert!(matches!(
        sub.recv().await.expect("read"),
        Some(Packet::PubRel(_))
    ));
    publisher
        .send(&send("w/q0", QoS::AtMostOnce, None, 101))
        .await
        .expect("publish");
    assert_eq!(
        seq_of(&next_publish(&mut sub).await.payload),
        101,
        "PUBREC does not give the unit back [MQTT-4.9]: the second still waits"
    );
    sub.send(&Packet::PubComp(protocol_mqtt::PubComp::new(id)))
        .await
        .expect("PUBCOMP");
    assert_eq!(
        seq_of(&next_publish(&mut sub).await.payload),
        2,
        "PUBCOMP does"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amqp_delete_if_unused_leaves_a_connected_clean_session_alone() {
    let broker = TestBroker::start().await;
    let mut sub = raw_client(&broker, "kept").await;
    sub.subscribe(&[("kept/t", QoS::AtMostOnce)])
        .await
        .expect("subscribe");
    let amqp = tests::connect_to(broker.addr()).await.expect("AMQP");
    let ch = open_channel(&amqp).await;
    let refused = ch
        .queue_delete(
            "mqtt-subscription-kept".into(),
            lapin::options::QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        )
        .await
        .expect_err("the session is in use");
    assert_eq!(tests::reply_code(&refused), Some(406), "{refused}");
    let mut publisher = raw_client(&broker, "kept-pub").await;
    publisher
        .send(&publish("kept/t", QoS::AtMostOnce, None, body(7)))
        .await
        .expect("publish");
    assert_eq!(seq_of(&next_publish(&mut sub).await.payload), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_session_gets_its_queue_with_its_first_subscription() {
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    let mut client = raw_client(&broker, "lazy").await;
    let sessions = api.get("/api/mqtt/sessions").await;
    let listed = sessions
        .as_array()
        .and_then(|all| all.iter().find(|s| s["client_id"] == "lazy"))
        .cloned()
        .expect("a connected session is listed before it subscribes");
    assert_eq!(listed["connected"], true, "{listed}");
    assert_eq!(listed["subscriptions"], serde_json::json!([]), "{listed}");
    let (status, _) = api
        .request(
            reqwest::Method::GET,
            "/api/queues/%2F/mqtt-subscription-lazy",
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "no queue yet");
    client
        .subscribe(&[("lazy/t", QoS::AtMostOnce)])
        .await
        .expect("subscribe");
    assert_eq!(
        queue(&api, "mqtt-subscription-lazy").await["type"],
        "mqtt-direct"
    );
}
