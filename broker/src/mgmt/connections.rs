//! `/api/connections` (list, show, close), `/api/channels`, `/api/consumers`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{ApiError, MgmtState, check_vhost, epoch_millis};
use crate::core::queue::{ConsumerInfo, QueueCmd};
use crate::core::registry::{ConnectionInfo, Protocol};
use crate::core::{ChannelKey, Core};

/// How long a queue may take to list its consumers before it is left out of the answer.
const CONSUMERS_TIMEOUT: Duration = Duration::from_secs(5);

fn connection_json(c: &ConnectionInfo) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let client_properties = match (c.meta.protocol, &c.meta.client_name) {
        (Protocol::Amqp091, Some(name)) => json!({ "connection_name": name }),
        (_, Some(id)) => json!({ "client_id": id }),
        (_, None) => json!({}),
    };
    json!({
        "name": c.name,
        "type": "network",
        "protocol": c.meta.protocol.as_str(),
        "vhost": c.meta.vhost,
        "user": c.meta.user,
        "host": c.meta.local.ip().to_string(),
        "port": c.meta.local.port(),
        "peer_host": c.meta.peer.ip().to_string(),
        "peer_port": c.meta.peer.port(),
        "connected_at": epoch_millis(c.connected_at),
        "channels": c.channel_count(),
        "state": "running",
        "user_provided_name": c.meta.client_name,
        "client_properties": client_properties,
        "recv_oct": c.meta.io.recv.load(Relaxed),
        "send_oct": c.meta.io.send.load(Relaxed),
    })
}

/// `GET /api/connections`.
pub(crate) async fn list(State(s): State<MgmtState>) -> Json<Vec<Value>> {
    Json(
        s.core
            .connections
            .list()
            .iter()
            .map(|c| connection_json(c))
            .collect(),
    )
}

/// `GET /api/vhosts/{vhost}/connections`: the connections of one vhost (404 if missing).
pub(crate) async fn list_in(
    State(s): State<MgmtState>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    Ok(Json(
        s.core
            .connections
            .list()
            .iter()
            .filter(|c| c.meta.vhost == vhost)
            .map(|c| connection_json(c))
            .collect(),
    ))
}

fn no_connection(name: &str) -> ApiError {
    ApiError::not_found(format!("no connection '{name}'"))
}

/// `GET /api/connections/{name}`.
pub(crate) async fn show(
    State(s): State<MgmtState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = s
        .core
        .connections
        .find(&name)
        .ok_or_else(|| no_connection(&name))?;
    Ok(Json(connection_json(&c)))
}

/// `DELETE /api/connections/{name}` with an optional `X-Reason` header: the connection is
/// told (AMQP connection.close 320 CONNECTION_FORCED with the reason, MQTT 5.0 DISCONNECT
/// 0x98 Administrative action with the reason string, MQTT 3.1.1 just closed) and ends.
/// Answers 204 once asked; the connection goes away as soon as its task sees it.
pub(crate) async fn close(
    State(s): State<MgmtState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let c = s
        .core
        .connections
        .find(&name)
        .ok_or_else(|| no_connection(&name))?;
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "Closed via management API".to_string(), str::to_string);
    tracing::info!(connection = %name, %reason, "closing connection on operator request");
    c.close(reason);
    Ok(StatusCode::NO_CONTENT)
}

/// Every consumer of every queue (of one vhost, or all) as (vhost, queue, consumer), asked
/// of the queue tasks concurrently.
async fn all_consumers(core: &Core, only: Option<&str>) -> Vec<(String, String, ConsumerInfo)> {
    let mut queues: Vec<(String, String, crate::core::queue::QueueHandle)> = Vec::new();
    for v in core.vhosts() {
        if only.is_some_and(|o| o != v.name()) {
            continue;
        }
        let topology = v.topology();
        queues.extend(
            topology
                .queues
                .iter()
                .map(|(n, q)| (v.name().to_string(), n.clone(), q.handle.clone())),
        );
    }
    queues.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let asks = queues.into_iter().map(|(vhost, name, handle)| async move {
        let asked = tokio::time::timeout(
            CONSUMERS_TIMEOUT,
            handle.ask(|reply| QueueCmd::Consumers { reply }),
        )
        .await;
        match asked {
            Ok(Some(list)) => list
                .into_iter()
                .map(|c| (vhost.clone(), name.clone(), c))
                .collect(),
            _ => Vec::new(),
        }
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Channel instance → (connection, channel number) for every open AMQP channel.
fn channel_index(core: &Core) -> HashMap<ChannelKey, (Arc<ConnectionInfo>, u16)> {
    let mut index = HashMap::new();
    for c in core.connections.list() {
        for (number, key) in c.channels() {
            index.insert(key, (c.clone(), number));
        }
    }
    index
}

fn channel_name(c: &ConnectionInfo, number: u16) -> String {
    format!("{} ({number})", c.name)
}

/// `GET /api/channels`.
pub(crate) async fn channels(State(s): State<MgmtState>) -> Json<Vec<Value>> {
    let consumers = all_consumers(&s.core, None).await;
    let mut per_channel: HashMap<ChannelKey, (u32, u32)> = HashMap::new();
    for (_, _, c) in &consumers {
        let e = per_channel.entry(c.owner).or_default();
        e.0 += 1;
        e.1 += c.unacked;
    }
    let mut out = Vec::new();
    for c in s.core.connections.list() {
        for (number, key) in c.channels() {
            let (consumer_count, unacked) = per_channel.get(&key).copied().unwrap_or_default();
            out.push(json!({
                "name": channel_name(&c, number),
                "number": number,
                "vhost": c.meta.vhost,
                "user": c.meta.user,
                "consumer_count": consumer_count,
                "messages_unacknowledged": unacked,
                "state": "running",
                "connection_details": {
                    "name": c.name,
                    "peer_host": c.meta.peer.ip().to_string(),
                    "peer_port": c.meta.peer.port(),
                },
            }));
        }
    }
    Json(out)
}

/// `GET /api/consumers`.
pub(crate) async fn consumers(State(s): State<MgmtState>) -> Json<Vec<Value>> {
    consumers_json(&s, None).await
}

async fn consumers_json(s: &MgmtState, only: Option<&str>) -> Json<Vec<Value>> {
    let consumers = all_consumers(&s.core, only).await;
    let index = channel_index(&s.core);
    let out = consumers
        .iter()
        .map(|(vhost, queue, c)| {
            // MQTT connections have no channels: the consumer belongs to the connection.
            let channel_details = match index.get(&c.owner) {
                Some((conn, number)) => json!({
                    "name": channel_name(conn, *number),
                    "number": number,
                    "connection_name": conn.name,
                    "peer_host": conn.meta.peer.ip().to_string(),
                    "peer_port": conn.meta.peer.port(),
                    "user": conn.meta.user,
                }),
                None => match s.core.connections.get(c.conn_id) {
                    Some(conn) => json!({
                        "name": conn.name,
                        "connection_name": conn.name,
                        "peer_host": conn.meta.peer.ip().to_string(),
                        "peer_port": conn.meta.peer.port(),
                        "user": conn.meta.user,
                    }),
                    None => json!({}),
                },
            };
            json!({
                "consumer_tag": c.tag.as_str(),
                "queue": { "name": queue, "vhost": vhost },
                "channel_details": channel_details,
                "ack_required": c.ack_required,
                "exclusive": c.exclusive,
                "prefetch_count": c.prefetch,
                "active": true,
                "arguments": {},
            })
        })
        .collect();
    Json(out)
}

/// `GET /api/consumers/{vhost}`.
pub(crate) async fn consumers_in(
    State(s): State<MgmtState>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    Ok(consumers_json(&s, Some(&vhost)).await)
}
