"""The benchmark corpus generator: a synthetic corpus the project's own build accepts, deterministically."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from anemia_kg.build import build
from anemia_kg.paths import ROOT, Paths

if str(ROOT) not in sys.path:  # bench/ is a folder of the repository, not part of the installed package
    sys.path.insert(0, str(ROOT))

from bench.generate import entity_count, generate  # noqa: E402

REAL = Paths(ROOT)


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    paths = generate(2, tmp_path_factory.mktemp("scale2"), seed=7)
    result, files = build(paths)
    return paths, result, files


def test_scale_2_builds_with_the_projects_own_build(built) -> None:
    paths, result, files = built
    assert paths.built("nq").is_file()
    report = json.loads(paths.out.joinpath("build-report.json").read_text())
    assert report["triples"] == len(result.dataset) > 2 * 4000
    assert report["coverage"]["percent_all_covered"] == 100.0
    assert report["unresolved_citations"]  # some citation numbers point past the reference list
    assert report["negated_claims"] > 4  # the real article's negations plus synthetic ones


def test_scale_2_has_twice_the_real_claims(built) -> None:
    _, result, _ = built
    real = len(_yaml(REAL.claims)["claims"])
    assert len(result.curation.kb.claims) == 2 * real
    assert len(result.curation.kb.article.references) == 12
    assert len(result.curation.kb.entities) == entity_count(2)


def test_real_entities_kept_with_their_xrefs_and_synthetic_ones_have_none(built) -> None:
    paths, result, _ = built
    real = {e["id"]: e for e in _yaml(REAL.entities)["entities"]}
    generated = {e["id"]: e for e in _yaml(paths.entities)["entities"]}
    for eid, entity in real.items():
        assert generated[eid] == entity
    synthetic = [e for eid, e in generated.items() if eid not in real]
    assert synthetic and all(e["id"].startswith("syn_") and "xrefs" not in e for e in synthetic)
    built_xrefs = {e.id: e.xrefs for e in result.curation.kb.entities}
    assert all(built_xrefs[e["id"]] == () for e in synthetic)
    assert sum(1 for eid in real if built_xrefs[eid]) == sum(1 for e in real.values() if e.get("xrefs"))


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a, b = generate(2, tmp_path / "a", seed=7), generate(2, tmp_path / "b", seed=7)
    for name in ("article", "claims", "entities"):
        assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes(), name
    c = generate(2, tmp_path / "c", seed=8)
    assert c.claims.read_bytes() != a.claims.read_bytes()


def test_scale_1_is_the_real_article(tmp_path: Path) -> None:
    paths = generate(1, tmp_path)
    assert paths.article.read_bytes() == REAL.article.read_bytes()
    assert len(_yaml(paths.claims)["claims"]) == len(_yaml(REAL.claims)["claims"])
