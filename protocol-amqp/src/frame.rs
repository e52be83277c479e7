//! Frames: cutting the byte stream into [`Frame`]s and writing them back.
//!
//! ```text
//! type:u8  channel:u16  size:u32  payload[size]  frame-end:u8 = 0xCE
//! ```
//! The size field is checked against frame_max as soon as the 7 header bytes
//! are in, before any payload is waited for; body payloads are handed out as
//! zero-copy slices of the read buffer.

use bytes::{Buf, BufMut, BytesMut};

use crate::ChannelId;
use crate::codec::{Reader, len_u64, len_usize};
use crate::error::FrameError;
use crate::method::Method;
use crate::properties::BasicProperties;

/// Frame type octet of a method frame.
pub const FRAME_METHOD: u8 = 1;
/// Frame type octet of a content header frame.
pub const FRAME_HEADER: u8 = 2;
/// Frame type octet of a content body frame.
pub const FRAME_BODY: u8 = 3;
/// Frame type octet of a heartbeat frame (8 per the XML spec, not the PDF's 4).
pub const FRAME_HEARTBEAT: u8 = 8;
/// The octet that must follow every payload.
pub const FRAME_END: u8 = 0xCE;
/// Bytes before the payload: type, channel, size.
pub const FRAME_HEADER_SIZE: usize = 7;
/// Bytes a frame adds around its payload (header plus end octet).
pub const FRAME_OVERHEAD: u32 = 8;

/// One AMQP frame; the whole wire vocabulary below commands.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A method, possibly the start of a content-carrying command.
    Method {
        /// Channel, 0 for connection-class methods.
        channel: ChannelId,
        /// The decoded method.
        method: Method,
    },
    /// A content header: follows a content-carrying method.
    Header {
        /// Channel.
        channel: ChannelId,
        /// Class of the method it belongs to (60).
        class_id: u16,
        /// Total bytes of the body frames that follow.
        body_size: u64,
        /// Message properties.
        properties: BasicProperties,
    },
    /// A slice of message body.
    Body {
        /// Channel.
        channel: ChannelId,
        /// The bytes (a zero-copy slice of the read buffer when decoded).
        payload: bytes::Bytes,
    },
    /// Keep-alive. Valid only on channel 0; the broker answers other
    /// channels with 505.
    Heartbeat {
        /// Channel it arrived on.
        channel: ChannelId,
    },
}

impl Frame {
    /// The channel the frame travels on.
    pub fn channel(&self) -> ChannelId {
        match self {
            Frame::Method { channel, .. }
            | Frame::Header { channel, .. }
            | Frame::Body { channel, .. }
            | Frame::Heartbeat { channel } => *channel,
        }
    }
}

/// Cuts one frame off the front of `src`.
///
/// Returns `Ok(None)` when more bytes are needed (nothing is consumed then).
/// `frame_max` is the negotiated maximum frame size including the 8 bytes of
/// overhead, 0 = unlimited; like RabbitMQ we tolerate clients that forget the
/// overhead and reject only payloads larger than `frame_max` itself. The
/// check happens as soon as the header is in, so an oversized frame is never
/// buffered. On error the stream position is unreliable: close the
/// connection.
pub fn decode_frame(src: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, FrameError> {
    if src.len() < FRAME_HEADER_SIZE {
        return Ok(None);
    }
    let kind = src[0];
    let channel = u16::from_be_bytes([src[1], src[2]]);
    let size = u32::from_be_bytes([src[3], src[4], src[5], src[6]]);
    if !matches!(
        kind,
        FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
    ) {
        return Err(FrameError::UnknownFrameType(kind));
    }
    if frame_max != 0 && size > frame_max {
        return Err(FrameError::TooLarge {
            size,
            max: frame_max,
        });
    }
    let payload_len = len_usize(size);
    let Some(total) = payload_len.checked_add(FRAME_HEADER_SIZE + 1) else {
        return Err(FrameError::TooLarge {
            size,
            max: frame_max,
        });
    };
    if src.len() < total {
        // Only pre-size the buffer when a negotiated limit bounds the length.
        if frame_max != 0 {
            src.reserve(total - src.len());
        }
        return Ok(None);
    }
    let end = src[total - 1];
    if end != FRAME_END {
        return Err(FrameError::BadFrameEnd(end));
    }
    src.advance(FRAME_HEADER_SIZE);
    let payload = src.split_to(payload_len).freeze();
    src.advance(1);

    let frame = match kind {
        FRAME_METHOD => Frame::Method {
            channel,
            method: Method::decode(&payload)?,
        },
        FRAME_HEADER => {
            let mut r = Reader::new(&payload);
            let class_id = r.u16()?;
            let _weight = r.u16()?;
            let body_size = r.u64()?;
            let properties = BasicProperties::read(&mut r)?;
            r.finish()?;
            Frame::Header {
                channel,
                class_id,
                body_size,
                properties,
            }
        }
        FRAME_BODY => Frame::Body { channel, payload },
        _ => {
            if !payload.is_empty() {
                return Err(FrameError::BadHeartbeat);
            }
            Frame::Heartbeat { channel }
        }
    };
    Ok(Some(frame))
}

/// Writes the frame header with a placeholder size; returns where the size
/// goes.
fn begin_frame(dst: &mut BytesMut, kind: u8, channel: ChannelId) -> usize {
    dst.put_u8(kind);
    dst.put_u16(channel);
    let pos = dst.len();
    dst.put_u32(0);
    pos
}

/// Patches the size and appends the end octet.
fn end_frame(dst: &mut BytesMut, size_pos: usize) {
    let size = dst.len() - size_pos - 4;
    let size = u32::try_from(size).unwrap_or(u32::MAX);
    dst[size_pos..size_pos + 4].copy_from_slice(&size.to_be_bytes());
    dst.put_u8(FRAME_END);
}

/// Appends one frame to `dst`. Payloads are written in place (the size field
/// is patched afterwards), so nothing is allocated besides `dst` growth.
pub fn encode_frame(frame: &Frame, dst: &mut BytesMut) {
    match frame {
        Frame::Method { channel, method } => encode_method(*channel, method, dst),
        Frame::Header {
            channel,
            class_id,
            body_size,
            properties,
        } => encode_header(*channel, *class_id, *body_size, properties, dst),
        Frame::Body { channel, payload } => encode_body(*channel, payload, dst),
        Frame::Heartbeat { channel } => {
            let pos = begin_frame(dst, FRAME_HEARTBEAT, *channel);
            end_frame(dst, pos);
        }
    }
}

/// Appends a method frame without building a [`Frame`] first.
pub fn encode_method(channel: ChannelId, method: &Method, dst: &mut BytesMut) {
    let pos = begin_frame(dst, FRAME_METHOD, channel);
    method.encode(dst);
    end_frame(dst, pos);
}

fn encode_header(
    channel: ChannelId,
    class_id: u16,
    body_size: u64,
    properties: &BasicProperties,
    dst: &mut BytesMut,
) {
    let pos = begin_frame(dst, FRAME_HEADER, channel);
    dst.put_u16(class_id);
    dst.put_u16(0); // weight
    dst.put_u64(body_size);
    properties.encode(dst);
    end_frame(dst, pos);
}

fn encode_body(channel: ChannelId, payload: &[u8], dst: &mut BytesMut) {
    let pos = begin_frame(dst, FRAME_BODY, channel);
    dst.put_slice(payload);
    end_frame(dst, pos);
}

/// Largest body-frame payload for a negotiated `frame_max` (0 = unlimited).
///
/// Never 0, so a bogus frame_max below 9 still makes progress (one byte per
/// frame) instead of looping forever.
pub fn max_body_chunk(frame_max: u32) -> usize {
    if frame_max == 0 {
        usize::MAX
    } else {
        len_usize(frame_max.saturating_sub(FRAME_OVERHEAD).max(1))
    }
}

/// Appends a content-carrying command: the method frame, one header frame
/// (class taken from the method) and the body split into frames of at most
/// `frame_max - 8` bytes (one frame if `frame_max` is 0, none for an empty
/// body). This is the delivery hot path: everything is written straight into
/// `dst` after a single reservation.
pub fn encode_content(
    channel: ChannelId,
    method: &Method,
    properties: &BasicProperties,
    body: &[u8],
    frame_max: u32,
    dst: &mut BytesMut,
) {
    let chunk = max_body_chunk(frame_max);
    let body_frames = body.len().div_ceil(chunk);
    let overhead = len_usize(FRAME_OVERHEAD);
    // Method args are small; 64 bytes covers the usual exchange/key lengths
    // and `reserve` only has to be a good guess.
    dst.reserve(overhead * (2 + body_frames) + 64 + 14 + properties.encoded_len() + body.len());
    encode_method(channel, method, dst);
    encode_header(
        channel,
        method.class_id(),
        len_u64(body.len()),
        properties,
        dst,
    );
    for piece in body.chunks(chunk) {
        encode_body(channel, piece, dst);
    }
}
