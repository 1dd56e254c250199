"""The ``anemia-kg`` command: a thin layer over the pipeline's functions.

Command names and options are a contract that users' scripts rely on: ``build``, ``validate``, ``stats``,
``query``. Every error a person can cause (a bad input file, a bad query, a bad option) is printed as a
clear message naming the file and line, with exit status 1, never as a traceback.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

if TYPE_CHECKING:
    from .build import BuildResult
    from .paths import Paths

# The pipeline's modules (rdflib, pyshacl, ...) are imported by the commands that use them, not here: the
# server's query workers are spawned processes, and a spawned process runs the parent's main module again
# (this one, for `anemia-kg serve`), which took each worker 0.8 s of its start when they were imported here.

app = typer.Typer(
    help="Build, check and query the anemia-kg knowledge graph (anemia, B12 deficiency and neuropathy).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(emoji=False)
err = Console(stderr=True, emoji=False, highlight=False)


def _known_errors() -> tuple[type[Exception], ...]:
    """The failures of the pipeline a person can act on: reported as their problems, never as a traceback."""
    from .article import ArticleError
    from .build import ValidationFailed
    from .curation import CurationError
    from .ontology import OntologyError
    from .query import QueryError
    from .shacl import ShapesError
    from .store import StoreError
    from .yamlfile import YamlError

    return (ArticleError, CurationError, OntologyError, ShapesError, ValidationFailed, QueryError, StoreError,
            YamlError)


def _default_root() -> Path:
    """$ANEMIA_KG_ROOT, else the current folder if it holds the project's data, else the source checkout."""
    if os.environ.get("ANEMIA_KG_ROOT"):
        return Path(os.environ["ANEMIA_KG_ROOT"])
    if (Path.cwd() / "data" / "claims.yaml").exists():
        return Path.cwd()
    from .paths import ROOT

    return ROOT


@app.callback()
def main(
    ctx: typer.Context,
    root: Annotated[Path | None, typer.Option(help="Project folder holding data/ and ontology/.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
) -> None:
    from .paths import Paths

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err, show_path=False)])
    folder = (root or _default_root()).resolve()
    # A wrong folder is named as such, not as the first file some step then misses (the article, the build).
    # `serve --endpoint` may run without one: it reads everything from the remote engine.
    if not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder", param_hint="--root / ANEMIA_KG_ROOT")
    if not (folder / "data").is_dir() and ctx.invoked_subcommand != "serve":
        raise typer.BadParameter(f"{folder} has no data/ folder: give the project folder, the one holding data/ "
                                 "and ontology/", param_hint="--root / ANEMIA_KG_ROOT")
    ctx.obj = Paths(folder)


@contextmanager
def _errors(what: str, extra: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Print a known failure as the list of its problems and exit with status 1."""
    try:
        yield
    except _known_errors() + extra as exc:
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
    table.add_row("unresolved citations", (f"{len(unresolved)}: " + ", ".join(f"[{n}]" for n in unresolved))
                  if unresolved else "none")
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
    from . import build as build_step

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
    from . import build as build_step

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

    from .build import ValidationFailed
    from .shacl import load_shapes, union_graph, validate_graph
    from .store import StoreError

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
    from . import build as build_step
    from .store import open_memory_store

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
    from .stats import collect

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
    fmt: Annotated[str, typer.Option("--format", help="table, json, xml, csv or tsv; for CONSTRUCT/DESCRIBE "
                                     "table, turtle, ntriples, json (JSON-LD) or xml (RDF/XML).")] = "table",
) -> None:
    """Run a SPARQL query over the built graph; the default graph is the union of all named graphs."""
    import pyoxigraph as ox

    from . import query as q
    from .query import GRAPH_FORMATS, RESULT_FORMATS, QueryError

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
        if fmt not in RESULT_FORMATS and not isinstance(results, ox.QueryTriples):
            raise QueryError(f"--format {fmt} is for CONSTRUCT and DESCRIBE queries")
        if fmt not in GRAPH_FORMATS and isinstance(results, ox.QueryTriples):
            raise QueryError(f"--format {fmt} is for SELECT and ASK queries; a CONSTRUCT or DESCRIBE answer is "
                             f"RDF: use turtle, ntriples, json (JSON-LD) or xml (RDF/XML)")
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


# --- serving and the path questions --------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    store: Annotated[Path | None, typer.Option(help="Keep the embedded Oxigraph store on disk in this folder "
                                               "(default: in memory).")] = None,
    endpoint: Annotated[str | None, typer.Option(help="Serve from this remote SPARQL 1.1 query endpoint "
                                                 "instead (load it first with `anemia-kg load`).")] = None,
    workers: Annotated[int, typer.Option(help="Query worker processes of the embedded store.", min=1, max=32)] = 2,
    query_timeout: Annotated[float, typer.Option(help="Seconds a SPARQL query may run.", min=0.1)] = 5.0,
    max_rows: Annotated[int, typer.Option(help="Most rows one SPARQL answer may hold.", min=1)] = 10_000,
    query_memory_mb: Annotated[int, typer.Option(help="Megabytes of memory one SPARQL query may add to its worker "
                                                 "before the worker is stopped (422); 0: no limit.", min=0)] = 1024,
    cache_mb: Annotated[float, typer.Option(help="Megabytes of answers kept to answer the same request again "
                                            "(the graph is read-only); 0 turns the cache off.", min=0)] = 64,
) -> None:
    """Serve the SPARQL endpoint (/sparql) and the HTTP API (/api/..., OpenAPI at /docs), building first if needed."""
    from .api.services import ensure_build, prepare_services, start_executor
    from .api.settings import Settings
    from .executor import ExecutorError

    paths: Paths = ctx.obj
    with _errors("serve", (OSError,)):
        _check_listen(host, port)
    if endpoint is None:
        with _errors("build"), _progress(True) as step:
            if not paths.built("nq").exists():
                step("building the graph first")
            ensure_build(paths)
    settings = Settings(root=paths.root, store=store, endpoint=endpoint, workers=workers,
                        query_timeout=query_timeout, max_rows=max_rows, query_memory_mb=query_memory_mb,
                        cache_bytes=int(cache_mb * 1024 * 1024))
    # Open the store before uvicorn starts, so that an unreachable engine or a broken store is one clear
    # message rather than uvicorn's start-up traceback. SPARQL is answered from then on; the knowledge model
    # the API and pages use is read in the background once the app starts (they answer 503 until it is in,
    # /health included).
    with _errors("serve", (ExecutorError, OSError)):
        executor, snapshot = start_executor(settings)
        try:  # the query workers open the dataset while the web stack is imported (0.7 s; start-up is 2 s at 1M)
            import uvicorn

            from .api import create_app
            from .api.hitlane import protocol_for
        except BaseException:
            executor.close()
            raise
        services = prepare_services(settings, executor, snapshot)  # the app reads the model once it starts
    try:
        err.print(f"anemia-kg serving on http://{host}:{port}/  (SPARQL: /sparql, API docs: /docs)", soft_wrap=True)
        # No access log: a log record per request is CPU the answers need more (errors are still logged).
        # The HTTP protocol answers cache hits itself, before an ASGI request cycle (api/hitlane.py).
        application = create_app(settings, services=services)
        uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False,
                    http=protocol_for(application))
    finally:
        services.close()


def _check_listen(host: str, port: int) -> None:
    """Fail before anything starts if uvicorn could not listen on ``host:port``: it would find out only after
    the workers were up and "serving on" was printed, and exit with its own status 3."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        reason = "the port is in use (another server?); choose another with --port" \
            if getattr(exc, "errno", None) == errno.EADDRINUSE else exc.strerror or str(exc)
        raise OSError(f"cannot listen on {host}:{port}: {reason}") from None


@app.command()
def load(
    ctx: typer.Context,
    endpoint: Annotated[str | None, typer.Option(help="The engine's SPARQL query endpoint (used to verify).")] = None,
    update_endpoint: Annotated[str | None, typer.Option(help="SPARQL Update endpoint to load through.")] = None,
    gsp: Annotated[str | None, typer.Option(help="Graph Store Protocol endpoint (preferred), e.g. "
                                            "http://127.0.0.1:7878/store or http://host:3030/ds/data.")] = None,
) -> None:
    """Upload the built dataset to a remote SPARQL engine (Oxigraph server, Fuseki, ...), replacing its graphs."""
    from .store import upload

    if not (update_endpoint or gsp):
        raise typer.BadParameter("give --gsp URL or --update-endpoint URL", param_hint="--gsp")
    paths: Paths = ctx.obj
    _store(paths)  # builds first if needed
    with _errors("load"):
        count = upload(paths.built("nq"), endpoint=endpoint, update_endpoint=update_endpoint, gsp_endpoint=gsp)
    out.print(f"uploaded {count:,} quads", highlight=False)


def _knowledge(paths: Paths) -> Any:
    from .knowledge import load_knowledge, select_from_store

    store = _store(paths)
    with _errors("loading"):
        return load_knowledge(select_from_store(store))


@app.command()
def entity(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Id, IRI, CURIE, cross-reference (HP:0002829), label or synonym.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, as GET /api/entities/{id} answers.")] = False,
) -> None:
    """One entity: its names, cross-references and every relation with its evidence."""
    from .knowledge import UnknownEntity

    k = _knowledge(ctx.obj)
    with _errors("entity", (UnknownEntity,)):
        e = k.resolve(name)
        relations = k.relations(e.id)
    if as_json:
        d = e.to_dict()
        _print_json({"entity": {key: d[key] for key in ("id", "label", "type", "synonyms", "xrefs", "definition")},
                     "relations": relations})
        return
    out.print(f"[bold]{e.label}[/] ({e.type_label}; ent:{e.id})")
    if e.synonyms:
        out.print("also: " + ", ".join(e.synonyms), highlight=False)
    for x in e.xrefs:
        out.print(f"  {x.match}Match {x.id} {x.label or ''}", highlight=False)
    for r in relations:
        other = r["other"]["label"]
        arrow = f"—{r['label']}→ {other}" if r["direction"] == "out" else f"←{r['label']}— {other}"
        out.print(f"\n{'NOT ' if r['negated'] else ''}{arrow}  [{r['certainty']}]", highlight=False, markup=False)
        _print_evidence(r["qualifiers"], r["evidence"])


@app.command()
def paths(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Where the chain starts (any name of an entity).")],
    target: Annotated[str, typer.Argument(help="Where it ends.")],
    max_hops: Annotated[int, typer.Option(min=1, max=8)] = 4,
    limit: Annotated[int, typer.Option(min=1, max=50)] = 5,
    relations: Annotated[str, typer.Option(help="causal or all.")] = "causal",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, as GET /api/paths answers.")] = False,
) -> None:
    """How can SOURCE lead to TARGET, and on what evidence? Ranked causal chains with quotes and references."""
    from .causal import build_graph, find_paths
    from .knowledge import UnknownEntity

    if relations not in ("causal", "all"):
        raise typer.BadParameter("use causal or all", param_hint="--relations")
    k = _knowledge(ctx.obj)
    with _errors("paths", (UnknownEntity,)):
        src, dst = k.resolve(source), k.resolve(target)
        graph = build_graph(k, relations)
        found = find_paths(graph, src.id, dst.id, max_hops=max_hops, limit=limit) \
            if src.id in graph and dst.id in graph else []
    if as_json:
        _print_json({"source": src.brief(), "target": dst.brief(), "relations": relations, "paths": found})
        return
    if not found:
        out.print(f"no {relations} path from {src.label} to {dst.label} within {max_hops} hops", highlight=False)
    for n, path in enumerate(found, 1):
        chain = path["nodes"][0]["label"] + "".join(
            f" → {e['reading']} → {node['label']}" for e, node in zip(path["edges"], path["nodes"][1:], strict=True))
        out.print(f"\n[bold]{n}. {chain}[/]  (score {path['score']})", highlight=False)
        for e in path["edges"]:
            certainty = f" [{e['certainty']}]" if e["certainty"] else ""
            out.print(f"  {e['source']} —{e['reading']}→ {e['target']}{certainty}", highlight=False, markup=False)
            _print_evidence(e["qualifiers"], e["evidence"])


@app.command()
def explain(
    ctx: typer.Context,
    finding: Annotated[str, typer.Argument(help="A symptom or sign, e.g. 'muscle cramps'.")],
    max_hops: Annotated[int, typer.Option(min=1, max=8)] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, as GET /api/explain answers.")] = False,
) -> None:
    """What in this graph can lead to FINDING? Every cause as a ranked tree of causal chains."""
    from .causal import build_graph
    from .causal import explain as explain_finding
    from .knowledge import UnknownEntity

    k = _knowledge(ctx.obj)
    with _errors("explain", (UnknownEntity,)):
        e = k.resolve(finding)
        graph = build_graph(k, "causal")
        tree = explain_finding(graph, e.id, max_hops=max_hops) if e.id in graph else {
            "finding": e.to_dict(), "causes": [], "omitted": []}
    if as_json:
        _print_json(tree)
        return
    out.print(f"[bold]What can lead to {e.label}[/]", highlight=False)

    def show(nodes: list[dict[str, Any]], depth: int) -> None:
        for node in nodes:
            edge = node["edge"]
            certainty = f" [{edge['certainty']}]" if edge["certainty"] else ""
            out.print(f"{'  ' * depth}- {node['entity']['label']} —{edge['reading']}→{certainty} "
                      f"(score {node['score']})", highlight=False, markup=False)
            show(node["causes"], depth + 1)

    show(tree["causes"], 1)
    if not tree["causes"]:
        out.print(f"  nothing in this graph leads to {e.label} within {max_hops} hops", highlight=False)


def _print_evidence(qualifiers: dict[str, Any], evidence: list[dict[str, Any]]) -> None:
    shown = {k: v for k, v in qualifiers.items() if k != "population"}
    if shown:
        out.print("    " + "; ".join(f"{k}: {v['text'] if isinstance(v, dict) else v}" for k, v in shown.items()),
                  highlight=False, markup=False)
    for ev in evidence:
        refs = ", ".join(f"[{r['number']}] {r['title']} ({r['year']}, {r['kind']})" if r["resolved"]
                         else f"[{r['number']}] unresolved: not in the reference list" for r in ev["references"])
        out.print(f'    "{ev["quote"]}" — {ev["section"] or "answer"}' + (f"; {refs}" if refs else
                  "; no citation (the article alone)"), highlight=False, markup=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@app.command()
def render(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the site into (created if missing).")],
) -> None:
    """Write the explorer, one page per entity and the references page as a static site that opens from the
    file system with no server and no network."""
    from .render import render_site

    k = _knowledge(ctx.obj)
    with _errors("render", (OSError,)):
        files = render_site(k, out_dir)
    out.print(f"wrote {len(files)} files; open {out_dir / 'index.html'}", highlight=False, soft_wrap=True)


if __name__ == "__main__":  # pragma: no cover
    app()
