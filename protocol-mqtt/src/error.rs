//! Error types: one enum for decoding peer input, one for encoding our own
//! packets, one for topic validation.
//!
//! Every [`DecodeError`] is a connection error (after one, the byte stream
//! cannot be trusted), and knows the 5.0 reason code to put in the
//! DISCONNECT (or CONNACK, for a bad CONNECT) sent before closing. A 3.1.1
//! connection is simply closed (it has no DISCONNECT from server to client),
//! except for [`DecodeError::UnsupportedProtocol`], answered with a 3.1.1
//! CONNACK 0x01.

use crate::reason::ReasonCode;

/// Why a topic name, topic filter or shared subscription is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Empty string (topic names and filters need at least one character).
    #[error("empty topic")]
    Empty,
    /// Longer than the 65,535 bytes an MQTT string can hold.
    #[error("topic longer than 65535 bytes")]
    TooLong,
    /// Contains U+0000, which MQTT strings must not.
    #[error("topic contains U+0000")]
    Nul,
    /// A topic name contains `+` or `#`.
    #[error("wildcard in topic name")]
    WildcardInName,
    /// `+` or `#` does not occupy a whole level, or `#` is not last.
    #[error("misplaced wildcard in topic filter")]
    BadWildcard,
    /// A `$share/` filter whose group is empty or contains `+`/`#`, or that
    /// has no filter after the group.
    #[error("invalid shared subscription")]
    BadShare,
}

/// Why bytes from the peer could not be decoded into a [`crate::Packet`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The packet is larger than the limit we accept (0x95). Detected from
    /// the fixed header alone, before the body is buffered.
    #[error("packet of {size} bytes exceeds maximum {max}")]
    PacketTooLarge {
        /// Whole packet size announced by the fixed header.
        size: usize,
        /// Limit passed to `decode`.
        max: usize,
    },
    /// A Variable Byte Integer ran past 4 bytes or (5.0) was not minimally
    /// encoded (0x81).
    #[error("malformed variable byte integer")]
    BadVarInt,
    /// Packet type 0 (or 15 on a 3.1.1 connection) (0x81).
    #[error("invalid packet type {0}")]
    InvalidPacketType(u8),
    /// The fixed header flag nibble is not what the packet type requires,
    /// or PUBLISH has QoS 3 / DUP with QoS 0 (0x81).
    #[error("invalid flags {flags:#06b} for packet type {packet_type}")]
    InvalidFlags {
        /// Packet type from the fixed header.
        packet_type: u8,
        /// The low nibble of the first byte.
        flags: u8,
    },
    /// A field ran past the end of the packet (0x81).
    #[error("packet truncated")]
    Truncated,
    /// Bytes left over after the last field (0x81).
    #[error("{0} trailing bytes in packet")]
    TrailingBytes(usize),
    /// A string is not well-formed UTF-8 or contains U+0000 (0x81).
    #[error("invalid utf-8 string")]
    BadString,
    /// A packet identifier is 0 where a non-zero one is required (0x81).
    #[error("packet identifier 0")]
    ZeroPacketId,
    /// A reserved bit in CONNECT/CONNACK flags, or an inconsistent flag
    /// combination (will QoS 3, will QoS/retain without will, 3.1.1
    /// password without user name) (0x81).
    #[error("invalid connect flags {0:#010b}")]
    BadConnectFlags(u8),
    /// CONNECT with a protocol name/level we do not speak. Reply with
    /// CONNACK 0x01 in 3.1.1 form (`20 02 00 01`) for any level but 5,
    /// whose clients get 0x84; then close.
    #[error("unsupported protocol {name:?} level {level}")]
    UnsupportedProtocol {
        /// Protocol name from CONNECT ("MQTT", "MQIsdp", ...).
        name: String,
        /// Protocol level byte.
        level: u8,
    },
    /// The first packet on a connection was not CONNECT (0x82).
    #[error("expected CONNECT, got packet type {0}")]
    ExpectedConnect(u8),
    /// A topic name is invalid: wildcards, or empty where it may not be
    /// (0x90; UTF-8 problems are [`DecodeError::BadString`]).
    #[error("invalid topic name: {0}")]
    TopicName(TopicError),
    /// 5.0 PUBLISH with an empty topic name and no Topic Alias (0x82).
    #[error("empty topic name without a topic alias")]
    EmptyTopicWithoutAlias,
    /// A topic filter breaks the wildcard rules or is empty (0x8F).
    #[error("invalid topic filter: {0}")]
    TopicFilter(TopicError),
    /// SUBSCRIBE or UNSUBSCRIBE without a single topic filter (0x82).
    #[error("no topic filters")]
    NoTopicFilters,
    /// Subscription options with reserved bits set or QoS 3 (0x81).
    #[error("invalid subscription options {0:#010b}")]
    BadSubscriptionOptions(u8),
    /// Subscription options with Retain Handling 3 (0x82).
    #[error("retain handling 3")]
    BadRetainHandling,
    /// No Local set on a `$share/` subscription [MQTT-3.8.3-4] (0x82).
    #[error("no local on a shared subscription")]
    NoLocalOnShared,
    /// A property identifier unknown or not allowed in this packet (0x81).
    #[error("property {id:#04x} not allowed in {packet}")]
    PropertyNotAllowed {
        /// The property identifier.
        id: u32,
        /// The packet (or "will") it appeared in.
        packet: &'static str,
    },
    /// A non-repeatable property appeared twice (0x82).
    #[error("duplicate property {0:#04x}")]
    DuplicateProperty(u8),
    /// A property value the spec calls a protocol error: 0 for Receive
    /// Maximum, Maximum Packet Size or Subscription Identifier; a flag other
    /// than 0/1; Maximum QoS 2 (0x82).
    #[error("invalid value for property {0:#04x}")]
    BadPropertyValue(u8),
    /// Topic Alias 0 (0x94).
    #[error("topic alias 0")]
    TopicAliasZero,
}

impl DecodeError {
    /// The 5.0 reason code to send in DISCONNECT (or CONNACK, when the bad
    /// packet was CONNECT) before closing the connection.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::PacketTooLarge { .. } => ReasonCode::PACKET_TOO_LARGE,
            DecodeError::BadVarInt
            | DecodeError::InvalidPacketType(_)
            | DecodeError::InvalidFlags { .. }
            | DecodeError::Truncated
            | DecodeError::TrailingBytes(_)
            | DecodeError::BadString
            | DecodeError::ZeroPacketId
            | DecodeError::BadConnectFlags(_)
            | DecodeError::BadSubscriptionOptions(_)
            | DecodeError::PropertyNotAllowed { .. } => ReasonCode::MALFORMED_PACKET,
            DecodeError::UnsupportedProtocol { .. } => ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
            DecodeError::ExpectedConnect(_)
            | DecodeError::EmptyTopicWithoutAlias
            | DecodeError::NoTopicFilters
            | DecodeError::BadRetainHandling
            | DecodeError::NoLocalOnShared
            | DecodeError::DuplicateProperty(_)
            | DecodeError::BadPropertyValue(_) => ReasonCode::PROTOCOL_ERROR,
            DecodeError::TopicName(_) => ReasonCode::TOPIC_NAME_INVALID,
            DecodeError::TopicFilter(_) => ReasonCode::TOPIC_FILTER_INVALID,
            DecodeError::TopicAliasZero => ReasonCode::TOPIC_ALIAS_INVALID,
        }
    }
}

/// Why a packet could not be encoded. Nothing is written to the output
/// buffer when encoding fails.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string or binary field is longer than 65,535 bytes.
    #[error("field of {0} bytes exceeds 65535")]
    FieldTooLong(usize),
    /// A string contains U+0000.
    #[error("string contains U+0000")]
    NulInString,
    /// The packet body exceeds the 268,435,455-byte remaining length limit,
    /// or a Variable Byte Integer property is above that value.
    #[error("value {0} exceeds the variable byte integer range")]
    VarIntOutOfRange(usize),
    /// AUTH does not exist in 3.1.1.
    #[error("AUTH cannot be sent on a 3.1.1 connection")]
    AuthInV311,
    /// 3.1.1 cannot carry a password without a user name.
    #[error("password without user name in 3.1.1")]
    PasswordWithoutUsername,
    /// PUBLISH whose packet id presence does not match its QoS, or DUP on
    /// QoS 0.
    #[error("packet id / dup does not match QoS")]
    PublishIdMismatch,
    /// PUBLISH with an empty topic name in 3.1.1, or in 5.0 without a
    /// Topic Alias.
    #[error("empty topic name")]
    EmptyTopic,
    /// SUBSCRIBE or UNSUBSCRIBE without topic filters.
    #[error("no topic filters")]
    NoTopicFilters,
    /// A property value the peer would reject (Maximum QoS 2).
    #[error("invalid value for property {0:#04x}")]
    BadPropertyValue(u8),
}
