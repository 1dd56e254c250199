"""The one orchestration point of the build side: article -> units -> claims -> RDF -> SHACL -> files.

Nothing is written unless every check passes, and what is written is written atomically: all files go to a
temporary folder beside the output first and are moved into place one by one only when all of them exist,
so a failed or interrupted build leaves the previous output as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rdflib import Dataset, Graph

from . import iris
from .article import load_article
from .curation import Coverage, CurationError, CurationResult, curate
from .model import Problem
from .ontology import load_graph, load_vocabulary
from .rdf import to_dataset
from .shacl import ShaclReport, union_graph, validate_dataset
from .xrefs import verify_biolink, vocabulary_versions

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DATASET_NAME = "anemia-kg"
FORMATS = {  # file suffix -> rdflib format
    "trig": "trig",
    "nq": "nquads",
    "jsonld": "json-ld",
    "ttl": "turtle",
}
REPORT_FILE = "build-report.json"


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

    def built(self, suffix: str) -> Path:
        return self.out / f"{DATASET_NAME}.{suffix}"

    def rel(self, path: Path) -> str:
        """A path as a person in the project root would type it."""
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)


class ValidationFailed(Exception):
    """The dataset does not conform to the SHACL shapes."""

    def __init__(self, report: ShaclReport):
        self.report = report
        super().__init__(str(report))


@dataclass(frozen=True)
class BuildResult:
    dataset: Dataset
    curation: CurationResult
    shacl: ShaclReport

    @property
    def coverage(self) -> Coverage:
        return self.curation.coverage


Step = Callable[[str], None]


def assemble(paths: Paths, step: Step = lambda _: None) -> BuildResult:
    """Parse, curate, convert and validate in memory; raise the first step's error if any step fails."""
    step("parsing the article")
    article = replace(load_article(paths.article), path=paths.rel(paths.article))
    step("reading the ontology")
    vocab = load_vocabulary(paths.ontology)
    ontology = load_graph(paths.ontology)
    problems = check_biolink_mappings(ontology, paths.ontology, paths.rel(paths.ontology))
    if problems:
        raise CurationError(problems)
    step("checking entities and claims")
    result = curate(article, paths.entities, paths.claims, vocab,
                    entities_label=paths.rel(paths.entities), claims_label=paths.rel(paths.claims))
    step("building the RDF dataset")
    ds = to_dataset(result.kb, ontology)
    step("validating with SHACL")
    report = validate_dataset(ds, paths.shapes)
    if not report.conforms:
        raise ValidationFailed(report)
    return BuildResult(ds, result, report)


def check_biolink_mappings(ontology: Graph, path: Path, label: str) -> list[Problem]:
    """Every Biolink term the ontology maps to must exist in the shipped Biolink model (with its line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    terms = sorted({str(o) for o in ontology.objects() if str(o).startswith(str(iris.BIOLINK))})

    def line_of(iri: str) -> int:
        token = "biolink:" + iri[len(str(iris.BIOLINK)):]
        return next((n for n, text in enumerate(lines, 1) if token in text or iri in text), 0)

    return verify_biolink(((t, line_of(t)) for t in terms), label)


def serialise(ds: Dataset, fmt: str) -> bytes:
    """One serialisation, byte-identical for the same dataset (N-Quads lines are sorted)."""
    if fmt == "nquads":
        text = ds.serialize(format="nquads")
        lines = sorted(line for line in text.splitlines() if line.strip())
        return ("\n".join(lines) + "\n").encode("utf-8")
    if fmt == "turtle":  # the union of all graphs, for tools that read one graph
        union = union_graph(ds)
        for prefix, ns in iris.PREFIXES.items():
            union.bind(prefix, ns, replace=True)
        return union.serialize(format="turtle").encode("utf-8")
    if fmt == "json-ld":
        context = {prefix: str(ns) for prefix, ns in iris.PREFIXES.items()}
        return ds.serialize(format="json-ld", context=context, indent=1).encode("utf-8")
    return ds.serialize(format=fmt).encode("utf-8")


def report_dict(result: BuildResult, files: dict[str, str]) -> dict[str, Any]:
    """The machine-readable build report (no timestamps: the same input gives the same report)."""
    kb, cov = result.curation.kb, result.coverage
    claims = kb.claims
    return {
        "source": kb.source_id,
        "entities": len(kb.entities),
        "claims": len(claims),
        "negated_claims": sum(c.claim.qualifiers.negated for c in claims),
        "uncited_claims": sorted(c.claim.id for c in claims if not c.citations),
        "references": len(kb.article.references),
        "unresolved_citations": list(kb.article.unresolved_citations),
        "coverage": {
            "claim_bearing_units": len(cov.units),
            "covered": sum(u.id in cov.covered for u in cov.units),
            "waived": len(cov.waived),
            "cited_units": len(cov.cited),
            "cited_covered": sum(u.id in cov.covered for u in cov.cited),
            "percent_cited_covered": round(cov.percent(cov.cited), 1),
            "percent_all_covered": round(cov.percent(cov.units), 1),
        },
        "triples": len(result.dataset),
        "vocabularies": vocabulary_versions(),
        "files": files,
    }


def write_outputs(result: BuildResult, out: Path, step: Step = lambda _: None) -> dict[str, Path]:
    """Write every format and the report atomically into ``out``; return the written paths."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent))
    try:
        written: dict[str, bytes] = {}
        for suffix, fmt in FORMATS.items():
            step(f"writing {DATASET_NAME}.{suffix}")
            written[f"{DATASET_NAME}.{suffix}"] = serialise(result.dataset, fmt)
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(written.items())}
        written[REPORT_FILE] = (json.dumps(report_dict(result, digests), indent=2, sort_keys=True) + "\n").encode()
        for name, data in written.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        out.mkdir(parents=True, exist_ok=True)
        for name in written:  # each replace is atomic; the report goes last so it never describes old files
            if name != REPORT_FILE:
                os.replace(tmp / name, out / name)
        os.replace(tmp / REPORT_FILE, out / REPORT_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {name: out / name for name in written}


def build(paths: Paths, step: Step = lambda _: None) -> tuple[BuildResult, dict[str, Path]]:
    """Assemble, validate and write the dataset."""
    result = assemble(paths, step)
    return result, write_outputs(result, paths.out, step)
