//! [`SessionLayer`]: the session middleware of an [`crate::App`], around
//! each request: it loads the session the request's cookie names (or makes
//! a new one) before the handler, and after it saves or touches the session
//! and sets the cookie as express-session's `resave`, `saveUninitialized`
//! and `rolling` rules say, answering a store failure itself.
//!
//! The top of the session layer: it uses every other session module and
//! none of them uses it; [`crate::app`] alone calls it.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::cookie;
use super::error::SessionError;
use super::handle::{Lifecycle, Origin, Session};
use super::options::{SessionOptions, Unset};
use super::signature::{sign, unsign};
use super::stored::{ReadError, read};
use crate::store::{self, StoreError};
use crate::{RequestHead, Response};

/// The session middleware of an [`crate::App`]: loads a session before the
/// handler and commits it after.
pub(crate) struct SessionLayer {
    options: Rc<SessionOptions>,
    /// A secret is empty: every request with a session answers 500.
    empty_secret: bool,
    /// Whether the refusal of an empty secret was printed (once per instance).
    refusal_printed: Cell<bool>,
}

/// Why sessions with an empty secret are refused.
const EMPTY_SECRET: &str = "a session secret (SessionOptions::new or also_accept) is empty, so anyone could forge a session cookie: set a secret";

/// What the middleware remembers about a request between load and commit.
pub(crate) struct Ticket {
    /// The time the request started, read once (reading it is a host call).
    now: SystemTime,
}

impl SessionLayer {
    pub(crate) fn new(options: SessionOptions) -> Self {
        SessionLayer {
            empty_secret: options.secrets.iter().any(Vec::is_empty),
            refusal_printed: Cell::new(false),
            options: Rc::new(options),
        }
    }

    /// Why these sessions cannot be served, if they cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.empty_secret {
            Err(EMPTY_SECRET.to_owned())
        } else {
            Ok(())
        }
    }

    /// Whether `request` gets a session: like express-session, only one
    /// under the cookie's path (the browser sends the cookie to no others).
    pub(crate) fn applies_to(&self, request: &RequestHead) -> bool {
        let path = request.path();
        match &self.options.cookie_with {
            None => path.starts_with(&self.options.cookie.path),
            Some(_) => path.starts_with(&self.options.cookie_for(Some(request)).path),
        }
    }

    /// The request's session: the stored one its cookie names, or a new one.
    pub(crate) fn load(&self, request: &RequestHead) -> Result<(Session, Ticket), Response> {
        let options = &self.options;
        if let Err(why) = self.check() {
            // wasmhost never gets here (it refuses such an app at start);
            // `App::handle` in a unit test does.
            if !self.refusal_printed.replace(true) {
                eprintln!("wasmhost-sdk: refusing to serve sessions: {why}");
            }
            return Err(Response::internal_error());
        }
        let cookie_id =
            cookie::find(request.header_values("cookie"), &options.name).and_then(|value| {
                let signed = value.strip_prefix("s:")?;
                unsign(signed, &options.secrets).map(str::to_owned)
            });
        let secure_request = options.trust_proxy
            && request
                .header("x-forwarded-proto")
                .and_then(|proto| proto.split(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));

        let stored = match &cookie_id {
            Some(id) => read(options, id).map_err(|error| match error {
                ReadError::Store(error) => store_failure(&error),
                ReadError::Unreadable(reason) => {
                    eprintln!("wasmhost-sdk: the stored session cannot be read: {reason}");
                    Response::internal_error()
                }
            })?,
            None => None,
        };
        let now = request.received();
        let mut session = match (stored, cookie_id) {
            (Some((stored, text)), Some(id)) => {
                Session::loaded(id, stored, text, Some(Rc::clone(options)))
            }
            _ => Session::fresh(
                options.new_cookie(Some(request), secure_request, now),
                Some(Rc::clone(options)),
                now,
            ),
        };
        session.secure_request = secure_request;
        if options.needs_request() {
            session.request = Some(Rc::new(request.clone()));
        }
        Ok((session, Ticket { now }))
    }

    /// Saves or touches the session as express-session would, and sets the
    /// cookie on `response` when it should be sent.
    pub(crate) fn commit(
        &self,
        mut session: Session,
        ticket: Ticket,
        mut response: Response,
    ) -> Response {
        let Ticket { now } = ticket;
        let options = &self.options;
        match session.lifecycle {
            Lifecycle::Live => {}
            Lifecycle::Destroyed => return response,
            Lifecycle::Unset => {
                // A session that never got an id was never stored.
                if options.unset == Unset::Destroy
                    && !session.id.is_empty()
                    && let Err(error) = store::remove(&options.key(&session.id))
                {
                    return store_failure(&error);
                }
                return response;
            }
        }
        if session.cookie.expires != session.expires_at_start {
            // The handler set the expiry: it sets the max age (none: a
            // browser-session cookie), as express-session's setter does.
            session.cookie.original_max_age = session.cookie.expires.map(|expires| {
                let ms = expires.duration_since(now).unwrap_or_default().as_millis();
                u64::try_from(ms).unwrap_or(u64::MAX)
            });
        }
        session.cookie.reset_max_age(now);
        // The stored session the cookie named, under the same id.
        let known = session.origin == Origin::Stored;
        let modified = session.is_modified();

        let should_save = if !options.save_uninitialized && session.saved.is_none() && !known {
            modified
        } else {
            !session.is_saved()
        };
        let should_set_cookie = if known {
            options.rolling || (session.cookie.expires.is_some() && modified)
        } else {
            options.save_uninitialized || modified
        };
        if should_set_cookie && let Some(why) = session.cookie.invalid(&options.name) {
            // As express-session's cookie serializer, refuse rather than send
            // a header whose attributes a value could forge.
            eprintln!("wasmhost-sdk: not sending the session cookie: {why}");
            return Response::internal_error();
        }
        if (should_save || should_set_cookie)
            && let Err(error) = session.id()
        {
            eprintln!("wasmhost-sdk: {error}");
            return Response::internal_error();
        }
        // A known session that need not be saved is touched: its TTL
        // renewed. As in express-session, a failed touch does not change the
        // answer: the session and its data are where they were, only their
        // expiry was not pushed back.
        let stored = if should_save {
            session.write(options, now)
        } else {
            if known && let Err(error) = session.renew(options, now) {
                eprintln!("wasmhost-sdk: session store: renewing the session's expiry: {error}");
            }
            Ok(())
        };
        match stored {
            Ok(()) => {}
            Err(SessionError::Store(StoreError::Full)) if !known && !modified => {
                // A new session nothing was put in: the visitor loses
                // nothing by going without one, and is not refused.
                let count = UNSAVED_NEW_SESSIONS.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!(
                    "wasmhost-sdk: session store full: answered without a new session ({count} so far on this instance)"
                );
                return response;
            }
            Err(SessionError::Store(error)) => return store_failure(&error),
            // A conflict (409) or a session that cannot be read back (500).
            Err(error) => return crate::IntoResponse::into_response(error),
        }

        let secure_only = session.cookie.secure == Some(true);
        if should_set_cookie && (!secure_only || session.secure_request) {
            let signed = format!("s:{}", sign(&session.id, &options.secrets[0]));
            response.append_header(
                "set-cookie",
                session.cookie.set_cookie(&options.name, &signed),
            );
        }
        response
    }
}

/// New, empty sessions a full store could not take, on this instance.
static UNSAVED_NEW_SESSIONS: AtomicU64 = AtomicU64::new(0);

/// The answer when the store fails: 503 if it is unreachable (try again
/// later), 500 otherwise.
fn store_failure(error: &StoreError) -> Response {
    error.failure_response("session store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_secret_anywhere_is_caught_when_the_layer_is_made() {
        assert!(!SessionLayer::new(SessionOptions::new("s")).empty_secret);
        assert!(SessionLayer::new(SessionOptions::new("")).empty_secret);
        assert!(SessionLayer::new(SessionOptions::new("s").also_accept("")).empty_secret);
    }
}
