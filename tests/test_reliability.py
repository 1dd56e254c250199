"""Issue 6, reliability: the promises of docs/reliability.md, each against the real server over real HTTP.

What ``test_server.py`` / ``test_serve_remote.py`` / ``test_build.py`` already prove is not repeated here; this
module adds what they leave open:

* **read-only, proved by checksums**: after every form of SPARQL Update through every channel (GET and POST
  ``update=``, ``application/sparql-update`` in any spelling, updates disguised as queries with comments,
  odd casing, whitespace or ``\\u`` escapes, any content type, other HTTP methods), the whole served dataset
  (every quad of every graph, fetched by CONSTRUCT and canonicalised) still equals the built N-Quads file, and
  the sha256 of every file of ``data/build`` and of the on-disk store folder is unchanged;
* **no outbound connections** from the places ``test_server`` does not cover: ``FROM NAMED``, ``BASE``, IRIs
  that only *look* like something to fetch (``DESCRIBE``, ``IRI()``), and every parameter of the JSON API and of
  the pages, and URL-bearing headers; a listening socket proves nothing connects;
* **bounded work**: queries built to explode (cross products by every method, unbounded property paths, a
  huge ``VALUES`` under and over the size limit, deep nesting, a 1 MB query by GET and by POST) each end with a
  clear 4xx/503 within the timeout while ``/health`` and an ordinary query keep answering from other threads;
  path search at its largest bounds answers within its budget;
* **faults**: each broken input of ``anemia-kg build`` (the console script, as a user runs it, over a built
  copy of the real project) is one ``file:line`` message, no traceback, and the previous build stays
  byte-identical; ``anemia-kg build`` SIGKILLed at many moments leaves ``data/build`` a complete build whose
  report digests match its files; ``anemia-kg serve --store`` SIGKILLed while it prepares the store of a new
  build leaves a store the next ``serve`` answers correctly from; a remote engine that hangs (a proxy that
  accepts and never answers) or goes down (really stopped) gives 503 within the timeout, and when it comes back
  the same server process answers again.

Every wait is bounded; durations are only ever checked as generous upper bounds ("within the timeout + 10 s").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pyoxigraph as ox
import pytest

from anemia_kg.store import MARKER, prepare_disk_store
from conftest import Listener, Project, console_script, subprocess_env
from test_serve_remote import load, oxigraph_server
from test_server import (
    GRAPHS,
    JOINT_PAIN,
    JSON_MIME,
    LABELS,
    NT_MIME,
    PROBE,
    UPDATES,
    Server,
    ask,
    bindings,
    error,
    free_port,
    running_server,
    start,
    stop,
)

TIMEOUT = 2.0  # --query-timeout of the servers started here
SLACK = 10.0  # generous: how much later than the timeout an answer may come on a busy machine
BUILT_FILES = ("anemia-kg.jsonld", "anemia-kg.nq", "anemia-kg.trig", "anemia-kg.ttl", "build-report.json")
ASK_JOINT_PAIN = f"ASK {{ {JOINT_PAIN} ?p ?o }}"


# --- helpers ---------------------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_digests(folder: Path) -> dict[str, str]:
    """The sha256 of every file under ``folder`` (symlinks followed), by relative path."""
    root = folder.resolve()
    return {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def canonical(quads: Any) -> str:
    """sha256 of the sorted N-Quads lines of ``quads`` (the dataset has no blank nodes, so this is exact)."""
    lines = sorted(f"{q.subject} {q.predicate} {q.object} {q.graph_name} ." for q in quads)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def file_fingerprint(nquads: Path) -> str:
    """The built file's quads as Oxigraph holds them (it keeps literals in canonical form: "10.0"^^xsd:decimal
    is served as "10"^^xsd:decimal), so that the comparison is value for value."""
    store = ox.Store()
    store.bulk_load(path=str(nquads), format=ox.RdfFormat.N_QUADS)
    return canonical(store)


def served_fingerprint(client: httpx.Client) -> str:
    """Every quad the server serves: the graph list, then each graph's triples by CONSTRUCT (N-Triples)."""
    which = bindings(ask(client, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY ?g",
                         headers={"Accept": JSON_MIME}))
    graphs = [row["g"] for row in which]
    assert graphs == GRAPHS, graphs
    quads = []
    for g in graphs:
        response = ask(client, f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} }}", "form",
                       headers={"Accept": NT_MIME})
        assert response.status_code == 200, response.text[:500]
        quads += [ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(g))
                  for t in (q.triple for q in ox.parse(response.content, format=ox.RdfFormat.N_TRIPLES))]
    return canonical(quads)


@dataclass
class Snapshot:
    """What must not change: the served dataset, the built files and the store's files."""

    served: str
    build: dict[str, str]
    store: dict[str, str]


def snapshot(client: httpx.Client, root: Path, store: Path) -> Snapshot:
    return Snapshot(served_fingerprint(client), folder_digests(root / "data" / "build"), folder_digests(store))


@dataclass
class Poller:
    """Polls ``/health`` and an ordinary SPARQL query from its own thread, recording each answer's time span."""

    base: str
    answers: list[tuple[str, float, float, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=TIMEOUT + SLACK) as client:
            while not self._stop.is_set():
                for name, call in (("health", lambda: client.get("/health")),
                                   ("sparql", lambda: ask(client, ASK_JOINT_PAIN, headers={"Accept": JSON_MIME}))):
                    started = time.monotonic()
                    try:
                        response = call()
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{name}: {exc!r}")
                        continue
                    ended = time.monotonic()
                    ok = response.status_code == 200 and (name == "health" or response.json().get("boolean") is True)
                    if not ok:
                        self.failures.append(f"{name}: {response.status_code} {response.text[:300]}")
                    self.answers.append((name, started, ended, response.status_code))
                self._stop.wait(0.05)

    def __enter__(self) -> Poller:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(TIMEOUT + SLACK + 5)

    def within(self, start: float, end: float) -> set[str]:
        """Which kinds of request were answered (200) entirely inside [start, end]."""
        return {name for name, s, e, status in self.answers if status == 200 and s >= start and e <= end}


# --- the servers ------------------------------------------------------------------------------------------------


@dataclass
class Guarded:
    server: Server
    root: Path
    store: Path


@pytest.fixture(scope="module")
def guarded(real_build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    """The real build served from an on-disk store (so that its files can be checksummed), timeout 2 s."""
    work = tmp_path_factory.mktemp("guarded")
    store = work / "store"
    with running_server(real_build.root, work / "server", "--store", str(store), "--query-timeout", str(TIMEOUT),
                        "--max-rows", "20000") as server:
        yield Guarded(server, real_build.root, store)


@pytest.fixture
def client(guarded: Guarded) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.server.base, timeout=TIMEOUT + SLACK + 30) as c:
        yield c


# --- 1. read-only, proved by checksums --------------------------------------------------------------------------

DISGUISED = [
    f'InSeRt DaTa {{ GRAPH <{GRAPHS[0]}> {{ <{PROBE}> <http://example.org/p> "x" }} }}',
    f'\n\t  INSERT\n\tDATA\n{{ <{PROBE}> <http://example.org/p> "x" }}',
    f'# SELECT * WHERE {{ ?s ?p ?o }}\nINSERT DATA {{ <{PROBE}> <http://example.org/p> "x" }}',
    f'PREFIX ex: <http://example.org/> # a comment\n# INSERT? no: SELECT\nINSERT DATA {{ <{PROBE}> ex:p "x" }}',
    f'BASE <http://example.org/>\nPREFIX : <http://example.org/>\ninsert data {{ <{PROBE}> :p "x" }}',
    f'\\u0049NSERT DATA {{ <{PROBE}> <http://example.org/p> "x" }}',  # \u0049 is "I"
    "\\u0044ROP ALL",
    "\ufeffDROP ALL",  # a byte-order mark first
    "SELECT * WHERE { ?s ?p ?o } LIMIT 1 ; DROP ALL",
    "ASK {} ;\nCLEAR ALL",
    "dElEtE wHeRe { GRAPH ?g { ?s ?p ?o } }",
    f"ADD SILENT <{GRAPHS[0]}> TO DEFAULT",
    f"MOVE DEFAULT TO <{GRAPHS[1]}>",
    f"COPY <{GRAPHS[2]}> TO <{GRAPHS[3]}>",
    "CREATE SILENT GRAPH <http://example.org/new>",
]
ALL_UPDATES = [u for u in UPDATES if "{listener}" not in u] + DISGUISED


def update_channels(client: httpx.Client, text: str) -> Iterator[tuple[str, httpx.Response]]:
    """The update sent every way a client could try."""
    body = text.encode("utf-8")
    yield "GET update=", client.get("/sparql", params={"update": text})
    yield "GET query=", client.get("/sparql", params={"query": text})
    yield "GET query= and update=", client.get("/sparql", params={"query": "ASK {}", "update": text})
    yield "POST form update=", client.post("/sparql", data={"update": text})
    yield "POST form query=", client.post("/sparql", data={"query": text})
    yield "POST form charset", client.post("/sparql", content=f"update={quote(text)}".encode(),
                                           headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    yield "POST form, update= in the URL", client.post("/sparql", params={"update": text}, data={"query": "ASK {}"})
    for ctype in ("application/sparql-update", "application/sparql-update; charset=utf-8", "APPLICATION/SPARQL-UPDATE",
                  "application/sparql-query", "application/sparql-query; charset=utf-8", "text/plain",
                  "application/json", "application/octet-stream", "multipart/form-data; boundary=x",
                  "text/turtle", "application/n-quads"):
        yield f"POST {ctype}", client.post("/sparql", content=body, headers={"Content-Type": ctype})
    yield "POST no content type", client.post("/sparql", content=body)
    for method in ("PUT", "PATCH", "DELETE"):
        yield f"{method} /sparql", client.request(method, "/sparql", content=body,
                                                  headers={"Content-Type": "application/sparql-update"})
    for path in ("/update", "/sparql/update", "/store", "/data", "/api/sparql"):
        yield f"POST {path}", client.post(path, content=body, headers={"Content-Type": "application/sparql-update"})
    yield "PUT graph store", client.put("/sparql", params={"graph": GRAPHS[0]},
                                        content=f'<{PROBE}> <http://example.org/p> "x" .\n'.encode(),
                                        headers={"Content-Type": "application/n-triples"})


def test_no_update_in_any_form_through_any_channel_changes_a_byte(client: httpx.Client, guarded: Guarded) -> None:
    """Every update through every channel is a 4xx, and afterwards the served dataset equals the built file quad
    for quad, and no file of data/build or of the store folder has changed."""
    before = snapshot(client, guarded.root, guarded.store)
    assert before.served == file_fingerprint(guarded.root / "data" / "build" / "anemia-kg.nq")
    assert before.store, "the store folder holds no files"
    refused: list[str] = []
    for text in ALL_UPDATES:
        for channel, response in update_channels(client, text):
            assert 400 <= response.status_code < 500, (channel, text, response.status_code, response.text[:300])
            assert "Traceback" not in response.text
            refused.append(channel)
    assert len(refused) == len(ALL_UPDATES) * len(set(refused))
    after = snapshot(client, guarded.root, guarded.store)
    assert after == before
    probe = ask(client, f"ASK {{ GRAPH ?g {{ <{PROBE}> ?p ?o }} }}", headers={"Accept": JSON_MIME})
    assert probe.json()["boolean"] is False


@pytest.mark.parametrize("text", DISGUISED)
def test_a_disguised_update_is_refused_by_name(client: httpx.Client, text: str) -> None:
    """Disguises do not turn an update into a parse error by luck: the refusal says why (read-only) or where the
    text stops being a query."""
    for method in ("get", "form", "direct"):
        detail = error(ask(client, text, method), {400, 403})
        assert re.search(r"read-only|update|\b1:\d+|\d+:\d+", detail, re.IGNORECASE), detail


# --- 2. no outbound connections ---------------------------------------------------------------------------------

OUTBOUND_QUERIES = [
    "SELECT * FROM NAMED <{url}/g.ttl> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
    "SELECT * FROM <{url}/a.ttl> FROM NAMED <{url}/b.ttl> WHERE {{ ?s ?p ?o }} LIMIT 1",
    "CONSTRUCT {{ ?s ?p ?o }} FROM <{url}/a.ttl> WHERE {{ ?s ?p ?o }}",
    "ASK FROM <{url}/a.ttl> {{ ?s ?p ?o }}",
    "BASE <{url}/> SELECT * WHERE {{ <x> ?p ?o }}",
    "DESCRIBE <{url}/thing>",
    "SELECT * WHERE {{ GRAPH <{url}/g> {{ ?s ?p ?o }} }}",
    'SELECT ?x WHERE {{ BIND(IRI("{url}/x") AS ?x) }}',
    'SELECT ?x WHERE {{ BIND(URI(CONCAT("{url}", "/y")) AS ?x) }}',
    "SELECT * WHERE {{ ?s ?p <{url}/o> }}",
    "SELECT * WHERE {{ VALUES ?g {{ <{url}/g> }} GRAPH ?g {{ ?s ?p ?o }} }}",
]


@pytest.mark.parametrize("template", OUTBOUND_QUERIES)
def test_urls_inside_queries_are_never_fetched(client: httpx.Client, listener: Listener, template: str) -> None:
    query = template.format(url=listener.url)
    for method in ("get", "form", "direct"):
        response = ask(client, query, method, headers={"Accept": "application/sparql-results+json, text/turtle"})
        assert response.status_code in (200, 400, 403), response.text[:500]
    assert listener.connections() == 0


def api_requests(url: str) -> list[tuple[str, dict[str, Any]]]:
    """Every JSON API operation and page, with a URL in each parameter it takes."""
    enc = quote(url, safe="")
    return [
        ("/api/entities", {"q": url}),
        ("/api/entities", {"type": url}),
        ("/api/entities", {"q": url, "limit": url}),
        (f"/api/entities/{enc}", {}),
        (f"/api/entities/{url}", {}),
        ("/api/paths", {"source": url, "target": "joint pain"}),
        ("/api/paths", {"source": "anemia", "target": url}),
        ("/api/paths", {"source": "anemia", "target": "joint pain", "relations": url}),
        ("/api/paths", {"source": "anemia", "target": "joint pain", "max_hops": url, "limit": url}),
        ("/api/explain", {"finding": url}),
        ("/api/explain", {"finding": "joint pain", "max_hops": url}),
        ("/api/references", {"url": url, "callback": url}),
        ("/api/quality", {"source": url}),
        ("/health", {"url": url}),
        ("/", {"q": url}),
        ("/paths", {"source": url, "target": url}),
        (f"/entity/{enc}", {}),
        ("/references", {"redirect": url}),
        ("/query", {"query": f"SELECT * WHERE {{ SERVICE <{url}> {{ ?s ?p ?o }} }}", "endpoint": url}),
        ("/sparql", {"query": "ASK {}", "format": url}),
        ("/sparql", {"query": "ASK {}", "default-graph-uri": url}),
        ("/docs", {"url": url}),
        ("/openapi.json", {"url": url}),
    ]


@pytest.mark.parametrize("index", range(len(api_requests("http://x"))))
def test_urls_in_api_and_page_parameters_are_never_fetched(client: httpx.Client, listener: Listener,
                                                           index: int) -> None:
    path, params = api_requests(listener.url + "/probe")[index]
    response = client.get(path, params=params)
    assert response.status_code < 500, f"{path} {params}: {response.status_code} {response.text[:500]}"
    assert listener.connections() == 0


def test_urls_in_headers_are_never_fetched(client: httpx.Client, listener: Listener) -> None:
    url = listener.url + "/probe"
    headers = {"Origin": url, "Referer": url, "Forwarded": f"for=127.0.0.1;host={url[7:]};proto=http",
               "X-Forwarded-Host": url[7:], "Link": f"<{url}>; rel=preload", "Accept": f"{url}, */*"}
    for response in (client.get("/sparql", params={"query": ASK_JOINT_PAIN}, headers=headers),
                     client.get("/sparql", headers={**headers, "Accept": "text/turtle"}),  # the service description
                     client.get("/api/paths", params={"source": "anemia", "target": "joint pain"}, headers=headers),
                     client.get("/", headers=headers)):
        assert response.status_code < 500, response.text[:500]
    assert listener.connections() == 0


# --- 3. bounded work --------------------------------------------------------------------------------------------


def raw_get(base: str, target: str) -> httpx.Response:
    """A GET of ``target`` over a plain socket (httpx refuses URLs this long), the answer as an httpx.Response."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT + SLACK) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before it has read everything
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                data += chunk
    if not data:
        raise ConnectionError("the server closed the connection without an answer")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines[1:] if ": " in line]
    return httpx.Response(int(lines[0].split()[1]), headers=headers, content=body)

MB = 1_000_000
EXPLOSIVE: dict[str, tuple[str, str]] = {
    # name: (how it is sent, query)
    "cross product, GET": ("get", "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"),
    "cross product, POST form": ("form", "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"),
    "cross product counted, POST direct": ("direct",
                                           "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"),
    "cross product, CONSTRUCT": ("form", "CONSTRUCT { ?a ?b ?i } WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"),
    "unbounded property path": ("get", "SELECT * WHERE { ?s (rdfs:label|!rdfs:label)* ?o }"),
    "two unbounded property paths": ("form", "SELECT (COUNT(*) AS ?n) WHERE { ?s (rdfs:label|!rdfs:label)* ?o . "
                                             "?o (rdfs:label|!rdfs:label)* ?x }"),
    "one-or-more path over anything": ("direct", "SELECT (COUNT(*) AS ?n) WHERE { ?s (!<urn:x:none>)+ ?o . "
                                                 "?o (^!<urn:x:none>)+ ?x }"),
    "huge VALUES under the size limit": ("direct", "SELECT (COUNT(*) AS ?n) WHERE { VALUES ?x { "
                                         + " ".join(str(i) for i in range(15_000)) + " } ?s ?p ?o . ?a ?b ?c }"),
    "200k VALUES over the size limit": ("direct", "SELECT * WHERE { VALUES ?x { "
                                        + " ".join(f"<urn:x:{i}>" for i in range(200_000)) + " } ?x ?p ?o }"),
    "200k VALUES by form": ("form", "SELECT * WHERE { VALUES ?x { "
                            + " ".join(str(i) for i in range(200_000)) + " } ?x ?p ?o }"),
    "30 OPTIONALs": ("form", "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c "
                     + " ".join(f"OPTIONAL {{ ?a ?p{i} ?o{i} }}" for i in range(30)) + " }"),
    "group nested 5000 deep": ("direct", "SELECT * WHERE " + "{ " * 5000 + "?s ?p ?o" + " }" * 5000),
    "parentheses nested 30000 deep": ("direct", "ASK { FILTER(" + "(" * 30_000 + "1" + ")" * 30_000 + ") }"),
    "path nested 5000 deep": ("direct", "SELECT * WHERE { ?s " + "(" * 5000 + "rdfs:label" + ")*" * 5000 + " ?o }"),
    "30000 operators": ("direct", "ASK { FILTER(" + "!" * 30_000 + "true) }"),
    "1 MB query by POST direct": ("direct", "SELECT * WHERE { ?s ?p ?o } # " + "x" * MB),
    "1 MB query by POST form": ("form", "SELECT * WHERE { ?s ?p ?o } # " + "x" * MB),
    "1 MB query by GET": ("raw get", "SELECT * WHERE { ?s ?p ?o } # " + "x" * MB),  # httpx will not send it
}


@pytest.mark.parametrize("name", list(EXPLOSIVE))
def test_a_query_built_to_explode_ends_clearly_and_the_server_keeps_answering(guarded: Guarded, name: str) -> None:
    method, query = EXPLOSIVE[name]
    base = guarded.server.base
    with Poller(base) as poller:
        time.sleep(0.3)  # the poller is answering before the heavy request goes in
        started = time.monotonic()
        with httpx.Client(base_url=base, timeout=TIMEOUT + SLACK + 30) as heavy:
            try:
                if method == "raw get":
                    response: httpx.Response | None = raw_get(base, "/sparql?query=" + quote(query))
                else:
                    response = ask(heavy, query, method, headers={"Accept": f"{JSON_MIME}, {NT_MIME};q=0.5"})
            except (httpx.RemoteProtocolError, ConnectionError):
                response = None  # a server may refuse a megabyte request head by closing the connection
        ended = time.monotonic()
        time.sleep(0.3)
    seconds = ended - started
    assert seconds < TIMEOUT + SLACK, f"{name}: answered after {seconds:.1f} s"
    if response is None:
        assert name == "1 MB query by GET", name
    else:
        assert response.status_code in (400, 403, 413, 414, 422, 431, 503), response.text[:500]
        if response.headers.get("content-type", "").startswith("application/json"):
            detail = error(response, response.status_code)
            assert detail and isinstance(detail, str), detail
            if response.status_code == 503:
                assert f"{TIMEOUT:g}" in detail or "busy" in detail, detail  # names the limit
            if response.status_code == 422:  # the row cap or the memory limit, named
                assert "rows" in detail or "(setting query_memory_mb)" in detail, detail
        else:  # uvicorn's own parser refusing an oversized head: a plain 4xx, never a 5xx
            assert response.status_code < 500, response.text[:500]
    assert not poller.failures, poller.failures
    if seconds > 1.0:  # it ran a while: the server answered others in the meantime
        assert poller.within(started, ended) >= {"health", "sparql"}, (name, seconds, poller.answers[-10:])
    with httpx.Client(base_url=base, timeout=TIMEOUT + SLACK) as after:
        assert after.get("/health").status_code == 200
        assert bindings(ask(after, LABELS, headers={"Accept": JSON_MIME}))


def test_two_heavy_queries_at_once_still_leave_health_answering(guarded: Guarded) -> None:
    """With every query worker busy, SPARQL may say 503 "busy" (documented), but /health and the JSON API, which
    need no worker, keep answering, and afterwards SPARQL is back."""
    base = guarded.server.base
    results: list[httpx.Response] = []

    def heavy() -> None:
        with httpx.Client(base_url=base, timeout=TIMEOUT + SLACK + 30) as own:
            results.append(ask(own, EXPLOSIVE["cross product counted, POST direct"][1], headers={"Accept": JSON_MIME}))

    threads = [threading.Thread(target=heavy, daemon=True) for _ in range(2)]
    with httpx.Client(base_url=base, timeout=TIMEOUT + SLACK) as client:
        for t in threads:
            t.start()
        time.sleep(0.5)
        assert client.get("/health").status_code == 200
        paths = client.get("/api/paths", params={"source": "B12 deficiency", "target": "joint pain"})
        assert paths.status_code == 200 and paths.json()["paths"]
        for t in threads:
            t.join(TIMEOUT + SLACK + 30)
        assert [r.status_code for r in results] == [503, 503], [r.text for r in results]
        deadline = time.monotonic() + 60
        while True:  # the killed workers are replaced in the background
            response = ask(client, LABELS, headers={"Accept": JSON_MIME})
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert bindings(response)


def test_path_search_is_bounded(client: httpx.Client) -> None:
    for params in ({"max_hops": "9", "limit": "51"}, {"max_hops": "100"}, {"limit": "1000000"},
                   {"max_hops": "-1"}, {"limit": "0"}):
        error(client.get("/api/paths", params={"source": "anemia", "target": "joint pain", **params}), 422)
        error(client.get("/api/explain", params={"finding": "joint pain", **params}), 422)
    # the largest allowed search over every relation answers within its budget (1 s) plus generous slack
    for source, target in (("anemia", "joint pain"), ("vitamin B12 deficiency", "peripheral neuropathy"),
                           ("peripheral neuropathy", "anemia"), ("metformin", "muscle cramps")):
        started = time.monotonic()
        response = client.get("/api/paths", params={"source": source, "target": target, "relations": "all",
                                                     "max_hops": 8, "limit": 50})
        assert time.monotonic() - started < 1.0 + SLACK
        assert response.status_code in (200, 404), response.text[:500]
        if response.status_code == 200:
            body = response.json()
            assert len(body["paths"]) <= 50
            assert all(len(p["nodes"]) - 1 <= 8 for p in body["paths"])
    started = time.monotonic()
    explained = client.get("/api/explain", params={"finding": "joint pain", "max_hops": 8, "limit": 50})
    assert explained.status_code == 200 and time.monotonic() - started < 1.0 + SLACK


# --- 4. faults: a broken input never replaces a good build ------------------------------------------------------

NOTE = "    note: The sentence's \"can\" governs all three verbs, so worsening is hedged too.\n"
QUOTE = ('"anemia can cause or exacerbate muscle cramping, joint pain, and worsen peripheral neuropathy, particularly '
         'when the anemia is related to vitamin B12 deficiency"\n        cites: []\n\n'
         '  - id: anemia-may-exacerbate-muscle-cramping\n')


@dataclass(frozen=True)
class Fault:
    file: str
    old: str | None  # None: cut the file in half
    new: str
    line_of: str  # the text on the line the message must name
    words: str  # what the message must say
    occurrence: int = 1  # which line holding ``line_of``


FAULTS = {
    "claims syntax error": Fault("data/claims.yaml", "  - id: anemia-may-cause-muscle-cramping\n",
                                 "  - id: [anemia-may-cause-muscle-cramping\n", "id: [anemia-may-cause-muscle-cramping",
                                 "YAML syntax error"),
    "duplicate claim id": Fault("data/claims.yaml", "  - id: anemia-may-exacerbate-muscle-cramping\n",
                                "  - id: anemia-may-cause-muscle-cramping\n", "id: anemia-may-cause-muscle-cramping",
                                "already used", occurrence=2),
    "unknown entity": Fault("data/claims.yaml",
                            "    subject: anemia\n    predicate: mayCause\n    object: muscle_cramp",
                            "    subject: anaemia_typo\n    predicate: mayCause\n    object: muscle_cramp",
                            "subject: anaemia_typo", "not an entity"),  # the field's line
    "quote not in the article": Fault("data/claims.yaml", QUOTE, QUOTE.replace("worsen peripheral neuropathy",
                                                                               "worsen peripheral neuropathies"),
                                      "worsen peripheral neuropathies", "not in the article"),
    "wrong citation": Fault("data/claims.yaml", QUOTE, QUOTE.replace("cites: []", "cites: [3]"), "QUOTE",
                            "the article cites"),
    "truncated ontology": Fault("ontology/anemia-kg.ttl", None, "", "", ""),
}


def cli(root: Path, *args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([console_script(), "--root", str(root), *args], capture_output=True, text=True,
                          encoding="utf-8", stdin=subprocess.DEVNULL, env=subprocess_env(), timeout=timeout,
                          cwd=cwd)


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_broken_input_is_one_clear_message_and_the_previous_build_stays(real_build_copy: Project, tmp_path: Path,
                                                                          name: str) -> None:
    project, fault = real_build_copy, FAULTS[name]
    before, target = project.snapshot(), project.build_dir.resolve()
    path = project.path(fault.file)
    text = path.read_text(encoding="utf-8")
    if fault.old is None:
        cut = len(text) // 2
        path.write_text(text[:cut], encoding="utf-8")
        line, words = text.count("\n", 0, cut) + 1, ""
    else:
        assert text.count(fault.old) == 1, (name, text.count(fault.old))
        path.write_text(text.replace(fault.old, fault.new), encoding="utf-8")
        needle = fault.new.split("\n")[0].strip(' "') if fault.line_of == "QUOTE" else fault.line_of
        line, words = project.line_of(fault.file, needle, fault.occurrence), fault.words
    elsewhere = tmp_path / "elsewhere"  # the user's current folder is not the project
    elsewhere.mkdir()
    result = cli(project.root, "build", cwd=elsewhere)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and 'File "' not in output, output
    named = [ln for ln in result.stderr.splitlines() if fault.file in ln]
    assert len(named) == 1, result.stderr  # one message, naming the file
    assert re.search(rf"{re.escape(fault.file)}:{line}:", named[0]), (line, named[0])
    assert words.lower() in named[0].lower(), named[0]
    assert project.build_dir.resolve() == target
    assert project.snapshot() == before
    assert project.leftovers() == []


# --- 4. faults: SIGKILL during a build -------------------------------------------------------------------------


def check_complete_build(project: Project) -> dict[str, bytes]:
    """data/build is a symlink to a folder holding every file, whose digests are those of the build report."""
    out = project.build_dir
    assert out.is_symlink(), "data/build is not the published symlink"
    files = project.snapshot()
    assert sorted(files) == sorted(BUILT_FILES), sorted(files)
    report = json.loads(files["build-report.json"])
    assert report["files"] == {name: hashlib.sha256(data).hexdigest() for name, data in files.items()
                               if name != "build-report.json"}
    assert sum(1 for _ in ox.parse(files["anemia-kg.nq"], format=ox.RdfFormat.N_QUADS)) == report["triples"]
    return files


def killpg(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


def wait_for(process: subprocess.Popen[bytes], condition: Callable[[], bool], limit: float) -> bool:
    """Poll ``condition`` every 2 ms until it holds (True), the process ends or ``limit`` seconds pass (False)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.002)
    return False


def revise(project: Project, n: int) -> None:
    """A valid change of the claims that changes the built files (the curator's note is in the graph)."""
    text = project.text("data/claims.yaml")
    current = next(line + "\n" for line in text.split("\n") if line.startswith(NOTE.rstrip("\n")))
    project.path("data/claims.yaml").write_text(text.replace(current, NOTE.rstrip("\n") + f" (revision {n})\n"),
                                                encoding="utf-8")


def test_killing_build_at_any_moment_leaves_a_complete_build(real_build_copy: Project, tmp_path: Path) -> None:
    project = real_build_copy
    command = [console_script(), "--root", str(project.root), "build"]
    revise(project, 0)
    started = time.monotonic()
    first = start(command, tmp_path / "run-0")
    assert first.wait(600) == 0, (tmp_path / "run-0" / "stderr").read_text()
    duration = time.monotonic() - started
    previous = check_complete_build(project)
    builds = project.root / "data" / ".builds"
    outcomes: list[str] = []
    points: list[tuple[str, float | None]] = [(f"{f:.0%} of a build", f * duration)
                                              for f in (0.05, 0.2, 0.4, 0.6, 0.8, 0.9, 0.97)]
    points.append(("a new build folder appears", None))
    for n, (point, after) in enumerate(points, start=1):
        revise(project, n)
        known = set(os.listdir(builds))
        process = start(command, tmp_path / f"run-{n}")
        if after is None:
            wait_for(process, lambda known=known: bool(set(os.listdir(builds)) - known), 600)
        else:
            wait_for(process, lambda: False, after)
        finished = process.poll() is not None
        killpg(process)
        files = check_complete_build(project)
        if files == previous:
            outcomes.append(f"{point}: killed, previous build in place")
        else:
            assert finished or process.returncode == -signal.SIGKILL
            outcomes.append(f"{point}: {'finished' if finished else 'killed after publishing'}, new build complete")
            previous = files
    print("\n".join(outcomes))
    assert any("previous build in place" in o for o in outcomes), outcomes
    # a build after all that succeeds and cleans up whatever the killed ones left
    revise(project, len(points) + 1)
    result = cli(project.root, "build")
    assert result.returncode == 0, result.stderr
    assert check_complete_build(project) != previous
    assert project.leftovers() == []


# --- 4. faults: SIGKILL while serve prepares the on-disk store of a new build ----------------------------------


def store_state(folder: Path, digests: dict[str, int]) -> str:
    """Which dataset the store folder holds (by the sha256 marker), after checking it opens and is complete."""
    assert folder.is_symlink(), f"{folder} is not the published symlink"
    marker = (folder / MARKER).read_text(encoding="ascii").strip()
    assert marker in digests, marker
    store = ox.Store.read_only(str(folder.resolve()))
    try:
        assert len(store) == digests[marker]
    finally:
        del store
    return marker


def _marker_is(folder: Path, digest: str) -> bool:
    with contextlib.suppress(OSError):
        return (folder / MARKER).read_text(encoding="ascii").strip() == digest
    return False


def test_killing_serve_while_it_prepares_a_new_store(real_build, tiny_built: Project, tmp_path: Path) -> None:
    old_nq, new_nq = tiny_built.build_dir / "anemia-kg.nq", real_build.root / "data" / "build" / "anemia-kg.nq"
    old, new = sha256(old_nq), sha256(new_nq)
    sizes = {old: sum(1 for _ in ox.parse(path=str(old_nq))), new: sum(1 for _ in ox.parse(path=str(new_nq)))}
    folder = tmp_path / "store"
    stores = tmp_path / ".store.stores"

    def tmp_with(name: str) -> Callable[[], bool]:
        return lambda: any((p / name).exists() if name else True for p in stores.glob("tmp-*"))

    points: list[tuple[str, Callable[[], bool] | None, float]] = [
        ("0.5 s after start", None, 0.5),
        ("the temporary store appears", tmp_with(""), 120),
        ("RocksDB's CURRENT file appears", tmp_with("CURRENT"), 120),
        ("the marker is written", tmp_with(MARKER), 120),
        ("the new store is renamed into place", lambda: any(stores.glob(f"store-{new[:12]}-*")), 120),
    ]
    outcomes: list[str] = []
    for n, (point, condition, limit) in enumerate(points):
        if not folder.exists() or store_state(folder, sizes) != old:
            prepare_disk_store(old_nq, folder)  # the store of an older build
        assert store_state(folder, sizes) == old
        port = free_port()
        process = start([console_script(), "--root", str(real_build.root), "serve", "--host", "127.0.0.1", "--port",
                         str(port), "--store", str(folder), "--query-timeout", str(TIMEOUT)], tmp_path / f"serve-{n}")
        fired: list[bool] = []

        def moment(condition: Callable[[], bool] | None = condition, fired: list[bool] = fired) -> bool:
            if condition is not None and condition():
                fired.append(True)
                return True
            return _marker_is(folder, new)  # too late: the new store is already in place

        wait_for(process, moment, limit)
        killpg(process)
        state = store_state(folder, sizes)  # complete, whichever it is
        outcomes.append(f"{point}: {'hit' if fired or condition is None else 'missed'}, "
                        f"{'previous' if state == old else 'new'} store in place")
    print("\n".join(outcomes))
    assert any("previous store in place" in o for o in outcomes), outcomes
    # the next serve prepares (or reuses) the store of the new build and answers correctly from it
    with running_server(real_build.root, tmp_path / "serve-after", "--store", str(folder), "--query-timeout",
                        str(TIMEOUT), "--max-rows", "20000") as server, \
            httpx.Client(base_url=server.base, timeout=TIMEOUT + SLACK + 30) as client:
        assert served_fingerprint(client) == file_fingerprint(new_nq)
        assert store_state(folder, sizes) == new
        assert client.get("/api/paths", params={"source": "B12 deficiency", "target": "joint pain"}).json()["paths"]
    assert list(stores.glob("tmp-*")) == []


# --- 4. faults: a remote engine that hangs, goes down, and comes back -------------------------------------------


class SwitchProxy:
    """A TCP proxy on a fixed loopback port in front of the engine. ``up``: forwards; ``hang``: accepts and never
    answers (a slow engine); ``down``: the port is closed (connection refused). Each switch cuts open connections."""

    def __init__(self, target: int) -> None:
        self.port, self.target, self.mode = free_port(), target, "up"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._listen()

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.05)
        self._listener, self._stop = sock, threading.Event()
        threading.Thread(target=self._accept, args=(sock, self._stop), daemon=True).start()

    def _accept(self, sock: socket.socket, stop_event: threading.Event) -> None:
        while not stop_event.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._open.add(conn)
                mode = self.mode
            if mode == "up":
                threading.Thread(target=self._forward, args=(conn,), daemon=True).start()
        sock.close()

    def _forward(self, conn: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:
            self._close(conn)
            return
        upstream.settimeout(None)
        with self._lock:
            self._open.add(upstream)
        threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True).start()
        self._pipe(conn, upstream)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        self._close(src)
        self._close(dst)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def switch(self, mode: str, target: int | None = None) -> None:
        with self._lock:
            previous, self.mode = self.mode, mode
            if target is not None:
                self.target = target
            cut, self._open = list(self._open), set()
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if mode == "down" and previous != "down":
            self._stop.set()
            time.sleep(0.2)  # the accept loop closes the port
        elif mode != "down" and previous == "down":
            self._listen()

    def close(self) -> None:
        self.switch("down")


def test_a_remote_engine_that_hangs_or_goes_down_gives_503_and_is_used_again_when_back(
        real_build, tmp_path: Path) -> None:
    report = json.loads((real_build.root / "data" / "build" / "build-report.json").read_text(encoding="utf-8"))
    engine_folder = tmp_path / "oxigraph"
    with oxigraph_server(engine_folder) as engine:
        load(real_build.root, engine.base, report)
        proxy = SwitchProxy(int(engine.base.rsplit(":", 1)[1]))
        endpoint = f"http://127.0.0.1:{proxy.port}/query"
        try:
            with running_server(real_build.root, tmp_path / "server", "--endpoint", endpoint,
                                "--query-timeout", str(TIMEOUT)) as server, \
                    httpx.Client(base_url=server.base, timeout=TIMEOUT + SLACK + 30) as client:
                expected = bindings(ask(client, LABELS, headers={"Accept": JSON_MIME}))
                assert expected

                def refused(*fragments: str) -> None:
                    for method in ("get", "form", "direct"):
                        started = time.monotonic()
                        error(ask(client, LABELS, method, headers={"Accept": JSON_MIME}), 503, *fragments)
                        assert time.monotonic() - started < TIMEOUT + SLACK
                    assert client.get("/health").status_code == 200  # what needs no engine still answers
                    paths = client.get("/api/paths", params={"source": "anemia", "target": "joint pain"})
                    assert paths.status_code == 200 and paths.json()["paths"]

                proxy.switch("hang")  # a slow engine: accepts, never answers
                refused(f"{TIMEOUT:g}")
                proxy.switch("down")
                stop(engine.process)  # the engine really goes away
                refused("cannot reach", endpoint)
                with oxigraph_server(engine_folder) as back:  # the same data, a new process
                    proxy.switch("up", target=int(back.base.rsplit(":", 1)[1]))
                    deadline = time.monotonic() + 60
                    while True:  # at most a stale pooled connection or two before it answers again
                        response = ask(client, LABELS, headers={"Accept": JSON_MIME})
                        if response.status_code == 200 or time.monotonic() > deadline:
                            break
                        time.sleep(0.5)
                    assert bindings(response) == expected
                    for method in ("get", "form", "direct"):  # and keeps answering, the same server process
                        assert bindings(ask(client, LABELS, method, headers={"Accept": JSON_MIME})) == expected
                    assert server.process.poll() is None
        finally:
            proxy.close()
