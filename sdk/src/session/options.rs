//! [`SessionOptions`]: the options of express-session's `session({...})`,
//! their builders, and what the rest of the session layer asks of them (the
//! cookie a new session starts with, its store key, a new id).
//!
//! The bottom of the session layer with [`super::error`]: it knows nothing of
//! a [`super::Session`] or of a request's load and save, so every other
//! module may read options without a circle. Fields the session and the
//! layer read are `pub(super)`; the builders are the only public way in.

use std::fmt;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::cookie::{SameSite, SessionCookie};
use super::error::SessionError;
use crate::RequestHead;

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
    pub(super) secrets: Vec<Vec<u8>>,
    pub(super) name: String,
    prefix: String,
    pub(super) cookie: SessionCookie,
    pub(super) resave: bool,
    pub(super) save_uninitialized: bool,
    pub(super) rolling: bool,
    pub(super) trust_proxy: bool,
    /// `cookie.secure: "auto"`: each new session's cookie is secure when its
    /// request came over HTTPS.
    secure_auto: bool,
    /// `cookie.sameSite: "auto"`: `None` over HTTPS, `Lax` otherwise.
    same_site_auto: bool,
    /// `genid`: makes new session ids; none: 24 random bytes.
    genid: Option<IdGenerator>,
    /// `cookie` as a function: adjusts a new session's cookie per request.
    pub(super) cookie_with: Option<CookieAdjuster>,
    /// `cookie.expires`: an absolute expiry every new session's cookie
    /// starts with (its max age is the time left until then).
    expires: Option<SystemTime>,
    /// Save with compare-and-swap and merge the fields concurrent requests
    /// changed, instead of last write wins.
    pub(super) merge_writes: bool,
    /// `unset`: what [`Session::unset`](crate::Session::unset) does to the stored session.
    pub(super) unset: Unset,
}

/// express-session's `unset` option: what happens to the stored session
/// when a handler drops it with [`Session::unset`](crate::Session::unset) (`req.session = null`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unset {
    /// `"keep"`: the stored session stays as it was before the request;
    /// this request's changes are not saved.
    #[default]
    Keep,
    /// `"destroy"`: the stored session is removed when the request ends.
    Destroy,
}

/// A `genid` function.
#[derive(Clone)]
struct IdGenerator(Rc<dyn Fn(&RequestHead) -> String>);

impl fmt::Debug for IdGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdGenerator")
    }
}

/// What [`SessionOptions::cookie_with`] is given.
type AdjustCookie = dyn Fn(&RequestHead, &mut SessionCookie);

/// A `cookie` function.
#[derive(Clone)]
pub(super) struct CookieAdjuster(Rc<AdjustCookie>);

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
            cookie: SessionCookie::default(),
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
    pub fn genid(mut self, genid: impl Fn(&RequestHead) -> String + 'static) -> Self {
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
    pub fn cookie_with(
        mut self,
        adjust: impl Fn(&RequestHead, &mut SessionCookie) + 'static,
    ) -> Self {
        self.cookie_with = Some(CookieAdjuster(Rc::new(adjust)));
        self
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
    /// changed cannot be merged: [`Session::save`](crate::Session::save) returns
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

    /// `unset`: whether [`Session::unset`](crate::Session::unset) keeps the stored session
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
}

/// What the other session modules ask of the options.
impl SessionOptions {
    /// The cookie options for `request`: the configured ones, adjusted by
    /// [`Self::cookie_with`] if there is one.
    pub(super) fn cookie_for(&self, request: Option<&RequestHead>) -> SessionCookie {
        let mut cookie = self.cookie.clone();
        if let (Some(CookieAdjuster(adjust)), Some(request)) = (&self.cookie_with, request) {
            adjust(request, &mut cookie);
        }
        cookie
    }

    /// Whether `genid` or `cookie_with` need the request after it was
    /// loaded (to make a new id or cookie later in the request).
    pub(super) fn needs_request(&self) -> bool {
        self.genid.is_some() || self.cookie_with.is_some()
    }

    /// The cookie a new session starts with, for a request that came over
    /// HTTPS or not (the `auto` settings resolved, as express-session does
    /// when it generates a session).
    pub(super) fn new_cookie(
        &self,
        request: Option<&RequestHead>,
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

    /// The store key of session `id`: the prefix, then the id.
    pub(super) fn key(&self, id: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + id.len());
        key.push_str(&self.prefix);
        key.push_str(id);
        key
    }
}

/// A new session id: [`SessionOptions::genid`]'s for `request`, when there
/// are options with one and the request was kept, else 24 random bytes from
/// the OS in base64url without padding (as `uid-safe`). The one place an id
/// is made, for new, regenerated and detached sessions alike.
pub(super) fn new_id(
    options: Option<&SessionOptions>,
    request: Option<&RequestHead>,
) -> Result<String, SessionError> {
    if let (Some(IdGenerator(genid)), Some(request)) =
        (options.and_then(|options| options.genid.as_ref()), request)
    {
        return Ok(genid(request));
    }
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| SessionError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
