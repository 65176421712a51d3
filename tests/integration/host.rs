//! The host's side of the contract, driven through the test-app guest:
//! request and response conversion, the shared store and its TTLs, the
//! guest's environment and log, `--tasks`, and shutdown.

use std::collections::BTreeSet;
use std::time::Duration;

use nix::sys::signal::Signal;
use reqwest::header::SET_COOKIE;
use serde_json::{Value, json};
use wasmhost_tests::{Host, InProcess, Served, guest, http};

/// The test app served in process, for tests that need no process boundary.
fn test_host(args: &[&str]) -> InProcess {
    InProcess::start(&guest("test-app"), args)
}

/// The test app as a process, for tests that read its log or signal it.
fn test_process(args: &[&str]) -> Host {
    Host::start(&guest("test-app"), args)
}

fn get(host: &impl Served, path: &str) -> Value {
    let response = http().get(host.url(path)).send().unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().unwrap()
}

#[test]
fn method_path_query_headers_and_body_reach_the_guest() {
    let host = test_host(&["--tasks", "1"]);
    let response = http()
        .post(host.url("/echo?a=1&b=two%20words"))
        .header("X-Custom", "first")
        .header("x-custom", "second")
        .body("hello body")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: Value = response.json().unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/echo");
    assert_eq!(echo["query"], "a=1&b=two%20words");
    assert_eq!(echo["body"], "hello body");
    let headers = echo["headers"].as_array().unwrap();
    let custom: Vec<&Value> = headers
        .iter()
        .filter(|pair| pair[0] == "x-custom")
        .map(|pair| &pair[1])
        .collect();
    assert_eq!(custom, [&json!("first"), &json!("second")], "{headers:?}");
}

#[test]
fn uncommon_methods_and_empty_bodies_reach_the_guest() {
    let host = test_host(&["--tasks", "1"]);
    for method in ["PATCH", "PURGE"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = http()
            .request(method.clone(), host.url("/echo?x"))
            .body("")
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{method}");
        let echo: Value = response.json().unwrap();
        assert_eq!(echo["method"], method.as_str());
        assert_eq!(echo["path"], "/echo");
        assert_eq!(echo["query"], "x");
        assert_eq!(echo["body"], "");
    }
}

#[test]
fn headers_the_guest_sets_are_checked_before_they_are_sent() {
    let host = test_host(&["--tasks", "1"]);
    let fetch = |query: &str| {
        http()
            .get(host.url(&format!("/header?{query}")))
            .send()
            .unwrap()
    };

    let fine = fetch("name=x-echo&value=a%20b");
    assert_eq!(fine.status(), 200);
    assert_eq!(fine.headers()["x-echo"], "a b");

    // A NUL must not split the value into a header of its own, and a line
    // break must not reach the wire: both make the answer a 500.
    for query in [
        "name=x-echo&value=1%00set-cookie%00evil%3D1",
        "name=x-echo&value=1%0D%0Aset-cookie:%20evil%3D1",
        "name=bad%20name&value=1",
        "name=&value=1",
    ] {
        let response = fetch(query);
        assert_eq!(response.status(), 500, "{query}");
        assert!(response.headers().get(SET_COOKIE).is_none(), "{query}");
        assert!(response.headers().get("x-echo").is_none(), "{query}");
    }
    // The instance that sent them still serves.
    assert_eq!(fetch("name=x-echo&value=again").status(), 200);
}

#[test]
fn several_set_cookie_headers_all_reach_the_client() {
    let host = test_host(&["--tasks", "1"]);
    let response = http().get(host.url("/two-cookies")).send().unwrap();
    let cookies: Vec<&str> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies, ["first=1; Path=/", "second=2; Path=/; HttpOnly"]);
}

#[test]
fn tasks_flag_sets_the_number_of_tasks() {
    let host = test_host(&["--tasks", "3"]);
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        let task = get(&host, "/task");
        assert_eq!(task["count"], 3);
        seen.insert(task["id"].as_u64().unwrap());
    }
    assert_eq!(
        seen,
        BTreeSet::from([0, 1, 2]),
        "60 connections reached tasks {seen:?}"
    );
}

#[test]
fn store_writes_are_seen_by_every_task_and_expire_with_their_ttl() {
    let host = test_host(&["--tasks", "4"]);
    assert_eq!(
        get(&host, "/store/set?key=k&value=v1"),
        json!({ "ok": true })
    );
    assert_eq!(
        get(&host, "/store/set?key=short&value=v2&ttl_ms=300"),
        json!({ "ok": true })
    );
    for _ in 0..20 {
        assert_eq!(get(&host, "/store/get?key=k"), json!({ "value": "v1" }));
    }
    assert_eq!(get(&host, "/store/get?key=short"), json!({ "value": "v2" }));
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(get(&host, "/store/get?key=short"), json!({ "value": null }));
    assert_eq!(get(&host, "/store/get?key=k"), json!({ "value": "v1" }));
}

#[test]
fn touch_renews_a_ttl_without_changing_the_value() {
    let host = test_host(&["--tasks", "2"]);
    get(&host, "/store/set?key=t&value=kept&ttl_ms=300");
    assert_eq!(
        get(&host, "/store/touch?key=t&ttl_ms=60000"),
        json!({ "found": true })
    );
    assert_eq!(
        get(&host, "/store/touch?key=nothing&ttl_ms=60000"),
        json!({ "found": false })
    );
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(get(&host, "/store/get?key=t"), json!({ "value": "kept" }));
}

#[test]
fn a_session_expires_with_its_max_age() {
    let host = test_host(&["--tasks", "2", "--env", "SESSION_MAX_AGE_MS=400"]);
    let client = http();
    let first = client.get(host.url("/visits")).send().unwrap();
    let cookie = first.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(first.json::<Value>().unwrap()["visits"], 1);
    let visit = |cookie: &str| -> Value {
        client
            .get(host.url("/visits"))
            .header("cookie", cookie)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(visit(&cookie)["visits"], 2);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(visit(&cookie)["visits"], 1, "the session expired");
}

#[test]
fn store_limits_are_errors_the_guest_sees() {
    let host = test_host(&[
        "--tasks",
        "1",
        "--store-max-value",
        "4",
        "--store-max-key",
        "8",
        "--store-max-entries",
        "1",
    ]);
    let client = http();
    let body = |path: &str| -> Value { client.get(host.url(path)).send().unwrap().json().unwrap() };
    assert_eq!(
        body("/store/set?key=k&value=12345"),
        json!({ "error": "ValueTooLarge(4)" })
    );
    assert_eq!(
        body("/store/set?key=123456789&value=1"),
        json!({ "error": "KeyTooLarge(8)" })
    );
    assert_eq!(body("/store/set?key=a&value=1"), json!({ "ok": true }));
    // A full store evicts an entry nobody has used since it was written...
    assert_eq!(body("/store/set?key=b&value=1"), json!({ "ok": true }));
    assert_eq!(body("/store/get?key=a"), json!({ "value": null }));
    // ...and once every entry was used, the least recently used one: a
    // full store never locks new writes out.
    assert_eq!(body("/store/get?key=b"), json!({ "value": "1" }));
    assert_eq!(body("/store/set?key=c&value=1"), json!({ "ok": true }));
    assert_eq!(body("/store/get?key=b"), json!({ "value": null }));
}

#[test]
fn without_eviction_a_full_store_refuses_new_entries() {
    let host = test_host(&[
        "--tasks",
        "1",
        "--store-max-entries",
        "1",
        "--store-eviction",
        "none",
    ]);
    let client = http();
    let body = |path: &str| -> Value { client.get(host.url(path)).send().unwrap().json().unwrap() };
    assert_eq!(body("/store/set?key=a&value=1"), json!({ "ok": true }));
    assert_eq!(body("/store/set?key=b&value=1"), json!({ "error": "Full" }));
    assert_eq!(body("/store/get?key=a"), json!({ "value": "1" }));
}

#[test]
fn atomic_store_operations_reach_the_guest_with_their_errors() {
    let host = test_host(&["--tasks", "2"]);
    let client = http();
    let body = |path: &str| -> Value { client.get(host.url(path)).send().unwrap().json().unwrap() };
    assert_eq!(
        body("/store/set-if-absent?key=k&value=a"),
        json!({ "value": true })
    );
    assert_eq!(
        body("/store/set-if-absent?key=k&value=b"),
        json!({ "value": false })
    );
    assert_eq!(
        body("/store/cas?key=k&expected=b&new=c"),
        json!({ "value": false })
    );
    assert_eq!(
        body("/store/cas?key=k&expected=a&new=c"),
        json!({ "value": true })
    );
    assert_eq!(body("/store/get?key=k"), json!({ "value": "c" }));
    assert_eq!(
        body("/store/cas?key=k&expected=c"),
        json!({ "value": true }),
        "to removal"
    );
    assert_eq!(body("/store/get?key=k"), json!({ "value": null }));
    assert_eq!(
        body("/store/incr?key=n&delta=-5&times=3"),
        json!({ "value": -15 })
    );
    assert_eq!(
        body(&format!("/store/incr?key=n&delta={}", i64::MIN)),
        json!({ "error": "NotAnInteger" })
    );
    assert_eq!(body("/store/incr?key=n"), json!({ "value": -14 }));
}

#[test]
fn env_flags_reach_the_guest_and_nothing_else_does() {
    let host = test_host(&["--tasks", "1", "--env", "GREETING=hello=world"]);
    assert_eq!(
        get(&host, "/env?name=GREETING"),
        json!({ "value": "hello=world" })
    );
    assert_eq!(get(&host, "/env?name=PATH"), json!({ "value": null }));
}

#[test]
fn guest_output_goes_to_the_log_tagged_with_the_task() {
    let host = test_process(&["--tasks", "1"]);
    get(&host, "/task");
    let response = http().get(host.url("/print?msg=marker-42")).send().unwrap();
    assert_eq!(response.status(), 200);
    host.assert_logged("stdout says marker-42", Duration::from_secs(5));
    host.assert_logged("stderr says marker-42", Duration::from_secs(5));
    let line = host
        .log()
        .lines()
        .find(|line| line.contains("stdout says marker-42"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("task=0") && line.contains("stream=\"stdout\""),
        "{line}"
    );
}

/// An `eprint!` without a newline is logged when its request ends, not
/// held until the instance prints again. (Rust's stdout keeps an unfinished
/// line in the guest until its newline, as on a terminal: no host sees it.)
#[test]
fn a_last_line_without_a_newline_is_logged_when_the_request_ends() {
    let host = test_process(&["--tasks", "1"]);
    let response = http()
        .get(host.url("/print?msg=unterminated-7&newline=no"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    host.assert_logged("stderr says unterminated-7", Duration::from_secs(5));
}

#[test]
fn a_trap_answers_500_and_the_task_keeps_serving() {
    let host = test_host(&["--tasks", "1"]);
    let client = http();
    assert_eq!(
        get(&host, "/store/set?key=kept&value=yes"),
        json!({ "ok": true })
    );
    let response = client.get(host.url("/panic")).send().unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(get(&host, "/store/get?key=kept"), json!({ "value": "yes" }));
}

#[test]
fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let mut host = test_process(&["--tasks", "2"]);
    let url = host.url("/sleep?ms=700");
    let in_flight = std::thread::spawn(move || http().get(url).send().map(|r| r.status().as_u16()));
    // Let the request reach the guest before the signal.
    std::thread::sleep(Duration::from_millis(200));
    let status = host.stop_with(Signal::SIGTERM, Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        in_flight.join().unwrap().unwrap(),
        200,
        "the in-flight request finished"
    );
}

#[test]
fn sigint_exits_zero() {
    let mut host = test_process(&["--tasks", "2"]);
    get(&host, "/task");
    let status = host.stop_with(Signal::SIGINT, Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}
