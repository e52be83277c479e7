//! MQTT and AMQP clients on one broker: MQTT publishes reach AMQP queues
//! bound to `amq.topic` (topic `/` → routing key `.`, QoS ≥ 1 → persistent,
//! 5.0 properties → AMQP properties and headers), AMQP publishes to
//! `amq.topic` reach MQTT subscribers, an AMQP consumer competes with MQTT
//! members of a shared subscription, and a topic with `.` inside a level
//! survives MQTT → AMQP → MQTT unchanged.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use rumqttc::QoS;
use tests::mqtt::{V4Client, V5Client, V5QoS, v4_options, v5_options, v5p};
use tests::{TestBroker, body_seq, next_delivery, publish_confirmed, seq_body, within};

fn text(payload: &[u8]) -> &str {
    std::str::from_utf8(payload).expect("UTF-8 payload")
}

/// Declares `queue` and binds it to `amq.topic` with each key.
async fn bound_queue(ch: &Channel, queue: &str, keys: &[&str]) {
    within(
        "queue.declare",
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("queue.declare");
    for key in keys {
        within(
            "queue.bind",
            ch.queue_bind(
                queue.into(),
                "amq.topic".into(),
                (*key).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
        .expect("queue.bind");
    }
}

/// The next message in `queue` (no-ack), if any.
async fn get(ch: &Channel, queue: &str) -> Option<lapin::message::BasicGetMessage> {
    within(
        "basic.get",
        ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("basic.get")
}

async fn get_one(ch: &Channel, queue: &str) -> lapin::message::BasicGetMessage {
    get(ch, queue)
        .await
        .unwrap_or_else(|| panic!("queue {queue} is empty"))
}

fn header<'a>(props: &'a BasicProperties, name: &str) -> Option<&'a AMQPValue> {
    props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(&ShortString::from(name)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_publish_reaches_amqp_queues_with_properties() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.expect("channel");
    bound_queue(&ch, "exact", &["a.b.c"]).await;
    bound_queue(&ch, "wild", &["a.*.c"]).await;

    let (mut publ, _) = V5Client::connect(v5_options(broker.mqtt_addr(), "m2a")).await;
    let props = v5p::PublishProperties {
        content_type: Some("text/plain".into()),
        user_properties: vec![("origin".into(), "mqtt".into())],
        ..Default::default()
    };
    publ.publish_with("a/b/c", V5QoS::AtLeastOnce, false, "q1", props)
        .await;
    publ.publish("a/b/c", V5QoS::AtMostOnce, false, "q0").await;
    // A QoS 1 publish after the QoS 0 one: once it is PUBACKed, both are queued.
    publ.publish("a/x/c", V5QoS::AtLeastOnce, false, "wild-only")
        .await;

    let got = get_one(&ch, "exact").await;
    assert_eq!(got.delivery.exchange.as_str(), "amq.topic");
    assert_eq!(got.delivery.routing_key.as_str(), "a.b.c");
    assert_eq!(text(&got.delivery.data), "q1");
    let p = &got.delivery.properties;
    assert_eq!(*p.delivery_mode(), Some(2), "QoS 1 → persistent");
    assert_eq!(
        p.content_type().as_ref().map(|c| c.as_str()),
        Some("text/plain")
    );
    assert_eq!(
        header(p, "origin"),
        Some(&AMQPValue::LongString("mqtt".into())),
        "user property → header"
    );
    let got = get_one(&ch, "exact").await;
    assert_eq!(text(&got.delivery.data), "q0");
    assert_ne!(
        *got.delivery.properties.delivery_mode(),
        Some(2),
        "QoS 0 → transient"
    );

    let wild: Vec<String> = tests::get_all(&ch, "wild")
        .await
        .iter()
        .map(|b| text(b).to_string())
        .collect();
    assert_eq!(wild, ["q1", "q0", "wild-only"]);
    assert!(tests::get_all(&ch, "exact").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_publish_reaches_mqtt_subscribers() {
    let broker = TestBroker::start().await;
    let (mut v4, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "a2m-v4")).await;
    v4.subscribe("x/+", QoS::AtLeastOnce).await;
    let (mut v5, _) = V5Client::connect(v5_options(broker.mqtt_addr(), "a2m-v5")).await;
    v5.subscribe("x/#", V5QoS::ExactlyOnce).await;

    let conn = broker.connect().await;
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let mut headers = FieldTable::default();
    headers.insert("tenant".into(), AMQPValue::LongString("blue".into()));
    let persistent = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers)
        .with_content_type("application/json".into());
    publish_confirmed(
        &ch,
        "amq.topic",
        "x.y",
        BasicPublishOptions::default(),
        b"durable",
        persistent,
    )
    .await;
    publish_confirmed(
        &ch,
        "amq.topic",
        "x.z",
        BasicPublishOptions::default(),
        b"transient",
        BasicProperties::default().with_delivery_mode(1),
    )
    .await;

    let got = v4.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), text(&got.payload), got.qos),
        ("x/y", "durable", QoS::AtLeastOnce),
        "delivery mode 2 → QoS 1"
    );
    let got = v4.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), text(&got.payload), got.qos),
        ("x/z", "transient", QoS::AtMostOnce)
    );

    let got = v5.next_publish().await;
    assert_eq!(&got.topic[..], b"x/y");
    assert_eq!(got.qos, V5QoS::AtLeastOnce, "capped by the message, not 2");
    let props = got.properties.expect("properties");
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        props.user_properties,
        vec![("tenant".to_string(), "blue".to_string())],
        "header → user property"
    );
    assert_eq!(v5.next_publish().await.qos, V5QoS::AtMostOnce);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_consumer_competes_in_a_shared_subscription() {
    const N: u64 = 300;
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut member, _) = V5Client::connect(v5_options(addr, "share-member")).await;
    member.subscribe("$share/g/t", V5QoS::AtLeastOnce).await;

    let conn = broker.connect().await;
    let ch = conn.create_channel().await.expect("channel");
    let mut consumer = within(
        "basic.consume",
        ch.basic_consume(
            "$share/g/t".into(),
            "amqp-member".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("an AMQP client can consume from the shared-subscription queue");

    let (mut publ, _) = V5Client::connect(v5_options(addr, "share-pub")).await;
    for n in 0..N {
        publ.publish("t", V5QoS::AtLeastOnce, false, seq_body(n))
            .await;
    }

    let mut seen = BTreeSet::new();
    let (mut amqp, mut mqtt) = (0, 0);
    while (seen.len() as u64) < N {
        tokio::select! {
            d = next_delivery(&mut consumer) => {
                d.ack(BasicAckOptions::default()).await.expect("ack");
                assert!(seen.insert(body_seq(&d.data)), "duplicate to AMQP");
                amqp += 1;
            }
            p = member.next_publish() => {
                assert!(seen.insert(body_seq(&p.payload)), "duplicate to MQTT");
                mqtt += 1;
            }
        }
    }
    assert_eq!(seen, (0..N).collect::<BTreeSet<_>>());
    assert!(
        amqp > 0 && mqtt > 0,
        "both must get some: amqp {amqp}, mqtt {mqtt}"
    );
    assert_eq!(amqp + mqtt, N);
    member.assert_no_publish(Duration::from_millis(200)).await;
    if let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_millis(100), consumer.next()).await
    {
        panic!("extra AMQP delivery {}", body_seq(&d.data));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotted_topic_level_round_trips_through_amqp() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut sub, _) = V4Client::connect(v4_options(addr, "dot-sub")).await;
    sub.subscribe("v1.2/x", QoS::AtLeastOnce).await;

    let conn = broker.connect().await;
    let ch = conn.create_channel().await.expect("channel");
    bound_queue(&ch, "relay", &["v1%2E2.x"]).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");

    let (mut publ, _) = V4Client::connect(v4_options(addr, "dot-pub")).await;
    publ.publish("v1.2/x", QoS::AtLeastOnce, false, "direct")
        .await;
    // A topic that a `.`→`/` mapping would confuse with it.
    publ.publish("v1/2/x", QoS::AtLeastOnce, false, "other")
        .await;

    // The AMQP side sees one message, with the escaped routing key ...
    let got = get_one(&ch, "relay").await;
    assert_eq!(got.delivery.routing_key.as_str(), "v1%2E2.x");
    assert_eq!(text(&got.delivery.data), "direct");
    assert!(
        tests::get_all(&ch, "relay").await.is_empty(),
        "v1/2/x leaked"
    );
    // ... and publishing it back reaches MQTT under the original topic.
    publish_confirmed(
        &ch,
        "amq.topic",
        got.delivery.routing_key.as_str(),
        BasicPublishOptions::default(),
        b"relayed",
        BasicProperties::default().with_delivery_mode(2),
    )
    .await;

    for expected in ["direct", "relayed"] {
        let p = sub.next_publish().await;
        assert_eq!((p.topic.as_str(), text(&p.payload)), ("v1.2/x", expected));
    }
    sub.assert_no_publish(Duration::from_millis(200)).await;
}

/// The body of the next message in `queue`, or None if it is empty.
async fn try_get(ch: &Channel, queue: &str) -> Option<String> {
    get(ch, queue)
        .await
        .map(|m| text(&m.delivery.data).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_sees_every_binding_change_between_two_messages_on_one_topic() {
    // A publisher's last route is reused while the topology is unchanged: each change
    // (a binding added, a binding removed, a queue deleted and declared again) must reach
    // its very next message. QoS 1: the PUBACK comes once the queues have the message.
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.expect("channel");
    bound_queue(&ch, "first", &["r.t"]).await;
    let (mut publ, _) = V4Client::connect(v4_options(broker.mqtt_addr(), "route-cache")).await;
    publ.publish("r/t", QoS::AtLeastOnce, false, "1").await;
    assert_eq!(try_get(&ch, "first").await.as_deref(), Some("1"));

    bound_queue(&ch, "second", &["r.t"]).await;
    publ.publish("r/t", QoS::AtLeastOnce, false, "2").await;
    assert_eq!(try_get(&ch, "first").await.as_deref(), Some("2"));
    assert_eq!(
        try_get(&ch, "second").await.as_deref(),
        Some("2"),
        "a new binding"
    );

    within(
        "queue.unbind",
        ch.queue_unbind(
            "first".into(),
            "amq.topic".into(),
            "r.t".into(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("queue.unbind");
    publ.publish("r/t", QoS::AtLeastOnce, false, "3").await;
    assert_eq!(try_get(&ch, "second").await.as_deref(), Some("3"));
    assert_eq!(try_get(&ch, "first").await, None, "a removed binding");

    within(
        "queue.delete",
        ch.queue_delete("second".into(), QueueDeleteOptions::default()),
    )
    .await
    .expect("queue.delete");
    bound_queue(&ch, "second", &["r.t"]).await;
    publ.publish("r/t", QoS::AtLeastOnce, false, "4").await;
    assert_eq!(
        try_get(&ch, "second").await.as_deref(),
        Some("4"),
        "a queue deleted and declared again"
    );
}
