"""The provider stub and Provider sessions, on both transports."""

from __future__ import annotations

import pytest

from rpcservices import ClientNotFoundError, ForbiddenError, Provider, services


def test_login_visit_logout(client, name):
    p = client.provider.login(name, info={"role": "worker"})
    assert isinstance(p, Provider) and p.name == name
    assert client.provider.hasClient(name) is True
    assert p.visit("busy") is None
    details = client.provider.getClient(name)
    assert details["name"] == name and details["status"] == "busy"
    assert details["info"] == {"role": "worker"}
    assert p.getInfo()["status"] == "busy"
    assert p.logout() is True
    assert client.provider.hasClient(name) is False
    with pytest.raises(services.provider.ClientNotFoundError):
        p.visit()


def test_messages_between_clients(client, name):
    alice = client.provider.login(f"{name}-alice")
    bob = client.provider.login(f"{name}-bob")
    assert alice.sendMessage(bob, {"job": 1}) is True
    assert client.provider.sendMessage(f"{name}-bob", "second") is True
    assert client.provider.getClient(bob)["pendingMessages"] == 2
    assert bob.visit() == {"job": 1}
    assert bob.visit("idle") == "second"
    assert bob.visit() is None
    assert alice.visit() is None


def test_message_to_an_unknown_client_faults(client, name):
    with pytest.raises(ClientNotFoundError) as e:
        client.provider.sendMessage(f"{name}-ghost", "hello")
    assert isinstance(e.value, LookupError)
    with pytest.raises(ClientNotFoundError):
        client.provider.getClient(f"{name}-ghost")
    with pytest.raises(ClientNotFoundError):
        client.provider.logout(f"{name}-ghost")
    with pytest.raises(ClientNotFoundError):
        client.provider.getProvider(f"{name}-ghost")


def test_client_listings(client, name):
    a = client.provider.login(f"{name}-a")
    b = client.provider.login(f"{name}-b")
    names = client.provider.getAllClientNames()
    assert {a.name, b.name} <= set(names) and names == sorted(names)
    others = a.getAllOtherClientNames()
    assert b.name in others and a.name not in others
    everyone = client.provider.getAllClients()
    assert everyone[a.name]["name"] == a.name and b.name in everyone
    assert client.provider.getProvider(a.name) == a


def test_broadcast_and_stub_visit(client, name):
    a = client.provider.login(f"{name}-a")
    count = a.broadcast("all hands")
    assert count >= 1
    assert client.provider.visit(a.name, "seen") == "all hands"
    assert client.provider.broadcast("again") == count


def test_clean_up_ends_no_fresh_session(client, name):
    p = client.provider.login(name)
    ended = client.provider.cleanUp()
    assert isinstance(ended, int) and ended >= 0
    assert client.provider.hasClient(p.name) is True


def test_clean_up_needs_admin_under_auth(auth_master, transport):
    c = auth_master.client("writer", transport)
    with pytest.raises(ForbiddenError):
        c.provider.cleanUp()
    assert auth_master.client("ops", transport).provider.cleanUp() >= 0
