//! PUBACK (4), PUBREC (5), PUBREL (6) and PUBCOMP (7): the QoS 1 and QoS 2
//! acknowledgements. All four share one layout — packet identifier, then in
//! 5.0 an optional reason code and optional properties — so one macro
//! defines them; each stays its own type so the [`crate::Packet`] variants
//! cannot be mixed up.
//!
//! 5.0 lets the sender stop after the packet identifier when the reason is
//! Success and there are no properties (remaining length 2), and after the
//! reason code when there are no properties (remaining length 3)
//! (§3.4.2.1). Both forms decode; we encode the shortest.

use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{AckProperties, PropertyList};
use crate::reason::ReasonCode;
use crate::types::{PacketId, ProtocolVersion};

fn decode_ack(
    r: &mut Reader,
    version: ProtocolVersion,
    packet: &'static str,
) -> Result<(PacketId, ReasonCode, AckProperties), DecodeError> {
    let packet_id = r.packet_id()?;
    if version == ProtocolVersion::V311 || r.remaining() == 0 {
        return Ok((packet_id, ReasonCode::SUCCESS, AckProperties::default()));
    }
    let reason = ReasonCode(r.u8()?);
    let properties = if r.remaining() == 0 {
        AckProperties::default()
    } else {
        AckProperties::decode(r, packet)?
    };
    Ok((packet_id, reason, properties))
}

fn write_ack<S: Sink>(
    s: &mut S,
    version: ProtocolVersion,
    packet_id: PacketId,
    reason: ReasonCode,
    properties: &AckProperties,
) -> Result<(), EncodeError> {
    s.put_u16(packet_id.get());
    if version == ProtocolVersion::V311 || (reason == ReasonCode::SUCCESS && properties.is_empty())
    {
        return Ok(());
    }
    s.put_u8(reason.0);
    if !properties.is_empty() {
        properties.write(s)?;
    }
    Ok(())
}

macro_rules! pub_ack {
    ($(#[$doc:meta])* $name:ident, $wire:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// Identifier of the PUBLISH (or PUBREL) being acknowledged.
            pub packet_id: PacketId,
            /// 5.0 reason code; always Success in 3.1.1.
            pub reason: ReasonCode,
            /// 5.0 properties (empty for 3.1.1).
            pub properties: AckProperties,
        }

        impl $name {
            /// A successful acknowledgement without properties.
            pub fn new(packet_id: PacketId) -> Self {
                $name {
                    packet_id,
                    reason: ReasonCode::SUCCESS,
                    properties: AckProperties::default(),
                }
            }

            pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
                let (packet_id, reason, properties) = decode_ack(r, version, $wire)?;
                Ok($name { packet_id, reason, properties })
            }

            pub(crate) fn write<S: Sink>(&self, version: ProtocolVersion, s: &mut S) -> Result<(), EncodeError> {
                write_ack(s, version, self.packet_id, self.reason, &self.properties)
            }
        }
    };
}

pub_ack!(
    /// PUBACK: the receiver of a QoS 1 PUBLISH took ownership of it.
    PubAck,
    "PUBACK"
);
pub_ack!(
    /// PUBREC: first answer to a QoS 2 PUBLISH ("received").
    PubRec,
    "PUBREC"
);
pub_ack!(
    /// PUBREL: the QoS 2 sender releases the packet id ("release").
    PubRel,
    "PUBREL"
);
pub_ack!(
    /// PUBCOMP: last step of QoS 2 ("complete"); the id is free again.
    PubComp,
    "PUBCOMP"
);
