"""Raw-wire clients and checks for the hostile-input suite (``test_hostile.py``).

Everything here speaks the protocols byte by byte, so a test can send what no stock client
would: partial HTTP heads, lying lengths, unmasked WebSocket frames, MessagePack length
prefixes claiming 4 GiB, ZMTP frames claiming 2^64 - 1 bytes. The well-behaved side (the
checks run after each hostile input) uses the same helpers with valid input, on fresh
connections.

No helper asserts on timing: every timeout is a safety net, and waits are for conditions.
"""

import base64
import json
import os
import re
import select
import selectors
import socket
import struct
import threading
import time
import uuid
import xmlrpc.client

import msgpack

from conftest import ServerProcess

GUARD = 20.0  # safety net for one receive or one wait
MIB = 1 << 20
RSS_GROWTH_BOUND = 200 * MIB  # generous: the real limits are 1-16 MiB per connection


# --- waiting ---------------------------------------------------------------------------------------


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls ``predicate`` until it returns a true value (returned), or fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(interval)


def read_until_closed(sock, timeout=GUARD):
    """Reads until the peer closes (EOF or reset); returns ``(bytes read, closed)``.
    ``closed`` is False if the peer kept the connection open for the whole ``timeout``."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return bytes(data), False
        except (ConnectionResetError, BrokenPipeError):
            return bytes(data), True
        if not chunk:
            return bytes(data), True
        data += chunk


def send_ignoring_close(sock, data):
    """Sends ``data``; a peer that closed meanwhile is not an error here (it may refuse early)."""
    try:
        sock.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        return False


def half_close(sock):
    """Ends our side of the stream; a server that already closed it is fine here."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def wait_for(sock, event, timeout):
    """Whether ``sock`` is ready for ``event`` (POLLIN, POLLOUT) within ``timeout`` seconds.
    poll(), not select(): a process holding thousands of sockets has descriptors past 1024."""
    poller = select.poll()
    poller.register(sock, event)
    return bool(poller.poll(timeout * 1000))


def send_until_stalled(sock, chunk, max_bytes, stall=2.0):
    """Writes ``chunk`` over and over without reading, until ``max_bytes`` are written or the
    peer takes nothing for ``stall`` seconds (it stopped reading: backpressure). Returns the
    bytes written. ``stall`` detects a condition; nothing asserts how long anything took."""
    written = 0
    sock.setblocking(False)
    try:
        view, offset = memoryview(chunk), 0
        while written < max_bytes:
            if not wait_for(sock, select.POLLOUT, stall):
                break
            try:
                n = sock.send(view[offset:])
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            written += n
            offset = (offset + n) % len(chunk)
    finally:
        sock.setblocking(True)
    return written


# --- servers ---------------------------------------------------------------------------------------


def rss_bytes(pid):
    """The resident set size of process ``pid`` (VmRSS from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def _addr(url):
    m = re.fullmatch(r"[a-z+]+://(127\.0\.0\.1):(\d+)/?", url)
    assert m, url
    return m.group(1), int(m.group(2))


class Server:
    """A server binary started on port-0 listeners, with its addresses by protocol:
    ``http_addr``, ``msgpack_addr``, ``zerorpc_addr`` (each ``(host, port)`` or None)."""

    LISTENER_FLAGS = ("--listen", "--msgpack", "--zerorpc")

    def __init__(self, argv, log_path):
        nlines = sum(1 for a in argv if a in self.LISTENER_FLAGS)
        self.process = ServerProcess(argv, nlines, log_path)
        self.http_addr = self.msgpack_addr = self.zerorpc_addr = None
        for url in self.process.urls:
            if url.startswith("http://"):
                self.http_addr = self.http_addr or _addr(url)
            elif url.startswith("msgpack://"):
                self.msgpack_addr = self.msgpack_addr or _addr(url)
            elif url.startswith("tcp://"):
                self.zerorpc_addr = self.zerorpc_addr or _addr(url)

    @property
    def pid(self):
        return self.process.proc.pid

    def rss(self):
        return rss_bytes(self.pid)

    def alive(self):
        return self.process.alive()

    def stop(self):
        self.process.stop()

    def proxy(self, **kw):
        """A fresh ``xmlrpc.client.ServerProxy`` (its own connection)."""
        host, port = self.http_addr
        return xmlrpc.client.ServerProxy(f"http://{host}:{port}/", allow_none=True, **kw)

    def jsonrpc(self, method, *params):
        """One JSON-RPC 2.0 call over a fresh HTTP connection; returns the decoded answer."""
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 7})
        resp = http_post(self.http_addr, body.encode(), "application/json")
        assert resp.status == 200, resp
        return json.loads(resp.body)

    def msgpack_call(self, method, *params):
        """One MessagePack-RPC call over a fresh connection; returns ``(error, result)``."""
        with MsgpackConn(self.msgpack_addr) as conn:
            return conn.call(method, *params)

    def zerorpc_call(self, method, *args):
        """One zerorpc call over a fresh raw ZMTP connection; returns ``(event name, args)``."""
        with Zmtp(self.zerorpc_addr) as z:
            z.handshake()
            return z.call(method, list(args))

    def assert_rss_growth_bounded(self, before, bound=RSS_GROWTH_BOUND):
        grown = self.rss() - before
        assert grown < bound, f"server RSS grew by {grown / MIB:.0f} MiB (bound {bound / MIB:.0f})"


class ExampleServer(Server):
    """``example-server``; ``assert_serving`` checks answers on every listener."""

    def assert_serving(self):
        assert self.alive(), f"the example server died; stderr:\n{self.process.stderr()[-3000:]}"
        assert self.proxy().add(2, 3) == 5
        assert self.proxy().addtogether("x", "ÿ", "z") == "xÿz"
        assert self.jsonrpc("add", 20, 22)["result"] == 42
        if self.msgpack_addr:
            assert self.msgpack_call("add", 1, 2) == (None, 3)
        if self.zerorpc_addr:
            assert self.zerorpc_call("add", 4, 5) == ("OK", [9])


SENTINEL_STACK = "hostile.sentinel"
SENTINEL_ITEMS = ["first", 2, 3.5, {"k": ["v", "w"]}, "last"]


class Master(Server):
    """``rpcs master --backend memory``. ``seed()`` pushes the sentinel stack;
    ``assert_serving`` checks answers on every listener and that no sentinel item is lost."""

    def seed(self):
        self.proxy().stack.pushMany(SENTINEL_STACK, SENTINEL_ITEMS)
        return self

    def assert_serving(self):
        assert self.alive(), f"the master died; stderr:\n{self.process.stderr()[-3000:]}"
        assert self.proxy().ping() is True
        assert self.jsonrpc("ping")["result"] is True
        if self.msgpack_addr:
            assert self.msgpack_call("ping") == (None, True)
        if self.zerorpc_addr:
            assert self.zerorpc_call("ping") == ("OK", [True])
        self.assert_sentinel_intact()

    def assert_sentinel_intact(self):
        """Every sentinel item is still there, in order (popped and pushed back)."""
        p = self.proxy()
        n = len(SENTINEL_ITEMS)
        assert p.stack.getSize(SENTINEL_STACK) == n
        items = p.stack.popMany(SENTINEL_STACK, n)
        p.stack.pushMany(SENTINEL_STACK, list(reversed(items)))
        assert items == list(reversed(SENTINEL_ITEMS))

    def stack_size(self, name):
        """The size of stack ``name``, 0 if it does not exist."""
        p = self.proxy()
        return p.stack.getSize(name) if p.stack.hasStack(name) else 0


def unique(prefix):
    return f"hostile.{prefix}.{uuid.uuid4().hex[:8]}"


# --- HTTP ------------------------------------------------------------------------------------------


class HttpResponse:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def __repr__(self):
        return f"HttpResponse({self.status}, {self.headers}, {self.body[:200]!r})"


class RawHttp:
    """An HTTP/1.1 connection driven byte by byte: ``send`` anything, ``response()`` parses
    one answer (None once the server closed instead)."""

    def __init__(self, addr, timeout=GUARD):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        self.buf += chunk
        return bool(chunk)

    def response(self):
        """The next response, or None if the connection closed before a whole status line
        and head arrived."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.fullmatch(r"HTTP/1\.[01] (\d{3}) ?.*", lines[0])
        assert m, f"not an HTTP status line: {lines[0]!r}"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n:
                if not self._fill():
                    break
            body, self.buf = self.buf[:n], self.buf[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked_body()
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        return HttpResponse(int(m.group(1)), headers, body)

    def _chunked_body(self):
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                if not self._fill():
                    return body
            line, self.buf = self.buf.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            while len(self.buf) < size + 2:
                if not self._fill():
                    return body
            body, self.buf = body + self.buf[:size], self.buf[size + 2:]
            if size == 0:
                return body

    def closed(self, timeout=GUARD):
        """True once the server closes the connection (what it still sends is dropped)."""
        _, closed = read_until_closed(self.sock, timeout)
        return closed


def request_head(content_type="text/xml", length=None, extra=()):
    """A POST head for ``/``; ``extra`` lines are added as they are."""
    lines = ["POST / HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_post(addr, body, content_type="text/xml", extra=()):
    """One POST on a fresh connection; returns the HttpResponse (None if closed unanswered)."""
    with RawHttp(addr) as conn:
        conn.send(request_head(content_type, len(body), extra) + body)
        return conn.response()


def xml_call(method, *params):
    """An XML-RPC request document, as Python's client writes it."""
    return xmlrpc.client.dumps(params, methodname=method, allow_none=True).encode()


def xml_call_raw(method, params_xml):
    """An XML-RPC request document whose ``<params>`` content is given as bytes."""
    if isinstance(params_xml, str):
        params_xml = params_xml.encode()
    return (b'<?xml version="1.0"?><methodCall><methodName>' + method.encode()
            + b"</methodName><params>" + params_xml + b"</params></methodCall>")


def xml_param(value_xml):
    if isinstance(value_xml, str):
        value_xml = value_xml.encode()
    return b"<param><value>" + value_xml + b"</value></param>"


def xml_outcome(resp):
    """Decodes an XML-RPC answer: ``("ok", result)`` or ``("fault", (code, string))``."""
    assert resp is not None, "the server closed the connection without an answer"
    assert resp.status == 200, resp
    try:
        (result,), _ = xmlrpc.client.loads(resp.body, use_builtin_types=True)
    except xmlrpc.client.Fault as f:
        return "fault", (f.faultCode, f.faultString)
    return "ok", result


def xml_fault(resp):
    """The ``(code, string)`` of an XML-RPC fault answer (fails on anything else)."""
    kind, value = xml_outcome(resp)
    assert kind == "fault", f"expected a fault, got {value!r:.300}"
    return value


def json_post(addr, body):
    """Posts a JSON-RPC document (bytes or str); returns the HttpResponse."""
    if isinstance(body, str):
        body = body.encode()
    return http_post(addr, body, "application/json")


class Trickler:
    """Sends ``data`` one byte every ``interval`` seconds (a slow client) while watching for
    the server's answer; stops once the server says anything or closes. ``outcome()`` waits
    for that and returns ``(bytes the server sent, closed)``."""

    def __init__(self, sock, data, interval=0.5):
        self.sock, self.data, self.interval = sock, data, interval
        self.received = b""
        self.closed = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            sent = 0
            while True:
                readable = wait_for(self.sock, select.POLLIN, self.interval)
                if readable:
                    self.received, self.closed = read_until_closed(self.sock, GUARD)
                    return
                if sent < len(self.data):
                    self.sock.sendall(self.data[sent:sent + 1])
                    sent += 1
        except OSError:
            self.closed = True
        finally:
            self.done.set()

    def outcome(self, timeout):
        assert self.done.wait(timeout), "the server neither answered nor closed the slow client"
        return self.received, self.closed


def status_of(raw):
    """The status code of the first response in ``raw`` (None if there is none)."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None


def wait_all_closed(socks, timeout):
    """Waits until the server closed every socket in ``socks``; returns what each received."""
    received = {s: b"" for s in socks}
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    open_ = set(socks)
    deadline = time.monotonic() + timeout
    try:
        while open_:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(open_)} of {len(socks)} sockets still open "
                                     f"after {timeout} s")
            for key, _ in sel.select(left):
                s = key.fileobj
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[s] += chunk
                else:
                    sel.unregister(s)
                    open_.discard(s)
    finally:
        sel.close()
    return received


# --- WebSocket -------------------------------------------------------------------------------------

WS_TEXT, WS_BINARY, WS_CLOSE, WS_PING, WS_PONG, WS_CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


def _mask(payload, key):
    if not payload or key == b"\0\0\0\0":
        return payload
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def ws_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """One WebSocket frame as a client writes it; ``length`` overrides the announced length
    (the payload is then sent as given, usually empty)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 1 << 16:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _mask(payload, key)


class RawWs:
    """A WebSocket client over a plain socket: the upgrade, then frames as given."""

    def __init__(self, addr, timeout=GUARD):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the WebSocket upgrade"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, *args, **kw):
        self.send(ws_frame(*args, **kw))

    def _need(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv_frame(self):
        """``(fin, opcode, payload)`` of the next server frame; None once the socket closed."""
        if not self._need(2):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "the server masked a frame"
        n, off = b1 & 0x7F, 2
        if n == 126:
            if not self._need(4):
                return None
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            if not self._need(10):
                return None
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        if not self._need(off + n):
            return None
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def close_code(self):
        """Reads until the server's close frame; its status code (None for a close frame
        without one). Fails if the socket ends without a close frame."""
        while True:
            frame = self.recv_frame()
            assert frame is not None, "the server closed the socket without a close frame"
            _, opcode, payload = frame
            if opcode == WS_CLOSE:
                return struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None

    def call(self, method, params=(), id=1):
        """Sends one JSON-RPC call and reads frames (skipping pongs and others) until its answer."""
        doc = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": id})
        self.send_frame(WS_TEXT, doc.encode())
        return self.answer(id)

    def answer(self, id):
        """Reads messages (a big one arrives in fragments) until the answer to ``id``."""
        message = None
        while True:
            frame = self.recv_frame()
            assert frame is not None, "the server closed the WebSocket before answering"
            fin, opcode, payload = frame
            assert opcode != WS_CLOSE, f"closed before answering: {payload!r}"
            if opcode == WS_TEXT:
                message = payload
            elif opcode == WS_CONTINUATION and message is not None:
                message += payload
            else:
                continue
            if not fin:
                continue
            msg, message = json.loads(message), None
            if isinstance(msg, dict) and msg.get("id") == id:
                return msg


# --- MessagePack-RPC -------------------------------------------------------------------------------


class MsgpackConn:
    """A raw MessagePack-RPC connection to ``addr`` (host, port), or a Unix socket's path, or
    over ``sock``, a socket already connected (an ssl one, say)."""

    def __init__(self, addr=None, timeout=GUARD, sock=None):
        if sock is not None:
            self.sock = sock
        elif isinstance(addr, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(addr)
        else:
            self.sock = socket.create_connection(addr, timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.unpacker = msgpack.Unpacker(raw=False, timestamp=0)
        self.next_id = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    @staticmethod
    def request(msgid, method, *params):
        return msgpack.packb([0, msgid, method, list(params)], use_bin_type=True, datetime=False)

    def recv(self):
        """The next message, or None once the server closed."""
        while True:
            for msg in self.unpacker:
                return msg
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self.unpacker.feed(data)

    def call(self, method, *params):
        """``(error, result)`` of one call."""
        msgid = self.next_id
        self.next_id += 1
        self.send(self.request(msgid, method, *params))
        while True:
            msg = self.recv()
            assert msg is not None, "the server closed the connection before answering"
            if msg[0] == 1 and msg[1] == msgid:
                return msg[2], msg[3]

    def closed(self, timeout=GUARD):
        _, closed = read_until_closed(self.sock, timeout)
        return closed


# --- ZMTP 3 and zerorpc ----------------------------------------------------------------------------

ZMTP_SIGNATURE = b"\xff" + b"\0" * 8 + b"\x7f"


def zmtp_greeting(signature=ZMTP_SIGNATURE, major=3, minor=0, mechanism=b"NULL", as_server=0):
    """A 64-byte ZMTP greeting."""
    return (signature + bytes([major, minor]) + mechanism.ljust(20, b"\0") + bytes([as_server])
            + b"\0" * 31)


def zmtp_frame(body, more=False, command=False, length=None):
    """One ZMTP frame; ``length`` overrides the announced length (always the long form then)."""
    flags = (0x01 if more else 0) | (0x04 if command else 0)
    n = len(body) if length is None else length
    if length is None and n < 256:
        return bytes([flags, n]) + body
    return bytes([flags | 0x02]) + struct.pack(">Q", n) + body


def zmtp_ready(socket_type=b"DEALER"):
    def prop(name, value):
        return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value

    return zmtp_frame(b"\x05READY" + prop(b"Socket-Type", socket_type) + prop(b"Identity", b""),
                      command=True)


def zerorpc_event(name, args, response_to=None):
    """A packed zerorpc v3 event; returns ``(message_id, bytes)``."""
    mid = uuid.uuid4().hex.encode()
    header = {"message_id": mid, "v": 3}
    if response_to is not None:
        header["response_to"] = response_to
    return mid, msgpack.packb([header, name, args], use_bin_type=True)


class Zmtp:
    """A raw ZMTP 3 DEALER connection: greeting, READY, multipart messages, zerorpc calls."""

    def __init__(self, addr, timeout=GUARD):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.events = []  # zerorpc events received but not yet claimed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the ZMTP connection")
            self.buf += chunk

    def handshake(self):
        self.send(zmtp_greeting())
        self._need(64)
        greeting, self.buf = self.buf[:64], self.buf[64:]
        assert greeting[:1] == b"\xff" and greeting[9:10] == b"\x7f", greeting
        assert greeting[10] == 3, greeting
        self.send(zmtp_ready())
        command, body = self.frame()
        assert command and body.startswith(b"\x05READY"), body
        return self

    def frame(self):
        """``(is_command, body)`` of the next frame; ``self.more`` tells whether more follow."""
        self._need(2)
        flags = self.buf[0]
        if flags & 0x02:
            self._need(9)
            n, off = struct.unpack(">Q", self.buf[1:9])[0], 9
        else:
            n, off = self.buf[1], 2
        self._need(off + n)
        body, self.buf = self.buf[off:off + n], self.buf[off + n:]
        self.more = bool(flags & 0x01)
        return bool(flags & 0x04), body

    def recv_message(self):
        """The next multipart message (commands such as PING are answered or skipped)."""
        frames = []
        while True:
            command, body = self.frame()
            if command:
                if body.startswith(b"\x04PING"):
                    ctx = body[5 + 2:]
                    self.send(zmtp_frame(b"\x04PONG" + ctx, command=True))
                continue
            frames.append(body)
            if not self.more:
                return frames

    def send_event(self, name, args, response_to=None):
        mid, event = zerorpc_event(name, args, response_to)
        self.send(zmtp_frame(b"", more=True) + zmtp_frame(event))
        return mid

    def recv_event(self):
        """The next zerorpc event ``[header, name, args]``, answering heartbeats."""
        while True:
            frames = self.recv_message()
            header, name, args = msgpack.unpackb(frames[-1], raw=False)
            if name == "_zpc_hb":
                self.send_event("_zpc_hb", [0], response_to=header.get("response_to"))
                continue
            return header, name, args

    def reply_to(self, mid):
        """Waits for the OK/ERR answering request ``mid``; ``(name, args)``."""
        while True:
            for i, (header, name, args) in enumerate(self.events):
                if header.get("response_to") == mid:
                    del self.events[i]
                    return name, args
            self.events.append(self.recv_event())

    def call(self, method, args):
        return self.reply_to(self.send_event(method, args))
