"""The pyvis network and the static site (``anemia_kg.render``, ``anemia-kg render``) over the real article."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from anemia_kg.knowledge import Knowledge, load_knowledge, select_from_store
from anemia_kg.paths import Paths
from anemia_kg.render import (
    GROUPS,
    HIERARCHY_COLOR,
    NEGATED_COLOR,
    STABILIZATION_ITERATIONS,
    VIS_FILES,
    build_network,
    entity_group,
    network_data,
    render_site,
    script_json,
)
from anemia_kg.store import open_memory_store
from conftest import subprocess_env

# Anything that makes a browser load from another host: script/img/... src, <link href>, CSS url() and @import.
# Anchors (<a href="http://purl.obolibrary.org/...">) are links, not loads, and are allowed.
REMOTE_LOAD = re.compile(
    r"""<(?:script|img|iframe|source|audio|video|embed|track|input)\b[^>]*?\bsrc\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|<link\b[^>]*?\bhref\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//"""
    r"""|@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//""",
    re.IGNORECASE,
)
EMBEDDED = re.compile(r'<script type="application/json" id="graph-data">(.*?)</script>', re.DOTALL)


def remote_loads(text: str) -> list[str]:
    return [m.group(0) for m in REMOTE_LOAD.finditer(text)]


@pytest.fixture(scope="module")
def knowledge(real_build) -> Knowledge:  # noqa: ANN001 - conftest fixture
    return load_knowledge(select_from_store(open_memory_store(Paths(real_build.root).built("nq"))))


@pytest.fixture(scope="module")
def data(knowledge: Knowledge) -> dict[str, Any]:
    return network_data(build_network(knowledge))


@pytest.fixture(scope="module")
def site(knowledge: Knowledge, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    render_site(knowledge, out)
    return out


def edges_by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in data["edges"]}


# --- the network ----------------------------------------------------------------------------------------


def test_every_entity_is_a_node_and_every_claim_an_edge(knowledge: Knowledge, data: dict[str, Any]) -> None:
    assert sorted(n["id"] for n in data["nodes"]) == sorted(knowledge.entities)
    edges = edges_by_id(data)
    assert len(edges) == len(data["edges"])  # ids are unique
    claims = {c.id: c for c in knowledge.claims}
    assert {i for i, e in edges.items() if e["kind"] == "claim"} == set(claims)
    for cid, c in claims.items():
        assert (edges[cid]["from"], edges[cid]["to"], edges[cid]["predicate"]) == (c.subject, c.object,
                                                                                   c.predicate_curie)
    broader = {(e.id, b) for e in knowledge.entities.values() for b in e.broader}
    assert {(e["from"], e["to"]) for e in edges.values() if e["kind"] == "hierarchy"} == broader
    labels = {n["id"]: n["label"] for n in data["nodes"]}
    assert labels["joint_pain"] == "joint pain" and labels["vitamin_b12_deficiency"] == "vitamin B12 deficiency"


def test_negated_claims_are_red_dashed_and_read_not(knowledge: Knowledge, data: dict[str, Any]) -> None:
    edges = edges_by_id(data)
    negated = [c for c in knowledge.claims if c.negated]
    assert negated, "the article has negated claims"
    for c in negated:
        e = edges[c.id]
        assert e["label"] == f"NOT {c.label}" and e["color"] == NEGATED_COLOR and e["dashes"] and e["negated"]
    correlates = edges["anemia-severity-not-necessarily-correlated-with-neurological-severity"]
    assert correlates["label"] == "NOT correlates with"
    assert all(e["color"] != NEGATED_COLOR for e in edges.values() if not e["negated"])


def test_hedged_claims_are_dashed_asserted_ones_solid(knowledge: Knowledge, data: dict[str, Any]) -> None:
    edges = edges_by_id(data)
    for c in knowledge.claims:
        if not c.negated:
            assert edges[c.id]["dashes"] is (c.certainty == "possible"), c.id
            assert edges[c.id]["label"] == c.label
    cramps = edges["anemia-may-cause-muscle-cramping"]
    assert cramps["certainty"] == "possible" and cramps["dashes"] is True and cramps["label"] == "may cause"


def test_hierarchy_edges_are_dotted_grey(data: dict[str, Any]) -> None:
    hierarchy = [e for e in data["edges"] if e["kind"] == "hierarchy"]
    assert hierarchy
    for e in hierarchy:
        assert e["predicate"] == "skos:broader" and e["label"] == "broader" and e["color"] == HIERARCHY_COLOR
        assert isinstance(e["dashes"], list) and e["dashes"][0] < e["dashes"][1]  # short dashes, long gaps
    assert edges_by_id(data)["broader:oral_b12:b12_treatment"]["to"] == "b12_treatment"


@pytest.mark.parametrize("entity_id,group", [
    ("vitamin_b12_deficiency", "condition"), ("anemia", "condition"), ("peripheral_neuropathy", "condition"),
    ("iron_deficiency_anemia", "condition"), ("peripheral_demyelination", "mechanism"),
    ("joint_pain", "clinical-feature"), ("muscle_cramping", "clinical-feature"),
    ("methylmalonic_acid_level", "test"), ("electromyography", "test"), ("gait_assessment", "test"),
    ("oral_b12", "treatment"), ("b12_treatment", "treatment"), ("dapsone_toxicity", "exposure"),
])
def test_nodes_are_coloured_and_shaped_by_type_group(knowledge: Knowledge, data: dict[str, Any], entity_id: str,
                                                     group: str) -> None:
    node = next(n for n in data["nodes"] if n["id"] == entity_id)
    style = next(g for g in GROUPS if g.name == group)
    assert entity_group(knowledge, knowledge.entities[entity_id].type) == style
    assert (node["group"], node["shape"], node["color"]["background"]) == (group, style.shape, style.color)
    assert data["options"]["groups"][group] == {"color": style.color, "shape": style.shape}


def test_groups_are_distinct_and_every_entity_has_one_of_the_six(knowledge: Knowledge, data: dict[str, Any]) -> None:
    assert len({g.color for g in GROUPS}) == len({g.shape for g in GROUPS}) == len(GROUPS) == 6
    used = Counter(n["group"] for n in data["nodes"])
    assert set(used) == {g.name for g in GROUPS}, used  # all six in use, no "other"


def test_layout_is_bounded_and_seeded(data: dict[str, Any]) -> None:
    physics = data["options"]["physics"]
    assert physics["stabilization"]["enabled"] and physics["stabilization"]["iterations"] == STABILIZATION_ITERATIONS
    assert STABILIZATION_ITERATIONS <= 1000
    assert data["options"]["layout"]["randomSeed"] == 7


def test_tooltips_are_plain_text_and_evidence_stays_out_of_them(data: dict[str, Any]) -> None:
    for item in [*data["nodes"], *data["edges"]]:
        assert "<" not in item["title"], item["id"]


def test_parallel_edges_curve_apart(data: dict[str, Any]) -> None:
    pairs: dict[frozenset[str], list[dict[str, Any]]] = {}
    for e in data["edges"]:
        pairs.setdefault(frozenset((e["from"], e["to"])), []).append(e)
    shared = [group for group in pairs.values() if len(group) > 1]
    assert shared
    for group in shared:
        assert len({(e["smooth"]["type"], e["smooth"]["roundness"]) for e in group}) == len(group)


def test_ego_network_holds_the_entity_and_its_neighbours(knowledge: Knowledge) -> None:
    from anemia_kg.render import Links, entity_context

    context = entity_context(knowledge, knowledge.entities["joint_pain"], Links())
    neighbours = {r["other"]["id"] for r in knowledge.relations("joint_pain")}
    assert {n["id"] for n in context["data"]["nodes"]} == {"joint_pain", *neighbours}
    assert all("joint_pain" in (e["from"], e["to"]) for e in context["data"]["edges"])
    assert {e["id"] for e in context["data"]["edges"]} == {r["claim"] for r in knowledge.relations("joint_pain")}


def test_script_json_cannot_close_its_script_element() -> None:
    text = str(script_json({"quote": "</script><script>alert(1)</script> <!-- & "}))
    assert "</" not in text and "<!--" not in text and "&" not in text
    assert json.loads(text) == {"quote": "</script><script>alert(1)</script> <!-- & "}


# --- the static site -----------------------------------------------------------------------------------


def test_static_site_has_the_explorer_every_entity_and_the_references(knowledge: Knowledge, site: Path) -> None:
    assert (site / "index.html").is_file() and (site / "references.html").is_file()
    assert sorted(p.stem for p in (site / "entity").glob("*.html")) == sorted(knowledge.entities)
    for name in ("site.css", "common.js", "explorer.js", "entity.js", *VIS_FILES):
        assert (site / "static" / name).is_file(), name
    assert (site / "static" / "vis-network.min.js").read_bytes() == VIS_FILES["vis-network.min.js"].read_bytes()


def test_static_site_loads_nothing_from_the_network(site: Path) -> None:
    files = [p for p in site.rglob("*") if p.is_file()]
    assert len(files) > 60
    for path in files:
        assert remote_loads(path.read_text(encoding="utf-8")) == [], path
    # the cross-references are there, as links
    joint_pain = (site / "entity" / "joint_pain.html").read_text(encoding="utf-8")
    assert '<a class="xref" href="http://purl.obolibrary.org/obo/HP_0002829"' in joint_pain


def test_static_site_links_are_relative(site: Path) -> None:
    for path in [site / "index.html", site / "references.html", *sorted((site / "entity").glob("*.html"))[:5]]:
        text = path.read_text(encoding="utf-8")
        refs = re.findall(r'\b(?:src|href)="([^"]*)"', text)
        local = [r for r in refs if not r.startswith(("http://", "https://", "data:", "#"))]
        assert local and all(not r.startswith("/") for r in local), (path, local)
        for ref in local:  # every relative link and resource exists
            assert (path.parent / ref.split("#")[0]).resolve().is_file(), (path, ref)


def test_static_site_embeds_its_data(knowledge: Knowledge, site: Path) -> None:
    explorer = json.loads(EMBEDDED.search((site / "index.html").read_text(encoding="utf-8")).group(1))
    assert len(explorer["nodes"]) == len(knowledge.entities) and set(explorer["claims"]) == {c.id for c in
                                                                                              knowledge.claims}
    assert explorer["entityUrl"] == "entity/{id}.html" and explorer["unresolved"] == [7]
    quote = explorer["claims"]["altered-gait-may-cause-joint-pain"]["evidence"][-1]
    assert quote["quote"] == "May be secondary to altered gait and biomechanics due to neuropathy"
    assert quote["references"][0]["title"] == "Peripheral Neuropathy"
    page = json.loads(EMBEDDED.search((site / "entity" / "joint_pain.html").read_text(encoding="utf-8")).group(1))
    assert page["entity"] == "joint_pain" and page["entityUrl"] == "../entity/{id}.html"


def test_static_entity_page_shows_the_evidence(site: Path) -> None:
    text = (site / "entity" / "dapsone_toxicity.html").read_text(encoding="utf-8")
    assert "<h1>dapsone toxicity</h1>" in text
    assert '<li class="reference unresolved" data-number="7">[7] unresolved: not in the article\'s reference list' \
        in text
    assert text.count('class="relation') >= 1 and 'class="quote"' in text


def test_render_command_is_deterministic_across_hash_seeds(real_build, tmp_path: Path) -> None:  # noqa: ANN001
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"site-{seed}"
        run = subprocess.run([sys.executable, "-m", "anemia_kg.cli", "--root", str(real_build.root), "render",
                              "--out", str(out)], capture_output=True, text=True, env=subprocess_env(seed),
                             timeout=600)
        assert run.returncode == 0, run.stderr
        assert "wrote" in run.stdout and "index.html" in run.stdout
        outputs.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert outputs[0] == outputs[1]


def test_render_removes_stale_entity_pages_only(knowledge: Knowledge, tmp_path: Path) -> None:
    (tmp_path / "entity").mkdir()
    (tmp_path / "entity" / "gone.html").write_text("old", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    render_site(knowledge, tmp_path)
    assert not (tmp_path / "entity" / "gone.html").exists() and (tmp_path / "notes.txt").exists()


def test_doctests() -> None:
    import doctest

    from anemia_kg import render

    result = doctest.testmod(render)
    assert result.attempted >= 1 and result.failed == 0
