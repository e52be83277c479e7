//! [`QueueLog`]: one durable queue's messages as a directory of append-only
//! segment files.
//!
//! ```text
//! <queue dir>/0000000000.seg   records (record.rs), appended in seq order
//! <queue dir>/0000000000.ack   seqs (u64 LE) of the segment's removed messages
//! <queue dir>/0000000001.seg   the next segment, opened when the last one is full
//! ```
//!
//! Records are never rewritten: a removal is an 8-byte append to the
//! segment's ack file, and a segment is deleted with its ack file as soon as
//! every message in it is removed. In memory each segment keeps only the
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
                // An ack file whose segment is gone: the delete of the pair
                // was cut short. Harmless; finish it.
                if !segment_path(&log.dir, n).exists() {
                    remove_file(&entry.path())?;
                    dirty.dir(&log.dir);
                }
            } else {
                tracing::warn!(file = %entry.path().display(), "ignoring unknown file in a queue log");
            }
        }
        numbers.sort_unstable();
        for n in numbers {
            log.next_segment = log.next_segment.max(n + 1);
            let seg = load_segment(&log.dir, n)?;
            if seg.live == 0 {
                remove_file(&segment_path(&log.dir, n))?;
                remove_file(&ack_path(&log.dir, n))?;
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
        let n = self.next_segment;
        let path = segment_path(&self.dir, n);
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        // A leftover file of that number (cannot normally exist) would put
        // our offsets off: start from an empty file.
        file.set_len(0).map_err(io(&path))?;
        self.next_segment += 1;
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
                reader: None,
            },
        );
        Ok(n)
    }

    /// Marks messages removed: one append per touched ack file, then deletes
    /// segments that have nothing left. Unknown seqs are ignored.
    pub fn remove(&mut self, seqs: &[SeqNo], dirty: &Dirty) -> Result<(), StorageError> {
        let mut acks: Vec<(u64, Vec<u8>)> = Vec::new();
        for &seq in seqs {
            // Newest first: a seq reused after a restart is live only in the
            // newest segment that has it.
            let found = self
                .segments
                .iter_mut()
                .rev()
                .filter(|(_, s)| s.records.first().is_some_and(|r| r.seq <= seq))
                .find_map(|(&n, s)| s.find_live(seq).map(|i| (n, s, i)));
            let Some((n, seg, i)) = found else {
                continue;
            };
            seg.removed[i] = true;
            seg.live -= 1;
            match acks.iter_mut().find(|(m, _)| *m == n) {
                Some((_, buf)) => buf.extend_from_slice(&seq.to_le_bytes()),
                None => acks.push((n, seq.to_le_bytes().to_vec())),
            }
        }
        for (n, buf) in acks {
            let Some(seg) = self.segments.get_mut(&n) else {
                continue;
            };
            if seg.live == 0 && (seg.writer.is_none() || seg.size >= self.segment_target) {
                // Nothing left to acknowledge in it: delete instead of writing.
                self.segments.remove(&n);
                remove_file(&segment_path(&self.dir, n))?;
                remove_file(&ack_path(&self.dir, n))?;
                dirty.dir(&self.dir);
                continue;
            }
            let ack = match &seg.ack {
                Some(a) => a.clone(),
                None => {
                    let path = ack_path(&self.dir, n);
                    let file = File::options()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .map_err(io(&path))?;
                    dirty.dir(&self.dir);
                    let a = TrackedFile::new(file, path);
                    seg.ack = Some(a.clone());
                    a
                }
            };
            (&ack.file).write_all(&buf).map_err(io(&ack.path))?;
            dirty.file(&ack);
        }
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
                if !removed {
                    out.push(record::decode(&buf, r)?);
                }
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
            // Messages are slices of one buffer per read: no copy per message.
            let buf = bytes::Bytes::from(buf);
            for &(_, k) in &found[i..j] {
                let mut pos = seg.records[k];
                pos.offset -= start;
                out.push(record::decode_shared(&buf, &pos)?);
            }
            i = j;
        }
        Ok(out)
    }

    /// Deletes every segment; the log stays usable.
    pub fn purge(&mut self, dirty: &Dirty) -> Result<(), StorageError> {
        for (n, _) in std::mem::take(&mut self.segments) {
            remove_file(&segment_path(&self.dir, n))?;
            remove_file(&ack_path(&self.dir, n))?;
            dirty.dir(&self.dir);
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

/// Reads one segment and its ack file; cuts a torn tail off the segment.
fn load_segment(dir: &Path, n: u64) -> Result<Segment, StorageError> {
    let path = segment_path(dir, n);
    let buf = std::fs::read(&path).map_err(io(&path))?;
    let scan = record::scan(&buf);
    for offset in &scan.corrupt {
        tracing::error!(file = %path.display(), offset, "skipping a damaged record (checksum mismatch)");
    }
    let file_len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
    if scan.valid_len < file_len {
        tracing::warn!(
            file = %path.display(),
            kept = scan.valid_len,
            cut = file_len - scan.valid_len,
            "truncating a torn record at the end of a segment (a write cut short by a crash)"
        );
        let f = File::options().write(true).open(&path).map_err(io(&path))?;
        f.set_len(scan.valid_len).map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
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
    let ack = ack_path(dir, n);
    match std::fs::read(&ack) {
        Ok(acks) => {
            let whole = acks.len() - acks.len() % 8;
            if whole < acks.len() {
                // A torn entry: cut it, so later appends stay 8-byte aligned.
                tracing::warn!(file = %ack.display(), "truncating a torn entry at the end of an ack file");
                let f = File::options().write(true).open(&ack).map_err(io(&ack))?;
                f.set_len(u64::try_from(whole).unwrap_or(0))
                    .map_err(io(&ack))?;
                f.sync_all().map_err(io(&ack))?;
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
        // Reopened (for appending) by the first removal.
        ack: None,
        reader: None,
    })
}
