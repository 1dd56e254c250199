"""The one place where the domain's errors become HTTP answers: JSON ``{"detail": ...}``, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..executor import ExecutorError, StoreUnavailable
from ..knowledge import UnknownEntity
from ..protocol import ProtocolError
from ..results import ResultsError
from .security import security_headers

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """Every error answer: what was wrong, in words a person can act on (never a traceback or a path)."""

    detail: str | list[Any] = Field(description="The reason; a list of {loc, msg, type} for a bad parameter.")
    suggestions: list[str] | None = Field(None, description="For an unknown entity: the closest entity ids.")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of error answers, for ``responses=`` of a route, router or the application."""
    return {status: {"model": ErrorBody, "description": ERROR_MEANINGS[status]} for status in statuses}


ERROR_MEANINGS = {
    400: "The request is malformed (a SPARQL syntax error with its position, a bad parameter value).",
    403: "Refused on purpose: SPARQL Update or SERVICE (the endpoint is read-only and never connects out).",
    404: "No such entity (with suggestions) or page.",
    406: "The answer cannot be given in any of the formats the Accept header or `format` allows.",
    413: "The request body is larger than the server accepts.",
    414: "The URL is longer than the server accepts: send long SPARQL queries with POST.",
    415: "The POST body's content type is neither a form nor application/sparql-query.",
    422: "A parameter is out of its range, or the answer would be too large (--max-rows) or the query needs more "
         "memory than one query may take (--query-memory-mb).",
    431: "The request's header fields are larger than the server accepts.",
    503: "Not now: the query timed out, the workers are busy or starting, the knowledge model is still being "
         "read, or the remote engine is down. Busy and starting answers carry Retry-After.",
}
# What any route can answer, from the request limits in front of every route.
LIMIT_ERRORS = error_responses(413, 414, 431)


class BadParameter(ValueError):
    """A request parameter the domain rejected; answered with 422 naming the parameter."""

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(f"{param}: {message}")


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app``."""

    @app.exception_handler(ProtocolError)
    async def protocol_error(_: Request, exc: ProtocolError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(ExecutorError)
    async def executor_error(_: Request, exc: ExecutorError) -> JSONResponse:
        # busy, starting or reading the model: worth trying again soon (a query that timed out is not)
        headers = {"Retry-After": "1"} if isinstance(exc, StoreUnavailable) else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(ResultsError)
    async def results_error(_: Request, exc: ResultsError) -> JSONResponse:
        # e.g. a literal with a character XML 1.0 cannot hold: the answer exists, not in the asked format
        return JSONResponse({"detail": str(exc)}, status_code=406)

    @app.exception_handler(UnknownEntity)
    async def unknown_entity(_: Request, exc: UnknownEntity) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "suggestions": list(getattr(exc, "suggestions", []))},
                            status_code=404)

    @app.exception_handler(BadParameter)
    async def bad_parameter(_: Request, exc: BadParameter) -> JSONResponse:
        return JSONResponse({"detail": [{"loc": ["query", exc.param], "msg": str(exc), "type": "value_error"}]},
                            status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")  # the trace goes to the log, never to the client
        # answered by ServerErrorMiddleware, outside every other middleware: the security headers are added here
        return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500,
                            headers=security_headers("application/json"))
