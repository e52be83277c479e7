//! Scenario runners and what they share: pacing, counters, the progress
//! line, draining, and turning producer results and consumer trackers into
//! a [`Report`].
//!
//! Every runner follows the same shape: consumers connect and subscribe
//! first, then producers start together; when they are done the runner
//! waits until every expected delivery arrived (or nothing arrived for
//! `--drain-timeout`), stops the consumers and merges their trackers.

pub mod amqp;
pub mod conns;
mod consumer;
pub mod mqtt;
mod producer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cli::CommonOpts;
use crate::report::{Latency, Report};
use crate::stamp::now_ns;
use crate::verify::{Tracker, merge_group, new_histogram};

/// Flush a producer's buffer once it holds this many bytes.
pub(crate) const FLUSH_AT: usize = 32 * 1024;

/// Keep at least this much free space in a read buffer before reading.
pub(crate) const READ_SPACE: usize = 64 * 1024;

/// Live counters for the progress line and for draining.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages written by producers.
    pub sent: AtomicU64,
    /// Messages confirmed to producers.
    pub confirmed: AtomicU64,
    /// Deliveries counted by consumers.
    pub received: AtomicU64,
}

impl Counters {
    fn get(&self) -> (u64, u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.confirmed.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// Prints `[  3s] sent ... received ...` to stderr once per second until
/// the handle is aborted.
pub(crate) fn spawn_progress(
    counters: Arc<Counters>,
    quiet: bool,
) -> Option<tokio::task::JoinHandle<()>> {
    if quiet {
        return None;
    }
    Some(tokio::spawn(async move {
        let start = Instant::now();
        let mut prev = counters.get();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = counters.get();
            eprintln!(
                "[{:>4}s] sent {:>10} ({:>8}/s)  confirmed {:>10}  received {:>10} ({:>8}/s)",
                start.elapsed().as_secs(),
                now.0,
                now.0 - prev.0,
                now.1,
                now.2,
                now.2 - prev.2
            );
            prev = now;
        }
    }))
}

/// A run id that differs between runs (messages of other runs are
/// recognised and ignored).
pub fn run_id() -> u32 {
    let x = now_ns() ^ (u64::from(std::process::id()) << 20);
    (x ^ (x >> 32)) as u32
}

/// What a producer should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Send message i now.
    Go,
    /// Rate limit: wait until this Unix-ns time.
    WaitUntil(u64),
    /// Count reached or time is up.
    Stop,
}

/// When producers send: count or deadline, and an optional rate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    start_ns: u64,
    count: Option<u64>,
    deadline_ns: u64,
    rate: Option<u64>,
}

impl Plan {
    pub(crate) fn new(common: &CommonOpts) -> Plan {
        let start_ns = now_ns();
        Plan {
            start_ns,
            count: common.count,
            deadline_ns: if common.count.is_some() {
                u64::MAX
            } else {
                start_ns + (common.duration.max(0.0) * 1e9) as u64
            },
            rate: common.rate.filter(|&r| r > 0),
        }
    }

    /// Decides about message `i` at time `now`.
    pub(crate) fn next(&self, i: u64, now: u64) -> Next {
        if self.count.is_some_and(|c| i >= c) || now >= self.deadline_ns {
            return Next::Stop;
        }
        if let Some(rate) = self.rate {
            let due = self.start_ns + (u128::from(i) * 1_000_000_000 / u128::from(rate)) as u64;
            if due > now {
                return Next::WaitUntil(due);
            }
        }
        Next::Go
    }
}

/// Sleeps until Unix-ns time `until`.
pub(crate) async fn sleep_until_ns(until: u64) {
    let now = now_ns();
    if until > now {
        tokio::time::sleep(Duration::from_nanos(until - now)).await;
    }
}

/// Waits until `expected` deliveries arrived, nothing arrived for `idle`,
/// or `max` has passed.
pub(crate) async fn wait_drained(
    counters: &Counters,
    expected: Option<u64>,
    idle: Duration,
    max: Duration,
) {
    let mut last = counters.received.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut last_change = start;
    loop {
        if start.elapsed() >= max {
            return;
        }
        let now = counters.received.load(Ordering::Relaxed);
        if expected.is_some_and(|e| now >= e) {
            return;
        }
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= idle {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What one producer did.
#[derive(Clone, Copy, Debug)]
pub struct ProducerResult {
    /// Its id (the stamp's producer field).
    pub id: u32,
    /// Messages written.
    pub sent: u64,
    /// Messages confirmed.
    pub confirmed: u64,
    /// Messages nacked.
    pub nacked: u64,
    /// When it finished (confirms included).
    pub end: Instant,
}

/// Consumers that see the same stream of messages, and the producers that
/// feed it.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub consumers: Vec<usize>,
    pub producers: Vec<u32>,
}

/// Everything the runners collected, ready to be reported.
pub(crate) struct Outcome {
    pub scenario: String,
    pub start: Instant,
    pub producers: Vec<ProducerResult>,
    pub confirms: bool,
    pub trackers: Vec<Tracker>,
    pub groups: Vec<Group>,
    pub expect: Option<u64>,
}

impl Outcome {
    pub(crate) fn report(self) -> Report {
        let secs = |end: Instant| end.saturating_duration_since(self.start).as_secs_f64();
        let sent: u64 = self.producers.iter().map(|p| p.sent).sum();
        let publish_secs = self
            .producers
            .iter()
            .map(|p| secs(p.end))
            .fold(0.0, f64::max);
        let mut report = Report {
            scenario: self.scenario,
            sent,
            confirmed: self
                .confirms
                .then(|| self.producers.iter().map(|p| p.confirmed).sum()),
            nacked: self.producers.iter().map(|p| p.nacked).sum(),
            publish_secs,
            send_rate: rate(sent, publish_secs),
            per_consumer: self.trackers.iter().map(|t| t.received).collect(),
            load_avg_1m: crate::report::load_average(),
            ..Report::default()
        };
        if self.trackers.is_empty() {
            return report;
        }
        let sent_by: Vec<(u32, u64)> = self.producers.iter().map(|p| (p.id, p.sent)).collect();
        let mut balance: Option<f64> = None;
        for g in &self.groups {
            let members: Vec<&Tracker> = g.consumers.iter().map(|&i| &self.trackers[i]).collect();
            let sent: Vec<(u32, u64)> = sent_by
                .iter()
                .copied()
                .filter(|(id, _)| g.producers.contains(id))
                .collect();
            let r = merge_group(&members, &sent, self.expect);
            report.expected += r.expected;
            report.lost += r.lost;
            report.duplicated += r.duplicated;
            if members.len() > 1 {
                let mean =
                    members.iter().map(|t| t.received as f64).sum::<f64>() / members.len() as f64;
                let dev = members
                    .iter()
                    .map(|t| (t.received as f64 - mean).abs() / mean.max(1.0) * 100.0)
                    .fold(0.0, f64::max);
                balance = Some(balance.unwrap_or(0.0).max(dev));
            }
        }
        report.balance_pct = balance;
        let mut hist = new_histogram();
        for t in &self.trackers {
            report.received += t.received;
            report.out_of_order += t.out_of_order;
            report.foreign += t.foreign;
            hist.add(&t.latency).ok();
        }
        let bytes: u64 = self.trackers.iter().map(|t| t.bytes).sum();
        let last = self.trackers.iter().filter_map(|t| t.last).max();
        report.elapsed_secs = last.map_or(0.0, secs);
        report.recv_rate = rate(report.received, report.elapsed_secs);
        report.recv_mb_s = rate(bytes, report.elapsed_secs) / 1e6;
        report.latency_us = Latency::of(&hist);
        report
    }
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_counts_and_paces() {
        let p = Plan {
            start_ns: 1_000,
            count: Some(3),
            deadline_ns: u64::MAX,
            rate: Some(1000),
        };
        assert_eq!(p.next(0, 1_000), Next::Go);
        assert_eq!(p.next(1, 1_000), Next::WaitUntil(1_001_000));
        assert_eq!(p.next(1, 2_000_000), Next::Go);
        assert_eq!(p.next(3, 2_000_000), Next::Stop);
        let d = Plan {
            start_ns: 0,
            count: None,
            deadline_ns: 10,
            rate: None,
        };
        assert_eq!(d.next(5, 9), Next::Go);
        assert_eq!(d.next(5, 10), Next::Stop);
    }
}
