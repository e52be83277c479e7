//! Primitive wire readers and writers shared by methods, tables, properties
//! and frames.
//!
//! The reader works on a borrowed slice and checks every length against the
//! bytes actually present before touching or allocating anything.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::SyntaxError;
use crate::types::{FieldTable, ShortStr};

/// A cursor over untrusted bytes; every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not consumed yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails if anything is left: methods and properties must be exact.
    pub(crate) fn finish(&self) -> Result<(), SyntaxError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(SyntaxError::TrailingBytes(n)),
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], SyntaxError> {
        if n > self.buf.len() {
            return Err(SyntaxError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SyntaxError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, SyntaxError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, SyntaxError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, SyntaxError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SyntaxError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn i8(&mut self) -> Result<i8, SyntaxError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, SyntaxError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, SyntaxError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, SyntaxError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn f32(&mut self) -> Result<f32, SyntaxError> {
        Ok(f32::from_be_bytes(self.array()?))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, SyntaxError> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    /// Reads one octet holding `N` packed bits, first bit in the LSB.
    pub(crate) fn bits<const N: usize>(&mut self) -> Result<[bool; N], SyntaxError> {
        let octet = self.u8()?;
        let mut out = [false; N];
        for (i, bit) in out.iter_mut().enumerate() {
            *bit = octet & (1 << i) != 0;
        }
        Ok(out)
    }

    pub(crate) fn shortstr(&mut self) -> Result<ShortStr, SyntaxError> {
        let len = usize::from(self.u8()?);
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| SyntaxError::BadUtf8)?;
        Ok(ShortStr::from_checked(s))
    }

    /// A u32-length-prefixed slice; the length is checked before use.
    pub(crate) fn long_slice(&mut self) -> Result<&'a [u8], SyntaxError> {
        let len = usize::try_from(self.u32()?).map_err(|_| SyntaxError::Truncated)?;
        self.take(len)
    }

    pub(crate) fn longstr(&mut self) -> Result<Bytes, SyntaxError> {
        Ok(Bytes::copy_from_slice(self.long_slice()?))
    }

    pub(crate) fn table(&mut self) -> Result<FieldTable, SyntaxError> {
        FieldTable::decode_at_depth(self, 0)
    }
}

/// Writes a shortstr (u8 length + bytes). `ShortStr` guarantees <= 255.
pub(crate) fn put_shortstr(dst: &mut BytesMut, s: &ShortStr) {
    let bytes = s.as_str().as_bytes();
    dst.put_u8(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    dst.put_slice(&bytes[..bytes.len().min(255)]);
}

/// Writes a longstr (u32 length + bytes). Anything past 4 GiB cannot be
/// represented and is cut off rather than producing a corrupt frame.
pub(crate) fn put_longstr(dst: &mut BytesMut, b: &[u8]) {
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    dst.put_u32(len);
    dst.put_slice(&b[..len_usize(len)]);
}

/// Packs up to 8 bits into one octet, first bit in the LSB.
pub(crate) fn put_bits(dst: &mut BytesMut, bits: &[bool]) {
    let mut octet = 0u8;
    for (i, &b) in bits.iter().take(8).enumerate() {
        if b {
            octet |= 1 << i;
        }
    }
    dst.put_u8(octet);
}

/// Reserves a u32 length slot; returns its position for [`patch_len`].
pub(crate) fn begin_len(dst: &mut BytesMut) -> usize {
    let pos = dst.len();
    dst.put_u32(0);
    pos
}

/// Fills the length slot at `pos` with the number of bytes written after it.
pub(crate) fn patch_len(dst: &mut BytesMut, pos: usize) {
    let len = dst.len() - pos - 4;
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    dst[pos..pos + 4].copy_from_slice(&len.to_be_bytes());
}

/// u32 to usize; lossless on every platform this crate supports (>= 32-bit).
pub(crate) fn len_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// usize to u64; lossless on every platform with <= 64-bit pointers.
pub(crate) fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
