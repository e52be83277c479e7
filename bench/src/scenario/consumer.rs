//! The consumer side both protocols share: counting what a read brought,
//! reading more until told to stop, and stopping the consumers to collect
//! their trackers.

use std::sync::atomic::Ordering;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Counters, READ_SPACE};
use crate::error::{Error, Result, io};
use crate::verify::Tracker;

/// Adds the deliveries `t` recorded since it counted `before` to the live
/// counters.
pub(crate) fn count_received(t: &mut Tracker, before: u64, counters: &Counters) {
    if t.received > before {
        counters
            .received
            .fetch_add(t.received - before, Ordering::Relaxed);
        t.touch();
    }
}

/// Reads more into `buf`, or returns `Ok(false)` once `stop` fires (a stop
/// wins over data that is ready). EOF is an error: the broker closed.
pub(crate) async fn read_or_stop(
    reader: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    stop: &mut watch::Receiver<bool>,
    context: &'static str,
) -> Result<bool> {
    if buf.capacity() - buf.len() < READ_SPACE / 2 {
        buf.reserve(READ_SPACE);
    }
    tokio::select! {
        biased;
        _ = stop.changed() => Ok(false),
        n = reader.read_buf(buf) => {
            if n.map_err(io(context))? == 0 {
                return Err(Error::Closed("EOF".into()));
            }
            Ok(true)
        }
    }
}

/// Tells the consumers to stop, collects their trackers (the first error
/// ends the run), then stops the progress line.
pub(crate) async fn stop_consumers(
    stop: watch::Sender<bool>,
    consumers: Vec<JoinHandle<Result<Tracker>>>,
    progress: Option<JoinHandle<()>>,
) -> Result<Vec<Tracker>> {
    let _ = stop.send(true);
    let mut trackers = Vec::new();
    for t in consumers {
        trackers.push(t.await.map_err(|e| Error::Protocol(e.to_string()))??);
    }
    if let Some(p) = progress {
        p.abort();
    }
    Ok(trackers)
}
