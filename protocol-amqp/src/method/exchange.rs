//! Class 40, exchange: declare and delete, plus RabbitMQ's exchange-to-
//! exchange bindings. Note unbind-ok is method 51, not 41.

use bytes::{BufMut, BytesMut};

use super::{Args, empty_method};
use crate::codec::{Reader, put_bits, put_shortstr};
use crate::error::SyntaxError;
use crate::types::{FieldTable, ShortStr};

/// Creates an exchange, or checks an existing one. The reserved ticket is
/// written as 0 and ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExchangeDeclare {
    /// Exchange name.
    pub exchange: ShortStr,
    /// Exchange type (`direct`, `fanout`, `topic`, `headers`, ...); the
    /// spec's `type`.
    pub kind: ShortStr,
    /// Only check that it exists.
    pub passive: bool,
    /// Survives a broker restart.
    pub durable: bool,
    /// Deleted when its last binding goes.
    pub auto_delete: bool,
    /// Clients cannot publish to it directly.
    pub internal: bool,
    /// Do not send declare-ok.
    pub nowait: bool,
    /// Extra arguments (e.g. `alternate-exchange`).
    pub arguments: FieldTable,
}

impl Args for ExchangeDeclare {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.exchange);
        put_shortstr(dst, &self.kind);
        put_bits(
            dst,
            &[
                self.passive,
                self.durable,
                self.auto_delete,
                self.internal,
                self.nowait,
            ],
        );
        self.arguments.encode(dst);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let exchange = r.shortstr()?;
        let kind = r.shortstr()?;
        let [passive, durable, auto_delete, internal, nowait] = r.bits()?;
        Ok(ExchangeDeclare {
            exchange,
            kind,
            passive,
            durable,
            auto_delete,
            internal,
            nowait,
            arguments: r.table()?,
        })
    }
}

empty_method!(
    /// Confirms exchange.declare.
    ExchangeDeclareOk
);

/// Deletes an exchange. The reserved ticket is written as 0 and ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExchangeDelete {
    /// Exchange name.
    pub exchange: ShortStr,
    /// Refuse (406) if the exchange still has bindings.
    pub if_unused: bool,
    /// Do not send delete-ok.
    pub nowait: bool,
}

impl Args for ExchangeDelete {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.exchange);
        put_bits(dst, &[self.if_unused, self.nowait]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let exchange = r.shortstr()?;
        let [if_unused, nowait] = r.bits()?;
        Ok(ExchangeDelete {
            exchange,
            if_unused,
            nowait,
        })
    }
}

empty_method!(
    /// Confirms exchange.delete.
    ExchangeDeleteOk
);

/// RabbitMQ extension: binds exchange `destination` to exchange `source`.
/// The reserved ticket is written as 0 and ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExchangeBind {
    /// Exchange receiving the messages.
    pub destination: ShortStr,
    /// Exchange the messages come from.
    pub source: ShortStr,
    /// Binding key.
    pub routing_key: ShortStr,
    /// Do not send bind-ok.
    pub nowait: bool,
    /// Binding arguments (headers exchanges match on them).
    pub arguments: FieldTable,
}

impl Args for ExchangeBind {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.destination);
        put_shortstr(dst, &self.source);
        put_shortstr(dst, &self.routing_key);
        put_bits(dst, &[self.nowait]);
        self.arguments.encode(dst);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let destination = r.shortstr()?;
        let source = r.shortstr()?;
        let routing_key = r.shortstr()?;
        let [nowait] = r.bits()?;
        Ok(ExchangeBind {
            destination,
            source,
            routing_key,
            nowait,
            arguments: r.table()?,
        })
    }
}

empty_method!(
    /// Confirms exchange.bind.
    ExchangeBindOk
);

/// RabbitMQ extension: removes an exchange-to-exchange binding. The reserved
/// ticket is written as 0 and ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExchangeUnbind {
    /// Exchange that received the messages.
    pub destination: ShortStr,
    /// Exchange the messages came from.
    pub source: ShortStr,
    /// Binding key.
    pub routing_key: ShortStr,
    /// Do not send unbind-ok.
    pub nowait: bool,
    /// Binding arguments.
    pub arguments: FieldTable,
}

impl Args for ExchangeUnbind {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.destination);
        put_shortstr(dst, &self.source);
        put_shortstr(dst, &self.routing_key);
        put_bits(dst, &[self.nowait]);
        self.arguments.encode(dst);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let destination = r.shortstr()?;
        let source = r.shortstr()?;
        let routing_key = r.shortstr()?;
        let [nowait] = r.bits()?;
        Ok(ExchangeUnbind {
            destination,
            source,
            routing_key,
            nowait,
            arguments: r.table()?,
        })
    }
}

empty_method!(
    /// Confirms exchange.unbind (method id 51).
    ExchangeUnbindOk
);
