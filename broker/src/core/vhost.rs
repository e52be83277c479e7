//! Virtual hosts: each has its own topology (exchanges, queues, bindings), so two vhosts can
//! hold queues of the same name that know nothing of each other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::topology::{Topology, next_version};

/// What operators can say about a vhost (RabbitMQ's `description` and `tags`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VhostMeta {
    /// Free text.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
}

/// One virtual host.
#[derive(Debug)]
pub struct Vhost {
    name: String,
    /// Read-mostly snapshot: readers clone the `Arc` and route without the lock; writers
    /// change it in place unless a reader still holds it. A std lock: never held across `.await`.
    topology: RwLock<Arc<Topology>>,
    /// The current topology's version, readable without the lock: a publisher's
    /// [`super::routes::RouteCache`] checks it once per message.
    version: AtomicU64,
    /// A std mutex: tiny, changed only through the API, never held across `.await`.
    meta: Mutex<VhostMeta>,
}

impl Vhost {
    /// A new vhost holding the default and `amq.*` exchanges.
    pub fn new(name: impl Into<String>, meta: VhostMeta) -> Vhost {
        let mut topology = Topology::with_builtin_exchanges();
        topology.version = next_version();
        Vhost {
            name: name.into(),
            version: AtomicU64::new(topology.version),
            topology: RwLock::new(Arc::new(topology)),
            meta: Mutex::new(meta),
        }
    }

    /// The vhost's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current topology snapshot.
    pub fn topology(&self) -> Arc<Topology> {
        match self.topology.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current topology's [`Topology::version`].
    pub fn topology_version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Description and tags.
    pub fn meta(&self) -> VhostMeta {
        match self.meta.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces description and tags.
    pub(crate) fn set_meta(&self, meta: VhostMeta) {
        match self.meta.lock() {
            Ok(mut guard) => *guard = meta,
            Err(poisoned) => *poisoned.into_inner() = meta,
        }
    }

    /// Applies `f` to the topology and publishes the result.
    pub(crate) fn modify<R>(&self, f: impl FnOnce(&mut Topology) -> R) -> R {
        let mut guard = match self.topology.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Copy on write, but only when a reader still holds the current snapshot: mostly the
        // change is made in place, so a declare or bind costs O(1), not O(topology size)
        // (MQTT declares a queue per session and binds once per subscription).
        let topology = Arc::make_mut(&mut guard);
        let result = f(topology);
        // Under the lock: a reader that sees the new version finds the new topology.
        topology.version = next_version();
        self.version.store(topology.version, Ordering::Release);
        result
    }

    /// The stored form.
    pub fn definition(&self) -> storage::VhostDef {
        let meta = self.meta();
        storage::VhostDef {
            name: self.name.clone(),
            description: meta.description,
            tags: meta.tags,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::core::{Core, DEFAULT_VHOST};

    fn queue(vhost: &str, name: &str) -> storage::QueueDef {
        storage::QueueDef {
            vhost: vhost.into(),
            name: name.into(),
            durable: true,
            auto_delete: false,
            arguments: Vec::new(),
        }
    }

    #[tokio::test]
    async fn snapshots_without_vhosts_recover_into_slash_and_named_vhosts_exist() {
        // A snapshot from before vhosts were stored: its objects are in "/" (and a vhost
        // that only an object names is created rather than its object dropped).
        let store = Arc::new(storage::MemoryStorage::new());
        let old = storage::Definitions {
            queues: vec![queue(DEFAULT_VHOST, "q"), queue("legacy", "q")],
            ..storage::Definitions::default()
        };
        storage::Storage::put_definitions(store.as_ref(), &old).expect("store");
        let core = Core::new(store.clone(), u64::MAX);
        core.recover().expect("recover");
        let names: Vec<String> = core.vhosts().iter().map(|v| v.name().to_string()).collect();
        assert_eq!(names, vec!["/".to_string(), "legacy".to_string()]);
        assert!(core.topology(DEFAULT_VHOST).queues.contains_key("q"));
        assert!(core.topology("legacy").queues.contains_key("q"));
        assert!(core.topology("legacy").exchanges.contains_key("amq.topic"));
        core.shutdown.cancel();

        // A snapshot that lists its vhosts: "/" deleted stays deleted.
        let store = Arc::new(storage::MemoryStorage::new());
        let defs = storage::Definitions {
            vhosts: Some(vec![storage::VhostDef {
                name: "only".into(),
                description: "d".into(),
                tags: vec!["t".into()],
            }]),
            ..storage::Definitions::default()
        };
        storage::Storage::put_definitions(store.as_ref(), &defs).expect("store");
        let core = Core::new(store, u64::MAX);
        core.recover().expect("recover");
        let names: Vec<String> = core.vhosts().iter().map(|v| v.name().to_string()).collect();
        assert_eq!(names, vec!["only".to_string()]);
        assert!(core.vhost(DEFAULT_VHOST).is_none());
        assert_eq!(
            core.vhost("only").map(|v| v.meta().tags),
            Some(vec!["t".to_string()])
        );
        core.shutdown.cancel();
    }

    #[tokio::test]
    async fn deleting_every_vhost_survives_a_restart() {
        let store = Arc::new(storage::MemoryStorage::new());
        let core = Core::new(store.clone(), u64::MAX);
        core.recover().expect("recover a fresh store");
        assert!(core.delete_vhost(DEFAULT_VHOST).await.expect("delete /"));
        assert!(core.vhosts().is_empty());
        core.shutdown.cancel();

        let again = Core::new(store, u64::MAX);
        again.recover().expect("recover");
        assert!(
            again.vhosts().is_empty(),
            "a restart must not bring back a deleted /"
        );
        again.shutdown.cancel();
    }
}
