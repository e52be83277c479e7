//! The connection task: one per client. It reads frames, runs channel methods against the
//! core, receives deliveries and confirms on its mailbox, keeps heartbeats, and writes
//! everything a round produced in one socket write.
//!
//! ```text
//!  header ─> handshake ─> open ──(client close / error / shutdown)──> closing ─> done
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{FutureExt, StreamExt};
use protocol_amqp::{
    BasicCancel, CommandAssembler, ConnectionClose, ConnectionCloseOk, Frame, Method,
    PROTOCOL_HEADER, ShortStr, check_protocol_header, encode_frame, reply_code,
};
use rustc_hash::FxHashMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use super::Limits;
use super::channel::Channel;
use super::codec::{DecodeError, FrameDecoder};
use super::handshake::{ClientCaps, HandshakeEnd};
use crate::core::queue::{QueueCmd, QueueHandle, Settle};
use crate::core::registry::{ConnectionMeta, Counted, IoCounters, Protocol, Registered};
use crate::core::routes::RouteCache;
use crate::core::vhost::Vhost;
use crate::core::{ChannelKey, ConnEvent, ConnTx, Core};
use crate::error::AmqpError;

/// Read half of a connection's transport (TCP or TLS).
pub(crate) type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// Write half of a connection's transport.
pub(crate) type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;
/// Frame reader of a connection.
pub(crate) type Reader = FramedRead<Counted<ReadHalf>, FrameDecoder>;

/// How long we wait for close-ok after sending connection.close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Frames handled per round before the output is written.
const READ_BATCH: usize = 64;
/// Mailbox events handled per round.
const EVENT_BATCH: usize = 256;

/// State of one client connection.
pub(crate) struct Conn {
    pub(crate) core: Arc<Core>,
    pub(crate) id: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) limits: Limits,
    pub(crate) caps: ClientCaps,
    pub(crate) frame_max: u32,
    pub(crate) channel_max: u16,
    pub(crate) heartbeat: u16,
    pub(crate) tx: ConnTx,
    pub(crate) channels: FxHashMap<u16, Channel>,
    /// Channel instance → channel number, for routing mailbox events.
    pub(crate) owners: FxHashMap<ChannelKey, u16>,
    /// No-ack deliveries written this round, settled once the write is done.
    pub(crate) auto_settle: Vec<(QueueHandle, ChannelKey, u64)>,
    writer: WriteHalf,
    pub(crate) out: BytesMut,
    last_send: Instant,
    last_recv: Instant,
    /// The memory alarm stopped this publisher: the socket is not read until it clears.
    pub(crate) publish_blocked: bool,
    /// User name from connection.start-ok.
    pub(crate) user: String,
    /// The vhost from connection.open (None until then).
    pub(crate) vhost: Option<Arc<Vhost>>,
    /// The user's permissions in the vhost, and the user store's generation they were read at
    /// (read again when it changes, so permission changes apply to open connections).
    pub(crate) permission: Option<(u64, Arc<crate::core::access::Permission>)>,
    /// The client's `connection_name` property.
    pub(crate) client_name: Option<String>,
    /// Bytes in and out of the socket.
    io: Arc<IoCounters>,
    /// Listed in the connection registry from connection.open-ok until the task ends.
    pub(crate) registered: Option<Registered>,
}

/// Serves one accepted plain TCP socket until it closes.
pub(crate) async fn serve(core: Arc<Core>, socket: TcpStream, peer: SocketAddr, limits: Limits) {
    let local = socket.local_addr().unwrap_or(peer);
    let (read_half, writer) = socket.into_split();
    serve_transport(
        core,
        Box::new(read_half),
        Box::new(writer),
        peer,
        local,
        limits,
    )
    .await;
}

/// Serves one client over any transport (TCP, TLS) until it closes.
pub(crate) async fn serve_transport(
    core: Arc<Core>,
    mut read_half: ReadHalf,
    mut writer: WriteHalf,
    peer: SocketAddr,
    local: SocketAddr,
    limits: Limits,
) {
    let mut header = [0u8; 8];
    match tokio::time::timeout(Duration::from_secs(10), read_half.read_exact(&mut header)).await {
        Ok(Ok(_)) => {}
        _ => {
            tracing::debug!(%peer, "no protocol header");
            return;
        }
    }
    if check_protocol_header(&header).is_err() {
        tracing::info!(%peer, header = ?header, "bad protocol header; answering with ours");
        let _ = writer.write_all(&PROTOCOL_HEADER).await;
        let _ = writer.shutdown().await;
        return;
    }
    let io = Arc::new(IoCounters::default());
    // The 8 header bytes were read before the counting reader existed.
    io.recv.fetch_add(8, std::sync::atomic::Ordering::Relaxed);
    let mut reader = FramedRead::new(
        Counted::new(read_half, io.clone()),
        FrameDecoder {
            frame_max: limits.frame_max,
        },
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let now = Instant::now();
    let mut conn = Conn {
        id: core.next_id(),
        core,
        peer,
        limits,
        caps: ClientCaps::default(),
        frame_max: limits.frame_max,
        channel_max: limits.channel_max,
        heartbeat: 0,
        tx,
        channels: FxHashMap::default(),
        owners: FxHashMap::default(),
        auto_settle: Vec::new(),
        writer,
        out: BytesMut::new(),
        last_send: now,
        last_recv: now,
        publish_blocked: false,
        user: String::new(),
        vhost: None,
        permission: None,
        client_name: None,
        io,
        registered: None,
    };
    // Boxed, like every deep await below: the task then holds only the small idle state
    // between frames, not the largest future it ever awaits (memory per idle connection).
    match Box::pin(conn.handshake(&mut reader)).await {
        Ok(()) => {
            tracing::debug!(%peer, id = conn.id, "connection open");
            let meta = ConnectionMeta {
                protocol: Protocol::Amqp091,
                peer,
                local,
                user: conn.user.clone(),
                vhost: conn.vhost_name().to_string(),
                client_name: conn.client_name.clone(),
                io: conn.io.clone(),
            };
            let registered = conn.core.connections.register(conn.id, meta);
            if let Some(v) = conn.vhost.as_ref().filter(|v| !conn.core.vhost_is_live(v)) {
                registered
                    .info()
                    .close(format!("vhost '{}' is deleted", v.name()));
            }
            conn.registered = Some(registered);
            conn.run(&mut reader, rx).await;
        }
        Err(HandshakeEnd::Error(e)) => {
            tracing::info!(%peer, error = %e, "handshake failed");
            Box::pin(conn.close_with(&mut reader, e)).await;
        }
        Err(HandshakeEnd::Drop) => {}
    }
    conn.release_all().await;
    conn.core
        .connection_closed(conn.vhost_name(), conn.id)
        .await;
    tracing::debug!(%peer, id = conn.id, "connection closed");
}

impl Conn {
    /// Name of the connection's vhost (empty before connection.open).
    pub(crate) fn vhost_name(&self) -> &str {
        self.vhost.as_ref().map_or("", |v| v.name())
    }

    /// Queues one method frame for the next write.
    pub(crate) fn send_method(&mut self, channel: u16, method: Method) {
        encode_frame(&Frame::Method { channel, method }, &mut self.out);
    }

    /// Writes everything queued.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.writer.write_all(&self.out).await;
        self.io.sent(self.out.len());
        self.out.clear();
        self.last_send = Instant::now();
        result
    }

    /// Maps a decode failure to the connection error it causes (I/O errors just end it).
    pub(crate) fn decode_error(e: DecodeError) -> Result<AmqpError, HandshakeEnd> {
        match e {
            DecodeError::Io(_) => Err(HandshakeEnd::Drop),
            DecodeError::Frame(e) => {
                let code = e.reply_code();
                let name = match code {
                    reply_code::SYNTAX_ERROR => "SYNTAX_ERROR",
                    reply_code::COMMAND_INVALID => "COMMAND_INVALID",
                    reply_code::UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
                    _ => "FRAME_ERROR",
                };
                Ok(AmqpError::connection(code, name, e))
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        if self.heartbeat == 0 {
            return None;
        }
        let hb = Duration::from_secs(u64::from(self.heartbeat));
        Some((self.last_send + hb / 2).min(self.last_recv + hb * 2))
    }

    async fn run(&mut self, reader: &mut Reader, mut rx: mpsc::UnboundedReceiver<ConnEvent>) {
        let mut assembler = CommandAssembler::new();
        // Grows with the load; an idle connection holds no event buffer.
        let mut events = Vec::new();
        let shutdown = self.core.shutdown.clone();
        let mut alarm = self.core.memory.subscribe();
        let Some(info) = self.registered.as_ref().map(|r| r.info().clone()) else {
            return;
        };
        loop {
            let timer = self.next_timer();
            let result: Result<bool, AmqpError> = tokio::select! {
                changed = alarm.changed(), if self.publish_blocked => {
                    if changed.is_ok() && !*alarm.borrow_and_update() {
                        self.unblock_publisher();
                    }
                    Ok(true)
                }
                frame = reader.next(), if !self.publish_blocked => match frame {
                    None => return,
                    Some(first) => Box::pin(self.read_round(reader, &mut assembler, first)).await,
                },
                n = rx.recv_many(&mut events, EVENT_BATCH) => {
                    if n == 0 {
                        return;
                    }
                    Box::pin(self.handle_events(&mut events)).await;
                    Ok(true)
                }
                _ = sleep_until_opt(timer) => self.heartbeat_tick(),
                _ = shutdown.cancelled() => Err(AmqpError::connection(
                    reply_code::CONNECTION_FORCED, "CONNECTION_FORCED", "broker shutdown")),
                _ = info.close_requested() => Err(AmqpError::connection(
                    reply_code::CONNECTION_FORCED, "CONNECTION_FORCED", info.close_reason())),
            };
            match result {
                Ok(true) => {}
                Ok(false) => {
                    let _ = self.flush().await;
                    // Over TLS this also sends close_notify after close-ok.
                    let _ = self.writer.shutdown().await;
                    return;
                }
                Err(e) => {
                    tracing::info!(peer = %self.peer, error = %e, "closing connection");
                    Box::pin(self.close_with(reader, e)).await;
                    return;
                }
            }
            if self.flush().await.is_err() {
                return;
            }
            self.settle_written().await;
        }
    }

    /// Handles the frame just read and every frame already buffered behind it.
    async fn read_round(
        &mut self,
        reader: &mut Reader,
        assembler: &mut CommandAssembler,
        first: Result<Frame, DecodeError>,
    ) -> Result<bool, AmqpError> {
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(frame) = next.take() {
            self.last_recv = Instant::now();
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => return Conn::decode_error(e).map_or(Ok(false), Err),
            };
            if !self.handle_frame(assembler, frame).await? {
                return Ok(false);
            }
            handled += 1;
            if handled < READ_BATCH && !self.publish_blocked {
                next = reader.next().now_or_never().flatten();
            }
        }
        Ok(true)
    }

    /// One frame. `Ok(false)` = the client closed the connection.
    async fn handle_frame(
        &mut self,
        assembler: &mut CommandAssembler,
        frame: Frame,
    ) -> Result<bool, AmqpError> {
        let channel = match &frame {
            Frame::Heartbeat { channel: 0 } => return Ok(true),
            Frame::Heartbeat { .. } => {
                return Err(AmqpError::connection(
                    reply_code::UNEXPECTED_FRAME,
                    "UNEXPECTED_FRAME",
                    "heartbeat frame on a non-zero channel",
                ));
            }
            Frame::Method { channel, .. }
            | Frame::Header { channel, .. }
            | Frame::Body { channel, .. } => *channel,
        };
        if channel == 0 {
            let Frame::Method { method, .. } = frame else {
                return Err(AmqpError::connection(
                    reply_code::UNEXPECTED_FRAME,
                    "UNEXPECTED_FRAME",
                    "content frame on channel 0",
                ));
            };
            return self.handle_connection_method(method);
        }
        if self.channels.get(&channel).is_some_and(Channel::is_closing) {
            // After we sent channel.close, everything but close/close-ok is discarded.
            if let Frame::Method { method, .. } = frame {
                match method {
                    Method::ChannelCloseOk(_) => self.forget_channel(channel),
                    Method::ChannelClose(_) => {
                        self.send_method(channel, protocol_amqp::ChannelCloseOk {}.into());
                        self.forget_channel(channel);
                    }
                    _ => {}
                }
            }
            assembler.reset_channel(channel);
            return Ok(true);
        }
        let command = match assembler.feed(frame) {
            Ok(Some(command)) => command,
            Ok(None) => return Ok(true),
            Err(e) => {
                let code = e.reply_code();
                let text = format!("{} - {e}", reply_name(code));
                return if code == reply_code::PRECONDITION_FAILED {
                    assembler.reset_channel(channel);
                    self.channel_error(channel, AmqpError::Channel { code, text }, 60, 40)
                        .await;
                    Ok(true)
                } else {
                    Err(AmqpError::Connection { code, text })
                };
            }
        };
        let (class_id, method_id) = (command.method.class_id(), command.method.method_id());
        match self
            .handle_command(command.channel, command.method, command.content)
            .await
        {
            Ok(()) => Ok(true),
            Err(e @ AmqpError::Channel { .. }) => {
                tracing::info!(peer = %self.peer, channel, error = %e, "channel error");
                assembler.reset_channel(channel);
                self.channel_error(channel, e, class_id, method_id).await;
                Ok(true)
            }
            Err(AmqpError::Connection { code, text }) => Err(AmqpError::Connection { code, text }),
        }
    }

    fn handle_connection_method(&mut self, method: Method) -> Result<bool, AmqpError> {
        match method {
            Method::ConnectionClose(close) => {
                tracing::debug!(peer = %self.peer, code = close.reply_code, text = %close.reply_text, "client closed the connection");
                self.send_method(0, ConnectionCloseOk {}.into());
                Ok(false)
            }
            Method::ConnectionCloseOk(_) => Ok(false),
            Method::ConnectionBlocked(_) | Method::ConnectionUnblocked(_) => Ok(true),
            other => Err(AmqpError::connection(
                reply_code::CHANNEL_ERROR,
                "CHANNEL_ERROR",
                format!("unexpected method '{}' on channel 0", other.name()),
            )),
        }
    }

    fn heartbeat_tick(&mut self) -> Result<bool, AmqpError> {
        let hb = Duration::from_secs(u64::from(self.heartbeat));
        let now = Instant::now();
        if self.publish_blocked {
            // We are not reading the socket: the client's heartbeats wait in it.
            self.last_recv = now;
        }
        if now >= self.last_recv + hb * 2 {
            tracing::info!(peer = %self.peer, heartbeat = self.heartbeat, "missed heartbeats from client; closing the connection");
            return Ok(false);
        }
        if now >= self.last_send + hb / 2 && self.out.is_empty() {
            encode_frame(&Frame::Heartbeat { channel: 0 }, &mut self.out);
        }
        if let Some(vhost) = &self.vhost {
            let version = vhost.topology_version();
            for channel in self.channels.values_mut() {
                RouteCache::forget_if_stale(&mut channel.routes, version);
            }
        }
        Ok(true)
    }

    /// The memory alarm is on: stop reading this publisher's socket until it clears.
    pub(crate) fn block_publisher(&mut self) {
        if self.publish_blocked {
            return;
        }
        self.publish_blocked = true;
        tracing::info!(peer = %self.peer, "publisher blocked by the memory alarm");
        if self.caps.connection_blocked {
            self.send_method(
                0,
                protocol_amqp::ConnectionBlocked {
                    reason: ShortStr::from_static("low on memory"),
                }
                .into(),
            );
        }
    }

    fn unblock_publisher(&mut self) {
        self.publish_blocked = false;
        tracing::info!(peer = %self.peer, "publisher unblocked");
        if self.caps.connection_blocked {
            self.send_method(0, protocol_amqp::ConnectionUnblocked {}.into());
        }
    }

    /// Mailbox events: deliveries, confirms, cancel notifications.
    async fn handle_events(&mut self, events: &mut Vec<ConnEvent>) {
        let mut touched_confirms = Vec::new();
        for event in events.drain(..) {
            match event {
                ConnEvent::Deliver(d) => self.deliver(*d).await,
                // Direct queues are MQTT clean sessions': they never deliver to AMQP.
                ConnEvent::DeliverDirect(_) => {}
                ConnEvent::Confirm { channel, seq, ok } => {
                    if let Some(ch) = self.channels.get_mut(&channel) {
                        ch.confirm_answer(seq, ok);
                        if !touched_confirms.contains(&channel) {
                            touched_confirms.push(channel);
                        }
                    }
                }
                ConnEvent::ConsumerCancelled { owner, tag } => self.consumer_cancelled(owner, tag),
            }
        }
        for channel in touched_confirms {
            self.flush_confirms(channel);
        }
    }

    fn consumer_cancelled(&mut self, owner: ChannelKey, tag: ShortStr) {
        let Some(&channel) = self.owners.get(&owner) else {
            return;
        };
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if ch.consumers.remove(&tag).is_some() && self.caps.consumer_cancel_notify {
            self.send_method(
                channel,
                BasicCancel {
                    consumer_tag: tag,
                    nowait: true,
                }
                .into(),
            );
        }
    }

    /// Settles the no-ack deliveries that the last write put on the wire.
    async fn settle_written(&mut self) {
        if self.auto_settle.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.auto_settle);
        batch.sort_by_key(|(q, _, _)| q.id());
        let mut i = 0;
        while i < batch.len() {
            let (queue, owner) = (batch[i].0.clone(), batch[i].1);
            let mut seqs = Vec::new();
            while i < batch.len() && batch[i].0.id() == queue.id() && batch[i].1 == owner {
                seqs.push(batch[i].2);
                i += 1;
            }
            let _ = queue
                .send(QueueCmd::Settle {
                    owner,
                    seqs,
                    how: Settle::Ack,
                })
                .await;
        }
    }

    /// Sends channel.close for a channel error and releases the channel's resources now.
    async fn channel_error(&mut self, channel: u16, e: AmqpError, class_id: u16, method_id: u16) {
        let AmqpError::Channel { code, text } = e else {
            return;
        };
        self.release_channel(channel).await;
        if let Some(ch) = self.channels.get_mut(&channel) {
            ch.start_closing();
        }
        self.send_method(
            channel,
            protocol_amqp::ChannelClose {
                reply_code: code,
                reply_text: ShortStr::truncating(text),
                class_id,
                method_id,
            }
            .into(),
        );
    }

    /// Sends connection.close, waits a little for close-ok, and ends.
    async fn close_with(&mut self, reader: &mut Reader, e: AmqpError) {
        let (AmqpError::Connection { code, text } | AmqpError::Channel { code, text }) = e;
        self.send_method(
            0,
            ConnectionClose {
                reply_code: code,
                reply_text: ShortStr::truncating(text),
                class_id: 0,
                method_id: 0,
            }
            .into(),
        );
        if self.flush().await.is_err() {
            return;
        }
        let wait = async {
            while let Some(frame) = reader.next().await {
                match frame {
                    Ok(Frame::Method {
                        channel: 0,
                        method: Method::ConnectionCloseOk(_),
                    }) => return,
                    Ok(Frame::Method {
                        channel: 0,
                        method: Method::ConnectionClose(_),
                    }) => {
                        self.send_method(0, ConnectionCloseOk {}.into());
                        let _ = self.flush().await;
                        return;
                    }
                    Ok(_) => continue,
                    Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, wait).await;
        let _ = self.writer.shutdown().await;
    }

    /// Releases every channel (connection end).
    async fn release_all(&mut self) {
        let numbers: Vec<u16> = self.channels.keys().copied().collect();
        for channel in numbers {
            self.release_channel(channel).await;
        }
        self.channels.clear();
        self.owners.clear();
    }

    /// Requeues a channel's unacked messages and removes its consumers, queue by queue.
    pub(crate) async fn release_channel(&mut self, channel: u16) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        let owner = ch.key;
        let queues = ch.take_queues();
        for queue in queues {
            let _ = queue.send(QueueCmd::ChannelClosed { owner }).await;
        }
    }

    /// Drops a closed channel's state.
    pub(crate) fn forget_channel(&mut self, channel: u16) {
        if let Some(ch) = self.channels.remove(&channel) {
            self.owners.remove(&ch.key);
            if let Some(r) = &self.registered {
                r.info().channel_closed(channel);
            }
        }
    }
}

/// The reply-code name used at the start of reply texts.
pub(crate) fn reply_name(code: u16) -> &'static str {
    match code {
        reply_code::CONTENT_TOO_LARGE => "CONTENT_TOO_LARGE",
        reply_code::NO_ROUTE => "NO_ROUTE",
        reply_code::CONNECTION_FORCED => "CONNECTION_FORCED",
        reply_code::ACCESS_REFUSED => "ACCESS_REFUSED",
        reply_code::NOT_FOUND => "NOT_FOUND",
        reply_code::RESOURCE_LOCKED => "RESOURCE_LOCKED",
        reply_code::PRECONDITION_FAILED => "PRECONDITION_FAILED",
        reply_code::FRAME_ERROR => "FRAME_ERROR",
        reply_code::SYNTAX_ERROR => "SYNTAX_ERROR",
        reply_code::COMMAND_INVALID => "COMMAND_INVALID",
        reply_code::CHANNEL_ERROR => "CHANNEL_ERROR",
        reply_code::UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
        reply_code::NOT_ALLOWED => "NOT_ALLOWED",
        reply_code::NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        _ => "INTERNAL_ERROR",
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
