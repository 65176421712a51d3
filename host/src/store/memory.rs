//! The in-memory backend: a `DashMap` shared by all task threads of one host.
//!
//! DashMap shards its locks, so tasks on different threads rarely wait for each
//! other. An expired entry reads as none at once; the memory it holds is given
//! back by [`MemoryStore::purge_expired`], which the server runs periodically
//! in the background (like mini-redis's purge task), so dead sessions do not
//! pile up. A write that finds the store full purges too, but at most once
//! per [`FULL_PURGE_INTERVAL`]: a purge walks every entry, and a store kept
//! full by a flood of new sessions must answer "full" quickly, not walk a
//! million entries per refused write.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use super::{Backend, Limits, StoreError};

/// A cheaply clonable handle to one shared in-memory store.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    entries: DashMap<String, Entry>,
    /// Entries in `entries`, kept exactly under the shard locks so the entry
    /// limit holds even when tasks insert at the same time.
    len: AtomicUsize,
    limits: Limits,
    /// When the last purge started (none before the first).
    last_purge: Mutex<Option<Instant>>,
}

/// The least time between two purges made because a write found the store
/// full (the background purge runs on its own schedule).
pub const FULL_PURGE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Entry {
    value: String,
    expires_at: Option<Instant>,
}

impl Entry {
    fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

impl MemoryStore {
    pub fn new(limits: Limits) -> Self {
        MemoryStore {
            shared: Arc::new(Shared {
                entries: DashMap::new(),
                len: AtomicUsize::new(0),
                limits,
                last_purge: Mutex::new(None),
            }),
        }
    }

    /// The value under `key`, unless there is none or it has expired.
    pub fn read(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.shared.limits.check_key(key)?;
        let now = Instant::now();
        Ok(self
            .shared
            .entries
            .get(key)
            .filter(|entry| !entry.is_expired(now))
            .map(|entry| entry.value.clone()))
    }

    /// Stores `value` under `key`, expiring after `ttl` if one is given.
    pub fn set(&self, key: String, value: String, ttl: Option<Duration>) -> Result<(), StoreError> {
        self.shared.limits.check_entry(&key, &value)?;
        let entry = Entry {
            value,
            expires_at: expiry(Instant::now(), ttl),
        };
        match self.insert(key, entry) {
            Err((key, entry)) => {
                // Full: expired entries may still count; free them and retry once.
                if !self.purge_if_due() {
                    return Err(StoreError::Full);
                }
                self.insert(key, entry).map_err(|_| StoreError::Full)
            }
            Ok(()) => Ok(()),
        }
    }

    /// Removes `key`; a missing key is not an error.
    pub fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.shared.limits.check_key(key)?;
        if self.shared.entries.remove(key).is_some() {
            self.shared.len.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Gives `key` a new TTL without changing its value; false if it is
    /// missing or expired.
    pub fn touch(&self, key: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.shared.limits.check_key(key)?;
        let now = Instant::now();
        Ok(match self.shared.entries.get_mut(key) {
            Some(mut entry) if !entry.is_expired(now) => {
                entry.expires_at = expiry(now, ttl);
                true
            }
            _ => false,
        })
    }

    /// Purges expired entries for a write that found the store full, unless
    /// a purge started less than [`FULL_PURGE_INTERVAL`] ago; whether it did.
    fn purge_if_due(&self) -> bool {
        let now = Instant::now();
        {
            // Checked and claimed under one lock, so tasks that find the
            // store full at the same moment do not all walk it.
            let mut last = self
                .shared
                .last_purge
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| now.duration_since(at) < FULL_PURGE_INTERVAL) {
                return false;
            }
            *last = Some(now);
        }
        self.purge(now);
        true
    }

    /// Drops every expired entry and returns how many there were.
    pub fn purge_expired(&self) -> usize {
        let now = Instant::now();
        *self
            .shared
            .last_purge
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now);
        self.purge(now)
    }

    /// Drops every entry expired at `now`; how many there were.
    fn purge(&self, now: Instant) -> usize {
        let mut purged = 0;
        self.shared.entries.retain(|_, entry| {
            let keep = !entry.is_expired(now);
            if !keep {
                purged += 1;
            }
            keep
        });
        self.shared.len.fetch_sub(purged, Ordering::Relaxed);
        purged
    }

    /// How many entries are held, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        self.shared.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts or replaces; gives the entry back if a new key would break the
    /// entry limit.
    fn insert(&self, key: String, entry: Entry) -> Result<(), (String, Entry)> {
        match self.shared.entries.entry(key) {
            MapEntry::Occupied(mut occupied) => {
                occupied.insert(entry);
                Ok(())
            }
            MapEntry::Vacant(vacant) => {
                if !self.reserve_entry() {
                    return Err((vacant.into_key(), entry));
                }
                vacant.insert(entry);
                Ok(())
            }
        }
    }

    /// Counts one more entry if the limit allows it.
    fn reserve_entry(&self) -> bool {
        let len = &self.shared.len;
        if len.fetch_add(1, Ordering::Relaxed) >= self.shared.limits.max_entries {
            len.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Applies `change` to the live entry under `key` (none if there is none
    /// or it expired) while holding its shard's lock, which is what makes the
    /// atomic operations atomic. A full store purges expired entries (if a
    /// purge is due) and tries once more, as `set` does.
    fn update<T>(
        &self,
        key: String,
        mut change: impl FnMut(Option<&Entry>, Instant) -> Result<(Change, T), StoreError>,
    ) -> Result<T, StoreError> {
        let key = match self.try_update(key, &mut change)? {
            Attempt::Done(result) => return Ok(result),
            Attempt::NoRoom(key) if self.purge_if_due() => key,
            Attempt::NoRoom(_) => return Err(StoreError::Full),
        };
        match self.try_update(key, &mut change)? {
            Attempt::Done(result) => Ok(result),
            Attempt::NoRoom(_) => Err(StoreError::Full),
        }
    }

    fn try_update<T>(
        &self,
        key: String,
        change: &mut impl FnMut(Option<&Entry>, Instant) -> Result<(Change, T), StoreError>,
    ) -> Result<Attempt<T>, StoreError> {
        let now = Instant::now();
        match self.shared.entries.entry(key) {
            MapEntry::Occupied(mut occupied) => {
                let live = Some(occupied.get()).filter(|entry| !entry.is_expired(now));
                let (what, result) = change(live, now)?;
                match what {
                    Change::Keep => {}
                    Change::Put(entry) => {
                        occupied.insert(entry);
                    }
                    Change::Remove => {
                        occupied.remove();
                        self.shared.len.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Ok(Attempt::Done(result))
            }
            MapEntry::Vacant(vacant) => {
                let (what, result) = change(None, now)?;
                if let Change::Put(entry) = what {
                    if !self.reserve_entry() {
                        return Ok(Attempt::NoRoom(vacant.into_key()));
                    }
                    vacant.insert(entry);
                }
                Ok(Attempt::Done(result))
            }
        }
    }
}

/// What an atomic operation does to an entry.
enum Change {
    Keep,
    Put(Entry),
    Remove,
}

enum Attempt<T> {
    Done(T),
    /// A new entry would break the entry limit.
    NoRoom(String),
}

fn expiry(now: Instant, ttl: Option<Duration>) -> Option<Instant> {
    // A TTL past a century (or too large for an Instant) is as good as none,
    // as on Redis.
    ttl.filter(|ttl| *ttl <= super::LONGEST_TTL)
        .and_then(|ttl| now.checked_add(ttl))
}

impl Backend for MemoryStore {
    async fn read(&self, key: &str) -> Result<Option<String>, StoreError> {
        MemoryStore::read(self, key)
    }

    async fn set(
        &self,
        key: String,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        MemoryStore::set(self, key, value, ttl)
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        MemoryStore::remove(self, key)
    }

    async fn touch(&self, key: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
        MemoryStore::touch(self, key, ttl)
    }

    async fn set_if_absent(
        &self,
        key: String,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.shared.limits.check_entry(&key, &value)?;
        self.update(key, |live, now| {
            Ok(match live {
                Some(_) => (Change::Keep, false),
                None => {
                    let entry = Entry {
                        value: value.clone(),
                        expires_at: expiry(now, ttl),
                    };
                    (Change::Put(entry), true)
                }
            })
        })
    }

    async fn compare_and_swap(
        &self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.shared
            .limits
            .check_optional_entry(&key, new.as_deref())?;
        self.update(key, |live, now| {
            let holds_expected = live.map(|entry| entry.value.as_str()) == expected.as_deref();
            Ok(match (holds_expected, &new) {
                (false, _) => (Change::Keep, false),
                (true, None) => (Change::Remove, true),
                (true, Some(value)) => {
                    let entry = Entry {
                        value: value.clone(),
                        expires_at: expiry(now, ttl),
                    };
                    (Change::Put(entry), true)
                }
            })
        })
    }

    async fn increment(&self, key: String, delta: i64) -> Result<i64, StoreError> {
        self.shared.limits.check_key(&key)?;
        self.update(key, |live, _| {
            let current = match live {
                // Only the integer's own spelling, as Redis's INCRBY takes it
                // (not "+5", "007" or "-0").
                Some(entry) => entry
                    .value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| n.to_string() == entry.value)
                    .ok_or(StoreError::NotAnInteger)?,
                None => 0,
            };
            let sum = current.checked_add(delta).ok_or(StoreError::NotAnInteger)?;
            let entry = Entry {
                value: sum.to_string(),
                expires_at: live.and_then(|entry| entry.expires_at),
            };
            Ok((Change::Put(entry), sum))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> MemoryStore {
        MemoryStore::new(Limits::default())
    }

    #[test]
    fn a_write_on_one_thread_is_read_on_others() {
        let store = store();
        let writer = store.clone();
        std::thread::spawn(move || writer.set("sess:a".into(), "{}".into(), None).unwrap())
            .join()
            .unwrap();
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let reader = store.clone();
                std::thread::spawn(move || reader.read("sess:a").unwrap())
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.join().unwrap(), Some("{}".to_owned()));
        }
    }

    #[test]
    fn expired_entries_read_as_none_and_are_purged() {
        let store = store();
        store
            .set("short".into(), "v".into(), Some(Duration::from_millis(30)))
            .unwrap();
        store
            .set("long".into(), "v".into(), Some(Duration::from_secs(60)))
            .unwrap();
        store.set("forever".into(), "v".into(), None).unwrap();
        assert_eq!(store.read("short"), Ok(Some("v".into())));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(store.read("short"), Ok(None));
        assert_eq!(store.len(), 3, "expired entries stay until purged");
        assert_eq!(store.purge_expired(), 1);
        assert_eq!(store.len(), 2);
        assert_eq!(store.read("long"), Ok(Some("v".into())));
        assert_eq!(store.read("forever"), Ok(Some("v".into())));
    }

    #[test]
    fn limits_are_errors() {
        let store = MemoryStore::new(Limits {
            max_key_bytes: 4,
            max_value_bytes: 3,
            max_entries: 2,
        });
        assert_eq!(
            store.set("12345".into(), "v".into(), None),
            Err(StoreError::KeyTooLarge { limit: 4 })
        );
        assert_eq!(
            store.read("12345"),
            Err(StoreError::KeyTooLarge { limit: 4 })
        );
        assert_eq!(
            store.set("k".into(), "vvvv".into(), None),
            Err(StoreError::ValueTooLarge { limit: 3 })
        );
        store.set("a".into(), "1".into(), None).unwrap();
        store.set("b".into(), "2".into(), None).unwrap();
        assert_eq!(
            store.set("c".into(), "3".into(), None),
            Err(StoreError::Full)
        );
        // Replacing an existing key is not a new entry.
        store.set("a".into(), "9".into(), None).unwrap();
        store.remove("b").unwrap();
        store.set("c".into(), "3".into(), None).unwrap();
        assert_eq!(store.read("a"), Ok(Some("9".into())));
    }

    #[test]
    fn a_full_store_makes_room_from_expired_entries() {
        let store = MemoryStore::new(Limits {
            max_entries: 1,
            ..Limits::default()
        });
        store
            .set("old".into(), "v".into(), Some(Duration::from_millis(10)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        store.set("new".into(), "v".into(), None).unwrap();
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn a_store_kept_full_refuses_fast_and_purges_at_most_once_a_second() {
        let store = MemoryStore::new(Limits {
            max_entries: 1000,
            ..Limits::default()
        });
        for i in 0..1000 {
            store.set(format!("live{i}"), "v".into(), None).unwrap();
        }
        // The first refused write purges (nothing has expired), the next
        // ones within the interval do not walk the store again.
        assert_eq!(
            store.set("a".into(), "v".into(), None),
            Err(StoreError::Full)
        );
        let purged_at = store.shared.last_purge.lock().unwrap().unwrap();
        for i in 0..100 {
            assert_eq!(
                store.set(format!("b{i}"), "v".into(), None),
                Err(StoreError::Full)
            );
            assert_eq!(
                Backend::increment(&store, "n".into(), 1).await,
                Err(StoreError::Full)
            );
        }
        assert_eq!(store.shared.last_purge.lock().unwrap().unwrap(), purged_at);
        assert_eq!(store.len(), 1000);
    }

    #[test]
    fn the_entry_limit_holds_under_concurrent_inserts() {
        let store = MemoryStore::new(Limits {
            max_entries: 100,
            ..Limits::default()
        });
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .filter(|i| store.set(format!("{t}:{i}"), "v".into(), None).is_ok())
                        .count()
                })
            })
            .collect();
        let stored: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
        assert_eq!(stored, 100);
        assert_eq!(store.len(), 100);
    }
}
