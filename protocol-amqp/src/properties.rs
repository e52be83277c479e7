//! Content properties of the basic class (the property list of a content
//! header frame).
//!
//! Wire form: a u16 flags word (bit 15 = first property ... bit 2 = 14th)
//! followed by the present properties in order. Bits 1-0 (continuation and
//! reserved) are ignored on decode like RabbitMQ does, and never set on
//! encode. The broker also stores properties on disk in this form, so
//! `decode(encode(p)) == p` for every value.

use bytes::{BufMut, BytesMut};

use crate::codec::{Reader, put_shortstr};
use crate::error::SyntaxError;
use crate::types::{FieldTable, ShortStr};

/// The 14 basic-class message properties; `None` = flag bit clear.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicProperties {
    /// MIME content type.
    pub content_type: Option<ShortStr>,
    /// MIME content encoding.
    pub content_encoding: Option<ShortStr>,
    /// Application headers (also used by headers exchanges).
    pub headers: Option<FieldTable>,
    /// 1 = transient, 2 = persistent.
    pub delivery_mode: Option<u8>,
    /// Priority 0-9 (higher values are clamped by priority queues).
    pub priority: Option<u8>,
    /// Application correlation id (RPC).
    pub correlation_id: Option<ShortStr>,
    /// Queue to reply to (RPC).
    pub reply_to: Option<ShortStr>,
    /// Per-message TTL in milliseconds, as a decimal string.
    pub expiration: Option<ShortStr>,
    /// Application message id.
    pub message_id: Option<ShortStr>,
    /// POSIX seconds.
    pub timestamp: Option<u64>,
    /// Message type name (the spec's `type`).
    pub kind: Option<ShortStr>,
    /// Publishing user; RabbitMQ checks it against the connection's user.
    pub user_id: Option<ShortStr>,
    /// Publishing application id.
    pub app_id: Option<ShortStr>,
    /// Deprecated cluster id, carried through unchanged.
    pub cluster_id: Option<ShortStr>,
}

// Flag bits in property order.
const CONTENT_TYPE: u16 = 1 << 15;
const CONTENT_ENCODING: u16 = 1 << 14;
const HEADERS: u16 = 1 << 13;
const DELIVERY_MODE: u16 = 1 << 12;
const PRIORITY: u16 = 1 << 11;
const CORRELATION_ID: u16 = 1 << 10;
const REPLY_TO: u16 = 1 << 9;
const EXPIRATION: u16 = 1 << 8;
const MESSAGE_ID: u16 = 1 << 7;
const TIMESTAMP: u16 = 1 << 6;
const KIND: u16 = 1 << 5;
const USER_ID: u16 = 1 << 4;
const APP_ID: u16 = 1 << 3;
const CLUSTER_ID: u16 = 1 << 2;

impl BasicProperties {
    /// Whether the publisher asked for the message to survive a restart
    /// (`delivery_mode == 2`).
    pub fn is_persistent(&self) -> bool {
        self.delivery_mode == Some(2)
    }

    /// The property-flags word for the present properties.
    pub fn flags(&self) -> u16 {
        let mut f = 0;
        let mut set = |present: bool, bit: u16| {
            if present {
                f |= bit;
            }
        };
        set(self.content_type.is_some(), CONTENT_TYPE);
        set(self.content_encoding.is_some(), CONTENT_ENCODING);
        set(self.headers.is_some(), HEADERS);
        set(self.delivery_mode.is_some(), DELIVERY_MODE);
        set(self.priority.is_some(), PRIORITY);
        set(self.correlation_id.is_some(), CORRELATION_ID);
        set(self.reply_to.is_some(), REPLY_TO);
        set(self.expiration.is_some(), EXPIRATION);
        set(self.message_id.is_some(), MESSAGE_ID);
        set(self.timestamp.is_some(), TIMESTAMP);
        set(self.kind.is_some(), KIND);
        set(self.user_id.is_some(), USER_ID);
        set(self.app_id.is_some(), APP_ID);
        set(self.cluster_id.is_some(), CLUSTER_ID);
        f
    }

    /// Bytes [`BasicProperties::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let s = |v: &Option<ShortStr>| v.as_ref().map_or(0, ShortStr::encoded_len);
        2 + s(&self.content_type)
            + s(&self.content_encoding)
            + self.headers.as_ref().map_or(0, FieldTable::encoded_len)
            + self.delivery_mode.map_or(0, |_| 1)
            + self.priority.map_or(0, |_| 1)
            + s(&self.correlation_id)
            + s(&self.reply_to)
            + s(&self.expiration)
            + s(&self.message_id)
            + self.timestamp.map_or(0, |_| 8)
            + s(&self.kind)
            + s(&self.user_id)
            + s(&self.app_id)
            + s(&self.cluster_id)
    }

    /// Writes the flags word and the present properties.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u16(self.flags());
        let s = |dst: &mut BytesMut, v: &Option<ShortStr>| {
            if let Some(v) = v {
                put_shortstr(dst, v);
            }
        };
        s(dst, &self.content_type);
        s(dst, &self.content_encoding);
        if let Some(h) = &self.headers {
            h.encode(dst);
        }
        if let Some(v) = self.delivery_mode {
            dst.put_u8(v);
        }
        if let Some(v) = self.priority {
            dst.put_u8(v);
        }
        s(dst, &self.correlation_id);
        s(dst, &self.reply_to);
        s(dst, &self.expiration);
        s(dst, &self.message_id);
        if let Some(v) = self.timestamp {
            dst.put_u64(v);
        }
        s(dst, &self.kind);
        s(dst, &self.user_id);
        s(dst, &self.app_id);
        s(dst, &self.cluster_id);
    }

    /// Decodes properties that fill `buf` exactly (trailing bytes are an
    /// error).
    pub fn decode(buf: &[u8]) -> Result<BasicProperties, SyntaxError> {
        let mut r = Reader::new(buf);
        let props = Self::read(&mut r)?;
        r.finish()?;
        Ok(props)
    }

    /// Decodes properties at the start of `buf` and returns how many bytes
    /// they took, for records that store other data after them.
    pub fn decode_prefix(buf: &[u8]) -> Result<(BasicProperties, usize), SyntaxError> {
        let mut r = Reader::new(buf);
        let props = Self::read(&mut r)?;
        Ok((props, buf.len() - r.remaining()))
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<BasicProperties, SyntaxError> {
        let f = r.u16()?;
        let s = |bit: u16, r: &mut Reader<'_>| -> Result<Option<ShortStr>, SyntaxError> {
            if f & bit != 0 {
                r.shortstr().map(Some)
            } else {
                Ok(None)
            }
        };
        let content_type = s(CONTENT_TYPE, r)?;
        let content_encoding = s(CONTENT_ENCODING, r)?;
        let headers = if f & HEADERS != 0 {
            Some(r.table()?)
        } else {
            None
        };
        let delivery_mode = if f & DELIVERY_MODE != 0 {
            Some(r.u8()?)
        } else {
            None
        };
        let priority = if f & PRIORITY != 0 {
            Some(r.u8()?)
        } else {
            None
        };
        let correlation_id = s(CORRELATION_ID, r)?;
        let reply_to = s(REPLY_TO, r)?;
        let expiration = s(EXPIRATION, r)?;
        let message_id = s(MESSAGE_ID, r)?;
        let timestamp = if f & TIMESTAMP != 0 {
            Some(r.u64()?)
        } else {
            None
        };
        let kind = s(KIND, r)?;
        let user_id = s(USER_ID, r)?;
        let app_id = s(APP_ID, r)?;
        let cluster_id = s(CLUSTER_ID, r)?;
        Ok(BasicProperties {
            content_type,
            content_encoding,
            headers,
            delivery_mode,
            priority,
            correlation_id,
            reply_to,
            expiration,
            message_id,
            timestamp,
            kind,
            user_id,
            app_id,
            cluster_id,
        })
    }
}
