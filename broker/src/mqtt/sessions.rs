//! Which MQTT client ids are connected in which vhost, so a second connection with the same
//! id in the same vhost takes the session over (the first is disconnected, and finishes its cleanup before the second goes on),
//! plus the timers that outlive a connection: delayed wills and session expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long a new connection waits for the one it took over to let go.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

struct Live {
    conn_id: u64,
    /// Cancelled by a newcomer with the same client id.
    kick: CancellationToken,
    /// Cancelled by the connection when it has released everything.
    finished: CancellationToken,
}

/// Registry of connected client ids and of per-client timers.
#[derive(Default)]
pub struct Sessions {
    /// (vhost, client id) → its connection: client ids are per vhost, as sessions are.
    live: Mutex<HashMap<(String, String), Live>>,
    /// (vhost, client id, timer kind) → cancels a pending delayed will or session expiry.
    timers: Mutex<HashMap<(String, String, TimerKind), CancellationToken>>,
}

fn key(vhost: &str, client_id: &str) -> (String, String) {
    (vhost.to_string(), client_id.to_string())
}

/// Timers that run for a client while it is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// MQTT 5.0 Will Delay Interval.
    Will,
    /// MQTT 5.0 Session Expiry Interval.
    Expiry,
}

/// A connection's registration; tells the registry when the connection is done.
pub struct Registration {
    /// Cancelled when another connection takes the session over, or the broker shuts down.
    pub kick: CancellationToken,
    finished: CancellationToken,
}

impl Registration {
    /// The connection has released its queue consumers; a waiting newcomer may go on.
    pub fn finish(&self) {
        self.finished.cancel();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.finished.cancel();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Sessions {
    /// Registers `client_id` in `vhost` for `conn_id`, disconnecting and waiting out a
    /// previous holder. Also cancels the client's pending delayed will and session expiry.
    /// Returns whether a previous connection was taken over. The registration's `kick` is a
    /// child of `shutdown`, so a connection waits on one token for both.
    pub async fn register(
        &self,
        vhost: &str,
        client_id: &str,
        conn_id: u64,
        shutdown: &CancellationToken,
    ) -> (Registration, bool) {
        let kick = shutdown.child_token();
        let finished = CancellationToken::new();
        let previous = lock(&self.live).insert(
            key(vhost, client_id),
            Live {
                conn_id,
                kick: kick.clone(),
                finished: finished.clone(),
            },
        );
        let took_over = previous.is_some();
        if let Some(old) = previous {
            old.kick.cancel();
            if tokio::time::timeout(TAKEOVER_WAIT, old.finished.cancelled())
                .await
                .is_err()
            {
                tracing::warn!(
                    client_id,
                    "previous connection did not let go of the session in time"
                );
            }
        }
        // After the takeover: the previous connection starts its delayed will and session
        // expiry in its cleanup, and this connection being back must cancel those too.
        self.cancel_timer(vhost, client_id);
        (Registration { kick, finished }, took_over)
    }

    /// Forgets `client_id` in `vhost` if `conn_id` still holds it.
    pub fn unregister(&self, vhost: &str, client_id: &str, conn_id: u64) {
        let mut live = lock(&self.live);
        let key = key(vhost, client_id);
        if live.get(&key).is_some_and(|l| l.conn_id == conn_id) {
            live.remove(&key);
        }
    }

    /// Whether a connection currently holds `client_id` in `vhost`.
    pub fn is_connected(&self, vhost: &str, client_id: &str) -> bool {
        lock(&self.live).contains_key(&key(vhost, client_id))
    }

    /// Starts a per-client timer (delayed will, session expiry); a reconnect cancels it.
    pub fn start_timer(&self, vhost: &str, client_id: &str, kind: TimerKind) -> CancellationToken {
        let token = CancellationToken::new();
        let key = (vhost.to_string(), client_id.to_string(), kind);
        if let Some(old) = lock(&self.timers).insert(key, token.clone()) {
            old.cancel();
        }
        token
    }

    fn cancel_timer(&self, vhost: &str, client_id: &str) {
        lock(&self.timers).retain(|(v, id, _), t| {
            let this = v == vhost && id == client_id;
            if this {
                t.cancel();
            }
            !this
        });
    }

    /// (vhost, client id) of every connected client.
    pub fn connected_clients(&self) -> Vec<(String, String)> {
        lock(&self.live).keys().cloned().collect()
    }

    /// Number of connected clients.
    pub fn connected(&self) -> usize {
        lock(&self.live).len()
    }

    /// The id of the connection holding `client_id` in `vhost` now (its id in the core's
    /// connection registry), for the management API.
    pub fn holder(&self, vhost: &str, client_id: &str) -> Option<u64> {
        lock(&self.live)
            .get(&key(vhost, client_id))
            .map(|l| l.conn_id)
    }

    /// Resolves once the connection holding `client_id` has released the session (at once
    /// when none does): an operator deleting a session waits for it before deleting the queue,
    /// as a takeover does.
    pub fn released(
        &self,
        vhost: &str,
        client_id: &str,
    ) -> impl std::future::Future<Output = ()> + use<> {
        let finished = lock(&self.live)
            .get(&key(vhost, client_id))
            .map(|l| l.finished.clone());
        async move {
            if let Some(finished) = finished {
                finished.cancelled_owned().await;
            }
        }
    }

    /// Cancels one pending per-client timer (an operator deleted the session: its expiry
    /// clock has nothing left to delete).
    pub fn cancel(&self, vhost: &str, client_id: &str, kind: TimerKind) {
        let key = (vhost.to_string(), client_id.to_string(), kind);
        if let Some(t) = lock(&self.timers).remove(&key) {
            t.cancel();
        }
    }
}

/// Prefix of session queue names: the session of client `c` is the queue
/// `mqtt-subscription-c` (RabbitMQ's MQTT plugin's name).
pub const SESSION_QUEUE_PREFIX: &str = "mqtt-subscription-";

/// The client id whose session `queue` is, if it is a session queue.
pub fn client_id_of(queue: &str) -> Option<&str> {
    queue.strip_prefix(SESSION_QUEUE_PREFIX)
}

/// The session queue of `client_id`.
pub fn session_queue(client_id: &str) -> String {
    format!("{SESSION_QUEUE_PREFIX}{client_id}")
}

/// One subscription of a session, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// The MQTT topic filter.
    pub filter: String,
    /// Maximum QoS granted.
    pub qos: u8,
    /// 5.0 No Local.
    pub no_local: bool,
    /// 5.0 Retain As Published.
    pub retain_as_published: bool,
    /// 5.0 subscription identifier.
    pub subscription_id: Option<u32>,
}

/// The subscriptions of the session of `client_id`, read from its bindings (where they live,
/// connected or not): ordinary ones from `amq.topic`, shared-subscription memberships
/// (`$share/group/filter`, recorded for persistent sessions) from the memberships exchange;
/// in filter order.
pub fn subscriptions(
    topology: &crate::core::topology::Topology,
    client_id: &str,
) -> Vec<SubscriptionInfo> {
    let queue = session_queue(client_id);
    let mut subs: Vec<SubscriptionInfo> = super::subscriptions::restore(topology, &queue)
        .into_iter()
        .map(|s| SubscriptionInfo {
            filter: s.filter.as_str().to_string(),
            qos: s.qos.as_u8(),
            no_local: s.no_local,
            retain_as_published: s.retain_as_published,
            subscription_id: s.id.map(|id| id.get()),
        })
        .collect();
    subs.extend(
        super::shared_groups::memberships(topology, &queue)
            .into_iter()
            .map(|(group, qos)| SubscriptionInfo {
                filter: group,
                qos: qos.as_u8(),
                no_local: false,
                retain_as_published: false,
                subscription_id: None,
            }),
    );
    subs.sort_by(|a, b| a.filter.cmp(&b.filter));
    subs
}
