//! The broker: an AMQP 0-9-1 front end over a routing core with durable queues.
//!
//! # Layout
//! - [`config`]: settings (flags, environment variables).
//! - [`model`]: pure domain types: exchanges and their routing indexes, messages.
//! - [`core`]: topology snapshot, queue tasks, the group-commit flusher, recovery.
//! - [`amqp`]: the AMQP 0-9-1 listener and connection tasks.
//! - [`mqtt`]: the MQTT front end over the same core.
//! - [`listener`]: the accept loop all listeners share.
//! - [`tls`]: TLS settings and handshakes for AMQPS, MQTTS and HTTPS.
//! - [`mgmt`]: the management HTTP API and `/metrics`.
//! - [`cli`]: the `broker` binary's entry point (logging, signals).
//! - [`Broker`]: starts all of it and shuts it down.

pub mod amqp;
pub mod cli;
pub mod config;
pub mod core;
pub mod error;
pub mod listener;
pub mod mgmt;
pub mod model;
pub mod mqtt;
pub mod tls;

pub use config::Config;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The AMQP listen address could not be bound (port taken, no permission).
    #[error("cannot listen for AMQP on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The MQTT listen address could not be bound.
    #[error("cannot listen for MQTT on {addr}: {source}")]
    BindMqtt {
        /// Address asked for.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The management HTTP listen address could not be bound.
    #[error("cannot listen for HTTP (management API) on {addr}: {source}")]
    BindHttp {
        /// Address asked for.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The default user could not be created or stored.
    #[error("cannot create the default user: {0}")]
    Users(String),
    /// A TLS listener (AMQPS, MQTTS) could not be bound.
    #[error("cannot listen for {protocol} on {addr}: {source}")]
    BindTls {
        /// `AMQPS` or `MQTTS`.
        protocol: &'static str,
        /// Address asked for.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The TLS certificate or key is missing, unreadable or invalid.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The data directory could not be opened or is used by another broker.
    #[error("cannot open the data directory: {0}")]
    Storage(#[from] storage::StorageError),
}

/// A running broker. Dropping it without [`Broker::shutdown`] stops its tasks without waiting.
pub struct Broker {
    core: Arc<core::Core>,
    amqp_addr: SocketAddr,
    mqtt_addr: SocketAddr,
    mqtt_ws_addr: SocketAddr,
    http_addr: SocketAddr,
    amqps_addr: Option<SocketAddr>,
    mqtts_addr: Option<SocketAddr>,
    http_tls: bool,
}

/// Binds a TLS listener, mapping errors to [`StartError::BindTls`].
async fn bind_tls(protocol: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    let err = |source| StartError::BindTls {
        protocol,
        addr,
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    Ok(listener)
}

impl Broker {
    /// Opens storage, recovers durable state and starts the listeners.
    pub async fn start(config: Config) -> Result<Broker, StartError> {
        // Checked first: a bad certificate must not leave a half-started broker behind.
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls::TlsAcceptors::load(cert, key)?),
            (Some(_), None) => {
                return Err(tls::TlsError::Incomplete {
                    given: "--tls-cert",
                }
                .into());
            }
            (None, Some(_)) => return Err(tls::TlsError::Incomplete { given: "--tls-key" }.into()),
            (None, None) => None,
        };
        if config.http_tls && tls.is_none() {
            return Err(tls::TlsError::HttpWithoutCert.into());
        }
        let storage = storage::SegmentStorage::open(&config.data_dir)?;
        let high = config
            .memory_high_watermark
            .unwrap_or_else(core::memory::default_high_watermark);
        let core = core::Core::new(Arc::new(storage), high);
        let stats = core.recover()?;
        if core
            .ensure_default_user(&config.default_user, &config.default_pass)
            .await
            .map_err(|e| StartError::Users(e.to_string()))?
        {
            tracing::info!(user = %config.default_user, "created the default user");
        }
        tracing::info!(
            data_dir = %config.data_dir.display(),
            exchanges = stats.exchanges,
            queues = stats.queues,
            bindings = stats.bindings,
            messages = stats.messages,
            "recovered durable state"
        );
        let listener = TcpListener::bind(config.amqp_listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.amqp_listen,
                source,
            })?;
        let amqp_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.amqp_listen,
            source,
        })?;
        let limits = amqp::Limits {
            heartbeat: config.heartbeat,
            frame_max: config.frame_max,
            channel_max: config.channel_max,
        };
        let mqtt = Arc::new(mqtt::Shared::new(
            core.clone(),
            config.mqtt_max_packet_size,
            config.mqtt_vhost.clone(),
        )?);
        let mqtt_listener = TcpListener::bind(config.mqtt_listen)
            .await
            .map_err(|source| StartError::BindMqtt {
                addr: config.mqtt_listen,
                source,
            })?;
        let mqtt_addr = mqtt_listener
            .local_addr()
            .map_err(|source| StartError::BindMqtt {
                addr: config.mqtt_listen,
                source,
            })?;
        // Bound before anything is spawned, so a taken port fails the start cleanly.
        let http_listener = TcpListener::bind(config.http_listen)
            .await
            .map_err(|source| StartError::BindHttp {
                addr: config.http_listen,
                source,
            })?;
        let http_addr = http_listener
            .local_addr()
            .map_err(|source| StartError::BindHttp {
                addr: config.http_listen,
                source,
            })?;
        let (amqps_listener, mqtts_listener) = match &tls {
            Some(_) => (
                Some(bind_tls("AMQPS", config.amqps_listen).await?),
                Some(bind_tls("MQTTS", config.mqtts_listen).await?),
            ),
            None => (None, None),
        };
        let local = |l: &Option<TcpListener>, protocol, addr| {
            l.as_ref()
                .map(|l| {
                    l.local_addr().map_err(|source| StartError::BindTls {
                        protocol,
                        addr,
                        source,
                    })
                })
                .transpose()
        };
        let amqps_addr = local(&amqps_listener, "AMQPS", config.amqps_listen)?;
        let mqtts_addr = local(&mqtts_listener, "MQTTS", config.mqtts_listen)?;
        core.tasks
            .spawn(amqp::listener::run(core.clone(), listener, limits));
        tracing::info!(addr = %amqp_addr, "AMQP listener ready");
        if let (Some(tls), Some(l), Some(addr)) = (&tls, amqps_listener, amqps_addr) {
            core.tasks.spawn(amqp::listener::run_tls(
                core.clone(),
                l,
                limits,
                tls.stream.clone(),
            ));
            tracing::info!(%addr, "AMQPS listener ready");
        }
        let ws_listener = TcpListener::bind(config.mqtt_ws_listen)
            .await
            .map_err(|source| StartError::BindMqtt {
                addr: config.mqtt_ws_listen,
                source,
            })?;
        let mqtt_ws_addr = ws_listener
            .local_addr()
            .map_err(|source| StartError::BindMqtt {
                addr: config.mqtt_ws_listen,
                source,
            })?;
        core.tasks
            .spawn(mqtt::websocket::run(mqtt.clone(), ws_listener));
        tracing::info!(addr = %mqtt_ws_addr, path = mqtt::websocket::PATH, "MQTT WebSocket listener ready");
        mqtt.expire_recovered_sessions();
        if let (Some(tls), Some(l), Some(addr)) = (&tls, mqtts_listener, mqtts_addr) {
            core.tasks
                .spawn(mqtt::listener::run_tls(mqtt.clone(), l, tls.stream.clone()));
            tracing::info!(%addr, "MQTTS listener ready");
        }
        if tls.is_none() {
            tracing::info!("TLS is off (no --tls-cert/--tls-key): no AMQPS or MQTTS listener");
        }
        core.tasks
            .spawn(mqtt::listener::run(mqtt.clone(), mqtt_listener));
        tracing::info!(addr = %mqtt_addr, "MQTT listener ready");
        let mut listeners = vec![
            mgmt::Listener {
                protocol: "amqp",
                addr: amqp_addr,
            },
            mgmt::Listener {
                protocol: "mqtt",
                addr: mqtt_addr,
            },
            mgmt::Listener {
                protocol: "http/web-mqtt",
                addr: mqtt_ws_addr,
            },
            mgmt::Listener {
                protocol: if config.http_tls { "https" } else { "http" },
                addr: http_addr,
            },
        ];
        if let Some(addr) = amqps_addr {
            listeners.push(mgmt::Listener {
                protocol: "amqp/ssl",
                addr,
            });
        }
        if let Some(addr) = mqtts_addr {
            listeners.push(mgmt::Listener {
                protocol: "mqtt/ssl",
                addr,
            });
        }
        let mgmt = mgmt::MgmtState::new(core.clone(), listeners)
            .with_mqtt(mqtt)
            .with_sample_interval(Duration::from_millis(config.collect_statistics_interval));
        match tls.filter(|_| config.http_tls) {
            Some(tls) => {
                let https = tls::HttpsListener::start(&core, http_listener, tls.http).map_err(
                    |source| StartError::BindHttp {
                        addr: config.http_listen,
                        source,
                    },
                )?;
                core.tasks.spawn(mgmt::serve_tls(https, mgmt));
                tracing::info!(addr = %http_addr, "HTTPS listener ready");
            }
            None => {
                core.tasks.spawn(mgmt::serve(http_listener, mgmt));
                tracing::info!(addr = %http_addr, "HTTP listener ready");
            }
        }
        Ok(Broker {
            core,
            amqp_addr,
            mqtt_addr,
            mqtt_ws_addr,
            http_addr,
            amqps_addr,
            mqtts_addr,
            http_tls: config.http_tls,
        })
    }

    /// The address the AMQPS listener is bound to; `None` when TLS is not configured.
    pub fn amqps_addr(&self) -> Option<SocketAddr> {
        self.amqps_addr
    }

    /// The address the MQTTS listener is bound to; `None` when TLS is not configured.
    pub fn mqtts_addr(&self) -> Option<SocketAddr> {
        self.mqtts_addr
    }

    /// Whether the management API on [`Broker::http_addr`] speaks HTTPS.
    pub fn http_tls(&self) -> bool {
        self.http_tls
    }

    /// The address the AMQP listener is bound to (useful with port 0).
    pub fn amqp_addr(&self) -> SocketAddr {
        self.amqp_addr
    }

    /// The address the MQTT listener is bound to.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// The address the MQTT-over-WebSocket listener is bound to.
    pub fn mqtt_ws_addr(&self) -> SocketAddr {
        self.mqtt_ws_addr
    }

    /// The address the management HTTP API (and `/metrics`) is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops accepting, closes connections (320 CONNECTION_FORCED), stops queues and makes
    /// storage durable. The data directory is free again when this returns.
    pub async fn shutdown(self) {
        self.core.shutdown.cancel();
        self.core.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), self.core.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop within 10 s");
        }
        if let Err(e) = self.core.flusher().sync().await {
            tracing::error!(error = %e, "final storage sync failed");
        }
        tracing::info!("broker stopped");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.core.shutdown.cancel();
    }
}
