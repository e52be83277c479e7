//! `loadgen`: a load generator for AMQP 0-9-1 and MQTT 3.1.1/5.0 brokers.
//!
//! It speaks both protocols with small clients that encode frames directly
//! over a `TcpStream` (the workspace's `protocol-amqp` and `protocol-mqtt`
//! codecs) and write in batches, so the generator stays well below the
//! brokers it measures. Every message body starts with a [`stamp::Stamp`]
//! (run id, producer id, sequence number, send time); consumers turn the
//! stamps into latency histograms and delivery checks (lost, duplicated,
//! out of order, per-consumer balance).
//!
//! # Layout
//! - [`cli`]: the command line (clap), one options struct per scenario.
//! - [`dial`]: opening TCP connections, optionally from chosen source
//!   addresses (`--source-addrs`).
//! - [`amqp`]: the AMQP client (handshake, declare, publish template,
//!   delivery parsing).
//! - [`mqtt`]: the MQTT client (CONNECT, SUBSCRIBE, publish template,
//!   PUBLISH parsing, QoS 1/2 acks).
//! - [`scenario`]: the runners that start producers and consumers, print
//!   progress and collect the results.
//! - [`verify`]: per-consumer delivery tracking and its merge.
//! - [`report`]: the report (text and JSON).
//! - [`null_sink`]: a fake broker that answers just enough of both
//!   protocols and discards messages.
//! - [`stamp`]: the bytes every message starts with, and the clock.
//! - [`error`]: the library's error type.

pub mod amqp;
pub mod cli;
pub mod dial;
pub mod error;
pub mod mqtt;
pub mod null_sink;
pub mod report;
pub mod scenario;
pub mod stamp;
pub mod verify;

pub use error::{Error, Result};
pub use report::Report;
