"""Load the curated entities and claims and check them against the article and the ontology.

This is where faithfulness is enforced before anything is written: every quote must occur verbatim in one
evidence unit of the article, its citation numbers must be exactly those printed after that unit, every
qualifier must be the article's own words, a hedged claim can never use the plain ``causes`` predicate,
and every claim-bearing unit must be covered by a claim (or, if uncited, explicitly waived with a reason).
All problems are collected and raised together, each naming the file and line to change.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import (
    AnchoredQuote,
    Article,
    Certainty,
    Claim,
    CuratedClaim,
    Entity,
    EvidenceUnit,
    KnowledgeBase,
    Problem,
    Qualifiers,
    Waiver,
    Xref,
)
from .ontology import Vocabulary
from .records import ClaimIn, EntityIn, SourceIn, WaiverIn, to_claim, to_entity, to_waiver, validate
from .xrefs import verify_xrefs
from .yamlfile import YamlError, line_of, load_yaml

CONTEXT_CHARS = 32  # characters of prefix/suffix kept in a TextQuoteSelector


class CurationError(Exception):
    """The curated files disagree with the article, the ontology or themselves."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line))  # in the order a curator edits
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class Coverage:
    """Which claim-bearing evidence units are stated by at least one claim."""

    units: tuple[EvidenceUnit, ...]  # every claim-bearing unit of the article
    covered: frozenset[str]  # ids of units some claim quotes
    waived: frozenset[str]  # ids of uncited units the curators waived

    @property
    def cited(self) -> tuple[EvidenceUnit, ...]:
        return tuple(u for u in self.units if u.citations)

    @property
    def uncovered(self) -> tuple[EvidenceUnit, ...]:
        return tuple(u for u in self.units if u.id not in self.covered and u.id not in self.waived)

    def percent(self, units: Iterable[EvidenceUnit]) -> float:
        units = list(units)
        return 100.0 if not units else 100.0 * sum(u.id in self.covered for u in units) / len(units)


@dataclass(frozen=True)
class CurationResult:
    """The checked knowledge base, its coverage and the warnings worth a curator's look."""

    kb: KnowledgeBase
    coverage: Coverage
    warnings: tuple[Problem, ...] = field(default=())


# --- whitespace-normalised search ------------------------------------------------------------------


def normalise(text: str) -> str:
    """Collapse runs of whitespace to one space and trim, as quotes are compared."""
    return " ".join(text.split())


def _normalise_with_index(text: str) -> tuple[str, list[int]]:
    """Normalised text plus, for each of its characters, the index it came from in ``text``."""
    out: list[str] = []
    index: list[int] = []
    pending_space = -1
    for i, ch in enumerate(text):
        if ch.isspace():
            if out and pending_space < 0:
                pending_space = i
            continue
        if pending_space >= 0:
            out.append(" ")
            index.append(pending_space)
            pending_space = -1
        out.append(ch)
        index.append(i)
    return "".join(out), index


class NormalisedUnits:
    """Every unit's normalised text with its index map, and an index from words to the units holding them.

    Built once per article. Finding a quote by trying ``str.find`` on every unit costs quotes x units, which
    made curation quadratic in the corpus; the word index narrows each quote to the few units that can hold
    it, so anchoring all quotes costs about quotes + units. The index only narrows the search: every hit is
    still confirmed with ``str.find`` on the unit's normalised text, exactly as the plain scan does.
    """

    def __init__(self, article: Article) -> None:
        self.article = article
        self.entries: tuple[tuple[EvidenceUnit, str, list[int]], ...] = tuple(
            (unit, *_normalise_with_index(unit.text)) for unit in article.units)
        self.words: dict[str, list[int]] = {}  # word -> positions in ``entries`` of the units that hold it
        for n, (_, norm, _) in enumerate(self.entries):
            for word in set(norm.split(" ")):
                self.words.setdefault(word, []).append(n)
        self._article_text: str | None = None

    def __iter__(self) -> Iterator[tuple[EvidenceUnit, str, list[int]]]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def article_text(self) -> str:
        """The whole article normalised (needed only to explain a quote that anchors nowhere)."""
        if self._article_text is None:
            self._article_text = normalise(self.article.text)
        return self._article_text

    def candidates(self, wanted: str) -> Iterable[tuple[EvidenceUnit, str, list[int]]]:
        """The units that may contain the normalised quote ``wanted``, in article order.

        A quote's first and last words may be parts of words ("ciency causes"), but each word between them
        has a space on both sides in the quote, so in any unit that contains the quote it is a whole word of
        that unit. The units holding the rarest such word are a superset of the units holding the quote. A
        quote of fewer than three words has no such word: then every unit is a candidate.
        """
        inner = wanted.split(" ")[1:-1]
        if not inner:
            return self.entries
        rarest = min((self.words.get(word, []) for word in inner), key=len)
        return [self.entries[n] for n in rarest]


def normalised_units(article: Article) -> NormalisedUnits:
    """Every unit with its normalised text, index map and word index, computed once per article."""
    return NormalisedUnits(article)


def anchor_quote(article: Article, quote: str,
                 units: NormalisedUnits | None = None) -> tuple[AnchoredQuote | None, str | None]:
    """Locate ``quote`` inside exactly one evidence unit; otherwise say why not.

    Pass ``units`` (from :func:`normalised_units`) when anchoring many quotes, so that the article is
    normalised and indexed once rather than once per quote.
    """
    units = units if units is not None else normalised_units(article)
    wanted = normalise(quote)
    hits: list[tuple[EvidenceUnit, int, list[int]]] = []
    for unit, norm, index in units.candidates(wanted):
        pos = norm.find(wanted)
        if pos >= 0:
            hits.append((unit, pos, index))
    if len(hits) > 1:
        lines = ", ".join(str(u.line) for u, _, _ in hits)
        return None, f"the quote occurs in several places of the article (lines {lines}); quote more words"
    if not hits:
        if wanted in units.article_text:
            return None, ("the quote runs across two evidence units or includes citation numbers or list "
                          "markers; quote a part of one bullet or paragraph, without the numbers")
        return None, f"the quote is not in the article verbatim{_closest(article, wanted)}"
    unit, pos, index = hits[0]
    start = unit.start + index[pos]
    end = unit.start + index[pos + len(wanted) - 1] + 1
    text = article.text
    return AnchoredQuote(
        text=text[start:end], unit=unit, start=start, end=end,
        prefix=text[max(0, start - CONTEXT_CHARS):start], suffix=text[end:end + CONTEXT_CHARS],
    ), None


def _closest(article: Article, wanted: str) -> str:
    """A hint naming the article line whose text is most like the quote."""
    best, best_ratio = None, 0.0
    for unit in article.units:
        ratio = difflib.SequenceMatcher(None, wanted.lower(), unit.text.lower()).ratio()
        if ratio > best_ratio:
            best, best_ratio = unit, ratio
    if best is None or best_ratio < 0.5:
        return ""
    return f"; the closest text is on article line {best.line}: {best.text!r}"


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- entities --------------------------------------------------------------------------------------


def load_entities(path: Path, vocab: Vocabulary, label: str | None = None) -> tuple[Entity, ...]:
    """Read and check the entities file; raise CurationError listing every problem."""
    entities, problems = read_entities(path, vocab, label)
    if problems:
        raise CurationError(problems)
    return entities


def read_entities(path: Path, vocab: Vocabulary, label: str | None = None,
                  *, check_xrefs: bool = True) -> tuple[tuple[Entity, ...], list[Problem]]:
    """Read and check the entities file; return the well-formed entities and every problem found.

    ``check_xrefs=False`` leaves out the xref verification (:func:`curate` runs it last, see there).
    """
    file = label or str(path)
    raw = _read_top(path, file, "entities")
    entities, problems = _records(raw["entities"], EntityIn, to_entity, file, "entity")
    problems += check_entities(entities, vocab, file)
    if check_xrefs:
        problems += verify_xrefs(entities, file)
    return tuple(entities), problems


def entity_xrefs(path: Path) -> list[Xref]:
    """The xrefs of the well-formed entities of an entities file (none if it cannot be read).

    What the build's background check (:class:`xrefs.Prefetch`) verifies ahead of curation; curation reads
    and reports the file itself.
    """
    try:
        raw = _read_top(path, str(path), "entities")
    except CurationError:
        return []
    entities, _ = _records(raw["entities"], EntityIn, to_entity, str(path), "entity")
    return [x for e in entities for x in e.xrefs]


def _read_top(path: Path, file: str, key: str) -> dict[str, Any]:
    """The YAML file as a mapping with a ``key:`` list; anything else is a CurationError."""
    try:
        raw = load_yaml(path, file)
    except YamlError as exc:
        raise CurationError(exc.problems) from None
    if not isinstance(raw, dict) or not isinstance(raw.get(key), list):
        raise CurationError([Problem(file, 0, f"expected a top-level '{key}:' list")])
    return raw


def _records(items: list[Any], model: Any, convert: Any, file: str, what: str) -> tuple[list[Any], list[Problem]]:
    """Validate each raw record; keep the well-formed ones (as model objects) and every problem."""
    good: list[Any] = []
    problems: list[Problem] = []
    for item in items:
        rec, errs = validate(model, item, file, f"{what} {_name(item)}".rstrip())
        problems += errs
        if rec is not None:
            good.append(convert(rec, item))
    return good, problems


def _name(item: Any) -> str:
    return repr(item.get("id")) if isinstance(item, dict) and item.get("id") else "(no id)"


def check_entities(entities: Sequence[Entity], vocab: Vocabulary, file: str) -> list[Problem]:
    """Unique ids, known types, existing broader entities, and no label or synonym shared by two entities."""
    problems: list[Problem] = []
    ids: dict[str, Entity] = {}
    names: dict[str, Entity] = {}
    entity_classes = set(vocab.entity_classes())
    for e in entities:
        if e.id in ids:
            problems.append(Problem(file, e.line, f"entity id '{e.id}' is already used on line {ids[e.id].line}"))
        ids.setdefault(e.id, e)
        if e.type not in entity_classes:
            problems.append(Problem(file, e.line, f"entity '{e.id}': type '{e.type}' is not an entity class of "
                                    f"the ontology{_suggest(e.type, entity_classes)}"))
        for name in {n.casefold() for n in (e.label, *e.synonyms)}:
            other = names.setdefault(name, e)
            if other is not e:
                problems.append(Problem(file, e.line, f"entity '{e.id}': the name '{name}' is also used by "
                                        f"'{other.id}' (line {other.line}); a name must find one entity"))
    for e in entities:
        for b in e.broader:
            if b not in ids:
                problems.append(Problem(file, e.line, f"entity '{e.id}': broader entity '{b}' does not exist"
                                        f"{_suggest(b, ids)}"))
            elif b == e.id:
                problems.append(Problem(file, e.line, f"entity '{e.id}' cannot be broader than itself"))
    return problems


# --- claims ----------------------------------------------------------------------------------------


def read_claims(path: Path, label: str | None = None) -> tuple[
        SourceIn | None, tuple[Claim, ...], tuple[Waiver, ...], list[Problem]]:
    """Read the claims file's records (field-level checks only): the well-formed ones and every problem."""
    file = label or str(path)
    raw = _read_top(path, file, "claims")
    source, errs = validate(SourceIn, raw.get("source"), file, "source")
    problems = [Problem(p.file, p.line or line_of(raw, "source"), p.message) for p in errs]
    claims, errs = _records(raw["claims"], ClaimIn, to_claim, file, "claim")
    problems += errs
    raw_waivers = raw.get("waivers") or []
    if not isinstance(raw_waivers, list):  # "waivers: 5" or a mapping: one clear problem, not one per character
        return source, tuple(claims), (), problems + [Problem(
            file, line_of(raw, "waivers"), "'waivers' must be a list of {unit, reason} entries (or be left out)")]
    waivers, errs = _records(raw_waivers, WaiverIn, to_waiver, file, "waiver")
    return source, tuple(claims), tuple(waivers), problems + errs


def check_claims(
    article: Article, entities: Sequence[Entity], claims: Sequence[Claim], vocab: Vocabulary, file: str,
) -> tuple[list[CuratedClaim], list[Problem]]:
    """Anchor every quote and check every claim; return the curated claims and all problems found."""
    by_id = {e.id: e for e in entities}
    units = normalised_units(article)
    seen: dict[str, Claim] = {}
    curated: list[CuratedClaim] = []
    problems: list[Problem] = []
    for claim in claims:
        def report(message: str, line: int = claim.line, _claim: Claim = claim) -> None:
            problems.append(Problem(file, line, f"claim '{_claim.id}': {message}"))

        if claim.id in seen:
            report(f"the id is already used on line {seen[claim.id].line}")
        seen.setdefault(claim.id, claim)
        _check_triple(claim, by_id, vocab, report)
        _check_qualifiers(claim, report)
        quotes = []
        for quote in claim.evidence:
            anchored, why = anchor_quote(article, quote.text, units)
            if anchored is None:
                report(f"quote {quote.text!r}: {why}", quote.line)
                continue
            if sorted(set(quote.cites)) != sorted(set(anchored.unit.citations)):
                report(f"quote {quote.text!r}: the article cites {list(anchored.unit.citations)} after this "
                       f"text (line {anchored.unit.line}), the claim says {list(quote.cites)}; "
                       f"write cites: {list(anchored.unit.citations)}", quote.line)
            quotes.append(anchored)
        if len(quotes) == len(claim.evidence):
            curated.append(CuratedClaim(claim, tuple(quotes)))
    return curated, problems


def _check_triple(claim: Claim, by_id: dict[str, Entity], vocab: Vocabulary, report: Any) -> None:
    """Subject, object and population exist; the predicate is a claim predicate whose domain and range fit."""
    pred = vocab.predicates.get(claim.predicate)
    if pred is None:
        report(f"predicate '{claim.predicate}' is not a claim predicate of the ontology"
               f"{_suggest(claim.predicate, vocab.predicates) or '; they are: ' + ', '.join(sorted(vocab.predicates))}",
               claim.line_at("predicate"))
    for role in ("subject", "object"):
        eid = getattr(claim, role)
        entity = by_id.get(eid)
        if entity is None:
            report(f"{role} '{eid}' is not an entity of entities.yaml{_suggest(eid, by_id)}", claim.line_at(role))
            continue
        needed = None if pred is None else (pred.domain if role == "subject" else pred.range)
        if needed and not vocab.is_subclass(entity.type, needed):
            report(f"{role} '{eid}' is a {entity.type}, but '{claim.predicate}' needs a {needed} as {role}",
                   claim.line_at(role))
    for eid in claim.population:
        if eid not in by_id:
            report(f"population entity '{eid}' does not exist{_suggest(eid, by_id)}", claim.line_at("population"))


def _check_qualifiers(claim: Claim, report: Any) -> None:
    """Hedges, negations and every qualifier text must be consistent and verbatim from the claim's quotes."""
    q: Qualifiers = claim.qualifiers
    if q.certainty is Certainty.POSSIBLE and not q.hedge:
        report("certainty 'possible' needs the hedge words (hedge: may / can / ...)", claim.line_at("certainty"))
    if q.hedge and q.certainty is Certainty.ASSERTED:
        report(f"hedge '{q.hedge}' is given but certainty is 'asserted'; set certainty: possible (or strong)",
               claim.line_at("hedge"))
    if claim.predicate == "causes" and q.certainty is Certainty.POSSIBLE:
        report("a hedged claim cannot use 'causes'; use 'mayCause' so the edge does not read as established",
               claim.line_at("predicate"))
    if q.negated and not q.negation:
        report("negated: true needs the negating words (negation: ...)", claim.line_at("negated"))
    if q.negation and not q.negated:
        report("negation words are given but negated is not true", claim.line_at("negation"))
    quotes = [normalise(x.text) for x in claim.evidence]
    values = {name: getattr(q, name) for name in Qualifiers.TEXT_FIELDS}
    if q.threshold is not None:
        values["threshold.text"] = q.threshold.text
    for name, value in values.items():
        if value and not any(normalise(value) in text for text in quotes):
            report(f"{name} {value!r} is not in any of the claim's quotes; qualifiers must be the article's "
                   f"own words", claim.line_at(name.split(".")[0]))


# --- coverage and the whole step -------------------------------------------------------------------


def compute_coverage(article: Article, curated: Sequence[CuratedClaim], waivers: Sequence[Waiver],
                     file: str, *, report_uncovered: bool = True) -> tuple[Coverage, list[Problem]]:
    """Which claim-bearing units are covered; waivers must name uncited, uncovered claim-bearing units.

    ``report_uncovered`` is off while some quote failed to anchor: that claim may be the one meant to cover
    a unit, and a second message about the same sentence would only mislead.
    """
    units = tuple(u for u in article.units if u.kind.makes_claims)
    covered = frozenset(q.unit.id for c in curated for q in c.quotes)
    waived: set[str] = set()
    problems: list[Problem] = []
    normalised = normalised_units(article) if waivers else None
    for w in waivers:
        anchored, why = anchor_quote(article, w.quote, normalised)
        if anchored is None:
            problems.append(Problem(file, w.line, f"waiver {w.quote!r}: {why}"))
        elif anchored.unit.citations:
            problems.append(Problem(file, w.line, f"waiver {w.quote!r}: the unit cites "
                                    f"{list(anchored.unit.citations)}; a cited unit must be covered by a claim"))
        elif not anchored.unit.kind.makes_claims or anchored.unit.id in covered:
            state = "already covered by a claim" if anchored.unit.id in covered else "not claim-bearing"
            problems.append(Problem(file, w.line, f"waiver {w.quote!r}: nothing to waive (the unit is {state})"))
        else:
            waived.add(anchored.unit.id)
    coverage = Coverage(units, covered, frozenset(waived))
    for u in coverage.uncovered if report_uncovered else ():
        kind = f"cited {list(u.citations)}" if u.citations else "uncited"
        problems.append(Problem(article.path, u.line, f"this {kind} {u.kind.value} is covered by no claim: "
                                f"{u.text!r}; add a claim to {file} quoting it"
                                + ("" if u.citations else " (or a waiver with the reason it states no claim)")))
    return coverage, problems


def curate(article: Article, entities_path: Path, claims_path: Path, vocab: Vocabulary,
           *, entities_label: str | None = None, claims_label: str | None = None,
           defer_xrefs: bool = False) -> CurationResult:
    """The curation step: entities and claims checked against the article and the ontology.

    The xrefs are verified last (verification waits for, or loads, the vocabulary packages), and their
    problems are listed where reading the entities file would list them. With ``defer_xrefs`` a curation
    that passes every other check returns without verifying them: the caller must then call
    :func:`xrefs.verify_xrefs` on ``result.kb.entities`` (the build does, after SHACL, so that the packages
    load in parallel with its other steps). A curation that fails verifies them anyway, so its error lists
    every problem either way.
    """
    efile, cfile = entities_label or str(entities_path), claims_label or str(claims_path)
    try:
        entities, problems = read_entities(entities_path, vocab, efile, check_xrefs=False)
    except CurationError as exc:  # the file itself is unreadable
        entities, problems = (), list(exc.problems)
    xrefs_at = len(problems)  # the xref problems go here, after the entities file's other problems

    def with_xrefs(found: list[Problem]) -> list[Problem]:
        return found[:xrefs_at] + verify_xrefs(entities, efile) + found[xrefs_at:]

    try:
        source, claims, waivers, record_problems = read_claims(claims_path, cfile)
    except CurationError as exc:
        raise CurationError(with_xrefs(problems) + exc.problems) from None
    problems += record_problems
    if not entities and problems:  # nothing to check claims against: the entity problems say why
        raise CurationError(problems)
    curated, errs = check_claims(article, entities, claims, vocab, cfile)
    problems += errs
    # Every claim record is well formed and every quote anchored: only then can an uncovered sentence
    # be blamed on a missing claim rather than on a claim that failed to load.
    complete = not record_problems and len(curated) == len(claims)
    coverage, errs = compute_coverage(article, curated, waivers, cfile, report_uncovered=complete)
    problems += errs
    if problems or source is None or not defer_xrefs:
        problems = with_xrefs(problems)
    if problems or source is None:
        raise CurationError(problems)
    used = {c.subject for c in claims} | {c.object for c in claims} | {p for c in claims for p in c.population}
    warnings = tuple(Problem(efile, e.line, f"entity '{e.id}' is used by no claim")
                     for e in entities if e.id not in used and not _is_broader_of_used(e, entities, used))
    meta = {"publisher": source.publisher} if source.publisher else {}
    kb = KnowledgeBase(article, entities, tuple(curated), tuple(waivers), source.id, meta)
    return CurationResult(kb, coverage, warnings)


def _is_broader_of_used(entity: Entity, entities: Sequence[Entity], used: set[str]) -> bool:
    return any(entity.id in e.broader and e.id in used for e in entities)
