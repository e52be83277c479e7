//! Short AMQP and MQTT scenarios against an in-process broker: the report
//! must account for every message (no timing assertions).

use bench::cli::{Cli, Command};
use bench::scenario;
use clap::Parser as _;

async fn broker() -> (broker::Broker, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = broker::Broker::start(broker::Config::for_data_dir(dir.path()))
        .await
        .expect("broker starts");
    (broker, dir)
}

fn cli(args: &[&str]) -> Command {
    let mut argv = vec!["loadgen"];
    argv.extend_from_slice(args);
    Cli::parse_from(argv).command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_competing_consumers_with_confirms_account_for_every_message() {
    let (broker, _dir) = broker().await;
    let addr = broker.amqp_addr().to_string();
    let Command::Amqp(opts) = cli(&[
        "amqp",
        "--addr",
        &addr,
        "--producers",
        "2",
        "--consumers",
        "2",
        "--count",
        "2000",
        "--persistent",
        "--confirm",
        "200",
        "--quiet",
    ]) else {
        unreachable!()
    };
    let r = scenario::amqp::run(&opts).await.expect("scenario runs");
    assert_eq!(r.sent, 4000);
    assert_eq!(r.confirmed, Some(4000));
    assert_eq!(r.expected, 4000);
    assert_eq!(r.received, 4000);
    assert_eq!((r.lost, r.duplicated, r.foreign), (0, 0, 0));
    assert_eq!(r.per_consumer.iter().sum::<u64>(), 4000);
    assert!(r.latency_us.is_some());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_qos1_fan_out_delivers_everything_to_every_subscriber() {
    let (broker, _dir) = broker().await;
    let addr = broker.mqtt_addr().to_string();
    let Command::Mqtt(opts) = cli(&[
        "mqtt",
        "--addr",
        &addr,
        "--producers",
        "1",
        "--consumers",
        "3",
        "--count",
        "1000",
        "--qos",
        "1",
        "--quiet",
    ]) else {
        unreachable!()
    };
    let r = scenario::mqtt::run(&opts).await.expect("scenario runs");
    assert_eq!(r.sent, 1000);
    assert_eq!(r.confirmed, Some(1000));
    assert_eq!(r.expected, 3000);
    assert_eq!((r.received, r.lost, r.duplicated), (3000, 0, 0));
    assert_eq!(r.out_of_order, 0);
    assert_eq!(r.per_consumer, vec![1000, 1000, 1000]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_sink_takes_publishes_and_confirms() {
    let (amqp, mqtt) = bench::null_sink::start("127.0.0.1", Some(0), Some(0))
        .await
        .expect("null sink starts");
    let amqp = amqp.expect("amqp addr").to_string();
    let Command::Amqp(opts) = cli(&[
        "amqp",
        "--addr",
        &amqp,
        "--consumers",
        "0",
        "--count",
        "5000",
        "--confirm",
        "100",
        "--quiet",
    ]) else {
        unreachable!()
    };
    let r = scenario::amqp::run(&opts)
        .await
        .expect("amqp against the sink");
    assert_eq!((r.sent, r.confirmed), (5000, Some(5000)));
    let mqtt = mqtt.expect("mqtt addr").to_string();
    let Command::Mqtt(opts) = cli(&[
        "mqtt",
        "--addr",
        &mqtt,
        "--consumers",
        "0",
        "--count",
        "5000",
        "--qos",
        "2",
        "--quiet",
    ]) else {
        unreachable!()
    };
    let r = scenario::mqtt::run(&opts)
        .await
        .expect("mqtt against the sink");
    assert_eq!((r.sent, r.confirmed), (5000, Some(5000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_spread_over_source_addresses_all_open() {
    let (broker, _dir) = broker().await;
    for (protocol, addr) in [
        ("mqtt", broker.mqtt_addr().to_string()),
        ("amqp", broker.amqp_addr().to_string()),
    ] {
        let Command::Conns(opts) = cli(&[
            "conns",
            "--protocol",
            protocol,
            "--addr",
            &addr,
            "--count",
            "40",
            "--rate",
            "2000",
            "--hold",
            "0",
            "--source-addrs",
            "127.0.0.1-127.0.0.3,127.0.0.7",
            "--quiet",
        ]) else {
            unreachable!()
        };
        let r = scenario::conns::run(&opts).await.expect("scenario runs");
        let c = r.conns.expect("a connection report");
        assert_eq!((c.succeeded, c.failed), (40, 0), "{protocol}: {c:?}");
        assert_eq!(c.source_addrs.as_deref(), Some("127.0.0.1..127.0.0.7 (4)"));
    }
    broker.shutdown().await;
}
