"""``GET /metrics`` of ``rpcs master``, read with the official Prometheus Python client's
parser: the families and their types, counters that move with calls over every protocol,
the master's stacks, leases and clients, and the token a scrape needs on a master with
``--auth``."""

import json
import os
import socket
import urllib.error
import urllib.request
import uuid
import xmlrpc.client

import msgpack
import pytest
import websocket
import zerorpc
from prometheus_client.parser import text_string_to_metric_families

from conftest import ServerProcess
from test_auth import new_token

TIMEOUT = 20


class Master:
    def __init__(self, proc):
        self.proc = proc
        self.http, self.msgpack, self.zerorpc = proc.urls
        host_port = self.http.removeprefix("http://").rstrip("/")
        self.metrics_url = f"http://{host_port}/metrics"
        self.ws = f"ws://{host_port}/"
        host, port = self.msgpack.removeprefix("msgpack://").rsplit(":", 1)
        self.msgpack_addr = (host, int(port))


@pytest.fixture(scope="module")
def master(bin_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("metrics-master")
    env = dict(os.environ)
    env.pop("RPCS_TOKEN", None)
    argv = [bin_dir / "rpcs", "master", "--data-dir", d / "data", "--listen", "127.0.0.1:0",
            "--msgpack", "127.0.0.1:0", "--zerorpc", "tcp://127.0.0.1:0"]
    proc = ServerProcess(argv, 3, d / "stderr.log", env=env)
    try:
        yield Master(proc)
    finally:
        proc.stop()


def scrape(url, headers=None):
    """The families of one scrape, by name (a counter's family drops `_total`)."""
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(families, family, name=None, **labels):
    """The value of the one sample of `family` named `name` (default: the family's own
    name, or `_total` for counters) with exactly these labels; None if there is none."""
    f = families.get(family)
    if f is None:
        return None
    name = name or (family + "_total" if f.type == "counter" else family)
    found = [s.value for s in f.samples if s.name == name and s.labels == labels]
    assert len(found) <= 1, found
    return found[0] if found else None


def msgpack_call(addr, method, params):
    with socket.create_connection(addr, timeout=TIMEOUT) as s:
        s.sendall(msgpack.packb([0, 1, method, params]))
        unpacker = msgpack.Unpacker(raw=False)
        while True:
            unpacker.feed(s.recv(65536))
            for reply in unpacker:
                return reply


def ws_call(url, method, params):
    ws = websocket.create_connection(url, timeout=TIMEOUT)
    try:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        return json.loads(ws.recv())
    finally:
        ws.close()


def jsonrpc_call(http, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(http, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
        return json.loads(resp.read())


def test_the_families_have_the_types_prometheus_expects(master):
    xmlrpc.client.ServerProxy(master.http).stack.push(f"types-{uuid.uuid4().hex}", "x")
    families = scrape(master.metrics_url)
    expected = {
        "rpcs_build_info": "gauge",
        "rpcs_calls": "counter",
        "rpcs_faults": "counter",
        "rpcs_call_duration_seconds": "histogram",
        "rpcs_connections_open": "gauge",
        "rpcs_connections_accepted": "counter",
        "rpcs_received_bytes": "counter",
        "rpcs_sent_bytes": "counter",
        "rpcs_stacks": "gauge",
        "rpcs_stack_items": "gauge",
        "rpcs_stack_items_in": "counter",
        "rpcs_stack_items_out": "counter",
        "rpcs_leases": "gauge",
        "rpcs_clients": "gauge",
        "rpcs_store_commit_duration_seconds": "histogram",
    }
    for name, kind in expected.items():
        assert name in families, f"{name} missing from {sorted(families)}"
        assert families[name].type == kind, (name, families[name].type)
    build = [s for s in families["rpcs_build_info"].samples]
    assert build[0].value == 1 and build[0].labels["version"]


def test_calls_are_counted_per_method_and_protocol(master):
    stack = f"calls-{uuid.uuid4().hex}"
    before = scrape(master.metrics_url)

    def count(families, protocol):
        return sample(families, "rpcs_calls", method="stack.push", protocol=protocol) or 0

    xmlrpc.client.ServerProxy(master.http).stack.push(stack, "a")
    assert jsonrpc_call(master.http, "stack.push", [stack, "b"])["result"] == 2
    assert msgpack_call(master.msgpack_addr, "stack.push", [stack, "c"])[2] is None
    assert ws_call(master.ws, "stack.push", [stack, "d"])["result"] == 4
    client = zerorpc.Client(connect_to=master.zerorpc, timeout=TIMEOUT, heartbeat=None)
    try:
        assert client("stack.push", stack, "e") == 5
    finally:
        client.close()
    after = scrape(master.metrics_url)
    for protocol in ["xmlrpc", "jsonrpc", "msgpack-rpc", "jsonrpc-ws", "zerorpc"]:
        assert count(after, protocol) == count(before, protocol) + 1, protocol
        for family in ["rpcs_received_bytes", "rpcs_sent_bytes"]:
            moved = (sample(after, family, protocol=protocol) or 0) - (
                sample(before, family, protocol=protocol) or 0)
            assert moved > 0, (family, protocol)
    assert sample(after, "rpcs_stack_items", stack=stack) == 5


def test_faults_and_unknown_methods_are_counted_without_the_callers_names(master):
    proxy = xmlrpc.client.ServerProxy(master.http)
    before = scrape(master.metrics_url)
    with pytest.raises(xmlrpc.client.Fault):
        proxy.stack.pop(f"nothere-{uuid.uuid4().hex}")
    hostile = f"made.up.{uuid.uuid4().hex}"
    with pytest.raises(xmlrpc.client.Fault):
        getattr(proxy, hostile)()
    after = scrape(master.metrics_url)

    def faults(families, method):
        return sample(families, "rpcs_faults", method=method, protocol="xmlrpc") or 0

    assert faults(after, "stack.pop") == faults(before, "stack.pop") + 1
    assert faults(after, "<unknown>") == faults(before, "<unknown>") + 1
    methods = {s.labels.get("method") for s in after["rpcs_calls"].samples}
    assert hostile not in methods


def test_the_latency_histogram_is_cumulative_and_matches_the_call_count(master):
    proxy = xmlrpc.client.ServerProxy(master.http)
    for _ in range(3):
        proxy.system.listMethods()
    families = scrape(master.metrics_url)
    buckets = [(s.labels["le"], s.value) for s in families["rpcs_call_duration_seconds"].samples
               if s.name == "rpcs_call_duration_seconds_bucket"
               and s.labels["method"] == "system.listMethods"]
    values = [v for _, v in buckets]
    assert values == sorted(values), buckets
    assert buckets[-1][0] == "+Inf"
    count = sample(families, "rpcs_call_duration_seconds", "rpcs_call_duration_seconds_count",
                   method="system.listMethods")
    assert count == buckets[-1][1]
    calls = sum(s.value for s in families["rpcs_calls"].samples
                if s.labels["method"] == "system.listMethods")
    assert count == calls >= 3


def test_leases_clients_and_bytes_move(master):
    stack = f"leases-{uuid.uuid4().hex}"
    proxy = xmlrpc.client.ServerProxy(master.http, allow_none=True)
    before = scrape(master.metrics_url)
    proxy.stack.pushMany(stack, ["x", "y"])
    proxy.provider.login(f"worker-{stack}")
    taken = proxy.stack.take(stack, 60.0, 0.0, f"worker-{stack}")
    after = scrape(master.metrics_url)
    assert sample(after, "rpcs_stack_leased_items", stack=stack) == 1
    assert sample(after, "rpcs_stack_items", stack=stack) == 1
    assert sample(after, "rpcs_leases") == (sample(before, "rpcs_leases") or 0) + 1
    assert sample(after, "rpcs_clients") == (sample(before, "rpcs_clients") or 0) + 1
    received = sample(after, "rpcs_received_bytes", protocol="xmlrpc")
    assert received > (sample(before, "rpcs_received_bytes", protocol="xmlrpc") or 0)
    proxy.stack.ack(stack, taken["id"])
    assert sample(scrape(master.metrics_url), "rpcs_stack_leased_items", stack=stack) == 0


def test_items_in_and_out_are_counted_per_stack(master):
    stack = f"flow-{uuid.uuid4().hex}"
    proxy = xmlrpc.client.ServerProxy(master.http)
    proxy.stack.pushMany(stack, ["a", "b", "c"])
    proxy.stack.pop(stack)
    taken = proxy.stack.take(stack)
    proxy.stack.release(stack, taken["id"])
    families = scrape(master.metrics_url)
    assert sample(families, "rpcs_stack_items_in", stack=stack) == 4
    assert sample(families, "rpcs_stack_items_out", stack=stack) == 2
    assert proxy.stack.getStats(stack) == {"size": 2, "leased": 0, "itemsIn": 4, "itemsOut": 2}


def test_connections_are_counted_per_listener(master):
    before = scrape(master.metrics_url)
    held = websocket.create_connection(master.ws, timeout=TIMEOUT)
    try:
        during = scrape(master.metrics_url)
    finally:
        held.close()
    listener = master.http
    opened = sample(during, "rpcs_connections_open", listener=listener)
    # The held WebSocket and the scrape's own connection.
    assert opened >= 2
    assert sample(during, "rpcs_connections_accepted", listener=listener) >= \
        sample(before, "rpcs_connections_accepted", listener=listener) + 2


def test_the_store_commit_times_are_recorded(master):
    before = scrape(master.metrics_url)
    xmlrpc.client.ServerProxy(master.http).stack.push(f"commit-{uuid.uuid4().hex}", "x")
    after = scrape(master.metrics_url)
    name = "rpcs_store_commit_duration_seconds"
    old = sample(before, name, name + "_count") or 0
    assert sample(after, name, name + "_count") >= old + 1


def test_metrics_are_read_with_get_only(master):
    req = urllib.request.Request(master.metrics_url, data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=TIMEOUT)
    assert e.value.code == 405


@pytest.fixture(scope="module")
def auth_master(bin_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("metrics-auth")
    entries, secrets = [], {}
    for name, access, prefix in [("scraper", "read", None), ("team", "admin", "t/")]:
        entry, secrets[name] = new_token(bin_dir, name, access, prefix)
        entries.append(entry)
    (d / "tokens.toml").write_text("".join(entries))
    env = dict(os.environ)
    env.pop("RPCS_TOKEN", None)
    argv = [bin_dir / "rpcs", "master", "--backend", "memory", "--auth", d / "tokens.toml",
            "--listen", "127.0.0.1:0"]
    proc = ServerProcess(argv, 1, d / "stderr.log", env=env)
    try:
        yield proc.urls[0] + "metrics", secrets
    finally:
        proc.stop()


def test_with_tokens_a_scrape_needs_one_that_sees_the_whole_server(auth_master):
    url, secrets = auth_master
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=TIMEOUT)
    assert e.value.code == 401
    bearer = {"Authorization": f"Bearer {secrets['team']}"}
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url, headers=bearer), timeout=TIMEOUT)
    assert e.value.code == 403
    wrong = {"Authorization": "Bearer not-a-token-secret"}
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url, headers=wrong), timeout=TIMEOUT)
    assert e.value.code == 401
    families = scrape(url, {"Authorization": f"Bearer {secrets['scraper']}"})
    assert "rpcs_build_info" in families
    # The wrong secret was counted (a request with no header names no token).
    assert sample(families, "rpcs_auth_failures") >= 1


def test_rpc_stats_counts_every_answered_call_on_any_protocol(master):
    proxy = xmlrpc.client.ServerProxy(master.http)
    first = proxy.rpc.stats()
    stack = f"stats-{uuid.uuid4().hex}"
    proxy.stack.push(stack, "a")
    assert msgpack_call(master.msgpack_addr, "stack.push", [stack, "b"])[2] is None
    with pytest.raises(xmlrpc.client.Fault):
        proxy.stack.pop(f"nothere-{uuid.uuid4().hex}")
    second = msgpack_call(master.msgpack_addr, "rpc.stats", [])[3]
    # The three calls and the first rpc.stats (counted once it was answered).
    assert second["calls"] - first["calls"] == 4
    assert second["faults"] - first["faults"] == 1
    assert second["connections"] >= 1


def test_the_monitor_shows_the_servers_totals(master, run_rpcs):
    out = run_rpcs("monitor", master.http, "--once", "--json")
    assert out.returncode == 0, out.stderr
    server = json.loads(out.stdout)["server"]
    assert server["calls"] >= 1 and server["faults"] >= 0
    assert server["callsPerSecond"] is None  # one look has no rate yet
    plain = run_rpcs("monitor", master.http, "--once")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[0].startswith("calls ")
