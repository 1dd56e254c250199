"""The ``anemia-kg`` command: a thin layer over the pipeline's functions.

Command names and options are a contract that users' scripts rely on: ``build``, ``validate``, ``stats``,
``query``. Every error a person can cause (a bad input file, a bad query, a bad option) is printed as a
clear message naming the file and line, with exit status 1, never as a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pyoxigraph as ox
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from . import build as build_step
from . import query as q
from .article import ArticleError
from .build import BuildResult, Paths, ValidationFailed
from .curation import CurationError
from .ontology import OntologyError
from .query import GRAPH_FORMATS, RESULT_FORMATS, QueryError
from .shacl import ShapesError, load_shapes, validate_graph
from .stats import collect
from .store import StoreError, open_memory_store
from .yamlfile import YamlError

app = typer.Typer(
    help="Build, check and query the anemia-kg knowledge graph (anemia, B12 deficiency and neuropathy).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(emoji=False)
err = Console(stderr=True, emoji=False, highlight=False)

KNOWN_ERRORS = (ArticleError, CurationError, OntologyError, ShapesError, ValidationFailed, QueryError,
                StoreError, YamlError)


def _default_root() -> Path:
    """$ANEMIA_KG_ROOT, else the current folder if it holds the project's data, else the source checkout."""
    if os.environ.get("ANEMIA_KG_ROOT"):
        return Path(os.environ["ANEMIA_KG_ROOT"])
    if (Path.cwd() / "data" / "claims.yaml").exists():
        return Path.cwd()
    return build_step.ROOT


@app.callback()
def main(
    ctx: typer.Context,
    root: Annotated[Path | None, typer.Option(help="Project folder holding data/ and ontology/.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err, show_path=False)])
    ctx.obj = Paths((root or _default_root()).resolve())


@contextmanager
def _errors(what: str) -> Iterator[None]:
    """Print a known failure as the list of its problems and exit with status 1."""
    try:
        yield
    except KNOWN_ERRORS as exc:
        problems = getattr(exc, "problems", None)
        lines = [str(p) for p in problems] if problems else str(exc).splitlines()
        err.print(f"[bold red]{what} failed[/]: {len(lines)} problem(s)" if problems else f"[bold red]{what} failed[/]")
        for line in lines:  # one problem per line, never wrapped, so that it can be grepped
            err.print(f"  {line}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A spinner naming the current step (only on a terminal), and the step callback for the pipeline."""
    if not enabled or not err.is_terminal:
        yield lambda message: logging.getLogger("anemia_kg").info(message)
        return
    with err.status("starting") as status:
        yield lambda message: status.update(message)


def _summary(result: BuildResult, paths: Paths) -> None:
    kb, cov = result.curation.kb, result.coverage
    claims = kb.claims
    cited_covered = sum(u.id in cov.covered for u in cov.cited)
    table = Table(title="anemia-kg", show_header=False, box=None)
    table.add_row("entities", str(len(kb.entities)))
    table.add_row("claims", f"{len(claims)} ({sum(c.claim.qualifiers.negated for c in claims)} negated, "
                  f"{sum(c.claim.qualifiers.certainty.value == 'possible' for c in claims)} hedged, "
                  f"{sum(not c.citations for c in claims)} supported by the article alone)")
    table.add_row("references", str(len(kb.article.references)))
    unresolved = kb.article.unresolved_citations
    table.add_row("unresolved citations", ", ".join(map(str, unresolved)) if unresolved else "none")
    table.add_row("cited units covered", f"{cited_covered}/{len(cov.cited)} ({cov.percent(cov.cited):.0f}%)")
    table.add_row("all claim-bearing units covered",
                  f"{len(cov.covered & {u.id for u in cov.units})}/{len(cov.units)} "
                  f"({cov.percent(cov.units):.0f}%), {len(cov.waived)} waived")
    table.add_row("triples", str(len(result.dataset)))
    table.add_row("SHACL", "conforms" if result.shacl.conforms else "violations")
    out.print(table)
    for warning in result.curation.warnings:
        err.print(f"warning: {warning}", markup=False, soft_wrap=True)


@app.command()
def build(ctx: typer.Context) -> None:
    """Parse the article, check the curated claims, build the RDF dataset, validate it and write data/build/."""
    paths: Paths = ctx.obj
    with _errors("build"), _progress(True) as step:
        result, files = build_step.build(paths, step)
    _summary(result, paths)
    for _, path in sorted(files.items()):
        out.print(f"wrote {paths.rel(path)} ({path.stat().st_size:,} bytes)", highlight=False)


@app.command()
def validate(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Option(
        "--file", help="Validate this RDF file (Turtle, TriG, N-Quads, JSON-LD) against the shapes instead.")] = None,
) -> None:
    """Run every check of the build and the SHACL shapes without writing anything."""
    paths: Paths = ctx.obj
    if file is not None:
        _validate_file(paths, file)
        return
    with _errors("validation"), _progress(True) as step:
        result = build_step.assemble(paths, step)
    _summary(result, paths)
    out.print("[green]valid[/]: every check passed and the dataset conforms to ontology/shapes.ttl")


def _validate_file(paths: Paths, file: Path) -> None:
    from rdflib import Dataset

    from .shacl import union_graph

    fmt = {".ttl": "turtle", ".trig": "trig", ".nq": "nquads", ".jsonld": "json-ld", ".nt": "nt"}.get(file.suffix)
    if fmt is None:
        err.print(f"{file}: unknown RDF format (use .ttl, .trig, .nq, .nt or .jsonld)")
        raise typer.Exit(2)
    with _errors("validation"):
        try:
            ds = Dataset()
            ds.parse(file, format=fmt)
        except FileNotFoundError:
            raise StoreError(f"{file}: file not found") from None
        except Exception as exc:  # rdflib's parsers raise many types
            raise StoreError(f"{file}: cannot parse as {fmt}: {exc}") from None
        report = validate_graph(union_graph(ds), load_shapes(paths.shapes))
        if not report.conforms:
            raise ValidationFailed(report)
    out.print(f"[green]valid[/]: {file} conforms to {paths.rel(paths.shapes)}")


def _store(paths: Paths) -> Any:
    """The built dataset in an embedded Oxigraph store, building it first if there is no build yet."""
    nquads = paths.built("nq")
    if not nquads.exists():
        err.print(f"no build at {paths.rel(paths.out)}; building it first")
        with _errors("build"), _progress(True) as step:
            build_step.build(paths, step)
    with _errors("loading"):
        return open_memory_store(nquads)


@app.command()
def stats(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Counts by class and predicate, coverage of the article, unresolved citations and uncited claims."""
    if fmt not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="--format")
    paths: Paths = ctx.obj
    with _errors("stats"):
        data = collect(_store(paths))
    if fmt == "json":
        out.print_json(json.dumps(data))
        return
    for key in ("classes", "predicates", "coverage", "unresolved_citations", "uncited_claims"):
        rows = data[key]
        table = Table(title=key.replace("_", " "), title_justify="left")
        for col in (rows[0].keys() if rows else ["(none)"]):
            table.add_column(col)
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        out.print(table)
    out.print(f"{data['totals']['triples']} triples, {data['totals']['claims']} claims")


@app.command()
def query(
    ctx: typer.Context,
    sparql: Annotated[str | None, typer.Argument(help="The SPARQL query, or '-' to read it from stdin.")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the query from this .rq file.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, xml, csv or tsv (turtle or ntriples "
                                     "for CONSTRUCT/DESCRIBE).")] = "table",
) -> None:
    """Run a SPARQL query over the built graph; the default graph is the union of all named graphs."""
    if fmt not in ("table", *RESULT_FORMATS, *GRAPH_FORMATS):
        raise typer.BadParameter(f"unknown format {fmt!r}", param_hint="--format")
    text = _query_text(sparql, file)
    paths: Paths = ctx.obj
    store = _store(paths)
    with _errors("query"):
        results = q.run(store, text)
        if fmt == "table":
            table = q.to_table(results)
            view = Table(*table.columns)
            for row in table.rows:
                view.add_row(*row)
            out.print(view)
            out.print(f"{len(table.rows)} row(s)", highlight=False)
            return
        if fmt in ("turtle", "ntriples") and not isinstance(results, ox.QueryTriples):
            raise QueryError(f"--format {fmt} is for CONSTRUCT and DESCRIBE queries")
        sys.stdout.buffer.write(q.serialise(results, fmt))
        sys.stdout.buffer.flush()


def _query_text(sparql: str | None, file: Path | None) -> str:
    if file is not None and sparql is not None:
        raise typer.BadParameter("give the query as an argument or with --file, not both")
    if file is not None:
        try:
            return file.read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {file}: {exc.strerror}", param_hint="--file") from None
    if sparql == "-":
        return sys.stdin.read()
    if not sparql or not sparql.strip():
        raise typer.BadParameter("give a SPARQL query (or --file query.rq)", param_hint="SPARQL")
    return sparql


if __name__ == "__main__":  # pragma: no cover
    app()
