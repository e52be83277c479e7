//! MQTT over WebSocket (`/mqtt`, subprotocol `mqtt`), as browsers and MQTT.js use it. The
//! WebSocket is adapted to a byte stream so the ordinary connection task serves it: binary
//! messages in, one binary message per write out.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use super::{Shared, connection};

/// The path MQTT clients connect to.
pub const PATH: &str = "/mqtt";

/// Accepts WebSocket connections until shutdown.
pub async fn run(shared: Arc<Shared>, listener: TcpListener) {
    let core = shared.core.clone();
    crate::listener::accept_loop(core, listener, move |socket, peer| {
        let shared = shared.clone();
        async move {
            let local = socket.local_addr().unwrap_or(peer);
            match accept(socket).await {
                Ok(ws) => {
                    let (r, w) = tokio::io::split(WsBytes::new(ws));
                    connection::serve(shared, Box::new(r), Box::new(w), peer, local).await;
                }
                Err(e) => tracing::info!(%peer, error = %e, "WebSocket handshake failed"),
            }
        }
    })
    .await;
}

async fn accept(
    socket: TcpStream,
) -> Result<WebSocketStream<TcpStream>, tokio_tungstenite::tungstenite::Error> {
    let handshake = tokio_tungstenite::accept_hdr_async(socket, check_request);
    tokio::time::timeout(std::time::Duration::from_secs(10), handshake)
        .await
        .map_err(|_| {
            tokio_tungstenite::tungstenite::Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "handshake timeout",
            ))
        })?
}

/// Serves only `/mqtt`, and echoes the `mqtt` subprotocol when the client asks for it.
// The signature is tungstenite's callback; its error type is what it is.
#[allow(clippy::result_large_err)]
fn check_request(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    if req.uri().path() != PATH {
        let mut refused = ErrorResponse::new(Some(format!("MQTT is served on {PATH}")));
        *refused.status_mut() = StatusCode::NOT_FOUND;
        return Err(refused);
    }
    let wants_mqtt = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("mqtt"));
    if wants_mqtt {
        resp.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
    }
    Ok(resp)
}

/// A WebSocket seen as a byte stream.
struct WsBytes {
    ws: WebSocketStream<TcpStream>,
    pending: Bytes,
}

impl WsBytes {
    fn new(ws: WebSocketStream<TcpStream>) -> WsBytes {
        WsBytes {
            ws,
            pending: Bytes::new(),
        }
    }
}

fn to_io(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    match e {
        tokio_tungstenite::tungstenite::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl AsyncRead for WsBytes {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.pending = data,
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "MQTT over WebSocket is binary",
                    )));
                }
                // Pings are answered by the WebSocket layer.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

impl AsyncWrite for WsBytes {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(to_io)?;
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(to_io)
    }
}
