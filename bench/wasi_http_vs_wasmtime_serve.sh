#!/usr/bin/env bash
# Issue 24's benchmark: one standard wasi:http component (bench/http-hello,
# the seed's `GET /` answer) on wasmhost and on `wasmtime serve` 48, the
# latter at its defaults (an instance per request) and at its best (the
# pooling allocator, instances reused up to 1,000,000 times), beside
# wasmhost's own world (the seed app's `GET /`, no session) — in one run,
# three rounds, `wrk -t1 -c32` for 8 s after a 2 s warm-up, each server
# pinned to core 0 with 1 thread (`taskset`), wrk to core 1 (BENCHMARKS.md).
# wasmtime serve gets `-S cli` (the WASI CLI interfaces, which Rust's std
# imports; wasmhost links them always).
# First it checks that wasmtime serve and wasmhost answer the same bytes
# (status, headers but `date`, body).
#
#   cargo build --profile dist -p wasmhost
#   cargo build --profile dist --target wasm32-wasip2 -p http-hello -p guest-app
#   bench/wasi_http_vs_wasmtime_serve.sh
#
# Needs wrk, curl and taskset; installs wasmtime-cli 48 with cargo into
# target/wasmtime-cli when WASMTIME does not name one (not part of CI).
set -euo pipefail
cd "$(dirname "$0")/.."
wasmhost=target/dist/wasmhost
component=target/wasm32-wasip2/dist/http_hello.wasm
seed=target/wasm32-wasip2/dist/guest_app.wasm
port=18095
duration=${DURATION:-8s}
if [[ -z "${WASMTIME:-}" ]]; then
    WASMTIME=target/wasmtime-cli/bin/wasmtime
    if [[ ! -x "$WASMTIME" ]]; then
        cargo install wasmtime-cli --version 48.0.8 --locked --root target/wasmtime-cli
    fi
fi
"$WASMTIME" --version
if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "something already listens on port $port" >&2
    exit 1
fi
# The server running now, stopped however the script ends.
pid=
trap '[[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null; true' EXIT

start_wasmhost() {
    taskset -c 0 "$wasmhost" --threads 1 --tasks 1 --listen "127.0.0.1:$port" "$component" \
        >/dev/null 2>&1 &
    echo $!
}

start_seed() {
    taskset -c 0 "$wasmhost" --threads 1 --tasks 1 --listen "127.0.0.1:$port" \
        --env SESSION_SECRET=bench "$seed" >/dev/null 2>&1 &
    echo $!
}

start_serve_default() {
    taskset -c 0 "$WASMTIME" serve -S cli --addr "127.0.0.1:$port" "$component" >/dev/null 2>&1 &
    echo $!
}

start_serve_best() {
    taskset -c 0 "$WASMTIME" serve -S cli --addr "127.0.0.1:$port" -O pooling-allocator=y \
        --max-instance-reuse-count 1000000 "$component" >/dev/null 2>&1 &
    echo $!
}

# Waits until server $1 answers (and is still the one running).
wait_up() {
    for _ in $(seq 300); do
        kill -0 "$1" 2>/dev/null || break
        curl -s -o /dev/null "http://127.0.0.1:$port/" && return
        sleep 0.1
    done
    echo "the server did not come up" >&2
    exit 1
}

# Stops server $1 and waits until it is gone (it is not this shell's
# child, so `wait` cannot): a server still draining would answer for the
# next one.
stop() {
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    while kill -0 "$1" 2>/dev/null; do sleep 0.1; done
    sleep 0.5
}

# The same bytes from both hosts: status line, headers but `date`, body.
answer() {
    curl -s -i "http://127.0.0.1:$port/" | tr -d '\r' | grep -iv '^date:' | sort
}
pid=$(start_wasmhost); wait_up "$pid"; from_wasmhost=$(answer); stop "$pid"
pid=$(start_serve_default); wait_up "$pid"; from_serve=$(answer); stop "$pid"
if [[ "$from_wasmhost" == "$from_serve" ]]; then
    echo "same answer from both:"; echo "$from_wasmhost" | sed 's/^/    /'
else
    echo "answers differ:"; diff <(echo "$from_wasmhost") <(echo "$from_serve") || true
fi

# CPU time (user + system, in clock ticks) process $1 has used so far.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# One measured run of server $1 (a start function), printed as $2: requests
# per second, and the server's CPU time per request, which stays honest when
# the load generator rather than the server sets the pace.
run() {
    local before out requests after
    pid=$($1)
    wait_up "$pid"
    taskset -c 1 wrk -t1 -c32 -d2s "http://127.0.0.1:$port/" >/dev/null
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c32 -d"$duration" "http://127.0.0.1:$port/")
    after=$(cpu_ticks "$pid")
    requests=$(echo "$out" | awk '/requests in/ { print $1 }')
    printf '%-34s %10s req/s  %6.2f us CPU/req  %s\n' "$2" \
        "$(echo "$out" | awk '/Requests\/sec/ { print $2 }')" \
        "$(echo "($after - $before) * 1000000 / $(getconf CLK_TCK) / $requests" | bc -l)" \
        "$(echo "$out" | grep -E 'Non-2xx|errors' | tr -s ' ' | tr '\n' ' ')"
    stop "$pid"
}

for round in 1 2 3; do
    echo "round $round"
    run start_wasmhost "wasmhost (wasi:http component)"
    run start_serve_default "wasmtime serve (defaults)"
    run start_serve_best "wasmtime serve (pooling, reuse)"
    run start_seed "wasmhost (own world, seed app)"
done
