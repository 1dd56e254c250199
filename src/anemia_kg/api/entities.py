"""The JSON API over the knowledge model: entity look-up, causal paths and explanations.

Route handlers parse, call one domain function and return; every lookup is in memory (the knowledge model
and the causal graphs were built at start-up) and never waits on I/O, so the handlers are ``async def`` and
run on the event loop. In the thread pool they would not run in parallel anyway (the work is Python, under
the GIL), and the two hops to a thread and back cost a third of the throughput (``docs/benchmarks.md``). The
price: a long call holds the loop while it runs, at most the path search's time budget, and about 13 ms for
the largest entity of the 1,000,000-triple benchmark corpus.
Entities are resolved from an id, IRI, CURIE, cross-reference, label or synonym, and always echoed back.
The answers are the domain's dicts, sent as they are; ``schemas.py`` documents their shapes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from ..causal import explain as explain_finding
from ..causal import find_paths
from ..knowledge import UnknownEntity
from .errors import BadParameter, error_responses
from .schemas import EntityAnswer, EntitySearch, Explanation, PathSearch, documented

router = APIRouter(prefix="/api", tags=["entities and paths"], responses=error_responses(404, 422, 503))

Relations = Literal["causal", "all"]


def _services(request: Request) -> Any:
    return request.app.state.services


def _resolve(knowledge: Any, text: str, parameter: str) -> Any:
    """The entity ``text`` names; an unknown one is reported with the parameter that named it, since a path
    search takes two and "unknown entity 'x'" alone does not say which was wrong."""
    try:
        return knowledge.resolve(text)
    except UnknownEntity as exc:
        exc.args = (f"{parameter}: {exc}",)
        raise


@router.get("/entities", summary="Search entities by id, label, synonym or cross-reference",
            **documented(EntitySearch, "The matching entities, best first."))
async def search_entities(
    request: Request,
    q: Annotated[str, Query(max_length=200, description="Text to look for; empty lists every entity.")] = "",
    type: Annotated[str | None, Query(max_length=100, description="Ontology class, e.g. Symptom or DiagnosticTest "
                                                                   "(subclasses included).")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Exact matches first (id, label, IRI, CURIE, cross-reference: 1.0; synonym: 0.95), then prefix (0.8),
    substring (0.6) and fuzzy matches (below 0.5)."""
    knowledge = _services(request).knowledge
    try:
        hits = knowledge.search(q, type=type, limit=limit)
    except ValueError as exc:
        raise BadParameter("type", str(exc)) from None
    return {"results": [{**_summary(e), "score": round(score, 3)} for e, score in hits]}


def _summary(entity: Any) -> dict[str, Any]:
    d = entity.to_dict()
    return {k: d[k] for k in ("id", "label", "type", "synonyms", "xrefs")}


@router.get("/entities/{entity_id:path}", summary="One entity with every relation and its evidence",
            **documented(EntityAnswer, "The entity and every claim it is part of, with the claims' evidence."))
async def get_entity(request: Request, entity_id: str) -> dict[str, Any]:
    knowledge = _services(request).knowledge
    entity = knowledge.resolve(entity_id)
    d = entity.to_dict()
    return {"entity": {k: d[k] for k in ("id", "label", "type", "synonyms", "xrefs", "definition")},
            "relations": knowledge.relations(entity.id)}


@router.get("/paths", summary="How can the source lead to the target, and on what evidence?",
            **documented(PathSearch, "The ranked causal chains, each step with its quotes and references."))
async def paths(
    request: Request,
    source: Annotated[str, Query(min_length=1, max_length=200)],
    target: Annotated[str, Query(min_length=1, max_length=200)],
    max_hops: Annotated[int, Query(ge=1, le=8)] = 4,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
    relations: Relations = "causal",
) -> dict[str, Any]:
    """Ranked chains, best first: score = product of edge beliefs, edge belief = 1 - prod(1 - b_i) over the
    edge's claims (b_i from certainty and citation), then fewer hops. ``[]`` when nothing connects them."""
    services = _services(request)
    src, dst = _resolve(services.knowledge, source, "source"), _resolve(services.knowledge, target, "target")
    graph = services.causal if relations == "causal" else services.everything
    found = find_paths(graph, src.id, dst.id, max_hops=max_hops, limit=limit,
                       time_budget=services.settings.path_time_budget) if src.id in graph and dst.id in graph else []
    return {"source": src.brief(), "target": dst.brief(), "relations": relations, "paths": found}


@router.get("/explain", summary="Every cause of a symptom or sign, as a ranked tree of causal chains",
            **documented(Explanation, "The finding and the tree of its causes."))
async def explain(
    request: Request,
    finding: Annotated[str, Query(min_length=1, max_length=200)],
    max_hops: Annotated[int, Query(ge=1, le=8)] = 4,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> dict[str, Any]:
    services = _services(request)
    entity = _resolve(services.knowledge, finding, "finding")
    if entity.id not in services.causal:
        return {"finding": entity.to_dict(), "causes": [], "omitted": []}  # the shape causal.explain gives
    return explain_finding(services.causal, entity.id, max_hops=max_hops, limit=limit,
                           time_budget=services.settings.path_time_budget)
