#!/usr/bin/env bash
# What held connections cost: `rpcs master` (memory backend) with 10 000
# MessagePack-RPC connections held open, idle or each with a `stack.popWait`
# blocked in the server, while `rpcs bench` measures a normal client's
# `stack.push` over HTTP (another listener) and over MessagePack-RPC (the same
# listener), side by side with the same client and no held connections, in one
# run. Also prints the master's memory per held connection (RSS growth).
# Usage: bench/connections.sh [SECONDS_PER_ROUND] [CONNECTIONS]   (default 5, 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
count=${2:-10000}

cargo build --release --quiet -p rpcs
bin=target/release
python=.venv/bin/python
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# Starts the master; sets $http, $msgpack and $pid.
start_master() {
    local out="$work/master.out"
    "$bin/rpcs" master --backend memory --listen 127.0.0.1:0 --msgpack 127.0.0.1:0 \
        --max-connections-per-listener $((count + 100)) >"$out" 2>/dev/null &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        http=$(sed -n 's/^listening on \(http:.*\)/\1/p' "$out" | head -n1)
        msgpack=$(sed -n 's/^listening on \(msgpack:.*\)/\1/p' "$out" | head -n1)
        [ -n "$http" ] && [ -n "$msgpack" ] && return 0
        sleep 0.1
    done
    echo "master did not start" >&2
    exit 1
}

# Holds $count connections in the given mode until killed; waits until all are open.
hold() {
    local out="$work/hold.$1"
    "$python" bench/hold_connections.py "${msgpack#msgpack://}" "$count" "$1" >"$out" &
    holder=$!
    pids+=("$holder")
    for _ in $(seq 600); do
        grep -q '^holding' "$out" && return 0
        sleep 0.1
    done
    echo "could not hold $count connections" >&2
    exit 1
}

measure() {
    local label=$1
    "$bin/rpcs" bench "$http" stack.push bench item -c 1,16 -d "$secs" --print-json --label "$label: HTTP push"
    "$bin/rpcs" bench "$msgpack" stack.push bench item -c 1,16 -d "$secs" --print-json --label "$label: msgpack push"
}

echo "held connections: $count, ${secs}s rounds, $(nproc) cores, $(date -u +%Y-%m-%d)"
start_master
{
    measure "no held connections"
    before=$(rss_kib "$pid")
    hold idle
    idle_rss=$(rss_kib "$pid")
    measure "$count idle connections"
    kill "$holder"
    # The idle connections close with their holder; wait until the master has
    # let them all go before the next baseline.
    while [ "$(ls "/proc/$pid/fd" | wc -l)" -gt 100 ]; do sleep 0.2; done
    again=$(rss_kib "$pid")
    hold popwait
    wait_rss=$(rss_kib "$pid")
    measure "$count blocked popWait calls"
    kill "$holder"
    echo "memory: $(( (idle_rss - before) * 1024 / count )) bytes per idle connection," \
        "$(( (wait_rss - again) * 1024 / count )) bytes per connection with a blocked popWait" >&2
} | "$python" bench/summarize.py
