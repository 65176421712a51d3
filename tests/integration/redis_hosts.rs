//! Several hosts on one Redis (`--store redis://`): shared sessions in
//! connect-redis's layout, atomic operations that lose no update across hosts,
//! and a Redis that dies and comes back while the hosts serve.
//!
//! Every test starts its own `redis-server` on a free port.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmhost_tests::{
    Host, RedisServer, free_port, get_text, guest, http, session_cookie, session_id, wasmhost_bin,
};

/// A store call may take this long before it fails (`--store-timeout`).
const STORE_TIMEOUT: &str = "500ms";

fn host_on(redis: &RedisServer, app: &str, tasks: &str) -> Host {
    Host::on_redis(
        app,
        redis,
        &["--tasks", tasks, "--store-timeout", STORE_TIMEOUT],
    )
}

#[test]
fn two_hosts_share_sessions_in_connect_redis_layout() {
    let redis = RedisServer::start();
    let host_a = host_on(&redis, "guest-app", "2");
    let host_b = host_on(&redis, "guest-app", "2");
    let client = http();

    let set = client.get(host_a.url("/set")).send().unwrap();
    assert_eq!(set.status(), 200);
    let cookie = session_cookie(&set);
    for _ in 0..20 {
        let (status, body) = get_text(&client, &host_b.url("/"), Some(&cookie));
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["foo"], "bar", "host B sees what host A set: {body}");
    }

    let id = session_id(&cookie);
    let mut redis_client = redis.client();
    let stored: Option<String> = redis::cmd("GET")
        .arg(format!("sess:{id}"))
        .query(&mut redis_client)
        .unwrap();
    let stored: Value = serde_json::from_str(&stored.expect("sess:<id> is in Redis")).unwrap();
    assert_eq!(stored["foo"], "bar");
    assert_eq!(stored["cookie"]["originalMaxAge"], 900_000);
    assert_eq!(stored["cookie"]["httpOnly"], true);
    assert_eq!(stored["cookie"]["path"], "/");
    assert!(stored["cookie"]["expires"].is_string(), "{stored}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("sess:{id}"))
        .query(&mut redis_client)
        .unwrap();
    assert!(
        (890..=900).contains(&ttl),
        "TTL {ttl} s, expected about 900"
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis_client)
        .unwrap();
    assert_eq!(
        keys,
        vec![format!("sess:{id}")],
        "one session, nothing else"
    );
}

#[test]
fn increments_from_two_hosts_and_eight_tasks_lose_no_update() {
    let redis = RedisServer::start();
    let hosts = [
        host_on(&redis, "test-app", "4"),
        host_on(&redis, "test-app", "4"),
    ];
    // 8 clients (4 per host) at once, each 10 requests of 100 increments:
    // tasks of both hosts increment the same counter at the same time.
    std::thread::scope(|scope| {
        for client_number in 0..8 {
            let host = &hosts[client_number % 2];
            scope.spawn(move || {
                let client = http();
                for _ in 0..10 {
                    let (status, body) =
                        get_text(&client, &host.url("/store/incr?key=hits&times=100"), None);
                    assert_eq!(status, 200, "{body}");
                }
            });
        }
    });
    let (_, body) = get_text(&http(), &hosts[0].url("/store/get?key=hits"), None);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["value"], "8000");

    // Of 16 racing claims through both hosts, exactly one wins.
    let winners = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for claimant in 0..16 {
            let (host, winners) = (&hosts[claimant % 2], &winners);
            scope.spawn(move || {
                let url = host.url(&format!("/store/set-if-absent?key=owner&value={claimant}"));
                let (_, body) = get_text(&http(), &url, None);
                let body: Value = serde_json::from_str(&body).unwrap();
                if body["value"] == true {
                    winners.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(winners.into_inner(), 1);
}

#[test]
fn killing_redis_under_load_gives_fast_503s_and_service_comes_back() {
    let mut redis = RedisServer::start();
    let hosts = [
        host_on(&redis, "guest-app", "2"),
        host_on(&redis, "guest-app", "2"),
    ];
    let set = http().get(hosts[0].url("/set")).send().unwrap();
    let cookie = session_cookie(&set);

    // Load on both hosts the whole time: every answer is 200 or 503, none
    // takes long, and each is recorded.
    let stop = AtomicBool::new(false);
    let seen = Mutex::new((0usize, 0usize));
    let slowest = Mutex::new(Duration::ZERO);
    let bad = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for client_number in 0..4 {
            let (host, cookie) = (&hosts[client_number % 2], &cookie);
            let (stop, seen, slowest, bad) = (&stop, &seen, &slowest, &bad);
            scope.spawn(move || {
                let client = http();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let (status, body) = get_text(&client, &host.url("/"), Some(cookie.as_str()));
                    let took = started.elapsed();
                    let mut slowest = slowest.lock().unwrap();
                    *slowest = (*slowest).max(took);
                    let mut seen = seen.lock().unwrap();
                    match status {
                        200 if body.contains("\"foo\":\"bar\"") => seen.0 += 1,
                        503 => seen.1 += 1,
                        _ => bad.lock().unwrap().push(format!("{status} {body}")),
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500));
        redis.kill();
        std::thread::sleep(Duration::from_secs(2));
        let during = *seen.lock().unwrap();
        redis.restart();
        // Until the hosts have found Redis again, then a while longer.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let before = seen.lock().unwrap().0;
            std::thread::sleep(Duration::from_millis(500));
            if seen.lock().unwrap().0 > before + 20 {
                break;
            }
            assert!(Instant::now() < deadline, "service did not come back");
        }
        stop.store(true, Ordering::Relaxed);
        eprintln!(
            "while Redis was down: {} ok, {} answered 503",
            during.0, during.1
        );
        assert!(
            during.1 > 0,
            "requests failed with 503 while Redis was down"
        );
    });

    assert_eq!(
        *bad.lock().unwrap(),
        Vec::<String>::new(),
        "only 200 or 503"
    );
    let slowest = *slowest.lock().unwrap();
    assert!(
        slowest < Duration::from_secs(3),
        "a request took {slowest:?}"
    );
    for host in &hosts {
        let (status, body) = get_text(&http(), &host.url("/"), Some(&cookie));
        assert_eq!(
            (status, body.contains("\"foo\":\"bar\"")),
            (200, true),
            "{body}"
        );
        assert!(
            host.wait_for_log("store unavailable", Duration::from_secs(5)),
            "503s are logged"
        );
    }
}

#[test]
fn a_redis_that_is_not_there_stops_the_host_at_start_with_one_line() {
    let port = free_port();
    let started = Instant::now();
    let output = Command::new(wasmhost_bin())
        .args(["--listen", "127.0.0.1:0", "--store"])
        .arg(format!("redis://:s3cret@127.0.0.1:{port}"))
        .arg(guest("guest-app"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<_> = stderr
        .lines()
        .filter(|line| line.contains("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains(&format!("cannot reach Redis at 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret"),
        "the password is not shown: {stderr}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening on"));
}

#[test]
fn a_bad_store_url_is_refused_with_one_line() {
    for (url, expected) in [
        ("redis://:s3cret@127.0.0.1:6379/notadb", "invalid Redis URL"),
        ("rediss://:s3cret@127.0.0.1:6379", "no TLS"),
        ("mongodb://u:s3cret@x", "unknown store"),
        ("memroy", "expected `memory`"),
    ] {
        let output = Command::new(wasmhost_bin())
            .args(["--store", url])
            .arg(guest("guest-app"))
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{url}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !stderr.contains("s3cret"),
            "the password is not shown: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn apps_with_different_store_prefixes_cannot_reach_each_others_keys() {
    let redis = RedisServer::start();
    let on = |prefix: &str| {
        Host::on_redis(
            "test-app",
            &redis,
            &["--tasks", "1", "--store-prefix", prefix],
        )
    };
    let (shop, blog) = (on("shop:"), on("blog:"));
    let client = http();
    let (status, _) = get_text(&client, &shop.url("/store/set?key=k&value=mine"), None);
    assert_eq!(status, 200);
    let (_, body) = get_text(&client, &blog.url("/store/get?key=k"), None);
    assert_eq!(body, r#"{"value":null}"#, "the other app does not see it");
    // Not even by naming the other app's prefix: the host adds its own.
    let (_, body) = get_text(&client, &blog.url("/store/get?key=shop:k"), None);
    assert_eq!(body, r#"{"value":null}"#);
    let (_, body) = get_text(&client, &shop.url("/store/get?key=k"), None);
    assert_eq!(body, r#"{"value":"mine"}"#);
    // Scripts too (compare-and-swap, increment), and sessions.
    let (_, body) = get_text(&client, &blog.url("/store/cas?key=k&new=theirs"), None);
    assert_eq!(body, r#"{"value":true}"#, "blog:k was empty");
    let (_, body) = get_text(&client, &shop.url("/store/get?key=k"), None);
    assert_eq!(body, r#"{"value":"mine"}"#);
    let response = client.get(shop.url("/visits")).send().unwrap();
    let id = session_id(&session_cookie(&response));
    let mut redis_client = redis.client();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis_client)
        .unwrap();
    let mut keys = keys;
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "blog:k".to_owned(),
            "shop:k".to_owned(),
            format!("shop:sess:{id}")
        ]
    );
    // The key limit the guest sees does not count the prefix.
    let (_, body) = get_text(
        &client,
        &shop.url(&format!("/store/set?key={}&value=v", "x".repeat(1025))),
        None,
    );
    assert_eq!(body, r#"{"error":"KeyTooLarge(1024)"}"#);
}

#[test]
fn values_in_redis_too_large_or_not_text_are_errors_not_allocations() {
    let redis = RedisServer::start();
    let host = Host::on_redis(
        "test-app",
        &redis,
        &["--tasks", "1", "--store-max-value", "1KiB"],
    );
    // Written by another client of the Redis, past this host's limit.
    let mut redis_client = redis.client();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg("x".repeat(64 * 1024))
        .query(&mut redis_client)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("bytes")
        .arg(&[0xffu8, 0xfe, 0x00][..])
        .query(&mut redis_client)
        .unwrap();
    let client = http();
    let (_, body) = get_text(&client, &host.url("/store/get?key=big"), None);
    assert_eq!(body, r#"{"error":"ValueTooLarge(1024)"}"#);
    let (_, body) = get_text(&client, &host.url("/store/get?key=bytes"), None);
    assert_eq!(body, r#"{"error":"NotUtf8"}"#);
    // A value of exactly the limit is read; one byte more is refused. The
    // host fetches at most one byte past the limit (GETRANGE), and an empty
    // answer, a missing key or an empty value, is told apart by a script.
    for (key, len) in [("at-limit", 1024), ("past-limit", 1025), ("empty", 0)] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("y".repeat(len))
            .query(&mut redis_client)
            .unwrap();
    }
    let (_, body) = get_text(&client, &host.url("/store/get?key=at-limit"), None);
    assert_eq!(body, format!(r#"{{"value":"{}"}}"#, "y".repeat(1024)));
    let (_, body) = get_text(&client, &host.url("/store/get?key=past-limit"), None);
    assert_eq!(body, r#"{"error":"ValueTooLarge(1024)"}"#);
    let (_, body) = get_text(&client, &host.url("/store/get?key=empty"), None);
    assert_eq!(body, r#"{"value":""}"#);
    let (_, body) = get_text(&client, &host.url("/store/get?key=missing"), None);
    assert_eq!(body, r#"{"value":null}"#);
    let (status, _) = get_text(&client, &host.url("/task"), None);
    assert_eq!(status, 200);
}

#[test]
fn a_write_that_times_out_says_its_outcome_is_unknown() {
    let redis = RedisServer::start();
    let host = Host::on_redis(
        "test-app",
        &redis,
        &["--tasks", "1", "--store-timeout", "300ms"],
    );
    // Redis takes the command, then answers nothing for 2 s.
    let mut stall = redis.client();
    let stalled = std::thread::spawn(move || {
        let _: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg(2).query(&mut stall);
    });
    std::thread::sleep(Duration::from_millis(200));
    let (status, body) = get_text(&http(), &host.url("/store/set?key=k&value=v"), None);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("may or may not have been applied"), "{body}");
    stalled.join().unwrap();
}
