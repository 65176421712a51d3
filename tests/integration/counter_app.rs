//! The example app built on the store's atomic operations (`examples/counter-app`),
//! served by two hosts on one Redis, as it would be deployed.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use wasmhost_tests::{InProcess, RedisServer, guest, http, session_cookie};

fn counter_hosts(redis: &RedisServer, extra: &[&str]) -> [InProcess; 2] {
    let url = redis.url();
    let mut args = vec!["--tasks", "2", "--store", &url];
    args.extend_from_slice(extra);
    [
        InProcess::start(&guest("counter-app"), &args),
        InProcess::start(&guest("counter-app"), &args),
    ]
}

fn call(
    method: &str,
    url: &str,
    cookie: &str,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let client = http();
    let mut request = client.request(method.parse().unwrap(), url);
    if !cookie.is_empty() {
        request = request.header("cookie", cookie);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.json().unwrap_or(Value::Null);
    (status, body, retry_after)
}

/// A new visitor: its first visit, and the cookie for the next ones.
fn new_visitor(host: &InProcess) -> (Value, String) {
    let response = http().get(host.url("/")).send().unwrap();
    assert_eq!(response.status(), 200);
    let cookie = session_cookie(&response);
    (response.json().unwrap(), cookie)
}

#[test]
fn visits_are_counted_per_session_and_in_total_across_hosts() {
    let redis = RedisServer::start();
    let hosts = counter_hosts(&redis, &[]);
    let (first, alice) = new_visitor(&hosts[0]);
    assert_eq!(
        (first["total"].clone(), first["mine"].clone()),
        (json!(1), json!(1))
    );
    for visit in 2..=5 {
        let (status, body, _) = call("GET", &hosts[visit % 2].url("/"), &alice, None);
        assert_eq!(status, 200);
        assert_eq!(body["mine"], visit, "{body}");
    }
    let (bob_first, _) = new_visitor(&hosts[1]);
    assert_eq!(
        (bob_first["total"].clone(), bob_first["mine"].clone()),
        (json!(6), json!(1))
    );

    // 4 clients on both hosts at once: the total counts every visit.
    let visits = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for client in 0..4 {
            let (host, alice, visits) = (&hosts[client % 2], &alice, &visits);
            scope.spawn(move || {
                for _ in 0..25 {
                    let (status, _, _) = call("GET", &host.url("/"), alice, None);
                    assert_eq!(status, 200);
                    visits.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(visits.into_inner(), 100);
    let (_, last, _) = call("GET", &hosts[0].url("/"), &alice, None);
    assert_eq!(last["total"], 6 + 100 + 1);
    assert_eq!(last["mine"], 5 + 100 + 1);

    let mut redis_client = redis.client();
    let total: String = redis::cmd("GET")
        .arg("visits:total")
        .query(&mut redis_client)
        .unwrap();
    assert_eq!(total, "107");
}

#[test]
fn the_rate_limit_holds_across_hosts_and_says_when_to_retry() {
    let redis = RedisServer::start();
    let hosts = counter_hosts(
        &redis,
        &["--env", "RATE_LIMIT=3", "--env", "RATE_WINDOW_MS=60000"],
    );
    let (_, cookie) = new_visitor(&hosts[0]);
    let mut allowed = 0;
    let mut refused = 0;
    // 2 x the limit + 1: even if a window ends between two requests, more
    // than the limit fall into one window.
    for request in 0..7 {
        let (status, body, retry_after) =
            call("GET", &hosts[request % 2].url("/limited"), &cookie, None);
        match status {
            200 => allowed += 1,
            429 => {
                refused += 1;
                assert_eq!(body["allowed"], false);
                let seconds: u64 = retry_after.expect("a Retry-After").parse().unwrap();
                assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
            }
            other => panic!("status {other}: {body}"),
        }
    }
    // A window boundary may fall inside the loop; then the new window allows more.
    assert!(
        allowed >= 3 && refused >= 1,
        "allowed {allowed}, refused {refused}"
    );
    let (_, other_cookie) = new_visitor(&hosts[1]);
    let (status, _, _) = call("GET", &hosts[1].url("/limited"), &other_cookie, None);
    assert_eq!(status, 200, "another session has its own limit");
}

#[test]
fn a_name_is_claimed_once_and_the_message_changes_only_from_what_it_was() {
    let redis = RedisServer::start();
    let hosts = counter_hosts(&redis, &[]);
    let (_, alice) = new_visitor(&hosts[0]);
    let (_, bob) = new_visitor(&hosts[1]);

    let (status, body, _) = call("POST", &hosts[0].url("/claim/neo"), &alice, None);
    assert_eq!((status, body["claimed"].clone()), (201, json!(true)));
    let (status, body, _) = call("POST", &hosts[1].url("/claim/neo"), &bob, None);
    assert_eq!((status, body["claimed"].clone()), (409, json!(false)));
    let (status, _, _) = call("POST", &hosts[1].url("/claim/neo"), &alice, None);
    assert_eq!(status, 200, "the owner asking again keeps it");

    let motd = |host: &InProcess, expected: Value, text: &str| {
        call(
            "PUT",
            &host.url("/motd"),
            "",
            Some(json!({ "expected": expected, "text": text })),
        )
    };
    let (status, body, _) = motd(&hosts[0], Value::Null, "hello");
    assert_eq!((status, body["text"].clone()), (200, json!("hello")));
    // Two editors both started from "hello": the first wins, the second is
    // told what the message is now.
    let (status, _, _) = motd(&hosts[1], json!("hello"), "from bob");
    assert_eq!(status, 200);
    let (status, body, _) = motd(&hosts[0], json!("hello"), "from alice");
    assert_eq!((status, body["text"].clone()), (409, json!("from bob")));
    let (_, body, _) = call("GET", &hosts[0].url("/motd"), "", None);
    assert_eq!(body["text"], "from bob");
    let (status, _, _) = call(
        "PUT",
        &hosts[0].url("/motd"),
        "",
        Some(json!({ "text": 1 })),
    );
    assert_eq!(status, 400);
}
