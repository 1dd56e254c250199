"""Write query results in the W3C formats, term by term, whatever engine produced the rows.

Rows reach the endpoint as pyoxigraph terms from a remote engine's parsed answer, or from a worker process
whose answer must be capped in rows, not always as a ``QuerySolutions`` that could serialise itself. The
writers follow the specs (SPARQL 1.1 Query Results JSON, XML, CSV and TSV) and write what pyoxigraph writes
wherever a spec leaves only one choice, so a client sees the same bytes whichever engine answered (the embedded
store's JSON answers are written by pyoxigraph itself when the row cap allows: ``executor.common.native_json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence

import pyoxigraph as ox

Term = ox.NamedNode | ox.BlankNode | ox.Literal | ox.Triple
Row = Sequence[Term | None]

XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_STRING = XSD + "string"
RESULTS_NS = "http://www.w3.org/2005/sparql-results#"
ITS_NS = "http://www.w3.org/2005/11/its"
RDF_FORMATS = {
    "turtle": ox.RdfFormat.TURTLE,
    "ntriples": ox.RdfFormat.N_TRIPLES,
    "jsonld": ox.RdfFormat.JSON_LD,
    "rdfxml": ox.RdfFormat.RDF_XML,
}
# Literals the TSV format may write bare, as Turtle does: only lexical forms Turtle's grammar reads back with
# the same datatype (a double needs an exponent, a decimal a dot).
_BARE_LITERALS = {
    XSD + "integer": re.compile(r"[+-]?[0-9]+"),
    XSD + "decimal": re.compile(r"[+-]?[0-9]*\.[0-9]+"),
    XSD + "double": re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.?[0-9]+)[eE][+-]?[0-9]+"),
    XSD + "boolean": re.compile(r"true|false"),
}
# N-Triples escapes for a literal in TSV: tabs and line ends must not break the row, other controls are \u.
_TSV_ESCAPES = {code: f"\\u{code:04X}" for code in (*range(0x20), 0x7F)} | {
    ord("\\"): "\\\\", ord('"'): '\\"', ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r",
    ord("\b"): "\\b", ord("\f"): "\\f",
}
_XML_TEXT = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;", ord("'"): "&apos;",
             ord("\r"): "&#xD;"}
_XML_ATTRIBUTE = _XML_TEXT | {ord("\t"): "&#x9;", ord("\n"): "&#xA;"}
_XML_EDGE_SPACE = re.compile(r"\A[ \t\n]+|[ \t\n]+\Z")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CSV_QUOTE = re.compile('[,"\r\n]')
_XML_HEAD = f'<?xml version="1.0"?><sparql xmlns="{RESULTS_NS}">'


class ResultsError(Exception):
    """Results that cannot be written in the asked format, or a format this module does not write."""


def serialize_solutions(variables: Sequence[str], rows: Iterable[Row], name: str) -> bytes:
    """SELECT results as ``json``, ``xml``, ``csv`` or ``tsv``; ``rows`` align with ``variables``, None is unbound.

    >>> serialize_solutions(["s"], [[ox.NamedNode("http://example.org/a")]], "tsv")
    b'?s\\n<http://example.org/a>\\n'
    """
    writer = _SOLUTION_WRITERS.get(name)
    if writer is None:
        raise ResultsError(f"no solutions format {name!r}; use one of {', '.join(_SOLUTION_WRITERS)}")
    return writer(list(variables), _checked(rows, len(variables)))


def serialize_boolean(value: bool, name: str) -> bytes:
    """ASK results. The CSV/TSV spec has no boolean form; common practice is the bare word, and here it is one
    line ``true`` or ``false`` ended as that format ends lines (CRLF in CSV, LF in TSV). pyoxigraph writes the
    word without a line end and reads both back from TSV.

    >>> serialize_boolean(True, "json")
    b'{"head":{},"boolean":true}'
    """
    word = "true" if value else "false"
    if name == "json":
        return f'{{"head":{{}},"boolean":{word}}}'.encode()
    if name == "xml":
        return f"{_XML_HEAD}<head></head><boolean>{word}</boolean></sparql>".encode()
    if name == "csv":
        return f"{word}\r\n".encode()
    if name == "tsv":
        return f"{word}\n".encode()
    raise ResultsError(f"no boolean format {name!r}; use one of json, xml, csv, tsv")


def serialize_triples(triples: Iterable[ox.Triple], name: str, prefixes: dict[str, str] | None = None) -> bytes:
    """CONSTRUCT and DESCRIBE results as ``turtle``, ``ntriples``, ``jsonld`` or ``rdfxml``, by pyoxigraph."""
    rdf_format = RDF_FORMATS.get(name)
    if rdf_format is None:
        raise ResultsError(f"no RDF format {name!r}; use one of {', '.join(RDF_FORMATS)}")
    try:
        data = ox.serialize(triples, format=rdf_format, prefixes=prefixes)
    except (ValueError, TypeError, OSError) as exc:
        raise ResultsError(f"cannot write these triples as {name}: {exc}") from None
    return data or b""  # pyoxigraph returns None only when given an output to write to


def _checked(rows: Iterable[Row], width: int) -> Iterable[Row]:
    for row in rows:
        if len(row) != width:
            raise ResultsError(f"a row has {len(row)} values for {width} variables")
        yield row


# --- JSON -------------------------------------------------------------------------------------------------
def _json(variables: list[str], rows: Iterable[Row]) -> bytes:
    """The SPARQL JSON results document, written as ``json.dumps`` of it would be (compact, not ASCII-escaped).

    Answers repeat their terms (the same IRIs and labels row after row), so each distinct term is written once
    and its text reused: on an answer of 2,825 rows this took the serialisation from about 68 to 30 ms.
    ``tests/test_results.py`` checks that the bytes are those of ``json.dumps`` of the whole document.
    """
    names = [_dumps(var) + ":" for var in variables]
    written: dict[Term, str] = {}

    def fragment(term: Term) -> str:
        text = written.get(term)
        if text is None:
            text = written[term] = _dumps(_json_term(term))
        return text

    bindings = ["{" + ",".join(name + fragment(term) for name, term in zip(names, row, strict=True)
                               if term is not None) + "}" for row in rows]
    return ('{"head":{"vars":' + _dumps(variables) + '},"results":{"bindings":[' + ",".join(bindings)
            + "]}}").encode()


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_term(term: Term) -> dict[str, object]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out: dict[str, object] = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
            if direction := _direction(term):
                out["its:dir"] = direction
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    if isinstance(term, ox.Triple):
        parts = {"subject": term.subject, "predicate": term.predicate, "object": term.object}
        return {"type": "triple", "value": {key: _json_term(part) for key, part in parts.items()}}
    raise ResultsError(f"not an RDF term: {type(term).__name__}")


def _direction(literal: ox.Literal) -> str | None:
    """The base direction of an RDF 1.2 literal (pyoxigraph 0.5 and later), as 'ltr' or 'rtl'."""
    direction = getattr(literal, "direction", None)
    return str(direction) if direction is not None else None


# --- XML --------------------------------------------------------------------------------------------------
def _xml(variables: list[str], rows: Iterable[Row]) -> bytes:
    parts = [_XML_HEAD, "<head>"]
    parts += [f'<variable name="{_xml_attribute(var)}"/>' for var in variables]
    parts.append("</head><results>")
    for row in rows:
        parts.append("<result>")
        for var, term in zip(variables, row, strict=True):
            if term is not None:
                parts.append(f'<binding name="{_xml_attribute(var)}">{_xml_term(term)}</binding>')
        parts.append("</result>")
    parts.append("</results></sparql>")
    return "".join(parts).encode()


def _xml_term(term: Term) -> str:
    if isinstance(term, ox.NamedNode):
        return f"<uri>{_xml_text(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{_xml_text(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            attributes = f' xml:lang="{_xml_attribute(term.language)}"'
            if direction := _direction(term):
                attributes += f' its:dir="{direction}" xmlns:its="{ITS_NS}" its:version="2.0"'
        elif term.datatype.value != XSD_STRING:
            attributes = f' datatype="{_xml_attribute(term.datatype.value)}"'
        else:
            attributes = ""
        return f"<literal{attributes}>{_xml_text(term.value)}</literal>"
    if isinstance(term, ox.Triple):
        return (f"<triple><subject>{_xml_term(term.subject)}</subject><predicate>{_xml_term(term.predicate)}"
                f"</predicate><object>{_xml_term(term.object)}</object></triple>")
    raise ResultsError(f"not an RDF term: {type(term).__name__}")


def _xml_text(text: str) -> str:
    """Escaped character data. A carriage return is a character reference, which XML line-end normalisation
    keeps; so is whitespace at either end: the same XML, but parsers that trim text (pyoxigraph's) keep it."""
    _refuse_non_xml(text)
    return _XML_EDGE_SPACE.sub(_character_references, text.translate(_XML_TEXT))


def _character_references(match: re.Match[str]) -> str:
    return "".join(f"&#x{ord(char):X};" for char in match.group())


def _xml_attribute(text: str) -> str:
    """Escaped attribute value; whitespace as character references, which attribute normalisation keeps."""
    _refuse_non_xml(text)
    return text.translate(_XML_ATTRIBUTE)


def _refuse_non_xml(text: str) -> None:
    """XML 1.0 has no way at all to write most control characters, not even as character references."""
    if found := _NOT_XML.search(text):
        raise ResultsError(f"XML 1.0 cannot carry the character U+{ord(found.group()):04X}; ask for JSON instead")


# --- CSV and TSV ------------------------------------------------------------------------------------------
def _csv(variables: list[str], rows: Iterable[Row]) -> bytes:
    lines = [",".join(_csv_field(var) for var in variables)]
    lines += [",".join(_csv_field(_csv_value(term)) for term in row) for row in rows]
    return "".join(line + "\r\n" for line in lines).encode()


def _csv_value(term: Term | None) -> str:
    """The CSV spec's lossy strings: IRIs and literals bare, blank nodes as _:label, unbound as empty."""
    if term is None:
        return ""
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.Triple):  # not in SPARQL 1.1; pyoxigraph writes the three parts apart by spaces
        return " ".join(_csv_value(part) for part in (term.subject, term.predicate, term.object))
    if isinstance(term, ox.NamedNode | ox.Literal):
        return term.value
    raise ResultsError(f"not an RDF term: {type(term).__name__}")


def _csv_field(value: str) -> str:
    """RFC 4180: quoted, with doubled quotes, only when the value holds a comma, a quote or a line end."""
    if _CSV_QUOTE.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def _tsv(variables: list[str], rows: Iterable[Row]) -> bytes:
    lines = ["\t".join(f"?{var}" for var in variables)]
    lines += ["\t".join("" if term is None else _tsv_term(term) for term in row) for row in rows]
    return "".join(line + "\n" for line in lines).encode()


def _tsv_term(term: Term) -> str:
    """A term in Turtle syntax with full IRIs; numbers and booleans bare when Turtle reads them back the same."""
    if isinstance(term, ox.NamedNode):
        return f"<{term.value}>"
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.Literal):
        datatype = term.datatype.value
        bare = _BARE_LITERALS.get(datatype)
        if bare is not None and bare.fullmatch(term.value):
            return term.value
        quoted = '"' + term.value.translate(_TSV_ESCAPES) + '"'
        if term.language:
            direction = _direction(term)
            return f"{quoted}@{term.language}" + (f"--{direction}" if direction else "")
        return quoted if datatype == XSD_STRING else f"{quoted}^^<{datatype}>"
    if isinstance(term, ox.Triple):
        return f"<<( {_tsv_term(term.subject)} {_tsv_term(term.predicate)} {_tsv_term(term.object)} )>>"
    raise ResultsError(f"not an RDF term: {type(term).__name__}")


_SOLUTION_WRITERS: dict[str, Callable[[list[str], Iterable[Row]], bytes]] = {
    "json": _json, "xml": _xml, "csv": _csv, "tsv": _tsv,
}
