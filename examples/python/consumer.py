#!/usr/bin/env python3
"""Consumer of the simple stack example: pops stack "in" until it is empty.

Usage: consumer.py [URL]   (default http://localhost:8000)
"""

import sys

from rpcservices_client import Master, StackIndexError

url = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000"
stack = Master(url).stack

stack.create("in")
while True:
    try:
        item = stack.pop("in")
    except StackIndexError:
        break
    print(f"pop item {item}")
