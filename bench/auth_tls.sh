#!/usr/bin/env bash
# What authentication and TLS cost: `ping` on the master over plain
# MessagePack-RPC and HTTP, next to the same with tokens (--auth; an `auth`
# call once per MessagePack-RPC connection, a Bearer header checked on every
# HTTP request) and over TLS (MessagePack-RPC over TLS), at 1 and 16
# connections, in one run, three rounds each interleaved.
# Usage: bench/auth_tls.sh [SECONDS_PER_ROUND]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
secs=${1:-5}
build_release
scratch auth-tls

"$bin/rpcs" cert new --dir "$work/certs" >/dev/null
"$bin/rpcs" token new --name bench --access write >"$work/tokens.toml" 2>"$work/secret"
secret=$(sed 's/.*keep it): //' "$work/secret")

# Starts a master with the given flags; sets $urls to the URLs it announced.
start_master() {
    local out=$work/master-$RANDOM.out
    "$bin/rpcs" master --backend memory "$@" >"$out" 2>/dev/null &
    pids+=("$!")
    for _ in $(seq 200); do
        [ "$(grep -c '^listening on' "$out" || true)" -ge "$nlines" ] && break
        sleep 0.05
    done
    urls=$(sed -n 's/^listening on //p' "$out")
}

nlines=3
start_master --listen 127.0.0.1:0 --msgpack 127.0.0.1:0 --msgpack-tls 127.0.0.1:0 \
    --tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server-key.pem"
plain_http=$(echo "$urls" | grep '^http://')
plain_msgpack=$(echo "$urls" | grep '^msgpack://')
tls_msgpack=$(echo "$urls" | grep '^msgpack+tls://')
nlines=2
start_master --listen 127.0.0.1:0 --msgpack 127.0.0.1:0 --auth "$work/tokens.toml"
auth_http=$(echo "$urls" | grep '^http://')
auth_msgpack=$(echo "$urls" | grep '^msgpack://')

echo "ping on the master: ${secs}s rounds, $(nproc) cores, $(date -u +%Y-%m-%d)"
{
    for _ in 1 2 3; do
        "$bin/rpcs" bench "$plain_msgpack" ping -d "$secs" --print-json --label "msgpack"
        RPCS_TOKEN=$secret "$bin/rpcs" bench "$auth_msgpack" ping -d "$secs" --print-json --label "msgpack, auth"
        "$bin/rpcs" bench --ca "$work/certs/ca.pem" "$tls_msgpack" ping -d "$secs" --print-json --label "msgpack, TLS"
        "$bin/rpcs" bench "$plain_http" ping -d "$secs" --print-json --label "XML-RPC"
        RPCS_TOKEN=$secret "$bin/rpcs" bench "$auth_http" ping -d "$secs" --print-json --label "XML-RPC, auth"
    done
} | tee "$work/results.jsonl" | python3 bench/summarize.py
RATIO_COLUMNS="with,against" python3 bench/ratios.py "msgpack, auth=msgpack" \
    "msgpack, TLS=msgpack" "XML-RPC, auth=XML-RPC" <"$work/results.jsonl"
