"""``/sparql``: the SPARQL 1.1 Protocol, read-only, bounded, and never reaching out to other hosts.

Queries arrive by GET ``?query=``, by POST form (``application/x-www-form-urlencoded``) or by POST
``application/sparql-query``. Before anything is evaluated the text is inspected: updates are refused
(403), and so is any ``SERVICE`` clause (403), because both rdflib and pyoxigraph would open an outbound
connection for it. Evaluation runs in the executor, which bounds time and rows. ``default-graph-uri`` and
``named-graph-uri`` may only name graphs of this dataset. Without a query, GET answers with a SPARQL 1.1
Service Description.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from ..protocol import (
    GRAPH_TYPES,
    SOLUTION_TYPES,
    ProtocolError,
    QueryForm,
    inspect_query,
    negotiate,
    parse_graph_uris,
    parse_query_string,
    service_description,
)
from .errors import error_responses
from .services import Services


class _PlainRoute(APIRoute):
    """A route whose endpoint takes the :class:`Request` and returns a :class:`Response`, called as it is.

    ``/sparql`` reads its parameters itself (see ``PARAMETERS``), so FastAPI's dependency solving and response
    handling have nothing to do for it, yet cost time on every query (the solving alone about 8% of the
    server's main thread in a py-spy profile under load). FastAPI's documented way to change how a route
    handles requests is its ``get_route_handler``; the OpenAPI schema is still made from the declaration.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


router = APIRouter(tags=["SPARQL"], route_class=_PlainRoute)

PATH = "/sparql"

FORM = "application/x-www-form-urlencoded"
QUERY = "application/sparql-query"
UPDATE = "application/sparql-update"

DOC = ("SPARQL 1.1 Protocol endpoint (read-only). Parameters: `query`, `default-graph-uri`, `named-graph-uri`, "
       "`format` (json, xml, csv, tsv; turtle, ntriples, jsonld, rdfxml). Results by content negotiation. "
       "Without `default-graph-uri` the default graph is the union of all named graphs. Updates and SERVICE "
       "are refused with 403; a query that runs too long or returns too many rows gets a clear error.")


def _services(request: Request) -> Services:
    return request.app.state.services


async def _params(request: Request, limit: int) -> dict[str, list[str]]:
    """All protocol parameters of the request, from the URL and, for POST, from the body."""
    params: dict[str, list[str]] = {}
    for key, value in parse_query_string(request.scope["query_string"]):
        params.setdefault(key, []).append(value)
    if request.method != "POST":
        return params
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _body(request, limit)
    if ctype == FORM:
        for key, values in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items():
            params.setdefault(key, []).extend(values)
    elif ctype == QUERY:
        params["query"] = [body.decode("utf-8", "replace")]
    elif ctype == UPDATE:
        raise ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
    else:
        raise ProtocolError(415, f"unsupported content type {ctype!r}; POST {FORM} or {QUERY}")
    return params


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused once it grows past ``limit`` bytes (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ProtocolError(413, f"the request body is larger than {limit} bytes, the most a query may "
                                 "take (setting max_query_bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(413, f"the request body is larger than {limit} bytes, the most a query may "
                                 "take (setting max_query_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name) or []
    if len(values) > 1:
        raise ProtocolError(400, f"give the '{name}' parameter once, not {len(values)} times")
    return values[0] if values else None


@lru_cache(maxsize=256)
def _negotiate(accept: str | None, formats: tuple[str, ...], form: QueryForm) -> Any:
    """The media type of the answer: one ``format`` parameter wins, else the Accept header.

    A pure function of its arguments, and clients send the same few headers again and again: the answers for
    the last 256 are kept (parsing the Accept header was about 3% of the server's time on a cheap query).

    Some clients name the format loosely beside a correct Accept header (SPARQLWrapper sends ``format=xml``
    for a CONSTRUCT that accepts RDF/XML, or ``format`` twice): when the parameter is repeated or does not
    fit the query, the Accept header decides, and only without one is the parameter's error reported.
    """
    specific = _names_a_type(accept)
    if len(formats) == 1:
        try:
            return negotiate(accept, formats[0], form)
        except ProtocolError:
            if not specific:
                raise
    elif len(formats) > 1 and not specific:
        raise ProtocolError(400, f"the 'format' parameter is given {len(formats)} times with different values")
    return negotiate(accept, None, form)


def _names_a_type(accept: str | None) -> bool:
    """Whether the Accept header asks for something more specific than ``*/*``."""
    return any(r.split(";")[0].strip() not in ("", "*/*") for r in (accept or "").split(","))


# The route reads its parameters itself (the protocol allows them in the URL and in a form body, repeated),
# so FastAPI cannot infer them: they are declared here for the OpenAPI schema and its clients.
_STRING = {"type": "string"}
_GRAPHS = {"type": "array", "items": _STRING}
PARAMETERS = [
    {"name": "query", "in": "query", "required": False, "schema": _STRING,
     "description": "The SPARQL query. Without one, GET answers with the service description."},
    {"name": "default-graph-uri", "in": "query", "required": False, "schema": _GRAPHS, "explode": True,
     "description": "A graph of this dataset to use as (part of) the default graph; repeatable."},
    {"name": "named-graph-uri", "in": "query", "required": False, "schema": _GRAPHS, "explode": True,
     "description": "A graph of this dataset to offer to GRAPH; repeatable."},
    {"name": "format", "in": "query", "required": False, "schema": _STRING,
     "description": "The answer's format, instead of the Accept header: " + ", ".join(
         m.name for m in (*SOLUTION_TYPES, *GRAPH_TYPES)) + "."},
]
REQUEST_BODY = {"required": False, "content": {
    FORM: {"schema": {"type": "object", "properties": {
        "query": _STRING, "default-graph-uri": _GRAPHS, "named-graph-uri": _GRAPHS, "format": _STRING}}},
    QUERY: {"schema": _STRING},
}}
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "SELECT and ASK answers as SPARQL results (JSON, XML, CSV, TSV); CONSTRUCT, DESCRIBE and "
                         "the service description as RDF (Turtle, N-Triples, JSON-LD, RDF/XML).",
          "content": {m.mime: {"schema": {"type": "object"} if m.mime.endswith("json") else _STRING}
                      for m in (*SOLUTION_TYPES, *GRAPH_TYPES)}},
    **error_responses(400, 403, 406, 413, 415, 422, 503),
}


@router.get(PATH, summary="SPARQL 1.1 query (GET)", description=DOC, operation_id="sparql_get",
            responses=ANSWERS, openapi_extra={"parameters": PARAMETERS})
@router.post(PATH, summary="SPARQL 1.1 query (POST)", description=DOC, operation_id="sparql_post",
             responses=ANSWERS, openapi_extra={"parameters": PARAMETERS, "requestBody": REQUEST_BODY})
async def sparql(request: Request) -> Response:
    """The endpoint, for both FastAPI's route and :func:`asgi` (one implementation, two ways in)."""
    services = _services(request)
    settings = services.settings
    params = await _params(request, settings.max_query_bytes)
    if "update" in params:
        raise ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
    query = _one(params, "query")
    accept = request.headers.get("accept")
    formats = tuple(dict.fromkeys(params.get("format", [])))
    if query is None:
        media = _negotiate(accept, formats, QueryForm.CONSTRUCT)
        body = service_description(str(request.url.replace(query="")), services.graphs, media)
        return Response(body, media_type=media.mime)
    if len(query.encode("utf-8")) > settings.max_query_bytes:
        raise ProtocolError(413, f"the query is longer than {settings.max_query_bytes} bytes "
                                 "(setting max_query_bytes)")
    info = inspect_query(query)
    if info.is_update:
        raise ProtocolError(403, "this endpoint is read-only: SPARQL Update (INSERT, DELETE, LOAD, CLEAR, "
                                 "DROP, ...) is not accepted")
    if info.uses_service:
        raise ProtocolError(403, "SERVICE (federated query) is not allowed: this endpoint never contacts "
                                 "other hosts")
    if info.too_complex:
        raise ProtocolError(400, info.too_complex)
    media = _negotiate(accept, formats, info.form or QueryForm.SELECT)
    default_graphs = parse_graph_uris(params.get("default-graph-uri", []), services.graphs, "default-graph-uri")
    named_graphs = parse_graph_uris(params.get("named-graph-uri", []), services.graphs, "named-graph-uri")
    result = await services.executor.aexecute(query, media=media.name, default_graphs=default_graphs or None,
                                              named_graphs=named_graphs or None)
    return Response(result.body, media_type=result.media_type)


async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """:func:`sparql` as a plain ASGI application, for the direct lane :class:`~anemia_kg.api.app.App` gives it.

    The route above declares ``/sparql`` in the OpenAPI schema and answers it whenever the request comes
    through FastAPI's router; the application sends GET and POST ``/sparql`` here instead, inside the same
    middlewares and exception handlers, because the dozen layers of routing in between cost a sixth of a
    cheap query's time on the server (measured with wrk, see docs/benchmarks.md).
    """
    response = await sparql(Request(scope, receive))
    await response(scope, receive, send)
