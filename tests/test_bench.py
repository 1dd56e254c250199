"""The benchmark suite at its smallest size, as CI runs it: every server gives the right answers.

``python -m bench --smoke`` builds the real article's corpus, starts this project's server, the Oxigraph
server and rdflib-endpoint on loopback one after the other and keeps them running side by side, checks every
benchmark request against the answer computed in-process and puts one second of load on each, the servers
taking turns. This asserts correctness and that the
report can be written from the results; it never asserts a timing (the machines are small and noisy).
"""

from __future__ import annotations

import argparse
import http.server
import json
import math
import socket
import subprocess
import sys
import threading
import time
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


def test_a_request_s_rounds_are_summed_up_by_their_medians() -> None:
    def round_(alone: float, rate: float, p99: float, errors: int = 0) -> dict[str, object]:
        return {"sequential_ms": alone, "load": {"client": "wrk", "connections": 4, "duration": 2.0, "requests": 100,
                                                 "throughput": rate, "p50_ms": alone, "p99_ms": p99, "errors": errors}}

    args = argparse.Namespace(connections=4, duration=2.0)
    entry = {"correct": True, "rounds": [round_(1.0, 900.0, 9.0), round_(3.0, 100.0, 2.0, errors=1),
                                         round_(2.0, 500.0, 5.0), round_(8.0, 0.0, math.nan)]}
    entry["rounds"][3]["load"]["requests"] = 0  # a load that finished nothing: its percentiles are NaN
    run.summarise(entry, args)
    assert entry["sequential_ms"] == 2.5
    assert entry["load"] == {"client": "wrk", "connections": 4, "duration": 8.0, "requests": 300, "throughput": 300.0,
                             "p50_ms": 2.5, "p99_ms": 5.0, "errors": 1, "rounds": 4}
    # the decision not to load rests on the rounds' median, not on one round: here 1.2 s an answer, and four
    # connections would finish a couple of answers in a 2 s load
    slow = {"correct": True, "rounds": [round_(400.0, 9.0, 900.0), {"sequential_ms": 1200.0},
                                        {"sequential_ms": 1500.0}]}
    run.summarise(slow, args)
    assert slow["sequential_ms"] == 1200.0 and "load" not in slow and "1.20 s: not loaded" in slow["skipped"]
    # a round that failed is left out of the figures and named, and the run reports it as a failure
    broken = {"correct": True, "rounds": [round_(1.0, 900.0, 9.0), {"error": "RemoteDisconnected: gone"}]}
    run.summarise(broken, args)
    assert broken["sequential_ms"] == 1.0 and broken["load"]["rounds"] == 1
    assert broken["failed"] == ["RemoteDisconnected: gone"]
    results = {"corpora": [{"scale": 1, "servers": [{"name": "x", "requests": {"q": broken}}]}]}
    assert run.failures(results) == ["scale 1: x: q: failed ['RemoteDisconnected: gone']"]


class _SlowAtFirst(http.server.BaseHTTPRequestHandler):
    """Answers its server's first three requests after 60 ms, the others at once; counts them all."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the benchmark's client uses it

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.server.seen += 1  # type: ignore[attr-defined]
        if self.server.seen <= 3:  # type: ignore[attr-defined]
            time.sleep(0.06)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("warmup", [0, 3])
def test_one_at_a_time_timing_sends_the_warm_up_requests_and_leaves_them_out(warmup: int) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowAtFirst)
    server.seen = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/x"
        median, count = load.sequential_median(url, {}, repeat=5, budget=10, timeout=5, warmup=warmup)
    finally:
        server.shutdown()
        server.server_close()
    assert count == 5 and server.seen == 5 + warmup  # type: ignore[attr-defined]
    if warmup:  # the three slow answers were the warm-up
        assert median < 50
    else:  # three of the five timed answers were slow
        assert median >= 60


class _Framings(http.server.BaseHTTPRequestHandler):
    """Answers ``/length``, ``/chunked`` (three chunks and a trailer) and ``/close`` (no length: the body ends
    with the connection); records each request line and how many connections it took (by client port)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.server.seen.append((self.path, self.headers.get("Accept"), self.client_address[1]))  # type: ignore[attr-defined]
        self.send_response(200 if self.path != "/missing" else 404)
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"ab", b"c" * 300, b"d"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
        elif self.path == "/close":
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"x" * 5000)
            self.close_connection = True
        else:
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"abc")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("path", "connections"), [("/length", 1), ("/chunked", 1), ("/close", 4)])
def test_the_one_at_a_time_client_reads_every_framing_to_its_end(path: str, connections: int) -> None:
    """Every answer is read whole (else the next one would be misread) and kept-alive connections are reused."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Framings)
    server.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        client = load.Answers(url, {"Accept": "text/csv"}, timeout=5)
        statuses = [client.get() for _ in range(4)]
        client.close()
        with pytest.raises(RuntimeError, match="HTTP 404"):
            load.sequential_median(url.replace(path, "/missing"), {}, repeat=2, budget=5, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    seen = server.seen[:4]  # type: ignore[attr-defined]
    assert statuses == [200] * 4
    assert [(p, a) for p, a, _ in seen] == [(path, "text/csv")] * 4
    assert len({conn for _, _, conn in seen}) == connections


def test_the_targets_table_gives_each_target_its_verdict_from_the_run() -> None:
    def server(name: str, rates: dict[str, float], alone: dict[str, float], **extra: object) -> dict[str, object]:
        requests = {n: {"correct": True, "sequential_ms": alone.get(n, 1.0),
                        **({"load": {"throughput": r, "p50_ms": 1.0, "p99_ms": 12.0 if n == "api-search" else 3.0,
                                     "errors": 0}} if r else {})}
                    for n, r in rates.items()}
        return {"name": name, "requests": requests, **extra}

    queries = {"q1": 1.0, "q2": 2.0}
    article = {"scale": 1, "triples": 5_000, "inprocess_ms": queries, "paths": {"median_ms": {"a->b": 0.2}},
               "pyoxigraph_rss_mb": 100.0, "servers": [
                   server("anemia-kg", {"q1": 2_000, "q2": 500, "api-paths": 1_500, "api-search": 1_200,
                                        "api-entity": 2_000}, {"q1": 1.4, "q2": 4.0},
                          startup_s=2.5, ready_s=3.0, peak_rss_mb=140.0),
                   server("oxigraph", {"q1": 1_000, "q2": 2_000}, {}),
                   server("rdflib-endpoint", {"q1": 100, "q2": 0}, {"q2": 100.0})]}
    lines = report.targets_table({"corpora": [article]})
    verdicts = {tuple(cell.strip() for cell in line.split("|")[1:3]): line.rsplit("|", 2)[1].strip()
                for line in lines[2:]}
    # rdflib: q1 20x, q2 (one at a time, 10 answers/s) 50x -> 31.6x; Oxigraph: 2x and 0.25x -> 0.71x
    assert "31.6x" in lines[2] and verdicts[("`/sparql` ≥ 10x rdflib-endpoint (article scale)", "anemia-kg")] == "yes"
    assert verdicts[("`/sparql` ≥ 0.5x oxigraph (article scale)", "anemia-kg")] == "yes"
    api = "`/api/paths`, `/api/entities` ≥ 1,000 requests/s, p99 < 10 ms (article scale)"
    assert verdicts[(api, "anemia-kg")] == "no"  # the search's p99 is 12 ms
    alone = next(line for line in lines if "≤ 1.5x pyoxigraph in-process" in line)
    assert "1 of 2; not: q2 2.00x" in alone and alone.endswith("| no |")
    assert verdicts[("start-up to first answer < 2 s from the on-disk store (5,000 triples)", "anemia-kg")] == "no"
    assert verdicts[("memory ≤ 1.5x pyoxigraph's (5,000 triples)", "anemia-kg")] == "yes"  # 1.4x
    assert verdicts[("path search median < 5 ms (5,000 triples)", "in-process")] == "yes"
    # a wrong answer never counts as met: the query is named, and the rows of a missing API answer stay
    ours = article["servers"][0]["requests"]
    ours["q2"] = {"correct": False}
    ours["api-search"] = {"correct": False}
    lines = report.targets_table({"corpora": [article]})
    oxigraph = next(line for line in lines if "0.5x oxigraph" in line)
    assert "2x over 1 of 2 queries; no right answer to q2" in oxigraph and oxigraph.endswith("| no |")
    api_row = next(line for line in lines if line.startswith(f"| {api} |"))
    assert "no right answer or no load for api-search" in api_row and api_row.endswith("| no |")
    assert "not: q2 no figure" in next(line for line in lines if "≤ 1.5x pyoxigraph in-process" in line)


def test_the_floor_server_answers_every_request_of_a_keep_alive_connection() -> None:
    port = run.servers.free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "floor.py"), "--port", str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline and proc.poll() is None, "bench/floor.py did not listen"
                time.sleep(0.05)
        with sock:  # two requests in one write, then a third: three answers, in order
            head = b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\nHost: x\r\n\r\n"
            sock.sendall(head * 2)
            sock.sendall(head)
            answer = b""
            while answer.count(b"HTTP/1.1 200 OK") < 3 or not answer.endswith(b"}"):
                chunk = sock.recv(4096)
                assert chunk, answer
                answer += chunk
        parts = answer.split(b"HTTP/1.1 200 OK")[1:]
        assert len(parts) == 3
        for part in parts:
            assert part.endswith(b'\r\n\r\n{"head":{},"boolean":true}')
            assert b"Content-Length: 26\r\n" in part
    finally:
        proc.kill()
        proc.wait()


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
            assert entry["load"]["rounds"] == len(entry["rounds"]) == results["settings"]["rounds"] == 1
        assert server["startup_s"] > 0 and server["peak_rss_mb"] > 0
        # this project's servers are measured once their API is up too (its knowledge model loads after SPARQL)
        assert server["ready_s"] >= server["startup_s"]
    # the first start after the build read the model through SPARQL and left the snapshot the others started from
    first = corpus["first_start"]
    assert first["ready_s"] >= first["startup_s"] > 0 and first["peak_rss_mb"] > 0
    assert {name: s["model"] for name, s in names.items() if name.startswith("anemia-kg")} == {
        "anemia-kg": "snapshot", "anemia-kg (cache)": "snapshot"}
    assert run.failures(results) == []
    # the server that does no work was timed beside them, for every query
    assert set(corpus["http_floor_ms"]) == queries and all(ms > 0 for ms in corpus["http_floor_ms"].values())


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
    assert "| HTTP, no work ms |" in text and "1 round of 1 s per request and server" in text
    assert "### Issue 5's targets in this run (computed by bench/report.py)" in text
    assert "| path search median < 5 ms (4,924 triples) | in-process |" in text
    assert "| anemia-kg, first start after a build (disk store; model read through SPARQL, no snapshot yet) |" in text
    assert png.read_bytes().startswith(b"\x89PNG")


def test_waiting_for_quiet_sees_a_busy_cpu_and_gives_up_at_its_bound() -> None:
    """A process spinning on one CPU is seen as about one busy CPU; the wait ends at ``max_wait`` regardless."""
    spin = "import time\nend = time.time() + 20\nwhile time.time() < end: pass"
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.2)
        waited, busy = load.wait_for_quiet(limit=0.5, window=0.2, max_wait=0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy >= 0.5 and 0.5 <= waited < 20
    assert load.wait_for_quiet(max_wait=0) == (0.0, pytest.approx(float("nan"), nan_ok=True))
