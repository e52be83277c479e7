//! MQTT persistent sessions: subscriptions and QoS 1 messages queued while a
//! client is away are there when it comes back (session present), messages
//! it never acknowledged come back with DUP set, a clean session starts from
//! nothing, sessions and retained messages survive a clean restart and a
//! SIGKILL, and a 5.0 session ends when its expiry interval runs out.

use std::time::Duration;

use rumqttc::QoS;
use tests::TestBroker;
use tests::child::ChildBroker;
use tests::mqtt::{V4Client, V5Client, V5QoS, v4_options, v5_options};

fn text(payload: &[u8]) -> &str {
    std::str::from_utf8(payload).expect("UTF-8 payload")
}

fn persistent_v4(addr: std::net::SocketAddr, id: &str) -> rumqttc::MqttOptions {
    let mut opts = v4_options(addr, id);
    opts.set_clean_session(false);
    opts
}

fn persistent_v5(addr: std::net::SocketAddr, id: &str, expiry: u32) -> rumqttc::v5::MqttOptions {
    let mut opts = v5_options(addr, id);
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(expiry));
    opts
}

/// Publishes `bodies` at QoS 1 on `topic` from a fresh client, each PUBACKed.
async fn publish_v4(addr: std::net::SocketAddr, topic: &str, bodies: &[&str]) {
    let (mut publ, _) = V4Client::connect(v4_options(addr, "publisher")).await;
    for body in bodies {
        publ.publish(topic, QoS::AtLeastOnce, false, *body).await;
    }
    publ.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_persistent_session_keeps_subscriptions_and_offline_messages() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut c, ack) = V4Client::connect(persistent_v4(addr, "p4")).await;
    assert!(!ack.session_present, "no session yet");
    c.subscribe("s/t", QoS::AtLeastOnce).await;
    c.disconnect().await;

    publish_v4(addr, "s/t", &["a", "b", "c"]).await;

    let (mut c, ack) = V4Client::connect(persistent_v4(addr, "p4")).await;
    assert!(ack.session_present, "the session was kept");
    for expected in ["a", "b", "c"] {
        let got = c.next_publish().await;
        assert_eq!((got.topic.as_str(), text(&got.payload)), ("s/t", expected));
        assert_eq!(got.qos, QoS::AtLeastOnce);
    }
    // The subscription itself is still there.
    publish_v4(addr, "s/t", &["d"]).await;
    assert_eq!(text(&c.next_publish().await.payload), "d");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_persistent_session_keeps_subscriptions_and_offline_messages() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut c, ack) = V5Client::connect(persistent_v5(addr, "p5", 300)).await;
    assert!(!ack.session_present);
    c.subscribe("s5/t", V5QoS::AtLeastOnce).await;
    c.disconnect().await;

    publish_v4(addr, "s5/t", &["x", "y"]).await;

    let (mut c, ack) = V5Client::connect(persistent_v5(addr, "p5", 300)).await;
    assert!(ack.session_present, "the session was kept");
    for expected in ["x", "y"] {
        assert_eq!(text(&c.next_publish().await.payload), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_messages_are_redelivered_with_dup() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let mut opts = persistent_v5(addr, "forgetful", 300);
    opts.set_manual_acks(true);
    let (mut c, _) = V5Client::connect(opts).await;
    c.subscribe("dup/t", V5QoS::AtLeastOnce).await;
    publish_v4(addr, "dup/t", &["once"]).await;
    let got = c.next_publish().await;
    assert!(!got.dup, "first delivery");
    // Gone without acknowledging (no PUBACK, no DISCONNECT).
    drop(c);

    let (mut c, ack) = V5Client::connect(persistent_v5(addr, "forgetful", 300)).await;
    assert!(ack.session_present);
    let got = c.next_publish().await;
    assert_eq!(text(&got.payload), "once");
    assert!(got.dup, "a redelivery carries DUP=1");
    assert_eq!(got.qos, V5QoS::AtLeastOnce);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_session_discards_the_old_one() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut c, _) = V4Client::connect(persistent_v4(addr, "cleaner")).await;
    c.subscribe("old/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    publish_v4(addr, "old/t", &["queued"]).await;

    let (mut c, ack) = V4Client::connect(v4_options(addr, "cleaner")).await;
    assert!(!ack.session_present, "clean session must not resume");
    c.subscribe("sentinel", QoS::AtLeastOnce).await;
    publish_v4(addr, "old/t", &["live"]).await;
    publish_v4(addr, "sentinel", &["sentinel"]).await;
    let got = c.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), text(&got.payload)),
        ("sentinel", "sentinel"),
        "the old session's subscription or queued message survived a clean session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_and_retained_survive_a_restart() {
    let mut broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut c, _) = V4Client::connect(persistent_v4(addr, "durable")).await;
    c.subscribe("keep/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    publish_v4(addr, "keep/t", &["1", "2"]).await;
    let (mut publ, _) = V4Client::connect(v4_options(addr, "retainer")).await;
    publ.publish("keep/retained", QoS::AtLeastOnce, true, "r")
        .await;
    publ.disconnect().await;

    broker.restart().await;
    let addr = broker.mqtt_addr();

    let (mut c, ack) = V4Client::connect(persistent_v4(addr, "durable")).await;
    assert!(ack.session_present, "session lost in a restart");
    for expected in ["1", "2"] {
        assert_eq!(text(&c.next_publish().await.payload), expected);
    }
    publish_v4(addr, "keep/t", &["3"]).await;
    assert_eq!(
        text(&c.next_publish().await.payload),
        "3",
        "subscription lost"
    );
    let (mut fresh, _) = V4Client::connect(v4_options(addr, "fresh")).await;
    fresh.subscribe("keep/+", QoS::AtLeastOnce).await;
    let got = fresh.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), text(&got.payload), got.retain),
        ("keep/retained", "r", true)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_session_messages_and_retained_survive_sigkill() {
    let dir = tempfile::Builder::new()
        .prefix("broker-mqtt-kill-")
        .tempdir()
        .expect("temp dir");
    let mut broker = tokio::task::block_in_place(|| {
        ChildBroker::spawn(env!("CARGO_BIN_EXE_test-broker"), dir.path())
    })
    .expect("child broker starts");
    let addr = broker.mqtt_addr();
    let (mut c, _) = V5Client::connect(persistent_v5(addr, "crashy", u32::MAX)).await;
    c.subscribe("crash/t", V5QoS::AtLeastOnce).await;
    c.disconnect().await;
    // Every publish is PUBACKed, i.e. on disk, before the next one.
    publish_v4(addr, "crash/t", &["1", "2", "3"]).await;
    let (mut publ, _) = V4Client::connect(v4_options(addr, "retainer")).await;
    publ.publish("crash/retained", QoS::AtLeastOnce, true, "r")
        .await;
    drop(publ);

    tokio::task::block_in_place(|| broker.kill9()).expect("SIGKILL");
    tokio::task::block_in_place(|| broker.restart()).expect("restart");
    let addr = broker.mqtt_addr();

    let (mut c, ack) = V5Client::connect(persistent_v5(addr, "crashy", u32::MAX)).await;
    assert!(ack.session_present, "session lost in the crash");
    for expected in ["1", "2", "3"] {
        assert_eq!(text(&c.next_publish().await.payload), expected);
    }
    let (mut fresh, _) = V4Client::connect(v4_options(addr, "fresh")).await;
    fresh.subscribe("crash/retained", QoS::AtLeastOnce).await;
    let got = fresh.next_publish().await;
    assert_eq!((text(&got.payload), got.retain), ("r", true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_session_expires_after_its_interval() {
    let broker = TestBroker::start().await;
    let addr = broker.mqtt_addr();
    let (mut c, _) = V5Client::connect(persistent_v5(addr, "ephemeral", 1)).await;
    c.subscribe("exp/t", V5QoS::AtLeastOnce).await;
    c.disconnect().await;
    publish_v4(addr, "exp/t", &["lost"]).await;
    // The expiry is a timer inside the broker with nothing a client can
    // await, so this one test waits past it (1 s interval + margin).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (mut c, ack) = V5Client::connect(persistent_v5(addr, "ephemeral", 1)).await;
    assert!(!ack.session_present, "the session should have expired");
    c.subscribe("exp/sentinel", V5QoS::AtLeastOnce).await;
    publish_v4(addr, "exp/sentinel", &["sentinel"]).await;
    assert_eq!(
        text(&c.next_publish().await.payload),
        "sentinel",
        "a message of the expired session was delivered"
    );
}
