//! Topology operations (declare, delete, bind, unbind) and start-up recovery, with the
//! checks and reply codes RabbitMQ clients expect. Durable changes are on disk before the
//! operation returns.

use std::sync::Arc;

use protocol_amqp::FieldTable;

use super::access::{AccessError, Permission, User, hash_password};
use super::queue::{DeleteRefused, QueueCmd, QueueStats};
use super::queue_task::QueueTask;
use super::topology::{QueueEntry, decode_table};
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
}

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

fn no_queue(name: &str) -> AmqpError {
    AmqpError::not_found(format!("no queue '{name}' in vhost '{DEFAULT_VHOST}'"))
}

fn no_exchange(name: &str) -> AmqpError {
    AmqpError::not_found(format!("no exchange '{name}' in vhost '{DEFAULT_VHOST}'"))
}

fn locked(name: &str) -> AmqpError {
    AmqpError::resource_locked(format!(
        "cannot obtain exclusive access to locked queue '{name}' in vhost '{DEFAULT_VHOST}'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
    ))
}

fn inequivalent(
    arg: &str,
    what: &str,
    name: &str,
    received: impl std::fmt::Display,
    current: impl std::fmt::Display,
) -> AmqpError {
    AmqpError::precondition_failed(format!(
        "inequivalent arg '{arg}' for {what} '{name}' in vhost '{DEFAULT_VHOST}': received '{received}' but current is '{current}'"
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
        let mut defs = self.topology().definitions();
        (defs.users, defs.permissions) = self.access.definitions();
        self.storage()
            .put_definitions(&defs)
            .map_err(|e| AmqpError::internal(format!("cannot store definitions: {e}")))?;
        self.flusher()
            .sync()
            .await
            .map_err(|e| AmqpError::internal(format!("cannot sync definitions: {e}")))
    }

    /// queue.declare. Returns the name (server-named queues) and counts.
    pub async fn declare_queue(
        self: &Arc<Self>,
        conn_id: u64,
        req: QueueDeclare,
    ) -> Result<(String, QueueStats), AmqpError> {
        let _guard = self.write_lock.lock().await;
        let name = if req.name.is_empty() && !req.passive {
            random_name("amq.gen-")
        } else {
            req.name.clone()
        };
        // An owned copy: holding the snapshot would make the insert below copy the topology.
        let existing = self.topology().queues.get(&name).cloned();
        if let Some(q) = existing {
            if q.exclusive_owner.is_some_and(|owner| owner != conn_id) {
                return Err(locked(&name));
            }
            if !req.passive {
                let durable = q.durable;
                if durable != req.durable {
                    return Err(inequivalent(
                        "durable",
                        "queue",
                        &name,
                        req.durable,
                        durable,
                    ));
                }
                if q.auto_delete != req.auto_delete {
                    return Err(inequivalent(
                        "auto_delete",
                        "queue",
                        &name,
                        req.auto_delete,
                        q.auto_delete,
                    ));
                }
                if q.exclusive_owner.is_some() != req.exclusive {
                    return Err(inequivalent(
                        "exclusive",
                        "queue",
                        &name,
                        req.exclusive,
                        q.exclusive_owner.is_some(),
                    ));
                }
                if q.arguments != req.arguments {
                    return Err(AmqpError::precondition_failed(format!(
                        "inequivalent arguments for queue '{name}' in vhost '{DEFAULT_VHOST}'"
                    )));
                }
            }
            let handle = q.handle.clone();
            match handle.ask(|reply| QueueCmd::Stats { reply }).await {
                Some(stats) => return Ok((name, stats)),
                // The queue task has ended: an auto-delete queue whose last consumer just
                // went, still listed until its `forget_queue` runs. It is gone already.
                None => {
                    if self.remove_queue_entry(&name, handle.id()) {
                        self.persist_definitions().await?;
                    }
                }
            }
        }
        if req.passive {
            return Err(no_queue(&name));
        }
        if req.name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "queue name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        // An exclusive queue lives only as long as its connection: never on disk.
        let durable = req.durable && !req.exclusive;
        let handle = QueueTask::spawn(self, name.clone(), durable, req.auto_delete, Vec::new());
        self.modify(|t| {
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
        if durable {
            self.persist_definitions().await?;
        }
        Ok((name, QueueStats::default()))
    }

    /// Finds a queue the connection may use.
    pub fn lookup_queue(&self, conn_id: u64, name: &str) -> Result<QueueEntry, AmqpError> {
        let topo = self.topology();
        let q = topo.queues.get(name).ok_or_else(|| no_queue(name))?;
        if q.exclusive_owner.is_some_and(|owner| owner != conn_id) {
            return Err(locked(name));
        }
        Ok(q.clone())
    }

    /// queue.delete. Deleting a missing queue succeeds with 0 messages, as in RabbitMQ.
    pub async fn delete_queue(
        &self,
        conn_id: u64,
        name: &str,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<u32, AmqpError> {
        let _guard = self.write_lock.lock().await;
        let q = match self.lookup_queue(conn_id, name) {
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
                    "queue '{name}' in vhost '{DEFAULT_VHOST}' in use"
                )));
            }
            Some(Err(DeleteRefused::NotEmpty)) => {
                return Err(AmqpError::precondition_failed(format!(
                    "queue '{name}' in vhost '{DEFAULT_VHOST}' is not empty"
                )));
            }
            None => 0,
        };
        self.remove_queue_entry(name, q.handle.id());
        if q.durable {
            self.persist_definitions().await?;
        }
        Ok(count)
    }

    /// Removes a queue whose task already ended (auto-delete).
    pub(crate) async fn forget_queue(&self, name: &str, id: u64) {
        let _guard = self.write_lock.lock().await;
        if self.remove_queue_entry(name, id)
            && let Err(e) = self.persist_definitions().await
        {
            tracing::error!(queue = name, error = %e, "cannot persist definitions after auto-delete");
        }
    }

    /// Drops the queue and its bindings from the topology; true if it was durable.
    fn remove_queue_entry(&self, name: &str, id: u64) -> bool {
        self.modify(|t| {
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
    pub async fn connection_closed(&self, conn_id: u64) {
        let owned: Vec<String> = self
            .topology()
            .queues
            .iter()
            .filter(|(_, q)| q.exclusive_owner == Some(conn_id))
            .map(|(name, _)| name.clone())
            .collect();
        for name in owned {
            if let Err(e) = self.delete_queue(conn_id, &name, false, false).await {
                tracing::warn!(queue = %name, error = %e, "cannot delete exclusive queue of a closed connection");
            }
        }
    }

    /// exchange.declare.
    pub async fn declare_exchange(&self, req: ExchangeDeclare) -> Result<(), AmqpError> {
        let _guard = self.write_lock.lock().await;
        if req.name.is_empty() {
            return Err(default_exchange_refused());
        }
        let topo = self.topology();
        if let Some(x) = topo.exchanges.get(&req.name) {
            if req.passive {
                return Ok(());
            }
            if x.kind.as_str() != req.kind {
                return Err(inequivalent(
                    "type", "exchange", &req.name, &req.kind, x.kind,
                ));
            }
            if x.durable != req.durable {
                return Err(inequivalent(
                    "durable",
                    "exchange",
                    &req.name,
                    req.durable,
                    x.durable,
                ));
            }
            if x.auto_delete != req.auto_delete {
                return Err(inequivalent(
                    "auto_delete",
                    "exchange",
                    &req.name,
                    req.auto_delete,
                    x.auto_delete,
                ));
            }
            if x.internal != req.internal {
                return Err(inequivalent(
                    "internal",
                    "exchange",
                    &req.name,
                    req.internal,
                    x.internal,
                ));
            }
            if x.arguments != req.arguments {
                return Err(AmqpError::precondition_failed(format!(
                    "inequivalent arguments for exchange '{}' in vhost '{DEFAULT_VHOST}'",
                    req.name
                )));
            }
            return Ok(());
        }
        if req.passive {
            return Err(no_exchange(&req.name));
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
        self.modify(|t| t.exchanges.insert(req.name.clone(), Arc::new(x)));
        if req.durable {
            self.persist_definitions().await?;
        }
        Ok(())
    }

    /// exchange.delete. Deleting a missing exchange succeeds, as in RabbitMQ.
    pub async fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<(), AmqpError> {
        let _guard = self.write_lock.lock().await;
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format!(
                "deletion of system exchange '{name}' is not allowed"
            )));
        }
        let topo = self.topology();
        let Some(x) = topo.exchanges.get(name) else {
            return Ok(());
        };
        if if_unused && x.binding_count() > 0 {
            return Err(AmqpError::precondition_failed(format!(
                "exchange '{name}' in vhost '{DEFAULT_VHOST}' in use"
            )));
        }
        let durable = x.durable;
        drop(topo);
        self.modify(|t| {
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
        conn_id: u64,
        source: &str,
        binding: Binding,
    ) -> Result<(), AmqpError> {
        self.change_binding(conn_id, source, binding, true).await
    }

    /// queue.unbind and exchange.unbind. Removing a missing binding succeeds.
    pub async fn unbind(
        &self,
        conn_id: u64,
        source: &str,
        binding: Binding,
    ) -> Result<(), AmqpError> {
        self.change_binding(conn_id, source, binding, false).await
    }

    async fn change_binding(
        &self,
        conn_id: u64,
        source: &str,
        binding: Binding,
        add: bool,
    ) -> Result<(), AmqpError> {
        let _guard = self.write_lock.lock().await;
        if source.is_empty() {
            return Err(default_exchange_refused());
        }
        let topo = self.topology();
        let x = topo
            .exchanges
            .get(source)
            .ok_or_else(|| no_exchange(source))?;
        let dest_durable = match &binding.destination {
            Destination::Queue(q) => self.lookup_queue(conn_id, q)?.durable,
            Destination::Exchange(e) if e.is_empty() => return Err(default_exchange_refused()),
            Destination::Exchange(e) => {
                topo.exchanges.get(e).ok_or_else(|| no_exchange(e))?.durable
            }
        };
        let durable = x.durable && dest_durable;
        drop(topo);
        let changed = self.modify(|t| {
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
        self.set_permission(name, DEFAULT_VHOST, Permission::all())
            .await?;
        Ok(true)
    }

    /// Rebuilds the durable topology and queue contents from storage.
    pub fn recover(self: &Arc<Core>) -> Result<RecoveryStats, storage::StorageError> {
        let defs = self.storage().load_definitions()?;
        self.access.load(&defs.users, &defs.permissions);
        let mut stats = RecoveryStats::default();
        let core = self.clone();
        let mut entries = Vec::new();
        for q in &defs.queues {
            let key = storage::QueueKey {
                vhost: q.vhost.clone(),
                name: q.name.clone(),
            };
            let messages = self.storage().recover(&key)?;
            stats.messages += messages.len();
            let handle = QueueTask::spawn(&core, q.name.clone(), true, q.auto_delete, messages);
            entries.push((
                q.name.clone(),
                QueueEntry {
                    handle,
                    durable: true,
                    exclusive_owner: None,
                    auto_delete: q.auto_delete,
                    arguments: decode_table(&q.arguments).unwrap_or_default(),
                },
            ));
        }
        self.modify(|t| {
            for x in &defs.exchanges {
                let Some(kind) = ExchangeKind::parse(&x.kind) else {
                    tracing::error!(exchange = %x.name, kind = %x.kind, "skipping stored exchange of unknown type");
                    continue;
                };
                let args = decode_table(&x.arguments).unwrap_or_default();
                t.exchanges.insert(
                    x.name.clone(),
                    Arc::new(Exchange::new(x.name.clone(), kind, true, x.auto_delete, x.internal, args)),
                );
                stats.exchanges += 1;
            }
            for (name, entry) in entries {
                t.queues.insert(name, entry);
                stats.queues += 1;
            }
            for b in &defs.bindings {
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
                if let Some(x) = t.exchanges.get_mut(&b.source)
                    && Arc::make_mut(x).bind(binding).is_ok() {
                        stats.bindings += 1;
                    }
            }
        });
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
