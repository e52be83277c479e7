//! The report a scenario ends with: text for people, JSON (`--json`) for
//! scripts.

use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// Percentiles of `h`; `None` if it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Latency> {
        (!h.is_empty()).then(|| Latency {
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        })
    }
}

/// Result of the idle-connection scenario.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConnReport {
    /// `amqp` or `mqtt`.
    pub protocol: String,
    /// Connections tried.
    pub attempted: u32,
    /// Connections that completed the handshake.
    pub succeeded: u32,
    /// Connections that failed.
    pub failed: u32,
    /// Seconds it took to open them.
    pub open_secs: f64,
    /// Broker VmRSS before, KiB (with --pid).
    pub rss_before_kib: Option<u64>,
    /// Broker VmRSS after, KiB (with --pid).
    pub rss_after_kib: Option<u64>,
    /// (after - before) / succeeded, KiB.
    pub per_conn_kib: Option<f64>,
    /// Kernel TCP memory (/proc/net/sockstat "mem", pages) before.
    pub tcp_mem_pages_before: Option<u64>,
    /// Kernel TCP memory after.
    pub tcp_mem_pages_after: Option<u64>,
    /// The generator's own open-file limit after raising it (`None`: could
    /// not be read); below the count + a margin, connections fail here, not
    /// in the broker.
    pub nofile_limit: Option<u64>,
    /// `--source-addrs` as given (first..last (count)), if given.
    pub source_addrs: Option<String>,
    /// The first error, if any failed.
    pub first_error: Option<String>,
}

/// Everything a message scenario measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// One-line description of the scenario and its options.
    pub scenario: String,
    /// Messages published (written to the socket).
    pub sent: u64,
    /// Messages confirmed by the broker (confirms / QoS 1-2 acks), if used.
    pub confirmed: Option<u64>,
    /// Messages the broker refused (basic.nack).
    pub nacked: u64,
    /// Seconds from the start until the last producer finished (confirms
    /// included).
    pub publish_secs: f64,
    /// sent / publish_secs.
    pub send_rate: f64,
    /// Deliveries expected (sent × subscribers for fan-out).
    pub expected: u64,
    /// Deliveries of this run.
    pub received: u64,
    /// Expected but not received.
    pub lost: u64,
    /// Received more than once.
    pub duplicated: u64,
    /// Received after a later message of the same producer (per consumer).
    pub out_of_order: u64,
    /// Deliveries of other runs or without a stamp (ignored).
    pub foreign: u64,
    /// Deliveries per consumer.
    pub per_consumer: Vec<u64>,
    /// Largest deviation of a consumer from its group's mean, percent
    /// (groups with competing consumers only).
    pub balance_pct: Option<f64>,
    /// Seconds from the start until the last delivery.
    pub elapsed_secs: f64,
    /// received / elapsed_secs.
    pub recv_rate: f64,
    /// Body megabytes (10^6) delivered per second.
    pub recv_mb_s: f64,
    /// End-to-end latency (send stamp → consumer read), µs.
    pub latency_us: Option<Latency>,
    /// Idle-connection results (`conns` only).
    pub conns: Option<ConnReport>,
    /// The machine's 1-minute load average when the run ended (`/proc/loadavg`): the generator
    /// shares the cores with the broker and, here, with other work, and tail latency follows the
    /// load (scheduling delays of several ms), so a percentile means little without it.
    pub load_avg_1m: Option<f64>,
}

impl Report {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The 1-minute load average, or `None` where `/proc/loadavg` cannot be read (not Linux).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| parse_load_average(&s))
}

fn parse_load_average(s: &str) -> Option<f64> {
    s.split_whitespace().next()?.parse().ok()
}

fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario    {}", self.scenario)?;
        if let Some(c) = &self.conns {
            writeln!(
                f,
                "connections {} of {} opened ({} failed) in {:.1} s",
                c.succeeded, c.attempted, c.failed, c.open_secs
            )?;
            if let (Some(b), Some(a)) = (c.rss_before_kib, c.rss_after_kib) {
                writeln!(
                    f,
                    "broker RSS  {b} KiB -> {a} KiB: {:.2} KiB per connection",
                    c.per_conn_kib.unwrap_or(0.0)
                )?;
            }
            if let (Some(b), Some(a)) = (c.tcp_mem_pages_before, c.tcp_mem_pages_after) {
                writeln!(f, "kernel TCP  {b} -> {a} pages (/proc/net/sockstat)")?;
            }
            if let Some(a) = &c.source_addrs {
                writeln!(f, "from        {a}")?;
            }
            if let Some(l) = c.nofile_limit {
                writeln!(f, "fd limit    {l} (loadgen's own)")?;
            }
            if let Some(e) = &c.first_error {
                writeln!(f, "first error {e}")?;
            }
            return Ok(());
        }
        write!(
            f,
            "published   {} msgs in {:.2} s = {} msg/s",
            thousands(self.sent as f64),
            self.publish_secs,
            thousands(self.send_rate)
        )?;
        if let Some(c) = self.confirmed {
            write!(
                f,
                " ({} confirmed, {} nacked)",
                thousands(c as f64),
                self.nacked
            )?;
        }
        writeln!(f)?;
        if self.per_consumer.is_empty() {
            return writeln!(f, "consumers   none (delivery not verified)");
        }
        writeln!(
            f,
            "delivered   {} msgs in {:.2} s = {} msg/s, {:.1} MB/s",
            thousands(self.received as f64),
            self.elapsed_secs,
            thousands(self.recv_rate),
            self.recv_mb_s
        )?;
        if let Some(l) = &self.latency_us {
            writeln!(
                f,
                "latency     p50 {} µs  p99 {} µs  p99.9 {} µs  max {} µs",
                l.p50, l.p99, l.p999, l.max
            )?;
        }
        writeln!(
            f,
            "verified    expected {}  lost {}  duplicated {}  out of order {}  foreign {}",
            self.expected, self.lost, self.duplicated, self.out_of_order, self.foreign
        )?;
        write!(f, "per consumer {:?}", self.per_consumer)?;
        if let Some(b) = self.balance_pct {
            write!(f, " (max deviation from the mean {b:.1}%)")?;
        }
        writeln!(f)?;
        if let Some(l) = self.load_avg_1m {
            writeln!(
                f,
                "machine     load average {l:.2} (1 min, at the end of the run)"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_average_parses_the_first_field() {
        assert_eq!(
            parse_load_average("1.62 2.62 3.45 2/180 12345\n"),
            Some(1.62)
        );
        assert_eq!(parse_load_average(""), None);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234567.4), "1,234,567");
    }
}
