"""write_atomic: a reader sees the old file or the new one, never half of one, and a failure leaves nothing."""

from __future__ import annotations

import os

import pytest

from anemia_kg import files


def test_writes_whole_files_private_unless_told(tmp_path):
    path = tmp_path / "a" / "b" / "cache.json"
    files.write_atomic(path, b"one")
    assert path.read_bytes() == b"one" and path.stat().st_mode & 0o777 == 0o600
    files.write_atomic(path, b"two", mode=0o644)
    assert path.read_bytes() == b"two" and path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["cache.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "cache.json"
    files.write_atomic(path, b"old")

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        files.write_atomic(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["cache.json"]
