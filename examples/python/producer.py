#!/usr/bin/env python3
"""Producer of the simple stack example: creates stack "in" and pushes 0..9.

Usage: producer.py [URL]   (default http://localhost:8000)
"""

import sys
import xmlrpc.client

url = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000"
master = xmlrpc.client.ServerProxy(url, allow_none=True)

master.stack.create("in")
for item in range(10):
    master.stack.push("in", item)
    print(f"push item {item}")
