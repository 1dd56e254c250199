"""``aexecute``: the executors' event-loop way in, over real worker processes (nothing inside is mocked).

Each test drives its coroutines with ``asyncio.Runner`` (no async test plugin is used in this suite), bounded
by ``within``; the tests where the event loop matters run on both asyncio's loop and uvloop (the server's).
Timings are only checked against generous upper bounds that prove "does not hang"; slow queries are chosen
so that their length only matters one way (they must outlast a short wait, never finish early).

A few tests look at the pool's private state (``_idle``, ``_waiters``, ``_workers``) to prove that nothing
was lost, and one holds a worker with ``_aacquire`` / ``_release`` to time a race exactly.
"""

from __future__ import annotations

import asyncio
import functools
import json
import multiprocessing
import os
import pickle
import random
import signal
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvloop

from anemia_kg.executor import (
    EmbeddedExecutor,
    ExecutorError,
    QuerySyntaxError,
    QueryTimeout,
    RemoteExecutor,
    Result,
    StoreUnavailable,
    TooManyRows,
)
from anemia_kg.executor.embedded import _INCOMPLETE, READ_SIZE, _next_request, _take_message
from test_executor import (
    CLAIMS,
    ENT,
    ENTITIES,
    HEAVY,
    LABELS,
    ONTOLOGY,
    QUADS,
    TRIPLES,
    solutions,
    wait_until,
    write_big_dataset,
    write_dataset,
)

T = TypeVar("T")
Run = Callable[..., Any]

BIG = 20_000  # triples in the big chain dataset
NEXT = "<http://example.org/next>"
LIMIT = 90.0  # no test's event loop may run longer than this
LOOPS = {"asyncio": None, "uvloop": uvloop.new_event_loop}


def within(coro: Coroutine[Any, Any, T], seconds: float = LIMIT, *, loop: str = "asyncio") -> T:
    """Run ``coro`` on a fresh event loop of the kind named, failing (rather than hanging) after ``seconds``."""
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(asyncio.wait_for(coro, seconds))


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Run:
    """``within`` on asyncio's event loop, then on uvloop's."""
    return functools.partial(within, loop=request.param)


async def gather(*calls: Awaitable[T]) -> list[T]:
    """asyncio.gather inside the running loop (it needs one), for ``within(gather(...))``."""
    return list(await asyncio.gather(*calls))


def numbered(n: int) -> str:
    """A query whose only answer is ``n``, touching the data (so a worker evaluates something)."""
    return f"SELECT ?n WHERE {{ VALUES ?n {{ {n} }} ?s ?p ?o }} LIMIT 1"


def number(result: Result) -> int:
    rows = solutions(result)
    assert len(rows) == 1, rows
    return int(rows[0]["n"])


def slow(rows: int) -> str:
    """A query that ends, after about ``rows`` / 1000 s here (20 M solutions a second): ``rows`` x BIG solutions
    counted, so its answer is ``rows * BIG``."""
    return (f"SELECT (COUNT(*) AS ?n) WHERE {{ {{ SELECT ?a WHERE {{ ?a {NEXT} ?b }} LIMIT {rows} }} "
            f"?c {NEXT} ?d }}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    """``wait_until`` for the event loop: never blocks it."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def _waiting(waiter: Any) -> bool:
    future = waiter[1] if isinstance(waiter, tuple) else waiter  # (loop, asyncio future) or a concurrent future
    return not future.done()


def waiters(ex: EmbeddedExecutor) -> int:
    """Calls waiting for a worker now."""
    with ex._cond:
        return sum(_waiting(w) for w in ex._waiters)


def all_free(ex: EmbeddedExecutor) -> bool:
    """Nothing lost or stuck: every worker of the pool sits in the idle stack and no call is left waiting."""
    with ex._cond:
        idle, workers = list(ex._idle), set(ex._workers)
        waiting = any(_waiting(w) for w in ex._waiters)
    return len(workers) == ex.size and workers <= set(idle) and not waiting


def busy(ex: EmbeddedExecutor) -> bool:
    """No worker is free (every one is running a query)."""
    with ex._cond:
        return not set(ex._idle) & set(ex._workers)


@pytest.fixture(scope="module")
def nquads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"))


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_big_dataset(tmp_path_factory.mktemp("big"), BIG)


@pytest.fixture(scope="module")
def executor(nquads: Path) -> Iterator[EmbeddedExecutor]:
    """Shared by the tests that never kill a worker."""
    with EmbeddedExecutor(nquads, workers=2, timeout=30) as ex:
        ex.wait_ready(60)
        yield ex


@pytest.fixture
def own(nquads: Path, big: Path) -> Iterator[Callable[..., EmbeddedExecutor]]:
    """``own(workers, dataset="tiny"|"big", timeout=...)``: a private executor, closed after the test."""
    made: list[EmbeddedExecutor] = []

    def make(workers: int, dataset: str = "tiny", timeout: float = 30) -> EmbeddedExecutor:
        ex = EmbeddedExecutor(nquads if dataset == "tiny" else big, workers=workers, timeout=timeout)
        made.append(ex)
        ex.wait_ready(60)
        return ex

    yield make
    for ex in made:
        ex.close()


# --- the same answers as execute() ----------------------------------------------------------------------------

SAME = {
    "select-json": (LABELS, "json", {}, "SELECT"),
    "select-xml": (LABELS, "xml", {}, "SELECT"),
    "select-csv": (LABELS, "csv", {}, "SELECT"),
    "select-tsv": (LABELS, "tsv", {}, "SELECT"),
    "select-fallback-media": (LABELS, "turtle", {}, "SELECT"),
    "ask-true": ("ASK { ent:anemia rdfs:label ?l }", "json", {}, "ASK"),
    "ask-false-xml": ("ASK { ent:anemia rdfs:label 'joint pain' }", "xml", {}, "ASK"),
    "construct-turtle": (TRIPLES, "turtle", {}, "CONSTRUCT"),
    "construct-ntriples": (TRIPLES, "ntriples", {}, "CONSTRUCT"),
    "describe": ("DESCRIBE ent:joint_pain", "ntriples", {}, "DESCRIBE"),
    "default-graphs": ("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", "json", {"default_graphs": [CLAIMS, ONTOLOGY]},
                       "SELECT"),
    "named-graphs": ("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", "json", {"named_graphs": [ENTITIES]},
                     "SELECT"),
    "own-from": (f"SELECT (COUNT(*) AS ?n) FROM <{ONTOLOGY}> WHERE {{ ?s ?p ?o }}", "json", {}, "SELECT"),
}


@pytest.mark.parametrize(("query", "media", "dataset", "form"), SAME.values(), ids=SAME.keys())
def test_aexecute_gives_the_bytes_execute_gives(executor: EmbeddedExecutor, run: Run, query: str, media: str,
                                                dataset: dict[str, Any], form: str) -> None:
    blocking = executor.execute(query, media=media, **dataset)
    awaited = run(executor.aexecute(query, media=media, **dataset))
    assert isinstance(awaited, Result)
    assert (awaited.media_type, awaited.form, awaited.body) == (blocking.media_type, blocking.form, blocking.body)
    assert awaited.form == form and awaited.body  # and not both equally empty


def test_aexecute_answers_are_right(executor: EmbeddedExecutor) -> None:
    """Not only the same as execute(): the right answers (should both ever go wrong the same way)."""
    labels, claims, ask = within(gather(
        executor.aexecute(LABELS, media="csv"),
        executor.aexecute("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", media="json", default_graphs=[CLAIMS]),
        executor.aexecute("ASK { ent:anemia rdfs:label 'joint pain' }", media="json")))
    assert labels.body.decode().splitlines() == ["e,label", f"{ENT}anemia,anemia", f"{ENT}joint_pain,joint pain"]
    assert number(claims) == 2
    assert json.loads(ask.body)["boolean"] is False


ERRORS = {
    "syntax": ("SELECT ?x WHERE { ?x ?p }", {}, QuerySyntaxError, r"1:2\d"),
    "unknown-prefix": ("SELECT * WHERE { ?s nope:p ?o }", {}, QuerySyntaxError, "unknown prefix 'nope:'"),
    "service": ("SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }", {}, QuerySyntaxError,
                "SERVICE"),
    "update": ("INSERT DATA { <http://a> <http://b> <http://c> }", {}, QuerySyntaxError, "read-only"),
    "too-many-rows": ("SELECT * WHERE { ?s ?p ?o }", {"max_rows": QUADS - 1}, TooManyRows,
                      f"more than {QUADS - 1} rows"),
    "too-many-triples": (TRIPLES, {"max_rows": 3, "media": "turtle"}, TooManyRows, "more than 3 rows"),
    "default-graph-iri": (LABELS, {"default_graphs": ["not an iri"]}, QuerySyntaxError, "not an absolute IRI"),
    "named-graph-iri": (LABELS, {"named_graphs": ["nope"]}, QuerySyntaxError, "not an absolute IRI"),
}


@pytest.mark.parametrize(("query", "options", "error", "match"), ERRORS.values(), ids=ERRORS.keys())
def test_aexecute_raises_the_errors_execute_raises(executor: EmbeddedExecutor, run: Run, query: str,
                                                   options: dict[str, Any], error: type[ExecutorError],
                                                   match: str) -> None:
    options = {"media": "json", **options}
    pids = executor.worker_pids
    with pytest.raises(error, match=match) as blocking:
        executor.execute(query, **options)
    with pytest.raises(error, match=match) as awaited:
        run(executor.aexecute(query, **options))
    assert type(awaited.value) is type(blocking.value)
    assert str(awaited.value) == str(blocking.value)
    assert awaited.value.status == blocking.value.status
    assert executor.worker_pids == pids  # a refused query costs no worker
    assert number(run(executor.aexecute(numbered(5), media="json"))) == 5  # and leaves the pipe in step


def test_the_row_cap_is_exact(executor: EmbeddedExecutor) -> None:
    result = within(executor.aexecute("SELECT * WHERE { ?s ?p ?o }", media="json", max_rows=QUADS))
    assert len(solutions(result)) == QUADS


def test_a_closed_executor_refuses_aexecute(nquads: Path) -> None:
    ex = EmbeddedExecutor(nquads, workers=1)
    ex.wait_ready(60)
    ex.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        within(ex.aexecute(LABELS, media="json"))


# --- many callers ---------------------------------------------------------------------------------------------


def test_fifty_concurrent_calls_on_two_workers_get_their_own_answers(executor: EmbeddedExecutor, run: Run) -> None:
    pids = executor.worker_pids
    results = run(gather(*(executor.aexecute(numbered(n), media="json") for n in range(50))))
    assert [number(r) for r in results] == list(range(50))  # 48 of them had to wait for a worker
    assert executor.worker_pids == pids  # nothing was killed
    assert wait_until(lambda: all_free(executor), 10)  # both workers are free again


def test_blocking_and_awaited_calls_share_the_pool(executor: EmbeddedExecutor, run: Run) -> None:
    async def awaited(n: int) -> tuple[int, int]:
        return n, number(await executor.aexecute(numbered(n), media="json"))

    async def blocking(n: int) -> tuple[int, int]:
        return n, number(await asyncio.to_thread(executor.execute, numbered(n), media="json"))

    answers = run(gather(*(awaited(n) if n % 3 else blocking(n) for n in range(60))))
    assert len(answers) == 60 and all(asked == got for asked, got in answers)
    assert wait_until(lambda: all_free(executor), 10)


def test_several_event_loops_share_the_pool(executor: EmbeddedExecutor) -> None:
    """Workers are handed from one thread's event loop to another's (asyncio's and uvloop's), and to blocking
    callers in between."""
    answers: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def loop(kind: str, first: int) -> None:
        calls = (executor.aexecute(numbered(n), media="json") for n in range(first, first + 25))
        try:
            answers[kind] = [number(r) for r in within(gather(*calls), 60, loop=kind)]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def blocking() -> None:
        try:
            answers["blocking"] = [number(executor.execute(numbered(n), media="json")) for n in range(200, 215)]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=("asyncio", 0)), threading.Thread(target=loop, args=("uvloop", 100)),
               threading.Thread(target=blocking)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not errors, errors
    assert answers == {"asyncio": list(range(25)), "uvloop": list(range(100, 125)), "blocking": list(range(200, 215))}
    assert wait_until(lambda: all_free(executor), 10)


def test_a_blocking_call_is_not_starved_by_a_stream_of_awaited_calls(own: Callable[..., EmbeddedExecutor]) -> None:
    """Four awaited callers keep the only worker wanted all the time; a blocking call (the knowledge model's
    reads) must still get its turn, not fail as 'busy' after its whole timeout."""
    ex = own(1)

    async def main() -> Result:
        stop = asyncio.Event()

        async def client() -> None:
            while not stop.is_set():
                await ex.aexecute(numbered(1), media="json")

        clients = [asyncio.create_task(client()) for _ in range(4)]
        try:
            await asyncio.sleep(0.2)
            return await asyncio.to_thread(ex.execute, numbered(2), media="json", timeout=1.5)
        finally:
            stop.set()
            await asyncio.gather(*clients)

    assert number(within(main())) == 2


# --- time limits and cancellation -----------------------------------------------------------------------------


def test_a_query_that_runs_too_long_is_stopped_and_its_worker_replaced(own: Callable[..., EmbeddedExecutor],
                                                                       run: Run) -> None:
    ex = own(2, "big", timeout=60)
    before = set(ex.worker_pids)
    timeout = 1.0

    async def main() -> tuple[BaseException | Result, float, Result]:
        async def heavy() -> tuple[BaseException | Result, float]:
            start = time.monotonic()
            try:
                return await ex.aexecute(HEAVY, media="json", timeout=timeout), time.monotonic() - start
            except ExecutorError as exc:
                return exc, time.monotonic() - start

        task = asyncio.create_task(heavy())
        await asyncio.sleep(0.2)
        light = await ex.aexecute("ASK { ?s <http://example.org/next> ?o }", media="json")  # the other worker
        assert not task.done(), "the light query should have been answered while the heavy one runs"
        outcome, elapsed = await task
        return outcome, elapsed, light

    outcome, elapsed, light = run(main())
    assert json.loads(light.body)["boolean"] is True
    assert isinstance(outcome, QueryTimeout), outcome
    assert "longer than 1.0 s" in str(outcome) and outcome.status == 503
    assert timeout <= elapsed < timeout + 5  # stopped, not finished (the query runs for hours)

    assert wait_until(lambda: len(ex.worker_pids) == 2 and set(ex.worker_pids) != before)
    after = set(ex.worker_pids)
    assert len(before & after) == 1  # exactly the one that ran the heavy query was replaced
    (killed,) = before - after
    assert wait_until(lambda: not alive(killed), 10)
    assert number(run(ex.aexecute(numbered(11), media="json"))) == 11
    answers = run(gather(*(ex.aexecute(numbered(n), media="json") for n in range(4))))
    assert [number(r) for r in answers] == [0, 1, 2, 3]


SLOW_ROWS = 3000  # about 3 s here: far longer than the 0.5 s the caller waits, far shorter than the next's 30 s


@pytest.mark.parametrize("how", ["wait_for", "cancel"])
def test_a_cancelled_call_kills_its_worker_so_the_next_answer_is_its_own(own: Callable[..., EmbeddedExecutor],
                                                                         run: Run, how: str) -> None:
    """With one worker, the next query goes to the same pipe: had the worker been left running, its late answer
    to the slow query (SLOW_ROWS * BIG) would come back as the answer to the next one."""
    ex = own(1, "big", timeout=30)
    (before,) = ex.worker_pids

    async def main() -> Result:
        if how == "wait_for":
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ex.aexecute(slow(SLOW_ROWS), media="json"), 0.5)
        else:
            task = asyncio.create_task(ex.aexecute(slow(SLOW_ROWS), media="json"))
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert await until(lambda: not alive(before), 10), "the worker was not killed"
        return await ex.aexecute(numbered(7), media="json", timeout=30)

    assert number(run(main())) == 7
    assert wait_until(lambda: len(ex.worker_pids) == 1 and ex.worker_pids != [before])
    assert number(run(ex.aexecute(numbered(8), media="json"))) == 8


def test_a_call_cancelled_while_waiting_for_a_worker_loses_no_worker(own: Callable[..., EmbeddedExecutor],
                                                                      run: Run) -> None:
    """The waiter gives up before it gets a worker: nothing is killed, and the worker goes to the next caller."""
    ex = own(1, "big", timeout=30)
    pids = ex.worker_pids
    rows = 1000  # about 1 s

    async def main() -> tuple[Result, Result]:
        running = asyncio.create_task(ex.aexecute(slow(rows), media="json"))
        assert await until(lambda: busy(ex))
        waiting = asyncio.create_task(ex.aexecute(numbered(1), media="json"))
        assert await until(lambda: waiters(ex) == 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        answer = await running
        after = await ex.aexecute(numbered(2), media="json", timeout=5)  # "busy" if the worker went astray
        return answer, after

    answer, after = run(main())
    assert number(answer) == rows * BIG
    assert number(after) == 2
    assert ex.worker_pids == pids
    assert wait_until(lambda: all_free(ex), 10)


@pytest.mark.parametrize("order", ["give-up-then-offer", "offer-then-give-up", "hand-over-then-give-up"])
def test_a_worker_offered_to_a_call_that_gives_up_at_that_moment_is_passed_on(
        own: Callable[..., EmbeddedExecutor], run: Run, order: str) -> None:
    """The race between a free worker going to a waiting call and that call giving up, made deterministic:
    the only worker is held with the executor's own ``_aacquire`` / ``_release`` (what ``aexecute`` uses), so
    its release can be put exactly before, at or after the cancellation. Whichever way the race goes, the
    worker must reach the next caller."""
    ex = own(1)
    pids = ex.worker_pids

    async def main() -> Result:
        worker = await ex._aacquire(5)
        waiting = asyncio.create_task(ex.aexecute(numbered(1), media="json"))
        assert await until(lambda: waiters(ex) == 1)
        if order == "give-up-then-offer":
            waiting.cancel()
            ex._release(worker)
        elif order == "offer-then-give-up":  # the hand-over is on its way to the loop
            ex._release(worker)
            waiting.cancel()
        else:  # the hand-over has happened, the waiting call has not run since
            ex._release(worker)
            await asyncio.sleep(0)
            waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return await ex.aexecute(numbered(2), media="json", timeout=3)  # "busy" if the worker went astray

    assert number(run(main())) == 2
    assert ex.worker_pids == pids  # no worker was ever running a query: nothing to kill
    assert wait_until(lambda: all_free(ex), 10)


def test_a_waiting_call_is_served_when_the_worker_is_free(own: Callable[..., EmbeddedExecutor]) -> None:
    ex = own(1, "big", timeout=30)
    rows = 500  # about half a second

    async def main() -> list[int]:
        first = asyncio.create_task(ex.aexecute(slow(rows), media="json"))
        assert await until(lambda: busy(ex))
        queued = [asyncio.create_task(ex.aexecute(numbered(n), media="json")) for n in range(3)]
        return [number(r) for r in await asyncio.gather(first, *queued)]

    assert within(main()) == [rows * BIG, 0, 1, 2]
    assert wait_until(lambda: all_free(ex), 10)


def test_all_workers_busy_is_reported_not_waited_for_forever(own: Callable[..., EmbeddedExecutor],
                                                             run: Run) -> None:
    ex = own(1, "big", timeout=60)

    async def main() -> tuple[StoreUnavailable, float, Result]:
        heavy = asyncio.create_task(ex.aexecute(HEAVY, media="json"))
        assert await until(lambda: busy(ex))  # the heavy query holds the only worker
        start = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await ex.aexecute("ASK { ?s ?p ?o }", media="json", timeout=0.5)
        elapsed = time.monotonic() - start
        assert not heavy.done()
        heavy.cancel()  # kills the worker: the heavy query would run for hours
        with pytest.raises(asyncio.CancelledError):
            await heavy
        answer = await ex.aexecute(numbered(3), media="json")  # waits for the replacement
        return caught.value, elapsed, answer

    busy_error, elapsed, answer = run(main())
    assert str(busy_error) == "all 1 query workers stayed busy for 0.5 s; try again" and busy_error.status == 503
    assert 0.5 <= elapsed < 5
    assert number(answer) == 3
    assert wait_until(lambda: all_free(ex), 10)  # the call that gave up left no live waiter behind


def test_closing_answers_running_and_waiting_calls_at_once(own: Callable[..., EmbeddedExecutor]) -> None:
    ex = own(1, "big", timeout=60)

    async def main() -> tuple[list[BaseException | Result], float]:
        heavy = asyncio.create_task(ex.aexecute(HEAVY, media="json"))
        assert await until(lambda: busy(ex))
        waiting = asyncio.create_task(ex.aexecute(numbered(1), media="json"))
        assert await until(lambda: waiters(ex) == 1)
        start = time.monotonic()
        await asyncio.to_thread(ex.close)
        outcomes = await asyncio.gather(heavy, waiting, return_exceptions=True)
        return list(outcomes), time.monotonic() - start

    outcomes, elapsed = within(main())
    assert all(isinstance(o, StoreUnavailable) for o in outcomes), outcomes
    assert "closed" in str(outcomes[1])
    assert elapsed < 10  # not after their 60 s timeouts


def test_a_dataset_that_does_not_load_fails_waiting_calls_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nq"
    bad.write_text("<http://a> <http://b> oops .\n", encoding="utf-8")
    with EmbeddedExecutor(bad, workers=1, timeout=60) as ex:
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match="cannot open the dataset"):
            within(ex.aexecute(LABELS, media="json"))  # waits for the worker to load, which fails
        assert time.monotonic() - start < 30  # not after its 60 s timeout


# --- dead workers ---------------------------------------------------------------------------------------------


def test_a_worker_killed_while_idle_does_not_fail_the_next_call(own: Callable[..., EmbeddedExecutor],
                                                                run: Run) -> None:
    ex = own(2)
    first = ex.worker_pids
    for pid in first:  # both: whichever the next call picks first is dead (unless already replaced)
        os.kill(pid, signal.SIGKILL)
    assert number(run(ex.aexecute(numbered(9), media="json", timeout=10))) == 9
    assert wait_until(lambda: len(ex.worker_pids) == 2 and not set(ex.worker_pids) & set(first))

    second = ex.worker_pids
    os.kill(second[0], signal.SIGKILL)
    answers = run(gather(*(ex.aexecute(numbered(n), media="json", timeout=10) for n in range(10))))
    assert [number(r) for r in answers] == list(range(10))
    assert wait_until(lambda: len(ex.worker_pids) == 2 and second[0] not in ex.worker_pids)
    assert number(run(ex.aexecute(numbered(10), media="json"))) == 10


def test_a_worker_that_dies_while_answering_is_retried_even_when_the_loop_is_late(
        own: Callable[..., EmbeddedExecutor], run: Run) -> None:
    """The watcher used to retire a worker the moment its process died, even one an aexecute was reading, and
    closed its pipe: that drops the descriptor from the loop's epoll set without an event, so the call waited
    out its whole timeout instead of retrying. Now the holder of a worker is the one to retire it."""
    ex = own(2, "big", timeout=30)
    rows = 1000  # about 1 s: killed after 0.3 s, retried on the other worker

    async def main() -> Result:
        task = asyncio.create_task(ex.aexecute(slow(rows), media="json", timeout=4))
        await asyncio.sleep(0.3)
        with ex._cond:
            idle = set(ex._idle)
            (running,) = [w for w in ex._workers if w not in idle]
        os.kill(running.process.pid, signal.SIGKILL)  # a crash (out of memory, a segfault) mid-query
        time.sleep(0.5)  # the event loop is busy with something else meanwhile, as on a loaded server
        return await task

    assert number(run(main())) == rows * BIG
    assert wait_until(lambda: len(ex.worker_pids) == 2)


def test_workers_that_died_idle_leave_nothing_behind_that_fails_a_call(own: Callable[..., EmbeddedExecutor]) -> None:
    """Each idle death is seen by the watcher and replaced; the dead workers must not linger where a call
    would pick them and spend its retries on them (size + 2 attempts: 3 here)."""
    ex = own(1)
    for _ in range(3):
        (pid,) = ex.worker_pids
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: len(ex.worker_pids) == 1 and ex.worker_pids != [pid])  # noqa: B023
    # (a blocking execute() first would also clear what lingers, so the awaited call goes first)
    assert number(within(ex.aexecute(numbered(2), media="json", timeout=10))) == 2
    assert number(ex.execute(numbered(3), media="json", timeout=10)) == 3


# --- one reader per worker and loop ---------------------------------------------------------------------------


class Counting:
    """Mixed into an event loop: counts how often a descriptor is put on or taken off its watch list."""

    added = removed = 0

    def add_reader(self, *args: Any) -> None:
        self.added += 1
        super().add_reader(*args)  # type: ignore[misc]  # the loop class it is mixed into has it

    def remove_reader(self, fd: Any) -> bool:
        self.removed += 1
        return bool(super().remove_reader(fd))  # type: ignore[misc]


class CountingAsyncioLoop(Counting, asyncio.SelectorEventLoop):
    pass


class CountingUvloop(Counting, uvloop.Loop):  # type: ignore[misc]  # uvloop's Loop is untyped
    pass


@pytest.mark.parametrize("kind", [CountingAsyncioLoop, CountingUvloop])
def test_a_loop_watches_a_workers_pipe_once_for_all_its_calls(own: Callable[..., EmbeddedExecutor],
                                                              kind: type[asyncio.AbstractEventLoop]) -> None:
    """Registering the pipe for each call and removing it after cost five system calls a query; the pipe now
    stays watched from one call to the next (the answers must of course still be each call's own)."""
    ex = own(2)
    loop = kind()
    try:
        async def main() -> list[int]:
            answers = [number(await ex.aexecute(numbered(n), media="json")) for n in range(20)]
            answers += [number(r) for r in await gather(*(ex.aexecute(numbered(n), media="json")
                                                          for n in range(20, 30)))]
            return answers

        assert loop.run_until_complete(asyncio.wait_for(main(), LIMIT)) == list(range(30))
        assert loop.added == 2 and loop.removed == 0  # type: ignore[attr-defined]  # one per worker, kept
    finally:
        loop.close()


class LoopThread:
    """An event loop running in its own thread, as the server's does, for calls made from another thread."""

    def __init__(self, kind: str) -> None:
        self.loop = (LOOPS[kind] or asyncio.new_event_loop)()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LoopThread:
        self.thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(LIMIT)

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.mark.parametrize("kind", list(LOOPS))
def test_a_blocking_call_gets_the_worker_a_loop_in_another_thread_watches(own: Callable[..., EmbeddedExecutor],
                                                                          kind: str) -> None:
    """The only worker is watched by a loop that runs on (the server's) other thread: a blocking execute() has
    that loop let go of it, gets its own answer, and the loop's next call takes the worker back."""
    ex = own(1)
    (worker,) = ex._workers
    with LoopThread(kind) as there:
        assert number(there.run(ex.aexecute(numbered(1), media="json"))) == 1
        assert worker.loop is there.loop
        assert number(ex.execute(numbered(2), media="json", timeout=10)) == 2
        assert worker.loop is None
        assert number(there.run(ex.aexecute(numbered(3), media="json"))) == 3
        assert worker.loop is there.loop
        assert [number(ex.execute(numbered(n), media="json", timeout=10)) for n in (4, 5)] == [4, 5]
    assert ex.worker_pids == [worker.process.pid]  # nothing was killed on the way


def test_a_blocking_call_inside_a_coroutine_does_not_wait_for_its_own_loop(own: Callable[..., EmbeddedExecutor],
                                                                          run: Run) -> None:
    """The loop that watches the worker is the one this thread runs, so it cannot be asked and waited for:
    the blocking call lets go of the worker itself (before, it would wait out its timeout)."""
    ex = own(1)

    async def main() -> list[int]:
        first = number(await ex.aexecute(numbered(1), media="json"))
        second = number(ex.execute(numbered(2), media="json", timeout=5))
        return [first, second, number(await ex.aexecute(numbered(3), media="json"))]

    assert run(main()) == [1, 2, 3]


@pytest.mark.parametrize("kind", list(LOOPS))
def test_a_watched_worker_that_dies_idle_is_let_go_of_and_replaced(own: Callable[..., EmbeddedExecutor],
                                                                   kind: str) -> None:
    """Its pipe's end stays readable: the loop must stop watching it (or spin on it) and calls go on."""
    ex = own(1)
    (worker,) = ex._workers
    with LoopThread(kind) as there:
        assert number(there.run(ex.aexecute(numbered(1), media="json"))) == 1
        os.kill(worker.process.pid, signal.SIGKILL)
        assert wait_until(lambda: worker.loop is None and worker.conn.closed, 10)
        assert wait_until(lambda: len(ex.worker_pids) == 1 and ex.worker_pids != [worker.process.pid])
        assert number(there.run(ex.aexecute(numbered(2), media="json", timeout=10))) == 2


@pytest.mark.parametrize("kind", list(LOOPS))
def test_closing_from_another_thread_closes_the_pipes_a_running_loop_watches(nquads: Path, kind: str) -> None:
    """A pipe is closed by the loop that watches it, after it let go: closed from another thread, its number
    could be reused by a new pipe while the loop still watched it."""
    ex = EmbeddedExecutor(nquads, workers=2, timeout=30)
    ex.wait_ready(60)
    workers = list(ex._workers)
    with LoopThread(kind) as there:
        answers = there.run(gather(*(ex.aexecute(numbered(n), media="json") for n in range(6))))
        assert [number(r) for r in answers] == list(range(6))
        assert any(w.loop is there.loop for w in workers)
        ex.close()
        assert wait_until(lambda: all(w.conn.closed and w.loop is None for w in workers), 10)
        with pytest.raises(StoreUnavailable, match="closed"):
            there.run(ex.aexecute(numbered(7), media="json"))


# --- large answers --------------------------------------------------------------------------------------------

LARGE = {
    "construct-ntriples": ("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "ntriples"),
    "select-json": ("SELECT * WHERE { ?s ?p ?o }", "json"),
    "select-xml": ("SELECT * WHERE { ?s ?p ?o }", "xml"),
}


@pytest.fixture(scope="module")
def big_executor(big: Path) -> Iterator[EmbeddedExecutor]:
    with EmbeddedExecutor(big, workers=2, timeout=60, max_rows=BIG) as ex:
        ex.wait_ready(60)
        yield ex


@pytest.mark.parametrize(("query", "media"), LARGE.values(), ids=LARGE.keys())
def test_a_large_answer_arrives_intact(big_executor: EmbeddedExecutor, run: Run, query: str, media: str) -> None:
    blocking = big_executor.execute(query, media=media)
    assert len(blocking.body) > 1_000_000  # many 64 KiB reads
    awaited = run(big_executor.aexecute(query, media=media))
    assert awaited == blocking
    # several at once, on two workers: their pipes are read on one event loop, interleaved
    many = run(gather(*(big_executor.aexecute(query, media=media) for _ in range(4))))
    assert all(result == blocking for result in many)
    assert big_executor.execute(query, media=media) == blocking  # and the blocking path still reads them whole


def test_large_and_small_answers_interleave(big_executor: EmbeddedExecutor, run: Run) -> None:
    query = LARGE["construct-ntriples"][0]
    large = big_executor.execute(query, media="ntriples")
    calls: list[Awaitable[Result]] = []
    for n in range(6):
        calls.append(big_executor.aexecute(query, media="ntriples"))
        calls.append(big_executor.aexecute(numbered(n), media="json"))
    results = run(gather(*calls))
    assert all(r == large for r in results[0::2])
    assert [number(r) for r in results[1::2]] == list(range(6))
    assert big_executor.triple_count() == BIG


# --- the pipe framing -----------------------------------------------------------------------------------------


def frame(obj: Any, *, long: bool = False) -> bytes:
    """``obj`` framed as Connection.send does: a signed 4-byte length, or -1 and an 8-byte one."""
    body = pickle.dumps(obj)
    header = struct.pack("!i", -1) + struct.pack("!Q", len(body)) if long else struct.pack("!i", len(body))
    return header + body


def test_a_worker_reads_each_request_whole_however_the_pipe_cuts_it() -> None:
    """The worker reads its requests with its own reads (``_next_request``), not ``Connection.recv()``: two
    requests sent back to back, one of them longer than a read, come out whole and in order, then None at
    the end of the pipe."""
    parent, child = multiprocessing.Pipe()
    big = {"sparql": "#" * (3 * READ_SIZE), "seq": 1}

    def send() -> None:  # in a thread: the big one does not fit in the pipe's buffer
        parent.send(big)
        parent.send({"sparql": "ASK {}", "seq": 2})
        parent.close()

    sender = threading.Thread(target=send)
    sender.start()
    pending = bytearray()
    assert _next_request(child.fileno(), pending) == big
    assert _next_request(child.fileno(), pending) == {"sparql": "ASK {}", "seq": 2}
    assert _next_request(child.fileno(), pending) is None and not pending
    sender.join(10)
    child.close()


def test_take_message_waits_for_a_whole_header() -> None:
    data = frame(("ok", "x"))
    for cut in range(4):
        pending = bytearray(data[:cut])
        assert _take_message(pending) is _INCOMPLETE
        assert pending == data[:cut]  # nothing consumed
    long = frame(("ok", "x"), long=True)
    for cut in range(4, 12):  # the -1 is there, the 8-byte length is not yet
        pending = bytearray(long[:cut])
        assert _take_message(pending) is _INCOMPLETE
        assert pending == long[:cut]


def test_take_message_waits_for_a_whole_body() -> None:
    data = frame(("ok", b"y" * 1000))
    for cut in (4, 5, len(data) // 2, len(data) - 1):
        pending = bytearray(data[:cut])
        assert _take_message(pending) is _INCOMPLETE
        assert pending == data[:cut]
    pending = bytearray(data)
    assert _take_message(pending) == ("ok", b"y" * 1000)
    assert pending == b""


def test_take_message_takes_one_message_at_a_time() -> None:
    third = frame(("error", "TooManyRows", "no"))
    pending = bytearray(frame(("started",)) + frame(("ok", {"a": 1})) + third[:7])
    assert _take_message(pending) == ("started",)
    assert _take_message(pending) == ("ok", {"a": 1})
    assert _take_message(pending) is _INCOMPLETE
    assert pending == third[:7]  # the start of the third is kept for later
    pending += third[7:]
    assert _take_message(pending) == ("error", "TooManyRows", "no")
    assert _take_message(pending) is _INCOMPLETE and pending == b""


def test_take_message_reads_the_long_header_form() -> None:
    message = ("ok", Result("text/plain", b"z" * 70_000, "CONSTRUCT"))
    data = frame(message, long=True)
    assert data[:4] == b"\xff\xff\xff\xff"
    pending = bytearray(data + frame(("started",)))
    assert _take_message(pending) == message
    assert _take_message(pending) == ("started",)
    assert pending == b""


def test_take_message_reads_what_connection_send_writes() -> None:
    """The real framing: bytes written by multiprocessing's Connection.send, fed in pieces of random sizes."""
    messages = [("started",), ("ok", b"a" * 100), ("ok", b"b" * 20_000), ("ok", "c" * 300_000),
                ("error", "QuerySyntaxError", "no")]
    reader, writer = multiprocessing.Pipe(duplex=False)

    def send() -> None:
        for message in messages:
            writer.send(message)
        writer.close()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    raw = bytearray()
    while chunk := os.read(reader.fileno(), 65536):
        raw += chunk
    sender.join(10)
    reader.close()

    rng = random.Random(7)
    pending, got, offset = bytearray(), [], 0
    while offset < len(raw):
        step = rng.randint(1, 5000)
        pending += raw[offset:offset + step]
        offset += step
        while (message := _take_message(pending)) is not _INCOMPLETE:
            got.append(message)
    assert got == messages and pending == b""


# --- the remote executor --------------------------------------------------------------------------------------


def test_remote_aexecute_runs_in_a_thread_and_gives_what_execute_gives() -> None:
    """Against an in-process HTTP transport that answers slowly: the event loop keeps running meanwhile."""
    body = json.dumps({"head": {"vars": ["n"]}, "results": {"bindings": [
        {"n": {"type": "literal", "value": "4", "datatype": "http://www.w3.org/2001/XMLSchema#integer"}}]}})
    threads: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        threads.append(threading.current_thread().name)
        time.sleep(0.5)
        return httpx.Response(200, content=body.encode(), headers={"content-type": "application/sparql-results+json"})

    client = httpx.Client(transport=httpx.MockTransport(answer))
    remote = RemoteExecutor("http://sparql.invalid/query", timeout=10, client=client)
    query = "SELECT ?n WHERE { ?s ?p ?n }"
    dataset = {"default_graphs": [CLAIMS], "named_graphs": []}  # given: no graph-listing request first
    try:
        blocking = remote.execute(query, media="json", **dataset)

        async def main() -> tuple[Result, int]:
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.05)
                    ticks += 1

            ticker = asyncio.create_task(tick())
            result = await remote.aexecute(query, media="json", **dataset)
            ticker.cancel()
            return result, ticks

        awaited, ticks = within(main())
        assert awaited == blocking and number(awaited) == 4
        assert ticks >= 3  # the loop ran while the request waited
        assert threads[0] == threading.main_thread().name and threads[1] != threading.main_thread().name
        with pytest.raises(QuerySyntaxError, match="SERVICE"):
            within(remote.aexecute("SELECT * WHERE { SERVICE <http://a.invalid/> { ?s ?p ?o } }", media="json"))
        assert len(threads) == 2  # refused before any request
    finally:
        remote.close()
        client.close()
