"""``create_app()``: the one FastAPI application (SPARQL endpoint, JSON API, health).

Nothing is built at import time: the services (executor, knowledge model, causal graphs) are opened in the
lifespan, from the settings given, and closed on shutdown. Tests pass ready-made services instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

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
    """FastAPI with the response cache around its whole middleware stack, and a direct lane for ``/sparql``.

    ``add_middleware`` can only place a middleware inside Starlette's and FastAPI's own outer layers (error
    pages, telemetry, body limit), which a cached answer does not need: outside them a hit skips them (a few
    per cent of a hit's time, measured with wrk). A miss still goes through all of them, and an error is
    never stored.

    GET and POST ``/sparql`` do not go through FastAPI's router: :class:`DirectLanes` sends them to
    :func:`sparql.asgi` wrapped in the same user middlewares (security headers, CORS, limits) and the same
    exception handlers, built the way Starlette builds its own stack (:meth:`direct_stack`). The router's
    route stays, for the OpenAPI schema and for any other method. The dozen routing layers skipped cost a
    sixth of a cheap query's time on the server.
    """

    cache: ResponseCache | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Starlette's ``__call__`` for ``/sparql``, without FastAPI's telemetry check in front of it.

        FastAPI asks on every request whether OpenTelemetry is configured (it is not, here), and its answer
        cost 2.5% of the server's main thread on a cheap query in a py-spy profile under load.

        HEAD is answered as GET (RFC 9110 asks every general-purpose server to): the application sees a GET in
        a copy of the scope, and the HTTP server, whose scope still says HEAD, leaves the body out and keeps
        the headers, Content-Length included. FastAPI's routes list GET only, so HEAD got 405 everywhere.
        """
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope = {**scope, "method": "GET"}
        if scope["type"] == "http" and scope["path"] == sparql.PATH and self.middleware_stack is not None:
            scope["app"] = self
            await self.middleware_stack(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        config = self.state.config
        lanes = DirectLanes(inner, {sparql.PATH: self.direct_stack(sparql.asgi)})
        self.cache = ResponseCache(lanes, max_bytes=0 if config.endpoint else config.cache_bytes,
                                   stats=self.state.cache)
        return self.cache

    def direct_stack(self, endpoint: ASGIApp) -> ASGIApp:
        """``endpoint`` inside the error pages, the user middlewares and the exception handlers of this app.

        The layers and their order are those of Starlette's and FastAPI's stack, without the router, the
        telemetry hook (a no-op without OpenTelemetry), FastAPI's body limit (``max_body_size`` is not set:
        ``RequestLimits`` bounds bodies) and the exit stack for dependencies (the endpoint has none).
        """
        handlers = {key: value for key, value in self.exception_handlers.items() if key not in (500, Exception)}
        error_handler = self.exception_handlers.get(500) or self.exception_handlers.get(Exception)
        app: ASGIApp = ExceptionMiddleware(endpoint, handlers=handlers, debug=self.debug)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return ServerErrorMiddleware(app, handler=error_handler, debug=self.debug)


class DirectLanes:
    """Sends GET and POST requests for the given paths to their own stacks, everything else to ``app``."""

    def __init__(self, app: ASGIApp, lanes: dict[str, ASGIApp]) -> None:
        self.app = app
        self.lanes = lanes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "POST"):
            lane = self.lanes.get(scope["path"])
            if lane is not None:
                await lane(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> App:
    """The application; it opens its services at start-up unless ready-made ones are given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or open_services(settings or Settings())
        app.state.services.load_in_background()  # unless it is in or on its way (prepare_services leaves it)
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
