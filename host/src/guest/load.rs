//! Loading the guest app once for all tasks.
//!
//! Compiling a component is the expensive step (tens of milliseconds), so it
//! happens once per version of the app: one `Component`, one linker resolved
//! into an [`AppPre`]. Every task then instantiates from that in
//! microseconds, and so does every replacement of a task's instance. The
//! [`Engine`] is made once per process ([`engine`]), so a reloaded app's
//! code runs under the same epoch as the watchdog's.
//!
//! An app is a component (`.wasm`), compiled here, or one precompiled by
//! `wasmhost compile` (`.cwasm`, see [`precompile`]), which is only mapped
//! into memory: wasmtime refuses one built by another version or with
//! another configuration, and that is its own [`LoadError`].
//!
//! Each way a file can fail to be a wasmhost app gets its own [`LoadError`],
//! so the user reads what is wrong rather than a wasmtime backtrace.

use std::path::{Path, PathBuf};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Cache, Config, Engine, Precompiled};

use super::bindings::{App, AppPre};
use super::state::TaskState;

/// Why a file cannot be run as a wasmhost app.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a WebAssembly file")]
    NotWasm { path: PathBuf },
    #[error(
        "{path} is a core WebAssembly module, not a component; build the app for the wasm32-wasip2 target"
    )]
    CoreModule { path: PathBuf },
    #[error("{path} is not a valid WebAssembly component: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path} needs an import wasmhost does not provide: {reason}")]
    UnknownImport { path: PathBuf, reason: String },
    #[error("{path} does not export the `wasmhost:app/handler` interface: {reason}")]
    NoHandler { path: PathBuf, reason: String },
    #[error(
        "{path} was precompiled by another version of wasmhost or wasmtime, or for another machine; compile it again with `wasmhost compile`: {reason}"
    )]
    Incompatible { path: PathBuf, reason: String },
    #[error("{path} is a precompiled core module, not a component")]
    PrecompiledModule { path: PathBuf },
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A compiled guest app, ready to be instantiated by any task.
#[derive(Clone)]
pub struct GuestApp {
    engine: Engine,
    pre: AppPre<TaskState>,
    /// Which load of the app this is: 1 at start, one more per reload.
    version: u64,
}

/// The engine every app of this process is compiled for. With `cache`, the
/// compiled code is kept in wasmtime's cache (`~/.cache/wasmtime`), so a
/// restart with the same app skips compilation.
pub fn engine(cache: bool) -> Result<Engine, LoadError> {
    Engine::new(&engine_config(cache)).map_err(|e| LoadError::Engine(one_line(&e)))
}

/// Compiles the component at `input` for this host and writes it to
/// `output` (`wasmhost compile`), so serving it skips compilation. Only a
/// file that would load as an app is written.
pub fn precompile(input: &Path, output: &Path) -> Result<(), LoadError> {
    let engine = engine(false)?;
    let AppBytes::Source(bytes) = read_component(input)? else {
        return Err(LoadError::Invalid {
            path: input.to_owned(),
            reason: "it is precompiled already".to_owned(),
        });
    };
    let component = Component::new(&engine, &bytes).map_err(|e| LoadError::Invalid {
        path: input.to_owned(),
        reason: one_line(&e),
    })?;
    link(&engine, &component, input)?;
    let compiled = component.serialize().map_err(|e| LoadError::Invalid {
        path: input.to_owned(),
        reason: one_line(&e),
    })?;
    std::fs::write(output, compiled).map_err(|source| LoadError::Write {
        path: output.to_owned(),
        source,
    })
}

/// An app file's bytes: a component to compile, or one compiled already.
enum AppBytes {
    Source(Vec<u8>),
    Precompiled(Vec<u8>),
}

/// The bytes of `path`, if they may be a component (compiled or not).
fn read_component(path: &Path) -> Result<AppBytes, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    match Engine::detect_precompiled(&bytes) {
        Some(Precompiled::Component) => return Ok(AppBytes::Precompiled(bytes)),
        Some(Precompiled::Module) => {
            return Err(LoadError::PrecompiledModule {
                path: path.to_owned(),
            });
        }
        None => {}
    }
    if bytes.len() < 8 || bytes[..4] != WASM_MAGIC {
        return Err(LoadError::NotWasm {
            path: path.to_owned(),
        });
    }
    if bytes[4..8] == CORE_MODULE_VERSION {
        return Err(LoadError::CoreModule {
            path: path.to_owned(),
        });
    }
    Ok(AppBytes::Source(bytes))
}

/// Links `component` against what wasmhost provides, checking it exports the handler.
fn link(
    engine: &Engine,
    component: &Component,
    path: &Path,
) -> Result<AppPre<TaskState>, LoadError> {
    let mut linker = Linker::<TaskState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .and_then(|()| App::add_to_linker::<TaskState, HasSelf<TaskState>>(&mut linker, |s| s))
        .map_err(|e| LoadError::Engine(one_line(&e)))?;
    let instance_pre = linker
        .instantiate_pre(component)
        .map_err(|e| LoadError::UnknownImport {
            path: path.to_owned(),
            reason: one_line(&e),
        })?;
    AppPre::new(instance_pre).map_err(|e| LoadError::NoHandler {
        path: path.to_owned(),
        reason: one_line(&e),
    })
}

/// The first bytes of every WebAssembly binary.
const WASM_MAGIC: [u8; 4] = *b"\0asm";
/// Bytes 4..8 of a core module (version 1); components use a different layer.
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

impl GuestApp {
    /// Reads, compiles (unless it is precompiled) and links the app at
    /// `path` for `engine`, as version `version`.
    pub fn load(engine: &Engine, path: &Path, version: u64) -> Result<Self, LoadError> {
        let component = match read_component(path)? {
            // SAFETY: wasmtime checks the header (its version, the engine's
            // settings, the target) and refuses what it cannot run; the file
            // is the operator's own, as trusted as this binary.
            AppBytes::Precompiled(bytes) => unsafe { Component::deserialize(engine, &bytes) }
                .map_err(|e| LoadError::Incompatible {
                    path: path.to_owned(),
                    reason: one_line(&e),
                })?,
            AppBytes::Source(bytes) => {
                Component::new(engine, &bytes).map_err(|e| LoadError::Invalid {
                    path: path.to_owned(),
                    reason: one_line(&e),
                })?
            }
        };
        let pre = link(engine, &component, path)?;
        Ok(GuestApp {
            engine: engine.clone(),
            pre,
            version,
        })
    }

    /// Which load of the app this is: 1 at start, one more per reload.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linked component, from which tasks instantiate.
    pub fn pre(&self) -> &AppPre<TaskState> {
        &self.pre
    }
}

fn engine_config(cache: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    if cache {
        // A cache that cannot be set up (no home directory, say) only costs
        // start-up time, so it is a warning, not an error.
        match Cache::from_file(None) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => tracing::warn!("compiling without a cache: {e:#}"),
        }
    }
    // Deadlines and yields (see `instance` and `watchdog`).
    config.epoch_interruption(true);
    // `WASMHOST_PERFMAP=1` writes /tmp/perf-<pid>.map so `perf` can name
    // guest functions (see BENCHMARKS.md).
    if std::env::var_os("WASMHOST_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// An error chain on one line, for messages a user reads.
fn one_line(error: &wasmtime::Error) -> String {
    format!("{error:#}").replace('\n', " ")
}
