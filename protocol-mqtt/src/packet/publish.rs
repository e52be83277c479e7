//! PUBLISH (type 3): an application message.

use bytes::Bytes;

use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{PropertyList, PublishProperties};
use crate::topic::TopicName;
use crate::types::{PacketId, ProtocolVersion, QoS};

/// PUBLISH. The fixed header flags carry `dup`, `qos` and `retain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Re-delivery of an earlier attempt (never set on QoS 0).
    pub dup: bool,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Retained message (or, with an empty payload, removal of one).
    pub retain: bool,
    /// Topic name; empty only in 5.0 when `properties.topic_alias` stands
    /// in for it.
    pub topic: TopicName,
    /// Present exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    /// 5.0 properties (empty for 3.1.1).
    pub properties: PublishProperties,
    /// Application payload: a zero-copy slice of the decoded input.
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0 PUBLISH without properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Self {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            properties: PublishProperties::default(),
            payload: payload.into(),
        }
    }

    /// The fixed header flag nibble.
    pub(crate) fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | (self.qos.as_u8() << 1) | u8::from(self.retain)
    }

    /// `flags` has been checked by the fixed header (QoS not 3, no DUP on
    /// QoS 0).
    pub(crate) fn decode(
        flags: u8,
        r: &mut Reader,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidFlags {
            packet_type: 3,
            flags,
        })?;
        let raw_topic = r.string()?;
        let topic = if raw_topic.is_empty() && version == ProtocolVersion::V5 {
            TopicName::empty()
        } else {
            TopicName::new(raw_topic).map_err(DecodeError::TopicName)?
        };
        let packet_id = match qos {
            QoS::AtMostOnce => None,
            _ => Some(r.packet_id()?),
        };
        let properties = match version {
            ProtocolVersion::V5 => PublishProperties::decode(r)?,
            ProtocolVersion::V311 => PublishProperties::default(),
        };
        if topic.is_empty() && properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopicWithoutAlias);
        }
        Ok(Publish {
            dup: flags & 0b1000 != 0,
            qos,
            retain: flags & 1 != 0,
            topic,
            packet_id,
            properties,
            payload: r.rest(),
        })
    }

    pub(crate) fn write<S: Sink>(
        &self,
        version: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        let id_ok = (self.qos == QoS::AtMostOnce) == self.packet_id.is_none();
        if !id_ok || (self.dup && self.qos == QoS::AtMostOnce) {
            return Err(EncodeError::PublishIdMismatch);
        }
        let v5 = version == ProtocolVersion::V5;
        if self.topic.is_empty() && !(v5 && self.properties.topic_alias.is_some()) {
            return Err(EncodeError::EmptyTopic);
        }
        s.put_str(self.topic.as_str())?;
        if let Some(id) = self.packet_id {
            s.put_u16(id.get());
        }
        if v5 {
            self.properties.write(s)?;
        }
        s.put_slice(&self.payload);
        Ok(())
    }
}
