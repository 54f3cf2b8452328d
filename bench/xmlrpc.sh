#!/usr/bin/env bash
# XML-RPC throughput and latency, in one run on this machine:
#   - our example server (rpcs-net, `add(1, 2)`),
#   - a bare hyper server answering a constant reply (the HTTP ceiling),
#   - Python's SimpleXMLRPCServer with the same `add`.
# Each is measured with `rpcs bench` at 1 and 16 connections, in interleaved
# rounds; the table shows each one's median round, since a shared 2-core machine
# is noisy.
# With OTHER_BUILD=DIR, the example server of another build (an earlier commit
# built with CARGO_TARGET_DIR, say) is measured in the same rounds too.
# Usage: [OTHER_BUILD=DIR] bench/xmlrpc.sh [SECONDS_PER_ROUND] [ROUNDS]   (default 5 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}

cargo build --release --quiet -p rpcs -p rpcs-examples
bin=target/release
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts a server that prints "listening on URL"; sets $url.
start() {
    local out
    out=$(mktemp)
    "$@" >"$out" 2>/dev/null &
    pids+=($!)
    for _ in $(seq 100); do
        url=$(sed -n 's/^listening on //p' "$out" | head -n1)
        [ -n "$url" ] && { rm -f "$out"; return 0; }
        sleep 0.1
    done
    echo "server did not start: $*" >&2
    exit 1
}

start "$bin/example-server" --listen 127.0.0.1:0; ours=$url
start "$bin/bare-http" --listen 127.0.0.1:0; bare=$url
start python3 bench/py_xmlrpc_server.py; python=$url
other=${OTHER_BUILD:-}
[ -n "$other" ] && { start "$other/example-server" --listen 127.0.0.1:0; others=$url; }

echo "XML-RPC add(1, 2): ${rounds} rounds of ${secs}s, $(nproc) cores, $(date -u +%Y-%m-%d)"
for _ in $(seq "$rounds"); do
    "$bin/rpcs" bench "$ours" add -j 1 2 -d "$secs" --print-json --label "rpcs example-server"
    if [ -n "$other" ]; then
        "$bin/rpcs" bench "$others" add -j 1 2 -d "$secs" --print-json --label "rpcs example-server ($other)"
    fi
    "$bin/rpcs" bench "$bare" add -j 1 2 -d "$secs" --print-json --label "bare hyper (reads body, constant reply)"
    "$bin/rpcs" bench "$python" add -j 1 2 -d "$secs" --print-json --label "Python SimpleXMLRPCServer"
done | python3 bench/summarize.py
