//! Users, password checks and per-vhost permissions.
//!
//! Passwords are kept only as salted argon2id hashes in PHC string format
//! (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`), stored with the definitions. Permissions
//! are RabbitMQ's: per user and vhost, three regular expressions over resource names
//! (`configure`, `write`, `read`); a user with no entry for a vhost may not use it. The
//! user named `guest` may only log in from loopback (RabbitMQ's default `loopback_users`).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Users that may only log in from a loopback address.
pub const LOOPBACK_USERS: &[&str] = &["guest"];

/// Name of the hashing algorithm in definitions exports (RabbitMQ's
/// `hashing_algorithm` field names its own, e.g. `rabbit_password_hashing_sha256`).
pub const HASHING_ALGORITHM: &str = "argon2id";

/// Why a user or permission change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// A permission is not a valid regular expression.
    #[error("invalid regular expression '{pattern}': {message}")]
    BadRegex {
        /// The expression.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// A password hash is not an argon2 PHC string.
    #[error("invalid password hash: {0}")]
    BadHash(String),
    /// Hashing failed (it does not for valid parameters).
    #[error("cannot hash password: {0}")]
    Hashing(String),
    /// The user name is empty.
    #[error("user name must not be empty")]
    EmptyName,
    /// No such user.
    #[error("no user '{0}'")]
    NoUser(String),
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// Unknown user or wrong password.
    BadCredentials,
    /// Right credentials, but the user may only log in from loopback.
    LoopbackOnly,
}

/// The three kinds of access RabbitMQ checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Declare and delete.
    Configure,
    /// Publish to, bind to.
    Write,
    /// Consume from, get, purge, bind from.
    Read,
}

/// What a user may do in one vhost.
#[derive(Debug, Clone)]
pub struct Permission {
    /// Resources the user may declare and delete.
    pub configure: regex::Regex,
    /// Resources the user may publish or bind to.
    pub write: regex::Regex,
    /// Resources the user may consume from or bind from.
    pub read: regex::Regex,
}

fn compile(pattern: &str) -> Result<regex::Regex, AccessError> {
    regex::Regex::new(pattern).map_err(|e| AccessError::BadRegex {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })
}

impl Permission {
    /// Compiles the three expressions.
    pub fn new(configure: &str, write: &str, read: &str) -> Result<Permission, AccessError> {
        Ok(Permission {
            configure: compile(configure)?,
            write: compile(write)?,
            read: compile(read)?,
        })
    }

    /// Everything (`.*` for all three).
    pub fn all() -> Permission {
        // The literal is valid: compile cannot fail.
        Permission::new(".*", ".*", ".*").unwrap_or_else(|_| unreachable!())
    }

    /// Whether `name` is allowed for `access`. An empty expression matches nothing, as in
    /// RabbitMQ; the expression may match anywhere, so `^...$` anchors as usual.
    pub fn allows(&self, access: Access, name: &str) -> bool {
        let re = match access {
            Access::Configure => &self.configure,
            Access::Write => &self.write,
            Access::Read => &self.read,
        };
        !re.as_str().is_empty() && re.is_match(name)
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Name.
    pub name: String,
    /// PHC string of the salted argon2id hash; empty: no password login.
    pub password_hash: String,
    /// Tags (`administrator`, `monitoring`, `management`, ...).
    pub tags: Vec<String>,
}

impl User {
    /// Whether the user has `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// Hashes `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AccessError> {
    use rand::Rng;
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| AccessError::Hashing(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccessError::Hashing(e.to_string()))
}

/// Checks that `hash` is a PHC string argon2 can verify against.
pub fn validate_hash(hash: &str) -> Result<(), AccessError> {
    if hash.is_empty() {
        return Ok(());
    }
    let parsed = PasswordHash::new(hash).map_err(|e| AccessError::BadHash(e.to_string()))?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(AccessError::BadHash(format!(
            "algorithm '{}' is not argon2",
            parsed.algorithm
        )));
    }
    Ok(())
}

/// Whether `password` matches `hash` (false for an empty or malformed hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether `ip` is a loopback address (IPv4-mapped IPv6 ones included).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(v4) => v4.is_loopback(),
    }
}

/// Whether `user` may log in from `ip` (loopback users only from loopback).
pub fn loopback_allowed(user: &str, ip: IpAddr) -> bool {
    is_loopback(ip) || !LOOPBACK_USERS.contains(&user)
}

#[derive(Debug, Default)]
struct Inner {
    users: BTreeMap<String, User>,
    /// By (user, vhost).
    permissions: BTreeMap<(String, String), Arc<Permission>>,
}

/// The user store. Changes go through [`crate::core::Core`] so they are persisted with the
/// definitions; reads are cheap (a std lock, never held across `.await`).
#[derive(Debug, Default)]
pub struct AccessControl {
    inner: RwLock<Inner>,
    /// Bumped on every change, so connections know when to read their permissions again.
    generation: std::sync::atomic::AtomicU64,
    /// The configured default user, whom anonymous MQTT clients act as.
    default_user: RwLock<String>,
    /// Logins that argon2 has already accepted.
    verified: VerifiedLogins,
    /// Bounds the argon2 checks running at once.
    verifying: VerifyLimit,
}

/// At most one argon2 check per core at a time. Each check allocates its memory cost (19 MiB
/// with the default parameters), and a storm of new connections for one user all missed
/// [`VerifiedLogins`] until the first check finished: 2,000 AMQP logins left the broker at
/// ~2 GiB RSS (the allocator keeps what it got). Waiting here, later logins find the first
/// one's result remembered and skip argon2.
#[derive(Debug)]
struct VerifyLimit(tokio::sync::Semaphore);

impl Default for VerifyLimit {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        VerifyLimit(tokio::sync::Semaphore::new(cores))
    }
}

/// Most users one [`VerifiedLogins`] remembers; past it the memory starts over.
const VERIFIED_CAPACITY: usize = 4096;

/// Remembers, per user, a keyed digest of the last password argon2 accepted together with
/// the hash it was checked against, so a repeated login (every management API request,
/// a storm of reconnecting clients) costs a SipHash instead of ~20 ms of argon2 on a blocking
/// thread. Only successful checks are remembered, so a wrong password still pays the full
/// argon2 price; a changed password (new hash) misses. The digest is keyed with a random
/// per-process key ([`RandomState`]), so it reveals nothing usable outside this process.
#[derive(Debug, Default)]
struct VerifiedLogins {
    key: RandomState,
    // A std Mutex: held for one map operation, never across `.await`.
    by_user: Mutex<HashMap<String, (String, u64)>>,
}

impl VerifiedLogins {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, u64)>> {
        self.by_user.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn digest(&self, password: &str) -> u64 {
        self.key.hash_one(password)
    }

    fn contains(&self, user: &str, hash: &str, password: &str) -> bool {
        let digest = self.digest(password);
        self.lock()
            .get(user)
            .is_some_and(|(h, d)| h == hash && *d == digest)
    }

    fn insert(&self, user: &str, hash: &str, password: &str) {
        let digest = self.digest(password);
        let mut map = self.lock();
        if map.len() >= VERIFIED_CAPACITY && !map.contains_key(user) {
            map.clear();
        }
        map.insert(user.to_string(), (hash.to_string(), digest));
    }
}

impl AccessControl {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        match self.inner.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Changes so far (any user or permission).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        match self.inner.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Replaces everything with stored definitions; entries that do not compile are skipped
    /// with an error in the log.
    pub fn load(&self, users: &[storage::UserDef], permissions: &[storage::PermissionDef]) {
        let mut inner = Inner::default();
        for u in users {
            inner.users.insert(
                u.name.clone(),
                User {
                    name: u.name.clone(),
                    password_hash: u.password_hash.clone(),
                    tags: u.tags.clone(),
                },
            );
        }
        for p in permissions {
            match Permission::new(&p.configure, &p.write, &p.read) {
                Ok(perm) => {
                    inner
                        .permissions
                        .insert((p.user.clone(), p.vhost.clone()), Arc::new(perm));
                }
                Err(e) => {
                    tracing::error!(user = %p.user, vhost = %p.vhost, error = %e, "skipping stored permission");
                }
            }
        }
        *self.write() = inner;
    }

    /// Users and permissions as storage keeps them (sorted).
    pub fn definitions(&self) -> (Vec<storage::UserDef>, Vec<storage::PermissionDef>) {
        let inner = self.read();
        let users = inner
            .users
            .values()
            .map(|u| storage::UserDef {
                name: u.name.clone(),
                password_hash: u.password_hash.clone(),
                tags: u.tags.clone(),
            })
            .collect();
        let permissions = inner
            .permissions
            .iter()
            .map(|((user, vhost), p)| storage::PermissionDef {
                user: user.clone(),
                vhost: vhost.clone(),
                configure: p.configure.as_str().to_string(),
                write: p.write.as_str().to_string(),
                read: p.read.as_str().to_string(),
            })
            .collect();
        (users, permissions)
    }

    /// The configured default user (anonymous MQTT clients act as it).
    pub fn default_user(&self) -> String {
        match self.default_user.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Sets the configured default user.
    pub fn set_default_user(&self, name: &str) {
        match self.default_user.write() {
            Ok(mut g) => *g = name.to_string(),
            Err(p) => *p.into_inner() = name.to_string(),
        }
    }

    /// Whether there are no users at all.
    pub fn is_empty(&self) -> bool {
        self.read().users.is_empty()
    }

    /// One user.
    pub fn user(&self, name: &str) -> Option<User> {
        self.read().users.get(name).cloned()
    }

    /// All users, by name.
    pub fn users(&self) -> Vec<User> {
        self.read().users.values().cloned().collect()
    }

    /// Adds or replaces a user. Call through `Core::put_user` to persist it.
    pub(crate) fn put_user(&self, user: User) -> Result<(), AccessError> {
        if user.name.is_empty() {
            return Err(AccessError::EmptyName);
        }
        validate_hash(&user.password_hash)?;
        self.write().users.insert(user.name.clone(), user);
        Ok(())
    }

    /// Removes a user and their permissions; false if there was none.
    pub(crate) fn delete_user(&self, name: &str) -> bool {
        let mut inner = self.write();
        inner.permissions.retain(|(u, _), _| u != name);
        inner.users.remove(name).is_some()
    }

    /// Sets a user's permissions in a vhost.
    pub(crate) fn set_permission(
        &self,
        user: &str,
        vhost: &str,
        permission: Permission,
    ) -> Result<(), AccessError> {
        let mut inner = self.write();
        if !inner.users.contains_key(user) {
            return Err(AccessError::NoUser(user.to_string()));
        }
        inner
            .permissions
            .insert((user.to_string(), vhost.to_string()), Arc::new(permission));
        Ok(())
    }

    /// Removes a user's permissions in a vhost; false if there were none.
    pub(crate) fn clear_permission(&self, user: &str, vhost: &str) -> bool {
        self.write()
            .permissions
            .remove(&(user.to_string(), vhost.to_string()))
            .is_some()
    }

    /// Removes every permission in a vhost (the vhost is being deleted).
    pub(crate) fn clear_vhost(&self, vhost: &str) {
        self.write().permissions.retain(|(_, v), _| v != vhost);
    }

    /// A user's permissions in a vhost (None: no access to it).
    pub fn permission(&self, user: &str, vhost: &str) -> Option<Arc<Permission>> {
        self.read()
            .permissions
            .get(&(user.to_string(), vhost.to_string()))
            .cloned()
    }

    /// All permissions: (user, vhost, permission), sorted.
    pub fn permissions(&self) -> Vec<(String, String, Arc<Permission>)> {
        self.read()
            .permissions
            .iter()
            .map(|((u, v), p)| (u.clone(), v.clone(), p.clone()))
            .collect()
    }

    /// Checks a password login from `ip`. The hash is verified on a blocking thread (argon2
    /// is slow on purpose).
    pub async fn authenticate(
        &self,
        name: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<User, LoginRefused> {
        let user = self.user(name).ok_or(LoginRefused::BadCredentials)?;
        if !self.verified.contains(name, &user.password_hash, password) {
            // Never closed, so this waits for a permit, held for the check; looked up again
            // once we have it (a login of the same user may have just been checked).
            let _permit = self.verifying.0.acquire().await;
            if !self.verified.contains(name, &user.password_hash, password) {
                let hash = user.password_hash.clone();
                let pw = password.to_string();
                let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &pw))
                    .await
                    .unwrap_or(false);
                if !ok {
                    return Err(LoginRefused::BadCredentials);
                }
                self.verified.insert(name, &user.password_hash, password);
            }
        }
        if !loopback_allowed(name, ip) {
            return Err(LoginRefused::LoopbackOnly);
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_and_verify() {
        let a = hash_password("secret").expect("hash");
        let b = hash_password("secret").expect("hash");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(!a.contains("secret"));
        assert!(verify_password(&a, "secret"));
        assert!(!verify_password(&a, "Secret"));
        assert!(!verify_password("", "secret"));
        assert!(!verify_password("not a hash", "secret"));
        assert!(validate_hash(&a).is_ok());
        assert!(validate_hash("$sha256$abc").is_err());
    }

    #[test]
    fn guest_only_from_loopback() {
        let remote: IpAddr = "192.0.2.7".parse().expect("ip");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert!(loopback_allowed("guest", "127.0.0.1".parse().expect("ip")));
        assert!(loopback_allowed("guest", "::1".parse().expect("ip")));
        assert!(loopback_allowed("guest", mapped));
        assert!(!loopback_allowed("guest", remote));
        assert!(loopback_allowed("alice", remote));
    }

    #[tokio::test]
    async fn authenticate_checks_password_then_loopback() {
        let ac = AccessControl::default();
        for name in ["guest", "alice"] {
            ac.put_user(User {
                name: name.into(),
                password_hash: hash_password("pw").expect("hash"),
                tags: vec![],
            })
            .expect("put");
        }
        let remote: IpAddr = "192.0.2.7".parse().expect("ip");
        let local: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(ac.authenticate("guest", "pw", local).await.is_ok());
        assert_eq!(
            ac.authenticate("guest", "pw", remote).await,
            Err(LoginRefused::LoopbackOnly)
        );
        assert_eq!(
            ac.authenticate("guest", "bad", remote).await,
            Err(LoginRefused::BadCredentials)
        );
        assert!(ac.authenticate("alice", "pw", remote).await.is_ok());
        assert_eq!(
            ac.authenticate("bob", "pw", local).await,
            Err(LoginRefused::BadCredentials)
        );
    }

    #[tokio::test]
    async fn remembered_logins_follow_password_changes() {
        let ac = AccessControl::default();
        let user = |pw: &str| User {
            name: "alice".into(),
            password_hash: hash_password(pw).expect("hash"),
            tags: vec![],
        };
        ac.put_user(user("old")).expect("put");
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        assert!(ac.authenticate("alice", "old", ip).await.is_ok());
        assert!(
            ac.authenticate("alice", "old", ip).await.is_ok(),
            "remembered"
        );
        assert_eq!(
            ac.authenticate("alice", "other", ip).await,
            Err(LoginRefused::BadCredentials),
            "a wrong password is not taken for the remembered one"
        );
        ac.put_user(user("new")).expect("change password");
        assert_eq!(
            ac.authenticate("alice", "old", ip).await,
            Err(LoginRefused::BadCredentials),
            "the remembered login dies with the old hash"
        );
        assert!(ac.authenticate("alice", "new", ip).await.is_ok());
        assert!(ac.delete_user("alice"));
        assert_eq!(
            ac.authenticate("alice", "new", ip).await,
            Err(LoginRefused::BadCredentials),
            "a deleted user cannot log in from memory"
        );
    }

    #[test]
    fn permissions_match_like_rabbitmq() {
        let p = Permission::new("^amq\\.gen-.*", ".*", "").expect("compile");
        assert!(p.allows(Access::Configure, "amq.gen-abc"));
        assert!(!p.allows(Access::Configure, "orders"));
        assert!(p.allows(Access::Write, "orders"));
        assert!(!p.allows(Access::Read, "orders"), "empty matches nothing");
        assert!(Permission::new("(", ".*", ".*").is_err());
        let ac = AccessControl::default();
        assert_eq!(
            ac.set_permission("nobody", "/", Permission::all()).err(),
            Some(AccessError::NoUser("nobody".into()))
        );
    }
}
