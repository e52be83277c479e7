//! Primitive wire readers and writers shared by packets and properties.
//!
//! [`Reader`] walks one packet's body (a frozen `Bytes`), checking every
//! length against the bytes present before taking anything, and hands out
//! binary fields as zero-copy slices of the input.
//!
//! Writers go through [`Sink`] so that one code path both writes a packet
//! ([`BytesMut`]) and measures it ([`Counter`]): `encoded_len` can never
//! disagree with `encode`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
use crate::types::{MAX_VAR_INT, PacketId, UserProperty};

/// A cursor over one packet body; every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Bytes,
    /// 5.0 requires minimally encoded Variable Byte Integers [MQTT-1.5.5-1].
    strict_var_int: bool,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, strict_var_int: bool) -> Self {
        Reader {
            buf,
            strict_var_int,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails if anything is left: packets must be consumed exactly.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// The next `n` bytes as a zero-copy slice.
    pub(crate) fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(self.buf.split_to(n))
    }

    /// Everything left, zero-copy (PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        self.buf.split_off(0)
    }

    /// A sub-reader over the next `n` bytes (a property list).
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader, DecodeError> {
        let strict = self.strict_var_int;
        Ok(Reader::new(self.take(n)?, strict))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        PacketId::new(self.u16()?).ok_or(DecodeError::ZeroPacketId)
    }

    pub(crate) fn var_int(&mut self) -> Result<u32, DecodeError> {
        match parse_var_int(&self.buf, self.strict_var_int)? {
            Some((value, used)) => {
                self.take(used)?;
                Ok(value)
            }
            None => Err(DecodeError::Truncated),
        }
    }

    /// A u16-length-prefixed byte string, zero-copy.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        self.take(len)
    }

    /// A UTF-8 Encoded String: well-formed (so no surrogates) and no U+0000.
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        let raw = self.binary()?;
        let s = std::str::from_utf8(&raw).map_err(|_| DecodeError::BadString)?;
        if s.contains('\0') {
            return Err(DecodeError::BadString);
        }
        Ok(s.to_owned())
    }

    pub(crate) fn user_property(&mut self) -> Result<UserProperty, DecodeError> {
        let name = self.string()?;
        let value = self.string()?;
        Ok(UserProperty { name, value })
    }
}

/// Parses a Variable Byte Integer at the start of `buf`.
///
/// `Ok(None)`: the bytes present end before the integer does (and it could
/// still be valid). `Ok(Some((value, bytes used)))` otherwise. A fifth byte,
/// or (when `strict`) a non-minimal encoding, is an error.
pub(crate) fn parse_var_int(buf: &[u8], strict: bool) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let used = i + 1;
            // A trailing zero group means fewer bytes would have done.
            if strict && used > 1 && byte == 0 {
                return Err(DecodeError::BadVarInt);
            }
            return Ok(Some((value, used)));
        }
    }
    if buf.len() >= 4 {
        Err(DecodeError::BadVarInt)
    } else {
        Ok(None)
    }
}

/// Number of bytes the Variable Byte Integer encoding of `v` takes.
pub(crate) fn var_int_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Where encoded bytes go: a buffer, or a counter measuring them.
pub(crate) trait Sink {
    fn put_slice(&mut self, s: &[u8]);

    fn put_u8(&mut self, v: u8) {
        self.put_slice(&[v]);
    }

    fn put_u16(&mut self, v: u16) {
        self.put_slice(&v.to_be_bytes());
    }

    fn put_u32(&mut self, v: u32) {
        self.put_slice(&v.to_be_bytes());
    }

    fn put_var_int(&mut self, v: usize) -> Result<(), EncodeError> {
        let mut rest = u32::try_from(v)
            .ok()
            .filter(|&n| n <= MAX_VAR_INT)
            .ok_or(EncodeError::VarIntOutOfRange(v))?;
        loop {
            let low = u8::try_from(rest & 0x7F).unwrap_or(0);
            rest >>= 7;
            if rest == 0 {
                self.put_u8(low);
                return Ok(());
            }
            self.put_u8(low | 0x80);
        }
    }

    /// A u16-length-prefixed byte string.
    fn put_binary(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(b.len()).map_err(|_| EncodeError::FieldTooLong(b.len()))?;
        self.put_u16(len);
        self.put_slice(b);
        Ok(())
    }

    /// A UTF-8 Encoded String; U+0000 is refused so we never send what we
    /// would reject.
    fn put_str(&mut self, s: &str) -> Result<(), EncodeError> {
        if s.contains('\0') {
            return Err(EncodeError::NulInString);
        }
        self.put_binary(s.as_bytes())
    }
}

impl Sink for BytesMut {
    fn put_slice(&mut self, s: &[u8]) {
        BufMut::put_slice(self, s);
    }
}

/// A [`Sink`] that only counts bytes.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put_slice(&mut self, s: &[u8]) {
        self.0 = self.0.saturating_add(s.len());
    }
}
