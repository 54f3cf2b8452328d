"""Holds many connections to a MessagePack-RPC listener until killed.

Usage: hold_connections.py HOST:PORT COUNT [idle|popwait]

`idle` connects and sends nothing; `popwait` sends each connection's one
`stack.popWait` on a stack of its own with a one-hour timeout, so every
connection has a call blocked in the server. Prints "holding COUNT" once every
connection is open (and every call sent), then waits.
"""
import resource
import signal
import socket
import sys

import msgpack


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    count = int(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "idle"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = []
    for i in range(count):
        s = socket.create_connection((host, int(port)))
        if mode == "popwait":
            s.sendall(msgpack.packb([0, i, "stack.popWait", [f"wait-{i}", 3600.0]]))
        socks.append(s)
    print(f"holding {len(socks)}", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])


if __name__ == "__main__":
    main()
