"""Our ``rpcs`` CLI against Python's SimpleXMLRPCServer and against our example server."""

import datetime
import json
import socket
import subprocess
import threading
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCServer

import pytest


@pytest.fixture(params=["python", "ours"])
def server(request):
    """Each CLI test runs against both servers: (kind, url)."""
    fixture = "python_server" if request.param == "python" else "example_server"
    return request.param, request.getfixturevalue(fixture)


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}; stderr: {proc.stderr}"
    return proc.stdout


# --- calls ---------------------------------------------------------------------------------


def test_add_json(server, run_rpcs):
    _, url = server
    assert ok(run_rpcs("call", url, "add", "-j", "2", "3")) == "5\n"


def test_args_are_strings(server, run_rpcs):
    _, url = server
    assert ok(run_rpcs("call", url, "addtogether", "x", "y", "z")) == "xyz\n"
    assert ok(run_rpcs("call", url, "add", "2", "3")) == "23\n"
    # Negative numbers and option-like values are plain arguments too.
    assert ok(run_rpcs("call", url, "addtogether", "-1", "-2")) == "-1-2\n"


def test_unicode_args(server, run_rpcs):
    _, url = server
    assert ok(run_rpcs("call", url, "addtogether", "x", "ÿ", "z", "😀")) == "xÿz😀\n"


def test_quadratic_negative_args_print_json(server, run_rpcs):
    _, url = server
    out = ok(run_rpcs("call", url, "-j", "quadratic", "2", "-4", "0", "--print-json"))
    assert out == "[0.0,8.0]\n"
    out = ok(run_rpcs("call", url, "quadratic", "-j", "1", "2", "1", "-pj"))
    assert out == "[-1.0]\n"


def test_remote_repr_struct_order(server, run_rpcs):
    _, url = server
    arg = '{"name":"Arthur","data":{"age":42,"sex":"M"},"zz":[1,2.5,"three",true,null],"aa":{}}'
    out = ok(run_rpcs("call", url, "-j", "remote_repr", arg, "--print-json"))
    assert out.count("\n") == 1
    assert out.strip() == arg
    r = json.loads(out)
    assert list(r) == ["name", "data", "zz", "aa"]
    assert list(r["data"]) == ["age", "sex"]


def test_default_output(server, run_rpcs):
    _, url = server
    # A top-level string is printed bare, even when it looks like JSON.
    assert ok(run_rpcs("call", url, "remote_repr", "hello world")) == "hello world\n"
    assert ok(run_rpcs("call", url, "-j", "remote_repr", '"[1, 2]"')) == "[1, 2]\n"
    # Anything else is JSON, pretty-printed.
    out = ok(run_rpcs("call", url, "-j", "remote_repr", '{"b": [1, 2], "a": "x"}'))
    assert json.loads(out) == {"b": [1, 2], "a": "x"}
    assert list(json.loads(out)) == ["b", "a"]
    assert out.count("\n") > 1
    assert ok(run_rpcs("call", url, "-j", "remote_repr", "true")).strip() == "true"
    assert json.loads(ok(run_rpcs("call", url, "-j", "remote_repr", "1.5"))) == 1.5


def test_null_roundtrip(server, run_rpcs):
    _, url = server
    assert ok(run_rpcs("call", url, "-j", "remote_repr", "null", "--print-json")) == "null\n"


def test_special_strings_roundtrip(server, run_rpcs):
    kind, url = server
    for text in ["<&>", "a\r\nb\rc", "tab\tend", "😀 𝄞 ÿ", "]]>", "  spaced  "]:
        out = ok(run_rpcs("call", url, "remote_repr", text, "--print-json"))
        # Python's server writes \r raw, which XML reads back as \n; ours escapes it.
        want = text.replace("\r\n", "\n").replace("\r", "\n") if kind == "python" else text
        assert json.loads(out) == want, text


def test_floats_roundtrip(server, run_rpcs):
    import math

    _, url = server
    values = [0.1, 1e300, -0.0, 5e-324, -2.5, 1.0]
    out = ok(run_rpcs("call", url, "-j", "remote_repr", json.dumps(values), "--print-json"))
    r = json.loads(out)
    assert r == values
    assert all(type(x) is float for x in r)
    assert math.copysign(1.0, r[2]) == -1.0


def test_big_int(server, run_rpcs):
    kind, url = server
    proc = run_rpcs("call", url, "-j", "add", str(2**31 - 1), "1", "--print-json")
    if kind == "python":
        # Python's server refuses to send an int beyond 32 bits: a fault, not a crash.
        assert proc.returncode == 1
        assert proc.stderr.startswith("fault 1:")
    else:
        assert ok(proc) == f"{2**31}\n"


def test_fault(server, run_rpcs):
    kind, url = server
    proc = run_rpcs("call", url, "-j", "quadratic", "1", "0", "1")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "fault 1:" in proc.stderr
    assert "math domain error" in proc.stderr
    if kind == "python":
        assert "fault 1: <class 'ValueError'>:math domain error" in proc.stderr


def test_unknown_method_fault(server, run_rpcs):
    _, url = server
    proc = run_rpcs("call", url, "no_such_method")
    assert proc.returncode == 1
    assert proc.stderr.startswith("fault ")


def test_gzip_requests(server, run_rpcs):
    _, url = server
    big = "é" * 5000
    out = ok(run_rpcs("call", "--gzip-over", "0", url, "addtogether", big, "x"))
    assert out == big + "x\n"
    assert ok(run_rpcs("call", "--gzip-over", "0", url, "add", "-j", "2", "3")) == "5\n"


def test_bad_json_arg_is_an_error(server, run_rpcs):
    _, url = server
    proc = run_rpcs("call", url, "-j", "add", "{not json", "1")
    assert proc.returncode != 0
    assert proc.stdout == ""


# --- listing methods -----------------------------------------------------------------------


def python_listing_checks(out):
    lines = out.splitlines()
    # Python answers methodSignature with "signatures not supported": bare names.
    for name in ("add", "addtogether", "quadratic", "remote_repr", "system.listMethods"):
        assert name in lines, name
    assert "    Add together everything in the list `things`." in lines
    assert "    Determine `x` values satisfying: `a` * x*x + `b` * x + c == 0" in lines
    assert lines.index("addtogether") < lines.index("    Add together everything in the list `things`.")
    assert "signatures not supported" not in out


def ours_listing_checks(out):
    lines = out.splitlines()
    assert "quadratic(double, double, double) -> array" in lines
    assert "    Determine `x` values satisfying: `a` * x*x + `b` * x + c == 0" in lines
    names = {line.split("(")[0] for line in lines if line and not line.startswith(" ")}
    assert {"add", "addtogether", "quadratic", "remote_repr", "spin", "spinList", "system.multicall"} <= names


@pytest.mark.parametrize("how", ["methods", "call"])
def test_list_methods(server, run_rpcs, how):
    kind, url = server
    out = ok(run_rpcs(how, url))
    assert all(line.startswith("    ") for line in out.splitlines() if line[:1].isspace())
    if kind == "python":
        python_listing_checks(out)
    else:
        ours_listing_checks(out)


def test_list_methods_json(server, run_rpcs):
    kind, url = server
    methods = json.loads(ok(run_rpcs("methods", url, "--json")))
    assert isinstance(methods, list)
    by_name = {m["name"]: m for m in methods}
    assert {"add", "addtogether", "quadratic", "remote_repr"} <= set(by_name)
    for m in methods:
        assert set(m) >= {"name", "signatures", "help"}
        assert isinstance(m["signatures"], list)
    assert "Determine" in by_name["quadratic"]["help"]
    assert "things" in by_name["addtogether"]["help"]
    if kind == "python":
        assert all(m["signatures"] == [] for m in methods)
    else:
        assert by_name["quadratic"]["signatures"] == [["array", "double", "double", "double"]]


def test_listing_matches_server_list(server, run_rpcs):
    _, url = server
    with xmlrpc.client.ServerProxy(url) as p:
        expected = p.system.listMethods()
    methods = json.loads(ok(run_rpcs("methods", url, "--json")))
    assert sorted(m["name"] for m in methods) == sorted(expected)


# --- URLs and errors -----------------------------------------------------------------------


def test_url_without_path_uses_rpc2(python_server, example_server, run_rpcs):
    for url in (python_server, example_server):
        bare = url.rstrip("/")
        assert bare.count("/") == 2  # http://host:port
        assert ok(run_rpcs("call", bare, "add", "-j", "20", "22")) == "42\n"
        assert "quadratic" in ok(run_rpcs("methods", bare))


def test_explicit_rpc2_path(server, run_rpcs):
    _, url = server
    assert ok(run_rpcs("call", url + "RPC2", "add", "-j", "1", "1")) == "2\n"


def test_wrong_path_is_an_error_not_a_fault(example_server, run_rpcs):
    proc = run_rpcs("call", example_server + "other", "add", "-j", "1", "1")
    assert proc.returncode == 3
    assert proc.stderr.startswith("rpcs: ")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused(run_rpcs):
    proc = run_rpcs("call", f"http://127.0.0.1:{free_port()}/", "add", "-j", "1", "2")
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr.startswith("rpcs: ")
    proc = run_rpcs("methods", f"http://127.0.0.1:{free_port()}/")
    assert proc.returncode == 3


def test_timeout(run_rpcs):
    """A server that accepts but never answers: --timeout ends the call with exit 3."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        proc = run_rpcs("call", "--timeout", "1", f"http://127.0.0.1:{port}/", "add", "-j", "1", "2", timeout=20)
    assert proc.returncode == 3
    assert proc.stderr.startswith("rpcs: ")


# --- bytes and datetimes in the output -----------------------------------------------------


@pytest.fixture(scope="module")
def typed_server():
    """A Python server whose methods return base64 and dateTime values."""
    server = SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False, allow_none=True)
    server.register_function(lambda: xmlrpc.client.Binary(bytes(range(256))), "blob")
    server.register_function(lambda: datetime.datetime(2026, 11, 21, 5, 17, 0), "when")
    server.register_function(
        lambda: {"b": xmlrpc.client.Binary(b"hi"), "t": xmlrpc.client.DateTime("19990102T23:59:59")},
        "both",
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d/" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_bytes_and_datetime_output(typed_server, run_rpcs):
    import base64

    out = ok(run_rpcs("call", typed_server, "blob", "--print-json"))
    assert json.loads(out) == base64.b64encode(bytes(range(256))).decode()
    out = ok(run_rpcs("call", typed_server, "when", "--print-json"))
    assert json.loads(out) == "2026-11-21T05:17:00"
    out = ok(run_rpcs("call", typed_server, "both", "--print-json"))
    assert json.loads(out) == {"b": "aGk=", "t": "1999-01-02T23:59:59"}


def test_methods_hides_the_underscore_aliases_unless_asked(master_endpoints, run_rpcs):
    def names(*flags):
        listing = json.loads(ok(run_rpcs("methods", master_endpoints.http, "--json", *flags)))
        return {m["name"] for m in listing}

    shown, every = names(), names("--all")
    assert {"stack.push", "provider.login"} <= shown
    assert not {"stack_push", "provider_login"} & shown
    assert {"stack.push", "stack_push", "provider_login"} <= every
    # The plain listing hides them too (remote_repr, with no dotted twin, stays: see above).
    text = ok(run_rpcs("methods", master_endpoints.http))
    assert "stack_push(" not in text and "stack.push(" in text


def bash_completions(bin_dir, words):
    """What bash offers for the last of ``words`` with `rpcs completions bash` loaded."""
    script = subprocess.run([str(bin_dir / "rpcs"), "completions", "bash"],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    words_arr = " ".join(f"'{w}'" for w in words)
    probe = (f"{script}\nCOMP_WORDS=({words_arr}); COMP_CWORD={len(words) - 1}; "
             f"COMP_LINE='{' '.join(words)}'; COMP_POINT=${{#COMP_LINE}}; "
             "_rpcs rpcs \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\"; "
             "printf '%s\\n' \"${COMPREPLY[@]}\"")
    r = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_bash_completes_commands_and_their_flags(bin_dir):
    assert bash_completions(bin_dir, ["rpcs", "ma"]) == {"master", "man"}
    flags = bash_completions(bin_dir, ["rpcs", "master", "--ba"])
    assert flags == {"--backend"}
    assert {"memory", "embedded", "redis"} <= bash_completions(
        bin_dir, ["rpcs", "master", "--backend", ""])


@pytest.mark.parametrize("shell", ["zsh", "fish", "elvish", "powershell"])
def test_completions_for_other_shells_name_every_command(run_rpcs, shell):
    r = run_rpcs("completions", shell)
    assert r.returncode == 0, r.stderr
    for command in ("master", "serve", "call", "monitor", "token"):
        assert command in r.stdout, command


def test_man_page_of_rpcs_and_one_per_command(run_rpcs, tmp_path):
    r = run_rpcs("man")
    assert r.returncode == 0, r.stderr
    assert ".TH rpcs 1" in r.stdout and ".SH NAME" in r.stdout and "master" in r.stdout
    r = run_rpcs("man", "--dir", tmp_path)
    assert r.returncode == 0, r.stderr
    pages = {p.name for p in tmp_path.iterdir()}
    assert {"rpcs.1", "rpcs-master.1", "rpcs-serve.1", "rpcs-token-new.1"} <= pages
    master = (tmp_path / "rpcs-master.1").read_text()
    assert ".TH rpcs-master 1" in master
    assert "\\-\\-backend" in master and "\\-\\-durability" in master
