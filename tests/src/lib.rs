//! Test support for the end-to-end tests in `tests/tests/`: real brokers on
//! ephemeral ports with temporary data directories, and real clients.
//!
//! # Layout
//! - [`TestBroker`]: the broker in-process (fast; clean shutdown and restart).
//! - [`child::ChildBroker`]: the broker as a child process (SIGKILL, SIGTERM).
//! - [`raw::RawClient`]: a frame-level AMQP peer for protocol-violation tests
//!   that no well-behaved client library can produce.
//! - [`tls`]: test certificates (rcgen) and TLS client configurations.
//! - [`api::Api`]: the management HTTP API as a user (status + JSON answers).
//! - [`amqp`]: lapin set-up steps (channels, declares, binds, numbered
//!   publishes, consumers), each bounded and panicking on refusal.
//! - [`mqtt`]: rumqttc 3.1.1/5.0 clients driven on their own tasks, and a
//!   packet-level MQTT peer.
//! - Helpers: [`within`] (every await in a test is bounded, so a broken broker
//!   fails the test instead of hanging it), [`reply_code`], [`next_delivery`],
//!   [`seq_body`] / [`body_seq`] (message bodies carry a sequence number so
//!   loss and duplication can be counted).
//!
//! Tests never sleep to synchronise: they await the event they need (a
//! delivery, a confirm, an error event, the ready line of a child broker),
//! each wrapped in [`within`].

pub mod amqp;
pub mod api;
pub mod child;
pub mod mqtt;
pub mod raw;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use broker::{Broker, Config};
use futures_util::{Stream, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer, ErrorKind,
    Event,
};
use tempfile::TempDir;

/// Upper bound for any single await in a test. Generous, because two cores
/// run many tests in parallel; a healthy broker answers in milliseconds.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Awaits `fut`, panicking with `what` if it takes longer than [`TIMEOUT`].
///
/// Why: a broker that loses a reply would otherwise hang the whole suite.
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {TIMEOUT:?} waiting for {what}"),
    }
}

/// The AMQP URI of a broker listening on `addr`, with the default user and
/// vhost `/` (percent-encoded, as lapin wants it).
pub fn amqp_uri(addr: SocketAddr) -> String {
    format!("amqp://guest:guest@{addr}/%2f")
}

/// Opens a lapin connection to `addr`, bounded by [`TIMEOUT`].
pub async fn connect_to(addr: SocketAddr) -> anyhow::Result<Connection> {
    tokio::time::timeout(
        TIMEOUT,
        Connection::connect(&amqp_uri(addr), ConnectionProperties::default()),
    )
    .await
    .with_context(|| format!("timed out connecting to {addr}"))?
    .with_context(|| format!("cannot connect to {addr}"))
}

/// Opens a lapin connection, retrying for up to `patience`.
///
/// Why: right after a child broker restarts, or while a killed broker's port
/// is still being torn down, the first attempts may be refused.
pub async fn connect_with_retry(
    addr: SocketAddr,
    patience: Duration,
) -> anyhow::Result<Connection> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match connect_to(addr).await {
            Ok(conn) => return Ok(conn),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await, // back-off between attempts, not synchronisation
        }
    }
}

/// The AMQP reply code carried by a lapin error (channel.close or
/// connection.close from the broker), if it is a protocol error.
pub fn reply_code(err: &lapin::Error) -> Option<u16> {
    match err.kind() {
        ErrorKind::ProtocolError(e) => Some(e.get_id()),
        _ => None,
    }
}

/// Waits for the next error event on a connection's event stream
/// (`Connection::events_listener`).
///
/// Why: errors caused by asynchronous methods (basic.ack, basic.publish) come
/// back as a channel.close that no pending call is waiting for; lapin
/// reports them on this stream.
pub async fn next_error_event<S>(events: &mut S) -> lapin::Error
where
    S: Stream<Item = Event> + Unpin,
{
    within("an error event from the connection", async {
        loop {
            match events.next().await {
                Some(Event::Error(e)) => return e,
                Some(_) => continue,
                None => panic!("connection event stream ended without an error"),
            }
        }
    })
    .await
}

/// The next delivery of `consumer`; panics on timeout, error or cancel.
pub async fn next_delivery(consumer: &mut Consumer) -> Delivery {
    match within("a delivery", consumer.next()).await {
        Some(Ok(delivery)) => delivery,
        Some(Err(e)) => panic!("consumer failed: {e}"),
        None => panic!("consumer was cancelled"),
    }
}

/// Asserts that `consumer` receives nothing for `quiet`.
///
/// This is the one bounded wait in the suite: absence of an event cannot be
/// awaited, so tests first await everything they expect and then check that
/// nothing more arrives within a short window.
pub async fn assert_no_delivery(consumer: &mut Consumer, quiet: Duration) {
    if let Ok(item) = tokio::time::timeout(quiet, consumer.next()).await {
        match item {
            Some(Ok(d)) => panic!(
                "unexpected delivery: tag {} body {:?}",
                d.delivery_tag,
                String::from_utf8_lossy(&d.data)
            ),
            Some(Err(e)) => panic!("consumer failed: {e}"),
            None => panic!("consumer was cancelled"),
        }
    }
}

/// Publishes one message on a channel in confirm mode and waits for its
/// confirm; panics if the publish fails or no confirm arrives in time.
pub async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    options: BasicPublishOptions,
    body: &[u8],
    properties: BasicProperties,
) -> Confirmation {
    let confirm = within(
        "basic.publish",
        channel.basic_publish(
            exchange.into(),
            routing_key.into(),
            options,
            body,
            properties,
        ),
    )
    .await
    .expect("basic.publish");
    within("the publisher confirm", confirm)
        .await
        .expect("publisher confirm")
}

/// Takes every message out of `queue` with basic.get (no-ack) and returns
/// the bodies in order; stops at get-empty.
pub async fn get_all(channel: &Channel, queue: &str) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    loop {
        let got = within(
            "basic.get",
            channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }),
        )
        .await
        .expect("basic.get");
        match got {
            Some(msg) => bodies.push(msg.delivery.data),
            None => return bodies,
        }
    }
}

/// Message body carrying sequence number `n` (parse it with [`body_seq`]).
pub fn seq_body(n: u64) -> Vec<u8> {
    format!("seq={n}").into_bytes()
}

/// The sequence number in a body made by [`seq_body`]; panics otherwise, as a
/// foreign or corrupted body is itself a test failure.
pub fn body_seq(body: &[u8]) -> u64 {
    std::str::from_utf8(body)
        .ok()
        .and_then(|s| s.strip_prefix("seq="))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a sequence body: {:?}", String::from_utf8_lossy(body)))
}

/// A broker running inside the test process, with its own temporary data
/// directory and an ephemeral loopback port.
///
/// Field order matters: the broker is dropped before the directory it uses.
pub struct TestBroker {
    broker: Option<Broker>,
    config: Config,
    addr: SocketAddr,
    mqtt_addr: SocketAddr,
    mqtt_ws_addr: SocketAddr,
    http_addr: SocketAddr,
    amqps_addr: Option<SocketAddr>,
    mqtts_addr: Option<SocketAddr>,
    _dir: TempDir,
}

impl TestBroker {
    /// Starts a broker with default settings.
    pub async fn start() -> TestBroker {
        TestBroker::start_with(|_| {}).await
    }

    /// Starts a broker after letting `adjust` change the settings (e.g. a
    /// small frame_max, so that rare paths run).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestBroker {
        let dir = tempfile::Builder::new()
            .prefix("broker-e2e-")
            .tempdir()
            .expect("create temp data dir");
        let mut config = Config::for_data_dir(dir.path());
        adjust(&mut config);
        let broker = within("broker start", Broker::start(config.clone()))
            .await
            .expect("broker starts");
        let addr = broker.amqp_addr();
        let mqtt_addr = broker.mqtt_addr();
        let mqtt_ws_addr = broker.mqtt_ws_addr();
        let http_addr = broker.http_addr();
        let amqps_addr = broker.amqps_addr();
        let mqtts_addr = broker.mqtts_addr();
        TestBroker {
            broker: Some(broker),
            config,
            addr,
            mqtt_addr,
            mqtt_ws_addr,
            http_addr,
            amqps_addr,
            mqtts_addr,
            _dir: dir,
        }
    }

    /// Address of the AMQP listener (changes on [`TestBroker::restart`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Address of the MQTT listener (changes on [`TestBroker::restart`]).
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// Address of the MQTT-over-WebSocket listener (path `/mqtt`).
    pub fn mqtt_ws_addr(&self) -> SocketAddr {
        self.mqtt_ws_addr
    }

    /// Starts a broker with TLS on (AMQPS, MQTTS; HTTPS for the API if `https`) using
    /// `certs`.
    pub async fn start_tls(certs: &tls::TestCerts, https: bool) -> TestBroker {
        TestBroker::start_with(|c| {
            certs.configure(c);
            c.http_tls = https;
        })
        .await
    }

    /// Address of the AMQPS listener; panics if the broker was started without TLS.
    pub fn amqps_addr(&self) -> SocketAddr {
        self.amqps_addr.expect("broker started with TLS")
    }

    /// Address of the MQTTS listener; panics if the broker was started without TLS.
    pub fn mqtts_addr(&self) -> SocketAddr {
        self.mqtts_addr.expect("broker started with TLS")
    }

    /// Address of the management HTTP API (changes on [`TestBroker::restart`]).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// `http://127.0.0.1:PORT`, the management API's base URL.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`
    pub fn amqp_uri(&self) -> String {
        amqp_uri(self.addr)
    }

    /// The data directory (kept until the `TestBroker` is dropped).
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Opens a lapin connection; panics if the broker refuses it.
    pub async fn connect(&self) -> Connection {
        connect_to(self.addr).await.expect("connect to test broker")
    }

    /// Shuts the broker down cleanly and starts a new one on the same data
    /// directory (the port may change).
    pub async fn restart(&mut self) {
        if let Some(broker) = self.broker.take() {
            within("broker shutdown", broker.shutdown()).await;
        }
        let broker = within("broker restart", Broker::start(self.config.clone()))
            .await
            .expect("broker restarts on the same data dir");
        self.addr = broker.amqp_addr();
        self.mqtt_addr = broker.mqtt_addr();
        self.mqtt_ws_addr = broker.mqtt_ws_addr();
        self.http_addr = broker.http_addr();
        self.amqps_addr = broker.amqps_addr();
        self.mqtts_addr = broker.mqtts_addr();
        self.broker = Some(broker);
    }

    /// Shuts the broker down cleanly (dropping it only cancels its tasks).
    pub async fn shutdown(mut self) {
        if let Some(broker) = self.broker.take() {
            within("broker shutdown", broker.shutdown()).await;
        }
    }
}
