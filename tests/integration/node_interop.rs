//! A real Node app and wasmhost apps on one Redis, with one secret: the seed
//! app in express with express-session and connect-redis from npm
//! (`tests/node-interop`, with its lockfile), beside the seed app and
//! test-app on the real binary. A session either side sets is read and
//! changed by the other, a destroy on either is seen by both, each stores the
//! same JSON with the same TTL and sends the same cookie, and fields only
//! Node writes survive a wasmhost save byte for byte.
//!
//! Node and npm are required, not optional: `.ci/run` installs them, and a
//! machine without them fails these tests with a message that says what is
//! missing rather than skipping them.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::SET_COOKIE;
use serde_json::Value;
use wasmhost_tests::node::{missing, npm_ci};
use wasmhost_tests::{
    Host, Listening, RedisServer, die_with_test, express_signature, get_text, http, session_cookie,
    session_id, workspace,
};

/// The one secret both sides sign with.
const SECRET: &str = "one secret for express and wasmhost: n0de+wasm/2026";

const NOT_SET: &str = "Not set. Go to '/set' to set value.";

/// Both apps' cookie `maxAge`.
const MAX_AGE_MS: i64 = 900_000;

/// How long the Node app may take to print its `listening on` line.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(30);

/// The packages `tests/node-interop/package.json` depends on.
const PACKAGES: [&str; 4] = ["express", "express-session", "connect-redis", "redis"];

/// The Node package that holds the app.
fn node_dir() -> PathBuf {
    workspace().join("tests/node-interop")
}

/// The express app (`tests/node-interop/app.js`) running on `node`, killed
/// when dropped.
struct NodeApp(Listening);

impl NodeApp {
    /// Starts the app on a free port against `redis`, and waits until it is
    /// listening.
    fn start(redis: &RedisServer) -> NodeApp {
        npm_ci(&node_dir(), &PACKAGES);
        let mut command = Command::new("node");
        command
            .current_dir(node_dir())
            .arg("app.js")
            .env("SESSION_SECRET", SECRET)
            .env("REDIS_URL", redis.url())
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_test(&mut command);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{}", missing("node", "the express app", &e)));
        match Listening::wait(child, NODE_START_TIMEOUT) {
            Ok(app) => NodeApp(app),
            Err(output) => panic!(
                "the express app (node tests/node-interop/app.js) did not start within \
                 {NODE_START_TIMEOUT:?} {output}"
            ),
        }
    }

    /// The URL of `path` on the app.
    fn url(&self, path: &str) -> String {
        self.0.url(path)
    }

    /// Everything the app has written so far.
    fn log(&self) -> String {
        self.0.log()
    }
}

/// A wasmhost host running guest `app` on `redis`, with the shared secret.
fn host_on(redis: &RedisServer, app: &str) -> Host {
    let secret = format!("SESSION_SECRET={SECRET}");
    Host::on_redis(app, redis, &["--tasks", "2", "--env", &secret])
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// `GET url` with `cookie`: the status, the `connect.sid=...` pair of its
/// Set-Cookie if it sent one, and the body (read whole: express-session
/// holds back the last byte until its store write is done).
fn get(
    client: &reqwest::blocking::Client,
    url: &str,
    cookie: Option<&str>,
) -> (u16, Option<String>, String) {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().expect("the app answers");
    let status = response.status().as_u16();
    let set = response
        .headers()
        .contains_key(SET_COOKIE)
        .then(|| session_cookie(&response));
    (status, set, response.text().expect("the body is text"))
}

/// The stored session `id`, as the apps wrote it.
fn stored(connection: &mut redis::Connection, id: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(format!("sess:{id}"))
        .query(connection)
        .expect("GET works")
}

/// The stored session `id`'s TTL in milliseconds (-2: no such key).
fn pttl(connection: &mut redis::Connection, id: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(format!("sess:{id}"))
        .query(connection)
        .expect("PTTL works")
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_millis()).expect("ms fit i64")
}

/// The JSON text of the value of `"name":` in the compact JSON `json`, as it
/// stands there: an object or array to its closing bracket, a string or
/// other scalar to the next `,` or `}` outside strings.
fn field_text<'a>(json: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + key.len();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (at, byte) in json.bytes().enumerate().skip(start) {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' | b',' if depth == 0 => return &json[start..at],
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return &json[start..=at];
                }
            }
            _ => {}
        }
    }
    panic!("the value of {key} does not end in {json}")
}

/// Milliseconds since 1970 of a time as JavaScript's `Date#toJSON` writes
/// it (`2026-11-25T09:13:31.953Z`); fails the test on any other form.
fn iso_millis(iso: &str) -> i64 {
    let form = "dddd-dd-ddTdd:dd:dd.dddZ";
    assert!(
        iso.len() == form.len()
            && iso.bytes().zip(form.bytes()).all(|(c, f)| match f {
                b'd' => c.is_ascii_digit(),
                _ => c == f,
            }),
        "expires is not in Date#toJSON's form: {iso:?}"
    );
    let n = |from: usize, to: usize| -> i64 { iso[from..to].parse().expect("digits") };
    let (year, month, day) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
    // days_from_civil).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    (((days * 24 + n(11, 13)) * 60 + n(14, 16)) * 60 + n(17, 19)) * 1000 + n(20, 23)
}

#[test]
fn a_session_set_by_node_or_wasmhost_is_read_by_the_other() {
    let redis = RedisServer::start();
    let node = NodeApp::start(&redis);
    let wasm = host_on(&redis, "guest-app");
    let client = http();

    // Node sets, wasmhost reads with Node's cookie.
    let (status, cookie, body) = get(&client, &node.url("/set"), None);
    assert_eq!(status, 200, "{body}\nnode log:\n{}", node.log());
    assert_eq!(json(&body)["app"], "node", "{body}");
    let node_cookie = cookie.expect("express-session sets a cookie on /set");
    for _ in 0..4 {
        let (status, body) = get_text(&client, &wasm.url("/"), Some(&node_cookie));
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            json(&body)["foo"],
            "bar",
            "wasmhost reads the session Node set: {body}\nhost log:\n{}",
            wasm.log()
        );
    }
    // wasmhost's resave wrote it back; Node still reads it.
    let (_, body) = get_text(&client, &node.url("/"), Some(&node_cookie));
    assert_eq!(
        json(&body),
        serde_json::json!({ "foo": "bar", "app": "node" })
    );

    // wasmhost sets, Node reads with wasmhost's cookie.
    let set = client.get(wasm.url("/set")).send().unwrap();
    assert_eq!(set.status(), 200);
    let wasm_cookie = session_cookie(&set);
    assert_ne!(wasm_cookie, node_cookie);
    for _ in 0..4 {
        let (status, body) = get_text(&client, &node.url("/"), Some(&wasm_cookie));
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            json(&body),
            serde_json::json!({ "foo": "bar", "app": "node" }),
            "Node reads the session wasmhost set\nnode log:\n{}",
            node.log()
        );
    }
    let (_, body) = get_text(&client, &wasm.url("/"), Some(&wasm_cookie));
    assert_eq!(json(&body)["foo"], "bar", "{body}");

    // Without a cookie neither has a value.
    let (_, body) = get_text(&client, &node.url("/"), None);
    assert_eq!(json(&body)["foo"], NOT_SET);
    let (_, body) = get_text(&client, &wasm.url("/"), None);
    assert_eq!(json(&body)["foo"], NOT_SET);
}

#[test]
fn visits_counted_by_node_and_wasmhost_in_turn_go_one_two_three_four() {
    let redis = RedisServer::start();
    let node = NodeApp::start(&redis);
    let wasm = host_on(&redis, "test-app");
    let client = http();
    let mut redis_client = redis.client();

    // Started by each side in turn.
    for (first, second) in [
        (node.url("/visits"), wasm.url("/visits")),
        (wasm.url("/visits"), node.url("/visits")),
    ] {
        let (status, cookie, body) = get(&client, &first, None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(json(&body)["visits"], 1, "{first}: {body}");
        let cookie = cookie.expect("the first visit sets the session cookie");
        for visit in 2..=4 {
            let url = if visit % 2 == 0 { &second } else { &first };
            let (status, set, body) = get(&client, url, Some(&cookie));
            assert_eq!(status, 200, "{url}: {body}");
            assert_eq!(
                json(&body)["visits"],
                visit,
                "{url} counts on from the other app's count: {body}\nnode log:\n{}",
                node.log()
            );
            // A changed session with an expiry sends its cookie again, the same one.
            assert_eq!(set.as_deref(), Some(cookie.as_str()), "{url}");
        }
        let id = session_id(&cookie);
        let raw = stored(&mut redis_client, &id).expect("the session is stored");
        assert_eq!(field_text(&raw, "visits"), "4", "{raw}");
    }
}

#[test]
fn a_destroy_on_node_or_wasmhost_is_seen_by_the_other() {
    let redis = RedisServer::start();
    let node = NodeApp::start(&redis);
    let wasm = host_on(&redis, "test-app");
    let seed = host_on(&redis, "guest-app");
    let client = http();
    let mut redis_client = redis.client();

    // Node destroys a session both counted in.
    let (_, cookie, _) = get(&client, &node.url("/visits"), None);
    let cookie = cookie.expect("a session cookie");
    let (_, _, body) = get(&client, &wasm.url("/visits"), Some(&cookie));
    assert_eq!(json(&body)["visits"], 2, "{body}");
    let (_, _, body) = get(&client, &seed.url("/set"), Some(&cookie));
    assert_eq!(json(&body)["message"], "foo value set to 'bar' in session.");
    let id = session_id(&cookie);
    assert!(stored(&mut redis_client, &id).is_some());
    let (status, set, body) = get(&client, &node.url("/logout"), Some(&cookie));
    assert_eq!((status, body.as_str(), set), (200, "bye", None));
    assert_eq!(
        stored(&mut redis_client, &id),
        None,
        "Node deleted sess:{id}"
    );
    let (_, body) = get_text(&client, &seed.url("/"), Some(&cookie));
    assert_eq!(json(&body)["foo"], NOT_SET, "wasmhost sees it gone: {body}");
    let (_, set, body) = get(&client, &wasm.url("/visits"), Some(&cookie));
    assert_eq!(json(&body)["visits"], 1, "visits start again: {body}");
    let fresh = set.expect("a new session gets a cookie");
    assert_ne!(
        session_id(&fresh),
        id,
        "a new session, not the destroyed one"
    );

    // wasmhost destroys a session both counted in.
    let (_, cookie, _) = get(&client, &wasm.url("/visits"), None);
    let cookie = cookie.expect("a session cookie");
    let (_, _, body) = get(&client, &node.url("/visits"), Some(&cookie));
    assert_eq!(json(&body)["visits"], 2, "{body}");
    let (status, _, _) = get(&client, &node.url("/set"), Some(&cookie));
    assert_eq!(status, 200);
    let id = session_id(&cookie);
    assert!(stored(&mut redis_client, &id).is_some());
    let (status, set, body) = get(&client, &wasm.url("/logout"), Some(&cookie));
    assert_eq!((status, body.as_str(), set), (200, "bye", None));
    assert_eq!(
        stored(&mut redis_client, &id),
        None,
        "wasmhost deleted sess:{id}"
    );
    let (_, set, body) = get(&client, &node.url("/"), Some(&cookie));
    assert_eq!(
        (json(&body)["foo"].clone(), set),
        (Value::from(NOT_SET), None),
        "Node sees it gone: {body}"
    );
    let (_, set, body) = get(&client, &node.url("/visits"), Some(&cookie));
    assert_eq!(json(&body)["visits"], 1, "visits start again: {body}");
    let fresh = set.expect("a new session gets a cookie");
    assert_ne!(
        session_id(&fresh),
        id,
        "a new session, not the destroyed one"
    );
}

#[test]
fn node_and_wasmhost_store_the_same_json_and_ttl_and_send_the_same_cookie() {
    let redis = RedisServer::start();
    let node = NodeApp::start(&redis);
    let wasm = host_on(&redis, "guest-app");
    let client = http();
    let mut redis_client = redis.client();

    // The session as express-session and connect-redis store it, the TTL
    // ending with the cookie's expiry; the cookie's `expires` in ms.
    let mut check_stored = |who: &str, id: &str, written: std::ops::RangeInclusive<i64>| -> i64 {
        let raw =
            stored(&mut redis_client, id).unwrap_or_else(|| panic!("{who}: no sess:{id} in Redis"));
        let at = now_ms();
        let ttl = pttl(&mut redis_client, id);
        let expires = json(&raw)["cookie"]["expires"]
            .as_str()
            .unwrap_or_else(|| panic!("{who}: no cookie.expires string in {raw}"))
            .to_owned();
        assert_eq!(
            raw,
            format!(
                r#"{{"cookie":{{"originalMaxAge":{MAX_AGE_MS},"expires":"{expires}","httpOnly":true,"path":"/"}},"foo":"bar"}}"#
            ),
            "{who}: the stored session's layout"
        );
        let expires_ms = iso_millis(&expires);
        assert!(
            (written.start() + MAX_AGE_MS - 1_000..=written.end() + MAX_AGE_MS + 1_000)
                .contains(&expires_ms),
            "{who}: expires {expires} is not maxAge after the request"
        );
        assert!(
            (890_001..=900_000).contains(&ttl),
            "{who}: PTTL {ttl} ms, not just under 900000"
        );
        // connect-redis rounds the TTL up to a second; wasmhost keeps the ms.
        assert!(
            (expires_ms - at - 1_000..=expires_ms - at + 1_000).contains(&ttl),
            "{who}: PTTL {ttl} ms does not end with the cookie's expiry {expires} (now {at} ms)"
        );
        expires_ms
    };

    let mut sessions = Vec::new();
    for (who, url) in [("node", node.url("/set")), ("wasmhost", wasm.url("/set"))] {
        let before = now_ms();
        let response = client.get(&url).send().unwrap();
        let after = now_ms();
        assert_eq!(response.status(), 200, "{who}");
        let headers: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|value| value.to_str().expect("the cookie is text").to_owned())
            .collect();
        assert_eq!(headers.len(), 1, "{who}: one Set-Cookie: {headers:?}");
        let cookie = session_cookie(&response);
        // express-session writes the session before the body's last byte.
        let body = response.text().expect("the body is text");
        assert!(body.contains("foo value set to 'bar'"), "{who}: {body}");
        let id = session_id(&cookie);
        assert_eq!(id.len(), 32, "{who}: 24 random bytes in base64url: {id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{who}: {id}"
        );
        // s:<id>.<HMAC-SHA256 in base64, no `=`>, URL-encoded as
        // encodeURIComponent does.
        let signature = express_signature(SECRET, &id)
            .replace('+', "%2B")
            .replace('/', "%2F");
        assert_eq!(
            cookie,
            format!("connect.sid=s%3A{id}.{signature}"),
            "{who}: the cookie is signed with the shared secret"
        );
        let expires_ms = check_stored(who, id.as_str(), before..=after);
        let expires = UNIX_EPOCH
            + Duration::from_secs(u64::try_from(expires_ms.div_euclid(1000)).expect("after 1970"));
        assert_eq!(
            headers[0],
            format!(
                "{cookie}; Path=/; Expires={}; HttpOnly",
                httpdate::fmt_http_date(expires)
            ),
            "{who}: the Set-Cookie header, its Expires the stored expires"
        );
        sessions.push((who, cookie, id));
    }

    // Each rewrites the other's session (resave) in the same layout, with
    // the same TTL, and sends no cookie for a session it did not change.
    for ((who, cookie, id), reader) in sessions.iter().zip([wasm.url("/"), node.url("/")]) {
        let before = now_ms();
        let (status, set, body) = get(&client, &reader, Some(cookie.as_str()));
        let after = now_ms();
        assert_eq!(
            (status, json(&body)["foo"].clone()),
            (200, Value::from("bar")),
            "{reader}: {body}"
        );
        assert_eq!(
            set, None,
            "{reader}: no Set-Cookie for an unchanged session"
        );
        check_stored(
            &format!("{who}'s session saved by {reader}"),
            id.as_str(),
            before..=after,
        );
    }
}

#[test]
fn fields_node_wrote_survive_a_wasmhost_save_byte_for_byte() {
    let redis = RedisServer::start();
    let node = NodeApp::start(&redis);
    let seed = host_on(&redis, "guest-app");
    let wasm = host_on(&redis, "test-app");
    let client = http();
    let mut redis_client = redis.client();

    // Node stores `nodeOnly` and answers JSON.stringify's text of it.
    let (status, cookie, node_only) = get(&client, &node.url("/node-fields"), None);
    assert_eq!(status, 200, "{node_only}\nnode log:\n{}", node.log());
    let cookie = cookie.expect("a session cookie");
    let id = session_id(&cookie);
    let before = stored(&mut redis_client, &id).expect("Node stored the session");
    assert_eq!(
        field_text(&before, "nodeOnly"),
        node_only,
        "Node stores JSON.stringify's text"
    );
    // What a writer that parses and prints the value again would change.
    for kept in [
        r#"{"zeta":"#,
        r#""exponent":1e+21,"#,
        r#""big":12345678901234567000,"#,
        r#""tiny":5e-7,"#,
        r#"control \u0001 slash / </script>""#,
        "\"é✓ 😀 \u{2028}\"",
    ] {
        assert!(node_only.contains(kept), "{kept} in {node_only}");
    }

    // A wasmhost save (resave, and a field of its own): nodeOnly as it was.
    let (status, set, body) = get(&client, &seed.url("/set"), Some(&cookie));
    assert_eq!(status, 200, "{body}");
    assert_eq!(set.as_deref(), Some(cookie.as_str()));
    let after_seed = stored(&mut redis_client, &id).expect("the session is stored");
    assert_eq!(
        field_text(&after_seed, "nodeOnly"),
        node_only,
        "nodeOnly changed in a wasmhost save:\nbefore: {before}\nafter:  {after_seed}"
    );
    assert_eq!(
        after_seed,
        format!(
            r#"{{"cookie":{},"nodeOnly":{node_only},"foo":"bar"}}"#,
            field_text(&after_seed, "cookie")
        ),
        "express-session's layout: cookie, Node's field, then the new one"
    );

    // Another wasmhost app changes the session again.
    let (_, _, body) = get(&client, &wasm.url("/visits"), Some(&cookie));
    assert_eq!(json(&body)["visits"], 1, "{body}");
    let after_visits = stored(&mut redis_client, &id).expect("the session is stored");
    assert_eq!(
        after_visits,
        format!(
            r#"{{"cookie":{},"nodeOnly":{node_only},"foo":"bar","visits":1}}"#,
            field_text(&after_visits, "cookie")
        ),
        "nodeOnly changed in a wasmhost save:\nbefore: {after_seed}\nafter:  {after_visits}"
    );

    // Node reads its field, and wasmhost's, back.
    let (status, _, body) = get(&client, &node.url("/dump"), Some(&cookie));
    assert_eq!(status, 200, "{body}");
    let dump = json(&body);
    assert_eq!(dump["nodeOnly"], json(&node_only), "{body}");
    assert_eq!(
        (dump["foo"].clone(), dump["visits"].clone()),
        (Value::from("bar"), Value::from(1))
    );
    let after_node = stored(&mut redis_client, &id).expect("the session is stored");
    assert_eq!(
        field_text(&after_node, "nodeOnly"),
        node_only,
        "{after_node}"
    );
}
