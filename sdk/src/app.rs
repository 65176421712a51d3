//! The app a guest exports: sessions (optional) in front of a small router.
//!
//! Routes match on the method and on the path, segment by segment, where a
//! segment written `:name` matches anything and is handed to the handler as a
//! parameter. The first route that matches wins; no match is a 404, as in
//! express. The app is built once per instance and reused for every request,
//! since the instance persists between requests.

use std::cell::OnceCell;

use crate::bindings::exports::wasmhost::app::handler as raw;
use crate::session::SessionLayer;
use crate::text::split_byte;
use crate::{Request, Response, SessionOptions};

/// A request handler: any `Fn(&mut Request) -> Response`.
pub type Handler = Box<dyn Fn(&mut Request) -> Response>;

struct Route {
    method: String,
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
    pub fn new() -> Self {
        App::default()
    }

    /// Gives every request a session, as `app.use(session(options))` does.
    pub fn sessions(mut self, options: SessionOptions) -> Self {
        self.sessions = Some(SessionLayer::new(options));
        self
    }

    /// Routes `method` requests for `path` to `handler`.
    pub fn route(
        mut self,
        method: &str,
        path: &str,
        handler: impl Fn(&mut Request) -> Response + 'static,
    ) -> Self {
        let segments = split_path(path)
            .map(|segment| match segment.strip_prefix(':') {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(segment.to_owned()),
            })
            .collect();
        self.routes.push(Route {
            method: method.to_ascii_uppercase(),
            segments,
            handler: Box::new(handler),
        });
        self
    }

    pub fn get(self, path: &str, handler: impl Fn(&mut Request) -> Response + 'static) -> Self {
        self.route("GET", path, handler)
    }

    pub fn post(self, path: &str, handler: impl Fn(&mut Request) -> Response + 'static) -> Self {
        self.route("POST", path, handler)
    }

    pub fn put(self, path: &str, handler: impl Fn(&mut Request) -> Response + 'static) -> Self {
        self.route("PUT", path, handler)
    }

    pub fn delete(self, path: &str, handler: impl Fn(&mut Request) -> Response + 'static) -> Self {
        self.route("DELETE", path, handler)
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
        for route in &self.routes {
            if route.method != request.method() {
                continue;
            }
            if let Some(params) = route.matches(request.path()) {
                request.params = params;
                return (route.handler)(request);
            }
        }
        Response::not_found(request.method(), request.path())
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
            .post("/users", |_| Response::text("created").with_status(201))
    }

    fn call(app: &App, method: &str, path: &str) -> (u16, String) {
        let response = app.handle(Request::new(method, path, Vec::new(), Vec::new()));
        (
            response.status(),
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
    fn anything_else_is_404() {
        let app = app();
        assert_eq!(call(&app, "GET", "/nope"), (404, "Cannot GET /nope".into()));
        assert_eq!(call(&app, "DELETE", "/").0, 404);
        assert_eq!(call(&app, "GET", "/users/1/2").0, 404);
    }
}
