//! The behaviour every [`Storage`] must have, as a reusable test suite.
//!
//! Hidden from the docs: it is test support, public only so that this crate's
//! integration tests and the broker's tests can run the same cases against
//! any store (and against a store wrapper of their own).
//!
//! The suite panics with a message naming the case on the first mismatch.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::{
    BindingDef, Definitions, ExchangeDef, PermissionDef, QueueDef, QueueKey, SeqNo, Storage,
    StorageError, StoredMessage, UserDef,
};

/// Runs every case against the store that `open` returns.
///
/// `open` is called once at the start, when it must return a fresh, empty
/// store, and again for each "reopen": the suite drops the previous store
/// before calling it, so for a disk store `open` just opens the same
/// directory again, and for [`crate::MemoryStorage`] it returns a clone of
/// one shared handle. Everything written and synced before a reopen must be
/// there after it.
pub fn run_all<S: Storage>(mut open: impl FnMut() -> S) {
    let mut log = Expected::default();

    let s = open();
    fresh_store_is_empty(&s);
    append_then_recover_in_seq_order(&s, &mut log);
    seq_order_is_numeric_not_lexical(&s, &mut log);
    remove_acknowledged(&s, &mut log);
    remove_unknown_is_ignored(&s, &mut log);
    purge_empties_and_keeps_log_usable(&s, &mut log);
    delete_queue_drops_log(&s, &mut log);
    queues_are_isolated(&s, &mut log);
    large_bodies(&s, &mut log);
    empty_and_extreme_fields(&s, &mut log);
    invalid_batch_is_refused_whole(&s, &mut log);
    let defs = definitions_round_trip(&s);
    log.check_all(&s, "before reopen");

    s.sync().expect("sync");
    drop(s);
    let s = open();
    log.check_all(&s, "after reopen");
    assert_eq!(
        s.load_definitions().expect("load"),
        defs,
        "definitions after reopen"
    );

    writes_continue_after_reopen(&s, &mut log);
    s.sync().expect("sync");
    drop(s);
    let s = open();
    log.check_all(&s, "after second reopen");
    assert_eq!(
        s.load_definitions().expect("load"),
        defs,
        "definitions after second reopen"
    );
}

/// What every queue the suite touched must contain.
#[derive(Default)]
struct Expected {
    queues: BTreeMap<QueueKey, Vec<StoredMessage>>,
}

impl Expected {
    fn append<S: Storage>(&mut self, s: &S, q: &QueueKey, msgs: &[StoredMessage]) {
        s.append(q, msgs).expect("append");
        self.queues
            .entry(q.clone())
            .or_default()
            .extend_from_slice(msgs);
    }

    fn remove<S: Storage>(&mut self, s: &S, q: &QueueKey, seqs: &[SeqNo]) {
        s.remove(q, seqs).expect("remove");
        self.queues
            .entry(q.clone())
            .or_default()
            .retain(|m| !seqs.contains(&m.seq));
    }

    fn purge<S: Storage>(&mut self, s: &S, q: &QueueKey) {
        s.purge(q).expect("purge");
        self.queues.insert(q.clone(), Vec::new());
    }

    fn delete<S: Storage>(&mut self, s: &S, q: &QueueKey) {
        s.delete_queue(q).expect("delete_queue");
        self.queues.insert(q.clone(), Vec::new());
    }

    fn check<S: Storage>(&self, s: &S, q: &QueueKey, case: &str) {
        let got = s.recover(q).expect("recover");
        let want = self.queues.get(q).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            summary(&got),
            summary(want),
            "{case}: seqs of {q:?} (left: got, right: expected)"
        );
        assert!(got == want, "{case}: contents of {q:?} differ");
    }

    fn check_all<S: Storage>(&self, s: &S, case: &str) {
        for q in self.queues.keys() {
            self.check(s, q, case);
        }
    }
}

/// Seqs and sizes only, so a failing assert does not print megabytes.
fn summary(msgs: &[StoredMessage]) -> Vec<(SeqNo, usize)> {
    msgs.iter().map(|m| (m.seq, m.body.len())).collect()
}

fn key(case: &str) -> QueueKey {
    QueueKey::new("conformance", case)
}

/// A small message whose body names its queue and seq, so a message that
/// lands in the wrong log is told apart from the right one.
fn msg(q: &QueueKey, seq: SeqNo) -> StoredMessage {
    StoredMessage {
        seq,
        exchange: "amq.direct".into(),
        routing_key: q.name.clone(),
        properties: Bytes::from(vec![0x80, 0x00, 2]),
        body: Bytes::from(format!("{}|{}|{seq}", q.vhost, q.name)),
    }
}

fn msgs(q: &QueueKey, seqs: impl IntoIterator<Item = SeqNo>) -> Vec<StoredMessage> {
    seqs.into_iter().map(|s| msg(q, s)).collect()
}

fn fresh_store_is_empty<S: Storage>(s: &S) {
    assert_eq!(
        s.load_definitions().expect("load"),
        Definitions::default(),
        "fresh store: definitions"
    );
    assert!(
        s.recover(&key("never-written"))
            .expect("recover")
            .is_empty(),
        "fresh store: recover of an unknown queue"
    );
    let _ = s.size_on_disk();
    s.sync().expect("sync of an empty store");
}

fn append_then_recover_in_seq_order<S: Storage>(s: &S, log: &mut Expected) {
    let q = key("order");
    log.append(s, &q, &msgs(&q, 1..=3));
    log.append(s, &q, &msgs(&q, 4..=5));
    log.append(s, &q, &[]);
    log.append(s, &q, &msgs(&q, [6]));
    log.check(s, &q, "append/recover order");
}

fn seq_order_is_numeric_not_lexical<S: Storage>(s: &S, log: &mut Expected) {
    let q = key("numeric-order");
    let seqs = [
        0,
        9,
        10,
        255,
        256,
        65_535,
        65_536,
        1 << 32,
        1 << 56,
        SeqNo::MAX,
    ];
    log.append(s, &q, &msgs(&q, seqs));
    log.check(s, &q, "numeric seq order");
}

fn remove_acknowledged<S: Storage>(s: &S, log: &mut Expected) {
    let q = key("remove");
    log.append(s, &q, &msgs(&q, 1..=8));
    log.remove(s, &q, &[2, 4]);
    log.remove(s, &q, &[8, 1]);
    log.check(s, &q, "remove");
    log.remove(s, &q, &[3, 5, 6, 7]);
    log.check(s, &q, "remove all");
    log.append(s, &q, &msgs(&q, 9..=10));
    log.check(s, &q, "append after removing all");
}

fn remove_unknown_is_ignored<S: Storage>(s: &S, log: &mut Expected) {
    let q = key("remove-unknown");
    log.append(s, &q, &msgs(&q, 1..=3));
    log.remove(s, &q, &[2]);
    log.remove(s, &q, &[2, 99, SeqNo::MAX, 0]);
    log.check(s, &q, "remove unknown seqs");
    let nowhere = key("remove-unknown-queue");
    log.remove(s, &nowhere, &[1, 2]);
    log.check(s, &nowhere, "remove on an unknown queue");
}

fn purge_empties_and_keeps_log_usable<S: Storage>(s: &S, log: &mut Expected) {
    let q = key("purge");
    log.append(s, &q, &msgs(&q, 1..=5));
    log.purge(s, &q);
    log.check(s, &q, "purge");
    log.append(s, &q, &msgs(&q, 6..=7));
    log.check(s, &q, "append after purge");
    log.remove(s, &q, &[3, 6]);
    log.check(s, &q, "remove after purge");
    log.purge(s, &key("purge-unknown-queue"));
    log.check(s, &key("purge-unknown-queue"), "purge of an unknown queue");
}

fn delete_queue_drops_log<S: Storage>(s: &S, log: &mut Expected) {
    let q = key("delete");
    log.append(s, &q, &msgs(&q, 1..=5));
    log.delete(s, &q);
    log.check(s, &q, "delete_queue");
    log.delete(s, &q);
    log.delete(s, &key("delete-unknown-queue"));

    let again = key("delete-redeclared");
    log.append(s, &again, &msgs(&again, 1..=3));
    log.delete(s, &again);
    log.append(s, &again, &msgs(&again, 1..=2));
    log.check(s, &again, "append to a redeclared queue");
}

fn queues_are_isolated<S: Storage>(s: &S, log: &mut Expected) {
    // Pairs a naive `vhost + separator + name` would merge, and near misses.
    let keys = [
        QueueKey::new("a/b", "c"),
        QueueKey::new("a", "b/c"),
        QueueKey::new("a", "b"),
        QueueKey::new("", "ab"),
        QueueKey::new("ab", ""),
        QueueKey::new("a", "b\0"),
        QueueKey::new("a\0", "b"),
        QueueKey::new("/", "é ünïcode ✓"),
        QueueKey::new("/", "x".repeat(255)),
        QueueKey::new("/", "x".repeat(254)),
        QueueKey::new("conformance", "meta"),
        QueueKey::new("meta", ""),
    ];
    for (i, q) in keys.iter().enumerate() {
        // The same seqs in every queue, one extra per index.
        let n = SeqNo::try_from(i).unwrap_or(0) + 1;
        log.append(s, q, &msgs(q, 1..=n));
    }
    for q in &keys {
        log.check(s, q, "isolation");
    }
    log.purge(s, &keys[0]);
    log.remove(s, &keys[2], &[1]);
    log.delete(s, &keys[3]);
    for q in &keys {
        log.check(s, q, "isolation after purge/remove/delete of neighbours");
    }
}

fn large_bodies<S: Storage>(s: &S, log: &mut Expected) {
    let q = key("large");
    let big = |seq: SeqNo, fill: u8| StoredMessage {
        seq,
        exchange: "big".into(),
        routing_key: "big".into(),
        properties: Bytes::from(vec![fill; 4096]),
        body: Bytes::from(
            (0..1024 * 1024)
                .map(|i: u32| fill ^ i.to_be_bytes()[3] ^ i.to_be_bytes()[2])
                .collect::<Vec<u8>>(),
        ),
    };
    log.append(s, &q, &[big(1, 1), msg(&q, 2), big(3, 3)]);
    log.append(s, &q, &[big(4, 4)]);
    log.remove(s, &q, &[3]);
    log.check(s, &q, "1 MiB bodies");
}

fn empty_and_extreme_fields<S: Storage>(s: &S, log: &mut Expected) {
    let q = key("empty");
    let empty = StoredMessage {
        seq: 1,
        exchange: String::new(),
        routing_key: String::new(),
        properties: Bytes::new(),
        body: Bytes::new(),
    };
    let longest = StoredMessage {
        seq: 2,
        exchange: "e".repeat(255),
        routing_key: "ü".repeat(127),
        properties: Bytes::new(),
        body: Bytes::from_static(b"\0"),
    };
    log.append(s, &q, &[empty, longest]);
    log.check(s, &q, "empty and longest fields");
}

fn invalid_batch_is_refused_whole<S: Storage>(s: &S, log: &mut Expected) {
    let q = key("invalid");
    log.append(s, &q, &msgs(&q, [1]));
    let mut bad = msg(&q, 3);
    bad.exchange = "x".repeat(256);
    let r = s.append(&q, &[msg(&q, 2), bad.clone()]);
    assert!(
        matches!(r, Err(StorageError::Invalid(_))),
        "exchange of 256 bytes: {r:?}"
    );
    bad.exchange.clear();
    bad.routing_key = "y".repeat(256);
    let r = s.append(&q, &[bad, msg(&q, 4)]);
    assert!(
        matches!(r, Err(StorageError::Invalid(_))),
        "routing key of 256 bytes: {r:?}"
    );
    log.check(s, &q, "a refused batch leaves nothing behind");
}

fn definitions_round_trip<S: Storage>(s: &S) -> Definitions {
    let full = Definitions {
        exchanges: vec![
            ExchangeDef {
                vhost: "/".into(),
                name: "orders".into(),
                kind: "topic".into(),
                durable: true,
                auto_delete: false,
                internal: false,
                arguments: vec![],
            },
            ExchangeDef {
                vhost: "v2".into(),
                name: "ïnternal".into(),
                kind: "headers".into(),
                durable: true,
                auto_delete: true,
                internal: true,
                arguments: vec![0, 0, 0, 5, 1, 2, 3, 4, 255],
            },
        ],
        queues: vec![QueueDef {
            vhost: "/".into(),
            name: "q1".into(),
            durable: true,
            auto_delete: false,
            arguments: vec![9, 8, 7],
        }],
        bindings: vec![
            BindingDef {
                vhost: "/".into(),
                source: "orders".into(),
                destination: "q1".into(),
                destination_is_exchange: false,
                routing_key: "order.#".into(),
                arguments: vec![],
            },
            BindingDef {
                vhost: "/".into(),
                source: "orders".into(),
                destination: "ïnternal".into(),
                destination_is_exchange: true,
                routing_key: String::new(),
                arguments: vec![1],
            },
        ],
        users: vec![UserDef {
            name: "ädmin".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            tags: vec!["administrator".into(), "monitoring".into()],
        }],
        permissions: vec![PermissionDef {
            user: "ädmin".into(),
            vhost: "/".into(),
            configure: "^amq\\.gen-.*".into(),
            write: ".*".into(),
            read: String::new(),
        }],
        vhosts: Some(Vec::new()),
    };
    s.put_definitions(&full).expect("put_definitions");
    assert_eq!(
        s.load_definitions().expect("load"),
        full,
        "definitions round trip"
    );

    let mut smaller = full;
    smaller.bindings.pop();
    smaller.exchanges.remove(0);
    s.put_definitions(&smaller).expect("put_definitions");
    assert_eq!(
        s.load_definitions().expect("load"),
        smaller,
        "definitions are replaced, not merged"
    );
    smaller
}

fn writes_continue_after_reopen<S: Storage>(s: &S, log: &mut Expected) {
    let q = key("order");
    log.append(s, &q, &msgs(&q, 7..=9));
    log.remove(s, &q, &[1, 8]);
    log.check(s, &q, "append and remove after reopen");
    let p = key("purge");
    log.purge(s, &p);
    let d = key("delete-redeclared");
    log.delete(s, &d);
    log.check_all(s, "writes after reopen");
}
