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
//! file (a torn tail) is recognised and cut off, a record whose checksum fails
//! in the middle is skipped, and neither stops the broker from starting.

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
    /// Complete frames whose checksum failed; skipped.
    pub corrupt: Vec<u64>,
}

/// Finds the records of a segment file held in `buf`.
///
/// A frame that does not fit in what is left of the file, or a header of
/// zeros (a file extended by the file system but never written), ends the
/// scan: everything from there on is a torn tail. A complete frame whose
/// checksum fails is skipped, using its length, unless it is the last one of
/// the file, where a failed checksum is more likely a torn write than damage,
/// and is cut off like one.
pub fn scan(buf: &[u8]) -> Scan {
    let mut out = Scan::default();
    let mut pos = 0usize;
    while pos < buf.len() {
        let Some(header) = buf.get(pos..pos + HEADER_LEN) else {
            break;
        };
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&header[..4]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&header[4..12]);
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&header[12..]);
        let Ok(payload_len) = usize::try_from(u32::from_le_bytes(len)) else {
            break;
        };
        let end = match (pos + HEADER_LEN).checked_add(payload_len) {
            Some(end) if end <= buf.len() => end,
            _ => break,
        };
        let (Ok(offset), Ok(frame_len)) = (u64::try_from(pos), u32::try_from(end - pos)) else {
            break;
        };
        if checksum(&len, &seq, &buf[pos + HEADER_LEN..end]) == u32::from_le_bytes(crc) {
            out.records.push(RecordPos {
                seq: SeqNo::from_le_bytes(seq),
                offset,
                len: frame_len,
            });
        } else if end == buf.len() {
            break;
        } else {
            out.corrupt.push(offset);
        }
        pos = end;
        out.valid_len = u64::try_from(end).unwrap_or(u64::MAX);
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

/// Decodes the record at `pos` of `buf` without copying: properties and body
/// are slices of `buf`. For messages paged in to be delivered soon, where
/// pinning the read buffer for a while is cheaper than a copy per message.
pub fn decode_shared(buf: &bytes::Bytes, pos: &RecordPos) -> Result<StoredMessage, StorageError> {
    let range = pos
        .payload()
        .filter(|r| r.end <= buf.len())
        .ok_or_else(|| out_of_buffer(pos))?;
    codec::decode_value(pos.seq, buf.slice(range))
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
