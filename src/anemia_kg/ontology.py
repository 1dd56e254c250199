"""Read the anemia-kg OWL ontology and expose the vocabulary the pipeline checks against.

The ontology file (``ontology/anemia-kg.ttl``) is the single place where classes and claim predicates are
defined. Curation validates every entity type and claim predicate against it instead of keeping its own
lists, the build copies it verbatim into the ``akgg:ontology`` named graph, and the path search asks it
which predicates are causal and in which direction the cause runs. This module only reads the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rdflib import OWL, RDF, RDFS, SKOS, Graph, Literal, Namespace, URIRef
from rdflib.plugins.parsers.notation3 import BadSyntax
from rdflib.term import Node

ONTOLOGY_DIR = Path(__file__).resolve().parents[2] / "ontology"
ONTOLOGY_PATH = ONTOLOGY_DIR / "anemia-kg.ttl"
SHAPES_PATH = ONTOLOGY_DIR / "shapes.ttl"

AKG = Namespace("https://w3id.org/anemia-kg/ontology#")
ONTOLOGY_IRI = URIRef("https://w3id.org/anemia-kg/ontology")

_MATCHES = (("exact", SKOS.exactMatch), ("close", SKOS.closeMatch), ("broad", SKOS.broadMatch))
_DIRECTIONS = {"SubjectToObject": "forward", "ObjectToSubject": "reverse"}  # akg:causalDirection values


class OntologyError(Exception):
    """The ontology (or shapes) file cannot be read or lacks something the pipeline relies on.

    The message names the file and, for a syntax error, its line, so it can be shown to a person as is.
    """


@dataclass(frozen=True)
class ClassInfo:
    """One ``owl:Class`` of the akg: namespace."""

    name: str  # local name, e.g. "Condition"
    iri: str
    label: str
    definition: str
    parents: tuple[str, ...]  # local names of the direct akg: superclasses (external ones are left out)
    matches: tuple[
        tuple[str, str], ...
    ] = ()  # (match type, IRI), e.g. ("close", ".../DiseaseOrPhenotypicFeature")


@dataclass(frozen=True)
class Predicate:
    """A claim predicate: an object property a claim may use as its ``rdf:predicate``."""

    name: str  # local name, e.g. "causes"
    iri: str
    label: str
    definition: str
    causal: bool
    direction: str | None  # "forward" (subject causes object), "reverse" (object causes subject), None
    symmetric: bool
    domain: str  # local name of one akg: class
    range: str
    parents: tuple[str, ...] = ()  # local names of the direct akg: super-properties
    matches: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Vocabulary:
    """The classes and claim predicates of the ontology, keyed by local name."""

    classes: dict[str, ClassInfo]
    predicates: dict[str, Predicate]

    def is_subclass(self, name: str, ancestor: str) -> bool:
        """True when class ``name`` is ``ancestor`` or lies below it (reflexive, transitive).

        Unknown names are never subclasses of anything, so a typo in a curated type fails the check.
        """
        if name not in self.classes or ancestor not in self.classes:
            return False
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            if current == ancestor:
                return True
            if current in seen:
                continue
            seen.add(current)
            todo.extend(self.classes[current].parents)
        return False

    def entity_classes(self) -> tuple[str, ...]:
        """Local names of the classes an entity may be typed with: every proper subclass of Entity, sorted.

        ``Entity`` itself is left out: a node must say what kind of thing it is.
        """
        return tuple(sorted(c for c in self.classes if c != "Entity" and self.is_subclass(c, "Entity")))

    def predicate(self, name: str) -> Predicate:
        """The claim predicate with this local name; KeyError naming the known ones otherwise."""
        try:
            return self.predicates[name]
        except KeyError:
            known = ", ".join(sorted(self.predicates))
            raise KeyError(f"unknown claim predicate {name!r}; the ontology defines: {known}") from None

    def is_subproperty(self, name: str, ancestor: str) -> bool:
        """True when predicate ``name`` is ``ancestor`` or a sub-property of it (causes < contributesTo)."""
        todo = [name]
        seen: set[str] = set()
        while todo:
            current = todo.pop()
            if current == ancestor:
                return True
            if current in seen or current not in self.predicates:
                continue
            seen.add(current)
            todo.extend(self.predicates[current].parents)
        return False

    def accepts(self, predicate: str, subject_type: str, object_type: str) -> bool:
        """True when a claim ``subject predicate object`` fits the predicate's domain and range."""
        p = self.predicates.get(predicate)
        return (
            p is not None
            and self.is_subclass(subject_type, p.domain)
            and self.is_subclass(object_type, p.range)
        )


def _display(path: Path) -> str:
    """The path as a person would type it: relative to the repository or the working directory if possible."""
    resolved = path.resolve()
    for base in (ONTOLOGY_DIR.parent, Path.cwd()):
        try:
            return resolved.relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return str(path)


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, max(0, min(index, len(text)))) + 1


def _syntax_error(name: str, text: str, err: Exception) -> OntologyError:
    """Turn whatever rdflib's Turtle parser raised into 'file:N: reason', as every input error is written.

    rdflib raises ``BadSyntax`` (which knows the line) for most errors, but a file that ends inside a token
    makes it fail with a bare IndexError or AssertionError: those are reported at the place the parser
    points at, or at the last line when the file simply stops.
    """
    last_line = max(1, _line_of(text, len(text.rstrip("\n"))))
    truncated = " (the file ends in the middle of a statement: is it truncated?)"
    if isinstance(err, BadSyntax):
        why = getattr(err, "_why", None) or "bad Turtle syntax"
        if int(getattr(err, "_i", 0)) >= len(text.rstrip()):
            return OntologyError(f"{name}:{last_line}: {why}{truncated}")
        return OntologyError(f"{name}:{int(getattr(err, 'lines', 0)) + 1}: {why}")
    message = str(err)
    m = re.search(r" at \^ in (.*)\^(.*)\Z", message, re.S)
    if m:
        before, after = m.group(1), m.group(2)
        reason = message.split(" at ^ in ", 1)[0]
        if not after.strip() and text.rstrip().endswith(before.rstrip()):
            return OntologyError(f"{name}:{last_line}: {reason}{truncated}")
        found = text.rfind(before + after)
        if found >= 0:
            return OntologyError(f"{name}:{_line_of(text, found + len(before))}: {reason}")
    return OntologyError(
        f"{name}:{last_line}: the file ends in the middle of a statement (is it truncated?)"
        if isinstance(err, IndexError)
        else f"{name}:{last_line}: cannot parse Turtle: {message or type(err).__name__}"
    )


def load_graph(path: Path | str = ONTOLOGY_PATH) -> Graph:
    """Parse a Turtle file (the ontology or the shapes) into a new graph.

    Any failure becomes an :class:`OntologyError` whose message names the file and line, so the command line
    can print it without a traceback.
    """
    path = Path(path)
    name = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OntologyError(f"{name}: file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise OntologyError(f"{name}: cannot read the file: {err}") from None
    graph = Graph()
    try:
        graph.parse(data=text, format="turtle")
    except Exception as err:  # rdflib raises BadSyntax, but also IndexError/AssertionError on truncation
        raise _syntax_error(name, text, err) from None
    return graph


def _local(node: Node | None) -> str | None:
    """Local name of an akg: IRI, None for anything else."""
    if not isinstance(node, URIRef) or not node.startswith(str(AKG)):
        return None
    return str(node)[len(str(AKG)) :]


def _locals(graph: Graph, subject: Node, prop: URIRef) -> list[str]:
    """Sorted local names of the akg: objects of ``subject prop``; other objects are ignored."""
    return sorted(name for name in (_local(o) for o in graph.objects(subject, prop)) if name)


def _akg_subjects(graph: Graph, prop: URIRef, obj: Node) -> list[tuple[URIRef, str]]:
    """The akg: subjects of ``? prop obj`` with their local names, sorted so errors come in one order."""
    found = {(s, name) for s in graph.subjects(prop, obj) if isinstance(s, URIRef) and (name := _local(s))}
    return sorted(found)


def _text(graph: Graph, subject: Node, prop: URIRef) -> str:
    value = graph.value(subject, prop)
    return str(value) if value is not None else ""


def _matches(graph: Graph, subject: Node) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((kind, str(o)) for kind, prop in _MATCHES for o in graph.objects(subject, prop)))


def _bool(value: object) -> bool | None:
    if isinstance(value, Literal) and isinstance(value.toPython(), bool):
        return bool(value.toPython())
    return None


def vocabulary_from_graph(graph: Graph, name: str = "<ontology>") -> Vocabulary:
    """Build the :class:`Vocabulary` of a parsed ontology graph, checking what the pipeline relies on.

    Every akg: class and claim predicate needs a label and a definition; every claim predicate needs exactly
    one akg: domain, one akg: range and ``akg:isCausal``; causal ones need ``akg:causalDirection``.
    """
    problems: list[str] = []
    classes: dict[str, ClassInfo] = {}
    for cls, local in _akg_subjects(graph, RDF.type, OWL.Class):
        classes[local] = ClassInfo(
            local,
            str(cls),
            _text(graph, cls, RDFS.label),
            _text(graph, cls, SKOS.definition),
            tuple(_locals(graph, cls, RDFS.subClassOf)),
            _matches(graph, cls),
        )
    for info in classes.values():
        if not info.label or not info.definition:
            problems.append(f"class akg:{info.name} needs rdfs:label and skos:definition")
        for parent in info.parents:
            if parent not in classes:
                problems.append(f"class akg:{info.name} is a subclass of undefined akg:{parent}")

    predicates: dict[str, Predicate] = {}
    for prop, local in _akg_subjects(graph, AKG.claimPredicate, Literal(True)):
        where = f"claim predicate akg:{local}"
        domains, ranges = _locals(graph, prop, RDFS.domain), _locals(graph, prop, RDFS.range)
        causal = _bool(graph.value(prop, AKG.isCausal))
        direction = _DIRECTIONS.get(_local(graph.value(prop, AKG.causalDirection)) or "")
        label, definition = _text(graph, prop, RDFS.label), _text(graph, prop, SKOS.definition)
        if (prop, RDF.type, OWL.ObjectProperty) not in graph:
            problems.append(f"{where} must be an owl:ObjectProperty")
        if not label or not definition:
            problems.append(f"{where} needs rdfs:label and skos:definition")
        if len(domains) != 1 or len(ranges) != 1:
            problems.append(f"{where} needs exactly one akg: rdfs:domain and one akg: rdfs:range")
            continue
        for end in (domains[0], ranges[0]):
            if end not in classes:
                problems.append(f"{where} names undefined class akg:{end}")
        if causal is None:
            problems.append(f"{where} needs akg:isCausal true or false")
            continue
        if causal and direction is None:
            problems.append(f"{where} is causal but has no akg:causalDirection")
        predicates[local] = Predicate(
            name=local,
            iri=str(prop),
            label=label,
            definition=definition,
            causal=causal,
            direction=direction if causal else None,
            symmetric=(prop, RDF.type, OWL.SymmetricProperty) in graph,
            domain=domains[0],
            range=ranges[0],
            parents=tuple(_locals(graph, prop, RDFS.subPropertyOf)),
            matches=_matches(graph, prop),
        )
    if not predicates and not problems:
        problems.append("no claim predicates (akg:claimPredicate true) are defined")
    if problems:
        raise OntologyError(f"{name}: " + "; ".join(problems))
    return Vocabulary(classes=classes, predicates=predicates)


def load_vocabulary(path: Path | str = ONTOLOGY_PATH) -> Vocabulary:
    """Parse the ontology file and return its classes and claim predicates (OntologyError if unusable)."""
    return vocabulary_from_graph(load_graph(path), _display(Path(path)))


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    """The vocabulary of the repository's ontology, parsed once per process."""
    return load_vocabulary(ONTOLOGY_PATH)
