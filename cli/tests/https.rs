//! `brokerctl` over HTTPS: a broker started with `--http-tls` and a test CA; `--cacert`
//! trusts it, without it the certificate is refused in one line, `--insecure` warns.

mod common;

use common::{run_at, stderr, stdout};
use tests::TestBroker;
use tests::tls::TestCerts;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_needs_the_ca_or_insecure() {
    let certs = TestCerts::generate();
    let broker = TestBroker::start_tls(&certs, true).await;
    let ca = certs.path("ca.pem");
    std::fs::write(&ca, &certs.ca_pem).expect("write CA");
    let ca = ca.display().to_string();
    let url = format!("https://127.0.0.1:{}", broker.http_addr().port());

    let o = run_at(&url, &["--cacert", &ca, "status"], None).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("broker "), "{}", stdout(&o));

    let o = run_at(&url, &["status"], None).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with(&format!("brokerctl: cannot reach the broker at {url}"))
            && err.contains("certificate")
            && err.contains("--cacert"),
        "{err}"
    );

    let o = run_at(&url, &["--insecure", "list", "queues"], None).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: --insecure"), "{}", stderr(&o));

    // Credentials are still checked over HTTPS.
    let o = run_at(
        &url,
        &["--cacert", &ca, "--password", "nope", "status"],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

    // A file that is not a certificate is a usage error naming it.
    let bad = certs.path("bad.pem");
    std::fs::write(&bad, "not a certificate").expect("write");
    let o = run_at(
        &url,
        &["--cacert", &bad.display().to_string(), "status"],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.pem"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_over_amqps_trusts_the_cacert() {
    let certs = TestCerts::generate();
    let broker = TestBroker::start_tls(&certs, true).await;
    let ca = certs.path("ca.pem");
    std::fs::write(&ca, &certs.ca_pem).expect("write CA");
    let ca = ca.display().to_string();
    let url = format!("https://127.0.0.1:{}", broker.http_addr().port());
    let amqps = format!("amqps://127.0.0.1:{}/%2F", broker.amqps_addr().port());

    let mut child = common::command(
        &url,
        &[
            "--cacert",
            &ca,
            "tail",
            "amq.topic",
            "--amqp-url",
            &amqps,
            "--count",
            "1",
        ],
    )
    .spawn()
    .expect("spawn tail");
    let mut err = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        child.stderr.take().expect("stderr"),
    ));
    let line = tests::within("tail over amqps to start", err.next_line())
        .await
        .expect("stderr")
        .expect("tail exited early");
    assert!(line.starts_with("brokerctl: tailing"), "{line}");
    let o = run_at(
        &url,
        &[
            "--cacert",
            &ca,
            "publish",
            "--exchange",
            "amq.topic",
            "--routing-key",
            "a.b",
            "--body",
            "secure",
        ],
        None,
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = tests::within("tail to stop", child.wait_with_output())
        .await
        .expect("tail output");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a.b  secure\n");
}
