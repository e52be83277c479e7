//! MQTT topics ⇄ AMQP routing keys, the way RabbitMQ's MQTT plugin maps them (`a/b/c` ⇄
//! `a.b.c`, `+` ⇄ `*`, `#` ⇄ `#`), but lossless.
//!
//! RabbitMQ turns a `.` inside an MQTT topic level into a word separator, so `a.b/c` and
//! `a/b/c` collide. Here every level is escaped so that any MQTT topic survives
//! MQTT → AMQP → MQTT unchanged:
//!
//! | MQTT level text | AMQP word text |
//! |---|---|
//! | `%` | `%25` |
//! | `.` | `%2E` |
//! | `*` | `%2A` (so a literal `*` level never acts as an AMQP wildcard) |
//!
//! In the other direction an AMQP word is unescaped, and the characters an MQTT topic name
//! cannot carry inside a level are escaped: `/` → `%2F`, `+` → `%2B`, `#` → `%23`. Plain
//! topics (letters, digits, `-`, `_`, …) look the same on both sides.

/// AMQP routing key for an MQTT topic name.
pub fn topic_to_routing_key(topic: &str) -> String {
    let mut out = String::with_capacity(topic.len() + 8);
    for (i, level) in topic.split('/').enumerate() {
        if i > 0 {
            out.push('.');
        }
        escape_level(level, &mut out);
    }
    out
}

/// AMQP binding key for an MQTT topic filter (`+` → `*`, `#` → `#`).
pub fn filter_to_binding_key(filter: &str) -> String {
    let mut out = String::with_capacity(filter.len() + 8);
    for (i, level) in filter.split('/').enumerate() {
        if i > 0 {
            out.push('.');
        }
        match level {
            "+" => out.push('*'),
            "#" => out.push('#'),
            _ => escape_level(level, &mut out),
        }
    }
    out
}

/// MQTT topic name for an AMQP routing key.
pub fn routing_key_to_topic(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for (i, word) in key.split('.').enumerate() {
        if i > 0 {
            out.push('/');
        }
        unescape_word(word, &mut out);
    }
    out
}

fn escape_level(level: &str, out: &mut String) {
    for c in level.chars() {
        match c {
            '%' => out.push_str("%25"),
            '.' => out.push_str("%2E"),
            '*' => out.push_str("%2A"),
            c => out.push(c),
        }
    }
}

fn unescape_word(word: &str, out: &mut String) {
    let mut rest = word;
    while let Some(c) = rest.chars().next() {
        let decoded = match c {
            '%' if rest.starts_with("%25") => Some('%'),
            '%' if rest.starts_with("%2E") => Some('.'),
            '%' if rest.starts_with("%2A") => Some('*'),
            _ => None,
        };
        if let Some(d) = decoded {
            out.push(d);
            rest = &rest[3..];
            continue;
        }
        match c {
            '/' => out.push_str("%2F"),
            '+' => out.push_str("%2B"),
            '#' => out.push_str("%23"),
            // A `%` that is not one of our escapes stays as it is.
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::topic_trie::TopicTrie;
    use proptest::prelude::*;

    #[test]
    fn plain_topics_map_like_rabbitmq() {
        assert_eq!(topic_to_routing_key("a/b/c"), "a.b.c");
        assert_eq!(filter_to_binding_key("a/+/#"), "a.*.#");
        assert_eq!(routing_key_to_topic("a.b.c"), "a/b/c");
        assert_eq!(topic_to_routing_key("/"), ".");
        assert_eq!(topic_to_routing_key("a//b"), "a..b");
    }

    #[test]
    fn dots_and_stars_inside_levels_are_escaped() {
        assert_eq!(topic_to_routing_key("v1.2/x"), "v1%2E2.x");
        assert_eq!(routing_key_to_topic("v1%2E2.x"), "v1.2/x");
        assert_eq!(topic_to_routing_key("a/*"), "a.%2A");
        assert_eq!(filter_to_binding_key("a/*/+"), "a.%2A.*");
        assert_eq!(topic_to_routing_key("100%"), "100%25");
        assert_eq!(routing_key_to_topic("x/y.+.#"), "x%2Fy/%2B/%23");
    }

    /// Naive MQTT filter matching (no `$` rule: that is enforced at delivery).
    fn mqtt_matches(filter: &str, topic: &str) -> bool {
        let f: Vec<&str> = filter.split('/').collect();
        let t: Vec<&str> = topic.split('/').collect();
        fn go(f: &[&str], t: &[&str]) -> bool {
            match (f.first(), t.first()) {
                (Some(&"#"), _) => true,
                (Some(&"+"), Some(_)) => go(&f[1..], &t[1..]),
                (Some(a), Some(b)) => a == b && go(&f[1..], &t[1..]),
                (None, None) => true,
                _ => false,
            }
        }
        go(&f, &t)
    }

    fn level() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!['a', 'b', '.', '*', '%', '2', 'E', 'é']),
            0..4,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    /// MQTT topic names are at least one character long ("" is zero words in AMQP, not one).
    fn topic() -> impl Strategy<Value = String> {
        prop::collection::vec(level(), 1..4)
            .prop_map(|ls| ls.join("/"))
            .prop_filter("topic names are not empty", |t| !t.is_empty())
    }

    fn filter() -> impl Strategy<Value = String> {
        prop::collection::vec(prop_oneof![level(), Just("+".to_string())], 1..4)
            .prop_flat_map(|ls| (Just(ls), any::<bool>()))
            .prop_map(|(mut ls, hash)| {
                if hash {
                    ls.push("#".into());
                }
                ls.join("/")
            })
    }

    proptest! {
        #[test]
        fn mqtt_topics_survive_the_round_trip(t in topic()) {
            prop_assert_eq!(routing_key_to_topic(&topic_to_routing_key(&t)), t);
        }

        #[test]
        fn amqp_matching_agrees_with_mqtt_matching(f in filter(), t in topic()) {
            let mut trie = TopicTrie::new();
            trie.insert(&filter_to_binding_key(&f), 1u8);
            let mut out = Vec::new();
            trie.route(&topic_to_routing_key(&t), &mut out);
            prop_assert_eq!(!out.is_empty(), mqtt_matches(&f, &t), "filter {:?} topic {:?}", f, t);
        }
    }
}
