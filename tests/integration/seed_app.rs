//! The seed app on the real host: sessions shared across tasks, its exact
//! responses, and its cookie as express-session makes it.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use reqwest::header::SET_COOKIE;
use serde_json::Value;
use wasmhost_tests::{Host, InProcess, express_signature, get_text, guest, http, session_cookie};

const NOT_SET: &str = "Not set. Go to '/set' to set value.";

/// The seed app served in process: these tests need no process boundary.
fn seed_host(args: &[&str]) -> InProcess {
    InProcess::start(&guest("guest-app"), args)
}

#[test]
fn a_session_set_through_one_task_is_read_through_the_others() {
    let host = seed_host(&["--tasks", "5"]);
    let client = http();
    let set = client.get(host.url("/set")).send().unwrap();
    assert_eq!(set.status(), 200);
    let cookie = session_cookie(&set);

    let mut threads = BTreeSet::new();
    for _ in 0..40 {
        let (status, body) = get_text(&client, &host.url("/"), Some(&cookie));
        assert_eq!(status, 200);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["foo"], "bar", "every task sees the session: {body}");
        let thread = body["thread"].as_u64().unwrap();
        assert!(thread < 5, "task ids are 0..5, got {thread}");
        threads.insert(thread);
    }
    assert!(
        threads.len() >= 3,
        "40 fresh connections reached only tasks {threads:?}"
    );
}

#[test]
fn the_seed_responses_match_the_design_to_the_character() {
    let host = seed_host(&["--tasks", "2"]);
    let client = http();

    let response = client.get(host.url("/")).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert!(
        response.headers().get(SET_COOKIE).is_none(),
        "saveUninitialized: false sends no cookie for an untouched session"
    );
    let body = response.text().unwrap();
    let thread = serde_json::from_str::<Value>(&body).unwrap()["thread"].clone();
    assert_eq!(body, format!(r#"{{"foo":"{NOT_SET}","thread":{thread}}}"#));

    let response = client.get(host.url("/set")).send().unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().unwrap();
    let thread = serde_json::from_str::<Value>(&body).unwrap()["thread"].clone();
    assert_eq!(
        body,
        format!(r#"{{"thread":{thread},"message":"foo value set to 'bar' in session."}}"#)
    );
}

#[test]
fn the_session_cookie_is_signed_like_express_session() {
    let host = seed_host(&["--tasks", "2"]);
    let response = http().get(host.url("/set")).send().unwrap();
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let mut attributes = set_cookie.split("; ");
    let value = attributes
        .next()
        .unwrap()
        .strip_prefix("connect.sid=")
        .expect("the cookie is connect.sid");
    let attributes: Vec<&str> = attributes.collect();
    assert!(attributes.contains(&"Path=/"), "{set_cookie}");
    assert!(attributes.contains(&"HttpOnly"), "{set_cookie}");

    let expires = attributes
        .iter()
        .find_map(|a| a.strip_prefix("Expires="))
        .expect("the cookie has an expiry");
    let expires = httpdate::parse_http_date(expires).unwrap();
    let ahead = expires
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    assert!(
        (Duration::from_secs(895)..=Duration::from_secs(901)).contains(&ahead),
        "Expires is {ahead:?} ahead, not 900 s"
    );

    let value = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .unwrap();
    let signed = value.strip_prefix("s:").expect("express signs with s:");
    let (id, signature) = signed.rsplit_once('.').unwrap();
    assert_eq!(id.len(), 32, "24 random bytes in base64url");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(
        signature,
        express_signature("TEST_SECRET", id),
        "HMAC-SHA256(TEST_SECRET, id), base64 without ="
    );
}

#[test]
fn session_secret_comes_from_the_environment() {
    let host = seed_host(&["--tasks", "1", "--env", "SESSION_SECRET=another secret"]);
    let response = http().get(host.url("/set")).send().unwrap();
    let cookie = session_cookie(&response);
    let value = percent_encoding::percent_decode_str(cookie.strip_prefix("connect.sid=").unwrap())
        .decode_utf8()
        .unwrap()
        .into_owned();
    let (id, signature) = value.strip_prefix("s:").unwrap().rsplit_once('.').unwrap();
    assert_eq!(signature, express_signature("another secret", id));
}

#[test]
fn the_seed_app_warns_when_it_falls_back_to_its_public_demo_secret() {
    // The warning is read from the log, so these run as processes.
    let host = Host::start(&guest("guest-app"), &["--tasks", "1"]);
    assert_eq!(http().get(host.url("/")).send().unwrap().status(), 200);
    host.assert_logged("SESSION_SECRET is not set", Duration::from_secs(5));
    let quiet = Host::start(
        &guest("guest-app"),
        &["--tasks", "1", "--env", "SESSION_SECRET=s3cret"],
    );
    assert_eq!(http().get(quiet.url("/")).send().unwrap().status(), 200);
    // Its first request has been answered, so the app was built and any
    // warning printed before it; give the log a moment to arrive anyway.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!quiet.log().contains("SESSION_SECRET"), "{}", quiet.log());
}

#[test]
fn missing_unsigned_tampered_or_unknown_cookies_read_not_set() {
    let host = seed_host(&["--tasks", "2"]);
    let client = http();
    let cookie = session_cookie(&client.get(host.url("/set")).send().unwrap());
    let (_, body) = get_text(&client, &host.url("/"), Some(&cookie));
    assert!(
        body.contains(r#""foo":"bar""#),
        "the genuine cookie works: {body}"
    );

    // Flip the last character of the signature.
    let mut tampered = cookie.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    // The same id, unsigned.
    let id = percent_encoding::percent_decode_str(&cookie)
        .decode_utf8()
        .unwrap()
        .split_once("s:")
        .unwrap()
        .1
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    let unsigned = format!("connect.sid={id}");
    // A correctly signed id the store has never seen.
    let unknown_id = "A".repeat(32);
    let unknown = format!(
        "connect.sid=s%3A{unknown_id}.{}",
        express_signature("TEST_SECRET", &unknown_id)
            .replace('+', "%2B")
            .replace('/', "%2F")
    );

    for cookie in [
        None,
        Some(tampered.as_str()),
        Some(unsigned.as_str()),
        Some(unknown.as_str()),
        Some("connect.sid=garbage"),
    ] {
        let (status, body) = get_text(&client, &host.url("/"), cookie);
        assert_eq!(status, 200, "cookie {cookie:?}");
        assert!(
            body.contains(NOT_SET),
            "cookie {cookie:?} gave {body}, not a fresh session"
        );
    }
}

#[test]
fn unknown_routes_are_404() {
    let host = seed_host(&["--tasks", "1"]);
    let client = http();
    for path in ["/nope", "/set/extra", "/index.html"] {
        let response = client.get(host.url(path)).send().unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = client.post(host.url("/set")).send().unwrap();
    assert_eq!(response.status(), 404, "POST /set is not a route");
}

#[test]
fn head_is_answered_by_the_get_route_without_a_body() {
    let host = seed_host(&["--tasks", "1"]);
    let get = http().get(host.url("/")).send().unwrap();
    let get_length = get.headers()["content-length"].clone();
    let get_type = get.headers()["content-type"].clone();
    assert!(!get.bytes().unwrap().is_empty());
    let head = http().head(host.url("/")).send().unwrap();
    assert_eq!(head.status(), 200, "not `Cannot HEAD /`");
    assert_eq!(head.headers()["content-type"], get_type);
    assert_eq!(
        head.headers()["content-length"],
        get_length,
        "the GET response's length"
    );
    assert!(head.bytes().unwrap().is_empty(), "no body");
    let missing = http().head(host.url("/nope")).send().unwrap();
    assert_eq!(missing.status(), 404);
}
