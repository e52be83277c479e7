//! The shared conformance suite against both stores.

use storage::{MemoryStorage, SegmentStorage, conformance};

#[test]
fn memory_storage_conforms() {
    let shared = MemoryStorage::new();
    conformance::run_all(|| shared.clone());
}

#[test]
fn segment_storage_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(|| SegmentStorage::open(dir.path()).unwrap());
}
