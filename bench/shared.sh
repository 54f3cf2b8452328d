#!/usr/bin/env bash
# Several masters on one Redis, in one run on this machine: `rpcs master
# --backend redis` (1, 2 and 4 of them, the connections split evenly across
# them) over MessagePack-RPC, against redis-server itself (LPUSH by
# redis-benchmark), all at the same total connections, ROUNDS times
# alternating (default 3). Redis keeps an append-only file fsynced every
# second. The table shows each one's median and the ratio to Redis. Every
# process shares this machine's cores, the load generators too, so the
# masters' scaling shown is what one host gives: on several hosts each master
# brings its own cores. Installs redis-server with apt when it is missing.
# Usage: [ROUNDS=3] [CONNECTIONS=16] bench/shared.sh [SECONDS_PER_ROUND]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${ROUNDS:-3}
conns=${CONNECTIONS:-16}

. bench/common.sh
need_redis
build_release
scratch shared

# Starts redis-server, its AOF fsynced every second; sets $port, $redis_pid.
start_redis() {
    rm -rf "$work/redis"
    start_redis_aof everysec "$work/redis"
    redis_pid=$pid
}

# Starts one master on that Redis; appends its MessagePack-RPC URL to $urls.
start_master() {
    local out url
    out=$(mktemp -p "$work" master.XXXXXX)
    "$bin/rpcs" master --backend redis --redis "redis://127.0.0.1:$port" \
        --listen 127.0.0.1:0 --msgpack 127.0.0.1:0 >"$out" 2>/dev/null &
    masters+=($!)
    pids+=($!)
    for _ in $(seq 200); do
        url=$(sed -n 's/^listening on //p' "$out" | sed -n 2p)
        if [ -n "$url" ]; then urls+=("$url"); return 0; fi
        sleep 0.05
    done
    echo "rpcs master did not start" >&2
    exit 1
}

# N masters, $conns connections split across them, pushing at once.
ours() {
    local n=$1 gens=() i=0
    masters=() urls=()
    for _ in $(seq "$n"); do start_master; done
    for url in "${urls[@]}"; do
        i=$(( i + 1 ))
        "$bin/rpcs" bench "$url" stack.push bench item -c $(( conns / n )) -d "$secs" \
            --warmup 1 --print-json --label part >"$work/part.$i.json" 2>/dev/null &
        gens+=($!)
    done
    wait "${gens[@]}"
    cat "$work"/part.*.json | python3 bench/combine.py "rpcs $n master(s) push"
    rm -f "$work"/part.*.json
    for m in "${masters[@]}"; do kill "$m"; wait "$m" 2>/dev/null || true; done
}

theirs() {
    redis-benchmark -p "$port" -t lpush -c "$conns" -d 4 -n $(( 60000 * secs )) --csv 2>/dev/null |
        python3 bench/redis_csv.py "$conns" 1
}

echo "masters sharing one Redis vs Redis itself: ${secs}s rounds, $rounds rounds, $conns connections, $(nproc) cores, $(date -u +%Y-%m-%d)"
{
    for _ in $(seq "$rounds"); do
        for n in 1 2 4; do
            start_redis
            ours "$n"
            kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
        done
        start_redis
        theirs
        kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
    done
} | tee "$work/runs.jsonl" | python3 bench/summarize.py
python3 bench/ratios.py "rpcs 1 master(s) push=redis lpush" "rpcs 2 master(s) push=redis lpush" \
    "rpcs 4 master(s) push=redis lpush" <"$work/runs.jsonl"
