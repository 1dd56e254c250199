"""``anemia-kg serve --endpoint``: the same server in front of a REAL Oxigraph server instead of the embedded store.

An Oxigraph server (the ``oxigraph`` console script of the ``oxigraph`` package, test extra) is started on a free
loopback port with an empty on-disk store, filled by ``anemia-kg load --gsp .../store --endpoint .../query``,
and served by ``anemia-kg serve --endpoint .../query``; an embedded server over the same build answers the same
requests for comparison. Everything is a subprocess stopped after the module (or the test), every wait bounded.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Listener, console_script
from test_server import (
    CLAIMS,
    ENTITIES,
    GRAPHS,
    JOINT_PAIN,
    JSON_MIME,
    LABELS,
    PROBE,
    RDF_FORMATS,
    RESULT_FORMATS,
    SERVICES,
    TRIPLES_OF_JOINT_PAIN,
    UPDATES,
    Server,
    ask,
    bindings,
    error,
    free_port,
    graph,
    run_cli,
    running_server,
    start,
    stop,
    wait_until,
)

EXIT_TIMEOUT = 60.0  # seconds a server that cannot start may take to say so and exit
QUERY_TIMEOUT = 5  # --query-timeout of both servers compared here


def oxigraph_binary() -> str:
    beside = Path(sys.executable).with_name("oxigraph")
    found = str(beside) if beside.exists() else shutil.which("oxigraph")
    if found is None:
        pytest.skip("the Oxigraph server is not installed (pip install oxigraph, in the test extra)")
    return found


@dataclass
class Engine:
    base: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def oxigraph_server(folder: Path) -> Iterator[Engine]:
    """A real Oxigraph server with an empty on-disk store on a free loopback port."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start([oxigraph_binary(), "serve", "--location", str(folder / "db"), "--bind", f"127.0.0.1:{port}"],
                    folder)
    try:
        wait_until(process, f"{base}/query?query=ASK%20%7B%7D", lambda: (folder / "stderr").read_text(errors="replace"))
        yield Engine(base, process)
    finally:
        stop(process)


def load(root: Path, base: str, report: dict[str, Any]) -> str:
    """``anemia-kg load`` into the Oxigraph server at ``base``; its query endpoint."""
    result = run_cli(root, "load", "--gsp", f"{base}/store", "--endpoint", f"{base}/query")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"uploaded {report['triples']:,} quads" in result.stdout
    return f"{base}/query"


def direct(endpoint: str, query: str) -> Any:
    """A query straight to the Oxigraph server (not through anemia-kg), as SPARQL JSON."""
    response = httpx.post(endpoint, data={"query": query}, headers={"Accept": JSON_MIME}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def report(real_build) -> dict[str, Any]:
    return json.loads((real_build.root / "data" / "build" / "build-report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def oxigraph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with oxigraph_server(tmp_path_factory.mktemp("oxigraph")) as engine:
        yield engine.base


@pytest.fixture(scope="module")
def endpoint(real_build, oxigraph: str, report: dict[str, Any]) -> str:
    return load(real_build.root, oxigraph, report)


@pytest.fixture(scope="module")
def remote(real_build, endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(real_build.root, tmp_path_factory.mktemp("remote-server"), "--endpoint", endpoint,
                        "--query-timeout", str(QUERY_TIMEOUT), "--max-rows", "5000") as server:
        yield server


@pytest.fixture(scope="module")
def embedded(real_build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(real_build.root, tmp_path_factory.mktemp("embedded-server"),
                        "--query-timeout", str(QUERY_TIMEOUT), "--max-rows", "5000") as server:
        yield server


@pytest.fixture
def clients(remote: Server, embedded: Server) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with httpx.Client(base_url=remote.base, timeout=30) as r, httpx.Client(base_url=embedded.base, timeout=30) as e:
        yield r, e


# --- loading and serving ---------------------------------------------------------------------------------------


def test_load_put_every_graph_on_the_engine(endpoint: str, report: dict[str, Any]) -> None:
    graphs = direct(endpoint, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY ?g")
    assert [row["g"]["value"] for row in graphs["results"]["bindings"]] == GRAPHS
    total = direct(endpoint, "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert int(total["results"]["bindings"][0]["n"]["value"]) == report["triples"]


def test_health_says_remote(clients: tuple[httpx.Client, httpx.Client]) -> None:
    mine, theirs = (c.get("/health").json() for c in clients)
    assert mine["store"] == "remote" and theirs["store"] == "embedded"
    assert mine["model"] == "sparql"  # a remote engine's data can change: its model is never kept
    assert theirs["model"] in ("sparql", "snapshot")
    same = {k: v for k, v in mine.items() if k not in ("store", "model")}
    assert same == {k: v for k, v in theirs.items() if k not in ("store", "model")}
    assert mine["graphs"] == GRAPHS


SELECTS = [
    LABELS,
    "SELECT ?s ?p ?o WHERE { ?s ?p ?o } ORDER BY ?s ?p ?o",
    "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g ORDER BY ?g",
    "SELECT ?p (COUNT(*) AS ?n) WHERE { ?c a akg:Claim ; ?p ?o } GROUP BY ?p ORDER BY ?p",
    f"SELECT ?p ?o WHERE {{ {JOINT_PAIN} ?p ?o }} ORDER BY ?p ?o",
    f"SELECT (COUNT(*) AS ?n) FROM <{ENTITIES}> WHERE {{ ?s ?p ?o }}",
    "SELECT ?x WHERE { ?x a akg:Symptom OPTIONAL { ?x skos:altLabel ?alt } FILTER(!BOUND(?alt)) } ORDER BY ?x",
    f"ASK {{ {JOINT_PAIN} rdfs:label 'joint pain' }}",
    "ASK { ?s a akg:NoSuchClass }",
]


@pytest.mark.parametrize("accept", list(RESULT_FORMATS))
@pytest.mark.parametrize("query", SELECTS)
def test_the_same_sparql_answers_as_the_embedded_store(clients: tuple[httpx.Client, httpx.Client], query: str,
                                                       accept: str) -> None:
    mine, theirs = (ask(c, query, headers={"Accept": accept}) for c in clients)
    assert mine.status_code == theirs.status_code == 200, (mine.text, theirs.text)
    assert mine.headers["content-type"] == theirs.headers["content-type"]
    assert mine.content == theirs.content  # byte for byte: the same writers whichever engine answered
    if accept == JSON_MIME:
        assert json.loads(mine.content) == json.loads(theirs.content)


@pytest.mark.parametrize("params", [{"default-graph-uri": ENTITIES}, {"default-graph-uri": [ENTITIES, CLAIMS]},
                                    {"named-graph-uri": CLAIMS}, {"named-graph-uri": [CLAIMS, ENTITIES]},
                                    {"default-graph-uri": CLAIMS, "named-graph-uri": ENTITIES}])
def test_the_same_dataset_parameters(clients: tuple[httpx.Client, httpx.Client], params: dict[str, Any]) -> None:
    for query in ("SELECT (COUNT(*) AS ?n) WHERE { ?c a akg:Claim }",
                  "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g ORDER BY ?g",
                  "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"):
        mine, theirs = (bindings(ask(c, query, "form", headers={"Accept": JSON_MIME}, **params)) for c in clients)
        assert mine == theirs, (query, params)
    only_entities = ask(clients[0], "SELECT (COUNT(*) AS ?n) WHERE { ?c a akg:Claim }",
                        headers={"Accept": JSON_MIME}, **{"default-graph-uri": ENTITIES})
    assert bindings(only_entities) == [{"n": "0"}]


@pytest.mark.parametrize("mime", list(RDF_FORMATS))
@pytest.mark.parametrize("query", [TRIPLES_OF_JOINT_PAIN, f"DESCRIBE {JOINT_PAIN}",
                                   "CONSTRUCT { ?c a akg:Claim } WHERE { ?c a akg:Claim }"])
def test_the_same_graphs_as_the_embedded_store(clients: tuple[httpx.Client, httpx.Client], query: str,
                                               mime: str) -> None:
    mine, theirs = (ask(c, query, headers={"Accept": mime}) for c in clients)
    assert mine.status_code == theirs.status_code == 200, (mine.text, theirs.text)
    assert mine.headers["content-type"] == theirs.headers["content-type"]
    assert graph(mine.content, mime) == graph(theirs.content, mime)
    assert graph(mine.content, mime)


@pytest.mark.parametrize(("path", "params"), [
    ("/api/paths", {"source": "B12 deficiency", "target": "joint pain"}),
    ("/api/paths", {"source": "vitamin B12 deficiency", "target": "muscle cramps"}),
    ("/api/paths", {"source": "anemia", "target": "peripheral neuropathy"}),
    ("/api/paths", {"source": "anemia", "target": "joint pain", "max_hops": 6, "limit": 20}),
    ("/api/paths", {"source": "anemia", "target": "muscle cramps", "relations": "all"}),
    ("/api/explain", {"finding": "muscle cramps"}),
    ("/api/entities/arthralgia", {}),
    ("/api/entities/HP:0009830", {}),
    ("/api/entities", {"q": "cramp"}),
    ("/api/entities", {"type": "Symptom", "limit": 100}),
    ("/api/references", {}),
    ("/api/quality", {}),
])
def test_the_same_api_answers_as_the_embedded_store(clients: tuple[httpx.Client, httpx.Client], path: str,
                                                    params: dict[str, Any]) -> None:
    mine, theirs = (c.get(path, params=params) for c in clients)
    assert mine.status_code == theirs.status_code == 200, (mine.text, theirs.text)
    assert mine.json() == theirs.json()
    if path == "/api/paths":
        assert mine.json()["paths"]


@pytest.mark.parametrize(("query", "extra", "status"), [
    ("SELECT * WHERE { ?s ?p ", {}, 400),
    ("SELECT ?x WHERE { ?x ?p }", {}, 400),
    ("SELECT * WHERE { ?s ?p ?o } LIMIT 1", {"default-graph-uri": "http://example.org/other"}, 400),
    ("SELECT * WHERE { ?s ?p ?o } LIMIT 1", {"headers": {"Accept": "image/png"}}, 406),
    ("DROP ALL", {}, 403),
])
def test_the_same_errors_as_the_embedded_store(clients: tuple[httpx.Client, httpx.Client], query: str,
                                               extra: dict[str, Any], status: int) -> None:
    mine, theirs = (ask(c, query, **dict(extra)) for c in clients)
    assert error(mine, status) == error(theirs, status)
    if query.startswith("SELECT *") and status == 400 and not extra:
        assert re.search(r"\b1:\d+", error(mine, 400))


# --- still read-only, still never connecting out ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "form", "direct"])
@pytest.mark.parametrize("template", SERVICES[:6] + SERVICES[-3:])
def test_service_is_still_refused(remote: Server, listener: Listener, method: str, template: str) -> None:
    with httpx.Client(base_url=remote.base, timeout=30) as client:
        error(ask(client, template.format(url=listener.url), method), 403, "SERVICE")
    assert listener.connections() == 0


@pytest.mark.parametrize("update", [u for u in UPDATES if "{listener}" not in u] + ["LOAD <{listener}/data.ttl>"])
def test_updates_are_still_refused_and_the_engine_is_unchanged(remote: Server, endpoint: str, listener: Listener,
                                                               report: dict[str, Any], update: str) -> None:
    text = update.replace("{listener}", listener.url)
    with httpx.Client(base_url=remote.base, timeout=30) as client:
        for response in (ask(client, text), ask(client, text, "direct"), client.post("/sparql", data={"update": text}),
                         client.post("/sparql", content=text.encode(),
                                     headers={"Content-Type": "application/sparql-update"})):
            error(response, {400, 403})
    total = direct(endpoint, "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert int(total["results"]["bindings"][0]["n"]["value"]) == report["triples"]
    default = direct(endpoint, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }")  # the engine's own default graph
    assert default["results"]["bindings"][0]["n"]["value"] == "0"
    assert direct(endpoint, f"ASK {{ GRAPH ?g {{ <{PROBE}> ?p ?o }} }}")["boolean"] is False
    assert listener.connections() == 0


# --- when the engine is not there ---------------------------------------------------------------------------------


def test_engine_going_down_gives_503_within_the_timeout(real_build, report: dict[str, Any], tmp_path: Path) -> None:
    timeout = 2
    with oxigraph_server(tmp_path / "oxigraph") as engine:
        query_endpoint = load(real_build.root, engine.base, report)
        with running_server(real_build.root, tmp_path / "server", "--endpoint", query_endpoint,
                            "--query-timeout", str(timeout)) as server, \
                httpx.Client(base_url=server.base, timeout=30) as client:
            assert bindings(ask(client, LABELS, headers={"Accept": JSON_MIME}))
            stop(engine.process)  # the engine goes away under the running server
            for method in ("get", "form"):
                started = time.monotonic()
                error(ask(client, LABELS, method, headers={"Accept": JSON_MIME}), 503, "cannot reach", query_endpoint)
                assert time.monotonic() - started < timeout + 3
            # what was read at start-up still answers
            assert client.get("/health").status_code == 200
            paths = client.get("/api/paths", params={"source": "anemia", "target": "joint pain"})
            assert paths.status_code == 200 and paths.json()["paths"]


@dataclass
class DeadStart:
    """``serve --endpoint`` pointed at a loopback port where nothing listens."""

    process: subprocess.Popen[bytes]
    endpoint: str
    base: str
    folder: Path
    seconds: float

    @property
    def stderr(self) -> str:
        return (self.folder / "stderr").read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def dead_start(real_build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeadStart]:
    folder = tmp_path_factory.mktemp("dead-start")
    dead, port = f"http://127.0.0.1:{free_port()}/query", free_port()
    process = start([console_script(), "--root", str(real_build.root), "serve", "--host", "127.0.0.1", "--port",
                     str(port), "--endpoint", dead, "--query-timeout", "2"], folder)
    started = time.monotonic()
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(EXIT_TIMEOUT)
        yield DeadStart(process, dead, f"http://127.0.0.1:{port}", folder, time.monotonic() - started)
    finally:
        stop(process)


def test_a_dead_engine_at_start_is_reported_clearly(dead_start: DeadStart) -> None:
    """Either the server refuses to start, naming the endpoint, or it starts and /sparql answers 503 saying so.
    (It refuses: the knowledge model is read through the endpoint at start-up.)"""
    if dead_start.process.poll() is not None:
        assert dead_start.process.returncode != 0
        assert dead_start.seconds < EXIT_TIMEOUT
        assert f"cannot reach the SPARQL endpoint {dead_start.endpoint}" in dead_start.stderr, dead_start.stderr
        return
    started = time.monotonic()
    response = httpx.get(f"{dead_start.base}/sparql", params={"query": LABELS}, timeout=30)
    error(response, 503, dead_start.endpoint)
    assert time.monotonic() - started < 2 + 3


def test_a_dead_engine_at_start_is_a_cli_error_not_a_traceback(dead_start: DeadStart) -> None:
    """The command line's contract (cli.py): an error a person can cause is a clear message, exit status 1,
    never a traceback."""
    if dead_start.process.poll() is None:
        pytest.skip("the server started; the 503 is checked above")
    stderr = dead_start.stderr
    assert "Traceback" not in stderr, stderr[:300] + " ... " + stderr[-400:]
    assert dead_start.process.returncode == 1, stderr[-400:]
