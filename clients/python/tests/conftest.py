"""Fixtures: real ``rpcs master`` processes on 127.0.0.1:0.

The binary comes from ``$RPCS_BIN_DIR/rpcs`` (default: the repository's ``target/debug``).
``client`` is parametrized over both transports, so every test that takes it runs on XML-RPC
and on JSON-RPC.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from rpcservices import client as rpc_client

REPO = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT = 20.0  # a safety net; nothing asserts on time
TRANSPORTS = {"xmlrpc": rpc_client.XmlRpcClient, "jsonrpc": rpc_client.JsonRpcClient}


@pytest.fixture(scope="session")
def rpcs_bin() -> Path:
    path = Path(os.environ.get("RPCS_BIN_DIR", REPO / "target" / "debug")).resolve() / "rpcs"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `cargo build --workspace --bins` first")
    return path


def _read_line(stream, timeout: float):
    q: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: q.put(stream.readline()), daemon=True).start()
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        return None


class MasterProcess:
    """``rpcs master --backend memory`` with extra flags; ``urls`` as it announced them."""

    def __init__(self, rpcs_bin: Path, log_path: Path, *extra, listeners: int = 1) -> None:
        env = dict(os.environ)
        env.pop("RPCS_TOKEN", None)
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(rpcs_bin), "master", "--backend", "memory", "--listen", "127.0.0.1:0",
                 *map(str, extra)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        self.urls = []
        for _ in range(listeners):
            line = _read_line(self.proc.stdout, STARTUP_TIMEOUT)
            m = re.fullmatch(r"listening on (\S+)\n", line or "")
            if not m:
                self.stop()
                pytest.fail(f"the master did not announce a listener (got {line!r}): "
                            f"{log_path.read_text(errors='replace')}")
            self.urls.append(m.group(1))
        self.url = self.urls[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture(scope="session")
def start_master(rpcs_bin, tmp_path_factory):
    """``start_master(*flags, listeners=1)``: a master stopped at the end of the session."""
    started = []

    def start(*extra, listeners: int = 1) -> MasterProcess:
        log = tmp_path_factory.mktemp("master") / "stderr.log"
        m = MasterProcess(rpcs_bin, log, *extra, listeners=listeners)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


@pytest.fixture(scope="session")
def master_url(start_master) -> str:
    """One master shared by the session (tests use names of their own)."""
    return start_master().url


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request):
    """The client class of one transport (both, by parametrization)."""
    return TRANSPORTS[request.param]


@pytest.fixture
def client(transport, master_url):
    c = transport(master_url, timeout=30)
    yield c
    c.close()


@pytest.fixture
def name() -> str:
    """A stack, storage or client name no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


def token_new(rpcs_bin: Path, name: str, access: str, prefix=None):
    """``rpcs token new``: (the [[token]] entry, the secret)."""
    argv = [str(rpcs_bin), "token", "new", "--name", name, "--access", access]
    if prefix:
        argv += ["--prefix", prefix]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout, re.search(r"keep it\): (\S+)$", r.stderr.strip()).group(1)


class AuthMaster:
    """A master with ``--auth``: tokens ``writer`` (write), ``reader`` (read), ``ops``
    (admin) and ``team`` (write, names under ``team/``); ``secrets`` by name."""

    def __init__(self, proc: MasterProcess, secrets: dict) -> None:
        self.proc, self.secrets, self.url = proc, secrets, proc.url
        self.hostport = proc.url.split("//", 1)[1].rstrip("/")

    def url_with(self, name: str, secret=None) -> str:
        return f"http://{name}:{secret or self.secrets[name]}@{self.hostport}/"

    def client(self, name: str, transport=rpc_client.XmlRpcClient):
        return transport(self.url, token=self.secrets[name], timeout=30)


@pytest.fixture(scope="session")
def auth_master(rpcs_bin, start_master, tmp_path_factory) -> AuthMaster:
    d = tmp_path_factory.mktemp("auth")
    entries, secrets = [], {}
    for token, access, prefix in [("writer", "write", None), ("reader", "read", None),
                                  ("ops", "admin", None), ("team", "write", "team/")]:
        entry, secrets[token] = token_new(rpcs_bin, token, access, prefix)
        entries.append(entry)
    (d / "tokens.toml").write_text("".join(entries))
    return AuthMaster(start_master("--auth", d / "tokens.toml"), secrets)
