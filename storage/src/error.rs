//! The one error type of the storage layer.

use std::path::PathBuf;

/// Why a storage operation failed.
///
/// Kept small on purpose (see STYLE.md): the broker only needs to tell "someone
/// else owns this data dir" (refuse to start, say so) from "the disk or the
/// engine failed" (stop confirming, shut down) from "a record cannot be read"
/// (data damage: report which) from "the caller handed us something the format
/// cannot hold" (a bug in the caller).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Another process holds the data dir, so starting a second broker on it
    /// would corrupt both; the operator has to stop the other one first.
    #[error("data directory {path} is already in use by another broker process")]
    Locked {
        /// The data directory that is locked.
        path: PathBuf,
    },
    /// The data dir cannot be created, opened or locked (permissions, a file in
    /// the way, a full disk): an operator problem, reported with the path.
    #[error("data directory {path} is unusable: {source}")]
    Io {
        /// The file or directory the operation failed on.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The storage engine (sled) failed; its error is kept as text so that the
    /// engine's types do not leak into the broker.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// A stored record (message, key or definitions) could not be decoded:
    /// the data on disk is damaged or was written by an incompatible version.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The caller asked to store something the on-disk format cannot hold
    /// (an exchange name or routing key over 255 bytes, a body over 4 GiB).
    /// The AMQP layer never produces these, so this signals a caller bug; it is
    /// an error rather than a panic so one bad publish cannot stop the broker.
    #[error("cannot store record: {0}")]
    Invalid(String),
}

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Corruption { .. } => StorageError::Corrupt(e.to_string()),
            other => StorageError::Engine(other.to_string()),
        }
    }
}
