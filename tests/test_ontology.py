"""The ontology file parses, is fully documented, has no blank nodes, and says what the pipeline relies on:
which predicates a claim may use, which of them are causal and in which direction, and Biolink mappings that
all exist in the installed biolink-model schema."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from rdflib import OWL, RDF, RDFS, SKOS, BNode, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS

from anemia_kg.ontology import (
    AKG,
    ONTOLOGY_IRI,
    ONTOLOGY_PATH,
    OntologyError,
    Vocabulary,
    load_graph,
    load_vocabulary,
    vocabulary_from_graph,
)

BIOLINK = "https://w3id.org/biolink/vocab/"

CLAIM_PREDICATES = {
    "causes",
    "contributesTo",
    "mayCause",
    "exacerbates",
    "manifestsAs",
    "mediatedBy",
    "evaluatedBy",
    "diagnosticMarkerFor",
    "treats",
    "reverses",
    "preventsProgressionOf",
    "prevents",
    "associatedWith",
    "correlatesWith",
    "presentsSimilarlyTo",
    "progressesTo",  # added for the curated claims "may progress to", "may become irreversible"
}
CAUSAL = {"causes", "contributesTo", "mayCause", "exacerbates", "manifestsAs", "mediatedBy"}
SYMMETRIC = {"associatedWith", "correlatesWith", "presentsSimilarlyTo"}

# Direct akg: superclasses each class must have (as the data model and the curation step expect).
PARENTS = {
    "Entity": set(),
    "ClinicalPhenomenon": {"Entity"},
    "Condition": {"ClinicalPhenomenon"},
    "Anemia": {"Condition"},
    "VitaminB12DeficiencyAnemia": {"Anemia"},
    "IronDeficiencyAnemia": {"AnemiaOfOtherCause"},  # the article lists it under "Other Types of Anemia"
    "AnemiaOfOtherCause": {"Anemia"},
    "NutritionalDeficiency": {"Condition"},
    "Neuropathy": {"Condition"},
    "Mechanism": {"ClinicalPhenomenon"},
    "ClinicalFeature": {"ClinicalPhenomenon"},
    "Symptom": {"ClinicalFeature"},
    "ClinicalSign": {"ClinicalFeature"},
    "DiagnosticFinding": {"ClinicalFeature"},
    "Exposure": {"ClinicalPhenomenon"},
    "ToxicExposure": {"Exposure"},
    "ToxicAgent": {"Entity"},
    "DiagnosticTest": {"Entity"},
    "LaboratoryTest": {"DiagnosticTest"},
    "BedsideExamination": {"DiagnosticTest"},
    "ElectrophysiologicalStudy": {"DiagnosticTest"},
    "Treatment": {"Entity"},
    "Drug": {"Treatment"},
    "Supplement": {"Treatment"},
    "Therapy": {"Treatment"},
    "Reference": set(),
    "Guideline": {"Reference"},
    "ResearchArticle": {"Reference"},
    "SourceDocument": set(),
    "EvidenceUnit": set(),
    "Citation": set(),
    "Claim": set(),
    "Threshold": set(),
    "CertaintyLevel": set(),
    "CausalDirection": set(),
}


@pytest.fixture(scope="module")
def graph() -> Graph:
    return load_graph(ONTOLOGY_PATH)


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return load_vocabulary()


def akg_terms(graph: Graph) -> set[URIRef]:
    """Every akg: IRI the ontology declares (a subject with an rdf:type)."""
    return {s for s in graph.subjects(RDF.type, None) if isinstance(s, URIRef) and s.startswith(str(AKG))}


# --- parsing and determinism -----------------------------------------------------------------------


def test_ontology_parses(graph: Graph) -> None:
    assert len(graph) > 300
    assert (ONTOLOGY_IRI, RDF.type, OWL.Ontology) in graph


def test_no_blank_nodes(graph: Graph) -> None:
    """The build must be byte-deterministic, and blank-node labels are not."""
    blank = [t for t in graph if any(isinstance(x, BNode) for x in t)]
    assert blank == []


def test_ontology_header(graph: Graph) -> None:
    o = ONTOLOGY_IRI
    assert graph.value(o, OWL.versionIRI) == URIRef("https://w3id.org/anemia-kg/ontology/0.1.0")
    assert str(graph.value(o, OWL.versionInfo)) == "0.1.0"
    assert graph.value(o, DCTERMS.license) == URIRef("https://opensource.org/licenses/MIT")
    for prop in (DCTERMS.title, DCTERMS.description, DCTERMS.created):
        assert graph.value(o, prop) is not None, prop


# --- documentation ---------------------------------------------------------------------------------


def test_every_term_has_label_and_definition(graph: Graph) -> None:
    terms = akg_terms(graph)
    assert len(terms) > 60
    undocumented = [
        t
        for t in terms
        if not str(graph.value(t, RDFS.label) or "").strip()
        or not str(graph.value(t, SKOS.definition) or "").strip()
    ]
    assert undocumented == []


def test_every_akg_iri_used_is_declared(graph: Graph) -> None:
    """A typo such as akg:ClinicalPhenomena would otherwise silently mint a new term."""
    declared = akg_terms(graph)
    used = {x for t in graph for x in t if isinstance(x, URIRef) and x.startswith(str(AKG))}
    assert used - declared == set()


def test_class_hierarchy(vocab: Vocabulary) -> None:
    assert {name: set(c.parents) for name, c in vocab.classes.items()} == PARENTS


def test_external_superclasses(graph: Graph) -> None:
    prov_entity = URIRef("http://www.w3.org/ns/prov#Entity")
    assert (AKG.Claim, RDFS.subClassOf, RDF.Statement) in graph
    assert (AKG.Claim, RDFS.subClassOf, prov_entity) in graph
    assert (AKG.SourceDocument, RDFS.subClassOf, DCTERMS.BibliographicResource) in graph
    assert (AKG.SourceDocument, RDFS.subClassOf, prov_entity) in graph
    assert (AKG.Reference, RDFS.subClassOf, DCTERMS.BibliographicResource) in graph
    assert (AKG.CertaintyLevel, RDFS.subClassOf, SKOS.Concept) in graph


# --- claim predicates ------------------------------------------------------------------------------


def test_claim_predicates(graph: Graph, vocab: Vocabulary) -> None:
    assert set(vocab.predicates) == CLAIM_PREDICATES
    for name in CLAIM_PREDICATES:
        iri = AKG[name]
        assert (iri, RDF.type, OWL.ObjectProperty) in graph, name
        assert len(list(graph.objects(iri, RDFS.domain))) == 1, name
        assert len(list(graph.objects(iri, RDFS.range))) == 1, name
        assert len(list(graph.objects(iri, AKG.isCausal))) == 1, name


def test_causal_predicates_and_directions(vocab: Vocabulary) -> None:
    assert {p.name for p in vocab.predicates.values() if p.causal} == CAUSAL
    assert {p.name: p.direction for p in vocab.predicates.values() if p.causal} == {
        name: ("reverse" if name == "mediatedBy" else "forward") for name in CAUSAL
    }
    assert all(p.direction is None for p in vocab.predicates.values() if not p.causal)


def test_treatments_and_tests_are_never_causes(vocab: Vocabulary) -> None:
    for p in vocab.predicates.values():
        if p.causal:
            for end in (p.domain, p.range):
                assert vocab.is_subclass(end, "ClinicalPhenomenon"), (p.name, end)
                assert not vocab.is_subclass(end, "Treatment") and not vocab.is_subclass(
                    end, "DiagnosticTest"
                )
    assert not vocab.accepts("causes", "Drug", "Symptom")
    assert not vocab.accepts("mayCause", "LaboratoryTest", "Symptom")
    assert vocab.accepts("treats", "Supplement", "IronDeficiencyAnemia")
    assert vocab.accepts("mediatedBy", "Neuropathy", "Mechanism")
    assert not vocab.accepts("mediatedBy", "Neuropathy", "Symptom")


def test_symmetric_predicates(vocab: Vocabulary) -> None:
    assert {p.name for p in vocab.predicates.values() if p.symmetric} == SYMMETRIC
    for name in SYMMETRIC:
        p = vocab.predicate(name)
        assert p.domain == p.range and not p.causal


def test_sub_properties(vocab: Vocabulary) -> None:
    for name in ("causes", "mayCause", "exacerbates"):
        assert vocab.is_subproperty(name, "contributesTo")
    assert vocab.is_subproperty("reverses", "treats")
    assert not vocab.is_subproperty("mayCause", "causes")  # hedged causation is not established causation


def test_certainty_levels(graph: Graph) -> None:
    levels = set(graph.subjects(SKOS.inScheme, AKG.CertaintyScheme))
    assert levels == {AKG.Asserted, AKG.Strong, AKG.Possible}
    for level in levels:
        assert (level, RDF.type, AKG.CertaintyLevel) in graph
        assert (level, RDF.type, SKOS.Concept) in graph
        assert graph.value(level, SKOS.prefLabel) is not None
        assert graph.value(level, SKOS.definition) is not None
    assert (AKG.CertaintyScheme, RDF.type, SKOS.ConceptScheme) in graph


def test_qualifier_properties_exist(graph: Graph) -> None:
    for name in (
        "certainty",
        "hedge",
        "negated",
        "negation",
        "condition",
        "threshold",
        "thresholdText",
        "analyte",
        "comparator",
        "unit",
        "timeCourse",
        "frequency",
        "location",
        "outcome",
        "severity",
        "population",
        "evidence",
        "citation",
        "citationNumber",
        "resolvesTo",
        "unresolved",
        "referenceNumber",
        "referenceKind",
        "supportedByArticleOnly",
        "unitKind",
        "section",
        "line",
        "isCausal",
        "causalDirection",
        "claimPredicate",
    ):
        kinds = set(graph.objects(AKG[name], RDF.type))
        assert kinds & {OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty}, name
    assert (AKG.negated, RDFS.range, URIRef("http://www.w3.org/2001/XMLSchema#boolean")) in graph


# --- vocabulary API --------------------------------------------------------------------------------


def test_vocabulary_api(vocab: Vocabulary) -> None:
    assert vocab.is_subclass("VitaminB12DeficiencyAnemia", "ClinicalPhenomenon")
    assert vocab.is_subclass("Symptom", "Symptom")
    assert not vocab.is_subclass("Symptom", "Condition")
    assert not vocab.is_subclass("NoSuchClass", "Entity")
    entity_classes = vocab.entity_classes()
    assert "Symptom" in entity_classes and "ToxicAgent" in entity_classes
    assert not {"Entity", "Claim", "Reference", "Citation", "EvidenceUnit", "Threshold"} & set(entity_classes)
    assert vocab.predicate("mediatedBy").range == "Mechanism"
    with pytest.raises(KeyError, match="unknown claim predicate 'cause'"):
        vocab.predicate("cause")


def test_missing_is_causal_is_reported(graph: Graph) -> None:
    broken = Graph()
    for t in graph:
        broken.add(t)
    broken.remove((AKG.exacerbates, AKG.isCausal, None))
    with pytest.raises(OntologyError, match="akg:exacerbates needs akg:isCausal"):
        vocabulary_from_graph(broken, "ontology/anemia-kg.ttl")


# --- Biolink mappings ------------------------------------------------------------------------------


def _biolink_schema() -> dict:
    spec = importlib.util.find_spec("biolink_model")
    assert spec is not None and spec.submodule_search_locations, "biolink-model is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "schema" / "biolink_model.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _camel(name: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in name.split())


def test_biolink_version_is_the_pinned_one() -> None:
    assert str(_biolink_schema().get("version")) == "4.4.6"


def test_every_biolink_iri_exists(graph: Graph) -> None:
    schema = _biolink_schema()
    classes = {_camel(n): body or {} for n, body in schema["classes"].items()}
    slots = {n.replace(" ", "_"): body or {} for n, body in schema["slots"].items()}
    used = [(s, p, o) for s, p, o in graph if isinstance(o, URIRef) and o.startswith(BIOLINK)]
    assert len(used) >= 25
    for s, p, o in used:
        local = o[len(BIOLINK) :]
        assert p in (SKOS.exactMatch, SKOS.closeMatch, SKOS.broadMatch), (s, p, o)
        if (s, RDF.type, OWL.Class) in graph:
            assert local in classes, f"{s} maps to unknown Biolink class {local}"
            assert not classes[local].get("deprecated"), f"{s} maps to deprecated Biolink class {local}"
        else:
            assert local in slots, f"{s} maps to unknown Biolink slot {local}"
            assert not slots[local].get("deprecated"), f"{s} maps to deprecated Biolink slot {local}"


def test_no_two_terms_exactly_match_one_biolink_term(graph: Graph) -> None:
    targets = [o for o in graph.objects(None, SKOS.exactMatch) if str(o).startswith(BIOLINK)]
    assert len(targets) == len(set(targets))


def test_key_biolink_mappings(graph: Graph) -> None:
    b = lambda local: URIRef(BIOLINK + local)  # noqa: E731
    assert (AKG.causes, SKOS.exactMatch, b("causes")) in graph
    assert (AKG.contributesTo, SKOS.exactMatch, b("contributes_to")) in graph
    assert (AKG.treats, SKOS.exactMatch, b("treats")) in graph
    assert (AKG.negated, SKOS.exactMatch, b("negated")) in graph
    assert (AKG.Mechanism, SKOS.exactMatch, b("PathologicalProcess")) in graph
    assert (AKG.exacerbates, SKOS.closeMatch, b("exacerbates_condition")) in graph
    # a hedged predicate must not claim Biolink's established causation
    assert not set(graph.objects(AKG.mayCause, SKOS.exactMatch))


# --- syntax errors ---------------------------------------------------------------------------------


def _cut_inside(text: str, marker: str) -> tuple[str, int]:
    """The text cut just after the first occurrence of marker, and the line the cut falls on."""
    at = text.index(marker) + len(marker)
    return text[:at], text.count("\n", 0, at) + 1


@pytest.mark.parametrize(
    "marker",
    [
        'rdfs:label "clinical phen',  # inside a string
        "rdfs:range akg:Mecha",  # inside a prefixed name
        "dcterms:license <https://opensource.org/lic",  # inside an IRI
        "akg:VitaminB12DeficiencyAnemia a owl:Class ;\n    rdfs:subClassOf ",  # after a predicate
    ],
)
def test_truncated_ontology_names_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: str
) -> None:
    text = ONTOLOGY_PATH.read_text(encoding="utf-8")
    truncated, line = _cut_inside(text, marker)
    target = tmp_path / "ontology" / "anemia-kg.ttl"
    target.parent.mkdir()
    target.write_text(truncated, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OntologyError) as info:
        load_vocabulary(target)
    assert str(info.value).startswith(f"ontology/anemia-kg.ttl:{line}: "), str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained traceback


def test_syntax_error_in_the_middle_names_its_line(tmp_path: Path) -> None:
    lines = ONTOLOGY_PATH.read_text(encoding="utf-8").splitlines(keepends=True)
    bad = next(i for i, line in enumerate(lines) if line.startswith("akg:Symptom a owl:Class"))
    lines[bad] = "akg:Symptom a owl:Class ;; ]\n"
    target = tmp_path / "broken.ttl"
    target.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(OntologyError, match=rf"broken\.ttl:{bad + 1}: "):
        load_graph(target)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(OntologyError, match="file not found"):
        load_graph(tmp_path / "nowhere.ttl")


def test_claim_predicate_marker_is_boolean(graph: Graph) -> None:
    for p in CLAIM_PREDICATES:
        assert graph.value(AKG[p], AKG.claimPredicate) == Literal(True)
