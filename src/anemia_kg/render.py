"""The graph as pictures and pages: the pyvis network of the explorer, the pages' data, and the static site.

This is the only module that imports pyvis. pyvis builds the nodes, edges and vis-network options; the HTML
comes from the project's own Jinja templates (``web/templates``), never from pyvis's, because pyvis loads
vis-network and Bootstrap from the network. vis-network itself is the copy shipped inside the pyvis package:
the server answers it at ``/vendor/vis-network.min.js``; the static site gets a copy beside its pages.

Nothing is drawn that the knowledge model does not hold: every entity is a node, every claim an edge
(negated claims too, red, dashed and labelled "NOT ..."; hedged claims dashed), ``skos:broader`` dotted grey.
Evidence is shown in the pages' side panels, not in vis tooltips (which show HTML as plain text).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import pyvis
from markupsafe import Markup
from pyvis.network import Network

from .knowledge import Claim, Entity, Knowledge, plain
from .paths import ROOT

log = logging.getLogger(__name__)

WEB = ROOT / "web"
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
YASGUI = WEB / "vendor" / "yasgui"
VIS = Path(pyvis.__file__).resolve().parent / "templates" / "lib" / "vis-9.1.2"
VIS_FILES = {"vis-network.min.js": VIS / "vis-network.min.js", "vis-network.css": VIS / "vis-network.css"}
STATIC_SITE_ASSETS = ("site.css", "common.js", "explorer.js", "entity.js")

EDGE_COLOR, NEGATED_COLOR, HIERARCHY_COLOR = "#4a4a4a", "#c62828", "#8a8a8a"
HIERARCHY = ("skos:broader", "broader")
CERTAINTIES = ("asserted", "strong", "possible")
STABILIZATION_ITERATIONS = 300  # bounded, so that the layout settles quickly even at ten times the article's size


@dataclass(frozen=True)
class Group:
    """How the entities of some ontology classes (and their subclasses) are drawn."""

    name: str  # the filter's value, e.g. "clinical-feature"
    label: str
    color: str
    shape: str  # a vis-network shape whose label sits below it
    classes: tuple[str, ...]


# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies) and a distinct shape each.
GROUPS = (
    Group("condition", "condition", "#0072B2", "dot", ("Condition",)),
    Group("mechanism", "mechanism", "#E69F00", "diamond", ("Mechanism",)),
    Group("clinical-feature", "clinical feature", "#009E73", "square", ("ClinicalFeature",)),
    Group("test", "test", "#56B4E9", "triangle", ("DiagnosticTest",)),
    Group("treatment", "treatment", "#CC79A7", "star", ("Treatment",)),
    Group("exposure", "exposure", "#8C6D31", "triangleDown", ("Exposure", "ToxicAgent")),
)
OTHER = Group("other", "other", "#6B6B6B", "dot", ())


def darker(color: str, factor: float = 0.65) -> str:
    """The colour with each channel scaled down, for outlines that stand out against white.

    >>> darker("#56B4E9")
    '#387597'
    """
    channels = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c * factor):02X}" for c in channels)


def entity_group(k: Knowledge, type_name: str) -> Group:
    """The drawing group of an entity type: the first group one of whose classes is the type or an ancestor."""
    ancestors = k.ancestors(type_name) if k.classes else {type_name}
    return next((g for g in GROUPS if ancestors & set(g.classes)), OTHER)


def groups_in_use(k: Knowledge) -> list[Group]:
    """The six groups, and "other" only when some entity falls in none of them."""
    used = {entity_group(k, e.type).name for e in k.entities.values()}
    return [*GROUPS, *([OTHER] if OTHER.name in used else [])]


# --- the network -----------------------------------------------------------------------------------------


def _edge_style(claim: Claim) -> dict[str, Any]:
    if claim.negated:
        return {"label": f"NOT {claim.label}", "color": NEGATED_COLOR, "dashes": [8, 6],
                "font": {"color": NEGATED_COLOR}}
    style: dict[str, Any] = {"label": claim.label, "color": EDGE_COLOR, "dashes": claim.certainty == "possible"}
    if claim.certainty == "strong":
        style["width"] = 3
    return style


def _plain_title(k: Knowledge, claim: Claim) -> str:
    return f"{'NOT: ' if claim.negated else ''}{k.claim_text(claim)} ({claim.certainty}); click for the evidence"


def build_network(k: Knowledge, entity_ids: Iterable[str] | None = None) -> Network:
    """The pyvis network of ``entity_ids`` (default: every entity) and every claim and ``skos:broader`` link
    among them. Edge ids are claim ids (``broader:<narrower>:<broader>`` for hierarchy links)."""
    keep = set(k.entities) if entity_ids is None else set(entity_ids)
    net = Network(height="100%", width="100%", directed=True)  # directed: pyvis merges parallel undirected edges
    for e in (k.entities[i] for i in sorted(keep)):
        g = entity_group(k, e.type)
        net.add_node(e.id, label=e.label, shape=g.shape, group=g.name, title=f"{e.label} ({e.type_label})",
                     type=e.type)
        net.get_node(e.id)["color"] = {"background": g.color, "border": darker(g.color),
                                       "highlight": {"background": g.color, "border": "#1a1a1a"},
                                       "hover": {"background": g.color, "border": "#1a1a1a"}}
    edges: list[tuple[str, str, dict[str, Any]]] = []
    for c in k.claims:
        if c.subject in keep and c.object in keep:
            edges.append((c.subject, c.object, {
                "id": c.id, "kind": "claim", "predicate": c.predicate_curie, "certainty": c.certainty,
                "negated": c.negated, "citations": list(c.citations), "title": _plain_title(k, c), **_edge_style(c)}))
    for e in k.entities.values():
        for general in e.broader:
            if e.id in keep and general in keep:
                edges.append((e.id, general, {
                    "id": f"broader:{e.id}:{general}", "kind": "hierarchy", "predicate": HIERARCHY[0],
                    "label": HIERARCHY[1], "color": HIERARCHY_COLOR, "dashes": [2, 5], "certainty": None,
                    "negated": False, "citations": [], "title": f"{e.label} — broader → {k.entities[general].label}"}))
    seen: dict[frozenset[str], int] = defaultdict(int)  # parallel edges curve apart instead of overlapping
    for source, target, options in sorted(edges, key=lambda t: t[2]["id"]):
        n = seen[frozenset((source, target))]
        seen[frozenset((source, target))] += 1
        options["smooth"] = {"enabled": True, "type": "curvedCW" if n % 2 == 0 else "curvedCCW",
                             "roundness": 0.1 + 0.15 * (n // 2 + n % 2)}
        net.add_edge(source, target, **options)
    net.options = network_options(len(net.nodes))
    return net


def network_options(node_count: int) -> dict[str, Any]:
    """vis-network options: a bounded stabilisation (the page then freezes physics), stable seed, keyboard."""
    return {
        "autoResize": True,
        "layout": {"randomSeed": 7, "improvedLayout": node_count <= 150},
        "physics": {"enabled": True, "solver": "forceAtlas2Based",
                    "forceAtlas2Based": {"gravitationalConstant": -70, "springLength": 130, "avoidOverlap": 0.5},
                    "stabilization": {"enabled": True, "iterations": STABILIZATION_ITERATIONS, "updateInterval": 50,
                                      "fit": True}},
        "interaction": {"hover": True, "tooltipDelay": 300, "keyboard": {"enabled": True, "bindToWindow": False}},
        "nodes": {"size": 16, "borderWidth": 2,
                  "font": {"size": 14, "color": "#1a1a1a", "strokeWidth": 3, "strokeColor": "#ffffff"}},
        "edges": {"arrows": {"to": {"enabled": True, "scaleFactor": 0.6}}, "selectionWidth": 2,
                  "font": {"size": 11, "color": "#333333", "strokeWidth": 3, "strokeColor": "#ffffff",
                           "align": "middle"}},
        "groups": {g.name: {"color": g.color, "shape": g.shape} for g in (*GROUPS, OTHER)},
    }


def network_data(net: Network) -> dict[str, Any]:
    """The nodes, edges and options pyvis would hand to its template, as plain JSON-ready data."""
    nodes, edges, _heading, _height, _width, options = net.get_network_data()
    return {"nodes": nodes, "edges": edges, "options": json.loads(options) if isinstance(options, str) else options}


# --- the data behind the panels -----------------------------------------------------------------------------


def entity_record(k: Knowledge, e: Entity, narrower: Iterable[str] = ()) -> dict[str, Any]:
    g = entity_group(k, e.type)
    return {"id": e.id, "label": e.label, "type": e.type, "typeLabel": e.type_label, "group": g.name,
            "groupLabel": g.label, "synonyms": list(e.synonyms), "xrefs": plain(e.xrefs),
            "broader": list(e.broader), "narrower": sorted(narrower)}


def claim_record(c: Claim) -> dict[str, Any]:
    return {"id": c.id, "subject": c.subject, "object": c.object, "predicate": c.predicate_curie, "label": c.label,
            "certainty": c.certainty, "negated": c.negated, "qualifiers": plain(c.qualifiers),
            "citations": list(c.citations), "evidence": plain(c.evidence)}


def narrower_map(k: Knowledge) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for e in k.entities.values():
        for general in e.broader:
            found[general].append(e.id)
    return found


def script_json(data: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>``, no ``<!--``), sorted keys."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


# --- pages ------------------------------------------------------------------------------------------------


SERVED_PAGES = {"explorer": "/", "paths": "/paths", "query": "/query", "references": "/references"}
STATIC_PAGES = {"explorer": "index.html", "references": "references.html"}


@dataclass(frozen=True)
class Links:
    """Where the pages are: absolute paths on the server, relative file names in the static site."""

    static: bool = False
    depth: int = 0  # folders between the page and the site's root (static site only)

    @property
    def root(self) -> str:
        return "../" * self.depth

    def page(self, name: str) -> str | None:
        """``explorer``, ``paths``, ``query`` or ``references``; None where the static site has no such page."""
        if self.static:
            return self.root + STATIC_PAGES[name] if name in STATIC_PAGES else None
        return SERVED_PAGES[name]

    def entity(self, entity_id: str) -> str:
        return self.entity_pattern().replace("{id}", quote(entity_id, safe=""))

    def entity_pattern(self) -> str:
        return f"{self.root}entity/{{id}}.html" if self.static else "/entity/{id}"

    def asset(self, name: str) -> str:
        if name in VIS_FILES:
            return f"{self.root}static/{name}" if self.static else f"/vendor/{name}"
        return f"{self.root}static/{name}" if self.static else f"/static/{name}"


def _filters(k: Knowledge) -> dict[str, Any]:
    predicates = {c.predicate_curie: c.label for c in k.claims}
    if any(e.broader for e in k.entities.values()):
        predicates[HIERARCHY[0]] = HIERARCHY[1]
    return {"groups": groups_in_use(k), "predicates": sorted(predicates.items(), key=lambda p: (p[1], p[0])),
            "references": k.references, "certainties": CERTAINTIES}


def explorer_context(k: Knowledge, links: Links) -> dict[str, Any]:
    narrower = narrower_map(k)
    data = {**network_data(build_network(k)), "entityUrl": links.entity_pattern(), "unresolved": k.unresolved,
            "entities": {e.id: entity_record(k, e, narrower[e.id]) for e in k.entities.values()},
            "claims": {c.id: claim_record(c) for c in k.claims}}
    names = sorted({(n, e.label) for e in k.entities.values() for n in (e.label, *e.synonyms)},
                   key=lambda t: (t[0].casefold(), t[0], t[1]))
    return {"page": "explorer", "title": "Explorer", "data": data, "names": names, **_filters(k),
            "edge_legend": EDGE_LEGEND}


EDGE_LEGEND = (("asserted", "solid"), ("strong", "thick"), ("hedged (possible)", "dashed"),
               ("negated: NOT ...", "negated"), ("broader (hierarchy)", "dotted"))


def entity_context(k: Knowledge, e: Entity, links: Links) -> dict[str, Any]:
    relations = k.relations(e.id)
    narrower = narrower_map(k)[e.id]
    ego = {e.id, *(r["other"]["id"] for r in relations), *e.broader, *narrower}
    data = {**network_data(build_network(k, ego)), "entityUrl": links.entity_pattern(), "entity": e.id}
    data["edges"] = [x for x in data["edges"] if e.id in (x["from"], x["to"])]  # the ego's own links only
    return {"page": "entity", "title": e.label, "entity": e, "group": entity_group(k, e.type), "relations": relations,
            "broader": [k.entities[i] for i in e.broader if i in k.entities],
            "narrower": [k.entities[i] for i in sorted(narrower)], "labels": _labels(k), "data": data}


def references_context(k: Knowledge, links: Links) -> dict[str, Any]:
    report, quality = k.references_report(), k.quality_report()

    def claims(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**row, "claim": k.claim(row["id"])} for row in rows]

    return {"page": "references", "title": "References",
            "references": [{**r, "claims": claims(r["claims"])} for r in report["references"]],
            "unresolved": [{**r, "claims": claims(r["claims"])} for r in report["unresolved"]],
            "coverage": quality["coverage"], "uncited": claims(quality["uncited_claims"]), "labels": _labels(k)}


def paths_context(k: Knowledge, links: Links) -> dict[str, Any]:
    style = {"groups": {g.name: {"color": g.color, "shape": g.shape, "label": g.label} for g in (*GROUPS, OTHER)},
             "entities": {e.id: {"label": e.label, "group": entity_group(k, e.type).name}
                          for e in k.entities.values()},
             "entityUrl": links.entity_pattern(), "colors": {"edge": EDGE_COLOR, "hierarchy": HIERARCHY_COLOR}}
    return {"page": "paths", "title": "Path finder", "data": style, "groups": groups_in_use(k)}


def query_context(examples: list[dict[str, str]], yasgui: bool) -> dict[str, Any]:
    return {"page": "query", "title": "SPARQL", "examples": examples, "data": {"examples": examples},
            "yasgui": yasgui}


def example_queries(folder: Path) -> list[dict[str, str]]:
    """The ``.rq`` files of ``folder``: name, title (the first comment line) and text."""
    found = []
    for path in sorted(folder.glob("*.rq")):
        text = path.read_text(encoding="utf-8")
        first = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), "")
        found.append({"name": path.stem, "title": first or path.stem, "query": text})
    return found


def _labels(k: Knowledge) -> dict[str, str]:
    return {e.id: e.label for e in k.entities.values()}


@cache
def environment(folder: Path = TEMPLATES) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=jinja2.select_autoescape(["html"]),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["script_json"] = script_json
    return env


def render_page(template: str, links: Links, **context: Any) -> str:
    return environment().get_template(template).render(links=links, **context)


# --- the static site ------------------------------------------------------------------------------------


def render_site(k: Knowledge, out: Path) -> list[Path]:
    """Write the explorer (``index.html``), one page per entity (``entity/<id>.html``) and ``references.html``
    with their scripts, stylesheet and vis-network under ``static/``: a site that opens from the file system
    with no server and no network. The same knowledge always gives the same bytes."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def write(rel: str, text: str) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)

    top, below = Links(static=True), Links(static=True, depth=1)
    write("index.html", render_page("explorer.html", top, **explorer_context(k, top)))
    write("references.html", render_page("references.html", top, **references_context(k, top)))
    for e in k.entities.values():
        write(f"entity/{e.id}.html", render_page("entity.html", below, **entity_context(k, e, below)))
    stale = set((out / "entity").glob("*.html")) - set(written)
    for path in sorted(stale):
        path.unlink()
    (out / "static").mkdir(exist_ok=True)
    for name in STATIC_SITE_ASSETS:
        written.append(Path(shutil.copyfile(STATIC / name, out / "static" / name)))
    for name, source in VIS_FILES.items():
        written.append(Path(shutil.copyfile(source, out / "static" / name)))
    log.info("wrote %d files under %s", len(written), out)
    return sorted(written)
