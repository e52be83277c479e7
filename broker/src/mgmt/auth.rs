//! HTTP basic authentication against the broker's users.
//!
//! Users come from the core's user store (passwords checked against their argon2 hashes);
//! `guest` is accepted from loopback only (as for AMQP and MQTT, and as RabbitMQ's
//! `loopback_users` default). Users tagged `administrator` may change things; `monitoring`
//! users may read (GET) everything; other users get 403.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Extension, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::{ApiError, MgmtState};
use crate::core::access::{AccessControl, LoginRefused};

/// An authenticated API user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User name.
    pub name: String,
    /// Tags (`administrator`, `monitoring`, ...).
    pub tags: Vec<String>,
}

impl User {
    /// Whether the user may make changes.
    pub fn is_administrator(&self) -> bool {
        self.tags.iter().any(|t| t == "administrator")
    }

    /// Whether the user may read.
    pub fn may_read(&self) -> bool {
        self.is_administrator() || self.tags.iter().any(|t| t == "monitoring")
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

/// Checks credentials against `users`. `peer` is None for requests that did not come over a
/// socket (the router called in-process, as tests do), which count as local.
pub async fn authenticate(
    users: &AccessControl,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<User, ApiError> {
    let Some((user, pass)) = basic_credentials(headers) else {
        return Err(ApiError::unauthorized(
            "authentication required (HTTP basic auth)",
        ));
    };
    let ip = peer.map_or(std::net::IpAddr::from([127, 0, 0, 1]), |p| p.ip());
    match users.authenticate(&user, &pass, ip).await {
        Ok(u) => Ok(User {
            name: u.name,
            tags: u.tags,
        }),
        Err(LoginRefused::BadCredentials) => {
            tracing::warn!(?peer, %user, "management API login refused");
            Err(ApiError::unauthorized("login failed"))
        }
        Err(LoginRefused::LoopbackOnly) => {
            tracing::warn!(?peer, %user, "user may only use the API from loopback");
            Err(ApiError::unauthorized(format!(
                "user '{user}' can only log in via localhost"
            )))
        }
    }
}

/// Middleware: authenticates the request and checks that the user's tags allow its method.
pub async fn require_user(
    State(state): State<MgmtState>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let user = match authenticate(&state.core.access, req.headers(), peer).await {
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
    use crate::core::access::{User as Stored, hash_password};
    use axum::http::HeaderValue;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(auth).expect("header"),
        );
        h
    }

    fn store() -> AccessControl {
        let users = AccessControl::default();
        users
            .put_user(Stored {
                name: "guest".into(),
                password_hash: hash_password("guest").expect("hash"),
                tags: vec!["administrator".into()],
            })
            .expect("put");
        users
    }

    #[tokio::test]
    async fn guest_from_loopback_only() {
        let users = store();
        // guest:guest
        let h = headers("Basic Z3Vlc3Q6Z3Vlc3Q=");
        let local = SocketAddr::from(([127, 0, 0, 1], 40000));
        let remote = SocketAddr::from(([192, 0, 2, 1], 40000));
        let user = authenticate(&users, &h, Some(local))
            .await
            .expect("guest from loopback");
        assert!(user.is_administrator() && user.may_read());
        assert_eq!(
            authenticate(&users, &h, Some(remote))
                .await
                .map_err(|e| e.status.as_u16()),
            Err(401)
        );
    }

    #[tokio::test]
    async fn missing_malformed_and_wrong_credentials_are_401() {
        let users = store();
        let none = HeaderMap::new();
        assert!(authenticate(&users, &none, None).await.is_err());
        // guest:wrong
        assert!(
            authenticate(&users, &headers("Basic Z3Vlc3Q6d3Jvbmc="), None)
                .await
                .is_err()
        );
        assert!(
            authenticate(&users, &headers("Bearer abc"), None)
                .await
                .is_err()
        );
        assert!(
            authenticate(&users, &headers("Basic !!!"), None)
                .await
                .is_err()
        );
    }

    #[test]
    fn monitoring_may_read_only() {
        let monitor = User {
            name: "m".into(),
            tags: vec!["monitoring".into()],
        };
        assert!(monitor.may_read() && !monitor.is_administrator());
        let nobody = User {
            name: "n".into(),
            tags: vec![],
        };
        assert!(!nobody.may_read());
    }
}
