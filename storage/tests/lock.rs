//! One data dir, one broker: the `<dir>/LOCK` file.

use storage::{QueueKey, SegmentStorage, Storage, StorageError, StoredMessage};

#[test]
fn second_open_of_a_dir_is_locked_until_the_first_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let first = SegmentStorage::open(dir.path()).unwrap();
    assert!(dir.path().join("LOCK").exists());

    match SegmentStorage::open(dir.path()) {
        Err(StorageError::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }

    let q = QueueKey::new("/", "q");
    let m = StoredMessage {
        seq: 1,
        exchange: String::new(),
        routing_key: "q".into(),
        properties: Default::default(),
        body: "kept".into(),
    };
    first.append(&q, std::slice::from_ref(&m)).unwrap();
    first.sync().unwrap();
    // The failed open must not have disturbed the store that holds the lock.
    assert_eq!(first.recover(&q).unwrap(), vec![m.clone()]);
    drop(first);

    let again = SegmentStorage::open(dir.path()).unwrap();
    assert_eq!(again.recover(&q).unwrap(), vec![m]);
}

/// sled's own file lock can outlive a dropped `Db` by a few milliseconds (its
/// IO threads still hold the file); an immediate reopen must still succeed.
#[test]
fn immediate_reopen_after_writes_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let q = QueueKey::new("/", "q");
    for seq in 1..=50u64 {
        let s = SegmentStorage::open(dir.path()).unwrap();
        assert_eq!(
            s.recover(&q).unwrap().len(),
            usize::try_from(seq - 1).unwrap()
        );
        let m = StoredMessage {
            seq,
            exchange: String::new(),
            routing_key: "q".into(),
            properties: Default::default(),
            body: vec![7; 10_000].into(),
        };
        s.append(&q, &[m]).unwrap();
        s.sync().unwrap();
    }
}

#[test]
fn unusable_dir_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let data = file.join("data");
    match SegmentStorage::open(&data) {
        Err(StorageError::Io { path, .. }) => assert_eq!(path, data),
        other => panic!("expected Io, got {other:?}"),
    }
}
