#!/usr/bin/env bash
# zerorpc calls/s and latency: our example server and Python's zerorpc server
# (from the test virtualenv, .venv) doing the same `add(1, 2)`, each measured
# with `rpcs bench` at 1 and 16 clients in one run. With OTHER_BUILD=DIR, the
# example server and `rpcs bench` of another build (e.g. an earlier commit built
# with CARGO_TARGET_DIR) are measured too, side by side.
# Usage: [OTHER_BUILD=DIR] bench/zerorpc.sh [SECONDS_PER_ROUND]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
python=.venv/bin/python
if ! "$python" -c 'import zerorpc' 2>/dev/null; then
    echo "needs .venv with zerorpc: run ./scripts/test.sh once" >&2
    exit 1
fi

cargo build --release --quiet -p rpcs -p rpcs-examples
bin=target/release
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

ours="tcp://127.0.0.1:$(free_port)"
"$bin/example-server" --listen 127.0.0.1:0 --zerorpc "$ours" >/dev/null 2>&1 &
pids+=($!)
other=${OTHER_BUILD:-}
if [ -n "$other" ]; then
    others="tcp://127.0.0.1:$(free_port)"
    "$other/example-server" --listen 127.0.0.1:0 --zerorpc "$others" >/dev/null 2>&1 &
    pids+=($!)
fi
theirs="tcp://127.0.0.1:$(free_port)"
"$python" bench/py_zerorpc_server.py "$theirs" >/dev/null 2>&1 &
pids+=($!)
sleep 2

echo "zerorpc add(1, 2): ${secs}s rounds, $(nproc) cores, $(date -u +%Y-%m-%d)"
{
    "$bin/rpcs" bench "$ours" add -j 1 2 -d "$secs" --print-json --label "rpcs example-server"
    if [ -n "$other" ]; then
        "$other/rpcs" bench "$others" add -j 1 2 -d "$secs" --print-json --label "rpcs example-server ($other)"
    fi
    "$bin/rpcs" bench "$theirs" add -j 1 2 -d "$secs" --print-json --label "Python zerorpc server"
} | python3 bench/summarize.py
