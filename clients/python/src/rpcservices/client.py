"""Clients of an rpcs master: :class:`XmlRpcClient` and :class:`JsonRpcClient`.

Both carry one stub per service (``client.stack``, ``client.storage``, ``client.provider``)
and the same API; they differ only in the protocol on the wire. ::

    from rpcservices import client, services

    myClient = client.XmlRpcClient("http://localhost:8000")
    inStack = myClient.stack.createStack("in")
    inStack.push(1)
    try:
        item = inStack.pop()
    except services.stack.StackIndexError:
        item = None
"""

from __future__ import annotations

import ssl
from typing import Any, Callable, List, Optional, Sequence, Type

from ._batch import Batcher, Queued, Stub
from ._transport import HttpTransport, JsonRpcTransport, XmlRpcTransport
from .services.provider import ProviderStub
from .services.stack import StackStub
from .services.storage import StorageStub

__all__ = ["Client", "XmlRpcClient", "JsonRpcClient"]


class Client(Batcher):
    """A connection to one master.

    ``url``: ``http://host:port/`` or ``https://...``; credentials in it
    (``http://NAME:SECRET@host:port/``) are sent as HTTP Basic. ``token``: a token's secret
    (or ``NAME:SECRET``), sent as ``Authorization: Bearer SECRET`` (Basic with a name); without
    either, the ``RPCS_TOKEN`` environment variable is used when set. ``timeout``: seconds to
    wait for an answer (None: no limit; ``popWait`` and ``take`` add their own wait).
    ``ssl_context``: how an https master is verified (default: the system's CAs).

    One request at a time goes out on one kept-alive connection, so a client may be shared
    by threads (their calls take turns); batch mode, though, belongs to the client object.
    """

    transport_class: Type[HttpTransport] = HttpTransport

    def __init__(self, url: str = "http://localhost:8000", *, token: Optional[str] = None,
                 timeout: Optional[float] = None,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        super().__init__()
        self._http = self.transport_class(url, token=token, timeout=timeout,
                                          ssl_context=ssl_context)
        self.url = self._http.url
        self.stack = StackStub(self)
        self.storage = StorageStub(self)
        self.provider = ProviderStub(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def _transport(self) -> HttpTransport:
        return self._http

    def _invoke(self, method: str, params: Sequence[Any],
                convert: Optional[Callable[[Any], Any]] = None, wait: float = 0.0,
                handle: Any = None, stub: Optional[Stub] = None) -> Any:
        if self._batching:
            queue = self._queue
        elif stub is not None and stub._batching:
            queue = stub._queue
        else:
            value = self._http.call(method, params, wait)
            return value if convert is None else convert(value)
        queue.append(Queued(method, tuple(params), convert, wait))
        return handle

    def call(self, method: str, *params: Any) -> Any:
        """Calls any method of the master by its full name (``stack.getLeaseCount``)."""
        return self._invoke(method, params)

    def ping(self) -> bool:
        """True if the master answers."""
        return self._invoke("ping", ())

    def listMethods(self) -> List[str]:
        """The names of every method the master offers."""
        return self._invoke("system.listMethods", ())

    def close(self) -> None:
        """Closes the connection (the next call opens a new one)."""
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class XmlRpcClient(Client):
    """The master over XML-RPC (a URL without a path posts to ``/RPC2``); a batch is one
    ``system.multicall``. Values: None, bool, int (64 bits), float, str, bytes, datetime,
    lists, dicts with string keys."""

    transport_class = XmlRpcTransport


class JsonRpcClient(Client):
    """The master over JSON-RPC 2.0 on the same HTTP port (``application/json``, posted to
    ``/`` without a path); a batch is one JSON-RPC batch. Bytes travel as base64 strings and
    datetimes as ISO 8601 strings, and come back as those strings."""

    transport_class = JsonRpcTransport
