"""provider: client sessions, liveness and messages.

``client.provider`` is a :class:`ProviderStub`; ``login(name)`` gives a :class:`Provider`, the
session of one client: it must ``visit`` within the master's session timeout (600 s by
default) or it is logged out. Pushed subscriptions (``provider.subscribe``) need a stream
connection (WebSocket, MessagePack-RPC) and are not offered over HTTP.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .._batch import Handle, Stub
from ..errors import ClientNotFoundError

__all__ = ["ProviderStub", "Provider", "ClientNotFoundError"]


def _name(client: Any) -> str:
    """A client's name, given the name or a :class:`Provider`."""
    return getattr(client, "name", client)


class Provider(Handle):
    """The session of one logged-in client."""

    service = "provider"
    noun = "client"

    def visit(self, status: Any = None) -> Any:
        """Keeps the session alive and records ``status``; the next queued message, or None."""
        return self._call("visit", status)

    def logout(self) -> bool:
        """Ends the session: queued messages are dropped, leased stack items go back."""
        return self._call("logout")

    def sendMessage(self, name: Any, message: Any) -> bool:
        """Queues ``message`` for the client ``name`` (a name or a Provider); True."""
        return self._stub.sendMessage(name, message)

    def broadcast(self, message: Any) -> int:
        """Queues ``message`` for every logged-in client (this one too); how many."""
        return self._stub.broadcast(message)

    def getInfo(self) -> Dict[str, Any]:
        """This client's details (``host``, ``loginTime``, ``lastVisit``, ``status``, ...)."""
        return self._call("getClient")

    def getAllOtherClientNames(self) -> List[str]:
        """The names of the other logged-in clients, sorted."""
        return self._stub._invoke("provider.getAllClientNames", (),
                                  lambda names: [n for n in names if n != self.name])


class ProviderStub(Stub):
    """``client.provider``: logs clients in and reaches every client's session."""

    def login(self, name: str, info: Any = None) -> Provider:
        """Logs the client ``name`` in (again), with optional ``info``; its session."""
        provider = Provider(self, name)
        params = (name,) if info is None else (name, info)
        return self._invoke("provider.login", params, lambda _: provider, handle=provider)

    def logout(self, name: Any) -> bool:
        """Ends the client's session; :class:`ClientNotFoundError` if it is not logged in."""
        return self._invoke("provider.logout", (_name(name),))

    def visit(self, name: Any, status: Any = None) -> Any:
        """Keeps the client's session alive; its next queued message, or None."""
        return self._invoke("provider.visit", (_name(name), status))

    def sendMessage(self, name: Any, message: Any) -> bool:
        """Queues ``message`` for the client ``name``; True."""
        return self._invoke("provider.sendMessage", (_name(name), message))

    def broadcast(self, message: Any) -> int:
        """Queues ``message`` for every logged-in client; how many got it."""
        return self._invoke("provider.broadcast", (message,))

    def getAllClientNames(self) -> List[str]:
        """The names of all logged-in clients, sorted."""
        return self._invoke("provider.getAllClientNames", ())

    def getAllClients(self) -> Dict[str, Dict[str, Any]]:
        """Every client's details, by name."""
        return self._invoke("provider.getAllClients", ())

    def getClient(self, name: Any) -> Dict[str, Any]:
        """One client's details; :class:`ClientNotFoundError` if it is not logged in."""
        return self._invoke("provider.getClient", (_name(name),))

    def hasClient(self, name: Any) -> bool:
        """Whether the client is logged in."""
        return self._invoke("provider.hasClient", (_name(name),))

    def getProvider(self, name: str) -> Provider:
        """The session of the logged-in client ``name``; :class:`ClientNotFoundError` if none."""
        return self._existing(Provider(self, name), "provider.hasClient", ClientNotFoundError)

    def cleanUp(self) -> int:
        """Ends every session idle longer than the session timeout; how many ended."""
        return self._invoke("provider.cleanUp", ())
