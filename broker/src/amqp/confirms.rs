//! Publisher-confirm bookkeeping of one channel: which publish sequence numbers are still
//! waiting for their queues, and which acks/nacks to send. Acks are cumulative
//! (`multiple=true`) whenever a contiguous run is done, so confirm traffic follows fsyncs,
//! not messages.

use std::collections::{BTreeMap, BTreeSet};

/// One confirm frame to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOut {
    /// basic.ack(tag, multiple).
    Ack {
        /// Delivery tag (publish sequence number).
        tag: u64,
        /// Covers every tag up to this one.
        multiple: bool,
    },
    /// basic.nack(tag, multiple=false).
    Nack {
        /// Delivery tag.
        tag: u64,
    },
}

/// Confirm state of a channel in confirm mode.
#[derive(Debug, Default)]
pub struct Confirms {
    /// Last sequence number handed out (the first publish gets 1).
    last_seq: u64,
    /// Everything up to here has been acked or nacked on the wire.
    settled_upto: u64,
    /// Sequence → queues still to answer.
    pending: BTreeMap<u64, u32>,
    /// Failed ones not yet covered by `settled_upto` (already nacked on the wire).
    nacked: BTreeSet<u64>,
}

impl Confirms {
    /// Registers a publish routed to `queues` queues; returns its sequence number.
    /// A publish routed nowhere is done at once.
    pub fn publish(&mut self, queues: u32) -> u64 {
        self.last_seq += 1;
        if queues > 0 {
            self.pending.insert(self.last_seq, queues);
        }
        self.last_seq
    }

    /// One queue answered for `seq`. A failure nacks the message at once.
    pub fn answer(&mut self, seq: u64, ok: bool, out: &mut Vec<ConfirmOut>) {
        let Some(left) = self.pending.get_mut(&seq) else {
            return;
        };
        if !ok {
            self.pending.remove(&seq);
            self.nacked.insert(seq);
            out.push(ConfirmOut::Nack { tag: seq });
            return;
        }
        *left -= 1;
        if *left == 0 {
            self.pending.remove(&seq);
        }
    }

    /// Acks for everything newly done below the oldest message still waiting.
    pub fn flush(&mut self, out: &mut Vec<ConfirmOut>) {
        let done_upto = match self.pending.first_key_value() {
            Some((&oldest, _)) => oldest - 1,
            None => self.last_seq,
        };
        if done_upto <= self.settled_upto {
            return;
        }
        let from = self.settled_upto + 1;
        if self.nacked.range(from..=done_upto).next().is_none() {
            out.push(ConfirmOut::Ack {
                tag: done_upto,
                multiple: done_upto > from,
            });
        } else {
            // A nacked tag sits inside the run: ack the others one run at a time.
            let mut run_start = from;
            for tag in from..=done_upto {
                if self.nacked.remove(&tag) {
                    if tag > run_start {
                        out.push(ConfirmOut::Ack {
                            tag: tag - 1,
                            multiple: tag - 1 > run_start,
                        });
                    }
                    run_start = tag + 1;
                }
            }
            if run_start <= done_upto {
                out.push(ConfirmOut::Ack {
                    tag: done_upto,
                    multiple: done_upto > run_start,
                });
            }
        }
        self.settled_upto = done_upto;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_cumulative_and_wait_for_the_oldest() {
        let mut c = Confirms::default();
        let a = c.publish(1);
        let b = c.publish(2);
        let d = c.publish(0);
        let mut out = Vec::new();
        c.answer(b, true, &mut out);
        c.answer(b, true, &mut out);
        c.flush(&mut out);
        assert!(out.is_empty(), "nothing before the oldest pending one");
        c.answer(a, true, &mut out);
        c.flush(&mut out);
        assert_eq!(
            out,
            vec![ConfirmOut::Ack {
                tag: d,
                multiple: true
            }]
        );
    }

    #[test]
    fn a_nack_splits_the_cumulative_ack() {
        let mut c = Confirms::default();
        for _ in 0..4 {
            c.publish(1);
        }
        let mut out = Vec::new();
        c.answer(2, false, &mut out);
        for seq in [1, 3, 4] {
            c.answer(seq, true, &mut out);
        }
        c.flush(&mut out);
        assert_eq!(
            out,
            vec![
                ConfirmOut::Nack { tag: 2 },
                ConfirmOut::Ack {
                    tag: 1,
                    multiple: false
                },
                ConfirmOut::Ack {
                    tag: 4,
                    multiple: true
                },
            ]
        );
        out.clear();
        c.flush(&mut out);
        assert!(out.is_empty(), "each tag is confirmed exactly once");
    }
}
