"""Security headers and request size limits: two small, pure ASGI middlewares around the whole application.

**Headers.** Every response says ``nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY`` and
``Cross-Origin-Opener-Policy: same-origin``, and carries a Content-Security-Policy:

* the web pages (HTML) get :data:`PAGE_POLICY`: scripts, styles, images, fonts and connections from this
  origin only; no inline script, no ``eval``, no plugin, no ``<base>``, no framing. That is enough because every
  page script is a file under ``/static`` or ``/vendor`` (the page data travel in ``<script
  type="application/json">`` blocks, which are data, never run) and the only ``data:`` URLs are the favicon
  and the images inside the bundled CSS. The one exception is YASGUI on the SPARQL page, which writes two
  fixed ``<style>`` elements and one fixed ``style`` attribute itself: those are allowed by the SHA-256 of
  their exact text (:data:`YASGUI_STYLE_HASHES`, :data:`YASGUI_STYLE_ATTRIBUTE_HASH`), not by
  ``'unsafe-inline'``;
* every other answer (JSON, SPARQL results, RDF, CSS, JS) gets :data:`DATA_POLICY` (``default-src 'none'``):
  opened directly in a browser, nothing in it can run or load anything;
* the API documentation page (``/docs``, Swagger UI served from the ``fastapi-offline`` package) runs one
  inline script: it gets :func:`docs_policy`, which allows exactly the inline scripts of the page sent (by
  SHA-256 hash) and inline styles, and nothing from another host.

CORS stays as it was: these headers do not restrict who may *read* the public, read-only APIs.

**Limits.** :class:`RequestLimits` refuses, before the application sees the request, a URL longer than
``max_url_bytes`` (414), header fields larger than ``max_header_bytes`` in total (431) and a body declared
larger than ``max_body_bytes`` (413); a body that does not declare its length, or lies about it, is counted
while it streams in and refused (413) as soon as it passes the limit, so no more than the limit is ever held.
Every refusal is JSON ``{"detail": ...}`` naming the limit and its setting, and closes the connection (the
rest of the request is never read). uvicorn's HTTP parser (h11) also gives up, with a plain-text 400 of its
own, on a request head still incomplete past 16 KiB, but it parses a longer head that arrived whole: the URL
and header limits here hold either way, and under servers without such a cap.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The <style> elements the bundled YASGUI adds itself, allowed by the hash of their exact text (their source is
# the column-resizer inside web/vendor/yasgui/yasgui.min.js; tests/test_security.py re-derives both from it):
# its table grip rules when a result table is drawn, and "*{cursor:col-resize!important}" while a column is dragged.
YASGUI_STYLE_HASHES = (
    "'sha256-zCK2EVMoPc04mRF/g5CotUvxbJPWS+8V0b+s9ptqQIk='",
    "'sha256-c0O6TmFAkgpNbHxKAa1BrveWHHopjEtC47i0PzMudxg='",
)
# ... and the one style attribute it writes into HTML: YASQE's tooltip for a syntax error underlines the expected
# tokens with <strong style='text-decoration:underline'>; 'unsafe-hashes' lets that exact attribute through.
YASGUI_STYLE_ATTRIBUTE_HASH = "'sha256-EntWS0hFrz2vH7susM+dPUxvHlL6sBswmM8K80E5oUk='"
PAGE_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    f"style-src 'self' {' '.join(YASGUI_STYLE_HASHES)}",
    f"style-src-attr 'unsafe-hashes' {YASGUI_STYLE_ATTRIBUTE_HASH}",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
DATA_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def docs_policy(html: bytes) -> str:
    """The policy of the API documentation page (Swagger UI): this origin, plus exactly the inline script
    that starts Swagger UI (by hash). Swagger UI's React components style elements inline, hence
    ``'unsafe-inline'`` for styles on this page only; it loads nothing from another host.
    """
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
                      for body in _INLINE_SCRIPT.findall(html))
    return "; ".join([
        "default-src 'none'",
        f"script-src 'self' {hashes}".rstrip(),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key.lower() == name), None)


def _is_html(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return (_header(headers, b"content-type") or b"").split(b";")[0].strip().lower() == b"text/html"


def security_headers(content_type: str | None) -> dict[str, str]:
    """The headers an answer of ``content_type`` gets; also used by the 500 handler, which answers from
    outside the middlewares (Starlette's ServerErrorMiddleware is always the outermost layer)."""
    html = (content_type or "").split(";")[0].strip().lower() == "text/html"
    return {**HEADERS, "content-security-policy": PAGE_POLICY if html else DATA_POLICY}


class SecurityHeaders:
    """Adds :data:`HEADERS` and a Content-Security-Policy to every HTTP response, unless already set."""

    def __init__(self, app: ASGIApp, docs_paths: Iterable[str | None] = ()) -> None:
        self.app = app
        self.docs_paths = frozenset(p for p in docs_paths if p)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope.get("path") in self.docs_paths:
            await self._docs(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                message["headers"] = _merged(headers, _PAGE_HEADERS if _is_html(headers) else _DATA_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A documentation page is small: it is held whole, so the policy can name its inline scripts."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            assert start is not None
            body = b"".join(chunks)
            headers = list(start.get("headers", []))
            policy = docs_policy(body) if _is_html(headers) else DATA_POLICY
            start["headers"] = _merged(headers, _encoded({**HEADERS, "content-security-policy": policy}))
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, hold)


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


# Encoded once: every answer gets one of these two sets (encoding them per answer was a tenth of this layer)
_DATA_HEADERS = _encoded(security_headers("application/json"))
_PAGE_HEADERS = _encoded(security_headers("text/html"))


def _merged(headers: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` plus those of ``extra`` (lower-case names) it does not have yet (a route's own choice wins)."""
    present = {key.lower() for key, _ in headers}
    return headers + [(k, v) for k, v in extra if k not in present]


class BodyTooLarge(Exception):
    """Raised into the application by :class:`RequestLimits` when the body passes the limit while it is read."""


class RequestLimits:
    """Refuses oversized URLs, header fields and bodies with a JSON 414, 431 or 413 naming the limit."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_url_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        limit, seen, exceeded, started = self.max_body_bytes, 0, False, False

        async def counted_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge(f"the request body passed {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the application makes of the interrupted read, the answer is the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise  # the answer was already under way: nothing clean to say, the server drops the connection
        if exceeded and not started:
            await _refuse(send, *self._body_refusal())

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """What is wrong with the request head, judged before the application runs (None: nothing)."""
        url = len(scope.get("raw_path") or scope["path"].encode("utf-8")) + len(scope.get("query_string", b""))
        if url > self.max_url_bytes:
            return 414, (f"the URL is {url} bytes long; at most {self.max_url_bytes} are accepted "
                         f"(setting max_url_bytes); send a long SPARQL query with POST instead of GET")
        headers = scope.get("headers", [])
        size = sum(len(key) + len(value) for key, value in headers)
        if size > self.max_header_bytes:
            return 431, (f"the request header fields are {size} bytes long; at most {self.max_header_bytes} are "
                         f"accepted (setting max_header_bytes)")
        declared = _header(headers, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            return self._body_refusal(int(declared))
        return None

    def _body_refusal(self, declared: int | None = None) -> tuple[int, str]:
        size = f"is {declared} bytes long" if declared is not None else f"passed {self.max_body_bytes} bytes"
        return 413, (f"the request body {size}; at most {self.max_body_bytes} are accepted "
                     f"(setting max_body_bytes)")


async def _refuse(send: Send, status: int, detail: str) -> None:
    """A JSON error answer; the connection is closed after it, since the rest of the request is not read."""
    body = json.dumps({"detail": detail}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})
