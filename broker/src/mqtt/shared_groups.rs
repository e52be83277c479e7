//! Shared-subscription groups and the memberships of persistent sessions.
//!
//! A group `$share/g/f` is a durable queue of that name bound to `amq.topic` (so AMQP
//! consumers can compete on it too); its members consume it. MQTT 5.0 §4.8.2 makes a shared
//! subscription part of each member's session, so a persistent session records its
//! memberships where its ordinary subscriptions live — as bindings to its session queue —
//! but from the internal exchange [`MEMBERSHIPS_EXCHANGE`] that nothing publishes to: they
//! persist with the session queue, come back after a restart, and go with the session queue
//! whichever way it is deleted (clean start, expiry, an operator).
//!
//! The group queue is not auto-delete: a disconnected persistent member keeps it (and the
//! messages published meanwhile, which the members still connected — or the member, when it
//! is back — receive). It is deleted explicitly by [`release`] when a member leaves and no
//! persistent session holds a membership and nothing consumes it any more.

use protocol_amqp::{FieldTable, FieldValue, ShortStr};
use protocol_mqtt::{QoS, SharedSubscription};

use super::topic_map::filter_to_binding_key;
use crate::core::Core;
use crate::core::ops::{ExchangeDeclare, QueueDeclare};
use crate::core::queue::QueueHandle;
use crate::core::topology::Topology;
use crate::error::AmqpError;
use crate::model::exchange::{Binding, Destination};

/// Internal direct exchange whose bindings record shared memberships: routing key = group
/// queue name, destination = the member's session queue. Internal, so no publish reaches it;
/// reserved, so no AMQP client binds, re-declares or deletes it.
pub use crate::core::ops::MQTT_MEMBERSHIPS_EXCHANGE as MEMBERSHIPS_EXCHANGE;

/// Queue argument marking a queue the MQTT front end made for a group, so that only those
/// are ever deleted by it (an AMQP application may own a queue named `$share/…` itself).
pub const GROUP_ARG: &str = "x-mqtt-shared-group";

/// Membership binding argument holding the granted QoS.
const QOS_ARG: &str = "x-mqtt-qos";

/// The queue of a group.
pub(crate) fn queue_name(shared: &SharedSubscription) -> String {
    format!(
        "{}{}/{}",
        SharedSubscription::PREFIX,
        shared.group,
        shared.filter.as_str()
    )
}

fn membership_binding(session_queue: &str, group: &str, qos: QoS) -> Binding {
    let mut args = FieldTable::new();
    args.insert(ShortStr::from_static(QOS_ARG), FieldValue::U8(qos.as_u8()));
    Binding {
        destination: Destination::Queue(session_queue.to_string()),
        routing_key: group.to_string(),
        arguments: args,
    }
}

/// The group memberships recorded for the session queue `session_queue`: (group, QoS).
pub(crate) fn memberships(topology: &Topology, session_queue: &str) -> Vec<(String, QoS)> {
    let Some(x) = topology.exchanges.get(MEMBERSHIPS_EXCHANGE) else {
        return Vec::new();
    };
    x.bindings_to(&Destination::Queue(session_queue.to_string()))
        .iter()
        .map(|b| {
            let qos = match b.arguments.get(QOS_ARG) {
                Some(FieldValue::U8(q)) => QoS::from_u8(*q).unwrap_or(QoS::AtLeastOnce),
                _ => QoS::AtLeastOnce,
            };
            (b.routing_key.clone(), qos)
        })
        .collect()
}

/// Whether some persistent session records a membership of `group`.
fn has_memberships(topology: &Topology, group: &str) -> bool {
    topology
        .exchanges
        .get(MEMBERSHIPS_EXCHANGE)
        .is_some_and(|x| x.bindings().any(|b| b.routing_key == group))
}

/// The group's queue, declared (durable, not auto-delete) and bound to `amq.topic` if it is
/// not there yet. An existing queue of that name is used as it is.
pub(crate) async fn open(
    core: &std::sync::Arc<Core>,
    vhost: &str,
    conn_id: u64,
    shared: &SharedSubscription,
) -> Result<QueueHandle, AmqpError> {
    let name = queue_name(shared);
    // Passive first (under the core's write lock, so never half-way through a delete): an
    // existing queue of that name is used whatever its flags.
    let passive = QueueDeclare {
        name: name.clone(),
        passive: true,
        ..QueueDeclare::default()
    };
    let missing = match core.declare_queue(vhost, conn_id, passive).await {
        Ok(_) => false,
        Err(e) if e.code() == protocol_amqp::reply_code::NOT_FOUND => true,
        Err(e) => return Err(e),
    };
    if missing {
        let mut arguments = FieldTable::new();
        arguments.insert(ShortStr::from_static(GROUP_ARG), FieldValue::Bool(true));
        core.declare_queue(
            vhost,
            conn_id,
            QueueDeclare {
                name: name.clone(),
                durable: true,
                arguments,
                ..QueueDeclare::default()
            },
        )
        .await?;
    }
    let binding = Binding {
        destination: Destination::Queue(name.clone()),
        routing_key: filter_to_binding_key(shared.filter.as_str()),
        arguments: FieldTable::new(),
    };
    core.bind(vhost, conn_id, super::TOPIC_EXCHANGE, binding)
        .await?;
    Ok(core.lookup_queue(vhost, conn_id, &name)?.handle)
}

/// Records that the session queue `session_queue` is a member of `group` with `qos`
/// (replacing a membership with another QoS).
pub(crate) async fn record(
    core: &Core,
    vhost: &str,
    conn_id: u64,
    session_queue: &str,
    group: &str,
    qos: QoS,
) -> Result<(), AmqpError> {
    core.declare_exchange(
        vhost,
        ExchangeDeclare {
            name: MEMBERSHIPS_EXCHANGE.to_string(),
            kind: "direct".to_string(),
            passive: false,
            durable: true,
            auto_delete: false,
            internal: true,
            arguments: FieldTable::new(),
        },
    )
    .await?;
    let wanted = membership_binding(session_queue, group, qos);
    for (g, q) in memberships(&core.topology(vhost), session_queue) {
        if g == group && q != qos {
            forget_one(core, vhost, conn_id, session_queue, &g, q).await;
        }
    }
    core.bind(vhost, conn_id, MEMBERSHIPS_EXCHANGE, wanted)
        .await
}

async fn forget_one(
    core: &Core,
    vhost: &str,
    conn_id: u64,
    session_queue: &str,
    group: &str,
    qos: QoS,
) {
    let binding = membership_binding(session_queue, group, qos);
    if let Err(e) = core
        .unbind(vhost, conn_id, MEMBERSHIPS_EXCHANGE, binding)
        .await
    {
        tracing::warn!(queue = session_queue, group, error = %e, "cannot remove a shared membership");
    }
}

/// Removes the membership of `session_queue` in `group`; whether it had one.
pub(crate) async fn forget(
    core: &Core,
    vhost: &str,
    conn_id: u64,
    session_queue: &str,
    group: &str,
) -> bool {
    let mut had = false;
    for (g, q) in memberships(&core.topology(vhost), session_queue) {
        if g == group {
            forget_one(core, vhost, conn_id, session_queue, &g, q).await;
            had = true;
        }
    }
    had
}

/// A member left `group`: deletes the group's queue (with any messages left in it) if no
/// persistent session is a member any more and nothing consumes it. A queue the MQTT front
/// end did not make for a group is left alone.
pub(crate) async fn release(core: &Core, vhost: &str, conn_id: u64, group: &str) {
    let topology = core.topology(vhost);
    let ours = topology
        .queues
        .get(group)
        .is_some_and(|q| q.arguments.get(GROUP_ARG).is_some());
    if !ours || has_memberships(&topology, group) {
        return;
    }
    drop(topology);
    // if_unused: a connected member or an AMQP consumer still uses it.
    match core.delete_queue(vhost, conn_id, group, true, false).await {
        Ok(n) => tracing::debug!(%vhost, group, messages = n, "shared subscription group deleted"),
        Err(e) => tracing::debug!(%vhost, group, error = %e, "shared subscription group kept"),
    }
}

/// At start-up: deletes the group queues that no recovered session is a member of (groups of
/// clean members only, which ended with their connections).
pub(crate) async fn collect_orphans(core: &Core) {
    for vhost in core.vhosts() {
        let groups: Vec<String> = vhost
            .topology()
            .queues
            .iter()
            .filter(|(_, q)| q.arguments.get(GROUP_ARG).is_some())
            .map(|(name, _)| name.clone())
            .collect();
        for group in groups {
            release(core, vhost.name(), 0, &group).await;
        }
    }
}

/// Parses a recorded group name back into the shared subscription.
pub(crate) fn parse(group: &str) -> Option<SharedSubscription> {
    SharedSubscription::parse(group).ok().flatten()
}
