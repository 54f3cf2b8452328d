"""The storage stub and Storage handles, on both transports."""

from __future__ import annotations

import pytest

from rpcservices import (
    ParameterNotFoundError,
    RemoteOverflowError,
    RemoteTypeError,
    Storage,
    StorageNotFoundError,
    services,
)


def test_create_get_has_remove_and_list_storages(client, name):
    assert client.storage.hasStorage(name) is False
    with pytest.raises(StorageNotFoundError):
        client.storage.getStorage(name)
    st = client.storage.createStorage(name)
    assert isinstance(st, Storage) and st.name == name
    assert client.storage.createStorage(name) == st
    assert client.storage.getStorage(name) == st
    assert client.storage.hasStorage(name) is True
    assert name in client.storage.getAllStorageNames()
    assert [s.name for s in client.storage.getAllStorages()] == \
        client.storage.getAllStorageNames()
    assert client.storage.removeStorage(name) is True
    assert client.storage.hasStorage(name) is False


def test_parameters(client, name):
    st = client.storage.createStorage(name)
    assert st.setParameter("b", 2) is True
    assert st.setParameters({"a": "x", "c": [1, {"d": None}]}) is True
    assert st.getParameter("b") == 2
    assert st.getAllParameters() == {"a": "x", "b": 2, "c": [1, {"d": None}]}
    assert list(st.getAllParameters()) == ["a", "b", "c"]
    assert st.getSize() == 3
    assert st.hasParameter("a") is True
    assert st.removeParameter("a") is True
    assert st.removeParameter("a") is False
    assert st.hasParameter("a") is False
    with pytest.raises(ParameterNotFoundError) as e:
        st.getParameter("a")
    assert isinstance(e.value, LookupError)
    assert services.storage.ParameterNotFoundError is ParameterNotFoundError


def test_methods_of_a_missing_storage_fault_not_found(client, name):
    st = client.storage.createStorage(name)
    assert st.remove() is True
    with pytest.raises(services.storage.StorageNotFoundError):
        st.getParameter("k")
    with pytest.raises(StorageNotFoundError):
        st.getAllParameters()
    with pytest.raises(StorageNotFoundError):
        st.getSize()


def test_compare_and_set(client, name):
    st = client.storage.createStorage(name)
    assert st.compareAndSet("v", None, 1) is True  # None matches unset
    assert st.compareAndSet("v", None, 2) is False
    assert st.compareAndSet("v", 1, 3) is True
    assert st.compareAndSet("v", 1, 4) is False
    assert st.getParameter("v") == 3


def test_set_if_absent(client, name):
    st = client.storage.createStorage(name)
    assert st.setIfAbsent("claim", "first") is True
    assert st.setIfAbsent("claim", "second") is False
    assert st.getParameter("claim") == "first"


def test_increment(client, name):
    st = client.storage.createStorage(name)
    assert st.increment("n") == 1
    assert st.increment("n", 10) == 11
    assert st.increment("n", -12) == -1
    st.setParameter("big", 2 ** 63 - 1)
    with pytest.raises(RemoteOverflowError):
        st.increment("big")
    st.setParameter("text", "x")
    with pytest.raises(RemoteTypeError):
        st.increment("text")


def test_reserve_slot(client, name):
    st = client.storage.createStorage(name)
    first = st.reserveSlot("host", 100)
    second = st.reserveSlot("host", 100)
    assert first < 50  # the first slot is now
    assert 50 < second <= 100  # the next is one interval after it
    assert isinstance(st.getParameter("host"), int)
