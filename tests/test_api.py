"""The JSON API in process (FastAPI's TestClient): resolution, search, paths, explain, reports, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from anemia_kg.api import Settings, create_app


@pytest.fixture(scope="module")
def client(real_build) -> Iterator[TestClient]:  # noqa: ANN001 - conftest fixture
    app = create_app(Settings(root=real_build.root, workers=1, query_timeout=10))
    with TestClient(app) as c:
        yield c


def get(client: TestClient, url: str, status: int = 200, **params: Any) -> Any:
    response = client.get(url, params=params)
    assert response.status_code == status, response.text
    return response.json()


@pytest.mark.parametrize("name", ["joint_pain", "ent:joint_pain", "https://w3id.org/anemia-kg/entity/joint_pain",
                                  "HP:0002829", "hp:0002829", "ICD10CM:M25.50", "Joint Pain", "arthralgia",
                                  "  ARTHRALGIA "])
def test_entity_is_resolved_from_any_name_and_echoed(client: TestClient, name: str) -> None:
    body = get(client, f"/api/entities/{name}")
    assert body["entity"]["id"] == "joint_pain"
    assert set(body["entity"]) == {"id", "label", "type", "synonyms", "xrefs", "definition"}
    assert body["entity"]["definition"] is None  # the article defines nothing and nothing is invented
    assert {"id": "HP:0002829", "match": "exact", "label": "Arthralgia",
            "iri": "http://purl.obolibrary.org/obo/HP_0002829"} in body["entity"]["xrefs"]


def test_entity_relations_carry_evidence_and_keep_negations(client: TestClient) -> None:
    body = get(client, "/api/entities/anemia")
    negated = [r for r in body["relations"] if r["negated"]]
    assert [(r["predicate"], r["other"]["id"]) for r in negated] == [("akg:correlatesWith", "neurological_symptoms")]
    assert negated[0]["qualifiers"]["negation"] == "does not necessarily correlate"
    cramp = next(r for r in body["relations"] if r["predicate"] == "akg:mayCause"
                 and r["other"]["id"] == "muscle_cramping")
    assert cramp["direction"] == "out" and cramp["certainty"] == "possible" and cramp["qualifiers"]["hedge"] == "can"
    assert cramp["evidence"][0]["quote"].startswith("anemia can cause or exacerbate muscle cramping")
    assert cramp["evidence"][0]["references"] == []  # the answer paragraph cites nothing


def test_unknown_entity_is_404_with_suggestions(client: TestClient) -> None:
    body = get(client, "/api/entities/arthralgiaa", 404)
    assert "unknown entity" in body["detail"]
    assert "joint_pain" in body["suggestions"]


@pytest.mark.parametrize("q,expected", [("MMA", "methylmalonic_acid_level"), ("EMG", "electromyography"),
                                        ("NCS", "nerve_conduction_studies"), ("ESA", "esa"),
                                        ("areflexia", "loss_of_deep_tendon_reflexes"), ("cramps", "muscle_cramping")])
def test_search_finds_clinician_synonyms_first(client: TestClient, q: str, expected: str) -> None:
    results = get(client, "/api/entities", q=q)["results"]
    assert results[0]["id"] == expected and results[0]["score"] >= 0.95
    assert set(results[0]) == {"id", "label", "type", "synonyms", "xrefs", "score"}


def test_search_ranks_exact_then_prefix_then_substring_and_filters_by_type(client: TestClient) -> None:
    results = get(client, "/api/entities", q="neuro", limit=20)["results"]
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    tests = get(client, "/api/entities", q="", type="DiagnosticTest", limit=100)["results"]
    assert {r["type"] for r in tests} == {"LaboratoryTest", "BedsideExamination", "ElectrophysiologicalStudy"}
    assert len(tests) == 13


@pytest.mark.parametrize("params", [{"q": "x", "limit": 0}, {"q": "x", "limit": 1000}, {"q": "x", "type": "Nope"}])
def test_bad_search_parameters_are_422(client: TestClient, params: dict[str, Any]) -> None:
    body = get(client, "/api/entities", 422, **params)
    assert body["detail"]


def _edge(path: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    return next(e for e in path["edges"] if (e["source"], e["target"]) == (source, target))


def test_paths_b12_deficiency_to_joint_pain_with_references(client: TestClient) -> None:
    body = get(client, "/api/paths", source="B12 deficiency", target="arthralgia")
    assert body["source"] == {"id": "vitamin_b12_deficiency", "label": "vitamin B12 deficiency",
                              "type": "NutritionalDeficiency"}
    assert body["target"]["id"] == "joint_pain"
    paths = body["paths"]
    assert paths and [p["score"] for p in paths] == sorted((p["score"] for p in paths), reverse=True)
    via_gait = next(p for p in paths if [n["id"] for n in p["nodes"]] ==
                    ["vitamin_b12_deficiency", "peripheral_neuropathy", "altered_gait", "joint_pain"])
    edge = _edge(via_gait, "altered_gait", "joint_pain")
    assert (edge["predicate"], edge["certainty"], edge["qualifiers"]["hedge"]) == (
        "akg:mayCause", "possible", "May be secondary to")
    quote = next(ev for ev in edge["evidence"] if ev["quote"].startswith("May be secondary"))
    assert quote["references"] == [{"number": 5, "title": "Peripheral Neuropathy", "year": 2025,
                                    "kind": "Guideline", "resolved": True}]
    assert via_gait["score_inputs"]["formula"]


def test_paths_anemia_reach_neuropathy_through_other_anemias_with_unresolved_citation(client: TestClient) -> None:
    paths = get(client, "/api/paths", source="anemia", target="peripheral neuropathy", limit=10)["paths"]
    direct = [p for p in paths if len(p["edges"]) == 1]
    assert direct and direct[0]["edges"][0]["qualifiers"]["hedge"] == "can"  # the direct edge is always there
    via = next(p for p in paths if [n["id"] for n in p["nodes"]] ==
               ["anemia", "anemia_other_causes", "anemia_due_to_toxicity", "peripheral_neuropathy"])
    assert [e["predicate"] for e in via["edges"][:2]] == ["skos:narrower", "skos:narrower"]  # specific forms
    refs = _edge(via, "anemia_due_to_toxicity", "peripheral_neuropathy")["evidence"][0]["references"]
    assert {"number": 7, "title": None, "year": None, "kind": None, "resolved": False} in refs
    assert any(r["number"] == 6 and r["resolved"] and r["year"] == 1990 for r in refs)


def test_treatments_and_tests_are_never_causes(client: TestClient) -> None:
    assert get(client, "/api/paths", source="B12 treatment", target="peripheral neuropathy")["paths"] == []
    assert get(client, "/api/paths", source="EMG", target="peripheral neuropathy")["paths"] == []
    alls = get(client, "/api/paths", source="B12 treatment", target="peripheral neuropathy", relations="all")
    assert alls["paths"], "with relations=all the treats/reverses claims connect them"


@pytest.mark.parametrize("params", [{"max_hops": 0}, {"max_hops": 9}, {"limit": 51}, {"relations": "some"}])
def test_bad_path_parameters_are_422(client: TestClient, params: dict[str, Any]) -> None:
    get(client, "/api/paths", 422, source="anemia", target="joint pain", **params)


def test_paths_unknown_entity_is_404_and_no_path_is_empty(client: TestClient) -> None:
    assert get(client, "/api/paths", 404, source="nothing here", target="joint pain")["detail"].startswith(
        "source: unknown entity 'nothing here'")
    wrong_target = get(client, "/api/paths", 404, source="anemia", target="joint pian")  # which one was wrong
    assert wrong_target["detail"].startswith("target: unknown entity 'joint pian'")
    assert wrong_target["suggestions"][0] == "joint_pain"
    assert get(client, "/api/explain", 404, finding="nothing here")["detail"].startswith(
        "finding: unknown entity 'nothing here'")
    none = get(client, "/api/paths", source="joint pain", target="vitamin B12 deficiency")
    assert none["paths"] == [] and none["source"]["id"] == "joint_pain"


def test_explain_muscle_cramps_is_a_ranked_tree(client: TestClient) -> None:
    body = get(client, "/api/explain", finding="muscle cramps")
    assert body["finding"]["id"] == "muscle_cramping"
    top = [n["entity"]["id"] for n in body["causes"]]
    assert "muscle_denervation" in top and "reduced_muscle_protein_synthesis" in top
    scores = [n["score"] for n in body["causes"]]
    assert scores == sorted(scores, reverse=True)

    def ids(nodes: list[dict[str, Any]]) -> set[str]:
        return {n["entity"]["id"] for n in nodes} | {i for n in nodes for i in ids(n["causes"])}

    assert "vitamin_b12_deficiency" in ids(body["causes"])


def test_references_and_quality_reports(client: TestClient) -> None:
    refs = get(client, "/api/references")
    assert [r["number"] for r in refs["references"]] == [1, 2, 3, 4, 5, 6]
    assert all(r["claims"] for r in refs["references"])
    assert [u["number"] for u in refs["unresolved"]] == [7] and refs["unresolved"][0]["resolved"] is False
    quality = get(client, "/api/quality")
    assert quality["coverage"]["percent_cited_covered"] == 100.0
    assert quality["uncited_claims"] and [u["number"] for u in quality["unresolved_citations"]] == [7]


def test_health_and_openapi(client: TestClient) -> None:
    health = get(client, "/health")
    assert health["status"] == "ok" and health["entities"] == 64 and len(health["graphs"]) == 4
    spec = get(client, "/openapi.json")
    assert {"/sparql", "/api/entities", "/api/entities/{entity_id}", "/api/paths", "/api/explain",
            "/api/references", "/api/quality", "/health"} <= set(spec["paths"])


@pytest.mark.parametrize("query", [
    "SELECT * WHERE { FILTER(" + "(" * 20_000 + "1" + ")" * 20_000 + ") }",
    "SELECT * WHERE { FILTER(" + "+".join(["1"] * 30_000) + " > 0) }",
])
def test_queries_that_would_crash_the_parser_are_refused_before_parsing(client: TestClient, query: str) -> None:
    response = client.post("/sparql", content=query.encode(), headers={"Content-Type": "application/sparql-query"})
    assert response.status_code == 400 and "at most" in response.json()["detail"]
    ok = client.get("/sparql", params={"query": "ASK { ?s ?p ?o }"})
    assert ok.status_code == 200 and ok.json()["boolean"] is True
