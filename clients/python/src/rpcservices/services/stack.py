"""stack: named LIFO stacks, with leases for reliable consumption.

``client.stack`` is a :class:`StackStub`; ``createStack(name)`` and ``getStack(name)`` give a
:class:`Stack`, whose methods call ``stack.*`` on the master with the stack's name.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional, Sequence, Union

from .._batch import Handle, Stub
from ..errors import StackIndexError, StackNotFoundError

__all__ = ["StackStub", "Stack", "Lease", "StackIndexError", "StackNotFoundError"]

#: The master's default lease, in seconds.
DEFAULT_LEASE = 60.0


def _deadline(value: Any) -> Any:
    """A lease's deadline as a datetime (JSON carries it as an ISO 8601 string)."""
    if isinstance(value, str):
        text = value.rstrip("Z")
        head, dot, frac = text.partition(".")
        try:
            return datetime.datetime.fromisoformat(head + (dot + frac[:6] if dot else ""))
        except ValueError:
            return value
    return value


class Lease:
    """An item taken under a lease: ``item``, the lease's ``id`` and ``deadline``.
    ``ack()`` when the work is done; ``release()`` gives the item back now."""

    __slots__ = ("stack", "id", "item", "deadline")

    def __init__(self, stack: "Stack", id: str, item: Any, deadline: Any) -> None:
        self.stack = stack
        self.id = id
        self.item = item
        self.deadline = deadline

    def ack(self) -> bool:
        """The item is done; False if the lease was unknown or had expired."""
        return self.stack.ack(self.id)

    def release(self) -> bool:
        """Puts the item back on top of its stack now."""
        return self.stack.release(self.id)

    def extend(self, lease: float = DEFAULT_LEASE) -> bool:
        """The lease now runs out ``lease`` seconds from now; False if it already ran out."""
        return self.stack.extend(self.id, lease)

    def __repr__(self) -> str:
        return f"Lease({self.stack.name!r}, id={self.id!r}, item={self.item!r})"


LeaseOrId = Union[Lease, str]


def _lease_id(lease: LeaseOrId) -> str:
    return lease.id if isinstance(lease, Lease) else lease


class Stack(Handle):
    """One named stack on the master."""

    service = "stack"
    noun = "stack"

    # The original operations.
    def push(self, item: Any) -> int:
        """Pushes ``item`` on top (the stack is created if missing); the new size."""
        return self._call("push", item)

    def pop(self) -> Any:
        """The top item, removed; :class:`StackIndexError` when the stack is empty."""
        return self._call("pop")

    def getSize(self) -> int:
        """How many items the stack holds."""
        return self._call("getSize")

    def isEmpty(self) -> bool:
        """Whether the stack holds no items."""
        return self._call("isEmpty")

    def truncate(self) -> int:
        """Removes every item; how many were removed."""
        return self._call("truncate")

    # The master's newer operations.
    def pushMany(self, items: Sequence[Any]) -> int:
        """Pushes the items in order, the last on top; the new size."""
        return self._call("pushMany", list(items))

    def popMany(self, n: int) -> List[Any]:
        """Up to ``n`` items, top first (fewer once they reach the master's answer budget)."""
        return self._call("popMany", n)

    def popWait(self, timeout: float) -> Any:
        """The top item, waiting up to ``timeout`` seconds for one; :class:`StackIndexError`
        if none came."""
        return self._call("popWait", float(timeout), wait=float(timeout))

    def pushNew(self, items: Sequence[Any], keys: Optional[Sequence[Any]] = None) -> List[bool]:
        """Pushes each item whose key (the item, or the matching one of ``keys``) the stack
        has never seen, and marks it seen; for each item, whether it was pushed."""
        if keys is None:
            return self._call("pushNew", list(items))
        return self._call("pushNew", list(items), list(keys))

    def markSeen(self, keys: Sequence[Any]) -> List[bool]:
        """Marks keys seen without pushing; for each key, whether it was new."""
        return self._call("markSeen", list(keys))

    def take(self, lease: float = DEFAULT_LEASE, timeout: float = 0.0,
             client: Any = None) -> Lease:
        """The top item under a lease of ``lease`` seconds, waiting up to ``timeout`` seconds
        for one (:class:`StackIndexError` if none came). With ``client`` (a provider client's
        name or a :class:`~rpcservices.services.provider.Provider`) the item also goes back
        when that client's session ends."""
        params: List[Any] = [float(lease), float(timeout)]
        if client is not None:
            params.append(getattr(client, "name", client))

        def lease_of(answer: Any) -> Lease:
            return Lease(self, answer["id"], answer.get("item"), _deadline(answer.get("deadline")))

        return self._call("take", *params, convert=lease_of, wait=float(timeout))

    def ack(self, lease: LeaseOrId) -> bool:
        """The leased item is done; False if the lease was unknown or expired."""
        return self._call("ack", _lease_id(lease))

    def release(self, lease: LeaseOrId) -> bool:
        """Puts the leased item back on top now; False if the lease was unknown."""
        return self._call("release", _lease_id(lease))

    def extend(self, lease: LeaseOrId, seconds: float = DEFAULT_LEASE) -> bool:
        """The lease now runs out ``seconds`` from now; False if unknown or already out."""
        return self._call("extend", _lease_id(lease), float(seconds))

    def getLeaseCount(self) -> int:
        """How many of the stack's items are under lease."""
        return self._call("getLeaseCount")

    def getStats(self) -> Dict[str, int]:
        """``{size, leased, itemsIn, itemsOut}``: items in (pushed or released back) and out
        (popped or taken) count since the master started, for rates."""
        return self._call("getStats")

    def remove(self) -> bool:
        """Deletes the stack with its items and leases."""
        return self._call("remove")


class StackStub(Stub):
    """``client.stack``: finds, creates and removes stacks."""

    def createStack(self, name: str) -> Stack:
        """The stack of that name, created if missing."""
        return self._create(Stack(self, name))

    def getStack(self, name: str) -> Stack:
        """The existing stack of that name; :class:`StackNotFoundError` if there is none."""
        return self._existing(Stack(self, name), "stack.hasStack", StackNotFoundError)

    def hasStack(self, name: str) -> bool:
        """Whether a stack of that name exists."""
        return self._invoke("stack.hasStack", (name,))

    def removeStack(self, name: str) -> bool:
        """Deletes the stack with its items and leases."""
        return self._invoke("stack.remove", (name,))

    def getAllStackNames(self) -> List[str]:
        """The names of all stacks, sorted."""
        return self._invoke("stack.getAllNames", ())

    def getAllStacks(self) -> List[Stack]:
        """All stacks, by name."""
        return self._invoke("stack.getAllNames", (),
                            lambda names: [Stack(self, n) for n in names])
