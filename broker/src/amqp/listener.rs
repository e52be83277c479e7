//! The AMQP listener.

use std::sync::Arc;

use tokio::net::TcpListener;

use super::Limits;
use super::connection;
use crate::core::Core;

/// Accepts AMQP connections until shutdown.
pub async fn run(core: Arc<Core>, listener: TcpListener, limits: Limits) {
    let serving = core.clone();
    crate::listener::accept_loop(core, listener, move |socket, peer| {
        connection::serve(serving.clone(), socket, peer, limits)
    })
    .await;
}
