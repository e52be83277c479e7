//! `/api/exchanges`: list, declare, delete, and publish a message.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use protocol_amqp::ShortStr;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::body::Body;
use super::json::{decode_payload, json_to_properties, json_to_table, table_to_json};
use super::{ApiError, MgmtState, check_vhost};
use crate::core::ops::ExchangeDeclare;
use crate::core::queue::QueueCmd;
use crate::core::{ConfirmTarget, ConnEvent, Core};
use crate::model::exchange::Exchange;
use crate::model::message::Message;

/// The default exchange's name in API paths (its real name is empty).
pub(crate) const DEFAULT_EXCHANGE_PATH: &str = "amq.default";

/// The exchange a path segment names.
pub(crate) fn exchange_name(segment: &str) -> &str {
    if segment == DEFAULT_EXCHANGE_PATH {
        ""
    } else {
        segment
    }
}

pub(crate) fn exchange_json(vhost: &str, x: &Exchange) -> Value {
    json!({
        "name": x.name,
        "vhost": vhost,
        "type": x.kind.as_str(),
        "durable": x.durable,
        "auto_delete": x.auto_delete,
        "internal": x.internal,
        "arguments": table_to_json(&x.arguments),
    })
}

fn default_exchange_json(vhost: &str) -> Value {
    json!({
        "name": "",
        "vhost": vhost,
        "type": "direct",
        "durable": true,
        "auto_delete": false,
        "internal": false,
        "arguments": {},
    })
}

/// Every exchange of a vhost, the default one first, then by name.
fn all_in(core: &Core, vhost: &str) -> Vec<Value> {
    let topology = core.topology(vhost);
    let mut xs: Vec<&Arc<Exchange>> = topology.exchanges.values().collect();
    xs.sort_by(|a, b| a.name.cmp(&b.name));
    std::iter::once(default_exchange_json(vhost))
        .chain(xs.into_iter().map(|x| exchange_json(vhost, x)))
        .collect()
}

/// `GET /api/exchanges`: every vhost's, by vhost.
pub(crate) async fn list(State(s): State<MgmtState>) -> Json<Vec<Value>> {
    let mut out = Vec::new();
    for v in s.core.vhosts() {
        out.extend(all_in(&s.core, v.name()));
    }
    Json(out)
}

/// `GET /api/exchanges/{vhost}`.
pub(crate) async fn list_in(
    State(s): State<MgmtState>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    Ok(Json(all_in(&s.core, &vhost)))
}

fn no_exchange(vhost: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("no exchange '{name}' in vhost '{vhost}'"))
}

/// `GET /api/exchanges/{vhost}/{name}` (`amq.default` is the default exchange).
pub(crate) async fn show(
    State(s): State<MgmtState>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let name = exchange_name(&name);
    if name.is_empty() {
        return Ok(Json(default_exchange_json(&vhost)));
    }
    let topology = s.core.topology(&vhost);
    let x = topology
        .exchanges
        .get(name)
        .ok_or_else(|| no_exchange(&vhost, name))?;
    Ok(Json(exchange_json(&vhost, x)))
}

/// Body of `PUT /api/exchanges/{vhost}/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExchangePut {
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

fn yes() -> bool {
    true
}

/// An exchange declaration as the API and definitions import receive it.
pub(crate) struct ApiExchange<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: &'a Value,
}

/// Declares an exchange as the API; true if it was created.
pub(crate) async fn declare_exchange(
    core: &Core,
    vhost: &str,
    x: ApiExchange<'_>,
) -> Result<bool, ApiError> {
    let arguments = json_to_table(x.arguments).map_err(ApiError::bad_request)?;
    let existed = core.topology(vhost).exchanges.contains_key(x.name);
    let req = ExchangeDeclare {
        name: x.name.to_string(),
        kind: x.kind.to_string(),
        passive: false,
        durable: x.durable,
        auto_delete: x.auto_delete,
        internal: x.internal,
        arguments,
    };
    core.declare_exchange(vhost, req).await?;
    Ok(!existed)
}

/// `PUT /api/exchanges/{vhost}/{name}`: 201 created, 204 an equivalent one exists, 400 an
/// inequivalent one exists or the type is unknown, 403 reserved names.
pub(crate) async fn declare(
    State(s): State<MgmtState>,
    Path((vhost, name)): Path<(String, String)>,
    Body(body): Body<ExchangePut>,
) -> Result<StatusCode, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let x = ApiExchange {
        name: exchange_name(&name),
        kind: &body.kind,
        durable: body.durable,
        auto_delete: body.auto_delete,
        internal: body.internal,
        arguments: &body.arguments,
    };
    let created = declare_exchange(&s.core, &vhost, x).await?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    })
}

/// `DELETE /api/exchanges/{vhost}/{name}[?if-unused=true]`: 204, 404 when missing, 403 for
/// the default and `amq.*` exchanges, 409 when in use as asked.
pub(crate) async fn delete(
    State(s): State<MgmtState>,
    Path((vhost, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let name = exchange_name(&name);
    if !name.is_empty() && !s.core.topology(&vhost).exchanges.contains_key(name) {
        return Err(no_exchange(&vhost, name));
    }
    let if_unused = query.get("if-unused").is_some_and(|v| v == "true");
    s.core
        .delete_exchange(&vhost, name, if_unused)
        .await
        .map_err(ApiError::from_delete)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/exchanges/{vhost}/{name}/publish`.
#[derive(Debug, Deserialize)]
pub(crate) struct PublishRequest {
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    payload_encoding: Option<String>,
    #[serde(default)]
    properties: Value,
}

/// `POST /api/exchanges/{vhost}/{name}/publish`: routes one message like basic.publish and
/// answers `{"routed": bool}` once every queue it reached has accepted it (persistent
/// messages on durable queues: once on disk), so a following get sees it.
pub(crate) async fn publish(
    State(s): State<MgmtState>,
    Path((vhost, name)): Path<(String, String)>,
    Body(req): Body<PublishRequest>,
) -> Result<Json<Value>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let name = exchange_name(&name);
    let topology = s.core.topology(&vhost);
    if !name.is_empty() {
        match topology.exchanges.get(name) {
            None => return Err(no_exchange(&vhost, name)),
            Some(x) if x.internal => {
                return Err(ApiError::forbidden(format!(
                    "cannot publish to internal exchange '{name}' in vhost '{vhost}'"
                )));
            }
            Some(_) => {}
        }
    }
    let properties = json_to_properties(&req.properties).map_err(ApiError::bad_request)?;
    let body = decode_payload(&req.payload, req.payload_encoding.as_deref())
        .map_err(ApiError::bad_request)?;
    let (Ok(exchange), Ok(routing_key)) =
        (ShortStr::new(name), ShortStr::new(req.routing_key.as_str()))
    else {
        return Err(ApiError::bad_request("routing key longer than 255 bytes"));
    };
    let mut targets = Vec::new();
    topology.route(
        name,
        routing_key.as_str(),
        properties.headers.as_ref(),
        &mut targets,
    );
    drop(topology);
    let routed = !targets.is_empty();
    let msg = Arc::new(Message {
        exchange,
        routing_key,
        properties,
        body,
        publisher: None,
        mqtt_form: Default::default(),
    });
    // Each queue confirms on this mailbox, as it would to a publisher in confirm mode.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut waiting = 0usize;
    for (seq, queue) in (1u64..).zip(targets) {
        let confirm = ConfirmTarget {
            conn: tx.clone(),
            channel: 0,
            seq,
        };
        let sent = queue
            .send(QueueCmd::Publish {
                msg: msg.clone(),
                confirm: Some(confirm),
            })
            .await;
        // A queue deleted after routing: as if it had taken the message (as for AMQP).
        if sent.is_ok() {
            waiting += 1;
        }
    }
    drop(tx);
    let mut stored = true;
    while waiting > 0 {
        match rx.recv().await {
            Some(ConnEvent::Confirm { ok, .. }) => {
                stored &= ok;
                waiting -= 1;
            }
            Some(_) => {}
            None => break,
        }
    }
    if !stored {
        return Err(ApiError::internal("a queue could not store the message"));
    }
    Ok(Json(json!({ "routed": routed })))
}
