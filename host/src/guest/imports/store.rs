//! `wasmhost:app/store`: the shared store, forwarded. The store is the app's
//! view of it (`store::PrefixedStore`: keys under `--store-prefix`, limits
//! without it); here each call is only counted and its error converted.

use std::time::Duration;

use crate::guest::bindings::wasmhost::app::store;
use crate::guest::state::TaskState;
use crate::metrics::{StoreOpCounter, StoreOps};
use crate::store::{Backend, PrefixedStore, StoreError};

impl TaskState {
    pub(super) fn store(&self) -> &PrefixedStore {
        &self.context.app.store
    }

    fn ops(&self) -> &StoreOps {
        &self.context.app.metrics.store
    }

    /// Counts the call in `counter`, and gives its result as the guest
    /// should see it (as this interface's error, or `wasi:keyvalue`'s).
    pub(super) fn finish<T, E: From<StoreError>>(
        &self,
        counter: fn(&StoreOps) -> &StoreOpCounter,
        result: Result<T, StoreError>,
    ) -> Result<T, E> {
        counter(self.ops()).count(StoreError::result_index(&result));
        result.map_err(E::from)
    }
}

fn ttl(ttl_ms: Option<u64>) -> Option<Duration> {
    ttl_ms.map(Duration::from_millis)
}

impl store::Host for TaskState {
    async fn store_read(&mut self, key: String) -> Result<Option<String>, store::StoreError> {
        let result = self.store().read(&key).await;
        self.finish(|ops| &ops.read, result)
    }

    async fn store_set(
        &mut self,
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    ) -> Result<(), store::StoreError> {
        let result = self.store().set(key, value, ttl(ttl_ms)).await;
        self.finish(|ops| &ops.set, result)
    }

    async fn store_remove(&mut self, key: String) -> Result<(), store::StoreError> {
        let result = self.store().remove(&key).await;
        self.finish(|ops| &ops.remove, result)
    }

    async fn store_touch(
        &mut self,
        key: String,
        ttl_ms: Option<u64>,
    ) -> Result<bool, store::StoreError> {
        let result = self.store().touch(&key, ttl(ttl_ms)).await;
        self.finish(|ops| &ops.touch, result)
    }

    async fn store_set_if_absent(
        &mut self,
        key: String,
        value: String,
        ttl_ms: Option<u64>,
    ) -> Result<bool, store::StoreError> {
        let result = self.store().set_if_absent(key, value, ttl(ttl_ms)).await;
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
            .compare_and_swap(key, expected, new, ttl(ttl_ms))
            .await;
        self.finish(|ops| &ops.compare_and_swap, result)
    }

    async fn store_increment(&mut self, key: String, delta: i64) -> Result<i64, store::StoreError> {
        let result = self.store().increment(key, delta).await;
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
