#!/usr/bin/env bash
# Stack push/pop throughput and latency of `rpcs master`, in one run on this
# machine: the embedded store in strict and relaxed durability, the memory
# backend, and Python's SimpleXMLRPCServer keeping a list in memory.
# Each is measured with `rpcs bench` at 1 and 16 connections; before the pop
# rounds the stack is filled so no pop finds it empty.
# Usage: bench/master.sh [SECONDS_PER_ROUND]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}

cargo build --release --quiet -p rpcs
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Starts a server that prints "listening on URL"; sets $url and $pid.
start() {
    local out="$work/out.$RANDOM"
    "$@" >"$out" 2>/dev/null &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        url=$(sed -n 's/^listening on //p' "$out" | head -n1)
        [ -n "$url" ] && return 0
        sleep 0.1
    done
    echo "server did not start: $*" >&2
    exit 1
}

# Pushes enough items for the pop rounds (10 000 per pushMany call).
fill() {
    python3 - "$1" <<'PY'
import sys, xmlrpc.client
s = xmlrpc.client.ServerProxy(sys.argv[1])
for _ in range(100):
    s.stack.pushMany("bench", ["item"] * 10000)
PY
}

measure() {
    local label=$1 url=$2
    "$bin/rpcs" bench "$url" stack.push bench item -d "$secs" --print-json --label "$label: push"
    fill "$url"
    "$bin/rpcs" bench "$url" stack.pop bench -d "$secs" --print-json --label "$label: pop"
}

echo "stack.push / stack.pop over XML-RPC: ${secs}s rounds, $(nproc) cores, $(date -u +%Y-%m-%d)"
{
    for mode in strict relaxed; do
        start "$bin/rpcs" master --listen 127.0.0.1:0 --data-dir "$work/$mode" --durability "$mode"
        measure "rpcs master, embedded $mode" "$url"
        kill "$pid"
    done
    start "$bin/rpcs" master --listen 127.0.0.1:0 --backend memory
    measure "rpcs master, memory" "$url"
    kill "$pid"
    start python3 bench/py_stack_server.py
    measure "Python SimpleXMLRPCServer" "$url"
} | python3 bench/summarize.py
