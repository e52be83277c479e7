//! `loadgen amqp`: producers publish to the default exchange with a queue
//! name as routing key; consumers of the same queue compete.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use protocol_amqp::{BasicAck, ConnectionClose, Method, ShortStr, encode_method};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, watch};

use super::consumer::{count_received, read_or_stop, stop_consumers};
use super::producer::{self, Publisher, Window, join_producers, read_more, settle};
use super::{Counters, Group, Outcome, Plan, ProducerResult, run_id, spawn_progress, wait_drained};
use crate::amqp::{AmqpConn, CHANNEL, Incoming, Login, PublishTemplate, next_incoming};
use crate::cli::{AckMode, AmqpOpts};
use crate::error::{Error, Result, io};
use crate::report::Report;
use crate::stamp::{Stamp, now_ns};
use crate::verify::Tracker;

fn describe(o: &AmqpOpts) -> String {
    let c = &o.common;
    let mut s = format!(
        "amqp producers={} consumers={} queues={} size={} {}",
        c.producers,
        c.consumers,
        o.queues,
        c.size,
        if o.persistent {
            "persistent"
        } else {
            "transient"
        }
    );
    if let Some(w) = o.confirm {
        s += &format!(" confirm={w}");
    }
    s += &format!(
        " ack={} prefetch={}",
        if o.ack == AckMode::Auto {
            "auto"
        } else {
            "manual"
        },
        o.prefetch
    );
    match c.count {
        Some(n) => s += &format!(" count={n}"),
        None => s += &format!(" duration={}s", c.duration),
    }
    if let Some(r) = c.rate {
        s += &format!(" rate={r}/s");
    }
    if let Some(e) = c.expect {
        s += &format!(" expect={e}");
    }
    s
}

/// Runs the scenario and reports.
pub async fn run(opts: &AmqpOpts) -> Result<Report> {
    let c = &opts.common;
    if opts.queues == 0 || (c.producers == 0 && c.consumers == 0) {
        return Err(Error::Options(
            "need at least one queue and one producer or consumer".into(),
        ));
    }
    if c.expect.is_some() && c.producers > 0 {
        return Err(Error::Options(
            "--expect is for consumers-only runs (--producers 0)".into(),
        ));
    }
    let run = run_id();
    let login = Login {
        user: opts.user.clone(),
        password: opts.password.clone(),
        vhost: opts.vhost.clone(),
    };
    let names: Vec<String> = (0..opts.queues)
        .map(|q| match &opts.queue_prefix {
            Some(p) => format!("{p}-{q}"),
            None => format!("loadgen-{run:08x}-{q}"),
        })
        .collect();
    let mut setup = AmqpConn::connect(&opts.addr, &login).await?;
    for name in &names {
        setup.declare_queue(name, opts.persistent).await?;
    }

    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut consumers = Vec::new();
    let accept = if c.producers == 0 { None } else { Some(run) };
    for i in 0..c.consumers {
        let mut conn = AmqpConn::connect(&opts.addr, &login).await?;
        let no_ack = opts.ack == AckMode::Auto;
        conn.consume(&names[(i % opts.queues) as usize], opts.prefetch, no_ack)
            .await?;
        consumers.push(tokio::spawn(consume(
            conn,
            !no_ack,
            accept,
            counters.clone(),
            stop_rx.clone(),
        )));
    }
    let mut producers = Vec::new();
    for id in 0..c.producers {
        let mut conn = AmqpConn::connect(&opts.addr, &login).await?;
        if opts.confirm.is_some() {
            conn.confirm_select().await?;
        }
        let template = PublishTemplate::new(
            &names[(id % opts.queues) as usize],
            c.size,
            opts.persistent,
            conn.frame_max,
        )?;
        producers.push((id, conn, template));
    }

    let progress = spawn_progress(counters.clone(), c.quiet);
    let start = Instant::now();
    let plan = Plan::new(c);
    let tasks: Vec<_> = producers
        .into_iter()
        .map(|(id, conn, template)| {
            tokio::spawn(produce(
                id,
                conn,
                template,
                plan,
                run,
                opts.confirm,
                counters.clone(),
            ))
        })
        .collect();
    let results = join_producers(tasks).await?;
    let groups: Vec<Group> = (0..opts.queues)
        .map(|q| Group {
            consumers: (0..c.consumers)
                .filter(|i| i % opts.queues == q)
                .map(|i| i as usize)
                .collect(),
            producers: (0..c.producers).filter(|p| p % opts.queues == q).collect(),
        })
        .filter(|g| !g.consumers.is_empty())
        .collect();
    if c.consumers > 0 {
        let expected = c.expect.or_else(|| {
            Some(
                groups
                    .iter()
                    .flat_map(|g| &g.producers)
                    .map(|id| results.iter().find(|r| r.id == *id).map_or(0, |r| r.sent))
                    .sum(),
            )
        });
        wait_drained(
            &counters,
            expected,
            Duration::from_secs_f64(c.drain_timeout),
            Duration::from_secs_f64(c.drain_max),
        )
        .await;
    }
    let trackers = stop_consumers(stop_tx, consumers, progress).await?;
    if opts.queue_prefix.is_none() {
        for name in &names {
            setup.delete_queue(name).await?;
        }
    }
    Ok(Outcome {
        scenario: describe(opts),
        start,
        producers: results,
        confirms: opts.confirm.is_some(),
        trackers,
        groups,
        expect: c.expect,
    }
    .report())
}

/// How long a producer waits for the broker to answer its close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts confirms exactly, whether they come one by one or cumulative.
#[derive(Debug, Default)]
struct ConfirmCount {
    /// Every tag up to here is confirmed.
    upto: u64,
    /// Tags above `upto` confirmed singly.
    single: BTreeSet<u64>,
}

impl ConfirmCount {
    /// Applies an ack/nack; returns how many messages it newly settles.
    fn settle(&mut self, tag: u64, multiple: bool) -> u64 {
        let mut n = 0;
        if multiple {
            if tag > self.upto {
                let above = self.single.split_off(&(tag + 1));
                n = tag - self.upto - self.single.len() as u64;
                self.single = above;
                self.upto = tag;
            }
        } else if tag > self.upto && self.single.insert(tag) {
            n = 1;
        }
        while self.single.remove(&(self.upto + 1)) {
            self.upto += 1;
        }
        n
    }
}

/// An AMQP producer for the send loop: the publish template over the
/// connection's write half.
struct AmqpPublisher {
    writer: OwnedWriteHalf,
    template: PublishTemplate,
}

impl Publisher for AmqpPublisher {
    fn message_len(&self) -> usize {
        self.template.len()
    }

    fn append(&mut self, out: &mut BytesMut, stamp: &Stamp) {
        self.template.append(out, stamp);
    }

    async fn write(&mut self, out: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(out).await
    }
}

async fn produce(
    id: u32,
    conn: AmqpConn,
    template: PublishTemplate,
    plan: Plan,
    run: u32,
    window: Option<u32>,
    counters: Arc<Counters>,
) -> Result<ProducerResult> {
    let (reader, buf, writer) = conn.into_split();
    let permits = Arc::new(Semaphore::new(window.unwrap_or(0) as usize));
    let settled = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let mut confirms = tokio::spawn(read_confirms(
        reader,
        buf,
        permits.clone(),
        settled.clone(),
        counters.clone(),
    ));
    let mut publisher = AmqpPublisher { writer, template };
    let window = window.map(|size| Window {
        permits: &permits,
        size,
        settled_by: "confirms",
    });
    let (sent, end) = producer::produce(
        &mut publisher,
        id,
        run,
        plan,
        window,
        &counters,
        &mut confirms,
    )
    .await?;
    // Close and wait for close-ok: the broker has then taken every publish
    // (dropping the socket right away can make a broker discard the tail).
    close(&mut publisher.writer).await;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, confirms).await;
    Ok(ProducerResult {
        id,
        sent,
        confirmed: settled[0].load(Ordering::Relaxed),
        nacked: settled[1].load(Ordering::Relaxed),
        end,
    })
}

/// Sends connection.close without waiting for close-ok.
async fn close(writer: &mut OwnedWriteHalf) {
    let mut out = BytesMut::new();
    let close = ConnectionClose {
        reply_code: 200,
        reply_text: ShortStr::from_static("bye"),
        class_id: 0,
        method_id: 0,
    };
    encode_method(0, &close.into(), &mut out);
    let _ = writer.write_all(&out).await;
}

/// The producer's read side: confirms release window permits. Closes the
/// semaphore when the connection ends, so the producer stops waiting.
async fn read_confirms(
    mut reader: OwnedReadHalf,
    mut buf: BytesMut,
    permits: Arc<Semaphore>,
    settled: Arc<[AtomicU64; 2]>,
    counters: Arc<Counters>,
) -> Result<()> {
    let mut count = ConfirmCount::default();
    let result = async {
        loop {
            while let Some(incoming) = next_incoming(&mut buf)? {
                let Incoming::Method(m) = incoming else {
                    continue;
                };
                let (n, slot) = match m {
                    Method::BasicAck(a) => (count.settle(a.delivery_tag, a.multiple), 0),
                    Method::BasicNack(a) => (count.settle(a.delivery_tag, a.multiple), 1),
                    Method::ConnectionClose(c) => {
                        return Err(Error::Closed(format!(
                            "connection.close {} {}",
                            c.reply_code, c.reply_text
                        )));
                    }
                    Method::ChannelClose(c) => {
                        return Err(Error::Closed(format!(
                            "channel.close {} {}",
                            c.reply_code, c.reply_text
                        )));
                    }
                    Method::ConnectionCloseOk(_) => return Ok(()),
                    _ => continue,
                };
                settle(n, &settled[slot], &counters, &permits);
            }
            read_more(&mut reader, &mut buf).await?;
        }
    }
    .await;
    permits.close();
    result
}

async fn consume(
    conn: AmqpConn,
    manual_ack: bool,
    run: Option<u32>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> Result<Tracker> {
    let (mut reader, mut buf, mut writer) = conn.into_split();
    let mut t = Tracker::new(run);
    let mut out = BytesMut::new();
    let (mut last_tag, mut acked) = (0u64, 0u64);
    let mut body_size = 0u64;
    let mut want_body = false;
    loop {
        let now = now_ns();
        let before = t.received;
        while let Some(incoming) = next_incoming(&mut buf)? {
            match incoming {
                Incoming::Deliver { tag } => {
                    last_tag = tag;
                    want_body = true;
                }
                Incoming::Header { body_size: n } => {
                    body_size = n;
                    if n == 0 && want_body {
                        t.record(&[], now);
                        want_body = false;
                    }
                }
                Incoming::Body(b) if want_body => {
                    t.record(&b, now);
                    t.bytes += body_size.saturating_sub(b.len() as u64);
                    want_body = false;
                }
                Incoming::Method(Method::ConnectionClose(c)) => {
                    return Err(Error::Closed(format!("{} {}", c.reply_code, c.reply_text)));
                }
                Incoming::Method(Method::ChannelClose(c)) => {
                    return Err(Error::Closed(format!("{} {}", c.reply_code, c.reply_text)));
                }
                Incoming::Method(Method::BasicCancel(_)) => {
                    return Err(Error::Closed("the broker cancelled the consumer".into()));
                }
                _ => {}
            }
        }
        count_received(&mut t, before, &counters);
        if manual_ack && last_tag > acked {
            let ack = BasicAck {
                delivery_tag: last_tag,
                multiple: true,
            };
            encode_method(CHANNEL, &ack.into(), &mut out);
            writer.write_all(&out).await.map_err(io("ack"))?;
            out.clear();
            acked = last_tag;
        }
        if !read_or_stop(&mut reader, &mut buf, &mut stop, "read deliveries").await? {
            break;
        }
    }
    close(&mut writer).await;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::ConfirmCount;

    #[test]
    fn confirm_count_mixes_single_and_multiple() {
        let mut c = ConfirmCount::default();
        assert_eq!(c.settle(2, false), 1);
        assert_eq!(c.settle(2, false), 0);
        assert_eq!(c.settle(4, true), 3); // 1, 3, 4
        assert_eq!(c.settle(3, true), 0);
        assert_eq!(c.settle(5, false), 1);
        assert_eq!((c.upto, c.single.len()), (5, 0));
        assert_eq!(c.settle(7, false), 1);
        assert_eq!(c.settle(8, true), 2); // 6, 8
    }
}
