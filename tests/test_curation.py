"""Curation rejects each kind of curator mistake with one message naming the file and line, and writes nothing.

Each negative case is the valid tiny project (tests/fixtures/project) with one line changed, built with
``anemia_kg.build.build`` exactly as ``anemia-kg build`` does; a few cases mutate a copy of the real data
instead. Curation fails before SHACL, so these builds are fast. The coverage tests read the real article.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from anemia_kg.article import load_article
from anemia_kg.build import build
from anemia_kg.curation import CurationError, curate
from anemia_kg.ontology import load_vocabulary
from anemia_kg.paths import Paths

REPO = Path(__file__).resolve().parents[1]
ARTICLE = "data/source/article.txt"
CLAIMS = "data/claims.yaml"
ENTITIES = "data/entities.yaml"


def rejected(project) -> list[str]:
    """Build the project: it must fail in curation, leaving no output and no temporary folder."""
    with pytest.raises(CurationError) as info:
        build(Paths(project.root))
    assert not project.build_dir.exists(), "a rejected build wrote data/build"
    assert project.leftovers() == []
    return [str(p) for p in info.value.problems]


def only_problem(project) -> str:
    """The single problem a rejected build reports (a second, consequential message is noise)."""
    problems = rejected(project)
    assert len(problems) == 1, "expected exactly one message, got:\n" + "\n".join(problems)
    return problems[0]


# --- the tiny project itself ---------------------------------------------------------------------


def test_tiny_project_is_valid_and_its_waiver_counts(tiny):
    """The base of every negative case passes curation: a rejection below is caused by its one change."""
    article = load_article(tiny.path(ARTICLE))
    result = curate(article, tiny.path(ENTITIES), tiny.path(CLAIMS),
                    load_vocabulary(tiny.path("ontology/anemia-kg.ttl")))
    cov = result.coverage
    rest = next(u for u in article.units if u.text == "Rest is often advised")
    assert cov.waived == frozenset({rest.id})
    assert cov.uncovered == ()
    assert {u.id for u in cov.cited} <= cov.covered
    assert len(result.kb.claims) == 5
    assert len(result.kb.waivers) == 1


def test_valid_waiver_is_counted_in_the_build_report(tiny_built):
    report = json.loads((tiny_built.build_dir / "build-report.json").read_text(encoding="utf-8"))
    assert report["coverage"]["waived"] == 1
    assert report["coverage"]["cited_covered"] == report["coverage"]["cited_units"] == 4
    assert report["coverage"]["covered"] + report["coverage"]["waived"] == report["coverage"]["claim_bearing_units"]


# --- quotes ----------------------------------------------------------------------------------------


def test_quote_not_in_article_hints_the_closest_line(tiny):
    tiny.edit(CLAIMS, '"Iron deficiency causes anemia"', '"Iron deficiency always causes anemia"')
    line = tiny.line_of(CLAIMS, "Iron deficiency always causes anemia")
    closest = tiny.line_of(ARTICLE, "Iron deficiency causes anemia")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "iron-deficiency-causes-anemia" in msg
    assert "not in the article verbatim" in msg
    assert f"closest text is on article line {closest}" in msg


def test_quote_spanning_two_bullets(tiny):
    """Two bullets copied together, citation number and bullet marker included."""
    tiny.edit(CLAIMS, '"Iron deficiency causes anemia"', '"Iron deficiency causes anemia 1 • Anemia may cause fatigue"')
    line = tiny.line_of(CLAIMS, "Iron deficiency causes anemia 1")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "runs across two evidence units" in msg


def test_quote_with_wrong_citation_says_what_the_article_cites(tiny):
    tiny.edit(CLAIMS, "cites: [1, 2]", "cites: [1]")
    line = tiny.line_of(CLAIMS, '"Anemia may cause fatigue in adults"')
    article_line = tiny.line_of(ARTICLE, "Anemia may cause fatigue in adults")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert f"the article cites [1, 2] after this text (line {article_line})" in msg
    assert "write cites: [1, 2]" in msg


def test_wrong_citation_on_real_data(real_project):
    quote = '"Damage to peripheral nerve fibers can be extensive and may not fully recover if treatment is delayed"'
    real_project.edit(CLAIMS, f"{quote}\n        cites: [1, 4]", f"{quote}\n        cites: [4]")
    line = real_project.line_of(CLAIMS, quote)
    msg = only_problem(real_project)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "b12-treatment-may-not-fully-reverse-peripheral-neuropathy-if-delayed" in msg
    assert "write cites: [1, 4]" in msg


def field_line(project, claim_id: str, field: str) -> int:  # noqa: ANN001
    """The line of ``field:`` inside claim ``claim_id`` of the claims file (problems with a field point there)."""
    start = project.line_of(CLAIMS, f"id: {claim_id}")
    lines = project.text(CLAIMS).split("\n")
    for n in range(start, len(lines)):  # 0-based index ``start`` is the line after the id's
        if lines[n].strip().startswith("- id:"):
            break
        if lines[n].strip().startswith(f"{field}:"):
            return n + 1
    raise AssertionError(f"claim {claim_id} has no {field}: line")


# --- entities and the ontology -----------------------------------------------------------------------


def test_unknown_entity_suggests_the_close_one(tiny):
    tiny.edit(CLAIMS, "subject: iron_deficiency\n    predicate: causes",
              "subject: iron_deficency\n    predicate: causes")
    line = field_line(tiny, "iron-deficiency-causes-anemia", "subject")  # the field, not the claim's first line
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "subject 'iron_deficency' is not an entity" in msg
    assert "did you mean 'iron_deficiency'?" in msg


def test_unknown_hpo_id(tiny):
    tiny.edit(ENTITIES, "HP:0012378", "HP:9999999")
    line = tiny.line_of(ENTITIES, "HP:9999999")
    msg = only_problem(tiny)
    assert msg.startswith(f"{ENTITIES}:{line}: ")
    assert "HP:9999999 is not in HPO" in msg


def test_wrong_hpo_label(tiny):
    tiny.edit(ENTITIES, 'label: "Fatigue"', 'label: "Tiredness"')
    line = tiny.line_of(ENTITIES, "Tiredness")
    msg = only_problem(tiny)
    assert msg.startswith(f"{ENTITIES}:{line}: ")
    assert "label should be 'Fatigue'" in msg
    assert "not 'Tiredness'" in msg


def test_unknown_predicate_suggests_the_close_one(tiny):
    tiny.edit(CLAIMS, "predicate: evaluatedBy", "predicate: evaluatedby")
    line = field_line(tiny, "anemia-evaluated-by-complete-blood-count", "predicate")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "predicate 'evaluatedby' is not a claim predicate" in msg
    assert "did you mean 'evaluatedBy'?" in msg


def test_an_unknown_predicate_with_no_close_one_lists_the_predicates(tiny):
    tiny.edit(CLAIMS, "predicate: evaluatedBy", "predicate: zzz")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{field_line(tiny, 'anemia-evaluated-by-complete-blood-count', 'predicate')}: ")
    assert "predicate 'zzz' is not a claim predicate of the ontology; they are: " in msg
    assert all(f" {p}," in msg or msg.endswith(f" {p}") for p in ("causes", "mayCause", "evaluatedBy", "treats"))


def test_subject_outside_the_predicate_domain(tiny):
    """A laboratory test cannot cause anything."""
    tiny.edit(CLAIMS, "subject: iron_deficiency\n    predicate: causes",
              "subject: complete_blood_count\n    predicate: causes")
    line = field_line(tiny, "iron-deficiency-causes-anemia", "subject")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "subject 'complete_blood_count' is a LaboratoryTest" in msg
    assert "'causes' needs a ClinicalPhenomenon as subject" in msg


# --- qualifiers --------------------------------------------------------------------------------------


def test_possible_without_hedge(tiny):
    tiny.edit(CLAIMS, "    hedge: may\n", "")
    line = field_line(tiny, "anemia-may-cause-fatigue", "certainty")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "certainty 'possible' needs the hedge words" in msg


def test_hedged_claim_cannot_use_causes(tiny):
    tiny.edit(CLAIMS, "predicate: mayCause\n    object: fatigue\n    certainty: possible\n    hedge: may",
              "predicate: causes\n    object: fatigue\n    certainty: possible\n    hedge: may")
    line = field_line(tiny, "anemia-may-cause-fatigue", "predicate")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "cannot use 'causes'" in msg
    assert "use 'mayCause'" in msg


def test_negated_without_negation_words(tiny):
    tiny.edit(CLAIMS, "    negation: not always caused by\n", "")
    line = field_line(tiny, "fatigue-not-always-caused-by-anemia", "negated")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "negated: true needs the negating words" in msg


def test_qualifier_not_verbatim_in_the_quotes(tiny):
    tiny.edit(CLAIMS, "condition: particularly when it leads to anemia", "condition: particularly in adults")
    line = field_line(tiny, "iron-deficiency-may-cause-fatigue", "condition")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "condition 'particularly in adults' is not in any of the claim's quotes" in msg


# --- the YAML files themselves -------------------------------------------------------------------------


def test_yaml_syntax_error_names_the_line(tiny):
    """An unquoted value containing ': ' is a YAML error on exactly that line."""
    tiny.edit(CLAIMS, "condition: particularly when it leads to anemia",
              "condition: particularly: when it leads to anemia")
    line = tiny.line_of(CLAIMS, "condition: particularly: when")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "YAML syntax error" in msg


@pytest.mark.parametrize(("old", "new", "words"), [
    ("    object: anemia\n", "    object anemia\n", "could not find expected ':'"),  # a key without its colon
    ("    object: anemia\n", "    object: [anemia\n", "while parsing a flow sequence"),  # a bracket never closed
])
def test_a_token_left_open_is_named_on_the_line_it_begins(tiny, old, new, words):
    """PyYAML notices these a line or more later; the message names the line to fix and says where it noticed."""
    tiny.edit(CLAIMS, old, new)
    line = tiny.line_of(CLAIMS, new.strip().splitlines()[0])
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: YAML syntax error: ")
    assert words in msg
    noticed = int(re.search(r"\(on line (\d+)\)", msg).group(1))
    assert noticed > line


def test_duplicate_yaml_key(tiny):
    tiny.edit(CLAIMS, "    object: anemia\n", "    object: anemia\n    object: fatigue\n")
    first = tiny.line_of(CLAIMS, "    object: anemia")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{first + 1}: ")
    assert f"duplicate key 'object' (first on line {first})" in msg


def test_duplicate_claim_id(tiny):
    tiny.edit(CLAIMS, "id: anemia-evaluated-by-complete-blood-count", "id: anemia-may-cause-fatigue")
    first = tiny.line_of(CLAIMS, "id: anemia-may-cause-fatigue")
    second = tiny.line_of(CLAIMS, "id: anemia-may-cause-fatigue", occurrence=2)
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{second}: ")
    assert f"the id is already used on line {first}" in msg


def test_unknown_field_typo(tiny):
    """A misspelt key is one mistake: one message, on the misspelt key's line."""
    tiny.edit(CLAIMS, "predicate: evaluatedBy", "predicat: evaluatedBy")
    line = tiny.line_of(CLAIMS, "predicat: evaluatedBy")
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "'predicat'" in msg


# --- coverage and waivers --------------------------------------------------------------------------


def test_uncovered_cited_unit_names_the_article_line(real_project):
    """Removing the only claim that quotes a cited bullet leaves that bullet uncovered."""
    text = real_project.text(CLAIMS)
    claim_id = "anemia-severity-not-necessarily-correlated-with-neurological-severity"
    block = re.search(rf"  - id: {claim_id}\n.*?(?=\n  # ---)", text, re.S)
    assert block is not None
    real_project.edit(CLAIMS, block.group(0), "")
    line = real_project.line_of(ARTICLE, "The severity of anemia does not necessarily correlate")
    msg = only_problem(real_project)
    assert msg.startswith(f"{ARTICLE}:{line}: ")
    assert "cited [2] bullet is covered by no claim" in msg
    assert "The severity of anemia does not necessarily correlate" in msg


def test_uncovered_uncited_unit_asks_for_claim_or_waiver(tiny):
    waiver = '  - quote: "Rest is often advised"\n    reason: General advice that names no entity of the graph.\n'
    tiny.edit(CLAIMS, waiver, "")
    line = tiny.line_of(ARTICLE, "Rest is often advised")
    msg = only_problem(tiny)
    assert msg.startswith(f"{ARTICLE}:{line}: ")
    assert "uncited bullet is covered by no claim" in msg
    assert "or a waiver" in msg


def test_waiver_of_a_cited_unit_is_rejected(tiny):
    tiny.edit(CLAIMS, "waivers:\n", 'waivers:\n  - quote: "A complete blood count detects anemia"\n'
              "    reason: It only names a test.\n")
    line = tiny.line_of(CLAIMS, 'quote: "A complete blood count detects anemia"', occurrence=2)
    msg = only_problem(tiny)
    assert msg.startswith(f"{CLAIMS}:{line}: ")
    assert "the unit cites [2]" in msg
    assert "a cited unit must be covered by a claim" in msg


# --- coverage of the real article --------------------------------------------------------------------

REFERENCES = [  # read off the article's reference list by hand
    (1, "Guideline", "Guideline Directed Topic Overview", 2025),
    (2, "Research", "The neuropsychiatry of megaloblastic anaemia.", 1980),
    (3, "Research", "[Reversible peripheral neuropathy induced by vitamin B12 deficiency].", 2005),
    (4, "Research", "Nondiabetic neuropathy in a patient with diabetes.", 1995),
    (5, "Guideline", "Peripheral Neuropathy", 2025),
    (6, "Research", "Peripheral neuropathy and haemolytic anaemia with cherry red spot on macula in dapsone poisoning.",
     1990),
]


@pytest.fixture(scope="module")
def real_curation():
    article = load_article(REPO / ARTICLE)
    vocab = load_vocabulary(REPO / "ontology" / "anemia-kg.ttl")
    return curate(article, REPO / ENTITIES, REPO / CLAIMS, vocab)


def _cited_article_lines() -> set[int]:
    """Body lines of the article ending in citation numbers, found without the project's parser."""
    lines = (REPO / ARTICLE).read_text(encoding="utf-8").split("\n")
    end = lines.index("References")
    return {n for n, line in enumerate(lines[:end], start=1)
            if re.search(r"\S\s+[1-9][0-9]?(?:,\s*[1-9][0-9]?)*\s*$", line)}


def test_real_article_every_cited_unit_is_covered(real_curation):
    cov = real_curation.coverage
    cited_lines = _cited_article_lines()
    assert len(cited_lines) == 32
    assert {u.line for u in cov.cited} == cited_lines
    assert cov.percent(cov.cited) == 100.0
    uncovered = [(u.line, u.text) for u in cov.cited if u.id not in cov.covered]
    assert uncovered == []


def test_real_article_every_claim_bearing_unit_is_covered(real_curation):
    cov = real_curation.coverage
    assert cov.uncovered == ()
    assert cov.waived == frozenset()
    assert {u.id for u in cov.units} <= cov.covered
    assert cov.percent(cov.units) == 100.0


def test_real_article_references_and_unresolved_citations(real_curation):
    article = real_curation.kb.article
    assert article.unresolved_citations == (7,)
    assert article.cited_numbers == (1, 2, 3, 4, 5, 6, 7)
    assert [(r.number, r.kind, r.title, r.year) for r in article.references] == REFERENCES


# --- quote anchoring: the word index finds exactly what a scan of every unit finds ---------------


def _anchor_by_scan(article, quote: str):
    """The reference: try every unit with str.find, as anchor_quote did before its word index."""
    from anemia_kg.curation import _closest, _normalise_with_index, normalise

    wanted = normalise(quote)
    hits = []
    for unit in article.units:
        norm, index = _normalise_with_index(unit.text)
        pos = norm.find(wanted)
        if pos >= 0:
            hits.append((unit, pos, index))
    if len(hits) > 1:
        lines = ", ".join(str(u.line) for u, _, _ in hits)
        return None, f"the quote occurs in several places of the article (lines {lines}); quote more words"
    if not hits:
        if wanted in normalise(article.text):
            return None, ("the quote runs across two evidence units or includes citation numbers or list "
                          "markers; quote a part of one bullet or paragraph, without the numbers")
        return None, f"the quote is not in the article verbatim{_closest(article, wanted)}"
    unit, pos, index = hits[0]
    start = unit.start + index[pos]
    end = unit.start + index[pos + len(wanted) - 1] + 1
    return (unit.id, start, end, article.text[start:end]), None


def _same_anchoring(article, quotes) -> None:
    from anemia_kg.curation import anchor_quote, normalised_units

    units = normalised_units(article)
    for quote in quotes:
        expected = _anchor_by_scan(article, quote)
        for got in (anchor_quote(article, quote, units), anchor_quote(article, quote)):
            anchored, why = got
            simple = None if anchored is None else (anchored.unit.id, anchored.start, anchored.end, anchored.text)
            assert (simple, why) == expected, repr(quote)


REPEATED_ARTICLE = """\
Does anemia cause cramps?

Last updated: September 21, 2025

Does Anemia Cause Cramps?

Yes, anemia can cause cramps through low oxygen delivery to the muscles.

Mechanisms

  • Low oxygen delivery to the muscles causes cramps 1
  • Low  oxygen delivery to\tthe muscles may cause cramps at night 1, 2
  • Cramps are relieved by stretching the muscles 2
  • Iron deficiency causes anemia, and anemia causes cramps 1

Treatment

  • Stretching the muscles relieves cramps 2

References

Guideline

Cramps overview

Example Medical Board, 2024

Research

Cramps in anaemia.

Example journal of medicine, 2020
"""


def test_anchoring_edge_cases_match_the_scan():
    """Mid-word starts and ends, repeated text, whitespace differences, short quotes, misses, unit crossings."""
    from anemia_kg.article import parse_article

    article = parse_article(REPEATED_ARTICLE, "article.txt")
    quotes = [
        "Low oxygen delivery to the muscles causes cramps",  # one unit
        "oxygen delivery to the muscles",  # several places (three units), every line listed
        "ow oxygen delivery to the muscl",  # starts and ends mid-word, several places
        "w  oxygen\n delivery to the muscles ma",  # whitespace differences and mid-word ends, one unit
        "  Low oxygen delivery\tto the muscles may cause cramps at night  ",  # surrounding whitespace
        "anemia causes cramps",  # three words: the interior word is a whole word
        "cramps",  # one word: several places
        "muscles relieves",  # two words: found by the scan fallback
        "ng the muscl",  # three tokens, both ends partial
        "anemia",  # one word, many places
        "",  # empty: every unit
        "   ",  # whitespace only
        "Low oxygen delivery to the bones",  # an interior word no unit holds: not verbatim, closest hint
        "Stretching the muscles relieves cramps",  # unique
        "stretching the muscles relieves cramps",  # case matters, as with str.find
        "by stretching the muscles Stretching the muscles",  # two units apart: not verbatim, closest hint
        "oxygen delivery to the muscles. Mechanisms",  # runs across two adjacent units
        "cramps at night 1, 2",  # includes citation numbers
        "completely different words that appear nowhere at all",  # no closest text
    ]
    _same_anchoring(article, quotes)


def test_anchoring_every_window_of_the_real_article_matches_the_scan():
    """Windows of every unit (whole words, mid-word cuts) and windows across units give the scan's answers."""
    article = load_article(REPO / ARTICLE)
    quotes: list[str] = []
    for unit in article.units:
        text = unit.text
        quotes += [text, text[1:], text[:-1], text[2:-2], text[len(text) // 3: 2 * len(text) // 3],
                   " ".join(text.split()[:3]), " ".join(text.split()[1:4]), text.replace(" ", "\n  ", 2)]
    for a, b in zip(article.units, article.units[1:], strict=False):
        quotes.append(" ".join(a.text.split()[-2:] + b.text.split()[:2]))
    _same_anchoring(article, quotes)


def test_word_index_narrows_a_quote_to_few_units():
    """The index, not a scan, finds a quote: a quote of three or more words is tried on few units."""
    from anemia_kg.curation import normalise, normalised_units

    article = load_article(REPO / ARTICLE)
    units = normalised_units(article)
    long_units = [u for u in article.units if len(u.text.split()) >= 6]
    assert long_units
    for unit in long_units:
        tried = list(units.candidates(normalise(unit.text)))
        assert unit in [u for u, _, _ in tried]
        assert len(tried) < len(article.units) // 2, unit.text


def test_xref_problems_are_listed_with_the_other_problems(tiny):
    """The build verifies xrefs in the background, yet a failed curation still lists every problem, by line."""
    tiny.edit(ENTITIES, "HP:0012378", "HP:9999999")
    tiny.edit(ENTITIES, "type: LaboratoryTest", "type: LabTest")
    tiny.edit(CLAIMS, "subject: iron_deficiency\n    predicate: causes",
              "subject: iron_deficency\n    predicate: causes")
    problems = rejected(tiny)
    xref = f"{ENTITIES}:{tiny.line_of(ENTITIES, 'HP:9999999')}: HP:9999999 is not in HPO"
    entity_type = f"{ENTITIES}:{tiny.line_of(ENTITIES, 'id: complete_blood_count')}: entity 'complete_blood_count'"
    claim_id = "iron-deficiency-causes-anemia"
    claim = f"{CLAIMS}:{field_line(tiny, claim_id, 'subject')}: claim '{claim_id}'"
    assert any(p.startswith(xref) for p in problems), problems
    assert any(p.startswith(entity_type) and "LabTest" in p for p in problems), problems
    assert any(p.startswith(claim) and "iron_deficency" in p for p in problems), problems
    keys = [(p.split(":")[0], int(p.split(":")[1])) for p in problems]
    assert keys == sorted(keys)
