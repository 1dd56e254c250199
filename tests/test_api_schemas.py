"""The JSON API's answers against the models that document them in OpenAPI (``anemia_kg.api.schemas``).

Real answers, of the tiny project and of the real article, for several inputs per route (an empty search, a
search that finds nothing, a path search with no path, every entity, explain of every entity: findings with
causes and without, a tree with omitted causes) must validate against the route's model, strictly and with
extra keys forbidden, and dump back to the very same JSON (so no default fills in a key the code left out).
Across all of them, every field of every documented model must turn up at least once: no field is invented,
and the inputs reach every shape. ``/openapi.json`` must name the model as each route's 200 answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from anemia_kg.api import Settings, create_app
from anemia_kg.api import schemas as s

ROUTES: dict[str, type[BaseModel]] = {
    "/health": s.Health,
    "/api/references": s.ReferencesReport,
    "/api/quality": s.QualityReport,
    "/api/entities": s.EntitySearch,
    "/api/entities/{entity_id}": s.EntityAnswer,
    "/api/paths": s.PathSearch,
    "/api/explain": s.Explanation,
}
Request = tuple[str, dict[str, Any]]  # route, query parameters ({entity_id} filled in from "entity_id")

COMMON: list[Request] = [
    ("/health", {}), ("/api/references", {}), ("/api/quality", {}),
    ("/api/entities", {}),  # empty search: every entity, score 0.0
    ("/api/entities", {"q": "zzzzqqq"}),  # nothing found
    ("/api/entities", {"q": "", "type": "Symptom", "limit": 100}),
]
TINY: list[Request] = [
    *COMMON,
    ("/api/entities", {"q": "anemia"}), ("/api/entities", {"q": "anaem"}), ("/api/entities", {"q": "fatgue"}),
    ("/api/entities", {"q": "HP:0012378"}), ("/api/entities", {"q": "iron", "limit": 1}),
    ("/api/entities/{entity_id}", {"entity_id": "anemia"}),  # the most relations, a negated one among them
    ("/api/entities/{entity_id}", {"entity_id": "CBC"}), ("/api/entities/{entity_id}", {"entity_id": "HP:0012378"}),
    ("/api/paths", {"source": "iron deficiency", "target": "fatigue"}),
    ("/api/paths", {"source": "iron_deficiency", "target": "fatigue", "max_hops": 1}),
    ("/api/paths", {"source": "fatigue", "target": "anemia"}),  # no path
    ("/api/paths", {"source": "anemia", "target": "anaemia"}),  # the same entity: no path
    ("/api/paths", {"source": "anemia", "target": "CBC", "relations": "all"}),
    ("/api/explain", {"finding": "fatigue"}),  # causes with causes
    ("/api/explain", {"finding": "fatigue", "max_hops": 1, "limit": 1}),
    ("/api/explain", {"finding": "iron deficiency"}),  # no cause
]
REAL: list[Request] = [
    *COMMON,
    ("/api/entities", {"q": "b12"}), ("/api/entities", {"q": "neuro", "limit": 20}),
    ("/api/entities", {"q": "nuropathy"}), ("/api/entities", {"q": "", "type": "DiagnosticTest", "limit": 100}),
    ("/api/entities/{entity_id}", {"entity_id": "vitamin_b12_deficiency"}),  # the most relations
    ("/api/entities/{entity_id}", {"entity_id": "esa"}),  # a threshold
    ("/api/entities/{entity_id}", {"entity_id": "arthralgia"}),
    ("/api/paths", {"source": "B12 deficiency", "target": "arthralgia"}),
    ("/api/paths", {"source": "anemia", "target": "peripheral neuropathy", "limit": 10}),
    ("/api/paths", {"source": "B12 treatment", "target": "peripheral neuropathy", "relations": "all"}),
    ("/api/paths", {"source": "B12 treatment", "target": "peripheral neuropathy"}),  # treatments cause nothing
    ("/api/paths", {"source": "joint pain", "target": "vitamin B12 deficiency"}),  # no path
    ("/api/paths", {"source": "anemia", "target": "muscle cramps", "max_hops": 8, "limit": 50}),
    ("/api/paths", {"source": "esa", "target": "anemia_other_causes", "relations": "all"}),  # a threshold
    ("/api/explain", {"finding": "muscle cramps"}),
    ("/api/explain", {"finding": "peripheral neuropathy", "limit": 1}),  # the rest omitted
    ("/api/explain", {"finding": "muscle cramps", "max_hops": 8, "limit": 50}),
]


def answer(client: TestClient, route: str, params: dict[str, Any]) -> Any:
    params = dict(params)
    url = route.replace("{entity_id}", str(params.pop("entity_id", "")))
    response = client.get(url, params=params)
    assert response.status_code == 200, (url, params, response.text)
    return response.json()


def every_request(client: TestClient, fixed: list[Request]) -> Iterator[Request]:
    """The fixed requests, then each entity's own answer and its explanation (findings with and without causes)."""
    yield from fixed
    ids = [hit["id"] for hit in answer(client, "/api/entities", {"limit": 100})["results"]]
    for entity_id in ids:
        yield "/api/entities/{entity_id}", {"entity_id": entity_id}
        yield "/api/explain", {"finding": entity_id}


def validated(model: type[BaseModel], body: Any) -> BaseModel:
    """``body`` as ``model`` (strict, extra keys forbidden), checked to dump back to exactly ``body``."""
    instance = model.model_validate(body, strict=True)
    assert instance.model_dump(mode="json") == body
    return instance


def present(value: Any, found: set[tuple[str, str]]) -> None:
    """Adds (model, field) for every field that ``value``'s models were given, recursively."""
    if isinstance(value, BaseModel):
        found.update((type(value).__name__, name) for name in value.model_fields_set)
        for name in value.model_fields_set:
            present(getattr(value, name), found)
    elif isinstance(value, list):
        for item in value:
            present(item, found)


@pytest.fixture(scope="module")
def tiny_client(tiny_built) -> Iterator[TestClient]:  # noqa: ANN001 - conftest fixture
    with TestClient(create_app(Settings(root=tiny_built.root, workers=1, query_timeout=10))) as client:
        yield client


@pytest.fixture(scope="module")
def real_client(real_build) -> Iterator[TestClient]:  # noqa: ANN001 - conftest fixture
    with TestClient(create_app(Settings(root=real_build.root, workers=1, query_timeout=10))) as client:
        yield client


@pytest.fixture(scope="module")
def fields_seen(tiny_client: TestClient, real_client: TestClient) -> set[tuple[str, str]]:
    """Every (model, field) that some real answer of either project holds."""
    found: set[tuple[str, str]] = set()
    for client, fixed in ((tiny_client, TINY), (real_client, REAL)):
        for route, params in every_request(client, fixed):
            present(validated(ROUTES[route], answer(client, route, params)), found)
    return found


@pytest.mark.parametrize(("route", "params"), TINY, ids=[f"{r} {p}" for r, p in TINY])
def test_tiny_answers_match_their_models(tiny_client: TestClient, route: str, params: dict[str, Any]) -> None:
    validated(ROUTES[route], answer(tiny_client, route, params))


@pytest.mark.parametrize(("route", "params"), REAL, ids=[f"{r} {p}" for r, p in REAL])
def test_real_answers_match_their_models(real_client: TestClient, route: str, params: dict[str, Any]) -> None:
    validated(ROUTES[route], answer(real_client, route, params))


def test_edge_cases_are_the_ones_meant(tiny_client: TestClient, real_client: TestClient) -> None:
    """The inputs above reach what they are there for (so that a change of data cannot quietly skip them)."""
    assert answer(tiny_client, "/api/entities", {"q": "zzzzqqq"})["results"] == []
    assert {hit["score"] for hit in answer(tiny_client, "/api/entities", {})["results"]} == {0.0}
    assert answer(tiny_client, "/api/paths", {"source": "fatigue", "target": "anemia"})["paths"] == []
    many = answer(real_client, "/api/entities/{entity_id}", {"entity_id": "vitamin_b12_deficiency"})["relations"]
    assert len(many) >= 15 and {r["direction"] for r in many} == {"out", "in"}
    explained = answer(tiny_client, "/api/explain", {"finding": "fatigue"})
    assert explained["causes"] and any(cause["causes"] for cause in explained["causes"])
    assert answer(real_client, "/api/explain", {"finding": "peripheral neuropathy", "limit": 1})["omitted"]


def test_every_documented_field_occurs_in_some_real_answer(fields_seen: set[tuple[str, str]],
                                                           tiny_client: TestClient) -> None:
    """Each model of the schema (the 200 answers and every model they name) holds only fields the code emits."""
    documented = documented_models(tiny_client.get("/openapi.json").json())
    declared = {(name, field) for name in documented for field in getattr(s, name).model_fields}
    assert declared - fields_seen == set()


def documented_models(spec: dict[str, Any]) -> set[str]:
    """The names of the components the JSON routes' 200 answers refer to, directly or through each other."""
    components = spec["components"]["schemas"]
    todo = [answer_schema(spec, route)["$ref"] for route in ROUTES]
    found: set[str] = set()
    while todo:
        name = todo.pop().removeprefix("#/components/schemas/")
        if name not in found:
            found.add(name)
            todo.extend(refs(components[name]))
    return found


def refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield schema["$ref"]
        for value in schema.values():
            yield from refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from refs(value)


def answer_schema(spec: dict[str, Any], route: str) -> dict[str, Any]:
    return spec["paths"][route]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def test_openapi_names_each_routes_model_and_closes_every_object(tiny_client: TestClient) -> None:
    """What a client generator reads: each 200 answer is its model, and no documented object takes other keys."""
    spec = tiny_client.get("/openapi.json").json()
    for route, model in ROUTES.items():
        assert answer_schema(spec, route)["$ref"] == f"#/components/schemas/{model.__name__}", route
    components = spec["components"]["schemas"]
    for name in documented_models(spec):
        assert components[name]["additionalProperties"] is False, name
        assert set(components[name]["properties"]) == set(getattr(s, name).model_fields), name
        assert issubclass(getattr(s, name), s.Shape), name
