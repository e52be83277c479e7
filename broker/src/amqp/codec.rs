//! Thin tokio-util adaptor over the sans-IO frame decoder.

use bytes::BytesMut;
use protocol_amqp::{Frame, FrameError, decode_frame};
use tokio_util::codec::Decoder;

/// Decodes AMQP frames; `frame_max` is raised or lowered once tune-ok is in.
#[derive(Debug)]
pub struct FrameDecoder {
    /// Negotiated frame_max (0 = unlimited).
    pub frame_max: u32,
}

/// Decoder errors: a broken frame or the socket.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The peer sent a malformed frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Reading the socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Decoder for FrameDecoder {
    type Item = Frame;
    type Error = DecodeError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        Ok(decode_frame(src, self.frame_max)?)
    }
}
