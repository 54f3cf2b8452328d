"""Values through a stack: what each transport carries and gives back."""

from __future__ import annotations

import datetime

import pytest

from rpcservices import client as rpc_client

COMMON = [None, True, False, 0, -1, 2 ** 31, 2 ** 63 - 1, -(2 ** 63), 1.5, "", "unicode ✓ 𝄞",
          [1, "a", [None]], {"b": 1, "a": {"nested": [True]}}]


@pytest.mark.parametrize("value", COMMON, ids=repr)
def test_a_value_comes_back_as_it_went(client, name, value):
    s = client.stack.createStack(name)
    s.push(value)
    assert s.pop() == value


def test_struct_member_order_is_kept(client, name):
    st = client.storage.createStorage(name)
    st.setParameter("v", {"z": 1, "a": 2, "m": 3})
    assert list(st.getParameter("v")) == ["z", "a", "m"]


def test_bytes_and_datetimes_over_xmlrpc(master_url, name):
    s = rpc_client.XmlRpcClient(master_url).stack.createStack(name)
    when = datetime.datetime(2026, 11, 21, 5, 17)
    s.pushMany([b"\x00\xffraw", when])
    assert s.pop() == when
    assert s.pop() == b"\x00\xffraw"


def test_bytes_and_datetimes_over_jsonrpc_travel_as_strings(master_url, name):
    s = rpc_client.JsonRpcClient(master_url).stack.createStack(name)
    s.pushMany([b"raw", datetime.datetime(2026, 11, 21, 5, 17)])
    assert s.pop() == "2026-11-21T05:17:00"
    assert s.pop() == "cmF3"


def test_an_int_beyond_64_bits_is_refused_by_xmlrpc_before_sending(master_url, name):
    s = rpc_client.XmlRpcClient(master_url).stack.createStack(name)
    with pytest.raises(OverflowError):
        s.push(2 ** 64)
    assert s.getSize() == 0


def test_an_int_beyond_64_bits_is_a_double_over_jsonrpc(master_url, name):
    s = rpc_client.JsonRpcClient(master_url).stack.createStack(name)
    s.push(2 ** 64)
    back = s.pop()
    assert isinstance(back, float) and back == 2.0 ** 64
