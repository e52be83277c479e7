//! UNSUBSCRIBE (type 10): topic filters to remove.

use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{PropertyList, UnsubscribeProperties};
use crate::topic::TopicFilter;
use crate::types::{PacketId, ProtocolVersion};

/// UNSUBSCRIBE: at least one topic filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Echoed in the UNSUBACK.
    pub packet_id: PacketId,
    /// 5.0 properties (empty for 3.1.1).
    pub properties: UnsubscribeProperties,
    /// The filters to remove, in wire order.
    pub filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = match version {
            ProtocolVersion::V5 => UnsubscribeProperties::decode(r)?,
            ProtocolVersion::V311 => UnsubscribeProperties::default(),
        };
        let mut filters = Vec::new();
        while r.remaining() > 0 {
            filters.push(TopicFilter::new(r.string()?).map_err(DecodeError::TopicFilter)?);
        }
        if filters.is_empty() {
            return Err(DecodeError::NoTopicFilters);
        }
        Ok(Unsubscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters);
        }
        s.put_u16(self.packet_id.get());
        if version == ProtocolVersion::V5 {
            self.properties.write(s)?;
        }
        for filter in &self.filters {
            s.put_str(filter.as_str())?;
        }
        Ok(())
    }
}
