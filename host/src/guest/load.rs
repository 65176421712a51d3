//! Loading the guest app once for all tasks.
//!
//! Compiling a component is the expensive step (tens of milliseconds), so it
//! happens once per version of the app: one `Component`, one linker resolved
//! into the pre-instance of its world ([`Pre`]). Every task then
//! instantiates from that in microseconds, and so does every replacement of
//! a task's instance. The world is read off the component's exports: the
//! `wasmhost:app/handler` of wasmhost's own world, else a standard
//! `wasi:http/incoming-handler` (WASI 0.2). Both kinds get the same imports:
//! WASI, `wasi:http` (outbound refused), and wasmhost's `store`, `task` and
//! `crypto`. The
//! [`Engine`] is made once per process ([`engine`]), so a reloaded app's
//! code runs under the same epoch as the watchdog's.
//!
//! An app is a component (`.wasm`), compiled here, or one precompiled by
//! `wasmhost compile` (`.cwasm`, see [`precompile`]), which is only mapped
//! into memory: wasmtime refuses one built by another version or with
//! another configuration, and that is its own [`LoadError`]. Precompiled
//! code is machine code run as is, outside the sandbox, so it is loaded only
//! when the operator says so ([`Precompiled::Allow`], `--allow-precompiled`),
//! whatever the file is named: the file's content decides what it is, and a
//! `.cwasm` renamed `app.wasm` must not slip through.
//!
//! An app file is read once, whole, and at most [`MAX_APP_BYTES`] of it;
//! compiling it runs on a thread of its own for at most [`COMPILE_TIMEOUT`],
//! so a hostile file can neither fill memory nor hold start-up or a reload
//! forever.
//!
//! Each way a file can fail to be a wasmhost app gets its own [`LoadError`],
//! so the user reads what is wrong rather than a wasmtime backtrace.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Cache, Config, Engine};

use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::bindings::{Hosted, HostedPre};
use super::state::TaskState;
use crate::log_text::one_line;

/// Why a file cannot be run as a wasmhost app.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
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
    #[error(
        "{path} exports neither `wasmhost:app/handler` (a Rust guest exports it with `wasmhost_sdk::export_app!(app);` in its src/lib.rs) nor `wasi:http/incoming-handler`: {reason}"
    )]
    NoHandler { path: PathBuf, reason: String },
    #[error(
        "{path} was precompiled by another version of wasmhost or wasmtime, or for another machine; compile it again with `wasmhost compile`: {reason}"
    )]
    Incompatible { path: PathBuf, reason: String },
    #[error("{path} is a precompiled core module, not a component")]
    PrecompiledModule { path: PathBuf },
    #[error(
        "{path} is precompiled machine code, which runs outside the sandbox; serve it only if you compiled it yourself, with --allow-precompiled"
    )]
    PrecompiledRefused { path: PathBuf },
    #[error("{path} is larger than {limit} bytes, the most an app file may be")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("compiling {path} took longer than {} s (or one that did still runs)", .limit.as_secs())]
    CompileTimeout { path: PathBuf, limit: Duration },
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Whether an app file may be precompiled machine code (`--allow-precompiled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precompiled {
    /// Only components, compiled here: a precompiled file is refused.
    Refuse,
    /// A file `wasmhost compile` wrote is mapped and run as is.
    Allow,
}

/// Largest app file read: the biggest components toolchains make today are
/// a few tens of MiB (an interpreter with its standard library).
pub const MAX_APP_BYTES: u64 = 256 * 1024 * 1024;

/// Longest compilation of an app before it is given up.
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(300);

/// A compiled guest app, ready to be instantiated by any task.
#[derive(Clone)]
pub struct GuestApp {
    engine: Engine,
    pre: Pre,
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
    let component = compile(&engine, bytes, input)?;
    link(&engine, &component, input)?;
    let compiled = component.serialize().map_err(|e| LoadError::Invalid {
        path: input.to_owned(),
        reason: one_line(&e),
    })?;
    std::fs::write(output, compiled).map_err(|error| LoadError::Write {
        path: output.to_owned(),
        error,
    })
}

/// An app file's bytes: a component to compile, or one compiled already.
enum AppBytes {
    Source(Vec<u8>),
    Precompiled(Vec<u8>),
}

/// The bytes of `path`, if they may be a component (compiled or not).
fn read_component(path: &Path) -> Result<AppBytes, LoadError> {
    let bytes = read_bounded(path)?;
    match Engine::detect_precompiled(&bytes) {
        Some(wasmtime::Precompiled::Component) => return Ok(AppBytes::Precompiled(bytes)),
        Some(wasmtime::Precompiled::Module) => {
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

/// The whole file at `path`, read once, or an error if it holds more than
/// [`MAX_APP_BYTES`] (checked while reading, so a file that grows meanwhile
/// is cut off too).
fn read_bounded(path: &Path) -> Result<Vec<u8>, LoadError> {
    let read_error = |error| LoadError::Read {
        path: path.to_owned(),
        error,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_APP_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_APP_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            limit: MAX_APP_BYTES,
        });
    }
    Ok(bytes)
}

/// Compilations given up on at their deadline whose threads still run.
static ABANDONED: AtomicUsize = AtomicUsize::new(0);

/// Compiles `bytes` on a thread of its own, waiting at most
/// [`COMPILE_TIMEOUT`]: wasmtime's compiler cannot be stopped, so past the
/// deadline its thread is left to finish and its result thrown away. While
/// such a thread runs, no other compilation starts, so reloads of a file
/// that never compiles in time cannot pile up compiler threads.
fn compile(engine: &Engine, bytes: Vec<u8>, path: &Path) -> Result<Component, LoadError> {
    if ABANDONED.load(Ordering::Acquire) > 0 {
        return Err(LoadError::CompileTimeout {
            path: path.to_owned(),
            limit: COMPILE_TIMEOUT,
        });
    }
    let (done, result) = std::sync::mpsc::sync_channel(1);
    // Set by whichever of the two ends first: the compiler, or the wait.
    let ended = Arc::new(AtomicBool::new(false));
    let compiler_ended = Arc::clone(&ended);
    let engine = engine.clone();
    std::thread::Builder::new()
        .name("wasmhost-compile".to_owned())
        .spawn(move || {
            let compiled = Component::new(&engine, &bytes);
            if compiler_ended.swap(true, Ordering::AcqRel) {
                ABANDONED.fetch_sub(1, Ordering::AcqRel);
            }
            // The receiver is gone only after a timeout: nothing to report.
            let _ = done.send(compiled);
        })
        .map_err(|e| LoadError::Engine(format!("cannot start the compiler thread: {e}")))?;
    match result.recv_timeout(COMPILE_TIMEOUT) {
        Ok(compiled) => compiled.map_err(|e| LoadError::Invalid {
            path: path.to_owned(),
            reason: one_line(&e),
        }),
        Err(_) => {
            ABANDONED.fetch_add(1, Ordering::AcqRel);
            if ended.swap(true, Ordering::AcqRel) {
                // The compiler ended just now after all.
                ABANDONED.fetch_sub(1, Ordering::AcqRel);
            }
            Err(LoadError::CompileTimeout {
                path: path.to_owned(),
                limit: COMPILE_TIMEOUT,
            })
        }
    }
}

/// Which world a guest is of, linked and ready to instantiate.
#[derive(Clone)]
pub enum Pre {
    /// wasmhost's own `wasmhost:app/app`.
    App(HostedPre<TaskState>),
    /// A standard `wasi:http/incoming-handler` component (WASI 0.2).
    WasiHttp(ProxyPre<TaskState>),
}

/// Links `component` against what wasmhost provides, and tells which
/// handler it exports.
fn link(engine: &Engine, component: &Component, path: &Path) -> Result<Pre, LoadError> {
    let mut linker = Linker::<TaskState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
        .and_then(|()| Hosted::add_to_linker::<TaskState, HasSelf<TaskState>>(&mut linker, |s| s))
        .map_err(|e| LoadError::Engine(one_line(&e)))?;
    let instance_pre = linker
        .instantiate_pre(component)
        .map_err(|e| LoadError::UnknownImport {
            path: path.to_owned(),
            reason: one_line(&e),
        })?;
    match HostedPre::new(instance_pre.clone()) {
        Ok(pre) => Ok(Pre::App(pre)),
        Err(own) => {
            ProxyPre::new(instance_pre)
                .map(Pre::WasiHttp)
                .map_err(|_| LoadError::NoHandler {
                    path: path.to_owned(),
                    reason: one_line(&own),
                })
        }
    }
}

/// The first bytes of every WebAssembly binary.
const WASM_MAGIC: [u8; 4] = *b"\0asm";
/// Bytes 4..8 of a core module (version 1); components use a different layer.
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

impl GuestApp {
    /// Reads, compiles (unless it is precompiled and `precompiled` allows
    /// that) and links the app at `path` for `engine`, as version `version`.
    pub fn load(
        engine: &Engine,
        path: &Path,
        version: u64,
        precompiled: Precompiled,
    ) -> Result<Self, LoadError> {
        let component = match (read_component(path)?, precompiled) {
            (AppBytes::Precompiled(_), Precompiled::Refuse) => {
                return Err(LoadError::PrecompiledRefused {
                    path: path.to_owned(),
                });
            }
            // SAFETY: wasmtime checks the header (its version, the engine's
            // settings, the target) and refuses what it cannot run; beyond
            // that the bytes are trusted as machine code, which the operator
            // vouched for with `--allow-precompiled`.
            (AppBytes::Precompiled(bytes), Precompiled::Allow) => unsafe {
                Component::deserialize(engine, &bytes)
            }
            .map_err(|e| LoadError::Incompatible {
                path: path.to_owned(),
                reason: one_line(&e),
            })?,
            (AppBytes::Source(bytes), _) => compile(engine, bytes, path)?,
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
    pub fn pre(&self) -> &Pre {
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
