//! AMQP 0-9-1 reply codes, as sent in connection.close, channel.close and
//! basic.return.

/// Normal close.
pub const REPLY_SUCCESS: u16 = 200;
/// Content too large (spec only; RabbitMQ does not raise it).
pub const CONTENT_TOO_LARGE: u16 = 311;
/// Mandatory message could not be routed (in basic.return).
pub const NO_ROUTE: u16 = 312;
/// Immediate message had no consumer (in basic.return).
pub const NO_CONSUMERS: u16 = 313;
/// The broker or an operator closed the connection.
pub const CONNECTION_FORCED: u16 = 320;
/// Bad virtual host path.
pub const INVALID_PATH: u16 = 402;
/// Permission denied or reserved name.
pub const ACCESS_REFUSED: u16 = 403;
/// Unknown exchange or queue.
pub const NOT_FOUND: u16 = 404;
/// Exclusive queue owned by another connection.
pub const RESOURCE_LOCKED: u16 = 405;
/// Inequivalent redeclare, unknown delivery tag, and similar.
pub const PRECONDITION_FAILED: u16 = 406;
/// Malformed frame.
pub const FRAME_ERROR: u16 = 501;
/// Unparsable method fields.
pub const SYNTAX_ERROR: u16 = 502;
/// Unknown or invalid method.
pub const COMMAND_INVALID: u16 = 503;
/// Channel used in the wrong state.
pub const CHANNEL_ERROR: u16 = 504;
/// Frame out of place.
pub const UNEXPECTED_FRAME: u16 = 505;
/// Server out of resources.
pub const RESOURCE_ERROR: u16 = 506;
/// Operation not allowed (vhost, channel_max, consumer tag reuse).
pub const NOT_ALLOWED: u16 = 530;
/// Feature not implemented (immediate, prefetch-size, flow off).
pub const NOT_IMPLEMENTED: u16 = 540;
/// Internal broker failure.
pub const INTERNAL_ERROR: u16 = 541;

/// The constant's name as used at the start of a reply text
/// (`"NOT_FOUND - no queue 'q'"`), or `"UNKNOWN"`.
pub fn name(code: u16) -> &'static str {
    match code {
        REPLY_SUCCESS => "REPLY_SUCCESS",
        CONTENT_TOO_LARGE => "CONTENT_TOO_LARGE",
        NO_ROUTE => "NO_ROUTE",
        NO_CONSUMERS => "NO_CONSUMERS",
        CONNECTION_FORCED => "CONNECTION_FORCED",
        INVALID_PATH => "INVALID_PATH",
        ACCESS_REFUSED => "ACCESS_REFUSED",
        NOT_FOUND => "NOT_FOUND",
        RESOURCE_LOCKED => "RESOURCE_LOCKED",
        PRECONDITION_FAILED => "PRECONDITION_FAILED",
        FRAME_ERROR => "FRAME_ERROR",
        SYNTAX_ERROR => "SYNTAX_ERROR",
        COMMAND_INVALID => "COMMAND_INVALID",
        CHANNEL_ERROR => "CHANNEL_ERROR",
        UNEXPECTED_FRAME => "UNEXPECTED_FRAME",
        RESOURCE_ERROR => "RESOURCE_ERROR",
        NOT_ALLOWED => "NOT_ALLOWED",
        NOT_IMPLEMENTED => "NOT_IMPLEMENTED",
        INTERNAL_ERROR => "INTERNAL_ERROR",
        _ => "UNKNOWN",
    }
}

/// Whether the code is a hard error that closes the whole connection
/// (5xx and 320/402), as opposed to a channel error.
pub fn is_hard_error(code: u16) -> bool {
    matches!(code, CONNECTION_FORCED | INVALID_PATH) || (500..600).contains(&code)
}
