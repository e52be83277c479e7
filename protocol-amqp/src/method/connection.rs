//! Class 10, connection: handshake, tuning, close, and RabbitMQ's
//! blocked/unblocked and update-secret extensions.

use bytes::{BufMut, Bytes, BytesMut};

use super::{Args, empty_method};
use crate::codec::{Reader, put_bits, put_longstr, put_shortstr};
use crate::error::SyntaxError;
use crate::types::{FieldTable, ShortStr};

/// Server's opening offer: version, properties, SASL mechanisms, locales.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionStart {
    /// Always 0.
    pub version_major: u8,
    /// Always 9.
    pub version_minor: u8,
    /// Server product, version, capabilities table.
    pub server_properties: FieldTable,
    /// Space-separated SASL mechanism names.
    pub mechanisms: Bytes,
    /// Space-separated locales.
    pub locales: Bytes,
}

impl Default for ConnectionStart {
    /// Version 0-9 with no properties, mechanisms or locales.
    fn default() -> Self {
        ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: FieldTable::new(),
            mechanisms: Bytes::new(),
            locales: Bytes::new(),
        }
    }
}

impl Args for ConnectionStart {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u8(self.version_major);
        dst.put_u8(self.version_minor);
        self.server_properties.encode(dst);
        put_longstr(dst, &self.mechanisms);
        put_longstr(dst, &self.locales);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(ConnectionStart {
            version_major: r.u8()?,
            version_minor: r.u8()?,
            server_properties: r.table()?,
            mechanisms: r.longstr()?,
            locales: r.longstr()?,
        })
    }
}

/// Client's answer to start: its properties and chosen SASL mechanism.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectionStartOk {
    /// Client product, version, capabilities table.
    pub client_properties: FieldTable,
    /// Chosen SASL mechanism, e.g. `PLAIN`.
    pub mechanism: ShortStr,
    /// SASL response (for PLAIN: `\0user\0password`).
    pub response: Bytes,
    /// Chosen locale.
    pub locale: ShortStr,
}

impl Args for ConnectionStartOk {
    fn write(&self, dst: &mut BytesMut) {
        self.client_properties.encode(dst);
        put_shortstr(dst, &self.mechanism);
        put_longstr(dst, &self.response);
        put_shortstr(dst, &self.locale);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(ConnectionStartOk {
            client_properties: r.table()?,
            mechanism: r.shortstr()?,
            response: r.longstr()?,
            locale: r.shortstr()?,
        })
    }
}

/// Server's SASL challenge.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectionSecure {
    /// Mechanism-specific challenge.
    pub challenge: Bytes,
}

impl Args for ConnectionSecure {
    fn write(&self, dst: &mut BytesMut) {
        put_longstr(dst, &self.challenge);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(ConnectionSecure {
            challenge: r.longstr()?,
        })
    }
}

/// Client's SASL response to a challenge.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectionSecureOk {
    /// Mechanism-specific response.
    pub response: Bytes,
}

impl Args for ConnectionSecureOk {
    fn write(&self, dst: &mut BytesMut) {
        put_longstr(dst, &self.response);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(ConnectionSecureOk {
            response: r.longstr()?,
        })
    }
}

/// Server's proposed limits (0 = no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionTune {
    /// Highest channel number.
    pub channel_max: u16,
    /// Largest frame size, header and end octet included.
    pub frame_max: u32,
    /// Heartbeat interval in seconds.
    pub heartbeat: u16,
}

impl Args for ConnectionTune {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(self.channel_max);
        dst.put_u32(self.frame_max);
        dst.put_u16(self.heartbeat);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(ConnectionTune {
            channel_max: r.u16()?,
            frame_max: r.u32()?,
            heartbeat: r.u16()?,
        })
    }
}

/// Client's accepted limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionTuneOk {
    /// Highest channel number.
    pub channel_max: u16,
    /// Largest frame size, header and end octet included.
    pub frame_max: u32,
    /// Heartbeat interval in seconds.
    pub heartbeat: u16,
}

impl Args for ConnectionTuneOk {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(self.channel_max);
        dst.put_u32(self.frame_max);
        dst.put_u16(self.heartbeat);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(ConnectionTuneOk {
            channel_max: r.u16()?,
            frame_max: r.u32()?,
            heartbeat: r.u16()?,
        })
    }
}

/// Client opens a virtual host. Reserved `capabilities` and `insist` are
/// written empty/false and ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectionOpen {
    /// Virtual host name, e.g. `/`.
    pub virtual_host: ShortStr,
}

impl Args for ConnectionOpen {
    fn write(&self, dst: &mut BytesMut) {
        put_shortstr(dst, &self.virtual_host);
        dst.put_u8(0); // capabilities: empty shortstr
        put_bits(dst, &[false]); // insist
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let virtual_host = r.shortstr()?;
        r.shortstr()?;
        r.bits::<1>()?;
        Ok(ConnectionOpen { virtual_host })
    }
}

/// Server confirms the virtual host is open. Reserved `known-hosts` is
/// written empty and ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionOpenOk;

impl Args for ConnectionOpenOk {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u8(0); // known-hosts: empty shortstr
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.shortstr()?;
        Ok(ConnectionOpenOk)
    }
}

/// Either side closes the connection, with the reason.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectionClose {
    /// A [`crate::reply_code`] constant.
    pub reply_code: u16,
    /// `"NAME - explanation"`.
    pub reply_text: ShortStr,
    /// Class of the failing method, or 0.
    pub class_id: u16,
    /// Id of the failing method, or 0.
    pub method_id: u16,
}

impl Args for ConnectionClose {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(self.reply_code);
        put_shortstr(dst, &self.reply_text);
        dst.put_u16(self.class_id);
        dst.put_u16(self.method_id);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(ConnectionClose {
            reply_code: r.u16()?,
            reply_text: r.shortstr()?,
            class_id: r.u16()?,
            method_id: r.u16()?,
        })
    }
}

empty_method!(
    /// Confirms a connection.close; the socket may then be closed.
    ConnectionCloseOk
);

/// RabbitMQ extension: the server stopped reading publishes (e.g. memory
/// alarm).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectionBlocked {
    /// Why, e.g. `low on memory`.
    pub reason: ShortStr,
}

impl Args for ConnectionBlocked {
    fn write(&self, dst: &mut BytesMut) {
        put_shortstr(dst, &self.reason);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(ConnectionBlocked {
            reason: r.shortstr()?,
        })
    }
}

empty_method!(
    /// RabbitMQ extension: the block is lifted.
    ConnectionUnblocked
);

/// RabbitMQ extension: client refreshes its credentials (e.g. OAuth token).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectionUpdateSecret {
    /// The new secret.
    pub new_secret: Bytes,
    /// Why it was updated.
    pub reason: ShortStr,
}

impl Args for ConnectionUpdateSecret {
    fn write(&self, dst: &mut BytesMut) {
        put_longstr(dst, &self.new_secret);
        put_shortstr(dst, &self.reason);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(ConnectionUpdateSecret {
            new_secret: r.longstr()?,
            reason: r.shortstr()?,
        })
    }
}

empty_method!(
    /// RabbitMQ extension: the new secret was accepted.
    ConnectionUpdateSecretOk
);
