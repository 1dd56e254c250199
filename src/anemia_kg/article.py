"""Parse a question-and-answer article (plain text copied from a web page) into evidence units and references.

Every unit's ``text`` is cut from the article by offsets, never rebuilt, so ``article.text[u.start:u.end] ==
u.text`` holds by construction: claims anchored to a unit can always be located in the source again.

Rules (one unit per non-blank line; the format puts every paragraph and list entry on its own line):

* **Title and chrome.** The first non-blank line is the TITLE. The body starts at the first later line that
  repeats the title case-insensitively; that line is the QUESTION. If the title is never repeated the body
  starts after the last recognised page-chrome line ("Article Review Status", "Personalize", ...) before the
  body's end, and there is no question. Unrecognised lines before the body are logged, not made units.
  ``last_updated`` comes from a "Last updated: <Month D, YYYY>" chrome line.
* **Body end.** The body ends at a non-indented "References" line, or else at a footer line ("Professional
  Medical Disclaimer", "Have a follow-up question?"), or else at the end of the text.
* **Answer.** The first body line after the question is the ANSWER when it is non-indented and not a list
  entry. Without a question it must also not look like a heading. An article with neither a question nor an
  answer, or with nothing after its question, is rejected.
* **Headings.** A non-indented, non-list line that does not end in ``. : ? ! ; ,``, has at most 15 words and
  no trailing citation numbers. A heading directly after another heading (no content between) is a
  sub-section of it; a heading after any content starts a new top-level section.
* **Paragraphs.** Other non-indented lines. One ending in ":" is a lead-in: the top-level entries of a list
  that follows it (before the next heading or paragraph) get it as ``parent``. Indented lines without a list
  marker also become PARAGRAPH units, parented and sectioned by the list entry they are indented under.
* **Lists.** "•" lines are BULLETs, "N." lines are ITEMs, at any indentation. An entry is nested under the
  nearest earlier open entry with a smaller indentation (depth counts those entries, plus one), so depth
  follows relative indentation, whatever the number of spaces. ``parent`` is that enclosing entry. An item's
  title without its trailing colon extends the ``section`` of everything nested under it.
* **Citations.** A trailing run of 1-3 digit numbers (no leading zero) separated by commas and preceded by
  whitespace is citations, e.g. "within 3 months 3" cites (3,). The text before it must not be empty.
* **References.** After "References": repeated (kind, title, venue) line triples; the kind is one
  capitalised word, the venue ends in ", YYYY". A venue without a year is accepted only when the next line
  starts another entry or the text ends. The list ends at the first line that is not a kind line; the rest
  is footer chrome and is skipped. A kind line without title and venue is an error.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from anemia_kg.model import Article, EvidenceUnit, Problem, Reference, UnitKind

log = logging.getLogger(__name__)

__all__ = ["ArticleError", "load_article", "parse_article"]

_BULLET = re.compile(r"[•◦▪]\s*")
_ITEM = re.compile(r"[0-9]{1,2}[.)](?:\s+|\Z)")
_CITES = re.compile(r"\s+([1-9][0-9]{0,2}(?:\s*,\s*[1-9][0-9]{0,2})*)\Z")
_KIND = re.compile(r"[A-Z][A-Za-z-]*\Z")
_VENUE = re.compile(r"(.*\S)\s*,\s*([0-9]{4})\Z")
_UPDATED = re.compile(r"Last updated:\s*([A-Za-z]+ [0-9]{1,2}, [0-9]{4})")
_CHROME = re.compile(
    r"Medical Advisory Board|Educational purpose only|Article Review Status\Z|(?:Submitted|Under Review"
    r"|Approved)\Z|Last updated:|Personalize\Z|Help us tailor your experience\Z|Which best describes you\?",
    re.IGNORECASE,
)
_FOOTER = re.compile(r"Professional Medical Disclaimer\Z|Have a follow-up question\?\Z", re.IGNORECASE)
_REFERENCES = re.compile(r"References:?\Z", re.IGNORECASE)
_MAX_HEADING_WORDS = 15


class ArticleError(Exception):
    """The article cannot be parsed faithfully; ``problems`` says where and why, so a person can fix it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class _Line:
    """One line of the article with the offsets of its stripped content, so units can be sliced from it."""

    number: int
    start: int
    end: int
    indent: int
    text: str


@dataclass(frozen=True)
class _Open:
    """A list entry that later, more indented entries may nest under."""

    indent: int
    unit_id: str
    title: str | None  # an item's title (extends the section path); None for bullets


def _split_lines(text: str) -> list[_Line]:
    """Split on "\\n" only, so line numbers match what an editor shows, keeping each line's offsets."""
    lines: list[_Line] = []
    offset = 0
    for number, piece in enumerate(text.split("\n"), start=1):
        stripped = piece.strip()
        lead = len(piece) - len(piece.lstrip())
        lines.append(_Line(number, offset + lead, offset + lead + len(stripped), lead, stripped))
        offset += len(piece) + 1
    return lines


def _list_marker(text: str) -> tuple[UnitKind, int] | None:
    """The kind and length of a line's list marker ("• ", "1. "), or None for a plain line."""
    for kind, pattern in ((UnitKind.BULLET, _BULLET), (UnitKind.ITEM, _ITEM)):
        m = pattern.match(text)
        if m:
            return kind, m.end()
    return None


def _is_heading_shaped(text: str) -> bool:
    """Short, unpunctuated and uncited: headings frame content, they neither end sentences nor cite."""
    return (
        bool(text)
        and text[-1] not in ".:?!;,"
        and len(text.split()) <= _MAX_HEADING_WORDS
        and _CITES.search(text) is None
    )


def _cut_citations(text: str) -> tuple[int, tuple[int, ...]]:
    """Length of ``text`` without its trailing citation numbers, and those numbers in article order."""
    m = _CITES.search(text)
    if m is None:
        return len(text), ()
    return m.start(), tuple(int(n) for n in re.split(r"\s*,\s*", m.group(1)))


class _Parser:
    """Turns lines into units, carrying the heading path, the open list entries and the lead-in paragraph."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.units: list[EvidenceUnit] = []
        self.problems: list[Problem] = []
        self.headings: list[str] = []
        self.after_heading = False
        self.lead_in: str | None = None
        self.open: list[_Open] = []

    def emit(
        self,
        kind: UnitKind,
        line: _Line,
        start: int,
        section: tuple[str, ...],
        depth: int = 0,
        parent: str | None = None,
    ) -> EvidenceUnit:
        """Slice a unit from ``start`` to the end of ``line``; only framing kinds keep trailing numbers."""
        citations: tuple[int, ...] = ()
        length = line.end - start
        if kind not in (UnitKind.TITLE, UnitKind.QUESTION, UnitKind.HEADING):
            length, citations = _cut_citations(self.text[start : line.end])
        end = start + length
        unit = EvidenceUnit(
            id=f"u{len(self.units) + 1:03d}",
            kind=kind,
            text=self.text[start:end],
            section=section,
            citations=citations,
            start=start,
            end=end,
            line=line.number,
            depth=depth,
            parent=parent,
        )
        self.units.append(unit)
        return unit

    def _list_section(self) -> tuple[str, ...]:
        return tuple(self.headings) + tuple(o.title for o in self.open if o.title)

    def _close_deeper(self, indent: int) -> None:
        while self.open and self.open[-1].indent >= indent:
            self.open.pop()

    def heading(self, line: _Line) -> None:
        """Nest under the previous heading only when nothing came between them."""
        self.open.clear()
        if not self.after_heading:
            self.headings = []
        self.emit(UnitKind.HEADING, line, line.start, tuple(self.headings))
        self.headings.append(line.text)
        self.after_heading, self.lead_in = True, None

    def paragraph(self, line: _Line, kind: UnitKind = UnitKind.PARAGRAPH) -> EvidenceUnit:
        """A non-indented paragraph closes any list; one ending in ":" leads in the list that follows."""
        self.open.clear()
        unit = self.emit(kind, line, line.start, tuple(self.headings))
        self.lead_in = unit.id if unit.text.endswith(":") else None
        self.after_heading = False
        return unit

    def indented_text(self, line: _Line) -> None:
        """An indented line without a marker belongs to the list entry it is indented under."""
        self._close_deeper(line.indent)
        parent = self.open[-1].unit_id if self.open else self.lead_in
        self.emit(UnitKind.PARAGRAPH, line, line.start, self._list_section(), 0, parent)
        self.after_heading = False

    def list_entry(self, line: _Line, kind: UnitKind, marker: int) -> None:
        """Nest by indentation relative to the open entries; items also extend the section path."""
        if marker >= len(line.text):
            self.problems.append(Problem(self.path, line.number, f"{kind.value} marker without text"))
            return
        self._close_deeper(line.indent)
        parent = self.open[-1].unit_id if self.open else self.lead_in
        unit = self.emit(kind, line, line.start + marker, self._list_section(), len(self.open) + 1, parent)
        title = unit.text.removesuffix(":").strip() if kind is UnitKind.ITEM else None
        self.open.append(_Open(line.indent, unit.id, title))
        self.after_heading = False

    def feed(self, line: _Line) -> None:
        """Classify one non-blank body line; every line becomes a unit or a problem."""
        marker = _list_marker(line.text)
        if marker is not None:
            self.list_entry(line, *marker)
        elif line.indent:
            self.indented_text(line)
        elif _is_heading_shaped(line.text):
            self.heading(line)
        else:
            self.paragraph(line)


def _body_stop(lines: list[_Line], first: int) -> tuple[int, bool]:
    """Index where the body ends and whether a "References" line is there (else a footer or the end)."""
    for i in range(first + 1, len(lines)):
        line = lines[i]
        if line.indent == 0 and _REFERENCES.match(line.text):
            return i, True
        if line.indent == 0 and _FOOTER.match(line.text):
            return i, False
    return len(lines), False


def _body_start(lines: list[_Line], first: int, stop: int) -> tuple[int, bool]:
    """Index of the repeated title (True), or of the line after the last chrome line (False)."""
    key = lines[first].text.casefold()
    for i in range(first + 1, stop):
        if lines[i].text and lines[i].text.casefold() == key:
            return i, True
    last = first
    for i in range(first + 1, stop):
        if _CHROME.match(lines[i].text):
            last = i
    return last + 1, False


def _last_updated(header: list[_Line]) -> str | None:
    """ISO date of the "Last updated: Month D, YYYY" chrome line; None when absent or not a real date."""
    for line in header:
        m = _UPDATED.match(line.text)
        if m:
            try:
                return datetime.strptime(m.group(1), "%B %d, %Y").date().isoformat()
            except ValueError:
                log.warning("line %d: unreadable date %r", line.number, m.group(1))
    return None


def _log_header(header: list[_Line], path: str) -> None:
    """Lines before the body are page chrome; say which ones were not recognised as such."""
    for line in header:
        if line.text and not _CHROME.match(line.text):
            log.warning("%s:%d: unrecognised line before the body skipped: %r", path, line.number, line.text)


def _reference(kind: _Line, title: _Line, venue: _Line, number: int) -> Reference:
    """One entry; the year is split off the venue so that it can be typed, None when the venue has none."""
    m = _VENUE.match(venue.text)
    name, year = (m.group(1), int(m.group(2))) if m else (venue.text, None)
    return Reference(number, kind.text, title.text, name, year, kind.number)


def _parse_references(lines: list[_Line], path: str) -> tuple[list[Reference], list[Problem]]:
    """Read (kind, title, venue) triples until a line is not a kind line; the rest is footer."""
    rows = [line for line in lines if line.text]
    refs: list[Reference] = []
    i = 0
    while i < len(rows) and _KIND.match(rows[i].text):
        kind, n = rows[i], len(refs) + 1
        if i + 2 >= len(rows):
            msg = f"reference {n} ({kind.text!r}) lacks a title or venue line"
            return refs, [Problem(path, kind.number, msg)]
        venue, following = rows[i + 2], rows[i + 3] if i + 3 < len(rows) else None
        if not _VENUE.match(venue.text) and following is not None and not _KIND.match(following.text):
            msg = f"reference {n} ({kind.text!r}): line {venue.number} is not a venue ending in ', YYYY'"
            return refs, [Problem(path, kind.number, msg)]
        refs.append(_reference(kind, rows[i + 1], venue, n))
        i += 3
    if i < len(rows):
        log.info("%s:%d: footer after the reference list skipped", path, rows[i].number)
    return refs, []


def _takes_answer(line: _Line, has_question: bool) -> bool:
    """The answer is a plain first line; without a question it must not look like a heading either."""
    plain = line.indent == 0 and _list_marker(line.text) is None
    return plain and (has_question or not _is_heading_shaped(line.text))


def parse_article(text: str, path: str = "<string>") -> Article:
    """Parse article text into units and references; raise ArticleError with every problem found."""
    path = str(path)
    lines = _split_lines(text)
    first = next((i for i, line in enumerate(lines) if line.text), None)
    if first is None:
        raise ArticleError([Problem(path, 0, "the article is empty")])
    stop, has_refs = _body_stop(lines, first)
    body, has_question = _body_start(lines, first, stop)
    _log_header(lines[first + 1 : body], path)
    parser = _Parser(text, path)
    title = parser.emit(UnitKind.TITLE, lines[first], lines[first].start, ())
    rows = [line for line in lines[body:stop] if line.text]
    question = answer = None
    if has_question:
        question = parser.emit(UnitKind.QUESTION, rows[0], rows[0].start, ())
        rows = rows[1:]
    if rows and _takes_answer(rows[0], has_question):
        answer = parser.paragraph(rows.pop(0), UnitKind.ANSWER)
    for line in rows:
        parser.feed(line)
    refs, problems = _parse_references(lines[stop + 1 :], path) if has_refs else ([], [])
    parser.problems.extend(problems)
    at = lines[body].number if body < len(lines) else lines[-1].number
    if question is None and answer is None:
        parser.problems.append(Problem(path, at, "no question (title repeat) and no answer paragraph found"))
    elif len(parser.units) <= 2 and answer is None:
        parser.problems.append(Problem(path, at, "nothing follows the question"))
    if parser.problems:
        raise ArticleError(sorted(parser.problems, key=lambda p: p.line))
    return Article(
        text=text,
        title=title.text,
        question=question.text if question else None,
        answer=answer.text if answer else None,
        last_updated=_last_updated(lines[first + 1 : body]),
        units=tuple(parser.units),
        references=tuple(refs),
        path=path,
    )


def load_article(path: str | Path) -> Article:
    """Read a UTF-8 article file (a leading BOM is not content) and parse it."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ArticleError([Problem(name, 0, f"cannot read the article: {err.strerror or err}")]) from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        bad = bytes(err.object)
        line = bad[: err.start].count(b"\n") + 1
        msg = f"not UTF-8 text (byte 0x{bad[err.start]:02x})"
        raise ArticleError([Problem(name, line, msg)]) from err
    return parse_article(text, name)
