//! The real server run inside the test process, for tests that need no
//! process boundary (no signal, no exit code, no log line to read): the
//! same `Server` the binary runs, started from a `Config` parsed from the
//! same arguments, serving a listener on a free port until the test's
//! handle is dropped.

use std::path::Path;
use std::thread::JoinHandle;

use clap::Parser;
use tokio::sync::oneshot;
use wasmhost::cli::Cli;
use wasmhost::{Config, Server};

/// A server running on a runtime of its own, on a thread of the test.
pub struct InProcess {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    /// Starts the server for `app` with the command-line `args`, on a free
    /// port, and waits until it serves.
    pub fn start(app: &Path, args: &[&str]) -> InProcess {
        let mut argv = vec!["wasmhost", "--listen", "127.0.0.1:0"];
        argv.extend_from_slice(args);
        let app = app.to_str().expect("the app's path is UTF-8");
        argv.push(app);
        let config = Config::try_from(Cli::parse_from(argv)).expect("the arguments are valid");
        InProcess::with_config(config)
    }

    /// Starts the server for `config` (its listen address is ignored: a
    /// free port is used).
    pub fn with_config(config: Config) -> InProcess {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, ready_rx) = std::sync::mpsc::channel::<Result<String, String>>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(config.process.threads)
                .enable_all()
                .build()
                .expect("a runtime starts");
            runtime.block_on(async move {
                let server = match Server::start(&config).await {
                    Ok(server) => server,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                };
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("a free port");
                let addr = listener.local_addr().expect("a bound address");
                let _ = ready.send(Ok(format!("http://{addr}")));
                let shutdown = async move {
                    let _ = stopped.await;
                };
                server
                    .serve(listener, shutdown)
                    .await
                    .expect("the server serves");
            });
        });
        let base = match ready_rx.recv() {
            Ok(Ok(base)) => base,
            Ok(Err(why)) => panic!("the server did not start: {why}"),
            Err(_) => panic!("the server thread ended before it started"),
        };
        InProcess {
            base,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
