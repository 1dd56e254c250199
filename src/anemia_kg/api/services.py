"""What the application holds while it runs: the query executor, the knowledge model and the causal graphs.

They are opened once, from the built dataset: the embedded Oxigraph store by default (built first if there
is no build yet), or a remote SPARQL engine. Only the built artifact crosses from the build side: the
knowledge model is read back through SPARQL, the same way for both stores.

The SPARQL endpoint needs only the executor; the JSON API and the pages need the knowledge model, which takes
seconds to read on a large graph (about 2 s at 314,000 triples). ``anemia-kg serve`` therefore starts
answering SPARQL as soon as the executor is up and reads the model in a background thread
(``open_services(..., wait=False)``); until it is in, the routes that need it (``/health`` included) answer
503 with a ``Retry-After`` and say so. Everything else (tests, ``create_app()`` under uvicorn) waits for it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass

import networkx as nx

from ..build import Paths, build
from ..causal import build_graph
from ..executor import EmbeddedExecutor, Executor, RemoteExecutor, StoreUnavailable
from ..knowledge import Knowledge, load_knowledge
from ..store import prepare_disk_store
from .settings import Settings

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 300.0  # seconds the query workers may take to open or load the dataset


class NotReady(StoreUnavailable):
    """The knowledge model is still being read (or could not be read); the SPARQL endpoint already answers."""

    retry_after = 1


@dataclass(frozen=True)
class Model:
    """The in-memory read model: entities, claims and evidence, and the two graphs paths are searched in."""

    knowledge: Knowledge
    causal: nx.DiGraph
    everything: nx.DiGraph


class Services:
    """The long-lived objects the route handlers use; the model may still be loading (see the module doc)."""

    def __init__(self, settings: Settings, executor: Executor, graphs: list[str]):
        self.settings = settings
        self.executor = executor
        self.graphs = graphs
        self._model: Model | None = None
        self._error: str | None = None
        self._loading = threading.Lock()
        self._started = time.monotonic()

    # the model, or NotReady

    @property
    def model(self) -> Model:
        model = self._model
        if model is not None:
            return model
        if self._error is not None:
            self.load_in_background()  # try again: a remote engine may be back
            raise NotReady(f"the knowledge model could not be read: {self._error}; retrying")
        raise NotReady(f"the server is still reading the knowledge model ({time.monotonic() - self._started:.0f} s "
                       "so far); SPARQL queries are already answered; try again in a moment")

    @property
    def ready(self) -> bool:
        return self._model is not None

    @property
    def knowledge(self) -> Knowledge:
        return self.model.knowledge

    @property
    def causal(self) -> nx.DiGraph:
        return self.model.causal

    @property
    def everything(self) -> nx.DiGraph:
        return self.model.everything

    # loading

    def load(self) -> Model:
        """Read the model now (in the calling thread) unless it is in already."""
        with self._loading:
            if self._model is None:
                started = time.monotonic()
                try:
                    model = read_model(self.executor, self.settings)
                except Exception as exc:
                    self._error = str(exc) or type(exc).__name__
                    raise
                # The model never changes from now on: move it out of the garbage collector's reach, so that a
                # full collection does not walk every entity, claim and edge again in the middle of a request
                # (that was the API's p99: 30-35 ms against a p50 of 3 ms at 4 connections; 6 ms after).
                gc.collect()
                gc.freeze()
                self._model, self._error = model, None
                log.info("knowledge model read in %.2f s", time.monotonic() - started)
            return self._model

    def load_in_background(self) -> None:
        """Start reading the model in a daemon thread, unless a read is under way."""
        if self._model is not None or self._loading.locked():
            return

        def run() -> None:
            try:
                self.load()
            except Exception:
                log.exception("reading the knowledge model failed; the next API request tries again")

        threading.Thread(target=run, name="anemia-kg-model", daemon=True).start()

    def close(self) -> None:
        self.executor.close()


def ensure_build(paths: Paths) -> None:
    """Build the dataset if there is none yet (a fresh clone has no data/build)."""
    if not paths.built("nq").exists():
        log.warning("no build at %s; building it first", paths.rel(paths.out))
        build(paths)


def open_executor(settings: Settings) -> Executor:
    """A remote executor when an endpoint is configured, else worker processes over the built dataset."""
    if settings.endpoint:
        return RemoteExecutor(settings.endpoint, timeout=settings.query_timeout, max_rows=settings.max_rows)
    paths = Paths(settings.root)
    ensure_build(paths)
    source = paths.built("nq")
    if settings.store is not None:
        source = prepare_disk_store(source, settings.store)
    return EmbeddedExecutor(source, workers=settings.workers, timeout=settings.query_timeout,
                            max_rows=settings.max_rows)


def read_model(executor: Executor, settings: Settings) -> Model:
    """The knowledge model and its graphs, read through the executor's SPARQL."""
    knowledge = load_knowledge(lambda sparql: executor.select(sparql, timeout=max(30.0, settings.query_timeout)))
    return Model(knowledge, build_graph(knowledge, "causal"), build_graph(knowledge, "all"))


def open_services(settings: Settings, executor: Executor | None = None, *, wait: bool = True) -> Services:
    """Open the executor (unless given) and read the knowledge model through it.

    ``wait=False`` returns as soon as the executor answers and reads the model in the background.
    """
    executor = executor or open_executor(settings)
    try:
        executor.wait_ready(STARTUP_TIMEOUT)  # the workers load the dataset; the query timeout is for queries
        services = Services(settings, executor, sorted(executor.graphs()))
        if wait:
            services.load()
        else:
            services.load_in_background()
        return services
    except BaseException:
        executor.close()
        raise
