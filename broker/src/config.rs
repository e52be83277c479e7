//! Broker settings. Every setting is a command-line flag, an environment variable, and a key
//! of the optional TOML file given with `--config` (same names as the flags, `-` or `_`).
//! A flag or variable wins over the file, the file over the default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a value of the wrong type.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file names a setting that does not exist.
    #[error("unknown setting '{key}' in config file {path}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
}

/// How log lines look.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Broker settings.
#[derive(Debug, Clone, clap::Parser, serde::Serialize, serde::Deserialize)]
#[command(name = "broker", version, about = "AMQP 0-9-1 and MQTT message broker")]
pub struct Config {
    /// TOML file with settings (keys named like the flags); flags and environment win over it.
    #[arg(long, env = "BROKER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Log format: text or json. The level comes from RUST_LOG (default info).
    #[arg(long, env = "BROKER_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
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
    /// Address the management HTTP API and `/metrics` bind to.
    #[arg(long, env = "BROKER_HTTP_LISTEN", default_value = "0.0.0.0:15672")]
    pub http_listen: SocketAddr,
    /// Name of the user created on a first start (when no users exist yet), tagged
    /// `administrator` with all permissions on vhost `/`. `guest` may only log in from loopback.
    #[arg(long, env = "BROKER_DEFAULT_USER", default_value = "guest")]
    pub default_user: String,
    /// Password of `--default-user` (only used when it is created; stored as an argon2 hash).
    #[arg(
        long,
        env = "BROKER_DEFAULT_PASS",
        default_value = "guest",
        hide_env_values = true
    )]
    pub default_pass: String,
    /// PEM file with the server certificate chain (server certificate first). With
    /// `--tls-key` it turns on the AMQPS and MQTTS listeners (and HTTPS with `--http-tls`).
    #[arg(long, env = "BROKER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the private key of `--tls-cert` (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "BROKER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Address the AMQPS (AMQP over TLS) listener binds to, when TLS is configured.
    #[arg(long, env = "BROKER_AMQPS_LISTEN", default_value = "0.0.0.0:5671")]
    pub amqps_listen: SocketAddr,
    /// Address the MQTTS (MQTT over TLS) listener binds to, when TLS is configured.
    #[arg(long, env = "BROKER_MQTTS_LISTEN", default_value = "0.0.0.0:8883")]
    pub mqtts_listen: SocketAddr,
    /// Serve the management API over HTTPS (on `--http-listen`, with `--tls-cert`/`--tls-key`)
    /// instead of plain HTTP.
    #[arg(long, env = "BROKER_HTTP_TLS")]
    pub http_tls: bool,
    /// Largest MQTT packet accepted from clients, in bytes.
    #[arg(long, env = "BROKER_MQTT_MAX_PACKET_SIZE", default_value_t = 16 * 1024 * 1024)]
    pub mqtt_max_packet_size: usize,
    /// Vhost of MQTT clients whose user name does not name one (`vhost:user` does, when that
    /// vhost exists), as RabbitMQ's `mqtt.vhost`.
    #[arg(long, env = "BROKER_MQTT_VHOST", default_value = "/")]
    pub mqtt_vhost: String,
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
    /// How often the management API samples message counters to compute rates, in
    /// milliseconds (RabbitMQ's `collect_statistics_interval`).
    #[arg(
        long,
        env = "BROKER_COLLECT_STATISTICS_INTERVAL",
        default_value_t = 5000
    )]
    pub collect_statistics_interval: u64,
}

impl Config {
    /// Reads flags and environment, then the `--config` file for everything they left at its
    /// default.
    pub fn load() -> Result<Config, ConfigError> {
        let matches = Config::command().get_matches();
        let config = match Config::from_arg_matches(&matches) {
            Ok(c) => c,
            Err(e) => e.exit(),
        };
        let Some(path) = config.config.clone() else {
            return Ok(config);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.clone(),
            message,
        };
        let file: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
        let mut merged = toml::Table::try_from(&config).map_err(|e| invalid(e.to_string()))?;
        for (key, value) in file {
            let id = key.replace('-', "_");
            if id == "config"
                || !Config::command()
                    .get_arguments()
                    .any(|a| a.get_id() == id.as_str())
            {
                return Err(ConfigError::UnknownKey {
                    path: path.clone(),
                    key,
                });
            }
            let from_default = matches!(
                matches.value_source(&id),
                None | Some(ValueSource::DefaultValue)
            );
            if from_default {
                merged.insert(id, value);
            }
        }
        let mut loaded: Config = merged
            .try_into()
            .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
        loaded.config = Some(path);
        Ok(loaded)
    }

    /// Settings for tests and embedding: ephemeral loopback port, the given data dir.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            config: None,
            log_format: LogFormat::Text,
            data_dir: data_dir.into(),
            amqp_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mqtt_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mqtt_ws_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            default_user: "guest".into(),
            default_pass: "guest".into(),
            tls_cert: None,
            tls_key: None,
            amqps_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mqtts_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_tls: false,
            mqtt_max_packet_size: 16 * 1024 * 1024,
            mqtt_vhost: "/".into(),
            memory_high_watermark: None,
            heartbeat: 60,
            frame_max: 131_072,
            channel_max: 2047,
            collect_statistics_interval: 5000,
        }
    }
}
