//! Topic names, topic filters and shared subscriptions (§4.7 of both specs).
//!
//! Both are UTF-8 strings of 1..=65,535 bytes without U+0000, split into
//! levels by `/` (empty levels allowed). A topic **name** (PUBLISH, will)
//! has no wildcards. A topic **filter** (SUBSCRIBE) may use `+` for exactly
//! one level and `#` for this level and everything below; each must fill a
//! whole level and `#` must be last. Names starting with `$` (`$SYS/...`)
//! are not matched by a filter whose first level is `+` or `#`.

use std::fmt;

use crate::error::TopicError;

fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > usize::from(u16::MAX) {
        return Err(TopicError::TooLong);
    }
    if s.contains('\0') {
        return Err(TopicError::Nul);
    }
    Ok(())
}

/// A validated topic name. May be empty only when built with
/// [`TopicName::empty`], for a 5.0 PUBLISH that uses a Topic Alias.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicName(String);

impl TopicName {
    /// Validates a topic name: non-empty, no wildcards, no U+0000, fits in
    /// an MQTT string.
    pub fn new(s: impl Into<String>) -> Result<TopicName, TopicError> {
        let s = s.into();
        check_common(&s)?;
        if s.contains(['+', '#']) {
            return Err(TopicError::WildcardInName);
        }
        Ok(TopicName(s))
    }

    /// The empty name a 5.0 PUBLISH carries when its Topic Alias stands in
    /// for the topic.
    pub fn empty() -> TopicName {
        TopicName(String::new())
    }

    /// True only for [`TopicName::empty`].
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The levels between `/` separators.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// True for server-internal topics such as `$SYS/...`, which leading
    /// wildcards do not match.
    pub fn is_dollar(&self) -> bool {
        self.0.starts_with('$')
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated topic filter, possibly with wildcards.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(String);

impl TopicFilter {
    /// Validates a topic filter: non-empty, no U+0000, `+` and `#` each a
    /// whole level, `#` only as the last level.
    pub fn new(s: impl Into<String>) -> Result<TopicFilter, TopicError> {
        let s = s.into();
        check_common(&s)?;
        let mut levels = s.split('/').peekable();
        while let Some(level) = levels.next() {
            let last = levels.peek().is_none();
            let ok = match level {
                "+" => true,
                "#" => last,
                other => !other.contains(['+', '#']),
            };
            if !ok {
                return Err(TopicError::BadWildcard);
            }
        }
        Ok(TopicFilter(s))
    }

    /// The filter as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if the filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.0.contains(['+', '#'])
    }

    /// Whether a PUBLISH to `name` matches this filter.
    ///
    /// The filter is taken literally: for a `$share/group/filter`
    /// subscription, match with [`SharedSubscription::filter`] instead.
    pub fn matches(&self, name: &TopicName) -> bool {
        // A filter without wildcards matches only its own text: one comparison, not a walk
        // over the levels (deliveries check it once per subscription).
        if !self.0.bytes().any(|b| b == b'+' || b == b'#') {
            return self.0 == name.as_str();
        }
        if name.is_dollar() && self.0.starts_with(['+', '#']) {
            return false;
        }
        let mut names = name.levels();
        for f in self.0.split('/') {
            match (f, names.next()) {
                ("#", _) => return true,
                ("+", Some(_)) => {}
                (f, Some(n)) if f == n => {}
                _ => return false,
            }
        }
        names.next().is_none()
    }

    /// The shared subscription this filter names, if it starts with
    /// `$share/`; see [`SharedSubscription::parse`].
    pub fn shared(&self) -> Result<Option<SharedSubscription>, TopicError> {
        SharedSubscription::parse(&self.0)
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 5.0 shared subscription `$share/{group}/{filter}`: each matching
/// message goes to one session of the group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SharedSubscription {
    /// The share name: non-empty, without `/`, `+` or `#`.
    pub group: String,
    /// The filter the group subscribes to.
    pub filter: TopicFilter,
}

impl SharedSubscription {
    /// The `$share/` prefix that marks a shared subscription.
    pub const PREFIX: &'static str = "$share/";

    /// Splits `$share/group/filter`. `Ok(None)` if `s` does not start with
    /// `$share/` (an ordinary filter); an error if it does but the group is
    /// empty or has wildcards, or the filter part is missing or invalid.
    pub fn parse(s: &str) -> Result<Option<SharedSubscription>, TopicError> {
        let Some(rest) = s.strip_prefix(Self::PREFIX) else {
            return Ok(None);
        };
        let Some((group, filter)) = rest.split_once('/') else {
            return Err(TopicError::BadShare);
        };
        if group.is_empty() || group.contains(['+', '#']) {
            return Err(TopicError::BadShare);
        }
        let filter = TopicFilter::new(filter).map_err(|_| TopicError::BadShare)?;
        Ok(Some(SharedSubscription {
            group: group.to_owned(),
            filter,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> TopicName {
        TopicName::new(s).expect("valid name")
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(s).expect("valid filter")
    }

    #[test]
    fn names() {
        assert!(TopicName::new("a/b").is_ok());
        assert!(TopicName::new("/").is_ok());
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicName::new("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a#"), Err(TopicError::WildcardInName));
        assert_eq!(TopicName::new("a\0"), Err(TopicError::Nul));
        assert_eq!(TopicName::new("a".repeat(65_536)), Err(TopicError::TooLong));
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "+/+",
            "/+",
            "a/+/b",
            "sport/tennis/#",
            "+/tennis/#",
            "$SYS/#",
        ] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        }
        for bad in ["a#", "a/#/b", "sport+", "a/b+/c", "#/a", "++", "##"] {
            assert_eq!(TopicFilter::new(bad), Err(TopicError::BadWildcard), "{bad}");
        }
        assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
    }

    #[test]
    fn matching_spec_examples() {
        // §4.7.1.2: "sport/tennis/player1/#" matches the parent as well.
        let f = filter("sport/tennis/player1/#");
        assert!(f.matches(&name("sport/tennis/player1")));
        assert!(f.matches(&name("sport/tennis/player1/ranking")));
        assert!(f.matches(&name("sport/tennis/player1/score/wimbledon")));
        assert!(filter("sport/#").matches(&name("sport")));
        // §4.7.1.3
        let f = filter("sport/tennis/+");
        assert!(f.matches(&name("sport/tennis/player1")));
        assert!(!f.matches(&name("sport/tennis/player1/ranking")));
        assert!(!filter("sport/+").matches(&name("sport")));
        assert!(filter("sport/+").matches(&name("sport/")));
        assert!(filter("+/+").matches(&name("/finance")));
        assert!(filter("/+").matches(&name("/finance")));
        assert!(!filter("+").matches(&name("/finance")));
        assert!(filter("#").matches(&name("a/b/c")));
        assert!(!filter("a/b").matches(&name("a/b/c")));
        assert!(!filter("a/b/c").matches(&name("a/b")));
        // Without wildcards: the same text, level for level (empty levels too).
        assert!(filter("a/b").matches(&name("a/b")));
        assert!(filter("a//b/").matches(&name("a//b/")));
        assert!(!filter("a/b").matches(&name("a/b/")));
        assert!(!filter("a/b").matches(&name("a/c")));
    }

    #[test]
    fn dollar_topics() {
        // §4.7.2
        assert!(!filter("#").matches(&name("$SYS/x")));
        assert!(!filter("+/monitor/Clients").matches(&name("$SYS/monitor/Clients")));
        assert!(filter("$SYS/#").matches(&name("$SYS/monitor/Clients")));
        assert!(filter("$SYS/monitor/+").matches(&name("$SYS/monitor/Clients")));
        assert!(filter("a/+").matches(&name("a/$x")));
        assert!(filter("$SYS/x").matches(&name("$SYS/x")));
    }

    #[test]
    fn shared() {
        let s = SharedSubscription::parse("$share/g1/a/+/#")
            .expect("ok")
            .expect("shared");
        assert_eq!(s.group, "g1");
        assert_eq!(s.filter.as_str(), "a/+/#");
        assert_eq!(SharedSubscription::parse("a/b"), Ok(None));
        assert_eq!(SharedSubscription::parse("$share"), Ok(None));
        for bad in [
            "$share/",
            "$share//a",
            "$share/g",
            "$share/g+/a",
            "$share/#/a",
            "$share/g/",
            "$share/g/a#",
        ] {
            assert_eq!(
                SharedSubscription::parse(bad),
                Err(TopicError::BadShare),
                "{bad}"
            );
        }
        assert!(filter("$share/g/x").shared().expect("ok").is_some());
    }
}
