//! The accept loop every listener shares (AMQP, MQTT, MQTT over WebSocket).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::core::Core;

/// Accepts connections until shutdown and serves each in its own tracked task.
/// Accept errors (out of file descriptors and the like) are logged and retried shortly, so one
/// bad moment does not stop the listener.
pub async fn accept_loop<F, Fut>(core: Arc<Core>, listener: TcpListener, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = core.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((socket, peer)) => {
                // We coalesce our own writes, so Nagle only adds latency.
                if let Err(e) = socket.set_nodelay(true) {
                    tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                }
                core.tasks.spawn(serve(socket, peer));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
