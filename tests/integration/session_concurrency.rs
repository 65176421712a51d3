//! Concurrent requests of one session (issue 14, item 4): by default the
//! last save wins, as in express-session, and a change is lost; with
//! `SessionOptions::merge_concurrent_writes` every change of every request
//! survives, on several tasks of two hosts sharing one Redis.
//!
//! Each request waits after loading the session, so all of them load it
//! before any saves: the race every time, not now and then.

use std::collections::BTreeSet;
use std::thread;

use serde_json::Value;
use wasmhost_tests::{Host, RedisServer, get_text, http, session_cookie};

/// Requests of one session in flight at once: all of them fit the tasks.
const CONCURRENT: usize = 6;
/// How long each request waits between loading and saving.
const WAIT_MS: u64 = 300;

/// Two hosts of 3 tasks each on one Redis, serving test-app with `merge`
/// as its `SESSION_MERGE`.
fn two_hosts(redis: &RedisServer, merge: bool) -> [Host; 2] {
    let merge = format!("SESSION_MERGE={merge}");
    let start = || Host::on_redis("test-app", redis, &["--tasks", "3", "--env", &merge]);
    [start(), start()]
}

/// A session saved on the first host, with one field `start`.
fn new_session(hosts: &[Host; 2]) -> String {
    let response = http()
        .get(hosts[0].url("/session/slow-set?field=start&value=1"))
        .send()
        .expect("the host answers");
    assert_eq!(response.status(), 200);
    session_cookie(&response)
}

/// Sends `path(i)` for every i below [`CONCURRENT`] at once, alternating
/// hosts, and returns each answer's status and body in that order.
fn at_once(hosts: &[Host; 2], cookie: &str, path: impl Fn(usize) -> String) -> Vec<(u16, String)> {
    thread::scope(|scope| {
        let requests: Vec<_> = (0..CONCURRENT)
            .map(|i| {
                let url = hosts[i % 2].url(&path(i));
                scope.spawn(move || get_text(&http(), &url, Some(cookie)))
            })
            .collect();
        requests
            .into_iter()
            .map(|request| request.join().expect("the request thread"))
            .collect()
    })
}

/// The session's fields as the first host reads them.
fn fields(hosts: &[Host; 2], cookie: &str) -> serde_json::Map<String, Value> {
    let (status, body) = get_text(&http(), &hosts[0].url("/session/fields"), Some(cookie));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("the fields as JSON")
}

fn set_field(i: usize) -> String {
    format!("/session/slow-set?field=f{i}&value=v{i}&ms={WAIT_MS}")
}

/// A new session on two hosts (`merge` as their `SESSION_MERGE`), then
/// [`CONCURRENT`] requests at once each setting a field of its own, all
/// answered 200: the fields the session holds afterwards.
fn fields_after_concurrent_sets(merge: bool) -> serde_json::Map<String, Value> {
    let redis = RedisServer::start();
    let hosts = two_hosts(&redis, merge);
    let cookie = new_session(&hosts);
    for (status, body) in at_once(&hosts, &cookie, set_field) {
        assert_eq!(status, 200, "{body}");
    }
    fields(&hosts, &cookie)
}

#[test]
fn by_default_the_last_save_wins_and_concurrent_fields_are_lost() {
    let fields = fields_after_concurrent_sets(false);
    let kept = (0..CONCURRENT)
        .filter(|i| fields.contains_key(&format!("f{i}")))
        .count();
    assert!(
        kept < CONCURRENT,
        "express-session's default keeps only the last save, yet all {CONCURRENT} fields are there: {fields:?}"
    );
    assert!(kept >= 1, "the last save is kept: {fields:?}");
}

#[test]
fn merge_concurrent_writes_keeps_every_field_of_concurrent_requests_on_two_hosts() {
    let fields = fields_after_concurrent_sets(true);
    for i in 0..CONCURRENT {
        assert_eq!(
            fields.get(&format!("f{i}")),
            Some(&Value::from(format!("v{i}"))),
            "field f{i} was lost: {fields:?}"
        );
    }
    assert_eq!(fields.get("start"), Some(&Value::from("1")), "{fields:?}");
}

#[test]
fn merge_concurrent_writes_answers_409_for_a_field_two_requests_changed() {
    let redis = RedisServer::start();
    let hosts = two_hosts(&redis, true);
    let cookie = new_session(&hosts);
    let answers = at_once(&hosts, &cookie, |i| {
        format!("/session/slow-set?field=shared&value=v{i}&ms={WAIT_MS}")
    });
    let saved: BTreeSet<&str> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body.as_str())
        .collect();
    let refused = answers.iter().filter(|(status, _)| *status == 409).count();
    assert_eq!(
        saved.len() + refused,
        CONCURRENT,
        "each answer is 200 (saved) or 409 (conflict): {answers:?}"
    );
    assert!(refused >= 1, "no conflict reported: {answers:?}");
    let shared = fields(&hosts, &cookie)["shared"].clone();
    let shared = shared.as_str().expect("a string");
    assert!(
        saved.contains(shared),
        "the stored value {shared:?} is one a request was told was saved ({saved:?}), not one refused"
    );
}

#[test]
fn merge_concurrent_writes_lets_a_handler_retry_a_conflict_so_no_increment_is_lost() {
    let redis = RedisServer::start();
    let hosts = two_hosts(&redis, true);
    let cookie = new_session(&hosts);
    let answers = at_once(&hosts, &cookie, |_| "/session/slow-bump?ms=50".to_owned());
    let mut counts: Vec<u64> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body.parse().expect("a count")
        })
        .collect();
    counts.sort_unstable();
    let expected: Vec<u64> = (1..=CONCURRENT as u64).collect();
    assert_eq!(counts, expected, "each request saved its own increment");
    assert_eq!(
        fields(&hosts, &cookie)["visits"],
        Value::from(CONCURRENT),
        "no increment lost"
    );
}

/// Sends `slow` on the first host and, while it waits, `/logout` on the
/// second; returns the slow request's status and what the session holds
/// afterwards.
fn racing_a_logout(slow: &str) -> (u16, serde_json::Map<String, Value>) {
    let redis = RedisServer::start();
    let hosts = two_hosts(&redis, true);
    let cookie = new_session(&hosts);
    let (status, body) = thread::scope(|scope| {
        let slow = scope.spawn(|| get_text(&http(), &hosts[0].url(slow), Some(&cookie)));
        thread::sleep(std::time::Duration::from_millis(WAIT_MS / 3));
        let (status, body) = get_text(&http(), &hosts[1].url("/logout"), Some(&cookie));
        assert_eq!((status, body.as_str()), (200, "bye"));
        slow.join().expect("the slow request")
    });
    assert!(status == 200 || status == 409, "{status} {body}");
    (status, fields(&hosts, &cookie))
}

#[test]
fn merge_concurrent_writes_does_not_bring_back_a_session_logged_out_meanwhile() {
    // A request that changed nothing answers as usual and leaves it removed.
    let (status, after) = racing_a_logout(&format!("/session/slow-read?ms={WAIT_MS}"));
    assert_eq!(status, 200);
    assert!(after.is_empty(), "the session came back: {after:?}");
    // One that changed a field cannot save it: a conflict, still removed.
    let (status, after) = racing_a_logout(&set_field(0));
    assert_eq!(status, 409);
    assert!(after.is_empty(), "the session came back: {after:?}");
}
