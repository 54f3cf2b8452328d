"""A tiny standard-library client for an rpcs master (Python 3, xmlrpc.client only).

The master reports errors as XML-RPC faults whose string starts with the error's name,
e.g. ``'StackIndexError: pop from empty stack "in"'``. This module turns such faults back
into local exception classes, as the original rpcServices stubs did::

    from rpcservices_client import Master, StackIndexError

    master = Master("http://localhost:8000")
    master.stack.push("in", 42)
    try:
        item = master.stack.pop("in")
    except StackIndexError:
        item = None

``Master(url).stack``, ``.storage`` and ``.provider`` proxy the dotted methods
(``stack.push``, ``storage.getParameter``, ``provider.login``, ...). A fault whose name has
no class here raises the generic ``RemoteError``.
"""

import re
import xmlrpc.client

__all__ = [
    "Master",
    "RemoteError",
    "StackIndexError",
    "StackNotFoundError",
    "StorageNotFoundError",
    "ParameterNotFoundError",
    "ClientNotFoundError",
    "ItemTooLargeError",
    "QueueFullError",
    "StoreError",
    "RemoteValueError",
    "RemoteTypeError",
    "RemoteOverflowError",
    "error_from_fault",
]


class RemoteError(Exception):
    """A fault from the master; ``name`` is the error name before ':' (or None)."""

    def __init__(self, fault, name=None, message=None):
        super().__init__(fault.faultString)
        self.fault = fault
        self.fault_code = fault.faultCode
        self.name = name
        self.message = fault.faultString if message is None else message


class StackIndexError(RemoteError, IndexError):
    """Pop or take from an empty stack."""


class StackNotFoundError(RemoteError, LookupError):
    """No stack of that name."""


class StorageNotFoundError(RemoteError, LookupError):
    """No storage of that name."""


class ParameterNotFoundError(RemoteError, LookupError):
    """The storage has no such parameter."""


class ClientNotFoundError(RemoteError, LookupError):
    """No provider client of that name is logged in."""


class ItemTooLargeError(RemoteError, ValueError):
    """An item, value or message is larger than the master accepts."""


class QueueFullError(RemoteError):
    """A client's message queue is full."""


class StoreError(RemoteError):
    """The master's store failed (fault name ``StorageError``)."""


class RemoteValueError(RemoteError, ValueError):
    """The master rejected an argument (fault name ``ValueError``)."""


class RemoteTypeError(RemoteError, TypeError):
    """An argument or stored value has the wrong type (fault name ``TypeError``)."""


class RemoteOverflowError(RemoteError, OverflowError):
    """A counter left the 64-bit range (fault name ``OverflowError``)."""


ERRORS = {
    "StackIndexError": StackIndexError,
    "StackNotFoundError": StackNotFoundError,
    "StorageNotFoundError": StorageNotFoundError,
    "ParameterNotFoundError": ParameterNotFoundError,
    "ClientNotFoundError": ClientNotFoundError,
    "ItemTooLargeError": ItemTooLargeError,
    "QueueFullError": QueueFullError,
    "StorageError": StoreError,
    "ValueError": RemoteValueError,
    "TypeError": RemoteTypeError,
    "OverflowError": RemoteOverflowError,
}

_NAMED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):\s?(.*)", re.DOTALL)


def error_from_fault(fault):
    """The exception for an ``xmlrpc.client.Fault``: its named class, else ``RemoteError``."""
    m = _NAMED.match(fault.faultString)
    if not m:
        return RemoteError(fault)
    name, message = m.groups()
    return ERRORS.get(name, RemoteError)(fault, name, message)


class _Service:
    """Calls ``<service>.<method>`` on the master, raising mapped exceptions for faults."""

    def __init__(self, proxy, service):
        self._proxy = proxy
        self._service = service

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        remote = getattr(self._proxy, f"{self._service}.{method}")

        def call(*args):
            try:
                return remote(*args)
            except xmlrpc.client.Fault as fault:
                raise error_from_fault(fault) from None

        call.__name__ = method
        return call


class Master:
    """A connection to an rpcs master: ``stack``, ``storage`` and ``provider`` services."""

    def __init__(self, url="http://localhost:8000"):
        self._proxy = xmlrpc.client.ServerProxy(url, allow_none=True)
        self.stack = _Service(self._proxy, "stack")
        self.storage = _Service(self._proxy, "storage")
        self.provider = _Service(self._proxy, "provider")

    def ping(self):
        """True if the master answers."""
        return self._proxy.ping()

    def close(self):
        self._proxy("close")()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
