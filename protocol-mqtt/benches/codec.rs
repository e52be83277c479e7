//! Micro-benchmarks of the MQTT codec on the message hot path: decoding and
//! encoding a 100-byte PUBLISH at QoS 0 and QoS 1, for 3.1.1 and for 5.0
//! (with the few properties a 5.0 client typically sets), and a SUBSCRIBE
//! with wildcard filters. Throughput is in bytes of wire data.
//!
//! Run: `cargo bench -p protocol-mqtt --bench codec`.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use protocol_mqtt::{
    Packet, PacketId, ProtocolVersion, Publish, PublishProperties, QoS, Subscribe,
    SubscribeProperties, Subscription, SubscriptionOptions, TopicFilter, TopicName, UserProperty,
    decode, encode,
};

/// The broker's default limit on an inbound packet: far above what is sent here.
const MAX_PACKET_SIZE: usize = 1024 * 1024;

/// Payload size of the benchmarked PUBLISH.
const PAYLOAD_LEN: usize = 100;

/// The versions benchmarked, with the label used in benchmark ids.
const VERSIONS: [(ProtocolVersion, &str); 2] = [
    (ProtocolVersion::V311, "v3.1.1"),
    (ProtocolVersion::V5, "v5.0"),
];

/// A PUBLISH of 100 bytes; on 5.0 it carries an expiry, a content type, a
/// payload format indicator and one user property.
fn publish(version: ProtocolVersion, qos: QoS) -> Packet {
    let mut p = Publish::new(
        topic_name("sensors/building-7/floor-3/temperature"),
        Bytes::from(vec![0x42; PAYLOAD_LEN]),
    );
    p.qos = qos;
    if qos != QoS::AtMostOnce {
        p.packet_id = PacketId::new(17);
    }
    if version == ProtocolVersion::V5 {
        p.properties = PublishProperties {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(3600),
            content_type: Some("application/json".to_string()),
            user_properties: vec![UserProperty::new("trace", "4bf92f3577b34da6")],
            ..PublishProperties::default()
        };
    }
    Packet::Publish(p)
}

/// A SUBSCRIBE with three filters (one exact, two with wildcards); on 5.0
/// with a subscription identifier.
fn subscribe(version: ProtocolVersion) -> Packet {
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        ..SubscriptionOptions::default()
    };
    let filters = [
        "sensors/building-7/floor-3/temperature",
        "sensors/+/floor-3/#",
        "alerts/#",
    ]
    .into_iter()
    .map(|f| Subscription {
        filter: topic_filter(f),
        options,
    })
    .collect();
    let properties = if version == ProtocolVersion::V5 {
        SubscribeProperties {
            subscription_identifier: std::num::NonZeroU32::new(5),
            ..SubscribeProperties::default()
        }
    } else {
        SubscribeProperties::default()
    };
    Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(1).expect("1 is a valid packet id"),
        properties,
        filters,
    })
}

fn topic_name(s: &str) -> TopicName {
    TopicName::new(s).expect("benchmark topic is valid")
}

fn topic_filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).expect("benchmark filter is valid")
}

/// The wire bytes of `packet` for `version`.
fn wire(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).expect("benchmark packet encodes");
    out
}

/// The packets benchmarked, with their ids: `publish_qos0/v5.0`, ...
fn cases() -> Vec<(String, ProtocolVersion, Packet)> {
    let mut cases = Vec::new();
    for (version, label) in VERSIONS {
        for (qos, name) in [(QoS::AtMostOnce, "qos0"), (QoS::AtLeastOnce, "qos1")] {
            cases.push((
                format!("publish_{name}_100B/{label}"),
                version,
                publish(version, qos),
            ));
        }
        cases.push((format!("subscribe_3/{label}"), version, subscribe(version)));
    }
    cases
}

fn decode_packets(c: &mut Criterion) {
    let mut group = c.benchmark_group("mqtt_decode");
    for (id, version, packet) in cases() {
        let bytes = wire(&packet, version);
        // Sanity: what is measured is a successful decode of the same packet.
        let decoded = decode(&mut bytes.clone(), Some(version), MAX_PACKET_SIZE);
        assert!(matches!(decoded, Ok(Some(ref p)) if *p == packet), "{id}");
        group.throughput(Throughput::Bytes(len_u64(bytes.len())));
        group.bench_function(id, |b| {
            b.iter_batched_ref(
                || bytes.clone(),
                |buf| decode(buf, Some(version), MAX_PACKET_SIZE),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn encode_packets(c: &mut Criterion) {
    let mut group = c.benchmark_group("mqtt_encode");
    for (id, version, packet) in cases() {
        let mut out = wire(&packet, version);
        group.throughput(Throughput::Bytes(len_u64(out.len())));
        group.bench_function(id, |b| {
            b.iter(|| {
                out.clear();
                let written = encode(black_box(&packet), version, &mut out);
                black_box((written, out.len()))
            });
        });
    }
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
    targets = decode_packets, encode_packets
}
criterion_main!(benches);
