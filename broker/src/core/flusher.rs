//! Group commit: one thread makes storage durable for every queue and connection at once.
//!
//! Queues append persistent messages without flushing, then hand the confirms that depend on
//! them to the flusher. The flusher waits for the first request, takes every request that
//! arrived meanwhile, runs one `sync()` and answers them all: the batch size follows the load
//! (what arrived during the previous fsync), with no timer and no added latency when idle.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::ConfirmTarget;

/// Someone waiting for the next durability barrier.
enum Waiter {
    Confirms(Vec<ConfirmTarget>),
    Notify(oneshot::Sender<Result<(), String>>),
}

/// Handle to the flusher thread. The thread stops when the handle is dropped.
pub struct Flusher {
    tx: Option<mpsc::Sender<Waiter>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the flusher thread over `storage`.
    pub fn start(storage: Arc<dyn storage::Storage>) -> Flusher {
        let (tx, rx) = mpsc::channel::<Waiter>();
        let thread = std::thread::Builder::new()
            .name("flusher".into())
            .spawn(move || run(storage, rx))
            .ok();
        if thread.is_none() {
            tracing::error!("could not start the flusher thread; confirms will be nacked");
        }
        Flusher {
            tx: Some(tx),
            thread,
        }
    }

    /// Sends positive confirms once everything written so far is on disk (negative ones if the
    /// sync fails).
    pub fn confirm_after_sync(&self, targets: Vec<ConfirmTarget>) {
        if targets.is_empty() {
            return;
        }
        if let Some(tx) = &self.tx
            && let Err(mpsc::SendError(Waiter::Confirms(targets))) =
                tx.send(Waiter::Confirms(targets))
        {
            targets.into_iter().for_each(|t| t.send(false));
        }
    }

    /// Waits until everything written so far is on disk.
    pub async fn sync(&self) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        let Some(tx) = &self.tx else {
            return Err("flusher stopped".into());
        };
        tx.send(Waiter::Notify(reply))
            .map_err(|_| "flusher stopped".to_string())?;
        rx.await.map_err(|_| "flusher stopped".to_string())?
    }

    /// Stops the thread after it has answered every request already made.
    pub fn stop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How often the flusher reports its group-commit batch size (at debug level).
const REPORT_EVERY: Duration = Duration::from_secs(10);

fn run(storage: Arc<dyn storage::Storage>, rx: mpsc::Receiver<Waiter>) {
    let mut batch = Vec::new();
    let mut last_report = (Instant::now(), storage.stats());
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let result = storage.sync().map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "storage sync failed; nacking the confirms that depended on it");
        }
        for waiter in batch.drain(..) {
            match waiter {
                Waiter::Confirms(targets) => {
                    for t in targets {
                        t.send(result.is_ok());
                    }
                }
                Waiter::Notify(reply) => {
                    let _ = reply.send(result.clone());
                }
            }
        }
        if last_report.0.elapsed() >= REPORT_EVERY {
            let now = storage.stats();
            report(tracing::Level::DEBUG, &last_report.1, &now);
            last_report = (Instant::now(), now);
        }
    }
    report(
        tracing::Level::INFO,
        &storage::StorageStats::default(),
        &storage.stats(),
    );
}

/// Logs the group-commit batch size (messages appended per sync) between two readings of the
/// storage counters: the figure the persistent-throughput benchmark reports.
fn report(level: tracing::Level, before: &storage::StorageStats, now: &storage::StorageStats) {
    let syncs = now.syncs.saturating_sub(before.syncs);
    if syncs == 0 {
        return;
    }
    let messages = now
        .messages_appended
        .saturating_sub(before.messages_appended);
    let files = now.files_synced.saturating_sub(before.files_synced);
    // Integer division is precise enough for a log line and avoids lossy casts.
    let per_sync = messages / syncs;
    if level == tracing::Level::INFO {
        tracing::info!(
            syncs,
            files_synced = files,
            messages,
            messages_per_sync = per_sync,
            "storage syncs since start"
        );
    } else {
        tracing::debug!(
            syncs,
            files_synced = files,
            messages,
            messages_per_sync = per_sync,
            "storage syncs"
        );
    }
}
