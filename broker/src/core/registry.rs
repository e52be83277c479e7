//! The live connections of every protocol, for operators: who is connected, over what, as
//! whom, since when, how many bytes went each way, and a way to close one.
//!
//! Connection tasks register once their client is authenticated and hold the returned
//! [`Registered`] guard, so an entry can never outlive its connection (the guard removes it
//! on drop, whatever way the task ends). The management API reads the registry and closes
//! connections through each entry's cancellation token; the connection task owns the
//! protocol-specific way to say goodbye (AMQP connection.close 320, MQTT 5.0 DISCONNECT 0x98).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use super::ChannelKey;

/// The protocol a connection speaks, named as the management API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// AMQP 0-9-1.
    Amqp091,
    /// MQTT 3.1.1.
    Mqtt311,
    /// MQTT 5.0.
    Mqtt5,
}

impl Protocol {
    /// RabbitMQ's spelling (`"AMQP 0-9-1"`, `"MQTT 3.1.1"`, `"MQTT 5.0"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Amqp091 => "AMQP 0-9-1",
            Protocol::Mqtt311 => "MQTT 3.1.1",
            Protocol::Mqtt5 => "MQTT 5.0",
        }
    }
}

/// Bytes received and sent on one connection. Created when the socket is accepted (before
/// the handshake, so its bytes count too) and shared with the registry entry.
#[derive(Debug, Default)]
pub struct IoCounters {
    /// Bytes read from the client.
    pub recv: AtomicU64,
    /// Bytes written to the client.
    pub send: AtomicU64,
}

impl IoCounters {
    /// Counts `n` bytes written (for writers that are not wrapped in [`Counted`]).
    pub fn sent(&self, n: usize) {
        self.send.fetch_add(to_u64(n), Ordering::Relaxed);
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// An I/O half that counts the bytes passing through it: one relaxed atomic add per read or
/// write call, which is cheap next to the system call it wraps.
#[derive(Debug)]
pub struct Counted<T> {
    inner: T,
    counters: Arc<IoCounters>,
}

impl<T> Counted<T> {
    /// Wraps `inner`, adding to `counters`.
    pub fn new(inner: T, counters: Arc<IoCounters>) -> Counted<T> {
        Counted { inner, counters }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.counters
                .recv
                .fetch_add(to_u64(read), Ordering::Relaxed);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &result {
            self.counters.sent(*n);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What a connection tells the registry about itself when it registers.
#[derive(Debug, Clone)]
pub struct ConnectionMeta {
    /// Protocol and version.
    pub protocol: Protocol,
    /// Client address.
    pub peer: SocketAddr,
    /// Our address on that socket.
    pub local: SocketAddr,
    /// Authenticated user (empty for anonymous MQTT clients).
    pub user: String,
    /// Virtual host.
    pub vhost: String,
    /// AMQP `connection_name` client property, or the MQTT client id.
    pub client_name: Option<String>,
    /// Byte counters of the socket.
    pub io: Arc<IoCounters>,
}

/// One live connection as operators see it.
#[derive(Debug)]
pub struct ConnectionInfo {
    /// Process-unique connection id (the same id queues know consumers by).
    pub id: u64,
    /// `"PEER -> LOCAL"`, RabbitMQ's connection name, unique among live connections.
    pub name: String,
    /// What the connection said about itself.
    pub meta: ConnectionMeta,
    /// When it was registered (the handshake had succeeded).
    pub connected_at: SystemTime,
    /// Open channels: number → channel instance (AMQP only).
    channels: Mutex<BTreeMap<u16, ChannelKey>>,
    close: CancellationToken,
    close_reason: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl ConnectionInfo {
    /// Asks the connection task to close the connection, telling the client `reason`.
    /// The first reason wins if several operators close it at once.
    pub fn close(&self, reason: impl Into<String>) {
        lock(&self.close_reason).get_or_insert_with(|| reason.into());
        self.close.cancel();
    }

    /// Resolves once [`ConnectionInfo::close`] was called: the connection task waits on it.
    pub fn close_requested(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.close.cancelled()
    }

    /// The reason given to [`ConnectionInfo::close`].
    pub fn close_reason(&self) -> String {
        lock(&self.close_reason)
            .clone()
            .unwrap_or_else(|| "Closed via management API".to_string())
    }

    /// A channel was opened.
    pub fn channel_opened(&self, number: u16, key: ChannelKey) {
        lock(&self.channels).insert(number, key);
    }

    /// A channel is gone.
    pub fn channel_closed(&self, number: u16) {
        lock(&self.channels).remove(&number);
    }

    /// Open channels in number order.
    pub fn channels(&self) -> Vec<(u16, ChannelKey)> {
        lock(&self.channels).iter().map(|(n, k)| (*n, *k)).collect()
    }

    /// Number of open channels.
    pub fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }
}

/// Every live connection, by id. A std mutex: held only to insert, remove or copy out the
/// `Arc`s, never across `.await`.
#[derive(Debug, Default)]
pub struct Registry {
    conns: Mutex<BTreeMap<u64, Arc<ConnectionInfo>>>,
    /// Bytes of connections that have closed, so totals only ever grow (Prometheus counters).
    closed_recv: AtomicU64,
    closed_send: AtomicU64,
}

impl Registry {
    /// Adds a connection; it stays listed until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, id: u64, meta: ConnectionMeta) -> Registered {
        let info = Arc::new(ConnectionInfo {
            id,
            name: format!("{} -> {}", meta.peer, meta.local),
            meta,
            connected_at: SystemTime::now(),
            channels: Mutex::new(BTreeMap::new()),
            close: CancellationToken::new(),
            close_reason: Mutex::new(None),
        });
        lock(&self.conns).insert(id, info.clone());
        Registered {
            registry: self.clone(),
            info,
        }
    }

    /// Live connections in id (= connection) order.
    pub fn list(&self) -> Vec<Arc<ConnectionInfo>> {
        lock(&self.conns).values().cloned().collect()
    }

    /// A live connection by id.
    pub fn get(&self, id: u64) -> Option<Arc<ConnectionInfo>> {
        lock(&self.conns).get(&id).cloned()
    }

    /// A live connection by its name.
    pub fn find(&self, name: &str) -> Option<Arc<ConnectionInfo>> {
        lock(&self.conns).values().find(|c| c.name == name).cloned()
    }

    /// Bytes received and sent since start, over live and closed connections.
    pub fn io_totals(&self) -> (u64, u64) {
        let conns = lock(&self.conns);
        let mut recv = self.closed_recv.load(Ordering::Relaxed);
        let mut send = self.closed_send.load(Ordering::Relaxed);
        for c in conns.values() {
            recv += c.meta.io.recv.load(Ordering::Relaxed);
            send += c.meta.io.send.load(Ordering::Relaxed);
        }
        (recv, send)
    }
}

/// Keeps a connection listed; dropping it removes the entry.
#[derive(Debug)]
pub struct Registered {
    registry: Arc<Registry>,
    info: Arc<ConnectionInfo>,
}

impl Registered {
    /// The entry, shared with the registry.
    pub fn info(&self) -> &Arc<ConnectionInfo> {
        &self.info
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        // Under the registry lock, so `io_totals` never counts these bytes twice or not at all.
        let mut conns = lock(&self.registry.conns);
        conns.remove(&self.info.id);
        let io = &self.info.meta.io;
        self.registry
            .closed_recv
            .fetch_add(io.recv.load(Ordering::Relaxed), Ordering::Relaxed);
        self.registry
            .closed_send
            .fetch_add(io.send.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn meta(port: u16) -> ConnectionMeta {
        ConnectionMeta {
            protocol: Protocol::Amqp091,
            peer: SocketAddr::from(([127, 0, 0, 1], port)),
            local: SocketAddr::from(([127, 0, 0, 1], 5672)),
            user: "guest".into(),
            vhost: "/".into(),
            client_name: None,
            io: Arc::default(),
        }
    }

    #[test]
    fn guard_lists_and_unlists_and_totals_keep_growing() {
        let registry = Arc::new(Registry::default());
        let a = registry.register(1, meta(1000));
        let b = registry.register(2, meta(1001));
        assert_eq!(a.info().name, "127.0.0.1:1000 -> 127.0.0.1:5672");
        assert_eq!(registry.list().len(), 2);
        assert!(registry.find("127.0.0.1:1001 -> 127.0.0.1:5672").is_some());
        a.info().meta.io.sent(10);
        b.info().meta.io.recv.fetch_add(7, Ordering::Relaxed);
        assert_eq!(registry.io_totals(), (7, 10));
        drop(a);
        assert_eq!(registry.list().len(), 1);
        assert!(registry.get(1).is_none());
        assert_eq!(
            registry.io_totals(),
            (7, 10),
            "closed connections still count"
        );
        drop(b);
        assert!(registry.list().is_empty());
        assert_eq!(registry.io_totals(), (7, 10));
    }

    #[tokio::test]
    async fn close_wakes_the_connection_with_the_first_reason() {
        let registry = Arc::new(Registry::default());
        let r = registry.register(1, meta(1000));
        let info = r.info().clone();
        let waiter = tokio::spawn(async move {
            info.close_requested().await;
            info.close_reason()
        });
        r.info().close("maintenance");
        r.info().close("second");
        assert_eq!(waiter.await.expect("join"), "maintenance");
    }

    #[tokio::test]
    async fn counted_io_counts_both_ways() {
        let counters = Arc::new(IoCounters::default());
        let (a, b) = tokio::io::duplex(64);
        let mut a = Counted::new(a, counters.clone());
        let mut b = b;
        a.write_all(b"hello").await.expect("write");
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).await.expect("read");
        b.write_all(b"abc").await.expect("write");
        let mut buf = [0u8; 3];
        a.read_exact(&mut buf).await.expect("read");
        assert_eq!(counters.send.load(Ordering::Relaxed), 5);
        assert_eq!(counters.recv.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn channels_are_tracked_by_number() {
        let registry = Arc::new(Registry::default());
        let r = registry.register(1, meta(1000));
        r.info().channel_opened(2, ChannelKey(20));
        r.info().channel_opened(1, ChannelKey(10));
        assert_eq!(
            r.info().channels(),
            vec![(1, ChannelKey(10)), (2, ChannelKey(20))]
        );
        r.info().channel_closed(1);
        assert_eq!(r.info().channel_count(), 1);
    }
}
