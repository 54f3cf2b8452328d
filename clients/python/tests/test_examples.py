"""The stack example as the original rpcServices documentation has it, and examples/python/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "python"
SEED_URL = "http://localhost:8000"
PUSH_LINES = [f"push item {i}" for i in range(10)]
POP_LINES = [f"pop item {i}" for i in reversed(range(10))]

# The original programs (print as a function, as Python 3 has it).
ORIGINAL = {
    "seed_producer.py": '''from rpcServices import client

myClient = client.XmlRpcClient("http://localhost:8000")
inStack = myClient.stack.createStack("in")
for item in range(10):
    inStack.push(item)
    print("push item %s" % item)
''',
    "seed_consumer.py": '''from rpcServices import client, services

myClient = client.XmlRpcClient("http://localhost:8000")
inStack = myClient.stack.createStack("in")
while True:
    try:
        item = inStack.pop()
    except services.stack.StackIndexError:
        break
    print("pop item %s" % item)
''',
}


def run(argv):
    r = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.mark.parametrize("script", sorted(ORIGINAL))
def test_the_seed_scripts_differ_from_the_original_only_in_the_import_line(script):
    ours = (EXAMPLES / script).read_text().splitlines()
    original = ORIGINAL[script].splitlines()
    diff = [(a, b) for a, b in zip(ours, original) if a != b]
    assert len(ours) == len(original)
    assert diff == [(original[0].replace("rpcServices", "rpcservices"), original[0])]


def seed_script(tmp_path: Path, script: str, url: str) -> Path:
    """The seed script pointed at the test's master instead of localhost:8000."""
    text = (EXAMPLES / script).read_text()
    assert text.count(SEED_URL) == 1
    path = tmp_path / script
    path.write_text(text.replace(SEED_URL, url))
    return path


def test_seed_producer_then_seed_consumer(start_master, tmp_path):
    url = start_master().url
    assert run([seed_script(tmp_path, "seed_producer.py", url)]) == PUSH_LINES
    assert run([seed_script(tmp_path, "seed_consumer.py", url)]) == POP_LINES
    assert run([seed_script(tmp_path, "seed_consumer.py", url)]) == []


def test_producer_and_consumer_examples(start_master):
    url = start_master().url
    assert run([EXAMPLES / "producer.py", url]) == PUSH_LINES
    assert run([EXAMPLES / "producer.py", url]) == PUSH_LINES
    assert run([EXAMPLES / "consumer.py", url]) == POP_LINES + POP_LINES
    assert run([EXAMPLES / "consumer.py", url]) == []
