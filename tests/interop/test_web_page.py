"""The page on ``GET /``: the method list with signatures and documentation, and the live
view fed over the WebSocket JSON-RPC, checked in a real headless Chromium (Debian's
``chromium``, which the test command installs) driven over the DevTools protocol. Screenshots
go to ``target/test-artifacts`` (or ``$RPCS_ARTIFACTS``)."""

import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
import xmlrpc.client
from pathlib import Path

import pytest
import websocket

from conftest import ServerProcess, terminate
from test_auth import new_token

HERE = Path(__file__).resolve().parent
# Safety nets only: no test asserts on timing.
TIMEOUT = 30
ARTIFACTS = Path(os.environ.get("RPCS_ARTIFACTS", HERE / ".." / ".." / "target" / "test-artifacts"))


def chromium_path():
    for name in (os.environ.get("RPCS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.fail("no chromium: scripts/test.sh installs Debian's chromium package")


class Browser:
    """One headless Chromium with one page, spoken to over the DevTools protocol."""

    def __init__(self, profile):
        self.log = open(profile.parent / "chromium.log", "wb")
        self.proc = subprocess.Popen(
            [chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--window-size=1280,1000", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start: {(profile.parent / 'chromium.log').read_text()}")
            time.sleep(0.05)
        port = int(port_file.read_text().split("\n")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(
            target["webSocketDebuggerUrl"], timeout=TIMEOUT, suppress_origin=True)
        self.next_id = 0

    def send(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg["result"]

    def goto(self, url):
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def eval(self, expression):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout=TIMEOUT):
        """Polls until the expression is truthy; fails with what the page shows."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        text = self.eval("document.body ? document.body.innerText : ''")
        pytest.fail(f"never true: {expression}\npage text:\n{text}")

    def screenshot(self, name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def close(self):
        try:
            self.ws.close()
        finally:
            terminate(self.proc)
            self.log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium") / "profile")
    try:
        yield b
    finally:
        b.close()


def no_token_env():
    env = dict(os.environ)
    env.pop("RPCS_TOKEN", None)
    return env


@pytest.fixture(scope="module")
def master(bin_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("web-master")
    argv = [bin_dir / "rpcs", "master", "--backend", "memory", "--listen", "127.0.0.1:0"]
    proc = ServerProcess(argv, 1, d / "stderr.log", env=no_token_env())
    try:
        yield proc.urls[0]
    finally:
        proc.stop()


def get(url, path="/", method="GET", headers=None):
    host_port = url.removeprefix("http://").rstrip("/")
    conn = http.client.HTTPConnection(host_port, timeout=TIMEOUT)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def row_cells(table, name):
    """JS: the cells of the row named ``name`` in a live table, as text (null when absent)."""
    return (f"(() => {{ const tr = [...document.querySelectorAll('#{table} tbody tr')]"
            f".find(r => r.dataset.name === {json.dumps(name)});"
            " return tr ? [...tr.cells].map(c => c.textContent) : null; })()")


def shown(element_id):
    """JS: whether the element takes up room on the screen."""
    return f"document.getElementById({json.dumps(element_id)}).getClientRects().length > 0"


# --- the page as HTTP serves it -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/RPC2"])
def test_get_serves_the_method_list_with_signatures_and_docs(master, path):
    status, headers, body = get(master, path)
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    html = body.decode()
    assert "<title>rpcs master</title>" in html
    assert "<code>stack.push(name: string, item: string) -&gt; int</code>" in html \
        or 'data-name="stack.push"' in html
    doc = xmlrpc.client.ServerProxy(master).system.methodHelp("stack.push")
    assert doc and doc.split("\n")[0].replace("&", "&amp;").replace("<", "&lt;") in html
    # The underscore aliases are left out, as `rpcs methods` leaves them.
    assert 'data-name="stack_push"' not in html


def test_the_page_allows_only_its_own_script_and_style(master):
    _, headers, body = get(master)
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'sha256-" in policy and "'unsafe-inline'" not in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    # Nothing is loaded from elsewhere.
    html = body.decode()
    assert "src=" not in html and "<link" not in html and "http://" not in html


def test_head_answers_without_a_body(master):
    status, headers, body = get(master, method="HEAD")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert body == b""


def test_a_websocket_from_another_sites_page_is_refused(master):
    host_port = master.removeprefix("http://").rstrip("/")
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        websocket.create_connection(f"ws://{host_port}/", timeout=TIMEOUT,
                                    origin="http://evil.example")
    assert e.value.status_code == 403
    # The page's own origin, and programs that send none, are served.
    for options in ({"origin": f"http://{host_port}"}, {"suppress_origin": True}):
        ws = websocket.create_connection(f"ws://{host_port}/", timeout=TIMEOUT, **options)
        try:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "stack.getAllNames"}))
            assert "result" in json.loads(ws.recv())
        finally:
            ws.close()


def test_an_allowed_origin_may_open_a_websocket(bin_dir, tmp_path):
    argv = [bin_dir / "rpcs", "master", "--backend", "memory", "--listen", "127.0.0.1:0",
            "--allow-origin", "https://dash.example"]
    proc = ServerProcess(argv, 1, tmp_path / "stderr.log", env=no_token_env())
    try:
        host_port = proc.urls[0].removeprefix("http://").rstrip("/")
        ws = websocket.create_connection(f"ws://{host_port}/", timeout=TIMEOUT,
                                         origin="https://dash.example")
        ws.close()
        with pytest.raises(websocket.WebSocketBadStatusException) as e:
            websocket.create_connection(f"ws://{host_port}/", timeout=TIMEOUT,
                                        origin="https://other.example")
        assert e.value.status_code == 403
    finally:
        proc.stop()


# --- the page in a browser ------------------------------------------------------------------


def test_the_live_view_shows_a_pushed_stack_and_follows_it(master, browser):
    proxy = xmlrpc.client.ServerProxy(master)
    stack = f"web-{uuid.uuid4().hex[:8]}"
    proxy.stack.push(stack, "one")
    client = f"worker-{uuid.uuid4().hex[:6]}"
    proxy.provider.login(client)
    proxy.provider.visit(client, {"mode": "crawling", "url": "http://example.test/a"})

    browser.goto(master + "?interval=0.3")
    # The method list is there without the live view's help.
    assert browser.eval("!!document.querySelector('#methods dt[data-name=\"stack.push\"]')")
    browser.wait_for("document.getElementById('state').textContent === 'live'")
    # No tokens, so no login form on screen.
    assert not browser.eval(shown("login"))
    cells = browser.wait_for(f"(() => {{ const c = {row_cells('stacks', stack)}; "
                             "return c && c[1] === '1' ? c : null; })()")
    assert cells[0] == stack
    client_cells = browser.wait_for(row_cells("clients", client))
    assert client_cells[2] == "crawling" and client_cells[3] == "http://example.test/a"
    storage = f"cfg-{uuid.uuid4().hex[:6]}"
    proxy.storage.setParameters(storage, {"depth": 3, "seed": "http://example.test/"})
    browser.wait_for(f"(() => {{ const c = {row_cells('storages', storage)}; "
                     "return c && c[1] === '2'; })()")

    proxy.stack.push(stack, "two")
    proxy.stack.push(stack, "three")
    browser.wait_for(f"(() => {{ const c = {row_cells('stacks', stack)}; "
                     "return c && c[1] === '3'; })()")
    # Once there are two looks, in/s, out/s and change/s are numbers.
    rates = browser.wait_for(f"(() => {{ const c = {row_cells('stacks', stack)}; "
                             "return c && c[3] !== '' ? c.slice(3) : null; })()")
    assert all(re.fullmatch(r"-?\d+(\.\d)?", r) for r in rates), rates
    calls = browser.eval("document.querySelector('[data-total=\"calls\"] b').textContent")
    assert int(calls) > 0
    path = browser.screenshot("web-page-master.png")
    assert path.stat().st_size > 10_000


def test_names_that_look_like_markup_stay_text(master, browser):
    proxy = xmlrpc.client.ServerProxy(master)
    stack = f"<img src=x onerror=\"document.title='owned'\">{uuid.uuid4().hex[:6]}"
    proxy.stack.push(stack, "x")
    browser.goto(master + "?interval=0.3")
    cells = browser.wait_for(row_cells("stacks", stack))
    assert cells[0] == stack
    assert browser.eval("document.querySelectorAll('#live img').length") == 0
    assert browser.eval("document.title") == "rpcs master"


def test_a_library_server_shows_its_methods_and_totals(example_server, browser):
    browser.goto(example_server + "?interval=0.3")
    assert browser.eval("!!document.querySelector('#methods dt[data-name=\"add\"]')")
    help_text = browser.eval("document.querySelector('#methods dt[data-name=\"add\"]')"
                             ".nextElementSibling.textContent")
    assert help_text == xmlrpc.client.ServerProxy(example_server).system.methodHelp("add")
    browser.wait_for("document.querySelector('[data-total=\"calls\"] b') && "
                     "Number(document.querySelector('[data-total=\"calls\"] b').textContent) > 0")
    # Not a master: no clients, stacks or storages.
    assert not browser.eval(shown("master"))
    browser.screenshot("web-page-example-server.png")


# --- with tokens ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_master(bin_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("web-auth")
    entry, secret = new_token(bin_dir, "viewer", "read")
    (d / "tokens.toml").write_text(entry)
    argv = [bin_dir / "rpcs", "master", "--backend", "memory", "--auth", d / "tokens.toml",
            "--listen", "127.0.0.1:0"]
    proc = ServerProcess(argv, 1, d / "stderr.log", env=no_token_env())
    try:
        yield proc.urls[0], secret
    finally:
        proc.stop()


def basic(name, secret):
    return "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()


def test_with_tokens_the_page_needs_one(auth_master):
    url, secret = auth_master
    status, headers, _ = get(url)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic")
    assert get(url, headers={"Authorization": basic("viewer", "wrong")})[0] == 401
    status, _, body = get(url, headers={"Authorization": basic("viewer", secret)})
    assert status == 200 and b'data-tokens="true"' in body


def test_with_tokens_the_live_view_logs_in_with_the_form(auth_master, browser):
    url, secret = auth_master
    browser.send("Network.enable")
    browser.send("Network.setExtraHTTPHeaders", headers={"Authorization": basic("viewer", secret)})
    try:
        browser.goto(url + "?interval=0.3")
    finally:
        browser.send("Network.setExtraHTTPHeaders", headers={})
    # The socket goes without credentials the page cannot read: the form asks for them.
    browser.wait_for(shown("login"))
    browser.eval("document.getElementById('login-name').value = 'viewer'")
    browser.eval(f"document.getElementById('login-secret').value = {json.dumps(secret)}")
    browser.eval("document.getElementById('login').requestSubmit()")
    browser.wait_for("document.getElementById('state').textContent === 'live'")
    assert not browser.eval(shown("login"))
    assert browser.eval("document.getElementById('login-secret').value") == ""
