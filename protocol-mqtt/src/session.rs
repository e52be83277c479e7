//! Sans-IO bookkeeping the broker keeps per session: which outbound packet
//! identifiers are in flight, and which inbound QoS 2 messages await their
//! PUBREL.
//!
//! Both use a `BTreeSet` rather than a 65,536-bit map: a session rarely has
//! more than a Receive Maximum's worth of ids in flight, so a few dozen
//! bytes per entry beat 8 KiB per connection.

use std::collections::BTreeSet;

use crate::types::PacketId;

/// Hands out packet identifiers for outbound PUBLISH / SUBSCRIBE /
/// UNSUBSCRIBE and takes them back when the flow completes (PUBACK,
/// PUBCOMP, SUBACK, UNSUBACK).
///
/// Ids are given out round-robin from the last one used, so a just-released
/// id is not reused at once (a late duplicate ack cannot hit a new flow).
#[derive(Clone, Debug, Default)]
pub struct PacketIdAllocator {
    last: u16,
    in_use: BTreeSet<u16>,
}

impl PacketIdAllocator {
    /// An allocator with no id in use.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next free id after the last one handed out, or `None` when all
    /// 65,535 are in use.
    pub fn allocate(&mut self) -> Option<PacketId> {
        if self.in_use.len() >= usize::from(u16::MAX) {
            return None;
        }
        let mut candidate = self.last;
        loop {
            candidate = candidate.checked_add(1).unwrap_or(1);
            if !self.in_use.contains(&candidate) {
                break;
            }
        }
        self.last = candidate;
        self.in_use.insert(candidate);
        PacketId::new(candidate)
    }

    /// Marks `id` as in use (restoring a session's in-flight messages).
    /// Returns false if it already was.
    pub fn mark_in_use(&mut self, id: PacketId) -> bool {
        self.in_use.insert(id.get())
    }

    /// Frees `id`; returns false if it was not in use (an ack for an
    /// unknown id, 5.0 reason 0x92).
    pub fn release(&mut self, id: PacketId) -> bool {
        self.in_use.remove(&id.get())
    }

    /// Whether `id` is currently in flight.
    pub fn is_in_use(&self, id: PacketId) -> bool {
        self.in_use.contains(&id.get())
    }

    /// Number of ids in flight.
    pub fn in_flight(&self) -> usize {
        self.in_use.len()
    }
}

/// What to do with an inbound QoS 2 PUBLISH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos2Publish {
    /// First time this id is seen: forward the message, answer PUBREC.
    New,
    /// The id is still awaiting PUBREL: a re-send; answer PUBREC again but
    /// do not forward the message twice.
    Duplicate,
}

/// Inbound QoS 2 state ("Method B" of 5.0 §4.3.3: store only the packet
/// id, forward at once).
///
/// ```text
///  PUBLISH(id) ──New──▶ awaiting PUBREL ──PUBREL(id)──▶ free (answer PUBCOMP)
///                        │      ▲
///                        └──────┘ PUBLISH(id) again: Duplicate
/// ```
#[derive(Clone, Debug, Default)]
pub struct InboundQos2 {
    awaiting_rel: BTreeSet<PacketId>,
}

impl InboundQos2 {
    /// No inbound QoS 2 flows open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a QoS 2 PUBLISH and says whether it is new.
    pub fn on_publish(&mut self, id: PacketId) -> Qos2Publish {
        if self.awaiting_rel.insert(id) {
            Qos2Publish::New
        } else {
            Qos2Publish::Duplicate
        }
    }

    /// Handles PUBREL: true if `id` was awaiting it (PUBCOMP Success),
    /// false otherwise (PUBCOMP 0x92 Packet Identifier not found in 5.0;
    /// plain PUBCOMP in 3.1.1). Either way the id is free afterwards.
    pub fn on_pubrel(&mut self, id: PacketId) -> bool {
        self.awaiting_rel.remove(&id)
    }

    /// Number of QoS 2 messages awaiting PUBREL (counts toward the
    /// Receive Maximum).
    pub fn pending(&self) -> usize {
        self.awaiting_rel.len()
    }

    /// The ids awaiting PUBREL, for persisting the session.
    pub fn ids(&self) -> impl Iterator<Item = PacketId> + '_ {
        self.awaiting_rel.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(v: u16) -> PacketId {
        PacketId::new(v).expect("non-zero")
    }

    #[test]
    fn allocator_round_robin_and_release() {
        let mut a = PacketIdAllocator::new();
        assert_eq!(a.allocate(), Some(id(1)));
        assert_eq!(a.allocate(), Some(id(2)));
        assert!(a.release(id(1)));
        assert!(!a.release(id(1)));
        assert_eq!(a.allocate(), Some(id(3)), "no immediate reuse");
        assert_eq!(a.in_flight(), 2);
        assert!(a.is_in_use(id(2)));
    }

    #[test]
    fn allocator_wraps_and_skips_zero_and_busy_ids() {
        let mut a = PacketIdAllocator::new();
        assert!(a.mark_in_use(id(1)));
        assert!(!a.mark_in_use(id(1)));
        a.last = u16::MAX - 1;
        assert_eq!(a.allocate(), Some(id(u16::MAX)));
        assert_eq!(a.allocate(), Some(id(2)), "wraps past 0 and busy 1");
    }

    #[test]
    fn allocator_exhaustion() {
        let mut a = PacketIdAllocator::new();
        for _ in 0..u16::MAX {
            assert!(a.allocate().is_some());
        }
        assert_eq!(a.allocate(), None);
        assert!(a.release(id(777)));
        assert_eq!(a.allocate(), Some(id(777)));
    }

    #[test]
    fn inbound_qos2_flow() {
        let mut q = InboundQos2::new();
        assert_eq!(q.on_publish(id(5)), Qos2Publish::New);
        assert_eq!(q.on_publish(id(5)), Qos2Publish::Duplicate);
        assert_eq!(q.pending(), 1);
        assert!(q.on_pubrel(id(5)));
        assert!(!q.on_pubrel(id(5)));
        assert_eq!(
            q.on_publish(id(5)),
            Qos2Publish::New,
            "new message after PUBCOMP"
        );
        assert_eq!(q.ids().collect::<Vec<_>>(), vec![id(5)]);
    }
}
