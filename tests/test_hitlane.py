"""The hit lane (``api/hitlane.py``): cache hits answered by the HTTP protocol say, byte for byte, what uvicorn says.

Two in-process uvicorn servers on loopback serve the real application over the same real services (tiny built
project, a real query worker), each with its own response cache: one with :class:`HitLaneProtocol` (as
``anemia-kg serve`` runs it), one with uvicorn's own httptools protocol, where the cache middleware answers
hits. Requests go over raw sockets so that whole answers, framing included, can be compared; only the
``date`` line may differ. A counting layer around each application tells whether a request reached it: a
hit on the lane must not, a hit on the plain server does.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from typer.testing import CliRunner
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from anemia_kg.api import Settings, create_app
from anemia_kg.api.app import App
from anemia_kg.api.cache import ResponseCache
from anemia_kg.api.hitlane import HitLaneProtocol, Known, protocol_for
from anemia_kg.api.services import open_services
from test_direct_lane import Counted
from test_server import free_port, in_process_server

WAIT = 30.0  # seconds a server may take to answer or to close an idle connection (never asserted as a timing)
ASK = "ASK { ?s ?p ?o }"
SELECT = "SELECT ?s ?label WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?label } ORDER BY ?s LIMIT 4"
CONSTRUCT = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o } ORDER BY ?s ?p ?o LIMIT 5"

# (target, extra request header lines): GET requests whose answers the cache keeps
CACHED: list[tuple[str, str]] = [
    (f"/sparql?query={quote(ASK)}", "Accept: application/sparql-results+json\r\n"),
    (f"/sparql?query={quote(SELECT)}", "Accept: text/csv\r\n"),
    (f"/sparql?query={quote(SELECT)}", "Accept: application/sparql-results+xml\r\n"),
    (f"/sparql?query={quote(SELECT)}", "Accept: application/sparql-results+json\r\nOrigin: https://example.org\r\n"),
    (f"/sparql?query={quote(CONSTRUCT)}", "Accept: text/turtle\r\n"),
    ("/sparql", "Accept: text/turtle\r\n"),  # the service description, which names this server's URL
    ("/sparql", "Accept: text/turtle\r\nHost: kg.example.org\r\n"),
    ("/api/entities?q=a", ""),
    ("/api/references", ""),
    ("/api/quality", ""),
]


def lane_for(app: App, *, access_log: bool = False) -> type[HttpToolsProtocol]:
    """The lane as ``anemia-kg serve`` runs it, with an access log or not whatever logging is set up.

    uvicorn logs each request if its access logger has a handler, and pytest attaches its capture handler to
    every logger that does not propagate, uvicorn's included: left alone, every server here would log."""
    lane = protocol_for(app)

    class Lane(lane):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.access_log = access_log

    return Lane


@dataclass
class Served:
    app: App
    counted: Counted
    base: str
    lane: Any = None  # the protocol class, when it is the lane

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.base.removeprefix("http://").split(":")
        return host, int(port)


@pytest.fixture(scope="module")
def servers(tiny_built) -> Iterator[tuple[Served, Served]]:  # noqa: ANN001
    settings = Settings(root=tiny_built.root, workers=1, cache_bytes=8 * 1024 * 1024)
    services = open_services(settings)
    lane_app, plain_app = create_app(settings, services=services), create_app(settings, services=services)
    lane_counted, plain_counted = Counted(lane_app), Counted(plain_app)
    lane = lane_for(lane_app)
    try:
        with in_process_server(lane_counted, http=lane, access_log=False) as lane_base, \
                in_process_server(plain_counted, http="httptools", access_log=False) as plain_base:
            yield Served(lane_app, lane_counted, lane_base, lane), Served(plain_app, plain_counted, plain_base)
    finally:
        services.close()


def request(target: str, extra: str = "", *, method: str = "GET", version: str = "1.1") -> bytes:
    head = f"{method} {target} HTTP/{version}\r\n"
    if "Host:" not in extra:
        head += "Host: testserver\r\n"
    return (head + extra + "\r\n").encode("latin-1")


class Connection:
    """One raw keep-alive connection that reads whole HTTP/1.1 answers, framing and all."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=WAIT)
        self.buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            assert self._fill(), f"the connection closed after {self.buffer!r}"
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def _take_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            assert self._fill(), f"the connection closed after {self.buffer!r}"
        end = self.buffer.index(marker) + len(marker)
        taken, self.buffer = self.buffer[:end], self.buffer[end:]
        return taken

    def answer(self, *, head_only: bool = False) -> bytes:
        """The next whole answer as it came over the wire."""
        head = self._take_until(b"\r\n\r\n")
        if head_only:
            return head
        lower = head.lower()
        length = re.search(rb"\r\ncontent-length: *(\d+)\r\n", lower)
        if length:
            return head + self._take(int(length.group(1)))
        assert b"\r\ntransfer-encoding: chunked\r\n" in lower, head
        body = b""
        while True:
            size_line = self._take_until(b"\r\n")
            chunk = self._take(int(size_line.strip(), 16) + 2)
            body += size_line + chunk
            if int(size_line.strip(), 16) == 0:
                return head + body

    def exchange(self, data: bytes, answers: int = 1, **kwargs: Any) -> list[bytes]:
        self.sock.sendall(data)
        return [self.answer(**kwargs) for _ in range(answers)]

    def closed(self) -> bool:
        """Whether the server closes the connection (waiting up to WAIT for it), with nothing more sent."""
        try:
            return not self._fill() and not self.buffer
        except TimeoutError:
            return False


def undated(answer: bytes) -> bytes:
    return re.sub(rb"\r\ndate: [^\r]*\r\n", b"\r\ndate: -\r\n", answer, count=1)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def calls(served: Served) -> int:
    return served.counted.calls


@pytest.mark.parametrize(("target", "extra"), CACHED, ids=[f"{i}-{t.split('?')[0]}" for i, (t, _) in enumerate(CACHED)])
def test_a_hit_on_the_lane_is_the_answer_uvicorn_sends_and_skips_the_application(servers, target, extra):
    lane, plain = servers
    with Connection(lane.address) as lc, Connection(plain.address) as pc:
        plain_miss, plain_hit = pc.exchange(request(target, extra), 1) + pc.exchange(request(target, extra), 1)
        before, hits = calls(lane), lane.app.state.cache.hits
        lane_miss = lc.exchange(request(target, extra))[0]
        assert calls(lane) == before + 1  # a miss goes through uvicorn and the application
        lane_hits = lc.exchange(request(target, extra) * 3, 3)  # pipelined: all from the cache, in order
    assert status(plain_hit) == 200, plain_hit[:300]
    assert undated(plain_miss) == undated(plain_hit)  # the cache middleware's hit: what the application said
    for answer in [lane_miss, *lane_hits]:
        assert undated(answer) == undated(plain_hit)
    assert calls(lane) == before + 1, "a hit reached the application: the lane did not answer it"
    assert lane.app.state.cache.hits == hits + 3  # the lane's answers count as the cache's hits


def test_a_request_that_came_alone_is_known_by_its_bytes_and_answered_again_without_parsing(servers):
    lane, plain = servers
    target, extra = f"/sparql?query={quote('ASK { ?s ?p ?s }')}", "Accept: application/sparql-results+json\r\n"
    data = request(target, extra)
    known = lane.lane.known
    with Connection(plain.address) as pc:
        expected = undated(pc.exchange(data)[0])
    with Connection(lane.address) as conn:
        before = calls(lane)
        answers = [conn.exchange(data)[0]]  # a miss
        assert data not in known.keys
        answers += conn.exchange(data)  # a hit, parsed: now known
        assert data in known.keys
        hits = lane.app.state.cache.hits
        answers += conn.exchange(data) + conn.exchange(data)  # known: answered from the bytes
        assert lane.app.state.cache.hits == hits + 2
        assert calls(lane) == before + 1
        lane.app.state.cache.entries.clear()  # evicted: the known bytes lead nowhere, uvicorn answers
        lane.app.state.cache.bytes = 0
        answers += conn.exchange(data)
        assert calls(lane) == before + 2
    assert [undated(a) for a in answers] == [expected] * 5


def test_known_bytes_are_not_taken_for_a_request_when_they_continue_one(servers):
    """Bytes the lane knows, arriving after part of another request, are the rest of that one."""
    lane, _ = servers
    data = request(f"/sparql?query={quote(ASK)}", "Accept: application/sparql-results+json\r\n")
    with Connection(lane.address) as conn:
        conn.exchange(data)
        conn.exchange(data)
        assert data in lane.lane.known.keys
        conn.sock.sendall(b"GET /sparql HTTP/1.1\r\nHost: testserver\r\n")  # an incomplete head ...
        conn.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            conn.sock.recv(1)
        conn.sock.settimeout(WAIT)
        answer = conn.exchange(data)[0]  # ... whose next line is "GET ...": not a header line
    assert status(answer) == 400


def test_known_bytes_are_bounded_and_forgotten_all_at_once():
    known = Known(max_bytes=10)
    known.remember(b"abcd", ("a",))  # type: ignore[arg-type]
    known.remember(b"efgh", ("e",))  # type: ignore[arg-type]
    known.remember(b"abcd", ("a",))  # type: ignore[arg-type]
    assert known.size == 8 and len(known.keys) == 2
    known.remember(b"ijkl", ("i",))  # type: ignore[arg-type]
    assert known.keys == {b"ijkl": ("i",)} and known.size == 4
    known.remember(b"x" * 11, ("x",))  # type: ignore[arg-type]
    assert b"x" * 11 not in known.keys


class Streamed:
    """An application behind the response cache whose answers declare no length (uvicorn sends them chunked):
    ``/api/parts`` in two parts, ``/api/empty`` with no body at all."""

    def __init__(self) -> None:
        self.cache = ResponseCache(self.answer, max_bytes=1024 * 1024)
        self.calls = 0  # HTTP requests that reached the application (the cache middleware included)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += scope["type"] == "http"
        await self.cache(scope, receive, send)

    @staticmethod
    async def answer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"Content-Type", b"text/plain")]})
        if scope["path"] == "/api/parts":
            await send({"type": "http.response.body", "body": b"first part, ", "more_body": True})
            await send({"type": "http.response.body", "body": b"second part"})
        else:
            await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize("path", ["/api/parts", "/api/empty"])
def test_an_answer_without_a_length_is_framed_as_uvicorn_frames_it(path):
    lane_app, plain_app = Streamed(), Streamed()
    with in_process_server(lane_app, http=lane_for(lane_app), access_log=False) as lane_base, \
            in_process_server(plain_app, http="httptools", access_log=False) as plain_base:
        hits = []
        for base, app in ((lane_base, lane_app), (plain_base, plain_app)):
            host, port = base.removeprefix("http://").split(":")
            with Connection((host, int(port))) as conn:
                conn.exchange(request(path))
                hits.append(conn.exchange(request(path) * 2, 2))
            assert app.cache.stats.hits == 2
        assert (lane_app.calls, plain_app.calls) == (1, 3)  # the lane answered both hits itself
    assert undated(hits[0][0]) == undated(hits[0][1]) == undated(hits[1][0])
    assert b"transfer-encoding: chunked" in hits[0][0]
    assert hits[0][0].endswith(b"second part\r\n0\r\n\r\n" if path == "/api/parts" else b"\r\n\r\n0\r\n\r\n")


def test_a_hit_behind_a_request_still_being_answered_waits_its_turn(servers):
    """A pipelined hit after a miss is left to uvicorn, which answers in order; the first one is the miss."""
    lane, _ = servers
    miss = f"/sparql?query={quote('SELECT ?type WHERE { ?s a ?type } LIMIT 1')}"
    hit = f"/sparql?query={quote(ASK)}"
    with Connection(lane.address) as conn:
        conn.exchange(request(hit))
        first, second = conn.exchange(request(miss) + request(hit) + request(miss), 3)[:2]
    assert status(first) == 200 and status(second) == 200
    assert b'"bindings"' in first.split(b"\r\n\r\n", 1)[1]
    assert b'"boolean":true' in second.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize(("extra", "version", "method"), [
    ("Connection: close\r\n", "1.1", "GET"),
    ("", "1.0", "GET"),
    ("", "1.1", "HEAD"),
    ("X-Forwarded-Proto: https\r\n", "1.1", "GET"),
    ("Content-Length: 2\r\n", "1.1", "GET"),
], ids=["connection-close", "http-1.0", "head", "forwarded-proto", "with-body"])
def test_requests_the_lane_declines_are_answered_by_uvicorn_as_without_it(servers, extra, version, method):
    lane, plain = servers
    target = "/sparql"  # the service description: it depends on the scheme a proxy reports
    body = "{}" if "Content-Length" in extra else ""
    answers = []
    for served in (lane, plain):
        with Connection(served.address) as conn:
            conn.exchange(request(target, "Accept: text/turtle\r\n"))  # cached for a plain GET
            before = calls(served)
            answers.append(conn.exchange(request(target, "Accept: text/turtle\r\n" + extra, method=method,
                                                 version=version) + body.encode(), head_only=method == "HEAD")[0])
            assert calls(served) == before + 1  # it went through the application (and the cache middleware)
            if "close" in extra or version == "1.0":
                assert conn.closed()
    assert status(answers[0]) == 200
    assert undated(answers[0]) == undated(answers[1])
    if "X-Forwarded-Proto" in extra:
        assert b"https://" in answers[0]  # the proxy's scheme reached the application, not the http entry


def test_an_idle_connection_after_a_hit_is_closed_after_the_keep_alive_timeout(tiny_built):
    app = create_app(Settings(root=tiny_built.root, workers=1, cache_bytes=1024 * 1024))
    with in_process_server(app, http=lane_for(app), access_log=False, timeout_keep_alive=1) as base:
        host, port = base.removeprefix("http://").split(":")
        with Connection((host, int(port))) as conn:
            conn.exchange(request(f"/sparql?query={quote(ASK)}"))
            hits = app.state.cache.hits
            conn.exchange(request(f"/sparql?query={quote(ASK)}"))
            assert app.state.cache.hits == hits + 1
            assert conn.closed()  # closed by the server's keep-alive timer (1 s), well within WAIT


def test_with_an_access_log_every_request_goes_through_uvicorn(tiny_built):
    """The lane would leave hits out of the access log: with one configured, it answers nothing."""
    app = create_app(Settings(root=tiny_built.root, workers=1, cache_bytes=1024 * 1024))
    counted = Counted(app)
    with in_process_server(counted, http=lane_for(app, access_log=True), access_log=True) as base:
        host, port = base.removeprefix("http://").split(":")
        with Connection((host, int(port))) as conn:
            first, second = conn.exchange(request(f"/sparql?query={quote(ASK)}") * 2, 2)
    assert counted.calls == 2 and app.state.cache.hits == 1  # the hit came from the middleware
    assert undated(first) == undated(second)


def test_without_the_protocol_methods_it_extends_the_lane_is_not_used(monkeypatch):
    app = create_app(Settings(cache_bytes=1024))
    assert issubclass(protocol_for(app), HitLaneProtocol)
    assert protocol_for(app).source is app
    monkeypatch.delattr(HttpToolsProtocol, "_unset_keepalive_if_required")
    assert protocol_for(app) is HttpToolsProtocol


def test_anemia_kg_serve_runs_uvicorn_with_the_lane(tiny_built_copy, monkeypatch):
    """``serve`` hands uvicorn the lane bound to the application it serves (uvicorn itself is not started)."""
    import uvicorn

    from anemia_kg.cli import app as cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kwargs: seen.update(app=application, **kwargs))
    result = CliRunner().invoke(cli, ["--root", str(tiny_built_copy.root), "serve", "--port", str(free_port()),
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert issubclass(seen["http"], HitLaneProtocol) and seen["http"].source is seen["app"]
    assert seen["access_log"] is False
