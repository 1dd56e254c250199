"""Cross-references to standard vocabularies, verified offline against the data installed packages ship.

Three vocabularies can be checked without a network, each from a dependency of this project:

* **HPO** (prefix ``HP``), through ``hpo3`` (module ``pyhpo``), whose Rust extension embeds an HPO
  release. An ID must exist, must not be obsolete, and the xref's label must be the term's name, character
  for character.
* **ICD-10-CM** (prefix ``ICD10CM``), through ``simple-icd-10-cm``, which ships the CMS tabular list. A code
  (or block, such as ``E08-E13``) must be a valid item, written with its dot, and the label must be its
  description.
* **Biolink Model** (prefix ``biolink``), through ``biolink-model``, which ships
  ``schema/biolink_model.yaml``. An xref must name a category (a class under ``named thing``) or a predicate
  (a slot under ``related to``).

Any other prefix (MESH, DOID, MAXO, DRUGBANK ...) is rejected: nothing installed could verify it, and the
project's rule is that no identifier enters the graph unless it was read from a shipped package.

Each problem names the file and the line of the xref and says what to change. Loading HPO takes most of a
second, so it happens lazily, once per process.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import importlib.util
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from anemia_kg.model import MATCH_TYPES, Entity, Problem, Xref

__all__ = [
    "BIOLINK_IRI",
    "ICD10CM_IRI",
    "OBO_HP_IRI",
    "biolink_categories",
    "biolink_predicates",
    "known_biolink_terms",
    "verify_biolink",
    "verify_xrefs",
    "vocabulary_versions",
    "xref_iri",
]

#: Used only when biolink-model's prefix map cannot be read: the OBO Foundry PURL convention
#: (``http://purl.obolibrary.org/obo/{PREFIX}_{local id}``), which is what that map gives for HP.
OBO_HP_IRI = "http://purl.obolibrary.org/obo/HP_"
#: ICD-10-CM has no Biolink prefix (Biolink's prefix map has only WHO ``ICD10``). We use BioPortal's class
#: IRIs for its ICD10CM ontology: ``http://purl.bioontology.org/ontology/ICD10CM/{code}``, the code with its
#: dot (blocks such as ``E08-E13`` as written).
ICD10CM_IRI = "http://purl.bioontology.org/ontology/ICD10CM/"
#: The Biolink vocabulary namespace (the schema's ``id``/``biolink`` prefix).
BIOLINK_IRI = "https://w3id.org/biolink/vocab/"

_HP_ID = re.compile(r"^HP:\d{7}$")
_PREFIX_SPELLING = {"hp": "HP", "icd10cm": "ICD10CM", "biolink": "biolink"}


# --- package data ------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=1)
def _hpo() -> Any:
    """The hpo3 ``Ontology`` singleton, loaded on first use (about 0.5-1 s)."""
    from pyhpo import Ontology

    Ontology()
    return Ontology


def _hpo_source() -> str:
    """e.g. ``hpo3 1.5.1, HPO 2025-11-24``."""
    try:
        release = _hpo().version()
    except Exception:  # an older hpo3 without Ontology.version()
        release = "release unknown"
    dist = "hpo3" if _version("hpo3") != "not installed" else "pyhpo"
    return f"{dist} {_version(dist)}, HPO {release}"


@lru_cache(maxsize=1)
def _icd10cm() -> Any:
    import simple_icd_10_cm

    return simple_icd_10_cm


@lru_cache(maxsize=1)
def _icd10cm_edition() -> str:
    """The edition of the tabular list simple-icd-10-cm ships, from its data file name: 'April 1 2026'."""
    cm = _icd10cm()
    name = getattr(cm.simple_icd_10_cm, "_classification_data_package_file_name", None)
    if not name:
        data = Path(cm.__file__).parent / "data"
        names = sorted(p.name for p in data.glob("icd10c*-tabular-*.xml")) if data.is_dir() else []
        name = names[-1] if names else ""
    m = re.search(r"tabular-(.+)\.xml$", name)
    return m.group(1).replace("-", " ") if m else "edition unknown"


def _icd10cm_source() -> str:
    return f"simple-icd-10-cm {_version('simple-icd-10-cm')}, ICD-10-CM {_icd10cm_edition()}"


def _biolink_dir() -> Path:
    spec = importlib.util.find_spec("biolink_model")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("biolink-model is not installed (pip install biolink-model==4.4.6)")
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def _biolink_schema() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(_biolink_dir() / "schema" / "biolink_model.yaml", encoding="utf-8") as f:
        return yaml.load(f, Loader=loader)


def _biolink_source() -> str:
    return f"biolink-model {_version('biolink-model')}"


def _class_curie(name: str) -> str:
    """Biolink's (LinkML's) CamelCase of a class name: 'RNA product' -> 'biolink:RNAProduct'."""
    return "biolink:" + "".join(w[:1].upper() + w[1:] for w in name.split())


def _slot_curie(name: str) -> str:
    return "biolink:" + name.replace(" ", "_")


def _descendants(elements: dict[str, Any], root: str) -> set[str]:
    """Names of ``root`` and of every element whose ``is_a`` chain reaches it."""
    found: set[str] = set()
    for name in elements:
        seen: set[str] = set()
        node: str | None = name
        while node is not None and node not in seen:
            if node == root:
                found.add(name)
                break
            seen.add(node)
            node = (elements.get(node) or {}).get("is_a")
    return found


@lru_cache(maxsize=1)
def biolink_categories() -> frozenset[str]:
    """Biolink categories: CURIEs of ``named thing`` and every class under it (``biolink:Disease`` ...)."""
    classes = _biolink_schema().get("classes") or {}
    return frozenset(_class_curie(c) for c in _descendants(classes, "named thing"))


@lru_cache(maxsize=1)
def biolink_predicates() -> frozenset[str]:
    """Biolink predicates: CURIEs of ``related to`` and every slot under it (``biolink:causes`` ...)."""
    slots = _biolink_schema().get("slots") or {}
    return frozenset(_slot_curie(s) for s in _descendants(slots, "related to"))


@lru_cache(maxsize=1)
def known_biolink_terms() -> frozenset[str]:
    """Every class and slot of the shipped Biolink model, as CURIEs.

    That is the categories and predicates (``biolink:Disease``, ``biolink:causes``) and also mixins,
    association classes (``biolink:Association``) and non-predicate slots such as qualifiers and edge
    properties (``biolink:frequency_qualifier``, ``biolink:knowledge_level``), which the ontology may map its
    own terms to.
    Aliases (``exacerbates`` for ``exacerbates_condition``) are not terms.
    """
    schema = _biolink_schema()
    return frozenset(
        {_class_curie(c) for c in schema.get("classes") or {}}
        | {_slot_curie(s) for s in schema.get("slots") or {}}
    )


@lru_cache(maxsize=1)
def _biolink_aliases() -> dict[str, str]:
    """Alias CURIE -> the term it aliases (biolink:exacerbates -> biolink:exacerbates_condition)."""
    schema = _biolink_schema()
    out: dict[str, str] = {}
    for name, body in (schema.get("classes") or {}).items():
        for alias in (body or {}).get("aliases") or []:
            out.setdefault(_class_curie(alias), _class_curie(name))
    for name, body in (schema.get("slots") or {}).items():
        for alias in (body or {}).get("aliases") or []:
            out.setdefault(_slot_curie(alias), _slot_curie(name))
    return out


@lru_cache(maxsize=1)
def _prefix_map() -> dict[str, str]:
    """biolink-model's shipped prefix map (prefix -> IRI base); empty if the package lacks it."""
    try:
        folder = _biolink_dir() / "prefixmaps"
    except RuntimeError:
        return {}
    for name in ("biolink-model-prefix-map.json", "biolink_model_prefix_map.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data.get("@context"), dict):  # JSON-LD form
                data = data["@context"]
            return {k: v for k, v in data.items() if isinstance(v, str)}
    return {}


def vocabulary_versions() -> dict[str, str]:
    """The package and release of every vocabulary xrefs are verified against, for the build report."""
    try:
        hpo_release = _hpo().version()
    except Exception:
        hpo_release = "unknown"
    return {
        "hpo3": _version("hpo3"),
        "HPO": hpo_release,
        "simple-icd-10-cm": _version("simple-icd-10-cm"),
        "ICD-10-CM": _icd10cm_edition(),
        "biolink-model": _version("biolink-model"),
        "Biolink Model": str(_biolink_schema().get("version", "unknown")),
    }


# --- IRIs --------------------------------------------------------------------------------------------


def xref_iri(curie: str) -> str:
    """The IRI of a verified xref.

    * ``HP:0009830`` -> ``http://purl.obolibrary.org/obo/HP_0009830``: the ``HP`` entry of biolink-model's
      shipped prefix map (``prefixmaps/biolink-model-prefix-map.json``); the OBO PURL convention
      (:data:`OBO_HP_IRI`) if that file is missing.
    * ``ICD10CM:G62.9`` -> ``http://purl.bioontology.org/ontology/ICD10CM/G62.9``: BioPortal's ICD10CM class
      IRI (Biolink has no ICD10CM prefix; see :data:`ICD10CM_IRI`).
    * ``biolink:causes`` -> ``https://w3id.org/biolink/vocab/causes``.

    Raises ValueError for any other prefix: only these three vocabularies are verified.
    """
    prefix, sep, local = curie.partition(":")
    if not sep or not local:
        raise ValueError(f"{curie!r} is not a CURIE (PREFIX:local-id)")
    if prefix == "HP":
        return _prefix_map().get("HP", OBO_HP_IRI) + local
    if prefix == "ICD10CM":
        return ICD10CM_IRI + local
    if prefix == "biolink":
        return _prefix_map().get("biolink", BIOLINK_IRI) + local
    raise ValueError(
        f"{curie}: unsupported vocabulary {prefix!r} (only HP, ICD10CM, biolink are verified offline)"
    )


# --- verification ------------------------------------------------------------------------------------


def _check_hpo(x: Xref) -> str | None:
    if not _HP_ID.match(x.curie):
        return f"{x.curie} is not an HPO ID: write HP: and seven digits, e.g. HP:0009830"
    ont = _hpo()
    try:
        term = ont.get_hpo_object(x.curie)
    except (RuntimeError, KeyError, ValueError):
        return f"{x.curie} is not in HPO ({_hpo_source()}); check the ID"
    if term.id != x.curie:  # defensive: a lookup that silently resolved to another term
        return f"{x.curie} is not in HPO ({_hpo_source()}); check the ID"
    if term.is_obsolete:
        hint = "; choose a current term"
        replacement = getattr(term, "replaced_by", None)
        if replacement:
            try:
                hint = f"; HPO replaces it by {replacement} {ont.get_hpo_object(replacement).name!r}"
            except (RuntimeError, KeyError, ValueError):
                hint = f"; HPO replaces it by {replacement}"
        return f"{x.curie} {term.name!r} is obsolete in HPO ({_hpo_source()}){hint}"
    if x.label != term.name:
        return f"{x.curie}: label should be {term.name!r} as in HPO ({_hpo_source()}), not {x.label!r}"
    return None


def _check_icd10cm(x: Xref) -> str | None:
    cm = _icd10cm()
    code = x.curie.partition(":")[2]
    if not cm.is_valid_item(code):
        return f"{x.curie} is not in ICD-10-CM ({_icd10cm_source()}); check the code"
    canonical = code if cm.is_chapter_or_block(code) else cm.add_dot(code)
    if canonical != code:
        return f"{x.curie}: write the code as ICD-10-CM does, ICD10CM:{canonical}"
    title = cm.get_description(code)
    if x.label != title:
        return f"{x.curie}: label should be {title!r} as in ICD-10-CM ({_icd10cm_source()}), not {x.label!r}"
    return None


def _biolink_hint(curie: str, pool: Iterable[str]) -> str:
    alias_of = _biolink_aliases().get(curie)
    if alias_of:
        return f"; it is an alias of {alias_of}, use that"
    close = difflib.get_close_matches(curie, list(pool), n=1, cutoff=0.8)
    return (
        f"; did you mean {close[0]}?"
        if close
        else "; check the spelling (classes CamelCase, slots snake_case)"
    )


def _check_biolink_xref(x: Xref) -> str | None:
    pool = biolink_categories() | biolink_predicates()
    if x.curie in pool:
        return None
    where = _biolink_source()
    if x.curie in known_biolink_terms():
        return f"{x.curie} is in {where} but is neither a category nor a predicate"
    return f"{x.curie} is not a Biolink category or predicate in {where}{_biolink_hint(x.curie, pool)}"


_CHECKS = {"HP": _check_hpo, "ICD10CM": _check_icd10cm, "biolink": _check_biolink_xref}
_ONLY = "only HP, ICD10CM, biolink are verified offline"


def _check_vocabulary(x: Xref) -> str | None:
    """What is wrong with the xref's ID or label in its vocabulary, if anything."""
    prefix, sep, local = x.curie.partition(":")
    if not sep or not local:
        return f"{x.curie!r} is not a CURIE: write PREFIX:id, e.g. HP:0009830 or ICD10CM:G62.9"
    check = _CHECKS.get(prefix)
    if check is None:
        spelled = _PREFIX_SPELLING.get(prefix.lower())
        if spelled:
            return f"{x.curie}: write the prefix as {spelled}:"
        return f"{x.curie}: unsupported vocabulary {prefix!r} ({_ONLY}); remove it or move it to the note"
    if not x.label.strip() and prefix != "biolink":
        return f"{x.curie}: label is missing; copy the vocabulary's own label"
    return check(x)


def verify_xrefs(entities: Iterable[Entity], file: str = "data/entities.yaml") -> list[Problem]:
    """Every problem with the entities' xrefs, each at the xref's line (the entity's if the xref has none).

    Unknown, obsolete or mislabelled IDs, unsupported vocabularies, bad match types, an ID listed twice for
    one entity, and an ID that is the exact match of more than one entity. Empty when all is well.
    """
    problems: list[Problem] = []
    exact_owner: dict[str, tuple[str, int]] = {}
    for entity in entities:
        seen: dict[str, int] = {}
        for x in entity.xrefs:
            line = x.line or entity.line
            messages = []
            if x.match not in MATCH_TYPES:
                messages.append(f"{x.curie}: match type {x.match!r} is not one of {', '.join(MATCH_TYPES)}")
            if x.curie in seen:
                messages.append(
                    f"{x.curie} is listed twice for {entity.id!r} (first on line {seen[x.curie]})"
                )
            seen.setdefault(x.curie, line)
            owner = exact_owner.setdefault(x.curie, (entity.id, line)) if x.match == "exact" else None
            if owner is not None and owner[0] != entity.id:
                messages.append(
                    f"{x.curie} is already the exact match of entity {owner[0]!r} (line {owner[1]}); an ID"
                    " can be the exact match of one entity only: merge the entities or change a match type"
                )
            vocabulary = _check_vocabulary(x)
            if vocabulary:
                messages.append(vocabulary)
            problems += [Problem(file, line, m) for m in messages]
    return problems


def verify_biolink(curies: Iterable[tuple[str, int]], file: str) -> list[Problem]:
    """Problems with Biolink terms the ontology maps to.

    Each ``(curie, line)`` must be a class or slot of the shipped Biolink model (see
    :func:`known_biolink_terms`). Full IRIs under https://w3id.org/biolink/vocab/ are accepted too.
    """
    known = known_biolink_terms()
    problems = []
    for curie, line in curies:
        term = "biolink:" + curie[len(BIOLINK_IRI) :] if curie.startswith(BIOLINK_IRI) else curie
        if not term.startswith("biolink:"):
            problems.append(Problem(file, line, f"{curie} is not a Biolink term (biolink:... expected)"))
        elif term not in known:
            problems.append(
                Problem(file, line, f"{term} is not in {_biolink_source()}{_biolink_hint(term, known)}")
            )
    return problems
