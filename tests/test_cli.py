"""The ``anemia-kg`` command as a user runs it: help, build, validate, stats and query.

Most tests drive the typer app in process with ``CliRunner`` (stdout and stderr kept apart); the real
console script is run as a subprocess for the real build (see conftest), the real ``validate`` and one
broken ``validate``. Commands that only read the build (stats, query) use the real build's folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
from typer.testing import CliRunner

from anemia_kg.cli import app
from anemia_kg.store import open_memory_store
from test_server import run_cli

CLAIMS = "data/claims.yaml"
SYMPTOMS = "SELECT ?s ?label WHERE { ?s a akg:Symptom ; rdfs:label ?label } ORDER BY ?s"


def invoke(root, *args: str, stdin: str | None = None):
    return CliRunner().invoke(app, ["--root", str(root), *args], input=stdin)


def clean_exit(result, code: int) -> None:
    """The command ended with ``code`` through its own error handling, never an uncaught exception."""
    assert result.exit_code == code, (
        f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


def squash(text: str) -> str:
    """Whitespace collapsed: the console wraps long lines."""
    return " ".join(text.split())


# --- help ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "options"), [
    ((), ("--root", "--verbose", "build", "validate", "stats", "query")),
    (("build",), ("--help",)),
    (("validate",), ("--file", "--help")),
    (("stats",), ("--format", "--help")),
    (("query",), ("--file", "--format", "--help")),
])
def test_help(command, options):
    result = CliRunner().invoke(app, [*command, "--help"])
    clean_exit(result, 0)
    assert "Usage:" in result.stdout
    for option in options:
        assert option in result.stdout, f"{option} missing from {' '.join(command)} --help"


# --- build ----------------------------------------------------------------------------------------------


def test_build_prints_coverage_and_unresolved_citations(real_build):
    """The console script's own output (run as a subprocess by conftest)."""
    out = real_build.stdout
    report = json.loads((real_build.root / "data" / "build" / "build-report.json").read_text(encoding="utf-8"))
    cov = report["coverage"]
    assert re.search(r"unresolved citations\s+1: \[7\]", out), out
    assert re.search(rf"cited units covered\s+{cov['cited_units']}/{cov['cited_units']} \(100%\)", out), out
    units = cov["claim_bearing_units"]
    assert re.search(rf"all claim-bearing units covered\s+{units}/{units} \(100%\)", out), out
    assert re.search(r"SHACL\s+conforms", out), out
    for name in ("anemia-kg.trig", "anemia-kg.nq", "anemia-kg.jsonld", "anemia-kg.ttl", "build-report.json"):
        assert f"wrote data/build/{name}" in out
    assert "Traceback" not in real_build.stderr


# --- validate --------------------------------------------------------------------------------------------


def test_validate_passes_on_real_data_and_writes_nothing(real_validate):
    assert real_validate.returncode == 0, real_validate.describe()
    assert "valid: every check passed" in squash(real_validate.stdout)
    assert re.search(r"unresolved citations\s+1: \[7\]", real_validate.stdout)
    assert "Traceback" not in real_validate.stdout + real_validate.stderr
    assert not (real_validate.root / "data" / "build").exists()


def test_validate_fails_on_broken_real_data(real_project):
    triple = "\n    predicate: causes\n    object: peripheral_demyelination"
    real_project.edit(CLAIMS, f"subject: vitamin_b12_deficiency{triple}", f"subject: vitamin_b12_deficency{triple}")
    line = real_project.line_of(CLAIMS, "subject: vitamin_b12_deficency")  # the wrong field's own line
    result = invoke(real_project.root, "validate")
    clean_exit(result, 1)
    err = squash(result.stderr)
    assert "validation failed: 1 problem(s)" in err
    assert (f"{CLAIMS}:{line}: claim 'b12-deficiency-causes-peripheral-demyelination': "
            "subject 'vitamin_b12_deficency'") in err
    assert "did you mean 'vitamin_b12_deficiency'?" in err
    assert not real_project.build_dir.exists()


def test_validate_fails_cleanly_in_the_console_script(tiny):
    """A real process: the user sees the file:line message on stderr, exit status 1 and no traceback."""
    tiny.edit(CLAIMS, "cites: [1, 2]", "cites: [2]")
    line = tiny.line_of(CLAIMS, '"Anemia may cause fatigue in adults"')
    script = Path(sys.executable).with_name("anemia-kg")
    env = {k: v for k, v in os.environ.items() if k != "ANEMIA_KG_ROOT"}
    proc = subprocess.run([str(script), "--root", str(tiny.root), "validate"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"{CLAIMS}:{line}: " in proc.stderr
    assert "write cites: [1, 2]" in squash(proc.stderr)


@pytest.mark.parametrize("name", ["anemia-kg.ttl", "anemia-kg.nq", "anemia-kg.trig", "anemia-kg.jsonld"])
def test_validate_file_accepts_the_built_files(tiny_built, name):
    path = tiny_built.build_dir / name
    result = invoke(tiny_built.root, "validate", "--file", str(path))
    clean_exit(result, 0)
    assert f"valid: {path} conforms to ontology/shapes.ttl" in squash(result.stdout)


def test_validate_file_reports_shacl_violations(tiny_built, tmp_path):
    """The built graph without one akg:supportedByArticleOnly: the shape for uncited claims must say so."""
    supported = ox.NamedNode("https://w3id.org/anemia-kg/ontology#supportedByArticleOnly")
    triples = [q.triple for q in ox.parse(path=tiny_built.build_dir / "anemia-kg.nq") if q.predicate != supported]
    broken = tmp_path / "broken.ttl"
    broken.write_bytes(ox.serialize(triples, format=ox.RdfFormat.TURTLE))
    result = invoke(tiny_built.root, "validate", "--file", str(broken))
    clean_exit(result, 1)
    err = squash(result.stderr)
    assert "validation failed" in err
    assert "claim:iron-deficiency-may-cause-fatigue" in err
    assert "it must say akg:supportedByArticleOnly true" in err


def test_validate_file_that_is_not_rdf(tiny, tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix akg: <https://w3id.org/anemia-kg/ontology#> .\n<x> a akg:Claim\n", encoding="utf-8")
    result = invoke(tiny.root, "validate", "--file", str(bad))
    clean_exit(result, 1)
    assert "cannot parse as turtle" in squash(result.stderr)
    missing = invoke(tiny.root, "validate", "--file", str(tmp_path / "missing.ttl"))
    clean_exit(missing, 1)
    assert "file not found" in squash(missing.stderr)
    unknown = invoke(tiny.root, "validate", "--file", str(tmp_path / "data.csv"))
    clean_exit(unknown, 2)


# --- stats -----------------------------------------------------------------------------------------------


def test_stats_text(real_build):
    result = invoke(real_build.root, "stats")
    clean_exit(result, 0)
    out = result.stdout
    for title in ("classes", "predicates", "coverage", "unresolved citations", "uncited claims"):
        assert re.search(rf"^\s*{title}\s*$", out, re.M), f"no '{title}' table"
    assert re.search(r"akg:Claim\s*│\s*76\b", out)
    assert re.search(r"akg:correlatesWith\s*│\s*1\s*│\s*1\s*│\s*0\s*│\s*0\b", out)  # negated: no edge
    report = json.loads((real_build.root / "data" / "build" / "build-report.json").read_text(encoding="utf-8"))
    assert f"{report['triples']} triples, {report['claims']} claims" in out


def test_stats_json(real_build):
    result = invoke(real_build.root, "stats", "--format", "json")
    clean_exit(result, 0)
    data = json.loads(result.stdout)
    classes = {row["class"]: row["count"] for row in data["classes"]}
    assert classes["akg:Claim"] == 76
    assert classes["akg:Citation"] == 7
    predicates = {row["predicate"]: row for row in data["predicates"]}
    assert predicates["akg:correlatesWith"]["negatedClaims"] == 1
    assert predicates["akg:correlatesWith"]["edges"] == 0
    assert sum(row["claims"] for row in data["predicates"]) == 76
    cited = [row for row in data["coverage"] if row["cited"] is True]
    assert len(cited) == 1
    assert cited[0]["units"] == cited[0]["coveredUnits"] == 32
    assert cited[0]["percent"] == 100.0
    assert {row["number"] for row in data["unresolved_citations"]} == {"7"}
    assert any("dapsone" in row["text"] for row in data["unresolved_citations"])
    assert len(data["uncited_claims"]) == 21
    assert data["totals"]["unresolved_citations"] == [7]


# --- query -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def symptoms(real_build) -> list[tuple[str, str]]:
    """The answer to SYMPTOMS, computed directly on the store with full IRIs."""
    store = open_memory_store(real_build.root / "data" / "build" / "anemia-kg.nq")
    sparql = ("SELECT ?s ?label WHERE { ?s a <https://w3id.org/anemia-kg/ontology#Symptom> ; "
              "<http://www.w3.org/2000/01/rdf-schema#label> ?label } ORDER BY ?s")
    found = [(sol["s"].value, sol["label"].value) for sol in store.query(sparql, use_default_graph_as_union=True)]
    assert found
    return found


def test_query_table(real_build):
    result = invoke(real_build.root, "query",
                    "SELECT ?hedge WHERE { claim:b12-deficiency-may-cause-neuropathy-in-diabetes akg:hedge ?hedge }")
    clean_exit(result, 0)
    assert re.search(r"┃\s*hedge\s*┃", result.stdout)
    assert re.search(r"│\s*may be due to\s*│", result.stdout)
    assert "1 row(s)" in result.stdout


def test_query_table_shortens_iris_and_answers_ask(real_build):
    result = invoke(real_build.root, "query", SYMPTOMS)
    clean_exit(result, 0)
    assert "ent:joint_pain" in result.stdout
    negated = invoke(real_build.root, "query", "ASK { ent:anemia akg:correlatesWith ent:neurological_symptoms }")
    clean_exit(negated, 0)
    assert re.search(r"│\s*false\s*│", negated.stdout)


def test_query_json_is_sparql_results_json(real_build, symptoms):
    result = invoke(real_build.root, "query", SYMPTOMS, "--format", "json")
    clean_exit(result, 0)
    data = json.loads(result.stdout)
    assert data["head"]["vars"] == ["s", "label"]
    bindings = data["results"]["bindings"]
    assert [(b["s"]["value"], b["label"]["value"]) for b in bindings] == symptoms
    assert all(b["s"]["type"] == "uri" and b["label"]["type"] == "literal" for b in bindings)


def test_query_csv_and_tsv_have_header_rows(real_build, symptoms):
    result = invoke(real_build.root, "query", SYMPTOMS, "--format", "csv")
    clean_exit(result, 0)
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert table[0] == ["s", "label"]
    assert [tuple(row) for row in table[1:]] == symptoms
    result = invoke(real_build.root, "query", SYMPTOMS, "--format", "tsv")
    clean_exit(result, 0)
    lines = result.stdout.splitlines()
    assert lines[0] == "?s\t?label"
    assert len(lines) == 1 + len(symptoms)


def test_query_construct_as_turtle(real_build):
    result = invoke(real_build.root, "query", "CONSTRUCT { ?s akg:causes ?o } WHERE { ?s akg:causes ?o }",
                    "--format", "turtle")
    clean_exit(result, 0)
    triples = list(ox.parse(result.stdout_bytes, format=ox.RdfFormat.TURTLE))
    causes = ox.NamedNode("https://w3id.org/anemia-kg/ontology#causes")
    assert triples and all(t.predicate == causes for t in triples)
    edge = (ox.NamedNode("https://w3id.org/anemia-kg/entity/vitamin_b12_deficiency"),
            ox.NamedNode("https://w3id.org/anemia-kg/entity/peripheral_demyelination"))
    assert edge in {(t.subject, t.object) for t in triples}


@pytest.mark.parametrize(("fmt", "parse"), [("json", ox.RdfFormat.JSON_LD), ("xml", ox.RdfFormat.RDF_XML),
                                           ("ntriples", ox.RdfFormat.N_TRIPLES)])
def test_query_construct_in_the_other_rdf_formats(real_build, fmt, parse):
    result = invoke(real_build.root, "query", "CONSTRUCT { ?s akg:causes ?o } WHERE { ?s akg:causes ?o }",
                    "--format", fmt)
    clean_exit(result, 0)
    causes = ox.NamedNode("https://w3id.org/anemia-kg/ontology#causes")
    triples = list(ox.parse(result.stdout_bytes, format=parse))
    assert triples and all(t.predicate == causes for t in triples)


@pytest.mark.parametrize(("query", "fmt", "says"), [
    ("CONSTRUCT { ?s akg:causes ?o } WHERE { ?s akg:causes ?o }", "csv",
     "--format csv is for SELECT and ASK queries; a CONSTRUCT or DESCRIBE answer is RDF: use turtle, ntriples, "
     "json (JSON-LD) or xml (RDF/XML)"),
    ("DESCRIBE ent:anemia", "tsv", "--format tsv is for SELECT and ASK queries"),
    (SYMPTOMS, "turtle", "--format turtle is for CONSTRUCT and DESCRIBE queries"),
])
def test_query_format_that_does_not_suit_the_query_is_refused(real_build, query, fmt, says):
    result = invoke(real_build.root, "query", query, "--format", fmt)
    clean_exit(result, 1)
    assert says in squash(result.stderr) and result.stdout == ""


@pytest.mark.parametrize(("query", "says"), [
    ("INSERT DATA { <http://a/b> <http://a/c> <http://a/d> }", "read-only: SPARQL Update is not accepted"),
    ("SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }", "SERVICE (federated query) is not"),
    ("SELECT * WHERE { FILTER(" + "(" * 30_000 + "1" + ")" * 30_000 + ") }", "nests brackets"),
    ("SELECT * WHERE " + "{" * 5_000 + "}" * 5_000, "nests brackets"),
])
def test_query_refuses_what_the_server_refuses_with_a_message_not_a_crash(real_build, tmp_path, query, says):
    """Deep nesting overflowed the parser's stack: the process died of SIGSEGV (exit 139) with no word. Run as
    the console script, in its own process, as a user runs it (in-process a crash would take pytest down)."""
    rq = tmp_path / "q.rq"
    rq.write_text(query, encoding="utf-8")
    result = run_cli(real_build.root, "query", "--file", str(rq))
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert says in squash(result.stderr) and "Traceback" not in result.stderr, result.stderr


def test_query_names_an_unknown_prefix(real_build):
    result = invoke(real_build.root, "query", "SELECT * WHERE { ?s foo:bar ?o }")
    clean_exit(result, 1)
    assert "SPARQL syntax error: error at 1:28: unknown prefix 'foo:'; declare it (PREFIX foo: <...>) or use a " \
           "predeclared one: akg, akgg, ann, biolink," in squash(result.stderr)


def test_query_syntax_error(real_build):
    result = invoke(real_build.root, "query", "SELEC ?s WHERE { ?s ?p ?o }")
    clean_exit(result, 1)
    assert "SPARQL syntax error" in result.stderr


@pytest.mark.parametrize("args", [("query", SYMPTOMS, "--format", "nope"), ("stats", "--format", "nope")])
def test_unknown_format_is_a_usage_error(real_build, args):
    result = invoke(real_build.root, *args)
    clean_exit(result, 2)
    assert "Invalid value for --format" in squash(result.stderr)


def test_query_from_file_and_stdin(real_build, tmp_path):
    rq = tmp_path / "symptoms.rq"
    rq.write_text("# symptoms and their labels\n" + SYMPTOMS + "\n", encoding="utf-8")
    expected = invoke(real_build.root, "query", SYMPTOMS, "--format", "json")
    from_file = invoke(real_build.root, "query", "--file", str(rq), "--format", "json")
    from_stdin = invoke(real_build.root, "query", "-", "--format", "json", stdin=SYMPTOMS)
    for result in (expected, from_file, from_stdin):
        clean_exit(result, 0)
    assert json.loads(from_file.stdout) == json.loads(expected.stdout) == json.loads(from_stdin.stdout)


def test_query_builds_first_when_there_is_no_build(tiny):
    assert not tiny.build_dir.exists()
    result = invoke(tiny.root, "query", "SELECT ?o WHERE { ent:iron_deficiency akg:causes ?o }")
    clean_exit(result, 0)
    assert "no build at data/build; building it first" in squash(result.stderr)
    assert (tiny.build_dir / "anemia-kg.nq").exists()
    assert "ent:anemia" in result.stdout
    assert "1 row(s)" in result.stdout
    negated = invoke(tiny.root, "query", "ASK { ent:anemia akg:causes ent:fatigue }")
    clean_exit(negated, 0)
    assert re.search(r"│\s*false\s*│", negated.stdout)
    assert "building it first" not in negated.stderr


# --- what a person gets wrong on the command line ---------------------------------------------------------------


@pytest.mark.parametrize("command", [("build",), ("stats",), ("query", "ASK { ?s ?p ?o }"), ("validate",)])
def test_a_root_that_is_no_project_is_named_as_such(tmp_path, command):
    """Not the first file a step then misses (it said: data/source/article.txt: cannot read the article)."""
    def unboxed(text: str) -> str:  # typer's error box wraps lines anywhere, long paths included
        return re.sub(r"[\s│╭╮╰╯─]", "", text)

    missing = invoke(tmp_path / "nowhere", *command)
    clean_exit(missing, 2)
    assert unboxed(f"{tmp_path / 'nowhere'} is not a folder") in unboxed(missing.stderr)
    empty = invoke(tmp_path, *command)
    clean_exit(empty, 2)
    assert unboxed(f"--root / ANEMIA_KG_ROOT: {tmp_path} has no data/ folder: give the project folder, the one "
                   "holding data/ and ontology/") in unboxed(empty.stderr)


def test_serve_on_a_port_in_use_says_so_before_starting_anything(tiny, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(tiny.root, "serve", "--port", str(port))
    clean_exit(result, 1)
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use (another server?); choose another with " \
           "--port" in squash(result.stderr)
    assert "serving on" not in result.output
    assert not tiny.build_dir.exists()  # it stopped before building or starting workers


def test_explain_says_when_nothing_leads_to_the_finding(real_build):
    result = invoke(real_build.root, "explain", "vitamin B12 deficiency")
    clean_exit(result, 0)
    assert squash(result.stdout) == ("What can lead to vitamin B12 deficiency nothing in this graph leads to "
                                     "vitamin B12 deficiency within 4 hops")
