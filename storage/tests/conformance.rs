//! The shared conformance suite against both stores.

use storage::{MemoryStorage, SledStorage, conformance};

#[test]
fn memory_storage_conforms() {
    let shared = MemoryStorage::new();
    conformance::run_all(|| shared.clone());
}

#[test]
fn sled_storage_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(|| SledStorage::open(dir.path()).unwrap());
}
