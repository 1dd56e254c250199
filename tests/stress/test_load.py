"""The load test (``bench/loadtest.py``) at a small bounded size: the real server over the real build, the request
mix at 1, 4, 16 and 64 connections, every answer checked. Asserts zero wrong answers, zero transport errors and
zero 5xx (at 64 connections the documented "all query workers busy" 503 is tolerated: load shedding); never a
timing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # `bench` is a folder of the repository, not an installed package

from bench.loadtest import MODERATE, main  # noqa: E402

REQUESTS = 200  # per level


@pytest.mark.parametrize("cache_mb", ["0", "64"], ids=["no cache", "default cache"])
def test_the_load_test_finds_no_5xx_and_no_wrong_answer(real_build, tmp_path: Path, cache_mb: str) -> None:
    status = main(["--requests", str(REQUESTS), "--levels", "1,4,16,64", "--root", str(real_build.root),
                   "--out", str(tmp_path), "--timeout", "120", "--cache-mb", cache_mb])
    [written] = list(tmp_path.glob("loadtest-*.json"))
    results = json.loads(written.read_text(encoding="utf-8"))
    assert (tmp_path / written.name.replace(".json", ".md")).exists()
    levels = {level["connections"]: level for level in results["levels"]}
    assert sorted(levels) == [1, 4, 16, 64]
    for connections, level in levels.items():
        assert level["requests"] == REQUESTS, level
        assert level["wrong"] == 0 and level["transport_errors"] == 0 and level["other_4xx"] == 0, level["failures"]
        if connections <= MODERATE:
            assert level["5xx"] == 0, level["failures"]
        else:
            assert level["5xx"] == level["busy_503"], level["failures"]
        assert set(level["by_kind"]) == set(results["mix"])  # every kind of request was sent
    assert status == 0, results["failures"]
    assert {"cpus", "cpu", "memory_gb", "python"} <= set(results["machine"])
