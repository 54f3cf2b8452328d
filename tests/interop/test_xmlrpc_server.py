"""Python's own XML-RPC client (``xmlrpc.client``, ``http.client``) against our example server."""

import datetime
import gzip
import json
import http.client
import math
import socket
import threading
import urllib.parse
import xmlrpc.client

import pytest

NET_TIMEOUT = 15.0  # safety net only

RED = {1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36}
SEED_METHODS = {"add", "addtogether", "quadratic", "remote_repr", "spin", "spinList"}
SYSTEM_METHODS = {"system.listMethods", "system.methodHelp", "system.methodSignature", "system.multicall"}


# --- helpers -------------------------------------------------------------------------------


def proxy(url, **kw):
    kw.setdefault("allow_none", True)
    return xmlrpc.client.ServerProxy(url, **kw)


def hostport(url):
    u = urllib.parse.urlsplit(url)
    return u.hostname, u.port


def connect(url):
    host, port = hostport(url)
    return http.client.HTTPConnection(host, port, timeout=NET_TIMEOUT)


def post(url, body, headers=None, path="/", method="POST"):
    """One HTTP request on a fresh connection; returns (status, headers, raw body)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if headers is None:
        headers = {"Content-Type": "text/xml"}
    conn = connect(url)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def call_xml(method, *params, **kw):
    return xmlrpc.client.dumps(tuple(params), methodname=method, **kw)


def raw_call(method, *value_xml):
    """A request whose parameters are given as raw XML inside <value>."""
    params = "".join(f"<param><value>{v}</value></param>" for v in value_xml)
    return (
        "<?xml version='1.0'?><methodCall>"
        f"<methodName>{method}</methodName><params>{params}</params></methodCall>"
    )


def result_of(body, **kw):
    """The single result of an XML-RPC response body (raises Fault for a fault)."""
    params, _ = xmlrpc.client.loads(body, **kw)
    assert len(params) == 1
    return params[0]


def fault_of(body):
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(body)
    return info.value


def check_spin(s):
    assert isinstance(s, list) and len(s) == 4, s
    number, color, parity, half = s
    assert all(isinstance(x, str) for x in s), s
    assert number in {str(n) for n in range(37)} | {"00"}, s
    if number in ("0", "00"):
        assert (color, parity, half) == ("GREEN", "ZERO", "ZERO"), s
        return
    n = int(number)
    assert color == ("RED" if n in RED else "BLACK"), s
    assert parity == ("EVEN" if n % 2 == 0 else "ODD"), s
    assert half == ("LOW" if n <= 18 else "HIGH"), s


# --- reference outputs of the classic example ------------------------------------------------


def test_reference_addtogether(example_server):
    with proxy(example_server) as p:
        assert p.addtogether("x", "ÿ", "z") == "xÿz"
        r = p.addtogether(20, 30, 4, 1)
        assert r == 55 and type(r) is int


def test_reference_quadratic(example_server):
    with proxy(example_server) as p:
        assert p.quadratic(2, -4, 0) == [0.0, 8.0]
        assert p.quadratic(1, 2, 1) == [-1.0]
        assert all(type(x) is float for x in p.quadratic(2, -4, 0))


def test_reference_remote_repr_list(example_server):
    with proxy(example_server) as p:
        r = p.remote_repr([1, 2.0, "three"])
    assert r == [1, 2.0, "three"]
    assert [type(x) for x in r] == [int, float, str]


def test_reference_remote_repr_struct_order(example_server):
    d = {"name": "Arthur", "data": {"age": 42, "sex": "M"}}
    with proxy(example_server) as p:
        r = p.remote_repr(d)
    assert r == d
    assert list(r.keys()) == ["name", "data"]
    assert list(r["data"].keys()) == ["age", "sex"]


def test_reference_quadratic_fault(example_server):
    with proxy(example_server) as p, pytest.raises(xmlrpc.client.Fault) as info:
        p.quadratic(1, 0, 1)
    assert info.value.faultCode == 1
    assert "math domain error" in info.value.faultString


def test_same_answers_as_python_server(example_server, python_server):
    """Where the Python server answers, ours answers the same values."""
    calls = [
        ("addtogether", ("x", "ÿ", "z")),
        ("addtogether", (20, 30, 4, 1)),
        ("addtogether", ([1], [2, 3])),
        ("remote_repr", ([1, 2.0, "three", None, True, {"k": [{}]}],)),
        ("add", (2, 3)),
        ("add", (1, 0.5)),
        ("add", ("ab", "cd")),
        ("quadratic", (1, 2, 1)),
    ]
    with proxy(example_server) as ours, proxy(python_server) as theirs:
        for name, args in calls:
            a = getattr(ours, name)(*args)
            b = getattr(theirs, name)(*args)
            assert a == b, (name, args)
            assert type(a) is type(b), (name, args)
        # The set in the Python original has no order; compare as sets.
        assert set(ours.quadratic(2, -4, 0)) == set(theirs.quadratic(2, -4, 0))


# --- types round-trip through remote_repr ------------------------------------------------


STRINGS = [
    "",
    "hello",
    "ÿ",
    "naïve café ∑ 中文",
    "astral 😀 𝄞 \U0010fffd",
    "<&>",
    "<value><int>1</int></value>",
    "]]>",
    "'\"",
    "tab\there\nnewline",
    "  leading and trailing spaces  ",
    "x" * 100_000,
]


@pytest.mark.parametrize("s", STRINGS, ids=lambda s: repr(s[:20]))
def test_roundtrip_string(example_server, s):
    with proxy(example_server) as p:
        r = p.remote_repr(s)
    assert r == s and type(r) is str


def test_carriage_return_kept(example_server):
    """A \\r sent as &#13; survives, and comes back escaped so a parser keeps it too."""
    status, headers, body = post(example_server, raw_call("remote_repr", "<string>a&#13;&#10;b&#13;</string>"))
    assert status == 200
    assert result_of(body) == "a\r\nb\r"
    assert b"\r" not in body
    assert b"&#13;" in body


def test_raw_line_ends_normalised_like_python(example_server, python_server):
    """Python's client sends \\r unescaped; XML 1.0 (section 2.11) makes every parser read a raw
    \\r\\n or lone \\r as \\n, and Python's server does. Ours should answer the same."""
    body = raw_call("remote_repr", "<string>a\r\nb\rc</string>")
    answers = []
    for url in (python_server, example_server):
        status, _, reply = post(url, body)
        assert status == 200
        answers.append(result_of(reply))
    assert answers[0] == "a\nb\nc"  # what Python's server reads
    assert answers[1] == answers[0]


@pytest.mark.parametrize("encoding", ["iso-8859-1", "utf-8"])
def test_python_client_declared_encoding(example_server, python_server, encoding):
    """ServerProxy(encoding=...) declares that encoding and encodes the body in it;
    Python's server reads it, so ours must too."""
    s = "café ÿ €"  # € is not Latin-1: Python's client sends it as a character reference
    with proxy(python_server, encoding=encoding) as theirs:
        assert theirs.remote_repr(s) == s
    with proxy(example_server, encoding=encoding) as ours:
        assert ours.remote_repr(s) == s


def test_request_without_params_element(example_server):
    status, _, body = post(example_server, "<?xml version='1.0'?><methodCall><methodName>spin</methodName></methodCall>")
    assert status == 200
    check_spin(result_of(body))


def test_bare_text_value_is_string(example_server):
    status, _, body = post(example_server, raw_call("remote_repr", "plain text"))
    assert status == 200
    assert result_of(body) == "plain text"


def test_cdata_string(example_server):
    status, _, body = post(example_server, raw_call("remote_repr", "<string><![CDATA[<&>]]></string>"))
    assert status == 200
    assert result_of(body) == "<&>"


def test_roundtrip_none(example_server):
    with proxy(example_server) as p:
        assert p.remote_repr(None) is None
        assert p.remote_repr([None, {"k": None}]) == [None, {"k": None}]


def test_roundtrip_booleans(example_server):
    with proxy(example_server) as p:
        for b in (True, False):
            r = p.remote_repr(b)
            assert r is b


@pytest.mark.parametrize("x", [0.0, 0.1, 1.5, -2.25, 1e300, -1e300, 1e-300, 5e-324, 123456789.125, 2.0**53])
def test_roundtrip_float(example_server, x):
    with proxy(example_server) as p:
        r = p.remote_repr(x)
    assert type(r) is float
    assert r == x


def test_roundtrip_negative_zero(example_server):
    with proxy(example_server) as p:
        r = p.remote_repr(-0.0)
    assert r == 0.0 and math.copysign(1.0, r) == -1.0


@pytest.mark.parametrize("n", [0, 1, -1, 42, 2**31 - 1, -(2**31)])
def test_roundtrip_int32(example_server, n):
    with proxy(example_server) as p:
        r = p.remote_repr(n)
    assert r == n and type(r) is int


ALL_BYTES = bytes(range(256))


def test_roundtrip_binary(example_server):
    with proxy(example_server) as p:
        r = p.remote_repr(xmlrpc.client.Binary(ALL_BYTES))
        assert isinstance(r, xmlrpc.client.Binary)
        assert r.data == ALL_BYTES
        empty = p.remote_repr(xmlrpc.client.Binary(b""))
        assert isinstance(empty, xmlrpc.client.Binary) and empty.data == b""


def test_roundtrip_bytes_builtin(example_server):
    with proxy(example_server, use_builtin_types=True) as p:
        r = p.remote_repr(ALL_BYTES * 3)
        assert type(r) is bytes and r == ALL_BYTES * 3
        assert p.remote_repr([b"\x00", b"\xff"]) == [b"\x00", b"\xff"]


def test_base64_split_over_lines(example_server):
    """Python's client wraps base64 every 76 characters; other clients may too."""
    status, _, body = post(example_server, raw_call("remote_repr", "<base64>AAEC\nAwQF\r\n  Bg==</base64>"))
    assert status == 200
    assert result_of(body, use_builtin_types=True) == bytes(range(7))


def test_roundtrip_datetime(example_server):
    with proxy(example_server) as p:
        r = p.remote_repr(xmlrpc.client.DateTime("20261121T05:17:00"))
    assert isinstance(r, xmlrpc.client.DateTime)
    assert r.value == "20261121T05:17:00"


def test_roundtrip_datetime_builtin(example_server):
    when = datetime.datetime(2026, 11, 21, 5, 17, 0)
    with proxy(example_server, use_builtin_types=True) as p:
        r = p.remote_repr(when)
        assert type(r) is datetime.datetime and r == when
        early = datetime.datetime(1999, 1, 2, 23, 59, 59)
        assert p.remote_repr({"t": early}) == {"t": early}


def test_roundtrip_struct_order(example_server):
    keys = ["zeta", "alpha", "mid", "b", "a", "ÿ", "😀", "with space", "1", ""]
    d = {k: i for i, k in enumerate(keys)}
    nested = {"outer": d, "list": [d, {"z": 1, "a": 2}]}
    with proxy(example_server) as p:
        r = p.remote_repr(nested)
    assert r == nested
    assert list(r.keys()) == ["outer", "list"]
    assert list(r["outer"].keys()) == keys
    assert list(r["list"][0].keys()) == keys
    assert list(r["list"][1].keys()) == ["z", "a"]


def test_roundtrip_empty_containers(example_server):
    with proxy(example_server) as p:
        assert p.remote_repr([]) == []
        assert p.remote_repr({}) == {}
        assert p.remote_repr("") == ""
        assert p.remote_repr([[], {}, ""]) == [[], {}, ""]


def test_tuple_arrives_as_array(example_server):
    with proxy(example_server) as p:
        assert p.remote_repr((1, ("a", 2.5))) == [1, ["a", 2.5]]


def test_roundtrip_deep_nesting(example_server):
    deep_list = "bottom"
    for _ in range(30):
        deep_list = [deep_list]
    deep_dict = {"leaf": 1}
    for i in range(30):
        deep_dict = {f"level{i}": deep_dict, "n": i}
    with proxy(example_server) as p:
        assert p.remote_repr(deep_list) == deep_list
        r = p.remote_repr(deep_dict)
        assert r == deep_dict
        assert list(r.keys()) == ["level29", "n"]


def test_excessive_nesting_is_a_fault_not_a_crash(example_server):
    depth = 1000
    value = "<array><data><value>" * depth + "<int>0</int>" + "</value></data></array>" * depth
    status, _, body = post(example_server, raw_call("remote_repr", value))
    assert status == 200
    fault_of(body)
    with proxy(example_server) as p:
        assert p.add(1, 1) == 2


def test_roundtrip_mixed_large_array(example_server):
    items = [i if i % 3 == 0 else str(i) if i % 3 == 1 else float(i) for i in range(5000)]
    with proxy(example_server) as p:
        assert p.remote_repr(items) == items


# --- 64-bit integers -----------------------------------------------------------------------


def test_add_overflows_32_bits(example_server):
    with proxy(example_server) as p:
        assert p.add(2**31 - 1, 1) == 2**31
        assert p.add(-(2**31), -1) == -(2**31) - 1


def test_i8_sent_only_beyond_32_bits(example_server):
    status, _, body = post(example_server, call_xml("add", 2**31 - 1, 1))
    assert status == 200
    assert b"<i8>2147483648</i8>" in body
    assert result_of(body) == 2**31
    status, _, body = post(example_server, call_xml("add", 2**31 - 2, 1))
    assert status == 200
    assert b"<int>2147483647</int>" in body
    assert b"<i8>" not in body


@pytest.mark.parametrize("n", [2**63 - 1, -(2**63), 2**31, 5])
def test_i8_request_roundtrip(example_server, n):
    status, _, body = post(example_server, raw_call("remote_repr", f"<i8>{n}</i8>"))
    assert status == 200
    r = result_of(body)
    assert r == n and type(r) is int


@pytest.mark.parametrize("tag", ["int", "i4", "i1", "i2", "biginteger"])
def test_other_int_tags_accepted(example_server, tag):
    status, _, body = post(example_server, raw_call("remote_repr", f"<{tag}>-7</{tag}>"))
    assert status == 200
    assert result_of(body) == -7


# --- multicall and introspection -----------------------------------------------------------


def test_multicall_with_failure(example_server):
    with proxy(example_server) as p:
        mc = xmlrpc.client.MultiCall(p)
        mc.add(2, 3)
        mc.quadratic(1, 0, 1)
        mc.addtogether("a", "b", "c")
        mc.no_such_method()
        results = mc()
        assert results[0] == 5
        with pytest.raises(xmlrpc.client.Fault) as info:
            results[1]
        assert info.value.faultCode == 1
        assert "math domain error" in info.value.faultString
        assert results[2] == "abc"
        with pytest.raises(xmlrpc.client.Fault) as info:
            results[3]
        assert info.value.faultCode == -32601


def test_multicall_wire_shape_matches_python(example_server, python_server):
    calls = [
        {"methodName": "add", "params": [1, 2]},
        {"methodName": "quadratic", "params": [1, 0, 1]},
        {"methodName": "remote_repr", "params": [{"b": 1, "a": [2]}]},
    ]
    with proxy(example_server) as ours, proxy(python_server) as theirs:
        a = ours.system.multicall(calls)
        b = theirs.system.multicall(calls)
    for r in (a, b):
        assert len(r) == 3
        assert r[0] == [3]
        assert set(r[1].keys()) == {"faultCode", "faultString"}
        assert r[1]["faultCode"] == 1
        assert "math domain error" in r[1]["faultString"]
        assert r[2] == [{"b": 1, "a": [2]}]
        assert list(r[2][0].keys()) == ["b", "a"]


def test_list_methods(example_server):
    with proxy(example_server) as p:
        methods = p.system.listMethods()
    assert methods == sorted(methods)
    assert len(methods) == len(set(methods))
    assert SEED_METHODS <= set(methods)
    assert SYSTEM_METHODS <= set(methods)


def test_method_help(example_server):
    with proxy(example_server) as p:
        assert "Determine" in p.system.methodHelp("quadratic")
        assert "things" in p.system.methodHelp("addtogether")


def test_method_signature(example_server):
    with proxy(example_server) as p:
        assert p.system.methodSignature("quadratic") == [["array", "double", "double", "double"]]
        for name in SEED_METHODS:
            sigs = p.system.methodSignature(name)
            assert isinstance(sigs, list) and sigs, name
            for sig in sigs:
                assert isinstance(sig, list) and all(isinstance(t, str) for t in sig), name


# --- faults --------------------------------------------------------------------------------


def test_unknown_method(example_server):
    with proxy(example_server) as p, pytest.raises(xmlrpc.client.Fault) as info:
        p.no_such_method(1)
    assert info.value.faultCode == -32601


@pytest.mark.parametrize("args", [(1,), (1, 2, 3), ()])
def test_wrong_param_count(example_server, args):
    with proxy(example_server) as p, pytest.raises(xmlrpc.client.Fault) as info:
        p.add(*args)
    assert info.value.faultCode == -32602


def test_application_errors(example_server):
    with proxy(example_server) as p:
        with pytest.raises(xmlrpc.client.Fault) as info:
            p.addtogether(1, "x")
        assert info.value.faultCode == 1
        assert info.value.faultString.startswith("TypeError")
        with pytest.raises(xmlrpc.client.Fault) as info:
            p.spinList(-1)
        assert info.value.faultCode == 1
        assert info.value.faultString.startswith("ValueError")


# --- the roulette wheel --------------------------------------------------------------------


def test_spin(example_server):
    with proxy(example_server) as p:
        for _ in range(20):
            check_spin(p.spin())


def test_spin_list(example_server):
    with proxy(example_server) as p:
        spins = p.spinList(50)
        assert len(spins) == 50
        for s in spins:
            check_spin(s)
        default = p.spinList()
        assert len(default) == 1
        check_spin(default[0])
        assert p.spinList(0) == []
        numbers = {s[0] for s in p.spinList(2000)}
        assert len(numbers) > 1  # it is random, not a constant


# --- compression ---------------------------------------------------------------------------


class GzipTransport(xmlrpc.client.Transport):
    """A transport that gzips every request and records the headers it sent."""

    def __init__(self):
        super().__init__()
        self.encode_threshold = 0
        self.encodings = []

    def send_content(self, connection, request_body):
        putheader = connection.putheader

        def recording_putheader(name, *values):
            if name.lower() == "content-encoding":
                self.encodings.append(values)
            return putheader(name, *values)

        connection.putheader = recording_putheader
        try:
            super().send_content(connection, request_body)
        finally:
            del connection.putheader


def test_gzip_request_from_python_client(example_server):
    t = GzipTransport()
    with proxy(example_server, transport=t) as p:
        assert p.add(2, 3) == 5
        big = "z" * 50_000
        assert p.remote_repr(big) == big
        assert len(p.spinList(500)) == 500
    # Every request went out gzipped.
    assert t.encodings == [("gzip",)] * 3


def test_gzip_request_raw(example_server):
    body = gzip.compress(call_xml("addtogether", "gz", "ip").encode())
    status, _, reply = post(example_server, body, {"Content-Type": "text/xml", "Content-Encoding": "gzip"})
    assert status == 200
    assert result_of(reply) == "gzip"


def test_gzip_reply_when_accepted_and_large(example_server):
    status, headers, body = post(
        example_server,
        call_xml("spinList", 500),
        {"Content-Type": "text/xml", "Accept-Encoding": "gzip"},
    )
    assert status == 200
    assert headers.get("Content-Encoding") == "gzip"
    spins = result_of(gzip.decompress(body))
    assert len(spins) == 500
    for s in spins:
        check_spin(s)


def test_no_gzip_for_small_reply(example_server):
    status, headers, body = post(
        example_server,
        call_xml("add", 1, 2),
        {"Content-Type": "text/xml", "Accept-Encoding": "gzip"},
    )
    assert status == 200
    assert headers.get("Content-Encoding") is None
    assert result_of(body) == 3


def test_no_gzip_when_not_accepted(example_server):
    status, headers, body = post(example_server, call_xml("spinList", 500), {"Content-Type": "text/xml"})
    assert status == 200
    assert headers.get("Content-Encoding") is None
    assert len(result_of(body)) == 500


def test_python_client_reads_gzip_reply(example_server):
    with proxy(example_server) as p:
        assert len(p.spinList(1000)) == 1000


# --- HTTP ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/RPC2"])
def test_rpc_paths(example_server, path):
    status, headers, body = post(example_server, call_xml("add", 1, 2), path=path)
    assert status == 200
    assert headers.get_content_type() == "text/xml"
    assert result_of(body) == 3


@pytest.mark.parametrize(
    "content_type",
    [None, "text/xml", "application/xml", "text/xml; charset=utf-8", "TEXT/XML"],
)
def test_accepted_content_types(example_server, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    status, _, body = post(example_server, call_xml("add", 1, 2), headers)
    assert status == 200
    assert result_of(body) == 3


def test_put_is_405(example_server):
    # GET shows the page with the methods (see test_web_page.py); others are refused.
    status, headers, _ = post(example_server, None, {}, method="PUT")
    assert status == 405
    assert headers.get("Allow", "") == "GET, HEAD, POST"


def test_other_path_is_404(example_server):
    status, _, _ = post(example_server, call_xml("add", 1, 2), path="/other")
    assert status == 404


def test_other_content_type_is_415(example_server):
    status, _, _ = post(example_server, call_xml("add", 1, 2), {"Content-Type": "text/plain"})
    assert status == 415


def test_xml_sent_as_json_is_a_json_rpc_parse_error(example_server):
    # application/json selects JSON-RPC on the same endpoint.
    status, _, body = post(example_server, call_xml("add", 1, 2), {"Content-Type": "application/json"})
    assert status == 200
    assert json.loads(body)["error"]["code"] == -32700


def test_unsupported_content_encoding_is_415(example_server):
    status, _, _ = post(
        example_server,
        call_xml("add", 1, 2),
        {"Content-Type": "text/xml", "Content-Encoding": "br"},
    )
    assert status == 415


def test_declared_oversize_body_is_413(example_server):
    """A Content-Length over 16 MiB is refused from the header, without the body."""
    host, port = hostport(example_server)
    with socket.create_connection((host, port), timeout=NET_TIMEOUT) as s:
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            b"Content-Length: %d\r\n\r\n<?xml" % (17 * 1024 * 1024)
        )
        resp = http.client.HTTPResponse(s)
        resp.begin()
        assert resp.status == 413


def test_actual_oversize_body_is_413(example_server):
    """17 MiB actually sent with chunked encoding (no Content-Length to judge by)."""
    host, port = hostport(example_server)
    conn = http.client.HTTPConnection(host, port, timeout=NET_TIMEOUT)
    chunk = b"<!-- " + b"x" * (1024 * 1024 - 10) + b" -->"

    def chunks():
        for _ in range(17):
            yield chunk

    try:
        try:
            conn.request(
                "POST", "/", body=chunks(), headers={"Content-Type": "text/xml"}, encode_chunked=True
            )
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and stop reading before we finish
        resp = conn.getresponse()
        assert resp.status == 413
    finally:
        conn.close()


XML_FAULT_CASES = {
    "malformed": (call_xml("add", 1, 2).replace("<int>1</int>", "<int 1</int>"), -32700),
    "truncated": (call_xml("add", 1, 2)[:-20], -32700),
    "truncated_at_tag_boundary": (call_xml("add", 1, 2).split("</params>")[0], -32700),
    "not_xml": ("this is not xml at all", -32700),
    "empty": ("", -32700),
    "trailing_garbage": (call_xml("add", 1, 2) + "garbage<", -32700),
    "mismatched_tags": ("<methodCall><methodName>add</methodCall></methodName>", -32700),
    "billion_laughs": (
        '<?xml version="1.0"?>\n'
        '<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
        ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
        ' <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">\n'
        ' <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">\n'
        ' <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">\n'
        ' <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">\n'
        ' <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">\n'
        ' <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">\n'
        "]>\n"
        "<methodCall><methodName>remote_repr</methodName><params><param><value>"
        "<string>&lol9;</string></value></param></params></methodCall>",
        -32700,
    ),
    "doctype_external_entity": (
        '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        "<methodCall><methodName>remote_repr</methodName><params><param><value>"
        "<string>&xxe;</string></value></param></params></methodCall>",
        -32700,
    ),
    "unknown_type_tag": (raw_call("remote_repr", "<foo>1</foo>"), -32600),
}


@pytest.mark.parametrize("case", sorted(XML_FAULT_CASES))
def test_bad_xml_is_fault_with_http_200(example_server, case):
    body, code = XML_FAULT_CASES[case]
    status, headers, reply = post(example_server, body)
    assert status == 200
    assert headers.get_content_type() == "text/xml"
    fault = fault_of(reply)
    assert fault.faultCode == code, fault
    assert "root:" not in fault.faultString  # no /etc/passwd content, no entity expansion
    assert "lollol" not in fault.faultString


def test_every_truncation_is_a_parse_error(example_server):
    """Every strict prefix of a valid request is not well-formed XML: fault -32700."""
    # Without trailing whitespace, every strict prefix cuts into the markup.
    full = call_xml("remote_repr", [1, "two", {"three": 3.0}]).rstrip().encode()
    wrong = []
    conn = connect(example_server)
    try:
        for n in range(len(full)):
            conn.request("POST", "/", body=full[:n], headers={"Content-Type": "text/xml"})
            resp = conn.getresponse()
            assert resp.status == 200
            try:
                code = xmlrpc.client.loads(resp.read())
            except xmlrpc.client.Fault as f:
                code = f.faultCode
            if code != -32700:
                wrong.append((full[:n][-30:], code))
    finally:
        conn.close()
    assert not wrong, f"{len(wrong)} of {len(full)} truncations were not -32700, e.g. {wrong[:5]}"


def test_corrupt_gzip_body_is_400(example_server):
    body = gzip.compress(call_xml("add", 1, 2).encode())
    corrupt = body[:10] + bytes(b ^ 0x5A for b in body[10:])
    status, _, _ = post(example_server, corrupt, {"Content-Type": "text/xml", "Content-Encoding": "gzip"})
    assert status == 400


def test_keep_alive_reuses_connection(example_server):
    conn = connect(example_server)
    try:
        sock = None
        for i in range(5):
            conn.request("POST", "/RPC2", body=call_xml("add", i, i), headers={"Content-Type": "text/xml"})
            resp = conn.getresponse()
            assert resp.status == 200
            assert not resp.will_close
            assert result_of(resp.read()) == 2 * i
            assert conn.sock is not None
            if sock is None:
                sock = conn.sock
            # http.client would have opened a new socket had the server closed this one.
            assert conn.sock is sock
        # An HTTP-level error does not cost the connection either.
        conn.request("POST", "/other", body=b"x", headers={"Content-Type": "text/xml"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404
        conn.request("POST", "/", body=call_xml("add", 20, 22), headers={"Content-Type": "text/xml"})
        resp = conn.getresponse()
        assert result_of(resp.read()) == 42
        assert conn.sock is sock
    finally:
        conn.close()


def test_python_client_keep_alive(example_server):
    """ServerProxy keeps one HTTP/1.1 connection across calls."""
    t = xmlrpc.client.Transport()
    with proxy(example_server, transport=t) as p:
        assert p.add(1, 2) == 3
        first = t._connection[1].sock
        assert first is not None
        for i in range(5):
            assert p.add(i, 1) == i + 1
        assert t._connection[1].sock is first


def test_bad_clients_do_not_block_good_ones(example_server):
    host, port = hostport(example_server)
    bad = []
    try:
        # Pure garbage, then silence with the socket left open.
        s = socket.create_connection((host, port), timeout=NET_TIMEOUT)
        s.sendall(b"\x00\xff garbage garbage")
        bad.append(s)
        # A request head without its end, left hanging.
        s = socket.create_connection((host, port), timeout=NET_TIMEOUT)
        s.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Ty")
        bad.append(s)
        # A complete head promising a body that never comes.
        s = socket.create_connection((host, port), timeout=NET_TIMEOUT)
        s.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<?xml")
        bad.append(s)
        # Connected but never says anything.
        bad.append(socket.create_connection((host, port), timeout=NET_TIMEOUT))

        results = {}
        errors = []

        def good(i):
            try:
                with proxy(example_server) as p:
                    results[i] = [p.add(i, 100), p.addtogether("a", str(i))]
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=good, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=NET_TIMEOUT * 2)
        assert not errors
        assert results == {i: [i + 100, f"a{i}"] for i in range(8)}
    finally:
        for s in bad:
            s.close()
