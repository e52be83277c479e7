//! The management HTTP API end to end: a broker started by the test, real AMQP and MQTT
//! clients, and HTTP requests over the loopback. (Handler-level cases are unit-tested in
//! `broker/src/mgmt/tests.rs` without sockets.)

use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ConnectionProperties};
use protocol_mqtt::{Connect, Packet, ProtocolVersion};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::api::Api;
use tests::mqtt::RawMqtt;
use tests::{TestBroker, next_delivery, publish_confirmed, within};

/// Polls `check` against the API until it holds. For state that follows a client's action
/// asynchronously on the broker side (a connection task ending after a close), where no
/// client-side event tells the test when the broker got there.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    within(what, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await; // poll interval, not synchronisation
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_over_http() {
    let broker = TestBroker::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/overview", broker.http_url());
    let none = http.get(&url).send().await.expect("request");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers().contains_key("www-authenticate"));
    let wrong = http
        .get(&url)
        .basic_auth("guest", Some("nope"))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.expect("JSON error body");
    assert_eq!(body["error"], "not_authorised");
    let metrics = http
        .get(format!("{}/metrics", broker.http_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(
        metrics.status(),
        StatusCode::OK,
        "/metrics needs no credentials"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_channels_and_consumers_of_real_clients() {
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    let conn = within(
        "connect",
        lapin::Connection::connect(
            &broker.amqp_uri(),
            ConnectionProperties::default().with_connection_name("billing-worker".into()),
        ),
    )
    .await
    .expect("connect");
    let ch = within("channel", conn.create_channel())
        .await
        .expect("channel");
    within("qos", ch.basic_qos(7, BasicQosOptions::default()))
        .await
        .expect("qos");
    within(
        "declare",
        ch.queue_declare(
            "jobs".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare");
    let _consumer = within(
        "consume",
        ch.basic_consume(
            "jobs".into(),
            "worker-1".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("consume");
    let mut connect = Connect::new(ProtocolVersion::V5, "sensor-7", 30);
    connect.username = Some("guest".into());
    connect.password = Some(bytes::Bytes::from_static(b"guest"));
    let (mut mqtt, connack) = RawMqtt::connect(broker.mqtt_addr(), connect)
        .await
        .expect("MQTT connect");
    assert!(matches!(connack, Packet::ConnAck(_)), "{connack:?}");

    let conns = api.get("/api/connections").await;
    let conns = conns.as_array().expect("array");
    assert_eq!(conns.len(), 2, "{conns:?}");
    let amqp = conns
        .iter()
        .find(|c| c["protocol"] == "AMQP 0-9-1")
        .expect("the AMQP connection");
    assert_eq!(amqp["user"], "guest");
    assert_eq!(amqp["vhost"], "/");
    assert_eq!(amqp["user_provided_name"], "billing-worker");
    assert_eq!(amqp["channels"], 1);
    assert_eq!(amqp["port"], broker.addr().port());
    assert!(
        amqp["recv_oct"].as_u64().unwrap_or(0) > 0 && amqp["send_oct"].as_u64().unwrap_or(0) > 0
    );
    let mqtt_conn = conns
        .iter()
        .find(|c| c["protocol"] == "MQTT 5.0")
        .expect("the MQTT connection");
    assert_eq!(mqtt_conn["client_properties"]["client_id"], "sensor-7");
    assert_eq!(mqtt_conn["channels"], 0);

    let name = amqp["name"].as_str().expect("name").to_string();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let one = api.get(&format!("/api/connections/{encoded}")).await;
    assert_eq!(one["name"], name.as_str());

    let channels = api.get("/api/channels").await;
    assert_eq!(channels.as_array().map(Vec::len), Some(1));
    assert_eq!(channels[0]["number"], 1);
    assert_eq!(channels[0]["consumer_count"], 1);
    assert_eq!(channels[0]["connection_details"]["name"], name.as_str());

    let consumers = api.get("/api/consumers").await;
    let c = consumers
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["consumer_tag"] == "worker-1")
        .expect("the lapin consumer")
        .clone();
    assert_eq!(c["queue"]["name"], "jobs");
    assert_eq!(c["prefetch_count"], 7);
    assert_eq!(c["ack_required"], true);
    assert_eq!(c["channel_details"]["number"], 1);
    assert_eq!(c["channel_details"]["connection_name"], name.as_str());

    let (status, _) = api
        .request(reqwest::Method::GET, "/api/connections/no%20such", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    drop(mqtt.send(&Packet::Disconnect(Default::default())).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_connection_tells_the_client_why() {
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    let conn = broker.connect().await;
    let mut events = Box::pin(conn.events_listener());
    let mut connect = Connect::new(ProtocolVersion::V5, "doomed", 30);
    connect.username = Some("guest".into());
    connect.password = Some(bytes::Bytes::from_static(b"guest"));
    let (mut mqtt, _) = RawMqtt::connect(broker.mqtt_addr(), connect)
        .await
        .expect("MQTT connect");

    let conns = api.get("/api/connections").await;
    let name_of = |protocol: &str| -> String {
        let c = conns
            .as_array()
            .expect("array")
            .iter()
            .find(|c| c["protocol"] == protocol)
            .expect("listed");
        c["name"].as_str().expect("name").to_string()
    };
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };

    let amqp_name = name_of("AMQP 0-9-1");
    let status = api
        .delete_with_reason(
            &format!("/api/connections/{}", encode(&amqp_name)),
            "maintenance window",
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let err = tests::next_error_event(&mut events).await;
    assert_eq!(tests::reply_code(&err), Some(320), "{err}");
    assert!(err.to_string().contains("maintenance window"), "{err}");

    let mqtt_name = name_of("MQTT 5.0");
    let (status, _) = api
        .request(
            reqwest::Method::DELETE,
            &format!("/api/connections/{}", encode(&mqtt_name)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let packets = mqtt.until_closed().await.expect("closed");
    match packets.as_slice() {
        [Packet::Disconnect(d)] => {
            assert_eq!(d.reason.0, 0x98, "Administrative action");
            assert_eq!(
                d.properties.reason_string.as_deref(),
                Some("Closed via management API")
            );
        }
        other => panic!("expected one DISCONNECT, got {other:?}"),
    }
    eventually("both connections to be gone from the list", || async {
        api.get("/api/connections")
            .await
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    let (status, _) = api
        .request(
            reqwest::Method::DELETE,
            &format!("/api/connections/{}", encode(&amqp_name)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_counts_and_counters_follow_real_traffic() {
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    let conn = broker.connect().await;
    let ch = within("channel", conn.create_channel())
        .await
        .expect("channel");
    within(
        "confirms",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    within(
        "declare",
        ch.queue_declare(
            "work".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare");
    for i in 0..3 {
        publish_confirmed(
            &ch,
            "",
            "work",
            Default::default(),
            format!("m{i}").as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await;
    }
    within("qos", ch.basic_qos(1, BasicQosOptions::default()))
        .await
        .expect("qos");
    let mut consumer = within(
        "consume",
        ch.basic_consume(
            "work".into(),
            "c".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("consume");
    let first = next_delivery(&mut consumer).await;
    within("ack", first.ack(Default::default()))
        .await
        .expect("ack");
    let second = next_delivery(&mut consumer).await;
    // A round trip through the same queue after the ack: the queue has handled it.
    within(
        "passive declare",
        ch.queue_declare(
            "work".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("passive declare");

    let q = api.get("/api/queues/%2F/work").await;
    assert_eq!(q["messages_ready"], 1, "{q}");
    assert_eq!(q["messages_unacknowledged"], 1, "{q}");
    assert_eq!(q["messages"], 2);
    assert_eq!(q["consumers"], 1);
    assert_eq!(q["durable"], true);
    assert_eq!(q["message_stats"]["publish"], 3);
    assert_eq!(q["message_stats"]["deliver"], 2);
    assert_eq!(q["message_stats"]["ack"], 1);

    // Peek shows the ready one without taking it from the consumer's queue.
    let (status, got) = api
        .request(
            reqwest::Method::POST,
            "/api/queues/%2F/work/get",
            Some(json!({"count": 10, "ackmode": "ack_requeue_true"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got.as_array().map(Vec::len), Some(1));
    assert_eq!(got[0]["payload"], "m2");
    assert_eq!(got[0]["properties"]["delivery_mode"], 2);

    let metrics = reqwest::get(format!("{}/metrics", broker.http_url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "broker_connections 1\n",
        "broker_channels 1\n",
        "broker_queue_messages_ready{vhost=\"/\",queue=\"work\"} 1\n",
        "broker_queue_messages_unacked{vhost=\"/\",queue=\"work\"} 1\n",
        "broker_queue_messages_published_total{vhost=\"/\",queue=\"work\"} 3\n",
        "broker_queue_messages_acked_total{vhost=\"/\",queue=\"work\"} 1\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    assert!(
        metrics.contains("process_resident_memory_bytes "),
        "{metrics}"
    );
    let storage_line = metrics
        .lines()
        .find(|l| l.starts_with("broker_storage_bytes "))
        .expect("storage size");
    assert_ne!(
        storage_line, "broker_storage_bytes 0",
        "persistent messages are on disk"
    );

    let overview = api.get("/api/overview").await;
    assert_eq!(overview["object_totals"]["connections"], 1);
    assert_eq!(overview["object_totals"]["consumers"], 1);
    assert_eq!(overview["queue_totals"]["messages"], 2);
    let http_listener = overview["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .find(|l| l["protocol"] == "http")
        .expect("http listener")
        .clone();
    assert_eq!(http_listener["port"], broker.http_addr().port());

    // The API's purge and the AMQP consumer agree.
    let (status, _) = api
        .request(
            reqwest::Method::DELETE,
            "/api/queues/%2F/work/contents",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    within("ack", second.ack(Default::default()))
        .await
        .expect("ack");
    within(
        "passive declare",
        ch.queue_declare(
            "work".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("passive declare");
    let q = api.get("/api/queues/%2F/work").await;
    assert_eq!(q["messages"], 0, "{q}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_over_http_used_over_amqp_and_survives_restart() {
    let mut broker = TestBroker::start().await;
    let api = Api::new(&broker);
    let (s, _) = api
        .request(
            reqwest::Method::PUT,
            "/api/exchanges/%2F/orders",
            Some(json!({"type": "topic", "durable": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = api
        .request(
            reqwest::Method::PUT,
            "/api/queues/%2F/eu-orders",
            Some(json!({"durable": true})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = api
        .request(
            reqwest::Method::POST,
            "/api/bindings/%2F/e/orders/q/eu-orders",
            Some(json!({"routing_key": "eu.#"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, body) = api
        .request(
            reqwest::Method::PUT,
            "/api/queues/%2F/eu-orders",
            Some(json!({"durable": false})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "bad_request");

    let conn = broker.connect().await;
    let ch = within("channel", conn.create_channel())
        .await
        .expect("channel");
    within(
        "confirms",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    publish_confirmed(
        &ch,
        "orders",
        "eu.de.new",
        Default::default(),
        b"order-1",
        BasicProperties::default().with_delivery_mode(2),
    )
    .await;
    let q = api.get("/api/queues/%2F/eu-orders").await;
    assert_eq!(
        q["messages_ready"], 1,
        "the API's binding routes AMQP publishes"
    );
    drop(ch);
    drop(conn);

    broker.restart().await;
    let api = Api::new(&broker);
    let q = api.get("/api/queues/%2F/eu-orders").await;
    assert_eq!(
        q["messages_ready"], 1,
        "durable queue and message recovered"
    );
    let b = api.get("/api/bindings/%2F/e/orders/q/eu-orders").await;
    assert_eq!(b[0]["routing_key"], "eu.#");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_exported_from_one_broker_rebuild_another() {
    let source = TestBroker::start().await;
    let api = Api::new(&source);
    let conn = source.connect().await;
    let ch = within("channel", conn.create_channel())
        .await
        .expect("channel");
    within(
        "exchange",
        ch.exchange_declare(
            "events".into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("exchange.declare");
    let mut args = FieldTable::default();
    args.insert(
        "x-max-length".into(),
        lapin::types::AMQPValue::LongLongInt(100),
    );
    within(
        "queue",
        ch.queue_declare(
            "audit".into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        ),
    )
    .await
    .expect("queue.declare");
    within(
        "bind",
        ch.queue_bind(
            "audit".into(),
            "events".into(),
            "order.*".into(),
            Default::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("queue.bind");
    // Exclusive queues belong to their connection and are not exported.
    within(
        "exclusive",
        ch.queue_declare(
            "mine".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect("exclusive declare");
    let exported = api.get("/api/definitions").await;
    let queue_names: Vec<&str> = exported["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    assert_eq!(queue_names, ["audit"]);

    let target = TestBroker::start().await;
    let target_api = Api::new(&target);
    let (status, summary) = target_api
        .request(
            reqwest::Method::POST,
            "/api/definitions",
            Some(exported.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(
        target_api.get("/api/definitions").await,
        exported,
        "round trip"
    );

    // The rebuilt topology routes.
    let conn = target.connect().await;
    let ch = within("channel", conn.create_channel())
        .await
        .expect("channel");
    within(
        "confirms",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    publish_confirmed(
        &ch,
        "events",
        "order.created",
        Default::default(),
        b"hello",
        BasicProperties::default(),
    )
    .await;
    let bodies = tests::get_all(&ch, "audit").await;
    assert_eq!(bodies, vec![b"hello".to_vec()]);
}
