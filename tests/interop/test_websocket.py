"""JSON-RPC over WebSocket with websocket-client: calls, batches, notifications, errors, calls
from the server back into the client (line_counter), and the master's provider.subscribe push.

No test asserts on timing: timeouts are safety nets.
"""

import json
import uuid
import xmlrpc.client

import pytest
import websocket

WS_TIMEOUT = 20.0  # safety net for every receive


class WsPeer:
    """One WebSocket connection speaking JSON-RPC 2.0 in both directions.

    ``handlers`` answer the server's calls (method name -> function of the params; raising
    ``CallbackFault(code, message)`` answers with an error). ``received_calls`` records them;
    ``notifications`` collects what the server pushed while we waited for answers.
    """

    def __init__(self, url, handlers=None):
        self.ws = websocket.create_connection(url, timeout=WS_TIMEOUT)
        self.handlers = dict(handlers or {})
        self.received_calls = []
        self.notifications = []
        self.answers = {}
        self.next_id = 0

    def close(self):
        """A clean close: our Close frame, then the server's (websocket-client waits up to 3 s
        for it)."""
        self.ws.close()

    def abort(self):
        """Drops the TCP connection without a WebSocket close handshake (a crashed client)."""
        self.ws.shutdown()

    def send(self, doc):
        self.ws.send(doc if isinstance(doc, str) else json.dumps(doc))

    def recv(self):
        """Next JSON message from the server (safety net timeout raises)."""
        data = self.ws.recv()
        return json.loads(data)

    def _dispatch(self, msg):
        """Handles one incoming message; returns it if it is an answer (or batch of them)."""
        if isinstance(msg, list):
            return msg
        if "method" in msg:
            if "id" not in msg:
                self.notifications.append(msg)
                return None
            self.received_calls.append(msg)
            try:
                handler = self.handlers[msg["method"]]
            except KeyError:
                self.send({"jsonrpc": "2.0", "id": msg["id"],
                           "error": {"code": -32601, "message": "no such callback"}})
                return None
            try:
                result = handler(*msg["params"]) if isinstance(msg["params"], list) \
                    else handler(**msg["params"])
            except CallbackFault as f:
                self.send({"jsonrpc": "2.0", "id": msg["id"],
                           "error": {"code": f.args[0], "message": f.args[1]}})
            else:
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
            return None
        return msg

    def next_answer(self):
        """Serves the server's calls and collects its notifications until an answer comes."""
        while True:
            answer = self._dispatch(self.recv())
            if answer is not None:
                return answer

    def wait_for(self, msg_id):
        while msg_id not in self.answers:
            a = self.next_answer()
            assert not isinstance(a, list), a
            self.answers[a["id"]] = a
        return self.answers.pop(msg_id)

    def request(self, method, params=None):
        self.next_id += 1
        doc = {"jsonrpc": "2.0", "method": method, "id": self.next_id}
        if params is not None:
            doc["params"] = params
        self.send(doc)
        return self.wait_for(self.next_id)

    def call(self, method, *args, **kwargs):
        assert not (args and kwargs)
        r = self.request(method, kwargs if kwargs else list(args))
        assert r["jsonrpc"] == "2.0" and "error" not in r, r
        return r["result"]

    def fault(self, method, *args, **kwargs):
        r = self.request(method, kwargs if kwargs else list(args))
        assert r["jsonrpc"] == "2.0" and "result" not in r, r
        return r["error"]["code"], r["error"]["message"]

    def next_notification(self):
        """The next notification the server pushes (after any already collected)."""
        while not self.notifications:
            a = self._dispatch(self.recv())
            assert a is None, f"unexpected answer {a}"
        return self.notifications.pop(0)


class CallbackFault(Exception):
    pass


@pytest.fixture
def peer(example_endpoints):
    p = WsPeer(example_endpoints.ws)
    yield p
    p.close()


# --- calls -----------------------------------------------------------------------------------


def test_calls(peer):
    assert peer.call("addtogether", "x", "ÿ", "z") == "xÿz"
    assert peer.call("addtogether", 20, 30, 4, 1) == 55
    assert peer.call("quadratic", 2, -4, 0) == [0.0, 8.0]
    assert peer.call("quadratic", 1, 2, 1) == [-1.0]
    d = {"name": "Arthur", "data": {"age": 42, "sex": "M"}}
    got = peer.call("remote_repr", d)
    assert got == d and list(got) == ["name", "data"]
    assert peer.call("add", b="y", a="x") == "xy"
    assert len(peer.call("spinList", spins=3)) == 3
    assert "add" in peer.call("system.listMethods")
    assert peer.call("rpc.discover")["openrpc"] == "1.2.6"


def test_rpc2_path_and_binary_frames(example_endpoints):
    p = WsPeer(example_endpoints.ws + "RPC2")
    try:
        assert p.call("add", 2, 3) == 5
        # A JSON document in a binary message is read too.
        p.ws.send_binary(json.dumps({"jsonrpc": "2.0", "method": "add", "params": [4, 5],
                                     "id": "bin"}).encode())
        assert p.wait_for("bin")["result"] == 9
    finally:
        p.close()


def test_errors(peer):
    assert peer.fault("quadratic", 1, 0, 1) == (1, "ValueError: math domain error")
    assert peer.fault("no_such_method")[0] == -32601
    assert peer.fault("add", 1)[0] == -32602
    assert peer.fault("add", a=1, c=2)[0] == -32602
    peer.send("this is not json")
    r = peer.next_answer()
    assert r["id"] is None and r["error"]["code"] == -32700
    peer.send(json.dumps(42))
    r = peer.next_answer()
    assert r["id"] is None and r["error"]["code"] == -32600
    peer.send([])
    r = peer.next_answer()
    assert isinstance(r, dict) and r["id"] is None and r["error"]["code"] == -32600
    # The connection survives all of that.
    assert peer.call("add", 1, 2) == 3


def test_version_1_style(peer):
    peer.send({"method": "add", "params": [2, 3], "id": "v1"})
    assert peer.next_answer() == {"id": "v1", "result": 5, "error": None}


def test_notifications_are_never_answered(peer):
    peer.send({"jsonrpc": "2.0", "method": "add", "params": [1, 2]})
    peer.send({"jsonrpc": "2.0", "method": "no_such_method"})
    peer.send({"jsonrpc": "2.0", "method": "quadratic", "params": [1, 0, 1]})
    peer.send([{"jsonrpc": "2.0", "method": "add", "params": [1, 2]},
               {"jsonrpc": "2.0", "method": "add", "params": [3, 4]}])
    peer.send({"method": "add", "params": [1, 2], "id": None})  # 1.0 notification
    # The next message is the answer to this call: none of the above was answered.
    peer.send({"jsonrpc": "2.0", "method": "add", "params": [20, 22], "id": "after"})
    assert peer.next_answer() == {"jsonrpc": "2.0", "id": "after", "result": 42}


def test_batch(peer):
    peer.send([
        {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1},
        {"jsonrpc": "2.0", "method": "add", "params": [3, 4]},
        {"jsonrpc": "2.0", "method": "quadratic", "params": [1, 0, 1], "id": 2},
        {"jsonrpc": "2.0", "method": "nope", "id": 3},
        "bad entry",
        {"jsonrpc": "2.0", "method": "add", "params": {"a": "x", "b": "y"}, "id": 4},
    ])
    r = peer.next_answer()
    assert isinstance(r, list) and len(r) == 5, r
    by_id = {x["id"]: x for x in r}
    assert len(by_id) == 5
    assert by_id[1]["result"] == 3
    assert by_id[2]["error"]["code"] == 1
    assert by_id[3]["error"]["code"] == -32601
    assert by_id[None]["error"]["code"] == -32600
    assert by_id[4]["result"] == "xy"


def test_pipelined_calls_matched_by_id(peer):
    n = 50
    for i in range(n):
        peer.send({"jsonrpc": "2.0", "method": "add", "params": [i, 1000], "id": f"p{i}"})
    for i in reversed(range(n)):
        assert peer.wait_for(f"p{i}")["result"] == i + 1000


# --- the server calls the client ---------------------------------------------------------------


def test_line_counter_calls_back(peer):
    lines = []
    peer.handlers["noisy"] = lambda line: lines.append(line)
    text = "first line\nsecond ÿ line\n\nlast without newline"
    assert peer.call("line_counter", text) == 4
    assert lines == ["first line\n", "second ÿ line\n", "\n", "last without newline"]
    assert all(c["jsonrpc"] == "2.0" and c["method"] == "noisy" for c in peer.received_calls)
    assert len({c["id"] for c in peer.received_calls}) == 4

    # A callback name of our choosing, by name; the text's final newline ends the last line.
    other = []
    peer.handlers["collect"] = lambda line: other.append(line) or len(other)
    assert peer.call("line_counter", text="a\nb\n", callback="collect") == 2
    assert other == ["a\n", "b\n"]
    assert peer.call("line_counter", "") == 0
    assert lines == ["first line\n", "second ÿ line\n", "\n", "last without newline"]


def test_line_counter_callback_error_fails_the_call(peer):
    calls = []

    def refuse(line):
        calls.append(line)
        raise CallbackFault(5, "refused")

    peer.handlers["noisy"] = refuse
    r = peer.request("line_counter", ["a\nb\nc\n"])
    assert "error" in r and "result" not in r, r
    assert calls == ["a\n"]  # it stopped at the first failed callback
    # A callback the client does not have: the call fails too, and the connection lives on.
    r = peer.request("line_counter", {"text": "x\n", "callback": "nobody_home"})
    assert "error" in r, r
    assert peer.call("add", 1, 1) == 2


def test_two_line_counters_at_once(peer):
    got = {"one": [], "two": []}
    peer.handlers["one"] = lambda line: got["one"].append(line)
    peer.handlers["two"] = lambda line: got["two"].append(line)
    peer.send({"jsonrpc": "2.0", "method": "line_counter", "id": "A",
               "params": {"text": "1\n2\n3\n", "callback": "one"}})
    peer.send({"jsonrpc": "2.0", "method": "line_counter", "id": "B",
               "params": {"text": "x\ny\n", "callback": "two"}})
    assert peer.wait_for("B")["result"] == 2
    assert peer.wait_for("A")["result"] == 3
    assert got == {"one": ["1\n", "2\n", "3\n"], "two": ["x\n", "y\n"]}


BATCH_TIMEOUT = 5.0  # safety net


def test_line_counter_inside_a_batch(peer):
    """A batch whose call calls the client back: the client's answers must still be read
    while the batch runs (otherwise the call waits for an answer the server never reads)."""
    lines = []
    peer.handlers["noisy"] = lambda line: lines.append(line)
    peer.ws.settimeout(BATCH_TIMEOUT)
    peer.send([{"jsonrpc": "2.0", "method": "line_counter", "params": ["a\nb\n"], "id": "lc"},
               {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": "add"}])
    try:
        r = peer.next_answer()
    except websocket.WebSocketTimeoutException:
        peer.abort()  # no clean close: the server is stuck in the batch
        pytest.fail(f"no answer to the batch; callbacks served: {lines}")
    assert sorted(r, key=lambda x: x["id"]) == [
        {"jsonrpc": "2.0", "id": "add", "result": 3},
        {"jsonrpc": "2.0", "id": "lc", "result": 2}]
    assert lines == ["a\n", "b\n"]


# --- the master pushes a client's messages -------------------------------------------------------


@pytest.fixture
def master(master_endpoints):
    return master_endpoints


def xml(master):
    return xmlrpc.client.ServerProxy(master.http, allow_none=True)


def test_subscribe_pushes_messages_in_order(master):
    name = f"ws-{uuid.uuid4().hex}"
    x = xml(master)
    p = WsPeer(master.ws)
    try:
        assert p.call("provider.login", name) is True
        # Queued before the subscription: delivered first.
        assert x.provider.sendMessage(name, "early") is True
        sub = p.call("provider.subscribe", name)
        assert isinstance(sub, str) and sub
        messages = ["one", {"cmd": "two", "args": [1, 2.5, None]}, ["three"], 4, "fünf"]
        for m in messages:
            assert x.provider.sendMessage(name, m) is True
        got = [p.next_notification() for _ in range(len(messages) + 1)]
        for n in got:
            assert n["jsonrpc"] == "2.0" and n["method"] == "provider.message" and "id" not in n
            assert n["params"][:2] == [sub, name]
        assert [n["params"][2] for n in got] == ["early", *messages]
        # Calls still work while subscribed, and delivered messages left the queue.
        assert p.call("provider.getClient", name)["pendingMessages"] == 0
        assert x.provider.visit(name) is None

        assert p.call("provider.unsubscribe", sub) is True
        assert p.call("provider.unsubscribe", sub) is False
        assert x.provider.sendMessage(name, "after unsubscribe") is True
        # Not pushed: the next thing on the socket is the answer to this call.
        assert p.call("provider.getClient", name)["pendingMessages"] == 1
        assert p.notifications == []
        assert x.provider.visit(name) == "after unsubscribe"
    finally:
        p.close()


def test_two_subscribers_to_different_clients(master):
    a, b = f"wsa-{uuid.uuid4().hex}", f"wsb-{uuid.uuid4().hex}"
    x = xml(master)
    pa, pb = WsPeer(master.ws), WsPeer(master.ws)
    try:
        for p, n in ((pa, a), (pb, b)):
            assert p.call("provider.login", n) is True
        sa = pa.call("provider.subscribe", a)
        sb = pb.call("provider.subscribe", b)
        assert sa != sb
        x.provider.sendMessage(b, "for b")
        x.provider.sendMessage(a, "for a")
        assert pa.next_notification()["params"] == [sa, a, "for a"]
        assert pb.next_notification()["params"] == [sb, b, "for b"]
        assert pa.call("provider.unsubscribe", sa) is True
        assert pb.call("provider.unsubscribe", sb) is True
    finally:
        pa.close()
        pb.close()


def test_dropped_socket_ends_subscription_and_messages_stay_queued(master):
    """The client's TCP connection drops (no close handshake); messages sent afterwards stay
    queued for the next subscription. (An intermittent failure here, one message missing, is
    the race that test_dropped_socket_while_busy_loses_no_message shows reliably.)"""
    name = f"wsc-{uuid.uuid4().hex}"
    x = xml(master)
    p = WsPeer(master.ws)
    assert p.call("provider.login", name) is True
    sub = p.call("provider.subscribe", name)
    assert x.provider.sendMessage(name, "delivered") is True
    assert p.next_notification()["params"] == [sub, name, "delivered"]
    p.abort()

    later = ["later 1", {"later": 2}, "later 3"]
    for m in later:
        assert x.provider.sendMessage(name, m) is True
    assert x.provider.getClient(name)["pendingMessages"] == len(later)
    # A new connection's subscription gets them all, in order, and nothing twice.
    q = WsPeer(master.ws)
    try:
        sub2 = q.call("provider.subscribe", name)
        assert sub2 != sub
        got = [q.next_notification()["params"] for _ in later]
        assert got == [[sub2, name, m] for m in later]
        assert q.call("provider.getClient", name)["pendingMessages"] == 0
        # The old subscription is gone.
        assert q.call("provider.unsubscribe", sub) is False
        assert q.call("provider.unsubscribe", sub2) is True
    finally:
        q.close()


def test_dropped_socket_messages_visible_to_visit(master):
    name = f"wsv-{uuid.uuid4().hex}"
    x = xml(master)
    p = WsPeer(master.ws)
    assert p.call("provider.login", name) is True
    p.call("provider.subscribe", name)
    p.abort()
    for m in ("m1", "m2"):
        assert x.provider.sendMessage(name, m) is True
    assert x.provider.getClient(name)["pendingMessages"] == 2
    assert [x.provider.visit(name), x.provider.visit(name), x.provider.visit(name)] == \
        ["m1", "m2", None]


def test_dropped_socket_while_busy_loses_no_message(master):
    """The connection drops while the server is still busy with a batch from it (a
    stack.popWait), so it has not read the end of the stream yet. With a confirmed
    subscription, messages sent meanwhile must stay queued: handing a message to a
    connection that is gone is not delivery, and only the client's answer is."""
    name = f"wsb-{uuid.uuid4().hex}"
    blocker = f"blk-{uuid.uuid4().hex}"
    x = xml(master)
    p = WsPeer(master.ws)
    assert p.call("provider.login", name) is True
    sub = p.call("provider.subscribe", name, True)
    p.send([{"jsonrpc": "2.0", "method": "stack.popWait", "params": [blocker, 30], "id": 1}])
    p.abort()
    for m in ("m1", "m2"):
        assert x.provider.sendMessage(name, m) is True
    assert x.stack.push(blocker, "release") == 1  # ends the popWait (its answer has nowhere to go)
    assert [x.provider.visit(name), x.provider.visit(name)] == ["m1", "m2"]
    # The old subscription is over (visit would not have got the messages otherwise).
    q = WsPeer(master.ws)
    try:
        assert q.call("provider.unsubscribe", sub) is False
    finally:
        q.close()


CLOSE_TIMEOUT = 5.0  # safety net


def test_clean_close_with_live_subscription(master):
    """RFC 6455 5.5.1: a Close frame is answered with a Close frame. A live subscription must
    not hold the connection open; messages sent afterwards stay queued."""
    name = f"wsq-{uuid.uuid4().hex}"
    x = xml(master)
    p = WsPeer(master.ws)
    try:
        assert p.call("provider.login", name) is True
        sub = p.call("provider.subscribe", name)
        assert x.provider.sendMessage(name, "delivered") is True
        assert p.next_notification()["params"] == [sub, name, "delivered"]
        p.ws.send(b"\x03\xe8", websocket.ABNF.OPCODE_CLOSE)  # 1000, normal closure
        p.ws.sock.settimeout(CLOSE_TIMEOUT)
        try:
            frame = p.ws.recv_frame()
        except websocket.WebSocketTimeoutException:
            frame = None
        assert frame is not None and frame.opcode == websocket.ABNF.OPCODE_CLOSE, \
            "the server did not answer our Close frame"
    finally:
        p.abort()
    for m in ("m1", "m2"):
        assert x.provider.sendMessage(name, m) is True
    assert x.provider.getClient(name)["pendingMessages"] == 2
    assert [x.provider.visit(name), x.provider.visit(name)] == ["m1", "m2"]


def test_clean_close_without_subscription(master):
    p = WsPeer(master.ws)
    try:
        assert p.call("provider.login", f"wsn-{uuid.uuid4().hex}") is True
        p.ws.send(b"\x03\xe8", websocket.ABNF.OPCODE_CLOSE)
        p.ws.sock.settimeout(CLOSE_TIMEOUT)
        frame = p.ws.recv_frame()
        assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
    finally:
        p.abort()


def test_subscribe_unknown_client_and_over_http(master):
    p = WsPeer(master.ws)
    try:
        code, message = p.fault("provider.subscribe", f"ghost-{uuid.uuid4().hex}")
        assert code == 1 and message.startswith("ClientNotFoundError")
    finally:
        p.close()
    name = f"wsh-{uuid.uuid4().hex}"
    x = xml(master)
    x.provider.login(name)
    with pytest.raises(xmlrpc.client.Fault) as e:
        x.provider.subscribe(name)
    assert e.value.faultString.startswith("CallbackError:")


def test_master_stack_over_websocket(master):
    name = f"wss-{uuid.uuid4().hex}"
    p = WsPeer(master.ws)
    try:
        assert p.call("stack.push", name, "a") == 1
        assert p.call("stack.push", name=name, item={"b": [1]}) == 2
        assert p.call("stack.getSize", name) == 2
        assert p.call("stack.pop", name) == {"b": [1]}
        assert p.call("stack.pop", name) == "a"
        code, message = p.fault("stack.pop", name)
        assert code == 1 and message.startswith("StackIndexError:")
    finally:
        p.close()
