"""ONE table of bad HTTP requests to the explorer's API, and what each must get back.

Every row is a request a hostile page, a careless script or a broken client could send: a
foreign Origin or Referer, no token or a wrong one, a Host the server does not answer to, bodies
over the limits (with a Content-Length and chunked without one), kernels with NaN, infinity or
numbers beyond float32, deeply nested JSON, and layer numbers far out of range. Each must be
answered with the expected status and ONE line ``{"error": "..."}`` holding the expected words,
never a 500, and the server keeps serving.

Add a row whenever you fix a request that misbehaved.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

import pytest

from convlens.kernels import get_kernel
from convlens.serve import create_app
from convlens.serve.guard import TOKEN_HEADER
from convlens.serve.limits import MAX_JSON_BYTES, MAX_KERNEL_SIDE, MAX_KERNELS

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

HOST = "127.0.0.1:8765"
OWN = f"http://{HOST}"
FOREIGN = "http://127.0.0.1:9999"            # another loopback origin: another port is another site
UPLOAD_LIMIT = 64 * 1024                      # the table's server takes image uploads to 64 KiB
SOBEL = get_kernel("sobel-h").as_2d().tolist()


def state(weights=None, **layer) -> dict:
    """A valid /api/stages body, with the first kernel's ``weights`` and ``layer`` replaced."""
    return {"image": "sample-camera", "mode": "gray", "max_side": 256,
            "kernels": [{"name": "k", "weights": SOBEL if weights is None else weights}],
            "layer": layer}


def raw_state(weights_text: str) -> bytes:
    """A /api/stages body with the weights written as raw JSON text (NaN, huge literals)."""
    return ('{"image": "sample-camera", "max_side": 256, "kernels": [{"name": "k", "weights": '
            + weights_text + "}]}").encode()


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def chunked(data: bytes, size: int = 65536):
    """``data`` as a generator: sent chunked, without Content-Length."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "convlensboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"{name}\""
            "\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + data + \
        f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass
class Bad:
    """One bad request: ``headers`` add to (or, with value None, remove from) the page's own
    (its Origin and token); ``body`` is a JSON value, bytes, or a callable making bytes or a
    generator (chunked)."""

    method: str
    path: str
    body: object = None
    status: int = 400
    words: tuple[str, ...] = ()
    headers: dict = field(default_factory=dict)
    content_type: str | None = None


OVERSIZE_JSON = b'{"image": "' + b"x" * (MAX_JSON_BYTES + 10) + b'"}'
MODEL_FORM, MODEL_FORM_TYPE = multipart("net.pt", b"\0" * 1024)

CASES = {
    # ---------------------------------------------------------------- who may change state
    "foreign-origin-stages": Bad("POST", "/api/stages", state(), 403, ("refused", FOREIGN),
                                 {"Origin": FOREIGN}),
    "foreign-origin-image": Bad("POST", "/api/image?name=a.png", b"\x89PNG", 403, ("refused",),
                                {"Origin": FOREIGN}, "application/octet-stream"),
    "foreign-origin-model-upload": Bad("POST", "/api/model/upload", MODEL_FORM, 403,
                                       ("refused",), {"Origin": FOREIGN}, MODEL_FORM_TYPE),
    "foreign-origin-model-open": Bad("POST", "/api/model/open", {"path": "x"}, 403, ("refused",),
                                     {"Origin": FOREIGN}),
    "foreign-origin-explain": Bad("POST", "/api/explain", {**state(), "row": 0, "col": 0}, 403,
                                  ("refused",), {"Origin": "https://evil.example"}),
    "foreign-origin-download": Bad("POST", "/api/download/figures", state(), 403,
                                   ("refused",), {"Origin": FOREIGN}),
    "foreign-origin-text-plain": Bad("POST", "/api/stages", json.dumps(state()).encode(), 403,
                                     ("refused",), {"Origin": FOREIGN, TOKEN_HEADER: None},
                                     "text/plain"),
    "null-origin": Bad("POST", "/api/stages", state(), 403, ("refused", "null"),
                       {"Origin": "null"}),
    "foreign-referer-no-origin": Bad("POST", "/api/stages", state(), 403, ("refused",),
                                     {"Origin": None, "Referer": FOREIGN + "/attack.html"}),
    "same-host-other-scheme": Bad("POST", "/api/stages", state(), 403, ("refused",),
                                  {"Origin": f"https://{HOST}"}),
    "missing-token": Bad("POST", "/api/stages", state(), 403, ("token", TOKEN_HEADER),
                         {TOKEN_HEADER: None}),
    "missing-token-no-origin": Bad("POST", "/api/model/upload", MODEL_FORM, 403, ("token",),
                                   {TOKEN_HEADER: None, "Origin": None}, MODEL_FORM_TYPE),
    "wrong-token": Bad("POST", "/api/stages", state(), 403, ("wrong token", "reload"),
                       {TOKEN_HEADER: "not-the-token"}),
    "non-ascii-token": Bad("POST", "/api/stages", state(), 403, ("wrong token",),
                           {TOKEN_HEADER: "t\u00f6ken".encode("latin-1")}),
    "wrong-host-get": Bad("GET", "/api/meta", None, 400, ("answers only to", "evil.example"),
                          {"Host": "evil.example"}),
    "rebinding-host-post": Bad("POST", "/api/stages", state(), 400, ("answers only to",),
                               {"Host": "evil.example:8765",
                                "Origin": "http://evil.example:8765"}),
    "empty-host": Bad("GET", "/", None, 400, ("answers only to",), {"Host": ""}),
    # ---------------------------------------------------------------- body sizes
    "oversize-json": Bad("POST", "/api/stages", OVERSIZE_JSON, 413, ("2.0 MiB limit", "JSON")),
    "oversize-json-chunked": Bad("POST", "/api/explain", lambda: chunked(OVERSIZE_JSON), 413,
                                 ("over the 2.0 MiB limit",)),
    "oversize-image-upload": Bad("POST", "/api/image?name=a.png", b"\0" * (UPLOAD_LIMIT + 1),
                                 413, ("64.0 KiB limit", "image upload"), {},
                                 "application/octet-stream"),
    "oversize-image-upload-chunked": Bad("POST", "/api/image?name=a.png",
                                         lambda: chunked(b"\0" * (4 * UPLOAD_LIMIT), 4096), 413,
                                         ("over the 64.0 KiB limit",), {},
                                         "application/octet-stream"),
    "oversize-model-declared": Bad("POST", "/api/model/upload", MODEL_FORM, 413,
                                   ("256.0 MiB limit", "model upload"),
                                   {"Content-Length": str(257 * 2**20)}, MODEL_FORM_TYPE),
    "oversize-json-to-unknown-route": Bad("POST", "/api/nope", OVERSIZE_JSON, 413,
                                          ("limit",)),
    # ---------------------------------------------------------------- kernels
    "kernel-nan": Bad("POST", "/api/stages", raw_state("[[NaN, 0], [0, 1]]"), 400,
                      ("row 1, column 1", "NaN is not a finite number")),
    "kernel-infinity": Bad("POST", "/api/stages", raw_state("[[1, -Infinity, 0]]"), 400,
                           ("row 1, column 2", "-inf is not a finite number")),
    "kernel-1e39": Bad("POST", "/api/stages", state([[1e39, 0, 0]]), 400,
                       ("row 1, column 1", "1e+39", "too large", "float32")),
    "kernel-minus-1e39-explain": Bad("POST", "/api/explain",
                                     {**state([[0, 0, -1e39]]), "row": 0, "col": 0}, 400,
                                     ("column 3", "float32")),
    "kernel-1e400-literal": Bad("POST", "/api/stages", raw_state("[[1e400, 1, 1]]"), 400,
                                ("inf is not a finite number",)),
    "kernel-huge-integer": Bad("POST", "/api/stages", raw_state("[[1" + "0" * 400 + ", 1]]"),
                               400, ("integer", "float32")),
    "kernel-integer-too-long-for-json": Bad("POST", "/api/stages",
                                            raw_state("[[" + "9" * 5000 + "]]"), 400,
                                            ("cannot be read",)),
    "kernel-1-over-0-text": Bad("POST", "/api/stages", state([["1/0", 1], [1, 1]]), 400,
                                ("'1/0' is not a number",)),
    "kernel-string": Bad("POST", "/api/stages", state([["abc"]]), 400, ("not a number",)),
    "kernel-null-cell": Bad("POST", "/api/stages", state([[None, 1, 1]]), 400,
                            ("None is not a number",)),
    "kernel-bool-cell": Bad("POST", "/api/stages", state([[True, 1, 1]]), 400,
                            ("not a number",)),
    "kernel-object-cell": Bad("POST", "/api/stages", state([[{"a": 1}, 1, 1]]), 400,
                              ("a dict is not a number",)),
    "kernel-ragged": Bad("POST", "/api/stages", state([[1, 2, 3], [1, 2]]), 400, ("ragged",)),
    "kernel-too-big": Bad("POST", "/api/stages", state([[1] * 40] * 40), 400, ("40x40",)),
    "kernel-nested-50": Bad("POST", "/api/stages", raw_state(nested(50)), 400,
                            ("nested 4 deep",)),
    "kernel-nested-100000": Bad("POST", "/api/stages", raw_state(nested(100_000)), 400,
                                ("cannot be read",)),
    "kernel-weights-a-string": Bad("POST", "/api/stages", state("1 0 -1"), 400,
                                   ("weights",)),
    "kernel-name-with-newline": Bad("POST", "/api/stages",
                                    {**state(), "kernels": [{"name": "a\nb",
                                                             "weights": [[1, None]]}]},
                                    400, ("kernel 1 (a b)",)),
    "no-kernels": Bad("POST", "/api/stages", {**state(), "kernels": []}, 400, ("kernels",)),
    "seventeen-kernels": Bad("POST", "/api/stages",
                             {**state(), "kernels": [{"weights": SOBEL}] * 17}, 400,
                             ("kernels",)),
    # ---------------------------------------------------------------- layer numbers
    "stride-2-to-70": Bad("POST", "/api/stages", state(stride=2**70), 400, ("stride",)),
    "padding-100000": Bad("POST", "/api/stages", state(padding=100_000), 400, ("padding",)),
    "padding-negative": Bad("POST", "/api/stages", state(padding=-1), 400, ("padding",)),
    "padding-word": Bad("POST", "/api/stages", state(padding="lots"), 400, ("padding",)),
    "pool-stride-2-to-70": Bad("POST", "/api/stages", state(pool_stride=2**70), 400,
                               ("pool_stride",)),
    "pool-negative": Bad("POST", "/api/stages", state(pool=-2), 400, ("pool",)),
    "dilation-zero": Bad("POST", "/api/download/npz", state(dilation=0), 400, ("dilation",)),
    "stride-fraction": Bad("POST", "/api/stages", state(stride=1.5), 400, ("stride",)),
    "stride-1e400": Bad("POST", "/api/stages", b'{"image": "sample-camera", "kernels": '
                        b'[{"weights": [[1]]}], "layer": {"stride": 1e400}}', 400, ("stride",)),
    "unknown-layer-field": Bad("POST", "/api/stages", state(groups=2), 400, ("groups",)),
    "explain-row-2-to-70": Bad("POST", "/api/explain", {**state(), "row": 2**70, "col": 0},
                               400, ("row",)),
    "explain-negative-col": Bad("POST", "/api/explain", {**state(), "row": 0, "col": -1}, 400,
                                ("col",)),
    "explain-kernel-99": Bad("POST", "/api/explain", {**state(), "kernel": 99, "row": 0,
                                                      "col": 0}, 400, ("kernel index",)),
    "explain-pooled-far": Bad("POST", "/api/explain", {**state(), "stage": "pooled",
                                                       "row": 10**9, "col": 0}, 400, ("row",)),
    "display-huge": Bad("POST", "/api/stages", {**state(), "display": 10**20}, 400,
                        ("display",)),
    "working-side-odd": Bad("POST", "/api/stages", {**state(), "max_side": 999}, 400,
                            ("working size",)),
    "image-query-side-huge": Bad("POST", "/api/image?name=a.png&max_side=" + "9" * 30,
                                 b"\x89PNG", 400, ("working size",), {},
                                 "application/octet-stream"),
    "image-query-side-word": Bad("POST", "/api/image?name=a.png&max_side=big", b"\x89PNG", 400,
                                 ("max_side",), {}, "application/octet-stream"),
    "image-name-nul": Bad("POST", "/api/image?name=a.p%00g", b"not an image", 400,
                          ("a.p",), {}, "application/octet-stream"),
    "image-empty": Bad("POST", "/api/image?name=a.png", b"", 400, ("empty",), {},
                       "application/octet-stream"),
    # ---------------------------------------------------------------- shapes and routes
    "body-not-json": Bad("POST", "/api/stages", b"{not json", 400, ("JSON",)),
    "body-a-list": Bad("POST", "/api/stages", [1, 2], 400, ("bad request",)),
    "kernels-a-string": Bad("POST", "/api/stages", {**state(), "kernels": "sobel-h"}, 400,
                            ("kernels",)),
    "unknown-image": Bad("POST", "/api/stages", {**state(), "image": "upload-nope"}, 400,
                         ("unknown image",)),
    "model-open-outside": Bad("POST", "/api/model/open", {"path": "../../etc/passwd"}, 400,
                              ("not one of the checkpoints",)),
    "model-run-without-model": Bad("POST", "/api/model/run", {"image": "sample-camera"}, 400,
                                   ("no model",)),
    "model-upload-not-a-form": Bad("POST", "/api/model/upload", b"junk", 400, ("checkpoint",),
                                   {}, "application/octet-stream"),
    "unknown-route": Bad("POST", "/api/nope", {}, 404, ("Not Found",)),
    "wrong-method": Bad("GET", "/api/stages", None, 405, ("Method Not Allowed",)),
}


@pytest.fixture(scope="module")
def app():
    return create_app(allowed_hosts=["127.0.0.1", "localhost"], max_upload_bytes=UPLOAD_LIMIT)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url=OWN) as test_client:
        yield test_client


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_request_gets_one_line_and_no_500(app, client, case: Bad):
    headers = {"Origin": OWN, TOKEN_HEADER: app.state.token}
    if case.content_type:
        headers["Content-Type"] = case.content_type
    headers.update(case.headers)
    headers = {name: value for name, value in headers.items() if value is not None}
    body = case.body() if callable(case.body) else case.body
    if isinstance(body, (bytes, str)) or hasattr(body, "__next__"):
        if not case.content_type:
            headers.setdefault("Content-Type", "application/json")
        response = client.request(case.method, case.path, content=body, headers=headers)
    elif body is None:
        response = client.request(case.method, case.path, headers=headers)
    else:
        response = client.request(case.method, case.path, json=body, headers=headers)
    assert response.status_code != 500, response.text
    assert response.status_code == case.status, response.text
    error = response.json()["error"]
    assert set(response.json()) == {"error"}
    assert "\n" not in error and "Traceback" not in error and len(error) < 400, error
    for word in case.words:
        assert word in error, (word, error)
    # the server keeps serving, and a good request with the token still works
    assert client.get("/api/meta", headers={"Host": HOST}).status_code == 200


def test_the_page_itself_passes_every_check(app, client):
    """The control for the table: the same requests as the page sends them go through."""
    headers = {"Origin": OWN, TOKEN_HEADER: app.state.token}
    assert client.post("/api/stages", json=state(), headers=headers).status_code == 200
    referer = {"Referer": OWN + "/", TOKEN_HEADER: app.state.token}
    assert client.post("/api/stages", json=state(), headers=referer).status_code == 200
    curl = {TOKEN_HEADER: app.state.token}                 # neither Origin nor Referer
    assert client.post("/api/stages", json=state(), headers=curl).status_code == 200
    for host in ("localhost:8765", "LOCALHOST", "127.0.0.1"):
        own = {"Host": host, "Origin": f"http://{host}", TOKEN_HEADER: app.state.token}
        assert client.post("/api/stages", json=state(), headers=own).status_code == 200, host
    # the largest legitimate request (the most kernels, RGB, of the largest side, every number
    # written out in full) fits the JSON limit
    side = MAX_KERNEL_SIDE
    grids = [[[-0.12345678901234567 * (c + 1)] * side] * side for c in range(3)]
    body = {**state(), "mode": "rgb", "layer": {"padding": "same"},
            "kernels": [{"name": f"k{i}", "weights": grids} for i in range(MAX_KERNELS)]}
    assert len(json.dumps(body)) < MAX_JSON_BYTES
    response = client.post("/api/stages", json=body, headers=headers)
    assert response.status_code == 200, response.text
