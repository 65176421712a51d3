//! The store conformance suite: the same tests against every backend, the
//! in-memory one and Redis (a real `redis-server` each test starts itself).
//!
//! "Two handles" are two views of one store as two tasks see it: for memory,
//! the same map; for Redis, two separate connections, as two hosts have.

use std::time::{Duration, Instant};

use wasmhost::store::{
    Backend, Eviction, Limits, MemoryStore, RedisStore, SharedStore, StoreError,
};
use wasmhost_tests::RedisServer;

/// How long a Redis store call may take before it is an error.
const TIMEOUT: Duration = Duration::from_millis(500);

/// A TTL that outlives the few calls a test makes right after setting it,
/// even on a slow, busy machine.
const SHORT_TTL: Duration = Duration::from_secs(1);

/// Long enough for a [`SHORT_TTL`] to have run out.
const PAST_SHORT_TTL: Duration = Duration::from_millis(2_200);

/// A store under test and what keeps it alive.
struct Opened {
    a: SharedStore,
    b: SharedStore,
    /// The test's Redis, if the backend is Redis.
    redis: Option<RedisServer>,
}

#[derive(Clone, Copy)]
enum Kind {
    Memory,
    Redis,
}

async fn open(kind: Kind, limits: Limits) -> Opened {
    match kind {
        Kind::Memory => {
            let store = SharedStore::from(MemoryStore::new(limits));
            Opened {
                a: store.clone(),
                b: store,
                redis: None,
            }
        }
        Kind::Redis => {
            let server = RedisServer::start();
            let url = server.url();
            let a = RedisStore::connect(&url, limits, TIMEOUT).await;
            let b = RedisStore::connect(&url, limits, TIMEOUT).await;
            let (a, b) = (
                a.expect("the store connects"),
                b.expect("the store connects"),
            );
            Opened {
                a: a.into(),
                b: b.into(),
                redis: Some(server),
            }
        }
    }
}

/// Runs every listed test against both backends.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Kind::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Kind::Redis).await
                }
            )*
        }
    };
}

conformance!(
    set_read_remove,
    a_ttl_past_a_century_is_no_ttl,
    a_write_is_read_through_the_other_handle,
    entries_with_a_ttl_expire,
    a_new_set_replaces_the_ttl,
    touch_renews_or_clears_the_ttl_of_live_keys_only,
    set_if_absent_stores_only_into_an_empty_key,
    compare_and_swap_changes_only_the_expected_value,
    increment_counts_from_zero_and_keeps_the_ttl,
    increment_refuses_what_is_not_an_integer,
    concurrent_increments_lose_no_update,
    exactly_one_of_racing_claims_wins,
    key_and_value_limits_are_errors,
);

async fn a_ttl_past_a_century_is_no_ttl(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    let ttls = [
        Duration::MAX,
        Duration::from_millis(u64::MAX),
        Duration::from_secs(200 * 365 * 86_400),
    ];
    for ttl in ttls {
        s.a.set("k".into(), "v".into(), Some(ttl)).await.unwrap();
        assert_eq!(s.a.read("k").await, Ok(Some("v".into())));
        assert_eq!(s.a.touch("k", Some(ttl)).await, Ok(true));
        let swapped =
            s.a.compare_and_swap("k".into(), Some("v".into()), Some("w".into()), Some(ttl));
        assert_eq!(swapped.await, Ok(true));
        s.a.remove("k").await.unwrap();
        assert_eq!(
            s.a.set_if_absent("k".into(), "v".into(), Some(ttl)).await,
            Ok(true)
        );
        s.a.remove("k").await.unwrap();
    }
}

async fn set_read_remove(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    assert_eq!(s.a.read("k").await, Ok(None));
    s.a.set("k".into(), "v1".into(), None).await.unwrap();
    s.a.set("k".into(), "v2".into(), None).await.unwrap();
    assert_eq!(s.a.read("k").await, Ok(Some("v2".into())));
    s.a.remove("k").await.unwrap();
    s.a.remove("k").await.unwrap();
    assert_eq!(s.a.read("k").await, Ok(None));
    // An empty value is a value, not a missing key.
    s.a.set("empty".into(), String::new(), None).await.unwrap();
    assert_eq!(s.a.read("empty").await, Ok(Some(String::new())));
    s.a.remove("empty").await.unwrap();
    assert_eq!(s.a.read("empty").await, Ok(None));
    let text = "{\"cookie\":{},\"é\":\"\\u0000 ✓\"}";
    s.a.set("sess:x".into(), text.into(), None).await.unwrap();
    assert_eq!(s.a.read("sess:x").await, Ok(Some(text.into())));
}

async fn a_write_is_read_through_the_other_handle(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    s.a.set("shared".into(), "from a".into(), None)
        .await
        .unwrap();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let b = s.b.clone();
            tokio::spawn(async move { b.read("shared").await })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), Ok(Some("from a".into())));
    }
    s.b.remove("shared").await.unwrap();
    assert_eq!(s.a.read("shared").await, Ok(None));
}

async fn entries_with_a_ttl_expire(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    let short = Some(SHORT_TTL);
    s.a.set("short".into(), "v".into(), short).await.unwrap();
    s.a.set("long".into(), "v".into(), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    s.a.set("forever".into(), "v".into(), None).await.unwrap();
    assert_eq!(s.b.read("short").await, Ok(Some("v".into())));
    tokio::time::sleep(PAST_SHORT_TTL).await;
    assert_eq!(s.b.read("short").await, Ok(None));
    assert_eq!(s.b.read("long").await, Ok(Some("v".into())));
    assert_eq!(s.b.read("forever").await, Ok(Some("v".into())));
}

async fn a_new_set_replaces_the_ttl(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    let short = Some(SHORT_TTL);
    s.a.set("k".into(), "v".into(), short).await.unwrap();
    s.a.set("k".into(), "w".into(), None).await.unwrap();
    tokio::time::sleep(PAST_SHORT_TTL).await;
    assert_eq!(s.a.read("k").await, Ok(Some("w".into())));
}

async fn touch_renews_or_clears_the_ttl_of_live_keys_only(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    assert_eq!(s.a.touch("missing", None).await, Ok(false));
    assert_eq!(
        s.a.touch("missing", Some(Duration::from_secs(1))).await,
        Ok(false)
    );
    let short = Some(SHORT_TTL);
    s.a.set("renewed".into(), "v".into(), short).await.unwrap();
    s.a.set("persisted".into(), "v".into(), short)
        .await
        .unwrap();
    s.a.set("no-ttl".into(), "v".into(), None).await.unwrap();
    assert_eq!(
        s.b.touch("renewed", Some(Duration::from_secs(60))).await,
        Ok(true)
    );
    assert_eq!(s.b.touch("persisted", None).await, Ok(true));
    assert_eq!(
        s.b.touch("no-ttl", None).await,
        Ok(true),
        "a key without a TTL exists all the same"
    );
    tokio::time::sleep(PAST_SHORT_TTL).await;
    assert_eq!(s.a.read("renewed").await, Ok(Some("v".into())));
    assert_eq!(s.a.read("persisted").await, Ok(Some("v".into())));
    s.a.touch("renewed", Some(Duration::from_millis(50)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.a.read("renewed").await, Ok(None));
    assert_eq!(
        s.a.touch("renewed", None).await,
        Ok(false),
        "an expired key cannot be revived"
    );
}

async fn set_if_absent_stores_only_into_an_empty_key(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    let short = Some(SHORT_TTL);
    assert_eq!(
        s.a.set_if_absent("k".into(), "first".into(), short).await,
        Ok(true)
    );
    assert_eq!(
        s.b.set_if_absent("k".into(), "second".into(), None).await,
        Ok(false)
    );
    assert_eq!(s.a.read("k").await, Ok(Some("first".into())));
    tokio::time::sleep(PAST_SHORT_TTL).await;
    assert_eq!(
        s.b.set_if_absent("k".into(), "third".into(), None).await,
        Ok(true),
        "an expired key is empty"
    );
    assert_eq!(s.a.read("k").await, Ok(Some("third".into())));
}

async fn compare_and_swap_changes_only_the_expected_value(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    let cas = |expected: Option<&str>, new: Option<&str>, ttl: Option<Duration>| {
        let store = s.b.clone();
        let expected = expected.map(str::to_owned);
        let new = new.map(str::to_owned);
        async move { store.compare_and_swap("k".into(), expected, new, ttl).await }
    };
    assert_eq!(
        cas(Some("x"), Some("y"), None).await,
        Ok(false),
        "k is empty"
    );
    assert_eq!(s.a.read("k").await, Ok(None));
    assert_eq!(cas(None, Some("one"), None).await, Ok(true));
    assert_eq!(cas(None, Some("two"), None).await, Ok(false), "k is taken");
    assert_eq!(cas(Some("two"), Some("three"), None).await, Ok(false));
    assert_eq!(s.a.read("k").await, Ok(Some("one".into())));
    assert_eq!(cas(Some("one"), Some("two"), None).await, Ok(true));
    assert_eq!(s.a.read("k").await, Ok(Some("two".into())));
    assert_eq!(
        cas(Some("two"), None, None).await,
        Ok(true),
        "swap to removal"
    );
    assert_eq!(s.a.read("k").await, Ok(None));
    let short = Some(SHORT_TTL);
    assert_eq!(cas(None, Some("brief"), short).await, Ok(true));
    tokio::time::sleep(PAST_SHORT_TTL).await;
    assert_eq!(s.a.read("k").await, Ok(None), "the new value took the TTL");
    assert_eq!(
        cas(None, Some("again"), None).await,
        Ok(true),
        "expired is empty"
    );
}

async fn increment_counts_from_zero_and_keeps_the_ttl(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    assert_eq!(s.a.increment("n".into(), 5).await, Ok(5));
    assert_eq!(s.b.increment("n".into(), -7).await, Ok(-2));
    assert_eq!(s.a.read("n").await, Ok(Some("-2".into())));
    s.a.set("ttl".into(), "10".into(), Some(SHORT_TTL))
        .await
        .unwrap();
    assert_eq!(s.a.increment("ttl".into(), 1).await, Ok(11));
    tokio::time::sleep(PAST_SHORT_TTL).await;
    assert_eq!(s.a.read("ttl").await, Ok(None), "the counter kept its TTL");
    assert_eq!(
        s.a.increment("ttl".into(), 1).await,
        Ok(1),
        "and starts again"
    );
}

async fn increment_refuses_what_is_not_an_integer(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    s.a.set("text".into(), "abc".into(), None).await.unwrap();
    assert_eq!(
        s.a.increment("text".into(), 1).await,
        Err(StoreError::NotAnInteger)
    );
    assert_eq!(
        s.a.read("text").await,
        Ok(Some("abc".into())),
        "left as it was"
    );
    for spelling in ["+5", "007", "-0", " 1", "1.0", ""] {
        s.a.set("odd".into(), spelling.into(), None).await.unwrap();
        assert_eq!(
            s.a.increment("odd".into(), 1).await,
            Err(StoreError::NotAnInteger),
            "{spelling:?}"
        );
    }
    s.a.set("max".into(), i64::MAX.to_string(), None)
        .await
        .unwrap();
    assert_eq!(
        s.a.increment("max".into(), 1).await,
        Err(StoreError::NotAnInteger)
    );
    assert_eq!(s.a.read("max").await, Ok(Some(i64::MAX.to_string())));
}

async fn concurrent_increments_lose_no_update(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { &s.a } else { &s.b }.clone();
            tokio::spawn(async move {
                for _ in 0..250 {
                    store.increment("hits".into(), 1).await.unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(s.a.read("hits").await, Ok(Some("2000".into())));
}

async fn exactly_one_of_racing_claims_wins(kind: Kind) {
    let s = open(kind, Limits::default()).await;
    let claims: Vec<_> = (0..16)
        .map(|i| {
            let store = if i % 2 == 0 { &s.a } else { &s.b }.clone();
            tokio::spawn(async move {
                let won_set = store
                    .set_if_absent("claim".into(), format!("{i}"), None)
                    .await
                    .unwrap();
                let won_cas = store
                    .compare_and_swap("lock".into(), None, Some(format!("{i}")), None)
                    .await
                    .unwrap();
                (won_set, won_cas)
            })
        })
        .collect();
    let mut set_winners = 0;
    let mut cas_winners = 0;
    for claim in claims {
        let (won_set, won_cas) = claim.await.unwrap();
        set_winners += usize::from(won_set);
        cas_winners += usize::from(won_cas);
    }
    assert_eq!((set_winners, cas_winners), (1, 1));
}

async fn key_and_value_limits_are_errors(kind: Kind) {
    let limits = Limits {
        max_key_bytes: 4,
        max_value_bytes: 3,
        ..Limits::default()
    };
    let s = open(kind, limits).await;
    let key_error = Some(StoreError::KeyTooLarge { limit: 4 });
    let value_error = Some(StoreError::ValueTooLarge { limit: 3 });
    assert_eq!(s.a.read("12345").await.err(), key_error);
    assert_eq!(
        s.a.set("12345".into(), "v".into(), None).await.err(),
        key_error
    );
    assert_eq!(s.a.remove("12345").await.err(), key_error);
    assert_eq!(s.a.touch("12345", None).await.err(), key_error);
    assert_eq!(s.a.increment("12345".into(), 1).await.err(), key_error);
    assert_eq!(
        s.a.set("k".into(), "long".into(), None).await.err(),
        value_error
    );
    assert_eq!(
        s.a.set_if_absent("k".into(), "long".into(), None)
            .await
            .err(),
        value_error
    );
    assert_eq!(
        s.a.compare_and_swap("k".into(), None, Some("long".into()), None)
            .await
            .err(),
        value_error
    );
    assert_eq!(s.a.read("k").await, Ok(None), "nothing was stored");
}

/// Only the memory store counts entries (Redis has its own `maxmemory`).
/// Without eviction, a full store refuses new entries.
#[tokio::test]
async fn the_memory_store_refuses_entries_over_its_limit() {
    let store = MemoryStore::new(Limits {
        max_entries: 2,
        eviction: Eviction::None,
        ..Limits::default()
    });
    store.set("a".into(), "1".into(), None).unwrap();
    assert_eq!(
        Backend::set_if_absent(&store, "b".into(), "2".into(), None).await,
        Ok(true)
    );
    assert_eq!(
        Backend::set_if_absent(&store, "c".into(), "3".into(), None).await,
        Err(StoreError::Full)
    );
    assert_eq!(
        Backend::increment(&store, "c".into(), 1).await,
        Err(StoreError::Full)
    );
    assert_eq!(
        Backend::increment(&store, "a".into(), 1).await,
        Ok(2),
        "no new entry"
    );
    assert_eq!(
        Backend::compare_and_swap(&store, "b".into(), Some("2".into()), None, None).await,
        Ok(true)
    );
    assert_eq!(
        Backend::increment(&store, "c".into(), 1).await,
        Ok(1),
        "room again"
    );
}

/// A lost Redis fails calls as unavailable within the store timeout (no call
/// hangs), and the store finds Redis again by itself when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_redis_fails_calls_fast_and_is_found_again() {
    let mut s = open(Kind::Redis, Limits::default()).await;
    s.a.set("kept".into(), "v".into(), None).await.unwrap();
    let server = s.redis.as_mut().expect("a Redis store has a server");
    server.kill();
    for _ in 0..5 {
        let started = Instant::now();
        let read = s.a.read("kept").await;
        assert!(
            matches!(read, Err(StoreError::Unavailable(_))),
            "got {read:?}"
        );
        assert!(
            started.elapsed() < TIMEOUT + Duration::from_millis(500),
            "a call took {:?}",
            started.elapsed()
        );
    }
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match s.a.read("kept").await {
            Ok(value) => {
                assert_eq!(value, Some("v".into()), "the acknowledged write survived");
                break;
            }
            Err(error) => assert!(
                Instant::now() < deadline,
                "the store did not reconnect: {error}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connecting to a Redis that is not there fails within the timeout.
#[tokio::test]
async fn connecting_to_no_redis_fails_fast() {
    let port = wasmhost_tests::free_port();
    let started = Instant::now();
    let connected = RedisStore::connect(
        &format!("redis://127.0.0.1:{port}"),
        Limits::default(),
        TIMEOUT,
    )
    .await;
    let error = connected.err().expect("nothing listens there");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    assert!(started.elapsed() < TIMEOUT + Duration::from_millis(500));
}
