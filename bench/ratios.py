"""Reads `rpcs bench --print-json` lines on stdin and prints, for each pair
"OURS=THEIRS" of target names given as arguments and each connection count,
the ratio of the median throughputs, as a Markdown table. The columns are
headed "rpcs" and "Redis" unless RATIO_COLUMNS="A,B" names them."""
import os
import json
import statistics
import sys
from collections import defaultdict

rates = defaultdict(list)
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        rates[(r["target"], r["connections"])].append(r["calls_per_sec"])

print()
left, right = os.environ.get("RATIO_COLUMNS", "rpcs,Redis").split(",", 1)
print(f"| {left} | {right} | connections | ratio |")
print("|---|---|---:|---:|")
for pair in sys.argv[1:]:
    ours, theirs = pair.split("=", 1)
    for conns in sorted({c for (t, c) in rates if t == ours}):
        a, b = rates.get((ours, conns)), rates.get((theirs, conns))
        if a and b:
            ratio = statistics.median(a) / statistics.median(b)
            print(f"| {ours} | {theirs} | {conns} | {ratio:.2f}× |")
