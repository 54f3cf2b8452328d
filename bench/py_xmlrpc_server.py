"""Python's SimpleXMLRPCServer with the example `add`, for bench/xmlrpc.sh.

Prints `listening on URL` once bound, like the Rust example server.
"""
import sys
from xmlrpc.server import SimpleXMLRPCServer, SimpleXMLRPCRequestHandler


class QuietHandler(SimpleXMLRPCRequestHandler):
    def log_message(self, *args):
        pass


def add(a, b):
    return a + b


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = SimpleXMLRPCServer(("127.0.0.1", port), requestHandler=QuietHandler,
                                allow_none=True, logRequests=False)
    server.register_function(add)
    server.register_multicall_functions()
    host, port = server.server_address
    print(f"listening on http://{host}:{port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
