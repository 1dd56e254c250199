"""The shape of the two hand-edited files, ``entities.yaml`` and ``claims.yaml``, and their conversion to the model.

Pydantic checks each record's fields (unknown keys are errors, so a typo such as ``predicat:`` is caught rather
than silently ignored); every error is turned into a :class:`Problem` that names the file and the line.
Meaning-level checks (does the quote occur in the article? does the entity exist?) live in ``curation``.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .model import (
    Certainty,
    Claim,
    Entity,
    Problem,
    Qualifiers,
    Quote,
    Threshold,
    Waiver,
    Xref,
)
from .yamlfile import LINES, line_of, strip_lines

ENTITY_ID = r"^[a-z][a-z0-9_]*$"
CLAIM_ID = r"^[a-z0-9][a-z0-9-]*$"
SOURCE_ID = r"^[a-z0-9][a-z0-9-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class XrefIn(_Strict):
    id: str = Field(min_length=3)
    match: Literal["exact", "close", "broad", "narrow", "related"]
    label: str = Field(min_length=1)


class EntityIn(_Strict):
    id: str = Field(pattern=ENTITY_ID)
    type: str = Field(min_length=1)
    label: str = Field(min_length=1)
    synonyms: list[str] = []
    broader: list[str] = []
    xrefs: list[XrefIn] = []
    note: str | None = None


class ThresholdIn(_Strict):
    text: str = Field(min_length=1)
    analyte: str = Field(min_length=1)
    comparator: Literal["<", "<=", ">", ">=", "="]
    value: float
    unit: str = Field(min_length=1)


class QuoteIn(_Strict):
    quote: str = Field(min_length=1)
    cites: list[int]


class ClaimIn(_Strict):
    id: str = Field(pattern=CLAIM_ID)
    subject: str
    predicate: str
    object: str
    certainty: Literal["asserted", "strong", "possible"] = "asserted"
    hedge: str | None = None
    negated: bool = False
    negation: str | None = None
    condition: str | None = None
    threshold: ThresholdIn | None = None
    time_course: str | None = None
    frequency: str | None = None
    location: str | None = None
    outcome: str | None = None
    severity: str | None = None
    population: list[str] = []
    evidence: list[QuoteIn] = Field(min_length=1)
    note: str | None = None


class WaiverIn(_Strict):
    quote: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class SourceIn(_Strict):
    id: str = Field(pattern=SOURCE_ID)
    file: str = Field(min_length=1)
    publisher: str | None = None


def _locate(raw: Any, loc: tuple[Any, ...]) -> int:
    """The line of the deepest mapping key on ``loc`` that the raw YAML has."""
    line, node = line_of(raw) if isinstance(raw, dict) else 0, raw
    for part in loc:
        if isinstance(node, dict) and part in node.get(LINES, {}):
            line = line_of(node, part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            if isinstance(node, dict):
                line = line_of(node)
        else:
            break
    return line


def validate(model: type[_Strict], raw: Any, file: str, what: str) -> tuple[Any, list[Problem]]:
    """Validate one raw record; on failure return (None, problems naming the lines)."""
    if not isinstance(raw, dict):
        return None, [Problem(file, 0, f"{what}: expected a mapping of fields, found {type(raw).__name__}")]
    try:
        return model.model_validate(strip_lines(raw)), []
    except ValidationError as exc:
        return None, _problems(exc, raw, file, what)


def _problems(exc: ValidationError, raw: Any, file: str, what: str) -> list[Problem]:
    """Pydantic's errors in a curator's words; a misspelt key is one message with a suggestion, not two."""
    errors = exc.errors()
    unknown = {tuple(e["loc"]): e for e in errors if e["type"] == "extra_forbidden"}
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    explained: set[tuple[Any, ...]] = set()
    problems = []
    for loc in unknown:
        siblings = [m[-1] for m in missing if m[:-1] == loc[:-1]]
        guess = difflib.get_close_matches(str(loc[-1]), [str(x) for x in siblings], n=1)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        explained |= {loc[:-1] + (g,) for g in guess}
        problems.append(Problem(file, _locate(raw, loc), f"{what}: unknown field '{_dotted(loc)}'{hint}"))
    for err in errors:
        loc = tuple(err["loc"])
        if loc in unknown or loc in explained:
            continue
        message = f"required field '{_dotted(loc)}' is missing" if err["type"] == "missing" else (
            f"field '{_dotted(loc)}': {err['msg']}")
        problems.append(Problem(file, _locate(raw, loc), f"{what}: {message}"))
    return sorted(problems, key=lambda p: p.line)


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "record"


def to_entity(rec: EntityIn, raw: dict[str, Any]) -> Entity:
    """The model entity for a validated record; xrefs keep the line they are written on."""
    raw_xrefs = raw.get("xrefs") or []
    xrefs = tuple(
        Xref(x.id, x.match, x.label, line_of(r) if isinstance(r, dict) else line_of(raw, "xrefs"))
        for x, r in zip(rec.xrefs, raw_xrefs, strict=False)
    )
    return Entity(
        id=rec.id, type=rec.type, label=rec.label, synonyms=tuple(rec.synonyms), xrefs=xrefs,
        broader=tuple(rec.broader), note=rec.note, line=line_of(raw),
    )


def to_claim(rec: ClaimIn, raw: dict[str, Any]) -> Claim:
    """The model claim for a validated record; quotes keep the line they are written on."""
    raw_ev = raw.get("evidence") or []
    quotes = tuple(
        Quote(q.quote, tuple(q.cites), line_of(r, "quote") if isinstance(r, dict) else line_of(raw))
        for q, r in zip(rec.evidence, raw_ev, strict=False)
    )
    threshold = None
    if rec.threshold is not None:
        t = rec.threshold
        threshold = Threshold(t.text, t.analyte, t.comparator, t.value, t.unit)
    qualifiers = Qualifiers(
        certainty=Certainty(rec.certainty), hedge=rec.hedge, negated=rec.negated, negation=rec.negation,
        condition=rec.condition, threshold=threshold, time_course=rec.time_course, frequency=rec.frequency,
        location=rec.location, outcome=rec.outcome, severity=rec.severity,
    )
    return Claim(
        id=rec.id, subject=rec.subject, predicate=rec.predicate, object=rec.object, qualifiers=qualifiers,
        evidence=quotes, population=tuple(rec.population), note=rec.note, line=line_of(raw),
        field_lines=dict(raw.get(LINES, {})),
    )


def to_waiver(rec: WaiverIn, raw: dict[str, Any]) -> Waiver:
    """The model waiver for a validated record."""
    return Waiver(rec.quote, rec.reason, line_of(raw))
