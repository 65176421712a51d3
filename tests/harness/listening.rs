//! A child server started by a test: its output gathered into a log as it
//! comes (so a full pipe never blocks it), the `listening on http://…` line
//! it prints on stdout awaited under a deadline, and the process killed when
//! dropped. The `wasmhost` binary and the Node app of the interop tests both
//! announce themselves this way.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running child server.
pub struct Listening {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, from its `listening on` line.
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Listening {
    /// Waits up to `timeout` for `child` (spawned with stdout and stderr
    /// piped) to print `listening on http://…`. If it does not, or exits
    /// first, kills it and returns everything it wrote, stderr and stdout
    /// (stdout lines prefixed `stdout: `), with how it ended.
    pub fn wait(mut child: Child, timeout: Duration) -> Result<Listening, String> {
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&log);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                append(&sink, "", &line);
            }
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match line.find("listening on http://") {
                    Some(at) => {
                        let _ = tx.send(line[at + "listening on ".len()..].trim().to_owned());
                    }
                    None => append(&sink, "stdout: ", &line),
                }
            }
        });
        // A closed stdout (the child exited) ends the wait at once.
        match rx.recv_timeout(timeout) {
            Ok(base) => Ok(Listening { child, base, log }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                let _ = stderr_reader.join();
                let log = log.lock().unwrap_or_else(|e| e.into_inner());
                Err(format!("({status:?}); its output:\n{log}"))
            }
        }
    }

    /// The URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the server has written so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn append(log: &Mutex<String>, prefix: &str, line: &str) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.push_str(prefix);
    log.push_str(line);
    log.push('\n');
}
