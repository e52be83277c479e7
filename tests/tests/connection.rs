//! Connection-level behaviour: login (PLAIN, AMQPLAIN, refusals), vhost
//! check, server capabilities, heartbeats in both directions, and the
//! protocol violations that must end a connection with a specific
//! connection.close reply code, after which the broker still serves new
//! connections.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use protocol_amqp::{
    BasicProperties as RawProps, BasicPublish, BasicQos, ChannelOpen, ConnectionCloseOk,
    ConnectionStartOk, FRAME_END, FieldValue, Frame, Method, PROTOCOL_HEADER, QueueDeclare,
    ShortStr, encode_method,
};
use tests::raw::RawClient;
use tests::{TestBroker, get_all, next_error_event, publish_confirmed, reply_code, within};

/// Reads the broker's next method, which must be connection.close with
/// `code`; answers close-ok and checks that the broker then closes the
/// socket. Returns the reply text.
async fn expect_connection_close(client: &mut RawClient, code: u16) -> String {
    let (channel, method) = client
        .recv_method()
        .await
        .expect("connection.close from the broker");
    let text = match (channel, method) {
        (0, Method::ConnectionClose(close)) => {
            assert_eq!(
                close.reply_code, code,
                "reply code (text: {})",
                close.reply_text
            );
            close.reply_text.as_str().to_string()
        }
        other => panic!("expected connection.close {code} on channel 0, got {other:?}"),
    };
    // The broker may already have dropped the socket after a framing error,
    // so a failed write is fine; what matters is that the connection ends.
    let _ = client.send_method(0, ConnectionCloseOk).await;
    let _ = client.read_to_end().await;
    text
}

/// Proves the broker still works for a new client: a fresh lapin connection
/// declares a queue, publishes with a confirm and gets the message back.
async fn assert_serves_new_connection(addr: SocketAddr) {
    let conn = tests::connect_to(addr)
        .await
        .expect("the broker must accept a new connection after a connection error");
    let ch = within("channel.open", conn.create_channel())
        .await
        .expect("channel.open");
    within(
        "confirm.select",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    within(
        "queue.declare",
        ch.queue_declare(
            "after-error".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("queue.declare");
    let c = publish_confirmed(
        &ch,
        "",
        "after-error",
        BasicPublishOptions::default(),
        b"fine",
        BasicProperties::default(),
    )
    .await;
    assert!(c.is_ack());
    assert_eq!(get_all(&ch, "after-error").await, vec![b"fine".to_vec()]);
}

async fn lapin_connect(uri: &str) -> lapin::Result<Connection> {
    within(
        "lapin connect",
        Connection::connect(uri, ConnectionProperties::default()),
    )
    .await
}

#[tokio::test]
async fn amqplain_login_works_and_checks_the_password() {
    let broker = TestBroker::start().await;
    let addr = broker.addr();
    let conn = lapin_connect(&format!(
        "amqp://guest:guest@{addr}/%2f?auth_mechanism=amqplain"
    ))
    .await
    .expect("AMQPLAIN login with guest/guest");
    let ch = within("channel.open", conn.create_channel())
        .await
        .expect("channel over an AMQPLAIN connection");
    within(
        "queue.declare",
        ch.queue_declare(
            "amqplain".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare over an AMQPLAIN connection");

    // The credentials really are read from the AMQPLAIN table.
    let err = lapin_connect(&format!(
        "amqp://guest:wrong@{addr}/%2f?auth_mechanism=amqplain"
    ))
    .await
    .expect_err("wrong AMQPLAIN password must be refused");
    assert_eq!(reply_code(&err), Some(403), "{err}");
}

#[tokio::test]
async fn wrong_password_is_refused_with_403() {
    let broker = TestBroker::start().await;
    let addr = broker.addr();
    // lapin advertises authentication_failure_close, so the broker explains
    // the refusal with connection.close instead of just dropping the socket.
    let err = lapin_connect(&format!("amqp://guest:nope@{addr}/%2f"))
        .await
        .expect_err("wrong password");
    assert_eq!(reply_code(&err), Some(403), "{err}");
    let err = lapin_connect(&format!("amqp://nobody:guest@{addr}/%2f"))
        .await
        .expect_err("unknown user");
    assert_eq!(reply_code(&err), Some(403), "{err}");
    assert_serves_new_connection(addr).await;
}

#[tokio::test]
async fn unknown_vhost_is_530() {
    let broker = TestBroker::start().await;
    let addr = broker.addr();
    let err = lapin_connect(&format!("amqp://guest:guest@{addr}/other"))
        .await
        .expect_err("vhost 'other' does not exist");
    assert_eq!(reply_code(&err), Some(530), "{err}");
    assert_serves_new_connection(addr).await;
}

#[tokio::test]
async fn server_properties_advertise_capabilities() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(broker.addr()).await.expect("connect");
    client
        .send_bytes(&PROTOCOL_HEADER)
        .await
        .expect("send header");
    let start = match client.recv_method().await.expect("connection.start") {
        (0, Method::ConnectionStart(start)) => start,
        other => panic!("expected connection.start, got {other:?}"),
    };
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    let mechanisms = String::from_utf8_lossy(&start.mechanisms).to_string();
    for mechanism in ["PLAIN", "AMQPLAIN"] {
        assert!(
            mechanisms.split_whitespace().any(|m| m == mechanism),
            "mechanisms {mechanisms:?} lack {mechanism}"
        );
    }
    let Some(FieldValue::Table(caps)) = start.server_properties.get("capabilities") else {
        panic!("no capabilities table in {:?}", start.server_properties);
    };
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "per_consumer_qos",
        "authentication_failure_close",
    ] {
        assert!(
            matches!(caps.get(cap), Some(FieldValue::Bool(true))),
            "capability {cap} must be advertised as true: {caps:?}"
        );
    }
    // Finish politely so the broker does not log a handshake timeout.
    client
        .send_method(
            0,
            ConnectionStartOk {
                client_properties: protocol_amqp::FieldTable::new(),
                mechanism: ShortStr::from_static("PLAIN"),
                response: Bytes::from_static(b"\0guest\0guest"),
                locale: ShortStr::from_static("en_US"),
            },
        )
        .await
        .expect("start-ok");
    match client.recv_method().await.expect("connection.tune") {
        (0, Method::ConnectionTune(_)) => {}
        other => panic!("expected connection.tune, got {other:?}"),
    }
}

#[tokio::test]
async fn silent_client_is_disconnected_after_missed_heartbeats() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake_with_heartbeat(broker.addr(), 1)
        .await
        .expect("handshake with heartbeat=1");
    let started = Instant::now();
    // Read (and ignore) the broker's heartbeats until it closes the socket.
    let mut heartbeats = 0;
    let eof = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            match client.recv_frame().await {
                Ok(Some(Frame::Heartbeat { channel: 0 })) => heartbeats += 1,
                Ok(Some(other)) => panic!("unexpected frame {other:?}"),
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        eof.is_ok(),
        "a client silent for 6 s with heartbeat=1 must have been disconnected"
    );
    // Two missed 1 s intervals; allow scheduling slack on a busy machine.
    assert!(
        elapsed >= Duration::from_millis(1500),
        "disconnected too early ({elapsed:?}): not a heartbeat timeout"
    );
    assert!(
        elapsed <= Duration::from_millis(4000),
        "disconnect took {elapsed:?}, expected about 2 s"
    );
    assert!(
        heartbeats >= 1,
        "the broker must send heartbeats while it waits"
    );
    assert_serves_new_connection(broker.addr()).await;
}

#[tokio::test]
async fn broker_sends_heartbeats_to_a_silent_client() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake_with_heartbeat(broker.addr(), 1)
        .await
        .expect("handshake with heartbeat=1");
    let started = Instant::now();
    match client.recv_frame().await.expect("a frame") {
        Some(Frame::Heartbeat { channel: 0 }) => {}
        other => panic!("expected a heartbeat frame on channel 0, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "first heartbeat after {:?}, expected within one interval",
        started.elapsed()
    );
}

#[tokio::test]
async fn client_sending_heartbeats_stays_connected() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake_with_heartbeat(broker.addr(), 1)
        .await
        .expect("handshake with heartbeat=1");
    // The one fixed wait in this file: staying connected is the absence of a
    // disconnect, so we must outlast the 2 s timeout (by a margin) while
    // sending a heartbeat every 400 ms, and then check the connection.
    let mut tick = tokio::time::interval(Duration::from_millis(400));
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        tick.tick().await;
        client
            .send_frame(&Frame::Heartbeat { channel: 0 })
            .await
            .expect("connection must stay open while we send heartbeats");
    }
    client
        .open_channel(1)
        .await
        .expect("connection still usable after 3.5 s of heartbeats");
}

#[tokio::test]
async fn channel_above_channel_max_is_530() {
    let broker = TestBroker::start_with(|c| c.channel_max = 8).await;
    let (mut client, tune) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    assert_eq!(tune.channel_max, 8, "broker must propose its channel_max");
    client
        .open_channel(8)
        .await
        .expect("channel_max itself is a valid channel");
    client.send_method(9, ChannelOpen).await.expect("send");
    expect_connection_close(&mut client, 530).await;
    assert_serves_new_connection(broker.addr()).await;
}

#[tokio::test]
async fn method_on_unopened_channel_is_504() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    client
        .send_method(
            3,
            QueueDeclare {
                queue: ShortStr::from_static("q"),
                passive: false,
                durable: false,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: protocol_amqp::FieldTable::new(),
            },
        )
        .await
        .expect("send");
    expect_connection_close(&mut client, 504).await;
    assert_serves_new_connection(broker.addr()).await;
}

#[tokio::test]
async fn heartbeat_on_a_nonzero_channel_is_505() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    client.open_channel(1).await.expect("channel.open");
    client
        .send_frame(&Frame::Heartbeat { channel: 1 })
        .await
        .expect("send");
    expect_connection_close(&mut client, 505).await;
    assert_serves_new_connection(broker.addr()).await;
}

#[tokio::test]
async fn publish_with_immediate_is_540() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let mut events = Box::pin(conn.events_listener());
    let ch = within("channel.open", conn.create_channel())
        .await
        .expect("channel.open");
    within(
        "publish",
        ch.basic_publish(
            "".into(),
            "anything".into(),
            BasicPublishOptions {
                immediate: true,
                ..Default::default()
            },
            b"m",
            BasicProperties::default(),
        ),
    )
    .await
    .expect("send publish");
    let err = next_error_event(&mut events).await;
    assert_eq!(reply_code(&err), Some(540), "{err}");
    assert!(err.is_amqp_hard_error(), "540 is a connection error: {err}");
    assert_serves_new_connection(broker.addr()).await;
}

#[tokio::test]
async fn qos_with_prefetch_size_is_540() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    client.open_channel(1).await.expect("channel.open");
    client
        .send_method(
            1,
            BasicQos {
                prefetch_size: 1024,
                prefetch_count: 10,
                global: false,
            },
        )
        .await
        .expect("send");
    expect_connection_close(&mut client, 540).await;
    assert_serves_new_connection(broker.addr()).await;
}

#[tokio::test]
async fn unknown_method_is_503() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    client.open_channel(1).await.expect("channel.open");
    // Method frame on channel 1: class 60 (basic), method 999 (no such method).
    let mut frame = vec![1u8, 0, 1];
    frame.extend_from_slice(&4u32.to_be_bytes());
    frame.extend_from_slice(&60u16.to_be_bytes());
    frame.extend_from_slice(&999u16.to_be_bytes());
    frame.push(FRAME_END);
    client.send_bytes(&frame).await.expect("send");
    expect_connection_close(&mut client, 503).await;
    assert_serves_new_connection(broker.addr()).await;
}

#[tokio::test]
async fn content_header_without_a_publish_is_505() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    client.open_channel(1).await.expect("channel.open");
    client
        .send_frame(&Frame::Header {
            channel: 1,
            class_id: 60,
            body_size: 3,
            properties: RawProps::default(),
        })
        .await
        .expect("send");
    expect_connection_close(&mut client, 505).await;
    assert_serves_new_connection(broker.addr()).await;
}

#[tokio::test]
async fn bad_frame_end_is_501() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    let mut out = BytesMut::new();
    encode_method(1, &ChannelOpen.into(), &mut out);
    let last = out.len() - 1;
    assert_eq!(out[last], FRAME_END);
    out[last] = 0x00;
    client.send_bytes(&out).await.expect("send");
    expect_connection_close(&mut client, 501).await;
    assert_serves_new_connection(broker.addr()).await;
}

#[tokio::test]
async fn content_header_after_a_publish_is_accepted() {
    // The counterpart of the 505 test: the same header frame, sent after
    // basic.publish and followed by its body, is a valid message.
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    client.open_channel(1).await.expect("channel.open");
    client
        .send_method(
            1,
            QueueDeclare {
                queue: ShortStr::from_static("raw"),
                passive: false,
                durable: false,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: protocol_amqp::FieldTable::new(),
            },
        )
        .await
        .expect("declare");
    match client.recv_method().await.expect("declare-ok") {
        (1, Method::QueueDeclareOk(_)) => {}
        other => panic!("expected queue.declare-ok, got {other:?}"),
    }
    client
        .send_method(
            1,
            BasicPublish {
                exchange: ShortStr::from_static(""),
                routing_key: ShortStr::from_static("raw"),
                mandatory: false,
                immediate: false,
            },
        )
        .await
        .expect("publish");
    client
        .send_frame(&Frame::Header {
            channel: 1,
            class_id: 60,
            body_size: 3,
            properties: RawProps::default(),
        })
        .await
        .expect("header");
    client
        .send_frame(&Frame::Body {
            channel: 1,
            payload: Bytes::from_static(b"abc"),
        })
        .await
        .expect("body");
    let conn = broker.connect().await;
    let ch = within("channel.open", conn.create_channel())
        .await
        .expect("channel.open");
    // basic.get on another connection may overtake the raw publish; the
    // raw client's next synchronous round trip orders it first.
    client
        .send_method(
            1,
            QueueDeclare {
                queue: ShortStr::from_static("raw"),
                passive: true,
                durable: false,
                exclusive: false,
                auto_delete: false,
                nowait: false,
                arguments: protocol_amqp::FieldTable::new(),
            },
        )
        .await
        .expect("passive declare");
    match client.recv_method().await.expect("declare-ok") {
        (1, Method::QueueDeclareOk(ok)) => assert_eq!(ok.message_count, 1),
        other => panic!("expected queue.declare-ok, got {other:?}"),
    }
    assert_eq!(get_all(&ch, "raw").await, vec![b"abc".to_vec()]);
}

#[tokio::test]
async fn truncated_method_arguments_are_502() {
    let broker = TestBroker::start().await;
    let (mut client, _) = RawClient::handshake(broker.addr())
        .await
        .expect("raw handshake");
    client.open_channel(1).await.expect("channel.open");
    // queue.declare (50.10): ticket, then a shortstr claiming 200 bytes that are not there.
    let mut payload = Vec::new();
    payload.extend_from_slice(&50u16.to_be_bytes());
    payload.extend_from_slice(&10u16.to_be_bytes());
    payload.extend_from_slice(&0u16.to_be_bytes());
    payload.push(200);
    payload.extend_from_slice(b"short");
    let mut frame = vec![1u8, 0, 1];
    frame.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(&payload);
    frame.push(FRAME_END);
    client.send_bytes(&frame).await.expect("send");
    expect_connection_close(&mut client, 502).await;
    assert_serves_new_connection(broker.addr()).await;
}
