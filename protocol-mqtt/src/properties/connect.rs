//! CONNECT, will and CONNACK properties.

use std::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;

use super::{
    PropReader, PropertyList, id, put_binary, put_flag, put_str, put_u8, put_u16, put_u32,
    put_user_properties,
};
use crate::QoS;
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::topic::TopicName;
use crate::types::UserProperty;

/// CONNECT properties (5.0 §3.1.2.11).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectProperties {
    /// Seconds the session outlives the connection (absent = 0).
    pub session_expiry_interval: Option<u32>,
    /// Most unacknowledged QoS 1/2 PUBLISHes the client accepts (absent =
    /// 65,535; 0 is a protocol error, hence non-zero).
    pub receive_maximum: Option<NonZeroU16>,
    /// Largest packet the client accepts (absent = no limit).
    pub maximum_packet_size: Option<NonZeroU32>,
    /// Highest topic alias the client accepts from us (absent = 0 = none).
    pub topic_alias_maximum: Option<u16>,
    /// Whether the client wants Response Information in CONNACK.
    pub request_response_information: Option<bool>,
    /// Whether we may send Reason Strings / User Properties on failures.
    pub request_problem_information: Option<bool>,
    /// User properties, in wire order.
    pub user_properties: Vec<UserProperty>,
    /// Extended authentication method name.
    pub authentication_method: Option<String>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
}

impl ConnectProperties {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = PropReader::new(r, "CONNECT")?;
        let mut out = Self::default();
        while let Some(i) = p.next_id()? {
            match i {
                id::SESSION_EXPIRY_INTERVAL => out.session_expiry_interval = Some(p.u32()?),
                id::RECEIVE_MAXIMUM => out.receive_maximum = Some(p.nonzero_u16(i)?),
                id::MAXIMUM_PACKET_SIZE => out.maximum_packet_size = Some(p.nonzero_u32(i)?),
                id::TOPIC_ALIAS_MAXIMUM => out.topic_alias_maximum = Some(p.u16()?),
                id::REQUEST_RESPONSE_INFORMATION => {
                    out.request_response_information = Some(p.flag(i)?)
                }
                id::REQUEST_PROBLEM_INFORMATION => {
                    out.request_problem_information = Some(p.flag(i)?)
                }
                id::USER_PROPERTY => out.user_properties.push(p.user_property()?),
                id::AUTHENTICATION_METHOD => out.authentication_method = Some(p.string()?),
                id::AUTHENTICATION_DATA => out.authentication_data = Some(p.binary()?),
                other => return Err(p.not_allowed(other)),
            }
        }
        Ok(out)
    }
}

impl PropertyList for ConnectProperties {
    fn write_each<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_str(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_deref(),
        )?;
        put_binary(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
        )?;
        put_flag(
            s,
            id::REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
        );
        put_flag(
            s,
            id::REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
        );
        put_u16(
            s,
            id::RECEIVE_MAXIMUM,
            self.receive_maximum.map(NonZeroU16::get),
        );
        put_u16(s, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        put_user_properties(s, &self.user_properties)?;
        put_u32(
            s,
            id::MAXIMUM_PACKET_SIZE,
            self.maximum_packet_size.map(NonZeroU32::get),
        );
        Ok(())
    }
}

/// Will properties, carried in the CONNECT payload (5.0 §3.1.3.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WillProperties {
    /// Seconds to wait after the connection ends before publishing the will.
    pub will_delay_interval: Option<u32>,
    /// 0 = unspecified bytes, 1 = UTF-8 payload (kept raw, forwarded as is).
    pub payload_format_indicator: Option<u8>,
    /// Lifetime of the will message in seconds.
    pub message_expiry_interval: Option<u32>,
    /// MIME-like description of the payload.
    pub content_type: Option<String>,
    /// Topic for a response (no wildcards).
    pub response_topic: Option<TopicName>,
    /// Opaque data linking a response to its request.
    pub correlation_data: Option<Bytes>,
    /// User properties, in wire order.
    pub user_properties: Vec<UserProperty>,
}

impl WillProperties {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = PropReader::new(r, "will")?;
        let mut out = Self::default();
        while let Some(i) = p.next_id()? {
            match i {
                id::WILL_DELAY_INTERVAL => out.will_delay_interval = Some(p.u32()?),
                id::PAYLOAD_FORMAT_INDICATOR => out.payload_format_indicator = Some(p.u8()?),
                id::MESSAGE_EXPIRY_INTERVAL => out.message_expiry_interval = Some(p.u32()?),
                id::CONTENT_TYPE => out.content_type = Some(p.string()?),
                id::RESPONSE_TOPIC => out.response_topic = Some(p.topic_name()?),
                id::CORRELATION_DATA => out.correlation_data = Some(p.binary()?),
                id::USER_PROPERTY => out.user_properties.push(p.user_property()?),
                other => return Err(p.not_allowed(other)),
            }
        }
        Ok(out)
    }
}

impl PropertyList for WillProperties {
    fn write_each<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u8(
            s,
            id::PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator,
        );
        put_u32(s, id::MESSAGE_EXPIRY_INTERVAL, self.message_expiry_interval);
        put_str(s, id::CONTENT_TYPE, self.content_type.as_deref())?;
        put_str(
            s,
            id::RESPONSE_TOPIC,
            self.response_topic.as_ref().map(TopicName::as_str),
        )?;
        put_binary(s, id::CORRELATION_DATA, self.correlation_data.as_ref())?;
        put_u32(s, id::WILL_DELAY_INTERVAL, self.will_delay_interval);
        put_user_properties(s, &self.user_properties)
    }
}

/// CONNACK properties (5.0 §3.2.2.3): what the server grants and limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnAckProperties {
    /// Session expiry the server applies, if different from the request.
    pub session_expiry_interval: Option<u32>,
    /// Most unacknowledged QoS 1/2 PUBLISHes the server accepts.
    pub receive_maximum: Option<NonZeroU16>,
    /// Highest QoS the server supports: only 0 or 1 may be sent (absent = 2).
    pub maximum_qos: Option<QoS>,
    /// Whether retained messages are supported (absent = yes).
    pub retain_available: Option<bool>,
    /// Largest packet the server accepts.
    pub maximum_packet_size: Option<NonZeroU32>,
    /// Client id the server assigned because CONNECT's was empty.
    pub assigned_client_identifier: Option<String>,
    /// Highest topic alias the server accepts from the client.
    pub topic_alias_maximum: Option<u16>,
    /// Human-readable diagnostic.
    pub reason_string: Option<String>,
    /// User properties, in wire order.
    pub user_properties: Vec<UserProperty>,
    /// Whether wildcard subscriptions are supported (absent = yes).
    pub wildcard_subscription_available: Option<bool>,
    /// Whether subscription identifiers are supported (absent = yes).
    pub subscription_identifiers_available: Option<bool>,
    /// Whether shared subscriptions are supported (absent = yes).
    pub shared_subscription_available: Option<bool>,
    /// Keep alive the server imposes instead of the client's.
    pub server_keep_alive: Option<u16>,
    /// Basis for response topics (after Request Response Information).
    pub response_information: Option<String>,
    /// Another server the client should use.
    pub server_reference: Option<String>,
    /// Extended authentication method name.
    pub authentication_method: Option<String>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
}

impl ConnAckProperties {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = PropReader::new(r, "CONNACK")?;
        let mut out = Self::default();
        while let Some(i) = p.next_id()? {
            match i {
                id::SESSION_EXPIRY_INTERVAL => out.session_expiry_interval = Some(p.u32()?),
                id::RECEIVE_MAXIMUM => out.receive_maximum = Some(p.nonzero_u16(i)?),
                id::MAXIMUM_QOS => {
                    let qos = if p.flag(i)? {
                        QoS::AtLeastOnce
                    } else {
                        QoS::AtMostOnce
                    };
                    out.maximum_qos = Some(qos);
                }
                id::RETAIN_AVAILABLE => out.retain_available = Some(p.flag(i)?),
                id::MAXIMUM_PACKET_SIZE => out.maximum_packet_size = Some(p.nonzero_u32(i)?),
                id::ASSIGNED_CLIENT_IDENTIFIER => {
                    out.assigned_client_identifier = Some(p.string()?)
                }
                id::TOPIC_ALIAS_MAXIMUM => out.topic_alias_maximum = Some(p.u16()?),
                id::REASON_STRING => out.reason_string = Some(p.string()?),
                id::USER_PROPERTY => out.user_properties.push(p.user_property()?),
                id::WILDCARD_SUBSCRIPTION_AVAILABLE => {
                    out.wildcard_subscription_available = Some(p.flag(i)?)
                }
                id::SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                    out.subscription_identifiers_available = Some(p.flag(i)?)
                }
                id::SHARED_SUBSCRIPTION_AVAILABLE => {
                    out.shared_subscription_available = Some(p.flag(i)?)
                }
                id::SERVER_KEEP_ALIVE => out.server_keep_alive = Some(p.u16()?),
                id::RESPONSE_INFORMATION => out.response_information = Some(p.string()?),
                id::SERVER_REFERENCE => out.server_reference = Some(p.string()?),
                id::AUTHENTICATION_METHOD => out.authentication_method = Some(p.string()?),
                id::AUTHENTICATION_DATA => out.authentication_data = Some(p.binary()?),
                other => return Err(p.not_allowed(other)),
            }
        }
        Ok(out)
    }
}

impl PropertyList for ConnAckProperties {
    fn write_each<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        let max_qos = match self.maximum_qos {
            Some(QoS::ExactlyOnce) => return Err(EncodeError::BadPropertyValue(id::MAXIMUM_QOS)),
            other => other.map(QoS::as_u8),
        };
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_str(
            s,
            id::ASSIGNED_CLIENT_IDENTIFIER,
            self.assigned_client_identifier.as_deref(),
        )?;
        put_u16(s, id::SERVER_KEEP_ALIVE, self.server_keep_alive);
        put_str(
            s,
            id::AUTHENTICATION_METHOD,
            self.authentication_method.as_deref(),
        )?;
        put_binary(
            s,
            id::AUTHENTICATION_DATA,
            self.authentication_data.as_ref(),
        )?;
        put_str(
            s,
            id::RESPONSE_INFORMATION,
            self.response_information.as_deref(),
        )?;
        put_str(s, id::SERVER_REFERENCE, self.server_reference.as_deref())?;
        put_str(s, id::REASON_STRING, self.reason_string.as_deref())?;
        put_u16(
            s,
            id::RECEIVE_MAXIMUM,
            self.receive_maximum.map(NonZeroU16::get),
        );
        put_u16(s, id::TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum);
        put_u8(s, id::MAXIMUM_QOS, max_qos);
        put_flag(s, id::RETAIN_AVAILABLE, self.retain_available);
        put_user_properties(s, &self.user_properties)?;
        put_u32(
            s,
            id::MAXIMUM_PACKET_SIZE,
            self.maximum_packet_size.map(NonZeroU32::get),
        );
        put_flag(
            s,
            id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
        );
        put_flag(
            s,
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifiers_available,
        );
        put_flag(
            s,
            id::SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
        );
        Ok(())
    }
}
