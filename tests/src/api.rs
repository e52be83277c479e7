//! A small client of the broker's management HTTP API for end-to-end tests: requests with
//! HTTP basic auth over the loopback, answers as (status, JSON) so tests can assert both.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{TestBroker, within};

/// The management API of one test broker, as one user.
pub struct Api {
    http: reqwest::Client,
    base: String,
    user: String,
    pass: String,
}

impl Api {
    /// As `guest` (allowed: tests talk over the loopback).
    pub fn new(broker: &TestBroker) -> Api {
        Api::as_user(broker, "guest", "guest")
    }

    /// As `user` with `pass`.
    pub fn as_user(broker: &TestBroker, user: &str, pass: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: broker.http_url(),
            user: user.into(),
            pass: pass.into(),
        }
    }

    /// One request; the body is `Value::Null` when the answer is empty or not JSON.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.pass));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = within("an HTTP answer", req.send())
            .await
            .expect("HTTP request");
        let status = resp.status();
        let text = within("the HTTP body", resp.text()).await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET path`, which must answer 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.request(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// `GET path`, which must answer 200, as text (`/metrics`).
    pub async fn text(&self, path: &str) -> String {
        let req = self
            .http
            .get(format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.pass));
        let resp = within("an HTTP answer", req.send())
            .await
            .expect("HTTP request");
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        within("the HTTP body", resp.text()).await.expect("body")
    }

    /// `PUT path` with a JSON body; the status.
    pub async fn put(&self, path: &str, body: Value) -> StatusCode {
        self.request(Method::PUT, path, Some(body)).await.0
    }

    /// `PUT path` with a JSON body, which must answer 201 Created.
    pub async fn create(&self, path: &str, body: Value) {
        let (status, answer) = self.request(Method::PUT, path, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "PUT {path}: {answer}");
    }

    /// `DELETE path`; the status.
    pub async fn delete(&self, path: &str) -> StatusCode {
        self.request(Method::DELETE, path, None).await.0
    }

    /// `DELETE path` with RabbitMQ's `X-Reason` header (closing a connection tells the
    /// client why); the status.
    pub async fn delete_with_reason(&self, path: &str, reason: &str) -> StatusCode {
        let req = self
            .http
            .delete(format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.pass))
            .header("X-Reason", reason);
        within("an HTTP answer", req.send())
            .await
            .expect("HTTP request")
            .status()
    }
}
