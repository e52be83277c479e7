//! MQTT 5.0 flow-control and metadata features end to end: Message Expiry
//! Interval on offline sessions, Receive Maximum in both directions, Maximum
//! Packet Size in both directions, Will Delay Interval, Payload Format
//! Indicator and Content Type, and topic aliases towards the client.
//! (Subscription identifiers on overlapping subscriptions are covered in
//! `mqtt_basic.rs`.)
//!
//! Packet-level details (aliases on the wire, exact DISCONNECT reasons, a
//! client that never releases its QoS 2 publishes) use `RawMqtt`; the rest
//! uses rumqttc. Absence of a delivery is shown with a sentinel published
//! afterwards wherever order makes that conclusive. Three places need a
//! bounded wait instead, each commented: the broker's expiry clocks (message
//! expiry, will delay) have nothing a client can await, and a held-back
//! delivery under Receive Maximum has nothing behind it that could overtake.

use std::num::{NonZeroU16, NonZeroU32};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use protocol_mqtt::{
    Connect, ConnectProperties, Packet, PacketId, ProtocolVersion, PubAck, PubComp, PubRec,
    Publish, QoS as PQoS, Subscribe, SubscribeProperties, Subscription, SubscriptionOptions,
    TopicFilter, TopicName, Will, WillProperties,
};
use tests::TestBroker;
use tests::mqtt::{RawMqtt, V5Client, V5QoS, v5_options, v5p};

fn text(payload: &[u8]) -> &str {
    std::str::from_utf8(payload).expect("UTF-8 payload")
}

fn topic(name: &str) -> TopicName {
    TopicName::new(name).expect("topic")
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("non-zero packet id")
}

/// Opens a 5.0 raw connection with `connect` and checks the CONNACK accepts
/// it; returns the connection and the CONNACK properties.
async fn raw_connect(
    broker: &TestBroker,
    connect: Connect,
) -> (RawMqtt, protocol_mqtt::ConnAckProperties) {
    let (raw, answer) = RawMqtt::connect(broker.mqtt_addr(), connect)
        .await
        .expect("CONNACK");
    match answer {
        Packet::ConnAck(ack) if ack.code.0 == 0 => (raw, ack.properties),
        other => panic!("expected a successful CONNACK, got {other:?}"),
    }
}

/// SUBSCRIBE one filter on a raw connection and wait for its SUBACK.
async fn raw_subscribe(raw: &mut RawMqtt, filter: &str, qos: PQoS) {
    raw.send(&Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: SubscribeProperties::default(),
        filters: vec![Subscription {
            filter: TopicFilter::new(filter).expect("filter"),
            options: SubscriptionOptions::qos(qos),
        }],
    }))
    .await
    .expect("send SUBSCRIBE");
    match raw.recv().await.expect("read") {
        Some(Packet::SubAck(a)) => assert_eq!(a.reason_codes[0].0, qos.as_u8(), "granted QoS"),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// The next packet on a raw connection, which must be a PUBLISH.
async fn raw_publish(raw: &mut RawMqtt) -> Publish {
    match raw.recv().await.expect("read") {
        Some(Packet::Publish(p)) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// Reads until the broker closes; the last packet must be a DISCONNECT with
/// `code`. Returns the packets before it.
async fn until_disconnect(raw: &mut RawMqtt, code: u8) -> Vec<Packet> {
    let mut packets = raw.until_closed().await.expect("packets, then close");
    match packets.pop() {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason.0, code, "DISCONNECT reason"),
        other => panic!("expected DISCONNECT {code:#04x} last, got {other:?}"),
    }
    packets
}

fn props(p: &v5p::Publish) -> v5p::PublishProperties {
    p.properties.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_expiry_on_an_offline_session() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let session = || {
        let mut opts = v5_options(addr, "expiry-sub");
        opts.set_clean_start(false);
        opts.set_session_expiry_interval(Some(60));
        opts
    };
    let (mut sub, _) = V5Client::connect(session()).await;
    sub.subscribe("mexp/#", V5QoS::AtLeastOnce).await;
    sub.disconnect().await;

    let (mut publ, _) = V5Client::connect(v5_options(addr, "expiry-pub")).await;
    let expiring = |secs| v5p::PublishProperties {
        message_expiry_interval: Some(secs),
        ..Default::default()
    };
    publ.publish_with("mexp/t", V5QoS::AtLeastOnce, false, "short", expiring(1))
        .await;
    publ.publish_with("mexp/t", V5QoS::AtLeastOnce, false, "long", expiring(60))
        .await;
    publ.publish("mexp/t", V5QoS::AtLeastOnce, false, "sentinel")
        .await;
    // Expiry is a clock inside the broker that no client can await: wait
    // past the 1 s interval (the PUBACKs above mean the clock has started).
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let (mut sub, ack) = V5Client::connect(session()).await;
    assert!(ack.session_present, "the session was kept");
    // Delivery keeps the publish order, so "short" would come first.
    let got = sub.next_publish().await;
    assert_eq!(
        text(&got.payload),
        "long",
        "the expired message was delivered"
    );
    let remaining = props(&got)
        .message_expiry_interval
        .expect("the delivery carries the remaining expiry interval");
    assert!(
        (50..60).contains(&remaining),
        "remaining expiry {remaining}: must be the 60 s minus the ≥ 1.2 s spent waiting"
    );
    let got = sub.next_publish().await;
    assert_eq!(text(&got.payload), "sentinel");
    assert_eq!(props(&got).message_expiry_interval, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_maximum_limits_unacknowledged_deliveries() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let mut opts = v5_options(addr, "rm-sub");
    opts.set_receive_maximum(Some(2));
    opts.set_manual_acks(true);
    let (mut sub, _) = V5Client::connect(opts).await;
    sub.subscribe("rm/t", V5QoS::AtLeastOnce).await;
    let (mut publ, _) = V5Client::connect(v5_options(addr, "rm-pub")).await;
    for i in 0..4 {
        publ.publish("rm/t", V5QoS::AtLeastOnce, false, format!("m{i}"))
            .await;
    }
    let m0 = sub.next_publish().await;
    let m1 = sub.next_publish().await;
    assert_eq!((text(&m0.payload), text(&m1.payload)), ("m0", "m1"));
    // Everything queued behind the window is held back too, so nothing can
    // serve as a sentinel here: a short quiet period it is.
    sub.assert_no_publish(Duration::from_millis(300)).await;
    within_ack(&sub, &m0).await;
    let m2 = sub.next_publish().await;
    assert_eq!(text(&m2.payload), "m2", "one ack opens one slot");
    sub.assert_no_publish(Duration::from_millis(300)).await;
    within_ack(&sub, &m1).await;
    within_ack(&sub, &m2).await;
    assert_eq!(text(&sub.next_publish().await.payload), "m3");
}

/// Publishes `count` retained QoS 1 messages `r0`, `r1`, … on `prefix/0`, `prefix/1`, …, then
/// connects a raw 5.0 subscriber with Receive Maximum `window` (a persistent session if
/// `expiry` is given). Returns the publisher and the subscriber.
async fn retained_then_a_narrow_subscriber(
    broker: &TestBroker,
    prefix: &str,
    count: u16,
    window: u16,
    expiry: Option<u32>,
) -> (V5Client, RawMqtt) {
    let (mut publ, _) =
        V5Client::connect(v5_options(broker.mqtt_addr(), &format!("{prefix}-pub"))).await;
    for i in 0..count {
        let topic = format!("{prefix}/{i}");
        publ.publish(&topic, V5QoS::AtLeastOnce, true, format!("r{i}"))
            .await;
    }
    let mut connect = Connect::new(ProtocolVersion::V5, format!("{prefix}-sub"), 0);
    connect.properties.receive_maximum = NonZeroU16::new(window);
    connect.properties.session_expiry_interval = expiry;
    let (sub, _) = raw_connect(broker, connect).await;
    (publ, sub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_for_a_new_subscription_wait_for_the_receive_window() {
    // [MQTT-3.3.4-9]: no more unacknowledged QoS 1/2 PUBLISHes than the client's Receive
    // Maximum, retained messages sent at SUBSCRIBE included.
    let broker = TestBroker::start().await;
    let (_publ, mut sub) = retained_then_a_narrow_subscriber(&broker, "rw", 4, 2, None).await;
    raw_subscribe(&mut sub, "rw/#", PQoS::AtLeastOnce).await;
    let next = async |sub: &mut RawMqtt| match sub.recv().await.expect("read") {
        Some(Packet::Publish(p)) => {
            assert!(p.retain && p.qos == PQoS::AtLeastOnce, "{p:?}");
            (
                p.packet_id.expect("QoS 1 has an id"),
                p.topic.as_str().to_string(),
            )
        }
        other => panic!("expected PUBLISH, got {other:?}"),
    };
    // The broker writes what it sends for a SUBSCRIBE before it reads the next packet: a
    // third PUBLISH would come before the PINGRESP.
    let pong = async |sub: &mut RawMqtt| {
        sub.send(&Packet::PingReq).await.expect("PINGREQ");
        match sub.recv().await.expect("read") {
            Some(Packet::PingResp) => {}
            other => panic!("expected PINGRESP (the window is full), got {other:?}"),
        }
    };
    let (a, ta) = next(&mut sub).await;
    let (b, tb) = next(&mut sub).await;
    pong(&mut sub).await;
    sub.send(&Packet::PubAck(PubAck::new(a)))
        .await
        .expect("PUBACK");
    let (c, tc) = next(&mut sub).await;
    pong(&mut sub).await;
    for id in [b, c] {
        sub.send(&Packet::PubAck(PubAck::new(id)))
            .await
            .expect("PUBACK");
    }
    let (d, td) = next(&mut sub).await;
    sub.send(&Packet::PubAck(PubAck::new(d)))
        .await
        .expect("PUBACK");
    pong(&mut sub).await;
    let mut topics = vec![ta, tb, tc, td];
    topics.sort();
    assert_eq!(topics, ["rw/0", "rw/1", "rw/2", "rw/3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_retained_messages_go_before_newer_ones_and_a_new_subscribe_replaces_them() {
    // A persistent session: its live messages come from a queue task sharing the window.
    let broker = TestBroker::start().await;
    let (mut publ, mut sub) =
        retained_then_a_narrow_subscriber(&broker, "ro", 3, 1, Some(60)).await;
    let next = async |sub: &mut RawMqtt| match sub.recv().await.expect("read") {
        Some(Packet::Publish(p)) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    };
    raw_subscribe(&mut sub, "ro/#", PQoS::AtLeastOnce).await;
    let first = next(&mut sub).await;
    assert!(first.retain);
    // Again, with the window full: the two left waiting are replaced by this one's three
    // (no SUBSCRIBE doubles what waits), and its SUBACK comes first.
    raw_subscribe(&mut sub, "ro/#", PQoS::AtLeastOnce).await;
    // A newer message on one of the topics, queued in the session meanwhile.
    publ.publish("ro/1", V5QoS::AtLeastOnce, false, "live")
        .await;
    let mut got = Vec::new();
    let mut id = first.packet_id.expect("QoS 1");
    for _ in 0..4 {
        sub.send(&Packet::PubAck(PubAck::new(id)))
            .await
            .expect("PUBACK");
        let p = next(&mut sub).await;
        id = p.packet_id.expect("QoS 1");
        got.push((
            p.topic.as_str().to_string(),
            p.retain,
            text(&p.payload).to_string(),
        ));
    }
    let want = |t: &str, retain: bool, body: &str| (t.to_string(), retain, body.to_string());
    assert_eq!(
        got,
        [
            want("ro/0", true, "r0"),
            want("ro/1", true, "r1"),
            want("ro/2", true, "r2"),
            want("ro/1", false, "live"),
        ],
        "the retained messages waiting for the window, in order, then the newer message"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_qos2_delivery_counts_against_the_window_until_pubcomp() {
    // [MQTT-4.9.0-2]: a QoS 2 PUBLISH counts against Receive Maximum until its PUBCOMP, also
    // one from a persistent session's queue, which lets go of the message at PUBREC.
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(ProtocolVersion::V5, "q2w-sub", 0);
    connect.properties.receive_maximum = NonZeroU16::new(1);
    connect.properties.session_expiry_interval = Some(60);
    let (mut sub, _) = raw_connect(&broker, connect).await;
    raw_subscribe(&mut sub, "q2w/t", PQoS::ExactlyOnce).await;
    let (mut publ, _) = V5Client::connect(v5_options(broker.mqtt_addr(), "q2w-pub")).await;
    for body in ["one", "two"] {
        publ.publish("q2w/t", V5QoS::ExactlyOnce, false, body).await;
    }
    let first = match sub.recv().await.expect("read") {
        Some(Packet::Publish(p)) => p,
        other => panic!("expected PUBLISH, got {other:?}"),
    };
    assert_eq!(text(&first.payload), "one");
    let id = first.packet_id.expect("QoS 2");
    sub.send(&Packet::PubRec(PubRec::new(id)))
        .await
        .expect("PUBREC");
    match sub.recv().await.expect("read") {
        Some(Packet::PubRel(r)) => assert_eq!(r.packet_id, id),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    // Round trips to the session queue (a third message, confirmed after the settle of the
    // PUBREC reached the queue) and to the connection: the second must still be waiting.
    publ.publish("q2w/t", V5QoS::AtLeastOnce, false, "three")
        .await;
    sub.send(&Packet::PingReq).await.expect("PINGREQ");
    match sub.recv().await.expect("read") {
        Some(Packet::PingResp) => {}
        other => panic!("expected PINGRESP (the window is full until PUBCOMP), got {other:?}"),
    }
    sub.send(&Packet::PubComp(PubComp::new(id)))
        .await
        .expect("PUBCOMP");
    match sub.recv().await.expect("read") {
        Some(Packet::Publish(p)) => assert_eq!(text(&p.payload), "two"),
        other => panic!("expected the second PUBLISH, got {other:?}"),
    }
}

async fn within_ack(c: &V5Client, p: &v5p::Publish) {
    tests::within("PUBACK request", c.client.ack(p))
        .await
        .expect("ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceeding_the_brokers_receive_maximum_gets_disconnect_0x93() {
    let broker = TestBroker::start().await;
    let (mut raw, props) =
        raw_connect(&broker, Connect::new(ProtocolVersion::V5, "rm-flood", 30)).await;
    let max = props
        .receive_maximum
        .expect("CONNACK advertises Receive Maximum")
        .get();
    assert_eq!(max, 1024);
    // QoS 2 publishes that are never released stay in flight after their
    // PUBREC: one more than the maximum breaks the limit.
    let mut bytes = BytesMut::new();
    for id in 1..=max + 1 {
        let mut p = Publish::new(topic("flood/t"), "x");
        p.qos = PQoS::ExactlyOnce;
        p.packet_id = Some(pid(id));
        protocol_mqtt::encode(&Packet::Publish(p), ProtocolVersion::V5, &mut bytes)
            .expect("encode");
    }
    raw.send_bytes(&bytes).await.expect("send");
    let before = until_disconnect(&mut raw, 0x93).await;
    assert_eq!(
        before.len(),
        usize::from(max),
        "one PUBREC per allowed publish"
    );
    assert!(
        before.iter().all(|p| matches!(p, Packet::PubRec(_))),
        "only PUBRECs before the DISCONNECT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_above_the_brokers_maximum_packet_size_get_disconnect_0x95() {
    let broker = TestBroker::start_with(|c| c.mqtt_max_packet_size = 1024).await;
    let (mut raw, props) =
        raw_connect(&broker, Connect::new(ProtocolVersion::V5, "mps-big", 30)).await;
    assert_eq!(
        props.maximum_packet_size,
        NonZeroU32::new(1024),
        "CONNACK advertises the broker's Maximum Packet Size"
    );
    raw_subscribe(&mut raw, "mps/t", PQoS::AtMostOnce).await;
    // Just under the limit: accepted and delivered back.
    let fits = Packet::Publish(Publish::new(topic("mps/t"), vec![b'a'; 1000]));
    assert!(fits.encoded_len(ProtocolVersion::V5).expect("len") <= 1024);
    raw.send(&fits).await.expect("send");
    assert_eq!(raw_publish(&mut raw).await.payload.len(), 1000);
    // Over it.
    let big = Packet::Publish(Publish::new(topic("mps/t"), vec![b'b'; 1100]));
    raw.send(&big).await.expect("send");
    let before = until_disconnect(&mut raw, 0x95).await;
    assert!(
        before.is_empty(),
        "nothing before the DISCONNECT: {before:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_above_the_clients_maximum_packet_size_are_dropped() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(ProtocolVersion::V5, "mps-small", 30);
    connect.properties = ConnectProperties {
        maximum_packet_size: NonZeroU32::new(200),
        ..ConnectProperties::default()
    };
    let (mut raw, _) = raw_connect(&broker, connect).await;
    raw_subscribe(&mut raw, "mps/c", PQoS::AtLeastOnce).await;
    let (mut publ, _) = V5Client::connect(v5_options(broker.mqtt_addr(), "mps-pub")).await;
    publ.publish("mps/c", V5QoS::AtLeastOnce, false, vec![b'x'; 1024])
        .await;
    publ.publish("mps/c", V5QoS::AtLeastOnce, false, "small")
        .await;
    let got = raw_publish(&mut raw).await;
    assert_eq!(
        &got.payload[..],
        b"small",
        "the 1 KiB message should have been dropped, not sent"
    );
}

/// A 5.0 CONNECT with a will on `will/<id>` delayed by `delay` seconds and
/// the given session expiry.
fn delayed_will(id: &str, delay: u32, session_expiry: u32) -> Connect {
    let mut connect = Connect::new(ProtocolVersion::V5, id, 30);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(session_expiry);
    connect.will = Some(Will {
        qos: PQoS::AtLeastOnce,
        retain: false,
        properties: WillProperties {
            will_delay_interval: Some(delay),
            ..WillProperties::default()
        },
        topic: topic(&format!("will/{id}")),
        payload: Bytes::from_static(b"gone"),
    });
    connect
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_interval() {
    let broker = TestBroker::start().await;
    let (mut watcher, _) = V5Client::connect(v5_options(broker.mqtt_addr(), "watcher")).await;
    watcher.subscribe("will/#", V5QoS::AtLeastOnce).await;

    // Abnormal disconnect: the will comes about 1 s later.
    let (raw, _) = raw_connect(&broker, delayed_will("late", 1, 60)).await;
    drop(raw);
    let dropped = Instant::now();
    let got = watcher.next_publish().await;
    let elapsed = dropped.elapsed();
    assert_eq!(
        (text(&got.topic), text(&got.payload)),
        ("will/late", "gone")
    );
    assert!(
        elapsed >= Duration::from_millis(800) && elapsed <= Duration::from_secs(5),
        "will delay 1 s: published after {elapsed:?}"
    );

    // Back within the delay, after the old connection dropped or by taking it
    // over while the broker still holds it: no will either way.
    let resume = |id: &str| {
        let mut connect = Connect::new(ProtocolVersion::V5, id, 30);
        connect.clean_start = false;
        connect.properties.session_expiry_interval = Some(60);
        connect
    };
    let (raw, _) = raw_connect(&broker, delayed_will("back", 1, 60)).await;
    drop(raw);
    let (mut back, _) = raw_connect(&broker, resume("back")).await;
    let (mut twin, _) = raw_connect(&broker, delayed_will("twin", 1, 60)).await;
    let (_twin2, _) = raw_connect(&broker, resume("twin")).await;
    until_disconnect(&mut twin, 0x8E).await; // Session taken over
    // A will that is not sent leaves no trace to await: wait out the delay
    // (1 s, plus margin; both connections have ended by now), then publish a
    // sentinel either will would precede.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    back.send(&Packet::Publish(Publish::new(
        topic("will/back"),
        "sentinel",
    )))
    .await
    .expect("send sentinel");
    let got = watcher.next_publish().await;
    assert_eq!(
        (text(&got.topic), text(&got.payload)),
        ("will/back", "sentinel"),
        "a will was published although its client came back within the delay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_ends_with_the_session() {
    let broker = TestBroker::start().await;
    let (mut watcher, _) = V5Client::connect(v5_options(broker.mqtt_addr(), "watcher")).await;
    watcher.subscribe("will/#", V5QoS::AtLeastOnce).await;
    // Session Expiry 0: the session ends with the connection, and the will
    // is published then, however long its delay ([MQTT-3.1.3-9]).
    let (raw, _) = raw_connect(&broker, delayed_will("short-lived", 30, 0)).await;
    drop(raw);
    let dropped = Instant::now();
    let got = watcher.next_publish().await;
    assert_eq!(&got.topic[..], b"will/short-lived");
    assert!(
        dropped.elapsed() < Duration::from_secs(5),
        "the will waited {:?} for its delay although the session had ended",
        dropped.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_format_indicator_and_content_type_survive() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut sub, _) = V5Client::connect(v5_options(addr, "pfi-sub")).await;
    sub.subscribe("pfi/t", V5QoS::AtLeastOnce).await;
    let (mut publ, _) = V5Client::connect(v5_options(addr, "pfi-pub")).await;
    let with = v5p::PublishProperties {
        payload_format_indicator: Some(1),
        content_type: Some("text/plain; charset=utf-8".into()),
        ..Default::default()
    };
    publ.publish_with("pfi/t", V5QoS::AtLeastOnce, false, "héllo", with)
        .await;
    publ.publish("pfi/t", V5QoS::AtLeastOnce, false, [0xffu8, 0x00])
        .await;
    let got = sub.next_publish().await;
    assert_eq!(text(&got.payload), "héllo");
    let p = props(&got);
    assert_eq!(p.payload_format_indicator, Some(1));
    assert_eq!(p.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    // Nothing leaks onto a message published without them.
    let got = sub.next_publish().await;
    assert_eq!(&got.payload[..], &[0xff, 0x00]);
    let p = props(&got);
    assert_eq!((p.payload_format_indicator, p.content_type), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_aliases_towards_the_client() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(ProtocolVersion::V5, "alias-raw", 30);
    connect.properties.topic_alias_maximum = Some(5);
    let (mut raw, _) = raw_connect(&broker, connect).await;
    raw_subscribe(&mut raw, "ta/#", PQoS::AtMostOnce).await;
    let (mut publ, _) = V5Client::connect(v5_options(broker.mqtt_addr(), "alias-pub")).await;
    for (t, body) in [("ta/x", "one"), ("ta/x", "two"), ("ta/y", "three")] {
        publ.publish(t, V5QoS::AtMostOnce, false, body).await;
    }
    let first = raw_publish(&mut raw).await;
    let alias = first
        .properties
        .topic_alias
        .expect("the first PUBLISH of a topic sets an alias");
    assert!(alias.get() <= 5, "alias within the client's maximum");
    assert_eq!(
        (first.topic.as_str(), &first.payload[..]),
        ("ta/x", &b"one"[..])
    );
    let second = raw_publish(&mut raw).await;
    assert_eq!(
        (
            second.topic.as_str(),
            second.properties.topic_alias,
            &second.payload[..]
        ),
        ("", Some(alias), &b"two"[..]),
        "the second PUBLISH uses the alias alone"
    );
    let third = raw_publish(&mut raw).await;
    assert_eq!(third.topic.as_str(), "ta/y");
    let other = third.properties.topic_alias.map(NonZeroU16::get);
    assert!(
        other.is_some_and(|a| a != alias.get() && a <= 5),
        "a new topic gets its own alias: {other:?}"
    );
}
