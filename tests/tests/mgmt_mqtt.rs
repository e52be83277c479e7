//! MQTT objects and message rates in the management API, end to end: rumqttc clients make
//! sessions and retained messages, HTTP requests look at them and delete them, and a broker
//! sampling every 100 ms reports publish rates. (Handler-level cases, 401/403/404 included,
//! are in `broker/src/mgmt/tests.rs`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rumqttc::QoS;
use serde_json::Value;
use tests::api::Api;
use tests::mqtt::{V4Client, V5Client, V5QoS, v4_options, v5_options};
use tests::{TestBroker, within};

/// The session of `client_id` in `/`, from the list (so the list is what is checked).
async fn session(api: &Api, client_id: &str) -> Option<Value> {
    let all = api.get("/api/mqtt/sessions").await;
    all.as_array()
        .and_then(|a| a.iter().find(|s| s["client_id"] == client_id).cloned())
}

fn persistent_v4(addr: std::net::SocketAddr, id: &str) -> rumqttc::MqttOptions {
    let mut opts = v4_options(addr, id);
    opts.set_clean_session(false);
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_is_listed_counted_and_deleted() {
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    let addr = broker.mqtt_addr();
    let (mut c, ack) = V4Client::connect(persistent_v4(addr, "keeper")).await;
    assert!(!ack.session_present);
    c.subscribe("s/a", QoS::AtLeastOnce).await;
    c.subscribe("s/b/#", QoS::AtMostOnce).await;

    let s = session(&api, "keeper").await.expect("listed");
    assert_eq!(s["vhost"], "/");
    assert_eq!(s["connected"], true);
    assert_eq!(s["protocol"], "3.1.1");
    assert_eq!(s["clean_session"], false);
    assert!(s["connection"].is_string(), "{s}");
    let filters: Vec<(&str, u64)> = s["subscriptions"]
        .as_array()
        .map(|subs| {
            subs.iter()
                .map(|x| {
                    (
                        x["filter"].as_str().unwrap_or(""),
                        x["qos"].as_u64().unwrap_or(9),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(filters, vec![("s/a", 1), ("s/b/#", 0)]);

    // The broker closes the socket after the session is released, so once the client sees
    // the close the session shows disconnected.
    c.disconnect().await;
    let s = session(&api, "keeper").await.expect("still listed");
    assert_eq!(s["connected"], false);
    assert_eq!(s["connection"], Value::Null);

    // Messages published while it is away wait in the session (each PUBACKed: queued).
    let (mut publ, _) = V4Client::connect(v4_options(addr, "publisher")).await;
    for body in ["1", "2", "3"] {
        publ.publish("s/a", QoS::AtLeastOnce, false, body).await;
    }
    let s = api.get("/api/mqtt/sessions/%2F/keeper").await;
    assert_eq!(s["messages"], 3, "{s}");

    assert_eq!(
        api.delete("/api/mqtt/sessions/%2F/keeper").await.as_u16(),
        204
    );
    assert!(session(&api, "keeper").await.is_none());
    assert_eq!(
        api.delete("/api/mqtt/sessions/%2F/keeper").await.as_u16(),
        404
    );
    let (c, ack) = V4Client::connect(persistent_v4(addr, "keeper")).await;
    assert!(!ack.session_present, "the deleted session is gone");
    c.disconnect().await;
    publ.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_connected_session_disconnects_the_client() {
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    let mut opts = v5_options(broker.mqtt_addr(), "live5");
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(3600));
    let (mut c, _) = V5Client::connect(opts).await;
    c.subscribe("x/#", V5QoS::AtLeastOnce).await;
    let s = session(&api, "live5").await.expect("listed");
    assert_eq!(s["protocol"], "5.0");
    assert_eq!(s["expiry_interval"], 3600);
    assert_eq!(s["connected"], true);

    assert_eq!(
        api.delete("/api/mqtt/sessions/%2F/live5").await.as_u16(),
        204
    );
    let err = c.closed().await;
    let text = format!("{err:?}");
    assert!(text.contains("AdministrativeAction"), "{text}");
    assert!(session(&api, "live5").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_message_is_listed_and_cleared() {
    let broker = TestBroker::start().await;
    let api = Api::new(&broker);
    let addr = broker.mqtt_addr();
    let (mut publ, _) = V4Client::connect(v4_options(addr, "retainer")).await;
    publ.publish("r/t", QoS::AtLeastOnce, true, "hello").await;

    let list = api.get("/api/mqtt/retained").await;
    let r = list
        .as_array()
        .and_then(|a| a.iter().find(|r| r["topic"] == "r/t").cloned())
        .expect("retained message listed");
    assert_eq!(r["payload"], "hello");
    assert_eq!(r["payload_encoding"], "string");
    assert_eq!(r["payload_bytes"], 5);
    assert_eq!(r["qos"], 1);
    assert_eq!(r["vhost"], "/");

    assert_eq!(
        api.delete("/api/mqtt/retained/%2F/r%2Ft").await.as_u16(),
        204
    );
    assert_eq!(
        api.delete("/api/mqtt/retained/%2F/r%2Ft").await.as_u16(),
        404
    );
    assert_eq!(api.get("/api/mqtt/retained").await, serde_json::json!([]));

    // A new subscriber gets no retained message: the first thing it receives is a marker
    // published after its SUBACK (a retained message would have come before it).
    let (mut sub, _) = V4Client::connect(v4_options(addr, "late")).await;
    sub.subscribe("r/#", QoS::AtLeastOnce).await;
    publ.publish("r/marker", QoS::AtLeastOnce, false, "m").await;
    let first = sub.next_publish().await;
    assert_eq!(first.topic, "r/marker");
    assert!(!first.retain);
    sub.disconnect().await;
    publ.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_rates_show_in_overview_and_queues() {
    let broker = TestBroker::start_with(|c| c.collect_statistics_interval = 100).await;
    let api = Api::new(&broker);
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(
        "rated".into(),
        lapin::options::QueueDeclareOptions::default(),
        lapin::types::FieldTable::default(),
    )
    .await
    .expect("declare");
    // Keep publishing while polling: a rate covers one 100 ms sample interval, so a burst
    // that ended could be gone from the rate before a poll sees it.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (ch, stop) = (ch.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let published = ch
                    .basic_publish(
                        "".into(),
                        "rated".into(),
                        lapin::options::BasicPublishOptions::default(),
                        b"r",
                        lapin::BasicProperties::default(),
                    )
                    .await;
                if published.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await; // pacing, not synchronisation
            }
        })
    };
    within("a publish rate in /api/overview and /api/queues", async {
        loop {
            let o = api.get("/api/overview").await;
            let q = api.get("/api/queues/%2F/rated").await;
            let rate = |v: &Value| {
                v["message_stats"]["publish_details"]["rate"]
                    .as_f64()
                    .unwrap_or(0.0)
            };
            if rate(&o) > 0.0 && rate(&q) > 0.0 {
                assert!(q["message_stats"]["deliver_get_details"]["rate"].is_number());
                assert!(q["message_stats"]["ack_details"]["rate"].is_number());
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.expect("publisher task");
}
