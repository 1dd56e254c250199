"""A bounded load test of the real server: ``python -m bench.loadtest --requests N``.

It starts ``anemia-kg serve`` on a free loopback port over a project's build (default: this checkout's; the
server builds it first if there is none), computes every expected answer *in-process* (pyoxigraph over the
built N-Quads for SPARQL, the project's own knowledge model and path search for the API, as ``bench.run``
does), checks that a single-request pass gets exactly those answers (and records the pages' bodies), and then
sends a fixed mix of requests at increasing concurrency (1, 4, 16, 64 connections by default):

* SPARQL: four fixed queries (a SELECT with ORDER BY by GET, an aggregate by POST form, an entity's triples by
  POST ``application/sparql-query``, an ASK by GET);
* entity search (``/api/entities``), one entity (``/api/entities/{id}``), ``/api/paths`` and ``/api/explain``;
* the HTML pages ``/``, ``/paths?...``, ``/entity/joint_pain`` and ``/references``.

EVERY response is checked: the SPARQL rows (order-independent) or boolean, the search ids in order, the path
node chains, the explained causes, the entity's relation count, and each page's exact bytes. Per level it
reports requests, throughput, p50/p99 latency, the 5xx count (and how many of those were the documented
"all query workers busy" 503), transport errors and wrong answers, and writes ``bench/results/loadtest-<time>``
``.json`` and ``.md`` with the machine described.

Bounded: ``--requests`` per level (default 1000), loopback only, a per-request timeout, stops by itself.
Exit status 1 if any level has a wrong answer or a transport error, any 5xx at 16 connections or fewer, or a 5xx
other than the "busy" 503 at any level (see docs/reliability.md for why a busy 503 is allowed under overload).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyoxigraph as ox

from anemia_kg.causal import build_graph
from anemia_kg.knowledge import load_knowledge, select_from_store

from .load import percentile
from .run import API_REQUESTS, api_canonical, api_expected, canonical, machine, versions
from .servers import free_port

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SPARQL_JSON = "application/sparql-results+json"
MODERATE = 16  # up to this many connections, any 5xx is a failure
PREFIXES = ("PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
            "PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> "
            "PREFIX akg: <https://w3id.org/anemia-kg/ontology#> ")
SPARQL = {
    # name: (how it is sent, query)
    "sparql-symptoms": ("get", PREFIXES + "SELECT ?entity ?label WHERE { ?entity a akg:Symptom ; rdfs:label ?label } "
                                          "ORDER BY ?entity"),
    "sparql-claims-by-predicate": ("form", PREFIXES + "SELECT ?p (COUNT(?c) AS ?n) WHERE { ?c a akg:Claim ; "
                                                      "rdf:predicate ?p } GROUP BY ?p ORDER BY ?p"),
    "sparql-joint-pain": ("direct", "SELECT ?p ?o WHERE { <https://w3id.org/anemia-kg/entity/joint_pain> ?p ?o }"),
    "sparql-ask": ("get", PREFIXES + "ASK { ?c a akg:Claim ; akg:negated true }"),
}
PAGES = {
    "page-explorer": ("/", {}),
    "page-paths": ("/paths", {"source": "B12 deficiency", "target": "joint pain"}),
    "page-entity": ("/entity/joint_pain", {}),
    "page-references": ("/references", {}),
}
SEARCH = ("/api/entities", {"q": "cramp"})


@dataclass
class Check:
    """One kind of request: how to send it and how to tell whether its answer is right."""

    name: str
    send: Callable[[httpx.AsyncClient], Any]  # returns an awaitable response
    right: Callable[[httpx.Response], bool]


# --- expected answers -------------------------------------------------------------------------------------------


def expected_answers(nquads: Path) -> dict[str, Any]:
    """Every SPARQL and API answer computed in-process from the built N-Quads."""
    store = ox.Store()
    store.bulk_load(path=str(nquads), format=ox.RdfFormat.N_QUADS)
    expected: dict[str, Any] = {}
    for name, (_, query) in SPARQL.items():
        result = store.query(query, use_default_graph_as_union=True)
        expected[name] = canonical(json.loads(result.serialize(format=ox.QueryResultsFormat.JSON).decode()))
    knowledge = load_knowledge(select_from_store(store))
    expected.update(api_expected(knowledge, build_graph(knowledge, "causal")))
    expected["api-search-cramp"] = [e.id for e, _ in knowledge.search(SEARCH[1]["q"], limit=20)]
    return expected


def checks(expected: dict[str, Any], pages: dict[str, str]) -> list[Check]:
    """The request mix, each with its check against ``expected`` (API, SPARQL) or the pages' sha256."""
    mix: list[Check] = []
    for name, (method, query) in SPARQL.items():
        def send(client: httpx.AsyncClient, method: str = method, query: str = query) -> Any:
            headers = {"Accept": SPARQL_JSON}
            if method == "get":
                return client.get("/sparql", params={"query": query}, headers=headers)
            if method == "form":
                return client.post("/sparql", data={"query": query}, headers=headers)
            return client.post("/sparql", content=query.encode(),
                               headers={**headers, "Content-Type": "application/sparql-query"})

        def right(response: httpx.Response, name: str = name) -> bool:
            return (response.headers.get("content-type", "").startswith(SPARQL_JSON)
                    and canonical(response.json()) == expected[name])

        mix.append(Check(name, send, right))
    for name, (path, params) in API_REQUESTS.items():
        mix.append(Check(name, lambda c, path=path, params=params: c.get(path, params=params),
                         lambda r, name=name: api_canonical(name, r.json()) == expected[name]))
    mix.append(Check("api-search-cramp", lambda c: c.get(SEARCH[0], params=SEARCH[1]),
                     lambda r: [hit["id"] for hit in r.json()["results"]] == expected["api-search-cramp"]))
    for name, (path, params) in PAGES.items():
        mix.append(Check(name, lambda c, path=path, params=params: c.get(path, params=params),
                         lambda r, name=name: r.headers.get("content-type", "").startswith("text/html")
                         and hashlib.sha256(r.content).hexdigest() == pages[name]))
    return mix


# --- the server -------------------------------------------------------------------------------------------------


def console_script() -> str:
    beside = Path(sys.executable).with_name("anemia-kg")
    return str(beside) if beside.exists() else "anemia-kg"


@contextlib.contextmanager
def server(root: Path, logs: Path, *, query_timeout: float, workers: int, cache_mb: float = 0,
           start_timeout: float = 300) -> Iterator[str]:
    """``anemia-kg --root ROOT serve`` on a free loopback port until /health answers; stopped (with its process
    group, query workers included) afterwards."""
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    command = [console_script(), "--root", str(root), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--query-timeout", str(query_timeout), "--workers", str(workers), "--cache-mb", str(cache_mb)]
    env = {k: v for k, v in os.environ.items() if k != "ANEMIA_KG_ROOT"}
    with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                   start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {(logs / 'stderr').read_text(errors='replace')}")
            time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(15)


# --- one level --------------------------------------------------------------------------------------------------


def is_busy(response: httpx.Response) -> bool:
    """The documented load-shedding answer: 503 because every query worker stayed busy for the whole timeout."""
    if response.status_code != 503:
        return False
    with contextlib.suppress(ValueError, AttributeError):
        return "busy" in str(response.json().get("detail", ""))
    return False


async def run_level(base: str, mix: list[Check], *, connections: int, requests: int, timeout: float) -> dict[str, Any]:
    """``requests`` requests of the mix (round robin, so every kind is sent about equally) over ``connections``."""
    latencies: list[float] = []
    counts = {"5xx": 0, "busy_503": 0, "other_4xx": 0, "wrong": 0, "transport_errors": 0}
    failures: list[str] = []
    by_kind: dict[str, int] = {}
    kind_latencies: dict[str, list[float]] = {}
    next_index = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < requests:
                index, next_index = next_index, next_index + 1
                check = mix[index % len(mix)]
                by_kind[check.name] = by_kind.get(check.name, 0) + 1
                started = time.perf_counter()
                try:
                    response = await check.send(client)
                except httpx.HTTPError as exc:
                    counts["transport_errors"] += 1
                    failures.append(f"{check.name}: {exc!r}")
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                kind_latencies.setdefault(check.name, []).append(latencies[-1])
                if response.status_code >= 500:
                    counts["5xx"] += 1
                    counts["busy_503"] += is_busy(response)
                    failures.append(f"{check.name}: {response.status_code} {response.text[:200]}")
                elif response.status_code != 200:
                    counts["other_4xx"] += 1
                    failures.append(f"{check.name}: {response.status_code} {response.text[:200]}")
                else:
                    try:
                        right = check.right(response)
                    except (ValueError, KeyError, TypeError):
                        right = False
                    if not right:
                        counts["wrong"] += 1
                        failures.append(f"{check.name}: wrong answer {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    done = sum(by_kind.values())
    return {"connections": connections, "requests": done, "seconds": round(elapsed, 3),
            "throughput_rps": round(done / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(percentile(latencies, 50), 2), "p99_ms": round(percentile(latencies, 99), 2),
            **counts, "by_kind": dict(sorted(by_kind.items())),
            "p50_p99_ms_by_kind": {name: [round(percentile(values, 50), 2), round(percentile(values, 99), 2)]
                                   for name, values in sorted(kind_latencies.items())},
            "failures": failures[:20]}


def level_failures(level: dict[str, Any]) -> list[str]:
    """What makes a level fail (see the module docstring)."""
    problems = []
    if level["wrong"] or level["transport_errors"] or level["other_4xx"]:
        problems.append(f"{level['connections']} connections: {level['wrong']} wrong answers, "
                        f"{level['transport_errors']} transport errors, {level['other_4xx']} unexpected 4xx")
    if level["5xx"] and (level["connections"] <= MODERATE or level["5xx"] != level["busy_503"]):
        problems.append(f"{level['connections']} connections: {level['5xx']} answers 5xx "
                        f"({level['busy_503']} of them 'busy')")
    return problems


# --- the run ----------------------------------------------------------------------------------------------------


def single_pass(base: str, expected: dict[str, Any]) -> dict[str, str]:
    """One request of each kind, one at a time: the in-process answers must be the server's; the pages' sha256."""
    pages: dict[str, str] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, (path, params) in PAGES.items():
            response = client.get(path, params=params)
            if response.status_code != 200 or not response.headers.get("content-type", "").startswith("text/html"):
                raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")
            again = client.get(path, params=params)
            if again.content != response.content:
                raise RuntimeError(f"{name}: the page differs between two requests; it cannot be checked by its bytes")
            pages[name] = hashlib.sha256(response.content).hexdigest()
    mix = checks(expected, pages)

    async def once() -> list[str]:
        wrong = []
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for check in mix:
                response = await check.send(client)
                if response.status_code != 200 or not check.right(response):
                    wrong.append(f"{check.name}: {response.status_code} {response.text[:300]}")
        return wrong

    wrong = asyncio.run(once())
    if wrong:
        raise RuntimeError("the server's answers differ from the in-process ones:\n" + "\n".join(wrong))
    return pages


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Load test, {results['started']}",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gb']} GB RAM, Linux {m['kernel']}, Python {m['python']}. "
        f"Server: `anemia-kg serve --workers {results['server']['workers']} --query-timeout "
        f"{results['server']['query_timeout']} --cache-mb {results['server'].get('cache_mb', 0):g}` on loopback, "
        f"embedded store, {results['server']['triples']} quads. "
        f"Client: `python -m bench.loadtest --requests {results['requests_per_level']}` "
        "(asyncio + httpx, on the same machine).",
        "",
        f"Mix, round robin: {', '.join(results['mix'])}. Every answer checked against the expected one.",
        "",
        "| connections | requests | throughput (req/s) | p50 (ms) | p99 (ms) | 5xx | of which busy 503 | wrong answers "
        "| transport errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in results["levels"]:
        lines.append(f"| {level['connections']} | {level['requests']} | {level['throughput_rps']} | {level['p50_ms']} "
                     f"| {level['p99_ms']} | {level['5xx']} | {level['busy_503']} | {level['wrong']} "
                     f"| {level['transport_errors']} |")
    lines += ["", f"Verdict: {'PASS' if not results['failures'] else 'FAIL: ' + '; '.join(results['failures'])}", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.loadtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per concurrency level (default 1000)")
    parser.add_argument("--levels", default="1,4,16,64", help="connection counts, comma-separated")
    parser.add_argument("--root", type=Path, default=REPO, help="project folder to serve (default: this checkout)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where loadtest-<time>.json/.md go")
    parser.add_argument("--query-timeout", type=float, default=5.0, help="the server's --query-timeout")
    parser.add_argument("--workers", type=int, default=2, help="the server's --workers")
    parser.add_argument("--cache-mb", type=float, default=0, help="the server's --cache-mb (default 0: no response "
                        "cache, so that every request does its work; the server's own default is 64)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one request may take (client side)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.requests > 1_000_000:
        parser.error("--requests must be between 1 and 1,000,000")
    args.levels = [int(n) for n in args.levels.split(",")]
    if any(n < 1 or n > 512 for n in args.levels):
        parser.error("each level must be between 1 and 512 connections")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = args.root.resolve()
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="anemia-kg-loadtest-") as logs, \
            server(root, Path(logs), query_timeout=args.query_timeout, workers=args.workers,
                   cache_mb=args.cache_mb) as base:
        nquads = root / "data" / "build" / "anemia-kg.nq"  # built by the server if it was missing
        expected = expected_answers(nquads)
        pages = single_pass(base, expected)
        mix = checks(expected, pages)
        levels = []
        for connections in args.levels:
            level = asyncio.run(run_level(base, mix, connections=connections, requests=args.requests,
                                          timeout=args.timeout))
            print(f"{connections:>4} connections: {level['requests']} requests, {level['throughput_rps']} req/s, "
                  f"p50 {level['p50_ms']} ms, p99 {level['p99_ms']} ms, 5xx {level['5xx']} "
                  f"(busy {level['busy_503']}), wrong {level['wrong']}, errors {level['transport_errors']}",
                  flush=True)
            levels.append(level)
        health = httpx.get(f"{base}/health", timeout=30).json()
    report = json.loads((root / "data" / "build" / "build-report.json").read_text(encoding="utf-8"))
    failures = [problem for level in levels for problem in level_failures(level)]
    results = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {**machine(), "load_average_at_start": os.getloadavg()[0]},
        "versions": versions(),
        "server": {"workers": args.workers, "query_timeout": args.query_timeout, "cache_mb": args.cache_mb,
                   "store": health.get("store"),
                   "triples": report["triples"]},
        "requests_per_level": args.requests,
        "mix": [check.name for check in mix],
        "levels": levels,
        "failures": failures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"loadtest-{started.strftime('%Y%m%dT%H%M%SZ')}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(markdown(results), encoding="utf-8")
    print(f"wrote {stem}.json and {stem}.md")
    for problem in failures:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
