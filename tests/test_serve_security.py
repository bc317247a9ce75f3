"""No other web site can drive `convlens serve`: tried from another origin in a real Chromium.

The explorer listens on 127.0.0.2 (a loopback address other than the default, which must work
too). An attacker's page is served from 127.0.0.1 on another port, a different origin, and
tries every kind of request a browser lets a page send elsewhere: "simple" cross-origin POSTs
that need no preflight (``text/plain`` JSON, multipart with a model file, a raw image), a POST
with a guessed token (needs a preflight, never granted), a form submitted into a frame, and a
read of the page to steal the token. Every request that reaches the server is recorded: each
must be refused, and nothing may change (no computation, no upload, no model opened). A name
that resolves to the server (``--host-resolver-rules``, as DNS rebinding would) is refused by
the Host check. Then the real page, in the same browser, still works: its token flows.

The body limit is also checked at the ASGI level with endless chunked bodies: the server stops
reading right after the limit instead of storing what arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import http.server
import json
import threading

import pytest

from convlens.cli.serve import allowed_hosts
from convlens.serve import create_app
from convlens.serve.guard import TOKEN_HEADER
from servers import serving

in_browser = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

SERVER_HOST = "127.0.0.2"
REBOUND = "rebound.test"
"""A name Chromium resolves to the server, as an attacker's DNS would after rebinding."""

ATTACK_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>not convlens</title></head><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" enctype="text/plain" target="sink" action="TARGET/api/stages">
<input name='{"image": "sample-camera", "kernels": [{"weights": [[1]]}], "x": "' value='"}'>
</form>
<script>
const target = "TARGET";
const state = JSON.stringify({image: "sample-camera", mode: "gray", max_side: 256,
  kernels: [{name: "k", weights: [[0, 1, 0], [1, -4, 1], [0, 1, 0]]}], layer: {}});
const results = {};
async function attempt(name, request) {
  try {
    const response = await request();
    results[name] = `${response.type} ${response.status}`;
    if (response.type !== "opaque") results[name] += " " + (await response.text()).slice(0, 200);
  } catch (err) {
    results[name] = `blocked: ${err.message}`;
  }
}
(async () => {
  await attempt("text-plain", () => fetch(target + "/api/stages", {method: "POST",
    mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: state}));
  const form = new FormData();
  form.append("model", new Blob([new Uint8Array(64)]), "evil.pt");
  await attempt("multipart", () => fetch(target + "/api/model/upload", {method: "POST",
    mode: "no-cors", body: form}));
  await attempt("image", () => fetch(target + "/api/image?name=x.png", {method: "POST",
    mode: "no-cors", body: new Blob([new Uint8Array([137, 80, 78, 71])])}));
  await attempt("download", () => fetch(target + "/api/download/npz", {method: "POST",
    mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: state}));
  await attempt("guessed-token", () => fetch(target + "/api/stages", {method: "POST",
    headers: {"Content-Type": "application/json", "X-Convlens-Token": "guess"}, body: state}));
  await attempt("read-page", () => fetch(target + "/"));
  await attempt("read-meta", () => fetch(target + "/api/meta"));
  const frame = document.querySelector("iframe");
  const loaded = new Promise((resolve) => frame.addEventListener("load", resolve, {once: true}));
  document.getElementById("form").submit();
  await Promise.race([loaded, new Promise((resolve) => setTimeout(resolve, 5000))]);
  window.attack = results;
})();
</script></body></html>
"""


class Recorder:
    """ASGI wrapper that records ``(method, path, status, origin)`` of every HTTP answer."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: list[tuple[str, str, int, str]] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = dict(scope["headers"]).get(b"origin", b"").decode("latin-1")

        async def recorded(message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], message["status"], origin))
            await send(message)

        await self.app(scope, receive, recorded)


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium that resolves :data:`REBOUND` to the server's address."""
    from conftest import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {REBOUND} {SERVER_HOST}"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def explorer():
    """The explorer on 127.0.0.2 with the Host names `convlens serve` allows there; yields
    ``(url, app, recorder)``."""
    app = create_app(allowed_hosts=allowed_hosts(SERVER_HOST))
    recorder = Recorder(app)
    with serving(recorder, SERVER_HOST) as url:
        yield url, app, recorder


@pytest.fixture(scope="module")
def attacker(explorer, tmp_path_factory):
    """The attacker's page on another loopback origin (127.0.0.1, its own port)."""
    folder = tmp_path_factory.mktemp("attacker")
    (folder / "attack.html").write_text(ATTACK_PAGE.replace("TARGET", explorer[0]))
    handler = functools.partial(QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@in_browser[0]
@in_browser[1]
def test_a_page_from_another_origin_cannot_drive_the_server(chromium, explorer, attacker,
                                                            artifacts):
    _, app, recorder = explorer
    computed, loads = app.state.gate.computed, app.state.images.loads
    context = chromium.new_context()
    page = context.new_page()
    page.goto(attacker + "/attack.html")
    page.wait_for_function("window.attack !== undefined", timeout=30000)
    results = page.evaluate("window.attack")
    page.screenshot(path=str(artifacts / "serve-attack.png"))
    context.close()

    # what the attacker could see: nothing readable, the token-bearing page least of all
    assert results["guessed-token"].startswith("blocked"), results   # preflight never granted
    assert results["read-page"].startswith("blocked"), results       # CORS: page not readable
    assert results["read-meta"].startswith("blocked"), results
    for name in ("text-plain", "multipart", "image", "download"):
        assert results[name].startswith(("opaque", "blocked")), results

    # what reached the server: every state-changing request refused, nothing computed or kept
    attacks = [entry for entry in recorder.seen if entry[3] == attacker]
    posts = [entry for entry in attacks if entry[0] == "POST"]
    assert {path for _, path, _, _ in posts} >= {"/api/stages", "/api/model/upload",
                                                 "/api/image", "/api/download/npz"}
    assert all(status == 403 for _, _, status, _ in posts), posts
    assert [path for _, path, _, _ in posts].count("/api/stages") == 2  # fetch, and the form
    # the preflight of the guessed token is refused too, so its POST was never sent
    assert all(status >= 400 for method, _, status, _ in attacks if method != "GET"), attacks
    assert app.state.gate.computed == computed and app.state.images.loads == loads
    assert app.state.models.opened is None


@in_browser[0]
@in_browser[1]
def test_a_rebound_name_is_refused_by_the_host_check(chromium, explorer):
    url, _, recorder = explorer
    port = url.rsplit(":", 1)[1]
    context = chromium.new_context()
    page = context.new_page()
    response = page.goto(f"http://{REBOUND}:{port}/")
    assert response is not None and response.status == 400
    assert "answers only to" in page.content() and 'name="convlens-token"' not in page.content()
    context.close()
    assert ("GET", "/", 400) in [entry[:3] for entry in recorder.seen]


@in_browser[0]
@in_browser[1]
def test_the_real_page_still_works_and_sends_its_token(chromium, explorer):
    url, app, recorder = explorer
    context = chromium.new_context()
    page = context.new_page()
    sent = []
    page.on("request", lambda request: sent.append(request) if request.method == "POST" else None)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url + "/")
    page.wait_for_function("window.convlens.renders >= 1", timeout=30000)
    # an edit of one kernel cell recomputes through the guarded POST
    before = app.state.gate.computed
    page.get_by_label("kernel 1 row 1 column 1", exact=True).fill("5")
    page.wait_for_function("window.convlens.renders >= 2", timeout=30000)
    assert app.state.gate.computed > before
    context.close()
    assert not errors
    assert sent and all(r.headers.get(TOKEN_HEADER.lower()) == app.state.token for r in sent)
    own = [entry for entry in recorder.seen if entry[3] == url and entry[0] == "POST"]
    assert own and all(status == 200 for _, _, status, _ in own), own


# --------------------------------------------------------------------------- endless bodies


def endless_request(app, path: str, query: bytes = b"", content_type: bytes | None = None,
                    start: bytes = b""):
    """Send ``app`` a POST whose chunked body (``start``, then zeros) never ends; returns
    ``(status, error, bytes the app read)``."""
    read = 0
    chunk = b"\0" * 65536
    messages: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        body = start + chunk[len(start):] if read == 0 else chunk
        read += len(body)
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message: dict) -> None:
        messages.append(message)

    headers = [(b"host", b"testserver"), (TOKEN_HEADER.lower().encode(),
                                          app.state.token.encode())]
    if content_type:
        headers.append((b"content-type", content_type))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query, "headers": headers, "server": ("testserver", 80),
             "client": ("127.0.0.1", 5000)}
    # in a thread of its own: the module's Playwright keeps an event loop running in this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, asyncio.wait_for(app(scope, receive, send), timeout=60)).result()

    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return messages[0]["status"], json.loads(body)["error"], read


@pytest.mark.parametrize(("path", "query", "content_type", "limit"), [
    ("/api/image", b"name=a.png", b"application/octet-stream", 256 * 1024),
    ("/api/stages", b"", b"application/json", None),
    ("/api/model/upload", b"", b"multipart/form-data; boundary=x", None),
])
def test_an_endless_chunked_body_is_cut_right_after_the_limit(path, query, content_type, limit,
                                                               monkeypatch):
    """A body without Content-Length is refused as it passes the limit, not stored whole."""
    from convlens.serve import app as app_module

    monkeypatch.setattr(app_module, "MAX_JSON_BYTES", 512 * 1024)
    monkeypatch.setattr(app_module, "MAX_MODEL_BYTES", 1024 * 1024)
    app = create_app(max_upload_bytes=limit or 32 * 2**20)
    expected = {"/api/image": 256 * 1024, "/api/stages": 512 * 1024,
                "/api/model/upload": 1024 * 1024}[path]
    start = (b'--x\r\nContent-Disposition: form-data; name="model"; filename="m.pt"\r\n'
             b"Content-Type: application/octet-stream\r\n\r\n")  # a file that never ends
    status, error, read = endless_request(app, path, query, content_type, start)
    assert status == 413 and "over the" in error and "\n" not in error
    assert expected < read <= expected + 65536          # stopped at the first chunk past it
