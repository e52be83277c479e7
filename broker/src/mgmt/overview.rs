//! `/api/overview`: product, listeners, object totals, queued messages, message counters
//! and rates.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::MgmtState;
use super::queues::queue_views;

/// `GET /api/overview`. Message counters add up the queues that exist now: a message
/// routed to three queues counts three times, and a deleted queue's counts are gone with it.
pub(crate) async fn overview(State(s): State<MgmtState>) -> Json<Value> {
    let core = &s.core;
    let queues = queue_views(core, None).await;
    let (mut ready, mut unacked, mut consumers) = (0u64, 0u64, 0u64);
    let (mut publish, mut deliver, mut get, mut ack) = (0u64, 0u64, 0u64, 0u64);
    for q in &queues {
        let stats = q.stats.unwrap_or_default();
        ready += u64::from(stats.messages);
        unacked += u64::from(stats.unacked);
        consumers += u64::from(stats.consumers);
        publish += q.counts.published;
        deliver += q.counts.delivered;
        get += q.counts.got;
        ack += q.counts.acked;
    }
    let connections = core.connections.list();
    let channels: usize = connections.iter().map(|c| c.channel_count()).sum();
    // Every vhost's, + each vhost's default exchange.
    let vhosts = core.vhosts();
    let exchanges: usize = vhosts
        .iter()
        .map(|v| v.topology().exchanges.len() + 1)
        .sum();
    let listeners: Vec<Value> = s
        .listeners
        .iter()
        .map(|l| {
            json!({
                "protocol": l.protocol,
                "ip_address": l.addr.ip().to_string(),
                "port": l.addr.port(),
            })
        })
        .collect();
    let (recv, send) = core.connections.io_totals();
    let totals = crate::core::queue::QueueCounts {
        published: publish,
        delivered: deliver,
        got: get,
        acked: ack,
        dropped: 0,
    };
    let mut message_stats = super::rates::message_stats(&totals, s.rates.total());
    message_stats["recv_oct"] = json!(recv);
    message_stats["send_oct"] = json!(send);
    Json(json!({
        "product_name": "broker",
        "product_version": env!("CARGO_PKG_VERSION"),
        "management_version": env!("CARGO_PKG_VERSION"),
        "node": "broker",
        "uptime": u64::try_from(s.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "listeners": listeners,
        "object_totals": {
            "connections": connections.len(),
            "channels": channels,
            "queues": queues.len(),
            "exchanges": exchanges,
            "consumers": consumers,
        },
        "queue_totals": {
            "messages": ready + unacked,
            "messages_ready": ready,
            "messages_unacknowledged": unacked,
        },
        "message_stats": message_stats,
        "memory_alarm": core.memory.is_blocked(),
    }))
}
