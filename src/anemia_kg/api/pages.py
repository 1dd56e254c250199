"""The web pages: explorer, path finder, entity pages, SPARQL page and references, from the same application.

The HTML is rendered by :mod:`anemia_kg.render` from the project's Jinja templates; the pages take their data
embedded as JSON or from the JSON API of this server, and load nothing from another host: vis-network is
served from the copy inside the pyvis package, YASGUI from ``web/vendor/yasgui`` (``make web``) when present.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from .. import render
from ..knowledge import AmbiguousEntity, UnknownEntity
from ..paths import ROOT

router = APIRouter(include_in_schema=False)

SERVED = render.Links()
DOCS = "/docs"
SWAGGER = "/vendor/swagger-ui"
# Swagger UI 5 (OpenAPI 3.1, which FastAPI writes) as shipped inside the fastapi-offline package; only its
# files are used, not its application factory
_OFFLINE = importlib.util.find_spec("fastapi_offline")  # a dependency: always installed with this package
SWAGGER_FILES = Path((_OFFLINE.origin if _OFFLINE else None) or "").parent / "static"
VIS_MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _knowledge(request: Request) -> Any:
    return request.app.state.services.knowledge


def _html(template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return HTMLResponse(render.render_page(template, SERVED, **context), status_code=status)


@router.get("/", response_class=HTMLResponse)
def explorer(request: Request) -> HTMLResponse:
    return _html("explorer.html", render.explorer_context(_knowledge(request), SERVED))


@router.get("/paths", response_class=HTMLResponse)
def paths(request: Request) -> HTMLResponse:
    return _html("paths.html", render.paths_context(_knowledge(request), SERVED))


@router.get("/entity/{entity_id:path}", response_class=HTMLResponse)
def entity(request: Request, entity_id: str) -> HTMLResponse:
    knowledge = _knowledge(request)
    try:
        found = knowledge.resolve(entity_id)
    except UnknownEntity as exc:
        suggestions = [knowledge.entities[i] for i in exc.suggestions if i in knowledge.entities]
        detail = str(exc) if isinstance(exc, AmbiguousEntity) else f"No entity is called {entity_id!r}."
        return _html("not_found.html", {"page": "entity", "title": "Not found", "detail": detail,
                                        "suggestions": suggestions}, status=404)
    return _html("entity.html", render.entity_context(knowledge, found, SERVED))


@router.get("/references", response_class=HTMLResponse)
def references(request: Request) -> HTMLResponse:
    return _html("references.html", render.references_context(_knowledge(request), SERVED))


@router.get("/query", response_class=HTMLResponse)
def query(request: Request) -> HTMLResponse:
    own = Path(request.app.state.services.settings.root) / "queries"
    examples = render.example_queries(own if own.is_dir() else ROOT / "queries")
    return _html("query.html", render.query_context(examples, yasgui=_yasgui_ready(request)))


@router.get("/vendor/{name}")
def vendor(name: str) -> FileResponse:
    """vis-network from inside the installed pyvis package (``/vendor/vis-network.min.js`` and ``.css``)."""
    name = {"vis-network.min.css": "vis-network.css"}.get(name, name)
    if name not in render.VIS_FILES:
        raise HTTPException(404, f"no vendor file {name!r}")
    path = render.VIS_FILES[name]
    return FileResponse(path, media_type=VIS_MEDIA[path.suffix], headers={"Cache-Control": "public, max-age=86400"})


def _yasgui_ready(request: Request) -> bool:
    """YASGUI is offered once ``make web`` has bundled it and the app mounted it (at start-up)."""
    mounted = any(getattr(route, "path", None) == "/vendor/yasgui" for route in request.app.routes)
    return mounted and (render.YASGUI / "yasgui.min.js").is_file()


@router.get(DOCS)
def docs(request: Request) -> HTMLResponse:
    """Swagger UI over this server's OpenAPI schema, its files served from the ``fastapi-offline`` package."""
    return get_swagger_ui_html(openapi_url=request.app.openapi_url, title="anemia-kg API",
                               swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                               swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                               swagger_favicon_url=f"{SWAGGER}/favicon.png",
                               swagger_ui_parameters={"validatorUrl": None})  # no badge from validator.swagger.io


def mount_static(app: FastAPI) -> None:
    """Serve ``web/static`` at ``/static``, Swagger UI's files at ``/vendor/swagger-ui`` and, once bundled,
    ``web/vendor/yasgui`` at ``/vendor/yasgui``."""
    app.mount("/static", StaticFiles(directory=render.STATIC), name="static")
    app.mount(SWAGGER, StaticFiles(directory=SWAGGER_FILES), name="swagger-ui")
    if render.YASGUI.is_dir():
        app.mount("/vendor/yasgui", StaticFiles(directory=render.YASGUI), name="yasgui")
