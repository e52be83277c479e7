//! Per-connection content assembly: joins a content-carrying method with its
//! header and body frames into one [`Command`].
//!
//! Per channel:
//! ```text
//!            method (no content)            -> Command
//!   Idle --- method (has_content) ---> AwaitingHeader
//!   AwaitingHeader --- header, size 0 ------> Command, Idle
//!   AwaitingHeader --- header, size > 0 ----> AwaitingBody
//!   AwaitingBody --- body, total < size ----> AwaitingBody
//!   AwaitingBody --- body, total == size ---> Command, Idle
//!   anything else -> AssemblyError (channel state dropped)
//! ```

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use crate::ChannelId;
use crate::codec::len_u64;
use crate::error::AssemblyError;
use crate::frame::Frame;
use crate::method::Method;
use crate::properties::BasicProperties;

/// Default limit on a message body: RabbitMQ's default `max_message_size`
/// (128 MiB).
pub const DEFAULT_MAX_BODY: u64 = 128 * 1024 * 1024;

/// A complete command: a method plus, for content methods, its content.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// Channel it arrived on.
    pub channel: ChannelId,
    /// The method.
    pub method: Method,
    /// Properties and body, present exactly when `method.has_content()`.
    pub content: Option<Content>,
}

/// Properties and body of a message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Content {
    /// From the content header.
    pub properties: BasicProperties,
    /// The whole body.
    pub body: Bytes,
}

/// A content method waiting for the rest of its frames.
#[derive(Debug)]
struct Pending {
    method: Method,
    body: Option<PendingBody>,
}

/// Content whose header has arrived.
#[derive(Debug)]
struct PendingBody {
    properties: BasicProperties,
    body_size: u64,
    received: Received,
}

/// Body bytes so far. A single frame is kept as-is so the common one-frame
/// body is never copied.
#[derive(Debug)]
enum Received {
    Nothing,
    One(Bytes),
    Many(BytesMut),
}

impl Received {
    fn len(&self) -> u64 {
        match self {
            Received::Nothing => 0,
            Received::One(b) => len_u64(b.len()),
            Received::Many(b) => len_u64(b.len()),
        }
    }
}

/// Tracks, per channel, a content method waiting for its header and body
/// frames. One per connection; owned by the connection task.
#[derive(Debug)]
pub struct CommandAssembler {
    pending: HashMap<ChannelId, Pending>,
    max_body: u64,
}

impl Default for CommandAssembler {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandAssembler {
    /// An assembler with the default body limit ([`DEFAULT_MAX_BODY`]).
    pub fn new() -> Self {
        CommandAssembler {
            pending: HashMap::new(),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Sets the largest accepted body size. Bodies of several frames are
    /// buffered in one allocation of the announced size, so this also bounds
    /// memory per channel.
    pub fn with_max_body(mut self, max_body: u64) -> Self {
        self.max_body = max_body;
        self
    }

    /// The configured body limit.
    pub fn max_body(&self) -> u64 {
        self.max_body
    }

    /// Whether a content method on `channel` is waiting for more frames.
    pub fn is_pending(&self, channel: ChannelId) -> bool {
        self.pending.contains_key(&channel)
    }

    /// Drops partial content on a channel that is closing.
    pub fn reset_channel(&mut self, channel: ChannelId) {
        self.pending.remove(&channel);
    }

    /// Feeds one frame; returns the command once it is complete.
    ///
    /// Errors (see [`AssemblyError::reply_code`]): header or body with no
    /// content method pending, a method while content is pending, or a
    /// header of another class are 505 UNEXPECTED_FRAME; body bytes beyond
    /// the announced size are 501 FRAME_ERROR (the frames themselves are
    /// malformed); a body size above the limit is 406 PRECONDITION_FAILED,
    /// a channel error, reported at the header before any body is buffered.
    /// Any error drops the channel's partial content. Heartbeats are
    /// ignored (the connection task deals with them).
    pub fn feed(&mut self, frame: Frame) -> Result<Option<Command>, AssemblyError> {
        match frame {
            Frame::Method { channel, method } => self.on_method(channel, method),
            Frame::Header {
                channel,
                class_id,
                body_size,
                properties,
            } => self.on_header(channel, class_id, body_size, properties),
            Frame::Body { channel, payload } => self.on_body(channel, payload),
            Frame::Heartbeat { .. } => Ok(None),
        }
    }

    fn on_method(
        &mut self,
        channel: ChannelId,
        method: Method,
    ) -> Result<Option<Command>, AssemblyError> {
        if self.pending.remove(&channel).is_some() {
            return Err(AssemblyError::UnexpectedMethod {
                channel,
                method: method.name(),
            });
        }
        if method.has_content() {
            self.pending.insert(channel, Pending { method, body: None });
            return Ok(None);
        }
        Ok(Some(Command {
            channel,
            method,
            content: None,
        }))
    }

    fn on_header(
        &mut self,
        channel: ChannelId,
        class_id: u16,
        body_size: u64,
        properties: BasicProperties,
    ) -> Result<Option<Command>, AssemblyError> {
        let Some(pending) = self.pending.get_mut(&channel) else {
            return Err(AssemblyError::UnexpectedHeader { channel });
        };
        if pending.body.is_some() {
            self.pending.remove(&channel);
            return Err(AssemblyError::UnexpectedHeader { channel });
        }
        let expected = pending.method.class_id();
        if class_id != expected {
            self.pending.remove(&channel);
            return Err(AssemblyError::ClassMismatch {
                channel,
                expected,
                got: class_id,
            });
        }
        if body_size > self.max_body {
            self.pending.remove(&channel);
            return Err(AssemblyError::BodyTooLarge {
                channel,
                size: body_size,
                max: self.max_body,
            });
        }
        if body_size == 0 {
            return Ok(self.complete(channel, properties, Bytes::new()));
        }
        pending.body = Some(PendingBody {
            properties,
            body_size,
            received: Received::Nothing,
        });
        Ok(None)
    }

    fn on_body(
        &mut self,
        channel: ChannelId,
        payload: Bytes,
    ) -> Result<Option<Command>, AssemblyError> {
        let Some(body) = self.pending.get_mut(&channel).and_then(|p| p.body.as_mut()) else {
            self.pending.remove(&channel);
            return Err(AssemblyError::UnexpectedBody { channel });
        };
        let body_size = body.body_size;
        let total = body.received.len().saturating_add(len_u64(payload.len()));
        if total > body_size {
            self.pending.remove(&channel);
            return Err(AssemblyError::BodyOverrun { channel, body_size });
        }
        body.received = match std::mem::replace(&mut body.received, Received::Nothing) {
            Received::Nothing => Received::One(payload),
            Received::One(first) => {
                // body_size <= max_body was checked at the header; fall back
                // to growing on demand if it does not fit in usize.
                let cap = usize::try_from(body_size).unwrap_or(0);
                let mut buf = BytesMut::with_capacity(cap);
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&payload);
                Received::Many(buf)
            }
            Received::Many(mut buf) => {
                buf.extend_from_slice(&payload);
                Received::Many(buf)
            }
        };
        if total < body_size {
            return Ok(None);
        }
        let Some(PendingBody {
            properties,
            received,
            ..
        }) = self.pending.get_mut(&channel).and_then(|p| p.body.take())
        else {
            return Ok(None);
        };
        let bytes = match received {
            Received::Nothing => Bytes::new(),
            Received::One(b) => b,
            Received::Many(b) => b.freeze(),
        };
        Ok(self.complete(channel, properties, bytes))
    }

    fn complete(
        &mut self,
        channel: ChannelId,
        properties: BasicProperties,
        body: Bytes,
    ) -> Option<Command> {
        let pending = self.pending.remove(&channel)?;
        Some(Command {
            channel,
            method: pending.method,
            content: Some(Content { properties, body }),
        })
    }
}
