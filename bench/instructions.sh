#!/usr/bin/env bash
# Instructions per call, counted by valgrind's callgrind: repeatable whatever
# else the machine is doing, unlike calls per second on a shared machine. Runs
# each server under callgrind while `rpcs bench` (not under callgrind) drives it
# for a fixed time, then divides the server's whole instruction count (start-up
# included, a few million) by the calls it answered:
#   - the example server, XML-RPC `add(1, 2)`, 1 and 16 connections;
#   - the master (memory backend), MessagePack-RPC `stack.push`, 1 and 16.
# With OTHER_BUILD=DIR, the same servers of another build are counted too.
# Usage: [OTHER_BUILD=DIR] bench/instructions.sh [SECONDS]   (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }
cargo build --release --quiet -p rpcs -p rpcs-examples
bench=target/release/rpcs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# count LABEL CONNS SCHEME METHOD ARGS... -- SERVER...: prints one table row.
count() {
    local label=$1 conns=$2 scheme=$3 method=$4
    shift 4
    local args=()
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    local out=$work/run
    valgrind --tool=callgrind --callgrind-out-file="$out.cg" "$@" >"$out.log" 2>&1 &
    local pid=$! url=""
    for _ in $(seq 300); do
        url=$(sed -n "s/^listening on \\($scheme:.*\\)/\\1/p" "$out.log" | head -n1)
        [ -n "$url" ] && break
        sleep 0.2
    done
    [ -n "$url" ] || { echo "$label did not start" >&2; kill "$pid"; exit 1; }
    "$bench" bench "$url" "$method" "${args[@]}" -c "$conns" -d "$secs" --warmup 1 --print-json >"$out.json"
    kill -INT "$pid"
    wait "$pid" || true
    local ir calls
    ir=$(callgrind_annotate "$out.cg" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}')
    calls=$(python3 -c "import json,sys; print(sum(json.loads(l)['calls'] for l in open(sys.argv[1])))" "$out.json")
    printf '| %s | %s | %s | %s |\n' "$label" "$conns" "$calls" "$((ir / calls))"
}

echo "instructions per call (callgrind), ${secs}s per row, $(date -u +%Y-%m-%d)"
echo "| server | connections | calls answered | instructions per call |"
echo "|---|---:|---:|---:|"
builds=("target/release")
[ -n "${OTHER_BUILD:-}" ] && builds+=("$OTHER_BUILD")
for conns in 1 16; do
    for dir in "${builds[@]}"; do
        name="example-server XML-RPC add"
        [ "$dir" != target/release ] && name="$name ($dir)"
        count "$name" "$conns" http add -j 1 2 -- "$dir/example-server" --listen 127.0.0.1:0
    done
    for dir in "${builds[@]}"; do
        name="master MessagePack-RPC stack.push"
        [ "$dir" != target/release ] && name="$name ($dir)"
        count "$name" "$conns" msgpack stack.push bench x -- "$dir/rpcs" master --backend memory \
            --listen 127.0.0.1:0 --msgpack 127.0.0.1:0
    done
done
