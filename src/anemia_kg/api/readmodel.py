"""The read model the JSON API and the pages answer from, and its snapshot on disk between starts.

The model (entities, claims with their evidence, references, and the two graphs paths are searched in) is
read through SPARQL (:func:`anemia_kg.knowledge.load_knowledge`), the same way for every store. On a large
graph that is slow: at 1,000,000 triples 4.1-7.7 s in-process by run and 15-25 s through the query workers, all
of it time in which the API answers 503. The embedded store serves one N-Quads file, and the model read from
the same file by the same code is the same model; so once it has been read it is pickled to
``data/.cache/model-<dataset>-<code>.pickle``, and a later start loads it from there instead (about 0.4 s at
1,000,000 triples).

The file name holds what the model was read from (the N-Quads' sha256) and what read it (a digest of this
package's source files and queries, and the Python and networkx versions), so that a rebuilt dataset or
changed code never meets a stale snapshot. A snapshot that cannot be read is reported in the log, removed and
written again. A remote engine gets no snapshot: its data can change behind the endpoint.

Pickle runs code when it loads, and a project folder may come from anywhere (a shared folder, an archive), so
a snapshot is only unpickled if it carries an HMAC-SHA256 made with this user's key, which lives outside any
project (``~/.cache/anemia-kg/snapshot.key``, mode 0600, made on first use; ``$ANEMIA_KG_SNAPSHOT_KEY`` names
another file). A file this user's anemia-kg did not write is refused before any of it is unpickled. Writes
are atomic: a temporary file, then a rename.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import hmac
import logging
import os
import pickle
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import networkx as nx

from .. import __version__
from ..causal import build_graph
from ..files import write_atomic
from ..knowledge import Knowledge, Select, fetch_knowledge_rows, knowledge_from_rows
from ..paths import Paths

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent.parent  # src/anemia_kg
SNAPSHOT_GLOB = "model-*.pickle"
MAGIC = b"akg-model-1\n"  # then the HMAC-SHA256 of the pickle (32 bytes), then the pickle
KEY_ENV = "ANEMIA_KG_SNAPSHOT_KEY"
KEY_BYTES = 32
LEFTOVER_SECONDS = 600  # a temporary file this old is from a writer that was killed, not from one at work


@dataclass(frozen=True)
class Model:
    """The in-memory read model: entities, claims and evidence, and the two graphs paths are searched in."""

    knowledge: Knowledge
    causal: nx.DiGraph
    everything: nx.DiGraph


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No garbage collection while millions of long-lived objects are made (a third of the model's reading).

    None of them is garbage: the collector would only walk them again and again as they accumulate.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_model(select: Select) -> Model:
    """The knowledge model and its graphs, read through ``select`` (SPARQL over the union default graph).

    The collector is paused only while the model is made from the answers, not while they are fetched: the
    server answers requests meanwhile, and their garbage must still be collected.
    """
    rows = fetch_knowledge_rows(select)
    with paused_gc():
        knowledge = knowledge_from_rows(rows)
        return Model(knowledge, build_graph(knowledge, "causal"), build_graph(knowledge, "all"))


# --- the snapshot -----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of everything that decides what the model read from a dataset looks like.

    Every source file and query of the package, not only knowledge.py and causal.py: a snapshot made
    needlessly again costs one slow start, a stale one would serve a model the code no longer makes.
    """
    digest = hashlib.sha256(f"{__version__} {sys.version} networkx {nx.__version__} "
                            f"pickle {pickle.HIGHEST_PROTOCOL}".encode())
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix in (".py", ".rq") and path.is_file():
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def snapshot_path(paths: Paths, dataset_digest: str) -> Path:
    """Where the model read from the N-Quads with sha256 ``dataset_digest`` by this code is kept."""
    return paths.data / ".cache" / f"model-{dataset_digest[:16]}-{code_digest()[:16]}.pickle"


def key_path() -> Path:
    """This user's snapshot key: ``$ANEMIA_KG_SNAPSHOT_KEY``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "anemia-kg" / "snapshot.key"


def _key(create: bool) -> bytes | None:
    """The key, made (0600, atomically, the first writer's kept) if ``create`` and there is none yet."""
    path = key_path()
    try:
        key = path.read_bytes()
        if len(key) == KEY_BYTES:
            return key
        raise ValueError(f"{path} holds {len(key)} bytes, not a key of {KEY_BYTES}; remove it")
    except FileNotFoundError:
        if not create:
            return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".key-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(KEY_BYTES))
        with contextlib.suppress(FileExistsError):  # another process made one first: theirs is the key
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path.read_bytes()


def _mac(key: bytes, payload: bytes | memoryview) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def load_snapshot(path: Path) -> Model | None:
    """The model kept at ``path``, or None when there is none or it cannot be used (then it is removed).

    The HMAC is checked before anything is unpickled: a file this user's anemia-kg did not write is refused.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read the model snapshot %s (%s); reading the model through SPARQL instead", path, exc)
        return None
    try:
        key = _key(create=False)
        start = len(MAGIC) + KEY_BYTES
        with memoryview(data) as view:
            if key is None or not data.startswith(MAGIC) or not hmac.compare_digest(
                    data[len(MAGIC):start], _mac(key, view[start:])):
                raise ValueError("it was not written by this user's anemia-kg (its signature does not match "
                                 f"the key at {key_path()})")
            with paused_gc():  # unpickling is 4x faster without the collector's walks
                kept = pickle.loads(view[start:])
        name, model = kept
        if name != path.name or not isinstance(model, Model):
            raise ValueError(f"it holds {type(model).__name__} under the name {name!r}")
        return model
    except Exception as exc:  # pickle raises almost anything on a damaged file
        log.warning("ignoring the model snapshot %s (%s: %s); reading the model through SPARQL instead",
                    path, type(exc).__name__, exc)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def save_snapshot(path: Path, model: Model) -> None:
    """Keep ``model`` at ``path``, signed (atomically); remove the snapshots of other datasets or code, and
    leftovers."""
    payload = pickle.dumps((path.name, model), protocol=pickle.HIGHEST_PROTOCOL)
    key = _key(create=True)
    assert key is not None  # made if there was none
    write_atomic(path, MAGIC + _mac(key, payload) + payload)
    for other in path.parent.glob(SNAPSHOT_GLOB):
        if other != path:
            with contextlib.suppress(OSError):
                other.unlink()
    for leftover in path.parent.glob(".model-*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - leftover.stat().st_mtime > LEFTOVER_SECONDS:
                leftover.unlink()
