"""SPARQL on pyoxigraph inside worker processes, with a time limit that really stops the work.

pyoxigraph has no query timeout and a running query cannot be interrupted from Python, so the only way to stop
one is to kill the process that runs it: the parent waits at most ``timeout`` seconds, then SIGKILLs the worker,
starts a replacement in the background and raises :class:`QueryTimeout`. The other workers keep answering
meanwhile. Processes also contain crashes: pyoxigraph's parser overflows its stack (SIGSEGV) on deeply nested
queries, which costs a worker, never the server.

The worker protocol, over one pipe per worker: the worker sends ``("ready", None)`` or ``("failed", message)``
once loaded; then for each request (a dict with a sequence number ``seq``) it writes ``seq`` into a shared
memory word, the worker's ``started``, and answers ``("ok", payload)`` or ``("error", class name, message)``
when done. The shared word, not a message, tells a worker that crashed on this query from one that was dead
before it was picked, so a query is one message each way (an acknowledgement over the pipe cost the server a
wake-up and a read more per query). Workers are spawned and import :func:`_serve` from this module by its
path, so it must stay a module-level function here.

Two ways in, one pool: :meth:`EmbeddedExecutor.execute` blocks a thread until the worker answers (the knowledge
model and scripts use it), :meth:`EmbeddedExecutor.aexecute` awaits the worker's pipe on the event loop. The
server's ``/sparql`` uses the latter: handing every request to a thread and back cost the server about a third
of its throughput (``docs/benchmarks.md``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import functools
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, cast

import pyoxigraph as ox

from ..protocol import syntax_message
from .common import (
    PREFIX_MAP,
    ExecutorError,
    QuerySyntaxError,
    QueryTimeout,
    QueryTooLarge,
    Result,
    StoreUnavailable,
    TooManyRows,
    _check_graphs,
    _Reads,
    check_query,
    render,
    rows_of,
)

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.5  # how often the watcher re-reads the set of workers
MEMORY_POLL_SECONDS = 0.1  # how often the memory guard reads the workers' resident memory
OOM_SCORE_ADJ = 500  # a worker is what the kernel's out-of-memory killer should take first (see _serve)
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when the thread that started it ends (<linux/prctl.h>)


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
    dataset = _dataset(request["own_dataset"], request.get("default_graphs"), request.get("named_graphs"))

    def evaluate() -> Any:
        try:
            return store.query(sparql, prefixes=_prefixes_named(sparql), **dataset)
        except SyntaxError as exc:
            raise QuerySyntaxError(syntax_message(sparql, str(exc))) from None

    answer = evaluate()
    if request["op"] == "select":
        if not isinstance(answer, ox.QuerySolutions):
            raise QuerySyntaxError("select() takes a SELECT query")
        return rows_of(answer)
    result = render(answer, form=request["form"], media=request["media"], max_rows=request["max_rows"],
                    again=evaluate)
    return result.media_type, result.body, result.form  # a tuple pickles and unpickles in a third of the time


@functools.lru_cache(maxsize=256)
def _prefixes_named(sparql: str) -> dict[str, str] | None:
    """The project's prefixes whose ``name:`` occurs in the text: the ones a query may use without declaring.

    pyoxigraph parses every IRI of the map it is given for each query (8 microseconds for all sixteen, a tenth
    of a cheap query); a prefix named nowhere in the text cannot be used, one named only in a string costs
    nothing more, and the query's own PREFIX lines take precedence over the map as before.
    """
    named = {prefix: iri for prefix, iri in PREFIX_MAP.items() if f"{prefix}:" in sparql}
    return named or None


def _serve(conn: Connection, source: str, kind: str, started: Any, name: str, server: int) -> None:
    """A worker process: load the dataset, say ready, then answer requests until the pipe closes.

    ``started`` is the shared ``ctypes`` word where the worker notes the ``seq`` of the request it took;
    ``name`` is the dataset's path as the user knows it (``source`` may be a descriptor's, see ``_pin``);
    ``server`` is the process id of the server that started it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the parent, which kills the workers
    # Should the machine run out of memory all the same (no limit set, or faster than the guard looks), a worker
    # is what the kernel kills first, not the server or another program: a worker is replaced in a second.
    with contextlib.suppress(OSError):  # not Linux
        Path("/proc/self/oom_score_adj").write_text(str(OOM_SCORE_ADJ))
    _no_wakeup_preemption()
    _own_session(server)
    try:
        if kind == "disk":
            store = ox.Store.read_only(source)
        else:
            store = ox.Store()
            store.bulk_load(path=source, format=ox.RdfFormat.N_QUADS)
    except (OSError, SyntaxError, ValueError) as exc:
        _send(conn, ("failed", f"{name}: cannot open the dataset: {exc}"))
        return
    _send(conn, ("ready", None))
    fd, pending = conn.fileno(), bytearray()
    while True:
        try:
            request = _next_request(fd, pending)
        except OSError:
            return
        if request is None:  # the parent closed the pipe
            return
        started.value = request["seq"]
        try:
            reply: tuple[Any, ...] = ("ok", _evaluate(store, request))
        except ExecutorError as exc:
            reply = ("error", type(exc).__name__, str(exc))
        except Exception as exc:  # evaluation errors come as OSError, ValueError, TypeError, ...
            reply = ("error", "QuerySyntaxError", f"the query failed: {exc}")
        _send(conn, reply)


def _no_wakeup_preemption() -> None:
    """Run this worker (and the threads it starts later) under ``SCHED_BATCH``: same share of the CPU, but woken
    by a request it does not preempt the process that woke it.

    Under the normal policy the event loop's write of a query to a worker's pipe often handed its core to the
    worker there and then, with the loop's answer to the previous client still unsent; the worker then waited
    for the loop in turn. As batch tasks the workers take the other core or wait for the loop's next sleep:
    on 2 cores, measured side by side, 5,600-5,970 → 7,700-8,100 requests/s on the one-join query at article
    scale, 13-15% less CPU per query, and every benchmark query as fast or faster (docs/benchmarks.md). No
    privilege is needed; where the system has no such policy, the worker keeps the normal one.
    """
    with contextlib.suppress(AttributeError, OSError):  # not Linux
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _own_session(server: int) -> None:
    """Move this worker to a session of its own, and make sure it dies with the server all the same.

    Linux schedules each session as one group (autogroups, on by default): the CPU is shared fairly between
    groups first, and a group's share on each core follows where its processes ran lately. In the server's
    session, a worker woken on the other core got the small share its group had there, behind the client's
    group: with the server started in a session of its own (as a service is, and as the benchmark starts it),
    5,400-5,600 requests/s on the one-join query at article scale; with each worker in its own session,
    7,200-7,400, as fast as when everything shared one session (docs/benchmarks.md).

    A worker in another session has also left the server's process group, so stopping that group (Ctrl+C in
    a terminal, ``kill -- -PGID``, a test harness) no longer reaches it. So the kernel is first asked to
    SIGKILL the worker when the thread that started it ends (``PR_SET_PDEATHSIG``; the executor starts every
    worker from one thread that lives as long as it does), which holds however the server ends, even
    ``kill -9``; a worker whose server is already gone exits; and where that request fails (not Linux), the
    worker stays in the server's session.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]  # prctl(int option, unsigned long arg2, ...)
        if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):  # no C library to load, or no prctl in it
        return
    if os.getppid() != server:  # the server ended before the request above took effect
        os._exit(0)
    with contextlib.suppress(OSError):
        os.setsid()


def _send(conn: Connection, message: Any) -> None:
    """``conn.send(message)`` without multiprocessing's ForkingPickler, whose set-up for each message was 2% of
    the event loop's time on a cheap query: the messages are tuples and dicts of plain values, which the
    standard pickler writes alike. The framing is still Connection's, which every reader here expects."""
    conn.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))


def _next_request(fd: int, pending: bytearray) -> Any:
    """The parent's next request, None at the end of the pipe: one read for most requests, where
    ``Connection.recv()`` makes two (the length, then the rest), and a system call is dear on these machines."""
    while (message := _take_message(pending)) is _INCOMPLETE:
        data = os.read(fd, READ_SIZE)
        if not data:
            return None
        pending += data
    return message


_SEQ = itertools.count(1)  # request numbers, unique in this process (next() on a count is atomic under the GIL)

_ERRORS = {cls.__name__: cls for cls in (QuerySyntaxError, QueryTimeout, TooManyRows, StoreUnavailable)}


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    started: Any  # shared c_longlong: the seq of the last request the worker took (see the module docstring)
    # The event loop that watches this worker's pipe, if one does (see _attach): its reader stays registered
    # from one call to the next, and only a call on that loop, on its thread, may hold the worker meanwhile.
    loop: asyncio.AbstractEventLoop | None = None
    inbox: asyncio.Future[Any] | None = None  # the answer the call holding it awaits
    pending: bytearray = field(default_factory=bytearray)  # bytes read from the pipe, not yet a whole message
    nonblocking: bool = False  # left so by an event loop's reader; execute() needs it blocking again
    baseline: int = 0  # resident bytes once it had loaded the dataset, before any query
    stopped_for: str | None = None  # why the memory guard killed it: the answer of the query it was running
    ready: bool = False
    idle: bool = False  # in the idle stack; otherwise a call holds it (or is being handed it) and owns its pipe
    killed: bool = False  # set once, under _KILLING, by the one thread that kills it


# A caller waiting for a free worker: an aexecute() as its event loop and an asyncio future, an execute() as a
# concurrent.futures future. One queue for both, oldest first, so neither kind can starve the other.
_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[_Worker]"] | concurrent.futures.Future["_Worker"]


class EmbeddedExecutor(_Reads):
    """SPARQL on pyoxigraph in ``workers`` processes, each holding the whole dataset.

    ``source`` is a built N-Quads file (each worker bulk-loads it into memory, well under a second for this
    dataset) or an on-disk Oxigraph store folder (opened read-only by every worker; see
    :func:`anemia_kg.store.prepare_disk_store`). Workers are started with the "spawn" method: the server runs
    threads, and forking a process that has threads copies locks that may be held at that instant (logging,
    the allocator, RocksDB), leaving the child to deadlock; a spawned worker starts from a fresh interpreter.

    A request takes a free worker (waiting at most its timeout for one), sends the query over the worker's
    pipe and waits at most ``timeout`` seconds for the answer; then the worker is killed and replaced.
    With ``query_memory`` (bytes; 0 for no limit) a worker whose resident memory grows more than that above
    what it held once loaded is killed too, and its query gets :class:`QueryTooLarge` (see
    :meth:`_guard_memory`).
    """

    def __init__(self, source: Path | str, *, workers: int = 2, timeout: float = 5.0, max_rows: int = 10_000,
                 query_memory: int = 0, startup_timeout: float = 120.0):
        path = Path(source)
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if query_memory < 0:
            raise ValueError("query_memory must be 0 (no limit) or more")
        self._pinned: int | None = None  # see _pin
        if path.is_dir():
            self._source = (str(path.resolve()), "disk")
        elif path.is_file():
            self._source = (self._pin(path.resolve()), "nquads")
        else:
            raise StoreUnavailable(f"{path}: no built dataset or store there; run `anemia-kg build` first")
        self.source = path.resolve()
        self.timeout, self.max_rows, self.size, self.query_memory = timeout, max_rows, workers, query_memory
        self._startup_timeout = startup_timeout
        self._ctx = multiprocessing.get_context("spawn")
        # Every worker is started from this one thread, which lives until close(): a worker dies when the thread
        # that started it ends (see _own_session), and _start_one's threads end once their worker is ready.
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="anemia-kg-worker-spawn")
        # Last in, first out: one request at a time then always goes to the same worker, whose copy of the data is
        # still in the CPU caches. Taken in turns, each query met a cold copy: 4.1-4.8 ms instead of 2.9 ms
        # for the evidence query at 1,000,000 triples with two in-memory workers (bench/queries/03-evidence.rq).
        self._idle: list[_Worker] = []  # a stack, under _cond
        self._cond = threading.Condition()
        self._waiters: deque[_Waiter] = deque()  # calls waiting for a free worker, oldest first
        self._workers: set[_Worker] = set()  # started and not yet retired, ready or still loading
        self._starting = 0
        self._failure: str | None = None
        self._closed = False
        self._top_up()
        threading.Thread(target=self._watch, name="anemia-kg-worker-watch", daemon=True).start()
        if query_memory and _resident_bytes(os.getpid()) is None:
            log.warning("the query memory limit is not enforced: it reads /proc/<pid>/statm, which this system lacks")
        elif query_memory:
            threading.Thread(target=self._guard_memory, name="anemia-kg-memory-guard", daemon=True).start()

    def _pin(self, nquads: Path) -> str:
        """The path the workers load ``nquads`` from: one that stays readable as long as this executor lives.

        Each build deletes the build before it, and a worker started later (to replace one killed by a timeout,
        the memory guard or a crash) must still load the data this server started with. So the file is held
        open here, and the workers open it through this process's descriptor (``/proc/<pid>/fd/<n>``, Linux),
        which reaches the file even once its name is gone. Where there is no ``/proc`` the name is used, and a
        worker started after the file was deleted fails to load, which the server reports.
        """
        self._pinned = os.open(nquads, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        held = f"/proc/{os.getpid()}/fd/{self._pinned}"
        return held if os.path.exists(held) else str(nquads)

    # requests

    def execute(self, sparql: str, *, media: str, default_graphs: Sequence[str] | None = None,
                named_graphs: Sequence[str] | None = None, timeout: float | None = None,
                max_rows: int | None = None) -> Result:
        request = self._execute_request(sparql, media, default_graphs, named_graphs, max_rows)
        return Result(*self._call(request, self.timeout if timeout is None else timeout))

    async def aexecute(self, sparql: str, *, media: str, default_graphs: Sequence[str] | None = None,
                       named_graphs: Sequence[str] | None = None, timeout: float | None = None,
                       max_rows: int | None = None) -> Result:
        """:meth:`execute` for the event loop: waits for a worker and its answer without holding a thread."""
        request = self._execute_request(sparql, media, default_graphs, named_graphs, max_rows)
        return Result(*await self._acall(request, self.timeout if timeout is None else timeout))

    def _execute_request(self, sparql: str, media: str, default_graphs: Sequence[str] | None,
                         named_graphs: Sequence[str] | None, max_rows: int | None) -> dict[str, Any]:
        info = check_query(sparql)
        return {"op": "execute", "sparql": sparql, "media": media, "form": info.form.value if info.form else None,
                "own_dataset": "FROM" in info.keywords, "default_graphs": _check_graphs(default_graphs),
                "named_graphs": _check_graphs(named_graphs),
                "max_rows": self.max_rows if max_rows is None else max_rows}

    def select(self, sparql: str, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Rows as SPARQL JSON bindings, for the application's own queries: no row cap."""
        info = check_query(sparql)
        request = {"op": "select", "sparql": sparql, "own_dataset": "FROM" in info.keywords}
        return self._call(request, self.timeout if timeout is None else timeout)

    def _call(self, request: dict[str, Any], timeout: float) -> Any:
        """Send a request to a free worker and wait at most ``timeout`` for its reply.

        A worker notes the request's ``seq`` in its shared ``started`` word before evaluating it: one that dies
        without having noted it was already dead when it was picked (it is replaced and the request goes to
        another), one that dies after it crashed on this query, which is retried once.
        """
        crashes = 0
        for _attempt in range(self.size + 2):
            worker = self._acquire(timeout)
            healthy = False
            request["seq"] = seq = next(_SEQ)
            try:
                if worker.nonblocking:  # Connection.recv() would fail with EAGAIN in the middle of a long answer
                    os.set_blocking(worker.conn.fileno(), True)
                    worker.nonblocking = False
                _send(worker.conn, request)
                reply = _receive(worker, time.monotonic() + timeout, timeout)
                healthy = True
            except (EOFError, OSError):
                crashes = _count_death(worker, worker.started.value == seq, crashes)
                continue
            finally:
                if healthy:
                    self._release(worker)
                else:
                    self._retire(worker)
            return _unwrap(reply)
        raise StoreUnavailable("the query workers keep dying; see the server log")

    async def _acall(self, request: dict[str, Any], timeout: float) -> Any:
        """:meth:`_call` on the event loop, with the same retries; a worker whose answer is abandoned (timeout,
        or the caller cancelled) is killed, as its pipe would otherwise carry that late answer to the next
        request."""
        crashes = 0
        loop = asyncio.get_running_loop()  # once: each call asks the OS for the process id
        for _attempt in range(self.size + 2):
            worker = await self._aacquire(timeout, loop)
            healthy = False
            request["seq"] = seq = next(_SEQ)
            try:
                if worker.loop is None:
                    _attach(loop, worker)
                _send(worker.conn, request)
                reply = await _areceive(loop, worker, timeout)
                healthy = not worker.pending  # more on the pipe would be out of step with the next request
            except (EOFError, OSError):
                crashes = _count_death(worker, worker.started.value == seq, crashes)
                continue
            finally:
                if healthy:
                    self._release(worker)
                else:  # stop it now; waiting for it to exit and starting its replacement take a thread
                    _detach(worker)  # here, on its loop's thread, before another thread closes its pipe
                    with contextlib.suppress(ValueError, AssertionError, OSError):
                        worker.process.kill()
                    threading.Thread(target=self._retire, args=(worker,), name="anemia-kg-worker-retire",
                                     daemon=True).start()
            return _unwrap(reply)
        raise StoreUnavailable("the query workers keep dying; see the server log")

    async def _aacquire(self, wait: float, loop: asyncio.AbstractEventLoop | None = None) -> _Worker:
        """:meth:`_acquire` for the event loop: a free worker now, or the first one released or started.

        A waiter is a future in ``_waiters``: a released or newly ready worker is handed to the oldest one
        (:meth:`_offer_locked`), a pool that cannot load fails them all, and a timer gives up after ``wait``.
        """
        loop = loop or asyncio.get_running_loop()
        with self._cond:
            self._check_usable_locked()
            worker = self._take_idle_locked(loop)
            if worker is not None:
                return worker
            future: asyncio.Future[_Worker] = loop.create_future()
            self._waiters.append((loop, future))
        timer = loop.call_later(wait, self._give_up, future, wait)
        try:
            return await future
        except BaseException:  # gave up, failed, or cancelled: a worker handed over meanwhile goes on
            if future.done() and not future.cancelled() and future.exception() is None:
                self._release(future.result())
            future.cancel()
            raise
        finally:
            timer.cancel()

    def _give_up(self, future: asyncio.Future[_Worker], wait: float) -> None:
        if not future.done():
            future.set_exception(self._busy(wait))

    def _fail_waiters_locked(self, message: str) -> None:
        """Answer every waiting :meth:`aexecute` with StoreUnavailable (pool closed, or none could load)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if isinstance(waiter, concurrent.futures.Future):
                if waiter.set_running_or_notify_cancel():  # False: it gave up already
                    waiter.set_exception(StoreUnavailable(message))
                continue
            loop, future = waiter
            with contextlib.suppress(RuntimeError):  # its event loop is closed
                loop.call_soon_threadsafe(_fail, future, StoreUnavailable(message))

    def _check_usable_locked(self) -> None:
        if self._closed:
            raise StoreUnavailable("the query executor is closed")
        if self._failure and not any(w.ready for w in self._workers):
            self._top_up_locked()  # try again in the background, but answer this request now
            raise StoreUnavailable(self._failure)

    def _take_idle_locked(self, loop: asyncio.AbstractEventLoop | None) -> _Worker | None:
        """A free worker for a call on ``loop`` (None: a blocking call), if there is one, the last released first.

        Workers retired while they sat idle (the watcher saw them die) are dropped here; one that died and is
        not retired yet fails at once on its pipe, and the call retries. A worker that another event loop
        watches is only taken once that loop has let go of it (:func:`_let_go`); when that loop runs on another
        thread, it is asked to, and then offers the worker to the oldest waiting call itself.
        """
        for index in range(len(self._idle) - 1, -1, -1):
            worker = self._idle[index]
            if worker not in self._workers:
                del self._idle[index]
                continue
            if worker.loop is not None and worker.loop is not loop and not _let_go(worker, self._let_go_here):
                continue  # its loop offers it once it has let go
            del self._idle[index]
            worker.idle = False
            return worker
        return None

    def _busy(self, wait: float) -> StoreUnavailable:
        with self._cond:
            return self._busy_locked(wait)

    def _busy_locked(self, wait: float) -> StoreUnavailable:
        if not any(w.ready for w in self._workers):
            return StoreUnavailable("the query workers are still loading the dataset; try again")
        return StoreUnavailable(f"all {self.size} query workers stayed busy for {wait:g} s; try again")

    def _acquire(self, wait: float) -> _Worker:
        """A ready worker, waiting at most ``wait`` seconds for one to become free, in line with every caller."""
        deadline = time.monotonic() + wait
        with self._cond:
            self._check_usable_locked()
            worker = self._take_idle_locked(None)
            if worker is not None:
                return worker
            waiter: concurrent.futures.Future[_Worker] = concurrent.futures.Future()
            self._waiters.append(waiter)
        while True:
            with contextlib.suppress(TimeoutError):  # look again now and then: the pool may have failed to load
                return waiter.result(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
            with self._cond:  # a worker is handed over under this lock too: now it is either here or not
                if waiter.done():
                    continue
                try:
                    self._check_usable_locked()
                    if time.monotonic() >= deadline:
                        raise self._busy_locked(wait)
                except StoreUnavailable:
                    waiter.cancel()
                    raise

    def _release(self, worker: _Worker) -> None:
        """A free worker goes to the oldest waiting call, else back to the idle stack."""
        with self._cond:
            closed = self._closed
            if not closed:
                self._offer_locked(worker)
        if closed:
            _kill(worker)

    def _offer_locked(self, worker: _Worker) -> None:
        """Hand ``worker`` to the oldest waiting call, or put it on the idle stack.

        A worker an event loop watches is released on that loop's thread (see ``_Worker.loop``): a call
        waiting on the same loop gets it here and now, any other waiter only once the loop has let go of it.
        """
        while self._waiters:
            waiter = self._waiters.popleft()
            if isinstance(waiter, concurrent.futures.Future):
                if waiter.set_running_or_notify_cancel():  # False: it gave up waiting
                    _detach(worker)
                    waiter.set_result(worker)
                    return
                continue
            loop, future = waiter
            if future.done():  # it gave up waiting
                continue
            if worker.loop is loop:
                future.set_result(worker)
                return
            _detach(worker)
            try:
                loop.call_soon_threadsafe(self._hand_over, future, worker)
                return
            except RuntimeError:  # its event loop is closed
                continue
        worker.idle = True
        self._idle.append(worker)

    def _let_go_here(self, worker: _Worker) -> None:
        """On the loop that watches ``worker``, asked by a call elsewhere: let go of it if it still sits idle
        here, and offer it to the oldest waiting call (the one that asked, or an older one)."""
        with self._cond:
            if worker.idle and worker in self._idle and worker.loop is asyncio.get_running_loop():
                self._idle.remove(worker)
                worker.idle = False
                _detach(worker)
                self._offer_locked(worker)

    def _hand_over(self, future: asyncio.Future[_Worker], worker: _Worker) -> None:
        """On the waiter's event loop: give it the worker, unless it stopped waiting meanwhile."""
        if future.done():
            self._release(worker)
        else:
            future.set_result(worker)

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
        """Replace a worker that dies while it sits idle (killed, out of memory) without waiting for a request.

        Only an idle one: a call that holds a worker is reading its pipe (on an event loop, perhaps), sees the
        end of file itself and retires it. Closing that pipe under it would take the descriptor out of the
        loop's watch list unseen, and the call would wait out its whole timeout instead of retrying.
        """
        while True:
            with self._cond:
                if self._closed:
                    return
                idle = {w.process.sentinel: w for w in self._workers if w.ready and w.idle}
            for sentinel in multiprocessing.connection.wait(list(idle), timeout=WATCH_SECONDS):
                worker = idle[cast(int, sentinel)]  # wait() gives back the objects it was given
                with self._cond:  # claimed here, under the lock that checks a worker out, or left to its holder
                    mine = not self._closed and worker in self._workers and worker.idle
                    if mine:
                        self._workers.discard(worker)  # _take_idle_locked now drops it from the idle stack
                if mine:
                    log.warning("query worker pid %s exited; replacing it", worker.process.pid)
                    _kill(worker)
                    self._top_up()

    def _guard_memory(self) -> None:
        """Kill a worker whose resident memory passed what it held once loaded by more than ``query_memory``.

        pyoxigraph cannot be told to stop a query, so a query that materialises a cross product (ORDER BY over
        a three-way join of every triple grows by a gigabyte a second) would otherwise take memory until its
        timeout: gigabytes per worker, enough for the kernel to kill something on a small machine. Every
        ``MEMORY_POLL_SECONDS`` the guard reads each worker's resident size from ``/proc`` (a few microseconds);
        one over the limit is marked (``stopped_for``) and killed. The call that holds it sees its pipe close
        and answers :class:`QueryTooLarge` without retrying; a worker that sat idle (memory an earlier query
        left behind) is replaced by the watcher. A query can pass the limit by what it allocates between two
        looks, at most about a tenth of a gigabyte.
        """
        limit_mb = self.query_memory / 2**20
        while True:
            with self._cond:
                if self._closed:
                    return
                workers = [w for w in self._workers if w.ready and not w.stopped_for]
            for worker in workers:
                resident = _resident_bytes(worker.process.pid)
                if resident is None or resident - worker.baseline <= self.query_memory:
                    continue
                worker.stopped_for = (f"the query needed more than {limit_mb:,.0f} MB of memory and was stopped "
                                      "(setting query_memory_mb); narrow it")
                log.warning("query worker pid %s holds %.0f MB, %.0f MB more than when it was loaded (limit %.0f "
                            "MB): stopping it", worker.process.pid, resident / 2**20,
                            (resident - worker.baseline) / 2**20, limit_mb)
                with contextlib.suppress(ValueError, AssertionError, OSError):  # exited or closed meanwhile
                    worker.process.kill()
            time.sleep(MEMORY_POLL_SECONDS)

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
                reply = ("failed", f"a query worker did not load {self.source} within {self._startup_timeout:g} s")
        except EOFError:
            reply = ("failed", f"a query worker exited (code {worker and worker.process.exitcode}) before loading "
                     "the dataset; a script that starts an EmbeddedExecutor must guard its main code with "
                     "`if __name__ == '__main__':`, as spawned processes import the main module again")
        except Exception as exc:  # OSError from pipes and processes
            reply = ("failed", f"a query worker could not start: {exc!r}")
        if reply[0] == "ready" and worker is not None:
            worker.baseline = _resident_bytes(worker.process.pid) or 0
        with self._cond:
            if reply[0] == "ready" and worker in self._workers:
                worker.ready, self._failure = True, None
                self._offer_locked(worker)
            elif reply[0] != "ready":
                if not self._closed:  # close() kills a worker still loading: that is no failure to report
                    log.error("%s", reply[1])
                self._failure = reply[1]
                self._workers.discard(worker)
                if not any(w.ready for w in self._workers):
                    self._fail_waiters_locked(reply[1])
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
            started = self._ctx.RawValue(ctypes.c_longlong, 0)  # no lock: one writer, read after it died
            process = self._ctx.Process(target=_serve, name="anemia-kg-query", daemon=True,
                                        args=(child, *self._source, started, str(self.source), os.getpid()))
            worker = _Worker(process, parent, started)
            self._workers.add(worker)
        try:
            self._spawner.submit(process.start).result()
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
            self._fail_waiters_locked("the query executor is closed")
            self._cond.notify_all()
        for worker in workers:
            _kill(worker)
        self._spawner.shutdown(wait=False)
        pinned, self._pinned = self._pinned, None
        if pinned is not None:
            with contextlib.suppress(OSError):
                os.close(pinned)


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _resident_bytes(pid: int | None) -> int | None:
    """The resident memory of process ``pid`` (Linux's ``/proc``), None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _receive(worker: _Worker, deadline: float, timeout: float) -> Any:
    if not worker.conn.poll(max(0.0, deadline - time.monotonic())):
        raise _timeout(timeout)
    return worker.conn.recv()


def _count_death(worker: _Worker, started: bool, crashes: int) -> int:
    """The crashes of this request so far, once ``worker`` died under it; StoreUnavailable at the second.

    Dying after it took the request (``started``) is a crash on this query; before, the worker was dead
    already when it was picked, which costs the request nothing but the attempt. A worker the memory guard
    stopped while it ran this query is no crash: the query would only take the next worker's memory too.
    """
    if started and worker.stopped_for:
        raise QueryTooLarge(worker.stopped_for) from None
    crashes += started
    if crashes >= 2:
        raise StoreUnavailable("the query worker crashed twice while running this query; the query may need "
                               "more memory than a worker has, so narrow it") from None
    log.warning("a query worker (pid %s) died %s; trying another", worker.process.pid,
                "while answering" if started else "while idle")
    return crashes


def _timeout(timeout: float) -> QueryTimeout:
    return QueryTimeout(f"the query ran longer than {timeout:.1f} s and was stopped; narrow it or add LIMIT")


def _unwrap(reply: tuple[Any, ...]) -> Any:
    if reply[0] == "ok":
        return reply[1]
    raise _ERRORS.get(reply[1], ExecutorError)(reply[2])


async def _areceive(loop: asyncio.AbstractEventLoop, worker: _Worker, timeout: float) -> Any:
    """The worker's next message, read on the event loop by :func:`_on_readable` as the bytes arrive (never
    blocking it), at most ``timeout`` seconds from now."""
    message = _take_message(worker.pending)
    if message is not _INCOMPLETE:
        return message
    inbox: asyncio.Future[Any] = loop.create_future()
    worker.inbox = inbox
    timer = loop.call_later(timeout, _time_out, inbox, timeout)
    try:
        return await inbox
    finally:
        timer.cancel()
        worker.inbox = None


def _attach(loop: asyncio.AbstractEventLoop, worker: _Worker) -> None:
    """Watch the worker's pipe on ``loop`` from now on, for this call and the next ones there.

    One reader for many calls: registering and removing it for each call cost four to five system calls
    (epoll_ctl, in uvloop), which are slow on the machines this runs on: the event loop's time per call went
    from 97 to 72 microseconds without them (docs/benchmarks.md). The price is the rule of ``_Worker.loop``:
    whoever else wants the worker has the loop let go of it first (:func:`_let_go`).
    """
    loop.add_reader(worker.conn.fileno(), _on_readable, worker)
    worker.loop = loop
    worker.nonblocking = True  # uvloop leaves a watched descriptor so; execute() sets it back when it needs to


def _detach(worker: _Worker) -> None:
    """Stop watching the worker's pipe: on the thread of the loop that watches it, or once that loop is closed
    or stopped (nothing runs in it then)."""
    loop, worker.loop = worker.loop, None
    if loop is not None and not loop.is_closed():
        with contextlib.suppress(OSError, ValueError, RuntimeError):  # the pipe is closed already
            loop.remove_reader(worker.conn.fileno())


def _let_go(worker: _Worker, let_go_there: Callable[[_Worker], None]) -> bool:
    """Free ``worker``, idle and watched by another event loop, for a call here: True if done at once.

    A closed or stopped loop is let go of here, and so is the loop this thread runs (a blocking call made
    inside a coroutine). A loop that runs on another thread is asked to call ``let_go_there`` (False).
    """
    loop = worker.loop
    assert loop is not None
    if loop.is_closed() or not loop.is_running() or asyncio._get_running_loop() is loop:
        _detach(worker)
        return True
    try:
        loop.call_soon_threadsafe(let_go_there, worker)
    except RuntimeError:  # it was closed meanwhile
        _detach(worker)
        return True
    return False


def _time_out(arrived: asyncio.Future[Any], timeout: float) -> None:
    _fail(arrived, _timeout(timeout))


READ_SIZE = 64 * 1024  # larger reads cost an mmap per call in the allocator, for no fewer wake-ups that matter


def _on_readable(worker: _Worker) -> None:
    """The reader of a worker's pipe on its loop: append what the pipe holds now (it is readable, so this does
    not block) and resolve the call's ``inbox`` once a whole message is there.

    The framing is :class:`multiprocessing.connection.Connection`'s, which the worker writes with ``send``: a
    signed 4-byte big-endian length (``-1`` and then an 8-byte one for 2 GiB and more), then the pickle. At the
    end of the pipe (the worker died) the loop stops watching it, as it would stay readable; the call, or
    the watcher if it sat idle, retires the worker.
    """
    inbox = worker.inbox
    error: Exception | None = None
    try:
        data = os.read(worker.conn.fileno(), READ_SIZE)
    except BlockingIOError:
        return
    except OSError as exc:
        data, error = b"", exc
    if not data:
        _detach(worker)
        if inbox is not None and not inbox.done():
            inbox.set_exception(error or EOFError("the query worker closed its pipe"))
        return
    worker.pending += data
    if inbox is not None and not inbox.done():
        message = _take_message(worker.pending)
        if message is not _INCOMPLETE:
            inbox.set_result(message)


_INCOMPLETE = object()


def _take_message(pending: bytearray) -> Any:
    """One whole message from the front of ``pending`` (removed from it), or ``_INCOMPLETE``."""
    if len(pending) < 4:
        return _INCOMPLETE
    (size,) = struct.unpack_from("!i", pending)
    start = 4
    if size == -1:
        if len(pending) < 12:
            return _INCOMPLETE
        (size,) = struct.unpack_from("!Q", pending, 4)
        start = 12
    if len(pending) < start + size:
        return _INCOMPLETE
    with memoryview(pending) as view, view[start:start + size] as body:
        message = pickle.loads(body)
    del pending[:start + size]  # only once the views are released: a bytearray with views cannot shrink
    return message


_KILLING = threading.Lock()


def _kill(worker: _Worker) -> None:
    """Kill the worker and close its pipe, once: the watcher, a request and close() may all find it dead at the
    same moment, and closing one pipe twice from two threads could close a descriptor opened meanwhile."""
    with _KILLING:
        if worker.killed:
            return
        worker.killed = True
    with contextlib.suppress(ValueError, AssertionError, OSError):  # not started yet, or already closed
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=2)
    loop = worker.loop
    if loop is not None and not _let_go(worker, _close):
        return  # its loop closes the pipe once it has let go of it: closed here, the number could be reused first
    worker.conn.close()


def _close(worker: _Worker) -> None:
    """On the loop that watches a killed worker: let go of its pipe, then close it; a call still waiting for its
    answer learns that the worker is gone (it would otherwise wait out its timeout, as the loop no longer
    reads the pipe's end)."""
    _detach(worker)
    worker.conn.close()
    if worker.inbox is not None and not worker.inbox.done():
        worker.inbox.set_exception(EOFError("the query worker was stopped"))
