//! The store as an app sees it: every key under the app's `--store-prefix`,
//! and the key limit without it. Made by `store::open`, so the prefix is
//! put in front of a key, and taken out of a limit, in this one place; the
//! guest's imports only forward, and no app can name a key outside its
//! prefix whatever it asks for.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use super::{Backend, SharedStore, StoreError};

/// A backend with a prefix in front of every key; cloning it is cheap.
#[derive(Clone)]
pub struct PrefixedStore {
    backend: SharedStore,
    prefix: Arc<str>,
}

impl PrefixedStore {
    /// `backend` with `prefix` in front of every key (none if empty). The
    /// backend's key limit must leave room for the prefix (`store::open`
    /// widens it by the prefix's length).
    pub fn new(backend: SharedStore, prefix: &str) -> PrefixedStore {
        PrefixedStore {
            backend,
            prefix: Arc::from(prefix),
        }
    }

    /// The store beneath, for what the operator asks of it (readiness, size).
    pub fn backend(&self) -> &SharedStore {
        &self.backend
    }

    /// The backend's key for the app's `key`.
    fn key(&self, key: String) -> String {
        if self.prefix.is_empty() {
            return key;
        }
        let mut prefixed = String::with_capacity(self.prefix.len() + key.len());
        prefixed.push_str(&self.prefix);
        prefixed.push_str(&key);
        prefixed
    }

    /// The backend's key for the app's borrowed `key` (not copied without a
    /// prefix: reads are on every session request's path).
    fn key_ref<'a>(&self, key: &'a str) -> Cow<'a, str> {
        if self.prefix.is_empty() {
            Cow::Borrowed(key)
        } else {
            Cow::Owned(self.key(key.to_owned()))
        }
    }

    /// A backend error as the app should see it: a key limit without the
    /// prefix it does not know of.
    fn unprefixed<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        result.map_err(|error| match error {
            StoreError::KeyTooLarge { limit } => StoreError::KeyTooLarge {
                limit: limit.saturating_sub(self.prefix.len()),
            },
            other => other,
        })
    }
}

impl Backend for PrefixedStore {
    async fn read(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = self.key_ref(key);
        self.unprefixed(self.backend.read(&key).await)
    }

    async fn set(
        &self,
        key: String,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.unprefixed(self.backend.set(self.key(key), value, ttl).await)
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        let key = self.key_ref(key);
        self.unprefixed(self.backend.remove(&key).await)
    }

    async fn touch(&self, key: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
        let key = self.key_ref(key);
        self.unprefixed(self.backend.touch(&key, ttl).await)
    }

    async fn set_if_absent(
        &self,
        key: String,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.unprefixed(self.backend.set_if_absent(self.key(key), value, ttl).await)
    }

    async fn compare_and_swap(
        &self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let result = self
            .backend
            .compare_and_swap(self.key(key), expected, new, ttl)
            .await;
        self.unprefixed(result)
    }

    async fn increment(&self, key: String, delta: i64) -> Result<i64, StoreError> {
        self.unprefixed(self.backend.increment(self.key(key), delta).await)
    }
}
