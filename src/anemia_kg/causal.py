"""Causal chains over the knowledge model: pure functions over networkx graphs, no I/O.

The graph (:func:`build_graph`) has one node per entity and one edge per ordered pair of entities that some
non-negated claim links, in causal direction: the cause first (for ``mediatedBy``, "effect mediated by
mechanism", the edge runs mechanism -> effect and is marked ``inverse``). Hierarchy edges run from a general
entity to its specific forms (``skos:narrower``, "has specific form"), so that "anemia" reaches "vitamin B12
deficiency anemia". Treatments, tests and toxic agents are never causes.

Evidence score (an API contract):

- each supporting claim i gets a belief b_i from its certainty and citations, "cited" meaning that at least
  one of its citation numbers resolves to an entry of the reference list (a guideline or a research article):

  ==========  =====  ===================
  certainty   cited  not cited (article)
  ==========  =====  ===================
  strong      0.95   0.75
  asserted    0.90   0.70
  possible    0.60   0.40
  ==========  =====  ===================

- the claims of one predicate between two nodes form a predicate group whose belief is INDRA's
  ``1 - prod(1 - b_i)`` (independent pieces of evidence); a hierarchy edge has belief 1.0;
- an edge keeps every predicate group, best first; the edge's belief is its best group's, its ``weight``
  ``-log(belief)``, so that the lightest path is the most believable;
- a path's score is the product of its edges' beliefs (``exp(-sum of weights)``), rounded to 6 decimals;
- paths rank by score (descending), then number of hops (ascending), then the sequence of node labels.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypedDict, cast

import networkx as nx

from .knowledge import CERTAINTY_ORDER, Claim, Knowledge, UnknownEntity, plain

BELIEF = {("strong", True): 0.95, ("strong", False): 0.75, ("asserted", True): 0.9, ("asserted", False): 0.7,
          ("possible", True): 0.6, ("possible", False): 0.4}
FORMULA = "product of edge beliefs; edge belief = 1 - prod(1 - b_i)"
HIERARCHY = ("skos:narrower", "has specific form")
# How an edge reads in the path's direction when it runs against its predicate ("inverse"): the claim
# "peripheral neuropathy mediated by demyelination" is the step "demyelination -> peripheral neuropathy".
INVERSE_READING = {"akg:mediatedBy": "is a mechanism of"}
MAX_HOPS, MAX_LIMIT = 8, 50
CANDIDATES_PER_PATH = 50  # complete paths examined per requested path, at most
MAX_EXPANSIONS = 200_000  # partial paths extended by one search, at most (besides its time budget)


class Edge(TypedDict):
    source: str
    target: str
    predicate: str
    label: str
    inverse: bool
    reading: str  # how the step reads in the path direction ("is a mechanism of" for an inverse mediatedBy)
    kind: str  # "claim" | "hierarchy"
    certainty: str | None
    qualifiers: dict[str, Any]
    claims: list[str]
    evidence: list[dict[str, Any]]
    alternatives: list[dict[str, Any]]  # the other predicate groups between the same two nodes, best first


class Path(TypedDict):
    nodes: list[dict[str, str]]
    edges: list[Edge]
    score: float
    score_inputs: dict[str, Any]


@dataclass(frozen=True)
class Support:
    """One claim behind an edge, with its belief."""

    claim: Claim
    cited: bool
    belief: float


@dataclass(frozen=True)
class PredicateGroup:
    """The claims of one predicate between two nodes (none for a hierarchy edge)."""

    predicate: str  # CURIE
    label: str
    inverse: bool
    kind: str
    supports: tuple[Support, ...]
    belief: float

    @property
    def weight(self) -> float:
        return -math.log(self.belief) if self.belief > 0 else math.inf


def claim_belief(certainty: str, cited: bool) -> float:
    """b_i of one claim.

    >>> claim_belief("possible", cited=False)
    0.4
    """
    return BELIEF[(certainty, cited)]


def group_belief(beliefs: list[float]) -> float:
    """``1 - prod(1 - b_i)``.

    >>> round(group_belief([0.9, 0.7]), 6)
    0.97
    """
    return 1.0 - math.prod(1.0 - b for b in beliefs)


def _group_key(group: PredicateGroup) -> tuple[float, int, str, bool]:
    return (-group.belief, group.kind != "claim", group.predicate, group.inverse)


def build_graph(k: Knowledge, relations: str = "causal") -> nx.DiGraph:
    """The entity graph: causal claims only (``"causal"``) or every non-negated claim (``"all"``).

    ``"all"`` adds the non-causal claims in their stated direction (symmetric predicates both ways, the
    reverse marked ``inverse``). Negated claims never give an edge. Edge attributes: ``groups`` (predicate
    groups, best first), ``belief`` and ``weight`` of the best group.
    """
    if relations not in ("causal", "all"):
        raise ValueError(f"relations must be 'causal' or 'all', not {relations!r}")
    g = nx.DiGraph(relations=relations)
    for e in k.entities.values():
        g.add_node(e.id, label=e.label, type=e.type, entity=e)
    pending: dict[tuple[str, str, str, bool], list[Support]] = {}
    for claim in k.claims:
        info = k.predicates.get(claim.predicate)
        if claim.negated or info is None or (not info.causal and relations == "causal"):
            continue
        ends = [(claim.object, claim.subject, True) if info.reverse else (claim.subject, claim.object, False)]
        if info.causal and not k.can_cause(ends[0][0]):
            continue  # a treatment or a test is never a cause (the ontology's domains forbid it anyway)
        if info.symmetric:
            ends.append((claim.object, claim.subject, True))
        cited = k.cites_reference(claim)
        for u, v, inverse in ends:
            support = Support(claim, cited, claim_belief(claim.certainty, cited))
            pending.setdefault((u, v, claim.predicate, inverse), []).append(support)
    groups: dict[tuple[str, str], list[PredicateGroup]] = {}
    for (u, v, name, inverse), supports in pending.items():
        info = k.predicates[name]
        groups.setdefault((u, v), []).append(PredicateGroup(
            info.curie, info.label, inverse, "claim", tuple(sorted(supports, key=lambda s: (-s.belief, s.claim.id))),
            group_belief([s.belief for s in supports])))
    for e in k.entities.values():
        for general in e.broader:
            if general in k.entities and (relations == "all" or (k.can_cause(general) and k.can_cause(e.id))):
                groups.setdefault((general, e.id), []).append(PredicateGroup(*HIERARCHY, False, "hierarchy", (), 1.0))
    for (u, v), found in sorted(groups.items()):
        found.sort(key=_group_key)
        g.add_edge(u, v, groups=found, belief=found[0].belief, weight=found[0].weight)
    return g


# --- JSON shapes ---------------------------------------------------------------------------------------


def _node(g: nx.DiGraph, node: str) -> dict[str, str]:
    return {"id": node, "label": g.nodes[node]["label"], "type": g.nodes[node]["type"]}


def _group_dict(u: str, v: str, group: PredicateGroup) -> dict[str, Any]:
    claims = [s.claim for s in group.supports]
    evidence, seen = [], set()
    for ev in sorted((ev for c in claims for ev in c.evidence), key=lambda ev: (ev.start, ev.end, ev.unit)):
        if (ev.start, ev.end, ev.unit) not in seen:
            seen.add((ev.start, ev.end, ev.unit))
            evidence.append(plain(ev))
    certainties = {c.certainty for c in claims}
    return {
        "source": u, "target": v, "predicate": group.predicate, "label": group.label, "inverse": group.inverse,
        "reading": INVERSE_READING.get(group.predicate, group.label) if group.inverse else group.label,
        "kind": group.kind,
        "certainty": next((c for c in CERTAINTY_ORDER if c in certainties), None),
        "qualifiers": plain(group.supports[0].claim.qualifiers) if group.supports else {},
        "claims": [c.id for c in claims], "evidence": evidence,
    }


def edge_dict(g: nx.DiGraph, u: str, v: str) -> Edge:
    """The JSON form of edge u -> v: its best predicate group, the others under ``alternatives``."""
    best, *others = g.edges[u, v]["groups"]
    edge = _group_dict(u, v, best)
    edge["alternatives"] = [_group_dict(u, v, o) for o in others]
    return cast(Edge, edge)


def _score(g: nx.DiGraph, nodes: list[str]) -> float:
    return round(math.prod(g.edges[u, v]["belief"] for u, v in zip(nodes, nodes[1:], strict=False)), 6)


def _rank(g: nx.DiGraph, nodes: list[str]) -> tuple[float, int, tuple[tuple[str, str], ...]]:
    return (-_score(g, nodes), len(nodes) - 1, tuple((g.nodes[n]["label"].casefold(), n) for n in nodes))


def path_dict(g: nx.DiGraph, nodes: list[str]) -> Path:
    """The JSON form of a path given by its nodes."""
    pairs = list(zip(nodes, nodes[1:], strict=False))
    inputs = []
    for u, v in pairs:
        best = g.edges[u, v]["groups"][0]
        inputs.append({"source": u, "target": v, "belief": round(best.belief, 6), "claims": [
            {"id": s.claim.id, "certainty": s.claim.certainty, "cited": s.cited, "belief": s.belief}
            for s in best.supports]})
    return Path(nodes=[_node(g, n) for n in nodes], edges=[edge_dict(g, u, v) for u, v in pairs],
                score=_score(g, nodes), score_inputs={"formula": FORMULA, "edges": inputs})


# --- path search ---------------------------------------------------------------------------------------


def _check(g: nx.DiGraph, max_hops: int, limit: int, time_budget: float, *nodes: str) -> None:
    if not 1 <= max_hops <= MAX_HOPS:
        raise ValueError(f"max_hops must be between 1 and {MAX_HOPS}, not {max_hops}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    if not time_budget >= 0:
        raise ValueError(f"time_budget must be zero or more seconds, not {time_budget}")
    for node in nodes:
        if node not in g:
            raise UnknownEntity(node)


@lru_cache(maxsize=256)
def _bounds(g: nx.DiGraph, target: str, max_hops: int) -> tuple[dict[str, int], dict[str, float]]:
    """For every node that can reach ``target`` in at most ``max_hops`` hops: those fewest hops, and the
    least weight of any path from it to ``target`` that stays among such nodes (a lower bound for A*).

    Every node of a path of at most ``max_hops`` hops ending at ``target`` is itself within ``max_hops``
    hops of it, so a distance computed inside that node set is never more than such a path's weight: the
    bound is admissible, and consistent because it is a shortest-path distance. The graphs are never
    changed once built, so the bounds of the last 256 (graph, target, max_hops) are kept; callers only read them.
    """
    pred = g._pred  # networkx's own dict of dicts: its views cost more than the search itself
    hops = {target: 0}
    frontier = [target]
    for depth in range(1, max_hops + 1):
        frontier = [p for node in frontier for p in pred[node] if p not in hops]
        for p in frontier:
            hops.setdefault(p, depth)
        frontier = list(dict.fromkeys(frontier))
    dist: dict[str, float] = {}
    heap: list[tuple[float, str]] = [(0.0, target)]
    while heap:
        d, node = heapq.heappop(heap)
        if node in dist:
            continue
        dist[node] = d
        for p, data in pred[node].items():
            if p in hops and p not in dist:
                heapq.heappush(heap, (d + data["weight"], p))
    return hops, dist


def _lightest_paths(g: nx.DiGraph, source: str, target: str, max_hops: int,
                    deadline: float) -> Iterator[list[str]]:
    """Every simple path ``source`` -> ``target`` of at most ``max_hops`` hops, lightest first.

    A best-first (A*) search over partial paths, ordered by weight so far plus :func:`_bounds`' lower bound
    of the rest: a complete path comes out only when no partial path could still end lighter, so paths come
    out in order of weight, and a partial path that cannot reach the target within the hops left is never
    extended. This replaces Yen's algorithm (``nx.shortest_simple_paths``), which enumerates paths of any
    length and took 0.4-0.9 s per search at ten times the article's size.
    """
    hops, dist = _bounds(g, target, max_hops)
    if source not in dist or hops[source] > max_hops:
        return
    succ_of = g._succ
    tie = itertools.count()
    # ordered by the estimate, then the longer partial path (so that ties are followed to the end, not
    # explored breadth-first), then insertion order
    heap: list[tuple[float, int, int, float, tuple[str, ...]]] = [(dist[source], -1, next(tie), 0.0, (source,))]
    expansions = 0
    while heap:
        _, _, _, weight, path = heapq.heappop(heap)
        node = path[-1]
        if node == target:
            yield list(path)
            continue
        expansions += 1
        if expansions > MAX_EXPANSIONS or (expansions % 256 == 0 and time.monotonic() > deadline):
            return
        left = max_hops - len(path)  # hops still allowed after the next one
        for succ, data in succ_of[node].items():
            if succ in dist and hops[succ] <= left and succ not in path:
                w = weight + data["weight"]
                heapq.heappush(heap, (w + dist[succ], -len(path) - 1, next(tie), w, (*path, succ)))


def _ranked_paths(g: nx.DiGraph, source: str, target: str, max_hops: int, limit: int,
                  deadline: float) -> list[list[str]]:
    """The best ``limit`` simple paths of at most ``max_hops`` hops, best first (paths tied with the last
    one kept are read on, so that the tie is broken by the ranking, not by the search order)."""
    kept: list[list[str]] = []
    for n, nodes in enumerate(_lightest_paths(g, source, target, max_hops, deadline), start=1):
        if len(kept) >= limit and _score(g, nodes) < min(_score(g, p) for p in kept):
            break
        kept.append(nodes)
        if n >= CANDIDATES_PER_PATH * limit or time.monotonic() > deadline:
            break
    return sorted(kept, key=lambda p: _rank(g, p))[:limit]


def find_paths(graph: nx.DiGraph, source: str, target: str, *, max_hops: int = 4, limit: int = 5,
               time_budget: float = 1.0) -> list[Path]:
    """The best causal chains from ``source`` to ``target``, best first (ranking in the module docstring).

    Paths come from a best-first search (:func:`_lightest_paths`) of simple paths of at most ``max_hops``
    hops, lightest first; it stops after ``limit`` paths (reading on past ties), when no path is left, after
    ``50 * limit`` paths or 200,000 extended partial paths, or when ``time_budget`` seconds are spent. The direct
    edge source -> target, when there is one, is always among the answers (it replaces the last one if it
    does not rank in the top ``limit``). Raises ValueError for max_hops outside 1..8 or limit outside 1..50,
    UnknownEntity for a node not in the graph; [] when source == target or nothing connects them.
    """
    g = graph
    _check(g, max_hops, limit, time_budget, source, target)
    if source == target:
        return []
    found = _ranked_paths(g, source, target, max_hops, limit, time.monotonic() + time_budget)
    if g.has_edge(source, target) and [source, target] not in found:
        found = sorted([*found[:limit - 1], [source, target]], key=lambda p: _rank(g, p))
    return [path_dict(g, p) for p in found]


def explain(graph: nx.DiGraph, finding: str, *, max_hops: int = 4, limit: int = 20,
            time_budget: float = 1.0) -> dict[str, Any]:
    """Every cause of ``finding`` within ``max_hops``, as a ranked tree of causal chains with evidence.

    Returns ``{"finding": Entity, "causes": [Node], "omitted": [{"id","label","type"}]}`` where ``Node`` is
    ``{"entity": {"id","label","type"}, "edge": Edge (this cause -> its child), "score": float, "causes":
    [Node]}``. The tree is a best-first search upstream from the finding (Dijkstra on the edge weights, ties
    broken by hops then labels): each cause appears once, at its best-scoring chain whose every step is also
    the best chain of the node it leads to; its ``score`` is that chain's score and the path from it down to
    the finding in the tree is that chain. Children are sorted by score, hops, label. At most ``limit``
    causes are placed; ancestors within ``max_hops`` left out (by ``limit``, the time budget, or because their
    only short enough chain runs through a node placed deeper) are listed under ``omitted``.
    """
    g = graph
    _check(g, max_hops, limit, time_budget, finding)
    deadline = time.monotonic() + time_budget
    within = nx.single_source_shortest_path_length(g.reverse(copy=False), finding, cutoff=max_hops)
    # best-first over the reversed edges; rank = (-score rounded, hops, labels down to the finding), then the
    # raw product, so that a deep chain's score is rounded once, as a path's is
    best: dict[str, tuple[float, int, str | None]] = {finding: (1.0, 0, None)}  # raw score, hops, child
    labels: dict[str, tuple[str, ...]] = {finding: (g.nodes[finding]["label"].casefold(),)}
    heap: list[tuple[float, int, tuple[str, ...], str, str, float]] = []

    def push(child: str) -> None:
        score, hops, _ = best[child]
        if hops < max_hops:
            for cause in g.predecessors(child):
                if cause not in best:
                    raw = score * g.edges[cause, child]["belief"]
                    heapq.heappush(heap, (-round(raw, 6), hops + 1, (g.nodes[cause]["label"].casefold(),
                                                                      *labels[child]), cause, child, raw))

    push(finding)
    placed: list[str] = []
    while heap and len(placed) < limit:
        _, hops, path_labels, cause, child, raw = heapq.heappop(heap)
        if cause in best:
            continue
        best[cause], labels[cause] = (raw, hops, child), path_labels
        placed.append(cause)
        push(cause)
        if time.monotonic() > deadline:
            break

    def node(cause: str) -> dict[str, Any]:
        score, _, child = best[cause]
        return {"entity": _node(g, cause), "edge": edge_dict(g, cause, child or finding), "score": round(score, 6),
                "causes": children(cause)}

    def children(parent: str) -> list[dict[str, Any]]:
        kids = sorted((c for c in placed if best[c][2] == parent),
                      key=lambda c: (-round(best[c][0], 6), best[c][1], labels[c]))
        return [node(c) for c in kids]

    omitted = sorted((n for n in within if n != finding and n not in best),
                     key=lambda n: (g.nodes[n]["label"].casefold(), n))
    return {"finding": g.nodes[finding]["entity"].to_dict(), "causes": children(finding),
            "omitted": [_node(g, n) for n in omitted]}
