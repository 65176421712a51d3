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
#[derive(Default)]
pub struct App {
    routes: Vec<Route>,
    sessions: Option<SessionLayer>,
}

impl App {
    /// An app without routes or sessions.
    pub fn new() -> Self {
        App::default()
    }

    /// Gives every request a session, as `app.use(session(options))` does.
    pub fn sessions(mut self, options: SessionOptions) -> Self {
        self.sessions = Some(SessionLayer::new(options));
        self
    }

    /// Routes `method` requests for `path` to `handler`, which returns
    /// anything [`IntoResponse`]: a [`Response`], a `Result` of two such
    /// (so `?` works), `(StatusCode, T)`, [`crate::Json`], text.
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
    pub fn get<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.route("GET", path, handler)
    }

    /// Routes `POST` requests for `path`.
    pub fn post<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.route("POST", path, handler)
    }

    /// Routes `PUT` requests for `path`.
    pub fn put<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.route("PUT", path, handler)
    }

    /// Routes `PATCH` requests for `path`.
    pub fn patch<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.route("PATCH", path, handler)
    }

    /// Routes `DELETE` requests for `path`.
    pub fn delete<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.route("DELETE", path, handler)
    }

    /// Routes requests of every method for `path`.
    pub fn any<H, R>(self, path: &str, handler: H) -> Self
    where
        H: Fn(&mut Request) -> R + 'static,
        R: IntoResponse,
    {
        self.add(None, path, handler)
    }

    /// Runs one request through sessions and the router.
    pub fn handle(&self, mut request: Request) -> Response {
        let Some(layer) = self
            .sessions
            .as_ref()
            .filter(|layer| layer.applies_to(request.path()))
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
                Segment::Param(name) => params.push((name.clone(), crate::request::decode(part))),
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
    /// The app of this instance, built on the first request.
    static APP: OnceCell<App> = const { OnceCell::new() };
}

/// Entry point for [`crate::export_app!`]: builds the app once, then routes.
#[doc(hidden)]
pub fn dispatch(request: raw::Request, build: fn() -> App) -> raw::Response {
    let request = Request::from_raw(request);
    APP.with(|app| app.get_or_init(build).handle(request).into_raw())
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
