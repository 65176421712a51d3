//! Standard `wasi:http` guests: the test's `http-app` (a `wasi:http/proxy`
//! component built with the `wasip2` crate, no wasmhost SDK) served by the
//! real binary on persistent tasks, its session and data in `wasi:keyvalue`
//! on the shared store (memory, and a real Redis across two hosts), and the
//! containment that applies to every guest holding for it.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use wasmhost_tests::python::python_app;
use wasmhost_tests::{
    Host, RedisServer, connect, get_text, guest, http, peak_rss_bytes, read_response, set_cookie,
};

fn http_app(args: &[&str]) -> Host {
    Host::start(&guest("http-app"), args)
}

/// The body of `GET path`, which must be answered 200.
fn ok(host: &Host, path: &str) -> String {
    let (status, body) = host.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[test]
fn the_seed_routes_keep_their_session_in_keyvalue_shared_by_every_task() {
    let host = http_app(&["--tasks", "2"]);
    let client = http();
    let set = client.get(host.url("/set")).send().unwrap();
    assert_eq!(set.status(), 200);
    let cookie = set_cookie(&set).expect("the app sets its sid cookie");
    assert!(cookie.starts_with("sid="), "{cookie}");
    let body: Value = serde_json::from_str(&set.text().unwrap()).unwrap();
    assert_eq!(body["message"], "foo value set to 'bar' in session.");

    // Each new connection gets the next home task: both tasks read it.
    let mut threads = BTreeSet::new();
    for _ in 0..6 {
        let (status, body) = get_text(&client, &host.url("/"), Some(&cookie));
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["foo"], "bar", "{body}");
        threads.insert(body["thread"].as_u64().expect("a task id"));
    }
    assert_eq!(threads, BTreeSet::from([0, 1]), "served by both tasks");

    let (_, body) = get_text(&client, &host.url("/"), None);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["foo"], "Not set. Go to '/set' to set value.");
}

#[test]
fn a_python_app_built_by_componentize_py_shares_its_session_across_tasks_and_hosts() {
    let redis = RedisServer::start();
    let url = redis.url();
    let app = python_app();
    let host_a = Host::start(&app, &["--tasks", "2", "--store", &url]);
    let host_b = Host::start(&app, &["--tasks", "2", "--store", &url]);
    let client = http();
    let set = client.get(host_a.url("/set")).send().unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(set.headers()["content-type"], "application/json");
    let cookie = set_cookie(&set).expect("the app sets its sid cookie");
    let body: Value = serde_json::from_str(&set.text().unwrap()).unwrap();
    assert_eq!(body["message"], "foo value set to 'bar' in session.");

    // Persistent instances: the interpreter starts once per task, and every
    // task of both hosts reads the session the first one wrote.
    let mut seen = BTreeSet::new();
    for (name, host) in [("a", &host_a), ("b", &host_b)] {
        for _ in 0..4 {
            let (status, body) = get_text(&client, &host.url("/"), Some(&cookie));
            assert_eq!(status, 200, "{body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["foo"], "bar", "{body}");
            seen.insert((name, body["thread"].as_u64().expect("a task id")));
        }
    }
    assert_eq!(seen.len(), 4, "both tasks of both hosts: {seen:?}");
    let (status, body) = get_text(&client, &host_b.url("/"), None);
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["foo"], "Not set. Go to '/set' to set value.");
    assert_eq!(host_a.get("/missing"), (404, "not found".to_owned()));
}

#[test]
fn the_request_reaches_the_guest_whole_and_its_answer_comes_back_as_set() {
    let host = http_app(&["--tasks", "1"]);
    let response = http()
        .post(host.url("/echo?q=1"))
        .header("x-trace", "abc")
        .body("hello body")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-echo"], "yes");
    let port = host.base.rsplit(':').next().unwrap().to_owned();
    assert_eq!(
        response.text().unwrap(),
        format!("POST 127.0.0.1:{port} /echo?q=1\nx-trace: abc\nhello body")
    );
    // The guest's own 404, status and body as it set them.
    assert_eq!(host.get("/nowhere"), (404, "not found".to_owned()));
    // An HTTP/1.0 request without `Host` still has an authority, as
    // `wasi:http` requests always do.
    let mut stream = connect(&host, Duration::from_secs(10));
    stream
        .write_all(b"GET /echo?old=1 HTTP/1.0\r\nx-old: yes\r\n\r\n")
        .unwrap();
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert_eq!(body, "GET localhost /echo?old=1\nx-old: yes\n");
}

#[test]
fn keyvalue_operations_behave_as_the_proposal_says() {
    let host = http_app(&["--tasks", "2"]);
    let kv = |query: &str| ok(&host, &format!("/kv?{query}"));
    assert_eq!(kv("op=get&key=a"), "ok none");
    assert_eq!(kv("op=exists&key=a"), "ok false");
    assert_eq!(kv("op=set&key=a&value=1"), "ok");
    assert_eq!(kv("op=get&key=a"), "ok some 1");
    assert_eq!(kv("op=exists&key=a"), "ok true");
    assert_eq!(kv("op=incr&key=a&value=41"), "ok 42");
    assert_eq!(
        kv("op=incr&key=n&value=-3"),
        "ok -3",
        "a missing key counts as 0"
    );
    assert_eq!(kv("op=delete&key=a"), "ok");
    assert_eq!(
        kv("op=delete&key=a"),
        "ok",
        "deleting a missing key is no error"
    );
    assert_eq!(kv("op=get&key=a"), "ok none");

    // Compare-and-swap: from nothing, from a value, and one that loses.
    assert_eq!(kv("op=cas&key=c&value=one"), "ok swapped none");
    assert_eq!(kv("op=cas&key=c&value=two"), "ok swapped some one");
    assert_eq!(kv("op=get&key=c"), "ok some two");
    assert_eq!(
        kv("op=cas-lost&key=c&value=three"),
        "ok cas-failed, now some changed"
    );
    assert_eq!(kv("op=get&key=c"), "ok some changed");

    // Batches.
    assert_eq!(kv("op=set-many&key=x,y,z&value=v"), "ok");
    assert_eq!(
        kv("op=get-many&key=x,nothing,z"),
        "ok x=some v,nothing=none,z=some v"
    );
    assert_eq!(kv("op=delete-many&key=x,y"), "ok");
    assert_eq!(kv("op=get-many&key=x,y,z"), "ok x=none,y=none,z=some v");

    // A bucket is a namespace of the app's keys.
    assert_eq!(kv("bucket=carts&op=set&key=k&value=in-carts"), "ok");
    assert_eq!(kv("op=get&key=carts:k"), "ok some in-carts");
    assert_eq!(kv("bucket=carts&op=get&key=z"), "ok none");
    assert_eq!(kv("bucket=a:b&op=get&key=k"), "error Error::NoSuchStore");

    // What wasmhost refuses, as errors the guest can answer with.
    assert!(kv("op=list").starts_with("error Error::Other(\"wasmhost's store does not list keys"));
    assert!(kv("op=set-bytes&key=b").contains("not UTF-8"));
    assert!(kv("op=get-too-many").contains("at most 1000 keys, not 1001"));
    assert!(
        kv("op=get-many-big").contains("at most 16777216 bytes of values"),
        "a get-many stops before it holds more than 16 MiB"
    );
    let long_key = "k".repeat(2000);
    assert!(kv(&format!("op=set&key={long_key}&value=v")).starts_with("error Error::Other("));
}

#[test]
fn keyvalue_writes_through_one_host_are_read_through_another_on_one_redis() {
    let redis = RedisServer::start();
    let host_a = Host::on_redis("http-app", &redis, &["--tasks", "2"]);
    let host_b = Host::on_redis("http-app", &redis, &["--tasks", "2"]);
    assert_eq!(ok(&host_a, "/kv?op=set&key=shared&value=from-a"), "ok");
    assert_eq!(ok(&host_b, "/kv?op=get&key=shared"), "ok some from-a");
    assert_eq!(ok(&host_b, "/kv?op=incr&key=hits&value=2"), "ok 2");
    assert_eq!(ok(&host_a, "/kv?op=incr&key=hits&value=3"), "ok 5");
    let stored: Option<String> = redis::cmd("GET")
        .arg("shared")
        .query(&mut redis.client())
        .unwrap();
    assert_eq!(
        stored.as_deref(),
        Some("from-a"),
        "stored as the value itself"
    );

    // The seed session, set through one host, read through the other.
    let client = http();
    let set = client.get(host_a.url("/set")).send().unwrap();
    let cookie = set_cookie(&set).expect("a sid cookie");
    let (_, body) = get_text(&client, &host_b.url("/"), Some(&cookie));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["foo"], "bar", "{body}");
}

#[test]
fn a_hostile_wasi_http_guest_is_answered_and_replaced_and_the_host_serves_on() {
    let host = http_app(&[
        "--tasks",
        "1",
        "--request-timeout",
        "1s",
        "--max-memory",
        "64MiB",
        "--max-response",
        "1000",
    ]);
    for (path, status, logged) in [
        ("/spin", 504, "ran past the request timeout"),
        ("/sleep?ms=600000", 504, "ran past the request timeout"),
        ("/grow", 500, "tried to grow memory past the limit"),
        ("/panic", 500, "the test app panics on purpose"),
        ("/no-response", 500, "returned without setting a response"),
        (
            "/unfinished",
            500,
            "returned before finishing its response body",
        ),
        (
            "/big?1001",
            500,
            "a body of 1001 bytes, more than --max-response (1000)",
        ),
        ("/big?100000", 500, "more than --max-response (1000)"),
    ] {
        let (got, _) = host.get(path);
        assert_eq!(got, status, "{path}");
        host.assert_logged(logged, Duration::from_secs(5));
        assert_eq!(ok(&host, "/big?1000").len(), 1000, "after {path}");
    }
    // An error code the guest sets itself is a 500 without a replacement.
    let replaced = host.log().matches("instance replaced").count();
    assert_eq!(host.get("/error-code").0, 500);
    assert_eq!(ok(&host, "/kv?op=get&key=x"), "ok none");
    assert_eq!(host.log().matches("instance replaced").count(), replaced);
    host.assert_no_host_panic();
}

#[test]
fn a_wasi_http_guest_cannot_send_framing_headers_or_requests_out() {
    let host = http_app(&["--tasks", "1"]);
    assert_eq!(ok(&host, "/framing"), "refused 3");

    // A server the guest would reach if outbound requests were allowed.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = listener.local_addr().unwrap();
    let body = ok(&host, &format!("/outbound?{target}"));
    assert_eq!(body, "failed: ErrorCode::HttpRequestDenied");
    match listener.accept() {
        Err(error) if error.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the guest reached {target}: {other:?}"),
    }
}

#[test]
fn with_recycle_after_1_every_request_gets_a_fresh_instance_and_the_session_holds() {
    let host = http_app(&["--tasks", "1", "--recycle-after", "1"]);
    let client = http();
    let set = client.get(host.url("/set")).send().unwrap();
    let cookie = set_cookie(&set).expect("a sid cookie");
    for _ in 0..3 {
        let (status, body) = get_text(&client, &host.url("/"), Some(&cookie));
        assert_eq!(status, 200);
        assert!(body.contains(r#""foo":"bar""#), "{body}");
    }
    host.assert_logged("recycled", Duration::from_secs(5));
}

/// A server on a free port that answers each request `200 hi` (or, with
/// `answer` false, holds it unanswered), reporting each request's head.
fn upstream(answer: bool) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (seen, heads) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = seen.send(String::from_utf8_lossy(&head).into_owned());
            if answer {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
                );
            } else {
                held.push(stream);
            }
        }
    });
    (addr, heads)
}

#[test]
fn an_allowed_origin_is_reached_and_every_other_is_refused() {
    let (allowed, heads) = upstream(true);
    let (other, other_heads) = upstream(true);
    let origin = format!("http://{allowed}");
    let host = http_app(&["--tasks", "1", "--allow-outbound", &origin]);
    assert_eq!(ok(&host, &format!("/outbound?{allowed}")), "answered 200");
    let head = heads.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(head.starts_with("GET / HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: {allowed}")),
        "{head}"
    );

    assert_eq!(
        ok(&host, &format!("/outbound?{other}")),
        "failed: ErrorCode::HttpRequestDenied"
    );
    assert!(
        other_heads
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "not reached"
    );
}

#[test]
fn outbound_requests_past_the_cap_fail_at_once_and_a_hung_one_ends_with_the_deadline() {
    let (hung, heads) = upstream(false);
    let origin = format!("http://{hung}");
    let host = http_app(&[
        "--tasks",
        "2",
        "--request-timeout",
        "2s",
        "--allow-outbound",
        &origin,
        "--max-outbound",
        "1",
    ]);
    let url = host.url(&format!("/outbound?{hung}"));
    let first = std::thread::spawn(move || get_text(&http(), &url, None));
    heads
        .recv_timeout(Duration::from_secs(5))
        .expect("the first request is in flight");
    assert_eq!(
        ok(&host, &format!("/outbound?{hung}")),
        "failed: ErrorCode::ConnectionLimitReached"
    );
    let (status, _) = first.join().unwrap();
    assert_eq!(
        status, 504,
        "the hung request ends with the call's deadline"
    );
    // Its permit came back with its instance: the next request is sent.
    let url = host.url(&format!("/outbound?{hung}"));
    std::thread::spawn(move || get_text(&http(), &url, None));
    heads
        .recv_timeout(Duration::from_secs(5))
        .expect("sent once the cap allows");
}

#[test]
fn a_guest_hoarding_response_bodies_or_header_fields_holds_little_host_memory() {
    let host = http_app(&["--tasks", "1"]);
    let before = peak_rss_bytes(host.pid());
    for path in ["/hoard", "/hoard?fields"] {
        assert_eq!(host.get(path).0, 500, "{path}: stopped by the handle cap");
        host.assert_logged("instance replaced", Duration::from_secs(5));
        assert_eq!(ok(&host, "/big?10").len(), 10, "after {path}");
    }
    // 1,000 handles: bodies hold at most two 64 KiB chunks, fields 64 KiB
    // (with wasmtime's defaults, 10,000 handles held gigabytes).
    let grew = peak_rss_bytes(host.pid()).saturating_sub(before);
    assert!(
        grew < 160 << 20,
        "the host's peak memory grew by {} MiB",
        grew >> 20
    );
}
