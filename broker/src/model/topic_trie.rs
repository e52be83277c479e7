//! Topic-exchange bindings as a trie over dot-separated words.
//!
//! A topic exchange may hold many bindings, and every publish asks "which of
//! them match this routing key?". Scanning every binding per publish costs
//! O(bindings × key length); the trie shares common prefixes so routing only
//! walks the parts of the binding set that can still match.
//!
//! # Words
//! Keys are split on `.` into words. `""` is zero words; `"a..b"` is
//! `[a, "", b]`: empty words are real words (RabbitMQ semantics). In a
//! binding key, `*` matches exactly one word (possibly the empty word) and
//! `#` matches zero or more words. In a routing key `*` and `#` are plain
//! words.
//!
//! # Routing
//! [`TopicTrie::route`] runs the trie as an NFA: it keeps the *set* of trie
//! nodes reachable after each routing-key word, with duplicates removed. A
//! node reached through a `#` edge stays in the set when a word is consumed
//! (the `#` swallows it), and whenever a node is in the set so is its `#`
//! child (the `#` swallows nothing). Because the set never holds a node
//! twice, bindings like `#.#.#.#.a` cost O(nodes × words) instead of the
//! exponential blowup of backtracking.

use std::collections::{HashMap, HashSet};
use std::ptr;
use std::str::Split;

/// Separator between the words of a topic key.
const SEPARATOR: char = '.';

/// The single-word wildcard of binding keys.
const STAR: &str = "*";

/// The zero-or-more-words wildcard of binding keys.
const HASH: &str = "#";

/// Up to this many states per step, duplicates are found by a linear scan
/// (cheaper than hashing for the few states a typical key produces); beyond
/// it a hash set takes over so large fan-outs stay linear.
const LINEAR_DEDUPE_LIMIT: usize = 16;

/// Up to this many candidate destinations, routing dedupes them by scanning
/// `out`; beyond it, with a hash set.
const LINEAR_DEST_DEDUPE_LIMIT: usize = 32;

/// The words of a topic key, without allocating.
///
/// `str::split` yields one empty word for `""`, but AMQP says `""` has zero
/// words, so that one word is dropped.
fn words(key: &str) -> Split<'_, char> {
    let mut split = key.split(SEPARATOR);
    if key.is_empty() {
        // Consume the lone empty word; the iterator is then exhausted.
        let _ = split.next();
    }
    split
}

/// One trie node: the bindings whose key ends here, and the edges onward.
#[derive(Clone, Debug)]
struct Node<T> {
    /// Destinations of the bindings whose key ends at this node.
    dests: HashSet<T>,
    /// Edges labelled with a literal word (including the empty word).
    literal: HashMap<Box<str>, Node<T>>,
    /// Edge labelled `*`.
    star: Option<Box<Node<T>>>,
    /// Edge labelled `#`.
    hash: Option<Box<Node<T>>>,
}

impl<T> Node<T> {
    fn new() -> Self {
        Node {
            dests: HashSet::new(),
            literal: HashMap::new(),
            star: None,
            hash: None,
        }
    }

    /// Number of outgoing edges.
    fn child_count(&self) -> usize {
        self.literal.len() + usize::from(self.star.is_some()) + usize::from(self.hash.is_some())
    }

    /// No bindings end here or below: the node can be pruned.
    fn is_empty(&self) -> bool {
        self.dests.is_empty() && self.child_count() == 0
    }

    /// The child along binding-key word `word`, if present.
    fn child_mut(&mut self, word: &str) -> Option<&mut Node<T>> {
        match word {
            STAR => self.star.as_deref_mut(),
            HASH => self.hash.as_deref_mut(),
            _ => self.literal.get_mut(word),
        }
    }

    /// The child along binding-key word `word`, created if missing.
    fn child_or_insert(&mut self, word: &str) -> &mut Node<T> {
        match word {
            STAR => self.star.get_or_insert_with(|| Box::new(Node::new())),
            HASH => self.hash.get_or_insert_with(|| Box::new(Node::new())),
            _ => self.literal.entry(word.into()).or_insert_with(Node::new),
        }
    }

    /// Drops the edge along binding-key word `word` with everything below it.
    fn remove_child(&mut self, word: &str) {
        match word {
            STAR => self.star = None,
            HASH => self.hash = None,
            _ => {
                self.literal.remove(word);
            }
        }
    }

    /// Number of nodes in this subtree, this one included.
    #[cfg(test)]
    fn count_nodes(&self) -> usize {
        1 + self.literal.values().map(Node::count_nodes).sum::<usize>()
            + self.star.as_deref().map_or(0, Node::count_nodes)
            + self.hash.as_deref().map_or(0, Node::count_nodes)
    }
}

/// The bindings of a topic exchange, indexed for routing by routing key.
///
/// A binding is a pair (binding key, destination); the same destination may
/// be bound under several keys and is still routed to at most once per
/// message. Cloning copies the whole index: the broker's topology is
/// copy-on-write, so readers route against an immutable snapshot while a
/// writer edits its own clone.
#[derive(Clone, Debug)]
pub struct TopicTrie<T> {
    root: Node<T>,
    /// Number of (binding key, destination) pairs stored.
    len: usize,
}

impl<T: Clone + Eq + std::hash::Hash> Default for TopicTrie<T> {
    /// An empty trie, so that exchanges can be built with `Default`.
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + Eq + std::hash::Hash> TopicTrie<T> {
    /// An empty trie: a new topic exchange has no bindings.
    pub fn new() -> Self {
        TopicTrie {
            root: Node::new(),
            len: 0,
        }
    }

    /// Adds the binding (`binding_key`, `dest`).
    ///
    /// Returns false if it was already present: binding in AMQP is
    /// idempotent, and the caller may want to know whether anything changed.
    pub fn insert(&mut self, binding_key: &str, dest: T) -> bool {
        let mut node = &mut self.root;
        for word in words(binding_key) {
            node = node.child_or_insert(word);
        }
        let added = node.dests.insert(dest);
        if added {
            self.len += 1;
        }
        added
    }

    /// Removes the binding (`binding_key`, `dest`).
    ///
    /// Returns false if it was absent (unbinding an unknown binding is not an
    /// error in AMQP, but the caller may care). Nodes left without bindings
    /// below them are pruned, so a trie that saw many short-lived bindings
    /// does not keep growing.
    pub fn remove(&mut self, binding_key: &str, dest: &T) -> bool {
        // Walk down, remembering the deepest node on the path that has to
        // stay even if the end node goes: one that has bindings of its own or
        // another edge. The root always stays.
        let mut keep_depth = 0;
        let mut node = &mut self.root;
        for (depth, word) in words(binding_key).enumerate() {
            if !node.dests.is_empty() || node.child_count() > 1 {
                keep_depth = depth;
            }
            match node.child_mut(word) {
                Some(child) => node = child,
                None => return false,
            }
        }
        if !node.dests.remove(dest) {
            return false;
        }
        self.len -= 1;
        if node.is_empty() {
            self.prune(binding_key, keep_depth);
        }
        true
    }

    /// Cuts the path of `binding_key` below depth `keep_depth`, where
    /// everything below is known to hold no binding.
    fn prune(&mut self, binding_key: &str, keep_depth: usize) {
        let mut path = words(binding_key);
        let mut node = &mut self.root;
        for word in path.by_ref().take(keep_depth) {
            match node.child_mut(word) {
                Some(child) => node = child,
                // remove() just walked this path, so it exists.
                None => return,
            }
        }
        if let Some(word) = path.next() {
            node.remove_child(word);
        }
    }

    /// Pushes onto `out` every destination with a binding that matches
    /// `routing_key`, each destination once even if several of its bindings
    /// match (a message is delivered to a queue at most once per publish).
    ///
    /// Destinations already in `out` before the call are left alone and not
    /// considered for deduplication, so callers can gather the results of
    /// several exchanges into one vector.
    pub fn route(&self, routing_key: &str, out: &mut Vec<T>) {
        let mut current = StateSet::default();
        let mut next = StateSet::default();
        current.insert(&self.root, false);
        current.close();
        for word in words(routing_key) {
            next.clear();
            for &(node, via_hash) in &current.states {
                if via_hash {
                    // The `#` that led here swallows this word too.
                    next.insert(node, true);
                }
                if let Some(child) = node.literal.get(word) {
                    next.insert(child, false);
                }
                if let Some(child) = node.star.as_deref() {
                    next.insert(child, false);
                }
            }
            if next.states.is_empty() {
                return;
            }
            next.close();
            std::mem::swap(&mut current, &mut next);
        }
        emit(&current.states, out);
    }

    /// Whether no binding is stored (e.g. to auto-delete the exchange).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of (binding key, destination) pairs stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of trie nodes, to check that removal prunes.
    #[cfg(test)]
    fn node_count(&self) -> usize {
        self.root.count_nodes()
    }
}

/// The trie nodes reachable after some prefix of the routing key, each once.
///
/// The flag says whether the node was reached through a `#` edge, so it may
/// swallow further words.
struct StateSet<'a, T> {
    states: Vec<(&'a Node<T>, bool)>,
    /// Addresses of `states`, filled only beyond [`LINEAR_DEDUPE_LIMIT`].
    seen: HashSet<*const Node<T>>,
}

impl<T> Default for StateSet<'_, T> {
    fn default() -> Self {
        StateSet {
            states: Vec::new(),
            seen: HashSet::new(),
        }
    }
}

impl<'a, T> StateSet<'a, T> {
    /// Empties the set, keeping its capacity for the next word.
    fn clear(&mut self) {
        self.states.clear();
        self.seen.clear();
    }

    /// Adds `node` unless already present. Nodes are identified by address:
    /// each trie node is one state, and whether it was reached via `#` is a
    /// property of the node itself.
    fn insert(&mut self, node: &'a Node<T>, via_hash: bool) {
        if self.states.len() < LINEAR_DEDUPE_LIMIT {
            if self.states.iter().any(|&(n, _)| ptr::eq(n, node)) {
                return;
            }
        } else {
            if self.seen.is_empty() {
                self.seen
                    .extend(self.states.iter().map(|&(n, _)| ptr::from_ref(n)));
            }
            if !self.seen.insert(ptr::from_ref(node)) {
                return;
            }
        }
        self.states.push((node, via_hash));
    }

    /// Adds the `#` children of every state, transitively: a `#` may match
    /// zero words, so wherever we stand we also stand past any `#` edge.
    fn close(&mut self) {
        let mut i = 0;
        while let Some(&(node, _)) = self.states.get(i) {
            if let Some(hash) = node.hash.as_deref() {
                self.insert(hash, true);
            }
            i += 1;
        }
    }
}

/// Pushes the destinations of the final `states` onto `out`, each once.
fn emit<T: Clone + Eq + std::hash::Hash>(states: &[(&Node<T>, bool)], out: &mut Vec<T>) {
    let mut holders = 0;
    let mut total = 0;
    for (node, _) in states {
        if !node.dests.is_empty() {
            holders += 1;
            total += node.dests.len();
        }
    }
    out.reserve(total);
    let all = states.iter().flat_map(|(node, _)| node.dests.iter());
    if holders <= 1 {
        // One node's destinations are a set already.
        out.extend(all.cloned());
    } else if total <= LINEAR_DEST_DEDUPE_LIMIT {
        let start = out.len();
        for dest in all {
            if !out[start..].contains(dest) {
                out.push(dest.clone());
            }
        }
    } else {
        let mut seen = HashSet::with_capacity(total);
        out.extend(all.filter(|dest| seen.insert(*dest)).cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// The obvious backtracking matcher, as the reference for the trie.
    fn naive_match(binding: &[&str], routing: &[&str]) -> bool {
        match binding.split_first() {
            None => routing.is_empty(),
            Some((&"#", rest)) => {
                (0..=routing.len()).any(|skip| naive_match(rest, &routing[skip..]))
            }
            Some((&"*", rest)) => !routing.is_empty() && naive_match(rest, &routing[1..]),
            Some((word, rest)) => routing.first() == Some(word) && naive_match(rest, &routing[1..]),
        }
    }

    fn naive_matches(binding_key: &str, routing_key: &str) -> bool {
        let binding: Vec<&str> = words(binding_key).collect();
        let routing: Vec<&str> = words(routing_key).collect();
        naive_match(&binding, &routing)
    }

    fn routed<T: Clone + Eq + std::hash::Hash + Ord>(trie: &TopicTrie<T>, key: &str) -> Vec<T> {
        let mut out = Vec::new();
        trie.route(key, &mut out);
        out.sort();
        out
    }

    /// Whether the single binding `binding_key` matches `routing_key`.
    fn matches(binding_key: &str, routing_key: &str) -> bool {
        let mut trie = TopicTrie::new();
        trie.insert(binding_key, 1u8);
        let hit = !routed(&trie, routing_key).is_empty();
        assert_eq!(
            hit,
            naive_matches(binding_key, routing_key),
            "trie and naive matcher disagree on {binding_key:?} vs {routing_key:?}"
        );
        hit
    }

    #[test]
    fn words_of_keys() {
        assert_eq!(words("").count(), 0);
        assert_eq!(words("a").collect::<Vec<_>>(), ["a"]);
        assert_eq!(words(".").collect::<Vec<_>>(), ["", ""]);
        assert_eq!(words("a..b").collect::<Vec<_>>(), ["a", "", "b"]);
    }

    #[test]
    fn hash_alone_matches_everything_including_empty_key() {
        for key in ["", "a", "a.b", ".", "a..b", "*", "#"] {
            assert!(matches("#", key), "# should match {key:?}");
        }
    }

    #[test]
    fn trailing_hash_matches_zero_words() {
        assert!(matches("a.#", "a"));
        assert!(matches("a.#", "a.b"));
        assert!(matches("a.#", "a.b.c"));
        assert!(matches("a.#", "a."));
        assert!(!matches("a.#", "b"));
        assert!(!matches("a.#", ""));
        assert!(matches("#.a", "a"));
        assert!(matches("#.a.#", "a"));
        assert!(matches("#.a.#", "x.y.a.z"));
        assert!(!matches("#.a.#", "x.y"));
    }

    #[test]
    fn star_is_exactly_one_possibly_empty_word() {
        assert!(matches("*", "a"));
        assert!(!matches("*", ""), "\"\" is zero words");
        assert!(!matches("*", "a.b"));
        assert!(matches("a.*", "a."), "\"a.\" is [a, \"\"]");
        assert!(matches("*.b", ".b"));
        assert!(matches("*.*", "."));
        assert!(matches("a.*.b", "a..b"));
        assert!(!matches("a.*.b", "a.b"));
    }

    #[test]
    fn empty_words_are_real_words() {
        assert!(matches("a..b", "a..b"));
        assert!(!matches("a..b", "a.b"));
        assert!(!matches("a.b", "a..b"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
        assert!(!matches("a", ""));
        assert!(matches(".", "."));
        assert!(!matches(".", ""));
    }

    #[test]
    fn consecutive_hashes() {
        for key in ["", "a", "a.b", "a.b.c"] {
            assert!(matches("#.#", key), "#.# should match {key:?}");
        }
        assert!(matches("#.*.#", "a"));
        assert!(!matches("#.*.#", ""));
        assert!(matches("#.#.a.#.#", "a"));
        assert!(matches("#.#.a.#.#", "x.a.y.z"));
    }

    #[test]
    fn wildcards_in_routing_keys_are_plain_words() {
        assert!(matches("*", "*"));
        assert!(matches("#", "#"));
        assert!(!matches("a", "*"));
        assert!(!matches("a", "#"));
        assert!(!matches("a.b", "a.#"));
        assert!(!matches("a.b", "*.b"));
    }

    #[test]
    fn duplicates_and_removal() {
        let mut trie = TopicTrie::new();
        assert!(trie.is_empty());
        assert!(trie.insert("a.*", "q1"));
        assert!(!trie.insert("a.*", "q1"), "same binding twice");
        assert!(trie.insert("a.#", "q1"));
        assert!(trie.insert("#", "q1"));
        assert!(trie.insert("a.*", "q2"));
        assert_eq!(trie.len(), 4);
        // q1 matches through three bindings but is routed once.
        assert_eq!(routed(&trie, "a.b"), ["q1", "q2"]);
        assert_eq!(routed(&trie, "z"), ["q1"]);

        assert!(!trie.remove("a.*", &"q3"), "absent destination");
        assert!(!trie.remove("a.b", &"q1"), "absent key");
        assert!(!trie.remove("a.*.c", &"q1"), "absent longer key");
        assert!(trie.remove("#", &"q1"));
        assert!(!trie.remove("#", &"q1"), "removed already");
        assert_eq!(routed(&trie, "z"), Vec::<&str>::new());
        assert_eq!(routed(&trie, "a"), ["q1"]);
        assert!(trie.remove("a.#", &"q1"));
        assert_eq!(routed(&trie, "a"), Vec::<&str>::new());
        assert!(trie.remove("a.*", &"q1"));
        assert_eq!(routed(&trie, "a.b"), ["q2"]);
        assert!(trie.remove("a.*", &"q2"));
        assert!(trie.is_empty());
        assert_eq!(trie.node_count(), 1, "everything pruned but the root");
    }

    #[test]
    fn pruning_keeps_nodes_other_bindings_need() {
        let mut trie = TopicTrie::new();
        trie.insert("a", 1);
        trie.insert("a.b.c", 2);
        trie.insert("a.x", 3);
        assert_eq!(trie.node_count(), 5); // root, a, a.b, a.b.c, a.x
        assert!(trie.remove("a.b.c", &2));
        assert_eq!(trie.node_count(), 3);
        assert!(trie.remove("a", &1));
        assert_eq!(trie.node_count(), 3, "a.x still needs a");
        assert_eq!(routed(&trie, "a.x"), [3]);
        assert!(trie.remove("a.x", &3));
        assert_eq!(trie.node_count(), 1);
        // The empty binding key lives on the root itself.
        assert!(trie.insert("", 4));
        assert_eq!(trie.node_count(), 1);
        assert_eq!(routed(&trie, ""), [4]);
        assert!(trie.remove("", &4));
        assert!(trie.is_empty());
    }

    #[test]
    fn route_appends_and_dedupes_only_its_own_results() {
        let mut trie = TopicTrie::new();
        for i in 0..100 {
            trie.insert("a.*", i);
            trie.insert("#", i);
        }
        let mut out = vec![7];
        trie.route("a.b", &mut out);
        assert_eq!(
            out.len(),
            101,
            "the pre-existing 7 is kept, each of 0..100 once"
        );
        let mut rest = out[1..].to_vec();
        rest.sort();
        assert_eq!(rest, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn many_hashes_do_not_blow_up() {
        let binding = ["#"; 40].join(".") + ".a";
        let routing = ["x"; 300].join(".");
        let mut trie = TopicTrie::new();
        trie.insert(&binding, 1);
        trie.insert("#.#.#.#.a", 2);
        assert!(routed(&trie, &routing).is_empty());
        assert_eq!(routed(&trie, &(routing + ".a")), [1, 2]);
    }

    #[test]
    fn wide_state_sets_agree_with_naive() {
        // Every binding key of up to 3 words over {a, b, "", *, #}: routing
        // then holds far more than LINEAR_DEDUPE_LIMIT states at once, which
        // exercises the hash-set deduplication path.
        let alphabet = ["a", "b", "", "*", "#"];
        let mut keys = vec![String::new()];
        let mut layer = vec![String::new()];
        for depth in 1..=3 {
            let mut next_layer = Vec::new();
            for prefix in &layer {
                for word in alphabet {
                    let key = if depth == 1 {
                        word.to_string()
                    } else {
                        format!("{prefix}.{word}")
                    };
                    next_layer.push(key);
                }
            }
            keys.extend(next_layer.iter().cloned());
            layer = next_layer;
        }
        let mut trie = TopicTrie::new();
        for (dest, key) in keys.iter().enumerate() {
            assert!(trie.insert(key, dest));
        }
        for routing in ["", "a", "a.b", "a..b", "b.a.b.a", ".", "a.b.a.b.a.b", "#.*"] {
            let expected: Vec<usize> = keys
                .iter()
                .enumerate()
                .filter(|(_, key)| naive_matches(key, routing))
                .map(|(dest, _)| dest)
                .collect();
            assert_eq!(routed(&trie, routing), expected, "routing key {routing:?}");
        }
    }

    #[test]
    fn clones_are_independent() {
        let mut trie = TopicTrie::new();
        trie.insert("a", 1);
        let snapshot = trie.clone();
        trie.insert("a", 2);
        trie.remove("a", &1);
        assert_eq!(routed(&snapshot, "a"), [1]);
        assert_eq!(routed(&trie, "a"), [2]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(String, u8),
        /// Remove a random binding, usually absent.
        Remove(String, u8),
        /// Remove one of the bindings present (if any), picked by index.
        RemovePresent(prop::sample::Index),
        Route(String),
    }

    fn key(alphabet: &'static [&'static str]) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(alphabet), 0..5).prop_map(|w| w.join("."))
    }

    fn binding_key() -> impl Strategy<Value = String> {
        key(&["a", "b", "", "*", "#"])
    }

    fn routing_key() -> impl Strategy<Value = String> {
        // Mostly plain words; occasionally a literal `*` or `#`.
        key(&["a", "b", "", "a", "b", "", "*", "#"])
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (binding_key(), 0..4u8).prop_map(|(k, d)| Op::Insert(k, d)),
            1 => (binding_key(), 0..4u8).prop_map(|(k, d)| Op::Remove(k, d)),
            2 => any::<prop::sample::Index>().prop_map(Op::RemovePresent),
            3 => routing_key().prop_map(Op::Route),
        ]
    }

    /// Number of trie nodes the model's keys need: one per distinct word
    /// prefix, the empty prefix (the root) included.
    fn expected_nodes(model: &BTreeSet<(String, u8)>) -> usize {
        let mut prefixes = HashSet::new();
        prefixes.insert(Vec::new());
        for (key, _) in model {
            let ws: Vec<&str> = words(key).collect();
            for end in 1..=ws.len() {
                prefixes.insert(ws[..end].to_vec());
            }
        }
        prefixes.len()
    }

    fn model_route(model: &BTreeSet<(String, u8)>, routing_key: &str) -> Vec<u8> {
        let hits: BTreeSet<u8> = model
            .iter()
            .filter(|(key, _)| naive_matches(key, routing_key))
            .map(|(_, dest)| *dest)
            .collect();
        hits.into_iter().collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn trie_agrees_with_naive_model(ops in prop::collection::vec(op(), 1..40)) {
            let mut trie = TopicTrie::new();
            let mut model = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(key, dest) => {
                        let added = model.insert((key.clone(), dest));
                        prop_assert_eq!(trie.insert(&key, dest), added);
                    }
                    Op::Remove(key, dest) => {
                        let removed = model.remove(&(key.clone(), dest));
                        prop_assert_eq!(trie.remove(&key, &dest), removed);
                    }
                    Op::RemovePresent(index) => {
                        // Index::index panics on 0, hence the guard.
                        let picked = if model.is_empty() {
                            None
                        } else {
                            model.iter().nth(index.index(model.len())).cloned()
                        };
                        if let Some((key, dest)) = picked {
                            model.remove(&(key.clone(), dest));
                            prop_assert!(trie.remove(&key, &dest), "present binding {:?}", (key, dest));
                        }
                    }
                    Op::Route(key) => {
                        let mut out = Vec::new();
                        trie.route(&key, &mut out);
                        let unsorted_len = out.len();
                        out.sort();
                        out.dedup();
                        prop_assert_eq!(out.len(), unsorted_len, "duplicate destinations");
                        prop_assert_eq!(out, model_route(&model, &key), "routing key {:?}", key);
                    }
                }
                prop_assert_eq!(trie.len(), model.len());
                prop_assert_eq!(trie.is_empty(), model.is_empty());
                prop_assert_eq!(trie.node_count(), expected_nodes(&model));
            }
        }

        #[test]
        fn single_binding_agrees_with_naive(binding in binding_key(), routing in routing_key()) {
            let mut trie = TopicTrie::new();
            trie.insert(&binding, ());
            let mut out = Vec::new();
            trie.route(&routing, &mut out);
            prop_assert_eq!(!out.is_empty(), naive_matches(&binding, &routing));
        }
    }
}
