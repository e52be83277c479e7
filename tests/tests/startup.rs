//! Start-up failures of the broker binary: each must end the process with a
//! non-zero status and a reason an operator can act on (data directory in
//! use, address taken, data directory unusable), instead of running half
//! started or hanging. (Clean exit on SIGTERM is covered by
//! `crash_recovery.rs`.)

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tests::TestBroker;

const EXE: &str = env!("CARGO_BIN_EXE_test-broker");

/// How long a broker that cannot start may take to say so and exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the broker with `args` and waits for it to exit on its own; returns
/// its status and stderr. A broker still running after [`EXIT_TIMEOUT`] is
/// killed and the test fails: it should have refused to start.
fn run_expecting_exit(args: &[&str], data_dir: &Path) -> (ExitStatus, String) {
    let mut child = Command::new(EXE)
        .arg("--data-dir")
        .arg(data_dir)
        // The MQTT and HTTP listeners too stay off fixed ports, so that tests running
        // in parallel never fight over them.
        .args([
            "--mqtt-listen",
            "127.0.0.1:0",
            "--mqtt-ws-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the broker binary");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    // stderr reaches EOF when the process exits; read it on a thread so the
    // wait can have a deadline.
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    match rx.recv_timeout(EXIT_TIMEOUT) {
        Ok(text) => {
            let status = child.wait().expect("reap the broker");
            (status, text)
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the broker kept running for {EXIT_TIMEOUT:?}; it should have refused to start");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_broker_on_the_same_data_dir_refuses_to_start() {
    let first = TestBroker::start().await;
    let dir = first.data_dir().to_path_buf();
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        run_expecting_exit(&["--amqp-listen", "127.0.0.1:0"], &dir)
    })
    .await
    .expect("join the runner thread");
    assert!(!status.success(), "second broker exited with {status}");
    assert!(
        stderr.contains("data directory") && stderr.contains("in use"),
        "the reason must name the data directory being in use: {stderr}"
    );
    // The first broker is unharmed.
    let conn = first.connect().await;
    tests::within("channel.open", conn.create_channel())
        .await
        .expect("the first broker still serves clients");
}

#[test]
fn taken_port_makes_the_broker_exit_naming_the_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("local addr").to_string();
    let (status, stderr) = run_expecting_exit(&["--amqp-listen", &addr], dir.path());
    assert!(!status.success(), "broker exited with {status}");
    assert!(
        stderr.contains(&addr),
        "the reason must name the address {addr}: {stderr}"
    );
    assert!(
        !stderr.contains("AMQP listener ready"),
        "the broker must not report a listener: {stderr}"
    );
}

#[test]
fn data_dir_that_is_a_file_makes_the_broker_exit() {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let (status, stderr) = run_expecting_exit(&["--amqp-listen", "127.0.0.1:0"], file.path());
    assert!(!status.success(), "broker exited with {status}");
    assert!(
        stderr.contains("data directory"),
        "the reason must mention the data directory: {stderr}"
    );
    assert!(
        !stderr.contains("AMQP listener ready"),
        "the broker must not have started listening: {stderr}"
    );
}
