"""The master's services as the original rpcServices client saw them.

``services.stack``, ``services.storage`` and ``services.provider`` hold each service's stub,
its handle class and its exceptions (``services.stack.StackIndexError``, ...).
"""

from . import provider, stack, storage

__all__ = ["stack", "storage", "provider"]
