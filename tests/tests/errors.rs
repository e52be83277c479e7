//! Error handling by blast radius: channel errors (soft, channel.close) must
//! leave the connection usable; protocol violations (hard) must end the
//! connection with the right reply code or, before the handshake, with the
//! broker's protocol header.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection};
use protocol_amqp::{
    BasicProperties as RawProps, BasicPublish, ConnectionCloseOk, FRAME_BODY, Frame, Method,
    PROTOCOL_HEADER, ShortStr,
};
use tests::raw::RawClient;
use tests::{
    TestBroker, get_all, next_delivery, next_error_event, publish_confirmed, reply_code, within,
};

/// Numbers the queues of [`assert_connection_usable`].
static ALIVE: AtomicU64 = AtomicU64::new(0);

/// Proves the connection survived a channel error: a new channel can
/// declare, publish with a confirm and get the message back.
async fn assert_connection_usable(conn: &Connection) {
    let ch = within("channel.open after a channel error", conn.create_channel())
        .await
        .expect("connection must survive a channel error");
    within(
        "confirm.select",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    let q = within(
        "queue.declare",
        // A client-named queue: this check must not depend on server naming.
        ch.queue_declare(
            format!("alive-{}", ALIVE.fetch_add(1, Ordering::Relaxed)).into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("queue.declare on a new channel");
    let c = publish_confirmed(
        &ch,
        "",
        q.name().as_str(),
        BasicPublishOptions::default(),
        b"alive",
        BasicProperties::default(),
    )
    .await;
    assert!(c.is_ack());
    assert_eq!(
        get_all(&ch, q.name().as_str()).await,
        vec![b"alive".to_vec()]
    );
}

async fn channel(conn: &Connection) -> lapin::Channel {
    within("channel.open", conn.create_channel())
        .await
        .expect("open channel")
}

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn passive_declare_of_missing_queue_is_404_and_only_closes_the_channel() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = channel(&conn).await;
    let err = within(
        "passive declare",
        ch.queue_declare("missing".into(), passive(), FieldTable::default()),
    )
    .await
    .expect_err("missing queue");
    assert_eq!(reply_code(&err), Some(404), "{err}");
    assert!(
        !err.is_amqp_hard_error(),
        "404 must be a channel error: {err}"
    );
    assert!(
        !ch.status().connected(),
        "the failing channel must be closed"
    );
    assert_connection_usable(&conn).await;
}

#[tokio::test]
async fn redeclare_with_different_durability_is_406() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = channel(&conn).await;
    within(
        "declare",
        ch.queue_declare(
            "d".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("first declare");
    let err = within(
        "redeclare",
        ch.queue_declare(
            "d".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("inequivalent durable flag");
    assert_eq!(reply_code(&err), Some(406), "{err}");
    assert_connection_usable(&conn).await;
    // The original queue is untouched.
    let ch = channel(&conn).await;
    within(
        "same declare",
        ch.queue_declare(
            "d".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("equivalent redeclare still works");
}

#[tokio::test]
async fn exclusive_queue_of_another_connection_is_405() {
    let broker = TestBroker::start().await;
    let owner = broker.connect().await;
    let och = channel(&owner).await;
    within(
        "declare exclusive",
        och.queue_declare(
            "excl".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare exclusive");

    let other = broker.connect().await;
    let err = within(
        "declare",
        channel(&other).await.queue_declare(
            "excl".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("redeclare from another connection");
    assert_eq!(reply_code(&err), Some(405), "declare: {err}");
    let err = within(
        "consume",
        channel(&other).await.basic_consume(
            "excl".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("consume from another connection");
    assert_eq!(reply_code(&err), Some(405), "consume: {err}");
    let err = within(
        "get",
        channel(&other)
            .await
            .basic_get("excl".into(), BasicGetOptions::default()),
    )
    .await
    .expect_err("get from another connection");
    assert_eq!(reply_code(&err), Some(405), "get: {err}");
    assert_connection_usable(&other).await;
    // The owner is unaffected.
    within(
        "owner passive declare",
        och.queue_declare("excl".into(), passive(), FieldTable::default()),
    )
    .await
    .expect("owner still uses its queue");
}

/// The exchange recording persistent MQTT sessions' shared-subscription memberships is the
/// broker's own: declaring, deleting or binding it is refused like an amq.* name.
#[tokio::test]
async fn the_mqtt_memberships_exchange_is_off_limits_with_403() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let reserved = "mqtt.shared-memberships";
    let ch = channel(&conn).await;
    let err = within(
        "exchange.declare",
        ch.exchange_declare(
            reserved.into(),
            lapin::ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("declare refused");
    assert_eq!(reply_code(&err), Some(403), "{err}");
    let ch = channel(&conn).await;
    let err = within(
        "exchange.delete",
        ch.exchange_delete(reserved.into(), ExchangeDeleteOptions::default()),
    )
    .await
    .expect_err("delete refused");
    assert_eq!(reply_code(&err), Some(403), "{err}");
    let ch = channel(&conn).await;
    within(
        "queue.declare",
        ch.queue_declare(
            "mine".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare mine");
    let err = within(
        "queue.bind",
        ch.queue_bind(
            "mine".into(),
            reserved.into(),
            "$share/g/t".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("bind refused");
    assert_eq!(reply_code(&err), Some(403), "{err}");
    assert_connection_usable(&conn).await;
}

#[tokio::test]
async fn declaring_an_amq_prefixed_queue_is_403() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let err = within(
        "declare amq.x",
        channel(&conn).await.queue_declare(
            "amq.x".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("amq.* names are reserved");
    assert_eq!(reply_code(&err), Some(403), "{err}");
    assert_connection_usable(&conn).await;
}

#[tokio::test]
async fn ack_of_unknown_delivery_tag_is_406() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let mut events = Box::pin(conn.events_listener());
    let ch = channel(&conn).await;
    // One real delivery, so the tag space is not simply empty.
    within(
        "declare",
        ch.queue_declare(
            "acked".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare");
    within(
        "publish",
        ch.basic_publish(
            "".into(),
            "acked".into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        ),
    )
    .await
    .expect("publish");
    let mut consumer = within(
        "consume",
        ch.basic_consume(
            "acked".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("consume");
    let d = next_delivery(&mut consumer).await;
    within(
        "basic.ack",
        ch.basic_ack(d.delivery_tag + 1000, BasicAckOptions::default()),
    )
    .await
    .expect("send ack");
    let err = next_error_event(&mut events).await;
    assert_eq!(reply_code(&err), Some(406), "{err}");
    assert!(
        !err.is_amqp_hard_error(),
        "406 must be a channel error: {err}"
    );
    assert_connection_usable(&conn).await;
    // The real delivery was requeued when the channel closed.
    let ch = channel(&conn).await;
    let msg = within(
        "get",
        ch.basic_get("acked".into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("get")
    .expect("requeued");
    assert!(msg.delivery.redelivered);
}

#[tokio::test]
async fn publish_to_missing_exchange_is_404() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = channel(&conn).await;
    assert_publish_is_404(&conn, &ch, "no-such-exchange").await;
}

/// Publishes to `exchange` and expects the channel to close with 404, the connection not.
async fn assert_publish_is_404(conn: &Connection, ch: &lapin::Channel, exchange: &str) {
    let mut events = Box::pin(conn.events_listener());
    within(
        "publish",
        ch.basic_publish(
            exchange.into(),
            "k".into(),
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default(),
        ),
    )
    .await
    .expect("send publish");
    let err = next_error_event(&mut events).await;
    assert_eq!(reply_code(&err), Some(404), "{err}");
    assert_connection_usable(conn).await;
}

#[tokio::test]
async fn a_channel_sees_every_change_to_where_its_publishes_go() {
    // A channel reuses its last route while the topology is unchanged: an unbind between two
    // publishes must make the second unroutable (returned, as mandatory asks), and deleting
    // the exchange must make the next publish the 404 a first one would get.
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = tests::amqp::confirm_channel(&conn).await;
    within(
        "exchange.declare",
        ch.exchange_declare(
            "rc".into(),
            lapin::ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.declare");
    tests::amqp::declare_queue(&ch, "rcq").await;
    tests::amqp::bind_queue(&ch, "rcq", "rc", "k", FieldTable::default()).await;
    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let publish = |body: &'static [u8]| {
        publish_confirmed(&ch, "rc", "k", mandatory, body, BasicProperties::default())
    };
    let c = publish(b"routed").await;
    assert!(c.take_message().is_none(), "routed, so not returned");
    within(
        "queue.unbind",
        ch.queue_unbind("rcq".into(), "rc".into(), "k".into(), FieldTable::default()),
    )
    .await
    .expect("queue.unbind");
    let c = publish(b"unbound").await;
    let returned = c.take_message().expect("returned after the unbind");
    assert_eq!(returned.reply_code, 312);
    let got: Vec<Vec<u8>> = get_all(&ch, "rcq").await;
    assert_eq!(got, vec![b"routed".to_vec()]);
    within(
        "exchange.delete",
        ch.exchange_delete("rc".into(), ExchangeDeleteOptions::default()),
    )
    .await
    .expect("exchange.delete");
    assert_publish_is_404(&conn, &ch, "rc").await;
}

#[tokio::test]
async fn garbage_instead_of_protocol_header_gets_our_header_and_a_close() {
    let broker = TestBroker::start().await;
    // Exactly 8 bytes each, so the broker has read all we sent when it closes
    // (unread input would turn its close into a reset).
    for garbage in [
        b"HTTP/1.1",
        b"AMQP\x00\x00\x08\x00",
        b"AMQP\x03\x01\x00\x00",
    ] {
        let mut client = RawClient::connect(broker.addr()).await.expect("connect");
        client.send_bytes(garbage).await.expect("send garbage");
        let got = client
            .read_to_end()
            .await
            .expect("clean close after the header");
        assert_eq!(
            got,
            Bytes::from_static(&PROTOCOL_HEADER),
            "answer to {:?}",
            String::from_utf8_lossy(garbage)
        );
    }
}

#[tokio::test]
async fn frame_larger_than_frame_max_is_a_501_connection_error() {
    let broker = TestBroker::start_with(|c| c.frame_max = 4096).await;
    let (mut client, tune) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    assert_eq!(
        tune.frame_max, 4096,
        "broker must propose its configured frame_max"
    );
    client.open_channel(1).await.expect("channel.open");
    let body_size = u64::from(tune.frame_max) * 2;
    client
        .send_method(
            1,
            BasicPublish {
                exchange: ShortStr::from_static(""),
                routing_key: ShortStr::from_static("q"),
                mandatory: false,
                immediate: false,
            },
        )
        .await
        .expect("send publish");
    client
        .send_frame(&Frame::Header {
            channel: 1,
            class_id: 60,
            body_size,
            properties: RawProps::default(),
        })
        .await
        .expect("send content header");
    // One body frame carrying the whole body, ignoring frame_max. Send its
    // 7-byte header first: the broker must judge the size from the header
    // alone, and nothing unread is left in its socket when it closes.
    let payload_len = u32::try_from(body_size).expect("fits");
    let mut header = vec![FRAME_BODY, 0, 1];
    header.extend_from_slice(&payload_len.to_be_bytes());
    client
        .send_bytes(&header)
        .await
        .expect("send oversized frame header");

    let (channel, method) = client
        .recv_method()
        .await
        .expect("connection.close from the broker");
    match (channel, method) {
        (0, Method::ConnectionClose(close)) => {
            assert_eq!(close.reply_code, 501, "reply text: {}", close.reply_text);
        }
        other => panic!("expected connection.close 501 on channel 0, got {other:?}"),
    }
    // Completing the close must end the connection.
    let _ = client.send_method(0, ConnectionCloseOk).await;
    let rest = client.read_to_end().await;
    if let Ok(rest) = rest {
        assert!(
            rest.is_empty(),
            "no frames may follow connection.close: {rest:?}"
        );
    }
}

#[tokio::test]
async fn an_exclusive_consumer_keeps_others_out_with_403() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let ch = within("channel", conn.create_channel())
        .await
        .expect("channel");
    within(
        "declare",
        ch.queue_declare(
            "solo".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare");
    // Keep the consumer: lapin cancels a consumer when it is dropped.
    let _first = within(
        "exclusive consume",
        ch.basic_consume(
            "solo".into(),
            "first".into(),
            BasicConsumeOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("first consumer is exclusive");
    let other = within("channel", conn.create_channel())
        .await
        .expect("channel");
    let err = within(
        "second consume",
        other.basic_consume(
            "solo".into(),
            "second".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("a second consumer must be refused");
    assert_eq!(reply_code(&err), Some(403));
    // Only that channel closed: the first one still works.
    within(
        "passive declare",
        ch.queue_declare(
            "solo".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("first channel still open");
}
