//! Sans-IO MQTT 3.1.1 and 5.0 codec for the broker: every control packet,
//! 5.0 properties and reason codes, topic names and filters, and the small
//! per-session id bookkeeping.
//!
//! No sockets, no runtime, no clock: the broker's connection task feeds the
//! bytes it read to [`decode`] (with `None` as the version until CONNECT
//! arrives, then the CONNECT's [`Connect::version`]), acts on each
//! [`Packet`], and writes replies with [`encode`]. [`Packet::encoded_len`]
//! tells it beforehand whether a packet fits the client's Maximum Packet
//! Size. A [`DecodeError`] always ends the connection; its
//! [`DecodeError::reason_code`] is what a 5.0 DISCONNECT (or CONNACK)
//! should carry.
//!
//! # Layout
//! - [`packet`]: the [`Packet`] enum, [`decode`] / [`encode`], and one
//!   file per packet type (`connect.rs`, `publish.rs`, `pub_ack.rs` for the
//!   four QoS acks, ...).
//! - [`properties`]: one struct per 5.0 property set, the identifier table
//!   ([`properties::id`]) and the duplicate-checking property reader.
//! - [`topic`]: [`TopicName`], [`TopicFilter`] (with matching) and
//!   [`SharedSubscription`].
//! - [`reason`]: [`ReasonCode`] with every 5.0 code and the 3.1.1 CONNACK
//!   return codes.
//! - [`session`]: [`PacketIdAllocator`] and [`InboundQos2`].
//! - [`error`]: [`DecodeError`] (with reason codes), [`EncodeError`],
//!   [`TopicError`].
//! - [`types`]: [`ProtocolVersion`], [`QoS`], [`PacketId`],
//!   [`UserProperty`].
//! - `codec` (private): bounds-checked reader, Variable Byte Integers, and
//!   the `Sink` that lets one code path both write and measure a packet.
//!
//! # Version differences handled here
//! 5.0-only fields live in the same structs as the 3.1.1 ones and are
//! empty/default on a 3.1.1 connection; encoding for 3.1.1 drops them.
//! 5.0 acks and DISCONNECT/AUTH are encoded in their shortest form (reason
//! code and properties omitted when Success and empty); both forms decode.

mod codec;

pub mod error;
pub mod packet;
pub mod properties;
pub mod reason;
pub mod session;
pub mod topic;
pub mod types;

pub use error::{DecodeError, EncodeError, TopicError};
pub use packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, PubAck, PubComp, PubRec, PubRel, Publish,
    RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
    Will, decode, encode,
};
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, SubscribeProperties, UnsubscribeProperties, WillProperties,
};
pub use reason::ReasonCode;
pub use session::{InboundQos2, PacketIdAllocator, Qos2Publish};
pub use topic::{SharedSubscription, TopicFilter, TopicName};
pub use types::{MAX_VAR_INT, PacketId, ProtocolVersion, QoS, UserProperty};

/// The largest packet MQTT can frame: 1 type byte + 4 length bytes +
/// 268,435,455 body bytes. A sensible `max_packet_size` for [`decode`] is
/// far smaller.
pub const MAX_PACKET_SIZE: usize = 1 + 4 + 268_435_455;
