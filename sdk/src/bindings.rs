//! Raw bindings to the `wasmhost:app` world (`wit/`), generated once here;
//! used by [`crate::export_app!`] and by the modules that call the host.
//! Guest code never needs them.

wit_bindgen::generate!({
    path: "../wit",
    world: "app",
    pub_export_macro: true,
    default_bindings_module: "wasmhost_sdk::bindings",
});
