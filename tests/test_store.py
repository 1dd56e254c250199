"""Stores filled from the built N-Quads: in memory, and on disk where a failed or killed load changes nothing."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pyoxigraph as ox
import pytest

from anemia_kg.store import MARKER, StoreError, open_memory_store, prepare_disk_store, upload

QUAD = "<http://example.org/s{n}> <http://example.org/p> \"{n}\" <http://example.org/g> .\n"


def write(path: Path, n: int) -> Path:
    path.write_text("".join(QUAD.format(n=i) for i in range(n)), encoding="utf-8")
    return path


def size_of(folder: Path) -> int:
    return len(ox.Store.read_only(str(folder.resolve())))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder.parent / f".{folder.name}.stores").glob("tmp-*"))


def test_memory_store(tmp_path: Path) -> None:
    assert len(open_memory_store(write(tmp_path / "d.nq", 5))) == 5
    with pytest.raises(StoreError, match="no built dataset"):
        open_memory_store(tmp_path / "missing.nq")


def test_prepare_creates_a_store_and_reuses_it_while_the_dataset_is_unchanged(tmp_path: Path) -> None:
    nquads, folder = write(tmp_path / "d.nq", 10), tmp_path / "store"
    assert prepare_disk_store(nquads, folder) == folder
    assert folder.is_symlink() and size_of(folder) == 10
    assert (folder / MARKER).read_text().strip() == hashlib.sha256(nquads.read_bytes()).hexdigest()
    target = folder.resolve()
    prepare_disk_store(nquads, folder)
    assert folder.resolve() == target  # reused, not reloaded


def test_a_changed_dataset_rebuilds_the_store(tmp_path: Path) -> None:
    nquads, folder = write(tmp_path / "d.nq", 10), tmp_path / "store"
    prepare_disk_store(nquads, folder)
    first = folder.resolve()
    write(nquads, 12)
    prepare_disk_store(nquads, folder)
    assert folder.resolve() != first and size_of(folder) == 12
    assert first.exists()  # kept for a server that may still have it open
    write(nquads, 14)
    prepare_disk_store(nquads, folder)
    assert not first.exists() and size_of(folder) == 14  # only the newest two are kept


def test_a_failed_load_leaves_the_previous_store_in_place(tmp_path: Path) -> None:
    nquads, folder = write(tmp_path / "d.nq", 10), tmp_path / "store"
    prepare_disk_store(nquads, folder)
    before = folder.resolve()
    with nquads.open("a", encoding="utf-8") as fh:  # half a file loads, then the parser fails
        fh.write("".join(QUAD.format(n=i) for i in range(100, 5000)) + "<http://example.org/broken .\n")
    with pytest.raises(StoreError, match="cannot load"):
        prepare_disk_store(nquads, folder)
    assert folder.resolve() == before and size_of(folder) == 10
    assert leftovers(folder) == []


def test_a_load_killed_midway_leaves_the_previous_store_in_place(tmp_path: Path) -> None:
    nquads, folder = write(tmp_path / "d.nq", 10), tmp_path / "store"
    prepare_disk_store(nquads, folder)
    before = folder.resolve()
    write(nquads, 20)
    script = textwrap.dedent(f"""
        import os, signal
        from anemia_kg import store
        real = store._load_into
        def load_then_die(nquads, folder):
            real(nquads, folder)
            os.kill(os.getpid(), signal.SIGKILL)  # after the load, before the rename
        store._load_into = load_then_die
        store.prepare_disk_store({str(nquads)!r}, {str(folder)!r})
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert run.returncode == -9, run.stderr.decode()
    assert folder.resolve() == before and size_of(folder) == 10
    assert len(leftovers(folder)) == 1  # the half-made store, never in place
    prepare_disk_store(nquads, folder)
    assert size_of(folder) == 20 and leftovers(folder) == []


def test_a_folder_not_made_by_anemia_kg_is_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not prepared by anemia-kg"):
        prepare_disk_store(write(tmp_path / "d.nq", 3), folder)
    assert (folder / "precious.txt").read_text() == "keep me"


def test_an_empty_folder_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    prepare_disk_store(write(tmp_path / "d.nq", 3), folder)
    assert size_of(folder) == 3


def test_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no built dataset"):
        prepare_disk_store(tmp_path / "missing.nq", tmp_path / "store")
    with pytest.raises(StoreError, match="no built dataset"):
        upload(tmp_path / "missing.nq", gsp_endpoint="http://127.0.0.1:9/store")


def test_upload_needs_somewhere_to_go(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="gsp_endpoint"):
        upload(write(tmp_path / "d.nq", 3))
