//! Sans-IO AMQP 0-9-1 codec in RabbitMQ's dialect: protocol header, frames,
//! methods, field tables, content properties and content assembly.
//!
//! No sockets, no runtime, no clock: the broker's connection task feeds
//! bytes to [`decode_frame`], hands frames to a [`CommandAssembler`], and
//! writes replies with [`encode_frame`] / [`encode_content`].
//!
//! # Layout
//! - [`types`]: `ShortStr`, `FieldValue`, `FieldTable` (RabbitMQ's tags).
//! - [`properties`]: `BasicProperties`, the content header property list.
//! - [`method`]: one struct per method, one file per class, and the
//!   [`Method`] enum.
//! - [`frame`]: `Frame`, `decode_frame`, `encode_frame`, `encode_content`.
//! - [`assembler`]: `CommandAssembler` joining method + header + body frames.
//! - [`error`]: one small error enum per layer, each with `reply_code()`.
//! - [`reply_code`]: the AMQP reply code constants.
//! - `codec` (private): bounds-checked primitive readers and writers.

mod codec;

pub mod assembler;
pub mod error;
pub mod frame;
pub mod method;
pub mod properties;
pub mod reply_code;
pub mod types;

pub use assembler::{Command, CommandAssembler, Content, DEFAULT_MAX_BODY};
pub use error::{AssemblyError, BadProtocolHeader, FrameError, MethodError, SyntaxError, TooLong};
pub use frame::{
    FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_HEARTBEAT, FRAME_METHOD,
    FRAME_OVERHEAD, Frame, decode_frame, encode_content, encode_frame, encode_method,
    max_body_chunk,
};
pub use method::*;
pub use properties::BasicProperties;
pub use types::{FieldTable, FieldValue, MAX_TABLE_DEPTH, ShortStr};

/// The 8 bytes an AMQP 0-9-1 client sends first, and that the server answers
/// with when it does not like the client's header.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

/// The header of AMQP 0-9 clients, which RabbitMQ also serves as 0-9-1.
const PROTOCOL_HEADER_0_9: [u8; 8] = *b"AMQP\x01\x01\x00\x09";

/// Checks the protocol header at the start of `buf`.
///
/// `Ok(Some(()))`: accepted (0-9-1, or 0-9 as `AMQP 1 1 0 9` like RabbitMQ);
/// the caller consumes 8 bytes. `Ok(None)`: fewer than 8 bytes so far.
/// `Err`: anything else; answer with [`PROTOCOL_HEADER`] and close.
pub fn check_protocol_header(buf: &[u8]) -> Result<Option<()>, BadProtocolHeader> {
    let Some(head) = buf.get(..8) else {
        return Ok(None);
    };
    let mut got = [0u8; 8];
    got.copy_from_slice(head);
    if got == PROTOCOL_HEADER || got == PROTOCOL_HEADER_0_9 {
        Ok(Some(()))
    } else {
        Err(BadProtocolHeader(got))
    }
}

/// A channel number; 0 is the connection itself.
pub type ChannelId = u16;

/// The smallest frame_max a peer may negotiate (spec constant; frames up to
/// this size are allowed before tuning).
pub const FRAME_MIN_SIZE: u32 = 4096;
