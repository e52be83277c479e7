//! Which MQTT client ids are connected, so a second connection with the same id takes the
//! session over (the first is disconnected, and finishes its cleanup before the second goes on),
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
    live: Mutex<HashMap<String, Live>>,
    /// (client id, timer kind) → cancels a pending delayed will or session expiry.
    timers: Mutex<HashMap<(String, TimerKind), CancellationToken>>,
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
    /// Cancelled when another connection takes the session over.
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
    /// Registers `client_id` for `conn_id`, disconnecting and waiting out a previous holder.
    /// Also cancels the client's pending delayed will and session expiry.
    /// Returns whether a previous connection was taken over.
    pub async fn register(&self, client_id: &str, conn_id: u64) -> (Registration, bool) {
        let kick = CancellationToken::new();
        let finished = CancellationToken::new();
        let previous = lock(&self.live).insert(
            client_id.to_string(),
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
        self.cancel_timer(client_id);
        (Registration { kick, finished }, took_over)
    }

    /// Forgets `client_id` if `conn_id` still holds it.
    pub fn unregister(&self, client_id: &str, conn_id: u64) {
        let mut live = lock(&self.live);
        if live.get(client_id).is_some_and(|l| l.conn_id == conn_id) {
            live.remove(client_id);
        }
    }

    /// Whether a connection currently holds `client_id`.
    pub fn is_connected(&self, client_id: &str) -> bool {
        lock(&self.live).contains_key(client_id)
    }

    /// Starts a per-client timer (delayed will, session expiry); a reconnect cancels it.
    pub fn start_timer(&self, client_id: &str, kind: TimerKind) -> CancellationToken {
        let token = CancellationToken::new();
        if let Some(old) = lock(&self.timers).insert((client_id.to_string(), kind), token.clone()) {
            old.cancel();
        }
        token
    }

    fn cancel_timer(&self, client_id: &str) {
        lock(&self.timers).retain(|(id, _), t| {
            if id == client_id {
                t.cancel();
            }
            id != client_id
        });
    }

    /// Number of connected clients.
    pub fn connected(&self) -> usize {
        lock(&self.live).len()
    }
}
