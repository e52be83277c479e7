//! Framing of one message record in a segment file, and the scan that finds
//! the records of a segment again at start-up.
//!
//! A segment file is a plain concatenation of records (all integers
//! little-endian):
//!
//! ```text
//! +---------+---------+---------+-------------------------------+
//! | len u32 | seq u64 | crc u32 | payload (len bytes, codec.rs) |
//! +---------+---------+---------+-------------------------------+
//! ```
//!
//! `crc` is the CRC-32 (IEEE, `crc32fast`) of `len`, `seq` and the payload, so
//! a damaged length or seq is caught as surely as a damaged body. The frame is
//! what makes a crash mid-write harmless: a record cut short at the end of a
//! file (a torn tail) is recognised and cut off, a damaged region in the
//! middle (bad checksum, damaged length, zeroed header) is skipped up to the
//! next frame that verifies, and neither stops the broker from starting.
//! Records after damage are never cut off.

use crate::{SeqNo, StorageError, StoredMessage, codec};

/// Bytes of the frame before the payload.
pub const HEADER_LEN: usize = 4 + 8 + 4;

/// Appends the framed record of `msg` to `out`. On error nothing is appended.
#[cfg(test)]
pub fn encode(msg: &StoredMessage, out: &mut Vec<u8>) -> Result<(), StorageError> {
    encode_head(msg, out)?;
    out.extend_from_slice(&msg.body);
    Ok(())
}

/// Appends the framed record of `msg` minus its body to `out`: the body
/// must follow it in the file (the segment log writes it with `writev`
/// straight from the message). Returns the length of the whole record,
/// body included. On error nothing is appended.
pub fn encode_head(msg: &StoredMessage, out: &mut Vec<u8>) -> Result<usize, StorageError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    let head_len = match codec::encode_head_into(msg, out) {
        Ok(n) => n,
        Err(e) => {
            out.truncate(start);
            return Err(e);
        }
    };
    let payload_len = head_len + msg.body.len();
    let Ok(len) = u32::try_from(payload_len) else {
        out.truncate(start);
        return Err(StorageError::Invalid(format!(
            "message {} encodes to {payload_len} bytes, at most 4 GiB fit",
            msg.seq
        )));
    };
    let len = len.to_le_bytes();
    let seq = msg.seq.to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(&seq);
    h.update(&out[start + HEADER_LEN..]);
    h.update(&msg.body);
    let crc = h.finalize();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 12].copy_from_slice(&seq);
    out[start + 12..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(HEADER_LEN + payload_len)
}

fn checksum(len: &[u8; 4], seq: &[u8; 8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(seq);
    h.update(payload);
    h.finalize()
}

/// Where a record sits in its segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordPos {
    /// The message's sequence number.
    pub seq: SeqNo,
    /// Offset of the record's frame in the file.
    pub offset: u64,
    /// Length of the whole frame (header and payload).
    pub len: u32,
}

impl RecordPos {
    /// The payload's byte range inside a buffer holding the whole file.
    pub fn payload(&self) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.offset).ok()?.checked_add(HEADER_LEN)?;
        let end = usize::try_from(self.offset)
            .ok()?
            .checked_add(usize::try_from(self.len).ok()?)?;
        Some(start..end)
    }
}

/// What a scan of a segment file found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Intact records, in file order.
    pub records: Vec<RecordPos>,
    /// Length of the file up to the end of its last complete frame. Shorter
    /// than the file when the file ends in a torn record, which the caller
    /// truncates away.
    pub valid_len: u64,
    /// Offsets where a damaged region starts (a frame whose header or
    /// checksum fails, with a valid frame somewhere after it); skipped.
    pub corrupt: Vec<u64>,
}

/// The frame starting at `pos` of `buf` if it is whole and its checksum
/// verifies: `Some((seq, end of the frame))`.
fn valid_frame(buf: &[u8], pos: usize) -> Option<(SeqNo, usize)> {
    let header = buf.get(pos..pos.checked_add(HEADER_LEN)?)?;
    let mut len = [0u8; 4];
    len.copy_from_slice(&header[..4]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&header[4..12]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&header[12..]);
    let payload_len = usize::try_from(u32::from_le_bytes(len)).ok()?;
    let end = (pos + HEADER_LEN).checked_add(payload_len)?;
    let payload = buf.get(pos + HEADER_LEN..end)?;
    (checksum(&len, &seq, payload) == u32::from_le_bytes(crc))
        .then_some((SeqNo::from_le_bytes(seq), end))
}

/// Whether the record at `pos` (an offset into `buf`) is whole and its
/// checksum verifies, so its bytes can be handed out.
pub fn verify(buf: &[u8], pos: &RecordPos) -> bool {
    let Ok(start) = usize::try_from(pos.offset) else {
        return false;
    };
    valid_frame(buf, start).is_some_and(|(seq, end)| {
        seq == pos.seq && Some(end - start) == usize::try_from(pos.len).ok()
    })
}

/// Largest seq step between neighbouring records of one segment that the
/// byte-by-byte search believes. Seqs of a segment increase one message at a
/// time, so a real next frame is far closer; a window read from random bytes
/// (a torn tail of compressed bodies) almost never lands in it, which spares
/// a CRC over up to the rest of the file at nearly every offset.
const MAX_SEQ_STEP: SeqNo = 1 << 40;

/// The start of the first frame at or after `from` whose header and
/// checksum verify, if any; with a seq above `after` (and not absurdly far
/// above it) when the scan has found a record before.
fn next_valid_frame(buf: &[u8], from: usize, after: Option<SeqNo>) -> Option<usize> {
    let last = buf.len().saturating_sub(HEADER_LEN - 1);
    (from..last).find(|&p| {
        let plausible = buf
            .get(p + 4..p + 12)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(SeqNo::from_le_bytes)
            .is_some_and(|seq| after.is_none_or(|a| seq > a && seq - a <= MAX_SEQ_STEP));
        plausible && valid_frame(buf, p).is_some()
    })
}

/// Finds the records of a segment file held in `buf`.
///
/// A region that is not a valid frame (a damaged length, a header of zeros,
/// a checksum that fails) is skipped, and the scan goes on at the next frame
/// that verifies: at the end of the bad frame if its length leads to one,
/// else the first offset, byte by byte, where a header and checksum verify
/// (a false match needs a CRC-32 collision). Records after damage are never
/// given up. Only a bad region that runs to the end of the file with no valid
/// frame after it is a torn tail (a write cut short by a crash, or a file
/// extended by the file system but never written): `valid_len` stops before
/// it and the caller truncates it away.
pub fn scan(buf: &[u8]) -> Scan {
    let mut out = Scan::default();
    let mut pos = 0usize;
    while pos < buf.len() {
        if let Some((seq, end)) = valid_frame(buf, pos) {
            let (Ok(offset), Ok(len)) = (u64::try_from(pos), u32::try_from(end - pos)) else {
                break;
            };
            out.records.push(RecordPos { seq, offset, len });
            out.valid_len = u64::try_from(end).unwrap_or(u64::MAX);
            pos = end;
            continue;
        }
        // A bad region starts here. Try the frame's own length first (only a
        // body was damaged), then a byte-by-byte search.
        let by_len = buf
            .get(pos..pos + 4)
            .and_then(|l| <[u8; 4]>::try_from(l).ok())
            .and_then(|l| usize::try_from(u32::from_le_bytes(l)).ok())
            .and_then(|l| (pos + HEADER_LEN).checked_add(l))
            .filter(|&end| valid_frame(buf, end).is_some());
        let after = out.records.last().map(|r| r.seq);
        let Some(next) = by_len.or_else(|| next_valid_frame(buf, pos + 1, after)) else {
            break;
        };
        out.corrupt.push(u64::try_from(pos).unwrap_or(u64::MAX));
        pos = next;
    }
    out
}

/// Decodes the record at `pos` of a segment file held in `buf`, copying
/// its payload out (so a message kept for long does not pin the whole buffer).
pub fn decode(buf: &[u8], pos: &RecordPos) -> Result<StoredMessage, StorageError> {
    let payload = pos
        .payload()
        .and_then(|r| buf.get(r))
        .ok_or_else(|| out_of_buffer(pos))?;
    codec::decode_value(pos.seq, bytes::Bytes::copy_from_slice(payload))
}

fn out_of_buffer(pos: &RecordPos) -> StorageError {
    StorageError::Corrupt(format!("message {}: record out of file", pos.seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(seq: SeqNo, body: &str) -> StoredMessage {
        StoredMessage {
            seq,
            exchange: "x".into(),
            routing_key: "rk".into(),
            properties: Bytes::from_static(&[1, 2]),
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    fn file(n: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        for seq in 1..=n {
            encode(&msg(seq, &format!("body {seq}")), &mut buf).unwrap();
        }
        buf
    }

    #[test]
    fn round_trip() {
        let buf = file(3);
        let scan = scan(&buf);
        assert_eq!(scan.valid_len, u64::try_from(buf.len()).unwrap());
        assert!(scan.corrupt.is_empty());
        let seqs: Vec<SeqNo> = scan.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(decode(&buf, &scan.records[1]).unwrap(), msg(2, "body 2"));
    }

    #[test]
    fn every_cut_keeps_the_complete_records() {
        let buf = file(3);
        let whole = scan(&buf);
        for cut in 0..buf.len() {
            let s = scan(&buf[..cut]);
            let complete = whole
                .records
                .iter()
                .filter(|r| r.offset + u64::from(r.len) <= u64::try_from(cut).unwrap())
                .count();
            assert_eq!(s.records.len(), complete, "cut at {cut}");
            assert!(s.corrupt.is_empty(), "cut at {cut}");
            let end = s.records.last().map_or(0, |r| r.offset + u64::from(r.len));
            assert_eq!(s.valid_len, end, "cut at {cut}");
        }
    }

    #[test]
    fn damage_in_the_middle_skips_one_record() {
        let mut buf = file(3);
        let second = scan(&buf).records[1];
        let at = usize::try_from(second.offset).unwrap() + HEADER_LEN + 5;
        buf[at] ^= 0xff;
        let s = scan(&buf);
        let seqs: Vec<SeqNo> = s.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 3]);
        assert_eq!(s.corrupt, [second.offset]);
        assert_eq!(s.valid_len, u64::try_from(buf.len()).unwrap());
    }

    #[test]
    fn a_damaged_length_or_zeroed_header_skips_only_that_record() {
        let whole = file(4);
        let second = scan(&whole).records[1];
        let at = usize::try_from(second.offset).unwrap();
        for damage in [0usize, 1, 2, 3] {
            let mut buf = whole.clone();
            if damage == 3 {
                buf[at..at + HEADER_LEN].fill(0);
            } else {
                buf[at + damage] ^= 0x10;
            }
            let s = scan(&buf);
            let seqs: Vec<SeqNo> = s.records.iter().map(|r| r.seq).collect();
            assert_eq!(seqs, [1, 3, 4], "damage {damage}");
            assert_eq!(s.corrupt, [second.offset]);
            assert_eq!(s.valid_len, u64::try_from(buf.len()).unwrap());
            assert!(s.records.iter().all(|r| verify(&buf, r)));
        }
    }

    #[test]
    fn damaged_last_record_is_a_torn_tail() {
        let mut buf = file(2);
        let last = buf.len() - 1;
        buf[last] ^= 1;
        let s = scan(&buf);
        assert_eq!(s.records.len(), 1);
        assert_eq!(
            s.valid_len,
            s.records[0].offset + u64::from(s.records[0].len)
        );
    }

    /// A torn write of incompressible bodies: the byte-by-byte search must
    /// not checksum the rest of the file at every offset (that took minutes
    /// for a few MiB before the seq filter).
    #[test]
    fn a_long_random_torn_tail_scans_fast() {
        let mut buf = file(2);
        let len = buf.len();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        buf.extend((0..4 * 1024 * 1024).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        }));
        let started = std::time::Instant::now();
        let s = scan(&buf);
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.valid_len, u64::try_from(len).unwrap());
        eprintln!("scan of a 4 MiB random tail: {:?}", started.elapsed());
    }

    #[test]
    fn zeros_after_the_records_are_a_torn_tail() {
        let mut buf = file(2);
        let len = buf.len();
        buf.extend_from_slice(&[0; 100]);
        let s = scan(&buf);
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.valid_len, u64::try_from(len).unwrap());
    }
}
