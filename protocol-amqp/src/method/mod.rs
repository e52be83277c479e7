//! AMQP methods: one struct per method (one file per class) and the
//! [`Method`] enum that is the whole method vocabulary.
//!
//! Wire form of a method frame payload: `class-id:u16 method-id:u16 args`.
//! Reserved arguments (tickets, out-of-band, known-hosts, ...) are not struct
//! fields: they are written as 0 / empty and skipped on decode.

use bytes::{BufMut, BytesMut};

use crate::codec::Reader;
use crate::error::{MethodError, SyntaxError};

mod access;
mod basic;
mod channel;
mod confirm;
mod connection;
mod exchange;
mod queue;
mod tx;

pub use access::*;
pub use basic::*;
pub use channel::*;
pub use confirm::*;
pub use connection::*;
pub use exchange::*;
pub use queue::*;
pub use tx::*;

/// Argument codec implemented by every method struct.
pub(crate) trait Args: Sized {
    /// Writes the arguments (no class/method ids).
    fn write(&self, dst: &mut BytesMut);
    /// Reads the arguments (class/method ids already consumed).
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError>;
}

/// Declares an argument-less method as a unit struct.
macro_rules! empty_method {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl $crate::method::Args for $name {
            fn write(&self, _dst: &mut bytes::BytesMut) {}
            fn read(
                _r: &mut $crate::codec::Reader<'_>,
            ) -> Result<Self, $crate::error::SyntaxError> {
                Ok($name)
            }
        }
    };
}
pub(crate) use empty_method;

/// Builds the [`Method`] enum and its id/name tables from one list, so ids,
/// names and the decode dispatch cannot drift apart.
macro_rules! methods {
    ($($name:ident => ($class:literal, $method:literal, $text:literal, $content:literal),)*) => {
        /// Any AMQP 0-9-1 method (RabbitMQ dialect), by class and method.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Method {
            $(
                #[doc = concat!("`", $text, "` (", stringify!($class), ".", stringify!($method), ").")]
                $name($name),
            )*
        }

        $(
            impl $name {
                /// Class id on the wire.
                pub const CLASS_ID: u16 = $class;
                /// Method id on the wire.
                pub const METHOD_ID: u16 = $method;
                /// Dotted name, e.g. `queue.declare`.
                pub const NAME: &'static str = $text;
            }

            impl From<$name> for Method {
                fn from(m: $name) -> Method {
                    Method::$name(m)
                }
            }
        )*

        impl Method {
            /// Class id on the wire.
            pub fn class_id(&self) -> u16 {
                match self { $(Method::$name(_) => $class,)* }
            }

            /// Method id on the wire.
            pub fn method_id(&self) -> u16 {
                match self { $(Method::$name(_) => $method,)* }
            }

            /// Dotted name for logs and reply texts, e.g. `queue.declare`.
            pub fn name(&self) -> &'static str {
                match self { $(Method::$name(_) => $text,)* }
            }

            /// Whether a content header and body follow this method
            /// (basic.publish, basic.return, basic.deliver, basic.get-ok).
            pub fn has_content(&self) -> bool {
                match self { $(Method::$name(_) => $content,)* }
            }

            /// Dotted name of a method id pair, if known (for reply texts
            /// about methods that failed to decode).
            pub fn name_of(class_id: u16, method_id: u16) -> Option<&'static str> {
                match (class_id, method_id) {
                    $(($class, $method) => Some($text),)*
                    _ => None,
                }
            }

            /// Writes `class-id method-id args` (a method frame payload).
            pub fn encode(&self, dst: &mut BytesMut) {
                dst.put_u16(self.class_id());
                dst.put_u16(self.method_id());
                match self { $(Method::$name(m) => Args::write(m, dst),)* }
            }

            /// Parses a complete method frame payload; trailing bytes are a
            /// syntax error.
            pub fn decode(payload: &[u8]) -> Result<Method, MethodError> {
                let mut r = Reader::new(payload);
                let class_id = r.u16()?;
                let method_id = r.u16()?;
                let method = match (class_id, method_id) {
                    $(($class, $method) => Method::$name(<$name as Args>::read(&mut r)?),)*
                    _ => return Err(MethodError::UnknownMethod { class_id, method_id }),
                };
                r.finish()?;
                Ok(method)
            }
        }
    };
}

methods! {
    ConnectionStart => (10, 10, "connection.start", false),
    ConnectionStartOk => (10, 11, "connection.start-ok", false),
    ConnectionSecure => (10, 20, "connection.secure", false),
    ConnectionSecureOk => (10, 21, "connection.secure-ok", false),
    ConnectionTune => (10, 30, "connection.tune", false),
    ConnectionTuneOk => (10, 31, "connection.tune-ok", false),
    ConnectionOpen => (10, 40, "connection.open", false),
    ConnectionOpenOk => (10, 41, "connection.open-ok", false),
    ConnectionClose => (10, 50, "connection.close", false),
    ConnectionCloseOk => (10, 51, "connection.close-ok", false),
    ConnectionBlocked => (10, 60, "connection.blocked", false),
    ConnectionUnblocked => (10, 61, "connection.unblocked", false),
    ConnectionUpdateSecret => (10, 70, "connection.update-secret", false),
    ConnectionUpdateSecretOk => (10, 71, "connection.update-secret-ok", false),
    ChannelOpen => (20, 10, "channel.open", false),
    ChannelOpenOk => (20, 11, "channel.open-ok", false),
    ChannelFlow => (20, 20, "channel.flow", false),
    ChannelFlowOk => (20, 21, "channel.flow-ok", false),
    ChannelClose => (20, 40, "channel.close", false),
    ChannelCloseOk => (20, 41, "channel.close-ok", false),
    AccessRequest => (30, 10, "access.request", false),
    AccessRequestOk => (30, 11, "access.request-ok", false),
    ExchangeDeclare => (40, 10, "exchange.declare", false),
    ExchangeDeclareOk => (40, 11, "exchange.declare-ok", false),
    ExchangeDelete => (40, 20, "exchange.delete", false),
    ExchangeDeleteOk => (40, 21, "exchange.delete-ok", false),
    ExchangeBind => (40, 30, "exchange.bind", false),
    ExchangeBindOk => (40, 31, "exchange.bind-ok", false),
    ExchangeUnbind => (40, 40, "exchange.unbind", false),
    ExchangeUnbindOk => (40, 51, "exchange.unbind-ok", false),
    QueueDeclare => (50, 10, "queue.declare", false),
    QueueDeclareOk => (50, 11, "queue.declare-ok", false),
    QueueBind => (50, 20, "queue.bind", false),
    QueueBindOk => (50, 21, "queue.bind-ok", false),
    QueuePurge => (50, 30, "queue.purge", false),
    QueuePurgeOk => (50, 31, "queue.purge-ok", false),
    QueueDelete => (50, 40, "queue.delete", false),
    QueueDeleteOk => (50, 41, "queue.delete-ok", false),
    QueueUnbind => (50, 50, "queue.unbind", false),
    QueueUnbindOk => (50, 51, "queue.unbind-ok", false),
    BasicQos => (60, 10, "basic.qos", false),
    BasicQosOk => (60, 11, "basic.qos-ok", false),
    BasicConsume => (60, 20, "basic.consume", false),
    BasicConsumeOk => (60, 21, "basic.consume-ok", false),
    BasicCancel => (60, 30, "basic.cancel", false),
    BasicCancelOk => (60, 31, "basic.cancel-ok", false),
    BasicPublish => (60, 40, "basic.publish", true),
    BasicReturn => (60, 50, "basic.return", true),
    BasicDeliver => (60, 60, "basic.deliver", true),
    BasicGet => (60, 70, "basic.get", false),
    BasicGetOk => (60, 71, "basic.get-ok", true),
    BasicGetEmpty => (60, 72, "basic.get-empty", false),
    BasicAck => (60, 80, "basic.ack", false),
    BasicReject => (60, 90, "basic.reject", false),
    BasicRecoverAsync => (60, 100, "basic.recover-async", false),
    BasicRecover => (60, 110, "basic.recover", false),
    BasicRecoverOk => (60, 111, "basic.recover-ok", false),
    BasicNack => (60, 120, "basic.nack", false),
    ConfirmSelect => (85, 10, "confirm.select", false),
    ConfirmSelectOk => (85, 11, "confirm.select-ok", false),
    TxSelect => (90, 10, "tx.select", false),
    TxSelectOk => (90, 11, "tx.select-ok", false),
    TxCommit => (90, 20, "tx.commit", false),
    TxCommitOk => (90, 21, "tx.commit-ok", false),
    TxRollback => (90, 30, "tx.rollback", false),
    TxRollbackOk => (90, 31, "tx.rollback-ok", false),
}
