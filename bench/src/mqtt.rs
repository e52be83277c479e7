//! A minimal MQTT 3.1.1/5.0 client over a `TcpStream`, encoding with
//! `protocol-mqtt`; PUBLISH is pre-encoded once ([`PublishTemplate`]) and
//! parsed without allocating on the receive side ([`next_incoming`]).

use std::net::IpAddr;
use std::num::NonZeroU16;

use bytes::{Buf, Bytes, BytesMut};
use protocol_mqtt::{
    Connect, Packet, PacketId, ProtocolVersion, QoS, Subscribe, Subscription, SubscriptionOptions,
    TopicFilter, TopicName, decode, encode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::dial::dial;
use crate::error::{Error, Result, io};
use crate::stamp::{STAMP_LEN, Stamp};

/// Largest packet we accept from a broker.
pub(crate) const MAX_PACKET: usize = 16 * 1024 * 1024;

/// Keep-alive asked for in CONNECT, seconds (rumqttd refuses 0).
pub const KEEP_ALIVE: u16 = 1800;

/// Packet type numbers of the acks (high nibble of the first byte).
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBREC: u8 = 5;
const PUBREL: u8 = 6;
const PUBCOMP: u8 = 7;

/// What the data path sees in a packet.
#[derive(Debug)]
pub enum Incoming {
    /// An application message.
    Publish {
        /// Its QoS (0..=2).
        qos: u8,
        /// Packet id (QoS 1/2).
        packet_id: u16,
        /// The payload.
        payload: Bytes,
    },
    /// PUBACK for a packet id.
    PubAck(u16),
    /// PUBREC for a packet id.
    PubRec(u16),
    /// PUBREL for a packet id.
    PubRel(u16),
    /// PUBCOMP for a packet id.
    PubComp(u16),
    /// Anything else, fully decoded (boxed: the hot variants stay small).
    Other(Box<Packet>),
}

/// Reads the Variable Byte Integer at the start of `b`: (value, length).
fn var_int(b: &[u8]) -> Result<Option<(usize, usize)>> {
    let mut value = 0usize;
    for (i, &byte) in b.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if b.len() >= 4 {
        Err(Error::Protocol("bad remaining length".into()))
    } else {
        Ok(None)
    }
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| Error::Protocol("truncated packet".into()))
}

/// Cuts one packet off `buf` (`Ok(None)`: need more bytes).
pub fn next_incoming(buf: &mut BytesMut, version: ProtocolVersion) -> Result<Option<Incoming>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let Some((remaining, len_len)) = var_int(&buf[1..])? else {
        return Ok(None);
    };
    let total = 1 + len_len + remaining;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let kind = first >> 4;
    if !(PUBLISH..=PUBCOMP).contains(&kind) {
        return match decode(buf, Some(version), MAX_PACKET)? {
            Some(p) => Ok(Some(Incoming::Other(Box::new(p)))),
            None => Err(Error::Protocol("packet did not decode".into())),
        };
    }
    let mut packet = buf.split_to(total).freeze();
    packet.advance(1 + len_len);
    if kind != PUBLISH {
        let id = u16_at(&packet, 0)?;
        return Ok(Some(match kind {
            PUBACK => Incoming::PubAck(id),
            PUBREC => Incoming::PubRec(id),
            PUBREL => Incoming::PubRel(id),
            _ => Incoming::PubComp(id),
        }));
    }
    let qos = (first >> 1) & 0b11;
    let mut at = 2 + usize::from(u16_at(&packet, 0)?);
    let mut packet_id = 0;
    if qos > 0 {
        packet_id = u16_at(&packet, at)?;
        at += 2;
    }
    if version == ProtocolVersion::V5 {
        let (props, n) = var_int(packet.get(at..).unwrap_or_default())?
            .ok_or_else(|| Error::Protocol("truncated properties".into()))?;
        at += n + props;
    }
    if at > packet.len() {
        return Err(Error::Protocol("truncated PUBLISH".into()));
    }
    packet.advance(at);
    Ok(Some(Incoming::Publish {
        qos,
        packet_id,
        payload: packet,
    }))
}

/// Appends a PUBACK/PUBREC/PUBREL/PUBCOMP in its shortest form (valid in
/// 3.1.1 and, as "Success without properties", in 5.0).
pub fn put_ack(out: &mut BytesMut, kind: u8, packet_id: u16) {
    let flags = if kind == PUBREL { 0b0010 } else { 0 };
    let [hi, lo] = packet_id.to_be_bytes();
    out.extend_from_slice(&[(kind << 4) | flags, 2, hi, lo]);
}

/// [`put_ack`] kinds.
pub mod ack {
    /// PUBACK.
    pub const PUBACK: u8 = super::PUBACK;
    /// PUBREC.
    pub const PUBREC: u8 = super::PUBREC;
    /// PUBREL.
    pub const PUBREL: u8 = super::PUBREL;
    /// PUBCOMP.
    pub const PUBCOMP: u8 = super::PUBCOMP;
}

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOpts {
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Client id.
    pub client_id: String,
    /// Clean session (3.1.1) / clean start with expiry 0 (5.0).
    pub clean: bool,
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
}

/// One MQTT connection after CONNACK.
#[derive(Debug)]
pub struct MqttConn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: BytesMut,
    /// The connection's protocol version.
    pub version: ProtocolVersion,
}

impl MqttConn {
    /// Connects and waits for a successful CONNACK. Keep-alive is
    /// [`KEEP_ALIVE`] seconds (some brokers refuse 0) and no PINGREQ is ever
    /// sent, so runs must stay shorter than that.
    pub async fn connect(addr: &str, opts: &ConnectOpts) -> Result<MqttConn> {
        Self::connect_from(addr, None, opts).await
    }

    /// [`MqttConn::connect`] from a chosen local address (see [`crate::dial`]:
    /// spreading many connections over several source addresses).
    pub async fn connect_from(
        addr: &str,
        source: Option<IpAddr>,
        opts: &ConnectOpts,
    ) -> Result<MqttConn> {
        let stream = dial(addr, source).await?;
        let (reader, writer) = stream.into_split();
        let mut conn = MqttConn {
            reader,
            writer,
            buf: BytesMut::with_capacity(4096),
            version: opts.version,
        };
        let mut connect = Connect::new(opts.version, opts.client_id.clone(), KEEP_ALIVE);
        connect.clean_start = opts.clean;
        connect.username = opts.user.clone();
        connect.password = opts.password.clone().map(Bytes::from);
        if opts.version == ProtocolVersion::V5 {
            connect.properties.receive_maximum = NonZeroU16::new(u16::MAX);
            if !opts.clean {
                connect.properties.session_expiry_interval = Some(3600);
            }
        }
        conn.send(&Packet::Connect(connect)).await?;
        match conn.recv_other().await? {
            Packet::ConnAck(ack) if !ack.code.is_error() => Ok(conn),
            Packet::ConnAck(ack) => Err(Error::Closed(format!("CONNACK {:?}", ack.code))),
            other => Err(Error::Protocol(format!(
                "expected CONNACK, got {}",
                other.name()
            ))),
        }
    }

    /// Encodes and writes one packet.
    pub async fn send(&mut self, packet: &Packet) -> Result<()> {
        let mut out = BytesMut::new();
        encode(packet, self.version, &mut out)?;
        self.writer
            .write_all(&out)
            .await
            .map_err(io("write to broker"))
    }

    /// The next packet that is not a PUBLISH or a QoS ack.
    async fn recv_other(&mut self) -> Result<Packet> {
        loop {
            match next_incoming(&mut self.buf, self.version)? {
                Some(Incoming::Other(p)) => return Ok(*p),
                Some(_) => continue,
                None => {
                    let n = self
                        .reader
                        .read_buf(&mut self.buf)
                        .await
                        .map_err(io("read from broker"))?;
                    if n == 0 {
                        return Err(Error::Closed("EOF".into()));
                    }
                }
            }
        }
    }

    /// Subscribes to one filter and waits for a granting SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<()> {
        let filter = TopicFilter::new(filter).map_err(|e| Error::Options(e.to_string()))?;
        let subscribe = Subscribe {
            packet_id: PacketId(NonZeroU16::MIN),
            properties: Default::default(),
            filters: vec![Subscription {
                filter,
                options: SubscriptionOptions::qos(qos),
            }],
        };
        self.send(&Packet::Subscribe(subscribe)).await?;
        match self.recv_other().await? {
            Packet::SubAck(ack) if ack.reason_codes.iter().all(|c| !c.is_error()) => Ok(()),
            Packet::SubAck(ack) => Err(Error::Closed(format!(
                "SUBACK refused: {:?}",
                ack.reason_codes
            ))),
            other => Err(Error::Protocol(format!(
                "expected SUBACK, got {}",
                other.name()
            ))),
        }
    }

    /// Splits into the read side (with whatever is already buffered) and
    /// the write side.
    pub fn into_split(self) -> (OwnedReadHalf, BytesMut, OwnedWriteHalf) {
        (self.reader, self.buf, self.writer)
    }
}

/// A PUBLISH encoded once; each message is a copy with its packet id and
/// [`Stamp`] patched in.
#[derive(Clone, Debug)]
pub struct PublishTemplate {
    bytes: Vec<u8>,
    id_at: Option<usize>,
    stamp_at: usize,
}

impl PublishTemplate {
    /// A PUBLISH of `size` payload bytes (at least [`STAMP_LEN`]).
    pub fn new(topic: &str, qos: QoS, size: usize, version: ProtocolVersion) -> Result<Self> {
        let topic_name = TopicName::new(topic).map_err(|e| Error::Options(e.to_string()))?;
        let size = size.max(STAMP_LEN);
        let mut publish = protocol_mqtt::Publish::new(topic_name, vec![b'x'; size]);
        publish.qos = qos;
        if qos != QoS::AtMostOnce {
            publish.packet_id = Some(PacketId(NonZeroU16::MIN));
        }
        let mut out = BytesMut::new();
        encode(&Packet::Publish(publish), version, &mut out)?;
        let (remaining, len_len) =
            var_int(&out[1..])?.ok_or_else(|| Error::Protocol("template did not encode".into()))?;
        debug_assert_eq!(1 + len_len + remaining, out.len());
        let id_at = (qos != QoS::AtMostOnce).then_some(1 + len_len + 2 + topic.len());
        Ok(PublishTemplate {
            stamp_at: out.len() - size,
            bytes: out.to_vec(),
            id_at,
        })
    }

    /// Appends one PUBLISH with `packet_id` (ignored at QoS 0) and `stamp`.
    pub fn append(&self, out: &mut BytesMut, packet_id: u16, stamp: &Stamp) {
        let base = out.len();
        out.extend_from_slice(&self.bytes);
        if let Some(at) = self.id_at {
            out[base + at..base + at + 2].copy_from_slice(&packet_id.to_be_bytes());
        }
        let at = base + self.stamp_at;
        stamp.write(&mut out[at..at + STAMP_LEN]);
    }

    /// Encoded bytes per message.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(seq: u64) -> Stamp {
        Stamp {
            run: 9,
            producer: 1,
            seq,
            sent_ns: 5,
        }
    }

    #[test]
    fn template_round_trips_through_the_codec_and_the_fast_path() {
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let t = PublishTemplate::new("bench/x/0", qos, 100, version).unwrap();
                let mut out = BytesMut::new();
                t.append(&mut out, 700, &stamp(1));
                let mut copy = out.clone();
                match decode(&mut copy, Some(version), MAX_PACKET).unwrap() {
                    Some(Packet::Publish(p)) => {
                        assert_eq!(p.qos, qos);
                        assert_eq!(p.topic.as_str(), "bench/x/0");
                        let want = (qos != QoS::AtMostOnce).then_some(700);
                        assert_eq!(p.packet_id.map(|id| id.get()), want);
                        assert_eq!(Stamp::read(&p.payload), Some(stamp(1)));
                    }
                    other => panic!("{other:?}"),
                }
                match next_incoming(&mut out, version).unwrap() {
                    Some(Incoming::Publish {
                        payload, qos: q, ..
                    }) => {
                        assert_eq!(q, qos.as_u8());
                        assert_eq!(payload.len(), 100);
                        assert_eq!(Stamp::read(&payload), Some(stamp(1)));
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn acks_decode_with_the_codec() {
        for kind in [PUBACK, PUBREC, PUBREL, PUBCOMP] {
            let mut out = BytesMut::new();
            put_ack(&mut out, kind, 513);
            let mut copy = out.clone();
            let p = decode(&mut copy, Some(ProtocolVersion::V5), MAX_PACKET)
                .unwrap()
                .unwrap();
            assert_eq!(p.packet_type(), kind);
            let got = next_incoming(&mut out, ProtocolVersion::V311).unwrap();
            assert!(matches!(
                got,
                Some(
                    Incoming::PubAck(513)
                        | Incoming::PubRec(513)
                        | Incoming::PubRel(513)
                        | Incoming::PubComp(513)
                )
            ));
        }
    }
}
