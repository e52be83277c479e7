//! `brokerctl` end to end: the built binary against a broker started by the test (HTTP on an
//! ephemeral port), checking what it prints and the exit codes scripts rely on.

mod common;

use common::{json, ok, run, run_at, stderr, stdout};
use lapin::options::{ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use serde_json::Value;
use tests::{TestBroker, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_documents_every_command_and_the_exit_codes() {
    let o = run_at("http://127.0.0.1:9", &["--help"], None).await;
    assert_eq!(o.status.code(), Some(0));
    let help = stdout(&o);
    for word in [
        "status",
        "list",
        "declare",
        "delete",
        "purge",
        "publish",
        "get",
        "close",
        "export",
        "import",
        "add",
        "change",
        "set",
        "clear",
        "tail",
        "--url",
        "--cacert",
        "--insecure",
        "--user",
        "--password",
        "--format",
        "BROKERCTL_URL",
        "Exit codes",
        "3  authentication failed",
    ] {
        assert!(help.contains(word), "--help lacks {word:?}:\n{help}");
    }
    for sub in [
        &["list", "--help"][..],
        &["declare", "queue", "--help"],
        &["declare", "exchange", "--help"],
        &["declare", "binding", "--help"],
        &["delete", "binding", "--help"],
        &["publish", "--help"],
        &["get", "--help"],
        &["close", "connection", "--help"],
        &["add", "user", "--help"],
        &["add", "vhost", "--help"],
        &["change", "password", "--help"],
        &["delete", "user", "--help"],
        &["delete", "vhost", "--help"],
        &["delete", "session", "--help"],
        &["delete", "retained", "--help"],
        &["set", "permissions", "--help"],
        &["clear", "permissions", "--help"],
        &["tail", "--help"],
    ] {
        let o = run_at("http://127.0.0.1:9", sub, None).await;
        assert_eq!(o.status.code(), Some(0), "{sub:?}");
        assert!(
            stdout(&o).contains("Usage: brokerctl"),
            "{sub:?}: {}",
            stdout(&o)
        );
    }
    let o = run_at("http://127.0.0.1:9", &["list", "--help"], None).await;
    for kind in [
        "connections",
        "users",
        "vhosts",
        "permissions",
        "sessions",
        "retained",
    ] {
        assert!(stdout(&o).contains(kind), "possible value {kind} listed");
    }
    let o = run_at("http://127.0.0.1:9", &["add", "user", "--help"], None).await;
    assert!(
        stdout(&o).contains("--password-stdin") && stdout(&o).contains("shell history"),
        "why --password-stdin: {}",
        stdout(&o)
    );
    let o = run_at("http://127.0.0.1:9", &["tail", "--help"], None).await;
    assert!(stdout(&o).contains("BROKERCTL_AMQP_URL"), "{}", stdout(&o));
    let o = run_at("http://127.0.0.1:9", &["frobnicate"], None).await;
    assert_eq!(o.status.code(), Some(1), "usage errors exit 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_and_wrong_credentials_have_their_own_exit_codes() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let o = run_at(&format!("http://127.0.0.1:{port}"), &["status"], None).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("brokerctl: cannot reach the broker at http://127.0.0.1:"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");

    let broker = TestBroker::start().await;
    let o = run(&broker, &["--password", "wrong", "list", "queues"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("authentication failed for user 'guest'"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).trim_end().lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_publish_peek_purge_and_delete() {
    let broker = TestBroker::start().await;
    ok(
        &broker,
        &["declare", "exchange", "orders", "--type", "topic"],
    )
    .await;
    let out = ok(
        &broker,
        &[
            "declare",
            "queue",
            "eu-orders",
            "--argument",
            "x-max-length=100",
        ],
    )
    .await;
    assert_eq!(out, "queue declared: eu-orders\n");
    let out = ok(
        &broker,
        &[
            "declare",
            "queue",
            "eu-orders",
            "--argument",
            "x-max-length=100",
        ],
    )
    .await;
    assert_eq!(out, "queue already exists: eu-orders\n");
    ok(
        &broker,
        &[
            "declare",
            "binding",
            "--source",
            "orders",
            "--destination",
            "eu-orders",
            "--routing-key",
            "eu.#",
        ],
    )
    .await;

    let out = ok(
        &broker,
        &[
            "publish",
            "--exchange",
            "orders",
            "--routing-key",
            "eu.de",
            "--body",
            "first",
            "--persistent",
        ],
    )
    .await;
    assert_eq!(out, "message published and routed\n");
    let o = run_at(
        &broker.http_url(),
        &["publish", "--exchange", "orders", "--routing-key", "eu.fr"],
        Some("from stdin"),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = ok(
        &broker,
        &[
            "publish",
            "--exchange",
            "orders",
            "--routing-key",
            "us.ny",
            "--body",
            "x",
        ],
    )
    .await;
    assert_eq!(out, "message published but not routed to any queue\n");

    let table = ok(&broker, &["list", "queues"]).await;
    let mut lines = table.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("name") && header.contains("messages_ready"),
        "{table}"
    );
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    assert_eq!(row, ["eu-orders", "/", "true", "2", "0", "0"], "{table}");

    // Peeking twice shows the same messages: nothing is consumed.
    for _ in 0..2 {
        let got = json(&broker, &["get", "eu-orders", "--count", "5"]).await;
        let payloads: Vec<&str> = got
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|m| m["payload"].as_str())
            .collect();
        assert_eq!(payloads, ["first", "from stdin"]);
    }
    let queues = json(&broker, &["list", "queues"]).await;
    assert_eq!(queues[0]["messages_ready"], 2);
    assert_eq!(queues[0]["arguments"]["x-max-length"], 100);

    let bindings = json(&broker, &["list", "bindings"]).await;
    assert!(
        bindings
            .as_array()
            .expect("array")
            .iter()
            .any(|b| b["source"] == "orders" && b["routing_key"] == "eu.#")
    );
    ok(
        &broker,
        &[
            "delete",
            "binding",
            "--source",
            "orders",
            "--destination",
            "eu-orders",
            "--routing-key",
            "eu.#",
        ],
    )
    .await;
    let o = run(
        &broker,
        &[
            "delete",
            "binding",
            "--source",
            "orders",
            "--destination",
            "eu-orders",
            "--routing-key",
            "eu.#",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "a missing binding is an error");

    ok(&broker, &["purge", "queue", "eu-orders"]).await;
    let queues = json(&broker, &["list", "queues"]).await;
    assert_eq!(queues[0]["messages_ready"], 0);

    let o = run(&broker, &["delete", "queue", "nope"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "brokerctl: no queue 'nope' in vhost '/' (HTTP 404)\n"
    );
    let o = run(
        &broker,
        &["declare", "queue", "eu-orders", "--durable", "false"],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("inequivalent arg 'durable'") && stderr(&o).contains("HTTP 400"),
        "{}",
        stderr(&o)
    );
    ok(&broker, &["delete", "queue", "eu-orders"]).await;
    ok(&broker, &["delete", "exchange", "orders"]).await;
    let queues = json(&broker, &["list", "queues"]).await;
    assert_eq!(queues, Value::Array(Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_connections_and_closing_one() {
    let broker = TestBroker::start().await;
    let conn = broker.connect().await;
    let mut events = Box::pin(conn.events_listener());
    let ch = within("channel", conn.create_channel())
        .await
        .expect("channel");
    within(
        "declare",
        ch.queue_declare(
            "q".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("declare");

    let status = ok(&broker, &["status"]).await;
    assert!(status.starts_with("broker "), "{status}");
    let amqp = format!("127.0.0.1:{}", broker.addr().port());
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["amqp", amqp.as_str()]),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["connections", "1"]),
        "{status}"
    );

    let conns = json(&broker, &["list", "connections"]).await;
    let name = conns[0]["name"].as_str().expect("name").to_string();
    assert_eq!(conns[0]["protocol"], "AMQP 0-9-1");
    let table = ok(&broker, &["list", "channels"]).await;
    assert!(table.contains(&format!("{name} (1)")), "{table}");

    let out = ok(
        &broker,
        &["close", "connection", &name, "--reason", "rolling restart"],
    )
    .await;
    assert_eq!(out, format!("connection closed: {name}\n"));
    let err = tests::next_error_event(&mut events).await;
    assert_eq!(tests::reply_code(&err), Some(320));
    assert!(err.to_string().contains("rolling restart"), "{err}");
    let o = run(&broker, &["close", "connection", "no such connection"]).await;
    assert_eq!(o.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_into_another_broker() {
    let source = TestBroker::start().await;
    ok(
        &source,
        &["declare", "exchange", "events", "--type", "fanout"],
    )
    .await;
    ok(&source, &["declare", "queue", "audit"]).await;
    ok(
        &source,
        &[
            "declare",
            "binding",
            "--source",
            "events",
            "--destination",
            "audit",
        ],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("defs.json");
    let file_arg = file.display().to_string();
    ok(&source, &["export", &file_arg]).await;

    let target = TestBroker::start().await;
    let out = ok(&target, &["import", &file_arg]).await;
    assert_eq!(
        out,
        "imported 1 vhosts, 1 users, 1 permissions, 1 exchanges, 1 queues, 1 bindings\n"
    );
    let exported_again = ok(&target, &["export"]).await;
    let original = std::fs::read_to_string(&file).expect("read");
    assert_eq!(exported_again, original, "same definitions");

    // The imported topology routes AMQP publishes.
    let conn = target.connect().await;
    let ch = within("channel", conn.create_channel())
        .await
        .expect("channel");
    within(
        "confirms",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm");
    tests::publish_confirmed(
        &ch,
        "events",
        "",
        Default::default(),
        b"hi",
        Default::default(),
    )
    .await;
    assert_eq!(tests::get_all(&ch, "audit").await, vec![b"hi".to_vec()]);

    // Users whose hash this broker cannot check (RabbitMQ's SHA-256) are named as skipped.
    let rabbit = dir.path().join("rabbit.json");
    let defs = serde_json::json!({
        "users": [{
            "name": "rabbit",
            "password_hash": "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": ""
        }],
    });
    std::fs::write(&rabbit, defs.to_string()).expect("write");
    let out = ok(&target, &["import", &rabbit.display().to_string()]).await;
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("imported 0 vhosts, 0 users, 0 permissions, 0 exchanges, 0 queues, 0 bindings"),
        "{out}"
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("skipped users, with their permissions: rabbit (")),
        "{out}"
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").expect("write");
    let o = run(&target, &["import", &bad.display().to_string()]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not JSON"), "{}", stderr(&o));
}
