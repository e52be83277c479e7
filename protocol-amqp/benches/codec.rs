//! Micro-benchmarks of the AMQP codec on the message hot path: decoding a
//! `basic.publish` command (method + content header + 1 KiB body frame) the
//! way the broker's connection task does it (`decode_frame` over a read
//! buffer, frames fed to a `CommandAssembler`), and encoding a
//! `basic.deliver` with properties and body as its write path does
//! (`encode_content`). Throughput is in bytes of wire data, so a regression
//! shows as fewer MB/s.
//!
//! Run: `cargo bench -p protocol-amqp --bench codec`.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use protocol_amqp::{
    BasicDeliver, BasicProperties, BasicPublish, CommandAssembler, FieldTable, FieldValue, Method,
    ShortStr, decode_frame, encode_content,
};

/// The frame_max RabbitMQ and the broker negotiate by default: a 1 KiB body
/// travels in one body frame.
const FRAME_MAX: u32 = 131_072;

/// Body size of the benchmarked message.
const BODY_LEN: usize = 1024;

/// Properties a typical persistent application message carries.
fn properties() -> BasicProperties {
    let mut headers = FieldTable::new();
    headers.insert(
        ShortStr::from_static("x-trace-id"),
        FieldValue::LongStr(Bytes::from_static(b"4bf92f3577b34da6a3ce929d0e0e4736")),
    );
    headers.insert(ShortStr::from_static("attempt"), FieldValue::I32(1));
    BasicProperties {
        content_type: Some(ShortStr::from_static("application/json")),
        delivery_mode: Some(2),
        headers: Some(headers),
        message_id: Some(ShortStr::from_static("msg-000001")),
        timestamp: Some(1_700_000_000),
        ..BasicProperties::default()
    }
}

/// The wire bytes of one `basic.publish` + header + 1 KiB body, as a client
/// sends them.
fn publish_wire() -> BytesMut {
    let method = Method::BasicPublish(BasicPublish {
        exchange: ShortStr::from_static("amq.topic"),
        routing_key: ShortStr::from_static("orders.eu.created"),
        mandatory: false,
        immediate: false,
    });
    let mut wire = BytesMut::new();
    encode_content(
        1,
        &method,
        &properties(),
        &[0x5a; BODY_LEN],
        FRAME_MAX,
        &mut wire,
    );
    wire
}

/// Decodes every frame of `buf` and assembles them; returns the commands
/// completed (one per message).
fn decode_all(buf: &mut BytesMut, assembler: &mut CommandAssembler) -> usize {
    let mut commands = 0;
    while let Ok(Some(frame)) = decode_frame(buf, FRAME_MAX) {
        if let Ok(Some(command)) = assembler.feed(frame) {
            black_box(&command);
            commands += 1;
        }
    }
    commands
}

fn decode_publish(c: &mut Criterion) {
    let wire = publish_wire();
    // Sanity: the sequence really is one complete command.
    assert_eq!(
        decode_all(&mut wire.clone(), &mut CommandAssembler::new()),
        1
    );
    // A read buffer holding 100 publishes, as a busy publisher fills it.
    let mut batch = BytesMut::new();
    for _ in 0..100 {
        batch.extend_from_slice(&wire);
    }

    let mut group = c.benchmark_group("amqp_decode_publish_1KiB");
    group.throughput(Throughput::Bytes(len_u64(wire.len())));
    group.bench_function("one_message", |b| {
        let mut assembler = CommandAssembler::new();
        b.iter_batched_ref(
            || wire.clone(),
            |buf| decode_all(buf, &mut assembler),
            BatchSize::SmallInput,
        );
    });
    group.throughput(Throughput::Bytes(len_u64(batch.len())));
    group.bench_function("read_buffer_of_100", |b| {
        let mut assembler = CommandAssembler::new();
        b.iter_batched_ref(
            || batch.clone(),
            |buf| decode_all(buf, &mut assembler),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn encode_deliver(c: &mut Criterion) {
    let method = Method::BasicDeliver(BasicDeliver {
        consumer_tag: ShortStr::from_static("amq.ctag-7QxX0Ve1s1pq2pWeJcT4Hw"),
        delivery_tag: 42,
        redelivered: false,
        exchange: ShortStr::from_static("amq.topic"),
        routing_key: ShortStr::from_static("orders.eu.created"),
    });
    let props = properties();
    let body = Bytes::from(vec![0x5a; BODY_LEN]);
    let mut out = BytesMut::new();
    encode_content(1, &method, &props, &body, FRAME_MAX, &mut out);

    let mut group = c.benchmark_group("amqp_encode_deliver_1KiB");
    group.throughput(Throughput::Bytes(len_u64(out.len())));
    group.bench_function("with_properties", |b| {
        b.iter(|| {
            out.clear();
            encode_content(
                1,
                black_box(&method),
                black_box(&props),
                black_box(&body),
                FRAME_MAX,
                &mut out,
            );
            black_box(out.len())
        });
    });
    group.finish();
}

/// A buffer length as criterion's throughput unit.
fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Short runs by default (CI-friendly); command-line flags still override.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode_publish, encode_deliver
}
criterion_main!(benches);
