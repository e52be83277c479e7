//! lapin steps that AMQP tests repeat: open a channel (plain or in confirm
//! mode), declare, bind, publish numbered messages, consume, ack, cancel.
//!
//! Each is one call bounded by [`within`] that panics naming what it waited
//! for when the broker refuses it, so a test reads as its scenario. Steps
//! whose refusal a test checks return the `lapin::Result` instead.

use std::ops::Range;

use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions,
    ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer, Queue};

use crate::{publish_confirmed, seq_body, within};

/// Opens a channel on `conn`.
pub async fn open_channel(conn: &Connection) -> Channel {
    within("channel.open", conn.create_channel())
        .await
        .expect("open channel")
}

/// Opens a channel in confirm mode, for setting up queue contents reliably
/// (every publish on it can be awaited until the broker has taken it).
pub async fn confirm_channel(conn: &Connection) -> Channel {
    let ch = open_channel(conn).await;
    within(
        "confirm.select",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .expect("confirm.select");
    ch
}

/// Declares queue `name` with default options (an empty name lets the
/// broker choose one).
pub async fn declare_queue(ch: &Channel, name: &str) -> Queue {
    declare_queue_with(ch, name, QueueDeclareOptions::default())
        .await
        .expect("queue.declare")
}

/// Declares queue `name` with `options`; the broker's refusal is returned.
pub async fn declare_queue_with(
    ch: &Channel,
    name: &str,
    options: QueueDeclareOptions,
) -> lapin::Result<Queue> {
    within(
        "queue.declare",
        ch.queue_declare(name.into(), options, FieldTable::default()),
    )
    .await
}

/// Declares queue `name` passively: its counts if it exists, 404 (or 405
/// for another connection's exclusive queue) otherwise.
pub async fn passive_declare(ch: &Channel, name: &str) -> lapin::Result<Queue> {
    declare_queue_with(
        ch,
        name,
        QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        },
    )
    .await
}

/// Binds `queue` to `exchange` with `key` and `args`.
pub async fn bind_queue(ch: &Channel, queue: &str, exchange: &str, key: &str, args: FieldTable) {
    within(
        "queue.bind",
        ch.queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            args,
        ),
    )
    .await
    .expect("queue.bind");
}

/// Publishes `seq_body(n)` for each n in `range` to `queue` through the
/// default exchange, each confirmed (`ch` must be in confirm mode).
pub async fn publish_seq(ch: &Channel, queue: &str, range: Range<u64>) {
    for n in range {
        let c = publish_confirmed(
            ch,
            "",
            queue,
            BasicPublishOptions::default(),
            &seq_body(n),
            BasicProperties::default(),
        )
        .await;
        assert!(c.is_ack(), "message {n} was not confirmed: {c:?}");
    }
}

/// Declares `queue` and fills it with `seq_body(n)` for each n in `range`
/// (`ch` must be in confirm mode).
pub async fn fill_queue(ch: &Channel, queue: &str, range: Range<u64>) {
    declare_queue(ch, queue).await;
    publish_seq(ch, queue, range).await;
}

/// Acknowledges one delivery.
pub async fn ack(delivery: &Delivery) {
    within("basic.ack", delivery.ack(BasicAckOptions::default()))
        .await
        .expect("basic.ack");
}

/// Starts a consumer (manual acks) on `queue` with a server-chosen tag.
pub async fn consume(ch: &Channel, queue: &str) -> Consumer {
    within(
        "basic.consume",
        ch.basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await
    .expect("basic.consume")
}

/// Cancels `consumer` (waiting for cancel-ok).
pub async fn cancel(ch: &Channel, consumer: &Consumer) {
    within(
        "basic.cancel",
        ch.basic_cancel(consumer.tag(), BasicCancelOptions::default()),
    )
    .await
    .expect("basic.cancel");
}
