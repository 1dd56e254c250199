"""The servers the benchmark compares, each started on loopback as its own process tree.

* ``anemia-kg``: this project's ``anemia-kg serve``, from a prepared on-disk Oxigraph store (``--store``), or
  with the N-Quads loaded into memory by each worker (``anemia-kg (memory)``);
* ``oxigraph``: the Oxigraph server (``oxigraph serve-read-only``, PyPI package ``oxigraph``) on a file-backed
  store loaded beforehand with ``oxigraph load``, union default graph;
* ``rdflib-endpoint``: ``rdflib-endpoint serve`` (PyPI package ``rdflib-endpoint``), which parses the N-Quads
  into an rdflib ``Dataset`` with a union default graph;
* ``HTTP, no work``: :mod:`bench.floor`, fixed bytes for every request, timed one request at a time only.

Every server answers SPARQL over the union of the dataset's graphs, so the same query text gives the same
answer from each. A :class:`Running` server knows its start-up time (process start to the first correct
answer) and samples the resident memory of its whole process tree (our server's query workers included).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

STARTUP_TIMEOUT = 600.0  # seconds a server may take to answer its first query (rdflib parsing 1M triples: ~30 s)
PROBE = "ASK { ?s ?p ?o }"


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server on one corpus; ``sparql_path`` is where its SPARQL endpoint listens."""

    name: str
    command: list[str]
    port: int
    sparql_path: str
    api: bool = False  # whether it has this project's /api routes

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sparql_url(self) -> str:
        return self.base + self.sparql_path


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def oxigraph_binary() -> str:
    """The ``oxigraph`` command of the PyPI package ``oxigraph`` (beside this Python first)."""
    beside = Path(sys.executable).with_name("oxigraph")
    found = str(beside) if beside.exists() else shutil.which("oxigraph")
    if not found:
        raise SystemExit("the Oxigraph server is not installed: pip install oxigraph (or the project's [bench] extra)")
    return found


def rdflib_endpoint_binary() -> str:
    beside = Path(sys.executable).with_name("rdflib-endpoint")
    found = str(beside) if beside.exists() else shutil.which("rdflib-endpoint")
    if not found:
        raise SystemExit("rdflib-endpoint is not installed: pip install rdflib-endpoint (or the [bench] extra)")
    return found


def anemia_kg(root: Path, store: Path | None, *, cache: bool = False, workers: int = 2) -> ServerSpec:
    """This project's server over the corpus at ``root`` (disk store at ``store``, or in memory)."""
    port = free_port()
    cmd = [sys.executable, "-m", "anemia_kg.cli", "--root", str(root), "serve", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--query-timeout", "60", "--max-rows", "100000"]
    name = "anemia-kg"
    if store is not None:
        cmd += ["--store", str(store)]
    else:
        name += " (memory)"
    if cache:  # the default cache: a repeated request is answered from it
        name += " (cache)"
    else:
        cmd += ["--cache-mb", "0"]
    return ServerSpec(name, cmd, port, "/sparql", api=True)


def http_floor() -> ServerSpec:
    """A server that answers every request with the same bytes (:mod:`bench.floor`): the HTTP round trip alone."""
    port = free_port()
    return ServerSpec("HTTP, no work", [sys.executable, str(Path(__file__).with_name("floor.py")),
                                            "--port", str(port)], port, "/sparql")


def oxigraph(location: Path) -> ServerSpec:
    port = free_port()
    return ServerSpec("oxigraph", [oxigraph_binary(), "serve-read-only", "--location", str(location),
                                   "--bind", f"127.0.0.1:{port}", "--union-default-graph"], port, "/query")


def rdflib_endpoint(nquads: Path) -> ServerSpec:
    port = free_port()
    return ServerSpec("rdflib-endpoint", [rdflib_endpoint_binary(), "serve", str(nquads), "--host", "127.0.0.1",
                                          "--port", str(port)], port, "/")


def oxigraph_load(nquads: Path, location: Path) -> float:
    """Load ``nquads`` into a fresh file-backed Oxigraph store with the server's own ``load``; seconds taken."""
    if location.exists():
        shutil.rmtree(location)
    started = time.perf_counter()
    subprocess.run([oxigraph_binary(), "load", "--location", str(location), "--file", str(nquads)],
                   check=True, capture_output=True)
    return time.perf_counter() - started


# --- memory of a process tree ------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (0 once it is gone)."""
    tree, todo, total = _children(), [pid], 0
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, []))
        try:
            with open(f"/proc/{current}/statm", encoding="ascii") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            pass
    return total


@dataclass
class Running:
    """A started server: its process, start-up time and peak memory sampled every 0.1 s while it runs."""

    spec: ServerSpec
    process: subprocess.Popen[bytes]
    log: Path
    startup: float = 0.0
    ready: float = 0.0  # this project's servers: until /health answers, i.e. the knowledge model is in
    peak_rss: int = 0
    # Servers run side by side and are measured in turns: only the one being measured (or starting) is sampled,
    # as a walk of /proc costs the benchmark's own process a few milliseconds, and an idle server's memory
    # does not grow. The runner sets and clears this around each measurement.
    sampling: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample_memory(self) -> None:
        while not self._stop.is_set():
            if self.sampling.is_set():
                self.peak_rss = max(self.peak_rss, tree_rss(self.process.pid))
            self._stop.wait(0.1)

    def rss(self) -> int:
        return tree_rss(self.process.pid)


@contextmanager
def running(spec: ServerSpec, logs: Path) -> Iterator[Running]:
    """Start ``spec``, wait for its first answer (recording the time), yield it, then stop the whole tree.

    This project's servers answer SPARQL first and read the knowledge model the API needs in the background:
    they are yielded once ``/health`` answers too, so that nothing measured runs beside that start-up work
    (it took a core for 4-6 s at 1M triples, and the first queries measured paid for it).
    """
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{spec.name.replace(' ', '_').replace('(', '').replace(')', '')}-{spec.port}.log"
    with open(log, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(spec.command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Running(spec, process, log)
    server.sampling.set()
    sampler = threading.Thread(target=server.sample_memory, daemon=True)
    sampler.start()
    try:
        server.startup = _wait_first_answer(server, started)
        server.ready = _wait_ready(server, started) if spec.api else server.startup
        yield server
    finally:
        server._stop.set()
        sampler.join()
        _stop(process)


def _wait_first_answer(server: Running, started: float) -> float:
    deadline = started + STARTUP_TIMEOUT
    with httpx.Client(timeout=5.0) as client:
        while time.perf_counter() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.spec.name} exited with {server.process.returncode} before answering; "
                                   f"see {server.log}:\n{server.log.read_text(errors='replace')[-2000:]}")
            try:
                r = client.get(server.spec.sparql_url, params={"query": PROBE},
                               headers={"Accept": "application/sparql-results+json"})
                if r.status_code == 200 and r.json().get("boolean") is True:
                    return time.perf_counter() - started
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.02)
    raise RuntimeError(f"{server.spec.name} gave no answer within {STARTUP_TIMEOUT:.0f} s; see {server.log}")


def _wait_ready(server: Running, started: float) -> float:
    """Seconds from the start until ``/health`` answers 200 (503 while the knowledge model loads)."""
    deadline = started + STARTUP_TIMEOUT
    with httpx.Client(timeout=5.0) as client:
        while time.perf_counter() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.spec.name} exited with {server.process.returncode}; see {server.log}")
            with suppress(httpx.HTTPError):
                if client.get(server.spec.base + "/health").status_code == 200:
                    return time.perf_counter() - started
            time.sleep(0.05)
    raise RuntimeError(f"{server.spec.name}'s /health did not answer within {STARTUP_TIMEOUT:.0f} s; see {server.log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with suppress(subprocess.TimeoutExpired):
        process.wait(10)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
