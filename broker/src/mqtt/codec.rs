//! Thin tokio-util adaptor over the sans-IO MQTT decoder.

use bytes::BytesMut;
use protocol_mqtt::{DecodeError, Packet, ProtocolVersion, decode};
use tokio_util::codec::Decoder;

/// Decodes MQTT packets; `version` is set once CONNECT is in.
#[derive(Debug)]
pub struct PacketDecoder {
    /// Protocol version of the connection (`None` before CONNECT).
    pub version: Option<ProtocolVersion>,
    /// Largest packet accepted.
    pub max_packet_size: usize,
}

/// Decoder errors: a malformed packet or the socket.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client sent a malformed packet.
    #[error(transparent)]
    Packet(#[from] DecodeError),
    /// Reading the socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Decoder for PacketDecoder {
    type Item = Packet;
    type Error = ReadError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, ReadError> {
        Ok(decode(src, self.version, self.max_packet_size)?)
    }
}
