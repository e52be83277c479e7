//! Reason codes (5.0) and CONNACK return codes (3.1.1).
//!
//! One byte on the wire; values below 0x80 report success, values from 0x80
//! report failure (5.0 §2.4). Several names share a value because the
//! meaning depends on the packet (0x00 is Success, Normal disconnection and
//! Granted QoS 0). Unknown values are kept as they are rather than rejected:
//! the broker decides what to do with a code it did not expect.

use std::fmt;

/// A 5.0 reason code or a 3.1.1 CONNACK/SUBACK return code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ReasonCode(pub u8);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $v:literal;)*) => {
        impl ReasonCode {
            $($(#[$doc])* pub const $name: ReasonCode = ReasonCode($v);)*
        }
    };
}

codes! {
    /// 0x00 Success (CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, AUTH).
    SUCCESS = 0x00;
    /// 0x00 Normal disconnection (DISCONNECT).
    NORMAL_DISCONNECTION = 0x00;
    /// 0x00 Granted QoS 0 (SUBACK).
    GRANTED_QOS_0 = 0x00;
    /// 0x01 Granted QoS 1 (SUBACK).
    GRANTED_QOS_1 = 0x01;
    /// 0x02 Granted QoS 2 (SUBACK).
    GRANTED_QOS_2 = 0x02;
    /// 0x04 Disconnect with Will Message (DISCONNECT from a client).
    DISCONNECT_WITH_WILL = 0x04;
    /// 0x10 No matching subscribers (PUBACK, PUBREC).
    NO_MATCHING_SUBSCRIBERS = 0x10;
    /// 0x11 No subscription existed (UNSUBACK).
    NO_SUBSCRIPTION_EXISTED = 0x11;
    /// 0x18 Continue authentication (AUTH).
    CONTINUE_AUTHENTICATION = 0x18;
    /// 0x19 Re-authenticate (AUTH).
    RE_AUTHENTICATE = 0x19;
    /// 0x80 Unspecified error; also the 3.1.1 SUBACK failure return code.
    UNSPECIFIED_ERROR = 0x80;
    /// 0x81 Malformed Packet.
    MALFORMED_PACKET = 0x81;
    /// 0x82 Protocol Error.
    PROTOCOL_ERROR = 0x82;
    /// 0x83 Implementation specific error.
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83;
    /// 0x84 Unsupported Protocol Version (CONNACK).
    UNSUPPORTED_PROTOCOL_VERSION = 0x84;
    /// 0x85 Client Identifier not valid (CONNACK).
    CLIENT_IDENTIFIER_NOT_VALID = 0x85;
    /// 0x86 Bad User Name or Password (CONNACK).
    BAD_USER_NAME_OR_PASSWORD = 0x86;
    /// 0x87 Not authorized.
    NOT_AUTHORIZED = 0x87;
    /// 0x88 Server unavailable (CONNACK).
    SERVER_UNAVAILABLE = 0x88;
    /// 0x89 Server busy.
    SERVER_BUSY = 0x89;
    /// 0x8A Banned (CONNACK).
    BANNED = 0x8A;
    /// 0x8B Server shutting down (DISCONNECT).
    SERVER_SHUTTING_DOWN = 0x8B;
    /// 0x8C Bad authentication method.
    BAD_AUTHENTICATION_METHOD = 0x8C;
    /// 0x8D Keep Alive timeout (DISCONNECT).
    KEEP_ALIVE_TIMEOUT = 0x8D;
    /// 0x8E Session taken over (DISCONNECT).
    SESSION_TAKEN_OVER = 0x8E;
    /// 0x8F Topic Filter invalid (SUBACK, UNSUBACK, DISCONNECT).
    TOPIC_FILTER_INVALID = 0x8F;
    /// 0x90 Topic Name invalid.
    TOPIC_NAME_INVALID = 0x90;
    /// 0x91 Packet Identifier in use.
    PACKET_IDENTIFIER_IN_USE = 0x91;
    /// 0x92 Packet Identifier not found (PUBREL, PUBCOMP).
    PACKET_IDENTIFIER_NOT_FOUND = 0x92;
    /// 0x93 Receive Maximum exceeded (DISCONNECT).
    RECEIVE_MAXIMUM_EXCEEDED = 0x93;
    /// 0x94 Topic Alias invalid (DISCONNECT).
    TOPIC_ALIAS_INVALID = 0x94;
    /// 0x95 Packet too large.
    PACKET_TOO_LARGE = 0x95;
    /// 0x96 Message rate too high (DISCONNECT).
    MESSAGE_RATE_TOO_HIGH = 0x96;
    /// 0x97 Quota exceeded.
    QUOTA_EXCEEDED = 0x97;
    /// 0x98 Administrative action (DISCONNECT).
    ADMINISTRATIVE_ACTION = 0x98;
    /// 0x99 Payload format invalid.
    PAYLOAD_FORMAT_INVALID = 0x99;
    /// 0x9A Retain not supported.
    RETAIN_NOT_SUPPORTED = 0x9A;
    /// 0x9B QoS not supported.
    QOS_NOT_SUPPORTED = 0x9B;
    /// 0x9C Use another server.
    USE_ANOTHER_SERVER = 0x9C;
    /// 0x9D Server moved.
    SERVER_MOVED = 0x9D;
    /// 0x9E Shared Subscriptions not supported.
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E;
    /// 0x9F Connection rate exceeded.
    CONNECTION_RATE_EXCEEDED = 0x9F;
    /// 0xA0 Maximum connect time (DISCONNECT).
    MAXIMUM_CONNECT_TIME = 0xA0;
    /// 0xA1 Subscription Identifiers not supported.
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1;
    /// 0xA2 Wildcard Subscriptions not supported.
    WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2;

    /// 3.1.1 CONNACK 0x00: connection accepted.
    V3_CONNECTION_ACCEPTED = 0x00;
    /// 3.1.1 CONNACK 0x01: unacceptable protocol version.
    V3_UNACCEPTABLE_PROTOCOL_VERSION = 0x01;
    /// 3.1.1 CONNACK 0x02: identifier rejected.
    V3_IDENTIFIER_REJECTED = 0x02;
    /// 3.1.1 CONNACK 0x03: server unavailable.
    V3_SERVER_UNAVAILABLE = 0x03;
    /// 3.1.1 CONNACK 0x04: bad user name or password.
    V3_BAD_USER_NAME_OR_PASSWORD = 0x04;
    /// 3.1.1 CONNACK 0x05: not authorized.
    V3_NOT_AUTHORIZED = 0x05;
    /// 3.1.1 SUBACK 0x80: subscription failure.
    V3_SUBACK_FAILURE = 0x80;
}

impl ReasonCode {
    /// True for failure codes (0x80 and above), as 5.0 §2.4 defines them.
    pub fn is_error(self) -> bool {
        self.0 >= 0x80
    }

    /// The SUBACK code granting `qos` (0x00, 0x01 or 0x02).
    pub fn granted(qos: crate::QoS) -> ReasonCode {
        ReasonCode(qos.as_u8())
    }
}

impl fmt::Debug for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReasonCode({:#04x})", self.0)
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x}", self.0)
    }
}
