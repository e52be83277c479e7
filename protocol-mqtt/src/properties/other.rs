//! Properties of the acknowledgements, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT
//! and AUTH.

use std::num::NonZeroU32;

use bytes::Bytes;

use super::{
    PropReader, PropertyList, id, put_binary, put_str, put_u32, put_user_properties, put_var_int,
};
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::types::UserProperty;

/// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK:
/// a diagnostic string and user properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckProperties {
    /// Human-readable diagnostic.
    pub reason_string: Option<String>,
    /// User properties, in wire order.
    pub user_properties: Vec<UserProperty>,
}

impl AckProperties {
    /// True when nothing would be written, which lets 5.0 acks omit the
    /// property length.
    pub fn is_empty(&self) -> bool {
        self.reason_string.is_none() && self.user_properties.is_empty()
    }

    pub(crate) fn decode(r: &mut Reader, packet: &'static str) -> Result<Self, DecodeError> {
        let mut p = PropReader::new(r, packet)?;
        let mut out = Self::default();
        while let Some(i) = p.next_id()? {
            match i {
                id::REASON_STRING => out.reason_string = Some(p.string()?),
                id::USER_PROPERTY => out.user_properties.push(p.user_property()?),
                other => return Err(p.not_allowed(other)),
            }
        }
        Ok(out)
    }
}

impl PropertyList for AckProperties {
    fn write_each<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_str(s, id::REASON_STRING, self.reason_string.as_deref())?;
        put_user_properties(s, &self.user_properties)
    }
}

/// SUBSCRIBE properties (5.0 §3.8.2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscribeProperties {
    /// Identifier echoed in every PUBLISH these subscriptions deliver
    /// (1..=268,435,455; 0 is a protocol error).
    pub subscription_identifier: Option<NonZeroU32>,
    /// User properties, in wire order.
    pub user_properties: Vec<UserProperty>,
}

impl SubscribeProperties {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = PropReader::new(r, "SUBSCRIBE")?;
        let mut out = Self::default();
        while let Some(i) = p.next_id()? {
            match i {
                id::SUBSCRIPTION_IDENTIFIER => {
                    out.subscription_identifier = Some(p.subscription_id()?)
                }
                id::USER_PROPERTY => out.user_properties.push(p.user_property()?),
                other => return Err(p.not_allowed(other)),
            }
        }
        Ok(out)
    }
}

impl PropertyList for SubscribeProperties {
    fn write_each<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        if let Some(sub_id) = self.subscription_identifier {
            put_var_int(s, id::SUBSCRIPTION_IDENTIFIER, sub_id)?;
        }
        put_user_properties(s, &self.user_properties)
    }
}

/// UNSUBSCRIBE properties: user properties only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnsubscribeProperties {
    /// User properties, in wire order.
    pub user_properties: Vec<UserProperty>,
}

impl UnsubscribeProperties {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = PropReader::new(r, "UNSUBSCRIBE")?;
        let mut out = Self::default();
        while let Some(i) = p.next_id()? {
            match i {
                id::USER_PROPERTY => out.user_properties.push(p.user_property()?),
                other => return Err(p.not_allowed(other)),
            }
        }
        Ok(out)
    }
}

impl PropertyList for UnsubscribeProperties {
    fn write_each<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_user_properties(s, &self.user_properties)
    }
}

/// DISCONNECT properties (5.0 §3.14.2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisconnectProperties {
    /// New session expiry (client → server only).
    pub session_expiry_interval: Option<u32>,
    /// Human-readable diagnostic.
    pub reason_string: Option<String>,
    /// User properties, in wire order.
    pub user_properties: Vec<UserProperty>,
    /// Another server the client should use (server → client).
    pub server_reference: Option<String>,
}

impl DisconnectProperties {
    /// True when nothing would be written.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = PropReader::new(r, "DISCONNECT")?;
        let mut out = Self::default();
        while let Some(i) = p.next_id()? {
            match i {
                id::SESSION_EXPIRY_INTERVAL => out.session_expiry_interval = Some(p.u32()?),
                id::REASON_STRING => out.reason_string = Some(p.string()?),
                id::USER_PROPERTY => out.user_properties.push(p.user_property()?),
                id::SERVER_REFERENCE => out.server_reference = Some(p.string()?),
                other => return Err(p.not_allowed(other)),
            }
        }
        Ok(out)
    }
}

impl PropertyList for DisconnectProperties {
    fn write_each<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_u32(s, id::SESSION_EXPIRY_INTERVAL, self.session_expiry_interval);
        put_str(s, id::SERVER_REFERENCE, self.server_reference.as_deref())?;
        put_str(s, id::REASON_STRING, self.reason_string.as_deref())?;
        put_user_properties(s, &self.user_properties)
    }
}

/// AUTH properties (5.0 §3.15.2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthProperties {
    /// Extended authentication method name.
    pub authentication_method: Option<String>,
    /// Extended authentication data.
    pub authentication_data: Option<Bytes>,
    /// Human-readable diagnostic.
    pub reason_string: Option<String>,
    /// User properties, in wire order.
    pub user_properties: Vec<UserProperty>,
}

impl AuthProperties {
    /// True when nothing would be written.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut p = PropReader::new(r, "AUTH")?;
        let mut out = Self::default();
        while let Some(i) = p.next_id()? {
            match i {
                id::AUTHENTICATION_METHOD => out.authentication_method = Some(p.string()?),
                id::AUTHENTICATION_DATA => out.authentication_data = Some(p.binary()?),
                id::REASON_STRING => out.reason_string = Some(p.string()?),
                id::USER_PROPERTY => out.user_properties.push(p.user_property()?),
                other => return Err(p.not_allowed(other)),
            }
        }
        Ok(out)
    }
}

impl PropertyList for AuthProperties {
    fn write_each<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
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
        put_str(s, id::REASON_STRING, self.reason_string.as_deref())?;
        put_user_properties(s, &self.user_properties)
    }
}
