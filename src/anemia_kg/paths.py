"""Where a project's files are: the inputs, the build and the caches, all under one root.

A module of its own, with nothing but the standard library, because every command needs it first and the
server needs it before it starts its query workers: taken from build.py, it cost each start the import of
the whole build side (rdflib, pyshacl) before a worker could be spawned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the source checkout
DATASET_NAME = "anemia-kg"


@dataclass(frozen=True)
class Paths:
    """Where the inputs are and where the build goes; everything hangs off one project root."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def article(self) -> Path:
        return self.data / "source" / "article.txt"

    @property
    def entities(self) -> Path:
        return self.data / "entities.yaml"

    @property
    def claims(self) -> Path:
        return self.data / "claims.yaml"

    @property
    def ontology(self) -> Path:
        return self.root / "ontology" / "anemia-kg.ttl"

    @property
    def shapes(self) -> Path:
        return self.root / "ontology" / "shapes.ttl"

    @property
    def out(self) -> Path:
        return self.data / "build"

    @property
    def xref_cache(self) -> Path:
        """The verdicts on the entities' xrefs, kept between builds (see :mod:`anemia_kg.xrefs`); git-ignored."""
        return self.data / ".cache" / "xrefs.json"

    def built(self, suffix: str) -> Path:
        return self.out / f"{DATASET_NAME}.{suffix}"

    def rel(self, path: Path) -> str:
        """A path as a person in the project root would type it."""
        try:  # abspath, not resolve: data/build is a symlink and should be shown as data/build
            return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(self.root)))
        except ValueError:
            return str(path)
