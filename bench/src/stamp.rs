//! The first bytes of every message body, and the clock they carry.
//!
//! ```text
//! run:u32  producer:u32  seq:u64  sent_ns:u64   (big-endian, 24 bytes)
//! ```
//! `sent_ns` is nanoseconds since the Unix epoch (`CLOCK_REALTIME`), so a
//! consumer in another process on the same machine can compute latency too.
//! The rest of the body is filler up to the message size.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes a stamp occupies; the smallest message the generator sends.
pub const STAMP_LEN: usize = 24;

/// What a consumer reads back from a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Run id: messages left over from other runs are recognised by it.
    pub run: u32,
    /// Producer id within the run.
    pub producer: u32,
    /// Per-producer sequence number, from 0.
    pub seq: u64,
    /// Send time, nanoseconds since the Unix epoch.
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the stamp into the first [`STAMP_LEN`] bytes of `dst`.
    ///
    /// # Panics
    /// If `dst` is shorter than [`STAMP_LEN`] (bodies are sized by the
    /// generator, never by the peer).
    pub fn write(&self, dst: &mut [u8]) {
        dst[0..4].copy_from_slice(&self.run.to_be_bytes());
        dst[4..8].copy_from_slice(&self.producer.to_be_bytes());
        dst[8..16].copy_from_slice(&self.seq.to_be_bytes());
        dst[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads a stamp from the start of a body; `None` if it is too short.
    pub fn read(body: &[u8]) -> Option<Stamp> {
        let b = body.get(..STAMP_LEN)?;
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        Some(Stamp {
            run: u32_at(0),
            producer: u32_at(4),
            seq: u64_at(8),
            sent_ns: u64_at(16),
        })
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = Stamp {
            run: 7,
            producer: 3,
            seq: 1 << 40,
            sent_ns: 123_456_789,
        };
        let mut body = [0u8; 30];
        s.write(&mut body);
        assert_eq!(Stamp::read(&body), Some(s));
        assert_eq!(Stamp::read(&body[..10]), None);
    }
}
