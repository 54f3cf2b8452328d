#!/usr/bin/env bash
# Runs the whole test suite: Rust unit and integration tests, then the interop
# tests against real Python peers, then the Python client package's tests
# (clients/python). Installs what it needs on the way: system packages
# through apt when missing (redis-server for the Redis backend's tests, tmux
# for the monitor's, chromium for the web page's, Python's venv), and a
# Python virtualenv (.venv) with the interop peers from
# tests/interop/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '\n==> %s\n' "$*"; }

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing system packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The Redis backend's tests run against a real redis-server.
command -v redis-server >/dev/null || apt_install redis-server
# The monitor's test drives it in a real terminal.
command -v tmux >/dev/null || apt_install tmux
# The web page's tests load it in a real headless browser.
command -v chromium >/dev/null || apt_install chromium

python=${PYTHON:-python3}
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv python3-pip
fi

say "Python virtualenv with the interop peers (.venv)"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
req_stamp=.venv/.requirements.sha
want=$(sha256sum tests/interop/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$req_stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -r tests/interop/requirements.txt
    echo "$want" > "$req_stamp"
fi
# The client package (clients/python), installed afresh each run: the interop tests run the
# examples that use it, and its own suite runs last.
.venv/bin/python -m pip install -q --disable-pip-version-check ./clients/python

say "building"
cargo build --workspace --bins --quiet

say "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast --quiet
fi
cargo test --workspace --doc --quiet

say "interop tests against real Python peers"
RPCS_BIN_DIR="$root/target/debug" .venv/bin/python -m pytest tests/interop -q -p no:cacheprovider

say "Python client package tests (clients/python)"
RPCS_BIN_DIR="$root/target/debug" .venv/bin/python -m pytest clients/python/tests -q -p no:cacheprovider
