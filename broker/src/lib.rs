//! The broker: AMQP 0-9-1 front end, routing core, queues and durable storage.
//!
//! # Layout
//! - [`config`]: settings (flags, environment).
//! - [`Broker`]: starts listeners and the core, and shuts them down.

pub mod config;

pub use config::Config;

use std::net::SocketAddr;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The AMQP listen address could not be bound (port taken, no permission).
    #[error("cannot listen for AMQP on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The data directory could not be opened or is used by another broker.
    #[error("cannot open data dir: {0}")]
    Storage(#[from] storage::StorageError),
}

/// A running broker. Dropping it without [`Broker::shutdown`] aborts its tasks.
pub struct Broker {
    amqp_addr: SocketAddr,
}

impl Broker {
    /// Opens storage, recovers durable state and starts the listeners.
    pub async fn start(config: Config) -> Result<Broker, StartError> {
        let _ = config;
        unimplemented!("in progress")
    }

    /// The address the AMQP listener is bound to (useful with port 0).
    pub fn amqp_addr(&self) -> SocketAddr {
        self.amqp_addr
    }

    /// Stops accepting, closes connections, flushes storage.
    pub async fn shutdown(self) {}
}
