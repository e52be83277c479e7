//! SUBSCRIBE (type 8): topic filters with per-filter options.

use crate::codec::{Reader, Sink};
use crate::error::{DecodeError, EncodeError};
use crate::properties::{PropertyList, SubscribeProperties};
use crate::topic::{SharedSubscription, TopicFilter};
use crate::types::{PacketId, ProtocolVersion, QoS};

/// SUBSCRIBE: at least one filter, each with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// Echoed in the SUBACK.
    pub packet_id: PacketId,
    /// 5.0 properties (empty for 3.1.1).
    pub properties: SubscribeProperties,
    /// The requested subscriptions, in wire order (SUBACK codes follow it).
    pub filters: Vec<Subscription>,
}

/// One topic filter of a SUBSCRIBE and its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The filter (may be a `$share/group/filter` in 5.0).
    pub filter: TopicFilter,
    /// Maximum QoS and the 5.0 options.
    pub options: SubscriptionOptions,
}

/// The subscription options byte: maximum QoS in both versions, the rest
/// 5.0 only (defaults = 3.1.1 behaviour).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    /// Highest QoS the server may deliver with on this subscription.
    pub qos: QoS,
    /// Do not deliver this client's own publishes back to it.
    pub no_local: bool,
    /// Keep the RETAIN flag when forwarding (otherwise it is cleared).
    pub retain_as_published: bool,
    /// When to send retained messages for this subscription.
    pub retain_handling: RetainHandling,
}

/// Retain Handling subscription option (5.0 §3.8.3.1); 3 is a protocol
/// error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RetainHandling {
    /// 0: send retained messages when the subscription is made.
    #[default]
    SendAtSubscribe,
    /// 1: send them only if the subscription did not exist yet.
    SendIfNew,
    /// 2: never send them at subscribe time.
    DoNotSend,
}

impl SubscriptionOptions {
    /// Options with only a maximum QoS, as 3.1.1 knows them.
    pub fn qos(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            ..Default::default()
        }
    }

    fn decode(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let reserved = match version {
            ProtocolVersion::V311 => 0b1111_1100,
            ProtocolVersion::V5 => 0b1100_0000,
        };
        let qos = QoS::from_u8(byte & 0b11);
        let qos = match qos {
            Some(q) if byte & reserved == 0 => q,
            _ => return Err(DecodeError::BadSubscriptionOptions(byte)),
        };
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::BadRetainHandling),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & 0b0100 != 0,
            retain_as_published: byte & 0b1000 != 0,
            retain_handling,
        })
    }

    fn encode(self, version: ProtocolVersion) -> u8 {
        let qos = self.qos.as_u8();
        if version == ProtocolVersion::V311 {
            return qos;
        }
        let rh = match self.retain_handling {
            RetainHandling::SendAtSubscribe => 0,
            RetainHandling::SendIfNew => 1,
            RetainHandling::DoNotSend => 2,
        };
        qos | (u8::from(self.no_local) << 2) | (u8::from(self.retain_as_published) << 3) | (rh << 4)
    }
}

impl Subscribe {
    pub(crate) fn decode(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = match version {
            ProtocolVersion::V5 => SubscribeProperties::decode(r)?,
            ProtocolVersion::V311 => SubscribeProperties::default(),
        };
        let mut filters = Vec::new();
        while r.remaining() > 0 {
            let filter = TopicFilter::new(r.string()?).map_err(DecodeError::TopicFilter)?;
            let options = SubscriptionOptions::decode(r.u8()?, version)?;
            if options.no_local && filter.as_str().starts_with(SharedSubscription::PREFIX) {
                return Err(DecodeError::NoLocalOnShared);
            }
            filters.push(Subscription { filter, options });
        }
        if filters.is_empty() {
            return Err(DecodeError::NoTopicFilters);
        }
        Ok(Subscribe {
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
        for sub in &self.filters {
            s.put_str(sub.filter.as_str())?;
            s.put_u8(sub.options.encode(version));
        }
        Ok(())
    }
}
