//! Running wasmhost as people run servers: the access log, the admin
//! endpoint (`/metrics`, `/healthz`, `/readyz`), reloading the app under
//! load (`--watch`, SIGHUP), precompiled apps (`wasmhost compile`) and new
//! projects (`wasmhost new`), all through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmhost_tests::{
    Host, RedisServer, admin_get, free_port, get_text, guest, http, metric, session_cookie,
    start_with_admin, wasmhost_bin, wasmhost_succeeds, workspace,
};

/// A client that keeps its connections alive, as browsers and proxies do.
fn keep_alive_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[test]
fn with_the_access_log_on_every_request_leaves_one_line() {
    let host = Host::start(&guest("test-app"), &["--tasks", "1", "--access-log", "on"]);
    let client = http();
    assert_eq!(
        get_text(&client, &host.url("/task?secret=token"), None).0,
        200
    );
    assert_eq!(get_text(&client, &host.url("/missing"), None).0, 404);
    host.assert_logged("path=/missing", Duration::from_secs(5));
    let log = host.log();
    let line = log
        .lines()
        .find(|line| line.contains("wasmhost::access") && line.contains("path=/task"))
        .unwrap_or_else(|| panic!("no access line for /task: {log}"));
    for field in [
        "method=GET",
        "status=200",
        "task=0",
        "duration_us=",
        "bytes=",
        "waited=false",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    assert!(
        !log.contains("secret=token"),
        "the query is not logged: {log}"
    );
    assert!(log.contains("status=404"), "{log}");

    // Off by default, and when switched off.
    let quiet = Host::start(&guest("test-app"), &["--tasks", "1"]);
    let off = Host::start(&guest("test-app"), &["--tasks", "1", "--access-log", "off"]);
    assert_eq!(get_text(&client, &off.url("/task"), None).0, 200);
    assert_eq!(get_text(&client, &quiet.url("/task"), None).0, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!quiet.log().contains("wasmhost::access"), "{}", quiet.log());
    assert!(!off.log().contains("wasmhost::access"), "{}", off.log());
}

#[test]
fn the_log_can_be_json_one_object_per_line() {
    let host = Host::start(
        &guest("test-app"),
        &["--tasks", "1", "--log-format", "json", "--access-log", "on"],
    );
    assert_eq!(get_text(&http(), &host.url("/task"), None).0, 200);
    host.assert_logged("\"path\":\"/task\"", Duration::from_secs(5));
    for line in host.log().lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event.get("level").is_some(), "{line}");
    }
}

#[test]
fn the_admin_endpoint_serves_metrics_health_and_readiness_on_its_own_port() {
    let (host, admin) = start_with_admin(&guest("guest-app"), &["--tasks", "2"]);
    assert_eq!(admin_get(admin, "/healthz"), (200, "ok\n".to_owned()));
    let (status, body) = admin_get(admin, "/readyz");
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["instances"], 2);
    assert_eq!(ready["store"], "ok");
    assert_eq!(ready["app_version"], 1);

    // The app's port does not serve the admin paths: the guest answers them.
    let (status, body) = get_text(&http(), &host.url("/metrics"), None);
    assert_eq!(status, 404, "{body}");

    let client = http();
    let set = client.get(host.url("/set")).send().unwrap();
    let cookie = session_cookie(&set);
    for _ in 0..40 {
        assert_eq!(get_text(&client, &host.url("/"), Some(&cookie)).0, 200);
    }
    let (status, text) = admin_get(admin, "/metrics");
    assert_eq!(status, 200);
    // Fresh connections go to the tasks in turn: both counted requests.
    let per_task: Vec<f64> = (0..2)
        .map(|task| {
            metric(
                &text,
                &format!("wasmhost_requests_total{{task=\"{task}\",status=\"200\"}}"),
            )
            .unwrap_or(0.0)
        })
        .collect();
    assert!(per_task.iter().all(|&n| n >= 10.0), "{per_task:?}\n{text}");
    // The /metrics 404 above was counted too.
    assert_eq!(per_task.iter().sum::<f64>(), 41.0, "{text}");
    let answered: f64 = (0..2)
        .filter_map(|task| {
            metric(
                &text,
                &format!("wasmhost_request_duration_seconds_count{{task=\"{task}\"}}"),
            )
        })
        .sum();
    assert_eq!(answered, 42.0, "{text}");
    assert!(
        text.contains("wasmhost_request_duration_seconds_bucket{le="),
        "{text}"
    );
    assert!(
        metric(
            &text,
            r#"wasmhost_store_operations_total{backend="memory",operation="read",result="ok"}"#
        )
        .is_some_and(|n| n >= 40.0),
        "{text}"
    );
    assert_eq!(metric(&text, "wasmhost_store_entries"), Some(1.0), "{text}");
    assert!(
        metric(&text, "wasmhost_store_bytes").is_some_and(|n| n > 0.0),
        "{text}"
    );
    assert_eq!(metric(&text, "wasmhost_instances"), Some(2.0), "{text}");
    assert_eq!(
        metric(&text, "wasmhost_requests_waiting"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(metric(&text, "wasmhost_app_version"), Some(1.0), "{text}");

    // Counts move under load.
    for _ in 0..10 {
        assert_eq!(get_text(&client, &host.url("/"), Some(&cookie)).0, 200);
    }
    let (_, later) = admin_get(admin, "/metrics");
    let answered_later: f64 = (0..2)
        .filter_map(|task| {
            metric(
                &later,
                &format!("wasmhost_request_duration_seconds_count{{task=\"{task}\"}}"),
            )
        })
        .sum();
    assert_eq!(answered_later, 52.0, "{later}");
    assert_eq!(admin_get(admin, "/nope").0, 404);
}

#[test]
fn clients_that_stall_or_send_junk_cannot_take_the_admin_endpoint_down() {
    use std::io::Write;
    let (_host, admin) = start_with_admin(&guest("guest-app"), &["--tasks", "1"]);
    let admin_addr = format!("127.0.0.1:{admin}");
    // More silent connections than the endpoint serves at once.
    let stalled: Vec<std::net::TcpStream> = (0..40)
        .map(|_| std::net::TcpStream::connect(&admin_addr).unwrap())
        .collect();
    let mut junk = std::net::TcpStream::connect(&admin_addr).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    junk.write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        .unwrap();
    // The stalled ones are dropped at the header deadline, and health
    // checks are answered again.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let started = Instant::now();
    let health = client
        .get(format!("http://{admin_addr}/healthz"))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let (answer, _) = wasmhost_tests::read_until_closed(&mut junk);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    drop(stalled);
}

#[test]
fn replacements_and_dropped_guest_log_lines_are_counted_by_cause() {
    let (host, admin) = start_with_admin(
        &guest("test-app"),
        &["--tasks", "1", "--guest-log-lines", "5"],
    );
    let client = http();
    assert_eq!(get_text(&client, &host.url("/panic"), None).0, 500);
    assert_eq!(
        get_text(&client, &host.url("/attack/lines?n=50"), None).0,
        200
    );
    let (_, text) = admin_get(admin, "/metrics");
    assert_eq!(
        metric(&text, r#"wasmhost_instances_replaced_total{cause="trap"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(
        metric(&text, "wasmhost_guest_log_lines_dropped_total").is_some_and(|n| n >= 40.0),
        "{text}"
    );
}

#[test]
fn readiness_follows_the_redis_store() {
    let mut redis = RedisServer::start();
    let store = redis.url();
    let (host, admin) = start_with_admin(
        &guest("guest-app"),
        &[
            "--tasks",
            "2",
            "--store",
            &store,
            "--store-timeout",
            "300ms",
        ],
    );
    assert_eq!(admin_get(admin, "/readyz").0, 200);
    redis.kill();
    let (status, body) = admin_get(admin, "/readyz");
    assert_eq!(status, 503, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], false);
    assert_ne!(ready["store"], "ok");
    assert_eq!(
        admin_get(admin, "/healthz").0,
        200,
        "the process is still up"
    );
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin_get(admin, "/readyz").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready again after Redis came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(host);
}

#[test]
fn the_admin_endpoint_may_not_share_the_apps_address() {
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let output = Command::new(wasmhost_bin())
        .args(["--listen", &addr, "--admin-listen", &addr])
        .arg(guest("guest-app"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--admin-listen"), "{stderr}");
}

/// A copy of `package`'s component at a path of the test's own, which the
/// test may replace while a host serves it.
fn app_copy(dir: &Path, package: &str) -> PathBuf {
    let path = dir.join("app.wasm");
    std::fs::copy(guest(package), &path).unwrap();
    path
}

/// Replaces `path` with `package`'s component the way deployments do: write
/// a new file beside it, then rename it over the old one.
fn replace_app(path: &Path, bytes: &[u8]) {
    let staging = path.with_extension("new");
    std::fs::write(&staging, bytes).unwrap();
    std::fs::rename(&staging, path).unwrap();
}

/// What one load thread saw: every (status, body), and any transport error.
type Seen = (Vec<(u16, String)>, Vec<String>);

/// Requests `/` with `cookie` from `clients` threads until `stop`.
fn load(
    base: &str,
    cookie: &str,
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Seen>> {
    (0..clients)
        .map(|_| {
            let (url, cookie, stop) = (format!("{base}/"), cookie.to_owned(), Arc::clone(stop));
            std::thread::spawn(move || {
                let client = keep_alive_client();
                let (mut answers, mut errors) = (Vec::new(), Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match client.get(&url).header("cookie", &cookie).send() {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            answers.push((status, response.text().unwrap_or_default()));
                        }
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                (answers, errors)
            })
        })
        .collect()
}

#[test]
fn watch_reloads_the_app_under_load_without_a_failed_request_or_a_lost_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_copy(dir.path(), "guest-app");
    let (host, admin) = start_with_admin(
        &app,
        &[
            "--tasks",
            "3",
            "--watch",
            "--env",
            "SESSION_SECRET=reload-secret",
        ],
    );
    let set = http().get(host.url("/set")).send().unwrap();
    let cookie = session_cookie(&set);

    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&host.base, &cookie, 4, &stop);
    std::thread::sleep(Duration::from_millis(500));
    replace_app(&app, &std::fs::read(guest("test-app")).unwrap());
    host.assert_logged("app reloaded", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(700));
    // A broken file next: the log says why, and the new app serves on.
    replace_app(&app, b"\0asm this is not a component");
    host.assert_logged("reload of", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);

    let (mut answers, mut errors) = (Vec::new(), Vec::new());
    for client in clients {
        let (a, e) = client.join().unwrap();
        answers.extend(a);
        errors.extend(e);
    }
    assert!(errors.is_empty(), "transport errors: {errors:?}");
    assert!(answers.len() > 100, "only {} requests", answers.len());
    let failed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let (mut old, mut new) = (0, 0);
    let mut seen_new = false;
    for (_, body) in &answers {
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["foo"], "bar", "the session survived: {body}");
        if json["app"] == "test-app" {
            new += 1;
            seen_new = true;
        } else {
            old += 1;
        }
    }
    assert!(seen_new && old > 0 && new > 0, "old {old}, new {new}");
    // After the reload, every answer is the new app's.
    assert!(
        answers
            .iter()
            .rev()
            .take(20)
            .all(|(_, b)| b.contains("test-app"))
    );
    let log = host.log();
    let failure = log
        .lines()
        .find(|line| line.contains("reload of"))
        .unwrap_or_default();
    assert!(
        failure.contains("not a valid WebAssembly component"),
        "{failure}"
    );
    assert!(!log.contains("panicked"), "{log}");
    let (_, ready) = admin_get(admin, "/readyz");
    assert!(ready.contains("\"app_version\":2"), "{ready}");
    let (_, text) = admin_get(admin, "/metrics");
    assert_eq!(
        metric(&text, r#"wasmhost_app_reloads_total{result="ok"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, r#"wasmhost_app_reloads_total{result="failed"}"#),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn sighup_reloads_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_copy(dir.path(), "guest-app");
    let host = Host::start(&app, &["--tasks", "2"]);
    let client = http();
    let set = client.get(host.url("/set")).send().unwrap();
    let cookie = session_cookie(&set);
    replace_app(&app, &std::fs::read(guest("test-app")).unwrap());
    // Without --watch nothing changes until SIGHUP.
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        !get_text(&client, &host.url("/"), Some(&cookie))
            .1
            .contains("test-app")
    );
    let pid = nix::unistd::Pid::from_raw(i32::try_from(host.pid()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    host.assert_logged("app reloaded", Duration::from_secs(30));
    for _ in 0..4 {
        let (status, body) = get_text(&client, &host.url("/"), Some(&cookie));
        assert_eq!(status, 200);
        assert!(
            body.contains("test-app") && body.contains("\"foo\":\"bar\""),
            "{body}"
        );
    }
}

/// `wasmhost compile APP -o OUTPUT`, which must succeed; its output.
fn compile(app: &Path, output: &Path) -> std::process::Output {
    wasmhost_succeeds(
        Path::new("."),
        &[
            "compile".as_ref(),
            app.as_os_str(),
            "-o".as_ref(),
            output.as_os_str(),
        ],
    )
}

#[test]
fn a_precompiled_app_is_served_and_one_from_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("app.cwasm");
    let output = compile(&guest("guest-app"), &cwasm);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("--allow-precompiled"),
        "compile says how to serve its output"
    );
    let host = Host::start(&cwasm, &["--tasks", "2", "--allow-precompiled"]);
    let (status, body) = get_text(&http(), &host.url("/"), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Not set"), "{body}");
    drop(host);

    // The same file as another wasmtime would have written it: the version
    // in its engine header (a length-prefixed "48") changed.
    let mut bytes = std::fs::read(&cwasm).unwrap();
    let version = b"\x0248";
    let at = bytes
        .windows(version.len())
        .position(|w| w == version)
        .expect("the compiled file names its wasmtime version");
    bytes[at + 1..at + 3].copy_from_slice(b"47");
    let other = dir.path().join("other.cwasm");
    std::fs::write(&other, bytes).unwrap();
    let output = Command::new(wasmhost_bin())
        .args(["--listen", "127.0.0.1:0", "--allow-precompiled"])
        .arg(&other)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("precompiled by another version"),
        "{stderr}"
    );

    // A file that is not a component cannot be compiled.
    let output = Command::new(wasmhost_bin())
        .arg("compile")
        .arg(dir.path().join("missing.wasm"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read"));
}

/// A precompiled file is machine code run outside the sandbox: without
/// `--allow-precompiled` it is refused by its content, whatever its name, at
/// start and on a reload.
#[test]
fn a_precompiled_file_named_wasm_is_refused_without_allow_precompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("x.cwasm");
    compile(&guest("test-app"), &cwasm);
    let innocent = dir.path().join("innocent.wasm");
    std::fs::copy(&cwasm, &innocent).unwrap();
    let output = Command::new(wasmhost_bin())
        .args(["--listen", "127.0.0.1:0"])
        .arg(&innocent)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("precompiled machine code") && stderr.contains("--allow-precompiled"),
        "{stderr}"
    );

    // A reload of a served app that becomes precompiled code is refused
    // too, and the running app serves on.
    let app = dir.path().join("app.wasm");
    std::fs::copy(guest("test-app"), &app).unwrap();
    let host = Host::start(&app, &["--tasks", "1", "--watch"]);
    // The watcher has taken its first look at the file.
    host.assert_logged("watching", Duration::from_secs(10));
    let next = dir.path().join("next.wasm");
    std::fs::copy(&cwasm, &next).unwrap();
    std::fs::rename(&next, &app).unwrap();
    host.assert_logged("precompiled machine code", Duration::from_secs(30));
    let (status, body) = get_text(&http(), &host.url("/"), None);
    assert_eq!(status, 200, "{body}");
    assert!(!host.log().contains("app reloaded"), "{}", host.log());
}

#[test]
fn wasmhost_new_writes_a_project_that_builds_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    wasmhost_succeeds(dir.path(), &["new".as_ref(), "demo".as_ref()]);
    let project = dir.path().join("demo");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    // The README's two commands, run as written (the dependency versions
    // pinned to the workspace's, so the build reuses its compiled crates).
    let build = readme
        .lines()
        .find(|line| line.starts_with("cargo build"))
        .expect("the README says how to build");
    let serve = readme
        .lines()
        .find(|line| line.starts_with("wasmhost "))
        .expect("the README says how to serve");
    std::fs::copy(workspace().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let args: Vec<&str> = build
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let status = Command::new(env!("CARGO"))
        .current_dir(&project)
        .args(&args[1..])
        .env(
            "CARGO_TARGET_DIR",
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| workspace().join("target"), PathBuf::from),
        )
        .status()
        .unwrap();
    assert!(status.success(), "the new project builds");
    let serve_args: Vec<&str> = serve
        .split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let wasm_rel = serve_args.last().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    let wasm = target.join(wasm_rel.strip_prefix("target/").unwrap());
    let host = Host::start(&wasm, &serve_args[1..serve_args.len() - 1]);
    let client = http();
    let first = client.get(host.url("/")).send().unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let cookie = session_cookie(&first);
    let body: serde_json::Value = first.json().unwrap();
    assert_eq!(body["your_visits"], 1, "{body}");
    assert_eq!(body["message"], "Hello from demo!");
    let (status, again) = get_text(&client, &host.url("/"), Some(&cookie));
    assert_eq!(status, 200);
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["your_visits"], 2, "the session counted: {again}");
    assert_eq!(again["all_visits"], 2, "the store counted: {again}");

    // The README's `cargo test`, as written: the template's unit test of a
    // session flow and a store call passes natively.
    let test = readme
        .lines()
        .find(|line| line.starts_with("cargo test"))
        .expect("the README says how to test");
    let test_args: Vec<&str> = test.split_whitespace().collect();
    let output = Command::new(env!("CARGO"))
        .current_dir(&project)
        .args(&test_args[1..])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains("visits_count_per_session_and_in_all ... ok"),
        "{report}"
    );

    // A second project of the same name is refused in one line.
    let output = Command::new(wasmhost_bin())
        .current_dir(dir.path())
        .args(["new", "demo"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));
}
