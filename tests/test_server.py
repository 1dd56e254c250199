"""``anemia-kg serve`` as users and standard clients meet it: the real server over real HTTP on loopback.

The server is the installed console script, started as a subprocess over the real build (conftest's
``real_build``, read-only) on a free loopback port:

* ``server``: ``--query-timeout 1 --max-rows 5000`` for everything (the whole dataset, 4697 quads, fits);
* ``capped_server``: ``--max-rows 50``, for the row cap only.

Each waits (bounded) for ``/health``, and is stopped after its module: SIGTERM, then SIGKILL to its process
group (its query workers included) if it does not stop. Clients: httpx, SPARQLWrapper and rdflib's
``SPARQLStore``. Answers are parsed, never only compared as text: ``json``, ``xml.etree``, ``csv`` and
pyoxigraph's parsers. ``SERVICE`` and ``LOAD`` are sent to a listening socket of the test to prove that the
server never connects out. The path questions are the article's own, checked against the article's text.

The helpers (``running_server``, ``Server``, ...) are shared with ``test_serve_remote``; ``Listener`` is in conftest.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pyoxigraph as ox
import pytest
import rdflib
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import CSV, JSON, JSONLD, POST, POSTDIRECTLY, RDFXML, TSV, TURTLE, URLENCODED, XML, SPARQLWrapper
from SPARQLWrapper.SPARQLExceptions import QueryBadFormed

from conftest import Listener, console_script, subprocess_env

START_TIMEOUT = 60.0  # seconds the server may take to answer /health
STOP_TIMEOUT = 15.0  # seconds it may take to stop on SIGTERM before it is killed
CLI_TIMEOUT = 180.0
QUICK = 3.0  # seconds a cheap request may take while a heavy query runs (generous)

GRAPH = "https://w3id.org/anemia-kg/graph/"
CLAIMS, ENTITIES, ONTOLOGY, PROVENANCE = (GRAPH + name for name in ("claims", "entities", "ontology", "provenance"))
GRAPHS = sorted([CLAIMS, ENTITIES, ONTOLOGY, PROVENANCE])
ENT = "https://w3id.org/anemia-kg/entity/"
AKG = "https://w3id.org/anemia-kg/ontology#"
SD = "http://www.w3.org/ns/sparql-service-description#"
RESULTS_NS = "{http://www.w3.org/2005/sparql-results#}"

JSON_MIME, XML_MIME = "application/sparql-results+json", "application/sparql-results+xml"
CSV_MIME, TSV_MIME = "text/csv", "text/tab-separated-values"
TURTLE_MIME, NT_MIME, JSONLD_MIME, RDFXML_MIME = ("text/turtle", "application/n-triples", "application/ld+json",
                                                   "application/rdf+xml")
RESULT_FORMATS = {JSON_MIME: ox.QueryResultsFormat.JSON, XML_MIME: ox.QueryResultsFormat.XML,
                  CSV_MIME: ox.QueryResultsFormat.CSV, TSV_MIME: ox.QueryResultsFormat.TSV}
RDF_FORMATS = {TURTLE_MIME: ox.RdfFormat.TURTLE, NT_MIME: ox.RdfFormat.N_TRIPLES, JSONLD_MIME: ox.RdfFormat.JSON_LD,
               RDFXML_MIME: ox.RdfFormat.RDF_XML}

LABELS = ("PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
          "SELECT ?entity ?label WHERE { ?entity a akg:Symptom ; rdfs:label ?label } ORDER BY ?entity")
JOINT_PAIN = f"<{ENT}joint_pain>"
TRIPLES_OF_JOINT_PAIN = f"CONSTRUCT {{ {JOINT_PAIN} ?p ?o }} WHERE {{ {JOINT_PAIN} ?p ?o }}"
QUAD_COUNT = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"
# Runs far past any timeout here in flat memory (a count streams), so the timeout, not the memory limit, ends it
HEAVY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
PROBE = "http://example.org/anemia-kg-test/probe"  # a subject an executed update would add

# The article's reference list (data/source/article.txt): number -> (title, year, kind). 7 is cited, not listed.
REFERENCES = {
    1: ("Guideline Directed Topic Overview", 2025, "Guideline"),
    2: ("The neuropsychiatry of megaloblastic anaemia.", 1980, "Research"),
    3: ("[Reversible peripheral neuropathy induced by vitamin B12 deficiency].", 2005, "Research"),
    4: ("Nondiabetic neuropathy in a patient with diabetes.", 1995, "Research"),
    5: ("Peripheral Neuropathy", 2025, "Guideline"),
    6: ("Peripheral neuropathy and haemolytic anaemia with cherry red spot on macula in dapsone poisoning.", 1990,
        "Research"),
}
UNRESOLVED = {7}


# --- running the server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def in_process_server(app: Any, wait: float = START_TIMEOUT, **config: Any) -> Iterator[str]:
    """uvicorn serving ``app`` on a free loopback port from a thread of this process, stopped after.

    For tests that must reach inside the application (patched services, a counting layer) while it runs;
    ``config`` is passed on to ``uvicorn.Config`` (the HTTP protocol, the keep-alive timeout, ...).
    """
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + wait
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the in-process server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(wait)


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    folder: Path

    def log(self) -> str:
        return "\n".join(f"--- {name}\n" + (self.folder / name).read_text(encoding="utf-8", errors="replace")
                         for name in ("stdout", "stderr") if (self.folder / name).exists())


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL to the process group we created for it (its query workers too)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def start(command: list[str], folder: Path) -> subprocess.Popen[bytes]:
    """A subprocess in its own process group (so that it can be stopped with its children), output to files."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=folder,
                                env=subprocess_env(), start_new_session=True)


def wait_until(process: subprocess.Popen[bytes], url: str, describe: Any, timeout: float = START_TIMEOUT) -> None:
    """Poll ``url`` until it answers 200; fail (with the process's output) if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if process.poll() is not None:
            pytest.fail(f"the process exited with {process.returncode} before {url} answered\n{describe()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer within {timeout:g} s\n{describe()}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_server(root: Path, folder: Path, *options: str) -> Iterator[Server]:
    """``anemia-kg --root ROOT serve --host 127.0.0.1 --port P *options``, up and healthy, stopped after."""
    port = free_port()
    command = [console_script(), "--root", str(root), "serve", "--host", "127.0.0.1", "--port", str(port), *options]
    process = start(command, folder)
    server = Server(f"http://127.0.0.1:{port}", process, folder)
    try:
        wait_until(process, f"{server.base}/health", server.log)
        yield server
    finally:
        stop(process)


def run_cli(root: Path, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """The console script, as a user runs it."""
    return subprocess.run([console_script(), "--root", str(root), *args], capture_output=True, text=True,
                          encoding="utf-8", stdin=subprocess.DEVNULL, env=subprocess_env(), timeout=timeout)


@pytest.fixture(scope="module")
def server(real_build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(real_build.root, tmp_path_factory.mktemp("server"),
                        "--query-timeout", "1", "--max-rows", "5000") as running:
        yield running


@pytest.fixture(scope="module")
def capped_server(real_build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(real_build.root, tmp_path_factory.mktemp("capped-server"),
                        "--query-timeout", "5", "--max-rows", "50") as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def report(real_build) -> dict[str, Any]:
    """The build's own report: counts to check the served data against."""
    return json.loads((real_build.root / "data" / "build" / "build-report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def article(real_build) -> str:
    return (real_build.root / "data" / "source" / "article.txt").read_text(encoding="utf-8")


# --- request and answer helpers --------------------------------------------------------------------------

LEAKS = ("Traceback", 'File "', ".py\"", ".py,", "site-packages", "/src/anemia_kg")


def error(response: httpx.Response, status: int | set[int], *fragments: str) -> Any:
    """An error answer: the status, a JSON ``{"detail": ...}`` naming ``fragments``, nothing of the server's
    internals (no traceback, no source file path). Returns the detail."""
    allowed = {status} if isinstance(status, int) else status
    assert response.status_code in allowed, f"{response.status_code}: {response.text[:2000]}"
    assert response.headers["content-type"].split(";")[0] == "application/json", response.headers
    body = response.json()
    assert isinstance(body, dict) and "detail" in body, body
    text = json.dumps(body)
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} in {text[:2000]}"
    detail = body["detail"]
    shown = detail if isinstance(detail, str) else json.dumps(detail)
    for fragment in fragments:
        assert fragment.lower() in shown.lower(), f"{fragment!r} not in {shown!r}"
    return detail


def ask(client: httpx.Client, query: str, method: str = "get", **params: Any) -> httpx.Response:
    """A SPARQL request: ``get`` (?query=), ``form`` (POST form) or ``direct`` (POST application/sparql-query)."""
    headers = params.pop("headers", {})
    if method == "get":
        return client.get("/sparql", params={"query": query, **params}, headers=headers)
    if method == "form":
        return client.post("/sparql", data={"query": query, **params}, headers=headers)
    assert method == "direct"
    return client.post("/sparql", params=params, content=query.encode("utf-8"),
                       headers={"Content-Type": "application/sparql-query", **headers})


def bindings(response: httpx.Response) -> list[dict[str, str]]:
    """A SPARQL JSON answer as rows of plain values."""
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].split(";")[0] == JSON_MIME
    body = json.loads(response.content)
    return [{name: term["value"] for name, term in row.items()} for row in body["results"]["bindings"]]


def number(client: httpx.Client, query: str, **params: Any) -> int:
    rows = bindings(ask(client, query, headers={"Accept": JSON_MIME}, **params))
    assert len(rows) == 1, rows
    return int(next(iter(rows[0].values())))


def quads(client: httpx.Client) -> int:
    return number(client, QUAD_COUNT)


def solutions(body: bytes, mime: str) -> list[dict[str, str]]:
    """Rows of plain values: parsed by pyoxigraph, except CSV (lossy: pyoxigraph refuses it) by ``csv``."""
    if mime == CSV_MIME:
        return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    parsed = ox.parse_query_results(body, format=RESULT_FORMATS[mime])
    assert isinstance(parsed, ox.QuerySolutions)
    names = [v.value for v in parsed.variables]
    return [{n: s[n].value for n in names if s[n] is not None} for s in parsed]


def graph(body: bytes, mime: str) -> set[ox.Triple]:
    return {quad.triple for quad in ox.parse(body, format=RDF_FORMATS[mime])}


# --- the server starts, describes itself and serves its documentation ---------------------------------------


@pytest.mark.parametrize(("path", "params"), [
    ("/", {}), ("/health", {}), ("/api/entities", {"q": "b12"}), ("/api/paths", {"source": "anemia",
                                                                               "target": "joint pain"}),
    ("/entity/arthralgia", {}), ("/sparql", {"query": "ASK { ?s ?p ?o }"}), ("/sparql", {}),
    ("/static/explorer.js", {}), ("/openapi.json", {}),
])
def test_head_gets_the_headers_of_get_and_no_body(client: httpx.Client, path: str, params: dict[str, str]) -> None:
    """What monitors and `curl -I` send: every GET resource answers HEAD too (RFC 9110), without its body."""
    get = client.get(path, params=params)
    head = client.head(path, params=params)
    assert get.status_code == head.status_code == 200, (get.status_code, head.status_code, head.text)
    assert head.content == b""
    for name in ("content-type", "content-length", "content-security-policy", "x-content-type-options"):
        assert head.headers.get(name) == get.headers.get(name), name
    assert int(head.headers["content-length"]) == len(get.content)


def test_head_of_a_missing_page_is_404_like_get(client: httpx.Client) -> None:
    assert client.head("/api/entities/no-such-thing").status_code == client.get(
        "/api/entities/no-such-thing").status_code == 404
    assert client.head("/nowhere").status_code == 404


def test_health_names_the_four_graphs_and_the_build_counts(client: httpx.Client, report: dict[str, Any]) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["store"] == "embedded"
    assert body["graphs"] == GRAPHS
    assert (body["entities"], body["claims"]) == (report["entities"], report["claims"])
    assert quads(client) == report["triples"]


def test_openapi_and_docs(client: httpx.Client) -> None:
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in ("/sparql", "/api/entities", "/api/entities/{entity_id}", "/api/paths", "/api/explain",
                 "/api/references", "/api/quality", "/health"):
        assert path in paths, sorted(paths)
    assert {"get", "post"} <= set(paths["/sparql"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text


@pytest.mark.parametrize("accept", [None, TURTLE_MIME, NT_MIME, JSONLD_MIME, RDFXML_MIME, "*/*"])
def test_service_description_lists_the_four_graphs(client: httpx.Client, server: Server, accept: str | None) -> None:
    response = client.get("/sparql", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200, response.text
    mime = response.headers["content-type"].split(";")[0]
    assert mime == (accept if accept and accept != "*/*" else TURTLE_MIME)
    triples = graph(response.content, mime)
    names = {t.object.value for t in triples if t.predicate.value == SD + "name"}
    assert sorted(names) == GRAPHS
    endpoint = {t.object.value for t in triples if t.predicate.value == SD + "endpoint"}
    assert endpoint == {f"{server.base}/sparql"}
    services = {t.subject for t in triples if t.predicate.value.endswith("#type") and t.object.value == SD + "Service"}
    assert len(services) == 1
    objects = {t.object.value for t in triples if t.subject in services}
    assert SD + "SPARQL11Query" in objects and SD + "UnionDefaultGraph" in objects
    formats = {t.object.value.rsplit("/", 1)[-1] for t in triples if t.predicate.value == SD + "resultFormat"}
    assert {"SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV", "Turtle",
            "N-Triples", "JSON-LD", "RDF_XML"} <= formats


def test_service_description_cannot_be_sparql_results(client: httpx.Client) -> None:
    error(client.get("/sparql", headers={"Accept": JSON_MIME}), 406)


def test_cors_on_requests_and_preflight(client: httpx.Client) -> None:
    origin = "https://client.example.org"
    for response in (ask(client, "ASK { ?s ?p ?o }", headers={"Origin": origin}),
                     client.get("/api/paths", params={"source": "anemia", "target": "joint pain"},
                                headers={"Origin": origin}),
                     client.get("/health", headers={"Origin": origin})):
        assert response.status_code == 200
        assert response.headers.get("access-control-allow-origin") in ("*", origin), response.headers
    for path in ("/sparql", "/api/paths"):
        preflight = client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code in (200, 204), preflight.text
        assert preflight.headers.get("access-control-allow-origin") in ("*", origin), preflight.headers
        assert "POST" in preflight.headers.get("access-control-allow-methods", "")
        assert "content-type" in preflight.headers.get("access-control-allow-headers", "").lower()


# --- the SPARQL 1.1 Protocol -----------------------------------------------------------------------------


def test_get_form_post_and_direct_post_give_the_same_answer(client: httpx.Client) -> None:
    answers = [ask(client, LABELS, method, headers={"Accept": JSON_MIME}) for method in ("get", "form", "direct")]
    rows = bindings(answers[0])
    assert answers[1].content == answers[2].content == answers[0].content
    labels = {row["label"] for row in rows}
    assert {"joint pain", "muscle cramping"} <= labels, labels
    assert all(row["entity"].startswith(ENT) for row in rows)


def test_default_graph_is_the_union_of_all_graphs(client: httpx.Client, report: dict[str, Any]) -> None:
    per_graph = {g: number(client, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} }}") for g in GRAPHS}
    assert all(per_graph.values()), per_graph
    assert sum(per_graph.values()) == report["triples"]
    union = number(client, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")
    assert union == number(client, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", **{"default-graph-uri": GRAPHS})
    assert union >= max(per_graph.values())
    # a triple of every graph is visible without naming any graph
    for g in GRAPHS:
        sample = ask(client, f"SELECT ?s ?p ?o WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} }} LIMIT 1",
                     headers={"Accept": JSON_MIME})
        [row] = json.loads(sample.content)["results"]["bindings"]
        terms = " ".join(term(row[v]) for v in ("s", "p", "o"))
        response = ask(client, f"ASK {{ {terms} }}", headers={"Accept": JSON_MIME})
        assert response.status_code == 200 and response.json()["boolean"] is True, (g, terms, response.text)


def term(binding: dict[str, str]) -> str:
    """A SPARQL JSON binding written back as a SPARQL term (IRIs and literals; blank nodes as variables)."""
    if binding["type"] == "uri":
        return f"<{binding['value']}>"
    if binding["type"] == "bnode":
        return f"?b{abs(hash(binding['value']))}"
    text = json.dumps(binding["value"])
    if "xml:lang" in binding:
        return f"{text}@{binding['xml:lang']}"
    return f"{text}^^<{binding['datatype']}>" if "datatype" in binding else text


def test_default_graph_uri_restricts_the_default_graph(client: httpx.Client) -> None:
    claims = "SELECT (COUNT(*) AS ?n) WHERE { ?c a akg:Claim }"
    everywhere = number(client, claims)
    assert everywhere > 0
    assert number(client, claims, **{"default-graph-uri": ENTITIES}) == 0  # claims live in the claims graph
    assert number(client, claims, **{"default-graph-uri": CLAIMS}) == everywhere
    assert number(client, claims, **{"default-graph-uri": [ENTITIES, CLAIMS]}) == everywhere
    for g in GRAPHS:
        alone = number(client, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", **{"default-graph-uri": g})
        assert alone == number(client, f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{g}> {{ ?s ?p ?o }} }}")
    # the same through a POST form
    response = ask(client, claims, "form", headers={"Accept": JSON_MIME}, **{"default-graph-uri": ENTITIES})
    assert bindings(response) == [{"n": "0"}]


def test_named_graph_uri_with_graph(client: httpx.Client) -> None:
    which = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY ?g"
    assert [row["g"] for row in bindings(ask(client, which, headers={"Accept": JSON_MIME}))] == GRAPHS
    only = ask(client, which, headers={"Accept": JSON_MIME}, **{"named-graph-uri": CLAIMS})
    assert bindings(only) == [{"g": CLAIMS}]
    two = ask(client, which, "form", headers={"Accept": JSON_MIME}, **{"named-graph-uri": [ENTITIES, ONTOLOGY]})
    assert [row["g"] for row in bindings(two)] == [ENTITIES, ONTOLOGY]
    none = ask(client, f"ASK {{ GRAPH <{CLAIMS}> {{ ?s ?p ?o }} }}", headers={"Accept": JSON_MIME},
               **{"named-graph-uri": ENTITIES})
    assert none.json()["boolean"] is False


@pytest.mark.parametrize("param", ["default-graph-uri", "named-graph-uri"])
@pytest.mark.parametrize("value", ["http://example.org/not-here", "loopback", "not an iri", GRAPH + "claims2"])
def test_graphs_outside_the_dataset_are_400_and_never_fetched(client: httpx.Client, listener: Listener, param: str,
                                                              value: str) -> None:
    uri = f"{listener.url}/graph.ttl" if value == "loopback" else value
    for method in ("get", "form"):
        error(ask(client, "SELECT * WHERE { ?s ?p ?o } LIMIT 1", method, **{param: uri}), 400, param)
    assert listener.connections() == 0


def test_from_a_url_in_the_query_is_never_fetched(client: httpx.Client, listener: Listener) -> None:
    response = ask(client, f"SELECT * FROM <{listener.url}/data.ttl> WHERE {{ ?s ?p ?o }}",
                   headers={"Accept": JSON_MIME})
    assert response.status_code in (200, 400, 403), response.text
    if response.status_code == 200:
        assert bindings(response) == []  # a graph the dataset does not have is empty
    assert listener.connections() == 0


@pytest.mark.parametrize(("accept", "fmt"), [(JSON_MIME, None), (XML_MIME, None), (CSV_MIME, None), (TSV_MIME, None),
                                             (None, "json"), (None, "xml"), (None, "csv"), (None, "tsv"),
                                             (None, JSON_MIME), (None, TSV_MIME)])
def test_select_in_every_result_format(client: httpx.Client, accept: str | None, fmt: str | None) -> None:
    expected = bindings(ask(client, LABELS, headers={"Accept": JSON_MIME}))
    params = {"format": fmt} if fmt else {}
    response = ask(client, LABELS, headers={"Accept": accept} if accept else {}, **params)
    assert response.status_code == 200, response.text
    mime = response.headers["content-type"].split(";")[0]
    wanted = accept or {"json": JSON_MIME, "xml": XML_MIME, "csv": CSV_MIME, "tsv": TSV_MIME}.get(fmt or "", fmt)
    assert mime == wanted
    assert solutions(response.content, mime) == expected
    text = response.content.decode("utf-8")
    if mime == JSON_MIME:
        body = json.loads(text)
        assert body["head"]["vars"] == ["entity", "label"]
    elif mime == XML_MIME:
        root = ET.fromstring(response.content)
        assert [v.get("name") for v in root.iter(RESULTS_NS + "variable")] == ["entity", "label"]
        literals = [el.text for el in root.iter(RESULTS_NS + "literal")]
        assert literals == [row["label"] for row in expected]
    elif mime == CSV_MIME:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        assert rows == expected  # CSV: plain values, header without '?'
    else:
        rows = [line.split("\t") for line in text.splitlines()]  # TSV: terms in Turtle syntax, never quoted
        assert rows[0] == ["?entity", "?label"]
        assert [r[0] for r in rows[1:]] == [f"<{row['entity']}>" for row in expected]
        assert [r[1] for r in rows[1:]] == [json.dumps(row["label"]) for row in expected]


@pytest.mark.parametrize("accept", [JSON_MIME, XML_MIME, CSV_MIME, TSV_MIME])
def test_ask_in_every_result_format(client: httpx.Client, accept: str) -> None:
    for query, expected in ((f"ASK {{ {JOINT_PAIN} rdfs:label 'joint pain' }}", True),
                            (f"ASK {{ {JOINT_PAIN} rdfs:label 'no such label' }}", False)):
        response = ask(client, query, headers={"Accept": accept})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0] == accept
        if accept in (JSON_MIME, XML_MIME):
            parsed = ox.parse_query_results(response.content, format=RESULT_FORMATS[accept])
            assert isinstance(parsed, ox.QueryBoolean) and bool(parsed) is expected
        if accept == JSON_MIME:
            assert json.loads(response.content)["boolean"] is expected
        elif accept == XML_MIME:
            element = ET.fromstring(response.content).find(RESULTS_NS + "boolean")
            assert element is not None and element.text == str(expected).lower()
        else:
            assert str(expected).lower() in response.text.lower()


@pytest.mark.parametrize("mime", [TURTLE_MIME, NT_MIME, JSONLD_MIME, RDFXML_MIME])
@pytest.mark.parametrize("how", ["accept", "format"])
def test_construct_and_describe_in_every_rdf_format(client: httpx.Client, mime: str, how: str) -> None:
    names = {TURTLE_MIME: "turtle", NT_MIME: "ntriples", JSONLD_MIME: "jsonld", RDFXML_MIME: "rdfxml"}
    reference = ask(client, TRIPLES_OF_JOINT_PAIN, headers={"Accept": NT_MIME})
    expected = graph(reference.content, NT_MIME)
    assert len(expected) >= 5  # type, label, synonyms, cross-references
    assert ox.Triple(ox.NamedNode(ENT + "joint_pain"), ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label"),
                     ox.Literal("joint pain")) in expected
    choose: dict[str, Any] = {"headers": {"Accept": mime}} if how == "accept" else {"format": names[mime]}
    for query in (TRIPLES_OF_JOINT_PAIN, f"DESCRIBE {JOINT_PAIN}"):
        response = ask(client, query, **choose)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0] == mime
        parsed = graph(response.content, mime)
        if query == TRIPLES_OF_JOINT_PAIN:
            assert parsed == expected
        else:
            assert expected <= parsed  # DESCRIBE: at least the entity's own triples
    if mime == JSONLD_MIME:
        assert isinstance(json.loads(response.content), list | dict)
    if mime == RDFXML_MIME:
        assert ET.fromstring(response.content).tag == "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF"


@pytest.mark.parametrize(("query", "accept", "expected"), [
    (LABELS, "application/sparql-results+json;q=0.9, */*;q=0.1", JSON_MIME),
    (LABELS, "text/csv;q=0.5, application/sparql-results+xml", XML_MIME),
    (LABELS, "text/csv, application/sparql-results+json;q=0.5", CSV_MIME),
    (LABELS, "text/tab-separated-values;q=0.8, text/csv;q=0.7, */*;q=0.1", TSV_MIME),
    (LABELS, "application/sparql-results+xml;q=0.2, application/json;q=0.6", JSON_MIME),
    (LABELS, "text/*", CSV_MIME),
    (LABELS, "*/*", JSON_MIME),
    (TRIPLES_OF_JOINT_PAIN, "application/n-triples;q=0.2, text/turtle;q=0.8", TURTLE_MIME),
    (TRIPLES_OF_JOINT_PAIN, "application/rdf+xml, application/ld+json;q=0.5", RDFXML_MIME),
    (TRIPLES_OF_JOINT_PAIN, "application/sparql-results+json, application/ld+json;q=0.3", JSONLD_MIME),
    (TRIPLES_OF_JOINT_PAIN, "*/*", TURTLE_MIME),
])
def test_combined_and_weighted_accept_headers(client: httpx.Client, query: str, accept: str, expected: str) -> None:
    response = ask(client, query, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    mime = response.headers["content-type"].split(";")[0]
    assert mime == expected
    if mime in RESULT_FORMATS:
        assert solutions(response.content, mime)
    else:
        assert graph(response.content, mime)


@pytest.mark.parametrize(("query", "accept"), [
    (LABELS, "image/png"),
    (LABELS, "text/turtle"),
    (LABELS, "text/csv;q=0"),
    (LABELS, "application/sparql-results+json;q=0, application/sparql-results+xml;q=0, text/*;q=0"),
    (TRIPLES_OF_JOINT_PAIN, JSON_MIME),
    (TRIPLES_OF_JOINT_PAIN, "text/csv, application/sparql-results+xml"),
])
def test_unacceptable_accept_is_406(client: httpx.Client, query: str, accept: str) -> None:
    error(ask(client, query, headers={"Accept": accept}), 406)


def test_format_parameter_overrides_accept_and_bad_formats_are_400(client: httpx.Client) -> None:
    response = ask(client, LABELS, headers={"Accept": JSON_MIME}, format="csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith(CSV_MIME)
    error(ask(client, LABELS, format="bogus"), 400, "bogus")
    error(ask(client, LABELS, format="turtle"), 400)  # a graph format for a SELECT


@pytest.mark.parametrize("method", ["get", "form", "direct"])
@pytest.mark.parametrize("query", ["SELECT * WHERE { ?s ?p ", "SELECT ?x WHERE { ?x ?p }", "SELEKT * { ?s ?p ?o }"])
def test_malformed_query_is_400_with_the_parsers_position(client: httpx.Client, method: str, query: str) -> None:
    detail = error(ask(client, query, method), 400)
    assert re.search(r"\b1:\d+", detail), detail  # line 1, some column


@pytest.mark.parametrize("method", ["get", "form", "direct"])
def test_an_unknown_prefix_is_named(client: httpx.Client, method: str) -> None:
    detail = error(ask(client, "SELECT * WHERE { ?s foo:bar ?o }", method), 400)
    assert detail.startswith("error at 1:28: unknown prefix 'foo:'; declare it (PREFIX foo: <...>) or use a "
                             "predeclared one: akg, akgg, ann, biolink, claim, dcterms, ent,"), detail


def test_protocol_errors(client: httpx.Client, server: Server) -> None:
    error(client.post("/sparql", content=b"SELECT * { ?s ?p ?o } LIMIT 1", headers={"Content-Type": "text/plain"}),
          415)
    error(client.get("/sparql", params=[("query", "ASK {}"), ("query", "ASK {}")]), 400, "query")
    huge = "SELECT * WHERE { ?s ?p ?o } # " + "x" * 200_000
    error(ask(client, huge, "direct"), 413, "max_query_bytes")
    error(ask(client, huge, "form"), 413, "max_query_bytes")
    error(client.get("/sparql", params={"query": ""}), 400)
    error(client.put("/sparql", content=b"ASK {}"), 405)
    error(client.get("/no-such-page"), 404)


# --- read-only ----------------------------------------------------------------------------------------------

UPDATES = [
    f'INSERT DATA {{ GRAPH <{CLAIMS}> {{ <{PROBE}> <http://example.org/p> "x" }} }}',
    f'insert data {{ graph <{CLAIMS}> {{ <{PROBE}> <http://example.org/p> "x" }} }}',
    f'PREFIX ex: <http://example.org/> INSERT DATA {{ GRAPH <{CLAIMS}> {{ <{PROBE}> ex:p "x" }} }}',
    f'INSERT DATA {{ <{PROBE}> <http://example.org/p> "x" }}',
    f"INSERT {{ GRAPH <{CLAIMS}> {{ <{PROBE}> ?p ?o }} }} WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
    "DELETE WHERE { GRAPH ?g { ?s ?p ?o } }",
    "DELETE { GRAPH ?g { ?s ?p ?o } } WHERE { GRAPH ?g { ?s ?p ?o } }",
    f"WITH <{CLAIMS}> DELETE {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o }}",
    f"DELETE DATA {{ GRAPH <{ENTITIES}> {{ {JOINT_PAIN} <{RDFS_LABEL}> 'joint pain' }} }}",
    "LOAD <{listener}/data.ttl>",
    "LOAD SILENT <{listener}/data.ttl> INTO GRAPH <" + CLAIMS + ">",
    "CLEAR ALL", f"CLEAR GRAPH <{CLAIMS}>", "CLEAR DEFAULT", "DROP ALL", f"DROP GRAPH <{ENTITIES}>",
    "drop silent named", "CREATE GRAPH <http://example.org/new>", f"COPY <{CLAIMS}> TO <{ENTITIES}>",
    f"MOVE <{CLAIMS}> TO <{ENTITIES}>", f"ADD <{CLAIMS}> TO <http://example.org/copy>",
    f'PREFIX ex: <http://example.org/> INSERT DATA {{ GRAPH <{CLAIMS}> {{ <{PROBE}> ex:p "x" }} }} ; DROP ALL',
    "# a comment first\nDROP ALL",
]


def assert_unchanged(client: httpx.Client, report: dict[str, Any], listener: Listener) -> None:
    for _ in range(2):  # more than one request, so that more than one query worker is asked
        assert quads(client) == report["triples"]
    probe = ask(client, f"ASK {{ {{ <{PROBE}> ?p ?o }} UNION {{ GRAPH ?g {{ <{PROBE}> ?p ?o }} }} }}",
                headers={"Accept": JSON_MIME})
    assert probe.json()["boolean"] is False
    assert client.get("/health").json()["graphs"] == GRAPHS
    assert listener.connections() == 0  # LOAD fetched nothing


@pytest.mark.parametrize("method", ["get", "form", "direct"])
@pytest.mark.parametrize("update", UPDATES)
def test_updates_as_a_query_are_refused_and_never_run(client: httpx.Client, report: dict[str, Any],
                                                      listener: Listener, method: str, update: str) -> None:
    text = update.replace("{listener}", listener.url)
    error(ask(client, text, method), {400, 403})
    assert_unchanged(client, report, listener)


@pytest.mark.parametrize("update", [UPDATES[0], "DROP ALL", "LOAD <{listener}/data.ttl>"])
def test_the_update_operation_is_refused_and_never_runs(client: httpx.Client, report: dict[str, Any],
                                                        listener: Listener, update: str) -> None:
    text = update.replace("{listener}", listener.url)
    for response in (client.get("/sparql", params={"update": text}),
                     client.post("/sparql", data={"update": text}),
                     client.post("/sparql", content=text.encode(),
                                 headers={"Content-Type": "application/sparql-update"}),
                     client.post("/sparql", data={"query": "ASK {}", "update": text})):
        error(response, {400, 403})
    assert_unchanged(client, report, listener)


# --- SERVICE: refused before evaluation, and the server never connects out ------------------------------------

SERVICES = [
    "SELECT * WHERE {{ SERVICE <{url}/sparql> {{ ?s ?p ?o }} }}",
    "select * where {{ service <{url}/sparql> {{ ?s ?p ?o }} }}",
    "SELECT * WHERE {{ SeRvIcE <{url}/sparql> {{ ?s ?p ?o }} }}",
    "SELECT * WHERE {{ SERVICE SILENT <{url}/sparql> {{ ?s ?p ?o }} }}",
    "SELECT * WHERE {{ {{ SELECT ?s WHERE {{ SERVICE <{url}/sparql> {{ ?s ?p ?o }} }} }} }}",
    "SELECT * WHERE {{ ?c a akg:Claim OPTIONAL {{ SERVICE <{url}/sparql> {{ ?c ?p ?o }} }} }} LIMIT 3",
    "SELECT * WHERE {{ ?c a akg:Claim OPTIONAL {{ SERVICE SILENT <{url}/sparql> {{ ?c ?p ?o }} }} }} LIMIT 3",
    "SELECT * WHERE {{ ?c a akg:Claim . FILTER EXISTS {{ SERVICE <{url}/sparql> {{ ?c ?p ?o }} }} }}",
    "SELECT * WHERE {{ {{ ?s ?p ?o }} UNION {{ SERVICE <{url}/sparql> {{ ?s ?p ?o }} }} }} LIMIT 1",
    "PREFIX remote: <{url}/> SELECT * WHERE {{ SERVICE remote:sparql {{ ?s ?p ?o }} }}",
    "SELECT * WHERE {{ VALUES ?where {{ <{url}/sparql> }} SERVICE ?where {{ ?s ?p ?o }} }}",
    "SELECT * WHERE {{\n  SERVICE # a comment\n  <{url}/sparql> {{ ?s ?p ?o }}\n}}",
    "ASK {{ SERVICE <{url}/sparql> {{ ?s ?p ?o }} }}",
    "CONSTRUCT {{ ?s ?p ?o }} WHERE {{ SERVICE <{url}/sparql> {{ ?s ?p ?o }} }}",
    "DESCRIBE ?s WHERE {{ SERVICE <{url}/sparql> {{ ?s ?p ?o }} }}",
]


@pytest.mark.parametrize("method", ["get", "form", "direct"])
@pytest.mark.parametrize("template", SERVICES)
def test_service_is_refused_and_nothing_connects_out(client: httpx.Client, listener: Listener, method: str,
                                                     template: str) -> None:
    query = template.format(url=listener.url)
    error(ask(client, query, method), 403, "SERVICE")
    assert listener.connections() == 0
    assert ask(client, "ASK { ?s ?p ?o }", headers={"Accept": JSON_MIME}).json()["boolean"] is True


# --- bounded work: the query timeout and the row cap ----------------------------------------------------------


def test_a_heavy_query_times_out_with_503_and_the_server_stays_responsive(server: Server) -> None:
    outcome: dict[str, Any] = {}

    def heavy() -> None:
        started = time.monotonic()
        try:
            with httpx.Client(base_url=server.base, timeout=60) as own:
                outcome["response"] = own.get("/sparql", params={"query": HEAVY}, headers={"Accept": JSON_MIME})
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=heavy, daemon=True)
    with httpx.Client(base_url=server.base, timeout=30) as client:
        thread.start()
        time.sleep(0.3)  # the heavy query is now running in a worker
        assert thread.is_alive(), outcome
        for request in (lambda: client.get("/health"),
                        lambda: ask(client, f"ASK {{ {JOINT_PAIN} ?p ?o }}", headers={"Accept": JSON_MIME}),
                        lambda: client.get("/api/paths", params={"source": "anemia", "target": "joint pain"})):
            started = time.monotonic()
            response = request()
            assert response.status_code == 200, response.text
            assert time.monotonic() - started < QUICK
        thread.join(60)
        assert not thread.is_alive(), "the heavy query was never answered"
        assert "error" not in outcome, outcome
        detail = error(outcome["response"], 503)
        assert re.search(r"\b1(\.0+)? ?s(econds?)?\b", detail), detail  # names the limit
        assert outcome["seconds"] < 1 + 10  # stopped at the limit, not when the work ended
        # afterwards: queries still work, one after the other and two at a time
        for _ in range(4):
            assert bindings(ask(client, LABELS, headers={"Accept": JSON_MIME}))
        both: list[httpx.Response] = []
        pair = [threading.Thread(target=lambda: both.append(
            httpx.get(f"{server.base}/sparql", params={"query": LABELS}, headers={"Accept": JSON_MIME}, timeout=30)))
            for _ in range(2)]
        for t in pair:
            t.start()
        for t in pair:
            t.join(30)
        assert [r.status_code for r in both] == [200, 200], [r.text for r in both]


def test_row_cap(capped_server: Server) -> None:
    with httpx.Client(base_url=capped_server.base, timeout=30) as client:
        for accept in (JSON_MIME, CSV_MIME):
            error(ask(client, "SELECT * WHERE { ?s ?p ?o }", headers={"Accept": accept}), {413, 422}, "50", "LIMIT")
        error(ask(client, "CONSTRUCT WHERE { ?s ?p ?o }", headers={"Accept": TURTLE_MIME}), {413, 422}, "50")
        assert len(bindings(ask(client, "SELECT * WHERE { ?s ?p ?o } LIMIT 10", headers={"Accept": JSON_MIME}))) == 10
        assert len(bindings(ask(client, "SELECT * WHERE { ?s ?p ?o } LIMIT 50", headers={"Accept": JSON_MIME}))) == 50
        limited = ask(client, "CONSTRUCT WHERE { ?s ?p ?o } LIMIT 10", headers={"Accept": NT_MIME})
        assert len(graph(limited.content, NT_MIME)) == 10
        # the API's own reads are not capped: the path answers are the same as on the uncapped server
        paths = client.get("/api/paths", params={"source": "anemia", "target": "joint pain"})
        assert paths.status_code == 200 and paths.json()["paths"]


# --- standard clients ----------------------------------------------------------------------------------------


def wrapper(server: Server, query: str, fmt: str | None = None) -> SPARQLWrapper:
    sparql = SPARQLWrapper(f"{server.base}/sparql")
    sparql.setQuery(query)
    if fmt is not None:
        sparql.setReturnFormat(fmt)
    sparql.setTimeout(30)
    return sparql


def expected_labels(server: Server) -> list[dict[str, str]]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        return bindings(ask(client, LABELS, headers={"Accept": JSON_MIME}))


@pytest.mark.parametrize("fmt", [JSON, XML, CSV])
def test_sparqlwrapper_select(server: Server, fmt: str) -> None:
    expected = expected_labels(server)
    result = wrapper(server, LABELS, fmt).query()
    converted = result.convert()
    if fmt == JSON:
        rows = [{k: v["value"] for k, v in row.items()} for row in converted["results"]["bindings"]]
    elif fmt == XML:
        rows = [{b.getAttribute("name"): b.firstChild.firstChild.data for b in r.getElementsByTagName("binding")}
                for r in converted.getElementsByTagName("result")]
    else:
        rows = list(csv.DictReader(io.StringIO(converted.decode("utf-8"), newline="")))
    assert rows == expected


def test_sparqlwrapper_select_tsv(server: Server) -> None:
    """SPARQLWrapper asks for TSV with ``format=tsv&format=text/tab-separated-values`` (and the same for
    ``output`` and ``results``) and ``Accept: text/tab-separated-values``."""
    converted = wrapper(server, LABELS, TSV).query().convert()
    rows = [line.split("\t") for line in converted.decode("utf-8").splitlines()]
    assert rows[0] == ["?entity", "?label"]
    assert [json.loads(r[1]) for r in rows[1:]] == [row["label"] for row in expected_labels(server)]


@pytest.mark.parametrize(("method", "request_method"), [(POST, URLENCODED), (POST, POSTDIRECTLY)])
def test_sparqlwrapper_post(server: Server, method: str, request_method: str) -> None:
    sparql = wrapper(server, LABELS, JSON)
    sparql.setMethod(method)
    sparql.setRequestMethod(request_method)
    rows = [{k: v["value"] for k, v in row.items()} for row in sparql.query().convert()["results"]["bindings"]]
    assert rows == expected_labels(server)


def test_sparqlwrapper_ask_and_errors(server: Server) -> None:
    assert wrapper(server, f"ASK {{ {JOINT_PAIN} ?p ?o }}", JSON).query().convert()["boolean"] is True
    with pytest.raises(QueryBadFormed, match="1:"):
        wrapper(server, "SELECT * WHERE { ?s ?p ", JSON).query()


def joint_pain_triples(server: Server) -> set[ox.Triple]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        return graph(ask(client, TRIPLES_OF_JOINT_PAIN, headers={"Accept": NT_MIME}).content, NT_MIME)


def as_oxigraph(g: rdflib.Graph) -> set[ox.Triple]:
    return graph(g.serialize(format="nt", encoding="utf-8"), NT_MIME)


def test_sparqlwrapper_construct_turtle(server: Server) -> None:
    converted = wrapper(server, TRIPLES_OF_JOINT_PAIN, TURTLE).query().convert()
    assert graph(converted, TURTLE_MIME) == joint_pain_triples(server)


@pytest.mark.parametrize("fmt", [None, RDFXML, JSONLD])
def test_sparqlwrapper_construct_other_formats(server: Server, fmt: str | None) -> None:
    """None is SPARQLWrapper's default, XML (RDF/XML for a graph), for which it sends ``format=xml``
    and two ``format`` values (``rdf+xml`` and ``application/rdf+xml``; ``json-ld`` and
    ``application/ld+json,application/x-json+ld``) for RDFXML and JSONLD, each with the right Accept header."""
    result = wrapper(server, TRIPLES_OF_JOINT_PAIN, fmt).query()
    converted = result.convert()
    triples = as_oxigraph(converted) if isinstance(converted, rdflib.Graph) else graph(converted, JSONLD_MIME)
    assert triples == joint_pain_triples(server)


@pytest.mark.parametrize("method", ["GET", "POST", "POST_FORM"])
def test_rdflib_sparqlstore(server: Server, report: dict[str, Any], listener: Listener, method: str) -> None:
    store = SPARQLStore(query_endpoint=f"{server.base}/sparql", method=method)
    expected = expected_labels(server)
    g = rdflib.Graph(store)
    rows = [{"entity": str(r[0]), "label": str(r[1])} for r in g.query(LABELS)]
    assert rows == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        conjunctive = rdflib.ConjunctiveGraph(store)
    assert [{"entity": str(r[0]), "label": str(r[1])} for r in conjunctive.query(LABELS)] == expected
    subject = rdflib.URIRef(ENT + "joint_pain")
    label = rdflib.URIRef("http://www.w3.org/2000/01/rdf-schema#label")
    assert (subject, label, rdflib.Literal("joint pain")) in conjunctive
    assert set(conjunctive.objects(subject, label)) == {rdflib.Literal("joint pain")}
    assert len(list(conjunctive.triples((subject, None, None)))) == len(joint_pain_triples(server))
    constructed = conjunctive.query(TRIPLES_OF_JOINT_PAIN).graph
    assert as_oxigraph(constructed) == joint_pain_triples(server)
    assert conjunctive.query(f"ASK {{ {JOINT_PAIN} ?p ?o }}").askAnswer is True
    assert len(conjunctive) == report["triples"]
    # a graph named by the client is sent as default-graph-uri: the entities graph holds no claims
    entities = rdflib.Graph(store, identifier=rdflib.URIRef(ENTITIES))
    claims = "SELECT (COUNT(*) AS ?n) WHERE { ?c a <https://w3id.org/anemia-kg/ontology#Claim> }"
    assert [int(r[0]) for r in entities.query(claims)] == [0]
    assert [int(r[0]) for r in rdflib.Graph(store, identifier=rdflib.URIRef(CLAIMS)).query(claims)] == [
        report["claims"]]
    assert len(list(entities.triples((subject, label, None)))) == 1
    # SERVICE refused: rdflib raises for GET and, for POST, returns (status, message, None) as the "result"
    try:
        outcome: Any = list(g.query(f"SELECT * WHERE {{ SERVICE <{listener.url}/sparql> {{ ?s ?p ?o }} }}"))
    except Exception as exc:  # noqa: BLE001 - whatever rdflib makes of the 403
        outcome = exc
    assert isinstance(outcome, Exception) or 403 in outcome, outcome
    assert listener.connections() == 0


# --- the JSON API ---------------------------------------------------------------------------------------------


def api(client: httpx.Client, path: str, status: int = 200, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].split(";")[0] == "application/json"
    return response.json()


def test_entity_search(client: httpx.Client) -> None:
    body = api(client, "/api/entities", q="cramps")
    assert body["results"], body
    first = body["results"][0]
    assert set(first) == {"id", "label", "type", "synonyms", "xrefs", "score"}
    assert first["id"] == "muscle_cramping" and first["type"] == "Symptom"
    assert "muscle cramps" in first["synonyms"]
    assert all(set(x) >= {"id", "match"} for x in first["xrefs"])
    scores = [hit["score"] for hit in body["results"]]
    assert scores == sorted(scores, reverse=True)
    exact = api(client, "/api/entities", q="HP:0002829")["results"][0]
    assert (exact["id"], exact["score"]) == ("joint_pain", 1.0)
    assert len(api(client, "/api/entities", q="", limit=3)["results"]) == 3
    symptoms = api(client, "/api/entities", type="Symptom", limit=100)["results"]
    ids = {hit["id"] for hit in symptoms}
    assert {"joint_pain", "muscle_cramping"} <= ids and "peripheral_neuropathy" not in ids
    assert "vitamin_b12_deficiency" not in ids


@pytest.mark.parametrize("params", [{"type": "NoSuchClass"}, {"limit": "0"}, {"limit": "1000"}, {"limit": "ten"},
                                    {"q": "x" * 500}])
def test_entity_search_bad_parameters_are_422(client: httpx.Client, params: dict[str, str]) -> None:
    error(client.get("/api/entities", params=params), 422, next(iter(params)))


@pytest.mark.parametrize(("name", "expected"), [
    ("joint_pain", "joint_pain"), ("ent:joint_pain", "joint_pain"), (ENT + "joint_pain", "joint_pain"),
    ("HP:0002829", "joint_pain"), ("hp:0002829", "joint_pain"),
    ("http://purl.obolibrary.org/obo/HP_0002829", "joint_pain"),
    ("Joint Pain", "joint_pain"), ("ARTHRALGIA", "joint_pain"), ("HP:0009830", "peripheral_neuropathy"),
    ("Peripheral Neuropathy", "peripheral_neuropathy"), ("muscle cramps", "muscle_cramping"),
    ("B12 deficiency", "vitamin_b12_deficiency"), ("vitamin B12 deficiency", "vitamin_b12_deficiency"),
])
@pytest.mark.parametrize("encode", [True, False])
def test_entity_by_any_name(client: httpx.Client, name: str, expected: str, encode: bool) -> None:
    path = "/api/entities/" + (quote(name, safe="") if encode else quote(name, safe=":/"))
    body = api(client, path)
    assert set(body) == {"entity", "relations"}
    entity = body["entity"]
    assert set(entity) == {"id", "label", "type", "synonyms", "xrefs", "definition"}
    assert entity["id"] == expected
    assert entity["definition"] is None  # the article defines nothing; nothing is invented
    assert body["relations"]
    for relation in body["relations"]:
        assert relation["predicate"].split(":")[0] in ("akg", "skos")
        assert relation["direction"] in ("in", "out")
        assert set(relation["other"]) == {"id", "label", "type"}
        for evidence in relation["evidence"]:
            assert evidence["quote"] and set(evidence) >= {"quote", "section", "references"}


def test_unknown_entity_is_404(client: httpx.Client) -> None:
    for path in ("/api/entities/no-such-thing", "/api/entities/HP:0000001"):
        error(client.get(path), 404, "unknown entity")
    error(client.get("/api/paths", params={"source": "no-such-thing", "target": "joint pain"}), 404, "no-such-thing")
    error(client.get("/api/paths", params={"source": "anemia", "target": "no-such-thing"}), 404, "no-such-thing")
    error(client.get("/api/explain", params={"finding": "no-such-thing"}), 404, "no-such-thing")


@pytest.mark.parametrize("params", [
    {"source": "anemia"}, {"target": "joint pain"}, {"source": "", "target": "joint pain"},
    {"source": "anemia", "target": "joint pain", "max_hops": "0"},
    {"source": "anemia", "target": "joint pain", "max_hops": "9"},
    {"source": "anemia", "target": "joint pain", "max_hops": "four"},
    {"source": "anemia", "target": "joint pain", "limit": "0"},
    {"source": "anemia", "target": "joint pain", "limit": "51"},
    {"source": "anemia", "target": "joint pain", "relations": "bogus"},
])
def test_bad_path_parameters_are_422(client: httpx.Client, params: dict[str, str]) -> None:
    error(client.get("/api/paths", params=params), 422)


@pytest.mark.parametrize("params", [{"finding": ""}, {}, {"finding": "joint pain", "max_hops": "0"},
                                    {"finding": "joint pain", "limit": "100"}])
def test_bad_explain_parameters_are_422(client: httpx.Client, params: dict[str, str]) -> None:
    error(client.get("/api/explain", params=params), 422)


# --- the article's questions over HTTP ----------------------------------------------------------------------


def cited_after(article: str, quote_text: str) -> set[int] | None:
    """The citation numbers printed at the end of the article line holding the quote (None: not on one line)."""
    lines = [line for line in article.splitlines() if quote_text in line]
    if len(lines) != 1:
        return None
    found = re.search(r"((?:\d+\s*,\s*)*\d+)\s*$", lines[0].rstrip())
    if not found or not lines[0].rstrip()[: found.start()].endswith(" "):
        return set()
    return {int(n) for n in re.split(r"\s*,\s*", found.group(1).strip())}


def check_path_shape(body: dict[str, Any], source: str, target: str, article: str) -> None:
    """The documented shape, and evidence that is the article's: verbatim quotes, the citations of their line,
    references resolved as the reference list says (7 is not in it)."""
    assert set(body) >= {"source", "target", "paths"}
    assert set(body["source"]) == {"id", "label", "type"} and body["source"]["id"] == source
    assert set(body["target"]) == {"id", "label", "type"} and body["target"]["id"] == target
    assert body["paths"], f"no path from {source} to {target}"
    scores = [p["score"] for p in body["paths"]]
    assert scores == sorted(scores, reverse=True)
    for path in body["paths"]:
        assert set(path) >= {"nodes", "edges", "score"}
        assert 0 < path["score"] <= 1
        nodes = path["nodes"]
        assert nodes[0]["id"] == source and nodes[-1]["id"] == target
        assert all(set(n) == {"id", "label", "type"} for n in nodes)
        assert len(path["edges"]) == len(nodes) - 1
        for edge, u, v in zip(path["edges"], nodes, nodes[1:], strict=False):
            assert set(edge) >= {"source", "target", "predicate", "label", "certainty", "qualifiers", "evidence"}
            assert (edge["source"], edge["target"]) == (u["id"], v["id"])
            assert re.fullmatch(r"(akg|skos):\w+", edge["predicate"]), edge["predicate"]
            if edge["predicate"] == "skos:narrower":  # the hierarchy step: no claim, no evidence
                continue
            assert edge["certainty"] in ("strong", "asserted", "possible")
            assert edge["evidence"], edge
            for evidence in edge["evidence"]:
                assert set(evidence) >= {"quote", "section", "references"}
                assert evidence["quote"] in article, evidence["quote"]
                numbers = [r["number"] for r in evidence["references"]]
                expected = cited_after(article, evidence["quote"])
                if expected is not None:
                    assert set(numbers) == expected, (evidence["quote"], numbers)
                for ref in evidence["references"]:
                    check_reference(ref)


def check_reference(ref: dict[str, Any]) -> None:
    assert set(ref) >= {"number", "title", "year", "kind", "resolved"}
    if ref["number"] in UNRESOLVED:
        assert (ref["resolved"], ref["title"], ref["year"], ref["kind"]) == (False, None, None, None), ref
    else:
        assert ref["resolved"] is True and (ref["title"], ref["year"], ref["kind"]) == REFERENCES[ref["number"]], ref


def paths(client: httpx.Client, source: str, target: str, **params: Any) -> dict[str, Any]:
    return api(client, "/api/paths", source=source, target=target, **params)


def edge(body: dict[str, Any], u: str, v: str) -> dict[str, Any]:
    found = [e for p in body["paths"] for e in p["edges"] if (e["source"], e["target"]) == (u, v)]
    assert found, f"no edge {u} -> {v} in {[[n['id'] for n in p['nodes']] for p in body['paths']]}"
    return found[0]


def chain(path: dict[str, Any]) -> list[str]:
    return [n["id"] for n in path["nodes"]]


def refs(e: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for ev in e["evidence"] for r in ev["references"]]


REF = {n: {"number": n, "title": title, "year": year, "kind": kind, "resolved": True}
       for n, (title, year, kind) in REFERENCES.items()}
OTHER_CAUSES_QUOTE = "Anemia due to other causes (lead toxicity, dapsone toxicity) can also cause peripheral neuropathy"
ANSWER_QUOTE = "anemia can cause or exacerbate muscle cramping, joint pain, and worsen peripheral neuropathy"


def quoted(e: dict[str, Any], text: str) -> dict[str, Any]:
    """The evidence of edge ``e`` whose quote is ``text``."""
    found = [ev for ev in e["evidence"] if ev["quote"] == text]
    assert found, (text, [ev["quote"] for ev in e["evidence"]])
    return found[0]


@pytest.mark.parametrize("source", ["vitamin B12 deficiency", "B12 deficiency", "ent:vitamin_b12_deficiency"])
def test_b12_deficiency_to_muscle_cramps(client: httpx.Client, article: str, source: str) -> None:
    body = paths(client, source, "muscle cramps")
    assert body == paths(client, "vitamin_b12_deficiency", "muscle_cramping")  # any name, the same answer
    check_path_shape(body, "vitamin_b12_deficiency", "muscle_cramping", article)
    assert body["target"]["label"] == "muscle cramping"
    chains = [chain(p) for p in body["paths"]]
    through = [c for c in chains if c[-3:] == ["peripheral_neuropathy", "muscle_denervation", "muscle_cramping"]]
    assert through, chains
    denervation = edge(body, "muscle_denervation", "muscle_cramping")
    assert quoted(denervation, "Results from denervation of muscle fibers")["references"] == [REF[1]]
    motor = edge(body, "peripheral_neuropathy", "muscle_denervation")
    assert quoted(motor, "Motor neurons feeding distal muscles are most affected, leading to increasing "
                         "denervation of muscle fibers")["references"] == [REF[1]]


def test_b12_deficiency_to_joint_pain_through_altered_gait(client: httpx.Client, article: str) -> None:
    body = paths(client, "B12 deficiency", "joint pain")
    check_path_shape(body, "vitamin_b12_deficiency", "joint_pain", article)
    chains = [chain(p) for p in body["paths"]]
    assert any(c[-3:] == ["peripheral_neuropathy", "altered_gait", "joint_pain"] for c in chains), chains
    gait = edge(body, "altered_gait", "joint_pain")
    assert gait["predicate"] == "akg:mayCause"
    assert gait["certainty"] == "possible"
    assert gait["qualifiers"]["hedge"] == "May be secondary to"
    evidence = quoted(gait, "May be secondary to altered gait and biomechanics due to neuropathy")
    assert evidence["references"] == [{"number": 5, "title": "Peripheral Neuropathy", "year": 2025,
                                       "kind": "Guideline", "resolved": True}]
    assert "Joint Pain" in evidence["section"]


def test_b12_deficiency_to_peripheral_neuropathy_directly(client: httpx.Client, article: str) -> None:
    body = paths(client, "vitamin B12 deficiency", "peripheral neuropathy")
    assert body == paths(client, "B12 deficiency", "HP:0009830")
    check_path_shape(body, "vitamin_b12_deficiency", "peripheral_neuropathy", article)
    direct = [p for p in body["paths"] if chain(p) == ["vitamin_b12_deficiency", "peripheral_neuropathy"]]
    assert len(direct) == 1, [chain(p) for p in body["paths"]]  # the direct edge is among the answers
    # the article's "Peripheral neuropathy (most common neurological manifestation) [1]" is on the direct edge:
    # its best predicate or an alternative, in the causal answer or (for a non-causal predicate) with all relations
    everything = paths(client, "vitamin B12 deficiency", "peripheral neuropathy", relations="all")
    check_path_shape(everything, "vitamin_b12_deficiency", "peripheral_neuropathy", article)
    groups = [group for answer in (body, everything) for p in answer["paths"]
              if chain(p) == ["vitamin_b12_deficiency", "peripheral_neuropathy"]
              for group in (p["edges"][0], *p["edges"][0].get("alternatives", []))]
    manifestation = "Peripheral neuropathy (most common neurological manifestation)"
    carrying = [g for g in groups if any(ev["quote"] == manifestation for ev in g["evidence"])]
    assert carrying, [(g["predicate"], [ev["quote"] for ev in g["evidence"]]) for g in groups]
    assert carrying[0]["predicate"] in ("akg:manifestsAs", "akg:associatedWith"), carrying[0]["predicate"]
    assert carrying[0]["certainty"] == "strong"
    assert quoted(carrying[0], manifestation)["references"] == [REF[1]]


@pytest.mark.parametrize("target", ["muscle_cramping", "joint_pain", "peripheral_neuropathy"])
def test_anemia_to_each_symptom(client: httpx.Client, article: str, target: str) -> None:
    body = paths(client, "anemia", target)
    check_path_shape(body, "anemia", target, article)
    chains = [chain(p) for p in body["paths"]]
    # the answer's own sentence: a direct, hedged, uncited edge
    assert ["anemia", target] in chains, chains
    direct = edge(body, "anemia", target)
    assert direct["certainty"] == "possible"
    assert direct["qualifiers"]["hedge"] == "can"
    assert direct["predicate"] in ("akg:mayCause", "akg:exacerbates")
    assert any(ANSWER_QUOTE in ev["quote"] for ev in direct["evidence"])
    assert refs(direct) == []  # that sentence cites nothing
    # and through "anemia due to other causes", cited [6, 7]: 6 resolves, 7 is not in the reference list
    longer = paths(client, "anemia", target, max_hops=6, limit=10)
    check_path_shape(longer, "anemia", target, article)
    through = [p for p in longer["paths"] if chain(p)[:2] == ["anemia", "anemia_other_causes"]]
    assert through, [chain(p) for p in longer["paths"]]
    assert through[0]["edges"][0]["predicate"] == "skos:narrower"  # anemia has the specific form
    cited = [e for e in through[0]["edges"] if any(ev["quote"] == OTHER_CAUSES_QUOTE for ev in e["evidence"])]
    assert len(cited) == 1, [e["evidence"] for e in through[0]["edges"]]
    assert cited[0]["target"] == "peripheral_neuropathy"
    assert cited[0]["predicate"] == "akg:mayCause" and cited[0]["qualifiers"]["hedge"] == "can"
    assert quoted(cited[0], OTHER_CAUSES_QUOTE)["references"] == [
        {"number": 6, "title": REFERENCES[6][0], "year": 1990, "kind": "Research", "resolved": True},
        {"number": 7, "title": None, "year": None, "kind": None, "resolved": False},
    ]


def test_relations_all_reach_at_least_as_far(client: httpx.Client, article: str) -> None:
    causal = paths(client, "anemia", "joint pain", limit=50, max_hops=8)
    everything = paths(client, "anemia", "joint pain", relations="all", limit=50, max_hops=8)
    assert everything["paths"] and everything["paths"][0]["score"] >= causal["paths"][0]["score"]


def test_explain_muscle_cramps(client: httpx.Client, article: str) -> None:
    body = api(client, "/api/explain", finding="muscle cramps")
    assert body["finding"]["id"] == "muscle_cramping"
    assert body["causes"]
    seen: set[str] = set()

    def walk(nodes: list[dict[str, Any]], child: str) -> None:
        scores = [n["score"] for n in nodes]
        assert scores == sorted(scores, reverse=True)
        for node in nodes:
            cause = node["entity"]["id"]
            assert cause not in seen  # each cause once
            seen.add(cause)
            assert (node["edge"]["source"], node["edge"]["target"]) == (cause, child)
            for evidence in node["edge"]["evidence"]:
                assert evidence["quote"] in article
                for ref in evidence["references"]:
                    check_reference(ref)
            walk(node["causes"], cause)

    walk(body["causes"], "muscle_cramping")
    assert {"muscle_denervation", "peripheral_neuropathy", "vitamin_b12_deficiency", "anemia"} <= seen | {
        n["id"] for n in body["omitted"]}, seen


def test_references_and_quality(client: httpx.Client, report: dict[str, Any]) -> None:
    references = api(client, "/api/references")
    listed = {r["number"]: r for r in references["references"]}
    assert sorted(listed) == sorted(REFERENCES)
    for n, ref in listed.items():
        check_reference(ref)
        assert (ref["title"], ref["year"], ref["kind"]) == REFERENCES[n]
    assert listed[5]["claims"] and all(set(c) >= {"id", "text", "certainty", "negated"} for c in listed[5]["claims"])
    [unresolved] = references["unresolved"]
    check_reference(unresolved)
    assert unresolved["number"] == 7 and unresolved["claims"]
    quality = api(client, "/api/quality")
    assert [u["number"] for u in quality["unresolved_citations"]] == report["unresolved_citations"] == [7]
    assert sorted(c["id"] for c in quality["uncited_claims"]) == sorted(report["uncited_claims"])
    coverage = {k: v for k, v in report["coverage"].items() if k != "waived"}
    assert {k: quality["coverage"][k] for k in coverage} == coverage


# --- the command line answers as the API does ------------------------------------------------------------------


@pytest.mark.parametrize(("args", "path", "params"), [
    (["paths", "B12 deficiency", "joint pain", "--json"], "/api/paths",
     {"source": "B12 deficiency", "target": "joint pain"}),
    (["paths", "anemia", "peripheral neuropathy", "--json", "--limit", "3", "--max-hops", "3"], "/api/paths",
     {"source": "anemia", "target": "peripheral neuropathy", "limit": 3, "max_hops": 3}),
    (["explain", "muscle cramps", "--json"], "/api/explain", {"finding": "muscle cramps"}),
    (["entity", "arthralgia", "--json"], "/api/entities/arthralgia", {}),
])
def test_cli_gives_the_same_answers_as_the_api(client: httpx.Client, real_build, args: list[str], path: str,
                                               params: dict[str, Any]) -> None:
    result = run_cli(real_build.root, *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == api(client, path, **params)
