#!/usr/bin/env python3
"""Consumer of the simple stack example: pops stack "in" until it is empty.

Usage: consumer.py [URL]   (default http://localhost:8000)

Uses the rpcservices package (``pip install ./clients/python``); from a checkout it is found
without installing.
"""

import sys
from pathlib import Path

try:
    from rpcservices import client, services
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))
    from rpcservices import client, services

url = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000"
inStack = client.XmlRpcClient(url).stack.createStack("in")
while True:
    try:
        item = inStack.pop()
    except services.stack.StackIndexError:
        break
    print(f"pop item {item}")
