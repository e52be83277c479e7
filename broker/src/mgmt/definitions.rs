//! `/api/definitions`: vhosts, users, permissions and the topology (exchanges, queues,
//! bindings of every vhost) in RabbitMQ's definitions format, exported and imported. An
//! export imported into a fresh broker gives the same vhosts, users (who can log in with
//! the same passwords), permissions and topology.
//!
//! Left out of an export: the `amq.*` and default exchanges (every vhost has them),
//! exclusive queues (they belong to a connection) and the bindings that involve them.
//! Users are exported with `password_hash` = our argon2id PHC string and
//! `hashing_algorithm` = `argon2id`; on import, users hashed with another algorithm (such as
//! RabbitMQ's `rabbit_password_hashing_sha256`) cannot log in here and are skipped, and so
//! are their permissions; the answer lists them. Sections this broker does not have
//! (policies, parameters...) are skipped and reported too.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::bindings::{all_bindings, bind, binding_json};
use super::body::Body;
use super::exchanges::{ApiExchange, declare_exchange, exchange_json};
use super::json::table_to_json;
use super::queues::declare_queue;
use super::users::parse_tags;
use super::{ApiError, MgmtState};
use crate::core::DEFAULT_VHOST;
use crate::core::access::{HASHING_ALGORITHM, Permission, User, validate_hash};
use crate::core::topology::Topology;
use crate::core::vhost::VhostMeta;
use crate::model::exchange::Destination;

/// One vhost's exchanges, queues and bindings, appended to the export's lists.
fn export_topology(
    vhost: &str,
    t: &Topology,
    exchanges_out: &mut Vec<Value>,
    queues_out: &mut Vec<Value>,
    bindings_out: &mut Vec<Value>,
) {
    let mut exchanges: Vec<_> = t
        .exchanges
        .values()
        .filter(|x| !x.name.starts_with("amq."))
        .collect();
    exchanges.sort_by(|a, b| a.name.cmp(&b.name));
    exchanges_out.extend(exchanges.iter().map(|x| exchange_json(vhost, x)));
    let mut queues: Vec<_> = t
        .queues
        .iter()
        .filter(|(_, q)| q.exclusive_owner.is_none())
        .collect();
    queues.sort_by(|a, b| a.0.cmp(b.0));
    queues_out.extend(queues.iter().map(|(name, q)| {
        json!({
            "name": name,
            "vhost": vhost,
            "durable": q.durable,
            "auto_delete": q.auto_delete,
            "arguments": table_to_json(&q.arguments),
        })
    }));
    let exported_queue = |name: &str| {
        t.queues
            .get(name)
            .is_some_and(|q| q.exclusive_owner.is_none())
    };
    bindings_out.extend(
        all_bindings(t, false)
            .iter()
            .filter(|(_, b)| match &b.destination {
                Destination::Queue(q) => exported_queue(q),
                Destination::Exchange(_) => true,
            })
            .map(|(source, b)| {
                let mut v = binding_json(vhost, source, b);
                if let Some(o) = v.as_object_mut() {
                    o.remove("properties_key");
                }
                v
            }),
    );
}

/// `GET /api/definitions`.
pub(crate) async fn export(State(s): State<MgmtState>) -> Json<Value> {
    let (mut vhosts, mut exchanges, mut queues, mut bindings) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for v in s.core.vhosts() {
        let meta = v.meta();
        vhosts.push(json!({
            "name": v.name(),
            "description": meta.description,
            "tags": meta.tags,
            "metadata": { "description": meta.description, "tags": meta.tags },
        }));
        export_topology(
            v.name(),
            &v.topology(),
            &mut exchanges,
            &mut queues,
            &mut bindings,
        );
    }
    let mut users = s.core.access.users();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    let users: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({
                "name": u.name,
                "password_hash": u.password_hash,
                "hashing_algorithm": HASHING_ALGORITHM,
                "tags": u.tags,
                "limits": {},
            })
        })
        .collect();
    let permissions: Vec<Value> = s
        .core
        .access
        .permissions()
        .iter()
        .map(|(user, vhost, p)| {
            json!({
                "user": user,
                "vhost": vhost,
                "configure": p.configure.as_str(),
                "write": p.write.as_str(),
                "read": p.read.as_str(),
            })
        })
        .collect();
    Json(json!({
        "product_name": "broker",
        "product_version": env!("CARGO_PKG_VERSION"),
        "users": users,
        "vhosts": vhosts,
        "permissions": permissions,
        "exchanges": exchanges,
        "queues": queues,
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
    vhosts: Vec<VhostDef>,
    #[serde(default)]
    users: Vec<UserDef>,
    #[serde(default)]
    permissions: Vec<PermissionDef>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct VhostDef {
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// A list, or a comma-separated string.
    #[serde(default)]
    tags: Option<Value>,
    /// RabbitMQ 3.11+ also puts description and tags here.
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct UserDef {
    name: String,
    #[serde(default)]
    password_hash: String,
    #[serde(default)]
    hashing_algorithm: Option<String>,
    /// RabbitMQ exports a list (3.12+) or a comma-separated string (older).
    #[serde(default)]
    tags: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct PermissionDef {
    user: String,
    vhost: String,
    configure: String,
    write: String,
    read: String,
}

/// Whether a vhost exists or the import creates it.
fn check_vhost_of(
    s: &MgmtState,
    created: &[VhostDef],
    kind: &str,
    name: &str,
    vhost: &str,
) -> Result<(), ApiError> {
    if s.core.vhost(vhost).is_some() || created.iter().any(|v| v.name == vhost) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{kind} '{name}' is in vhost '{vhost}', which does not exist"
        )))
    }
}

fn vhost_meta(v: &VhostDef) -> Result<VhostMeta, ApiError> {
    let from_metadata = |key: &str| v.metadata.as_ref().and_then(|m| m.get(key)).cloned();
    let description = v
        .description
        .clone()
        .or_else(|| from_metadata("description").and_then(|d| d.as_str().map(String::from)))
        .unwrap_or_default();
    let tags = v.tags.clone().or_else(|| from_metadata("tags"));
    Ok(VhostMeta {
        description,
        tags: parse_tags(tags.as_ref())?,
    })
}

/// A user as this broker can keep it, or why it cannot.
fn import_user(u: &UserDef) -> Result<User, ApiError> {
    let alg = u.hashing_algorithm.as_deref().unwrap_or(HASHING_ALGORITHM);
    if alg != HASHING_ALGORITHM {
        return Err(ApiError::bad_request(format!(
            "unsupported hashing_algorithm '{alg}' (this broker uses '{HASHING_ALGORITHM}')"
        )));
    }
    validate_hash(&u.password_hash).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(User {
        name: u.name.clone(),
        password_hash: u.password_hash.clone(),
        tags: parse_tags(u.tags.as_ref())?,
    })
}

/// `POST /api/definitions`: creates vhosts, then users and permissions, then declares
/// exchanges, queues and bindings, with the same checks as clients get. Vhost, user and
/// permission entries are all checked before anything is applied, and an import that would
/// leave no administrator is refused (400); a declare that fails stops the import (400/403,
/// naming the object) with the ones before it in place. Users whose
/// password hash this broker cannot verify are skipped (with their permissions) and listed.
/// Answers what was applied and what was skipped.
pub(crate) async fn import(
    State(s): State<MgmtState>,
    Body(defs): Body<Definitions>,
) -> Result<Json<Value>, ApiError> {
    let core = &s.core;
    for x in &defs.exchanges {
        check_vhost_of(&s, &defs.vhosts, "exchange", &x.name, &x.vhost)?;
    }
    for q in &defs.queues {
        check_vhost_of(&s, &defs.vhosts, "queue", &q.name, &q.vhost)?;
    }
    for b in &defs.bindings {
        check_vhost_of(&s, &defs.vhosts, "binding from", &b.source, &b.vhost)?;
    }
    for p in &defs.permissions {
        check_vhost_of(&s, &defs.vhosts, "permission of user", &p.user, &p.vhost)?;
    }
    let mut users = Vec::new();
    let mut skipped_users = Vec::new();
    for u in &defs.users {
        match import_user(u) {
            Ok(user) => users.push(user),
            Err(e) => skipped_users.push(json!({ "name": u.name, "reason": e.reason })),
        }
    }
    let mut permissions = Vec::new();
    let mut skipped_permissions = Vec::new();
    for p in &defs.permissions {
        let known = users.iter().any(|u| u.name == p.user) || core.access.user(&p.user).is_some();
        if !known {
            skipped_permissions.push(json!({ "user": p.user, "vhost": p.vhost }));
            continue;
        }
        let permission = Permission::new(&p.configure, &p.write, &p.read).map_err(|e| {
            ApiError::bad_request(format!(
                "permission of user '{}' in vhost '{}': {e}",
                p.user, p.vhost
            ))
        })?;
        permissions.push((p, permission));
    }
    let vhosts = defs
        .vhosts
        .iter()
        .map(|v| Ok((v, vhost_meta(v)?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    // The users after the import: imported ones replace existing ones of the same name.
    let administrators = core
        .access
        .users()
        .into_iter()
        .filter(|u| !users.iter().any(|i| i.name == u.name))
        .chain(users.iter().cloned())
        .filter(|u| u.has_tag("administrator"))
        .count();
    if administrators == 0 {
        return Err(ApiError::bad_request(
            "the import would leave no user tagged administrator (nobody could manage the broker)",
        ));
    }
    for (v, meta) in vhosts {
        core.put_vhost(&v.name, meta)
            .await
            .map_err(|e| ApiError::bad_request(format!("vhost '{}': {e}", v.name)))?;
    }
    for user in users {
        core.put_user(user).await?;
    }
    for (p, permission) in permissions {
        core.set_permission(&p.user, &p.vhost, permission).await?;
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
        let api = ApiExchange {
            name: &x.name,
            kind: &x.kind,
            durable: x.durable,
            auto_delete: x.auto_delete,
            internal: x.internal,
            arguments: &x.arguments,
        };
        declare_exchange(core, &x.vhost, api)
            .await
            .map_err(context(format!("exchange '{}'", x.name)))?;
    }
    for q in &defs.queues {
        declare_queue(
            core,
            &q.vhost,
            &q.name,
            q.durable,
            q.auto_delete,
            &q.arguments,
        )
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
            &b.vhost,
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
    if !skipped_users.is_empty() {
        tracing::warn!(
            users = ?skipped_users,
            "definitions import skipped users whose password hash this broker cannot verify"
        );
    }
    tracing::info!(
        vhosts = defs.vhosts.len(),
        users = defs.users.len() - skipped_users.len(),
        permissions = defs.permissions.len() - skipped_permissions.len(),
        exchanges = defs.exchanges.len(),
        queues = defs.queues.len(),
        bindings = defs.bindings.len(),
        "definitions imported"
    );
    Ok(Json(json!({
        "vhosts": defs.vhosts.len(),
        "users": defs.users.len() - skipped_users.len(),
        "permissions": defs.permissions.len() - skipped_permissions.len(),
        "skipped_users": skipped_users,
        "skipped_permissions": skipped_permissions,
        "exchanges": defs.exchanges.len(),
        "queues": defs.queues.len(),
        "bindings": defs.bindings.len(),
        "skipped": skipped,
    })))
}
