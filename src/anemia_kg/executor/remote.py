"""SPARQL on another engine (Oxigraph server, Apache Jena Fuseki, ...) over the SPARQL 1.1 Protocol with httpx.

See :mod:`anemia_kg.store` for how to load the dataset there.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any, cast

import anyio.to_thread
import httpx
import pyoxigraph as ox

from .common import (
    GRAPHS_QUERY,
    PREFIX_MAP,
    QuerySyntaxError,
    Result,
    StoreUnavailable,
    _check_graphs,
    _Reads,
    check_query,
    render,
    rows_of,
)

_RESULT_TYPES = {"application/sparql-results+json": ox.QueryResultsFormat.JSON,
                 "application/sparql-results+xml": ox.QueryResultsFormat.XML}
_RDF_TYPES = {"application/n-triples": ox.RdfFormat.N_TRIPLES, "text/plain": ox.RdfFormat.N_TRIPLES,
              "text/turtle": ox.RdfFormat.TURTLE, "application/rdf+xml": ox.RdfFormat.RDF_XML}
_ACCEPT_RESULTS = "application/sparql-results+json, application/sparql-results+xml;q=0.9"
_ACCEPT_RDF = "application/n-triples, text/turtle;q=0.9"
GRAPH_CACHE_SECONDS = 30.0
_DECLARED = re.compile(r"PREFIX\s+([^\s:]*)\s*:", re.IGNORECASE)
_POSITION = re.compile(r"(\berror at |\bline )(\d+)", re.IGNORECASE)  # Oxigraph "error at 2:5", Jena "line 2"


class _Body(io.RawIOBase):
    """A streamed response body for pyoxigraph's parsers that stops at a deadline."""

    def __init__(self, chunks: Iterator[bytes], deadline: float):
        self._chunks, self._deadline, self._rest = chunks, deadline, b""
        self.expired = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._rest:
            if time.monotonic() > self._deadline:
                self.expired = True
                raise TimeoutError("the response took too long")
            self._rest = next(self._chunks, b"")
        size = min(len(buffer), len(self._rest))
        buffer[:size], self._rest = self._rest[:size], self._rest[size:]
        return size


class RemoteExecutor(_Reads):
    """SPARQL on a remote engine over the SPARQL 1.1 Protocol (POST, form-encoded).

    Without ``default_graphs`` the dataset's named graphs are all sent as ``default-graph-uri`` (and as
    ``named-graph-uri``), which by the protocol makes the default graph their merge on any engine; Oxigraph
    server and Fuseki both honour it, so no engine-specific union setting is needed. Redirects are never
    followed. The engine keeps evaluating after we give up unless it has its own limit (Oxigraph server
    ``--timeout-s``, Fuseki ``arq:queryTimeout``).
    """

    def __init__(self, endpoint: str, *, timeout: float = 5.0, max_rows: int = 10_000,
                 client: httpx.Client | None = None):
        url = httpx.URL(endpoint)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) SPARQL endpoint: {endpoint!r}")
        self.endpoint, self.timeout, self.max_rows = endpoint, timeout, max_rows
        self._shown = str(url.copy_with(username=None, password=None))  # never print credentials
        self._client = client or httpx.Client(follow_redirects=False)
        self._owns_client = client is None
        self._lock = threading.Lock()
        self._graph_cache: tuple[float, list[str]] | None = None

    def execute(self, sparql: str, *, media: str, default_graphs: Sequence[str] | None = None,
                named_graphs: Sequence[str] | None = None, timeout: float | None = None,
                max_rows: int | None = None) -> Result:
        info = check_query(sparql)
        form = info.form.value if info.form else None
        limit = self.max_rows if max_rows is None else max_rows
        dataset = self._dataset("FROM" in info.keywords, _check_graphs(default_graphs), _check_graphs(named_graphs))
        text, added = self._prepare(sparql)
        with self._post(text, added, form, dataset, self.timeout if timeout is None else timeout) as (answer, _):
            return render(answer, form=form, media=media, max_rows=limit)

    async def aexecute(self, sparql: str, *, media: str, default_graphs: Sequence[str] | None = None,
                       named_graphs: Sequence[str] | None = None, timeout: float | None = None,
                       max_rows: int | None = None) -> Result:
        """:meth:`execute` from the event loop, in a worker thread (the HTTP client here is synchronous)."""
        call = functools.partial(self.execute, sparql, media=media, default_graphs=default_graphs,
                                 named_graphs=named_graphs, timeout=timeout, max_rows=max_rows)
        return await anyio.to_thread.run_sync(call)

    def select(self, sparql: str, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Rows as SPARQL JSON bindings, for the application's own queries: no row cap."""
        info = check_query(sparql)
        text, added = self._prepare(sparql)
        with self._post(text, added, "SELECT", self._dataset("FROM" in info.keywords, None, None),
                        self.timeout if timeout is None else timeout) as (answer, _):
            if not isinstance(answer, ox.QuerySolutions):
                raise QuerySyntaxError("select() takes a SELECT query")
            return rows_of(answer)

    def graphs(self) -> list[str]:
        return list(self._dataset_graphs(fresh=True))

    def _prepare(self, sparql: str) -> tuple[str, int]:
        """The query with the project's prefixes it uses (and does not declare) declared on one first line, and
        how many lines were added. The query is not parsed here: pyoxigraph's parser overflows the stack and
        kills the process on deeply nested input, which must only ever happen in a worker or on the engine."""
        declared = set(_DECLARED.findall(sparql))
        used = [p for p in PREFIX_MAP if p not in declared and re.search(rf"(?<![\w.:?$-]){p}:", sparql)]
        if not used:
            return sparql, 0
        return " ".join(f"PREFIX {p}: <{PREFIX_MAP[p]}>" for p in used) + "\n" + sparql, 1

    def _dataset_graphs(self, *, fresh: bool = False) -> list[str]:
        """The engine's named graphs, asked at most every GRAPH_CACHE_SECONDS (an empty answer is not kept)."""
        with self._lock:
            cached = self._graph_cache
        if not fresh and cached and time.monotonic() - cached[0] < GRAPH_CACHE_SECONDS:
            return cached[1]
        with self._post(GRAPHS_QUERY, 0, "SELECT", [], self.timeout) as (answer, _):
            if not isinstance(answer, ox.QuerySolutions):
                raise StoreUnavailable(f"the SPARQL endpoint {self._shown} did not answer a SELECT with solutions")
            graphs = sorted(row["g"]["value"] for row in rows_of(answer) if row["g"]["type"] == "uri")
        with self._lock:
            self._graph_cache = (time.monotonic(), graphs) if graphs else None
        return graphs

    def _dataset(self, own: bool, default_graphs: list[str] | None,
                 named_graphs: list[str] | None) -> list[tuple[str, str]]:
        """Protocol dataset parameters giving the same dataset as the embedded executor."""
        if default_graphs is None and named_graphs is None and own:
            return []
        everything = self._dataset_graphs() if default_graphs is None or named_graphs is None else []
        if not everything and default_graphs is None and named_graphs is None:
            return []  # nothing in named graphs: let the engine use its own default graph
        return ([("default-graph-uri", g) for g in (everything if default_graphs is None else default_graphs)]
                + [("named-graph-uri", g) for g in (everything if named_graphs is None else named_graphs)])

    @contextlib.contextmanager
    def _post(self, sparql: str, added_lines: int, form: str | None, dataset: list[tuple[str, str]],
              timeout: float) -> Iterator[tuple[Any, _Body]]:
        """POST the query; yield the parsed answer (lazy: rows are read as they are taken) and its body."""
        accept = {"SELECT": _ACCEPT_RESULTS, "ASK": _ACCEPT_RESULTS, None: f"{_ACCEPT_RESULTS}, {_ACCEPT_RDF}"}
        headers = {"Accept": accept.get(form, _ACCEPT_RDF)}
        deadline = time.monotonic() + timeout
        try:
            with self._client.stream("POST", self.endpoint, data=_form(sparql, dataset), headers=headers,
                                     timeout=httpx.Timeout(timeout), follow_redirects=False) as response:
                self._check(response, deadline, added_lines)
                ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
                body = _Body(response.iter_bytes(), deadline)
                stream = cast(IO[bytes], body)  # a readable raw stream, which is what the parsers read
                if ctype in _RESULT_TYPES:
                    answer: Any = ox.parse_query_results(stream, format=_RESULT_TYPES[ctype])
                elif ctype in _RDF_TYPES:
                    answer = ox.parse(stream, format=_RDF_TYPES[ctype])
                else:
                    raise StoreUnavailable(f"the SPARQL endpoint {self._shown} answered with unexpected "
                                           f"content type {ctype!r}")
                try:
                    yield answer, body
                except (SyntaxError, ValueError, OSError) as exc:
                    if body.expired:
                        self._late(timeout)
                    raise StoreUnavailable(f"the SPARQL endpoint {self._shown} sent an unreadable answer: "
                                           f"{exc}") from None
        except httpx.TimeoutException:
            self._late(timeout)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"cannot reach the SPARQL endpoint {self._shown}: {exc}") from None

    def _check(self, response: httpx.Response, deadline: float, added_lines: int) -> None:
        if response.status_code < 300:
            return
        if response.is_redirect:
            raise StoreUnavailable(f"the SPARQL endpoint {self._shown} redirects to "
                                   f"{response.headers.get('location')}; configure the final address")
        text = _text(response, deadline)
        if response.status_code == 400:  # positions as in the caller's text, without the added prefix line
            text = _POSITION.sub(lambda m: f"{m[1]}{max(1, int(m[2]) - added_lines)}", text)
            raise QuerySyntaxError(text or "the SPARQL endpoint rejected the query")
        raise StoreUnavailable(f"the SPARQL endpoint {self._shown} answered {response.status_code}: {text}")

    def _late(self, timeout: float | None) -> Any:
        raise StoreUnavailable(f"the SPARQL endpoint {self._shown} did not answer within "
                               f"{self.timeout if timeout is None else timeout:.1f} s; it is down or overloaded, "
                               "or the query is too heavy (narrow it or add LIMIT)")

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


def _form(sparql: str, dataset: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {"query": sparql}
    for key, value in dataset:
        form.setdefault(key, []).append(value)  # type: ignore[union-attr]
    return form


def _text(response: httpx.Response, deadline: float, limit: int = 2000) -> str:
    """The start of an error body, read within the deadline."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) > limit or time.monotonic() > deadline:
            break
    return data[:limit].decode("utf-8", "replace").strip()
