//! The store every task shares (and, with `--store redis://`, every host).
//!
//! A value written here is visible to the next read on any task: this is how
//! tasks with isolated memory share state, like JXcore's `jxcore.store.shared`.
//! Failures (a key or value over the host's limits, a full store, an
//! unavailable backend) come back as [`StoreError`], never as a trap.
//!
//! Tasks and hosts run at the same time, so a read followed by a write can
//! lose another task's write in between. [`set_if_absent`],
//! [`compare_and_swap`] and [`increment`] are single atomic steps (on Redis,
//! one command or script), like JXcore's `setIfNotExists` and `safeBlock`.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::wasmhost::app::store as raw;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The key is longer than the host allows (the limit, in bytes).
    KeyTooLarge(u32),
    /// The value is longer than the host allows (the limit, in bytes).
    ValueTooLarge(u32),
    /// The store holds as many entries as it may.
    Full,
    /// The backend could not be reached.
    Unavailable(String),
    /// [`increment`] found a value that is not an integer, or the sum would
    /// not fit in an `i64`.
    NotAnInteger,
    /// The stored value is not UTF-8 text (bytes written by another client
    /// of the same Redis).
    NotUtf8,
    /// A value read with [`get_json`] is not the JSON expected.
    Decode(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::KeyTooLarge(limit) => write!(f, "store key longer than {limit} bytes"),
            StoreError::ValueTooLarge(limit) => write!(f, "store value longer than {limit} bytes"),
            StoreError::Full => f.write_str("store is full"),
            StoreError::Unavailable(why) => write!(f, "store unavailable: {why}"),
            StoreError::NotAnInteger => {
                f.write_str("stored value is not an integer, or the sum is out of range")
            }
            StoreError::NotUtf8 => f.write_str("stored value is not UTF-8 text"),
            StoreError::Decode(why) => write!(f, "stored value is not the JSON expected: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<raw::StoreError> for StoreError {
    fn from(error: raw::StoreError) -> Self {
        match error {
            raw::StoreError::KeyTooLarge(limit) => StoreError::KeyTooLarge(limit),
            raw::StoreError::ValueTooLarge(limit) => StoreError::ValueTooLarge(limit),
            raw::StoreError::StoreFull => StoreError::Full,
            raw::StoreError::Unavailable(why) => StoreError::Unavailable(why),
            raw::StoreError::NotAnInteger => StoreError::NotAnInteger,
            raw::StoreError::NotUtf8 => StoreError::NotUtf8,
        }
    }
}

/// The value under `key`, if there is one and it has not expired.
pub fn get(key: &str) -> Result<Option<String>, StoreError> {
    Ok(raw::store_read(key)?)
}

/// Stores `value` under `key`; with `ttl` it expires that long from now.
pub fn set(key: &str, value: &str, ttl: Option<Duration>) -> Result<(), StoreError> {
    Ok(raw::store_set(key, value, ttl.map(millis))?)
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// Removes `key` (a missing key is fine).
pub fn remove(key: &str) -> Result<(), StoreError> {
    Ok(raw::store_remove(key)?)
}

/// Gives `key` a new TTL (none: no expiry) without changing its value;
/// false if there is no such key.
pub fn touch(key: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
    Ok(raw::store_touch(key, ttl.map(millis))?)
}

/// Stores `value` under `key` only if the key holds nothing (or expired):
/// true if this call stored it, false if the key was taken. Of many tasks and
/// hosts racing for one key, exactly one gets true.
pub fn set_if_absent(key: &str, value: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
    Ok(raw::store_set_if_absent(key, value, ttl.map(millis))?)
}

/// If `key` holds `expected` (none: holds nothing), replaces it with `new`
/// (none: removes it; `ttl` as in [`set`]) and returns true; otherwise
/// changes nothing and returns false, and the caller reads again and retries.
pub fn compare_and_swap(
    key: &str,
    expected: Option<&str>,
    new: Option<&str>,
    ttl: Option<Duration>,
) -> Result<bool, StoreError> {
    Ok(raw::store_compare_and_swap(
        key,
        expected,
        new,
        ttl.map(millis),
    )?)
}

/// Adds `delta` (may be negative) to the integer under `key` and returns the
/// new value. A missing key counts as 0 and is created without a TTL; an
/// existing TTL is kept (give a counter one with [`touch`]).
pub fn increment(key: &str, delta: i64) -> Result<i64, StoreError> {
    Ok(raw::store_increment(key, delta)?)
}

/// [`get`], decoding the value from JSON.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, StoreError> {
    get(key)?
        .map(|text| serde_json::from_str(&text).map_err(|e| StoreError::Decode(e.to_string())))
        .transpose()
}

/// [`set`], encoding the value as JSON.
pub fn set_json<T: Serialize + ?Sized>(
    key: &str,
    value: &T,
    ttl: Option<Duration>,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(value).map_err(|e| StoreError::Decode(e.to_string()))?;
    set(key, &text, ttl)
}
