//! `/api/users` and `/api/permissions`: users (name, tags, argon2id password hash) and their
//! configure/write/read permissions per vhost, in RabbitMQ's JSON shapes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Body;
use super::{ApiError, MgmtState, check_vhost};
use crate::core::access::{HASHING_ALGORITHM, Permission, User, hash_password};
use crate::core::ops::UserOpError;

impl From<UserOpError> for ApiError {
    fn from(e: UserOpError) -> ApiError {
        match e {
            UserOpError::Invalid(e) => ApiError::bad_request(e.to_string()),
            UserOpError::Storage(e) => ApiError::internal(e.to_string()),
            UserOpError::NoVhost(_) => ApiError::not_found(e.to_string()),
        }
    }
}

pub(crate) fn user_json(u: &User) -> Value {
    json!({
        "name": u.name,
        "password_hash": u.password_hash,
        "hashing_algorithm": HASHING_ALGORITHM,
        "tags": u.tags,
    })
}

/// `GET /api/users`.
pub(crate) async fn list(State(s): State<MgmtState>) -> Json<Vec<Value>> {
    Json(s.core.access.users().iter().map(user_json).collect())
}

/// `GET /api/users/{name}`.
pub(crate) async fn show(
    State(s): State<MgmtState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let user = s
        .core
        .access
        .user(&name)
        .ok_or_else(|| ApiError::not_found(format!("no user '{name}'")))?;
    Ok(Json(user_json(&user)))
}

/// Body of `PUT /api/users/{name}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserPut {
    /// A new password (hashed before it is stored).
    #[serde(default)]
    password: Option<String>,
    /// A ready hash (argon2 PHC string), e.g. from a definitions export.
    #[serde(default)]
    password_hash: Option<String>,
    /// Ignored unless it names a different algorithm.
    #[serde(default)]
    hashing_algorithm: Option<String>,
    /// Comma-separated tags, or a list.
    #[serde(default)]
    tags: Option<Value>,
}

/// Tags from `"a,b"` or `["a", "b"]`.
pub(crate) fn parse_tags(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && *t != "none")
            .map(String::from)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(String::from)
                    .ok_or_else(|| ApiError::bad_request("tags must be strings"))
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request(
            "tags must be a comma-separated string or a list",
        )),
    }
}

/// `PUT /api/users/{name}`: 201 created, 204 updated. Without `password` or `password_hash`
/// an existing user keeps their password; a new one cannot log in with a password.
pub(crate) async fn put(
    State(s): State<MgmtState>,
    Path(name): Path<String>,
    Body(body): Body<UserPut>,
) -> Result<StatusCode, ApiError> {
    if let Some(alg) = &body.hashing_algorithm
        && alg != HASHING_ALGORITHM
    {
        return Err(ApiError::bad_request(format!(
            "unsupported hashing_algorithm '{alg}' (this broker uses '{HASHING_ALGORITHM}')"
        )));
    }
    let existing = s.core.access.user(&name);
    let password_hash = match (body.password, body.password_hash) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either password or password_hash, not both",
            ));
        }
        (Some(p), None) => tokio::task::spawn_blocking(move || hash_password(&p))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(e.to_string()))?,
        (None, Some(h)) => h,
        (None, None) => existing
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_default(),
    };
    let tags = match body.tags {
        Some(t) => parse_tags(Some(&t))?,
        None => existing
            .as_ref()
            .map(|u| u.tags.clone())
            .unwrap_or_default(),
    };
    s.core
        .put_user(User {
            name,
            password_hash,
            tags,
        })
        .await?;
    Ok(if existing.is_some() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}

/// `DELETE /api/users/{name}`: 204, or 404.
pub(crate) async fn delete(
    State(s): State<MgmtState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if s.core.delete_user(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no user '{name}'")))
    }
}

fn permission_json(user: &str, vhost: &str, p: &Permission) -> Value {
    json!({
        "user": user,
        "vhost": vhost,
        "configure": p.configure.as_str(),
        "write": p.write.as_str(),
        "read": p.read.as_str(),
    })
}

/// The permissions `keep(user, vhost)` selects, as the API shows them.
fn permissions_json(s: &MgmtState, keep: impl Fn(&str, &str) -> bool) -> Vec<Value> {
    s.core
        .access
        .permissions()
        .iter()
        .filter(|(u, v, _)| keep(u, v))
        .map(|(u, v, p)| permission_json(u, v, p))
        .collect()
}

/// `GET /api/permissions`.
pub(crate) async fn list_permissions(State(s): State<MgmtState>) -> Json<Vec<Value>> {
    Json(permissions_json(&s, |_, _| true))
}

/// `GET /api/vhosts/{vhost}/permissions`: every user's permissions in one vhost (404 if
/// the vhost is missing).
pub(crate) async fn vhost_permissions(
    State(s): State<MgmtState>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    Ok(Json(permissions_json(&s, |_, v| v == vhost)))
}

/// `GET /api/users/{name}/permissions`.
pub(crate) async fn user_permissions(
    State(s): State<MgmtState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    if s.core.access.user(&name).is_none() {
        return Err(ApiError::not_found(format!("no user '{name}'")));
    }
    Ok(Json(permissions_json(&s, |u, _| u == name)))
}

/// `GET /api/permissions/{vhost}/{user}`.
pub(crate) async fn show_permission(
    State(s): State<MgmtState>,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let p = s.core.access.permission(&user, &vhost).ok_or_else(|| {
        ApiError::not_found(format!(
            "no permissions for user '{user}' in vhost '{vhost}'"
        ))
    })?;
    Ok(Json(permission_json(&user, &vhost, &p)))
}

/// Body of `PUT /api/permissions/{vhost}/{user}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PermissionPut {
    configure: Option<String>,
    write: Option<String>,
    read: Option<String>,
}

/// `PUT /api/permissions/{vhost}/{user}`: 201 created, 204 replaced; 400 for a bad regex,
/// 404 for an unknown user or vhost.
pub(crate) async fn put_permission(
    State(s): State<MgmtState>,
    Path((vhost, user)): Path<(String, String)>,
    Body(body): Body<PermissionPut>,
) -> Result<StatusCode, ApiError> {
    check_vhost(&s.core, &vhost)?;
    if s.core.access.user(&user).is_none() {
        return Err(ApiError::not_found(format!("no user '{user}'")));
    }
    let (Some(configure), Some(write), Some(read)) = (body.configure, body.write, body.read) else {
        return Err(ApiError::bad_request(
            "configure, write and read are all required",
        ));
    };
    let permission = Permission::new(&configure, &write, &read)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let existed = s.core.access.permission(&user, &vhost).is_some();
    s.core.set_permission(&user, &vhost, permission).await?;
    Ok(if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    })
}

/// `DELETE /api/permissions/{vhost}/{user}`: 204, or 404.
pub(crate) async fn delete_permission(
    State(s): State<MgmtState>,
    Path((vhost, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_vhost(&s.core, &vhost)?;
    if s.core.clear_permission(&user, &vhost).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no permissions for user '{user}' in vhost '{vhost}'"
        )))
    }
}
