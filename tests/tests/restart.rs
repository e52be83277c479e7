//! Clean shutdown and restart on the same data directory: durable topology
//! and persistent messages on durable queues come back; transient queues and
//! transient messages do not.

use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use tests::{TestBroker, get_all, publish_confirmed, reply_code, within};

async fn confirm_channel(conn: &Connection) -> Channel {
    let ch = within("channel.open", conn.create_channel())
        .await
        .expect("open channel");
    within(
        "confirm.select",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    ch
}

/// Publishes with delivery-mode `mode` (2 persistent, 1 transient, `None`
/// = property absent, which also means transient).
async fn publish(ch: &Channel, exchange: &str, key: &str, body: &str, mode: Option<u8>) {
    let props = match mode {
        Some(m) => BasicProperties::default().with_delivery_mode(m),
        None => BasicProperties::default(),
    };
    let c = publish_confirmed(
        ch,
        exchange,
        key,
        BasicPublishOptions::default(),
        body.as_bytes(),
        props,
    )
    .await;
    assert!(c.is_ack(), "{body}: {c:?}");
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

fn passive(durable: bool) -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        durable,
        ..Default::default()
    }
}

fn bodies(v: Vec<Vec<u8>>) -> Vec<String> {
    v.into_iter()
        .map(|b| String::from_utf8(b).expect("utf-8"))
        .collect()
}

#[tokio::test]
async fn durable_topology_and_persistent_messages_survive_a_clean_restart() {
    let mut broker = TestBroker::start().await;
    {
        let conn = broker.connect().await;
        let ch = confirm_channel(&conn).await;
        within(
            "exchange.declare",
            ch.exchange_declare(
                "orders".into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ),
        )
        .await
        .expect("declare durable exchange");
        within(
            "queue.declare",
            ch.queue_declare("orders.eu".into(), durable(), FieldTable::default()),
        )
        .await
        .expect("declare durable queue");
        within(
            "queue.bind",
            ch.queue_bind(
                "orders.eu".into(),
                "orders".into(),
                "eu.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
        .expect("bind");
        publish(&ch, "orders", "eu.de", "p1", Some(2)).await;
        publish(&ch, "orders", "eu.fr", "t1", Some(1)).await; // transient on a durable queue
        publish(&ch, "orders", "eu.it", "p2", Some(2)).await;
        publish(&ch, "orders", "us.ny", "unrouted", Some(2)).await;
        publish(&ch, "", "orders.eu", "p3", Some(2)).await;
        within("connection.close", conn.close(200, "bye".into()))
            .await
            .expect("close");
    }
    {
        // Ack one message before the restart: it must stay gone.
        let conn = broker.connect().await;
        let ch = confirm_channel(&conn).await;
        let first = within(
            "basic.get",
            ch.basic_get("orders.eu".into(), BasicGetOptions::default()),
        )
        .await
        .expect("get")
        .expect("a message");
        assert_eq!(first.delivery.data, b"p1");
        within("ack", first.delivery.ack(BasicAckOptions::default()))
            .await
            .expect("ack");
        within("connection.close", conn.close(200, "bye".into()))
            .await
            .expect("close");
    }

    broker.restart().await;

    let conn = broker.connect().await;
    let ch = confirm_channel(&conn).await;
    let q = within(
        "passive declare",
        ch.queue_declare("orders.eu".into(), passive(true), FieldTable::default()),
    )
    .await
    .expect("durable queue survives");
    // p1 was acked, t1 was transient, "unrouted" never reached the queue.
    assert_eq!(q.message_count(), 2);
    assert_eq!(bodies(get_all(&ch, "orders.eu").await), vec!["p2", "p3"]);
    // The durable exchange and its binding survived too: routing still works.
    within(
        "exchange.declare",
        ch.exchange_declare(
            "orders".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("durable exchange survives");
    publish(&ch, "orders", "eu.es", "after", Some(2)).await;
    assert_eq!(
        bodies(get_all(&ch, "orders.eu").await),
        vec!["after"],
        "binding survives"
    );
}

#[tokio::test]
async fn transient_queues_and_messages_are_gone_after_a_restart() {
    let mut broker = TestBroker::start().await;
    {
        let conn = broker.connect().await;
        let ch = confirm_channel(&conn).await;
        within(
            "declare",
            ch.queue_declare(
                "temp".into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
        .expect("declare transient queue");
        within(
            "declare",
            ch.queue_declare("keep".into(), durable(), FieldTable::default()),
        )
        .await
        .expect("declare durable queue");
        within(
            "exchange.declare",
            ch.exchange_declare(
                "temp.x".into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
        .expect("declare transient exchange");
        publish(&ch, "", "temp", "persistent-in-transient-queue", Some(2)).await;
        publish(&ch, "", "keep", "transient", Some(1)).await;
        publish(&ch, "", "keep", "no-delivery-mode", None).await;
        within("connection.close", conn.close(200, "bye".into()))
            .await
            .expect("close");
    }

    broker.restart().await;

    let conn = broker.connect().await;
    let ch = confirm_channel(&conn).await;
    let err = within(
        "passive declare",
        ch.queue_declare("temp".into(), passive(false), FieldTable::default()),
    )
    .await
    .expect_err("transient queue must not survive");
    assert_eq!(reply_code(&err), Some(404), "{err}");
    let ch = confirm_channel(&conn).await;
    let err = within(
        "passive exchange.declare",
        ch.exchange_declare(
            "temp.x".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("transient exchange must not survive");
    assert_eq!(reply_code(&err), Some(404), "{err}");
    let ch = confirm_channel(&conn).await;
    let q = within(
        "passive declare",
        ch.queue_declare("keep".into(), passive(true), FieldTable::default()),
    )
    .await
    .expect("durable queue survives");
    assert_eq!(q.message_count(), 0, "transient messages must not survive");
}
