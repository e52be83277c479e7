//! Handler tests without sockets: the router is called in-process (`oneshot`) over a core
//! with in-memory storage. End-to-end tests over HTTP with real clients are in
//! `tests/tests/mgmt_*.rs`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::{MgmtState, router};
use crate::core::Core;

const GUEST: &str = "Basic Z3Vlc3Q6Z3Vlc3Q="; // guest:guest

async fn app() -> Router {
    let core = Core::new(Arc::new(storage::MemoryStorage::new()), u64::MAX);
    core.recover().expect("recover an empty store");
    core.ensure_default_user("guest", "guest")
        .await
        .expect("default user");
    router(MgmtState::new(core, Vec::new()))
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
    text: String,
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        json,
        text,
    }
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> Reply {
    send(app, method, uri, Some(GUEST), body).await
}

#[tokio::test]
async fn api_needs_credentials_but_metrics_does_not() {
    let app = app().await;
    let r = send(&app, "GET", "/api/overview", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["error"], "not_authorised");
    assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
    // guest:wrong
    let r = send(
        &app,
        "GET",
        "/api/queues",
        Some("Basic Z3Vlc3Q6d3Jvbmc="),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&app, "DELETE", "/api/queues/%2F/q", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "mutations too");
    let r = call(&app, "GET", "/api/whoami", None).await;
    assert_eq!(r.json, json!({"name": "guest", "tags": ["administrator"]}));
    let r = send(&app, "GET", "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("broker_queues 0"), "{}", r.text);
}

#[tokio::test]
async fn unknown_paths_methods_and_vhosts_are_json_errors() {
    let app = app().await;
    let r = call(&app, "GET", "/api/nothing", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["error"], "not_found");
    let r = call(&app, "PATCH", "/api/queues/%2F/q", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.json["error"], "method_not_allowed");
    let r = call(&app, "GET", "/api/queues/other/q", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        r.json["reason"]
            .as_str()
            .unwrap_or("")
            .contains("vhost 'other'")
    );
    let r = call(&app, "PUT", "/api/queues/%2F/q", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "an empty body is {{}}");
    let r = send(&app, "PUT", "/api/queues/%2F/q2", Some(GUEST), None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let req = Request::builder()
        .method("PUT")
        .uri("/api/queues/%2F/q3")
        .header(header::AUTHORIZATION, GUEST)
        .body(Body::from("{not json"))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        "PUT",
        "/api/queues/%2F/q4",
        Some(json!({"durable": "yes"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["error"], "bad_request");
}

#[tokio::test]
async fn queue_lifecycle_with_publish_peek_and_purge() {
    let app = app().await;
    let r = call(
        &app,
        "PUT",
        "/api/queues/%2F/orders",
        Some(json!({"durable": true, "arguments": {"x-max-length": 10}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = call(
        &app,
        "PUT",
        "/api/queues/%2F/orders",
        Some(json!({"durable": true, "arguments": {"x-max-length": 10}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "equivalent re-declare");
    let r = call(
        &app,
        "PUT",
        "/api/queues/%2F/orders",
        Some(json!({"durable": false})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "inequivalent re-declare");
    assert!(
        r.json["reason"].as_str().unwrap_or("").contains("durable"),
        "{}",
        r.json
    );
    let r = call(&app, "PUT", "/api/queues/%2F/amq.mine", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    for body in ["first", "second"] {
        let r = call(&app, "POST", "/api/exchanges/%2F/amq.default/publish", Some(json!({
            "routing_key": "orders", "payload": body, "properties": {"delivery_mode": 2, "headers": {"n": 1}}
        }))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json, json!({"routed": true}));
    }
    let r = call(
        &app,
        "POST",
        "/api/exchanges/%2F/amq.default/publish",
        Some(json!({"routing_key": "nowhere", "payload": "x"})),
    )
    .await;
    assert_eq!(r.json, json!({"routed": false}));

    let q = call(&app, "GET", "/api/queues/%2F/orders", None).await.json;
    assert_eq!(q["messages_ready"], 2);
    assert_eq!(q["messages"], 2);
    assert_eq!(q["durable"], true);
    assert_eq!(q["arguments"], json!({"x-max-length": 10}));
    assert_eq!(q["message_stats"]["publish"], 2);

    for _ in 0..2 {
        let got = call(
            &app,
            "POST",
            "/api/queues/%2F/orders/get",
            Some(json!({"count": 5, "ackmode": "ack_requeue_true"})),
        )
        .await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text);
        let msgs = got.json.as_array().expect("array").clone();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0]["payload"], "first");
        assert_eq!(msgs[0]["payload_encoding"], "string");
        assert_eq!(msgs[0]["message_count"], 1);
        assert_eq!(msgs[0]["redelivered"], false, "peeking is not delivering");
        assert_eq!(msgs[0]["properties"]["headers"], json!({"n": 1}));
        assert_eq!(msgs[1]["payload"], "second");
    }
    let q = call(&app, "GET", "/api/queues/%2F/orders", None).await.json;
    assert_eq!(q["messages_ready"], 2, "peek left the messages");
    assert_eq!(q["message_stats"]["deliver_get"], 0);

    let got = call(
        &app,
        "POST",
        "/api/queues/%2F/orders/get",
        Some(json!({"count": 1, "ackmode": "ack_requeue_false"})),
    )
    .await;
    assert_eq!(got.json[0]["payload"], "first");
    let q = call(&app, "GET", "/api/queues/%2F/orders", None).await.json;
    assert_eq!(
        q["messages_ready"], 1,
        "ack_requeue_false takes the message"
    );
    let r = call(
        &app,
        "POST",
        "/api/queues/%2F/orders/get",
        Some(json!({"count": 1, "ackmode": "bogus"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = call(&app, "DELETE", "/api/queues/%2F/orders?if-empty=true", None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = call(&app, "DELETE", "/api/queues/%2F/orders/contents", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let q = call(&app, "GET", "/api/queues/%2F/orders", None).await.json;
    assert_eq!(q["messages_ready"], 0);
    let r = call(&app, "DELETE", "/api/queues/%2F/orders?if-empty=true", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&app, "GET", "/api/queues/%2F/orders", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&app, "DELETE", "/api/queues/%2F/orders", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        "POST",
        "/api/queues/%2F/orders/get",
        Some(json!({"ackmode": "ack_requeue_true"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn exchanges_and_bindings() {
    let app = app().await;
    let r = call(
        &app,
        "PUT",
        "/api/exchanges/%2F/events",
        Some(json!({"type": "nonsense"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(
        &app,
        "PUT",
        "/api/exchanges/%2F/amq.events",
        Some(json!({"type": "topic"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &app,
        "PUT",
        "/api/exchanges/%2F/events",
        Some(json!({"type": "topic", "durable": true})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = call(
        &app,
        "PUT",
        "/api/exchanges/%2F/events",
        Some(json!({"type": "fanout"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "inequivalent type");
    let r = call(&app, "DELETE", "/api/exchanges/%2F/amq.topic", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let xs = call(&app, "GET", "/api/exchanges", None).await.json;
    let names: Vec<&str> = xs
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert!(
        names.contains(&"") && names.contains(&"amq.topic") && names.contains(&"events"),
        "{names:?}"
    );
    let x = call(&app, "GET", "/api/exchanges/%2F/events", None)
        .await
        .json;
    assert_eq!(x["type"], "topic");

    call(&app, "PUT", "/api/queues/%2F/audit", None).await;
    let r = call(
        &app,
        "POST",
        "/api/bindings/%2F/e/events/q/audit",
        Some(json!({"routing_key": "order.*"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("order.%2A")
    );
    let r = call(
        &app,
        "POST",
        "/api/bindings/%2F/e/events/q/missing",
        Some(json!({"routing_key": "x"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&app, "POST", "/api/bindings/%2F/e/nope/q/audit", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = call(
        &app,
        "POST",
        "/api/exchanges/%2F/events/publish",
        Some(json!({"routing_key": "order.created", "payload": "o1"})),
    )
    .await;
    assert_eq!(
        r.json,
        json!({"routed": true}),
        "routed through the new binding"
    );
    let r = call(
        &app,
        "POST",
        "/api/exchanges/%2F/missing/publish",
        Some(json!({"routing_key": "k", "payload": "x"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let all = call(&app, "GET", "/api/bindings", None).await.json;
    let all = all.as_array().expect("array");
    assert!(
        all.iter().any(|b| b["source"] == ""
            && b["destination"] == "audit"
            && b["routing_key"] == "audit"),
        "default binding listed"
    );
    assert!(all.iter().any(|b| b["source"] == "events"
        && b["destination"] == "audit"
        && b["routing_key"] == "order.*"
        && b["properties_key"] == "order.*"));
    let between = call(&app, "GET", "/api/bindings/%2F/e/events/q/audit", None)
        .await
        .json;
    assert_eq!(between.as_array().map(Vec::len), Some(1));

    let r = call(
        &app,
        "DELETE",
        "/api/bindings/%2F/e/events/q/audit/order.%2A",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(
        &app,
        "DELETE",
        "/api/bindings/%2F/e/events/q/audit/order.%2A",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &app,
        "POST",
        "/api/exchanges/%2F/events/publish",
        Some(json!({"routing_key": "order.created", "payload": "o2"})),
    )
    .await;
    assert_eq!(r.json, json!({"routed": false}), "the binding is gone");

    // Exchange-to-exchange.
    call(
        &app,
        "PUT",
        "/api/exchanges/%2F/fan",
        Some(json!({"type": "fanout"})),
    )
    .await;
    let r = call(
        &app,
        "POST",
        "/api/bindings/%2F/e/events/e/fan",
        Some(json!({"routing_key": "#"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    call(&app, "POST", "/api/bindings/%2F/e/fan/q/audit", None).await;
    let r = call(
        &app,
        "POST",
        "/api/exchanges/%2F/events/publish",
        Some(json!({"routing_key": "a.b", "payload": "x"})),
    )
    .await;
    assert_eq!(r.json, json!({"routed": true}));
    let r = call(
        &app,
        "DELETE",
        "/api/exchanges/%2F/events?if-unused=true",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = call(&app, "DELETE", "/api/bindings/%2F/e/events/e/fan/%23", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(
        &app,
        "DELETE",
        "/api/exchanges/%2F/events?if-unused=true",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&app, "GET", "/api/exchanges/%2F/events", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&app, "DELETE", "/api/exchanges/%2F/events", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn definitions_round_trip_into_a_fresh_core() {
    let a = app().await;
    call(
        &a,
        "PUT",
        "/api/exchanges/%2F/events",
        Some(json!({"type": "topic", "arguments": {"alternate-exchange": "amq.fanout"}})),
    )
    .await;
    call(
        &a,
        "PUT",
        "/api/exchanges/%2F/fan",
        Some(json!({"type": "fanout", "durable": false, "auto_delete": true})),
    )
    .await;
    call(
        &a,
        "PUT",
        "/api/queues/%2F/audit",
        Some(json!({"arguments": {"x-message-ttl": 60000}})),
    )
    .await;
    call(
        &a,
        "PUT",
        "/api/queues/%2F/temp",
        Some(json!({"durable": false})),
    )
    .await;
    call(
        &a,
        "POST",
        "/api/bindings/%2F/e/events/q/audit",
        Some(json!({"routing_key": "order.#"})),
    )
    .await;
    call(
        &a,
        "POST",
        "/api/bindings/%2F/e/events/e/fan",
        Some(json!({"routing_key": "x", "arguments": {"k": "v"}})),
    )
    .await;
    call(&a, "POST", "/api/bindings/%2F/e/fan/q/temp", None).await;
    call(
        &a,
        "POST",
        "/api/bindings/%2F/e/amq.topic/q/audit",
        Some(json!({"routing_key": "sensors.#"})),
    )
    .await;
    let exported = call(&a, "GET", "/api/definitions", None).await.json;
    assert_eq!(exported["queues"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        exported["exchanges"].as_array().map(Vec::len),
        Some(2),
        "amq.* left out"
    );
    assert_eq!(exported["bindings"].as_array().map(Vec::len), Some(4));

    let b = app().await;
    let r = call(&b, "POST", "/api/definitions", Some(exported.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["skipped"], json!([]));
    let again = call(&b, "GET", "/api/definitions", None).await.json;
    assert_eq!(again, exported);

    // Objects in a vhost that neither exists nor is imported are refused; unknown sections
    // and users hashed with an algorithm this broker cannot verify are reported.
    let r = call(
        &b,
        "POST",
        "/api/definitions",
        Some(json!({"queues": [{"name": "q", "vhost": "other"}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let rabbit_user = json!({
        "name": "admin",
        "password_hash": "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": "administrator",
    });
    let r = call(
        &b,
        "POST",
        "/api/definitions",
        Some(json!({
            "users": [rabbit_user],
            "permissions": [{"user": "admin", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
            "policies": [{"name": "p"}],
            "queues": [],
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["skipped"], json!(["policies"]));
    assert_eq!(r.json["skipped_users"][0]["name"], "admin");
    assert_eq!(r.json["skipped_permissions"][0]["user"], "admin");
    assert_eq!(
        call(&b, "GET", "/api/users/admin", None).await.status,
        StatusCode::NOT_FOUND
    );
    // An import that would strip the only administrator is refused before anything is
    // applied: the vhost it also carries is not created.
    let hash = crate::core::access::hash_password("guest").expect("hash");
    let r = call(
        &b,
        "POST",
        "/api/definitions",
        Some(json!({
            "vhosts": [{"name": "never"}],
            "users": [{"name": "guest", "password_hash": hash, "hashing_algorithm": "argon2id", "tags": []}],
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("administrator"), "{}", r.text);
    assert_eq!(
        call(&b, "GET", "/api/vhosts/never", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&b, "GET", "/api/users/guest", None).await.json["tags"],
        json!(["administrator"])
    );
    // An inequivalent object names itself.
    let r = call(
        &b,
        "POST",
        "/api/definitions",
        Some(json!({"queues": [{"name": "audit", "durable": false}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.json["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("queue 'audit'"),
        "{}",
        r.json
    );
}

#[tokio::test]
async fn overview_and_metrics_count_queues_and_messages() {
    let app = app().await;
    call(&app, "PUT", "/api/queues/%2F/a", None).await;
    call(&app, "PUT", "/api/queues/%2F/b\"q", None).await;
    for _ in 0..3 {
        call(
            &app,
            "POST",
            "/api/exchanges/%2F/amq.default/publish",
            Some(json!({"routing_key": "a", "payload": "x"})),
        )
        .await;
    }
    let o = call(&app, "GET", "/api/overview", None).await.json;
    assert_eq!(o["object_totals"]["queues"], 2);
    assert_eq!(o["object_totals"]["exchanges"], 6);
    assert_eq!(o["queue_totals"]["messages_ready"], 3);
    assert_eq!(o["message_stats"]["publish"], 3);
    assert_eq!(o["product_name"], "broker");
    let m = send(&app, "GET", "/metrics", None, None).await;
    assert_eq!(
        m.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = m.text;
    assert!(text.contains("broker_queues 2\n"), "{text}");
    assert!(
        text.contains("broker_queue_messages_ready{vhost=\"/\",queue=\"a\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("broker_queue_messages_published_total{vhost=\"/\",queue=\"a\"} 3\n"),
        "{text}"
    );
    assert!(text.contains("queue=\"b\\\"q\""), "label escaped: {text}");
    assert!(
        text.contains("# TYPE broker_queue_messages_acked_total counter"),
        "{text}"
    );
    assert!(
        text.contains("broker_queued_message_bytes ")
            && !text.contains("broker_queued_message_bytes 0\n"),
        "{text}"
    );
}

/// Users for the MQTT-object tests: a monitoring user that may read but not delete.
const MONITOR: &str = "Basic bW9uOm1vbg=="; // mon:mon

/// A router over a core with an MQTT front end (sessions, retained messages), plus the state
/// (to drive the rate sampler) and the MQTT state (to make retained messages).
async fn mqtt_app() -> (Router, MgmtState, Arc<crate::mqtt::Shared>) {
    let core = Core::new(Arc::new(storage::MemoryStorage::new()), u64::MAX);
    core.recover().expect("recover an empty store");
    core.ensure_default_user("guest", "guest")
        .await
        .expect("default user");
    let mqtt = Arc::new(
        crate::mqtt::Shared::new(core.clone(), 1024, crate::core::DEFAULT_VHOST.into())
            .expect("mqtt state"),
    );
    let state = MgmtState::new(core, Vec::new()).with_mqtt(mqtt.clone());
    let app = router(state.clone());
    let r = call(
        &app,
        "PUT",
        "/api/users/mon",
        Some(json!({"password": "mon", "tags": "monitoring"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (app, state, mqtt)
}

/// Makes the session of `client_id` as an MQTT connection would: its queue, and one
/// `amq.topic` binding per subscription with the options in the binding arguments.
async fn make_session(
    core: &Arc<Core>,
    client_id: &str,
    arguments: protocol_amqp::FieldTable,
    filters: &[(&str, u8)],
) {
    use protocol_amqp::{FieldTable, FieldValue, ShortStr};
    let queue = crate::mqtt::sessions::session_queue(client_id);
    core.declare_queue(
        "/",
        0,
        crate::core::ops::QueueDeclare {
            name: queue.clone(),
            durable: true,
            arguments,
            ..Default::default()
        },
    )
    .await
    .expect("session queue");
    for (filter, qos) in filters {
        let mut args = FieldTable::new();
        args.insert(
            ShortStr::from_static("x-mqtt-filter"),
            FieldValue::LongStr(bytes::Bytes::from(filter.to_string())),
        );
        args.insert(ShortStr::from_static("x-mqtt-qos"), FieldValue::U8(*qos));
        args.insert(
            ShortStr::from_static("x-mqtt-no-local"),
            FieldValue::Bool(false),
        );
        args.insert(
            ShortStr::from_static("x-mqtt-retain-as-published"),
            FieldValue::Bool(true),
        );
        let binding = crate::model::exchange::Binding {
            destination: crate::model::exchange::Destination::Queue(queue.clone()),
            routing_key: crate::mqtt::topic_map::filter_to_binding_key(filter),
            arguments: args,
        };
        core.bind("/", 0, "amq.topic", binding)
            .await
            .expect("subscription binding");
    }
}

#[tokio::test]
async fn mqtt_sessions_list_show_and_delete() {
    let (app, state, _mqtt) = mqtt_app().await;
    let core = state.core.clone();
    make_session(
        &core,
        "c1",
        protocol_amqp::FieldTable::new(),
        &[("a/+", 1), ("b/#", 0)],
    )
    .await;
    let mut v5 = protocol_amqp::FieldTable::new();
    v5.insert(
        protocol_amqp::ShortStr::from_static(crate::mqtt::SESSION_EXPIRY_ARG),
        protocol_amqp::FieldValue::U32(300),
    );
    make_session(&core, "c2", v5, &[]).await;
    let r = call(
        &app,
        "POST",
        "/api/exchanges/%2F/amq.topic/publish",
        Some(json!({"routing_key": "a.x", "payload": "m"})),
    )
    .await;
    assert_eq!(r.json["routed"], true, "{}", r.text);

    let r = send(&app, "GET", "/api/mqtt/sessions", Some(MONITOR), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = r.json.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{}", r.text);
    let c1 = &list[0];
    assert_eq!(c1["client_id"], "c1");
    assert_eq!(c1["vhost"], "/");
    assert_eq!(c1["connected"], false);
    assert_eq!(c1["connection"], Value::Null);
    assert_eq!(c1["messages"], 1);
    // A disconnected session without a stored expiry: 3.1.1 or 5.0 "never expire".
    assert_eq!(c1["protocol"], Value::Null);
    assert_eq!(
        c1["subscriptions"],
        json!([
            {"filter": "a/+", "qos": 1, "no_local": false, "retain_as_published": true, "subscription_id": null},
            {"filter": "b/#", "qos": 0, "no_local": false, "retain_as_published": true, "subscription_id": null},
        ])
    );
    let c2 = &list[1];
    assert_eq!(c2["protocol"], "5.0");
    assert_eq!(c2["expiry_interval"], 300);
    assert_eq!(c2["clean_session"], Value::Null);

    let r = call(&app, "GET", "/api/mqtt/sessions/%2F/c1", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["client_id"], "c1");
    let r = call(&app, "GET", "/api/mqtt/sessions/%2F/nobody", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["error"], "not_found");
    let r = call(&app, "GET", "/api/mqtt/sessions/nohost/c1", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // 401 without credentials, 403 for a monitoring user's DELETE.
    let r = send(&app, "GET", "/api/mqtt/sessions", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(
        &app,
        "DELETE",
        "/api/mqtt/sessions/%2F/c1",
        Some(MONITOR),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = call(&app, "DELETE", "/api/mqtt/sessions/%2F/c1", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(
        !core
            .topology("/")
            .queues
            .contains_key("mqtt-subscription-c1")
    );
    let r = call(&app, "DELETE", "/api/mqtt/sessions/%2F/c1", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&app, "GET", "/api/mqtt/sessions", None).await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn mqtt_retained_messages_list_and_clear() {
    let (app, _state, mqtt) = mqtt_app().await;
    let retained = |key: &str, body: &'static [u8]| {
        let mut headers = protocol_amqp::FieldTable::new();
        headers.insert(
            protocol_amqp::ShortStr::from_static("x-mqtt-publish-qos"),
            protocol_amqp::FieldValue::U8(1),
        );
        Arc::new(crate::model::message::Message {
            exchange: protocol_amqp::ShortStr::from_static("amq.topic"),
            routing_key: protocol_amqp::ShortStr::new(key).expect("key"),
            properties: protocol_amqp::BasicProperties {
                headers: Some(headers),
                delivery_mode: Some(2),
                ..Default::default()
            },
            body: bytes::Bytes::from_static(body),
            publisher: None,
            mqtt_form: Default::default(),
        })
    };
    mqtt.retained
        .set("/", "home/temp", Some(retained("home.temp", b"21.5")))
        .expect("retain");
    mqtt.retained
        .set("/", "bin", Some(retained("bin", b"\xff\x00")))
        .expect("retain");

    let r = send(&app, "GET", "/api/mqtt/retained", Some(MONITOR), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = r.json.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{}", r.text);
    assert_eq!(list[0]["topic"], "bin");
    assert_eq!(list[0]["payload_encoding"], "base64");
    assert_eq!(list[0]["payload"], "/wA=");
    assert_eq!(list[1]["topic"], "home/temp");
    assert_eq!(list[1]["vhost"], "/");
    assert_eq!(list[1]["qos"], 1);
    assert_eq!(list[1]["payload_bytes"], 4);
    assert_eq!(list[1]["payload"], "21.5");
    assert_eq!(list[1]["payload_encoding"], "string");
    assert!(list[1]["stored_at"].as_u64().is_some_and(|t| t > 0));
    let r = call(&app, "GET", "/api/mqtt/retained?truncate=2", None).await;
    assert_eq!(r.json[1]["payload"], "21");
    assert_eq!(r.json[1]["payload_bytes"], 4);
    let r = call(&app, "GET", "/api/mqtt/retained/%2F", None).await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(2));
    let r = call(&app, "GET", "/api/mqtt/retained/nohost", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = send(&app, "GET", "/api/mqtt/retained", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let uri = "/api/mqtt/retained/%2F/home%2Ftemp";
    let r = send(&app, "DELETE", uri, Some(MONITOR), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&app, "DELETE", uri, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = call(&app, "DELETE", uri, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["error"], "not_found");
    // The topic's slashes may also be left as they are.
    mqtt.retained
        .set("/", "a/b", Some(retained("a.b", b"x")))
        .expect("retain");
    let r = call(&app, "DELETE", "/api/mqtt/retained/%2F/a/b", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = call(&app, "GET", "/api/mqtt/retained", None).await;
    assert_eq!(r.json.as_array().map(Vec::len), Some(1), "{}", r.text);
    assert!(!mqtt.retained.contains("/", "home/temp"));

    let m = send(&app, "GET", "/metrics", None, None).await.text;
    assert!(m.contains("broker_mqtt_retained_messages 1\n"), "{m}");
    assert!(m.contains("broker_mqtt_sessions 0\n"), "{m}");
    assert!(m.contains("broker_mqtt_sessions_connected 0\n"), "{m}");
}

#[tokio::test]
async fn message_rates_come_from_the_sampler() {
    let (app, state, _mqtt) = mqtt_app().await;
    call(&app, "PUT", "/api/queues/%2F/r", None).await;
    state.rates.sample(&state.core);
    for _ in 0..5 {
        call(
            &app,
            "POST",
            "/api/exchanges/%2F/amq.default/publish",
            Some(json!({"routing_key": "r", "payload": "x"})),
        )
        .await;
    }
    // Before the next sample the rates still say nothing moved.
    let o = call(&app, "GET", "/api/overview", None).await.json;
    assert_eq!(o["message_stats"]["publish"], 5);
    assert_eq!(o["message_stats"]["publish_details"]["rate"], 0.0);
    state.rates.sample(&state.core);
    let o = call(&app, "GET", "/api/overview", None).await.json;
    let rate = o["message_stats"]["publish_details"]["rate"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(rate > 0.0, "{o}");
    assert!(o["message_stats"]["deliver_get_details"]["rate"].is_number());
    assert!(o["message_stats"]["ack_details"]["rate"].is_number());
    let q = call(&app, "GET", "/api/queues/%2F/r", None).await.json;
    assert_eq!(q["message_stats"]["publish"], 5);
    assert!(
        q["message_stats"]["publish_details"]["rate"]
            .as_f64()
            .is_some_and(|r| r > 0.0),
        "{q}"
    );
}

/// A monitoring user for the vhost tests (mon:mon).
const VHOST_MONITOR: &str = "Basic bW9uOm1vbg==";

#[tokio::test]
async fn vhosts_are_created_listed_used_and_deleted() {
    let app = app().await;
    // 401 without credentials, 404 for a missing vhost.
    let r = send(&app, "GET", "/api/vhosts", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&app, "PUT", "/api/vhosts/a", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&app, "GET", "/api/vhosts/a", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, "DELETE", "/api/vhosts/a", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, "GET", "/api/queues/a", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, "PUT", "/api/queues/a/q", None).await.status,
        StatusCode::NOT_FOUND
    );

    // 201 then 204; a monitoring user may read but not create or delete (403).
    let r = call(
        &app,
        "PUT",
        "/api/vhosts/a",
        Some(json!({"description": "tenant a", "tags": "prod,eu"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = call(&app, "PUT", "/api/vhosts/a", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(
        &app,
        "PUT",
        "/api/users/mon",
        Some(json!({"password": "mon", "tags": "monitoring"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = send(&app, "PUT", "/api/vhosts/b", Some(VHOST_MONITOR), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, "DELETE", "/api/vhosts/a", Some(VHOST_MONITOR), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, "GET", "/api/vhosts/a", Some(VHOST_MONITOR), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["description"], "tenant a");
    assert_eq!(r.json["tags"], json!(["prod", "eu"]));
    let names: Vec<Value> = call(&app, "GET", "/api/vhosts", None)
        .await
        .json
        .as_array()
        .map(|a| a.iter().map(|v| v["name"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec![json!("/"), json!("a")]);

    // Same queue name in two vhosts: two queues, each listed with its vhost.
    for vhost in ["%2F", "a"] {
        let r = call(&app, "PUT", &format!("/api/queues/{vhost}/q"), None).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = call(
        &app,
        "POST",
        "/api/exchanges/a/amq.default/publish",
        Some(json!({"routing_key": "q", "payload": "in a"})),
    )
    .await;
    assert_eq!(r.json["routed"], true);
    let queues = call(&app, "GET", "/api/queues", None).await.json;
    let listed: Vec<(Value, Value)> = queues
        .as_array()
        .map(|a| {
            a.iter()
                .map(|q| (q["vhost"].clone(), q["messages"].clone()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(listed, vec![(json!("/"), json!(0)), (json!("a"), json!(1))]);
    let in_a = call(&app, "GET", "/api/exchanges/a", None).await.json;
    assert!(
        in_a.as_array()
            .is_some_and(|xs| xs.iter().all(|x| x["vhost"] == "a") && xs.len() == 6),
        "{in_a}"
    );
    let r = call(&app, "GET", "/api/queues/a/missing", None).await;
    assert_eq!(r.json["reason"], "no queue 'missing' in vhost 'a'");
    let metrics = send(&app, "GET", "/metrics", None, None).await.text;
    assert!(
        metrics.contains("broker_queue_messages_ready{vhost=\"a\",queue=\"q\"} 1"),
        "{metrics}"
    );

    // Deleting the vhost deletes its queues and permissions.
    let r = call(
        &app,
        "PUT",
        "/api/permissions/a/guest",
        Some(json!({"configure": ".*", "write": ".*", "read": ".*"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let perms = call(&app, "GET", "/api/vhosts/a/permissions", None)
        .await
        .json;
    assert_eq!(perms.as_array().map(Vec::len), Some(1), "{perms}");
    assert_eq!(perms[0]["user"], "guest");
    let conns = call(&app, "GET", "/api/vhosts/a/connections", None).await;
    assert_eq!(conns.json, json!([]));
    assert_eq!(
        call(&app, "GET", "/api/vhosts/nope/permissions", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = call(&app, "DELETE", "/api/vhosts/a", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&app, "GET", "/api/vhosts/a", None).await.status,
        StatusCode::NOT_FOUND
    );
    let queues = call(&app, "GET", "/api/queues", None).await.json;
    assert_eq!(queues.as_array().map(Vec::len), Some(1), "{queues}");
    let perms = call(&app, "GET", "/api/permissions", None).await.json;
    assert!(
        perms
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["vhost"] == "/")),
        "{perms}"
    );
}
