//! Small wire types shared by every packet: protocol version, QoS, packet
//! identifiers and the 5.0 user property pair.

use std::num::NonZeroU16;

/// The MQTT version a connection speaks, fixed by its CONNECT.
///
/// Decoding and encoding differ between the two (5.0 adds properties and
/// reason codes), so every codec call takes the version explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1, protocol level 4.
    V311,
    /// MQTT 5.0, protocol level 5.
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte sent in CONNECT (4 or 5).
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// The version for a CONNECT protocol level, if we speak it.
    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            4 => Some(ProtocolVersion::V311),
            5 => Some(ProtocolVersion::V5),
            _ => None,
        }
    }
}

/// Quality of service of a PUBLISH, a will or a subscription.
///
/// The wire value 3 is reserved and never decodes into a `QoS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum QoS {
    /// QoS 0: fire and forget, no packet identifier.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: PUBLISH → PUBACK, may deliver duplicates.
    AtLeastOnce = 1,
    /// QoS 2: PUBLISH → PUBREC → PUBREL → PUBCOMP, exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a 2-bit wire value; `None` for the reserved value 3 (or
    /// anything larger).
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// The wire value, 0..=2.
    pub fn as_u8(self) -> u8 {
        match self {
            QoS::AtMostOnce => 0,
            QoS::AtLeastOnce => 1,
            QoS::ExactlyOnce => 2,
        }
    }
}

/// A packet identifier: non-zero by construction, as the spec requires
/// wherever one appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketId(pub NonZeroU16);

impl PacketId {
    /// The identifier for `v`, or `None` for 0.
    pub fn new(v: u16) -> Option<PacketId> {
        NonZeroU16::new(v).map(PacketId)
    }

    /// The raw u16 value.
    pub fn get(self) -> u16 {
        self.0.get()
    }
}

/// A 5.0 User Property (0x26): a name/value string pair. Repeatable; the
/// order on the wire is kept because the spec requires it to be forwarded
/// unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserProperty {
    /// The property name.
    pub name: String,
    /// The property value.
    pub value: String,
}

impl UserProperty {
    /// Builds a pair from anything string-like.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        UserProperty {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Largest value a Variable Byte Integer can carry (4 bytes × 7 bits).
pub const MAX_VAR_INT: u32 = 268_435_455;

/// [`MAX_VAR_INT`] as a `usize` (lossless: it fits in 28 bits).
pub(crate) const MAX_VAR_INT_USIZE: usize = 268_435_455;
