//! The MQTT listeners: plain TCP and MQTTS (TLS).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{Shared, connection};

/// Accepts MQTT connections until shutdown.
pub async fn run(shared: Arc<Shared>, listener: TcpListener) {
    let core = shared.core.clone();
    crate::listener::accept_loop(core, listener, move |socket, peer| {
        connection::serve_tcp(shared.clone(), socket, peer)
    })
    .await;
}

/// Accepts MQTTS connections until shutdown: each socket does the TLS handshake in its own
/// task, then is served like a plain one. A failed handshake is logged and closed.
pub async fn run_tls(shared: Arc<Shared>, listener: TcpListener, tls: TlsAcceptor) {
    let core = shared.core.clone();
    crate::listener::accept_loop(core, listener, move |socket, peer| {
        let shared = shared.clone();
        let tls = tls.clone();
        async move {
            let local = socket.local_addr().unwrap_or(peer);
            let Some(stream) = crate::tls::handshake(&tls, socket, peer, "mqtts").await else {
                return;
            };
            let (read_half, writer) = tokio::io::split(stream);
            connection::serve(shared, Box::new(read_half), Box::new(writer), peer, local).await;
        }
    })
    .await;
}
