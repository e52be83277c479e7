//! Micro-benchmarks of topic routing: the topic trie with 10k bindings (a
//! tenth of them with `*` or `#`) matching routing keys that hit and miss,
//! adding and removing one binding among the 10k, building the whole index,
//! and the same lookups through a topic and a direct `Exchange` as the core
//! routes a publish.
//!
//! Run: `cargo bench -p broker --bench topic_trie`.

use std::hint::black_box;
use std::time::Duration;

use broker::model::exchange::{Binding, Destination, Exchange, ExchangeKind};
use broker::model::topic_trie::TopicTrie;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use protocol_amqp::FieldTable;

/// Bindings in the benchmarked index.
const BINDINGS: usize = 10_000;

/// The i-th binding key: `region<r>.service<s>.level<l>` with r = i mod 50,
/// s = i / 50, l = i mod 7; the services whose number is 0 mod 20 bind
/// `region<r>.*.level<l>` instead and those that are 1 mod 20 bind
/// `region<r>.service<s>.#`, so a routing key meets both wildcard kinds on
/// its way down the trie.
fn binding_key(i: usize) -> String {
    let (r, s, l) = (i % 50, i / 50, i % 7);
    match s % 20 {
        0 => format!("region{r}.*.level{l}"),
        1 => format!("region{r}.service{s}.#"),
        _ => format!("region{r}.service{s}.level{l}"),
    }
}

/// The queue the i-th binding leads to.
fn queue(i: usize) -> Destination {
    Destination::Queue(format!("q{i}"))
}

/// Routing keys looked up: one that matches exact and wildcard bindings, one
/// that only a `#` binding catches (extra word), one that matches nothing.
const ROUTING_KEYS: [(&str, &str); 3] = [
    ("hit", "region34.service24.level2"),
    ("hit_hash_deep", "region34.service21.level3.extra.words"),
    ("miss", "region99.service7.level3"),
];

fn filled_trie() -> TopicTrie<Destination> {
    let mut trie = TopicTrie::new();
    for i in 0..BINDINGS {
        trie.insert(&binding_key(i), queue(i));
    }
    trie
}

fn trie_route(c: &mut Criterion) {
    let trie = filled_trie();
    let mut group = c.benchmark_group("topic_trie_10k_route");
    group.throughput(Throughput::Elements(1));
    for (name, key) in ROUTING_KEYS {
        let mut out = Vec::new();
        trie.route(key, &mut out);
        println!("{key}: {} destinations", out.len());
        if name.starts_with("hit") {
            assert!(!out.is_empty(), "{key} should match");
        } else {
            assert!(out.is_empty(), "{key} should not match");
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                trie.route(black_box(key), &mut out);
                black_box(out.len())
            });
        });
    }
    group.finish();
}

fn trie_insert_remove(c: &mut Criterion) {
    let mut group = c.benchmark_group("topic_trie_10k_update");
    let mut trie = filled_trie();
    let new_dest = queue(BINDINGS);
    group.bench_function("insert_then_remove_one", |b| {
        b.iter(|| {
            let added = trie.insert(black_box("region3.service9.#"), new_dest.clone());
            let removed = trie.remove(black_box("region3.service9.#"), &new_dest);
            black_box((added, removed))
        });
    });
    let keys: Vec<(String, Destination)> =
        (0..BINDINGS).map(|i| (binding_key(i), queue(i))).collect();
    group.throughput(Throughput::Elements(
        u64::try_from(BINDINGS).unwrap_or(u64::MAX),
    ));
    group.bench_function("build_10k", |b| {
        b.iter_batched(
            || keys.clone(),
            |keys| {
                let mut trie = TopicTrie::new();
                for (key, dest) in keys {
                    trie.insert(&key, dest);
                }
                trie
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

/// An exchange of `kind` with the 10k bindings (exact keys for direct).
fn filled_exchange(kind: ExchangeKind) -> Exchange {
    let mut x = Exchange::new(
        format!("bench.{kind}"),
        kind,
        false,
        false,
        false,
        FieldTable::default(),
    );
    for i in 0..BINDINGS {
        let routing_key = match kind {
            ExchangeKind::Direct => format!("region{}.service{}.level{}", i % 50, i / 50, i % 7),
            _ => binding_key(i),
        };
        let binding = Binding {
            destination: queue(i),
            routing_key,
            arguments: FieldTable::default(),
        };
        assert!(matches!(x.bind(binding), Ok(true)));
    }
    x
}

fn exchange_route(c: &mut Criterion) {
    let mut group = c.benchmark_group("exchange_10k_route");
    group.throughput(Throughput::Elements(1));
    for (kind, key) in [
        (ExchangeKind::Topic, "region34.service24.level2"),
        (ExchangeKind::Direct, "region34.service24.level2"),
    ] {
        let x = filled_exchange(kind);
        let mut out = Vec::new();
        x.route(key, None, &mut out);
        assert!(!out.is_empty(), "{kind} exchange should route {key}");
        group.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                out.clear();
                x.route(black_box(key), None, &mut out);
                black_box(out.len())
            });
        });
    }
    group.finish();
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
    targets = trie_route, trie_insert_remove, exchange_route
}
criterion_main!(benches);
