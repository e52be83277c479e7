//! Accept loop of the MQTT listener.

use std::sync::Arc;

use tokio::net::TcpListener;

use super::{Shared, connection};

/// Accepts connections until shutdown; each gets its own task.
pub async fn run(shared: Arc<Shared>, listener: TcpListener) {
    let core = shared.core.clone();
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
                core.tasks
                    .spawn(connection::serve_tcp(shared.clone(), socket, peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
