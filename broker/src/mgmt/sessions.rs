//! `/api/mqtt/sessions`: MQTT sessions, connected or not (list, show, delete).
//!
//! A session is its queue `mqtt-subscription-<client id>` and that queue's `amq.topic`
//! bindings (one per subscription, options in the binding arguments), so everything shown
//! here is read from the topology, plus the connection holding the session if any. A
//! connected clean session that has not subscribed yet has no queue: it is listed from its
//! connection. A
//! disconnected session's protocol is known from its queue only for 5.0 sessions with a
//! finite expiry (the expiry is stored in the queue arguments); otherwise it is `null`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol_amqp::FieldValue;
use serde_json::{Value, json};

use super::{API_CONN_ID, ApiError, MgmtState, check_vhost};
use crate::core::Core;
use crate::core::queue::{QueueCmd, QueueStats};
use crate::core::registry::{ConnectionInfo, Protocol};
use crate::core::topology::QueueEntry;
use crate::mqtt::sessions::{TimerKind, client_id_of, session_queue, subscriptions};
use crate::mqtt::{SESSION_EXPIRY_ARG, Shared};

/// How long a queue may take to answer a stats request.
const STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a deleted session's connection may take to let go before the queue is deleted
/// anyway (as a takeover waits).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// The MQTT front end, or 404 when the broker runs without one (handler tests over a bare
/// core).
pub(crate) fn mqtt(s: &MgmtState) -> Result<&Arc<Shared>, ApiError> {
    s.mqtt
        .as_ref()
        .ok_or_else(|| ApiError::not_found("MQTT is not enabled"))
}

/// The live connection holding `client_id` in `vhost`.
fn holder(core: &Core, mqtt: &Shared, vhost: &str, client_id: &str) -> Option<Arc<ConnectionInfo>> {
    let conn = core
        .connections
        .get(mqtt.sessions.holder(vhost, client_id)?)?;
    (conn.meta.vhost == vhost).then_some(conn)
}

async fn session_json(
    core: &Core,
    mqtt: &Shared,
    vhost: &str,
    client_id: &str,
    queue: Option<&QueueEntry>,
) -> Value {
    let conn = holder(core, mqtt, vhost, client_id);
    let durable = queue.is_some_and(|q| q.durable);
    let stored_expiry = match queue.and_then(|q| q.arguments.get(SESSION_EXPIRY_ARG)) {
        Some(FieldValue::U32(e)) => Some(*e),
        _ => None,
    };
    let protocol = match conn.as_ref().map(|c| c.meta.protocol) {
        Some(Protocol::Mqtt5) => Some("5.0"),
        Some(_) => Some("3.1.1"),
        None if stored_expiry.is_some() => Some("5.0"),
        None => None,
    };
    // 5.0: the stored expiry, else "never" for a session that survives its connection and 0
    // for one that does not. 3.1.1 has a clean-session flag instead.
    let expiry_interval = match protocol {
        Some("5.0") => Some(stored_expiry.unwrap_or(if durable { u32::MAX } else { 0 })),
        _ => None,
    };
    let clean_session = match protocol {
        Some("3.1.1") => Some(!durable),
        _ => None,
    };
    let stats = match queue {
        Some(queue) => tokio::time::timeout(
            STATS_TIMEOUT,
            queue.handle.ask(|reply| QueueCmd::Stats { reply }),
        )
        .await
        .ok()
        .flatten()
        .unwrap_or_default(),
        None => QueueStats::default(),
    };
    let topology = core.topology(vhost);
    let subs: Vec<Value> = subscriptions(&topology, client_id)
        .into_iter()
        .map(|s| {
            json!({
                "filter": s.filter,
                "qos": s.qos,
                "no_local": s.no_local,
                "retain_as_published": s.retain_as_published,
                "subscription_id": s.subscription_id,
            })
        })
        .collect();
    json!({
        "client_id": client_id,
        "vhost": vhost,
        "connected": conn.is_some(),
        "protocol": protocol,
        "clean_session": clean_session,
        "expiry_interval": expiry_interval,
        "durable": durable,
        "queue": session_queue(client_id),
        "subscriptions": subs,
        "messages": u64::from(stats.messages) + u64::from(stats.unacked),
        "messages_ready": stats.messages,
        "messages_unacknowledged": stats.unacked,
        "connection": conn.as_ref().map(|c| c.name.clone()),
        "user": conn.as_ref().map(|c| c.meta.user.clone()),
    })
}

/// `GET /api/mqtt/sessions`: every session of every vhost, by vhost and client id.
pub(crate) async fn list(State(s): State<MgmtState>) -> Result<Json<Vec<Value>>, ApiError> {
    let mqtt = mqtt(&s)?;
    let mut found: Vec<(String, String, Option<QueueEntry>)> = Vec::new();
    for vhost in s.core.vhosts() {
        let topology = vhost.topology();
        for (name, q) in &topology.queues {
            if let Some(client_id) = client_id_of(name) {
                found.push((
                    vhost.name().to_string(),
                    client_id.to_string(),
                    Some(q.clone()),
                ));
            }
        }
    }
    // Connected sessions without a queue (clean, nothing subscribed yet).
    let with_queue: std::collections::HashSet<(String, String)> = found
        .iter()
        .map(|(v, c, _)| (v.clone(), c.clone()))
        .collect();
    for key in mqtt.sessions.connected_clients() {
        if !with_queue.contains(&key) {
            found.push((key.0, key.1, None));
        }
    }
    found.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let views = found
        .iter()
        .map(|(vhost, client_id, q)| session_json(&s.core, mqtt, vhost, client_id, q.as_ref()));
    Ok(Json(futures_util::future::join_all(views).await))
}

fn no_session(vhost: &str, client_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no MQTT session of client '{client_id}' in vhost '{vhost}'"
    ))
}

/// The session's queue, if it has one; `Err` if there is no such session (no queue and no
/// connection).
fn find(
    core: &Core,
    mqtt: &Shared,
    vhost: &str,
    client_id: &str,
) -> Result<Option<QueueEntry>, ApiError> {
    check_vhost(core, vhost)?;
    let queue = core
        .topology(vhost)
        .queues
        .get(&session_queue(client_id))
        .cloned();
    if queue.is_none() && holder(core, mqtt, vhost, client_id).is_none() {
        return Err(no_session(vhost, client_id));
    }
    Ok(queue)
}

/// `GET /api/mqtt/sessions/{vhost}/{client_id}`.
pub(crate) async fn show(
    State(s): State<MgmtState>,
    Path((vhost, client_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mqtt = mqtt(&s)?;
    let q = find(&s.core, mqtt, &vhost, &client_id)?;
    Ok(Json(
        session_json(&s.core, mqtt, &vhost, &client_id, q.as_ref()).await,
    ))
}

/// `DELETE /api/mqtt/sessions/{vhost}/{client_id}`: disconnects the client if it is
/// connected (5.0 clients get DISCONNECT 0x98 Administrative action), then deletes the
/// session queue with its messages and subscriptions. The client's will, if any, goes out as
/// for any session end.
pub(crate) async fn delete(
    State(s): State<MgmtState>,
    Path((vhost, client_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mqtt = mqtt(&s)?;
    find(&s.core, mqtt, &vhost, &client_id)?;
    if let Some(conn) = holder(&s.core, mqtt, &vhost, &client_id) {
        let released = mqtt.sessions.released(&vhost, &client_id);
        conn.close("session deleted by an administrator");
        if tokio::time::timeout(RELEASE_TIMEOUT, released)
            .await
            .is_err()
        {
            tracing::warn!(%client_id, "connection did not let go of the deleted session in time");
        }
    }
    mqtt.sessions.cancel(&vhost, &client_id, TimerKind::Expiry);
    // Shared-subscription memberships go with the session queue's bindings; the groups it
    // was the last member of go after it.
    let groups = mqtt.session_groups(&vhost, &client_id);
    // The connection's cleanup may have deleted a non-persistent session already: deleting
    // a missing queue succeeds.
    s.core
        .delete_queue(
            &vhost,
            API_CONN_ID,
            &session_queue(&client_id),
            false,
            false,
        )
        .await
        .map_err(ApiError::from_delete)?;
    mqtt.release_groups(&vhost, API_CONN_ID, &groups).await;
    tracing::info!(%client_id, %vhost, "MQTT session deleted via the management API");
    Ok(StatusCode::NO_CONTENT)
}
