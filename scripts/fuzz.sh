#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS with libFuzzer.
#
#   scripts/fuzz.sh SECONDS [TARGET...]      (default: every target)
#   RUNS=10000000 scripts/fuzz.sh 3600       (also stop each after RUNS executions)
#   SANITIZER=leak scripts/fuzz.sh 3600      (LeakSanitizer alone: about 3x faster,
#                                            still catches panics, leaks, timeouts, OOM)
#   SANITIZER=none scripts/fuzz.sh 3600      (no sanitizer: fastest, for the longest
#                                            runs; panics, timeouts, OOM only)
#   RUNS=0 scripts/fuzz.sh 3600              (replay each corpus once, under ASan
#                                            by default: the check after a
#                                            SANITIZER=none run)
#
# Needs the nightly toolchain (sanitizer coverage and ASan); no cargo-fuzz. Each
# target keeps a corpus in fuzz/corpus/TARGET (not committed), seeded from
# fuzz/seeds/TARGET and fuzz/regressions/TARGET. A crash, leak, timeout or
# out-of-memory input is copied to fuzz/regressions/TARGET/ under a name taken
# from the failure; fix the bug, then commit the input: the ordinary tests
# replay it on stable. Ends with a table: target, executions, execs/s, result.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
triple=x86_64-unknown-linux-gnu

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/checks/src/targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi

# Coverage and comparison tracing for libFuzzer, ASan for memory errors and
# leaks, and the checks Rust does in debug builds. The explicit --target keeps
# build scripts (and proc macros) uninstrumented.
sanitizer=${SANITIZER:-address}
case $sanitizer in
    address | leak) sanitize="-Zsanitizer=$sanitizer" ;;
    none) sanitize="" ;;
    *) echo "SANITIZER is address, leak or none" >&2; exit 2 ;;
esac
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares $sanitize --cfg fuzzing \
-Cdebug-assertions -Coverflow-checks"
# One build directory per sanitizer, so switching does not rebuild everything.
target_dir=target
[ "$sanitizer" != address ] && target_dir=target-$sanitizer
echo "==> building the fuzz targets ($sanitizer sanitizer)"
(cd fuzz && CARGO_TARGET_DIR=$target_dir cargo +nightly build --quiet --release --target "$triple" --bin rpcs-fuzz)
bin=fuzz/$target_dir/$triple/release/rpcs-fuzz

# Short allocation stacks and a smaller quarantine: allocation-heavy codecs run
# several times faster, and reports still name the allocating frames. No fake
# stacks (stack-use-after-return detection, on by default): frames left behind
# by unwinding, which the dispatch target does on purpose, once hung a run in
# ASan's fake-stack allocator for minutes.
export ASAN_OPTIONS=detect_leaks=1:symbolize=1:malloc_context_size=5:quarantine_size_mb=64:detect_stack_use_after_return=0
export LSAN_OPTIONS=symbolize=1:malloc_context_size=5
mkdir -p fuzz/logs
rows=()
failed=0

# The largest input per target: documents need room for nesting and batches;
# the targets that build values from the bytes need far fewer (a few hundred
# bytes already make values nested to the generators' limit), and longer inputs
# only slow the search down.
max_len() {
    case $1 in
        cross_codec | typed_params | msgpack_rpc | zerorpc_event) echo 512 ;;
        rpyc_registry) echo 1500 ;;
        msgpack_value | dispatch) echo 1024 ;;
        *) echo 4096 ;;
    esac
}

# A file-name fragment from the panic message in a log: its first line after
# "panicked at", lower-cased, markup dropped, at most 60 characters.
describe() {
    local line
    line=$(grep -A1 -m1 "panicked at" "$1" | tail -n1 || true)
    [ -z "$line" ] && line=$(grep -m1 -oE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-z-]+" "$1" || true)
    printf '%s' "$line" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//' | cut -c1-60
}

for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t
    artifacts=fuzz/artifacts/$t
    log=fuzz/logs/$t.log
    # A replay keeps its own log, so the last real run's stays.
    [ "${RUNS:-}" = 0 ] && log=fuzz/logs/$t.replay.log
    mkdir -p "$corpus" "$artifacts"
    inputs=("$corpus" "fuzz/seeds/$t")
    [ -d "fuzz/regressions/$t" ] && inputs+=("fuzz/regressions/$t")
    limit=()
    [ -n "${RUNS:-}" ] && limit=(-runs="$RUNS")
    echo "==> $t for ${seconds}s"
    status=0
    RPCS_FUZZ_TARGET=$t "$bin" -max_total_time="$seconds" "${limit[@]}" \
        -rss_limit_mb=2048 -timeout=10 -max_len="$(max_len "$t")" \
        -artifact_prefix="$artifacts/" -print_final_stats=1 "${inputs[@]}" >"$log" 2>&1 || status=$?
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
    result=ok
    if [ "$status" -ne 0 ]; then
        failed=1
        result="failed (exit $status, see $log)"
        for a in "$artifacts"/*; do
            [ -f "$a" ] || continue
            kind=$(basename "$a" | cut -d- -f1)
            mkdir -p "fuzz/regressions/$t"
            name="$kind-$(describe "$log")-$(sha1sum "$a" | cut -c1-8)"
            mv "$a" "fuzz/regressions/$t/$name"
            result="$kind: fuzz/regressions/$t/$name"
        done
    fi
    rows+=("$(printf '%-16s %14s %10s  %s' "$t" "$runs" "$rate" "$result")")
done

echo
printf '%-16s %14s %10s  %s\n' target executions execs/s result
for row in "${rows[@]}"; do
    echo "$row"
done
exit $failed
