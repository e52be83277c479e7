//! Interoperability with independent MQTT clients: Eclipse Paho (Python,
//! `tests/interop/paho_smoke.py`) and Mosquitto's `mosquitto_sub` /
//! `mosquitto_pub`, each in MQTT 3.1.1 and 5.0, against an in-process broker.
//! If a client is missing the test fails and names the install command
//! (CI installs them: `.ci/run`).

use std::process::Stdio;
use std::time::Duration;

use tests::{TestBroker, within};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/paho_smoke.py");

async fn require(program: &str, args: &[&str], install: &str) {
    match Command::new(program).args(args).output().await {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "this test needs {program} {args:?} to work: run `{install}` (CI installs it)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("this test needs {program}: run `{install}` (CI installs it): {e}"),
    }
}

async fn paho(protocol: &str) {
    paho_over(protocol, "tcp").await;
}

async fn paho_over(protocol: &str, transport: &str) {
    require(
        "python3",
        &["-c", "import paho.mqtt"],
        "pip install paho-mqtt",
    )
    .await;
    let broker = TestBroker::start().await;
    let port = if transport == "websockets" {
        broker.mqtt_ws_addr().port()
    } else {
        broker.mqtt_addr().port()
    };
    let run = Command::new("python3")
        .arg(SCRIPT)
        .args(["--port", &port.to_string()])
        .args(["--protocol", protocol])
        .args(["--transport", transport])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("paho_smoke.py finished within 60 s")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("paho_smoke.py stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        out.status.success(),
        "paho_smoke.py --protocol {protocol} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("OK\n"),
        "script did not report OK:\n{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_v311() {
    paho("311").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_v5() {
    paho("5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_over_websocket() {
    paho_over("5", "websockets").await;
    paho_over("311", "websockets").await;
}

async fn mosquitto(version: &str) {
    let install = "apt-get install -y mosquitto-clients";
    require(
        "sh",
        &["-c", "command -v mosquitto_sub && command -v mosquitto_pub"],
        install,
    )
    .await;
    let broker = TestBroker::start().await;
    let port = broker.mqtt_addr().port().to_string();
    let common = ["-h", "127.0.0.1", "-p", port.as_str(), "-V", version];
    // -d prints the protocol exchange, so we can wait for the SUBACK instead
    // of guessing when the subscription is in place.
    // stdbuf: mosquitto_sub block-buffers a piped stdout.
    let mut sub = Command::new("stdbuf")
        .args(["-oL", "mosquitto_sub"])
        .args(common)
        .args(["-d", "-C", "1", "-q", "1", "-t", "mosq/t", "-i", "mosq-sub"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn mosquitto_sub");
    let mut lines = BufReader::new(sub.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    within("mosquitto_sub's SUBACK", async {
        while let Some(line) = lines.next_line().await.expect("read mosquitto_sub") {
            let suback = line.contains("received SUBACK");
            seen.push(line);
            if suback {
                return;
            }
        }
        panic!("mosquitto_sub exited before subscribing: {seen:?}");
    })
    .await;

    let publ = Command::new("mosquitto_pub")
        .args(common)
        .args(["-q", "1", "-t", "mosq/t", "-m", "hello from mosquitto"])
        .args(["-i", "mosq-pub"])
        .kill_on_drop(true)
        .output();
    let out = within("mosquitto_pub", publ)
        .await
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub -V {version} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    within("mosquitto_sub's message", async {
        while let Some(line) = lines.next_line().await.expect("read mosquitto_sub") {
            if line == "hello from mosquitto" {
                return;
            }
            seen.push(line);
        }
        panic!("mosquitto_sub exited without the message: {seen:?}");
    })
    .await;
    let status = within("mosquitto_sub to exit after -C 1", sub.wait())
        .await
        .expect("wait");
    assert!(status.success(), "mosquitto_sub -V {version}: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_v311() {
    mosquitto("mqttv311").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_v5() {
    mosquitto("mqttv5").await;
}
