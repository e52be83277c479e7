//! Virtual hosts end to end: each vhost its own exchanges and queues, connection.open checks
//! (missing vhost, no permissions), deleting a vhost through the management API (its
//! connections closed with 320, its queues gone), vhosts surviving a restart, MQTT clients
//! choosing a vhost with `vhost:user`, and definitions export → import with vhosts, users and
//! permissions.

use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::amqp::confirm_channel;
use tests::api::Api;
use tests::mqtt::{V4Client, v4_options};
use tests::{
    TestBroker, assert_no_delivery, get_all, next_delivery, next_error_event, publish_confirmed,
    reply_code, within,
};

/// Opens a lapin connection as `user` to `vhost` (URL-encoded by the caller).
async fn open(broker: &TestBroker, user: &str, vhost: &str) -> Result<Connection, lapin::Error> {
    let uri = format!("amqp://{user}:{user}@{}/{vhost}", broker.addr());
    within(
        "connection.open",
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
}

async fn declare(ch: &Channel, queue: &str, durable: bool) {
    let opts = QueueDeclareOptions {
        durable,
        ..QueueDeclareOptions::default()
    };
    within(
        "queue.declare",
        ch.queue_declare(queue.into(), opts, FieldTable::default()),
    )
    .await
    .expect("queue.declare");
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhosts_are_separate_and_deleting_one_closes_its_connections() {
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    api.create("/api/vhosts/a", json!({})).await;
    api.create(
        "/api/permissions/a/guest",
        json!({"configure": ".*", "write": ".*", "read": ".*"}),
    )
    .await;

    // The same queue name in "/" and in "a": two queues.
    let root = broker.connect().await;
    let in_a = open(&broker, "guest", "a").await.expect("open vhost a");
    let root_ch = confirm_channel(&root).await;
    let a_ch = confirm_channel(&in_a).await;
    declare(&root_ch, "q", false).await;
    declare(&a_ch, "q", false).await;
    publish_confirmed(
        &a_ch,
        "",
        "q",
        BasicPublishOptions::default(),
        b"in a",
        BasicProperties::default(),
    )
    .await;
    assert_eq!(
        get_all(&root_ch, "q").await,
        Vec::<Vec<u8>>::new(),
        "not seen in /"
    );
    assert_eq!(get_all(&a_ch, "q").await, vec![b"in a".to_vec()]);
    // Reply texts name the connection's vhost.
    let err = within(
        "passive queue.declare",
        a_ch.queue_declare(
            "missing".into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("no such queue");
    assert_eq!(reply_code(&err), Some(404), "{err}");
    assert!(
        err.to_string().contains("no queue 'missing' in vhost 'a'"),
        "{err}"
    );

    let (_, conns) = api
        .request(reqwest::Method::GET, "/api/vhosts/a/connections", None)
        .await;
    assert_eq!(conns.as_array().map(Vec::len), Some(1), "{conns}");
    // Deleting "a" closes its connection with 320 and takes its queue; "/" is untouched.
    let mut events = Box::pin(in_a.events_listener());
    let (status, _) = api
        .request(reqwest::Method::DELETE, "/api/vhosts/a", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let err = next_error_event(&mut events).await;
    assert_eq!(reply_code(&err), Some(320), "{err}");
    let (status, _) = api
        .request(reqwest::Method::GET, "/api/queues/a/q", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, queues) = api.request(reqwest::Method::GET, "/api/queues", None).await;
    let vhosts: Vec<&Value> = queues
        .as_array()
        .map(|a| a.iter().map(|q| &q["vhost"]).collect())
        .unwrap_or_default();
    assert_eq!(vhosts, vec![&json!("/")]);
    let (_, perms) = api
        .request(reqwest::Method::GET, "/api/permissions", None)
        .await;
    assert!(
        perms
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["vhost"] == "/")),
        "{perms}"
    );
    // Recreated, it starts empty: no queue, no permissions.
    api.create("/api/vhosts/a", json!({})).await;
    let err = open(&broker, "guest", "a")
        .await
        .expect_err("no permissions in the new a");
    assert_eq!(reply_code(&err), Some(530), "{err}");
    root.close(200, "bye".into()).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_open_checks_that_the_vhost_exists_and_is_permitted() {
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    let err = open(&broker, "guest", "nowhere")
        .await
        .expect_err("missing vhost");
    assert_eq!(reply_code(&err), Some(530), "{err}");
    assert!(err.to_string().contains("vhost nowhere not found"), "{err}");

    for vhost in ["a", "b"] {
        api.create(&format!("/api/vhosts/{vhost}"), json!({})).await;
    }
    api.create("/api/users/alice", json!({"password": "alice", "tags": ""}))
        .await;
    api.create(
        "/api/permissions/a/alice",
        json!({"configure": ".*", "write": ".*", "read": ".*"}),
    )
    .await;
    let conn = open(&broker, "alice", "a").await.expect("alice in a");
    conn.close(200, "bye".into()).await.expect("close");
    let err = open(&broker, "alice", "b")
        .await
        .expect_err("alice not in b");
    assert_eq!(reply_code(&err), Some(530), "{err}");
    assert!(
        err.to_string()
            .contains("access to vhost 'b' refused for user 'alice'"),
        "{err}"
    );
    // Only administrators create vhosts.
    let alice = Api::as_user(&broker, "alice", "alice");
    let (status, _) = alice
        .request(reqwest::Method::PUT, "/api/vhosts/c", None)
        .await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhosts_and_their_durable_queues_survive_a_restart() {
    let mut broker = TestBroker::start().await;
    let api = Api::new(&broker);
    api.create(
        "/api/vhosts/keep",
        json!({"description": "kept", "tags": ["t"]}),
    )
    .await;
    api.create(
        "/api/permissions/keep/guest",
        json!({"configure": ".*", "write": ".*", "read": ".*"}),
    )
    .await;
    let conn = open(&broker, "guest", "keep").await.expect("open keep");
    let ch = confirm_channel(&conn).await;
    declare(&ch, "durable-q", true).await;
    for body in [b"one".as_slice(), b"two"] {
        publish_confirmed(
            &ch,
            "",
            "durable-q",
            BasicPublishOptions::default(),
            body,
            persistent(),
        )
        .await;
    }
    conn.close(200, "bye".into()).await.expect("close");

    broker.restart().await;
    let api = Api::new(&broker);
    let (status, v) = api
        .request(reqwest::Method::GET, "/api/vhosts/keep", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["description"], "kept");
    assert_eq!(v["tags"], json!(["t"]));
    let conn = open(&broker, "guest", "keep")
        .await
        .expect("open keep after restart");
    let ch = confirm_channel(&conn).await;
    assert_eq!(
        get_all(&ch, "durable-q").await,
        vec![b"one".to_vec(), b"two".to_vec()]
    );
    // "/" is still there too, without that queue.
    let root = broker.connect().await;
    let root_ch = confirm_channel(&root).await;
    let err = within(
        "passive queue.declare",
        root_ch.queue_declare(
            "durable-q".into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("not in /");
    assert_eq!(reply_code(&err), Some(404), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_user_name_selects_the_vhost() {
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    api.create("/api/vhosts/a", json!({})).await;
    api.create(
        "/api/permissions/a/guest",
        json!({"configure": ".*", "write": ".*", "read": ".*"}),
    )
    .await;
    // AMQP consumers on amq.topic in "a" and in "/".
    let mut consumers = Vec::new();
    for vhost in ["a", "%2f"] {
        let conn = open(&broker, "guest", vhost).await.expect("open");
        let ch = confirm_channel(&conn).await;
        declare(&ch, "sensors", false).await;
        within(
            "queue.bind",
            ch.queue_bind(
                "sensors".into(),
                "amq.topic".into(),
                "sensors.#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
        .expect("bind");
        let consumer = within(
            "basic.consume",
            ch.basic_consume(
                "sensors".into(),
                "c".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await
        .expect("consume");
        consumers.push((conn, ch, consumer));
    }

    let mut opts = v4_options(broker.mqtt_addr(), "dev-1");
    opts.set_credentials("a:guest", "guest");
    let (mut client, _) = V4Client::connect(opts).await;
    client
        .publish(
            "sensors/t1",
            rumqttc::QoS::AtLeastOnce,
            false,
            b"21.5".to_vec(),
        )
        .await;
    let d = next_delivery(&mut consumers[0].2).await;
    assert_eq!(d.data, b"21.5");
    assert_no_delivery(&mut consumers[1].2, Duration::from_millis(300)).await;
    // The connection is listed in its vhost.
    let (_, conns) = api
        .request(reqwest::Method::GET, "/api/connections", None)
        .await;
    let mqtt_vhosts: Vec<&Value> = conns
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| {
                    c["protocol"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("MQTT"))
                })
                .map(|c| &c["vhost"])
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(mqtt_vhosts, vec![&json!("a")], "{conns}");

    // Retained messages live in the vhost: a subscriber in "a" gets it, one in "/" does not.
    client
        .publish(
            "status/dev-1",
            rumqttc::QoS::AtLeastOnce,
            true,
            b"up".to_vec(),
        )
        .await;
    let mut opts = v4_options(broker.mqtt_addr(), "watcher");
    opts.set_credentials("a:guest", "guest");
    let (mut watcher, _) = V4Client::connect(opts).await;
    watcher
        .subscribe("status/#", rumqttc::QoS::AtLeastOnce)
        .await;
    assert_eq!(watcher.next_publish().await.payload.as_ref(), b"up");
    let mut opts = v4_options(broker.mqtt_addr(), "watcher");
    opts.set_credentials("guest", "guest");
    let (mut root_watcher, _) = V4Client::connect(opts).await;
    root_watcher
        .subscribe("status/#", rumqttc::QoS::AtLeastOnce)
        .await;
    root_watcher
        .assert_no_publish(Duration::from_millis(300))
        .await;
    // Same client id in "/" and in "a": two sessions, no takeover.
    client
        .publish(
            "status/dev-1",
            rumqttc::QoS::AtLeastOnce,
            false,
            b"still".to_vec(),
        )
        .await;
    assert_eq!(watcher.next_publish().await.payload.as_ref(), b"still");

    // Deleting "a" closes its MQTT connections and drops its retained messages; the client
    // with the same id in "/" is another session and stays.
    let (status, _) = api
        .request(reqwest::Method::DELETE, "/api/vhosts/a", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    client.closed().await;
    watcher.closed().await;
    api.create("/api/vhosts/a", json!({})).await;
    api.create(
        "/api/permissions/a/guest",
        json!({"configure": ".*", "write": ".*", "read": ".*"}),
    )
    .await;
    let mut opts = v4_options(broker.mqtt_addr(), "watcher-2");
    opts.set_credentials("a:guest", "guest");
    let (mut fresh, _) = V4Client::connect(opts).await;
    fresh.subscribe("status/#", rumqttc::QoS::AtLeastOnce).await;
    fresh.assert_no_publish(Duration::from_millis(300)).await;
    fresh.disconnect().await;
    root_watcher.disconnect().await;

    // A vhost that does not exist: refused as bad credentials, as RabbitMQ does.
    let mut opts = v4_options(broker.mqtt_addr(), "dev-2");
    opts.set_credentials("nowhere:guest", "guest");
    match V4Client::try_connect(opts).await {
        Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, rumqttc::ConnectReturnCode::BadUserNamePassword)
        }
        Err(e) => panic!("expected CONNACK 0x04, got {e:?}"),
        Ok(_) => panic!("a missing vhost was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_round_trip_with_vhosts_users_and_permissions() {
    let source = TestBroker::start().await;
    let api = Api::new(&source);
    api.create("/api/vhosts/shop", json!({"description": "the shop"}))
        .await;
    api.create(
        "/api/users/bob",
        json!({"password": "bob", "tags": ["management"]}),
    )
    .await;
    api.create(
        "/api/permissions/shop/bob",
        json!({"configure": "^orders", "write": ".*", "read": ".*"}),
    )
    .await;
    api.create("/api/queues/shop/orders", json!({"durable": true}))
        .await;
    let (status, exported) = api
        .request(reqwest::Method::GET, "/api/definitions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let bob = exported["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["name"] == "bob"))
        .cloned()
        .expect("bob exported");
    assert_eq!(bob["hashing_algorithm"], "argon2id");
    assert!(
        bob["password_hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("$argon2id$")),
        "{bob}"
    );

    let target = TestBroker::start().await;
    let api = Api::new(&target);
    let (status, summary) = api
        .request(
            reqwest::Method::POST,
            "/api/definitions",
            Some(exported.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["skipped_users"], json!([]));
    let (_, again) = api
        .request(reqwest::Method::GET, "/api/definitions", None)
        .await;
    for section in [
        "vhosts",
        "users",
        "permissions",
        "queues",
        "exchanges",
        "bindings",
    ] {
        assert_eq!(again[section], exported[section], "{section}");
    }
    // Bob logs in to the imported vhost with his old password, and is held to his permissions.
    let conn = open(&target, "bob", "shop")
        .await
        .expect("bob logs in after import");
    let ch = confirm_channel(&conn).await;
    declare(&ch, "orders", true).await;
    let err = within(
        "queue.declare",
        ch.queue_declare(
            "other".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect_err("configure is ^orders");
    assert_eq!(reply_code(&err), Some(403), "{err}");
    assert!(
        err.to_string()
            .contains("access to queue 'other' in vhost 'shop' refused for user 'bob'"),
        "{err}"
    );
}
