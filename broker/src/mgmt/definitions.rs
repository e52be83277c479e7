//! `/api/definitions`: the topology in RabbitMQ's definitions format (exchanges, queues,
//! bindings of vhost `/`), exported and imported. An export imported into a fresh broker
//! gives the same topology.
//!
//! Left out of an export: the `amq.*` and default exchanges (every broker has them),
//! exclusive queues (they belong to a connection) and the bindings that involve them.
//! On import, sections this broker does not have yet (users, permissions, policies,
//! parameters) are skipped and reported; objects in another vhost are refused.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::bindings::{all_bindings, bind, binding_json};
use super::body::Body;
use super::exchanges::{declare_exchange, exchange_json};
use super::json::table_to_json;
use super::queues::declare_queue;
use super::{ApiError, MgmtState};
use crate::core::DEFAULT_VHOST;
use crate::model::exchange::Destination;

/// `GET /api/definitions`.
pub(crate) async fn export(State(s): State<MgmtState>) -> Json<Value> {
    let t = s.core.topology();
    let mut exchanges: Vec<_> = t
        .exchanges
        .values()
        .filter(|x| !x.name.starts_with("amq."))
        .collect();
    exchanges.sort_by(|a, b| a.name.cmp(&b.name));
    let mut queues: Vec<_> = t
        .queues
        .iter()
        .filter(|(_, q)| q.exclusive_owner.is_none())
        .collect();
    queues.sort_by(|a, b| a.0.cmp(b.0));
    let exported_queue = |name: &str| {
        t.queues
            .get(name)
            .is_some_and(|q| q.exclusive_owner.is_none())
    };
    let bindings: Vec<Value> = all_bindings(&t, false)
        .iter()
        .filter(|(_, b)| match &b.destination {
            Destination::Queue(q) => exported_queue(q),
            Destination::Exchange(_) => true,
        })
        .map(|(source, b)| {
            let mut v = binding_json(source, b);
            if let Some(o) = v.as_object_mut() {
                o.remove("properties_key");
            }
            v
        })
        .collect();
    Json(json!({
        "product_name": "broker",
        "product_version": env!("CARGO_PKG_VERSION"),
        "vhosts": [{ "name": DEFAULT_VHOST }],
        "exchanges": exchanges.iter().map(|x| exchange_json(x)).collect::<Vec<_>>(),
        "queues": queues.iter().map(|(name, q)| json!({
            "name": name,
            "vhost": DEFAULT_VHOST,
            "durable": q.durable,
            "auto_delete": q.auto_delete,
            "arguments": table_to_json(&q.arguments),
        })).collect::<Vec<_>>(),
        "bindings": bindings,
    }))
}

fn default_vhost() -> String {
    DEFAULT_VHOST.to_string()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct ExchangeDef {
    name: String,
    #[serde(default = "default_vhost")]
    vhost: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "yes")]
    durable: bool,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    arguments: Value,
}

#[derive(Debug, Deserialize)]
struct QueueDef {
    name: String,
    #[serde(default = "default_vhost")]
    vhost: String,
    #[serde(default = "yes")]
    durable: bool,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    arguments: Value,
}

#[derive(Debug, Deserialize)]
struct BindingDef {
    source: String,
    #[serde(default = "default_vhost")]
    vhost: String,
    destination: String,
    destination_type: String,
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    arguments: Value,
}

/// The sections import understands; everything else is reported as skipped when non-empty.
#[derive(Debug, Deserialize)]
pub(crate) struct Definitions {
    #[serde(default)]
    exchanges: Vec<ExchangeDef>,
    #[serde(default)]
    queues: Vec<QueueDef>,
    #[serde(default)]
    bindings: Vec<BindingDef>,
    #[serde(default)]
    vhosts: Vec<Value>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

fn check_vhost_of(kind: &str, name: &str, vhost: &str) -> Result<(), ApiError> {
    if vhost == DEFAULT_VHOST {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{kind} '{name}' is in vhost '{vhost}', which does not exist (only '/' does)"
        )))
    }
}

/// `POST /api/definitions`: declares exchanges, then queues, then bindings, with the same
/// checks as clients get; stops at the first object that fails (400/403, naming it) with
/// the ones before it in place. Answers what was applied and which sections were skipped.
pub(crate) async fn import(
    State(s): State<MgmtState>,
    Body(defs): Body<Definitions>,
) -> Result<Json<Value>, ApiError> {
    let core = &s.core;
    for v in &defs.vhosts {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if name != DEFAULT_VHOST {
            return Err(ApiError::bad_request(format!(
                "vhost '{name}' cannot be created: only '/' exists in this version"
            )));
        }
    }
    for x in &defs.exchanges {
        check_vhost_of("exchange", &x.name, &x.vhost)?;
    }
    for q in &defs.queues {
        check_vhost_of("queue", &q.name, &q.vhost)?;
    }
    for b in &defs.bindings {
        check_vhost_of("binding from", &b.source, &b.vhost)?;
    }
    let context = |what: String| {
        move |e: ApiError| ApiError {
            reason: format!("{what}: {}", e.reason),
            ..e
        }
    };
    for x in &defs.exchanges {
        if x.name.is_empty() || x.name.starts_with("amq.") {
            continue; // built in
        }
        declare_exchange(
            core,
            &x.name,
            &x.kind,
            x.durable,
            x.auto_delete,
            x.internal,
            &x.arguments,
        )
        .await
        .map_err(context(format!("exchange '{}'", x.name)))?;
    }
    for q in &defs.queues {
        declare_queue(core, &q.name, q.durable, q.auto_delete, &q.arguments)
            .await
            .map_err(context(format!("queue '{}'", q.name)))?;
    }
    for b in &defs.bindings {
        let destination = match b.destination_type.as_str() {
            "queue" => Destination::Queue(b.destination.clone()),
            "exchange" => Destination::Exchange(b.destination.clone()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "binding from '{}': unknown destination_type '{other}'",
                    b.source
                )));
            }
        };
        bind(
            core,
            &b.source,
            destination,
            b.routing_key.clone(),
            &b.arguments,
        )
        .await
        .map_err(context(format!(
            "binding '{}' -> '{}'",
            b.source, b.destination
        )))?;
    }
    let skipped: Vec<&String> = defs
        .rest
        .iter()
        .filter(|(_, v)| match v {
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => false,
        })
        .filter(|(k, _)| !k.starts_with("product_") && !k.starts_with("rabbit"))
        .map(|(k, _)| k)
        .collect();
    if !skipped.is_empty() {
        tracing::warn!(
            ?skipped,
            "definitions import skipped sections this broker does not have yet"
        );
    }
    tracing::info!(
        exchanges = defs.exchanges.len(),
        queues = defs.queues.len(),
        bindings = defs.bindings.len(),
        "definitions imported"
    );
    Ok(Json(json!({
        "exchanges": defs.exchanges.len(),
        "queues": defs.queues.len(),
        "bindings": defs.bindings.len(),
        "skipped": skipped,
    })))
}
