//! `brokerctl list sessions|retained`: MQTT objects made by real rumqttc clients.

mod common;

use common::{json, ok, run, start_tail, stderr};
use rumqttc::QoS;
use tests::TestBroker;
use tests::mqtt::{V4Client, v4_options};
use tests::within;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_retained_messages_are_listed() {
    let broker = TestBroker::start().await;
    let mut opts = v4_options(broker.mqtt_addr(), "sensor-7");
    opts.set_clean_session(false);
    let (mut client, _) = V4Client::connect(opts).await;
    client.subscribe("cmd/sensor-7/#", QoS::AtLeastOnce).await;
    // tail on amq.topic sees MQTT publishes ('/' in topics is '.' in routing keys).
    let amqp_url = format!("amqp://{}/%2F", broker.addr());
    let (tail, _) = start_tail(
        &broker,
        &amqp_url,
        &["amq.topic", "--routing-key", "status.#", "--count", "1"],
    )
    .await;
    client
        .publish("status/sensor-7", QoS::AtLeastOnce, true, "online")
        .await;
    let out = within("tail to stop", tail.wait_with_output())
        .await
        .expect("tail output");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "status.sensor-7  [delivery_mode=2 headers={\"x-mqtt-publish-qos\":1,\"x-mqtt-retain\":true}]  online\n"
    );

    let sessions = json(&broker, &["list", "sessions"]).await;
    let s = sessions
        .as_array()
        .and_then(|ss| ss.iter().find(|s| s["client_id"] == "sensor-7"))
        .unwrap_or_else(|| panic!("session listed: {sessions}"));
    assert_eq!(s["vhost"], "/");
    assert_eq!(s["connected"], true);
    assert_eq!(s["clean_session"], false);
    assert_eq!(s["protocol"], "3.1.1");
    assert_eq!(s["subscriptions"][0]["filter"], "cmd/sensor-7/#");
    assert_eq!(s["subscriptions"][0]["qos"], 1);

    let table = ok(&broker, &["list", "sessions"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "client_id",
            "vhost",
            "protocol",
            "connected",
            "clean_session",
            "expiry_interval",
            "messages",
            "subscriptions"
        ]
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("sensor-7"))
        .unwrap_or_else(|| panic!("{table}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [
            "sensor-7",
            "/",
            "3.1.1",
            "true",
            "false",
            "0",
            "cmd/sensor-7/#:1"
        ],
        "{table}"
    );

    let retained = json(&broker, &["list", "retained"]).await;
    assert_eq!(retained[0]["topic"], "status/sensor-7");
    assert_eq!(retained[0]["qos"], 1);
    assert_eq!(retained[0]["payload_bytes"], 6);
    let table = ok(&broker, &["list", "retained"]).await;
    assert_eq!(
        table,
        "topic            qos  payload_bytes  payload\nstatus/sensor-7  1    6              online\n"
    );

    // After the client goes, its session stays (clean session off), disconnected. The
    // broker may close the socket just before it lets go of the session: ask until it has.
    client.disconnect().await;
    within("the session to show disconnected", async {
        loop {
            let sessions = json(&broker, &["list", "sessions"]).await;
            let s = sessions
                .as_array()
                .and_then(|ss| ss.iter().find(|s| s["client_id"] == "sensor-7"))
                .unwrap_or_else(|| panic!("session kept: {sessions}"))
                .clone();
            if s["connected"] == false {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await; // poll interval
        }
    })
    .await;

    // Operators can clear a retained message and end a session.
    let out = ok(&broker, &["delete", "retained", "status/sensor-7"]).await;
    assert_eq!(out, "retained message cleared: status/sensor-7\n");
    assert_eq!(
        json(&broker, &["list", "retained"]).await,
        serde_json::json!([])
    );
    let o = run(&broker, &["delete", "retained", "status/sensor-7"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = ok(&broker, &["delete", "session", "sensor-7"]).await;
    assert_eq!(out, "session deleted: sensor-7\n");
    let sessions = json(&broker, &["list", "sessions"]).await;
    assert!(
        sessions
            .as_array()
            .is_some_and(|ss| ss.iter().all(|s| s["client_id"] != "sensor-7")),
        "{sessions}"
    );
    let o = run(&broker, &["delete", "session", "sensor-7"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}
