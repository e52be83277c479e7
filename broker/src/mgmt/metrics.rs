//! `/metrics`: Prometheus text exposition (version 0.0.4), written by hand: a few dozen lines
//! of format are simpler than a metrics registry that would duplicate state the broker
//! already keeps.
//!
//! Counters only, no rates: Prometheus computes rates from counters itself (`rate(x[1m])`)
//! over the window a query asks for; the API's `*_details.rate` are for people.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::MgmtState;
use super::queues::queue_views;

/// Text exposition content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (backslash, double quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Resident set size of this process, from `/proc/self/status` (Linux); None elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// `GET /metrics` (no authentication).
pub(crate) async fn metrics(State(s): State<MgmtState>) -> impl IntoResponse {
    let core = s.core.clone();
    let queues = queue_views(&core, None).await;
    let storage = core.storage().clone();
    // sled walks its files to size them: keep that off the async workers.
    let storage_bytes = tokio::task::spawn_blocking(move || storage.size_on_disk())
        .await
        .unwrap_or(0);
    let connections = core.connections.list();
    let channels: usize = connections.iter().map(|c| c.channel_count()).sum();
    let consumers: u64 = queues
        .iter()
        .map(|q| u64::from(q.stats.unwrap_or_default().consumers))
        .sum();
    let (recv, send) = core.connections.io_totals();
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);

    let mut out = String::with_capacity(1024 + queues.len() * 600);
    single(
        &mut out,
        "broker_connections",
        "gauge",
        "Open client connections (AMQP and MQTT).",
        as_u64(connections.len()),
    );
    family(
        &mut out,
        "broker_connections_by_protocol",
        "gauge",
        "Open client connections by protocol.",
    );
    for protocol in ["AMQP 0-9-1", "MQTT 3.1.1", "MQTT 5.0"] {
        let n = connections
            .iter()
            .filter(|c| c.meta.protocol.as_str() == protocol)
            .count();
        let _ = writeln!(
            out,
            "broker_connections_by_protocol{{protocol=\"{protocol}\"}} {n}"
        );
    }
    single(
        &mut out,
        "broker_channels",
        "gauge",
        "Open AMQP channels.",
        as_u64(channels),
    );
    single(
        &mut out,
        "broker_queues",
        "gauge",
        "Queues.",
        as_u64(queues.len()),
    );
    single(
        &mut out,
        "broker_consumers",
        "gauge",
        "Consumers over all queues.",
        consumers,
    );
    single(
        &mut out,
        "broker_received_bytes_total",
        "counter",
        "Bytes received from clients since start.",
        recv,
    );
    single(
        &mut out,
        "broker_sent_bytes_total",
        "counter",
        "Bytes sent to clients since start.",
        send,
    );
    single(
        &mut out,
        "broker_storage_bytes",
        "gauge",
        "Size of the data directory's store on disk.",
        storage_bytes,
    );
    single(
        &mut out,
        "broker_queued_message_bytes",
        "gauge",
        "Bytes of message bodies held by queues (what the memory alarm watches).",
        core.memory.used(),
    );
    if let Some(rss) = resident_memory_bytes() {
        single(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory of the broker process.",
            rss,
        );
    }
    if let Some(mqtt) = &s.mqtt {
        let sessions = queues
            .iter()
            .filter(|q| crate::mqtt::sessions::client_id_of(&q.name).is_some())
            .count();
        single(
            &mut out,
            "broker_mqtt_sessions",
            "gauge",
            "MQTT sessions (session queues), connected or not.",
            as_u64(sessions),
        );
        single(
            &mut out,
            "broker_mqtt_sessions_connected",
            "gauge",
            "MQTT sessions with a connected client.",
            as_u64(mqtt.sessions.connected()),
        );
        single(
            &mut out,
            "broker_mqtt_retained_messages",
            "gauge",
            "Retained MQTT messages.",
            as_u64(mqtt.retained.len()),
        );
    }
    type Pick = fn(&super::queues::QueueView) -> u64;
    let per_queue: [(&str, &str, &str, Pick); 7] = [
        (
            "broker_queue_messages_ready",
            "gauge",
            "Messages ready for delivery.",
            |q| u64::from(q.stats.unwrap_or_default().messages),
        ),
        (
            "broker_queue_messages_unacked",
            "gauge",
            "Messages delivered and not yet acknowledged.",
            |q| u64::from(q.stats.unwrap_or_default().unacked),
        ),
        (
            "broker_queue_consumers",
            "gauge",
            "Consumers of the queue.",
            |q| u64::from(q.stats.unwrap_or_default().consumers),
        ),
        (
            "broker_queue_messages_published_total",
            "counter",
            "Messages that entered the queue.",
            |q| q.counts.published,
        ),
        (
            "broker_queue_messages_delivered_total",
            "counter",
            "Deliveries to consumers and basic.get.",
            |q| q.counts.delivered + q.counts.got,
        ),
        (
            "broker_queue_messages_acked_total",
            "counter",
            "Deliveries acknowledged.",
            |q| q.counts.acked,
        ),
        (
            "broker_queue_messages_dropped_total",
            "counter",
            "Messages a direct queue (a clean MQTT session's) dropped: its client did not read fast enough.",
            |q| q.counts.dropped,
        ),
    ];
    for (name, kind, help, pick) in per_queue {
        family(&mut out, name, kind, help);
        for q in &queues {
            let _ = writeln!(
                out,
                "{name}{{vhost=\"{}\",queue=\"{}\"}} {}",
                label(&q.vhost),
                label(&q.name),
                pick(q)
            );
        }
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn resident_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_memory_bytes().is_some_and(|n| n > 0));
        }
    }
}
