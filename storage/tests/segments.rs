//! The segment store's own failure modes: crashes mid-write, damaged
//! records, segment rollover and deletion, acks after a restart.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use storage::{QueueKey, SegmentStorage, SeqNo, Storage, StoredMessage};

fn msg(seq: SeqNo) -> StoredMessage {
    StoredMessage {
        seq,
        exchange: "amq.direct".into(),
        routing_key: "q".into(),
        properties: Bytes::from_static(&[0x80, 0, 2]),
        body: Bytes::from(vec![u8::try_from(seq % 251).unwrap(); 1000]),
    }
}

fn msgs(seqs: impl IntoIterator<Item = SeqNo>) -> Vec<StoredMessage> {
    seqs.into_iter().map(msg).collect()
}

fn seqs(got: &[StoredMessage]) -> Vec<SeqNo> {
    got.iter().map(|m| m.seq).collect()
}

/// Files of a queue's directory with the given extension, in name order.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn q() -> QueueKey {
    QueueKey::new("/", "q")
}

#[test]
fn a_torn_tail_is_cut_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    s.append(&q(), &msgs(1..=5)).unwrap();
    s.sync().unwrap();
    let qdir = s.queue_dir(&q()).unwrap();
    drop(s);

    let seg = files(&qdir, "seg").remove(0);
    let len = std::fs::metadata(&seg).unwrap().len();
    // Cut the last record in half, as a crash mid-write would.
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 500)
        .unwrap();

    let s = SegmentStorage::open(dir.path()).unwrap();
    let got = s.recover(&q()).unwrap();
    assert_eq!(got, msgs(1..=4));
    assert!(
        std::fs::metadata(&seg).unwrap().len() < len - 500,
        "torn bytes truncated"
    );
    // The log goes on: new appends and a reopen see a clean file.
    s.append(&q(), &msgs(6..=7)).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [1, 2, 3, 4, 6, 7]);
}

#[test]
fn a_header_cut_short_and_trailing_zeros_are_torn_tails() {
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    s.append(&q(), &msgs(1..=2)).unwrap();
    s.sync().unwrap();
    let qdir = s.queue_dir(&q()).unwrap();
    drop(s);
    let seg = files(&qdir, "seg").remove(0);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[7, 0, 0]); // three bytes of a next header
    std::fs::write(&seg, &bytes).unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(s.recover(&q()).unwrap(), msgs(1..=2));
    drop(s);

    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0; 4096]); // extended by the file system, never written
    std::fs::write(&seg, &bytes).unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(s.recover(&q()).unwrap(), msgs(1..=2));
}

#[test]
fn a_damaged_record_in_the_middle_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    s.append(&q(), &msgs(1..=3)).unwrap();
    s.sync().unwrap();
    let qdir = s.queue_dir(&q()).unwrap();
    drop(s);

    let seg = files(&qdir, "seg").remove(0);
    let mut bytes = std::fs::read(&seg).unwrap();
    let record = bytes.len() / 3;
    bytes[record + record / 2] ^= 0x55; // inside the second body
    std::fs::write(&seg, &bytes).unwrap();

    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [1, 3]);
    // Acks still work around the damage.
    s.remove(&q(), &[3]).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [1]);
}

#[test]
fn segments_roll_over_and_fully_acked_ones_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    // Four 1 KiB messages per segment: 1-4, 5-8, 9-12, 13-16, 17-20.
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    for seq in 1..=20 {
        s.append(&q(), &msgs([seq])).unwrap();
    }
    s.sync().unwrap();
    let qdir = s.queue_dir(&q()).unwrap();
    assert_eq!(files(&qdir, "seg").len(), 5);
    assert_eq!(s.segment_count(&q()).unwrap(), 5);

    // Ack the first two segments completely and half of the third (9, 10).
    s.remove(&q(), &(1..=10).collect::<Vec<_>>()).unwrap();
    s.sync().unwrap();
    assert_eq!(files(&qdir, "seg").len(), 3, "two segments deleted");
    assert_eq!(files(&qdir, "ack").len(), 1, "their ack files too");
    assert_eq!(
        seqs(&s.recover(&q()).unwrap()),
        (11..=20).collect::<Vec<_>>()
    );

    // Acks out of order, across segments: the third and the (full) last
    // segment go, the fourth keeps 13 and 14.
    s.remove(&q(), &[20, 11, 15, 12, 16, 17, 18, 19]).unwrap();
    assert_eq!(files(&qdir, "seg").len(), 1);
    drop(s);
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [13, 14]);
    s.remove(&q(), &[13, 14]).unwrap();
    drop(s);
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    assert!(s.recover(&q()).unwrap().is_empty());
    assert!(files(&qdir, "seg").is_empty(), "all segments deleted");
    assert!(files(&qdir, "ack").is_empty());
}

#[test]
fn acks_after_a_reopen_apply_to_the_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    s.append(&q(), &msgs(1..=10)).unwrap();
    s.remove(&q(), &[2]).unwrap();
    s.sync().unwrap();
    drop(s);

    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(s.recover(&q()).unwrap().len(), 9);
    // New messages go to a new segment; acks reach the old one.
    s.append(&q(), &msgs(11..=12)).unwrap();
    s.remove(&q(), &[1, 3, 10, 11]).unwrap();
    s.sync().unwrap();
    drop(s);

    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [4, 5, 6, 7, 8, 9, 12]);
    s.remove(&q(), &(4..=9).collect::<Vec<_>>()).unwrap();
    s.sync().unwrap();
    assert_eq!(s.segment_count(&q()).unwrap(), 1, "the old segment is gone");
}

#[test]
fn seqs_reused_after_a_restart_do_not_collide() {
    // The broker restarts its counter after the highest live seq, so a seq
    // acked in an old segment can come back in a new one.
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    s.append(&q(), &msgs(1..=3)).unwrap();
    s.remove(&q(), &[2, 3]).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [1]);
    s.append(&q(), &msgs(2..=3)).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [1, 2, 3]);
    s.remove(&q(), &[2]).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [1, 3]);
}

#[test]
fn purge_and_delete_drop_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    s.append(&q(), &msgs(1..=10)).unwrap();
    s.remove(&q(), &[1]).unwrap();
    let qdir = s.queue_dir(&q()).unwrap();
    assert!(!files(&qdir, "seg").is_empty());
    s.purge(&q()).unwrap();
    assert!(files(&qdir, "seg").is_empty() && files(&qdir, "ack").is_empty());
    s.append(&q(), &msgs(11..=12)).unwrap();
    s.delete_queue(&q()).unwrap();
    assert!(!qdir.exists());
    s.sync().unwrap();
    drop(s);
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert!(s.recover(&q()).unwrap().is_empty());
}

#[test]
fn syncs_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    s.append(&q(), &msgs(1..=100)).unwrap();
    s.sync().unwrap();
    let stats = s.stats();
    assert_eq!(stats.syncs, 1);
    assert_eq!(stats.messages_appended, 100);
    assert_eq!(stats.files_synced, 1);
    s.sync().unwrap();
    assert_eq!(s.stats().files_synced, 1, "nothing new to fsync");
}

#[test]
fn a_batch_larger_than_one_writev_is_written_whole() {
    // Two slices per message: 1,500 messages need more than IOV_MAX (1024).
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    s.append(&q(), &msgs(1..=1500)).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(s.recover(&q()).unwrap(), msgs(1..=1500));
}

/// Opens a store, writes `n` messages into one segment, syncs, and returns
/// the segment's path and the length of one record's frame.
fn ten_records(dir: &Path) -> (PathBuf, usize) {
    let s = SegmentStorage::open(dir).unwrap();
    s.append(&q(), &msgs(1..=10)).unwrap();
    s.sync().unwrap();
    let qdir = s.queue_dir(&q()).unwrap();
    drop(s);
    let seg = files(&qdir, "seg").remove(0);
    let len = std::fs::read(&seg).unwrap().len();
    assert_eq!(len % 10, 0, "records of equal size");
    (seg, len / 10)
}

#[test]
fn a_damaged_length_mid_segment_does_not_truncate_the_records_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, frame) = ten_records(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let len = bytes.len();
    bytes[3 * frame] ^= 1; // one bit of record 4's `len`
    std::fs::write(&seg, &bytes).unwrap();

    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(
        seqs(&s.recover(&q()).unwrap()),
        [1, 2, 3, 5, 6, 7, 8, 9, 10]
    );
    assert_eq!(std::fs::read(&seg).unwrap().len(), len, "file not shrunk");
    // Acks after the damage still land and survive a restart.
    s.remove(&q(), &[5, 10]).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [1, 2, 3, 6, 7, 8, 9]);
}

#[test]
fn a_zeroed_header_mid_segment_does_not_truncate_the_records_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, frame) = ten_records(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let len = bytes.len();
    bytes[3 * frame..3 * frame + 16].fill(0);
    std::fs::write(&seg, &bytes).unwrap();

    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(
        seqs(&s.recover(&q()).unwrap()),
        [1, 2, 3, 5, 6, 7, 8, 9, 10]
    );
    assert_eq!(std::fs::read(&seg).unwrap().len(), len, "file not shrunk");
}

#[test]
fn a_queue_deletion_cut_short_after_the_rename_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    s.append(&q(), &msgs(1..=4)).unwrap();
    s.remove(&q(), &[1, 2]).unwrap();
    s.sync().unwrap();
    let qdir = s.queue_dir(&q()).unwrap();
    drop(s);
    // What a crash between the tombstone rename and the unlinks leaves (sled
    // still names the queue: its removal was not flushed yet).
    let mut tomb = qdir.clone().into_os_string();
    tomb.push(".deleted");
    let tomb = PathBuf::from(tomb);
    std::fs::rename(&qdir, &tomb).unwrap();
    std::fs::remove_file(files(&tomb, "ack").remove(0)).unwrap();

    let s = SegmentStorage::open(dir.path()).unwrap();
    assert!(!tomb.exists(), "tombstone deleted at open");
    assert!(s.recover(&q()).unwrap().is_empty(), "nothing comes back");
    // A live delete leaves neither the directory nor a tombstone.
    s.append(&q(), &msgs(5..=6)).unwrap();
    s.remove(&q(), &[5]).unwrap();
    s.delete_queue(&q()).unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path().join("queues"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "queues dir empty: {left:?}");
}

#[test]
fn a_torn_ack_entry_does_not_misalign_later_acks() {
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open(dir.path()).unwrap();
    s.append(&q(), &msgs(1..=10)).unwrap();
    s.remove(&q(), &[1]).unwrap();
    let qdir = s.queue_dir(&q()).unwrap();
    let ack = files(&qdir, "ack").remove(0);
    // A write that failed half-way (ENOSPC) left a fragment of an entry.
    let mut f = OpenOptions::new().append(true).open(&ack).unwrap();
    std::io::Write::write_all(&mut f, &[9, 9, 9]).unwrap();
    drop(f);
    s.remove(&q(), &[2, 3]).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(
        seqs(&s.recover(&q()).unwrap()),
        (4..=10).collect::<Vec<_>>()
    );
}

#[test]
fn a_failed_ack_write_leaves_the_messages_live() {
    let dir = tempfile::tempdir().unwrap();
    // Four 1 KiB messages per segment: 1-4, 5-8.
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    for seq in 1..=8 {
        s.append(&q(), &msgs([seq])).unwrap();
    }
    let qdir = s.queue_dir(&q()).unwrap();
    let segs = files(&qdir, "seg");
    assert_eq!(segs.len(), 2);
    // Something in the way of the first segment's ack file: its write fails.
    let blocked = segs[0].with_extension("ack");
    std::fs::create_dir(&blocked).unwrap();
    assert!(s.remove(&q(), &[1, 5]).is_err());
    assert!(
        seqs(&s.recover(&q()).unwrap()).contains(&1),
        "a removal that was not written is not applied in memory"
    );
    std::fs::remove_dir(&blocked).unwrap();
    s.remove(&q(), &[1, 5]).unwrap();
    s.sync().unwrap();
    drop(s);
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [2, 3, 4, 6, 7, 8]);
}

#[test]
fn records_damaged_after_start_up_are_never_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, frame) = ten_records(dir.path());
    let s = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(s.recover_seqs(&q()).unwrap().len(), 10, "scanned intact");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[frame + frame / 2] ^= 0x55; // inside the second body
    std::fs::write(&seg, &bytes).unwrap();
    assert_eq!(seqs(&s.read(&q(), &[1, 2, 3]).unwrap()), [1, 3]);
    assert_eq!(
        seqs(&s.recover(&q()).unwrap()),
        [1, 3, 4, 5, 6, 7, 8, 9, 10]
    );
}

#[test]
fn an_unreadable_segment_is_skipped_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    for seq in 1..=8 {
        s.append(&q(), &msgs([seq])).unwrap();
    }
    s.sync().unwrap();
    let qdir = s.queue_dir(&q()).unwrap();
    drop(s);
    // A segment that cannot be read: a directory in its place.
    let first = files(&qdir, "seg").remove(0);
    let saved = qdir.join("saved");
    std::fs::rename(&first, &saved).unwrap();
    std::fs::create_dir(&first).unwrap();

    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [5, 6, 7, 8]);
    s.append(&q(), &msgs([9])).unwrap();
    s.sync().unwrap();
    assert!(first.is_dir(), "the unreadable segment is left alone");
    assert_eq!(files(&qdir, "seg").len(), 3, "a new number for the new one");
    drop(s);
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [5, 6, 7, 8, 9]);
}

#[test]
fn leftover_files_never_take_over_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    for seq in 1..=4 {
        s.append(&q(), &msgs([seq])).unwrap();
    }
    let qdir = s.queue_dir(&q()).unwrap();
    let first = files(&qdir, "seg").remove(0);
    // Files of the next two numbers, appearing behind the store's back.
    let leftover = first.with_file_name("0000000001.seg");
    std::fs::write(&leftover, b"not ours").unwrap();
    let stale_ack = first.with_file_name("0000000002.ack");
    std::fs::write(&stale_ack, 5u64.to_le_bytes()).unwrap();
    s.append(&q(), &msgs([5])).unwrap();
    s.sync().unwrap();
    assert_eq!(
        std::fs::read(&leftover).unwrap(),
        b"not ours",
        "not truncated"
    );
    assert!(first.with_file_name("0000000003.seg").exists());
    drop(s);
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    assert_eq!(seqs(&s.recover(&q()).unwrap()), [1, 2, 3, 4, 5]);
}

#[test]
fn a_purge_that_fails_half_way_keeps_memory_and_disk_agreeing() {
    let dir = tempfile::tempdir().unwrap();
    // Four 1 KiB messages per segment: 1-4, 5-8.
    let s = SegmentStorage::open_with_segment_size(dir.path(), 4000).unwrap();
    for seq in 1..=8 {
        s.append(&q(), &msgs([seq])).unwrap();
    }
    let qdir = s.queue_dir(&q()).unwrap();
    let second = files(&qdir, "seg").remove(1);
    // The second segment cannot be unlinked: a non-empty directory in its place.
    std::fs::remove_file(&second).unwrap();
    std::fs::create_dir(&second).unwrap();
    std::fs::write(second.join("x"), b"x").unwrap();
    assert!(s.purge(&q()).is_err());
    assert_eq!(s.recover_seqs(&q()).unwrap(), [5, 6, 7, 8], "still there");
}
