//! The MQTT front end: MQTT sessions as queues bound to `amq.topic`, so MQTT and AMQP share
//! one router and one store (as RabbitMQ's MQTT plugin does).
//!
//! # Layout
//! - [`convert`]: MQTT publish ⇄ core message (properties mapping).
//! - [`topic_map`]: lossless MQTT topic ⇄ AMQP routing key mapping.
//! - [`retained`]: retained messages, in memory and in storage.
//! - [`sessions`]: connected client ids (takeover) and per-client timers.

pub mod convert;
pub mod retained;
pub mod sessions;
pub mod topic_map;
