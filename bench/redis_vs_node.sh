#!/usr/bin/env bash
# Issue 23's sessions on Redis at defaults: the read workload (`GET /` with a
# session cookie) on wasmhost with `--store redis://` and nothing else tuned
# (2 threads, the default tasks), and on the Node seed app
# (tests/node-interop/app.js: express-session + connect-redis, the same
# options) as a cluster of 2 workers, on one Redis; three rounds, the order
# alternating, `wrk -t1 -c32 -d8s` after a 3 s warm-up (BENCHMARKS.md).
#
#   cargo build --profile dist -p wasmhost
#   cargo build --profile dist --target wasm32-wasip2 -p guest-app
#   (cd tests/node-interop && npm ci)
#   bench/redis_vs_node.sh
#
# Needs redis-server, node, wrk and curl; starts its own Redis on port 6391
# and each server on 18090.
set -euo pipefail
cd "$(dirname "$0")/.."
wasmhost=target/dist/wasmhost
app=target/wasm32-wasip2/dist/guest_app.wasm
port=18090
redis-server --port 6391 --save '' --appendonly no --daemonize yes >/dev/null
trap 'redis-cli -p 6391 shutdown nosave >/dev/null 2>&1 || true' EXIT
sleep 0.5
script=$(mktemp)

start_wasmhost() {
    "$wasmhost" --threads 2 --listen "127.0.0.1:$port" --store redis://127.0.0.1:6391 \
        --env SESSION_SECRET=bench "$app" >/dev/null 2>&1 &
    echo $!
}

start_node() {
    SESSION_SECRET=bench REDIS_URL=redis://127.0.0.1:6391 PORT=$port \
        node bench/node-cluster.mjs >/dev/null 2>&1 &
    echo $!
}

# One measured run of server $1 (a start function), printed as $2.
run() {
    local pid cookie
    pid=$($1)
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    cookie=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/set" |
        grep -i '^set-cookie' | sed 's/^[^:]*: //; s/;.*//' | tr -d '\r')
    echo "wrk.headers[\"Cookie\"] = \"$cookie\"" >"$script"
    wrk -t1 -c32 -d3s -s "$script" "http://127.0.0.1:$port/" >/dev/null
    echo "$2 $(wrk -t1 -c32 -d8s -s "$script" "http://127.0.0.1:$port/" |
        grep -E 'Requests/sec|Non-2xx' | tr -s ' ' | tr '\n' ' ')"
    pkill -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    sleep 1
}

for round in 1 2 3; do
    if ((round % 2)); then
        run start_wasmhost wasmhost
        run start_node node
    else
        run start_node node
        run start_wasmhost wasmhost
    fi
done
# What each command cost Redis itself (both servers' commands together).
redis-cli -p 6391 info commandstats | grep -E '^cmdstat_(get|getrange|set|evalsha):' | tr -d '\r'
rm -f "$script"
