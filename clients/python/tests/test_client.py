"""The client objects: URLs, ping, raw calls, the connection, https."""

from __future__ import annotations

import ssl
import subprocess

import pytest

from rpcservices import StackIndexError, XmlRpcClient
from rpcservices._transport import _split_url


def test_ping_list_methods_and_raw_calls(client, name):
    assert client.ping() is True
    methods = client.listMethods()
    assert {"stack.push", "stack.take", "storage.compareAndSet", "provider.visit"} <= set(methods)
    assert client.call("stack.push", name, 7) == 1
    assert client.call("stack_getSize", name) == 1  # the original rpcServices name


def test_every_master_service_method_has_a_client_method(client):
    from rpcservices.services import provider, stack, storage
    have = {
        "stack": set(dir(stack.Stack)) | set(dir(stack.StackStub)),
        "storage": set(dir(storage.Storage)) | set(dir(storage.StorageStub)),
        "provider": set(dir(provider.Provider)) | set(dir(provider.ProviderStub)),
    }
    renamed = {"stack.create": "createStack", "stack.getAllNames": "getAllStackNames",
               "storage.create": "createStorage", "storage.getAllNames": "getAllStorageNames",
               "storage.hasStorage": "hasStorage"}
    http_only_not = {"provider.subscribe", "provider.unsubscribe"}  # stream connections only
    missing = []
    for m in client.listMethods():
        service, _, method = m.partition(".")
        if service not in have or m in http_only_not:
            continue
        if renamed.get(m, method) not in have[service]:
            missing.append(m)
    assert missing == []


def test_urls():
    assert _split_url("http://localhost:8000", "/RPC2")[1:4] == ("localhost", 8000, "/RPC2")
    assert _split_url("jsonrpc+http://h:1/x", "/")[:4] == ("http", "h", 1, "/x")
    assert _split_url("https://h/", "/")[2] == 443
    _, _, _, _, creds = _split_url("http://me:s%40cret@h:1/", "/")
    assert (creds.name, creds.secret) == ("me", "s@cret")
    with pytest.raises(ValueError):
        _split_url("ftp://h/", "/")
    assert repr(XmlRpcClient("http://me:pw@h:1")) == "XmlRpcClient('http://h:1/RPC2')"


def test_a_closed_connection_is_reopened(client, name):
    s = client.stack.createStack(name)
    s.push(1)
    client.close()
    assert s.getSize() == 1
    with client as same:
        assert same.ping() is True
    assert client.ping() is True


def test_a_connection_the_master_dropped_is_reopened(client, name):
    s = client.stack.createStack(name)
    s.push(1)
    conn = client._transport()._conn
    conn.sock.shutdown(2)  # as when the master closes an idle keep-alive connection
    assert s.getSize() == 1


def test_timeout_applies_but_pop_wait_adds_its_wait(transport, master_url, name):
    c = transport(master_url, timeout=0.5)
    s = c.stack.createStack(name)
    # popWait's own wait is added to the socket timeout: the master's answer arrives,
    # rather than the socket giving up first.
    with pytest.raises(StackIndexError):
        s.popWait(1.5)


@pytest.fixture(scope="session")
def tls_master(rpcs_bin, start_master, tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    r = subprocess.run([str(rpcs_bin), "cert", "new", "--dir", str(d)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    m = start_master("--https", "127.0.0.1:0", "--tls-cert", d / "server.pem",
                     "--tls-key", d / "server-key.pem", listeners=2)
    https = [u for u in m.urls if u.startswith("https://")]
    assert len(https) == 1
    return https[0], d / "ca.pem"


def test_https_with_an_ssl_context(tls_master, transport, name):
    url, ca = tls_master
    c = transport(url, ssl_context=ssl.create_default_context(cafile=str(ca)), timeout=30)
    assert c.ping() is True
    assert c.stack.createStack(name).push("over tls") == 1
    untrusted = transport(url, timeout=30)  # the system's CAs do not know this one
    with pytest.raises(ssl.SSLError):
        untrusted.ping()
