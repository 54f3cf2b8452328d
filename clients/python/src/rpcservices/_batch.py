"""Batch mode, shared by a client and its stubs.

In batch mode a call is queued instead of sent, and answers None (or, for calls that make a
handle such as ``createStack``, the handle at once). ``execute()`` sends everything queued as
one ``system.multicall`` (XML-RPC) or one JSON-RPC batch and returns the outcomes in order:
what each call would have returned, or, for a call that faulted, its exception object (the
other calls of the batch have run, so nothing is raised for one of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, NamedTuple, Optional, Sequence

from .errors import RemoteError, named

if TYPE_CHECKING:
    from ._transport import HttpTransport


class Queued(NamedTuple):
    method: str
    params: Sequence[Any]
    convert: Optional[Callable[[Any], Any]]
    wait: float


class Batcher:
    """Holds a batch-mode flag and the calls queued while it was on."""

    def __init__(self) -> None:
        self._batching = False
        self._queue: List[Queued] = []

    def _transport(self) -> "HttpTransport":
        raise NotImplementedError

    def setBatchMode(self, on: bool = True) -> None:
        """Queue calls from now on (``True``) or send them at once again (``False``).
        Calls already queued stay queued for ``execute()``."""
        self._batching = bool(on)

    def isBatchMode(self) -> bool:
        """Whether calls are queued."""
        return self._batching

    def execute(self) -> List[Any]:
        """Sends the queued calls in one request; their outcomes in order (a fault as its
        exception object). With nothing queued, ``[]`` without a request."""
        queued, self._queue = self._queue, []
        if not queued:
            return []
        raw = self._transport().batch([(q.method, q.params) for q in queued],
                                      wait=sum(q.wait for q in queued))
        out: List[Any] = []
        for q, outcome in zip(queued, raw):
            if q.convert is not None and not isinstance(outcome, RemoteError):
                try:
                    outcome = q.convert(outcome)
                except RemoteError as e:
                    outcome = e
            out.append(outcome)
        return out


class Stub(Batcher):
    """One service of a client (``client.stack``): calls go to the client's batch when the
    client is in batch mode, to the stub's own when the stub is, else straight out."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self._client = client

    def _transport(self) -> "HttpTransport":
        return self._client._transport()

    def _invoke(self, method: str, params: Sequence[Any],
                convert: Optional[Callable[[Any], Any]] = None, wait: float = 0.0,
                handle: Any = None) -> Any:
        """Calls ``method`` now, or queues it and returns ``handle`` in batch mode."""
        return self._client._invoke(method, params, convert, wait, handle, self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"

    def _create(self, handle: "Handle") -> Any:
        """``SERVICE.create`` of the handle's name; the handle."""
        return self._invoke(f"{handle.service}.create", (handle.name,), lambda _: handle,
                            handle=handle)

    def _existing(self, handle: "Handle", method: str, error: Any) -> Any:
        """The handle if ``method`` (``stack.hasStack``, ...) says its name exists; else raises
        the named ``error``, as the master words it."""

        def found(exists: bool) -> "Handle":
            if not exists:
                raise named(error, f'no {handle.noun} named "{handle.name}"')
            return handle

        return self._invoke(method, (handle.name,), found, handle=handle)


class Handle:
    """A named thing on the master (a stack, a storage, a logged-in client): its methods call
    ``SERVICE.METHOD`` with the name first, through the stub that made it."""

    service = ""
    #: What the master's "not found" faults call it.
    noun = ""

    def __init__(self, stub: Stub, name: str) -> None:
        self._stub = stub
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and other.name == self.name  # type: ignore[attr-defined]
                and other._stub._client is self._stub._client)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.service, self.name))

    def _call(self, method: str, *params: Any, convert: Optional[Callable[[Any], Any]] = None,
              wait: float = 0.0) -> Any:
        return self._stub._invoke(f"{self.service}.{method}", (self.name,) + params, convert,
                                  wait)
