"""Every example query in queries/ runs on the built real graph and returns the rows the article supports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from anemia_kg.query import run, to_table
from anemia_kg.store import open_memory_store

QUERIES = Path(__file__).resolve().parents[1] / "queries"

Rows = list[dict[str, str]]


@pytest.fixture(scope="module")
def store(real_build):  # noqa: ANN001, ANN201 - pytest fixture
    return open_memory_store(real_build.root / "data" / "build" / "anemia-kg.nq")


def rows(store, name: str) -> Rows:  # noqa: ANN001
    """Run queries/<name> exactly as a user would (the file's own PREFIX lines)."""
    table = to_table(run(store, (QUERIES / name).read_text(encoding="utf-8")))
    return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def check_joint_pain(result: Rows) -> None:
    causes = {(r["cause"], r["relation"], r["certainty"], r["hedge"]) for r in result}
    assert causes == {
        ("altered gait", "may cause", "possible", "May be secondary to"),
        ("altered biomechanics", "may cause", "possible", "May be secondary to"),
        ("anemia", "may cause", "possible", "can"),
        ("anemia", "exacerbates", "possible", "can"),
        ("compensatory movements", "contributes to", "asserted", ""),
    }
    gait = next(r for r in result if r["cause"] == "altered gait")
    assert gait["quote"] == "May be secondary to altered gait and biomechanics due to neuropathy"


def check_manifestations(result: Rows) -> None:
    by_name = {r["manifestation"]: r for r in result}
    listed = {"peripheral neuropathy", "paresthesia", "loss of distal sensation", "motor ataxia",
              "muscle weakness", "loss of deep tendon reflexes"}
    assert set(by_name) == listed | {"neurological manifestations"}
    # "strongly associated with ... manifestations that include": associations, never causal edges
    assert {r["relation"] for r in result} == {"associated with"}
    assert by_name["peripheral neuropathy"]["frequency"] == "most common neurological manifestation"
    assert by_name["loss of distal sensation"]["certainty"] == "possible"  # "may progress to"
    assert all(by_name[m]["references"] == "Guideline Directed Topic Overview (2025)" for m in listed)
    assert by_name["neurological manifestations"]["references"] == ""  # the lead-in cites nothing


def check_negations(result: Rows) -> None:
    got = {(r["subject"], r["relation"], r["object"], r["negation"], r["edgeFromAnotherClaim"]) for r in result}
    assert got == {
        ("anemia", "correlates with", "neurological symptoms", "does not necessarily correlate", "false"),
        ("peripheral neuropathy", "manifests as", "neurological symptoms", "asymptomatic", "false"),
        # the same triple is asserted by a positive claim ("complete resolution possible within 3 months")
        ("B12 treatment", "reverses", "neurological symptoms", "but not reversal", "true"),
        ("B12 treatment", "reverses", "peripheral neuropathy", "may not fully recover", "true"),
    }


def check_evaluation(result: Rows) -> None:
    got = {(r["test"], r["relation"], r["finding"]): set(r["cites"].split(", ")) - {""} for r in result}
    assert got[("methylmalonic acid level", "diagnostic marker for", "vitamin B12 deficiency")] == {"1"}
    assert got[("electrophysiological studies", "evaluated by", "demyelinating pattern")] == {"5", "3"}
    assert got[("vitamin B12 level (serum cobalamin)", "evaluated by", "vitamin B12 deficiency")] == set()
    assert got[("gait assessment", "evaluated by", "foot slap")] == {"5"}
    types = {r["testType"] for r in result}
    assert types == {"laboratory test", "bedside examination", "electrophysiological study"}
    assert len(result) == 17


def check_treatments(result: Rows) -> None:
    esa = [r for r in result if r["treatment"] == "erythropoietic-stimulating agents"]
    assert len(esa) == 1 and esa[0]["threshold"] == "hemoglobin <10g/dL"
    assert esa[0]["condition"] == "persistent symptomatic anemia"
    oral = next(r for r in result if r["treatment"] == "oral B12 supplementation")
    assert oral["condition"] == "in cases where absorption is not impaired"
    timed = {(r["relation"], r["timeCourse"], r["outcome"]) for r in result if r["timeCourse"]}
    assert ("treats", "within days", "Improvement") in timed
    assert ("reverses", "within 3 months", "complete resolution") in timed
    negated = {(r["target"], r["condition"]) for r in result if r["negated"] == "true"}
    assert negated == {("peripheral neuropathy", "if treatment is delayed"),
                       ("neurological symptoms", "if treatment is delayed")}


def check_citations(result: Rows) -> None:
    assert [r["number"] for r in result] == ["1", "2", "3", "4", "5", "6", "7"]
    assert [r["unresolved"] for r in result] == ["false"] * 6 + ["true"]
    assert result[6]["title"] == "" and result[6]["year"] == ""  # never filled in
    assert result[2]["title"] == "[Reversible peripheral neuropathy induced by vitamin B12 deficiency]."
    assert result[2]["year"] == "2005" and result[2]["kind"] == "Research"
    assert int(result[6]["claims"]) == 3  # the 6, 7 bullet supports three claims
    assert all(int(r["claims"]) > 0 for r in result)


def check_chains(result: Rows) -> None:
    chains = {(r["middle"], r["end"]) for r in result}
    assert ("demyelination in peripheral nerves", "peripheral neuropathy") in chains
    assert ("peripheral neuropathy", "altered gait") in chains
    assert ("peripheral neuropathy", "denervation of muscle fibers") in chains
    # "in B12 deficiency" locates the finding, it does not make it an effect: no chain through it
    assert not any(r["middle"] == "reduced skeletal muscle protein synthesis" for r in result)
    # tests and treatments are never causes, so they never appear in a causal chain
    assert not any("test" in r["middle"] or "treatment" in r["middle"] for r in result)


CHECKS: dict[str, Callable[[Rows], None]] = {
    "01-what-can-cause-joint-pain.rq": check_joint_pain,
    "02-b12-neurological-manifestations.rq": check_manifestations,
    "03-negations.rq": check_negations,
    "04-evaluation-of-b12-deficiency.rq": check_evaluation,
    "05-treatments-with-conditions.rq": check_treatments,
    "06-citations-and-references.rq": check_citations,
    "07-causal-chains-from-b12-deficiency.rq": check_chains,
}


def test_every_example_query_has_expectations() -> None:
    assert sorted(p.name for p in QUERIES.glob("*.rq")) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_query(store, name: str) -> None:  # noqa: ANN001
    result = rows(store, name)
    assert result, f"{name} returned no rows"
    CHECKS[name](result)
