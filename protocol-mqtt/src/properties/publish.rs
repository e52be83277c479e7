//! PUBLISH properties.

use std::num::{NonZeroU16, NonZeroU32};

use bytes::Bytes;

use super::{
    PropReader, PropertyList, id, put_binary, put_str, put_u8, put_u16, put_u32,
    put_user_properties, put_var_int,
};
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::topic::TopicName;
use crate::types::UserProperty;

/// PUBLISH properties (5.0 §3.3.2.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// 0 = unspecified bytes, 1 = UTF-8 payload (kept raw, forwarded as is).
    pub payload_format_indicator: Option<u8>,
    /// Lifetime of the message in seconds.
    pub message_expiry_interval: Option<u32>,
    /// Topic alias standing in for (or being set to) the topic name. 0 is
    /// invalid (0x94), hence non-zero.
    pub topic_alias: Option<NonZeroU16>,
    /// Topic for a response (no wildcards).
    pub response_topic: Option<TopicName>,
    /// Opaque data linking a response to its request.
    pub correlation_data: Option<Bytes>,
    /// User properties, in wire order.
    pub user_properties: Vec<UserProperty>,
    /// Identifiers of the subscriptions this delivery matched (server →
    /// client only; a client must not send any [MQTT-3.3.4-6], which the
    /// broker checks, not the codec).
    pub subscription_identifiers: Vec<NonZeroU32>,
    /// MIME-like description of the payload.
    pub content_type: Option<String>,
}

impl PublishProperties {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = PropReader::new(r, "PUBLISH")?.allow_repeated_subscription_ids();
        let mut out = Self::default();
        while let Some(i) = p.next_id()? {
            match i {
                id::PAYLOAD_FORMAT_INDICATOR => out.payload_format_indicator = Some(p.u8()?),
                id::MESSAGE_EXPIRY_INTERVAL => out.message_expiry_interval = Some(p.u32()?),
                id::TOPIC_ALIAS => {
                    let alias = NonZeroU16::new(p.u16()?).ok_or(DecodeError::TopicAliasZero)?;
                    out.topic_alias = Some(alias);
                }
                id::RESPONSE_TOPIC => out.response_topic = Some(p.topic_name()?),
                id::CORRELATION_DATA => out.correlation_data = Some(p.binary()?),
                id::USER_PROPERTY => out.user_properties.push(p.user_property()?),
                id::SUBSCRIPTION_IDENTIFIER => {
                    out.subscription_identifiers.push(p.subscription_id()?)
                }
                id::CONTENT_TYPE => out.content_type = Some(p.string()?),
                other => return Err(p.not_allowed(other)),
            }
        }
        Ok(out)
    }
}

impl PropertyList for PublishProperties {
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
        for &sub_id in &self.subscription_identifiers {
            put_var_int(s, id::SUBSCRIPTION_IDENTIFIER, sub_id)?;
        }
        put_u16(s, id::TOPIC_ALIAS, self.topic_alias.map(NonZeroU16::get));
        put_user_properties(s, &self.user_properties)
    }
}
