//! The producer side both protocols share: the paced, windowed send loop
//! that batches messages into one buffer and flushes it, and collecting
//! the producers' results. A protocol plugs in through [`Publisher`]: how
//! to write a message into the buffer and how to write the buffer out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{Semaphore, TryAcquireError};
use tokio::task::JoinHandle;

use super::{Counters, FLUSH_AT, Next, Plan, ProducerResult, sleep_until_ns};
use crate::error::{Error, Result, io};
use crate::stamp::{Stamp, now_ns};

/// What the send loop needs from a protocol's producer.
pub(crate) trait Publisher {
    /// Bytes of one encoded message (to size the buffer).
    fn message_len(&self) -> usize;
    /// Appends one message carrying `stamp` to `out`; called once the
    /// message may go (paced and, with a window, a permit taken).
    fn append(&mut self, out: &mut BytesMut, stamp: &Stamp);
    /// Writes `out` to the socket.
    async fn write(&mut self, out: &[u8]) -> std::io::Result<()>;
}

/// The unsettled-message window of a producer: a permit per message in
/// flight, given back by the reader task as confirms (AMQP) or acks (MQTT)
/// arrive; the reader closes the semaphore when the connection ends.
pub(crate) struct Window<'a> {
    /// Permits; the semaphore starts with `size` of them.
    pub permits: &'a Semaphore,
    /// Messages allowed in flight.
    pub size: u32,
    /// What settles messages ("confirms", "acks"), for error messages.
    pub settled_by: &'static str,
}

/// Writes what `out` holds and counts the `pending` messages in it as sent.
async fn flush<P: Publisher>(
    publisher: &mut P,
    out: &mut BytesMut,
    pending: &mut u64,
    counters: &Counters,
) -> Result<()> {
    if !out.is_empty() {
        publisher.write(out).await.map_err(io("publish"))?;
        out.clear();
    }
    counters
        .sent
        .fetch_add(std::mem::take(pending), Ordering::Relaxed);
    Ok(())
}

/// Sends messages as `plan` says, stamped with `run` and producer `id`,
/// flushing every [`FLUSH_AT`] bytes and before any wait; with a window,
/// waits at the end until every message is settled. Returns how many
/// messages were sent.
async fn send_loop<P: Publisher>(
    publisher: &mut P,
    id: u32,
    run: u32,
    plan: Plan,
    window: Option<Window<'_>>,
    counters: &Counters,
) -> Result<u64> {
    let mut out = BytesMut::with_capacity(FLUSH_AT + publisher.message_len());
    let mut pending = 0;
    let mut seq = 0u64;
    loop {
        let mut now = now_ns();
        match plan.next(seq, now) {
            Next::Stop => break,
            Next::WaitUntil(t) => {
                flush(publisher, &mut out, &mut pending, counters).await?;
                sleep_until_ns(t).await;
                continue;
            }
            Next::Go => {}
        }
        if let Some(w) = &window {
            match w.permits.try_acquire() {
                Ok(p) => p.forget(),
                Err(TryAcquireError::NoPermits) => {
                    flush(publisher, &mut out, &mut pending, counters).await?;
                    w.permits
                        .acquire()
                        .await
                        .map_err(|_| Error::Closed(format!("while waiting for {}", w.settled_by)))?
                        .forget();
                    now = now_ns();
                }
                Err(TryAcquireError::Closed) => {
                    return Err(Error::Closed(format!("while waiting for {}", w.settled_by)));
                }
            }
        }
        let stamp = Stamp {
            run,
            producer: id,
            seq,
            sent_ns: now,
        };
        publisher.append(&mut out, &stamp);
        seq += 1;
        pending += 1;
        if out.len() >= FLUSH_AT {
            flush(publisher, &mut out, &mut pending, counters).await?;
        }
    }
    flush(publisher, &mut out, &mut pending, counters).await?;
    if let Some(w) = &window {
        w.permits
            .acquire_many(w.size)
            .await
            .map_err(|_| Error::Closed(format!("while waiting for the last {}", w.settled_by)))?
            .forget();
    }
    Ok(seq)
}

/// Runs [`send_loop`] and notes when it ended (confirms included). On
/// failure the `reader` task's error wins when it has one: the reader
/// usually knows why (the broker's close) while the writer only saw a
/// broken pipe or a closed window.
pub(crate) async fn produce<P: Publisher>(
    publisher: &mut P,
    id: u32,
    run: u32,
    plan: Plan,
    window: Option<Window<'_>>,
    counters: &Counters,
    reader: &mut JoinHandle<Result<()>>,
) -> Result<(u64, Instant)> {
    let result = send_loop(publisher, id, run, plan, window, counters).await;
    let end = Instant::now();
    match result {
        Ok(sent) => Ok((sent, end)),
        Err(e) => Err(match reader.await {
            Ok(Err(why)) => why,
            _ => e,
        }),
    }
}

/// Counts `n` newly settled messages (in the producer's own counter and the
/// live one) and gives their window permits back.
pub(crate) fn settle(n: u64, own: &AtomicU64, counters: &Counters, permits: &Semaphore) {
    own.fetch_add(n, Ordering::Relaxed);
    counters.confirmed.fetch_add(n, Ordering::Relaxed);
    permits.add_permits(n as usize);
}

/// Reads more of what the broker sends a producer (confirms, acks) into
/// `buf`. EOF is an error: the broker closed.
pub(crate) async fn read_more(reader: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<()> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    if reader.read_buf(buf).await.map_err(io("read"))? == 0 {
        return Err(Error::Closed("EOF".into()));
    }
    Ok(())
}

/// Waits for every producer task; the first error (in task order) wins.
pub(crate) async fn join_producers(
    tasks: Vec<JoinHandle<Result<ProducerResult>>>,
) -> Result<Vec<ProducerResult>> {
    let mut results = Vec::new();
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(e) => first_error = first_error.or(Some(Error::Protocol(e.to_string()))),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(results),
    }
}
