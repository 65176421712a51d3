//! mt-keep: a guest that traps, hangs or eats memory is answered for and
//! replaced, and nothing else notices; bad HTTP input is refused and the
//! server serves on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use reqwest::header::SET_COOKIE;
use serde_json::Value;
use wasmhost_tests::{Host, connect, http, read_response, read_until_closed};

fn kept_blocks(host: &Host) -> u64 {
    let (status, body) = host.get("/grow?mib=1");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["kept_blocks"]
        .as_u64()
        .unwrap()
}

fn replacements(host: &Host) -> usize {
    host.log().matches("instance replaced").count()
}

#[test]
fn a_trap_answers_500_without_guest_internals_and_replaces_the_instance() {
    let host = Host::test_app(&["--tasks", "1"]);
    assert_eq!(kept_blocks(&host), 1);
    assert_eq!(
        kept_blocks(&host),
        2,
        "the instance, and its memory, persist"
    );
    for route in ["/panic", "/unreachable"] {
        let (status, body) = host.get(route);
        assert_eq!(status, 500, "{route}");
        assert_eq!(body, "internal server error", "{route}");
        assert_eq!(
            kept_blocks(&host),
            1,
            "{route}: the next request runs on a fresh instance"
        );
    }
    host.assert_logged("replaced=2", Duration::from_secs(5));
    let log = host.log();
    let unreachable = log
        .lines()
        .find(|line| line.contains("instance replaced") && line.contains("unreachable"))
        .unwrap_or_else(|| panic!("the cause is logged: {log}"));
    assert!(unreachable.contains("task=0"), "{unreachable}");
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline_with_504() {
    let host = Host::test_app(&["--tasks", "1", "--request-timeout", "500ms"]);
    let started = Instant::now();
    let (status, body) = host.get("/loop");
    let took = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "the loop was stopped after {took:?}"
    );
    assert_eq!(host.get("/task").0, 200, "the task serves again");
    host.assert_logged("ran past the request timeout", Duration::from_secs(5));
}

#[test]
fn a_hung_task_holds_up_no_request_an_idle_task_can_serve() {
    let host = Arc::new(Host::test_app(&["--tasks", "2", "--request-timeout", "4s"]));
    let looping = {
        let host = Arc::clone(&host);
        std::thread::spawn(move || host.get("/loop").0)
    };
    std::thread::sleep(Duration::from_millis(200));
    // Half of these connections land on the looping task; all are served
    // by the other one long before the loop's deadline.
    let started = Instant::now();
    for _ in 0..40 {
        let asked = Instant::now();
        assert_eq!(host.get("/task").0, 200);
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "a request waited {:?} behind the loop",
            asked.elapsed()
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "all served before the deadline"
    );
    assert_eq!(looping.join().unwrap(), 504);
}

#[test]
fn growing_past_the_memory_limit_answers_500_and_replaces_the_instance() {
    let host = Host::test_app(&["--tasks", "1", "--max-memory", "32MiB"]);
    assert_eq!(kept_blocks(&host), 1);
    let (status, body) = host.get("/alloc");
    assert_eq!(status, 500);
    assert_eq!(body, "internal server error");
    // The log arrives asynchronously.
    host.assert_logged(
        "memory past the limit of 33554432 bytes",
        Duration::from_secs(5),
    );
    assert_eq!(kept_blocks(&host), 1, "a fresh instance");
    // Under the limit, memory still grows.
    let (status, _) = host.get("/grow?mib=8");
    assert_eq!(status, 200);
}

#[test]
fn recycle_after_replaces_an_instance_after_n_requests() {
    let host = Host::test_app(&["--tasks", "1", "--recycle-after", "3"]);
    assert_eq!(kept_blocks(&host), 1);
    assert_eq!(kept_blocks(&host), 2);
    assert_eq!(kept_blocks(&host), 3);
    assert_eq!(kept_blocks(&host), 1, "recycled after 3 requests");
    host.assert_logged("recycled after 3 requests", Duration::from_secs(5));
}

#[test]
fn past_max_pending_requests_get_503_with_retry_after() {
    let host = Arc::new(Host::test_app(&[
        "--tasks",
        "1",
        "--max-pending",
        "1",
        "--request-timeout",
        "2s",
    ]));
    let spawn_get = |path: &'static str| {
        let host = Arc::clone(&host);
        std::thread::spawn(move || host.get(path).0)
    };
    let looping = spawn_get("/loop");
    std::thread::sleep(Duration::from_millis(300));
    let queued = spawn_get("/task");
    std::thread::sleep(Duration::from_millis(300));
    let response = http().get(host.url("/task")).send().unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(looping.join().unwrap(), 504);
    assert_eq!(
        queued.join().unwrap(),
        200,
        "the queued request ran once the task was free"
    );
}

#[test]
fn bodies_over_max_body_get_413_and_the_server_serves_on() {
    let host = Host::test_app(&["--tasks", "1", "--max-body", "1KiB"]);
    let client = http();
    let response = client
        .post(host.url("/echo"))
        .body(vec![b'x'; 2048])
        .send()
        .unwrap();
    assert_eq!(response.status(), 413);
    // Without a Content-Length the limit still holds while reading.
    let body = reqwest::blocking::Body::new(std::io::Cursor::new(vec![b'y'; 1400]));
    let response = client.post(host.url("/echo")).body(body).send().unwrap();
    assert_eq!(response.status(), 413);
    let response = client
        .post(host.url("/echo"))
        .body(vec![b'z'; 512])
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Sends raw bytes on a new connection and returns what comes back until
/// the server closes it or `wait` passes.
fn raw_exchange(host: &Host, bytes: &[u8], wait: Duration) -> (String, Duration) {
    let mut stream = connect(host, wait);
    stream.write_all(bytes).unwrap();
    read_until_closed(&mut stream)
}

#[test]
fn oversized_headers_get_431_and_malformed_requests_400() {
    let host = Host::test_app(&["--tasks", "1", "--max-header-size", "8KiB"]);
    let big = format!(
        "GET /task HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    let (answer, _) = raw_exchange(&host, big.as_bytes(), Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    let (answer, _) = raw_exchange(&host, b"NOT HTTP AT ALL\r\n\r\n", Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert_eq!(host.get("/task").0, 200, "the server serves on");
}

#[test]
fn a_client_that_never_finishes_its_headers_is_dropped() {
    let host = Host::test_app(&["--tasks", "1", "--header-timeout", "500ms"]);
    let (answer, took) = raw_exchange(
        &host,
        b"GET /task HTTP/1.1\r\nhost: x\r\n",
        Duration::from_secs(10),
    );
    assert!(took < Duration::from_secs(5), "held for {took:?}");
    assert!(!answer.contains("200 OK"), "{answer:?}");
    assert_eq!(host.get("/task").0, 200);
}

#[test]
fn a_keep_alive_connection_lives_while_used_and_is_closed_when_it_stalls() {
    let timeout = Duration::from_millis(500);
    let host = Host::test_app(&["--tasks", "1", "--header-timeout", "500ms"]);
    let addr = host.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    // Requests every 150 ms for three timeouts' worth: the connection's
    // header deadline keeps moving on, and it must never cut a request off.
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < timeout * 3 {
        stream
            .write_all(b"GET /task HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let (head, _) = read_response(&mut stream);
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "request {served}: {head:?}"
        );
        served += 1;
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(served >= 8, "only {served} requests");

    // Then half a request head, and nothing more: closed about one timeout
    // after the last answer, not held open.
    stream.write_all(b"GET /task HTTP/1.1\r\n").unwrap();
    let stalled = Instant::now();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let held = stalled.elapsed();
    assert!(
        held < timeout * 4,
        "a stalled connection was held for {held:?}"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "{rest:?}"
    );
    assert_eq!(host.get("/task").0, 200);
}

#[test]
fn sigterm_exits_zero_within_the_drain_timeout_even_with_a_hung_request() {
    let mut host = Host::test_app(&[
        "--tasks",
        "1",
        "--drain-timeout",
        "1s",
        "--request-timeout",
        "60s",
    ]);
    let url = host.url("/loop");
    let hung = std::thread::spawn(move || http().get(url).send().map(|r| r.status().as_u16()));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = host.stop_with(Signal::SIGTERM, Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        hung.join().unwrap().is_err(),
        "the hung request's connection was closed"
    );
}

#[test]
fn a_storm_of_crashes_and_hangs_loses_no_normal_request_and_no_session() {
    const TASKS: u64 = 4;
    let host = Arc::new(Host::test_app(&["--tasks", "4", "--request-timeout", "1s"]));

    // Sessions set before the storm.
    let cookies: Vec<String> = (0..20)
        .map(|_| {
            let response = http().get(host.url("/visits")).send().unwrap();
            assert_eq!(response.status(), 200);
            let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
            cookie.split(';').next().unwrap().to_owned()
        })
        .collect();

    let failures = Arc::new(Mutex::new(Vec::new()));
    let crashes = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..8 {
        let host = Arc::clone(&host);
        let failures = Arc::clone(&failures);
        let crashes = Arc::clone(&crashes);
        clients.push(std::thread::spawn(move || {
            let http = http();
            for i in 0..150 {
                // 1 % panics, and three clients each start one infinite loop.
                let path = match (client, i) {
                    (0..3, 75) => "/loop",
                    (_, i) if i % 100 == 42 => "/panic",
                    (_, i) if i % 2 == 0 => "/task",
                    _ => "/store/get?key=anything",
                };
                let status = http.get(host.url(path)).send().map(|r| r.status().as_u16());
                match (path, status) {
                    ("/loop", Ok(504)) | ("/panic", Ok(500)) => {
                        crashes.fetch_add(1, Ordering::Relaxed);
                    }
                    (_, Ok(200)) => {}
                    (path, other) => failures.lock().unwrap().push(format!("{path}: {other:?}")),
                }
            }
        }));
    }
    for client in clients {
        client.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let crashes = crashes.load(Ordering::Relaxed);
    assert_eq!(
        crashes,
        3 + 8 * 2,
        "every crash and hang was answered 500/504"
    );

    // Every session survived: its next visit is its second.
    for cookie in &cookies {
        let visit: Value = http()
            .get(host.url("/visits"))
            .header("cookie", cookie)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(visit["visits"], 2, "session {cookie} was lost");
    }

    // All tasks are back, and every replacement was logged.
    let mut tasks = std::collections::BTreeSet::new();
    for _ in 0..80 {
        let (status, body) = host.get("/task");
        assert_eq!(status, 200);
        tasks.insert(
            serde_json::from_str::<Value>(&body).unwrap()["id"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(tasks, (0..TASKS).collect(), "tasks serving after the storm");
    assert_eq!(replacements(&host), crashes, "{}", host.log());
}
