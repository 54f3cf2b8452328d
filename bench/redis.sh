#!/usr/bin/env bash
# The master's stack over MessagePack-RPC (and JSON-RPC over HTTP and WebSocket)
# next to Redis LPUSH/LPOP, in one run on this machine, with the same
# concurrency and pipelining: 1 connection, 16 connections, and 16 connections
# with 32 calls outstanding on each. Both servers keep the data in memory
# (rpcs master --backend memory; redis-server with persistence off).
# Installs redis-server with apt when it is missing. With OTHER_BUILD=DIR, the
# master of another build is measured over MessagePack-RPC in the same run too.
# Usage: [OTHER_BUILD=DIR] bench/redis.sh [SECONDS_PER_ROUND]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}

. bench/common.sh
need_redis
build_release
scratch redis

"$bin/rpcs" master --backend memory --listen 127.0.0.1:0 --msgpack 127.0.0.1:0 >"$work/master.out" 2>/dev/null &
pids+=($!)
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    [ "$(grep -c '^listening on' "$work/master.out")" -ge 2 ] && redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
other=${OTHER_BUILD:-}
if [ -n "$other" ]; then
    "$other/rpcs" master --backend memory --listen 127.0.0.1:0 --msgpack 127.0.0.1:0 >"$work/other.out" 2>/dev/null &
    pids+=($!)
    for _ in $(seq 100); do
        [ "$(grep -c '^listening on' "$work/other.out")" -ge 2 ] && break
        sleep 0.1
    done
    other_msgpack=$(sed -n 's/^listening on //p' "$work/other.out" | sed -n 2p)
    other_http=$(sed -n 's/^listening on //p' "$work/other.out" | sed -n 1p)
fi
http=$(sed -n 's/^listening on //p' "$work/master.out" | sed -n 1p)
msgpack=$(sed -n 's/^listening on //p' "$work/master.out" | sed -n 2p)
json=${http/http:/jsonrpc+http:}
ws=${http/http:/ws:}

# redis-benchmark for about $secs seconds at a given rate guess; prints JSON lines.
redis_round() {
    local conns=$1 pipeline=$2 requests=$3
    redis-benchmark -p "$redis_port" -t lpush,lpop -c "$conns" -P "$pipeline" -n "$requests" --csv 2>/dev/null |
        python3 bench/redis_csv.py "$conns" "$pipeline"
}

# Tops the "bench" stack up to $1 items so no pop round finds it empty (on the
# master at $2, by default ours).
fill() {
    python3 - "${2:-$http}" "$1" <<'PY'
import sys, xmlrpc.client
master, want = xmlrpc.client.ServerProxy(sys.argv[1]), int(sys.argv[2])
master.stack.create("bench")
while master.stack.getSize("bench") < want:
    master.stack.pushMany("bench", ["item"] * 10000)
PY
}

ours() {
    local url=$1 label=$2 method=$3 conns=$4 pipeline=$5
    shift 5
    local tag=""; [ "$pipeline" -gt 1 ] && tag=" (pipeline $pipeline)"
    "$bin/rpcs" bench "$url" "$method" "$@" -c "$conns" -P "$pipeline" -d "$secs" --warmup 1 \
        --print-json --label "$label ${method#stack.}$tag"
}

echo "stack push/pop vs Redis LPUSH/LPOP: ${secs}s rounds, $(nproc) cores, $(date -u +%Y-%m-%d)"
{
    for spec in "1 1" "16 1" "16 32"; do
        set -- $spec
        conns=$1 pipeline=$2
        rate=$(( conns == 1 ? 20000 : (pipeline == 1 ? 100000 : 1500000) ))
        redis_round "$conns" "$pipeline" $(( rate * secs ))
        ours "$msgpack" "rpcs msgpack" stack.push "$conns" "$pipeline" bench item
        fill $(( rate * (secs + 1) * 2 ))
        ours "$msgpack" "rpcs msgpack" stack.pop "$conns" "$pipeline" bench
        if [ -n "$other" ]; then
            ours "$other_msgpack" "rpcs msgpack ($other)" stack.push "$conns" "$pipeline" bench item
            fill $(( rate * (secs + 1) * 2 )) "$other_http"
            ours "$other_msgpack" "rpcs msgpack ($other)" stack.pop "$conns" "$pipeline" bench
        fi
    done
    fill 2000000
    for conns in 1 16; do
        ours "$json" "rpcs JSON-RPC/HTTP" stack.push "$conns" 1 bench item
        ours "$json" "rpcs JSON-RPC/HTTP" stack.pop "$conns" 1 bench
        ours "$ws" "rpcs JSON-RPC/WebSocket" stack.push "$conns" 1 bench item
        ours "$ws" "rpcs JSON-RPC/WebSocket" stack.pop "$conns" 1 bench
    done
    ours "$ws" "rpcs JSON-RPC/WebSocket" stack.push 16 32 bench item
    fill 2000000
    ours "$ws" "rpcs JSON-RPC/WebSocket" stack.pop 16 32 bench
} | python3 bench/summarize.py
