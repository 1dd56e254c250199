"""The SHACL shapes accept a graph shaped as docs/data-model.md says and reject each kind of mistake.

Every test validates, as the build does, the union of the ontology and a small hand-written data graph with
pyshacl (``inference="none"``). Each broken graph is the valid one with one deliberate mistake, and must fail
with the message of the shape written for that mistake, on the node that carries it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pyshacl import validate
from rdflib import RDF, SH, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, PROV, RDFS

from anemia_kg.ontology import AKG, ONTOLOGY_PATH, SHAPES_PATH, load_graph
from anemia_kg.shacl import ShapesError, Violation, load_shapes, validate_graph

ENT = Namespace("https://w3id.org/anemia-kg/entity/")
CLAIM = Namespace("https://w3id.org/anemia-kg/claim/")
ANN = Namespace("https://w3id.org/anemia-kg/annotation/")
SRC = Namespace("https://w3id.org/anemia-kg/source/")
OA = Namespace("http://www.w3.org/ns/oa#")
XSD_DATE = URIRef("http://www.w3.org/2001/XMLSchema#date")  # not rdflib's XSD: pytest's probing of it warns

# Evidence units of a miniature source: (id, start offset, text, citation numbers).
UNITS = {
    "u001": (
        200,
        "Yes, anemia can cause or exacerbate muscle cramping, joint pain, and worsen peripheral neuropathy",
        (),
    ),
    "u024": (1000, "B12 deficiency causes demyelination in peripheral nerves", (3,)),
    "u060": (
        2500,
        "Erythropoietic-stimulating agents for persistent symptomatic anemia (hemoglobin <10g/dL)",
        (3,),
    ),
    "u070": (
        3000,
        "The severity of anemia does not necessarily correlate with the severity of neurological symptoms",
        (7,),
    ),
}

PREFIXES = """
@prefix akg:     <https://w3id.org/anemia-kg/ontology#> .
@prefix ent:     <https://w3id.org/anemia-kg/entity/> .
@prefix claim:   <https://w3id.org/anemia-kg/claim/> .
@prefix ann:     <https://w3id.org/anemia-kg/annotation/> .
@prefix src:     <https://w3id.org/anemia-kg/source/> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix oa:      <http://www.w3.org/ns/oa#> .
@prefix prism:   <http://prismstandard.org/namespaces/basic/2.0/> .
@prefix prov:    <http://www.w3.org/ns/prov#> .
@prefix rdf:     <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs:    <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos:    <http://www.w3.org/2004/02/skos/core#> .
@prefix xsd:     <http://www.w3.org/2001/XMLSchema#> .
"""

ENTITIES = """
ent:vitamin_b12_deficiency a akg:NutritionalDeficiency ; rdfs:label "vitamin B12 deficiency" ;
    skos:exactMatch <http://id.nlm.nih.gov/mesh/D014806> .
ent:peripheral_demyelination a akg:Mechanism ; rdfs:label "demyelination in peripheral nerves" .
ent:anemia a akg:Anemia ; rdfs:label "anemia" ; skos:exactMatch <http://purl.obolibrary.org/obo/HP_0001903> .
ent:muscle_cramping a akg:Symptom ; rdfs:label "muscle cramping" ; skos:altLabel "muscle cramps" .
ent:neurological_symptoms a akg:Symptom ; rdfs:label "neurological symptoms" .
ent:esa a akg:Drug ; rdfs:label "Erythropoietic-stimulating agents" .
ent:joint_pain a akg:Symptom ; rdfs:label "joint pain" ; skos:altLabel "arthralgia" ;
    skos:exactMatch <http://purl.obolibrary.org/obo/HP_0002829> .
"""

PROVENANCE_HEAD = """
src:article a akg:SourceDocument ;
    dcterms:title "Can anemia cause muscle cramping, joint pain, and worsening of peripheral neuropathy?" ;
    dcterms:modified "2025-09-21"^^xsd:date ; dcterms:publisher "Dr.Oracle" ;
    dcterms:references src:article-ref-3 .
src:article-ref-3 a akg:ResearchArticle ; akg:referenceNumber 3 ;
    dcterms:title "[Reversible peripheral neuropathy induced by vitamin B12 deficiency]." ;
    dcterms:date "2005"^^xsd:gYear ;
    prism:publicationName "Neurophysiologie clinique = Clinical neurophysiology" .
src:article-cite-3 a akg:Citation ; akg:citationNumber 3 ; akg:resolvesTo src:article-ref-3 .
src:article-cite-7 a akg:Citation ; akg:citationNumber 7 ; akg:unresolved true .
"""

CLAIMS = """
ent:vitamin_b12_deficiency akg:causes ent:peripheral_demyelination .
ent:anemia akg:mayCause ent:muscle_cramping .
ent:esa akg:treats ent:anemia .

claim:b12-causes-demyelination a rdf:Statement, akg:Claim ;
    rdf:subject ent:vitamin_b12_deficiency ; rdf:predicate akg:causes ;
    rdf:object ent:peripheral_demyelination ;
    akg:certainty akg:Asserted ; akg:negated false ; akg:location "in peripheral nerves" ;
    akg:citation src:article-cite-3 ; prov:wasDerivedFrom src:article-ref-3 ;
    prov:wasQuotedFrom src:article ; akg:evidence ann:b12-causes-demyelination-1 .

claim:anemia-may-cause-cramping a rdf:Statement, akg:Claim ;
    rdf:subject ent:anemia ; rdf:predicate akg:mayCause ; rdf:object ent:muscle_cramping ;
    akg:certainty akg:Possible ; akg:hedge "can" ; akg:negated false ;
    akg:supportedByArticleOnly true ;
    prov:wasQuotedFrom src:article ; akg:evidence ann:anemia-may-cause-cramping-1 .

claim:severity-not-correlated a rdf:Statement, akg:Claim ;
    rdf:subject ent:anemia ; rdf:predicate akg:correlatesWith ; rdf:object ent:neurological_symptoms ;
    akg:certainty akg:Asserted ; akg:negated true ; akg:negation "does not necessarily" ;
    akg:citation src:article-cite-7 ;
    prov:wasQuotedFrom src:article ; akg:evidence ann:severity-not-correlated-1 .

claim:esa-treats-anemia a rdf:Statement, akg:Claim ;
    rdf:subject ent:esa ; rdf:predicate akg:treats ; rdf:object ent:anemia ;
    akg:certainty akg:Asserted ; akg:negated false ; akg:condition "persistent symptomatic" ;
    akg:threshold claim:esa-treats-anemia-threshold ;
    akg:citation src:article-cite-3 ; prov:wasDerivedFrom src:article-ref-3 ;
    prov:wasQuotedFrom src:article ; akg:evidence ann:esa-treats-anemia-1 .

claim:esa-treats-anemia-threshold a akg:Threshold ;
    akg:thresholdText "hemoglobin <10g/dL" ; akg:analyte "hemoglobin" ; akg:comparator "<" ;
    rdf:value 10.0 ; akg:unit "g/dL" .
"""

# (claim id, unit id, quote): each claim's one quote, located in its unit below.
QUOTES = (
    ("b12-causes-demyelination", "u024", "B12 deficiency causes demyelination in peripheral nerves"),
    ("anemia-may-cause-cramping", "u001", "anemia can cause or exacerbate muscle cramping"),
    ("severity-not-correlated", "u070", "severity of anemia does not necessarily correlate"),
    (
        "esa-treats-anemia",
        "u060",
        "Erythropoietic-stimulating agents for persistent symptomatic anemia (hemoglobin <10g/dL)",
    ),
)


def _units_ttl() -> str:
    out = []
    for uid, (start, text, cites) in UNITS.items():
        cite = "".join(f" ; akg:citation src:article-cite-{n}" for n in cites)
        out.append(
            f'src:article-{uid} a akg:EvidenceUnit ; dcterms:isPartOf src:article ; akg:unitKind "bullet" ;\n'
            f'    rdf:value "{text}" ; akg:section "Test section" ;\n'
            f"    oa:start {start} ; oa:end {start + len(text)} ; akg:line {start // 100}{cite} ."
        )
    return "\n".join(out)


def _annotations_ttl() -> str:
    out = []
    for claim_id, uid, quote in QUOTES:
        unit_start, unit_text, _ = UNITS[uid]
        at = unit_text.index(quote)
        start, end = unit_start + at, unit_start + at + len(quote)
        a = f"ann:{claim_id}-1"
        out.append(
            f"{a} a oa:Annotation ; oa:motivatedBy oa:describing ; oa:hasBody claim:{claim_id} ;\n"
            f"    oa:hasTarget {a}-target .\n"
            f"{a}-target a oa:SpecificResource ; oa:hasSource src:article ;\n"
            f"    dcterms:isPartOf src:article-{uid} ;\n"
            f"    oa:hasSelector {a}-quote, {a}-position .\n"
            f'{a}-quote a oa:TextQuoteSelector ; oa:exact "{quote}" ;\n'
            f'    oa:prefix "{unit_text[max(0, at - 32) : at]}" ;\n'
            f'    oa:suffix "{unit_text[at + len(quote) :][:32]}" .\n'
            f"{a}-position a oa:TextPositionSelector ; oa:start {start} ; oa:end {end} ."
        )
    return "\n".join(out)


VALID_TTL = PREFIXES + ENTITIES + PROVENANCE_HEAD + _units_ttl() + "\n" + CLAIMS + _annotations_ttl() + "\n"


@pytest.fixture(scope="module")
def ontology() -> Graph:
    return load_graph(ONTOLOGY_PATH)


@pytest.fixture(scope="module")
def shapes() -> Graph:
    return load_graph(SHAPES_PATH)


def valid_data() -> Graph:
    return Graph().parse(data=VALID_TTL, format="turtle")


def union_of(ontology: Graph, data: Graph) -> Graph:
    union = Graph()
    for triple in ontology:
        union.add(triple)
    for triple in data:
        union.add(triple)
    return union


def run(data: Graph, ontology: Graph, shapes: Graph) -> tuple[bool, list[tuple[str, str]], str]:
    """Validate ontology + data as one graph; return (conforms, [(focus node, message)], report text)."""
    union = union_of(ontology, data)
    conforms, results, text = validate(union, shacl_graph=shapes, inference="none", advanced=True)
    found = []
    for result in results.subjects(RDF.type, SH.ValidationResult):
        focus = str(results.value(result, SH.focusNode))
        for message in results.objects(result, SH.resultMessage):
            found.append((focus, str(message)))
    return bool(conforms), found, text


def test_valid_graph_conforms(ontology: Graph, shapes: Graph) -> None:
    conforms, found, text = run(valid_data(), ontology, shapes)
    assert conforms, text
    assert found == []


# --- one mistake per case --------------------------------------------------------------------------

C1 = CLAIM["b12-causes-demyelination"]
C2 = CLAIM["anemia-may-cause-cramping"]
C3 = CLAIM["severity-not-correlated"]
C4 = CLAIM["esa-treats-anemia"]
A1 = ANN["b12-causes-demyelination-1"]
T1 = ANN["b12-causes-demyelination-1-target"]
Q1 = ANN["b12-causes-demyelination-1-quote"]
P1 = ANN["b12-causes-demyelination-1-position"]

Mutation = Callable[[Graph], None]


def drop(s: URIRef, p: URIRef, o: object = None) -> Mutation:
    return lambda g: g.remove((s, p, o))  # type: ignore[arg-type]


def add(s: URIRef, p: URIRef, o: object) -> Mutation:
    return lambda g: g.add((s, p, o))  # type: ignore[arg-type]


def replace(s: URIRef, p: URIRef, o: object) -> Mutation:
    return lambda g: g.set((s, p, o))  # type: ignore[arg-type]


def both(*mutations: Mutation) -> Mutation:
    def apply(g: Graph) -> None:
        for m in mutations:
            m(g)

    return apply


# A second, well-formed source document, for the rules that tie a quote to its source.
OTHER_SOURCE = both(
    add(SRC.other, RDF.type, AKG.SourceDocument), add(SRC.other, DCTERMS.title, Literal("Another article"))
)


CASES: list[tuple[str, Mutation, URIRef, str]] = [
    # claims: evidence and source
    ("claim without evidence", drop(C1, AKG.evidence), C1, "needs at least one akg:evidence"),
    ("claim without source", drop(C1, PROV.wasQuotedFrom), C1, "needs prov:wasQuotedFrom"),
    ("annotation target without source", drop(T1, OA.hasSource), T1, "needs exactly one oa:hasSource"),
    ("annotation without target", drop(A1, OA.hasTarget), A1, "needs exactly one oa:hasTarget"),
    ("target without quote selector", drop(T1, OA.hasSelector, Q1), T1, "of type oa:TextQuoteSelector"),
    ("quote selector without exact", drop(Q1, OA.exact), Q1, "exactly one non-empty oa:exact"),
    ("empty quote", replace(Q1, OA.exact, Literal("")), Q1, "exactly one non-empty oa:exact"),
    ("quote length differs from position", replace(P1, OA.end, Literal(1057)), T1, "length does not match"),
    (
        "quote not at its position in the unit",
        both(replace(P1, OA.start, Literal(1001)), replace(P1, OA.end, Literal(1057))),
        T1,
        "does not lie at its position",
    ),
    ("annotation body is not the claim", drop(A1, OA.hasBody), A1, "needs oa:hasBody"),
    ("annotation body names another claim", replace(A1, OA.hasBody, C2), A1, "does not name that claim"),
    (
        "quote's unit outside the quote's source",
        both(OTHER_SOURCE, replace(T1, OA.hasSource, SRC.other)),
        T1,
        "is not part of the annotation's source",
    ),
    (
        "claim not quoted from its quote's source",
        both(OTHER_SOURCE, replace(C1, PROV.wasQuotedFrom, SRC.other)),
        C1,
        "missing from the claim's prov:wasQuotedFrom",
    ),
    # claims: the triple
    ("claim without subject", drop(C1, RDF.subject), C1, "needs exactly one rdf:subject"),
    ("subject is not an entity", replace(C1, RDF.subject, ENT.nowhere), C1, "needs exactly one rdf:subject"),
    (
        "predicate not a claim predicate",
        replace(C1, RDF.predicate, RDFS.seeAlso),
        C1,
        "one of the ontology's claim",
    ),
    ("claim without object", drop(C1, RDF.object), C1, "needs exactly one rdf:object"),
    (
        "subject outside the predicate's domain",
        both(replace(C4, RDF.subject, ENT.muscle_cramping), add(ENT.muscle_cramping, AKG.treats, ENT.anemia)),
        C4,
        "subject is not of the class the predicate allows",
    ),
    (
        "object outside the predicate's range",
        both(
            replace(C1, RDF.predicate, AKG.mediatedBy),
            add(ENT.vitamin_b12_deficiency, AKG.mediatedBy, ENT.peripheral_demyelination),
            replace(C1, RDF.object, ENT.muscle_cramping),
            add(ENT.vitamin_b12_deficiency, AKG.mediatedBy, ENT.muscle_cramping),
        ),
        C1,
        "object is not of the class the predicate allows",
    ),
    # certainty and hedges
    ("claim without certainty", drop(C1, AKG.certainty), C1, "exactly one akg:certainty"),
    ("unknown certainty", replace(C1, AKG.certainty, AKG.Maybe), C1, "exactly one akg:certainty"),
    ("two certainties", add(C1, AKG.certainty, AKG.Strong), C1, "exactly one akg:certainty"),
    ("possible without hedge", drop(C2, AKG.hedge), C2, "akg:Possible needs akg:hedge"),
    (
        "hedged claim using causes",
        both(
            replace(C2, RDF.predicate, AKG.causes),
            drop(ENT.anemia, AKG.mayCause),
            add(ENT.anemia, AKG.causes, ENT.muscle_cramping),
        ),
        C2,
        "must not use akg:causes",
    ),
    # negation
    ("claim without negated", drop(C1, AKG.negated), C1, "exactly one akg:negated"),
    ("negated not a boolean", replace(C1, AKG.negated, Literal("no")), C1, "exactly one akg:negated"),
    ("negated without negation words", drop(C3, AKG.negation), C3, "needs akg:negation"),
    (
        "negated claim with a direct edge",
        add(ENT.anemia, AKG.correlatesWith, ENT.neurological_symptoms),
        C3,
        "negated claim has become a positive edge",
    ),
    (
        "direct edge without a claim",
        add(ENT.anemia, AKG.correlatesWith, ENT.neurological_symptoms),
        ENT.anemia,
        "has no non-negated claim behind it",
    ),
    # the claim behind an edge must match it in subject, predicate and object, and be an akg:Claim
    ("edge whose claim is not an akg:Claim", drop(C4, RDF.type, AKG.Claim), ENT.esa, "has no non-negated claim"),
    ("edge whose claim has another subject", replace(C4, RDF.subject, ENT.joint_pain), ENT.esa,
     "has no non-negated claim"),
    ("edge whose claim has another object", replace(C4, RDF.object, ENT.joint_pain), ENT.esa,
     "has no non-negated claim"),
    ("edge whose claim has another predicate", replace(C4, RDF.predicate, AKG.prevents), ENT.esa,
     "has no non-negated claim"),
    ("positive claim without its edge", drop(ENT.esa, AKG.treats), C4, "lacks its direct edge"),
    # citations of claims
    (
        "uncited claim not marked article-only",
        drop(C2, AKG.supportedByArticleOnly),
        C2,
        "rests on the article alone",
    ),
    (
        "cited claim marked article-only",
        add(C1, AKG.supportedByArticleOnly, Literal(True)),
        C1,
        "must not say akg:supportedByArticleOnly true",
    ),
    (
        "claim missing its quote's citation",
        drop(C1, AKG.citation),
        C1,
        "missing from the claim's akg:citation",
    ),
    (
        "claim citing what its quotes do not",
        both(add(C1, AKG.citation, SRC["article-cite-7"])),
        C1,
        "none of its quotes' evidence units carries",
    ),
    (
        "claim missing a resolved reference",
        drop(C1, PROV.wasDerivedFrom),
        C1,
        "missing from prov:wasDerivedFrom",
    ),
    (
        "claim derived from an uncited reference",
        add(C3, PROV.wasDerivedFrom, SRC["article-ref-3"]),
        C3,
        "none of its citations resolves to",
    ),
    # threshold
    (
        "threshold with a bad comparator",
        replace(CLAIM["esa-treats-anemia-threshold"], AKG.comparator, Literal("less than")),
        CLAIM["esa-treats-anemia-threshold"],
        "akg:comparator",
    ),
    # entities
    ("entity without label", drop(ENT.anemia, RDFS.label), ENT.anemia, "exactly one non-empty rdfs:label"),
    (
        "entity with two labels",
        add(ENT.anemia, RDFS.label, Literal("anaemia")),
        ENT.anemia,
        "exactly one non-empty",
    ),
    (
        "entity with empty label",
        replace(ENT.joint_pain, RDFS.label, Literal("")),
        ENT.joint_pain,
        "non-empty rdfs:label",
    ),
    # references and citations
    (
        "reference without year",
        drop(SRC["article-ref-3"], DCTERMS.date),
        SRC["article-ref-3"],
        "dcterms:date",
    ),
    (
        "reference year not a gYear",
        replace(SRC["article-ref-3"], DCTERMS.date, Literal("2005-01-01", datatype=XSD_DATE)),
        SRC["article-ref-3"],
        "as an xsd:gYear",
    ),
    (
        "reference without title",
        drop(SRC["article-ref-3"], DCTERMS.title),
        SRC["article-ref-3"],
        "dcterms:title",
    ),
    (
        "reference without number",
        drop(SRC["article-ref-3"], AKG.referenceNumber),
        SRC["article-ref-3"],
        "akg:referenceNumber",
    ),
    (
        "citation neither resolved nor unresolved",
        drop(SRC["article-cite-7"], AKG.unresolved),
        SRC["article-cite-7"],
        "not both and not neither",
    ),
    (
        "citation both resolved and unresolved",
        add(SRC["article-cite-3"], AKG.unresolved, Literal(True)),
        SRC["article-cite-3"],
        "not both and not neither",
    ),
    (
        "citation without number",
        drop(SRC["article-cite-3"], AKG.citationNumber),
        SRC["article-cite-3"],
        "akg:citationNumber",
    ),
    (
        "citation resolving to another number",
        replace(SRC["article-cite-3"], AKG.citationNumber, Literal(4)),
        SRC["article-cite-3"],
        "reference with a different number",
    ),
    # evidence units and the source
    ("unit without start", drop(SRC["article-u024"], OA.start), SRC["article-u024"], "integer oa:start"),
    ("unit without end", drop(SRC["article-u024"], OA.end), SRC["article-u024"], "integer oa:end"),
    ("unit without text", drop(SRC["article-u024"], RDF.value), SRC["article-u024"], "non-empty rdf:value"),
    (
        "unit text and offsets disagree",
        replace(SRC["article-u001"], OA.end, Literal(201)),
        SRC["article-u001"],
        "does not fit its offsets",
    ),
    ("source without title", drop(SRC.article, DCTERMS.title), SRC.article, "non-empty dcterms:title"),
]


@pytest.mark.parametrize(("mutation", "focus", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_mistake_is_reported(
    ontology: Graph, shapes: Graph, mutation: Mutation, focus: URIRef, message: str
) -> None:
    data = valid_data()
    before = set(data)
    mutation(data)
    assert set(data) != before, "the mutation changed nothing"
    conforms, found, text = run(data, ontology, shapes)
    assert not conforms
    assert any(f == str(focus) and message in m for f, m in found), (
        f"expected {message!r} on {focus}:\n{text}"
    )


# --- the shapes themselves -------------------------------------------------------------------------


def test_claim_predicate_list_matches_the_ontology(ontology: Graph, shapes: Graph) -> None:
    """The sh:in list of rdf:predicate is the ontology's set of claim predicates, no more, no less."""
    from rdflib.collection import Collection

    lists = [
        set(Collection(shapes, shapes.value(ps, SH["in"])))
        for ps in shapes.subjects(SH.path, RDF.predicate)
        if shapes.value(ps, SH["in"]) is not None
    ]
    assert len(lists) == 1
    declared = set(ontology.subjects(AKG.claimPredicate, Literal(True)))
    assert lists[0] == declared


NODE_LEVEL = (
    SH["class"],
    SH.nodeKind,
    SH.xone,
    SH["or"],
    SH["and"],
    SH["not"],
    SH.datatype,
    SH["in"],
    SH.hasValue,
    SH.node,
)


def test_every_shape_and_constraint_has_a_message(shapes: Graph) -> None:
    """Curators read sh:message: every property shape, SPARQL constraint and node-level check carries one."""
    node_shapes = set(shapes.subjects(RDF.type, SH.NodeShape))
    with_node_checks = {s for s in node_shapes if any((s, p, None) in shapes for p in NODE_LEVEL)}
    property_shapes = set(shapes.objects(None, SH.property))
    sparql = set(shapes.objects(None, SH.sparql))
    assert with_node_checks and property_shapes and sparql
    missing = [s for s in with_node_checks | property_shapes | sparql if shapes.value(s, SH.message) is None]
    assert missing == []


def test_node_shapes_with_sparql_carry_no_node_message(shapes: Graph) -> None:
    """pyshacl adds a node shape's sh:message to each of its SPARQL results, misleading the curator."""
    mixed = [s for s in shapes.subjects(SH.sparql, None) if shapes.value(s, SH.message) is not None]
    assert mixed == []


def test_one_message_per_result(ontology: Graph, shapes: Graph) -> None:
    """A broken graph's results each say one thing (no unrelated node-shape message tagged along)."""
    data = valid_data()
    data.add((ENT.anemia, AKG.correlatesWith, ENT.neurological_symptoms))
    data.remove((C2, AKG.hedge, None))
    conforms, found, text = run(data, ontology, shapes)
    assert not conforms
    assert sorted(m.split(":")[0] for _, m in found) == sorted(
        [
            "This direct edge between entities has no non-negated claim behind it",
            "A negated claim has become a positive edge",
            "A claim with certainty akg",
        ]
    ), text


# --- the rules written as SPARQL targets -------------------------------------------------------------

CORE_TARGETS = (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf)


def rule_shapes(shapes: Graph) -> list[URIRef]:
    """The node shapes whose focus nodes a SPARQL target selects (the rules that are SPARQL queries)."""
    return sorted({s for s in shapes.subjects(SH.target, None) if isinstance(s, URIRef)})


def test_sparql_runs_once_per_rule_not_once_per_node(shapes: Graph) -> None:
    """No sh:sparql constraint sits on a shape with an ordinary target (pyshacl would run it for every node of the
    class, ~0.1 s each: half a minute for the real dataset); each sits on a rule shape whose SPARQL target finds
    the nodes that break the rule, in one query over the whole graph."""
    with_sparql = set(shapes.subjects(SH.sparql, None))
    assert with_sparql
    slow = sorted(str(s) for s in with_sparql if any((s, t, None) in shapes for t in CORE_TARGETS)
                  or (s, RDF.type, RDFS.Class) in shapes)
    assert slow == []
    for shape in with_sparql:
        targets = list(shapes.objects(shape, SH.target))
        assert targets, f"{shape} has an sh:sparql constraint but no SPARQL target"
        for target in targets:
            assert (target, RDF.type, SH.SPARQLTarget) in shapes, shape
            select = str(shapes.value(target, SH.select))
            assert "SELECT ?this WHERE" in select, shape
            assert shapes.value(target, SH.prefixes) is not None, shape


def test_every_rule_is_exercised_by_a_case(shapes: Graph) -> None:
    """Each rule shape's message is the expected message of at least one broken graph above, so no rule can be
    lost (e.g. by a target query that never selects anything) without a test failing."""
    expected = [message for *_, message in CASES]
    untested = []
    for rule in rule_shapes(shapes):
        messages = [str(shapes.value(c, SH.message)) for c in shapes.objects(rule, SH.sparql)]
        if not any(e in m for e in expected for m in messages):
            untested.append(str(rule))
    assert rule_shapes(shapes) and untested == []


def test_the_build_reports_rules_with_their_edge(ontology: Graph) -> None:
    """The build's own validation (anemia_kg.shacl, which must run pyshacl with advanced=True for the SPARQL
    targets to apply) reports the rules, and the edge rule names the offending edge as its path."""
    data = valid_data()
    data.add((ENT.anemia, AKG.correlatesWith, ENT.neurological_symptoms))
    report = validate_graph(union_of(ontology, data), load_shapes(SHAPES_PATH))
    assert not report.conforms
    found = {(v.focus, v.path, v.message.split(":")[0]) for v in report.violations}
    assert found == {
        ("ent:anemia", "akg:correlatesWith", "This direct edge between entities has no non-negated claim behind it"),
        ("claim:severity-not-correlated", None, "A negated claim has become a positive edge"),
    }
    assert all(isinstance(v, Violation) and v.severity == "Violation" for v in report.violations)


# --- reading the shapes file -------------------------------------------------------------------------


def test_broken_shapes_file_names_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A syntax error in the shapes is reported as 'ontology/shapes.ttl:N: reason', as for the ontology."""
    lines = SHAPES_PATH.read_text(encoding="utf-8").split("\n")
    n = next(i for i, line in enumerate(lines, start=1) if line.startswith("akgsh:ClaimShape "))
    lines[n - 1] = lines[n - 1].replace("akgsh:ClaimShape", "nosuch:ClaimShape")
    (tmp_path / "ontology").mkdir()
    (tmp_path / "ontology" / "shapes.ttl").write_text("\n".join(lines), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ShapesError) as err:
        load_shapes(tmp_path / "ontology" / "shapes.ttl")
    assert str(err.value) == f'ontology/shapes.ttl:{n}: Prefix "nosuch:" not bound'


def test_truncated_or_missing_shapes_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = SHAPES_PATH.read_text(encoding="utf-8")
    cut = text.index("akgsh:ClaimShape ")
    (tmp_path / "ontology").mkdir()
    (tmp_path / "ontology" / "shapes.ttl").write_text(text[: cut + 40], encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ShapesError, match=r"^ontology/shapes\.ttl:\d+: "):
        load_shapes(tmp_path / "ontology" / "shapes.ttl")
    with pytest.raises(ShapesError, match=r"^ontology/missing\.ttl: file not found$"):
        load_shapes(tmp_path / "ontology" / "missing.ttl")


# --- validating in place ---------------------------------------------------------------------------------


def _triples(graph: Graph) -> set[tuple[object, object, object]]:
    return set(graph)


def test_validation_leaves_the_data_graph_as_it_was(ontology: Graph) -> None:
    """The build's validation runs in place (no copy of the graph): a valid and a broken graph come back unchanged."""
    valid = union_of(ontology, valid_data())
    before = _triples(valid)
    assert validate_graph(valid, load_shapes(SHAPES_PATH)).conforms
    assert _triples(valid) == before
    broken = union_of(ontology, valid_data())
    broken.add((ENT.anemia, AKG.correlatesWith, ENT.neurological_symptoms))
    before = _triples(broken)
    assert not validate_graph(broken, load_shapes(SHAPES_PATH)).conforms
    assert _triples(broken) == before


def test_shapes_with_a_rule_validate_a_copy(ontology: Graph) -> None:
    """A SHACL rule would add triples to the graph it runs on: with one in the shapes, the caller's graph is kept."""
    shapes = load_shapes(SHAPES_PATH)
    rule_shapes_ttl = PREFIXES + """
@prefix sh: <http://www.w3.org/ns/shacl#> .
<urn:test:RuleShape> a sh:NodeShape ;
    sh:targetClass akg:Symptom ;
    sh:rule [ a sh:TripleRule ; sh:subject sh:this ; sh:predicate rdfs:comment ; sh:object "inferred" ] .
"""
    shapes.parse(data=rule_shapes_ttl, format="turtle")
    data = union_of(ontology, valid_data())
    before = _triples(data)
    assert validate_graph(data, shapes).conforms
    assert _triples(data) == before
