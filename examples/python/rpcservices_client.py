"""The master's dotted methods, with faults as exception classes (Python 3).

Superseded by the ``rpcservices`` package (``pip install ./clients/python``), which carries
the original rpcServices API; this module keeps the older call style on top of it::

    from rpcservices_client import Master, StackIndexError

    master = Master("http://localhost:8000")
    master.stack.push("in", 42)
    try:
        item = master.stack.pop("in")
    except StackIndexError:
        item = None

``Master(url).stack``, ``.storage`` and ``.provider`` proxy the dotted methods
(``stack.push``, ``storage.getParameter``, ``provider.login``, ...). A fault whose name has
no class raises the generic ``RemoteError``. Without the package installed, it is taken from
this checkout's ``clients/python/src``.
"""

import sys
from pathlib import Path

try:
    import rpcservices
except ImportError:  # run from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))
    import rpcservices

import rpcservices._transport
from rpcservices import errors
from rpcservices.errors import *  # noqa: F401,F403 - the exception classes
from rpcservices.errors import ERRORS  # noqa: F401

__all__ = ["Master", *errors.__all__]


def error_from_fault(fault):
    """The exception for an ``xmlrpc.client.Fault``: its named class, else ``RemoteError``."""
    return errors.error_from_fault(fault.faultCode, fault.faultString)


class _Transport(rpcservices._transport.XmlRpcTransport):
    use_builtin_types = False  # xmlrpc.client's DateTime and Binary, as before


class _Client(rpcservices.XmlRpcClient):
    transport_class = _Transport


class _Service:
    """Calls ``<service>.<method>`` on the master, raising mapped exceptions for faults."""

    def __init__(self, client, service):
        self._client = client
        self._service = service

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        name = f"{self._service}.{method}"

        def call(*args):
            return self._client.call(name, *args)

        call.__name__ = method
        return call


class Master:
    """A connection to an rpcs master: ``stack``, ``storage`` and ``provider`` services."""

    def __init__(self, url="http://localhost:8000"):
        self._client = _Client(url)
        self.stack = _Service(self._client, "stack")
        self.storage = _Service(self._client, "storage")
        self.provider = _Service(self._client, "provider")

    def ping(self):
        """True if the master answers."""
        return self._client.ping()

    def close(self):
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
