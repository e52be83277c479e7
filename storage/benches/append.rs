//! Micro-benchmarks of the persistent-message path of the disk store, through
//! the `Storage` trait as the broker's queue tasks and flusher use it: append
//! a batch of 100 messages of 1 KiB, make it durable (`sync`), remove the
//! batch again (the acks) and sync that. Throughput is in message bytes.
//!
//! The store is built by [`open_store`] alone, so switching the benchmark to
//! another disk store is a one-line change.
//!
//! Run: `cargo bench -p storage --bench append`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use storage::{QueueKey, SeqNo, Storage, StorageError, StoredMessage};

/// The store under test: the crate's default disk store.
fn open_store(dir: &Path) -> Result<impl Storage, StorageError> {
    storage::SegmentStorage::open(dir)
}

/// Messages per append (a queue task's batch under load).
const BATCH: u64 = 100;

/// Body size of each message.
const BODY_LEN: usize = 1024;

/// A batch of `BATCH` messages starting at `first`.
fn batch(first: SeqNo, body: &Bytes, properties: &Bytes) -> Vec<StoredMessage> {
    (first..first + BATCH)
        .map(|seq| StoredMessage {
            seq,
            exchange: "amq.direct".to_string(),
            routing_key: "orders".to_string(),
            properties: properties.clone(),
            body: body.clone(),
        })
        .collect()
}

/// A store in a fresh temp dir, and the queue whose log is benchmarked.
struct Fixture {
    store: Box<dyn Storage>,
    queue: QueueKey,
    body: Bytes,
    properties: Bytes,
    next_seq: SeqNo,
    // Dropped last: the store's files live here.
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir for the benchmark store");
        let store = open_store(dir.path()).expect("open the benchmark store");
        Fixture {
            store: Box::new(store),
            queue: QueueKey::new("/", "bench"),
            body: Bytes::from(vec![0x5a; BODY_LEN]),
            // delivery_mode=2 (persistent), as the broker encodes it.
            properties: Bytes::from_static(&[0x10, 0x00, 0x02]),
            next_seq: 1,
            _dir: dir,
        }
    }

    /// Appends the next batch and syncs; returns the seqs appended.
    fn append_sync(&mut self) -> Vec<SeqNo> {
        let msgs = batch(self.next_seq, &self.body, &self.properties);
        self.next_seq += BATCH;
        self.store
            .append(&self.queue, &msgs)
            .expect("append to the benchmark store");
        self.store.sync().expect("sync the benchmark store");
        msgs.iter().map(|m| m.seq).collect()
    }

    /// Removes `seqs` (the acks) and syncs.
    fn remove_sync(&mut self, seqs: &[SeqNo]) {
        self.store
            .remove(&self.queue, seqs)
            .expect("remove from the benchmark store");
        self.store.sync().expect("sync the benchmark store");
    }
}

fn append_remove(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage_100x1KiB");
    // One iteration is an fsync or two (milliseconds): flat sampling and
    // fewer samples keep a run within seconds.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.throughput(Throughput::Bytes(BATCH * 1024));

    let mut f = Fixture::new();
    group.bench_function("append_sync", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let seqs = f.append_sync();
                timed += start.elapsed();
                // Untimed: the acks, so the log does not grow run after run.
                f.remove_sync(&seqs);
            }
            timed
        });
    });

    let mut f = Fixture::new();
    group.bench_function("remove_sync", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let seqs = f.append_sync();
                let start = Instant::now();
                f.remove_sync(black_box(&seqs));
                timed += start.elapsed();
            }
            timed
        });
    });

    let mut f = Fixture::new();
    group.bench_function("append_sync_remove_sync", |b| {
        b.iter(|| {
            let seqs = f.append_sync();
            f.remove_sync(&seqs);
        });
    });
    group.finish();
}

/// Short runs by default (CI-friendly); command-line flags still override.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = append_remove
}
criterion_main!(benches);
