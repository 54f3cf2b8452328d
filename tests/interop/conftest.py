"""Fixtures for the XML-RPC interop tests.

- ``bin_dir``: where the built binaries live (``RPCS_BIN_DIR``, default ``target/debug``).
- ``example_server``: our ``example-server`` on a free port; yields its base URL.
- ``python_server``: Python's own ``SimpleXMLRPCServer`` with the classic example functions;
  yields its base URL.
- ``run_rpcs``: runs the ``rpcs`` CLI and returns the ``CompletedProcess``.

No fixed ports: every server listens on port 0 and reports the port it got.
"""

import functools
import math
import operator
import os
import queue
import re
import subprocess
import threading
from pathlib import Path
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest

HERE = Path(__file__).resolve().parent

# Safety nets only: no test asserts on timing.
STARTUP_TIMEOUT = 20.0
RPCS_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def bin_dir():
    d = Path(os.environ.get("RPCS_BIN_DIR", HERE / ".." / ".." / "target" / "debug")).resolve()
    for name in ("rpcs", "example-server"):
        if not (d / name).is_file():
            pytest.fail(f"{d / name} is missing: run `cargo build --workspace --bins` first")
    return d


def read_line_with_timeout(stream, timeout):
    """Reads one line from a pipe, giving up after ``timeout`` seconds."""
    q = queue.Queue()
    threading.Thread(target=lambda: q.put(stream.readline()), daemon=True).start()
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        return None


@pytest.fixture(scope="session")
def example_server(bin_dir, tmp_path_factory):
    """Our example server on 127.0.0.1:0; yields ``http://127.0.0.1:PORT/``."""
    log_path = tmp_path_factory.mktemp("example-server") / "stderr.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(bin_dir / "example-server"), "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        line = read_line_with_timeout(proc.stdout, STARTUP_TIMEOUT)
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+/)\n", line or "")
        if not m:
            pytest.fail(
                f"example-server did not announce its URL (got {line!r}); "
                f"stderr: {log_path.read_text(errors='replace')}"
            )
        yield m.group(1)
    finally:
        terminate(proc)
        proc.stdout.close()


# The classic example functions, exactly as Python's documentation has them.
def addtogether(*things):
    """Add together everything in the list `things`."""
    return functools.reduce(operator.add, things)


def quadratic(a, b, c):
    """Determine `x` values satisfying: `a` * x*x + `b` * x + c == 0"""
    b24ac = math.sqrt(b * b - 4.0 * a * c)
    return list(set([(-b - b24ac) / 2.0 * a, (-b + b24ac) / 2.0 * a]))


def remote_repr(arg):
    """Return the `repr()` rendering of the supplied `arg`."""
    return arg


def add(a, b):
    """Add two numbers."""
    return a + b


class _QuietHandler(SimpleXMLRPCRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature from the stdlib
        pass


@pytest.fixture(scope="session")
def python_server():
    """Python's SimpleXMLRPCServer on 127.0.0.1:0; yields ``http://127.0.0.1:PORT/``."""
    server = SimpleXMLRPCServer(
        ("127.0.0.1", 0),
        requestHandler=_QuietHandler,
        logRequests=False,
        allow_none=True,
    )
    server.register_introspection_functions()
    server.register_multicall_functions()
    server.register_function(addtogether)
    server.register_function(quadratic)
    server.register_function(remote_repr)
    server.register_function(add)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def run_rpcs(bin_dir):
    """``run_rpcs(*args, timeout=...)`` runs ``rpcs`` and returns the CompletedProcess (text)."""

    def run(*args, timeout=RPCS_TIMEOUT):
        return subprocess.run(
            [str(bin_dir / "rpcs"), *map(str, args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
        )

    return run


# --- servers with every listener (JSON-RPC, WebSocket and MessagePack-RPC tests) ---------------


class ServerProcess:
    """A server binary that prints one ``listening on URL`` line per listener on stdout.

    ``urls`` holds the announced URLs in order; ``stop()`` sends SIGTERM and waits.
    """

    def __init__(self, argv, nlines, log_path, env=None):
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        self.urls = []
        for _ in range(nlines):
            line = read_line_with_timeout(self.proc.stdout, STARTUP_TIMEOUT)
            m = re.fullmatch(r"listening on (\S+)\n", line or "")
            if not m:
                self.stop()
                pytest.fail(f"{argv[0]} did not announce a listener (got {line!r}); "
                            f"stderr: {self.stderr()}")
            self.urls.append(m.group(1))

    def stderr(self):
        return Path(self.log_path).read_text(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL: for tests that do not check how the server stops."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()

    def stop(self):
        terminate(self.proc)
        self.proc.stdout.close()


def terminate(proc):
    """SIGTERM, then SIGKILL if the process is still there after 10 s; waits for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _host_port(url):
    m = re.fullmatch(r"[a-z+]+://(127\.0\.0\.1):(\d+)/?", url)
    assert m, url
    return m.group(1), int(m.group(2))


class Endpoints:
    """The URLs of one server: ``http`` (``http://H:P/``), ``jsonrpc`` (``jsonrpc+http://H:P/``),
    ``ws`` (``ws://H:P/``), ``msgpack`` (``msgpack://H:P``), ``msgpack_addr`` ((host, port)),
    ``unix`` (socket path or None) and ``unix_url``."""

    def __init__(self, process, unix_path=None):
        self.process = process
        self.http, self.msgpack = process.urls[0], process.urls[1]
        assert self.http.startswith("http://"), process.urls
        assert self.msgpack.startswith("msgpack://"), process.urls
        host, port = _host_port(self.http)
        self.http_addr = (host, port)
        self.jsonrpc = f"jsonrpc+http://{host}:{port}/"
        self.ws = f"ws://{host}:{port}/"
        self.msgpack_addr = _host_port(self.msgpack)
        self.unix = unix_path
        self.unix_url = None
        if unix_path is not None:
            assert process.urls[2] == f"msgpack+unix://{unix_path}", process.urls
            self.unix_url = process.urls[2]


@pytest.fixture(scope="session")
def example_endpoints(bin_dir, tmp_path_factory):
    """Our example server with HTTP (XML-RPC, JSON-RPC, WebSocket) and MessagePack-RPC
    listeners, all on port 0; yields an :class:`Endpoints`."""
    log = tmp_path_factory.mktemp("example-server-all") / "stderr.log"
    proc = ServerProcess(
        [bin_dir / "example-server", "--listen", "127.0.0.1:0", "--msgpack", "127.0.0.1:0"],
        2, log)
    try:
        yield Endpoints(proc)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def master_endpoints(bin_dir, tmp_path_factory):
    """``rpcs master --backend memory`` with HTTP, MessagePack-RPC over TCP and over a Unix
    socket; yields an :class:`Endpoints`. Shared: tests use their own stack/client names."""
    d = tmp_path_factory.mktemp("master-all")
    sock = d / "master.sock"
    proc = ServerProcess(
        [bin_dir / "rpcs", "master", "--listen", "127.0.0.1:0", "--msgpack", "127.0.0.1:0",
         "--msgpack-unix", sock, "--backend", "memory"],
        3, d / "stderr.log")
    try:
        yield Endpoints(proc, str(sock))
    finally:
        proc.stop()
