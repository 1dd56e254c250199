"""The JSON API's answers as pydantic models: the shapes ``/openapi.json`` and ``/docs`` give client generators.

The handlers return the plain dicts that ``knowledge.py`` and ``causal.py`` make; these models only describe
them, and never run on a request (:func:`documented`). Every model forbids extra keys, so that
``tests/test_api_schemas.py``, which validates real answers against them, fails on any key the code emits and
no model documents. ``X | None`` is a key that is always there and may be null; ``X | MISSING`` a key that is
left out when there is nothing to say (a qualifier the claim does not have), and never null.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field


def documented(model: type[BaseModel], description: str) -> dict[str, Any]:
    """Route options that document the 200 answer as ``model`` and send the handler's dict exactly as before.

    ``response_model=Any`` checks nothing (``Any`` takes the dict as it is) and keeps FastAPI's fast path: the
    dict goes straight to pydantic's JSON encoder (Rust), as it did under the handlers' former ``dict[str, Any]``
    return annotation, so an answer's bytes and cost are unchanged. ``response_model=None`` would run FastAPI's
    ``jsonable_encoder`` over it instead: about 1 ms more per path or explain answer of the real graph (35-40
    times the encoding itself), half the requests/s of ``/api/paths`` on the tiny project under wrk. Validating
    against ``model`` would add work that can only reject an answer the tests already check.
    """
    return {"response_model": Any, "responses": {200: {"model": model, "description": description}}}


class Shape(BaseModel):
    """A JSON object of an answer: exactly these keys, so that a new key cannot go undocumented."""

    model_config = ConfigDict(extra="forbid")


Certainty = Annotated[Literal["strong", "asserted", "possible"], Field(
    description="How firmly the article states the claim: strong ('strongly associated', 'is crucial'), asserted "
                "(stated as fact) or possible (hedged: 'can', 'may'; the hedging words are in qualifiers.hedge).")]
EntityId = Annotated[str, Field(description="An entity's id, e.g. peripheral_neuropathy (as /api/entities/{id} "
                                            "takes it).")]


# --- entities ------------------------------------------------------------------------------------------------


class EntityRef(Shape):
    """An entity as other answers name it: enough to show it and to ask for it."""

    id: EntityId
    label: str = Field(description="The preferred name.")
    type: str = Field(description="The most specific ontology class (local name), e.g. Symptom, Mechanism.")


class Xref(Shape):
    """A mapping of the entity to a standard vocabulary (HPO, ICD-10-CM), re-verified against it at build time."""

    id: str = Field(description="The term's CURIE, e.g. HP:0002829 or ICD10CM:M25.50.")
    match: Literal["exact", "close", "broad", "narrow", "related"] = Field(
        description="How well the term fits the entity (SKOS exactMatch, closeMatch, broadMatch, ...).")
    label: str | None = Field(description="The vocabulary's own label of the term; null when the graph has none.")
    iri: str


class EntityNames(EntityRef):
    """An entity with every name it is found by."""

    synonyms: list[str] = Field(description="Other names (clinicians' abbreviations among them), sorted.")
    xrefs: list[Xref] = Field(description="Exact matches first, then close ones, then the rest.")


class EntityCard(EntityNames):
    """An entity as its own page shows it."""

    definition: str | None = Field(
        description="A definition given in the graph; null when there is none (the article defines nothing, and "
                    "nothing is invented).")


class EntityRecord(EntityCard):
    """An entity with everything the graph says of it besides its relations."""

    iri: str
    curie: str = Field(description="ent:<id>.")
    type_label: str = Field(description="The label of the ontology class in type.")
    broader: list[EntityId] = Field(description="Ids of more general entities (skos:broader), e.g. anemia for "
                                                "vitamin B12 deficiency anemia.")


class SearchHit(EntityNames):
    """One entity found by ``/api/entities``."""

    score: float = Field(
        description="How q matches the entity, rounded to 3 decimals: 1.0 exact id, label, IRI, CURIE or "
                    "cross-reference; 0.95 exact synonym; 0.8 a name starts with q; 0.6 a name contains q; below "
                    "0.5 fuzzy (half the string similarity, kept from 0.7). 0.0 for every entity when q is empty.")


class EntitySearch(Shape):
    """The answer of ``GET /api/entities``."""

    results: list[SearchHit] = Field(description="Best score first, then by label and id; empty when nothing "
                                                 "matches.")


# --- evidence ------------------------------------------------------------------------------------------------


class Reference(Shape):
    """An entry of the article's reference list, or a citation number the list lacks."""

    number: int = Field(description="The citation number the article prints (the entry's place in its list).")
    title: str | None = Field(description="Null for an unresolved citation.")
    year: int | None = Field(description="Null when the entry gives none, or the citation is unresolved.")
    kind: str | None = Field(description="Guideline or Research, as the article labels the entry; null for an "
                                         "unresolved citation.")
    resolved: bool = Field(description="False for an unresolved citation: a number the article prints and its "
                                       "reference list lacks. Reported as it is, never repaired.")


class Evidence(Shape):
    """A verbatim quote of the article that states a claim, and the references printed after its sentence."""

    quote: str = Field(description="The article's words, verbatim (a W3C Web Annotation's exact text).")
    section: str = Field(description="The headings the quote is under, joined with ' > '; empty when none.")
    references: list[Reference] = Field(description="The references whose numbers the article prints after the "
                                                    "quote's sentence; empty when it cites none (the article alone).")
    start: int = Field(description="Where the quote starts in the article text (Unicode code points from 0).")
    end: int = Field(description="Where it ends (exclusive).")
    unit: str = Field(description="The id of the article's sentence-level unit the quote lies in, e.g. u017.")


class Threshold(Shape):
    """A numeric cut-off that scopes a claim; each part is null when the graph does not give it."""

    text: str | None = Field(description="As the article words it, e.g. 'hemoglobin <10g/dL'.")
    analyte: str | None
    comparator: str | None = Field(description="<, <=, >, >= or =.")
    value: int | float | str | None
    unit: str | None


def _qualifier(description: str) -> Any:
    return Field(MISSING, description=description)


class Qualifiers(Shape):
    """What the article says around the bare triple. Each text is verbatim from the claim's quotes (several
    wordings joined with '; '); a key is absent when the claim has no such qualifier, so ``{}`` is common."""

    hedge: str | MISSING = _qualifier("The hedging words, e.g. 'may', 'can', 'May be secondary to' (a claim of "
                                      "certainty 'possible' always has them).")
    negation: str | MISSING = _qualifier("The negating words, e.g. 'does not necessarily correlate', of a negated "
                                         "claim.")
    condition: str | MISSING = _qualifier("When the claim holds, e.g. 'if treatment is delayed'.")
    time_course: str | MISSING = _qualifier("When or how fast, e.g. 'within 3 months', 'initially'.")
    frequency: str | MISSING = _qualifier("How often, e.g. 'up to 50%', 'Some patients'.")
    location: str | MISSING = _qualifier("The anatomical site, e.g. 'in peripheral nerves'.")
    outcome: str | MISSING = _qualifier("The result, e.g. 'complete recovery'.")
    severity: str | MISSING = _qualifier("How severe, e.g. 'can be extensive'.")
    threshold: Threshold | MISSING = _qualifier("A numeric cut-off the claim is limited to.")
    population: list[EntityId] | MISSING = _qualifier("Ids of entities that describe the patients the claim is "
                                                      "about (e.g. diabetes), sorted.")


class Relation(Shape):
    """One claim the entity is the subject or the object of, negated claims included."""

    predicate: str = Field(description="The predicate's CURIE, e.g. akg:mayCause.")
    label: str = Field(description="The predicate's label, e.g. 'may cause'.")
    direction: Literal["out", "in"] = Field(description="out: the entity is the claim's subject; in: its object.")
    other: EntityRef = Field(description="The entity at the claim's other end.")
    certainty: Certainty
    negated: bool = Field(description="True when the article denies the relation (the words are in "
                                      "qualifiers.negation): never an edge of a path.")
    qualifiers: Qualifiers
    evidence: list[Evidence] = Field(description="The quotes that state the claim, in article order.")
    claim: str = Field(description="The claim's id.")


class EntityAnswer(Shape):
    """The answer of ``GET /api/entities/{entity_id}``."""

    entity: EntityCard = Field(description="The entity the id, name or cross-reference resolved to.")
    relations: list[Relation] = Field(description="Outgoing claims before incoming ones, then by predicate, by "
                                                  "the other entity's label and by claim id.")


# --- causal chains -------------------------------------------------------------------------------------------


class Step(Shape):
    """The claims of one predicate that link two entities, as one step of a chain (cause to effect, unless
    relations=all brings in other relations)."""

    source: EntityId
    target: EntityId
    predicate: str = Field(description="The predicate's CURIE, e.g. akg:causes; skos:narrower for a step from a "
                                       "general entity to a specific form of it.")
    label: str = Field(description="The predicate's label.")
    inverse: bool = Field(description="True when the step runs against the claims' direction: from the mechanism "
                                      "of an akg:mediatedBy claim to the effect, or from object to subject of a "
                                      "symmetric predicate.")
    reading: str = Field(description="How the step reads from source to target: the label, except 'is a "
                                     "mechanism of' for an inverse akg:mediatedBy step.")
    kind: Literal["claim", "hierarchy"] = Field(description="claim: stated by curated claims; hierarchy: from a "
                                                            "general entity to a specific form (belief 1.0, no "
                                                            "claims).")
    certainty: Certainty | None = Field(description="The strongest certainty among the step's claims; null for a "
                                                    "hierarchy step.")
    qualifiers: Qualifiers = Field(description="Those of the step's most believed claim (the first of claims); "
                                               "empty for a hierarchy step.")
    claims: list[str] = Field(description="Ids of the claims behind the step, most believed first.")
    evidence: list[Evidence] = Field(description="Their quotes, each once, in article order.")


class Edge(Step):
    """A step of a chain: the most believed predicate between its two entities, with the others beside it."""

    alternatives: list[Step] = Field(description="The other predicates that link the same two entities, most "
                                                 "believed first; they do not count in the score.")


class ClaimBelief(Shape):
    """One claim behind a step, with the belief it contributes."""

    id: str = Field(description="The claim's id.")
    certainty: Certainty
    cited: bool = Field(description="True when one of the claim's citation numbers resolves to the reference list "
                                    "(a guideline or a research article); false for the article alone.")
    belief: float = Field(description="b_i, from certainty and cited: strong 0.95 (0.75 if not cited), asserted "
                                      "0.9 (0.7), possible 0.6 (0.4).")


class StepScore(Shape):
    """What a step's belief is made of."""

    source: EntityId
    target: EntityId
    belief: float = Field(description="1 - prod(1 - b_i) over the claims of the step's predicate (independent "
                                      "evidence adds up, as in INDRA); 1.0 for a hierarchy step; 6 decimals.")
    claims: list[ClaimBelief] = Field(description="Those claims, most believed first; empty for a hierarchy step.")


class ScoreInputs(Shape):
    """Everything a path's score is computed from, to recompute or audit it."""

    formula: str = Field(description="The formula, in words.")
    edges: list[StepScore] = Field(description="One per step, in path order.")


class Path(Shape):
    """A chain from the source to the target (of causal relations unless relations=all)."""

    nodes: list[EntityRef] = Field(description="The chain's entities, source first.")
    edges: list[Edge] = Field(description="Its steps: edges[i] leads from nodes[i] to nodes[i + 1].")
    score: float = Field(
        description="The product of the steps' beliefs, in (0, 1], 6 decimals: how well the article and its "
                    "references support the whole chain (certainty and citations of its claims). A ranking of "
                    "evidence, not a clinical probability.")
    score_inputs: ScoreInputs


class PathSearch(Shape):
    """The answer of ``GET /api/paths``."""

    source: EntityRef = Field(description="The entity the source parameter resolved to.")
    target: EntityRef = Field(description="The entity the target parameter resolved to.")
    relations: Literal["causal", "all"] = Field(description="The relations followed, as asked.")
    paths: list[Path] = Field(description="Best first: by score, then fewer hops, then labels. The direct step, if "
                                          "any, is always among them. Empty when nothing connects them within "
                                          "max_hops, or when source and target are the same entity.")


class Cause(Shape):
    """A node of the explanation tree: a cause, the step to what it leads to, and its own causes."""

    entity: EntityRef
    edge: Edge = Field(description="The step from this cause to its parent in the tree (the finding, at the top).")
    score: float = Field(description="The score of the chain from this cause down to the finding: the product of "
                                     "its steps' beliefs, 6 decimals.")
    causes: list[Cause] = Field(description="What leads to this cause, best score first.")


class Explanation(Shape):
    """The answer of ``GET /api/explain``."""

    finding: EntityRecord = Field(description="The finding's entity, whole.")
    causes: list[Cause] = Field(description="Its direct causes in the tree, best score first; each cause appears "
                                            "once, at its best chain.")
    omitted: list[EntityRef] = Field(description="Causes within max_hops left out of the tree (by limit, the time "
                                                 "budget, or because their only short enough chain runs through a "
                                                 "cause placed deeper), by label.")


# --- health, references, quality -----------------------------------------------------------------------------


class Health(Shape):
    """The answer of ``GET /health`` once the knowledge model is in (503 before)."""

    status: Literal["ok"]
    entities: int = Field(description="Entities in the knowledge model.")
    claims: int = Field(description="Claims in the knowledge model, negated ones included.")
    graphs: list[str] = Field(description="IRIs of the dataset's named graphs, sorted.")
    store: Literal["embedded", "remote"] = Field(description="embedded: Oxigraph in this server's worker "
                                                             "processes; remote: a SPARQL engine (--endpoint).")
    model: Literal["snapshot", "sparql"] = Field(
        description="Where the knowledge model came from: the signed snapshot of an earlier start, or the store "
                    "through SPARQL.")


class ClaimRef(Shape):
    """A claim, in words."""

    id: str = Field(description="The claim's id.")
    text: str = Field(description="'subject label — predicate label → object label'.")
    certainty: Certainty
    negated: bool = Field(description="True when the article denies the relation.")


class CitedReference(Reference):
    """A reference, or an unresolved citation, with the claims that cite it."""

    claims: list[ClaimRef] = Field(description="The claims whose citations include this number, by id.")


class ReferencesReport(Shape):
    """The answer of ``GET /api/references``."""

    references: list[CitedReference] = Field(description="The article's reference list, by number.")
    unresolved: list[CitedReference] = Field(description="Citation numbers the article prints and its list lacks "
                                                         "(title, year and kind null, resolved false).")


class Coverage(Shape):
    """How much of the article the curated claims cover; a unit is a sentence-level piece of the article."""

    claim_bearing_units: int = Field(description="Units that state facts (the answer, paragraphs, bullets).")
    covered: int = Field(description="Of those, units some claim quotes.")
    cited_units: int = Field(description="Claim-bearing units followed by citation numbers.")
    cited_covered: int = Field(description="Of those, units some claim quotes.")
    percent_all_covered: float = Field(description="covered / claim_bearing_units in percent, 1 decimal (100.0 "
                                                   "when there are no such units).")
    percent_cited_covered: float = Field(description="cited_covered / cited_units in percent, 1 decimal (100.0 when "
                                                     "there are no such units).")


class UnresolvedCitation(Shape):
    """A citation number the reference list lacks."""

    number: int
    claims: list[ClaimRef] = Field(description="The claims that cite it.")


class QualityReport(Shape):
    """The answer of ``GET /api/quality``."""

    coverage: Coverage
    uncited_claims: list[ClaimRef] = Field(description="Claims that cite no reference number, by id.")
    unresolved_citations: list[UnresolvedCitation] = Field(description="Citation numbers the reference list lacks, "
                                                                       "with the claims that cite them.")
