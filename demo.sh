#!/usr/bin/env bash
# Runs the seed demo app on 5 tasks: http://127.0.0.1:8080 (Ctrl-C stops it).
# Extra arguments go to wasmhost, e.g. `./demo.sh --listen 0.0.0.0:3000`.
set -euo pipefail
cd "$(dirname "$0")"
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --release --target wasm32-wasip2 -p guest-app
exec cargo run --release -p wasmhost -- --tasks 5 "$@" target/wasm32-wasip2/release/guest_app.wasm
