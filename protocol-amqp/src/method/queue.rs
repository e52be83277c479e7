//! Class 50, queue: declare, bind, unbind, purge, delete.
//! Every client-sent method starts with a reserved ticket (written as 0,
//! ignored on decode).

use bytes::{BufMut, BytesMut};

use super::{Args, empty_method};
use crate::codec::{Reader, put_bits, put_shortstr};
use crate::error::SyntaxError;
use crate::types::{FieldTable, ShortStr};

/// Creates a queue, or checks an existing one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueDeclare {
    /// Queue name; empty = let the server name it.
    pub queue: ShortStr,
    /// Only check that it exists.
    pub passive: bool,
    /// Survives a broker restart.
    pub durable: bool,
    /// Owned by this connection, deleted when it closes.
    pub exclusive: bool,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
    /// Do not send declare-ok.
    pub nowait: bool,
    /// Extra arguments (`x-message-ttl`, `x-max-length`, ...).
    pub arguments: FieldTable,
}

impl Args for QueueDeclare {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.queue);
        put_bits(
            dst,
            &[
                self.passive,
                self.durable,
                self.exclusive,
                self.auto_delete,
                self.nowait,
            ],
        );
        self.arguments.encode(dst);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let queue = r.shortstr()?;
        let [passive, durable, exclusive, auto_delete, nowait] = r.bits()?;
        Ok(QueueDeclare {
            queue,
            passive,
            durable,
            exclusive,
            auto_delete,
            nowait,
            arguments: r.table()?,
        })
    }
}

/// Confirms queue.declare with the (possibly generated) name and counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueDeclareOk {
    /// Queue name.
    pub queue: ShortStr,
    /// Messages ready for delivery.
    pub message_count: u32,
    /// Active consumers.
    pub consumer_count: u32,
}

impl Args for QueueDeclareOk {
    fn write(&self, dst: &mut BytesMut) {
        put_shortstr(dst, &self.queue);
        dst.put_u32(self.message_count);
        dst.put_u32(self.consumer_count);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(QueueDeclareOk {
            queue: r.shortstr()?,
            message_count: r.u32()?,
            consumer_count: r.u32()?,
        })
    }
}

/// Binds a queue to an exchange.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueBind {
    /// Queue name; empty = the channel's last declared queue.
    pub queue: ShortStr,
    /// Exchange name.
    pub exchange: ShortStr,
    /// Binding key.
    pub routing_key: ShortStr,
    /// Do not send bind-ok.
    pub nowait: bool,
    /// Binding arguments (headers exchanges match on them).
    pub arguments: FieldTable,
}

impl Args for QueueBind {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.queue);
        put_shortstr(dst, &self.exchange);
        put_shortstr(dst, &self.routing_key);
        put_bits(dst, &[self.nowait]);
        self.arguments.encode(dst);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let queue = r.shortstr()?;
        let exchange = r.shortstr()?;
        let routing_key = r.shortstr()?;
        let [nowait] = r.bits()?;
        Ok(QueueBind {
            queue,
            exchange,
            routing_key,
            nowait,
            arguments: r.table()?,
        })
    }
}

empty_method!(
    /// Confirms queue.bind.
    QueueBindOk
);

/// Removes all ready messages from a queue.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueuePurge {
    /// Queue name.
    pub queue: ShortStr,
    /// Do not send purge-ok.
    pub nowait: bool,
}

impl Args for QueuePurge {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.queue);
        put_bits(dst, &[self.nowait]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let queue = r.shortstr()?;
        let [nowait] = r.bits()?;
        Ok(QueuePurge { queue, nowait })
    }
}

/// Confirms queue.purge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueuePurgeOk {
    /// Messages purged.
    pub message_count: u32,
}

impl Args for QueuePurgeOk {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u32(self.message_count);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(QueuePurgeOk {
            message_count: r.u32()?,
        })
    }
}

/// Deletes a queue.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueDelete {
    /// Queue name.
    pub queue: ShortStr,
    /// Refuse (406) if it has consumers.
    pub if_unused: bool,
    /// Refuse (406) if it has messages.
    pub if_empty: bool,
    /// Do not send delete-ok.
    pub nowait: bool,
}

impl Args for QueueDelete {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.queue);
        put_bits(dst, &[self.if_unused, self.if_empty, self.nowait]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let queue = r.shortstr()?;
        let [if_unused, if_empty, nowait] = r.bits()?;
        Ok(QueueDelete {
            queue,
            if_unused,
            if_empty,
            nowait,
        })
    }
}

/// Confirms queue.delete.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDeleteOk {
    /// Messages deleted with the queue.
    pub message_count: u32,
}

impl Args for QueueDeleteOk {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u32(self.message_count);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(QueueDeleteOk {
            message_count: r.u32()?,
        })
    }
}

/// Removes a queue binding (there is no nowait flag).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueUnbind {
    /// Queue name.
    pub queue: ShortStr,
    /// Exchange name.
    pub exchange: ShortStr,
    /// Binding key.
    pub routing_key: ShortStr,
    /// Binding arguments.
    pub arguments: FieldTable,
}

impl Args for QueueUnbind {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.queue);
        put_shortstr(dst, &self.exchange);
        put_shortstr(dst, &self.routing_key);
        self.arguments.encode(dst);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        Ok(QueueUnbind {
            queue: r.shortstr()?,
            exchange: r.shortstr()?,
            routing_key: r.shortstr()?,
            arguments: r.table()?,
        })
    }
}

empty_method!(
    /// Confirms queue.unbind.
    QueueUnbindOk
);
