//! A test host for a guest's unit tests: off wasm (`cargo test` on your own
//! machine), the SDK's host calls go here instead of to `wasmhost`, so a
//! handler that uses sessions, the [`store`](crate::store) or
//! [`task_id`](crate::task_id) runs under [`App::handle`](crate::App::handle)
//! as it does on wasmhost.
//!
//! - The store is an in-memory map with the host's semantics: TTLs, the
//!   atomic operations ([`store::set_if_absent`](crate::store::set_if_absent),
//!   [`store::compare_and_swap`](crate::store::compare_and_swap),
//!   [`store::increment`](crate::store::increment)), a TTL past a century
//!   counting as none. Each thread has its own, and the test harness runs
//!   each test on its own thread, so tests do not see each other's entries
//!   (with `--test-threads=1` they run on one thread and share one store:
//!   call [`reset`] first where that matters).
//! - The task is task 0 of 1 until [`set_task`] says otherwise.
//! - Cookie signatures use the same HMAC-SHA256 the host computes.
//!
//! It exists only off wasm: a guest built for `wasm32-wasip2` talks to the
//! real host.
//!
//! ```
//! use wasmhost_sdk::{App, Request, SessionError, SessionOptions, store, testing};
//!
//! fn app() -> App {
//!     App::new()
//!         .sessions(SessionOptions::new("test secret"))
//!         .post("/login/:user", |req| -> Result<&'static str, SessionError> {
//!             let user = req.param("user").unwrap_or_default().to_owned();
//!             req.session().insert("user", &user)?;
//!             store::increment("logins", 1)?;
//!             Ok("welcome")
//!         })
//!         .get("/me", |req| -> Result<String, SessionError> {
//!             Ok(req.session().get::<String>("user")?.unwrap_or_default())
//!         })
//! }
//!
//! let app = app();
//! let login = app.handle(Request::new("POST", "/login/ada", Vec::new(), Vec::new()));
//! let cookie = testing::cookie(&login).expect("the session's cookie");
//! let me = app.handle(Request::new("GET", "/me", vec![("cookie".into(), cookie)], Vec::new()));
//! assert_eq!(me.body(), b"ada");
//! assert_eq!(store::get("logins").unwrap().as_deref(), Some("1"));
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::Response;

/// TTLs longer than this (about 100 years) count as none, as on the host.
const LONGEST_TTL_MS: u64 = 100 * 365 * 24 * 60 * 60 * 1000;

thread_local! {
    static STORE: RefCell<HashMap<String, Entry>> = RefCell::new(HashMap::new());
    static TASK: Cell<(u32, u32)> = const { Cell::new((0, 1)) };
}

struct Entry {
    value: String,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|expires| expires > now)
    }
}

/// Makes [`task_id`](crate::task_id) and [`task_count`](crate::task_count)
/// answer `id` and `count` on this thread (task 0 of 1 until then).
///
/// ```
/// use wasmhost_sdk::{task_count, task_id, testing};
///
/// testing::set_task(2, 5);
/// assert_eq!((task_id(), task_count()), (2, 5));
/// ```
pub fn set_task(id: u32, count: u32) {
    TASK.with(|task| task.set((id, count)));
}

/// Empties this thread's store and makes it task 0 of 1 again: for a test
/// that runs several cases on one thread.
pub fn reset() {
    STORE.with(|store| store.borrow_mut().clear());
    set_task(0, 1);
}

/// The `name=value` pair of the first cookie a response sets, ready to send
/// back in a `cookie` header; none if it sets none.
pub fn cookie(response: &Response) -> Option<String> {
    let set_cookie = response.header("set-cookie")?;
    let pair = set_cookie.split(';').next().unwrap_or_default();
    Some(pair.trim().to_owned())
}

pub(crate) fn task() -> (u32, u32) {
    TASK.with(Cell::get)
}

/// The host's store operations, with the signatures of the
/// `wasmhost:app/store` bindings so `store.rs` calls either alike.
pub(crate) mod store {
    use super::{Entry, Instant, LONGEST_TTL_MS, STORE};
    use crate::bindings::wasmhost::app::store::StoreError;
    use std::collections::HashMap;

    fn expiry(now: Instant, ttl_ms: Option<u64>) -> Option<Instant> {
        ttl_ms
            .filter(|ms| *ms <= LONGEST_TTL_MS)
            .and_then(|ms| now.checked_add(super::Duration::from_millis(ms)))
    }

    /// Runs `f` on this thread's map with `key` gone if it expired (every
    /// operation touches one key, so only that one is looked at).
    fn with<T>(key: &str, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        STORE.with(|store| {
            let mut store = store.borrow_mut();
            let now = Instant::now();
            if store.get(key).is_some_and(|entry| !entry.live(now)) {
                store.remove(key);
            }
            f(&mut store, now)
        })
    }

    pub(crate) fn store_read(key: &str) -> Result<Option<String>, StoreError> {
        Ok(with(key, |store, _| {
            store.get(key).map(|entry| entry.value.clone())
        }))
    }

    pub(crate) fn store_set(key: &str, value: &str, ttl_ms: Option<u64>) -> Result<(), StoreError> {
        with(key, |store, now| {
            let entry = Entry {
                value: value.to_owned(),
                expires: expiry(now, ttl_ms),
            };
            store.insert(key.to_owned(), entry);
        });
        Ok(())
    }

    pub(crate) fn store_remove(key: &str) -> Result<(), StoreError> {
        with(key, |store, _| store.remove(key));
        Ok(())
    }

    pub(crate) fn store_touch(key: &str, ttl_ms: Option<u64>) -> Result<bool, StoreError> {
        Ok(with(key, |store, now| match store.get_mut(key) {
            Some(entry) => {
                entry.expires = expiry(now, ttl_ms);
                true
            }
            None => false,
        }))
    }

    pub(crate) fn store_set_if_absent(
        key: &str,
        value: &str,
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        if store_read(key)?.is_some() {
            return Ok(false);
        }
        store_set(key, value, ttl_ms)?;
        Ok(true)
    }

    pub(crate) fn store_compare_and_swap(
        key: &str,
        expected: Option<&str>,
        new: Option<&str>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        if store_read(key)?.as_deref() != expected {
            return Ok(false);
        }
        match new {
            Some(new) => store_set(key, new, ttl_ms)?,
            None => store_remove(key)?,
        }
        Ok(true)
    }

    pub(crate) fn store_increment(key: &str, delta: i64) -> Result<i64, StoreError> {
        with(key, |store, _| {
            let entry = store.entry(key.to_owned()).or_insert_with(|| Entry {
                value: "0".to_owned(),
                expires: None,
            });
            let sum = entry
                .value
                .parse::<i64>()
                .ok()
                .and_then(|current| current.checked_add(delta))
                .ok_or(StoreError::NotAnInteger)?;
            entry.value = sum.to_string();
            Ok(sum)
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ttls_expire_and_atomics_hold() {
            super::super::reset();
            store_set("k", "v", Some(30)).unwrap();
            assert_eq!(store_read("k").unwrap().as_deref(), Some("v"));
            assert!(!store_set_if_absent("k", "w", None).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(60));
            assert_eq!(store_read("k").unwrap(), None, "expired");
            assert!(store_set_if_absent("k", "w", None).unwrap());
            assert!(!store_compare_and_swap("k", Some("x"), None, None).unwrap());
            assert!(store_compare_and_swap("k", Some("w"), None, None).unwrap());
            assert_eq!(store_read("k").unwrap(), None);
            assert_eq!(store_increment("n", 5).unwrap(), 5);
            assert_eq!(store_increment("n", -2).unwrap(), 3);
            store_set("t", "text", None).unwrap();
            assert!(matches!(
                store_increment("t", 1),
                Err(StoreError::NotAnInteger)
            ));
            assert!(
                store_touch("n", Some(u64::MAX)).unwrap(),
                "a century or more is none"
            );
            assert!(!store_touch("gone", None).unwrap());
        }
    }
}
