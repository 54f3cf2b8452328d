#!/usr/bin/env python3
"""Producer of the simple stack example: creates stack "in" and pushes 0..9.

Usage: producer.py [URL]   (default http://localhost:8000)

Uses the rpcservices package (``pip install ./clients/python``); from a checkout it is found
without installing.
"""

import sys
from pathlib import Path

try:
    from rpcservices import client
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))
    from rpcservices import client

url = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000"
inStack = client.XmlRpcClient(url).stack.createStack("in")
for item in range(10):
    inStack.push(item)
    print(f"push item {item}")
