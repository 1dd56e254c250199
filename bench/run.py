"""The benchmark runner: ``python -m bench`` (see bench/README.md and docs/benchmarks.md).

For each corpus size it generates (or reuses) a synthetic corpus built by the project's own build, computes
every expected answer in-process with pyoxigraph, then starts the servers on loopback one after another (each
start timed alone) and keeps them running side by side, idle but for the one being measured. Request by
request, it checks every server's answer against the expected one, then over ``--rounds`` rounds the servers
take turns: each is timed one request at a time and driven with the same load (:mod:`bench.load`). Taking
turns matters on these machines, whose speed drifts by a third within an hour: measured one server after
the other, minutes apart, a ratio between servers was partly the drift's. It records throughput, p50/p99
latency, errors, start-up time and the peak memory of each server's whole process tree, and beside them the
one-at-a-time time of a server that does no work (:mod:`bench.floor`), the HTTP round trip's own share. It
also times the build, the loads and the path search in-process.
Everything is bounded: request durations, timeouts, a per-request budget for the slowest peer. The results go
to one JSON file; ``python -m bench.report`` turns that into docs/benchmarks.md and its plot.

``--smoke`` is the CI run: the real article only, one-second loads, and a non-zero exit if any server gives a
wrong answer or an error. It asserts correctness, never timings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pyoxigraph as ox

from anemia_kg.causal import build_graph, explain, find_paths
from anemia_kg.knowledge import Knowledge, load_knowledge, select_from_store
from anemia_kg.paths import Paths
from anemia_kg.store import prepare_disk_store

from . import servers
from .load import run_load, sequential_median, wait_for_quiet

BENCH = Path(__file__).resolve().parent
QUERIES = BENCH / "queries"
CORPORA = BENCH / ".corpora"  # generated corpora, reused between runs (git-ignored)
RESULTS = BENCH / "results"
SPARQL_JSON = "application/sparql-results+json"
# The API requests (this project's server only): the article's own question, asked four ways.
API_REQUESTS = {
    "api-search": ("/api/entities", {"q": "neuro", "limit": "10"}),
    "api-entity": ("/api/entities/vitamin_b12_deficiency", {}),
    "api-paths": ("/api/paths", {"source": "vitamin_b12_deficiency", "target": "joint_pain"}),
    "api-explain": ("/api/explain", {"finding": "muscle_cramping"}),
}
PATH_PAIRS = [("vitamin_b12_deficiency", "joint_pain"), ("vitamin_b12_deficiency", "muscle_cramping"),
              ("anemia", "peripheral_neuropathy"), ("vitamin_b12_deficiency", "altered_gait")]


@dataclass(frozen=True)
class Corpus:
    scale: int
    root: Path
    nquads: Path
    triples: int
    build_seconds: float | None  # wall time of `anemia-kg build` when this run built it


def queries() -> dict[str, str]:
    """The benchmark's SPARQL queries, by file stem."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(QUERIES.glob("*.rq"))}


# --- corpora -------------------------------------------------------------------------------------------


def ensure_corpus(scale: int, corpora: Path, log: Callable[[str], None]) -> Corpus:
    """The corpus of ``scale`` under ``corpora``: generated and built (timed) unless already there."""
    root = corpora / f"scale-{scale}"
    paths = Paths(root)
    meta = root / "bench-corpus.json"
    if not (paths.built("nq").exists() and meta.exists()):
        log(f"generating the scale-{scale} corpus in {root}")
        subprocess.run([sys.executable, "-m", "bench.generate", "--scale", str(scale), "--out", str(root),
                        "--no-build"], check=True, cwd=BENCH.parent)
        log(f"building it with `anemia-kg build` (scale {scale})")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "anemia_kg.cli", "--root", str(root), "build"], check=True,
                       stdout=subprocess.DEVNULL, cwd=BENCH.parent)
        seconds = time.perf_counter() - started
        report = json.loads((paths.out / "build-report.json").read_text())
        meta.write_text(json.dumps({"scale": scale, "build_seconds": round(seconds, 2),
                                    "triples": report["triples"]}) + "\n")
    data = json.loads(meta.read_text())
    return Corpus(scale, root, paths.built("nq"), data["triples"], data.get("build_seconds"))


# --- expected answers, in-process -------------------------------------------------------------------------


def canonical(answer: dict[str, Any]) -> Any:
    """A SPARQL JSON result in an engine-independent form: the boolean, or the sorted rows of values."""
    if "boolean" in answer:
        return bool(answer["boolean"])
    names = answer["head"]["vars"]
    rows = [tuple((v, row[v]["value"]) for v in names if v in row) for row in answer["results"]["bindings"]]
    return sorted(rows)


def inprocess(store: ox.Store, text: str, repeat: int, budget: float, warmup: int = 0) -> tuple[Any, float]:
    """The expected answer of ``text`` (union default graph) and the in-process median time in ms.

    Like the servers' one-at-a-time medians (:func:`bench.load.sequential_median`), it is taken after
    ``warmup`` untimed evaluations, for at most a quarter of ``budget``."""
    answer = json.loads(store.query(text, use_default_graph_as_union=True).serialize(
        format=ox.QueryResultsFormat.JSON).decode())
    started = time.perf_counter()
    for _ in range(warmup):
        if time.perf_counter() - started > budget / 4:
            break
        store.query(text, use_default_graph_as_union=True).serialize(format=ox.QueryResultsFormat.JSON)
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < repeat and time.perf_counter() < deadline:
        started = time.perf_counter()
        store.query(text, use_default_graph_as_union=True).serialize(format=ox.QueryResultsFormat.JSON)
        times.append((time.perf_counter() - started) * 1000)
    return canonical(answer), statistics.median(times)


def api_expected(k: Knowledge, causal: Any) -> dict[str, Any]:
    """What each API request must answer, computed with the same domain functions in-process."""
    return {
        "api-search": [e.id for e, _ in k.search("neuro", limit=10)],
        "api-entity": len(k.relations("vitamin_b12_deficiency")),
        "api-paths": [[n["id"] for n in p["nodes"]] for p in find_paths(causal, "vitamin_b12_deficiency",
                                                                         "joint_pain")],
        "api-explain": sorted(c["entity"]["id"] for c in explain(causal, "muscle_cramping")["causes"]),
    }


def api_canonical(name: str, body: dict[str, Any]) -> Any:
    if name == "api-search":
        return [r["id"] for r in body["results"]]
    if name == "api-entity":
        return len(body["relations"])
    if name == "api-paths":
        return [[n["id"] for n in p["nodes"]] for p in body["paths"]]
    return sorted(c["entity"]["id"] for c in body["causes"])


def path_timings(k: Knowledge, repeat: int) -> dict[str, Any]:
    """Build time of the causal graph and the median time of each path search, in-process."""
    started = time.perf_counter()
    causal = build_graph(k, "causal")
    graph_seconds = time.perf_counter() - started
    medians = {}
    for source, target in PATH_PAIRS:
        if source not in causal or target not in causal:
            continue
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            find_paths(causal, source, target)
            times.append((time.perf_counter() - started) * 1000)
        medians[f"{source}->{target}"] = round(statistics.median(times), 3)
    return {"graph_build_s": round(graph_seconds, 3), "nodes": causal.number_of_nodes(),
            "edges": causal.number_of_edges(), "median_ms": medians}


PEAK_RSS = """
import sys, pyoxigraph as ox
store = ox.Store()
store.bulk_load(path=sys.argv[1], format=ox.RdfFormat.N_QUADS)
list(store.query("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"))
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def pyoxigraph_memory(nquads: Path) -> float:
    """Peak resident MB of a Python process holding the dataset in a pyoxigraph memory store: the baseline
    of the memory target (a fresh process, so nothing else of this run is counted)."""
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(nquads)], check=True, capture_output=True, text=True)
    return round(int(out.stdout.strip()) / 1024, 1)


# --- the servers, side by side, measured in turns ------------------------------------------------------


@dataclass
class Contender:
    """A running server and what it has measured so far (``result`` goes into the results file as it is)."""

    server: servers.Running
    requests: dict[str, tuple[str, dict[str, str]]]
    result: dict[str, Any]


def start(spec: servers.ServerSpec, requests: dict[str, tuple[str, dict[str, str]]], stack: ExitStack,
          logs: Path, log: Callable[[str], None]) -> Contender:
    """Start ``spec`` (kept running until ``stack`` closes) and record its start-up figures."""
    server = stack.enter_context(servers.running(spec, logs))
    result: dict[str, Any] = {"name": spec.name, "requests": {}, "startup_s": round(server.startup, 3),
                              "ready_s": round(server.ready, 3), "idle_rss_mb": round(server.rss() / 2**20, 1)}
    if spec.api:  # where the knowledge model came from: "snapshot" after the corpus's first start
        result["model"] = httpx.get(spec.base + "/health", timeout=30).json().get("model")
    server.sampling.clear()  # sampled again while it is measured (see servers.Running)
    log(f"  {spec.name}: first answer after {server.startup:.2f} s, everything after {server.ready:.2f} s, "
        f"{result['idle_rss_mb']} MB")
    return Contender(server, requests, result)


def request_of(spec: servers.ServerSpec, path: str, params: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The URL and headers of one request to ``spec`` (SPARQL at the server's own endpoint path)."""
    if path == "sparql":
        return spec.sparql_url + "?" + urlencode(params), {"Accept": SPARQL_JSON}
    return spec.base + path + ("?" + urlencode(params) if params else ""), {"Accept": "application/json"}


def measure_in_turns(contenders: list[Contender], floor: servers.Running | None, expected: dict[str, Any],
                     args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, float]:
    """Every request on every server, the servers taking turns: the machine's drift falls on all of them.

    For each request, each server's answer is checked first; then ``args.rounds`` rounds follow, in each of
    which every server (in an order that rotates from round to round) is timed one request at a time and then
    loaded for ``args.duration`` seconds. A server's figures are the medians over the rounds. ``floor`` (the
    server doing no work) is timed one at a time beside them for each SPARQL request; its medians are returned.
    """
    names = list(dict.fromkeys(name for c in contenders for name in c.requests))
    floor_ms: dict[str, float] = {}
    with httpx.Client(timeout=args.slow) as client:
        for name in names:
            turns: list[tuple[Contender | None, str, dict[str, str], dict[str, Any]]] = []
            for c in contenders:
                if name not in c.requests:
                    continue
                url, headers = request_of(c.server.spec, *c.requests[name])
                with sampled(c.server):
                    entry = check(client, name, url, headers, expected[name], args, log)
                c.result["requests"][name] = entry
                if entry["correct"] and "skipped" not in entry:
                    entry["rounds"] = []
                    turns.append((c, url, headers, entry))
            path, params = next(c.requests[name] for c in contenders if name in c.requests)
            floor_rounds: list[float] = []
            if floor is not None and path == "sparql":
                url, headers = request_of(floor.spec, path, params)
                turns.append((None, url, headers, {"rounds": floor_rounds}))
            for round_ in range(args.rounds):
                shift = round_ % len(turns) if turns else 0
                for who, url, headers, entry in turns[shift:] + turns[:shift]:
                    if who is None:
                        try:
                            wait_for_quiet(max_wait=args.quiet_wait)
                            floor_rounds.append(sequential_median(url, headers, repeat=args.repeat,
                                                                  budget=args.duration, timeout=args.slow,
                                                                  warmup=args.warmup)[0])
                        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as exc:
                            log(f"    {name}: the HTTP floor failed in this round: {exc!r}")
                        continue
                    with sampled(who.server):
                        entry["rounds"].append(time_and_load(url, headers, entry, args))
            for who, _, _, entry in turns:
                if who is not None:
                    summarise(entry, args)
                    show(name, who.server.spec.name, entry, log)
            if floor_rounds:
                floor_ms[name] = round(statistics.median(floor_rounds), 3)
    return floor_ms


@contextmanager
def sampled(server: servers.Running) -> Iterator[None]:
    """The server's memory is sampled while it answers (see ``servers.Running.sampling``)."""
    server.sampling.set()
    try:
        yield
    finally:
        server.sampling.clear()


def check(client: httpx.Client, name: str, url: str, headers: dict[str, str], expected: Any,
          args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """One request's answer against the expected one; an answer slower than half the load is not loaded."""
    started = time.perf_counter()
    try:
        response = client.get(url, headers=headers)
    except httpx.TimeoutException:
        log(f"    {name}: no answer within {args.slow:.0f} s; not loaded")
        return {"correct": None, "skipped": f"no answer within {args.slow:.0f} s"}
    except httpx.HTTPError as exc:  # the server went away, or broke the connection
        log(f"    {name}: no answer: {exc!r}")
        return {"correct": False, "detail": f"no answer: {exc!r}"}
    first = time.perf_counter() - started
    if response.status_code != 200:
        log(f"    {name}: HTTP {response.status_code}: {response.text[:300]}")
        return {"correct": False, "status": response.status_code, "detail": response.text[:300]}
    try:
        body = response.json()
        got = api_canonical(name, body) if name.startswith("api-") else canonical(body)
    except (ValueError, KeyError, TypeError) as exc:
        log(f"    {name}: an answer of the wrong shape ({exc!r}): {response.text[:300]}")
        return {"correct": False, "detail": f"an answer of the wrong shape: {response.text[:300]}"}
    if got != expected:
        log(f"    {name}: WRONG ANSWER (expected {str(expected)[:200]}, got {str(got)[:200]})")
        return {"correct": False}
    entry: dict[str, Any] = {"correct": True, "first_s": round(first, 4)}
    if first * 4 > args.duration * 2 and first > 1:  # a handful of requests at best: time it, don't load it
        entry["sequential_ms"] = round(first * 1000, 1)
        entry["skipped"] = f"one answer takes {first:.1f} s: not loaded"
        log(f"    {name}: {first:.2f} s per answer; not loaded")
    return entry


def time_and_load(url: str, headers: dict[str, str], entry: dict[str, Any],
                  args: argparse.Namespace) -> dict[str, Any]:
    """One round of one request on one server: its median alone, then (if the rounds so far allow) its load.

    A failure (an error status, a dropped connection, a timeout, wrk failing) is recorded as the round's
    ``error`` rather than raised: it is reported as a failure of that server, and the run goes on."""
    try:
        waited, busy = wait_for_quiet(max_wait=args.quiet_wait)
        median, _count = sequential_median(url, headers, repeat=args.repeat, budget=args.duration,
                                           timeout=args.slow, warmup=args.warmup)
        figures: dict[str, Any] = {"sequential_ms": round(median, 3)}
        if args.quiet_wait > 0:  # how long it waited for an idle machine, and how busy that was
            figures["quiet"] = {"waited_s": waited, "busy_cpus": None if math.isnan(busy) else busy}
        if not too_slow_to_load([*_timed(entry["rounds"]), median], args):
            figures["load"] = run_load(url, headers, connections=args.connections, duration=args.duration,
                                       timeout=args.slow, client=args.client).to_dict()
    except (OSError, RuntimeError, ValueError, http.client.HTTPException, subprocess.SubprocessError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return figures


def too_slow_to_load(medians: list[float], args: argparse.Namespace) -> bool:
    """Whether the connections together could finish only a couple of answers in the load's time (or none:
    wrk counts only those that end within it), which says nothing a single request does not. Decided on the
    median of the rounds' medians, so that one slow round does not decide for the others."""
    return statistics.median(medians) / 1000 * args.connections > args.duration / 2


def _timed(rounds: list[dict[str, Any]]) -> list[float]:
    return [r["sequential_ms"] for r in rounds if "sequential_ms" in r]


def _median(values: list[float]) -> float:
    """The median of the values that are numbers (a load that finished no request has NaN percentiles)."""
    numbers = [v for v in values if not math.isnan(v)]
    return statistics.median(numbers) if numbers else math.nan


def summarise(entry: dict[str, Any], args: argparse.Namespace) -> None:
    """A request's figures over its rounds: medians of the medians and of the loads, errors and requests summed.

    A request whose median over the rounds is too slow to load (:func:`too_slow_to_load`) is reported as not
    loaded, whatever some rounds did; rounds that failed are left out and named in ``failed``."""
    rounds = entry["rounds"]
    if failed := [r["error"] for r in rounds if "error" in r]:
        entry["failed"] = failed
    timed = _timed(rounds)
    if not timed:
        return
    entry["sequential_ms"] = round(statistics.median(timed), 3)
    if too_slow_to_load(timed, args):
        entry["skipped"] = (f"one answer takes {entry['sequential_ms'] / 1000:.2f} s: not loaded with "
                            f"{args.connections} connections")
        return
    loads = [r["load"] for r in rounds if "load" in r]
    if loads:
        entry["load"] = {"client": loads[0]["client"], "connections": loads[0]["connections"],
                         "duration": round(sum(load["duration"] for load in loads), 3),
                         "requests": sum(load["requests"] for load in loads),
                         "throughput": round(_median([load["throughput"] for load in loads]), 2),
                         "p50_ms": round(_median([load["p50_ms"] for load in loads]), 3),
                         "p99_ms": round(_median([load["p99_ms"] for load in loads]), 3),
                         "errors": sum(load["errors"] for load in loads), "rounds": len(loads)}


def show(name: str, server: str, entry: dict[str, Any], log: Callable[[str], None]) -> None:
    for error in entry.get("failed", []):
        log(f"    {name} on {server}: a round FAILED: {error}")
    if "sequential_ms" not in entry:
        return
    if load := entry.get("load"):
        log(f"    {name} on {server}: {load['throughput']:8.1f} req/s  p50 {load['p50_ms']:7.2f} ms  "
            f"p99 {load['p99_ms']:7.2f} ms  errors {load['errors']}  (alone: {entry['sequential_ms']:.2f} ms)")
    else:
        log(f"    {name} on {server}: {entry['sequential_ms']:.1f} ms per answer; {entry.get('skipped', '')}")


# --- one corpus ---------------------------------------------------------------------------------------------


def first_start(corpus: Corpus, store: Path, logs: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """This server's first start after a build: no model snapshot yet, so the model is read through SPARQL.

    It leaves the snapshot behind; every server measured after it starts from that (``api/readmodel.py``).
    """
    for old in (corpus.root / "data" / ".cache").glob("model-*.pickle"):
        old.unlink()
    with servers.running(servers.anemia_kg(corpus.root, store), logs) as server:
        result = {"startup_s": round(server.startup, 3), "ready_s": round(server.ready, 3)}
        if not list((corpus.root / "data" / ".cache").glob("model-*.pickle")):  # kept before /health says ready
            raise RuntimeError(f"the first start over {corpus.root} left no model snapshot in data/.cache")
    result["peak_rss_mb"] = round(server.peak_rss / 2**20, 1)
    log(f"  anemia-kg, first start: first answer after {server.startup:.2f} s, "
        f"API ready after {server.ready:.2f} s (model read through SPARQL, snapshot kept)")
    return result


def measure_corpus(corpus: Corpus, args: argparse.Namespace, work: Path, log: Callable[[str], None]) -> dict[str, Any]:
    log(f"scale {corpus.scale}: {corpus.triples:,} triples ({corpus.nquads.stat().st_size / 2**20:.1f} MB N-Quads)")
    out: dict[str, Any] = {"scale": corpus.scale, "triples": corpus.triples,
                           "nquads_mb": round(corpus.nquads.stat().st_size / 2**20, 1),
                           "build_s": corpus.build_seconds, "load_s": {}, "servers": []}
    started = time.perf_counter()
    store = ox.Store()
    store.bulk_load(path=str(corpus.nquads), format=ox.RdfFormat.N_QUADS)
    out["load_s"]["pyoxigraph in memory"] = round(time.perf_counter() - started, 3)
    texts = queries()
    expected: dict[str, Any] = {}
    out["inprocess_ms"] = {}
    for name, text in texts.items():
        expected[name], median = inprocess(store, text, args.repeat, args.duration, args.warmup)
        out["inprocess_ms"][name] = round(median, 3)
    started = time.perf_counter()
    k = load_knowledge(select_from_store(store))
    out["paths"] = {"knowledge_load_s": round(time.perf_counter() - started, 3), **path_timings(k, args.repeat)}
    expected.update(api_expected(k, build_graph(k, "causal")))
    del store, k

    out["pyoxigraph_rss_mb"] = pyoxigraph_memory(corpus.nquads)
    ox_store = work / f"oxigraph-{corpus.scale}"
    out["load_s"]["oxigraph load (file)"] = round(servers.oxigraph_load(corpus.nquads, ox_store), 3)
    our_store = work / f"anemia-kg-{corpus.scale}"
    started = time.perf_counter()
    prepare_disk_store(corpus.nquads, our_store)
    out["load_s"]["anemia-kg store (file)"] = round(time.perf_counter() - started, 3)

    sparql = {name: ("sparql", {"query": text}) for name, text in texts.items()}
    specs: list[tuple[servers.ServerSpec, dict[str, Any]]] = []
    for name in args.servers:
        if name == "anemia-kg":
            specs.append((servers.anemia_kg(corpus.root, our_store), {**sparql, **API_REQUESTS}))
        elif name == "anemia-kg-memory":
            specs.append((servers.anemia_kg(corpus.root, None), {**sparql, **API_REQUESTS}))
        elif name == "anemia-kg-cache":
            specs.append((servers.anemia_kg(corpus.root, our_store, cache=True), {**sparql, **API_REQUESTS}))
        elif name == "oxigraph":
            specs.append((servers.oxigraph(ox_store), sparql))
        elif name == "rdflib-endpoint":
            if corpus.triples > args.rdflib_max_triples:
                out["servers"].append({"name": "rdflib-endpoint", "skipped":
                                       f"more than --rdflib-max-triples={args.rdflib_max_triples:,} triples"})
                continue
            specs.append((servers.rdflib_endpoint(corpus.nquads), sparql))
    if any(name.startswith("anemia-kg") for name in args.servers):
        out["first_start"] = first_start(corpus, our_store, work / "logs", log)
    with ExitStack() as stack:  # every server is stopped when this ends, however it ends
        contenders = [start(spec, requests, stack, work / "logs", log) for spec, requests in specs]
        floor = stack.enter_context(servers.running(servers.http_floor(), work / "logs")) if args.floor else None
        if floor is not None:
            floor.sampling.clear()  # its memory is not reported: no walks of /proc beside the timings
        out["http_floor_ms"] = measure_in_turns(contenders, floor, expected, args, log)
        for c in contenders:
            c.result["peak_rss_mb"] = round(c.server.peak_rss / 2**20, 1)
            out["servers"].append(c.result)
    return out


# --- the run ------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gb": round(mem / 2**20, 1), "kernel": platform.release(),
            "python": platform.python_version()}


def versions() -> dict[str, str]:
    found = {}
    for dist in ("anemia-kg", "pyoxigraph", "oxigraph", "rdflib", "rdflib-endpoint", "fastapi", "uvicorn",
                 "httpx", "networkx"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
        found["wrk"] = wrk[0].split()[1] if wrk else "unknown"
    except OSError:
        found["wrk"] = "not installed"
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", default="1,10", help="corpus sizes in articles' worth, comma-separated "
                                                     "(1 = the real article; 320 is about 1,000,000 triples)")
    ap.add_argument("--servers", default="anemia-kg,anemia-kg-cache,oxigraph,rdflib-endpoint",
                    help="comma-separated: anemia-kg, anemia-kg-memory, anemia-kg-cache, oxigraph, rdflib-endpoint")
    ap.add_argument("--duration", type=float, default=3.0,
                    help="seconds of load per request, server and round (wrk takes whole seconds)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="how many times each request is timed and loaded on each server, the servers taking "
                         "turns; figures are the medians over the rounds")
    ap.add_argument("--no-floor", dest="floor", action="store_false",
                    help="do not time the HTTP round trip of a server that does no work (bench/floor.py)")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=50, help="sequential repetitions for the median latencies")
    ap.add_argument("--warmup", type=int, default=20,
                    help="requests sent before the ones timed one at a time (at most a quarter of --duration), "
                         "and untimed in-process evaluations before the timed ones")
    ap.add_argument("--quiet-wait", type=float, default=10.0,
                    help="seconds to wait, before each one-at-a-time timing, for the machine to be idle (less than "
                         "a tenth of a CPU busy; see bench.load.wait_for_quiet); 0: do not wait")
    ap.add_argument("--slow", type=float, default=60.0, help="seconds one answer may take before it is skipped")
    ap.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto")
    ap.add_argument("--rdflib-max-triples", type=int, default=1_100_000)
    ap.add_argument("--corpora", type=Path, default=CORPORA)
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/<date>.json)")
    ap.add_argument("--smoke", action="store_true", help="CI: the real article, 1 s loads; fail on a wrong answer")
    args = ap.parse_args(argv)
    if args.smoke:
        args.scales, args.duration, args.repeat, args.connections, args.rounds, args.warmup = "1", 1.0, 5, 2, 1, 2
        args.quiet_wait = 0.0  # correctness only: the timings are not looked at
    if args.rounds < 1 or args.duration <= 0:
        ap.error("--rounds must be at least 1 and --duration more than 0")
    args.scale_list = [int(s) for s in args.scales.split(",") if s.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    return args


def failures(results: dict[str, Any]) -> list[str]:
    """Every wrong answer or load error of a run, as readable lines."""
    bad = []
    for corpus in results["corpora"]:
        for server in corpus["servers"]:
            for name, entry in server.get("requests", {}).items():
                if entry.get("correct") is False:
                    bad.append(f"scale {corpus['scale']}: {server['name']}: {name}: wrong answer {entry}")
                elif entry.get("correct") is None:
                    bad.append(f"scale {corpus['scale']}: {server['name']}: {name}: {entry.get('skipped')}")
                elif entry.get("failed"):
                    bad.append(f"scale {corpus['scale']}: {server['name']}: {name}: failed {entry['failed']}")
                elif entry.get("load", {}).get("errors"):
                    bad.append(f"scale {corpus['scale']}: {server['name']}: {name}: "
                               f"{entry['load']['errors']} errors under load")
    return bad


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    results: dict[str, Any] = {"started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                               "machine": machine(), "versions": versions(),
                               "settings": {k: getattr(args, k) for k in ("duration", "rounds", "connections",
                                                                          "repeat", "warmup", "slow", "client",
                                                                          "servers", "quiet_wait")},
                               "corpora": []}
    results["settings"]["client"] = args.client if args.client != "auto" else (
        "wrk" if versions()["wrk"] != "not installed" else "httpx")
    with tempfile.TemporaryDirectory(prefix="anemia-kg-bench-") as tmp:
        for scale in args.scale_list:
            corpus = ensure_corpus(scale, args.corpora, log)
            results["corpora"].append(measure_corpus(corpus, args, Path(tmp), log))
    out = args.out or RESULTS / f"{results['started'][:10]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp_out, out)
    log(f"wrote {out}")
    bad = failures(results)
    for line in bad:
        log("FAIL " + line)
    return 1 if bad else 0
