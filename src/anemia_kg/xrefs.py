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
second and importing simple-icd-10-cm one and a half, so both happen lazily, once per process (a correct
ICD-10-CM xref is confirmed from the package's data file without importing it: :func:`_icd10cm_titles`); the build
(:class:`Prefetch`) has the verdicts computed in forked child processes while it does its other work, and
keeps them in a cache keyed on the installed packages (see the last section).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.metadata as md
import importlib.util
import json
import multiprocessing
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml

from anemia_kg.files import write_atomic
from anemia_kg.model import MATCH_TYPES, Entity, Problem, Xref

__all__ = [
    "BIOLINK_IRI",
    "ICD10CM_IRI",
    "OBO_HP_IRI",
    "Prefetch",
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
def _icd10cm_data() -> Path | None:
    """The tabular list simple-icd-10-cm ships (its XML file), found without importing the package."""
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    names = sorted(data.glob("icd10c*-tabular-*.xml")) if data.is_dir() else []
    return names[-1] if names else None


@lru_cache(maxsize=1)
def _icd10cm_edition() -> str:
    """The edition of the tabular list simple-icd-10-cm ships, from its data file name: 'April 1 2026'."""
    path = _icd10cm_data()
    m = re.search(r"tabular-(.+)\.xml$", path.name if path else "")
    return m.group(1).replace("-", " ") if m else "edition unknown"


_DIAG = re.compile(r"<diag>\s*<name>([^<]+)</name>\s*<desc>([^<]*)</desc>")
_BLOCK = re.compile(r'<section id="([^"]+)">\s*<desc>([^<]*)</desc>')


@lru_cache(maxsize=1)
def _icd10cm_titles() -> dict[str, str]:
    """Code -> the XML text of its title, for each code or block named once in the shipped tabular list.

    Why: importing simple-icd-10-cm builds a tree of the whole 10 MB list (1.5 s, half the cold build), while
    an entity's xref only needs its code's title. Read straight from the same file, a code and title that
    match confirm the xref in 0.05 s. Only that confirmation is taken from here: a code that is missing, named
    more than once, both a block and a code, or whose title differs goes to the package itself, which gives the verdict
    and its message. ``tests/test_xrefs.py`` holds this table to the package's own answers for every code.
    """
    path = _icd10cm_data()
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    named = Counter(re.findall(r"<name>([^<]+)</name>", text))
    blocks = Counter(re.findall(r'<section id="([^"]+)"', text))
    titles = {code: title for code, title in _DIAG.findall(text) if named[code] == 1 and not blocks[code]}
    titles.update((block, title) for block, title in _BLOCK.findall(text) if blocks[block] == 1 and not named[block])
    return titles


def _icd10cm_title(code: str) -> str | None:
    """The title of ``code`` from :func:`_icd10cm_titles`, its XML escapes resolved; None if it has none."""
    raw = _icd10cm_titles().get(code)
    return None if raw is None else (ElementTree.fromstring(f"<t>{raw}</t>").text or "")


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


def _hpo_versions() -> dict[str, str]:
    try:
        hpo_release = _hpo().version()
    except Exception:
        hpo_release = "unknown"
    return {"hpo3": _version("hpo3"), "HPO": hpo_release}


def _icd10cm_versions() -> dict[str, str]:
    return {"simple-icd-10-cm": _version("simple-icd-10-cm"), "ICD-10-CM": _icd10cm_edition()}


def vocabulary_versions() -> dict[str, str]:
    """The package and release of every vocabulary xrefs are verified against, for the build report."""
    _collect_prefetches()
    versions: dict[str, str] = {}
    for prefix, of_package in _SLOW_VERSIONS.items():
        versions |= _prefetched_versions.get(prefix) or of_package()
    return versions | {
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
    code = x.curie.partition(":")[2]
    if _icd10cm_title(code) == x.label:  # confirmed from the package's data file (see _icd10cm_titles)
        return None
    cm = _icd10cm()
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
    """What is wrong with the xref's ID or label in its vocabulary, if anything.

    The answer depends on the CURIE and the label only, so one a child process of :class:`Prefetch` computed
    is used as it is.
    """
    _collect_prefetches()
    key = (x.curie, x.label)
    if key in _prefetched_verdicts:
        return _prefetched_verdicts[key]
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


# --- verification in child processes, and its cache -------------------------------------------------
#
# The build needs the verdicts on the entities' xrefs and the vocabularies' versions, and nothing else from
# hpo3 and simple-icd-10-cm; loading those two packages takes about 2 s, longer than the rest of the build.
# So the build starts one forked child per package at its beginning (Prefetch), which reads the entities
# file itself and sends back plain strings: the verdicts _check_vocabulary gives, computed by that very
# function on the same packages. verify_xrefs and vocabulary_versions wait for the children and use their
# answers. Whatever a child could not answer (it failed, hung, or never saw an xref because the file
# changed meanwhile) is computed here as before: the checks never depend on the children, only the time.
#
# The answers are kept in a cache file (the build's data/.cache/xrefs.json), one entry per vocabulary, keyed
# on the package's exact installed files (its version and the digest of its RECORD, which lists the digest
# of every installed file) and on this module's own source (which words the verdicts). A child uses an entry
# only if it holds a verdict for every xref the entities file has now; otherwise it loads the package, and
# this process rewrites the entry (atomically: a new file renamed over the old one). A cache that cannot be
# read or does not have the expected shape is ignored and rewritten. Either way the verdicts and versions are
# the same strings, so the build's output and report are byte-identical with or without the cache.

Verdicts = dict[tuple[str, str], str | None]  # (CURIE, label) -> _check_vocabulary's answer

#: The vocabularies whose packages are slow to load, the distributions that provide them, and the entries
#: each gives vocabulary_versions.
_SLOW_LOADERS: dict[str, Any] = {"HP": _hpo, "ICD10CM": _icd10cm}
_DISTRIBUTIONS = {"HP": ("hpo3", "pyhpo"), "ICD10CM": ("simple-icd-10-cm",)}
_SLOW_VERSIONS: dict[str, Callable[[], dict[str, str]]] = {"HP": _hpo_versions, "ICD10CM": _icd10cm_versions}
#: Seconds to wait for a child before verifying in this process instead (a child takes about 2 s).
CHILD_TIMEOUT = 120.0
CACHE_FORMAT = 1

_prefetched_verdicts: Verdicts = {}
_prefetched_versions: dict[str, dict[str, str]] = {}  # prefix -> its vocabulary_versions entries
_running: list[Prefetch] = []


@dataclass(frozen=True)
class _Facts:
    """What one vocabulary's package says about the entities' xrefs, and whether it came from the cache."""

    verdicts: Verdicts
    versions: dict[str, str]
    key: str
    cached: bool


def _cache_key(prefix: str) -> str:
    """A digest of the installed package's files (through its RECORD) and of this module's source."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for dist in _DISTRIBUTIONS[prefix]:
        try:
            record = md.distribution(dist).read_text("RECORD") or ""
        except md.PackageNotFoundError:
            record = "not installed"
        digest.update(f"\0{dist}\0{_version(dist)}\0{record}".encode())
    return digest.hexdigest()


def _read_cache(path: Path, prefix: str, key: str) -> _Facts | None:
    """The cached facts of one vocabulary; None if there are none for these package files or any doubt."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entry = data["vocabularies"][prefix]
        if data["format"] != CACHE_FORMAT or entry["key"] != key:
            return None
        versions, rows = entry["versions"], entry["verdicts"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in versions.items()):
            return None
        verdicts: Verdicts = {}
        for curie, label, verdict in rows:
            if not (isinstance(curie, str) and isinstance(label, str) and isinstance(verdict, (str, type(None)))):
                return None
            verdicts[(curie, label)] = verdict
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return _Facts(verdicts, dict(versions), key, cached=True)


def _write_cache(path: Path, facts: dict[str, _Facts]) -> None:
    """Store these vocabularies' facts, keeping the file's other entries; atomic, and best effort."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        vocabularies = old["vocabularies"] if old.get("format") == CACHE_FORMAT else {}
        vocabularies = dict(vocabularies) if isinstance(vocabularies, dict) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        vocabularies = {}
    for prefix, f in facts.items():
        rows = sorted([curie, label, verdict] for (curie, label), verdict in f.verdicts.items())
        vocabularies[prefix] = {"key": f.key, "versions": f.versions, "verdicts": rows}
    text = json.dumps({"format": CACHE_FORMAT, "vocabularies": vocabularies}, indent=1, sort_keys=True)
    with contextlib.suppress(OSError):  # a read-only checkout: the build does not need the cache
        write_atomic(path, (text + "\n").encode("utf-8"), mode=0o644)  # it holds nothing secret


def _vocabulary_facts(prefix: str, read: Callable[[], Iterable[Xref]], cache: Path | None) -> _Facts:
    """The verdict on every xref of one vocabulary that ``read()`` returns, and its versions.

    Taken from the cache when it has a verdict for each of them, else computed (loading the package).
    """
    xrefs = [x for x in read() if x.curie.partition(":")[0] == prefix]
    key = _cache_key(prefix)
    cached = _read_cache(cache, prefix, key) if cache is not None else None
    if cached is not None and all((x.curie, x.label) in cached.verdicts for x in xrefs):
        return cached
    verdicts = {(x.curie, x.label): _check_vocabulary(x) for x in xrefs}
    return _Facts(verdicts, _SLOW_VERSIONS[prefix](), key, cached=False)


def _can_fork() -> bool:
    """Fork where it is safe and cheap (Linux and the like); elsewhere the work is done in-process."""
    return "fork" in multiprocessing.get_all_start_methods() and sys.platform not in ("darwin", "win32")


def _child_main(send: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Run ``fn(*args)`` and send its value; send None on any failure (the parent then works it out)."""
    _running.clear()  # the parent's prefetches are not this process's to wait for
    try:
        value = fn(*args)
    except BaseException:  # noqa: BLE001 - even Ctrl-C: the parent decides, and reports errors in-process
        value = None
    try:
        send.send(value)
    finally:
        send.close()


class _Forked:
    """One function call in a forked child process; its value comes back through a pipe."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        """Start the child; raises OSError or AssertionError (in a daemonic process) if it cannot start."""
        ctx = multiprocessing.get_context("fork")
        self._receive, send = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_child_main, args=(send, fn, args), daemon=True)
        try:
            self._process.start()
        except BaseException:
            self._receive.close()
            raise
        finally:
            send.close()  # the child holds the only write end, so its death shows here as end of file

    def result(self, timeout: float) -> Any:
        """The function's value; None if the child failed, died or took longer than ``timeout`` seconds."""
        try:
            return self._receive.recv() if self._receive.poll(timeout) else None
        except Exception:  # noqa: BLE001 - EOF, a broken pipe, an unpicklable answer: worked out in-process
            return None
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the child if it still runs and release the pipe."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._receive.close()


class _Done:
    """A value computed in this process, with the interface of :class:`_Forked`."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self._value = fn(*args)
        except Exception:  # noqa: BLE001 - verify_xrefs will meet the same error and report it
            self._value = None

    def result(self, timeout: float) -> Any:
        return self._value

    def cancel(self) -> None:
        pass


class Prefetch:
    """Verify the xrefs of the slow vocabularies (HP, ICD10CM) in forked child processes, in the background.

    ``read`` runs in each child and returns the xrefs to verify (the build passes a reader of the entities
    file); ``cache`` is the cache file (see above), or None for none. Use as a context manager around the
    work to overlap: :func:`verify_xrefs` and :func:`vocabulary_versions` wait for the children when first
    needed, and leaving the block stops children that still run (a build that fails early does not wait for
    them). A vocabulary whose package is already loaded in this process is verified here, with no child;
    where there is no fork, the cache is read (or the packages loaded) here, at once.
    """

    def __init__(self, read: Callable[[], Iterable[Xref]], cache: Path | None = None) -> None:
        self._cache = cache
        self._jobs: dict[str, _Forked | _Done] = {}
        fork = _can_fork()
        for prefix, loader in _SLOW_LOADERS.items():
            if loader.cache_info().currsize:
                continue
            try:
                job = _Forked if fork else _Done
                self._jobs[prefix] = job(_vocabulary_facts, prefix, read, cache)
            except (OSError, AssertionError):  # no child possible here: work it out in-process
                self._jobs[prefix] = _Done(_vocabulary_facts, prefix, read, cache)
        _running.append(self)

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def collect(self) -> None:
        """Wait for the children, keep their answers, and update the cache if some were not cached."""
        collected: dict[str, _Facts] = {}
        while self._jobs:
            prefix, job = self._jobs.popitem()
            facts = job.result(CHILD_TIMEOUT)
            if isinstance(facts, _Facts):
                _prefetched_verdicts.update(facts.verdicts)
                _prefetched_versions[prefix] = facts.versions
                collected[prefix] = facts
        if self in _running:
            _running.remove(self)
        fresh = {prefix: f for prefix, f in collected.items() if not f.cached}
        if self._cache is not None and fresh:
            _write_cache(self._cache, fresh)

    def cancel(self) -> None:
        """Stop the children still running; answers already collected are kept."""
        while self._jobs:
            self._jobs.popitem()[1].cancel()
        if self in _running:
            _running.remove(self)


def _collect_prefetches() -> None:
    """Wait for every running prefetch of this process (a no-op when there is none)."""
    while _running:
        _running[0].collect()
