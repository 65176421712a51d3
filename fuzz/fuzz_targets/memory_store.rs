//! The host's in-memory store (host/src/store/memory.rs) against a `HashMap`.
//!
//! An arbitrary sequence of operations (set, read, remove, touch,
//! set_if_absent, compare_and_swap, increment, through the `Backend` trait)
//! on a store without eviction, with small limits and a small key space
//! (keys of up to three letters from `abcd`), must give exactly what a
//! `HashMap` model gives: the same values, the same `KeyTooLarge`,
//! `ValueTooLarge`, `Full` (entry or byte limit reached) and `NotAnInteger`
//! errors. After every operation `len()` and `bytes()` must equal the
//! model's entry count and byte count. TTLs are none or long enough never to
//! expire during a run (so expiry never changes the answer).
//!
//! The stores (one per set of limits) are made once and emptied after each
//! input through `remove`, which is checked to leave them at zero entries
//! and zero bytes.
#![no_main]

use std::collections::HashMap;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wasmhost::store::{Backend, Eviction, Limits, MemoryStore, StoreError};

/// What the memory store counts for an entry beyond its key (counted twice:
/// the map's and the eviction ring's copy) and value (`ENTRY_OVERHEAD`).
const ENTRY_OVERHEAD: usize = 128;

/// The limits of the stores an input may pick from.
const LIMITS: [Limits; 4] = [
    limits(3, 16, 4, 1 << 20),
    // The byte limit binds first: four small entries at most.
    limits(2, 64, 8, 4 * (ENTRY_OVERHEAD + 2 * 2 + 8)),
    limits(1024, 1024, 1, 1 << 20),
    limits(3, 8, 2, 2 * ENTRY_OVERHEAD + 12),
];

const fn limits(key: usize, value: usize, entries: usize, bytes: usize) -> Limits {
    Limits {
        max_key_bytes: key,
        max_value_bytes: value,
        max_entries: entries,
        max_bytes: bytes,
        eviction: Eviction::None,
    }
}

fn stores() -> &'static [MemoryStore] {
    static STORES: OnceLock<Vec<MemoryStore>> = OnceLock::new();
    STORES.get_or_init(|| LIMITS.iter().map(|l| MemoryStore::new(*l)).collect())
}

/// A key of zero to three letters from `abcd`: two bits of length, two a letter.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Key(u8);

impl Key {
    fn text(self) -> String {
        let len = usize::from(self.0 & 3);
        (0..len)
            .map(|i| char::from(b'a' + (self.0 >> (2 + 2 * i) & 3)))
            .collect()
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Value {
    Int(i64),
    Text(String),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Int(n) => n.to_string(),
            Value::Text(text) => text.clone(),
        }
    }
}

/// No TTL, or ones no run outlives (one past the century is as none).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Ttl {
    None,
    Hour,
    PastLongest,
}

impl Ttl {
    fn duration(self) -> Option<Duration> {
        match self {
            Ttl::None => None,
            Ttl::Hour => Some(Duration::from_secs(3600)),
            Ttl::PastLongest => Some(wasmhost::store::LONGEST_TTL + Duration::from_secs(1)),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Set(Key, Value, Ttl),
    Read(Key),
    Remove(Key),
    Touch(Key, Ttl),
    SetIfAbsent(Key, Value, Ttl),
    CompareAndSwap(Key, Option<Value>, Option<Value>, Ttl),
    Increment(Key, i64),
}

#[derive(Arbitrary, Debug)]
struct Input {
    store: u8,
    ops: Vec<Op>,
}

/// Runs a store future: the memory store's complete at their first poll.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a memory store operation did not complete at once"),
    }
}

/// The map the store should hold, and what it counts.
struct Model {
    limits: Limits,
    entries: HashMap<String, String>,
    bytes: usize,
}

fn size(key: &str, value: &str) -> usize {
    2 * key.len() + value.len() + ENTRY_OVERHEAD
}

impl Model {
    fn check_key(&self, key: &str) -> Result<(), StoreError> {
        if key.len() > self.limits.max_key_bytes {
            return Err(StoreError::KeyTooLarge {
                limit: self.limits.max_key_bytes,
            });
        }
        Ok(())
    }

    fn check_entry(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        self.check_key(key)?;
        match value {
            Some(value) if value.len() > self.limits.max_value_bytes => {
                Err(StoreError::ValueTooLarge {
                    limit: self.limits.max_value_bytes,
                })
            }
            _ => Ok(()),
        }
    }

    /// Puts `value` under `key` if the limits leave room for it.
    fn put(&mut self, key: &str, value: String) -> Result<(), StoreError> {
        let new = size(key, &value);
        match self.entries.get(key) {
            Some(old) => {
                let old = size(key, old);
                if new > old && self.bytes + (new - old) > self.limits.max_bytes {
                    return Err(StoreError::Full);
                }
                self.bytes = self.bytes + new - old;
            }
            None => {
                if self.entries.len() >= self.limits.max_entries
                    || self.bytes + new > self.limits.max_bytes
                {
                    return Err(StoreError::Full);
                }
                self.bytes += new;
            }
        }
        self.entries.insert(key.to_owned(), value);
        Ok(())
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.bytes -= size(key, &old);
        }
    }
}

fuzz_target!(|input: Input| {
    let which = usize::from(input.store) % LIMITS.len();
    let store = &stores()[which];
    assert_eq!((store.len(), store.bytes()), (0, 0), "a store left dirty");
    let mut model = Model {
        limits: LIMITS[which],
        entries: HashMap::new(),
        bytes: 0,
    };

    for op in &input.ops {
        match op {
            Op::Set(key, value, ttl) => {
                let (key, value) = (key.text(), value.text());
                let expected = model
                    .check_entry(&key, Some(&value))
                    .and_then(|()| model.put(&key, value.clone()));
                let got = now(Backend::set(store, key, value, ttl.duration()));
                assert_eq!(got, expected, "{op:?}");
            }
            Op::Read(key) => {
                let key = key.text();
                let expected = model
                    .check_key(&key)
                    .map(|()| model.entries.get(&key).cloned());
                assert_eq!(now(Backend::read(store, &key)), expected, "{op:?}");
            }
            Op::Remove(key) => {
                let key = key.text();
                let expected = model.check_key(&key).map(|()| model.remove(&key));
                assert_eq!(now(Backend::remove(store, &key)), expected, "{op:?}");
            }
            Op::Touch(key, ttl) => {
                let key = key.text();
                let expected = model
                    .check_key(&key)
                    .map(|()| model.entries.contains_key(&key));
                let got = now(Backend::touch(store, &key, ttl.duration()));
                assert_eq!(got, expected, "{op:?}");
            }
            Op::SetIfAbsent(key, value, ttl) => {
                let (key, value) = (key.text(), value.text());
                let expected = model.check_entry(&key, Some(&value)).and_then(|()| {
                    if model.entries.contains_key(&key) {
                        Ok(false)
                    } else {
                        model.put(&key, value.clone()).map(|()| true)
                    }
                });
                let got = now(Backend::set_if_absent(store, key, value, ttl.duration()));
                assert_eq!(got, expected, "{op:?}");
            }
            Op::CompareAndSwap(key, expected_value, new, ttl) => {
                let key = key.text();
                let expected_value = expected_value.as_ref().map(Value::text);
                let new = new.as_ref().map(Value::text);
                let expected = model.check_entry(&key, new.as_deref()).and_then(|()| {
                    if model.entries.get(&key) != expected_value.as_ref() {
                        return Ok(false);
                    }
                    match &new {
                        None => model.remove(&key),
                        Some(value) => model.put(&key, value.clone())?,
                    }
                    Ok(true)
                });
                let got = now(Backend::compare_and_swap(
                    store,
                    key,
                    expected_value,
                    new,
                    ttl.duration(),
                ));
                assert_eq!(got, expected, "{op:?}");
            }
            Op::Increment(key, delta) => {
                let key = key.text();
                let expected = model.check_key(&key).and_then(|()| {
                    let current = match model.entries.get(&key) {
                        // Only an integer's own spelling, as Redis's INCRBY.
                        Some(text) => text
                            .parse::<i64>()
                            .ok()
                            .filter(|n| n.to_string() == *text)
                            .ok_or(StoreError::NotAnInteger)?,
                        None => 0,
                    };
                    let sum = current
                        .checked_add(*delta)
                        .ok_or(StoreError::NotAnInteger)?;
                    model.put(&key, sum.to_string()).map(|()| sum)
                });
                let got = now(Backend::increment(store, key, *delta));
                assert_eq!(got, expected, "{op:?}");
            }
        }
        assert_eq!(store.len(), model.entries.len(), "len after {op:?}");
        assert_eq!(store.bytes(), model.bytes, "bytes after {op:?}");
    }

    // Leave the store empty for the next input.
    for key in model.entries.keys() {
        now(Backend::remove(store, key)).expect("a key the store took");
    }
    assert_eq!(
        (store.len(), store.bytes()),
        (0, 0),
        "not empty after removing all"
    );
});
