//! CONNACK (type 2): the server's answer to CONNECT.

use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{ConnAckProperties, PropertyList};
use crate::reason::ReasonCode;
use crate::types::ProtocolVersion;

/// CONNACK: session present flag, return/reason code, 5.0 properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnAck {
    /// The server resumed a stored session (must be false on failure).
    pub session_present: bool,
    /// 3.1.1 return code (`ReasonCode::V3_*`) or 5.0 reason code.
    pub code: ReasonCode,
    /// 5.0 properties (empty for 3.1.1).
    pub properties: ConnAckProperties,
}

impl ConnAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        if flags & !1 != 0 {
            return Err(DecodeError::BadConnectFlags(flags));
        }
        let code = ReasonCode(r.u8()?);
        let properties = match version {
            ProtocolVersion::V5 => ConnAckProperties::decode(r)?,
            ProtocolVersion::V311 => ConnAckProperties::default(),
        };
        Ok(ConnAck {
            session_present: flags == 1,
            code,
            properties,
        })
    }

    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u8(u8::from(self.session_present));
        s.put_u8(self.code.0);
        if version == ProtocolVersion::V5 {
            self.properties.write(s)?;
        }
        Ok(())
    }
}
