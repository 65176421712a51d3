//! Containment, second round (issue 20): what a hostile app file, client or
//! guest could still do after the first round, each attack run against the
//! real binary over real sockets. Every test checks the clean answer, the
//! bound (memory, log, metrics) and that the next normal request is served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use wasmhost_tests::{
    Host, admin_get, anon_rss_bytes, connect, guest, http, memory_status, metric, read_response,
    rss_bytes, session_cookie, start_with_admin,
};

/// The server's resident memory, in bytes.
fn rss(host: &Host) -> usize {
    rss_bytes(host.pid())
}

const MIB: usize = 1024 * 1024;

/// What every attack leaves: a host that serves, and no panic of its own.
fn assert_serves_on(host: &Host) {
    assert_eq!(host.get("/task").0, 200, "the host serves on");
    host.assert_no_host_panic();
}

/// Resets the connection (RST, not FIN), as a client that vanishes does.
fn reset(stream: TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::Linger, &linger).unwrap();
    drop(stream);
}

#[test]
fn a_body_in_one_byte_chunks_is_cut_off_and_memory_stays_flat() {
    let host = Host::test_app(&["--tasks", "2"]);
    // A body in chunks of a sensible size is read whole; sent first, so the
    // memory any first request sets up is in the baseline.
    let mut stream = connect(&host, Duration::from_secs(10));
    let mut request =
        b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..1000 {
        request.extend_from_slice(format!("64\r\n{}\r\n", "b".repeat(100)).as_bytes());
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).unwrap();
    let (head, body) = read_response(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["body"].as_str().unwrap().len(), 100_000);
    drop(stream);

    // The heap, not all resident pages: the binary's and the compiled
    // guest's pages come and go with the kernel's page cache, and the
    // attack is about what the host allocates.
    let before = anon_rss_bytes(host.pid());
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let mut stream = connect(&host, Duration::from_secs(30));
            std::thread::spawn(move || {
                let head = "POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n";
                let _ = stream.write_all(head.as_bytes());
                // A million one-byte chunks; the server stops reading them.
                let chunks = "1\r\na\r\n".repeat(1_000_000);
                let mut reader = stream.try_clone().unwrap();
                let writer = std::thread::spawn(move || {
                    let _ = stream.write_all(chunks.as_bytes());
                });
                let mut answer = Vec::new();
                let _ = reader.read_to_end(&mut answer);
                let _ = writer.join();
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();
    for client in clients {
        let answer = client.join().unwrap();
        // The answer, unless the reset of the unread rest overtook it.
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
            "{answer:?}"
        );
    }
    let grown = anon_rss_bytes(host.pid()).saturating_sub(before);
    assert!(
        grown < 32 * MIB,
        "the heap grew by {} MiB ({})",
        grown / MIB,
        memory_status(host.pid())
    );
    assert_serves_on(&host);
}

#[test]
fn stalled_bodies_hold_no_more_than_max_buffered() {
    let host = Host::test_app(&[
        "--tasks",
        "1",
        "--max-buffered",
        "8MiB",
        "--max-response",
        "1MiB",
    ]);
    let before = rss(&host);
    let mut request = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n\r\n".to_vec();
    // All of the body but its last byte, then nothing.
    request.extend_from_slice(&vec![b'x'; 1024 * 1024 - 1]);
    let mut stalled = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        let mut stream = connect(&host, Duration::from_secs(1));
        // A refused body's connection is closed under the write.
        let _ = stream.write_all(&request);
        let mut answer = Vec::new();
        match (&mut stream).take(12).read_to_end(&mut answer) {
            // Held: no answer, the server waits for the last byte.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => stalled.push(stream),
            // Refused with 503 once the budget could not hold the bytes
            // that came (or reset: the unread rest of the body).
            Ok(_) | Err(_) => {
                assert!(
                    answer.is_empty() || answer.starts_with(b"HTTP/1.1 503"),
                    "{}",
                    String::from_utf8_lossy(&answer)
                );
                refused += 1;
            }
        }
    }
    assert_eq!(stalled.len(), 8, "8 MiB of budget holds 8 bodies of 1 MiB");
    assert_eq!(refused, 32);
    // The server answers while the budget is spent.
    assert_eq!(host.get("/task").0, 200);
    std::thread::sleep(Duration::from_millis(200));
    let grown = rss(&host).saturating_sub(before);
    assert!(grown < 24 * MIB, "RSS grew by {} MiB", grown / MIB);
    drop(stalled);
    assert_serves_on(&host);
}

#[test]
fn an_env_file_is_read_literally() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(
        &file,
        "LEAK=${HOME}\nPASS=pa$$w0rd$x-tail\nQUOTED=\"$HOME\"\n",
    )
    .unwrap();
    let host = Host::test_app(&["--tasks", "1", "--env-file", file.to_str().unwrap()]);
    for (name, literal) in [
        ("LEAK", "${HOME}"),
        ("PASS", "pa$$w0rd$x-tail"),
        ("QUOTED", "$HOME"),
    ] {
        let (status, body) = host.get(&format!("/env?name={name}"));
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["value"], literal, "{name}");
    }
}

#[test]
fn a_client_that_leaves_mid_call_does_not_cost_the_instance() {
    let (host, admin) = start_with_admin(&guest("test-app"), &["--tasks", "1"]);
    let calls = |host: &Host| -> u64 {
        let (_, body) = host.get("/served");
        serde_json::from_str::<Value>(&body).unwrap()["calls"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(calls(&host), 1);
    for _ in 0..20 {
        let mut stream = connect(&host, Duration::from_secs(5));
        stream
            .write_all(b"GET /sleep?ms=300 HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        // The call is under way (it sleeps in a host call) when the client
        // goes.
        std::thread::sleep(Duration::from_millis(100));
        reset(stream);
        // Let the abandoned call end before the next one starts.
        std::thread::sleep(Duration::from_millis(400));
    }
    // The instance is the same: it counted its abandoned calls too (each
    // cost an instance before; a loaded machine may not have started one
    // or two of them before their client left).
    let after = calls(&host);
    assert!(after >= 12, "{after} calls: the instance was replaced");
    let (_, metrics) = admin_get(admin, "/metrics");
    assert!(
        !metrics.contains("wasmhost_instances_replaced_total{cause="),
        "{metrics}"
    );
    assert!(!host.log().contains("instance replaced"), "{}", host.log());
}

#[test]
fn a_flood_that_revisits_its_sessions_does_not_lock_new_visitors_out() {
    let host = Host::test_app(&["--tasks", "1", "--store-max-entries", "200"]);
    let client = http();
    let visit = |cookie: Option<&str>| -> (u16, Option<String>, u64) {
        let mut request = client.get(host.url("/visits"));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let cookie = response
            .headers()
            .get("set-cookie")
            .map(|_| session_cookie(&response));
        let visits = response
            .json::<Value>()
            .map_or(0, |body| body["visits"].as_u64().unwrap_or(0));
        (status, cookie, visits)
    };
    let (_, regular, _) = visit(None);
    let regular = regular.expect("a session cookie");
    let mut regular_visits = 1;
    for pair in 0..400 {
        // A new session, and one visit back.
        let (status, cookie, _) = visit(None);
        assert_eq!(status, 200, "flood pair {pair}");
        let (status, _, _) = visit(cookie.as_deref());
        assert_eq!(status, 200, "flood pair {pair}");
        if pair % 20 == 0 {
            let (status, _, visits) = visit(Some(&regular));
            regular_visits += 1;
            assert_eq!(status, 200);
            assert_eq!(
                visits, regular_visits,
                "the regular visitor kept the session"
            );
        }
    }
    let (status, cookie, visits) = visit(None);
    assert_eq!(status, 200, "a new visitor gets in");
    assert!(cookie.is_some());
    assert_eq!(visits, 1);
}

#[test]
fn a_guest_write_past_check_write_traps_at_once_and_floods_no_log() {
    let (host, admin) = start_with_admin(&guest("test-app"), &["--tasks", "1"]);
    let started = Instant::now();
    let (status, _) = host.get("/attack/raw-write?bytes=67108864");
    assert_eq!(status, 500);
    assert!(started.elapsed() < Duration::from_secs(10));
    host.assert_logged("larger than check-write", Duration::from_secs(5));
    // A write within the permit of many lines: the budget's lines, then one
    // count, not a line per dropped line.
    let (status, body) = host.get("/attack/raw-write?bytes=65536");
    assert_eq!((status, body.as_str()), (200, "written: true"));
    let (_, metrics) = admin_get(admin, "/metrics");
    assert_eq!(
        metric(&metrics, "wasmhost_guest_log_lines_dropped_total"),
        Some(f64::from(32_768 - 1_000)),
        "{metrics}"
    );
    let lines = host.log().lines().count();
    assert!(lines < 1_100, "{lines} log lines");
    // Random bytes are capped too.
    assert_eq!(host.get("/attack/random?bytes=67108864").0, 500);
    let (status, body) = host.get("/attack/random?bytes=32");
    assert_eq!((status, body.as_str()), (200, "32 random bytes"));
    assert_serves_on(&host);
}

#[test]
fn guest_statuses_add_a_bounded_number_of_metric_series() {
    let (host, admin) = start_with_admin(&guest("test-app"), &["--tasks", "1"]);
    let client = http();
    for code in 200..1000 {
        let response = client
            .get(host.url(&format!("/status?code={code}")))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), code);
    }
    let (_, metrics) = admin_get(admin, "/metrics");
    let series = metrics
        .lines()
        .filter(|line| line.starts_with("wasmhost_requests_total{"))
        .count();
    // Registered codes by name, the rest by class: not one per code.
    assert!(series < 100, "{series} series");
    assert!(metrics.contains(r#"status="2xx""#), "{metrics}");
    assert!(metrics.contains(r#"status="other""#), "{metrics}");
}

#[test]
fn clients_that_never_read_the_admin_endpoint_leave_healthz_answering() {
    let (host, admin) = start_with_admin(&guest("test-app"), &["--tasks", "1"]);
    let mut idle = Vec::new();
    for _ in 0..40 {
        let mut stream = TcpStream::connect(("127.0.0.1", admin)).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        idle.push(stream);
    }
    for _ in 0..40 {
        idle.push(TcpStream::connect(("127.0.0.1", admin)).unwrap());
    }
    let started = Instant::now();
    assert_eq!(admin_get(admin, "/healthz"), (200, "ok\n".to_owned()));
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(idle);
    assert_serves_on(&host);
}

#[test]
fn guest_and_client_text_cannot_forge_or_split_a_log_line() {
    let host = Host::test_app(&["--tasks", "1"]);
    assert_eq!(host.get("/attack/log-forge").0, 200);
    // A header name with a line break in it, refused and named in the log.
    assert_eq!(
        host.get("/attack/framing?name=x%0D%0AERROR%20forged&value=1")
            .0,
        500
    );
    host.assert_logged("invalid header name", Duration::from_secs(5));
    host.assert_logged("innocent", Duration::from_secs(5));
    let log = host.log();
    let printed = log.lines().find(|line| line.contains("innocent")).unwrap();
    assert!(
        printed.contains("\\r") && printed.contains("forged") && printed.contains("\\u{2028}"),
        "{printed}"
    );
    let refused = log
        .lines()
        .find(|line| line.contains("invalid header name"))
        .unwrap();
    assert!(refused.contains("\\r\\nERROR forged"), "{refused}");
    assert!(
        !log.lines()
            .any(|line| line.starts_with("2026-12-04T00:00:00")
                || line.starts_with("ERROR forged")
                || line.starts_with("more")),
        "{log}"
    );

    // The JSON log stays one valid object per line.
    let host = Host::test_app(&["--tasks", "1", "--log-format", "json"]);
    assert_eq!(host.get("/attack/log-forge").0, 200);
    host.assert_logged("innocent", Duration::from_secs(5));
    for line in host.log().lines().filter(|line| !line.trim().is_empty()) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

#[test]
fn the_host_header_is_checked_as_rfc_9112_says() {
    let host = Host::test_app(&["--tasks", "1"]);
    let ask = |request: &str| -> (String, String) {
        let mut stream = connect(&host, Duration::from_secs(5));
        stream.write_all(request.as_bytes()).unwrap();
        read_response(&mut stream)
    };
    for (request, why) in [
        ("GET /task HTTP/1.1\r\n\r\n", "missing Host header"),
        (
            "GET /task HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
            "more than one Host header",
        ),
        (
            "GET /task HTTP/1.1\r\nhost: a b\r\n\r\n",
            "invalid Host header",
        ),
        (
            "GET /task HTTP/1.1\r\nhost: user@a\r\n\r\n",
            "invalid Host header",
        ),
    ] {
        let (head, body) = ask(request);
        assert!(head.starts_with("HTTP/1.1 400"), "{request:?}: {head}");
        assert_eq!(body, why);
    }
    // HTTP/1.0 needs no Host.
    let (head, _) = ask("GET /task HTTP/1.0\r\n\r\n");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    // An absolute-form target's authority is the host the guest sees.
    let (head, body) = ask("GET http://real.example:81/echo HTTP/1.1\r\nhost: other\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let hosts: Vec<&Value> = body["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0] == "host")
        .map(|pair| &pair[1])
        .collect();
    assert_eq!(hosts, vec!["real.example:81"], "{body}");
    assert_serves_on(&host);
}
