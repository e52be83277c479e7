//! The accept loop every listener shares (AMQP, MQTT, MQTT over WebSocket).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::core::Core;

/// Failed accepts in a row between two log lines.
const FAILURES_PER_LOG: u64 = 100;

/// Accepts connections until shutdown and serves each in its own tracked task.
/// Accept errors (out of file descriptors and the like) are retried shortly, so one bad moment
/// does not stop the listener; a run of them is logged when it starts, every
/// `FAILURES_PER_LOG` retries (about 5 s) while it lasts, and when it ends.
pub async fn accept_loop<F, Fut>(core: Arc<Core>, listener: TcpListener, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // Failed accepts in a row (a listener out of file descriptors fails every 50 ms).
    let mut failing: u64 = 0;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = core.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((socket, peer)) => {
                if failing > 0 {
                    tracing::info!(failed = failing, "accepting connections again");
                    failing = 0;
                }
                // We coalesce our own writes, so Nagle only adds latency.
                if let Err(e) = socket.set_nodelay(true) {
                    tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                }
                core.tasks.spawn(serve(socket, peer));
            }
            Err(e) => {
                if failing.is_multiple_of(FAILURES_PER_LOG) {
                    tracing::warn!(error = %e, failed = failing + 1, "accept failed");
                }
                failing += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
