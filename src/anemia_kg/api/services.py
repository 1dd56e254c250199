"""What the application holds while it runs: the query executor, the knowledge model and the causal graphs.

They are opened once, from the built dataset: the embedded Oxigraph store by default (built first if there
is no build yet), or a remote SPARQL engine. Only the built artifact crosses from the build side: the
knowledge model is read back through SPARQL, the same way for both stores (``readmodel.py``), and for the
embedded store kept as a snapshot that later starts load instead.

The SPARQL endpoint needs only the executor; the JSON API and the pages need the knowledge model, which takes
seconds to read on a large graph (15-25 s at 1,000,000 triples through the workers; under a second from the
snapshot). ``anemia-kg serve`` therefore starts
answering SPARQL as soon as the executor is up and reads the model in a background thread
(``open_services(..., wait=False)``); until it is in, the routes that need it (``/health`` included) answer
503 with a ``Retry-After`` and say so. Everything else (tests, ``create_app()`` under uvicorn) waits for it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path

import networkx as nx

from ..build import Paths, build
from ..executor import EmbeddedExecutor, Executor, RemoteExecutor, StoreUnavailable
from ..knowledge import Knowledge
from ..store import dataset_digest, prepare_disk_store
from .readmodel import Model, load_snapshot, read_model, save_snapshot, snapshot_path
from .settings import Settings

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 300.0  # seconds the query workers may take to open or load the dataset


class NotReady(StoreUnavailable):
    """The knowledge model is still being read (or could not be read); the SPARQL endpoint already answers."""

    retry_after = 1


class Services:
    """The long-lived objects the route handlers use; the model may still be loading (see the module doc)."""

    def __init__(self, settings: Settings, executor: Executor, graphs: list[str], snapshot: Path | None = None):
        self.settings = settings
        self.executor = executor
        self.graphs = graphs
        self.snapshot = snapshot  # where the model of the executor's dataset is kept; None: always read it
        self.model_source: str | None = None  # "snapshot" or "sparql" once the model is in
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
                model = load_snapshot(self.snapshot) if self.snapshot else None
                source = "snapshot" if model else "sparql"
                if model is None:
                    try:
                        timeout = max(30.0, self.settings.query_timeout)
                        model = read_model(lambda sparql: self.executor.select(sparql, timeout=timeout))
                    except Exception as exc:
                        self._error = str(exc) or type(exc).__name__
                        raise
                # The model never changes from now on: move it out of the garbage collector's reach, so that a
                # full collection does not walk every entity, claim and edge again in the middle of a request
                # (that was the API's p99: 30-35 ms against a p50 of 3 ms at 4 connections; 6 ms after).
                gc.collect()
                gc.freeze()
                self._model, self._error, self.model_source = model, None, source
                log.info("knowledge model read from the %s in %.2f s", source, time.monotonic() - started)
                if source == "sparql" and self.snapshot:  # after the model is in: the API need not wait for it
                    self._save(model)
            return self._model

    def _save(self, model: Model) -> None:
        """Keep the model for the next start; a snapshot that cannot be written only costs that start time."""
        assert self.snapshot is not None
        try:
            save_snapshot(self.snapshot, model)
        except Exception as exc:
            log.warning("could not keep the knowledge model at %s (%s); the next start reads it again",
                        self.snapshot, exc)

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


def open_executor(settings: Settings, digest: str | None = None) -> Executor:
    """A remote executor when an endpoint is configured, else worker processes over the built dataset.

    ``digest`` is the built N-Quads' sha256 when the caller has it already (it takes 0.2 s at 1M triples).
    """
    if settings.endpoint:
        return RemoteExecutor(settings.endpoint, timeout=settings.query_timeout, max_rows=settings.max_rows)
    paths = Paths(settings.root)
    ensure_build(paths)
    source = paths.built("nq")
    if settings.store is not None:
        source = prepare_disk_store(source, settings.store, digest=digest)
    return EmbeddedExecutor(source, workers=settings.workers, timeout=settings.query_timeout,
                            max_rows=settings.max_rows)


def open_services(settings: Settings, executor: Executor | None = None, *, wait: bool = True) -> Services:
    """Open the executor (unless given) and read the knowledge model through it, or from its snapshot.

    ``wait=False`` returns as soon as the executor answers and reads the model in the background. Only an
    embedded executor opened here gets a snapshot: of one given by the caller, the dataset is not known.
    """
    snapshot = None
    if executor is None:
        digest = None
        if not settings.endpoint:
            paths = Paths(settings.root)
            ensure_build(paths)
            digest = dataset_digest(paths.built("nq"))
            snapshot = snapshot_path(paths, digest)
        executor = open_executor(settings, digest)
    try:
        executor.wait_ready(STARTUP_TIMEOUT)  # the workers load the dataset; the query timeout is for queries
        services = Services(settings, executor, sorted(executor.graphs()), snapshot)
        if wait:
            services.load()
        else:
            services.load_in_background()
        return services
    except BaseException:
        executor.close()
        raise
