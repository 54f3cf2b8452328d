"""Hostile input against the real binaries: what a broken or malicious client can send on
every listener (HTTP with XML-RPC, JSON-RPC and WebSocket; MessagePack-RPC; zerorpc over
ZMTP 3), and what must hold afterwards:

1. the server process is alive;
2. a well-behaved client on another connection still gets right answers;
3. the hostile client got the protocol's error where the protocol has one (an HTTP status,
   an XML-RPC fault, a JSON-RPC error object, a MessagePack-RPC error, a zerorpc ERR, a
   WebSocket close code), or at least a closed connection;
4. on the master, no stored item was lost (a sentinel stack pushed at start is checked,
   item by item, after every case) and nothing the hostile input asked for ran.

Where memory must stay bounded the server's VmRSS is read before and after and its growth
held under a generous bound (200 MiB). No test asserts on timing: timeouts are safety nets
and waits are for conditions. Two guards are chosen below a server deadline so that "closed
at once" cannot be confused with "closed by the timeout": ``AT_ONCE`` (below the 30 s
body/frame timeout) and ``HANDSHAKE_AT_ONCE`` (below the 10 s ZMTP handshake deadline).

The HTTP header and body timeouts (30 s) have no flag to lower them, so the cases that wait
for them share one dedicated master: the first test of the file starts the slow clients and
the last tests check their outcome, by when the other tests have used most of the wait.
"""

import functools
import json
import math
import random
import re
import socket
import threading
import time
import xmlrpc.client
import zlib

import msgpack
import pytest

from hostile_helpers import (
    GUARD,
    MIB,
    WS_CLOSE,
    WS_CONTINUATION,
    WS_PING,
    WS_TEXT,
    ExampleServer,
    Master,
    MsgpackConn,
    RawHttp,
    RawWs,
    Trickler,
    Zmtp,
    half_close,
    http_post,
    json_post,
    read_until_closed,
    request_head,
    send_ignoring_close,
    send_until_stalled,
    status_of,
    unique,
    wait_all_closed,
    wait_until,
    ws_frame,
    xml_call,
    xml_call_raw,
    xml_fault,
    xml_outcome,
    xml_param,
    zmtp_frame,
    zmtp_greeting,
    zerorpc_event,
)

LIMIT_EXCEEDED = -32000  # rpcs-core Fault::LIMIT_EXCEEDED
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
MAX_REQUEST_BYTES = 16 * MIB  # ServerConfig::max_request_bytes, also frames and messages
HEAD_AND_BODY_TIMEOUT = 30  # ServerConfig::header_timeout and body_timeout (no flag)
AT_ONCE = 20.0  # below the 30 s body/frame timeout
HANDSHAKE_AT_ONCE = 8.0  # below the 10 s ZMTP handshake deadline
# What a client that never reads may write: ten times what loopback socket buffers hold, so a
# server that keeps reading (instead of holding the client back) is seen.
FLOOD_BYTES = 32 * MIB


# --- servers -----------------------------------------------------------------------------------


def start_master(bin_dir, tmp_path_factory, name, *flags, listeners=("http", "msgpack", "zerorpc")):
    argv = [bin_dir / "rpcs", "master", "--backend", "memory"]
    if "http" in listeners:
        argv += ["--listen", "127.0.0.1:0"]
    if "msgpack" in listeners:
        argv += ["--msgpack", "127.0.0.1:0"]
    if "zerorpc" in listeners:
        argv += ["--zerorpc", "tcp://127.0.0.1:0"]
    d = tmp_path_factory.mktemp(name)
    return Master(argv + [str(f) for f in flags], d / "stderr.log").seed()


@pytest.fixture(scope="module")
def master(bin_dir, tmp_path_factory):
    """The master with default limits on HTTP, MessagePack-RPC and zerorpc, sentinel seeded."""
    m = start_master(bin_dir, tmp_path_factory, "hostile-master")
    yield m
    m.stop()


@pytest.fixture(scope="module")
def example(bin_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-example")
    e = ExampleServer([bin_dir / "example-server", "--listen", "127.0.0.1:0",
                       "--msgpack", "127.0.0.1:0", "--zerorpc", "tcp://127.0.0.1:0"],
                      d / "stderr.log")
    yield e
    e.stop()


# --- HTTP: clients too slow for the header and body timeouts -----------------------------------

HALF_SENT = 1000


class TimeoutProbes:
    """On a dedicated master: one client trickling its request head a byte at a time, one
    trickling its body, and HALF_SENT connections that each sent part of a head and stopped."""

    def __init__(self, server):
        self.server = server
        self.deadline = time.monotonic() + HEAD_AND_BODY_TIMEOUT + 60
        self.rss_before = server.rss()
        addr = server.http_addr
        head = socket.create_connection(addr, timeout=GUARD)
        self.slow_head = Trickler(head, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 4000)
        body = socket.create_connection(addr, timeout=GUARD)
        body.sendall(request_head(length=4000))
        self.slow_body = Trickler(body, b"<" * 4000)
        self.half_sent = []
        for _ in range(HALF_SENT):
            s = socket.create_connection(addr, timeout=GUARD)
            s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
            self.half_sent.append(s)

    def left(self):
        return max(1.0, self.deadline - time.monotonic())

    def close(self):
        for s in self.half_sent + [self.slow_head.sock, self.slow_body.sock]:
            s.close()


@pytest.fixture(scope="module")
def timeout_probes(bin_dir, tmp_path_factory):
    server = start_master(bin_dir, tmp_path_factory, "hostile-timeouts", listeners=("http",))
    probes = TimeoutProbes(server)
    yield probes
    probes.close()
    server.stop()


def test_http_thousand_half_sent_requests_leave_the_server_serving(timeout_probes):
    """Runs first: starts the slow clients, whose outcome the last tests of the file check."""
    timeout_probes.server.assert_serving()
    timeout_probes.server.assert_rss_growth_bounded(timeout_probes.rss_before)


# --- HTTP: heads, lengths, encodings -----------------------------------------------------------


def huge_header_line():
    return request_head(length=0, extra=["X-Big: " + "a" * MIB])


def many_headers():
    return request_head(length=0, extra=[f"X-H{i}: v" for i in range(5000)])


def huge_request_line():
    return b"POST /" + b"a" * MIB + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize("make_head", [huge_header_line, many_headers, huge_request_line])
def test_http_oversized_head_is_refused(master, make_head):
    with RawHttp(master.http_addr) as conn:
        threading.Thread(target=send_ignoring_close, args=(conn.sock, make_head()),
                         daemon=True).start()
        resp = conn.response()
        if resp is not None:
            assert resp.status in (400, 414, 431), resp
        assert conn.closed()
    master.assert_serving()


def test_http_body_shorter_than_its_content_length_runs_nothing(master):
    name = unique("short-body")
    body = xml_call("stack.push", name, "never")
    with RawHttp(master.http_addr) as conn:
        conn.send(request_head(length=len(body) + 100) + body)
        half_close(conn.sock)
        resp = conn.response()
        if resp is not None:
            assert resp.status == 400, resp
        assert conn.closed()
    assert master.stack_size(name) == 0
    master.assert_serving()


@pytest.mark.parametrize("length", [MAX_REQUEST_BYTES + 1, 64 * MIB, 2**63 - 1])
def test_http_content_length_over_the_limit_gets_413_before_any_body(master, length):
    with RawHttp(master.http_addr) as conn:
        conn.send(request_head(length=length))
        resp = conn.response()
        assert resp is not None and resp.status == 413, resp
    master.assert_serving()


def test_http_unparseable_content_length_gets_400(master):
    with RawHttp(master.http_addr) as conn:
        conn.send(request_head(length="99999999999999999999999999"))
        resp = conn.response()
        assert resp is not None and resp.status == 400, resp
    master.assert_serving()


def test_http_chunked_body_over_the_limit_gets_413(master):
    before = master.rss()
    chunk = b"100000\r\n" + b"a" * MIB + b"\r\n"
    data = (request_head(extra=["Transfer-Encoding: chunked"])
            + chunk * (MAX_REQUEST_BYTES // MIB + 1) + b"0\r\n\r\n")
    with RawHttp(master.http_addr) as conn:
        threading.Thread(target=send_ignoring_close, args=(conn.sock, data), daemon=True).start()
        resp = conn.response()
        assert resp is not None and resp.status == 413, resp
    master.assert_rss_growth_bounded(before)
    master.assert_serving()


SMUGGLING_HEADS = {
    "content-length then chunked": ["Content-Length: {n}", "Transfer-Encoding: chunked"],
    "chunked then content-length": ["Transfer-Encoding: chunked", "Content-Length: {n}"],
    "chunked not last": ["Transfer-Encoding: chunked, identity", "Content-Length: {n}"],
    "two content-lengths": ["Content-Length: 5", "Content-Length: {n}"],
}


@pytest.mark.parametrize("lines", SMUGGLING_HEADS.values(), ids=SMUGGLING_HEADS.keys())
def test_http_ambiguous_framing_is_never_two_requests(master, lines):
    """The chunked reading of the body ends early and leaves a second request behind (a push
    onto ``smuggled``); the Content-Length reading makes it all one body. Either way the
    server must not serve that second request: it answers once (or 400) and closes."""
    first, smuggled = unique("framing-first"), unique("framing-smuggled")
    inner = xml_call("stack.push", first, 1)
    second_body = xml_call("stack.push", smuggled, 1)
    second = request_head(length=len(second_body)) + second_body
    body = f"{len(inner):x}\r\n".encode() + inner + b"\r\n0\r\n\r\n" + second
    head = request_head(extra=[line.format(n=len(body)) for line in lines])
    with RawHttp(master.http_addr) as conn:
        conn.send(head + body)
        responses = []
        while (resp := conn.response()) is not None:
            responses.append(resp)
        assert len(responses) <= 1, responses
        if responses:
            assert responses[0].status in (200, 400), responses
    assert master.stack_size(smuggled) == 0
    master.assert_serving()


@pytest.mark.parametrize("size_line", [b"zz", b"f" * 20, b"-1", b""],
                         ids=["not hex", "overflow", "negative", "empty"])
def test_http_bad_chunk_size_gets_400(master, size_line):
    name = unique("bad-chunk")
    body = xml_call("stack.push", name, 1)
    data = (request_head(extra=["Transfer-Encoding: chunked"])
            + size_line + b"\r\n" + body + b"\r\n0\r\n\r\n")
    with RawHttp(master.http_addr) as conn:
        conn.send(data)
        resp = conn.response()
        assert resp is not None and resp.status == 400, resp
    assert master.stack_size(name) == 0
    master.assert_serving()


@functools.lru_cache(maxsize=None)
def compression_bomb(encoding, size=256 * MIB):
    """``size`` zero bytes compressed (about 1000:1) as gzip or zlib-wrapped deflate."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    zeros = bytes(MIB)
    return b"".join([c.compress(zeros) for _ in range(size // MIB)] + [c.flush()])


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_http_compression_bomb_gets_413(master, encoding):
    bomb = compression_bomb(encoding)
    assert len(bomb) < MAX_REQUEST_BYTES
    before = master.rss()
    resp = http_post(master.http_addr, bomb, extra=[f"Content-Encoding: {encoding}"])
    assert resp is not None and resp.status == 413, resp
    master.assert_rss_growth_bounded(before)
    master.assert_serving()


def test_http_pipelined_flood_is_answered_in_order_or_closed(master):
    """2000 pushes in one write: each answer is the stack's new size, so answers in order
    read 1, 2, 3, ...; a server may also close early, but never answer out of order."""
    name, n = unique("pipelined"), 2000
    flood = b"".join(request_head(length=len(b)) + b
                     for b in (xml_call("stack.push", name, i) for i in range(n)))
    answers = []
    with RawHttp(master.http_addr) as conn:
        threading.Thread(target=send_ignoring_close, args=(conn.sock, flood), daemon=True).start()
        while len(answers) < n and (resp := conn.response()) is not None:
            kind, value = xml_outcome(resp)
            assert kind == "ok", value
            answers.append(value)
    assert answers == list(range(1, len(answers) + 1))
    assert master.stack_size(name) >= len(answers)
    if len(answers) == n:
        assert master.proxy().stack.popMany(name, n) == list(reversed(range(n)))
    master.assert_serving()


# --- XML-RPC -----------------------------------------------------------------------------------


def billion_laughs(name):
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    return (f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]>'
            f"<methodCall><methodName>stack.push</methodName><params>"
            f"<param><value>{name}</value></param><param><value>&lol9;</value></param>"
            f"</params></methodCall>").encode()


def external_entity(name):
    return (f'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            f"<methodCall><methodName>stack.push</methodName><params>"
            f"<param><value>{name}</value></param><param><value>&xxe;</value></param>"
            f"</params></methodCall>").encode()


def parameter_entity(name):
    return (f'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY % pe SYSTEM '
            f'"http://127.0.0.1:9/evil.dtd"> %pe;]>'
            f"<methodCall><methodName>stack.push</methodName><params>"
            f"<param><value>{name}</value></param><param><value>x</value></param>"
            f"</params></methodCall>").encode()


def undeclared_entity(name):
    return xml_call_raw("stack.push", xml_param(name) + xml_param("&xxe;"))


@pytest.mark.parametrize("make_doc", [billion_laughs, external_entity, parameter_entity,
                                      undeclared_entity])
def test_xmlrpc_entities_and_doctype_get_a_fault_without_expansion(master, make_doc):
    name = unique("entity")
    before = master.rss()
    resp = http_post(master.http_addr, make_doc(name))
    code, message = xml_fault(resp)
    assert code == PARSE_ERROR, message
    assert b"lollol" not in resp.body and b"root:" not in resp.body
    assert master.stack_size(name) == 0
    master.assert_rss_growth_bounded(before)
    master.assert_serving()


NESTING = {
    "array": ("<value><array><data>", "<value>x</value>", "</data></array></value>"),
    "struct": ("<value><struct><member><name>a</name>", "<value>x</value>",
               "</member></struct></value>"),
}


@pytest.mark.parametrize("kind", NESTING)
def test_xmlrpc_100k_deep_nesting_gets_a_limit_fault(master, kind):
    name, depth = unique("deep"), 100_000
    open_, inner, close = NESTING[kind]
    value = "<param>" + open_ * depth + inner + close * depth + "</param>"
    doc = xml_call_raw("stack.push", xml_param(name) + value.encode())
    assert len(doc) < MAX_REQUEST_BYTES
    code, message = xml_fault(http_post(master.http_addr, doc))
    assert code == LIMIT_EXCEEDED, message
    assert master.stack_size(name) == 0
    master.assert_serving()


def test_xmlrpc_million_element_array_is_answered_or_faulted(example):
    n = 10**6
    doc = xml_call_raw("remote_repr", b"<param><value><array><data>" + b"<value>1</value>" * n
                       + b"</data></array></value></param>")
    assert len(doc) < MAX_REQUEST_BYTES
    before = example.rss()
    resp = http_post(example.http_addr, doc)
    assert resp is not None and resp.status == 200, resp
    if b"<fault>" in resp.body:
        xml_fault(resp)
    else:  # counted rather than parsed: Python's parser takes seconds over 10^6 values
        assert resp.body.startswith(b'<?xml version="1.0"?>\n<methodResponse><params>')
        assert len(re.findall(rb"<value>(?:<string>)?1(?:</string>)?</value>", resp.body)) == n
    example.assert_rss_growth_bounded(before)
    example.assert_serving()


INVALID_UTF8 = {
    "bad bytes": b"\xff\xfe",
    "overlong": b"\xc0\xaf",
    "surrogate": b"\xed\xa0\x80",
    "truncated": b"caf\xc3",
    "beyond U+10FFFF": b"\xf4\x90\x80\x80",
}


@pytest.mark.parametrize("raw", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
def test_xmlrpc_invalid_utf8_in_a_string_gets_a_fault(master, raw):
    name = unique("utf8")
    doc = xml_call_raw("stack.push", xml_param(name) + xml_param(b"<string>" + raw + b"</string>"))
    xml_fault(http_post(master.http_addr, doc))
    assert master.stack_size(name) == 0
    master.assert_serving()


def test_xmlrpc_invalid_utf8_in_the_method_name_gets_a_fault(master):
    doc = b'<?xml version="1.0"?><methodCall><methodName>pi\xffng</methodName></methodCall>'
    xml_fault(http_post(master.http_addr, doc))
    master.assert_serving()


BAD_DATES = [
    "202é112T05:17:00",  # a two-byte character where a digit should be
    "２０２６1121T05:17:00",  # full-width digits
    "20261321T05:17:00",  # month 13
    "20260230T05:17:00",  # 30 February
    "20250229T05:17:00",  # 29 February of a common year
    "20261121T25:17:00",
    "20261121T05:60:00",
    "20261121T05:17:00.",
    "2026112105:17:00",
    "20261121",
    "",
    "T",
]


@pytest.mark.parametrize("text", BAD_DATES)
def test_xmlrpc_bad_datetime_gets_a_fault(master, text):
    name = unique("date")
    doc = xml_call_raw("stack.push", xml_param(name)
                       + xml_param(f"<dateTime.iso8601>{text}</dateTime.iso8601>"))
    xml_fault(http_post(master.http_addr, doc))
    assert master.stack_size(name) == 0
    master.assert_serving()


@pytest.mark.parametrize("text", ["!!!!", "a", "ab=c", "YéQ="])
def test_xmlrpc_bad_base64_gets_a_fault(master, text):
    name = unique("base64")
    doc = xml_call_raw("stack.push", xml_param(name) + xml_param(f"<base64>{text}</base64>"))
    xml_fault(http_post(master.http_addr, doc))
    assert master.stack_size(name) == 0
    master.assert_serving()


MULTICALL_PING = (b"<value><struct><member><name>methodName</name><value>ping</value></member>"
                  b"<member><name>params</name><value><array><data/></array></value></member>"
                  b"</struct></value>")


def test_xmlrpc_multicall_of_100k_calls_gets_one_limit_fault(master):
    doc = xml_call_raw("system.multicall", b"<param><value><array><data>"
                       + MULTICALL_PING * 100_000 + b"</data></array></value></param>")
    assert len(doc) < MAX_REQUEST_BYTES
    code, message = xml_fault(http_post(master.http_addr, doc))
    assert code == LIMIT_EXCEEDED, message
    master.assert_serving()


def test_xmlrpc_multicall_over_the_limit_runs_none_of_its_calls(master):
    store = unique("multicall-count")
    calls = [{"methodName": "storage.increment", "params": [store, "n"]}] * 1001
    with pytest.raises(xmlrpc.client.Fault) as fault:
        master.proxy().system.multicall(calls)
    assert fault.value.faultCode == LIMIT_EXCEEDED
    assert master.proxy().storage.hasStorage(store) is False
    master.assert_serving()


def test_xmlrpc_nested_multicall_faults_that_entry_only(master):
    inner_stack, outer_stack = unique("nested-inner"), unique("nested-outer")
    results = master.proxy().system.multicall([
        {"methodName": "system.multicall",
         "params": [[{"methodName": "stack.push", "params": [inner_stack, 1]}]]},
        {"methodName": "stack.push", "params": [outer_stack, 1]},
    ])
    assert isinstance(results[0], dict) and results[0]["faultCode"] == INVALID_REQUEST, results
    assert results[1] == [1]
    assert master.stack_size(inner_stack) == 0
    assert master.stack_size(outer_stack) == 1
    master.assert_serving()


# --- JSON-RPC ----------------------------------------------------------------------------------

JSON_NESTING = {"array": ("[", "]"), "object": ('{"a":', "}")}


@pytest.mark.parametrize("depth", [100, 100_000])
@pytest.mark.parametrize("kind", JSON_NESTING)
def test_jsonrpc_deep_nesting_gets_an_error(master, kind, depth):
    """Past the value depth limit (64), and past serde_json's own recursion limit (128):
    members are read as raw text first, so the call's id comes back either way."""
    name = unique("json-deep")
    open_, close = JSON_NESTING[kind]
    doc = (f'{{"jsonrpc":"2.0","method":"stack.push","params":["{name}",'
           + open_ * depth + "1" + close * depth + '],"id":1}')
    resp = json_post(master.http_addr, doc)
    assert resp.status == 200, resp
    answer = json.loads(resp.body)
    assert "result" not in answer and "code" in answer["error"], answer
    assert answer["id"] == 1, answer
    assert master.stack_size(name) == 0
    master.assert_serving()


def test_jsonrpc_batch_of_100k_gets_one_limit_error_and_runs_nothing(master):
    store = unique("json-batch")
    entry = json.dumps({"jsonrpc": "2.0", "method": "storage.increment",
                        "params": [store, "n"], "id": 1})
    resp = json_post(master.http_addr, "[" + ",".join([entry] * 100_000) + "]")
    assert resp.status == 200, resp
    answer = json.loads(resp.body)
    assert isinstance(answer, dict), f"expected one error object, got {str(answer)[:200]}"
    assert answer["error"]["code"] == LIMIT_EXCEEDED and answer["id"] is None, answer
    assert master.proxy().storage.hasStorage(store) is False
    master.assert_serving()


@pytest.mark.parametrize("bad_id", ['{"a":1}', "[1]", "[]", "true"])
def test_jsonrpc_bad_id_gets_invalid_request_with_null_id(master, bad_id):
    name = unique("json-id")
    doc = f'{{"jsonrpc":"2.0","method":"stack.push","params":["{name}",1],"id":{bad_id}}}'
    answer = json.loads(json_post(master.http_addr, doc).body)
    assert answer.get("error", {}).get("code") == INVALID_REQUEST, answer
    assert answer["id"] is None, answer
    assert master.stack_size(name) == 0
    master.assert_serving()


@pytest.mark.parametrize("id_text", ["123456789012345678901234567890",
                                     "-123456789012345678901234567890",
                                     "18446744073709551616"])
def test_jsonrpc_id_beyond_64_bits_is_echoed_exactly(master, id_text):
    doc = f'{{"jsonrpc":"2.0","method":"ping","id":{id_text}}}'
    body = json_post(master.http_addr, doc).body.decode()
    m = re.search(r'"id"\s*:\s*([^,}\s]+)', body)
    assert m and m.group(1) == id_text, body
    assert json.loads(body)["result"] is True
    master.assert_serving()


@pytest.mark.parametrize("value,text", [(math.nan, "NaN"), (math.inf, "Infinity"),
                                        (-math.inf, "-Infinity")])
def test_jsonrpc_shows_non_finite_double_from_messagepack_as_string(master, value, text):
    name = unique("non-finite")
    assert master.msgpack_call("stack.push", name, value) == (None, 1)
    answer = master.jsonrpc("stack.pop", name)
    assert answer.get("result") == text, answer
    master.assert_serving()


# --- WebSocket ---------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [MAX_REQUEST_BYTES + 1, 2**40, 2**63 - 1],
                         ids=["limit+1", "2^40", "2^63-1"])
def test_ws_frame_announcing_huge_length_closes_1009(master, length):
    before = master.rss()
    with RawWs(master.http_addr) as ws:
        ws.send(ws_frame(WS_TEXT, length=length))
        assert ws.close_code() == 1009
    master.assert_rss_growth_bounded(before)
    master.assert_serving()


def test_ws_fragments_past_the_message_limit_close_1009(master):
    before = master.rss()
    piece = b"a" * MIB
    with RawWs(master.http_addr) as ws:
        ws.send(ws_frame(WS_TEXT, piece, fin=False))
        for _ in range(MAX_REQUEST_BYTES // MIB):
            ws.send(ws_frame(WS_CONTINUATION, piece, fin=False))
        assert ws.close_code() == 1009
    master.assert_rss_growth_bounded(before)
    master.assert_serving()


def test_ws_flood_of_empty_fragments_is_one_message_or_closed(master):
    doc = json.dumps({"jsonrpc": "2.0", "method": "ping", "params": [], "id": 5}).encode()
    flood = (ws_frame(WS_TEXT, doc[:1], fin=False)
             + ws_frame(WS_CONTINUATION, b"", fin=False) * 100_000
             + ws_frame(WS_CONTINUATION, doc[1:], fin=True))
    with RawWs(master.http_addr) as ws:
        threading.Thread(target=send_ignoring_close, args=(ws.sock, flood), daemon=True).start()
        while True:
            frame = ws.recv_frame()
            assert frame is not None, "closed without a close frame"
            _, opcode, payload = frame
            if opcode == WS_TEXT:
                assert json.loads(payload) == {"jsonrpc": "2.0", "id": 5, "result": True}
                break
            if opcode == WS_CLOSE:
                assert payload[:2] in (b"\x03\xf0", b"\x03\xf1"), payload  # 1008, 1009
                break
    master.assert_serving()


def test_ws_ping_flood_from_a_client_that_never_reads_is_held_back(master):
    """Pings whose pongs the client never reads: the server must not buffer one pong per
    ping. Once its write buffer is full it keeps the latest pong only (RFC 6455 5.5.3
    allows answering just the most recent ping), so memory stays bounded."""
    before = master.rss()
    pings = b"".join(ws_frame(WS_PING, random.randbytes(125)) for _ in range(1000))
    with RawWs(master.http_addr) as ws:
        send_until_stalled(ws.sock, pings, max_bytes=FLOOD_BYTES)
        master.assert_rss_growth_bounded(before)
        master.assert_serving()
        assert ws.call("ping")["result"] is True
    master.assert_serving()


def test_ws_invalid_utf8_text_closes_1007(master):
    with RawWs(master.http_addr) as ws:
        ws.send_frame(WS_TEXT, b'{"jsonrpc":"2.0","method":"ping","id":"\xff\xfe"}')
        assert ws.close_code() == 1007
    master.assert_serving()


def test_ws_invalid_utf8_split_across_fragments_closes_1007(master):
    with RawWs(master.http_addr) as ws:
        ws.send_frame(WS_TEXT, b'"caf\xc3', fin=False)
        ws.send_frame(WS_CONTINUATION, b'\x28"', fin=True)  # not a continuation byte
        assert ws.close_code() == 1007
    master.assert_serving()


BAD_FRAMES = {
    "reserved bits": ws_frame(WS_TEXT, b"{}", rsv=0b100),
    "unmasked": ws_frame(WS_TEXT, b"{}", mask=False),
    "unknown opcode": ws_frame(0x3, b"{}"),
    "fragmented ping": ws_frame(WS_PING, b"x", fin=False),
    "ping over 125 bytes": ws_frame(WS_PING, b"x" * 126),
    "continuation first": ws_frame(WS_CONTINUATION, b"{}"),
    "text inside a fragmented message": ws_frame(WS_TEXT, b"[", fin=False) + ws_frame(WS_TEXT, b"]"),
    "close code 1005 on the wire": ws_frame(WS_CLOSE, b"\x03\xed"),
}


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_ws_bad_frame_closes_1002(master, frame):
    with RawWs(master.http_addr) as ws:
        ws.send(frame)
        assert ws.close_code() == 1002
    master.assert_serving()


def big_parameter(master, size=512 * 1024):
    """A storage parameter of ``size`` bytes: a request of 60 bytes gets an answer of ``size``."""
    store = unique("big")
    master.proxy().storage.setParameter(store, "big", "x" * size)
    return store


def test_ws_client_that_never_reads_keeps_memory_bounded(master):
    store = big_parameter(master)
    request = ws_frame(WS_TEXT, json.dumps({"jsonrpc": "2.0", "method": "storage.getParameter",
                                            "params": [store, "big"], "id": 1}).encode())
    before = master.rss()
    with RawWs(master.http_addr) as ws:
        written = send_until_stalled(ws.sock, request * 100, max_bytes=FLOOD_BYTES)
        assert written < FLOOD_BYTES, "the server never stopped reading"
        master.assert_rss_growth_bounded(before)
        master.assert_serving()
        for _ in range(3):  # what was queued is still answered right
            assert ws.answer(1)["result"] == "x" * (512 * 1024)
    master.assert_serving()


# --- MessagePack-RPC ---------------------------------------------------------------------------

PING_HEAD = b"\x94\x00\x01\xa4ping"  # [0, 1, "ping", ...
HUGE_PREFIXES = {
    "str32 method": b"\x94\x00\x01\xdb\xff\xff\xff\xff",
    "bin32 param": PING_HEAD + b"\x91\xc6\xff\xff\xff\xff",
    "array32 params": PING_HEAD + b"\xdd\xff\xff\xff\xff",
    "map32 param": PING_HEAD + b"\x91\xdf\xff\xff\xff\xff",
    "ext32 param": PING_HEAD + b"\x91\xc9\xff\xff\xff\xff\x01",
    "array32 message": b"\xdd\xff\xff\xff\xff",
}


@pytest.mark.parametrize("prefix", HUGE_PREFIXES.values(), ids=HUGE_PREFIXES.keys())
def test_msgpack_length_prefix_claiming_4gib_closes_at_once(master, prefix):
    before = master.rss()
    with MsgpackConn(master.msgpack_addr) as conn:
        conn.send(prefix + b"\x00" * 64)
        assert conn.closed(AT_ONCE)
    master.assert_rss_growth_bounded(before)
    master.assert_serving()


@pytest.mark.parametrize("cut", [1, 2, 5, -1])
def test_msgpack_truncated_request_then_end_of_stream_is_not_run(master, cut):
    name = unique("truncated")
    request = MsgpackConn.request(1, "stack.push", name, "never")
    with MsgpackConn(master.msgpack_addr) as conn:
        conn.send(request[:cut])
        half_close(conn.sock)
        data, closed = read_until_closed(conn.sock)
        assert closed and data == b""
    assert master.stack_size(name) == 0
    master.assert_serving()


@pytest.mark.parametrize("seed", range(5))
def test_msgpack_random_bytes_get_only_well_formed_answers(master, seed):
    junk = random.Random(seed).randbytes(8192)
    with MsgpackConn(master.msgpack_addr) as conn:
        conn.send(junk)
        half_close(conn.sock)
        data, closed = read_until_closed(conn.sock)
        assert closed
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(data)
    for message in unpacker:
        assert isinstance(message, list) and len(message) == 4 and message[0] == 1, message
    master.assert_serving()


@pytest.mark.parametrize("depth", [100, 100_000])
def test_msgpack_deep_nesting_gets_an_error_or_closes(master, depth):
    name = unique("msgpack-deep")
    request = (b"\x94\x00\x01" + msgpack.packb("stack.push") + b"\x92" + msgpack.packb(name)
               + b"\x91" * depth + b"\x01")
    with MsgpackConn(master.msgpack_addr) as conn:
        conn.send(request)
        answer = conn.recv()
        if answer is not None:
            assert answer[:2] == [1, 1] and answer[2] is not None and answer[3] is None, answer
    assert master.stack_size(name) == 0
    master.assert_serving()


def test_msgpack_flood_without_reading_keeps_memory_bounded(master):
    store = big_parameter(master)
    request = MsgpackConn.request(1, "storage.getParameter", store, "big")
    before = master.rss()
    with MsgpackConn(master.msgpack_addr) as conn:
        written = send_until_stalled(conn.sock, request * 100, max_bytes=FLOOD_BYTES)
        assert written < FLOOD_BYTES, "the server never stopped reading"
        master.assert_rss_growth_bounded(before)
        master.assert_serving()
        for _ in range(3):  # what was queued is still answered right
            assert conn.recv() == [1, 1, None, "x" * (512 * 1024)]
    master.assert_serving()


# --- zerorpc / ZMTP 3 --------------------------------------------------------------------------

BAD_GREETINGS = {
    "http text": b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + b"\r\n" * 40,
    "wrong signature": b"\x00" * 64,
    "version 2": zmtp_greeting(major=2),
    "mechanism CURVE": zmtp_greeting(mechanism=b"CURVE"),
    "mechanism PLAIN": zmtp_greeting(mechanism=b"PLAIN"),
}


@pytest.mark.parametrize("greeting", BAD_GREETINGS.values(), ids=BAD_GREETINGS.keys())
def test_zmtp_bad_greeting_is_refused_at_once(master, greeting):
    with socket.create_connection(master.zerorpc_addr, timeout=GUARD) as sock:
        sock.sendall(greeting)
        data, closed = read_until_closed(sock, HANDSHAKE_AT_ONCE)
        assert closed, "the server kept a connection whose greeting it cannot accept"
    # All it may have said is its own greeting and perhaps an ERROR: never READY.
    assert b"READY" not in data
    master.assert_serving()


def test_zmtp_truncated_greeting_then_end_of_stream_is_closed(master):
    with socket.create_connection(master.zerorpc_addr, timeout=GUARD) as sock:
        sock.sendall(zmtp_greeting()[:30])
        half_close(sock)
        _, closed = read_until_closed(sock)
        assert closed
    master.assert_serving()


@pytest.mark.parametrize("command", [False, True], ids=["message", "command"])
@pytest.mark.parametrize("length", [2**62, 2**40, 2**32, 2**64 - 1],
                         ids=["2^62", "2^40", "2^32", "2^64-1"])
def test_zmtp_frame_claiming_huge_length_closes_at_once(master, length, command):
    before = master.rss()
    with Zmtp(master.zerorpc_addr) as z:
        z.handshake()
        z.send(zmtp_frame(b"", command=command, length=length) + b"\x00" * 64)
        _, closed = read_until_closed(z.sock, AT_ONCE)
        assert closed
    master.assert_rss_growth_bounded(before)
    master.assert_serving()


@pytest.mark.parametrize("seed", range(4))
def test_zmtp_random_bytes_after_handshake_are_closed(master, seed):
    with Zmtp(master.zerorpc_addr) as z:
        z.handshake()
        z.send(random.Random(seed).randbytes(8192))
        half_close(z.sock)
        _, closed = read_until_closed(z.sock)
        assert closed
    master.assert_serving()


def test_zmtp_random_event_bodies_are_dropped_and_the_peer_still_served(master):
    rng = random.Random(7)
    junk = b"".join(zmtp_frame(b"", more=True) + zmtp_frame(rng.randbytes(rng.randrange(1, 300)))
                    for _ in range(200))
    with Zmtp(master.zerorpc_addr) as z:
        z.handshake()
        z.send(junk)
        assert z.call("ping", []) == ("OK", [True])
    master.assert_serving()


def test_zerorpc_client_that_never_reads_keeps_memory_bounded(master):
    store = big_parameter(master, size=1_000_000)
    events = b"".join(zmtp_frame(b"", more=True)
                      + zmtp_frame(zerorpc_event("storage.getParameter", [store, "big"])[1])
                      for _ in range(1000))
    before = master.rss()
    with Zmtp(master.zerorpc_addr) as z:
        z.handshake()
        written = send_until_stalled(z.sock, events, max_bytes=FLOOD_BYTES)
        assert written < FLOOD_BYTES, "the server never stopped reading"
        master.assert_rss_growth_bounded(before)
        master.assert_serving()
        _, name, args = z.recv_event()  # what was queued is still answered right
        assert name == "OK" and args == ["x" * 1_000_000], name
    master.assert_serving()


IN_FLIGHT_CAP = 8


@pytest.fixture(scope="module")
def in_flight_master(bin_dir, tmp_path_factory):
    m = start_master(bin_dir, tmp_path_factory, "hostile-in-flight",
                     "--max-in-flight", IN_FLIGHT_CAP, listeners=("http", "zerorpc"))
    yield m
    m.stop()


def test_zerorpc_calls_beyond_the_in_flight_cap_get_limit_exceeded(in_flight_master):
    """IN_FLIGHT_CAP + 12 blocking pops on one connection: the first IN_FLIGHT_CAP wait for an
    item, the 12 beyond the cap get ERR LimitExceeded at once; then pushed items reach the
    waiting ones, each exactly once."""
    m, name, extra = in_flight_master, unique("in-flight"), 12
    m.proxy().stack.create(name)
    with Zmtp(m.zerorpc_addr) as z:
        z.handshake()
        mids = [z.send_event("stack.popWait", [name, 60]) for _ in range(IN_FLIGHT_CAP + extra)]
        refused = []
        while len(refused) < extra:
            header, event, args = z.recv_event()
            assert event == "ERR" and args[0] == "LimitExceeded", (event, args)
            refused.append(header["response_to"])
        assert set(refused) == set(mids[IN_FLIGHT_CAP:])
        m.proxy().stack.pushMany(name, list(range(IN_FLIGHT_CAP)))
        got = []
        while len(got) < IN_FLIGHT_CAP:
            header, event, args = z.recv_event()
            assert event == "OK", (event, args)
            assert header["response_to"] in mids[:IN_FLIGHT_CAP]
            got.append(args[0])
        assert sorted(got) == list(range(IN_FLIGHT_CAP))
    assert m.stack_size(name) == 0
    m.assert_serving()


# --- idle-socket floods on each listener -------------------------------------------------------

PER_LISTENER = 50


@pytest.fixture(scope="module")
def capped_master(bin_dir, tmp_path_factory):
    m = start_master(bin_dir, tmp_path_factory, "hostile-capped",
                     "--max-connections-per-listener", PER_LISTENER)
    yield m
    m.stop()


@pytest.fixture(scope="module")
def idle_master(bin_dir, tmp_path_factory):
    m = start_master(bin_dir, tmp_path_factory, "hostile-idle",
                     "--max-connections-per-listener", PER_LISTENER, "--idle-timeout", 1)
    yield m
    m.stop()


def open_idle(master, kind):
    """A connection that then sends nothing: a bare TCP connection on HTTP and MessagePack-RPC,
    a completed handshake on zerorpc (so the handshake deadline does not apply), a completed
    upgrade on WebSocket. Returns its socket."""
    if kind == "zerorpc":
        return Zmtp(master.zerorpc_addr).handshake().sock
    if kind == "websocket":
        return RawWs(master.http_addr).sock
    addr = master.http_addr if kind == "http" else master.msgpack_addr
    return socket.create_connection(addr, timeout=GUARD)


def served(master, kind):
    """Whether a well-behaved client on listener ``kind`` gets a right answer now."""
    try:
        if kind == "http":
            return master.proxy().ping() is True
        if kind == "websocket":
            with RawWs(master.http_addr) as ws:
                return ws.call("ping")["result"] is True
        if kind == "msgpack":
            return master.msgpack_call("ping") == (None, True)
        return master.zerorpc_call("ping") == ("OK", [True])
    except (OSError, AssertionError, xmlrpc.client.ProtocolError):
        return False


@pytest.mark.parametrize("kind", ["http", "msgpack", "zerorpc"])
def test_idle_flood_fills_only_its_own_listener(capped_master, kind):
    m = capped_master
    idle = [open_idle(m, kind) for _ in range(PER_LISTENER)]
    try:
        addr = {"http": m.http_addr, "msgpack": m.msgpack_addr, "zerorpc": m.zerorpc_addr}[kind]
        with socket.create_connection(addr, timeout=GUARD) as extra:
            data, closed = read_until_closed(extra, AT_ONCE)
        assert closed, "a connection past the listener's cap was left waiting"
        if kind == "http":
            assert status_of(data) == 503, data
        else:
            assert data == b"", "a connection past the cap was served"
        for other in {"http", "msgpack", "zerorpc"} - {kind}:
            assert served(m, other), f"{other} not served while {kind} is flooded"
    finally:
        for s in idle:
            s.close()
    wait_until(lambda: served(m, kind), GUARD, f"{kind} to serve again once the flood left")
    m.assert_serving()


@pytest.mark.parametrize("kind", ["msgpack", "zerorpc", "websocket"])
def test_idle_stream_connections_are_closed_after_the_idle_timeout(idle_master, kind):
    m = idle_master
    before = m.rss()
    idle = [open_idle(m, kind) for _ in range(PER_LISTENER)]
    try:
        wait_all_closed(idle, GUARD)
    finally:
        for s in idle:
            s.close()
    assert served(m, kind)
    m.assert_rss_growth_bounded(before)
    m.assert_serving()


# --- values across protocols (master) ----------------------------------------------------------


def push_over(master, transport, name, value):
    if transport == "msgpack":
        assert master.msgpack_call("stack.push", name, value) == (None, 1)
    else:
        assert master.jsonrpc("stack.push", name, value)["result"] == 1


@pytest.mark.parametrize("transport", ["msgpack", "jsonrpc"])
def test_string_with_control_character_pops_over_xmlrpc_as_binary(master, transport):
    name = unique("control-char")
    push_over(master, transport, name, "a\x01b é")
    popped = master.proxy().stack.pop(name)
    assert isinstance(popped, xmlrpc.client.Binary), popped
    assert popped.data == "a\x01b é".encode()
    master.assert_serving()


def test_struct_with_unwritable_member_name_stays_on_the_stack(master):
    name = unique("unwritable-name")
    item = {"a\x02b": 1}
    assert master.msgpack_call("stack.push", name, item) == (None, 1)
    with pytest.raises(xmlrpc.client.Fault) as fault:
        master.proxy().stack.pop(name)
    assert "UnrepresentableError" in fault.value.faultString
    assert master.proxy().stack.getSize(name) == 1
    assert master.msgpack_call("stack.pop", name) == (None, item)
    master.assert_serving()


def test_messagepack_timestamp_keeps_its_milliseconds_over_msgpack_and_json(master):
    name = unique("timestamp")
    stamp = msgpack.Timestamp(seconds=1704196800, nanoseconds=250_000_000)  # 2024-01-02 12:00:00.25
    assert master.msgpack_call("stack.push", name, stamp) == (None, 1)
    assert master.msgpack_call("stack.pop", name) == (None, stamp)
    assert master.msgpack_call("stack.push", name, stamp) == (None, 1)
    assert master.jsonrpc("stack.pop", name)["result"] == "2024-01-02T12:00:00.250"
    master.assert_serving()


# --- HTTP: the slow clients started by the first test ------------------------------------------


def test_http_slow_head_gets_408(timeout_probes):
    received, closed = timeout_probes.slow_head.outcome(timeout_probes.left())
    assert status_of(received) == 408, received
    assert closed
    timeout_probes.server.assert_serving()


def test_http_slow_body_gets_408(timeout_probes):
    received, closed = timeout_probes.slow_body.outcome(timeout_probes.left())
    assert status_of(received) == 408, received
    assert closed, "a connection whose body never arrived was kept open"
    timeout_probes.server.assert_serving()


def test_http_half_sent_requests_are_closed_with_408_after_the_header_timeout(timeout_probes):
    received = wait_all_closed(timeout_probes.half_sent, timeout_probes.left())
    statuses = {status_of(data) for data in received.values()}
    assert statuses == {408}, statuses
    timeout_probes.server.assert_serving()
    timeout_probes.server.assert_rss_growth_bounded(timeout_probes.rss_before)
