"""``rpcs master`` from Python: the seed's stack example, the rpcServices method names, every
stack/storage/provider method, fault mapping, persistence across restarts and the CLI.

Standard library + pytest only. No test asserts on timing: timeouts are safety nets.
"""

import contextlib
import re
import signal
import subprocess
import sys
import threading
import time
import xmlrpc.client

from conftest import read_line_with_timeout
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent.parent / "examples" / "python"
sys.path.insert(0, str(EXAMPLES))

import rpcservices_client as rc  # noqa: E402
from rpcservices_client import (  # noqa: E402
    ClientNotFoundError,
    ItemTooLargeError,
    Master,
    ParameterNotFoundError,
    RemoteError,
    RemoteTypeError,
    RemoteValueError,
    StackIndexError,
    StackNotFoundError,
    StorageNotFoundError,
)

# Safety nets only.
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
SCRIPT_TIMEOUT = 30.0

PUSH_LINES = [f"push item {i}" for i in range(10)]
POP_LINES = [f"pop item {i}" for i in reversed(range(10))]


class MasterProcess:
    """One ``rpcs master`` on 127.0.0.1:0; ``url`` once started; ``stop()`` sends SIGTERM."""

    def __init__(self, bin_dir, data_dir, *extra):
        data_dir = Path(data_dir)
        self.log_path = data_dir.with_name(f"{data_dir.name}-{time.monotonic_ns()}.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(bin_dir / "rpcs"), "master", "--listen", "127.0.0.1:0",
                 "--data-dir", str(data_dir), *map(str, extra)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        line = read_line_with_timeout(self.proc.stdout, STARTUP_TIMEOUT)
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+/)\n", line or "")
        if not m:
            self.kill()
            pytest.fail(f"master did not announce its URL (got {line!r}); stderr: {self.stderr()}")
        self.url = m.group(1)

    def stderr(self):
        return self.log_path.read_text(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc.stdout.close()

    def stop(self):
        """Checks the master still answers, sends SIGTERM, and asserts a clean exit (status 0)
        with nothing more on stdout than the one line."""
        assert self.proc.poll() is None, f"master died; stderr: {self.stderr()}"
        with xmlrpc.client.ServerProxy(self.url) as p:
            assert p.ping() is True
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"master ignored SIGTERM; stderr: {self.stderr()}")
        rest = self.proc.stdout.read()
        self.proc.stdout.close()
        assert code == 0, f"master exited {code}; stderr: {self.stderr()}"
        assert rest == "", f"master printed more than its one line: {rest!r}"


@contextlib.contextmanager
def running_master(bin_dir, data_dir, *extra):
    """A master for a ``with`` block: its URL; SIGTERM and a clean exit at the end."""
    m = MasterProcess(bin_dir, data_dir, *extra)
    try:
        yield m.url
    except BaseException:
        m.kill()
        raise
    m.stop()


@pytest.fixture
def master(bin_dir, tmp_path):
    """``rpcs master`` with its embedded store in ``tmp_path``; yields the URL."""
    with running_master(bin_dir, tmp_path / "data") as url:
        yield url


@pytest.fixture
def memory_master(bin_dir, tmp_path):
    """``rpcs master --backend memory``; yields the URL."""
    with running_master(bin_dir, tmp_path / "unused", "--backend", "memory") as url:
        yield url


def run_script(name, url):
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), url],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}; stderr: {proc.stderr}"
    assert proc.stderr == ""
    return proc.stdout.splitlines()


def proxy(url):
    return xmlrpc.client.ServerProxy(url, allow_none=True)


# --- the seed's simple stack example ---------------------------------------------------------


@pytest.mark.parametrize("backend", ["master", "memory_master"])
def test_producer_then_consumer(request, backend):
    url = request.getfixturevalue(backend)
    assert run_script("producer.py", url) == PUSH_LINES
    assert proxy(url).stack.getSize("in") == 10
    assert run_script("consumer.py", url) == POP_LINES
    assert proxy(url).stack.getSize("in") == 0
    # An empty stack: the consumer stops at once.
    assert run_script("consumer.py", url) == []


def run_binary(bin_dir, name, url):
    proc = subprocess.run(
        [str(bin_dir / name), url],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}; stderr: {proc.stderr}"
    return proc.stdout.splitlines()


def test_rust_producer_then_python_consumer_and_back(bin_dir, master):
    """The Rust and Python examples share one master and understand each other."""
    assert run_binary(bin_dir, "producer", master) == PUSH_LINES
    assert run_script("consumer.py", master) == POP_LINES
    assert run_script("producer.py", master) == PUSH_LINES
    assert run_binary(bin_dir, "consumer", master) == POP_LINES
    assert run_binary(bin_dir, "consumer", master) == []


# --- rpcServices names -------------------------------------------------------------------------


def test_underscore_names(master):
    p = proxy(master)
    assert p.ping() is True
    assert p.stack_push("u", "a") == 1
    assert p.stack_push("u", "b") == 2
    assert p.stack_getSize("u") == 2
    assert p.stack_pop("u") == "b"
    assert p.stack_pop("u") == "a"
    with pytest.raises(xmlrpc.client.Fault) as e:
        p.stack_pop("u")
    assert e.value.faultCode == 1
    assert e.value.faultString.startswith("StackIndexError")
    assert p.storage_setParameter("s", "k", 42) is True
    assert p.storage_getParameter("s", "k") == 42
    assert p.storage.getParameter("s", "k") == 42
    assert p.provider_login("worker-1") is True
    assert p.provider_hasClient("worker-1") is True
    assert p.provider.getAllClientNames() == ["worker-1"]


# --- fault mapping ----------------------------------------------------------------------------


def test_fault_names_map_to_exception_classes(master):
    m = Master(master)
    assert m.ping() is True
    with pytest.raises(StackNotFoundError) as e:
        m.stack.pop("nope")
    assert (e.value.name, e.value.fault_code) == ("StackNotFoundError", 1)
    assert "nope" in e.value.message
    m.stack.create("empty")
    with pytest.raises(StackIndexError) as e:
        m.stack.pop("empty")
    assert isinstance(e.value, IndexError)
    with pytest.raises(StorageNotFoundError):
        m.storage.getParameter("nostore", "k")
    m.storage.create("st")
    with pytest.raises(ParameterNotFoundError):
        m.storage.getParameter("st", "k")
    with pytest.raises(ClientNotFoundError):
        m.provider.logout("ghost")
    with pytest.raises(RemoteValueError):
        m.stack.popMany("empty", -1)
    m.storage.setParameter("st", "text", "x")
    with pytest.raises(RemoteTypeError):
        m.storage.increment("st", "text")
    # Faults without a known name: the generic RemoteError, not a subclass.
    with pytest.raises(RemoteError) as e:
        m.stack.noSuchMethod("x")
    assert type(e.value) is RemoteError
    assert e.value.fault_code != 1


def test_fault_mapping_offline():
    err = rc.error_from_fault(xmlrpc.client.Fault(1, 'StackIndexError: pop from empty stack "in"'))
    assert type(err) is StackIndexError
    assert (err.name, err.message) == ("StackIndexError", 'pop from empty stack "in"')
    for name, cls in [
        ("StackNotFoundError", StackNotFoundError),
        ("StorageNotFoundError", StorageNotFoundError),
        ("ParameterNotFoundError", ParameterNotFoundError),
        ("ClientNotFoundError", ClientNotFoundError),
        ("ItemTooLargeError", ItemTooLargeError),
    ]:
        assert type(rc.error_from_fault(xmlrpc.client.Fault(1, f"{name}: x"))) is cls
    unknown = rc.error_from_fault(xmlrpc.client.Fault(1, "FrobnicationError: too frobbed"))
    assert type(unknown) is RemoteError and unknown.name == "FrobnicationError"
    nameless = rc.error_from_fault(xmlrpc.client.Fault(-32601, 'method "x" is not supported'))
    assert type(nameless) is RemoteError and nameless.name is None


def test_item_too_large(bin_dir, tmp_path):
    with running_master(bin_dir, tmp_path / "data", "--max-item-bytes", "64") as url:
        m = Master(url)
        assert m.stack.push("s", "small") == 1
        with pytest.raises(ItemTooLargeError):
            m.stack.push("s", "x" * 1000)
        assert m.stack.getSize("s") == 1


# --- every method once ------------------------------------------------------------------------


def test_stack_methods(master):
    s = Master(master).stack
    assert s.getAllNames() == []
    assert s.hasStack("a") is False
    assert s.create("a") is True
    assert s.create("a") is False
    assert s.hasStack("a") is True
    assert s.isEmpty("a") is True
    assert s.push("a", 1) == 1
    assert s.pushMany("a", [2, "three", {"four": 4}]) == 4
    assert s.getSize("a") == 4
    assert s.isEmpty("a") is False
    assert s.pop("a") == {"four": 4}
    assert s.popMany("a", 2) == ["three", 2]
    assert s.popMany("a", 5) == [1]
    assert s.popMany("a", 5) == []
    # push and pushMany create missing stacks.
    assert s.pushMany("b", ["x", "y"]) == 2
    assert s.push("c", None) == 1
    assert s.getAllNames() == ["a", "b", "c"]
    assert s.pop("c") is None
    assert s.truncate("b") == 2
    assert s.truncate("b") == 0
    assert s.getSize("b") == 0
    assert s.remove("b") is True
    assert s.hasStack("b") is False
    assert s.getAllNames() == ["a", "c"]
    for method, args in [("pop", ()), ("popMany", (1,)), ("getSize", ()), ("isEmpty", ()),
                         ("truncate", ()), ("remove", ())]:
        with pytest.raises(StackNotFoundError):
            getattr(s, method)("b", *args)

    # popWait: an item already there; one pushed while waiting; none (StackIndexError).
    s.push("a", "ready")
    assert s.popWait("a", 5) == "ready"
    pusher = threading.Timer(0.2, lambda: proxy(master).stack.push("w", "late"))
    pusher.start()
    try:
        assert s.popWait("w", 20) == "late"
    finally:
        pusher.cancel()
    with pytest.raises(StackIndexError):
        s.popWait("a", 0.2)
    with pytest.raises(StackIndexError):
        s.popWait("never", 0.1)


def test_stack_take_ack_release(master):
    s = Master(master).stack
    s.pushMany("jobs", ["j1", "j2", "j3"])
    t = s.take("jobs")
    assert set(t) == {"id", "item", "deadline"}
    assert t["item"] == "j3"
    assert isinstance(t["id"], str) and t["id"]
    assert isinstance(t["deadline"], xmlrpc.client.DateTime)
    assert s.getSize("jobs") == 2
    assert s.ack("jobs", t["id"]) is True
    assert s.ack("jobs", t["id"]) is False
    assert s.release("jobs", t["id"]) is False
    assert s.getSize("jobs") == 2

    short = s.take("jobs", 30)
    long = s.take("jobs", 3600, 0, "")
    assert (short["item"], long["item"]) == ("j2", "j1")
    assert short["id"] != long["id"]
    assert long["deadline"] > short["deadline"]
    assert s.isEmpty("jobs") is True
    assert s.release("jobs", short["id"]) is True
    assert s.release("jobs", short["id"]) is False
    assert s.pop("jobs") == "j2"
    assert s.ack("jobs", "no-such-lease") is False
    assert s.release("jobs", "no-such-lease") is False
    with pytest.raises(StackIndexError):
        s.take("jobs", 60, 0.1)
    with pytest.raises(StackIndexError):
        s.take("never", 60, 0)
    assert s.ack("jobs", long["id"]) is True


def test_storage_methods(master):
    st = Master(master).storage
    assert st.getAllNames() == []
    assert st.hasStorage("cfg") is False
    assert st.create("cfg") is True
    assert st.create("cfg") is False
    assert st.hasStorage("cfg") is True
    assert st.getAllParameters("cfg") == {}
    when = xmlrpc.client.DateTime("20060102T15:04:05")
    values = {"int": 7, "str": "ÿ text", "float": 2.5, "bool": False, "nil": None,
              "list": [1, "two"], "struct": {"a": {"b": []}}, "when": when,
              "bin": xmlrpc.client.Binary(b"\x00\xff")}
    for k, v in values.items():
        assert st.setParameter("cfg", k, v) is True
    got = st.getAllParameters("cfg")
    assert got == values
    assert isinstance(got["when"], xmlrpc.client.DateTime)
    assert st.getParameter("cfg", "struct") == {"a": {"b": []}}
    assert st.getParameter("cfg", "nil") is None
    assert st.hasParameter("cfg", "nil") is True
    assert st.setParameters("cfg", {"int": 8, "new": "n"}) is True
    assert st.getParameter("cfg", "int") == 8
    assert st.getParameter("cfg", "new") == "n"
    assert st.removeParameter("cfg", "new") is True
    assert st.removeParameter("cfg", "new") is False
    assert st.hasParameter("cfg", "new") is False

    # setParameter / setParameters create the storage.
    assert st.setParameter("auto", "k", 1) is True
    assert st.setParameters("auto2", {"k": 2}) is True
    assert st.getAllNames() == ["auto", "auto2", "cfg"]

    # compareAndSet: None expected matches unset only.
    assert st.compareAndSet("cas", "lock", None, "me") is True
    assert st.compareAndSet("cas", "lock", None, "you") is False
    assert st.compareAndSet("cas", "lock", "you", "you") is False
    assert st.getParameter("cas", "lock") == "me"
    assert st.compareAndSet("cas", "lock", "me", {"owner": "you"}) is True
    assert st.getParameter("cas", "lock") == {"owner": "you"}
    # setIfAbsent
    assert st.setIfAbsent("cas", "claim", "first") is True
    assert st.setIfAbsent("cas", "claim", "second") is False
    assert st.getParameter("cas", "claim") == "first"
    # increment: unset counts as 0, default delta 1.
    assert st.increment("cnt", "n") == 1
    assert st.increment("cnt", "n") == 2
    assert st.increment("cnt", "n", 10) == 12
    assert st.increment("cnt", "n", -20) == -8
    assert st.getParameter("cnt", "n") == -8

    assert st.remove("auto") is True
    assert st.hasStorage("auto") is False
    with pytest.raises(StorageNotFoundError):
        st.getAllParameters("auto")
    with pytest.raises(StorageNotFoundError):
        st.hasParameter("auto", "k")
    with pytest.raises(ParameterNotFoundError):
        st.getParameter("cfg", "missing")


def test_provider_methods(master):
    m = Master(master)
    pv = m.provider
    assert pv.getAllClientNames() == []
    assert pv.getAllClients() == {}
    assert pv.hasClient("bob") is False
    assert pv.login("bob", {"pid": 42, "role": "crawler"}) is True
    assert pv.login("alice") is True
    assert pv.getAllClientNames() == ["alice", "bob"]
    assert pv.hasClient("bob") is True

    clients = pv.getAllClients()
    assert set(clients) == {"alice", "bob"}
    bob = clients["bob"]
    assert set(bob) == {"name", "host", "loginTime", "lastVisit", "status", "info",
                        "pendingMessages", "subscriptions"}
    assert bob["subscriptions"] == 0
    assert bob["name"] == "bob"
    assert bob["host"] == "127.0.0.1"
    assert isinstance(bob["loginTime"], xmlrpc.client.DateTime)
    assert isinstance(bob["lastVisit"], xmlrpc.client.DateTime)
    assert bob["status"] is None
    assert bob["info"] == {"pid": 42, "role": "crawler"}
    assert bob["pendingMessages"] == 0
    assert clients["alice"]["info"] is None
    assert pv.getClient("bob") == bob

    assert pv.sendMessage("bob", "hello") is True
    assert pv.sendMessage("bob", {"cmd": "stop"}) is True
    assert pv.getClient("bob")["pendingMessages"] == 2
    assert pv.visit("bob", "working") == "hello"
    after = pv.getClient("bob")
    assert after["status"] == "working"
    assert after["pendingMessages"] == 1
    assert after["lastVisit"] >= bob["lastVisit"]
    assert after["loginTime"] == bob["loginTime"]
    assert pv.visit("bob") == {"cmd": "stop"}
    assert pv.visit("bob") is None
    assert pv.broadcast("all") == 2
    assert pv.visit("alice", "idle") == "all"
    assert pv.visit("alice") is None
    with pytest.raises(ClientNotFoundError):
        pv.sendMessage("ghost", "x")
    with pytest.raises(ClientNotFoundError):
        pv.visit("ghost")
    with pytest.raises(ClientNotFoundError):
        pv.getClient("ghost")
    assert pv.cleanUp() == 0  # the default session timeout is 600 s

    # Ending a session puts the items it took back; others' leases stay.
    m.stack.pushMany("work", ["w1", "w2", "w3"])
    mine = m.stack.take("work", 60, 0, "bob")
    other = m.stack.take("work", 60, 0, "alice")
    assert (mine["item"], other["item"]) == ("w3", "w2")
    assert pv.logout("bob") is True
    assert pv.hasClient("bob") is False
    assert pv.getAllClientNames() == ["alice"]
    assert m.stack.getSize("work") == 2
    assert m.stack.pop("work") == "w3"
    assert m.stack.ack("work", mine["id"]) is False
    assert m.stack.ack("work", other["id"]) is True
    with pytest.raises(ClientNotFoundError):
        pv.logout("bob")


def test_cleanup_ends_idle_sessions(bin_dir, tmp_path):
    with running_master(bin_dir, tmp_path / "data", "--session-timeout", "0.5") as url:
        m = Master(url)
        m.provider.login("idle")
        m.provider.login("busy")
        m.stack.pushMany("q", ["a", "b"])
        taken = m.stack.take("q", 3600, 0, "idle")
        assert taken["item"] == "b"
        deadline = time.monotonic() + 20  # safety net
        while True:
            assert m.provider.visit("busy") is None
            ended = m.provider.cleanUp()
            if ended or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert ended == 1
        assert m.provider.getAllClientNames() == ["busy"]
        assert m.stack.popMany("q", 5) == ["b", "a"]
        assert m.provider.cleanUp() == 0


# --- persistence ------------------------------------------------------------------------------


@pytest.mark.parametrize("durability", ["strict", "relaxed"])
def test_persistence_across_restart(bin_dir, tmp_path, durability):
    data = tmp_path / "data"
    with running_master(bin_dir, data, "--durability", durability) as url:
        m = Master(url)
        for i in range(5):
            m.stack.push("in", i)
        m.stack.pushMany("in", ["five", {"six": [6]}])
        m.stack.create("empty")
        m.storage.setParameters("cfg", {"a": 1, "b": "two"})
        m.storage.increment("cfg", "n", 3)
    with running_master(bin_dir, data, "--durability", durability) as url:
        m = Master(url)
        assert m.stack.getAllNames() == ["empty", "in"]
        assert m.stack.getSize("in") == 7
        assert m.stack.popMany("in", 10) == [{"six": [6]}, "five", 4, 3, 2, 1, 0]
        assert m.stack.isEmpty("empty") is True
        assert m.storage.getAllParameters("cfg") == {"a": 1, "b": "two", "n": 3}
    # ... and the pops persisted too.
    with running_master(bin_dir, data) as url:
        assert Master(url).stack.getSize("in") == 0


def test_memory_backend_forgets(bin_dir, tmp_path):
    with running_master(bin_dir, tmp_path / "data", "--backend", "memory") as url:
        assert Master(url).stack.push("in", 1) == 1
    with running_master(bin_dir, tmp_path / "data", "--backend", "memory") as url:
        assert Master(url).stack.hasStack("in") is False


def test_signal_right_after_startup_stops_cleanly(bin_dir, tmp_path):
    """Once the URL is printed, SIGTERM/SIGINT must mean a clean stop (exit 0), not death by
    signal: supervisors and scripts may send it as soon as they have read the line."""
    for attempt in range(10):  # the race this guards against is not lost every time
        sig = (signal.SIGTERM, signal.SIGINT)[attempt % 2]
        m = MasterProcess(bin_dir, tmp_path / f"data{attempt}")
        m.proc.send_signal(sig)
        try:
            code = m.proc.wait(timeout=STOP_TIMEOUT)
        finally:
            m.kill()
        assert code == 0, f"attempt {attempt}, {sig.name}: exit {code}; stderr: {m.stderr()}"


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_call(master, run_rpcs):
    assert run_script("producer.py", master) == PUSH_LINES
    proc = run_rpcs("call", master, "stack.getSize", "in")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "10\n"
    proc = run_rpcs("call", master, "stack.pop", "in")
    assert (proc.returncode, proc.stdout) == (0, "9\n")
    proc = run_rpcs("call", master, "stack_getSize", "in")
    assert (proc.returncode, proc.stdout) == (0, "9\n")
    proc = run_rpcs("call", master, "stack.getSize", "nope")
    assert proc.returncode == 1
    assert proc.stderr.startswith("fault 1:")
    assert "StackNotFoundError" in proc.stderr
