"""The knowledge model read back from the built article graph through SPARQL: records, resolution, search, reports."""

from __future__ import annotations

import time
from pathlib import Path

import pyoxigraph as ox
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from anemia_kg.knowledge import (
    AmbiguousEntity,
    Knowledge,
    UnknownEntity,
    load_knowledge,
    select_from_store,
)

REPO = Path(__file__).resolve().parents[1]
CLAIMS = yaml.safe_load((REPO / "data" / "claims.yaml").read_text(encoding="utf-8"))["claims"]
ARTICLE = (REPO / "data" / "source" / "article.txt").read_bytes().decode("utf-8")


@pytest.fixture(scope="session")
def store(real_build) -> ox.Store:
    store = ox.Store()
    with open(Path(real_build.root) / "data" / "build" / "anemia-kg.nq", "rb") as fh:
        store.bulk_load(fh, format=ox.RdfFormat.N_QUADS)
    return store


@pytest.fixture(scope="session")
def k(store) -> Knowledge:
    return load_knowledge(select_from_store(store))


# --- loading -----------------------------------------------------------------------------------------


def test_select_from_store_gives_sparql_json_bindings_over_the_union_of_graphs(store):
    rows = select_from_store(store)(
        "SELECT ?label ?n WHERE { <https://w3id.org/anemia-kg/entity/joint_pain> "
        "<http://www.w3.org/2000/01/rdf-schema#label> ?label . "
        "<https://w3id.org/anemia-kg/source/dr-oracle-anemia-neuropathy-cite-7> "
        "<https://w3id.org/anemia-kg/ontology#citationNumber> ?n }")
    assert rows == [{"label": {"type": "literal", "value": "joint pain"},
                     "n": {"type": "literal", "value": "7", "datatype": "http://www.w3.org/2001/XMLSchema#integer"}}]


def test_loading_counts_match_the_curated_files(k):
    assert len(k.entities) == 64
    assert [c.id for c in k.claims] == sorted(c["id"] for c in CLAIMS)
    assert sum(c.negated for c in k.claims) == sum(bool(c.get("negated")) for c in CLAIMS) == 4
    assert [r.number for r in k.references] == [1, 2, 3, 4, 5, 6] and k.unresolved == [7]
    assert k.uncited_claims == sorted(c["id"] for c in CLAIMS if not any(e["cites"] for e in c["evidence"]))


def test_the_loaded_claims_are_the_curated_ones(k):
    for curated in CLAIMS:
        c = k.claim(curated["id"])
        assert (c.subject, c.predicate, c.object) == (curated["subject"], curated["predicate"], curated["object"])
        assert c.predicate_curie == f"akg:{curated['predicate']}" and c.label == k.predicates[c.predicate].label
        assert c.certainty == curated.get("certainty", "asserted") and c.negated == bool(curated.get("negated"))
        assert c.citations == tuple(sorted({n for e in curated["evidence"] for n in e["cites"]}))
        assert c.supported_by_article_only == (not c.citations)
        for key in ("hedge", "negation", "condition", "time_course", "frequency", "location", "outcome", "severity"):
            assert c.qualifiers.get(key) == curated.get(key), (c.id, key)
        assert c.qualifiers.get("population") == (sorted(curated["population"]) if "population" in curated else None)
        for ev in c.evidence:
            assert ARTICLE[ev.start:ev.end] == ev.quote  # verbatim, Unicode offsets
        assert sorted(ev.quote for ev in c.evidence) == sorted(e["quote"] for e in curated["evidence"])


def test_predicates_carry_the_ontologys_causal_flags(k):
    causal = {n for n, p in k.predicates.items() if p.causal}
    assert causal == {"contributesTo", "causes", "mayCause", "exacerbates", "manifestsAs", "mediatedBy"}
    assert {n for n, p in k.predicates.items() if p.reverse} == {"mediatedBy"}
    assert {n for n, p in k.predicates.items() if p.symmetric} == {"associatedWith", "correlatesWith",
                                                                   "presentsSimilarlyTo"}
    assert k.predicates["mayCause"].to_dict() == {"name": "mayCause", "curie": "akg:mayCause", "label": "may cause",
                                                  "causal": True, "reverse": False, "symmetric": False}


def test_entity_record(k):
    assert k.entities["joint_pain"].to_dict() == {
        "id": "joint_pain", "iri": "https://w3id.org/anemia-kg/entity/joint_pain", "curie": "ent:joint_pain",
        "label": "joint pain", "type": "Symptom", "type_label": "symptom", "synonyms": ["arthralgia", "joint ache"],
        "xrefs": [
            {"id": "HP:0002829", "match": "exact", "label": "Arthralgia",
             "iri": "http://purl.obolibrary.org/obo/HP_0002829"},
            {"id": "ICD10CM:M25.50", "match": "exact", "label": "Pain in unspecified joint",
             "iri": "http://purl.bioontology.org/ontology/ICD10CM/M25.50"},
        ],
        "definition": None, "broader": [],
    }
    b12_anemia = k.entities["vitamin_b12_deficiency_anemia"]
    assert (b12_anemia.type, b12_anemia.broader) == ("VitaminB12DeficiencyAnemia", ("anemia",))
    assert [(x.id, x.match) for x in b12_anemia.xrefs] == [("ICD10CM:D51.9", "exact"), ("HP:0001889", "broad")]
    assert all(e.definition is None for e in k.entities.values())  # the article defines nothing


def test_claim_record_with_threshold_population_and_evidence(k):
    esa = k.claim("esa-treats-persistent-symptomatic-anemia").to_dict()
    assert esa["qualifiers"] == {"condition": "persistent symptomatic anemia", "threshold": {
        "text": "hemoglobin <10g/dL", "analyte": "hemoglobin", "comparator": "<", "value": 10, "unit": "g/dL"}}
    cbc = k.claim("anemia-evaluated-by-complete-blood-count")
    assert cbc.qualifiers == {"population": ["anemia", "neurological_symptoms"]}
    gait = k.claim("altered-gait-may-cause-joint-pain").to_dict()
    assert gait["evidence"][1] == {
        "quote": "May be secondary to altered gait and biomechanics due to neuropathy",
        "section": "Mechanisms of Symptom Development > Joint Pain",
        "references": [{"number": 5, "title": "Peripheral Neuropathy", "year": 2025, "kind": "Guideline",
                        "resolved": True}],
        "start": 2066, "end": 2133, "unit": "u025"}
    assert gait["evidence"][0]["quote"] == "Joint Pain:" and gait["evidence"][0]["references"] == []
    toxic = k.claim("toxic-anemias-can-cause-peripheral-neuropathy")
    assert [(r.number, r.resolved, r.title) for r in toxic.evidence[0].references] == [
        (6, True, "Peripheral neuropathy and haemolytic anaemia with cherry red spot on macula in dapsone poisoning."),
        (7, False, None)]


def test_loading_does_not_depend_on_the_order_of_result_rows(store, k):
    select = select_from_store(store)
    assert load_knowledge(lambda sparql: list(reversed(select(sparql)))) == k


def test_load_knowledge_is_fast(store, capsys):
    started = time.perf_counter()
    for _ in range(5):
        load_knowledge(select_from_store(store))
    elapsed = (time.perf_counter() - started) / 5
    with capsys.disabled():
        print(f"\nload_knowledge on the real graph (embedded Oxigraph): {elapsed * 1000:.1f} ms")
    assert elapsed < 2.0


# --- resolution --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "entity_id"), [
    ("joint_pain", "joint_pain"),
    ("https://w3id.org/anemia-kg/entity/joint_pain", "joint_pain"),
    ("ent:joint_pain", "joint_pain"),
    ("HP:0009830", "peripheral_neuropathy"),
    ("hp:0009830", "peripheral_neuropathy"),
    ("HP:0002829", "joint_pain"),
    ("ICD10CM:G62.9", "peripheral_neuropathy"),
    ("icd10cm:G62.9", "peripheral_neuropathy"),
    ("http://purl.obolibrary.org/obo/HP_0002829", "joint_pain"),
    ("joint pain", "joint_pain"),
    ("  Joint   PAIN ", "joint_pain"),
    ("arthralgia", "joint_pain"),
    ("Arthralgia", "joint_pain"),
    ("MMA", "methylmalonic_acid_level"),
    ("mma", "methylmalonic_acid_level"),
    ("EMG", "electromyography"),
    ("NCS", "nerve_conduction_studies"),
    ("ESA", "esa"),
    ("areflexia", "loss_of_deep_tendon_reflexes"),
    ("B12 deficiency", "vitamin_b12_deficiency"),
])
def test_resolve(k, text, entity_id):
    assert k.resolve(text).id == entity_id


@pytest.mark.parametrize(("xref", "entity_id"), [
    ("HP:0011096", "peripheral_demyelination"),  # exact here, narrow for disruption of myelin
    ("HP:0002936", "loss_of_distal_sensation"),  # exact here, broad elsewhere
    ("HP:0100502", "vitamin_b12_deficiency"),  # close here, related for the serum B12 test
])
def test_a_shared_cross_reference_resolves_to_its_best_match(k, xref, entity_id):
    assert k.resolve(xref).id == entity_id


def test_a_cross_reference_shared_at_the_same_match_type_is_ambiguous(k):
    with pytest.raises(AmbiguousEntity) as info:
        k.resolve("HP:0000707")
    assert info.value.suggestions == ["neurological_damage", "neurological_dysfunction",
                                      "neurological_manifestations", "neurological_symptoms",
                                      "permanent_neurological_damage"]
    assert isinstance(info.value, UnknownEntity)


def test_unknown_text_raises_with_suggestions(k):
    with pytest.raises(UnknownEntity) as info:
        k.resolve("peripheral neuropaty")
    assert info.value.suggestions[0] == "peripheral_neuropathy" and info.value.text == "peripheral neuropaty"
    assert "peripheral_neuropathy" in str(info.value)
    with pytest.raises(UnknownEntity) as info:
        k.resolve("   ")
    assert info.value.suggestions == []
    with pytest.raises(UnknownEntity):
        k.resolve("HP:9999999")


# --- search ------------------------------------------------------------------------------------------


def hits(k: Knowledge, q: str, **kwargs) -> list[tuple[str, float]]:
    return [(e.id, score) for e, score in k.search(q, **kwargs)]


def test_search_ranks_exact_then_synonym_then_prefix_then_substring_then_fuzzy(k):
    assert hits(k, "joint pain")[0] == ("joint_pain", 1.0)
    assert hits(k, "HP:0002829") == [("joint_pain", 1.0)]
    assert hits(k, "arthralgia")[0] == ("joint_pain", 0.95)
    assert hits(k, "joint")[:2] == [("joint_pain", 0.8), ("proprioception_testing", 0.8)]  # tie: by label
    assert hits(k, "pain")[0] == ("joint_pain", 0.6)
    (best, score), *_ = hits(k, "neuropaty")
    assert best == "peripheral_neuropathy" and 0 < score < 0.5
    for q in ("b12", "neuro", "anemia", "cramp"):
        scores = [s for _, s in hits(k, q, limit=50)]
        assert scores == sorted(scores, reverse=True)
    assert hits(k, "zzzzqqq") == []


def test_search_ties_are_ordered_by_label(k):
    found = k.search("b12", limit=50)
    for (a, sa), (b, sb) in zip(found, found[1:], strict=False):
        assert sa > sb or (sa == sb and a.label.casefold() <= b.label.casefold())


def test_search_type_filter_includes_subclasses(k):
    tests = {e.id for e, _ in k.search("", type="DiagnosticTest", limit=50)}
    kinds = {k.entities[t].type for t in tests}
    assert kinds == {"LaboratoryTest", "BedsideExamination", "ElectrophysiologicalStudy"}
    assert {"methylmalonic_acid_level", "electromyography", "gait_assessment"} <= tests
    assert tests == {e.id for e in k.entities.values() if k.is_a(e.type, "DiagnosticTest")}
    symptoms = hits(k, "pain", type="Symptom")
    assert symptoms[0] == ("joint_pain", 0.6) and all(score < 0.5 for _, score in symptoms[1:])
    assert all(k.entities[e].type == "Symptom" for e, _ in symptoms)
    assert hits(k, "joint pain", type="DiagnosticTest") == []
    anemias = {e.id for e, _ in k.search("anemia", type="Anemia", limit=50)}
    assert anemias == {"anemia", "vitamin_b12_deficiency_anemia", "iron_deficiency_anemia", "anemia_other_causes",
                       "anemia_due_to_toxicity"}


def test_search_rejects_an_unknown_type_naming_the_allowed_ones(k):
    with pytest.raises(ValueError, match="allowed: .*DiagnosticTest.*Symptom"):
        k.search("pain", type="Disease")
    with pytest.raises(ValueError):
        k.search("pain", limit=0)


# --- views -------------------------------------------------------------------------------------------


def test_relations_of_joint_pain(k):
    rels = k.relations("joint_pain")
    assert [(r["direction"], r["predicate"], r["other"]["id"]) for r in rels] == [
        ("out", "akg:mediatedBy", "inflammatory_processes"),
        ("in", "akg:contributesTo", "compensatory_movements"),
        ("in", "akg:exacerbates", "anemia"),
        ("in", "akg:mayCause", "altered_biomechanics"),
        ("in", "akg:mayCause", "altered_gait"),
        ("in", "akg:mayCause", "anemia"),
    ]
    gait = rels[4]
    assert gait["other"] == {"id": "altered_gait", "label": "altered gait", "type": "ClinicalSign"}
    assert (gait["label"], gait["certainty"], gait["negated"], gait["qualifiers"], gait["claim"]) == (
        "may cause", "possible", False, {"hedge": "May be secondary to"}, "altered-gait-may-cause-joint-pain")
    assert gait["evidence"][1]["references"][0]["number"] == 5
    with pytest.raises(UnknownEntity):
        k.relations("no_such_entity")


def test_relations_keep_negated_claims(k):
    rels = k.relations("neurological_symptoms")
    negated = {r["claim"] for r in rels if r["negated"]}
    assert negated == {"anemia-severity-not-necessarily-correlated-with-neurological-severity",
                       "delayed-b12-treatment-may-not-reverse-neurological-symptoms",
                       "neuropathy-may-be-asymptomatic-initially"}


def test_every_entitys_relations_are_those_of_a_scan_of_all_claims(k):
    """relations() reads an index of the claims by entity; a scan of every claim must find the same ones."""
    for entity_id in k.entities:
        scanned = sorted((c.id, direction) for c in k.claims
                         for direction, this in (("out", c.subject), ("in", c.object)) if this == entity_id)
        assert sorted((r["claim"], r["direction"]) for r in k.relations(entity_id)) == scanned, entity_id


def test_references_report(k):
    report = k.references_report()
    refs = {r["number"]: r for r in report["references"]}
    assert sorted(refs) == [1, 2, 3, 4, 5, 6]
    assert (refs[5]["title"], refs[5]["year"], refs[5]["kind"], refs[5]["resolved"]) == (
        "Peripheral Neuropathy", 2025, "Guideline", True)
    assert {"id": "altered-gait-may-cause-joint-pain", "text": "altered gait — may cause → joint pain",
            "certainty": "possible", "negated": False} in refs[5]["claims"]
    for number, ref in refs.items():
        assert [c["id"] for c in ref["claims"]] == sorted(c["id"] for c in CLAIMS
                                                          if any(number in e["cites"] for e in c["evidence"]))
    (seven,) = report["unresolved"]
    assert {key: seven[key] for key in ("number", "title", "year", "kind", "resolved")} == {
        "number": 7, "title": None, "year": None, "kind": None, "resolved": False}
    assert [c["id"] for c in seven["claims"]] == ["dapsone-toxicity-causes-anemia", "lead-toxicity-causes-anemia",
                                                  "toxic-anemias-can-cause-peripheral-neuropathy"]


def test_quality_report(k):
    report = k.quality_report()
    assert report["coverage"]["percent_cited_covered"] == 100.0
    assert report["coverage"]["cited_covered"] == report["coverage"]["cited_units"] == 32
    assert report["coverage"]["covered"] == report["coverage"]["claim_bearing_units"] == 45
    assert [c["id"] for c in report["uncited_claims"]] == k.uncited_claims and len(k.uncited_claims) == 21
    assert [u["number"] for u in report["unresolved_citations"]] == [7]
    assert len(report["unresolved_citations"][0]["claims"]) == 3


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aeinorstu lm", min_size=1, max_size=12),
       st.lists(st.text(alphabet="aeinorstu lm", min_size=1, max_size=24), min_size=1, max_size=6))
def test_fuzzy_score_is_difflibs_best_ratio_whatever_the_shortcuts(key, names):
    """The search skips names by difflib's own upper bounds, computed from counts made once: the score must be
    exactly what comparing the key with every name would give."""
    import difflib
    from collections import Counter

    from anemia_kg.knowledge import FUZZY_CUTOFF, SearchNames, _score

    n = SearchNames(frozenset(), frozenset(), (), tuple(names), tuple(Counter(x) for x in names))
    best = max(difflib.SequenceMatcher(None, key, x).ratio() for x in names)
    assert _score(n, key, Counter(key)) == (round(0.5 * best, 4) if best >= FUZZY_CUTOFF else 0.0)
