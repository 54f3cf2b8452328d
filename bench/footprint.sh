#!/usr/bin/env bash
# The master's memory per stack item next to Redis's, its files before and after
# compaction, and its restart time, in one run (see bench/footprint.py).
# Installs redis-server with apt when it is missing.
# Usage: bench/footprint.sh [RESTART_ITEMS]   (default 10000000)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
need_redis
build_release
python3 bench/footprint.py "$bin/rpcs" "${1:-10000000}"
