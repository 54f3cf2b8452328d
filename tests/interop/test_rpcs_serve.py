"""``rpcs serve``: programs as methods, with real Python peers on every protocol.

Hostile arguments reach the program as one argument each, or are refused (a program
prints its argv as JSON); a runaway program is killed at its timeout with the grandchild
it forked; output is capped; a method's concurrency is limited; streaming methods send
lines before the program exits (it waits for a file the test creates after the first
item). No test asserts on timing: deadlines only stop a broken build from hanging.
"""

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import xmlrpc.client

import jsonrpclib
import msgpack
import pytest
import websocket
import zerorpc

from conftest import ServerProcess
from hostile_helpers import MsgpackConn
from test_auth import new_token

DEADLINE = 20.0  # seconds: only a safety net


def wait_until(predicate, what, deadline=DEADLINE):
    end = time.monotonic() + deadline
    while not predicate():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.02)


def gone(pid):
    """Whether no process `pid` is left (a zombie counts as gone: it is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def script(path, text):
    path.write_text(text)
    path.chmod(0o755)
    return path


CONFIG = """
max_concurrent = 8
[defaults]
timeout = 20
kill_grace = 0.5

[[method]]
name = "argv"
doc = "Prints its arguments as JSON."
program = "./argv.py"
args = ["{a}", "--flag={b}", {{ if = "n", args = ["-n", "{{n}}"] }}, "--", "{{rest...}}"]
params = [
    {{ name = "a" }},
    {{ name = "b", default = "" }},
    {{ name = "n", type = "integer", optional = true }},
    {{ name = "rest", type = "list", default = [] }},
]

[[method]]
name = "exits"
doc = "Exits with the given status, saying so on stderr."
program = "sh"
args = ["-c", "echo \\"status $1\\" >&2; exit $1", "sh", "{{code}}"]
params = [{{ name = "code", type = "integer" }}]

[[method]]
name = "exits.strict"
doc = "As exits, but a non-zero status is a fault."
program = "sh"
args = ["-c", "echo \\"status $1\\" >&2; exit $1", "sh", "{{code}}"]
params = [{{ name = "code", type = "integer" }}]
fail_on_exit = true

[[method]]
name = "runaway"
doc = "Forks a grandchild that ignores SIGTERM, then never ends."
program = "./runaway.sh"
args = ["{{pidfile}}"]
params = [{{ name = "pidfile", allow_dash = false }}]
timeout = 2

[[method]]
name = "leaver"
doc = "Leaves a grandchild behind holding its output, and exits at once."
program = "./leaver.sh"
args = ["{{pidfile}}"]
params = [{{ name = "pidfile" }}]

[[method]]
name = "spew"
doc = "Writes n bytes to stdout."
program = "head"
args = ["-c", "{{n}}", "/dev/zero"]
params = [{{ name = "n", type = "integer" }}]
max_output = 1000

[[method]]
name = "spew.strict"
doc = "Writes n bytes to stdout; too many kill it."
program = "head"
args = ["-c", "{{n}}", "/dev/zero"]
params = [{{ name = "n", type = "integer" }}]
max_output = 1000
output_overflow = "kill"

[[method]]
name = "binary"
doc = "Writes a byte that is not UTF-8."
program = "printf"
args = ["\\\\377"]

[[method]]
name = "cat"
doc = "Answers its standard input."
program = "cat"
params = [{{ name = "input", type = "bytes" }}]
stdin = "input"

[[method]]
name = "hold"
doc = "Says it started, then waits for a file to exist."
program = "./hold.sh"
args = ["{{started}}", "{{release}}"]
params = [{{ name = "started" }}, {{ name = "release" }}]
max_concurrent = 1

[[method]]
name = "lines"
doc = "Prints a line, waits for a file, prints another, exits with a status."
program = "./lines.sh"
args = ["{{release}}", "{{code}}"]
params = [{{ name = "release" }}, {{ name = "code", type = "integer", default = 0 }}]
stream = true
"""


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve-programs")
    script(d / "argv.py", f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    script(d / "runaway.sh", """#!/bin/sh
sh -c 'trap "" TERM; echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; while :; do sleep 0.1; done' sh "$1" &
while :; do sleep 0.1; done
""")
    script(d / "leaver.sh", """#!/bin/sh
sh -c 'echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 1000' sh "$1" &
while [ ! -e "$1" ]; do sleep 0.02; done
echo done
""")
    script(d / "hold.sh", """#!/bin/sh
touch "$1"
while [ ! -e "$2" ]; do sleep 0.02; done
echo released
""")
    script(d / "lines.sh", """#!/bin/sh
echo first
while [ ! -e "$1" ]; do sleep 0.02; done
echo second
exit "$2"
""")
    (d / "serve.toml").write_text(CONFIG.replace("{{", "{").replace("}}", "}"))
    return d


class Served:
    """A running ``rpcs serve`` and the URLs of its listeners."""

    def __init__(self, proc, config, sock, ca):
        self.proc, self.config, self.unix, self.ca = proc, config, str(sock), ca
        (self.http, self.msgpack, self.https, self.msgpack_tls, self.unix_url,
         self.zerorpc) = proc.urls
        self.port = int(self.http.rsplit(":", 1)[1].strip("/"))
        self.msgpack_addr = ("127.0.0.1", int(self.msgpack.rsplit(":", 1)[1]))
        self.tls_addr = ("127.0.0.1", int(self.msgpack_tls.rsplit(":", 1)[1]))
        self.ws = f"ws://127.0.0.1:{self.port}/"
        self.jsonrpc = f"http://127.0.0.1:{self.port}/"

    def xml(self):
        return xmlrpc.client.ServerProxy(self.http, allow_none=True)

    def json(self):
        return jsonrpclib.ServerProxy(self.jsonrpc)


@pytest.fixture(scope="module")
def served(bin_dir, programs, tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    certs = d / "certs"
    r = subprocess.run([bin_dir / "rpcs", "cert", "new", "--dir", certs], capture_output=True,
                       text=True, timeout=DEADLINE)
    assert r.returncode == 0, r.stderr
    sock = d / "serve.sock"
    proc = ServerProcess(
        [bin_dir / "rpcs", "serve", programs / "serve.toml", "--listen", "127.0.0.1:0",
         "--msgpack", "127.0.0.1:0", "--https", "127.0.0.1:0", "--msgpack-tls", "127.0.0.1:0",
         "--tls-cert", certs / "server.pem", "--tls-key", certs / "server-key.pem",
         "--msgpack-unix", sock, "--zerorpc", "tcp://127.0.0.1:0"],
        6, d / "stderr.log")
    try:
        yield Served(proc, programs / "serve.toml", sock, certs / "ca.pem")
    finally:
        proc.stop()


HOSTILE = [
    "; rm -rf /tmp/rpcs-serve-never",
    "$(touch {marker})",
    "`touch {marker}`",
    "| touch {marker}",
    "a\nb && touch {marker}",
    "it's \"quoted\" * ? ~ > {marker}",
    "",
    "ÿ unicode ☃",
]


def hostile(marker):
    return [h.format(marker=marker) for h in HOSTILE]


# --- arguments ---------------------------------------------------------------------------------


def test_shell_metacharacters_reach_the_program_as_one_argument_each(served, tmp_path):
    marker = tmp_path / "marker"
    s = served.xml()
    for value in hostile(marker):
        result = s.argv(value, value, None, [value, value])
        assert result["exitCode"] == 0, result
        assert json.loads(result["stdout"]) == [value, f"--flag={value}", "--", value, value]
    assert not marker.exists(), "a value went through a shell"


def test_option_injection_is_refused_unless_after_a_double_dash(served):
    s = served.json()
    for value in ["--output=/etc/passwd", "-rf", "-"]:
        with pytest.raises(jsonrpclib.ProtocolError) as e:
            s.argv(value)
        code, message = e.value.args[0]
        assert code == -32602 and message.startswith('InvalidArgument: parameter "a" may not'), \
            message
    # A negative number would be an option too (`head -5`); inside --flag=... it is not.
    with pytest.raises(jsonrpclib.ProtocolError):
        s.argv("x", "", -5)
    out = json.loads(s.argv("x", "-y", 7, ["-rf", "--output=/etc/passwd"])["stdout"])
    assert out == ["x", "--flag=-y", "-n", "7", "--", "-rf", "--output=/etc/passwd"]


def test_nul_and_wrong_types_are_refused(served):
    with MsgpackConn(served.msgpack_addr) as m:
        err, _ = m.call("argv", "a\0b")
        assert err[0] == -32602 and "NUL" in err[1], err
        err, _ = m.call("argv", "a", "", "5; ls")
        assert err[0] == -32602 and "must be an integer" in err[1], err
        err, _ = m.call("argv", "a", "", None, ["ok", ["nested"]])
        assert err[0] == -32602 and "item 1 must be a string" in err[1], err
        err, _ = m.call("argv")
        assert err[0] == -32602 and "takes 1 to 4 parameters, got 0" in err[1], err


def test_named_parameters_over_json_rpc(served):
    out = served.json().argv(rest=["r"], a="first", n=3)
    assert json.loads(out["stdout"]) == ["first", "--flag=", "-n", "3", "--", "r"]
    with pytest.raises(jsonrpclib.ProtocolError) as e:
        served.json().argv(a="x", colour="red")
    assert "unknown parameter" in str(e.value)


# --- results and faults ----------------------------------------------------------------------------


def test_a_non_zero_exit_is_a_result_or_a_named_fault(served):
    s = served.xml()
    result = s.exits(3)
    assert result["exitCode"] == 3 and result["stderr"] == "status 3\n", result
    assert result["truncated"] is False and "signal" not in result
    assert set(result) == {"exitCode", "stdout", "stderr", "truncated", "durationMs"}
    with pytest.raises(xmlrpc.client.Fault) as e:
        s.exits.strict(4)
    assert e.value.faultString.startswith("ProgramFailed: exits.strict exited with 4: status 4")
    assert s.exits.strict(0)["exitCode"] == 0


def test_output_is_capped_by_truncating_or_killing(served):
    s = served.xml()
    result = s.spew(100000)
    assert result["exitCode"] == 0 and result["truncated"] is True
    assert result["stdout"] == "\0" * 1000 or result["stdout"].data == b"\0" * 1000
    assert s.spew(10)["truncated"] is False
    with pytest.raises(xmlrpc.client.Fault) as e:
        s.spew.strict(100000)
    assert e.value.faultCode == -32000 and e.value.faultString.startswith("OutputTooLarge:")


def test_bytes_that_are_not_utf8_and_stdin(served):
    with MsgpackConn(served.msgpack_addr) as m:
        err, result = m.call("binary")
        assert err is None and result["stdout"] == b"\xff", (err, result)
        data = bytes(range(256)) * 100
        err, result = m.call("cat", data)
        assert err is None and result["stdout"] == data
    assert served.xml().cat("text\nlines\n")["stdout"] == "text\nlines\n"


def test_a_runaway_program_is_killed_at_its_timeout_with_its_grandchild(served, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    with pytest.raises(xmlrpc.client.Fault) as e:
        served.xml().runaway(str(pidfile))
    assert e.value.faultCode == -32000
    assert e.value.faultString.startswith("ProgramTimedOut: runaway ran longer"), e.value
    pid = int(pidfile.read_text())
    # It ignored SIGTERM, so only the SIGKILL after the grace ended it.
    wait_until(lambda: gone(pid), f"the grandchild {pid} to be gone")


def test_what_a_program_leaves_behind_ends_with_it(served, tmp_path):
    pidfile = tmp_path / "left.pid"
    # The grandchild holds stdout open: without ending it the call would last to the timeout.
    result = served.xml().leaver(str(pidfile))
    assert result["exitCode"] == 0 and result["stdout"] == "done\n", result
    pid = int(pidfile.read_text())
    wait_until(lambda: gone(pid), f"the grandchild {pid} to be gone")


def test_a_method_runs_at_most_max_concurrent_programs(served, tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    answers = []
    first = threading.Thread(target=lambda: answers.append(
        served.xml().hold(str(started), str(release))))
    first.start()
    try:
        wait_until(started.exists, "the first call's program to start")
        with pytest.raises(xmlrpc.client.Fault) as e:
            served.xml().hold(str(tmp_path / "other"), str(release))
        assert e.value.faultCode == -32000 and e.value.faultString.startswith("Busy: hold")
    finally:
        release.touch()
        first.join(DEADLINE)
    assert answers and answers[0]["stdout"] == "released\n"
    # The slot is free again.
    assert served.xml().hold(str(tmp_path / "s2"), str(release))["exitCode"] == 0


# --- every protocol ---------------------------------------------------------------------------------


def argv_of(result):
    return json.loads(result["stdout"])


def test_every_protocol_serves_the_methods(served, bin_dir):
    expected = ["v", "--flag=", "--"]
    assert argv_of(served.xml().argv("v")) == expected
    assert argv_of(served.json().argv("v")) == expected
    ws = websocket.create_connection(served.ws, timeout=DEADLINE)
    ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "argv", "params": ["v"]}))
    assert argv_of(json.loads(ws.recv())["result"]) == expected
    ws.close()
    for addr in (served.msgpack_addr, served.unix):
        with MsgpackConn(addr) as m:
            err, result = m.call("argv", "v")
            assert err is None and argv_of(result) == expected
    ctx = ssl.create_default_context(cafile=str(served.ca))
    https = xmlrpc.client.ServerProxy(served.https, context=ctx)
    assert argv_of(https.argv("v")) == expected
    raw = ctx.wrap_socket(socket.create_connection(served.tls_addr, timeout=DEADLINE),
                          server_hostname="localhost")
    with MsgpackConn(sock=raw) as m:
        err, result = m.call("argv", "v")
        assert err is None and argv_of(result) == expected
    client = zerorpc.Client(served.zerorpc, timeout=DEADLINE)
    try:
        assert argv_of(client.argv("v")) == expected
    finally:
        client.close()
    # stdio: one MessagePack-RPC session on the pipes.
    proc = subprocess.run(
        [bin_dir / "rpcs", "serve", "--stdio", served.config],
        input=msgpack.packb([0, 1, "argv", ["v"]]), capture_output=True, timeout=DEADLINE)
    reply = msgpack.unpackb(proc.stdout, raw=False)
    assert reply[:3] == [1, 1, None] and argv_of(reply[3]) == expected, (reply, proc.stderr)


def test_introspection_shows_the_configured_methods(served, run_rpcs):
    s = served.xml()
    assert s.system.methodHelp("argv") == "Prints its arguments as JSON."
    assert s.system.methodSignature("argv") == [
        ["struct", "string"], ["struct", "string", "string"],
        ["struct", "string", "string", "int"], ["struct", "string", "string", "int", "array"]]
    assert s.system.methodSignature("lines") == [["array", "string"], ["array", "string", "int"]]
    r = run_rpcs("methods", served.http)
    assert r.returncode == 0, r.stderr
    assert "argv(string, string, int, array) -> struct\n    Prints its arguments as JSON." \
        in r.stdout, r.stdout
    # The names, for named calls, in the OpenRPC document.
    doc = served.json().rpc.discover()
    argv = next(m for m in doc["methods"] if m["name"] == "argv")
    assert [p["name"] for p in argv["params"]] == ["a", "b", "n", "rest"]


def test_metrics_count_the_methods(served):
    served.xml().exits(0)
    with urllib.request.urlopen(f"http://127.0.0.1:{served.port}/metrics", timeout=DEADLINE) as r:
        text = r.read().decode()
    assert re.search(r'rpcs_calls_total\{method="exits",protocol="xmlrpc"\} [1-9]', text), text


# --- streaming --------------------------------------------------------------------------------------


def test_zerorpc_streams_lines_before_the_program_ends(served, tmp_path):
    release = tmp_path / "release"
    client = zerorpc.Client(served.zerorpc, timeout=DEADLINE)
    try:
        items = client.lines(str(release))
        assert next(items) == "first"
        release.touch()   # the program is still waiting for this
        assert list(items) == ["second"]
        (tmp_path / "r2").touch()
        with pytest.raises(zerorpc.RemoteError) as e:
            list(client.lines(str(tmp_path / "r2"), 3))
        assert e.value.name == "ProgramFailed" and "exited with 3" in e.value.msg
    finally:
        client.close()


def test_websocket_streams_lines_as_notifications_when_asked(served, tmp_path):
    release = tmp_path / "release"
    ws = websocket.create_connection(served.ws, timeout=DEADLINE)
    try:
        # Without asking, one array, as any client expects.
        (tmp_path / "ready").touch()
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "lines",
                            "params": [str(tmp_path / "ready")]}))
        assert json.loads(ws.recv()) == {"jsonrpc": "2.0", "id": 1, "result": ["first", "second"]}
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "rpc.streaming", "params": [True]}))
        assert json.loads(ws.recv())["result"] is True
        ws.send(json.dumps({"jsonrpc": "2.0", "id": "s", "method": "lines",
                            "params": {"release": str(release)}}))
        assert json.loads(ws.recv()) == {"jsonrpc": "2.0", "method": "rpc.item",
                                         "params": {"id": "s", "item": "first"}}
        release.touch()   # the program is still waiting for this
        assert json.loads(ws.recv())["params"] == {"id": "s", "item": "second"}
        assert json.loads(ws.recv()) == {"jsonrpc": "2.0", "id": "s", "result": 2}
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "lines",
                            "params": [str(release), 5]}))
        assert json.loads(ws.recv())["params"]["item"] == "first"
        assert json.loads(ws.recv())["params"]["item"] == "second"
        final = json.loads(ws.recv())
        assert final["id"] == 3 and final["error"]["message"].startswith("ProgramFailed:"), final
    finally:
        ws.close()


# --- start-up checks, protected mode, tokens --------------------------------------------------------


def test_config_mistakes_are_reported_at_start(bin_dir, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[method]]\nname = "m"\nprogram = "/nonexistent/program"\n')
    r = subprocess.run([bin_dir / "rpcs", "serve", bad], capture_output=True, text=True,
                       timeout=DEADLINE)
    assert r.returncode == 3 and "not an executable file" in r.stderr, r.stderr
    bad.write_text('[[method]]\nname = "m"\nprogram = "ls"\nargs = ["{x}"]\n')
    r = subprocess.run([bin_dir / "rpcs", "serve", bad], capture_output=True, text=True,
                       timeout=DEADLINE)
    assert r.returncode == 3 and 'unknown parameter "x"' in r.stderr, r.stderr


def test_listening_beyond_loopback_needs_auth(bin_dir, programs):
    r = subprocess.run([bin_dir / "rpcs", "serve", programs / "serve.toml", "--listen",
                        "0.0.0.0:0"], capture_output=True, text=True, timeout=DEADLINE)
    assert r.returncode == 3 and "refusing to serve" in r.stderr, r.stderr
    assert "--insecure-no-auth" in r.stderr


def test_tokens_are_required_with_auth(bin_dir, programs, tmp_path):
    entry, secret = new_token(bin_dir, "runner", "write")
    read_entry, read_secret = new_token(bin_dir, "viewer", "read")
    (tmp_path / "tokens.toml").write_text(entry + read_entry)
    proc = ServerProcess(
        [bin_dir / "rpcs", "serve", programs / "serve.toml", "--listen", "127.0.0.1:0",
         "--zerorpc", "tcp://127.0.0.1:0", "--auth", tmp_path / "tokens.toml"],
        2, tmp_path / "stderr.log")
    try:
        port = int(proc.urls[0].rsplit(":", 1)[1].strip("/"))
        with pytest.raises(xmlrpc.client.ProtocolError) as e:
            xmlrpc.client.ServerProxy(proc.urls[0]).exits(0)
        assert e.value.errcode == 401
        ok = xmlrpc.client.ServerProxy(f"http://runner:{secret}@127.0.0.1:{port}/")
        assert ok.exits(0)["exitCode"] == 0
        # Running a program needs write access unless the method says otherwise.
        viewer = xmlrpc.client.ServerProxy(f"http://viewer:{read_secret}@127.0.0.1:{port}/")
        with pytest.raises(xmlrpc.client.Fault) as e:
            viewer.exits(0)
        assert e.value.faultString.startswith("NOPERM")
        client = zerorpc.Client(proc.urls[1], timeout=DEADLINE)
        try:
            with pytest.raises(zerorpc.RemoteError) as e:
                client.exits(0)
            assert "NOAUTH" in str(e.value)
        finally:
            client.close()
    finally:
        proc.stop()


def test_the_server_runs_at_most_max_concurrent_programs_over_all_methods(
        bin_dir, programs, tmp_path):
    proc = ServerProcess(
        [bin_dir / "rpcs", "serve", programs / "serve.toml", "--listen", "127.0.0.1:0",
         "--max-concurrent", "1"],
        1, tmp_path / "stderr.log")
    started, release = tmp_path / "started", tmp_path / "release"
    answers = []
    try:
        s = xmlrpc.client.ServerProxy(proc.urls[0])
        first = threading.Thread(target=lambda: answers.append(
            xmlrpc.client.ServerProxy(proc.urls[0]).hold(str(started), str(release))))
        first.start()
        try:
            wait_until(started.exists, "the first call's program to start")
            with pytest.raises(xmlrpc.client.Fault) as e:
                s.exits(0)
            assert e.value.faultString.startswith("Busy: the server already runs max_concurrent = 1")
        finally:
            release.touch()
            first.join(DEADLINE)
        assert answers and answers[0]["exitCode"] == 0
        assert s.exits(0)["exitCode"] == 0
    finally:
        proc.stop()


def test_a_program_that_cannot_start_is_a_spawn_error(bin_dir, tmp_path):
    program = script(tmp_path / "vanishing.sh", "#!/bin/sh\necho hi\n")
    (tmp_path / "serve.toml").write_text(
        '[[method]]\nname = "vanishing"\nprogram = "./vanishing.sh"\n')
    proc = ServerProcess([bin_dir / "rpcs", "serve", tmp_path / "serve.toml", "--listen",
                          "127.0.0.1:0"], 1, tmp_path / "stderr.log")
    try:
        s = xmlrpc.client.ServerProxy(proc.urls[0])
        assert s.vanishing()["stdout"] == "hi\n"
        program.unlink()
        with pytest.raises(xmlrpc.client.Fault) as e:
            s.vanishing()
        assert e.value.faultString.startswith("SpawnError: vanishing could not start"), e.value
        assert str(tmp_path) not in e.value.faultString
    finally:
        proc.stop()
