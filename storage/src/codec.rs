//! Binary encoding of a [`StoredMessage`]: the payload of a segment-log
//! record (see `record.rs` for the framing around it), and the key and value
//! of the sled trees that held queue logs before the segment store (read once,
//! when such a data dir is migrated).
//!
//! Key (sled only): the sequence number as a big-endian `u64`, so that byte
//! order was seq order.
//!
//! Value (all integers big-endian):
//!
//! ```text
//! +---------+--------+----------+--------+-------------+--------+------------+--------+------+
//! | version | ex len | exchange | rk len | routing key | pr len | properties | bd len | body |
//! |   u8    |   u8   |  ex len  |   u8   |   rk len    |  u32   |   pr len   |  u32   |      |
//! +---------+--------+----------+--------+-------------+--------+------------+--------+------+
//! ```
//!
//! The sequence number is not in the value (it is the sled key, or a field of
//! the segment record's header). Written by
//! hand rather than with serde so the format is explicit, compact (no field
//! names, no varint tricks) and its decoder can reject any damage without
//! panicking.

use bytes::Bytes;

use crate::{SeqNo, StorageError, StoredMessage};

/// Format version of message values; bumped if the layout above ever changes.
pub const VERSION: u8 = 1;

/// Length of the fixed part of a value: version + two `u8` and two `u32` lengths.
const HEADER_LEN: usize = 1 + 1 + 1 + 4 + 4;

/// The legacy sled key of a message: its sequence number in big-endian order
/// (only tests write legacy data dirs now).
#[cfg(test)]
pub fn encode_key(seq: SeqNo) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Reads a sequence number back from a legacy sled key.
pub fn decode_key(key: &[u8]) -> Result<SeqNo, StorageError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| {
        StorageError::Corrupt(format!("message key has {} bytes, expected 8", key.len()))
    })?;
    Ok(SeqNo::from_be_bytes(bytes))
}

/// Checks that the message fits the format, so that the in-memory store can
/// refuse exactly what the disk store refuses.
pub fn validate(msg: &StoredMessage) -> Result<(), StorageError> {
    short_len("exchange", &msg.exchange)?;
    short_len("routing key", &msg.routing_key)?;
    long_len("properties", &msg.properties)?;
    long_len("body", &msg.body)?;
    Ok(())
}

fn short_len(what: &str, s: &str) -> Result<u8, StorageError> {
    u8::try_from(s.len())
        .map_err(|_| StorageError::Invalid(format!("{what} is {} bytes, at most 255 fit", s.len())))
}

fn long_len(what: &str, b: &[u8]) -> Result<u32, StorageError> {
    u32::try_from(b.len()).map_err(|_| {
        StorageError::Invalid(format!("{what} is {} bytes, at most 4 GiB fit", b.len()))
    })
}

/// Encodes everything but the sequence number into a new buffer.
#[cfg(test)]
pub fn encode_value(msg: &StoredMessage) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::with_capacity(encoded_len(msg));
    encode_head_into(msg, &mut out)?;
    out.extend_from_slice(&msg.body);
    Ok(out)
}

/// Length of [`encode_value`]'s output for `msg`.
pub fn encoded_len(msg: &StoredMessage) -> usize {
    HEADER_LEN + msg.exchange.len() + msg.routing_key.len() + msg.properties.len() + msg.body.len()
}

/// Appends the encoding of [`encode_value`] up to, not including, the body
/// (whose length it ends with), so a writer can hand the body to the kernel
/// from where it already is (`writev`) instead of copying it. Returns the
/// number of bytes appended; nothing is appended when the message does not
/// fit the format.
pub fn encode_head_into(msg: &StoredMessage, out: &mut Vec<u8>) -> Result<usize, StorageError> {
    let ex_len = short_len("exchange", &msg.exchange)?;
    let rk_len = short_len("routing key", &msg.routing_key)?;
    let pr_len = long_len("properties", &msg.properties)?;
    let bd_len = long_len("body", &msg.body)?;
    let start = out.len();
    out.reserve(encoded_len(msg) - msg.body.len());
    out.push(VERSION);
    out.push(ex_len);
    out.extend_from_slice(msg.exchange.as_bytes());
    out.push(rk_len);
    out.extend_from_slice(msg.routing_key.as_bytes());
    out.extend_from_slice(&pr_len.to_be_bytes());
    out.extend_from_slice(&msg.properties);
    out.extend_from_slice(&bd_len.to_be_bytes());
    Ok(out.len() - start)
}

/// Decodes a value written by [`encode_value`].
///
/// `value` is taken as [`Bytes`] so properties and body come out as slices of
/// it: one copy out of the engine per message, not one per field. Every length
/// is checked against what is left, so damaged input gives
/// [`StorageError::Corrupt`], never a panic.
pub fn decode_value(seq: SeqNo, value: Bytes) -> Result<StoredMessage, StorageError> {
    let mut r = Reader {
        buf: &value,
        pos: 0,
        seq,
    };
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(r.corrupt(format!("unknown format version {version}")));
    }
    let ex_len = usize::from(r.u8("exchange length")?);
    let exchange = r.string("exchange", ex_len)?;
    let rk_len = usize::from(r.u8("routing key length")?);
    let routing_key = r.string("routing key", rk_len)?;
    let pr_len = r.u32_len("properties length")?;
    let properties = r.take("properties", pr_len)?;
    let bd_len = r.u32_len("body length")?;
    let body = r.take("body", bd_len)?;
    if r.pos != value.len() {
        return Err(r.corrupt(format!("{} trailing bytes", value.len() - r.pos)));
    }
    let properties = value.slice(properties);
    let body = value.slice(body);
    Ok(StoredMessage {
        seq,
        exchange,
        routing_key,
        properties,
        body,
    })
}

/// A cursor over a value that turns every overrun into `Corrupt`.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    seq: SeqNo,
}

impl Reader<'_> {
    fn corrupt(&self, what: String) -> StorageError {
        StorageError::Corrupt(format!("message {}: {what}", self.seq))
    }

    /// The range of the next `len` bytes, advancing past them.
    fn take(&mut self, what: &str, len: usize) -> Result<std::ops::Range<usize>, StorageError> {
        let start = self.pos;
        match start.checked_add(len) {
            Some(end) if end <= self.buf.len() => {
                self.pos = end;
                Ok(start..end)
            }
            _ => Err(self.corrupt(format!(
                "{what} needs {len} bytes at offset {start}, value has {}",
                self.buf.len()
            ))),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, StorageError> {
        let r = self.take(what, 1)?;
        Ok(self.buf[r.start])
    }

    fn u32_len(&mut self, what: &str) -> Result<usize, StorageError> {
        let r = self.take(what, 4)?;
        let mut be = [0u8; 4];
        be.copy_from_slice(&self.buf[r]);
        usize::try_from(u32::from_be_bytes(be))
            .map_err(|_| self.corrupt(format!("{what} does not fit in memory")))
    }

    fn string(&mut self, what: &str, len: usize) -> Result<String, StorageError> {
        let r = self.take(what, len)?;
        String::from_utf8(self.buf[r].to_vec())
            .map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredMessage {
        StoredMessage {
            seq: 42,
            exchange: "amq.tópic".into(),
            routing_key: "a.b.c".into(),
            properties: Bytes::from_static(&[0x80, 0, 1, 2]),
            body: Bytes::from_static(b"hello world"),
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        let v = encode_value(&m).unwrap();
        assert_eq!(v[0], VERSION);
        assert_eq!(decode_value(42, Bytes::from(v)).unwrap(), m);
    }

    #[test]
    fn round_trip_empty_fields() {
        let m = StoredMessage {
            seq: 0,
            exchange: String::new(),
            routing_key: String::new(),
            properties: Bytes::new(),
            body: Bytes::new(),
        };
        let v = encode_value(&m).unwrap();
        assert_eq!(v.len(), HEADER_LEN);
        assert_eq!(decode_value(0, Bytes::from(v)).unwrap(), m);
    }

    #[test]
    fn keys_sort_in_seq_order() {
        let seqs = [0u64, 1, 255, 256, 65_535, 1 << 40, u64::MAX];
        for w in seqs.windows(2) {
            assert!(encode_key(w[0]) < encode_key(w[1]));
        }
        for s in seqs {
            assert_eq!(decode_key(&encode_key(s)).unwrap(), s);
        }
        assert!(matches!(
            decode_key(&[1, 2, 3]),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn every_truncation_is_corrupt_not_a_panic() {
        let v = encode_value(&sample()).unwrap();
        for cut in 0..v.len() {
            let r = decode_value(1, Bytes::copy_from_slice(&v[..cut]));
            assert!(
                matches!(r, Err(StorageError::Corrupt(_))),
                "cut at {cut}: {r:?}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_corrupt() {
        let mut v = encode_value(&sample()).unwrap();
        v.push(0);
        assert!(matches!(
            decode_value(1, Bytes::from(v)),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn unknown_version_is_corrupt() {
        let mut v = encode_value(&sample()).unwrap();
        v[0] = 99;
        assert!(matches!(
            decode_value(1, Bytes::from(v)),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn invalid_utf8_is_corrupt() {
        let mut v = encode_value(&sample()).unwrap();
        v[2] = 0xff; // first byte of the exchange name
        assert!(matches!(
            decode_value(1, Bytes::from(v)),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn huge_lengths_are_corrupt() {
        let mut v = encode_value(&sample()).unwrap();
        // Overwrite the properties length with u32::MAX.
        let at = 1 + 1 + sample().exchange.len() + 1 + sample().routing_key.len();
        v[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_value(1, Bytes::from(v)),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = usize::from(x.to_be_bytes()[0] % 40);
            let bytes: Vec<u8> = (0..len)
                .map(|i| x.rotate_left(u32::try_from(i).unwrap()).to_be_bytes()[0])
                .collect();
            let _ = decode_value(1, Bytes::from(bytes));
        }
    }

    #[test]
    fn oversized_names_are_invalid() {
        let mut m = sample();
        m.exchange = "x".repeat(256);
        assert!(matches!(encode_value(&m), Err(StorageError::Invalid(_))));
        assert!(matches!(validate(&m), Err(StorageError::Invalid(_))));
        let mut m = sample();
        m.routing_key = "é".repeat(128);
        assert!(matches!(encode_value(&m), Err(StorageError::Invalid(_))));
        let mut m = sample();
        m.exchange = "x".repeat(255);
        m.routing_key = "y".repeat(255);
        assert!(validate(&m).is_ok());
        assert_eq!(
            decode_value(42, Bytes::from(encode_value(&m).unwrap())).unwrap(),
            m
        );
    }
}
