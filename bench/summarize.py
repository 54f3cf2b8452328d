"""Reads `rpcs bench --print-json` lines on stdin and prints a Markdown table with,
for each target and connection count, the run with the median throughput."""
import json
import sys
from collections import defaultdict

runs = defaultdict(list)
order = []
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    key = (r["target"], r["connections"])
    if key not in runs:
        order.append(key)
    runs[key].append(r)

print("| target | connections | calls/s (median of %d) | p50 µs | p90 µs | p99 µs | p99.9 µs |"
      % max(len(v) for v in runs.values()))
print("|---|---:|---:|---:|---:|---:|---:|")
faulty = []
for key in order:
    rs = sorted(runs[key], key=lambda r: r["calls_per_sec"])
    m = rs[len(rs) // 2]
    print(f"| {key[0]} | {key[1]} | {m['calls_per_sec']:,.0f} | {m.get('p50_us', '-')} | {m.get('p90_us', '-')} "
          f"| {m.get('p99_us', '-')} | {m.get('p999_us', '-')} |")
    if m.get("faults"):
        faulty.append(f"{key[0]} at {key[1]} connections: {m['faults']} of {m['calls']} calls faulted")
for line in faulty:
    print(f"\nWARNING: {line}")
