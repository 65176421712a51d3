//! The seed app: express-session's shared-session demo on the wasmhost SDK.
//!
//! `GET /set` stores `foo = "bar"` in the session; `GET /` reads it back and
//! says which task answered. Run with several tasks and the value set through
//! one task is read through every other, because all tasks share one store.

use std::time::Duration;

use serde::Serialize;
use wasmhost_sdk::{App, Json, Request, Response, SessionError, SessionOptions, task_id};

const NOT_SET: &str = "Not set. Go to '/set' to set value.";

#[derive(Serialize)]
struct Index<'a> {
    foo: &'a str,
    thread: u32,
}

#[derive(Serialize)]
struct Set {
    thread: u32,
    message: &'static str,
}

fn app() -> App {
    let secret = std::env::var("SESSION_SECRET").unwrap_or_else(|_| {
        // Anyone can read this secret here, and so forge a session cookie.
        eprintln!(
            "warning: SESSION_SECRET is not set; signing sessions with the public demo secret (run with --env SESSION_SECRET=... or --env-file)"
        );
        "TEST_SECRET".to_owned()
    });
    App::new()
        .sessions(
            SessionOptions::new(secret)
                .resave(true)
                .save_uninitialized(false)
                .max_age(Duration::from_millis(900_000)),
        )
        .get("/", index)
        .get("/set", set)
}

fn index(req: &mut Request) -> Result<Response, SessionError> {
    let value = req.session().get::<String>("foo")?;
    Ok(Response::json(&Index {
        foo: value.as_deref().unwrap_or(NOT_SET),
        thread: task_id(),
    }))
}

fn set(req: &mut Request) -> Result<Json<Set>, SessionError> {
    req.session().insert("foo", "bar")?;
    Ok(Json(Set {
        thread: task_id(),
        message: "foo value set to 'bar' in session.",
    }))
}

wasmhost_sdk::export_app!(app);
