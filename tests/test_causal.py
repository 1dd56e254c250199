"""Causal graph, evidence score and path search: on small hand-built knowledge models, then on the real article."""

from __future__ import annotations

import doctest
import itertools
import math
import time
from pathlib import Path
from types import SimpleNamespace

import networkx as nx
import pyoxigraph as ox
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anemia_kg import causal
from anemia_kg.causal import FORMULA, build_graph, explain, find_paths
from anemia_kg.knowledge import (
    Claim,
    Entity,
    Evidence,
    Knowledge,
    OntologyClass,
    PredicateInfo,
    Reference,
    UnknownEntity,
    load_knowledge,
    select_from_store,
)

# --- a tiny hand-built model -------------------------------------------------------------------------

CLASSES = {c.name: c for c in (
    OntologyClass("Entity", "entity"),
    OntologyClass("ClinicalPhenomenon", "clinical phenomenon", ("Entity",)),
    OntologyClass("Condition", "condition", ("ClinicalPhenomenon",)),
    OntologyClass("Mechanism", "mechanism", ("ClinicalPhenomenon",)),
    OntologyClass("Symptom", "symptom", ("ClinicalPhenomenon",)),
    OntologyClass("Treatment", "treatment", ("Entity",)),
    OntologyClass("Drug", "drug", ("Treatment",)),
    OntologyClass("DiagnosticTest", "diagnostic test", ("Entity",)),
)}
PREDICATES = {p.name: p for p in (
    PredicateInfo("causes", "akg:causes", "causes", True, False, False),
    PredicateInfo("mayCause", "akg:mayCause", "may cause", True, False, False),
    PredicateInfo("manifestsAs", "akg:manifestsAs", "manifests as", True, False, False),
    PredicateInfo("mediatedBy", "akg:mediatedBy", "mediated by", True, True, False),
    PredicateInfo("treats", "akg:treats", "treats", False, False, False),
    PredicateInfo("evaluatedBy", "akg:evaluatedBy", "evaluated by", False, False, False),
    PredicateInfo("associatedWith", "akg:associatedWith", "associated with", False, False, True),
)}
GUIDELINE = Reference(1, "A guideline", 2025, "Guideline")
RESEARCH = Reference(2, "A study", 1990, "Research")


def entity(entity_id: str, kind: str = "Condition", label: str | None = None, broader: tuple[str, ...] = ()) -> Entity:
    return Entity(entity_id, f"https://w3id.org/anemia-kg/entity/{entity_id}", f"ent:{entity_id}",
                  label or entity_id.replace("_", " "), kind, CLASSES[kind].label, broader=broader)


def claim(subject: str, predicate: str, obj: str, certainty: str = "asserted", cites: tuple[int, ...] = (1,),
          negated: bool = False, claim_id: str | None = None, **qualifiers: str) -> Claim:
    quote = f"{subject} {predicate} {obj}"
    refs = tuple(Reference(n, None, None, None, False) if n == 7 else {1: GUIDELINE, 2: RESEARCH}[n] for n in cites)
    return Claim(claim_id or f"{subject}-{predicate}-{obj}", subject, predicate, PREDICATES[predicate].curie,
                 PREDICATES[predicate].label, obj, certainty, negated, dict(qualifiers),
                 (Evidence(quote, "Section", refs, 0, len(quote), "u001"),), tuple(sorted(cites)), not cites)


def knowledge(entities: list[Entity], claims: list[Claim]) -> Knowledge:
    return Knowledge({e.id: e for e in entities}, sorted(claims, key=lambda c: c.id), dict(PREDICATES),
                     [GUIDELINE, RESEARCH], [7], classes=dict(CLASSES))


def chain_model() -> Knowledge:
    """deficiency -> mechanism -> symptom (via mediatedBy), a subtype under 'anemia', a treatment and a test."""
    return knowledge(
        [entity("anemia"), entity("b12_anemia", broader=("anemia",)), entity("deficiency"),
         entity("demyelination", "Mechanism"), entity("neuropathy"), entity("cramping", "Symptom"),
         entity("b12_shot", "Drug"), entity("reflex_test", "DiagnosticTest")],
        [claim("deficiency", "causes", "demyelination"),
         claim("neuropathy", "mediatedBy", "demyelination"),
         claim("neuropathy", "causes", "cramping"),
         claim("b12_anemia", "mayCause", "neuropathy", "possible", cites=()),
         claim("anemia", "causes", "cramping", negated=True, claim_id="anemia-not-causes-cramping"),
         claim("b12_shot", "treats", "neuropathy"),
         claim("neuropathy", "evaluatedBy", "reflex_test"),
         claim("deficiency", "associatedWith", "b12_anemia")])


def ids(path: dict) -> list[str]:
    return [n["id"] for n in path["nodes"]]


# --- the graph ---------------------------------------------------------------------------------------


def test_mediated_by_runs_from_the_mechanism_to_the_effect():
    g = build_graph(chain_model())
    assert g.has_edge("demyelination", "neuropathy") and not g.has_edge("neuropathy", "demyelination")
    (group,) = g.edges["demyelination", "neuropathy"]["groups"]
    assert (group.predicate, group.inverse) == ("akg:mediatedBy", True)
    edge = find_paths(g, "demyelination", "neuropathy")[0]["edges"][0]
    assert (edge["source"], edge["target"], edge["predicate"], edge["inverse"]) == (
        "demyelination", "neuropathy", "akg:mediatedBy", True)


def test_hierarchy_edges_run_from_general_to_specific_with_belief_one():
    g = build_graph(chain_model())
    assert g.has_edge("anemia", "b12_anemia") and not g.has_edge("b12_anemia", "anemia")
    (group,) = g.edges["anemia", "b12_anemia"]["groups"]
    assert (group.predicate, group.label, group.kind, group.belief, group.supports) == (
        "skos:narrower", "has specific form", "hierarchy", 1.0, ())
    (path,) = find_paths(g, "anemia", "cramping")
    assert ids(path) == ["anemia", "b12_anemia", "neuropathy", "cramping"]
    first = path["edges"][0]
    assert (first["predicate"], first["kind"], first["claims"], first["evidence"], first["certainty"]) == (
        "skos:narrower", "hierarchy", [], [], None)
    assert path["score"] == round(1.0 * 0.4 * 0.9, 6)


def test_negated_claims_give_no_edge_in_either_mode():
    for relations in ("causal", "all"):
        g = build_graph(chain_model(), relations)
        assert all(s.claim.id != "anemia-not-causes-cramping"
                   for _, _, groups in g.edges(data="groups") for group in groups for s in group.supports)
    # the only route from anemia to cramping is the hierarchy one, not the negated direct claim
    assert not build_graph(chain_model()).has_edge("anemia", "cramping")


def test_treatments_and_tests_are_never_causes():
    model = chain_model()
    g = build_graph(model)
    assert g.out_degree("b12_shot") == 0 and g.out_degree("reflex_test") == 0 and g.in_degree("reflex_test") == 0
    # even a (malformed) causal claim with a treatment as subject gives no causal edge
    bad = knowledge(list(model.entities.values()), [*model.claims, claim("b12_shot", "causes", "cramping")])
    assert not build_graph(bad).has_edge("b12_shot", "cramping")
    assert all(n["entity"]["id"] != "b12_shot" for n in explain(build_graph(bad), "cramping")["causes"])


def test_all_relations_add_non_causal_claims_in_their_stated_direction():
    g = build_graph(chain_model(), "all")
    assert g.has_edge("b12_shot", "neuropathy") and not g.has_edge("neuropathy", "b12_shot")
    assert g.has_edge("neuropathy", "reflex_test") and not g.has_edge("reflex_test", "neuropathy")
    # symmetric: both ways, the reverse one marked inverse
    assert not g.edges["deficiency", "b12_anemia"]["groups"][0].inverse
    assert g.edges["b12_anemia", "deficiency"]["groups"][0].inverse
    causal_only = build_graph(chain_model())
    assert not causal_only.has_edge("b12_shot", "neuropathy") and not causal_only.has_edge("deficiency", "b12_anemia")
    with pytest.raises(ValueError, match="relations"):
        build_graph(chain_model(), "everything")


# --- the evidence score ------------------------------------------------------------------------------


def test_doctests_of_the_score_functions():
    assert doctest.testmod(causal).attempted >= 2 and doctest.testmod(causal).failed == 0


@pytest.mark.parametrize(("certainty", "cites", "belief"), [
    ("asserted", (1,), 0.9), ("asserted", (2,), 0.9), ("asserted", (), 0.7), ("asserted", (7,), 0.7),
    ("asserted", (2, 7), 0.9), ("strong", (1,), 0.95), ("strong", (), 0.75), ("possible", (1,), 0.6),
    ("possible", (), 0.4), ("possible", (7,), 0.4),
])
def test_claim_belief_from_certainty_and_resolved_citations(certainty, cites, belief):
    model = knowledge([entity("a"), entity("b")], [claim("a", "causes", "b", certainty, cites)])
    g = build_graph(model)
    assert g.edges["a", "b"]["belief"] == pytest.approx(belief)
    assert g.edges["a", "b"]["weight"] == pytest.approx(-math.log(belief))
    (path,) = find_paths(g, "a", "b")
    (inputs,) = path["score_inputs"]["edges"]
    assert inputs["claims"] == [{"id": "a-causes-b", "certainty": certainty, "cited": belief in (0.9, 0.95, 0.6),
                                 "belief": belief}]
    assert path["score"] == belief and path["score_inputs"]["formula"] == FORMULA


def test_claims_of_one_predicate_combine_like_indra_and_the_best_predicate_weighs_the_edge():
    model = knowledge([entity("a"), entity("b")], [
        claim("a", "causes", "b", "asserted", (1,), claim_id="c1"),  # 0.9
        claim("a", "causes", "b", "asserted", (), claim_id="c2"),  # 0.7
        claim("a", "mayCause", "b", "possible", (1,), claim_id="c3", hedge="may"),  # 0.6
        claim("a", "manifestsAs", "b", "strong", (), claim_id="c4"),  # 0.75
    ])
    g = build_graph(model)
    groups = g.edges["a", "b"]["groups"]
    assert [(gr.predicate, round(gr.belief, 6)) for gr in groups] == [
        ("akg:causes", 0.97), ("akg:manifestsAs", 0.75), ("akg:mayCause", 0.6)]
    assert g.edges["a", "b"]["weight"] == pytest.approx(-math.log(0.97))
    (path,) = find_paths(g, "a", "b")
    edge = path["edges"][0]
    assert (edge["predicate"], edge["claims"], edge["certainty"], path["score"]) == (
        "akg:causes", ["c1", "c2"], "asserted", 0.97)
    assert [alt["predicate"] for alt in edge["alternatives"]] == ["akg:manifestsAs", "akg:mayCause"]
    assert edge["alternatives"][1]["qualifiers"] == {"hedge": "may"}


def test_edge_certainty_is_the_strongest_and_qualifiers_those_of_the_best_claim():
    model = knowledge([entity("a"), entity("b")], [
        claim("a", "causes", "b", "asserted", (), claim_id="c1", location="in nerves"),  # 0.7
        claim("a", "causes", "b", "strong", (1,), claim_id="c2", frequency="most common"),  # 0.95
    ])
    edge = find_paths(build_graph(model), "a", "b")[0]["edges"][0]
    assert (edge["certainty"], edge["qualifiers"], edge["claims"]) == ("strong", {"frequency": "most common"},
                                                                       ["c2", "c1"])


def test_path_score_is_the_product_of_edge_beliefs_rounded_to_six_decimals():
    model = knowledge([entity(x) for x in "abcd"], [
        claim("a", "causes", "b", "strong", ()),  # 0.75
        claim("b", "mayCause", "c", "possible", (1,)),  # 0.6
        claim("c", "causes", "d", "asserted", ()),  # 0.7
    ])
    (path,) = find_paths(build_graph(model), "a", "d")
    assert path["score"] == round(0.75 * 0.6 * 0.7, 6) == 0.315
    assert [e["belief"] for e in path["score_inputs"]["edges"]] == [0.75, 0.6, 0.7]


# --- ranking and bounds ------------------------------------------------------------------------------


def diamond() -> Knowledge:
    """s -> {x, y, z} -> t, all asserted and cited (0.81 each), and a 3-hop s -> m -> n -> t of 0.9^3."""
    nodes = [entity("s"), entity("t"), entity("x", label="xray"), entity("y", label="alpha"),
             entity("z", label="mid"), entity("m"), entity("n")]
    claims = [claim(u, "causes", v) for u, v in [("s", "x"), ("x", "t"), ("s", "y"), ("y", "t"), ("s", "z"),
                                                 ("z", "t"), ("s", "m"), ("m", "n"), ("n", "t")]]
    return knowledge(nodes, claims)


def test_ranking_is_score_then_hops_then_labels():
    paths = find_paths(build_graph(diamond()), "s", "t", limit=10)
    assert [ids(p) for p in paths] == [["s", "y", "t"], ["s", "z", "t"], ["s", "x", "t"], ["s", "m", "n", "t"]]
    assert [p["score"] for p in paths] == [0.81, 0.81, 0.81, 0.729]


def test_ties_of_score_prefer_fewer_hops():
    # s -> t through a hierarchy edge (belief 1) and a claim, against a direct claim of the same belief
    model = knowledge([entity("s"), entity("sub", broader=("s",)), entity("t")],
                      [claim("sub", "causes", "t"), claim("s", "causes", "t")])
    paths = find_paths(build_graph(model), "s", "t")
    assert [ids(p) for p in paths] == [["s", "t"], ["s", "sub", "t"]]
    assert paths[0]["score"] == paths[1]["score"] == 0.9


def test_ties_at_the_cut_are_decided_by_the_ranking_not_by_enumeration_order():
    paths = find_paths(build_graph(diamond()), "s", "t", limit=1)
    assert [ids(p) for p in paths] == [["s", "y", "t"]]  # "alpha" first among three equal 2-hop paths


def test_limit_and_max_hops_bound_the_answer():
    g = build_graph(diamond())
    assert len(find_paths(g, "s", "t", limit=2)) == 2
    assert all(len(p["edges"]) <= 2 for p in find_paths(g, "s", "t", max_hops=2, limit=10))
    assert len(find_paths(g, "s", "t", max_hops=2, limit=10)) == 3
    assert find_paths(g, "s", "t", max_hops=1) == []  # no direct edge, nothing within one hop


@pytest.mark.parametrize("kwargs", [{"max_hops": 0}, {"max_hops": 9}, {"limit": 0}, {"limit": 51},
                                    {"time_budget": -1.0}])
def test_out_of_range_parameters_are_rejected(kwargs):
    with pytest.raises(ValueError):
        find_paths(build_graph(diamond()), "s", "t", **kwargs)
    with pytest.raises(ValueError):
        explain(build_graph(diamond()), "t", **kwargs)


def test_same_node_unknown_node_and_no_path():
    g = build_graph(chain_model())
    assert find_paths(g, "neuropathy", "neuropathy") == []
    assert find_paths(g, "cramping", "deficiency") == []  # only downstream
    assert find_paths(g, "b12_shot", "cramping") == []
    with pytest.raises(UnknownEntity):
        find_paths(g, "nowhere", "cramping")


def test_direct_edge_is_always_included_even_when_longer_paths_score_higher():
    model = knowledge([entity(x) for x in ("s", "t", "a", "b", "c")], [
        claim("s", "mayCause", "t", "possible", ()),  # 0.4
        *(claim(u, "causes", v) for u, v in [("s", "a"), ("a", "t"), ("s", "b"), ("b", "t"), ("s", "c"),
                                             ("c", "t")]),  # three paths of 0.81
    ])
    g = build_graph(model)
    paths = find_paths(g, "s", "t", limit=2)
    assert [ids(p) for p in paths] == [["s", "a", "t"], ["s", "t"]]
    assert [p["score"] for p in paths] == [0.81, 0.4]
    (only,) = find_paths(g, "s", "t", limit=1)
    assert ids(only) == ["s", "t"]


def layered(width: int, depth: int) -> Knowledge:
    """A dense layered graph: every node of a layer causes every node of the next (many simple paths)."""
    layers = [["s"], *([f"n{d}_{i}" for i in range(width)] for d in range(depth)), ["t"]]
    nodes = [entity(n) for layer in layers for n in layer]
    claims = [claim(u, "causes", v) for a, b in itertools.pairwise(layers) for u in a for v in b]
    return knowledge(nodes, claims)


def test_time_budget_stops_the_enumeration(monkeypatch):
    g = build_graph(layered(6, 3))
    clock = itertools.count(0.0, 10.0)  # every look at the clock moves it 10 seconds on
    monkeypatch.setattr(causal, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    assert len(find_paths(g, "s", "t", limit=50, max_hops=8, time_budget=1.0)) == 1


def test_explain_checks_its_time_budget_between_steps(monkeypatch):
    g = build_graph(layered(2, 3))
    clock = itertools.count(0.0, 10.0)
    monkeypatch.setattr(causal, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    result = explain(g, "t", time_budget=1.0)
    assert len(result["causes"]) == 1 and result["causes"][0]["causes"] == []
    assert len(result["omitted"]) == 6


def test_a_large_search_stays_within_its_bounds():
    g = build_graph(layered(8, 4))  # 8**4 = 4096 simple paths
    started = time.monotonic()
    paths = find_paths(g, "s", "t", limit=50, max_hops=8, time_budget=0.2)
    assert time.monotonic() - started < 5.0
    assert 1 <= len(paths) <= 50
    assert all(p["score"] == round(0.9 ** 5, 6) for p in paths)



def reference_paths(g: nx.DiGraph, source: str, target: str, max_hops: int, limit: int) -> list[list[str]]:
    """The answer by definition: every simple path of at most ``max_hops`` hops, ranked, cut at ``limit``,
    with the direct edge put in (the documented contract), found by brute force."""
    rank = lambda p: causal._rank(g, p)  # noqa: E731
    best = sorted(nx.all_simple_paths(g, source, target, cutoff=max_hops), key=rank)[:limit]
    if g.has_edge(source, target) and [source, target] not in best:
        best = sorted([*best[:limit - 1], [source, target]], key=rank)
    return best


CERTAINTIES = ("strong", "asserted", "possible")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_path_search_equals_brute_force_on_random_graphs(data):
    n = data.draw(st.integers(3, 9))
    names = [f"e{i}" for i in range(n)]
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)).filter(lambda p: p[0] != p[1]),
                               max_size=24, unique=True))
    predicates, citations = st.sampled_from(("causes", "mayCause", "manifestsAs")), st.sampled_from(((1,), (), (7,)))
    claims = [claim(u, data.draw(predicates), v, certainty=data.draw(st.sampled_from(CERTAINTIES)),
                    cites=data.draw(citations)) for u, v in pairs]
    g = build_graph(knowledge([entity(x) for x in names], claims))
    max_hops, limit = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 8))
    source, target = data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))
    if source == target:
        return
    got = [ids(p) for p in find_paths(g, source, target, max_hops=max_hops, limit=limit, time_budget=30)]
    assert got == reference_paths(g, source, target, max_hops, limit)


def test_path_search_equals_brute_force_on_a_dense_layered_graph():
    g = build_graph(layered(4, 3))
    for max_hops, limit in ((4, 50), (3, 5), (5, 7)):
        got = [ids(p) for p in find_paths(g, "s", "t", max_hops=max_hops, limit=limit, time_budget=30)]
        assert got == reference_paths(g, "s", "t", max_hops, limit)

# --- explain -----------------------------------------------------------------------------------------


def test_explain_returns_a_tree_of_causes_each_once_at_its_best_position():
    model = knowledge(
        [entity("deficiency"), entity("demyelination", "Mechanism"), entity("neuropathy"),
         entity("cramping", "Symptom"), entity("anemia"), entity("b12_anemia", broader=("anemia",)),
         entity("metabolic", "Mechanism"), entity("b12_shot", "Drug")],
        [claim("deficiency", "causes", "demyelination"),  # 0.9
         claim("neuropathy", "mediatedBy", "demyelination"),  # 0.9
         claim("neuropathy", "causes", "cramping"),  # 0.9
         claim("deficiency", "mayCause", "cramping", "possible", ()),  # 0.4: worse than via the chain
         claim("b12_anemia", "mayCause", "neuropathy", "possible", ()),  # 0.4
         claim("cramping", "mediatedBy", "metabolic", cites=()),  # 0.7
         claim("b12_shot", "treats", "cramping")])
    result = explain(build_graph(model), "cramping")
    assert result["finding"]["id"] == "cramping" and result["finding"]["type"] == "Symptom"

    def shape(nodes):
        return [(n["entity"]["id"], n["score"], shape(n["causes"])) for n in nodes]

    assert shape(result["causes"]) == [
        ("neuropathy", 0.9, [
            ("demyelination", 0.81, [("deficiency", 0.729, [])]),
            ("b12_anemia", 0.36, [("anemia", 0.36, [])]),
        ]),
        ("metabolic", 0.7, []),
    ]
    top = result["causes"][0]
    assert (top["edge"]["source"], top["edge"]["target"], top["edge"]["predicate"]) == (
        "neuropathy", "cramping", "akg:causes")
    inverse = top["causes"][0]["edge"]
    assert (inverse["source"], inverse["target"], inverse["predicate"], inverse["inverse"]) == (
        "demyelination", "neuropathy", "akg:mediatedBy", True)
    assert result["omitted"] == []


def test_explain_is_bounded_by_hops_and_limit():
    g = build_graph(layered(2, 3))  # t <- n2_* <- n1_* <- n0_* <- s
    one_hop = explain(g, "t", max_hops=1)
    assert sorted(n["entity"]["id"] for n in one_hop["causes"]) == ["n2_0", "n2_1"]
    assert all(n["causes"] == [] for n in one_hop["causes"])
    limited = explain(g, "t", limit=3)

    def count(nodes):
        return sum(1 + count(n["causes"]) for n in nodes)

    assert count(limited["causes"]) == 3
    assert len(limited["omitted"]) == 7 - 3
    assert explain(g, "s")["causes"] == []


# --- the real article --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_knowledge(real_build) -> Knowledge:
    store = ox.Store()
    with open(Path(real_build.root) / "data" / "build" / "anemia-kg.nq", "rb") as fh:
        store.bulk_load(fh, format=ox.RdfFormat.N_QUADS)
    return load_knowledge(select_from_store(store))


@pytest.fixture(scope="session")
def real_graph(real_knowledge) -> nx.DiGraph:
    return build_graph(real_knowledge)


def refs(edge: dict) -> set[int]:
    return {r["number"] for ev in edge["evidence"] for r in ev["references"]}


def path_with(paths: list[dict], nodes: list[str]) -> dict:
    found = [p for p in paths if ids(p) == nodes]
    assert found, f"no path {nodes} among {[ids(p) for p in paths]}"
    return found[0]


def test_b12_deficiency_leads_to_muscle_cramping(real_graph):
    paths = find_paths(real_graph, "vitamin_b12_deficiency", "muscle_cramping")
    via_nerves = path_with(paths, ["vitamin_b12_deficiency", "peripheral_demyelination", "peripheral_neuropathy",
                                   "muscle_denervation", "muscle_cramping"])
    assert [(e["predicate"], refs(e)) for e in via_nerves["edges"]] == [
        ("akg:causes", {3}), ("akg:mediatedBy", {3}), ("akg:causes", {1}), ("akg:causes", {1})]
    assert via_nerves["edges"][1]["inverse"] is True
    # the hedged "may be due to ... B12 deficiency" of patients with diabetes is the only direct causal edge
    via_diabetes = path_with(paths, ["vitamin_b12_deficiency", "peripheral_neuropathy", "muscle_denervation",
                                     "muscle_cramping"])
    assert [(e["predicate"], e["inverse"], refs(e)) for e in via_diabetes["edges"]] == [
        ("akg:mayCause", False, {4}), ("akg:causes", False, {1}), ("akg:causes", False, {1})]
    assert via_diabetes["edges"][0]["claims"] == ["b12-deficiency-may-cause-neuropathy-in-diabetes"]
    assert paths[0] is via_nerves and via_nerves["score"] == 0.6561
    # "reduced skeletal muscle protein synthesis in B12 deficiency" is an association, not a causal step
    assert not real_graph.has_edge("vitamin_b12_deficiency", "reduced_muscle_protein_synthesis")


def test_b12_deficiency_leads_to_joint_pain_through_altered_gait(real_graph):
    paths = find_paths(real_graph, "vitamin_b12_deficiency", "joint_pain")
    path = path_with(paths, ["vitamin_b12_deficiency", "peripheral_neuropathy", "altered_gait", "joint_pain"])
    gait = path["edges"][-1]
    assert (gait["predicate"], gait["certainty"], gait["qualifiers"]["hedge"]) == (
        "akg:mayCause", "possible", "May be secondary to")
    (ref5,) = [r for ev in gait["evidence"] for r in ev["references"]]
    assert ref5 == {"number": 5, "title": "Peripheral Neuropathy", "year": 2025, "kind": "Guideline",
                    "resolved": True}
    assert "May be secondary to altered gait and biomechanics due to neuropathy" in [
        ev["quote"] for ev in gait["evidence"]]
    assert refs(path["edges"][1]) == {5} and refs(path["edges"][0]) == {4}
    neuropathy = path["edges"][1]
    assert (neuropathy["predicate"], neuropathy["certainty"], neuropathy["qualifiers"]["hedge"],
            neuropathy["claims"]) == ("akg:mayCause", "possible", "May be secondary to",
                                      ["neuropathy-may-cause-altered-gait"])


def test_b12_deficiency_to_peripheral_neuropathy_includes_the_direct_edge(real_graph):
    paths = find_paths(real_graph, "vitamin_b12_deficiency", "peripheral_neuropathy")
    direct = path_with(paths, ["vitamin_b12_deficiency", "peripheral_neuropathy"])
    edge = direct["edges"][0]
    # "strongly associated with ... peripheral neuropathy" is not causal: the only direct causal claim is the
    # hedged one about patients with diabetes
    assert (edge["predicate"], edge["certainty"], edge["qualifiers"].get("hedge"), edge["claims"]) == (
        "akg:mayCause", "possible", "may be due to", ["b12-deficiency-may-cause-neuropathy-in-diabetes"])
    assert {a["predicate"] for a in edge["alternatives"]} == set()
    via_demyelination = path_with(paths, ["vitamin_b12_deficiency", "peripheral_demyelination",
                                          "peripheral_neuropathy"])
    assert direct["score"] == 0.6 and via_demyelination["score"] == 0.81
    assert paths[0] is via_demyelination and paths[1] is direct


@pytest.mark.parametrize("target", ["muscle_cramping", "joint_pain", "peripheral_neuropathy"])
def test_anemia_directly_can_cause_each_symptom_on_the_article_alone(real_knowledge, real_graph, target):
    paths = find_paths(real_graph, "anemia", target)
    edge = path_with(paths, ["anemia", target])["edges"][0]
    claims = [edge["claims"], *(alt["claims"] for alt in edge["alternatives"])]
    for claim_id in itertools.chain.from_iterable(claims):
        c = real_knowledge.claim(claim_id)
        assert c.qualifiers["hedge"] == "can" and c.certainty == "possible"
        assert c.supported_by_article_only and c.citations == ()
    assert edge["qualifiers"]["hedge"] == "can" and refs(edge) == set()
    assert path_with(paths, ["anemia", target])["score"] == 0.4


def test_anemia_of_other_causes_reaches_peripheral_neuropathy_with_an_unresolved_citation(real_graph):
    paths = find_paths(real_graph, "anemia", "peripheral_neuropathy")
    path = path_with(paths, ["anemia", "anemia_other_causes", "anemia_due_to_toxicity", "peripheral_neuropathy"])
    *hierarchy, may_cause = path["edges"]
    assert [(h["predicate"], h["kind"], h["evidence"]) for h in hierarchy] == [
        ("skos:narrower", "hierarchy", [])] * 2
    assert may_cause["claims"] == ["toxic-anemias-can-cause-peripheral-neuropathy"]
    assert (may_cause["predicate"], may_cause["certainty"], may_cause["qualifiers"]["hedge"]) == (
        "akg:mayCause", "possible", "can")
    references = {r["number"]: r for ev in may_cause["evidence"] for r in ev["references"]}
    assert sorted(references) == [6, 7]
    assert references[6]["resolved"] and references[6]["kind"] == "Research" and references[6]["year"] == 1990
    assert references[7] == {"number": 7, "title": None, "year": None, "kind": None, "resolved": False}
    assert path["score"] == 0.6  # cited: reference 6 resolves


def test_no_treatment_or_test_is_a_cause_in_the_real_graph(real_knowledge, real_graph):
    for node in real_graph:
        if real_graph.out_degree(node):
            assert real_knowledge.can_cause(node), node


def test_explain_muscle_cramping_on_the_real_graph(real_graph):
    result = explain(real_graph, "muscle_cramping")
    seen: list[str] = []

    def walk(nodes, chain):
        scores = [n["score"] for n in nodes]
        assert scores == sorted(scores, reverse=True)
        for n in nodes:
            seen.append(n["entity"]["id"])
            assert n["edge"]["source"] == n["entity"]["id"] and n["edge"]["target"] == chain[0]
            assert causal.path_dict(real_graph, [n["entity"]["id"], *chain])["score"] == n["score"]
            walk(n["causes"], [n["entity"]["id"], *chain])

    walk(result["causes"], ["muscle_cramping"])
    assert len(seen) == len(set(seen))
    assert {"vitamin_b12_deficiency", "peripheral_neuropathy", "muscle_denervation", "anemia"} <= set(seen)
    ancestors = {n for n in nx.ancestors(real_graph, "muscle_cramping")
                 if nx.shortest_path_length(real_graph, n, "muscle_cramping") <= 4}
    assert set(seen) | {o["id"] for o in result["omitted"]} == ancestors


def test_path_search_on_the_real_graph_is_fast(real_graph, capsys):
    started = time.perf_counter()
    for source, target in itertools.product(["vitamin_b12_deficiency", "anemia"],
                                            ["muscle_cramping", "joint_pain", "peripheral_neuropathy"]):
        find_paths(real_graph, source, target, max_hops=8, limit=50)
    elapsed = (time.perf_counter() - started) / 6
    with capsys.disabled():
        print(f"\nfind_paths on the real graph (max_hops=8, limit=50): {elapsed * 1000:.1f} ms per query")
    assert elapsed < 1.0


def test_path_search_equals_brute_force_on_the_real_graph(real_knowledge, real_graph):
    everything = build_graph(real_knowledge, "all")
    for g in (real_graph, everything):
        sources = [n for n in g if g.out_degree(n)]
        targets = [n for n in g if g.in_degree(n)]
        for source in sources[::3]:
            for target in targets[::4]:
                if source != target:
                    got = [ids(p) for p in find_paths(g, source, target, max_hops=4, limit=5, time_budget=30)]
                    assert got == reference_paths(g, source, target, 4, 5), (source, target)
