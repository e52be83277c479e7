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

/// Per-kind index over the bindings, so that routing does not scan every binding. Kept up to
/// date incrementally: MQTT makes one binding per subscription, so a bind or an unbind must
/// not cost time proportional to all the others.
#[derive(Debug, Clone)]
enum RouteIndex {
    /// Routing key → destinations (one entry per binding; the topology dedupes queues).
    Direct(HashMap<String, Vec<Destination>>),
    /// Every destination with a binding.
    Fanout,
    Topic(TopicTrie<Destination>),
    Headers(Vec<(HeadersBinding, Destination)>),
}

/// An exchange with its bindings.
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
    /// Bindings grouped by destination: deleting a queue drops its bindings in one step.
    bindings: HashMap<Destination, Vec<Binding>>,
    count: usize,
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
            bindings: HashMap::new(),
            count: 0,
            index,
        }
    }

    /// The exchange's bindings (grouped by destination, in binding order within a group).
    pub fn bindings(&self) -> impl Iterator<Item = &Binding> + '_ {
        self.bindings.values().flatten()
    }

    /// The bindings to one destination.
    pub fn bindings_to(&self, destination: &Destination) -> &[Binding] {
        self.bindings.get(destination).map_or(&[], Vec::as_slice)
    }

    /// Number of bindings.
    pub fn binding_count(&self) -> usize {
        self.count
    }

    /// Adds a binding; `Ok(false)` if the same binding already existed (binding is idempotent).
    pub fn bind(&mut self, binding: Binding) -> Result<bool, HeadersBindingError> {
        if self.bindings_to(&binding.destination).contains(&binding) {
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
        self.bindings
            .entry(binding.destination.clone())
            .or_default()
            .push(binding);
        self.count += 1;
        Ok(true)
    }

    /// Removes a binding; `false` if it did not exist.
    pub fn unbind(&mut self, binding: &Binding) -> bool {
        let Some(group) = self.bindings.get_mut(&binding.destination) else {
            return false;
        };
        let Some(pos) = group.iter().position(|b| b == binding) else {
            return false;
        };
        let removed = group.remove(pos);
        let key_still_bound = group.iter().any(|b| b.routing_key == removed.routing_key);
        if group.is_empty() {
            self.bindings.remove(&binding.destination);
        }
        self.count -= 1;
        self.unindex(&removed, key_still_bound);
        true
    }

    /// Removes every binding to `destination` (it was deleted); returns how many went.
    pub fn remove_destination(&mut self, destination: &Destination) -> usize {
        let Some(group) = self.bindings.remove(destination) else {
            return 0;
        };
        self.count -= group.len();
        for b in &group {
            self.unindex(b, false);
        }
        group.len()
    }

    /// Takes one binding out of the routing index. `key_still_bound`: another binding of the
    /// same destination and routing key remains (a topic trie holds the pair only once).
    fn unindex(&mut self, b: &Binding, key_still_bound: bool) {
        match &mut self.index {
            RouteIndex::Direct(map) => {
                if let Some(dests) = map.get_mut(&b.routing_key) {
                    if let Some(i) = dests.iter().position(|d| d == &b.destination) {
                        dests.swap_remove(i);
                    }
                    if dests.is_empty() {
                        map.remove(&b.routing_key);
                    }
                }
            }
            RouteIndex::Fanout => {}
            RouteIndex::Topic(trie) => {
                if !key_still_bound {
                    trie.remove(&b.routing_key, &b.destination);
                }
            }
            RouteIndex::Headers(list) => {
                if let Ok(parsed) = HeadersBinding::parse(&b.arguments)
                    && let Some(i) = list
                        .iter()
                        .position(|(h, d)| h == &parsed && d == &b.destination)
                {
                    list.swap_remove(i);
                }
            }
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
            RouteIndex::Fanout => out.extend(self.bindings.keys().cloned()),
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
    fn unbinding_one_of_two_bindings_with_the_same_key_keeps_routing() {
        let mut t = Exchange::new(
            "t".into(),
            ExchangeKind::Topic,
            false,
            false,
            false,
            FieldTable::default(),
        );
        let mut with_args = binding(q("a"), "k.*");
        with_args.arguments.insert(
            protocol_amqp::ShortStr::from_static("x"),
            protocol_amqp::FieldValue::Bool(true),
        );
        t.bind(binding(q("a"), "k.*")).ok();
        t.bind(with_args.clone()).ok();
        assert_eq!(t.binding_count(), 2);
        assert!(t.unbind(&with_args));
        assert_eq!(
            routed(&t, "k.x"),
            vec![q("a")],
            "the other binding still routes"
        );
        assert!(t.unbind(&binding(q("a"), "k.*")));
        assert!(routed(&t, "k.x").is_empty());
        assert_eq!(t.binding_count(), 0);
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
