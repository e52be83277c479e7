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

    // Other vhosts are refused; unknown sections are reported.
    let r = call(
        &b,
        "POST",
        "/api/definitions",
        Some(json!({"queues": [{"name": "q", "vhost": "other"}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(
        &b,
        "POST",
        "/api/definitions",
        Some(json!({"users": [{"name": "admin"}], "queues": []})),
    )
    .await;
    assert_eq!(r.json["skipped"], json!(["users"]));
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
