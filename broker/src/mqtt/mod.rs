//! The MQTT 3.1.1 / 5.0 front end over the same core as AMQP, as RabbitMQ's MQTT plugin does
//! it: every publish goes through `amq.topic` (topics mapped losslessly onto routing keys), a
//! session is a queue (`mqtt-subscription-<client id>`) bound to `amq.topic` once per
//! subscription, and a shared subscription `$share/group/filter` is a durable queue of that
//! name whose consumers are the group's members — so AMQP consumers can compete on it too;
//! persistent sessions record their memberships so they survive disconnects and restarts.
//!
//! # Layout
//! - `listener`: accept loop.
//! - [`websocket`]: MQTT over WebSocket (`/mqtt`).
//! - `connection`: the connection task (CONNECT, keep-alive, takeover, cleanup, will).
//! - `inbound`: PUBLISH from clients, topic aliases, QoS 1/2 acknowledgements.
//! - `outbound`: deliveries to clients and their acknowledgements.
//! - `subscriptions`: SUBSCRIBE / UNSUBSCRIBE, shared subscriptions.
//! - `shared_groups`: group queues' lifetime and persistent sessions' group memberships.
//! - [`convert`]: MQTT publish ⇄ core message (properties mapping).
//! - [`topic_map`]: lossless MQTT topic ⇄ AMQP routing key mapping.
//! - [`retained`]: retained messages, in memory and in storage.
//! - [`sessions`]: connected client ids (takeover) and per-client timers.

mod codec;
mod connection;
pub mod convert;
mod inbound;
pub mod listener;
mod outbound;
pub mod retained;
pub mod sessions;
mod shared_groups;
mod subscriptions;
pub mod topic_map;
pub mod websocket;

use std::sync::Arc;

use protocol_mqtt::QoS;

use crate::core::Core;
use crate::core::queue::{QueueCmd, QueueHandle};
use crate::model::message::MessageRef;

/// What every MQTT connection shares.
pub struct Shared {
    /// The routing core.
    pub core: Arc<Core>,
    /// Retained messages (shared with the task that drops a deleted vhost's).
    pub retained: Arc<retained::RetainedStore>,
    /// Connected client ids and timers.
    pub sessions: sessions::Sessions,
    /// Largest packet accepted from clients (and advertised in 5.0 CONNACK).
    pub max_packet_size: usize,
    /// Vhost of clients whose user name does not name one (`--mqtt-vhost`).
    pub default_vhost: String,
}

/// A shared-subscription membership of a connection.
#[derive(Debug, Clone)]
pub struct SharedSub {
    /// The group's queue.
    pub queue: QueueHandle,
    /// Maximum QoS granted.
    pub qos: QoS,
}

/// The exchange MQTT topics live on, as with RabbitMQ's MQTT plugin: AMQP clients bind to
/// it to hear MQTT publishers and publish to it to reach MQTT subscribers.
pub const TOPIC_EXCHANGE: &str = "amq.topic";

/// Queue argument holding a 5.0 session's expiry interval, so that sessions found at start-up
/// expire too.
pub const SESSION_EXPIRY_ARG: &str = "x-mqtt-session-expiry";

/// Declare arguments of a session queue.
pub(crate) fn session_arguments(
    version: protocol_mqtt::ProtocolVersion,
    expiry: u32,
) -> protocol_amqp::FieldTable {
    let mut args = protocol_amqp::FieldTable::new();
    if version == protocol_mqtt::ProtocolVersion::V5 && expiry != u32::MAX && expiry > 0 {
        args.insert(
            protocol_amqp::ShortStr::from_static(SESSION_EXPIRY_ARG),
            protocol_amqp::FieldValue::U32(expiry),
        );
    }
    args
}

impl Shared {
    /// Starts the expiry clock of every 5.0 session found at start-up (from now: the time
    /// the broker was down does not count against the session), and deletes the recovered
    /// shared-subscription groups that no recovered session is a member of.
    pub fn expire_recovered_sessions(self: &Arc<Self>) {
        let core = self.core.clone();
        self.core
            .tasks
            .spawn(async move { shared_groups::collect_orphans(&core).await });
        for vhost in self.core.vhosts() {
            let topology = vhost.topology();
            for (name, q) in &topology.queues {
                let Some(client_id) = name.strip_prefix("mqtt-subscription-") else {
                    continue;
                };
                let Some(protocol_amqp::FieldValue::U32(expiry)) =
                    q.arguments.get(SESSION_EXPIRY_ARG)
                else {
                    continue;
                };
                self.schedule_expiry(vhost.name(), client_id, name, *expiry);
            }
        }
    }

    /// MQTT state over `core` (recovered already), with every vhost's retained messages
    /// loaded from storage. Clients that do not name a vhost use `default_vhost`.
    pub fn new(
        core: Arc<Core>,
        max_packet_size: usize,
        default_vhost: String,
    ) -> Result<Shared, storage::StorageError> {
        let vhosts = core
            .vhosts()
            .iter()
            .map(|v| v.name().to_string())
            .collect::<Vec<_>>();
        let retained = Arc::new(retained::RetainedStore::open(
            core.storage().clone(),
            vhosts,
        )?);
        if core.vhost(&default_vhost).is_none() {
            tracing::warn!(vhost = %default_vhost, "the MQTT vhost (--mqtt-vhost) does not exist: MQTT clients that do not name a vhost will be refused");
        }
        let mut deletions = core.subscribe_vhost_deletions();
        let (watcher_core, watcher_retained) = (core.clone(), retained.clone());
        core.tasks.spawn(async move {
            let shutdown = watcher_core.shutdown.clone();
            loop {
                tokio::select! {
                    changed = deletions.changed() => if changed.is_err() { break },
                    _ = shutdown.cancelled() => break,
                }
                let exists = |v: &str| watcher_core.vhost(v).is_some();
                if let Err(e) = watcher_retained.forget_deleted_vhosts(exists) {
                    tracing::error!(error = %e, "cannot delete a deleted vhost's retained messages");
                }
            }
        });
        Ok(Shared {
            core,
            retained,
            sessions: sessions::Sessions::default(),
            max_packet_size,
            default_vhost,
        })
    }

    /// Deletes a disconnected session after `expiry` seconds unless its client comes back.
    pub(crate) fn schedule_expiry(
        self: &Arc<Self>,
        vhost: &str,
        client_id: &str,
        queue: &str,
        expiry: u32,
    ) {
        let token = self
            .sessions
            .start_timer(vhost, client_id, sessions::TimerKind::Expiry);
        let (shared, client_id, queue) = (self.clone(), client_id.to_string(), queue.to_string());
        let vhost = vhost.to_string();
        let delay = std::time::Duration::from_secs(u64::from(expiry));
        self.core.tasks.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {
                    if !shared.sessions.is_connected(&vhost, &client_id) {
                        tracing::info!(%vhost, %client_id, "session expired");
                        shared.end_session(&vhost, 0, &queue).await;
                    }
                }
                _ = token.cancelled() => {}
                _ = shared.core.shutdown.cancelled() => {}
            }
        });
    }

    /// Deletes the session queue `queue` (its subscriptions and group memberships go with its
    /// bindings), then the groups it was the last member of.
    pub(crate) async fn end_session(&self, vhost: &str, conn_id: u64, queue: &str) {
        self.end_session_of(vhost, conn_id, queue, None).await;
    }

    /// [`Shared::end_session`], but only if the session queue is still the incarnation
    /// `id`: a connection whose clean-up comes late (a takeover stopped waiting for it) must
    /// not end its successor's session.
    pub(crate) async fn end_session_of(
        &self,
        vhost: &str,
        conn_id: u64,
        queue: &str,
        id: Option<u64>,
    ) {
        let topology = self.core.topology(vhost);
        if let Some(id) = id
            && topology
                .queues
                .get(queue)
                .is_none_or(|q| q.handle.id() != id)
        {
            return;
        }
        let groups = shared_groups::memberships(&topology, queue);
        let deleted = match id {
            Some(id) => {
                self.core
                    .delete_queue_incarnation(vhost, conn_id, queue, id)
                    .await
            }
            None => {
                self.core
                    .delete_queue(vhost, conn_id, queue, false, false)
                    .await
            }
        };
        if let Err(e) = deleted {
            tracing::warn!(%queue, error = %e, "cannot delete the session queue");
            return;
        }
        for (group, _) in groups {
            shared_groups::release(&self.core, vhost, conn_id, &group).await;
        }
    }

    /// The shared-subscription groups the session of `client_id` is a member of (for an
    /// operator deleting the session: see [`Shared::release_groups`]).
    pub fn session_groups(&self, vhost: &str, client_id: &str) -> Vec<String> {
        shared_groups::memberships(
            &self.core.topology(vhost),
            &sessions::session_queue(client_id),
        )
        .into_iter()
        .map(|(group, _)| group)
        .collect()
    }

    /// After a session was deleted: deletes those of `groups` it was the last member of.
    pub async fn release_groups(&self, vhost: &str, conn_id: u64, groups: &[String]) {
        for group in groups {
            shared_groups::release(&self.core, vhost, conn_id, group).await;
        }
    }

    /// Publishes a will message through `amq.topic` (no confirm: nobody waits for it).
    pub(crate) async fn publish_will(
        &self,
        vhost: &str,
        topic: &str,
        msg: MessageRef,
        retain: bool,
    ) {
        if retain {
            let stored = if msg.body.is_empty() {
                None
            } else {
                Some(msg.clone())
            };
            if let Err(e) = self.retained.set(vhost, topic, stored) {
                tracing::error!(error = %e, "cannot store retained will message");
            }
        }
        let mut targets = Vec::new();
        self.core.topology(vhost).route(
            TOPIC_EXCHANGE,
            msg.routing_key.as_str(),
            msg.properties.headers.as_ref(),
            &mut targets,
        );
        for queue in targets {
            let _ = queue
                .send(QueueCmd::Publish {
                    msg: msg.clone(),
                    confirm: None,
                })
                .await;
        }
    }
}
