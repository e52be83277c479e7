//! [`QueueLog`]: one durable queue's messages as a directory of append-only
//! segment files.
//!
//! ```text
//! <queue dir>/0000000000.seg   records (record.rs), appended in seq order
//! <queue dir>/0000000000.ack   seqs (u64 LE) of the segment's removed messages
//! <queue dir>/0000000001.seg   the next segment, opened when the last one is full
//! ```
//!
//! Records are never rewritten: a removal is an 8-byte entry written at the
//! end of the segment's ack file (at the length of its whole entries, so a
//! failed write can never shift later entries), and a segment is deleted
//! with its ack file (segment first) as soon as every message in it is
//! removed. A segment or ack file that cannot be read at start-up is logged
//! and skipped, never deleted, and its number is never reused; a new segment
//! is created with `create_new`, so no leftover file is ever truncated. In memory each segment keeps only the
//! positions of its records and which are removed (about 17 bytes per
//! message), never bodies.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dirty::{Dirty, TrackedFile};
use crate::record::{self, RecordPos};
use crate::{SeqNo, StorageError, StoredMessage, codec};

/// A segment stops taking appends once it is this large (the batch that
/// crosses the mark is still written whole). Big enough that opening files is
/// rare, small enough that a fully acknowledged stretch of the log is soon
/// deleted.
pub const SEGMENT_TARGET: u64 = 8 * 1024 * 1024;

/// Most bytes one positioned read fetches when paging messages in.
const READ_SPAN: u64 = 1024 * 1024;

/// One durable queue's log. The store keeps it behind the queue's own lock.
#[derive(Debug)]
pub struct QueueLog {
    dir: PathBuf,
    segments: BTreeMap<u64, Segment>,
    next_segment: u64,
    /// Encode buffer reused between appends.
    buf: Vec<u8>,
    segment_target: u64,
}

#[derive(Debug)]
struct Segment {
    /// Open for appending while this is the segment being written.
    writer: Option<Arc<TrackedFile>>,
    size: u64,
    /// In file order, seqs strictly increasing.
    records: Vec<RecordPos>,
    removed: Vec<bool>,
    live: usize,
    ack: Option<Arc<TrackedFile>>,
    /// Length of the ack file's whole entries: where the next entry goes.
    ack_len: u64,
    /// Opened by the first read (the writer is append-only).
    reader: Option<File>,
}

impl Segment {
    fn find_live(&self, seq: SeqNo) -> Option<usize> {
        let i = self.records.binary_search_by_key(&seq, |r| r.seq).ok()?;
        (!self.removed[i]).then_some(i)
    }

    fn last_seq(&self) -> Option<SeqNo> {
        self.records.last().map(|r| r.seq)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:010}.seg"))
}

fn ack_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:010}.ack"))
}

/// Removes a file; one that is already gone is fine.
fn remove_file(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

impl QueueLog {
    /// Opens the log in `dir`: scans every segment, cuts off torn tails,
    /// applies the ack files and deletes segments that are fully removed.
    /// A missing dir is an empty log (it is created on the first append).
    pub fn open(
        dir: PathBuf,
        segment_target: u64,
        dirty: &Dirty,
    ) -> Result<QueueLog, StorageError> {
        let mut log = QueueLog {
            dir,
            segments: BTreeMap::new(),
            next_segment: 0,
            buf: Vec::new(),
            segment_target,
        };
        let entries = match std::fs::read_dir(&log.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(log),
            Err(e) => return Err(io(&log.dir)(e)),
        };
        let mut numbers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(&log.dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                numbers.push(n);
            } else if let Some(n) = name
                .strip_suffix(".ack")
                .and_then(|n| n.parse::<u64>().ok())
            {
                // Never reuse the number of a leftover ack file: its entries
                // would apply to the new segment's records.
                log.next_segment = log.next_segment.max(n + 1);
                // An ack file whose segment is gone: the delete of the pair
                // was cut short. Harmless; finish it.
                if !segment_path(&log.dir, n).exists() {
                    if let Err(e) = remove_file(&entry.path()) {
                        tracing::error!(error = %e, "cannot delete an ack file left without its segment");
                    }
                    dirty.dir(&log.dir);
                }
            } else {
                tracing::warn!(file = %entry.path().display(), "ignoring unknown file in a queue log");
            }
        }
        numbers.sort_unstable();
        for n in numbers {
            log.next_segment = log.next_segment.max(n + 1);
            let seg = match load_segment(&log.dir, n) {
                Ok(seg) => seg,
                Err(e) => {
                    // One unreadable file must not keep the broker from
                    // starting. Its messages stay on disk, untouched, for the
                    // operator; the number is never reused.
                    tracing::error!(file = %segment_path(&log.dir, n).display(), error = %e, "skipping a segment that cannot be read; its messages are not recovered");
                    continue;
                }
            };
            if seg.live == 0 {
                // Segment first, as in `remove_in_segment`.
                if let Err(e) = remove_file(&segment_path(&log.dir, n))
                    .and_then(|()| remove_file(&ack_path(&log.dir, n)))
                {
                    tracing::error!(error = %e, "cannot delete a fully acknowledged segment");
                }
                dirty.dir(&log.dir);
            } else {
                log.segments.insert(n, seg);
            }
        }
        Ok(log)
    }

    /// Appends a batch with one write into the current segment.
    pub fn append(&mut self, msgs: &[StoredMessage], dirty: &Dirty) -> Result<(), StorageError> {
        let Some(first) = msgs.first() else {
            return Ok(());
        };
        // Refuse the whole batch before writing any of it.
        msgs.iter().try_for_each(codec::validate)?;
        if msgs.windows(2).any(|w| w[0].seq >= w[1].seq) {
            return Err(StorageError::Invalid(
                "seqs of an appended batch must increase".into(),
            ));
        }
        // Frame headers and small fields go into one buffer; bodies are
        // written from where they are, with one writev for the batch.
        self.buf.clear();
        let mut heads = Vec::with_capacity(msgs.len());
        for m in msgs {
            let len = record::encode_head(m, &mut self.buf)?;
            heads.push((self.buf.len(), len));
        }
        let n = self.writable_segment(first.seq, dirty)?;
        let Some(seg) = self.segments.get_mut(&n) else {
            return Err(StorageError::Engine(format!("segment {n} vanished")));
        };
        let Some(writer) = seg.writer.clone() else {
            return Err(StorageError::Engine(format!("segment {n} is not writable")));
        };
        let mut slices = Vec::with_capacity(msgs.len() * 2);
        let mut start = 0;
        for (m, &(end, _)) in msgs.iter().zip(&heads) {
            slices.push(IoSlice::new(&self.buf[start..end]));
            if !m.body.is_empty() {
                slices.push(IoSlice::new(&m.body));
            }
            start = end;
        }
        if let Err(e) = write_all_vectored(&writer.file, &mut slices) {
            // Cut a partial write off, so the next append does not land after
            // a torn record; if even that fails, stop writing to this segment.
            if writer.file.set_len(seg.size).is_err() {
                seg.writer = None;
            }
            return Err(io(&writer.path)(e));
        }
        dirty.file(&writer);
        let mut offset = seg.size;
        for (m, (_, len)) in msgs.iter().zip(heads) {
            let len = u32::try_from(len)
                .map_err(|_| StorageError::Invalid(format!("message {} is over 4 GiB", m.seq)))?;
            seg.records.push(RecordPos {
                seq: m.seq,
                offset,
                len,
            });
            seg.removed.push(false);
            offset += u64::from(len);
        }
        seg.size = offset;
        seg.live += msgs.len();
        if seg.size >= self.segment_target {
            seg.writer = None;
        }
        Ok(())
    }

    /// The segment the next append goes to: the current one if it is open,
    /// has room and holds only lower seqs; otherwise a new file.
    fn writable_segment(&mut self, first_seq: SeqNo, dirty: &Dirty) -> Result<u64, StorageError> {
        if let Some((&n, seg)) = self.segments.iter_mut().next_back()
            && seg.writer.is_some()
        {
            if seg.last_seq().is_none_or(|last| last < first_seq) {
                return Ok(n);
            }
            // A seq the broker reuses after deleting a queue or restarting:
            // keep every segment's seqs increasing, start a new one.
            seg.writer = None;
        }
        if !self.dir.is_dir() {
            std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
            if let Some(parent) = self.dir.parent() {
                dirty.dir(parent);
            }
        }
        // A file of the number already there (a segment skipped at open as
        // unreadable, a leftover ack file) is never truncated or reused: take
        // the next free number.
        let (n, path, file) = loop {
            let n = self.next_segment;
            self.next_segment += 1;
            let path = segment_path(&self.dir, n);
            if ack_path(&self.dir, n).exists() {
                tracing::warn!(number = n, dir = %self.dir.display(), "segment number taken by a leftover ack file; using the next");
                continue;
            }
            match File::options().create_new(true).append(true).open(&path) {
                Ok(file) => break (n, path, file),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    tracing::warn!(file = %path.display(), "segment file already exists; using the next number");
                }
                Err(e) => return Err(io(&path)(e)),
            }
        };
        dirty.dir(&self.dir);
        self.segments.insert(
            n,
            Segment {
                writer: Some(TrackedFile::new(file, path)),
                size: 0,
                records: Vec::new(),
                removed: Vec::new(),
                live: 0,
                ack: None,
                ack_len: 0,
                reader: None,
            },
        );
        Ok(n)
    }

    /// Marks messages removed: one write per touched ack file, then deletes
    /// segments that have nothing left. Unknown seqs are ignored.
    ///
    /// Each segment is done whole or not at all: its seqs are marked removed
    /// in memory only after its ack entries are written, and a failed write
    /// is cut back to the file's previous length (entries are written at
    /// that offset, so even a fragment that cannot be cut is overwritten by
    /// the next write and never shifts later entries). On an error the
    /// segments done before it stay done, the rest are untouched.
    pub fn remove(&mut self, seqs: &[SeqNo], dirty: &Dirty) -> Result<(), StorageError> {
        let mut by_segment: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for &seq in seqs {
            // Newest first: a seq reused after a restart is live only in the
            // newest segment that has it.
            let found = self
                .segments
                .iter()
                .rev()
                .filter(|(_, s)| s.records.first().is_some_and(|r| r.seq <= seq))
                .find_map(|(&n, s)| s.find_live(seq).map(|i| (n, i)));
            if let Some((n, i)) = found {
                by_segment.entry(n).or_default().push(i);
            }
        }
        for (n, mut idx) in by_segment {
            idx.sort_unstable();
            idx.dedup();
            self.remove_in_segment(n, &idx, dirty)?;
        }
        Ok(())
    }

    /// Removes the records at `idx` (live, sorted, distinct) of segment `n`.
    fn remove_in_segment(
        &mut self,
        n: u64,
        idx: &[usize],
        dirty: &Dirty,
    ) -> Result<(), StorageError> {
        let Some(seg) = self.segments.get_mut(&n) else {
            return Ok(());
        };
        let left = seg.live.saturating_sub(idx.len());
        if left == 0 && (seg.writer.is_none() || seg.size >= self.segment_target) {
            // Nothing left to acknowledge in it: delete instead of writing.
            // The segment goes first: an ack file without its segment is
            // harmless, a segment without its ack file brings messages back.
            remove_file(&segment_path(&self.dir, n))?;
            self.segments.remove(&n);
            dirty.dir(&self.dir);
            remove_file(&ack_path(&self.dir, n))?;
            return Ok(());
        }
        let mut buf = Vec::with_capacity(idx.len() * 8);
        for &i in idx {
            buf.extend_from_slice(&seg.records[i].seq.to_le_bytes());
        }
        let ack = match &seg.ack {
            Some(a) => a.clone(),
            None => {
                let path = ack_path(&self.dir, n);
                // Not O_APPEND: entries are written at `ack_len` (see above).
                let file = File::options()
                    .create(true)
                    .write(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(io(&path))?;
                dirty.dir(&self.dir);
                let a = TrackedFile::new(file, path);
                seg.ack = Some(a.clone());
                a
            }
        };
        if let Err(e) = ack.file.write_all_at(&buf, seg.ack_len) {
            if let Err(cut) = ack.file.set_len(seg.ack_len) {
                tracing::error!(file = %ack.path.display(), error = %cut, "cannot cut a failed ack write back; the next write overwrites it");
            }
            return Err(io(&ack.path)(e));
        }
        seg.ack_len += u64::try_from(buf.len()).unwrap_or(u64::MAX);
        dirty.file(&ack);
        for &i in idx {
            seg.removed[i] = true;
        }
        seg.live = left;
        Ok(())
    }

    /// Every live message, in seq order, read back from the segment files.
    pub fn read_all(&self) -> Result<Vec<StoredMessage>, StorageError> {
        let mut out = Vec::with_capacity(self.segments.values().map(|s| s.live).sum());
        for (&n, seg) in &self.segments {
            if seg.live == 0 {
                continue;
            }
            let path = segment_path(&self.dir, n);
            let buf = std::fs::read(&path).map_err(io(&path))?;
            for (r, removed) in seg.records.iter().zip(&seg.removed) {
                if *removed {
                    continue;
                }
                if !record::verify(&buf, r) {
                    damaged(&path, r);
                    continue;
                }
                out.push(record::decode(&buf, r)?);
            }
        }
        // Segments are in seq order unless seqs were reused across a restart.
        if !out.is_sorted_by_key(|m| m.seq) {
            out.sort_by_key(|m| m.seq);
        }
        Ok(out)
    }

    /// The seqs of every live message, in seq order, without reading files.
    pub fn live_seqs(&self) -> Vec<SeqNo> {
        let mut out = Vec::with_capacity(self.segments.values().map(|s| s.live).sum());
        for seg in self.segments.values() {
            out.extend(
                seg.records
                    .iter()
                    .zip(&seg.removed)
                    .filter(|(_, removed)| !**removed)
                    .map(|(r, _)| r.seq),
            );
        }
        if !out.is_sorted() {
            out.sort_unstable();
        }
        out
    }

    /// The live messages of `seqs`, in the order given; seqs not live in the
    /// log are skipped. Neighbouring records of one segment are read with
    /// one positioned read (up to [`READ_SPAN`] bytes).
    pub fn read(&mut self, seqs: &[SeqNo]) -> Result<Vec<StoredMessage>, StorageError> {
        let found: Vec<(u64, usize)> = seqs
            .iter()
            .filter_map(|&seq| {
                self.segments
                    .iter()
                    .rev()
                    .filter(|(_, s)| s.records.first().is_some_and(|r| r.seq <= seq))
                    .find_map(|(&n, s)| s.find_live(seq).map(|i| (n, i)))
            })
            .collect();
        let mut out = Vec::with_capacity(found.len());
        let mut i = 0;
        while i < found.len() {
            let (n, first) = found[i];
            let Some(seg) = self.segments.get_mut(&n) else {
                break;
            };
            let start = seg.records[first].offset;
            let mut j = i + 1;
            while j < found.len() && found[j].0 == n && found[j].1 > found[j - 1].1 {
                let r = &seg.records[found[j].1];
                if r.offset + u64::from(r.len) - start > READ_SPAN {
                    break;
                }
                j += 1;
            }
            let last = &seg.records[found[j - 1].1];
            let end = last.offset + u64::from(last.len);
            let path = segment_path(&self.dir, n);
            let reader = match &seg.reader {
                Some(r) => r,
                None => seg.reader.insert(File::open(&path).map_err(io(&path))?),
            };
            let len = usize::try_from(end - start)
                .map_err(|_| StorageError::Corrupt(format!("read of {} bytes", end - start)))?;
            let mut buf = vec![0u8; len];
            reader.read_exact_at(&mut buf, start).map_err(io(&path))?;
            // Each message gets its own copy of its record: one small memcpy, where slices
            // of the shared read buffer would let one long-unacknowledged message pin the
            // whole span (up to READ_SPAN, dead records included) out of the memory gauge's
            // sight.
            for &(_, k) in &found[i..j] {
                let mut pos = seg.records[k];
                pos.offset -= start;
                // Checked at every read, not only at the start-up scan: bytes
                // damaged since must never reach a consumer.
                if !record::verify(&buf, &pos) {
                    damaged(&path, &seg.records[k]);
                    continue;
                }
                out.push(record::decode(&buf, &pos)?);
            }
            i = j;
        }
        Ok(out)
    }

    /// Deletes every segment; the log stays usable. Each segment goes before
    /// its ack file (an ack file alone is harmless, a segment without its ack
    /// file would bring acked messages back), and leaves memory only once its
    /// segment file is gone, so a failure half-way keeps memory and disk
    /// agreeing on what is left.
    pub fn purge(&mut self, dirty: &Dirty) -> Result<(), StorageError> {
        while let Some((&n, _)) = self.segments.first_key_value() {
            remove_file(&segment_path(&self.dir, n))?;
            self.segments.remove(&n);
            dirty.dir(&self.dir);
            remove_file(&ack_path(&self.dir, n))?;
        }
        Ok(())
    }

    /// Number of segment files, for tests and stats.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// `write_all` for a list of slices (`Write::write_all_vectored` is not
/// stable yet): loops over short writes; std caps each call at `IOV_MAX`.
fn write_all_vectored(mut file: &File, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    while !bufs.is_empty() {
        match file.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Logs a record whose checksum failed when read back; it is treated as
/// missing.
fn damaged(path: &Path, r: &RecordPos) {
    tracing::error!(file = %path.display(), offset = r.offset, seq = r.seq, "skipping a damaged record (checksum mismatch on read)");
}

/// Reads one segment and its ack file; cuts a torn tail off the segment.
fn load_segment(dir: &Path, n: u64) -> Result<Segment, StorageError> {
    let path = segment_path(dir, n);
    let buf = std::fs::read(&path).map_err(io(&path))?;
    let scan = record::scan(&buf);
    for offset in &scan.corrupt {
        tracing::error!(file = %path.display(), offset, "skipping a damaged region (no valid record frame); records after it are kept");
    }
    let file_len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
    if scan.valid_len < file_len {
        tracing::warn!(
            file = %path.display(),
            kept = scan.valid_len,
            cut = file_len - scan.valid_len,
            "truncating a torn record at the end of a segment (a write cut short by a crash; no valid record follows)"
        );
        // A loaded segment is never appended to again (appends go to a new
        // one), so a cut that fails only leaves dead bytes behind.
        let cut = File::options().write(true).open(&path).and_then(|f| {
            f.set_len(scan.valid_len)?;
            f.sync_all()
        });
        if let Err(e) = cut {
            tracing::error!(file = %path.display(), error = %e, "cannot truncate a torn tail");
        }
    }
    let mut records = scan.records;
    // Seqs are increasing within a segment by construction; a damaged file
    // that breaks that still loads, in seq order, with duplicates dropped.
    if !records.windows(2).all(|w| w[0].seq < w[1].seq) {
        tracing::error!(file = %path.display(), "segment seqs out of order; sorting");
        records.sort_by_key(|r| r.seq);
        records.dedup_by_key(|r| r.seq);
    }
    let mut removed = vec![false; records.len()];
    let mut live = records.len();
    let mut ack_len = 0;
    let ack = ack_path(dir, n);
    match std::fs::read(&ack) {
        Ok(acks) => {
            let whole = acks.len() - acks.len() % 8;
            ack_len = u64::try_from(whole).unwrap_or(u64::MAX);
            if whole < acks.len() {
                // A torn entry: cut it, so later appends stay 8-byte aligned.
                // (Entries are written at `ack_len` anyway, so if the cut
                // fails the torn bytes are overwritten by the next one.)
                tracing::warn!(file = %ack.display(), "truncating a torn entry at the end of an ack file");
                let cut = File::options().write(true).open(&ack).and_then(|f| {
                    f.set_len(u64::try_from(whole).unwrap_or(0))?;
                    f.sync_all()
                });
                if let Err(e) = cut {
                    tracing::error!(file = %ack.display(), error = %e, "cannot truncate a torn ack entry");
                }
            }
            for chunk in acks.chunks_exact(8) {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                let seq = SeqNo::from_le_bytes(b);
                if let Ok(i) = records.binary_search_by_key(&seq, |r| r.seq)
                    && !removed[i]
                {
                    removed[i] = true;
                    live -= 1;
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&ack)(e)),
    }
    Ok(Segment {
        writer: None,
        size: scan.valid_len,
        records,
        removed,
        live,
        // Reopened (for writing at `ack_len`) by the first removal.
        ack: None,
        ack_len,
        reader: None,
    })
}
