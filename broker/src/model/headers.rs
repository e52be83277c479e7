//! Headers-exchange matching, as RabbitMQ does it.
//!
//! A headers exchange ignores the routing key and compares the message's
//! `headers` property with each binding's arguments. The binding argument
//! `x-match` says how the remaining arguments combine:
//!
//! | `x-match`            | matches when                       | `x-` arguments |
//! |----------------------|------------------------------------|----------------|
//! | `all` (default)      | every argument matches             | ignored        |
//! | `any`                | at least one argument matches      | ignored        |
//! | `all-with-x`         | every argument matches             | compared       |
//! | `any-with-x`         | at least one argument matches      | compared       |
//!
//! `x-match` itself is never compared. An argument matches when the message
//! has a header of that name and, unless the argument's value is void (`V`,
//! meaning "must be present"), an equal value. So `all` with nothing to
//! compare matches every message and `any` with nothing to compare matches
//! none. A message without headers is treated as one with an empty table.
//!
//! Bindings are parsed once, when bound ([`HeadersBinding::parse`]), so that
//! per-message matching does not re-read `x-match` or re-filter arguments.

use protocol_amqp::{FieldTable, FieldValue, ShortStr, reply_code};

/// The binding argument that selects the match mode.
const X_MATCH: &str = "x-match";

/// Prefix of arguments that `all` and `any` leave out of the comparison.
const X_PREFIX: &str = "x-";

/// How a headers binding combines its arguments (the `x-match` argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XMatch {
    /// Every non-`x-` argument must match. The default when `x-match` is absent.
    All,
    /// At least one non-`x-` argument must match.
    Any,
    /// Every argument except `x-match` must match, `x-` ones included.
    AllWithX,
    /// At least one argument other than `x-match` must match, `x-` ones included.
    AnyWithX,
}

impl XMatch {
    /// Parses an `x-match` value; `None` for anything RabbitMQ does not know.
    pub fn parse(value: &[u8]) -> Option<XMatch> {
        match value {
            b"all" => Some(XMatch::All),
            b"any" => Some(XMatch::Any),
            b"all-with-x" => Some(XMatch::AllWithX),
            b"any-with-x" => Some(XMatch::AnyWithX),
            _ => None,
        }
    }

    /// The value as written in binding arguments (for listings and definitions).
    pub fn as_str(self) -> &'static str {
        match self {
            XMatch::All => "all",
            XMatch::Any => "any",
            XMatch::AllWithX => "all-with-x",
            XMatch::AnyWithX => "any-with-x",
        }
    }

    /// Whether every argument must match (as opposed to at least one).
    fn requires_all(self) -> bool {
        matches!(self, XMatch::All | XMatch::AllWithX)
    }

    /// Whether arguments named `x-…` take part in the comparison.
    fn compares_x_args(self) -> bool {
        matches!(self, XMatch::AllWithX | XMatch::AnyWithX)
    }
}

/// Parsed binding arguments of a headers-exchange binding.
///
/// Holds only what matching needs: the mode, and the arguments that take
/// part in the comparison (with `x-match`, and for `all`/`any` every `x-…`
/// argument, already left out).
#[derive(Clone, Debug, PartialEq)]
pub struct HeadersBinding {
    mode: XMatch,
    /// (header name, required value); `None` (void) = must be present with any value.
    args: Vec<(ShortStr, Option<FieldValue>)>,
}

/// Why binding arguments cannot form a headers binding. RabbitMQ rejects such
/// a binding with 406 PRECONDITION_FAILED (see [`HeadersBindingError::reply_code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadersBindingError {
    /// `x-match` is a long string, but not one of the four known modes.
    #[error("invalid x-match field value {0:?}; expected all, any, all-with-x, or any-with-x")]
    InvalidMatch(String),
    /// `x-match` is not a long string; the field holds the value's type tag.
    #[error("invalid x-match field type '{0}'; expected longstr")]
    InvalidMatchType(char),
}

impl HeadersBindingError {
    /// The reply code of the channel.close the broker answers with: 406
    /// PRECONDITION_FAILED, as RabbitMQ does for an invalid binding.
    pub fn reply_code(&self) -> u16 {
        reply_code::PRECONDITION_FAILED
    }
}

impl HeadersBinding {
    /// Parses the arguments of a queue.bind / exchange.bind on a headers exchange.
    ///
    /// `x-match` must be a long string `all` (the default when absent),
    /// `any`, `all-with-x` or `any-with-x`; any other value or type is an
    /// error (RabbitMQ rejects the binding with 406 PRECONDITION_FAILED).
    pub fn parse(args: &FieldTable) -> Result<HeadersBinding, HeadersBindingError> {
        let mode = match args.get(X_MATCH) {
            None => XMatch::All,
            Some(FieldValue::LongStr(value)) => XMatch::parse(value).ok_or_else(|| {
                HeadersBindingError::InvalidMatch(String::from_utf8_lossy(value).into_owned())
            })?,
            Some(other) => {
                return Err(HeadersBindingError::InvalidMatchType(char::from(
                    other.tag(),
                )));
            }
        };
        let args = args
            .iter()
            .filter(|(name, _)| {
                name.as_str() != X_MATCH && (mode.compares_x_args() || !name.starts_with(X_PREFIX))
            })
            .map(|(name, value)| {
                let required = match value {
                    FieldValue::Void => None,
                    other => Some(other.clone()),
                };
                (name.clone(), required)
            })
            .collect();
        Ok(HeadersBinding { mode, args })
    }

    /// The match mode, for listings and definitions.
    pub fn mode(&self) -> XMatch {
        self.mode
    }

    /// Whether a message with these `headers` (`None` = the message has no
    /// headers property, same as an empty table) matches this binding.
    ///
    /// `all`/`all-with-x` with no argument to compare match every message;
    /// `any`/`any-with-x` with none match no message (RabbitMQ's behaviour).
    pub fn matches(&self, headers: Option<&FieldTable>) -> bool {
        let arg_matches = |(name, required): &(ShortStr, Option<FieldValue>)| match headers
            .and_then(|h| h.get(name))
        {
            None => false,
            Some(actual) => required
                .as_ref()
                .is_none_or(|expected| values_equal(expected, actual)),
        };
        if self.mode.requires_all() {
            self.args.iter().all(arg_matches)
        } else {
            self.args.iter().any(arg_matches)
        }
    }
}

/// Whether a message header value satisfies a binding argument value.
///
/// Same type and same value, except that a long string and a byte array with
/// the same bytes are equal: clients differ in which of the two they send for
/// strings, and a binding made by one client should match messages from
/// another.
fn values_equal(expected: &FieldValue, actual: &FieldValue) -> bool {
    // RabbitMQ compares header values with Erlang's loose `==`: numbers of different wire
    // types are equal when their values are (`I32(1)` matches `I64(1)` and `F64(1.0)`), and a
    // long string equals a byte array with the same bytes. Clients differ in which integer
    // width they send, so this matters in practice.
    match (number(expected), number(actual)) {
        (Some(a), Some(b)) => return a == b,
        (Some(_), None) | (None, Some(_)) => return false,
        (None, None) => {}
    }
    match (expected, actual) {
        (
            FieldValue::LongStr(a) | FieldValue::ByteArray(a),
            FieldValue::LongStr(b) | FieldValue::ByteArray(b),
        ) => a == b,
        _ => expected == actual,
    }
}

/// A numeric value, for the loose comparison; `None` for non-numbers.
fn number(v: &FieldValue) -> Option<Num> {
    Some(match *v {
        FieldValue::I8(n) => Num::Int(i128::from(n)),
        FieldValue::U8(n) => Num::Int(i128::from(n)),
        FieldValue::I16(n) => Num::Int(i128::from(n)),
        FieldValue::U16(n) => Num::Int(i128::from(n)),
        FieldValue::I32(n) => Num::Int(i128::from(n)),
        FieldValue::U32(n) => Num::Int(i128::from(n)),
        FieldValue::I64(n) => Num::Int(i128::from(n)),
        FieldValue::F32(f) => Num::Float(f64::from(f)),
        FieldValue::F64(f) => Num::Float(f),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

impl PartialEq for Num {
    fn eq(&self, other: &Num) -> bool {
        match (*self, *other) {
            (Num::Int(a), Num::Int(b)) => a == b,
            (Num::Float(a), Num::Float(b)) => a == b,
            // Exact comparison: the float must hold exactly that integer.
            (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => {
                f.fract() == 0.0 && (-1.7e38..=1.7e38).contains(&f) && (f as i128) == i
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn s(text: &'static str) -> FieldValue {
        FieldValue::LongStr(Bytes::from_static(text.as_bytes()))
    }

    fn table(entries: &[(&'static str, FieldValue)]) -> FieldTable {
        let mut t = FieldTable::new();
        for (name, value) in entries {
            t.insert(ShortStr::from_static(name), value.clone());
        }
        t
    }

    fn binding(entries: &[(&'static str, FieldValue)]) -> HeadersBinding {
        match HeadersBinding::parse(&table(entries)) {
            Ok(b) => b,
            Err(e) => panic!("binding {entries:?} rejected: {e}"),
        }
    }

    fn matches(b: &HeadersBinding, headers: &[(&'static str, FieldValue)]) -> bool {
        b.matches(Some(&table(headers)))
    }

    #[test]
    fn parses_every_mode_and_defaults_to_all() {
        assert_eq!(binding(&[]).mode(), XMatch::All);
        assert_eq!(binding(&[("a", FieldValue::I32(1))]).mode(), XMatch::All);
        for mode in [XMatch::All, XMatch::Any, XMatch::AllWithX, XMatch::AnyWithX] {
            let b = HeadersBinding::parse(&table(&[(
                "x-match",
                FieldValue::LongStr(Bytes::from_static(mode.as_str().as_bytes())),
            )]));
            assert_eq!(b.map(|b| b.mode()), Ok(mode));
        }
    }

    #[test]
    fn rejects_unknown_x_match_value_or_type() {
        assert_eq!(
            HeadersBinding::parse(&table(&[("x-match", s("some"))])),
            Err(HeadersBindingError::InvalidMatch("some".into()))
        );
        assert_eq!(
            HeadersBinding::parse(&table(&[("x-match", s("ALL"))])),
            Err(HeadersBindingError::InvalidMatch("ALL".into())),
            "case matters"
        );
        assert_eq!(
            HeadersBinding::parse(&table(&[("x-match", FieldValue::I32(1))])),
            Err(HeadersBindingError::InvalidMatchType('I'))
        );
        // RabbitMQ accepts only a long string here, not a byte array.
        let err = HeadersBinding::parse(&table(&[(
            "x-match",
            FieldValue::ByteArray(Bytes::from_static(b"any")),
        )]));
        assert_eq!(err, Err(HeadersBindingError::InvalidMatchType('x')));
        assert_eq!(
            HeadersBinding::parse(&table(&[("x-match", FieldValue::Void)])),
            Err(HeadersBindingError::InvalidMatchType('V'))
        );
    }

    #[test]
    fn errors_say_what_is_wrong_and_map_to_406() {
        let e = HeadersBindingError::InvalidMatch("some".into());
        assert_eq!(
            e.to_string(),
            "invalid x-match field value \"some\"; expected all, any, all-with-x, or any-with-x"
        );
        assert_eq!(e.reply_code(), 406);
        let e = HeadersBindingError::InvalidMatchType('I');
        assert_eq!(
            e.to_string(),
            "invalid x-match field type 'I'; expected longstr"
        );
        assert_eq!(e.reply_code(), 406);
    }

    #[test]
    fn all_requires_every_argument() {
        let b = binding(&[
            ("x-match", s("all")),
            ("format", s("pdf")),
            ("type", s("report")),
        ]);
        assert!(matches(&b, &[("format", s("pdf")), ("type", s("report"))]));
        assert!(
            matches(
                &b,
                &[
                    ("type", s("report")),
                    ("extra", FieldValue::I8(1)),
                    ("format", s("pdf"))
                ]
            ),
            "extra headers and order do not matter"
        );
        assert!(!matches(&b, &[("format", s("pdf"))]), "missing header");
        assert!(
            !matches(&b, &[("format", s("pdf")), ("type", s("log"))]),
            "wrong value"
        );
        assert!(!b.matches(None));
    }

    #[test]
    fn any_requires_one_argument() {
        let b = binding(&[
            ("x-match", s("any")),
            ("format", s("pdf")),
            ("type", s("report")),
        ]);
        assert!(matches(&b, &[("format", s("pdf"))]));
        assert!(matches(&b, &[("type", s("report")), ("format", s("zip"))]));
        assert!(!matches(&b, &[("format", s("zip")), ("type", s("log"))]));
        assert!(!matches(&b, &[]));
        assert!(!b.matches(None));
    }

    #[test]
    fn nothing_to_compare_all_matches_any_does_not() {
        let all = binding(&[]);
        assert!(all.matches(None));
        assert!(matches(&all, &[("a", FieldValue::I32(1))]));
        let all_only_x = binding(&[("x-match", s("all")), ("x-foo", s("bar"))]);
        assert!(all_only_x.matches(None));

        let any = binding(&[("x-match", s("any"))]);
        assert!(!any.matches(None));
        assert!(!matches(&any, &[("a", FieldValue::I32(1))]));
        let any_only_x = binding(&[("x-match", s("any")), ("x-foo", s("bar"))]);
        assert!(
            !matches(&any_only_x, &[("x-foo", s("bar"))]),
            "x- args are ignored by any"
        );

        let all_with_x = binding(&[("x-match", s("all-with-x"))]);
        assert!(all_with_x.matches(None));
        let any_with_x = binding(&[("x-match", s("any-with-x"))]);
        assert!(!any_with_x.matches(None));
    }

    #[test]
    fn x_arguments_ignored_by_all_and_any() {
        let b = binding(&[
            ("x-match", s("all")),
            ("x-foo", FieldValue::I32(1)),
            ("a", FieldValue::I32(1)),
        ]);
        assert!(matches(&b, &[("a", FieldValue::I32(1))]));
        assert!(matches(
            &b,
            &[("a", FieldValue::I32(1)), ("x-foo", FieldValue::I32(2))]
        ));
    }

    #[test]
    fn with_x_modes_compare_x_arguments_but_not_x_match() {
        let b = binding(&[
            ("x-match", s("all-with-x")),
            ("x-foo", FieldValue::I32(1)),
            ("a", FieldValue::I32(1)),
        ]);
        assert!(!matches(&b, &[("a", FieldValue::I32(1))]), "x-foo required");
        assert!(!matches(
            &b,
            &[("a", FieldValue::I32(1)), ("x-foo", FieldValue::I32(2))]
        ));
        assert!(
            matches(
                &b,
                &[("a", FieldValue::I32(1)), ("x-foo", FieldValue::I32(1))]
            ),
            "the message needs no x-match header"
        );

        let b = binding(&[
            ("x-match", s("any-with-x")),
            ("x-foo", FieldValue::I32(1)),
            ("a", FieldValue::I32(1)),
        ]);
        assert!(matches(&b, &[("x-foo", FieldValue::I32(1))]));
        assert!(matches(&b, &[("a", FieldValue::I32(1))]));
        assert!(!matches(&b, &[("x-foo", FieldValue::I32(2))]));
        assert!(
            !matches(&b, &[("x-match", s("any-with-x"))]),
            "x-match is never compared"
        );
    }

    #[test]
    fn void_argument_means_present_with_any_value() {
        let b = binding(&[("flag", FieldValue::Void)]);
        assert!(matches(&b, &[("flag", FieldValue::Bool(false))]));
        assert!(matches(&b, &[("flag", s("anything"))]));
        assert!(matches(&b, &[("flag", FieldValue::Void)]));
        assert!(!matches(&b, &[("other", FieldValue::Void)]));
        assert!(!b.matches(None));

        let b = binding(&[
            ("x-match", s("any")),
            ("flag", FieldValue::Void),
            ("a", FieldValue::I32(1)),
        ]);
        assert!(matches(&b, &[("flag", FieldValue::I64(9))]));
        assert!(!matches(&b, &[("a", FieldValue::I32(2))]));

        // A void header does not equal a concrete binding value.
        let b = binding(&[("a", FieldValue::I32(1))]);
        assert!(!matches(&b, &[("a", FieldValue::Void)]));
    }

    #[test]
    fn values_compare_loosely_like_rabbitmq() {
        let b = binding(&[("n", FieldValue::I32(1))]);
        assert!(matches(&b, &[("n", FieldValue::I32(1))]));
        assert!(
            matches(&b, &[("n", FieldValue::I64(1))]),
            "numbers compare by value across wire types, as in RabbitMQ"
        );
        assert!(matches(&b, &[("n", FieldValue::F64(1.0))]));
        assert!(!matches(&b, &[("n", FieldValue::F64(1.5))]));
        assert!(!matches(&b, &[("n", FieldValue::I64(2))]));
        assert!(!matches(&b, &[("n", s("1"))]), "string vs number");
        assert!(!matches(&b, &[("n", FieldValue::Bool(true))]));

        let b = binding(&[("t", FieldValue::Table(table(&[("k", s("v"))])))]);
        assert!(matches(
            &b,
            &[("t", FieldValue::Table(table(&[("k", s("v"))])))]
        ));
        assert!(!matches(
            &b,
            &[("t", FieldValue::Table(table(&[("k", s("w"))])))]
        ));

        let b = binding(&[(
            "d",
            FieldValue::Decimal {
                scale: 2,
                value: 100,
            },
        )]);
        assert!(matches(
            &b,
            &[(
                "d",
                FieldValue::Decimal {
                    scale: 2,
                    value: 100
                }
            )]
        ));
        assert!(!matches(
            &b,
            &[(
                "d",
                FieldValue::Decimal {
                    scale: 1,
                    value: 100
                }
            )]
        ));
    }

    #[test]
    fn long_string_and_byte_array_with_same_bytes_are_equal() {
        let bytes = FieldValue::ByteArray(Bytes::from_static(b"pdf"));
        let b = binding(&[("format", s("pdf"))]);
        assert!(matches(&b, &[("format", bytes.clone())]));
        let b = binding(&[("format", bytes)]);
        assert!(matches(&b, &[("format", s("pdf"))]));
        assert!(!matches(&b, &[("format", s("zip"))]));
    }

    #[test]
    fn none_headers_equal_empty_table() {
        for b in [
            binding(&[]),
            binding(&[("x-match", s("any")), ("a", FieldValue::Void)]),
            binding(&[("a", FieldValue::I32(1))]),
            binding(&[("x-match", s("all-with-x")), ("x-a", FieldValue::I32(1))]),
        ] {
            assert_eq!(
                b.matches(None),
                b.matches(Some(&FieldTable::new())),
                "{b:?}"
            );
        }
    }
}
