# Shared by the benchmark scripts (sourced, from the repository's root).

# Installs redis-server (and redis-benchmark, redis-cli) with apt when missing.
need_redis() {
    if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
        local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
    fi
}

# Builds the release binary; sets $bin to its directory.
build_release() {
    cargo build --release --quiet -p rpcs
    bin=target/release
}

# A scratch directory in $work, removed at exit with every process in $pids.
scratch() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/rpcs-$1.XXXXXX")
    pids=()
    trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts redis-server in directory $2 with its append-only file fsynced as $1
# (always, everysec); sets $port and $pid.
start_redis_aof() {
    port=$(free_port)
    mkdir -p "$2"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$2" --save "" \
        --appendonly yes --appendfsync "$1" >/dev/null 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "redis-server did not start" >&2
    exit 1
}
