"""TLS on the master (``--https``, ``--msgpack-tls``), with certificates made by ``rpcs cert new``
at test time, and stock Python clients verifying them: xmlrpc.client and jsonrpclib over HTTPS
(with URL credentials, as --auth is on too), websocket-client over wss, the msgpack package over
an ssl socket; mutual TLS; reload on SIGHUP; plaintext and stalled handshakes."""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import uuid
import xmlrpc.client

import jsonrpclib
import pytest
import websocket

from conftest import ServerProcess
from hostile_helpers import MsgpackConn
from test_auth import new_token

TIMEOUT = 20


def make_certs(bin_dir, d, *clients):
    argv = [str(bin_dir / "rpcs"), "cert", "new", "--dir", str(d)]
    for c in clients:
        argv += ["--client", c]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert (d / "server-key.pem").stat().st_mode & 0o077 == 0, "a key readable by others"


class TlsMaster:
    def __init__(self, proc, d, secret):
        self.proc, self.dir, self.secret = proc, d, secret
        self.https, self.msgpack_tls = proc.urls
        assert self.https.startswith("https://") and self.msgpack_tls.startswith("msgpack+tls://")
        self.port = int(re.search(r":(\d+)/$", self.https).group(1))
        self.mport = int(self.msgpack_tls.rsplit(":", 1)[1])

    def context(self, client=None):
        ctx = ssl.create_default_context(cafile=str(self.dir / "ca.pem"))
        if client:
            ctx.load_cert_chain(str(self.dir / f"{client}.pem"), str(self.dir / f"{client}-key.pem"))
        return ctx

    def url(self):
        return f"https://writer:{self.secret}@127.0.0.1:{self.port}/"


def start_master(bin_dir, d, mtls=False):
    entry, secret = new_token(bin_dir, "writer", "write")
    (d / "tokens.toml").write_text(entry)
    argv = [bin_dir / "rpcs", "master", "--backend", "memory", "--auth", d / "tokens.toml",
            "--listen", "127.0.0.1:0", "--https", "127.0.0.1:0", "--msgpack-tls", "127.0.0.1:0",
            "--tls-cert", d / "server.pem", "--tls-key", d / "server-key.pem"]
    if mtls:
        argv += ["--tls-client-ca", d / "ca.pem"]
    env = dict(os.environ, RPCS_LOG="debug")
    proc = ServerProcess(argv, 3, d / "stderr.log", env=env)
    proc.urls = proc.urls[1:]  # the plain HTTP listener is not under test here
    return TlsMaster(proc, d, secret)


@pytest.fixture(scope="module")
def tls_master(bin_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-master")
    make_certs(bin_dir, d, "worker")
    m = start_master(bin_dir, d)
    try:
        yield m
    finally:
        m.proc.stop()


def test_xmlrpc_client_over_https_with_verification(tls_master):
    c = xmlrpc.client.ServerProxy(tls_master.url(), context=tls_master.context())
    name = f"tls-{uuid.uuid4().hex}"
    assert c.stack.push(name, "a") == 1
    assert c.stack.pop(name) == "a"
    # Verification is on: the system's CAs do not know ours.
    with pytest.raises(ssl.SSLCertVerificationError):
        xmlrpc.client.ServerProxy(tls_master.url(), context=ssl.create_default_context()).ping()
    # And the name is checked: the certificate is for localhost and 127.0.0.1 only.
    raw = socket.create_connection(("127.0.0.1", tls_master.port), timeout=TIMEOUT)
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_master.context().wrap_socket(raw, server_hostname="example.com")
    raw.close()


def test_jsonrpclib_over_https(tls_master):
    c = jsonrpclib.ServerProxy(tls_master.url(), context=tls_master.context())
    name = f"tls-{uuid.uuid4().hex}"
    assert c.stack.push(name, {"k": [1]}) == 1
    assert c.stack.pop(name) == {"k": [1]}


def test_websocket_client_over_wss(tls_master):
    ws = websocket.create_connection(
        f"wss://127.0.0.1:{tls_master.port}/", timeout=TIMEOUT,
        header=[f"Authorization: Bearer {tls_master.secret}"],
        sslopt={"ca_certs": str(tls_master.dir / "ca.pem")})
    try:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": []}))
        assert json.loads(ws.recv()) == {"jsonrpc": "2.0", "id": 1, "result": True}
    finally:
        ws.close()


def test_msgpack_package_over_an_ssl_socket(tls_master):
    raw = socket.create_connection(("127.0.0.1", tls_master.mport), timeout=TIMEOUT)
    with tls_master.context().wrap_socket(raw, server_hostname="localhost") as s:
        conn = MsgpackConn(sock=s)
        assert conn.call("auth", tls_master.secret)[0] is None
        assert conn.call("ping") == (None, True)


def test_rpcs_call_verifies_by_default_and_takes_a_ca(tls_master, bin_dir):
    rpcs = str(bin_dir / "rpcs")
    env = dict(os.environ, RPCS_TOKEN=tls_master.secret)
    ca = str(tls_master.dir / "ca.pem")
    for url in (tls_master.https, tls_master.msgpack_tls):
        r = subprocess.run([rpcs, "call", "--ca", ca, url, "ping"], capture_output=True,
                           text=True, env=env, timeout=TIMEOUT)
        assert r.returncode == 0 and r.stdout.strip() == "true", (url, r.stderr)
        r = subprocess.run([rpcs, "call", url, "ping"], capture_output=True, text=True, env=env,
                           timeout=TIMEOUT)
        assert r.returncode == 3 and "certificate" in r.stderr, (url, r.returncode, r.stderr)
        r = subprocess.run([rpcs, "call", "--insecure", url, "ping"], capture_output=True,
                           text=True, env=env, timeout=TIMEOUT)
        assert r.returncode == 0, (url, r.stderr)


def test_plaintext_and_stalled_handshakes_do_no_harm(tls_master):
    for port in (tls_master.port, tls_master.mport):
        plain = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        plain.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        data = plain.recv(4096)
        while data and not data.startswith(b"HTTP/"):  # a TLS alert, then the close
            data = plain.recv(4096)
        assert data == b"", data
        plain.close()
    stalled = [socket.create_connection(("127.0.0.1", tls_master.port), timeout=TIMEOUT)
               for _ in range(50)]
    for s in stalled:
        s.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, then nothing
    c = xmlrpc.client.ServerProxy(tls_master.url(), context=tls_master.context())
    assert c.ping() is True
    for s in stalled:
        s.close()


def wait_for_log(master, text, since):
    """Waits until the master's log has ``text`` after offset ``since`` (signals are async)."""
    for _ in range(400):
        if text in master.proc.stderr()[since:]:
            return
        time.sleep(0.05)  # polling a log written by another process, not a timing assertion
    pytest.fail(f"the master never logged {text!r}")


def test_sighup_reloads_the_certificate(bin_dir, tmp_path):
    make_certs(bin_dir, tmp_path)
    m = start_master(bin_dir, tmp_path)
    try:
        old_ca = (tmp_path / "ca.pem").read_text()
        (tmp_path / "old-ca.pem").write_text(old_ca)
        make_certs(bin_dir, tmp_path)  # a new CA and server certificate in place
        since = len(m.proc.stderr())
        m.proc.proc.send_signal(signal.SIGHUP)
        wait_for_log(m, "TLS certificate reloaded", since)
        new = xmlrpc.client.ServerProxy(m.url(), context=m.context())
        assert new.ping() is True
        stale = ssl.create_default_context(cafile=str(tmp_path / "old-ca.pem"))
        with pytest.raises(ssl.SSLCertVerificationError):
            xmlrpc.client.ServerProxy(m.url(), context=stale).ping()
        # A broken file is refused and the current certificate stays.
        (tmp_path / "server-key.pem").write_text("not a key")
        since = len(m.proc.stderr())
        m.proc.proc.send_signal(signal.SIGHUP)
        wait_for_log(m, "TLS reload failed", since)
        assert xmlrpc.client.ServerProxy(m.url(), context=m.context()).ping() is True
    finally:
        m.proc.stop()


def test_mutual_tls_needs_a_client_certificate(bin_dir, tmp_path):
    make_certs(bin_dir, tmp_path, "worker")
    m = start_master(bin_dir, tmp_path, mtls=True)
    try:
        c = xmlrpc.client.ServerProxy(m.url(), context=m.context("worker"))
        assert c.ping() is True
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            xmlrpc.client.ServerProxy(m.url(), context=m.context()).ping()
        raw = socket.create_connection(("127.0.0.1", m.mport), timeout=TIMEOUT)
        with m.context("worker").wrap_socket(raw, server_hostname="localhost") as s:
            assert MsgpackConn(sock=s).call("auth", m.secret)[0] is None
    finally:
        m.proc.stop()


def test_rpcs_monitor_takes_a_ca(tls_master, bin_dir):
    rpcs = str(bin_dir / "rpcs")
    env = dict(os.environ, RPCS_TOKEN=tls_master.secret)
    ca = str(tls_master.dir / "ca.pem")
    r = subprocess.run([rpcs, "monitor", "--once", "--json", "--ca", ca, tls_master.https],
                       capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert "stacks" in json.loads(r.stdout.splitlines()[0])
    r = subprocess.run([rpcs, "monitor", "--once", tls_master.https], capture_output=True,
                       text=True, env=env, timeout=TIMEOUT)
    assert r.returncode != 0 and "certificate" in r.stderr, (r.returncode, r.stderr)


def test_the_crawler_takes_a_ca(tls_master, bin_dir):
    crawler = str(bin_dir / "rpcs-crawler")
    env = dict(os.environ, RPCS_TOKEN=tls_master.secret)
    env.pop("RPCS_MASTER", None)
    wss = tls_master.https.replace("https://", "wss://")
    ca = str(tls_master.dir / "ca.pem")
    r = subprocess.run([crawler, "--master", wss, "--ca", ca, "status", "--json"],
                       capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout), dict)
    r = subprocess.run([crawler, "--master", wss, "status"], capture_output=True, text=True,
                       env=env, timeout=TIMEOUT)
    assert r.returncode != 0 and "certificate" in r.stderr, (r.returncode, r.stderr)
