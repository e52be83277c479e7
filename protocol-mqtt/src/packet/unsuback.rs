//! UNSUBACK (type 11): in 5.0 one code per UNSUBSCRIBE filter; in 3.1.1
//! only the packet id, so `reason_codes` is always empty there.

use super::suback::{decode_codes, write_codes};
use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::AckProperties;
use crate::reason::ReasonCode;
use crate::types::{PacketId, ProtocolVersion};

/// UNSUBACK: in 5.0 a code per filter; in 3.1.1 just the packet id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    /// Identifier of the UNSUBSCRIBE being answered.
    pub packet_id: PacketId,
    /// 5.0 properties (empty for 3.1.1).
    pub properties: AckProperties,
    /// 5.0: one code per filter of the UNSUBSCRIBE; empty in 3.1.1.
    pub reason_codes: Vec<ReasonCode>,
}

impl UnsubAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (packet_id, properties, reason_codes) = match version {
            // 3.1.1: nothing after the packet id (checked by the caller).
            ProtocolVersion::V311 => (r.packet_id()?, AckProperties::default(), Vec::new()),
            ProtocolVersion::V5 => decode_codes(r, version, "UNSUBACK")?,
        };
        Ok(UnsubAck {
            packet_id,
            properties,
            reason_codes,
        })
    }

    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        match version {
            ProtocolVersion::V311 => write_codes(s, version, self.packet_id, &self.properties, &[]),
            ProtocolVersion::V5 => write_codes(
                s,
                version,
                self.packet_id,
                &self.properties,
                &self.reason_codes,
            ),
        }
    }
}
