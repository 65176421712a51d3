//! Reloading the app without dropping a request: on SIGHUP (the binary asks
//! a [`Reloader`]) or, with `--watch`, when the app file changes.
//!
//! A reload waits for the file to hold still, reads it once, whole, and
//! compiles it on a blocking thread, off the workers that serve requests,
//! and links it (a file that changed while it was read is read again); then the pool starts one
//! instance of it, on a task it leases like a request, before anything
//! changes. Only when that instance is up does the new version become the
//! pool's: each task's instance is replaced as it becomes idle, so requests
//! in flight finish on the old code and later ones run on the new. Sessions
//! live in the store, not in instances, so they stay. A file that does not
//! load, or whose instance does not start, is logged with its one-line reason
//! and the old app serves on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{error, info};
use wasmtime::Engine;

use crate::guest::{GuestApp, LoadError, Precompiled};
use crate::metrics::Metrics;
use crate::pool::Pool;

/// How often `--watch` looks at the app file.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Why a reload left the old app serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the new app did not start: {0}")]
    Start(String),
    #[error("the compiler thread failed: {0}")]
    Thread(String),
}

/// Reloads one server's app; cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    engine: Engine,
    precompiled: Precompiled,
    pool: Arc<Pool>,
    metrics: Arc<Metrics>,
    /// One reload at a time: a SIGHUP during a `--watch` reload waits.
    running: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub(super) fn new(
        path: PathBuf,
        engine: Engine,
        precompiled: Precompiled,
        pool: Arc<Pool>,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        Reloader {
            inner: Arc::new(Inner {
                path,
                engine,
                precompiled,
                pool,
                metrics,
                running: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Loads the app file again and makes it the one the tasks serve;
    /// returns its version. On failure the old app keeps serving; the
    /// failure is logged and counted here, so callers need not.
    pub async fn reload(&self) -> Result<u64, ReloadError> {
        let inner = &self.inner;
        let _one_at_a_time = inner.running.lock().await;
        let result = self.load_and_swap().await;
        match &result {
            Ok(version) => {
                inner.metrics.reload("ok");
                info!(version, "app reloaded from {}", inner.path.display());
            }
            Err(e) => {
                inner.metrics.reload("failed");
                error!(
                    "reload of {} failed, the running app serves on: {e}",
                    inner.path.display()
                );
            }
        }
        result
    }

    async fn load_and_swap(&self) -> Result<u64, ReloadError> {
        let inner = &self.inner;
        let version = inner.pool.version() + 1;
        let app = self.load_settled(version).await?;
        inner.pool.reload(app).await.map_err(ReloadError::Start)?;
        inner
            .metrics
            .app_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
        Ok(version)
    }

    /// Loads the app file once it has held still for one look, reading it
    /// once, whole; if it changed while it was read (a copy still under
    /// way), it is read again once it holds still, so a half-written file is
    /// never taken for the app.
    async fn load_settled(&self, version: u64) -> Result<GuestApp, ReloadError> {
        let inner = &self.inner;
        let mut attempts = 0;
        loop {
            let before = settled(&inner.path).await;
            let (engine, path, precompiled) =
                (inner.engine.clone(), inner.path.clone(), inner.precompiled);
            let loaded = tokio::task::spawn_blocking(move || {
                GuestApp::load(&engine, &path, version, precompiled)
            })
            .await
            .map_err(|e| ReloadError::Thread(e.to_string()))?;
            attempts += 1;
            if Stamp::of(&inner.path) == before || attempts == SETTLE_ATTEMPTS {
                return Ok(loaded?);
            }
        }
    }

    /// Reloads whenever the app file changes, until `stop` is cancelled
    /// (`--watch`). A change is acted on once the file has stayed the same
    /// for one look, so a file still being written is not loaded half-way.
    pub async fn watch(self, stop: CancellationToken) {
        let path = self.inner.path.clone();
        let mut loaded = Stamp::of(&path);
        let mut seen = loaded;
        let mut ticks = tokio::time::interval(WATCH_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        info!("watching {} for changes", path.display());
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.cancelled() => return,
            }
            let now = Stamp::of(&path);
            // Settled (the same as the last look) and different from what
            // was loaded: reload. A missing file (mid-replacement) waits.
            if now.is_some() && now == seen && now != loaded {
                loaded = now;
                // Failures are logged by `reload`; the old app serves on.
                let _ = self.reload().await;
            }
            seen = now;
        }
    }
}

/// Most times a reload reads a file that keeps changing before it gives up
/// (and reports what the last read found).
const SETTLE_ATTEMPTS: usize = 8;

/// The file's stamp once two looks [`WATCH_INTERVAL`] apart agree (or after
/// [`SETTLE_ATTEMPTS`] looks, if it never holds still).
async fn settled(path: &Path) -> Option<Stamp> {
    let mut seen = Stamp::of(path);
    for _ in 0..SETTLE_ATTEMPTS {
        tokio::time::sleep(WATCH_INTERVAL).await;
        let now = Stamp::of(path);
        if now == seen {
            return now;
        }
        seen = now;
    }
    seen
}

/// What identifies one version of a file without reading it: a replaced
/// file (written anew, or renamed over) changes at least one of these.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
        })
    }
}
