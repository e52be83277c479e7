//! Broker settings. Every setting is a command-line flag and an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Broker settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "broker", version, about = "AMQP 0-9-1 and MQTT message broker")]
pub struct Config {
    /// Directory for durable data (definitions and persistent messages).
    #[arg(long, env = "BROKER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address the AMQP 0-9-1 listener binds to.
    #[arg(long, env = "BROKER_AMQP_LISTEN", default_value = "0.0.0.0:5672")]
    pub amqp_listen: SocketAddr,
    /// Address the MQTT 3.1.1/5.0 listener binds to.
    #[arg(long, env = "BROKER_MQTT_LISTEN", default_value = "0.0.0.0:1883")]
    pub mqtt_listen: SocketAddr,
    /// Address the MQTT-over-WebSocket listener binds to (path `/mqtt`).
    #[arg(long, env = "BROKER_MQTT_WS_LISTEN", default_value = "0.0.0.0:8083")]
    pub mqtt_ws_listen: SocketAddr,
    /// Largest MQTT packet accepted from clients, in bytes.
    #[arg(long, env = "BROKER_MQTT_MAX_PACKET_SIZE", default_value_t = 16 * 1024 * 1024)]
    pub mqtt_max_packet_size: usize,
    /// Bytes of queued messages above which publishers are blocked until consumers catch up
    /// (default: 40% of physical memory, as RabbitMQ; 0 disables the alarm).
    #[arg(long, env = "BROKER_MEMORY_HIGH_WATERMARK")]
    pub memory_high_watermark: Option<u64>,
    /// Heartbeat interval proposed to AMQP clients, in seconds (0 disables).
    #[arg(long, env = "BROKER_HEARTBEAT", default_value_t = 60)]
    pub heartbeat: u16,
    /// Largest frame accepted and proposed to AMQP clients, in bytes.
    #[arg(long, env = "BROKER_FRAME_MAX", default_value_t = 131_072)]
    pub frame_max: u32,
    /// Highest channel number a client may open.
    #[arg(long, env = "BROKER_CHANNEL_MAX", default_value_t = 2047)]
    pub channel_max: u16,
}

impl Config {
    /// Settings for tests and embedding: ephemeral loopback port, the given data dir.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            amqp_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mqtt_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mqtt_ws_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mqtt_max_packet_size: 16 * 1024 * 1024,
            memory_high_watermark: None,
            heartbeat: 60,
            frame_max: 131_072,
            channel_max: 2047,
        }
    }
}
