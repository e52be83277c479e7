//! `brokerctl` users, permissions and vhosts: add/change/delete user (then log in with the
//! new password through the API), set/clear permissions, add/delete vhost.

mod common;

use common::{json, ok, run, run_at, stderr, stdout};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use tests::{TestBroker, within};

/// The rows of a `list ...` table, split on whitespace, without the header.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_change_and_delete_a_user_then_log_in_as_them() {
    let broker = TestBroker::start().await;
    let out = ok(
        &broker,
        &[
            "add",
            "user",
            "ops",
            "first-pass",
            "--tags",
            "administrator,monitoring",
        ],
    )
    .await;
    assert_eq!(out, "user added: ops\n");
    let table = ok(&broker, &["list", "users"]).await;
    assert!(table.starts_with("name"), "{table}");
    assert!(
        rows(&table).contains(&vec!["ops".into(), "administrator,monitoring".into()]),
        "{table}"
    );

    // The new user logs in to the API.
    let as_ops = |password: &'static str| {
        let url = broker.http_url();
        async move {
            run_at(
                &url,
                &["--user", "ops", "--password", password, "list", "users"],
                None,
            )
            .await
        }
    };
    let o = as_ops("first-pass").await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A new password from standard input (not on the command line); tags stay.
    let o = run_at(
        &broker.http_url(),
        &["change", "password", "ops", "--password-stdin"],
        Some("second-pass\n"),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "password changed: ops\n");
    let o = as_ops("first-pass").await;
    assert_eq!(
        o.status.code(),
        Some(3),
        "old password refused: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("authentication failed for user 'ops'"),
        "{}",
        stderr(&o)
    );
    let o = as_ops("second-pass").await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let users = json(&broker, &["list", "users"]).await;
    let ops = users
        .as_array()
        .and_then(|us| us.iter().find(|u| u["name"] == "ops"))
        .expect("ops listed");
    assert_eq!(
        ops["tags"],
        serde_json::json!(["administrator", "monitoring"])
    );

    // A monitoring user reads but may not change anything: 403, exit 1 (not 3).
    ok(
        &broker,
        &["add", "user", "watcher", "w-pass", "--tags", "monitoring"],
    )
    .await;
    let url = broker.http_url();
    let watcher = ["--user", "watcher", "--password", "w-pass"];
    let o = run_at(&url, &[&watcher[..], &["list", "queues"]].concat(), None).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run_at(
        &url,
        &[&watcher[..], &["declare", "queue", "q"]].concat(),
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("HTTP 403"), "{}", stderr(&o));

    // Changing the password of nobody does not create them.
    let o = run(&broker, &["change", "password", "ghost", "x"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "brokerctl: no user 'ghost' (HTTP 404)\n");
    // Missing password, and both sources at once, are usage errors.
    let o = run(&broker, &["add", "user", "nopass"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--password-stdin"), "{}", stderr(&o));
    let o = run(&broker, &["add", "user", "x", "p", "--password-stdin"]).await;
    assert_eq!(o.status.code(), Some(1));

    let out = ok(&broker, &["delete", "user", "ops"]).await;
    assert_eq!(out, "user deleted: ops\n");
    let o = as_ops("second-pass").await;
    assert_eq!(o.status.code(), Some(3), "deleted: {}", stderr(&o));
    let o = run(&broker, &["delete", "user", "ops"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "brokerctl: no user 'ops' (HTTP 404)\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_then_clear_permissions() {
    let broker = TestBroker::start().await;
    ok(&broker, &["add", "user", "app", "app-pass"]).await;
    let out = ok(
        &broker,
        &[
            "set",
            "permissions",
            "app",
            "--vhost",
            "/",
            "--configure",
            "^app-.*",
            "--write",
            ".*",
            "--read",
            "^app-.*",
        ],
    )
    .await;
    assert_eq!(out, "permissions set: app in vhost /\n");
    let table = ok(&broker, &["list", "permissions"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["user", "vhost", "configure", "write", "read"]);
    assert!(
        rows(&table).contains(&vec![
            "app".into(),
            "/".into(),
            "^app-.*".into(),
            ".*".into(),
            "^app-.*".into()
        ]),
        "{table}"
    );
    let perms = json(&broker, &["list", "permissions"]).await;
    assert!(
        perms.as_array().is_some_and(|ps| ps
            .iter()
            .any(|p| p["user"] == "app" && p["vhost"] == "/" && p["configure"] == "^app-.*")),
        "{perms}"
    );

    // The broker enforces the grant: app may declare app-* queues only.
    let conn = within(
        "app's AMQP login",
        lapin::Connection::connect(
            &format!("amqp://app:app-pass@{}/%2f", broker.addr()),
            lapin::ConnectionProperties::default(),
        ),
    )
    .await
    .expect("app logs in over AMQP with its vhost permission");
    let ch = within("channel", conn.create_channel())
        .await
        .expect("channel");
    let declare = |name: &'static str| {
        ch.queue_declare(
            name.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
    };
    within("declare app-work", declare("app-work"))
        .await
        .expect("configure allowed for app-*");
    let refused = within("declare other", declare("other"))
        .await
        .expect_err("configure refused for other names");
    assert_eq!(tests::reply_code(&refused), Some(403), "{refused}");

    // A bad regex is the broker's 400.
    let o = run(
        &broker,
        &[
            "set",
            "permissions",
            "app",
            "--configure",
            "(",
            "--write",
            "",
            "--read",
            "",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("HTTP 400"), "{}", stderr(&o));

    let out = ok(&broker, &["clear", "permissions", "app", "--vhost", "/"]).await;
    assert_eq!(out, "permissions cleared: app in vhost /\n");
    let perms = json(&broker, &["list", "permissions"]).await;
    assert!(
        perms
            .as_array()
            .is_some_and(|ps| ps.iter().all(|p| p["user"] != "app")),
        "{perms}"
    );
    let o = run(&broker, &["clear", "permissions", "app"]).await;
    assert_eq!(o.status.code(), Some(1), "nothing left to clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_list_and_delete_a_vhost() {
    let broker = TestBroker::start().await;
    let out = ok(
        &broker,
        &["add", "vhost", "staging", "--description", "pre-production"],
    )
    .await;
    assert_eq!(out, "vhost added: staging\n");
    let out = ok(&broker, &["add", "vhost", "staging"]).await;
    assert_eq!(out, "vhost already exists: staging\n");
    let table = ok(&broker, &["list", "vhosts"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["name", "description", "tags", "queues", "connections"]
    );
    let names: Vec<String> = rows(&table).into_iter().map(|r| r[0].clone()).collect();
    assert!(names.contains(&"/".to_string()) && names.contains(&"staging".to_string()));
    let vhosts = json(&broker, &["list", "vhosts"]).await;
    assert!(
        vhosts.as_array().is_some_and(|vs| vs
            .iter()
            .any(|v| v["name"] == "staging" && v["description"] == "pre-production")),
        "{vhosts}"
    );

    // Permissions in the new vhost, then its deletion takes them along.
    ok(
        &broker,
        &[
            "set",
            "permissions",
            "guest",
            "--vhost",
            "staging",
            "--configure",
            ".*",
            "--write",
            ".*",
            "--read",
            ".*",
        ],
    )
    .await;
    let perms = json(&broker, &["list", "permissions"]).await;
    assert!(
        perms
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["vhost"] == "staging")),
        "{perms}"
    );

    // --vhost points the other commands at it; lists with --vhost show only its objects.
    ok(&broker, &["declare", "queue", "in-root", "--durable"]).await;
    ok(&broker, &["--vhost", "staging", "declare", "queue", "jobs"]).await;
    ok(
        &broker,
        &[
            "--vhost",
            "staging",
            "publish",
            "--routing-key",
            "jobs",
            "--body",
            "j1",
        ],
    )
    .await;
    let got = json(&broker, &["--vhost", "staging", "get", "jobs"]).await;
    assert_eq!(got[0]["payload"], "j1", "{got}");
    let queues = json(&broker, &["list", "queues", "--vhost", "staging"]).await;
    assert_eq!(queues.as_array().map(Vec::len), Some(1), "{queues}");
    assert_eq!(queues[0]["name"], "jobs");
    assert_eq!(queues[0]["vhost"], "staging");
    let queues = json(&broker, &["list", "queues"]).await;
    assert_eq!(
        queues.as_array().map(Vec::len),
        Some(2),
        "every vhost: {queues}"
    );

    let out = ok(&broker, &["delete", "vhost", "staging"]).await;
    assert_eq!(out, "vhost deleted: staging\n");
    let vhosts = json(&broker, &["list", "vhosts"]).await;
    assert!(
        vhosts
            .as_array()
            .is_some_and(|vs| vs.iter().all(|v| v["name"] != "staging")),
        "{vhosts}"
    );
    let perms = json(&broker, &["list", "permissions"]).await;
    assert!(
        perms
            .as_array()
            .is_some_and(|ps| ps.iter().all(|p| p["vhost"] != "staging")),
        "{perms}"
    );
    let o = run(&broker, &["delete", "vhost", "staging"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("HTTP 404"), "{}", stderr(&o));
}
