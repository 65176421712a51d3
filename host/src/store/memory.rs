//! The in-memory backend: a `DashMap` shared by all task threads of one host.
//!
//! DashMap shards its locks, so tasks on different threads rarely wait for each
//! other. An expired entry reads as none at once; the memory it holds is given
//! back by a purge thread the store owns (like mini-redis's purge task): once
//! a second it walks the map shard by shard, off the task threads, and stops
//! when the last handle to the store is dropped.
//!
//! The store is bounded twice, by entries (`--store-max-entries`) and by bytes
//! (`--store-max-bytes`: keys, values and a fixed overhead per entry). When a
//! write finds it full, it evicts (unless `--store-eviction none`): entries
//! that nobody has used since they were written, oldest first. A flood of new
//! sessions from clients that never come back is exactly such entries, while
//! a visitor's session is read again on the visitor's next request, which
//! protects it; so a flood evicts itself, not the sessions in use (Redis's LFU
//! policies rest on the same observation). The candidates wait in a ring in
//! the order they were written; only when the ring holds no candidate is a
//! write refused with [`StoreError::Full`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use super::{Backend, Eviction, Limits, StoreError};

/// How often the purge thread frees expired entries.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(1);

/// Bytes counted for an entry beyond its key and value: the map's slot, the
/// entry's fields, the allocations' headers, the key's copy in the ring.
pub const ENTRY_OVERHEAD: usize = 128;

/// How often a write that found no room makes room and tries again: room
/// made can be taken by another task's write before this one retries.
const ROOM_ATTEMPTS: usize = 4;

/// Shards of the map: more shards make each purge step (one shard under its
/// lock) shorter, and tasks meet on a lock less often.
const SHARDS: usize = 64;

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
    /// Bytes counted for the entries, as [`entry_size`] counts them.
    bytes: AtomicUsize,
    limits: Limits,
    /// Entries written and not yet used, oldest first: the eviction
    /// candidates. An item whose entry was used, replaced or removed since is
    /// skipped when it comes up. At most `max_entries` items.
    unused: Mutex<VecDeque<Candidate>>,
    /// The serial number of the next new entry.
    next_serial: AtomicU64,
    /// Entries evicted so far.
    evicted: AtomicU64,
}

#[derive(Debug)]
struct Candidate {
    key: String,
    serial: u64,
}

#[derive(Debug)]
struct Entry {
    value: String,
    expires_at: Option<Instant>,
    /// Tells this entry from a later one under the same key.
    serial: u64,
    /// Whether it was read, touched or changed since it was first written.
    used: AtomicBool,
}

impl Entry {
    fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    fn mark_used(&self) {
        // Read first: most entries on the request path are used already, and
        // a load does not take the cache line away from other threads.
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }
}

/// The bytes an entry is counted as.
fn entry_size(key: &str, value: &str) -> usize {
    key.len()
        .saturating_mul(2)
        .saturating_add(value.len())
        .saturating_add(ENTRY_OVERHEAD)
}

impl MemoryStore {
    /// A new, empty store, with its purge thread.
    pub fn new(limits: Limits) -> Self {
        let store = MemoryStore {
            shared: Arc::new(Shared {
                entries: DashMap::with_shard_amount(SHARDS),
                len: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
                limits,
                unused: Mutex::new(VecDeque::new()),
                next_serial: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
            }),
        };
        let shared = Arc::downgrade(&store.shared);
        let spawned = std::thread::Builder::new()
            .name("store-purge".into())
            .spawn(move || purge_until_dropped(&shared));
        if let Err(e) = spawned {
            tracing::warn!(
                "cannot start the store's purge thread: {e}; expired entries stay until replaced"
            );
        }
        store
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
            .map(|entry| {
                entry.mark_used();
                entry.value.clone()
            }))
    }

    /// Stores `value` under `key`, expiring after `ttl` if one is given.
    pub fn set(&self, key: String, value: String, ttl: Option<Duration>) -> Result<(), StoreError> {
        self.shared.limits.check_entry(&key, &value)?;
        // Moved into the change, and handed back if it found no room, so the
        // retry needs no copy.
        let value = std::cell::Cell::new(Some(value));
        self.update(
            key,
            |_, now| {
                let value = value.take().unwrap_or_default();
                Ok((Change::Put(value, expiry(now, ttl)), ()))
            },
            |change| {
                if let Change::Put(returned, _) = change {
                    value.set(Some(returned));
                }
            },
        )
    }

    /// Removes `key`; a missing key is not an error.
    pub fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.shared.limits.check_key(key)?;
        if let Some((key, entry)) = self.shared.entries.remove(key) {
            self.release(entry_size(&key, &entry.value));
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
                entry.mark_used();
                true
            }
            _ => false,
        })
    }

    /// Drops every expired entry and returns how many there were. The purge
    /// thread does this every [`PURGE_INTERVAL`]; it walks one shard at a
    /// time under a read lock, so no task waits for more than a shard's
    /// worth of it, and none runs it.
    pub fn purge_expired(&self) -> usize {
        let now = Instant::now();
        // DashMap's iterator holds one shard's read lock at a time.
        let expired: Vec<String> = self
            .shared
            .entries
            .iter()
            .filter(|item| item.value().is_expired(now))
            .map(|item| item.key().clone())
            .collect();
        let mut purged = 0;
        for key in expired {
            if let Some((key, entry)) = self
                .shared
                .entries
                .remove_if(&key, |_, entry| entry.is_expired(now))
            {
                self.release(entry_size(&key, &entry.value));
                purged += 1;
            }
        }
        purged
    }

    /// How many entries are held, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        self.shared.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the entries are counted as (see `--store-max-bytes`).
    pub fn bytes(&self) -> usize {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// How many entries were evicted to make room.
    pub fn evicted(&self) -> u64 {
        self.shared.evicted.load(Ordering::Relaxed)
    }

    /// Counts `room` if both limits allow it.
    fn reserve(&self, room: Room) -> Option<Reservation<'_>> {
        let len = &self.shared.len;
        if room.entries > 0
            && len.fetch_add(room.entries, Ordering::Relaxed) >= self.shared.limits.max_entries
        {
            len.fetch_sub(room.entries, Ordering::Relaxed);
            return None;
        }
        let bytes = &self.shared.bytes;
        let before = bytes.fetch_add(room.bytes, Ordering::Relaxed);
        if before.saturating_add(room.bytes) > self.shared.limits.max_bytes {
            bytes.fetch_sub(room.bytes, Ordering::Relaxed);
            len.fetch_sub(room.entries, Ordering::Relaxed);
            return None;
        }
        Some(Reservation {
            store: self,
            room: Some(room),
        })
    }

    /// Uncounts one entry of `size` bytes.
    fn release(&self, size: usize) {
        self.shared.len.fetch_sub(1, Ordering::Relaxed);
        self.shared.bytes.fetch_sub(size, Ordering::Relaxed);
    }

    /// Evicts unused entries, oldest first, until `room` can be reserved,
    /// and reserves it for the caller (so no other write takes what was
    /// freed). Called with no shard lock held (it takes them).
    fn make_room(&self, room: Room) -> Option<Reservation<'_>> {
        if self.shared.limits.eviction == Eviction::None {
            return None;
        }
        let now = Instant::now();
        let mut unused = self
            .shared
            .unused
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(reservation) = self.reserve(room) {
                return Some(reservation);
            }
            let candidate = unused.pop_front()?;
            let evicted = self.shared.entries.remove_if(&candidate.key, |_, entry| {
                entry.serial == candidate.serial
                    && (!entry.used.load(Ordering::Relaxed) || entry.is_expired(now))
            });
            if let Some((key, entry)) = evicted {
                self.release(entry_size(&key, &entry.value));
                self.shared.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Adds a new entry to the eviction candidates (after its shard's lock
    /// is released: `make_room` takes the locks the other way round).
    fn note_unused(&self, key: String, serial: u64) {
        if self.shared.limits.eviction == Eviction::None {
            return;
        }
        let mut unused = self
            .shared
            .unused
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Bounded: the oldest candidate is forgotten (its entry stays, as if
        // used) rather than the ring outgrowing the store.
        if unused.len() >= self.shared.limits.max_entries {
            unused.pop_front();
        }
        unused.push_back(Candidate { key, serial });
    }

    /// Applies `change` to the live entry under `key` (none if there is none
    /// or it expired) while holding its shard's lock, which is what makes the
    /// atomic operations atomic. A full store makes room (see
    /// [`MemoryStore::make_room`]) and tries again, a few times at most;
    /// `give_back` receives a change that found no room, so the retry can
    /// reuse what it holds.
    fn update<T>(
        &self,
        key: String,
        mut change: impl FnMut(Option<&Entry>, Instant) -> Result<(Change, T), StoreError>,
        mut give_back: impl FnMut(Change),
    ) -> Result<T, StoreError> {
        let mut key = key;
        let mut reserved = None;
        for _ in 0..ROOM_ATTEMPTS {
            let room = match self.try_update(key, &mut change, reserved.take())? {
                Attempt::Done(result) => return Ok(result),
                Attempt::NoRoom {
                    key: returned,
                    room,
                    change,
                } => {
                    give_back(change);
                    key = returned;
                    room
                }
            };
            reserved = self.make_room(room);
            if reserved.is_none() {
                // Other tasks' new entries may be on their way into the ring.
                std::thread::yield_now();
            }
        }
        Err(StoreError::Full)
    }

    /// One try of [`MemoryStore::update`]; `reserved` is room made for it
    /// by eviction, used if it fits what the change needs and else given back.
    fn try_update<'a, T>(
        &'a self,
        key: String,
        change: &mut impl FnMut(Option<&Entry>, Instant) -> Result<(Change, T), StoreError>,
        reserved: Option<Reservation<'a>>,
    ) -> Result<Attempt<T>, StoreError> {
        let now = Instant::now();
        // A new entry (or one written over an expired one) becomes an
        // eviction candidate once its shard's lock is released.
        let (candidate, result) = match self.shared.entries.entry(key) {
            // (A reservation made for this write and not used is dropped,
            // and so given back, on every way out.)
            MapEntry::Occupied(mut occupied) => {
                let live = Some(occupied.get()).filter(|entry| !entry.is_expired(now));
                let was_live = live.is_some();
                let (what, result) = change(live, now)?;
                match what {
                    Change::Keep => {
                        if was_live {
                            occupied.get().mark_used();
                        }
                        (None, result)
                    }
                    Change::Put(value, expires_at) => {
                        let old = entry_size(occupied.key(), &occupied.get().value);
                        let new = entry_size(occupied.key(), &value);
                        if new > old {
                            let growth = Room {
                                entries: 0,
                                bytes: new - old,
                            };
                            match reserved
                                .filter(|r| r.is(growth))
                                .or_else(|| self.reserve(growth))
                            {
                                Some(reservation) => reservation.keep(),
                                None => {
                                    return Ok(Attempt::NoRoom {
                                        key: occupied.key().clone(),
                                        room: growth,
                                        change: Change::Put(value, expires_at),
                                    });
                                }
                            }
                        } else {
                            self.shared.bytes.fetch_sub(old - new, Ordering::Relaxed);
                        }
                        let entry = occupied.get_mut();
                        entry.value = value;
                        entry.expires_at = expires_at;
                        if was_live {
                            // Any write to a live entry is a use.
                            entry.used.store(true, Ordering::Relaxed);
                            (None, result)
                        } else {
                            // Written over an expired one: a new entry.
                            let serial = self.shared.next_serial.fetch_add(1, Ordering::Relaxed);
                            entry.serial = serial;
                            entry.used.store(false, Ordering::Relaxed);
                            (Some((occupied.key().clone(), serial)), result)
                        }
                    }
                    Change::Remove => {
                        let (key, entry) = occupied.remove_entry();
                        self.release(entry_size(&key, &entry.value));
                        (None, result)
                    }
                }
            }
            MapEntry::Vacant(vacant) => {
                let (what, result) = change(None, now)?;
                let Change::Put(value, expires_at) = what else {
                    return Ok(Attempt::Done(result));
                };
                let room = Room {
                    entries: 1,
                    bytes: entry_size(vacant.key(), &value),
                };
                match reserved
                    .filter(|r| r.is(room))
                    .or_else(|| self.reserve(room))
                {
                    Some(reservation) => reservation.keep(),
                    None => {
                        return Ok(Attempt::NoRoom {
                            key: vacant.into_key(),
                            room,
                            change: Change::Put(value, expires_at),
                        });
                    }
                }
                let serial = self.shared.next_serial.fetch_add(1, Ordering::Relaxed);
                let key = vacant.key().clone();
                vacant.insert(Entry {
                    value,
                    expires_at,
                    serial,
                    used: AtomicBool::new(false),
                });
                (Some((key, serial)), result)
            }
        };
        if let Some((key, serial)) = candidate {
            self.note_unused(key, serial);
        }
        Ok(Attempt::Done(result))
    }
}

/// The purge thread's loop: purge every [`PURGE_INTERVAL`] while the store lives.
fn purge_until_dropped(shared: &Weak<Shared>) {
    loop {
        std::thread::sleep(PURGE_INTERVAL);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let purged = MemoryStore { shared }.purge_expired();
        if purged > 0 {
            tracing::debug!(purged, "expired store entries purged");
        }
    }
}

/// What an atomic operation does to an entry.
enum Change {
    Keep,
    /// A value and its expiry.
    Put(String, Option<Instant>),
    Remove,
}

enum Attempt<T> {
    Done(T),
    /// The change would break a limit; `room` is what it needs.
    NoRoom {
        key: String,
        room: Room,
        change: Change,
    },
}

/// Room in the store: entries and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Room {
    entries: usize,
    bytes: usize,
}

/// Room counted for one write; given back when dropped unless kept.
struct Reservation<'a> {
    store: &'a MemoryStore,
    room: Option<Room>,
}

impl Reservation<'_> {
    fn is(&self, room: Room) -> bool {
        self.room == Some(room)
    }

    /// The write took the room: it stays counted.
    fn keep(mut self) {
        self.room = None;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(room) = self.room.take() {
            let shared = &self.store.shared;
            shared.len.fetch_sub(room.entries, Ordering::Relaxed);
            shared.bytes.fetch_sub(room.bytes, Ordering::Relaxed);
        }
    }
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
        self.update(
            key,
            |live, now| {
                Ok(match live {
                    Some(_) => (Change::Keep, false),
                    None => (Change::Put(value.clone(), expiry(now, ttl)), true),
                })
            },
            drop,
        )
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
        self.update(
            key,
            |live, now| {
                let holds_expected = live.map(|entry| entry.value.as_str()) == expected.as_deref();
                Ok(match (holds_expected, &new) {
                    (false, _) => (Change::Keep, false),
                    (true, None) => (Change::Remove, true),
                    (true, Some(value)) => (Change::Put(value.clone(), expiry(now, ttl)), true),
                })
            },
            drop,
        )
    }

    async fn increment(&self, key: String, delta: i64) -> Result<i64, StoreError> {
        self.shared.limits.check_key(&key)?;
        self.update(
            key,
            |live, _| {
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
                Ok((
                    Change::Put(sum.to_string(), live.and_then(|entry| entry.expires_at)),
                    sum,
                ))
            },
            drop,
        )
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
            eviction: Eviction::None,
            ..Limits::default()
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
        assert_eq!(
            store.read("old"),
            Ok(Some("v".into())),
            "used, but it expires"
        );
        std::thread::sleep(Duration::from_millis(20));
        store.set("new".into(), "v".into(), None).unwrap();
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_flood_of_unused_entries_evicts_itself_not_the_entries_in_use() {
        let store = MemoryStore::new(Limits {
            max_entries: 100,
            ..Limits::default()
        });
        for i in 0..10 {
            store.set(format!("visitor{i}"), "v".into(), None).unwrap();
            // The visitor comes back: the entry is in use.
            assert!(store.read(&format!("visitor{i}")).unwrap().is_some());
        }
        for i in 0..10_000 {
            store.set(format!("flood{i}"), "v".into(), None).unwrap();
        }
        for i in 0..10 {
            assert_eq!(store.read(&format!("visitor{i}")), Ok(Some("v".into())));
        }
        assert_eq!(store.len(), 100);
        assert_eq!(store.evicted(), 9_910);
        // The newest of the flood are there, the oldest evicted.
        assert!(store.read("flood9999").unwrap().is_some());
        assert!(store.read("flood0").unwrap().is_none());
    }

    #[tokio::test]
    async fn a_store_full_of_entries_in_use_refuses_new_ones() {
        let store = MemoryStore::new(Limits {
            max_entries: 3,
            ..Limits::default()
        });
        for key in ["a", "b"] {
            store.set(key.into(), "v".into(), None).unwrap();
            store.touch(key, None).unwrap();
        }
        // A counter is used by every increment after its first.
        Backend::increment(&store, "n".into(), 1).await.unwrap();
        Backend::increment(&store, "n".into(), 1).await.unwrap();
        assert_eq!(
            store.set("d".into(), "v".into(), None),
            Err(StoreError::Full)
        );
        assert_eq!(
            Backend::set_if_absent(&store, "d".into(), "v".into(), None).await,
            Err(StoreError::Full)
        );
        assert_eq!(store.len(), 3);
        assert_eq!(store.evicted(), 0);
    }

    #[test]
    fn the_byte_budget_holds_and_counts_what_it_should() {
        let one = entry_size("k000", "value");
        let store = MemoryStore::new(Limits {
            max_bytes: one * 10,
            ..Limits::default()
        });
        for i in 0..50 {
            store.set(format!("k{i:03}"), "value".into(), None).unwrap();
            assert!(store.bytes() <= one * 10);
        }
        assert_eq!(store.len(), 10);
        assert_eq!(store.bytes(), one * 10);
        // A value growing in place needs room too; shrinking gives it back.
        store.read("k049").unwrap();
        store.set("k049".into(), "v".repeat(5 + one), None).unwrap();
        assert!(store.bytes() <= one * 10, "{}", store.bytes());
        store.set("k049".into(), "value".into(), None).unwrap();
        store.remove("k049").unwrap();
        assert_eq!(store.bytes(), one * (store.len()));
        let strict = MemoryStore::new(Limits {
            max_bytes: one * 2,
            eviction: Eviction::None,
            ..Limits::default()
        });
        strict.set("k000".into(), "value".into(), None).unwrap();
        strict.set("k001".into(), "value".into(), None).unwrap();
        assert_eq!(
            strict.set("k002".into(), "value".into(), None),
            Err(StoreError::Full)
        );
    }

    #[test]
    fn the_store_purges_expired_entries_on_its_own_thread() {
        let store = store();
        for i in 0..100 {
            store
                .set(format!("k{i}"), "v".into(), Some(Duration::from_millis(10)))
                .unwrap();
        }
        store.set("stays".into(), "v".into(), None).unwrap();
        let deadline = Instant::now() + PURGE_INTERVAL * 5;
        while store.len() > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(store.len(), 1);
        assert_eq!(store.bytes(), entry_size("stays", "v"));
    }

    #[test]
    fn eviction_under_concurrent_writers_keeps_the_counts_exact() {
        let store = MemoryStore::new(Limits {
            max_entries: 100,
            ..Limits::default()
        });
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        store.set(format!("{t}:{i}"), "v".into(), None).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(store.len(), 100);
        assert_eq!(store.len(), store.shared.entries.len());
        let counted: usize = store
            .shared
            .entries
            .iter()
            .map(|item| entry_size(item.key(), &item.value().value))
            .sum();
        assert_eq!(store.bytes(), counted);
    }

    #[test]
    fn the_entry_limit_holds_under_concurrent_inserts() {
        let store = MemoryStore::new(Limits {
            max_entries: 100,
            eviction: Eviction::None,
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
