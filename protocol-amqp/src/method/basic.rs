//! Class 60, basic: prefetch, consumers, publishing, delivery and
//! acknowledgements. publish, return, deliver and get-ok carry content.

use bytes::{BufMut, BytesMut};

use super::{Args, empty_method};
use crate::codec::{Reader, put_bits, put_shortstr};
use crate::error::SyntaxError;
use crate::types::{FieldTable, ShortStr};

/// Sets the consumer prefetch window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BasicQos {
    /// Byte window; RabbitMQ refuses non-zero with 540.
    pub prefetch_size: u32,
    /// Unacked message window, 0 = unlimited.
    pub prefetch_count: u16,
    /// RabbitMQ: apply per channel (true) instead of per consumer.
    pub global: bool,
}

impl Args for BasicQos {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u32(self.prefetch_size);
        dst.put_u16(self.prefetch_count);
        put_bits(dst, &[self.global]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let prefetch_size = r.u32()?;
        let prefetch_count = r.u16()?;
        let [global] = r.bits()?;
        Ok(BasicQos {
            prefetch_size,
            prefetch_count,
            global,
        })
    }
}

empty_method!(
    /// Confirms basic.qos.
    BasicQosOk
);

/// Starts a consumer on a queue. The reserved ticket is written as 0 and
/// ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicConsume {
    /// Queue name; empty = the channel's last declared queue.
    pub queue: ShortStr,
    /// Consumer tag; empty = let the server generate one.
    pub consumer_tag: ShortStr,
    /// Do not deliver messages published on this connection (ignored by
    /// RabbitMQ).
    pub no_local: bool,
    /// Deliveries need no ack.
    pub no_ack: bool,
    /// Only consumer on the queue.
    pub exclusive: bool,
    /// Do not send consume-ok.
    pub nowait: bool,
    /// Consumer arguments (`x-priority`, ...).
    pub arguments: FieldTable,
}

impl Args for BasicConsume {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.queue);
        put_shortstr(dst, &self.consumer_tag);
        put_bits(
            dst,
            &[self.no_local, self.no_ack, self.exclusive, self.nowait],
        );
        self.arguments.encode(dst);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let queue = r.shortstr()?;
        let consumer_tag = r.shortstr()?;
        let [no_local, no_ack, exclusive, nowait] = r.bits()?;
        Ok(BasicConsume {
            queue,
            consumer_tag,
            no_local,
            no_ack,
            exclusive,
            nowait,
            arguments: r.table()?,
        })
    }
}

/// Confirms basic.consume with the consumer tag in use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicConsumeOk {
    /// Consumer tag.
    pub consumer_tag: ShortStr,
}

impl Args for BasicConsumeOk {
    fn write(&self, dst: &mut BytesMut) {
        put_shortstr(dst, &self.consumer_tag);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(BasicConsumeOk {
            consumer_tag: r.shortstr()?,
        })
    }
}

/// Cancels a consumer (the server sends it too, when a queue is deleted).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicCancel {
    /// Consumer tag.
    pub consumer_tag: ShortStr,
    /// Do not send cancel-ok.
    pub nowait: bool,
}

impl Args for BasicCancel {
    fn write(&self, dst: &mut BytesMut) {
        put_shortstr(dst, &self.consumer_tag);
        put_bits(dst, &[self.nowait]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let consumer_tag = r.shortstr()?;
        let [nowait] = r.bits()?;
        Ok(BasicCancel {
            consumer_tag,
            nowait,
        })
    }
}

/// Confirms basic.cancel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicCancelOk {
    /// Consumer tag.
    pub consumer_tag: ShortStr,
}

impl Args for BasicCancelOk {
    fn write(&self, dst: &mut BytesMut) {
        put_shortstr(dst, &self.consumer_tag);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(BasicCancelOk {
            consumer_tag: r.shortstr()?,
        })
    }
}

/// Publishes a message (content follows). The reserved ticket is written
/// as 0 and ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicPublish {
    /// Exchange name; empty = default exchange.
    pub exchange: ShortStr,
    /// Routing key.
    pub routing_key: ShortStr,
    /// Return the message (312) if it routes nowhere.
    pub mandatory: bool,
    /// Refused by RabbitMQ with 540.
    pub immediate: bool,
}

impl Args for BasicPublish {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.exchange);
        put_shortstr(dst, &self.routing_key);
        put_bits(dst, &[self.mandatory, self.immediate]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let exchange = r.shortstr()?;
        let routing_key = r.shortstr()?;
        let [mandatory, immediate] = r.bits()?;
        Ok(BasicPublish {
            exchange,
            routing_key,
            mandatory,
            immediate,
        })
    }
}

/// Server returns an unroutable mandatory message (content follows).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicReturn {
    /// Usually 312 NO_ROUTE.
    pub reply_code: u16,
    /// `"NO_ROUTE"`.
    pub reply_text: ShortStr,
    /// Exchange it was published to.
    pub exchange: ShortStr,
    /// Routing key it was published with.
    pub routing_key: ShortStr,
}

impl Args for BasicReturn {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(self.reply_code);
        put_shortstr(dst, &self.reply_text);
        put_shortstr(dst, &self.exchange);
        put_shortstr(dst, &self.routing_key);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        Ok(BasicReturn {
            reply_code: r.u16()?,
            reply_text: r.shortstr()?,
            exchange: r.shortstr()?,
            routing_key: r.shortstr()?,
        })
    }
}

/// Server pushes a message to a consumer (content follows).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicDeliver {
    /// Consumer it is for.
    pub consumer_tag: ShortStr,
    /// Channel-scoped tag to ack with.
    pub delivery_tag: u64,
    /// Delivered before and not acked.
    pub redelivered: bool,
    /// Exchange it was published to.
    pub exchange: ShortStr,
    /// Routing key it was published with.
    pub routing_key: ShortStr,
}

impl Args for BasicDeliver {
    fn write(&self, dst: &mut BytesMut) {
        put_shortstr(dst, &self.consumer_tag);
        dst.put_u64(self.delivery_tag);
        put_bits(dst, &[self.redelivered]);
        put_shortstr(dst, &self.exchange);
        put_shortstr(dst, &self.routing_key);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let consumer_tag = r.shortstr()?;
        let delivery_tag = r.u64()?;
        let [redelivered] = r.bits()?;
        Ok(BasicDeliver {
            consumer_tag,
            delivery_tag,
            redelivered,
            exchange: r.shortstr()?,
            routing_key: r.shortstr()?,
        })
    }
}

/// Polls one message from a queue. The reserved ticket is written as 0 and
/// ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicGet {
    /// Queue name; empty = the channel's last declared queue.
    pub queue: ShortStr,
    /// The message needs no ack.
    pub no_ack: bool,
}

impl Args for BasicGet {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u16(0);
        put_shortstr(dst, &self.queue);
        put_bits(dst, &[self.no_ack]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.u16()?;
        let queue = r.shortstr()?;
        let [no_ack] = r.bits()?;
        Ok(BasicGet { queue, no_ack })
    }
}

/// Answers basic.get with a message (content follows).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicGetOk {
    /// Channel-scoped tag to ack with.
    pub delivery_tag: u64,
    /// Delivered before and not acked.
    pub redelivered: bool,
    /// Exchange it was published to.
    pub exchange: ShortStr,
    /// Routing key it was published with.
    pub routing_key: ShortStr,
    /// Messages still ready in the queue.
    pub message_count: u32,
}

impl Args for BasicGetOk {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u64(self.delivery_tag);
        put_bits(dst, &[self.redelivered]);
        put_shortstr(dst, &self.exchange);
        put_shortstr(dst, &self.routing_key);
        dst.put_u32(self.message_count);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let delivery_tag = r.u64()?;
        let [redelivered] = r.bits()?;
        Ok(BasicGetOk {
            delivery_tag,
            redelivered,
            exchange: r.shortstr()?,
            routing_key: r.shortstr()?,
            message_count: r.u32()?,
        })
    }
}

/// Answers basic.get when the queue is empty. The reserved `cluster-id` is
/// written empty and ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BasicGetEmpty;

impl Args for BasicGetEmpty {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u8(0); // cluster-id: empty shortstr
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        r.shortstr()?;
        Ok(BasicGetEmpty)
    }
}

/// Acknowledges deliveries (client), or confirms publishes (server, in
/// confirm mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BasicAck {
    /// Tag acknowledged; 0 with `multiple` = everything outstanding.
    pub delivery_tag: u64,
    /// Also everything up to and including the tag.
    pub multiple: bool,
}

impl Args for BasicAck {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u64(self.delivery_tag);
        put_bits(dst, &[self.multiple]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let delivery_tag = r.u64()?;
        let [multiple] = r.bits()?;
        Ok(BasicAck {
            delivery_tag,
            multiple,
        })
    }
}

/// Rejects one delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BasicReject {
    /// Tag rejected.
    pub delivery_tag: u64,
    /// Put it back in the queue instead of dropping/dead-lettering it.
    pub requeue: bool,
}

impl Args for BasicReject {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u64(self.delivery_tag);
        put_bits(dst, &[self.requeue]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let delivery_tag = r.u64()?;
        let [requeue] = r.bits()?;
        Ok(BasicReject {
            delivery_tag,
            requeue,
        })
    }
}

/// Deprecated asynchronous recover.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BasicRecoverAsync {
    /// Requeue unacked deliveries (RabbitMQ refuses false with 540).
    pub requeue: bool,
}

impl Args for BasicRecoverAsync {
    fn write(&self, dst: &mut BytesMut) {
        put_bits(dst, &[self.requeue]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let [requeue] = r.bits()?;
        Ok(BasicRecoverAsync { requeue })
    }
}

/// Redelivers the channel's unacked messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BasicRecover {
    /// Requeue them instead of redelivering to the same consumer.
    pub requeue: bool,
}

impl Args for BasicRecover {
    fn write(&self, dst: &mut BytesMut) {
        put_bits(dst, &[self.requeue]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let [requeue] = r.bits()?;
        Ok(BasicRecover { requeue })
    }
}

empty_method!(
    /// Confirms basic.recover.
    BasicRecoverOk
);

/// RabbitMQ extension: negative ack of one or many deliveries (client), or
/// of publishes (server, in confirm mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BasicNack {
    /// Tag rejected; 0 with `multiple` = everything outstanding.
    pub delivery_tag: u64,
    /// Also everything up to and including the tag.
    pub multiple: bool,
    /// Put them back in the queue.
    pub requeue: bool,
}

impl Args for BasicNack {
    fn write(&self, dst: &mut BytesMut) {
        dst.put_u64(self.delivery_tag);
        put_bits(dst, &[self.multiple, self.requeue]);
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, SyntaxError> {
        let delivery_tag = r.u64()?;
        let [multiple, requeue] = r.bits()?;
        Ok(BasicNack {
            delivery_tag,
            multiple,
            requeue,
        })
    }
}
