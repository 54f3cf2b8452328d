"""The stack stub and Stack handles, on both transports."""

from __future__ import annotations

import datetime
import threading

import pytest

from rpcservices import Lease, Stack, StackIndexError, StackNotFoundError, services


def test_create_stack_returns_a_handle_and_keeps_an_existing_stack(client, name):
    s = client.stack.createStack(name)
    assert isinstance(s, Stack) and s.name == name
    assert s.push("kept") == 1
    again = client.stack.createStack(name)
    assert again == s
    assert again.getSize() == 1


def test_get_has_remove_and_list_stacks(client, name):
    assert client.stack.hasStack(name) is False
    with pytest.raises(StackNotFoundError) as e:
        client.stack.getStack(name)
    assert e.value.name == "StackNotFoundError" and name in e.value.message
    client.stack.createStack(name)
    assert client.stack.hasStack(name) is True
    assert client.stack.getStack(name).name == name
    assert name in client.stack.getAllStackNames()
    stacks = client.stack.getAllStacks()
    assert all(isinstance(s, Stack) for s in stacks)
    assert [s.name for s in stacks] == client.stack.getAllStackNames()
    assert client.stack.removeStack(name) is True
    assert client.stack.hasStack(name) is False


def test_push_pop_size_empty_truncate(client, name):
    s = client.stack.createStack(name)
    assert s.isEmpty() is True
    assert [s.push(i) for i in range(3)] == [1, 2, 3]
    assert s.getSize() == 3 and s.isEmpty() is False
    assert s.pop() == 2
    assert s.truncate() == 2
    assert s.getSize() == 0
    with pytest.raises(StackIndexError) as e:
        s.pop()
    assert isinstance(e.value, IndexError)
    assert e.value.faultString == f'StackIndexError: pop from empty stack "{name}"'


def test_the_seed_exception_path(client, name):
    s = client.stack.createStack(name)
    with pytest.raises(services.stack.StackIndexError):
        s.pop()
    assert services.stack.StackNotFoundError is StackNotFoundError


def test_methods_of_a_removed_stack_fault_not_found(client, name):
    s = client.stack.createStack(name)
    assert s.remove() is True
    for call in (s.pop, s.getSize, s.isEmpty, s.truncate, s.getLeaseCount, s.getStats):
        with pytest.raises(StackNotFoundError):
            call()


def test_push_many_and_pop_many(client, name):
    s = client.stack.createStack(name)
    assert s.pushMany(["a", "b", "c", "d"]) == 4
    assert s.popMany(3) == ["d", "c", "b"]
    assert s.popMany(10) == ["a"]
    assert s.popMany(10) == []


def test_push_new_and_mark_seen(client, name):
    s = client.stack.createStack(name)
    assert s.pushNew(["u1", "u2", "u1"]) == [True, True, False]
    assert s.markSeen(["u2", "u3"]) == [False, True]
    assert s.pushNew(["x", "y"], keys=["u3", "u4"]) == [False, True]
    assert s.popMany(10) == ["y", "u2", "u1"]


def test_pop_wait_returns_an_item_already_there(client, name):
    s = client.stack.createStack(name)
    s.push("ready")
    assert s.popWait(5) == "ready"


def test_pop_wait_faults_when_nothing_comes(client, name):
    s = client.stack.createStack(name)
    with pytest.raises(StackIndexError):
        s.popWait(0.2)


def test_pop_wait_is_woken_by_a_push_from_another_client(client, transport, master_url, name):
    s = client.stack.createStack(name)
    got = []
    waiter = threading.Thread(target=lambda: got.append(s.popWait(30)))
    waiter.start()
    other = transport(master_url, timeout=30).stack.createStack(name)
    # Push until the waiter has its item: pushes made before it blocked stay on the stack.
    while waiter.is_alive():
        other.push("wake")
        waiter.join(0.05)
    assert got == ["wake"]


def test_take_ack_release_extend(client, name):
    s = client.stack.createStack(name)
    s.pushMany(["j1", "j2"])
    lease = s.take(lease=30)
    assert isinstance(lease, Lease) and lease.item == "j2" and lease.stack == s
    assert isinstance(lease.id, str) and lease.id
    assert isinstance(lease.deadline, datetime.datetime)
    assert s.getSize() == 1 and s.getLeaseCount() == 1
    assert lease.extend(60) is True
    assert lease.ack() is True
    assert lease.ack() is False
    assert s.getLeaseCount() == 0

    second = s.take()
    assert second.item == "j1" and s.getSize() == 0
    assert s.release(second) is True
    assert s.getSize() == 1 and s.pop() == "j1"
    assert s.release(second.id) is False
    # In: two pushed, one released back; out: two taken, one popped.
    assert s.getStats() == {"size": 0, "leased": 0, "itemsIn": 3, "itemsOut": 3}
    assert s.extend(second.id) is False
    assert s.ack(second.id) is False


def test_take_on_an_empty_stack_faults_after_its_timeout(client, name):
    s = client.stack.createStack(name)
    with pytest.raises(StackIndexError):
        s.take(timeout=0.2)


def test_lease_release_puts_the_item_back_on_top(client, name):
    s = client.stack.createStack(name)
    s.pushMany(["below", "top"])
    lease = s.take()
    s.push("newer")
    assert lease.release() is True
    assert s.pop() == "top"


def test_leases_of_a_client_go_back_when_it_logs_out(client, name):
    s = client.stack.createStack(name)
    s.push("job")
    worker = client.provider.login(f"{name}-worker")
    lease = s.take(lease=600, client=worker)
    assert lease.item == "job" and s.getSize() == 0
    assert worker.logout() is True
    assert s.getLeaseCount() == 0
    assert s.pop() == "job"
