//! The memory alarm: queues count the bytes of the messages they hold, and above the high
//! watermark every publishing connection stops reading its socket (AMQP clients that listen
//! get `connection.blocked`) until consumers bring the total back under it. This is how a
//! publisher faster than its consumers is slowed down instead of growing the broker's memory
//! without bound (RabbitMQ's memory alarm; per-queue credit flow alone only bounds one hop).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;

/// Bytes a message costs beyond its body (headers, bookkeeping), for the count.
pub const MESSAGE_OVERHEAD: u64 = 256;

/// Counts message bytes held by queues against a high watermark.
#[derive(Debug)]
pub struct MemoryGauge {
    used: AtomicU64,
    high: u64,
    /// The alarm state, for the hot path: reading `blocked` takes its lock, and every message
    /// a queue takes or lets go looks.
    raised: AtomicBool,
    blocked: watch::Sender<bool>,
}

impl MemoryGauge {
    /// A gauge that raises the alarm above `high` bytes (0 = never).
    pub fn new(high: u64) -> MemoryGauge {
        MemoryGauge {
            used: AtomicU64::new(0),
            high,
            raised: AtomicBool::new(false),
            blocked: watch::channel(false).0,
        }
    }

    /// A queue took a message of `body` bytes.
    pub fn add(&self, body: usize) {
        self.add_cost(cost(body));
    }

    /// Messages of `bodies` bytes in all, `count` of them, were taken at once.
    pub fn add_many(&self, count: usize, bodies: u64) {
        let overhead = u64::try_from(count)
            .unwrap_or(u64::MAX)
            .saturating_mul(MESSAGE_OVERHEAD);
        self.add_cost(bodies.saturating_add(overhead));
    }

    fn add_cost(&self, n: u64) {
        let used = self.used.fetch_add(n, Ordering::Relaxed) + n;
        if self.high > 0 && used > self.high && !self.raised.load(Ordering::Relaxed) {
            self.blocked.send_if_modified(|blocked| {
                let changed = !*blocked;
                if changed {
                    tracing::warn!(used, high = self.high, "memory alarm: blocking publishers");
                    *blocked = true;
                    self.raised.store(true, Ordering::Relaxed);
                }
                changed
            });
        }
    }

    /// A queue let go of a message of `body` bytes.
    pub fn sub(&self, body: usize) {
        let n = cost(body);
        let used = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            })
            .map_or(0, |prev| prev.saturating_sub(n));
        if used <= self.high && self.raised.load(Ordering::Relaxed) {
            self.blocked.send_if_modified(|blocked| {
                let changed = *blocked;
                if changed {
                    tracing::info!(
                        used,
                        high = self.high,
                        "memory alarm cleared: unblocking publishers"
                    );
                    *blocked = false;
                    self.raised.store(false, Ordering::Relaxed);
                }
                changed
            });
        }
    }

    /// Whether publishers should wait now.
    pub fn is_blocked(&self) -> bool {
        self.raised.load(Ordering::Relaxed)
    }

    /// Follows the alarm state.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.blocked.subscribe()
    }

    /// Bytes counted now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

fn cost(body: usize) -> u64 {
    u64::try_from(body)
        .unwrap_or(u64::MAX)
        .saturating_add(MESSAGE_OVERHEAD)
}

/// The default watermark: 40% of physical memory, as RabbitMQ's default
/// `vm_memory_high_watermark`; 1 GiB where physical memory cannot be read.
pub fn default_high_watermark() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb * 1024)
        });
    total.map_or(1 << 30, |t| t / 10 * 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_rises_above_and_clears_at_the_watermark() {
        let g = MemoryGauge::new(10_000);
        let rx = g.subscribe();
        g.add(5_000);
        assert!(!g.is_blocked());
        g.add(5_000);
        assert!(g.is_blocked());
        assert!(rx.has_changed().unwrap_or(false));
        g.sub(5_000);
        assert!(!g.is_blocked(), "below the watermark again");
        assert_eq!(g.used(), 5_000 + MESSAGE_OVERHEAD);
        let never = MemoryGauge::new(0);
        never.add(1 << 40);
        assert!(!never.is_blocked());
    }
}
