//! The topology snapshot: exchanges with their bindings, and the queue registry.
//! Readers take an `Arc` of the current snapshot and route without locks; writers copy it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use protocol_amqp::FieldTable;

use super::queue::QueueHandle;
use crate::model::exchange::{Destination, Exchange, ExchangeKind};

/// Exchanges every vhost has from the start (durable, cannot be deleted).
pub const BUILTIN_EXCHANGES: [(&str, ExchangeKind); 5] = [
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

/// A queue as the topology knows it; its contents live in its task.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    /// Mailbox of the queue task.
    pub handle: QueueHandle,
    /// Survives a restart.
    pub durable: bool,
    /// Connection id of the owner of an exclusive queue.
    pub exclusive_owner: Option<u64>,
    /// Deleted when its last consumer goes (once it had one).
    pub auto_delete: bool,
    /// Declare arguments.
    pub arguments: FieldTable,
}

/// Exchanges and queues of one vhost.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// By name; the default exchange "" is implicit and not in here.
    pub exchanges: HashMap<String, Arc<Exchange>>,
    /// By name.
    pub queues: HashMap<String, QueueEntry>,
    /// Which change of its vhost's topology this is: new with every change, unique across
    /// vhosts, and never 0 for a vhost's topology. A [`super::routes::RouteCache`] entry
    /// holds while it is the same.
    pub version: u64,
}

/// The next [`Topology::version`].
pub(super) fn next_version() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Topology {
    /// A topology holding the predeclared `amq.*` exchanges.
    pub fn with_builtin_exchanges() -> Topology {
        let mut t = Topology::default();
        for (name, kind) in BUILTIN_EXCHANGES {
            t.exchanges.insert(
                name.to_string(),
                Arc::new(Exchange::new(
                    name.to_string(),
                    kind,
                    true,
                    false,
                    false,
                    FieldTable::default(),
                )),
            );
        }
        t
    }

    /// Queues a message published to `exchange` with `routing_key` reaches, each once,
    /// following exchange-to-exchange bindings (cycles are cut). Returns whether the result
    /// depended on `headers` (a headers exchange was passed): such a route cannot be kept
    /// for the next message with the same key.
    pub fn route(
        &self,
        exchange: &str,
        routing_key: &str,
        headers: Option<&FieldTable>,
        out: &mut Vec<QueueHandle>,
    ) -> bool {
        if exchange.is_empty() {
            if let Some(q) = self.queues.get(routing_key) {
                out.push(q.handle.clone());
            }
            return false;
        }
        let mut by_headers = false;
        let mut visited: Vec<&str> = Vec::new();
        let mut pending: Vec<&str> = vec![exchange];
        let mut dests = Vec::new();
        while let Some(name) = pending.pop() {
            if visited.contains(&name) {
                continue;
            }
            visited.push(name);
            let Some(x) = self.exchanges.get(name) else {
                continue;
            };
            by_headers |= x.kind == ExchangeKind::Headers;
            dests.clear();
            x.route(routing_key, headers, &mut dests);
            for dest in &dests {
                match dest {
                    Destination::Queue(q) => {
                        if let Some(entry) = self.queues.get(q)
                            && !out.iter().any(|h| h.id() == entry.handle.id())
                        {
                            out.push(entry.handle.clone());
                        }
                    }
                    Destination::Exchange(e) => {
                        if let Some((key, _)) = self.exchanges.get_key_value(e.as_str()) {
                            pending.push(key.as_str());
                        }
                    }
                }
            }
        }
        by_headers
    }

    /// Removes every binding to `dest`; returns auto-delete exchanges left without bindings.
    pub fn remove_bindings_to(&mut self, dest: &Destination) -> Vec<String> {
        let mut emptied = Vec::new();
        for (name, x) in self.exchanges.iter_mut() {
            if !x.bindings_to(dest).is_empty() {
                let x = Arc::make_mut(x);
                x.remove_destination(dest);
                if x.auto_delete && x.binding_count() == 0 {
                    emptied.push(name.clone());
                }
            }
        }
        emptied
    }

    /// Appends the durable part, as storage keeps it, to `d` under `vhost`.
    pub fn definitions(&self, vhost: &str, d: &mut storage::Definitions) {
        let mut names: Vec<&String> = self.exchanges.keys().collect();
        names.sort();
        for name in names {
            let x = &self.exchanges[name];
            if x.durable && !name.starts_with("amq.") {
                d.exchanges.push(storage::ExchangeDef {
                    vhost: vhost.into(),
                    name: name.clone(),
                    kind: x.kind.as_str().into(),
                    durable: true,
                    auto_delete: x.auto_delete,
                    internal: x.internal,
                    arguments: encode_table(&x.arguments),
                });
            }
        }
        let mut queues: Vec<(&String, &QueueEntry)> =
            // Exclusive queues die with their connection, so a restart never brings one back.
            self.queues
                .iter()
                .filter(|(_, q)| q.durable && q.exclusive_owner.is_none())
                .collect();
        queues.sort_by(|a, b| a.0.cmp(b.0));
        for (name, q) in &queues {
            d.queues.push(storage::QueueDef {
                vhost: vhost.into(),
                name: (*name).clone(),
                durable: true,
                auto_delete: q.auto_delete,
                arguments: encode_table(&q.arguments),
            });
        }
        let mut names: Vec<&String> = self.exchanges.keys().collect();
        names.sort();
        for name in names {
            let x = &self.exchanges[name];
            if !x.durable {
                continue;
            }
            for b in x.bindings() {
                let (destination, destination_is_exchange, durable) = match &b.destination {
                    Destination::Queue(q) => (
                        q,
                        false,
                        self.queues
                            .get(q)
                            .is_some_and(|q| q.durable && q.exclusive_owner.is_none()),
                    ),
                    Destination::Exchange(e) => {
                        (e, true, self.exchanges.get(e).is_some_and(|e| e.durable))
                    }
                };
                if durable {
                    d.bindings.push(storage::BindingDef {
                        vhost: vhost.into(),
                        source: name.clone(),
                        destination: destination.clone(),
                        destination_is_exchange,
                        routing_key: b.routing_key.clone(),
                        arguments: encode_table(&b.arguments),
                    });
                }
            }
        }
    }
}

/// Encodes a field table the way it travels on the wire (length-prefixed), for storage.
pub fn encode_table(table: &FieldTable) -> Vec<u8> {
    let mut buf = bytes::BytesMut::new();
    table.encode(&mut buf);
    buf.to_vec()
}

/// Decodes what [`encode_table`] wrote.
pub fn decode_table(bytes: &[u8]) -> Option<FieldTable> {
    if bytes.is_empty() {
        return Some(FieldTable::default());
    }
    FieldTable::decode(bytes).ok()
}
