"""The embedded executor: real worker processes over a tiny hand-written dataset, in memory and on disk.

Every wait is bounded; timings are only checked against generous upper bounds that prove "does not hang".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyoxigraph as ox
import pytest

from anemia_kg import iris
from anemia_kg.executor import (
    EmbeddedExecutor,
    QuerySyntaxError,
    QueryTimeout,
    Result,
    StoreUnavailable,
    TooManyRows,
)
from anemia_kg.namespaces import PREFIX_IRIS
from anemia_kg.store import prepare_disk_store

AKG, ENT, CLAIM = str(iris.AKG), str(iris.ENT), str(iris.CLAIM)
ONTOLOGY, ENTITIES, CLAIMS = str(iris.ONTOLOGY_GRAPH), str(iris.ENTITIES_GRAPH), str(iris.CLAIMS_GRAPH)
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
XSD_INTEGER = "http://www.w3.org/2001/XMLSchema#integer"
OWL_CLASS = "http://www.w3.org/2002/07/owl#Class"

# Three named graphs, nothing in the default graph (like the built dataset); 9 quads.
DATASET = f"""\
<{AKG}Entity> <{RDF_TYPE}> <{OWL_CLASS}> <{ONTOLOGY}> .
<{AKG}Entity> <{LABEL}> "Entity"@en <{ONTOLOGY}> .
<{ENT}anemia> <{RDF_TYPE}> <{AKG}Entity> <{ENTITIES}> .
<{ENT}anemia> <{LABEL}> "anemia"@en <{ENTITIES}> .
<{ENT}anemia> <{AKG}weight> "3"^^<{XSD_INTEGER}> <{ENTITIES}> .
<{ENT}joint_pain> <{RDF_TYPE}> <{AKG}Entity> <{ENTITIES}> .
<{ENT}joint_pain> <{LABEL}> "joint pain" <{ENTITIES}> .
<{CLAIM}c1> <{AKG}subject> <{ENT}anemia> <{CLAIMS}> .
<{CLAIM}c1> <{AKG}object> <{ENT}joint_pain> <{CLAIMS}> .
"""
QUADS = 9
LABELS = "SELECT ?e ?label WHERE { ?e a akg:Entity ; rdfs:label ?label } ORDER BY ?e"
TRIPLES = "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"
# Far more work than any timeout in these tests: a three-way cross product over the big graph, counted.
HEAVY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f }"


def write_dataset(folder: Path) -> Path:
    path = folder / "tiny.nq"
    path.write_text(DATASET, encoding="utf-8")
    return path


def write_big_dataset(folder: Path, size: int = 20_000) -> Path:
    """A chain of ``size`` triples in one graph, for queries that run (nearly) forever."""
    path = folder / "big.nq"
    lines = (f"<http://example.org/n{i}> <http://example.org/next> <http://example.org/n{i + 1}> "
             "<http://example.org/g/big> .\n" for i in range(size))
    path.write_text("".join(lines), encoding="utf-8")
    return path


def solutions(result: Result) -> list[dict[str, str]]:
    """JSON SELECT results as {var: value} rows."""
    assert result.media_type == "application/sparql-results+json"
    data = json.loads(result.body)
    return [{k: v["value"] for k, v in row.items()} for row in data["results"]["bindings"]]


def triples(result: Result, fmt: ox.RdfFormat) -> set[ox.Triple]:
    return {q.triple for q in ox.parse(result.body, format=fmt)}


def count(executor, **dataset) -> int:  # noqa: ANN001
    result = executor.execute("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", media="json", **dataset)
    return int(solutions(result)[0]["n"])


@pytest.fixture(scope="module")
def nquads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"))


@pytest.fixture(scope="module")
def executor(nquads: Path) -> Iterator[EmbeddedExecutor]:
    with EmbeddedExecutor(nquads, workers=2, timeout=30) as ex:
        ex.wait_ready(60)
        yield ex


# --- answers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("media", "mime", "fmt"), [
    ("json", "application/sparql-results+json", ox.QueryResultsFormat.JSON),
    ("xml", "application/sparql-results+xml", ox.QueryResultsFormat.XML),
    ("tsv", "text/tab-separated-values", ox.QueryResultsFormat.TSV),
])
def test_select_in_each_results_format(executor: EmbeddedExecutor, media: str, mime: str,
                                       fmt: ox.QueryResultsFormat) -> None:
    result = executor.execute(LABELS, media=media)
    assert (result.form, result.media_type) == ("SELECT", mime)
    rows = [(sol["e"], sol["label"]) for sol in ox.parse_query_results(result.body, format=fmt)]
    assert rows == [(ox.NamedNode(ENT + "anemia"), ox.Literal("anemia", language="en")),
                    (ox.NamedNode(ENT + "joint_pain"), ox.Literal("joint pain"))]


def test_select_as_csv(executor: EmbeddedExecutor) -> None:
    result = executor.execute(LABELS, media="csv")
    assert result.media_type.startswith("text/csv")
    assert result.body.decode().splitlines() == ["e,label", f"{ENT}anemia,anemia", f"{ENT}joint_pain,joint pain"]


@pytest.mark.parametrize(("media", "mime", "fmt"), [
    ("turtle", "text/turtle", ox.RdfFormat.TURTLE),
    ("ntriples", "application/n-triples", ox.RdfFormat.N_TRIPLES),
    ("jsonld", "application/ld+json", ox.RdfFormat.JSON_LD),
    ("rdfxml", "application/rdf+xml", ox.RdfFormat.RDF_XML),
])
def test_construct_in_each_rdf_format(executor: EmbeddedExecutor, nquads: Path, media: str, mime: str,
                                      fmt: ox.RdfFormat) -> None:
    result = executor.execute(TRIPLES, media=media)
    assert (result.form, result.media_type) == ("CONSTRUCT", mime)
    assert triples(result, fmt) == {q.triple for q in ox.parse(path=str(nquads), format=ox.RdfFormat.N_QUADS)}


def test_ask_and_describe(executor: EmbeddedExecutor) -> None:
    yes = executor.execute("ASK { ent:anemia rdfs:label ?l }", media="json")
    assert (yes.form, json.loads(yes.body)["boolean"]) == ("ASK", True)
    no = executor.execute("ASK { ent:anemia rdfs:label 'joint pain' }", media="xml")
    assert no.form == "ASK" and b"<boolean>false</boolean>" in no.body
    described = executor.execute("DESCRIBE ent:joint_pain", media="ntriples")
    assert described.form == "DESCRIBE"
    assert ox.Triple(ox.NamedNode(ENT + "joint_pain"), ox.NamedNode(LABEL), ox.Literal("joint pain")) in triples(
        described, ox.RdfFormat.N_TRIPLES)


def test_a_media_type_that_does_not_suit_the_form_falls_back_to_its_default(executor: EmbeddedExecutor) -> None:
    select = executor.execute(LABELS, media="turtle")
    assert (select.form, len(solutions(select))) == ("SELECT", 2)
    graph = executor.execute(TRIPLES, media="csv")
    assert (graph.form, graph.media_type) == ("CONSTRUCT", "text/turtle")
    assert len(triples(graph, ox.RdfFormat.TURTLE)) == QUADS


def test_select_gives_sparql_json_bindings(executor: EmbeddedExecutor) -> None:
    rows = executor.select("SELECT ?e ?label ?w WHERE { ?e rdfs:label ?label OPTIONAL { ?e akg:weight ?w } } "
                           "ORDER BY ?label")
    def uri(value: str) -> dict[str, str]:
        return {"type": "uri", "value": value}

    assert rows == [
        {"e": uri(AKG + "Entity"), "label": {"type": "literal", "value": "Entity", "xml:lang": "en"}},
        {"e": uri(ENT + "anemia"), "label": {"type": "literal", "value": "anemia", "xml:lang": "en"},
         "w": {"type": "literal", "value": "3", "datatype": XSD_INTEGER}},
        {"e": uri(ENT + "joint_pain"), "label": {"type": "literal", "value": "joint pain"}},  # no xsd:string
    ]


def test_graphs_and_triple_count(executor: EmbeddedExecutor) -> None:
    assert executor.graphs() == sorted([ONTOLOGY, ENTITIES, CLAIMS])
    assert executor.triple_count() == QUADS


# --- the dataset ----------------------------------------------------------------------------------------------


def test_default_graph_is_the_union_of_the_named_graphs(executor: EmbeddedExecutor) -> None:
    assert count(executor) == QUADS


def test_explicit_default_graphs(executor: EmbeddedExecutor) -> None:
    assert count(executor, default_graphs=[CLAIMS]) == 2
    assert count(executor, default_graphs=[CLAIMS, ONTOLOGY]) == 4
    # GRAPH still sees every named graph when only the default graph is chosen
    rows = executor.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }")
    assert len(rows) == 3


def test_named_graphs_restrict_graph(executor: EmbeddedExecutor) -> None:
    query = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
    only = executor.execute(query, media="json", named_graphs=[ENTITIES])
    assert solutions(only) == [{"g": ENTITIES}]
    assert count(executor, named_graphs=[ENTITIES]) == QUADS  # the default graph stays the union


def test_the_querys_own_from_is_honoured_unless_the_caller_names_graphs(executor: EmbeddedExecutor) -> None:
    query = f"SELECT (COUNT(*) AS ?n) FROM <{ONTOLOGY}> WHERE {{ ?s ?p ?o }}"
    assert solutions(executor.execute(query, media="json")) == [{"n": "2"}]
    assert solutions(executor.execute(query, media="json", default_graphs=[CLAIMS])) == [{"n": "2"}]
    assert solutions(executor.execute(query, media="json", default_graphs=[ENTITIES])) == [{"n": "5"}]


def test_disk_store_gives_the_same_answers(nquads: Path, tmp_path: Path, executor: EmbeddedExecutor) -> None:
    folder = prepare_disk_store(nquads, tmp_path / "store")
    with EmbeddedExecutor(folder, workers=1, timeout=30) as disk:
        disk.wait_ready(60)
        assert disk.execute(LABELS, media="json") == executor.execute(LABELS, media="json")
        assert disk.graphs() == executor.graphs()
        assert count(disk) == QUADS
        assert count(disk, default_graphs=[CLAIMS]) == 2


# --- refusals -------------------------------------------------------------------------------------------------


def test_syntax_error_names_the_position(executor: EmbeddedExecutor) -> None:
    with pytest.raises(QuerySyntaxError, match=r"1:2\d") as caught:
        executor.execute("SELECT ?x WHERE { ?x ?p }", media="json")
    assert caught.value.status == 400


@pytest.mark.parametrize(("query", "where"), [
    ("SELECT * WHERE { ?s nope:p ?o }", "1:27"),
    ("SELECT * WHERE {\n  ?s a akg:Entity .\n  ?s nope:p ?o }", "3:12"),
    ("PREFIX yes: <http://example.org/>\nSELECT * WHERE { ?s yes:p ?o ; nope:q.r ?x }", "2:40"),
])
def test_an_unknown_prefix_is_named_with_the_ones_that_need_no_declaration(executor: EmbeddedExecutor,
                                                                          query: str, where: str) -> None:
    """pyoxigraph says "expected one of Prefix not found, ['%'], ['-' | '0' ..= '9' ..." and never the name."""
    with pytest.raises(QuerySyntaxError) as caught:
        executor.execute(query, media="json")
    assert str(caught.value) == (f"error at {where}: unknown prefix 'nope:'; declare it (PREFIX nope: <...>) or "
                                 "use a predeclared one: " + ", ".join(sorted(PREFIX_IRIS)))
    assert caught.value.status == 400


def test_the_projects_prefixes_need_no_declaration_and_a_querys_own_come_first(executor: EmbeddedExecutor) -> None:
    """Only the prefixes a query names are handed to pyoxigraph (``_prefixes_named``): a name right after a
    '.', in compact text, is named too, and a query that declares a project prefix otherwise gets its own."""
    def ask(query: str) -> bool:
        return bool(json.loads(executor.execute(query, media="json").body)["boolean"])

    assert ask("ASK{?e rdfs:label ?l.ent:anemia rdfs:label ?l}")
    assert ask("ASK { ent:anemia rdfs:label ?l }")
    assert not ask("PREFIX ent: <http://example.org/other/> ASK { ent:anemia rdfs:label ?l }")
    assert ask("PREFIX e: <https://w3id.org/anemia-kg/entity/> ASK { e:anemia rdfs:label ?l }")


@pytest.mark.parametrize("query", [
    "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
    "select * { 1SERVICE<http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
])
def test_service_is_refused_before_any_connection(executor: EmbeddedExecutor, query: str) -> None:
    with pytest.raises(QuerySyntaxError, match="SERVICE"):
        executor.execute(query, media="json")


def test_update_is_refused(executor: EmbeddedExecutor) -> None:
    with pytest.raises(QuerySyntaxError, match="read-only"):
        executor.execute("INSERT DATA { <http://a> <http://b> <http://c> }", media="json")
    assert executor.triple_count() == QUADS


def test_a_graph_name_must_be_an_iri(executor: EmbeddedExecutor) -> None:
    with pytest.raises(QuerySyntaxError, match="not an absolute IRI"):
        executor.execute(LABELS, media="json", default_graphs=["not an iri"])


def test_row_cap(executor: EmbeddedExecutor) -> None:
    assert len(solutions(executor.execute("SELECT * WHERE { ?s ?p ?o }", media="json", max_rows=QUADS))) == QUADS
    with pytest.raises(TooManyRows, match=f"more than {QUADS - 1} rows; add LIMIT") as caught:
        executor.execute("SELECT * WHERE { ?s ?p ?o }", media="json", max_rows=QUADS - 1)
    assert caught.value.status == 422
    with pytest.raises(TooManyRows):
        executor.execute(TRIPLES, media="turtle", max_rows=3)
    assert executor.execute("SELECT * WHERE { ?s ?p ?o } LIMIT 3", media="json", max_rows=3).form == "SELECT"


def test_one_request_at_a_time_goes_to_the_same_worker(nquads: Path) -> None:
    """The idle workers are a stack: the one just released answers the next request, its copy of the data still
    in the CPU caches (taken in turns, each query met a cold copy: 1.5x slower at 1,000,000 triples)."""
    with EmbeddedExecutor(nquads, workers=2, timeout=30) as ex:
        ex.wait_ready(60)
        assert wait_until(lambda: len(ex._idle) == 2, 60)  # both loaded

        def answered() -> int:  # the worker a call just released is the top of the stack
            return ex._idle[-1].process.pid

        seen = set()
        for _ in range(4):
            ex.execute("ASK { ?s ?p ?o }", media="json")
            seen.add(answered())
            asyncio.run(ex.aexecute("ASK { ?s ?p ?o }", media="json"))
            seen.add(answered())
        assert len(seen) == 1 and len(ex._idle) == 2


def test_a_query_worker_imports_neither_rdflib_nor_the_web_stack() -> None:
    """A spawned worker imports the executor and runs the parent's main module again (``anemia-kg``'s CLI for
    ``anemia-kg serve``): with rdflib, pyshacl, httpx and the rest at the top of those, each worker took about
    a second longer to start, with the server and after every query it had to stop."""
    code = ("import sys, anemia_kg.cli, anemia_kg.executor.embedded; "
            "print(sorted(m for m in ('rdflib', 'pyshacl', 'httpx', 'fastapi', 'networkx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_missing_source() -> None:
    with pytest.raises(StoreUnavailable, match="no built dataset"):
        EmbeddedExecutor(Path("/nonexistent/anemia-kg.nq"))


def test_a_dataset_that_does_not_load_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nq"
    bad.write_text("<http://a> <http://b> oops .\n", encoding="utf-8")
    with EmbeddedExecutor(bad, workers=1, timeout=5) as ex:
        with pytest.raises(StoreUnavailable, match="cannot open the dataset"):
            ex.wait_ready(60)
        with pytest.raises(StoreUnavailable, match="cannot open the dataset"):
            ex.execute(LABELS, media="json")


def test_closed_executor_refuses(nquads: Path) -> None:
    ex = EmbeddedExecutor(nquads, workers=1)
    ex.wait_ready(60)
    ex.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        ex.execute(LABELS, media="json")
    ex.close()  # twice is fine


# --- processes ------------------------------------------------------------------------------------------------


def test_concurrent_requests_get_their_own_answers(executor: EmbeddedExecutor) -> None:
    def ask(n: int) -> tuple[int, int]:
        query = f"SELECT ?n WHERE {{ VALUES ?n {{ {n} }} ?s ?p ?o }} LIMIT 1"
        return n, int(solutions(executor.execute(query, media="json"))[0]["n"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(ask, range(80), timeout=120))
    assert all(asked == got for asked, got in answers)


def test_a_heavy_query_is_stopped_while_the_other_workers_keep_answering(tmp_path: Path) -> None:
    timeout = 2.0
    with EmbeddedExecutor(write_big_dataset(tmp_path), workers=2, timeout=timeout) as ex:
        ex.wait_ready(60)
        before = set(ex.worker_pids)
        outcome: dict[str, object] = {}

        def heavy() -> None:
            start = time.monotonic()
            try:
                ex.execute(HEAVY, media="json")
            except Exception as exc:  # noqa: BLE001 - checked below
                outcome["error"] = exc
            outcome["elapsed"] = time.monotonic() - start

        thread = threading.Thread(target=heavy, daemon=True)
        thread.start()
        light = ex.execute("ASK { ?s <http://example.org/next> ?o }", media="json")
        assert json.loads(light.body)["boolean"] is True
        assert thread.is_alive(), "the simple query should have been answered while the heavy one runs"
        thread.join(timeout + 10)
        assert not thread.is_alive(), "the heavy query was not stopped"
        assert isinstance(outcome["error"], QueryTimeout)
        assert outcome["elapsed"] < timeout + 5  # generous: proves it was stopped, not finished
        assert "longer than 2.0 s" in str(outcome["error"]) and outcome["error"].status == 503

        ex.wait_ready(60)  # the killed worker was replaced
        after = set(ex.worker_pids)
        assert len(after) == 2 and after != before
        assert json.loads(ex.execute("ASK { ?s ?p ?o }", media="json").body)["boolean"] is True


def test_all_workers_busy_is_reported_not_waited_for_forever(tmp_path: Path) -> None:
    ex = EmbeddedExecutor(write_big_dataset(tmp_path), workers=1, timeout=60)
    try:
        ex.wait_ready(60)
        errors: list[Exception] = []

        def heavy() -> None:
            try:
                ex.execute(HEAVY, media="json")
            except Exception as exc:  # noqa: BLE001 - checked below
                errors.append(exc)

        thread = threading.Thread(target=heavy, daemon=True)
        thread.start()
        assert wait_until(lambda: len(ex._idle) == 0, 30)  # the heavy query holds the only worker
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match="busy"):
            ex.execute("ASK { ?s ?p ?o }", media="json", timeout=0.5)
        assert time.monotonic() - start < 5
    finally:
        ex.close()  # kills the worker: the heavy query ends at once
    thread.join(15)
    assert not thread.is_alive() and isinstance(errors[0], StoreUnavailable)


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_worker_that_dies_is_replaced(nquads: Path) -> None:
    with EmbeddedExecutor(nquads, workers=2, timeout=30) as ex:
        ex.wait_ready(60)
        first = ex.worker_pids
        os.kill(first[0], signal.SIGKILL)  # while idle: replaced without waiting for a request to find out
        assert wait_until(lambda: len(ex.worker_pids) == 2 and first[0] not in ex.worker_pids)
        both = ex.worker_pids
        for pid in both:
            os.kill(pid, signal.SIGKILL)
        assert solutions(ex.execute(LABELS, media="json"))[0]["label"] == "anemia"  # on a fresh worker
        assert wait_until(lambda: len(ex.worker_pids) == 2 and not set(ex.worker_pids) & set(both))
        assert count(ex) == QUADS


# A server process, as small as it gets: two workers, one of them busy with a query that runs for hours.
SERVER_SCRIPT = """
import sys
from anemia_kg.executor import EmbeddedExecutor

if __name__ == "__main__":
    executor = EmbeddedExecutor(sys.argv[1], workers=2, timeout=3600, query_memory=0)
    executor.wait_ready(60)
    print(*executor.worker_pids, flush=True)
    executor.execute("SELECT (COUNT(*) AS ?n) WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f }", media="json")
"""


def _gone(pid: int) -> bool:
    """No such process, or one that has ended and waits to be reaped (a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (OSError, IndexError):
        return True


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_workers_have_sessions_of_their_own_and_die_with_the_server_however_it_ends(tmp_path: Path) -> None:
    """Each worker runs in a session of its own (Linux schedules sessions as groups: docs/benchmarks.md), so a
    signal to the server's process group no longer reaches it; the kernel kills it when the server ends instead.
    Here the server process alone gets SIGKILL, with one worker idle and the other in the middle of a query
    that would run for hours: both are gone within seconds."""
    big = write_big_dataset(tmp_path)
    script = tmp_path / "server.py"
    script.write_text(SERVER_SCRIPT, encoding="utf-8")
    process = subprocess.Popen([sys.executable, str(script), str(big)], stdout=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    pids: list[int] = []
    try:
        assert process.stdout is not None
        pids = [int(pid) for pid in process.stdout.readline().split()]
        assert len(pids) == 2, "the server script did not start its workers"
        for pid in pids:
            assert os.getsid(pid) == pid  # a session (and process group) of its own
            assert os.getsid(pid) != os.getsid(process.pid)
        before = {pid: _cpu_ticks(pid) for pid in pids}
        assert wait_until(lambda: any(_cpu_ticks(pid) > before[pid] + 20 for pid in pids), 30)  # one is computing
        process.kill()  # the server alone: its process group is not signalled
        process.wait(30)
        assert wait_until(lambda: all(_gone(pid) for pid in pids), 15), "a worker outlived its server"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_a_replacement_worker_loads_the_dataset_even_after_its_file_was_deleted(tmp_path: Path) -> None:
    """Each build deletes the one before, which an in-memory server started from: a worker started later
    must still load the data the server started with (the executor holds the file open)."""
    own = write_dataset(tmp_path)
    with EmbeddedExecutor(own, workers=1, timeout=30) as ex:
        ex.wait_ready(60)
        assert ex.source == own.resolve()
        own.unlink()  # what the next build does to this build's folder
        first = ex.worker_pids
        os.kill(first[0], signal.SIGKILL)
        assert wait_until(lambda: len(ex.worker_pids) == 1 and ex.worker_pids != first)
        assert count(ex) == QUADS
        assert solutions(ex.execute(LABELS, media="json"))[0]["label"] == "anemia"
    own.write_text("<http://a> <http://b> oops .\n", encoding="utf-8")
    named = f"^{re.escape(str(own.resolve()))}: cannot open the dataset"  # the file, not the descriptor
    with EmbeddedExecutor(own, workers=1, timeout=5) as ex, pytest.raises(StoreUnavailable, match=named):
        ex.wait_ready(60)


def test_close_lets_go_of_the_dataset_file(tmp_path: Path) -> None:
    nquads = write_dataset(tmp_path)  # a file of its own: the module's executor holds the shared one open

    def open_files() -> set[str]:
        return {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                if os.path.exists(f"/proc/self/fd/{fd}")}

    ex = EmbeddedExecutor(nquads, workers=1)
    ex.wait_ready(60)
    assert str(nquads.resolve()) in open_files()
    ex.close()
    ex.close()  # twice is harmless
    assert str(nquads.resolve()) not in open_files()


def test_a_query_that_crashes_the_engine_does_not_crash_the_server(nquads: Path) -> None:
    """pyoxigraph's parser overflows its stack (SIGSEGV) on deep nesting: only the workers die, twice at most."""
    deep = "SELECT * WHERE { FILTER(" + "(" * 100_000 + "1" + ")" * 100_000 + ") }"
    with EmbeddedExecutor(nquads, workers=2, timeout=30) as ex:
        ex.wait_ready(60)
        with pytest.raises((StoreUnavailable, QuerySyntaxError)) as caught:  # the latter once the parser copes
            ex.execute(deep, media="json")
        if isinstance(caught.value, StoreUnavailable):
            assert "crashed twice" in str(caught.value) and caught.value.status == 503
        ex.wait_ready(60)
        assert count(ex) == QUADS


def test_execute_reads_long_answers_after_aexecute_ran_under_uvloop(nquads: Path) -> None:
    """uvloop leaves a descriptor it watched non-blocking; a blocking execute() on the same worker afterwards
    must still read an answer that arrives in parts (it failed with EAGAIN, seen as a worker crash)."""
    import asyncio

    import uvloop

    big = "SELECT * WHERE { GRAPH ?g1 { ?a ?b ?c } GRAPH ?g2 { ?d ?e ?f } GRAPH ?g3 { ?h ?i ?j } }"  # 729 rows
    with EmbeddedExecutor(nquads, workers=1, timeout=30) as ex:
        ex.wait_ready(60)
        expected = ex.execute(big, media="xml").body
        assert len(expected) > 256 * 1024
        (worker,) = list(ex._workers)
        assert asyncio.run(ex.aexecute(LABELS, media="json")) == ex.execute(LABELS, media="json")
        uvloop.run(ex.aexecute(LABELS, media="json"))
        assert not os.get_blocking(worker.conn.fileno())  # left so: execute() must set it back before reading
        for _ in range(10):
            assert ex.execute(big, media="xml").body == expected
        assert ex.worker_pids == [worker.process.pid]  # the same worker throughout: none died
