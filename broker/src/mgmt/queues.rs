//! `/api/queues`: list with counts and counters, declare, delete, purge, and get messages
//! (peek, or take them out).

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Body;
use super::json::{encode_payload, json_to_table, properties_to_json, table_to_json};
use super::{API_CONN_ID, ApiError, MgmtState, check_vhost};
use crate::core::ops::QueueDeclare;
use crate::core::queue::{QueueCmd, QueueCounts, QueueStats};
use crate::core::topology::QueueEntry;
use crate::core::{ChannelKey, Core};

/// How long a queue may take to answer a stats request before it is reported without
/// counts (a queue whose mailbox is full of publishes is busy, not gone).
const STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// A queue with its counts, as of the request.
pub(crate) struct QueueView {
    pub vhost: String,
    pub name: String,
    pub entry: QueueEntry,
    /// None when the queue did not answer in time.
    pub stats: Option<QueueStats>,
    pub counts: QueueCounts,
}

/// Which queues [`queue_views`] reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueFilter<'a> {
    /// Only this vhost's.
    pub vhost: &'a str,
    /// Only the queue of this name.
    pub name: Option<&'a str>,
}

/// Every queue of every vhost (or those `only` selects), with counts asked of the queue
/// tasks concurrently. Queues whose task has ended meanwhile (deleted) are left out.
pub(crate) async fn queue_views(core: &Core, only: Option<QueueFilter<'_>>) -> Vec<QueueView> {
    let mut entries: Vec<(String, String, QueueEntry)> = Vec::new();
    for v in core.vhosts() {
        if only.is_some_and(|o| o.vhost != v.name()) {
            continue;
        }
        let topology = v.topology();
        entries.extend(
            topology
                .queues
                .iter()
                .filter(|(name, _)| only.and_then(|o| o.name).is_none_or(|n| n == name.as_str()))
                .map(|(name, q)| (v.name().to_string(), name.clone(), q.clone())),
        );
    }
    entries.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let asks = entries.into_iter().map(|(vhost, name, entry)| async move {
        let asked = tokio::time::timeout(
            STATS_TIMEOUT,
            entry.handle.ask(|reply| QueueCmd::Stats { reply }),
        )
        .await;
        let stats = match asked {
            Ok(Some(stats)) => Some(stats),
            Ok(None) => return None,
            Err(_) => None,
        };
        let counts = entry.handle.counters().snapshot();
        Some(QueueView {
            vhost,
            name,
            entry,
            stats,
            counts,
        })
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

fn queue_json(s: &MgmtState, q: &QueueView) -> Value {
    let core = &s.core;
    let stats = q.stats.unwrap_or_default();
    let mut v = json!({
        "name": q.name,
        "vhost": q.vhost,
        // A direct queue (a clean MQTT session's) has no task: its messages go straight to
        // the connection, and may be dropped when it does not keep up.
        "type": if q.entry.handle.is_direct() { "mqtt-direct" } else { "classic" },
        "messages_dropped": q.counts.dropped,
        "durable": q.entry.durable,
        "auto_delete": q.entry.auto_delete,
        "exclusive": q.entry.exclusive_owner.is_some(),
        "arguments": table_to_json(&q.entry.arguments),
        "state": if q.stats.is_some() { "running" } else { "busy" },
        "messages": u64::from(stats.messages) + u64::from(stats.unacked),
        "messages_ready": stats.messages,
        "messages_unacknowledged": stats.unacked,
        "consumers": stats.consumers,
        "message_stats": super::rates::message_stats(&q.counts, s.rates.queue(q.entry.handle.id())),
    });
    if let Some(owner) = q.entry.exclusive_owner
        && let Some(conn) = core.connections.get(owner)
    {
        v["owner_pid_details"] = json!({
            "name": conn.name,
            "peer_host": conn.meta.peer.ip().to_string(),
            "peer_port": conn.meta.peer.port(),
        });
    }
    v
}

/// `GET /api/queues`.
pub(crate) async fn list(State(s): State<MgmtState>) -> Json<Vec<Value>> {
    let views = queue_views(&s.core, None).await;
    Json(views.iter().map(|q| queue_json(&s, q)).collect())
}

/// `GET /api/queues/{vhost}`.
pub(crate) async fn list_in(
    State(s): State<MgmtState>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let only = QueueFilter {
        vhost: &vhost,
        name: None,
    };
    let views = queue_views(&s.core, Some(only)).await;
    Ok(Json(views.iter().map(|q| queue_json(&s, q)).collect()))
}

fn no_queue(vhost: &str, name: &str) -> ApiError {
    ApiError::not_found(format!("no queue '{name}' in vhost '{vhost}'"))
}

/// `GET /api/queues/{vhost}/{name}`.
pub(crate) async fn show(
    State(s): State<MgmtState>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let only = QueueFilter {
        vhost: &vhost,
        name: Some(&name),
    };
    let views = queue_views(&s.core, Some(only)).await;
    let q = views.first().ok_or_else(|| no_queue(&vhost, &name))?;
    Ok(Json(queue_json(&s, q)))
}

/// Body of `PUT /api/queues/{vhost}/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueuePut {
    #[serde(default = "yes")]
    durable: bool,
    #[serde(default)]
    auto_delete: bool,
    #[serde(default)]
    arguments: Value,
    /// RabbitMQ accepts and ignores these.
    #[serde(default)]
    #[allow(dead_code)]
    node: Option<String>,
    #[serde(default, rename = "type")]
    #[allow(dead_code)]
    kind: Option<String>,
}

fn yes() -> bool {
    true
}

/// Declares a queue as the API; true if it was created (false: an equivalent one existed).
pub(crate) async fn declare_queue(
    core: &std::sync::Arc<Core>,
    vhost: &str,
    name: &str,
    durable: bool,
    auto_delete: bool,
    arguments: &Value,
) -> Result<bool, ApiError> {
    if name.is_empty() {
        return Err(ApiError::bad_request("queue name must not be empty"));
    }
    let arguments = json_to_table(arguments).map_err(ApiError::bad_request)?;
    let existed = core.topology(vhost).queues.contains_key(name);
    core.declare_queue(
        vhost,
        API_CONN_ID,
        QueueDeclare {
            name: name.to_string(),
            passive: false,
            durable,
            exclusive: false,
            auto_delete,
            arguments,
        },
    )
    .await?;
    Ok(!existed)
}

/// `PUT /api/queues/{vhost}/{name}`: 201 when created, 204 when an equivalent queue exists,
/// 400 when an inequivalent one does.
pub(crate) async fn declare(
    State(s): State<MgmtState>,
    Path((vhost, name)): Path<(String, String)>,
    Body(body): Body<QueuePut>,
) -> Result<StatusCode, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let created = declare_queue(
        &s.core,
        &vhost,
        &name,
        body.durable,
        body.auto_delete,
        &body.arguments,
    )
    .await?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    })
}

fn flag(query: &HashMap<String, String>, key: &str) -> bool {
    query.get(key).is_some_and(|v| v == "true")
}

/// `DELETE /api/queues/{vhost}/{name}[?if-unused=true][&if-empty=true]`: 204, 404 when
/// missing, 409 when in use or not empty as asked.
pub(crate) async fn delete(
    State(s): State<MgmtState>,
    Path((vhost, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    check_vhost(&s.core, &vhost)?;
    if !s.core.topology(&vhost).queues.contains_key(&name) {
        return Err(no_queue(&vhost, &name));
    }
    s.core
        .delete_queue(
            &vhost,
            API_CONN_ID,
            &name,
            flag(&query, "if-unused"),
            flag(&query, "if-empty"),
        )
        .await
        .map_err(ApiError::from_delete)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/queues/{vhost}/{name}/contents`: purge the ready messages.
pub(crate) async fn purge(
    State(s): State<MgmtState>,
    Path((vhost, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let q = s.core.lookup_queue(&vhost, API_CONN_ID, &name)?;
    let purged = q.handle.ask(|reply| QueueCmd::Purge { reply }).await;
    match purged {
        Some(n) => {
            tracing::info!(queue = %name, messages = n, "queue purged via the management API");
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(no_queue(&vhost, &name)),
    }
}

/// Body of `POST /api/queues/{vhost}/{name}/get`.
#[derive(Debug, Deserialize)]
pub(crate) struct GetRequest {
    #[serde(default = "one")]
    count: usize,
    /// `ack_requeue_true` / `reject_requeue_true`: look without consuming;
    /// `ack_requeue_false` / `reject_requeue_false`: take the messages out.
    ackmode: String,
    /// `auto` (text when UTF-8, else base64) or `base64`.
    #[serde(default)]
    encoding: Option<String>,
    /// Cut payloads to this many bytes.
    #[serde(default)]
    truncate: Option<usize>,
}

fn one() -> usize {
    1
}

/// `POST /api/queues/{vhost}/{name}/get`: the first `count` messages. With a requeueing
/// ackmode the queue is left exactly as it was (no redelivered flag, no reordering): the
/// messages are copied, not delivered.
pub(crate) async fn get_messages(
    State(s): State<MgmtState>,
    Path((vhost, name)): Path<(String, String)>,
    Body(req): Body<GetRequest>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let force_base64 = match req.encoding.as_deref() {
        None | Some("auto") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown encoding '{other}' (auto or base64)"
            )));
        }
    };
    let q = s.core.lookup_queue(&vhost, API_CONN_ID, &name)?;
    let consume = match req.ackmode.as_str() {
        "ack_requeue_true" | "reject_requeue_true" => false,
        "ack_requeue_false" | "reject_requeue_false" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown ackmode '{other}' (ack_requeue_true, reject_requeue_true, ack_requeue_false, reject_requeue_false)"
            )));
        }
    };
    // (message, redelivered, remaining after it)
    let mut got = Vec::new();
    if consume {
        let owner = ChannelKey(s.core.next_id());
        for _ in 0..req.count {
            let one = q
                .handle
                .ask(|reply| QueueCmd::Get {
                    owner,
                    no_ack: true,
                    reply,
                })
                .await
                .ok_or_else(|| no_queue(&vhost, &name))?;
            match one {
                Some(g) => got.push((g.msg, g.redelivered, g.remaining)),
                None => break,
            }
        }
    } else {
        let peeked = q
            .handle
            .ask(|reply| QueueCmd::Peek {
                count: req.count,
                reply,
            })
            .await
            .ok_or_else(|| no_queue(&vhost, &name))?;
        let stats = q
            .handle
            .ask(|reply| QueueCmd::Stats { reply })
            .await
            .unwrap_or_default();
        for (i, p) in peeked.into_iter().enumerate() {
            let after = u32::try_from(i + 1).unwrap_or(u32::MAX);
            got.push((p.msg, p.redelivered, stats.messages.saturating_sub(after)));
        }
    }
    let out = got
        .into_iter()
        .map(|(msg, redelivered, remaining)| {
            let body = match req.truncate {
                Some(n) if n < msg.body.len() => &msg.body[..n],
                _ => &msg.body[..],
            };
            let (payload, encoding) = encode_payload(body, force_base64);
            json!({
                "payload_bytes": msg.body.len(),
                "redelivered": redelivered,
                "exchange": msg.exchange.as_str(),
                "routing_key": msg.routing_key.as_str(),
                "message_count": remaining,
                "properties": properties_to_json(&msg.properties),
                "payload": payload,
                "payload_encoding": encoding,
            })
        })
        .collect();
    Ok(Json(out))
}
