"""Run SPARQL over the built dataset and write the results in the standard SPARQL 1.1 formats.

Queries run on Oxigraph with the default graph as the union of all named graphs, so a first query without
``GRAPH`` sees everything, and with the project's prefixes predeclared (``ent:``, ``akg:``, ``claim:``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pyoxigraph as ox

from .namespaces import PREFIX_IRIS
from .protocol import inspect_query, syntax_message
from .results import serialize_triples

RESULT_FORMATS = {
    "json": ox.QueryResultsFormat.JSON,
    "xml": ox.QueryResultsFormat.XML,
    "csv": ox.QueryResultsFormat.CSV,
    "tsv": ox.QueryResultsFormat.TSV,
}
# CONSTRUCT/DESCRIBE answers: the RDF format of anemia_kg.results for each --format that suits triples (json is
# JSON-LD and xml RDF/XML; CSV and TSV are tables of solutions and have no RDF form)
GRAPH_FORMATS = {"json": "jsonld", "xml": "rdfxml", "turtle": "turtle", "ntriples": "ntriples"}


class QueryError(Exception):
    """A query that cannot be parsed or evaluated; the message carries the parser's words."""


@dataclass(frozen=True)
class Table:
    """SELECT results as strings, for printing."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def prefix_map() -> dict[str, str]:
    return dict(PREFIX_IRIS)


def run(store: ox.Store, sparql: str) -> ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples:
    """Evaluate a query over the union of all graphs; syntax errors become QueryError.

    The query is refused as the server's executors refuse it (``QueryInfo.refusal``): an update is refused
    rather than reported as a parse error, ``SERVICE`` would make the engine connect to another host, and
    brackets nested thousands deep overflow the parser's stack, which would end this process with a
    segmentation fault instead of a message.
    """
    refusal = inspect_query(sparql).refusal
    if refusal:
        raise QueryError(refusal)
    try:
        return store.query(sparql, prefixes=prefix_map(), use_default_graph_as_union=True)
    except SyntaxError as exc:
        raise QueryError(f"SPARQL syntax error: {syntax_message(sparql, str(exc))}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise QueryError(f"the query failed: {exc}") from None


def serialise(results: ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples, fmt: str) -> bytes:
    """Results in a standard format: SPARQL 1.1 JSON/XML/CSV/TSV, or RDF for CONSTRUCT/DESCRIBE."""
    if isinstance(results, ox.QueryTriples):
        return serialize_triples(results, GRAPH_FORMATS[fmt], prefix_map())
    data = results.serialize(format=RESULT_FORMATS[fmt])
    assert data is not None  # without an output file Oxigraph returns the bytes
    return data


def term_text(term: object) -> str:
    """A term as a person reads it: IRIs shortened with the project's prefixes, literals by value."""
    if term is None:
        return ""
    if isinstance(term, ox.NamedNode):
        for prefix, ns in prefix_map().items():
            if term.value.startswith(ns):
                return f"{prefix}:{term.value[len(ns):]}"
        return term.value
    if isinstance(term, ox.Literal):
        return term.value
    return str(term)


def to_table(results: ox.QuerySolutions | ox.QueryBoolean | ox.QueryTriples) -> Table:
    """Any result as a table: variables and rows, a single 'result' cell for ASK, s/p/o for triples."""
    if isinstance(results, ox.QueryBoolean):
        return Table(("result",), (("true" if bool(results) else "false",),))
    if isinstance(results, ox.QueryTriples):
        triples = tuple((term_text(t.subject), term_text(t.predicate), term_text(t.object)) for t in results)
        return Table(("subject", "predicate", "object"), triples)
    columns = tuple(v.value for v in results.variables)
    rows = tuple(tuple(term_text(sol[c]) for c in columns) for sol in results)
    return Table(columns, rows)


def packaged_query(name: str) -> str:
    """A SPARQL query the code itself uses, kept as an .rq file in ``anemia_kg/sparql``."""
    return resources.files("anemia_kg").joinpath("sparql", f"{name}.rq").read_text(encoding="utf-8")
