//! The AMQP listeners: plain TCP and AMQPS (TLS).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

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

/// Accepts AMQPS connections until shutdown: each socket does the TLS handshake in its own
/// task, then is served like a plain one. A failed handshake is logged and closed.
pub async fn run_tls(core: Arc<Core>, listener: TcpListener, limits: Limits, tls: TlsAcceptor) {
    let serving = core.clone();
    crate::listener::accept_loop(core, listener, move |socket, peer| {
        let core = serving.clone();
        let tls = tls.clone();
        async move {
            let local = socket.local_addr().unwrap_or(peer);
            let Some(stream) = crate::tls::handshake(&tls, socket, peer, "amqps").await else {
                return;
            };
            let (read_half, writer) = tokio::io::split(stream);
            connection::serve_transport(
                core,
                Box::new(read_half),
                Box::new(writer),
                peer,
                local,
                limits,
            )
            .await;
        }
    })
    .await;
}
