//! Accept loop of the AMQP listener.

use std::sync::Arc;

use tokio::net::TcpListener;

use super::Limits;
use super::connection;
use crate::core::Core;

/// Accepts connections until shutdown; each gets its own task.
pub async fn run(core: Arc<Core>, listener: TcpListener, limits: Limits) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = core.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((socket, peer)) => {
                if let Err(e) = socket.set_nodelay(true) {
                    tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                }
                let core2 = core.clone();
                core.tasks
                    .spawn(connection::serve(core2, socket, peer, limits));
            }
            Err(e) => {
                // Out of file descriptors and the like: keep serving the others.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
