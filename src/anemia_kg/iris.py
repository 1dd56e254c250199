"""The one place that mints IRIs, so that every node of the dataset is named the same way everywhere.

There are no blank nodes in the dataset: a minted IRI for every node keeps the output deterministic and lets
two builds be diffed line by line. ``docs/data-model.md`` lists the namespaces.
"""

from __future__ import annotations

from rdflib import Namespace, URIRef

from .namespaces import PREFIX_IRIS

PREFIXES: dict[str, Namespace] = {prefix: Namespace(iri) for prefix, iri in PREFIX_IRIS.items()}
AKG = PREFIXES["akg"]
ENT = PREFIXES["ent"]
CLAIM = PREFIXES["claim"]
ANN = PREFIXES["ann"]
SRC = PREFIXES["src"]
GRAPH = PREFIXES["akgg"]
OA = PREFIXES["oa"]
PRISM = PREFIXES["prism"]
BIOLINK = PREFIXES["biolink"]

ONTOLOGY_GRAPH = GRAPH["ontology"]
ENTITIES_GRAPH = GRAPH["entities"]
CLAIMS_GRAPH = GRAPH["claims"]
PROVENANCE_GRAPH = GRAPH["provenance"]
GRAPHS = (ONTOLOGY_GRAPH, ENTITIES_GRAPH, CLAIMS_GRAPH, PROVENANCE_GRAPH)


def entity(entity_id: str) -> URIRef:
    """``ent:peripheral_neuropathy``."""
    return ENT[entity_id]


def claim(claim_id: str) -> URIRef:
    """``claim:b12-deficiency-causes-peripheral-demyelination``."""
    return CLAIM[claim_id]


def threshold(claim_id: str) -> URIRef:
    """The threshold node of a claim."""
    return CLAIM[f"{claim_id}-threshold"]


def annotation(claim_id: str, n: int, part: str = "") -> URIRef:
    """``ann:{claim}-{n}`` and its parts: ``-target``, ``-quote``, ``-position``."""
    return ANN[f"{claim_id}-{n}" + (f"-{part}" if part else "")]


def source(source_id: str) -> URIRef:
    """The source document."""
    return SRC[source_id]


def unit(source_id: str, unit_id: str) -> URIRef:
    """An evidence unit of a source: ``src:{source}-u024``."""
    return SRC[f"{source_id}-{unit_id}"]


def reference(source_id: str, number: int) -> URIRef:
    """Entry ``number`` of a source's reference list."""
    return SRC[f"{source_id}-ref-{number}"]


def citation(source_id: str, number: int) -> URIRef:
    """The citation number as used in a source, whether or not the reference list resolves it."""
    return SRC[f"{source_id}-cite-{number}"]


def ontology_term(name: str) -> URIRef:
    """An ontology class or property by local name."""
    return AKG[name]
