"""Health, the reference list with what each reference supports, and the quality of the curation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .errors import error_responses

router = APIRouter(responses=error_responses(503))  # 503 until the knowledge model is in


@router.get("/health", tags=["meta"], summary="Liveness and what the server serves")
def health(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    return {"status": "ok", "entities": len(services.knowledge.entities), "claims": len(services.knowledge.claims),
            "graphs": services.graphs, "store": "remote" if services.settings.endpoint else "embedded",
            "model": services.model_source}


@router.get("/api/references", tags=["evidence"], summary="Each reference with the claims it supports")
def references(request: Request) -> dict[str, Any]:
    return request.app.state.services.knowledge.references_report()


@router.get("/api/quality", tags=["evidence"], summary="Coverage of the article, uncited claims, unresolved citations")
def quality(request: Request) -> dict[str, Any]:
    return request.app.state.services.knowledge.quality_report()
