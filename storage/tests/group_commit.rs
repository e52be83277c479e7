//! How many persistent messages per second one segment store takes for a given
//! group-commit size. A measurement to print, not a test that can fail:
//!
//! `cargo test -p storage --release -- --ignored --nocapture`

use std::time::Instant;

use bytes::Bytes;
use storage::{QueueKey, SegmentStorage, Storage, StoredMessage};

const MESSAGES: u32 = 20_000;
const BODY: usize = 1024;

#[test]
#[ignore = "measurement: run with --release --ignored --nocapture"]
fn group_commit_curve() {
    let body = Bytes::from(vec![0xab; BODY]);
    let properties = Bytes::from_static(&[0x80, 0x00, 2]);
    println!("appending {MESSAGES} messages of {BODY} B, one append call each");
    for every in [1u64, 16, 128, 1024] {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStorage::open(dir.path()).unwrap();
        let q = QueueKey::new("/", "bench");
        let start = Instant::now();
        for seq in 1..=u64::from(MESSAGES) {
            let m = StoredMessage {
                seq,
                exchange: "amq.direct".into(),
                routing_key: "bench".into(),
                properties: properties.clone(),
                body: body.clone(),
            };
            store.append(&q, std::slice::from_ref(&m)).unwrap();
            if seq % every == 0 {
                store.sync().unwrap();
            }
        }
        store.sync().unwrap();
        let secs = start.elapsed().as_secs_f64();
        let rate = f64::from(MESSAGES) / secs;
        let mib = store.size_on_disk() / (1024 * 1024);
        println!("sync every {every:>5}: {rate:>9.0} msg/s ({secs:.2} s, {mib} MiB on disk)");
    }
}
