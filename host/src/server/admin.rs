//! The admin endpoint (`--admin-listen`, off by default): what an operator's
//! tools ask of a running host, on a listener of its own so it is never
//! reachable through the app's port.
//!
//! - `GET /metrics`: every metric in Prometheus's text format (see `metrics`).
//! - `GET /healthz`: 200 while the process serves at all.
//! - `GET /readyz`: 200 only when every task holds an instance and the store
//!   answers, 503 otherwise; either way a JSON body says which, and which
//!   version of the app serves.
//!
//! It is for operators, but it still faces a network: a head must come within
//! a few seconds, a connection lives at most [`CONNECTION_DEADLINE`] however
//! slowly its client reads, connections are capped at a number well above
//! what monitoring opens, and nothing a client sends is echoed back. So
//! clients that never read `/metrics` hold their slots for seconds, not for
//! ever, and a liveness probe's `/healthz` finds a slot.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::debug;

use crate::http::respond::plain;
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::store::SharedStore;

/// Most admin connections open at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 256;

/// Longest an admin connection lives, from accept to its answer written.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);

/// An admin client must send its request head within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `/readyz` waits for the store to answer.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The admin endpoint of one server; see the module documentation.
#[derive(Clone)]
pub struct Admin {
    pool: Arc<Pool>,
    metrics: Arc<Metrics>,
    store: SharedStore,
}

impl Admin {
    pub(super) fn new(pool: Arc<Pool>, metrics: Arc<Metrics>, store: SharedStore) -> Admin {
        Admin {
            pool,
            metrics,
            store,
        }
    }

    /// Serves `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .keep_alive(false);
        super::accept::accept_until(&listener, MAX_CONNECTIONS, shutdown, |stream, slot| {
            let admin = self.clone();
            let connection = http.serve_connection(
                TokioIo::new(stream),
                service_fn(move |request| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.answer(request).await) }
                }),
            );
            tokio::spawn(async move {
                match tokio::time::timeout(CONNECTION_DEADLINE, connection).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => debug!("admin connection ended: {e}"),
                    Err(_) => debug!("admin connection closed: past its deadline"),
                }
                drop(slot);
            });
        })
        .await;
        Ok(())
    }

    async fn answer<B>(&self, request: Request<B>) -> Response<Full<Bytes>> {
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match request.uri().path() {
            "/metrics" => self.metrics(),
            "/healthz" => plain(StatusCode::OK, "ok\n"),
            "/readyz" => self.readiness().await,
            _ => plain(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /healthz or /readyz\n",
            ),
        }
    }

    fn metrics(&self) -> Response<Full<Bytes>> {
        // Values that are a state, not a count, are read now.
        let gauge = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        self.metrics.waiting.set(gauge(self.pool.waiting()));
        self.metrics.instances.set(gauge(self.pool.instances()));
        if let SharedStore::Memory(store) = &self.store {
            self.metrics.store_entries.set(gauge(store.len()));
            self.metrics.store_bytes.set(gauge(store.bytes()));
        }
        let mut response = Response::new(Full::new(Bytes::from(self.metrics.encode())));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        response
    }

    async fn readiness(&self) -> Response<Full<Bytes>> {
        let tasks = self.pool.tasks();
        let instances = self.pool.instances();
        let store = match tokio::time::timeout(STORE_CHECK_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {}",
                humantime::format_duration(STORE_CHECK_TIMEOUT)
            )),
        };
        let ready = instances == tasks && store.is_ok();
        let body = serde_json::json!({
            "ready": ready,
            "tasks": tasks,
            "instances": instances,
            "store": match &store {
                Ok(()) => "ok".to_owned(),
                Err(why) => why.clone(),
            },
            "app_version": self.pool.version(),
        });
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut response = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}
