//! `wasi:keyvalue` (0.2.0-draft2: `store`, `atomics`, `batch`) on the app's
//! shared store, so a standard component's data is shared by every task and
//! every host on one Redis, as `wasmhost:app/store`'s is.
//!
//! A bucket is a namespace of the app's keys (under `--store-prefix` like
//! every key): `default` is the app's keys as they are, the ones
//! `wasmhost:app/store` and express-session see; any other bucket `name`
//! holds its keys under `name:`. Buckets are names, not boundaries: one app
//! reaches all of its own data either way, and nothing of another app's.
//!
//! The store holds text (express-session and connect-redis share it), so a
//! value must be UTF-8: other bytes are refused with `other`. The store
//! cannot list keys (a shared Redis must deny its tenants `SCAN`), so
//! `list-keys` fails with `other`. A batch holds at most [`MAX_BATCH`]
//! keys and returns at most [`MAX_BATCH_BYTES`] of values: a host call
//! meets no deadline check, so its work is bounded by its input.

use wasmtime::component::Resource;

use crate::guest::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::guest::bindings::{Bucket, Cas};
use crate::guest::state::TaskState;
use crate::store::{Backend, StoreError};

/// Most keys one batch call may name.
pub const MAX_BATCH: usize = 1000;

/// Most bytes of values one `get-many` may return.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Longest bucket name.
const MAX_BUCKET_NAME: usize = 64;

/// The bucket whose keys are the app's keys as they are.
const DEFAULT_BUCKET: &str = "default";

type KvResult<T> = wasmtime::Result<Result<T, store::Error>>;

fn other(why: impl Into<String>) -> store::Error {
    store::Error::Other(why.into())
}

impl From<StoreError> for store::Error {
    fn from(error: StoreError) -> Self {
        other(error.to_string())
    }
}

/// `value` as the store's text, or the error the guest gets.
fn text(value: Vec<u8>) -> Result<String, store::Error> {
    String::from_utf8(value)
        .map_err(|_| other("wasmhost's store holds UTF-8 text; the value is not UTF-8"))
}

/// Whether `name` may name a bucket: letters, digits, `_`, `-` and `.`.
fn valid_bucket(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_BUCKET_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl TaskState {
    /// The store key of `key` in `bucket`.
    fn bucket_key(&self, bucket: &Resource<Bucket>, key: &str) -> wasmtime::Result<String> {
        let namespace = &self.table.get(bucket)?.namespace;
        let mut full = String::with_capacity(namespace.len() + key.len());
        full.push_str(namespace);
        full.push_str(key);
        Ok(full)
    }

    /// Reads `key` (a store key), counted as `store-read` is.
    async fn kv_read(&mut self, key: &str) -> Result<Option<String>, store::Error> {
        let result = self.store().read(key).await;
        self.finish(|ops| &ops.read, result)
    }

    /// Stores `value` under `key` (a store key) without a TTL.
    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), store::Error> {
        let value = text(value)?;
        let result = self.store().set(key, value, None).await;
        self.finish(|ops| &ops.set, result)
    }

    /// Removes `key` (a store key).
    async fn kv_delete(&mut self, key: &str) -> Result<(), store::Error> {
        let result = self.store().remove(key).await;
        self.finish(|ops| &ops.remove, result)
    }
}

impl store::Host for TaskState {
    async fn open(&mut self, identifier: String) -> KvResult<Resource<Bucket>> {
        let namespace = if identifier == DEFAULT_BUCKET {
            String::new()
        } else if valid_bucket(&identifier) {
            format!("{identifier}:")
        } else {
            return Ok(Err(store::Error::NoSuchStore));
        };
        Ok(Ok(self.table.push(Bucket { namespace })?))
    }
}

impl store::HostBucket for TaskState {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<Option<Vec<u8>>> {
        let key = self.bucket_key(&bucket, &key)?;
        Ok(self.kv_read(&key).await.map(|v| v.map(String::into_bytes)))
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> KvResult<()> {
        let key = self.bucket_key(&bucket, &key)?;
        Ok(self.kv_set(key, value).await)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<()> {
        let key = self.bucket_key(&bucket, &key)?;
        Ok(self.kv_delete(&key).await)
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<bool> {
        let key = self.bucket_key(&bucket, &key)?;
        Ok(self.kv_read(&key).await.map(|v| v.is_some()))
    }

    async fn list_keys(
        &mut self,
        _bucket: Resource<Bucket>,
        _cursor: Option<String>,
    ) -> KvResult<store::KeyResponse> {
        Ok(Err(other(
            "wasmhost's store does not list keys (a shared Redis denies its tenants SCAN)",
        )))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for TaskState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> KvResult<i64> {
        let key = self.bucket_key(&bucket, &key)?;
        let result = self.store().increment(key, delta).await;
        Ok(self.finish(|ops| &ops.increment, result))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas { key, current } = self.table.delete(cas)?;
        let value = match text(value) {
            Ok(value) => value,
            Err(error) => return Ok(Err(atomics::CasError::StoreError(error))),
        };
        let result = self
            .store()
            .compare_and_swap(key.clone(), current, Some(value), None)
            .await;
        match self.finish(|ops| &ops.compare_and_swap, result) {
            Ok(true) => Ok(Ok(())),
            Ok(false) => match self.kv_read(&key).await {
                Ok(current) => {
                    let fresh = self.table.push(Cas { key, current })?;
                    Ok(Err(atomics::CasError::CasFailed(fresh)))
                }
                Err(error) => Ok(Err(atomics::CasError::StoreError(error))),
            },
            Err(error) => Ok(Err(atomics::CasError::StoreError(error))),
        }
    }
}

impl atomics::HostCas for TaskState {
    async fn new(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<Resource<Cas>> {
        let key = self.bucket_key(&bucket, &key)?;
        match self.kv_read(&key).await {
            Ok(current) => Ok(Ok(self.table.push(Cas { key, current })?)),
            Err(error) => Ok(Err(error)),
        }
    }

    async fn current(&mut self, cas: Resource<Cas>) -> KvResult<Option<Vec<u8>>> {
        let current = self.table.get(&cas)?.current.clone();
        Ok(Ok(current.map(String::into_bytes)))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for TaskState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        if keys.len() > MAX_BATCH {
            return Ok(Err(too_many(keys.len())));
        }
        let mut found = Vec::with_capacity(keys.len());
        let mut bytes = 0usize;
        for key in keys {
            let full = self.bucket_key(&bucket, &key)?;
            let value = match self.kv_read(&full).await {
                Ok(value) => value,
                Err(error) => return Ok(Err(error)),
            };
            bytes = bytes.saturating_add(value.as_ref().map_or(0, String::len));
            if bytes > MAX_BATCH_BYTES {
                return Ok(Err(other(format!(
                    "a get-many may return at most {MAX_BATCH_BYTES} bytes of values"
                ))));
            }
            found.push((key, value.map(String::into_bytes)));
        }
        Ok(Ok(found))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        if key_values.len() > MAX_BATCH {
            return Ok(Err(too_many(key_values.len())));
        }
        for (key, value) in key_values {
            let key = self.bucket_key(&bucket, &key)?;
            if let Err(error) = self.kv_set(key, value).await {
                return Ok(Err(error));
            }
        }
        Ok(Ok(()))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        if keys.len() > MAX_BATCH {
            return Ok(Err(too_many(keys.len())));
        }
        for key in keys {
            let key = self.bucket_key(&bucket, &key)?;
            if let Err(error) = self.kv_delete(&key).await {
                return Ok(Err(error));
            }
        }
        Ok(Ok(()))
    }
}

fn too_many(len: usize) -> store::Error {
    other(format!(
        "a batch may name at most {MAX_BATCH} keys, not {len}"
    ))
}
