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
use wasmhost_sdk::store;
use wasmhost_sdk::{
    App, Json, Request, Response, SessionError, SessionOptions, StatusCode, task_id,
};

/// Sessions last 15 minutes, as in the seed app; per-session counters too.
const SESSION_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// What every handler returns: a store or session failure answers 503
/// (store unreachable or full) or 500, as the SDK maps it, so `?` is enough.
type Answer = Result<Response, SessionError>;

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

fn visits(req: &mut Request) -> Answer {
    let session = session_id(req)?;
    let mine_key = format!("visits:{session}");
    let total = store::increment("visits:total", 1)?;
    // A new per-session counter starts at 0 with a TTL, in one step, so it
    // expires with its session (an existing one is left alone).
    store::set_if_absent(&mine_key, "0", Some(SESSION_MAX_AGE))?;
    let mine = store::increment(&mine_key, 1)?;
    Ok(Response::json(
        &json!({ "total": total, "mine": mine, "task": task_id() }),
    ))
}

fn limited(req: &mut Request) -> Answer {
    let limit = env_number("RATE_LIMIT", 5);
    let window_ms = env_number("RATE_WINDOW_MS", 10_000).max(1);
    let session = session_id(req)?;
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
    store::set_if_absent(&key, "0", Some(Duration::from_millis(window_ms)))?;
    let used = store::increment(&key, 1)?;
    if used <= i64::try_from(limit).unwrap_or(i64::MAX) {
        return Ok(Response::json(
            &json!({ "allowed": true, "used": used, "limit": limit }),
        ));
    }
    let retry_after_s = ((window + 1) * window_ms - now_ms).div_ceil(1000);
    Ok(
        Response::json(&json!({ "allowed": false, "used": used, "limit": limit }))
            .with_status(StatusCode::TOO_MANY_REQUESTS)
            .with_header("retry-after", retry_after_s.to_string()),
    )
}

fn claim(req: &mut Request) -> Answer {
    let name = req.param("name").unwrap_or_default().to_owned();
    let session = session_id(req)?;
    let key = format!("claim:{name}");
    if store::set_if_absent(&key, &session, None)? {
        return Ok(Response::json(&json!({ "name": name, "claimed": true }))
            .with_status(StatusCode::CREATED));
    }
    let mine = store::get(&key)?.as_deref() == Some(session.as_str());
    let status = if mine {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok(Response::json(&json!({ "name": name, "claimed": mine })).with_status(status))
}

const MOTD_KEY: &str = "motd";

fn read_motd(_: &mut Request) -> Result<Json<serde_json::Value>, store::StoreError> {
    Ok(Json(json!({ "text": store::get(MOTD_KEY)? })))
}

/// `PUT /motd` body: the message being replaced (null: none yet) and the new one.
#[derive(Deserialize)]
struct MotdChange {
    expected: Option<String>,
    text: String,
}

fn write_motd(req: &mut Request) -> Answer {
    let Ok(change) = req.json::<MotdChange>() else {
        return Ok(
            Response::text("expected {\"expected\": string or null, \"text\": string}")
                .with_status(StatusCode::BAD_REQUEST),
        );
    };
    let swapped = store::compare_and_swap(
        MOTD_KEY,
        change.expected.as_deref(),
        Some(&change.text),
        None,
    )?;
    if swapped {
        return Ok(Response::json(&json!({ "text": change.text })));
    }
    // Someone else changed it first: say what it is now, to retry from.
    let text = store::get(MOTD_KEY)?;
    Ok(Response::json(&json!({ "text": text })).with_status(StatusCode::CONFLICT))
}

/// This request's session id, saving a new session so its cookie is sent.
fn session_id(req: &mut Request) -> Result<String, SessionError> {
    let session = req.session();
    // Changes the session only on a first visit (setting an equal value is
    // no change), which is when its cookie must be sent.
    session.insert("seen", &true)?;
    Ok(session.id()?.to_owned())
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

wasmhost_sdk::export_app!(app);
