//! The command line: `loadgen amqp|mqtt|conns|null-sink [OPTIONS]`.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::dial::SourceAddrs;

/// Load generator for AMQP 0-9-1 and MQTT brokers.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// AMQP 0-9-1 producers and consumers through queues.
    Amqp(AmqpOpts),
    /// MQTT publishers and subscribers.
    Mqtt(MqttOpts),
    /// Open N idle connections and measure the broker's memory per connection.
    Conns(ConnOpts),
    /// A fake broker that accepts both protocols and discards messages.
    NullSink(NullSinkOpts),
}

/// Options every message scenario has.
#[derive(Clone, Debug, Args)]
pub struct CommonOpts {
    /// Producer (publisher) connections.
    #[arg(long, default_value_t = 1)]
    pub producers: u32,
    /// Consumer (subscriber) connections.
    #[arg(long, default_value_t = 1)]
    pub consumers: u32,
    /// Message body size in bytes (at least 24: the stamp).
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Messages per producer; without it producers run for --duration.
    #[arg(long)]
    pub count: Option<u64>,
    /// Seconds producers publish for (ignored with --count).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Messages per second per producer (default: as fast as possible).
    #[arg(long)]
    pub rate: Option<u64>,
    /// Consumers only: stop after this many deliveries in total (draining a
    /// backlog); messages of any run are accepted.
    #[arg(long)]
    pub expect: Option<u64>,
    /// After the producers finish, stop waiting for missing deliveries once
    /// nothing arrived for this many seconds.
    #[arg(long, default_value_t = 3.0)]
    pub drain_timeout: f64,
    /// After the producers finish, wait at most this many seconds for the
    /// consumers to catch up; what is still missing then counts as lost.
    #[arg(long, default_value_t = 60.0)]
    pub drain_max: f64,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// Consumer acknowledgement mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AckMode {
    /// `no_ack`: the broker forgets a message once it is sent.
    Auto,
    /// `basic.ack multiple=true` once per socket read.
    Manual,
}

/// `loadgen amqp`.
#[derive(Clone, Debug, Args)]
pub struct AmqpOpts {
    /// Producers, consumers, size, count/duration, rate, output.
    #[command(flatten)]
    pub common: CommonOpts,
    /// Broker address.
    #[arg(long, default_value = "127.0.0.1:5672")]
    pub addr: String,
    /// User name (SASL PLAIN).
    #[arg(long, default_value = "guest")]
    pub user: String,
    /// Password.
    #[arg(long, default_value = "guest")]
    pub password: String,
    /// Virtual host.
    #[arg(long, default_value = "/")]
    pub vhost: String,
    /// Persistent messages (delivery mode 2) into durable queues.
    #[arg(long)]
    pub persistent: bool,
    /// Publisher confirms with at most this many unconfirmed messages per
    /// producer.
    #[arg(long, value_name = "WINDOW")]
    pub confirm: Option<u32>,
    /// Consumer acknowledgements.
    #[arg(long, value_enum, default_value_t = AckMode::Manual)]
    pub ack: AckMode,
    /// basic.qos prefetch count per consumer (0 = unlimited).
    #[arg(long, default_value_t = 1000)]
    pub prefetch: u16,
    /// Number of queues; producer i publishes to queue i % queues, consumer
    /// j consumes from queue j % queues (consumers of one queue compete).
    #[arg(long, default_value_t = 1)]
    pub queues: u32,
    /// Queue name prefix. Without it the queues get a per-run name and are
    /// deleted at the end; with it they are `PREFIX-0`, `PREFIX-1`, ... and
    /// kept (a backlog for a later consumers-only run).
    #[arg(long)]
    pub queue_prefix: Option<String>,
}

/// MQTT protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MqttVersion {
    /// MQTT 3.1.1.
    #[value(name = "3")]
    V311,
    /// MQTT 5.0.
    #[value(name = "5")]
    V5,
}

/// `loadgen mqtt`.
#[derive(Clone, Debug, Args)]
pub struct MqttOpts {
    /// Publishers, subscribers, size, count/duration, rate, output.
    #[command(flatten)]
    pub common: CommonOpts,
    /// Broker address.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub addr: String,
    /// Protocol version.
    #[arg(long, value_enum, default_value_t = MqttVersion::V311)]
    pub mqtt_version: MqttVersion,
    /// QoS of publishes and subscriptions (0, 1 or 2).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Unacknowledged QoS 1/2 publishes per publisher.
    #[arg(long, default_value_t = 1000)]
    pub inflight: u16,
    /// Subscribers share one subscription `$share/GROUP/...` (they compete)
    /// instead of each receiving every message (fan-out).
    #[arg(long, value_name = "GROUP")]
    pub shared: Option<String>,
    /// Subscribers connect with clean session off and fixed client ids.
    #[arg(long)]
    pub persistent_session: bool,
    /// Topic prefix; publisher i publishes to `PREFIX/RUN/i`.
    #[arg(long, default_value = "bench")]
    pub topic_prefix: String,
    /// User name (none by default).
    #[arg(long)]
    pub user: Option<String>,
    /// Password.
    #[arg(long)]
    pub password: Option<String>,
}

/// Protocol of the idle-connection scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// AMQP 0-9-1: handshake and one open channel.
    Amqp,
    /// MQTT 3.1.1: CONNECT/CONNACK (keep-alive 30 min, no pings).
    Mqtt,
}

/// `loadgen conns`.
#[derive(Clone, Debug, Args)]
pub struct ConnOpts {
    /// Protocol to open connections with.
    #[arg(long, value_enum)]
    pub protocol: Protocol,
    /// Broker address.
    #[arg(long)]
    pub addr: String,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    pub count: u32,
    /// Connections opened per second.
    #[arg(long, default_value_t = 2000)]
    pub rate: u32,
    /// Broker process id: its VmRSS is read from /proc before and after.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Seconds to hold the connections open before measuring.
    #[arg(long, default_value_t = 3.0)]
    pub hold: f64,
    /// Local addresses to connect from, round-robin: comma-separated
    /// addresses or IPv4 ranges, e.g. `127.0.0.1-127.0.0.8`. Each source
    /// address has its own ~28k ephemeral ports
    /// (/proc/sys/net/ipv4/ip_local_port_range) towards one broker address,
    /// so more than ~28,000 connections need several; loopback answers on
    /// all of 127.0.0.0/8. Default: let the kernel choose (one address).
    #[arg(long, value_name = "ADDRS")]
    pub source_addrs: Option<SourceAddrs>,
    /// AMQP user / MQTT user name (MQTT: none by default).
    #[arg(long)]
    pub user: Option<String>,
    /// Password.
    #[arg(long)]
    pub password: Option<String>,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `loadgen null-sink`.
#[derive(Clone, Debug, Args)]
pub struct NullSinkOpts {
    /// AMQP port (0 = do not listen).
    #[arg(long, default_value_t = 5673)]
    pub amqp_port: u16,
    /// MQTT port (0 = do not listen).
    #[arg(long, default_value_t = 1884)]
    pub mqtt_port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
}
