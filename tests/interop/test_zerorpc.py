"""zerorpc (protocol v3) interop: Python's zerorpc 0.6.3 against our servers, our ``rpcs`` CLI
against Python zerorpc servers (run as subprocesses so they can be killed and restarted),
reversed mode (bind/connect swapped) and several binds, and the wire rules checked with a raw
pyzmq DEALER (reply shape, ``response_to`` type echo, credits, malformed events, floods).

Every zerorpc endpoint uses a free port picked at run time (zerorpc needs a concrete port).
No test asserts on how fast anything is: timeouts are safety nets and sleeps only pace a
consumer or a worker. Three kinds of check do rely on protocol time constants, always with
wide margins: "nothing more arrives within 1 s" (credits, closed channels), the 10 s
silent-client cancel and the 2-3 s Python server heartbeat window (``--heartbeat``). The one
long test (calls of ~22 s against the master) checks that heartbeats keep a call alive.
"""

import json
import math
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import gevent
import msgpack
import pytest
import zerorpc
import zmq.green as zmq

from conftest import read_line_with_timeout

STARTUP_TIMEOUT = 20.0  # a server announcing its endpoints
CALL_TIMEOUT = 20  # zerorpc.Client calls
RECV_TIMEOUT = 10.0  # one raw event
CLI_TIMEOUT = 40.0  # one `rpcs` run
QUIET = 1.0  # how long a raw socket listens to check that nothing (unwanted) arrives

METHODS = ["add", "addtogether", "quadratic", "remote_repr", "spin", "spinList", "spinStream"]
QUADRATIC_DOC = "Determine `x` values satisfying: `a` * x*x + `b` * x + c == 0"


# --- helpers ---------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_endpoint():
    return f"tcp://127.0.0.1:{free_port()}"


# What a Python server binds to get a port from the kernel (it announces the one it got).
ANY_PORT = "tcp://127.0.0.1:*"


def new_id():
    return uuid.uuid4().hex.encode()


def same(a, b):
    """Strict equality: same types all the way down, same dict key order, NaN == NaN, -0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


RED = {1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36}


def expected_pocket(number):
    if number in ("0", "00"):
        return [number, "GREEN", "ZERO", "ZERO"]
    n = int(number)
    assert 1 <= n <= 36, number
    return [number, "RED" if n in RED else "BLACK", "EVEN" if n % 2 == 0 else "ODD",
            "LOW" if n <= 18 else "HIGH"]


def is_spin(item):
    """One roulette spin as the example server describes it: [number, color, parity, half]."""
    return (isinstance(item, list) and len(item) == 4 and isinstance(item[0], str)
            and re.fullmatch(r"0|00|[1-9]|[12][0-9]|3[0-6]", item[0]) is not None
            and item == expected_pocket(item[0]))


class Proc:
    """A subprocess whose stdout announces what it listens on; stderr goes to a log file."""

    def __init__(self, argv, log_path, cwd=None):
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=log, text=True, cwd=cwd)

    def stderr(self):
        return self.log_path.read_text(errors="replace")

    def expect(self, pattern):
        """Reads one stdout line; it must match ``pattern`` (returns the match)."""
        line = read_line_with_timeout(self.proc.stdout, STARTUP_TIMEOUT)
        m = re.fullmatch(pattern, (line or "").rstrip("\n"))
        if not m:
            self.kill()
            pytest.fail(f"{self.argv[0]}: expected a line matching {pattern!r}, got {line!r}; "
                        f"stderr: {self.stderr()}")
        return m

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc.stdout.close()


class ZServer:
    """Our example server: ``http`` URL and the zerorpc ``endpoints`` it announced."""

    def __init__(self, bin_dir, log_path, nbinds=1):
        # Port 0: the server binds a port nobody holds and announces it (a port picked here and
        # bound later could be taken in between by another test's connection).
        argv = [bin_dir / "example-server", "--listen", "127.0.0.1:0"]
        for _ in range(nbinds):
            argv += ["--zerorpc", "tcp://127.0.0.1:0"]
        self.proc = Proc(argv, log_path)
        self.http = self.proc.expect(r"listening on (http://127\.0\.0\.1:\d+/)").group(1)
        self.announced = self.proc.expect(r"listening on (tcp://.+)").group(1).split(" ")
        self.endpoints = self.announced
        self.endpoint = self.endpoints[0]


@pytest.fixture(scope="module")
def zserver(bin_dir, tmp_path_factory):
    """Our example server with two zerorpc binds (module-wide)."""
    server = ZServer(bin_dir, tmp_path_factory.mktemp("zerorpc-example") / "stderr.log", 2)
    try:
        yield server
    finally:
        server.proc.stop()


@pytest.fixture
def client(zserver):
    c = zerorpc.Client(zserver.endpoint, timeout=CALL_TIMEOUT, heartbeat=5)
    try:
        yield c
    finally:
        c.close()


class Master:
    def __init__(self, proc, http, endpoint):
        self.proc, self.http, self.endpoint = proc, http, endpoint


@pytest.fixture(scope="module")
def zmaster(bin_dir, tmp_path_factory):
    """``rpcs master --backend memory`` with HTTP and one zerorpc bind (module-wide)."""
    d = tmp_path_factory.mktemp("zerorpc-master")
    proc = Proc([bin_dir / "rpcs", "master", "--backend", "memory", "--listen", "127.0.0.1:0",
                 "--zerorpc", "tcp://127.0.0.1:0"], d / "stderr.log", cwd=d)
    try:
        urls = [proc.expect(r"listening on (\S+(?: \S+)*)").group(1) for _ in range(2)]
        http = [u for u in urls if u.startswith("http://")]
        zrpc = [u for u in urls if u.startswith("tcp://")]
        assert http and len(zrpc) == 1 and not zrpc[0].endswith(":0"), urls
        yield Master(proc, http[0], zrpc[0])
    finally:
        proc.stop()


# --- a raw DEALER ----------------------------------------------------------------------------------

_raw_context = zmq.Context()


def norm(x):
    return x.encode() if isinstance(x, str) else x


class Raw:
    """A raw zerorpc peer: a (gevent-friendly) DEALER speaking msgpack events by hand."""

    def __init__(self, endpoint, bind=False):
        self.sock = _raw_context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        (self.sock.bind if bind else self.sock.connect)(endpoint)
        self.backlog = []

    def close(self):
        self.sock.close(linger=0)

    def send_frames(self, frames):
        self.sock.send_multipart(frames)

    def send_payload(self, payload):
        self.send_frames([b"", payload])

    def send(self, header, name, args):
        self.send_payload(msgpack.packb([header, name, args], use_bin_type=True))

    def request(self, name, args, mid=None):
        mid = new_id() if mid is None else mid
        self.send({"message_id": mid, "v": 3}, name, args)
        return mid

    def on(self, channel, name, args):
        """Sends an event on an open channel (``response_to`` in the channel id's own type)."""
        self.send({"message_id": new_id(), "v": 3, "response_to": channel}, name, args)

    def recv_frames(self, timeout=RECV_TIMEOUT):
        """The next message's frames, or None when nothing arrives within ``timeout``."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        return self.sock.recv_multipart(zmq.NOBLOCK)

    def next_on(self, channel, timeout=RECV_TIMEOUT, skip_heartbeats=True):
        """The next event on ``channel`` (matched whatever the type of its ``response_to``);
        other channels' events are kept for later. Fails when nothing comes in time."""
        for i, ev in enumerate(self.backlog):
            if self._belongs(ev, channel) and not (skip_heartbeats and ev[1] == "_zpc_hb"):
                return self.backlog.pop(i)
        while True:
            frames = self.recv_frames(timeout)
            assert frames is not None, f"no event on channel {channel!r} within {timeout}s"
            ev = msgpack.unpackb(frames[-1], raw=False, strict_map_key=False)
            if self._belongs(ev, channel):
                if skip_heartbeats and ev[1] == "_zpc_hb":
                    continue
                return ev
            self.backlog.append(ev)

    def quiet_on(self, channel, seconds=QUIET):
        """Events other than heartbeats that arrive on ``channel`` within ``seconds``."""
        got = [ev for ev in self.backlog if self._belongs(ev, channel) and ev[1] != "_zpc_hb"]
        self.backlog = [ev for ev in self.backlog if not self._belongs(ev, channel)]
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return got
            frames = self.recv_frames(left)
            if frames is None:
                return got
            ev = msgpack.unpackb(frames[-1], raw=False, strict_map_key=False)
            if self._belongs(ev, channel):
                if ev[1] != "_zpc_hb":
                    got.append(ev)
            else:
                self.backlog.append(ev)

    @staticmethod
    def _belongs(ev, channel):
        return (isinstance(ev, list) and len(ev) == 3 and isinstance(ev[0], dict)
                and norm(ev[0].get("response_to")) == norm(channel))

    def call(self, name, *args):
        """A whole request/reply on a new channel; returns (name, args) of the reply."""
        mid = self.request(name, list(args))
        ev = self.next_on(mid)
        return ev[1], ev[2]


@pytest.fixture
def raw(zserver):
    r = Raw(zserver.endpoint)
    try:
        yield r
    finally:
        r.close()


# --- Python zerorpc servers (subprocesses) -------------------------------------------------------

PY_SERVER = r'''
import inspect
import sys

import gevent
import zerorpc
import zmq

mode, endpoint, tag, heartbeat = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if "--patch-inspect" in sys.argv:
    # getargspec is gone on Python >= 3.11: without this, _zerorpc_inspect and _zerorpc_args fail.
    inspect.getargspec = lambda f: inspect.getfullargspec(f)[:4]


class Service(object):
    def add(self, a, b):
        """Add two numbers."""
        return a + b

    def hello(self, name):
        """Say hello."""
        return "Hello, %s" % name

    def remote_repr(self, arg):
        return arg

    def whoami(self):
        """The tag this server was started with."""
        return tag

    def fail(self, message):
        """Always fails."""
        raise ValueError(message)

    def slow(self, seconds):
        """Answers "done" after `seconds`."""
        gevent.sleep(float(seconds))
        return "done"

    @zerorpc.stream
    def count(self, n):
        """Count from 0 to n-1."""
        return iter(range(int(n)))

    @zerorpc.stream
    def records(self, n):
        """Stream n small maps."""
        return ({"i": i, "square": i * i} for i in range(int(n)))

    @zerorpc.stream
    def broken(self, n):
        """Stream n numbers, then fail."""
        def gen():
            for i in range(int(n)):
                yield i
            raise ValueError("broken after %s" % n)
        return gen()


server = zerorpc.Server(Service(), name="pyservice", heartbeat=heartbeat)
if mode == "bind":
    server.bind(endpoint)
    # With "tcp://127.0.0.1:*" the port is chosen by the kernel at bind time: say which.
    endpoint = server._events._socket.getsockopt(zmq.LAST_ENDPOINT).decode()
else:
    server.connect(endpoint)
print("ready", endpoint, flush=True)
server.run()
'''

PY_SERVER_METHODS = {"add", "hello", "remote_repr", "whoami", "fail", "slow", "count", "records",
                     "broken"}

# zerorpc 0.6.3's own CLI, with the patch it needs on Python >= 3.10.
PY_CLI = r'''
import collections
import collections.abc
import sys

collections.Iterator = collections.abc.Iterator
from zerorpc.cli import main

sys.exit(main())
'''


@pytest.fixture(scope="module")
def py_scripts(tmp_path_factory):
    d = tmp_path_factory.mktemp("zerorpc-python")
    (d / "pyserver.py").write_text(PY_SERVER)
    (d / "pycli.py").write_text(PY_CLI)
    return d


class PyServer:
    def __init__(self, scripts, mode, endpoint, tag, heartbeat=5, patch_inspect=False):
        self.endpoint = endpoint
        argv = [sys.executable, scripts / "pyserver.py", mode, endpoint, tag, heartbeat]
        if patch_inspect:
            argv.append("--patch-inspect")
        self.proc = Proc(argv, scripts / f"pyserver-{tag}-{uuid.uuid4().hex[:8]}.log")
        self.endpoint = self.proc.expect(r"ready (\S+)").group(1)

    def kill(self):
        self.proc.kill()


@pytest.fixture
def start_py(py_scripts):
    """``start_py(mode, endpoint, tag, ...)`` starts a Python zerorpc server; all are killed
    at the end of the test."""
    started = []

    def start(mode, endpoint, tag="py", **kw):
        s = PyServer(py_scripts, mode, endpoint, tag, **kw)
        started.append(s)
        return s

    try:
        yield start
    finally:
        for s in started:
            s.kill()


@pytest.fixture(scope="module")
def pyserver(py_scripts):
    """A Python zerorpc server bound on a free port (module-wide)."""
    s = PyServer(py_scripts, "bind", ANY_PORT, "module")
    try:
        yield s
    finally:
        s.kill()


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}; stderr: {proc.stderr}"
    return proc.stdout


def lines(proc):
    return ok(proc).splitlines()


def json_lines(proc):
    return [json.loads(x, object_pairs_hook=lambda pairs: pairs) for x in lines(proc)]


# === 1. Python's zerorpc client against our example server =========================================


def test_reference_outputs(client):
    assert client.add(1, 2) == 3
    assert client.addtogether("x", "ÿ", "z") == "xÿz"
    assert client.addtogether(20, 30, 4, 1) == 55
    assert same(client.quadratic(2, -4, 0), [0.0, 8.0])
    assert same(client.quadratic(1, 2, 1), [-1.0])
    assert same(client.remote_repr([1, 2.0, "three"]), [1, 2.0, "three"])
    arthur = {"name": "Arthur", "data": {"age": 42, "sex": "M"}}
    assert same(client.remote_repr(arthur), arthur)


ROUND_TRIP = [
    None, True, False,
    0, 1, -1, 127, 128, 255, 256, -32, -33, -128, -129, 65535, 65536, -32768, -32769,
    2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32, -(2**32), 2**63 - 1, -(2**63),
    0.0, -0.0, 1.5, -2.25, 1e300, 5e-324, float("inf"), float("-inf"), float("nan"),
    "", "ÿ", "ÿ€😀\x00\n", "s" * 31, "s" * 32, "s" * 255, "s" * 256, "s" * 70000,
    b"", b"\x00\xff" * 100, bytes(range(256)) * 300,
    [], [[[]]], [1, [2, [3, []]]], [None, True, 1, 1.5, "s", b"b", [], {}], list(range(20000)),
    {}, {"b": 1, "a": 2, "c": {"z": 0, "y": [1]}}, {"bin": b"\x01", "str": "\x01"},
    {f"k{i}": i for i in reversed(range(1000))},
    msgpack.Timestamp(1136214245, 0), msgpack.Timestamp(0, 0),
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=lambda v: repr(v)[:30])
def test_remote_repr_round_trip(client, value):
    got = client.remote_repr(value)
    assert same(got, value), (value, got)


def test_remote_repr_every_type_at_once(client):
    value = {"list": ROUND_TRIP[:40], "nested": {"z": ROUND_TRIP[40:45], "a": [ROUND_TRIP[45:]]}}
    assert same(client.remote_repr(value), value)


@pytest.mark.parametrize("value", [
    pytest.param(2**64 - 1, id="uint64-over-int64"),
    pytest.param(2**63, id="uint64-2**63"),
    pytest.param(msgpack.ExtType(5, b"ab"), id="unknown-ext-type"),
])
def test_unrepresentable_value_gets_err(zserver, value):
    """Well-formed msgpack the value model cannot hold: answered with ERR (as MessagePack-RPC
    answers with an error), not left unanswered; the client keeps working."""
    c = zerorpc.Client(zserver.endpoint, timeout=8, heartbeat=5)
    try:
        try:
            c.remote_repr(value)
        except zerorpc.RemoteError as e:
            assert isinstance(e.name, str) and e.name and isinstance(e.msg, str)
        except zerorpc.TimeoutExpired:
            pytest.fail(f"no reply at all to remote_repr({value!r}): expected an ERR event")
        else:
            pytest.fail(f"remote_repr({value!r}) unexpectedly succeeded")
        assert c.add(2, 3) == 5
    finally:
        c.close()


def test_errors(client):
    with pytest.raises(zerorpc.RemoteError) as e:
        client.quadratic(1, 0, 1)
    assert e.value.name == "ValueError"
    assert e.value.msg == "math domain error"
    with pytest.raises(zerorpc.RemoteError) as e:
        client.quadratic(1, 0, 9)
    assert (e.value.name, e.value.msg) == ("ValueError", "math domain error")
    with pytest.raises(zerorpc.RemoteError) as e:
        client.noSuchMethod(1)
    assert e.value.name == "Fault-32601"
    assert "noSuchMethod" in e.value.msg
    with pytest.raises(zerorpc.RemoteError) as e:
        client.add(1)
    assert e.value.name == "Fault-32602"
    with pytest.raises(zerorpc.RemoteError) as e:
        client.add(1, 2, 3)
    assert e.value.name == "Fault-32602"
    # The same client (same DEALER) keeps working after errors.
    assert client.add(40, 2) == 42


def test_remote_error_text_for_python(client, zserver, py_scripts):
    """Python's RemoteError prints its traceback field when it is not nil: an empty string
    there makes every error show up with no text at all (str(e) == ''), in Python programs
    and in zerorpc's own CLI alike."""
    failed = subprocess.run([sys.executable, py_scripts / "pycli.py", "-j", zserver.endpoint,
                             "quadratic", "1", "0", "1"], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert failed.returncode != 0
    assert "math domain error" in failed.stderr, failed.stderr
    with pytest.raises(zerorpc.RemoteError) as e:
        client.quadratic(1, 0, 1)
    assert "math domain error" in str(e.value), (
        f"str(RemoteError) is {str(e.value)!r}; traceback field {e.value.traceback!r}")
    with pytest.raises(zerorpc.RemoteError) as e:
        client.noSuchMethod()
    assert "noSuchMethod" in str(e.value), (
        f"str(RemoteError) is {str(e.value)!r}; traceback field {e.value.traceback!r}")


def test_concurrent_calls_on_one_client(client):
    """Many calls in flight on one DEALER: each reply reaches its own caller."""
    jobs = [gevent.spawn(client.add, i, 1000) for i in range(60)]
    jobs += [gevent.spawn(client.remote_repr, "x" * i) for i in range(60)]
    gevent.joinall(jobs, timeout=CALL_TIMEOUT * 2, raise_error=True)
    assert [j.value for j in jobs[:60]] == [i + 1000 for i in range(60)]
    assert [j.value for j in jobs[60:]] == ["x" * i for i in range(60)]


def test_stream_consumed_slowly(client):
    """A few hundred items, the consumer pausing every 50: the server must respect credits
    (Python's client kills the channel on queue overflow) and every item arrives."""
    items = []
    for i, item in enumerate(client.spinStream(400)):
        items.append(item)
        if i % 50 == 49:
            gevent.sleep(0.3)  # pacing only: a slow consumer
    assert len(items) == 400
    bad = [x for x in items if not is_spin(x)]
    assert not bad, bad[:5]
    assert client.add(1, 1) == 2


def test_stream_many_items(client):
    items = list(client.spinStream(5000))
    assert len(items) == 5000 and all(is_spin(x) for x in items)


def test_stream_empty_and_single(client):
    assert list(client.spinStream(0)) == []
    one = list(client.spinStream(1))
    assert len(one) == 1 and is_spin(one[0])


def test_streams_interleaved_on_one_client(client):
    a, b = client.spinStream(150), client.spinStream(150)
    got_a, got_b = [], []
    for x, y in zip(a, b):
        got_a.append(x)
        got_b.append(y)
    assert len(got_a) == len(got_b) == 150
    assert all(is_spin(x) for x in got_a + got_b)


def test_stream_bad_arguments_raise(client):
    with pytest.raises(zerorpc.RemoteError) as e:
        list(client.spinStream("x"))
    assert e.value.name == "Fault-32602"
    with pytest.raises(zerorpc.RemoteError) as e:
        list(client.spinStream())
    assert e.value.name == "Fault-32602"


def test_stream_abandoned_then_server_still_serves(client, zserver):
    """A consumer goes away mid-stream (with credits outstanding): the server keeps serving.
    (The abandoning client is closed as a whole: Python's client itself wedges when one of its
    streams is closed while items are still in flight, whatever the server.)"""
    quitter = zerorpc.Client(zserver.endpoint, timeout=CALL_TIMEOUT)
    stream = quitter.spinStream(10000)
    first = [next(stream) for _ in range(10)]
    assert all(is_spin(x) for x in first)
    quitter.close()
    assert client.add(2, 2) == 4
    assert len(list(client.spinStream(120))) == 120


def test_builtins(client):
    names = client._zerorpc_list()
    assert isinstance(names, list) and all(isinstance(n, str) for n in names)
    assert set(METHODS) <= set(names), names
    assert not [n for n in names if n.startswith("_")], names  # as Python's server lists them
    assert client._zerorpc_name() == "rpcs"
    assert client._zerorpc_ping() == ["pong", "rpcs"]
    assert client._zerorpc_help("quadratic") == QUADRATIC_DOC
    for m in METHODS:
        doc = client._zerorpc_help(m)
        assert isinstance(doc, str) and doc, m
    args = client._zerorpc_args("quadratic")
    # Our server answers the argument names; Python answers a getargspec tuple whose first
    # element is that list. Accept either shape, but the names must be right.
    flat = args[0] if args and isinstance(args[0], list) else args
    assert flat == ["a", "b", "c"], args
    flat = client._zerorpc_args("add")
    assert (flat[0] if flat and isinstance(flat[0], list) else flat) == ["a", "b"]
    with pytest.raises(zerorpc.RemoteError):
        client._zerorpc_help("noSuchMethod")


def test_inspect(client):
    info = client._zerorpc_inspect()
    assert isinstance(info, dict) and info["name"] == "rpcs"
    methods = info["methods"]
    assert isinstance(methods, dict) and set(METHODS) <= set(methods), methods
    assert not [m for m in methods if m.startswith("_")]
    for name, details in methods.items():
        assert isinstance(details["args"], list), (name, details)
        assert all(isinstance(a, dict) and isinstance(a["name"], str) for a in details["args"])
        assert details["doc"] is None or isinstance(details["doc"], str)
    assert [a["name"] for a in methods["quadratic"]["args"]] == ["a", "b", "c"]
    assert [a["name"] for a in methods["add"]["args"]] == ["a", "b"]
    assert methods["quadratic"]["doc"] == QUADRATIC_DOC
    assert methods["spinStream"]["doc"] == client._zerorpc_help("spinStream")


def test_two_binds_both_serve(zserver):
    assert len(set(zserver.endpoints)) == 2, zserver.endpoints
    assert all(not ep.endswith(":0") for ep in zserver.endpoints), zserver.endpoints
    clients = [zerorpc.Client(ep, timeout=CALL_TIMEOUT) for ep in zserver.endpoints]
    try:
        assert [c.add(i, 10) for i, c in enumerate(clients)] == [10, 11]
        assert [len(list(c.spinStream(60))) for c in clients] == [60, 60]
        assert [c._zerorpc_name() for c in clients] == ["rpcs", "rpcs"]
    finally:
        for c in clients:
            c.close()


def test_python_zerorpc_cli_against_our_server(zserver, py_scripts):
    """zerorpc 0.6.3's own CLI: listing (through our _zerorpc_inspect), calls and a stream."""

    def pycli(*args):
        return subprocess.run([sys.executable, py_scripts / "pycli.py", *map(str, args)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT)

    ep = zserver.endpoint
    out = lines(pycli(ep))
    assert out[0] == "[rpcs]", out
    listed = {x.split()[0] for x in out[1:]}
    assert set(METHODS) <= listed, out
    assert any(x.split()[0] == "quadratic" and QUADRATIC_DOC in x for x in out[1:]), out
    out = ok(pycli("-?", ep))
    assert "quadratic(a, b, c)" in out and "add(a, b)" in out, out
    assert ok(pycli("-j", ep, "add", "1", "2")).strip() == "3"
    assert ok(pycli(ep, "addtogether", "x", "ÿ", "z")).strip() == "'xÿz'"
    streamed = json.loads(ok(pycli("-j", "-pj", ep, "spinStream", "7")))
    assert len(streamed) == 7 and all(is_spin(x) for x in streamed)
    failed = pycli("-j", ep, "quadratic", "1", "0", "1")
    assert failed.returncode != 0 and "RemoteError" in failed.stderr, failed.stderr
    # (what the error text looks like there: see test_remote_error_text_for_python)


def test_sigterm_stops_cleanly(bin_dir, tmp_path):
    server = ZServer(bin_dir, tmp_path / "stderr.log")
    c = zerorpc.Client(server.endpoint, timeout=CALL_TIMEOUT)
    try:
        assert c.add(1, 1) == 2
        assert len(list(c.spinStream(300))) == 300
        server.proc.proc.send_signal(signal.SIGTERM)
        for _ in range(400):  # safety net: 40 s (the client keeps heartbeating meanwhile)
            if not server.proc.alive():
                break
            gevent.sleep(0.1)
        assert server.proc.proc.poll() == 0, (server.proc.proc.poll(), server.proc.stderr())
    finally:
        c.close()
        server.proc.kill()


def test_master_over_zerorpc(zmaster, run_rpcs):
    c = zerorpc.Client(zmaster.endpoint, timeout=CALL_TIMEOUT)
    name = f"zm-{uuid.uuid4().hex}"
    try:
        assert c("stack.push", name, "a") == 1
        assert c("stack.push", name, {"b": [1, b"\x02"], "a": None}) == 2
        assert same(c("stack.pop", name), {"b": [1, b"\x02"], "a": None})
        assert c("stack.pop", name) == "a"
        with pytest.raises(zerorpc.RemoteError) as e:
            c("stack.pop", name)
        assert e.value.name == "StackIndexError"
        assert c._zerorpc_ping()[0] == "pong"
        assert "stack.push" in c._zerorpc_list()
    finally:
        c.close()
    # Our CLI on the same endpoint.
    assert ok(run_rpcs("call", zmaster.endpoint, "stack.push", name, "from cli")).strip() == "1"
    assert ok(run_rpcs("call", "-pj", zmaster.endpoint, "stack.pop", name)).strip() \
        == '"from cli"'
    r = run_rpcs("call", zmaster.endpoint, "stack.pop", name)
    assert r.returncode == 1 and "StackIndexError" in r.stderr, (r.returncode, r.stderr)


def test_master_call_longer_than_heartbeat_windows(zmaster):
    """Calls of ~22 s (over four heartbeat intervals) against the master: heartbeats keep
    them alive both ways; a client that never heartbeats has its call cancelled."""
    ep = zmaster.endpoint
    empty, later, silent = (f"zlong-{k}-{uuid.uuid4().hex}" for k in ("empty", "later", "silent"))
    waiter_a = zerorpc.Client(ep, timeout=60, heartbeat=5)
    waiter_b = zerorpc.Client(ep, timeout=60, heartbeat=5)
    pusher = zerorpc.Client(ep, timeout=CALL_TIMEOUT, heartbeat=5)
    quiet = Raw(ep)  # a client that never sends heartbeats
    events = []
    collecting = [True]
    collector = None

    def outcome(c, *args):
        try:
            return ("ok", c(*args))
        except Exception as e:  # noqa: BLE001 - reported below
            return ("exc", e)

    def collect():
        while collecting[0]:
            frames = quiet.recv_frames(0.2)
            if frames is not None:
                events.append(msgpack.unpackb(frames[-1], raw=False, strict_map_key=False))

    try:
        assert pusher("stack.push", f"zwarm-{uuid.uuid4().hex}", "x") == 1
        done_mid = quiet.request("stack.push", [f"zq-{uuid.uuid4().hex}", "y"])
        silent_mid = quiet.request("stack.popWait", [silent, 40])
        collector = gevent.spawn(collect)
        ga = gevent.spawn(outcome, waiter_a, "stack.popWait", empty, 22)
        gb = gevent.spawn(outcome, waiter_b, "stack.popWait", later, 60)
        gevent.sleep(21)  # pacing: push long after the heartbeat windows have passed
        pusher("stack.push", later, "late item")
        gevent.joinall([ga, gb], timeout=60)
        kind, value = ga.value
        assert kind == "exc" and isinstance(value, zerorpc.RemoteError), ga.value
        assert value.name == "StackIndexError", (value.name, value.msg)
        assert gb.value == ("ok", "late item")
        # The silent client's call must have been cancelled by now (its client was silent for
        # over 10 s): an item pushed now stays on the stack.
        pusher("stack.push", silent, "kept")
        assert pusher("stack.pop", silent) == "kept"
    finally:
        collecting[0] = False
        for c in (waiter_a, waiter_b, pusher):
            c.close()
    if collector is not None:
        collector.join(5)
    quiet.close()
    mine = [e for e in events if isinstance(e, list) and len(e) == 3 and isinstance(e[0], dict)]
    on_silent = [e for e in mine if e[0].get("response_to") == silent_mid]
    assert any(e[1] == "_zpc_hb" for e in on_silent), mine  # the server heartbeats the channel
    assert not [e for e in on_silent if e[1] == "OK"], on_silent
    on_done = [e for e in mine if e[0].get("response_to") == done_mid]
    assert [e[1] for e in on_done] == ["OK"], on_done  # nothing after the reply (closed)


# === 2. Our CLI against a Python zerorpc server =====================================================


def test_cli_calls_python_server(pyserver, run_rpcs):
    url = pyserver.endpoint
    assert ok(run_rpcs("call", "-j", url, "add", "1", "2")).strip() == "3"
    assert ok(run_rpcs("call", url, "add", "ab", "cd")).strip() == "abcd"  # strings by default
    assert ok(run_rpcs("call", url, "hello", "RPC")).strip() == "Hello, RPC"
    assert json.loads(ok(run_rpcs("call", "--print-json", url, "hello", "ÿ"))) == "Hello, ÿ"
    assert json.loads(ok(run_rpcs("call", "-pj", url, "hello", "ÿ"))) == "Hello, ÿ"
    value = '{"b": 1, "a": [1, 2.5, null, true, "ÿ", {"z": {}, "y": []}]}'
    got = json.loads(ok(run_rpcs("call", "-j", "-pj", url, "remote_repr", value)),
                     object_pairs_hook=lambda pairs: pairs)
    assert got == json.loads(value, object_pairs_hook=lambda pairs: pairs)
    assert json.loads(ok(run_rpcs("call", "-j", "-pj", url, "remote_repr", str(2**63 - 1)))) \
        == 2**63 - 1
    assert ok(run_rpcs("call", url, "whoami")).strip() == "module"


def test_cli_errors_from_python_server(pyserver, run_rpcs):
    r = run_rpcs("call", pyserver.endpoint, "fail", "boom")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "ValueError" in r.stderr and "boom" in r.stderr, r.stderr
    assert r.stderr.startswith("fault "), r.stderr
    r = run_rpcs("call", pyserver.endpoint, "noSuchMethod")
    assert r.returncode == 1 and "noSuchMethod" in r.stderr, (r.returncode, r.stderr)
    r = run_rpcs("call", pyserver.endpoint, "add", "1")  # TypeError on the Python side
    assert r.returncode == 1 and "TypeError" in r.stderr, (r.returncode, r.stderr)


def test_cli_streams_python_server(pyserver, run_rpcs):
    url = pyserver.endpoint
    assert lines(run_rpcs("call", "-j", url, "count", "5")) == ["0", "1", "2", "3", "4"]
    assert json_lines(run_rpcs("call", "-j", "-pj", url, "count", "3")) == [0, 1, 2]
    assert lines(run_rpcs("call", "-j", url, "count", "0")) == []
    # More than Python's 100-event window: the CLI must grant credits as it goes.
    assert lines(run_rpcs("call", url, "count", "350")) == [str(i) for i in range(350)]
    assert json_lines(run_rpcs("call", "-j", "-pj", url, "records", "4")) == [
        [("i", i), ("square", i * i)] for i in range(4)]


def test_cli_stream_failing_midway(pyserver, run_rpcs):
    r = run_rpcs("call", "-j", pyserver.endpoint, "broken", "3")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.splitlines() == ["0", "1", "2"]
    assert "ValueError" in r.stderr and "broken after 3" in r.stderr, r.stderr


def check_python_listing(text):
    out = text.splitlines()
    listed = [x for x in out if x and not x[0].isspace()]
    assert PY_SERVER_METHODS <= set(listed), out
    assert not [x for x in listed if x.startswith("_")], out
    i = out.index("add")
    assert out[i + 1].strip() == "Add two numbers.", out
    i = out.index("count")
    assert out[i + 1].strip() == "Count from 0 to n-1.", out


@pytest.mark.parametrize("how", ["methods", "call"])
def test_cli_lists_python_server_methods(pyserver, run_rpcs, how):
    """Python 3.11's server fails _zerorpc_inspect: the CLI falls back to _zerorpc_list and
    _zerorpc_help."""
    check_python_listing(ok(run_rpcs(how, pyserver.endpoint)))


def test_cli_lists_python_server_methods_json(pyserver, run_rpcs):
    got = json.loads(ok(run_rpcs("methods", "--json", pyserver.endpoint)))
    by_name = {m["name"]: m for m in got}
    assert PY_SERVER_METHODS <= set(by_name), got
    assert by_name["add"]["help"] == "Add two numbers."
    assert by_name["broken"]["help"] == "Stream n numbers, then fail."


def test_cli_lists_python_server_with_working_inspect(start_py, run_rpcs):
    """A Python server whose _zerorpc_inspect works (getargspec patched back in)."""
    s = start_py("bind", ANY_PORT, "inspect", patch_inspect=True)
    check_python_listing(ok(run_rpcs("methods", s.endpoint)))
    by_name = {m["name"]: m for m in json.loads(ok(run_rpcs("methods", "--json", s.endpoint)))}
    assert PY_SERVER_METHODS <= set(by_name)
    assert by_name["hello"]["help"] == "Say hello."


def test_cli_after_python_server_restart(start_py, run_rpcs):
    first = start_py("bind", ANY_PORT, "first")
    ep = first.endpoint
    assert ok(run_rpcs("call", ep, "whoami")).strip() == "first"
    assert lines(run_rpcs("call", "-j", ep, "count", "3")) == ["0", "1", "2"]
    first.kill()
    r = run_rpcs("call", "--timeout", "2", ep, "whoami")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)  # nobody there: no answer
    start_py("bind", ep, "second")  # the same port again
    assert ok(run_rpcs("call", ep, "whoami")).strip() == "second"
    assert ok(run_rpcs("call", "-j", ep, "add", "2", "3")).strip() == "5"


def test_cli_heartbeat_option(start_py, run_rpcs):
    """A Python server beating every second drops a call whose client is silent for ~2-3 s:
    with --heartbeat 1 the CLI keeps a 6 s call alive; with the default (5 s) it does not."""
    s = start_py("bind", ANY_PORT, "hb1", heartbeat=1)
    assert ok(run_rpcs("call", "--heartbeat", "1", s.endpoint, "slow", "6")).strip() == "done"
    r = run_rpcs("call", "--timeout", "9", s.endpoint, "slow", "6")
    assert r.returncode != 0 and r.stdout.strip() != "done", (r.returncode, r.stdout, r.stderr)


def test_cli_timeout_option(run_rpcs):
    ep = free_endpoint()  # nothing listens there
    r = run_rpcs("call", "--timeout", "2", ep, "add", "1", "2")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""


def test_cli_against_our_server(zserver, run_rpcs):
    url = zserver.endpoint
    assert ok(run_rpcs("call", url, "addtogether", "x", "ÿ", "z")).strip() == "xÿz"
    assert ok(run_rpcs("call", "-j", url, "addtogether", "20", "30", "4", "1")).strip() == "55"
    assert json.loads(ok(run_rpcs("call", "-j", "-pj", url, "quadratic", "2", "-4", "0"))) \
        == [0.0, 8.0]
    r = run_rpcs("call", "-j", url, "quadratic", "1", "0", "1")
    assert r.returncode == 1 and "math domain error" in r.stderr, (r.returncode, r.stderr)
    spins = json_lines(run_rpcs("call", "-j", "-pj", url, "spinStream", "120"))
    assert len(spins) == 120 and all(is_spin(x) for x in spins)
    listed = ok(run_rpcs("methods", url)).splitlines()
    assert set(METHODS) <= {x for x in listed if x and not x[0].isspace()}
    assert QUADRATIC_DOC in [x.strip() for x in listed]


# === 3. Reversed mode (bind/connect swapped) and several endpoints ==================================


def run_rpcs_bg(bin_dir, *args):
    return subprocess.Popen([str(bin_dir / "rpcs"), *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            encoding="utf-8")


def finish(proc):
    try:
        out, err = proc.communicate(timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"rpcs did not finish; stdout {out!r}, stderr {err!r}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_cli_bind_python_server_connects(bin_dir, start_py):
    ep = free_endpoint()
    cli = run_rpcs_bg(bin_dir, "call", "--bind", ep, "-j", "add", "20", "22")
    start_py("connect", ep, "worker")
    assert ok(finish(cli)).strip() == "42"
    # The worker stays connected-to: more CLI runs bind the same endpoint again.
    cli = run_rpcs_bg(bin_dir, "call", "--bind", ep, "-j", "count", "4")
    assert lines(finish(cli)) == ["0", "1", "2", "3"]
    cli = run_rpcs_bg(bin_dir, "call", "--bind", ep, "fail", "reversed")
    r = finish(cli)
    assert r.returncode == 1 and "reversed" in r.stderr, (r.returncode, r.stderr)
    cli = run_rpcs_bg(bin_dir, "call", "--bind", ep, "whoami")
    assert ok(finish(cli)).strip() == "worker"


def test_cli_bind_waits_for_late_worker(bin_dir, start_py):
    ep = free_endpoint()
    cli = run_rpcs_bg(bin_dir, "call", "--bind", ep, "hello", "late")
    gevent.sleep(1)  # pacing: the worker shows up after the CLI started waiting
    assert cli.poll() is None, finish(cli)
    start_py("connect", ep, "late-worker")
    assert ok(finish(cli)).strip() == "Hello, late"


def test_cli_several_binds(bin_dir, start_py):
    a, b = free_endpoint(), free_endpoint()
    cli = run_rpcs_bg(bin_dir, "call", "--bind", a, "--bind", b, "whoami")
    start_py("connect", b, "on-b")  # only the second endpoint gets a worker
    assert ok(finish(cli)).strip() == "on-b"


def test_cli_bind_nobody_comes_times_out(run_rpcs):
    r = run_rpcs("call", "--timeout", "2", "--bind", free_endpoint(), "add", "1", "2")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)


def test_cli_connect_option(zserver, pyserver, run_rpcs):
    assert ok(run_rpcs("call", "--connect", pyserver.endpoint, "hello", "you")).strip() \
        == "Hello, you"
    for ep in zserver.endpoints:
        assert ok(run_rpcs("call", "-j", "--connect", ep, "add", "1", "2")).strip() == "3"
    # Both binds of one server at once.
    a, b = zserver.endpoints
    assert ok(run_rpcs("call", "-j", "--connect", a, "--connect", b, "add", "3", "4")).strip() \
        == "7"
    assert lines(run_rpcs("call", "-j", "--connect", pyserver.endpoint, "count", "3")) \
        == ["0", "1", "2"]


def test_master_connects_to_a_binding_client(bin_dir, tmp_path):
    """`rpcs master --zerorpc-connect EP`: the master's ROUTER connects to a client that binds."""
    ep = free_endpoint()
    c = zerorpc.Client(timeout=CALL_TIMEOUT, heartbeat=5)
    c.bind(ep)
    proc = Proc([bin_dir / "rpcs", "master", "--backend", "memory", "--listen", "127.0.0.1:0",
                 "--zerorpc-connect", ep], tmp_path / "stderr.log", cwd=tmp_path)
    try:
        first = proc.expect(r".*").group(0)
        if not first.startswith("listening on http://"):
            proc.expect(r"listening on http://127\.0\.0\.1:\d+/")
        name = f"zrev-{uuid.uuid4().hex}"
        assert c("stack.push", name, "a") == 1
        assert c("stack.push", name, {"b": [1, b"\x02"]}) == 2
        assert c("stack.pop", name) == {"b": [1, b"\x02"]}
        assert c("stack.pop", name) == "a"
        with pytest.raises(zerorpc.RemoteError) as e:
            c("stack.pop", name)
        assert e.value.name == "StackIndexError"
        assert c._zerorpc_ping()[0] == "pong"
    finally:
        c.close()
        proc.kill()


# === 4. The wire, with a raw DEALER ================================================================


HEX32 = re.compile(rb"[0-9a-fA-F]{32}")


def check_header(header, mid):
    assert isinstance(header, dict) and all(isinstance(k, str) for k in header), header
    assert header.get("v") == 3, header
    assert type(header["response_to"]) is type(mid), (
        f"response_to came back as {type(header['response_to']).__name__}, "
        f"sent as {type(mid).__name__}")
    assert header["response_to"] == mid
    own = header["message_id"]
    assert isinstance(own, bytes) and HEX32.fullmatch(own), own
    assert own != norm(mid)


@pytest.mark.parametrize("mid_type", ["bin", "str"])
def test_reply_shape_and_response_to_type(raw, mid_type):
    def new_mid():
        return new_id() if mid_type == "bin" else uuid.uuid4().hex

    # OK: exactly ['', event].
    mid = new_mid()
    raw.request("add", [1, 2], mid)
    frames = raw.recv_frames()
    assert frames is not None, "no reply"
    assert len(frames) == 2 and frames[0] == b"", frames
    event = msgpack.unpackb(frames[1], raw=False)
    assert isinstance(event, list) and len(event) == 3, event
    header, name, args = event
    assert isinstance(name, str) and name == "OK", event  # names are msgpack str
    assert args == [3]
    check_header(header, mid)

    # ERR: [name, message, traceback].
    mid = new_mid()
    raw.request("quadratic", [1, 0, 1], mid)
    header, name, args = raw.next_on(mid)
    check_header(header, mid)
    assert name == "ERR" and isinstance(args, list) and len(args) == 3, (name, args)
    assert args[:2] == ["ValueError", "math domain error"] and isinstance(args[2], str)

    # A stream: STREAM items (unwrapped), credits granted on the channel, STREAM_DONE nil.
    mid = new_mid()
    raw.request("spinStream", [3], mid)
    header, name, item = raw.next_on(mid)
    check_header(header, mid)
    assert name == "STREAM" and is_spin(item), (name, item)
    raw.on(mid, "_zpc_more", [10])
    rest = [raw.next_on(mid) for _ in range(3)]
    for header, _, _ in rest:
        check_header(header, mid)
    assert [e[1] for e in rest] == ["STREAM", "STREAM", "STREAM_DONE"], rest
    assert all(is_spin(e[2]) for e in rest[:2]) and rest[2][2] is None
    assert raw.quiet_on(mid) == []


def test_python_test_vector(raw):
    """The exact bytes Python's client sends for hello("RPC"): our server knows no `hello`, so
    it answers ERR on the channel whose id is that bin message_id."""
    payload = bytes.fromhex(
        "9382aa6d6573736167655f6964c4203061356565306563633565343466653339366530623665326130"
        "313638323332a17603a568656c6c6f91a3525043")
    raw.send_payload(payload)
    mid = b"0a5ee0ecc5e44fe396e0b6e2a0168232"
    header, name, args = raw.next_on(mid)
    check_header(header, mid)
    assert name == "ERR" and args[0] == "Fault-32601", args


def test_stream_credits_exact(raw):
    """One credit at the start; `_zpc_more [n]` allows exactly n more events (STREAM_DONE
    included)."""
    mid = raw.request("spinStream", [5])
    assert raw.next_on(mid)[1] == "STREAM"
    assert raw.quiet_on(mid) == [], "sent more than the initial credit"
    raw.on(mid, "_zpc_more", [2])
    assert [raw.next_on(mid)[1] for _ in range(2)] == ["STREAM", "STREAM"]
    assert raw.quiet_on(mid) == [], "sent more than granted"
    raw.on(mid, "_zpc_more", [2])
    assert [raw.next_on(mid)[1] for _ in range(2)] == ["STREAM", "STREAM"]
    assert raw.quiet_on(mid) == [], "STREAM_DONE sent without a credit"
    raw.on(mid, "_zpc_more", [1])
    done = raw.next_on(mid)
    assert done[1] == "STREAM_DONE" and done[2] is None, done
    raw.on(mid, "_zpc_more", [50])  # credits after the end: nothing more on a closed channel
    assert raw.quiet_on(mid) == []


def _hdr(**kw):
    h = {"message_id": new_id(), "v": 3}
    h.update(kw)
    return h


def _pack(*values):
    return msgpack.packb(list(values) if len(values) != 1 else values[0], use_bin_type=True)


GOOD = msgpack.packb([{"message_id": b"f" * 32, "v": 3}, "add", [1, 2]], use_bin_type=True)

MALFORMED = {
    "garbage": [b"", b"\xc1\xc1 this is not msgpack \xff"],
    "truncated": [b"", GOOD[:7]],
    "trailing-bytes": [b"", GOOD + b"\x00\x01"],
    "empty-payload": [b"", b""],
    "only-delimiter": [b""],
    "int": [b"", _pack(42)],
    "str": [b"", _pack("add")],
    "empty-list": [b"", _pack([])],
    "map": [b"", _pack({"name": "add"})],
    "two-elements": [b"", _pack(_hdr(), "add")],
    "header-not-map": [b"", _pack("header", "add", [1, 2])],
    "header-nil": [b"", _pack(None, "add", [1, 2])],
    "message_id-int": [b"", _pack(_hdr(message_id=7), "add", [1, 2])],
    "message_id-nil": [b"", _pack(_hdr(message_id=None), "add", [1, 2])],
    "message_id-list": [b"", _pack(_hdr(message_id=[1, 2]), "add", [1, 2])],
    "message_id-missing": [b"", _pack({"v": 3}, "add", [1, 2])],
    "v-str": [b"", _pack(_hdr(v="three"), "add", [1, 2])],
    "header-bin-keys": [b"", _pack({b"message_id": new_id(), b"v": 3}, "add", [1, 2])],
    "header-int-keys": [b"", msgpack.packb([{1: 2}, "add", [1, 2]])],
    "name-int": [b"", _pack(_hdr(), 5, [1, 2])],
    "name-nil": [b"", _pack(_hdr(), None, [1, 2])],
    "name-huge": [b"", _pack(_hdr(), "x" * 100000, [])],
    "args-str": [b"", _pack(_hdr(), "add", "12")],
    "args-int": [b"", _pack(_hdr(), "add", 12)],
    "response_to-int": [b"", _pack(_hdr(response_to=5), "_zpc_hb", [0])],
    "unknown-channel-hb": [b"", _pack(_hdr(response_to=new_id()), "_zpc_hb", [0])],
    "unknown-channel-more": [b"", _pack(_hdr(response_to=new_id()), "_zpc_more", [10])],
    "unknown-channel-ok": [b"", _pack(_hdr(response_to=new_id()), "OK", [1])],
    "unknown-channel-err": [b"", _pack(_hdr(response_to=new_id()), "ERR", ["E", "m", ""])],
    "unknown-channel-stream": [b"", _pack(_hdr(response_to=new_id()), "STREAM", 1)],
    "unknown-channel-call": [b"", _pack(_hdr(response_to=new_id().decode()), "add", [1, 2])],
    "bare-heartbeat": [b"", _pack(_hdr(), "_zpc_hb", [0])],
    "bare-more": [b"", _pack(_hdr(), "_zpc_more", [1])],
    "many-frames": [b"", b"a", b"b", b"\xc1"],
    "ext-in-header": [b"", _pack({"message_id": msgpack.ExtType(1, b"x"), "v": 3}, "add", [1])],
}

# Payloads that could bring a whole process down (stack depth, huge allocations): each gets a
# server of its own so that a crash shows up here and nowhere else.
HOSTILE = {
    "deep-nesting-payload": [b"", b"\x91" * 100000 + b"\xc0"],
    "deep-nesting-in-args": [b"", b"\x93" + _pack(_hdr()) + _pack("remote_repr")
                             + b"\x91" * 100001 + b"\xc0"],
    "huge-declared-array": [b"", b"\xdd\xff\xff\xff\xff"],
    "huge-declared-map": [b"", b"\xdf\xff\xff\xff\xff"],
    "huge-declared-str": [b"", b"\xdb\xff\xff\xff\xff" + b"x" * 10],
    "huge-declared-args": [b"", b"\x93" + _pack(_hdr()) + _pack("add") + b"\xdd\x7f\xff\xff\xff"],
}


@pytest.mark.parametrize("frames", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_event_leaves_server_serving(zserver, client, raw, frames):
    raw.send_frames(frames)
    assert client.add(20, 22) == 42  # another client
    assert raw.call("add", 1, 2) == ("OK", [3])  # the same connection
    assert zserver.proc.alive()


@pytest.mark.parametrize("frames", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_payload_does_not_crash(bin_dir, tmp_path, frames):
    server = ZServer(bin_dir, tmp_path / "stderr.log")
    r = Raw(server.endpoint)
    c = zerorpc.Client(server.endpoint, timeout=CALL_TIMEOUT)
    try:
        r.send_frames(frames)
        assert c.add(20, 22) == 42
        assert r.call("add", 1, 2) == ("OK", [3])
        assert server.proc.alive(), server.proc.stderr()
    finally:
        c.close()
        r.close()
        server.proc.kill()


def test_flood_on_fake_channel(zserver, client, raw):
    """1000 `_zpc_more` / heartbeat events on a channel that does not exist, while another
    client keeps calling; afterwards the server still answers everyone."""
    fake = new_id()
    for i in range(1000):
        if i % 2:
            raw.on(fake, "_zpc_hb", [0])
        else:
            raw.on(fake, "_zpc_more", [100])
        if i % 100 == 99:
            assert client.add(i, 1) == i + 1
    assert raw.call("add", 5, 5) == ("OK", [10])
    assert client.remote_repr("still here") == "still here"
    fresh = zerorpc.Client(zserver.endpoint, timeout=CALL_TIMEOUT)
    try:
        assert len(list(fresh.spinStream(200))) == 200
    finally:
        fresh.close()
    assert raw.quiet_on(fake) == []  # nothing is ever sent on a channel that does not exist
    assert zserver.proc.alive()


def test_flood_on_open_stream_channel(raw, client):
    """Heartbeats, credit grants and junk flooding a live stream's channel: the stream still
    completes with every item, and nothing breaks."""
    mid = raw.request("spinStream", [3])
    assert raw.next_on(mid)[1] == "STREAM"
    for i in range(1000):
        raw.on(mid, "_zpc_hb", [0])
        if i % 10 == 0:
            raw.on(mid, "_zpc_more", [-5] if i % 20 else ["junk"])
    raw.on(mid, "_zpc_more", [2**63 - 1])
    raw.on(mid, "_zpc_more", [2**63 - 1])  # does not overflow the credit counter
    names = [raw.next_on(mid)[1] for _ in range(3)]
    assert names == ["STREAM", "STREAM", "STREAM_DONE"]
    assert raw.quiet_on(mid) == []
    assert client.add(1, 2) == 3
    assert raw.call("add", 2, 2) == ("OK", [4])


def test_duplicate_message_id_is_not_fatal(raw, client):
    """Two requests with the same id: whatever the server does, it keeps serving."""
    mid = new_id()
    raw.request("add", [1, 1], mid)
    raw.request("add", [2, 2], mid)
    first = raw.next_on(mid)
    assert first[1] == "OK" and first[2] in ([2], [4]), first
    assert client.add(3, 3) == 6
    assert raw.call("add", 4, 4) == ("OK", [8])


def test_raw_connection_dropped_mid_stream(bin_dir, tmp_path):
    server = ZServer(bin_dir, tmp_path / "stderr.log")  # its own: it is killed at the end
    c = zerorpc.Client(server.endpoint, timeout=CALL_TIMEOUT)
    r = Raw(server.endpoint)
    try:
        mid = r.request("spinStream", [100000])
        assert r.next_on(mid)[1] == "STREAM"
        r.on(mid, "_zpc_more", [100])
        r.next_on(mid)
        r.close()  # gone for good, channel open, credits outstanding
        assert c.add(1, 1) == 2
        assert len(list(c.spinStream(150))) == 150
        assert server.proc.alive()
    finally:
        c.close()
        server.proc.kill()


def test_ipc_endpoints_both_ways(bin_dir, tmp_path, run_rpcs):
    """ipc:// endpoints work like tcp:// ones: our server bound on a Unix-domain
    ZeroMQ endpoint, reached by Python's client and by our CLI."""
    endpoint = f"ipc://{tmp_path / 'rpcs.ipc'}"
    proc = subprocess.Popen([str(bin_dir / "example-server"), "--listen", "127.0.0.1:0",
                             "--zerorpc", endpoint], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = [read_line_with_timeout(proc.stdout, STARTUP_TIMEOUT) for _ in range(2)]
        assert f"listening on {endpoint}\n" in lines, lines
        c = zerorpc.Client(timeout=CALL_TIMEOUT)
        c.connect(endpoint)
        try:
            assert c.addtogether("a", "b", "c") == "abc"
        finally:
            c.close()
        out = run_rpcs("call", "-j", endpoint, "add", "2", "3")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "5"
    finally:
        proc.terminate()
        assert proc.wait(timeout=CLI_TIMEOUT) == 0
