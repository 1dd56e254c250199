"""Start-up: SPARQL is answered while the knowledge model is still being read, and the rest says so (503).

``anemia-kg serve`` opens the executor, then reads the knowledge model in the background
(``open_services(..., wait=False)``). These tests hold the model's reading back with a gate in front of a real
embedded executor, so that the window in which it is not yet in can be observed without timing anything.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anemia_kg.api import Settings, create_app
from anemia_kg.api.services import NotReady, open_services, prepare_services
from anemia_kg.executor import EmbeddedExecutor, Executor, StoreUnavailable

ASK = "ASK { ?s ?p ?o }"


class Gated:
    """A real executor whose ``select`` (the model's reading) waits for ``gate``; ``fail`` makes it raise."""

    def __init__(self, inner: Executor):
        self.inner = inner
        self.gate = threading.Event()
        self.fail = 0  # how many selects still fail
        self.selects = 0

    def select(self, sparql: str, *, timeout: float | None = None) -> list[dict[str, Any]]:
        if "GRAPH ?g {}" not in sparql:  # the graph list is read at once; the model waits for the gate
            assert self.gate.wait(60), "the test never opened the gate"
            self.selects += 1
            if self.fail:
                self.fail -= 1
                raise StoreUnavailable("the engine went away")
        return self.inner.select(sparql, timeout=timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture()
def gated(real_build) -> Any:
    settings = Settings(root=real_build.root, workers=1, query_timeout=10)
    executor = Gated(EmbeddedExecutor(real_build.root / "data" / "build" / "anemia-kg.nq", workers=1, timeout=10))
    services = open_services(settings, executor, wait=False)  # type: ignore[arg-type]
    yield services, executor
    services.close()


def wait_until(predicate: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_sparql_answers_while_the_model_loads_and_the_api_says_503_until_it_is_in(gated):
    services, executor = gated
    assert not services.ready
    with pytest.raises(NotReady, match="still reading the knowledge model"):
        services.knowledge  # noqa: B018
    with TestClient(create_app(services.settings, services=services)) as client:
        sparql = client.get("/sparql", params={"query": ASK}, headers={"Accept": "application/sparql-results+json"})
        assert sparql.status_code == 200 and sparql.json()["boolean"] is True
        for path in ("/health", "/api/entities?q=anemia", "/api/paths?source=anemia&target=joint_pain", "/"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert "still reading the knowledge model" in response.text, path
        executor.gate.set()
        wait_until(lambda: services.ready)
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["entities"] == 64
        assert client.get("/api/paths", params={"source": "anemia", "target": "joint_pain"}).json()["paths"]


def test_a_failed_read_is_reported_and_retried_on_the_next_request(gated):
    services, executor = gated
    executor.fail = 1
    executor.gate.set()
    wait_until(lambda: services._error is not None)
    with pytest.raises(NotReady, match="could not be read: the engine went away; retrying"):
        services.knowledge  # noqa: B018  (this access also starts the retry)
    wait_until(lambda: services.ready)
    assert len(services.knowledge.entities) == 64 and executor.selects > 9


def test_the_model_is_moved_out_of_the_garbage_collectors_reach_once_read(gated):
    """A full collection walking the whole model in the middle of a request was the API's p99 (30-35 ms at
    4 connections, against a p50 of 3 ms); once read, the model's objects are frozen (gc.freeze)."""
    import gc

    services, executor = gated
    gc.unfreeze()
    executor.gate.set()
    wait_until(lambda: services.ready)
    assert gc.get_freeze_count() > 10_000  # every object alive when the model was in, the model's included


def test_prepared_services_wait_for_the_app_to_read_the_model(real_build):
    """``anemia-kg serve`` prepares the services before uvicorn starts; the app's start reads the model, so that
    reading it does not compete with uvicorn's own start-up for the first SPARQL answer."""
    settings = Settings(root=real_build.root, workers=1, query_timeout=10)
    executor = EmbeddedExecutor(real_build.root / "data" / "build" / "anemia-kg.nq", workers=1, timeout=10)
    services = prepare_services(settings, executor)
    try:
        time.sleep(0.5)
        assert not services.ready and not services._loading.locked()  # nothing read, nothing reading
        with TestClient(create_app(settings, services=services)) as client:
            wait_until(lambda: services.ready)
            assert client.get("/health").json()["entities"] == 64
    finally:
        services.close()


def test_the_server_starts_its_workers_before_it_imports_the_web_stack(real_build) -> None:
    """``anemia-kg serve`` starts the query workers before it imports FastAPI, uvicorn and the build side
    (rdflib, pyshacl): 0.7 s of imports that the workers spend opening the dataset instead. The real command
    runs in a subprocess whose ``start_executor`` reports what is imported by then, and stops it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import anemia_kg.api.services as services\n"
        "from anemia_kg.cli import app\n"
        "def start_executor(settings):\n"
        "    print('imported:', sorted(m for m in ('fastapi', 'starlette', 'uvicorn', 'rdflib', 'pyshacl')"
        " if m in sys.modules), flush=True)\n"
        "    raise SystemExit(3)\n"
        "services.start_executor = start_executor\n"
        f"app(['--root', {str(real_build.root)!r}, 'serve', '--port', '1'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 3, out.stderr[-2000:]
    assert "imported: []" in out.stdout, out.stdout
