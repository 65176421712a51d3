//! The server: a started pool and its store, serving connections from a
//! listener until a shutdown future resolves, then draining them.
//!
//! Like mini-redis's `server::run`, it takes the listener and the shutdown
//! future from its caller: the binary binds the address and passes a future
//! of SIGINT/SIGTERM, a test binds port 0 and passes a channel. Nothing here
//! touches signals or prints. Start-up ([`Server::start`]) does everything
//! that can fail before a client is accepted: compile the guest, open the
//! store (reaching Redis, if it is one), instantiate every task.
//!
//! One cancellation token stops the background work: the server cancels it
//! once the drain is over (or when it is dropped), which stops the
//! watchdog and the `--watch` loop; the memory store's purge thread stops
//! with the store.
//!
//! Beside serving, a started server hands out its [`Admin`] endpoint (served
//! on a listener of the caller's, `--admin-listen`) and a [`Reloader`] that
//! swaps the app without dropping a request (the binary calls it on SIGHUP;
//! `--watch` calls it when the file changes).

mod accept;
mod admin;
mod reload;

pub use accept::listen;
pub use admin::Admin;
pub use reload::{ReloadError, Reloader};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::guest::{self, AppContext, GuestApp, LoadError};
use crate::http::{self, Edge, HttpLimits};
use crate::metrics::Metrics;
use crate::pool::{self, Pool};
use crate::store::{self, ConnectError, SharedStore};

/// Why a server could not start; each says what is wrong in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] ConnectError),
    #[error(transparent)]
    Pool(#[from] pool::StartError),
}

/// A started server, ready to serve.
pub struct Server {
    edge: Arc<Edge>,
    http: HttpLimits,
    store: SharedStore,
    reloader: Reloader,
    watch: bool,
    drain_timeout: Duration,
    /// The app's file, for the log.
    app: String,
    tasks: u32,
    stop: CancellationToken,
}

impl Server {
    /// Loads the app, opens the store and starts every task's instance.
    /// Call it on the multi-thread runtime that will serve.
    pub async fn start(config: &Config) -> Result<Server, StartError> {
        let engine = guest::engine(config.process.cache)?;
        let precompiled = config.process.precompiled;
        let guest = GuestApp::load(&engine, &config.app, 1, precompiled)?;
        let app_store = store::open(&config.store).await?;
        let store = app_store.backend().clone();
        let metrics = Arc::new(Metrics::new(config.pool.tasks.max(1)));
        let app = AppContext {
            env: config.env.clone(),
            limits: config.call,
            max_response: config.http.max_response,
            outbound: Arc::new(guest::OutboundPolicy::new(&config.outbound)),
            metrics: guest::GuestMetrics::new(&metrics, &store),
            store: app_store,
        };
        let stop = CancellationToken::new();
        let pool = Pool::start(
            guest,
            app,
            config.pool,
            Arc::clone(&metrics),
            stop.child_token(),
        )
        .await?;
        let pool = Arc::new(pool);
        let reloader = Reloader::new(
            config.app.clone(),
            engine,
            precompiled,
            Arc::clone(&pool),
            Arc::clone(&metrics),
        );
        Ok(Server {
            edge: Arc::new(Edge::new(pool, metrics, config.http, config.access_log)),
            http: config.http,
            store,
            reloader,
            watch: config.watch,
            drain_timeout: config.process.drain_timeout,
            app: config.app.display().to_string(),
            tasks: config.pool.tasks,
            stop,
        })
    }

    /// The admin endpoint of this server, to serve on a listener of its own.
    pub fn admin(&self) -> Admin {
        Admin::new(
            Arc::clone(self.edge.pool()),
            Arc::clone(self.edge.metrics()),
            self.store.clone(),
        )
    }

    /// What reloads this server's app.
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Serves `listener` until `shutdown` resolves, then stops accepting
    /// and lets in-flight requests finish, up to the drain timeout.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let addr: SocketAddr = listener.local_addr()?;
        info!(tasks = self.tasks, %addr, "serving {}", self.app);
        if self.watch {
            tokio::spawn(self.reloader.clone().watch(self.stop.child_token()));
        }
        let http = http::builder(&self.http);
        let connections = GracefulShutdown::new();
        accept::accept_until(
            &listener,
            self.http.max_connections,
            shutdown,
            |stream, slot| self.spawn_connection(stream, slot, &http, &connections),
        )
        .await;

        // Stop accepting, then let in-flight requests finish.
        drop(listener);
        if tokio::time::timeout(self.drain_timeout, connections.shutdown())
            .await
            .is_err()
        {
            warn!(
                "requests still in flight after the drain timeout of {:?}; closing them",
                self.drain_timeout
            );
        }
        for (task, stats) in self.edge.pool().stats() {
            info!(
                task,
                served = stats.served.load(std::sync::atomic::Ordering::Relaxed),
                replaced = stats.replaced.load(std::sync::atomic::Ordering::Relaxed),
                "task stopped"
            );
        }
        Ok(())
    }

    fn spawn_connection(
        &self,
        stream: TcpStream,
        open_slot: OwnedSemaphorePermit,
        http: &http1::Builder,
        connections: &GracefulShutdown,
    ) {
        let connection =
            http::serve_connection(stream, Arc::clone(&self.edge), http, connections.watcher());
        let open = self.edge.metrics().connections.clone();
        open.inc();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!("connection ended: {e}");
            }
            open.dec();
            drop(open_slot);
        });
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
