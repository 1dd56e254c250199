"""``create_app()``: the one FastAPI application (SPARQL endpoint, JSON API, health).

Nothing is built at import time: the services (executor, knowledge model, causal graphs) are opened in the
lifespan, from the settings given, and closed on shutdown. Tests pass ready-made services instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from .. import __version__
from . import entities, errors, meta, pages, sparql
from .cache import CacheStats, ResponseCache
from .security import RequestLimits, SecurityHeaders
from .services import Services, open_services
from .settings import Settings

DESCRIPTION = """\
Evidence-first knowledge graph of how anemia, above all vitamin B12 deficiency, leads to muscle cramping,
joint pain and worsening peripheral neuropathy. Every edge traces to a verbatim quote of the source article
and to the references cited in that sentence; hedges, conditions and negations are kept as qualifiers.
"""


class App(FastAPI):
    """FastAPI with the response cache wrapped around its whole middleware stack.

    ``add_middleware`` can only place a middleware inside Starlette's and FastAPI's own outer layers (error
    pages, telemetry, body limit), which a cached answer does not need: outside them a hit skips them (a few
    per cent of a hit's time, measured with wrk). A miss still goes through all of them, and an error is
    never stored.
    """

    cache: ResponseCache | None = None

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        config = self.state.config
        self.cache = ResponseCache(inner, max_bytes=0 if config.endpoint else config.cache_bytes,
                                   stats=self.state.cache)
        return self.cache


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> App:
    """The application; it opens its services at start-up unless ready-made ones are given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or open_services(settings or Settings())
        try:
            yield
        finally:
            if own:
                app.state.services.close()

    # FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN: /docs is served by pages.py instead,
    # from the fastapi-offline package, and ReDoc is left out.
    app = App(title="anemia-kg", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, responses=errors.LIMIT_ERRORS)
    # Outermost last: the size limits run first inside CORS (so a browser can read their 413), and the
    # security headers wrap everything, the limits' refusals and the pages included.
    config = settings or (services.settings if services else Settings())
    app.add_middleware(RequestLimits, max_body_bytes=config.max_body_bytes, max_url_bytes=config.max_url_bytes,
                       max_header_bytes=config.max_header_bytes)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST", "OPTIONS"],
                       allow_headers=["*"])
    app.add_middleware(SecurityHeaders, docs_paths=(pages.DOCS,))
    # Outermost of all (see App): a cached answer is the whole answer the stack gave, headers included. Only
    # for the embedded store, which nothing changes while the server runs (a remote engine's data can be
    # reloaded).
    app.state.config, app.state.cache = config, CacheStats()
    errors.install(app)
    app.include_router(sparql.router)
    app.include_router(entities.router)
    app.include_router(meta.router)
    app.include_router(pages.router)
    pages.mount_static(app)
    return app
