"""Reads the `rpcs bench --print-json` lines of load generators that ran at the
same time (stdin) and prints one line for them all: the throughputs and
connections summed, the latencies of the slowest. Argument: the target name."""
import json
import sys

runs = [json.loads(l) for l in sys.stdin if l.strip().startswith("{")]
total = {
    "target": sys.argv[1],
    "connections": sum(r["connections"] for r in runs),
    "calls": sum(r["calls"] for r in runs),
    "calls_per_sec": sum(r["calls_per_sec"] for r in runs),
    "faults": sum(r.get("faults", 0) for r in runs),
}
for key in ("p50_us", "p90_us", "p99_us", "p999_us"):
    total[key] = max(r.get(key, 0) for r in runs)
print(json.dumps(total))
