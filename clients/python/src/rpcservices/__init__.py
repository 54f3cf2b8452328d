"""Client of the rpcs master, with the original rpcServices client API.

``rpcservices.client`` has :class:`~rpcservices.client.XmlRpcClient` and
:class:`~rpcservices.client.JsonRpcClient`; ``rpcservices.services`` has the ``stack``,
``storage`` and ``provider`` modules with their exceptions. Every exception is also here.
Standard library only.
"""

from . import client, errors, services
from .client import Client, JsonRpcClient, XmlRpcClient
from .errors import (
    CallbackError,
    ClientNotFoundError,
    ForbiddenError,
    ItemTooLargeError,
    LimitExceededError,
    NotAuthenticatedError,
    ParameterNotFoundError,
    QueueFullError,
    RemoteError,
    RemoteOverflowError,
    RemoteTypeError,
    RemoteValueError,
    RpcServicesError,
    StackIndexError,
    StackNotFoundError,
    StorageNotFoundError,
    StoreError,
    TransportError,
    UnrepresentableError,
    error_from_fault,
)
from .services.provider import Provider
from .services.stack import Lease, Stack
from .services.storage import Storage

__version__ = "0.5.0"

__all__ = [
    "client", "services", "errors",
    "Client", "XmlRpcClient", "JsonRpcClient", "Stack", "Lease", "Storage", "Provider",
    "RpcServicesError", "TransportError", "RemoteError", "NotAuthenticatedError",
    "ForbiddenError", "LimitExceededError", "StackIndexError", "StackNotFoundError",
    "StorageNotFoundError", "ParameterNotFoundError", "ClientNotFoundError",
    "ItemTooLargeError", "QueueFullError", "StoreError", "UnrepresentableError",
    "CallbackError", "RemoteValueError", "RemoteTypeError", "RemoteOverflowError",
    "error_from_fault",
]
