//! Model-based test: random operations on a `SegmentStorage`, including syncs and
//! reopens, checked against a `BTreeMap` per queue. Run with the normal segment
//! size and with tiny segments, so rollover, deletion of fully acknowledged
//! segments and acks into older segments happen all the time.
//!
//! A seeded xorshift generator instead of proptest (not a dependency of this
//! crate): a failure prints its seed and step, and rerunning with that seed
//! replays it exactly.

use std::collections::BTreeMap;

use bytes::Bytes;
use storage::{QueueKey, SegmentStorage, SeqNo, Storage, StoredMessage};

/// xorshift64*: tiny, deterministic, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(u64::try_from(len).unwrap())).unwrap()
    }
}

#[derive(Debug)]
enum Op {
    Append { q: usize, count: u64 },
    Remove { q: usize, picks: u64 },
    Purge { q: usize },
    Delete { q: usize },
    Recover { q: usize },
    Read { q: usize },
    Sync,
    Reopen,
}

fn message(seq: SeqNo, rng: &mut Rng) -> StoredMessage {
    let len = match rng.below(10) {
        0 => 0,
        1 => 20_000 + rng.index(50_000),
        _ => rng.index(300),
    };
    let fill = rng.next().to_be_bytes()[0];
    StoredMessage {
        seq,
        exchange: format!("ex{}", seq % 7),
        routing_key: format!("rk.{seq}"),
        properties: Bytes::from(seq.to_be_bytes().to_vec()),
        body: Bytes::from(vec![fill; len]),
    }
}

fn run(seed: u64, steps: usize, segment_size: u64) {
    let dir = tempfile::tempdir().unwrap();
    let queues = [
        QueueKey::new("a/b", "c"),
        QueueKey::new("a", "b/c"),
        QueueKey::new("/", "orders"),
        QueueKey::new("", ""),
    ];
    let mut model: Vec<BTreeMap<SeqNo, StoredMessage>> = vec![BTreeMap::new(); queues.len()];
    // Seqs keep increasing per queue across purge and delete, as the broker's
    // counters do within a process; after a delete, reuse from 1 is allowed
    // (a redeclared queue starts over), so restart there half of the time.
    let mut next_seq: Vec<SeqNo> = vec![1; queues.len()];
    let mut rng = Rng(seed | 1);
    let open = || SegmentStorage::open_with_segment_size(dir.path(), segment_size);
    let mut store = Some(open().unwrap());

    for step in 0..steps {
        let q = rng.index(queues.len());
        let op = match rng.below(100) {
            0..=39 => Op::Append {
                q,
                count: 1 + rng.below(8),
            },
            40..=69 => Op::Remove {
                q,
                picks: 1 + rng.below(6),
            },
            70..=72 => Op::Purge { q },
            73..=74 => Op::Delete { q },
            75..=82 => Op::Recover { q },
            83..=89 => Op::Read { q },
            90..=97 => Op::Sync,
            _ => Op::Reopen,
        };
        let s = store.as_ref().unwrap();
        let ctx = format!("seed {seed} step {step} {op:?}");
        match op {
            Op::Append { q, count } => {
                let batch: Vec<StoredMessage> = (0..count)
                    .map(|i| message(next_seq[q] + i, &mut rng))
                    .collect();
                next_seq[q] += count;
                s.append(&queues[q], &batch).expect(&ctx);
                for m in batch {
                    model[q].insert(m.seq, m);
                }
            }
            Op::Remove { q, picks } => {
                // Mostly present seqs, sometimes ones that never existed.
                let present: Vec<SeqNo> = model[q].keys().copied().collect();
                let seqs: Vec<SeqNo> = (0..picks)
                    .map(|_| {
                        if present.is_empty() || rng.below(5) == 0 {
                            rng.below(next_seq[q] + 5)
                        } else {
                            present[rng.index(present.len())]
                        }
                    })
                    .collect();
                s.remove(&queues[q], &seqs).expect(&ctx);
                for seq in seqs {
                    model[q].remove(&seq);
                }
            }
            Op::Purge { q } => {
                s.purge(&queues[q]).expect(&ctx);
                model[q].clear();
            }
            Op::Delete { q } => {
                s.delete_queue(&queues[q]).expect(&ctx);
                model[q].clear();
                if rng.below(2) == 0 {
                    next_seq[q] = 1;
                }
            }
            Op::Recover { q } => {
                let got = s.recover(&queues[q]).expect(&ctx);
                let want: Vec<StoredMessage> = model[q].values().cloned().collect();
                assert!(got == want, "{ctx}: recover differs from the model");
            }
            Op::Read { q } => {
                // Some present seqs (increasing) and some that are not.
                let mut seqs: Vec<SeqNo> = model[q]
                    .keys()
                    .copied()
                    .filter(|_| rng.below(3) == 0)
                    .collect();
                seqs.push(next_seq[q] + 3);
                let got = s.read(&queues[q], &seqs).expect(&ctx);
                let want: Vec<StoredMessage> = seqs
                    .iter()
                    .filter_map(|seq| model[q].get(seq).cloned())
                    .collect();
                assert!(got == want, "{ctx}: read differs from the model");
                let all: Vec<SeqNo> = model[q].keys().copied().collect();
                assert_eq!(s.recover_seqs(&queues[q]).expect(&ctx), all, "{ctx}");
            }
            Op::Sync => s.sync().expect(&ctx),
            Op::Reopen => {
                // Only synced state is promised to survive, so sync first.
                s.sync().expect(&ctx);
                drop(store.take());
                let s = open().expect(&ctx);
                for (i, q) in queues.iter().enumerate() {
                    let got = s.recover(q).expect(&ctx);
                    let want: Vec<StoredMessage> = model[i].values().cloned().collect();
                    assert!(
                        got == want,
                        "{ctx}: {q:?} differs from the model after reopen"
                    );
                }
                store = Some(s);
            }
        }
    }
}

#[test]
fn segment_store_matches_model() {
    for seed in [1, 2, 3, 0xDEAD_BEEF] {
        run(seed, 1500, 8 * 1024 * 1024);
        run(seed, 1500, 4096);
    }
}
