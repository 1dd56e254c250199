"""The remote executor and the upload against a real Oxigraph server on loopback, and against broken servers.

The server is the ``oxigraph`` console script of the ``oxigraph`` package (test extra), started on a free
port for this module and stopped after it. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from anemia_kg.executor import EmbeddedExecutor, QuerySyntaxError, RemoteExecutor, StoreUnavailable, TooManyRows
from anemia_kg.store import StoreError, upload
from test_executor import CLAIMS, ENTITIES, LABELS, ONTOLOGY, QUADS, TRIPLES, count, solutions, write_dataset

START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Oxigraph server on a free loopback port; its base address."""
    binary = shutil.which("oxigraph", path=str(Path(sys.executable).parent)) or shutil.which("oxigraph")
    if binary is None:
        pytest.skip("the Oxigraph server is not installed (pip install oxigraph, in the test extra)")
    folder = tmp_path_factory.mktemp("oxigraph")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen([binary, "serve", "--location", str(folder / "db"), "--bind", f"127.0.0.1:{port}"],
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx.get(f"{base}/query", params={"query": "ASK {}"}, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Oxigraph server did not start: {(folder / 'server.log').read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def nquads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"))


@pytest.fixture(scope="module")
def loaded(server: str, nquads: Path) -> str:
    """The server with the dataset uploaded by the Graph Store Protocol; its query endpoint."""
    assert upload(nquads, gsp_endpoint=f"{server}/store", endpoint=f"{server}/query") == QUADS
    return f"{server}/query"


@pytest.fixture(scope="module")
def remote(loaded: str) -> Iterator[RemoteExecutor]:
    with RemoteExecutor(loaded, timeout=30) as ex:
        yield ex


@pytest.fixture(scope="module")
def embedded(nquads: Path) -> Iterator[EmbeddedExecutor]:
    with EmbeddedExecutor(nquads, workers=1, timeout=30) as ex:
        ex.wait_ready(60)
        yield ex


# --- the same answers as the embedded store -------------------------------------------------------------------


def test_same_select_answers_as_embedded(remote: RemoteExecutor, embedded: EmbeddedExecutor) -> None:
    for media in ("json", "xml", "csv", "tsv"):
        assert remote.execute(LABELS, media=media) == embedded.execute(LABELS, media=media)
    query = "SELECT ?s ?p ?o WHERE { ?s ?p ?o } ORDER BY ?s ?p ?o"
    assert remote.select(query) == embedded.select(query)


def test_same_graphs_and_triples_as_embedded(remote: RemoteExecutor, embedded: EmbeddedExecutor) -> None:
    assert remote.graphs() == embedded.graphs() == sorted([ONTOLOGY, ENTITIES, CLAIMS])
    assert remote.triple_count() == embedded.triple_count() == QUADS
    for media, fmt in (("turtle", ox.RdfFormat.TURTLE), ("ntriples", ox.RdfFormat.N_TRIPLES)):
        mine, theirs = remote.execute(TRIPLES, media=media), embedded.execute(TRIPLES, media=media)
        assert (mine.form, mine.media_type) == (theirs.form, theirs.media_type)
        assert set(ox.parse(mine.body, format=fmt)) == set(ox.parse(theirs.body, format=fmt))
    ask = "ASK { ent:anemia rdfs:label ?l }"
    assert remote.execute(ask, media="json") == embedded.execute(ask, media="json")
    assert remote.execute("DESCRIBE ent:anemia", media="turtle").form == "DESCRIBE"


def test_concurrent_requests(remote: RemoteExecutor) -> None:
    def ask(n: int) -> tuple[int, int]:
        query = f"SELECT ?n WHERE {{ VALUES ?n {{ {n} }} ?s ?p ?o }} LIMIT 1"
        return n, int(solutions(remote.execute(query, media="json"))[0]["n"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(asked == got for asked, got in pool.map(ask, range(40), timeout=120))


def test_union_default_graph_like_embedded(remote: RemoteExecutor, embedded: EmbeddedExecutor) -> None:
    for ex in (remote, embedded):
        assert count(ex) == QUADS  # without default_graphs: every named graph
        assert count(ex, default_graphs=[CLAIMS]) == 2
        assert count(ex, default_graphs=[CLAIMS, ONTOLOGY]) == 4
        only = ex.execute("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", media="json", named_graphs=[ENTITIES])
        assert solutions(only) == [{"g": ENTITIES}]
        own = ex.execute(f"SELECT (COUNT(*) AS ?n) FROM <{ONTOLOGY}> WHERE {{ ?s ?p ?o }}", media="json")
        assert solutions(own) == [{"n": "2"}]


def test_the_server_alone_has_an_empty_default_graph(loaded: str) -> None:
    """Why the executor names the graphs: Oxigraph server's default graph is its own, empty one."""
    response = httpx.post(loaded, data={"query": "ASK { ?s ?p ?o }"},
                          headers={"Accept": "application/sparql-results+json"}, timeout=10)
    assert response.json()["boolean"] is False
    response = httpx.post(f"{loaded}?union-default-graph", data={"query": "ASK { ?s ?p ?o }"},
                          headers={"Accept": "application/sparql-results+json"}, timeout=10)
    assert response.json()["boolean"] is True  # the Oxigraph-only alternative


def test_upload_by_sparql_update(server: str, nquads: Path, remote: RemoteExecutor) -> None:
    assert upload(nquads, update_endpoint=f"{server}/update", endpoint=f"{server}/query") == QUADS
    assert remote.triple_count() == QUADS  # replaced, not doubled
    assert upload(nquads, gsp_endpoint=f"{server}/store", replace=False) == QUADS  # POST adds: same triples
    assert remote.triple_count() == QUADS


# --- refusals and failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "SELECT ?x WHERE { ?x ?p }",
    "SELECT ?x WHERE {\n ?x rdfs:label }",  # uses a predeclared prefix: the engine gets one more line
])
def test_bad_query_is_a_syntax_error_with_the_engines_words(remote: RemoteExecutor, embedded: EmbeddedExecutor,
                                                            query: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        remote.execute(query, media="json")
    with pytest.raises(QuerySyntaxError) as expected:
        embedded.execute(query, media="json")
    assert str(caught.value) == str(expected.value) and str(caught.value).startswith("error at ")
    assert caught.value.status == 400


def test_service_is_refused_before_any_request(remote: RemoteExecutor) -> None:
    with pytest.raises(QuerySyntaxError, match="SERVICE"):
        remote.execute("SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }", media="json")


def test_row_cap(remote: RemoteExecutor) -> None:
    assert len(solutions(remote.execute("SELECT * { ?s ?p ?o }", media="json", max_rows=QUADS))) == QUADS
    with pytest.raises(TooManyRows):
        remote.execute("SELECT * { ?s ?p ?o }", media="json", max_rows=QUADS - 1)
    with pytest.raises(TooManyRows):
        remote.execute(TRIPLES, media="turtle", max_rows=2)


def test_dead_endpoint(nquads: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}/query"  # nobody listens there
    start = time.monotonic()
    with RemoteExecutor(endpoint, timeout=2) as ex, pytest.raises(StoreUnavailable, match="cannot reach") as caught:
        ex.execute(LABELS, media="json")
    assert endpoint in str(caught.value) and caught.value.status == 503
    assert time.monotonic() - start < 2 + 3
    with pytest.raises(StoreError, match="cannot reach"):
        upload(nquads, gsp_endpoint=endpoint, timeout=2)


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A server that accepts connections and never answers; its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop, held = threading.Event(), []

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


def test_slow_endpoint_is_given_up_on_within_the_timeout() -> None:
    timeout = 1.0
    with silent_server() as port, RemoteExecutor(f"http://127.0.0.1:{port}/query", timeout=timeout) as ex:
        for call in (lambda: ex.execute(LABELS, media="json"), ex.graphs):
            start = time.monotonic()
            with pytest.raises(StoreUnavailable, match="did not answer within 1.0 s"):
                call()
            assert time.monotonic() - start < timeout + 3  # generous: it gave up, it did not hang


class Redirecting(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(302)
        self.send_header("Location", "http://example.org/sparql")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_redirects_are_not_followed() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{httpd.server_address[1]}/query"
        with RemoteExecutor(endpoint, timeout=5) as ex, pytest.raises(StoreUnavailable, match="redirects to"):
            ex.execute(LABELS, media="json")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_engine_errors_are_passed_on(server: str, nquads: Path, remote: RemoteExecutor) -> None:
    with pytest.raises(StoreError, match="404"):
        upload(nquads, gsp_endpoint=f"{server}/no-such-path")
    with RemoteExecutor(f"{server}/no-such-path", timeout=5) as wrong, pytest.raises(StoreUnavailable, match="404"):
        wrong.execute(LABELS, media="json")
    body = json.loads(remote.execute("SELECT * { ?s ?p ?o } LIMIT 1", media="json").body)
    assert len(body["results"]["bindings"]) == 1  # the good endpoint still answers


def test_only_http_endpoints() -> None:
    with pytest.raises(ValueError, match="not an http"):
        RemoteExecutor("file:///etc/passwd")
