//! `brokerctl`: the broker's command-line client. It talks only to the management HTTP API
//! (the same one scripts and dashboards use), so anything it can do can also be done with
//! curl, and it needs no access to the broker's host or data directory.
//! The exception is `tail`, which follows messages live and so consumes over AMQP.
//!
//! # Layout
//! - `main.rs`: the command line (clap), dispatch, exit codes; queues, exchanges, bindings,
//!   messages, connections and definitions.
//! - `access.rs`: users, permissions and vhosts.
//! - `tail.rs`: `tail`, an AMQP consumer on a temporary queue.
//! - `client.rs`: the HTTP client: URLs, credentials, TLS, error classification.
//! - `output.rs`: tables and JSON output.

mod access;
mod client;
mod output;
mod tail;

use std::io::Read as _;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use access::{Add, Change, Clear, Set};
use client::{Client, Failure, TlsOptions, segment};
use output::{Format, outln, print_list, print_object};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  usage error, or the broker refused the request (HTTP 4xx/5xx, or an AMQP error for tail;
     its reason is printed)
  2  the broker could not be reached (not running, wrong --url or --amqp-url, or its TLS
     certificate is not trusted: see --cacert)
  3  authentication failed (wrong --user/--password)";

/// Operate a running broker through its management HTTP API.
#[derive(Debug, Parser)]
#[command(
    name = "brokerctl",
    version,
    after_help = EXIT_CODES,
    long_about = "Operate a running broker through its management HTTP API (HTTP or HTTPS).\n\n\
    Examples:\n  brokerctl status\n  brokerctl --url https://broker:15672 --cacert ca.pem list queues\n  \
    BROKERCTL_USER=admin BROKERCTL_PASSWORD=... brokerctl list connections --format json\n  \
    brokerctl tail amq.topic --routing-key 'sensors.#'"
)]
struct Cli {
    /// Base URL of the broker's management API (https:// when the broker runs with
    /// --http-tls).
    #[arg(
        long,
        env = "BROKERCTL_URL",
        default_value = "http://127.0.0.1:15672",
        global = true
    )]
    url: String,
    /// User name for the API (HTTP basic authentication) and for `tail`'s AMQP login.
    #[arg(long, env = "BROKERCTL_USER", default_value = "guest", global = true)]
    user: String,
    /// Password for the API (HTTP basic authentication) and for `tail`'s AMQP login.
    #[arg(
        long,
        env = "BROKERCTL_PASSWORD",
        default_value = "guest",
        hide_default_value = true,
        global = true
    )]
    password: String,
    /// PEM file of CA certificates to trust for an https:// --url (and an amqps://
    /// --amqp-url), in addition to the built-in web roots; for brokers with private CAs.
    #[arg(long, env = "BROKERCTL_CACERT", value_name = "FILE", global = true)]
    cacert: Option<std::path::PathBuf>,
    /// Do not check the broker's TLS certificate at all (testing only: anyone between
    /// brokerctl and the broker could read the password). Warns on stderr.
    #[arg(long, global = true)]
    insecure: bool,
    /// Vhost of the queues, exchanges, bindings, messages and permissions a command works
    /// on (default "/"). With `list`, only that vhost's objects; without, every vhost's.
    #[arg(long, env = "BROKERCTL_VHOST", global = true)]
    vhost: Option<String>,
    /// Output format: aligned tables for people, JSON (the API's own field names) for scripts.
    #[arg(long, value_enum, default_value = "table", global = true)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Broker version, listeners, object totals and queued messages.
    #[command(after_help = EXIT_CODES)]
    Status,
    /// List objects of one kind.
    #[command(
        after_help = EXIT_CODES,
        long_about = "List objects of one kind: a table, or the API's JSON with --format json.\n\n\
        sessions and retained are MQTT's: client sessions (connected or kept for a \
        reconnect, with their subscriptions and queued messages) and retained messages.\n\n\
        Examples:\n  brokerctl list queues\n  brokerctl list sessions --format json | jq '.[] | \
        select(.connected | not)'"
    )]
    List {
        /// What to list.
        #[arg(value_enum)]
        what: ListKind,
    },
    /// Declare a queue, an exchange or a binding (an equivalent existing one is fine).
    #[command(subcommand, after_help = EXIT_CODES)]
    Declare(Declare),
    /// Delete a queue, an exchange, a binding, a user, a vhost, an MQTT session or a retained
    /// message.
    #[command(subcommand, after_help = EXIT_CODES)]
    Delete(Delete),
    /// Remove every ready message from a queue.
    #[command(subcommand, after_help = EXIT_CODES)]
    Purge(Purge),
    /// Publish one message to an exchange (body from --body or standard input).
    #[command(after_help = EXIT_CODES)]
    Publish(PublishArgs),
    /// Show the first messages of a queue without consuming them (--consume takes them out).
    #[command(after_help = EXIT_CODES)]
    Get(GetArgs),
    /// Close a client connection.
    #[command(subcommand, after_help = EXIT_CODES)]
    Close(Close),
    /// Create a user or a vhost.
    #[command(subcommand, after_help = EXIT_CODES)]
    Add(Add),
    /// Change a user's password.
    #[command(subcommand, after_help = EXIT_CODES)]
    Change(Change),
    /// Grant a user permissions in a vhost.
    #[command(subcommand, after_help = EXIT_CODES)]
    Set(Set),
    /// Take a user's permissions in a vhost away.
    #[command(subcommand, after_help = EXIT_CODES)]
    Clear(Clear),
    /// Follow the messages published to an exchange, live (over AMQP).
    #[command(
        after_help = EXIT_CODES,
        long_about = "Follow the messages published to an exchange, live.\n\n\
        brokerctl connects over AMQP (--amqp-url) with the same user and password as for \
        the API, binds a temporary exclusive queue to the exchange with --routing-key and \
        prints every message routed to it: routing key, properties and body per line, or \
        one JSON object per line with --format json. The queue disappears when brokerctl \
        stops (Ctrl-C or --count), and other consumers are not disturbed. Needs read \
        permission on the exchange and configure/write permission on amq.gen-* queues.\n\n\
        Examples:\n  brokerctl tail orders --routing-key 'eu.#'\n  \
        brokerctl tail amq.topic --routing-key 'sensors.*.temperature' --count 10 --format json\n  \
        brokerctl tail events --encoding hex --amqp-url amqp://broker:5672/%2F"
    )]
    Tail(tail::TailArgs),
    /// Write the definitions (vhosts, users with password hashes, permissions, exchanges,
    /// queues, bindings) as RabbitMQ-compatible JSON.
    #[command(after_help = EXIT_CODES)]
    Export {
        /// File to write; standard output when absent or "-".
        file: Option<String>,
    },
    /// Load definitions written by `export` (or by RabbitMQ) into the broker.
    #[command(after_help = EXIT_CODES)]
    Import {
        /// File to read; "-" for standard input.
        file: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ListKind {
    /// Queues with their message counts and consumers.
    Queues,
    /// Exchanges with their type and flags.
    Exchanges,
    /// Bindings from exchanges to queues and exchanges.
    Bindings,
    /// Client connections (AMQP and MQTT).
    Connections,
    /// AMQP channels.
    Channels,
    /// AMQP consumers.
    Consumers,
    /// Users and their tags.
    Users,
    /// Virtual hosts.
    Vhosts,
    /// Permissions of every user in every vhost.
    Permissions,
    /// MQTT sessions, connected or kept for a reconnect.
    Sessions,
    /// MQTT retained messages.
    Retained,
}

#[derive(Debug, Subcommand)]
enum Declare {
    /// Declare a queue.
    Queue {
        /// Queue name.
        name: String,
        /// Survives a broker restart (the default; `--durable false` for a transient one).
        #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        durable: bool,
        /// Deleted when its last consumer goes.
        #[arg(long)]
        auto_delete: bool,
        /// Queue argument KEY=VALUE (VALUE parsed as JSON when it can be, e.g. x-priority-hint=5); stored and compared on redeclare.
        #[arg(long = "argument", value_name = "KEY=VALUE")]
        arguments: Vec<String>,
    },
    /// Declare an exchange.
    Exchange {
        /// Exchange name.
        name: String,
        /// Exchange type: direct, fanout, topic or headers.
        #[arg(long = "type", default_value = "direct")]
        kind: String,
        /// Survives a broker restart (the default; `--durable false` for a transient one).
        #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        durable: bool,
        /// Deleted when its last binding goes.
        #[arg(long)]
        auto_delete: bool,
        /// Only reachable through exchange-to-exchange bindings.
        #[arg(long)]
        internal: bool,
        /// Exchange argument KEY=VALUE.
        #[arg(long = "argument", value_name = "KEY=VALUE")]
        arguments: Vec<String>,
    },
    /// Bind a queue (or an exchange) to an exchange.
    Binding(BindingArgs),
}

#[derive(Debug, Args)]
struct BindingArgs {
    /// Source exchange.
    #[arg(long)]
    source: String,
    /// Destination queue or exchange.
    #[arg(long)]
    destination: String,
    /// Whether the destination is a queue or an exchange.
    #[arg(long, value_enum, default_value = "queue")]
    destination_type: DestinationType,
    /// Routing (binding) key.
    #[arg(long, default_value = "")]
    routing_key: String,
    /// Binding argument KEY=VALUE (headers exchanges: x-match=all, ...).
    #[arg(long = "argument", value_name = "KEY=VALUE")]
    arguments: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DestinationType {
    Queue,
    Exchange,
}

impl DestinationType {
    fn letter(self) -> &'static str {
        match self {
            DestinationType::Queue => "q",
            DestinationType::Exchange => "e",
        }
    }
}

#[derive(Debug, Subcommand)]
enum Delete {
    /// Delete a queue and its messages.
    Queue {
        /// Queue name.
        name: String,
        /// Refuse if the queue has consumers.
        #[arg(long)]
        if_unused: bool,
        /// Refuse if the queue has messages.
        #[arg(long)]
        if_empty: bool,
    },
    /// Delete a user (their permissions go too; open connections stay open).
    User {
        /// User name.
        name: String,
    },
    /// Delete a vhost with everything in it: its connections are closed, its exchanges,
    /// queues, messages, permissions and MQTT retained messages go.
    Vhost {
        /// Vhost name.
        name: String,
    },
    /// End an MQTT session: its client is disconnected if connected (5.0: DISCONNECT 0x98),
    /// its subscriptions and queued messages are dropped.
    Session {
        /// The session's MQTT client id, as `list sessions` shows it.
        client_id: String,
    },
    /// Clear the retained MQTT message of a topic (nothing is delivered to subscribers).
    Retained {
        /// Topic name, e.g. sensors/7/status.
        topic: String,
    },
    /// Delete an exchange and its bindings.
    Exchange {
        /// Exchange name.
        name: String,
        /// Refuse if the exchange has bindings.
        #[arg(long)]
        if_unused: bool,
    },
    /// Delete a binding (the one with this routing key; --properties-key picks among
    /// bindings that differ only by arguments).
    Binding {
        #[command(flatten)]
        binding: BindingSelector,
    },
}

#[derive(Debug, Args)]
struct BindingSelector {
    /// Source exchange.
    #[arg(long)]
    source: String,
    /// Destination queue or exchange.
    #[arg(long)]
    destination: String,
    /// Whether the destination is a queue or an exchange.
    #[arg(long, value_enum, default_value = "queue")]
    destination_type: DestinationType,
    /// Routing (binding) key.
    #[arg(long, default_value = "")]
    routing_key: String,
    /// The binding's properties key, as `list bindings --format json` shows it.
    #[arg(long)]
    properties_key: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Purge {
    /// Purge a queue's ready messages (unacknowledged ones stay with their consumers).
    Queue {
        /// Queue name.
        name: String,
    },
}

#[derive(Debug, Args)]
struct PublishArgs {
    /// Exchange to publish to ("" or amq.default: the default exchange, routing key = queue).
    #[arg(long, default_value = "")]
    exchange: String,
    /// Routing key.
    #[arg(long, default_value = "")]
    routing_key: String,
    /// Message body; read from standard input when absent.
    #[arg(long)]
    body: Option<String>,
    /// Persistent message (delivery mode 2): written to disk on durable queues.
    #[arg(long)]
    persistent: bool,
    /// Content type property.
    #[arg(long)]
    content_type: Option<String>,
    /// Header KEY=VALUE (VALUE parsed as JSON when it can be).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
}

#[derive(Debug, Args)]
struct GetArgs {
    /// Queue name.
    queue: String,
    /// How many messages at most.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Take the messages out of the queue instead of only looking at them.
    #[arg(long)]
    consume: bool,
}

#[derive(Debug, Subcommand)]
enum Close {
    /// Close a client connection (AMQP: 320 CONNECTION_FORCED; MQTT 5.0: DISCONNECT 0x98).
    Connection {
        /// Connection name, as `list connections` shows it ("PEER -> LOCAL").
        name: String,
        /// Reason given to the client.
        #[arg(long, default_value = "Closed via brokerctl")]
        reason: String,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let tls = TlsOptions {
        cacert: cli.cacert,
        insecure: cli.insecure,
    };
    if let Command::Tail(args) = cli.command {
        let login = tail::Login {
            user: &cli.user,
            password: &cli.password,
            vhost: cli.vhost.as_deref(),
        };
        return match tail::run(args, &login, &tls, cli.format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => fail(&f),
        };
    }
    let client = match Client::new(&cli.url, &cli.user, &cli.password, &tls) {
        Ok(c) => c,
        Err(f) => return fail(&f),
    };
    match run(&client, cli.vhost.as_deref(), cli.format, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => fail(&f),
    }
}

fn fail(f: &Failure) -> ExitCode {
    eprintln!("brokerctl: {f}");
    ExitCode::from(f.exit_code())
}

/// `KEY=VALUE` pairs as a JSON object; values that parse as JSON (numbers, booleans,
/// quoted strings, objects) keep their type, anything else is a string.
fn key_values(pairs: &[String]) -> Result<Value, Failure> {
    let mut map = serde_json::Map::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Failure::Usage(format!("expected KEY=VALUE, got '{pair}'")));
        };
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        map.insert(k.to_string(), value);
    }
    Ok(Value::Object(map))
}

fn exchange_segment(name: &str) -> String {
    if name.is_empty() {
        "amq.default".to_string()
    } else {
        segment(name)
    }
}

fn run(
    client: &Client,
    vhost: Option<&str>,
    format: Format,
    command: Command,
) -> Result<(), Failure> {
    let v = segment(vhost.unwrap_or("/"));
    match command {
        Command::Status => {
            let o = client.get("/api/overview")?;
            match format {
                Format::Json => print_object(format, &o),
                Format::Table => output::print_status(&o),
            }
        }
        Command::List { what } => {
            let (path, columns): (&str, &[&str]) = match what {
                ListKind::Queues => (
                    "/api/queues",
                    &[
                        "name",
                        "vhost",
                        "durable",
                        "messages_ready",
                        "messages_unacknowledged",
                        "consumers",
                    ],
                ),
                ListKind::Exchanges => (
                    "/api/exchanges",
                    &[
                        "name",
                        "vhost",
                        "type",
                        "durable",
                        "auto_delete",
                        "internal",
                    ],
                ),
                ListKind::Bindings => (
                    "/api/bindings",
                    &[
                        "source",
                        "vhost",
                        "destination",
                        "destination_type",
                        "routing_key",
                        "arguments",
                    ],
                ),
                ListKind::Connections => (
                    "/api/connections",
                    &[
                        "name",
                        "protocol",
                        "user",
                        "vhost",
                        "channels",
                        "user_provided_name",
                        "client_properties.client_id",
                    ],
                ),
                ListKind::Channels => (
                    "/api/channels",
                    &["name", "user", "consumer_count", "messages_unacknowledged"],
                ),
                ListKind::Consumers => (
                    "/api/consumers",
                    &[
                        "queue.name",
                        "consumer_tag",
                        "channel_details.name",
                        "ack_required",
                        "prefetch_count",
                    ],
                ),
                ListKind::Users => ("/api/users", &["name", "tags"]),
                ListKind::Vhosts => (
                    "/api/vhosts",
                    &["name", "description", "tags", "queues", "connections"],
                ),
                ListKind::Permissions => (
                    "/api/permissions",
                    &["user", "vhost", "configure", "write", "read"],
                ),
                ListKind::Sessions => (
                    "/api/mqtt/sessions",
                    &[
                        "client_id",
                        "vhost",
                        "protocol",
                        "connected",
                        "clean_session",
                        "expiry_interval",
                        "messages",
                        "subscriptions",
                    ],
                ),
                ListKind::Retained => (
                    "/api/mqtt/retained",
                    &["topic", "qos", "payload_bytes", "payload"],
                ),
            };
            let mut list = client.get(path)?;
            if let Some(vhost) = vhost {
                only_vhost(&mut list, what, vhost);
            }
            if matches!(what, ListKind::Sessions) && format == Format::Table {
                output::summarise_subscriptions(&mut list);
            }
            print_list(format, &list, columns);
        }
        Command::Add(a) => access::add(client, format, a)?,
        Command::Change(c) => access::change(client, format, c)?,
        Command::Set(s) => access::set(client, vhost.unwrap_or("/"), format, s)?,
        Command::Clear(c) => access::clear(client, vhost.unwrap_or("/"), format, c)?,
        Command::Delete(Delete::User { name }) => access::delete_user(client, format, &name)?,
        Command::Delete(Delete::Vhost { name }) => access::delete_vhost(client, format, &name)?,
        Command::Delete(Delete::Session { client_id }) => {
            client.delete(
                &format!("/api/mqtt/sessions/{v}/{}", segment(&client_id)),
                None,
            )?;
            done(format, "session deleted", &client_id);
        }
        Command::Delete(Delete::Retained { topic }) => {
            client.delete(&format!("/api/mqtt/retained/{v}/{}", segment(&topic)), None)?;
            done(format, "retained message cleared", &topic);
        }
        Command::Tail(_) => {
            return Err(Failure::Usage(
                "tail runs without the HTTP client".to_string(),
            ));
        }
        Command::Declare(Declare::Queue {
            name,
            durable,
            auto_delete,
            arguments,
        }) => {
            let body = json!({
                "durable": durable,
                "auto_delete": auto_delete,
                "arguments": key_values(&arguments)?,
            });
            let created = client.put(&format!("/api/queues/{v}/{}", segment(&name)), &body)?;
            done(
                format,
                if created {
                    "queue declared"
                } else {
                    "queue already exists"
                },
                &name,
            );
        }
        Command::Declare(Declare::Exchange {
            name,
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
        }) => {
            let body = json!({
                "type": kind,
                "durable": durable,
                "auto_delete": auto_delete,
                "internal": internal,
                "arguments": key_values(&arguments)?,
            });
            let created = client.put(&format!("/api/exchanges/{v}/{}", segment(&name)), &body)?;
            done(
                format,
                if created {
                    "exchange declared"
                } else {
                    "exchange already exists"
                },
                &name,
            );
        }
        Command::Declare(Declare::Binding(b)) => {
            let path = format!(
                "/api/bindings/{v}/e/{}/{}/{}",
                exchange_segment(&b.source),
                b.destination_type.letter(),
                segment(&b.destination)
            );
            let body = json!({
                "routing_key": b.routing_key,
                "arguments": key_values(&b.arguments)?,
            });
            client.post(&path, &body)?;
            done(
                format,
                "binding declared",
                &format!("{} -> {} ({})", b.source, b.destination, b.routing_key),
            );
        }
        Command::Delete(Delete::Queue {
            name,
            if_unused,
            if_empty,
        }) => {
            let mut path = format!("/api/queues/{v}/{}", segment(&name));
            let mut query = Vec::new();
            if if_unused {
                query.push("if-unused=true");
            }
            if if_empty {
                query.push("if-empty=true");
            }
            if !query.is_empty() {
                path = format!("{path}?{}", query.join("&"));
            }
            client.delete(&path, None)?;
            done(format, "queue deleted", &name);
        }
        Command::Delete(Delete::Exchange { name, if_unused }) => {
            let mut path = format!("/api/exchanges/{v}/{}", segment(&name));
            if if_unused {
                path.push_str("?if-unused=true");
            }
            client.delete(&path, None)?;
            done(format, "exchange deleted", &name);
        }
        Command::Delete(Delete::Binding { binding: b }) => {
            let base = format!(
                "/api/bindings/{v}/e/{}/{}/{}",
                exchange_segment(&b.source),
                b.destination_type.letter(),
                segment(&b.destination)
            );
            let key = match b.properties_key {
                Some(k) => k,
                None => {
                    let existing = client.get(&base)?;
                    let found = existing.as_array().and_then(|list| {
                        list.iter()
                            .find(|x| x["routing_key"] == b.routing_key.as_str())
                    });
                    match found.and_then(|x| x["properties_key"].as_str()) {
                        Some(k) => k.to_string(),
                        None => {
                            return Err(Failure::Api {
                                status: 404,
                                reason: format!(
                                    "no binding from '{}' to '{}' with routing key '{}'",
                                    b.source, b.destination, b.routing_key
                                ),
                            });
                        }
                    }
                }
            };
            client.delete(&format!("{base}/{}", segment(&key)), None)?;
            done(
                format,
                "binding deleted",
                &format!("{} -> {} ({})", b.source, b.destination, b.routing_key),
            );
        }
        Command::Purge(Purge::Queue { name }) => {
            client.delete(
                &format!("/api/queues/{v}/{}/contents", segment(&name)),
                None,
            )?;
            done(format, "queue purged", &name);
        }
        Command::Publish(p) => {
            let body = match p.body {
                Some(b) => b,
                None => {
                    let mut text = String::new();
                    std::io::stdin().read_to_string(&mut text).map_err(|e| {
                        Failure::Usage(format!("cannot read the body from standard input: {e}"))
                    })?;
                    text
                }
            };
            let mut properties = serde_json::Map::new();
            if p.persistent {
                properties.insert("delivery_mode".into(), json!(2));
            }
            if let Some(ct) = p.content_type {
                properties.insert("content_type".into(), json!(ct));
            }
            if !p.headers.is_empty() {
                properties.insert("headers".into(), key_values(&p.headers)?);
            }
            let req = json!({
                "routing_key": p.routing_key,
                "payload": body,
                "payload_encoding": "string",
                "properties": properties,
            });
            let answer = client.post_json(
                &format!(
                    "/api/exchanges/{v}/{}/publish",
                    exchange_segment(&p.exchange)
                ),
                &req,
            )?;
            match format {
                Format::Json => print_object(format, &answer),
                Format::Table => {
                    if answer["routed"] == true {
                        outln!("message published and routed");
                    } else {
                        outln!("message published but not routed to any queue");
                    }
                }
            }
        }
        Command::Get(g) => {
            let req = json!({
                "count": g.count,
                "ackmode": if g.consume { "ack_requeue_false" } else { "ack_requeue_true" },
                "encoding": "auto",
            });
            let messages =
                client.post_json(&format!("/api/queues/{v}/{}/get", segment(&g.queue)), &req)?;
            print_list(
                format,
                &messages,
                &[
                    "routing_key",
                    "exchange",
                    "redelivered",
                    "payload_bytes",
                    "payload",
                ],
            );
        }
        Command::Close(Close::Connection { name, reason }) => {
            client.delete(
                &format!("/api/connections/{}", segment(&name)),
                Some(("X-Reason", reason.as_str())),
            )?;
            done(format, "connection closed", &name);
        }
        Command::Export { file } => {
            let defs = client.get("/api/definitions")?;
            let text = serde_json::to_string_pretty(&defs)
                .map_err(|e| Failure::Usage(format!("cannot format the definitions: {e}")))?;
            match file.as_deref() {
                None | Some("-") => outln!("{text}"),
                Some(path) => {
                    std::fs::write(path, format!("{text}\n"))
                        .map_err(|e| Failure::Usage(format!("cannot write {path}: {e}")))?;
                    eprintln!("definitions written to {path}");
                }
            }
        }
        Command::Import { file } => {
            let text = if file == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
                text
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| Failure::Usage(format!("cannot read {file}: {e}")))?
            };
            let defs: Value = serde_json::from_str(&text)
                .map_err(|e| Failure::Usage(format!("{file} is not JSON: {e}")))?;
            let summary = client.post_json("/api/definitions", &defs)?;
            match format {
                Format::Json => print_object(format, &summary),
                Format::Table => {
                    // Counts the broker reports (older brokers: no vhosts, users, permissions).
                    let counts: Vec<String> = [
                        "vhosts",
                        "users",
                        "permissions",
                        "exchanges",
                        "queues",
                        "bindings",
                    ]
                    .iter()
                    .filter_map(|k| summary[*k].as_u64().map(|n| format!("{n} {k}")))
                    .collect();
                    outln!("imported {}", counts.join(", "));
                    if let Some(users) = summary["skipped_users"].as_array()
                        && !users.is_empty()
                    {
                        let users: Vec<String> = users
                            .iter()
                            .map(|u| match u["reason"].as_str() {
                                Some(r) => format!("{} ({r})", output::text(&u["name"])),
                                None => output::text(&u["name"]),
                            })
                            .collect();
                        outln!(
                            "skipped users, with their permissions: {}",
                            users.join(", ")
                        );
                    }
                    if let Some(skipped) = summary["skipped"].as_array()
                        && !skipped.is_empty()
                    {
                        let names: Vec<&str> = skipped.iter().filter_map(Value::as_str).collect();
                        outln!("skipped (not supported yet): {}", names.join(", "));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Keeps the objects of `vhost` (lists of users and vhosts are left whole).
fn only_vhost(list: &mut Value, what: ListKind, vhost: &str) {
    let field = match what {
        ListKind::Users | ListKind::Vhosts => return,
        ListKind::Consumers => "/queue/vhost",
        _ => "/vhost",
    };
    if let Some(items) = list.as_array_mut() {
        items.retain(|item| item.pointer(field).and_then(Value::as_str) == Some(vhost));
    }
}

/// Reports a successful change: a line for people, `{"ok": true, ...}` for scripts.
pub(crate) fn done(format: Format, what: &str, name: &str) {
    match format {
        Format::Json => outln!("{}", json!({ "ok": true, "result": what, "name": name })),
        Format::Table => outln!("{what}: {name}"),
    }
}
