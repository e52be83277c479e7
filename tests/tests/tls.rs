//! TLS: AMQPS with lapin, MQTTS with rumqttc, the management API over HTTPS with reqwest,
//! all trusting a CA made with rcgen for the test; plain text sent to the TLS ports is
//! refused without harming the broker; bad certificate settings stop the start with the
//! path in the message.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use broker::{Broker, Config};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rumqttc::{QoS, TlsConfiguration, Transport};
use tests::mqtt::{V4Client, V5Client, v4_options, v5_options};
use tests::tls::TestCerts;
use tests::{TestBroker, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Opens a lapin connection over AMQPS trusting the test CA.
async fn amqps_connect(broker: &TestBroker, certs: &TestCerts) -> Connection {
    let uri = format!("amqps://guest:guest@{}/%2f", broker.amqps_addr());
    let tls = lapin::tcp::OwnedTLSConfig {
        identity: None,
        cert_chain: Some(certs.ca_pem.clone()),
    };
    let runtime = lapin::runtime::default_runtime().expect("tokio runtime");
    within(
        "an AMQPS connection",
        Connection::connect_with_config(&uri, ConnectionProperties::default(), tls, runtime),
    )
    .await
    .expect("lapin connects over TLS")
}

/// Publishes with confirms and gets the message back, over `conn`.
async fn publish_and_get(conn: &Connection, queue: &str, body: &[u8]) -> Vec<u8> {
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("declare");
    ch.confirm_select(Default::default())
        .await
        .expect("confirms");
    let confirm = ch
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    assert!(confirm.is_ack(), "publish over TLS was not acked");
    let got = within(
        "basic.get",
        ch.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
    )
    .await
    .expect("get")
    .expect("a message in the queue");
    got.delivery.data
}

/// A rumqttc TLS transport trusting the test CA.
fn mqtt_tls(certs: &TestCerts) -> Transport {
    Transport::Tls(TlsConfiguration::Rustls(certs.client_config(&[])))
}

#[tokio::test]
async fn lapin_publishes_and_gets_over_amqps() {
    let certs = TestCerts::generate();
    let broker = TestBroker::start_tls(&certs, false).await;
    let conn = amqps_connect(&broker, &certs).await;
    let body = publish_and_get(&conn, "tls-q", b"over tls").await;
    assert_eq!(body, b"over tls");
    // The same queue is visible to a plain AMQP client: one broker behind both ports.
    let plain = broker.connect().await;
    let ch = plain.create_channel().await.expect("channel");
    let q = ch
        .queue_declare(
            "tls-q".into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("queue declared over TLS exists");
    assert_eq!(q.message_count(), 0, "the TLS get consumed the message");
    conn.close(200, "bye".into()).await.expect("close");
    broker.shutdown().await;
}

#[tokio::test]
async fn rumqttc_subscribes_and_publishes_over_mqtts() {
    let certs = TestCerts::generate();
    let broker = TestBroker::start_tls(&certs, false).await;
    let mut opts = v4_options(broker.mqtts_addr(), "tls-v4");
    opts.set_transport(mqtt_tls(&certs));
    let (mut client, ack) = V4Client::connect(opts).await;
    assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
    assert_eq!(
        client.subscribe("tls/t", QoS::AtLeastOnce).await,
        QoS::AtLeastOnce
    );
    // A 5.0 client over TLS publishes; the 3.1.1 subscriber over TLS receives.
    let mut opts5 = v5_options(broker.mqtts_addr(), "tls-v5");
    opts5.set_transport(mqtt_tls(&certs));
    let (mut publisher, _) = V5Client::connect(opts5).await;
    publisher
        .publish(
            "tls/t",
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
            false,
            b"secret".to_vec(),
        )
        .await;
    let got = client.next_publish().await;
    assert_eq!(got.topic, "tls/t");
    assert_eq!(&got.payload[..], b"secret");
    broker.shutdown().await;
}

#[tokio::test]
async fn management_api_over_https() {
    let certs = TestCerts::generate();
    let broker = TestBroker::start_tls(&certs, true).await;
    let ca = reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).expect("CA");
    let https = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let url = format!("https://{}/api/overview", broker.http_addr());
    let resp = within(
        "GET /api/overview over HTTPS",
        https.get(&url).basic_auth("guest", Some("guest")).send(),
    )
    .await
    .expect("HTTPS request");
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let overview: serde_json::Value = resp.json().await.expect("JSON");
    let listeners = overview["listeners"].to_string();
    for protocol in ["https", "amqp/ssl", "mqtt/ssl"] {
        assert!(
            listeners.contains(&format!("\"{protocol}\"")),
            "overview lists no {protocol} listener: {listeners}"
        );
    }
    // Credentials are still checked over TLS.
    let resp = within("unauthenticated GET", https.get(&url).send())
        .await
        .expect("HTTPS request");
    assert_eq!(resp.status(), reqwest::StatusCode::UNAUTHORIZED);
    // Plain HTTP to the HTTPS port gets no answer.
    let plain = reqwest::Client::new();
    let result = within(
        "plain HTTP to the HTTPS port",
        plain
            .get(format!("http://{}/api/overview", broker.http_addr()))
            .basic_auth("guest", Some("guest"))
            .send(),
    )
    .await;
    assert!(result.is_err(), "plain HTTP was answered: {result:?}");
    broker.shutdown().await;
}

/// Sends `bytes` in clear to `addr` and reads until the broker closes the connection;
/// returns what it answered.
async fn plain_text_to(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    // An error (connection reset) also means the broker closed it.
    let _ = within(
        "the broker to close the connection",
        socket.read_to_end(&mut answer),
    )
    .await;
    answer
}

#[tokio::test]
async fn plain_text_to_tls_ports_is_closed_and_the_broker_keeps_serving() {
    let certs = TestCerts::generate();
    let broker = TestBroker::start_tls(&certs, true).await;
    let answer = plain_text_to(broker.amqps_addr(), b"AMQP\x00\x00\x09\x01").await;
    assert!(
        !answer.starts_with(b"AMQP"),
        "the AMQPS port spoke plain AMQP"
    );
    // An MQTT CONNECT in clear.
    let connect = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04abcd";
    let answer = plain_text_to(broker.mqtts_addr(), connect).await;
    assert!(
        !answer.starts_with(b"\x20"),
        "the MQTTS port sent a CONNACK"
    );
    let _ = plain_text_to(broker.http_addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    // A client that does not trust the certificate fails its handshake: also just closed.
    let other = TestCerts::generate();
    let refused = other.connect(broker.amqps_addr(), &[]).await;
    assert!(
        refused.is_err(),
        "a client with another CA completed the handshake"
    );
    // Everything still works, over TLS and in clear.
    let conn = amqps_connect(&broker, &certs).await;
    assert_eq!(
        publish_and_get(&conn, "after", b"still up").await,
        b"still up"
    );
    let plain = broker.connect().await;
    assert_eq!(publish_and_get(&plain, "after-plain", b"x").await, b"x");
    let mut opts = v4_options(broker.mqtts_addr(), "after-junk");
    opts.set_transport(mqtt_tls(&certs));
    let (_client, ack) = V4Client::connect(opts).await;
    assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
    broker.shutdown().await;
}

#[tokio::test]
async fn tls_listeners_are_off_without_a_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(Config::for_data_dir(dir.path()))
        .await
        .expect("start");
    assert_eq!(broker.amqps_addr(), None);
    assert_eq!(broker.mqtts_addr(), None);
    assert!(!broker.http_tls());
    broker.shutdown().await;
}

/// Starts a broker with `adjust` and returns the start error's message.
async fn start_error(adjust: impl FnOnce(&mut Config)) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_data_dir(dir.path());
    adjust(&mut config);
    match Broker::start(config).await {
        Ok(_) => panic!("the broker started with bad TLS settings"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn bad_tls_settings_stop_the_start_with_the_path() {
    let certs = TestCerts::generate();
    let missing = certs.path("missing.crt");
    let msg = start_error(|c| {
        certs.configure(c);
        c.tls_cert = Some(missing.clone());
    })
    .await;
    assert!(msg.contains(&missing.display().to_string()), "{msg}");

    let garbage = certs.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let msg = start_error(|c| {
        certs.configure(c);
        c.tls_cert = Some(garbage.clone());
    })
    .await;
    assert!(msg.contains(&garbage.display().to_string()), "{msg}");
    let msg = start_error(|c| {
        certs.configure(c);
        c.tls_key = Some(garbage.clone());
    })
    .await;
    assert!(msg.contains(&garbage.display().to_string()), "{msg}");

    // A key that belongs to another certificate.
    let other = TestCerts::generate();
    let msg = start_error(|c| {
        certs.configure(c);
        c.tls_key = Some(other.key_path.clone());
    })
    .await;
    assert!(msg.contains(&other.key_path.display().to_string()), "{msg}");

    let msg = start_error(|c| c.tls_cert = Some(certs.cert_path.clone())).await;
    assert!(msg.contains("--tls-key"), "{msg}");
    let msg = start_error(|c| c.http_tls = true).await;
    assert!(msg.contains("--http-tls"), "{msg}");
}

#[test]
fn broker_binary_exits_non_zero_on_a_missing_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("no-such.crt");
    let key = dir.path().join("no-such.key");
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-broker"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--amqp-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--mqtt-ws-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--amqps-listen",
            "127.0.0.1:0",
            "--mqtts-listen",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the broker binary");
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = pipe.read_to_string(&mut stderr);
        let _ = tx.send(stderr);
    });
    let Ok(stderr) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = child.kill();
        panic!("the broker kept running with a missing certificate");
    };
    let status = child.wait().expect("reap");
    assert!(!status.success(), "exit status {status}");
    assert!(
        stderr.contains(&cert.display().to_string()),
        "stderr does not name the certificate: {stderr}"
    );
}
