//! One task's instance of the guest: a wasmtime `Store` and the app in it.
//!
//! The instance persists across requests, so a call costs about a microsecond
//! instead of an instantiation per request. After a trap the component model
//! forbids entering the instance again, so the task replaces it with a fresh
//! one from the shared `AppPre`: the guest's memory starts over, the shared
//! store and the other tasks are untouched.

use wasmtime::Store;

use crate::guest::{App, GuestApp, Request, Response};
use crate::state::{TaskIdentity, TaskState};

pub struct TaskInstance {
    store: Store<TaskState>,
    app: App,
}

impl TaskInstance {
    /// Instantiates the guest for the task `identity`.
    pub async fn new(guest: &GuestApp, identity: &TaskIdentity) -> wasmtime::Result<Self> {
        let mut store = Store::new(guest.engine(), TaskState::new(identity.clone()));
        let app = guest.pre().instantiate_async(&mut store).await?;
        Ok(TaskInstance { store, app })
    }

    /// Runs one request through the guest. An error is a trap: the instance
    /// must not be used again.
    pub async fn handle(&mut self, request: &Request) -> wasmtime::Result<Response> {
        self.app
            .wasmhost_app_handler()
            .call_handle(&mut self.store, request)
            .await
    }
}
