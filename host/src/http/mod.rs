//! HTTP at the edge: the only layer that knows hyper. It turns a client's
//! request into the guest's record, hands it to the pool, and turns the
//! pool's [`Outcome`](crate::pool::Outcome) into what the client sees.
//!
//! - [`convert`]: hyper request → guest record, guest response → hyper, with
//!   every check a guest's response must pass;
//! - [`respond`]: the one place outcomes become statuses, `Retry-After` and
//!   log levels;
//! - [`connection`] and [`timer`]: a client's socket with its idle and write
//!   deadlines, and the header-read timer, one per connection;
//! - [`access`]: what each answered request leaves: its access-log line and
//!   its metrics;
//! - [`budget`]: the bytes all bodies in memory may hold together;
//! - [`authority`]: the one `Host` a request is for (RFC 9112 §3.2).

pub mod access;
pub mod authority;
pub mod budget;
pub mod connection;
pub mod convert;
pub mod respond;
pub mod timer;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use tokio::net::TcpStream;

use self::budget::BodyBudget;
use self::connection::{Activity, ClientStream};
use self::timer::ConnectionTimer;
use crate::metrics::Metrics;
use crate::pool::Pool;

pub use self::convert::Body;

/// What one client and one connection may do: the HTTP scope of the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Most client connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Largest request body, in bytes; larger gets 413.
    pub max_body: usize,
    /// Largest response body a guest may return, in bytes; larger gets 500.
    pub max_response: usize,
    /// Largest request head (request line and headers), in bytes; larger gets 431.
    pub max_header_size: usize,
    /// A client must send a whole request head within this, or is dropped.
    pub header_timeout: Duration,
    /// A keep-alive connection with no new request for this long is closed.
    pub idle_timeout: Duration,
    /// A client must send a request's whole body within this; else 408.
    pub body_timeout: Duration,
    /// A response the client takes nothing of for this long ends its connection.
    pub write_timeout: Duration,
    /// Most bytes request bodies being read may hold together, and as many
    /// for large response bodies being written; past either 503.
    pub max_buffered: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_body: 1024 * 1024,
            max_response: 16 * 1024 * 1024,
            max_header_size: 64 * 1024,
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_buffered: 256 * 1024 * 1024,
        }
    }
}

/// What every connection of a server shares: the pool that answers, the
/// metrics that count, the limits, and whether requests are logged.
pub struct Edge {
    pool: Arc<Pool>,
    metrics: Arc<Metrics>,
    limits: HttpLimits,
    access_log: bool,
    /// What request bodies being read may hold, and large responses not yet
    /// written: two budgets, so clients that send slowly cannot make
    /// answers fail, nor slow readers refuse bodies.
    requests: Arc<BodyBudget>,
    responses: Arc<BodyBudget>,
}

impl Edge {
    pub fn new(
        pool: Arc<Pool>,
        metrics: Arc<Metrics>,
        limits: HttpLimits,
        access_log: bool,
    ) -> Self {
        Edge {
            pool,
            metrics,
            limits,
            access_log,
            requests: BodyBudget::new(limits.max_buffered),
            responses: BodyBudget::new(limits.max_buffered),
        }
    }

    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// Default of `--max-connections`, and of `--max-pending`: a connection has
/// at most one request in the line, so the line can never be longer than
/// the connections are many, and the queue deadline is what bounds it.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The HTTP/1 settings every connection is served with.
pub fn builder(limits: &HttpLimits) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_size);
    http
}

/// Serves one accepted connection until it ends, its requests answered by
/// `edge`'s pool; `watcher` lets a graceful shutdown finish it.
pub fn serve_connection(
    stream: TcpStream,
    edge: Arc<Edge>,
    http: &http1::Builder,
    watcher: Watcher,
) -> impl Future<Output = Result<(), hyper::Error>> + Send + 'static {
    connection::tune_socket(&stream);
    let home = edge.pool.home_for_new_connection();
    let limits = edge.limits;
    let service = service_fn(move |request| {
        let edge = Arc::clone(&edge);
        async move { Ok::<_, Infallible>(answer(&edge, home, request).await) }
    });
    // Each connection has a timer of its own (see `timer`), sharing the
    // socket's read counter for the idle timeout.
    let activity = Activity::new();
    let stream = ClientStream::new(stream, activity.clone(), limits.write_timeout);
    let connection = http
        .clone()
        .timer(ConnectionTimer::with_idle_timeout(
            limits.idle_timeout,
            limits.header_timeout,
            activity,
        ))
        .serve_connection(TokioIo::new(stream), service);
    watcher.watch(connection)
}

/// Answers one request of a connection whose home task is `home`.
pub async fn answer(
    edge: &Edge,
    home: usize,
    request: Request<hyper::body::Incoming>,
) -> Response<Body> {
    let started = access::Started::new(&request, edge.access_log);
    let limits = &edge.limits;
    let read = convert::to_guest(
        request,
        limits.max_body,
        limits.body_timeout,
        &edge.requests,
    );
    let (response, task, waited) = match read.await {
        // The request body's bytes stay counted until the call is over,
        // even a call whose client left.
        Ok((request, body)) => {
            let called = edge.pool.call(home, request, body).await;
            let response = respond::respond(called.outcome, limits.max_response, &edge.responses);
            (response, called.task, called.waited)
        }
        Err(rejection) => (respond::reject(rejection), None, false),
    };
    started.finish(&edge.metrics, &response, task, waited);
    response
}
