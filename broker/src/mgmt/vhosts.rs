//! `/api/vhosts`: list, show, create (or update description and tags) and delete virtual
//! hosts, in RabbitMQ's JSON shapes. Changes need the `administrator` tag (checked by the
//! auth middleware for every non-GET request).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Body;
use super::users::parse_tags;
use super::{ApiError, MgmtState};
use crate::core::vhost::{Vhost, VhostMeta};

fn vhost_json(s: &MgmtState, v: &Vhost) -> Value {
    let meta = v.meta();
    let topology = v.topology();
    let connections = s
        .core
        .connections
        .list()
        .iter()
        .filter(|c| c.meta.vhost == v.name())
        .count();
    json!({
        "name": v.name(),
        "description": meta.description,
        "tags": meta.tags,
        "metadata": { "description": meta.description, "tags": meta.tags },
        "queues": topology.queues.len(),
        // + the default exchange, which is implicit in the topology.
        "exchanges": topology.exchanges.len() + 1,
        "connections": connections,
        "tracing": false,
    })
}

fn no_vhost(name: &str) -> ApiError {
    ApiError::not_found(format!("vhost '{name}' not found"))
}

/// `GET /api/vhosts`.
pub(crate) async fn list(State(s): State<MgmtState>) -> Json<Vec<Value>> {
    Json(s.core.vhosts().iter().map(|v| vhost_json(&s, v)).collect())
}

/// `GET /api/vhosts/{name}`: 404 if missing.
pub(crate) async fn show(
    State(s): State<MgmtState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = s.core.vhost(&name).ok_or_else(|| no_vhost(&name))?;
    Ok(Json(vhost_json(&s, &v)))
}

/// Body of `PUT /api/vhosts/{name}` (all optional, as in RabbitMQ).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct VhostPut {
    #[serde(default)]
    description: Option<String>,
    /// Comma-separated, or a list.
    #[serde(default)]
    tags: Option<Value>,
}

/// `PUT /api/vhosts/{name}`: 201 created, 204 when it existed (description and tags are
/// replaced by those given).
pub(crate) async fn put(
    State(s): State<MgmtState>,
    Path(name): Path<String>,
    Body(body): Body<VhostPut>,
) -> Result<StatusCode, ApiError> {
    if name.is_empty() {
        return Err(ApiError::bad_request("vhost name must not be empty"));
    }
    let old = s.core.vhost(&name).map(|v| v.meta()).unwrap_or_default();
    let meta = VhostMeta {
        description: body.description.unwrap_or(old.description),
        tags: match body.tags {
            Some(t) => parse_tags(Some(&t))?,
            None => old.tags,
        },
    };
    let created = s.core.put_vhost(&name, meta).await?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    })
}

/// `DELETE /api/vhosts/{name}`: 204, or 404. Closes the vhost's connections and deletes
/// its queues (with their messages), exchanges and permissions.
pub(crate) async fn delete(
    State(s): State<MgmtState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if s.core.delete_vhost(&name).await? {
        tracing::info!(vhost = %name, "vhost deleted via the management API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_vhost(&name))
    }
}
