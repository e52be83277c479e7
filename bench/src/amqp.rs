//! A minimal AMQP 0-9-1 client: one connection, channel 1, frames encoded
//! with `protocol-amqp` straight into a buffer that is written in batches.
//!
//! Setup calls ([`AmqpConn::call`]) are synchronous request/reply; the data
//! path is split: producers append pre-encoded publishes
//! ([`PublishTemplate`]) to a buffer, consumers cut incoming bytes with
//! [`next_incoming`], which parses `basic.deliver` without allocating.

use std::net::IpAddr;

use bytes::{Buf, Bytes, BytesMut};
use protocol_amqp::{
    BasicConsume, BasicProperties, BasicPublish, BasicQos, ChannelOpen, ConfirmSelect,
    ConnectionOpen, ConnectionStartOk, ConnectionTuneOk, FRAME_BODY, FRAME_END, FRAME_HEADER,
    FRAME_HEADER_SIZE, FRAME_HEARTBEAT, FRAME_METHOD, FieldTable, Method, PROTOCOL_HEADER,
    QueueDeclare, QueueDelete, ShortStr, encode_content, encode_method,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::dial::dial;
use crate::error::{Error, Result, io};
use crate::stamp::{STAMP_LEN, Stamp};

/// The channel every connection uses.
pub const CHANNEL: u16 = 1;

/// Largest frame we ask for; the broker may offer less.
const FRAME_MAX: u32 = 131_072;

/// Credentials and vhost.
#[derive(Clone, Debug)]
pub struct Login {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Virtual host.
    pub vhost: String,
}

/// What the data path sees in a frame.
#[derive(Debug)]
pub enum Incoming {
    /// `basic.deliver` (only the tag is parsed).
    Deliver {
        /// Delivery tag for acks.
        tag: u64,
    },
    /// `basic.publish` (not decoded: only the null sink receives these).
    Publish,
    /// A content header.
    Header {
        /// Bytes of body that follow.
        body_size: u64,
    },
    /// A body frame.
    Body(Bytes),
    /// Any other method, fully decoded.
    Method(Method),
    /// A heartbeat.
    Heartbeat,
}

/// Cuts one frame off `buf` (`Ok(None)`: need more bytes).
pub fn next_incoming(buf: &mut BytesMut) -> Result<Option<Incoming>> {
    if buf.len() < FRAME_HEADER_SIZE {
        return Ok(None);
    }
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    let total = FRAME_HEADER_SIZE + size + 1;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    if buf[total - 1] != FRAME_END {
        return Err(Error::Protocol("bad frame end octet".into()));
    }
    let kind = buf[0];
    buf.advance(FRAME_HEADER_SIZE);
    let payload = buf.split_to(size).freeze();
    buf.advance(1);
    Ok(Some(match kind {
        FRAME_METHOD if payload.starts_with(&[0, 60, 0, 60]) => {
            // basic.deliver: consumer-tag (shortstr), delivery-tag (u64), ...
            let tag_len = usize::from(*payload.get(4).unwrap_or(&0));
            let at = 5 + tag_len;
            let tag = payload
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| Error::Protocol("short basic.deliver".into()))?;
            Incoming::Deliver { tag }
        }
        FRAME_METHOD if payload.starts_with(&[0, 60, 0, 40]) => Incoming::Publish,
        FRAME_METHOD => Incoming::Method(Method::decode(&payload)?),
        FRAME_HEADER => {
            let body_size = payload
                .get(4..12)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| Error::Protocol("short content header".into()))?;
            Incoming::Header { body_size }
        }
        FRAME_BODY => Incoming::Body(payload),
        FRAME_HEARTBEAT => Incoming::Heartbeat,
        other => return Err(Error::Protocol(format!("unknown frame type {other}"))),
    }))
}

/// Turns a close method into an error; other methods pass.
fn check_close(method: Method) -> Result<Method> {
    match method {
        Method::ConnectionClose(c) => Err(Error::Closed(format!(
            "connection.close {} {}",
            c.reply_code, c.reply_text
        ))),
        Method::ChannelClose(c) => Err(Error::Closed(format!(
            "channel.close {} {}",
            c.reply_code, c.reply_text
        ))),
        m => Ok(m),
    }
}

/// One AMQP connection with channel 1 open.
#[derive(Debug)]
pub struct AmqpConn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: BytesMut,
    /// Negotiated frame_max.
    pub frame_max: u32,
}

impl AmqpConn {
    /// Connects, logs in with PLAIN, tunes (no heartbeats) and opens
    /// channel 1.
    pub async fn connect(addr: &str, login: &Login) -> Result<AmqpConn> {
        Self::connect_from(addr, None, login).await
    }

    /// [`AmqpConn::connect`] from a chosen local address (see [`crate::dial`]:
    /// spreading many connections over several source addresses).
    pub async fn connect_from(
        addr: &str,
        source: Option<IpAddr>,
        login: &Login,
    ) -> Result<AmqpConn> {
        let stream = dial(addr, source).await?;
        let (reader, writer) = stream.into_split();
        let mut conn = AmqpConn {
            reader,
            writer,
            buf: BytesMut::with_capacity(4096),
            frame_max: FRAME_MAX,
        };
        conn.write(&PROTOCOL_HEADER).await?;
        match conn.recv_method().await? {
            Method::ConnectionStart(_) => {}
            other => return Err(unexpected("connection.start", &other)),
        }
        let response = format!("\0{}\0{}", login.user, login.password);
        conn.send_method(
            0,
            ConnectionStartOk {
                client_properties: FieldTable::new(),
                mechanism: ShortStr::from_static("PLAIN"),
                response: Bytes::from(response.into_bytes()),
                locale: ShortStr::from_static("en_US"),
            }
            .into(),
        )
        .await?;
        let tune = match conn.recv_method().await? {
            Method::ConnectionTune(t) => t,
            other => return Err(unexpected("connection.tune", &other)),
        };
        conn.frame_max = match tune.frame_max {
            0 => FRAME_MAX,
            n => n.min(FRAME_MAX),
        };
        let mut out = BytesMut::new();
        let tune_ok = ConnectionTuneOk {
            channel_max: tune.channel_max,
            frame_max: conn.frame_max,
            heartbeat: 0,
        };
        encode_method(0, &tune_ok.into(), &mut out);
        let open = ConnectionOpen {
            virtual_host: ShortStr::new(login.vhost.clone())
                .map_err(|e| Error::Options(e.to_string()))?,
        };
        encode_method(0, &open.into(), &mut out);
        conn.write(&out).await?;
        match conn.recv_method().await? {
            Method::ConnectionOpenOk(_) => {}
            other => return Err(unexpected("connection.open-ok", &other)),
        }
        conn.call(ChannelOpen.into(), |m| {
            matches!(m, Method::ChannelOpenOk(_))
        })
        .await?;
        Ok(conn)
    }

    /// Writes raw bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer
            .write_all(bytes)
            .await
            .map_err(io("write to broker"))
    }

    async fn send_method(&mut self, channel: u16, method: Method) -> Result<()> {
        let mut out = BytesMut::new();
        encode_method(channel, &method, &mut out);
        self.write(&out).await
    }

    /// Reads more bytes into the buffer; EOF is an error.
    async fn fill(&mut self) -> Result<()> {
        let n = self
            .reader
            .read_buf(&mut self.buf)
            .await
            .map_err(io("read from broker"))?;
        if n == 0 {
            return Err(Error::Closed("EOF".into()));
        }
        Ok(())
    }

    /// The next method (heartbeats and stray content skipped); close
    /// methods become errors.
    async fn recv_method(&mut self) -> Result<Method> {
        loop {
            match next_incoming(&mut self.buf)? {
                Some(Incoming::Method(m)) => return check_close(m),
                Some(_) => continue,
                None => self.fill().await?,
            }
        }
    }

    /// Sends `method` on channel 1 and waits for the reply `is_reply`
    /// accepts.
    pub async fn call(&mut self, method: Method, is_reply: fn(&Method) -> bool) -> Result<Method> {
        let name = method.name();
        self.send_method(CHANNEL, method).await?;
        let reply = self.recv_method().await?;
        if is_reply(&reply) {
            Ok(reply)
        } else {
            Err(Error::Protocol(format!(
                "{name} answered with {}",
                reply.name()
            )))
        }
    }

    /// Declares a queue (durable when `durable`, never auto-delete).
    pub async fn declare_queue(&mut self, name: &str, durable: bool) -> Result<()> {
        let declare = QueueDeclare {
            queue: short(name)?,
            durable,
            ..Default::default()
        };
        self.call(declare.into(), |m| matches!(m, Method::QueueDeclareOk(_)))
            .await
            .map(drop)
    }

    /// Deletes a queue.
    pub async fn delete_queue(&mut self, name: &str) -> Result<()> {
        let delete = QueueDelete {
            queue: short(name)?,
            ..Default::default()
        };
        self.call(delete.into(), |m| matches!(m, Method::QueueDeleteOk(_)))
            .await
            .map(drop)
    }

    /// Turns on publisher confirms.
    pub async fn confirm_select(&mut self) -> Result<()> {
        self.call(ConfirmSelect::default().into(), |m| {
            matches!(m, Method::ConfirmSelectOk(_))
        })
        .await
        .map(drop)
    }

    /// Sets the prefetch count and starts consuming `queue`.
    pub async fn consume(&mut self, queue: &str, prefetch: u16, no_ack: bool) -> Result<()> {
        let qos = BasicQos {
            prefetch_count: prefetch,
            ..Default::default()
        };
        self.call(qos.into(), |m| matches!(m, Method::BasicQosOk(_)))
            .await?;
        let consume = BasicConsume {
            queue: short(queue)?,
            no_ack,
            ..Default::default()
        };
        self.call(consume.into(), |m| matches!(m, Method::BasicConsumeOk(_)))
            .await
            .map(drop)
    }

    /// Splits into the read side (with whatever is already buffered) and
    /// the write side.
    pub fn into_split(self) -> (OwnedReadHalf, BytesMut, OwnedWriteHalf) {
        (self.reader, self.buf, self.writer)
    }
}

fn short(s: &str) -> Result<ShortStr> {
    ShortStr::new(s.to_owned()).map_err(|e| Error::Options(e.to_string()))
}

fn unexpected(wanted: &str, got: &Method) -> Error {
    Error::Protocol(format!("expected {wanted}, got {}", got.name()))
}

/// A `basic.publish` + header + body, encoded once; each message is a copy
/// with a fresh [`Stamp`] patched into the body.
#[derive(Clone, Debug)]
pub struct PublishTemplate {
    bytes: Vec<u8>,
    stamp_at: usize,
}

impl PublishTemplate {
    /// A publish of `size` bytes (at least [`STAMP_LEN`]) to the default
    /// exchange with `routing_key`.
    pub fn new(routing_key: &str, size: usize, persistent: bool, frame_max: u32) -> Result<Self> {
        let method: Method = BasicPublish {
            routing_key: short(routing_key)?,
            ..Default::default()
        }
        .into();
        let props = BasicProperties {
            delivery_mode: Some(if persistent { 2 } else { 1 }),
            ..Default::default()
        };
        let mut head = BytesMut::new();
        encode_content(CHANNEL, &method, &props, &[], frame_max, &mut head);
        let body = vec![b'x'; size.max(STAMP_LEN)];
        let mut bytes = BytesMut::new();
        encode_content(CHANNEL, &method, &props, &body, frame_max, &mut bytes);
        Ok(PublishTemplate {
            bytes: bytes.to_vec(),
            stamp_at: head.len() + FRAME_HEADER_SIZE,
        })
    }

    /// Appends one publish carrying `stamp` to `out`.
    pub fn append(&self, out: &mut BytesMut, stamp: &Stamp) {
        let at = out.len() + self.stamp_at;
        out.extend_from_slice(&self.bytes);
        stamp.write(&mut out[at..at + STAMP_LEN]);
    }

    /// Encoded bytes per message.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true (a publish is at least its frames).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol_amqp::{BasicDeliver, Frame, decode_frame};

    #[test]
    fn template_decodes_as_publish_with_stamp() {
        let t = PublishTemplate::new("q", 100, true, 4096).unwrap();
        let mut out = BytesMut::new();
        let stamp = Stamp {
            run: 1,
            producer: 2,
            seq: 3,
            sent_ns: 4,
        };
        t.append(&mut out, &stamp);
        t.append(&mut out, &stamp);
        for _ in 0..2 {
            assert!(matches!(
                decode_frame(&mut out, 0).unwrap(),
                Some(Frame::Method {
                    method: Method::BasicPublish(_),
                    ..
                })
            ));
            assert!(matches!(
                decode_frame(&mut out, 0).unwrap(),
                Some(Frame::Header { body_size: 100, .. })
            ));
            match decode_frame(&mut out, 0).unwrap() {
                Some(Frame::Body { payload, .. }) => {
                    assert_eq!(Stamp::read(&payload), Some(stamp));
                    assert_eq!(payload.len(), 100);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(out.is_empty());
    }

    #[test]
    fn deliver_fast_path_reads_the_tag() {
        let mut buf = BytesMut::new();
        let deliver: Method = BasicDeliver {
            consumer_tag: ShortStr::from_static("ctag-1"),
            delivery_tag: 42,
            ..Default::default()
        }
        .into();
        encode_content(
            1,
            &deliver,
            &BasicProperties::default(),
            b"hello",
            0,
            &mut buf,
        );
        assert!(matches!(
            next_incoming(&mut buf).unwrap(),
            Some(Incoming::Deliver { tag: 42 })
        ));
        assert!(matches!(
            next_incoming(&mut buf).unwrap(),
            Some(Incoming::Header { body_size: 5 })
        ));
        assert!(
            matches!(next_incoming(&mut buf).unwrap(), Some(Incoming::Body(b)) if &b[..] == b"hello")
        );
        assert!(next_incoming(&mut buf).unwrap().is_none());
    }
}
