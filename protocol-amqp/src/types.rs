//! Value types of the AMQP wire: short strings, field values and field tables.
//!
//! Field value tags follow RabbitMQ (and every RabbitMQ client), not the
//! 0-9-1 PDF grammar: `s` is a signed 16-bit integer, `u` unsigned 16,
//! `l` signed 64, `x` a byte array; `L` is accepted as signed 64 on input but
//! never emitted.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{Reader, begin_len, patch_len, put_longstr, put_shortstr};
use crate::error::{SyntaxError, TooLong};

/// How deeply tables and arrays may nest before decoding gives up.
///
/// RabbitMQ has no explicit limit, but an unbounded recursive decoder lets a
/// peer overflow our stack with a frame of nested `F` tags; real tables never
/// nest more than a few levels.
pub const MAX_TABLE_DEPTH: usize = 64;

/// A UTF-8 string of at most 255 bytes, the AMQP `shortstr`.
///
/// The length bound is checked at construction, so encoding never fails. Shared (`Arc<str>`):
/// exchange names, routing keys and consumer tags are copied into every delivery and
/// every unacked entry, and a clone must not allocate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ShortStr(Arc<str>);

impl ShortStr {
    /// Largest length in bytes a shortstr can have.
    pub const MAX_LEN: usize = 255;

    /// Wraps a string, failing if it is longer than 255 bytes.
    pub fn new(s: impl Into<String>) -> Result<ShortStr, TooLong> {
        let s = s.into();
        if s.len() > Self::MAX_LEN {
            return Err(TooLong(s.len()));
        }
        Ok(ShortStr(Arc::from(s)))
    }

    /// Wraps a string literal.
    ///
    /// # Panics
    /// Panics if the literal is longer than 255 bytes: a programming error in
    /// a constant, never something a peer can cause.
    pub fn from_static(s: &'static str) -> ShortStr {
        match ShortStr::new(s) {
            Ok(s) => s,
            Err(e) => panic!("ShortStr::from_static: {e}"),
        }
    }

    /// Wraps a string, cutting it at the last char boundary within 255 bytes.
    /// Handy for reply texts built from user-controlled names.
    pub fn truncating(s: impl Into<String>) -> ShortStr {
        let mut s = s.into();
        if s.len() > Self::MAX_LEN {
            let mut end = Self::MAX_LEN;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
        }
        ShortStr(Arc::from(s))
    }

    /// Internal constructor for strings already known to be short.
    pub(crate) fn from_checked(s: &str) -> ShortStr {
        debug_assert!(s.len() <= Self::MAX_LEN);
        ShortStr(Arc::from(s))
    }

    /// The string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Unwraps into the owned string.
    pub fn into_string(self) -> String {
        self.0.to_string()
    }

    /// Bytes this string takes on the wire (length octet included).
    pub fn encoded_len(&self) -> usize {
        1 + self.0.len()
    }
}

impl Deref for ShortStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ShortStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ShortStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ShortStr {
    type Error = TooLong;
    fn try_from(s: String) -> Result<Self, TooLong> {
        ShortStr::new(s)
    }
}

impl TryFrom<&str> for ShortStr {
    type Error = TooLong;
    fn try_from(s: &str) -> Result<Self, TooLong> {
        ShortStr::new(s)
    }
}

impl PartialEq<str> for ShortStr {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for ShortStr {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl From<ShortStr> for String {
    fn from(s: ShortStr) -> String {
        s.0.to_string()
    }
}

/// One value in a field table or array, tagged as RabbitMQ tags it.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// `t`: boolean (any non-zero octet is true).
    Bool(bool),
    /// `b`: signed 8-bit.
    I8(i8),
    /// `B`: unsigned 8-bit.
    U8(u8),
    /// `s`: signed 16-bit (RabbitMQ's meaning, not the PDF's short string).
    I16(i16),
    /// `u`: unsigned 16-bit.
    U16(u16),
    /// `I`: signed 32-bit.
    I32(i32),
    /// `i`: unsigned 32-bit.
    U32(u32),
    /// `l` (and `L` on input): signed 64-bit.
    I64(i64),
    /// `f`: IEEE-754 single.
    F32(f32),
    /// `d`: IEEE-754 double.
    F64(f64),
    /// `D`: decimal, `value / 10^scale`.
    Decimal {
        /// Number of decimal digits after the point.
        scale: u8,
        /// Unscaled value.
        value: u32,
    },
    /// `S`: long string (arbitrary bytes, usually UTF-8).
    LongStr(Bytes),
    /// `x`: byte array.
    ByteArray(Bytes),
    /// `A`: array of tagged values.
    Array(Vec<FieldValue>),
    /// `T`: timestamp, POSIX seconds.
    Timestamp(u64),
    /// `F`: nested table.
    Table(FieldTable),
    /// `V`: no value.
    Void,
}

impl FieldValue {
    /// The ASCII type tag written before the value.
    pub fn tag(&self) -> u8 {
        match self {
            FieldValue::Bool(_) => b't',
            FieldValue::I8(_) => b'b',
            FieldValue::U8(_) => b'B',
            FieldValue::I16(_) => b's',
            FieldValue::U16(_) => b'u',
            FieldValue::I32(_) => b'I',
            FieldValue::U32(_) => b'i',
            FieldValue::I64(_) => b'l',
            FieldValue::F32(_) => b'f',
            FieldValue::F64(_) => b'd',
            FieldValue::Decimal { .. } => b'D',
            FieldValue::LongStr(_) => b'S',
            FieldValue::ByteArray(_) => b'x',
            FieldValue::Array(_) => b'A',
            FieldValue::Timestamp(_) => b'T',
            FieldValue::Table(_) => b'F',
            FieldValue::Void => b'V',
        }
    }

    /// Bytes this value takes on the wire, type tag included.
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            FieldValue::Bool(_) | FieldValue::I8(_) | FieldValue::U8(_) => 1,
            FieldValue::I16(_) | FieldValue::U16(_) => 2,
            FieldValue::I32(_) | FieldValue::U32(_) | FieldValue::F32(_) => 4,
            FieldValue::I64(_) | FieldValue::F64(_) | FieldValue::Timestamp(_) => 8,
            FieldValue::Decimal { .. } => 5,
            FieldValue::LongStr(b) | FieldValue::ByteArray(b) => 4 + b.len(),
            FieldValue::Array(values) => {
                4 + values.iter().map(FieldValue::encoded_len).sum::<usize>()
            }
            FieldValue::Table(t) => t.encoded_len(),
            FieldValue::Void => 0,
        }
    }

    /// Writes the type tag and the value.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(self.tag());
        match self {
            FieldValue::Bool(b) => dst.put_u8(u8::from(*b)),
            FieldValue::I8(v) => dst.put_i8(*v),
            FieldValue::U8(v) => dst.put_u8(*v),
            FieldValue::I16(v) => dst.put_i16(*v),
            FieldValue::U16(v) => dst.put_u16(*v),
            FieldValue::I32(v) => dst.put_i32(*v),
            FieldValue::U32(v) => dst.put_u32(*v),
            FieldValue::I64(v) => dst.put_i64(*v),
            FieldValue::F32(v) => dst.put_f32(*v),
            FieldValue::F64(v) => dst.put_f64(*v),
            FieldValue::Decimal { scale, value } => {
                dst.put_u8(*scale);
                dst.put_u32(*value);
            }
            FieldValue::LongStr(b) | FieldValue::ByteArray(b) => put_longstr(dst, b),
            FieldValue::Array(values) => {
                let pos = begin_len(dst);
                for v in values {
                    v.encode(dst);
                }
                patch_len(dst, pos);
            }
            FieldValue::Timestamp(v) => dst.put_u64(*v),
            FieldValue::Table(t) => t.encode(dst),
            FieldValue::Void => {}
        }
    }

    fn decode(r: &mut Reader<'_>, depth: usize) -> Result<FieldValue, SyntaxError> {
        let tag = r.u8()?;
        Ok(match tag {
            b't' => FieldValue::Bool(r.u8()? != 0),
            b'b' => FieldValue::I8(r.i8()?),
            b'B' => FieldValue::U8(r.u8()?),
            b's' => FieldValue::I16(r.i16()?),
            b'u' => FieldValue::U16(r.u16()?),
            b'I' => FieldValue::I32(r.i32()?),
            b'i' => FieldValue::U32(r.u32()?),
            b'l' | b'L' => FieldValue::I64(r.i64()?),
            b'f' => FieldValue::F32(r.f32()?),
            b'd' => FieldValue::F64(r.f64()?),
            b'D' => FieldValue::Decimal {
                scale: r.u8()?,
                value: r.u32()?,
            },
            b'S' => FieldValue::LongStr(r.longstr()?),
            b'x' => FieldValue::ByteArray(r.longstr()?),
            b'A' => {
                if depth >= MAX_TABLE_DEPTH {
                    return Err(SyntaxError::TooDeep);
                }
                let mut inner = Reader::new(r.long_slice()?);
                let mut values = Vec::new();
                while inner.remaining() > 0 {
                    values.push(FieldValue::decode(&mut inner, depth + 1)?);
                }
                FieldValue::Array(values)
            }
            b'T' => FieldValue::Timestamp(r.u64()?),
            b'F' => FieldValue::Table(FieldTable::decode_at_depth(r, depth + 1)?),
            b'V' => FieldValue::Void,
            other => return Err(SyntaxError::UnknownFieldType(other)),
        })
    }
}

/// An AMQP field table: named, tagged values in wire order.
///
/// Decoding keeps entries exactly as received (including duplicate keys, of
/// which [`FieldTable::get`] sees the first) so tables round-trip byte for
/// byte; [`FieldTable::insert`] replaces an existing key.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FieldTable(Vec<(ShortStr, FieldValue)>);

impl FieldTable {
    /// An empty table.
    pub fn new() -> Self {
        FieldTable(Vec::new())
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.0
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, replacing an existing value in place or appending.
    pub fn insert(&mut self, key: ShortStr, value: FieldValue) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Removes `key` (every occurrence) and returns the first value it had.
    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        let mut removed = None;
        let mut i = 0;
        while i < self.0.len() {
            if self.0[i].0.as_str() == key {
                let (_, v) = self.0.remove(i);
                removed.get_or_insert(v);
            } else {
                i += 1;
            }
        }
        removed
    }

    /// Entries in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&ShortStr, &FieldValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes this table takes on the wire, the u32 length prefix included.
    pub fn encoded_len(&self) -> usize {
        4 + self
            .0
            .iter()
            .map(|(k, v)| k.encoded_len() + v.encoded_len())
            .sum::<usize>()
    }

    /// Writes the u32 byte length and the entries.
    pub fn encode(&self, dst: &mut BytesMut) {
        let pos = begin_len(dst);
        for (k, v) in &self.0 {
            put_shortstr(dst, k);
            v.encode(dst);
        }
        patch_len(dst, pos);
    }

    /// Decodes a complete table (length prefix included) from `buf`,
    /// rejecting trailing bytes.
    pub fn decode(buf: &[u8]) -> Result<FieldTable, SyntaxError> {
        let mut r = Reader::new(buf);
        let table = r.table()?;
        r.finish()?;
        Ok(table)
    }

    pub(crate) fn decode_at_depth(
        r: &mut Reader<'_>,
        depth: usize,
    ) -> Result<FieldTable, SyntaxError> {
        if depth > MAX_TABLE_DEPTH {
            return Err(SyntaxError::TooDeep);
        }
        let mut inner = Reader::new(r.long_slice()?);
        let mut entries = Vec::new();
        while inner.remaining() > 0 {
            let key = inner.shortstr()?;
            let value = FieldValue::decode(&mut inner, depth)?;
            entries.push((key, value));
        }
        Ok(FieldTable(entries))
    }
}

impl FromIterator<(ShortStr, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (ShortStr, FieldValue)>>(iter: I) -> Self {
        let mut t = FieldTable::new();
        for (k, v) in iter {
            t.insert(k, v);
        }
        t
    }
}

impl IntoIterator for FieldTable {
    type Item = (ShortStr, FieldValue);
    type IntoIter = std::vec::IntoIter<(ShortStr, FieldValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
