"""Python's zerorpc server with the example `add`, for bench/zerorpc.sh.

Usage: py_zerorpc_server.py ENDPOINT   (prints `listening on ENDPOINT` once bound)
"""
import sys

import zerorpc


class Service:
    def add(self, a, b):
        return a + b


def main():
    server = zerorpc.Server(Service())
    server.bind(sys.argv[1])
    print(f"listening on {sys.argv[1]}", flush=True)
    server.run()


if __name__ == "__main__":
    main()
