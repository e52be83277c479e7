//! The management API over HTTP (blocking: one request at a time is all a CLI needs), with
//! failures sorted into what the exit code tells scripts: refused, unreachable, not
//! authenticated.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use serde_json::Value;

/// Why a command failed; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments or local I/O (exit 1).
    Usage(String),
    /// The broker answered with an error (exit 1).
    Api {
        /// HTTP status.
        status: u16,
        /// The broker's reason.
        reason: String,
    },
    /// The broker refused an AMQP operation of `tail` (exit 1).
    Amqp {
        /// AMQP reply code (404 NOT_FOUND, 403 ACCESS_REFUSED, ...).
        code: u16,
        /// The broker's reply text.
        reason: String,
    },
    /// No answer from the broker (exit 2).
    Unreachable {
        /// Base URL tried.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// Credentials refused (exit 3).
    Auth {
        /// User name tried.
        user: String,
        /// Base URL.
        url: String,
    },
}

impl Failure {
    /// The process exit code (documented in `--help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) | Failure::Api { .. } | Failure::Amqp { .. } => 1,
            Failure::Unreachable { .. } => 2,
            Failure::Auth { .. } => 3,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) => write!(f, "{m}"),
            Failure::Api { status, reason } => write!(f, "{reason} (HTTP {status})"),
            Failure::Amqp { code, reason } => write!(f, "{reason} (AMQP {code})"),
            Failure::Unreachable { url, detail } => {
                write!(f, "cannot reach the broker at {url}: {detail}")
            }
            Failure::Auth { user, url } => write!(
                f,
                "authentication failed for user '{user}' at {url} (check --user/--password or BROKERCTL_USER/BROKERCTL_PASSWORD)"
            ),
        }
    }
}

/// Percent-encodes one path segment (vhost, queue, exchange, connection names).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How HTTPS servers are trusted (ignored for `http://` URLs).
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file with CA certificates trusted in addition to the built-in roots: brokers
    /// usually present certificates from a private CA.
    pub cacert: Option<PathBuf>,
    /// Accept any certificate (testing only: a man in the middle would go unnoticed).
    pub insecure: bool,
}

impl TlsOptions {
    /// The PEM text of `--cacert`, read once: `tail` hands it to its AMQPS connection too.
    pub fn cacert_pem(&self) -> Result<Option<Vec<u8>>, Failure> {
        match &self.cacert {
            None => Ok(None),
            Some(path) => std::fs::read(path).map(Some).map_err(|e| {
                Failure::Usage(format!("cannot read --cacert {}: {e}", path.display()))
            }),
        }
    }
}

/// A connection to one broker's API.
pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
    user: String,
    password: String,
}

impl Client {
    /// A client for the API at `url`.
    pub fn new(url: &str, user: &str, password: &str, tls: &TlsOptions) -> Result<Client, Failure> {
        let base = url.trim_end_matches('/').to_string();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(Failure::Usage(format!(
                "--url must start with http:// or https://, got '{url}'"
            )));
        }
        let mut builder = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60));
        if let Some(pem) = tls.cacert_pem()? {
            let name = tls
                .cacert
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Failure::Usage(format!("--cacert {name}: not PEM certificates: {e}"))
            })?;
            if certs.is_empty() {
                return Err(Failure::Usage(format!(
                    "--cacert {name}: no PEM certificate in the file"
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if tls.insecure {
            if base.starts_with("https://") {
                eprintln!(
                    "brokerctl: warning: --insecure: the broker's certificate is not checked"
                );
            }
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| Failure::Usage(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            base,
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    fn send(&self, req: RequestBuilder) -> Result<Response, Failure> {
        let resp = req
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .map_err(|e| Failure::Unreachable {
                url: self.base.clone(),
                detail: explain(&e),
            })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(Failure::Auth {
                user: self.user.clone(),
                url: self.base.clone(),
            });
        }
        if status.is_client_error() || status.is_server_error() {
            let text = resp.text().unwrap_or_default();
            let reason = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["reason"].as_str().map(str::to_string))
                .unwrap_or_else(|| {
                    if text.is_empty() {
                        status.to_string()
                    } else {
                        text
                    }
                });
            return Err(Failure::Api {
                status: status.as_u16(),
                reason,
            });
        }
        Ok(resp)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn json(resp: Response) -> Result<Value, Failure> {
        let text = resp.text().map_err(|e| Failure::Api {
            status: 200,
            reason: format!("cannot read the answer: {e}"),
        })?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| Failure::Api {
            status: 200,
            reason: format!("the answer is not JSON: {e}"),
        })
    }

    /// GET, answer as JSON.
    pub fn get(&self, path: &str) -> Result<Value, Failure> {
        Client::json(self.send(self.http.get(self.url(path)))?)
    }

    /// PUT a JSON body; true when the object was created (201), false when it existed (204).
    pub fn put(&self, path: &str, body: &Value) -> Result<bool, Failure> {
        let resp = self.send(self.http.put(self.url(path)).json(body))?;
        Ok(resp.status() == StatusCode::CREATED)
    }

    /// POST a JSON body, ignoring the answer's body.
    pub fn post(&self, path: &str, body: &Value) -> Result<(), Failure> {
        self.send(self.http.post(self.url(path)).json(body))?;
        Ok(())
    }

    /// POST a JSON body, answer as JSON.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        Client::json(self.send(self.http.post(self.url(path)).json(body))?)
    }

    /// DELETE, with an optional extra header (X-Reason).
    pub fn delete(&self, path: &str, header: Option<(&str, &str)>) -> Result<(), Failure> {
        let mut req = self.http.delete(self.url(path));
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        self.send(req)?;
        Ok(())
    }
}

/// [`root_cause`], with a hint when the broker's certificate was not trusted: the usual
/// cause is a private CA that `--cacert` must name.
fn explain(e: &reqwest::Error) -> String {
    let cause = root_cause(e);
    if cause.contains("certificate") {
        format!("TLS certificate not trusted ({cause}); give its CA with --cacert FILE")
    } else {
        cause
    }
}

/// The innermost error message ("Connection refused (os error 111)"), which is what an
/// operator needs; reqwest's outer messages only repeat the URL.
fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    let text = source.to_string();
    if e.is_timeout() {
        format!("timed out ({text})")
    } else {
        text
    }
}
