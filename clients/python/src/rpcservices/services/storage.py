"""storage: named parameter maps, with atomic compare-and-set, set-if-absent and counters.

``client.storage`` is a :class:`StorageStub`; ``createStorage(name)`` and ``getStorage(name)``
give a :class:`Storage`, whose methods call ``storage.*`` on the master with its name.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from .._batch import Handle, Stub
from ..errors import ParameterNotFoundError, StorageNotFoundError

__all__ = ["StorageStub", "Storage", "ParameterNotFoundError", "StorageNotFoundError"]


class Storage(Handle):
    """One named parameter storage on the master."""

    service = "storage"
    noun = "storage"

    # The original operations.
    def setParameter(self, param: str, value: Any) -> bool:
        """Sets a parameter (the storage is created if missing); True."""
        return self._call("setParameter", param, value)

    def setParameters(self, params: Mapping[str, Any]) -> bool:
        """Sets several parameters at once; True."""
        return self._call("setParameters", dict(params))

    def getParameter(self, param: str) -> Any:
        """A parameter's value; :class:`ParameterNotFoundError` if it is unset."""
        return self._call("getParameter", param)

    def getAllParameters(self) -> Dict[str, Any]:
        """All parameters, in name order."""
        return self._call("getAllParameters")

    def getSize(self) -> int:
        """How many parameters the storage has."""
        return self._call("getSize")

    def hasParameter(self, param: str) -> bool:
        """Whether the parameter is set."""
        return self._call("hasParameter", param)

    def removeParameter(self, param: str) -> bool:
        """Removes a parameter; False if it was not set."""
        return self._call("removeParameter", param)

    # The master's newer operations.
    def compareAndSet(self, param: str, expected: Any, new: Any) -> bool:
        """Sets ``param`` to ``new`` only if it equals ``expected`` (None: unset); whether set."""
        return self._call("compareAndSet", param, expected, new)

    def setIfAbsent(self, param: str, value: Any) -> bool:
        """Sets ``param`` only if it is unset; whether it was set (claims, de-duplication)."""
        return self._call("setIfAbsent", param, value)

    def increment(self, param: str, delta: int = 1) -> int:
        """Adds ``delta`` to an integer parameter (unset counts as 0); the new value."""
        return self._call("increment", param, delta)

    def reserveSlot(self, param: str, interval: float) -> float:
        """Reserves the moment ``interval`` seconds after the last one reserved on ``param``
        (or now, if later); the seconds to wait until it."""
        return self._call("reserveSlot", param, float(interval))

    def remove(self) -> bool:
        """Deletes the storage and all its parameters."""
        return self._call("remove")


class StorageStub(Stub):
    """``client.storage``: finds, creates and removes storages."""

    def createStorage(self, name: str) -> Storage:
        """The storage of that name, created if missing."""
        return self._create(Storage(self, name))

    def getStorage(self, name: str) -> Storage:
        """The existing storage of that name; :class:`StorageNotFoundError` if there is none."""
        return self._existing(Storage(self, name), "storage.hasStorage", StorageNotFoundError)

    def hasStorage(self, name: str) -> bool:
        """Whether a storage of that name exists."""
        return self._invoke("storage.hasStorage", (name,))

    def removeStorage(self, name: str) -> bool:
        """Deletes the storage and all its parameters."""
        return self._invoke("storage.remove", (name,))

    def getAllStorageNames(self) -> List[str]:
        """The names of all storages, sorted."""
        return self._invoke("storage.getAllNames", ())

    def getAllStorages(self) -> List[Storage]:
        """All storages, by name."""
        return self._invoke("storage.getAllNames", (),
                            lambda names: [Storage(self, n) for n in names])
