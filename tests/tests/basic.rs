//! Everyday AMQP 0-9-1 behaviour through lapin: handshake, publish/consume,
//! basic.get, declare-ok counts, mandatory returns, publisher confirms,
//! acks/nacks/rejects, prefetch, purge, delete flags, routing through the
//! predeclared exchanges, exchange-to-exchange bindings, server-named and
//! exclusive queues.

use std::time::Duration;

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, ExchangeKind};
use tests::amqp::{
    self, ack, bind_queue, cancel, consume, declare_queue, declare_queue_with, fill_queue,
    open_channel, passive_declare, publish_seq,
};
use tests::{
    TestBroker, assert_no_delivery, body_seq, get_all, next_delivery, publish_confirmed,
    reply_code, seq_body, within,
};

/// A channel in confirm mode on a fresh connection; the connection is
/// returned too so it stays open.
async fn confirm_channel(broker: &TestBroker) -> (lapin::Connection, Channel) {
    let conn = broker.connect().await;
    let ch = amqp::confirm_channel(&conn).await;
    (conn, ch)
}

fn strings(bodies: Vec<Vec<u8>>) -> Vec<String> {
    let mut out: Vec<String> = bodies
        .into_iter()
        .map(|b| String::from_utf8(b).expect("utf-8 body"))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn publish_consume_round_trip_keeps_body_and_properties() {
    let broker = TestBroker::start().await;
    let (conn, ch) = confirm_channel(&broker).await;
    declare_queue(&ch, "rt").await;
    let mut headers = FieldTable::default();
    headers.insert("x-trace".into(), AMQPValue::LongString("abc".into()));
    let props = BasicProperties::default()
        .with_content_type("text/plain".into())
        .with_correlation_id("corr-1".into())
        .with_headers(headers.clone())
        .with_delivery_mode(2);
    let body = vec![7u8; 300_000]; // > frame_max: exercises body-frame splitting both ways
    let c = publish_confirmed(&ch, "", "rt", BasicPublishOptions::default(), &body, props).await;
    assert!(c.is_ack());

    let consumer_ch = open_channel(&conn).await;
    let mut consumer = consume(&consumer_ch, "rt").await;
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.data, body);
    assert_eq!(d.exchange.as_str(), "");
    assert_eq!(d.routing_key.as_str(), "rt");
    assert!(!d.redelivered);
    assert_eq!(
        d.properties
            .content_type()
            .as_ref()
            .map(ShortString::as_str),
        Some("text/plain")
    );
    assert_eq!(
        d.properties
            .correlation_id()
            .as_ref()
            .map(ShortString::as_str),
        Some("corr-1")
    );
    assert_eq!(d.properties.delivery_mode(), &Some(2));
    assert_eq!(d.properties.headers().as_ref(), Some(&headers));
    ack(&d).await;
    // Had the ack been lost, closing the channel would requeue the message.
    within("channel.close", consumer_ch.close(200, "bye".into()))
        .await
        .expect("close channel");
    assert!(
        get_all(&ch, "rt").await.is_empty(),
        "acked message came back"
    );
}

#[tokio::test]
async fn basic_get_reports_remaining_count_then_get_empty() {
    let broker = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&broker).await;
    fill_queue(&ch, "g", 0..3).await;
    for (n, remaining) in [(0, 2), (1, 1), (2, 0)] {
        let msg = within(
            "basic.get",
            ch.basic_get("g".into(), BasicGetOptions::default()),
        )
        .await
        .expect("basic.get")
        .expect("get-ok, not get-empty");
        assert_eq!(body_seq(&msg.delivery.data), n, "FIFO order");
        assert_eq!(msg.message_count, remaining, "message_count in get-ok");
        assert!(!msg.delivery.redelivered);
        ack(&msg.delivery).await;
    }
    let empty = within(
        "basic.get",
        ch.basic_get("g".into(), BasicGetOptions::default()),
    )
    .await
    .expect("basic.get");
    assert!(empty.is_none(), "expected get-empty");
}

#[tokio::test]
async fn declare_ok_reports_message_and_consumer_counts() {
    let broker = TestBroker::start().await;
    let (conn, ch) = confirm_channel(&broker).await;
    let q = declare_queue(&ch, "counted").await;
    assert_eq!((q.message_count(), q.consumer_count()), (0, 0));
    publish_seq(&ch, "counted", 0..5).await;
    let q = declare_queue(&ch, "counted").await;
    assert_eq!((q.message_count(), q.consumer_count()), (5, 0));

    declare_queue(&ch, "watched").await;
    let c1 = open_channel(&conn).await;
    let c2 = open_channel(&conn).await;
    let _k1 = consume(&c1, "watched").await;
    let k2 = consume(&c2, "watched").await;
    let q = declare_queue(&ch, "watched").await;
    assert_eq!((q.message_count(), q.consumer_count()), (0, 2));
    cancel(&c2, &k2).await;
    let q = declare_queue(&ch, "watched").await;
    assert_eq!(q.consumer_count(), 1, "cancelled consumer still counted");
}

#[tokio::test]
async fn mandatory_unroutable_publish_is_returned_before_its_confirm() {
    let broker = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&broker).await;
    let c = publish_confirmed(
        &ch,
        "amq.direct",
        "nowhere",
        BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        },
        b"lost",
        BasicProperties::default(),
    )
    .await;
    assert!(c.is_ack(), "unroutable messages are still confirmed: {c:?}");
    // lapin attaches a basic.return to the confirm only if it arrived first.
    let returned = c.take_message().expect("basic.return before the basic.ack");
    assert_eq!(returned.reply_code, 312);
    assert_eq!(returned.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(returned.delivery.exchange.as_str(), "amq.direct");
    assert_eq!(returned.delivery.routing_key.as_str(), "nowhere");
    assert_eq!(returned.delivery.data, b"lost");

    // Without mandatory: confirmed, nothing returned.
    let c = publish_confirmed(
        &ch,
        "amq.direct",
        "nowhere",
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    )
    .await;
    assert_eq!(c, Confirmation::Ack(None));
    let returned = within("wait_for_confirms", ch.wait_for_confirms())
        .await
        .expect("confirms");
    assert!(
        returned.is_empty(),
        "non-mandatory publish was returned: {returned:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_confirms_ack_every_message() {
    let broker = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&broker).await;
    declare_queue(&ch, "confirmed").await;
    let mut pending = Vec::new();
    for n in 0..500 {
        let p = within(
            "basic.publish",
            ch.basic_publish(
                "".into(),
                "confirmed".into(),
                BasicPublishOptions::default(),
                &seq_body(n),
                BasicProperties::default(),
            ),
        )
        .await
        .expect("publish");
        pending.push(p);
    }
    for (n, p) in pending.into_iter().enumerate() {
        let c = within("a confirm", p).await.expect("confirm");
        assert!(c.is_ack(), "message {n}: {c:?}");
    }
    let q = declare_queue(&ch, "confirmed").await;
    assert_eq!(q.message_count(), 500);
}

#[tokio::test]
async fn nack_and_reject_with_requeue_redeliver_with_redelivered_flag() {
    let broker = TestBroker::start().await;
    let (conn, ch) = confirm_channel(&broker).await;
    fill_queue(&ch, "requeue", 0..1).await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume(&cch, "requeue").await;

    let d = next_delivery(&mut consumer).await;
    assert!(!d.redelivered);
    within(
        "basic.nack",
        d.nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        }),
    )
    .await
    .expect("nack");
    let d = next_delivery(&mut consumer).await;
    assert_eq!(body_seq(&d.data), 0);
    assert!(
        d.redelivered,
        "nacked message must come back with redelivered=true"
    );
    within(
        "basic.reject",
        d.reject(BasicRejectOptions { requeue: true }),
    )
    .await
    .expect("reject");
    let d = next_delivery(&mut consumer).await;
    assert_eq!(body_seq(&d.data), 0);
    assert!(
        d.redelivered,
        "rejected message must come back with redelivered=true"
    );
    ack(&d).await;
    assert_no_delivery(&mut consumer, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn reject_and_nack_without_requeue_drop_the_message() {
    let broker = TestBroker::start().await;
    let (conn, ch) = confirm_channel(&broker).await;
    fill_queue(&ch, "drop", 0..3).await;
    let cch = open_channel(&conn).await;
    let mut consumer = consume(&cch, "drop").await;
    let d0 = next_delivery(&mut consumer).await;
    let d1 = next_delivery(&mut consumer).await;
    let d2 = next_delivery(&mut consumer).await;
    within(
        "basic.reject",
        d0.reject(BasicRejectOptions { requeue: false }),
    )
    .await
    .expect("reject");
    within(
        "basic.nack",
        d1.nack(BasicNackOptions {
            requeue: false,
            multiple: false,
        }),
    )
    .await
    .expect("nack");
    ack(&d2).await;
    // Anything still owned by the channel would be requeued by this close.
    within("channel.close", cch.close(200, "bye".into()))
        .await
        .expect("close");
    assert!(
        get_all(&ch, "drop").await.is_empty(),
        "dropped messages came back"
    );
}

#[tokio::test]
async fn prefetch_limits_unacked_deliveries() {
    let broker = TestBroker::start().await;
    let (conn, ch) = confirm_channel(&broker).await;
    fill_queue(&ch, "qos", 0..6).await;
    let cch = open_channel(&conn).await;
    within("basic.qos", cch.basic_qos(2, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut consumer = consume(&cch, "qos").await;

    let d0 = next_delivery(&mut consumer).await;
    let d1 = next_delivery(&mut consumer).await;
    assert_no_delivery(&mut consumer, Duration::from_millis(300)).await;
    assert_eq!(
        declare_queue(&ch, "qos").await.message_count(),
        4,
        "exactly 2 may be out"
    );

    ack(&d0).await;
    let d2 = next_delivery(&mut consumer).await;
    assert_eq!(body_seq(&d2.data), 2);
    assert_no_delivery(&mut consumer, Duration::from_millis(200)).await;

    // multiple=true frees both slots at once.
    within("basic.ack", d2.ack(BasicAckOptions { multiple: true }))
        .await
        .expect("ack");
    let _ = d1;
    let d3 = next_delivery(&mut consumer).await;
    let d4 = next_delivery(&mut consumer).await;
    assert_eq!((body_seq(&d3.data), body_seq(&d4.data)), (3, 4));
    assert_no_delivery(&mut consumer, Duration::from_millis(200)).await;
    assert_eq!(declare_queue(&ch, "qos").await.message_count(), 1);
}

#[tokio::test]
async fn purge_returns_the_number_of_messages_removed() {
    let broker = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&broker).await;
    fill_queue(&ch, "purged", 0..7).await;
    let n = within(
        "queue.purge",
        ch.queue_purge("purged".into(), QueuePurgeOptions::default()),
    )
    .await
    .expect("purge");
    assert_eq!(n, 7);
    assert!(get_all(&ch, "purged").await.is_empty());
    let n = within(
        "queue.purge",
        ch.queue_purge("purged".into(), QueuePurgeOptions::default()),
    )
    .await
    .expect("purge");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn queue_delete_honours_if_empty_and_if_unused() {
    let broker = TestBroker::start().await;
    let (conn, ch) = confirm_channel(&broker).await;
    fill_queue(&ch, "full", 0..2).await;
    let err = within(
        "queue.delete",
        ch.queue_delete(
            "full".into(),
            QueueDeleteOptions {
                if_empty: true,
                ..Default::default()
            },
        ),
    )
    .await
    .expect_err("if-empty delete of a non-empty queue must fail");
    assert_eq!(reply_code(&err), Some(406), "{err}");

    let ch = open_channel(&conn).await;
    declare_queue(&ch, "used").await;
    let cch = open_channel(&conn).await;
    let consumer = consume(&cch, "used").await;
    let err = within(
        "queue.delete",
        ch.queue_delete(
            "used".into(),
            QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        ),
    )
    .await
    .expect_err("if-unused delete of a consumed queue must fail");
    assert_eq!(reply_code(&err), Some(406), "{err}");

    let ch = open_channel(&conn).await;
    // Both queues still exist, with their contents.
    assert_eq!(declare_queue(&ch, "full").await.message_count(), 2);
    cancel(&cch, &consumer).await;
    let n = within(
        "queue.delete",
        ch.queue_delete(
            "used".into(),
            QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        ),
    )
    .await
    .expect("if-unused delete after the consumer is gone");
    assert_eq!(n, 0);
    let n = within(
        "queue.delete",
        ch.queue_delete("full".into(), QueueDeleteOptions::default()),
    )
    .await
    .expect("delete");
    assert_eq!(n, 2, "delete-ok reports the messages deleted");
    let err = passive_declare(&ch, "full")
        .await
        .expect_err("deleted queue is gone");
    assert_eq!(reply_code(&err), Some(404));
}

/// Declares `queues`, binds each with its (exchange, key, args), publishes
/// `(exchange, key, headers)` messages whose body names the message, and
/// returns what each queue got.
async fn route(
    broker: &TestBroker,
    bindings: &[(&str, &str, &str, FieldTable)],
    messages: &[(&str, &str, Option<FieldTable>)],
) -> Vec<(String, Vec<String>)> {
    let (_conn, ch) = confirm_channel(broker).await;
    let mut queues: Vec<&str> = bindings.iter().map(|b| b.0).collect();
    queues.dedup();
    for (queue, exchange, key, args) in bindings {
        declare_queue(&ch, queue).await;
        bind_queue(&ch, queue, exchange, key, args.clone()).await;
    }
    for (i, (exchange, key, headers)) in messages.iter().enumerate() {
        let mut props = BasicProperties::default();
        if let Some(h) = headers {
            props = props.with_headers(h.clone());
        }
        let c = publish_confirmed(
            &ch,
            exchange,
            key,
            BasicPublishOptions::default(),
            format!("m{i}").as_bytes(),
            props,
        )
        .await;
        assert!(c.is_ack());
    }
    let mut out = Vec::new();
    for q in queues {
        out.push((q.to_string(), strings(get_all(&ch, q).await)));
    }
    out
}

fn expect(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    pairs
        .iter()
        .map(|(q, ms)| (q.to_string(), ms.iter().map(|m| m.to_string()).collect()))
        .collect()
}

#[tokio::test]
async fn direct_exchange_routes_on_exact_key() {
    let broker = TestBroker::start().await;
    let none = FieldTable::default;
    let got = route(
        &broker,
        &[
            ("d1", "amq.direct", "red", none()),
            ("d2", "amq.direct", "red", none()),
            ("d2", "amq.direct", "blue", none()),
        ],
        &[
            ("amq.direct", "red", None),
            ("amq.direct", "blue", None),
            ("amq.direct", "green", None),
            ("amq.direct", "re", None),
        ],
    )
    .await;
    assert_eq!(got, expect(&[("d1", &["m0"]), ("d2", &["m0", "m1"])]));
}

#[tokio::test]
async fn fanout_exchange_ignores_the_key() {
    let broker = TestBroker::start().await;
    let none = FieldTable::default;
    let got = route(
        &broker,
        &[
            ("f1", "amq.fanout", "", none()),
            ("f2", "amq.fanout", "whatever", none()),
        ],
        &[("amq.fanout", "", None), ("amq.fanout", "x.y", None)],
    )
    .await;
    assert_eq!(got, expect(&[("f1", &["m0", "m1"]), ("f2", &["m0", "m1"])]));
}

#[tokio::test]
async fn topic_exchange_matches_star_and_hash() {
    let broker = TestBroker::start().await;
    let none = FieldTable::default;
    let got = route(
        &broker,
        &[
            ("t_star", "amq.topic", "a.*", none()),
            ("t_hash", "amq.topic", "a.#", none()),
            ("t_all", "amq.topic", "#", none()),
            ("t_mid", "amq.topic", "*.b.*", none()),
            ("t_exact", "amq.topic", "a.b", none()),
        ],
        &[
            ("amq.topic", "a", None),     // m0: a.# (zero words), #
            ("amq.topic", "a.b", None),   // m1: a.*, a.#, #, a.b
            ("amq.topic", "a.b.c", None), // m2: a.#, #, *.b.*
            ("amq.topic", "x.b.y", None), // m3: #, *.b.*
            ("amq.topic", "", None),      // m4: #
            ("amq.topic", "a.", None),    // m5: a.* (empty word), a.#, #
        ],
    )
    .await;
    assert_eq!(
        got,
        expect(&[
            ("t_star", &["m1", "m5"]),
            ("t_hash", &["m0", "m1", "m2", "m5"]),
            ("t_all", &["m0", "m1", "m2", "m3", "m4", "m5"]),
            ("t_mid", &["m2", "m3"]),
            ("t_exact", &["m1"]),
        ])
    );
}

fn table(pairs: &[(&str, &str)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), AMQPValue::LongString((*v).into()));
    }
    t
}

#[tokio::test]
async fn headers_exchange_matches_all_and_any() {
    let broker = TestBroker::start().await;
    let got = route(
        &broker,
        &[
            (
                "h_all",
                "amq.headers",
                "",
                table(&[("x-match", "all"), ("os", "linux"), ("arch", "arm")]),
            ),
            (
                "h_any",
                "amq.headers",
                "",
                table(&[("x-match", "any"), ("os", "linux"), ("arch", "arm")]),
            ),
            ("h_default", "amq.headers", "", table(&[("os", "mac")])),
        ],
        &[
            (
                "amq.headers",
                "",
                Some(table(&[("os", "linux"), ("arch", "arm")])),
            ), // m0: all, any
            (
                "amq.headers",
                "",
                Some(table(&[("os", "linux"), ("arch", "x86")])),
            ), // m1: any
            ("amq.headers", "", Some(table(&[("os", "mac")]))), // m2: default (all)
            ("amq.headers", "", None),                          // m3: none
            (
                "amq.headers",
                "ignored-key",
                Some(table(&[("arch", "arm"), ("extra", "1"), ("os", "linux")])),
            ), // m4: all, any
        ],
    )
    .await;
    assert_eq!(
        got,
        expect(&[
            ("h_all", &["m0", "m4"]),
            ("h_any", &["m0", "m1", "m4"]),
            ("h_default", &["m2"])
        ])
    );
}

#[tokio::test]
async fn exchange_to_exchange_binding_forwards_matching_messages() {
    let broker = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&broker).await;
    for (name, kind) in [
        ("e2e.src", ExchangeKind::Direct),
        ("e2e.dst", ExchangeKind::Fanout),
    ] {
        within(
            "exchange.declare",
            ch.exchange_declare(
                name.into(),
                kind,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
        .expect("exchange.declare");
    }
    within(
        "exchange.bind",
        ch.exchange_bind(
            "e2e.dst".into(),
            "e2e.src".into(),
            "k".into(),
            ExchangeBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.bind");
    declare_queue(&ch, "e2e.q").await;
    bind_queue(&ch, "e2e.q", "e2e.dst", "", FieldTable::default()).await;
    for key in ["k", "other"] {
        let c = publish_confirmed(
            &ch,
            "e2e.src",
            key,
            BasicPublishOptions::default(),
            key.as_bytes(),
            BasicProperties::default(),
        )
        .await;
        assert!(c.is_ack());
    }
    assert_eq!(strings(get_all(&ch, "e2e.q").await), vec!["k".to_string()]);

    within(
        "exchange.unbind",
        ch.exchange_unbind(
            "e2e.dst".into(),
            "e2e.src".into(),
            "k".into(),
            ExchangeUnbindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.unbind");
    let c = publish_confirmed(
        &ch,
        "e2e.src",
        "k",
        BasicPublishOptions::default(),
        b"late",
        BasicProperties::default(),
    )
    .await;
    assert!(c.is_ack());
    assert!(
        get_all(&ch, "e2e.q").await.is_empty(),
        "unbound exchange still forwards"
    );
}

#[tokio::test]
async fn server_named_queues_get_distinct_amq_gen_names() {
    let broker = TestBroker::start().await;
    let (_conn, ch) = confirm_channel(&broker).await;
    let q1 = declare_queue(&ch, "").await;
    let q2 = declare_queue(&ch, "").await;
    for q in [&q1, &q2] {
        assert!(
            q.name().as_str().starts_with("amq.gen-"),
            "server-named queue: {:?}",
            q.name()
        );
        assert!(
            q.name().as_str().len() > "amq.gen-".len() + 8,
            "name too short to be unique: {:?}",
            q.name()
        );
    }
    assert_ne!(q1.name(), q2.name());
    let c = publish_confirmed(
        &ch,
        "",
        q1.name().as_str(),
        BasicPublishOptions::default(),
        b"hi",
        BasicProperties::default(),
    )
    .await;
    assert!(c.is_ack());
    assert_eq!(get_all(&ch, q1.name().as_str()).await, vec![b"hi".to_vec()]);
}

#[tokio::test]
async fn exclusive_queue_is_deleted_when_its_connection_closes() {
    let broker = TestBroker::start().await;
    let owner = broker.connect().await;
    let och = open_channel(&owner).await;
    declare_queue_with(
        &och,
        "mine",
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
    )
    .await
    .expect("declare exclusive");

    let other = broker.connect().await;
    // While the owner lives the queue exists (405 = exists but locked, not 404).
    let ch = open_channel(&other).await;
    let err = passive_declare(&ch, "mine")
        .await
        .expect_err("exclusive queue is locked");
    assert_eq!(reply_code(&err), Some(405), "{err}");

    within("connection.close", owner.close(200, "bye".into()))
        .await
        .expect("close owner");
    let ch = open_channel(&other).await;
    let err = passive_declare(&ch, "mine")
        .await
        .expect_err("exclusive queue must be gone once close-ok was sent");
    assert_eq!(reply_code(&err), Some(404), "{err}");
}
