"""Batch mode: calls queued, sent as one multicall (XML-RPC) or one batch (JSON-RPC)."""

from __future__ import annotations

from rpcservices import Lease, Stack, StackIndexError, StackNotFoundError, Storage
from rpcservices._transport import MAX_BATCH


class Counting:
    """Counts the requests a client's transport sends."""

    def __init__(self, client) -> None:
        self.requests = 0
        http = client._transport()
        post = http.post

        def counted(*args, **kwargs):
            self.requests += 1
            return post(*args, **kwargs)

        http.post = counted


def test_client_batch_sends_one_request_and_returns_results_in_order(client, name):
    sent = Counting(client)
    client.setBatchMode(True)
    assert client.isBatchMode() is True
    s = client.stack.createStack(name)
    assert isinstance(s, Stack)  # the handle at once
    assert s.push("a") is None and s.push("b") is None
    s.getSize()
    s.pop()
    client.ping()
    st = client.storage.createStorage(name)
    st.increment("n", 5)
    assert sent.requests == 0
    assert client.stack.hasStack(name) is None  # queued too
    results = client.execute()
    assert sent.requests == 1
    assert results == [s, 1, 2, 2, "b", True, st, 5, True]
    assert isinstance(results[6], Storage)
    assert client.execute() == []
    assert sent.requests == 1


def test_a_faulted_entry_is_returned_as_its_exception(client, name):
    client.setBatchMode(True)
    s = client.stack.createStack(name)
    s.pop()
    s.push(1)
    client.stack.getStack(f"{name}-missing")
    results = client.execute()
    assert results[0] == s
    assert isinstance(results[1], StackIndexError) and name in results[1].message
    assert results[2] == 1
    assert isinstance(results[3], StackNotFoundError)


def test_batch_mode_off_sends_at_once_and_keeps_the_queue(client, name):
    client.setBatchMode(True)
    s = client.stack.createStack(name)
    s.push("queued")
    client.setBatchMode(False)
    assert client.isBatchMode() is False
    assert s.push("direct") == 1  # createStack and the first push have not run yet
    assert client.execute() == [s, 2]
    assert s.popMany(5) == ["queued", "direct"]


def test_stub_batch_mode_queues_only_that_stub(client, name):
    sent = Counting(client)
    client.stack.setBatchMode(True)
    s = client.stack.createStack(name)
    s.pushMany([1, 2, 3])
    st = client.storage.createStorage(name)  # not batched: sent at once
    assert st.setParameter("k", "v") is True
    assert sent.requests == 2
    assert client.execute() == []  # the client's own queue is empty
    assert client.stack.execute() == [s, 3]
    assert sent.requests == 3
    client.stack.setBatchMode(False)
    assert s.getSize() == 3


def test_batch_of_leases_and_lists(client, name):
    s = client.stack.createStack(name)
    s.pushMany(["x", "y"])
    client.setBatchMode(True)
    s.take()
    client.stack.getAllStacks()
    s.getLeaseCount()
    lease, stacks, count = client.execute()
    assert isinstance(lease, Lease) and lease.item == "y"
    assert s in stacks
    assert count == 1
    client.setBatchMode(False)
    assert lease.ack() is True


def test_a_batch_larger_than_one_request_holds(client, name):
    s = client.stack.createStack(name)
    sent = Counting(client)
    client.setBatchMode(True)
    for i in range(MAX_BATCH + 5):
        s.push(i)
    results = client.execute()
    assert results == list(range(1, MAX_BATCH + 6))
    assert sent.requests == 2


def test_provider_calls_in_a_batch(client, name):
    client.setBatchMode(True)
    p = client.provider.login(name)
    client.provider.sendMessage(name, {"n": 1})
    p.visit()
    p.getAllOtherClientNames()
    p.logout()
    results = client.execute()
    assert results[:3] == [p, True, {"n": 1}]
    assert name not in results[3]
    assert results[4] is True
