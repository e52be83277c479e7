//! 5.0 properties: the identifier table, a reader that enforces the
//! "no duplicates except User Property" rule, writers, and one struct per
//! property set (per packet, plus the will).
//!
//! On the wire a property list is a Variable Byte Integer length followed by
//! `identifier (Variable Byte Integer) + value` pairs in any order. An
//! identifier not allowed in the packet is a Malformed Packet (0x81); a
//! repeated non-repeatable one is a Protocol Error (0x82) (5.0 §2.2.2).
//! All property fields are `Option`/`Vec` and default to absent, which is
//! also what a 3.1.1 packet carries.

mod connect;
mod other;
mod publish;

pub use connect::{ConnAckProperties, ConnectProperties, WillProperties};
pub use other::{
    AckProperties, AuthProperties, DisconnectProperties, SubscribeProperties, UnsubscribeProperties,
};
pub use publish::PublishProperties;

use std::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;

use crate::codec::{Counter, Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::topic::TopicName;
use crate::types::UserProperty;

/// Property identifiers (5.0 §2.2.2.2, table 2-4).
pub mod id {
    /// Payload Format Indicator (byte): PUBLISH, will.
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    /// Message Expiry Interval (u32 seconds): PUBLISH, will.
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    /// Content Type (string): PUBLISH, will.
    pub const CONTENT_TYPE: u8 = 0x03;
    /// Response Topic (string, a topic name): PUBLISH, will.
    pub const RESPONSE_TOPIC: u8 = 0x08;
    /// Correlation Data (binary): PUBLISH, will.
    pub const CORRELATION_DATA: u8 = 0x09;
    /// Subscription Identifier (varint, 1..=268,435,455): PUBLISH, SUBSCRIBE.
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    /// Session Expiry Interval (u32 seconds): CONNECT, CONNACK, DISCONNECT.
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    /// Assigned Client Identifier (string): CONNACK.
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    /// Server Keep Alive (u16 seconds): CONNACK.
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    /// Authentication Method (string): CONNECT, CONNACK, AUTH.
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    /// Authentication Data (binary): CONNECT, CONNACK, AUTH.
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    /// Request Problem Information (byte 0/1): CONNECT.
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    /// Will Delay Interval (u32 seconds): will.
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    /// Request Response Information (byte 0/1): CONNECT.
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    /// Response Information (string): CONNACK.
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    /// Server Reference (string): CONNACK, DISCONNECT.
    pub const SERVER_REFERENCE: u8 = 0x1C;
    /// Reason String (string): CONNACK, acks, SUBACK, UNSUBACK, DISCONNECT, AUTH.
    pub const REASON_STRING: u8 = 0x1F;
    /// Receive Maximum (u16, non-zero): CONNECT, CONNACK.
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    /// Topic Alias Maximum (u16): CONNECT, CONNACK.
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    /// Topic Alias (u16, non-zero): PUBLISH.
    pub const TOPIC_ALIAS: u8 = 0x23;
    /// Maximum QoS (byte 0/1): CONNACK.
    pub const MAXIMUM_QOS: u8 = 0x24;
    /// Retain Available (byte 0/1): CONNACK.
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    /// User Property (string pair, repeatable): every packet with properties.
    pub const USER_PROPERTY: u8 = 0x26;
    /// Maximum Packet Size (u32, non-zero): CONNECT, CONNACK.
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    /// Wildcard Subscription Available (byte 0/1): CONNACK.
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    /// Subscription Identifier Available (byte 0/1): CONNACK.
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    /// Shared Subscription Available (byte 0/1): CONNACK.
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// Reads one property list, rejecting duplicates as it goes.
pub(crate) struct PropReader {
    r: Reader,
    seen: u64,
    packet: &'static str,
    /// Server→client PUBLISH may carry several Subscription Identifiers.
    repeat_sub_id: bool,
}

impl PropReader {
    /// Reads the property length and takes that many bytes from `r`.
    pub(crate) fn new(r: &mut Reader, packet: &'static str) -> Result<Self, DecodeError> {
        let len = usize::try_from(r.var_int()?).map_err(|_| DecodeError::Truncated)?;
        Ok(PropReader {
            r: r.sub(len)?,
            seen: 0,
            packet,
            repeat_sub_id: false,
        })
    }

    pub(crate) fn allow_repeated_subscription_ids(mut self) -> Self {
        self.repeat_sub_id = true;
        self
    }

    /// The next property identifier, or `None` at the end of the list.
    pub(crate) fn next_id(&mut self) -> Result<Option<u8>, DecodeError> {
        if self.r.remaining() == 0 {
            return Ok(None);
        }
        let raw = self.r.var_int()?;
        let id = u8::try_from(raw)
            .ok()
            .filter(|&i| i <= id::SHARED_SUBSCRIPTION_AVAILABLE)
            .ok_or(DecodeError::PropertyNotAllowed {
                id: raw,
                packet: self.packet,
            })?;
        let repeatable =
            id == id::USER_PROPERTY || (self.repeat_sub_id && id == id::SUBSCRIPTION_IDENTIFIER);
        if !repeatable {
            let bit = 1u64 << id;
            if self.seen & bit != 0 {
                return Err(DecodeError::DuplicateProperty(id));
            }
            self.seen |= bit;
        }
        Ok(Some(id))
    }

    /// The error for a property this packet may not carry.
    pub(crate) fn not_allowed(&self, id: u8) -> DecodeError {
        DecodeError::PropertyNotAllowed {
            id: u32::from(id),
            packet: self.packet,
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.r.u8()
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.r.u16()
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.r.u32()
    }

    /// A byte that must be 0 or 1.
    pub(crate) fn flag(&mut self, id: u8) -> Result<bool, DecodeError> {
        match self.r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadPropertyValue(id)),
        }
    }

    pub(crate) fn nonzero_u16(&mut self, id: u8) -> Result<NonZeroU16, DecodeError> {
        NonZeroU16::new(self.r.u16()?).ok_or(DecodeError::BadPropertyValue(id))
    }

    pub(crate) fn nonzero_u32(&mut self, id: u8) -> Result<NonZeroU32, DecodeError> {
        NonZeroU32::new(self.r.u32()?).ok_or(DecodeError::BadPropertyValue(id))
    }

    /// A Subscription Identifier: a non-zero Variable Byte Integer.
    pub(crate) fn subscription_id(&mut self) -> Result<NonZeroU32, DecodeError> {
        NonZeroU32::new(self.r.var_int()?)
            .ok_or(DecodeError::BadPropertyValue(id::SUBSCRIPTION_IDENTIFIER))
    }

    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        self.r.string()
    }

    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        self.r.binary()
    }

    pub(crate) fn topic_name(&mut self) -> Result<TopicName, DecodeError> {
        TopicName::new(self.r.string()?).map_err(DecodeError::TopicName)
    }

    pub(crate) fn user_property(&mut self) -> Result<UserProperty, DecodeError> {
        self.r.user_property()
    }
}

/// A property set that can write its `identifier + value` pairs.
pub(crate) trait PropertyList {
    /// Writes every present property (without the length prefix).
    fn write_each<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError>;

    /// Writes the property length, then the properties.
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        let mut count = Counter::default();
        self.write_each(&mut count)?;
        s.put_var_int(count.0)?;
        self.write_each(s)
    }
}

pub(crate) fn put_u8<S: Sink>(s: &mut S, id: u8, v: Option<u8>) {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_u8(v);
    }
}

pub(crate) fn put_flag<S: Sink>(s: &mut S, id: u8, v: Option<bool>) {
    put_u8(s, id, v.map(u8::from));
}

pub(crate) fn put_u16<S: Sink>(s: &mut S, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_u16(v);
    }
}

pub(crate) fn put_u32<S: Sink>(s: &mut S, id: u8, v: Option<u32>) {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_u32(v);
    }
}

pub(crate) fn put_var_int<S: Sink>(s: &mut S, id: u8, v: NonZeroU32) -> Result<(), EncodeError> {
    s.put_u8(id);
    let v = usize::try_from(v.get()).unwrap_or(usize::MAX);
    s.put_var_int(v)
}

pub(crate) fn put_str<S: Sink>(s: &mut S, id: u8, v: Option<&str>) -> Result<(), EncodeError> {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_str(v)?;
    }
    Ok(())
}

pub(crate) fn put_binary<S: Sink>(s: &mut S, id: u8, v: Option<&Bytes>) -> Result<(), EncodeError> {
    if let Some(v) = v {
        s.put_u8(id);
        s.put_binary(v)?;
    }
    Ok(())
}

pub(crate) fn put_user_properties<S: Sink>(
    s: &mut S,
    props: &[UserProperty],
) -> Result<(), EncodeError> {
    for p in props {
        s.put_u8(id::USER_PROPERTY);
        s.put_str(&p.name)?;
        s.put_str(&p.value)?;
    }
    Ok(())
}
