"""HTTP transports: XML-RPC and JSON-RPC 2.0 to one master URL.

A transport holds one keep-alive connection (reopened when the master has closed it) and sends
one call, or one batch of calls, per request. Credentials go in the ``Authorization`` header and
nowhere else: not in ``repr()``, not in exception text.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import select
import ssl
import threading
import urllib.parse
import xmlrpc.client
from typing import Any, List, Optional, Sequence, Tuple, Union
from xml.sax.saxutils import escape

from .errors import (
    NOT_AUTHENTICATED,
    NotAuthenticatedError,
    RemoteError,
    TransportError,
    error_from_fault,
)

__all__ = ["Credentials", "HttpTransport", "XmlRpcTransport", "JsonRpcTransport", "TOKEN_VARIABLE"]

#: The environment variable credentials come from when neither ``token=`` nor the URL has them.
TOKEN_VARIABLE = "RPCS_TOKEN"

#: The most calls one request may carry (the master's limit for a multicall and a batch).
MAX_BATCH = 1000

Outcome = Union[Any, RemoteError]


class Credentials:
    """A token's secret and optionally its name. ``repr()`` shows the name only."""

    __slots__ = ("name", "secret")

    def __init__(self, name: Optional[str], secret: str) -> None:
        self.name = name or None
        self.secret = secret

    @classmethod
    def parse(cls, text: str) -> "Credentials":
        """Reads ``NAME:SECRET`` or a bare ``SECRET``, as ``RPCS_TOKEN`` and URLs carry them."""
        name, sep, secret = text.partition(":")
        return cls(name, secret) if sep else cls(None, text)

    def header(self) -> str:
        """The ``Authorization`` value: Basic with a name (as a URL's userinfo), else Bearer."""
        if self.name is None:
            return f"Bearer {self.secret}"
        raw = f"{self.name}:{self.secret}".encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:
        return f"Credentials(name={self.name!r}, secret=...)"


def _split_url(url: str, default_path: str) -> Tuple[str, str, int, str, Optional[Credentials]]:
    """(scheme, host, port, path, credentials in the URL) of an http(s) URL."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    for prefix in ("xmlrpc+", "jsonrpc+"):
        if scheme.startswith(prefix):
            scheme = scheme[len(prefix):]
    if scheme not in ("http", "https"):
        raise ValueError(f"not an http or https URL: {scheme}://")
    host = parts.hostname
    if not host:
        raise ValueError("the URL names no host")
    port = parts.port or (443 if scheme == "https" else 80)
    path = parts.path or default_path
    if parts.query:
        path += "?" + parts.query
    creds = None
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        creds = Credentials.parse(urllib.parse.unquote(userinfo))
    return scheme, host, port, path, creds


def _credentials(token: Optional[str], from_url: Optional[Credentials]) -> Optional[Credentials]:
    if token is not None:
        return Credentials.parse(token)
    if from_url is not None:
        return from_url
    env = os.environ.get(TOKEN_VARIABLE)
    return Credentials.parse(env) if env else None


class HttpTransport:
    """POSTs request bodies to one URL over a kept-alive connection (one request at a time)."""

    content_type = ""
    default_path = "/"

    def __init__(self, url: str, *, token: Optional[str] = None,
                 timeout: Optional[float] = None,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        scheme, self.host, self.port, self.path, url_creds = _split_url(url, self.default_path)
        self.scheme = scheme
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._credentials = _credentials(token, url_creds)
        self._conn: Optional[http.client.HTTPConnection] = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The URL without credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def close(self) -> None:
        """Closes the connection; the next call opens a new one."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> Tuple[http.client.HTTPConnection, bool]:
        """The open connection (and whether it served before), or a new one."""
        conn = self._conn
        if conn is not None and conn.sock is not None:
            # Readable while idle means the master closed it (its keep-alive timeout).
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if not readable:
                return conn, True
            self._drop()
        elif conn is not None:
            self._drop()
        if self.scheme == "https":
            context = self._ssl_context or ssl.create_default_context()
            conn = http.client.HTTPSConnection(self.host, self.port, context=context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port)
        self._conn = conn
        return conn, False

    def post(self, body: bytes, wait: float = 0.0) -> bytes:
        """Sends one request and returns the answer's body. ``wait``: seconds the call may
        block on the master (``popWait``), added to the timeout."""
        headers = {"Content-Type": self.content_type, "Accept": self.content_type,
                   "User-Agent": "rpcservices-python"}
        if self._credentials is not None:
            headers["Authorization"] = self._credentials.header()
        timeout = None if self.timeout is None else self.timeout + wait
        with self._lock:
            for attempt in (0, 1):
                conn, reused = self._connection()
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                try:
                    conn.request("POST", self.path, body, headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                        ConnectionAbortedError):
                    self._drop()
                    # A kept-alive connection the master closed as we sent: the request was
                    # not read, so it is sent again once on a new connection.
                    if attempt or not reused:
                        raise
                    continue
                except BaseException:
                    self._drop()
                    raise
                if resp.will_close:
                    self._drop()
                break
        if resp.status == 401:
            text = data.decode("utf-8", "replace").strip()
            raise NotAuthenticatedError(NOT_AUTHENTICATED, f"NOAUTH: HTTP 401: {text}", "NOAUTH",
                                        f"HTTP 401: {text}")
        if resp.status != 200:
            text = data.decode("utf-8", "replace").strip()[:200]
            raise TransportError(f"HTTP {resp.status} {resp.reason}: {text}", resp.status)
        return data

    # The protocol: one call and one batch.
    def call(self, method: str, params: Sequence[Any], wait: float = 0.0) -> Any:
        """The result of one call; a fault raises its :class:`RemoteError` subclass."""
        raise NotImplementedError

    def batch(self, calls: Sequence[Tuple[str, Sequence[Any]]], wait: float = 0.0) -> List[Outcome]:
        """The outcomes of several calls, in order: a result, or the fault's exception."""
        out: List[Outcome] = []
        for start in range(0, len(calls), MAX_BATCH):
            out.extend(self._batch(calls[start:start + MAX_BATCH], wait))
        return out

    def _batch(self, calls: Sequence[Tuple[str, Sequence[Any]]], wait: float) -> List[Outcome]:
        raise NotImplementedError


# --- XML-RPC ----------------------------------------------------------------------------------

_I32 = (-(2 ** 31), 2 ** 31 - 1)
_I64 = (-(2 ** 63), 2 ** 63 - 1)


class _Marshaller(xmlrpc.client.Marshaller):
    """Python's marshaller, with integers beyond 32 bits sent as ``<i8>`` (the master reads
    64 bits; Python's own refuses them)."""

    dispatch = dict(xmlrpc.client.Marshaller.dispatch)

    def dump_long(self, value: int, write: Any) -> None:
        if _I32[0] <= value <= _I32[1]:
            tag = "int"
        elif _I64[0] <= value <= _I64[1]:
            tag = "i8"
        else:
            raise OverflowError("int exceeds 64 bits")
        write(f"<value><{tag}>{int(value)}</{tag}></value>\n")

    dispatch[int] = dump_long


def _method_call(method: str, params: Sequence[Any]) -> bytes:
    data = _Marshaller("utf-8", allow_none=True).dumps(tuple(params))
    return (f"<?xml version='1.0'?>\n<methodCall>\n<methodName>{escape(method)}</methodName>\n"
            f"{data}</methodCall>\n").encode("utf-8")


class XmlRpcTransport(HttpTransport):
    """XML-RPC; a batch is one ``system.multicall``."""

    content_type = "text/xml"
    default_path = "/RPC2"
    #: Base64 and dateTime values as ``bytes`` and ``datetime`` (False: ``xmlrpc.client``'s
    #: ``Binary`` and ``DateTime``).
    use_builtin_types = True

    def call(self, method: str, params: Sequence[Any], wait: float = 0.0) -> Any:
        return self._answer(self.post(_method_call(method, params), wait))

    def _batch(self, calls: Sequence[Tuple[str, Sequence[Any]]], wait: float) -> List[Outcome]:
        entries = [{"methodName": m, "params": list(p)} for m, p in calls]
        answers = self.call("system.multicall", [entries], wait)
        if not isinstance(answers, list) or len(answers) != len(calls):
            raise TransportError("system.multicall answered with the wrong number of entries")
        out: List[Outcome] = []
        for a in answers:
            if isinstance(a, dict) and "faultCode" in a:
                out.append(error_from_fault(int(a["faultCode"]), str(a.get("faultString", ""))))
            elif isinstance(a, list) and len(a) == 1:
                out.append(a[0])
            else:
                raise TransportError(f"unreadable system.multicall entry {a!r}")
        return out

    def _answer(self, body: bytes) -> Any:
        try:
            params, _ = xmlrpc.client.loads(body, use_builtin_types=self.use_builtin_types)
        except xmlrpc.client.Fault as fault:
            raise error_from_fault(fault.faultCode, fault.faultString) from None
        except Exception as e:  # expat and the unmarshaller raise several kinds
            raise TransportError(f"unreadable XML-RPC answer: {e}") from None
        if len(params) != 1:
            raise TransportError("an XML-RPC answer without exactly one value")
        return params[0]


# --- JSON-RPC 2.0 -----------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """The master's JSON mapping: bytes as base64 strings, date-times as ISO 8601 strings."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, xmlrpc.client.Binary):
        return base64.b64encode(value.data).decode("ascii")
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be sent as JSON")


class JsonRpcTransport(HttpTransport):
    """JSON-RPC 2.0 over HTTP; a batch is one JSON-RPC batch."""

    content_type = "application/json"
    default_path = "/"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_id = 0

    def _ids(self, n: int) -> range:
        with self._lock:
            first = self._next_id
            self._next_id += n
        return range(first, first + n)

    def _encode(self, doc: Any) -> bytes:
        return json.dumps(doc, default=_json_default, ensure_ascii=False).encode("utf-8")

    def _decode(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError as e:
            raise TransportError(f"unreadable JSON-RPC answer: {e}") from None

    @staticmethod
    def _outcome(answer: Any) -> Outcome:
        if not isinstance(answer, dict):
            raise TransportError(f"unreadable JSON-RPC answer {answer!r}")
        error = answer.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise TransportError(f"unreadable JSON-RPC error {error!r}")
            return error_from_fault(int(error.get("code", 0)), str(error.get("message", "")))
        return answer.get("result")

    def call(self, method: str, params: Sequence[Any], wait: float = 0.0) -> Any:
        (ident,) = self._ids(1)
        doc = {"jsonrpc": "2.0", "id": ident, "method": method, "params": list(params)}
        outcome = self._outcome(self._decode(self.post(self._encode(doc), wait)))
        if isinstance(outcome, RemoteError):
            raise outcome
        return outcome

    def _batch(self, calls: Sequence[Tuple[str, Sequence[Any]]], wait: float) -> List[Outcome]:
        ids = self._ids(len(calls))
        docs = [{"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)}
                for i, (m, p) in zip(ids, calls)]
        answers = self._decode(self.post(self._encode(docs), wait))
        if isinstance(answers, dict):  # the whole batch refused
            outcome = self._outcome(answers)
            if isinstance(outcome, RemoteError):
                raise outcome
            raise TransportError("a JSON-RPC batch answered with one result")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise TransportError(f"the JSON-RPC batch's answer lacks {len(missing)} entries")
        return [self._outcome(by_id[i]) for i in ids]
