//! Retained messages: the last retained publish per topic and vhost, kept in memory for
//! subscribe-time lookups and in storage (as a log under a reserved queue key of each vhost)
//! so they survive restarts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::BytesMut;
use protocol_amqp::{BasicProperties, ShortStr};
use storage::{QueueKey, Storage, StorageError, StoredMessage};

use super::topic_map::routing_key_to_topic;
use crate::model::message::{Message, MessageRef};

/// Storage key of a vhost's retained-message log (not a queue any client can see).
pub fn retained_key(vhost: &str) -> QueueKey {
    QueueKey {
        vhost: vhost.into(),
        name: crate::core::ops::MQTT_RETAINED_LOG.into(),
    }
}

struct Inner {
    /// MQTT topic → its retained message.
    by_topic: HashMap<String, Entry>,
    next_seq: u64,
}

struct Entry {
    /// Sequence in the storage log.
    seq: u64,
    msg: MessageRef,
    /// When it was retained; None for messages recovered from storage (the log does not
    /// keep the time).
    stored_at: Option<SystemTime>,
}

/// A retained message as operators see it.
#[derive(Debug, Clone)]
pub struct RetainedInfo {
    /// Vhost.
    pub vhost: String,
    /// MQTT topic.
    pub topic: String,
    /// The message (its QoS is in its headers, see [`super::convert`]).
    pub msg: MessageRef,
    /// When it was retained, if known (not for messages recovered at start-up).
    pub stored_at: Option<SystemTime>,
}

/// The retained message of every topic that has one, per vhost.
pub struct RetainedStore {
    /// Vhost → its retained messages (loaded from storage on first use).
    inner: Mutex<HashMap<String, Inner>>,
    storage: Arc<dyn Storage>,
}

/// Loads a vhost's retained messages from storage (later entries for a topic win).
fn load(storage: &dyn Storage, vhost: &str) -> Result<Inner, StorageError> {
    let retained_key = || retained_key(vhost);
    let mut by_topic: HashMap<String, Entry> = HashMap::new();
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
            mqtt_form: Default::default(),
        });
        let entry = Entry {
            seq: m.seq,
            msg,
            stored_at: None,
        };
        if let Some(old) = by_topic.insert(topic, entry) {
            stale.push(old.seq);
        }
    }
    if !stale.is_empty() {
        storage.remove(&retained_key(), &stale)?;
    }
    Ok(Inner { by_topic, next_seq })
}

impl RetainedStore {
    /// Loads the retained messages of `vhosts` from storage (other vhosts' on first use).
    pub fn open(
        storage: Arc<dyn Storage>,
        vhosts: impl IntoIterator<Item = String>,
    ) -> Result<RetainedStore, StorageError> {
        let mut inner = HashMap::new();
        for vhost in vhosts {
            let loaded = load(storage.as_ref(), &vhost)?;
            inner.insert(vhost, loaded);
        }
        Ok(RetainedStore {
            inner: Mutex::new(inner),
            storage,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Inner>> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Runs `f` on a vhost's retained messages, loading them first if needed.
    fn with<R>(&self, vhost: &str, f: impl FnOnce(&mut Inner) -> R) -> Result<R, StorageError> {
        let mut all = self.lock();
        if !all.contains_key(vhost) {
            let loaded = load(self.storage.as_ref(), vhost)?;
            all.insert(vhost.to_string(), loaded);
        }
        match all.get_mut(vhost) {
            Some(inner) => Ok(f(inner)),
            None => Err(StorageError::Corrupt("retained store lost a vhost".into())),
        }
    }

    /// Forgets the retained messages of vhosts that no longer `exist` and deletes their
    /// storage logs (a vhost's deletion takes its retained messages with it).
    pub fn forget_deleted_vhosts(&self, exist: impl Fn(&str) -> bool) -> Result<(), StorageError> {
        let gone: Vec<String> = {
            let mut all = self.lock();
            let gone: Vec<String> = all.keys().filter(|v| !exist(v)).cloned().collect();
            for v in &gone {
                all.remove(v);
            }
            gone
        };
        for v in gone {
            self.storage.delete_queue(&retained_key(&v))?;
        }
        Ok(())
    }

    /// Replaces the retained message of `topic` in `vhost`; `None` (an empty retained
    /// publish) deletes it. The change is written but not synced: callers that acknowledge
    /// it sync first.
    pub fn set(
        &self,
        vhost: &str,
        topic: &str,
        msg: Option<MessageRef>,
    ) -> Result<(), StorageError> {
        let storage = self.storage.clone();
        self.with(vhost, |inner| {
            set_in(storage.as_ref(), vhost, inner, topic, msg)
        })?
    }

    /// The retained message of `topic` in `vhost` now, if any.
    pub fn get(&self, vhost: &str, topic: &str) -> Option<MessageRef> {
        self.with(vhost, |inner| {
            inner.by_topic.get(topic).map(|e| e.msg.clone())
        })
        .ok()
        .flatten()
    }

    /// Retained messages of `vhost` whose topic `matches`, in topic order.
    pub fn matching(
        &self,
        vhost: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Vec<(String, MessageRef)> {
        let found = self.with(vhost, |inner| {
            let mut found: Vec<(String, MessageRef)> = inner
                .by_topic
                .iter()
                .filter(|(topic, _)| matches(topic))
                .map(|(topic, e)| (topic.clone(), e.msg.clone()))
                .collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found
        });
        found.unwrap_or_else(|e| {
            tracing::error!(vhost, error = %e, "cannot load retained messages");
            Vec::new()
        })
    }

    /// Every retained message of every loaded vhost with when it was stored, in vhost and
    /// topic order (management API).
    pub fn list(&self) -> Vec<RetainedInfo> {
        let all = self.lock();
        let mut out: Vec<RetainedInfo> = all
            .iter()
            .flat_map(|(vhost, inner)| {
                inner.by_topic.iter().map(move |(topic, e)| RetainedInfo {
                    vhost: vhost.clone(),
                    topic: topic.clone(),
                    msg: e.msg.clone(),
                    stored_at: e.stored_at,
                })
            })
            .collect();
        drop(all);
        out.sort_by(|a, b| (&a.vhost, &a.topic).cmp(&(&b.vhost, &b.topic)));
        out
    }

    /// Whether `topic` has a retained message in `vhost`.
    pub fn contains(&self, vhost: &str, topic: &str) -> bool {
        self.lock()
            .get(vhost)
            .is_some_and(|inner| inner.by_topic.contains_key(topic))
    }

    /// Number of retained messages (every loaded vhost's).
    pub fn len(&self) -> usize {
        self.lock().values().map(|i| i.by_topic.len()).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`RetainedStore::set`] on one vhost's messages.
fn set_in(
    storage: &dyn Storage,
    vhost: &str,
    inner: &mut Inner,
    topic: &str,
    msg: Option<MessageRef>,
) -> Result<(), StorageError> {
    let retained_key = || retained_key(vhost);
    let old = inner.by_topic.remove(topic);
    if let Some(msg) = msg {
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let mut props = BytesMut::new();
        msg.properties.encode(&mut props);
        storage.append(
            &retained_key(),
            &[StoredMessage {
                seq,
                exchange: msg.exchange.as_str().to_string(),
                routing_key: msg.routing_key.as_str().to_string(),
                properties: props.freeze(),
                body: msg.body.clone(),
            }],
        )?;
        let entry = Entry {
            seq,
            msg,
            stored_at: Some(SystemTime::now()),
        };
        inner.by_topic.insert(topic.to_string(), entry);
    }
    if let Some(old) = old {
        storage.remove(&retained_key(), &[old.seq])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(key: &str, body: &'static [u8]) -> MessageRef {
        Arc::new(Message {
            exchange: ShortStr::from_static(crate::mqtt::TOPIC_EXCHANGE),
            routing_key: ShortStr::new(key).unwrap_or_default(),
            properties: BasicProperties::default(),
            body: bytes::Bytes::from_static(body),
            publisher: None,
            mqtt_form: Default::default(),
        })
    }

    #[test]
    fn replaces_deletes_and_survives_reopen() {
        let storage: Arc<dyn Storage> = Arc::new(storage::MemoryStorage::new());
        let store = RetainedStore::open(storage.clone(), ["/".to_string()]).expect("open");
        store.set("/", "a/b", Some(msg("a.b", b"1"))).expect("set");
        store
            .set("/", "a/b", Some(msg("a.b", b"2")))
            .expect("replace");
        store.set("/", "a/c", Some(msg("a.c", b"3"))).expect("set");
        store.set("/", "a/c", None).expect("delete");
        let all = store.matching("/", |_| true);
        assert_eq!(all.len(), 1);
        assert_eq!(&all[0].1.body[..], b"2");

        let reopened = RetainedStore::open(storage, Vec::new()).expect("reopen");
        let all = reopened.matching("/", |t| t.starts_with("a/"));
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "a/b");
        assert_eq!(&all[0].1.body[..], b"2");
    }
}
