"""Exceptions for the master's faults.

The master reports an error raised by a method as fault code 1 with a message that starts
with the error's name, e.g. ``'StackIndexError: pop from empty stack "in"'``; refusals and
limits have codes of their own (-32001 ``NOAUTH``, -32003 ``NOPERM``, -32000 a limit).
:func:`error_from_fault` turns either into the matching class below, as the original
rpcServices stubs did. A fault whose name has no class here is a plain :class:`RemoteError`.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Type

__all__ = [
    "RpcServicesError",
    "TransportError",
    "RemoteError",
    "NotAuthenticatedError",
    "ForbiddenError",
    "LimitExceededError",
    "StackIndexError",
    "StackNotFoundError",
    "StorageNotFoundError",
    "ParameterNotFoundError",
    "ClientNotFoundError",
    "ItemTooLargeError",
    "QueueFullError",
    "StoreError",
    "UnrepresentableError",
    "CallbackError",
    "RemoteValueError",
    "RemoteTypeError",
    "RemoteOverflowError",
    "error_from_fault",
]

APPLICATION = 1
LIMIT_EXCEEDED = -32000
NOT_AUTHENTICATED = -32001
FORBIDDEN = -32003


class RpcServicesError(Exception):
    """Everything this package raises for a call that did not succeed (besides ``OSError``)."""


class TransportError(RpcServicesError):
    """The master's answer was not a usable RPC answer: an HTTP error status, a bad body."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class RemoteError(RpcServicesError):
    """A fault from the master.

    ``code`` (also ``fault_code``, ``faultCode``) is the fault code, ``faultString`` the whole
    message, ``name`` the error name before the ``:`` (or None) and ``message`` the rest.
    """

    def __init__(self, code: int, text: str, name: Optional[str] = None,
                 message: Optional[str] = None) -> None:
        super().__init__(text)
        self.code = code
        self.fault_code = code
        self.faultCode = code
        self.faultString = text
        self.name = name
        self.message = text if message is None else message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.faultString!r})"


class NotAuthenticatedError(RemoteError):
    """No valid token: fault -32001 (``NOAUTH``), or HTTP 401."""


class ForbiddenError(RemoteError):
    """The token does not allow this call: fault -32003 (``NOPERM``)."""


class LimitExceededError(RemoteError):
    """A limit of the master was hit: fault -32000 (a call time limit, a multicall too large)."""


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


class UnrepresentableError(RemoteError, ValueError):
    """The answer cannot be written in the protocol used (an XML-RPC struct key, say)."""


class CallbackError(RemoteError):
    """The method needs to call back into the client, which HTTP cannot carry."""


class RemoteValueError(RemoteError, ValueError):
    """The master rejected an argument (fault name ``ValueError``)."""


class RemoteTypeError(RemoteError, TypeError):
    """An argument or stored value has the wrong type (fault name ``TypeError``)."""


class RemoteOverflowError(RemoteError, OverflowError):
    """A counter left the 64-bit range (fault name ``OverflowError``)."""


#: Fault names (the text before ``:``) and their classes.
ERRORS: Dict[str, Type[RemoteError]] = {
    "StackIndexError": StackIndexError,
    "StackNotFoundError": StackNotFoundError,
    "StorageNotFoundError": StorageNotFoundError,
    "ParameterNotFoundError": ParameterNotFoundError,
    "ClientNotFoundError": ClientNotFoundError,
    "ItemTooLargeError": ItemTooLargeError,
    "QueueFullError": QueueFullError,
    "StorageError": StoreError,
    "UnrepresentableError": UnrepresentableError,
    "CallbackError": CallbackError,
    "ValueError": RemoteValueError,
    "TypeError": RemoteTypeError,
    "OverflowError": RemoteOverflowError,
    "LimitExceeded": LimitExceededError,
}

#: Fault codes other than 1 and their classes.
CODES: Dict[int, Type[RemoteError]] = {
    LIMIT_EXCEEDED: LimitExceededError,
    NOT_AUTHENTICATED: NotAuthenticatedError,
    FORBIDDEN: ForbiddenError,
}

_NAMED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):\s?(.*)", re.DOTALL)


def error_from_fault(code: int, text: str) -> RemoteError:
    """The exception for a fault: by its name when the code is 1, else by its code."""
    m = _NAMED.match(text)
    name, message = m.groups() if m else (None, None)
    if code == APPLICATION:
        cls = ERRORS.get(name or "", RemoteError)
    else:
        cls = CODES.get(code, RemoteError)
    return cls(code, text, name, message)


def named(cls: Type[RemoteError], detail: str) -> RemoteError:
    """The exception the master would send for the named error ``cls`` with ``detail``."""
    return cls(APPLICATION, f"{cls.__name__}: {detail}", cls.__name__, detail)
