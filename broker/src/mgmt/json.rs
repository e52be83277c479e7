//! AMQP values as the management API shows them in JSON, and back: field tables (arguments,
//! headers), message properties, payloads. JSON numbers become 64-bit integers or doubles,
//! as in RabbitMQ's API; strings become long strings.

use base64::Engine as _;
use bytes::Bytes;
use protocol_amqp::{BasicProperties, FieldTable, FieldValue, ShortStr};
use serde_json::{Map, Value};

/// A field table as a JSON object.
pub fn table_to_json(table: &FieldTable) -> Value {
    Value::Object(
        table
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(v: &FieldValue) -> Value {
    match v {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::I8(n) => Value::from(*n),
        FieldValue::U8(n) => Value::from(*n),
        FieldValue::I16(n) => Value::from(*n),
        FieldValue::U16(n) => Value::from(*n),
        FieldValue::I32(n) => Value::from(*n),
        FieldValue::U32(n) => Value::from(*n),
        FieldValue::I64(n) => Value::from(*n),
        FieldValue::F32(n) => Value::from(*n),
        FieldValue::F64(n) => Value::from(*n),
        FieldValue::Decimal { scale, value } => {
            Value::from(f64::from(*value) / 10f64.powi(i32::from(*scale)))
        }
        FieldValue::LongStr(b) | FieldValue::ByteArray(b) => {
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        FieldValue::Array(items) => Value::Array(items.iter().map(value_to_json).collect()),
        FieldValue::Timestamp(t) => Value::from(*t),
        FieldValue::Table(t) => table_to_json(t),
        FieldValue::Void => Value::Null,
    }
}

/// A JSON object as a field table; `null` is an empty table.
pub fn json_to_table(value: &Value) -> Result<FieldTable, String> {
    match value {
        Value::Null => Ok(FieldTable::new()),
        Value::Object(map) => object_to_table(map),
        other => Err(format!("expected a JSON object, got {other}")),
    }
}

fn object_to_table(map: &Map<String, Value>) -> Result<FieldTable, String> {
    let mut table = FieldTable::new();
    for (k, v) in map {
        let key = ShortStr::new(k.as_str()).map_err(|_| format!("key '{k}' is too long"))?;
        table.insert(key, json_to_value(v)?);
    }
    Ok(table)
}

fn json_to_value(v: &Value) -> Result<FieldValue, String> {
    Ok(match v {
        Value::Null => FieldValue::Void,
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => FieldValue::I64(i),
            (None, Some(f)) => FieldValue::F64(f),
            (None, None) => return Err(format!("number {n} out of range")),
        },
        Value::String(s) => FieldValue::LongStr(Bytes::from(s.clone())),
        Value::Array(items) => {
            FieldValue::Array(items.iter().map(json_to_value).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => FieldValue::Table(object_to_table(map)?),
    })
}

/// Message properties as RabbitMQ's API shows them (only the ones set).
pub fn properties_to_json(p: &BasicProperties) -> Value {
    let mut m = Map::new();
    let mut text = |key: &str, v: &Option<ShortStr>| {
        if let Some(v) = v {
            m.insert(key.to_string(), Value::String(v.as_str().to_string()));
        }
    };
    text("content_type", &p.content_type);
    text("content_encoding", &p.content_encoding);
    text("correlation_id", &p.correlation_id);
    text("reply_to", &p.reply_to);
    text("expiration", &p.expiration);
    text("message_id", &p.message_id);
    text("type", &p.kind);
    text("user_id", &p.user_id);
    text("app_id", &p.app_id);
    text("cluster_id", &p.cluster_id);
    if let Some(h) = &p.headers {
        m.insert("headers".into(), table_to_json(h));
    }
    if let Some(d) = p.delivery_mode {
        m.insert("delivery_mode".into(), Value::from(d));
    }
    if let Some(d) = p.priority {
        m.insert("priority".into(), Value::from(d));
    }
    if let Some(t) = p.timestamp {
        m.insert("timestamp".into(), Value::from(t));
    }
    Value::Object(m)
}

/// Message properties from JSON (the publish endpoint); unknown keys are refused so a typo
/// does not silently drop a property.
pub fn json_to_properties(value: &Value) -> Result<BasicProperties, String> {
    let mut p = BasicProperties::default();
    let map = match value {
        Value::Null => return Ok(p),
        Value::Object(map) => map,
        other => return Err(format!("properties must be an object, got {other}")),
    };
    for (k, v) in map {
        let text = || -> Result<Option<ShortStr>, String> {
            let s = v
                .as_str()
                .ok_or_else(|| format!("property '{k}' must be a string"))?;
            ShortStr::new(s)
                .map(Some)
                .map_err(|_| format!("property '{k}' is too long"))
        };
        let small = || -> Result<Option<u8>, String> {
            v.as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("property '{k}' must be a small integer"))
        };
        match k.as_str() {
            "content_type" => p.content_type = text()?,
            "content_encoding" => p.content_encoding = text()?,
            "correlation_id" => p.correlation_id = text()?,
            "reply_to" => p.reply_to = text()?,
            "expiration" => p.expiration = text()?,
            "message_id" => p.message_id = text()?,
            "type" => p.kind = text()?,
            "user_id" => p.user_id = text()?,
            "app_id" => p.app_id = text()?,
            "cluster_id" => p.cluster_id = text()?,
            "delivery_mode" => p.delivery_mode = small()?,
            "priority" => p.priority = small()?,
            "timestamp" => {
                p.timestamp = Some(
                    v.as_u64()
                        .ok_or_else(|| "property 'timestamp' must be an integer".to_string())?,
                )
            }
            "headers" => p.headers = Some(json_to_table(v)?),
            other => return Err(format!("unknown property '{other}'")),
        }
    }
    Ok(p)
}

/// A payload for JSON: the text itself when it is UTF-8 (`"string"`), else base64.
/// `force_base64` is RabbitMQ's `"encoding": "base64"`.
pub fn encode_payload(body: &[u8], force_base64: bool) -> (Value, &'static str) {
    match std::str::from_utf8(body) {
        Ok(text) if !force_base64 => (Value::String(text.to_string()), "string"),
        _ => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            "base64",
        ),
    }
}

/// A payload from JSON with its `payload_encoding` (`string`, the default, or `base64`).
pub fn decode_payload(payload: &str, encoding: Option<&str>) -> Result<Bytes, String> {
    match encoding.unwrap_or("string") {
        "string" => Ok(Bytes::from(payload.to_string())),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(payload)
            .map(Bytes::from)
            .map_err(|e| format!("payload is not valid base64: {e}")),
        other => Err(format!(
            "unknown payload_encoding '{other}' (string or base64)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_through_json_as_rabbitmq_types() {
        let json = serde_json::json!({
            "x-max-length": 10,
            "x-ratio": 0.5,
            "x-name": "abc",
            "x-flag": true,
            "x-list": [1, "two"],
            "x-nested": {"a": null},
        });
        let table = json_to_table(&json).expect("table");
        assert_eq!(table.get("x-max-length"), Some(&FieldValue::I64(10)));
        assert_eq!(table.get("x-ratio"), Some(&FieldValue::F64(0.5)));
        assert_eq!(table_to_json(&table), json);
        assert!(json_to_table(&serde_json::json!([1])).is_err());
    }

    #[test]
    fn properties_round_trip_and_unknown_ones_are_refused() {
        let json = serde_json::json!({
            "delivery_mode": 2,
            "content_type": "text/plain",
            "headers": {"k": "v"},
            "priority": 3,
            "type": "t",
        });
        let p = json_to_properties(&json).expect("properties");
        assert!(p.is_persistent());
        assert_eq!(properties_to_json(&p), json);
        assert!(json_to_properties(&serde_json::json!({"delivery-mode": 2})).is_err());
        assert!(json_to_properties(&serde_json::json!({"priority": 300})).is_err());
    }

    #[test]
    fn payloads_are_text_when_they_can_be() {
        assert_eq!(encode_payload(b"hi", false), (Value::from("hi"), "string"));
        assert_eq!(
            encode_payload(&[0xff, 0], false),
            (Value::from("/wA="), "base64")
        );
        assert_eq!(
            decode_payload("/wA=", Some("base64")).expect("b64"),
            &[0xff, 0][..]
        );
        assert!(decode_payload("x", Some("hex")).is_err());
    }
}
