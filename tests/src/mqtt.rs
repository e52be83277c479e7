//! MQTT test clients: rumqttc 3.1.1 ([`V4Client`]) and 5.0 ([`V5Client`])
//! wrapped so that tests can await events, and [`RawMqtt`], a packet-level
//! peer on the `protocol-mqtt` codec for what no client library sends.
//!
//! Why the wrappers: rumqttc's event loop only makes progress while it is
//! polled, so each client gets a task that polls it continuously and forwards
//! every event over a channel. The task stops after the first connection
//! error (rumqttc would otherwise reconnect on the next poll and hide it), and
//! is aborted when the wrapper is dropped, which closes the socket without a
//! DISCONNECT: an abnormal disconnect, as far as the broker can tell.
//!
//! Publishes that arrive while a test waits for something else (an ack, a
//! SUBACK) are kept and handed out by the next `next_publish`, so waiting for
//! an acknowledgement never loses a delivery.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use protocol_mqtt::{Connect, Packet, ProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::within;

/// rumqttc request-channel capacity used by the helpers.
const CAP: usize = 512;

/// 3.1.1 options for `addr` with `client_id` (keep-alive 30 s, clean session).
pub fn v4_options(addr: SocketAddr, client_id: &str) -> rumqttc::MqttOptions {
    let mut opts = rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts
}

/// 5.0 options for `addr` with `client_id` (keep-alive 30 s, clean start).
pub fn v5_options(addr: SocketAddr, client_id: &str) -> rumqttc::v5::MqttOptions {
    let mut opts = rumqttc::v5::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    opts
}

/// One event of a 3.1.1 client's event loop.
pub type V4Event = Result<rumqttc::Event, rumqttc::ConnectionError>;

/// A connected rumqttc 3.1.1 client whose event loop runs on its own task.
pub struct V4Client {
    /// The request handle (publish, subscribe, ack, disconnect).
    pub client: rumqttc::AsyncClient,
    events: mpsc::UnboundedReceiver<V4Event>,
    task: JoinHandle<()>,
    pending: VecDeque<rumqttc::Publish>,
}

impl Drop for V4Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl V4Client {
    /// Connects and returns the CONNACK, or the connection error (e.g. a
    /// refusing CONNACK) if the broker does not accept.
    pub async fn try_connect(
        opts: rumqttc::MqttOptions,
    ) -> Result<(V4Client, rumqttc::ConnAck), rumqttc::ConnectionError> {
        let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, CAP);
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let event = eventloop.poll().await;
                let failed = event.is_err();
                if tx.send(event).is_err() || failed {
                    break;
                }
            }
        });
        let mut c = V4Client {
            client,
            events,
            task,
            pending: VecDeque::new(),
        };
        loop {
            match c.next_event("CONNACK").await? {
                rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)) => return Ok((c, ack)),
                _ => continue,
            }
        }
    }

    /// Connects; panics unless the broker accepts.
    pub async fn connect(opts: rumqttc::MqttOptions) -> (V4Client, rumqttc::ConnAck) {
        match V4Client::try_connect(opts).await {
            Ok(ok) => ok,
            Err(e) => panic!("MQTT 3.1.1 connect failed: {e:?}"),
        }
    }

    /// The next event of the event loop (bounded by [`crate::TIMEOUT`]).
    pub async fn next_event(&mut self, what: &str) -> V4Event {
        match within(what, self.events.recv()).await {
            Some(event) => event,
            None => panic!("event loop ended while waiting for {what}"),
        }
    }

    /// Waits for the first incoming packet for which `pick` returns `Some`;
    /// publishes passed over are kept for [`V4Client::next_publish`].
    /// Panics on a connection error.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&rumqttc::Packet) -> Option<T>,
    ) -> T {
        loop {
            match self.next_event(what).await {
                Ok(rumqttc::Event::Incoming(packet)) => {
                    if let Some(found) = pick(&packet) {
                        return found;
                    }
                    if let rumqttc::Packet::Publish(p) = packet {
                        self.pending.push_back(p);
                    }
                }
                Ok(rumqttc::Event::Outgoing(_)) => {}
                Err(e) => panic!("connection failed while waiting for {what}: {e:?}"),
            }
        }
    }

    /// The next PUBLISH from the broker.
    pub async fn next_publish(&mut self) -> rumqttc::Publish {
        if let Some(p) = self.pending.pop_front() {
            return p;
        }
        self.wait_for("a PUBLISH", |p| match p {
            rumqttc::Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Asserts that no PUBLISH arrives for `quiet` (absence cannot be
    /// awaited: call this after everything expected has arrived).
    pub async fn assert_no_publish(&mut self, quiet: Duration) {
        if let Some(p) = self.pending.pop_front() {
            panic!("unexpected PUBLISH on {:?}", p.topic);
        }
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            match event {
                Some(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) => {
                    panic!("unexpected PUBLISH on {:?}: {:?}", p.topic, p.payload)
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection failed: {e:?}"),
                None => panic!("event loop ended"),
            }
        }
    }

    /// SUBSCRIBE to several filters in one packet; returns the SUBACK codes.
    pub async fn subscribe_many(
        &mut self,
        filters: &[(&str, rumqttc::QoS)],
    ) -> Vec<rumqttc::SubscribeReasonCode> {
        let filters = filters
            .iter()
            .map(|(f, q)| rumqttc::SubscribeFilter::new((*f).to_string(), *q));
        within("subscribe request", self.client.subscribe_many(filters))
            .await
            .expect("subscribe");
        self.wait_for("SUBACK", |p| match p {
            rumqttc::Packet::SubAck(a) => Some(a.return_codes.clone()),
            _ => None,
        })
        .await
    }

    /// SUBSCRIBE to one filter; panics unless it is granted. Returns the
    /// granted QoS.
    pub async fn subscribe(&mut self, filter: &str, qos: rumqttc::QoS) -> rumqttc::QoS {
        match self.subscribe_many(&[(filter, qos)]).await.as_slice() {
            [rumqttc::SubscribeReasonCode::Success(granted)] => *granted,
            other => panic!("SUBSCRIBE {filter} refused: {other:?}"),
        }
    }

    /// UNSUBSCRIBE and wait for the UNSUBACK.
    pub async fn unsubscribe(&mut self, filter: &str) {
        within("unsubscribe request", self.client.unsubscribe(filter))
            .await
            .expect("unsubscribe");
        self.wait_for("UNSUBACK", |p| {
            matches!(p, rumqttc::Packet::UnsubAck(_)).then_some(())
        })
        .await;
    }

    /// PUBLISH; for QoS 1 waits for the PUBACK, for QoS 2 for the PUBCOMP.
    pub async fn publish(
        &mut self,
        topic: &str,
        qos: rumqttc::QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) {
        within(
            "publish request",
            self.client.publish(topic, qos, retain, payload.into()),
        )
        .await
        .expect("publish");
        match qos {
            rumqttc::QoS::AtMostOnce => {}
            rumqttc::QoS::AtLeastOnce => {
                self.wait_for("PUBACK", |p| {
                    matches!(p, rumqttc::Packet::PubAck(_)).then_some(())
                })
                .await
            }
            rumqttc::QoS::ExactlyOnce => {
                self.wait_for("PUBCOMP", |p| {
                    matches!(p, rumqttc::Packet::PubComp(_)).then_some(())
                })
                .await
            }
        }
    }

    /// Waits until the connection ends and returns why; publishes that
    /// arrive before are kept.
    pub async fn closed(&mut self) -> rumqttc::ConnectionError {
        loop {
            match self.next_event("the connection to close").await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    self.pending.push_back(p)
                }
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    }

    /// Sends DISCONNECT and waits for the broker to close the connection.
    pub async fn disconnect(mut self) {
        within("disconnect request", self.client.disconnect())
            .await
            .expect("disconnect");
        self.closed().await;
    }
}

/// One event of a 5.0 client's event loop.
pub type V5Event = Result<rumqttc::v5::Event, rumqttc::v5::ConnectionError>;

pub use rumqttc::v5::mqttbytes::QoS as V5QoS;
pub use rumqttc::v5::mqttbytes::v5 as v5p;

/// A connected rumqttc 5.0 client whose event loop runs on its own task.
pub struct V5Client {
    /// The request handle (publish, subscribe, ack, disconnect).
    pub client: rumqttc::v5::AsyncClient,
    events: mpsc::UnboundedReceiver<V5Event>,
    task: JoinHandle<()>,
    pending: VecDeque<v5p::Publish>,
}

impl Drop for V5Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl V5Client {
    /// Connects and returns the CONNACK, or the connection error (e.g. a
    /// refusing CONNACK) if the broker does not accept.
    pub async fn try_connect(
        opts: rumqttc::v5::MqttOptions,
    ) -> Result<(V5Client, v5p::ConnAck), rumqttc::v5::ConnectionError> {
        let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(opts, CAP);
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let event = eventloop.poll().await;
                let failed = event.is_err();
                if tx.send(event).is_err() || failed {
                    break;
                }
            }
        });
        let mut c = V5Client {
            client,
            events,
            task,
            pending: VecDeque::new(),
        };
        loop {
            match c.next_event("CONNACK").await? {
                rumqttc::v5::Event::Incoming(v5p::Packet::ConnAck(ack)) => return Ok((c, ack)),
                _ => continue,
            }
        }
    }

    /// Connects; panics unless the broker accepts.
    pub async fn connect(opts: rumqttc::v5::MqttOptions) -> (V5Client, v5p::ConnAck) {
        match V5Client::try_connect(opts).await {
            Ok(ok) => ok,
            Err(e) => panic!("MQTT 5.0 connect failed: {e:?}"),
        }
    }

    /// The next event of the event loop (bounded by [`crate::TIMEOUT`]).
    pub async fn next_event(&mut self, what: &str) -> V5Event {
        match within(what, self.events.recv()).await {
            Some(event) => event,
            None => panic!("event loop ended while waiting for {what}"),
        }
    }

    /// Waits for the first incoming packet for which `pick` returns `Some`;
    /// publishes passed over are kept for [`V5Client::next_publish`].
    /// Panics on a connection error.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&v5p::Packet) -> Option<T>,
    ) -> T {
        loop {
            match self.next_event(what).await {
                Ok(rumqttc::v5::Event::Incoming(packet)) => {
                    if let Some(found) = pick(&packet) {
                        return found;
                    }
                    if let v5p::Packet::Publish(p) = packet {
                        self.pending.push_back(p);
                    }
                }
                Ok(rumqttc::v5::Event::Outgoing(_)) => {}
                Err(e) => panic!("connection failed while waiting for {what}: {e:?}"),
            }
        }
    }

    /// The next PUBLISH from the broker.
    pub async fn next_publish(&mut self) -> v5p::Publish {
        if let Some(p) = self.pending.pop_front() {
            return p;
        }
        self.wait_for("a PUBLISH", |p| match p {
            v5p::Packet::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .await
    }

    /// Asserts that no PUBLISH arrives for `quiet` (absence cannot be
    /// awaited: call this after everything expected has arrived).
    pub async fn assert_no_publish(&mut self, quiet: Duration) {
        if let Some(p) = self.pending.pop_front() {
            panic!("unexpected PUBLISH on {:?}", p.topic);
        }
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            match event {
                Some(Ok(rumqttc::v5::Event::Incoming(v5p::Packet::Publish(p)))) => {
                    panic!("unexpected PUBLISH on {:?}: {:?}", p.topic, p.payload)
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection failed: {e:?}"),
                None => panic!("event loop ended"),
            }
        }
    }

    /// SUBSCRIBE with full options and properties; returns the SUBACK codes.
    pub async fn subscribe_with(
        &mut self,
        filters: Vec<v5p::Filter>,
        properties: Option<v5p::SubscribeProperties>,
    ) -> Vec<v5p::SubscribeReasonCode> {
        let request = match properties {
            Some(props) => {
                self.client
                    .subscribe_many_with_properties(filters, props)
                    .await
            }
            None => self.client.subscribe_many(filters).await,
        };
        request.expect("subscribe");
        self.wait_for("SUBACK", |p| match p {
            v5p::Packet::SubAck(a) => Some(a.return_codes.clone()),
            _ => None,
        })
        .await
    }

    /// SUBSCRIBE to one filter; panics unless it is granted. Returns the
    /// granted QoS.
    pub async fn subscribe(&mut self, filter: &str, qos: V5QoS) -> V5QoS {
        let codes = self
            .subscribe_with(vec![v5p::Filter::new(filter, qos)], None)
            .await;
        match codes.as_slice() {
            [v5p::SubscribeReasonCode::Success(granted)] => *granted,
            other => panic!("SUBSCRIBE {filter} refused: {other:?}"),
        }
    }

    /// UNSUBSCRIBE and return the UNSUBACK reasons.
    pub async fn unsubscribe(&mut self, filter: &str) -> Vec<v5p::UnsubAckReason> {
        within("unsubscribe request", self.client.unsubscribe(filter))
            .await
            .expect("unsubscribe");
        self.wait_for("UNSUBACK", |p| match p {
            v5p::Packet::UnsubAck(a) => Some(a.reasons.clone()),
            _ => None,
        })
        .await
    }

    /// PUBLISH with properties; for QoS 1 waits for the PUBACK, for QoS 2
    /// for the PUBCOMP.
    pub async fn publish_with(
        &mut self,
        topic: &str,
        qos: V5QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
        properties: v5p::PublishProperties,
    ) {
        within(
            "publish request",
            self.client
                .publish_with_properties(topic, qos, retain, payload.into(), properties),
        )
        .await
        .expect("publish");
        self.wait_ack(qos).await;
    }

    /// PUBLISH without properties; waits as [`V5Client::publish_with`].
    pub async fn publish(
        &mut self,
        topic: &str,
        qos: V5QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) {
        within(
            "publish request",
            self.client.publish(topic, qos, retain, payload.into()),
        )
        .await
        .expect("publish");
        self.wait_ack(qos).await;
    }

    async fn wait_ack(&mut self, qos: V5QoS) {
        match qos {
            V5QoS::AtMostOnce => {}
            V5QoS::AtLeastOnce => {
                self.wait_for("PUBACK", |p| {
                    matches!(p, v5p::Packet::PubAck(_)).then_some(())
                })
                .await
            }
            V5QoS::ExactlyOnce => {
                self.wait_for("PUBCOMP", |p| {
                    matches!(p, v5p::Packet::PubComp(_)).then_some(())
                })
                .await
            }
        }
    }

    /// Waits until the connection ends and returns why; publishes that
    /// arrive before are kept.
    pub async fn closed(&mut self) -> rumqttc::v5::ConnectionError {
        loop {
            match self.next_event("the connection to close").await {
                Ok(rumqttc::v5::Event::Incoming(v5p::Packet::Publish(p))) => {
                    self.pending.push_back(p)
                }
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    }

    /// Sends DISCONNECT and waits for the broker to close the connection.
    pub async fn disconnect(mut self) {
        within("disconnect request", self.client.disconnect())
            .await
            .expect("disconnect");
        self.closed().await;
    }
}

/// A raw TCP connection that speaks MQTT packets through `protocol-mqtt`.
pub struct RawMqtt {
    stream: TcpStream,
    buf: BytesMut,
    /// Version used to encode and decode packets.
    pub version: ProtocolVersion,
}

impl RawMqtt {
    /// Opens a TCP connection; sends nothing yet.
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> anyhow::Result<RawMqtt> {
        let stream = within("raw MQTT connect", TcpStream::connect(addr))
            .await
            .with_context(|| format!("connect to {addr}"))?;
        Ok(RawMqtt {
            stream,
            buf: BytesMut::with_capacity(4096),
            version,
        })
    }

    /// Opens a connection, sends `connect` and returns the broker's answer.
    pub async fn connect(addr: SocketAddr, connect: Connect) -> anyhow::Result<(RawMqtt, Packet)> {
        let mut raw = RawMqtt::open(addr, connect.version).await?;
        raw.send(&Packet::Connect(connect)).await?;
        let answer = raw
            .recv()
            .await?
            .context("broker closed the connection instead of answering CONNECT")?;
        Ok((raw, answer))
    }

    /// Writes raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await.context("write")
    }

    /// Encodes and writes one packet.
    pub async fn send(&mut self, packet: &Packet) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        protocol_mqtt::encode(packet, self.version, &mut out).context("encode")?;
        self.send_bytes(&out).await
    }

    /// The next packet, or `None` when the broker closed the connection
    /// between packets (or reset it).
    pub async fn recv(&mut self) -> anyhow::Result<Option<Packet>> {
        within("a packet from the broker", async {
            loop {
                if let Some(p) = protocol_mqtt::decode(
                    &mut self.buf,
                    Some(self.version),
                    protocol_mqtt::MAX_PACKET_SIZE,
                )
                .context("decode")?
                {
                    return Ok(Some(p));
                }
                let n = match self.stream.read_buf(&mut self.buf).await {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                    Err(e) => return Err(e).context("read"),
                };
                if n == 0 {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    bail!("connection closed inside a packet");
                }
            }
        })
        .await
    }

    /// SUBSCRIBE `filters` (filter, QoS) in one packet (id 1) and wait for the SUBACK, which
    /// must grant each the QoS asked for.
    pub async fn subscribe(
        &mut self,
        filters: &[(&str, protocol_mqtt::QoS)],
    ) -> anyhow::Result<()> {
        let filters = filters
            .iter()
            .map(|(filter, qos)| {
                Ok(protocol_mqtt::Subscription {
                    filter: protocol_mqtt::TopicFilter::new(*filter).context("filter")?,
                    options: protocol_mqtt::SubscriptionOptions::qos(*qos),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let wanted: Vec<u8> = filters.iter().map(|f| f.options.qos.as_u8()).collect();
        self.send(&Packet::Subscribe(protocol_mqtt::Subscribe {
            packet_id: protocol_mqtt::PacketId::new(1).context("packet id")?,
            properties: protocol_mqtt::SubscribeProperties::default(),
            filters,
        }))
        .await?;
        match self.recv().await? {
            Some(Packet::SubAck(a)) => {
                let granted: Vec<u8> = a.reason_codes.iter().map(|c| c.0).collect();
                anyhow::ensure!(
                    granted == wanted,
                    "SUBACK granted {granted:?}, asked {wanted:?}"
                );
                Ok(())
            }
            other => bail!("expected SUBACK, got {other:?}"),
        }
    }

    /// Reads until the broker closes the connection; returns the packets it
    /// sent before.
    pub async fn until_closed(&mut self) -> anyhow::Result<Vec<Packet>> {
        let mut packets = Vec::new();
        while let Some(p) = self.recv().await? {
            packets.push(p);
        }
        Ok(packets)
    }
}
