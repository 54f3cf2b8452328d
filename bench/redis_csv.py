"""Turns `redis-benchmark --csv` output (stdin) into `rpcs bench --print-json`
lines, for bench/summarize.py. Arguments: connections, pipeline depth."""
import csv
import json
import sys

conns, pipeline = int(sys.argv[1]), int(sys.argv[2])
for row in csv.DictReader(sys.stdin):
    def us(key):
        return round(float(row[key]) * 1000)
    tag = f" (pipeline {pipeline})" if pipeline > 1 else ""
    print(json.dumps({
        "target": f"redis {row['test'].lower()}{tag}",
        "connections": conns,
        "calls": 0,
        "calls_per_sec": float(row["rps"]),
        "p50_us": us("p50_latency_ms"),
        "p90_us": us("p95_latency_ms"),
        "p99_us": us("p99_latency_ms"),
        "p999_us": us("max_latency_ms"),
    }))
