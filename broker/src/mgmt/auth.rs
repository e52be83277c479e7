//! HTTP basic authentication against the broker's users.
//!
//! Today the broker has one user, `guest`/`guest`, tagged `administrator` and accepted from
//! loopback only (as for AMQP and MQTT, and as RabbitMQ's `loopback_users` default). Users
//! with the `monitoring` tag may read (GET) but not change anything; the check is written
//! against tags so that configurable users slot in without touching the handlers.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Extension, Request};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::ApiError;

/// An authenticated API user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name.
    pub name: String,
    /// Tags (`administrator`, `monitoring`).
    pub tags: Vec<&'static str>,
}

impl User {
    /// Whether the user may make changes.
    pub fn is_administrator(&self) -> bool {
        self.tags.contains(&"administrator")
    }

    /// Whether the user may read.
    pub fn may_read(&self) -> bool {
        self.is_administrator() || self.tags.contains(&"monitoring")
    }
}

/// `user:password` from an `Authorization: Basic ...` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Checks credentials. `peer` is None for requests that did not come over a socket (the
/// router called in-process, as tests do), which count as local.
pub fn authenticate(headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<User, ApiError> {
    let Some((user, pass)) = basic_credentials(headers) else {
        return Err(ApiError::unauthorized(
            "authentication required (HTTP basic auth)",
        ));
    };
    if user != "guest" || pass != "guest" {
        tracing::warn!(?peer, %user, "management API login refused");
        return Err(ApiError::unauthorized("login failed"));
    }
    if peer.is_some_and(|p| !p.ip().is_loopback()) {
        tracing::warn!(?peer, %user, "user guest may only use the API from loopback");
        return Err(ApiError::unauthorized(
            "user 'guest' can only log in via localhost",
        ));
    }
    Ok(User {
        name: user,
        tags: vec!["administrator"],
    })
}

/// Middleware: authenticates the request and checks that the user's tags allow its method.
pub async fn require_user(mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let user = match authenticate(req.headers(), peer) {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    let reads = req.method() == Method::GET || req.method() == Method::HEAD;
    let allowed = if reads {
        user.may_read()
    } else {
        user.is_administrator()
    };
    if !allowed {
        return ApiError::forbidden(format!(
            "user '{}' may not {} {}",
            user.name,
            req.method(),
            req.uri().path()
        ))
        .into_response();
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}

/// `GET /api/whoami`: who the credentials belong to (RabbitMQ has it; scripts use it to
/// check credentials).
pub async fn whoami(Extension(user): Extension<User>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": user.name, "tags": user.tags }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(auth).expect("header"),
        );
        h
    }

    #[test]
    fn guest_from_loopback_only() {
        // guest:guest
        let h = headers("Basic Z3Vlc3Q6Z3Vlc3Q=");
        let local = SocketAddr::from(([127, 0, 0, 1], 40000));
        let remote = SocketAddr::from(([192, 0, 2, 1], 40000));
        let user = authenticate(&h, Some(local)).expect("guest from loopback");
        assert!(user.is_administrator() && user.may_read());
        assert_eq!(
            authenticate(&h, Some(remote)).map_err(|e| e.status.as_u16()),
            Err(401)
        );
    }

    #[test]
    fn missing_malformed_and_wrong_credentials_are_401() {
        let none = HeaderMap::new();
        assert!(authenticate(&none, None).is_err());
        // guest:wrong
        assert!(authenticate(&headers("Basic Z3Vlc3Q6d3Jvbmc="), None).is_err());
        assert!(authenticate(&headers("Bearer abc"), None).is_err());
        assert!(authenticate(&headers("Basic !!!"), None).is_err());
    }

    #[test]
    fn monitoring_may_read_only() {
        let monitor = User {
            name: "m".into(),
            tags: vec!["monitoring"],
        };
        assert!(monitor.may_read() && !monitor.is_administrator());
        let nobody = User {
            name: "n".into(),
            tags: vec![],
        };
        assert!(!nobody.may_read());
    }
}
