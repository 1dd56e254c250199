"""Run read-only SPARQL for the API and ``/sparql`` with a time limit that really stops the work, and a row cap.

Two implementations of one small :class:`Executor` protocol:

* :class:`EmbeddedExecutor` evaluates on pyoxigraph inside worker processes. pyoxigraph has no query timeout
  and a running query cannot be interrupted from Python, so the only way to stop one is to kill the process
  that runs it: the parent waits at most ``timeout`` seconds, then SIGKILLs the worker, starts a replacement
  in the background and raises :class:`QueryTimeout`. The other workers keep answering meanwhile. Processes
  also contain crashes: pyoxigraph's parser overflows its stack (SIGSEGV) on deeply nested queries, which
  costs a worker, never the server. The worker protocol, over one pipe per worker: the worker sends
  ``("ready", None)`` or ``("failed", message)`` once loaded; then for each request (a dict) it answers
  ``("started",)`` at once and ``("ok", payload)`` or ``("error", class name, message)`` when done.
* :class:`RemoteExecutor` speaks the SPARQL 1.1 Protocol to another engine (Oxigraph server, Apache Jena
  Fuseki, ...) over httpx; see :mod:`anemia_kg.store` for how to load the dataset there.

Both give the same answers: the default graph is the union of the named graphs unless the caller (or the
query's own ``FROM``) says otherwise, the project's prefixes are predeclared, results are re-serialised by
:mod:`anemia_kg.results`, and ``SERVICE`` is refused, because the engine would open a connection to any host
the query names.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import queue
import re
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol, Self

import httpx
import pyoxigraph as ox

from . import results
from .iris import PREFIXES
from .protocol import GRAPH_TYPES, SOLUTION_TYPES, QueryInfo, inspect_query

log = logging.getLogger(__name__)

PREFIX_MAP = {prefix: str(ns) for prefix, ns in PREFIXES.items()}
SOLUTION_MEDIA = {media.name: media.mime for media in SOLUTION_TYPES}  # SELECT and ASK; the first is the default
GRAPH_MEDIA = {media.name: media.mime for media in GRAPH_TYPES}  # CONSTRUCT and DESCRIBE
WATCH_SECONDS = 0.5  # how often the watcher re-reads the set of workers
GRAPHS_QUERY = "SELECT DISTINCT ?g WHERE { GRAPH ?g {} }"
COUNT_QUERY = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }"
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


class ExecutorError(Exception):
    """A query could not be answered; ``status`` is the HTTP status the application should answer with."""

    status = 500


class QuerySyntaxError(ExecutorError):
    """The query is refused as written: the parser's words with the position, or a forbidden clause."""

    status = 400


class QueryTimeout(ExecutorError):
    """The query ran longer than the limit and was stopped (its worker process was killed)."""

    status = 503


class TooManyRows(ExecutorError):
    """More solutions (or triples) than the row cap. 422: the request is understood but asks for too much;
    413 would blame the request body, which is not what is too large."""

    status = 422


class StoreUnavailable(ExecutorError):
    """The store cannot answer now: remote engine down or slow, workers busy, starting or crashing."""

    status = 503


@dataclass(frozen=True)
class Result:
    """A serialised answer: ``form`` is SELECT, ASK, CONSTRUCT or DESCRIBE."""

    media_type: str
    body: bytes
    form: str


class Executor(Protocol):
    """What the application codes against; both implementations are thread-safe."""

    def execute(self, sparql: str, *, media: str, default_graphs: Sequence[str] | None = None,
                named_graphs: Sequence[str] | None = None, timeout: float | None = None,
                max_rows: int | None = None) -> Result: ...

    def select(self, sparql: str, *, timeout: float | None = None) -> list[dict[str, Any]]: ...

    def graphs(self) -> list[str]: ...

    def triple_count(self) -> int: ...

    def close(self) -> None: ...


# --- what both implementations share --------------------------------------------------------------------

def check_query(sparql: str) -> QueryInfo:
    """Refuse what must never run here, before any engine sees it (the endpoint checks too: defence in depth)."""
    info = inspect_query(sparql)
    if info.uses_service:
        raise QuerySyntaxError("SERVICE (federated query) is not allowed: this endpoint never contacts other hosts")
    if info.is_update:
        raise QuerySyntaxError("this endpoint is read-only: SPARQL Update is not accepted")
    if info.too_complex:  # the parser would overflow its stack and take the worker down with it
        raise QuerySyntaxError(info.too_complex)
    return info


def _check_graphs(graphs: Sequence[str] | None) -> list[str] | None:
    if graphs is None:
        return None
    for graph in graphs:
        try:
            ox.NamedNode(graph)
        except ValueError:
            raise QuerySyntaxError(f"{graph!r} is not an absolute IRI and cannot name a graph") from None
    return list(graphs)


def binding(term: Any) -> dict[str, Any]:
    """A term as in SPARQL 1.1 JSON results.

    >>> binding(ox.Literal("7", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")))
    {'type': 'literal', 'value': '7', 'datatype': 'http://www.w3.org/2001/XMLSchema#integer'}
    """
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    if isinstance(term, ox.Triple):
        return {"type": "triple", "value": {"subject": binding(term.subject), "predicate": binding(term.predicate),
                                            "object": binding(term.object)}}
    raise TypeError(f"not an RDF term: {term!r}")


def rows_of(solutions: ox.QuerySolutions) -> list[dict[str, Any]]:
    """Solutions as SPARQL JSON bindings; unbound variables are left out, as the JSON format does."""
    names = [v.value for v in solutions.variables]
    return [{name: binding(sol[name]) for name in names if sol[name] is not None} for sol in solutions]


def _take(items: Iterable[Any], max_rows: int) -> list[Any]:
    taken = list(itertools.islice(items, max_rows + 1))
    if len(taken) > max_rows:
        raise TooManyRows(f"the result has more than {max_rows} rows; add LIMIT")
    return taken


def render(answer: Any, *, form: str | None, media: str, max_rows: int) -> Result:
    """Serialise pyoxigraph results (solutions, a boolean, or triples) into ``media``, at most ``max_rows``.

    A ``media`` that does not suit the form (the caller guessed the form wrong) falls back to the form's
    default, JSON or Turtle, rather than failing.
    """
    if isinstance(answer, ox.QueryBoolean | ox.QuerySolutions):
        name = media if media in SOLUTION_MEDIA else "json"
        if isinstance(answer, ox.QueryBoolean):
            return Result(SOLUTION_MEDIA[name], results.serialize_boolean(bool(answer), name), "ASK")
        variables = [v.value for v in answer.variables]
        rows = [list(solution) for solution in _take(answer, max_rows)]
        return Result(SOLUTION_MEDIA[name], results.serialize_solutions(variables, rows, name), "SELECT")
    name = media if media in GRAPH_MEDIA else "turtle"
    triples = _take((getattr(t, "triple", t) for t in answer), max_rows)
    body = results.serialize_triples(triples, name, prefixes=PREFIX_MAP)
    return Result(GRAPH_MEDIA[name], body, "DESCRIBE" if form == "DESCRIBE" else "CONSTRUCT")


class _Reads(ABC):
    """graphs() and triple_count() through select(), so both executors answer them the same way."""

    @abstractmethod
    def select(self, sparql: str, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """SPARQL JSON result bindings of a SELECT, for internal use (no row cap)."""

    def graphs(self) -> list[str]:
        """The IRIs of the dataset's named graphs, sorted."""
        return sorted(row["g"]["value"] for row in self.select(GRAPHS_QUERY) if row["g"]["type"] == "uri")

    def triple_count(self) -> int:
        """Quads in the named graphs (the built dataset has nothing in the default graph)."""
        rows = self.select(COUNT_QUERY)
        return int(rows[0]["n"]["value"]) if rows else 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Release workers or connections."""


# --- embedded: pyoxigraph in worker processes -------------------------------------------------------------


def _dataset(own: bool, default_graphs: list[str] | None, named_graphs: list[str] | None) -> dict[str, Any]:
    """pyoxigraph's dataset options; the query's ``own`` FROM / FROM NAMED count only when the caller gave none."""
    if default_graphs is None and named_graphs is None and own:
        return {}
    options: dict[str, Any] = {}
    if default_graphs is None:
        options["use_default_graph_as_union"] = True
    else:
        options["default_graph"] = [ox.NamedNode(g) for g in default_graphs]
    if named_graphs is not None:
        options["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
    return options


def _evaluate(store: ox.Store, request: dict[str, Any]) -> Any:
    """One request inside a worker: ``execute`` gives a :class:`Result`, ``select`` JSON-like rows."""
    sparql = request["sparql"]
    try:
        answer = store.query(sparql, prefixes=PREFIX_MAP, **_dataset(
            request["own_dataset"], request.get("default_graphs"), request.get("named_graphs")))
    except SyntaxError as exc:
        raise QuerySyntaxError(str(exc)) from None
    if request["op"] == "select":
        if not isinstance(answer, ox.QuerySolutions):
            raise QuerySyntaxError("select() takes a SELECT query")
        return rows_of(answer)
    return render(answer, form=request["form"], media=request["media"], max_rows=request["max_rows"])


def _serve(conn: Connection, source: str, kind: str) -> None:
    """A worker process: load the dataset, say ready, then answer requests until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the parent, which kills the workers
    try:
        if kind == "disk":
            store = ox.Store.read_only(source)
        else:
            store = ox.Store()
            store.bulk_load(path=source, format=ox.RdfFormat.N_QUADS)
    except (OSError, SyntaxError, ValueError) as exc:
        conn.send(("failed", f"{source}: cannot open the dataset: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
            conn.send(("started",))
        except (EOFError, OSError):
            return
        try:
            reply: tuple[Any, ...] = ("ok", _evaluate(store, request))
        except ExecutorError as exc:
            reply = ("error", type(exc).__name__, str(exc))
        except Exception as exc:  # evaluation errors come as OSError, ValueError, TypeError, ...
            reply = ("error", "QuerySyntaxError", f"the query failed: {exc}")
        conn.send(reply)


_ERRORS = {cls.__name__: cls for cls in (QuerySyntaxError, QueryTimeout, TooManyRows, StoreUnavailable)}


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False


class EmbeddedExecutor(_Reads):
    """SPARQL on pyoxigraph in ``workers`` processes, each holding the whole dataset.

    ``source`` is a built N-Quads file (each worker bulk-loads it into memory, well under a second for this
    dataset) or an on-disk Oxigraph store folder (opened read-only by every worker; see
    :func:`anemia_kg.store.prepare_disk_store`). Workers are started with the "spawn" method: the server runs
    threads, and forking a process that has threads copies locks that may be held at that instant (logging,
    the allocator, RocksDB), leaving the child to deadlock; a spawned worker starts from a fresh interpreter.

    A request takes a free worker (waiting at most its timeout for one), sends the query over the worker's
    pipe and waits at most ``timeout`` seconds for the answer; then the worker is killed and replaced.
    """

    def __init__(self, source: Path | str, *, workers: int = 2, timeout: float = 5.0, max_rows: int = 10_000,
                 startup_timeout: float = 120.0):
        path = Path(source)
        if path.is_dir():
            self._source = (str(path.resolve()), "disk")
        elif path.is_file():
            self._source = (str(path.resolve()), "nquads")
        else:
            raise StoreUnavailable(f"{path}: no built dataset or store there; run `anemia-kg build` first")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.timeout, self.max_rows, self.size = timeout, max_rows, workers
        self._startup_timeout = startup_timeout
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._cond = threading.Condition()
        self._workers: set[_Worker] = set()  # started and not yet retired, ready or still loading
        self._starting = 0
        self._failure: str | None = None
        self._closed = False
        self._top_up()
        threading.Thread(target=self._watch, name="anemia-kg-worker-watch", daemon=True).start()

    # requests

    def execute(self, sparql: str, *, media: str, default_graphs: Sequence[str] | None = None,
                named_graphs: Sequence[str] | None = None, timeout: float | None = None,
                max_rows: int | None = None) -> Result:
        info = check_query(sparql)
        request = {"op": "execute", "sparql": sparql, "media": media, "form": info.form.value if info.form else None,
                   "own_dataset": "FROM" in info.keywords, "default_graphs": _check_graphs(default_graphs),
                   "named_graphs": _check_graphs(named_graphs),
                   "max_rows": self.max_rows if max_rows is None else max_rows}
        return self._call(request, self.timeout if timeout is None else timeout)

    def select(self, sparql: str, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Rows as SPARQL JSON bindings, for the application's own queries: no row cap."""
        info = check_query(sparql)
        request = {"op": "select", "sparql": sparql, "own_dataset": "FROM" in info.keywords}
        return self._call(request, self.timeout if timeout is None else timeout)

    def _call(self, request: dict[str, Any], timeout: float) -> Any:
        """Send a request to a free worker and wait at most ``timeout`` for its reply.

        A worker acknowledges a request before evaluating it: one that dies before the acknowledgement was
        already dead when it was picked (it is replaced and the request goes to another), one that dies after
        it crashed on this query, which is retried once.
        """
        crashes = 0
        for _attempt in range(self.size + 2):
            worker = self._acquire(timeout)
            started = healthy = False
            try:
                worker.conn.send(request)
                deadline = time.monotonic() + timeout
                reply = _receive(worker, deadline, timeout)
                if reply == ("started",):
                    started = True
                    reply = _receive(worker, deadline, timeout)
                healthy = True
            except (EOFError, OSError):
                crashes += started
                if crashes >= 2:
                    raise StoreUnavailable("the query worker crashed twice while running this query; the query "
                                           "may need more memory than a worker has, so narrow it") from None
                log.warning("a query worker (pid %s) died %s; trying another", worker.process.pid,
                            "while answering" if started else "while idle")
                continue
            finally:
                if healthy:
                    self._release(worker)
                else:
                    self._retire(worker)
            if reply[0] == "ok":
                return reply[1]
            raise _ERRORS.get(reply[1], ExecutorError)(reply[2])
        raise StoreUnavailable("the query workers keep dying; see the server log")

    def _acquire(self, wait: float) -> _Worker:
        """A ready worker, waiting at most ``wait`` seconds for one to become free."""
        deadline = time.monotonic() + wait
        while True:
            with self._cond:
                if self._closed:
                    raise StoreUnavailable("the query executor is closed")
                if self._failure and not any(w.ready for w in self._workers):
                    self._top_up_locked()  # try again in the background, but answer this request now
                    raise StoreUnavailable(self._failure)
            try:
                worker = self._idle.get(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() < deadline:
                    continue
                with self._cond:
                    loading = not any(w.ready for w in self._workers)
                if loading:
                    raise StoreUnavailable("the query workers are still loading the dataset; try again") from None
                raise StoreUnavailable(f"all {self.size} query workers stayed busy for {wait:g} s; try again") from None
            if worker.process.is_alive():
                return worker
            self._retire(worker)

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            closed = self._closed
        if closed:
            _kill(worker)
        else:
            self._idle.put(worker)

    def _retire(self, worker: _Worker) -> None:
        """Kill a worker that timed out or died, and start its replacement in the background."""
        with self._cond:
            self._workers.discard(worker)
        _kill(worker)
        self._top_up()

    # the pool

    def _top_up(self) -> None:
        with self._cond:
            self._top_up_locked()

    def _top_up_locked(self) -> None:
        while not self._closed and len(self._workers) + self._starting < self.size:
            self._starting += 1
            threading.Thread(target=self._start_one, name="anemia-kg-worker-start", daemon=True).start()

    def _watch(self) -> None:
        """Replace a ready worker as soon as it dies, even while it sits idle (killed, out of memory)."""
        while True:
            with self._cond:
                if self._closed:
                    return
                ready = {w.process.sentinel: w for w in self._workers if w.ready}
            for sentinel in multiprocessing.connection.wait(list(ready), timeout=WATCH_SECONDS):
                worker = ready[sentinel]
                with self._cond:
                    gone = self._closed or worker not in self._workers  # closed, or already retired
                if not gone:
                    log.warning("query worker pid %s exited; replacing it", worker.process.pid)
                    self._retire(worker)

    def _start_one(self) -> None:
        """Start one worker and wait (bounded) until it has loaded the dataset; runs in its own thread."""
        worker: _Worker | None = None
        try:
            worker = self._spawn()
            if worker is None:
                return
            if worker.conn.poll(self._startup_timeout):
                reply = worker.conn.recv()
            else:
                reply = ("failed", f"a query worker did not load {self._source[0]} within {self._startup_timeout:g} s")
        except EOFError:
            reply = ("failed", f"a query worker exited (code {worker and worker.process.exitcode}) before loading "
                     "the dataset; a script that starts an EmbeddedExecutor must guard its main code with "
                     "`if __name__ == '__main__':`, as spawned processes import the main module again")
        except Exception as exc:  # OSError from pipes and processes
            reply = ("failed", f"a query worker could not start: {exc!r}")
        with self._cond:
            if reply[0] == "ready" and worker in self._workers:
                worker.ready, self._failure = True, None
                self._idle.put(worker)
            elif reply[0] != "ready":
                log.error("%s", reply[1])
                self._failure = reply[1]
                self._workers.discard(worker)
            self._cond.notify_all()
        if worker is not None and not worker.ready:
            _kill(worker)

    def _spawn(self) -> _Worker | None:
        """Start a worker process and register it; None when the executor was closed meanwhile."""
        with self._cond:
            self._starting -= 1
            if self._closed:
                return None
            parent, child = self._ctx.Pipe()
            process = self._ctx.Process(target=_serve, args=(child, *self._source), name="anemia-kg-query",
                                        daemon=True)
            worker = _Worker(process, parent)
            self._workers.add(worker)
        try:
            process.start()
        except BaseException:
            with self._cond:
                self._workers.discard(worker)
            parent.close()
            raise
        finally:
            child.close()  # the parent keeps no copy, so it sees EOF when the worker dies
        return worker

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until every worker has loaded the dataset; StoreUnavailable if one cannot."""
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._closed or self._failure is not None
                or sum(w.ready for w in self._workers) >= self.size, timeout)
            if self._failure:
                raise StoreUnavailable(self._failure)
            if not done or self._closed:
                raise StoreUnavailable(f"the query workers were not ready within {timeout:g} s")

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the ready workers (for monitoring and tests)."""
        with self._cond:
            return sorted(w.process.pid for w in self._workers if w.ready and w.process.pid)

    def close(self) -> None:
        """Kill every worker; further requests raise StoreUnavailable."""
        with self._cond:
            self._closed = True
            workers, self._workers = list(self._workers), set()
            self._cond.notify_all()
        for worker in workers:
            _kill(worker)


def _receive(worker: _Worker, deadline: float, timeout: float) -> Any:
    if not worker.conn.poll(max(0.0, deadline - time.monotonic())):
        raise QueryTimeout(f"the query ran longer than {timeout:.1f} s and was stopped; narrow it or add LIMIT")
    return worker.conn.recv()


def _kill(worker: _Worker) -> None:
    with contextlib.suppress(ValueError, AssertionError, OSError):  # not started yet, or already closed
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=2)
    worker.conn.close()


# --- remote: a SPARQL 1.1 Protocol endpoint ------------------------------------------------------------

_RESULT_TYPES = {"application/sparql-results+json": ox.QueryResultsFormat.JSON,
                 "application/sparql-results+xml": ox.QueryResultsFormat.XML}
_RDF_TYPES = {"application/n-triples": ox.RdfFormat.N_TRIPLES, "text/plain": ox.RdfFormat.N_TRIPLES,
              "text/turtle": ox.RdfFormat.TURTLE, "application/rdf+xml": ox.RdfFormat.RDF_XML}
_ACCEPT_RESULTS = "application/sparql-results+json, application/sparql-results+xml;q=0.9"
_ACCEPT_RDF = "application/n-triples, text/turtle;q=0.9"
GRAPH_CACHE_SECONDS = 30.0
_DECLARED = re.compile(r"PREFIX\s+([^\s:]*)\s*:", re.IGNORECASE)
_POSITION = re.compile(r"(\berror at |\bline )(\d+)", re.IGNORECASE)  # Oxigraph "error at 2:5", Jena "line 2"


class _Body(io.RawIOBase):
    """A streamed response body for pyoxigraph's parsers that stops at a deadline."""

    def __init__(self, chunks: Iterator[bytes], deadline: float):
        self._chunks, self._deadline, self._rest = chunks, deadline, b""
        self.expired = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._rest:
            if time.monotonic() > self._deadline:
                self.expired = True
                raise TimeoutError("the response took too long")
            self._rest = next(self._chunks, b"")
        size = min(len(buffer), len(self._rest))
        buffer[:size], self._rest = self._rest[:size], self._rest[size:]
        return size


class RemoteExecutor(_Reads):
    """SPARQL on a remote engine over the SPARQL 1.1 Protocol (POST, form-encoded).

    Without ``default_graphs`` the dataset's named graphs are all sent as ``default-graph-uri`` (and as
    ``named-graph-uri``), which by the protocol makes the default graph their merge on any engine; Oxigraph
    server and Fuseki both honour it, so no engine-specific union setting is needed. Redirects are never
    followed. The engine keeps evaluating after we give up unless it has its own limit (Oxigraph server
    ``--timeout-s``, Fuseki ``arq:queryTimeout``).
    """

    def __init__(self, endpoint: str, *, timeout: float = 5.0, max_rows: int = 10_000,
                 client: httpx.Client | None = None):
        url = httpx.URL(endpoint)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) SPARQL endpoint: {endpoint!r}")
        self.endpoint, self.timeout, self.max_rows = endpoint, timeout, max_rows
        self._shown = str(url.copy_with(username=None, password=None))  # never print credentials
        self._client = client or httpx.Client(follow_redirects=False)
        self._owns_client = client is None
        self._lock = threading.Lock()
        self._graph_cache: tuple[float, list[str]] | None = None

    def execute(self, sparql: str, *, media: str, default_graphs: Sequence[str] | None = None,
                named_graphs: Sequence[str] | None = None, timeout: float | None = None,
                max_rows: int | None = None) -> Result:
        info = check_query(sparql)
        form = info.form.value if info.form else None
        limit = self.max_rows if max_rows is None else max_rows
        dataset = self._dataset("FROM" in info.keywords, _check_graphs(default_graphs), _check_graphs(named_graphs))
        text, added = self._prepare(sparql)
        with self._post(text, added, form, dataset, self.timeout if timeout is None else timeout) as (answer, _):
            return render(answer, form=form, media=media, max_rows=limit)

    def select(self, sparql: str, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Rows as SPARQL JSON bindings, for the application's own queries: no row cap."""
        info = check_query(sparql)
        text, added = self._prepare(sparql)
        with self._post(text, added, "SELECT", self._dataset("FROM" in info.keywords, None, None),
                        self.timeout if timeout is None else timeout) as (answer, _):
            if not isinstance(answer, ox.QuerySolutions):
                raise QuerySyntaxError("select() takes a SELECT query")
            return rows_of(answer)

    def graphs(self) -> list[str]:
        return list(self._dataset_graphs(fresh=True))

    def _prepare(self, sparql: str) -> tuple[str, int]:
        """The query with the project's prefixes it uses (and does not declare) declared on one first line, and
        how many lines were added. The query is not parsed here: pyoxigraph's parser overflows the stack and
        kills the process on deeply nested input, which must only ever happen in a worker or on the engine."""
        declared = set(_DECLARED.findall(sparql))
        used = [p for p in PREFIX_MAP if p not in declared and re.search(rf"(?<![\w.:?$-]){p}:", sparql)]
        if not used:
            return sparql, 0
        return " ".join(f"PREFIX {p}: <{PREFIX_MAP[p]}>" for p in used) + "\n" + sparql, 1

    def _dataset_graphs(self, *, fresh: bool = False) -> list[str]:
        """The engine's named graphs, asked at most every GRAPH_CACHE_SECONDS (an empty answer is not kept)."""
        with self._lock:
            cached = self._graph_cache
        if not fresh and cached and time.monotonic() - cached[0] < GRAPH_CACHE_SECONDS:
            return cached[1]
        with self._post(GRAPHS_QUERY, 0, "SELECT", [], self.timeout) as (answer, _):
            if not isinstance(answer, ox.QuerySolutions):
                raise StoreUnavailable(f"the SPARQL endpoint {self._shown} did not answer a SELECT with solutions")
            graphs = sorted(row["g"]["value"] for row in rows_of(answer) if row["g"]["type"] == "uri")
        with self._lock:
            self._graph_cache = (time.monotonic(), graphs) if graphs else None
        return graphs

    def _dataset(self, own: bool, default_graphs: list[str] | None,
                 named_graphs: list[str] | None) -> list[tuple[str, str]]:
        """Protocol dataset parameters giving the same dataset as the embedded executor."""
        if default_graphs is None and named_graphs is None and own:
            return []
        everything = self._dataset_graphs() if default_graphs is None or named_graphs is None else []
        if not everything and default_graphs is None and named_graphs is None:
            return []  # nothing in named graphs: let the engine use its own default graph
        return ([("default-graph-uri", g) for g in (everything if default_graphs is None else default_graphs)]
                + [("named-graph-uri", g) for g in (everything if named_graphs is None else named_graphs)])

    @contextlib.contextmanager
    def _post(self, sparql: str, added_lines: int, form: str | None, dataset: list[tuple[str, str]],
              timeout: float) -> Iterator[tuple[Any, _Body]]:
        """POST the query; yield the parsed answer (lazy: rows are read as they are taken) and its body."""
        accept = {"SELECT": _ACCEPT_RESULTS, "ASK": _ACCEPT_RESULTS, None: f"{_ACCEPT_RESULTS}, {_ACCEPT_RDF}"}
        headers = {"Accept": accept.get(form, _ACCEPT_RDF)}
        deadline = time.monotonic() + timeout
        try:
            with self._client.stream("POST", self.endpoint, data=_form(sparql, dataset), headers=headers,
                                     timeout=httpx.Timeout(timeout), follow_redirects=False) as response:
                self._check(response, deadline, added_lines)
                ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
                body = _Body(response.iter_bytes(), deadline)
                if ctype in _RESULT_TYPES:
                    answer: Any = ox.parse_query_results(body, format=_RESULT_TYPES[ctype])
                elif ctype in _RDF_TYPES:
                    answer = ox.parse(body, format=_RDF_TYPES[ctype])
                else:
                    raise StoreUnavailable(f"the SPARQL endpoint {self._shown} answered with unexpected "
                                           f"content type {ctype!r}")
                try:
                    yield answer, body
                except (SyntaxError, ValueError, OSError) as exc:
                    if body.expired:
                        self._late(timeout)
                    raise StoreUnavailable(f"the SPARQL endpoint {self._shown} sent an unreadable answer: "
                                           f"{exc}") from None
        except httpx.TimeoutException:
            self._late(timeout)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"cannot reach the SPARQL endpoint {self._shown}: {exc}") from None

    def _check(self, response: httpx.Response, deadline: float, added_lines: int) -> None:
        if response.status_code < 300:
            return
        if response.is_redirect:
            raise StoreUnavailable(f"the SPARQL endpoint {self._shown} redirects to "
                                   f"{response.headers.get('location')}; configure the final address")
        text = _text(response, deadline)
        if response.status_code == 400:  # positions as in the caller's text, without the added prefix line
            text = _POSITION.sub(lambda m: f"{m[1]}{max(1, int(m[2]) - added_lines)}", text)
            raise QuerySyntaxError(text or "the SPARQL endpoint rejected the query")
        raise StoreUnavailable(f"the SPARQL endpoint {self._shown} answered {response.status_code}: {text}")

    def _late(self, timeout: float | None) -> Any:
        raise StoreUnavailable(f"the SPARQL endpoint {self._shown} did not answer within "
                               f"{self.timeout if timeout is None else timeout:.1f} s; it is down or overloaded, "
                               "or the query is too heavy (narrow it or add LIMIT)")

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


def _form(sparql: str, dataset: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {"query": sparql}
    for key, value in dataset:
        form.setdefault(key, []).append(value)  # type: ignore[union-attr]
    return form


def _text(response: httpx.Response, deadline: float, limit: int = 2000) -> str:
    """The start of an error body, read within the deadline."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) > limit or time.monotonic() > deadline:
            break
    return data[:limit].decode("utf-8", "replace").strip()
