//! AUTH (type 15, 5.0 only): one step of extended authentication. Same
//! omission rules as DISCONNECT: remaining length 0 means Success without
//! properties (§3.15.2.1).

use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{AuthProperties, PropertyList};
use crate::reason::ReasonCode;
use crate::types::ProtocolVersion;

/// AUTH: one step of 5.0 extended authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// 0x00 Success, 0x18 Continue authentication, 0x19 Re-authenticate.
    pub reason: ReasonCode,
    /// Authentication method/data and diagnostics.
    pub properties: AuthProperties,
}

impl Auth {
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut out = Auth::default();
        if r.remaining() > 0 {
            out.reason = ReasonCode(r.u8()?);
            if r.remaining() > 0 {
                out.properties = AuthProperties::decode(r)?;
            }
        }
        Ok(out)
    }

    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if version == ProtocolVersion::V311 {
            return Err(EncodeError::AuthInV311);
        }
        let empty = self.properties.is_empty();
        if self.reason == ReasonCode::SUCCESS && empty {
            return Ok(());
        }
        s.put_u8(self.reason.0);
        if !empty {
            self.properties.write(s)?;
        }
        Ok(())
    }
}
