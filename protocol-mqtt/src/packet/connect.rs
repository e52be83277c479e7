//! CONNECT (type 1): the first packet of every connection.

use bytes::Bytes;

use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{ConnectProperties, PropertyList, WillProperties};
use crate::topic::TopicName;
use crate::types::{ProtocolVersion, QoS};

const RESERVED: u8 = 0b0000_0001;
const CLEAN_START: u8 = 0b0000_0010;
const WILL: u8 = 0b0000_0100;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0b0010_0000;
const PASSWORD: u8 = 0b0100_0000;
const USERNAME: u8 = 0b1000_0000;

/// CONNECT: protocol version, session and keep-alive settings, will and
/// credentials.
///
/// A CONNECT naming a protocol we do not speak (MQTT 3.1 `MQIsdp`/3, or any
/// level but 4 and 5) does not decode into this struct but into
/// [`DecodeError::UnsupportedProtocol`], so the broker can answer with
/// CONNACK 0x01 / 0x84.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The version the client speaks (protocol level 4 or 5); the rest of
    /// the connection is decoded and encoded with it.
    pub version: ProtocolVersion,
    /// 3.1.1 Clean Session / 5.0 Clean Start.
    pub clean_start: bool,
    /// Keep alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// 5.0 properties (empty for 3.1.1).
    pub properties: ConnectProperties,
    /// Client identifier; may be empty (server assigns one / clean session).
    pub client_id: String,
    /// Will message published if the connection ends abnormally.
    pub will: Option<Will>,
    /// User name.
    pub username: Option<String>,
    /// Password (binary data; 5.0 allows it without a user name, 3.1.1 not).
    pub password: Option<Bytes>,
}

/// The will message of a CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// QoS to publish the will with.
    pub qos: QoS,
    /// Whether the will is published as retained.
    pub retain: bool,
    /// 5.0 will properties (empty for 3.1.1).
    pub properties: WillProperties,
    /// Topic to publish the will to.
    pub topic: TopicName,
    /// Will payload.
    pub payload: Bytes,
}

impl Connect {
    /// A minimal CONNECT: clean start, no will, no credentials.
    pub fn new(version: ProtocolVersion, client_id: impl Into<String>, keep_alive: u16) -> Self {
        Connect {
            version,
            clean_start: true,
            keep_alive,
            properties: ConnectProperties::default(),
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let name = r.string()?;
        let level = r.u8()?;
        let version = match ProtocolVersion::from_level(level) {
            Some(v) if name == "MQTT" => v,
            _ => return Err(DecodeError::UnsupportedProtocol { name, level }),
        };
        let flags = r.u8()?;
        let will_flag = flags & WILL != 0;
        let will_qos = QoS::from_u8((flags >> WILL_QOS_SHIFT) & 0b11);
        let will_retain = flags & WILL_RETAIN != 0;
        let username = flags & USERNAME != 0;
        let password = flags & PASSWORD != 0;
        let bad = flags & RESERVED != 0
            || will_qos.is_none()
            || (!will_flag && (will_qos != Some(QoS::AtMostOnce) || will_retain))
            || (version == ProtocolVersion::V311 && password && !username);
        let will_qos = match will_qos {
            Some(q) if !bad => q,
            _ => return Err(DecodeError::BadConnectFlags(flags)),
        };
        let keep_alive = r.u16()?;
        let properties = match version {
            ProtocolVersion::V5 => ConnectProperties::decode(r)?,
            ProtocolVersion::V311 => ConnectProperties::default(),
        };
        let client_id = r.string()?;
        let will = if will_flag {
            let properties = match version {
                ProtocolVersion::V5 => WillProperties::decode(r)?,
                ProtocolVersion::V311 => WillProperties::default(),
            };
            let topic = TopicName::new(r.string()?).map_err(DecodeError::TopicName)?;
            let payload = r.binary()?;
            Some(Will {
                qos: will_qos,
                retain: will_retain,
                properties,
                topic,
                payload,
            })
        } else {
            None
        };
        let username = if username { Some(r.string()?) } else { None };
        let password = if password { Some(r.binary()?) } else { None };
        Ok(Connect {
            version,
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    /// Writes the body. The CONNECT is written in `self.version`, whatever
    /// the connection's version argument says.
    pub(crate) fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        let v5 = self.version == ProtocolVersion::V5;
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::PasswordWithoutUsername);
        }
        let mut flags = 0u8;
        if self.clean_start {
            flags |= CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= WILL | (will.qos.as_u8() << WILL_QOS_SHIFT);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        s.put_str("MQTT")?;
        s.put_u8(self.version.level());
        s.put_u8(flags);
        s.put_u16(self.keep_alive);
        if v5 {
            self.properties.write(s)?;
        }
        s.put_str(&self.client_id)?;
        if let Some(will) = &self.will {
            if v5 {
                will.properties.write(s)?;
            }
            if will.topic.is_empty() {
                return Err(EncodeError::EmptyTopic);
            }
            s.put_str(will.topic.as_str())?;
            s.put_binary(&will.payload)?;
        }
        if let Some(username) = &self.username {
            s.put_str(username)?;
        }
        if let Some(password) = &self.password {
            s.put_binary(password)?;
        }
        Ok(())
    }
}
