"""MessagePack-RPC: pynvim's msgpack-rpc session against our servers, the wire rules with the
``msgpack`` package over raw sockets, the master over TCP and a Unix socket, and our CLI on one
master through every transport.

No test asserts on timing: timeouts are safety nets.
"""

import contextlib
import datetime
import json
import socket
import threading
import time
import uuid
import xmlrpc.client

import msgpack
import pytest
from pynvim.msgpack_rpc import socket_session, tcp_session

from conftest import Endpoints, ServerProcess

SOCKET_TIMEOUT = 20.0  # safety net for every receive
UTC = datetime.timezone.utc


# --- a raw MessagePack-RPC connection ------------------------------------------------------------


class Conn:
    """A raw MessagePack-RPC connection: ``send`` values, ``recv`` decoded messages."""

    def __init__(self, addr):
        family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(SOCKET_TIMEOUT)
        self.sock.connect(addr)
        if family == socket.AF_INET:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.unpacker = msgpack.Unpacker(timestamp=3)  # timestamps as aware datetimes
        self.pending = []
        self.handlers = {}
        self.served = []
        self.notifications = []

    def close(self):
        self.sock.close()

    @staticmethod
    def pack(value):
        return msgpack.packb(value, datetime=True)

    def send(self, *values):
        self.sendraw(b"".join(self.pack(v) for v in values))

    def sendraw(self, data):
        self.sock.sendall(data)

    def recv(self):
        """The next message; None once the server closed the connection."""
        while True:
            for msg in self.unpacker:
                return msg
            data = self.sock.recv(65536)
            if not data:
                return None
            self.unpacker.feed(data)

    def _serve(self, msg):
        """Answers the server's requests; returns responses, records notifications."""
        assert msg is not None, "connection closed"
        if msg[0] == 0:
            _, msgid, method, params = msg
            self.served.append((method, params))
            handler = self.handlers.get(method)
            if handler is None:
                self.send([1, msgid, [-32601, f"no method {method}"], None])
            else:
                try:
                    self.send([1, msgid, None, handler(*params)])
                except CallbackFault as f:
                    self.send([1, msgid, list(f.args), None])
            return None
        if msg[0] == 2:
            self.notifications.append(msg)
            return None
        return msg

    def response(self, msgid):
        """Waits for the response to ``msgid``, serving server calls meanwhile."""
        while True:
            for i, r in enumerate(self.pending):
                if r[1] == msgid:
                    return self.pending.pop(i)
            r = self._serve(self.recv())
            if r is not None:
                assert r[0] == 1 and len(r) == 4, r
                self.pending.append(r)

    def request(self, msgid, method, *params):
        self.send([0, msgid, method, list(params)])
        return self.response(msgid)

    def call(self, method, *params, msgid=None):
        msgid = msgid if msgid is not None else uuid.uuid4().int & 0x7FFFFFFF
        r = self.request(msgid, method, *params)
        assert r[2] is None, r
        return r[3]

    def fault(self, method, *params):
        r = self.request(424242, method, *params)
        assert r[2] is not None and r[3] is None, r
        code, message = r[2]
        return code, message

    def next_notification(self):
        while not self.notifications:
            r = self._serve(self.recv())
            assert r is None, f"unexpected response {r}"
        return self.notifications.pop(0)

    def closed_by_server(self):
        """True once the server closes this connection (reads what is left first)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


class CallbackFault(Exception):
    pass


@pytest.fixture(scope="module")
def ep(example_endpoints):
    return example_endpoints


@pytest.fixture
def conn(ep):
    c = Conn(ep.msgpack_addr)
    yield c
    c.close()


# --- pynvim's msgpack-rpc session ----------------------------------------------------------------


class RemoteError(Exception):
    pass


@contextlib.contextmanager
def safety_net(session, seconds=SOCKET_TIMEOUT):
    """Stops the session's event loop if an answer never comes (a blocked test fails instead
    of hanging)."""
    timer = threading.Timer(seconds, lambda: session.threadsafe_call(session.stop))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.fixture
def nvim_session(ep):
    # tcp_session first sends the notification nvim_set_client_info: a method our server
    # does not have, which must be ignored without an answer.
    s = tcp_session(*ep.msgpack_addr)
    s.error_wrapper = lambda err: RemoteError(*err)
    yield s
    s.close()


def test_pynvim_calls(nvim_session):
    s = nvim_session
    with safety_net(s):
        assert s.request("addtogether", "x", "ÿ", "z") == "xÿz"
        assert s.request("addtogether", 20, 30, 4, 1) == 55
        assert s.request("quadratic", 2, -4, 0) == [0.0, 8.0]
        assert s.request("quadratic", 1, 2, 1) == [-1.0]
        d = {"name": "Arthur", "data": {"age": 42, "sex": "M"}}
        got = s.request("remote_repr", d)
        assert got == d and list(got) == ["name", "data"]
        assert s.request("remote_repr", b"\x00\xff") == b"\x00\xff"
        assert s.request("add", [1], [2]) == [1, 2]
        assert "line_counter" in s.request("system.listMethods")


def test_pynvim_errors_raised(nvim_session):
    s = nvim_session
    with safety_net(s):
        with pytest.raises(RemoteError) as e:
            s.request("quadratic", 1, 0, 1)
        assert e.value.args == (1, "ValueError: math domain error")
        with pytest.raises(RemoteError) as e:
            s.request("no_such_method", 1)
        assert e.value.args[0] == -32601
        with pytest.raises(RemoteError) as e:
            s.request("add", 1)
        assert e.value.args[0] == -32602
        # The session is still good.
        assert s.request("add", 1, 2) == 3


def test_pynvim_default_error_wrapper(ep):
    s = tcp_session(*ep.msgpack_addr)
    try:
        with safety_net(s):
            with pytest.raises(Exception, match="^ValueError: math domain error$"):
                s.request("quadratic", 1, 0, 1)
    finally:
        s.close()


def test_pynvim_answers_server_calls(nvim_session):
    """line_counter calls the client back: pynvim serves those calls while its own request
    waits, when the request is made inside ``Session.run``."""
    s = nvim_session
    calls, results = [], []

    def on_request(name, args):
        calls.append((name, args))
        return len(calls)

    def setup():
        results.append(s.request("line_counter", "one\ntwo ÿ\n\nfour"))
        results.append(s.request("line_counter", "x\ny\n", "mine"))
        s.stop()

    with safety_net(s):
        s.run(on_request, lambda name, args: None, setup)
    assert results == [4, 2]
    assert calls == [("noisy", ["one\n"]), ("noisy", ["two ÿ\n"]), ("noisy", ["\n"]),
                     ("noisy", ["four"]), ("mine", ["x\n"]), ("mine", ["y\n"])]


def test_pynvim_unix_socket_master(master_endpoints):
    s = socket_session(master_endpoints.unix)
    s.error_wrapper = lambda err: RemoteError(*err)
    name = f"unix-{uuid.uuid4().hex}"
    try:
        with safety_net(s):
            assert s.request("stack.push", name, "a") == 1
            assert s.request("stack.push", name, b"\x01bin") == 2
            assert s.request("stack.getSize", name) == 2
            assert s.request("stack.pop", name) == b"\x01bin"
            assert s.request("stack.pop", name) == "a"
            with pytest.raises(RemoteError) as e:
                s.request("stack.pop", name)
            assert e.value.args[0] == 1 and e.value.args[1].startswith("StackIndexError:")
            with pytest.raises(RemoteError) as e:
                s.request("stack.pop", f"never-{uuid.uuid4().hex}")
            assert e.value.args[1].startswith("StackNotFoundError:")
    finally:
        s.close()
    # The same stack seen over XML-RPC.
    x = xmlrpc.client.ServerProxy(master_endpoints.http)
    assert x.stack.getSize(name) == 0


def test_pynvim_subscription(master_endpoints):
    """provider.message notifications arrive as pynvim Notification messages, in order."""
    s = tcp_session(*master_endpoints.msgpack_addr)
    name = f"nvim-{uuid.uuid4().hex}"
    x = xmlrpc.client.ServerProxy(master_endpoints.http, allow_none=True)
    try:
        with safety_net(s):
            assert s.request("provider.login", name) is True
            sub = s.request("provider.subscribe", name)
            sent = ["one", {"two": [2]}, b"three", None]
            for m in sent:
                assert x.provider.sendMessage(name, xmlrpc.client.Binary(m)
                                              if isinstance(m, bytes) else m) is True
            got = [s.next_message() for _ in sent]
            assert [tuple(g) for g in got] == [
                ("notification", "provider.message", [sub, name, m]) for m in sent]
            assert s.request("provider.unsubscribe", sub) is True
    finally:
        s.close()


# --- the wire, with the msgpack package ----------------------------------------------------------


def test_pipelined_requests_answered_by_msgid(conn):
    n = 200
    batch = []
    expected = {}
    for i in range(n):
        msgid = 1000 + i
        if i % 10 == 3:
            batch.append([0, msgid, "quadratic", [1, 0, 1]])
            expected[msgid] = ([1, "ValueError: math domain error"], None)
        elif i % 10 == 7:
            batch.append([0, msgid, "no_such_method", []])
            expected[msgid] = "not found"
        elif i % 10 == 9:
            batch.append([0, msgid, "spinList", [2]])
            expected[msgid] = "spins"
        else:
            batch.append([0, msgid, "add", [i, 1]])
            expected[msgid] = (None, i + 1)
    conn.send(*batch)  # all written at once
    seen = {}
    for _ in range(n):
        r = conn.recv()
        assert r is not None and r[0] == 1 and len(r) == 4, r
        assert r[1] not in seen
        seen[r[1]] = (r[2], r[3])
    assert set(seen) == set(expected)
    for msgid, want in expected.items():
        got = seen[msgid]
        if want == "not found":
            assert got[0][0] == -32601 and got[1] is None
        elif want == "spins":
            assert got[0] is None and len(got[1]) == 2
        else:
            assert got == want


def test_notifications_never_answered(conn):
    conn.send([2, "add", [1, 2]], [2, "no_such_method", []], [2, "quadratic", [1, 0, 1]],
              [2, "nvim_set_client_info", ["client", {}, "remote", {}, {}]])
    conn.send([0, 77, "add", [40, 2]])
    assert conn.recv() == [1, 77, None, 42]


def test_notification_runs(master_endpoints):
    c = Conn(master_endpoints.msgpack_addr)
    name = f"mpn-{uuid.uuid4().hex}"
    try:
        c.send([2, "stack.push", [name, "by notification"]])
        # Ask over the same connection: notifications run as they arrive, so wait for it
        # with a safety net rather than assuming an order.
        deadline = time.monotonic() + SOCKET_TIMEOUT
        while True:
            size = c.call("stack.getSize", name) if c.call("stack.hasStack", name) else 0
            if size == 1:
                break
            assert time.monotonic() < deadline, "the notification never ran"
            time.sleep(0.02)
        assert c.call("stack.pop", name) == "by notification"
    finally:
        c.close()


def test_server_calls_client(conn):
    lines = []
    conn.handlers["noisy"] = lambda line: lines.append(line) or len(lines)
    assert conn.call("line_counter", "a\nbb\nccc") == 3
    assert lines == ["a\n", "bb\n", "ccc"]
    assert all(m == "noisy" for m, _ in conn.served)

    other = []
    conn.handlers["cb"] = lambda line: other.append(line)
    assert conn.call("line_counter", "ÿ\n", "cb") == 1
    assert other == ["ÿ\n"]
    assert conn.call("line_counter", "") == 0


def test_server_call_ids_and_shape(conn):
    conn.send([0, 5, "line_counter", ["1\n2\n"]])
    first = conn.recv()
    assert first[0] == 0 and len(first) == 4 and first[2] == "noisy" and first[3] == ["1\n"]
    assert isinstance(first[1], int)
    conn.send([1, first[1], None, None])
    second = conn.recv()
    assert second[:3:2] == [0, "noisy"] and second[3] == ["2\n"]
    assert second[1] != first[1]
    conn.send([1, second[1], None, None])
    assert conn.recv() == [1, 5, None, 2]


def test_callback_error_fails_the_call(conn):
    def refuse(line):
        raise CallbackFault(7, "no thanks")

    conn.handlers["noisy"] = refuse
    r = conn.request(9, "line_counter", "a\nb\n")
    assert r[2] is not None and r[3] is None, r
    assert len(conn.served) == 1
    assert conn.call("add", 1, 2) == 3


def test_two_line_counters_interleaved(conn):
    got = {"one": [], "two": []}
    conn.handlers["one"] = lambda line: got["one"].append(line)
    conn.handlers["two"] = lambda line: got["two"].append(line)
    conn.send([0, 1, "line_counter", ["a\nb\nc\n", "one"]], [0, 2, "line_counter", ["x\n", "two"]])
    assert conn.response(2) == [1, 2, None, 1]
    assert conn.response(1) == [1, 1, None, 3]
    assert got == {"one": ["a\n", "b\n", "c\n"], "two": ["x\n"]}


def ts_ext32(secs):
    return b"\xd6\xff" + secs.to_bytes(4, "big")


def ts_ext64(secs, nsec=0):
    return b"\xd7\xff" + ((nsec << 34) | secs).to_bytes(8, "big")


def ts_ext96(secs, nsec=0):
    return b"\xc7\x0c\xff" + nsec.to_bytes(4, "big") + secs.to_bytes(8, "big", signed=True)


def test_bytes_strings_and_timestamps_round_trip(conn):
    values = [
        b"", b"\x00\xff" * 100, bytes(range(256)) * 300,  # bin 8, bin 16, bin 32
        "", "ÿ😀", "s" * 70000,
        datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime.datetime(1970, 1, 1, tzinfo=UTC),
        datetime.datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC),  # negative: 96-bit form
        datetime.datetime(2200, 1, 1, tzinfo=UTC),  # past 32 bits: 64-bit form
        datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        {"bin": b"\x01", "str": "\x01", "when": datetime.datetime(2006, 1, 2, 15, 4, 5,
                                                                   tzinfo=UTC)},
        [b"a", "a", [b"b", {"c": b"d"}]],
        -(2**63), 2**63 - 1, 2**32, -1, 1.5, float("inf"), True, False, None,
    ]
    for v in values:
        got = conn.call("remote_repr", v)
        assert got == v and type(got) is type(v), (v, got)


def test_timestamp_encodings(conn):
    """Every timestamp form a peer may send is read, and answers use a valid form."""
    forms = [
        (ts_ext32(1136214245), datetime.datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        (ts_ext64(1136214245), datetime.datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
        (ts_ext64(2**33 + 1), datetime.datetime.fromtimestamp(2**33 + 1, UTC)),
        (ts_ext96(-1), datetime.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (ts_ext96(1136214245), datetime.datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)),
    ]
    for i, (ext, want) in enumerate(forms):
        # [0, msgid, "remote_repr", [ext]] with the extension written by hand.
        conn.sendraw(b"\x94\x00" + msgpack.packb(i) + msgpack.packb("remote_repr") + b"\x91"
                     + ext)
        r = conn.response(i)
        assert r == [1, i, None, want], (ext.hex(), r)


def test_bin_method_name_accepted(conn):
    # Old msgpack peers send every string as raw bytes.
    conn.send([0, 3, b"add", [1, 2]])
    assert conn.recv() == [1, 3, None, 3]


def test_malformed_frame_closes_only_that_connection(ep):
    bystander = Conn(ep.msgpack_addr)
    bad = Conn(ep.msgpack_addr)
    try:
        assert bystander.call("add", 1, 2) == 3
        assert bad.call("add", 3, 4) == 7
        bad.sendraw(b"\xc1")  # never used in MessagePack
        assert bad.closed_by_server()
        assert bystander.call("add", 5, 6) == 11
        fresh = Conn(ep.msgpack_addr)
        try:
            assert fresh.call("add", 7, 8) == 15
        finally:
            fresh.close()
    finally:
        bad.close()
        bystander.close()


def test_malformed_frame_after_good_ones(ep):
    c = Conn(ep.msgpack_addr)
    try:
        # Requests before the bad byte, in the same write, are still answered.
        c.sendraw(Conn.pack([0, 1, "add", [1, 2]]) + Conn.pack([0, 2, "add", [3, 4]]) + b"\xc1")
        answers = [c.recv(), c.recv()]
        assert None not in answers, f"answers to the good requests were dropped: {answers}"
        assert sorted(answers) == [[1, 1, None, 3], [1, 2, None, 7]]
        assert c.closed_by_server()
    finally:
        c.close()


@pytest.mark.parametrize("message", [
    [0, 7, "add"],  # three elements
    [0, 7, "add", [1, 2], "extra"],  # five elements
    [0, 7, 123, [1, 2]],  # method not a string
    [0, 7, "add", 5],  # params not an array
    [0, 7, "add", {"a": 1, "b": 2}],  # params a map
    [0, 7, None, []],
])
def test_wrong_shape_with_msgid_gets_error(conn, message):
    conn.send(message)
    r = conn.recv()
    assert r is not None, "the server closed the connection"
    assert r[:2] == [1, 7] and r[3] is None, r
    code, text = r[2]
    assert code == -32600 and isinstance(text, str)
    assert conn.call("add", 1, 1) == 2


@pytest.mark.parametrize("message", [42, "text", [], [0], {"a": 1}, [1, 999, None, 5],
                                     [9, 7, "add", [1, 2]]])
def test_wrong_shape_without_msgid_is_ignored(conn, message):
    conn.send(message, [0, 8, "add", [2, 2]])
    assert conn.recv() == [1, 8, None, 4]


@pytest.mark.parametrize("value", [
    pytest.param(2**64 - 1, id="uint64-over-int64"),
    pytest.param(msgpack.ExtType(5, b"ab"), id="unknown-ext-type"),
    pytest.param(msgpack.Timestamp(2**40), id="timestamp-past-year-9999"),
])
def test_unrepresentable_value_gets_error(conn, value):
    """Well-formed MessagePack with a readable msgid: answered with an error, and the
    connection (with any other calls on it) survives."""
    conn.send([0, 1, "add", [1, 2]], [0, 2, "remote_repr", [value]], [0, 3, "add", [3, 4]])
    answers = {}
    for _ in range(3):
        r = conn.recv()
        assert r is not None, f"the server closed the connection; got {answers}"
        answers[r[1]] = r
    assert answers[1] == [1, 1, None, 3]
    assert answers[3] == [1, 3, None, 7]
    assert answers[2][2] is not None and answers[2][3] is None


def test_truncated_frame_then_rest(conn):
    data = Conn.pack([0, 11, "addtogether", ["x", "ÿ", "z"]])
    conn.sendraw(data[:5])
    # Pacing only (not an assertion): give the server a chance to read the partial frame.
    time.sleep(0.2)
    conn.sendraw(data[5:])
    assert conn.recv() == [1, 11, None, "xÿz"]


def test_frames_split_anywhere(conn):
    two = Conn.pack([0, 21, "add", [1, 2]]) + Conn.pack([0, 22, "remote_repr", [b"\x00" * 300]])
    for i in range(len(two)):
        conn.sendraw(two[i:i + 1])
    assert conn.response(21) == [1, 21, None, 3]
    assert conn.response(22) == [1, 22, None, b"\x00" * 300]
    # Two frames and part of a third in one write, the rest later.
    third = Conn.pack([0, 23, "add", ["a", "b"]])
    conn.sendraw(Conn.pack([0, 24, "add", [1, 1]]) + Conn.pack([0, 25, "add", [2, 2]]) + third[:3])
    assert conn.response(24) == [1, 24, None, 2]
    assert conn.response(25) == [1, 25, None, 4]
    conn.sendraw(third[3:])
    assert conn.response(23) == [1, 23, None, "ab"]


# --- the master over MessagePack-RPC ---------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_master_stack(master_endpoints, transport):
    addr = master_endpoints.msgpack_addr if transport == "tcp" else master_endpoints.unix
    c = Conn(addr)
    name = f"mp-{transport}-{uuid.uuid4().hex}"
    try:
        assert c.call("stack.push", name, "a") == 1
        assert c.call("stack.push", name, {"b": [1, b"\x02"]}) == 2
        assert c.call("stack.getSize", name) == 2
        assert c.call("stack.pop", name) == {"b": [1, b"\x02"]}
        assert c.call("stack.pop", name) == "a"
        code, message = c.fault("stack.pop", name)
        assert code == 1 and message.startswith("StackIndexError:")
        code, message = c.fault("stack.pop", f"none-{uuid.uuid4().hex}")
        assert code == 1 and message.startswith("StackNotFoundError:")
        assert c.fault("stack.noSuchMethod", name)[0] == -32601
        when = datetime.datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC)
        assert c.call("storage.setParameter", name, "when", when) is True
        assert c.call("storage.getParameter", name, "when") == when
    finally:
        c.close()
    x = xmlrpc.client.ServerProxy(master_endpoints.http)
    assert x.storage.getParameter(name, "when") == xmlrpc.client.DateTime("20060102T15:04:05")


def test_master_subscription_over_raw_msgpack(master_endpoints):
    c = Conn(master_endpoints.msgpack_addr)
    name = f"mps-{uuid.uuid4().hex}"
    x = xmlrpc.client.ServerProxy(master_endpoints.http, allow_none=True)
    try:
        assert c.call("provider.login", name) is True
        sub = c.call("provider.subscribe", name)
        for m in ("a", "b", "c"):
            x.provider.sendMessage(name, m)
        got = [c.next_notification() for _ in range(3)]
        assert got == [[2, "provider.message", [sub, name, m]] for m in ("a", "b", "c")]
        assert c.call("provider.unsubscribe", sub) is True
    finally:
        c.close()


def test_master_subscription_dropped_connection_keeps_messages(master_endpoints):
    """Once the master has seen a subscriber's connection close, later messages stay
    queued for the next visit."""
    c = Conn(master_endpoints.msgpack_addr)
    name = f"mpd-{uuid.uuid4().hex}"
    x = xmlrpc.client.ServerProxy(master_endpoints.http, allow_none=True)
    assert c.call("provider.login", name) is True
    c.call("provider.subscribe", name)
    assert x.provider.getClient(name)["subscriptions"] == 1
    c.close()
    deadline = time.monotonic() + SLOT_TIMEOUT
    while x.provider.getClient(name)["subscriptions"] != 0:
        assert time.monotonic() < deadline, "the closed subscription is still live"
        time.sleep(0.01)
    for m in ("later 1", "later 2"):
        assert x.provider.sendMessage(name, m) is True
    assert x.provider.getClient(name)["pendingMessages"] == 2
    assert [x.provider.visit(name), x.provider.visit(name)] == ["later 1", "later 2"]


def test_master_confirmed_subscription_loses_nothing_to_a_closing_client(master_endpoints):
    """With confirm, a message leaves the queue only once the client answered it: one
    sent to a client that has just closed, before the master noticed, stays queued."""
    c = Conn(master_endpoints.msgpack_addr)
    name = f"mpc-{uuid.uuid4().hex}"
    x = xmlrpc.client.ServerProxy(master_endpoints.http, allow_none=True)
    assert c.call("provider.login", name) is True
    c.call("provider.subscribe", name, True)
    c.close()
    for m in ("later 1", "later 2"):
        assert x.provider.sendMessage(name, m) is True
    assert x.provider.getClient(name)["pendingMessages"] == 2
    assert [x.provider.visit(name), x.provider.visit(name)] == ["later 1", "later 2"]


def test_master_confirmed_subscription_delivers_as_requests(master_endpoints):
    c = Conn(master_endpoints.msgpack_addr)
    name = f"mpr-{uuid.uuid4().hex}"
    x = xmlrpc.client.ServerProxy(master_endpoints.http, allow_none=True)
    assert c.call("provider.login", name) is True
    sub = c.call("provider.subscribe", name, True)
    assert x.provider.sendMessage(name, "hello") is True
    request = c.recv()
    assert request[0] == 0 and request[2] == "provider.message", request
    assert request[3] == [sub, name, "hello"]
    # Unanswered, the message is still queued; answered, it is gone.
    assert x.provider.getClient(name)["pendingMessages"] == 1
    c.send([1, request[1], None, True])
    deadline = time.monotonic() + SLOT_TIMEOUT
    while x.provider.getClient(name)["pendingMessages"] != 0:
        assert time.monotonic() < deadline, "the answered message is still queued"
        time.sleep(0.01)
    c.close()


SLOT_TIMEOUT = 5.0  # safety net: how long a connection may wait to be served


@contextlib.contextmanager
def dedicated_master(bin_dir, tmp_path, *extra):
    """A master of our own (HTTP + MessagePack-RPC over TCP); SIGKILLed at the end, as these
    tests are not about how it stops."""
    proc = ServerProcess(
        [bin_dir / "rpcs", "master", "--listen", "127.0.0.1:0", "--msgpack", "127.0.0.1:0",
         "--backend", "memory", *extra], 2, tmp_path / "master.log")
    try:
        yield Endpoints(proc)
    finally:
        proc.kill()


def exchange_with_a_slot(addr, *messages):
    """Opens a connection, sends ``messages`` and returns their answers. A server at
    its connection cap refuses a connection at once (closes it); a slot frees a
    moment after another client closes, so a refused attempt is tried again until the
    safety net runs out, and then ``None`` is returned."""
    deadline = time.monotonic() + SLOT_TIMEOUT
    while time.monotonic() < deadline:
        c = Conn(addr)
        c.sock.settimeout(SLOT_TIMEOUT)
        try:
            c.send(*messages)
            answers = [c.recv() for _ in messages]
            if None not in answers:
                return answers
        except (ConnectionError, OSError):
            pass
        finally:
            c.close()
        time.sleep(0.02)
    return None


def served(addr):
    """Pings on a new connection; True if the server answers within the safety net."""
    return exchange_with_a_slot(addr, [0, 1, "ping", []]) == [[1, 1, None, True]]


def test_max_connections_counts_connections_not_listeners(bin_dir, tmp_path):
    """--max-connections 3 with two listeners: two MessagePack-RPC clients at once are
    both served besides the HTTP call's connection (were an idle listener to hold a
    slot, the second would be refused)."""
    with dedicated_master(bin_dir, tmp_path, "--max-connections", "3") as m:
        # One HTTP call (connection closed afterwards): both listeners are surely running.
        with xmlrpc.client.ServerProxy(m.http) as x:
            assert x.ping() is True
        first = Conn(m.msgpack_addr)
        try:
            assert first.call("ping") is True
            assert served(m.msgpack_addr), "a second connection was not served"
            assert first.call("ping") is True
        finally:
            first.close()


def test_closed_subscribed_connections_release_their_slots(bin_dir, tmp_path):
    """A MessagePack-RPC connection closed while subscribed must give its connection slot
    back: closing more of them than --max-connections must not lock new clients out."""
    with dedicated_master(bin_dir, tmp_path, "--max-connections", "4") as m:
        for i in range(6):
            name = f"slot-{i}-{uuid.uuid4().hex}"
            answers = exchange_with_a_slot(
                m.msgpack_addr, [0, 1, "provider.login", [name]], [0, 2, "provider.subscribe", [name]]
            )
            if answers is None:
                pytest.fail(f"connection {i} was not served: earlier closed connections "
                            "still hold their slots")
            assert [a[:3] for a in answers] == [[1, 1, None], [1, 2, None]], answers
        assert served(m.msgpack_addr)


# --- the CLI on one master through every transport -------------------------------------------------


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}; stderr: {proc.stderr}"
    return proc.stdout


def test_cli_every_transport_on_one_master(master_endpoints, run_rpcs):
    ep = master_endpoints
    name = f"cli-{uuid.uuid4().hex}"
    urls = [ep.msgpack, ep.unix_url, ep.ws, ep.jsonrpc, ep.http]
    for i, url in enumerate(urls, start=1):
        assert ok(run_rpcs("call", url, "stack.push", name, f"item via {url}")) == f"{i}\n"
        assert ok(run_rpcs("call", url, "stack.getSize", name)) == f"{i}\n"
    for i, url in reversed(list(enumerate(urls, start=1))):
        out = ok(run_rpcs("call", url, "stack.pop", name, "--print-json"))
        assert json.loads(out) == f"item via {urls[i - 1]}"
    for url in urls:
        proc = run_rpcs("call", url, "stack.pop", name)
        assert proc.returncode == 1, (url, proc)
        assert proc.stderr.startswith("fault 1: StackIndexError:"), (url, proc.stderr)
        assert proc.stdout == ""


def test_cli_json_args_and_binary_over_msgpack(master_endpoints, run_rpcs):
    ep = master_endpoints
    name = f"clij-{uuid.uuid4().hex}"
    item = '{"k":[1,2.5,"ÿ",true,null]}'
    for url in (ep.msgpack, ep.unix_url, ep.ws, ep.jsonrpc):
        assert ok(run_rpcs("call", url, "-j", "stack.push", json.dumps(name), item)) == "1\n"
        assert ok(run_rpcs("call", url, "stack.pop", name, "-pj")) == item + "\n"


def test_cli_methods_over_msgpack(master_endpoints, example_endpoints, run_rpcs):
    for url in (master_endpoints.msgpack, master_endpoints.unix_url):
        doc = json.loads(ok(run_rpcs("methods", url, "--json")))
        names = [m["name"] for m in doc]
        assert {"stack.push", "stack.pop", "stack.getSize", "provider.subscribe"} <= set(names)
    doc = json.loads(ok(run_rpcs("methods", example_endpoints.msgpack, "--json")))
    by_name = {m["name"]: m for m in doc}
    assert by_name["addtogether"]["help"] == "Add together everything in the list `things`."
    assert ok(run_rpcs("call", example_endpoints.msgpack, "addtogether", "x", "ÿ", "z")) \
        == "xÿz\n"
    proc = run_rpcs("call", example_endpoints.msgpack, "-j", "quadratic", "1", "0", "1")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "fault 1: ValueError: math domain error"
