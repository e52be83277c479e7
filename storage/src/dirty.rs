//! What the next [`crate::Storage::sync`] has to make durable.
//!
//! Appends and removes register the files and directories they touched here;
//! `sync` takes the whole set under a short lock and fsyncs it outside the
//! lock, so a queue appending during another queue's fsync never waits for
//! the disk.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::StorageError;

/// An open file plus whether it has writes the last sync did not cover.
#[derive(Debug)]
pub struct TrackedFile {
    /// The file itself.
    pub file: File,
    /// Its path, for error messages.
    pub path: PathBuf,
    dirty: AtomicBool,
}

impl TrackedFile {
    /// Wraps a freshly opened file.
    pub fn new(file: File, path: PathBuf) -> Arc<TrackedFile> {
        Arc::new(TrackedFile {
            file,
            path,
            dirty: AtomicBool::new(false),
        })
    }
}

/// Files and directories written since the last sync, and whether sled's
/// metadata changed.
#[derive(Debug, Default)]
pub struct Dirty {
    // A std Mutex: held only to push or swap out a Vec, never across IO.
    inner: Mutex<Pending>,
    meta: AtomicBool,
}

#[derive(Debug, Default)]
struct Pending {
    files: Vec<Arc<TrackedFile>>,
    dirs: Vec<PathBuf>,
}

/// Everything one sync must flush, taken out of [`Dirty`].
#[derive(Debug, Default)]
pub struct Batch {
    /// Files with unsynced writes.
    pub files: Vec<Arc<TrackedFile>>,
    /// Directories whose entries changed (files created or removed).
    pub dirs: Vec<PathBuf>,
    /// Whether sled's metadata (definitions, queue ids) changed.
    pub meta: bool,
}

impl Dirty {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Pushes and swaps cannot leave the Vecs half-updated: a poisoned lock
        // still guards consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that `f` was written after it was last synced. Called after the
    /// write, so a sync that has already taken `f` out but not yet fsynced
    /// it still covers this write.
    pub fn file(&self, f: &Arc<TrackedFile>) {
        if !f.dirty.swap(true, Ordering::SeqCst) {
            self.lock().files.push(f.clone());
        }
    }

    /// Notes that entries of `dir` were created or removed.
    pub fn dir(&self, dir: &Path) {
        let mut p = self.lock();
        if !p.dirs.iter().any(|d| d == dir) {
            p.dirs.push(dir.to_path_buf());
        }
    }

    /// Notes that sled's metadata changed.
    pub fn meta(&self) {
        self.meta.store(true, Ordering::SeqCst);
    }

    /// Takes everything registered so far. A file's flag is cleared before
    /// the caller fsyncs it, so a write racing the fsync registers it again
    /// for the next sync rather than being lost.
    pub fn take(&self) -> Batch {
        let Pending { files, dirs } = std::mem::take(&mut *self.lock());
        for f in &files {
            f.dirty.store(false, Ordering::SeqCst);
        }
        Batch {
            files,
            dirs,
            meta: self.meta.swap(false, Ordering::SeqCst),
        }
    }

    /// Puts back what a failed sync did not make durable, so the next sync
    /// tries again.
    pub fn restore(&self, batch: Batch) {
        if batch.meta {
            self.meta();
        }
        for f in &batch.files {
            self.file(f);
        }
        for d in &batch.dirs {
            self.dir(d);
        }
    }
}

/// fsyncs a directory, so entries created or removed in it survive a crash.
/// A directory that is gone (a deleted queue's) needs nothing.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StorageError::Io {
            path: dir.to_path_buf(),
            source,
        }),
    }
}
