//! A frame-level AMQP 0-9-1 client built on the `protocol-amqp` codec.
//!
//! Why: protocol violations (garbage instead of the protocol header,
//! oversized frames) cannot be produced through lapin, and they are exactly
//! the cases where the broker must answer with a connection-level error
//! instead of misbehaving.

use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use bytes::{Bytes, BytesMut};
use protocol_amqp::{
    ChannelId, ChannelOpen, ConnectionOpen, ConnectionStartOk, ConnectionTune, ConnectionTuneOk,
    FieldTable, Frame, Method, PROTOCOL_HEADER, ShortStr, decode_frame, encode_frame,
    encode_method,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::within;

/// A raw TCP connection to the broker that speaks in frames.
pub struct RawClient {
    stream: TcpStream,
    /// Bytes read but not yet decoded into a frame.
    buf: BytesMut,
}

impl RawClient {
    /// Connects (bounded by [`crate::TIMEOUT`]); sends nothing yet.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<RawClient> {
        let stream = within("raw TCP connect", TcpStream::connect(addr))
            .await
            .with_context(|| format!("connect to {addr}"))?;
        Ok(RawClient {
            stream,
            buf: BytesMut::with_capacity(8192),
        })
    }

    /// Writes raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream
            .write_all(bytes)
            .await
            .context("write to broker")
    }

    /// Writes one frame.
    pub async fn send_frame(&mut self, frame: &Frame) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        encode_frame(frame, &mut out);
        self.send_bytes(&out).await
    }

    /// Writes one method frame.
    pub async fn send_method(
        &mut self,
        channel: ChannelId,
        method: impl Into<Method>,
    ) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        encode_method(channel, &method.into(), &mut out);
        self.send_bytes(&out).await
    }

    /// Reads until the peer closes the socket and returns everything that
    /// arrived (including bytes already buffered).
    pub async fn read_to_end(&mut self) -> anyhow::Result<Bytes> {
        let mut rest = Vec::new();
        within(
            "the broker to close the socket",
            self.stream.read_to_end(&mut rest),
        )
        .await
        .context("read until EOF")?;
        self.buf.extend_from_slice(&rest);
        Ok(self.buf.split().freeze())
    }

    /// The next frame, or `None` if the broker closed the socket cleanly
    /// between frames. Decodes without a size limit (we are the client).
    pub async fn recv_frame(&mut self) -> anyhow::Result<Option<Frame>> {
        within("a frame from the broker", async {
            loop {
                if let Some(frame) = decode_frame(&mut self.buf, 0).context("decode a frame")? {
                    return Ok(Some(frame));
                }
                let n = self.stream.read_buf(&mut self.buf).await.context("read")?;
                if n == 0 {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    bail!(
                        "connection closed in the middle of a frame ({} bytes left)",
                        self.buf.len()
                    );
                }
            }
        })
        .await
    }

    /// The next method, skipping heartbeats; fails on EOF or on a content
    /// frame.
    pub async fn recv_method(&mut self) -> anyhow::Result<(ChannelId, Method)> {
        loop {
            match self.recv_frame().await? {
                Some(Frame::Method { channel, method }) => return Ok((channel, method)),
                Some(Frame::Heartbeat { .. }) => continue,
                Some(other) => bail!("expected a method frame, got {other:?}"),
                None => bail!("broker closed the connection while a method was expected"),
            }
        }
    }

    /// Protocol header, start-ok (PLAIN guest/guest), tune-ok (accepting the
    /// broker's limits, no heartbeats) and open of vhost `/`. Returns the
    /// broker's tune values.
    pub async fn handshake(addr: SocketAddr) -> anyhow::Result<(RawClient, ConnectionTune)> {
        RawClient::handshake_with_heartbeat(addr, 0).await
    }

    /// Like [`RawClient::handshake`], but tune-ok asks for `heartbeat`
    /// seconds (0 = off), so heartbeat enforcement can be tested.
    pub async fn handshake_with_heartbeat(
        addr: SocketAddr,
        heartbeat: u16,
    ) -> anyhow::Result<(RawClient, ConnectionTune)> {
        let mut client = RawClient::connect(addr).await?;
        client.send_bytes(&PROTOCOL_HEADER).await?;
        match client.recv_method().await? {
            (0, Method::ConnectionStart(_)) => {}
            other => bail!("expected connection.start, got {other:?}"),
        }
        client
            .send_method(
                0,
                ConnectionStartOk {
                    client_properties: FieldTable::new(),
                    mechanism: ShortStr::from_static("PLAIN"),
                    response: Bytes::from_static(b"\0guest\0guest"),
                    locale: ShortStr::from_static("en_US"),
                },
            )
            .await?;
        let tune = match client.recv_method().await? {
            (0, Method::ConnectionTune(tune)) => tune,
            other => bail!("expected connection.tune, got {other:?}"),
        };
        client
            .send_method(
                0,
                ConnectionTuneOk {
                    channel_max: tune.channel_max,
                    frame_max: tune.frame_max,
                    heartbeat,
                },
            )
            .await?;
        client
            .send_method(
                0,
                ConnectionOpen {
                    virtual_host: ShortStr::from_static("/"),
                },
            )
            .await?;
        match client.recv_method().await? {
            (0, Method::ConnectionOpenOk(_)) => {}
            other => bail!("expected connection.open-ok, got {other:?}"),
        }
        Ok((client, tune))
    }

    /// Opens `channel` and waits for channel.open-ok.
    pub async fn open_channel(&mut self, channel: ChannelId) -> anyhow::Result<()> {
        self.send_method(channel, ChannelOpen).await?;
        match self.recv_method().await? {
            (c, Method::ChannelOpenOk(_)) if c == channel => Ok(()),
            other => bail!("expected channel.open-ok on {channel}, got {other:?}"),
        }
    }
}
