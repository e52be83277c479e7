//! `brokerctl tail`: a live AMQP consumer on a temporary queue, started as a process,
//! fed with `brokerctl publish`, stopped by `--count`.

mod common;

use common::{json, ok, run, start_tail, stderr};
use serde_json::Value;
use tests::{TestBroker, within};
use tokio::io::{AsyncBufReadExt as _, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_the_published_messages_as_json_lines() {
    let broker = TestBroker::start().await;
    ok(
        &broker,
        &["declare", "exchange", "orders", "--type", "topic"],
    )
    .await;
    // An ordinary consumer queue, to show tail takes nothing from it.
    ok(&broker, &["declare", "queue", "all-orders"]).await;
    ok(
        &broker,
        &[
            "declare",
            "binding",
            "--source",
            "orders",
            "--destination",
            "all-orders",
            "--routing-key",
            "#",
        ],
    )
    .await;

    let amqp_url = format!("amqp://{}/%2F", broker.addr());
    let (child, _) = start_tail(
        &broker,
        &amqp_url,
        &[
            "orders",
            "--routing-key",
            "eu.#",
            "--count",
            "2",
            "--format",
            "json",
        ],
    )
    .await;
    let consumers = json(&broker, &["list", "consumers"]).await;
    let tail_queue = consumers
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["consumer_tag"] == "brokerctl-tail"))
        .map(|c| c["queue"]["name"].clone())
        .expect("tail's consumer listed");

    ok(
        &broker,
        &[
            "publish",
            "--exchange",
            "orders",
            "--routing-key",
            "us.ny",
            "--body",
            "not for the tail",
        ],
    )
    .await;
    for (key, body) in [("eu.de", "first"), ("eu.fr", "second")] {
        ok(
            &broker,
            &[
                "publish",
                "--exchange",
                "orders",
                "--routing-key",
                key,
                "--body",
                body,
                "--content-type",
                "text/plain",
            ],
        )
        .await;
    }
    let out = within("tail to stop after 2 messages", child.wait_with_output())
        .await
        .expect("tail output");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, (key, body)) in lines.iter().zip([("eu.de", "first"), ("eu.fr", "second")]) {
        assert_eq!(line["exchange"], "orders");
        assert_eq!(line["routing_key"], key);
        assert_eq!(line["payload"], body);
        assert_eq!(line["payload_encoding"], "string");
        assert_eq!(line["payload_bytes"], body.len());
        assert_eq!(line["properties"]["content_type"], "text/plain");
    }

    // The temporary queue goes with the tail's connection (the broker may answer close-ok
    // just before it deletes it: ask until it has); the ordinary queue kept every message.
    let queues = within("the tail's queue to go", async {
        loop {
            let queues = json(&broker, &["list", "queues"]).await;
            let names: Vec<&Value> = queues
                .as_array()
                .map(|qs| qs.iter().map(|q| &q["name"]).collect())
                .unwrap_or_default();
            if !names.contains(&&tail_queue) {
                return queues;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await; // poll interval
        }
    })
    .await;
    assert_eq!(queues[0]["name"], "all-orders");
    assert_eq!(queues[0]["messages_ready"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_shows_binary_bodies_and_reports_missing_exchanges() {
    let broker = TestBroker::start().await;
    let amqp_url = format!("amqp://{}/%2F", broker.addr());
    let (child, _) = start_tail(
        &broker,
        &amqp_url,
        &["amq.fanout", "--count", "1", "--encoding", "hex"],
    )
    .await;
    ok(
        &broker,
        &["publish", "--exchange", "amq.fanout", "--body", "hi"],
    )
    .await;
    let out = within("tail to stop", child.wait_with_output())
        .await
        .expect("tail output");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "(empty key)  hex:6869\n"
    );

    // A reader that goes away (`brokerctl tail | head -1`) ends the tail quietly.
    let (mut child, _) = start_tail(&broker, &amqp_url, &["amq.fanout"]).await;
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    ok(
        &broker,
        &["publish", "--exchange", "amq.fanout", "--body", "one"],
    )
    .await;
    let line = within("the first line", out.next_line())
        .await
        .expect("stdout");
    assert_eq!(line.as_deref(), Some("(empty key)  one"));
    drop(out);
    ok(
        &broker,
        &["publish", "--exchange", "amq.fanout", "--body", "two"],
    )
    .await;
    let status = within("tail to notice the closed pipe", child.wait())
        .await
        .expect("tail status");
    assert_eq!(status.code(), Some(0));

    let o = run(
        &broker,
        &["tail", "no-such-exchange", "--amqp-url", &amqp_url],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no-such-exchange") && stderr(&o).contains("AMQP 404"),
        "{}",
        stderr(&o)
    );

    let o = run(
        &broker,
        &[
            "--password",
            "wrong",
            "tail",
            "amq.fanout",
            "--amqp-url",
            &amqp_url,
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
}
