//! `wasmhost:app/task`: which task runs the call, and how many there are.

use crate::guest::bindings::wasmhost::app::task;
use crate::guest::state::TaskState;

impl task::Host for TaskState {
    fn task_id(&mut self) -> u32 {
        self.context.id
    }

    fn task_count(&mut self) -> u32 {
        self.context.count
    }
}
