//! Interoperability with a second, independent client: Python's pika runs
//! `tests/interop/pika_smoke.py` (declare, 100 confirmed publishes,
//! consume with acks) against an in-process broker.

use std::time::Duration;

use tests::TestBroker;
use tokio::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/pika_smoke.py");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pika_publishes_with_confirms_and_consumes() {
    let probe = Command::new("python3")
        .args(["-c", "import pika"])
        .output()
        .await;
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the pika interop test needs the Python client: run `pip install pika` (CI installs it)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("the pika interop test needs python3 with pika (`pip install pika`): {e}"),
    }

    let broker = TestBroker::start().await;
    let run = Command::new("python3")
        .arg(SCRIPT)
        .args(["--port", &broker.addr().port().to_string()])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("pika_smoke.py finished within 60 s")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("pika_smoke.py stdout:\n{stdout}\npika_smoke.py stderr:\n{stderr}");
    assert!(
        out.status.success(),
        "pika_smoke.py failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("OK"), "script did not report OK:\n{stdout}");
}
