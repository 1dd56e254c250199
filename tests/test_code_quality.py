"""The code stays lint-clean (ruff) and type-checks (mypy), as the README's development notes promise.

Both tools come with the test dependencies (``.[test]`` pulls in ``.[dev]``), pinned to a minor release in
pyproject.toml, so a failure here is a change in this repository, not in the tools.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing_in_src_and_tests() -> None:
    done = _run("ruff", "check", "src", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_no_type_error_in_src() -> None:
    done = _run("mypy", "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
