"""Tokens on every transport of ``rpcs master --auth``, with stock clients.

Tokens are made with ``rpcs token new``; the master runs with every listener (HTTP for XML-RPC,
JSON-RPC and WebSocket; MessagePack-RPC over TCP and a Unix socket; zerorpc) and debug logging,
so that the check that no secret reaches the log reads everything the master says.
"""

import base64
import json
import os
import re
import resource
import socket
import subprocess
import urllib.request
import uuid
import xmlrpc.client

import jsonrpclib
import msgpack
import pytest
import websocket
import zerorpc
from pynvim.msgpack_rpc import tcp_session

from conftest import ServerProcess
from hostile_helpers import MsgpackConn

TIMEOUT = 20
AUTH_TIMEOUT = 1  # seconds the master gives a stream connection to authenticate
WRONG = "not-the-secret-7f3a9c"  # a secret no token has


def new_token(bin_dir, name, access, prefix=None):
    """Runs ``rpcs token new``: (the [[token]] entry, the secret)."""
    argv = [str(bin_dir / "rpcs"), "token", "new", "--name", name, "--access", access]
    if prefix:
        argv += ["--prefix", prefix]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    secret = re.search(r"keep it\): (\S+)$", r.stderr.strip()).group(1)
    assert secret not in r.stdout, "the entry must hold the hash only"
    return r.stdout, secret


class AuthMaster:
    def __init__(self, proc, secrets, sock):
        self.proc, self.secrets, self.unix = proc, secrets, sock
        self.http, self.msgpack, self.unix_url, self.zerorpc = proc.urls
        m = re.fullmatch(r"http://(127\.0\.0\.1):(\d+)/", self.http)
        self.host, self.port = m.group(1), int(m.group(2))
        self.msgpack_addr = ("127.0.0.1", int(self.msgpack.rsplit(":", 1)[1]))

    def http_url(self, name=None, prefix="http"):
        creds = f"{name}:{self.secrets[name]}@" if name else ""
        return f"{prefix}://{creds}{self.host}:{self.port}/"


@pytest.fixture(scope="module")
def auth_master(bin_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("auth-master")
    entries, secrets = [], {}
    for name, access, prefix in [("writer", "write", None), ("reader", "read", None),
                                 ("ops", "admin", None), ("team-a", "admin", "a/"),
                                 ("team-b", "write", "b/")]:
        entry, secrets[name] = new_token(bin_dir, name, access, prefix)
        entries.append(entry)
    (d / "tokens.toml").write_text("".join(entries))
    sock = d / "master.sock"
    env = dict(os.environ, RPCS_LOG="debug")
    env.pop("RPCS_TOKEN", None)
    argv = [bin_dir / "rpcs", "master", "--backend", "memory", "--auth", d / "tokens.toml",
            "--auth-timeout", str(AUTH_TIMEOUT), "--listen", "127.0.0.1:0",
            "--msgpack", "127.0.0.1:0", "--msgpack-unix", sock,
            "--zerorpc", "tcp://127.0.0.1:0"]
    proc = ServerProcess(argv, 4, d / "stderr.log", env=env)
    try:
        yield AuthMaster(proc, secrets, str(sock))
    finally:
        proc.stop()


# --- a small raw client per stream protocol (MessagePack-RPC's is in hostile_helpers) ----------


class WsConn:
    def __init__(self, url, header=None):
        self.ws = websocket.create_connection(url, timeout=TIMEOUT, header=header or [])
        self.id = 0

    def call(self, method, *params):
        """(error, result) of one JSON-RPC call."""
        self.id += 1
        self.ws.send(json.dumps({"jsonrpc": "2.0", "id": self.id, "method": method,
                                 "params": list(params)}))
        answer = json.loads(self.ws.recv())
        return answer.get("error"), answer.get("result")

    def close(self):
        self.ws.close()


class AuthMiddleware:
    """The zerorpc client middleware that adds a token's secret to each request."""

    def __init__(self, secret):
        self.secret = secret

    def client_before_request(self, event):
        event.header["auth"] = self.secret


# One zerorpc context per secret: each holds descriptors and threads until it is collected,
# and the matrix makes a client per method.
_contexts = {}


def zerorpc_client(endpoint, secret=None):
    context = _contexts.get(secret)
    if context is None:
        context = _contexts[secret] = zerorpc.Context()
        if secret is not None:
            context.register_middleware(AuthMiddleware(secret))
    c = zerorpc.Client(timeout=TIMEOUT, heartbeat=5, context=context)
    c.connect(endpoint)
    return c


def methods_and_levels(m):
    """Every method with its access level, from rpc.discover (read access is enough)."""
    c = jsonrpclib.ServerProxy(m.http_url("reader"))
    doc = c._request("rpc.discover", [])
    return {x["name"]: x["x-access"] for x in doc["methods"]}


# --- 1. without credentials, nothing -----------------------------------------------------------


def probe_state(m):
    """What the probes could change: stacks, storages and clients, as the admin token sees them."""
    c = xmlrpc.client.ServerProxy(m.http_url("ops"))
    return (sorted(c.stack.getAllNames()), sorted(c.storage.getAllNames()),
            sorted(c.provider.getAllClientNames()), c.stack.getSize("probe"))


def refused_everywhere(m, method, params):
    """Calls ``method`` with no credentials on every transport; the refusals seen."""
    seen = {}
    try:
        xmlrpc.client.ServerProxy(m.http_url())._ServerProxy__request(method, tuple(params))
        seen["xmlrpc"] = "answered"
    except xmlrpc.client.ProtocolError as e:
        seen["xmlrpc"] = e.errcode
    try:
        jsonrpclib.ServerProxy(m.http_url(prefix="http"))._request(method, list(params))
        seen["jsonrpc"] = "answered"
    except jsonrpclib.jsonrpc.TransportError as e:
        seen["jsonrpc"] = e.errcode
    for label, conn in (("ws", WsConn(m.http_url(prefix="ws"))),
                        ("msgpack", MsgpackConn(m.msgpack_addr)),
                        ("unix", MsgpackConn(m.unix))):
        try:
            err, _ = conn.call(method, *params)
            seen[label] = err and (err.get("code") if isinstance(err, dict) else err[0])
        finally:
            conn.close()
    z = zerorpc_client(m.zerorpc)
    try:
        z(method, *params)
        seen["zerorpc"] = "answered"
    except zerorpc.RemoteError as e:
        seen["zerorpc"] = e.name
    finally:
        z.close()
    return seen


def test_every_method_on_every_transport_is_refused_without_credentials(auth_master):
    m = auth_master
    xmlrpc.client.ServerProxy(m.http_url("writer")).stack.push("probe", "kept")
    before = probe_state(m)
    levels = methods_and_levels(m)
    listed = xmlrpc.client.ServerProxy(m.http_url("reader")).system.listMethods()
    assert set(listed) == set(levels) and len(listed) > 90, listed
    expected = {"xmlrpc": 401, "jsonrpc": 401, "ws": -32001, "msgpack": -32001,
                "unix": -32001, "zerorpc": "NOAUTH"}
    for method in listed:
        # Plausible arguments, so that a call let through would have had its effect.
        assert refused_everywhere(m, method, ["probe", "x"]) == expected, method
    assert probe_state(m) == before


# --- 2. a read token reads and changes nothing --------------------------------------------------


def test_a_read_token_is_refused_every_write_and_admin_method(auth_master):
    m = auth_master
    levels = methods_and_levels(m)
    assert {"read", "write", "admin"} <= set(levels.values())
    before = probe_state(m)
    conn = MsgpackConn(m.msgpack_addr)
    try:
        assert conn.call("auth", "reader", m.secrets["reader"]) \
            == (None, {"name": "reader", "access": "read"})
        for method, level in sorted(levels.items()):
            err, _ = conn.call(method, "probe", "x")
            if level == "read":
                assert not (err and err[0] == -32003), (method, err)
            else:
                assert err and err[0] == -32003 and err[1].startswith("NOPERM"), (method, err)
    finally:
        conn.close()
    assert probe_state(m) == before


def test_a_multicall_authorizes_each_inner_call(auth_master):
    c = xmlrpc.client.ServerProxy(auth_master.http_url("reader"))
    multi = xmlrpc.client.MultiCall(c)
    multi.stack.getSize("probe")
    multi.stack.push("probe", "not allowed")
    results = multi()
    assert results[0] >= 1
    with pytest.raises(xmlrpc.client.Fault) as e:
        results[1]
    assert e.value.faultCode == -32003 and "NOPERM" in e.value.faultString


# --- 3. stock clients authenticate with only the credential -------------------------------------


def test_xmlrpc_client_with_credentials_in_the_url(auth_master):
    c = xmlrpc.client.ServerProxy(auth_master.http_url("writer"))
    name = f"auth-{uuid.uuid4().hex}"
    assert c.stack.push(name, "a") == 1
    assert c.stack.pop(name) == "a"
    wrong = auth_master.http_url("writer").replace(auth_master.secrets["writer"], WRONG)
    with pytest.raises(xmlrpc.client.ProtocolError) as e:
        xmlrpc.client.ServerProxy(wrong).stack.getSize(name)
    assert e.value.errcode == 401
    headers = {k.lower(): v for k, v in dict(e.value.headers).items()}
    assert headers.get("www-authenticate", "").startswith("Basic")


def test_jsonrpclib_with_credentials_in_the_url(auth_master):
    c = jsonrpclib.ServerProxy(auth_master.http_url("writer"))
    name = f"auth-{uuid.uuid4().hex}"
    assert c.stack.push(name, {"k": [1, 2]}) == 1
    assert c.stack.pop(name) == {"k": [1, 2]}


def test_websocket_client_with_a_header(auth_master):
    secret = auth_master.secrets["writer"]
    conn = WsConn(auth_master.http_url(prefix="ws"), header=[f"Authorization: Bearer {secret}"])
    try:
        assert conn.call("stack.getSize", "probe")[0] is None
    finally:
        conn.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        WsConn(auth_master.http_url(prefix="ws"), header=[f"Authorization: Bearer {WRONG}"])
    assert e.value.status_code == 401


def test_websocket_client_with_a_first_rpc_auth_message(auth_master):
    conn = WsConn(auth_master.http_url(prefix="ws"))
    try:
        err, _ = conn.call("stack.getSize", "probe")
        assert err["code"] == -32001
        err, result = conn.call("rpc.auth", auth_master.secrets["writer"])
        assert err is None and result == {"name": "writer", "access": "write"}
        assert conn.call("stack.getSize", "probe")[0] is None
    finally:
        conn.close()


def test_msgpack_package_with_a_first_auth_call(auth_master):
    for addr in (auth_master.msgpack_addr, auth_master.unix):
        conn = MsgpackConn(addr)
        try:
            err, _ = conn.call("ping")
            assert err[0] == -32001 and err[1].startswith("NOAUTH"), err
            assert conn.call("auth", auth_master.secrets["writer"])[0] is None
            assert conn.call("ping") == (None, True)
        finally:
            conn.close()


def test_pynvim_with_a_first_auth_request(auth_master):
    # tcp_session first sends a notification (nvim_set_client_info): refused unanswered.
    session = tcp_session(*auth_master.msgpack_addr)
    try:
        answer = session.request("auth", "writer", auth_master.secrets["writer"])
        assert answer == {"name": "writer", "access": "write"}
        name = f"auth-{uuid.uuid4().hex}"
        assert session.request("stack.push", name, "x") == 1
    finally:
        session.close()


def test_zerorpc_with_the_middleware(auth_master):
    c = zerorpc_client(auth_master.zerorpc, auth_master.secrets["writer"])
    try:
        name = f"auth-{uuid.uuid4().hex}"
        assert c("stack.push", name, "z") == 1
        assert c("stack.pop", name) == "z"
    finally:
        c.close()
    c = zerorpc_client(auth_master.zerorpc, WRONG)
    try:
        with pytest.raises(zerorpc.RemoteError) as e:
            c("ping")
        assert e.value.name == "NOAUTH"
    finally:
        c.close()


def test_rpcs_call_takes_credentials_from_the_url_or_the_environment(auth_master, bin_dir):
    rpcs = str(bin_dir / "rpcs")
    env = dict(os.environ)
    env.pop("RPCS_TOKEN", None)
    msgpack_url = f"msgpack://writer:{auth_master.secrets['writer']}@{auth_master.msgpack[10:]}"
    r = subprocess.run([rpcs, "call", msgpack_url, "ping"], capture_output=True, text=True,
                       env=env, timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout.strip() == "true", r.stderr
    env["RPCS_TOKEN"] = f"reader:{auth_master.secrets['reader']}"
    for url in (auth_master.http, auth_master.msgpack, auth_master.zerorpc):
        r = subprocess.run([rpcs, "call", url, "ping"], capture_output=True, text=True,
                           env=env, timeout=TIMEOUT)
        assert r.returncode == 0 and r.stdout.strip() == "true", (url, r.stderr)
        r = subprocess.run([rpcs, "call", url, "stack.push", "probe", "x"], capture_output=True,
                           text=True, env=env, timeout=TIMEOUT)
        assert r.returncode == 1 and "NOPERM" in r.stderr, (url, r.returncode, r.stderr)
        assert auth_master.secrets["reader"] not in r.stderr + r.stdout
    env.pop("RPCS_TOKEN")
    r = subprocess.run([rpcs, "call", auth_master.msgpack, "ping"], capture_output=True,
                       text=True, env=env, timeout=TIMEOUT)
    assert r.returncode != 0 and "NOAUTH" in r.stderr, r.stderr


# --- 3b. namespaces ---------------------------------------------------------------------------


def b_state(m):
    """What team b has, as the admin token sees it."""
    c = xmlrpc.client.ServerProxy(m.http_url("ops"))
    return (c.stack.getSize("b/jobs"), c.storage.getAllParameters("b/conf"),
            [n for n in c.provider.getAllClientNames() if n.startswith("b/")])


def test_a_namespace_token_reaches_nothing_of_another_namespace(auth_master):
    m = auth_master
    b = xmlrpc.client.ServerProxy(m.http_url("team-b"))
    b.stack.push("b/jobs", "secret job")
    b.storage.setParameter("b/conf", "password", "hunter2")
    b.provider.login("b/worker")
    before = b_state(m)
    a = xmlrpc.client.ServerProxy(m.http_url("team-a"))
    a.stack.push("a/jobs", "ours")
    # Every method, with arguments naming team b's things: refused or told nothing of them.
    conn = MsgpackConn(m.msgpack_addr)
    try:
        assert conn.call("auth", "team-a", m.secrets["team-a"])[0] is None
        for method in a.system.listMethods():
            err, result = conn.call(method, "b/jobs", "b/worker", "b/conf")
            leaked = [x for x in ("b/", "hunter2", "secret job") if x in repr(result)]
            assert not leaked, (method, result)
            if err is None:
                continue
            assert "hunter2" not in repr(err) and "secret job" not in repr(err), (method, err)
    finally:
        conn.close()
    assert b_state(m) == before
    # Listings show team a's own names only.
    assert a.stack.getAllNames() == ["a/jobs"]
    assert "b/conf" not in a.storage.getAllNames()
    assert all(n.startswith("a/") for n in a.provider.getAllClientNames())
    # A multicall and a JSON-RPC batch: each inner call on its own.
    multi = xmlrpc.client.MultiCall(a)
    multi.stack.getSize("a/jobs")
    multi.stack.pop("b/jobs")
    results = multi()
    assert results[0] == 1
    with pytest.raises(xmlrpc.client.Fault) as e:
        results[1]
    assert e.value.faultCode == -32003
    body = json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "stack.getSize", "params": ["a/jobs"]},
                       {"jsonrpc": "2.0", "id": 2, "method": "stack.pop", "params": ["b/jobs"]}])
    answer = json.loads(post_json(m, "team-a", body))
    by_id = {x["id"]: x for x in answer}
    assert by_id[1]["result"] == 1 and by_id[2]["error"]["code"] == -32003
    assert b_state(m) == before


def post_json(m, name, body):
    """POSTs a JSON-RPC document with Basic credentials (urllib: batches as they are)."""
    req = urllib.request.Request(f"http://127.0.0.1:{m.port}/", data=body.encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Basic " + base64.b64encode(
                                              f"{name}:{m.secrets[name]}".encode()).decode()})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        return resp.read().decode()


def test_messages_and_broadcasts_stay_inside_a_namespace(auth_master):
    m = auth_master
    b = WsConn(m.http_url(prefix="ws"), header=[f"Authorization: Bearer {m.secrets['team-b']}"])
    try:
        assert b.call("provider.login", "b/listener")[0] is None
        err, sub = b.call("provider.subscribe", "b/listener")
        assert err is None, err
        a = xmlrpc.client.ServerProxy(m.http_url("team-a"))
        a.provider.login("a/speaker")
        with pytest.raises(xmlrpc.client.Fault) as e:
            a.provider.sendMessage("b/listener", "hello from a")
        assert e.value.faultCode == -32003
        with pytest.raises(xmlrpc.client.Fault):
            a.provider.subscribe("b/listener")
        assert a.provider.broadcast("to a only") >= 1
        # team b's own broadcast reaches its listener; a's never did (it would come first).
        xmlrpc.client.ServerProxy(m.http_url("team-b")).provider.broadcast("to b")
        pushed = json.loads(b.ws.recv())
        assert pushed["method"] == "provider.message", pushed
        assert pushed["params"][2] == "to b", pushed
    finally:
        b.close()


# --- 4. connections that never authenticate ----------------------------------------------------


def test_unauthenticated_stream_sockets_are_closed_and_do_not_block_others(auth_master):
    # The clients under test first, on low descriptors (websocket-client uses select()).
    ws = websocket.create_connection(auth_master.http_url(prefix="ws"), timeout=TIMEOUT)
    conn = MsgpackConn(auth_master.msgpack_addr)
    assert conn.call("auth", auth_master.secrets["writer"])[0] is None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2500 if hard == resource.RLIM_INFINITY else min(hard, 2500)
    # Raised for this test only: later tests use select(), which fails past 1024.
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    idle = []
    try:
        for _ in range(min(2000, want - 300)):  # thousands, within what this process may open
            idle.append(socket.create_connection(auth_master.msgpack_addr, timeout=TIMEOUT))
        for _ in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(TIMEOUT)
            s.connect(auth_master.unix)
            idle.append(s)
        # An authenticated client is served while they are held.
        assert conn.call("ping") == (None, True)
        # Every silent socket is closed by the server (end of stream), none answered.
        for s in idle:
            assert s.recv(16) == b""
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            while True:
                ws.recv()
        # The authenticated one is still served after the auth timeout passed.
        assert conn.call("ping") == (None, True)
    finally:
        for s in idle:
            s.close()
        conn.close()
        ws.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_stdio_trusts_its_parent(bin_dir, tmp_path, auth_master):
    entry, _ = new_token(bin_dir, "someone", "read")
    (tmp_path / "tokens.toml").write_text(entry)
    proc = subprocess.Popen([str(bin_dir / "rpcs"), "master", "--backend", "memory", "--stdio",
                             "--auth", str(tmp_path / "tokens.toml")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        # No auth call: the parent is trusted, with admin access.
        proc.stdin.write(msgpack.packb([0, 1, "stack.push", ["from-parent", "x"]]))
        proc.stdin.write(msgpack.packb([0, 2, "provider.cleanUp", []]))
        proc.stdin.close()
        answers = list(msgpack.Unpacker(proc.stdout, raw=False))
        assert answers == [[1, 1, None, 1], [1, 2, None, 0]], answers
    finally:
        proc.kill()
        proc.wait(timeout=10)


# --- 5. protected mode -------------------------------------------------------------------------


def test_the_master_refuses_to_listen_beyond_loopback_without_auth(bin_dir, tmp_path):
    r = subprocess.run([str(bin_dir / "rpcs"), "master", "--backend", "memory",
                        "--listen", "0.0.0.0:0"], capture_output=True, text=True,
                       timeout=TIMEOUT, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert "--auth" in r.stderr and "--insecure-no-auth" in r.stderr, r.stderr
    r = subprocess.run([str(bin_dir / "rpcs"), "master", "--backend", "memory",
                        "--listen", "127.0.0.1:0", "--zerorpc", "tcp://*:0"],
                       capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path,
                       stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and "refusing to serve" in r.stderr, r.stderr
    proc = ServerProcess([bin_dir / "rpcs", "master", "--backend", "memory",
                          "--listen", "0.0.0.0:0", "--insecure-no-auth"], 1,
                         tmp_path / "stderr.log")
    try:
        port = int(proc.urls[0].rsplit(":", 1)[1].strip("/"))
        c = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/")
        assert c.ping() is True
    finally:
        proc.stop()


# --- 6. the log ---------------------------------------------------------------------------------


def test_zz_the_log_never_holds_a_secret(auth_master):
    """Runs last in the module: after successful and failed authentications on every transport."""
    log = auth_master.proc.stderr()
    assert "authentication failed" in log and "authenticated" in log
    assert 'token="writer"' in log or "token=writer" in log
    for secret in list(auth_master.secrets.values()) + [WRONG]:
        assert secret not in log, "a secret reached the log"
    # Nor the hashes, nor the Basic encoding of a secret.
    for name, secret in auth_master.secrets.items():
        basic = base64.b64encode(f"{name}:{secret}".encode()).decode()
        assert basic not in log
