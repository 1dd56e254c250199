"""What the application holds while it runs: the query executor, the knowledge model and the causal graphs.

They are opened once, in the application's lifespan, from the built dataset: the embedded Oxigraph store by
default (built first if there is no build yet), or a remote SPARQL engine. Only the built artifact crosses
from the build side: the knowledge model is read back through SPARQL, the same way for both stores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import networkx as nx

from ..build import Paths, build
from ..causal import build_graph
from ..executor import EmbeddedExecutor, Executor, RemoteExecutor
from ..knowledge import Knowledge, load_knowledge
from ..store import prepare_disk_store
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The long-lived objects the route handlers use."""

    settings: Settings
    executor: Executor
    knowledge: Knowledge
    causal: nx.DiGraph
    everything: nx.DiGraph
    graphs: list[str]

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


def open_services(settings: Settings, executor: Executor | None = None) -> Services:
    """Open the executor (unless given) and read the knowledge model through it."""
    executor = executor or open_executor(settings)
    try:
        knowledge = load_knowledge(lambda sparql: executor.select(sparql, timeout=max(30.0, settings.query_timeout)))
        return Services(settings, executor, knowledge, build_graph(knowledge, "causal"),
                        build_graph(knowledge, "all"), sorted(executor.graphs()))
    except BaseException:
        executor.close()
        raise
