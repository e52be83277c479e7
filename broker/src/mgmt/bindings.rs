//! `/api/bindings`: list (including the default exchange's implicit bindings, as RabbitMQ
//! shows them), create and delete exchange → queue and exchange → exchange bindings.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::Body;
use super::exchanges::exchange_name;
use super::json::{json_to_table, table_to_json};
use super::{API_CONN_ID, ApiError, MgmtState, check_vhost};
use crate::core::Core;
use crate::core::topology::{Topology, encode_table};
use crate::model::exchange::{Binding, Destination};

/// RabbitMQ's "properties key" of a binding, which names it in paths: the routing key
/// (`~` when empty) when it has no arguments, else the routing key, `~` and a hash of the
/// arguments.
pub(crate) fn properties_key(b: &Binding) -> String {
    if b.arguments.is_empty() {
        if b.routing_key.is_empty() {
            "~".to_string()
        } else {
            b.routing_key.clone()
        }
    } else {
        // FNV-1a over the arguments' wire encoding: stable across restarts and versions.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in encode_table(&b.arguments) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{}~{hash:016x}", b.routing_key)
    }
}

fn destination_parts(d: &Destination) -> (&str, &'static str) {
    match d {
        Destination::Queue(q) => (q, "queue"),
        Destination::Exchange(e) => (e, "exchange"),
    }
}

pub(crate) fn binding_json(vhost: &str, source: &str, b: &Binding) -> Value {
    let (destination, kind) = destination_parts(&b.destination);
    json!({
        "source": source,
        "vhost": vhost,
        "destination": destination,
        "destination_type": kind,
        "routing_key": b.routing_key,
        "arguments": table_to_json(&b.arguments),
        "properties_key": properties_key(b),
    })
}

/// Every explicit binding as (source, binding), sorted; `with_default` adds the default
/// exchange's implicit binding to each queue first.
pub(crate) fn all_bindings(t: &Topology, with_default: bool) -> Vec<(String, Binding)> {
    let mut out = Vec::new();
    if with_default {
        let mut queues: Vec<&String> = t.queues.keys().collect();
        queues.sort();
        for q in queues {
            out.push((
                String::new(),
                Binding {
                    destination: Destination::Queue(q.clone()),
                    routing_key: q.clone(),
                    arguments: Default::default(),
                },
            ));
        }
    }
    let mut explicit: Vec<(String, Binding)> = Vec::new();
    for (name, x) in &t.exchanges {
        for b in x.bindings() {
            explicit.push((name.clone(), b.clone()));
        }
    }
    explicit.sort_by(|a, b| {
        let key = |(s, b): &(String, Binding)| {
            let (d, k) = destination_parts(&b.destination);
            (s.clone(), k, d.to_string(), b.routing_key.clone())
        };
        key(a).cmp(&key(b))
    });
    out.extend(explicit);
    out
}

fn list_json(core: &Core, vhost: &str) -> Vec<Value> {
    all_bindings(&core.topology(vhost), true)
        .iter()
        .map(|(s, b)| binding_json(vhost, s, b))
        .collect()
}

/// `GET /api/bindings`: every vhost's, by vhost.
pub(crate) async fn list(State(s): State<MgmtState>) -> Json<Vec<Value>> {
    let mut out = Vec::new();
    for v in s.core.vhosts() {
        out.extend(list_json(&s.core, v.name()));
    }
    Json(out)
}

/// `GET /api/bindings/{vhost}`.
pub(crate) async fn list_in(
    State(s): State<MgmtState>,
    Path(vhost): Path<String>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    Ok(Json(list_json(&s.core, &vhost)))
}

fn bindings_between(
    core: &Core,
    vhost: &str,
    source: &str,
    dest: &Destination,
) -> Result<Vec<Value>, ApiError> {
    let t = core.topology(vhost);
    let (d, _) = destination_parts(dest);
    let dest_exists = match dest {
        Destination::Queue(q) => t.queues.contains_key(q),
        Destination::Exchange(e) => t.exchanges.contains_key(e),
    };
    if !dest_exists {
        return Err(ApiError::not_found(format!("no destination '{d}'")));
    }
    if source.is_empty() {
        return Ok(match dest {
            Destination::Queue(q) => vec![binding_json(
                vhost,
                "",
                &Binding {
                    destination: dest.clone(),
                    routing_key: q.clone(),
                    arguments: Default::default(),
                },
            )],
            Destination::Exchange(_) => Vec::new(),
        });
    }
    let x = t
        .exchanges
        .get(source)
        .ok_or_else(|| ApiError::not_found(format!("no exchange '{source}'")))?;
    let mut list: Vec<&Binding> = x.bindings_to(dest).iter().collect();
    list.sort_by(|a, b| a.routing_key.cmp(&b.routing_key));
    Ok(list
        .into_iter()
        .map(|b| binding_json(vhost, source, b))
        .collect())
}

/// `GET /api/bindings/{vhost}/e/{source}/q/{queue}`.
pub(crate) async fn between_queue(
    State(s): State<MgmtState>,
    Path((vhost, source, dest)): Path<(String, String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let dest = Destination::Queue(dest);
    bindings_between(&s.core, &vhost, exchange_name(&source), &dest).map(Json)
}

/// `GET /api/bindings/{vhost}/e/{source}/e/{destination}`.
pub(crate) async fn between_exchange(
    State(s): State<MgmtState>,
    Path((vhost, source, dest)): Path<(String, String, String)>,
) -> Result<Json<Vec<Value>>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    bindings_between(
        &s.core,
        &vhost,
        exchange_name(&source),
        &Destination::Exchange(exchange_name(&dest).to_string()),
    )
    .map(Json)
}

/// Body of the binding POSTs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BindingPost {
    #[serde(default)]
    routing_key: String,
    #[serde(default)]
    arguments: Value,
}

/// Creates a binding as the API does (also used by definitions import).
pub(crate) async fn bind(
    core: &Core,
    vhost: &str,
    source: &str,
    destination: Destination,
    routing_key: String,
    arguments: &Value,
) -> Result<Binding, ApiError> {
    let arguments = json_to_table(arguments).map_err(ApiError::bad_request)?;
    let binding = Binding {
        destination,
        routing_key,
        arguments,
    };
    core.bind(vhost, API_CONN_ID, source, binding.clone())
        .await?;
    Ok(binding)
}

async fn create(
    core: &Core,
    vhost: &str,
    source: &str,
    dest: Destination,
    body: BindingPost,
) -> Result<Response, ApiError> {
    let binding = bind(core, vhost, source, dest, body.routing_key, &body.arguments).await?;
    let mut response = StatusCode::CREATED.into_response();
    // RabbitMQ answers with the new binding's properties key as a relative location.
    if let Ok(location) = HeaderValue::from_str(&percent_encode(&properties_key(&binding))) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `POST /api/bindings/{vhost}/e/{source}/q/{queue}`: 201 with `Location`.
pub(crate) async fn create_to_queue(
    State(s): State<MgmtState>,
    Path((vhost, source, dest)): Path<(String, String, String)>,
    Body(body): Body<BindingPost>,
) -> Result<Response, ApiError> {
    check_vhost(&s.core, &vhost)?;
    create(
        &s.core,
        &vhost,
        exchange_name(&source),
        Destination::Queue(dest),
        body,
    )
    .await
}

/// `POST /api/bindings/{vhost}/e/{source}/e/{destination}`: 201 with `Location`.
pub(crate) async fn create_to_exchange(
    State(s): State<MgmtState>,
    Path((vhost, source, dest)): Path<(String, String, String)>,
    Body(body): Body<BindingPost>,
) -> Result<Response, ApiError> {
    check_vhost(&s.core, &vhost)?;
    create(
        &s.core,
        &vhost,
        exchange_name(&source),
        Destination::Exchange(exchange_name(&dest).to_string()),
        body,
    )
    .await
}

fn find(
    core: &Core,
    vhost: &str,
    source: &str,
    dest: &Destination,
    props: &str,
) -> Result<Binding, ApiError> {
    let t = core.topology(vhost);
    t.exchanges
        .get(source)
        .and_then(|x| {
            x.bindings_to(dest)
                .iter()
                .find(|b| properties_key(b) == props)
                .cloned()
        })
        .ok_or_else(|| ApiError::not_found(format!("no binding '{props}' from '{source}'")))
}

/// `GET /api/bindings/{vhost}/e/{source}/q/{queue}/{props}`.
pub(crate) async fn show_to_queue(
    State(s): State<MgmtState>,
    Path((vhost, source, dest, props)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let source = exchange_name(&source);
    let b = find(&s.core, &vhost, source, &Destination::Queue(dest), &props)?;
    Ok(Json(binding_json(&vhost, source, &b)))
}

/// `GET /api/bindings/{vhost}/e/{source}/e/{destination}/{props}`.
pub(crate) async fn show_to_exchange(
    State(s): State<MgmtState>,
    Path((vhost, source, dest, props)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let source = exchange_name(&source);
    let dest = Destination::Exchange(exchange_name(&dest).to_string());
    let b = find(&s.core, &vhost, source, &dest, &props)?;
    Ok(Json(binding_json(&vhost, source, &b)))
}

async fn remove(
    core: &Core,
    vhost: &str,
    source: &str,
    dest: Destination,
    props: &str,
) -> Result<StatusCode, ApiError> {
    if source.is_empty() {
        return Err(ApiError::forbidden(
            "the default exchange's bindings cannot be removed",
        ));
    }
    let b = find(core, vhost, source, &dest, props)?;
    core.unbind(vhost, API_CONN_ID, source, b).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/bindings/{vhost}/e/{source}/q/{queue}/{props}`: 204, 404 when missing.
pub(crate) async fn delete_to_queue(
    State(s): State<MgmtState>,
    Path((vhost, source, dest, props)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    check_vhost(&s.core, &vhost)?;
    remove(
        &s.core,
        &vhost,
        exchange_name(&source),
        Destination::Queue(dest),
        &props,
    )
    .await
}

/// `DELETE /api/bindings/{vhost}/e/{source}/e/{destination}/{props}`: 204, 404 when missing.
pub(crate) async fn delete_to_exchange(
    State(s): State<MgmtState>,
    Path((vhost, source, dest, props)): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    check_vhost(&s.core, &vhost)?;
    let dest = Destination::Exchange(exchange_name(&dest).to_string());
    remove(&s.core, &vhost, exchange_name(&source), dest, &props).await
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol_amqp::{FieldTable, FieldValue, ShortStr};

    fn binding(rk: &str, args: FieldTable) -> Binding {
        Binding {
            destination: Destination::Queue("q".into()),
            routing_key: rk.into(),
            arguments: args,
        }
    }

    #[test]
    fn properties_keys_name_bindings_uniquely() {
        assert_eq!(properties_key(&binding("a.b", FieldTable::new())), "a.b");
        assert_eq!(properties_key(&binding("", FieldTable::new())), "~");
        let mut args = FieldTable::new();
        args.insert(ShortStr::from_static("x-match"), FieldValue::Bool(true));
        let with_args = properties_key(&binding("k", args.clone()));
        assert!(with_args.starts_with("k~"), "{with_args}");
        assert_eq!(with_args, properties_key(&binding("k", args)), "stable");
        assert_eq!(percent_encode("a/b c~"), "a%2Fb%20c~");
    }
}
