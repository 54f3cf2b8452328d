"""JSON-RPC over HTTP: jsonrpclib-pelix's client against our example server, the wire rules
checked with plain urllib, and our ``rpcs`` CLI against jsonrpclib-pelix's server.

No test asserts on timing: timeouts are safety nets.
"""

import json
import threading
import urllib.error
import urllib.request
import uuid
import xmlrpc.client

import jsonrpclib
import jsonrpclib.config
import pytest
from jsonrpclib.SimpleJSONRPCServer import SimpleJSONRPCRequestHandler, SimpleJSONRPCServer

from conftest import add, addtogether, quadratic, remote_repr

HTTP_TIMEOUT = 30.0  # safety net


# --- helpers ----------------------------------------------------------------------------------


def post(url, body, content_type="application/json", path=""):
    """POSTs ``body`` (bytes, or anything JSON-encodable) and returns (status, headers, body)."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    req = urllib.request.Request(url.rstrip("/") + "/" + path.lstrip("/"), data=body,
                                 method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def rpc(url, body, **kw):
    """POSTs a JSON-RPC document, expects 200 with a JSON body, returns the decoded body."""
    status, headers, data = post(url, body, **kw)
    assert status == 200, (status, data)
    assert headers.get_content_type() == "application/json", headers
    return json.loads(data)


def call2(method, params=None, id=1):
    req = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        req["params"] = params
    return req


def note2(method, params=None):
    req = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        req["params"] = params
    return req


def result_of(url, method, params=None):
    r = rpc(url, call2(method, params, id=7))
    assert r == {"jsonrpc": "2.0", "id": 7, "result": r.get("result")}, r
    return r["result"]


def error_of(url, body, id=1):
    r = rpc(url, body)
    assert set(r) == {"jsonrpc", "id", "error"}, r
    assert r["jsonrpc"] == "2.0"
    assert r["id"] == id, r
    assert set(r["error"]) >= {"code", "message"}, r
    assert isinstance(r["error"]["message"], str)
    return r["error"]["code"], r["error"]["message"]


@pytest.fixture(scope="module")
def url(example_endpoints):
    return example_endpoints.http


@pytest.fixture
def proxy(url):
    return jsonrpclib.ServerProxy(url)


# --- jsonrpclib-pelix's client against our server ----------------------------------------------


def test_jsonrpclib_reference_outputs(proxy):
    assert proxy.addtogether("x", "ÿ", "z") == "xÿz"
    assert proxy.addtogether(20, 30, 4, 1) == 55
    r = proxy.quadratic(2, -4, 0)
    assert r == [0.0, 8.0] and all(isinstance(x, float) for x in r)
    assert proxy.quadratic(1, 2, 1) == [-1.0]
    assert proxy.remote_repr([1, 2.0, "three"]) == [1, 2.0, "three"]
    d = proxy.remote_repr({"name": "Arthur", "data": {"age": 42, "sex": "M"}})
    assert d == {"name": "Arthur", "data": {"age": 42, "sex": "M"}}
    assert list(d) == ["name", "data"]
    assert proxy.add(2, 3) == 5
    assert proxy.add("a", "b") == "ab"


def test_jsonrpclib_fault_mapping(proxy):
    # Application faults (code 1) are AppError; predefined codes are plain ProtocolError.
    with pytest.raises(jsonrpclib.jsonrpc.AppError) as e:
        proxy.quadratic(1, 0, 1)
    code, message, _data = e.value.args[0]
    assert (code, message) == (1, "ValueError: math domain error")

    with pytest.raises(jsonrpclib.ProtocolError) as e:
        proxy.no_such_method(1)
    assert not isinstance(e.value, jsonrpclib.jsonrpc.AppError)
    assert e.value.args[0][0] == -32601

    with pytest.raises(jsonrpclib.ProtocolError) as e:
        proxy.add(1)
    assert e.value.args[0][0] == -32602

    with pytest.raises(jsonrpclib.jsonrpc.AppError) as e:
        proxy.line_counter("a\nb\n")
    assert e.value.args[0][0] == 1
    assert e.value.args[0][1].startswith("CallbackError:")


def test_jsonrpclib_named_params(proxy):
    assert proxy.add(a=2, b=3) == 5
    assert proxy.add(b="second", a="first") == "firstsecond"
    assert proxy.quadratic(a=2, b=-4, c=0) == [0.0, 8.0]
    assert proxy.remote_repr(arg={"k": [1, None]}) == {"k": [1, None]}
    assert len(proxy.spinList(spins=3)) == 3
    with pytest.raises(jsonrpclib.ProtocolError) as e:
        proxy.add(a=1)
    assert e.value.args[0][0] == -32602
    with pytest.raises(jsonrpclib.ProtocolError) as e:
        proxy.add(a=1, b=2, c=3)
    assert e.value.args[0][0] == -32602


def test_jsonrpclib_notification(proxy, python_json_server):
    """jsonrpclib's client accepts only status 200 for a notification: its own server answers
    200 with an empty body; any other status (204 included) raises TransportError."""
    host, port = python_json_server
    assert jsonrpclib.ServerProxy(f"http://{host}:{port}/")._notify.add(1, 2) is None
    assert proxy._notify.add(1, 2) is None
    assert proxy._notify.no_such_method() is None


def test_jsonrpclib_batch(proxy):
    batch = jsonrpclib.MultiCall(proxy)
    batch.add(1, 2)
    batch.addtogether("x", "y")
    batch._notify.add(5, 6)
    batch.quadratic(1, 0, 1)
    results = batch()
    # jsonrpclib matches the answers to the calls by position, so it needs them in order:
    # check that what came back is the right set, then read it by id ourselves.
    assert len(results) == 3
    by_value = sorted((r for r in results.results if "result" in r and r.get("error") is None),
                      key=lambda r: str(r["result"]))
    assert [r["result"] for r in by_value] == [3, "xy"]
    errors = [r for r in results.results if r.get("error")]
    assert len(errors) == 1 and errors[0]["error"]["code"] == 1


def test_jsonrpclib_version_1(url):
    config = jsonrpclib.config.Config(version=1.0)
    p = jsonrpclib.ServerProxy(url, config=config)
    assert p.add(2, 3) == 5
    assert p.addtogether("x", "ÿ", "z") == "xÿz"
    with pytest.raises(jsonrpclib.jsonrpc.AppError) as e:
        p.quadratic(1, 0, 1)
    assert e.value.args[0][:2] == (1, "ValueError: math domain error")


def test_jsonrpclib_introspection(proxy):
    names = proxy.system.listMethods()
    for name in ("add", "addtogether", "quadratic", "remote_repr", "spin", "spinList",
                 "line_counter", "system.listMethods", "system.multicall"):
        assert name in names
    assert "Add together" in proxy.system.methodHelp("addtogether")


# --- the wire rules, with plain urllib ---------------------------------------------------------


def test_single_call_echoes_id(url):
    assert rpc(url, call2("add", [2, 3], id=1)) == {"jsonrpc": "2.0", "id": 1, "result": 5}
    assert rpc(url, call2("add", [2, 3], id="abc")) == {"jsonrpc": "2.0", "id": "abc", "result": 5}
    assert rpc(url, call2("add", [2, 3], id=0)) == {"jsonrpc": "2.0", "id": 0, "result": 5}
    # A null id is a (discouraged) call in 2.0: it is answered, with id null.
    assert rpc(url, call2("add", [2, 3], id=None)) == {"jsonrpc": "2.0", "id": None, "result": 5}


def test_unicode_both_escaped_and_raw(url):
    req = call2("addtogether", ["x", "ÿ", "z", "😀"])
    raw = json.dumps(req, ensure_ascii=False).encode("utf-8")
    escaped = json.dumps(req, ensure_ascii=True).encode("ascii")
    assert b"\\ud83d\\ude00" in escaped
    for body in (raw, escaped):
        assert rpc(url, body)["result"] == "xÿz😀"


def test_integers_and_nesting(url):
    for v in [2**53 + 1, 2**63 - 1, -(2**63), 0, -1, 1.5, True, None, [], {},
              {"a": [1, {"b": None}], "z": "ÿ"}]:
        got = result_of(url, "remote_repr", [v])
        assert got == v and type(got) is type(v), (v, got)


def test_batch_mixing_everything(url):
    batch = [
        call2("add", [1, 2], id=1),
        note2("add", [3, 4]),
        call2("quadratic", [1, 0, 1], id="q"),
        call2("no_such_method", [], id=3),
        42,
        {"jsonrpc": "2.0", "params": [1], "id": 5},  # no method
        call2("add", {"b": "y", "a": "x"}, id=6),
        call2("add", [1], id=7),
        note2("no_such_method"),  # a failing notification is not answered either
        call2("quadratic", [1, 2, 1], id=8),
    ]
    r = rpc(url, batch)
    assert isinstance(r, list)
    assert len(r) == 8, r
    assert all(x["jsonrpc"] == "2.0" for x in r)
    by_id = {}
    nulls = []
    for x in r:
        assert ("result" in x) != ("error" in x), x
        if x["id"] is None:
            nulls.append(x)
        else:
            assert x["id"] not in by_id
            by_id[x["id"]] = x
    assert set(by_id) - {5} == {1, "q", 3, 6, 7, 8}
    assert by_id[1]["result"] == 3
    assert by_id["q"]["error"]["code"] == 1
    assert by_id["q"]["error"]["message"] == "ValueError: math domain error"
    assert by_id[3]["error"]["code"] == -32601
    assert by_id[6]["result"] == "xy"
    assert by_id[7]["error"]["code"] == -32602
    assert by_id[8]["result"] == [-1.0]
    # The bad entry 42 and the one without a method: invalid requests. The second has a
    # readable id, so a server may echo it; the spec's example answers null.
    assert len(nulls) + (5 in by_id) == 2
    assert [x["error"]["code"] for x in nulls] + \
        ([by_id[5]["error"]["code"]] if 5 in by_id else []) == [-32600, -32600]


def test_batch_of_one(url):
    assert rpc(url, [call2("add", [1, 2], id=9)]) == [{"jsonrpc": "2.0", "id": 9, "result": 3}]


def test_batch_of_only_notifications_gets_an_empty_200(url):
    # 200 with no body rather than 204: jsonrpclib, client and server, treats 204 as an error.
    status, _headers, body = post(url, [note2("add", [1, 2]), note2("no_such_method"),
                                        note2("quadratic", [1, 0, 1])])
    assert (status, body) == (200, b"")


@pytest.mark.parametrize("body", [
    note2("add", [1, 2]),
    note2("no_such_method"),
    note2("quadratic", [1, 0, 1]),
    {"method": "add", "params": [1, 2], "id": None},  # 1.0 notification: id null
])
def test_notification_is_never_answered(url, body):
    status, _headers, data = post(url, body)
    assert status == 200
    assert data == b""


def test_notification_runs(master_endpoints):
    url = master_endpoints.http
    name = f"note-{uuid.uuid4().hex}"
    status, _, data = post(url, note2("stack.push", [name, "pushed by a notification"]))
    assert status in (200, 204) and data == b""
    assert result_of(url, "stack.getSize", [name]) == 1
    assert result_of(url, "stack.pop", [name]) == "pushed by a notification"


def test_empty_batch(url):
    r = rpc(url, [])
    assert isinstance(r, dict), r
    assert r["id"] is None and r["error"]["code"] == -32600 and "result" not in r


@pytest.mark.parametrize("body", [
    b'{"jsonrpc":',
    b'{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1',
    b'[{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1},',
    b"not json at all",
    b"",
    b'{"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1} trailing',
    b"\xff\xfe garbage",
])
def test_parse_error(url, body):
    r = rpc(url, body)
    assert isinstance(r, dict), r
    assert r["jsonrpc"] == "2.0" and r["id"] is None and "result" not in r, r
    assert r["error"]["code"] == -32700


@pytest.mark.parametrize("body", [
    {"jsonrpc": "2.0", "method": 1, "params": "bar", "id": 7},
    {"jsonrpc": "2.0", "method": "add", "params": 3, "id": 7},
    {"jsonrpc": "2.0", "method": "add", "params": "12", "id": 7},
    {"jsonrpc": "2.0", "params": [1], "id": 7},
    {"jsonrpc": "3.0", "method": "add", "params": [1, 2], "id": 7},
    {"jsonrpc": "2.0", "method": None, "id": 7},
])
def test_invalid_request_with_readable_id(url, body):
    r = rpc(url, body)
    assert r["error"]["code"] == -32600, r
    assert r["id"] in (7, None), r
    assert "result" not in r


@pytest.mark.parametrize("body", ["foo", 42, None, True,
                                  {"jsonrpc": "2.0", "method": "add", "params": [1, 2],
                                   "id": {"an": "object"}}])
def test_invalid_request_without_id(url, body):
    r = rpc(url, body)
    assert r["error"]["code"] == -32600, r
    assert r["id"] is None
    assert "result" not in r


def test_method_not_found(url):
    code, message = error_of(url, call2("no_such_method", [1]))
    assert code == -32601
    assert "no_such_method" in message


def test_named_params(url):
    assert result_of(url, "add", {"a": 2, "b": 3}) == 5
    assert result_of(url, "add", {"b": "y", "a": "x"}) == "xy"
    assert result_of(url, "quadratic", {"c": 0, "b": -4, "a": 2}) == [0.0, 8.0]
    assert result_of(url, "remote_repr", {"arg": [1, "two"]}) == [1, "two"]
    assert len(result_of(url, "spinList", {"spins": 2})) == 2
    assert len(result_of(url, "spinList", {})) == 1  # spins defaults to 1
    assert len(result_of(url, "spin", [])) == 4
    assert len(result_of(url, "spin")) == 4  # params may be omitted
    code, message = error_of(url, call2("line_counter", {"text": "a\n"}))
    assert code == 1 and message.startswith("CallbackError:")


@pytest.mark.parametrize("method,params", [
    ("add", {"a": 1}),  # missing b
    ("add", {}),
    ("add", {"a": 1, "b": 2, "c": 3}),  # unknown c
    ("add", {"x": 1, "y": 2}),
    ("quadratic", {"a": 1, "b": 2}),
    ("remote_repr", {"value": 1}),
    ("add", [1]),
    ("add", [1, 2, 3]),
    ("quadratic", [1, 2, 3, 4]),
])
def test_wrong_params(url, method, params):
    code, _ = error_of(url, call2(method, params))
    assert code == -32602


def test_app_fault(url):
    code, message = error_of(url, call2("quadratic", [1, 0, 1]))
    assert (code, message) == (1, "ValueError: math domain error")


def test_version_1_style(url):
    r = rpc(url, {"method": "add", "params": [2, 3], "id": 5})
    assert r == {"id": 5, "result": 5, "error": None}
    r = rpc(url, {"method": "addtogether", "params": ["x", "ÿ"], "id": "s"})
    assert r == {"id": "s", "result": "xÿ", "error": None}
    r = rpc(url, {"method": "quadratic", "params": [1, 0, 1], "id": 6})
    assert "jsonrpc" not in r
    assert r["id"] == 6 and r["result"] is None
    assert r["error"]["code"] == 1
    assert r["error"]["message"] == "ValueError: math domain error"


@pytest.mark.parametrize("content_type", [
    "application/json",
    "application/json-rpc",
    "application/jsonrequest",
    "application/json; charset=utf-8",
    "application/json-rpc; charset=UTF-8",
])
@pytest.mark.parametrize("path", ["/", "/RPC2"])
def test_content_types_and_paths(url, content_type, path):
    r = rpc(url, call2("addtogether", ["x", "ÿ", "z"]), content_type=content_type, path=path)
    assert r == {"jsonrpc": "2.0", "id": 1, "result": "xÿz"}


def test_xml_rpc_still_served_beside_json(url):
    # The same port serves XML-RPC for text/xml.
    assert xmlrpc.client.ServerProxy(url).add(2, 3) == 5


def test_rpc_discover(url):
    doc = result_of(url, "rpc.discover")
    assert doc["openrpc"] == "1.2.6"
    assert isinstance(doc["info"]["title"], str) and isinstance(doc["info"]["version"], str)
    methods = {m["name"]: m for m in doc["methods"]}
    assert len(methods) == len(doc["methods"])
    for name in ("add", "addtogether", "quadratic", "remote_repr", "spin", "spinList",
                 "line_counter"):
        assert name in methods, name
        assert isinstance(methods[name]["description"], str) and methods[name]["description"]
    for m in doc["methods"]:
        assert isinstance(m["params"], list)
        for p in m["params"]:
            assert isinstance(p["name"], str) and isinstance(p["required"], bool)
            assert isinstance(p["schema"], dict)

    def params(name):
        return [(p["name"], p["required"]) for p in methods[name]["params"]]

    assert params("add") == [("a", True), ("b", True)]
    assert params("quadratic") == [("a", True), ("b", True), ("c", True)]
    assert params("remote_repr") == [("arg", True)]
    assert params("spinList") == [("spins", False)]
    assert params("line_counter") == [("text", True), ("callback", False)]
    assert params("spin") == []
    assert methods["addtogether"]["description"] == "Add together everything in the list `things`."
    # The same document from a 1.0-style request and with params [].
    r = rpc(url, {"method": "rpc.discover", "params": [], "id": 1})
    assert r["error"] is None and r["result"] == doc


def test_bytes_and_datetimes_map_to_strings(master_endpoints):
    """Bytes travel as base64 strings, date-times as YYYY-MM-DDTHH:MM:SS strings."""
    name = f"st-{uuid.uuid4().hex}"
    x = xmlrpc.client.ServerProxy(master_endpoints.http, allow_none=True)
    assert x.storage.setParameter(name, "bin", xmlrpc.client.Binary(b"\x00\xffhi")) is True
    assert x.storage.setParameter(name, "when",
                                  xmlrpc.client.DateTime("20060102T15:04:05")) is True
    url = master_endpoints.http
    assert result_of(url, "storage.getParameter", [name, "bin"]) == "AP9oaQ=="
    assert result_of(url, "storage.getParameter", [name, "when"]) == "2006-01-02T15:04:05"
    assert result_of(url, "storage.getAllParameters", [name]) == {
        "bin": "AP9oaQ==", "when": "2006-01-02T15:04:05"}


def test_master_faults_over_json_rpc(master_endpoints):
    url = master_endpoints.http
    name = f"s-{uuid.uuid4().hex}"
    code, message = error_of(url, call2("stack.pop", [name]))
    assert code == 1 and message.startswith("StackNotFoundError:")
    assert result_of(url, "stack.push", {"name": name, "item": "a"}) == 1
    assert result_of(url, "stack.pop", [name]) == "a"
    code, message = error_of(url, call2("stack.pop", [name]))
    assert code == 1 and message.startswith("StackIndexError:")
    code, message = error_of(url, call2("provider.subscribe", [name]))
    assert code == 1 and message.startswith("CallbackError:")


# --- our CLI against jsonrpclib-pelix's server --------------------------------------------------


class _QuietJSONHandler(SimpleJSONRPCRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature from the stdlib
        pass


@pytest.fixture(scope="module")
def python_json_server():
    """jsonrpclib-pelix's SimpleJSONRPCServer with the seed functions; yields (host, port)."""
    config = jsonrpclib.config.Config(send_exception_details=True)
    server = SimpleJSONRPCServer(("127.0.0.1", 0), requestHandler=_QuietJSONHandler,
                                 logRequests=False, config=config)
    server.register_introspection_functions()
    server.register_multicall_functions()
    for f in (addtogether, quadratic, remote_repr, add):
        server.register_function(f)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def py_url(python_json_server):
    host, port = python_json_server
    return f"jsonrpc+http://{host}:{port}/"


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}; stderr: {proc.stderr}"
    return proc.stdout


def test_python_server_sanity(python_json_server):
    host, port = python_json_server
    assert jsonrpclib.ServerProxy(f"http://{host}:{port}/").addtogether("x", "ÿ", "z") == "xÿz"


def test_cli_calls_python_json_server(run_rpcs, py_url):
    assert ok(run_rpcs("call", py_url, "add", "-j", "2", "3")) == "5\n"
    assert ok(run_rpcs("call", py_url, "add", "2", "3")) == "23\n"
    assert ok(run_rpcs("call", py_url, "addtogether", "x", "ÿ", "z")) == "xÿz\n"
    assert ok(run_rpcs("call", py_url, "-j", "addtogether", "20", "30", "4", "1")) == "55\n"
    assert ok(run_rpcs("call", py_url, "-j", "quadratic", "2", "-4", "0", "--print-json")) \
        == "[0.0,8.0]\n"
    assert ok(run_rpcs("call", py_url, "-j", "quadratic", "1", "2", "1", "-pj")) == "[-1.0]\n"
    arg = '{"name":"Arthur","data":{"age":42,"sex":"M"},"zz":[1,2.5,"three",true,null]}'
    assert ok(run_rpcs("call", py_url, "-j", "remote_repr", arg, "--print-json")) == arg + "\n"


def test_cli_faults_from_python_json_server(run_rpcs, py_url):
    # jsonrpclib's server turns exceptions into -32603 with the details (as configured).
    proc = run_rpcs("call", py_url, "-j", "quadratic", "1", "0", "1")
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    assert proc.stderr.startswith("fault -32603: "), proc.stderr
    assert "math domain error" in proc.stderr
    proc = run_rpcs("call", py_url, "no_such_method")
    assert proc.returncode == 1
    assert proc.stderr.startswith("fault -32601: "), proc.stderr
    proc = run_rpcs("call", py_url, "-j", "add", "1")
    assert proc.returncode == 1
    assert proc.stderr.startswith("fault -32602: "), proc.stderr


def test_cli_lists_python_json_server_methods(run_rpcs, py_url):
    # No method: the names from system.listMethods.
    out = ok(run_rpcs("call", py_url))
    names = out.split()
    for name in ("add", "addtogether", "quadratic", "remote_repr", "system.listMethods"):
        assert name in names, out


def test_cli_methods_python_json_server(run_rpcs, py_url):
    # Python answers methodSignature with 'signatures not supported' (no signatures);
    # the help is the docstring.
    doc = json.loads(ok(run_rpcs("methods", py_url, "--json")))
    by_name = {m["name"]: m for m in doc}
    assert [m["name"] for m in doc] == sorted(by_name)
    assert {"add", "addtogether", "quadratic", "remote_repr", "system.listMethods",
            "system.methodHelp", "system.methodSignature", "system.multicall"} <= set(by_name)
    for f in (add, addtogether, quadratic, remote_repr):
        assert by_name[f.__name__] == {"name": f.__name__, "signatures": [], "help": f.__doc__}
    out = ok(run_rpcs("methods", py_url))
    assert "addtogether\n    Add together everything in the list `things`.\n" in out
    assert "remote_repr\n    Return the `repr()` rendering of the supplied `arg`.\n" in out


def test_cli_jsonrpc_against_ours_matches_python(run_rpcs, py_url, example_endpoints):
    ours = example_endpoints.jsonrpc
    for args in (("add", "-j", "2", "3"), ("addtogether", "x", "ÿ", "z"),
                 ("-j", "quadratic", "2", "-4", "0", "-pj"),
                 ("-j", "remote_repr", '{"b":1,"a":[true,null]}', "-pj")):
        assert ok(run_rpcs("call", ours, *args)) == ok(run_rpcs("call", py_url, *args))
    proc = run_rpcs("call", ours, "-j", "quadratic", "1", "0", "1")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "fault 1: ValueError: math domain error"
