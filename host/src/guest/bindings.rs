//! The host side of the `wasmhost:app/hosted` world (`wit/app.wit`: the
//! `app` world and `wasi:keyvalue`), generated once; everything else in
//! `guest/` builds on these types.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "hosted",
    // Store calls are async so that a networked backend never blocks a
    // worker thread; `task` and `crypto` answer at once.
    // HMAC may trap: its input is capped (see `imports/crypto.rs`).
    imports: {
        "wasmhost:app/store": async,
        "wasmhost:app/crypto.hmac-sha256": trappable,
        "wasi:keyvalue/store": async | trappable,
        "wasi:keyvalue/atomics": async | trappable,
        "wasi:keyvalue/batch": async | trappable,
    },
    with: {
        "wasi:keyvalue/store.bucket": Bucket,
        "wasi:keyvalue/atomics.cas": Cas,
    },
    exports: { default: async },
});

/// A `wasi:keyvalue` bucket held by a guest: the namespace its keys live
/// under in the app's store (see `imports/keyvalue.rs`).
pub struct Bucket {
    /// What goes before each key: empty for the `default` bucket, else
    /// the bucket's name and a `:`.
    pub namespace: String,
}

/// A `wasi:keyvalue` compare-and-swap handle: a key, with its namespace,
/// and the value it held when the handle was made.
pub struct Cas {
    pub key: String,
    pub current: Option<String>,
}
