//! Exchanges: a closed set of kinds, each with its own routing index over its bindings.

use std::collections::HashMap;
use std::fmt;

use protocol_amqp::FieldTable;

use super::headers::{HeadersBinding, HeadersBindingError};
use super::topic_trie::TopicTrie;

/// Where a binding leads: a queue, or another exchange (exchange-to-exchange bindings).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// A queue, by name.
    Queue(String),
    /// An exchange, by name.
    Exchange(String),
}

/// The exchange types the broker knows. Closed enum: routing is a match, not a trait object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    /// Routing key equals binding key.
    Direct,
    /// Every binding.
    Fanout,
    /// Dotted words with `*` and `#` wildcards.
    Topic,
    /// Message headers against binding arguments.
    Headers,
}

impl ExchangeKind {
    /// Parses the `type` argument of exchange.declare; `None` for types we do not implement.
    pub fn parse(s: &str) -> Option<ExchangeKind> {
        match s {
            "direct" => Some(ExchangeKind::Direct),
            "fanout" => Some(ExchangeKind::Fanout),
            "topic" => Some(ExchangeKind::Topic),
            "headers" => Some(ExchangeKind::Headers),
            _ => None,
        }
    }

    /// Name as it appears on the wire and in definitions.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One binding from an exchange; the triple is its identity (as in AMQP unbind).
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Target queue or exchange.
    pub destination: Destination,
    /// Binding key.
    pub routing_key: String,
    /// Binding arguments (used by headers exchanges).
    pub arguments: FieldTable,
}

/// Per-kind index over the bindings, so that routing does not scan every binding.
#[derive(Debug, Clone)]
enum RouteIndex {
    Direct(HashMap<String, Vec<Destination>>),
    Fanout,
    Topic(TopicTrie<Destination>),
    Headers(Vec<(HeadersBinding, Destination)>),
}

/// An exchange with its bindings. Cloned on write as part of the topology snapshot.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Name ("" is the default exchange, which is never stored here).
    pub name: String,
    /// Type.
    pub kind: ExchangeKind,
    /// Survives a restart.
    pub durable: bool,
    /// Deleted when its last binding goes (once it had one).
    pub auto_delete: bool,
    /// Cannot be published to directly, only through exchange-to-exchange bindings.
    pub internal: bool,
    /// Declare arguments (kept for equivalence checks and definitions).
    pub arguments: FieldTable,
    bindings: Vec<Binding>,
    index: RouteIndex,
}

impl Exchange {
    /// A new exchange with no bindings.
    pub fn new(
        name: String,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Exchange {
        let index = match kind {
            ExchangeKind::Direct => RouteIndex::Direct(HashMap::new()),
            ExchangeKind::Fanout => RouteIndex::Fanout,
            ExchangeKind::Topic => RouteIndex::Topic(TopicTrie::new()),
            ExchangeKind::Headers => RouteIndex::Headers(Vec::new()),
        };
        Exchange {
            name,
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
            bindings: Vec::new(),
            index,
        }
    }

    /// The exchange's bindings in creation order.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// Adds a binding; `Ok(false)` if the same binding already existed (binding is idempotent).
    pub fn bind(&mut self, binding: Binding) -> Result<bool, HeadersBindingError> {
        if self.bindings.contains(&binding) {
            return Ok(false);
        }
        match &mut self.index {
            RouteIndex::Direct(map) => map
                .entry(binding.routing_key.clone())
                .or_default()
                .push(binding.destination.clone()),
            RouteIndex::Fanout => {}
            RouteIndex::Topic(trie) => {
                trie.insert(&binding.routing_key, binding.destination.clone());
            }
            RouteIndex::Headers(list) => {
                let parsed = HeadersBinding::parse(&binding.arguments)?;
                list.push((parsed, binding.destination.clone()));
            }
        }
        self.bindings.push(binding);
        Ok(true)
    }

    /// Removes a binding; `false` if it did not exist.
    pub fn unbind(&mut self, binding: &Binding) -> bool {
        let Some(pos) = self.bindings.iter().position(|b| b == binding) else {
            return false;
        };
        self.bindings.remove(pos);
        self.rebuild_index();
        true
    }

    /// Removes every binding to `destination` (it was deleted); returns how many went.
    pub fn remove_destination(&mut self, destination: &Destination) -> usize {
        let before = self.bindings.len();
        self.bindings.retain(|b| &b.destination != destination);
        let removed = before - self.bindings.len();
        if removed > 0 {
            self.rebuild_index();
        }
        removed
    }

    fn rebuild_index(&mut self) {
        let bindings = std::mem::take(&mut self.bindings);
        let fresh = Exchange::new(
            String::new(),
            self.kind,
            false,
            false,
            false,
            FieldTable::default(),
        );
        self.index = fresh.index;
        for b in bindings {
            // Every binding here was accepted before, so parsing cannot fail now.
            let _ = self.bind(b);
        }
    }

    /// Pushes the destinations a message with this routing key and headers goes to.
    /// Destinations may repeat across kinds of match; the caller dedupes.
    pub fn route(
        &self,
        routing_key: &str,
        headers: Option<&FieldTable>,
        out: &mut Vec<Destination>,
    ) {
        match &self.index {
            RouteIndex::Direct(map) => {
                if let Some(dests) = map.get(routing_key) {
                    out.extend(dests.iter().cloned());
                }
            }
            RouteIndex::Fanout => out.extend(self.bindings.iter().map(|b| b.destination.clone())),
            RouteIndex::Topic(trie) => trie.route(routing_key, out),
            RouteIndex::Headers(list) => out.extend(
                list.iter()
                    .filter(|(binding, _)| binding.matches(headers))
                    .map(|(_, dest)| dest.clone()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> Destination {
        Destination::Queue(name.to_string())
    }

    fn binding(dest: Destination, key: &str) -> Binding {
        Binding {
            destination: dest,
            routing_key: key.to_string(),
            arguments: FieldTable::default(),
        }
    }

    fn routed(x: &Exchange, key: &str) -> Vec<Destination> {
        let mut out = Vec::new();
        x.route(key, None, &mut out);
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn direct_routes_by_exact_key_and_unbinds() {
        let mut x = Exchange::new(
            "d".into(),
            ExchangeKind::Direct,
            false,
            false,
            false,
            FieldTable::default(),
        );
        assert_eq!(x.bind(binding(q("a"), "k")), Ok(true));
        assert_eq!(x.bind(binding(q("a"), "k")), Ok(false));
        assert_eq!(x.bind(binding(q("b"), "other")), Ok(true));
        assert_eq!(routed(&x, "k"), vec![q("a")]);
        assert!(x.unbind(&binding(q("a"), "k")));
        assert!(routed(&x, "k").is_empty());
        assert_eq!(routed(&x, "other"), vec![q("b")]);
    }

    #[test]
    fn fanout_ignores_key_and_topic_matches_wildcards() {
        let mut f = Exchange::new(
            "f".into(),
            ExchangeKind::Fanout,
            false,
            false,
            false,
            FieldTable::default(),
        );
        f.bind(binding(q("a"), "x")).ok();
        f.bind(binding(q("b"), "")).ok();
        assert_eq!(routed(&f, "anything"), vec![q("a"), q("b")]);

        let mut t = Exchange::new(
            "t".into(),
            ExchangeKind::Topic,
            false,
            false,
            false,
            FieldTable::default(),
        );
        t.bind(binding(q("a"), "a.*")).ok();
        t.bind(binding(q("b"), "#")).ok();
        assert_eq!(routed(&t, "a.x"), vec![q("a"), q("b")]);
        assert_eq!(routed(&t, "b"), vec![q("b")]);
        assert_eq!(t.remove_destination(&q("b")), 1);
        assert!(routed(&t, "b").is_empty());
        assert_eq!(routed(&t, "a.y"), vec![q("a")]);
    }
}
