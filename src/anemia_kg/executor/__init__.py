"""Run read-only SPARQL for the API and ``/sparql`` with a time limit that really stops the work, and a row cap.

Two implementations of one small :class:`Executor` protocol:

* :class:`EmbeddedExecutor` (:mod:`.embedded`) evaluates on pyoxigraph inside worker processes, killed when a
  query outlives its time limit or crashes the engine.
* :class:`RemoteExecutor` (:mod:`.remote`) speaks the SPARQL 1.1 Protocol to another engine (Oxigraph server,
  Apache Jena Fuseki, ...) over httpx; see :mod:`anemia_kg.store` for how to load the dataset there.

Both give the same answers: the default graph is the union of the named graphs unless the caller (or the
query's own ``FROM``) says otherwise, the project's prefixes are predeclared, results are re-serialised by
:mod:`anemia_kg.results`, and ``SERVICE`` is refused, because the engine would open a connection to any host
the query names. What they share lives in :mod:`.common`.
"""

from typing import TYPE_CHECKING, Any

from .common import (
    COUNT_QUERY,
    GRAPH_MEDIA,
    GRAPHS_QUERY,
    PREFIX_MAP,
    SOLUTION_MEDIA,
    XSD_STRING,
    Executor,
    ExecutorError,
    QuerySyntaxError,
    QueryTimeout,
    QueryTooLarge,
    Result,
    StoreUnavailable,
    TooManyRows,
    binding,
    check_query,
    render,
    rows_of,
)
from .embedded import WATCH_SECONDS, EmbeddedExecutor

if TYPE_CHECKING:
    from .remote import GRAPH_CACHE_SECONDS, RemoteExecutor


def __getattr__(name: str) -> Any:
    """The remote executor, imported when first asked for: every query worker imports this package, and
    httpx took a tenth of a second of each worker's start."""
    if name in ("RemoteExecutor", "GRAPH_CACHE_SECONDS"):
        from . import remote

        return getattr(remote, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "COUNT_QUERY",
    "GRAPH_CACHE_SECONDS",
    "GRAPH_MEDIA",
    "GRAPHS_QUERY",
    "PREFIX_MAP",
    "SOLUTION_MEDIA",
    "WATCH_SECONDS",
    "XSD_STRING",
    "EmbeddedExecutor",
    "Executor",
    "ExecutorError",
    "QuerySyntaxError",
    "QueryTimeout",
    "QueryTooLarge",
    "RemoteExecutor",
    "Result",
    "StoreUnavailable",
    "TooManyRows",
    "binding",
    "check_query",
    "render",
    "rows_of",
]
