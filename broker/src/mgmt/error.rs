//! API errors: a JSON body `{"error": ..., "reason": ...}` (RabbitMQ's shape) with the HTTP
//! status that says what went wrong, so scripts can tell "not there" from "not allowed" from
//! "you asked for something inconsistent".

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol_amqp::reply_code;

use crate::error::AmqpError;

/// An API error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {error}: {reason}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short machine-readable kind (`not_found`, `bad_request`...).
    pub error: &'static str,
    /// Human-readable explanation.
    pub reason: String,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            reason: reason.into(),
        }
    }

    /// 404: the object does not exist.
    pub fn not_found(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", reason)
    }

    /// 400: the request is malformed or inconsistent with what exists.
    pub fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", reason)
    }

    /// 401: no or wrong credentials.
    pub fn unauthorized(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "not_authorised", reason)
    }

    /// 403: the user may not do this.
    pub fn forbidden(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "access_refused", reason)
    }

    /// 409: the object is in a state that forbids the operation (in use, not empty, locked).
    pub fn conflict(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", reason)
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this resource",
        )
    }

    /// 500.
    pub fn internal(reason: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", reason)
    }

    /// A core error where a refused precondition means "in use / not empty" (deletes):
    /// 409 rather than 400.
    pub fn from_delete(e: AmqpError) -> ApiError {
        if e.code() == reply_code::PRECONDITION_FAILED {
            ApiError::conflict(reason_of(&e))
        } else {
            ApiError::from(e)
        }
    }
}

/// The explanation of an AMQP error, without its `NAME - ` prefix.
fn reason_of(e: &AmqpError) -> String {
    let (AmqpError::Channel { text, .. } | AmqpError::Connection { text, .. }) = e;
    match text.split_once(" - ") {
        Some((_, rest)) => rest.to_string(),
        None => text.clone(),
    }
}

impl From<AmqpError> for ApiError {
    /// Reply codes of core operations → HTTP: 404 → 404, 403 → 403, 405 (locked by another
    /// connection) → 409, 406 (inequivalent declaration, bad arguments) → 400, 503 / 530
    /// (invalid command, e.g. unknown exchange type) → 400, anything else → 500.
    fn from(e: AmqpError) -> ApiError {
        let reason = reason_of(&e);
        match e.code() {
            reply_code::NOT_FOUND => ApiError::not_found(reason),
            reply_code::ACCESS_REFUSED => ApiError::forbidden(reason),
            reply_code::RESOURCE_LOCKED => ApiError::conflict(reason),
            reply_code::PRECONDITION_FAILED
            | reply_code::COMMAND_INVALID
            | reply_code::NOT_ALLOWED
            | reply_code::SYNTAX_ERROR => ApiError::bad_request(reason),
            _ => ApiError::internal(reason),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "reason": self.reason });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"broker\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amqp_codes_map_to_http_statuses() {
        let cases = [
            (AmqpError::not_found("no queue 'q'"), StatusCode::NOT_FOUND),
            (AmqpError::access_refused("amq.*"), StatusCode::FORBIDDEN),
            (
                AmqpError::resource_locked("exclusive"),
                StatusCode::CONFLICT,
            ),
            (
                AmqpError::precondition_failed("inequivalent arg"),
                StatusCode::BAD_REQUEST,
            ),
            (
                AmqpError::connection(reply_code::COMMAND_INVALID, "COMMAND_INVALID", "type"),
                StatusCode::BAD_REQUEST,
            ),
            (
                AmqpError::internal("disk"),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e.clone()).status, status, "{e}");
        }
        let e = ApiError::from(AmqpError::not_found("no queue 'q' in vhost '/'"));
        assert_eq!(e.reason, "no queue 'q' in vhost '/'");
        assert_eq!(
            ApiError::from_delete(AmqpError::precondition_failed("in use")).status,
            StatusCode::CONFLICT
        );
    }
}
