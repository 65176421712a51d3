//! What each task's wasmtime `Store` holds, and the host side of the WIT imports.
//!
//! One [`TaskState`] per instance: its WASI context (environment, clocks,
//! random, stdout/stderr into the log), its resource table, its task identity
//! and a handle to the store all tasks share. Following wasmtime's component
//! examples, each imported WIT interface gets one `Host` impl here.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::board::Board;
use crate::guest::bindings::wasmhost::app::{crypto, store, task};
use crate::guest_log::{Budget, GuestLog};
use crate::instance::MemoryLimiter;
use crate::limits::TaskLimits;
use crate::store::{Backend, Store, StoreError};

/// Most WASI resources (streams, pollables...) an instance may hold at once;
/// a guest that leaks handles gets an error from WASI, then a trap, instead
/// of growing the host's table without bound.
pub const MAX_RESOURCES: usize = 10_000;

/// Who a task is and what it shares; the same for every instance the task runs.
#[derive(Clone)]
pub struct TaskIdentity {
    pub id: u32,
    pub count: u32,
    /// Environment variables the guest sees (`--env`).
    pub env: Vec<(String, String)>,
    pub store: Store,
    /// Put in front of every store key the guest uses (`--store-prefix`).
    pub store_prefix: Arc<str>,
    pub limits: TaskLimits,
    /// Where the task marks itself busy, which also times its calls.
    pub board: Arc<Board>,
}

/// The data of one task's wasmtime `Store`.
pub struct TaskState {
    wasi: WasiCtx,
    table: ResourceTable,
    identity: TaskIdentity,
    limiter: MemoryLimiter,
}

impl TaskState {
    /// A fresh state for a new instance of the task `identity`.
    pub fn new(identity: TaskIdentity) -> Self {
        let log_budget = Budget::new(identity.id, identity.limits.guest_log);
        let wasi = WasiCtxBuilder::new()
            .envs(&identity.env)
            .stdout(GuestLog::stdout(&log_budget))
            .stderr(GuestLog::stderr(&log_budget))
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        TaskState {
            wasi,
            table,
            limiter: MemoryLimiter::new(identity.limits.max_memory),
            identity,
        }
    }

    pub fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }

    pub fn identity(&self) -> &TaskIdentity {
        &self.identity
    }
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl task::Host for TaskState {
    fn task_id(&mut self) -> u32 {
        self.identity.id
    }

    fn task_count(&mut self) -> u32 {
        self.identity.count
    }
}

impl crypto::Host for TaskState {
    fn hmac_sha256(&mut self, key: Vec<u8>, message: Vec<u8>) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(&message);
        mac.finalize().into_bytes().to_vec()
    }
}

impl TaskState {
    /// The store key for the guest's `key`: `--store-prefix` in front, so an
    /// app reaches only its own keys on a shared Redis, whatever it asks for.
    fn key(&self, key: String) -> String {
        let prefix = &self.identity.store_prefix;
        if prefix.is_empty() {
            return key;
        }
        let mut prefixed = String::with_capacity(prefix.len() + key.len());
        prefixed.push_str(prefix);
        prefixed.push_str(&key);
        prefixed
    }

    /// A store error as the guest should see it: a key limit without the
    /// prefix the guest does not know of.
    fn error(&self, error: StoreError) -> StoreError {
        match error {
            StoreError::KeyTooLarge { limit } => StoreError::KeyTooLarge {
                limit: limit.saturating_sub(self.identity.store_prefix.len()),
            },
            other => other,
        }
    }
}

impl store::Host for TaskState {
    async fn store_read(&mut self, key: String) -> Result<Option<String>, store::StoreError> {
        Ok(self
            .identity
            .store
            .read(&self.key(key))
            .await
            .map_err(|e| self.error(e))?)
    }

    async fn store_set(
        &mut self,
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    ) -> Result<(), store::StoreError> {
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(self
            .identity
            .store
            .set(self.key(key), value, ttl)
            .await
            .map_err(|e| self.error(e))?)
    }

    async fn store_remove(&mut self, key: String) -> Result<(), store::StoreError> {
        Ok(self
            .identity
            .store
            .remove(&self.key(key))
            .await
            .map_err(|e| self.error(e))?)
    }

    async fn store_touch(
        &mut self,
        key: String,
        ttl_ms: Option<u64>,
    ) -> Result<bool, store::StoreError> {
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(self
            .identity
            .store
            .touch(&self.key(key), ttl)
            .await
            .map_err(|e| self.error(e))?)
    }

    async fn store_set_if_absent(
        &mut self,
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    ) -> Result<bool, store::StoreError> {
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(self
            .identity
            .store
            .set_if_absent(self.key(key), value, ttl)
            .await
            .map_err(|e| self.error(e))?)
    }

    async fn store_compare_and_swap(
        &mut self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, store::StoreError> {
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(self
            .identity
            .store
            .compare_and_swap(self.key(key), expected, new, ttl)
            .await
            .map_err(|e| self.error(e))?)
    }

    async fn store_increment(&mut self, key: String, delta: i64) -> Result<i64, store::StoreError> {
        Ok(self
            .identity
            .store
            .increment(self.key(key), delta)
            .await
            .map_err(|e| self.error(e))?)
    }
}

impl From<StoreError> for store::StoreError {
    fn from(error: StoreError) -> Self {
        let limit = |bytes: usize| u32::try_from(bytes).unwrap_or(u32::MAX);
        match error {
            StoreError::KeyTooLarge { limit: bytes } => {
                store::StoreError::KeyTooLarge(limit(bytes))
            }
            StoreError::ValueTooLarge { limit: bytes } => {
                store::StoreError::ValueTooLarge(limit(bytes))
            }
            StoreError::Full => store::StoreError::StoreFull,
            StoreError::Unavailable(why) => store::StoreError::Unavailable(why),
            StoreError::NotAnInteger => store::StoreError::NotAnInteger,
            StoreError::NotUtf8 => store::StoreError::NotUtf8,
        }
    }
}
