//! The session store every task shares: the bottom layer, which knows
//! nothing of guests or HTTP (`docs/architecture.md`, "Layers").
//!
//! One logical map of string keys to string values with optional TTLs. A write
//! that has returned is visible to every later read on every task; there is no
//! caching inside tasks. Limits on key size, value size and entry count protect
//! the host from a guest that writes without bound; breaking one is reported to
//! the guest as a [`StoreError`], never as a trap.
//!
//! Backends sit behind one small trait, [`Backend`], each in its own module
//! (as Spin's key-value factor has them): [`MemoryStore`], a DashMap shared by
//! the tasks of one process, and [`RedisStore`], which every host on one Redis
//! shares. Both pass the same conformance suite
//! (`tests/integration/store.rs`).

mod memory;
mod prefixed;
mod redis;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use self::redis::{ConnectError, RedisStore};
pub use memory::MemoryStore;
pub use prefixed::PrefixedStore;

/// TTLs longer than this (about 100 years) are treated as none by every
/// backend: Redis refuses expiry times past what it can represent, and no
/// session lives that long.
pub const LONGEST_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// What a session store backend does. Every operation is atomic with respect
/// to every other, on every task and every host sharing the backend; a TTL of
/// none means the entry never expires. Implementations write `async fn`; the
/// futures must be `Send` because tasks await them on any worker thread.
pub trait Backend: Send + Sync + 'static {
    /// The value under `key`, unless there is none or it has expired.
    fn read(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Stores `value` under `key`, replacing what was there.
    fn set(
        &self,
        key: String,
        value: String,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes `key`; a missing key is not an error.
    fn remove(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives `key` a new TTL without changing its value; false if there is no
    /// such key.
    fn touch(
        &self,
        key: &str,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores `value` only if `key` holds nothing; whether it did.
    fn set_if_absent(
        &self,
        key: String,
        value: String,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// If `key` holds `expected` (none: nothing), replaces it with `new`
    /// (none: removes it) and returns true; otherwise returns false.
    fn compare_and_swap(
        &self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Adds `delta` to the integer under `key` (missing: 0, created without a
    /// TTL; an existing TTL is kept) and returns the sum.
    fn increment(
        &self,
        key: String,
        delta: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

/// The store all tasks of a host share, whichever backend it is; cloning it
/// is cheap. An enum rather than `Arc<dyn Backend>`: a store call on the
/// request path is then a match, not a boxed future.
#[derive(Clone)]
pub enum SharedStore {
    Memory(MemoryStore),
    Redis(Arc<RedisStore>),
}

impl From<MemoryStore> for SharedStore {
    fn from(store: MemoryStore) -> Self {
        SharedStore::Memory(store)
    }
}

impl From<RedisStore> for SharedStore {
    fn from(store: RedisStore) -> Self {
        SharedStore::Redis(Arc::new(store))
    }
}

impl SharedStore {
    /// The backend's name, for metrics: `memory` or `redis`.
    pub fn backend(&self) -> &'static str {
        match self {
            SharedStore::Memory(_) => "memory",
            SharedStore::Redis(_) => "redis",
        }
    }

    /// Whether the store answers now (for readiness checks): the memory
    /// store always does; Redis is asked, within the store timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            SharedStore::Memory(_) => Ok(()),
            SharedStore::Redis(store) => store.ping().await,
        }
    }
}

/// Runs `$call` on whichever backend `$self` is, as `$store: &impl Backend`.
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            SharedStore::Memory($store) => $call.await,
            SharedStore::Redis($store) => {
                let $store: &RedisStore = $store;
                $call.await
            }
        }
    };
}

impl Backend for SharedStore {
    async fn read(&self, key: &str) -> Result<Option<String>, StoreError> {
        dispatch!(self, store => Backend::read(store, key))
    }

    async fn set(
        &self,
        key: String,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        dispatch!(self, store => Backend::set(store, key, value, ttl))
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        dispatch!(self, store => Backend::remove(store, key))
    }

    async fn touch(&self, key: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
        dispatch!(self, store => Backend::touch(store, key, ttl))
    }

    async fn set_if_absent(
        &self,
        key: String,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => Backend::set_if_absent(store, key, value, ttl))
    }

    async fn compare_and_swap(
        &self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => Backend::compare_and_swap(store, key, expected, new, ttl))
    }

    async fn increment(&self, key: String, delta: i64) -> Result<i64, StoreError> {
        dispatch!(self, store => Backend::increment(store, key, delta))
    }
}

/// Which backend to use. Its `Debug` hides any password.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// The in-process store shared by all tasks of this host.
    Memory,
    /// A Redis server shared by every host that names it (the URL as given).
    Redis(String),
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Memory => f.write_str("Memory"),
            StoreUrl::Redis(url) => f.debug_tuple("Redis").field(&redact_password(url)).finish(),
        }
    }
}

/// `redis://user:secret@host` as `redis://user:***@host`.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split_once(':').map_or("", |(user, _)| user);
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The store's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub url: StoreUrl,
    /// The limits as the guest sees them (a key limit without the prefix).
    pub limits: Limits,
    /// Put in front of every key the guest uses (`--store-prefix`).
    pub prefix: String,
    /// Longest one Redis call (and connecting) may take.
    pub timeout: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            url: StoreUrl::Memory,
            limits: Limits::default(),
            prefix: String::new(),
            timeout: Duration::from_secs(1),
        }
    }
}

/// Opens the store `settings` names, a memory store (which purges its
/// expired entries on a thread of its own) or a connection to Redis, as the
/// app sees it: under `--store-prefix`.
pub async fn open(settings: &StoreSettings) -> Result<PrefixedStore, ConnectError> {
    let limits = Limits {
        // The backend sees keys with the prefix in front.
        max_key_bytes: settings
            .limits
            .max_key_bytes
            .saturating_add(settings.prefix.len()),
        ..settings.limits
    };
    let backend = match &settings.url {
        StoreUrl::Memory => MemoryStore::new(limits).into(),
        StoreUrl::Redis(url) => {
            let store = RedisStore::connect(url, limits, settings.timeout).await?;
            tracing::info!("session store: Redis at {}", store.address());
            store.into()
        }
    };
    Ok(PrefixedStore::new(backend, &settings.prefix))
}

/// Size limits of a store, with safe defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Longest value, in bytes.
    pub max_value_bytes: usize,
    /// Most entries held at once (memory store).
    pub max_entries: usize,
    /// Most bytes the entries may take, keys and values and a fixed overhead
    /// per entry counted (memory store).
    pub max_bytes: usize,
    /// What a full memory store does with a write that needs room.
    pub eviction: Eviction,
}

/// What a full memory store does when a write needs room (Redis has its own
/// `maxmemory-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// `lru` (also spelled `unused-first`, its old name): evict entries
    /// nobody used since they were written, oldest first, and when there are
    /// none the least recently used. A write is refused as `Full` only if the
    /// entry alone is larger than the whole byte budget.
    Lru,
    /// `none`: evict nothing; a full store refuses new entries as `Full`
    /// (Redis's `noeviction`).
    None,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
            max_entries: 1_000_000,
            max_bytes: 512 * 1024 * 1024,
            eviction: Eviction::Lru,
        }
    }
}

/// Why a store operation failed; mirrors `store-error` in the WIT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("key is longer than {limit} bytes")]
    KeyTooLarge { limit: usize },
    #[error("value is longer than {limit} bytes")]
    ValueTooLarge { limit: usize },
    #[error("store is full")]
    Full,
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("the stored value is not an integer, or the sum is out of range")]
    NotAnInteger,
    #[error("the stored value is not UTF-8 text")]
    NotUtf8,
}

impl StoreError {
    /// How a store call can end, as a metric labels it: `ok`, then each
    /// error, in the order [`StoreError::result_index`] counts them.
    pub const RESULTS: [&'static str; 7] = [
        "ok",
        "key_too_large",
        "value_too_large",
        "full",
        "unavailable",
        "not_an_integer",
        "not_utf8",
    ];

    /// The index in [`StoreError::RESULTS`] of a call's `result`.
    pub fn result_index<T>(result: &Result<T, StoreError>) -> usize {
        match result {
            Ok(_) => 0,
            Err(StoreError::KeyTooLarge { .. }) => 1,
            Err(StoreError::ValueTooLarge { .. }) => 2,
            Err(StoreError::Full) => 3,
            Err(StoreError::Unavailable(_)) => 4,
            Err(StoreError::NotAnInteger) => 5,
            Err(StoreError::NotUtf8) => 6,
        }
    }
}

impl Limits {
    /// Checks a key against the limit.
    pub fn check_key(&self, key: &str) -> Result<(), StoreError> {
        if key.len() > self.max_key_bytes {
            return Err(StoreError::KeyTooLarge {
                limit: self.max_key_bytes,
            });
        }
        Ok(())
    }

    /// Checks a key and, if there is one, a value against the limits.
    pub fn check_optional_entry(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(value) => self.check_entry(key, value),
            None => self.check_key(key),
        }
    }

    /// Checks a key and a value against the limits.
    pub fn check_entry(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.check_key(key)?;
        if value.len() > self.max_value_bytes {
            return Err(StoreError::ValueTooLarge {
                limit: self.max_value_bytes,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_has_its_own_label() {
        let label =
            |result: Result<(), StoreError>| StoreError::RESULTS[StoreError::result_index(&result)];
        assert_eq!(label(Ok(())), "ok");
        assert_eq!(
            label(Err(StoreError::KeyTooLarge { limit: 1 })),
            "key_too_large"
        );
        assert_eq!(
            label(Err(StoreError::ValueTooLarge { limit: 1 })),
            "value_too_large"
        );
        assert_eq!(label(Err(StoreError::Full)), "full");
        assert_eq!(
            label(Err(StoreError::Unavailable(String::new()))),
            "unavailable"
        );
        assert_eq!(label(Err(StoreError::NotAnInteger)), "not_an_integer");
        assert_eq!(label(Err(StoreError::NotUtf8)), "not_utf8");
    }
}
