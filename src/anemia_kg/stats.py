"""Counts that tell a curator the state of the graph, read from the built dataset by SPARQL."""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox

from .query import packaged_query, run, to_table

SECTIONS = {
    "classes": "stats_classes",
    "predicates": "stats_predicates",
    "coverage": "stats_coverage",
    "unresolved_citations": "stats_unresolved",
    "uncited_claims": "stats_uncited",
}


def _rows(store: ox.Store, name: str) -> list[dict[str, str]]:
    table = to_table(run(store, packaged_query(name)))
    return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def collect(store: ox.Store) -> dict[str, Any]:
    """Every statistic as plain data (strings and ints), ready for a table or JSON."""
    stats: dict[str, Any] = {key: _rows(store, name) for key, name in SECTIONS.items()}
    for row in stats["coverage"]:
        units, covered = int(row["units"]), int(row["coveredUnits"])
        row["cited"] = row["cited"] == "true"
        row["units"], row["coveredUnits"] = units, covered
        row["percent"] = round(100.0 * covered / units, 1) if units else 100.0
    for key in ("classes", "predicates"):
        for row in stats[key]:
            for col, value in row.items():
                if value.isdigit():
                    row[col] = int(value)
    stats["totals"] = {
        "triples": len(store),
        "claims": sum(r["claims"] for r in stats["predicates"]),
        "uncited_claims": len(stats["uncited_claims"]),
        "unresolved_citations": sorted({int(r["number"]) for r in stats["unresolved_citations"]}),
    }
    return stats
