//! `wasmhost:app/store`: the shared store, with `--store-prefix` put in front
//! of every key by the host, so an app reaches only its own keys on a shared
//! Redis whatever it asks for.

use std::time::Duration;

use crate::guest::bindings::wasmhost::app::store;
use crate::guest::state::TaskState;
use crate::metrics::{StoreOpCounter, StoreOps, StoreResult};
use crate::store::{Backend, SharedStore, StoreError};

impl TaskState {
    fn store(&self) -> &SharedStore {
        &self.context.app.store
    }

    /// The store key for the guest's `key`.
    fn key(&self, key: String) -> String {
        let prefix = &self.context.app.store_prefix;
        if prefix.is_empty() {
            return key;
        }
        let mut prefixed = String::with_capacity(prefix.len() + key.len());
        prefixed.push_str(prefix);
        prefixed.push_str(&key);
        prefixed
    }

    fn ops(&self) -> &StoreOps {
        &self.context.app.metrics.store
    }

    /// Counts the call in `counter`, and gives its result as the guest
    /// should see it.
    fn finish<T>(
        &self,
        counter: fn(&StoreOps) -> &StoreOpCounter,
        result: Result<T, StoreError>,
    ) -> Result<T, store::StoreError> {
        counter(self.ops()).count(match &result {
            Ok(_) => StoreResult::Ok,
            Err(StoreError::KeyTooLarge { .. }) => StoreResult::KeyTooLarge,
            Err(StoreError::ValueTooLarge { .. }) => StoreResult::ValueTooLarge,
            Err(StoreError::Full) => StoreResult::Full,
            Err(StoreError::Unavailable(_)) => StoreResult::Unavailable,
            Err(StoreError::NotAnInteger) => StoreResult::NotAnInteger,
            Err(StoreError::NotUtf8) => StoreResult::NotUtf8,
        });
        result.map_err(|e| self.error(e))
    }

    /// A store error as the guest should see it: a key limit without the
    /// prefix the guest does not know of.
    fn error(&self, error: StoreError) -> store::StoreError {
        match error {
            StoreError::KeyTooLarge { limit } => StoreError::KeyTooLarge {
                limit: limit.saturating_sub(self.context.app.store_prefix.len()),
            },
            other => other,
        }
        .into()
    }
}

fn ttl(ttl_ms: Option<u64>) -> Option<Duration> {
    ttl_ms.map(Duration::from_millis)
}

impl store::Host for TaskState {
    async fn store_read(&mut self, key: String) -> Result<Option<String>, store::StoreError> {
        let result = self.store().read(&self.key(key)).await;
        self.finish(|ops| &ops.read, result)
    }

    async fn store_set(
        &mut self,
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    ) -> Result<(), store::StoreError> {
        let result = self.store().set(self.key(key), value, ttl(ttl_ms)).await;
        self.finish(|ops| &ops.set, result)
    }

    async fn store_remove(&mut self, key: String) -> Result<(), store::StoreError> {
        let result = self.store().remove(&self.key(key)).await;
        self.finish(|ops| &ops.remove, result)
    }

    async fn store_touch(
        &mut self,
        key: String,
        ttl_ms: Option<u64>,
    ) -> Result<bool, store::StoreError> {
        let result = self.store().touch(&self.key(key), ttl(ttl_ms)).await;
        self.finish(|ops| &ops.touch, result)
    }

    async fn store_set_if_absent(
        &mut self,
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    ) -> Result<bool, store::StoreError> {
        let result = self
            .store()
            .set_if_absent(self.key(key), value, ttl(ttl_ms))
            .await;
        self.finish(|ops| &ops.set_if_absent, result)
    }

    async fn store_compare_and_swap(
        &mut self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, store::StoreError> {
        let result = self
            .store()
            .compare_and_swap(self.key(key), expected, new, ttl(ttl_ms))
            .await;
        self.finish(|ops| &ops.compare_and_swap, result)
    }

    async fn store_increment(&mut self, key: String, delta: i64) -> Result<i64, store::StoreError> {
        let result = self.store().increment(self.key(key), delta).await;
        self.finish(|ops| &ops.increment, result)
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
