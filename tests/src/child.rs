//! The broker as a child process, for tests that need to kill it.
//!
//! ```text
//!   spawn ──► Running ──kill9()/terminate()──► Stopped ──restart()──► Running
//! ```
//! The child is the `test-broker` binary of this crate (a wrapper around
//! `broker::cli::run`). Its stderr is read by one thread per child: the
//! thread reports the `AMQP listener ready ... addr=IP:PORT` and
//! `MQTT listener ready ... addr=IP:PORT` lines over a channel and forwards
//! every line to the test's stderr (prefixed), so the broker's log shows up
//! next to a failing test's output.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// How long a child broker may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A broker child process on an ephemeral port with a given data directory.
pub struct ChildBroker {
    exe: PathBuf,
    data_dir: PathBuf,
    child: Option<Child>,
    addr: SocketAddr,
    mqtt_addr: SocketAddr,
    forwarder: Option<JoinHandle<()>>,
    /// Incremented per start, to tell the log lines of successive runs apart.
    generation: u32,
}

impl ChildBroker {
    /// Starts `exe --data-dir DATA_DIR` with every listener on an ephemeral
    /// loopback port and waits for the AMQP and MQTT ready lines. Blocks the
    /// calling thread (up to 30 s).
    pub fn spawn(
        exe: impl Into<PathBuf>,
        data_dir: impl Into<PathBuf>,
    ) -> anyhow::Result<ChildBroker> {
        let mut broker = ChildBroker {
            exe: exe.into(),
            data_dir: data_dir.into(),
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            mqtt_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            forwarder: None,
            generation: 0,
        };
        broker.start()?;
        Ok(broker)
    }

    /// Address of the AMQP listener of the current run.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Address of the MQTT listener of the current run.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// `amqp://guest:guest@IP:PORT/%2f` of the current run.
    pub fn amqp_uri(&self) -> String {
        crate::amqp_uri(self.addr)
    }

    /// The data directory shared by all runs.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// OS process id of the current run, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILLs the broker and reaps it: no shutdown code runs, which is the
    /// point of a crash test.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL on Unix.
            child.kill().context("SIGKILL the broker")?;
            child.wait().context("reap the killed broker")?;
        }
        self.join_forwarder();
        Ok(())
    }

    /// Sends SIGTERM and waits for the broker to exit on its own; returns its
    /// exit status. Fails if it does not exit within 30 s (then it is killed).
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("broker is not running");
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("run `kill -TERM`")?;
        if !status.success() {
            bail!("`kill -TERM {}` failed: {status}", child.id());
        }
        // Wait on a helper thread so the wait can have a deadline without polling.
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let result = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(status) => status.context("wait for the broker"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                let _ = rx.recv();
                Err(anyhow::anyhow!(
                    "broker did not exit within {READY_TIMEOUT:?} of SIGTERM"
                ))
            }
        };
        self.join_forwarder();
        result
    }

    /// Starts the broker again on the same data directory (after
    /// [`ChildBroker::kill9`] or [`ChildBroker::terminate`]); the port changes.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("broker is still running; kill or terminate it first");
        }
        self.start()
    }

    fn start(&mut self) -> anyhow::Result<()> {
        self.generation += 1;
        let mut child = Command::new(&self.exe)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--amqp-listen", "127.0.0.1:0"])
            .args(["--mqtt-listen", "127.0.0.1:0"])
            .args(["--mqtt-ws-listen", "127.0.0.1:0"])
            .args(["--http-listen", "127.0.0.1:0"])
            // The ready line is logged at INFO; do not let the test's
            // environment filter it out.
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawn {}", self.exe.display()))?;
        let stderr = child.stderr.take().context("child stderr is piped")?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let tag = format!("broker#{} pid {}", self.generation, child.id());
        let forwarder = std::thread::spawn(move || forward_stderr(stderr, &tag, ready_tx));
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        let mut ready = (None, None);
        let outcome = loop {
            if let (Some(amqp), Some(mqtt)) = ready {
                break Ok((amqp, mqtt));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match ready_rx.recv_timeout(left) {
                Ok(Listener::Amqp(addr)) => ready.0 = Some(addr),
                Ok(Listener::Mqtt(addr)) => ready.1 = Some(addr),
                Err(e) => break Err(e),
            }
        };
        match outcome {
            Ok((addr, mqtt_addr)) => {
                self.addr = addr;
                self.mqtt_addr = mqtt_addr;
                self.child = Some(child);
                self.forwarder = Some(forwarder);
                Ok(())
            }
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                let _ = forwarder.join();
                bail!(
                    "broker did not report `AMQP listener ready addr=...` and `MQTT listener ready addr=...` ({e}); exit: {status:?}"
                )
            }
        }
    }

    fn join_forwarder(&mut self) {
        if let Some(handle) = self.forwarder.take() {
            // The pipe closes when the process dies, so this returns promptly.
            let _ = handle.join();
        }
    }
}

impl Drop for ChildBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A listener's ready line.
enum Listener {
    Amqp(SocketAddr),
    Mqtt(SocketAddr),
}

/// Reads the child's stderr line by line until EOF: sends the listener
/// addresses, and echoes every line to our stderr.
fn forward_stderr(stderr: impl std::io::Read, tag: &str, ready: mpsc::Sender<Listener>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let line = strip_ansi(&line);
        if let Some(addr) = parse_addr(&line) {
            if line.contains("AMQP listener ready") {
                let _ = ready.send(Listener::Amqp(addr));
            } else if line.contains("MQTT listener ready") {
                let _ = ready.send(Listener::Mqtt(addr));
            }
        }
        eprintln!("[{tag}] {line}");
    }
}

/// The `addr=IP:PORT` field of a log line.
pub fn parse_addr(line: &str) -> Option<SocketAddr> {
    let start = line.find("addr=")? + "addr=".len();
    let rest = &line[start..];
    let value = rest.split_whitespace().next()?;
    value.trim_matches(|c| c == '"' || c == ',').parse().ok()
}

/// Removes ANSI escape sequences (`ESC [ ... letter`), in case the broker
/// colours its log even though stderr is a pipe.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_parses_with_and_without_colours() {
        let plain = "2025-01-01T00:00:00Z  INFO broker: AMQP listener ready addr=127.0.0.1:41833";
        assert_eq!(parse_addr(plain), Some("127.0.0.1:41833".parse().unwrap()));
        let coloured = "\u{1b}[2m2025\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m broker: AMQP listener ready \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:5672";
        let stripped = strip_ansi(coloured);
        assert_eq!(
            parse_addr(&stripped),
            Some("127.0.0.1:5672".parse().unwrap())
        );
        assert_eq!(parse_addr("AMQP listener ready"), None);
    }
}
