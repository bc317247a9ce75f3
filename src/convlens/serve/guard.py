"""The one gate in front of every route: Host, Origin/Referer, the page's token, body sizes.

:class:`RequestGuard` is a plain ASGI middleware, so it sees every request before any route:

* **Host** (every request): the ``Host`` header must name an address the server was bound to
  (``allowed_hosts``), so a web site cannot reach it by DNS rebinding (a name of its own that
  resolves to 127.0.0.1 would make the server's answers readable by that site).
* **Origin** (every state-changing request, that is any method but GET, HEAD and OPTIONS):
  the ``Origin`` header, or without one the ``Referer``, must be the server's own origin.
* **Token**: a state-changing request must carry the per-process token in the
  :data:`TOKEN_HEADER` header. The page reads it from a ``<meta>`` tag of the HTML the ``/``
  route serves; another site can neither read that page (the browser's same-origin policy) nor
  send a custom header without a CORS preflight, which this server never grants. This also
  refuses the "simple" cross-origin requests (forms, ``text/plain``, multipart) that need no
  preflight. Clients such as curl, which send neither Origin nor Referer, pass with the token.
* **Body size**: a state-changing request's body may hold at most the bytes of its route's
  :class:`BodyLimit` (a JSON request by default). A ``Content-Length`` over it is refused before
  reading, and a body without one (chunked) is counted while it is read and refused as soon as
  it passes the limit, never after.

Refusals are one line, ``{"error": "..."}``: 400 for the Host, 403 for Origin and token, 413 for
a body too large.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_HEADER = "X-Convlens-Token"
"""The header every state-changing request carries the page's token in."""
TOKEN_META = "convlens-token"
"""Name of the ``<meta>`` tag the page's HTML carries the token in."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing, so need neither Origin nor token."""
DEFAULT_PORTS = {"http": 80, "https": 443}


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe text), one per server process."""
    return secrets.token_urlsafe(32)


def size_text(size: int) -> str:
    """``size`` bytes for a message: ``512 bytes``, ``2.0 KiB``, ``1.5 MiB``."""
    if size >= 2**20:
        return f"{size / 2**20:.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"


@dataclasses.dataclass(frozen=True)
class BodyLimit:
    """At most ``size`` bytes of request body; ``what`` names the body in the refusal."""

    size: int
    what: str = "a JSON request"

    def message(self, sent: int, complete: bool) -> str:
        """The refusal of a body of ``sent`` bytes (``complete``: all of it, from its
        Content-Length; else the bytes read when it passed the limit)."""
        limit = f"the {size_text(self.size)} limit for {self.what}"
        if complete:
            return f"the request body is {size_text(sent)}, over {limit}"
        return f"the request body is over {limit} (refused after reading {size_text(sent)})"


class BodyTooLarge(HTTPException):
    """Raised from the request's ``receive`` when a body passes its limit while being read."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


class RequestGuard:
    """ASGI middleware: the Host, Origin/Referer, token and body-size checks above.

    ``allowed_hosts``: the host names or addresses (without port) the ``Host`` header may name;
    None allows any. A wildcard address, ``0.0.0.0`` or ``::`` (a server bound to every
    interface), admits any IP address written as such; names must still be listed (DNS
    rebinding needs a name, never an address). ``body_limits`` maps a path to its
    :class:`BodyLimit`; every other path gets ``default_limit``.
    """

    def __init__(self, app: ASGIApp, *, token: str, allowed_hosts: Iterable[str] | None = None,
                 default_limit: BodyLimit, body_limits: Mapping[str, BodyLimit] | None = None
                 ) -> None:
        self.app = app
        self.token = token.encode("latin-1")
        self.allowed_hosts = (None if allowed_hosts is None
                              else frozenset(host_name(host) for host in allowed_hosts))
        self.default_limit = default_limit
        self.body_limits = dict(body_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            status, message = refusal
            await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
            return
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.body_limits.get(scope["path"], self.default_limit)
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit.size:
            message = limit.message(int(length), complete=True)
            await JSONResponse({"error": message}, status_code=413)(scope, receive, send)
            return
        await self._limited(scope, receive, send, limit)

    def refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        """``(status, message)`` if the request must be refused before any route sees it."""
        host = headers.get("host", "")
        if not self.host_allowed(host_name(host)):
            names = ", ".join(sorted(self.allowed_hosts or ()))
            return 400, (f"this server answers only to {names}, not to the host {host!r}; "
                         "open the page at the address `convlens serve` printed")
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        source = origin if origin is not None else headers.get("referer")
        if source is not None and not same_origin(source, scope.get("scheme", "http"), host):
            return 403, (f"refused a request from {source[:200]!r}: only the explorer's own "
                         "page may change its state")
        sent = headers.get(TOKEN_HEADER)
        if sent is None:
            return 403, (f"refused a request without the page's token (header {TOKEN_HEADER}); "
                         "use the explorer's page, or send the token it carries")
        if not secrets.compare_digest(sent.encode("latin-1"), self.token):
            return 403, ("refused a request with a wrong token; the server was restarted since "
                         "the page loaded: reload the page")
        return None

    def host_allowed(self, name: str) -> bool:
        """Whether ``name`` (from :func:`host_name`) may be this server's Host."""
        allowed = self.allowed_hosts
        if allowed is None or "*" in allowed or name in allowed:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        return "::" in allowed or (address.version == 4 and "0.0.0.0" in allowed)

    async def _limited(self, scope: Scope, receive: Receive, send: Send,
                       limit: BodyLimit) -> None:
        """Run the app with ``receive`` counting the body and stopping it past ``limit``."""
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.size:
                    raise BodyTooLarge(limit.message(received, complete=False))
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as exc:  # only when no route handled it (the app answers it too)
            if started:
                raise
            await JSONResponse({"error": exc.detail}, status_code=413)(scope, receive, send)


def host_name(host: str) -> str:
    """The name or address of a ``Host`` value, lowercase, without port or IPv6 brackets:
    ``127.0.0.1:8765`` -> ``127.0.0.1``, ``[::1]:80`` -> ``::1``; "" when it does not parse."""
    host = host.strip()
    if host == "*":
        return host
    try:
        return urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return ""


def same_origin(url: str, scheme: str, host: str) -> bool:
    """Whether ``url`` (an Origin or Referer) has the scheme, host and port of this server as
    the request reached it (``scheme`` and ``Host`` header; default ports filled in)."""
    try:
        theirs = urlsplit(url)
        ours = urlsplit(f"{scheme}://{host}")
        if theirs.scheme not in DEFAULT_PORTS or not theirs.hostname or not ours.hostname:
            return False
        return (theirs.scheme, theirs.hostname, theirs.port or DEFAULT_PORTS[theirs.scheme]) \
            == (ours.scheme, ours.hostname, ours.port or DEFAULT_PORTS.get(ours.scheme))
    except ValueError:  # a port out of range or not a number
        return False


__all__ = ["TOKEN_HEADER", "BodyLimit", "BodyTooLarge", "RequestGuard", "new_token"]
