"""Turn the checked knowledge base into an RDF dataset (four named graphs, no blank nodes).

Each positive claim yields a direct edge (``ent:a akg:causes ent:b``) for simple SPARQL and browsing, and
every claim, positive or negated, yields an ``rdf:Statement`` carrying its qualifiers, its citations and the
W3C Web Annotations that anchor its quotes in the article. A negated claim never yields a direct edge.
``docs/data-model.md`` shows the shape with an example.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from rdflib import Dataset, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, SKOS, XSD
from rdflib.term import Node

from . import iris
from .iris import AKG, OA, PRISM
from .model import Certainty, CuratedClaim, Entity, KnowledgeBase, Reference
from .xrefs import xref_iri

SKOS_MATCH = {
    "exact": SKOS.exactMatch, "close": SKOS.closeMatch, "broad": SKOS.broadMatch,
    "narrow": SKOS.narrowMatch, "related": SKOS.relatedMatch,
}
CERTAINTY = {Certainty.ASSERTED: AKG.Asserted, Certainty.STRONG: AKG.Strong, Certainty.POSSIBLE: AKG.Possible}
REFERENCE_CLASS = {"guideline": AKG.Guideline, "research": AKG.ResearchArticle}
QUALIFIER_PROPERTY = {
    "hedge": AKG.hedge, "negation": AKG.negation, "condition": AKG.condition, "time_course": AKG.timeCourse,
    "frequency": AKG.frequency, "location": AKG.location, "outcome": AKG.outcome, "severity": AKG.severity,
}

Triple = tuple[URIRef, URIRef, URIRef | Literal]


def to_dataset(kb: KnowledgeBase, ontology: Graph) -> Dataset:
    """The whole dataset, with quads inserted in sorted order so that serialisations are deterministic."""
    parts: dict[URIRef, list[tuple[Node, Node, Node]]] = {
        iris.ONTOLOGY_GRAPH: list(ontology),
        iris.ENTITIES_GRAPH: list(entity_triples(kb.entities)),
        iris.CLAIMS_GRAPH: list(claim_triples(kb)),
        iris.PROVENANCE_GRAPH: list(provenance_triples(kb)),
    }
    ds = Dataset()
    for prefix, ns in iris.PREFIXES.items():
        ds.bind(prefix, ns, replace=True)
    for graph_iri in sorted(parts):
        graph = ds.graph(graph_iri)
        for triple in sorted(set(parts[graph_iri])):
            graph.add(triple)
    return ds


def entity_triples(entities: Iterable[Entity]) -> Iterable[Triple]:
    """Type, label, synonyms, broader entities and cross-references of each entity."""
    for e in entities:
        node = iris.entity(e.id)
        yield node, RDF.type, AKG[e.type]
        yield node, RDFS.label, Literal(e.label)
        yield node, DCTERMS.identifier, Literal(e.id)
        for syn in e.synonyms:
            yield node, SKOS.altLabel, Literal(syn)
        for b in e.broader:
            yield node, SKOS.broader, iris.entity(b)
        if e.note:
            yield node, SKOS.editorialNote, Literal(e.note)
        for x in e.xrefs:
            target = URIRef(xref_iri(x.curie))
            yield node, SKOS_MATCH[x.match], target
            yield target, SKOS.notation, Literal(x.curie)
            yield target, RDFS.label, Literal(x.label)


def claim_triples(kb: KnowledgeBase) -> Iterable[Triple]:
    """Direct edges for positive claims, and one annotated statement per claim."""
    for c in kb.claims:
        yield from _statement(kb, c)


def _statement(kb: KnowledgeBase, cc: CuratedClaim) -> Iterable[Triple]:
    c, q = cc.claim, cc.claim.qualifiers
    subj, pred, obj = iris.entity(c.subject), AKG[c.predicate], iris.entity(c.object)
    if not q.negated:
        yield subj, pred, obj
    node = iris.claim(c.id)
    yield node, RDF.type, RDF.Statement
    yield node, RDF.type, AKG.Claim
    yield node, RDF.subject, subj
    yield node, RDF.predicate, pred
    yield node, RDF.object, obj
    yield node, DCTERMS.identifier, Literal(c.id)
    yield node, AKG.certainty, CERTAINTY[q.certainty]
    yield node, AKG.negated, Literal(q.negated)
    for name, prop in QUALIFIER_PROPERTY.items():
        value = getattr(q, name)
        if value:
            yield node, prop, Literal(value)
    if q.threshold is not None:
        t, tnode = q.threshold, iris.threshold(c.id)
        yield node, AKG.threshold, tnode
        yield tnode, RDF.type, AKG.Threshold
        yield tnode, AKG.thresholdText, Literal(t.text)
        yield tnode, AKG.analyte, Literal(t.analyte)
        yield tnode, AKG.comparator, Literal(t.comparator)
        yield tnode, RDF.value, Literal(Decimal(str(t.value)))
        yield tnode, AKG.unit, Literal(t.unit)
    for p in c.population:
        yield node, AKG.population, iris.entity(p)
    if c.note:
        yield node, SKOS.editorialNote, Literal(c.note)
    src = iris.source(kb.source_id)
    yield node, PROV.wasQuotedFrom, src
    for n in cc.citations:
        yield node, AKG.citation, iris.citation(kb.source_id, n)
        if kb.article.reference(n) is not None:
            yield node, PROV.wasDerivedFrom, iris.reference(kb.source_id, n)
    if not cc.citations:
        yield node, AKG.supportedByArticleOnly, Literal(True)
    for i, quote in enumerate(cc.quotes, start=1):
        ann, target = iris.annotation(c.id, i), iris.annotation(c.id, i, "target")
        qsel, psel = iris.annotation(c.id, i, "quote"), iris.annotation(c.id, i, "position")
        yield node, AKG.evidence, ann
        yield ann, RDF.type, OA.Annotation
        yield ann, OA.motivatedBy, OA.describing
        yield ann, OA.hasBody, node
        yield ann, OA.hasTarget, target
        yield target, RDF.type, OA.SpecificResource
        yield target, OA.hasSource, src
        yield target, DCTERMS.isPartOf, iris.unit(kb.source_id, quote.unit.id)
        yield target, OA.hasSelector, qsel
        yield target, OA.hasSelector, psel
        yield qsel, RDF.type, OA.TextQuoteSelector
        yield qsel, OA.exact, Literal(quote.text)
        yield qsel, OA.prefix, Literal(quote.prefix)
        yield qsel, OA.suffix, Literal(quote.suffix)
        yield psel, RDF.type, OA.TextPositionSelector
        yield psel, OA.start, Literal(quote.start)
        yield psel, OA.end, Literal(quote.end)


def provenance_triples(kb: KnowledgeBase) -> Iterable[Triple]:
    """The source article, its evidence units, its references and the citation numbers it uses."""
    article, sid = kb.article, kb.source_id
    src = iris.source(sid)
    yield src, RDF.type, AKG.SourceDocument
    yield src, DCTERMS.title, Literal(article.title)
    if article.last_updated:
        yield src, DCTERMS.modified, Literal(article.last_updated, datatype=XSD.date)
    if kb.source_meta.get("publisher"):
        yield src, DCTERMS.publisher, Literal(kb.source_meta["publisher"])
    for unit in article.units:
        node = iris.unit(sid, unit.id)
        yield node, RDF.type, AKG.EvidenceUnit
        yield node, DCTERMS.isPartOf, src
        yield node, AKG.unitKind, Literal(unit.kind.value)
        yield node, RDF.value, Literal(unit.text)
        if unit.section:
            yield node, AKG.section, Literal(" > ".join(unit.section))
        yield node, OA.start, Literal(unit.start)
        yield node, OA.end, Literal(unit.end)
        yield node, AKG.line, Literal(unit.line)
        for n in unit.citations:
            yield node, AKG.citation, iris.citation(sid, n)
    for ref in article.references:
        yield from _reference(sid, ref)
        yield src, DCTERMS.references, iris.reference(sid, ref.number)
    for n in article.cited_numbers:
        node = iris.citation(sid, n)
        yield node, RDF.type, AKG.Citation
        yield node, AKG.citationNumber, Literal(n)
        if article.reference(n) is not None:
            yield node, AKG.resolvesTo, iris.reference(sid, n)
        else:
            yield node, AKG.unresolved, Literal(True)


def _reference(sid: str, ref: Reference) -> Iterable[Triple]:
    node = iris.reference(sid, ref.number)
    yield node, RDF.type, REFERENCE_CLASS.get(ref.kind.casefold(), AKG.Reference)
    yield node, AKG.referenceNumber, Literal(ref.number)
    yield node, AKG.referenceKind, Literal(ref.kind)
    yield node, DCTERMS.title, Literal(ref.title)
    if ref.year is not None:
        yield node, DCTERMS.date, Literal(str(ref.year), datatype=XSD.gYear)
    if ref.venue:
        yield node, PRISM.publicationName, Literal(ref.venue)
