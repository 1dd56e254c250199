"""The query memory limit: a query that takes more memory than one query may is stopped with a clear 422.

Real worker processes over a chain of 20,000 triples, where ``ORDER BY`` over a three-way join must hold the
whole cross product in memory (it grows by hundreds of megabytes a second), and the real server over the real
article's build. Every wait is bounded; durations are only generous upper bounds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from anemia_kg.executor import EmbeddedExecutor, QueryTimeout, QueryTooLarge
from anemia_kg.executor.embedded import OOM_SCORE_ADJ
from test_executor import write_big_dataset
from test_server import running_server

LIMIT_MB = 150
# Every solution of a three-way cross product, sorted: nothing can be answered before all of them are held.
GREEDY = "SELECT * WHERE { ?a ?p ?b . ?c ?q ?d . ?e ?r ?f } ORDER BY ?a ?c ?e"
ASK = "ASK { ?s ?p ?o }"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_big_dataset(tmp_path_factory.mktemp("big"))


@pytest.fixture
def limited(big: Path) -> Iterator[EmbeddedExecutor]:
    with EmbeddedExecutor(big, workers=2, timeout=60, query_memory=LIMIT_MB * 2**20) as ex:
        ex.wait_ready(60)
        yield ex


def _check_stopped(error: BaseException, elapsed: float) -> None:
    assert isinstance(error, QueryTooLarge), repr(error)
    assert error.status == 422
    assert f"more than {LIMIT_MB} MB of memory" in str(error) and "query_memory_mb" in str(error)
    assert elapsed < 30, "stopped by the timeout, not by the memory guard"  # the timeout is 60 s


def _one_worker_replaced(ex: EmbeddedExecutor, before: set[int]) -> None:
    """Exactly one worker was stopped (the query was not retried on the other one) and it was replaced."""
    deadline = time.monotonic() + 60
    while len(ex.worker_pids) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    after = set(ex.worker_pids)
    assert len(after) == 2 and len(after - before) == 1, (before, after)


def test_a_greedy_query_is_stopped_with_422_and_only_its_worker_is_replaced(limited: EmbeddedExecutor) -> None:
    before = set(limited.worker_pids)
    started = time.monotonic()
    with pytest.raises(QueryTooLarge) as caught:
        limited.execute(GREEDY, media="json")
    _check_stopped(caught.value, time.monotonic() - started)
    _one_worker_replaced(limited, before)
    assert limited.execute(ASK, media="json").body == b'{"head":{},"boolean":true}'


def test_the_event_loop_path_stops_it_the_same_way(limited: EmbeddedExecutor) -> None:
    before = set(limited.worker_pids)

    async def greedy() -> tuple[BaseException, float]:
        started = time.monotonic()
        try:
            await limited.aexecute(GREEDY, media="json")
        except Exception as exc:  # noqa: BLE001 - checked below
            return exc, time.monotonic() - started
        raise AssertionError("the greedy query was answered")

    _check_stopped(*asyncio.run(greedy()))
    _one_worker_replaced(limited, before)
    assert asyncio.run(limited.aexecute(ASK, media="json")).body == b'{"head":{},"boolean":true}'


def test_ordinary_queries_never_trip_the_limit(limited: EmbeddedExecutor) -> None:
    before = set(limited.worker_pids)
    for n in range(60):
        rows = limited.select(f"SELECT ?o WHERE {{ <http://example.org/n{n}> ?p ?o }}")
        assert rows == [{"o": {"type": "uri", "value": f"http://example.org/n{n + 1}"}}]
    time.sleep(0.5)  # several looks of the guard
    assert set(limited.worker_pids) == before


def test_without_a_limit_the_same_query_runs_until_its_timeout(big: Path) -> None:
    """The guard, not anything else, stopped the query above: with no limit it runs into the timeout."""
    with EmbeddedExecutor(big, workers=1, timeout=1.5, query_memory=0) as ex:
        ex.wait_ready(60)
        with pytest.raises(QueryTimeout):
            ex.execute(GREEDY, media="json")


def test_workers_are_what_the_out_of_memory_killer_takes_first(limited: EmbeddedExecutor) -> None:
    for pid in limited.worker_pids:
        assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == str(OOM_SCORE_ADJ)
    assert int(Path("/proc/self/oom_score_adj").read_text()) < OOM_SCORE_ADJ  # the server's own is untouched


def test_workers_do_not_preempt_the_event_loop_that_wakes_them(limited: EmbeddedExecutor) -> None:
    """Workers run as SCHED_BATCH (no wake-up preemption; docs/benchmarks.md), the server itself as before."""
    assert limited.worker_pids
    for pid in limited.worker_pids:
        assert os.sched_getscheduler(pid) == os.SCHED_BATCH
        for thread in Path(f"/proc/{pid}/task").iterdir():  # the threads pyoxigraph started inherit it
            assert os.sched_getscheduler(int(thread.name)) == os.SCHED_BATCH
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_a_negative_limit_is_refused(big: Path) -> None:
    with pytest.raises(ValueError, match="query_memory"):
        EmbeddedExecutor(big, workers=1, query_memory=-1)


def test_the_server_answers_422_naming_the_setting_and_keeps_serving(real_build, tmp_path: Path) -> None:  # noqa: ANN001
    with running_server(real_build.root, tmp_path, "--workers", "2", "--query-timeout", "60",
                        "--query-memory-mb", str(LIMIT_MB), "--cache-mb", "0") as server, \
            httpx.Client(base_url=server.base, timeout=90) as client:
        started = time.monotonic()
        answer = client.get("/sparql", params={"query": GREEDY})
        assert time.monotonic() - started < 30, "stopped by the timeout, not by the memory guard"
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"detail": f"the query needed more than {LIMIT_MB} MB of memory and was stopped "
                                           "(setting query_memory_mb); narrow it"}
        assert client.get("/health").status_code == 200
        ask = client.get("/sparql", params={"query": ASK}, headers={"accept": "application/sparql-results+json"})
        assert ask.status_code == 200 and ask.json()["boolean"] is True
        assert "stopping it" in server.log()  # the log says which worker, how large, and the limit
