"""Tests of the article parser: on the real source article and on small hand-made articles of its format."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anemia_kg.article import ArticleError, load_article, parse_article
from anemia_kg.model import Article, EvidenceUnit, Reference, UnitKind

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "data" / "source" / "article.txt"

LEAD_IN = "Vitamin B12 deficiency is strongly associated with neurological manifestations that include"
S1 = "Relationship Between Anemia and Neurological Symptoms"
S1_1 = "Vitamin B12 Deficiency Anemia"
MECH = "Mechanisms of Symptom Development"
EVAL = "Clinical Evaluation"


@pytest.fixture(scope="module")
def article() -> Article:
    return load_article(SOURCE)


def by_text(article: Article, text: str) -> EvidenceUnit:
    """The single unit with exactly this text."""
    found = [u for u in article.units if u.text == text]
    assert len(found) == 1, (text, found)
    return found[0]


def check_offsets(article: Article) -> None:
    """The anchoring invariant, and each unit lies on the line it names."""
    lines = article.text.split("\n")
    for u in article.units:
        assert article.text[u.start : u.end] == u.text
        assert u.text in lines[u.line - 1]


# --- the real article ------------------------------------------------------------------------------


def test_real_counts_by_kind(article: Article) -> None:
    counts = Counter(u.kind for u in article.units)
    assert counts == {
        UnitKind.TITLE: 1,
        UnitKind.QUESTION: 1,
        UnitKind.ANSWER: 1,
        UnitKind.HEADING: 7,
        UnitKind.PARAGRAPH: 3,
        UnitKind.ITEM: 8,
        UnitKind.BULLET: 41,
    }
    assert [u.id for u in article.units] == [f"u{i:03d}" for i in range(1, 63)]


def test_real_offsets_invariant_for_every_unit(article: Article) -> None:
    check_offsets(article)
    assert [u.start for u in article.units] == sorted(u.start for u in article.units)


def test_real_title_question_answer(article: Article) -> None:
    assert (
        article.title
        == "Can anemia cause muscle cramping, joint pain, and worsening of peripheral neuropathy?"
    )
    assert article.question == (
        "Can Anemia Cause Muscle Cramping, Joint Pain, and Worsening of Peripheral Neuropathy?"
    )
    assert article.answer is not None and article.answer.startswith("Yes, anemia can cause or exacerbate")
    assert article.answer.endswith("which directly impacts neurological function.")
    kinds = [(u.kind, u.line) for u in article.units[:3]]
    assert kinds == [(UnitKind.TITLE, 1), (UnitKind.QUESTION, 18), (UnitKind.ANSWER, 20)]
    assert article.last_updated == "2025-09-21"
    assert article.path == str(SOURCE)


def test_real_headings_nest_only_when_consecutive(article: Article) -> None:
    headings = [(u.text, u.section) for u in article.units if u.kind is UnitKind.HEADING]
    assert headings == [
        (S1, ()),
        (S1_1, (S1,)),
        (MECH, ()),
        (EVAL, ()),
        ("Treatment Approach", ()),
        ("Prognosis and Recovery", ()),
        ("Important Considerations", ()),
    ]


def test_real_nested_bullets_under_lead_in_bullet(article: Article) -> None:
    lead = by_text(article, f"{LEAD_IN}:")
    assert (lead.kind, lead.depth, lead.parent, lead.citations) == (UnitKind.BULLET, 1, None, ())
    assert lead.section == (S1, S1_1)
    child = by_text(article, "Peripheral neuropathy (most common neurological manifestation)")
    assert (child.depth, child.parent, child.citations, child.line) == (2, lead.id, (1,), 28)
    second = by_text(article, "The neurological damage occurs through:")
    assert (second.depth, second.parent) == (1, None)
    myelin = by_text(article, "Disruption of myelin in both central and peripheral nervous systems")
    assert (myelin.parent, myelin.citations) == (second.id, (2,))


def test_real_items_extend_section_and_parent_bullets(article: Article) -> None:
    item = by_text(article, "Peripheral Neuropathy:")
    assert (item.kind, item.depth, item.section, item.parent) == (UnitKind.ITEM, 1, (MECH,), None)
    assert item.line == 40
    bullet = by_text(article, "B12 deficiency causes demyelination in peripheral nerves")
    assert (bullet.section, bullet.parent, bullet.depth) == ((MECH, "Peripheral Neuropathy"), item.id, 2)
    damage = by_text(
        article,
        "Damage to peripheral nerve fibers can be extensive and may not fully recover "
        "if treatment is delayed",
    )
    assert damage.citations == (1, 4)
    assert by_text(article, "Joint Pain:").kind is UnitKind.ITEM


def test_real_lead_in_paragraph_parents_top_level_items(article: Article) -> None:
    para = by_text(article, "When evaluating a patient with anemia and neurological symptoms:")
    assert (para.kind, para.section, para.depth, para.parent) == (UnitKind.PARAGRAPH, (EVAL,), 0, None)
    items = [u for u in article.units if u.kind is UnitKind.ITEM and u.section == (EVAL,)]
    assert [u.text for u in items] == [
        "Laboratory Testing:",
        "Neurological Assessment:",
        "Electrophysiological Studies:",
    ]
    assert {u.parent for u in items} == {para.id}
    folate = by_text(article, "Folate levels (can present with similar symptoms)")
    assert (folate.parent, folate.section) == (items[0].id, (EVAL, "Laboratory Testing"))


def test_real_citations(article: Article) -> None:
    differentiate = by_text(article, "Can help differentiate between axonal and demyelinating patterns")
    assert differentiate.citations == (5, 3)
    resolution = by_text(
        article,
        "Improvement in neurological symptoms may begin within days of starting B12 treatment, "
        "with complete resolution possible within 3 months",
    )
    assert resolution.citations == (3,)
    assert (resolution.section, resolution.depth, resolution.parent) == (("Prognosis and Recovery",), 1, None)
    epo = by_text(
        article, "Erythropoietic-stimulating agents for persistent symptomatic anemia (hemoglobin <10g/dL)"
    )
    assert epo.citations == (1,)
    dapsone = by_text(
        article,
        "Anemia due to other causes (lead toxicity, dapsone toxicity) can also cause peripheral neuropathy",
    )
    assert dapsone.citations == (6, 7)
    assert article.cited_numbers == (1, 2, 3, 4, 5, 6, 7)
    assert article.unresolved_citations == (7,)


def test_real_uncited_units(article: Article) -> None:
    uncited = [
        u.text for u in article.units if u.kind in (UnitKind.BULLET, UnitKind.PARAGRAPH) and not u.citations
    ]
    assert len(uncited) == 12
    assert "Metabolic disturbances affecting muscle function" in uncited
    assert "Vitamin B12 levels (serum cobalamin)" in uncited
    last = article.units[-1]
    assert last.kind is UnitKind.PARAGRAPH and last.line == 105
    assert last.text.startswith("Early diagnosis and prompt treatment")
    assert last.text.endswith("improve outcomes.")
    assert last.section == ("Important Considerations",)


def test_real_references(article: Article) -> None:
    refs = article.references
    assert [(r.number, r.kind, r.year, r.line) for r in refs] == [
        (1, "Guideline", 2025, 109),
        (2, "Research", 1980, 115),
        (3, "Research", 2005, 121),
        (4, "Research", 1995, 127),
        (5, "Guideline", 2025, 133),
        (6, "Research", 1990, 139),
    ]
    venue = "Dr.Oracle Medical Advisory Board & Editors"
    assert refs[0] == Reference(1, "Guideline", "Guideline Directed Topic Overview", venue, 2025, 109)
    assert refs[1].title == "The neuropsychiatry of megaloblastic anaemia."
    assert refs[1].venue == "British medical journal"
    assert refs[2].title == "[Reversible peripheral neuropathy induced by vitamin B12 deficiency]."
    assert refs[3].title == "Nondiabetic neuropathy in a patient with diabetes."
    assert refs[4].title == "Peripheral Neuropathy"
    assert "dapsone" in refs[5].title
    assert refs[5].venue == "The Journal of the Association of Physicians of India"


def test_real_chrome_and_footer_are_not_units(article: Article) -> None:
    assert all(u.line == 1 or 18 <= u.line <= 105 for u in article.units)
    texts = {u.text for u in article.units}
    for chrome in ("Article Review Status", "Approved", "Personalize", "Help us tailor your experience"):
        assert chrome not in texts
    assert not any("Medical Advisory Board" in t or "Disclaimer" in t or "follow-up" in t for t in texts)
    assert "References" not in texts and "Guideline" not in texts


# --- hand-made articles ----------------------------------------------------------------------------

CHROME = """\
Article Review Status
Submitted
Under Review
Approved

Last updated: March 3, 2024View editorial policy

Personalize
"""


def make(body: str, refs: str = "", title: str = "Does X cause Y?") -> str:
    """A small article: title, chrome, repeated question, the given body, then an optional reference list."""
    text = f"{title}\n\n{CHROME}\n{title.upper()}\n\nYes, X causes Y.\n\n{body}"
    return text + (f"\nReferences\n\n{refs}" if refs else "")


REFS_2 = (
    "Research\n\nFirst study.\n\nSome journal, 2001\n\nGuideline\n\nSecond guideline\n\nA society, 2020\n"
)


def test_three_levels_nest_by_relative_indentation() -> None:
    body = (
        "Topic\n\n"
        "   1. Mechanism:\n"
        "      • Lead-in bullet:\n"
        "         • Deep fact 2\n"
        "      • Sibling fact 1\n"
        "   2. Other:\n"
        "      • Other fact\n"
    )
    a = parse_article(make(body, REFS_2))
    check_offsets(a)
    item = by_text(a, "Mechanism:")
    lead = by_text(a, "Lead-in bullet:")
    deep = by_text(a, "Deep fact")
    sibling = by_text(a, "Sibling fact")
    assert (item.depth, lead.depth, deep.depth, sibling.depth) == (1, 2, 3, 2)
    assert (lead.parent, deep.parent, sibling.parent) == (item.id, lead.id, item.id)
    assert deep.section == ("Topic", "Mechanism") and deep.citations == (2,)
    other = by_text(a, "Other fact")
    assert (other.section, other.parent, other.depth) == (("Topic", "Other"), by_text(a, "Other:").id, 2)


def test_multi_number_and_phrase_final_numbers() -> None:
    body = (
        "Topic\n\n  • Fact with three citations 10, 2, 33\n  • Resolution within 3 months 2\n  • Dose of 2\n"
    )
    a = parse_article(make(body, REFS_2))
    assert by_text(a, "Fact with three citations").citations == (10, 2, 33)
    assert by_text(a, "Resolution within 3 months").citations == (2,)
    assert by_text(a, "Dose of").citations == (2,)  # the documented rule: a trailing number is a citation
    assert a.unresolved_citations == (10, 33)


def test_missing_reference_number_is_reported_not_repaired() -> None:
    a = parse_article(make("Topic\n\n  • A cited fact 9\n  • Another 1, 2\n", REFS_2))
    assert len(a.references) == 2
    assert a.cited_numbers == (1, 2, 9)
    assert a.unresolved_citations == (9,)
    assert a.reference(9) is None and a.reference(2) is not None


def test_uncited_bullet_and_citations_on_answer() -> None:
    text = "Q?\n\nQ?\n\nYes, it does 1\n\nTopic\n\n  • Nothing cited here\n"
    a = parse_article(text)
    assert a.answer == "Yes, it does" and by_text(a, "Yes, it does").citations == (1,)
    bullet = by_text(a, "Nothing cited here")
    assert (bullet.citations, bullet.kind, bullet.section) == ((), UnitKind.BULLET, ("Topic",))


def test_page_chrome_is_skipped() -> None:
    a = parse_article(make("Topic\n\n  • Fact 1\n", REFS_2))
    check_offsets(a)
    assert [u.kind for u in a.units] == [
        UnitKind.TITLE,
        UnitKind.QUESTION,
        UnitKind.ANSWER,
        UnitKind.HEADING,
        UnitKind.BULLET,
    ]
    assert a.question == "DOES X CAUSE Y?"
    assert a.last_updated == "2024-03-03"


def test_no_title_repeat_falls_back_to_after_last_chrome_line(caplog: pytest.LogCaptureFixture) -> None:
    text = (
        f"Does X cause Y?\n\n{CHROME}\nSome widget text\n\nPersonalize\n\n"
        "X causes Y in most patients.\n\nTopic\n\n  • F 1\n"
    )
    with caplog.at_level(logging.WARNING, logger="anemia_kg.article"):
        a = parse_article(text)
    check_offsets(a)
    assert a.question is None
    assert a.answer == "X causes Y in most patients."
    assert [u.text for u in a.units] == ["Does X cause Y?", "X causes Y in most patients.", "Topic", "F"]
    assert "Some widget text" in caplog.text  # skipped, but not silently


def test_no_question_and_no_answer_is_an_error() -> None:
    with pytest.raises(ArticleError, match="no question"):
        parse_article("Title\n\nTopic heading\n\n  • a bullet\n")


def test_body_lines_are_never_dropped() -> None:
    body = "Topic\n\n  • Bullet:\n      indented continuation text\n"
    a = parse_article(make(body))
    cont = by_text(a, "indented continuation text")
    bullet = by_text(a, "Bullet:")
    assert (cont.kind, cont.parent, cont.section) == (UnitKind.PARAGRAPH, bullet.id, ("Topic",))
    bare = make("Topic\n\n  •\n")
    with pytest.raises(ArticleError) as err:
        parse_article(bare)
    assert [p.line for p in err.value.problems] == [bare.split("\n").index("  •") + 1]
    assert "bullet marker without text" in str(err.value)


def test_footer_without_reference_list_ends_body() -> None:
    a = parse_article(make("Topic\n\n  • Fact\n\nProfessional Medical Disclaimer\n\nSome legal text.\n"))
    assert a.units[-1].text == "Fact" and a.references == ()


def test_venue_without_year_only_when_clearly_third_line() -> None:
    refs = (
        "Research\n\nA title\n\nA journal without year\n\n"
        "Research\n\nB title\n\nB journal, 1999\n\nFooter text here\n"
    )
    a = parse_article(make("Topic\n\n  • Fact 1\n", refs))
    venues = [(r.venue, r.year) for r in a.references]
    assert venues == [("A journal without year", None), ("B journal", 1999)]


def test_malformed_reference_list_names_the_line() -> None:
    refs = "Research\n\nA title\n\nProfessional Medical Disclaimer\n\nLegal text.\n"
    text = make("Topic\n\n  • Fact 1\n", refs)
    with pytest.raises(ArticleError) as err:
        parse_article(text, "art.txt")
    kind_line = text.split("\n").index("Research") + 1
    assert [(p.file, p.line) for p in err.value.problems] == [("art.txt", kind_line)]
    assert f"art.txt:{kind_line}:" in str(err.value)


def test_kind_line_with_nothing_after_is_an_error() -> None:
    text = make("Topic\n\n  • Fact 1\n", REFS_2 + "\nResearch\n")
    with pytest.raises(ArticleError) as err:
        parse_article(text)
    assert err.value.problems[0].line == len(text.split("\n")) - 1
    assert "reference 3" in str(err.value)


@pytest.mark.parametrize("text", ["", "   \n\n\t\n"])
def test_empty_text_is_an_error(text: str) -> None:
    with pytest.raises(ArticleError, match="empty"):
        parse_article(text, "empty.txt")


def test_non_utf8_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Q?\n\nQ?\n\nYes \xff no.\n")
    with pytest.raises(ArticleError) as err:
        load_article(bad)
    assert str(bad) in str(err.value) and "UTF-8" in str(err.value)
    assert err.value.problems[0].line == 5


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ArticleError) as err:
        load_article(missing)
    assert str(missing) in str(err.value)


def test_crlf_and_bom_keep_offsets(tmp_path: Path) -> None:
    path = tmp_path / "crlf.txt"
    path.write_bytes(("\ufeff" + make("Topic\n\n  • Fact 1\n", REFS_2)).replace("\n", "\r\n").encode("utf-8"))
    a = load_article(path)
    check_offsets(a)
    assert a.title == "Does X cause Y?" and by_text(a, "Fact").citations == (1,)
    assert len(a.references) == 2


# --- properties ------------------------------------------------------------------------------------


def assert_parses_or_rejects(text: str) -> None:
    try:
        a = parse_article(text)
    except ArticleError as err:
        assert err.problems
        return
    ids = [u.id for u in a.units]
    assert len(set(ids)) == len(ids)
    for u in a.units:
        assert a.text[u.start : u.end] == u.text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_parses_or_raises_article_error(text: str) -> None:
    assert_parses_or_rejects(text)


# fmt: off
FRAGMENTS = [
    "", "Q?", "q?", "Topic", "Sub topic", "Para.", "Lead:", "  • b 1", "    • c 2, 3", "  1. Item:",
    "      • d", "•", "  2.", "References", "Research", "Title.", "Venue, 2001", "Venue", "Approved",
    "Last updated: February 30, 2024", "Professional Medical Disclaimer", "\tx 999", " 0",
]
# fmt: on


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25))
def test_format_like_text_parses_or_raises_article_error(lines: list[str]) -> None:
    assert_parses_or_rejects("\n".join(lines))
