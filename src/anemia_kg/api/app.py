"""``create_app()``: the one FastAPI application (SPARQL endpoint, JSON API, health).

Nothing is built at import time: the services (executor, knowledge model, causal graphs) are opened in the
lifespan, from the settings given, and closed on shutdown. Tests pass ready-made services instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .. import __version__
from . import entities, errors, meta, pages, sparql
from .services import Services, open_services
from .settings import Settings

DESCRIPTION = """\
Evidence-first knowledge graph of how anemia, above all vitamin B12 deficiency, leads to muscle cramping,
joint pain and worsening peripheral neuropathy. Every edge traces to a verbatim quote of the source article
and to the references cited in that sentence; hedges, conditions and negations are kept as qualifiers.
"""


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
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

    app = FastAPI(title="anemia-kg", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST", "OPTIONS"],
                       allow_headers=["*"])
    errors.install(app)
    app.include_router(sparql.router)
    app.include_router(entities.router)
    app.include_router(meta.router)
    app.include_router(pages.router)
    pages.mount_static(app)
    return app
