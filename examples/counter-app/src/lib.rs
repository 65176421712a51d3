//! An example app built on the store's atomic operations, which stay correct
//! however many tasks and hosts (on one Redis) serve it at once:
//!
//! - `GET /` counts visits with `increment`: one counter for everybody and one
//!   per session (it expires with the session).
//! - `GET /limited` is rate limited per session with `increment` on a counter
//!   per time window: `RATE_LIMIT` requests (default 5) per `RATE_WINDOW_MS`
//!   (default 10000), then 429 with `Retry-After`.
//! - `POST /claim/:name` reserves a name for this session with
//!   `set_if_absent`: 201 for the first session to ask, 409 for all others.
//! - `GET /motd` and `PUT /motd` keep a message of the day, changed with
//!   `compare_and_swap`: a `PUT` names the message it replaces
//!   (`{"expected": ..., "text": ...}`), so of two editors racing, one wins
//!   and the other gets 409 and the current message.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use wasmhost_sdk::store::{self, StoreError};
use wasmhost_sdk::{App, Request, Response, SessionOptions, task_id};

/// Sessions last 15 minutes, as in the seed app; per-session counters too.
const SESSION_MAX_AGE: Duration = Duration::from_secs(15 * 60);

fn app() -> App {
    let secret = std::env::var("SESSION_SECRET").unwrap_or_else(|_| "TEST_SECRET".to_owned());
    App::new()
        .sessions(
            SessionOptions::new(secret)
                .resave(false)
                .save_uninitialized(false)
                .max_age(SESSION_MAX_AGE),
        )
        .get("/", visits)
        .get("/limited", limited)
        .post("/claim/:name", claim)
        .get("/motd", read_motd)
        .put("/motd", write_motd)
}

fn visits(req: &mut Request) -> Response {
    let session = match session_id(req) {
        Ok(id) => id,
        Err(answer) => return answer,
    };
    let mine_key = format!("visits:{session}");
    let counted = store::increment("visits:total", 1).and_then(|total| {
        // A new per-session counter starts at 0 with a TTL, in one step, so
        // it expires with its session (an existing one is left alone).
        store::set_if_absent(&mine_key, "0", Some(SESSION_MAX_AGE))?;
        let mine = store::increment(&mine_key, 1)?;
        Ok((total, mine))
    });
    match counted {
        Ok((total, mine)) => {
            Response::json(&json!({ "total": total, "mine": mine, "task": task_id() }))
        }
        Err(error) => store_failure(&error),
    }
}

fn limited(req: &mut Request) -> Response {
    let limit = env_number("RATE_LIMIT", 5);
    let window_ms = env_number("RATE_WINDOW_MS", 10_000).max(1);
    let session = match session_id(req) {
        Ok(id) => id,
        Err(answer) => return answer,
    };
    let now_ms = req
        .received()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    let window = now_ms / window_ms;
    let key = format!("rate:{session}:{window}");
    // The first request of a window creates its counter with a TTL, so old
    // windows clean themselves up.
    let used = store::set_if_absent(&key, "0", Some(Duration::from_millis(window_ms)))
        .and_then(|_| store::increment(&key, 1));
    match used {
        Ok(used) if used <= i64::try_from(limit).unwrap_or(i64::MAX) => {
            Response::json(&json!({ "allowed": true, "used": used, "limit": limit }))
        }
        Ok(used) => {
            let retry_after_s = ((window + 1) * window_ms - now_ms).div_ceil(1000);
            Response::json(&json!({ "allowed": false, "used": used, "limit": limit }))
                .with_status(429)
                .with_header("retry-after", retry_after_s.to_string())
        }
        Err(error) => store_failure(&error),
    }
}

fn claim(req: &mut Request) -> Response {
    let name = req.param("name").unwrap_or_default().to_owned();
    let session = match session_id(req) {
        Ok(id) => id,
        Err(answer) => return answer,
    };
    let key = format!("claim:{name}");
    match store::set_if_absent(&key, &session, None) {
        Ok(true) => Response::json(&json!({ "name": name, "claimed": true })).with_status(201),
        Ok(false) => match store::get(&key) {
            Ok(owner) if owner.as_deref() == Some(session.as_str()) => {
                Response::json(&json!({ "name": name, "claimed": true }))
            }
            Ok(_) => Response::json(&json!({ "name": name, "claimed": false })).with_status(409),
            Err(error) => store_failure(&error),
        },
        Err(error) => store_failure(&error),
    }
}

const MOTD_KEY: &str = "motd";

fn read_motd(_: &mut Request) -> Response {
    match store::get(MOTD_KEY) {
        Ok(text) => Response::json(&json!({ "text": text })),
        Err(error) => store_failure(&error),
    }
}

/// `PUT /motd` body: the message being replaced (null: none yet) and the new one.
#[derive(Deserialize)]
struct MotdChange {
    expected: Option<String>,
    text: String,
}

fn write_motd(req: &mut Request) -> Response {
    let Ok(change) = req.json::<MotdChange>() else {
        return Response::text("expected {\"expected\": string or null, \"text\": string}")
            .with_status(400);
    };
    let swapped = store::compare_and_swap(
        MOTD_KEY,
        change.expected.as_deref(),
        Some(&change.text),
        None,
    );
    match swapped {
        Ok(true) => Response::json(&json!({ "text": change.text })),
        // Someone else changed it first: say what it is now, to retry from.
        Ok(false) => match store::get(MOTD_KEY) {
            Ok(text) => Response::json(&json!({ "text": text })).with_status(409),
            Err(error) => store_failure(&error),
        },
        Err(error) => store_failure(&error),
    }
}

/// This request's session id, saving a new session so its cookie is sent.
fn session_id(req: &mut Request) -> Result<String, Response> {
    let session = req.session();
    // Changes the session only on a first visit (setting an equal value is
    // no change), which is when its cookie must be sent.
    session.set("seen", true);
    session.id().map(str::to_owned).map_err(|error| {
        eprintln!("counter-app: {error}");
        Response::text("internal server error").with_status(500)
    })
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// 503 while the store is unreachable (try again), 500 for anything else.
fn store_failure(error: &StoreError) -> Response {
    eprintln!("counter-app: {error}");
    match error {
        StoreError::Unavailable(_) | StoreError::Full => {
            Response::text("store unavailable").with_status(503)
        }
        _ => Response::text("internal server error").with_status(500),
    }
}

wasmhost_sdk::export_app!(app);
