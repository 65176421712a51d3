//! The session store every task shares (DESIGN.md section 5).
//!
//! One logical map of string keys to string values with optional TTLs. A write
//! that has returned is visible to every later read on every task; there is no
//! caching inside tasks. Limits on key size, value size and entry count protect
//! the host from a guest that writes without bound; breaking one is reported to
//! the guest as a [`StoreError`], never as a trap.

mod memory;

pub use memory::MemoryStore;

/// Size limits of a store, with safe defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Longest value, in bytes.
    pub max_value_bytes: usize,
    /// Most entries held at once (expired entries are purged before refusing).
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
            max_entries: 1_000_000,
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
