"""JSON-RPC over standard input and output, one document per line (`--stdio=jsonrpc`): calls,
notifications, batches, named parameters, faults, subscriptions pushed to the parent, a bad
line that does not end the session, and nothing but JSON on stdout."""

import json
import queue
import subprocess
import threading

import pytest

# Safety net only: no test asserts on timing.
TIMEOUT = 20


class StdioPeer:
    """A child process spoken to with one JSON document per line."""

    def __init__(self, argv, cwd):
        self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, doc):
        text = doc if isinstance(doc, (bytes, str)) else json.dumps(doc)
        data = text.encode() if isinstance(text, str) else text
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def receive(self):
        line = self.lines.get(timeout=TIMEOUT)
        assert line is not None, f"the child closed its output: {self.proc.stderr.read()!r}"
        assert line.endswith(b"\n")
        return json.loads(line)

    def call(self, method, params, id=1):
        self.send({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        return self.receive()

    def close(self):
        """Ends the input; returns what else came out before the child exited."""
        self.proc.stdin.close()
        rest = []
        while (line := self.lines.get(timeout=TIMEOUT)) is not None:
            rest.append(line)
        assert self.proc.wait(timeout=TIMEOUT) == 0
        return rest


@pytest.fixture
def master(bin_dir, tmp_path):
    peer = StdioPeer([bin_dir / "rpcs", "master", "--backend", "memory", "--stdio=jsonrpc"],
                     tmp_path)
    try:
        yield peer
    finally:
        if peer.proc.poll() is None:
            peer.proc.kill()
            peer.proc.wait(timeout=10)


def test_calls_faults_and_named_parameters(master):
    assert master.call("stack.push", ["jobs", "a"]) == {"jsonrpc": "2.0", "id": 1, "result": 1}
    answer = master.call("stack.push", {"name": "jobs", "item": {"url": "http://x/"}}, id="two")
    assert answer == {"jsonrpc": "2.0", "id": "two", "result": 2}
    answer = master.call("stack.pop", ["nothing-here"], id=3)
    assert answer["id"] == 3 and "StackNotFoundError" in answer["error"]["message"]
    answer = master.call("no.such.method", [], id=4)
    assert answer["error"]["code"] == -32601


def test_a_batch_is_answered_on_one_line_and_notifications_are_not(master):
    master.send({"jsonrpc": "2.0", "method": "stack.push", "params": ["quiet", "n"]})
    master.send([
        {"jsonrpc": "2.0", "id": 1, "method": "stack.getSize", "params": ["quiet"]},
        {"jsonrpc": "2.0", "method": "stack.push", "params": ["quiet", "m"]},
        {"jsonrpc": "2.0", "id": 2, "method": "stack.pop", "params": ["quiet"]},
    ])
    answers = master.receive()
    assert sorted(answers, key=lambda a: a["id"]) == [
        {"jsonrpc": "2.0", "id": 1, "result": 1},
        {"jsonrpc": "2.0", "id": 2, "result": "m"},
    ]


def test_a_bad_line_gets_an_error_and_the_session_goes_on(master):
    master.send(b"{this is not json")
    answer = master.receive()
    assert answer["id"] is None and answer["error"]["code"] == -32700
    master.send(b"")  # a blank line is skipped
    master.send(b'{"jsonrpc": "2.0", "id": 9, "method": "ping", "params": []}\r')
    assert master.receive() == {"jsonrpc": "2.0", "id": 9, "result": True}


def test_values_with_newlines_stay_on_one_line(master):
    text = "line one\nline two\r\n\u2028 and \x00"
    assert master.call("stack.push", ["text", text])["result"] == 1
    assert master.call("stack.pop", ["text"], id=2)["result"] == text


def test_a_subscription_pushes_messages_to_the_parent(master):
    assert master.call("provider.login", ["watcher"])["result"] is True
    sub = master.call("provider.subscribe", ["watcher"], id=2)
    assert isinstance(sub["result"], str)
    master.send({"jsonrpc": "2.0", "id": 3, "method": "provider.sendMessage",
                 "params": ["watcher", {"do": "pause"}]})
    # The answer and the message, in either order.
    got = [master.receive(), master.receive()]
    assert {"jsonrpc": "2.0", "id": 3, "result": True} in got
    note = next(m for m in got if m.get("method") == "provider.message")
    assert note["params"][0] == sub["result"] and note["params"][2] == {"do": "pause"}
    assert "id" not in note


def test_stdout_carries_only_the_answers(master):
    master.call("stack.push", ["only", "x"])
    assert master.close() == []
    # The logs went to stderr.
    assert b"stdin/stdout" in master.proc.stderr.read()


def test_rpcs_serve_speaks_it_too(bin_dir, tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text('[[method]]\nname = "hello"\nprogram = "echo"\nargs = ["hello", "{who}"]\n'
                      'params = [{ name = "who" }]\n')
    check = subprocess.run([str(bin_dir / "rpcs"), "serve", "--check", str(config)],
                           capture_output=True, text=True, timeout=TIMEOUT)
    assert check.returncode == 0, check.stderr
    peer = StdioPeer([bin_dir / "rpcs", "serve", "--stdio=jsonrpc", config], tmp_path)
    try:
        answer = peer.call("hello", ["world; rm -rf /"])
        assert answer["result"]["exitCode"] == 0
        assert answer["result"]["stdout"] == "hello world; rm -rf /\n"
    finally:
        peer.close()
