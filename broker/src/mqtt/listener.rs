//! The MQTT listener (plain TCP).

use std::sync::Arc;

use tokio::net::TcpListener;

use super::{Shared, connection};

/// Accepts MQTT connections until shutdown.
pub async fn run(shared: Arc<Shared>, listener: TcpListener) {
    let core = shared.core.clone();
    crate::listener::accept_loop(core, listener, move |socket, peer| {
        connection::serve_tcp(shared.clone(), socket, peer)
    })
    .await;
}
