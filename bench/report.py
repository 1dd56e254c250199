"""Turn one results file of ``python -m bench`` into the tables of docs/benchmarks.md and its plot.

``python -m bench.report RESULTS.json [--doc docs/benchmarks.md] [--plot docs/benchmarks.png]`` replaces the
part of the document between ``<!-- results:start -->`` and ``<!-- results:end -->`` (the hand-written
analysis around it stays) and draws throughput and latency against corpus size, one line per server.
Every figure in the tables comes from that one run, so the ratios compare servers measured side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks.png"
START, END = "<!-- results:start -->", "<!-- results:end -->"
OURS = "anemia-kg"


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _load(entry: dict[str, Any]) -> dict[str, Any] | None:
    return entry.get("load")


def _server(corpus: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in corpus["servers"] if s["name"] == name and "requests" in s), None)


def _sparql_names(corpus: dict[str, Any]) -> list[str]:
    return sorted(corpus["inprocess_ms"])


def geomean(values: list[float]) -> float:
    values = [v for v in values if v and v > 0 and not math.isnan(v)]
    return math.exp(statistics.fmean(math.log(v) for v in values)) if values else float("nan")


def throughput(server: dict[str, Any] | None, names: list[str]) -> list[float]:
    """Loaded throughput of each request (NaN when not loaded)."""
    if server is None:
        return [float("nan")] * len(names)
    out = []
    for name in names:
        load = _load(server["requests"].get(name, {}))
        out.append(load["throughput"] if load else float("nan"))
    return out


def sparql_table(corpus: dict[str, Any]) -> list[str]:
    """Throughput (p50 / p99) of every server for every query, and this server's ratios to the peers."""
    names = _sparql_names(corpus)
    servers = [s for s in corpus["servers"] if "requests" in s]
    ours = [s for s in servers if s["name"].startswith(OURS)]
    ox, rdf = _server(corpus, "oxigraph"), _server(corpus, "rdflib-endpoint")
    ratios = [(s, ox, f"{s['name']} / oxigraph") for s in ours if ox] + \
             [(s, rdf, f"{s['name']} / rdflib-endpoint") for s in ours if rdf and "cache" not in s["name"]]
    head = "| query | " + " | ".join(f"{s['name']} req/s (p50 / p99 ms)" for s in servers)
    head += "".join(f" | {label}" for _, _, label in ratios) + " |"
    lines = [head, "|" + "---|" * (len(servers) + len(ratios) + 1)]
    for name in names:
        cells = []
        for s in servers:
            entry = s["requests"].get(name, {})
            load = _load(entry)
            if entry.get("correct") is False:
                cells.append("**wrong answer**")
            elif load:
                errors = f", **{load['errors']} errors**" if load["errors"] else ""
                cells.append(f"{load['throughput']:,.0f} ({load['p50_ms']:.2f} / {load['p99_ms']:.1f}{errors})")
            elif "sequential_ms" in entry:
                cells.append(f"{1000 / entry['sequential_ms']:,.2f} (one at a time: {entry['sequential_ms']:,.0f} ms)")
            else:
                cells.append(entry.get("skipped", "–"))
        for mine, peer, _ in ratios:
            theirs = throughput(peer, [name])[0]
            if math.isnan(theirs):
                theirs = _sequential_rate(peer, name)
            cells.append(_ratio(throughput(mine, [name])[0], theirs))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _sequential_rate(server: dict[str, Any] | None, name: str) -> float:
    entry = (server or {}).get("requests", {}).get(name, {})
    return 1000 / entry["sequential_ms"] if entry.get("sequential_ms") else float("nan")


def _ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or not b:
        return "–"
    return f"{a / b:.2f}x" if a / b < 100 else f"{a / b:,.0f}x"


def api_table(corpus: dict[str, Any]) -> list[str]:
    lines = ["| request | server | req/s | p50 ms | p99 ms | errors | one at a time, ms |",
             "|---|---|---|---|---|---|---|"]
    for s in corpus["servers"]:
        for name, entry in s.get("requests", {}).items():
            if not name.startswith("api-"):
                continue
            load = _load(entry) or {}
            cells = [_fmt(load.get("throughput"), 0), _fmt(load.get("p50_ms"), 2), _fmt(load.get("p99_ms"), 2),
                     _fmt(load.get("errors")), _fmt(entry.get("sequential_ms"), 2)]
            lines.append(f"| {name} | {s['name']} | " + " | ".join(cells) + " |")
    return lines


def inprocess_table(corpus: dict[str, Any]) -> list[str]:
    """Each query's median alone: in-process pyoxigraph vs each server over HTTP (one connection)."""
    servers = [s for s in corpus["servers"] if "requests" in s]
    ours = [s for s in servers if s["name"].startswith(OURS)]  # with the cache too: it is on by default
    floor = corpus.get("http_floor_ms") or {}  # runs before bench/floor.py have none
    lines = ["| query | pyoxigraph in-process ms | 1.5 x in-process ms" + (" | HTTP, no work ms" if floor else "")
             + " | " + " | ".join(f"{s['name']} ms" for s in servers)
             + "".join(f" | {s['name']} / in-process" for s in ours) + " |",
             "|" + "---|" * (len(servers) + len(ours) + 3 + bool(floor))]
    for name in _sparql_names(corpus):
        base = corpus["inprocess_ms"][name]
        cells = [f"{1.5 * base:.2f}"]
        if floor:
            below = name in floor and 1.5 * base < floor[name]  # no server reached over HTTP can be that fast
            cells.append(_fmt(floor.get(name), 2) + (" (more than 1.5 x)" if below else ""))
        cells += [_fmt(s["requests"].get(name, {}).get("sequential_ms"), 2) for s in servers]
        cells += [_ratio(s["requests"].get(name, {}).get("sequential_ms") or float("nan"), base) for s in ours]
        lines.append(f"| {name} | {base:.2f} | " + " | ".join(cells) + " |")
    return lines


def targets_table(results: dict[str, Any]) -> list[str]:
    """Issue 5's targets as this run measured them, each with a computed verdict (the build's are in
    bench/build_scaling.md). Throughput ratios are geometric means over the SPARQL queries at article scale
    (scale 1); the per-query, path, start-up and memory targets are read at the run's largest corpus."""
    article = next((c for c in results["corpora"] if c["scale"] == 1), None)
    largest = max(results["corpora"], key=lambda c: c["triples"])
    at_largest = f"{largest['triples']:,} triples"
    lines = ["| target | server | measured | met? |", "|---|---|---|---|"]

    def row(target: str, server: str, measured: str, met: bool | None) -> None:
        lines.append(f"| {target} | {server} | {measured} | {'–' if met is None else 'yes' if met else 'no'} |")

    if article is not None:
        names = _sparql_names(article)
        for peer, bound in (("rdflib-endpoint", 10.0), ("oxigraph", 0.5)):
            theirs = _server(article, peer)
            for mine in (s for s in article["servers"] if s["name"].startswith(OURS) and "requests" in s):
                if theirs is None:
                    continue
                wrong = [n for n in names if mine["requests"].get(n, {}).get("correct") is not True]
                # a query either side has no figure for is left out of both, never of one side only
                ratios = [a / b for a, b in zip(throughput(mine, names), [
                    t if not math.isnan(t) else _sequential_rate(theirs, n)
                    for t, n in zip(throughput(theirs, names), names, strict=True)], strict=True)
                          if not (math.isnan(a) or math.isnan(b)) and b]
                ratio = geomean(ratios)
                measured = "–" if math.isnan(ratio) else f"{ratio:.3g}x over {len(ratios)} of {len(names)} queries"
                if wrong:
                    measured += "; no right answer to " + ", ".join(wrong)
                row(f"`/sparql` ≥ {bound:g}x {peer} (article scale)", mine["name"], measured,
                    not wrong and len(ratios) == len(names) and ratio >= bound)
        api = ("api-paths", "api-search", "api-entity")
        for mine in (s for s in article["servers"] if s["name"].startswith(OURS) and "requests" in s):
            if not any(n in mine["requests"] for n in api):
                continue
            loads = {n: _load(mine["requests"].get(n, {})) for n in api}
            missing = [n for n, load in loads.items() if not load or mine["requests"][n].get("correct") is not True]
            done = [load for load in loads.values() if load]
            measured = (f"{min(x['throughput'] for x in done):,.0f}/s at least, p99 "
                        f"{max(x['p99_ms'] for x in done):.1f} ms at most, {sum(x['errors'] for x in done)} errors"
                        if done else "–")
            if missing:
                measured += "; no right answer or no load for " + ", ".join(missing)
            row("`/api/paths`, `/api/entities` ≥ 1,000 requests/s, p99 < 10 ms (article scale)", mine["name"],
                measured, not missing and all(x["throughput"] >= 1000 and x["p99_ms"] < 10 and not x["errors"]
                                              for x in done))
    base = largest["inprocess_ms"]
    for mine in (s for s in largest["servers"] if s["name"].startswith(OURS) and "requests" in s):
        times = {n: mine["requests"].get(n, {}).get("sequential_ms", math.nan) / base[n] for n in sorted(base)}
        within = [n for n, r in times.items() if r <= 1.5]
        over = ", ".join(f"{n} " + ("no figure" if math.isnan(r) else f"{r:.2f}x")
                         for n, r in times.items() if not r <= 1.5)
        row(f"each query's median alone ≤ 1.5x pyoxigraph in-process ({at_largest})", mine["name"],
            f"{len(within)} of {len(times)}" + (f"; not: {over}" if over else ""), len(within) == len(times))
    medians = list(largest["paths"]["median_ms"].values())
    if medians:
        median = statistics.median(medians)
        row(f"path search median < 5 ms ({at_largest})", "in-process", f"{median:.2f} ms", median < 5)
    disk = _server(largest, OURS)  # the on-disk store: the start-up and memory targets are about it
    if disk is not None:
        row(f"start-up to first answer < 2 s from the on-disk store ({at_largest})", disk["name"],
            f"{disk['startup_s']:.2f} s" + (f" (API ready {disk['ready_s']:.2f} s)" if disk.get("ready_s") else ""),
            disk["startup_s"] < 2)
        if largest.get("pyoxigraph_rss_mb"):
            share = disk["peak_rss_mb"] / largest["pyoxigraph_rss_mb"]
            row(f"memory ≤ 1.5x pyoxigraph's ({at_largest})", disk["name"],
                f"{disk['peak_rss_mb']:,.0f} MB against {largest['pyoxigraph_rss_mb']:,.0f} MB ({share:.2f}x)",
                share <= 1.5)
    return lines


def startup_table(results: dict[str, Any]) -> list[str]:
    lines = ["| scale | triples | server | start-up to first answer, s | API ready, s | memory idle, MB | "
             "memory peak, MB |",
             "|---|---|---|---|---|---|---|"]
    for c in results["corpora"]:
        if c.get("pyoxigraph_rss_mb"):
            lines.append(f"| {c['scale']} | {c['triples']:,} | pyoxigraph in one process, in memory (baseline) | – "
                         f"| – | | {c['pyoxigraph_rss_mb']:,.0f} |")
        for s in c["servers"]:
            if "requests" not in s:
                lines.append(f"| {c['scale']} | {c['triples']:,} | {s['name']} | {s.get('skipped', '–')} | | | |")
                continue
            # only this project's servers have an API; runs before it was measured have no ready_s
            ready = f"{s['ready_s']:.2f}" if s.get("ready_s") and s["ready_s"] > s["startup_s"] else "–"
            lines.append(f"| {c['scale']} | {c['triples']:,} | {s['name']} | {s['startup_s']:.2f} | {ready} | "
                         f"{s['idle_rss_mb']:,.0f} | {s['peak_rss_mb']:,.0f} |")
        if first := c.get("first_start"):  # runs before the model snapshot have none
            lines.append(f"| {c['scale']} | {c['triples']:,} | anemia-kg, first start after a build (disk "
                         f"store; model read through SPARQL, no snapshot yet) | {first['startup_s']:.2f} | "
                         f"{first['ready_s']:.2f} | | {first['peak_rss_mb']:,.0f} |")
    return lines


def scaling_table(results: dict[str, Any]) -> list[str]:
    lines = ["| scale | triples | N-Quads MB | build s | pyoxigraph load (memory) s | Oxigraph load (file) s | "
             "anemia-kg store s | knowledge model s | causal graph s (nodes / edges) | path search median ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in results["corpora"]:
        load, paths = c["load_s"], c["paths"]
        median = statistics.median(paths["median_ms"].values()) if paths["median_ms"] else float("nan")
        lines.append(f"| {c['scale']} | {c['triples']:,} | {c['nquads_mb']} | {_fmt(c['build_s'], 1)} | "
                     f"{_fmt(load.get('pyoxigraph in memory'), 2)} | {_fmt(load.get('oxigraph load (file)'), 2)} | "
                     f"{_fmt(load.get('anemia-kg store (file)'), 2)} | {paths['knowledge_load_s']:.2f} | "
                     f"{paths['graph_build_s']:.3f} ({paths['nodes']:,} / {paths['edges']:,}) | {median:.2f} |")
    return lines


def render(results: dict[str, Any], source: str) -> str:
    m, v, s = results["machine"], results["versions"], results["settings"]
    out = [
        f"Run of {results['started']} (`{source}`), on {m['cpus']} CPUs ({m['cpu']}), {m['memory_gb']} GB RAM, "
        f"Linux {m['kernel']}, Python {m['python']}.",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        _load_settings(s),
        "",
    ]
    for c in results["corpora"]:
        out += [f"### Scale {c['scale']}: {c['triples']:,} triples", "", "SPARQL, under load:", ""]
        out += sparql_table(c) + ["", "SPARQL, one request at a time (median):", ""]
        out += inprocess_table(c)
        api = api_table(c)
        if len(api) > 2:
            out += ["", "HTTP API (this server only):", ""] + api
        out.append("")
    out += ["### Start-up and memory", ""] + startup_table(results) + [""]
    out += ["### Build, load and path search against corpus size", ""] + scaling_table(results) + [""]
    out += ["### Issue 5's targets in this run (computed by bench/report.py)", ""] + targets_table(results) + [""]
    return "\n".join(out)


def _load_settings(s: dict[str, Any]) -> str:
    if "rounds" not in s:  # runs before the servers took turns: one server after the other
        return (f"Load: {s['client']}, {s['connections']} connections, {s['duration']:g} s per request and server; "
                f"medians of up to {s['repeat']} requests one at a time; a request slower than {s['slow']:g} s is "
                "not loaded. Servers measured one after the other.")
    rounds = f"{s['rounds']} round{'s' if s['rounds'] > 1 else ''}"
    return (f"Load: {s['client']}, {s['connections']} connections, {rounds} of {s['duration']:g} s per "
            f"request and server, the servers running side by side and taking turns request by request (the "
            f"order rotating each round); each figure is the median over the rounds (load: of the rounds' "
            f"throughputs and percentiles; alone: of the rounds' medians of up to {s['repeat']} requests one at a "
            f"time). A request slower than {s['slow']:g} s is not loaded. \"HTTP, no work\" is bench/floor.py, a "
            "server answering every request with the same bytes, timed one at a time in the same turns: the HTTP "
            "round trip with this client alone." + (
                f" Before each one-at-a-time timing the runner waited (up to {s['quiet_wait']:g} s) for the machine "
                "to be idle (bench.load.wait_for_quiet). One at a time, the servers (the runner's children) mostly "
                "ran on the client's CPU: the floor's 0.01 ms is that placement; with client and server pinned to "
                "different CPUs it is about 0.09 ms (see docs/benchmarks.md)." if s.get("quiet_wait") else ""))


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = results["corpora"]
    names = sorted({s["name"] for c in corpora for s in c["servers"] if "requests" in s})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in names:
        xs, tput, lat = [], [], []
        for c in corpora:
            server = _server(c, name)
            if server is None:
                continue
            queries = _sparql_names(c)
            xs.append(c["triples"])
            tput.append(geomean(throughput(server, queries)))
            lat.append(geomean([server["requests"].get(q, {}).get("sequential_ms", float("nan")) for q in queries]))
        left.plot(xs, tput, marker="o", label=name)
        right.plot(xs, lat, marker="o", label=name)
    for ax, title, unit in ((left, "SPARQL throughput under load", "requests/s (geometric mean of the queries)"),
                            (right, "SPARQL latency, one request at a time", "ms (geometric mean of medians)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("triples")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def update_doc(doc: Path, block: str) -> None:
    text = doc.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{doc}: the markers {START} and {END} are missing")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    tmp = doc.with_suffix(".tmp")
    tmp.write_text(f"{head}{START}\n{block}\n{END}{tail}", encoding="utf-8")
    os.replace(tmp, doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--plot", type=Path, default=PLOT)
    args = ap.parse_args(argv)
    results = json.loads(args.results.read_text())
    try:
        source = str(args.results.resolve().relative_to(ROOT))
    except ValueError:
        source = str(args.results)
    update_doc(args.doc, render(results, source))
    plot(results, args.plot)
    print(f"updated {args.doc} and {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
