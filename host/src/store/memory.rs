//! The in-memory backend: a `DashMap` shared by all task threads of one host.
//!
//! It owns the entries, their counts, and the order in which a full store
//! evicts them. DashMap shards its locks, so tasks on different threads rarely
//! wait for each other. An expired entry reads as none at once; the memory it
//! holds is given back by a purge thread the store owns (like mini-redis's
//! purge task): once a second it walks the map shard by shard, off the task
//! threads, and stops when the last handle to the store is dropped.
//!
//! The store is bounded twice, by entries (`--store-max-entries`) and by bytes
//! (`--store-max-bytes`: keys, values and a fixed overhead per entry). When a
//! write finds it full, it evicts (unless `--store-eviction none`, which
//! refuses the write as [`StoreError::Full`]), in this order:
//!
//! 1. entries nobody has used since they were written, oldest first. A flood
//!    of new sessions from clients that never come back is exactly such
//!    entries, while a visitor's session is read again on the visitor's next
//!    request; so such a flood evicts itself, not the sessions in use;
//! 2. then the least recently used entry. A flood whose clients do come back
//!    (create a session, use it once, never again) ages out as its sessions
//!    stop being used, while a visitor who keeps coming back stays the most
//!    recent; so no flood can lock new visitors out.
//!
//! A full store therefore refuses a write only under `--store-eviction none`,
//! or when the entry alone is larger than the whole byte budget.
//!
//! Recency is kept by a coarse clock that ticks every few new entries (about
//! [`TICKS_PER_FILL`] times while the store fills once): reading an entry
//! stores the tick in it, one relaxed atomic store and only when the tick
//! changed, and takes no lock beyond the map's shard read lock. The eviction
//! order is a queue ranked by (last use, write order), with never-used entries
//! ranked first; a read does not move an entry in it. Instead, when eviction
//! comes to an entry used since it was ranked, it ranks it again by its latest
//! use and goes on, so what it evicts is the least recently used, to a tick.
//! The queue holds a copy of each entry's key (counted in the entry's bytes);
//! the copy of a key whose entry was removed (or purged, or written over once
//! expired) stays until the queue drops it, and counts against the byte budget
//! meanwhile. The queue drops such keys when it reaches them, and all of them
//! at once when they come to outnumber the live entries.
//!
//! Compared with Redis's `maxmemory-policy`: Redis's `allkeys-lru` samples a
//! few keys per eviction (`maxmemory-samples`, 5 by default) and evicts the
//! least recent of them, which costs no more than a 24-bit clock in each key
//! and a small pool of candidates, but is approximate, and ranks a key
//! written once and never read by its write; `allkeys-lfu` is what protects
//! keys used often from keys written once. This store evicts the exact least
//! recently used entry (to a tick of its clock) and puts never-used entries
//! first (the observation LFU rests on, without its counters), at the price
//! of one queue item per entry and a mutex taken by every new entry and every
//! write that needs room, never by a read. Ranking again is lazy: an entry is
//! ranked again at most once per eviction that reaches it, so the first
//! eviction in a store whose entries were all used since they were written
//! ranks them all again, once. `--store-eviction none` is Redis's
//! `noeviction`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use super::{Backend, Eviction, Limits, StoreError};

/// How often the purge thread frees expired entries.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(1);

/// Bytes counted for an entry beyond its key and value: the map's slot, the
/// entry's fields, the allocations' headers, the key's copy in the eviction
/// queue and its item there.
pub const ENTRY_OVERHEAD: usize = 128;

/// Bytes counted for a removed entry's key still in the eviction queue beyond
/// the key itself: its item there.
const QUEUED_OVERHEAD: usize = 64;

/// How often a write that found no room makes room and tries again: room
/// made can be taken by another task's write before this one retries.
const ROOM_ATTEMPTS: usize = 4;

/// Most entries one write that needs room ranks again by their latest use
/// before it evicts the next candidate regardless (see `make_room`).
const MAX_RERANKS: usize = 256;

/// Shards of the map: more shards make each purge step (one shard under its
/// lock) shorter, and tasks meet on a lock less often.
const SHARDS: usize = 64;

/// About how many times the recency clock ticks while the store fills up once
/// (with entries of [`ENTRY_OVERHEAD`] bytes and small keys and values): fine
/// enough to rank entries by their last use, coarse enough that an entry read
/// by every request is written to only every so many new entries.
const TICKS_PER_FILL: usize = 1024;

/// The tick of an entry nobody has used since it was written. The clock
/// starts one later.
const NEVER: u64 = 0;

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
    /// The eviction order (without eviction, always empty). Its lock is taken
    /// before a shard's, never while one is held.
    queue: Mutex<Queue>,
    /// Items of `queue` whose entries are gone other than by eviction, and
    /// the bytes they count against the budget ([`queued_size`]). Counted
    /// under the shard lock of the removal, so whoever finds such an item in
    /// the queue later (under the same lock) sees it counted.
    stale: AtomicUsize,
    stale_bytes: AtomicUsize,
    /// The recency clock, in ticks from 1 ([`NEVER`] is before it); on a
    /// cache line of its own, since every read loads it and every new entry
    /// writes the counters around it.
    clock: CacheLine<AtomicU64>,
    /// New entries per tick of the clock.
    clock_step: u64,
    /// The serial number of the next new entry.
    next_serial: AtomicU64,
    /// Entries evicted so far.
    evicted: AtomicU64,
}

/// Every live entry's key, once, ranked in the order a full store evicts
/// them; plus the keys of entries gone since (see [`Shared::stale`]). An
/// entry used since it was ranked is ranked again when eviction reaches it.
type Queue = BTreeMap<Rank, String>;

/// Where an entry stands in the eviction [`Queue`]: least recently used
/// first, and among those used last in the same tick (or never), the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    last_used: u64,
    serial: u64,
}

/// A value on a cache line of its own (128 bytes: two lines on x86-64, whose
/// prefetcher fetches them in pairs, as crossbeam's `CachePadded` has it).
#[derive(Debug)]
#[repr(align(128))]
struct CacheLine<T>(T);

#[derive(Debug)]
struct Entry {
    value: String,
    expires_at: Option<Instant>,
    /// Tells this entry from a later one under the same key.
    serial: u64,
    /// The clock's tick when it was last read, touched or changed since it was
    /// written; [`NEVER`] until then.
    last_used: AtomicU64,
}

impl Entry {
    fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Records a use at `tick`: a store only when the tick moved on, since
    /// most entries on the request path were used in this tick already, and
    /// a load does not take the cache line away from other threads.
    fn mark_used(&self, tick: u64) {
        if self.last_used.load(Ordering::Relaxed) < tick {
            self.last_used.store(tick, Ordering::Relaxed);
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

/// The bytes a removed entry's key in the eviction queue is counted as.
fn queued_size(key: &str) -> usize {
    key.len().saturating_add(QUEUED_OVERHEAD)
}

/// New entries per tick of the recency clock for a store with `limits`.
fn clock_step(limits: &Limits) -> u64 {
    let capacity = limits.max_entries.min(limits.max_bytes / ENTRY_OVERHEAD);
    u64::try_from(capacity / TICKS_PER_FILL)
        .unwrap_or(u64::MAX)
        .max(1)
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
                queue: Mutex::new(Queue::new()),
                stale: AtomicUsize::new(0),
                stale_bytes: AtomicUsize::new(0),
                clock: CacheLine(AtomicU64::new(NEVER + 1)),
                clock_step: clock_step(&limits),
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
                entry.mark_used(self.tick());
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
        let removed = self.shared.entries.remove_if(key, |key, _| {
            self.note_gone(key);
            true
        });
        if let Some((key, entry)) = removed {
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
                entry.mark_used(self.tick());
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
            let removed = self.shared.entries.remove_if(&key, |key, entry| {
                let expired = entry.is_expired(now);
                if expired {
                    self.note_gone(key);
                }
                expired
            });
            if let Some((key, entry)) = removed {
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

    /// The bytes the entries are counted as (see `--store-max-bytes`). The
    /// budget also holds the keys of removed entries the eviction queue has
    /// not dropped yet, which this does not count.
    pub fn bytes(&self) -> usize {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// How many entries were evicted to make room.
    pub fn evicted(&self) -> u64 {
        self.shared.evicted.load(Ordering::Relaxed)
    }

    /// The recency clock's tick now.
    fn tick(&self) -> u64 {
        self.shared.clock.0.load(Ordering::Relaxed)
    }

    /// The serial number of a new entry; every [`Shared::clock_step`]th new
    /// entry moves the clock on a tick.
    fn new_serial(&self) -> u64 {
        let serial = self.shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let step = self.shared.clock_step;
        if serial.is_multiple_of(step) {
            // A max, so that tasks taking turns cannot move it back.
            self.shared
                .clock
                .0
                .fetch_max(NEVER + 1 + serial / step, Ordering::Relaxed);
        }
        serial
    }

    /// Counts `room` if both limits allow it (the keys of removed entries
    /// still in the eviction queue count against the byte limit).
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
        let stale = self.shared.stale_bytes.load(Ordering::Relaxed);
        if before.saturating_add(room.bytes).saturating_add(stale) > self.shared.limits.max_bytes {
            bytes.fetch_sub(room.bytes, Ordering::Relaxed);
            len.fetch_sub(room.entries, Ordering::Relaxed);
            return None;
        }
        Some(Reservation {
            store: self,
            room: Some(room),
        })
    }

    /// Refuses an entry of `size` bytes if the byte budget could not hold
    /// it even empty (evicting everything would be in vain).
    fn fits_at_all(&self, size: usize) -> Result<(), StoreError> {
        if size > self.shared.limits.max_bytes {
            return Err(StoreError::Full);
        }
        Ok(())
    }

    /// Uncounts one entry of `size` bytes.
    fn release(&self, size: usize) {
        self.shared.len.fetch_sub(1, Ordering::Relaxed);
        self.shared.bytes.fetch_sub(size, Ordering::Relaxed);
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Evicts entries in the queue's order (and drops the keys of entries
    /// gone since) until `room` can be reserved, and reserves it for the
    /// caller (so no other write takes what was freed). None without
    /// eviction, when the queue ran out, or when `room` is more than the
    /// whole store holds (then without evicting). Called with no shard lock
    /// held (it takes them).
    fn make_room(&self, room: Room) -> Option<Reservation<'_>> {
        let limits = &self.shared.limits;
        if limits.eviction == Eviction::None
            || room.entries > limits.max_entries
            || room.bytes > limits.max_bytes
        {
            return None;
        }
        let now = Instant::now();
        let mut queue = self.lock_queue();
        // Entries ranked again in this call: past [`MAX_RERANKS`] the next
        // candidate goes whatever its use, so one write never walks the
        // whole queue under its lock (a store whose every entry was used
        // since it filled), at the price of an approximate LRU then.
        let mut reranked = 0;
        loop {
            if let Some(reservation) = self.reserve(room) {
                return Some(reservation);
            }
            let (rank, key) = queue.pop_first()?;
            // Under the shard's write lock, so no use slips in between the
            // look at the entry and its eviction.
            let mut used_since = None;
            let evicted = self.shared.entries.remove_if(&key, |_, entry| {
                if entry.serial != rank.serial {
                    return false;
                }
                let last_used = entry.last_used.load(Ordering::Relaxed);
                if last_used > rank.last_used && !entry.is_expired(now) && reranked < MAX_RERANKS {
                    used_since = Some(last_used);
                    return false;
                }
                true
            });
            if let Some((key, entry)) = evicted {
                self.release(entry_size(&key, &entry.value));
                self.shared.evicted.fetch_add(1, Ordering::Relaxed);
            } else if let Some(last_used) = used_since {
                // Ranked again by its latest use: it is not the least
                // recently used, unless everything else was used since.
                let rank = Rank {
                    last_used,
                    serial: rank.serial,
                };
                queue.insert(rank, key);
                reranked += 1;
            } else {
                // Removed (or written over) since it was queued.
                self.forget(&key);
            }
        }
    }

    /// Ranks a new entry in the eviction queue, as never used (after its
    /// shard's lock is released: `make_room` takes the locks the other way
    /// round).
    fn enqueue(&self, key: String, serial: u64) {
        if self.shared.limits.eviction == Eviction::None {
            return;
        }
        let mut queue = self.lock_queue();
        let rank = Rank {
            last_used: NEVER,
            serial,
        };
        queue.insert(rank, key);
        // Once the keys of entries gone outnumber the live ones, drop them
        // all: the walk costs at most two lookups per key gone since the last.
        if self.shared.stale.load(Ordering::Relaxed).saturating_mul(2) > queue.len() {
            queue.retain(|rank, key| {
                let live = self
                    .shared
                    .entries
                    .get(key.as_str())
                    .is_some_and(|entry| entry.serial == rank.serial);
                if !live {
                    self.forget(key);
                }
                live
            });
        }
    }

    /// Counts the queued key of an entry that leaves the map other than by
    /// eviction as stale: it counts against the byte budget until the queue
    /// drops it. Called under the entry's shard lock (see [`Shared::stale`]).
    fn note_gone(&self, key: &str) {
        if self.shared.limits.eviction == Eviction::None {
            return;
        }
        self.shared.stale.fetch_add(1, Ordering::Relaxed);
        self.shared
            .stale_bytes
            .fetch_add(queued_size(key), Ordering::Relaxed);
    }

    /// Uncounts a stale key the queue dropped.
    fn forget(&self, key: &str) {
        self.shared.stale.fetch_sub(1, Ordering::Relaxed);
        self.shared
            .stale_bytes
            .fetch_sub(queued_size(key), Ordering::Relaxed);
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
                // Other tasks' new entries may be on their way into the queue.
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
        // A new entry (or one written over an expired one) is queued for
        // eviction once its shard's lock is released.
        let (queued, result) = match self.shared.entries.entry(key) {
            // (A reservation made for this write and not used is dropped,
            // and so given back, on every way out.)
            MapEntry::Occupied(mut occupied) => {
                let live = Some(occupied.get()).filter(|entry| !entry.is_expired(now));
                let was_live = live.is_some();
                let (what, result) = change(live, now)?;
                match what {
                    Change::Keep => {
                        if was_live {
                            occupied.get().mark_used(self.tick());
                        }
                        (None, result)
                    }
                    Change::Put(value, expires_at) => {
                        let old = entry_size(occupied.key(), &occupied.get().value);
                        let new = entry_size(occupied.key(), &value);
                        self.fits_at_all(new)?;
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
                        if was_live {
                            // Any write to a live entry is a use.
                            let entry = occupied.get_mut();
                            entry.value = value;
                            entry.expires_at = expires_at;
                            entry.mark_used(self.tick());
                            (None, result)
                        } else {
                            // Written over an expired one: a new entry, and
                            // the expired one's queued key is stale.
                            self.note_gone(occupied.key());
                            let serial = self.new_serial();
                            let entry = occupied.get_mut();
                            entry.value = value;
                            entry.expires_at = expires_at;
                            entry.serial = serial;
                            *entry.last_used.get_mut() = NEVER;
                            (Some((occupied.key().clone(), serial)), result)
                        }
                    }
                    Change::Remove => {
                        self.note_gone(occupied.key());
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
                self.fits_at_all(room.bytes)?;
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
                let serial = self.new_serial();
                let key = vacant.key().clone();
                vacant.insert(Entry {
                    value,
                    expires_at,
                    serial,
                    last_used: AtomicU64::new(NEVER),
                });
                (Some((key, serial)), result)
            }
        };
        if let Some((key, serial)) = queued {
            self.enqueue(key, serial);
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

    /// Checks a store no task is using: the counts match the map, every live
    /// entry is queued once (ranked no later than its last use), and every
    /// other key in the queue is counted as stale.
    fn check_queue(store: &MemoryStore) {
        let shared = &store.shared;
        let queue = store.lock_queue();
        assert_eq!(store.len(), shared.entries.len());
        let counted: usize = shared
            .entries
            .iter()
            .map(|item| entry_size(item.key(), &item.value().value))
            .sum();
        assert_eq!(store.bytes(), counted);
        let mut stale = 0;
        let mut stale_bytes = 0;
        let mut live = 0;
        for (rank, key) in queue.iter() {
            match shared.entries.get(key.as_str()) {
                Some(entry) if entry.serial == rank.serial => {
                    assert!(rank.last_used <= entry.last_used.load(Ordering::Relaxed));
                    live += 1;
                }
                _ => {
                    stale += 1;
                    stale_bytes += queued_size(key);
                }
            }
        }
        assert_eq!(live, store.len(), "every entry queued once");
        assert_eq!(shared.stale.load(Ordering::Relaxed), stale);
        assert_eq!(shared.stale_bytes.load(Ordering::Relaxed), stale_bytes);
        assert!(store.bytes() + stale_bytes <= shared.limits.max_bytes);
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

    /// Entries used in the order b, n, a (with new entries written between
    /// the uses, which is what moves the recency clock on a small store).
    async fn store_of_used_entries(eviction: Eviction) -> MemoryStore {
        let store = MemoryStore::new(Limits {
            max_entries: 4,
            eviction,
            ..Limits::default()
        });
        for key in ["a", "b"] {
            store.set(key.into(), "v".into(), None).unwrap();
        }
        store.touch("b", None).unwrap();
        // A counter is used by every increment after its first.
        Backend::increment(&store, "n".into(), 1).await.unwrap();
        Backend::increment(&store, "n".into(), 1).await.unwrap();
        store.set("c".into(), "v".into(), None).unwrap();
        assert_eq!(store.read("a"), Ok(Some("v".into())));
        assert_eq!(store.read("c"), Ok(Some("v".into())));
        store
    }

    #[tokio::test]
    async fn a_store_full_of_entries_in_use_evicts_the_least_recently_used_or_without_eviction_refuses()
     {
        let strict = store_of_used_entries(Eviction::None).await;
        assert_eq!(
            strict.set("d".into(), "v".into(), None),
            Err(StoreError::Full)
        );
        assert_eq!(
            Backend::set_if_absent(&strict, "d".into(), "v".into(), None).await,
            Err(StoreError::Full)
        );
        assert_eq!(strict.len(), 4);
        assert_eq!(strict.evicted(), 0);

        let store = store_of_used_entries(Eviction::Lru).await;
        // b was used before n, a and c, though written after a.
        store.set("d".into(), "v".into(), None).unwrap();
        assert_eq!(store.read("b"), Ok(None));
        // d was never used: it goes before any entry in use...
        assert_eq!(
            Backend::set_if_absent(&store, "e".into(), "v".into(), None).await,
            Ok(true)
        );
        assert_eq!(store.read("d"), Ok(None));
        // ...and then n, the least recently used of those left.
        assert_eq!(store.read("e"), Ok(Some("v".into())));
        store.set("f".into(), "v".into(), None).unwrap();
        assert_eq!(store.read("n"), Ok(None));
        for key in ["a", "c", "e", "f"] {
            assert_eq!(store.read(key), Ok(Some("v".into())), "{key}");
        }
        assert_eq!(store.len(), 4);
        assert_eq!(store.evicted(), 3);
        check_queue(&store);
    }

    #[test]
    fn a_store_full_of_entries_used_once_takes_a_new_visitor() {
        // Issue 20: 200 clients create a session and come back once.
        let store = MemoryStore::new(Limits {
            max_entries: 200,
            ..Limits::default()
        });
        for i in 0..200 {
            store.set(format!("flood{i}"), "v".into(), None).unwrap();
            assert!(store.read(&format!("flood{i}")).unwrap().is_some());
        }
        store.set("visitor".into(), "v".into(), None).unwrap();
        assert_eq!(store.read("visitor"), Ok(Some("v".into())));
        assert_eq!(store.read("flood0"), Ok(None), "the least recently used");
        assert_eq!(store.evicted(), 1);
        check_queue(&store);
    }

    #[test]
    fn a_visitor_who_keeps_coming_back_keeps_its_session_through_a_flood_that_uses_its_own() {
        let store = MemoryStore::new(Limits {
            max_entries: 200,
            ..Limits::default()
        });
        store.set("visitor".into(), "v".into(), None).unwrap();
        assert!(store.read("visitor").unwrap().is_some());
        for i in 0..10_000 {
            // Every flood write finds room...
            store.set(format!("flood{i}"), "v".into(), None).unwrap();
            // ...and its client comes back once.
            assert!(store.read(&format!("flood{i}")).unwrap().is_some());
            if i % 50 == 49 {
                assert_eq!(store.read("visitor"), Ok(Some("v".into())), "after {i}");
            }
        }
        assert_eq!(store.len(), 200);
        assert_eq!(store.evicted(), 10_001 - 200);
        // The most recent of the flood are there, the oldest evicted.
        assert!(store.read("flood9999").unwrap().is_some());
        assert!(store.read("flood9800").unwrap().is_none());
        check_queue(&store);
    }

    #[test]
    fn concurrent_floods_that_use_their_entries_never_fill_the_store() {
        let store = MemoryStore::new(Limits {
            max_entries: 200,
            ..Limits::default()
        });
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..3_000 {
                        let key = format!("{t}:{i}");
                        store.set(key.clone(), "v".into(), None).unwrap();
                        store.read(&key).unwrap();
                        if i % 3 == 0 {
                            store.remove(&key).unwrap();
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        check_queue(&store);
        // Every entry not removed is held or was evicted (and some were
        // evicted before their writer removed them).
        let held_or_evicted = store.evicted() + store.len() as u64;
        assert!(held_or_evicted >= 4 * 2_000, "{held_or_evicted}");
    }

    #[tokio::test]
    async fn the_eviction_queue_forgets_the_keys_of_entries_gone() {
        let store = MemoryStore::new(Limits {
            max_entries: 100,
            ..Limits::default()
        });
        for i in 0..10 {
            store.set(format!("kept{i}"), "v".into(), None).unwrap();
        }
        let bounded = |store: &MemoryStore| {
            let queued = store.lock_queue().len();
            assert!(queued <= 2 * (store.len() + 1), "{queued} queued");
        };
        for i in 0..10_000 {
            let key = format!("gone{i}");
            store.set(key.clone(), "v".into(), None).unwrap();
            if i % 2 == 0 {
                store.remove(&key).unwrap();
            } else {
                let swapped =
                    Backend::compare_and_swap(&store, key, Some("v".into()), None, None).await;
                assert_eq!(swapped, Ok(true));
            }
            bounded(&store);
        }
        check_queue(&store);
        // Purged, and written over once expired.
        for i in 0..50 {
            let ttl = Some(Duration::from_millis(10));
            store.set(format!("short{i}"), "v".into(), ttl).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        // (The purge thread may have been first.)
        store.purge_expired();
        assert_eq!(store.len(), 10);
        check_queue(&store);
        for i in 0..50 {
            let ttl = Some(Duration::from_millis(10));
            store.set(format!("short{i}"), "v".into(), ttl).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        for i in 0..50 {
            store.set(format!("short{i}"), "w".into(), None).unwrap();
            check_queue(&store);
            bounded(&store);
        }
        assert_eq!(store.len(), 60);
        for i in 0..10 {
            store.remove(&format!("kept{i}")).unwrap();
        }
        check_queue(&store);
        assert_eq!(store.evicted(), 0);
    }

    #[test]
    fn the_keys_of_removed_entries_count_against_the_byte_budget_until_dropped() {
        let one = entry_size("k000", "value");
        let store = MemoryStore::new(Limits {
            max_bytes: one * 10,
            ..Limits::default()
        });
        for i in 0..10 {
            store.set(format!("k{i:03}"), "value".into(), None).unwrap();
        }
        for i in 0..3 {
            store.remove(&format!("k{i:03}")).unwrap();
        }
        assert_eq!(store.bytes(), one * 7);
        assert_eq!(
            store.shared.stale_bytes.load(Ordering::Relaxed),
            3 * queued_size("k000")
        );
        check_queue(&store);
        for i in 10..13 {
            store.set(format!("k{i:03}"), "value".into(), None).unwrap();
            check_queue(&store);
        }
        // The room came from dropping the removed keys, the oldest in the
        // queue, not from evicting.
        assert_eq!(store.len(), 10);
        assert_eq!(store.evicted(), 0);
        assert_eq!(store.shared.stale_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn an_entry_larger_than_the_whole_budget_is_refused_without_evicting() {
        let one = entry_size("k000", "value");
        let store = MemoryStore::new(Limits {
            max_bytes: one * 3,
            ..Limits::default()
        });
        for i in 0..3 {
            store.set(format!("k{i:03}"), "value".into(), None).unwrap();
        }
        let huge = "v".repeat(one * 3);
        assert_eq!(
            store.set("k999".into(), huge.clone(), None),
            Err(StoreError::Full)
        );
        assert_eq!(store.set("k000".into(), huge, None), Err(StoreError::Full));
        assert_eq!(store.len(), 3);
        assert_eq!(store.evicted(), 0);
        assert_eq!(store.read("k000"), Ok(Some("value".into())));
    }

    #[test]
    fn reads_never_wait_for_the_eviction_queue() {
        let store = MemoryStore::new(Limits {
            max_entries: 1,
            ..Limits::default()
        });
        store.set("a".into(), "v".into(), None).unwrap();
        let queue = store.lock_queue();
        let reader = store.clone();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let read = reader.read("a");
            let touched = reader.touch("a", None);
            done.send((read, touched)).unwrap();
        });
        let answer = finished.recv_timeout(Duration::from_secs(10));
        drop(queue);
        assert_eq!(answer, Ok((Ok(Some("v".into())), Ok(true))));
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
