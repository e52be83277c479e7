//! Delivery tracking: each consumer keeps a [`Tracker`]; at the end the
//! trackers of a group (consumers that share one stream of messages: the
//! consumers of one queue, or one fan-out subscriber) are merged into
//! lost / duplicated counts.

use std::collections::HashMap;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::stamp::Stamp;

/// Producer ids above this are not tracked (counted as foreign).
const MAX_PRODUCER: u32 = 1 << 16;

/// A new latency histogram: microseconds, 1 µs to 1 h, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .expect("1 µs .. 1 h with 3 digits are valid histogram bounds");
    h.auto(true);
    h
}

/// Per-producer sequence numbers one consumer has seen.
#[derive(Debug, Default)]
struct Seen {
    bits: Vec<u64>,
    /// Highest sequence number + 1.
    next: u64,
}

impl Seen {
    /// Marks `seq`; false if it was already set.
    fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let was = self.bits[word] & (1 << bit) != 0;
        self.bits[word] |= 1 << bit;
        !was
    }
}

/// What one consumer received.
#[derive(Debug)]
pub struct Tracker {
    /// Only messages of this run count (`None`: accept any run).
    run: Option<u32>,
    seen: HashMap<u32, Seen>,
    /// Deliveries of this run.
    pub received: u64,
    /// Body bytes of those deliveries.
    pub bytes: u64,
    /// Deliveries of a sequence number this consumer had already seen.
    pub duplicates: u64,
    /// Deliveries whose sequence number is below one already seen from the
    /// same producer (and not a duplicate).
    pub out_of_order: u64,
    /// Deliveries from another run or without a stamp (ignored otherwise).
    pub foreign: u64,
    /// Latency, µs.
    pub latency: Histogram<u64>,
    /// When the last delivery of this run arrived.
    pub last: Option<Instant>,
}

impl Tracker {
    /// A tracker for `run` (`None`: accept every run).
    pub fn new(run: Option<u32>) -> Tracker {
        Tracker {
            run,
            seen: HashMap::new(),
            received: 0,
            bytes: 0,
            duplicates: 0,
            out_of_order: 0,
            foreign: 0,
            latency: new_histogram(),
            last: None,
        }
    }

    /// Records one delivered body, received at `now_ns` (Unix ns).
    pub fn record(&mut self, body: &[u8], now_ns: u64) {
        let Some(stamp) = Stamp::read(body) else {
            self.foreign += 1;
            return;
        };
        if self.run.is_some_and(|r| r != stamp.run) || stamp.producer >= MAX_PRODUCER {
            self.foreign += 1;
            return;
        }
        self.received += 1;
        self.bytes += body.len() as u64;
        self.latency
            .saturating_record(now_ns.saturating_sub(stamp.sent_ns) / 1000);
        let seen = self.seen.entry(stamp.producer).or_default();
        if !seen.insert(stamp.seq) {
            self.duplicates += 1;
        } else if stamp.seq < seen.next {
            self.out_of_order += 1;
        }
        seen.next = seen.next.max(stamp.seq + 1);
    }

    /// Marks the time of the last delivery (once per read batch).
    pub fn touch(&mut self) {
        self.last = Some(Instant::now());
    }
}

/// The merged result of one group.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GroupResult {
    /// Messages the group should have received.
    pub expected: u64,
    /// Distinct messages it received.
    pub unique: u64,
    /// Expected but never received.
    pub lost: u64,
    /// Received more than once (within or across the group's consumers).
    pub duplicated: u64,
}

/// Merges the trackers of one group.
///
/// `sent`: for each producer feeding the group, how many messages it sent
/// (sequence numbers `0..sent`). `expect`: instead of `sent`, a total count
/// (consumers-only runs, where the producers are not known).
pub fn merge_group(trackers: &[&Tracker], sent: &[(u32, u64)], expect: Option<u64>) -> GroupResult {
    let mut union: HashMap<u32, Vec<u64>> = HashMap::new();
    let mut total_bits = 0u64;
    let mut within = 0u64;
    for t in trackers {
        within += t.duplicates;
        for (producer, seen) in &t.seen {
            let u = union.entry(*producer).or_default();
            if u.len() < seen.bits.len() {
                u.resize(seen.bits.len(), 0);
            }
            for (a, b) in u.iter_mut().zip(&seen.bits) {
                *a |= b;
                total_bits += u64::from(b.count_ones());
            }
        }
    }
    let unique: u64 = union
        .values()
        .flat_map(|v| v.iter())
        .map(|w| u64::from(w.count_ones()))
        .sum();
    let duplicated = within + (total_bits - unique);
    let (expected, lost) = match expect {
        Some(n) => (n, n.saturating_sub(unique)),
        None => {
            let mut expected = 0;
            let mut lost = 0;
            for &(producer, n) in sent {
                expected += n;
                let got = union.get(&producer).map_or(0, |bits| count_below(bits, n));
                lost += n - got;
            }
            (expected, lost)
        }
    };
    GroupResult {
        expected,
        unique,
        lost,
        duplicated,
    }
}

/// Set bits for sequence numbers `< n`.
fn count_below(bits: &[u64], n: u64) -> u64 {
    let full = (n / 64) as usize;
    let mut c: u64 = bits
        .iter()
        .take(full)
        .map(|w| u64::from(w.count_ones()))
        .sum();
    let rest = n % 64;
    if let Some(w) = bits.get(full).filter(|_| rest > 0) {
        c += u64::from((w & ((1u64 << rest) - 1)).count_ones());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(producer: u32, seq: u64) -> [u8; 24] {
        let mut b = [0u8; 24];
        Stamp {
            run: 1,
            producer,
            seq,
            sent_ns: 0,
        }
        .write(&mut b);
        b
    }

    #[test]
    fn counts_lost_duplicated_and_out_of_order() {
        let mut a = Tracker::new(Some(1));
        let mut b = Tracker::new(Some(1));
        for seq in [0, 1, 3, 2, 3] {
            a.record(&body(0, seq), 0);
        }
        b.record(&body(0, 1), 0); // duplicate across consumers
        b.record(&body(0, 5), 0);
        let mut other_run = body(0, 9);
        other_run[3] = 2;
        b.record(&other_run, 0);
        assert_eq!((a.duplicates, a.out_of_order, b.foreign), (1, 1, 1));
        let r = merge_group(&[&a, &b], &[(0, 7)], None);
        assert_eq!(
            r,
            GroupResult {
                expected: 7,
                unique: 5,
                lost: 2,
                duplicated: 2
            }
        );
        let r = merge_group(&[&a, &b], &[], Some(10));
        assert_eq!((r.expected, r.lost), (10, 5));
    }
}
