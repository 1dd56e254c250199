"""The result writers: spec-exact small cases, round trips through pyoxigraph's parsers, pyoxigraph's own output."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pyoxigraph as ox
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anemia_kg.results import ResultsError, serialize_boolean, serialize_solutions, serialize_triples

XSD = "http://www.w3.org/2001/XMLSchema#"
EX = "http://example.org/"
RF = ox.QueryResultsFormat
PARSABLE = {"json": RF.JSON, "xml": RF.XML, "tsv": RF.TSV}  # pyoxigraph does not read CSV: it is lossy


def iri(local: str) -> ox.NamedNode:
    return ox.NamedNode(EX + local)


def typed(value: str, datatype: str) -> ox.Literal:
    return ox.Literal(value, datatype=ox.NamedNode(XSD + datatype))


TRICKY = 'say "hi",\tthen\nleave\r\\ — é 😀 <&> \'ok\''
TERMS = [
    iri("a"),
    iri("path?q=1&r=%3Cx%3E,é#frag"),
    ox.Literal("plain"),
    ox.Literal(""),
    ox.Literal(TRICKY),
    ox.Literal(TRICKY, language="en-GB"),
    ox.Literal("chat", language="fr"),
    typed("42", "integer"),
    typed("-0.5", "decimal"),
    typed("1.5E3", "double"),
    typed("1.5", "double"),  # no exponent: Turtle would read it back as a decimal, so TSV must type it
    typed("true", "boolean"),
    typed("01", "integer"),
    typed("not a number", "integer"),
    ox.Literal("x", datatype=ox.NamedNode(EX + "type?a=1&b=2")),
    ox.BlankNode("b0"),
    None,
]
VARIABLES = ["s", "o"]
ROWS = [[iri("s"), term] for term in TERMS] + [[None, None]]


def parsed_rows(data: bytes, name: str) -> tuple[list[str], list[list[ox.NamedNode | ox.Literal | None]]]:
    solutions = ox.parse_query_results(data, format=PARSABLE[name])
    variables = [v.value for v in solutions.variables]
    return variables, [[solution[v] for v in variables] for solution in solutions]


@pytest.mark.parametrize("name", sorted(PARSABLE))
def test_solutions_round_trip(name: str) -> None:
    variables, rows = parsed_rows(serialize_solutions(VARIABLES, ROWS, name), name)
    assert variables == VARIABLES
    assert rows == ROWS


def test_csv_round_trips_as_the_lossy_strings_the_spec_defines() -> None:
    data = serialize_solutions(VARIABLES, ROWS, "csv")
    assert data.count(b"\r\n") >= len(ROWS) + 1 and data.endswith(b"\r\n")
    table = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    expected = [VARIABLES] + [
        [EX + "s" if s else "", "" if o is None else f"_:{o.value}" if isinstance(o, ox.BlankNode) else o.value]
        for s, o in ROWS
    ]
    assert table == expected


def test_json_exact() -> None:
    rows = [[iri("a"), ox.Literal("x", language="en")], [ox.BlankNode("b"), typed("1", "integer")],
            [None, ox.Literal('q"\n')]]
    assert serialize_solutions(["s", "o"], rows, "json") == (
        b'{"head":{"vars":["s","o"]},"results":{"bindings":['
        b'{"s":{"type":"uri","value":"http://example.org/a"},"o":{"type":"literal","value":"x","xml:lang":"en"}},'
        b'{"s":{"type":"bnode","value":"b"},'
        b'"o":{"type":"literal","value":"1","datatype":"http://www.w3.org/2001/XMLSchema#integer"}},'
        b'{"o":{"type":"literal","value":"q\\"\\n"}}]}}'
    )


def test_xml_exact() -> None:
    rows = [[iri("a?b&c"), ox.Literal("<x & 'y'>", language="en")], [ox.BlankNode("b"), None]]
    assert serialize_solutions(["s", "o"], rows, "xml").decode() == (
        '<?xml version="1.0"?><sparql xmlns="http://www.w3.org/2005/sparql-results#">'
        '<head><variable name="s"/><variable name="o"/></head><results>'
        '<result><binding name="s"><uri>http://example.org/a?b&amp;c</uri></binding>'
        '<binding name="o"><literal xml:lang="en">&lt;x &amp; &apos;y&apos;&gt;</literal></binding></result>'
        '<result><binding name="s"><bnode>b</bnode></binding></result>'
        "</results></sparql>"
    )


def test_csv_exact() -> None:
    rows = [[iri("a"), ox.Literal('say "hi", then\nleave')], [ox.BlankNode("b"), None], [None, typed("1", "integer")]]
    assert serialize_solutions(["s", "o"], rows, "csv") == (
        b's,o\r\nhttp://example.org/a,"say ""hi"", then\nleave"\r\n_:b,\r\n,1\r\n'
    )


def test_tsv_exact() -> None:
    rows = [
        [iri("a"), ox.Literal("tab\there", language="en")],
        [ox.BlankNode("b"), typed("1", "integer")],
        [None, typed("1.5", "double")],
        [None, ox.Literal('q"\\\n\x01')],
    ]
    assert serialize_solutions(["s", "o"], rows, "tsv") == (
        b"?s\t?o\n"
        b'<http://example.org/a>\t"tab\\there"@en\n'
        b"_:b\t1\n"
        b'\t"1.5"^^<http://www.w3.org/2001/XMLSchema#double>\n'
        b'\t"q\\"\\\\\\n\\u0001"\n'
    )


def test_no_variables_and_no_rows() -> None:
    assert serialize_solutions([], [[]], "json") == b'{"head":{"vars":[]},"results":{"bindings":[{}]}}'
    assert serialize_solutions(["x"], [], "csv") == b"x\r\n"
    assert serialize_solutions(["x"], [], "tsv") == b"?x\n"
    assert parsed_rows(serialize_solutions(["x"], [], "xml"), "xml") == (["x"], [])


@pytest.fixture
def store() -> ox.Store:
    store = ox.Store()
    graph = iri("graph")
    objects = [ox.Literal('a "quoted", comma\nand line é 😀', language="en"), typed("7", "integer"),
               typed("-2.25", "decimal"), typed("2.5E0", "double"), typed("true", "boolean"), ox.Literal("plain"),
               ox.Literal("odd", datatype=iri("dt")), iri("object"), ox.BlankNode("node")]
    for n, obj in enumerate(objects):
        store.add(ox.Quad(iri(f"s{n}"), iri("p"), obj, graph))
    store.add(ox.Quad(ox.BlankNode("subject"), iri("p"), iri("o"), graph))
    return store


QUERY = "SELECT ?s ?o ?missing WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY STR(?s) STR(?o)"


def ours_and_theirs(store: ox.Store, name: str, fmt: ox.QueryResultsFormat) -> tuple[bytes, bytes]:
    solutions = store.query(QUERY)
    variables = [v.value for v in solutions.variables]
    ours = serialize_solutions(variables, [[solution[v] for v in variables] for solution in solutions], name)
    return ours, store.query(QUERY).serialize(format=fmt)


@pytest.mark.parametrize(("name", "fmt"), [("csv", RF.CSV), ("tsv", RF.TSV)])
def test_same_bytes_as_pyoxigraph_where_the_format_leaves_one_choice(store: ox.Store, name: str,
                                                                     fmt: ox.QueryResultsFormat) -> None:
    ours, theirs = ours_and_theirs(store, name, fmt)
    assert ours == theirs


def test_same_json_document_as_pyoxigraph(store: ox.Store) -> None:
    ours, theirs = ours_and_theirs(store, "json", RF.JSON)
    assert json.loads(ours) == json.loads(theirs)


def test_same_xml_infoset_as_pyoxigraph(store: ox.Store) -> None:
    ours, theirs = ours_and_theirs(store, "xml", RF.XML)
    assert ET.canonicalize(ours.decode()) == ET.canonicalize(theirs.decode())


@pytest.mark.parametrize("name", sorted(PARSABLE))
def test_rdf12_terms_round_trip(name: str) -> None:
    rtl = ox.Literal("שלום", language="he", direction=ox.BaseDirection.RTL)
    quoted = ox.Triple(iri("a"), iri("p"), ox.Literal("x\ty", language="en"))
    rows = [[rtl, quoted]]
    assert parsed_rows(serialize_solutions(["l", "t"], rows, name), name) == (["l", "t"], rows)


@pytest.mark.parametrize("name", ["json", "xml", "csv", "tsv"])
def test_rdf12_terms_written_as_pyoxigraph_writes_them(name: str) -> None:
    query = 'SELECT (TRIPLE(<http://example.org/a>, <http://example.org/p>, "x") AS ?t) ("w"@ar--rtl AS ?d) {}'
    solutions = ox.Store().query(query)
    ours = serialize_solutions(["t", "d"], [[solution["t"], solution["d"]] for solution in solutions], name)
    assert ours == ox.Store().query(query).serialize(format=getattr(RF, name.upper()))


@pytest.mark.parametrize(("name", "true", "false"), [
    ("json", b'{"head":{},"boolean":true}', b'{"head":{},"boolean":false}'),
    ("xml", b'<?xml version="1.0"?><sparql xmlns="http://www.w3.org/2005/sparql-results#"><head></head>'
            b"<boolean>true</boolean></sparql>", None),
    ("csv", b"true\r\n", b"false\r\n"),
    ("tsv", b"true\n", b"false\n"),
])
def test_boolean(name: str, true: bytes, false: bytes | None) -> None:
    assert serialize_boolean(True, name) == true
    if false is not None:
        assert serialize_boolean(False, name) == false
    if name in PARSABLE:
        for value in (True, False):
            assert bool(ox.parse_query_results(serialize_boolean(value, name), format=PARSABLE[name])) is value


@pytest.mark.parametrize("name", ["json", "xml"])
def test_boolean_same_as_pyoxigraph(name: str) -> None:
    fmt = getattr(RF, name.upper())
    for query in ("ASK {}", "ASK { FILTER(false) }"):
        theirs = ox.Store().query(query).serialize(format=fmt)
        assert serialize_boolean(bool(ox.Store().query(query)), name) == theirs


TRIPLES = [
    ox.Triple(iri("a"), iri("p"), ox.Literal(TRICKY, language="en")),
    ox.Triple(iri("a"), iri("p"), typed("3", "integer")),
    ox.Triple(iri("a"), iri("q"), iri("b")),
    ox.Triple(iri("b"), iri("p"), ox.Literal("plain, with \"quotes\"\n")),
]
RDF = {"turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES, "jsonld": ox.RdfFormat.JSON_LD,
       "rdfxml": ox.RdfFormat.RDF_XML}


@pytest.mark.parametrize("name", sorted(RDF))
def test_triples_round_trip(name: str) -> None:
    data = serialize_triples(TRIPLES, name, {"ex": EX})
    assert {quad.triple for quad in ox.parse(data, format=RDF[name])} == set(TRIPLES)


def test_triples_with_blank_nodes_keep_their_shape() -> None:
    node = ox.BlankNode("n")
    data = serialize_triples([ox.Triple(iri("a"), iri("p"), node), ox.Triple(node, iri("q"), iri("b"))], "ntriples")
    back = list(ox.parse(data, format=ox.RdfFormat.N_TRIPLES))
    assert back[0].object == back[1].subject and isinstance(back[0].object, ox.BlankNode)


def test_turtle_uses_the_prefixes() -> None:
    assert serialize_triples(TRIPLES[2:3], "turtle", {"ex": EX}) == (
        b"@prefix ex: <http://example.org/> .\nex:a ex:q ex:b .\n"
    )


@pytest.mark.parametrize("call", [
    lambda: serialize_solutions(["x"], [], "turtle"),
    lambda: serialize_boolean(True, "turtle"),
    lambda: serialize_triples(TRIPLES, "json"),
])
def test_unknown_format(call) -> None:  # noqa: ANN001
    with pytest.raises(ResultsError, match="use one of"):
        call()


def test_rows_must_match_the_variables() -> None:
    with pytest.raises(ResultsError, match="2 values for 1 variables"):
        serialize_solutions(["x"], [[iri("a"), iri("b")]], "tsv")


def test_xml_refuses_characters_xml_cannot_carry() -> None:
    with pytest.raises(ResultsError, match=r"U\+0001"):
        serialize_solutions(["x"], [[ox.Literal("a\x01b")]], "xml")


def test_xml_keeps_carriage_returns_and_edge_whitespace() -> None:
    rows = [[ox.Literal("a\r\nb")], [ox.Literal("\r")], [ox.Literal(" \t\n x \n")]]
    data = serialize_solutions(["x"], rows, "xml")
    assert b"<literal>&#xD;</literal>" in data and b"<literal>&#x20;&#x9;&#xA;&#x20;x&#x20;&#xA;</literal>" in data
    assert parsed_rows(data, "xml")[1] == rows


def test_not_a_term() -> None:
    with pytest.raises(ResultsError, match="not an RDF term"):
        serialize_solutions(["x"], [["a string"]], "json")  # type: ignore[list-item]


XML_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff").filter(
    lambda c: c in "\t\n\r" or ord(c) >= 0x20)
ANY_CHARS = st.characters(blacklist_categories=("Cs",))
LANGUAGE = st.from_regex(r"[a-z]{2,3}(-[A-Z]{2})?", fullmatch=True)


@st.composite
def literals(draw: st.DrawFn, alphabet: st.SearchStrategy[str] = ANY_CHARS) -> ox.Literal:
    value = draw(st.text(alphabet, max_size=30))
    kind = draw(st.sampled_from(["plain", "lang", "typed"]))
    if kind == "lang":
        return ox.Literal(value, language=draw(LANGUAGE))
    if kind == "typed":
        return ox.Literal(value, datatype=ox.NamedNode(draw(st.sampled_from([XSD + "integer", XSD + "double",
                                                                                XSD + "decimal", EX + "t"]))))
    return ox.Literal(value)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), literals()), min_size=1, max_size=5), st.sampled_from(["json", "tsv"]))
def test_any_literal_round_trips(terms: list[ox.Literal | None], name: str) -> None:
    rows = [[term] for term in terms]
    assert parsed_rows(serialize_solutions(["v"], rows, name), name) == (["v"], rows)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), literals(XML_CHARS)), min_size=1, max_size=5))
def test_any_xml_literal_round_trips(terms: list[ox.Literal | None]) -> None:
    rows = [[term] for term in terms]
    assert parsed_rows(serialize_solutions(["v"], rows, "xml"), "xml") == (["v"], rows)


def _reference_json(variables: list[str], rows: list[list]) -> bytes:
    """The JSON document built whole and dumped, as the writer did before it reused each term's text."""
    from anemia_kg.results import _json_term

    bindings = [{v: _json_term(t) for v, t in zip(variables, row, strict=True) if t is not None} for row in rows]
    document = {"head": {"vars": variables}, "results": {"bindings": bindings}}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(TERMS), min_size=3, max_size=3), max_size=30),
       st.sampled_from([["a", "b", "c"], ["x", "\"y\"", "é"]]))
def test_json_writer_gives_the_bytes_of_the_whole_document_dumped(rows, variables) -> None:
    assert serialize_solutions(variables, rows, "json") == _reference_json(variables, rows)


# --- pyoxigraph's own JSON writer, used by the embedded executor (anemia_kg.executor.common.native_json) -----
def _store_of(objects: list[ox.Literal | ox.NamedNode | ox.BlankNode]) -> ox.Store:
    store = ox.Store()
    for n, obj in enumerate(objects):
        subject = ox.BlankNode(f"b{n}") if n % 4 == 3 else iri(f"s{n}")
        store.add(ox.Quad(subject, iri("p"), obj, iri("graph")))
    return store


def _ours(store: ox.Store, query: str) -> bytes:
    solutions = store.query(query)
    variables = [v.value for v in solutions.variables]
    return serialize_solutions(variables, [[s[v] for v in variables] for s in solutions], "json")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(literals(), st.sampled_from([iri("o"), iri("p?q=1&é"), ox.BlankNode("x")])), max_size=12))
def test_native_json_is_byte_for_byte_the_python_writer(objects) -> None:
    from anemia_kg.executor.common import native_json

    store = _store_of(objects)
    assert native_json(store.query(QUERY), 10_000) == _ours(store, QUERY)


def _rows(n: int, text: str = "x") -> ox.Store:
    return _store_of([ox.Literal(f"{text}{i}") for i in range(n)])


COUNT_ROWS = "SELECT ?o WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY ?o"


def test_native_json_stops_only_when_the_rows_may_pass_the_cap() -> None:
    from anemia_kg.executor.common import native_json

    assert native_json(_rows(50).query(COUNT_ROWS), 50) == _ours(_rows(50), COUNT_ROWS)  # exactly the cap
    assert native_json(_rows(51).query(COUNT_ROWS), 50) is None  # one more
    assert native_json(_rows(0).query(COUNT_ROWS), 1) == _ours(_rows(0), COUNT_ROWS)
    assert native_json(_rows(1).query(COUNT_ROWS), 1) is not None
    # literals holding ",{" loosen the bound: 10 rows under a cap of 20 may pass it, so the caller must count
    assert native_json(_rows(10, "a,{b,{c").query(COUNT_ROWS), 20) is None


def test_render_counts_exactly_when_the_bound_is_loose() -> None:
    from anemia_kg.executor.common import TooManyRows, render

    store = _rows(10, "a,{b,{c")

    def again() -> ox.QuerySolutions:
        calls.append(1)
        return store.query(COUNT_ROWS)

    calls: list[int] = []
    result = render(store.query(COUNT_ROWS), form="SELECT", media="json", max_rows=20, again=again)
    assert (result.body, calls) == (_ours(store, COUNT_ROWS), [1])  # evaluated again, and all 10 rows are there
    calls.clear()
    with pytest.raises(TooManyRows):
        render(store.query(COUNT_ROWS), form="SELECT", media="json", max_rows=9, again=again)
    assert calls == [1]
    calls.clear()
    plain = _rows(30)
    result = render(plain.query(COUNT_ROWS), form="SELECT", media="json", max_rows=30, again=again)
    assert (result.body, calls) == (_ours(plain, COUNT_ROWS), [])  # native, not evaluated again


def test_the_row_bound_sees_a_separator_split_between_two_writes() -> None:
    from anemia_kg.executor.common import _MayPassCap, _RowBound

    bound = _RowBound(2)
    bound.write(b'{"head":{"vars":["o"]},"results":{"bindings":[{"o":1},')
    with pytest.raises(_MayPassCap):
        bound.write(b'{"o":2},{"o":3}]}}')
    bound = _RowBound(3)
    for part in (b"[{}", b",", b"{}", b",", b"{}]"):
        bound.write(part)
    assert (bound.separators, b"".join(bound.parts)) == (2, b"[{},{},{}]")
