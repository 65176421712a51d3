//! The benchmark baseline: the seed app (`guest-app`) written the way
//! a Rust engineer would write it natively, on hyper + tokio, with no
//! WebAssembly. Same routes, same JSON bodies, same express-session cookie
//! (`connect.sid`, HMAC-SHA256 signed), same session JSON in a DashMap with a
//! TTL, same `resave: true, saveUninitialized: false, maxAge: 900000`.
//!
//! It exists only to be measured beside wasmhost (see `bench/`).

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use clap::Parser;
use dashmap::DashMap;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value, json};
use sha2::Sha256;

const NOT_SET: &str = "Not set. Go to '/set' to set value.";
const MAX_AGE: Duration = Duration::from_millis(900_000);
const COOKIE_NAME: &str = "connect.sid";

/// What `encodeURIComponent` leaves alone.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

#[derive(Parser)]
struct Args {
    /// Worker threads (`--tasks` too, so the harness passes both servers the same flags).
    #[arg(long, alias = "tasks", default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

struct App {
    secret: String,
    sessions: DashMap<String, (String, Instant)>,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .on_thread_start(|| THREAD.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed)))
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> std::io::Result<()> {
    let app = Arc::new(App {
        secret: std::env::var("SESSION_SECRET").unwrap_or_else(|_| "TEST_SECRET".to_owned()),
        sessions: DashMap::new(),
    });
    // The accept queue wasmhost asks for (the longest the kernel allows):
    // the burst measurement compares serving, not tokio's default queue of
    // 1,024, which a burst of 2,000 new connections overflows.
    let socket = match args.listen {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(args.listen)?;
    let listener = socket.listen(65_535)?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let app = Arc::clone(&app);
                        async move { Ok::<_, Infallible>(app.handle(&request)) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

impl App {
    fn handle(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let now = SystemTime::now();
        let cookie_id = request
            .headers()
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|header| self.session_id(header));
        let mut stored = cookie_id.as_deref().and_then(|id| self.load(id));
        let known = stored.is_some();
        let path = request.uri().path();
        let (status, body, modified) = match path {
            "/" => {
                let value = stored
                    .as_ref()
                    .and_then(|data| data.get("foo"))
                    .and_then(Value::as_str)
                    .unwrap_or(NOT_SET);
                let body = json!({ "foo": value, "thread": thread_index() }).to_string();
                (StatusCode::OK, Some(body), false)
            }
            "/set" => {
                stored
                    .get_or_insert_with(Map::new)
                    .insert("foo".to_owned(), Value::from("bar"));
                let body = json!({
                    "thread": thread_index(),
                    "message": "foo value set to 'bar' in session.",
                })
                .to_string();
                (StatusCode::OK, Some(body), true)
            }
            _ => (StatusCode::NOT_FOUND, None, false),
        };

        let mut response = match body {
            Some(body) => {
                let mut response = Response::new(Full::new(Bytes::from(body)));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                );
                response
            }
            None => Response::new(Full::new(Bytes::from(format!("Cannot GET {path}")))),
        };
        *response.status_mut() = status;

        // resave: true saves every known session; saveUninitialized: false
        // saves a new one only if the request changed it.
        if known || modified {
            let id = match (known, cookie_id) {
                (true, Some(id)) => id,
                _ => new_id(),
            };
            let expires = now + MAX_AGE;
            self.save(&id, stored.unwrap_or_default(), expires);
            if !known || modified {
                let signed = format!("s:{}", sign(&id, &self.secret));
                let cookie = format!(
                    "{COOKIE_NAME}={}; Path=/; Expires={}; HttpOnly",
                    utf8_percent_encode(&signed, URI_COMPONENT),
                    httpdate::fmt_http_date(expires)
                );
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(SET_COOKIE, value);
                }
            }
        }
        response
    }

    /// The verified session id in a Cookie header, if any.
    fn session_id(&self, header: &str) -> Option<String> {
        let value = header.split(';').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == COOKIE_NAME).then(|| value.trim())
        })?;
        let value = percent_decode_str(value).decode_utf8().ok()?;
        let (id, signature) = value.strip_prefix("s:")?.rsplit_once('.')?;
        let signature = STANDARD_NO_PAD.decode(signature).ok()?;
        mac(&self.secret, id).verify_slice(&signature).ok()?;
        Some(id.to_owned())
    }

    /// The stored session's fields, without its cookie.
    fn load(&self, id: &str) -> Option<Map<String, Value>> {
        let entry = self.sessions.get(&format!("sess:{id}"))?;
        let (json, expires) = entry.value();
        if *expires <= Instant::now() {
            return None;
        }
        let Ok(Value::Object(mut data)) = serde_json::from_str(json) else {
            return None;
        };
        data.shift_remove("cookie");
        Some(data)
    }

    fn save(&self, id: &str, data: Map<String, Value>, expires: SystemTime) {
        let mut stored = Map::with_capacity(data.len() + 1);
        stored.insert(
            "cookie".to_owned(),
            json!({
                "originalMaxAge": MAX_AGE.as_millis() as u64,
                "expires": humantime::format_rfc3339_millis(expires).to_string(),
                "httpOnly": true,
                "path": "/",
            }),
        );
        stored.extend(data);
        self.sessions.insert(
            format!("sess:{id}"),
            (Value::Object(stored).to_string(), Instant::now() + MAX_AGE),
        );
    }
}

fn mac(secret: &str, value: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(value.as_bytes());
    mac
}

fn sign(value: &str, secret: &str) -> String {
    let signature = STANDARD_NO_PAD.encode(mac(secret, value).finalize().into_bytes());
    format!("{value}.{signature}")
}

fn new_id() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("the OS random generator failed: {e}"));
    URL_SAFE_NO_PAD.encode(bytes)
}

static NEXT_THREAD: AtomicU32 = AtomicU32::new(0);

thread_local! {
    static THREAD: Cell<u32> = const { Cell::new(0) };
}

/// The runtime thread's index, the native stand-in for a task id.
fn thread_index() -> u32 {
    THREAD.get()
}
