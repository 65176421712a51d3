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
//! never an error page. An unreachable store is an error (503), and so, with
//! [`SessionOptions::merge_concurrent_writes`], is a conflicting concurrent
//! save (409).
//!
//! Turn sessions on with [`crate::App::sessions`] and [`SessionOptions`]; in a
//! handler, [`crate::Request::session`] gives the request's [`Session`].
//!
//! ```no_run
//! use std::time::Duration;
//! use wasmhost_sdk::{App, Request, Response, SessionError, SessionOptions, StatusCode};
//!
//! fn app() -> App {
//!     let secret = std::env::var("SESSION_SECRET").expect("run with --env SESSION_SECRET=...");
//!     App::new()
//!         .sessions(
//!             SessionOptions::new(secret)
//!                 .max_age(Duration::from_secs(30 * 60))
//!                 .save_uninitialized(false),
//!         )
//!         .post("/login/:user", login)
//!         .get("/me", me)
//!         .post("/logout", logout)
//! }
//!
//! fn login(req: &mut Request) -> Result<Response, SessionError> {
//!     let user = req.param("user").unwrap_or_default().to_owned();
//!     // (check the password here)
//!     req.session().regenerate()?; // a new id on login
//!     req.session().insert("user", &user)?;
//!     Ok(Response::text(format!("welcome, {user}")))
//! }
//!
//! fn me(req: &mut Request) -> Result<Response, SessionError> {
//!     Ok(match req.session().get::<String>("user")? {
//!         Some(user) => Response::text(user),
//!         None => Response::text("not logged in").with_status(StatusCode::UNAUTHORIZED),
//!     })
//! }
//!
//! fn logout(req: &mut Request) -> Result<StatusCode, SessionError> {
//!     req.session().destroy()?;
//!     Ok(StatusCode::NO_CONTENT)
//! }
//! # let _ = app;
//! ```

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

/// The options of `session({...})` in express-session, given to
/// [`crate::App::sessions`].
///
/// Start from [`SessionOptions::new`] with the secret and change what you
/// need with the builder methods:
///
/// | method | express-session | default |
/// |---|---|---|
/// | [`new`](SessionOptions::new()) | `secret` | — |
/// | [`from_key`](SessionOptions::from_key()) | `secret` as a `Buffer` | — |
/// | [`also_accept`](SessionOptions::also_accept()), [`also_accept_key`](SessionOptions::also_accept_key()) | `secret: [new, old]` | none |
/// | [`name`](SessionOptions::name()) | `name` | `connect.sid` |
/// | [`genid`](SessionOptions::genid()) | `genid` | 24 random bytes |
/// | [`max_age`](SessionOptions::max_age()) | `cookie.maxAge` | none (browser-session cookie) |
/// | [`expires`](SessionOptions::expires()) | `cookie.expires` | none |
/// | [`path`](SessionOptions::path()) | `cookie.path` | `/` |
/// | [`domain`](SessionOptions::domain()) | `cookie.domain` | none |
/// | [`http_only`](SessionOptions::http_only()) | `cookie.httpOnly` | true |
/// | [`secure`](SessionOptions::secure()), [`secure_auto`](SessionOptions::secure_auto()) | `cookie.secure` | false |
/// | [`same_site`](SessionOptions::same_site()), [`same_site_auto`](SessionOptions::same_site_auto()) | `cookie.sameSite` | none |
/// | [`partitioned`](SessionOptions::partitioned()) | `cookie.partitioned` | none |
/// | [`priority`](SessionOptions::priority()) | `cookie.priority` | none |
/// | [`cookie_with`](SessionOptions::cookie_with()) | `cookie` as a function | none |
/// | [`resave`](SessionOptions::resave()) | `resave` | true |
/// | [`save_uninitialized`](SessionOptions::save_uninitialized()) | `saveUninitialized` | true |
/// | [`rolling`](SessionOptions::rolling()) | `rolling` | false |
/// | [`trust_proxy`](SessionOptions::trust_proxy()) | `proxy` | false |
/// | [`prefix`](SessionOptions::prefix()) | connect-redis's `prefix` | `sess:` |
/// | [`unset`](SessionOptions::unset()) | `unset` | [`Unset::Keep`] |
/// | [`merge_concurrent_writes`](SessionOptions::merge_concurrent_writes()) | (none: last write wins) | off |
///
/// ```
/// use std::time::Duration;
/// use wasmhost_sdk::{App, SameSite, SessionOptions};
///
/// let secret = std::env::var("SESSION_SECRET").unwrap_or_else(|_| "dev only".to_owned());
/// let options = SessionOptions::new(secret)
///     .also_accept("last year's secret")
///     .name("sid")
///     .max_age(Duration::from_secs(7 * 24 * 60 * 60))
///     .same_site(SameSite::Lax)
///     .resave(false)
///     .save_uninitialized(false);
/// let app = App::new().sessions(options);
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The signing secrets as bytes: the first signs, all verify.
    secrets: Vec<Vec<u8>>,
    name: String,
    prefix: String,
    cookie: SessionCookie,
    resave: bool,
    save_uninitialized: bool,
    rolling: bool,
    trust_proxy: bool,
    /// `cookie.secure: "auto"`: each new session's cookie is secure when its
    /// request came over HTTPS.
    secure_auto: bool,
    /// `cookie.sameSite: "auto"`: `None` over HTTPS, `Lax` otherwise.
    same_site_auto: bool,
    /// `genid`: makes new session ids; none: 24 random bytes.
    genid: Option<IdGenerator>,
    /// `cookie` as a function: adjusts a new session's cookie per request.
    cookie_with: Option<CookieAdjuster>,
    /// `cookie.expires`: an absolute expiry every new session's cookie
    /// starts with (its max age is the time left until then).
    expires: Option<SystemTime>,
    /// Save with compare-and-swap and merge the fields concurrent requests
    /// changed, instead of last write wins.
    merge_writes: bool,
    /// `unset`: what [`Session::unset`] does to the stored session.
    unset: Unset,
}

/// express-session's `unset` option: what happens to the stored session
/// when a handler drops it with [`Session::unset`] (`req.session = null`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unset {
    /// `"keep"`: the stored session stays as it was before the request;
    /// this request's changes are not saved.
    #[default]
    Keep,
    /// `"destroy"`: the stored session is removed when the request ends.
    Destroy,
}

/// How often a merging save re-reads the session and tries again before it
/// reports a conflict: each retry means another request saved in between.
const MERGE_ATTEMPTS: usize = 16;

/// A `genid` function.
#[derive(Clone)]
struct IdGenerator(Rc<dyn Fn(&Request) -> String>);

impl fmt::Debug for IdGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdGenerator")
    }
}

/// What [`SessionOptions::cookie_with`] is given.
type AdjustCookie = dyn Fn(&Request, &mut SessionCookie);

/// A `cookie` function.
#[derive(Clone)]
struct CookieAdjuster(Rc<AdjustCookie>);

impl fmt::Debug for CookieAdjuster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieAdjuster")
    }
}

impl SessionOptions {
    /// Sessions signed with `secret`, with express-session's defaults: cookie
    /// `connect.sid`, `Path=/`, `HttpOnly`, no max age (a browser-session
    /// cookie), `resave` and `saveUninitialized` on, `rolling` off.
    ///
    /// The secret signs the cookie (HMAC-SHA256, as cookie-signature does):
    /// keep it out of the code and out of the command line, in `--env-file`.
    /// An empty secret would let anyone forge a cookie, so every request with
    /// sessions is then answered `500`.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let secret = std::env::var("SESSION_SECRET").unwrap_or_else(|_| "dev only".to_owned());
    /// let options = SessionOptions::new(secret);
    /// # let _ = options;
    /// ```
    pub fn new(secret: impl Into<String>) -> Self {
        SessionOptions {
            secrets: vec![secret.into().into_bytes()],
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
            secure_auto: false,
            same_site_auto: false,
            genid: None,
            cookie_with: None,
            expires: None,
            merge_writes: false,
            unset: Unset::Keep,
        }
    }

    /// Also accepts cookies signed with `secret` (an older one, during
    /// rotation); new cookies are always signed with the first secret. May be
    /// called several times.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// // Sign with the new secret; sessions signed with the old one still work.
    /// let options = SessionOptions::new("secret of 2026").also_accept("secret of 2025");
    /// # let _ = options;
    /// ```
    pub fn also_accept(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into().into_bytes());
        self
    }

    /// Like [`Self::new`] with a secret of any bytes rather than text, as a
    /// `Buffer` secret in express-session (`crypto.randomBytes(32)`, say):
    /// the HMAC key is these bytes. The secret is empty-checked as in `new`.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// // 32 bytes, e.g. decoded from hex kept in the environment.
    /// let key: Vec<u8> = (0u8..32).collect();
    /// let options = SessionOptions::from_key(key);
    /// # let _ = options;
    /// ```
    pub fn from_key(key: impl Into<Vec<u8>>) -> Self {
        let mut options = SessionOptions::new("");
        options.secrets = vec![key.into()];
        options
    }

    /// [`Self::also_accept`] for a secret of any bytes (see [`Self::from_key`]).
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::from_key(vec![7u8; 32]).also_accept_key(vec![9u8; 32]);
    /// # let _ = options;
    /// ```
    pub fn also_accept_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.secrets.push(key.into());
        self
    }

    /// The cookie's name (default `connect.sid`). Apps sharing sessions with
    /// a Node app must use the same name.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::new("a secret").name("myapp.sid");
    /// # let _ = options;
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The store key prefix (default `sess:`, as connect-redis uses): a
    /// session is stored under prefix + id. The host's `--store-prefix`, if
    /// any, goes in front of it.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// // Sessions under `shop-sess:<id>` (connect-redis: `prefix: "shop-sess:"`).
    /// let options = SessionOptions::new("a secret").prefix("shop-sess:");
    /// # let _ = options;
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// `cookie.maxAge`: how long a session lives after its last save or touch.
    /// The cookie gets an `Expires` that far ahead and the stored session a
    /// TTL ending then. Without it the cookie lasts until the browser closes,
    /// and the stored session a day after its last save or touch.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::new("a secret").max_age(Duration::from_secs(15 * 60));
    /// # let _ = options;
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.cookie.original_max_age = Some(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// `cookie.path` (default `/`). As in express-session, only requests
    /// whose path starts with it get a session (the browser sends the cookie
    /// to no others).
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// // Sessions only under /app. A path with a control character, `;` or
    /// // `<` is refused when the cookie is sent (500), as by express-session.
    /// let options = SessionOptions::new("a secret").path("/app");
    /// # let _ = options;
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.cookie.path = path.into();
        self
    }

    /// `cookie.domain` (default none: the host that set it).
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// // One session for example.com and all its subdomains.
    /// let options = SessionOptions::new("a secret").domain("example.com");
    /// # let _ = options;
    /// ```
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie.domain = Some(domain.into());
        self
    }

    /// `cookie.httpOnly` (default true): the page's scripts cannot read the
    /// cookie. Leave it on unless scripts need it.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::new("a secret").http_only(true);
    /// # let _ = options;
    /// ```
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.cookie.http_only = http_only;
        self
    }

    /// `cookie.secure`: the cookie is only sent over HTTPS. wasmhost serves
    /// plain HTTP, so this needs a TLS proxy in front and [`Self::trust_proxy`]:
    /// without them the cookie is never sent.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// // Behind a TLS proxy that sets X-Forwarded-Proto.
    /// let options = SessionOptions::new("a secret").secure(true).trust_proxy(true);
    /// # let _ = options;
    /// ```
    pub fn secure(mut self, secure: bool) -> Self {
        self.cookie.secure = Some(secure);
        self
    }

    /// `cookie.secure: "auto"`: a new session's cookie gets `Secure` when its
    /// request came over HTTPS, as [`Self::trust_proxy`] lets the SDK tell
    /// (wasmhost itself serves plain HTTP, so without a trusted proxy's
    /// `X-Forwarded-Proto: https` it never does).
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::new("a secret").secure_auto().trust_proxy(true);
    /// # let _ = options;
    /// ```
    pub fn secure_auto(mut self) -> Self {
        self.secure_auto = true;
        self
    }

    /// `cookie.sameSite: "auto"`: a new session's cookie gets `SameSite=None`
    /// when its request came over HTTPS (see [`Self::secure_auto`]), `Lax`
    /// otherwise.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::new("a secret").same_site_auto().trust_proxy(true);
    /// # let _ = options;
    /// ```
    pub fn same_site_auto(mut self) -> Self {
        self.same_site_auto = true;
        self
    }

    /// `genid`: the function that makes new session ids from the request
    /// (its method, target and headers; default: 24 random bytes from the
    /// OS in base64url, as express-session's `uid-safe`). The id is sent
    /// URL-encoded in the signed cookie and stored under [`Self::prefix`] +
    /// id, so it may hold any characters; it must be unguessable, or
    /// sessions can be hijacked.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// // A tenant's sessions recognisable in the store: `sess:<tenant>-<random>`.
    /// let options = SessionOptions::new("a secret").genid(|req| {
    ///     let mut bytes = [0u8; 16];
    ///     getrandom::fill(&mut bytes).expect("the OS has random numbers");
    ///     let random: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    ///     format!("{}-{random}", req.header("x-tenant").unwrap_or("none"))
    /// });
    /// # let _ = options;
    /// ```
    pub fn genid(mut self, genid: impl Fn(&Request) -> String + 'static) -> Self {
        self.genid = Some(IdGenerator(Rc::new(genid)));
        self
    }

    /// `cookie` given as a function of the request: `adjust` changes the
    /// cookie the other options make, for each new session (and for the
    /// path check that decides whether a request gets a session at all).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// // Each tenant's session under its own path; longer sessions on the admin site.
    /// let options = SessionOptions::new("a secret").cookie_with(|req, cookie| {
    ///     if let Some(tenant) = req.path().strip_prefix("/t/").and_then(|rest| rest.split('/').next()) {
    ///         cookie.path = format!("/t/{tenant}");
    ///     }
    ///     if req.header("host") == Some("admin.example.com") {
    ///         cookie.original_max_age = Some(Duration::from_secs(8 * 3600).as_millis() as u64);
    ///     }
    /// });
    /// # let _ = options;
    /// ```
    pub fn cookie_with(mut self, adjust: impl Fn(&Request, &mut SessionCookie) + 'static) -> Self {
        self.cookie_with = Some(CookieAdjuster(Rc::new(adjust)));
        self
    }

    /// The cookie options for `request`: the configured ones, adjusted by
    /// [`Self::cookie_with`] if there is one.
    fn cookie_for(&self, request: Option<&Request>) -> SessionCookie {
        let mut cookie = self.cookie.clone();
        if let (Some(CookieAdjuster(adjust)), Some(request)) = (&self.cookie_with, request) {
            adjust(request, &mut cookie);
        }
        cookie
    }

    /// `cookie.expires`: every new session's cookie expires at `expires`
    /// (its max age is the time left until then), instead of after
    /// [`Self::max_age`].
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let end_of_event = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    /// let options = SessionOptions::new("a secret").expires(end_of_event);
    /// # let _ = options;
    /// ```
    pub fn expires(mut self, expires: SystemTime) -> Self {
        self.expires = Some(expires);
        self
    }

    /// A new session id, from [`Self::genid`] if there is one.
    fn new_id(&self, request: Option<&Request>) -> Result<String, SessionError> {
        match (&self.genid, request) {
            (Some(IdGenerator(genid)), Some(request)) => Ok(genid(request)),
            _ => new_id(),
        }
    }

    /// Whether `genid` or `cookie_with` need the request after it was
    /// loaded (to make a new id or cookie later in the request).
    fn needs_request(&self) -> bool {
        self.genid.is_some() || self.cookie_with.is_some()
    }

    /// `cookie.sameSite` (default none: the attribute is not sent).
    ///
    /// ```
    /// use wasmhost_sdk::{SameSite, SessionOptions};
    ///
    /// let options = SessionOptions::new("a secret").same_site(SameSite::Strict);
    /// # let _ = options;
    /// ```
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.cookie.same_site = Some(same_site);
        self
    }

    /// `cookie.partitioned` (default off): the `Partitioned` attribute, a
    /// cookie kept apart per top-level site (CHIPS).
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::new("a secret").secure(true).partitioned(true);
    /// # let _ = options;
    /// ```
    pub fn partitioned(mut self, partitioned: bool) -> Self {
        self.cookie.partitioned = Some(partitioned);
        self
    }

    /// `cookie.priority`: `low`, `medium` or `high` (any case), the
    /// `Priority` attribute; anything else refuses to send the cookie, as
    /// express-session's serializer does.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::new("a secret").priority("high");
    /// # let _ = options;
    /// ```
    pub fn priority(mut self, priority: impl Into<String>) -> Self {
        self.cookie.priority = Some(priority.into());
        self
    }

    /// `resave`: save the session on every request, even if unchanged
    /// (default true). With `false` an unchanged session is only touched: its
    /// TTL is renewed and the stored JSON left alone, so a change another task
    /// made meanwhile is not undone.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::new("a secret").resave(false);
    /// # let _ = options;
    /// ```
    pub fn resave(mut self, resave: bool) -> Self {
        self.resave = resave;
        self
    }

    /// `saveUninitialized`: save (and set the cookie of) a new session even if
    /// the request did not change it (default true). With `false` visitors
    /// get no cookie and no stored session until a handler puts something in
    /// their session, which keeps the store small.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::new("a secret").save_uninitialized(false);
    /// # let _ = options;
    /// ```
    pub fn save_uninitialized(mut self, save: bool) -> Self {
        self.save_uninitialized = save;
        self
    }

    /// `rolling`: send the cookie, with a fresh expiry, on every response
    /// (default false), so a session with a [`Self::max_age`] expires that long
    /// after the visitor's last request rather than after the last change.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// // Log out after 20 idle minutes.
    /// let options = SessionOptions::new("a secret")
    ///     .max_age(Duration::from_secs(20 * 60))
    ///     .rolling(true);
    /// # let _ = options;
    /// ```
    pub fn rolling(mut self, rolling: bool) -> Self {
        self.rolling = rolling;
        self
    }

    /// `proxy`: trust `X-Forwarded-Proto` to tell whether the client used
    /// HTTPS (needed for secure cookies behind a TLS proxy). Turn it on only
    /// behind a proxy that sets the header, since clients can send it too.
    ///
    /// ```
    /// use wasmhost_sdk::SessionOptions;
    ///
    /// let options = SessionOptions::new("a secret").secure(true).trust_proxy(true);
    /// # let _ = options;
    /// ```
    pub fn trust_proxy(mut self, trust: bool) -> Self {
        self.trust_proxy = trust;
        self
    }

    /// No lost concurrent writes (default off, as express-session, where the
    /// last save wins). Two requests of one session that run at once (two
    /// tabs, a page and its XHRs, on any tasks or hosts) each load the
    /// session and save it whole at the end, so the later save undoes the
    /// earlier one's changes. With this on, a save is a compare-and-swap
    /// against the session the request loaded; if another request saved in
    /// between, the SDK re-reads the session and replays this request's
    /// changes (the fields it set or removed) onto it. A field both requests
    /// changed cannot be merged: [`Session::save`] returns
    /// [`SessionError::Conflict`] (reload and redo the change, as below), and
    /// the save at the end of a request answers `409 Conflict` instead of the
    /// handler's response. A session removed meanwhile (a logout) is not
    /// brought back: a request that changed fields of it gets a conflict, one
    /// that changed none leaves it removed.
    ///
    /// Only fields are merged: the `cookie` object saved (its expiry, a
    /// "remember me" max age) is the last saving request's, as before. Each
    /// retry costs two store round trips (a read and another swap); with
    /// [`Self::resave`]`(true)` every request saves, so any two overlapping
    /// requests of a session retry, and `resave(false)` keeps retries to
    /// requests that change something. Node apps sharing the sessions still
    /// save last write wins.
    ///
    /// ```no_run
    /// use wasmhost_sdk::{App, Request, SessionError, SessionOptions};
    ///
    /// // A counter in the session that two tabs can bump at once.
    /// fn bump(req: &mut Request) -> Result<String, SessionError> {
    ///     let session = req.session();
    ///     loop {
    ///         let views = session.get::<u64>("views")?.unwrap_or(0) + 1;
    ///         session.insert("views", &views)?;
    ///         match session.save() {
    ///             Ok(()) => return Ok(format!("{views} views")),
    ///             // Another request changed "views" first: start again from its value.
    ///             Err(SessionError::Conflict(_)) => session.reload()?,
    ///             Err(error) => return Err(error),
    ///         }
    ///     }
    /// }
    ///
    /// let app = App::new()
    ///     .sessions(SessionOptions::new("a secret").merge_concurrent_writes(true))
    ///     .post("/bump", bump);
    /// # let _ = app;
    /// ```
    pub fn merge_concurrent_writes(mut self, merge: bool) -> Self {
        self.merge_writes = merge;
        self
    }

    /// `unset`: whether [`Session::unset`] keeps the stored session
    /// ([`Unset::Keep`], the default) or removes it ([`Unset::Destroy`]).
    ///
    /// ```
    /// use wasmhost_sdk::{SessionOptions, Unset};
    ///
    /// let options = SessionOptions::new("a secret").unset(Unset::Destroy);
    /// # let _ = options;
    /// ```
    pub fn unset(mut self, unset: Unset) -> Self {
        self.unset = unset;
        self
    }

    /// The cookie a new session starts with, for a request that came over
    /// HTTPS or not (the `auto` settings resolved, as express-session does
    /// when it generates a session).
    fn new_cookie(
        &self,
        request: Option<&Request>,
        secure_request: bool,
        now: SystemTime,
    ) -> SessionCookie {
        let mut cookie = self.cookie_for(request);
        if let Some(expires) = self.expires {
            let left = expires.duration_since(now).unwrap_or_default().as_millis();
            cookie.original_max_age = Some(u64::try_from(left).unwrap_or(u64::MAX));
        }
        if self.secure_auto {
            cookie.secure = Some(secure_request);
        }
        if self.same_site_auto {
            cookie.same_site = Some(if secure_request {
                SameSite::None
            } else {
                SameSite::Lax
            });
        }
        cookie
    }

    fn key(&self, id: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + id.len());
        key.push_str(&self.prefix);
        key.push_str(id);
        key
    }
}

/// Why a session operation failed.
///
/// As a handler's error it is [`crate::IntoResponse`]: a
/// [`SessionError::Store`] answers as its [`StoreError`] does (`503` while the
/// store is unavailable or full, else `500`), a [`SessionError::Conflict`]
/// `409`, anything else `500`; the error
/// goes to the guest's stderr (the host log), not to the client. A
/// [`StoreError`] converts into it, so `?` works on store calls in a handler
/// returning `Result<_, SessionError>`.
///
/// ```no_run
/// use wasmhost_sdk::{Request, SessionError, store};
///
/// fn visit(req: &mut Request) -> Result<String, SessionError> {
///     let total = store::increment("visits", 1)?; // a StoreError, converted
///     let mine = req.session().get::<i64>("visits")?.unwrap_or(0) + 1;
///     req.session().insert("visits", &mine)?;
///     Ok(format!("visit {mine} of yours, {total} in all"))
/// }
/// # let _ = visit;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The store failed (see [`StoreError`]).
    Store(StoreError),
    /// [`Session::reload`] found no stored session (it expired or was
    /// destroyed, or the session was never saved).
    NotFound,
    /// The session is detached: the app has no sessions enabled (see
    /// [`crate::App::sessions`]), so [`Session::regenerate`],
    /// [`Session::destroy`], [`Session::save`] and [`Session::reload`] have
    /// no store to work on.
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
    /// The field name is express-session's own (`cookie`, `id`, `req`, a
    /// session method such as `save`) or one every JavaScript object has
    /// (`constructor`, `__proto__`...), which a Node app sharing the session
    /// could not read back. Change the cookie with [`Session::cookie_mut`].
    Reserved(String),
    /// The session was destroyed in this request ([`Session::destroy`]):
    /// there is nothing to save or reload (in express-session
    /// `req.session` is gone); [`Session::regenerate`] starts a new one.
    Destroyed,
    /// With [`SessionOptions::merge_concurrent_writes`], another request
    /// saved the session since this one loaded it and the changes cannot be
    /// merged: the payload says why (a field both changed, or the session
    /// was removed). Nothing was saved: [`Session::reload`] and redo the
    /// change. A handler that gives up reloads too (or calls
    /// [`Session::unset`]): otherwise the save at the end of the request
    /// meets the same conflict and answers `409`.
    Conflict(String),
    /// The session was dropped in this request ([`Session::unset`]): there
    /// is nothing to save or reload (in express-session `req.session` is
    /// null); [`Session::regenerate`] starts a new one.
    Unset,
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
            SessionError::Destroyed => f.write_str("the session was destroyed in this request"),
            SessionError::Conflict(why) => {
                write!(f, "the session changed concurrently: {why}")
            }
            SessionError::Unset => f.write_str("the session was unset in this request"),
        }
    }
}

impl std::error::Error for SessionError {}

/// [`SessionError::Store`], so `?` on a store call works in a handler that
/// returns `Result<_, SessionError>`.
impl From<StoreError> for SessionError {
    fn from(error: StoreError) -> Self {
        SessionError::Store(error)
    }
}

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
    id: String,
    data: Fields,
    cookie: SessionCookie,
    options: Option<Rc<SessionOptions>>,
    /// Whether this is the stored session the request's cookie named.
    loaded: bool,
    /// Whether the id changed since the request started: the session was
    /// regenerated (a new session's first id is its original id, as
    /// express-session's `originalId`). Flags rather than a copy of the
    /// first id: comparing ids cost a byte-by-byte `memcmp` per question in
    /// a guest.
    id_changed: bool,
    /// Whether the fields changed since the session was loaded or made
    /// (express-session compares hashes; a flag set on real changes is the
    /// same answer without copying the fields).
    changed: bool,
    /// Whether the store is known to hold exactly these fields: none if
    /// unknown (express's `savedHash` unset), else whether it still does.
    saved: Option<bool>,
    destroyed: bool,
    /// The cookie's expiry when the request started: a handler that sets
    /// another ([`Session::cookie_mut`]) sets the max age from it, as
    /// express-session's `cookie.expires` setter does.
    expires_at_start: Option<SystemTime>,
    /// Whether this request came over HTTPS (for the `auto` cookie settings
    /// of a regenerated session, and whether a secure cookie may be sent).
    secure_request: bool,
    /// With [`SessionOptions::merge_concurrent_writes`]: the stored JSON this
    /// request last read or wrote (none: nothing stored), which a save
    /// swaps out, and the fields changed since, which a conflicting save
    /// replays onto what another request stored.
    merge: Option<Box<MergeBase>>,
    /// [`Session::unset`] was called: nothing is saved, touched or sent.
    unset: bool,
    /// The request's head, kept only when [`SessionOptions::genid`] or
    /// [`SessionOptions::cookie_with`] may need it for a new id or cookie.
    request: Option<Rc<Request>>,
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
    fn fresh(
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
            unset: false,
            request: None,
            expires_at_start: cookie.expires,
            loaded: false,
            id_changed: false,
            id: String::new(),
            data: Fields::default(),
            cookie,
            options,
            changed: false,
            saved: None,
            destroyed: false,
            secure_request: false,
        }
    }

    /// The stored session `id` as read back (`text` its stored JSON), for
    /// requests under `options` (none: a session never stored again).
    fn loaded(
        id: String,
        Stored { data, cookie }: Stored,
        text: String,
        options: Option<Rc<SessionOptions>>,
    ) -> Self {
        let options_say =
            |wanted: fn(&SessionOptions) -> bool| options.as_deref().is_some_and(wanted);
        Session {
            unset: false,
            request: None,
            merge: options_say(|options| options.merge_writes).then(|| {
                Box::new(MergeBase {
                    stored: Some(text),
                    changed_fields: Vec::new(),
                })
            }),
            id,
            loaded: true,
            id_changed: false,
            changed: false,
            // Without resave an unchanged session counts as saved already.
            saved: options_say(|options| !options.resave).then_some(true),
            data,
            expires_at_start: cookie.expires,
            cookie,
            options,
            destroyed: false,
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
            self.id = match &self.options {
                Some(options) => options.new_id(self.request.as_deref())?,
                None => new_id()?,
            };
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
        self.id = options.new_id(self.request.as_deref())?;
        self.id_changed = true;
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
        self.destroyed = false;
        self.unset = false;
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
        self.destroyed = true;
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
        self.unset = true;
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
        if self.destroyed {
            // Writing it back would undo the destroy.
            return Err(SessionError::Destroyed);
        }
        if self.unset {
            return Err(SessionError::Unset);
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
        if self.destroyed {
            return Err(SessionError::Destroyed);
        }
        if self.unset {
            return Err(SessionError::Unset);
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

    /// Writes the session to the store with a TTL that ends with the cookie
    /// (an expired cookie removes it).
    fn write(&mut self, options: &SessionOptions, now: SystemTime) -> Result<(), SessionError> {
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

/// Three-way merge of a session's fields: `theirs` (stored by another
/// request since `base` was read) with `ours` changed in `changed` fields.
/// A changed field that they changed too is a conflict, even to the same
/// value: two requests that both counted 0 + 1 would otherwise save one
/// increment for two.
fn merge_fields(
    base: &Fields,
    mut theirs: Fields,
    ours: &Fields,
    changed: &[String],
) -> Result<Fields, SessionError> {
    fn text<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
        fields.get(name).map(RawValue::get)
    }
    for name in changed {
        if text(&theirs, name) != text(base, name) {
            return Err(SessionError::Conflict(format!(
                "field {name:?} was changed by another request"
            )));
        }
        match ours.get(name) {
            Some(value) => {
                theirs.insert(name, value.to_owned());
            }
            None => {
                theirs.remove(name);
            }
        }
    }
    Ok(theirs)
}

/// A session as read back from the store.
struct Stored {
    data: Fields,
    cookie: SessionCookie,
}

/// Reads session `id`: its fields and cookie and the stored JSON, or none if
/// it is missing or unreadable.
///
/// Expiry is the store's TTL, not the stored `expires`: a Node app that only
/// touches a session renews the TTL and leaves `expires` behind.
fn read(options: &SessionOptions, id: &str) -> Result<Option<(Stored, String)>, ReadError> {
    let Some(text) = store::get(&options.key(id)).map_err(ReadError::Store)? else {
        return Ok(None);
    };
    match serde_json::from_str::<Stored>(&text) {
        Ok(stored) => Ok(Some((stored, text))),
        Err(error) => {
            // What Node cannot load either (not JSON, or no `cookie`
            // object) is an error there: 500. What only the SDK's reading
            // refuses becomes a new session, and the log says why.
            let node_refuses = serde_json::from_str::<Value>(&text).map_or(true, |json| {
                !json.get("cookie").is_some_and(Value::is_object)
            });
            if node_refuses {
                Err(ReadError::Unreadable(error.to_string()))
            } else {
                eprintln!("wasmhost-sdk: stored session not read, a new one is made: {error}");
                Ok(None)
            }
        }
    }
}

/// Why a stored session could not be read.
enum ReadError {
    Store(StoreError),
    /// It is not a session Node could load either.
    Unreadable(String),
}

impl From<ReadError> for SessionError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Store(error) => SessionError::Store(error),
            ReadError::Unreadable(reason) => SessionError::Decode {
                field: "cookie".to_owned(),
                reason,
            },
        }
    }
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
                    } else if is_reserved(&key) {
                        // Node's Session constructor skips names it already
                        // has (`id`, its methods, Object's), so they do not
                        // survive a load there either.
                        map.next_value::<serde::de::IgnoredAny>()?;
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

/// Names a field cannot have: express-session's own (`cookie`, `id`, `req`
/// and the session's methods) and those every JavaScript object has, which
/// Node's `Session` constructor skips when it loads a session.
const RESERVED: [&str; 21] = [
    "cookie",
    "id",
    "req",
    "regenerate",
    "destroy",
    "reload",
    "save",
    "touch",
    "resetMaxAge",
    "constructor",
    "hasOwnProperty",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toLocaleString",
    "toString",
    "valueOf",
    "__proto__",
    "__defineGetter__",
    "__defineSetter__",
    "__lookupGetter__",
    "__lookupSetter__",
];

fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// For the fuzz targets (`crate::__fuzz`): `json` read as [`read`] reads a
/// stored session, as its fields (name, JSON text) in order, its cookie, and
/// the session written back as [`Session::to_json`] writes it.
pub(crate) fn stored_round_trip(json: &str) -> Option<crate::__fuzz::StoredRoundTrip> {
    let stored: Stored = serde_json::from_str(json).ok()?;
    let fields = stored
        .data
        .iter()
        .map(|(name, value)| (name.to_owned(), value.get().to_owned()))
        .collect();
    let cookie = stored.cookie.clone();
    let session = Session::loaded(String::new(), stored, json.to_owned(), None);
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
}

impl SessionLayer {
    pub(crate) fn new(options: SessionOptions) -> Self {
        SessionLayer {
            empty_secret: options.secrets.iter().any(Vec::is_empty),
            options: Rc::new(options),
        }
    }

    /// Whether `request` gets a session: like express-session, only one
    /// under the cookie's path (the browser sends the cookie to no others).
    pub(crate) fn applies_to(&self, request: &Request) -> bool {
        let path = request.path();
        match &self.options.cookie_with {
            None => path.starts_with(&self.options.cookie.path),
            Some(_) => path.starts_with(&self.options.cookie_for(Some(request)).path),
        }
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
            Some(id) => read(options, id).map_err(|error| match error {
                ReadError::Store(error) => store_failure(&error),
                ReadError::Unreadable(reason) => {
                    eprintln!("wasmhost-sdk: the stored session cannot be read: {reason}");
                    crate::into_response::internal_error()
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
            session.request = Some(Rc::new(request.head_copy()));
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
        if session.destroyed {
            return response;
        }
        let options = &self.options;
        if session.unset {
            // A session that never got an id was never stored.
            if options.unset == Unset::Destroy
                && !session.id.is_empty()
                && let Err(error) = store::remove(&options.key(&session.id))
            {
                return store_failure(&error);
            }
            return response;
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
        if should_set_cookie && let Some(why) = session.cookie.invalid(&options.name) {
            // As express-session's cookie serializer, refuse rather than send
            // a header whose attributes a value could forge.
            eprintln!("wasmhost-sdk: not sending the session cookie: {why}");
            return crate::into_response::internal_error();
        }
        if (should_save || should_set_cookie)
            && let Err(error) = session.id()
        {
            eprintln!("wasmhost-sdk: {error}");
            return crate::into_response::internal_error();
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

    fn fields(json: &str) -> Fields {
        let json = format!(r#"{{"cookie":{{"originalMaxAge":null,"path":"/"}}{json}}}"#);
        serde_json::from_str::<Stored>(&json)
            .expect("a stored session")
            .data
    }

    fn names(changed: &[&str]) -> Vec<String> {
        changed.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn a_merge_replays_our_changed_fields_onto_theirs() {
        let base = fields(r#","a":1,"b":2,"gone":0"#);
        let theirs = fields(r#","a":1,"b":3,"gone":0,"t":true"#);
        let ours = fields(r#","a":5,"b":2,"o":"x""#);
        let merged = merge_fields(&base, theirs, &ours, &names(&["a", "o", "gone"]))
            .expect("no field changed by both");
        let merged: Vec<_> = merged
            .iter()
            .map(|(k, v)| format!("{k}={}", v.get()))
            .collect();
        assert_eq!(merged, ["a=5", "b=3", "t=true", "o=\"x\""]);
    }

    #[test]
    fn a_field_both_changed_is_a_conflict_even_to_the_same_value() {
        let base = fields(r#","n":1"#);
        let ours = fields(r#","n":2"#);
        let conflict = merge_fields(&base, fields(r#","n":3"#), &ours, &names(&["n"]));
        assert!(matches!(conflict, Err(SessionError::Conflict(why)) if why.contains("\"n\"")));
        let removed_by_them = merge_fields(&base, fields(""), &ours, &names(&["n"]));
        assert!(matches!(removed_by_them, Err(SessionError::Conflict(_))));
        let same = merge_fields(&base, fields(r#","n":2"#), &ours, &names(&["n"]));
        assert!(matches!(same, Err(SessionError::Conflict(_))));
        let untouched = merge_fields(&base, fields(r#","n":1,"m":0"#), &ours, &names(&["n"]))
            .expect("they changed another field");
        assert_eq!(untouched.get("n").map(RawValue::get), Some("2"));
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
