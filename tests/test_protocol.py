"""The protocol layer: the lexical scan that guards the engines, content negotiation, the service description."""

from __future__ import annotations

import time
import urllib.parse

import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib.plugins.sparql import prepareQuery

from anemia_kg.protocol import (
    CSV,
    GRAPH_TYPES,
    JSON,
    JSONLD,
    NTRIPLES,
    RDFXML,
    SOLUTION_TYPES,
    TSV,
    TURTLE,
    XML,
    MediaType,
    ProtocolError,
    QueryForm,
    inspect_query,
    negotiate,
    offered_types,
    parse_accept,
    parse_graph_uris,
    parse_query_string,
    service_description,
)

PROLOGUE = "BASE <http://example.org/>\nPREFIX ex: <http://example.org/> # the prefix\nprefix service: <urn:s:>\n"


@pytest.mark.parametrize(("text", "form"), [
    ("SELECT * WHERE { ?s ?p ?o }", QueryForm.SELECT),
    ("select distinct ?s { ?s ?p ?o }", QueryForm.SELECT),
    (PROLOGUE + "SELECT ?s { ?s ex:p ?o }", QueryForm.SELECT),
    ("# SELECT in a comment\nASK { ?s ?p ?o }", QueryForm.ASK),
    ("ASK{}", QueryForm.ASK),
    (PROLOGUE + "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", QueryForm.CONSTRUCT),
    ("CONSTRUCT WHERE { ?s ?p ?o }", QueryForm.CONSTRUCT),
    ("PREFIX select: <urn:x:> DESCRIBE select:x", QueryForm.DESCRIBE),
    ("PREFIX : <urn:x:>\nPREFIX ask: <urn:y:> #ASK\n describe <urn:x>", QueryForm.DESCRIBE),
    ("PREFIX: <urn:x:> SELECT * {}", QueryForm.SELECT),  # pyoxigraph and rdflib both accept 'PREFIX:'
    ("SELECTDISTINCT * {}", QueryForm.SELECT),  # pyoxigraph accepts keywords glued together
    ('PREFIX ex: <http://example.org/#SELECT> """ASK""" ASK {}', QueryForm.ASK),
    ("", None),
    ("PREFIX ex: <http://example.org/>", None),
    ("{ ?s ?p ?o }", None),
    ("hello world", None),
])
def test_form(text: str, form: QueryForm | None) -> None:
    info = inspect_query(text)
    assert info.form == form
    assert not info.is_update and not info.uses_service


@pytest.mark.parametrize("text", [
    "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
    "DELETE DATA { <urn:a> <urn:b> <urn:c> }",
    "DELETE WHERE { ?s ?p ?o }",
    "LOAD <http://example.org/data.ttl>",
    "LOAD SILENT <http://example.org/data.ttl> INTO GRAPH <urn:g>",
    "CLEAR ALL",
    "DROP GRAPH <urn:g>",
    "CREATE GRAPH <urn:g>",
    "ADD DEFAULT TO <urn:g>",
    "MOVE <urn:a> TO <urn:b>",
    "COPY <urn:a> TO <urn:b>",
    "WITH <urn:g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
    PROLOGUE + "# a comment\ninsert { ?s ex:p ?o } where { ?s ex:q ?o }",
    "INSERTDATA { <urn:a> <urn:b> <urn:c> }",
    "CREATE GRAPH <urn:g> ; DROP GRAPH <urn:g>",
])
def test_every_update_operation(text: str) -> None:
    info = inspect_query(text)
    assert info.is_update
    assert info.form is None


@pytest.mark.parametrize("text", [
    "SELECT * { ?s ?p ?o } ; DROP ALL",
    "SELECT * { ?s ?p ?o } ;\nPREFIX ex: <urn:x:> INSERT DATA { ex:a ex:b ex:c }",
    'ASK { ?s ?p "x" } ; # comment\n CLEAR DEFAULT',
])
def test_an_update_after_a_semicolon_is_an_update(text: str) -> None:
    assert inspect_query(text).is_update


@pytest.mark.parametrize("text", [
    "SELECT * { ?s ?p ?o ; ?q ?r }",
    "SELECT (GROUP_CONCAT(?o; separator=';') AS ?all) { ?s ?p ?o }",
    'SELECT * { ?s ?p "x ; DROP ALL" }',
    "SELECT * { ?s ?p ?o } # ; DROP ALL",
    "SELECT * { ?s ?p ?o . ?s <urn:x;DROP> ?z }",
    "SELECT ?insert { ?insert <urn:delete> ?drop }",
])
def test_semicolons_and_update_words_that_are_not_updates(text: str) -> None:
    assert not inspect_query(text).is_update


SERVICE_QUERIES = [
    "SELECT * WHERE { SERVICE <urn:x:sparql> { ?s ?p ?o } }",
    "SELECT * WHERE {SERVICE<urn:x:sparql>{?s ?p ?o}}",
    "select * where { service <urn:x:sparql> { ?s ?p ?o } }",
    "SELECT * WHERE { SeRvIcE <urn:x:sparql> { ?s ?p ?o } }",
    "SELECT * WHERE { SERVICE SILENT <urn:x:sparql> { ?s ?p ?o } }",
    "SELECT * WHERE { ?a ?b ?c . SERVICE ?endpoint { ?s ?p ?o } }",
    "SELECT * WHERE { SERVICE?endpoint{ ?s ?p ?o } }",
    "SELECT * WHERE { ?x ?y ?z { SELECT * { SERVICE <urn:x:sparql> { ?s ?p ?o } } } }",
    "SELECT * WHERE { OPTIONAL { SERVICE <urn:x:sparql> { ?s ?p ?o } } }",
    "SELECT * WHERE { FILTER EXISTS { SERVICE <urn:x:sparql> { ?s ?p ?o } } }",
    "SELECT * WHERE { ?s ?p ?o # comment\nSERVICE <urn:x:sparql> { ?s ?p ?o } }",
    "SELECT * WHERE { ?s ?p ?o\nSERVICE\n<urn:x:sparql> { ?s ?p ?o } }",
    "SELECT * WHERE { ?s ?p ?o\tSERVICE\tSILENT\t?x\t{ } }",
    'SELECT * WHERE { ?s ?p "x"SERVICE <urn:x:sparql> { } }',
    "SELECT * WHERE { ?s ?p <urn:o>SERVICE <urn:x:sparql> { } }",
    "SELECT * WHERE { ?s ?p ?o.SERVICE <urn:x:sparql> { } }",
    "CONSTRUCT { ?s ?p ?o } WHERE { SERVICE <urn:x:sparql> { ?s ?p ?o } }",
    "ASK { SERVICE <urn:x:sparql> { } }",
    "DESCRIBE ?s WHERE { SERVICE <urn:x:sparql> { ?s ?p ?o } }",
    "INSERT { ?s ?p ?o } WHERE { SERVICE <urn:x:sparql> { ?s ?p ?o } }",
    # each of these was parsed as a SERVICE call by pyoxigraph 0.5 or rdflib 7 (see test_engines_agree):
    "PREFIX : <urn:e:> SELECT * WHERE { SERVICE:x { ?s ?p ?o } }",  # SERVICE then ':x'
    "PREFIX : <urn:e:> SELECT * WHERE { SERVICE:SILENT { ?s ?p ?o } }",
    "SELECT * WHERE { ?s ?p 1.SERVICE <urn:x:sparql> { } }",  # 1 . SERVICE
    "SELECT * WHERE { ?s ?p 1e5.SERVICE <urn:x:sparql> { } }",
    'SELECT * WHERE { ?s ?p "x"@en.SERVICE <urn:x:sparql> { } }',
    "PREFIX ex: <urn:ex:> SELECT * WHERE { ?s ?p ex:.SERVICE <urn:x:sparql> { } }",
    "PREFIX ex: <urn:ex:> SELECT * WHERE { SERVICEex:x { } }",  # pyoxigraph: no word boundary after keywords
    "SELECT * WHERE { SERVICESILENT<urn:x:sparql> { } }",
    "SELECT * WHERE { ?s ?p 1SERVICE<urn:x:sparql> { } }",
    # a quote or '#' escaped in a prefixed name opens no string and no comment
    "PREFIX ex: <urn:ex:> SELECT * { ?s ?p ex:o\\' . SERVICE <urn:x:sparql> { } ?s ?p ex:b\\' }",
    "PREFIX ex: <urn:ex:> SELECT * { ?s ?p ex:o\\#x . SERVICE <urn:x:sparql> { } }",
    # rdflib decodes \\u escapes before it parses: in a string they can end it, outside they spell keywords
    "SELECT * WHERE { \\u0053ERVICE <urn:x:sparql> { } }",
    'SELECT * WHERE { ?s ?p "a\\u0022 . SERVICE <urn:x:sparql> { } ?s ?p \\u0022" }',
    # rdflib upper-cases keywords: the dotless i and the long s become I and S
    "SELECT * WHERE { SERVıCE <urn:x:sparql> { } }",
    "SELECT * WHERE { ſervice <urn:x:sparql> { } }",
    # an IRI pyoxigraph reads through a \\u escape does not make the rest of the line a comment
    "SELECT * WHERE { <http://example.org/\\u00e9#> ?p ?o . SERVICE <urn:x:sparql> { } }",
    # after a long string with quotes and escapes inside, and after a string that is never closed
    'SELECT * WHERE { ?s ?p """a "quoted" \\""" word""" . SERVICE <urn:x:sparql> { } }',
    "SELECT * WHERE { ?s ?p '''it''s''' . SERVICE <urn:x:sparql> { } }",
    'SELECT * WHERE { ?s ?p "never closed\nSERVICE <urn:x:sparql> { } }',
]


@pytest.mark.parametrize("text", SERVICE_QUERIES)
def test_service_is_detected(text: str) -> None:
    info = inspect_query(text)
    assert info.uses_service
    assert "SERVICE" in info.keywords


@pytest.mark.parametrize("text", [
    'SELECT * WHERE { ?s ?p "SERVICE <http://example.org/sparql> { }" }',
    "SELECT * WHERE { ?s ?p 'SERVICE' }",
    'SELECT * WHERE { ?s ?p """\nSERVICE <http://example.org/sparql> { }\n""" }',
    "SELECT * WHERE { ?s ?p '''SERVICE''' }",
    'SELECT * WHERE { ?s ?p "escaped \\" SERVICE <x> { } \\"" }',
    "SELECT * WHERE { ?s <http://example.org/SERVICE> ?o }",
    "SELECT * WHERE { ?s <http://example.org/a#SERVICE> <urn:service:x> }",
    "SELECT * WHERE { ?s ?p ?o } # SERVICE <http://example.org/sparql> { }",
    "# SERVICE <http://example.org/sparql> { }\nSELECT * WHERE { ?s ?p ?o }",
    "SELECT ?service WHERE { ?service ?p $service }",
    "PREFIX ex: <urn:ex:> SELECT * WHERE { ?s ex:service ?o . ?s ex:SERVICE ?o . ?s ex:self-service ?o }",
    "PREFIX service: <urn:s:> SELECT * WHERE { ?s service:x ?o . service:y ?p service: }",
    "PREFIX ex: <urn:ex:> SELECT * WHERE { ?s ex:a.service ?o }",  # one prefixed name, dot inside
    "PREFIX ex: <urn:ex:> SELECT * WHERE { ?s ex:p ex:o\\'s\\' . ?s ?p 'service' }",
])
def test_service_is_not_seen_where_it_is_not_a_keyword(text: str) -> None:
    info = inspect_query(text)
    assert not info.uses_service
    assert "SERVICE" not in info.keywords


def test_keywords_for_diagnostics() -> None:
    info = inspect_query(PROLOGUE + "select distinct ?s { ?s ex:p ?o optional { ?s ex:q ?z } filter(?o) }")
    assert {"BASE", "PREFIX", "SELECT", "DISTINCT", "OPTIONAL", "FILTER"} <= info.keywords
    assert "EX:P" not in info.keywords


@pytest.mark.parametrize(("text", "expected"), [
    ("SELECT * FROM <urn:g> { ?s ?p ?o }", {"FROM"}),
    ("SELECT * FROM NAMED <urn:g> { GRAPH ?g { ?s ?p ?o } }", {"FROM", "NAMED"}),
    ("SELECT*FROMNAMED<urn:g>{}", {"FROM", "NAMED"}),  # pyoxigraph parses this as FROM NAMED
    ("SELECT * \\u0046ROM <urn:g> {}", {"FROM"}),  # rdflib decodes it to FROM
])
def test_dataset_clauses_show_in_the_keywords(text: str, expected: set[str]) -> None:
    assert expected <= inspect_query(text).keywords


@pytest.mark.parametrize("text", [
    'SELECT * { ?s ?p "FROM" } # FROM <urn:g>',
    "SELECT * { ?s <urn:from> ?from . FILTER(STRSTARTS(?from, 'x')) }",
    "PREFIX from: <urn:f:> SELECT * { ?s from:x ?o }",
])
def test_no_dataset_clause_no_from(text: str) -> None:
    assert "FROM" not in inspect_query(text).keywords


# --- the scan against the engines themselves --------------------------------------------------------------
# Each case above is checked against the engines: rdflib parses without evaluating; pyoxigraph is asked to
# evaluate over a store where the patterns before the SERVICE match (its joins are lazy), and every service
# IRI is a urn:, which its HTTP client refuses before connecting. A few cases no engine confirms are flagged
# anyway (false positives are cheap): updates (not parsed as queries here), a SILENT call pyoxigraph runs
# without a trace, and text no engine parses.
UNCONFIRMED = {
    "INSERT { ?s ?p ?o } WHERE { SERVICE <urn:x:sparql> { ?s ?p ?o } }",
    "SELECT * WHERE { SERVICESILENT<urn:x:sparql> { } }",
    'SELECT * WHERE { ?s ?p "never closed\nSERVICE <urn:x:sparql> { } }',
}
OBJECTS = [ox.Literal("1", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")),
           ox.Literal("1e5", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#double")),
           ox.Literal("x"), ox.Literal("x", language="en"), ox.Literal('a "quoted" """ word'),
           ox.Literal("it''s"), ox.Literal("a\n#b"), ox.NamedNode("urn:o"), ox.NamedNode("urn:x#y"),
           *(ox.NamedNode("urn:ex:" + local) for local in ("", "o", "a", "o'", "o#x", "b'"))]


@pytest.fixture(scope="module")
def oracle_store() -> ox.Store:
    store = ox.Store()
    for subject in (ox.NamedNode("urn:ex:s"), ox.NamedNode("http://example.org/\u00e9#")):
        for obj in OBJECTS:
            store.add(ox.Quad(subject, ox.NamedNode("urn:ex:p"), obj))
    return store


def rdflib_calls_service(text: str) -> bool:
    try:
        return "ServiceGraphPattern" in str(prepareQuery(text).algebra)
    except Exception:  # noqa: BLE001 - any failure to parse means rdflib would not run it
        return False


def pyoxigraph_calls_service(store: ox.Store, text: str) -> bool:
    try:
        result = store.query(text)
        if not isinstance(result, ox.QueryBoolean):
            list(result)
    except (OSError, RuntimeError) as exc:
        return any(word in str(exc).lower() for word in ("scheme", "authority", "service"))
    except (SyntaxError, ValueError):
        return False
    return False


@pytest.mark.parametrize("text", [q for q in SERVICE_QUERIES if q not in UNCONFIRMED])
def test_an_engine_really_reads_each_service_case(oracle_store: ox.Store, text: str) -> None:
    assert rdflib_calls_service(text) or pyoxigraph_calls_service(oracle_store, text)


def test_the_oracles_see_no_service_in_the_false_positive_cases(oracle_store: ox.Store) -> None:
    text = "PREFIX ex: <urn:ex:> SELECT * WHERE { ?s ex:service ?o . ?s ex:a.service ?o }"
    assert not rdflib_calls_service(text) and not pyoxigraph_calls_service(oracle_store, text)


FIRST = ["", "?s ?p ?o", "?s ?p ?o .", "?s ?p 1", "?s ?p 1.", "?s ?p 'x'@en", '?s ?p "x"', "?s ex:p ex:o",
         "?s ex:p ex:o\\'", "?s ex:p ex:", "?s ex:p ex:a.", "{ }", "OPTIONAL { }", "FILTER(?s != ?o)", "# c\n",
         '?s ex:p """a\n#b"""', "?s ex:p ex:o\\#x", "?s ex:p <urn:x#y>", "?s ex:p ?service"]
GLUE = ["", " ", "\n", "\t", "# SERVICE\n", " . "]
KEYWORD = ["SERVICE", "service", "SeRvIcE", "\\u0053ERVICE", "SERVICE SILENT", "ex:service", "?service",
           '"SERVICE"', "service:", "SERVICE:", "<urn:SERVICE>", "SERVICEex:", "1SERVICE", "# SERVICE\n"]
TARGET = ["<urn:x>", ":x", "ex:x", "?v", "x", ""]
BODY = ["{ ?a ?b ?c }", "{}", "{ SELECT * { ?a ?b ?c } }"]


@st.composite
def candidate_queries(draw: st.DrawFn) -> str:
    pattern = "".join(draw(st.sampled_from(part)) for part in (FIRST, GLUE, KEYWORD, GLUE, TARGET, GLUE, BODY))
    if draw(st.booleans()):
        pattern = "{ SELECT * { " + pattern + " } }"
    return "PREFIX ex: <urn:ex:> PREFIX : <urn:e:> PREFIX service: <urn:s:> SELECT * WHERE { " + pattern + " }"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(text=candidate_queries())
def test_engines_never_run_a_service_the_scan_missed(oracle_store: ox.Store, text: str) -> None:
    if rdflib_calls_service(text) or pyoxigraph_calls_service(oracle_store, text):
        assert inspect_query(text).uses_service, text


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300) | st.text(alphabet="SERVICEservice{}<>\"'#\\:?$.;\n u0053", max_size=80))
def test_inspect_query_never_raises(text: str) -> None:
    info = inspect_query(text)
    assert isinstance(info.keywords, frozenset)


HOSTILE_QUERIES = ["SERVICE " * 20000, '"""\\"""' * 20000, '"\\"\\"\\"' * 20000, "<" * 100000,
                   "a" * 100000 + "\\'", "'''" * 30000, "\\u0053" * 20000]


@pytest.mark.parametrize("text", HOSTILE_QUERIES)
def test_inspect_query_stays_linear_on_hostile_text(text: str) -> None:
    start = time.perf_counter()
    inspect_query(text)
    assert time.perf_counter() - start < 1.0  # about 0.2 µs a character; a quadratic scan takes minutes


# --- content negotiation ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("accept", "form", "expected"), [
    ("application/sparql-results+json;q=0.9, */*;q=0.1", QueryForm.SELECT, JSON),
    ("text/csv;q=0.5, application/sparql-results+xml", QueryForm.SELECT, XML),
    (None, QueryForm.SELECT, JSON),
    ("", QueryForm.ASK, JSON),
    ("   ", QueryForm.SELECT, JSON),
    ("*/*", QueryForm.SELECT, JSON),
    ("*/*", QueryForm.CONSTRUCT, TURTLE),
    (None, QueryForm.DESCRIBE, TURTLE),
    ("text/tab-separated-values", QueryForm.SELECT, TSV),
    ("TEXT/CSV", QueryForm.SELECT, CSV),
    ("text/csv; charset=utf-8", QueryForm.SELECT, CSV),
    ('text/csv; foo="a, b"; q=0.8, text/tab-separated-values;q=0.7', QueryForm.SELECT, CSV),
    ("application/json", QueryForm.SELECT, JSON),
    ("application/json", QueryForm.CONSTRUCT, JSONLD),
    ("application/xml", QueryForm.ASK, XML),
    ("text/xml", QueryForm.CONSTRUCT, RDFXML),
    ("text/plain", QueryForm.CONSTRUCT, NTRIPLES),
    ("application/n-triples, text/turtle", QueryForm.CONSTRUCT, NTRIPLES),  # equal q: the client's order
    ("text/turtle;q=0.5, application/n-triples;q=0.6", QueryForm.CONSTRUCT, NTRIPLES),
    ("application/*", QueryForm.SELECT, JSON),
    ("application/*", QueryForm.CONSTRUCT, NTRIPLES),
    ("text/*", QueryForm.SELECT, CSV),
    ("text/*", QueryForm.DESCRIBE, TURTLE),
    ("*/*, text/csv", QueryForm.SELECT, CSV),  # equal q: the more specific range
    ("text/*, text/tab-separated-values", QueryForm.SELECT, TSV),
    ("text/csv;q=0.2, text/*;q=0.8", QueryForm.SELECT, TSV),  # the most specific range sets each type's q
    ("application/sparql-results+json;q=0, */*", QueryForm.SELECT, XML),  # q=0: not acceptable
    ("text/turtle;q=0, */*;q=0.5", QueryForm.CONSTRUCT, NTRIPLES),
    ("text/html, application/xhtml+xml, application/xml;q=0.9, */*;q=0.8", QueryForm.SELECT, XML),  # a browser
    ("garbage, text/csv", QueryForm.SELECT, CSV),
    ("text/csv;q=2, text/tab-separated-values", QueryForm.SELECT, TSV),  # a bad q: the range is ignored
    ("*/csv, text/tab-separated-values", QueryForm.SELECT, TSV),
    (";;;,,,", QueryForm.SELECT, JSON),
    ("text/csv;q=0.001, text/turtle", QueryForm.SELECT, CSV),
])
def test_negotiate(accept: str | None, form: QueryForm, expected: MediaType) -> None:
    assert negotiate(accept, None, form) == expected


@pytest.mark.parametrize(("accept", "form"), [
    ("text/html", QueryForm.SELECT),
    ("text/turtle", QueryForm.SELECT),
    ("text/csv", QueryForm.CONSTRUCT),
    ("application/sparql-results+json;q=0", QueryForm.ASK),
    ("*/*;q=0", QueryForm.SELECT),
    ("application/sparql-results+json;q=0, application/json", QueryForm.SELECT),  # the alias does not undo q=0
    ("image/*, text/html;q=0.5", QueryForm.DESCRIBE),
])
def test_nothing_acceptable_is_406(accept: str, form: QueryForm) -> None:
    with pytest.raises(ProtocolError) as caught:
        negotiate(accept, None, form)
    assert caught.value.status == 406
    assert all(media.mime in caught.value.message for media in offered_types(form))


@pytest.mark.parametrize("accept", ["text/csv," + "x" * 4100, ", ".join(["text/csv"] * 65)])
def test_oversized_accept_is_400(accept: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        negotiate(accept, None, QueryForm.SELECT)
    assert caught.value.status == 400


@pytest.mark.parametrize("accept", ['"' + '\\"' * 2000, '"\\' * 2000, 'text/csv;a="' + "x" * 4000])
def test_hostile_accept_is_cheap(accept: str) -> None:
    start = time.perf_counter()
    assert negotiate(accept, None, QueryForm.SELECT) == JSON  # nothing parses: as if there were no header
    assert time.perf_counter() - start < 0.05


def test_64_ranges_are_fine() -> None:
    assert negotiate(", ".join(["image/png"] * 63 + ["text/csv"]), None, QueryForm.SELECT) == CSV


def test_parse_accept_keeps_order_and_q() -> None:
    ranges = parse_accept('text/csv;q=0.5, application/*;x="a,b";q=1.0, bad, */*;q=0')
    assert [(r.type, r.subtype, r.q, r.order) for r in ranges] == [
        ("text", "csv", 0.5, 0), ("application", "*", 1.0, 1), ("*", "*", 0.0, 3)]


@pytest.mark.parametrize(("value", "form", "expected"), [
    ("json", QueryForm.SELECT, JSON),
    ("XML", QueryForm.ASK, XML),
    ("csv", QueryForm.SELECT, CSV),
    ("tsv", QueryForm.SELECT, TSV),
    ("text/csv", QueryForm.SELECT, CSV),
    ("application/sparql-results+json; charset=utf-8", QueryForm.SELECT, JSON),
    ("application/json", QueryForm.CONSTRUCT, JSONLD),
    ("turtle", QueryForm.CONSTRUCT, TURTLE),
    ("ntriples", QueryForm.DESCRIBE, NTRIPLES),
    ("jsonld", QueryForm.CONSTRUCT, JSONLD),
    ("rdfxml", QueryForm.CONSTRUCT, RDFXML),
    ("application/rdf+xml", QueryForm.CONSTRUCT, RDFXML),
    ("", QueryForm.SELECT, CSV),  # an empty parameter is no parameter: the Accept header decides
])
def test_format_parameter_wins(value: str, form: QueryForm, expected: MediaType) -> None:
    assert negotiate("text/csv" if form in (QueryForm.SELECT, QueryForm.ASK) else "text/html", value, form) == (
        expected)


@pytest.mark.parametrize(("value", "form"), [
    ("csv", QueryForm.CONSTRUCT), ("turtle", QueryForm.SELECT), ("yaml", QueryForm.SELECT),
    ("text/html", QueryForm.ASK), ("x" * 10000, QueryForm.SELECT),
])
def test_bad_format_parameter_is_400(value: str, form: QueryForm) -> None:
    with pytest.raises(ProtocolError) as caught:
        negotiate(None, value, form)
    assert caught.value.status == 400
    assert "format=" in caught.value.message and len(caught.value.message) < 400
    assert all(media.name in caught.value.message for media in offered_types(form))


@settings(max_examples=500, deadline=None)
@given(st.none() | st.text(max_size=200) | st.text(alphabet="*/;=q.0123456789, \"\\abcdjsontx+-", max_size=120),
       st.none() | st.text(max_size=30), st.sampled_from(list(QueryForm)))
def test_negotiate_only_raises_protocol_errors(accept: str | None, fmt: str | None, form: QueryForm) -> None:
    try:
        media = negotiate(accept, fmt, form)
    except ProtocolError as exc:
        assert exc.status in (400, 406)
    else:
        assert media in offered_types(form)


# --- service description and dataset ----------------------------------------------------------------------
GRAPHS = ["https://w3id.org/anemia-kg/graph/claims", "https://w3id.org/anemia-kg/graph/entities"]
SD = "http://www.w3.org/ns/sparql-service-description#"
RDF_FORMATS = {TURTLE: ox.RdfFormat.TURTLE, NTRIPLES: ox.RdfFormat.N_TRIPLES, JSONLD: ox.RdfFormat.JSON_LD,
               RDFXML: ox.RdfFormat.RDF_XML}


@pytest.mark.parametrize("media", GRAPH_TYPES)
def test_service_description_parses_and_names_the_graphs(media: MediaType) -> None:
    data = service_description("http://localhost:8000/sparql", GRAPHS, media)
    graph = ox.Store()
    graph.extend(ox.parse(data, format=RDF_FORMATS[media]))
    endpoint = "<http://localhost:8000/sparql>"
    names = graph.query(f"""PREFIX sd: <{SD}> SELECT ?name WHERE {{
        ?service a sd:Service ; sd:endpoint {endpoint} ; sd:supportedLanguage sd:SPARQL11Query ;
                 sd:feature sd:UnionDefaultGraph ; sd:defaultDataset ?dataset .
        ?dataset sd:defaultGraph ?default ; sd:namedGraph ?named . ?named sd:name ?name }} ORDER BY ?name""")
    assert [solution["name"].value for solution in names] == GRAPHS
    formats = {solution["f"].value for solution in graph.query(f"SELECT ?f {{ ?s <{SD}resultFormat> ?f }}")}
    assert formats == {f"http://www.w3.org/ns/formats/{name}" for name in (
        "SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV", "Turtle",
        "N-Triples", "JSON-LD", "RDF_XML")}
    blank = graph.query("ASK { { ?s ?p ?o FILTER(isBlank(?s)) } UNION { ?s ?p ?o FILTER(isBlank(?o)) } }")
    assert not blank


def test_service_description_is_deterministic_and_negotiated() -> None:
    media = negotiate("application/n-triples", None, QueryForm.CONSTRUCT)
    first = service_description("http://localhost/sparql#x", GRAPHS, media)
    assert first == service_description("http://localhost/sparql", GRAPHS, media)
    assert b"<http://localhost/sparql#graph-2> <http://www.w3.org/ns/sparql-service-description#name>" in first


def test_service_description_needs_an_rdf_format_and_an_iri() -> None:
    with pytest.raises(ProtocolError) as caught:
        service_description("http://localhost/sparql", GRAPHS, JSON)
    assert caught.value.status == 406
    with pytest.raises(ProtocolError) as caught:
        service_description("not an iri", GRAPHS, TURTLE)
    assert caught.value.status == 500


def test_graph_uris_of_the_dataset() -> None:
    assert parse_graph_uris([GRAPHS[1], GRAPHS[0], GRAPHS[1]], GRAPHS, "named-graph-uri") == [GRAPHS[1], GRAPHS[0]]
    assert parse_graph_uris([], GRAPHS, "default-graph-uri") == []


@pytest.mark.parametrize(("value", "words"), [
    ("http://example.org/elsewhere", ["default-graph-uri", "not a graph of this dataset", *GRAPHS]),
    ("not an iri", ["default-graph-uri", "not a valid absolute IRI"]),
    ("relative/graph", ["not a valid absolute IRI"]),
    ("", ["not a valid absolute IRI"]),
    (" " + GRAPHS[0], ["not a valid absolute IRI"]),
])
def test_unknown_or_invalid_graph_uri_is_400(value: str, words: list[str]) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_graph_uris([GRAPHS[0], value], GRAPHS, "default-graph-uri")
    assert caught.value.status == 400
    assert all(word in caught.value.message for word in words)


def test_solution_and_graph_tables() -> None:
    assert offered_types(QueryForm.SELECT) == offered_types(QueryForm.ASK) == SOLUTION_TYPES
    assert offered_types(QueryForm.CONSTRUCT) == offered_types(QueryForm.DESCRIBE) == GRAPH_TYPES
    assert [m.mime for m in SOLUTION_TYPES] == ["application/sparql-results+json", "application/sparql-results+xml",
                                                "text/csv", "text/tab-separated-values"]
    assert [m.mime for m in GRAPH_TYPES] == ["text/turtle", "application/n-triples", "application/ld+json",
                                             "application/rdf+xml"]


# --- the query string: the fast decoder must give exactly what Starlette's QueryParams (parse_qsl) gives -----

_URL_TEXT = st.text(alphabet=st.sampled_from(list("%%%%0123456789abcdefABCDEFxyz+=&; \t\n\r/?#é€\x00\xff")),
                    max_size=40)


@settings(max_examples=3000, deadline=None)
@given(_URL_TEXT)
def test_query_string_decoding_is_parse_qsl_on_any_text(text: str) -> None:
    raw = text.encode("latin-1", "replace") if text.isascii() else text.encode("utf-8")
    assert parse_query_string(raw) == urllib.parse.parse_qsl(raw.decode("latin-1"), keep_blank_values=True)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.text(max_size=60), max_size=4), st.booleans())
def test_query_string_decoding_is_parse_qsl_on_what_clients_send(fields: dict[str, str], plus: bool) -> None:
    raw = urllib.parse.urlencode(fields, quote_via=urllib.parse.quote_plus if plus else urllib.parse.quote).encode()
    assert parse_query_string(raw) == urllib.parse.parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    assert dict(parse_query_string(raw)) == fields


@pytest.mark.parametrize("raw", [
    b"query=ASK%7B%3Fs%20%3Fp%20%3Fo%7D", b"query=a+b%2Bc", b"query=%E2%82%AC", b"query=%E2%82x", b"query=%zz%2",
    b"query=a%3D%3Db", b"query=a=b", b"a&&b=&=c&query", b"query=%0D%0A%09", b"x=\xe9%C3%A9", b"query=%",
])
def test_query_string_decoding_edge_cases(raw: bytes) -> None:
    assert parse_query_string(raw) == urllib.parse.parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
