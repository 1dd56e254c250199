"""Synthetic corpora shaped like the real graph, built with the project's own pipeline.

``python -m bench.generate --scale N --out DIR [--seed S]`` writes a project folder ``DIR`` (the article,
``data/entities.yaml``, ``data/claims.yaml`` and a copy of ``ontology/``) holding N articles' worth of
content, then runs :func:`anemia_kg.build.build` on it, so ``DIR/data/build/anemia-kg.nq`` is what the real
build makes of it (every quote anchored, every citation checked, SHACL validated).

The pipeline reads ONE article, so the corpus is one long article: the real article unchanged (its 76 real
claims stay valid), then N-1 synthetic "article copies" inserted before its reference list, each with the
real article's shape (a section heading, sub-sections with a lead-in paragraph, numbered items with nested
bullets, top-level bullets, a closing paragraph; ~76 claim-bearing units), then ~6N references (the real
six first) and the real footer. Each synthetic unit carries exactly one claim whose quote is the unit's
whole sentence; ~10% of the bullets cite nothing, and a few citation numbers point past the reference list
(unresolved, as the real article's citation 7 does) as long as they fit the format's three digits.

Entities: the real 64 entities are kept verbatim (with their verified xrefs) and shared by all copies; the
synthetic ones (``syn_<k>``, never with xrefs: identifiers are never invented) bring the total to
``ceil(64 * sqrt(N))``, i.e. entities grow with the square root of the corpus (articles on one topic reuse
their concepts) while claims grow linearly. Output is deterministic for a given scale and seed.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from anemia_kg.build import build
from anemia_kg.ontology import Vocabulary, load_vocabulary
from anemia_kg.paths import ROOT, Paths

REAL = Paths(ROOT)
UNITS_PER_COPY = 76  # claim-bearing units of one synthetic article copy (the real article has 76 claims)
REFS_PER_ARTICLE = 6
MAX_CITATION = 999  # the article format's citation numbers have at most three digits
ENTITIES_PER_ARTICLE = 64

# Synthetic entity types, weighted roughly as in data/entities.yaml.
TYPES = (["ClinicalSign"] * 4 + ["Mechanism"] * 3 + ["Condition"] * 2 + ["Symptom"] * 2
         + ["LaboratoryTest"] * 2 + ["Therapy", "Drug", "DiagnosticFinding", "BedsideExamination"])
TYPE_NOUN = {
    "ClinicalSign": "sign", "Mechanism": "pathway", "Condition": "disorder", "Symptom": "complaint",
    "LaboratoryTest": "assay", "Therapy": "therapy", "Drug": "agent", "DiagnosticFinding": "finding",
    "BedsideExamination": "manoeuvre",
}
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "su", "da", "fi")

# (predicate, weight) roughly as in data/claims.yaml.
PREDICATES = (("evaluatedBy", 15), ("causes", 10), ("associatedWith", 9), ("mayCause", 8), ("mediatedBy", 8),
              ("treats", 8), ("reverses", 4), ("exacerbates", 3), ("progressesTo", 2), ("prevents", 2),
              ("diagnosticMarkerFor", 2), ("contributesTo", 1), ("manifestsAs", 1), ("correlatesWith", 4))
VERBS = {
    "evaluatedBy": "is evaluated by", "causes": "causes", "associatedWith": "is associated with",
    "mayCause": "may cause", "mediatedBy": "is mediated by", "treats": "treats", "reverses": "reverses",
    "exacerbates": "exacerbates", "progressesTo": "progresses to", "prevents": "prevents",
    "diagnosticMarkerFor": "is a diagnostic marker for", "contributesTo": "contributes to",
    "manifestsAs": "manifests as", "correlatesWith": "does not necessarily correlate with",
}
CONDITION = "if treatment is delayed"
TIME_COURSE = "within days"


@dataclass(frozen=True)
class SynEntity:
    id: str
    type: str
    label: str
    synonym: str | None


@dataclass
class SynClaim:
    id: str
    subject: str
    predicate: str
    object: str
    quote: str
    cites: tuple[int, ...]
    certainty: str | None = None
    hedge: str | None = None
    negation: str | None = None
    condition: str | None = None
    time_course: str | None = None


def entity_count(scale: int) -> int:
    """Total entities (real + synthetic) at ``scale`` articles: 64 * sqrt(scale), rounded up."""
    return max(ENTITIES_PER_ARTICLE, math.ceil(ENTITIES_PER_ARTICLE * math.sqrt(scale)))


def _name(k: int) -> str:
    """A pronounceable, unique word for synthetic entity k (never a real label)."""
    word, n = "", k + 1
    while n:
        n, r = divmod(n - 1, len(SYLLABLES))
        word = SYLLABLES[r] + word
    return "syn" + word


def synthetic_entities(scale: int, rng: random.Random) -> list[SynEntity]:
    out = []
    for k in range(1, entity_count(scale) - ENTITIES_PER_ARTICLE + 1):
        etype = rng.choice(TYPES)
        word = _name(k)
        label = f"{word} {TYPE_NOUN[etype]}"
        out.append(SynEntity(f"syn_{k}", etype, label, f"{word.upper()}-{k}" if rng.random() < 0.5 else None))
    return out


def _real_entities() -> list[tuple[str, str, str]]:
    """(id, type, label) of the real entities, read with the project's own reader."""
    import yaml

    raw = yaml.safe_load(REAL.entities.read_text(encoding="utf-8"))
    return [(e["id"], e["type"], e["label"]) for e in raw["entities"]]


def _real_quotes() -> tuple[str, ...]:
    """Every quote of the real claims, whitespace-normalised."""
    import yaml

    raw = yaml.safe_load(REAL.claims.read_text(encoding="utf-8"))
    quotes = {" ".join(q["quote"].split()) for c in raw["claims"] for q in c["evidence"]}
    return tuple(sorted(quotes))


class _Pool:
    """Entities by the ontology class they satisfy; real (shared) entities picked 30% of the time."""

    def __init__(self, vocab: Vocabulary, real: list[tuple[str, str, str]], syn: list[SynEntity]):
        self.vocab = vocab
        self.real = real
        self.syn = [(e.id, e.type, e.label) for e in syn]
        self.real_quotes = _real_quotes()
        self._cache: dict[tuple[str, bool], list[tuple[str, str, str]]] = {}

    def of(self, cls: str, shared: bool) -> list[tuple[str, str, str]]:
        key = (cls, shared)
        if key not in self._cache:
            source = self.real if shared else self.syn
            self._cache[key] = [e for e in source if self.vocab.is_subclass(e[1], cls)]
        return self._cache[key]

    def pick(self, cls: str, rng: random.Random, avoid: str | None = None) -> tuple[str, str, str]:
        choices = self.of(cls, rng.random() < 0.3) or self.of(cls, True)
        while True:
            e = rng.choice(choices)
            if e[0] != avoid:
                return e


def _claim(tag: str, cid: str, pool: _Pool, vocab: Vocabulary, rng: random.Random,
           cites: tuple[int, ...], lead_in: bool) -> SynClaim:
    """One claim and its sentence; re-drawn while the sentence would contain a real claim's quote
    (a real label such as "disruption of axoplasmic ground substance" is also a real quote, and a quote
    must occur in one evidence unit only)."""
    while True:
        c = _draw_claim(tag, cid, pool, vocab, rng, cites, lead_in)
        if not any(q in c.quote for q in pool.real_quotes):
            return c


def _draw_claim(tag: str, cid: str, pool: _Pool, vocab: Vocabulary, rng: random.Random,
                cites: tuple[int, ...], lead_in: bool) -> SynClaim:
    preds, weights = zip(*PREDICATES, strict=True)
    pred = rng.choices(preds, weights)[0]
    p = vocab.predicates[pred]
    s = pool.pick(p.domain or "ClinicalPhenomenon", rng)
    o = pool.pick(p.range or "ClinicalPhenomenon", rng, avoid=s[0])
    verb = VERBS[pred]
    c = SynClaim(cid, s[0], pred, o[0], "", cites)
    if pred == "mayCause":
        c.certainty, c.hedge = "possible", "may"
    elif pred == "correlatesWith":
        c.negation = verb
    elif pred == "exacerbates" and rng.random() < 0.5:
        verb, c.certainty, c.hedge = "can exacerbate", "possible", "can"
    elif pred == "associatedWith" and rng.random() < 0.5:
        verb, c.certainty = "is strongly associated with", "strong"
    extra = ""
    r = rng.random()
    if r < 0.15:
        extra, c.condition = f" {CONDITION}", CONDITION
    elif r < 0.25:
        extra, c.time_course = f" {TIME_COURSE}", TIME_COURSE
    c.quote = f"In series {tag}, {s[2]} {verb} {o[2]}{extra}" + (":" if lead_in else ".")
    return c


def _cites(copy: int, rng: random.Random) -> tuple[int, ...]:
    """~10% uncited; otherwise 1-2 numbers from this copy's own six references (wrapped at 999)."""
    if rng.random() < 0.1:
        return ()
    base = (copy - 1) * REFS_PER_ARTICLE
    picks = rng.sample(range(1, REFS_PER_ARTICLE + 1), rng.choice((1, 1, 1, 2)))
    return tuple((base + n - 1) % MAX_CITATION + 1 for n in picks)


def synthetic_copy(copy: int, pool: _Pool, vocab: Vocabulary, rng: random.Random,
                   unresolved: int | None = None) -> tuple[list[str], list[SynClaim]]:
    """The body lines and claims of synthetic article copy ``copy`` (2..N).

    ``unresolved``: a citation number past the reference list, cited alone by the copy's first cited bullet.
    """
    lines: list[str] = []
    claims: list[SynClaim] = []
    counter = 0

    def unit(indent: str, marker: str, lead_in: bool = False, cites: tuple[int, ...] | None = None) -> None:
        nonlocal counter, unresolved
        counter += 1
        cites = _cites(copy, rng) if cites is None else cites
        if cites and unresolved is not None:
            cites, unresolved = (unresolved,), None
        c = _claim(f"{copy}.{counter}", f"syn-{copy}-{counter}", pool, vocab, rng, cites, lead_in)
        claims.append(c)
        suffix = (" " + ", ".join(map(str, cites))) if cites else ""
        lines.extend([f"{indent}{marker}{c.quote}{suffix}", ""])

    lines.extend([f"Topic {copy} Relationships", "", f"Topic {copy} Mechanisms", ""])
    for sub in range(3):
        if sub:
            lines.extend([f"Topic {copy} Aspect {'ABC'[sub]}", ""])
        unit("", "", lead_in=True, cites=())  # a lead-in paragraph, uncited like the real ones
        for item in range(1, 4):
            lines.extend([f"  {item}. Aspect {'ABC'[sub]}{item} of topic {copy}:", ""])
            for _ in range(7):
                unit("    ", "• ")
        for _ in range(3):
            unit("  ", "• ")
    unit("", "")  # the closing paragraph
    return lines, claims


def _reference_lines(start: int, count: int) -> list[str]:
    out = []
    for n in range(start, start + count):
        kind = "Guideline" if n % 3 == 0 else "Research"
        out += [kind, "", f"Synthetic study number {n} of anemia and neuropathy.", "",
                f"Journal of Synthetic Hematology, {1980 + n % 45}", ""]
    return out


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    import json

    return json.dumps(text)


def _entities_yaml(syn: list[SynEntity]) -> str:
    real = REAL.entities.read_text(encoding="utf-8").rstrip("\n")
    out = [real, "", "  # --- Synthetic entities (bench/generate.py): no xrefs, identifiers are never invented ---", ""]
    for e in syn:
        out += [f"  - id: {e.id}", f"    type: {e.type}", f"    label: {_q(e.label)}"]
        if e.synonym:
            out.append(f"    synonyms: [{_q(e.synonym)}]")
        out.append("")
    return "\n".join(out)


def _claims_yaml(claims: list[SynClaim]) -> str:
    real = REAL.claims.read_text(encoding="utf-8")
    head, sep, tail = real.rpartition("\n# Claim-bearing units")
    if not sep:
        raise SystemExit("data/claims.yaml changed shape: the waivers comment was not found")
    out = [head.rstrip("\n"), "", "  # --- Synthetic claims (bench/generate.py) ---", ""]
    for c in claims:
        out += [f"  - id: {c.id}", f"    subject: {c.subject}", f"    predicate: {c.predicate}",
                f"    object: {c.object}"]
        if c.certainty:
            out.append(f"    certainty: {c.certainty}")
        if c.hedge:
            out.append(f"    hedge: {_q(c.hedge)}")
        if c.negation:
            out += ["    negated: true", f"    negation: {_q(c.negation)}"]
        if c.condition:
            out.append(f"    condition: {_q(c.condition)}")
        if c.time_course:
            out.append(f"    time_course: {_q(c.time_course)}")
        out += ["    evidence:", f"      - quote: {_q(c.quote.rstrip('.:'))}",
                f"        cites: [{', '.join(map(str, c.cites))}]", ""]
    return "\n".join(out) + sep + tail


def generate(scale: int, out: Path, seed: int = 0) -> Paths:
    """Write the synthetic project folder for ``scale`` articles' worth of content; return its Paths."""
    if scale < 1:
        raise ValueError("scale must be at least 1")
    rng = random.Random(f"anemia-kg-bench:{scale}:{seed}")
    vocab = load_vocabulary(REAL.ontology)
    syn = synthetic_entities(scale, rng)
    pool = _Pool(vocab, _real_entities(), syn)
    refs = REFS_PER_ARTICLE * scale - (scale // 10 if scale > 1 else 0)  # a few numbers left unresolved
    # Citation numbers past the list are unresolved (as the real article's 7 is); only possible below 1,000.
    unresolved = refs + 1 if refs + 1 <= MAX_CITATION else None
    body: list[str] = []
    claims: list[SynClaim] = []
    for copy in range(2, scale + 1):
        lines, cl = synthetic_copy(copy, pool, vocab, rng, unresolved if copy == scale else None)
        body += lines
        claims += cl

    article = REAL.article.read_text(encoding="utf-8")
    pre, sep, rest = article.partition("\nReferences\n")
    refs_text, fsep, footer = rest.partition("\nProfessional Medical Disclaimer")
    if not sep or not fsep:
        raise SystemExit("data/source/article.txt changed shape: References or the footer was not found")
    extra_refs = _reference_lines(REFS_PER_ARTICLE + 1, refs - REFS_PER_ARTICLE) if scale > 1 else []
    text = (pre.rstrip("\n") + "\n\n" + ("\n".join(body) + "\n" if body else "") + sep
            + refs_text.rstrip("\n") + "\n\n" + ("\n".join(extra_refs) + "\n" if extra_refs else "")
            + fsep + footer)
    if scale == 1:
        text = article  # one article's worth is the real article itself

    paths = Paths(Path(out))
    paths.article.parent.mkdir(parents=True, exist_ok=True)
    paths.article.write_text(text, encoding="utf-8")
    paths.entities.write_text(_entities_yaml(syn), encoding="utf-8")
    paths.claims.write_text(_claims_yaml(claims), encoding="utf-8")
    ontology = paths.root / "ontology"
    shutil.rmtree(ontology, ignore_errors=True)
    shutil.copytree(REAL.root / "ontology", ontology)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=int, required=True, help="articles' worth of content (1 = the real article)")
    ap.add_argument("--out", type=Path, required=True, help="project folder to write (created)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-build", action="store_true", help="write the inputs only")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    paths = generate(args.scale, args.out, args.seed)
    t1 = time.perf_counter()
    print(f"generated scale {args.scale} into {args.out} in {t1 - t0:.2f} s", flush=True)
    if args.no_build:
        return 0

    def step(msg: str) -> None:
        print(f"  {time.perf_counter() - t1:8.2f} s  {msg}", flush=True)

    result, _files = build(paths, step)
    t2 = time.perf_counter()
    print(f"built {len(result.dataset)} triples, {len(result.curation.kb.entities)} entities, "
          f"{len(result.curation.kb.claims)} claims, {len(result.curation.kb.article.references)} references "
          f"in {t2 - t1:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
