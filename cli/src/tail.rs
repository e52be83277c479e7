//! `tail`: follow the messages published to an exchange, live.
//!
//! The management API is request/response, and polling a queue with `get` would miss
//! messages or take them from their consumers. So `tail` speaks AMQP, like a RabbitMQ
//! consumer would: a server-named, exclusive, auto-delete queue bound to the exchange,
//! consumed without acknowledgements. The queue lives as long as the connection, so
//! nothing is left behind whichever way brokerctl ends.

use base64::Engine as _;
use clap::{Args, ValueEnum};
use futures_util::StreamExt as _;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties, ErrorKind};
use serde_json::{Map, Value, json};

use crate::client::{Failure, TlsOptions, segment};
use crate::output::{Format, outln};

/// `tail` arguments.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Exchange to follow ("amq.topic" sees MQTT publishes too).
    exchange: String,
    /// Binding key of the temporary queue: a pattern for topic exchanges ("#" is
    /// everything), the exact key for direct ones, ignored by fanout exchanges.
    #[arg(long, default_value = "#")]
    routing_key: String,
    /// Stop after this many messages (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// How bodies are printed: UTF-8 text when valid and base64 otherwise (auto), or
    /// always as lossy text, hex or base64.
    #[arg(long, value_enum, default_value = "auto")]
    encoding: Encoding,
    /// AMQP URL of the broker (amqps:// for TLS, trusting --cacert); user and password
    /// default to --user/--password [default: amqp://localhost:5672/ and the --vhost,
    /// percent-encoded: amqp://localhost:5672/%2F without one].
    #[arg(long, env = "BROKERCTL_AMQP_URL", value_name = "URL")]
    amqp_url: Option<String>,
}

/// Who `tail` connects as, and where: the global options.
pub struct Login<'a> {
    /// `--user`.
    pub user: &'a str,
    /// `--password`.
    pub password: &'a str,
    /// `--vhost`, used when `--amqp-url` is absent.
    pub vhost: Option<&'a str>,
}

/// How a message body is shown.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Encoding {
    /// UTF-8 text when the body is valid UTF-8, base64 otherwise.
    Auto,
    /// Text (invalid UTF-8 replaced by U+FFFD).
    String,
    /// Lowercase hex.
    Hex,
    /// Standard base64.
    Base64,
}

/// Runs `tail` until `--count` messages have been printed or Ctrl-C.
pub fn run(
    args: TailArgs,
    login: &Login<'_>,
    tls: &TlsOptions,
    format: Format,
) -> Result<(), Failure> {
    if tls.insecure {
        return Err(Failure::Usage(
            "tail does not support --insecure; give the broker's CA with --cacert".to_string(),
        ));
    }
    let cacert = match tls.cacert_pem()? {
        Some(pem) => Some(
            String::from_utf8(pem)
                .map_err(|_| Failure::Usage("--cacert: not a PEM file (not UTF-8)".to_string()))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(follow(args, login, cacert, format))
}

async fn follow(
    args: TailArgs,
    login: &Login<'_>,
    cacert: Option<String>,
    format: Format,
) -> Result<(), Failure> {
    let user = login.user;
    let url = args
        .amqp_url
        .clone()
        .unwrap_or_else(|| default_url(login.vhost));
    let url = with_credentials(&url, user, login.password);
    let shown = without_password(&url);
    let properties = ConnectionProperties::default().with_connection_name("brokerctl tail".into());
    let tls = lapin::tcp::OwnedTLSConfig {
        cert_chain: cacert,
        ..Default::default()
    };
    let runtime = lapin::runtime::default_runtime().map_err(amqp_failure)?;
    let conn = tokio::select! {
        conn = Connection::connect_with_config(&url, properties, tls, runtime) => {
            conn.map_err(|e| connect_failure(&e, &shown, user))?
        }
        _ = tokio::signal::ctrl_c() => return Ok(()),
    };
    let result = consume(&conn, &args, format).await;
    // Closing (rather than dropping) lets the broker delete the queue at once.
    let _ = conn.close(200, "brokerctl tail done".into()).await;
    result
}

async fn consume(conn: &Connection, args: &TailArgs, format: Format) -> Result<(), Failure> {
    let ch = conn.create_channel().await.map_err(amqp_failure)?;
    let queue = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(amqp_failure)?;
    let queue_name = queue.name().to_string();
    ch.queue_bind(
        queue_name.as_str().into(),
        args.exchange.as_str().into(),
        args.routing_key.as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .map_err(amqp_failure)?;
    let mut consumer = ch
        .basic_consume(
            queue_name.as_str().into(),
            "brokerctl-tail".into(),
            BasicConsumeOptions {
                no_ack: true,
                exclusive: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(amqp_failure)?;
    // On stderr, so that stdout holds only messages; scripts (and tests) can wait for it.
    eprintln!(
        "brokerctl: tailing exchange '{}' with binding key '{}' through queue '{queue_name}' (Ctrl-C to stop)",
        args.exchange, args.routing_key
    );
    let mut seen = 0u64;
    while args.count.is_none_or(|n| seen < n) {
        let delivery = tokio::select! {
            d = consumer.next() => d,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        match delivery {
            Some(Ok(d)) => {
                print_delivery(&d, args.encoding, format);
                seen += 1;
            }
            Some(Err(e)) => return Err(amqp_failure(e)),
            None => {
                return Err(Failure::Usage(
                    "the broker cancelled the tail's consumer".to_string(),
                ));
            }
        }
    }
    Ok(())
}

fn print_delivery(d: &Delivery, encoding: Encoding, format: Format) {
    let (payload, payload_encoding) = encode(&d.data, encoding);
    let properties = properties_json(&d.properties);
    match format {
        Format::Json => outln!(
            "{}",
            json!({
                "exchange": d.exchange.as_str(),
                "routing_key": d.routing_key.as_str(),
                "redelivered": d.redelivered,
                "properties": properties,
                "payload_bytes": d.data.len(),
                "payload": payload,
                "payload_encoding": payload_encoding,
            })
        ),
        Format::Table => {
            let props: Vec<String> = properties
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect();
            let props = if props.is_empty() {
                String::new()
            } else {
                format!("[{}]  ", props.join(" "))
            };
            let routing_key = if d.routing_key.as_str().is_empty() {
                "(empty key)"
            } else {
                d.routing_key.as_str()
            };
            let shown = if payload_encoding == "string" {
                payload
            } else {
                format!("{payload_encoding}:{payload}")
            };
            outln!("{routing_key}  {props}{shown}");
        }
    }
}

/// The body as text, and the name of the encoding used (the API's `payload_encoding`).
fn encode(body: &[u8], encoding: Encoding) -> (String, &'static str) {
    let b64 = || base64::engine::general_purpose::STANDARD.encode(body);
    match encoding {
        Encoding::Auto => match std::str::from_utf8(body) {
            Ok(s) => (s.to_string(), "string"),
            Err(_) => (b64(), "base64"),
        },
        Encoding::String => (String::from_utf8_lossy(body).into_owned(), "string"),
        Encoding::Hex => (body.iter().map(|b| format!("{b:02x}")).collect(), "hex"),
        Encoding::Base64 => (b64(), "base64"),
    }
}

/// The properties that are set, with the API's field names.
fn properties_json(p: &BasicProperties) -> Map<String, Value> {
    let mut m = Map::new();
    let mut text = |k: &str, v: &Option<lapin::types::ShortString>| {
        if let Some(v) = v {
            m.insert(k.to_string(), Value::String(v.as_str().to_string()));
        }
    };
    text("content_type", p.content_type());
    text("content_encoding", p.content_encoding());
    text("correlation_id", p.correlation_id());
    text("reply_to", p.reply_to());
    text("expiration", p.expiration());
    text("message_id", p.message_id());
    text("type", p.kind());
    text("user_id", p.user_id());
    text("app_id", p.app_id());
    if let Some(v) = p.delivery_mode() {
        m.insert("delivery_mode".into(), json!(v));
    }
    if let Some(v) = p.priority() {
        m.insert("priority".into(), json!(v));
    }
    if let Some(v) = p.timestamp() {
        m.insert("timestamp".into(), json!(v));
    }
    if let Some(h) = p.headers() {
        m.insert("headers".into(), table_json(h));
    }
    m
}

fn table_json(t: &FieldTable) -> Value {
    Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), value_json(v)))
            .collect(),
    )
}

fn value_json(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::DecimalValue(d) => json!(f64::from(d.value) / 10f64.powi(i32::from(d.scale))),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_json).collect()),
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::ByteArray(b) => {
            json!(base64::engine::general_purpose::STANDARD.encode(b.as_slice()))
        }
        AMQPValue::Void => Value::Null,
    }
}

/// The local broker's AMQP port, in `vhost` (or `/`).
fn default_url(vhost: Option<&str>) -> String {
    format!("amqp://localhost:5672/{}", segment(vhost.unwrap_or("/")))
}

/// `url` with `user:password@` inserted unless it already names a user.
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return url.to_string();
    }
    format!("{scheme}://{}:{}@{rest}", segment(user), segment(password))
}

/// `url` with the password replaced by `***`, for messages.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split('/').next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let path = &rest[authority.len()..];
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

/// A failed connect: refused credentials (403) exit 3 like the API's 401, anything else
/// means the broker was not reached (exit 2).
fn connect_failure(e: &lapin::Error, url: &str, user: &str) -> Failure {
    let text = e.to_string();
    let refused = matches!(e.kind(), ErrorKind::ProtocolError(p) if p.get_id() == 403)
        || text.contains("ACCESS_REFUSED");
    if refused {
        Failure::Auth {
            user: user.to_string(),
            url: url.to_string(),
        }
    } else {
        Failure::Unreachable {
            url: url.to_string(),
            detail: text,
        }
    }
}

/// A refused AMQP operation (e.g. 404 NOT_FOUND for a missing exchange): exit 1.
fn amqp_failure(e: lapin::Error) -> Failure {
    match e.kind() {
        ErrorKind::ProtocolError(p) => Failure::Amqp {
            code: p.get_id(),
            reason: p.get_message().to_string(),
        },
        _ => Failure::Usage(format!("AMQP: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_added_only_when_the_url_has_none() {
        assert_eq!(
            with_credentials("amqp://localhost:5672/%2F", "a b", "p@ss"),
            "amqp://a%20b:p%40ss@localhost:5672/%2F"
        );
        assert_eq!(
            with_credentials("amqp://u:p@h:1/v", "guest", "guest"),
            "amqp://u:p@h:1/v"
        );
        assert_eq!(default_url(None), "amqp://localhost:5672/%2F");
        assert_eq!(default_url(Some("a/b")), "amqp://localhost:5672/a%2Fb");
        assert_eq!(
            without_password("amqp://u:p@h:1/%2F"),
            "amqp://u:***@h:1/%2F"
        );
    }

    #[test]
    fn bodies_are_text_when_they_can_be() {
        assert_eq!(encode(b"hi", Encoding::Auto), ("hi".into(), "string"));
        assert_eq!(
            encode(&[0xff, 0], Encoding::Auto),
            ("/wA=".into(), "base64")
        );
        assert_eq!(encode(&[0xff, 0], Encoding::Hex), ("ff00".into(), "hex"));
    }
}
