"""Security headers, request size limits and error answers, checked against a real server over loopback.

The server is ``anemia-kg serve`` over the tiny built project (conftest's ``tiny_built``), started as a
subprocess on a free port by ``test_server.running_server``:

* ``site``: the default limits (1 MiB body, 8 KiB URL, 8 KiB of header fields);
* ``strict_site``: small limits set through ``ANEMIA_KG_*`` environment variables, to show that they are
  settings and to reach the streaming body limit below ``/sparql``'s own query-size limit.

Oversized requests are also written byte by byte on raw sockets, because an HTTP client library would not
send them (or would wait to send the whole body before reading the answer): that is how the tests see that a
refusal comes *before* the body is read. The security middlewares are also driven directly as ASGI apps, where
the tests can count exactly how much of a body was read. The pages are loaded in Debian's Chromium with a
recorder of ``securitypolicyviolation`` events, so that the policy is shown to be both strict and sufficient.
A forced internal error runs on an in-process uvicorn server (on loopback) whose services are made to fail.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from anemia_kg.api import Settings, create_app
from anemia_kg.api.security import (
    DATA_POLICY,
    PAGE_POLICY,
    YASGUI_STYLE_ATTRIBUTE_HASH,
    YASGUI_STYLE_HASHES,
    RequestLimits,
)
from anemia_kg.executor import EmbeddedExecutor
from anemia_kg.knowledge import Knowledge
from test_server import LEAKS, Server, in_process_server, running_server

REPO = Path(__file__).resolve().parents[1]
YASGUI_JS = REPO / "web" / "vendor" / "yasgui" / "yasgui.min.js"
WAIT = 30.0  # seconds any single socket read or browser wait may take before the test gives up (never asserted)
ASK = "ASK { ?s ?p ?o }"
SPARQL_QUERY = "application/sparql-query"
STRICT = {"ANEMIA_KG_MAX_BODY_BYTES": "4096", "ANEMIA_KG_MAX_URL_BYTES": "1024", "ANEMIA_KG_MAX_HEADER_BYTES": "2048"}
COMMON_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY",
                  "cross-origin-opener-policy": "same-origin"}


# --- servers and raw HTTP ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tiny_built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # noqa: ANN001
    with running_server(tiny_built.root, tmp_path_factory.mktemp("security-site"), "--workers", "1") as running:
        yield running


@pytest.fixture(scope="module")
def strict_site(tiny_built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # noqa: ANN001
    """The same server with small limits, given as the environment variables a deployment would set."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in STRICT.items():
            env.setenv(name, value)  # read by the subprocess's Settings when it starts
        with running_server(tiny_built.root, tmp_path_factory.mktemp("strict-site"), "--workers", "1") as running:
            env.undo()
            yield running


@pytest.fixture
def client(site: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.base, timeout=WAIT) as c:
        yield c


@dataclass
class Answer:
    """An HTTP answer read from a raw socket, up to the server closing the connection."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw(server: Server, *parts: bytes) -> Answer:
    """Write ``parts`` to a fresh connection (stopping early if the server hangs up), then read until the server
    closes it. Every request sent this way is either refused (the server closes after its answer) or says
    ``Connection: close``; a server that neither answers nor closes fails the read after ``WAIT`` seconds."""
    address = urlsplit(server.base)
    data = b""
    with socket.create_connection((address.hostname, address.port), timeout=WAIT) as sock:
        for part in parts:
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server refused before reading everything: its answer is waiting
        with contextlib.suppress(ConnectionResetError):  # a reset after the answer (unread request bytes)
            while chunk := sock.recv(65536):
                data += chunk
    assert data, "no answer at all"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "content-length" in headers:
        assert len(body) == int(headers["content-length"]), (headers, body[:200])
    return Answer(int(lines[0].split()[1]), headers, body)


def assert_no_leak(text: str, *paths: Path) -> None:
    """Nothing of the server's inside: no traceback, no source file, no path of the checkout or the project."""
    for leak in (*LEAKS, str(REPO), *(str(p) for p in paths)):
        assert leak not in text, f"{leak!r} in {text[:2000]}"


def assert_json_error(status: int, headers: Any, body: bytes, expected: int, *fragments: str) -> str:
    """A JSON ``{"detail": ...}`` error of status ``expected`` naming ``fragments``; returns the detail."""
    assert status == expected, f"{status}: {body[:2000]!r}"
    assert headers["content-type"].split(";")[0] == "application/json", headers
    detail = json.loads(body)["detail"]
    shown = detail if isinstance(detail, str) else json.dumps(detail)
    for fragment in fragments:
        assert fragment in shown, f"{fragment!r} not in {shown!r}"
    assert_no_leak(body.decode("utf-8", "replace"))
    return shown


def directives(policy: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (part.split() for part in policy.split(";") if part.strip())}


# --- security headers -------------------------------------------------------------------------------------------

ANSWERS = [  # (method, path, request headers, expected status, expected media type)
    ("GET", "/", {}, 200, "text/html"),
    ("GET", "/paths?source=anemia&target=fatigue", {}, 200, "text/html"),
    ("GET", "/entity/anemia", {}, 200, "text/html"),
    ("GET", "/entity/no-such-entity", {}, 404, "text/html"),
    ("GET", "/references", {}, 200, "text/html"),
    ("GET", "/query", {}, 200, "text/html"),
    ("GET", "/static/site.css", {}, 200, "text/css"),
    ("GET", "/vendor/vis-network.min.js", {}, 200, "text/javascript"),
    ("GET", "/health", {}, 200, "application/json"),
    ("GET", "/api/entities?q=anemia", {}, 200, "application/json"),
    ("GET", "/api/entities/no-such-entity", {}, 404, "application/json"),
    ("GET", "/api/paths?source=anemia", {}, 422, "application/json"),
    ("GET", "/sparql", {"Accept": "text/turtle"}, 200, "text/turtle"),
    ("GET", f"/sparql?query={ASK}", {"Accept": "application/sparql-results+json"}, 200,
     "application/sparql-results+json"),
    ("GET", "/sparql?query=SELECT", {}, 400, "application/json"),
    ("DELETE", "/sparql", {}, 405, "application/json"),
    ("GET", "/openapi.json", {}, 200, "application/json"),
    ("GET", "/no/such/page", {}, 404, "application/json"),
]


@pytest.mark.parametrize(("method", "path", "headers", "status", "media"), ANSWERS,
                         ids=[f"{a[0]} {a[1]}" for a in ANSWERS])
def test_every_answer_carries_the_security_headers(client: httpx.Client, method: str, path: str,
                                                   headers: dict[str, str], status: int, media: str) -> None:
    response = client.request(method, path, headers=headers)
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].split(";")[0] == media
    for name, value in COMMON_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    expected = PAGE_POLICY if media == "text/html" else DATA_POLICY
    assert response.headers["content-security-policy"] == expected


def test_the_page_policy_forbids_remote_and_inline_code() -> None:
    """Only this origin, no inline script, no eval, no plugin, no framing, no <base>; styles by exact hash."""
    policy = directives(PAGE_POLICY)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'", *YASGUI_STYLE_HASHES]
    assert policy["style-src-attr"] == ["'unsafe-hashes'", YASGUI_STYLE_ATTRIBUTE_HASH]
    assert policy["img-src"] == ["'self'", "data:"] and policy["font-src"] == ["'self'"]
    assert policy["object-src"] == policy["base-uri"] == policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    sources = [s for values in policy.values() for s in values]
    assert not [s for s in sources if s in ("'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:")
                or "://" in s], sources
    data = directives(DATA_POLICY)
    assert data["default-src"] == data["frame-ancestors"] == ["'none'"]


PAGES = ["/", "/paths", "/entity/anemia", "/entity/no-such-entity", "/references", "/query"]


def test_the_pages_need_nothing_the_policy_forbids(client: httpx.Client) -> None:
    """Read from the HTML itself: every script is a file of this origin (the page data are JSON blocks, never
    run), no inline event handler, no <style> element, no style attribute, nothing loaded from another host.
    (What the scripts do later is checked in the browser below.)"""
    for path in PAGES:
        html = client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            src = re.search(r'\bsrc="([^"]*)"', tag)
            assert (src and src.group(1).startswith("/")) or 'type="application/json"' in tag, (path, tag)
        for body in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.DOTALL):
            json.loads(body)  # data, and whole: "</script>" inside it would have ended the block early
        assert not re.search(r"<style\b", html), path
        assert not re.search(r"<[^>]+\sstyle\s*=", html), path
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), path
        # what the page loads (links a person may follow, e.g. to HPO, are not loads)
        for tag in re.findall(r"<(?:script|link|img|iframe|frame|embed|object|source|audio|video)\b[^>]*>", html):
            for url in re.findall(r'\b(?:src|href|data)="([^"]*)"', tag):
                assert url.startswith(("/", "data:")) and not url.startswith("//"), (path, tag)


def _hash(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode()}'"


def test_the_allowed_style_hashes_are_those_of_the_bundled_yasgui() -> None:
    """Re-derived from web/vendor/yasgui (``make web``): a YASGUI update that changes them fails here."""
    assert YASGUI_JS.is_file(), f"{YASGUI_JS} is missing: run `make web`"
    js = YASGUI_JS.read_text(encoding="utf-8")
    defaults = re.search(r"hoverCursor:`([^`]*)`,dragCursor:`([^`]*)`", js)
    assert defaults and defaults.group(1) == "col-resize", "the grip hover style would need a hash too"
    grip = re.search(r"createStyle\(a,`([^`]*)`\)", js)
    drag = re.search(r"createStyle\(document\.querySelector\(`head`\),`\*\{cursor:`\+n\.opt\.dragCursor\+`([^`]*)`",
                     js)
    assert grip and drag, "the column resizer no longer adds its <style> elements the way the hashes assume"
    assert {_hash(grip.group(1)), _hash("*{cursor:" + defaults.group(2) + drag.group(1))} == set(YASGUI_STYLE_HASHES)
    attributes = set(re.findall(r"<strong style='([^']*)'>", js))
    assert {_hash(a) for a in attributes} == {YASGUI_STYLE_ATTRIBUTE_HASH}


def test_the_docs_page_loads_nothing_remote_and_allows_exactly_its_inline_script(client: httpx.Client) -> None:
    """/docs is Swagger UI from the fastapi-offline package, served here; FastAPI's CDN pages are gone."""
    response = client.get("/docs")
    assert response.status_code == 200
    policy = directives(response.headers["content-security-policy"])
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert len(inline) == 1, "Swagger UI is started by one inline script"
    assert policy["script-src"] == ["'self'", _hash(inline[0])]
    assert policy["frame-ancestors"] == ["'none'"] and policy["default-src"] == ["'none'"]
    assert not re.search(r"https?://", response.headers["content-security-policy"])
    sources = re.findall(r"""(?:src|href)=["']([^"']+)""", response.text)
    assert sources and all(s.startswith("/vendor/swagger-ui/") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert client.get("/openapi.json").json()["info"]["title"] == "anemia-kg"
    assert client.get("/redoc").status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"


def test_cors_of_the_public_apis_is_unchanged(client: httpx.Client) -> None:
    origin = {"Origin": "https://example.org"}
    preflight = client.options("/sparql", headers={**origin, "Access-Control-Request-Method": "POST",
                                                   "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    for path in (f"/sparql?query={ASK}", "/api/entities?q=anemia"):
        response = client.get(path, headers=origin)
        assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"
    # a refusal of the size limits is readable by a browser script too
    refused = client.post("/sparql", content=b"#" * 2_000_000, headers={**origin, "Content-Type": SPARQL_QUERY})
    assert refused.status_code == 413 and refused.headers["access-control-allow-origin"] == "*"


# --- the policy in a real browser -------------------------------------------------------------------------------

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
  `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`));
"""


def test_the_pages_work_in_a_browser_without_a_single_policy_violation(browser: Any, site: Server) -> None:
    """Every page, plus what runs later: a YASGUI result table (its grip styles), dragging a column (the
    drag-cursor style) and the tooltip of a syntax error (the underlined expected tokens). The policy is sent
    and enforced: the violations Chromium reports are recorded, and the allowed styles are seen applied."""
    context = browser.new_context(base_url=site.base)
    context.set_default_timeout(WAIT * 1000)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    violations: dict[str, list[str]] = {}
    try:
        for path, ready in [("/", "#graph canvas"), ("/paths?source=anemia&target=fatigue", "#source"),
                            ("/entity/anemia", "#relations .relation"), ("/references", "#references .reference"),
                            ("/query", "#yasgui .CodeMirror")]:
            response = page.goto(path, wait_until="load")
            assert response is not None and response.status == 200, path
            assert "script-src 'self'" in response.headers["content-security-policy"]
            page.locator(ready).first.wait_for(state="attached")
            page.wait_for_load_state("networkidle")
            if path == "/query":
                page.locator(".yasqe_queryButton").first.click()
                page.locator(".yasr table tbody tr").first.wait_for(state="attached")
                grip = page.locator(".grip-handle .grip-resizable").first.bounding_box()
                assert grip is not None
                page.mouse.move(grip["x"] + 2, grip["y"] + 5)
                page.mouse.down()
                page.mouse.move(grip["x"] + 60, grip["y"] + 5, steps=5)
                page.mouse.up()
                table_layout = page.evaluate(
                    "getComputedStyle(document.querySelector('.yasr table.grip-resizable')).tableLayout")
                assert table_layout == "fixed", "the grip <style> (allowed by its hash) was not applied"
                page.evaluate("window.anemiaKgYasgui.getTab().getYasqe().setValue('SELECT * WHERE { ?s ?p }')")
                page.locator(".parseErrorIcon").first.hover()
                # applied, not only present: a blocked style attribute stays in the DOM without effect
                expect(page.locator(".yasqe_tooltip strong").first).to_have_css(
                    "text-decoration-line", "underline", timeout=WAIT * 1000)
            violations[path] = page.evaluate("window.__cspViolations")
    finally:
        context.close()
    assert not any(violations.values()), violations
    assert not console, console


# --- request size limits ----------------------------------------------------------------------------------------


def test_the_limits_have_documented_defaults_and_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (defaults.max_body_bytes, defaults.max_url_bytes, defaults.max_header_bytes) == (1_048_576, 8_192, 8_192)
    for name, value in STRICT.items():
        monkeypatch.setenv(name, value)
    strict = Settings()
    assert (strict.max_body_bytes, strict.max_url_bytes, strict.max_header_bytes) == (4096, 1024, 2048)


def test_a_long_get_query_is_414_and_the_same_query_by_post_works(client: httpx.Client) -> None:
    query = ASK + " #" + "x" * 9_000
    response = client.get("/sparql", params={"query": query})
    detail = assert_json_error(response.status_code, response.headers, response.content, 414, "8192",
                               "max_url_bytes", "POST")
    assert "bytes long" in detail
    assert response.headers["content-security-policy"] == DATA_POLICY
    posted = client.post("/sparql", content=query.encode(), headers={"Content-Type": SPARQL_QUERY,
                                                                      "Accept": "application/sparql-results+json"})
    assert posted.status_code == 200 and posted.json()["boolean"] is True


def test_large_header_fields_are_431_and_a_long_accept_header_is_400(client: httpx.Client) -> None:
    # 12 KB: above the 8 KiB limit, below the 16 KiB that uvicorn's parser allows, so the application decides
    big = client.get("/sparql", params={"query": ASK}, headers={"Accept": "text/csv," + "a" * 12_000})
    assert_json_error(big.status_code, big.headers, big.content, 431, "8192", "max_header_bytes")
    # within the header limit, /sparql's own Accept limit answers
    long = client.get("/sparql", params={"query": ASK}, headers={"Accept": "text/csv," + "a" * 5_000})
    assert_json_error(long.status_code, long.headers, long.content, 400, "Accept header is longer than 4096")


@pytest.mark.parametrize("what", ["url", "accept"])
def test_a_megabyte_request_head_gets_a_clear_4xx(site: Server, client: httpx.Client, what: str) -> None:
    """A 1 MB query string or Accept header, in one write. Who answers depends on how the bytes arrive: uvicorn's
    HTTP parser (h11) gives up on a request head still incomplete past 16 KiB with a plain-text 400 of its own,
    but parses a head that is already whole in its buffer, however long; then the size middleware refuses it
    (414 or 431, JSON naming the limit). Either way a clear 4xx, and the server carries on."""
    megabyte = b"x" * 1_000_000
    if what == "url":
        head = b"GET /sparql?query=" + megabyte + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    else:
        head = b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\nHost: localhost\r\nAccept: " + megabyte + b"\r\n\r\n"
    answer = raw(site, head)
    if answer.status == 400:
        assert answer.headers["content-type"].startswith("text/plain")
        assert answer.body == b"Invalid HTTP request received."
    else:
        status, setting = (414, "max_url_bytes") if what == "url" else (431, "max_header_bytes")
        assert_json_error(answer.status, answer.headers, answer.body, status, "at most 8192", setting)
    assert client.get("/health").status_code == 200


def test_a_megabyte_sparql_query_by_post_is_413(client: httpx.Client) -> None:
    """Over 1 MiB the size middleware refuses it; between /sparql's 100 kB query limit and 1 MiB, /sparql does."""
    huge = (ASK + " #").encode() + b"x" * 1_048_576
    direct = client.post("/sparql", content=huge, headers={"Content-Type": SPARQL_QUERY})
    assert_json_error(direct.status_code, direct.headers, direct.content, 413, "1048576", "max_body_bytes")
    form = client.post("/sparql", data={"query": huge.decode()})
    assert_json_error(form.status_code, form.headers, form.content, 413, "1048576", "max_body_bytes")
    megabyte = client.post("/sparql", content=huge[:1_000_000], headers={"Content-Type": SPARQL_QUERY})
    assert_json_error(megabyte.status_code, megabyte.headers, megabyte.content, 413, "100000")


def test_a_declared_oversized_body_is_refused_before_it_is_sent(site: Server) -> None:
    """Content-Length says 50 MB; only the head and 1 kB are ever written, and the 413 comes back at once."""
    head = (b"POST /sparql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/sparql-query\r\n"
            b"Content-Length: 50000000\r\n\r\n")
    answer = raw(site, head, b"#" * 1_000)
    assert_json_error(answer.status, answer.headers, answer.body, 413, "50000000", "1048576", "max_body_bytes")
    assert answer.headers["connection"] == "close"
    assert answer.headers["content-security-policy"] == DATA_POLICY


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_a_streamed_body_is_cut_at_the_limit(strict_site: Server) -> None:
    """Chunked, no Content-Length: the body is counted as it arrives and refused once it passes 4096 bytes
    (here below /sparql's own 100 kB query limit, so the middleware is what answers). The body is never
    finished: the answer comes while the client still has more to send."""
    head = (b"POST /sparql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/sparql-query\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    answer = raw(strict_site, head, *[_chunk(b"#" * 1_000)] * 6)
    assert_json_error(answer.status, answer.headers, answer.body, 413, "passed 4096 bytes", "max_body_bytes")
    # under the limit, the same kind of request is answered
    small = raw(strict_site, head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"),
                _chunk((ASK + " #").encode() + b"x" * 2_000), b"0\r\n\r\n")
    assert small.status == 200, small.body[:2000]
    # and a client library streaming a body of unknown length gets the same 413
    with httpx.Client(base_url=strict_site.base, timeout=WAIT) as client:
        streamed = client.post("/sparql", content=iter([b"#" * 1_000] * 20), headers={"Content-Type": SPARQL_QUERY})
    assert_json_error(streamed.status_code, streamed.headers, streamed.content, 413, "max_body_bytes")


def test_the_url_and_header_limits_are_settings(strict_site: Server) -> None:
    with httpx.Client(base_url=strict_site.base, timeout=WAIT) as client:
        url = client.get("/api/entities", params={"q": "a" * 1_100})
        assert_json_error(url.status_code, url.headers, url.content, 414, "at most 1024", "max_url_bytes")
        header = client.get("/health", headers={"X-Padding": "p" * 2_100})
        assert_json_error(header.status_code, header.headers, header.content, 431, "at most 2048",
                          "max_header_bytes")
        assert client.get("/health").status_code == 200


# the middleware on its own, where every read can be counted

def _run(app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, bytes, int]:
    """Drive ``app`` with a body in ``chunks``; returns (status, body, number of chunks handed to the app)."""
    sent: list[dict[str, Any]] = []
    handed = 0

    async def receive() -> dict[str, Any]:
        nonlocal handed
        if handed == len(chunks):
            return {"type": "http.disconnect"}
        handed += 1
        return {"type": "http.request", "body": chunks[handed - 1], "more_body": handed < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "raw_path": b"/x", "query_string": b"",
             "headers": headers or []}
    # in a thread of its own: Playwright's sync API keeps an event loop running in this one while a browser is open
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"), handed


async def _reads_everything(scope: Any, receive: Any, send: Any) -> None:
    """An application that reads the whole body and answers with its size."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def _swallows_errors(scope: Any, receive: Any, send: Any) -> None:
    """An application that turns any failure to read the body into its own 400 (as FastAPI's body parsing does)."""
    try:
        while (await receive()).get("more_body", False):
            pass
    except Exception:
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"There was an error parsing the body"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_the_body_limit_stops_reading_at_the_first_chunk_past_it() -> None:
    app = RequestLimits(_reads_everything, max_body_bytes=1_000, max_url_bytes=1_000, max_header_bytes=1_000)
    status, body, handed = _run(app, [b"x" * 300] * 100)
    assert status == 413 and "passed 1000 bytes" in json.loads(body)["detail"]
    assert handed == 4  # 1200 bytes: the first chunk past the limit, not one more
    assert _run(app, [b"x" * 250] * 4)[:2] == (200, b"1000")  # exactly the limit is fine
    lying = _run(app, [b"x" * 300] * 10, headers=[(b"content-length", b"10")])  # a wrong Content-Length
    assert lying[0] == 413 and lying[2] == 4
    declared = _run(app, [b"x" * 300] * 10, headers=[(b"content-length", b"3000")])
    assert declared[0] == 413 and declared[2] == 0  # refused on the declaration, nothing read


def test_the_body_limit_answers_413_even_when_the_application_handles_the_interruption() -> None:
    app = RequestLimits(_swallows_errors, max_body_bytes=1_000, max_url_bytes=1_000, max_header_bytes=1_000)
    status, body, _ = _run(app, [b"x" * 600] * 3)
    assert status == 413 and b"max_body_bytes" in body


# --- error answers tell nothing of the inside ---------------------------------------------------------------------

ERRORS = [  # (method, path, keyword arguments for httpx, status, media type)
    ("GET", "/sparql", {"params": {"query": "SELECT * WHERE { ?s ?p }"}}, 400, "application/json"),
    ("GET", "/sparql", {"params": {"query": "INSERT DATA { <a:b> <a:b> <a:b> }"}}, 403, "application/json"),
    ("GET", "/api/entities/no-such-entity", {}, 404, "application/json"),
    ("GET", "/entity/no-such-entity", {}, 404, "text/html"),
    ("GET", "/vendor/no-such-file.js", {}, 404, "application/json"),
    ("GET", "/static/no-such-file.css", {}, 404, "application/json"),
    ("GET", "/no/such/route", {}, 404, "application/json"),
    ("PUT", "/sparql", {}, 405, "application/json"),
    ("POST", "/api/entities", {}, 405, "application/json"),
    ("GET", "/sparql", {"params": {"query": ASK}, "headers": {"Accept": "image/png"}}, 406, "application/json"),
    ("POST", "/sparql", {"content": b"#" * 2_000_000, "headers": {"Content-Type": SPARQL_QUERY}}, 413,
     "application/json"),
    ("GET", "/sparql", {"params": {"query": "#" * 9_000}}, 414, "application/json"),
    ("POST", "/sparql", {"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415, "application/json"),
    ("GET", "/api/paths", {"params": {"source": "anemia", "target": "fatigue", "max_hops": "many"}}, 422,
     "application/json"),
    ("GET", "/health", {"headers": {"X-Padding": "p" * 9_000}}, 431, "application/json"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "media"), ERRORS,
                         ids=[f"{e[3]} {e[0]} {e[1]}" for e in ERRORS])
def test_error_answers_show_no_trace_and_no_path(client: httpx.Client, tiny_built, method: str, path: str,  # noqa: ANN001
                                                 kwargs: dict[str, Any], status: int, media: str) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].split(";")[0] == media
    assert_no_leak(response.text, tiny_built.root)
    if media == "application/json":
        assert response.json()["detail"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_an_internal_error_is_a_bare_500_and_its_trace_goes_to_the_log(tiny_built, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Entity search and the query executor are made to fail with a message naming a source file; the client
    gets a generic JSON 500 with the security headers, the log gets the traceback."""
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"forced failure in {REPO / 'src' / 'anemia_kg' / 'secret.py'}")

    async def explode_later(*args: Any, **kwargs: Any) -> Any:
        explode()

    monkeypatch.setattr(Knowledge, "search", explode)
    monkeypatch.setattr(EmbeddedExecutor, "aexecute", explode_later)  # what /sparql awaits
    app = create_app(Settings(root=tiny_built.root, workers=1))  # its lifespan opens the real services
    with caplog.at_level(logging.ERROR, logger="anemia_kg.api.errors"), in_process_server(app) as base:
        # one connection per request: uvicorn drops the connection an exception went through
        for response in (httpx.get(f"{base}/api/entities", params={"q": "anemia"}, timeout=WAIT),
                         httpx.post(f"{base}/sparql", content=ASK.encode(), headers={"Content-Type": SPARQL_QUERY},
                                    timeout=WAIT)):
            assert response.status_code == 500
            assert response.json() == {"detail": "internal error; the server log has the details"}
            assert_no_leak(response.text, tiny_built.root)
            assert "secret" not in response.text
            for name, value in COMMON_HEADERS.items():
                assert response.headers[name] == value
            assert response.headers["content-security-policy"] == DATA_POLICY
        assert httpx.get(f"{base}/api/entities/anemia", timeout=WAIT).status_code == 200  # the server carries on
    logged = [r for r in caplog.records if r.name == "anemia_kg.api.errors"]
    assert len(logged) == 2 and all(r.exc_info and "secret.py" in str(r.exc_info[1]) for r in logged)
