//! SUBACK (type 9): one code per requested filter, plus the code-list
//! helpers UNSUBACK shares.
//!
//! 3.1.1 SUBACK codes are 0x00/0x01/0x02 (granted QoS) or 0x80 (failure).

use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{AckProperties, PropertyList};
use crate::reason::ReasonCode;
use crate::types::{PacketId, ProtocolVersion};

/// SUBACK: the granted QoS or a failure code for each filter, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    /// Identifier of the SUBSCRIBE being answered.
    pub packet_id: PacketId,
    /// 5.0 properties (empty for 3.1.1).
    pub properties: AckProperties,
    /// One code per filter of the SUBSCRIBE.
    pub reason_codes: Vec<ReasonCode>,
}

pub(super) fn decode_codes(
    r: &mut Reader,
    version: ProtocolVersion,
    packet: &'static str,
) -> Result<(PacketId, AckProperties, Vec<ReasonCode>), DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = match version {
        ProtocolVersion::V5 => AckProperties::decode(r, packet)?,
        ProtocolVersion::V311 => AckProperties::default(),
    };
    let codes = r.rest().iter().map(|&b| ReasonCode(b)).collect();
    Ok((packet_id, properties, codes))
}

pub(super) fn write_codes<S: Sink>(
    s: &mut S,
    version: ProtocolVersion,
    packet_id: PacketId,
    properties: &AckProperties,
    codes: &[ReasonCode],
) -> Result<(), EncodeError> {
    s.put_u16(packet_id.get());
    if version == ProtocolVersion::V5 {
        properties.write(s)?;
    }
    for code in codes {
        s.put_u8(code.0);
    }
    Ok(())
}

impl SubAck {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (packet_id, properties, reason_codes) = decode_codes(r, version, "SUBACK")?;
        Ok(SubAck {
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
        write_codes(
            s,
            version,
            self.packet_id,
            &self.properties,
            &self.reason_codes,
        )
    }
}
