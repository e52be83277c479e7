//! The library's error type.

/// Anything that stops a scenario.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Socket I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The broker sent an AMQP frame we could not decode.
    #[error("AMQP frame: {0}")]
    AmqpFrame(#[from] protocol_amqp::FrameError),
    /// The broker sent an AMQP method we could not decode.
    #[error("AMQP method: {0}")]
    AmqpMethod(#[from] protocol_amqp::MethodError),
    /// The broker sent an MQTT packet we could not decode.
    #[error("MQTT packet: {0}")]
    MqttDecode(#[from] protocol_mqtt::DecodeError),
    /// An MQTT packet could not be encoded (a name too long, ...).
    #[error("MQTT encode: {0}")]
    MqttEncode(#[from] protocol_mqtt::EncodeError),
    /// The broker answered something we did not expect.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The broker closed the connection (with its reason when it gave one).
    #[error("connection closed by the broker: {0}")]
    Closed(String),
    /// Nothing arrived in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// Options that cannot work together.
    #[error("bad options: {0}")]
    Options(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to an I/O error.
pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}
