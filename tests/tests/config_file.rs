//! The `--config` TOML file: settings come from it unless a flag or environment variable
//! gives them, unknown keys are refused, and `log_format = "json"` gives JSON log lines.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tests::within;

const EXE: &str = env!("CARGO_BIN_EXE_test-broker");

fn spawn(args: &[&str]) -> Child {
    Command::new(EXE)
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("BROKER_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the broker")
}

/// Reads stderr lines until the JSON line announcing the AMQP listener; returns its address.
fn json_ready_addr(child: &mut Child) -> SocketAddr {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                let _ = tx.send(Err(line));
                continue;
            };
            if v["fields"]["message"] == "AMQP listener ready" {
                let addr = v["fields"]["addr"].as_str().unwrap_or_default().to_string();
                let _ = tx.send(Ok(addr));
            }
        }
    });
    match rx
        .recv_timeout(Duration::from_secs(20))
        .expect("broker became ready")
    {
        Ok(addr) => addr.parse().expect("addr field is an address"),
        Err(line) => panic!("a log line that is not JSON: {line}"),
    }
}

fn terminate(child: &mut Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "clean exit after SIGTERM: {status}");
}

#[tokio::test]
async fn settings_come_from_the_file_and_flags_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The file's data dir is unusable (a regular file): only the flag's makes the start work.
    let not_a_dir = dir.path().join("not-a-dir");
    std::fs::write(&not_a_dir, b"x").expect("write");
    let file = dir.path().join("broker.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\namqp-listen = \"127.0.0.1:0\"\nmqtt_listen = \"127.0.0.1:0\"\nmqtt_ws_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\nlog_format = \"json\"\n",
            not_a_dir.display().to_string()
        ),
    )
    .expect("write config");
    let data_arg = data.display().to_string();
    let file_arg = file.display().to_string();
    let mut child = spawn(&["--config", &file_arg, "--data-dir", &data_arg]);
    let addr = json_ready_addr(&mut child);
    let conn = within(
        "connect",
        lapin::Connection::connect(&tests::amqp_uri(addr), Default::default()),
    )
    .await
    .expect("the broker configured by file serves AMQP");
    within("close", conn.close(200, "bye".into()))
        .await
        .expect("close");
    assert!(data.join("LOCK").exists(), "the flag's data dir is in use");
    terminate(&mut child);
}

#[test]
fn unknown_keys_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("broker.toml");
    std::fs::write(&file, "amqp_listne = \"127.0.0.1:0\"\n").expect("write config");
    let out = Command::new(EXE)
        .args(["--config", &file.display().to_string()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown setting 'amqp_listne'"), "{stderr}");
}
