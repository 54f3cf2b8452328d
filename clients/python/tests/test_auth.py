"""Tokens: from ``token=``, from the URL, from ``RPCS_TOKEN``; refusals as exceptions."""

from __future__ import annotations

import pytest

from rpcservices import ForbiddenError, NotAuthenticatedError, RemoteError

WRONG = "not-the-secret-5e1d"


def test_without_a_token_every_call_is_refused(auth_master, transport, monkeypatch):
    monkeypatch.delenv("RPCS_TOKEN", raising=False)
    c = transport(auth_master.url, timeout=30)
    with pytest.raises(NotAuthenticatedError) as e:
        c.ping()
    assert e.value.code == -32001 and e.value.name == "NOAUTH"
    with pytest.raises(NotAuthenticatedError):
        c.stack.createStack("refused")
    assert auth_master.client("ops", transport).stack.hasStack("refused") is False


def test_a_token_argument_is_sent_as_bearer(auth_master, transport, name):
    c = transport(auth_master.url, token=auth_master.secrets["writer"], timeout=30)
    assert c.ping() is True
    assert c.stack.createStack(name).push(1) == 1


def test_a_name_and_secret_token_argument(auth_master, transport, name):
    c = transport(auth_master.url, token=f"writer:{auth_master.secrets['writer']}", timeout=30)
    assert c.stack.createStack(name).push(1) == 1
    wrong_name = transport(auth_master.url, token=f"reader:{auth_master.secrets['writer']}")
    with pytest.raises(NotAuthenticatedError):
        wrong_name.ping()


def test_credentials_in_the_url_are_sent_as_basic(auth_master, transport, name):
    c = transport(auth_master.url_with("writer"), timeout=30)
    assert c.stack.createStack(name).push("x") == 1
    with pytest.raises(NotAuthenticatedError):
        transport(auth_master.url_with("writer", WRONG), timeout=30).ping()


def test_the_token_comes_from_the_environment(auth_master, transport, monkeypatch):
    monkeypatch.setenv("RPCS_TOKEN", f"reader:{auth_master.secrets['reader']}")
    assert transport(auth_master.url, timeout=30).ping() is True
    monkeypatch.setenv("RPCS_TOKEN", auth_master.secrets["reader"])
    assert transport(auth_master.url, timeout=30).ping() is True
    monkeypatch.setenv("RPCS_TOKEN", WRONG)
    with pytest.raises(NotAuthenticatedError):
        transport(auth_master.url, timeout=30).ping()
    # token= wins over the environment.
    assert transport(auth_master.url, token=auth_master.secrets["reader"]).ping() is True


def test_a_read_token_is_forbidden_to_write(auth_master, transport, name):
    c = auth_master.client("reader", transport)
    with pytest.raises(ForbiddenError) as e:
        c.stack.createStack(name).push(1)
    assert e.value.code == -32003 and e.value.name == "NOPERM"
    assert c.stack.hasStack(name) is False


def test_a_namespace_token_is_forbidden_other_names(auth_master, transport, name):
    c = auth_master.client("team", transport)
    assert c.stack.createStack(f"team/{name}").push(1) == 1
    with pytest.raises(ForbiddenError):
        c.stack.createStack(name)
    assert f"team/{name}" in c.stack.getAllStackNames()
    assert auth_master.client("ops", transport).stack.hasStack(name) is False


def test_a_batch_authorizes_each_call(auth_master, transport, name):
    c = auth_master.client("reader", transport)
    c.setBatchMode(True)
    c.ping()
    c.stack.createStack(name)
    results = c.execute()
    assert results[0] is True
    assert isinstance(results[1], ForbiddenError)


def test_secrets_stay_out_of_repr_and_errors(auth_master, transport):
    secret = auth_master.secrets["writer"]
    for c in (transport(auth_master.url_with("writer", WRONG)),
              transport(auth_master.url, token=WRONG)):
        assert WRONG not in repr(c) and WRONG not in c.url
        with pytest.raises(RemoteError) as e:
            c.ping()
        assert WRONG not in str(e.value) and WRONG not in repr(e.value)
    good = transport(auth_master.url_with("writer"))
    assert secret not in repr(good) and secret not in repr(good.stack)
    assert secret not in repr(good._transport()._credentials)
