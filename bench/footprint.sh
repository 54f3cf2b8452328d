#!/usr/bin/env bash
# The master's memory per stack item next to Redis's, its files before and after
# compaction, and its restart time, in one run (see bench/footprint.py).
# Installs redis-server with apt when it is missing.
# Usage: bench/footprint.sh [RESTART_ITEMS]   (default 10000000)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi
cargo build --release --quiet -p rpcs
python3 bench/footprint.py target/release/rpcs "${1:-10000000}"
