//! Shared by the brokerctl test files: run the built binary against a test broker and
//! read what it printed.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::process::Output;

use serde_json::Value;
use tests::{TestBroker, within};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;

/// The brokerctl binary Cargo built for these tests.
pub const EXE: &str = env!("CARGO_BIN_EXE_brokerctl");

/// A brokerctl command for `url` that ignores the caller's BROKERCTL_* settings.
pub fn command(url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(EXE);
    cmd.env_remove("BROKERCTL_USER")
        .env_remove("BROKERCTL_PASSWORD")
        .env_remove("BROKERCTL_CACERT")
        .env_remove("BROKERCTL_AMQP_URL")
        .env("BROKERCTL_URL", url)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs brokerctl against `url` with `args` (and `stdin` if given).
pub async fn run_at(url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = command(url, args).spawn().expect("spawn brokerctl");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    within("brokerctl to finish", child.wait_with_output())
        .await
        .expect("brokerctl output")
}

/// Runs brokerctl against `broker`'s API.
pub async fn run(broker: &TestBroker, args: &[&str]) -> Output {
    run_at(&broker.http_url(), args, None).await
}

/// What brokerctl printed on stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What brokerctl printed on stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Panics unless `o` exited 0.
pub fn expect_success(o: &Output, args: &[&str]) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "brokerctl {args:?} failed: {}{}",
        stdout(o),
        stderr(o)
    );
}

/// Runs and expects exit 0; returns stdout.
pub async fn ok(broker: &TestBroker, args: &[&str]) -> String {
    let o = run(broker, args).await;
    expect_success(&o, args);
    stdout(&o)
}

/// Runs with `--format json` and expects exit 0; returns the parsed output.
pub async fn json(broker: &TestBroker, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = ok(broker, &all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Starts `brokerctl tail` with `args` and waits for its "tailing" line on stderr (printed
/// once its consumer is registered); returns the child and that line.
pub async fn start_tail(
    broker: &TestBroker,
    amqp_url: &str,
    args: &[&str],
) -> (tokio::process::Child, String) {
    let mut all = vec!["tail", "--amqp-url", amqp_url];
    all.extend_from_slice(args);
    let mut child = command(&broker.http_url(), &all)
        .spawn()
        .expect("spawn brokerctl tail");
    let mut err = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = within("the tail to start consuming", err.next_line())
        .await
        .expect("read stderr")
        .expect("tail exited before consuming");
    assert!(line.starts_with("brokerctl: tailing exchange"), "{line}");
    (child, line)
}
