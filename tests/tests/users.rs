//! Users: the default user, replacing it through the config, logins over AMQP, MQTT and the
//! management API checked against the stored (argon2-hashed) users, and users surviving a
//! restart.

use lapin::{Connection, ConnectionProperties};
use tests::mqtt::{V4Client, V5Client, v4_options, v5_options};
use tests::{TestBroker, reply_code, within};

async fn amqp_login(
    broker: &TestBroker,
    user: &str,
    pass: &str,
) -> Result<Connection, lapin::Error> {
    let uri = format!("amqp://{user}:{pass}@{}/%2f", broker.addr());
    within(
        "AMQP login",
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
}

fn api_status(broker: &TestBroker, user: &str, pass: &str, path: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(format!("{}{path}", broker.http_url()))
        .basic_auth(user, Some(pass))
        .send()
        .expect("API reachable")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_user_replaced_by_config_and_kept_across_restarts() {
    let mut broker = TestBroker::start_with(|c| {
        c.default_user = "admin".into();
        c.default_pass = "s3cret".into();
    })
    .await;
    let conn = amqp_login(&broker, "admin", "s3cret")
        .await
        .expect("admin logs in");
    conn.close(200, "bye".into()).await.expect("close");
    // guest was not created, so it cannot log in (403 with authentication_failure_close).
    let err = amqp_login(&broker, "guest", "guest")
        .await
        .expect_err("no guest");
    assert_eq!(reply_code(&err), Some(403), "{err}");
    let err = amqp_login(&broker, "admin", "wrong")
        .await
        .expect_err("wrong password");
    assert_eq!(reply_code(&err), Some(403), "{err}");

    // MQTT 3.1.1 and 5.0 logins go through the same users.
    let mut opts = v4_options(broker.mqtt_addr(), "u-v4");
    opts.set_credentials("admin", "s3cret");
    let (client, _) = V4Client::connect(opts).await;
    client.disconnect().await;
    let mut opts = v4_options(broker.mqtt_addr(), "u-v4-bad");
    opts.set_credentials("admin", "nope");
    match V4Client::try_connect(opts).await {
        Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(code, rumqttc::ConnectReturnCode::BadUserNamePassword)
        }
        Err(e) => panic!("expected CONNACK 0x04, got {e:?}"),
        Ok(_) => panic!("a wrong password was accepted (3.1.1)"),
    }
    let mut opts = v5_options(broker.mqtt_addr(), "u-v5-bad");
    opts.set_credentials("guest", "guest");
    match V5Client::try_connect(opts).await {
        Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(
                code,
                rumqttc::v5::mqttbytes::v5::ConnectReturnCode::BadUserNamePassword
            )
        }
        Err(e) => panic!("expected CONNACK 0x86, got {e:?}"),
        Ok(_) => panic!("guest was accepted though it was never created (5.0)"),
    }

    // The management API too.
    let url_broker = &broker;
    let (ok, bad) = tokio::task::block_in_place(|| {
        (
            api_status(url_broker, "admin", "s3cret", "/api/whoami"),
            api_status(url_broker, "admin", "wrong", "/api/whoami"),
        )
    });
    assert_eq!((ok, bad), (200, 401));

    // After a restart with other defaults, the stored user is still there and no new
    // default user is created (users exist).
    broker.restart().await;
    let conn = amqp_login(&broker, "admin", "s3cret")
        .await
        .expect("admin after restart");
    conn.close(200, "bye".into()).await.expect("close");
    let err = amqp_login(&broker, "guest", "guest")
        .await
        .expect_err("still no guest");
    assert_eq!(reply_code(&err), Some(403), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_stored_hashed() {
    let broker = TestBroker::start_with(|c| {
        c.default_user = "admin".into();
        c.default_pass = "plain-text-marker".into();
    })
    .await;
    let text = tokio::task::block_in_place(|| {
        reqwest::blocking::Client::new()
            .get(format!("{}/api/whoami", broker.http_url()))
            .basic_auth("admin", Some("plain-text-marker"))
            .send()
            .expect("API")
            .text()
            .expect("body")
    });
    assert!(text.contains("administrator"), "{text}");
    // Nothing under the data directory contains the password in plain text.
    let mut found = false;
    for entry in walk(broker.data_dir()) {
        if let Ok(bytes) = std::fs::read(&entry)
            && bytes.windows(17).any(|w| w == b"plain-text-marker")
        {
            found = true;
        }
    }
    assert!(!found, "the password is stored in plain text");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A request to the management API as `user`; returns the status.
fn api(
    broker: &TestBroker,
    method: &str,
    path: &str,
    auth: (&str, &str),
    body: Option<serde_json::Value>,
) -> u16 {
    let client = reqwest::blocking::Client::new();
    let url = format!("{}{path}", broker.http_url());
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, url).basic_auth(auth.0, Some(auth.1));
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().expect("API reachable").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_permissions_managed_through_the_api() {
    let mut broker = TestBroker::start().await;
    let guest = ("guest", "guest");
    let b = &broker;
    tokio::task::block_in_place(|| {
        assert_eq!(
            api(
                b,
                "PUT",
                "/api/users/alice",
                guest,
                Some(serde_json::json!({"password": "pw-a", "tags": ""}))
            ),
            201
        );
        assert_eq!(
            api(
                b,
                "PUT",
                "/api/users/mon",
                guest,
                Some(serde_json::json!({"password": "pw-m", "tags": "monitoring"}))
            ),
            201
        );
        // A bad regex is refused; an unknown user has no permissions to set.
        assert_eq!(
            api(
                b,
                "PUT",
                "/api/permissions/%2F/alice",
                guest,
                Some(serde_json::json!({"configure": "(", "write": ".*", "read": ".*"}))
            ),
            400
        );
        assert_eq!(
            api(
                b,
                "PUT",
                "/api/permissions/%2F/nobody",
                guest,
                Some(serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
            ),
            404
        );
        // Bad credentials: 401; a monitoring user may read but not change (403); a user
        // without tags may not even read.
        assert_eq!(api(b, "GET", "/api/users", ("mon", "wrong"), None), 401);
        assert_eq!(api(b, "GET", "/api/users", ("mon", "pw-m"), None), 200);
        assert_eq!(
            api(
                b,
                "PUT",
                "/api/queues/%2F/q1",
                ("mon", "pw-m"),
                Some(serde_json::json!({"durable": true}))
            ),
            403
        );
        assert_eq!(api(b, "GET", "/api/queues", ("alice", "pw-a"), None), 403);
    });

    // alice exists but has no access to vhost "/" yet: 530 on connection.open.
    let err = amqp_login(&broker, "alice", "pw-a")
        .await
        .expect_err("no vhost access");
    assert_eq!(reply_code(&err), Some(530), "{err}");
    let mut opts = v5_options(broker.mqtt_addr(), "alice-v5");
    opts.set_credentials("alice", "pw-a");
    match V5Client::try_connect(opts).await {
        Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => {
            assert_eq!(
                code,
                rumqttc::v5::mqttbytes::v5::ConnectReturnCode::NotAuthorized
            )
        }
        Err(e) => panic!("expected CONNACK 0x87, got {e:?}"),
        Ok(_) => panic!("a user without vhost access was accepted"),
    }

    let b = &broker;
    tokio::task::block_in_place(|| {
        assert_eq!(
            api(
                b,
                "PUT",
                "/api/permissions/%2F/alice",
                guest,
                Some(serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
            ),
            201
        );
    });
    let conn = amqp_login(&broker, "alice", "pw-a")
        .await
        .expect("alice logs in");
    conn.close(200, "bye".into()).await.expect("close");
    let mut opts = v4_options(broker.mqtt_addr(), "alice-v4");
    opts.set_credentials("alice", "pw-a");
    let (client, _) = V4Client::connect(opts).await;
    client.disconnect().await;

    // Users and permissions survive a restart; a changed password takes effect.
    broker.restart().await;
    let b = &broker;
    tokio::task::block_in_place(|| {
        assert_eq!(
            api(b, "GET", "/api/permissions/%2F/alice", guest, None),
            200
        );
        assert_eq!(
            api(
                b,
                "PUT",
                "/api/users/alice",
                guest,
                Some(serde_json::json!({"password": "pw-b"}))
            ),
            204
        );
    });
    let conn = amqp_login(&broker, "alice", "pw-b")
        .await
        .expect("new password");
    conn.close(200, "bye".into()).await.expect("close");
    let err = amqp_login(&broker, "alice", "pw-a")
        .await
        .expect_err("old password");
    assert_eq!(reply_code(&err), Some(403), "{err}");

    // Deleting the user ends their logins.
    let b = &broker;
    tokio::task::block_in_place(|| {
        assert_eq!(api(b, "DELETE", "/api/users/alice", guest, None), 204);
        assert_eq!(api(b, "DELETE", "/api/users/alice", guest, None), 404);
    });
    let err = amqp_login(&broker, "alice", "pw-b")
        .await
        .expect_err("deleted");
    assert_eq!(reply_code(&err), Some(403), "{err}");
}

/// Creates `name` (password `pw`) with the given permissions on `/` through the API.
fn user_with(broker: &TestBroker, name: &str, configure: &str, write: &str, read: &str) {
    let guest = ("guest", "guest");
    let body = serde_json::json!({"password": "pw", "tags": ""});
    assert_eq!(
        api(
            broker,
            "PUT",
            &format!("/api/users/{name}"),
            guest,
            Some(body)
        ),
        201
    );
    let perms = serde_json::json!({"configure": configure, "write": write, "read": read});
    assert_eq!(
        api(
            broker,
            "PUT",
            &format!("/api/permissions/%2F/{name}"),
            guest,
            Some(perms)
        ),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_operations_are_checked_against_permissions() {
    use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let broker = TestBroker::start().await;
    let b = &broker;
    tokio::task::block_in_place(|| {
        // May configure only "own.*", write only to amq.default, read nothing.
        user_with(b, "limited", "^own\\.", "^amq\\.default$", "");
    });
    // guest makes a queue the limited user may not configure.
    let admin = broker.connect().await;
    let ach = admin.create_channel().await.expect("channel");
    ach.queue_declare(
        "theirs".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("guest declares");

    let conn = amqp_login(&broker, "limited", "pw").await.expect("login");
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(
        "own.q".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("configure allowed on own.q");
    let err = ch
        .queue_declare(
            "theirs".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("configure refused");
    assert_eq!(reply_code(&err), Some(403), "{err}");
    assert!(
        err.to_string()
            .contains("access to queue 'theirs' in vhost '/' refused for user 'limited'"),
        "{err}"
    );

    // Read refused: basic.consume on its own queue.
    let ch = conn.create_channel().await.expect("channel");
    let err = ch
        .basic_consume(
            "own.q".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("read refused");
    assert_eq!(reply_code(&err), Some(403), "{err}");

    // Write: allowed to the default exchange, refused to amq.direct (asynchronous error).
    let ch = conn.create_channel().await.expect("channel");
    ch.basic_publish(
        "".into(),
        "own.q".into(),
        BasicPublishOptions::default(),
        b"ok",
        Default::default(),
    )
    .await
    .expect("publish to the default exchange");
    let mut events = conn.events_listener();
    ch.basic_publish(
        "amq.direct".into(),
        "x".into(),
        BasicPublishOptions::default(),
        b"no",
        Default::default(),
    )
    .await
    .expect("publish sent");
    let err = tests::next_error_event(&mut events).await;
    assert_eq!(reply_code(&err), Some(403), "{err}");

    // The allowed publish arrived (guest reads it).
    let got = tests::get_all(&ach, "own.q").await;
    assert_eq!(got, vec![b"ok".to_vec()]);

    // Granting read takes effect on the open connection.
    let b = &broker;
    tokio::task::block_in_place(|| {
        let perms = serde_json::json!({"configure": "^own\\.", "write": ".*", "read": ".*"});
        assert_eq!(
            api(
                b,
                "PUT",
                "/api/permissions/%2F/limited",
                ("guest", "guest"),
                Some(perms)
            ),
            204
        );
    });
    let ch = conn.create_channel().await.expect("channel");
    ch.basic_consume(
        "own.q".into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("read now allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_publish_and_subscribe_are_checked_on_amq_topic() {
    use rumqttc::v5::mqttbytes::v5 as v5p;
    let broker = TestBroker::start().await;
    let b = &broker;
    tokio::task::block_in_place(|| {
        user_with(b, "reader", ".*", "^mqtt-subscription-", "^amq\\.topic$");
        user_with(b, "writer", ".*", ".*", "^mqtt-subscription-");
    });
    // 5.0: no write on amq.topic, so a QoS 1 publish gets PUBACK 0x87; read is granted.
    let mut opts = v5_options(broker.mqtt_addr(), "reader-5");
    opts.set_credentials("reader", "pw");
    let (mut reader, _) = V5Client::connect(opts).await;
    reader
        .subscribe("t/#", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await;
    reader
        .client
        .publish(
            "t/1",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            b"x".to_vec(),
        )
        .await
        .expect("publish sent");
    let reason = reader
        .wait_for("PUBACK", |p| match p {
            v5p::Packet::PubAck(a) => Some(a.reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, v5p::PubAckReason::NotAuthorized);

    // No read on amq.topic: SUBACK 0x87 (5.0) / 0x80 (3.1.1).
    let mut opts = v5_options(broker.mqtt_addr(), "writer-5");
    opts.set_credentials("writer", "pw");
    let (mut writer, _) = V5Client::connect(opts).await;
    let codes = writer
        .subscribe_with(
            vec![v5p::Filter::new(
                "t/#",
                rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            )],
            None,
        )
        .await;
    assert_eq!(codes, vec![v5p::SubscribeReasonCode::NotAuthorized]);
    // Its publishes are allowed and reach the reader.
    writer
        .publish(
            "t/2",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            b"ok".to_vec(),
        )
        .await;
    let p = reader.next_publish().await;
    assert_eq!(&p.payload[..], b"ok");

    let mut opts = v4_options(broker.mqtt_addr(), "writer-4");
    opts.set_credentials("writer", "pw");
    let (mut w4, _) = V4Client::connect(opts).await;
    let codes = w4
        .subscribe_many(&[("t/#", rumqttc::QoS::AtLeastOnce)])
        .await;
    assert_eq!(codes, vec![rumqttc::SubscribeReasonCode::Failure]);

    // 3.1.1 has no refusal for a publish: the reader's 3.1.1 publish ends its connection.
    let mut opts = v4_options(broker.mqtt_addr(), "reader-4");
    opts.set_credentials("reader", "pw");
    let (mut r4, _) = V4Client::connect(opts).await;
    r4.client
        .publish("t/3", rumqttc::QoS::AtMostOnce, false, b"no".to_vec())
        .await
        .expect("publish sent");
    r4.closed().await;
    reader
        .assert_no_publish(std::time::Duration::from_millis(300))
        .await;
}

/// As RabbitMQ (`rabbit_channel`: the `passive = true` clauses of queue.declare and
/// exchange.declare check no permission), a passive declare only asks whether the object
/// exists: a user without configure permission may do it; an active declare of the same
/// objects is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_declares_need_no_configure_permission() {
    use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let broker = TestBroker::start().await;
    let b = &broker;
    tokio::task::block_in_place(|| user_with(b, "reader", "", ".*", ".*"));
    let admin = broker.connect().await;
    let ach = admin.create_channel().await.expect("channel");
    ach.queue_declare(
        "existing".into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("guest declares");

    let conn = amqp_login(&broker, "reader", "pw").await.expect("login");
    let ch = conn.create_channel().await.expect("channel");
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let q = ch
        .queue_declare("existing".into(), passive, FieldTable::default())
        .await
        .expect("passive queue.declare without configure permission");
    assert_eq!(q.name().as_str(), "existing");
    ch.exchange_declare(
        "amq.topic".into(),
        lapin::ExchangeKind::Topic,
        ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("passive exchange.declare without configure permission");

    // A passive declare of a missing queue is still 404, not 403.
    let err = ch
        .queue_declare("missing".into(), passive, FieldTable::default())
        .await
        .expect_err("missing queue");
    assert_eq!(reply_code(&err), Some(404), "{err}");

    // The active declare of the same queue needs configure.
    let ch = conn.create_channel().await.expect("channel");
    let err = ch
        .queue_declare(
            "existing".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("active declare refused");
    assert_eq!(reply_code(&err), Some(403), "{err}");
}

/// A 5.0 QoS 0 publish without write permission ends the connection with DISCONNECT 0x87,
/// whose reason string says which publish was refused (not the CONNACK text about logins).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_publish_refusal_says_what_was_refused() {
    let broker = TestBroker::start().await;
    let b = &broker;
    tokio::task::block_in_place(|| user_with(b, "nowrite", ".*", "", ".*"));
    let mut opts = v5_options(broker.mqtt_addr(), "nowrite-5");
    opts.set_credentials("nowrite", "pw");
    let (mut c, _) = V5Client::connect(opts).await;
    c.client
        .publish(
            "t/q0",
            rumqttc::v5::mqttbytes::QoS::AtMostOnce,
            false,
            b"x".to_vec(),
        )
        .await
        .expect("publish sent");
    let err = format!("{:?}", c.closed().await);
    assert!(err.contains("NotAuthorized"), "{err}");
    assert!(
        err.contains(
            "not authorized to publish to 't/q0': user 'nowrite' has no write permission on amq.topic in vhost '/'"
        ),
        "{err}"
    );
    assert!(!err.contains("loopback"), "{err}");
}
