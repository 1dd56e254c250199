"""``/sparql``'s direct lane (``App.direct_stack``, ``DirectLanes``) answers exactly as FastAPI's route would.

GET and POST ``/sparql`` skip FastAPI's router for speed; everything a client sees must stay the same. One
in-process uvicorn server on loopback serves the real application (tiny built project, real query worker, no
response cache) twice over: requests are sent as they come, or, when they carry the test-only header
``x-via: router``, into the stack FastAPI built, past the lanes. Each request below is sent both ways and the
two answers are compared whole: status, every header but the date, and the body.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from anemia_kg.api import Settings, create_app
from anemia_kg.api.app import App, DirectLanes
from test_server import in_process_server

WAIT = 30.0  # seconds the server may take to start or stop (never asserted as a timing)
SELECT = "SELECT ?s ?label WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?label } ORDER BY ?s ?label LIMIT 4"
CONSTRUCT = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o } ORDER BY ?s ?p ?o LIMIT 5"
FORM = "application/x-www-form-urlencoded"

# (method, keyword arguments for httpx, expected status): the protocol's answers and its refusals
REQUESTS: list[tuple[str, dict[str, Any], int]] = [
    ("GET", {"params": {"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 3"}}, 200),
    ("GET", {"params": {"query": SELECT}, "headers": {"Accept": "text/csv"}}, 200),
    ("GET", {"params": {"query": SELECT, "format": "xml"}}, 200),
    ("GET", {"params": {"query": SELECT}, "headers": {"Accept": "text/tab-separated-values"}}, 200),
    ("GET", {"params": {"query": CONSTRUCT}, "headers": {"Accept": "text/turtle"}}, 200),
    ("GET", {"params": {"query": "ASK { ?s ?p ?o }"}, "headers": {"Origin": "https://example.org"}}, 200),
    ("GET", {}, 200),  # the service description
    ("GET", {"headers": {"Accept": "application/ld+json"}}, 200),
    ("POST", {"data": {"query": "ASK { ?s ?p ?o }"}}, 200),
    ("POST", {"content": SELECT.encode(), "headers": {"Content-Type": "application/sparql-query"}}, 200),
    ("GET", {"params": {"query": "SELECT * WHERE { ?s ?p }"}}, 400),
    ("GET", {"params": [("query", "ASK {}"), ("query", "ASK {}")]}, 400),
    ("GET", {"params": {"query": "SELECT * WHERE { ?s ?p ?o }", "default-graph-uri": "http://example.org/g"}}, 400),
    ("GET", {"params": {"query": "INSERT DATA { <a:b> <a:b> <a:b> }"}}, 403),
    ("GET", {"params": {"query": "SELECT * WHERE { SERVICE <http://example.org/> { ?s ?p ?o } }"}}, 403),
    ("POST", {"content": b"CLEAR ALL", "headers": {"Content-Type": "application/sparql-update"}}, 403),
    ("GET", {"params": {"query": "ASK { ?s ?p ?o }"}, "headers": {"Accept": "image/png"}}, 406),
    ("POST", {"content": b"#" * 2_000_000, "headers": {"Content-Type": "application/sparql-query"}}, 413),
    ("GET", {"params": {"query": "#" * 9_000}}, 414),
    ("POST", {"content": b"ASK {}", "headers": {"Content-Type": "text/plain"}}, 415),
    ("GET", {"params": {"query": "SELECT * WHERE { ?s ?p ?o }"}}, 422),  # more rows than max_rows
]


class Counted:
    """An ASGI app that counts the HTTP requests reaching it."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


class Switch:
    """The application, or with ``x-via: router`` the stack FastAPI built (its router included)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (b"x-via", b"router") in scope["headers"]:
            assert self.app.cache is not None  # built at start-up, by the lifespan's call
            lanes = self.app.cache.app
            assert isinstance(lanes, DirectLanes)
            scope["app"] = self.app  # as Starlette.__call__ sets it
            await lanes.app(scope, receive, send)
            return
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def served(tiny_built) -> Iterator[tuple[App, str]]:  # noqa: ANN001
    app = create_app(Settings(root=tiny_built.root, workers=1, cache_bytes=0, max_rows=5))
    with in_process_server(Switch(app)) as base:
        yield app, base


def _answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k, v) for k, v in response.headers.multi_items() if k != "date")
    return response.status_code, headers, response.content


@pytest.mark.parametrize(("method", "kwargs", "status"), REQUESTS,
                         ids=[f"{r[2]}-{i}" for i, r in enumerate(REQUESTS)])
def test_the_lane_answers_as_the_router_does(served: tuple[App, str], method: str, kwargs: dict[str, Any],
                                             status: int) -> None:
    _, base = served
    extra = kwargs.get("headers", {})
    # a new connection each time: a refused body closes its connection
    direct = httpx.request(method, f"{base}/sparql", **kwargs, timeout=WAIT)
    routed = httpx.request(method, f"{base}/sparql", **{**kwargs, "headers": {**extra, "x-via": "router"}},
                           timeout=WAIT)
    assert direct.status_code == status, direct.text[:500]
    assert _answer(direct) == _answer(routed)
    assert direct.headers["x-content-type-options"] == "nosniff"  # the user middlewares are on the lane
    if "Origin" in extra:
        assert direct.headers["access-control-allow-origin"] == "*"


def test_only_get_and_post_sparql_take_the_lane(served: tuple[App, str]) -> None:
    app, base = served
    assert app.cache is not None and isinstance(app.cache.app, DirectLanes)
    lanes = app.cache.app
    counted = Counted(lanes.app)
    lanes.app = counted
    try:
        with httpx.Client(base_url=base, timeout=WAIT) as client:
            assert client.get("/sparql", params={"query": "ASK { ?s ?p ?o }"}).status_code == 200
            assert client.post("/sparql", data={"query": "ASK { ?s ?p ?o }"}).status_code == 200
            assert counted.calls == 0
            assert client.put("/sparql").status_code == 405  # the router's answer to another method
            assert client.options("/sparql", headers={"Origin": "https://example.org",
                                                      "Access-Control-Request-Method": "POST"}).status_code == 200
            assert client.get("/sparql/").status_code in (200, 307)  # not the lane's path: the router decides
            assert client.get("/health").status_code in (200, 503)
            assert counted.calls == 4
    finally:
        lanes.app = counted.app
