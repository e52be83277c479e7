//! Errors of broker operations, split by what they shut down (as AMQP does): a channel
//! exception closes one channel, a connection exception closes the connection.

use protocol_amqp::reply_code;

/// An operation failed with an AMQP reply code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmqpError {
    /// Soft error: channel.close.
    #[error("channel error {code}: {text}")]
    Channel {
        /// Reply code.
        code: u16,
        /// Reply text, `NAME - explanation`.
        text: String,
    },
    /// Hard error: connection.close.
    #[error("connection error {code}: {text}")]
    Connection {
        /// Reply code.
        code: u16,
        /// Reply text, `NAME - explanation`.
        text: String,
    },
}

impl AmqpError {
    /// 404 on a channel.
    pub fn not_found(what: impl std::fmt::Display) -> AmqpError {
        AmqpError::Channel {
            code: reply_code::NOT_FOUND,
            text: format!("NOT_FOUND - {what}"),
        }
    }
    /// 403 on a channel.
    pub fn access_refused(what: impl std::fmt::Display) -> AmqpError {
        AmqpError::Channel {
            code: reply_code::ACCESS_REFUSED,
            text: format!("ACCESS_REFUSED - {what}"),
        }
    }
    /// 405 on a channel.
    pub fn resource_locked(what: impl std::fmt::Display) -> AmqpError {
        AmqpError::Channel {
            code: reply_code::RESOURCE_LOCKED,
            text: format!("RESOURCE_LOCKED - {what}"),
        }
    }
    /// 406 on a channel.
    pub fn precondition_failed(what: impl std::fmt::Display) -> AmqpError {
        AmqpError::Channel {
            code: reply_code::PRECONDITION_FAILED,
            text: format!("PRECONDITION_FAILED - {what}"),
        }
    }
    /// 541 on the connection.
    pub fn internal(what: impl std::fmt::Display) -> AmqpError {
        AmqpError::Connection {
            code: reply_code::INTERNAL_ERROR,
            text: format!("INTERNAL_ERROR - {what}"),
        }
    }
    /// A connection error with any code.
    pub fn connection(code: u16, name: &str, what: impl std::fmt::Display) -> AmqpError {
        AmqpError::Connection {
            code,
            text: format!("{name} - {what}"),
        }
    }
    /// The reply code.
    pub fn code(&self) -> u16 {
        match self {
            AmqpError::Channel { code, .. } | AmqpError::Connection { code, .. } => *code,
        }
    }
}
