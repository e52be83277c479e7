//! `/api/mqtt/retained`: the retained message of every topic that has one, per vhost (list,
//! clear).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::json::{encode_payload, properties_to_json};
use super::sessions::mqtt;
use super::{ApiError, MgmtState, check_vhost, epoch_millis};
use crate::mqtt::convert::from_message;

/// Payload bytes shown per message unless `?truncate=N` says otherwise: a retained message
/// may be megabytes, and the list is for looking.
const PREVIEW_BYTES: usize = 4096;

/// `GET /api/mqtt/retained[?truncate=N]`: vhost, topic, QoS, size, a payload preview (text
/// when it is UTF-8, else base64, as in RabbitMQ's get) and when it was retained (`null` for
/// messages recovered at start-up).
pub(crate) async fn list(
    State(s): State<MgmtState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Value>>, ApiError> {
    retained_json(&s, None, &query)
}

/// `GET /api/mqtt/retained/{vhost}[?truncate=N]`: the same for one vhost.
pub(crate) async fn list_in(
    State(s): State<MgmtState>,
    Path(vhost): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    retained_json(&s, Some(&vhost), &query)
}

fn retained_json(
    s: &MgmtState,
    vhost: Option<&str>,
    query: &HashMap<String, String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let mqtt = mqtt(s)?;
    let truncate = match query.get("truncate") {
        None => PREVIEW_BYTES,
        Some(n) => n
            .parse()
            .map_err(|_| ApiError::bad_request(format!("truncate must be a number, not '{n}'")))?,
    };
    let out = mqtt
        .retained
        .list()
        .into_iter()
        .filter(|r| vhost.is_none_or(|v| v == r.vhost))
        .map(|r| {
            let body = &r.msg.body[..r.msg.body.len().min(truncate)];
            let (payload, encoding) = encode_payload(body, false);
            // Expired messages have no MQTT reading any more; report what the header says.
            let qos = from_message(&r.msg).map_or(0, |o| o.form.qos.as_u8());
            json!({
                "topic": r.topic,
                "vhost": r.vhost,
                "qos": qos,
                "payload_bytes": r.msg.body.len(),
                "payload": payload,
                "payload_encoding": encoding,
                "properties": properties_to_json(&r.msg.properties),
                "stored_at": r.stored_at.map(epoch_millis),
            })
        })
        .collect();
    Ok(Json(out))
}

/// `DELETE /api/mqtt/retained/{vhost}/{topic}` (URL-encoded; the topic's `/` as `%2F` or as
/// is): clears it as an empty retained publish would, without delivering anything to
/// subscribers. 404 when the topic has no retained message.
pub(crate) async fn delete(
    State(s): State<MgmtState>,
    Path((vhost, topic)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let mqtt = mqtt(&s)?;
    check_vhost(&s.core, &vhost)?;
    if !mqtt.retained.contains(&vhost, &topic) {
        return Err(ApiError::not_found(format!(
            "no retained message on topic '{topic}' in vhost '{vhost}'"
        )));
    }
    mqtt.retained
        .set(&vhost, &topic, None)
        .map_err(|e| ApiError::internal(format!("cannot clear the retained message: {e}")))?;
    s.core
        .flusher()
        .sync()
        .await
        .map_err(|e| ApiError::internal(format!("cannot sync storage: {e}")))?;
    tracing::info!(%vhost, %topic, "retained message cleared via the management API");
    Ok(StatusCode::NO_CONTENT)
}
