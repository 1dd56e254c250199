"""Health, the reference list with what each reference supports, and the quality of the curation.

The answers are the dicts the handlers make, sent as they are; ``schemas.py`` documents their shapes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .errors import error_responses
from .schemas import Health, QualityReport, ReferencesReport, documented

router = APIRouter(responses=error_responses(503))  # 503 until the knowledge model is in


@router.get("/health", tags=["meta"], summary="Liveness and what the server serves",
            **documented(Health, "The server is up and its knowledge model is in: what it serves."))
def health(request: Request) -> dict[str, Any]:
    services = request.app.state.services
    return {"status": "ok", "entities": len(services.knowledge.entities), "claims": len(services.knowledge.claims),
            "graphs": services.graphs, "store": "remote" if services.settings.endpoint else "embedded",
            "model": services.model_source}


@router.get("/api/references", tags=["evidence"], summary="Each reference with the claims it supports",
            **documented(ReferencesReport, "The reference list and the unresolved citations, with their claims."))
def references(request: Request) -> dict[str, Any]:
    return request.app.state.services.knowledge.references_report()


@router.get("/api/quality", tags=["evidence"], summary="Coverage of the article, uncited claims, unresolved citations",
            **documented(QualityReport, "Coverage, uncited claims and unresolved citations."))
def quality(request: Request) -> dict[str, Any]:
    return request.app.state.services.knowledge.quality_report()
