//! Proptest strategies shared by the integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;
use protocol_amqp::*;

/// Short strings: mostly small, sometimes at the 255-byte limit, any Unicode.
pub fn shortstr() -> impl Strategy<Value = ShortStr> {
    prop_oneof![
        4 => "\\PC{0,12}".prop_map(ShortStr::truncating),
        1 => "[a-z]{250,255}".prop_map(ShortStr::truncating),
        1 => "\\PC{80,120}".prop_map(ShortStr::truncating),
    ]
}

/// Arbitrary bytes for longstr fields.
pub fn longstr() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn f32_value() -> impl Strategy<Value = f32> {
    prop::num::f32::NORMAL
        | prop::num::f32::ZERO
        | prop::num::f32::INFINITE
        | prop::num::f32::SUBNORMAL
}

fn f64_value() -> impl Strategy<Value = f64> {
    prop::num::f64::NORMAL
        | prop::num::f64::ZERO
        | prop::num::f64::INFINITE
        | prop::num::f64::SUBNORMAL
}

/// Leaf field values of every scalar type (NaN excluded: it is not equal to
/// itself).
pub fn scalar_value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        f32_value().prop_map(FieldValue::F32),
        f64_value().prop_map(FieldValue::F64),
        (any::<u8>(), any::<u32>()).prop_map(|(scale, value)| FieldValue::Decimal { scale, value }),
        longstr().prop_map(FieldValue::LongStr),
        longstr().prop_map(FieldValue::ByteArray),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ]
}

/// Any field value, with arrays and tables nested a few levels.
pub fn field_value() -> impl Strategy<Value = FieldValue> {
    scalar_value().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(FieldValue::Array),
            vec((shortstr(), inner), 0..6)
                .prop_map(|entries| FieldValue::Table(entries.into_iter().collect())),
        ]
    })
}

/// Tables with nested tables and arrays of every type.
pub fn table() -> impl Strategy<Value = FieldTable> {
    vec((shortstr(), field_value()), 0..8).prop_map(|entries| entries.into_iter().collect())
}

/// Properties with any subset of the 14 flags.
pub fn properties() -> impl Strategy<Value = BasicProperties> {
    let s = || proptest::option::of(shortstr());
    (
        (
            s(),
            s(),
            proptest::option::of(table()),
            proptest::option::of(any::<u8>()),
        ),
        (proptest::option::of(any::<u8>()), s(), s(), s(), s()),
        (proptest::option::of(any::<u64>()), s(), s(), s(), s()),
    )
        .prop_map(
            |(
                (content_type, content_encoding, headers, delivery_mode),
                (priority, correlation_id, reply_to, expiration, message_id),
                (timestamp, kind, user_id, app_id, cluster_id),
            )| BasicProperties {
                content_type,
                content_encoding,
                headers,
                delivery_mode,
                priority,
                correlation_id,
                reply_to,
                expiration,
                message_id,
                timestamp,
                kind,
                user_id,
                app_id,
                cluster_id,
            },
        )
}

fn m<S>(s: S) -> BoxedStrategy<Method>
where
    S: Strategy + 'static,
    S::Value: Into<Method>,
{
    s.prop_map(Into::into).boxed()
}

fn b() -> impl Strategy<Value = bool> {
    any::<bool>()
}

/// Every method variant with arbitrary arguments.
pub fn method() -> impl Strategy<Value = Method> {
    let ss = shortstr;
    Union::new(vec![
        m(
            (any::<u8>(), any::<u8>(), table(), longstr(), longstr()).prop_map(
                |(a, b, t, mech, loc)| ConnectionStart {
                    version_major: a,
                    version_minor: b,
                    server_properties: t,
                    mechanisms: mech,
                    locales: loc,
                },
            ),
        ),
        m(
            (table(), ss(), longstr(), ss()).prop_map(|(t, mech, r, l)| ConnectionStartOk {
                client_properties: t,
                mechanism: mech,
                response: r,
                locale: l,
            }),
        ),
        m(longstr().prop_map(|challenge| ConnectionSecure { challenge })),
        m(longstr().prop_map(|response| ConnectionSecureOk { response })),
        m(
            (any::<u16>(), any::<u32>(), any::<u16>()).prop_map(|(c, f, h)| ConnectionTune {
                channel_max: c,
                frame_max: f,
                heartbeat: h,
            }),
        ),
        m(
            (any::<u16>(), any::<u32>(), any::<u16>()).prop_map(|(c, f, h)| ConnectionTuneOk {
                channel_max: c,
                frame_max: f,
                heartbeat: h,
            }),
        ),
        m(ss().prop_map(|virtual_host| ConnectionOpen { virtual_host })),
        m(Just(ConnectionOpenOk)),
        m(
            (any::<u16>(), ss(), any::<u16>(), any::<u16>()).prop_map(|(c, t, k, mm)| {
                ConnectionClose {
                    reply_code: c,
                    reply_text: t,
                    class_id: k,
                    method_id: mm,
                }
            }),
        ),
        m(Just(ConnectionCloseOk)),
        m(ss().prop_map(|reason| ConnectionBlocked { reason })),
        m(Just(ConnectionUnblocked)),
        m((longstr(), ss())
            .prop_map(|(new_secret, reason)| ConnectionUpdateSecret { new_secret, reason })),
        m(Just(ConnectionUpdateSecretOk)),
        m(Just(ChannelOpen)),
        m(Just(ChannelOpenOk)),
        m(b().prop_map(|active| ChannelFlow { active })),
        m(b().prop_map(|active| ChannelFlowOk { active })),
        m(
            (any::<u16>(), ss(), any::<u16>(), any::<u16>()).prop_map(|(c, t, k, mm)| {
                ChannelClose {
                    reply_code: c,
                    reply_text: t,
                    class_id: k,
                    method_id: mm,
                }
            }),
        ),
        m(Just(ChannelCloseOk)),
        m((ss(), b(), b(), b(), b(), b()).prop_map(
            |(realm, exclusive, passive, active, write, read)| AccessRequest {
                realm,
                exclusive,
                passive,
                active,
                write,
                read,
            },
        )),
        m(any::<u16>().prop_map(|ticket| AccessRequestOk { ticket })),
        m((ss(), ss(), b(), b(), b(), b(), b(), table()).prop_map(
            |(exchange, kind, passive, durable, auto_delete, internal, nowait, arguments)| {
                ExchangeDeclare {
                    exchange,
                    kind,
                    passive,
                    durable,
                    auto_delete,
                    internal,
                    nowait,
                    arguments,
                }
            },
        )),
        m(Just(ExchangeDeclareOk)),
        m(
            (ss(), b(), b()).prop_map(|(exchange, if_unused, nowait)| ExchangeDelete {
                exchange,
                if_unused,
                nowait,
            }),
        ),
        m(Just(ExchangeDeleteOk)),
        m((ss(), ss(), ss(), b(), table()).prop_map(
            |(destination, source, routing_key, nowait, arguments)| ExchangeBind {
                destination,
                source,
                routing_key,
                nowait,
                arguments,
            },
        )),
        m(Just(ExchangeBindOk)),
        m((ss(), ss(), ss(), b(), table()).prop_map(
            |(destination, source, routing_key, nowait, arguments)| ExchangeUnbind {
                destination,
                source,
                routing_key,
                nowait,
                arguments,
            },
        )),
        m(Just(ExchangeUnbindOk)),
        m((ss(), b(), b(), b(), b(), b(), table()).prop_map(
            |(queue, passive, durable, exclusive, auto_delete, nowait, arguments)| QueueDeclare {
                queue,
                passive,
                durable,
                exclusive,
                auto_delete,
                nowait,
                arguments,
            },
        )),
        m(
            (ss(), any::<u32>(), any::<u32>()).prop_map(
                |(queue, message_count, consumer_count)| QueueDeclareOk {
                    queue,
                    message_count,
                    consumer_count,
                },
            ),
        ),
        m((ss(), ss(), ss(), b(), table()).prop_map(
            |(queue, exchange, routing_key, nowait, arguments)| QueueBind {
                queue,
                exchange,
                routing_key,
                nowait,
                arguments,
            },
        )),
        m(Just(QueueBindOk)),
        m((ss(), b()).prop_map(|(queue, nowait)| QueuePurge { queue, nowait })),
        m(any::<u32>().prop_map(|message_count| QueuePurgeOk { message_count })),
        m(
            (ss(), b(), b(), b()).prop_map(|(queue, if_unused, if_empty, nowait)| QueueDelete {
                queue,
                if_unused,
                if_empty,
                nowait,
            }),
        ),
        m(any::<u32>().prop_map(|message_count| QueueDeleteOk { message_count })),
        m(
            (ss(), ss(), ss(), table()).prop_map(|(queue, exchange, routing_key, arguments)| {
                QueueUnbind {
                    queue,
                    exchange,
                    routing_key,
                    arguments,
                }
            }),
        ),
        m(Just(QueueUnbindOk)),
        m(
            (any::<u32>(), any::<u16>(), b()).prop_map(
                |(prefetch_size, prefetch_count, global)| BasicQos {
                    prefetch_size,
                    prefetch_count,
                    global,
                },
            ),
        ),
        m(Just(BasicQosOk)),
        m((ss(), ss(), b(), b(), b(), b(), table()).prop_map(
            |(queue, consumer_tag, no_local, no_ack, exclusive, nowait, arguments)| BasicConsume {
                queue,
                consumer_tag,
                no_local,
                no_ack,
                exclusive,
                nowait,
                arguments,
            },
        )),
        m(ss().prop_map(|consumer_tag| BasicConsumeOk { consumer_tag })),
        m((ss(), b()).prop_map(|(consumer_tag, nowait)| BasicCancel {
            consumer_tag,
            nowait,
        })),
        m(ss().prop_map(|consumer_tag| BasicCancelOk { consumer_tag })),
        m(basicpublish()),
        m(basicreturn()),
        m(basicdeliver()),
        m((ss(), b()).prop_map(|(queue, no_ack)| BasicGet { queue, no_ack })),
        m(basicgetok()),
        m(Just(BasicGetEmpty)),
        m(
            (any::<u64>(), b()).prop_map(|(delivery_tag, multiple)| BasicAck {
                delivery_tag,
                multiple,
            }),
        ),
        m(
            (any::<u64>(), b()).prop_map(|(delivery_tag, requeue)| BasicReject {
                delivery_tag,
                requeue,
            }),
        ),
        m(b().prop_map(|requeue| BasicRecoverAsync { requeue })),
        m(b().prop_map(|requeue| BasicRecover { requeue })),
        m(Just(BasicRecoverOk)),
        m(
            (any::<u64>(), b(), b()).prop_map(|(delivery_tag, multiple, requeue)| BasicNack {
                delivery_tag,
                multiple,
                requeue,
            }),
        ),
        m(b().prop_map(|nowait| ConfirmSelect { nowait })),
        m(Just(ConfirmSelectOk)),
        m(Just(TxSelect)),
        m(Just(TxSelectOk)),
        m(Just(TxCommit)),
        m(Just(TxCommitOk)),
        m(Just(TxRollback)),
        m(Just(TxRollbackOk)),
    ])
}

fn basicpublish() -> impl Strategy<Value = BasicPublish> {
    (shortstr(), shortstr(), b(), b()).prop_map(|(exchange, routing_key, mandatory, immediate)| {
        BasicPublish {
            exchange,
            routing_key,
            mandatory,
            immediate,
        }
    })
}

fn basicreturn() -> impl Strategy<Value = BasicReturn> {
    (any::<u16>(), shortstr(), shortstr(), shortstr()).prop_map(
        |(reply_code, reply_text, exchange, routing_key)| BasicReturn {
            reply_code,
            reply_text,
            exchange,
            routing_key,
        },
    )
}

fn basicdeliver() -> impl Strategy<Value = BasicDeliver> {
    (shortstr(), any::<u64>(), b(), shortstr(), shortstr()).prop_map(
        |(consumer_tag, delivery_tag, redelivered, exchange, routing_key)| BasicDeliver {
            consumer_tag,
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
        },
    )
}

fn basicgetok() -> impl Strategy<Value = BasicGetOk> {
    (any::<u64>(), b(), shortstr(), shortstr(), any::<u32>()).prop_map(
        |(delivery_tag, redelivered, exchange, routing_key, message_count)| BasicGetOk {
            delivery_tag,
            redelivered,
            exchange,
            routing_key,
            message_count,
        },
    )
}

/// Content-carrying methods only.
pub fn content_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        m(basicpublish()),
        m(basicreturn()),
        m(basicdeliver()),
        m(basicgetok())
    ]
}

/// Any frame.
pub fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u16>(), method()).prop_map(|(channel, method)| Frame::Method { channel, method }),
        (any::<u16>(), any::<u16>(), any::<u64>(), properties()).prop_map(
            |(channel, class_id, body_size, properties)| Frame::Header {
                channel,
                class_id,
                body_size,
                properties
            }
        ),
        (any::<u16>(), vec(any::<u8>(), 0..300)).prop_map(|(channel, p)| Frame::Body {
            channel,
            payload: Bytes::from(p)
        }),
        any::<u16>().prop_map(|channel| Frame::Heartbeat { channel }),
    ]
}
