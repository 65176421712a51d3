//! [`Session`]: one request's session (`req.session`), what a handler reads
//! and changes, and how it is written back: saved whole, saved by merging
//! with [`SessionOptions::merge_concurrent_writes`], or only touched.
//!
//! Above [`super::options`], [`super::error`] and [`super::stored`] (it reads
//! and writes the stored form through the latter), below [`super::layer`],
//! which makes a session for each request and commits it: the fields the
//! layer decides with are `pub(super)`, and no session code calls the layer.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::cookie::SessionCookie;
use super::error::SessionError;
use super::options::{SessionOptions, new_id};
use super::stored::{self, Fields, ReadError, Stored, is_reserved, merge_fields, read};
use crate::RequestHead;
use crate::store::{self, StoreError};

/// How long a session without a cookie expiry stays in the store, as
/// connect-redis does it: one day.
const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a merging save re-reads the session and tries again before it
/// reports a conflict: each retry means another request saved in between.
const MERGE_ATTEMPTS: usize = 16;

/// One request's session: `req.session` in express-session.
///
/// Get it in a handler with [`crate::Request::session`]. Its fields are JSON
/// values under string names, stored together as express-session stores
/// them: read them with [`Session::get`], change them with
/// [`Session::insert`] and [`Session::remove`]. At the end of the request
/// the session is saved (or its TTL renewed) and its cookie sent as the
/// [`SessionOptions`] say; [`Session::regenerate`] (on login) and
/// [`Session::destroy`] (on logout) act on the store right away.
///
/// ```no_run
/// use wasmhost_sdk::{Request, SessionError};
///
/// #[derive(serde::Serialize, serde::Deserialize, Default)]
/// struct Cart {
///     items: Vec<String>,
/// }
///
/// fn add_to_cart(req: &mut Request) -> Result<String, SessionError> {
///     let item = req.param("item").unwrap_or_default().to_owned();
///     let session = req.session();
///     let mut cart = session.get::<Cart>("cart")?.unwrap_or_default();
///     cart.items.push(item);
///     session.insert("cart", &cart)?;
///     Ok(format!("{} items", cart.items.len()))
/// }
/// # let _ = add_to_cart;
/// ```
#[derive(Debug)]
pub struct Session {
    pub(super) id: String,
    data: Fields,
    pub(super) cookie: SessionCookie,
    options: Option<Rc<SessionOptions>>,
    /// Where the session and its id come from: new, the stored one the
    /// request's cookie named, or regenerated in this request.
    pub(super) origin: Origin,
    /// Whether the fields changed since the session was loaded or made
    /// (express-session compares hashes; a flag set on real changes is the
    /// same answer without copying the fields).
    changed: bool,
    /// Whether the store is known to hold exactly these fields: none if
    /// unknown (express's `savedHash` unset), else whether it still does.
    pub(super) saved: Option<bool>,
    /// Whether the handler ended the session in this request, and how.
    pub(super) lifecycle: Lifecycle,
    /// The cookie's expiry when the request started: a handler that sets
    /// another ([`Session::cookie_mut`]) sets the max age from it, as
    /// express-session's `cookie.expires` setter does.
    pub(super) expires_at_start: Option<SystemTime>,
    /// Whether this request came over HTTPS (for the `auto` cookie settings
    /// of a regenerated session, and whether a secure cookie may be sent).
    pub(super) secure_request: bool,
    /// With [`SessionOptions::merge_concurrent_writes`]: the stored JSON this
    /// request last read or wrote (none: nothing stored), which a save
    /// swaps out, and the fields changed since, which a conflicting save
    /// replays onto what another request stored.
    merge: Option<Box<MergeBase>>,
    /// The request's head, kept only when [`SessionOptions::genid`] or
    /// [`SessionOptions::cookie_with`] may need it for a new id or cookie.
    pub(super) request: Option<Rc<RequestHead>>,
}

/// Where a session and its id come from.
///
/// A state rather than a copy of the first id: comparing ids cost a
/// byte-by-byte `memcmp` per question in a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// A new session, with its first id (its original id, as
    /// express-session's `originalId`, even when drawn later).
    New,
    /// The stored session the request's cookie named, under that id.
    Stored,
    /// [`Session::regenerate`]d in this request: a new id, whatever came
    /// before.
    Regenerated,
}

impl Origin {
    /// Whether the id changed since the request started.
    fn id_changed(self) -> bool {
        self == Origin::Regenerated
    }
}

/// Whether a handler ended the session in this request, and how. The two
/// ends exclude each other: once destroyed a session stays destroyed when
/// it is also unset, and [`Session::regenerate`] makes it live again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lifecycle {
    /// Saved, touched and sent at the end of the request as the options say.
    Live,
    /// [`Session::destroy`]ed: removed from the store, nothing saved or sent.
    Destroyed,
    /// [`Session::unset`]: nothing is saved, touched or sent; the stored
    /// session is kept or removed as [`SessionOptions::unset`] says.
    Unset,
}

/// What a merging save compares against and replays.
#[derive(Debug, Default)]
struct MergeBase {
    stored: Option<String>,
    changed_fields: Vec<String>,
}

impl Session {
    /// A session that is never stored, for apps without sessions.
    pub(crate) fn detached() -> Self {
        let options = SessionOptions::new("");
        Session::fresh(options.cookie, None, SystemTime::now())
    }

    /// A new, empty session. Its id is drawn only when it is first needed
    /// (saved, sent or asked for), so a request that leaves a new session
    /// untouched costs no random numbers.
    pub(super) fn fresh(
        mut cookie: SessionCookie,
        options: Option<Rc<SessionOptions>>,
        now: SystemTime,
    ) -> Self {
        cookie.reset_max_age(now);
        let merge = options
            .as_ref()
            .is_some_and(|options| options.merge_writes)
            .then(Box::default);
        Session {
            merge,
            request: None,
            expires_at_start: cookie.expires,
            origin: Origin::New,
            id: String::new(),
            data: Fields::default(),
            cookie,
            options,
            changed: false,
            saved: None,
            lifecycle: Lifecycle::Live,
            secure_request: false,
        }
    }

    /// The stored session `id` as read back (`text` its stored JSON), for
    /// requests under `options` (none: a session never stored again).
    pub(super) fn loaded(
        id: String,
        Stored { data, cookie }: Stored,
        text: String,
        options: Option<Rc<SessionOptions>>,
    ) -> Self {
        let options_say =
            |wanted: fn(&SessionOptions) -> bool| options.as_deref().is_some_and(wanted);
        Session {
            request: None,
            merge: options_say(|options| options.merge_writes).then(|| {
                Box::new(MergeBase {
                    stored: Some(text),
                    changed_fields: Vec::new(),
                })
            }),
            id,
            origin: Origin::Stored,
            changed: false,
            // Without resave an unchanged session counts as saved already.
            saved: options_say(|options| !options.resave).then_some(true),
            data,
            expires_at_start: cookie.expires,
            cookie,
            options,
            lifecycle: Lifecycle::Live,
            secure_request: false,
        }
    }

    /// The session id (what the cookie carries, signed); a new session gets
    /// its id here if it has none yet (24 random bytes in base64url, as
    /// express-session's). As in express-session, a new session's first id
    /// is its original id: asking for it changes nothing, so with
    /// [`SessionOptions::save_uninitialized`]`(false)` a handler that only
    /// reads it stores nothing and sends no cookie.
    ///
    /// ```no_run
    /// use wasmhost_sdk::{Request, SessionError};
    ///
    /// fn whoami(req: &mut Request) -> Result<String, SessionError> {
    ///     let id = req.session().id()?.to_owned();
    ///     Ok(format!("session {id}"))
    /// }
    /// # let _ = whoami;
    /// ```
    pub fn id(&mut self) -> Result<&str, SessionError> {
        if self.id.is_empty() {
            self.id = new_id(self.options.as_deref(), self.request.as_deref())?;
        }
        Ok(&self.id)
    }

    /// The value of field `key` decoded as a `T`; none if there is no such
    /// field, an error ([`SessionError::Decode`]) if it holds something that
    /// is not a `T`.
    ///
    /// ```no_run
    /// use wasmhost_sdk::{Request, SessionError};
    ///
    /// fn greet(req: &mut Request) -> Result<String, SessionError> {
    ///     let name: Option<String> = req.session().get("name")?;
    ///     let visits = req.session().get::<u32>("visits")?.unwrap_or(0);
    ///     Ok(format!("hello {}, visit {visits}", name.as_deref().unwrap_or("stranger")))
    /// }
    /// # let _ = greet;
    /// ```
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        match self.data.get(key) {
            Some(raw) => {
                serde_json::from_str(raw.get())
                    .map(Some)
                    .map_err(|e| SessionError::Decode {
                        field: key.to_owned(),
                        reason: e.to_string(),
                    })
            }
            None => Ok(None),
        }
    }

    /// The JSON value of field `key`, whatever it is; none if there is no
    /// such field.
    ///
    /// ```no_run
    /// use wasmhost_sdk::{Json, Request};
    ///
    /// fn dump(req: &mut Request) -> Json<serde_json::Value> {
    ///     Json(req.session().get_value("prefs").unwrap_or(serde_json::Value::Null))
    /// }
    /// # let _ = dump;
    /// ```
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.get(key).ok().flatten()
    }

    /// Sets field `key` to `value` serialized as JSON (any `Serialize`: a
    /// number, a string, a `#[derive(Serialize)]` struct). The name `cookie`
    /// is express-session's own: use [`Session::cookie_mut`]. Setting a field
    /// to the value it already holds is no change.
    ///
    /// ```no_run
    /// use wasmhost_sdk::{Request, SessionError};
    ///
    /// #[derive(serde::Serialize)]
    /// struct Prefs {
    ///     theme: &'static str,
    ///     page_size: u32,
    /// }
    ///
    /// fn set_prefs(req: &mut Request) -> Result<&'static str, SessionError> {
    ///     let session = req.session();
    ///     session.insert("user", "ada")?;
    ///     session.insert("prefs", &Prefs { theme: "dark", page_size: 50 })?;
    ///     Ok("saved")
    /// }
    /// # let _ = set_prefs;
    /// ```
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), SessionError> {
        if is_reserved(key) {
            return Err(SessionError::Reserved(key.to_owned()));
        }
        let raw = serde_json::value::to_raw_value(value).map_err(|e| SessionError::Encode {
            field: key.to_owned(),
            reason: e.to_string(),
        })?;
        if self.data.insert(key, raw) {
            self.mark_changed(key);
        }
        Ok(())
    }

    /// Sets field `key` to a JSON value. Like [`Session::insert`], for a
    /// value that is already a `serde_json::Value` (which always serializes),
    /// or anything that converts into one; a reserved name (see
    /// [`SessionError::Reserved`]) is ignored.
    ///
    /// ```no_run
    /// use wasmhost_sdk::Request;
    ///
    /// fn remember(req: &mut Request) -> &'static str {
    ///     req.session().set("theme", "dark");
    ///     req.session().set("seen", true);
    ///     req.session().set("prefs", serde_json::json!({ "page_size": 50 }));
    ///     "ok"
    /// }
    /// # let _ = remember;
    /// ```
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        let _ = self.insert(key, &value.into());
    }

    /// The names of the session's fields, in the order they were stored or
    /// first set (`Object.keys(req.session)` without `cookie`: only the
    /// data, never the session's methods).
    ///
    /// ```no_run
    /// use wasmhost_sdk::Request;
    ///
    /// fn fields(req: &mut Request) -> String {
    ///     req.session().keys().collect::<Vec<_>>().join(",")
    /// }
    /// # let _ = fields;
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.iter().map(|(name, _)| name)
    }

    /// Removes field `key`, returning its value (none if there was no such
    /// field).
    ///
    /// ```no_run
    /// use wasmhost_sdk::Request;
    ///
    /// fn take_flash(req: &mut Request) -> String {
    ///     // A message shown once: read and removed in one go.
    ///     match req.session().remove("flash") {
    ///         Some(serde_json::Value::String(message)) => message,
    ///         _ => String::new(),
    ///     }
    /// }
    /// # let _ = take_flash;
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let removed = self.data.remove(key)?;
        self.mark_changed(key);
        serde_json::from_str(removed.get()).ok()
    }

    fn mark_changed(&mut self, field: &str) {
        self.changed = true;
        if self.saved.is_some() {
            self.saved = Some(false);
        }
        if let Some(merge) = &mut self.merge
            && !merge.changed_fields.iter().any(|name| name == field)
        {
            merge.changed_fields.push(field.to_owned());
        }
    }

    /// The session's cookie settings and expiry.
    ///
    /// ```no_run
    /// use std::time::SystemTime;
    /// use wasmhost_sdk::Request;
    ///
    /// fn time_left(req: &mut Request) -> String {
    ///     match req.session().cookie().remaining(SystemTime::now()) {
    ///         Some(left) => format!("{} s left", left.as_secs()),
    ///         None => "until the browser closes".to_owned(),
    ///     }
    /// }
    /// # let _ = time_left;
    /// ```
    pub fn cookie(&self) -> &SessionCookie {
        &self.cookie
    }

    /// Changes this session's cookie, e.g. `original_max_age` for a
    /// "remember me" login. The new max age takes effect when the session is
    /// saved at the end of the request (the expiry is computed from it then).
    /// Setting `expires` instead sets the max age from it, as
    /// express-session's `cookie.expires` does: an absolute expiry, or, with
    /// `None`, a browser-session cookie from then on.
    ///
    /// ```no_run
    /// use wasmhost_sdk::{Request, SessionError};
    ///
    /// fn login(req: &mut Request) -> Result<&'static str, SessionError> {
    ///     let remember = req.query_param("remember").is_some();
    ///     let session = req.session();
    ///     session.regenerate()?;
    ///     session.insert("user", "ada")?;
    ///     if remember {
    ///         // 30 days, in milliseconds, as express-session keeps it.
    ///         session.cookie_mut().original_max_age = Some(30 * 24 * 60 * 60 * 1000);
    ///     }
    ///     Ok("logged in")
    /// }
    /// # let _ = login;
    /// ```
    pub fn cookie_mut(&mut self) -> &mut SessionCookie {
        &mut self.cookie
    }

    /// Restarts the cookie's max age from now (done for you on every
    /// request), as express-session's `touch`.
    ///
    /// ```no_run
    /// use wasmhost_sdk::Request;
    ///
    /// fn ping(req: &mut Request) -> &'static str {
    ///     req.session().touch();
    ///     "pong"
    /// }
    /// # let _ = ping;
    /// ```
    pub fn touch(&mut self) {
        self.cookie.reset_max_age(SystemTime::now());
        self.expires_at_start = self.cookie.expires;
    }

    /// Replaces this session with a new, empty one under a new id, removing
    /// the old one from the store (do this on login, so an id an attacker
    /// planted before it is worth nothing). The new session is saved and its
    /// cookie sent at the end of the request; the fields to keep are set
    /// after this call.
    ///
    /// The id changes even if removing the old session fails; the error
    /// (a [`SessionError::Store`]) is returned after the change. Without
    /// [`crate::App::sessions`] it is [`SessionError::Detached`].
    ///
    /// ```no_run
    /// use wasmhost_sdk::{Request, SessionError};
    ///
    /// fn login(req: &mut Request) -> Result<&'static str, SessionError> {
    ///     // (check the credentials first)
    ///     let cart: Option<serde_json::Value> = req.session().get("cart")?;
    ///     req.session().regenerate()?;
    ///     req.session().insert("user", "ada")?;
    ///     if let Some(cart) = cart {
    ///         req.session().insert("cart", &cart)?; // carried over to the new session
    ///     }
    ///     Ok("logged in")
    /// }
    /// # let _ = login;
    /// ```
    pub fn regenerate(&mut self) -> Result<(), SessionError> {
        let options = self.options.clone().ok_or(SessionError::Detached)?;
        // The id changes even if the old session cannot be removed, so a
        // login never keeps an id an attacker may have planted.
        let removed = match self.id.is_empty() {
            true => Ok(()),
            false => store::remove(&options.key(&self.id)),
        };
        self.id = new_id(Some(&options), self.request.as_deref())?;
        self.origin = Origin::Regenerated;
        self.data.clear();
        if let Some(merge) = &mut self.merge {
            **merge = MergeBase::default();
        }
        self.cookie = options.new_cookie(
            self.request.as_deref(),
            self.secure_request,
            SystemTime::now(),
        );
        self.touch();
        self.lifecycle = Lifecycle::Live;
        Ok(removed?)
    }

    /// Removes the session from the store; nothing is saved or sent for it
    /// at the end of this request (do this on logout). The browser keeps its
    /// now unknown cookie, which gets a fresh empty session next time.
    /// Without [`crate::App::sessions`] it is [`SessionError::Detached`].
    ///
    /// ```no_run
    /// use wasmhost_sdk::{Request, SessionError, StatusCode};
    ///
    /// fn logout(req: &mut Request) -> Result<StatusCode, SessionError> {
    ///     req.session().destroy()?;
    ///     Ok(StatusCode::NO_CONTENT)
    /// }
    /// # let _ = logout;
    /// ```
    pub fn destroy(&mut self) -> Result<(), SessionError> {
        let options = self.options.clone().ok_or(SessionError::Detached)?;
        if !self.id.is_empty() {
            store::remove(&options.key(&self.id))?;
        }
        self.lifecycle = Lifecycle::Destroyed;
        Ok(())
    }

    /// Drops the session for the rest of the request, as `req.session =
    /// null` does in express-session: nothing is saved or touched and no
    /// cookie is sent at the end of the request; the stored session is kept
    /// as it was or removed, as [`SessionOptions::unset`] says. Unlike
    /// [`Session::destroy`] it acts when the request ends, not at once.
    /// [`Session::save`] and [`Session::reload`] then fail with
    /// [`SessionError::Unset`]; [`Session::regenerate`] starts a new session,
    /// which is saved as usual.
    ///
    /// ```no_run
    /// use wasmhost_sdk::Request;
    ///
    /// fn preview(req: &mut Request) -> &'static str {
    ///     // Try a change for this answer only; the stored session keeps none of it.
    ///     req.session().set("theme", "high-contrast");
    ///     req.session().unset();
    ///     "previewed"
    /// }
    /// # let _ = preview;
    /// ```
    pub fn unset(&mut self) {
        if self.lifecycle != Lifecycle::Destroyed {
            self.lifecycle = Lifecycle::Unset;
        }
    }

    /// Saves the session to the store now (it is also saved for you at the
    /// end of the request when needed, but not again if nothing changed
    /// since). Useful before a long operation, so other tasks see the change
    /// at once. After [`Session::destroy`] it is [`SessionError::Destroyed`].
    ///
    /// ```no_run
    /// use wasmhost_sdk::{Request, SessionError};
    ///
    /// fn start_job(req: &mut Request) -> Result<&'static str, SessionError> {
    ///     req.session().insert("job", "running")?;
    ///     req.session().save()?; // visible to other tasks from now on
    ///     // ... the long work ...
    ///     Ok("started")
    /// }
    /// # let _ = start_job;
    /// ```
    pub fn save(&mut self) -> Result<(), SessionError> {
        let options = self.options.clone().ok_or(SessionError::Detached)?;
        match self.lifecycle {
            Lifecycle::Live => {}
            // Writing it back would undo the destroy.
            Lifecycle::Destroyed => return Err(SessionError::Destroyed),
            Lifecycle::Unset => return Err(SessionError::Unset),
        }
        self.id()?;
        self.write(&options, SystemTime::now())?;
        self.saved = Some(true);
        Ok(())
    }

    /// Reloads the session's fields from the store, picking up changes other
    /// tasks made since this request loaded it. [`SessionError::NotFound`] if
    /// the session is not in the store (never saved, expired or destroyed).
    ///
    /// ```no_run
    /// use wasmhost_sdk::{Request, SessionError};
    ///
    /// fn poll(req: &mut Request) -> Result<String, SessionError> {
    ///     req.session().reload()?;
    ///     let status = req.session().get::<String>("job")?;
    ///     Ok(status.unwrap_or_else(|| "no job".to_owned()))
    /// }
    /// # let _ = poll;
    /// ```
    pub fn reload(&mut self) -> Result<(), SessionError> {
        let options = self.options.clone().ok_or(SessionError::Detached)?;
        match self.lifecycle {
            Lifecycle::Live => {}
            Lifecycle::Destroyed => return Err(SessionError::Destroyed),
            Lifecycle::Unset => return Err(SessionError::Unset),
        }
        if self.id.is_empty() {
            return Err(SessionError::NotFound);
        }
        let (stored, text) = read(&options, &self.id)?.ok_or(SessionError::NotFound)?;
        if stored.data != self.data {
            self.data = stored.data;
            self.changed = true;
            if self.saved.is_some() {
                self.saved = Some(false);
            }
        }
        if let Some(merge) = &mut self.merge {
            // The reloaded session is the new base; this request's earlier
            // changes are gone with the fields they were in.
            merge.stored = Some(text);
            merge.changed_fields.clear();
        }
        self.cookie = stored.cookie;
        self.expires_at_start = self.cookie.expires;
        Ok(())
    }

    /// Whether this request changed the session (its id or its fields).
    pub(super) fn is_modified(&self) -> bool {
        self.origin.id_changed() || self.changed
    }

    /// Whether the store already holds exactly this session.
    pub(super) fn is_saved(&self) -> bool {
        !self.origin.id_changed() && self.saved == Some(true)
    }

    /// The session as express-session stores it: `cookie` first, then fields.
    fn to_json(&self) -> String {
        stored::to_json(&self.cookie, &self.data)
    }

    /// The store TTL for this session: until the cookie expires (zero if it
    /// has), or connect-redis's default of a day for a browser-session cookie.
    fn ttl(&self, now: SystemTime) -> Duration {
        self.cookie.remaining(now).unwrap_or(DEFAULT_TTL)
    }

    /// Writes the session to the store with a TTL that ends with the cookie
    /// (an expired cookie removes it).
    pub(super) fn write(
        &mut self,
        options: &SessionOptions,
        now: SystemTime,
    ) -> Result<(), SessionError> {
        let key = options.key(&self.id);
        let ttl = self.ttl(now);
        if self.merge.is_some() {
            return self.write_merging(&key, ttl);
        }
        Ok(match ttl {
            Duration::ZERO => store::remove(&key),
            ttl => store::set(&key, &self.to_json(), Some(ttl)),
        }?)
    }

    /// [`Self::write`] with [`SessionOptions::merge_concurrent_writes`]: a
    /// compare-and-swap against the stored JSON this request last saw; when
    /// another request saved in between, this request's changed fields are
    /// replayed onto what it saved and the swap tried again.
    fn write_merging(&mut self, key: &str, ttl: Duration) -> Result<(), SessionError> {
        for _ in 0..MERGE_ATTEMPTS {
            let new = (ttl != Duration::ZERO).then(|| self.to_json());
            let expected = self
                .merge
                .as_ref()
                .and_then(|merge| merge.stored.as_deref());
            if store::compare_and_swap(key, expected, new.as_deref(), Some(ttl))? {
                let merge = self.merge.get_or_insert_default();
                merge.stored = new;
                merge.changed_fields.clear();
                return Ok(());
            }
            let current = store::get(key)?;
            let nothing_to_keep = new.is_none()
                || self
                    .merge
                    .as_ref()
                    .is_none_or(|merge| merge.changed_fields.is_empty());
            if current.is_none() && nothing_to_keep {
                // Removed meanwhile (a logout, an expiry) and this request
                // changed no field, or meant to remove it too: nothing is
                // lost by leaving it removed, and writing would bring it back.
                self.merge.get_or_insert_default().stored = None;
                return Ok(());
            }
            self.rebase(current)?;
        }
        Err(SessionError::Conflict(format!(
            "other requests saved it {MERGE_ATTEMPTS} times while this one tried"
        )))
    }

    /// Makes `current` (what the store holds now) this session's base, with
    /// this request's changed fields set on it as this request has them.
    fn rebase(&mut self, current: Option<String>) -> Result<(), SessionError> {
        let merge = self.merge.get_or_insert_default();
        let Some(text) = current else {
            if merge.stored.is_some() {
                // Destroyed (a logout) or expired since this request read it:
                // saving would bring it back.
                return Err(SessionError::Conflict(
                    "the session was removed from the store meanwhile".to_owned(),
                ));
            }
            // Nothing stored then and nothing now: it came and went; retry.
            return Ok(());
        };
        let parse = |text: &str| {
            serde_json::from_str::<Stored>(text)
                .map_err(|error| SessionError::from(ReadError::Unreadable(error.to_string())))
        };
        let base = match &merge.stored {
            Some(stored) => parse(stored)?.data,
            None => Fields::default(),
        };
        let Stored { data: theirs, .. } = parse(&text)?;
        self.data = merge_fields(&base, theirs, &self.data, &merge.changed_fields)?;
        merge.stored = Some(text);
        Ok(())
    }

    /// Renews the stored session's TTL without rewriting it, as
    /// connect-redis's `touch` does (so a concurrent change is not undone).
    pub(super) fn renew(
        &self,
        options: &SessionOptions,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let key = options.key(&self.id);
        match self.ttl(now) {
            Duration::ZERO => store::remove(&key),
            ttl => store::touch(&key, Some(ttl)).map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new session of an app with sessions, with no id yet: destroying or
    /// regenerating it makes no store call.
    fn attached() -> Session {
        let options = SessionOptions::new("s");
        Session::fresh(
            options.cookie.clone(),
            Some(Rc::new(options)),
            SystemTime::now(),
        )
    }

    #[test]
    fn a_destroy_outranks_an_unset_and_a_regenerate_ends_both() {
        let mut session = attached();
        session.unset();
        assert_eq!(session.save(), Err(SessionError::Unset));
        assert_eq!(session.reload(), Err(SessionError::Unset));
        for destroy_first in [true, false] {
            let mut session = attached();
            if destroy_first {
                session.destroy().unwrap();
                session.unset();
            } else {
                session.unset();
                session.destroy().unwrap();
            }
            assert_eq!(session.save(), Err(SessionError::Destroyed));
            assert_eq!(session.reload(), Err(SessionError::Destroyed));
            session.regenerate().unwrap();
            assert_eq!(session.lifecycle, Lifecycle::Live);
            assert_eq!(session.origin, Origin::Regenerated);
            assert!(session.is_modified() && !session.is_saved());
        }
    }

    #[test]
    fn only_a_regenerated_id_counts_as_a_change() {
        let mut session = stored(NODE_SESSION);
        assert_eq!(session.origin, Origin::Stored);
        assert!(!session.is_modified());
        let mut fresh = attached();
        assert_eq!(fresh.origin, Origin::New);
        fresh.id().unwrap();
        assert!(
            !fresh.is_modified(),
            "a new session's first id is no change"
        );
        session.options = Some(Rc::new(SessionOptions::new("s")));
        session.id.clear(); // so regenerating removes nothing from the store
        session.regenerate().unwrap();
        assert!(session.is_modified() && !session.is_saved());
    }

    fn stored(json: &str) -> Session {
        let stored = serde_json::from_str(json).expect("a stored session");
        Session::loaded("id".to_owned(), stored, json.to_owned(), None)
    }

    const NODE_SESSION: &str = r#"{"cookie":{"originalMaxAge":900000,"expires":"2026-11-25T12:00:00.000Z","httpOnly":true,"path":"/"},"zeta":{"b":[1,2.5,"x"],"a":null},"foo":"bar","n":7}"#;

    #[test]
    fn fields_are_written_back_as_stored_in_their_order() {
        let session = stored(NODE_SESSION);
        let json = session.to_json();
        let rest = json
            .split_once(r#"},"zeta""#)
            .expect("fields after the cookie")
            .1;
        assert_eq!(rest, r#":{"b":[1,2.5,"x"],"a":null},"foo":"bar","n":7}"#);
        assert_eq!(
            session.get::<String>("foo").unwrap().as_deref(),
            Some("bar")
        );
        assert_eq!(session.get::<u32>("n").unwrap(), Some(7));
        assert_eq!(session.get::<u32>("missing").unwrap(), None);
        assert!(
            matches!(session.get::<u32>("foo"), Err(SessionError::Decode { .. })),
            "a field of another type is an error, not None"
        );
    }

    #[test]
    fn setting_an_equal_value_is_no_change_and_a_new_one_is() {
        let mut session = stored(NODE_SESSION);
        session.set("foo", "bar");
        session.set("cookie", 1);
        assert!(!session.is_modified());
        session.set("foo", "baz");
        assert!(session.is_modified());
        assert_eq!(
            session.get::<String>("foo").unwrap().as_deref(),
            Some("baz")
        );
        assert!(matches!(
            session.insert("cookie", &1),
            Err(SessionError::Reserved(_))
        ));
        #[derive(serde::Serialize)]
        struct Cart {
            items: u32,
        }
        let mut other = stored(NODE_SESSION);
        other.insert("cart", &Cart { items: 2 }).unwrap();
        assert_eq!(
            other.get_value("cart"),
            Some(serde_json::json!({"items": 2}))
        );
        session.set("new", serde_json::json!({"k": [true]}));
        assert!(
            session
                .to_json()
                .ends_with(r#""foo":"baz","n":7,"new":{"k":[true]}}"#)
        );
    }

    #[test]
    fn a_cookie_node_accepts_is_read_as_node_reads_it() {
        for (http_only, expected) in [
            ("null", false),
            ("0", false),
            ("1", true),
            ("\"yes\"", true),
        ] {
            let session = stored(&format!(
                r#"{{"cookie":{{"originalMaxAge":null,"httpOnly":{http_only},"path":"/"}},"a":1}}"#
            ));
            assert_eq!(
                session.cookie().http_only,
                expected,
                "httpOnly: {http_only}"
            );
        }
    }

    #[test]
    fn names_node_reserves_are_refused_and_dropped_when_read() {
        let mut session = stored(
            r#"{"cookie":{"originalMaxAge":null,"httpOnly":true,"path":"/"},"id":"x","save":1,"__proto__":{},"keep":true}"#,
        );
        assert!(
            session.to_json().ends_with(r#"},"keep":true}"#),
            "{}",
            session.to_json()
        );
        for name in [
            "id",
            "req",
            "save",
            "resetMaxAge",
            "constructor",
            "__proto__",
        ] {
            assert!(
                matches!(session.insert(name, &1), Err(SessionError::Reserved(_))),
                "{name} accepted"
            );
        }
        assert!(!session.is_modified());
    }

    #[test]
    fn removing_returns_the_value_and_marks_a_change() {
        let mut session = stored(NODE_SESSION);
        assert_eq!(session.remove("missing"), None);
        assert!(!session.is_modified());
        assert_eq!(session.remove("n"), Some(Value::from(7)));
        assert!(session.is_modified());
        assert!(!session.to_json().contains(r#""n""#));
    }
}
