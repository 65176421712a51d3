//! Sessions as express-session has them (`docs/architecture.md`, "The session format").
//!
//! A signed `connect.sid` cookie carries the session id; the session itself
//! lives in the shared store under `sess:<id>` as the JSON express-session
//! writes (its fields plus a `cookie` object), with a TTL that follows the
//! cookie's expiry. Whether a request saves, touches or sets the cookie follows
//! express-session's rules for `resave`, `saveUninitialized` and `rolling`, so
//! a Node app using the same store and secret shares sessions with this one.
//!
//! A missing, unsigned, tampered or unknown cookie gives a fresh empty session,
//! never an error page. Only an unreachable store is an error (503).

pub(crate) mod cookie;
mod signature;

use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

pub use cookie::{SameSite, SessionCookie};
pub(crate) use signature::{sign, unsign};

use crate::store::{self, StoreError};
use crate::{Request, Response};

/// How long a session without a cookie expiry stays in the store, as
/// connect-redis does it: one day.
const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Bytes of randomness in a session id (32 characters of base64url).
const ID_BYTES: usize = 24;

/// The options of `session({...})` in express-session.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    secrets: Vec<String>,
    name: String,
    prefix: String,
    cookie: SessionCookie,
    resave: bool,
    save_uninitialized: bool,
    rolling: bool,
    trust_proxy: bool,
}

impl SessionOptions {
    /// Sessions signed with `secret`, with express-session's defaults: cookie
    /// `connect.sid`, `Path=/`, `HttpOnly`, no max age (a browser-session
    /// cookie), `resave` and `saveUninitialized` on, `rolling` off.
    pub fn new(secret: impl Into<String>) -> Self {
        SessionOptions {
            secrets: vec![secret.into()],
            name: "connect.sid".to_owned(),
            prefix: "sess:".to_owned(),
            cookie: SessionCookie {
                original_max_age: None,
                partitioned: None,
                priority: None,
                expires: None,
                secure: None,
                http_only: true,
                domain: None,
                path: "/".to_owned(),
                same_site: None,
            },
            resave: true,
            save_uninitialized: true,
            rolling: false,
            trust_proxy: false,
        }
    }

    /// Also accepts cookies signed with `secret` (an older one, during
    /// rotation); new cookies are always signed with the first secret.
    pub fn also_accept(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// The cookie's name (default `connect.sid`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The store key prefix (default `sess:`, as connect-redis uses).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// `cookie.maxAge`: how long a session lives after its last save or touch.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.cookie.original_max_age = Some(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// `cookie.path` (default `/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.cookie.path = path.into();
        self
    }

    /// `cookie.domain` (default none: the host that set it).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie.domain = Some(domain.into());
        self
    }

    /// `cookie.httpOnly` (default true).
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.cookie.http_only = http_only;
        self
    }

    /// `cookie.secure`: the cookie is only sent over HTTPS. wasmhost serves
    /// plain HTTP, so this needs a TLS proxy in front and [`Self::trust_proxy`].
    pub fn secure(mut self, secure: bool) -> Self {
        self.cookie.secure = Some(secure);
        self
    }

    /// `cookie.sameSite`.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.cookie.same_site = Some(same_site);
        self
    }

    /// `resave`: save the session on every request, even if unchanged.
    pub fn resave(mut self, resave: bool) -> Self {
        self.resave = resave;
        self
    }

    /// `saveUninitialized`: save (and set the cookie of) a new session even if
    /// the request did not change it.
    pub fn save_uninitialized(mut self, save: bool) -> Self {
        self.save_uninitialized = save;
        self
    }

    /// `rolling`: send the cookie, with a fresh expiry, on every response.
    pub fn rolling(mut self, rolling: bool) -> Self {
        self.rolling = rolling;
        self
    }

    /// `proxy`: trust `X-Forwarded-Proto` to tell whether the client used
    /// HTTPS (needed for secure cookies behind a TLS proxy).
    pub fn trust_proxy(mut self, trust: bool) -> Self {
        self.trust_proxy = trust;
        self
    }

    fn key(&self, id: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + id.len());
        key.push_str(&self.prefix);
        key.push_str(id);
        key
    }
}

/// Why a session operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The store failed.
    Store(StoreError),
    /// `reload` found no stored session (it expired or was destroyed).
    NotFound,
    /// The session is detached: the app has no sessions enabled.
    Detached,
    /// The OS random number generator failed.
    Random(String),
    /// A field holds JSON that is not the type asked for.
    Decode {
        /// The field's name.
        field: String,
        /// What serde said.
        reason: String,
    },
    /// A value could not be serialized to JSON (a map with non-string keys, say).
    Encode {
        /// The field's name.
        field: String,
        /// What serde said.
        reason: String,
    },
    /// The field name is express-session's own (`cookie`).
    Reserved(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Store(error) => write!(f, "session store: {error}"),
            SessionError::NotFound => f.write_str("session not found in the store"),
            SessionError::Detached => f.write_str("sessions are not enabled on this app"),
            SessionError::Random(why) => write!(f, "cannot generate a session id: {why}"),
            SessionError::Decode { field, reason } => {
                write!(
                    f,
                    "session field {field:?} is not of the type asked for: {reason}"
                )
            }
            SessionError::Encode { field, reason } => {
                write!(f, "cannot store session field {field:?} as JSON: {reason}")
            }
            SessionError::Reserved(field) => {
                write!(f, "session field {field:?} is express-session's own")
            }
        }
    }
}

impl std::error::Error for SessionError {}

impl From<StoreError> for SessionError {
    fn from(error: StoreError) -> Self {
        SessionError::Store(error)
    }
}

/// One request's session: `req.session` in express-session.
#[derive(Debug)]
pub struct Session {
    id: String,
    data: Fields,
    cookie: SessionCookie,
    options: Option<Rc<SessionOptions>>,
    /// Whether this is the stored session the request's cookie named.
    loaded: bool,
    /// Whether the id changed since the request started (a new session got
    /// its first id, or the session was regenerated). Flags rather than a
    /// copy of the first id: comparing ids cost a byte-by-byte `memcmp` per
    /// question in a guest.
    id_changed: bool,
    /// Whether the fields changed since the session was loaded or made
    /// (express-session compares hashes; a flag set on real changes is the
    /// same answer without copying the fields).
    changed: bool,
    /// Whether the store is known to hold exactly these fields: none if
    /// unknown (express's `savedHash` unset), else whether it still does.
    saved: Option<bool>,
    destroyed: bool,
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
    fn fresh(
        mut cookie: SessionCookie,
        options: Option<Rc<SessionOptions>>,
        now: SystemTime,
    ) -> Self {
        cookie.reset_max_age(now);
        Session {
            loaded: false,
            id_changed: false,
            id: String::new(),
            data: Fields::default(),
            cookie,
            options,
            changed: false,
            saved: None,
            destroyed: false,
        }
    }

    /// The session id (what the cookie carries, signed); a new session gets
    /// its id here if it has none yet.
    pub fn id(&mut self) -> Result<&str, SessionError> {
        if self.id.is_empty() {
            self.id = new_id()?;
            self.id_changed = true;
        }
        Ok(&self.id)
    }

    /// The value of field `key` decoded as a `T`; none if there is no such
    /// field, an error if it holds something that is not a `T`.
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

    /// The JSON value of field `key`.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.get(key).ok().flatten()
    }

    /// Sets field `key` to `value` serialized as JSON (any `Serialize`: a
    /// number, a string, a `#[derive(Serialize)]` struct). The name `cookie`
    /// is express-session's own: use [`Session::cookie_mut`].
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), SessionError> {
        if key == "cookie" {
            return Err(SessionError::Reserved(key.to_owned()));
        }
        let raw = serde_json::value::to_raw_value(value).map_err(|e| SessionError::Encode {
            field: key.to_owned(),
            reason: e.to_string(),
        })?;
        if self.data.insert(key, raw) {
            self.mark_changed();
        }
        Ok(())
    }

    /// Sets field `key` to a JSON value. Like [`Session::insert`], for a
    /// value that is already a `serde_json::Value` (which always serializes).
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        let _ = self.insert(key, &value.into());
    }

    /// Removes field `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let removed = self.data.remove(key)?;
        self.mark_changed();
        serde_json::from_str(removed.get()).ok()
    }

    fn mark_changed(&mut self) {
        self.changed = true;
        if self.saved.is_some() {
            self.saved = Some(false);
        }
    }

    /// The session's cookie settings and expiry.
    pub fn cookie(&self) -> &SessionCookie {
        &self.cookie
    }

    /// Changes this session's cookie, e.g. `original_max_age` for a
    /// "remember me" login.
    pub fn cookie_mut(&mut self) -> &mut SessionCookie {
        &mut self.cookie
    }

    /// Restarts the cookie's max age (done for you on every request).
    pub fn touch(&mut self) {
        self.cookie.reset_max_age(SystemTime::now());
    }

    /// Replaces this session with a new, empty one under a new id, removing
    /// the old one from the store (do this on login).
    pub fn regenerate(&mut self) -> Result<(), SessionError> {
        let options = self.options.clone().ok_or(SessionError::Detached)?;
        // The id changes even if the old session cannot be removed, so a
        // login never keeps an id an attacker may have planted.
        let removed = match self.id.is_empty() {
            true => Ok(()),
            false => store::remove(&options.key(&self.id)),
        };
        self.id = new_id()?;
        self.id_changed = true;
        self.data.clear();
        self.cookie = options.cookie.clone();
        self.touch();
        self.destroyed = false;
        Ok(removed?)
    }

    /// Removes the session from the store; nothing is saved or sent for it
    /// at the end of this request (do this on logout).
    pub fn destroy(&mut self) -> Result<(), SessionError> {
        let options = self.options.clone().ok_or(SessionError::Detached)?;
        if !self.id.is_empty() {
            store::remove(&options.key(&self.id))?;
        }
        self.destroyed = true;
        Ok(())
    }

    /// Saves the session to the store now (it is also saved for you at the
    /// end of the request when needed).
    pub fn save(&mut self) -> Result<(), SessionError> {
        let options = self.options.clone().ok_or(SessionError::Detached)?;
        self.id()?;
        self.write(&options, SystemTime::now())?;
        self.saved = Some(true);
        Ok(())
    }

    /// Reloads the session's fields from the store.
    pub fn reload(&mut self) -> Result<(), SessionError> {
        let options = self.options.clone().ok_or(SessionError::Detached)?;
        if self.id.is_empty() {
            return Err(SessionError::NotFound);
        }
        let stored = read(&options, &self.id)?.ok_or(SessionError::NotFound)?;
        if stored.data != self.data {
            self.data = stored.data;
            self.mark_changed();
        }
        self.cookie = stored.cookie;
        Ok(())
    }

    /// Whether this request changed the session (its id or its fields).
    fn is_modified(&self) -> bool {
        self.id_changed || self.changed
    }

    /// Whether the store already holds exactly this session.
    fn is_saved(&self) -> bool {
        !self.id_changed && self.saved == Some(true)
    }

    /// The session as express-session stores it: `cookie` first, then fields.
    fn to_json(&self) -> String {
        let mut json = Vec::with_capacity(256);
        json.extend_from_slice(b"{\"cookie\":");
        // Writing JSON into a Vec fails only for maps with non-string keys,
        // which these are not.
        let _ = serde_json::to_writer(&mut json, &self.cookie);
        for (key, value) in self.data.iter() {
            json.push(b',');
            let _ = serde_json::to_writer(&mut json, key);
            json.push(b':');
            json.extend_from_slice(value.get().as_bytes());
        }
        json.push(b'}');
        String::from_utf8(json).unwrap_or_default()
    }

    /// The store TTL for this session: until the cookie expires (zero if it
    /// has), or connect-redis's default of a day for a browser-session cookie.
    fn ttl(&self, now: SystemTime) -> Duration {
        self.cookie.remaining(now).unwrap_or(DEFAULT_TTL)
    }

    /// Writes the session to the store with a TTL that ends with the cookie.
    fn write(&self, options: &SessionOptions, now: SystemTime) -> Result<(), StoreError> {
        let key = options.key(&self.id);
        match self.ttl(now) {
            Duration::ZERO => store::remove(&key),
            ttl => store::set(&key, &self.to_json(), Some(ttl)),
        }
    }

    /// Renews the stored session's TTL without rewriting it, as
    /// connect-redis's `touch` does (so a concurrent change is not undone).
    fn renew(&self, options: &SessionOptions, now: SystemTime) -> Result<(), StoreError> {
        let key = options.key(&self.id);
        match self.ttl(now) {
            Duration::ZERO => store::remove(&key),
            ttl => store::touch(&key, Some(ttl)).map(|_| ()),
        }
    }
}

/// A session's fields, in the order they were stored or first set (as a
/// JavaScript object keeps them), each as its JSON text.
///
/// Kept as text, not as parsed values: a request reads a field or two and
/// writes the session back (with `resave`), so parsing every field into a
/// tree and printing it again was most of a session's cost in a guest.
/// Sessions hold few fields, so a list beats a map.
#[derive(Debug, Default)]
struct Fields(Vec<(String, Box<RawValue>)>);

impl Fields {
    fn get(&self, key: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| &**value)
    }

    /// Sets `key` to `value`; whether that changed anything.
    fn insert(&mut self, key: &str, value: Box<RawValue>) -> bool {
        match self.0.iter_mut().find(|(name, _)| name == key) {
            Some((_, old)) if old.get() == value.get() => false,
            Some((_, old)) => {
                *old = value;
                true
            }
            None => {
                self.0.push((key.to_owned(), value));
                true
            }
        }
    }

    fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        let at = self.0.iter().position(|(name, _)| name == key)?;
        Some(self.0.remove(at).1)
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.0.iter().map(|(name, value)| (name.as_str(), &**value))
    }
}

impl PartialEq for Fields {
    /// The same fields in the same order with the same JSON text: what
    /// express-session's hash of the session compares.
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((a, x), (b, y))| a == b && x.get() == y.get())
    }
}

/// A session as read back from the store.
struct Stored {
    data: Fields,
    cookie: SessionCookie,
}

/// Reads session `id`: its fields and cookie, or none if it is missing or
/// unreadable.
///
/// Expiry is the store's TTL, not the stored `expires`: a Node app that only
/// touches a session renews the TTL and leaves `expires` behind.
fn read(options: &SessionOptions, id: &str) -> Result<Option<Stored>, StoreError> {
    let Some(text) = store::get(&options.key(id))? else {
        return Ok(None);
    };
    Ok(serde_json::from_str::<Stored>(&text).ok())
}

impl<'de> serde::Deserialize<'de> for Stored {
    /// One pass over the stored JSON: `cookie` straight into its struct,
    /// every other field into the session's fields.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Stored;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a stored session object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Stored, A::Error> {
                let mut data = Fields::default();
                let mut cookie = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "cookie" {
                        cookie = Some(map.next_value::<SessionCookie>()?);
                    } else {
                        let value = map.next_value::<Box<RawValue>>()?;
                        // A repeated name keeps its last value, as JSON.parse does.
                        match data.0.iter_mut().find(|(name, _)| *name == key) {
                            Some((_, old)) => *old = value,
                            None => data.0.push((key, value)),
                        }
                    }
                }
                let cookie = cookie.ok_or_else(|| serde::de::Error::missing_field("cookie"))?;
                Ok(Stored { data, cookie })
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

/// For the fuzz targets (`crate::__fuzz`): `json` read as [`read`] reads a
/// stored session, as its fields (name, JSON text) in order, its cookie, and
/// the session written back as [`Session::to_json`] writes it.
pub(crate) fn stored_round_trip(json: &str) -> Option<crate::__fuzz::StoredRoundTrip> {
    let Stored { data, cookie } = serde_json::from_str(json).ok()?;
    let fields = data
        .iter()
        .map(|(name, value)| (name.to_owned(), value.get().to_owned()))
        .collect();
    let session = Session {
        id: String::new(),
        loaded: true,
        id_changed: false,
        data,
        cookie: cookie.clone(),
        options: None,
        changed: false,
        saved: None,
        destroyed: false,
    };
    Some((fields, cookie, session.to_json()))
}

/// 24 random bytes from the OS, base64url without padding (as `uid-safe`).
fn new_id() -> Result<String, SessionError> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| SessionError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The session middleware of an [`crate::App`]: loads a session before the
/// handler and commits it after.
pub(crate) struct SessionLayer {
    options: Rc<SessionOptions>,
    /// A secret is empty: every request with a session answers 500.
    empty_secret: bool,
}

/// What the middleware remembers about a request between load and commit.
pub(crate) struct Ticket {
    /// The time the request started, read once (reading it is a host call).
    now: SystemTime,
    /// Whether the client reached us over HTTPS (for secure cookies).
    secure_request: bool,
}

impl SessionLayer {
    pub(crate) fn new(options: SessionOptions) -> Self {
        SessionLayer {
            empty_secret: options.secrets.iter().any(String::is_empty),
            options: Rc::new(options),
        }
    }

    /// Whether requests for `path` get a session: like express-session, only
    /// those under the cookie's path (the browser sends the cookie to no others).
    pub(crate) fn applies_to(&self, path: &str) -> bool {
        path.starts_with(&self.options.cookie.path)
    }

    /// The request's session: the stored one its cookie names, or a new one.
    pub(crate) fn load(&self, request: &Request) -> Result<(Session, Ticket), Response> {
        let options = &self.options;
        if self.empty_secret {
            // Anyone could forge a cookie signed with an empty secret.
            eprintln!(
                "wasmhost-sdk: refusing to serve sessions: a session secret (SessionOptions::new or also_accept) is empty"
            );
            return Err(crate::into_response::internal_error());
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
            Some(id) => read(options, id).map_err(|e| store_failure(&e))?,
            None => None,
        };
        let now = request.received();
        let session = match (stored, cookie_id) {
            (Some(Stored { data, cookie }), Some(id)) => Session {
                id,
                loaded: true,
                id_changed: false,
                changed: false,
                saved: (!options.resave).then_some(true),
                data,
                cookie,
                options: Some(Rc::clone(options)),
                destroyed: false,
            },
            _ => Session::fresh(options.cookie.clone(), Some(Rc::clone(options)), now),
        };
        Ok((
            session,
            Ticket {
                now,
                secure_request,
            },
        ))
    }

    /// Saves or touches the session as express-session would, and sets the
    /// cookie on `response` when it should be sent.
    pub(crate) fn commit(
        &self,
        mut session: Session,
        ticket: Ticket,
        mut response: Response,
    ) -> Response {
        let Ticket {
            now,
            secure_request,
        } = ticket;
        if session.destroyed {
            return response;
        }
        let options = &self.options;
        session.cookie.reset_max_age(now);
        // The stored session the cookie named, under the same id.
        let known = session.loaded && !session.id_changed;
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
        if (should_save || should_set_cookie)
            && let Err(error) = session.id()
        {
            eprintln!("wasmhost-sdk: {error}");
            return crate::into_response::internal_error();
        }
        // A known session that need not be saved is touched: its TTL renewed.
        let stored = if should_save {
            session.write(options, now)
        } else if known {
            session.renew(options, now)
        } else {
            Ok(())
        };
        match stored {
            Ok(()) => {}
            Err(StoreError::Full) if !known && !modified => {
                // A new session nothing was put in: the visitor loses
                // nothing by going without one, and is not refused.
                let count = UNSAVED_NEW_SESSIONS.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!(
                    "wasmhost-sdk: session store full: answered without a new session ({count} so far on this instance)"
                );
                return response;
            }
            Err(error) => return store_failure(&error),
        }

        let secure_only = session.cookie.secure == Some(true);
        if should_set_cookie && (!secure_only || secure_request) {
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
    eprintln!("wasmhost-sdk: session store: {error}");
    match error {
        StoreError::Unavailable(_) | StoreError::Full => {
            Response::text("session store unavailable")
                .with_status(crate::StatusCode::SERVICE_UNAVAILABLE)
        }
        _ => crate::into_response::internal_error(),
    }
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

    fn stored(json: &str) -> Session {
        let Stored { data, cookie } = serde_json::from_str(json).expect("a stored session");
        Session {
            id: "id".to_owned(),
            loaded: true,
            id_changed: false,
            data,
            cookie,
            options: None,
            changed: false,
            saved: None,
            destroyed: false,
        }
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
    fn removing_returns_the_value_and_marks_a_change() {
        let mut session = stored(NODE_SESSION);
        assert_eq!(session.remove("missing"), None);
        assert!(!session.is_modified());
        assert_eq!(session.remove("n"), Some(Value::from(7)));
        assert!(session.is_modified());
        assert!(!session.to_json().contains(r#""n""#));
    }
}
