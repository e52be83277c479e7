//! Message rates (RabbitMQ's `*_details: {rate}`), computed off the hot path: a sampler task
//! reads every queue's counters (atomics on the queue handle, no message to the queue task)
//! once per interval and keeps the previous sample; a rate is the counter's growth over the
//! interval, per second. Publishing and delivering cost nothing more than the counter
//! increments they already do.
//!
//! `/metrics` carries the counters only: Prometheus computes rates itself (`rate(...[1m])`),
//! over whatever window the query asks for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::core::Core;
use crate::core::queue::QueueCounts;

/// RabbitMQ's default `collect_statistics_interval`.
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Per-second rates of one queue (or of all of them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MessageRates {
    /// Messages entering the queue.
    pub publish: f64,
    /// Deliveries to consumers.
    pub deliver: f64,
    /// basic.get.
    pub get: f64,
    /// Acknowledgements.
    pub ack: f64,
}

impl MessageRates {
    fn add(&mut self, other: MessageRates) {
        self.publish += other.publish;
        self.deliver += other.deliver;
        self.get += other.get;
        self.ack += other.ack;
    }
}

/// One reading of every queue's counters.
struct Sample {
    at: Instant,
    /// Queue id (unique per queue incarnation, across vhosts) → counters.
    counts: HashMap<u64, QueueCounts>,
}

#[derive(Default)]
struct State {
    last: Option<Sample>,
    queues: HashMap<u64, MessageRates>,
    total: MessageRates,
}

/// The latest rates, shared by the sampler and the handlers. A std mutex: held to copy a
/// few numbers in or out, never across `.await`.
#[derive(Default)]
pub struct Rates {
    state: Mutex<State>,
}

fn per_second(now: u64, before: u64, secs: f64) -> f64 {
    // A counter never goes down; if it seems to, the queue was replaced: no rate.
    let delta = now.saturating_sub(before);
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52 per interval
    let delta = delta as f64;
    delta / secs
}

impl Rates {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Reads every queue's counters now and updates the rates from the previous reading.
    pub fn sample(&self, core: &Core) {
        let mut counts = HashMap::new();
        for vhost in core.vhosts() {
            for q in vhost.topology().queues.values() {
                counts.insert(q.handle.id(), q.handle.counters().snapshot());
            }
        }
        self.record(Instant::now(), counts);
    }

    /// Updates the rates from a reading taken at `at`. A queue absent from the previous
    /// reading was created since, so it counts from zero; queues gone since are dropped
    /// (the total is the sum over queues that exist, like the counters it sits next to).
    fn record(&self, at: Instant, counts: HashMap<u64, QueueCounts>) {
        let mut state = self.lock();
        let mut queues = HashMap::with_capacity(counts.len());
        let mut total = MessageRates::default();
        if let Some(last) = &state.last {
            let secs = at.saturating_duration_since(last.at).as_secs_f64();
            if secs > 0.0 {
                for (id, now) in &counts {
                    let before = last.counts.get(id).copied().unwrap_or_default();
                    let r = MessageRates {
                        publish: per_second(now.published, before.published, secs),
                        deliver: per_second(now.delivered, before.delivered, secs),
                        get: per_second(now.got, before.got, secs),
                        ack: per_second(now.acked, before.acked, secs),
                    };
                    total.add(r);
                    queues.insert(*id, r);
                }
            }
        }
        state.queues = queues;
        state.total = total;
        state.last = Some(Sample { at, counts });
    }

    /// Rates of the queue with handle id `id` (zero until two samples have seen it).
    pub fn queue(&self, id: u64) -> MessageRates {
        self.lock().queues.get(&id).copied().unwrap_or_default()
    }

    /// Rates summed over all queues.
    pub fn total(&self) -> MessageRates {
        self.lock().total
    }
}

/// Samples every `interval` until the broker shuts down.
pub async fn run_sampler(rates: Arc<Rates>, core: Arc<Core>, interval: Duration) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => rates.sample(&core),
            _ = core.shutdown.cancelled() => return,
        }
    }
}

fn details(rate: f64) -> Value {
    // Two decimals, as RabbitMQ shows them.
    json!({ "rate": (rate * 100.0).round() / 100.0 })
}

/// RabbitMQ's `message_stats` object: each counter with its `*_details: {rate}`.
pub fn message_stats(counts: &QueueCounts, rates: MessageRates) -> Value {
    json!({
        "publish": counts.published,
        "publish_details": details(rates.publish),
        "deliver": counts.delivered,
        "deliver_details": details(rates.deliver),
        "get": counts.got,
        "get_details": details(rates.get),
        "deliver_get": counts.delivered + counts.got,
        "deliver_get_details": details(rates.deliver + rates.get),
        "ack": counts.acked,
        "ack_details": details(rates.ack),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(published: u64, delivered: u64, got: u64, acked: u64) -> QueueCounts {
        QueueCounts {
            published,
            delivered,
            got,
            acked,
            dropped: 0,
        }
    }

    #[test]
    fn rates_are_growth_per_second_between_samples() {
        let rates = Rates::default();
        let t0 = Instant::now();
        rates.record(t0, HashMap::from([(1, counts(10, 0, 0, 0))]));
        assert_eq!(
            rates.queue(1),
            MessageRates::default(),
            "one sample: no rate"
        );
        rates.record(
            t0 + Duration::from_secs(2),
            HashMap::from([(1, counts(30, 10, 2, 8)), (2, counts(4, 0, 0, 0))]),
        );
        let q1 = rates.queue(1);
        assert!((q1.publish - 10.0).abs() < 1e-9);
        assert!((q1.deliver - 5.0).abs() < 1e-9);
        assert!((q1.get - 1.0).abs() < 1e-9);
        assert!((q1.ack - 4.0).abs() < 1e-9);
        // A queue created since the last sample counts from zero.
        assert!((rates.queue(2).publish - 2.0).abs() < 1e-9);
        assert!((rates.total().publish - 12.0).abs() < 1e-9);
        // Nothing moved: rates fall back to zero; a deleted queue is forgotten.
        rates.record(
            t0 + Duration::from_secs(4),
            HashMap::from([(1, counts(30, 10, 2, 8))]),
        );
        assert_eq!(rates.queue(1), MessageRates::default());
        assert_eq!(rates.total(), MessageRates::default());
    }

    #[test]
    fn message_stats_carry_counters_and_rates() {
        let v = message_stats(
            &counts(5, 3, 1, 2),
            MessageRates {
                publish: 1.234,
                deliver: 0.5,
                get: 0.25,
                ack: 0.0,
            },
        );
        assert_eq!(v["publish"], 5);
        assert_eq!(v["publish_details"]["rate"], 1.23);
        assert_eq!(v["deliver_get"], 4);
        assert_eq!(v["deliver_get_details"]["rate"], 0.75);
        assert_eq!(v["ack_details"]["rate"], 0.0);
    }
}
