"""Faults map to exception classes, by name (code 1) or by code; on both transports."""

from __future__ import annotations

import pytest

import rpcservices
from rpcservices import errors, services
from rpcservices.errors import error_from_fault


@pytest.mark.parametrize("fault_name, cls", sorted(errors.ERRORS.items()))
def test_each_fault_name_maps_to_its_class(fault_name, cls):
    err = error_from_fault(1, f"{fault_name}: detail")
    assert type(err) is cls
    assert (err.code, err.name, err.message, err.faultString) == \
        (1, fault_name, "detail", f"{fault_name}: detail")
    assert isinstance(err, rpcservices.RemoteError)


@pytest.mark.parametrize("code, cls", sorted(errors.CODES.items()))
def test_each_fault_code_maps_to_its_class(code, cls):
    assert type(error_from_fault(code, "WHATEVER: x")) is cls


def test_unknown_and_nameless_faults_are_plain_remote_errors():
    unknown = error_from_fault(1, "FrobnicationError: too frobbed")
    assert type(unknown) is rpcservices.RemoteError and unknown.name == "FrobnicationError"
    nameless = error_from_fault(-32601, 'method "x" is not supported')
    assert type(nameless) is rpcservices.RemoteError and nameless.name is None
    assert nameless.message == 'method "x" is not supported'


def test_the_exceptions_are_at_the_top_level_and_in_the_service_modules():
    for cls_name in errors.__all__:
        assert getattr(rpcservices, cls_name) is getattr(errors, cls_name)
    assert services.stack.StackIndexError is rpcservices.StackIndexError
    assert services.stack.StackNotFoundError is rpcservices.StackNotFoundError
    assert services.storage.StorageNotFoundError is rpcservices.StorageNotFoundError
    assert services.storage.ParameterNotFoundError is rpcservices.ParameterNotFoundError
    assert services.provider.ClientNotFoundError is rpcservices.ClientNotFoundError
    assert issubclass(rpcservices.StackIndexError, IndexError)
    assert issubclass(rpcservices.RemoteValueError, ValueError)


def test_master_faults_raise_their_classes(client, name):
    s = client.stack.createStack(name)
    with pytest.raises(rpcservices.RemoteValueError):
        s.popMany(-1)
    with pytest.raises(rpcservices.RemoteError) as e:
        client.call("stack.noSuchMethod", name)
    assert type(e.value) is rpcservices.RemoteError and e.value.code == -32601
    with pytest.raises(rpcservices.RemoteError) as e:
        client.call("stack.push")  # parameters missing
    assert e.value.code == -32602


def test_item_too_large(start_master, transport, name):
    m = start_master("--max-item-bytes", "64")
    s = transport(m.url, timeout=30).stack.createStack(name)
    assert s.push("small") == 1
    with pytest.raises(rpcservices.ItemTooLargeError):
        s.push("x" * 1000)
    assert s.getSize() == 1


def test_an_http_error_status_is_a_transport_error(master_url, transport):
    c = transport(master_url.rstrip("/") + "/no-such-path", timeout=30)
    with pytest.raises(rpcservices.TransportError) as e:
        c.ping()
    assert e.value.status == 404
