"""Validate the dataset against the SHACL shapes of ``ontology/shapes.ttl``.

pySHACL validates one graph; our dataset has four named graphs, so it is given their union (the ontology
included, which lets ``sh:targetClass`` reach instances of subclasses). It runs with ``advanced=True``: the rules
that are SPARQL queries are written as SHACL-AF SPARQL targets, which run once over the whole graph instead of
once per focus node (see the top of the shapes file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyshacl import validate
from rdflib import Dataset, Graph
from rdflib.namespace import SH

from .ontology import OntologyError, load_graph


class ShapesError(Exception):
    """The shapes file cannot be read."""


@dataclass(frozen=True)
class Violation:
    """One SHACL result, in words a curator can act on."""

    severity: str
    focus: str
    path: str | None
    message: str

    def __str__(self) -> str:
        where = f" ({self.path})" if self.path else ""
        return f"{self.severity}: {self.focus}{where}: {self.message}"


@dataclass(frozen=True)
class ShaclReport:
    conforms: bool
    violations: tuple[Violation, ...]

    def __str__(self) -> str:
        if self.conforms:
            return "SHACL: the dataset conforms to the shapes"
        lines = [f"SHACL: {len(self.violations)} violation(s)"] + [f"  {v}" for v in self.violations]
        return "\n".join(lines)


def union_graph(ds: Dataset) -> Graph:
    """All triples of all graphs in one graph."""
    union = Graph()
    for s, p, o, _ in ds.quads((None, None, None, None)):
        union.add((s, p, o))
    return union


def load_shapes(path: Path) -> Graph:
    """Parse the shapes; an unreadable file becomes a ShapesError like "ontology/shapes.ttl:12: reason".

    The parsing and the error messages are those of the ontology file (:func:`ontology.load_graph`).
    """
    try:
        return load_graph(path)
    except OntologyError as exc:
        raise ShapesError(str(exc)) from None


def validate_graph(data: Graph, shapes: Graph) -> ShaclReport:
    """Run pySHACL (no inference; the shapes are written for the asserted data) and collect its results.

    ``advanced=True`` is required, not an option: without it pySHACL ignores SPARQL targets, and every rule the
    shapes express as one would silently pass.

    In advanced mode pySHACL first copies the whole data graph, in case a SHACL rule (``sh:rule``) adds
    triples to it; that copy costs time and memory in proportion to the graph. Shapes without rules never
    write to the data graph, so for them it is validated in place (and left unchanged).
    """
    has_rules = (None, SH.rule, None) in shapes
    conforms, results, _ = validate(data, shacl_graph=shapes, inference="none", advanced=True,
                                    inplace=not has_rules)
    violations = []
    for result in results.subjects(SH.resultSeverity, None):
        severity = results.value(result, SH.resultSeverity)
        path = results.value(result, SH.resultPath)
        violations.append(Violation(
            severity=str(severity).rsplit("#", 1)[-1],
            focus=_short(str(results.value(result, SH.focusNode))),
            path=_short(str(path)) if path is not None else None,
            message=str(results.value(result, SH.resultMessage) or "constraint not met"),
        ))
    violations.sort(key=lambda v: (v.focus, v.path or "", v.message))
    return ShaclReport(bool(conforms), tuple(violations))


def validate_dataset(ds: Dataset, shapes_path: Path) -> ShaclReport:
    """Validate the union of the dataset's graphs against the shapes file."""
    return validate_graph(union_graph(ds), load_shapes(shapes_path))


def _short(iri: str) -> str:
    from .iris import PREFIXES

    for prefix, ns in PREFIXES.items():
        if iri.startswith(str(ns)):
            return f"{prefix}:{iri[len(str(ns)):]}"
    return iri
