#!/usr/bin/env bash
# Pages per second of a whole crawl of the generated site (rpcs-crawl-site
# --plain: 3 loopback hosts, PAGES pages each), politeness off: rpcs-crawler
# with 1, 2 and 4 crawler processes on one master (memory backend), then
# Scrapy (from PyPI, in its own virtualenv bench/.venv-scrapy) with its
# defaults, politeness off, in the same run. Every page is saved by both.
# Usage: bench/crawl.sh [PAGES]   (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
pages=${1:-1000}

. bench/common.sh
cargo build --release --quiet -p rpcs -p rpcs-crawler
bin=target/release
scratch crawl

if [ ! -x bench/.venv-scrapy/bin/python ]; then
    python3 -m venv bench/.venv-scrapy
    bench/.venv-scrapy/bin/pip install -q --disable-pip-version-check scrapy
fi

"$bin/rpcs-crawl-site" --plain --pages "$pages" >"$work/site.out" &
pids+=($!)
for _ in $(seq 100); do [ "$(wc -l <"$work/site.out")" -ge 3 ] && break; sleep 0.1; done
root=$(head -1 "$work/site.out")

now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):.0f}')"; }
# CPU seconds (user + system) a live process has used so far.
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }

# master_cpu_us_per_page: the master's CPU per saved page; master_share: of
# the machine's CPU over the crawl (all cores).
cores=$(nproc)
echo "crawler,processes,pages,seconds,pages_per_s,master_cpu_us_per_page,master_share"
for n in 1 2 4; do
    "$bin/rpcs" master --backend memory --listen 127.0.0.1:0 --msgpack 127.0.0.1:0 >"$work/master$n.out" 2>/dev/null &
    master_pid=$!
    pids+=($master_pid)
    for _ in $(seq 100); do [ "$(grep -c '^listening on' "$work/master$n.out")" -ge 2 ] && break; sleep 0.1; done
    url=$(sed -n 's/^listening on //p' "$work/master$n.out" | sed -n 2p)
    "$bin/rpcs-crawler" --master "$url" add "$root" >/dev/null
    master_before=$(cpu_of "$master_pid")
    start=$(now)
    crawlers=()
    for i in $(seq "$n"); do
        "$bin/rpcs-crawler" --master "$url" crawl --name "c$i" --out "$work/out$n" --delay 0 \
            --any-host --allow '^http://127\.0\.0\.' --exit-when-done --report-every 1 \
            >/dev/null 2>"$work/crawler$n-$i.log" &
        crawlers+=($!)
    done
    wait "${crawlers[@]}"
    end=$(now)
    master_cpu=$(python3 -c "print($(cpu_of "$master_pid") - $master_before)")
    saved=$(find "$work/out$n" -name '*.page' | wc -l)
    per_page=$(python3 -c "print(f'{$master_cpu / $saved * 1e6:.0f}')")
    share=$(python3 -c "print(f'{$master_cpu / (($end - $start) * $cores) * 100:.1f}%')")
    echo "rpcs-crawler,$n,$saved,$(python3 -c "print(f'{$end - $start:.2f}')"),$(rate "$saved" "$start" "$end"),$per_page,$share"
    kill "$master_pid" 2>/dev/null || true
done

start=$(now)
bench/.venv-scrapy/bin/python bench/crawl_spider.py "$root" "$work/scrapy"
end=$(now)
saved=$(find "$work/scrapy" -type f | wc -l)
echo "scrapy,1,$saved,$(python3 -c "print(f'{$end - $start:.2f}')"),$(rate "$saved" "$start" "$end"),,"
