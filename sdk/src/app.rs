//! The app a guest exports: sessions (optional) in front of a small router.
//!
//! Routes match on the method and on the path, segment by segment, where a
//! segment written `:name` matches anything and is handed to the handler as a
//! parameter. The first route that matches wins; no match is a 404, as in
//! express. A `HEAD` request no route claims runs the `GET` route for its
//! path, as in express and axum: the host sends that response's headers and
//! no body. The app is built once per instance and reused for every request,
//! since the instance persists between requests.

use std::cell::OnceCell;

use crate::bindings::exports::wasmhost::app::handler as raw;
use crate::session::SessionLayer;
use crate::text::split_byte;
use crate::{IntoResponse, Request, Response, SessionOptions};

/// A route's handler, its return value already turned into a response.
type Handler = Box<dyn Fn(&mut Request) -> Response>;

struct Route {
    /// None: every method (`App::any`).
    method: Option<String>,
    segments: Vec<Segment>,
    handler: Handler,
}

enum Segment {
    Literal(String),
    Param(String),
}

/// A guest web app: its routes and, if enabled, its sessions.
///
/// Build it with [`App::new`], add routes with [`App::get`], [`App::post`],
/// [`App::put`], [`App::patch`], [`App::delete`], [`App::any`] or
/// [`App::route`], turn on sessions with [`App::sessions`], and export the
/// function that builds it with [`crate::export_app!`].
///
/// A route's path is matched segment by segment against the request's path
/// (without the query); a segment written `:name` matches any one segment,
/// which the handler reads, percent-decoded, with [`Request::param`]. Empty
/// segments are ignored, so `/users/` matches `/users`. Routes are tried in
/// the order they were added and the first match wins; a request no route
/// matches is answered `404` with `Cannot GET /path`, as express does. A
/// `HEAD` request no route claims runs the `GET` route for its path: the host
/// sends that response's headers and no body.
///
/// ```
/// use wasmhost_sdk::{App, Json, Request, Response, StatusCode};
///
/// fn app() -> App {
///     App::new()
///         .get("/", |_| "home")
///         .get("/users/:id", |req| {
///             Response::text(format!("user {}", req.param("id").unwrap_or("")))
///         })
///         .post("/users", |_| (StatusCode::CREATED, Json(serde_json::json!({ "id": 7 }))))
/// }
///
/// // Routing is plain Rust: it runs natively too, e.g. in a unit test.
/// let app = app();
/// let response = app.handle(Request::new("GET", "/users/42", Vec::new(), Vec::new()));
/// assert_eq!(response.body(), b"user 42");
/// let response = app.handle(Request::new("POST", "/users", Vec::new(), Vec::new()));
/// assert_eq!(response.status(), StatusCode::CREATED);
/// let response = app.handle(Request::new("GET", "/nowhere", Vec::new(), Vec::new()));
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// assert_eq!(response.body(), b"Cannot GET /nowhere");
/// ```
#[derive(Default)]
pub struct App {
    routes: Vec<Route>,
    sessions: Option<SessionLayer>,
}

impl App {
    /// An app without routes or sessions: it answers every request `404`.
    ///
    /// ```
    /// use wasmhost_sdk::{App, Request, StatusCode};
    ///
    /// let app = App::new();
    /// let response = app.handle(Request::new("GET", "/", Vec::new(), Vec::new()));
    /// assert_eq!(response.status(), StatusCode::NOT_FOUND);
    /// ```
    pub fn new() -> Self {
        App::default()
    }

    /// Gives every request a session, as `app.use(session(options))` does.
    ///
    /// Before a handler runs, the request's session is loaded from the store
    /// (a new, empty one if the cookie is missing, unsigned, tampered with or
    /// unknown); handlers use it through [`Request::session`]. After the
    /// handler, the session is saved or its TTL renewed and the cookie set, as
    /// [`SessionOptions`] say. Only requests whose path starts with the
    /// cookie's path ([`SessionOptions::path`], `/` by default) get a session.
    /// While the store is unavailable or full, requests that need it are
    /// answered `503`; an empty secret answers every request with sessions `500`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmhost_sdk::{App, Request, SessionError, SessionOptions};
    ///
    /// fn app() -> App {
    ///     let secret = std::env::var("SESSION_SECRET").unwrap_or_else(|_| "dev only".to_owned());
    ///     App::new()
    ///         .sessions(SessionOptions::new(secret).max_age(Duration::from_secs(15 * 60)))
    ///         .get("/", |req: &mut Request| -> Result<String, SessionError> {
    ///             let name = req.session().get::<String>("name")?;
    ///             Ok(format!("hello {}", name.as_deref().unwrap_or("stranger")))
    ///         })
    /// }
    /// # let _ = app;
    /// ```
    pub fn sessions(mut self, options: SessionOptions) -> Self {
        self.sessions = Some(SessionLayer::new(options));
        self
    }

    /// Why this app cannot serve as configured, if it cannot: an empty
    /// session secret. wasmhost asks when an instance starts and refuses to
    /// start with such an app; a unit test can ask too.
    ///
    /// ```
    /// use wasmhost_sdk::{App, SessionOptions};
    ///
    /// assert!(App::new().sessions(SessionOptions::new("a secret")).check().is_ok());
    /// let refused = App::new().sessions(SessionOptions::new("")).check();
    /// assert!(refused.unwrap_err().contains("session secret"));
    /// ```
    pub fn check(&self) -> Result<(), String> {
        match &self.sessions {
            Some(layer) => layer.check(),
            None => Ok(()),
        }
    }

    /// Routes `method` requests for `path` to `handler`, which returns
    /// anything [`IntoResponse`]: a [`Response`], a `Result` of two such
    /// (so `?` works), `(StatusCode, T)`, [`crate::Json`], text.
    ///
    /// `method` is upper-cased here, then matched exactly; use this for
    /// methods without a method of their own (`OPTIONS`, `PURGE`...). The path
    /// may hold `:name` segments, read with [`Request::param`]. A handler is a
    /// function or closure `Fn(&mut Request) -> impl IntoResponse`; a closure
    /// that uses `?` needs its types written out, as below.
    ///
    /// ```
    /// use wasmhost_sdk::{App, Request, Response, StatusCode};
    ///
    /// let app = App::new()
    ///     .route("purge", "/cache/:key", |req: &mut Request| -> Result<Response, StatusCode> {
    ///         let key = req.param("key").ok_or(StatusCode::BAD_REQUEST)?;
    ///         Ok(Response::text(format!("purged {key}")))
    ///     })
    ///     .route("OPTIONS", "/cache/:key", |_| {
    ///         Response::new(StatusCode::NO_CONTENT).with_header("allow", "GET, PURGE, OPTIONS")
    ///     });
    ///
    /// let response = app.handle(Request::new("PURGE", "/cache/home", Vec::new(), Vec::new()));
    /// assert_eq!(response.body(), b"purged home");
    /// ```
    pub fn route<H, R>(self, method: &str, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.add(Some(method.to_ascii_uppercase()), path, handler)
    }

    fn add<H, R>(mut self, method: Option<String>, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        let segments = split_path(path)
            .map(|segment| match segment.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(segment.to_owned()),
            })
            .collect();
        self.routes.push(Route {
            method,
            segments,
            handler: Box::new(move |request| handler(request).into_response()),
        });
        self
    }

    /// Routes `GET` (and so `HEAD`) requests for `path`.
    ///
    /// A `HEAD` request for the path runs this handler too (unless a route
    /// for `HEAD` itself matches first); the host sends the response's
    /// headers, `content-length` included, and no body.
    ///
    /// ```
    /// use wasmhost_sdk::{App, Json, Request};
    ///
    /// let app = App::new()
    ///     .get("/", |_| "home")
    ///     .get("/hello/:name", |req| format!("Hello, {}!", req.param("name").unwrap_or("you")))
    ///     .get("/api/status", |_| Json(serde_json::json!({ "ok": true })));
    ///
    /// let response = app.handle(Request::new("GET", "/hello/Ada%20L", Vec::new(), Vec::new()));
    /// assert_eq!(response.body(), b"Hello, Ada L!");
    /// // HEAD is answered by the GET route (the host drops the body).
    /// let response = app.handle(Request::new("HEAD", "/api/status", Vec::new(), Vec::new()));
    /// assert_eq!(response.status(), 200);
    /// ```
    pub fn get<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.route("GET", path, handler)
    }

    /// Routes `POST` requests for `path`.
    ///
    /// ```
    /// use wasmhost_sdk::{App, Json, Request, StatusCode};
    ///
    /// #[derive(serde::Deserialize, serde::Serialize)]
    /// struct Todo {
    ///     title: String,
    /// }
    ///
    /// fn create(req: &mut Request) -> Result<(StatusCode, Json<Todo>), (StatusCode, String)> {
    ///     let todo: Todo = req.json().map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    ///     Ok((StatusCode::CREATED, Json(todo)))
    /// }
    ///
    /// let app = App::new().post("/todos", create);
    /// let body = br#"{"title":"write docs"}"#.to_vec();
    /// let response = app.handle(Request::new("POST", "/todos", Vec::new(), body));
    /// assert_eq!(response.status(), StatusCode::CREATED);
    /// assert_eq!(response.body(), br#"{"title":"write docs"}"#);
    /// ```
    pub fn post<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.route("POST", path, handler)
    }

    /// Routes `PUT` requests for `path`.
    ///
    /// ```no_run
    /// use wasmhost_sdk::store::{self, StoreError};
    /// use wasmhost_sdk::{App, Request, StatusCode};
    ///
    /// fn save_note(req: &mut Request) -> Result<StatusCode, StoreError> {
    ///     let key = format!("note:{}", req.param("id").unwrap_or_default());
    ///     store::set(&key, &String::from_utf8_lossy(req.body()), None)?;
    ///     Ok(StatusCode::NO_CONTENT)
    /// }
    ///
    /// let app = App::new().put("/notes/:id", save_note);
    /// # let _ = app;
    /// ```
    pub fn put<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.route("PUT", path, handler)
    }

    /// Routes `PATCH` requests for `path`.
    ///
    /// ```
    /// use wasmhost_sdk::{App, Request};
    ///
    /// let app = App::new().patch("/profile", |req| {
    ///     format!("{} bytes of changes", req.body().len())
    /// });
    /// let response = app.handle(Request::new("PATCH", "/profile", Vec::new(), b"{}".to_vec()));
    /// assert_eq!(response.body(), b"2 bytes of changes");
    /// ```
    pub fn patch<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.route("PATCH", path, handler)
    }

    /// Routes `DELETE` requests for `path`.
    ///
    /// ```no_run
    /// use wasmhost_sdk::store::{self, StoreError};
    /// use wasmhost_sdk::{App, Request, StatusCode};
    ///
    /// fn delete_note(req: &mut Request) -> Result<StatusCode, StoreError> {
    ///     store::remove(&format!("note:{}", req.param("id").unwrap_or_default()))?;
    ///     Ok(StatusCode::NO_CONTENT)
    /// }
    ///
    /// let app = App::new().delete("/notes/:id", delete_note);
    /// # let _ = app;
    /// ```
    pub fn delete<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.route("DELETE", path, handler)
    }

    /// Routes requests of every method for `path`; the handler can tell them
    /// apart with [`RequestHead::method`](crate::RequestHead::method). Routes are tried in order, so an `any`
    /// route added after a `get` for the same path takes only what the `get`
    /// does not.
    ///
    /// ```
    /// use wasmhost_sdk::{App, Request, StatusCode};
    ///
    /// let app = App::new()
    ///     .get("/resource", |_| "the resource")
    ///     .any("/resource", |req| {
    ///         (StatusCode::METHOD_NOT_ALLOWED, format!("{} not allowed", req.method()))
    ///     });
    ///
    /// let response = app.handle(Request::new("DELETE", "/resource", Vec::new(), Vec::new()));
    /// assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    /// assert_eq!(response.body(), b"DELETE not allowed");
    /// ```
    pub fn any<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.add(None, path, handler)
    }

    /// Runs one request through sessions and the router, and returns the
    /// response. [`crate::export_app!`] calls it for every request; call it
    /// yourself to unit-test routes natively (`cargo test`), sessions and
    /// store calls included: off wasm they reach the test host
    /// ([`crate::testing`]).
    ///
    /// ```
    /// use wasmhost_sdk::{App, Request, StatusCode};
    ///
    /// let app = App::new().get("/search", |req| {
    ///     format!("results for {}", req.query_param("q").unwrap_or_default())
    /// });
    /// let request = Request::new("GET", "/search?q=rust+wasm", Vec::new(), Vec::new());
    /// let response = app.handle(request);
    /// assert_eq!(response.status(), StatusCode::OK);
    /// assert_eq!(response.body(), b"results for rust wasm");
    /// assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
    /// ```
    pub fn handle(&self, mut request: Request) -> Response {
        let Some(layer) = self
            .sessions
            .as_ref()
            .filter(|layer| layer.applies_to(&request))
        else {
            return self.route_request(&mut request);
        };
        let ticket = match layer.load(&request) {
            Ok((session, ticket)) => {
                request.session = Some(session);
                ticket
            }
            Err(answer) => return answer,
        };
        let response = self.route_request(&mut request);
        match request.session.take() {
            Some(session) => layer.commit(session, ticket, response),
            None => response,
        }
    }

    fn route_request(&self, request: &mut Request) -> Response {
        // A cheap copy: the usual methods are static strings.
        let method = request.method_cow();
        if let Some(response) = self.run_first(request, &method) {
            return response;
        }
        // HEAD falls back to GET; the host sends no body for a HEAD.
        if request.method() == "HEAD"
            && let Some(response) = self.run_first(request, "GET")
        {
            return response;
        }
        Response::not_found(request.method(), request.path())
    }

    /// Runs the first route for `method` that matches the request's path.
    fn run_first(&self, request: &mut Request, method: &str) -> Option<Response> {
        for route in &self.routes {
            if route.method.as_deref().is_some_and(|own| own != method) {
                continue;
            }
            if let Some(params) = route.matches(request.path()) {
                request.params = params;
                return Some((route.handler)(request));
            }
        }
        None
    }
}

impl Route {
    fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let mut params = Vec::new();
        let mut parts = split_path(path);
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), crate::text::decode(part))),
            }
        }
        parts.next().is_none().then_some(params)
    }
}

/// Path segments, ignoring empty ones (so `/a/` matches `/a`, as in express).
fn split_path(path: &str) -> impl Iterator<Item = &str> {
    split_byte(path, b'/').filter(|segment| !segment.is_empty())
}

thread_local! {
    /// The app of this instance, built when it starts.
    static APP: OnceCell<App> = const { OnceCell::new() };
}

/// What the function given to [`crate::export_app!`] returns: an [`App`],
/// or a `Result` whose error says why the app cannot start (a missing
/// setting, say), which stops `wasmhost` at start with that line.
///
/// ```
/// use wasmhost_sdk::{App, SessionOptions};
///
/// fn app() -> Result<App, String> {
///     let secret = std::env::var("SESSION_SECRET")
///         .map_err(|_| "set SESSION_SECRET (--env or --env-file)".to_owned())?;
///     Ok(App::new().sessions(SessionOptions::new(secret)))
/// }
/// # let _ = app;
/// ```
pub trait IntoApp {
    /// The app, or why it cannot start.
    fn into_app(self) -> Result<App, String>;
}

impl IntoApp for App {
    fn into_app(self) -> Result<App, String> {
        Ok(self)
    }
}

impl<E: std::fmt::Display> IntoApp for Result<App, E> {
    fn into_app(self) -> Result<App, String> {
        self.map_err(|error| error.to_string())
    }
}

/// Entry point for [`crate::export_app!`]'s `start`: builds the app, and
/// says why it cannot serve if it cannot (the host then refuses to start).
#[doc(hidden)]
pub fn start<T: IntoApp>(build: fn() -> T) -> Result<(), String> {
    let app = build().into_app()?;
    app.check()?;
    APP.with(|cell| {
        // Built once per instance; a second start (there is none) keeps the first.
        let _ = cell.set(app);
    });
    Ok(())
}

/// Entry point for [`crate::export_app!`]: routes the request through the
/// app `start` built (building it now if the host did not call `start`).
#[doc(hidden)]
pub fn dispatch<T: IntoApp>(request: raw::Request, build: fn() -> T) -> raw::Response {
    let request = Request::from_raw(request);
    APP.with(|cell| {
        let app = match cell.get() {
            Some(app) => app,
            None => {
                if let Err(why) = start(build) {
                    eprintln!("wasmhost-sdk: the app cannot start: {why}");
                }
                match cell.get() {
                    Some(app) => app,
                    None => return Response::internal_error().into_raw(),
                }
            }
        };
        app.handle(request).into_raw()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App::new()
            .get("/", |_| Response::text("root"))
            .get("/users/:id", |req| {
                Response::text(req.param("id").unwrap_or("none"))
            })
            .post("/users", |_| (crate::StatusCode::CREATED, "created"))
            .any("/anything", |req| req.method().to_owned())
    }

    fn call(app: &App, method: &str, path: &str) -> (u16, String) {
        let response = app.handle(Request::new(method, path, Vec::new(), Vec::new()));
        (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body()).into_owned(),
        )
    }

    #[test]
    fn routes_match_method_and_path() {
        let app = app();
        assert_eq!(call(&app, "GET", "/"), (200, "root".into()));
        assert_eq!(call(&app, "GET", "/?x=1"), (200, "root".into()));
        assert_eq!(call(&app, "GET", "/users/a%20b"), (200, "a b".into()));
        assert_eq!(call(&app, "GET", "/users/7/"), (200, "7".into()));
        assert_eq!(call(&app, "POST", "/users"), (201, "created".into()));
    }

    #[test]
    fn head_runs_the_get_route_and_any_takes_every_method() {
        let app = app();
        assert_eq!(call(&app, "HEAD", "/"), (200, "root".into()));
        assert_eq!(
            call(&app, "HEAD", "/users"),
            (404, "Cannot HEAD /users".into())
        );
        assert_eq!(call(&app, "PATCH", "/anything"), (200, "PATCH".into()));
        assert_eq!(call(&app, "GET", "/anything"), (200, "GET".into()));
    }

    #[test]
    fn anything_else_is_404() {
        let app = app();
        assert_eq!(call(&app, "GET", "/nope"), (404, "Cannot GET /nope".into()));
        assert_eq!(call(&app, "DELETE", "/").0, 404);
        assert_eq!(call(&app, "GET", "/users/1/2").0, 404);
    }
}
