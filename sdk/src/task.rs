//! Which task runs this request: [`task_id`] and [`task_count`], asked of
//! the host once per instance.

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// The task id and count never change for an instance, so they are asked
    /// of the host once rather than on every request.
    static TASK: std::cell::OnceCell<(u32, u32)> = const { std::cell::OnceCell::new() };
}

#[cfg(target_arch = "wasm32")]
fn task() -> (u32, u32) {
    use crate::bindings::wasmhost::app::task as host;
    TASK.with(|task| *task.get_or_init(|| (host::task_id(), host::task_count())))
}

/// Off wasm, the test host's task ([`crate::testing::set_task`]).
#[cfg(not(target_arch = "wasm32"))]
fn task() -> (u32, u32) {
    crate::testing::task()
}

/// This task's id, `0..task_count()`, like JXcore's `process.threadId`.
///
/// A task keeps its id for as long as the host runs, also when its instance
/// is replaced. The host is asked once per instance; later calls are free.
/// Off wasm, in a guest's unit tests, it is the test host's
/// ([`crate::testing::set_task`]).
///
/// ```no_run
/// use wasmhost_sdk::{App, Json, task_count, task_id};
///
/// fn app() -> App {
///     App::new().get("/whoami", |_| {
///         Json(serde_json::json!({ "task": task_id(), "of": task_count() }))
///     })
/// }
/// ```
pub fn task_id() -> u32 {
    task().0
}

/// How many tasks the host runs: its `--tasks` option.
///
/// Off wasm, in a guest's unit tests, it is the test host's
/// ([`crate::testing::set_task`]).
///
/// ```no_run
/// use wasmhost_sdk::{task_count, task_id};
///
/// // Split work between the tasks: this one takes every `task_count()`th job.
/// let mine: Vec<u32> = (0..100).filter(|job| job % task_count() == task_id()).collect();
/// # let _ = mine;
/// ```
pub fn task_count() -> u32 {
    task().1
}
