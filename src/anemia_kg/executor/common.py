"""What both executors share: the error types, :class:`Result`, the :class:`Executor` protocol, the query
checks done before any engine sees a query, and the serialisation of pyoxigraph answers.

Results are re-serialised by :mod:`anemia_kg.results` so both executors give byte-for-byte the same answers (the
embedded store's JSON answers by pyoxigraph's writer, which writes the same bytes: :func:`native_json`), and
``SERVICE`` is refused here, because the engine would open a connection to any host the query names.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import pyoxigraph as ox

from .. import results
from ..namespaces import PREFIX_IRIS
from ..protocol import GRAPH_TYPES, SOLUTION_TYPES, QueryInfo, inspect_query

PREFIX_MAP = dict(PREFIX_IRIS)
SOLUTION_MEDIA = {media.name: media.mime for media in SOLUTION_TYPES}  # SELECT and ASK; the first is the default
GRAPH_MEDIA = {media.name: media.mime for media in GRAPH_TYPES}  # CONSTRUCT and DESCRIBE
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


class QueryTooLarge(ExecutorError):
    """The query needed more memory than a worker may add for one query; its worker was stopped. 422, like
    :class:`TooManyRows`: the request is understood, and asks for more than this server gives one query."""

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

    async def aexecute(self, sparql: str, *, media: str, default_graphs: Sequence[str] | None = None,
                       named_graphs: Sequence[str] | None = None, timeout: float | None = None,
                       max_rows: int | None = None) -> Result: ...

    def select(self, sparql: str, *, timeout: float | None = None) -> list[dict[str, Any]]: ...

    def graphs(self) -> list[str]: ...

    def triple_count(self) -> int: ...

    def wait_ready(self, timeout: float = 120.0) -> None: ...

    def close(self) -> None: ...


def check_query(sparql: str) -> QueryInfo:
    """Refuse what must never run here, before any engine sees it (the endpoint checks too: defence in depth)."""
    info = inspect_query(sparql)
    if info.refusal:
        raise QuerySyntaxError(info.refusal)
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


def render(answer: Any, *, form: str | None, media: str, max_rows: int,
           again: Callable[[], Any] | None = None) -> Result:
    """Serialise pyoxigraph results (solutions, a boolean, or triples) into ``media``, at most ``max_rows``.

    A ``media`` that does not suit the form (the caller guessed the form wrong) falls back to the form's
    default, JSON or Turtle, rather than failing. With ``again`` (a way to evaluate the query once more),
    JSON solutions are written by pyoxigraph's own writer, see :func:`native_json`.
    """
    if isinstance(answer, ox.QueryBoolean | ox.QuerySolutions):
        name = media if media in SOLUTION_MEDIA else "json"
        if isinstance(answer, ox.QueryBoolean):
            return Result(SOLUTION_MEDIA[name], results.serialize_boolean(bool(answer), name), "ASK")
        if name == "json" and again is not None:
            body = native_json(answer, max_rows)
            if body is not None:
                return Result(SOLUTION_MEDIA[name], body, "SELECT")
            answer = again()  # it may pass the row cap: evaluate again and count the rows one by one
        variables = [v.value for v in answer.variables]
        rows = [list(solution) for solution in _take(answer, max_rows)]
        return Result(SOLUTION_MEDIA[name], results.serialize_solutions(variables, rows, name), "SELECT")
    name = media if media in GRAPH_MEDIA else "turtle"
    triples = _take((getattr(t, "triple", t) for t in answer), max_rows)
    body = results.serialize_triples(triples, name, prefixes=PREFIX_MAP)
    return Result(GRAPH_MEDIA[name], body, "DESCRIBE" if form == "DESCRIBE" else "CONSTRUCT")


def native_json(solutions: ox.QuerySolutions, max_rows: int) -> bytes | None:
    """SELECT results as SPARQL JSON, by pyoxigraph's writer; None if there may be more than ``max_rows`` rows.

    Its bytes are those :func:`anemia_kg.results.serialize_solutions` writes (``tests/test_results.py`` holds
    the two together), in a third of the time on large answers, because no term becomes a Python object: on
    the two-hop benchmark query at 1,000,000 triples (2,825 rows) 14 ms where the Python writer took 41 ms,
    the query included.

    The row cap is kept without counting rows: the writer is stopped as soon as the text holds ``max_rows``
    times the two bytes ``,{``. Rows are separated by ``,{`` and nothing else in the document is (terms inside a
    row follow a key, ``"x":{``), so there is at most one row more than there are separators; a literal holding them
    only makes the bound looser, and then the caller counts exactly.
    """
    writer = _RowBound(max_rows)
    try:
        solutions.serialize(writer, format=ox.QueryResultsFormat.JSON)  # type: ignore[arg-type]  # any .write()
    except _MayPassCap:
        return None
    return b"".join(writer.parts)


class _MayPassCap(Exception):
    pass


class _RowBound:
    """A file for pyoxigraph's ``serialize``: keeps what is written, stops it when the row bound passes the cap."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows, self.separators, self.last = max_rows, 0, b""
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.separators += data.count(b",{") + (self.last == b"," and data[:1] == b"{")
        if self.separators >= self.max_rows:  # rows <= separators + 1
            raise _MayPassCap
        if data:
            self.parts.append(data)
            self.last = data[-1:]
        return len(data)

    def flush(self) -> None:
        return None


class _Reads(ABC):
    """graphs() and triple_count() through select(), so both executors answer them the same way."""

    @abstractmethod
    def select(self, sparql: str, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """SPARQL JSON result bindings of a SELECT, for internal use (no row cap)."""

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until queries can be answered (at most ``timeout`` s); nothing to wait for by default."""
        return None

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
