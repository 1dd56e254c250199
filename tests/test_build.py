"""The build end to end: files, report, faithfulness of the RDF to the article, determinism and atomicity.

The real project is built by subprocesses started from conftest (once per seed); these tests only read
that output. Tests that break a build work on private copies (the real one for a curation failure, the tiny
one when the build must get as far as writing).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyoxigraph as ox
import pytest
import yaml
from typer.testing import CliRunner

import anemia_kg.build as build_module
from anemia_kg.build import build
from anemia_kg.cli import app
from anemia_kg.paths import Paths
from anemia_kg.query import run
from anemia_kg.store import open_memory_store
from conftest import subprocess_env

DATASET_FILES = ("anemia-kg.jsonld", "anemia-kg.nq", "anemia-kg.trig", "anemia-kg.ttl")
BUILT_FILES = (*DATASET_FILES, "build-report.json")
BASE = "https://w3id.org/anemia-kg/"
AKG = BASE + "ontology#"
ENT, CLAIM, SRC, GRAPH = BASE + "entity/", BASE + "claim/", BASE + "source/", BASE + "graph/"
GRAPHS = tuple(GRAPH + g for g in ("ontology", "entities", "claims", "provenance"))
NEGATED_EXAMPLE = "anemia-severity-not-necessarily-correlated-with-neurological-severity"
CITES_6_AND_7 = "toxic-anemias-can-cause-peripheral-neuropathy"


# --- shared views of the real build ------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(real_build) -> Path:
    return real_build.root / "data" / "build"


@pytest.fixture(scope="module")
def claims_yaml(real_build) -> dict:
    """The curated claims, read with plain PyYAML (not the project's loader)."""
    return yaml.safe_load((real_build.root / "data" / "claims.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def claims(claims_yaml) -> dict[str, dict]:
    return {c["id"]: c for c in claims_yaml["claims"]}


@pytest.fixture(scope="module")
def source_id(claims_yaml) -> str:
    return claims_yaml["source"]["id"]


@pytest.fixture(scope="module")
def article_text(real_build) -> str:
    """The article as Unicode code points, read without the project's parser."""
    return (real_build.root / "data" / "source" / "article.txt").read_bytes().decode("utf-8")


@pytest.fixture(scope="module")
def store(built) -> ox.Store:
    return open_memory_store(built / "anemia-kg.nq")


def rows(store: ox.Store, sparql: str) -> list[dict[str, str]]:
    """SELECT results as dicts of plain strings (IRIs and literal values)."""
    results = run(store, sparql)
    names = [v.value for v in results.variables]
    return [{n: (sol[n].value if sol[n] is not None else None) for n in names} for sol in results]


def ask(store: ox.Store, sparql: str) -> bool:
    return bool(run(store, sparql))


def uncited(claim: dict) -> bool:
    return all(not q["cites"] for q in claim["evidence"])


# --- files and report ------------------------------------------------------------------------------------


def test_build_writes_every_format(real_build, built):
    assert sorted(p.name for p in built.iterdir()) == sorted(BUILT_FILES)
    assert real_build.project.leftovers() == []
    quads = {name: list(ox.parse(path=built / name)) for name in ("anemia-kg.nq", "anemia-kg.trig",
                                                                  "anemia-kg.jsonld")}
    as_set = {name: set(q) for name, q in quads.items()}
    assert as_set["anemia-kg.nq"] == as_set["anemia-kg.trig"] == as_set["anemia-kg.jsonld"]
    assert {q.graph_name.value for q in quads["anemia-kg.nq"]} == set(GRAPHS)
    union = {ox.Triple(q.subject, q.predicate, q.object) for q in quads["anemia-kg.nq"]}
    assert {q.triple for q in ox.parse(path=built / "anemia-kg.ttl")} == union


def test_build_report(built, claims_yaml, claims):
    report = json.loads((built / "build-report.json").read_text(encoding="utf-8"))
    cov = report["coverage"]
    assert cov["cited_units"] == cov["cited_covered"] == 32
    assert cov["percent_cited_covered"] == 100.0
    assert cov["covered"] == cov["claim_bearing_units"]
    assert cov["percent_all_covered"] == 100.0
    assert report["unresolved_citations"] == [7]
    assert report["references"] == 6
    assert report["source"] == claims_yaml["source"]["id"]
    assert report["claims"] == len(claims)
    entities = yaml.safe_load((built.parent / "entities.yaml").read_text(encoding="utf-8"))["entities"]
    assert report["entities"] == len(entities)
    assert report["negated_claims"] == sum(bool(c.get("negated")) for c in claims.values()) == 4
    assert report["uncited_claims"] == sorted(cid for cid, c in claims.items() if uncited(c))
    nquads = (built / "anemia-kg.nq").read_bytes()
    assert report["triples"] == len(nquads.splitlines())
    assert set(report["files"]) == set(DATASET_FILES)
    for name, digest in report["files"].items():
        assert hashlib.sha256((built / name).read_bytes()).hexdigest() == digest, name


# --- faithfulness to the article -------------------------------------------------------------------------

QUOTES = """
SELECT ?claim ?exact ?prefix ?suffix ?start ?end ?unit ?ustart ?uend ?utext WHERE {
  ?claim a akg:Claim ; akg:evidence ?ann .
  ?ann a oa:Annotation ; oa:hasBody ?claim ; oa:hasTarget ?target .
  ?target oa:hasSelector ?q, ?p ; dcterms:isPartOf ?unit .
  ?q a oa:TextQuoteSelector ; oa:exact ?exact ; oa:prefix ?prefix ; oa:suffix ?suffix .
  ?p a oa:TextPositionSelector ; oa:start ?start ; oa:end ?end .
  ?unit oa:start ?ustart ; oa:end ?uend ; rdf:value ?utext .
}
"""


def test_every_quote_is_the_article_text_at_its_offsets(store, article_text, claims):
    found = rows(store, QUOTES)
    assert len(found) == sum(len(c["evidence"]) for c in claims.values())
    for r in found:
        start, end, ustart, uend = int(r["start"]), int(r["end"]), int(r["ustart"]), int(r["uend"])
        where = f"{r['claim']}: {r['exact']!r}"
        assert article_text[start:end] == r["exact"], where
        assert ustart <= start < end <= uend, where
        assert article_text[ustart:uend] == r["utext"], where
        assert article_text[:start].endswith(r["prefix"]), where
        assert article_text[end:].startswith(r["suffix"]), where


def test_every_claim_statement_has_an_annotation(store, claims):
    found = rows(store, """
        SELECT ?claim (COUNT(DISTINCT ?ann) AS ?n) WHERE {
          ?claim a akg:Claim, rdf:Statement .
          OPTIONAL { ?claim akg:evidence ?ann . ?ann a oa:Annotation }
        } GROUP BY ?claim""")
    counts = {r["claim"].removeprefix(CLAIM): int(r["n"]) for r in found}
    assert set(counts) == set(claims)
    assert counts == {cid: len(c["evidence"]) for cid, c in claims.items()}
    assert min(counts.values()) >= 1


def test_negated_claims_have_no_direct_edge(store, claims):
    assert ask(store, f"ASK {{ claim:{NEGATED_EXAMPLE} akg:negated true ; akg:negation ?words }}")
    assert not ask(store, "ASK { ent:anemia akg:correlatesWith ent:neurological_symptoms }")
    assert not ask(store, "ASK { GRAPH ?g { ent:anemia akg:correlatesWith ent:neurological_symptoms } }")
    negated = [c for c in claims.values() if c.get("negated")]
    assert len(negated) == 4
    for c in negated:
        edge = f"ent:{c['subject']} akg:{c['predicate']} ent:{c['object']}"
        # the same triple may be asserted by another, positive claim: only then may the edge exist
        positive = [o for o in claims.values() if not o.get("negated")
                    and (o["subject"], o["predicate"], o["object"]) == (c["subject"], c["predicate"], c["object"])]
        assert ask(store, f"ASK {{ {edge} }}") == bool(positive), c["id"]
    for c in claims.values():
        if not c.get("negated"):
            assert ask(store, f"ASK {{ ent:{c['subject']} akg:{c['predicate']} ent:{c['object']} }}"), c["id"]


def test_hedged_claims_keep_hedge_and_possible_certainty(store, claims):
    assert ask(store, """ASK { claim:b12-deficiency-may-cause-neuropathy-in-diabetes
                                 akg:certainty akg:Possible ; akg:hedge "may be due to" ;
                                 rdf:predicate akg:mayCause }""")
    hedged = {cid: c for cid, c in claims.items() if c.get("certainty") == "possible"}
    assert len(hedged) == 24
    found = rows(store, "SELECT ?claim ?hedge WHERE { ?claim akg:certainty akg:Possible ; akg:hedge ?hedge }")
    assert {r["claim"].removeprefix(CLAIM): r["hedge"] for r in found} == {
        cid: c["hedge"] for cid, c in hedged.items()}
    assert not ask(store, "ASK { ?claim akg:certainty akg:Possible ; rdf:predicate akg:causes }")


def test_citations_resolve_only_to_listed_references(store, source_id):
    cites = rows(store, f"SELECT ?c WHERE {{ claim:{CITES_6_AND_7} akg:citation ?c }}")
    assert {r["c"] for r in cites} == {f"{SRC}{source_id}-cite-6", f"{SRC}{source_id}-cite-7"}
    derived = rows(store, f"SELECT ?r WHERE {{ claim:{CITES_6_AND_7} prov:wasDerivedFrom ?r }}")
    assert [r["r"] for r in derived] == [f"{SRC}{source_id}-ref-6"]
    cite7, ref6 = f"<{SRC}{source_id}-cite-7>", f"<{SRC}{source_id}-ref-6>"
    assert ask(store, f"ASK {{ {cite7} a akg:Citation ; akg:citationNumber 7 ; akg:unresolved true }}")
    assert not ask(store, f"ASK {{ {cite7} akg:resolvesTo ?anything }}")
    assert not ask(store, f"ASK {{ <{SRC}{source_id}-ref-7> ?p ?o }}")
    assert ask(store, f"ASK {{ {ref6} akg:referenceNumber 6 ; dcterms:date \"1990\"^^xsd:gYear }}")
    assert not ask(store, "ASK { ?claim prov:wasDerivedFrom ?ref . ?cite akg:unresolved true ; akg:resolvesTo ?ref }")


def test_uncited_claims_are_supported_by_the_article_only(store, claims):
    marked = {r["claim"].removeprefix(CLAIM)
              for r in rows(store, "SELECT ?claim WHERE { ?claim akg:supportedByArticleOnly true }")}
    expected = {cid for cid, c in claims.items() if uncited(c)}
    assert len(expected) == 21
    assert marked == expected
    assert not ask(store, "ASK { ?claim akg:supportedByArticleOnly true ; akg:citation ?c }")


def test_no_blank_nodes(built):
    for name in ("anemia-kg.nq", "anemia-kg.trig", "anemia-kg.jsonld"):
        blank = [q for q in ox.parse(path=built / name)
                 if isinstance(q.subject, ox.BlankNode) or isinstance(q.object, ox.BlankNode)
                 or isinstance(q.graph_name, ox.BlankNode)]
        assert blank == [], name


def test_query_without_graph_sees_all_four_graphs(store):
    plain = {(r["s"], r["p"], r["o"]) for r in rows(store, "SELECT ?s ?p ?o WHERE { ?s ?p ?o }")}
    union = set()
    for graph in GRAPHS:
        triples = {(q.subject.value, q.predicate.value, q.object.value)
                   for q in store.quads_for_pattern(None, None, None, ox.NamedNode(graph))}
        assert triples, f"{graph} is empty"
        assert triples <= plain, f"a query without GRAPH misses triples of {graph}"
        union |= triples
    assert plain == union
    by_graph = Counter(q.graph_name.value for q in store)
    assert set(by_graph) == set(GRAPHS)


# --- determinism -----------------------------------------------------------------------------------------


def test_two_builds_with_different_hash_seeds_are_byte_identical(real_build, real_build_2):
    differing = [name for name in BUILT_FILES
                 if (real_build.root / "data" / "build" / name).read_bytes()
                 != (real_build_2.root / "data" / "build" / name).read_bytes()]
    assert not differing, f"these files differ between PYTHONHASHSEED=1 and PYTHONHASHSEED=2: {differing}"


# --- atomicity -----------------------------------------------------------------------------------------


def test_failed_rebuild_leaves_the_previous_build(real_build_copy):
    project = real_build_copy
    before = project.snapshot()
    assert sorted(before) == sorted(BUILT_FILES)
    cites = "\n        cites: [3]\n\n"  # the first of the two claims quoting this bullet: the other still covers it
    project.edit("data/claims.yaml", f'"B12 deficiency causes demyelination in peripheral nerves"{cites}',
                 f'"B12 deficiency always causes demyelination in peripheral nerves"{cites}')
    line = project.line_of("data/claims.yaml", "B12 deficiency always causes demyelination")
    result = CliRunner().invoke(app, ["--root", str(project.root), "build"])
    assert result.exit_code == 1, result.output
    assert f"data/claims.yaml:{line}:" in result.stderr
    assert project.snapshot() == before
    assert project.leftovers() == []


class Boom(RuntimeError):
    pass


def _change_claims(project) -> None:
    """A valid change, so that a successful rebuild would write different files."""
    project.edit("data/claims.yaml", "    hedge: may\n", "    hedge: may\n    note: Added to change the output.\n")


def test_failure_while_serialising_leaves_the_previous_build(tiny_built_copy, monkeypatch):
    project = tiny_built_copy
    before = project.snapshot()
    _change_claims(project)
    real_serialise, calls = build_module.serialise, []

    def failing(ds, fmt):
        calls.append(fmt)
        if len(calls) == 2:
            raise Boom(f"simulated failure serialising {fmt}")
        return real_serialise(ds, fmt)

    monkeypatch.setattr(build_module, "serialise", failing)
    with pytest.raises(Boom):
        build(Paths(project.root))
    assert len(calls) == 2
    assert project.snapshot() == before
    assert project.leftovers() == []
    monkeypatch.undo()
    build(Paths(project.root))  # the same change without the failure does change the output
    assert project.snapshot()["anemia-kg.nq"] != before["anemia-kg.nq"]


def test_failure_while_writing_files_leaves_the_previous_build(tiny_built_copy, monkeypatch):
    project = tiny_built_copy
    before = project.snapshot()
    _change_claims(project)
    opened = []

    def failing_open(path, *args, **kwargs):
        opened.append(path)
        if len(opened) == 3:
            raise OSError(28, "No space left on device", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(build_module, "open", failing_open, raising=False)
    with pytest.raises(OSError, match="No space left"):
        build(Paths(project.root))
    assert len(opened) == 3
    assert project.snapshot() == before
    assert project.leftovers() == []


# --- the xref verification: child processes and the cache ------------------------------------------------


def _cli_build(project) -> subprocess.CompletedProcess[str]:
    """``anemia-kg build`` in a fresh interpreter, where neither vocabulary package is loaded yet."""
    return subprocess.run([sys.executable, "-m", "anemia_kg.cli", "--root", str(project.root), "build"],
                          capture_output=True, text=True, timeout=300, env=subprocess_env(), check=False)


def test_xref_cache_changes_nothing_but_the_time(tiny):
    """A cold build writes data/.cache/xrefs.json; a warm one and one over a damaged cache write the same files."""
    assert _cli_build(tiny).returncode == 0
    cold = tiny.snapshot()
    cache = tiny.root / "data" / ".cache" / "xrefs.json"
    kept = cache.read_bytes()
    assert b"HP:0001903" in kept
    assert _cli_build(tiny).returncode == 0
    assert tiny.snapshot() == cold
    assert cache.read_bytes() == kept  # answered from the cache, so not rewritten
    cache.write_text('{"format": 1, "vocabularies": {"HP": ', encoding="utf-8")
    assert _cli_build(tiny).returncode == 0
    assert tiny.snapshot() == cold
    assert cache.read_bytes() == kept  # ignored, then written anew


def test_bad_xref_is_reported_the_same_from_children_and_cache(tiny):
    """The verdict on a wrong label comes back from a child, then from the cache: one message, at its line."""
    from anemia_kg.curation import read_entities
    from anemia_kg.ontology import load_vocabulary
    from anemia_kg.xrefs import verify_xrefs

    tiny.edit("data/entities.yaml", 'label: "Fatigue"', 'label: "Tiredness"')
    entities, _ = read_entities(tiny.path("data/entities.yaml"), load_vocabulary(tiny.path("ontology/anemia-kg.ttl")),
                                "data/entities.yaml", check_xrefs=False)
    expected = [str(p) for p in verify_xrefs(entities, "data/entities.yaml")]
    assert len(expected) == 1
    assert expected[0].startswith(f"data/entities.yaml:{tiny.line_of('data/entities.yaml', 'Tiredness')}: ")
    for _ in range(2):  # the second build finds the verdict in the cache
        done = _cli_build(tiny)
        assert done.returncode == 1, done.stdout + done.stderr
        assert [line.strip() for line in done.stderr.splitlines()[1:]] == expected
        assert not tiny.build_dir.exists()
    assert b"Tiredness" in tiny.path("data/.cache/xrefs.json").read_bytes()
