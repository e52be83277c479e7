//! The [`Packet`] enum (the whole wire vocabulary), one file per packet
//! type, and the framing entry points [`decode`] and [`encode`].
//!
//! A packet is a fixed header — type (high nibble) and flags (low nibble)
//! in one byte, then the Remaining Length as a Variable Byte Integer — and
//! a body of exactly that many bytes.

mod auth;
mod connack;
mod connect;
mod disconnect;
mod pub_ack;
mod publish;
mod suback;
mod subscribe;
mod unsuback;
mod unsubscribe;

pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use pub_ack::{PubAck, PubComp, PubRec, PubRel};
pub use publish::Publish;
pub use suback::SubAck;
pub use subscribe::{RetainHandling, Subscribe, Subscription, SubscriptionOptions};
pub use unsuback::UnsubAck;
pub use unsubscribe::Unsubscribe;

use bytes::{Buf, BytesMut};

use crate::codec::{Counter, Reader, Sink, parse_var_int, var_int_len};
use crate::error::{DecodeError, EncodeError};
use crate::types::ProtocolVersion;

/// Packet type numbers (high nibble of the first byte).
pub mod packet_type {
    /// CONNECT.
    pub const CONNECT: u8 = 1;
    /// CONNACK.
    pub const CONNACK: u8 = 2;
    /// PUBLISH.
    pub const PUBLISH: u8 = 3;
    /// PUBACK.
    pub const PUBACK: u8 = 4;
    /// PUBREC.
    pub const PUBREC: u8 = 5;
    /// PUBREL.
    pub const PUBREL: u8 = 6;
    /// PUBCOMP.
    pub const PUBCOMP: u8 = 7;
    /// SUBSCRIBE.
    pub const SUBSCRIBE: u8 = 8;
    /// SUBACK.
    pub const SUBACK: u8 = 9;
    /// UNSUBSCRIBE.
    pub const UNSUBSCRIBE: u8 = 10;
    /// UNSUBACK.
    pub const UNSUBACK: u8 = 11;
    /// PINGREQ.
    pub const PINGREQ: u8 = 12;
    /// PINGRESP.
    pub const PINGRESP: u8 = 13;
    /// DISCONNECT.
    pub const DISCONNECT: u8 = 14;
    /// AUTH (5.0 only).
    pub const AUTH: u8 = 15;
}

use packet_type as pt;

/// Every MQTT control packet, both directions, both versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// Client → server: open a session.
    Connect(Connect),
    /// Server → client: answer to CONNECT.
    ConnAck(ConnAck),
    /// Either way: an application message.
    Publish(Publish),
    /// QoS 1 acknowledgement.
    PubAck(PubAck),
    /// QoS 2, step 2.
    PubRec(PubRec),
    /// QoS 2, step 3.
    PubRel(PubRel),
    /// QoS 2, step 4.
    PubComp(PubComp),
    /// Client → server: add subscriptions.
    Subscribe(Subscribe),
    /// Server → client: answer to SUBSCRIBE.
    SubAck(SubAck),
    /// Client → server: remove subscriptions.
    Unsubscribe(Unsubscribe),
    /// Server → client: answer to UNSUBSCRIBE.
    UnsubAck(UnsubAck),
    /// Client → server keep-alive probe.
    PingReq,
    /// Server → client answer to PINGREQ.
    PingResp,
    /// Either way (server → client only in 5.0): closing the connection.
    Disconnect(Disconnect),
    /// 5.0 extended authentication step.
    Auth(Auth),
}

impl Packet {
    /// The packet type number ([`packet_type`]).
    pub fn packet_type(&self) -> u8 {
        match self {
            Packet::Connect(_) => pt::CONNECT,
            Packet::ConnAck(_) => pt::CONNACK,
            Packet::Publish(_) => pt::PUBLISH,
            Packet::PubAck(_) => pt::PUBACK,
            Packet::PubRec(_) => pt::PUBREC,
            Packet::PubRel(_) => pt::PUBREL,
            Packet::PubComp(_) => pt::PUBCOMP,
            Packet::Subscribe(_) => pt::SUBSCRIBE,
            Packet::SubAck(_) => pt::SUBACK,
            Packet::Unsubscribe(_) => pt::UNSUBSCRIBE,
            Packet::UnsubAck(_) => pt::UNSUBACK,
            Packet::PingReq => pt::PINGREQ,
            Packet::PingResp => pt::PINGRESP,
            Packet::Disconnect(_) => pt::DISCONNECT,
            Packet::Auth(_) => pt::AUTH,
        }
    }

    /// The packet's name as the specs spell it, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }

    /// The whole encoded size in bytes (fixed header included), as
    /// [`encode`] would write it — what a 5.0 Maximum Packet Size limits.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let body = self.body_len(version)?;
        Ok(1 + var_int_len(body) + body)
    }

    fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let mut count = Counter::default();
        self.write_body(version, &mut count)?;
        if count.0 > crate::types::MAX_VAR_INT_USIZE {
            return Err(EncodeError::VarIntOutOfRange(count.0));
        }
        Ok(count.0)
    }

    fn flags(&self) -> u8 {
        match self {
            Packet::Publish(p) => p.flags(),
            Packet::PubRel(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => 0b0010,
            _ => 0,
        }
    }

    fn write_body<S: Sink>(&self, version: ProtocolVersion, s: &mut S) -> Result<(), EncodeError> {
        match self {
            Packet::Connect(p) => p.write(s),
            Packet::ConnAck(p) => p.write(version, s),
            Packet::Publish(p) => p.write(version, s),
            Packet::PubAck(p) => p.write(version, s),
            Packet::PubRec(p) => p.write(version, s),
            Packet::PubRel(p) => p.write(version, s),
            Packet::PubComp(p) => p.write(version, s),
            Packet::Subscribe(p) => p.write(version, s),
            Packet::SubAck(p) => p.write(version, s),
            Packet::Unsubscribe(p) => p.write(version, s),
            Packet::UnsubAck(p) => p.write(version, s),
            Packet::PingReq | Packet::PingResp => Ok(()),
            Packet::Disconnect(p) => p.write(version, s),
            Packet::Auth(p) => p.write(version, s),
        }
    }
}

/// Appends `packet`, encoded for a `version` connection, to `dst`.
///
/// 3.1.1 encoding leaves out every 5.0-only part (properties, reason codes
/// of acks/DISCONNECT, subscription options beyond QoS). A CONNECT is
/// written in its own `version` field. On error nothing is written.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let body = packet.body_len(version)?;
    dst.reserve(1 + var_int_len(body) + body);
    dst.put_u8((packet.packet_type() << 4) | packet.flags());
    dst.put_var_int(body)?;
    packet.write_body(version, dst)
}

/// Checks the first byte of a fixed header before anything else is read.
fn check_first_byte(
    packet_type: u8,
    flags: u8,
    version: Option<ProtocolVersion>,
) -> Result<(), DecodeError> {
    if packet_type == 0 || (packet_type == pt::AUTH && version == Some(ProtocolVersion::V311)) {
        return Err(DecodeError::InvalidPacketType(packet_type));
    }
    if version.is_none() && packet_type != pt::CONNECT {
        return Err(DecodeError::ExpectedConnect(packet_type));
    }
    let ok = match packet_type {
        // QoS 3 is reserved; DUP must be 0 on QoS 0 [MQTT-3.3.1-2].
        pt::PUBLISH => {
            let qos = (flags >> 1) & 0b11;
            qos != 3 && !(qos == 0 && flags & 0b1000 != 0)
        }
        pt::PUBREL | pt::SUBSCRIBE | pt::UNSUBSCRIBE => flags == 0b0010,
        _ => flags == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidFlags { packet_type, flags })
    }
}

/// Takes one packet off the front of `src`.
///
/// `version` is the connection's version, `None` until CONNECT has been
/// received (only CONNECT is accepted then; it carries its own version).
/// A later CONNECT still decodes: rejecting it as a protocol violation is the
/// broker's call, as are direction checks (a client sending CONNACK, or a
/// Subscription Identifier in PUBLISH) and reason codes that do not belong
/// to the packet (kept as received, never rejected here).
/// `max_packet_size` limits the whole packet (fixed header included, as
/// 5.0's Maximum Packet Size counts it); it is checked from the fixed header
/// alone, before the body is waited for.
///
/// `Ok(None)`: `src` does not hold a whole packet yet and nothing was
/// consumed. `Ok(Some(_))`: exactly one packet was consumed; binary fields
/// and the PUBLISH payload are zero-copy slices of `src`'s storage.
/// `Err(_)`: the connection must be closed (5.0: after a DISCONNECT with
/// [`DecodeError::reason_code`]); how much of `src` was consumed is
/// unspecified.
pub fn decode(
    src: &mut BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    let Some(&first) = src.first() else {
        return Ok(None);
    };
    let (packet_type, flags) = (first >> 4, first & 0x0F);
    check_first_byte(packet_type, flags, version)?;
    let strict = version == Some(ProtocolVersion::V5);
    let Some((remaining, len_len)) = parse_var_int(&src[1..], strict)? else {
        return Ok(None);
    };
    let remaining = usize::try_from(remaining).map_err(|_| DecodeError::BadVarInt)?;
    let size = 1 + len_len + remaining;
    if size > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    if src.len() < size {
        return Ok(None);
    }
    let mut frame = src.split_to(size).freeze();
    frame.advance(1 + len_len);
    let conn_version = match version {
        Some(v) => v,
        None => {
            // Only CONNECT gets here without a version; it names its own.
            let mut r = Reader::new(frame, false);
            let connect = Connect::decode(&mut r)?;
            r.finish()?;
            return Ok(Some(Packet::Connect(connect)));
        }
    };
    let mut r = Reader::new(frame, strict);
    let packet = decode_body(packet_type, flags, &mut r, conn_version)?;
    r.finish()?;
    Ok(Some(packet))
}

fn decode_body(
    packet_type: u8,
    flags: u8,
    r: &mut Reader,
    v: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    Ok(match packet_type {
        pt::CONNECT => Packet::Connect(Connect::decode(r)?),
        pt::CONNACK => Packet::ConnAck(ConnAck::decode(r, v)?),
        pt::PUBLISH => Packet::Publish(Publish::decode(flags, r, v)?),
        pt::PUBACK => Packet::PubAck(PubAck::decode(r, v)?),
        pt::PUBREC => Packet::PubRec(PubRec::decode(r, v)?),
        pt::PUBREL => Packet::PubRel(PubRel::decode(r, v)?),
        pt::PUBCOMP => Packet::PubComp(PubComp::decode(r, v)?),
        pt::SUBSCRIBE => Packet::Subscribe(Subscribe::decode(r, v)?),
        pt::SUBACK => Packet::SubAck(SubAck::decode(r, v)?),
        pt::UNSUBSCRIBE => Packet::Unsubscribe(Unsubscribe::decode(r, v)?),
        pt::UNSUBACK => Packet::UnsubAck(UnsubAck::decode(r, v)?),
        pt::PINGREQ => Packet::PingReq,
        pt::PINGRESP => Packet::PingResp,
        pt::DISCONNECT => Packet::Disconnect(Disconnect::decode(r, v)?),
        pt::AUTH => Packet::Auth(Auth::decode(r)?),
        other => return Err(DecodeError::InvalidPacketType(other)),
    })
}
