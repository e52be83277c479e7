//! Topology operations (declare, delete, bind, unbind) and start-up recovery, with the
//! checks and reply codes RabbitMQ clients expect. Durable changes are on disk before the
//! operation returns.

use std::sync::Arc;

use protocol_amqp::FieldTable;

use super::access::{AccessError, Permission, User, hash_password};
use super::queue::{DeleteRefused, QueueCmd, QueueHandle, QueueStats};
use super::queue_task::QueueTask;
use super::topology::{QueueEntry, decode_table};
use super::vhost::{Vhost, VhostMeta};
use super::{Core, DEFAULT_VHOST};
use crate::error::AmqpError;
use crate::model::exchange::{Binding, Destination, Exchange, ExchangeKind};

/// Why a user or permission change failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserOpError {
    /// The change itself is invalid.
    #[error(transparent)]
    Invalid(#[from] AccessError),
    /// It could not be stored.
    #[error("{0}")]
    Storage(#[from] AmqpError),
    /// The vhost it names does not exist (any more).
    #[error("no vhost '{0}'")]
    NoVhost(String),
}

/// Storage name of each vhost's MQTT retained-message log. It shares the storage namespace
/// with queue logs, so no queue may take this name (its log would be the retained one).
pub const MQTT_RETAINED_LOG: &str = "$mqtt/retained";

/// Internal exchange whose bindings record the shared-subscription memberships of persistent
/// MQTT sessions (see `mqtt::shared_groups`). Clients may not declare, delete or bind it:
/// a deleted or re-typed one would lose every session's memberships, and a binding made by
/// hand would enrol a session in a group or keep a group queue alive forever.
pub const MQTT_MEMBERSHIPS_EXCHANGE: &str = "mqtt.shared-memberships";

/// Arguments of a queue declaration.
#[derive(Debug, Clone, Default)]
pub struct QueueDeclare {
    /// Name; empty asks the server to pick one.
    pub name: String,
    /// Only check that it exists.
    pub passive: bool,
    /// Survives a restart.
    pub durable: bool,
    /// Owned by the declaring connection.
    pub exclusive: bool,
    /// Deleted when the last consumer goes.
    pub auto_delete: bool,
    /// Extra arguments.
    pub arguments: FieldTable,
}

/// Arguments of an exchange declaration.
#[derive(Debug, Clone)]
pub struct ExchangeDeclare {
    /// Name.
    pub name: String,
    /// Type as sent by the client.
    pub kind: String,
    /// Only check that it exists.
    pub passive: bool,
    /// Survives a restart.
    pub durable: bool,
    /// Deleted when its last binding goes.
    pub auto_delete: bool,
    /// Only reachable through exchange-to-exchange bindings.
    pub internal: bool,
    /// Extra arguments.
    pub arguments: FieldTable,
}

fn no_queue(vhost: &str, name: &str) -> AmqpError {
    AmqpError::not_found(format!("no queue '{name}' in vhost '{vhost}'"))
}

fn no_exchange(vhost: &str, name: &str) -> AmqpError {
    AmqpError::not_found(format!("no exchange '{name}' in vhost '{vhost}'"))
}

/// A vhost that does not exist (deleted while a connection to it was still closing).
pub fn no_vhost(vhost: &str) -> AmqpError {
    AmqpError::not_found(format!("vhost '{vhost}' not found"))
}

fn locked(vhost: &str, name: &str) -> AmqpError {
    AmqpError::resource_locked(format!(
        "cannot obtain exclusive access to locked queue '{name}' in vhost '{vhost}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
    ))
}

fn inequivalent(
    vhost: &str,
    arg: &str,
    what: &str,
    name: &str,
    received: impl std::fmt::Display,
    current: impl std::fmt::Display,
) -> AmqpError {
    AmqpError::precondition_failed(format!(
        "inequivalent arg '{arg}' for {what} '{name}' in vhost '{vhost}': received '{received}' but current is '{current}'"
    ))
}

fn default_exchange_refused() -> AmqpError {
    AmqpError::access_refused("operation not permitted on the default exchange")
}

/// A server-chosen name (`amq.gen-…` queues, `amq.ctag-…` consumer tags): the prefix and
/// 16 random bytes in URL-safe base64, as RabbitMQ makes them.
pub(crate) fn random_name(prefix: &str) -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    let mut name = String::from(prefix);
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            name.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    name
}

impl Core {
    /// Writes the durable topology and waits for it to be on disk.
    async fn persist_definitions(&self) -> Result<(), AmqpError> {
        self.store_definitions(&self.definitions_snapshot()).await
    }

    /// Everything durable the broker knows now, as storage keeps it.
    fn definitions_snapshot(&self) -> storage::Definitions {
        let mut defs = storage::Definitions::default();
        let mut vhosts = Vec::new();
        for v in self.vhosts() {
            v.topology().definitions(v.name(), &mut defs);
            vhosts.push(v.definition());
        }
        defs.vhosts = Some(vhosts);
        (defs.users, defs.permissions) = self.access.definitions();
        defs
    }

    /// Writes `defs` and waits until they are on disk.
    async fn store_definitions(&self, defs: &storage::Definitions) -> Result<(), AmqpError> {
        self.storage()
            .put_definitions(defs)
            .map_err(|e| AmqpError::internal(format!("cannot store definitions: {e}")))?;
        self.flusher()
            .sync()
            .await
            .map_err(|e| AmqpError::internal(format!("cannot sync definitions: {e}")))
    }

    /// queue.declare. Returns the name (server-named queues) and counts.
    pub async fn declare_queue(
        self: &Arc<Self>,
        vhost: &str,
        conn_id: u64,
        req: QueueDeclare,
    ) -> Result<(String, QueueStats), AmqpError> {
        let _guard = self.write_lock.lock().await;
        let v = self.vhost(vhost).ok_or_else(|| no_vhost(vhost))?;
        let name = if req.name.is_empty() && !req.passive {
            random_name("amq.gen-")
        } else {
            req.name.clone()
        };
        // An owned copy: holding the snapshot would make the insert below copy the topology.
        let existing = v.topology().queues.get(&name).cloned();
        if let Some(q) = existing {
            if q.exclusive_owner.is_some_and(|owner| owner != conn_id) {
                return Err(locked(vhost, &name));
            }
            if !req.passive {
                let durable = q.durable;
                if durable != req.durable {
                    return Err(inequivalent(
                        vhost,
                        "durable",
                        "queue",
                        &name,
                        req.durable,
                        durable,
                    ));
                }
                if q.auto_delete != req.auto_delete {
                    return Err(inequivalent(
                        vhost,
                        "auto_delete",
                        "queue",
                        &name,
                        req.auto_delete,
                        q.auto_delete,
                    ));
                }
                if q.exclusive_owner.is_some() != req.exclusive {
                    return Err(inequivalent(
                        vhost,
                        "exclusive",
                        "queue",
                        &name,
                        req.exclusive,
                        q.exclusive_owner.is_some(),
                    ));
                }
                if q.arguments != req.arguments {
                    return Err(AmqpError::precondition_failed(format!(
                        "inequivalent arguments for queue '{name}' in vhost '{vhost}'"
                    )));
                }
            }
            let handle = q.handle.clone();
            match handle.ask(|reply| QueueCmd::Stats { reply }).await {
                Some(stats) => return Ok((name, stats)),
                // The queue task has ended: an auto-delete queue whose last consumer just
                // went, still listed until its `forget_queue` runs. It is gone already.
                None => {
                    if Self::remove_queue_entry(&v, &name, handle.id()) {
                        self.persist_definitions().await?;
                    }
                }
            }
        }
        if req.passive {
            return Err(no_queue(vhost, &name));
        }
        if req.name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "queue name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        if name == MQTT_RETAINED_LOG {
            return Err(AmqpError::access_refused(format!(
                "queue name '{name}' is reserved for the broker's MQTT retained messages"
            )));
        }
        // An exclusive queue lives only as long as its connection: never on disk.
        let durable = req.durable && !req.exclusive;
        if durable {
            // On disk before the queue is routable: a message confirmed for a queue that
            // the stored definitions do not name would be lost at the next start.
            let mut defs = self.definitions_snapshot();
            defs.queues.push(storage::QueueDef {
                vhost: vhost.to_string(),
                name: name.clone(),
                durable: true,
                auto_delete: req.auto_delete,
                arguments: super::topology::encode_table(&req.arguments),
            });
            // A log the definitions do not name is a leftover (a crash between a queue's
            // deletion and its log's, or a declare that failed to store): its messages
            // belong to no queue, and its sequence numbers must not mix with the new ones.
            let key = storage::QueueKey {
                vhost: vhost.to_string(),
                name: name.clone(),
            };
            self.storage()
                .delete_queue(&key)
                .map_err(|e| AmqpError::internal(format!("cannot clear a stale queue log: {e}")))?;
            self.store_definitions(&defs).await?;
        }
        let handle = QueueTask::spawn(
            self,
            vhost.to_string(),
            name.clone(),
            durable,
            req.auto_delete,
            Vec::new(),
        );
        v.modify(|t| {
            t.queues.insert(
                name.clone(),
                QueueEntry {
                    handle,
                    durable: req.durable,
                    exclusive_owner: req.exclusive.then_some(conn_id),
                    auto_delete: req.auto_delete,
                    arguments: req.arguments,
                },
            );
        });
        Ok((name, QueueStats::default()))
    }

    /// Declares the transient direct queue `name` (see [`super::direct`]), delivering to
    /// `consumer`; refused if a queue of that name exists.
    pub async fn declare_direct_queue(
        &self,
        vhost: &str,
        name: &str,
        consumer: super::direct::DirectConsumer,
    ) -> Result<QueueHandle, AmqpError> {
        let _guard = self.write_lock.lock().await;
        let v = self.vhost(vhost).ok_or_else(|| no_vhost(vhost))?;
        if v.topology().queues.contains_key(name) {
            return Err(locked(vhost, name));
        }
        let handle = QueueHandle::direct(self.next_id(), name.to_string(), consumer);
        v.modify(|t| {
            t.queues.insert(
                name.to_string(),
                QueueEntry {
                    handle: handle.clone(),
                    durable: false,
                    exclusive_owner: None,
                    auto_delete: false,
                    arguments: FieldTable::default(),
                },
            );
        });
        Ok(handle)
    }

    /// Finds a queue the connection may use.
    pub fn lookup_queue(
        &self,
        vhost: &str,
        conn_id: u64,
        name: &str,
    ) -> Result<QueueEntry, AmqpError> {
        let topo = self.topology(vhost);
        let q = topo.queues.get(name).ok_or_else(|| no_queue(vhost, name))?;
        if q.exclusive_owner.is_some_and(|owner| owner != conn_id) {
            return Err(locked(vhost, name));
        }
        Ok(q.clone())
    }

    /// queue.delete. Deleting a missing queue succeeds with 0 messages, as in RabbitMQ.
    pub async fn delete_queue(
        &self,
        vhost: &str,
        conn_id: u64,
        name: &str,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<u32, AmqpError> {
        self.delete_queue_checked(vhost, conn_id, name, None, if_unused, if_empty)
            .await
    }

    /// Deletes the queue `name` only if it is still the incarnation `id` (a queue re-declared
    /// under the same name since is someone else's): a late clean-up must not delete it.
    pub async fn delete_queue_incarnation(
        &self,
        vhost: &str,
        conn_id: u64,
        name: &str,
        id: u64,
    ) -> Result<u32, AmqpError> {
        self.delete_queue_checked(vhost, conn_id, name, Some(id), false, false)
            .await
    }

    async fn delete_queue_checked(
        &self,
        vhost: &str,
        conn_id: u64,
        name: &str,
        incarnation: Option<u64>,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<u32, AmqpError> {
        let _guard = self.write_lock.lock().await;
        let Some(v) = self.vhost(vhost) else {
            return Ok(0);
        };
        let q = match self.lookup_queue(vhost, conn_id, name) {
            Ok(q) if incarnation.is_some_and(|id| id != q.handle.id()) => return Ok(0),
            Ok(q) => q,
            Err(AmqpError::Channel {
                code: protocol_amqp::reply_code::NOT_FOUND,
                ..
            }) => return Ok(0),
            Err(e) => return Err(e),
        };
        let outcome = q
            .handle
            .ask(|reply| QueueCmd::Delete {
                if_unused,
                if_empty,
                reply,
            })
            .await;
        let count = match outcome {
            Some(Ok(n)) => n,
            Some(Err(DeleteRefused::InUse)) => {
                return Err(AmqpError::precondition_failed(format!(
                    "queue '{name}' in vhost '{vhost}' in use"
                )));
            }
            Some(Err(DeleteRefused::NotEmpty)) => {
                return Err(AmqpError::precondition_failed(format!(
                    "queue '{name}' in vhost '{vhost}' is not empty"
                )));
            }
            None => 0,
        };
        Self::remove_queue_entry(&v, name, q.handle.id());
        if q.durable {
            self.persist_definitions().await?;
        }
        Ok(count)
    }

    /// Removes a queue whose task already ended (auto-delete).
    pub(crate) async fn forget_queue(&self, vhost: &str, name: &str, id: u64) {
        let _guard = self.write_lock.lock().await;
        let Some(v) = self.vhost(vhost) else {
            return;
        };
        if Self::remove_queue_entry(&v, name, id)
            && let Err(e) = self.persist_definitions().await
        {
            tracing::error!(queue = name, error = %e, "cannot persist definitions after auto-delete");
        }
    }

    /// Drops the queue and its bindings from the topology; true if it was durable.
    fn remove_queue_entry(v: &Vhost, name: &str, id: u64) -> bool {
        v.modify(|t| {
            let Some(q) = t.queues.get(name) else {
                return false;
            };
            if q.handle.id() != id {
                return false;
            }
            let durable = q.durable;
            t.queues.remove(name);
            for x in t.remove_bindings_to(&Destination::Queue(name.to_string())) {
                t.exchanges.remove(&x);
            }
            durable
        })
    }

    /// Deletes the exclusive queues of a closed connection.
    pub async fn connection_closed(&self, vhost: &str, conn_id: u64) {
        let owned: Vec<String> = self
            .topology(vhost)
            .queues
            .iter()
            .filter(|(_, q)| q.exclusive_owner == Some(conn_id))
            .map(|(name, _)| name.clone())
            .collect();
        for name in owned {
            if let Err(e) = self.delete_queue(vhost, conn_id, &name, false, false).await {
                tracing::warn!(queue = %name, error = %e, "cannot delete exclusive queue of a closed connection");
            }
        }
    }

    /// exchange.declare.
    pub async fn declare_exchange(
        &self,
        vhost: &str,
        req: ExchangeDeclare,
    ) -> Result<(), AmqpError> {
        let _guard = self.write_lock.lock().await;
        if req.name.is_empty() {
            return Err(default_exchange_refused());
        }
        let v = self.vhost(vhost).ok_or_else(|| no_vhost(vhost))?;
        let topo = v.topology();
        if let Some(x) = topo.exchanges.get(&req.name) {
            if req.passive {
                return Ok(());
            }
            if x.kind.as_str() != req.kind {
                return Err(inequivalent(
                    vhost, "type", "exchange", &req.name, &req.kind, x.kind,
                ));
            }
            if x.durable != req.durable {
                return Err(inequivalent(
                    vhost,
                    "durable",
                    "exchange",
                    &req.name,
                    req.durable,
                    x.durable,
                ));
            }
            if x.auto_delete != req.auto_delete {
                return Err(inequivalent(
                    vhost,
                    "auto_delete",
                    "exchange",
                    &req.name,
                    req.auto_delete,
                    x.auto_delete,
                ));
            }
            if x.internal != req.internal {
                return Err(inequivalent(
                    vhost,
                    "internal",
                    "exchange",
                    &req.name,
                    req.internal,
                    x.internal,
                ));
            }
            if x.arguments != req.arguments {
                return Err(AmqpError::precondition_failed(format!(
                    "inequivalent arguments for exchange '{}' in vhost '{vhost}'",
                    req.name
                )));
            }
            return Ok(());
        }
        if req.passive {
            return Err(no_exchange(vhost, &req.name));
        }
        if req.name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "exchange name '{}' contains reserved prefix 'amq.*'",
                req.name
            )));
        }
        let Some(kind) = ExchangeKind::parse(&req.kind) else {
            return Err(AmqpError::connection(
                protocol_amqp::reply_code::COMMAND_INVALID,
                "COMMAND_INVALID",
                format!("unknown exchange type '{}'", req.kind),
            ));
        };
        drop(topo);
        let x = Exchange::new(
            req.name.clone(),
            kind,
            req.durable,
            req.auto_delete,
            req.internal,
            req.arguments,
        );
        v.modify(|t| t.exchanges.insert(req.name.clone(), Arc::new(x)));
        if req.durable {
            self.persist_definitions().await?;
        }
        Ok(())
    }

    /// exchange.delete. Deleting a missing exchange succeeds, as in RabbitMQ.
    pub async fn delete_exchange(
        &self,
        vhost: &str,
        name: &str,
        if_unused: bool,
    ) -> Result<(), AmqpError> {
        let _guard = self.write_lock.lock().await;
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        if name.starts_with("amq.") || name == MQTT_MEMBERSHIPS_EXCHANGE {
            return Err(AmqpError::access_refused(format!(
                "deletion of system exchange '{name}' is not allowed"
            )));
        }
        let Some(v) = self.vhost(vhost) else {
            return Ok(());
        };
        let topo = v.topology();
        let Some(x) = topo.exchanges.get(name) else {
            return Ok(());
        };
        if if_unused && x.binding_count() > 0 {
            return Err(AmqpError::precondition_failed(format!(
                "exchange '{name}' in vhost '{vhost}' in use"
            )));
        }
        let durable = x.durable;
        drop(topo);
        v.modify(|t| {
            t.exchanges.remove(name);
            for emptied in t.remove_bindings_to(&Destination::Exchange(name.to_string())) {
                t.exchanges.remove(&emptied);
            }
        });
        if durable {
            self.persist_definitions().await?;
        }
        Ok(())
    }

    /// queue.bind and exchange.bind: adds `binding` to `source`.
    pub async fn bind(
        &self,
        vhost: &str,
        conn_id: u64,
        source: &str,
        binding: Binding,
    ) -> Result<(), AmqpError> {
        self.change_binding(vhost, conn_id, source, binding, true)
            .await
    }

    /// queue.unbind and exchange.unbind. Removing a missing binding succeeds.
    pub async fn unbind(
        &self,
        vhost: &str,
        conn_id: u64,
        source: &str,
        binding: Binding,
    ) -> Result<(), AmqpError> {
        self.change_binding(vhost, conn_id, source, binding, false)
            .await
    }

    async fn change_binding(
        &self,
        vhost: &str,
        conn_id: u64,
        source: &str,
        binding: Binding,
        add: bool,
    ) -> Result<(), AmqpError> {
        let _guard = self.write_lock.lock().await;
        if source.is_empty() {
            return Err(default_exchange_refused());
        }
        let v = self.vhost(vhost).ok_or_else(|| no_vhost(vhost))?;
        let topo = v.topology();
        let x = topo
            .exchanges
            .get(source)
            .ok_or_else(|| no_exchange(vhost, source))?;
        let dest_durable = match &binding.destination {
            Destination::Queue(q) => self.lookup_queue(vhost, conn_id, q)?.durable,
            Destination::Exchange(e) if e.is_empty() => return Err(default_exchange_refused()),
            Destination::Exchange(e) => {
                topo.exchanges
                    .get(e)
                    .ok_or_else(|| no_exchange(vhost, e))?
                    .durable
            }
        };
        let durable = x.durable && dest_durable;
        drop(topo);
        let changed = v.modify(|t| {
            let Some(x) = t.exchanges.get_mut(source) else {
                return Ok(false);
            };
            let x = Arc::make_mut(x);
            let changed = if add {
                x.bind(binding).map_err(|e| {
                    AmqpError::precondition_failed(format!("invalid binding arguments: {e}"))
                })?
            } else {
                x.unbind(&binding)
            };
            if !add && x.auto_delete && x.binding_count() == 0 {
                t.exchanges.remove(source);
            }
            Ok(changed)
        })?;
        if changed && durable {
            self.persist_definitions().await?;
        }
        Ok(())
    }

    /// Adds or replaces a user and stores it.
    pub async fn put_user(&self, user: User) -> Result<(), UserOpError> {
        let _guard = self.write_lock.lock().await;
        self.access.put_user(user)?;
        Ok(self.persist_definitions().await?)
    }

    /// Deletes a user (and their permissions) and stores that; false if there was none.
    pub async fn delete_user(&self, name: &str) -> Result<bool, UserOpError> {
        let _guard = self.write_lock.lock().await;
        if !self.access.delete_user(name) {
            return Ok(false);
        }
        self.persist_definitions().await?;
        Ok(true)
    }

    /// Sets a user's permissions in a vhost and stores them.
    pub async fn set_permission(
        &self,
        user: &str,
        vhost: &str,
        permission: Permission,
    ) -> Result<(), UserOpError> {
        let _guard = self.write_lock.lock().await;
        // Checked under the write lock: a grant must not outlive a vhost deleted meanwhile
        // (it would silently apply to a later vhost of the same name).
        if self.vhost(vhost).is_none() {
            return Err(UserOpError::NoVhost(vhost.to_string()));
        }
        self.access.set_permission(user, vhost, permission)?;
        Ok(self.persist_definitions().await?)
    }

    /// Removes a user's permissions in a vhost and stores that; false if there were none.
    pub async fn clear_permission(&self, user: &str, vhost: &str) -> Result<bool, UserOpError> {
        let _guard = self.write_lock.lock().await;
        if !self.access.clear_permission(user, vhost) {
            return Ok(false);
        }
        self.persist_definitions().await?;
        Ok(true)
    }

    /// Creates the default user (tagged `administrator`, all permissions on the default
    /// vhost) if there are no users at all, as on a first start. Returns whether it did.
    /// Anonymous MQTT clients act as this user from then on.
    pub async fn ensure_default_user(
        &self,
        name: &str,
        password: &str,
    ) -> Result<bool, UserOpError> {
        self.access.set_default_user(name);
        if !self.access.is_empty() {
            return Ok(false);
        }
        let password_hash = hash_password(password)?;
        self.put_user(User {
            name: name.to_string(),
            password_hash,
            tags: vec!["administrator".into()],
        })
        .await?;
        // An operator may have deleted "/": the user is still created, with no vhost.
        if self.vhost(DEFAULT_VHOST).is_some() {
            self.set_permission(name, DEFAULT_VHOST, Permission::all())
                .await?;
        }
        Ok(true)
    }

    /// Creates a vhost (with its default and `amq.*` exchanges), or updates the description
    /// and tags of an existing one; stores it. Returns whether it was created.
    pub async fn put_vhost(&self, name: &str, meta: VhostMeta) -> Result<bool, AmqpError> {
        if name.is_empty() {
            return Err(AmqpError::precondition_failed(
                "vhost name must not be empty",
            ));
        }
        let _guard = self.write_lock.lock().await;
        let created = match self.vhost(name) {
            Some(v) => {
                v.set_meta(meta);
                false
            }
            None => {
                let v = Arc::new(Vhost::new(name, meta));
                self.vhosts_mut(|m| m.insert(name.to_string(), v));
                true
            }
        };
        self.persist_definitions().await?;
        if created {
            tracing::info!(vhost = name, "vhost created");
        }
        Ok(created)
    }

    /// Deletes a vhost as RabbitMQ does: its connections are closed (AMQP with 320
    /// CONNECTION_FORCED), its queues deleted with their stored messages, its exchanges and
    /// permissions removed. False if there was no such vhost.
    pub async fn delete_vhost(&self, name: &str) -> Result<bool, AmqpError> {
        let _guard = self.write_lock.lock().await;
        let Some(v) = self.vhosts_mut(|m| m.remove(name)) else {
            return Ok(false);
        };
        for c in self.connections.list() {
            if c.meta.vhost == name {
                c.close(format!("vhost '{name}' is deleted"));
            }
        }
        let topo = v.topology();
        for q in topo.queues.values() {
            // The task deletes the queue's log; an ended task has nothing left to delete.
            let _ = q
                .handle
                .ask(|reply| QueueCmd::Delete {
                    if_unused: false,
                    if_empty: false,
                    reply,
                })
                .await;
        }
        v.modify(|t| *t = super::topology::Topology::default());
        self.access.clear_vhost(name);
        self.vhost_deleted();
        self.persist_definitions().await?;
        tracing::info!(vhost = name, queues = topo.queues.len(), "vhost deleted");
        Ok(true)
    }

    /// Rebuilds the vhosts, the durable topology and queue contents from storage.
    pub fn recover(self: &Arc<Core>) -> Result<RecoveryStats, storage::StorageError> {
        let defs = self.storage().load_definitions()?;
        self.access.load(&defs.users, &defs.permissions);
        // The stored vhosts. None on a fresh data dir or in snapshots written before vhosts
        // existed, which means `/` alone; an empty list means an operator deleted them all.
        // A vhost a stored object names exists too.
        let mut metas: std::collections::BTreeMap<String, VhostMeta> = match &defs.vhosts {
            None => [(DEFAULT_VHOST.to_string(), VhostMeta::default())].into(),
            Some(stored) => stored
                .iter()
                .map(|v| {
                    let meta = VhostMeta {
                        description: v.description.clone(),
                        tags: v.tags.clone(),
                    };
                    (v.name.clone(), meta)
                })
                .collect(),
        };
        let named = defs.queues.iter().map(|q| &q.vhost);
        let named = named.chain(defs.exchanges.iter().map(|x| &x.vhost));
        for vhost in named.chain(defs.bindings.iter().map(|b| &b.vhost)) {
            metas.entry(vhost.clone()).or_default();
        }
        self.vhosts_mut(|m| {
            m.clear();
            for (name, meta) in metas {
                m.insert(name.clone(), Arc::new(Vhost::new(name, meta)));
            }
        });
        let mut stats = RecoveryStats::default();
        for x in &defs.exchanges {
            let Some(kind) = ExchangeKind::parse(&x.kind) else {
                tracing::error!(exchange = %x.name, kind = %x.kind, "skipping stored exchange of unknown type");
                continue;
            };
            let Some(v) = self.vhost(&x.vhost) else {
                continue;
            };
            let args = decode_table(&x.arguments).unwrap_or_default();
            let exchange =
                Exchange::new(x.name.clone(), kind, true, x.auto_delete, x.internal, args);
            v.modify(|t| t.exchanges.insert(x.name.clone(), Arc::new(exchange)));
            stats.exchanges += 1;
        }
        for q in &defs.queues {
            let Some(v) = self.vhost(&q.vhost) else {
                continue;
            };
            let key = storage::QueueKey::new(q.vhost.clone(), q.name.clone());
            let messages = self.storage().recover_seqs(&key)?;
            stats.messages += messages.len();
            let handle = QueueTask::spawn(
                self,
                q.vhost.clone(),
                q.name.clone(),
                true,
                q.auto_delete,
                messages,
            );
            let entry = QueueEntry {
                handle,
                durable: true,
                exclusive_owner: None,
                auto_delete: q.auto_delete,
                arguments: decode_table(&q.arguments).unwrap_or_default(),
            };
            v.modify(|t| t.queues.insert(q.name.clone(), entry));
            stats.queues += 1;
        }
        for b in &defs.bindings {
            let Some(v) = self.vhost(&b.vhost) else {
                continue;
            };
            let destination = if b.destination_is_exchange {
                Destination::Exchange(b.destination.clone())
            } else {
                Destination::Queue(b.destination.clone())
            };
            let binding = Binding {
                destination,
                routing_key: b.routing_key.clone(),
                arguments: decode_table(&b.arguments).unwrap_or_default(),
            };
            let bound = v.modify(|t| {
                t.exchanges
                    .get_mut(&b.source)
                    .is_some_and(|x| Arc::make_mut(x).bind(binding).is_ok())
            });
            if bound {
                stats.bindings += 1;
            }
        }
        Ok(stats)
    }
}

/// What start-up recovery found.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecoveryStats {
    /// Durable exchanges.
    pub exchanges: usize,
    /// Durable queues.
    pub queues: usize,
    /// Durable bindings.
    pub bindings: usize,
    /// Persistent messages.
    pub messages: usize,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use storage::{QueueKey, Storage, StoredMessage};

    use super::QueueDeclare;
    use crate::core::{Core, DEFAULT_VHOST};

    fn key(name: &str) -> QueueKey {
        QueueKey {
            vhost: DEFAULT_VHOST.into(),
            name: name.into(),
        }
    }

    fn stored_names(store: &dyn Storage) -> Vec<String> {
        let defs = store.load_definitions().expect("definitions");
        defs.queues.into_iter().map(|q| q.name).collect()
    }

    #[tokio::test]
    async fn a_deleted_vhost_is_not_live_even_when_its_name_is_reused() {
        use crate::core::vhost::VhostMeta;
        let core = Core::new(Arc::new(storage::MemoryStorage::new()), u64::MAX);
        core.recover().expect("recover");
        core.put_vhost("a", VhostMeta::default()).await.expect("a");
        let old = core.vhost("a").expect("a exists");
        assert!(core.vhost_is_live(&old));
        assert!(core.delete_vhost("a").await.expect("delete"));
        assert!(!core.vhost_is_live(&old));
        core.put_vhost("a", VhostMeta::default())
            .await
            .expect("a again");
        assert!(
            !core.vhost_is_live(&old),
            "a connection holding the old one must close"
        );
        assert!(core.vhost_is_live(&core.vhost("a").expect("new a")));
    }

    #[tokio::test]
    async fn a_late_delete_of_an_old_incarnation_leaves_the_new_queue() {
        let core = Core::new(Arc::new(storage::MemoryStorage::new()), u64::MAX);
        core.recover().expect("recover");
        let declare = || QueueDeclare {
            name: "s".into(),
            ..QueueDeclare::default()
        };
        core.declare_queue(DEFAULT_VHOST, 1, declare())
            .await
            .expect("declare");
        let old = core.lookup_queue(DEFAULT_VHOST, 1, "s").expect("s").handle;
        core.delete_queue(DEFAULT_VHOST, 1, "s", false, false)
            .await
            .expect("delete");
        core.declare_queue(DEFAULT_VHOST, 2, declare())
            .await
            .expect("declare again");
        core.delete_queue_incarnation(DEFAULT_VHOST, 1, "s", old.id())
            .await
            .expect("late delete");
        let new = core
            .lookup_queue(DEFAULT_VHOST, 2, "s")
            .expect("the new s stays");
        core.delete_queue_incarnation(DEFAULT_VHOST, 2, "s", new.handle.id())
            .await
            .expect("delete the new one");
        assert!(core.lookup_queue(DEFAULT_VHOST, 2, "s").is_err());
        core.shutdown.cancel();
    }

    #[tokio::test]
    async fn permissions_need_their_vhost_to_exist() {
        let core = Core::new(Arc::new(storage::MemoryStorage::new()), u64::MAX);
        core.recover().expect("recover");
        core.ensure_default_user("guest", "guest")
            .await
            .expect("default user");
        let all = crate::core::access::Permission::all();
        let refused = core.set_permission("guest", "nowhere", all.clone()).await;
        assert!(
            matches!(&refused, Err(super::UserOpError::NoVhost(v)) if v == "nowhere"),
            "{refused:?}"
        );
        assert!(
            core.access
                .permissions()
                .iter()
                .all(|(_, v, _)| v != "nowhere")
        );
        core.set_permission("guest", DEFAULT_VHOST, all)
            .await
            .expect("an existing vhost");
    }

    #[tokio::test]
    async fn durable_declares_are_stored_first_and_start_from_an_empty_log() {
        let store = Arc::new(storage::MemoryStorage::new());
        // A log no stored definition names: left by a crash between a queue's removal from
        // the definitions and its log's deletion.
        let stale = StoredMessage {
            seq: 1,
            exchange: String::new(),
            routing_key: "q".into(),
            properties: Bytes::new(),
            body: Bytes::from_static(b"stale"),
        };
        store.append(&key("q"), &[stale]).expect("append");
        let core = Core::new(store.clone(), u64::MAX);
        core.recover().expect("recover");

        let durable = QueueDeclare {
            name: "q".into(),
            durable: true,
            ..QueueDeclare::default()
        };
        let (_, stats) = core
            .declare_queue(DEFAULT_VHOST, 1, durable)
            .await
            .expect("declare");
        assert_eq!(stats.messages, 0);
        assert!(
            store.recover_seqs(&key("q")).expect("seqs").is_empty(),
            "the stale log is gone, so its seqs cannot mix with the new queue's"
        );
        assert_eq!(stored_names(store.as_ref()), ["q"]);

        // Exclusive queues die with their connection: never in the stored definitions,
        // even when declared durable.
        let exclusive = QueueDeclare {
            name: "mine".into(),
            durable: true,
            exclusive: true,
            ..QueueDeclare::default()
        };
        core.declare_queue(DEFAULT_VHOST, 1, exclusive)
            .await
            .expect("declare exclusive");
        let other = QueueDeclare {
            name: "r".into(),
            durable: true,
            ..QueueDeclare::default()
        };
        core.declare_queue(DEFAULT_VHOST, 1, other)
            .await
            .expect("declare r");
        assert_eq!(stored_names(store.as_ref()), ["q", "r"]);

        let retained = QueueDeclare {
            name: super::MQTT_RETAINED_LOG.into(),
            durable: true,
            ..QueueDeclare::default()
        };
        let refused = core.declare_queue(DEFAULT_VHOST, 1, retained).await;
        assert!(
            matches!(&refused, Err(e) if e.to_string().contains("reserved")),
            "{refused:?}"
        );
    }
}
