"""The benchmark suite at its smallest size, as CI runs it: every server gives the right answers.

``python -m bench --smoke`` builds the real article's corpus, starts this project's server, the Oxigraph
server and rdflib-endpoint on loopback one after the other, checks every benchmark request against the
answer computed in-process and puts one second of load on each. This asserts correctness and that the
report can be written from the results; it never asserts a timing (the machines are small and noisy).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `bench` is a folder of the repository, not an installed package

from bench import load, report, run  # noqa: E402

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:8000/sparql
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.20ms  20.00ms   90.00%
    Req/Sec     1.00k   100.00     1.20k    70.00%
  Latency Distribution
     50%  850.00us
     75%    2.30ms
     90%    3.00ms
     99%    1.20s
  10000 requests in 5.00s, 3.00MB read
  Non-2xx or 3xx responses: 5
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:   2000.50
Transfer/sec:    600.00KB
"""


def test_wrk_report_is_read_with_units_and_every_kind_of_error() -> None:
    got = load.parse_wrk(WRK_OUTPUT, connections=4, duration=5)
    assert (got.requests, got.throughput, got.p50_ms, got.p99_ms, got.errors) == (10000, 2000.5, 0.85, 1200.0, 8)


def test_a_wrk_report_without_figures_is_an_error() -> None:
    with pytest.raises(ValueError, match="unexpected wrk output"):
        load.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n", connections=4, duration=5)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert load.percentile(values, 50) == 50.0
    assert load.percentile(values, 99) == 99.0
    assert math.isnan(load.percentile([], 50))


def test_answers_are_compared_whatever_the_row_order_and_extra_fields() -> None:
    a = {"head": {"vars": ["x", "y"]}, "results": {"bindings": [
        {"x": {"type": "uri", "value": "u:1"}, "y": {"type": "literal", "value": "2",
                                                   "datatype": "http://www.w3.org/2001/XMLSchema#integer"}},
        {"x": {"type": "uri", "value": "u:0"}}]}}
    b = {"head": {"vars": ["x", "y"]}, "results": {"bindings": [
        {"x": {"type": "uri", "value": "u:0"}},
        {"y": {"type": "literal", "value": "2"}, "x": {"type": "uri", "value": "u:1"}}]}}
    assert run.canonical(a) == run.canonical(b)
    assert run.canonical({"head": {}, "boolean": True}) is True
    b["results"]["bindings"].pop()
    assert run.canonical(a) != run.canonical(b)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    corpora = tmp_path_factory.mktemp("corpora")
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(out), "--corpora", str(corpora)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    return proc, out


def test_smoke_run_gives_every_right_answer_from_every_server(smoke: tuple[subprocess.CompletedProcess[str], Path]
                                                              ) -> None:
    proc, out = smoke
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(out.read_text())
    (corpus,) = results["corpora"]
    assert corpus["scale"] == 1 and corpus["triples"] > 4000
    names = {s["name"]: s for s in corpus["servers"]}
    assert set(names) == {"anemia-kg", "anemia-kg (cache)", "oxigraph", "rdflib-endpoint"}
    queries = set(run.queries())
    assert len(queries) >= 7
    for name, server in names.items():
        expected = queries | (set(run.API_REQUESTS) if name.startswith("anemia-kg") else set())
        assert set(server["requests"]) == expected
        for request, entry in server["requests"].items():
            assert entry["correct"] is True, (name, request, entry)
            assert entry["sequential_ms"] > 0, (name, request, entry)
            if "load" not in entry:  # a peer too slow for a 1 s load (rdflib's two-hop join: ~0.5 s an answer)
                assert not name.startswith("anemia-kg") and "not loaded" in entry["skipped"], (name, request, entry)
                continue
            assert entry["load"]["requests"] > 0 and entry["load"]["errors"] == 0, (name, request, entry)
        assert server["startup_s"] > 0 and server["peak_rss_mb"] > 0
        # this project's servers are measured once their API is up too (its knowledge model loads after SPARQL)
        assert server["ready_s"] >= server["startup_s"]
    # the first start after the build read the model through SPARQL and left the snapshot the others started from
    first = corpus["first_start"]
    assert first["ready_s"] >= first["startup_s"] > 0 and first["peak_rss_mb"] > 0
    assert {name: s["model"] for name, s in names.items() if name.startswith("anemia-kg")} == {
        "anemia-kg": "snapshot", "anemia-kg (cache)": "snapshot"}
    assert run.failures(results) == []


def test_smoke_results_render_into_the_report_and_plot(smoke: tuple[subprocess.CompletedProcess[str], Path],
                                                       tmp_path: Path) -> None:
    _, out = smoke
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nanalysis\n\n{report.START}\nold\n{report.END}\n\nmore analysis\n")
    png = tmp_path / "plot.png"
    assert report.main([str(out), "--doc", str(doc), "--plot", str(png)]) == 0
    text = doc.read_text()
    assert "old" not in text and text.startswith("# Benchmarks\n\nanalysis") and text.endswith("more analysis\n")
    assert "| 01-one-join |" in text and "anemia-kg / oxigraph" in text
    assert "| anemia-kg, first start after a build (disk store; model read through SPARQL, no snapshot yet) |" in text
    assert png.read_bytes().startswith(b"\x89PNG")
