//! The data types that go in and out of storage.
//!
//! They are plain data on purpose: the broker converts its own domain types at
//! the edge, so the on-disk formats do not change when the domain does.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Position of a message in its queue's log.
///
/// Chosen by the queue task (one counter per queue, strictly increasing), so
/// the log is ordered by arrival and an ack can name its message cheaply.
pub type SeqNo = u64;

/// Identifies a queue's log: vhost + queue name.
///
/// Queue names can contain any UTF-8 except that they are at most 255 bytes;
/// any vhost/name pair maps to its own log (no two pairs share one, whatever
/// characters they contain).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QueueKey {
    /// Virtual host the queue lives in.
    pub vhost: String,
    /// Queue name inside the vhost.
    pub name: String,
}

impl QueueKey {
    /// Builds a key from anything string-like, to keep call sites short.
    pub fn new(vhost: impl Into<String>, name: impl Into<String>) -> Self {
        QueueKey {
            vhost: vhost.into(),
            name: name.into(),
        }
    }
}

/// A persistent message as it is kept in a durable queue's log.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredMessage {
    /// The message's position in its queue's log (the key it is stored under).
    pub seq: SeqNo,
    /// Exchange it was published to, for `basic.deliver` after a restart.
    pub exchange: String,
    /// Routing key it was published with, for `basic.deliver` after a restart.
    pub routing_key: String,
    /// AMQP content-header properties, encoded by the broker (opaque here).
    pub properties: Bytes,
    /// The message body.
    pub body: Bytes,
}

/// Durable topology. Stored and replaced as a whole snapshot (declares are rare).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Definitions {
    /// Durable exchanges.
    pub exchanges: Vec<ExchangeDef>,
    /// Durable queues.
    pub queues: Vec<QueueDef>,
    /// Bindings between durable exchanges and durable queues or exchanges.
    pub bindings: Vec<BindingDef>,
    /// Users (absent in snapshots written before users existed).
    #[serde(default)]
    pub users: Vec<UserDef>,
    /// Permissions of users in vhosts (absent in older snapshots).
    #[serde(default)]
    pub permissions: Vec<PermissionDef>,
    /// Virtual hosts. `None` in snapshots written before vhosts existed (those had only `/`)
    /// and on a fresh data dir; `Some` of an empty list once an operator deleted every vhost,
    /// which a restart must not undo.
    #[serde(default)]
    pub vhosts: Option<Vec<VhostDef>>,
}

/// A virtual host: its own exchanges, queues and permissions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VhostDef {
    /// Vhost name (`/` is the default one).
    pub name: String,
    /// Free text for operators.
    #[serde(default)]
    pub description: String,
    /// Tags for operators.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A user who may log in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDef {
    /// User name.
    pub name: String,
    /// Salted password hash in PHC string format (`$argon2id$v=19$...`); never the password.
    /// Empty: the user cannot log in with a password.
    pub password_hash: String,
    /// Tags (`administrator`, `monitoring`, `management`...).
    pub tags: Vec<String>,
}

/// What a user may do in a vhost: regular expressions over resource names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermissionDef {
    /// User name.
    pub user: String,
    /// Virtual host.
    pub vhost: String,
    /// Resources the user may declare and delete.
    pub configure: String,
    /// Resources the user may publish to / bind to.
    pub write: String,
    /// Resources the user may consume from / bind from.
    pub read: String,
}

/// A durable exchange, as declared, so it can be re-created at start-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExchangeDef {
    /// Virtual host the exchange lives in.
    pub vhost: String,
    /// Exchange name.
    pub name: String,
    /// Exchange type as declared (`direct`, `fanout`, `topic`, `headers`, ...).
    pub kind: String,
    /// Whether the exchange survives a restart (always true when stored, kept
    /// so that a redeclare can be compared field by field).
    pub durable: bool,
    /// Whether the exchange goes away when its last binding does.
    pub auto_delete: bool,
    /// Whether clients may not publish to it directly.
    pub internal: bool,
    /// Encoded AMQP argument table (opaque here).
    pub arguments: Vec<u8>,
}

/// A durable queue, as declared, so it can be re-created at start-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueDef {
    /// Virtual host the queue lives in.
    pub vhost: String,
    /// Queue name.
    pub name: String,
    /// Whether the queue survives a restart (always true when stored, kept so
    /// that a redeclare can be compared field by field).
    pub durable: bool,
    /// Whether the queue goes away when its last consumer does.
    pub auto_delete: bool,
    /// Encoded AMQP argument table (opaque here).
    pub arguments: Vec<u8>,
}

/// A binding, as declared, so routing can be rebuilt at start-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BindingDef {
    /// Virtual host of both ends.
    pub vhost: String,
    /// Exchange messages come from.
    pub source: String,
    /// Queue or exchange messages go to.
    pub destination: String,
    /// Whether `destination` names an exchange (exchange-to-exchange binding).
    pub destination_is_exchange: bool,
    /// Binding key (pattern for topic exchanges).
    pub routing_key: String,
    /// Encoded AMQP argument table (opaque here; headers exchanges match on it).
    pub arguments: Vec<u8>,
}
