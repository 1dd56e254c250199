"""What the application holds while it runs: the query executor, the knowledge model and the causal graphs.

They are opened once, from the built dataset: the embedded Oxigraph store by default (built first if there
is no build yet), or a remote SPARQL engine. Only the built artifact crosses from the build side: the
knowledge model is read back through SPARQL, the same way for both stores (``readmodel.py``), and for the
embedded store kept as a snapshot that later starts load instead.

The SPARQL endpoint needs only the executor; the JSON API and the pages need the knowledge model, which takes
seconds to read on a large graph (15-25 s at 1,000,000 triples through the workers; under a second from the
snapshot). ``anemia-kg serve`` therefore starts the executor first (its workers open the dataset while the
web stack is imported: :func:`start_executor`), answers SPARQL as soon as they are up, and has the app read
the model in a background thread once it starts (:func:`prepare_services`, then the app's lifespan); until
it is in, the routes that need it (``/health`` included) answer 503 with a ``Retry-After`` and say so.
Everything else (tests, ``create_app()`` under uvicorn) waits for it (:func:`open_services`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path

import networkx as nx

from ..executor import EmbeddedExecutor, Executor, RemoteExecutor, StoreUnavailable
from ..knowledge import Knowledge
from ..paths import Paths
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
                    if self.snapshot:  # before the model is in: once /health says ready, the next start is quick
                        self._save(model)
                # The model never changes from now on: move it out of the garbage collector's reach, so that a
                # full collection does not walk every entity, claim and edge again in the middle of a request
                # (that was the API's p99: 30-35 ms against a p50 of 3 ms at 4 connections; 6 ms after).
                gc.collect()
                gc.freeze()
                # model_source first: /health answers once _model is set, and must never see it unset
                self.model_source, self._error, self._model = source, None, model
                log.info("knowledge model read from the %s in %.2f s", source, time.monotonic() - started)
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
        from ..build import build  # the whole build side: imported only when there is something to build

        log.warning("no build at %s; building it first", paths.rel(paths.out))
        build(paths)


def start_executor(settings: Settings) -> tuple[Executor, Path | None]:
    """The executor of ``settings``, and where the knowledge model of its dataset is kept (None: nowhere).

    A remote executor when an endpoint is configured, else worker processes over the built dataset (built
    first if there is none), which open it in the background: ``anemia-kg serve`` calls this before it
    imports the web stack, and ``wait_ready`` waits for them. The model's snapshot is named by the N-Quads'
    sha256 (0.2 s at 1M triples), which the on-disk store is checked against too.
    """
    if settings.endpoint:
        return RemoteExecutor(settings.endpoint, timeout=settings.query_timeout, max_rows=settings.max_rows), None
    paths = Paths(settings.root)
    ensure_build(paths)
    # The file data/build points to now (it is a symlink a build swaps): hashed, then served, even if a build
    # publishes another meanwhile, so that the snapshot's name and the workers' data are of the same dataset.
    source = paths.built("nq").resolve()
    digest = dataset_digest(source)
    snapshot = snapshot_path(paths, digest)  # before any worker is started: nothing to stop if it fails
    if settings.store is not None:
        source = prepare_disk_store(source, settings.store, digest=digest)
    executor = EmbeddedExecutor(source, workers=settings.workers, timeout=settings.query_timeout,
                                max_rows=settings.max_rows, query_memory=settings.query_memory_mb * 2**20)
    return executor, snapshot


def prepare_services(settings: Settings, executor: Executor, snapshot: Path | None = None) -> Services:
    """The services over a started executor, once it answers; the model is not read yet (:meth:`Services.load`).

    ``anemia-kg serve`` has the application read it when it starts (its lifespan): reading the snapshot
    (0.4 s of this process at 1M triples) beside uvicorn's own start-up delayed the first answer by as much.
    """
    try:
        executor.wait_ready(STARTUP_TIMEOUT)  # the workers load the dataset; the query timeout is for queries
        return Services(settings, executor, sorted(executor.graphs()), snapshot)
    except BaseException:
        executor.close()
        raise


def open_services(settings: Settings, executor: Executor | None = None, *, wait: bool = True,
                  snapshot: Path | None = None) -> Services:
    """Start the executor (unless given) and read the knowledge model through it, or from its snapshot.

    ``wait=False`` returns as soon as the executor answers and reads the model in the background. An
    executor given by the caller gets the snapshot the caller names, if any: its dataset is not known here.
    """
    if executor is None:
        executor, snapshot = start_executor(settings)
    services = prepare_services(settings, executor, snapshot)
    if not wait:
        services.load_in_background()
        return services
    try:
        services.load()
    except BaseException:
        executor.close()
        raise
    return services
