#!/usr/bin/env bash
# The read workload (`GET /` with a session cookie) against wasmhost with a
# Redis store, on 2 worker threads, for each `--tasks` given: how many
# instances keep the threads busy while calls wait on Redis (BENCHMARKS.md).
#
#   cargo build --profile dist -p wasmhost
#   cargo build --profile dist --target wasm32-wasip2 -p guest-app
#   bench/redis_tasks.sh 2 8 16 32
#
# Needs redis-server, wrk and curl; starts its own Redis on port 6390 and
# wasmhost on 8099.
set -euo pipefail
cd "$(dirname "$0")/.."
wasmhost=target/dist/wasmhost
app=target/wasm32-wasip2/dist/guest_app.wasm
redis-server --port 6390 --save '' --appendonly no --daemonize yes >/dev/null
trap 'redis-cli -p 6390 shutdown nosave >/dev/null 2>&1 || true' EXIT
sleep 0.5
script=$(mktemp)
for tasks in "$@"; do
    "$wasmhost" --threads 2 --tasks "$tasks" --listen 127.0.0.1:8099 \
        --store redis://127.0.0.1:6390 --env SESSION_SECRET=bench "$app" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8099/ && break; sleep 0.1; done
    cookie=$(curl -s -D - -o /dev/null http://127.0.0.1:8099/set |
        grep -i '^set-cookie' | sed 's/^[^:]*: //; s/;.*//' | tr -d '\r')
    echo "wrk.headers[\"Cookie\"] = \"$cookie\"" >"$script"
    wrk -t1 -c32 -d2s -s "$script" http://127.0.0.1:8099/ >/dev/null
    echo "tasks=$tasks $(wrk -t1 -c32 -d10s -s "$script" http://127.0.0.1:8099/ |
        grep -E 'Requests/sec|Non-2xx' | tr -s ' ' | tr '\n' ' ')"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
rm -f "$script"
