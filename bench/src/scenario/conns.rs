//! `loadgen conns`: open N idle connections at a given rate, hold them, and
//! read the broker's VmRSS before and after (`--pid`).
//!
//! Each connection takes one descriptor here and one in the broker, and one
//! ephemeral port of its source address: past ~28k connections on loopback,
//! `--source-addrs` spreads them over several (see [`crate::dial`]).

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::amqp::{AmqpConn, Login};
use crate::cli::{ConnOpts, Protocol};
use crate::error::{Error, Result, io};
use crate::mqtt::{ConnectOpts, MqttConn};
use crate::report::{ConnReport, Report};
use crate::scenario::run_id;

/// Descriptors beyond one per connection (runtime, stdio, /proc reads).
const NOFILE_MARGIN: u64 = 256;

/// How long one handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection kept open until the measurement is done.
#[derive(Debug)]
enum Held {
    /// AMQP, channel 1 open.
    Amqp(#[allow(dead_code)] AmqpConn),
    /// MQTT, after CONNACK.
    Mqtt(#[allow(dead_code)] MqttConn),
}

/// VmRSS of `pid` in KiB, from /proc/PID/status.
pub fn vm_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(io(format!("read /proc/{pid}/status")))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Protocol(format!("no VmRSS in /proc/{pid}/status")))
}

/// Kernel TCP memory in pages (`mem` of the TCP line of /proc/net/sockstat).
pub fn tcp_mem_pages() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = s.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == "mem" {
            return words.next()?.parse().ok();
        }
    }
    None
}

async fn open(opts: &ConnOpts, run: u32, i: u32) -> Result<Held> {
    let source = opts.source_addrs.as_ref().map(|a| a.pick(i));
    match opts.protocol {
        Protocol::Amqp => {
            let login = Login {
                user: opts.user.clone().unwrap_or_else(|| "guest".into()),
                password: opts.password.clone().unwrap_or_else(|| "guest".into()),
                vhost: "/".into(),
            };
            Ok(Held::Amqp(
                AmqpConn::connect_from(&opts.addr, source, &login).await?,
            ))
        }
        Protocol::Mqtt => {
            let c = ConnectOpts {
                version: protocol_mqtt::ProtocolVersion::V311,
                client_id: format!("loadgen-{run:08x}-idle-{i}"),
                clean: true,
                user: opts.user.clone(),
                password: opts.password.clone(),
            };
            Ok(Held::Mqtt(
                MqttConn::connect_from(&opts.addr, source, &c).await?,
            ))
        }
    }
}

/// Runs the scenario and reports.
pub async fn run(opts: &ConnOpts) -> Result<Report> {
    // One descriptor per connection plus the runtime's own; the broker side
    // is the broker's business. The soft limit can only rise to the hard
    // one: then only as many connections as it leaves room for are tried (the
    // rest count as failed), so the margin stays free for reading /proc at
    // the end instead of the whole run failing there with EMFILE.
    let wanted = u64::from(opts.count) + NOFILE_MARGIN;
    let nofile_limit = rlimit::increase_nofile_limit(wanted).ok();
    let mut tried = opts.count;
    let mut first_error = None;
    if let Some(limit) = nofile_limit.filter(|&l| l < wanted) {
        tried = u32::try_from(limit.saturating_sub(NOFILE_MARGIN)).unwrap_or(u32::MAX);
        let msg = format!(
            "loadgen's open file limit {limit} (the hard limit) leaves room for {tried} of {} connections; \
             raise it (ulimit -Hn, as root) for more",
            opts.count
        );
        eprintln!("loadgen: {msg}");
        first_error = Some(msg);
    }
    let rss_before = opts.pid.map(vm_rss_kib).transpose()?;
    let tcp_before = tcp_mem_pages();
    let run = run_id();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    let rate = f64::from(opts.rate.max(1));
    let mut last_print = Instant::now();
    for i in 0..tried {
        let due = start + Duration::from_secs_f64(f64::from(i) / rate);
        tokio::time::sleep_until(due.into()).await;
        let o = opts.clone();
        tasks.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, open(&o, run, i)).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout("a handshake".into())),
            }
        });
        if !opts.quiet && last_print.elapsed() >= Duration::from_secs(1) {
            eprintln!(
                "[{:>4}s] started {} connections",
                start.elapsed().as_secs(),
                i + 1
            );
            last_print = Instant::now();
        }
    }
    let mut held = Vec::with_capacity(tried as usize);
    let mut failed = opts.count - tried;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(c)) => held.push(c),
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let open_secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(opts.hold.max(0.0))).await;
    // Not fatal: the connections were opened, their count is still worth
    // reporting.
    let rss_after = match opts.pid.map(vm_rss_kib).transpose() {
        Ok(r) => r,
        Err(e) => {
            first_error.get_or_insert_with(|| e.to_string());
            None
        }
    };
    let tcp_after = tcp_mem_pages();
    let succeeded = held.len() as u32;
    let per_conn_kib = match (rss_before, rss_after) {
        (Some(b), Some(a)) if succeeded > 0 => Some((a as f64 - b as f64) / f64::from(succeeded)),
        _ => None,
    };
    drop(held);
    let protocol = match opts.protocol {
        Protocol::Amqp => "amqp",
        Protocol::Mqtt => "mqtt",
    };
    Ok(Report {
        scenario: format!(
            "conns protocol={protocol} count={} rate={}/s hold={}s",
            opts.count, opts.rate, opts.hold
        ),
        conns: Some(ConnReport {
            protocol: protocol.into(),
            attempted: opts.count,
            succeeded,
            failed,
            open_secs,
            rss_before_kib: rss_before,
            rss_after_kib: rss_after,
            per_conn_kib,
            tcp_mem_pages_before: tcp_before,
            tcp_mem_pages_after: tcp_after,
            nofile_limit,
            source_addrs: opts.source_addrs.as_ref().map(ToString::to_string),
            first_error,
        }),
        ..Report::default()
    })
}
