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
//!
//! Keys and values are strings ([`get_json`] and [`set_json`] store any serde
//! type as JSON). Nothing is cached in the guest: every call asks the host,
//! and a write that has returned is seen by every later read on every task.
//! Sessions live in the same store, under keys starting with `sess:` (see
//! [`SessionOptions::prefix`](crate::SessionOptions::prefix())); keep your
//! own keys out of that prefix.
//!
//! ```no_run
//! use std::time::Duration;
//! use wasmhost_sdk::store::{self, StoreError};
//!
//! # fn main() -> Result<(), StoreError> {
//! // Plain reads and writes, with or without a TTL.
//! store::set("greeting", "hello", None)?;
//! store::set("otp:ada", "123456", Some(Duration::from_secs(300)))?;
//! assert_eq!(store::get("greeting")?.as_deref(), Some("hello"));
//!
//! // A counter every task and host adds to: no update is lost.
//! let visits = store::increment("visits:total", 1)?;
//!
//! // A lock or a reservation: of all callers racing, exactly one gets true.
//! let mine = store::set_if_absent("claim:neo", "session-id", None)?;
//!
//! // Optimistic update: change a value only if nobody changed it since we read it.
//! let current = store::get("motd")?;
//! if !store::compare_and_swap("motd", current.as_deref(), Some("new text"), None)? {
//!     // Someone else won: read again and retry, or tell the user.
//! }
//! # let _ = (visits, mine);
//! # Ok(())
//! # }
//! ```
//!
//! In a handler, `?` on a [`StoreError`] answers the request `503` while the
//! store is [`StoreError::Unavailable`] or [`StoreError::Full`], and `500`
//! otherwise (see [`crate::IntoResponse`]); match on it to answer otherwise.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::wasmhost::app::store as raw;
// Off wasm (a guest's own `cargo test`), the test host stands in for wasmhost.
#[cfg(target_arch = "wasm32")]
use crate::bindings::wasmhost::app::store as host;
#[cfg(not(target_arch = "wasm32"))]
use crate::testing::store as host;
use crate::{IntoResponse, Response, StatusCode};

/// Why a store operation failed. Failures are values, never traps: the
/// guest can answer its request however it likes.
///
/// As a handler's error it is [`crate::IntoResponse`]: `503` ("try again
/// later") for [`StoreError::Unavailable`] and [`StoreError::Full`], `500`
/// for the rest, the error itself going to the guest's stderr (the host log),
/// not to the client.
///
/// ```
/// use wasmhost_sdk::store::{self, StoreError};
/// use wasmhost_sdk::{Response, StatusCode};
///
/// fn remember(note: &str) -> Response {
///     match store::set("note", note, None) {
///         Ok(()) => Response::text("saved"),
///         Err(StoreError::ValueTooLarge(limit)) => {
///             Response::text(format!("notes are at most {limit} bytes"))
///                 .with_status(StatusCode::PAYLOAD_TOO_LARGE)
///         }
///         Err(StoreError::Unavailable(_) | StoreError::Full) => {
///             Response::text("try again soon").with_status(StatusCode::SERVICE_UNAVAILABLE)
///         }
///         Err(other) => {
///             eprintln!("store: {other}");
///             Response::new(StatusCode::INTERNAL_SERVER_ERROR)
///         }
///     }
/// }
/// # let _ = remember;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The key is longer than the host allows (the limit, in bytes:
    /// `--store-max-key`, 1024 by default; the host's `--store-prefix` does
    /// not count).
    KeyTooLarge(u32),
    /// The value is longer than the host allows (the limit, in bytes:
    /// `--store-max-value`, 1 MiB by default). A read fails this way too for
    /// a longer value another client put in Redis.
    ValueTooLarge(u32),
    /// The store is full and refused a new entry: a memory store at
    /// `--store-max-entries` or `--store-max-bytes` whose entries are all in
    /// use (or one with `--store-eviction none`), or a Redis out of memory
    /// under its `noeviction` policy. Try again later.
    Full,
    /// The backend could not be reached: Redis is down or slower than
    /// `--store-timeout` (1 s by default); the text says why. For a write that
    /// was sent, it says the write may or may not have been applied: retry
    /// only what is safe to repeat (`set`, `remove`, `touch`, a
    /// `compare_and_swap` re-checked), and read a counter back rather than
    /// repeat an [`increment`].
    Unavailable(String),
    /// [`increment`] found a value that is not a base-10 integer, or the sum
    /// would not fit in an `i64`.
    NotAnInteger,
    /// The stored value is not UTF-8 text (bytes written by another client
    /// of the same Redis).
    NotUtf8,
    /// A value read with [`get_json`] is not the JSON expected, or a value
    /// given to [`set_json`] cannot be serialized; the text is serde's.
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
///
/// ```
/// use wasmhost_sdk::store;
///
/// # fn main() -> Result<(), store::StoreError> {
/// match store::get("motd")? {
///     Some(text) => println!("message of the day: {text}"),
///     None => println!("no message today"),
/// }
/// # Ok(())
/// # }
/// ```
pub fn get(key: &str) -> Result<Option<String>, StoreError> {
    Ok(host::store_read(key)?)
}

/// Stores `value` under `key`, replacing what was there; with `ttl` it
/// expires that long from now, with none it never does (a TTL over about
/// 100 years counts as none).
///
/// ```
/// use std::time::Duration;
/// use wasmhost_sdk::store;
///
/// # fn main() -> Result<(), store::StoreError> {
/// store::set("motd", "Welcome!", None)?;
/// store::set("reset:ada", "token-123", Some(Duration::from_secs(15 * 60)))?;
/// # Ok(())
/// # }
/// ```
pub fn set(key: &str, value: &str, ttl: Option<Duration>) -> Result<(), StoreError> {
    Ok(host::store_set(key, value, ttl.map(millis))?)
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// Removes `key` (a missing key is fine).
///
/// ```
/// use wasmhost_sdk::store;
///
/// # fn main() -> Result<(), store::StoreError> {
/// store::remove("reset:ada")?;
/// assert_eq!(store::get("reset:ada")?, None);
/// # Ok(())
/// # }
/// ```
pub fn remove(key: &str) -> Result<(), StoreError> {
    Ok(host::store_remove(key)?)
}

/// Gives `key` a new TTL (none: no expiry) without changing its value;
/// false if there is no such key.
///
/// ```
/// use std::time::Duration;
/// use wasmhost_sdk::store;
///
/// # fn main() -> Result<(), store::StoreError> {
/// // Keep a cache entry for another minute, if it is still there.
/// if !store::touch("cache:home", Some(Duration::from_secs(60)))? {
///     println!("gone: rebuild it");
/// }
/// # Ok(())
/// # }
/// ```
pub fn touch(key: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
    Ok(host::store_touch(key, ttl.map(millis))?)
}

/// Stores `value` under `key` only if the key holds nothing (or expired):
/// true if this call stored it, false if the key was taken (and then nothing
/// changed). Of many tasks and hosts racing for one key, exactly one gets
/// true. On Redis it is `SET NX`.
///
/// Use it for locks, reservations and "first one wins", or to create a
/// counter with a TTL before [`increment`]ing it.
///
/// ```
/// use std::time::Duration;
/// use wasmhost_sdk::store;
///
/// # fn main() -> Result<(), store::StoreError> {
/// # let session_id = "abc";
/// // Claim a user name: the first session to ask gets it.
/// if store::set_if_absent("claim:neo", session_id, None)? {
///     println!("neo is yours");
/// } else {
///     println!("neo is taken");
/// }
///
/// // A lock that frees itself if its holder never comes back.
/// let locked = store::set_if_absent("lock:report", "task 3", Some(Duration::from_secs(30)))?;
/// if locked {
///     // ... do the work, then:
///     store::remove("lock:report")?;
/// }
/// # Ok(())
/// # }
/// ```
pub fn set_if_absent(key: &str, value: &str, ttl: Option<Duration>) -> Result<bool, StoreError> {
    Ok(host::store_set_if_absent(key, value, ttl.map(millis))?)
}

/// If `key` holds `expected` (none: holds nothing), replaces it with `new`
/// (none: removes it; `ttl` as in [`set`]) and returns true; otherwise
/// changes nothing and returns false, and the caller reads again and retries.
///
/// One atomic step (on Redis, a Lua script): the way to update a value
/// computed from the old one without losing a change another task made in
/// between.
///
/// ```
/// use wasmhost_sdk::store;
///
/// # fn main() -> Result<(), store::StoreError> {
/// // Append a name to a comma-separated list, however many tasks do it at once.
/// loop {
///     let current = store::get("guests")?;
///     let updated = match &current {
///         Some(list) => format!("{list},ada"),
///         None => "ada".to_owned(),
///     };
///     if store::compare_and_swap("guests", current.as_deref(), Some(&updated), None)? {
///         break;
///     }
///     // Another task changed it first: read again and retry.
/// }
///
/// // Remove a lock only if it is still ours.
/// store::compare_and_swap("lock:report", Some("task 3"), None, None)?;
/// # Ok(())
/// # }
/// ```
pub fn compare_and_swap(
    key: &str,
    expected: Option<&str>,
    new: Option<&str>,
    ttl: Option<Duration>,
) -> Result<bool, StoreError> {
    Ok(host::store_compare_and_swap(
        key,
        expected,
        new,
        ttl.map(millis),
    )?)
}

/// Adds `delta` (may be negative) to the integer under `key` and returns the
/// new value. A missing key counts as 0 and is created without a TTL; an
/// existing TTL is kept (give a counter one with [`touch`], or create it
/// with one using [`set_if_absent`]). On Redis it is `INCRBY`.
///
/// A value that is not a base-10 `i64`, or a sum out of range, is
/// [`StoreError::NotAnInteger`]. If a call fails as
/// [`StoreError::Unavailable`], the increment may or may not have happened:
/// read the counter back rather than repeat it.
///
/// ```
/// use std::time::Duration;
/// use wasmhost_sdk::store;
///
/// # fn main() -> Result<(), store::StoreError> {
/// // A counter every task and host adds to; no update is lost.
/// let total = store::increment("visits:total", 1)?;
///
/// // A rate limit: at most 5 requests per client per 10-second window.
/// let key = "rate:client-7:176400000";
/// store::set_if_absent(key, "0", Some(Duration::from_secs(10)))?; // the window's TTL
/// if store::increment(key, 1)? > 5 {
///     println!("429 Too Many Requests");
/// }
///
/// // Give back a reserved seat.
/// store::increment("seats:free", -1)?;
/// # let _ = total;
/// # Ok(())
/// # }
/// ```
pub fn increment(key: &str, delta: i64) -> Result<i64, StoreError> {
    Ok(host::store_increment(key, delta)?)
}

/// [`get`], decoding the value from JSON into any `Deserialize` type; a
/// value that is not that JSON is [`StoreError::Decode`].
///
/// ```
/// use wasmhost_sdk::store;
///
/// #[derive(serde::Deserialize)]
/// struct Settings {
///     theme: String,
/// }
///
/// # fn main() -> Result<(), store::StoreError> {
/// let settings: Option<Settings> = store::get_json("settings:ada")?;
/// let theme = settings.map_or_else(|| "light".to_owned(), |s| s.theme);
/// # let _ = theme;
/// # Ok(())
/// # }
/// ```
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, StoreError> {
    get(key)?
        .map(|text| serde_json::from_str(&text).map_err(|e| StoreError::Decode(e.to_string())))
        .transpose()
}

/// [`set`], encoding the value (any `Serialize`) as JSON.
///
/// ```
/// use std::time::Duration;
/// use wasmhost_sdk::store;
///
/// #[derive(serde::Serialize)]
/// struct Settings<'a> {
///     theme: &'a str,
/// }
///
/// # fn main() -> Result<(), store::StoreError> {
/// store::set_json("settings:ada", &Settings { theme: "dark" }, None)?;
/// store::set_json("recent:ada", &["/home", "/docs"], Some(Duration::from_secs(3600)))?;
/// # Ok(())
/// # }
/// ```
pub fn set_json<T: Serialize + ?Sized>(
    key: &str,
    value: &T,
    ttl: Option<Duration>,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(value).map_err(|e| StoreError::Decode(e.to_string()))?;
    set(key, &text, ttl)
}

impl StoreError {
    /// What a request that failed on this error answers, `what` naming the
    /// store in the body (`store`, `session store`): 503 while the store is
    /// unreachable or full (try again later), 500 otherwise; logged to the
    /// guest's stderr.
    pub(crate) fn failure_response(&self, what: &str) -> Response {
        eprintln!("wasmhost-sdk: {what}: {self}");
        match self {
            StoreError::Unavailable(_) | StoreError::Full => {
                Response::text(format!("{what} unavailable"))
                    .with_status(StatusCode::SERVICE_UNAVAILABLE)
            }
            _ => Response::internal_error(),
        }
    }
}

impl IntoResponse for StoreError {
    fn into_response(self) -> Response {
        self.failure_response("store")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_answer_with_their_side() {
        let ok: Result<&'static str, StoreError> = Ok("fine");
        assert_eq!(ok.into_response().status(), StatusCode::OK);
        let down: Result<&'static str, StoreError> = Err(StoreError::Unavailable("x".into()));
        assert_eq!(
            down.into_response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
