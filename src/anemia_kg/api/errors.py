"""The one place where the domain's errors become HTTP answers: JSON ``{"detail": ...}``, never a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..executor import ExecutorError, StoreUnavailable
from ..knowledge import UnknownEntity
from ..protocol import ProtocolError
from ..results import ResultsError
from .security import security_headers

log = logging.getLogger(__name__)


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
