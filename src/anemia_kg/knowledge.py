"""The built graph as a small read-only model in memory: entities, claims with their evidence, references.

It is read once, when the server starts, through a handful of SPARQL SELECT queries (``sparql/knowledge_*.rq``)
so that it is the same whether the dataset sits in the embedded Oxigraph store or behind a remote SPARQL
endpoint: the loader only needs a ``select(sparql)`` function returning SPARQL 1.1 JSON result bindings over a
default graph that is the union of all graphs. Nothing here invents content: an entity has no definition
because the article gives none, and a citation number the reference list lacks stays unresolved.

The records are frozen dataclasses whose field names are the HTTP API's; ``to_dict()`` gives their JSON form.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import pyoxigraph as ox

from .namespaces import PREFIX_IRIS
from .query import packaged_query

Binding = dict[str, dict[str, str]]
Select = Callable[[str], list[Binding]]

CERTAINTY_ORDER = ("strong", "asserted", "possible")  # strongest first, as the evidence score ranks them
CLAIM_BEARING_KINDS = ("answer", "paragraph", "bullet")  # units that state facts (akg:unitKind)
MATCHES = {"exactMatch": "exact", "closeMatch": "close", "broadMatch": "broad", "narrowMatch": "narrow",
           "relatedMatch": "related"}
MATCH_RANK = {"exact": 0, "close": 1}  # every other match type ranks 2
NEVER_CAUSES = ("Treatment", "DiagnosticTest", "ToxicAgent")  # classes whose members are never a cause
SKOS = "http://www.w3.org/2004/02/skos/core#"
# Plain strings, not rdflib namespaces: the server imports this module before it starts its query workers,
# and rdflib would cost that start 0.07 s for three prefixes.
AKG, ENT, CLAIM = PREFIX_IRIS["akg"], PREFIX_IRIS["ent"], PREFIX_IRIS["claim"]
FUZZY_CUTOFF = 0.7  # difflib ratio below which a fuzzy match is noise
QUALIFIER_KEYS = ("hedge", "negation", "condition", "time_course", "frequency", "location", "outcome", "severity")


class UnknownEntity(LookupError):
    """No entity answers to the text; ``suggestions`` are ids of the closest entities (best first)."""

    def __init__(self, text: str, suggestions: Iterable[str] = (), message: str | None = None):
        self.text = text
        self.suggestions = list(suggestions)
        hint = f"; did you mean: {', '.join(self.suggestions)}" if self.suggestions else ""
        super().__init__(message or f"unknown entity {text!r}{hint}")


class AmbiguousEntity(UnknownEntity):
    """The text is a cross-reference of several entities with the same match type; ``suggestions`` lists them."""

    def __init__(self, text: str, candidates: Iterable[str]):
        candidates = list(candidates)
        super().__init__(text, candidates, f"{text!r} is a cross-reference of several entities "
                                           f"({', '.join(candidates)}); name one of them")


def plain(value: Any) -> Any:
    """JSON-ready copy: dataclasses become dicts, tuples lists."""
    if value is None or isinstance(value, str | int | float):  # most values: answered before is_dataclass
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value) if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class Record:
    def to_dict(self) -> dict[str, Any]:
        return plain(self)


@dataclass(frozen=True)
class Xref(Record):
    id: str  # the CURIE, e.g. "HP:0002829" (skos:notation of the IRI)
    match: str  # exact | close | broad | narrow | related
    label: str | None
    iri: str


@dataclass(frozen=True)
class Entity(Record):
    id: str
    iri: str
    curie: str
    label: str
    type: str  # most specific ontology class, local name
    type_label: str
    synonyms: tuple[str, ...] = ()
    xrefs: tuple[Xref, ...] = ()
    definition: str | None = None  # the article defines nothing; never filled in
    broader: tuple[str, ...] = ()

    def brief(self) -> dict[str, str]:
        return {"id": self.id, "label": self.label, "type": self.type}


@dataclass(frozen=True)
class Reference(Record):
    number: int
    title: str | None
    year: int | None
    kind: str | None  # "Guideline" | "Research", as the article writes it
    resolved: bool = True


@dataclass(frozen=True)
class Evidence(Record):
    quote: str  # verbatim oa:exact
    section: str
    references: tuple[Reference, ...]  # of the citation numbers printed after the quote's unit
    start: int
    end: int
    unit: str


@dataclass(frozen=True)
class Claim(Record):
    id: str
    subject: str
    predicate: str  # local name, e.g. "mayCause"
    predicate_curie: str
    label: str
    object: str
    certainty: str = "asserted"  # asserted | strong | possible
    negated: bool = False
    qualifiers: dict[str, Any] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    citations: tuple[int, ...] = ()
    supported_by_article_only: bool = False


@dataclass(frozen=True)
class PredicateInfo(Record):
    name: str
    curie: str
    label: str
    causal: bool
    reverse: bool  # the object is the cause (akg:ObjectToSubject), as in mediatedBy
    symmetric: bool


@dataclass(frozen=True)
class OntologyClass(Record):
    name: str
    label: str
    parents: tuple[str, ...] = ()


def _ancestors(classes: dict[str, OntologyClass], name: str) -> set[str]:
    seen, todo = {name}, [name]
    while todo:
        current = classes.get(todo.pop())
        for parent in current.parents if current else ():
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


@dataclass(frozen=True)
class Knowledge:
    """Everything the API answers from; build it with :func:`load_knowledge` (or by hand in tests)."""

    entities: dict[str, Entity]
    claims: list[Claim]
    predicates: dict[str, PredicateInfo]
    references: list[Reference] = field(default_factory=list)
    unresolved: list[int] = field(default_factory=list)
    coverage: dict[str, Any] = field(default_factory=dict)
    uncited_claims: list[str] = field(default_factory=list)
    classes: dict[str, OntologyClass] = field(default_factory=dict)
    _index: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact: dict[str, set[str]] = defaultdict(set)  # id, IRI, ent: CURIE
        names: dict[str, set[str]] = defaultdict(set)  # labels
        synonyms: dict[str, set[str]] = defaultdict(set)
        xrefs: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for e in self.entities.values():
            for key in (e.id, e.iri, e.curie):
                exact[_norm(key)].add(e.id)
            names[_norm(e.label)].add(e.id)
            for s in e.synonyms:
                synonyms[_norm(s)].add(e.id)
            for x in e.xrefs:
                for key in (x.id, x.iri):
                    xrefs[_norm(key)].append((MATCH_RANK.get(x.match, 2), e.id))
        touching: dict[str, list[Claim]] = defaultdict(list)  # entity id -> the claims it is subject or object of
        for c in self.claims:
            touching[c.subject].append(c)
            if c.object != c.subject:
                touching[c.object].append(c)
        self._index.update(exact=exact, names=names, synonyms=synonyms, xrefs=xrefs,
                           search_names={e.id: SearchNames.of(e) for e in self.entities.values()},
                           claims={c.id: c for c in self.claims}, touching=touching,
                           references={r.number: r for r in self.references})

    # --- ontology -------------------------------------------------------------------------------------

    def ancestors(self, name: str) -> set[str]:
        """The class and all its superclasses."""
        return _ancestors(self.classes, name)

    def is_a(self, type_name: str, ancestor: str) -> bool:
        return ancestor in self.ancestors(type_name)

    def entity_types(self) -> list[str]:
        """Classes whose members are entities (subclasses of akg:Entity), or the types in use without an ontology."""
        found = [c for c in self.classes if self.is_a(c, "Entity")]
        return sorted(found or {e.type for e in self.entities.values()})

    def can_cause(self, entity_id: str) -> bool:
        """False for treatments, tests and toxic agents: they are never causes in this graph."""
        kind = self.entities[entity_id].type
        return not any(self.is_a(kind, c) for c in NEVER_CAUSES)

    # --- lookups --------------------------------------------------------------------------------------

    def claim(self, claim_id: str) -> Claim:
        return self._index["claims"][claim_id]

    def reference(self, number: int) -> Reference:
        """The reference a citation number resolves to, or an unresolved record (title, year, kind None)."""
        if number in self._index["references"] and number not in self.unresolved:
            return self._index["references"][number]
        return Reference(number, None, None, None, resolved=False)

    def cites_reference(self, claim: Claim) -> bool:
        """True when any of the claim's citation numbers resolves to an entry of the reference list."""
        return any(self.reference(n).resolved for n in claim.citations)

    def claim_text(self, claim: Claim) -> str:
        """``subject label — predicate label → object label``."""
        return f"{self.entities[claim.subject].label} — {claim.label} → {self.entities[claim.object].label}"

    def resolve(self, text: str) -> Entity:
        """The entity named by ``text``, tried in this order:

        1. its id, IRI or ``ent:`` CURIE (case-insensitive);
        2. a cross-reference CURIE or IRI (``HP:0009830``, ``ICD10CM:G62.9``, case-insensitive): when several
           entities carry it, an exact match wins over a close one, and either over broad, narrow and related
           ones; several entities at the best match type raise :class:`AmbiguousEntity` listing them;
        3. its label, then a synonym (case-insensitive, whitespace-normalised).

        Anything else raises :class:`UnknownEntity` with the ids of the five best :meth:`search` hits.
        """
        key = _norm(text)
        if key in self._index["exact"]:
            return self.entities[min(self._index["exact"][key])]
        if key in self._index["xrefs"]:
            return self._xref(text, self._index["xrefs"][key])
        for table in ("names", "synonyms"):
            if key in self._index[table]:
                return self.entities[min(self._index[table][key])]
        raise UnknownEntity(text, [e.id for e, _ in self.search(text, limit=5)] if key else [])

    def _xref(self, text: str, hits: list[tuple[int, str]]) -> Entity:
        best = min(rank for rank, _ in hits)
        ids = sorted({entity_id for rank, entity_id in hits if rank == best})
        if len(ids) > 1:
            raise AmbiguousEntity(text, ids)
        return self.entities[ids[0]]

    def search(self, q: str, type: str | None = None, limit: int = 10) -> list[tuple[Entity, float]]:
        """Entities matching ``q``, best first, as (entity, score). The ranking (an API contract):

        - 1.0   exact match (case-insensitive, whitespace-normalised) of the id, the label, the IRI, the
                ``ent:`` CURIE or a cross-reference CURIE;
        - 0.95  exact match of a synonym;
        - 0.8   the label, a synonym or the id (underscores read as spaces) starts with ``q``;
        - 0.6   ``q`` occurs inside the label, a synonym or the id;
        - below 0.5: fuzzy, ``0.5 * difflib ratio`` of ``q`` against the label, the synonyms and their words
                of three letters or more, kept only when the ratio is at least 0.7.

        Each entity counts once, with its best score; ties are ordered by label (case-insensitive), then id.
        ``type`` keeps entities of that ontology class or any subclass (``DiagnosticTest`` includes laboratory
        tests, bedside examinations and electrophysiological studies); an unknown type raises ValueError
        naming the allowed ones. An empty ``q`` lists every entity (of the type) with score 0.0, by label.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        candidates = list(self.entities.values())
        if type is not None:
            allowed = self.entity_types()
            wanted = next((t for t in allowed if t.casefold() == type.removeprefix("akg:").casefold()), None)
            if wanted is None:
                raise ValueError(f"unknown type {type!r}; allowed: {', '.join(allowed)}")
            candidates = [e for e in candidates if self.is_a(e.type, wanted)]
        key = _norm(q)
        names, counts = self._index["search_names"], Counter(key)
        scored = [(e, _score(names[e.id], key, counts) if key else 0.0) for e in candidates]
        hits = [(e, s) for e, s in scored if s > 0 or not key]
        hits.sort(key=lambda hit: (-hit[1], hit[0].label.casefold(), hit[0].id))
        return hits[:limit]

    # --- views ----------------------------------------------------------------------------------------

    def relations(self, entity_id: str) -> list[dict[str, Any]]:
        """Every claim the entity is the subject ("out") or the object ("in") of, negated ones included.

        Sorted: out before in, then predicate CURIE, then the other end's label, then claim id.
        """
        entity = self.resolve(entity_id)
        found = []
        for c in self._index["touching"].get(entity.id, ()):  # not every claim: 11 ms at 1,000,000 triples
            for direction, this, other in (("out", c.subject, c.object), ("in", c.object, c.subject)):
                if this == entity.id:
                    found.append({
                        "predicate": c.predicate_curie, "label": c.label, "direction": direction,
                        "other": self.entities[other].brief(), "certainty": c.certainty, "negated": c.negated,
                        "qualifiers": plain(c.qualifiers), "evidence": plain(c.evidence), "claim": c.id,
                    })
        found.sort(key=lambda r: (r["direction"] != "out", r["predicate"], r["other"]["label"].casefold(),
                                  r["claim"]))
        return found

    def _claim_refs(self, claim_ids: Iterable[str]) -> list[dict[str, Any]]:
        refs = []
        for cid in sorted(claim_ids):
            c = self.claim(cid)
            refs.append({"id": c.id, "text": self.claim_text(c), "certainty": c.certainty, "negated": c.negated})
        return refs

    def _citing(self, number: int) -> list[dict[str, Any]]:
        return self._claim_refs(c.id for c in self.claims if number in c.citations)

    def references_report(self) -> dict[str, Any]:
        """Each reference with the claims citing it, and each unresolved citation number with its claims."""
        return {
            "references": [{**r.to_dict(), "claims": self._citing(r.number)} for r in self.references],
            "unresolved": [{**self.reference(n).to_dict(), "claims": self._citing(n)} for n in self.unresolved],
        }

    def quality_report(self) -> dict[str, Any]:
        """Coverage of the article's claim-bearing units, claims without citations, unresolved citations."""
        return {
            "coverage": dict(self.coverage),
            "uncited_claims": self._claim_refs(self.uncited_claims),
            "unresolved_citations": [{"number": n, "claims": self._citing(n)} for n in self.unresolved],
        }


@dataclass(frozen=True)
class SearchNames:
    """An entity's names as :meth:`Knowledge.search` compares them, normalised once when the model is built."""

    exact: frozenset[str]  # id, label, IRI, CURIE and cross-reference CURIEs
    synonyms: frozenset[str]
    names: tuple[str, ...]  # label, synonyms, then the id with spaces for underscores
    fuzzy: tuple[str, ...]  # label, synonyms and their words of three letters or more
    fuzzy_counts: tuple[Counter[str], ...]  # the characters of each, counted

    @classmethod
    def of(cls, e: Entity) -> SearchNames:
        names = (_norm(e.label), *(_norm(s) for s in e.synonyms), _norm(e.id.replace("_", " ")))
        words = sorted({w for n in names[:-1] for w in n.split() if len(w) >= 3} - set(names[:-1]))
        exact = {_norm(e.id), _norm(e.label), _norm(e.iri), _norm(e.curie), *(_norm(x.id) for x in e.xrefs)}
        fuzzy = (*names[:-1], *words)
        return cls(frozenset(exact), frozenset(names[1:-1]), names, fuzzy, tuple(Counter(f) for f in fuzzy))


def _score(n: SearchNames, key: str, key_counts: Counter[str]) -> float:
    if key in n.exact:
        return 1.0
    if key in n.synonyms:
        return 0.95
    if any(name.startswith(key) for name in n.names):
        return 0.8
    if any(key in name for name in n.names):
        return 0.6
    # difflib's two upper bounds are computed here from what was counted once: real_quick_ratio() from the
    # lengths, quick_ratio() from the characters the two have in common (a multiset intersection)
    matcher: difflib.SequenceMatcher[str] | None = None
    ratio = 0.0
    size, key_items = len(key), key_counts.items()
    for name, counts in zip(n.fuzzy, n.fuzzy_counts, strict=True):
        total = size + len(name)  # the bounds as difflib computes them (2.0 * matches / total), to the bit
        if 2.0 * min(size, len(name)) / total < FUZZY_CUTOFF:
            continue
        common = 0  # a plain loop: this runs for every name of every entity, a generator and min() cost double
        for ch, k in key_items:
            c = counts.get(ch, 0)
            common += k if k < c else c
        if 2.0 * common / total < FUZZY_CUTOFF:
            continue
        if matcher is None:
            matcher = difflib.SequenceMatcher(None, key)
        matcher.set_seq2(name)
        ratio = max(ratio, matcher.ratio())
    return round(0.5 * ratio, 4) if ratio >= FUZZY_CUTOFF else 0.0


# --- loading -------------------------------------------------------------------------------------------


def select_from_store(store: ox.Store) -> Select:
    """A ``select`` over a pyoxigraph Store (default graph = union of all graphs), in SPARQL 1.1 JSON form."""

    def select(sparql: str) -> list[Binding]:
        results = store.query(sparql, use_default_graph_as_union=True)
        if not isinstance(results, ox.QuerySolutions):
            raise ValueError("select_from_store runs SELECT queries only")
        return json.loads(results.serialize(format=ox.QueryResultsFormat.JSON) or b"{}")["results"]["bindings"]

    return select


def _val(row: Binding, var: str) -> str | None:
    term = row.get(var)
    return term["value"] if term else None


def _local(iri: str | None, namespace: str) -> str | None:
    return iri[len(namespace):] if iri and iri.startswith(namespace) else None


def _bool(row: Binding, var: str) -> bool:
    return (_val(row, var) or "").strip().lower() in ("true", "1")


def _number(term: dict[str, str]) -> int | float | str:
    value, datatype = term["value"], term.get("datatype", "")
    if datatype.endswith(("#integer", "#int", "#long", "#short", "#nonNegativeInteger", "#positiveInteger")):
        return int(value)
    try:
        return float(value) if datatype.endswith(("#decimal", "#double", "#float")) else value
    except ValueError:
        return value


KNOWLEDGE_QUERIES = ("classes", "predicates", "entities", "entity_links", "claims", "claim_qualifiers", "evidence",
                     "units", "references")  # sparql/knowledge_<name>.rq


def load_knowledge(select: Select) -> Knowledge:
    """Read the knowledge model through ``select`` (SPARQL 1.1 JSON bindings, union default graph)."""
    return knowledge_from_rows(fetch_knowledge_rows(select))


def fetch_knowledge_rows(select: Select) -> dict[str, list[Binding]]:
    """The answers of the model's queries, by name: all the model is made of."""
    return {name: select(packaged_query(f"knowledge_{name}")) for name in KNOWLEDGE_QUERIES}


def knowledge_from_rows(rows: dict[str, list[Binding]]) -> Knowledge:
    """The knowledge model made of the answers :func:`fetch_knowledge_rows` gives (no I/O)."""
    classes = _classes(rows["classes"])
    references, unresolved = _references(rows["references"])
    refs = {r.number: r for r in references}

    def reference(n: int) -> Reference:
        return refs[n] if n in refs and n not in unresolved else Reference(n, None, None, None, False)

    units = _units(rows["units"])
    evidence: dict[str, list[Evidence]] = defaultdict(list)
    for row in rows["evidence"]:
        unit = units.get(row["unit"]["value"], {"id": row["unit"]["value"], "section": "", "citations": set()})
        evidence[row["claim"]["value"]].append(Evidence(
            row["exact"]["value"], unit["section"], tuple(reference(n) for n in sorted(unit["citations"])),
            int(row["start"]["value"]), int(row["end"]["value"]), unit["id"]))
    predicates = _predicates(rows["predicates"])
    claims = _claims(rows["claims"], rows["claim_qualifiers"], evidence, predicates)
    covered = {e.unit for ev in evidence.values() for e in ev}
    return Knowledge(
        entities=_entities(rows["entities"], rows["entity_links"], classes),
        claims=claims, predicates=predicates, references=references, unresolved=unresolved,
        coverage=_coverage(units.values(), covered),
        uncited_claims=sorted(c.id for c in claims if not c.citations), classes=classes)


def _classes(rows: list[Binding]) -> dict[str, OntologyClass]:
    labels: dict[str, str] = {}
    parents: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        name = _local(_val(row, "class"), AKG)
        if name is None:
            continue
        labels[name] = _val(row, "label") or labels.get(name) or name
        parent = _local(_val(row, "parent"), AKG)
        parents[name].update([parent] if parent else [])
    return {n: OntologyClass(n, labels[n], tuple(sorted(parents[n]))) for n in sorted(labels)}


def _predicates(rows: list[Binding]) -> dict[str, PredicateInfo]:
    found = {}
    for row in rows:
        name = _local(_val(row, "predicate"), AKG)
        if name:
            found[name] = PredicateInfo(
                name, f"akg:{name}", _val(row, "label") or name, _bool(row, "causal"),
                _val(row, "direction") == AKG + "ObjectToSubject", _bool(row, "symmetric"))
    return dict(sorted(found.items()))


def _entities(rows: list[Binding], links: list[Binding], classes: dict[str, OntologyClass]) -> dict[str, Entity]:
    base: dict[str, dict[str, Any]] = {}
    for row in rows:
        iri = row["entity"]["value"]
        info = base.setdefault(iri, {"types": set(), "label": _val(row, "label"), "definition": None})
        info["types"].add(_local(_val(row, "type"), AKG) or "Entity")
        info["definition"] = info["definition"] or _val(row, "definition")
    extra: dict[str, dict[str, set[Any]]] = defaultdict(lambda: defaultdict(set))
    for row in links:
        iri, prop, value = row["entity"]["value"], _local(_val(row, "property"), SKOS), row["value"]["value"]
        if prop == "altLabel":
            extra[iri]["synonyms"].add(value)
        elif prop == "broader":
            extra[iri]["broader"].add(_local(value, ENT) or value)
        elif prop in MATCHES:
            extra[iri]["xrefs"].add(Xref(_val(row, "notation") or value, MATCHES[prop], _val(row, "valueLabel"),
                                         value))

    entities = {}
    for iri, info in base.items():
        entity_id = _local(iri, ENT) or iri
        kind = sorted(info["types"], key=lambda t: (-len(_ancestors(classes, t)), t))[0]
        more = extra[iri]
        entities[entity_id] = Entity(
            entity_id, iri, f"ent:{entity_id}", info["label"] or entity_id, kind,
            classes[kind].label if kind in classes else kind, tuple(sorted(more["synonyms"])),
            tuple(sorted(more["xrefs"], key=lambda x: (MATCH_RANK.get(x.match, 2), x.match, x.id))),
            info["definition"], tuple(sorted(more["broader"])))
    return dict(sorted(entities.items()))


def _claims(rows: list[Binding], qualifier_rows: list[Binding], evidence: dict[str, list[Evidence]],
            predicates: dict[str, PredicateInfo]) -> list[Claim]:
    texts: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    thresholds: dict[str, dict[str, Any]] = defaultdict(dict)
    citations: dict[str, set[int]] = defaultdict(set)
    for row in qualifier_rows:
        iri, key, term = row["claim"]["value"], row["key"]["value"], row["value"]
        if key == "citation":
            citations[iri].add(int(term["value"]))
        elif key.startswith("threshold."):
            thresholds[iri][key.removeprefix("threshold.")] = _number(term) if key.endswith("value") else term["value"]
        elif key == "population":
            texts[iri][key].add(_local(term["value"], ENT) or term["value"])
        else:
            texts[iri][key].add(term["value"])
    claims = []
    for row in rows:
        iri = row["claim"]["value"]
        name = _local(_val(row, "predicate"), AKG) or row["predicate"]["value"]
        qualifiers: dict[str, Any] = {k: "; ".join(sorted(texts[iri][k])) for k in QUALIFIER_KEYS if texts[iri][k]}
        if thresholds[iri]:
            qualifiers["threshold"] = {k: thresholds[iri].get(k) for k in ("text", "analyte", "comparator", "value",
                                                                            "unit")}
        if texts[iri]["population"]:
            qualifiers["population"] = sorted(texts[iri]["population"])
        certainty = (_local(_val(row, "certainty"), AKG) or "Asserted").lower()
        info = predicates.get(name)
        claims.append(Claim(
            _local(iri, CLAIM) or iri, _local(row["subject"]["value"], ENT) or row["subject"]["value"],
            name, f"akg:{name}", info.label if info else name,
            _local(row["object"]["value"], ENT) or row["object"]["value"], certainty, _bool(row, "negated"),
            qualifiers, tuple(sorted(evidence[iri], key=lambda e: (e.start, e.end))), tuple(sorted(citations[iri])),
            _bool(row, "articleOnly")))
    return sorted(claims, key=lambda c: c.id)


def _units(rows: list[Binding]) -> dict[str, dict[str, Any]]:
    units: dict[str, dict[str, Any]] = {}
    for row in rows:
        iri, source = row["unit"]["value"], _val(row, "source")
        unit = units.setdefault(iri, {"id": _local(iri, f"{source}-") or iri.rsplit("/", 1)[-1],
                                      "kind": _val(row, "kind"), "section": _val(row, "section") or "",
                                      "citations": set()})
        if _val(row, "number") is not None:
            unit["citations"].add(int(_val(row, "number") or 0))
    return units


def _coverage(units: Iterable[dict[str, Any]], covered: set[str]) -> dict[str, Any]:
    bearing = [u for u in units if u["kind"] in CLAIM_BEARING_KINDS]
    cited = [u for u in bearing if u["citations"]]

    def percent(group: list[dict[str, Any]]) -> float:
        return round(100.0 * sum(u["id"] in covered for u in group) / len(group), 1) if group else 100.0

    return {"claim_bearing_units": len(bearing), "covered": sum(u["id"] in covered for u in bearing),
            "cited_units": len(cited), "cited_covered": sum(u["id"] in covered for u in cited),
            "percent_all_covered": percent(bearing), "percent_cited_covered": percent(cited)}


def _references(rows: list[Binding]) -> tuple[list[Reference], list[int]]:
    references, unresolved = {}, set()
    for row in rows:
        if _val(row, "referenceNumber") is not None:
            number = int(_val(row, "referenceNumber") or 0)
            year = re.match(r"-?\d+", _val(row, "date") or "")
            references[number] = Reference(number, _val(row, "title"), int(year.group()) if year else None,
                                           _val(row, "kind"))
        elif _val(row, "number") is not None and (_bool(row, "unresolved") or not _val(row, "resolvesTo")):
            unresolved.add(int(_val(row, "number") or 0))
    return [references[n] for n in sorted(references)], sorted(unresolved)
