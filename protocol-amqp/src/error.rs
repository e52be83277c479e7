//! Error types, one small enum per layer.
//!
//! Each error knows the AMQP reply code the broker should send when it closes
//! the channel or connection because of it, so the connection task never has
//! to map errors by hand.

use crate::ChannelId;
use crate::reply_code;

/// Why a method's argument bytes, a field table or a property list could not
/// be parsed. Always answered with 502 SYNTAX_ERROR.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// The data ended before a field was complete.
    #[error("truncated data")]
    Truncated,
    /// Bytes were left over after the last field.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A shortstr was not valid UTF-8.
    #[error("shortstr is not valid utf-8")]
    BadUtf8,
    /// A field table or array used a type tag RabbitMQ does not know.
    #[error("unknown field value type {0:#04x}")]
    UnknownFieldType(u8),
    /// Tables or arrays nested deeper than [`crate::MAX_TABLE_DEPTH`].
    #[error("field tables nested too deeply")]
    TooDeep,
}

impl SyntaxError {
    /// The reply code to close the connection with (502 SYNTAX_ERROR).
    pub fn reply_code(&self) -> u16 {
        reply_code::SYNTAX_ERROR
    }
}

/// Why a method frame payload could not be turned into a [`crate::Method`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MethodError {
    /// The class/method id pair is not one we know (503 COMMAND_INVALID).
    #[error("unknown method {class_id}.{method_id}")]
    UnknownMethod {
        /// Class id from the payload.
        class_id: u16,
        /// Method id from the payload.
        method_id: u16,
    },
    /// The arguments were malformed (502 SYNTAX_ERROR).
    #[error("bad method arguments: {0}")]
    Syntax(#[from] SyntaxError),
}

impl MethodError {
    /// The reply code to close the connection with.
    pub fn reply_code(&self) -> u16 {
        match self {
            MethodError::UnknownMethod { .. } => reply_code::COMMAND_INVALID,
            MethodError::Syntax(e) => e.reply_code(),
        }
    }
}

/// Why the byte stream could not be cut into frames. All of these are
/// connection errors: after one, the stream position is unreliable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The octet after the payload was not 0xCE (501).
    #[error("bad frame end octet {0:#04x}")]
    BadFrameEnd(u8),
    /// The frame type octet is not 1, 2, 3 or 8 (501).
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    /// The size field exceeds the negotiated frame_max (501).
    #[error("frame payload of {size} bytes exceeds frame_max {max}")]
    TooLarge {
        /// Payload size announced by the peer.
        size: u32,
        /// Negotiated frame_max.
        max: u32,
    },
    /// A heartbeat frame carried a payload (501).
    #[error("heartbeat frame with a payload")]
    BadHeartbeat,
    /// A method frame's payload was not a valid method.
    #[error(transparent)]
    Method(#[from] MethodError),
    /// A content header frame's payload was malformed (502).
    #[error("bad content header: {0}")]
    Syntax(#[from] SyntaxError),
}

impl FrameError {
    /// The reply code to close the connection with.
    pub fn reply_code(&self) -> u16 {
        match self {
            FrameError::BadFrameEnd(_)
            | FrameError::UnknownFrameType(_)
            | FrameError::TooLarge { .. }
            | FrameError::BadHeartbeat => reply_code::FRAME_ERROR,
            FrameError::Method(e) => e.reply_code(),
            FrameError::Syntax(e) => e.reply_code(),
        }
    }
}

/// The 8 bytes a client opened with are not an AMQP 0-9-1 protocol header.
///
/// The broker answers with [`crate::PROTOCOL_HEADER`] and closes the socket.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad protocol header {0:?}")]
pub struct BadProtocolHeader(pub [u8; 8]);

/// A string was too long to be a shortstr (more than 255 bytes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("shortstr of {0} bytes exceeds 255")]
pub struct TooLong(pub usize);

/// A frame arrived out of sequence while assembling content-carrying commands.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    /// A content header arrived with no content method waiting for it (505).
    #[error("channel {channel}: unexpected content header")]
    UnexpectedHeader {
        /// Channel the frame arrived on.
        channel: ChannelId,
    },
    /// A body frame arrived with no content header before it (505).
    #[error("channel {channel}: unexpected content body")]
    UnexpectedBody {
        /// Channel the frame arrived on.
        channel: ChannelId,
    },
    /// A method frame arrived while content was still expected (505).
    #[error("channel {channel}: expected content frame, got method {method}")]
    UnexpectedMethod {
        /// Channel the frame arrived on.
        channel: ChannelId,
        /// Name of the method that interrupted the content.
        method: &'static str,
    },
    /// The content header's class id differs from the method's (505).
    #[error("channel {channel}: content header class {got} does not match method class {expected}")]
    ClassMismatch {
        /// Channel the frame arrived on.
        channel: ChannelId,
        /// Class id of the pending method.
        expected: u16,
        /// Class id in the content header.
        got: u16,
    },
    /// Body frames carried more bytes than the header's body size (501).
    #[error("channel {channel}: body exceeds declared size {body_size}")]
    BodyOverrun {
        /// Channel the frame arrived on.
        channel: ChannelId,
        /// Size announced in the content header.
        body_size: u64,
    },
    /// The header announced a body above the configured maximum (406, a
    /// channel error like RabbitMQ's "message size ... larger than configured
    /// max size").
    #[error("channel {channel}: message size {size} is larger than configured max size {max}")]
    BodyTooLarge {
        /// Channel the frame arrived on.
        channel: ChannelId,
        /// Size announced in the content header.
        size: u64,
        /// Configured maximum.
        max: u64,
    },
}

impl AssemblyError {
    /// The reply code to close with; only 406 is a channel (soft) error.
    pub fn reply_code(&self) -> u16 {
        match self {
            AssemblyError::UnexpectedHeader { .. }
            | AssemblyError::UnexpectedBody { .. }
            | AssemblyError::UnexpectedMethod { .. }
            | AssemblyError::ClassMismatch { .. } => reply_code::UNEXPECTED_FRAME,
            AssemblyError::BodyOverrun { .. } => reply_code::FRAME_ERROR,
            AssemblyError::BodyTooLarge { .. } => reply_code::PRECONDITION_FAILED,
        }
    }

    /// The channel the offending frame arrived on.
    pub fn channel(&self) -> ChannelId {
        match self {
            AssemblyError::UnexpectedHeader { channel }
            | AssemblyError::UnexpectedBody { channel }
            | AssemblyError::UnexpectedMethod { channel, .. }
            | AssemblyError::ClassMismatch { channel, .. }
            | AssemblyError::BodyOverrun { channel, .. }
            | AssemblyError::BodyTooLarge { channel, .. } => *channel,
        }
    }
}
