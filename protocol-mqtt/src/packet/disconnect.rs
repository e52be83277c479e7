//! DISCONNECT (type 14): a reason code and properties, both omissible when
//! the reason is Normal disconnection and there are no properties
//! (remaining length 0), and the properties alone omissible (remaining
//! length 1) (5.0 §3.14.2.1). 3.1.1 DISCONNECT is always empty.

use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{DisconnectProperties, PropertyList};
use crate::reason::ReasonCode;
use crate::types::ProtocolVersion;

/// DISCONNECT: the sender closes the connection, saying why (5.0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// 5.0 reason code; Normal disconnection (0x00) in 3.1.1.
    pub reason: ReasonCode,
    /// 5.0 properties (empty for 3.1.1).
    pub properties: DisconnectProperties,
}

impl Disconnect {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut out = Disconnect::default();
        if version == ProtocolVersion::V5 && r.remaining() > 0 {
            out.reason = ReasonCode(r.u8()?);
            if r.remaining() > 0 {
                out.properties = DisconnectProperties::decode(r)?;
            }
        }
        Ok(out)
    }

    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        let empty = self.properties.is_empty();
        if version == ProtocolVersion::V311 || (self.reason == ReasonCode::SUCCESS && empty) {
            return Ok(());
        }
        s.put_u8(self.reason.0);
        if !empty {
            self.properties.write(s)?;
        }
        Ok(())
    }
}
