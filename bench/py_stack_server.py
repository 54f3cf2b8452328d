"""Python's SimpleXMLRPCServer with an in-memory stack.push / stack.pop, the
comparison point for bench/master.sh. Prints `listening on URL` once bound."""
from xmlrpc.server import SimpleXMLRPCServer, SimpleXMLRPCRequestHandler

stacks = {}


class QuietHandler(SimpleXMLRPCRequestHandler):
    def log_message(self, *args):
        pass


def push(name, item):
    stack = stacks.setdefault(name, [])
    stack.append(item)
    return len(stack)


def push_many(name, items):
    stack = stacks.setdefault(name, [])
    stack.extend(items)
    return len(stack)


def pop(name):
    stack = stacks.get(name)
    if not stack:
        raise IndexError("pop from empty stack")
    return stack.pop()


def main():
    server = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=QuietHandler,
                                allow_none=True, logRequests=False)
    server.register_function(push, "stack.push")
    server.register_function(push_many, "stack.pushMany")
    server.register_function(pop, "stack.pop")
    host, port = server.server_address
    print(f"listening on http://{host}:{port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
