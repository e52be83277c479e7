//! Differential tests against `amq-protocol` 10 (the codec lapin uses):
//! encode with theirs and decode with ours, and the other way round.
//!
//! Known differences in amq-protocol's field-table mapping (we follow
//! RabbitMQ, not them; none of these values are generated below):
//! - `AMQPValue::ShortString` is written with tag `_`, which RabbitMQ does
//!   not know; we reject `_` as an unknown tag.
//! - `AMQPValue::LongLongUInt` (u64) is written with tag `l`, so it arrives
//!   here as `FieldValue::I64` (RabbitMQ has no unsigned 64-bit tag).
//! - amq-protocol accepts `U` as a signed 16-bit (the PDF grammar); RabbitMQ
//!   and we reject it.
//! - Their `FieldTable` is a `BTreeMap`, so they emit keys sorted and drop
//!   duplicates; we keep wire order. Comparisons sort our tables first.

mod common;

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, basic, connection, exchange, queue};
use amq_protocol::types::{self as amq, AMQPValue};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use protocol_amqp::*;

fn amq_encode(frame: &AMQPFrame) -> Vec<u8> {
    let ctx = gen_frame(frame)(WriteContext::from(Vec::new())).expect("amq-protocol gen");
    ctx.write
}

fn amq_parse(bytes: &[u8]) -> AMQPFrame {
    let (rest, frame) = parse_frame(bytes).expect("amq-protocol parse");
    assert!(rest.is_empty(), "amq-protocol left {} bytes", rest.len());
    frame
}

fn ours_decode(bytes: &[u8]) -> Frame {
    let mut src = BytesMut::from(bytes);
    let frame = decode_frame(&mut src, 0)
        .expect("our decode")
        .expect("complete frame");
    assert!(src.is_empty());
    frame
}

fn ours_encode(frame: &Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_frame(frame, &mut buf);
    buf.to_vec()
}

fn s(v: &ShortStr) -> amq::ShortString {
    amq::ShortString::from(v.as_str())
}

fn value_to_amq(v: &FieldValue) -> AMQPValue {
    match v {
        FieldValue::Bool(b) => AMQPValue::Boolean(*b),
        FieldValue::I8(x) => AMQPValue::ShortShortInt(*x),
        FieldValue::U8(x) => AMQPValue::ShortShortUInt(*x),
        FieldValue::I16(x) => AMQPValue::ShortInt(*x),
        FieldValue::U16(x) => AMQPValue::ShortUInt(*x),
        FieldValue::I32(x) => AMQPValue::LongInt(*x),
        FieldValue::U32(x) => AMQPValue::LongUInt(*x),
        FieldValue::I64(x) => AMQPValue::LongLongInt(*x),
        FieldValue::F32(x) => AMQPValue::Float(*x),
        FieldValue::F64(x) => AMQPValue::Double(*x),
        FieldValue::Decimal { scale, value } => AMQPValue::DecimalValue(amq::DecimalValue {
            scale: *scale,
            value: *value,
        }),
        FieldValue::LongStr(b) => AMQPValue::LongString(b.to_vec().into()),
        FieldValue::ByteArray(b) => AMQPValue::ByteArray(b.to_vec().into()),
        FieldValue::Array(vs) => {
            AMQPValue::FieldArray(vs.iter().map(value_to_amq).collect::<Vec<_>>().into())
        }
        FieldValue::Timestamp(t) => AMQPValue::Timestamp(*t),
        FieldValue::Table(t) => AMQPValue::FieldTable(table_to_amq(t)),
        FieldValue::Void => AMQPValue::Void,
    }
}

fn table_to_amq(t: &FieldTable) -> amq::FieldTable {
    let mut out = amq::FieldTable::default();
    for (k, v) in t.iter() {
        out.insert(s(k), value_to_amq(v));
    }
    out
}

/// Our table with keys sorted recursively, to compare with what a
/// BTreeMap-based encoder produced.
fn sorted(t: &FieldTable) -> FieldTable {
    let mut entries: Vec<(ShortStr, FieldValue)> = t
        .iter()
        .map(|(k, v)| (k.clone(), sorted_value(v)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

fn sorted_value(v: &FieldValue) -> FieldValue {
    match v {
        FieldValue::Table(t) => FieldValue::Table(sorted(t)),
        FieldValue::Array(vs) => FieldValue::Array(vs.iter().map(sorted_value).collect()),
        other => other.clone(),
    }
}

fn props_to_amq(p: &BasicProperties) -> basic::AMQPProperties {
    let mut a = basic::AMQPProperties::default();
    if let Some(v) = &p.content_type {
        a = a.with_content_type(s(v));
    }
    if let Some(v) = &p.content_encoding {
        a = a.with_content_encoding(s(v));
    }
    if let Some(v) = &p.headers {
        a = a.with_headers(table_to_amq(v));
    }
    if let Some(v) = p.delivery_mode {
        a = a.with_delivery_mode(v);
    }
    if let Some(v) = p.priority {
        a = a.with_priority(v);
    }
    if let Some(v) = &p.correlation_id {
        a = a.with_correlation_id(s(v));
    }
    if let Some(v) = &p.reply_to {
        a = a.with_reply_to(s(v));
    }
    if let Some(v) = &p.expiration {
        a = a.with_expiration(s(v));
    }
    if let Some(v) = &p.message_id {
        a = a.with_message_id(s(v));
    }
    if let Some(v) = p.timestamp {
        a = a.with_timestamp(v);
    }
    if let Some(v) = &p.kind {
        a = a.with_type(s(v));
    }
    if let Some(v) = &p.user_id {
        a = a.with_user_id(s(v));
    }
    if let Some(v) = &p.app_id {
        a = a.with_app_id(s(v));
    }
    if let Some(v) = &p.cluster_id {
        a = a.with_cluster_id(s(v));
    }
    a
}

fn sorted_props(p: &BasicProperties) -> BasicProperties {
    BasicProperties {
        headers: p.headers.as_ref().map(sorted),
        ..p.clone()
    }
}

/// Checks one method both ways: theirs -> ours equals `ours`, and
/// ours -> theirs equals `theirs`.
fn check_method(channel: u16, ours: Method, theirs: AMQPClass) {
    let their_frame = AMQPFrame::Method(channel, theirs);
    let decoded = ours_decode(&amq_encode(&their_frame));
    assert_eq!(
        decoded,
        Frame::Method {
            channel,
            method: ours.clone()
        }
    );
    let parsed = amq_parse(&ours_encode(&Frame::Method {
        channel,
        method: ours,
    }));
    assert_eq!(parsed, their_frame);
}

fn every_tag_table() -> FieldTable {
    let mut inner = FieldTable::new();
    inner.insert(ShortStr::from_static("n"), FieldValue::I32(-7));
    let entries = vec![
        (
            "A",
            FieldValue::Array(vec![
                FieldValue::U8(1),
                FieldValue::LongStr(Bytes::from_static(b"s")),
                FieldValue::Void,
            ]),
        ),
        ("B", FieldValue::U8(200)),
        (
            "D",
            FieldValue::Decimal {
                scale: 2,
                value: 31_415,
            },
        ),
        ("F", FieldValue::Table(inner)),
        ("I", FieldValue::I32(-100_000)),
        (
            "S",
            FieldValue::LongStr(Bytes::from_static("héllo".as_bytes())),
        ),
        ("T", FieldValue::Timestamp(1_700_000_000)),
        ("V", FieldValue::Void),
        ("b", FieldValue::I8(-5)),
        ("d", FieldValue::F64(2.5)),
        ("f", FieldValue::F32(-0.25)),
        ("i", FieldValue::U32(4_000_000_000)),
        ("l", FieldValue::I64(-9_000_000_000)),
        ("s", FieldValue::I16(-300)),
        ("t", FieldValue::Bool(true)),
        ("u", FieldValue::U16(65_000)),
        (
            "x",
            FieldValue::ByteArray(Bytes::from_static(&[0, 1, 0xFF])),
        ),
    ];
    entries
        .into_iter()
        .map(|(k, v)| (ShortStr::from_static(k), v))
        .collect()
}

fn ss(v: &'static str) -> ShortStr {
    ShortStr::from_static(v)
}

#[test]
fn connection_handshake_methods() {
    let props = every_tag_table();
    check_method(
        0,
        ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: props.clone(),
            mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
            locales: Bytes::from_static(b"en_US"),
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
            version_major: 0,
            version_minor: 9,
            server_properties: table_to_amq(&props),
            mechanisms: "PLAIN AMQPLAIN".into(),
            locales: "en_US".into(),
        })),
    );
    check_method(
        0,
        ConnectionStartOk {
            client_properties: props.clone(),
            mechanism: ss("PLAIN"),
            response: Bytes::from_static(b"\0guest\0guest"),
            locale: ss("en_US"),
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: table_to_amq(&props),
            mechanism: "PLAIN".into(),
            response: "\0guest\0guest".into(),
            locale: "en_US".into(),
        })),
    );
    check_method(
        0,
        ConnectionTune {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
        })),
    );
    check_method(
        0,
        ConnectionTuneOk {
            channel_max: 1,
            frame_max: 4096,
            heartbeat: 0,
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: 1,
            frame_max: 4096,
            heartbeat: 0,
        })),
    );
    check_method(
        0,
        ConnectionOpen {
            virtual_host: ss("/vhost"),
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
            virtual_host: "/vhost".into(),
        })),
    );
    check_method(
        0,
        ConnectionClose {
            reply_code: 320,
            reply_text: ss("CONNECTION_FORCED - bye"),
            class_id: 0,
            method_id: 0,
        }
        .into(),
        AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 320,
            reply_text: "CONNECTION_FORCED - bye".into(),
            class_id: 0,
            method_id: 0,
        })),
    );
}

#[test]
fn queue_exchange_basic_methods() {
    let args = every_tag_table();
    for bits in 0u8..32 {
        let bit = |i: u8| bits & (1 << i) != 0;
        check_method(
            1,
            QueueDeclare {
                queue: ss("orders"),
                passive: bit(0),
                durable: bit(1),
                exclusive: bit(2),
                auto_delete: bit(3),
                nowait: bit(4),
                arguments: args.clone(),
            }
            .into(),
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: "orders".into(),
                passive: bit(0),
                durable: bit(1),
                exclusive: bit(2),
                auto_delete: bit(3),
                nowait: bit(4),
                arguments: table_to_amq(&args),
            })),
        );
    }
    for (mandatory, immediate) in [(false, false), (true, false), (false, true), (true, true)] {
        check_method(
            2,
            BasicPublish {
                exchange: ss("amq.topic"),
                routing_key: ss("a.b.c"),
                mandatory,
                immediate,
            }
            .into(),
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: "amq.topic".into(),
                routing_key: "a.b.c".into(),
                mandatory,
                immediate,
            })),
        );
    }
    check_method(
        3,
        BasicDeliver {
            consumer_tag: ss("amq.ctag-1"),
            delivery_tag: u64::MAX - 1,
            redelivered: true,
            exchange: ss(""),
            routing_key: ss("q"),
        }
        .into(),
        AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
            consumer_tag: "amq.ctag-1".into(),
            delivery_tag: u64::MAX - 1,
            redelivered: true,
            exchange: "".into(),
            routing_key: "q".into(),
        })),
    );
    check_method(
        3,
        BasicAck {
            delivery_tag: 42,
            multiple: true,
        }
        .into(),
        AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: 42,
            multiple: true,
        })),
    );
    for (multiple, requeue) in [(false, true), (true, false)] {
        check_method(
            3,
            BasicNack {
                delivery_tag: 7,
                multiple,
                requeue,
            }
            .into(),
            AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
                delivery_tag: 7,
                multiple,
                requeue,
            })),
        );
    }
    check_method(
        4,
        ExchangeBind {
            destination: ss("dst"),
            source: ss("src"),
            routing_key: ss("#"),
            nowait: true,
            arguments: args.clone(),
        }
        .into(),
        AMQPClass::Exchange(exchange::AMQPMethod::Bind(exchange::Bind {
            destination: "dst".into(),
            source: "src".into(),
            routing_key: "#".into(),
            nowait: true,
            arguments: table_to_amq(&args),
        })),
    );
    check_method(
        4,
        ExchangeUnbindOk.into(),
        AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})),
    );
}

#[test]
fn content_header_with_all_properties() {
    let props = BasicProperties {
        content_type: Some(ss("application/json")),
        content_encoding: Some(ss("gzip")),
        headers: Some(every_tag_table()),
        delivery_mode: Some(2),
        priority: Some(9),
        correlation_id: Some(ss("corr")),
        reply_to: Some(ss("amq.rabbitmq.reply-to")),
        expiration: Some(ss("60000")),
        message_id: Some(ss("m-1")),
        timestamp: Some(1_700_000_000),
        kind: Some(ss("order.created")),
        user_id: Some(ss("guest")),
        app_id: Some(ss("shop")),
        cluster_id: Some(ss("c1")),
    };
    check_header(&props, 1234);
}

fn check_header(props: &BasicProperties, body_size: u64) {
    let theirs = AMQPFrame::Header(
        5,
        AMQPContentHeader {
            class_id: 60,
            body_size,
            properties: props_to_amq(props),
        },
    );
    let decoded = ours_decode(&amq_encode(&theirs));
    let expected = Frame::Header {
        channel: 5,
        class_id: 60,
        body_size,
        properties: sorted_props(props),
    };
    assert_eq!(decoded, expected);
    let ours = Frame::Header {
        channel: 5,
        class_id: 60,
        body_size,
        properties: props.clone(),
    };
    assert_eq!(amq_parse(&ours_encode(&ours)), theirs);
}

#[test]
fn heartbeat_and_body_frames() {
    assert_eq!(
        amq_encode(&AMQPFrame::Heartbeat),
        ours_encode(&Frame::Heartbeat { channel: 0 })
    );
    let body = AMQPFrame::Body(9, b"payload".to_vec());
    assert_eq!(
        ours_decode(&amq_encode(&body)),
        Frame::Body {
            channel: 9,
            payload: Bytes::from_static(b"payload")
        }
    );
    assert_eq!(
        amq_parse(&ours_encode(&Frame::Body {
            channel: 9,
            payload: Bytes::from_static(b"payload")
        })),
        body
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tables_agree(table in common::table()) {
        let theirs = AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
            queue: "q".into(),
            exchange: "x".into(),
            routing_key: "k".into(),
            nowait: false,
            arguments: table_to_amq(&table),
        }));
        let ours = QueueBind { queue: ss("q"), exchange: ss("x"), routing_key: ss("k"), nowait: false, arguments: table.clone() };
        // Theirs -> ours: keys arrive sorted.
        let decoded = ours_decode(&amq_encode(&AMQPFrame::Method(1, theirs.clone())));
        let expected = QueueBind { arguments: sorted(&table), ..ours.clone() };
        prop_assert_eq!(decoded, Frame::Method { channel: 1, method: expected.into() });
        // Ours -> theirs.
        let parsed = amq_parse(&ours_encode(&Frame::Method { channel: 1, method: ours.into() }));
        prop_assert_eq!(parsed, AMQPFrame::Method(1, theirs));
    }

    #[test]
    fn properties_agree(props in common::properties(), body_size in any::<u64>()) {
        check_header(&props, body_size);
    }
}
