"""The knowledge model's snapshot: a later start loads the model the first one read through SPARQL.

Real embedded executors over real builds. What must hold: the snapshot gives the same model and the same API
answers as reading through SPARQL; a rebuilt dataset or changed code never meets an old snapshot; a damaged
or unwritable snapshot is reported and costs only time; a remote engine or an executor of unknown data gets
none.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from fastapi.testclient import TestClient

from anemia_kg import files
from anemia_kg.api import Settings, create_app, readmodel
from anemia_kg.api.services import Services, open_services
from anemia_kg.executor import EmbeddedExecutor

API = ("/api/entities?q=neuropathy", "/api/entities/vitamin_b12_deficiency", "/api/entities/joint_pain",
       "/api/paths?source=anemia&target=joint_pain", "/api/paths?source=vitamin_b12_deficiency&target=muscle_cramping",
       "/api/explain?finding=peripheral_neuropathy", "/api/references", "/api/quality")


def snapshots(root: Path) -> list[Path]:
    return sorted((root / "data" / ".cache").glob("model-*.pickle"))


@pytest.fixture(autouse=True)
def _no_snapshot_yet(request: pytest.FixtureRequest) -> None:
    """The copies start without a snapshot (the session's shared builds get one once any test serves them)."""
    for name in ("real_build_copy", "tiny_built_copy"):
        if name in request.fixturenames:
            for old in snapshots(request.getfixturevalue(name).root):
                old.unlink()


def opened(root: Path) -> Services:
    services = open_services(Settings(root=root, workers=1, query_timeout=10))
    services.close()  # the model is in; the workers are not needed to compare it
    return services


def answers(services: Services) -> dict[str, Any]:
    with TestClient(create_app(services.settings, services=services)) as client:
        out = {}
        for url in API:
            response = client.get(url)
            assert response.status_code == 200, (url, response.text)
            out[url] = response.json()
        assert out[API[3]]["paths"] and out[API[4]]["paths"]
        health = client.get("/health").json()
        out["/health"] = {k: v for k, v in health.items() if k != "model"}
        return out


def test_the_next_start_loads_the_model_the_first_read_through_sparql_and_answers_the_same(real_build_copy):
    root = real_build_copy.root
    assert snapshots(root) == []
    first = opened(root)
    assert first.model_source == "sparql"
    assert snapshots(root) == [first.snapshot]
    second = opened(root)
    assert second.model_source == "snapshot" and second.snapshot == first.snapshot
    assert second.knowledge == first.knowledge
    assert len(second.knowledge.claims) == len(first.knowledge.claims) > 50
    for graph in ("causal", "everything"):
        a, b = getattr(first, graph), getattr(second, graph)
        assert nx.utils.graphs_equal(a, b) and a.number_of_edges() > 20, graph
        assert list(a.edges) == list(b.edges)  # the same order too: ties between paths break alike
    assert answers(first) == answers(second)


def test_a_rebuilt_dataset_or_changed_code_reads_again_and_replaces_the_snapshot(tiny_built_copy, monkeypatch):
    root = tiny_built_copy.root
    kept = opened(root).snapshot
    assert opened(root).model_source == "snapshot"

    nquads = root / "data" / "build" / "anemia-kg.nq"
    nquads.write_bytes(nquads.read_bytes() + b"# the same quads, another file\n")
    rebuilt = opened(root)
    assert rebuilt.model_source == "sparql" and rebuilt.snapshot != kept
    assert snapshots(root) == [rebuilt.snapshot]  # the old dataset's snapshot is gone

    monkeypatch.setattr(readmodel, "code_digest", lambda: "c0de" * 16)
    changed = opened(root)
    assert changed.model_source == "sparql" and changed.snapshot is not None
    assert changed.snapshot.name.endswith("-c0dec0dec0dec0de.pickle")
    assert snapshots(root) == [changed.snapshot]
    assert opened(root).model_source == "snapshot"


@pytest.mark.parametrize("content", [b"not a pickle", pickle.dumps(("model-other.pickle", 1)), b""],
                         ids=["garbage", "someone-elses", "empty"])
def test_a_damaged_snapshot_is_reported_and_written_again(tiny_built_copy, caplog, content):
    root = tiny_built_copy.root
    path = opened(root).snapshot
    assert path is not None
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="anemia_kg.api.readmodel"):
        again = opened(root)
    assert again.model_source == "sparql" and len(again.knowledge.entities) > 0
    assert f"ignoring the model snapshot {path}" in caplog.text
    model = readmodel.load_snapshot(path)  # written anew, whole
    assert model is not None and model.knowledge == again.knowledge


def test_a_snapshot_that_cannot_be_written_costs_only_time(tiny_built_copy, caplog, monkeypatch):
    root = tiny_built_copy.root
    cache = root / "data" / ".cache"

    def full_disk(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full_disk)  # the last step of the atomic write
    with caplog.at_level(logging.WARNING, logger="anemia_kg.api.services"):
        services = opened(root)
    assert services.model_source == "sparql" and len(services.knowledge.entities) > 0
    assert "could not keep the knowledge model" in caplog.text and "No space left on device" in caplog.text
    assert snapshots(root) == [] and not list(cache.glob(".model-*"))  # no temporary file left behind


def test_a_snapshot_not_signed_with_this_users_key_is_refused_unread(tiny_built_copy, caplog, tmp_path):
    """A project folder may come from anywhere: a pickle in its data/.cache must not run (a pickle can)."""
    root = tiny_built_copy.root
    path = opened(root).snapshot
    assert path is not None and path.read_bytes().startswith(readmodel.MAGIC)
    marker = tmp_path / "ran"
    evil = pickle.dumps(Evil(marker))
    for forged in (evil,  # a bare pickle under the right name
                   readmodel.MAGIC + bytes(32) + evil,  # the header with a wrong signature
                   readmodel.MAGIC + hmac.new(b"another user's key" * 2, evil, hashlib.sha256).digest() + evil):
        path.write_bytes(forged)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="anemia_kg.api.readmodel"):
            assert readmodel.load_snapshot(path) is None
        assert "not written by this user's anemia-kg" in caplog.text
        assert not marker.exists() and not path.exists()
    assert opened(root).model_source == "sparql" and readmodel.load_snapshot(path) is not None  # signed again


class Evil:
    """Unpickling this touches ``marker``: what any code could do instead."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_the_key_is_made_once_private_and_kept(tmp_path, monkeypatch):
    key = tmp_path / "keys" / "snapshot.key"
    monkeypatch.setenv(readmodel.KEY_ENV, str(key))
    assert readmodel._key(create=False) is None and not key.exists()
    made = readmodel._key(create=True)
    assert made is not None and len(made) == 32 and key.read_bytes() == made
    assert key.stat().st_mode & 0o777 == 0o600 and key.parent.stat().st_mode & 0o077 == 0
    assert readmodel._key(create=True) == made and readmodel._key(create=False) == made
    assert not [p for p in key.parent.iterdir() if p != key]  # no temporary file left


def test_an_executor_given_by_the_caller_gets_no_snapshot(tiny_built_copy):
    root = tiny_built_copy.root
    executor = EmbeddedExecutor(root / "data" / "build" / "anemia-kg.nq", workers=1, timeout=10)
    services = open_services(Settings(root=root, workers=1), executor)
    try:
        assert services.snapshot is None and services.model_source == "sparql"
    finally:
        services.close()
    assert snapshots(root) == []
