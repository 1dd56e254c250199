"""Shared fixtures: a tiny hand-made project for the many negative cases, and the real project built once.

Building the real article takes long (SHACL validation of the whole graph), so the few tests that need it
share three subprocess runs over separate copies of the real project:

* ``build-1``: the ``anemia-kg`` console script, ``PYTHONHASHSEED=1``, ``--root <copy> build``;
* ``build-2``: ``python -m anemia_kg.cli``, ``PYTHONHASHSEED=2``, ``--root <copy> build`` (for determinism);
* ``validate``: ``python -m anemia_kg.cli --root <copy> validate`` (must pass and write nothing).

They are started as soon as collection finishes (only if a selected test needs them), run in parallel with
the fast tests, and each test waits only for the run it uses. Tests treat these copies as read-only; a test
that changes something copies the folder first.

Every other test runs on ``tests/fixtures/project``: a six-line article with four entities and five claims,
copied into a temporary folder together with the real ``ontology/`` files, and mutated one line at a time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "project"
REAL_ARTICLE = REPO / "data" / "source" / "article.txt"
REAL_CLAIMS = REPO / "data" / "claims.yaml"
REAL_ENTITIES = REPO / "data" / "entities.yaml"
ONTOLOGY = REPO / "ontology"
RUN_TIMEOUT = 1800  # seconds a real build may take before the tests give up on it


# --- projects --------------------------------------------------------------------------------------


@dataclass
class Project:
    """A project folder (data/ and ontology/) that a test may change, with helpers to change it."""

    root: Path

    @property
    def build_dir(self) -> Path:
        return self.root / "data" / "build"

    def path(self, rel: str) -> Path:
        return self.root / rel

    def text(self, rel: str) -> str:
        return self.path(rel).read_text(encoding="utf-8")

    def edit(self, rel: str, old: str, new: str) -> None:
        """Replace the one occurrence of ``old`` in file ``rel`` (fails if it is not there exactly once)."""
        text = self.text(rel)
        assert text.count(old) == 1, f"{rel}: expected exactly one {old!r}, found {text.count(old)}"
        self.path(rel).write_text(text.replace(old, new), encoding="utf-8")

    def line_of(self, rel: str, needle: str, occurrence: int = 1) -> int:
        """1-based line of the ``occurrence``-th line of file ``rel`` that contains ``needle``."""
        found = [n for n, line in enumerate(self.text(rel).split("\n"), start=1) if needle in line]
        assert len(found) >= occurrence, f"{rel}: {needle!r} occurs on {len(found)} line(s)"
        return found[occurrence - 1]

    def snapshot(self) -> dict[str, bytes]:
        """The bytes of every file under data/build."""
        return {p.name: p.read_bytes() for p in sorted(self.build_dir.iterdir()) if p.is_file()}

    def leftovers(self) -> list[str]:
        """Temporary files beside data/build, and builds under data/.builds that data/build does not point to."""
        data = self.root / "data"
        stray = [p.name for p in data.iterdir() if p.name.startswith(".build-")]
        builds = data / ".builds"
        current = self.build_dir.resolve() if self.build_dir.exists() else None
        if builds.is_dir():
            stray += [f".builds/{p.name}" for p in builds.iterdir() if p.resolve() != current]
        return sorted(stray)


def copy_real_inputs(dest: Path) -> Path:
    """The real project's inputs (article, entities, claims, ontology, shapes), without any build."""
    (dest / "data" / "source").mkdir(parents=True)
    shutil.copy2(REAL_ARTICLE, dest / "data" / "source" / "article.txt")
    shutil.copy2(REAL_CLAIMS, dest / "data" / "claims.yaml")
    shutil.copy2(REAL_ENTITIES, dest / "data" / "entities.yaml")
    shutil.copytree(ONTOLOGY, dest / "ontology")
    return dest


def copy_tiny(dest: Path) -> Path:
    """The tiny fixture project plus the real ontology and shapes."""
    shutil.copytree(FIXTURE, dest)
    shutil.copytree(ONTOLOGY, dest / "ontology")
    return dest


@pytest.fixture
def tiny(tmp_path: Path) -> Project:
    """A fresh, unbuilt copy of the tiny project."""
    return Project(copy_tiny(tmp_path / "tiny"))


@pytest.fixture
def real_project(tmp_path: Path) -> Project:
    """A fresh, unbuilt copy of the real inputs, to be mutated (fails before SHACL, so it is fast)."""
    return Project(copy_real_inputs(tmp_path / "real"))


@pytest.fixture(scope="session")
def tiny_built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The tiny project built once, in process (read-only for tests)."""
    from anemia_kg.build import build
    from anemia_kg.paths import Paths

    project = Project(copy_tiny(tmp_path_factory.mktemp("tiny-built") / "tiny"))
    build(Paths(project.root))
    return project


@pytest.fixture
def tiny_built_copy(tiny_built: Project, tmp_path: Path) -> Project:
    """A private copy of the built tiny project, build output included."""
    dest = tmp_path / "tiny-built"
    shutil.copytree(tiny_built.root, dest, symlinks=True)  # data/build is a symlink into data/.builds
    return Project(dest)


# --- the real project, built in subprocesses ---------------------------------------------------------


def console_script() -> str:
    """The installed ``anemia-kg`` script of the interpreter running the tests."""
    beside = Path(sys.executable).with_name("anemia-kg")
    found = str(beside) if beside.exists() else shutil.which("anemia-kg")
    assert found, "the anemia-kg console script is not installed"
    return found


def subprocess_env(seed: str = "0") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ANEMIA_KG_ROOT"}
    env.update(PYTHONHASHSEED=seed, COLUMNS="120", PYTHONIOENCODING="utf-8")
    return env


@dataclass
class Finished:
    """A finished subprocess run over a copy of the real project."""

    name: str
    root: Path
    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def project(self) -> Project:
        return Project(self.root)

    def describe(self) -> str:
        return (f"{' '.join(self.command)} exited {self.returncode} after {self.seconds:.0f}s\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}")


class RealRuns:
    """The three subprocess runs over copies of the real project, started together, awaited one by one."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="anemia-kg-real-"))
        self.procs: dict[str, tuple[subprocess.Popen[bytes], Path, list[str], float]] = {}
        self.done: dict[str, Finished] = {}
        module = [sys.executable, "-m", "anemia_kg.cli"]
        plan = {
            "build-1": ([console_script()], "build", "1"),
            "build-2": (module, "build", "2"),
            "validate": (module, "validate", "3"),
        }
        for name, (program, command, seed) in plan.items():
            root = copy_real_inputs(self.base / name)
            cmd = [*program, "--root", str(root), command]
            out, err = open(self.base / f"{name}.out", "wb"), open(self.base / f"{name}.err", "wb")  # noqa: SIM115
            with out, err:
                proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                        cwd=self.base, env=subprocess_env(seed))
            self.procs[name] = (proc, root, cmd, time.monotonic())

    def wait(self, name: str) -> Finished:
        if name not in self.done:
            proc, root, cmd, started = self.procs[name]
            try:
                proc.wait(timeout=max(1.0, RUN_TIMEOUT - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"{' '.join(cmd)} did not finish within {RUN_TIMEOUT}s")
            self.done[name] = Finished(
                name, root, cmd, proc.returncode,
                (self.base / f"{name}.out").read_text(encoding="utf-8", errors="replace"),
                (self.base / f"{name}.err").read_text(encoding="utf-8", errors="replace"),
                time.monotonic() - started,
            )
        return self.done[name]

    def close(self) -> None:
        for proc, *_ in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.base, ignore_errors=True)


_REAL_FIXTURES = {"real_runs", "real_build", "real_build_2", "real_build_copy", "real_validate"}
_runs: RealRuns | None = None


def _real_runs() -> RealRuns:
    global _runs
    if _runs is None:
        _runs = RealRuns()
    return _runs


def pytest_configure(config: pytest.Config) -> None:
    """The knowledge model snapshots' key for this run (and the servers it starts): never the user's own."""
    if not os.environ.get("ANEMIA_KG_SNAPSHOT_KEY"):
        os.environ["ANEMIA_KG_SNAPSHOT_KEY"] = str(Path(tempfile.mkdtemp(prefix="anemia-kg-key-")) / "snapshot.key")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the real builds early, so that they overlap with the fast tests."""
    if session.config.option.collectonly:
        return
    if any(_REAL_FIXTURES & set(getattr(item, "fixturenames", ())) for item in session.items):
        _real_runs()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _runs is not None:
        _runs.close()


@pytest.fixture(scope="session")
def real_runs() -> RealRuns:
    return _real_runs()


def _succeeded(runs: RealRuns, name: str) -> Finished:
    run = runs.wait(name)
    assert run.returncode == 0, run.describe()
    return run


@pytest.fixture(scope="session")
def real_build(real_runs: RealRuns) -> Finished:
    """The real project built by the console script (PYTHONHASHSEED=1). Read-only."""
    return _succeeded(real_runs, "build-1")


@pytest.fixture(scope="session")
def real_build_2(real_runs: RealRuns) -> Finished:
    """The real project built again by ``python -m anemia_kg.cli`` (PYTHONHASHSEED=2). Read-only."""
    return _succeeded(real_runs, "build-2")


@pytest.fixture
def real_build_copy(real_build: Finished, tmp_path: Path) -> Project:
    """A private copy of the built real project, build output included, for a test to change."""
    dest = tmp_path / "real-built"
    shutil.copytree(real_build.root, dest, symlinks=True)  # data/build is a symlink into data/.builds
    return Project(dest)


@pytest.fixture(scope="session")
def real_validate(real_runs: RealRuns) -> Finished:
    """``validate`` over a copy of the real project (whatever its exit status)."""
    return real_runs.wait("validate")


# --- a socket nobody may connect to ----------------------------------------------------------------------------

NO_CONNECTION_WAIT = 0.3  # seconds a listening socket waits, after the answer, for a connection that must not come


class Listener:
    """A listening socket on a free loopback port: where SERVICE and LOAD point, to prove nobody connects."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def connections(self, wait: float = NO_CONNECTION_WAIT) -> int:
        """How many connections arrived (waiting ``wait`` seconds for the first); each is closed at once."""
        count = 0
        self.sock.settimeout(wait)
        while True:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, BlockingIOError):
                return count
            conn.close()
            count += 1
            self.sock.settimeout(0.05)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    sock = Listener()
    try:
        yield sock
    finally:
        sock.close()


# --- Debian's Chromium, driven by Playwright (never a downloaded browser) ---------------------------------------

CHROMIUM = os.environ.get("ANEMIA_KG_CHROMIUM", "/usr/bin/chromium")
# headless on a machine with no outside network: no background fetches, no first-run or sync, no QUIC
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]
BROWSER_START_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module; a missing /usr/bin/chromium fails the tests (never skips them)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (install Debian's chromium, or set ANEMIA_KG_CHROMIUM); "
                    "browsers are never downloaded")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                                              timeout=BROWSER_START_MS)
        try:
            yield chromium
        finally:
            chromium.close()
