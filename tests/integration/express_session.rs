//! express-session's own test suite (`test/session.js` and `test/cookie.js`
//! of expressjs/session 1.19.0), ported case by case as tests of the SDK's
//! session layer through the real binary, with `test-app` as the guest.
//! Each test is named after the case it ports; the store's operations are
//! counted through the admin endpoint's metrics, as the JS tests count
//! `store.set` calls.
//!
//! Ported so far: the cases issue 14 names as behaving differently from
//! express-session, as each is fixed. The rest of the port (with the count
//! of ported and skipped cases and a line per skip) is still to come.

use std::time::Duration;

use wasmhost_tests::{Host, RedisServer, free_port, get_text, guest, http};

/// A host serving `test-app` on one task with its admin endpoint, and
/// `extra` arguments; the admin port with it.
fn host(extra: &[&str]) -> (Host, u16) {
    let admin = free_port();
    let admin_addr = format!("127.0.0.1:{admin}");
    let mut args = vec!["--tasks", "1", "--admin-listen", &admin_addr];
    args.extend_from_slice(extra);
    (Host::start(&guest("test-app"), &args), admin)
}

/// The store calls of kind `operation` that succeeded so far.
fn store_calls(admin: u16, operation: &str) -> u64 {
    let (_, text) = get_text(&http(), &format!("http://127.0.0.1:{admin}/metrics"), None);
    let prefix = format!(
        "wasmhost_store_operations_total{{backend=\"memory\",operation=\"{operation}\",result=\"ok\"}}"
    );
    text.lines()
        .find(|line| line.starts_with(&prefix))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// The `connect.sid=…` of a response, if it set one.
fn set_cookie(response: &reqwest::blocking::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or_default().to_owned())
}

// saveUninitialized: false. In express-session a new session's generated id
// is its original id, so reading it is no change (issue 14: the SDK stored
// an empty session and sent a cookie for it, which bots could use to fill
// the store).
#[test]
fn save_uninitialized_false_should_not_save_a_new_session_whose_id_was_only_read() {
    let (host, admin) = host(&[]);
    let response = http().get(host.url("/session/id")).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        set_cookie(&response),
        None,
        "no cookie for an untouched session"
    );
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["id"].as_str().map(str::len), Some(32), "{body}");
    assert_eq!(store_calls(admin, "set"), 0, "nothing stored");
}

// test/session.js: .save() "should prevent end-of-request save", and
// "when saveUninitialized is false: should prevent end-of-request save".
#[test]
fn save_should_prevent_end_of_request_save() {
    let (host, admin) = host(&[]);
    let client = http();
    let first = client.get(host.url("/session/save")).send().unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let cookie = set_cookie(&first).expect("the saved session's cookie is sent");
    assert_eq!(
        store_calls(admin, "set"),
        1,
        "one write for the new session"
    );
    let (status, body) = get_text(&client, &host.url("/session/save"), Some(&cookie));
    assert_eq!((status, body.as_str()), (200, "saved"));
    assert_eq!(
        store_calls(admin, "set"),
        2,
        "one write for the known session"
    );
}

// test/session.js: resave option, when false: "should pass session touch
// error". express-session sends the handler's response and reports the
// failed touch after it; the SDK logs it and answers as the handler did.
#[test]
fn resave_false_should_pass_session_touch_error_without_changing_the_answer() {
    let redis = RedisServer::start();
    let store = redis.url();
    let admin = free_port().to_string();
    let admin_addr = format!("127.0.0.1:{admin}");
    let host = Host::start(
        &guest("test-app"),
        &[
            "--tasks",
            "1",
            "--store",
            &store,
            "--admin-listen",
            &admin_addr,
            "--env",
            "SESSION_RESAVE=false",
        ],
    );
    let client = http();
    let first = client.get(host.url("/visits")).send().unwrap();
    let cookie = set_cookie(&first).expect("a session");
    // From now on Redis refuses to renew an expiry.
    let mut redis_client = redis.client();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-pexpire")
        .query(&mut redis_client)
        .unwrap();
    let (status, body) = get_text(&client, &host.url("/task"), Some(&cookie));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"count\":1"), "{body}");
    assert!(
        host.wait_for_log("renewing the session's expiry", Duration::from_secs(5)),
        "{}",
        host.log()
    );
}

// A destroyed session is gone for the rest of the request: saving it would
// write it back (issue 14). In express-session `req.session` is undefined
// after destroy.
#[test]
fn destroy_then_save_does_not_write_the_session_back() {
    let (host, admin) = host(&[]);
    let client = http();
    let first = client.get(host.url("/visits")).send().unwrap();
    let cookie = set_cookie(&first).expect("a session");
    let (status, body) = get_text(
        &client,
        &host.url("/session/destroy-then-save"),
        Some(&cookie),
    );
    assert_eq!((status, body.as_str()), (200, "refused"));
    let (_, metrics) = get_text(&http(), &format!("http://127.0.0.1:{admin}/metrics"), None);
    assert!(metrics.contains("wasmhost_store_entries 0"), "{metrics}");
    let (_, visits) = get_text(&client, &host.url("/visits"), Some(&cookie));
    assert!(visits.contains("\"visits\":1"), "a new session: {visits}");
}

/// The `Set-Cookie` header of a response, whole.
fn set_cookie_header(response: &reqwest::blocking::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

// test/session.js: cookie, .expires, when given a Date: "should set
// absolute" (an hour ahead here, where the JS test uses the epoch: the SDK
// keeps max ages as unsigned milliseconds, and a past expiry ends the
// session at once either way).
#[test]
fn cookie_expires_when_given_a_date_should_set_absolute() {
    let (host, _) = host(&[]);
    let response = http()
        .get(host.url("/session/expires?in=3600"))
        .send()
        .unwrap();
    let header = set_cookie_header(&response).expect("a cookie");
    let expires = header
        .split("; ")
        .find_map(|attribute| attribute.strip_prefix("Expires="))
        .expect("an Expires attribute");
    let at = httpdate::parse_http_date(expires).unwrap();
    let ahead = at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .as_secs();
    assert!(
        (3590..=3600).contains(&ahead),
        "{ahead} s ahead, not the 900 s max age: {header}"
    );
}

// test/session.js: cookie, .expires, when null: "should be a browser-session
// cookie", "should not reset cookie when modified".
#[test]
fn cookie_expires_when_null_should_be_a_browser_session_cookie_and_not_reset_when_modified() {
    let (host, _) = host(&[]);
    let client = http();
    let first = client
        .get(host.url("/session/expires?in=none"))
        .send()
        .unwrap();
    let header = set_cookie_header(&first).expect("a cookie");
    assert!(!header.contains("Expires="), "{header}");
    let cookie = set_cookie(&first).unwrap();
    // Modified (hits goes up), but a browser-session cookie is not sent again.
    let second = client
        .get(host.url("/session/expires"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(set_cookie_header(&second), None);
    let body: serde_json::Value = second.json().unwrap();
    assert_eq!(body["hits"], 2, "the same session: {body}");
}

// test/cookie.js and the `cookie` package it serializes with: a path with
// `;` (or a control character, or `<`) is refused, not sent, so a value can
// never add an attribute of its own (issue 14: `; Domain=…` in a path was
// sent as a Domain attribute).
#[test]
fn a_cookie_path_that_would_inject_an_attribute_is_refused_not_sent() {
    let (host, admin) = host(&[]);
    let response = http().get(host.url("/session/bad-path")).send().unwrap();
    assert_eq!(response.status().as_u16(), 500);
    assert_eq!(set_cookie_header(&response), None);
    assert_eq!(store_calls(admin, "set"), 0, "nothing stored for it");
    assert!(
        host.wait_for_log("cookie path", Duration::from_secs(5)),
        "{}",
        host.log()
    );
}
