"""``rpcs registry`` against RPyC 6's own registry clients and servers.

- An rpyc ``ThreadedServer`` with ``auto_register`` shows up in our registry, and
  rpyc's ``discover()`` (UDP and TCP registry clients) returns it.
- Our master registered with ``--register`` is found by rpyc's registry clients and
  ``list_services``, and by ``rpcs discover``.
- Garbage and floods of datagrams neither crash the registry nor corrupt its table.
"""

import json
import os
import random
import socket
import threading
import time

import pytest
import rpyc
from rpyc.core import brine
from rpyc.utils.factory import DiscoveryError, discover, list_services
from rpyc.utils.registry import TCPRegistryClient, UDPRegistryClient
from rpyc.utils.server import ThreadedServer

from conftest import STARTUP_TIMEOUT, ServerProcess

# Safety net for waits on a background registration; no test asserts on timing.
WAIT = 30.0


def udp_port(url):
    assert url.startswith("rpyc+udp://127.0.0.1:"), url
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def registry(bin_dir, tmp_path):
    """``rpcs registry`` on one free port (UDP and TCP), listing allowed; yields the port."""
    proc = ServerProcess(
        [bin_dir / "rpcs", "registry", "--listen", "127.0.0.1:0", "--allow-listing"],
        2, tmp_path / "registry.log")
    try:
        port = udp_port(proc.urls[0])
        assert proc.urls[1] == f"rpyc+tcp://127.0.0.1:{port}", proc.urls
        proc.port = port
        yield proc
    finally:
        proc.stop()


def until(what, check):
    deadline = time.monotonic() + WAIT
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def try_discover(name, registrar):
    try:
        return discover(name, registrar=registrar)
    except DiscoveryError:
        return None


class Echo(rpyc.Service):
    ALIASES = ["ECHOER", "PARROT"]

    def exposed_echo(self, x):
        return x


@pytest.fixture
def rpyc_server(registry):
    """An rpyc ThreadedServer auto-registering with our registry; yields its port."""
    registrar = UDPRegistryClient(ip="127.0.0.1", port=registry.port)
    server = ThreadedServer(Echo, hostname="127.0.0.1", port=0, auto_register=True,
                            registrar=registrar, protocol_config={"allow_public_attrs": False})
    thread = threading.Thread(target=server.start, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.close()
        thread.join(timeout=10)


def test_an_rpyc_server_registers_and_rpyc_discovers_it(registry, rpyc_server):
    udp = UDPRegistryClient(ip="127.0.0.1", port=registry.port, timeout=2)
    found = until("rpyc's server registered", lambda: try_discover("echoer", udp))
    assert ("127.0.0.1", rpyc_server) in [tuple(a) for a in found]
    tcp = TCPRegistryClient(ip="127.0.0.1", port=registry.port, timeout=2)
    assert ("127.0.0.1", rpyc_server) in [tuple(a) for a in discover("PARROT", registrar=tcp)]
    # A real rpyc connection to what discovery returned works.
    host, port = found[0]
    conn = rpyc.connect(host, port)
    try:
        assert conn.root.echo("hi") == "hi"
    finally:
        conn.close()
    names = set(list_services(registrar=udp))
    assert {"ECHOER", "PARROT"} <= names


def test_our_client_finds_an_rpyc_registered_name(registry, rpyc_server, run_rpcs):
    udp = UDPRegistryClient(ip="127.0.0.1", port=registry.port, timeout=2)
    until("rpyc's server registered", lambda: try_discover("echoer", udp))
    out = run_rpcs("discover", "echoer", "--registry", f"127.0.0.1:{registry.port}", "--json")
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [(i["source"], i["host"], i["port"]) for i in listed] == [
        ("rpyc", "127.0.0.1", rpyc_server)]
    out = run_rpcs("discover", "--registry", f"127.0.0.1:{registry.port}")
    assert out.returncode == 0, out.stderr
    assert "ECHOER\t1" in out.stdout.splitlines()


def test_unregister_from_rpyc_removes_every_alias(registry):
    udp = UDPRegistryClient(ip="127.0.0.1", port=registry.port, timeout=2)
    assert udp.register(("ALPHA", "BETA"), 40123) is True
    assert ("127.0.0.1", 40123) in [tuple(a) for a in discover("alpha", registrar=udp)]
    udp.unregister(40123)
    until("ALPHA gone", lambda: try_discover("ALPHA", udp) is None)
    assert try_discover("BETA", udp) is None


def test_our_master_is_found_by_rpycs_registry_clients(bin_dir, registry, tmp_path, run_rpcs):
    master = ServerProcess(
        [bin_dir / "rpcs", "master", "--backend", "memory", "--listen", "127.0.0.1:0",
         "--msgpack", "127.0.0.1:0", "--register", "coordinator",
         "--registry", f"127.0.0.1:{registry.port}"],
        2, tmp_path / "master.log")
    try:
        ports = {int(u.rstrip("/").rsplit(":", 1)[1]) for u in master.urls}
        udp = UDPRegistryClient(ip="127.0.0.1", port=registry.port, timeout=2)
        found = until("our master registered", lambda: try_discover("COORDINATOR", udp))
        assert {p for _, p in found} == ports
        tcp = TCPRegistryClient(ip="127.0.0.1", port=registry.port, timeout=2)
        assert {p for _, p in discover("coordinator", registrar=tcp)} == ports
        assert "COORDINATOR" in list_services(registrar=udp)
        # And by name through our own client, on every protocol it registered.
        for protocol in ("msgpack", "xmlrpc", "jsonrpc", "ws"):
            url = f"rpcs://coordinator?protocol={protocol}&registry=127.0.0.1:{registry.port}"
            out = run_rpcs("call", url, "stack.push", "jobs", protocol)
            assert out.returncode == 0, (protocol, out.stderr)
        out = run_rpcs("call", master.urls[1], "stack.getSize", "jobs")
        assert out.stdout.strip() == "4"
    finally:
        master.stop()
    # A graceful stop unregistered it.
    assert try_discover("COORDINATOR", UDPRegistryClient(ip="127.0.0.1", port=registry.port,
                                                         timeout=1)) is None


def test_listing_is_refused_unless_allowed(bin_dir, tmp_path):
    proc = ServerProcess([bin_dir / "rpcs", "registry", "--listen", "127.0.0.1:0"], 2,
                         tmp_path / "registry.log")
    try:
        udp = UDPRegistryClient(ip="127.0.0.1", port=udp_port(proc.urls[0]), timeout=2)
        assert udp.list() is None
        with pytest.raises(rpyc.utils.factory.ForbiddenError):
            list_services(registrar=udp)
    finally:
        proc.stop()


def raw_query(port, payload, timeout=2.0):
    """Sends one datagram and returns the answer's bytes, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, ("127.0.0.1", port))
        try:
            return s.recvfrom(65535)[0]
        except socket.timeout:
            return None


def test_garbage_and_floods_leave_the_registry_answering(registry):
    port = registry.port
    udp = UDPRegistryClient(ip="127.0.0.1", port=port, timeout=2)
    assert udp.register(("KEEP",), 40200) is True
    rng = random.Random(1234)
    hostile = [
        b"",
        b"\x00",
        b"\x15\xff\xff\xff\xff",                       # a tuple claiming 4 billion items
        b"\x0f\xff\xff\xff\xff",                       # bytes claiming 4 GiB
        b"\x17\xff\xff\xff\xff1",                      # an integer claiming 4 GiB of digits
        b"\x10" * 100_00,                              # tuples nested 10,000 deep
        brine.dump(("RPYC", "REGISTER", (("X",) * 1000, 0))),   # port 0
        brine.dump(("RPYC", "REGISTER", ("notatuple", 1))),
        brine.dump(("RPYC", "SHUTDOWN", ())),
        brine.dump(("NOPE", "QUERY", ("KEEP",))),
        b"\x94\x00\xce\xff\xff\xff\xff\xa3abc\xdd\xff\xff\xff\xff",  # msgpack array32 claim
        os.urandom(65000),
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for payload in hostile:
            s.sendto(payload, ("127.0.0.1", port))
        # A flood of random datagrams, far faster than anyone registers.
        for _ in range(20_000):
            s.sendto(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64))),
                     ("127.0.0.1", port))
    # Malformed requests get no answer, as from RPyC's registry.
    assert raw_query(port, brine.dump(("RPYC", "SHUTDOWN", ())), timeout=0.5) is None
    # The process lives, the table is intact, and it still answers.
    assert registry.alive()
    assert ("127.0.0.1", 40200) in [tuple(a) for a in discover("KEEP", registrar=udp)]
    assert udp.register(("AFTER",), 40201) is True
    assert [tuple(a) for a in discover("AFTER", registrar=udp)] == [("127.0.0.1", 40201)]
    names = set(list_services(registrar=udp))
    assert names == {"KEEP", "AFTER"}, names


def test_a_flood_of_registrations_is_bounded(bin_dir, tmp_path):
    proc = ServerProcess([bin_dir / "rpcs", "registry", "--listen", "127.0.0.1:0",
                          "--max-per-host", "50", "--allow-listing"], 2, tmp_path / "reg.log")
    try:
        port = udp_port(proc.urls[0])
        udp = UDPRegistryClient(ip="127.0.0.1", port=port, timeout=1)
        accepted = sum(1 for i in range(53) if udp.register((f"S{i}",), 41000 + i))
        assert accepted == 50
        assert len(list_services(registrar=udp)) == 50
        # A renewal of one already there still passes.
        assert udp.register(("S0",), 41000) is True
        assert proc.alive()
    finally:
        proc.stop()


def test_tcp_requests_are_one_per_connection(registry):
    udp = UDPRegistryClient(ip="127.0.0.1", port=registry.port, timeout=2)
    assert udp.register(("TCPQ",), 40300) is True
    with socket.create_connection(("127.0.0.1", registry.port), timeout=STARTUP_TIMEOUT) as s:
        request = brine.dump(("RPYC", "QUERY", ("TCPQ",)))
        # Sent in two pieces: the registry reads until the request is whole.
        s.sendall(request[:5])
        time.sleep(0.05)
        s.sendall(request[5:])
        answer = s.recv(1500)
        assert brine.load(answer) == (("127.0.0.1", 40300),)
        assert s.recv(10) == b"", "the registry closes after one answer"
