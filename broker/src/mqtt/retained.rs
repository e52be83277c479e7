//! Retained messages: the last retained publish per topic, kept in memory for subscribe-time
//! lookups and in storage (as a log under a reserved queue key) so they survive restarts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use protocol_amqp::{BasicProperties, ShortStr};
use storage::{QueueKey, Storage, StorageError, StoredMessage};

use super::topic_map::routing_key_to_topic;
use crate::model::message::{Message, MessageRef};

/// Storage key of the retained-message log (not a queue any client can see).
fn retained_key() -> QueueKey {
    QueueKey {
        vhost: crate::core::DEFAULT_VHOST.into(),
        name: "$mqtt/retained".into(),
    }
}

struct Inner {
    /// MQTT topic → (log sequence, message).
    by_topic: HashMap<String, (u64, MessageRef)>,
    next_seq: u64,
}

/// The retained message of every topic that has one.
pub struct RetainedStore {
    inner: Mutex<Inner>,
    storage: Arc<dyn Storage>,
}

impl RetainedStore {
    /// Loads the retained messages from storage (later entries for a topic win).
    pub fn open(storage: Arc<dyn Storage>) -> Result<RetainedStore, StorageError> {
        let mut by_topic: HashMap<String, (u64, MessageRef)> = HashMap::new();
        let mut next_seq = 1;
        let mut stale = Vec::new();
        for m in storage.recover(&retained_key())? {
            next_seq = next_seq.max(m.seq + 1);
            let (Ok(properties), Ok(exchange), Ok(routing_key)) = (
                BasicProperties::decode(&m.properties),
                ShortStr::new(m.exchange),
                ShortStr::new(m.routing_key),
            ) else {
                tracing::error!(seq = m.seq, "skipping unreadable retained message");
                stale.push(m.seq);
                continue;
            };
            let topic = routing_key_to_topic(routing_key.as_str());
            let msg = Arc::new(Message {
                exchange,
                routing_key,
                properties,
                body: m.body,
                publisher: None,
            });
            if let Some((old, _)) = by_topic.insert(topic, (m.seq, msg)) {
                stale.push(old);
            }
        }
        if !stale.is_empty() {
            storage.remove(&retained_key(), &stale)?;
        }
        Ok(RetainedStore {
            inner: Mutex::new(Inner { by_topic, next_seq }),
            storage,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Replaces the retained message of `topic`; `None` (an empty retained publish) deletes it.
    /// The change is written but not synced: callers that acknowledge it sync first.
    pub fn set(&self, topic: &str, msg: Option<MessageRef>) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let old = inner.by_topic.remove(topic);
        if let Some(msg) = msg {
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let mut props = BytesMut::new();
            msg.properties.encode(&mut props);
            self.storage.append(
                &retained_key(),
                &[StoredMessage {
                    seq,
                    exchange: msg.exchange.as_str().to_string(),
                    routing_key: msg.routing_key.as_str().to_string(),
                    properties: props.freeze(),
                    body: msg.body.clone(),
                }],
            )?;
            inner.by_topic.insert(topic.to_string(), (seq, msg));
        }
        if let Some((seq, _)) = old {
            self.storage.remove(&retained_key(), &[seq])?;
        }
        Ok(())
    }

    /// Retained messages whose topic `matches`, in topic order.
    pub fn matching(&self, matches: impl Fn(&str) -> bool) -> Vec<(String, MessageRef)> {
        let inner = self.lock();
        let mut found: Vec<(String, MessageRef)> = inner
            .by_topic
            .iter()
            .filter(|(topic, _)| matches(topic))
            .map(|(topic, (_, msg))| (topic.clone(), msg.clone()))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.lock().by_topic.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(key: &str, body: &'static [u8]) -> MessageRef {
        Arc::new(Message {
            exchange: ShortStr::from_static("amq.topic"),
            routing_key: ShortStr::new(key).unwrap_or_default(),
            properties: BasicProperties::default(),
            body: bytes::Bytes::from_static(body),
            publisher: None,
        })
    }

    #[test]
    fn replaces_deletes_and_survives_reopen() {
        let storage: Arc<dyn Storage> = Arc::new(storage::MemoryStorage::new());
        let store = RetainedStore::open(storage.clone()).expect("open");
        store.set("a/b", Some(msg("a.b", b"1"))).expect("set");
        store.set("a/b", Some(msg("a.b", b"2"))).expect("replace");
        store.set("a/c", Some(msg("a.c", b"3"))).expect("set");
        store.set("a/c", None).expect("delete");
        let all = store.matching(|_| true);
        assert_eq!(all.len(), 1);
        assert_eq!(&all[0].1.body[..], b"2");

        let reopened = RetainedStore::open(storage).expect("reopen");
        let all = reopened.matching(|t| t.starts_with("a/"));
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "a/b");
        assert_eq!(&all[0].1.body[..], b"2");
    }
}
