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
from functools import partial
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Dataset, Graph

from . import iris
from .article import load_article
from .curation import Coverage, CurationError, CurationResult, curate, entity_xrefs
from .model import Problem
from .namespaces import PREFIX_IRIS
from .ontology import load_graph, load_vocabulary
from .paths import DATASET_NAME, Paths
from .rdf import to_dataset
from .shacl import ShaclReport, validate_dataset
from .xrefs import Prefetch, verify_biolink, verify_xrefs, vocabulary_versions

log = logging.getLogger(__name__)

FORMATS = {  # file suffix -> rdflib format
    "trig": "trig",
    "nq": "nquads",
    "jsonld": "json-ld",
    "ttl": "turtle",
}
REPORT_FILE = "build-report.json"
BUILDS_DIR = ".builds"  # where published builds live; data/build is a symlink to one of them


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


def assemble(paths: Paths, step: Step = lambda _: None,
             meanwhile: Callable[[Dataset], None] | None = None) -> BuildResult:
    """Parse, curate, convert and validate in memory; raise the first step's error if any step fails.

    Verifying the xrefs needs the HPO and ICD-10-CM packages, which take longer to load than all the other
    steps take to run; so child processes load them (or read their earlier answers from
    ``data/.cache/xrefs.json``) and verify the entities file's xrefs from the start
    (:class:`xrefs.Prefetch`), and their verdicts are taken last. ``meanwhile(dataset)`` runs on a dataset
    that conforms to the shapes before that (the build serialises it there). Errors stay what they were:
    curation that fails lists the xref problems with the others, and a bad xref is reported as a curation
    problem even if it made a later step fail first.
    """
    entities_label = paths.rel(paths.entities)
    with Prefetch(partial(entity_xrefs, paths.entities), paths.xref_cache):
        step("parsing the article")
        article = replace(load_article(paths.article), path=paths.rel(paths.article))
        step("reading the ontology")
        vocab = load_vocabulary(paths.ontology)
        ontology = load_graph(paths.ontology)
        problems = check_biolink_mappings(ontology, paths.ontology, paths.rel(paths.ontology))
        if problems:
            raise CurationError(problems)
        step("checking entities and claims")
        result = curate(article, paths.entities, paths.claims, vocab, entities_label=entities_label,
                        claims_label=paths.rel(paths.claims), defer_xrefs=True)
        try:
            step("building the RDF dataset")
            ds = to_dataset(result.kb, ontology)
            step("validating with SHACL")
            report = validate_dataset(ds, paths.shapes)
            if report.conforms and meanwhile is not None:
                meanwhile(ds)
        except Exception:
            _raise_xref_problems(result, entities_label)
            raise
        step("verifying cross-references")
        _raise_xref_problems(result, entities_label)
    if not report.conforms:
        raise ValidationFailed(report)
    return BuildResult(ds, result, report)


def _raise_xref_problems(result: CurationResult, label: str) -> None:
    """The curation error that a deferred xref verification finds, if it finds any problem."""
    problems = verify_xrefs(result.kb.entities, label)
    if problems:
        raise CurationError(problems)


def check_biolink_mappings(ontology: Graph, path: Path, label: str) -> list[Problem]:
    """Every Biolink term the ontology maps to must exist in the shipped Biolink model (with its line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    terms = sorted({str(o) for o in ontology.objects() if str(o).startswith(str(iris.BIOLINK))})

    def line_of(iri: str) -> int:
        token = "biolink:" + iri[len(str(iris.BIOLINK)):]
        return next((n for n, text in enumerate(lines, 1) if token in text or iri in text), 0)

    return verify_biolink(((t, line_of(t)) for t in terms), label)


def serialise(ds: Dataset, fmt: str) -> bytes:
    """One serialisation, byte-identical for the same dataset whatever the hash seed.

    N-Quads are written as sorted lines; TriG and Turtle are written by Oxigraph from them
    (:data:`_FROM_NQUADS`; rdflib orders TriG's graph blocks by hash, and its Turtle writer is slow); JSON-LD
    is rdflib's compacted form with every array sorted.
    """
    if fmt == "nquads":
        text = ds.serialize(format="nquads")
        lines = sorted(line for line in text.splitlines() if line.strip())
        return ("\n".join(lines) + "\n").encode("utf-8")
    if fmt in _FROM_NQUADS:  # Turtle is the union of all graphs, for tools that read one graph
        return _FROM_NQUADS[fmt](serialise(ds, "nquads"))
    if fmt == "json-ld":
        context = dict(PREFIX_IRIS)
        data = json.loads(ds.serialize(format="json-ld", context=context, auto_compact=True))
        return (json.dumps(_sorted_json(data), indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    raise ValueError(f"unknown format {fmt!r}")


def _trig(nquads: bytes) -> bytes:
    """TriG written by Oxigraph from the sorted N-Quads (see :func:`serialise`)."""
    quads = list(ox.parse(nquads, format=ox.RdfFormat.N_QUADS))
    quads.sort(key=lambda q: (str(q.graph_name), str(q.subject), str(q.predicate), str(q.object)))
    prefixes = dict(PREFIX_IRIS)
    data = ox.serialize(quads, format=ox.RdfFormat.TRIG, prefixes=prefixes)
    assert data is not None  # without an output file Oxigraph returns the bytes
    return data


def _turtle(nquads: bytes) -> bytes:
    """The union of all graphs as Turtle, written by Oxigraph from the sorted N-Quads.

    Each triple once, in the order of its terms; rdflib's Turtle writer took four times as long (with the
    union graph it needs first), about a sixth of the whole build.
    """
    triples = {ox.Triple(q.subject, q.predicate, q.object) for q in ox.parse(nquads, format=ox.RdfFormat.N_QUADS)}
    ordered = sorted(triples, key=lambda t: (str(t.subject), str(t.predicate), str(t.object)))
    prefixes = dict(PREFIX_IRIS)
    data = ox.serialize(ordered, format=ox.RdfFormat.TURTLE, prefixes=prefixes)
    assert data is not None  # without an output file Oxigraph returns the bytes
    return data


#: The formats written from the sorted N-Quads rather than from the dataset.
_FROM_NQUADS = {"trig": _trig, "turtle": _turtle}


def _sorted_json(value: Any) -> Any:
    """JSON-LD with every array in a fixed order (our arrays are sets: the dataset has no rdf:List)."""
    if isinstance(value, dict):
        return {k: _sorted_json(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_sorted_json(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False))
    return value


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


def serialise_all(ds: Dataset, step: Step = lambda _: None) -> dict[str, bytes]:
    """Every format of the dataset, by file name (the N-Quads made once, for the .nq, TriG and Turtle files)."""
    encoded: dict[str, bytes] = {}
    nquads: bytes | None = None
    for suffix, fmt in FORMATS.items():
        step(f"serialising {DATASET_NAME}.{suffix}")
        if fmt == "nquads" or fmt in _FROM_NQUADS:
            nquads = nquads if nquads is not None else serialise(ds, "nquads")
            encoded[f"{DATASET_NAME}.{suffix}"] = nquads if fmt == "nquads" else _FROM_NQUADS[fmt](nquads)
        else:
            encoded[f"{DATASET_NAME}.{suffix}"] = serialise(ds, fmt)
    return encoded


def write_outputs(result: BuildResult, out: Path, step: Step = lambda _: None,
                  encoded: dict[str, bytes] | None = None) -> dict[str, Path]:
    """Write every format and the report, then publish them all at once; return the published paths.

    ``encoded`` is :func:`serialise_all` of the result's dataset if the caller already has it. The files are
    written into a new folder under ``data/.builds/`` and ``data/build`` is a symbolic link that is swapped
    to it with one atomic rename. A reader sees the old build or the new one, never a mix, and a build that
    fails or is killed at any point leaves the previous build in place.
    """
    if encoded is None:
        encoded = serialise_all(result.dataset, step)
    step("writing the files")
    builds = out.parent / BUILDS_DIR
    builds.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="build-", dir=builds))
    try:
        written = dict(encoded)
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(written.items())}
        written[REPORT_FILE] = (json.dumps(report_dict(result, digests), indent=2, sort_keys=True) + "\n").encode()
        for name, data in written.items():
            with open(target / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(target, 0o755)
        _publish(target, out)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    _remove_old_builds(builds, keep=target)
    return {name: out / name for name in written}


def _publish(target: Path, out: Path) -> None:
    """Point ``out`` (a symlink) at ``target`` with one atomic rename."""
    link = out.parent / f".build-link-{os.getpid()}"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.relpath(target, out.parent), link)
    if out.is_dir() and not out.is_symlink():  # a real folder from an older layout: move it aside first
        os.replace(out, Path(tempfile.mkdtemp(prefix="legacy-", dir=target.parent)) / "build")
    os.replace(link, out)


def _remove_old_builds(builds: Path, keep: Path) -> None:
    """Delete superseded builds (best effort: a reader may still hold a file open, which Linux allows)."""
    for child in builds.iterdir():
        if child != keep:
            shutil.rmtree(child, ignore_errors=True)


def build(paths: Paths, step: Step = lambda _: None) -> tuple[BuildResult, dict[str, Path]]:
    """Assemble, validate and write the dataset.

    The dataset is serialised while the xref verdicts are still on their way (see :func:`assemble`), and
    written only once they have all come back without a problem.
    """
    encoded: dict[str, bytes] = {}
    result = assemble(paths, step, meanwhile=lambda ds: encoded.update(serialise_all(ds, step)))
    return result, write_outputs(result, paths.out, step, encoded)
