#!/usr/bin/env bash
# Durable stack pushes next to Redis's append-only file, in one run on this
# machine, with the same connections: `rpcs master` on its embedded backend
# (strict: every acknowledged push fsynced; relaxed: fsynced at least every
# second) over MessagePack-RPC, against redis-server with `appendfsync always`
# and `appendfsync everysec`, LPUSH by redis-benchmark. Each pair runs at 1 and
# 16 connections, ROUNDS times alternating (default 3); the table shows each
# one's median and the ratio rpcs / Redis. Both write to the same disk (a
# temporary directory). Installs redis-server with apt when it is missing.
# Usage: [ROUNDS=3] bench/durable.sh [SECONDS_PER_ROUND]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${ROUNDS:-3}

. bench/common.sh
need_redis
build_release
scratch durable

# Starts `rpcs master` on the embedded backend in $1 durability; sets $url, $pid.
start_master() {
    local out
    out=$(mktemp -p "$work" master.XXXXXX)
    "$bin/rpcs" master --durability "$1" --data-dir "$work/rpcs-$1" \
        --listen 127.0.0.1:0 --msgpack 127.0.0.1:0 >"$out" 2>/dev/null &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do
        url=$(sed -n 's/^listening on //p' "$out" | sed -n 2p)
        [ -n "$url" ] && return 0
        sleep 0.05
    done
    echo "rpcs master did not start" >&2
    exit 1
}

# Starts redis-server with its append-only file fsynced as $1; sets $port, $pid.
start_redis() { start_redis_aof "$1" "$work/redis-$1"; }

# One round of each: `rpcs bench` and redis-benchmark, JSON lines out.
ours() {
    "$bin/rpcs" bench "$url" stack.push bench item -c "$2" -d "$secs" --warmup 1 \
        --print-json --label "rpcs $1 push"
}
theirs() {
    local requests=$(( $3 * secs ))
    redis-benchmark -p "$port" -t lpush -c "$2" -d 4 -n "$requests" --csv 2>/dev/null |
        python3 bench/redis_csv.py "$2" 1 | sed "s/\"redis lpush\"/\"redis $1 lpush\"/"
}

echo "durable stack push vs Redis AOF LPUSH: ${secs}s rounds, $rounds rounds, $(nproc) cores, $(date -u +%Y-%m-%d)"
{
    for pair in "strict always" "relaxed everysec"; do
        set -- $pair
        mode=$1 fsync=$2
        for conns in 1 16; do
            # A guess at Redis's rate, so its round lasts about $secs seconds.
            [ "$mode" = strict ] && rate=$(( conns == 1 ? 3000 : 30000 )) || rate=$(( conns == 1 ? 20000 : 60000 ))
            for _ in $(seq "$rounds"); do
                start_master "$mode"
                ours "$mode" "$conns"
                kill "$pid"; wait "$pid" 2>/dev/null || true
                start_redis "$fsync"
                theirs "$fsync" "$conns" "$rate"
                kill "$pid"; wait "$pid" 2>/dev/null || true
                rm -rf "$work/rpcs-$mode" "$work/redis-$fsync"
            done
        done
    done
} | tee "$work/runs.jsonl" | python3 bench/summarize.py
python3 bench/ratios.py "rpcs strict push=redis always lpush" \
    "rpcs relaxed push=redis everysec lpush" <"$work/runs.jsonl"
