"""The response cache: a hit is byte-identical to what the application answers without a cache.

Two applications share one set of real services (embedded Oxigraph workers over the real build): one with
the cache, one with ``cache_bytes=0``. Every request is sent to the uncached one once and to the cached one
twice (a miss, then a hit); status, headers and body must be the same all three times.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from anemia_kg.api import Settings, create_app
from anemia_kg.api.cache import MAX_KEY_BODY
from anemia_kg.api.services import open_services

SELECT = "SELECT ?s ?label WHERE { ?s rdfs:label ?label } ORDER BY ?s LIMIT 20"
CONSTRUCT = "CONSTRUCT { ent:joint_pain ?p ?o } WHERE { ent:joint_pain ?p ?o }"
ASK = "ASK { ent:vitamin_b12_deficiency akg:causes ent:peripheral_demyelination }"
JSON, XML, CSV, TURTLE = ("application/sparql-results+json", "application/sparql-results+xml", "text/csv",
                          "text/turtle")

# (method, url, headers, body): every kind of request the cache keys on
REQUESTS: list[tuple[str, str, dict[str, str], Any]] = [
    ("GET", "/sparql", {"accept": JSON}, {"query": SELECT}),
    ("GET", "/sparql", {"accept": XML}, {"query": SELECT}),
    ("GET", "/sparql", {"accept": CSV}, {"query": SELECT}),
    ("GET", "/sparql", {"accept": JSON, "origin": "https://example.org"}, {"query": SELECT}),
    ("GET", "/sparql", {"accept": TURTLE}, {"query": CONSTRUCT}),
    ("GET", "/sparql", {"accept": JSON}, {"query": ASK}),
    ("GET", "/sparql", {"accept": TURTLE}, None),  # the service description names the endpoint's URL
    ("GET", "/sparql", {"accept": TURTLE, "host": "kg.example.org"}, None),
    ("POST", "/sparql", {"accept": JSON, "content-type": "application/sparql-query"}, SELECT),
    ("POST", "/sparql", {"accept": CSV, "content-type": "application/x-www-form-urlencoded"}, {"query": SELECT}),
    ("GET", "/api/entities", {}, {"q": "neuro"}),
    ("GET", "/api/entities", {}, {"q": "neuro", "limit": "3"}),
    ("GET", "/api/entities/joint_pain", {}, None),
    ("GET", "/api/paths", {}, {"source": "vitamin_b12_deficiency", "target": "joint_pain"}),
    ("GET", "/api/explain", {}, {"finding": "muscle_cramping"}),
    ("GET", "/api/references", {}, None),
    ("GET", "/api/quality", {}, None),
]


@pytest.fixture(scope="module")
def clients(real_build) -> Any:
    settings = Settings(root=real_build.root, workers=1, query_timeout=10)
    services = open_services(settings)
    cached = create_app(settings.model_copy(update={"cache_bytes": 8 * 1024 * 1024}), services=services)
    plain = create_app(settings.model_copy(update={"cache_bytes": 0}), services=services)
    with TestClient(cached) as c, TestClient(plain) as p:
        yield c, p, cached.state.cache
    services.close()


def send(client: TestClient, method: str, url: str, headers: dict[str, str], body: Any) -> tuple[int, list, bytes]:
    if method == "GET":
        r = client.get(url, params=body, headers=headers)
    elif isinstance(body, dict):
        r = client.post(url, data=body, headers=headers)
    else:
        r = client.post(url, content=body, headers=headers)
    return r.status_code, sorted(r.headers.multi_items()), r.content


@pytest.mark.parametrize(("method", "url", "headers", "body"), REQUESTS)
def test_a_hit_is_byte_identical_to_an_uncached_answer(clients, method, url, headers, body):
    cached, plain, stats = clients
    expected = send(plain, method, url, headers, body)
    assert expected[0] == 200
    hits = stats.hits
    first = send(cached, method, url, headers, body)
    second = send(cached, method, url, headers, body)
    assert first == expected and second == expected
    assert stats.hits == hits + 1  # the second one came from the cache


def test_requests_that_differ_in_what_the_answer_depends_on_never_share_an_entry(clients):
    cached, _, stats = clients
    answers = [send(cached, *request) for request in REQUESTS]
    assert len(stats.entries) >= len(REQUESTS)  # one entry each, though some bodies are alike
    json_select, xml_select = answers[0][2], answers[1][2]
    assert json_select.startswith(b"{") and xml_select.startswith(b"<?xml")
    with_origin = dict(answers[3][1])
    assert with_origin.get("access-control-allow-origin") == "*" and "access-control-allow-origin" not in dict(
        answers[0][1])
    local, remote = answers[6][2], answers[7][2]
    assert b"http://testserver/sparql" in local and b"http://kg.example.org/sparql" in remote


def test_errors_are_never_cached(clients):
    cached, _, stats = clients
    for url, params in (("/sparql", {"query": "SELECT * WHERE {"}), ("/api/entities/no_such_thing", None),
                        ("/api/paths", {"source": "anemia", "target": "joint_pain", "max_hops": "99"}),
                        ("/sparql", {"query": "INSERT DATA { <a:b> <a:c> <a:d> }"})):
        before = len(stats.entries)
        first = cached.get(url, params=params)
        assert first.status_code >= 400
        assert cached.get(url, params=params).status_code == first.status_code
        assert len(stats.entries) == before


def test_a_post_body_too_large_to_key_on_is_answered_without_the_cache(clients):
    cached, _, stats = clients
    query = SELECT + " #" + "x" * MAX_KEY_BODY
    before = (stats.hits, stats.misses)
    for _ in range(2):
        r = cached.post("/sparql", content=query, headers={"content-type": "application/sparql-query",
                                                           "accept": JSON})
        assert r.status_code == 200 and len(r.json()["results"]["bindings"]) == 20
    assert (stats.hits, stats.misses) == before


def test_the_cache_keeps_within_its_byte_budget_least_recently_used_first(real_build):
    settings = Settings(root=real_build.root, workers=1, query_timeout=10, cache_bytes=40_000)
    with TestClient(create_app(settings)) as client:
        stats = client.app.state.cache
        for n in range(1, 40):
            assert client.get("/api/entities", params={"q": "a", "limit": str(n)}).status_code == 200
            assert stats.bytes <= 40_000
        assert stats.evicted > 0
        newest = client.get("/api/entities", params={"q": "a", "limit": "39"})
        assert stats.hits == 1 and newest.status_code == 200
        client.get("/api/entities", params={"q": "a", "limit": "1"})  # evicted long ago: a miss
        assert stats.hits == 1


def test_a_chunked_post_is_answered_without_the_cache_and_without_waiting_for_it(clients):
    cached, _, stats = clients
    before = (stats.hits, stats.misses)

    def chunks():
        yield b"SELECT ?s WHERE { ?s ?p ?o } "
        yield b"LIMIT 3"

    for _ in range(2):
        r = cached.post("/sparql", content=chunks(), headers={"content-type": "application/sparql-query",
                                                              "accept": JSON})
        assert r.status_code == 200 and len(r.json()["results"]["bindings"]) == 3
    assert (stats.hits, stats.misses) == before


def test_the_cache_is_off_for_a_remote_engine_whose_data_may_change():
    def cache_bytes(settings: Settings) -> int:
        app = create_app(settings)
        app.build_middleware_stack()
        assert app.cache is not None
        return app.cache.max_bytes

    assert cache_bytes(Settings(cache_bytes=1000)) == 1000
    assert cache_bytes(Settings(cache_bytes=1000, endpoint="http://127.0.0.1:1/query")) == 0
