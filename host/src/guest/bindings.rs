//! The host side of the `wasmhost:app/app` world (`wit/app.wit`), generated
//! once; everything else in `guest/` builds on these types.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "app",
    // Store calls are async so that a networked backend never blocks a
    // worker thread; `task` and `crypto` answer at once.
    // HMAC may trap: its input is capped (see `imports/crypto.rs`).
    imports: {
        "wasmhost:app/store": async,
        "wasmhost:app/crypto.hmac-sha256": trappable,
    },
    exports: { default: async },
});
