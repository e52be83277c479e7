//! `loadgen mqtt`: publisher i publishes to `PREFIX/RUN/i`; subscribers
//! subscribe to `PREFIX/RUN/+` (each gets everything: fan-out) or to
//! `$share/GROUP/PREFIX/RUN/+` (they compete).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use protocol_mqtt::{Packet, ProtocolVersion, QoS};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, Semaphore, watch};

use super::consumer::{count_received, read_or_stop, stop_consumers};
use super::producer::{self, Publisher, Window, join_producers, read_more, settle};
use super::{Counters, Group, Outcome, Plan, ProducerResult, run_id, spawn_progress, wait_drained};
use crate::cli::{MqttOpts, MqttVersion};
use crate::error::{Error, Result, io};
use crate::mqtt::{ConnectOpts, Incoming, MqttConn, PublishTemplate, ack, next_incoming, put_ack};
use crate::report::Report;
use crate::stamp::{Stamp, now_ns};
use crate::verify::Tracker;

/// DISCONNECT, normal, in the form both versions accept.
const DISCONNECT: [u8; 2] = [0xE0, 0x00];

fn describe(o: &MqttOpts) -> String {
    let c = &o.common;
    let mut s = format!(
        "mqtt v{} publishers={} subscribers={} qos={} size={}",
        if o.mqtt_version == MqttVersion::V5 {
            "5"
        } else {
            "3.1.1"
        },
        c.producers,
        c.consumers,
        o.qos,
        c.size
    );
    if o.qos > 0 {
        s += &format!(" inflight={}", o.inflight);
    }
    if let Some(g) = &o.shared {
        s += &format!(" shared={g}");
    }
    if o.persistent_session {
        s += " persistent-session";
    }
    match c.count {
        Some(n) => s += &format!(" count={n}"),
        None => s += &format!(" duration={}s", c.duration),
    }
    if let Some(r) = c.rate {
        s += &format!(" rate={r}/s");
    }
    s
}

/// Runs the scenario and reports.
pub async fn run(opts: &MqttOpts) -> Result<Report> {
    let c = &opts.common;
    if c.producers == 0 && c.consumers == 0 {
        return Err(Error::Options("need a publisher or a subscriber".into()));
    }
    let qos = QoS::from_u8(opts.qos).ok_or_else(|| Error::Options("QoS is 0, 1 or 2".into()))?;
    let version = match opts.mqtt_version {
        MqttVersion::V311 => ProtocolVersion::V311,
        MqttVersion::V5 => ProtocolVersion::V5,
    };
    let run = run_id();
    let base = format!("{}/{run:08x}", opts.topic_prefix);
    let filter = if c.producers == 0 {
        format!("{}/#", opts.topic_prefix)
    } else {
        format!("{base}/+")
    };
    let filter = match &opts.shared {
        Some(g) => format!("$share/{g}/{filter}"),
        None => filter,
    };
    let connect = |client_id: String, clean: bool| ConnectOpts {
        version,
        client_id,
        clean,
        user: opts.user.clone(),
        password: opts.password.clone(),
    };

    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let accept = if c.producers == 0 { None } else { Some(run) };
    let mut subscribers = Vec::new();
    for i in 0..c.consumers {
        let id = if opts.persistent_session {
            format!("loadgen-sub-{i}")
        } else {
            format!("loadgen-{run:08x}-sub-{i}")
        };
        let mut conn =
            MqttConn::connect(&opts.addr, &connect(id, !opts.persistent_session)).await?;
        conn.subscribe(&filter, qos).await?;
        subscribers.push(tokio::spawn(subscribe(
            conn,
            accept,
            counters.clone(),
            stop_rx.clone(),
        )));
    }
    let mut publishers = Vec::new();
    for id in 0..c.producers {
        let conn = MqttConn::connect(
            &opts.addr,
            &connect(format!("loadgen-{run:08x}-pub-{id}"), true),
        )
        .await?;
        let template = PublishTemplate::new(&format!("{base}/{id}"), qos, c.size, version)?;
        publishers.push((id, conn, template));
    }

    let progress = spawn_progress(counters.clone(), c.quiet);
    let start = Instant::now();
    let plan = Plan::new(c);
    let window = (qos != QoS::AtMostOnce).then_some(opts.inflight.max(1));
    let tasks: Vec<_> = publishers
        .into_iter()
        .map(|(id, conn, template)| {
            tokio::spawn(publish(
                id,
                conn,
                template,
                plan,
                run,
                window,
                counters.clone(),
            ))
        })
        .collect();
    let results = join_producers(tasks).await?;
    let all: Vec<u32> = (0..c.producers).collect();
    let groups: Vec<Group> = if opts.shared.is_some() {
        vec![Group {
            consumers: (0..c.consumers as usize).collect(),
            producers: all,
        }]
    } else {
        (0..c.consumers as usize)
            .map(|i| Group {
                consumers: vec![i],
                producers: all.clone(),
            })
            .collect()
    };
    if c.consumers > 0 {
        let sent: u64 = results.iter().map(|r| r.sent).sum();
        let expected = c
            .expect
            .or(Some(sent * groups.len() as u64))
            .filter(|_| c.producers > 0 || c.expect.is_some());
        wait_drained(
            &counters,
            expected,
            Duration::from_secs_f64(c.drain_timeout),
            Duration::from_secs_f64(c.drain_max),
        )
        .await;
    }
    let trackers = stop_consumers(stop_tx, subscribers, progress).await?;
    let groups = if c.consumers == 0 { Vec::new() } else { groups };
    Ok(Outcome {
        scenario: describe(opts),
        start,
        producers: results,
        confirms: window.is_some(),
        trackers,
        groups,
        expect: c.expect,
    }
    .report())
}

/// An MQTT publisher for the send loop: the publish template over the
/// write half it shares with its ack reader (which writes PUBRELs).
struct MqttPublisher {
    writer: Arc<Mutex<OwnedWriteHalf>>,
    template: PublishTemplate,
    /// QoS 1/2: each message takes the next packet id.
    numbered: bool,
    packet_id: u16,
}

impl Publisher for MqttPublisher {
    fn message_len(&self) -> usize {
        self.template.len()
    }

    fn append(&mut self, out: &mut BytesMut, stamp: &Stamp) {
        if self.numbered {
            // Ids cycle through 1..=65535; at most `window` are in use.
            self.packet_id = self.packet_id.checked_add(1).unwrap_or(1);
        }
        self.template.append(out, self.packet_id, stamp);
    }

    async fn write(&mut self, out: &[u8]) -> std::io::Result<()> {
        self.writer.lock().await.write_all(out).await
    }
}

async fn publish(
    id: u32,
    conn: MqttConn,
    template: PublishTemplate,
    plan: Plan,
    run: u32,
    window: Option<u16>,
    counters: Arc<Counters>,
) -> Result<ProducerResult> {
    let version = conn.version;
    let (reader, buf, writer) = conn.into_split();
    let writer = Arc::new(Mutex::new(writer));
    let permits = Arc::new(Semaphore::new(usize::from(window.unwrap_or(0))));
    let acked = Arc::new(AtomicU64::new(0));
    let mut acks = tokio::spawn(read_acks(
        reader,
        buf,
        version,
        writer.clone(),
        permits.clone(),
        acked.clone(),
        counters.clone(),
    ));
    let mut publisher = MqttPublisher {
        writer,
        template,
        numbered: window.is_some(),
        packet_id: 0,
    };
    let window = window.map(|size| Window {
        permits: &permits,
        size: u32::from(size),
        settled_by: "acks",
    });
    let (sent, end) =
        producer::produce(&mut publisher, id, run, plan, window, &counters, &mut acks).await?;
    // DISCONNECT, then wait for the broker to close the socket: it has then
    // read every publish.
    let _ = publisher.writer.lock().await.write_all(&DISCONNECT).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), acks).await;
    Ok(ProducerResult {
        id,
        sent,
        confirmed: acked.load(Ordering::Relaxed),
        nacked: 0,
        end,
    })
}

/// The publisher's read side: PUBACK / PUBCOMP release window permits,
/// PUBREC is answered with PUBREL.
async fn read_acks(
    mut reader: OwnedReadHalf,
    mut buf: BytesMut,
    version: ProtocolVersion,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    permits: Arc<Semaphore>,
    acked: Arc<AtomicU64>,
    counters: Arc<Counters>,
) -> Result<()> {
    let mut out = BytesMut::new();
    let result = async {
        loop {
            let mut n = 0u64;
            while let Some(incoming) = next_incoming(&mut buf, version)? {
                match incoming {
                    Incoming::PubAck(_) | Incoming::PubComp(_) => n += 1,
                    Incoming::PubRec(id) => put_ack(&mut out, ack::PUBREL, id),
                    Incoming::Other(p) => {
                        if let Packet::Disconnect(d) = *p {
                            return Err(Error::Closed(format!("DISCONNECT {}", d.reason)));
                        }
                    }
                    _ => {}
                }
            }
            if !out.is_empty() {
                writer
                    .lock()
                    .await
                    .write_all(&out)
                    .await
                    .map_err(io("PUBREL"))?;
                out.clear();
            }
            if n > 0 {
                settle(n, &acked, &counters, &permits);
            }
            read_more(&mut reader, &mut buf).await?;
        }
    }
    .await;
    permits.close();
    result
}

async fn subscribe(
    conn: MqttConn,
    run: Option<u32>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> Result<Tracker> {
    let version = conn.version;
    let (mut reader, mut buf, mut writer) = conn.into_split();
    let mut t = Tracker::new(run);
    let mut out = BytesMut::new();
    loop {
        let now = now_ns();
        let before = t.received;
        while let Some(incoming) = next_incoming(&mut buf, version)? {
            match incoming {
                Incoming::Publish {
                    qos,
                    packet_id,
                    payload,
                } => {
                    t.record(&payload, now);
                    match qos {
                        1 => put_ack(&mut out, ack::PUBACK, packet_id),
                        2 => put_ack(&mut out, ack::PUBREC, packet_id),
                        _ => {}
                    }
                }
                Incoming::PubRel(id) => put_ack(&mut out, ack::PUBCOMP, id),
                Incoming::Other(p) => {
                    if let Packet::Disconnect(d) = *p {
                        return Err(Error::Closed(format!("DISCONNECT {}", d.reason)));
                    }
                }
                _ => {}
            }
        }
        count_received(&mut t, before, &counters);
        if !out.is_empty() {
            writer.write_all(&out).await.map_err(io("acks"))?;
            out.clear();
        }
        if !read_or_stop(&mut reader, &mut buf, &mut stop, "read messages").await? {
            break;
        }
    }
    let _ = writer.write_all(&DISCONNECT).await;
    Ok(t)
}
