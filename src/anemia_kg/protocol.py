"""The SPARQL 1.1 Protocol around the engine: what a request asks, in which format, over which graphs.

Pure functions with no I/O, called by the ``/sparql`` endpoint on every request before anything is evaluated:
they must be fast, must never raise anything but ``ProtocolError``, and must never let a federated query
through, because both pyoxigraph and rdflib open outbound connections for ``SERVICE``.
"""

from __future__ import annotations

import binascii
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import pyoxigraph as ox

from .namespaces import PREFIX_IRIS
from .results import serialize_triples

SD = "http://www.w3.org/ns/sparql-service-description#"
FORMATS = "http://www.w3.org/ns/formats/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
MAX_ACCEPT_LENGTH = 4096
MAX_ACCEPT_RANGES = 64


class ProtocolError(Exception):
    """A request the protocol layer refuses; ``status`` is the HTTP status the endpoint answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- the query string -------------------------------------------------------------------------------------

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a '%' that does not start an escape


def parse_query_string(raw: bytes) -> list[tuple[str, str]]:
    """The fields of a URL's query string: what Starlette's ``QueryParams`` gives (``urllib.parse.parse_qsl``
    of the Latin-1 text, blank values kept), for the one parameter ``/sparql`` reads on every GET.

    A SPARQL query in a URL is mostly escapes, and ``urllib.parse.unquote`` decodes them one by one in Python:
    10 microseconds for a 500-byte query, a fifteenth of the server's event loop time per cheap query.
    ``binascii.a2b_qp`` decodes the same ``=XX`` escapes in C once ``%`` is ``=``; it is used where that is
    exact (ASCII text, every ``%`` starting an escape, no ``=``, CR or LF of its own) and urllib elsewhere.
    ``tests/test_protocol.py`` holds the two together.
    """
    return [(_unquote_plus(name), _unquote_plus(value))
            for name, _, value in (field.partition("=") for field in raw.decode("latin-1").split("&") if field)]


def _unquote_plus(text: str) -> str:
    if "%" not in text:
        return text.replace("+", " ")
    if (text.isascii() and "=" not in text and "\n" not in text and "\r" not in text
            and not _BAD_ESCAPE.search(text)):
        return binascii.a2b_qp(text.replace("+", " ").replace("%", "=")).decode("utf-8", "replace")
    return urllib.parse.unquote_plus(text)


class QueryForm(StrEnum):
    SELECT = "SELECT"
    ASK = "ASK"
    CONSTRUCT = "CONSTRUCT"
    DESCRIBE = "DESCRIBE"


@dataclass(frozen=True)
class QueryInfo:
    """What a lexical scan can tell about a request before any parser sees it."""

    form: QueryForm | None
    is_update: bool
    uses_service: bool
    keywords: frozenset[str]
    depth: int = 0  # deepest nesting of (), {} and []
    operators: int = 0  # operator characters outside strings and IRIs

    @property
    def too_complex(self) -> str | None:
        """Why the query is refused before parsing, or None.

        pyoxigraph's recursive parser overflows its stack (and the process dies) on about 10,000 nested
        brackets or a 20,000-term ``1+1+...`` chain; the caps below are far from both and far above any
        hand-written query.
        """
        if self.depth > MAX_DEPTH:
            return f"the query nests brackets {self.depth} deep; at most {MAX_DEPTH} are accepted"
        if self.operators > MAX_OPERATORS:
            return f"the query has {self.operators} operators; at most {MAX_OPERATORS} are accepted"
        return None

    @property
    def refusal(self) -> str | None:
        """Why the query must never reach an engine, or None: ``SERVICE`` would make the engine connect to
        another host, an update would change the data, and :attr:`too_complex` would crash the parser. The
        executors and ``anemia-kg query`` refuse with these words (the endpoint says more, with 403s)."""
        if self.uses_service:
            return "SERVICE (federated query) is not allowed: this endpoint never contacts other hosts"
        if self.is_update:
            return "this endpoint is read-only: SPARQL Update is not accepted"
        return self.too_complex


@dataclass(frozen=True)
class MediaType:
    name: str
    mime: str


JSON = MediaType("json", "application/sparql-results+json")
XML = MediaType("xml", "application/sparql-results+xml")
CSV = MediaType("csv", "text/csv")
TSV = MediaType("tsv", "text/tab-separated-values")
TURTLE = MediaType("turtle", "text/turtle")
NTRIPLES = MediaType("ntriples", "application/n-triples")
JSONLD = MediaType("jsonld", "application/ld+json")
RDFXML = MediaType("rdfxml", "application/rdf+xml")
SOLUTION_TYPES = (JSON, XML, CSV, TSV)  # in order of preference: the first is the default
GRAPH_TYPES = (TURTLE, NTRIPLES, JSONLD, RDFXML)
# Generic MIME types clients send instead of the SPARQL ones; which format they mean depends on the query form.
ALIASES: dict[MediaType, tuple[str, ...]] = {
    JSON: ("application/json",),
    XML: ("application/xml", "text/xml"),
    NTRIPLES: ("text/plain",),
    JSONLD: ("application/json",),
    RDFXML: ("application/xml", "text/xml"),
}
FORMAT_IRIS = {
    JSON: FORMATS + "SPARQL_Results_JSON",
    XML: FORMATS + "SPARQL_Results_XML",
    CSV: FORMATS + "SPARQL_Results_CSV",
    TSV: FORMATS + "SPARQL_Results_TSV",
    TURTLE: FORMATS + "Turtle",
    NTRIPLES: FORMATS + "N-Triples",
    JSONLD: FORMATS + "JSON-LD",
    RDFXML: FORMATS + "RDF_XML",
}

UPDATE_OPERATIONS = ("INSERT", "DELETE", "LOAD", "CLEAR", "DROP", "CREATE", "ADD", "MOVE", "COPY", "WITH")
KEYWORDS = frozenset({
    "BASE", "PREFIX", "SELECT", "CONSTRUCT", "DESCRIBE", "ASK", "FROM", "NAMED", "WHERE", "ORDER", "BY", "ASC",
    "DESC", "LIMIT", "OFFSET", "DISTINCT", "REDUCED", "GROUP", "HAVING", "AS", "OPTIONAL", "GRAPH", "SERVICE",
    "SILENT", "BIND", "VALUES", "UNDEF", "MINUS", "UNION", "FILTER", "NOT", "IN", "EXISTS", "DATA", "TO", "INTO",
    "USING", "DEFAULT", "ALL", "SEPARATOR", "COUNT", "SUM", "MIN", "MAX", "AVG", "SAMPLE", "GROUP_CONCAT",
    *UPDATE_OPERATIONS,
})

# --- the lexical scan -------------------------------------------------------------------------------------
# One left-to-right pass blanks out what can hide a keyword (comments, strings, IRIs) and keeps a prefixed
# name with escapes whole, so that an escaped quote or '#' in it (ex:a\' ex:a\#b) opens nothing. Every
# alternative matches as soon as it starts (an unterminated string runs to the end of its line or of the
# text, which a real parser rejects anyway), so the scan is linear and never backtracks.
_NAME_CHARS = r"\w\-.:%\u00b7\u0300-\u036f\u203f\u2040"
_NAME_ESCAPE = r"\\[_~.\-!$&'()*+,;=/?#@%]"
_RUN = rf"(?:[{_NAME_CHARS}]|{_NAME_ESCAPE})+"
_LEXER = re.compile(
    r"(?P<comment>#[^\r\n]*)"
    r'|(?P<string>"""(?:[^"\\]|\\[\s\S]?|"(?!""))*(?:"""|\Z)'
    r"|'''(?:[^'\\]|\\[\s\S]?|'(?!''))*(?:'''|\Z)"
    r'|"(?:[^"\\\r\n]|\\[^\r\n]?)*"?'
    r"|'(?:[^'\\\r\n]|\\[^\r\n]?)*'?)"
    r"|(?P<iri><(?:[^<>\"{}|^`\\\x00-\x20]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*>)"
    # a name only matters here when it holds an escape; matched from its start so the scan stays linear
    rf"|(?P<escaped>(?<![{_NAME_CHARS}])[{_NAME_CHARS}]*{_NAME_ESCAPE}(?:[{_NAME_CHARS}]|{_NAME_ESCAPE})*)"
)
_BLANKS = {"comment": " ", "string": '""', "iri": "<>"}
_STRUCTURE = re.compile(
    r"(?P<var>[?$][\w\u00b7\u0300-\u036f\u203f\u2040]*)"
    rf"|(?P<run>{_RUN})|(?P<open>[{{(\[])|(?P<close>[}})\]])|(?P<semi>;)"
)
MAX_DEPTH = 256
MAX_OPERATORS = 5_000
_OPERATOR = re.compile(r"\|\||&&|[+*/<>=!-]")
_SERVICE = re.compile("service", re.IGNORECASE)  # also matches the dotless ı and long ſ that rdflib upper-cases
_NEXT_CHAR = re.compile(r"\s*(\S?)")
_GLUED_KEYWORD = re.compile("|".join(sorted(KEYWORDS, key=len, reverse=True)))
_UNICODE_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")


def inspect_query(text: str) -> QueryInfo:
    """Form, update and SERVICE use of a request (see :func:`_inspect`); the answers for the last 512 short
    texts are kept, as the endpoint and the executor both ask and clients repeat their queries."""
    return _inspect_cached(text) if len(text) <= CACHED_TEXT_CHARS else _inspect(text)


CACHED_TEXT_CHARS = 4096  # longer texts are scanned each time (the cache holds at most 512 x 4 KB)


@lru_cache(maxsize=512)
def _inspect_cached(text: str) -> QueryInfo:
    return _inspect(text)


def _inspect(text: str) -> QueryInfo:
    """Form, update and SERVICE use of a request, from a linear lexical scan (no parse).

    rdflib decodes ``\\uXXXX`` escapes before it parses and pyoxigraph does not, so a text with escapes is
    scanned both ways and the answers are merged: a SERVICE either engine would see is reported.

    >>> inspect_query("PREFIX ex: <http://example.org/> SELECT * { ?s ex:service ?o }").uses_service
    False
    >>> inspect_query("select * { service <http://example.org/sparql> { ?s ?p ?o } }").uses_service
    True
    """
    info = _scan(text)
    if "\\u" not in text and "\\U" not in text:
        return info
    decoded = _scan(_UNICODE_ESCAPE.sub(_decode_escape, text))
    return QueryInfo(
        form=info.form or decoded.form,
        is_update=info.is_update or decoded.is_update,
        uses_service=info.uses_service or decoded.uses_service,
        keywords=info.keywords | decoded.keywords,
        depth=max(info.depth, decoded.depth),
        operators=max(info.operators, decoded.operators),
    )


def _decode_escape(match: re.Match[str]) -> str:
    code = int(match.group(1) or match.group(2), 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return match.group(0)
    return chr(code)


def _blank(match: re.Match[str]) -> str:
    return _BLANKS.get(match.lastgroup or "", match.group(0))


def _scan(text: str) -> QueryInfo:
    """Walk the blanked text once: brace depth, ';'-separated operations, keywords and SERVICE."""
    clean = _LEXER.sub(_blank, text)
    form: QueryForm | None = None
    is_update = service = False
    keywords: set[str] = set()
    depth, segment, decided, after_prefix = 0, 0, False, False
    deepest = 0
    for token in _STRUCTURE.finditer(clean):
        kind = token.lastgroup
        if kind == "open":
            depth += 1
            deepest = max(deepest, depth)
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "var":
            continue
        elif kind == "semi":
            if depth == 0:  # a new operation of a multi-operation update starts, with its own prologue
                segment, decided, after_prefix = segment + 1, False, False
        else:
            run = token.group()
            upper = run.upper()
            if ":" not in run:
                keywords.update(_keywords(upper))
            if _SERVICE.search(run) and _calls_service(run, _next_char(clean, token.end())):
                service = True
            if depth or decided:
                continue
            if after_prefix and run.endswith(":"):
                after_prefix = False
            elif upper in ("BASE", "PREFIX"):
                after_prefix = upper == "PREFIX"
            elif not (upper.startswith("PREFIX") and upper.endswith(":")):  # 'PREFIX:' glued is a declaration
                decided = True
                op_form, op_update = _operation(upper)
                is_update = is_update or op_update
                form = op_form if segment == 0 else form
    if service:
        keywords.add("SERVICE")
    return QueryInfo(form=form, is_update=is_update, uses_service=service, keywords=frozenset(keywords),
                     depth=deepest, operators=len(_OPERATOR.findall(clean)))


def _keywords(upper: str) -> list[str]:
    """The keywords a bare word spells, glued ones included: pyoxigraph reads 'FROMNAMED' as FROM NAMED."""
    if upper in KEYWORDS:
        return [upper]
    found = []
    position = 0
    while match := _GLUED_KEYWORD.match(upper, position):
        found.append(match.group())
        position = match.end()
    return found


def _next_char(text: str, position: int) -> str:
    """The first character after ``position`` that is not whitespace, or '' at the end."""
    match = _NEXT_CHAR.match(text, position)
    return match.group(1) if match else ""


def _operation(upper: str) -> tuple[QueryForm | None, bool]:
    """The form or update an operation starts with; a prefix match, as pyoxigraph accepts 'SELECTDISTINCT'."""
    for form in QueryForm:
        if upper.startswith(form.value):
            return form, False
    return None, upper.startswith(UPDATE_OPERATIONS)


def _calls_service(run: str, following: str) -> bool:
    """Whether a name run holding the letters 'service' may be the SERVICE keyword to some engine.

    pyoxigraph matches keywords without a word boundary ('SERVICEex:x {', '1SERVICE<x> {' are service calls)
    and both engines read 'SERVICE:x {' as SERVICE then ':x'. A bare run (no colon) holding the letters can
    only be that keyword; in a prefixed name only the prefix part followed by '{', or a local part that no
    prefixed name can start with ('.', '-'), is suspicious.
    """
    colon = run.find(":")
    if colon < 0:
        return True
    for hit in _SERVICE.finditer(run):
        if hit.start() < colon:
            if following == "{":
                return True
        elif run[colon + 1 : colon + 2] in (".", "-"):
            return True
    return False


# --- content negotiation ----------------------------------------------------------------------------------
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAMETER = re.compile(rf"\s*;\s*({_TOKEN})\s*=\s*({_QUOTED}|{_TOKEN})")
_MEDIA_RANGE = re.compile(rf"\s*({_TOKEN})/({_TOKEN})((?:\s*;\s*{_TOKEN}\s*=\s*(?:{_QUOTED}|{_TOKEN}))*)\s*")
_ELEMENT = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\[\s\S]?)*(?:"|\Z))+')  # an open quote runs to the end: linear
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


@dataclass(frozen=True)
class MediaRange:
    """One element of an Accept header; ``order`` is its position, which breaks ties."""

    type: str
    subtype: str
    q: float
    order: int

    def specificity(self, mime: str) -> int:
        """-1 when the range does not match ``mime``, else 2 for type/subtype, 1 for type/*, 0 for */*."""
        if self.type == "*":
            return 0 if self.subtype == "*" else -1
        main, _, sub = mime.partition("/")
        if self.type != main:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == sub else -1


def offered_types(form: QueryForm) -> tuple[MediaType, ...]:
    """Solutions for SELECT and ASK, RDF graphs for CONSTRUCT and DESCRIBE."""
    return SOLUTION_TYPES if form in (QueryForm.SELECT, QueryForm.ASK) else GRAPH_TYPES


def negotiate(accept: str | None, format_param: str | None, form: QueryForm) -> MediaType:
    """The result format: the ``format`` parameter if given, else the Accept header per RFC 9110.

    >>> negotiate("text/csv;q=0.5, application/sparql-results+xml", None, QueryForm.SELECT).name
    'xml'
    >>> negotiate(None, None, QueryForm.CONSTRUCT).name
    'turtle'
    """
    offered = offered_types(form)
    if format_param is not None and format_param.strip():
        return _from_format_param(format_param, offered, form)
    ranges = parse_accept(accept)
    if not ranges:
        return offered[0]
    best: tuple[float, int, int, int] | None = None
    chosen = offered[0]
    for rank, media in enumerate(offered):
        match = _best_match(media, ranges)
        if match is None or match.q <= 0:
            continue
        key = (match.q, match.specificity, -match.order, -rank)
        if best is None or key > best:
            best, chosen = key, media
    if best is None:
        available = ", ".join(media.mime for media in offered)
        raise ProtocolError(406, f"none of the types in Accept can answer a {form} query; available: {available}")
    return chosen


def parse_accept(accept: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header, in order; ranges that do not parse are left out."""
    if accept is None or not accept.strip():
        return []
    if len(accept) > MAX_ACCEPT_LENGTH:
        raise ProtocolError(400, f"the Accept header is longer than {MAX_ACCEPT_LENGTH} characters")
    elements = [element for element in _ELEMENT.findall(accept) if element.strip()]
    if len(elements) > MAX_ACCEPT_RANGES:
        raise ProtocolError(400, f"the Accept header has more than {MAX_ACCEPT_RANGES} media ranges")
    ranges = []
    for order, element in enumerate(elements):
        parsed = _parse_range(element, order)
        if parsed is not None:
            ranges.append(parsed)
    return ranges


def _parse_range(element: str, order: int) -> MediaRange | None:
    match = _MEDIA_RANGE.fullmatch(element)
    if match is None:
        return None
    main, sub = match.group(1).lower(), match.group(2).lower()
    if main == "*" and sub != "*":
        return None
    q = 1.0
    for name, value in _PARAMETER.findall(match.group(3)):
        if name.lower() == "q":
            if not _QVALUE.fullmatch(value):
                return None
            q = float(value)
            break  # what follows q are accept-extensions, not media type parameters
    return MediaRange(main, sub, q, order)


@dataclass(frozen=True)
class _Match:
    q: float
    specificity: int
    order: int


def _best_match(media: MediaType, ranges: Sequence[MediaRange]) -> _Match | None:
    """The most specific range matching ``media``; on a tie the MIME type we send, then higher q, then earlier.

    An alias counts only when named exactly: ``text/*`` means CSV or TSV, not results as ``text/xml``; and
    ``application/sparql-results+json;q=0`` refuses JSON even if ``application/json`` is accepted.
    """
    best: tuple[int, bool, float, int] | None = None
    for mime in (media.mime, *ALIASES.get(media, ())):
        canonical = mime == media.mime
        for media_range in ranges:
            specificity = media_range.specificity(mime)
            if specificity < 0 or (specificity < 2 and not canonical):
                continue
            key = (specificity, canonical, media_range.q, -media_range.order)
            if best is None or key > best:
                best = key
    if best is None:
        return None
    return _Match(q=best[2], specificity=best[0], order=-best[3])


def _from_format_param(value: str, offered: Sequence[MediaType], form: QueryForm) -> MediaType:
    """``format=json`` or ``format=application/sparql-results+json``; anything else is a client error."""
    wanted = value.strip().lower()
    mime = wanted.split(";", 1)[0].strip()
    for media in offered:
        if wanted == media.name or mime == media.mime or mime in ALIASES.get(media, ()):
            return media
    allowed = ", ".join(f"{media.name} ({media.mime})" for media in offered)
    raise ProtocolError(400, f"format={_shorten(value)} is not available for a {form} query; allowed: {allowed}")


def _shorten(value: str, limit: int = 80) -> str:
    """A client's value echoed in a message, cut so that a huge parameter does not make a huge response."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


# --- service description and dataset ----------------------------------------------------------------------
def service_description(endpoint: str, graphs: Sequence[str], media: MediaType) -> bytes:
    """A SPARQL 1.1 Service Description of the endpoint, with minted IRIs so the output is deterministic."""
    if media not in GRAPH_TYPES:
        available = ", ".join(item.mime for item in GRAPH_TYPES)
        raise ProtocolError(406, f"a service description is an RDF graph; available: {available}")
    base = endpoint.split("#", 1)[0]
    try:
        triples = _description_triples(base, graphs)
    except ValueError as exc:
        raise ProtocolError(500, f"cannot describe the endpoint {_shorten(endpoint)}: {exc}") from None
    prefixes = {"sd": SD, "formats": FORMATS}
    return serialize_triples(triples, media.name, prefixes)


def _description_triples(base: str, graphs: Sequence[str]) -> list[ox.Triple]:
    def sd(name: str) -> ox.NamedNode:
        return ox.NamedNode(SD + name)

    a = ox.NamedNode(RDF_TYPE)
    service, dataset = ox.NamedNode(f"{base}#service"), ox.NamedNode(f"{base}#dataset")
    default = ox.NamedNode(f"{base}#default-graph")
    triples = [
        ox.Triple(service, a, sd("Service")),
        ox.Triple(service, sd("endpoint"), ox.NamedNode(base)),
        ox.Triple(service, sd("supportedLanguage"), sd("SPARQL11Query")),
        ox.Triple(service, sd("feature"), sd("UnionDefaultGraph")),
        *(ox.Triple(service, sd("resultFormat"), ox.NamedNode(iri)) for iri in FORMAT_IRIS.values()),
        ox.Triple(service, sd("defaultDataset"), dataset),
        ox.Triple(dataset, a, sd("Dataset")),
        ox.Triple(dataset, sd("defaultGraph"), default),
    ]
    named = [(ox.NamedNode(f"{base}#graph-{n}"), ox.NamedNode(graph)) for n, graph in enumerate(graphs, start=1)]
    triples += [ox.Triple(dataset, sd("namedGraph"), node) for node, _ in named]
    triples.append(ox.Triple(default, a, sd("Graph")))
    for node, graph in named:
        triples += [ox.Triple(node, a, sd("NamedGraph")), ox.Triple(node, sd("name"), graph)]
    return triples


def parse_graph_uris(values: Sequence[str], known: Sequence[str], param: str) -> list[str]:
    """``default-graph-uri`` / ``named-graph-uri`` values, each a graph of this dataset; nothing is fetched."""
    known_set = set(known)
    chosen: list[str] = []
    for value in values:
        try:
            iri = ox.NamedNode(value).value
        except ValueError:
            raise ProtocolError(400, f"{param}={_shorten(value)} is not a valid absolute IRI") from None
        if iri not in known_set:
            listed = ", ".join(known) or "none"
            raise ProtocolError(400, f"{param}={_shorten(value)} is not a graph of this dataset; known: {listed}")
        if iri not in chosen:
            chosen.append(iri)
    return chosen


_UNKNOWN_PREFIX = re.compile(r"^error at (\d+):(\d+): .*\bPrefix not found\b", re.DOTALL)
_PREFIXED_NAME_END = re.compile(r"([^\W\d][\w.\-\u00b7]*)?:\S*$")


def syntax_message(sparql: str, message: str) -> str:
    """The parser's message, with an undeclared prefix named: pyoxigraph reports one as a list of the character
    classes it expected ("expected one of Prefix not found, ['%'], ['-' | '0' ..= '9' ..."), at the end of the
    prefixed name, which a person cannot act on.

    >>> syntax_message("SELECT * WHERE { ?s foo:bar ?o }",
    ...                "error at 1:28: expected one of Prefix not found, ['%']")  # doctest: +ELLIPSIS
    "error at 1:28: unknown prefix 'foo:'; declare it (PREFIX foo: <...>) or use a predeclared one: ..."
    """
    found = _UNKNOWN_PREFIX.match(message)
    if not found:
        return message
    line, column = int(found.group(1)), int(found.group(2))
    lines = sparql.splitlines()
    if not 1 <= line <= len(lines):
        return message
    name = _PREFIXED_NAME_END.search(lines[line - 1][:column - 1])
    if not name:
        return message
    prefix = name.group(1) or ""
    return (f"error at {line}:{column}: unknown prefix '{prefix}:'; declare it (PREFIX {prefix}: <...>) or use "
            f"a predeclared one: {', '.join(sorted(dict(PREFIX_IRIS)))}")
