"""The shared model every step of the pipeline passes along.

Data flows one way: article text -> :class:`Article` (evidence units and references) -> curated
:class:`Entity` and :class:`Claim` records -> RDF. Every record is a frozen dataclass so a step can never
change what an earlier step produced; each remembers the file line it came from so that errors can name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, said so that a person can fix it."""

    file: str
    line: int  # 1-based; 0 when the problem is about the file as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class UnitKind(StrEnum):
    """What a piece of the article is; only some kinds can carry claims."""

    TITLE = "title"
    QUESTION = "question"
    ANSWER = "answer"
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    ITEM = "item"  # a numbered list item such as "1. Peripheral Neuropathy:"
    BULLET = "bullet"

    @property
    def makes_claims(self) -> bool:
        """Answer, paragraphs and bullets state facts; titles, headings and numbered item titles only frame them."""
        return self in (UnitKind.ANSWER, UnitKind.PARAGRAPH, UnitKind.BULLET)


@dataclass(frozen=True)
class EvidenceUnit:
    """One sentence-level piece of the article, the smallest thing a claim can be anchored to.

    ``text`` excludes the list marker and the trailing citation numbers; ``start``/``end`` are Unicode
    code-point offsets of ``text`` in the article (``article.text[start:end] == text``), as the W3C Web
    Annotation ``TextPositionSelector`` counts them.
    """

    id: str  # "u001", in article order
    kind: UnitKind
    text: str
    section: tuple[str, ...]  # heading path, ending with the enclosing numbered item's title if any
    citations: tuple[int, ...]  # in the order the article gives them, e.g. (5, 3)
    start: int
    end: int
    line: int  # 1-based line of the article
    depth: int = 0  # list nesting: 0 for paragraphs and headings, 1 for top-level items/bullets, ...
    parent: str | None = None  # id of the enclosing item, lead-in bullet or lead-in paragraph


@dataclass(frozen=True)
class Reference:
    """One entry of the article's numbered reference list (numbered by its position, from 1)."""

    number: int
    kind: str  # as the article writes it: "Guideline", "Research"
    title: str
    venue: str  # the venue line without its trailing year
    year: int | None
    line: int  # line of the kind marker


@dataclass(frozen=True)
class Article:
    """A parsed question-and-answer article: its text, evidence units and reference list."""

    text: str
    title: str
    question: str | None
    answer: str | None
    last_updated: str | None  # ISO date (YYYY-MM-DD) read from the page chrome, if given
    units: tuple[EvidenceUnit, ...]
    references: tuple[Reference, ...]
    path: str = "<string>"

    def unit(self, unit_id: str) -> EvidenceUnit:
        """The unit with this id (KeyError if none)."""
        for u in self.units:
            if u.id == unit_id:
                return u
        raise KeyError(unit_id)

    def reference(self, number: int) -> Reference | None:
        """The reference a citation number resolves to, or None when the list has no such entry."""
        for r in self.references:
            if r.number == number:
                return r
        return None

    @property
    def cited_numbers(self) -> tuple[int, ...]:
        """Every citation number used anywhere in the body, sorted."""
        return tuple(sorted({n for u in self.units for n in u.citations}))

    @property
    def unresolved_citations(self) -> tuple[int, ...]:
        """Citation numbers the reference list does not contain: reported, never repaired."""
        known = {r.number for r in self.references}
        return tuple(n for n in self.cited_numbers if n not in known)


# --- curated knowledge ------------------------------------------------------------------------------

MATCH_TYPES = ("exact", "close", "broad", "narrow", "related")


@dataclass(frozen=True)
class Xref:
    """A cross-reference to a standard vocabulary, with its SKOS match type and the label read from the package."""

    curie: str  # e.g. "HP:0009830", "ICD10CM:G62.9"
    match: str  # one of MATCH_TYPES
    label: str  # the vocabulary's own label, re-verified at build time
    line: int = 0


@dataclass(frozen=True)
class Entity:
    """A node of the graph: a condition, mechanism, symptom, test, treatment or exposure."""

    id: str  # snake_case slug, e.g. "peripheral_neuropathy"
    type: str  # local name of an ontology class, e.g. "Condition"
    label: str
    synonyms: tuple[str, ...] = ()
    xrefs: tuple[Xref, ...] = ()
    broader: tuple[str, ...] = ()  # ids of more general entities (skos:broader)
    note: str | None = None  # curator's note: editorial, never a fact of the article
    line: int = 0


class Certainty(StrEnum):
    """How firmly the article states a claim. The hedge words themselves are kept verbatim beside it."""

    ASSERTED = "asserted"  # stated as fact: "causes", "results from"
    STRONG = "strong"  # "strongly associated", "is crucial", "is essential"
    POSSIBLE = "possible"  # hedged: "can", "may", "can help"


@dataclass(frozen=True)
class Threshold:
    """A numeric cut-off that scopes a claim, e.g. hemoglobin < 10 g/dL."""

    text: str  # verbatim from the quote
    analyte: str
    comparator: str  # one of <, <=, >, >=, =
    value: float
    unit: str


@dataclass(frozen=True)
class Qualifiers:
    """What the article says around the bare triple. Every text field is verbatim from one of the claim's quotes."""

    certainty: Certainty = Certainty.ASSERTED
    hedge: str | None = None  # the hedging words: "may", "can", "May be secondary to"
    negated: bool = False  # "does not necessarily correlate", "not reversal": never a positive edge
    negation: str | None = None  # the negating words, verbatim
    condition: str | None = None  # "if treatment is delayed", "in cases where absorption is not impaired"
    threshold: Threshold | None = None
    time_course: str | None = None  # "within days", "within 3 months", "initially"
    frequency: str | None = None  # "up to 50%", "most common", "Some patients"
    location: str | None = None  # anatomical site: "in peripheral nerves"
    outcome: str | None = None  # "complete recovery", "arrest"
    severity: str | None = None  # "can be extensive"

    TEXT_FIELDS = ("hedge", "negation", "condition", "time_course", "frequency", "location", "outcome", "severity")


@dataclass(frozen=True)
class Quote:
    """A verbatim quote from the article and the citation numbers the curator read after it."""

    text: str
    cites: tuple[int, ...]
    line: int = 0


@dataclass(frozen=True)
class Claim:
    """One assertion of the article as curated: a triple, its qualifiers and the quotes that state it."""

    id: str
    subject: str  # entity id
    predicate: str  # local name of an ontology object property, e.g. "causes"
    object: str  # entity id
    qualifiers: Qualifiers
    evidence: tuple[Quote, ...]
    population: tuple[str, ...] = ()  # entity ids of the patients the claim is about: "patients with diabetes"
    note: str | None = None  # curator's note: editorial, never emitted as a fact
    line: int = 0
    # The line of each field as written ("predicate": 61): a problem with one field is reported there, not at
    # the claim's first line, which may be many lines above it.
    field_lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def line_at(self, name: str) -> int:
        """The line of field ``name`` in the curated file, else the claim's own line."""
        return self.field_lines.get(name, self.line)


@dataclass(frozen=True)
class Waiver:
    """A claim-bearing, uncited evidence unit the curators reviewed and decided states no claim, with why."""

    quote: str
    reason: str
    line: int = 0


# --- anchored evidence (the output of curation checks) ---------------------------------------------


@dataclass(frozen=True)
class AnchoredQuote:
    """A quote located in the article: which unit it lies in and where."""

    text: str  # the quote as it stands in the article (whitespace as in the source)
    unit: EvidenceUnit
    start: int
    end: int
    prefix: str  # up to 32 characters before, for a TextQuoteSelector
    suffix: str  # up to 32 characters after


@dataclass(frozen=True)
class CuratedClaim:
    """A claim whose quotes were all found in the article and whose citations match their units."""

    claim: Claim
    quotes: tuple[AnchoredQuote, ...]

    @property
    def citations(self) -> tuple[int, ...]:
        """Every citation number of the claim's quotes, sorted."""
        return tuple(sorted({n for q in self.quotes for n in q.unit.citations}))


@dataclass(frozen=True)
class KnowledgeBase:
    """Everything the RDF step needs: the article and the checked entities and claims."""

    article: Article
    entities: tuple[Entity, ...]
    claims: tuple[CuratedClaim, ...]
    waivers: tuple[Waiver, ...] = ()
    source_id: str = "article"
    source_meta: dict[str, str] = field(default_factory=dict)
