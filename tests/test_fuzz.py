"""Fuzzing: the running server against its own OpenAPI schema, and the input readers against any text.

* **The HTTP API.** schemathesis loads ``/openapi.json`` from a real ``anemia-kg serve`` (the tiny built
  project, on a free loopback port) and sends every operation valid and invalid data (positive and negative
  generation modes, a bounded number of examples each). No answer may be a 5xx, and every answer must conform
  to what the schema says (status code, content type, headers, body schema). The JSON routes' 200 answers are
  declared by the models of ``anemia_kg.api.schemas``, closed objects (every key, its type, whether it may be
  null or left out, no other key), so each body is checked key by key; error answers are checked against
  ``ErrorBody``; statuses, content types and ``/sparql``'s parameters and formats are declared and checked.
* **The article parser and the YAML readers.** hypothesis feeds ``parse_article``/``load_article``,
  ``load_yaml`` and ``read_claims`` arbitrary text, article-shaped and YAML-shaped text and mutations of the
  tiny fixture project: each either reads it or raises the project's own error whose problems name the file
  and a line inside it, never any other exception. The inputs that once escaped are pinned by their own test.
"""

from __future__ import annotations

import string
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from anemia_kg.api import create_app
from anemia_kg.article import ArticleError, load_article, parse_article
from anemia_kg.curation import CurationError, read_claims
from anemia_kg.model import Article, Problem
from anemia_kg.yamlfile import YamlError, load_yaml
from conftest import FIXTURE
from test_server import Server, running_server

EXAMPLES = 30  # per operation and phase: enough to reach every parameter's edge cases, small enough for CI

# --- the HTTP API against its schema --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(tiny_built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # noqa: ANN001
    with running_server(tiny_built.root, tmp_path_factory.mktemp("fuzz-server"), "--workers", "1") as running:
        yield running


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Server) -> schemathesis.BaseSchema:
    """The schema as the running server publishes it."""
    return schemathesis.openapi.from_url(f"{fuzz_server.base}/openapi.json", timeout=30)


# The operations, read from the application's schema at collection time (no services are opened for that), so
# that each is its own test; the requests go to the running server, with the schema it serves.
SCHEMA = create_app().openapi()
OPERATIONS = sorted((path, method.upper()) for path, methods in SCHEMA["paths"].items() for method in methods)


def _constrained(path: str, method: str) -> bool:
    """Whether the operation declares something invalid data can break (a type other than string, a bound, an
    enum, a required parameter): only then can schemathesis make a request that must be refused."""
    parameters = SCHEMA["paths"][path][method.lower()].get("parameters", [])
    return any((p.get("required") and p["in"] != "path")  # a path parameter cannot be left out
               or set(p.get("schema", {})) & {"minimum", "maximum", "minLength", "maxLength", "enum", "anyOf"}
               or p.get("schema", {}).get("type") not in (None, "string", "array") for p in parameters)


CASES = [(path, method, mode) for path, method in OPERATIONS
         for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
         if mode is schemathesis.GenerationMode.POSITIVE or _constrained(path, method)]
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance,
          response_headers_conformance, negative_data_rejection]


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_every_operation_survives_valid_and_invalid_data(api_schema: schemathesis.BaseSchema, fuzz_server: Server,
                                                         path: str, method: str,
                                                         mode: schemathesis.GenerationMode) -> None:
    """No 5xx for anything, every status and content type one the schema declares, answers as the schema
    says, and invalid data refused with a 4xx (for the operations that declare constraints invalid data can
    break; the others take any string, so every request to them is valid).

    (schemathesis' own pytest integration, ``schemathesis.pytest.from_fixture``, fails under pytest 9.2 with
    ``'Function' object has no attribute '_nodeid'``, so the operation's hypothesis strategy is used directly.)
    """
    operation = api_schema[path][method]

    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=fuzz_server.base, checks=CHECKS, timeout=30)

    call()


def test_schema_declares_every_parameter_format_and_error(api_schema: schemathesis.BaseSchema) -> None:
    """What clients generate code from: /sparql's parameters, body and answer formats, and the errors."""
    raw = api_schema.raw_schema
    sparql = raw["paths"]["/sparql"]
    assert {p["name"] for p in sparql["get"]["parameters"]} == {"query", "default-graph-uri", "named-graph-uri",
                                                                 "format"}
    assert set(sparql["post"]["requestBody"]["content"]) == {"application/x-www-form-urlencoded",
                                                              "application/sparql-query"}
    assert {"application/sparql-results+json", "text/csv", "text/turtle", "application/ld+json"} <= set(
        sparql["get"]["responses"]["200"]["content"])
    assert sparql["get"]["operationId"] != sparql["post"]["operationId"]
    entity = raw["paths"]["/api/entities/{entity_id}"]["get"]
    assert {"404", "413", "414", "422", "431", "503"} <= set(entity["responses"])
    # the JSON routes' 200 answers are their models, closed objects: every key of a body is checked
    body = entity["responses"]["200"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/EntityAnswer"
    assert raw["components"]["schemas"]["EntityAnswer"]["additionalProperties"] is False


# --- the article parser ---------------------------------------------------------------------------------------

TITLE = "Can anemia cause muscle cramps?"
ARTICLE_LINES = [
    TITLE, TITLE.lower(), "Last updated: May 3, 2025", "Article Review Status", "Approved", "Personalize",
    "Yes, anemia can cause muscle cramps 1", "Anemia can cause fatigue 1, 2", "Mechanisms", "Key points:",
    "• Low oxygen delivery to muscles 3", "  • Nested bullet 4", "    ◦ Deeper bullet", "1. First item:",
    "   2. Second item 12", "10) Tenth item", "  indented text under an entry", "Treatment", "References",
    "References:", "Research", "Guideline", "A title of a paper.", "Journal of Things, 2020", "Venue without year",
    "Professional Medical Disclaimer", "Have a follow-up question?", "", "   ", "\t", "7", "1, 2, 3",
    "Ends with a colon:", "x 0", "x 01", "x 1000", "• ", "1.", "Which best describes you?",
]


def _article_lines() -> st.SearchStrategy[str]:
    """Lines the parser has a rule for, with random indentation and noise mixed in."""
    known = st.sampled_from(ARTICLE_LINES)
    noise = st.text(alphabet=string.printable + "•◦▪é—\u00a0\u2028", max_size=40)
    indent = st.sampled_from(["", "", "", " ", "  ", "    ", "\t"])
    return st.builds(lambda i, line: i + line, indent, st.one_of(known, known, noise))


article_texts = st.one_of(
    st.text(max_size=300),
    st.lists(_article_lines(), max_size=40).map("\n".join),
    st.lists(_article_lines(), max_size=40).map("\r\n".join),
)


def fixture_lines(name: str) -> list[str]:
    return (FIXTURE / name).read_text(encoding="utf-8").split("\n")


@st.composite
def mutated(draw: st.DrawFn, lines: list[str], extra: st.SearchStrategy[str]) -> str:
    """A real input file with lines deleted, duplicated, swapped, re-indented or replaced."""
    lines = list(lines)
    for _ in range(draw(st.integers(0, 6))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent", "replace", "insert"]))
        if how == "delete":
            del lines[at]
        elif how == "duplicate":
            lines.insert(at, lines[at])
        elif how == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif how == "indent":
            lines[at] = "  " + lines[at]
        elif how == "dedent":
            lines[at] = lines[at].lstrip()
        elif how == "replace":
            lines[at] = draw(extra)
        else:
            lines.insert(at, draw(extra))
    return "\n".join(lines)


def check_problems(problems: list[Problem], file: str, text: str) -> None:
    """The project's own error: at least one problem, each naming ``file`` and a line of ``text`` (0: the file)."""
    assert problems
    last = text.count("\n") + 2  # a problem may point just past the last line (the end of the text)
    for problem in problems:
        assert problem.file == file, problem
        assert 0 <= problem.line <= last, (problem, last)
        assert problem.message.strip(), problem
        assert str(problem).startswith(f"{file}:"), str(problem)


def check_article(article: Article, text: str) -> None:
    """What a parse promises: every unit is cut from the text by its offsets."""
    assert article.text == text
    assert article.units
    for unit in article.units:
        assert text[unit.start:unit.end] == unit.text, unit


@given(article_texts)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_article_parser_reads_any_text_or_says_where_it_is_wrong(text: str) -> None:
    parses_or_says_where(text)


def parses_or_says_where(text: str) -> None:
    """The article parser's promise for ``text``: a parse whose units are cut from it, or its own error."""
    try:
        article = parse_article(text, "article.txt")
    except ArticleError as exc:
        check_problems(exc.problems, "article.txt", text)
    else:
        check_article(article, text)


@given(mutated(fixture_lines("data/source/article.txt"), _article_lines()))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_article_parser_on_mutations_of_a_real_article(text: str) -> None:
    parses_or_says_where(text)


@given(st.binary(max_size=200) | article_texts.map(lambda t: t.encode("utf-8")).flatmap(
    lambda b: st.sampled_from([b, b"\xef\xbb\xbf" + b, b + b"\xff", b"\xc3" + b])))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_load_article_reads_any_bytes_or_says_where_it_is_wrong(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "article.txt"
        path.write_bytes(data)
        try:
            article = load_article(path)
        except ArticleError as exc:
            check_problems(exc.problems, str(path), data.decode("utf-8", "replace"))
        else:
            check_article(article, data.decode("utf-8-sig"))


# --- the YAML loader and the claims reader --------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
KEYS = st.one_of(st.text(max_size=12), st.sampled_from(["id", "subject", "predicate", "object", "quote",
                                                         "certainty", "hedge", "claims", "source", "waivers"]))
# nesting is bounded here: deep nesting has its own test below
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                    max_leaves=20)
CLAIM_FIELDS = {
    "id": st.text(max_size=20), "subject": st.text(max_size=20), "predicate": st.sampled_from(
        ["causes", "mayCause", "associatedWith", "treats", "nonsense", ""]),
    "object": st.text(max_size=20), "quote": st.text(max_size=40), "certainty": st.sampled_from(
        ["asserted", "possible", "strong", "maybe", ""]),
    "negated": SCALARS, "hedge": SCALARS, "citations": st.lists(SCALARS, max_size=3) | SCALARS,
}
CLAIM = st.fixed_dictionaries({}, optional=CLAIM_FIELDS)
CLAIMS_DOCS = st.one_of(
    DATA,
    st.fixed_dictionaries({"claims": st.lists(CLAIM | DATA, max_size=4)},
                          optional={"source": DATA, "waivers": st.lists(DATA, max_size=3) | DATA}),
)
YAML_LINES = st.sampled_from(["claims:", "  - id: x", "    subject: a", "source:", "waivers: []", "- [", "]", "{",
                              "a: b: c", "  - ", "key: 'unterminated", "&anchor a: 1", "*alias", "!!binary x",
                              "!!python/object:os.system x", "---", "...", "%YAML 1.1", "? k", ": v", "\t- tab"])
yaml_texts = st.one_of(
    st.text(max_size=200),
    CLAIMS_DOCS.map(lambda d: yaml.safe_dump(d, allow_unicode=True, sort_keys=False)),
    st.lists(YAML_LINES | st.text(max_size=20), max_size=20).map("\n".join),
    mutated(fixture_lines("data/claims.yaml"), YAML_LINES),
)


@given(yaml_texts)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_yaml_loader_reads_any_text_or_says_where_it_is_wrong(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "claims.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_yaml(path, "claims.yaml")
        except YamlError as exc:
            check_problems(exc.problems, "claims.yaml", text)


@given(yaml_texts)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_claims_reader_reads_any_text_or_says_where_it_is_wrong(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "claims.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            source, claims, waivers, problems = read_claims(path, "claims.yaml")
        except CurationError as exc:
            check_problems(exc.problems, "claims.yaml", text)
        else:
            for problem in problems:
                check_problems([problem], "claims.yaml", text)


# Inputs the fuzzing above found escaping the project's errors (now fixed in yamlfile.py and curation.py):
# each gets a clear message with a line.
FIXED = {
    "complex mapping key": ("? [a]\n: 1\n", 1, "a key must be a plain value"),
    "deep flow nesting": ("[" * 3000, 1, "nested too deeply"),
    "deep block nesting": ("a:\n" + "".join(" " * i + "b:\n" for i in range(1, 2000)), 1, "nested too deeply"),
    "NUL character": ("claims: []\nsource: a\x00b\n", 2, "U+0000 is not allowed"),
    "scalar waivers": ("claims: []\nwaivers: 5\n", 2, "'waivers' must be a list"),
    "mapping waivers": ("claims: []\nwaivers:\n  a: 1\n  b: 2\n", 2, "'waivers' must be a list"),
}


@pytest.mark.parametrize(("text", "line", "message"), list(FIXED.values()), ids=list(FIXED))
def test_inputs_that_once_escaped_now_get_a_clear_error(text: str, line: int, message: str, tmp_path: Path) -> None:
    path = tmp_path / "claims.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        problems = read_claims(path, "claims.yaml")[3]
    except CurationError as exc:
        problems = exc.problems
    check_problems(problems, "claims.yaml", text)
    assert [p.line for p in problems if message in p.message] == [line], problems
