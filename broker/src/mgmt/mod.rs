//! The management HTTP API (RabbitMQ-like paths and JSON field names) and `/metrics`
//! (Prometheus text), served with axum on `--http-listen`.
//!
//! Every handler goes through the same core operations as AMQP clients do (declare, delete,
//! bind, purge...), so the same checks and reply codes apply; [`ApiError`] maps those codes
//! to HTTP statuses. Connections are read from (and closed through) the core's connection
//! registry; queue counts come from asking each queue task (so they are ordered after
//! everything the queue received before the request), counters from the queue handles.
//!
//! # Layout
//! - [`auth`]: HTTP basic authentication with the broker's users, tags (who may change things).
//! - `error`: [`ApiError`], the JSON error body and the AMQP reply code → HTTP status mapping.
//! - `body`: the JSON body extractor (errors as JSON, an empty body reads as `{}`).
//! - [`json`]: field tables, message properties and payloads ⇄ JSON.
//! - `overview`: `/api/overview`.
//! - `connections`: connections (list, show, close), channels, consumers.
//! - `exchanges`, `queues`, `bindings`: the topology, peek and publish.
//! - `users`: users and permissions.
//! - `vhosts`: virtual hosts (list, show, create, delete).
//! - `definitions`: export/import in RabbitMQ's definitions format.
//! - `metrics`: `/metrics`.
//! - `sessions`, `retained`: MQTT sessions and retained messages (`/api/mqtt/...`).
//! - [`rates`]: message rates from a sampler task over the queue counters.

pub mod auth;
mod bindings;
mod body;
mod connections;
mod definitions;
mod error;
mod exchanges;
pub mod json;
mod metrics;
mod overview;
mod queues;
pub mod rates;
mod retained;
mod sessions;
#[cfg(test)]
mod tests;
mod users;
mod vhosts;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::{delete, get, post};
use tokio::net::TcpListener;

use crate::core::Core;
pub use error::ApiError;

/// Connection id the API acts as in core operations. No client connection has it (ids start
/// at 1), so exclusive queues of clients stay theirs, as they do for other connections.
pub const API_CONN_ID: u64 = 0;

/// A listener the broker runs, reported in the overview.
#[derive(Debug, Clone)]
pub struct Listener {
    /// `amqp`, `mqtt`, `http/web-mqtt` or `http` (RabbitMQ's names).
    pub protocol: &'static str,
    /// Bound address.
    pub addr: SocketAddr,
}

/// What every handler needs.
#[derive(Clone)]
pub struct MgmtState {
    /// The routing core.
    pub core: Arc<Core>,
    /// Listeners to report.
    pub listeners: Arc<Vec<Listener>>,
    /// When the broker started (for uptime).
    pub started: Instant,
    /// The MQTT front end (sessions, retained messages), when the broker runs one.
    pub mqtt: Option<Arc<crate::mqtt::Shared>>,
    /// Message rates, updated by the sampler that [`serve`] starts.
    pub rates: Arc<rates::Rates>,
    /// How often the sampler reads the counters (RabbitMQ's `collect_statistics_interval`).
    pub sample_interval: std::time::Duration,
}

impl MgmtState {
    /// State over `core` with the given listeners.
    pub fn new(core: Arc<Core>, listeners: Vec<Listener>) -> MgmtState {
        MgmtState {
            core,
            listeners: Arc::new(listeners),
            started: Instant::now(),
            mqtt: None,
            rates: Arc::default(),
            sample_interval: rates::DEFAULT_SAMPLE_INTERVAL,
        }
    }

    /// The same, also serving the MQTT sessions and retained messages of `mqtt`.
    pub fn with_mqtt(mut self, mqtt: Arc<crate::mqtt::Shared>) -> MgmtState {
        self.mqtt = Some(mqtt);
        self
    }

    /// The same, sampling message rates every `interval`.
    pub fn with_sample_interval(mut self, interval: std::time::Duration) -> MgmtState {
        self.sample_interval = interval;
        self
    }

    /// Starts the message-rate sampler in the core's task tracker (it stops at shutdown).
    fn start_sampler(&self) {
        self.core.tasks.spawn(rates::run_sampler(
            self.rates.clone(),
            self.core.clone(),
            self.sample_interval,
        ));
    }
}

/// The whole API: `/api/...` behind basic auth, `/metrics` open (scrapers rarely carry
/// credentials, and it exposes counts, not contents).
pub fn router(state: MgmtState) -> Router {
    let api = Router::new()
        .route("/api/overview", get(overview::overview))
        .route("/api/whoami", get(auth::whoami))
        .route("/api/connections", get(connections::list))
        .route(
            "/api/connections/{name}",
            get(connections::show).delete(connections::close),
        )
        .route("/api/channels", get(connections::channels))
        .route("/api/consumers", get(connections::consumers))
        .route("/api/consumers/{vhost}", get(connections::consumers_in))
        .route("/api/exchanges", get(exchanges::list))
        .route("/api/exchanges/{vhost}", get(exchanges::list_in))
        .route(
            "/api/exchanges/{vhost}/{name}",
            get(exchanges::show)
                .put(exchanges::declare)
                .delete(exchanges::delete),
        )
        .route(
            "/api/exchanges/{vhost}/{name}/publish",
            post(exchanges::publish),
        )
        .route("/api/queues", get(queues::list))
        .route("/api/queues/{vhost}", get(queues::list_in))
        .route(
            "/api/queues/{vhost}/{name}",
            get(queues::show)
                .put(queues::declare)
                .delete(queues::delete),
        )
        .route("/api/queues/{vhost}/{name}/contents", delete(queues::purge))
        .route("/api/queues/{vhost}/{name}/get", post(queues::get_messages))
        .route("/api/bindings", get(bindings::list))
        .route("/api/bindings/{vhost}", get(bindings::list_in))
        .route(
            "/api/bindings/{vhost}/e/{source}/q/{dest}",
            get(bindings::between_queue).post(bindings::create_to_queue),
        )
        .route(
            "/api/bindings/{vhost}/e/{source}/e/{dest}",
            get(bindings::between_exchange).post(bindings::create_to_exchange),
        )
        .route(
            "/api/bindings/{vhost}/e/{source}/q/{dest}/{props}",
            get(bindings::show_to_queue).delete(bindings::delete_to_queue),
        )
        .route(
            "/api/bindings/{vhost}/e/{source}/e/{dest}/{props}",
            get(bindings::show_to_exchange).delete(bindings::delete_to_exchange),
        )
        .route("/api/vhosts", get(vhosts::list))
        .route(
            "/api/vhosts/{name}",
            get(vhosts::show).put(vhosts::put).delete(vhosts::delete),
        )
        .route("/api/vhosts/{name}/connections", get(connections::list_in))
        .route(
            "/api/vhosts/{name}/permissions",
            get(users::vhost_permissions),
        )
        .route("/api/users", get(users::list))
        .route(
            "/api/users/{name}",
            get(users::show).put(users::put).delete(users::delete),
        )
        .route(
            "/api/users/{name}/permissions",
            get(users::user_permissions),
        )
        .route("/api/permissions", get(users::list_permissions))
        .route(
            "/api/permissions/{vhost}/{user}",
            get(users::show_permission)
                .put(users::put_permission)
                .delete(users::delete_permission),
        )
        .route("/api/mqtt/sessions", get(sessions::list))
        .route(
            "/api/mqtt/sessions/{vhost}/{client_id}",
            get(sessions::show).delete(sessions::delete),
        )
        .route("/api/mqtt/retained", get(retained::list))
        .route("/api/mqtt/retained/{vhost}", get(retained::list_in))
        .route(
            "/api/mqtt/retained/{vhost}/{*topic}",
            delete(retained::delete),
        )
        .route(
            "/api/definitions",
            get(definitions::export).post(definitions::import),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_user,
        ));
    Router::new()
        .merge(api)
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { ApiError::not_found("no such resource") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
}

/// Serves the API on `listener` until the broker shuts down.
pub async fn serve(listener: TcpListener, state: MgmtState) {
    state.start_sampler();
    let shutdown = state.core.shutdown.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "management HTTP server failed");
    }
}

/// Serves the API over HTTPS until shutdown (`--http-tls`).
pub async fn serve_tls(listener: crate::tls::HttpsListener, state: MgmtState) {
    use axum::serve::ListenerExt;
    state.start_sampler();
    let shutdown = state.core.shutdown.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    // `tap_io` makes axum hand the peer address to handlers as `ConnectInfo<SocketAddr>`.
    if let Err(e) = axum::serve(listener.tap_io(|_| {}), app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "management HTTPS server failed");
    }
}

/// Checks the vhost of a path: 404 if there is no such vhost.
pub(crate) fn check_vhost(core: &Core, vhost: &str) -> Result<(), ApiError> {
    match core.vhost(vhost) {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("vhost '{vhost}' not found"))),
    }
}

/// Milliseconds since the Unix epoch (RabbitMQ's timestamps).
pub(crate) fn epoch_millis(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
