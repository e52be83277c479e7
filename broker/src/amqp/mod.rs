//! The AMQP 0-9-1 front end: one task per connection drives the sans-IO codec, talks to the
//! core, and batches its socket writes.
//!
//! # Layout
//! - `listener`: accept loop.
//! - `handshake`: protocol header, start/tune/open, authentication.
//! - `connection`: the connection task: read, mailbox, heartbeats, write.
//! - `channel`: per-channel state and the exchange/queue/channel methods.
//! - `basic`: the basic class (publish, consume, get, ack) and tx/confirm.
//! - `confirms`: publisher-confirm bookkeeping.

mod access;
mod basic;
mod channel;
mod codec;
pub mod confirms;
mod connection;
mod handshake;
pub mod listener;

/// Connection limits proposed to clients in connection.tune.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Heartbeat interval in seconds (0 = off).
    pub heartbeat: u16,
    /// Largest frame in bytes.
    pub frame_max: u32,
    /// Highest channel number.
    pub channel_max: u16,
}
